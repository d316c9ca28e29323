/* spop.h -- SPOP (HAProxy SPOE protocol 2.0) codec.
 *
 * Pure functions over byte buffers: no I/O, no allocation. Decoders take a
 * cursor (const uint8_t **p) and an end pointer, never read past end, and
 * return 0 on success or a negative SPOP_E* code. Encoders write into a
 * spop_wbuf that records overflow instead of writing past its capacity.
 * Reference: ../shared/spop-protocol.md (sections quoted as "ref §N"). */
#ifndef SPOOLCAP_SPOP_H
#define SPOOLCAP_SPOP_H

#include <stddef.h>
#include <stdint.h>

#define SPOP_VERSION          "2.0"
#define SPOP_FRAME_HDR_MIN    7        /* type + flags + 1-byte sid + 1-byte fid */
#define SPOP_FRAME_SIZE_MIN   256      /* smallest max-frame-size allowed (ref §2.2) */
#define SPOP_VARINT_MAX       10       /* bytes needed for 2^64-1 */
#define SPOP_DISCONNECT_MSG_MAX 255    /* 2.6 rejects longer DISCONNECT messages */

/* Frame types (ref §1.2). */
enum spop_frame_type {
	SPOP_FRAME_UNSET              = 0,
	SPOP_FRAME_HAPROXY_HELLO      = 1,
	SPOP_FRAME_HAPROXY_DISCONNECT = 2,
	SPOP_FRAME_NOTIFY             = 3,
	SPOP_FRAME_AGENT_HELLO        = 101,
	SPOP_FRAME_AGENT_DISCONNECT   = 102,
	SPOP_FRAME_ACK                = 103
};

#define SPOP_FLAG_FIN   0x00000001u
#define SPOP_FLAG_ABORT 0x00000002u

/* Typed-data type ids: low nibble of the type byte (ref §1.6). */
enum spop_type {
	SPOP_T_NULL = 0, SPOP_T_BOOL = 1, SPOP_T_INT32 = 2, SPOP_T_UINT32 = 3,
	SPOP_T_INT64 = 4, SPOP_T_UINT64 = 5, SPOP_T_IPV4 = 6, SPOP_T_IPV6 = 7,
	SPOP_T_STRING = 8, SPOP_T_BINARY = 9
};
#define SPOP_T_MASK      0x0F
#define SPOP_BOOL_TRUE   0x10           /* flag bit of a BOOLEAN's type byte */

/* DISCONNECT status codes (ref §2.5). */
enum spop_status {
	SPOP_ST_NORMAL = 0, SPOP_ST_IO = 1, SPOP_ST_TIMEOUT = 2, SPOP_ST_TOO_BIG = 3,
	SPOP_ST_INVALID = 4, SPOP_ST_NO_VERSION = 5, SPOP_ST_NO_FRAME_SIZE = 6,
	SPOP_ST_NO_CAPS = 7, SPOP_ST_BAD_VERSION = 8, SPOP_ST_BAD_FRAME_SIZE = 9,
	SPOP_ST_FRAG_NOT_SUPPORTED = 10, SPOP_ST_INTERLACED = 11,
	SPOP_ST_FRAMEID_NOTFOUND = 12, SPOP_ST_RES_ALLOC = 13, SPOP_ST_UNKNOWN = 99
};

/* Decode errors. */
enum spop_err {
	SPOP_OK          = 0,
	SPOP_ETRUNC      = -1,  /* input ends inside an item */
	SPOP_EVARINT     = -2,  /* varint longer than 10 bytes or above 2^64-1 */
	SPOP_ETYPE       = -3,  /* reserved typed-data id 10..15 */
	SPOP_ELEN        = -4,  /* a length points past the end of its frame */
	SPOP_ESHORT      = -5,  /* frame LENGTH below SPOP_FRAME_HDR_MIN */
	SPOP_ETOOBIG     = -6,  /* frame LENGTH above the allowed maximum */
	SPOP_EINVAL      = -7,  /* structurally invalid (empty KV key, ...) */
	SPOP_EOVERFLOW   = -8   /* encoder: output buffer too small */
};
const char *spop_strerror(int err);
/* Text for a DISCONNECT status code ("frame too big", ...). */
const char *spop_status_str(unsigned code);

