/* sink.h -- where the agent hands each decoded NOTIFY.
 *
 * The agent owns the connection and the ACK; the sink owns the messages.
 * submit() runs on the I/O thread that read the frame. A sink either
 * finishes at once (returns SINK_SPOOLED or SINK_DROPPED) or returns
 * SINK_PENDING and later calls done(arg, token, result) exactly once, from
 * any thread; only then does the agent send the ACK (the spool uses this to
 * hold ACKs until its commit). The counting sink (sink_count.c) finishes at
 * once and only counts. */
#ifndef SPOOLCAP_SINK_H
#define SPOOLCAP_SINK_H

#include <stdint.h>
#include <stdio.h>
#include "spoolcap/spop.h"

enum sink_result {
	SINK_PENDING = 0,     /* done() will be called later */
	SINK_SPOOLED = 1,     /* every message of the NOTIFY is stored */
	SINK_DROPPED = 2      /* not stored (policy or error); still ACKed */
};

/* Upper bound on I/O threads, so a sink can keep per-thread state in a
 * fixed table indexed by sink_notify.worker. */
#define SINK_WORKERS_MAX 256

typedef struct sink_notify {
	const uint8_t *msgs;      /* LIST-OF-MESSAGES, already validated */
	size_t   msgs_len;
	unsigned nmsgs;
	uint64_t sid, fid;        /* SPOP stream/frame ids (opaque) */
	spop_str engine_id;       /* from the connection's HELLO; may be empty */
	int64_t  recv_ns;         /* CLOCK_REALTIME when the frame was complete */
	unsigned worker;          /* I/O thread index (< SINK_WORKERS_MAX), for
	                           * per-thread state without locks */
	const char *peer;         /* "ip:port" or "unix:path", for logs */
} sink_notify;

typedef void sink_done_fn(void *arg, uint64_t token, int result);

typedef struct sink sink;
struct sink {
	const char *name;
	/* Pointers in n are valid only during the call. */
	int  (*submit)(sink *s, const sink_notify *n,
	               sink_done_fn *done, void *arg, uint64_t token);
	/* One summary line for logs at exit (may be NULL). */
	void (*summary)(sink *s, char *buf, size_t len);
	void (*destroy)(sink *s);
};

/* The counting sink: counts NOTIFYs and messages (per message name, first
 * 32 names) and logs each message's name and "uid"/"unique-id" argument at
 * debug level. Thread-safe. */
sink *sink_count_new(void);
uint64_t sink_count_messages(sink *s);

#endif
