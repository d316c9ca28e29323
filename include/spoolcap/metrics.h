/* metrics.h -- spoolcapd's HTTP endpoint for Prometheus and probes.
 *
 * A libmicrohttpd daemon on its own thread (never an I/O thread) serves
 *   GET /metrics  Prometheus text format 0.0.4: agent, spool, capture and
 *                 delivery counters (see spoolcapd(8), METRICS)
 *   GET /healthz  200 while the main loop runs (and while stopping), 503
 *                 when it has not ticked for METRICS_STALL_S
 *   GET /readyz   200 once listening with the spool open, 503 before and
 *                 while stopping
 * Every source is read at scrape time: the agent's and the sink's counters
 * (relaxed atomics summed over threads), replay_snapshot (thread-safe), and
 * spool_stat, cached for METRICS_SPOOL_STAT_TTL s so a scrape storm costs
 * the spool at most one read transaction per interval.
 *
 * Sources are set and replaced from the main thread; each setter takes the
 * metrics lock, so once it returns no scrape still uses the old source and
 * the caller may free it. Counters stay monotonic across a delivery reload:
 * metrics_set_replay folds the old engine's final counters in. */
#ifndef SPOOLCAP_METRICS_H
#define SPOOLCAP_METRICS_H

#include <stddef.h>

#include "spoolcap/agent.h"
#include "spoolcap/replay.h"
#include "spoolcap/sink.h"
#include "spoolcap/spool.h"

#define METRICS_SPOOL_STAT_TTL  1.0    /* s a spool_stat result is reused */
#define METRICS_STALL_S         10.0   /* main loop silent this long: unhealthy */
#define METRICS_HEARTBEAT_S     1.0    /* how often the main loop should tick */

typedef struct metrics metrics;

/* Parses listen ("HOST:PORT" or "[V6]:PORT"; port 0 = any free port).
 * Nothing is bound yet. NULL + err on failure. */
metrics *metrics_new(const char *listen, char *err, size_t errlen);
/* Binds and starts serving (its own thread, all signals blocked there).
 * 0, or -1 + err (address in use, ...). */
int   metrics_start(metrics *m, char *err, size_t errlen);
/* The bound address with the real port ("127.0.0.1:9120"). */
const char *metrics_listen_name(const metrics *m);
/* Stops serving (if started) and frees. NULL is fine. */
void  metrics_free(metrics *m);

/* Sources (any may be NULL). spool_sink is a spool_sink_new() sink. */
void  metrics_set_agent(metrics *m, agent *a);
void  metrics_set_spool(metrics *m, spool *sp, sink *spool_sink);
void  metrics_set_replay(metrics *m, replay *r);

/* State, from the main thread. */
void  metrics_heartbeat(metrics *m);            /* the main loop ticked */
void  metrics_set_ready(metrics *m, int ready); /* listening, spool open */
void  metrics_set_stopping(metrics *m);         /* /readyz 503 from now on */
void  metrics_reload_done(metrics *m, int ok);  /* a SIGHUP reload */

/* The /metrics body (malloc'd, NUL-terminated; *len without the NUL), or
 * NULL when out of memory. For tests and the server. */
char *metrics_render(metrics *m, size_t *len);

#endif
