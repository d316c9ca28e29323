/* agent.c -- the agent's threads: one libev loop per I/O worker, accepting
 * on worker 0 with a least-loaded hand-off, the cross-thread inbox (new
 * connections, sink completions, stop), graceful stop and counters.
 * The SPOP work on each connection lives in conn.c.
 *
 * Accept model: worker 0 accepts every connection and hands the fd to the
 * worker with the fewest open connections (ties round-robin). HAProxy opens
 * few, long-lived agent connections (plus a short health check every few
 * seconds), so accept cost is irrelevant, and placement matters more: with
 * SO_REUSEPORT the kernel hashes the 4-tuple, which can put most of a
 * handful of busy connections on one thread, and it does not balance unix
 * sockets at all. One accepting thread also keeps --max-connections exact. */
#include <config.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent_int.h"
#include "spoolcap/log.h"
#include "spoolcap/spop.h"

#define ACCEPT_BATCH     64       /* accepts per wake-up, then let others run */
#define ACCEPT_BACKOFF   0.1      /* s to pause accepting after EMFILE */
#define PEND_CHUNK       256      /* sink slots allocated at a time */

/* ---- sink slots and completions ---- */

struct pend *agent_pend_get(struct worker *w)
{
	struct pend *p;

	if (!w->free_pend) {
		void **chunks = realloc(w->pend_chunks, (w->npend_chunks + 1) * sizeof(*chunks));
		struct pend *blk;
		if (!chunks)
			return NULL;
		w->pend_chunks = chunks;
		blk = malloc(PEND_CHUNK * sizeof(*blk));
		if (!blk)
			return NULL;
		w->pend_chunks[w->npend_chunks++] = blk;
		for (size_t i = 0; i < PEND_CHUNK; i++) {
			blk[i].next = w->free_pend;
			w->free_pend = &blk[i];
		}
	}
	p = w->free_pend;
	w->free_pend = p->next;
	return p;
}

void agent_pend_put(struct worker *w, struct pend *p)
{
	p->c = NULL;
	p->next = w->free_pend;
	w->free_pend = p;
}

/* sink_done_fn: any thread. The slot itself is the queue node, so this
 * cannot fail and allocates nothing. */
void agent_sink_done(void *arg, uint64_t token, int result)
{
	struct worker *w = arg;
	struct pend *p = (struct pend *)(uintptr_t)token;

	p->result = result;
	pthread_mutex_lock(&w->mu);
	p->next = w->done_head;
	w->done_head = p;
	pthread_mutex_unlock(&w->mu);
	ev_async_send(w->loop, &w->wake);
}

void agent_conn_released(struct worker *w)
{
	atomic_fetch_sub_explicit(&w->a->nconns, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&w->load, 1, memory_order_relaxed);
}

/* ---- stop ---- */

static void on_grace(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;
	struct conn *c;

	(void)revents;
	while ((c = w->conns))
		agent_conn_abort(c);      /* unlinks c from w->conns */
	ev_break(loop, EVBREAK_ONE);
}

static void begin_stop(struct worker *w, double grace)
{
	w->stopping = 1;
	if (w->idx == 0) {
		for (size_t i = 0; i < w->a->nls; i++) {
			ev_io_stop(w->loop, &w->a->ls[i].io);
			ev_timer_stop(w->loop, &w->a->ls[i].backoff);
		}
	}
	for (struct conn *c = w->conns, *next; c; c = next) {
		next = agent_conn_next(c);
		agent_conn_shutdown(c);
	}
	ev_timer_init(&w->grace, on_grace, grace > 0 ? grace : 0.001, 0.);
	w->grace.data = w;
	ev_timer_start(w->loop, &w->grace);
}

/* ---- per-loop hooks ---- */

static void on_wake(struct ev_loop *loop, ev_async *as, int revents)
{
	struct worker *w = as->data;
	struct pend *done, *fifo = NULL;
	struct newconn *in;
	size_t nin;
	int stop;
	double grace;

	(void)loop;
	(void)revents;
	pthread_mutex_lock(&w->mu);
	done = w->done_head;
	w->done_head = NULL;
	in = w->inbox;
	nin = w->ninbox;
	w->inbox = NULL;
	w->ninbox = w->capinbox = 0;
	stop = w->stop_req;
	grace = w->stop_grace;
	pthread_mutex_unlock(&w->mu);

	/* The list is LIFO; ACK in completion order. */
	while (done) {
		struct pend *next = done->next;
		done->next = fifo;
		fifo = done;
		done = next;
	}
	while (fifo) {
		struct pend *next = fifo->next;
		agent_conn_complete(w, fifo);
		fifo = next;
	}

	for (size_t i = 0; i < nin; i++) {
		if (w->stopping || stop) {
			close(in[i].fd);
			agent_conn_released(w);
		} else {
			agent_conn_start(w, in[i].fd, in[i].id, in[i].l, in[i].peer);
		}
	}
	free(in);

	if (stop && !w->stopping)
		begin_stop(w, grace);
}