/* A slice of the input; not NUL-terminated. */
typedef struct spop_str {
	const uint8_t *ptr;
	size_t len;
} spop_str;

/* A decoded typed value. Strings/binaries point into the input.
 * All four integer types are decoded as 64-bit varints; INT32/UINT32 values
 * above 32 bits are kept as sent, not rejected (HAProxy does the same). */
typedef struct spop_data {
	uint8_t type;                 /* enum spop_type */
	union {
		int      b;               /* BOOL */
		int64_t  i;               /* INT32, INT64 (two's complement cast) */
		uint64_t u;               /* UINT32, UINT64 */
		uint8_t  ip[16];          /* IPV4 (4 bytes used), IPV6 */
		spop_str s;               /* STRING, BINARY */
	} v;
} spop_data;

/* ---- primitive decoders ---- */
int spop_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *out);
int spop_name_get(const uint8_t **p, const uint8_t *end, spop_str *out);
int spop_data_get(const uint8_t **p, const uint8_t *end, spop_data *out);

/* ---- frames ----
 * spop_frame_get looks at buf[0..avail): returns 1 and fills *f when a whole
 * frame is present (*consumed = 4 + LENGTH), 0 when more bytes are needed, or
 * a negative error: SPOP_ESHORT (LENGTH < 7), SPOP_ETOOBIG (LENGTH > max_len,
 * reported as soon as the 4-byte prefix is read, before any payload arrives),
 * SPOP_ETRUNC/SPOP_EVARINT for bad sid/fid varints. */
typedef struct spop_frame {
	uint32_t len;                 /* LENGTH field */
	uint8_t  type;
	uint32_t flags;
	uint64_t sid, fid;
	const uint8_t *payload;
	size_t   payload_len;
} spop_frame;
int spop_frame_get(const uint8_t *buf, size_t avail, uint32_t max_len,
                   spop_frame *f, size_t *consumed);

/* ---- list iterators: each _next returns 1 (item), 0 (end) or < 0 ----
 * An iterator only moves past complete, valid items; after an error it
 * stays put, so calling _next again returns the same error. */
typedef struct spop_iter {
	const uint8_t *p, *end;
} spop_iter;
void spop_iter_init(spop_iter *it, const uint8_t *p, size_t len);

/* KV-LIST (HELLO, DISCONNECT): empty keys are SPOP_EINVAL. */
int spop_kv_next(spop_iter *it, spop_str *key, spop_data *val);

/* LIST-OF-MESSAGES: each message's arguments are fully validated before it
 * is returned; *args is an iterator over them for spop_arg_next. */
typedef struct spop_msg {
	spop_str  raw;                /* the whole message as on the wire */
	spop_str  name;
	unsigned  nargs;
	spop_iter args;
} spop_msg;
int spop_msg_next(spop_iter *it, spop_msg *m);
int spop_arg_next(spop_iter *args, spop_str *name, spop_data *val);
/* Validates a whole LIST-OF-MESSAGES; counts messages into *nmsgs. */
int spop_msgs_check(const uint8_t *p, size_t len, unsigned *nmsgs);

/* LIST-OF-ACTIONS (ACK payload). set-var: nargs 3 (scope, name, value);
 * unset-var: nargs 2 (scope, name). Other action types are SPOP_EINVAL. */
enum spop_action_type { SPOP_ACT_SET_VAR = 1, SPOP_ACT_UNSET_VAR = 2 };
enum spop_scope { SPOP_SCOPE_PROC = 0, SPOP_SCOPE_SESS = 1, SPOP_SCOPE_TXN = 2,
                  SPOP_SCOPE_REQ = 3, SPOP_SCOPE_RES = 4 };
