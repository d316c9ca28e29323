/* replay.h -- the delivery engine: drains the spool to an HTTP event
 * processor as NDJSON batches (design.md "Delivery contract"), with the
 * policy of replay_policy.h (error classes, backoff, bisection).
 *
 * A replay object owns its own libev loop (ev_loop_new) and a libcurl multi
 * handle wired to it (spool-notes B.3). Up to max_inflight batches are in
 * flight, each on its own easy handle (keep-alive connections are reused);
 * batches are read in seq order after the last one taken, and the cursor
 * only moves over a contiguous prefix of batches that are delivered or
 * dead-lettered. While the endpoint fails, one batch at a time probes it.
 *
 * A batch: spool_read (values copied inside the short read transaction,
 * never held across I/O or a backoff), each record decoded and rendered
 * with event_render + '\n'. A record that does not decode (after reloading
 * the dictionaries once) is dead-lettered (SPOOL_DLQ_CORRUPT). The body is
 * POSTed, optionally gzip- or zstd-compressed, with Content-Type:
 * application/x-ndjson and Idempotency-Key: <spool-uuid>-<first>-<last>.
 *   2xx                  -> delivered (cursor moves when contiguous)
 *   transient, endpoint,
 *   local                -> endpoint-level backoff (full jitter, Retry-After
 *                           honoured), then the oldest failed batch probes;
 *                           nothing is dropped
 *   payload reject       -> bisect; an isolated record is dead-lettered
 *                           (REJECTED, or TOO_LARGE for 413) with the status
 *                           and the first 512 bytes of the reply
 *   head-of-line 5xx     -> a batch failing with 5xx/timeouts
 *                           persistent_5xx_attempts times in a row while an
 *                           empty probe POST succeeds is bisected; one record
 *                           failing that often over persistent_5xx_age s is
 *                           dead-lettered (PERSISTENT_5XX). Off with -1.
 *
 * Threads: a replay object belongs to the thread that runs its loop: the
 * caller's (replay_run_until_drained, tests and the CLI) or its own
 * (replay_start .. replay_stop, the daemon). replay_snapshot may be called
 * from any thread. Failures are logged at warn, at most one line per 10 s
 * per failing streak. */
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
#define REPLAY_DEF_MAX_INFLIGHT   2
#define REPLAY_MAX_INFLIGHT       64
#define REPLAY_DEF_P5XX_ATTEMPTS  20
#define REPLAY_DEF_P5XX_AGE       600.0         /* s */
#define REPLAY_DEF_STOP_TIMEOUT   5.0           /* s */
#define REPLAY_UNREACHED_CAP_MS   5000u         /* backoff cap when nothing answered */
#define REPLAY_THREAD_NICE        5             /* the daemon's delivery thread */

enum replay_compress { REPLAY_COMPRESS_NONE = 0, REPLAY_COMPRESS_GZIP, REPLAY_COMPRESS_ZSTD };

/* Where delivery stands (replay_snapshot). */
enum replay_state {
	REPLAY_ST_IDLE = 0,      /* nothing pending */
	REPLAY_ST_DELIVERING,    /* batches going out */
	REPLAY_ST_BACKOFF,       /* transient failures: waiting to retry */
	REPLAY_ST_PAUSED         /* endpoint/configuration error: waiting, see reason */
};

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
	const char *const *headers;     /* extra "Name: value" lines (copied; values
	                                 * read from files are resolved by the caller) */
	size_t   nheaders;
	unsigned max_inflight;          /* batches in flight; default 2, max 64 */
	int      compress;              /* enum replay_compress */
	int      compress_level;        /* 0 = a fast level (1 for gzip and zstd) */
	const char *ca_file, *ca_dir;   /* trust anchors; NULL = the system's */
	const char *client_cert;        /* PEM, for mTLS ... */
	const char *client_key;         /* ... and its key (NULL: in client_cert) */
	int      insecure;              /* 1: no certificate/host verification (warns) */
	int      persistent_5xx_attempts; /* 0 = default 20, -1 = never dead-letter */
	double   persistent_5xx_age;    /* s; 0 = default 600, negative = 0 */
	double   max_rate;              /* events/s, 0 = as fast as the endpoint takes */

	/* Copy mode (spoolcap replay --to): read every record (retained ones
	 * too) with from_seq <= seq <= to_seq (0: unbounded), never move the
	 * cursor or dead-letter; rejects and corrupt records are counted and
	 * logged. Drained when the range is exhausted. */
	int      copy;
	uint64_t from_seq, to_seq;
	/* Optional: called for each decoded record; 0 skips it (not sent, and
	 * in normal mode it counts as handled when the cursor passes it). */
	int    (*select)(void *arg, uint64_t seq, const record_view *v);
	void    *select_arg;
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
	uint64_t persistent_5xx;        /* of dead_letters: head-of-line 5xx */
	uint64_t probes;                /* empty POSTs sent to tell poison from outage */
	uint64_t last_delay_ms;         /* the last backoff chosen */
	uint64_t raw_bytes;             /* NDJSON bytes before request compression */
	uint64_t rejected;              /* copy mode: events the processor refused */
	uint64_t skipped;               /* records select() declined */
	int      state;                 /* enum replay_state */
	int      last_status;           /* last HTTP status, 0 = none */
	char     reason[160];           /* why backing off / paused ("" otherwise) */
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

/* The counters; only from the loop's thread or while no thread runs. */
const replay_stats *replay_get_stats(const replay *r);
/* A consistent copy of the counters, from any thread. */
void    replay_snapshot(replay *r, replay_stats *out);

/* Runs the loop forever on a new thread (the daemon): new records are
 * picked up within `linger` s. 0, or -1 with err. */
int     replay_start(replay *r, char *err, size_t errlen);
/* Stops that thread: no new batch is started, POSTs in flight get up to
 * grace_s s to finish (then they are cut and stay pending), the thread is
 * joined. Whatever was not delivered stays in the spool. Safe to call from
 * a signal-handling context of the main loop (not from a signal handler). */
void    replay_stop(replay *r, double grace_s);

const char *replay_state_name(int state);
const char *replay_compress_name(int c);
/* "none" | "gzip" | "zstd" -> enum, or -1. */
int     replay_compress_parse(const char *s);

#endif