/* Just before the loop sleeps: one flush per connection for everything
 * produced in this iteration, then free what was closed. */
static void on_prepare(struct ev_loop *loop, ev_prepare *pr, int revents)
{
	struct worker *w = pr->data;

	(void)revents;
	agent_conn_flush_dirty(w);
	agent_conn_free_dead(w);
	if (w->stopping && !w->conns)
		ev_break(loop, EVBREAK_ONE);
}

/* ---- accept (worker 0) ---- */

static struct worker *pick_worker(struct agent *a)
{
	unsigned best = a->rr % a->nws;
	unsigned bestload = atomic_load_explicit(&a->ws[best].load, memory_order_relaxed);

	for (unsigned i = 1; i < a->nws; i++) {
		unsigned j = (a->rr + i) % a->nws;
		unsigned l = atomic_load_explicit(&a->ws[j].load, memory_order_relaxed);
		if (l < bestload) {
			best = j;
			bestload = l;
		}
	}
	a->rr++;
	return &a->ws[best];
}

static void hand_off(struct worker *self, struct worker *to, int fd, uint64_t id,
                     const struct listener *l, const char *peer)
{
	struct newconn *nc;

	atomic_fetch_add_explicit(&to->load, 1, memory_order_relaxed);
	if (to == self) {
		agent_conn_start(to, fd, id, l, peer);
		return;
	}
	pthread_mutex_lock(&to->mu);
	if (to->ninbox == to->capinbox) {
		size_t cap = to->capinbox ? to->capinbox * 2 : 8;
		struct newconn *n = realloc(to->inbox, cap * sizeof(*n));
		if (!n) {
			pthread_mutex_unlock(&to->mu);
			log_error("conn#%llu %s: out of memory handing the connection to %s; closing",
			          (unsigned long long)id, peer, to->name);
			close(fd);
			agent_conn_released(to);
			return;
		}
		to->inbox = n;
		to->capinbox = cap;
	}
	nc = &to->inbox[to->ninbox++];
	nc->fd = fd;
	nc->id = id;
	nc->l = l;
	snprintf(nc->peer, sizeof(nc->peer), "%s", peer);
	pthread_mutex_unlock(&to->mu);
	ev_async_send(to->loop, &to->wake);
}

static void on_backoff(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct listener *l = t->data;

	(void)revents;
	ev_io_start(loop, &l->io);
}

static void on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
	struct listener *l = io->data;
	struct agent *a = l->a;
	struct worker *w0 = &a->ws[0];

	(void)revents;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char peer[AGENT_PEER_LEN];
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			switch (errno) {
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;
			case EAGAIN:
#if EWOULDBLOCK != EAGAIN
			case EWOULDBLOCK:
#endif
				return;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				/* Level-triggered: without a pause this would spin. */
				if (ev_now(loop) - l->last_backoff_log >= 1.0) {
					log_warn("accept on %s: %s; pausing accepts for %.0f ms (raise "
					         "the open-files limit or lower --max-connections)",
					         l->name, strerror(errno), ACCEPT_BACKOFF * 1000);
					l->last_backoff_log = ev_now(loop);
				}
				ev_io_stop(loop, &l->io);
				ev_timer_set(&l->backoff, ACCEPT_BACKOFF, 0.);
				ev_timer_start(loop, &l->backoff);
				return;
			default:
				log_error("accept on %s: %s", l->name, strerror(errno));
				return;
			}
		}
		if (sl == 0)
			ss.ss_family = AF_UNIX;
		agent_peer_name(l, &ss, peer, sizeof(peer));

		if (atomic_load_explicit(&a->nconns, memory_order_relaxed) >= a->cfg.max_connections) {
			ev_tstamp now = ev_now(loop);
			agent_ctr_add(&w0->ctr.conns_rejected, 1);
			agent_ctr_add(&w0->ctr.disconnects_sent[SPOP_ST_RES_ALLOC], 1);
			agent_refuse(fd, SPOP_ST_RES_ALLOC, "too many connections");
			/* One line per second at most: a refused HAProxy retries fast. */
			if (now - a->last_reject_log >= 1.0) {
				log_warn("%s: connection refused: --max-connections %u reached%s",
				         peer, a->cfg.max_connections,
				         a->rejects_unlogged ? " (more refusals not logged)" : "");
				a->last_reject_log = now;
				a->rejects_unlogged = 0;
			} else {
				a->rejects_unlogged++;
			}
			continue;
		}
		atomic_fetch_add_explicit(&a->nconns, 1, memory_order_relaxed);
		if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		hand_off(w0, pick_worker(a), fd, ++a->next_id, l, peer);
	}
}