typedef struct spop_action {
	uint8_t   type, nargs, scope;
	spop_str  name;
	spop_data value;              /* set-var only */
} spop_action;
int spop_action_next(spop_iter *it, spop_action *a);

/* ---- HELLO / DISCONNECT helpers ---- */
typedef struct spop_hello {
	spop_str versions;            /* "supported-versions" */
	uint64_t max_frame_size;      /* 0 if absent */
	spop_str capabilities;
	int      has_versions, has_max_frame_size, has_capabilities;
	int      healthcheck;
	spop_str engine_id;           /* len 0 if absent */
} spop_hello;
/* Parses a HAPROXY-HELLO (or AGENT-HELLO: key "version") payload; unknown
 * keys are skipped. Key names match exactly. A known key with the wrong
 * value type (or a negative max-frame-size) is SPOP_EINVAL. Returns 0 or a
 * negative error. */
int spop_hello_parse(const uint8_t *p, size_t len, spop_hello *h);
/* 1 if a comma list (spaces allowed around items) contains word. */
int spop_list_has(spop_str list, const char *word);
/* 1 if a "supported-versions" list covers major.minor ("2.0" covers 2.0;
 * a listed "2.x" covers all minors <= x of major 2). */
int spop_versions_support(spop_str list, unsigned major, unsigned minor);

typedef struct spop_disconnect {
	uint64_t status;
	spop_str message;
	int      has_status;
} spop_disconnect;
/* status-code: any integer type; message: STRING. Unknown keys skipped. */
int spop_disconnect_parse(const uint8_t *p, size_t len, spop_disconnect *d);

/* ---- encoders ---- */
typedef struct spop_wbuf {
	uint8_t *buf;
	size_t   len, cap;
	int      overflow;            /* set once anything did not fit */
} spop_wbuf;
void   spop_wbuf_init(spop_wbuf *w, uint8_t *buf, size_t cap);
size_t spop_varint_put(uint8_t *out, uint64_t v);   /* out >= 10 bytes; returns bytes */
void   spop_put_varint(spop_wbuf *w, uint64_t v);
void   spop_put_bytes(spop_wbuf *w, const void *p, size_t n);
void   spop_put_name(spop_wbuf *w, const void *p, size_t n);      /* varint len + bytes */
void   spop_put_data(spop_wbuf *w, const spop_data *d);   /* bad type: sets overflow */
void   spop_put_str(spop_wbuf *w, uint8_t type, const void *p, size_t n); /* STRING/BINARY */
void   spop_put_uint(spop_wbuf *w, uint8_t type, uint64_t v);   /* INT32..UINT64 */
/* Frame header with a placeholder LENGTH; spop_frame_end patches it and
 * returns the frame's total size (4 + LENGTH) or 0 on overflow. */
size_t spop_frame_begin(spop_wbuf *w, uint8_t type, uint32_t flags,
                        uint64_t sid, uint64_t fid);
size_t spop_frame_end(spop_wbuf *w, size_t start);

/* Whole frames the agent sends (flags FIN, HELLO/DISCONNECT ids 0/0).
 * spop_agent_hello's max_frame_size also bounds its own LENGTH. Each returns the
 * number of bytes written to out, or 0 if it does not fit in cap/max_frame. */
size_t spop_agent_hello(uint8_t *out, size_t cap, uint32_t max_frame_size,
                        const char *capabilities);
/* message is cut to SPOP_DISCONNECT_MSG_MAX bytes; NULL means "". */
size_t spop_agent_disconnect(uint8_t *out, size_t cap, unsigned status,
                             const char *message);
/* ACK echoing sid/fid. Always carries one harmless action (ref §2.4, the 3.1
 * empty-ACK bug): unset-var txn "_", or, when spooled_var is non-NULL,
 * set-var txn <spooled_var> = BOOL spooled. */
size_t spop_ack(uint8_t *out, size_t cap, uint64_t sid, uint64_t fid,
                const char *spooled_var, int spooled);

#endif
