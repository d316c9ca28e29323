/* spop_client.h -- a small blocking SPOP client for the agent tests.
 *
 * Plays HAProxy's side of SPOP against a running spoolcapd: connects over
 * TCP or a unix socket, sends raw bytes or HAPROXY-HELLO / NOTIFY /
 * HAPROXY-DISCONNECT frames, and reads the agent's frames back. Frames are
 * built and decoded with the project's codec (spop.h). Every wait is bounded
 * by poll(), so a hung agent fails a test instead of hanging it, and every
 * send also drains what the agent writes meanwhile, so pipelining thousands
 * of frames cannot deadlock on full socket buffers. One spc_conn belongs to
 * one thread. */
#ifndef SPOOLCAP_SPOP_CLIENT_H
#define SPOOLCAP_SPOP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include "spoolcap/spop.h"

/* Results of the I/O calls (>= 0 is success). */
enum spc_result {
	SPC_FRAME    = 1,    /* spc_read_frame: a whole frame was read */
	SPC_OK       = 0,    /* done; for spc_read_frame: clean EOF, no frame */
	SPC_ETIMEOUT = -1,   /* nothing arrived (or could be sent) in time */
	SPC_ERESET   = -2,   /* ECONNRESET / EPIPE: the agent reset or closed */
	SPC_EIO      = -3,   /* any other socket error */
	SPC_EPROTO   = -4,   /* the agent sent bytes that are not a frame, or EOF mid-frame */
	SPC_ENOMEM   = -5
};
const char *spc_strerror(int r);

typedef struct spc_conn {
	int      fd;
	uint8_t *rbuf;           /* received bytes; [roff, rlen) not returned yet */
	size_t   rlen, roff, rcap;
	int      eof;            /* the agent shut its side down */
	int      sock_err;       /* errno of the last failed read or write */
	char     local[128];      /* our end, "127.0.0.1:PORT" (as the agent logs the peer) */
	char     errmsg[256];    /* why the last call failed */
} spc_conn;

/* One frame from the agent. raw points into the connection's buffer and is
 * valid until the next call on that connection. */
typedef struct spc_frame {
	spop_frame     f;        /* decoded header; f.payload points into raw */
	const uint8_t *raw;      /* the whole frame, LENGTH prefix included */
	size_t         raw_len;
} spc_frame;

/* ---- connections ---- */
int  spc_connect_tcp(spc_conn *c, const char *ip, unsigned port, int timeout_ms);
int  spc_connect_unix(spc_conn *c, const char *path, int timeout_ms);
void spc_close(spc_conn *c);
/* Close with SO_LINGER 0 so the agent sees an RST instead of a FIN. */
void spc_reset(spc_conn *c);
int  spc_nodelay(spc_conn *c);

/* Sends all n bytes (waits for room up to timeout_ms without progress). */
int spc_send(spc_conn *c, const void *buf, size_t n, int timeout_ms);
/* Sends n bytes in chunks of chunk bytes, pausing pause_us between them. */
int spc_send_slowly(spc_conn *c, const void *buf, size_t n, size_t chunk,
                    unsigned pause_us, int timeout_ms);

/* Sends without reading anything back (a peer that ignores its ACKs):
 * stops when all n bytes are sent or when no byte could be written for
 * stall_ms. *sent gets the bytes written. Returns SPC_OK (check *sent) or
 * a socket error. A stall is not counted by spc_timeouts(). */
int spc_send_blind(spc_conn *c, const void *buf, size_t n, int stall_ms, size_t *sent);

/* Reads one frame (SPC_FRAME), or returns SPC_OK on a clean EOF between
 * frames, or a negative error. timeout_ms bounds the wait for the whole
 * frame. Frames up to 16 MiB are accepted. */
int spc_read_frame(spc_conn *c, spc_frame *fr, int timeout_ms);
/* Reads until EOF or reset. *nframes (may be NULL) gets the count of frames
 * that still arrived, *first_type (may be NULL) the type of the first one.
 * Returns SPC_OK once the agent closed (FIN or RST), else an error. */
int spc_wait_close(spc_conn *c, int timeout_ms, unsigned *nframes,
                   int *first_type);