/* ---- threads ---- */

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	log_set_thread_name(w->name);
	ev_run(w->loop, 0);
	return NULL;
}

static unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	if (n > AGENT_THREADS_MAX)
		return AGENT_THREADS_MAX;
	return (unsigned)n;
}

agent *agent_new(const agent_config *cfg, sink *s, char *err, size_t errlen)
{
	struct agent *a;

	if (!s) {
		snprintf(err, errlen, "agent: no sink");
		return NULL;
	}
	if (cfg->nlisten == 0) {
		snprintf(err, errlen, "no listen address configured");
		return NULL;
	}
	if (cfg->threads > AGENT_THREADS_MAX) {
		snprintf(err, errlen, "threads %u: at most %u I/O threads are supported",
		         cfg->threads, AGENT_THREADS_MAX);
		return NULL;
	}
	if (cfg->max_frame_size < SPOP_FRAME_SIZE_MIN || cfg->max_frame_size > AGENT_FRAME_SIZE_MAX) {
		snprintf(err, errlen, "max-frame-size %u: must be between %u and %u",
		         cfg->max_frame_size, SPOP_FRAME_SIZE_MIN, AGENT_FRAME_SIZE_MAX);
		return NULL;
	}
	if (cfg->max_connections < 1) {
		snprintf(err, errlen, "max-connections must be at least 1");
		return NULL;
	}
	if (!(cfg->hello_timeout > 0) || !(cfg->idle_timeout >= 0)) {
		snprintf(err, errlen, "hello-timeout must be > 0 and idle-timeout >= 0");
		return NULL;
	}
	if (cfg->spooled_var && (cfg->spooled_var[0] == '\0' || strlen(cfg->spooled_var) > 63)) {
		snprintf(err, errlen, "spooled-var must be 1 to 63 characters");
		return NULL;
	}

	a = calloc(1, sizeof(*a));
	if (!a)
		goto oom;
	a->cfg = *cfg;
	a->sink = s;
	if (a->cfg.threads == 0)
		a->cfg.threads = online_cpus();
	if (cfg->spooled_var) {
		a->spooled_var = strdup(cfg->spooled_var);
		if (!a->spooled_var)
			goto oom;
	}
	a->cfg.spooled_var = a->spooled_var;
	a->ls = calloc(cfg->nlisten, sizeof(*a->ls));
	if (!a->ls)
		goto oom;
	a->nls = cfg->nlisten;
	a->cfg.listen = NULL;
	for (size_t i = 0; i < a->nls; i++) {
		struct listener *l = &a->ls[i];
		char host[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];

		l->a = a;
		l->fd = -1;
		l->spec = strdup(cfg->listen[i]);
		if (!l->spec)
			goto oom;
		if (agent_parse_addr(l->spec, &l->family, host, sizeof(host), &l->port,
		                     err, errlen) < 0) {
			agent_free(a);
			return NULL;
		}
		if (l->family == AF_UNIX) {
			l->path = strdup(host);
			if (!l->path)
				goto oom;
		} else {
			/* agent_parse_addr gave a numeric address: it fits. */
			memcpy(l->host, host, strnlen(host, sizeof(l->host) - 1));
		}
		snprintf(l->name, sizeof(l->name), "%s", l->spec);
	}
	return a;
oom:
	snprintf(err, errlen, "out of memory");
	agent_free(a);
	return NULL;
}

static int worker_init(struct agent *a, struct worker *w, unsigned idx, char *err, size_t errlen)
{
	w->a = a;
	w->idx = idx;
	snprintf(w->name, sizeof(w->name), "io%u", idx);
	/* NOSIGMASK: signals belong to the main thread's loop. */
	w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
	if (!w->loop) {
		snprintf(err, errlen, "cannot create event loop for I/O thread %u", idx);
		return -1;
	}
	pthread_mutex_init(&w->mu, NULL);
	ev_async_init(&w->wake, on_wake);
	w->wake.data = w;
	ev_async_start(w->loop, &w->wake);
	ev_prepare_init(&w->prep, on_prepare);
	w->prep.data = w;
	ev_prepare_start(w->loop, &w->prep);
	return 0;
}

