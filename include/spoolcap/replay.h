/* replay.h -- the delivery engine: drains the spool to an HTTP event
 * processor as NDJSON batches (design.md "Delivery contract"), with the
 * policy of replay_policy.h (error classes, backoff, bisection).
 *
 * A replay object owns its own libev loop (ev_loop_new) and a libcurl multi
 * handle wired to it (spool-notes B.3). One batch is in flight at a time
 * (max-inflight 1): batches go out in seq order and the cursor only moves
 * over a contiguous delivered or dead-lettered prefix.
 *
 * A batch: spool_read after the cursor (values copied inside the short read
 * transaction, never held across I/O), each record decoded and rendered with
 * event_render + '\n'. A record that does not decode is dead-lettered
 * (SPOOL_DLQ_CORRUPT). The body is POSTed with Content-Type:
 * application/x-ndjson and Idempotency-Key: <spool-uuid>-<first>-<last>.
 *   2xx                  -> spool_advance(last seq)
 *   transient, endpoint,
 *   local                -> wait (full-jitter backoff, Retry-After honoured)
 *                           and resend the same range; nothing is dropped
 *                           (local too: the spool keeps everything, so a
 *                           retry is safer than stopping delivery)
 *   payload reject       -> bisect; an isolated record is dead-lettered
 *                           (REJECTED, or TOO_LARGE for 413) with the status
 *                           and the first 512 bytes of the reply
 *
 * Threads: a replay object belongs to the thread that runs its loop. Only
 * the test entry point exists so far (replay_run_until_drained); the
 * daemon's thread (replay_start/replay_stop with an ev_async) comes next.
 * Failures are logged at warn (log.h), at most one line per 10 s per
 * failing streak. */
#ifndef SPOOLCAP_REPLAY_H
#define SPOOLCAP_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "spoolcap/dictcache.h"
#include "spoolcap/event.h"
#include "spoolcap/replay_policy.h"
#include "spoolcap/spool.h"

#define REPLAY_DEF_BATCH_EVENTS   500
#define REPLAY_DEF_BATCH_BYTES    (4u << 20)    /* of NDJSON */
#define REPLAY_DEF_LINGER         0.1           /* s */
#define REPLAY_DEF_CONNECT_MS     5000
#define REPLAY_DEF_TIMEOUT_MS     30000
#define REPLAY_DEF_LOW_SPEED      1             /* bytes/s ... */
#define REPLAY_DEF_LOW_SPEED_TIME 30            /* ... for this many s */

/* Zero-initialise and set what you need: 0 / NULL means the default. */
typedef struct replay_config {
	const char *url;                /* required: http:// or https:// */
	size_t   batch_max_events;      /* default 500 */
	size_t   batch_max_bytes;       /* NDJSON bytes per POST; default 4 MiB (a
	                                 * single larger event still goes alone) */
	double   linger;                /* s to wait for a partial batch to fill, and
	                                 * the poll interval when the spool is empty;
	                                 * default 0.1, negative = 0 */
	long     connect_timeout_ms;    /* default 5000 */
	long     total_timeout_ms;      /* whole exchange; default 30000 */
	long     low_speed_limit;       /* bytes/s below which ... */
	long     low_speed_time;        /* ... for this many s a transfer is cut */
	uint64_t backoff_base_ms;       /* default REPLAY_BACKOFF_BASE_MS */
	uint64_t backoff_cap_ms;        /* default REPLAY_BACKOFF_CAP_MS */
	const char *const *headers;     /* extra "Name: value" lines (copied) */
	size_t   nheaders;
	const event_opts *event_opts;   /* NULL: event.h defaults (not copied) */
} replay_config;

/* Counters; read them from the replay's thread (or after it stopped). */
typedef struct replay_stats {
	uint64_t requests;              /* POSTs completed (any outcome) */
	uint64_t batches_ok;            /* 2xx answers (whole batches and sub-ranges) */
	uint64_t events_delivered;
	uint64_t bytes_sent;            /* body bytes of every POST */
	uint64_t retries[5];            /* by replay_class of the failure */
	uint64_t bisect_sends;          /* sub-range POSTs after a payload reject */
	uint64_t dead_letters;          /* rejected + too large + corrupt */
	uint64_t corrupt;               /* records that did not decode */
	uint64_t last_delay_ms;         /* the last backoff chosen */
} replay_stats;

typedef struct replay replay;

/* sp and dc must outlive the replay object; c is copied. Returns NULL with
 * a message in err (bad URL, no memory, libev/libcurl set-up failed). */
replay *replay_new(spool *sp, dictcache *dc, const replay_config *c,
                   char *err, size_t errlen);
void    replay_free(replay *r);

/* Runs the loop until no record is pending after the cursor (returns 0)
 * or timeout_s seconds passed (returns -1; a POST or backoff in progress
 * stays pending and resumes at the next call). Linger is not applied here:
 * a partial batch is sent at once. */
int     replay_run_until_drained(replay *r, double timeout_s);

const replay_stats *replay_get_stats(const replay *r);

#endif
