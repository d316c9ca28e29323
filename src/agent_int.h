/* agent_int.h -- the agent's private structures, shared by agent.c (threads,
 * accept, completion queue), conn.c (one SPOP connection) and listen.c
 * (addresses and listening sockets). Not installed, not for other modules. */
#ifndef SPOOLCAP_AGENT_INT_H
#define SPOOLCAP_AGENT_INT_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "spoolcap/agent.h"
#include "spoolcap/sink.h"

#define AGENT_PEER_LEN       120    /* "unix:" + sun_path, or "[v6]:port" */
#define AGENT_ENGINE_ID_MAX  64     /* engine-id bytes kept (HAProxy: 36) */

/* Per-thread counters: one writer (the owning thread), any reader. A relaxed
 * load+store is a plain add on every CPU we care about (no lock prefix) and
 * still race-free for readers summing them. */
typedef _Atomic uint64_t agent_ctr;
static inline void agent_ctr_add(agent_ctr *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

struct agent_counters {
	agent_ctr conns_accepted, conns_rejected, healthchecks;
	agent_ctr frames_in, notifies, messages, acks;
	agent_ctr bytes_in, bytes_out;
	agent_ctr disconnects_sent[16];
	agent_ctr haproxy_disconnects;
	agent_ctr ack_latency[AGENT_ACK_BUCKETS + 1];
	agent_ctr ack_latency_sum_ns;
};

struct agent;
struct worker;
struct conn;

/* One listening socket; watched by worker 0. */
struct listener {
	struct agent *a;
	char    *spec;                    /* as configured */
	int      family;
	char     host[64];
	unsigned port;
	char    *path;                    /* AF_UNIX */
	int      fd;
	dev_t    dev;                     /* identity of the socket file we */
	ino_t    ino;                     /* created, to unlink only our own */
	int      unlink_on_close;
	char     name[AGENT_PEER_LEN];    /* bound address, for logs */
	ev_io    io;
	ev_timer backoff;                 /* accept paused after EMFILE */
	ev_tstamp last_backoff_log;
};

/* A NOTIFY handed to the sink. Slots come from a per-worker free list (no
 * malloc per frame); the slot's address is the sink token, and done() links
 * it onto the worker's completion list. */
struct pend {
	struct pend *next;
	struct conn *c;
	uint64_t sid, fid;
	int64_t  t_recv;                  /* CLOCK_MONOTONIC ns, for ACK latency */
	int      result;
};

/* A connection handed from worker 0 to another worker. */
struct newconn {
	int  fd;
	uint64_t id;
	const struct listener *l;
	char peer[AGENT_PEER_LEN];
};

struct worker {
	struct agent   *a;
	unsigned        idx;
	char            name[16];
	struct ev_loop *loop;
	pthread_t       thread;
	int             started;
	ev_async        wake;             /* new conns, completions, stop */
	ev_prepare      prep;             /* batched flushes and frees */
	ev_timer        grace;

	/* Inbox, filled by other threads (guarded by mu). */
	pthread_mutex_t mu;
	struct pend    *done_head;        /* completed slots, LIFO */
	struct newconn *inbox;
	size_t          ninbox, capinbox;
	int             stop_req;
	double          stop_grace;

	/* Owned by the worker thread. */
	struct conn    *conns;            /* open connections */
	struct conn    *zombies;          /* closed, sink calls still pending */
	struct conn    *dead;             /* to free in the prepare callback */
	struct conn    *dirty;            /* to flush in the prepare callback */
	struct pend    *free_pend;
	void          **pend_chunks;
	size_t          npend_chunks;
	int             stopping;

	_Atomic unsigned load;            /* connections assigned (for dispatch) */
	struct agent_counters ctr;
};

struct agent {
	agent_config    cfg;              /* with our own copies of strings */
	char          **listen_copy;
	char           *spooled_var;
	sink           *sink;
	struct listener *ls;
	size_t          nls;
	struct worker  *ws;
	unsigned        nws;
	int             started;

	/* Accept state (worker 0 only). */
	uint64_t        next_id;
	unsigned        rr;
	ev_tstamp       last_reject_log;
	uint64_t        rejects_unlogged;

	_Atomic unsigned nconns;          /* open connections, all workers */
};

/* listen.c */
int  agent_listener_open(struct listener *l, char *err, size_t errlen);
void agent_listener_close(struct listener *l);
/* Formats the peer of an accepted fd ("ip:port", "[ip6]:port", "unix:PATH"). */
void agent_peer_name(const struct listener *l, const void *sa, char *out, size_t outlen);

/* agent.c */
struct pend *agent_pend_get(struct worker *w);
void agent_pend_put(struct worker *w, struct pend *p);
void agent_sink_done(void *arg, uint64_t token, int result);
void agent_conn_released(struct worker *w);   /* an fd was closed */

/* conn.c */
void agent_conn_start(struct worker *w, int fd, uint64_t id,
                      const struct listener *l, const char *peer);
void agent_conn_complete(struct worker *w, struct pend *p);
void agent_conn_flush_dirty(struct worker *w);
void agent_conn_free_dead(struct worker *w);
void agent_conn_shutdown(struct conn *c);    /* graceful: drain, DISCONNECT 0 */
void agent_conn_abort(struct conn *c);       /* grace expired: close now */
void agent_conn_free_all(struct worker *w);  /* after the loop ended */
struct conn *agent_conn_next(const struct conn *c);
/* Best-effort AGENT-DISCONNECT on a fresh fd we will not serve. */
void agent_refuse(int fd, unsigned status, const char *why);

#endif