int agent_start(agent *a, char *err, size_t errlen)
{
	sigset_t all, old;
	size_t i;

	if (a->started) {
		snprintf(err, errlen, "agent already started");
		return -1;
	}
	for (i = 0; i < a->nls; i++) {
		if (agent_listener_open(&a->ls[i], err, errlen) < 0) {
			while (i-- > 0)
				agent_listener_close(&a->ls[i]);
			return -1;
		}
	}

	a->nws = a->cfg.threads;
	a->ws = calloc(a->nws, sizeof(*a->ws));
	if (!a->ws) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned k = 0; k < a->nws; k++)
		if (worker_init(a, &a->ws[k], k, err, errlen) < 0)
			goto fail;
	for (i = 0; i < a->nls; i++) {
		struct listener *l = &a->ls[i];
		ev_io_init(&l->io, on_accept, l->fd, EV_READ);
		l->io.data = l;
		ev_init(&l->backoff, on_backoff);
		l->backoff.data = l;
		ev_io_start(a->ws[0].loop, &l->io);
	}

	/* Threads inherit the mask: only the main thread takes signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned k = 0; k < a->nws; k++) {
		struct worker *w = &a->ws[k];
		int e = pthread_create(&w->thread, NULL, worker_main, w);
		if (e) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			snprintf(err, errlen, "cannot start I/O thread %u: %s", k, strerror(e));
			a->started = 1;
			agent_stop(a, 0);
			return -1;
		}
		w->started = 1;
		{
			char tname[16];
			snprintf(tname, sizeof(tname), "spoolcapd-io%u", k & 0xff);
			pthread_setname_np(w->thread, tname);
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	a->started = 1;
	return 0;
fail:
	for (i = 0; i < a->nls; i++)
		agent_listener_close(&a->ls[i]);
	return -1;
}

void agent_stop(agent *a, double grace)
{
	if (!a || !a->started)
		return;
	for (unsigned k = 0; k < a->nws; k++) {
		struct worker *w = &a->ws[k];
		if (!w->started)
			continue;
		pthread_mutex_lock(&w->mu);
		w->stop_req = 1;
		w->stop_grace = grace;
		pthread_mutex_unlock(&w->mu);
		ev_async_send(w->loop, &w->wake);
	}
	for (unsigned k = 0; k < a->nws; k++) {
		struct worker *w = &a->ws[k];
		if (w->started)
			pthread_join(w->thread, NULL);
		w->started = 0;
	}
	for (size_t i = 0; i < a->nls; i++)
		agent_listener_close(&a->ls[i]);
	a->started = 0;
}

void agent_free(agent *a)
{
	if (!a)
		return;
	agent_stop(a, 0);
	for (unsigned k = 0; a->ws && k < a->nws; k++) {
		struct worker *w = &a->ws[k];
		if (!w->loop)
			continue;
		agent_conn_free_all(w);
		for (size_t i = 0; i < w->ninbox; i++)
			close(w->inbox[i].fd);
		free(w->inbox);
		for (size_t i = 0; i < w->npend_chunks; i++)
			free(w->pend_chunks[i]);
		free(w->pend_chunks);
		ev_loop_destroy(w->loop);
		pthread_mutex_destroy(&w->mu);
	}
	free(a->ws);
	for (size_t i = 0; a->ls && i < a->nls; i++) {
		agent_listener_close(&a->ls[i]);
		free(a->ls[i].spec);
		free(a->ls[i].path);
	}
	free(a->ls);
	free(a->spooled_var);
	free(a);
}

size_t agent_listener_count(const agent *a)
{
	return a->nls;
}

const char *agent_listener_name(const agent *a, size_t i)
{
	return i < a->nls ? a->ls[i].name : NULL;
}

static uint64_t ld(agent_ctr *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

void agent_get_stats(agent *a, agent_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->conns_active = atomic_load_explicit(&a->nconns, memory_order_relaxed);
	for (unsigned k = 0; a->ws && k < a->nws; k++) {
		struct agent_counters *c = &a->ws[k].ctr;
		out->conns_accepted += ld(&c->conns_accepted);
		out->conns_rejected += ld(&c->conns_rejected);
		out->healthchecks += ld(&c->healthchecks);
		out->frames_in += ld(&c->frames_in);
		out->notifies += ld(&c->notifies);
		out->messages += ld(&c->messages);
		out->acks += ld(&c->acks);
		out->bytes_in += ld(&c->bytes_in);
		out->bytes_out += ld(&c->bytes_out);
		for (int i = 0; i < 16; i++)
			out->disconnects_sent[i] += ld(&c->disconnects_sent[i]);
		out->haproxy_disconnects += ld(&c->haproxy_disconnects);
		for (int i = 0; i <= AGENT_ACK_BUCKETS; i++)
			out->ack_latency[i] += ld(&c->ack_latency[i]);
		out->ack_latency_sum_ns += ld(&c->ack_latency_sum_ns);
	}
}
