/* agent.h -- the SPOP agent: listeners, I/O threads, connections.
 *
 * agent_start() binds every listener and starts cfg->threads I/O threads,
 * each with its own libev loop; the calling thread keeps its own loop (the
 * main loop) for signals. I/O thread 0 also watches the listeners: it
 * accepts and hands each connection to the I/O thread with the fewest
 * connections, which then owns it for its whole life.
 *
 * Sink completions (sink_done_fn) may come from any thread until
 * agent_stop() returns and until the sink is destroyed; destroy the sink
 * (so it stops calling done) before agent_free(). */
#ifndef SPOOLCAP_AGENT_H
#define SPOOLCAP_AGENT_H

#include <stddef.h>
#include <stdint.h>
#include "spoolcap/sink.h"

#define AGENT_THREADS_MAX      SINK_WORKERS_MAX
#define AGENT_FRAME_SIZE_MAX   (16u << 20)  /* highest --max-frame-size */
#define AGENT_INFLIGHT_MAX     1024         /* pending sink calls per connection */
#define AGENT_ACK_BUCKETS      16           /* ACK latency histogram bounds */

typedef struct agent_config {
	const char **listen;       /* "HOST:PORT", "[V6]:PORT", "unix:PATH" */
	size_t   nlisten;
	unsigned threads;          /* I/O threads, 1 .. AGENT_THREADS_MAX (0 = online CPUs) */
	uint32_t max_frame_size;   /* our cap for LENGTH; 256 .. 16 MiB */
	unsigned max_connections;  /* across all threads; excess are closed */
	double   hello_timeout;    /* seconds to wait for HAPROXY-HELLO */
	double   idle_timeout;     /* seconds without a frame (0 = never) */
	const char *spooled_var;   /* txn var set in each ACK, NULL = none */
} agent_config;

typedef struct agent agent;

/* Validates cfg and parses the listen addresses (no side effects). Returns
 * NULL and a message in err on failure. The agent keeps its own copies. */
agent *agent_new(const agent_config *cfg, sink *s, char *err, size_t errlen);
/* Binds every listener (removing a stale unix socket only when nothing
 * accepts on it) and starts the I/O threads. */
int    agent_start(agent *a, char *err, size_t errlen);
/* Graceful stop: close listeners, stop reading, let pending sink calls
 * finish and ACK them for up to grace seconds, send AGENT-DISCONNECT 0 to
 * every peer, join threads, remove the unix socket files we created. */
void   agent_stop(agent *a, double grace);
void   agent_free(agent *a);

/* After agent_start: the listeners and the address each is bound to, with
 * the real port when port 0 was asked ("127.0.0.1:40123", "[::1]:12345",
 * "unix:/run/spoolcap.sock"). */
size_t      agent_listener_count(const agent *a);
const char *agent_listener_name(const agent *a, size_t i);

/* Counters, summed over threads (relaxed atomics; for logs and metrics). */
typedef struct agent_stats {
	uint64_t conns_accepted, conns_active, conns_rejected;
	uint64_t healthchecks;
	uint64_t frames_in, notifies, messages, acks;
	uint64_t bytes_in, bytes_out;
	uint64_t disconnects_sent[16];   /* by status code; index 15 = other */
	uint64_t haproxy_disconnects;
	/* ACK latency (a NOTIFY decoded -> its ACK queued for sending):
	 * ack_latency[i] counts ACKs with latency <= agent_ack_bounds_us[i]
	 * and above the previous bound (not cumulative); the last slot counts
	 * the rest. Every ACK is counted, so the slots sum to acks. */
	uint64_t ack_latency[AGENT_ACK_BUCKETS + 1];
	uint64_t ack_latency_sum_ns;
} agent_stats;
/* Upper bounds of the ACK latency buckets, microseconds. */
extern const uint32_t agent_ack_bounds_us[AGENT_ACK_BUCKETS];
void agent_get_stats(agent *a, agent_stats *out);

/* Parses a listen address. On success fills *family (AF_INET, AF_INET6,
 * AF_UNIX) and host/port or path; returns 0, else -1 with err filled.
 * HOST is a numeric IPv4 address, "*" or empty (all IPv4 addresses) or
 * "localhost" (127.0.0.1); [V6] a numeric IPv6 address ("[::]" = all).
 * PORT 0 lets the kernel pick one (see agent_listener_name). */
int agent_parse_addr(const char *spec, int *family, char *host, size_t hostlen,
                     unsigned *port, char *err, size_t errlen);

#endif