/* ---- building frames (each returns the frame size, 0 if it did not fit) ---- */
typedef struct spc_hello_opts {
	const char *versions;      /* "supported-versions"; NULL = key omitted */
	uint64_t    max_frame_size;/* 0 = key omitted */
	const char *capabilities;  /* NULL = key omitted */
	int         healthcheck;   /* < 0 omitted, 0 false, 1 true */
	const char *engine_id;     /* NULL = key omitted */
} spc_hello_opts;
/* The usual HELLO of HAProxy 2.6: "2.0", the given size and capabilities,
 * an engine id. */
spc_hello_opts spc_hello_default(uint64_t max_frame_size, const char *caps);
size_t spc_build_hello(uint8_t *out, size_t cap, const spc_hello_opts *o);

typedef struct spc_arg {
	const char *name;          /* NULL or "" = unnamed argument */
	spop_data   val;
} spc_arg;
typedef struct spc_msg {
	const char    *name;
	const spc_arg *args;
	unsigned       nargs;      /* <= 255 */
} spc_msg;
/* NOTIFY with FIN set. */
size_t spc_build_notify(uint8_t *out, size_t cap, uint64_t sid, uint64_t fid,
                        const spc_msg *msgs, unsigned nmsgs);
/* NOTIFY with one message "name" and one STRING argument "uid". */
size_t spc_build_notify_uid(uint8_t *out, size_t cap, uint64_t sid, uint64_t fid,
                            const char *name, const char *uid);
/* Any frame with an opaque payload (for malformed input). */
size_t spc_build_frame(uint8_t *out, size_t cap, uint8_t type, uint32_t flags,
                       uint64_t sid, uint64_t fid, const void *payload, size_t n);
size_t spc_build_disconnect(uint8_t *out, size_t cap, unsigned status,
                            const char *message);

/* Typed values for spc_arg. */
spop_data spc_null(void);
spop_data spc_bool(int b);
spop_data spc_int(uint8_t type, int64_t v);    /* INT32/UINT32/INT64/UINT64 */
spop_data spc_str(uint8_t type, const void *p, size_t n);  /* STRING/BINARY */
spop_data spc_cstr(const char *s);
spop_data spc_ip(uint8_t type, const void *addr);          /* IPV4/IPV6 */

/* ---- decoding the agent's frames (0 or a negative SPOP_E* code) ---- */
typedef struct spc_agent_hello {
	spop_str version;
	uint64_t max_frame_size;
	uint8_t  max_frame_size_type;
	spop_str capabilities;
	int      has_version, has_max_frame_size, has_capabilities;
	unsigned nkeys, duplicates;
	int      version_not_string, caps_not_string;
} spc_agent_hello;
int spc_parse_agent_hello(const spc_frame *fr, spc_agent_hello *h);

/* Counts the actions of an ACK; *first gets the first one. */
int spc_parse_ack(const spc_frame *fr, unsigned *nactions, spop_action *first);
int spc_parse_disconnect(const spc_frame *fr, spop_disconnect *d);

/* ---- conveniences (they fill c->errmsg when they fail) ---- */
/* Sends a HELLO and reads the AGENT-HELLO. Returns SPC_OK, a negative
 * spc_result, or SPC_EPROTO if the reply is not a well-formed AGENT-HELLO
 * (e.g. an AGENT-DISCONNECT; then *fr holds it). */
int spc_handshake(spc_conn *c, const spc_hello_opts *o, spc_agent_hello *h,
                  spc_frame *fr, int timeout_ms);
/* Sends a NOTIFY (one message, uid) and reads its ACK; checks the ids. */
int spc_roundtrip(spc_conn *c, uint64_t sid, uint64_t fid, int timeout_ms);

/* How many calls returned SPC_ETIMEOUT so far, process-wide (thread-safe):
 * lets a test give up on an agent that stopped answering instead of
 * waiting out every remaining timeout. */
unsigned spc_timeouts(void);

/* 1 if s equals the C string w. */
int spc_str_eq(spop_str s, const char *w);
/* Hex dump of up to max bytes into out (for diagnostics). */
void spc_hex(char *out, size_t outlen, const void *p, size_t n, size_t max);

#endif
