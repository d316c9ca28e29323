/* spop-load.c -- SPOP load generator: plays HAProxy's side against an agent.
 *
 * Each thread drives its share of the connections from one epoll loop
 * (non-blocking sockets, TCP_NODELAY): HAPROXY-HELLO, wait for AGENT-HELLO,
 * then keep P NOTIFYs in flight per connection, sending a new one for every
 * ACK (or, with --rate, whenever the thread's token bucket allows). All the
 * frames ready for a connection go out in one write. Every ACK is checked
 * (type, FIN, sid/fid of an in-flight NOTIFY, well-formed actions) and its
 * latency -- NOTIFY put in the send buffer to ACK parsed, CLOCK_MONOTONIC --
 * goes into a fixed-size log-linear histogram. Memory is bounded by
 * connections x pipeline x frame size; nothing is allocated per message.
 *
 * Phases: connect + warmup (not measured), measurement (-d seconds), drain
 * (no new NOTIFYs, wait up to 2 s for the last ACKs), close
 * (HAPROXY-DISCONNECT, wait up to 1 s for AGENT-DISCONNECT or EOF). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "spoolcap/spop.h"
#include "capmsg.h"
#include "hist.h"

#define RBUF_SIZE      65536       /* ACKs are ~20 bytes; DISCONNECT < 300 */
#define MAX_PRINTED    20          /* error lines printed; the rest counted */
#define DRAIN_NS       2000000000LL
#define CLOSE_NS       1000000000LL
#define MAX_WAIT_NS    100000000LL /* epoll timeout cap: notice SIGINT */
#define MIN_TICK_NS    100000LL    /* --rate: shortest sleep between sends */

enum cstate { C_CONNECTING, C_HELLO, C_RUN, C_CLOSING, C_DEAD };

struct slot {
	uint64_t sid;                  /* 0 = free (our sids start at 1) */
	int64_t  t_ns;                 /* when the NOTIFY entered the send buffer */
};

struct worker;

struct conn {
	int      fd, id;               /* id: 0..conns-1, for messages */
	enum cstate state;
	struct worker *w;
	uint8_t *rbuf;
	size_t   rlen;
	uint8_t *wbuf;
	size_t   woff, wlen, wcap;
	struct slot *slots;
	unsigned mask;                 /* slots - 1 (power of two >= 2 P) */
	unsigned inflight;
	uint64_t next_sid;
	uint32_t max_frame;            /* negotiated LENGTH limit */
	int      want_out;             /* EPOLLOUT registered */
	int      queued, dirty;        /* in the ready queue / dirty list */
};

struct worker {
	unsigned idx;
	pthread_t th;
	int      ep;
	struct conn *conns;
	unsigned nconns, live;
	capmsg_gen gen;
	hist     lat;
	/* counters; "win" = within the measurement window */
	uint64_t acks_win, notifies_win, bytes_win, acks_all, notifies_all;
	uint64_t errors, bad_acks, unacked_at_end;
	/* --rate: token bucket and queue of connections with a free slot */
	double   rate, tokens, burst;
	int64_t  last_refill;
	unsigned *ready, rhead, rcount;
	unsigned *dirty, ndirty;
	int64_t  rt_offset_ns;         /* CLOCK_REALTIME - CLOCK_MONOTONIC */
	int      handshake_logged;
};

static struct opts {
	const char *target;
	int      family;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned conns, pipeline, threads;
	double   duration, warmup, rate;
	size_t   size;
	uint32_t max_frame;
	int      json;
} o = {
	.conns = 1, .pipeline = 1, .threads = 1, .duration = 10, .warmup = 1,
	.size = 1024, .max_frame = 65532,
};

/* timeline, CLOCK_MONOTONIC ns; set before the threads start */
static int64_t t_start, t_meas, t_end;
static _Atomic int64_t t_stop = INT64_MAX;  /* SIGINT: stop measuring now */
static atomic_uint n_printed;
static uint8_t hello_frame[256], bye_frame[64];
static size_t hello_len, bye_len;
/* what the first connection negotiated, for the report */
static pthread_mutex_t agent_info_lock = PTHREAD_MUTEX_INITIALIZER;
static char agent_info[256];

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t effective_end(void)
{
	int64_t s = atomic_load_explicit(&t_stop, memory_order_relaxed);

	return s < t_end ? s : t_end;
}

static void on_sigint(int sig)
{
	struct timespec ts;

	(void)sig;
	clock_gettime(CLOCK_MONOTONIC, &ts);   /* async-signal-safe */
	atomic_store(&t_stop, (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec);
}

__attribute__((format(printf, 2, 3)))
static void conn_err(struct conn *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	unsigned n;

	c->w->errors++;
	n = atomic_fetch_add(&n_printed, 1);
	if (n > MAX_PRINTED)
		return;
	if (n == MAX_PRINTED) {
		fprintf(stderr, "spop-load: more errors; counting them without printing\n");
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "spop-load: connection %d: %s\n", c->id, msg);
}

/* ---- connection plumbing ---- */

static void conn_close(struct conn *c)
{
	if (c->state == C_DEAD)
		return;
	c->w->unacked_at_end += c->inflight;  /* lost for good */
	if (c->fd >= 0)
		close(c->fd);             /* also leaves the epoll set */
	c->fd = -1;
	c->state = C_DEAD;
	c->w->live--;
}

static void set_events(struct conn *c, int out)
{
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0),
	                          .data.ptr = c };

	if (out == c->want_out)
		return;
	if (epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->want_out = out;
}

/* One write for everything queued; the rest waits for EPOLLOUT. */
static int conn_flush(struct conn *c)
{
	ssize_t n;

	while (c->woff < c->wlen) {
		n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
		if (n > 0) {
			c->woff += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			set_events(c, 1);
			return 0;
		}
		conn_err(c, "write to agent failed: %s (%u NOTIFYs in flight)",
		         n < 0 ? strerror(errno) : "no progress", c->inflight);
		conn_close(c);
		return -1;
	}
	c->woff = c->wlen = 0;
	set_events(c, 0);
	return 0;
}

static void mark_dirty(struct conn *c)
{
	if (!c->dirty) {
		c->dirty = 1;
		c->w->dirty[c->w->ndirty++] = (unsigned)(c - c->w->conns);
	}
}

static void flush_dirty(struct worker *w)
{
	unsigned i;

	for (i = 0; i < w->ndirty; i++) {
		struct conn *c = &w->conns[w->dirty[i]];

		c->dirty = 0;
		if (c->state != C_DEAD)
			conn_flush(c);
	}
	w->ndirty = 0;
}

static void ready_push(struct worker *w, struct conn *c)
{
	if (c->queued)
		return;
	c->queued = 1;
	w->ready[(w->rhead + w->rcount) % w->nconns] = (unsigned)(c - w->conns);
	w->rcount++;
}

static struct conn *ready_pop(struct worker *w)
{
	struct conn *c = &w->conns[w->ready[w->rhead]];

	w->rhead = (w->rhead + 1) % w->nconns;
	w->rcount--;
	c->queued = 0;
	return c;
}

/* Appends one NOTIFY to the send buffer and records it as in flight. */
static void conn_notify(struct conn *c, int64_t now)
{
	struct worker *w = c->w;
	uint64_t sid = c->next_sid;
	size_t n;

	/* an old NOTIFY still unacknowledged holds this slot: skip its sid */
	while (c->slots[sid & c->mask].sid)
		sid++;
	if (c->wcap - c->wlen < w->gen.max_frame) {
		memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
		c->wlen -= c->woff;
		c->woff = 0;
	}
	n = capmsg_emit(&w->gen, c->wbuf + c->wlen, sid,
	                (now + w->rt_offset_ns) / 1000000);
	c->wlen += n;
	c->slots[sid & c->mask] = (struct slot){ sid, now };
	c->next_sid = sid + 1;
	c->inflight++;
	w->notifies_all++;
	if (now >= t_meas) {
		w->notifies_win++;
		w->bytes_win += n;
	}
}

/* Keeps the pipeline full (no --rate) or offers the connection to the
 * token bucket (--rate). */
static void conn_refill(struct conn *c, int64_t now)
{
	if (c->state != C_RUN || now >= effective_end())
		return;
	if (o.rate > 0) {
		if (c->inflight < o.pipeline)
			ready_push(c->w, c);
		return;
	}
	while (c->inflight < o.pipeline)
		conn_notify(c, now);
}

static void on_agent_hello(struct conn *c, const spop_frame *f, int64_t now)
{
	spop_hello h;
	int rc;

	rc = spop_hello_parse(f->payload, f->payload_len, &h);
	if (rc < 0) {
		conn_err(c, "malformed AGENT-HELLO: %s", spop_strerror(rc));
		conn_close(c);
		return;
	}
	if (!h.has_versions || !spop_versions_support(h.versions, 2, 0)) {
		conn_err(c, "AGENT-HELLO without version 2.0 (got \"%.*s\")",
		         (int)h.versions.len, (const char *)h.versions.ptr);
		conn_close(c);
		return;
	}
	if (!h.has_max_frame_size || h.max_frame_size < SPOP_FRAME_SIZE_MIN ||
	    h.max_frame_size > o.max_frame) {
		conn_err(c, "AGENT-HELLO max-frame-size %llu is outside 256..%u",
		         (unsigned long long)h.max_frame_size, o.max_frame);
		conn_close(c);
		return;
	}
	if (o.pipeline > 1 && !spop_list_has(h.capabilities, "pipelining")) {
		conn_err(c, "the agent did not accept \"pipelining\" (capabilities \"%.*s\"); "
		         "run with -p 1", (int)h.capabilities.len,
		         (const char *)h.capabilities.ptr);
		conn_close(c);
		return;
	}
	c->max_frame = (uint32_t)h.max_frame_size;
	if (c->w->gen.max_frame - 4 > c->max_frame) {
		conn_err(c, "NOTIFYs of up to %zu bytes exceed the agent's max-frame-size %u "
		         "(its answer to our %u); lower --size", c->w->gen.max_frame - 4,
		         c->max_frame, o.max_frame);
		conn_close(c);
		return;
	}
	pthread_mutex_lock(&agent_info_lock);
	if (!agent_info[0])
		snprintf(agent_info, sizeof(agent_info),
		         "version \"%.*s\", max-frame-size %u, capabilities \"%.*s\"",
		         (int)h.versions.len, (const char *)h.versions.ptr, c->max_frame,
		         (int)h.capabilities.len, (const char *)h.capabilities.ptr);
	pthread_mutex_unlock(&agent_info_lock);
	c->state = C_RUN;
	conn_refill(c, now);
}

static void on_disconnect(struct conn *c, const spop_frame *f)
{
	spop_disconnect d;
	int rc;

	rc = spop_disconnect_parse(f->payload, f->payload_len, &d);
	if (c->state == C_CLOSING && rc == 0 && d.has_status && d.status == 0) {
		conn_close(c);                    /* the normal end */
		return;
	}
	if (rc < 0)
		conn_err(c, "malformed AGENT-DISCONNECT: %s", spop_strerror(rc));
	else
		conn_err(c, "agent sent DISCONNECT, status %llu (%s), message \"%.*s\", "
		         "with %u NOTIFYs unacknowledged",
		         (unsigned long long)d.status, spop_status_str((unsigned)d.status),
		         (int)d.message.len, (const char *)d.message.ptr, c->inflight);
	conn_close(c);
}

static void on_ack(struct conn *c, const spop_frame *f, int64_t now)
{
	struct worker *w = c->w;
	struct slot *s = &c->slots[f->sid & c->mask];
	spop_action a;
	spop_iter it;
	int rc;

	if (!(f->flags & SPOP_FLAG_FIN) || f->fid != 1 || f->sid == 0 || s->sid != f->sid) {
		w->bad_acks++;
		conn_err(c, "ACK sid %llu fid %llu flags %#x matches no NOTIFY in flight",
		         (unsigned long long)f->sid, (unsigned long long)f->fid,
		         (unsigned)f->flags);
		return;
	}
	spop_iter_init(&it, f->payload, f->payload_len);
	while ((rc = spop_action_next(&it, &a)) > 0)
		;
	if (rc < 0) {
		w->bad_acks++;
		conn_err(c, "ACK sid %llu has malformed actions: %s",
		         (unsigned long long)f->sid, spop_strerror(rc));
	}
	if (s->t_ns >= t_meas)
		hist_add(&w->lat, (uint64_t)(now - s->t_ns));
	s->sid = 0;
	c->inflight--;
	w->acks_all++;
	if (now >= t_meas && now < effective_end())
		w->acks_win++;
	conn_refill(c, now);
}

/* Parses every whole frame in the read buffer. */
static void conn_parse(struct conn *c, int64_t now)
{
	size_t off = 0, used;
	spop_frame f;
	uint32_t lim;
	int rc;

	while (c->state != C_DEAD) {
		lim = c->state == C_HELLO ? RBUF_SIZE - 4 : c->max_frame;
		if (lim > RBUF_SIZE - 4)
			lim = RBUF_SIZE - 4;
		rc = spop_frame_get(c->rbuf + off, c->rlen - off, lim, &f, &used);
		if (rc == 0)
			break;
		if (rc < 0) {
			conn_err(c, "bad frame from the agent: %s", spop_strerror(rc));
			conn_close(c);
			return;
		}
		off += used;
		if (f.type == SPOP_FRAME_AGENT_DISCONNECT) {
			on_disconnect(c, &f);
		} else if (c->state == C_HELLO) {
			if (f.type == SPOP_FRAME_AGENT_HELLO) {
				on_agent_hello(c, &f, now);
			} else {
				conn_err(c, "expected AGENT-HELLO, got frame type %u", f.type);
				conn_close(c);
			}
		} else if (f.type == SPOP_FRAME_ACK) {
			on_ack(c, &f, now);
		} else {
			conn_err(c, "unexpected frame type %u (sid %llu)", f.type,
			         (unsigned long long)f.sid);
		}
	}
	if (c->state == C_DEAD)
		return;
	if (off) {
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
	}
}

static void conn_read(struct conn *c, int64_t now)
{
	ssize_t n;
	size_t room;

	while (c->state != C_DEAD) {
		room = RBUF_SIZE - c->rlen;
		n = read(c->fd, c->rbuf + c->rlen, room);
		if (n > 0) {
			c->rlen += (size_t)n;
			conn_parse(c, now);
			if ((size_t)n < room)
				return;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (c->state == C_CLOSING) {
			conn_close(c);            /* EOF after our DISCONNECT: fine */
			return;
		}
		if (n == 0)
			conn_err(c, "agent closed the connection (EOF)%s with %u NOTIFYs "
			         "unacknowledged", c->state == C_HELLO ? " before AGENT-HELLO" : "",
			         c->inflight);
		else
			conn_err(c, "read from agent failed: %s, with %u NOTIFYs unacknowledged",
			         strerror(errno), c->inflight);
		conn_close(c);
	}
}

static void conn_connected(struct conn *c)
{
	int one = 1;

	if (o.family != AF_UNIX)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->state = C_HELLO;
	memcpy(c->wbuf, hello_frame, hello_len);
	c->wlen = hello_len;
	conn_flush(c);
}

static void conn_event(struct conn *c, uint32_t ev, int64_t now)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (c->state == C_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			conn_err(c, "cannot connect to %s: %s (is the agent running?)",
			         o.target, strerror(err));
			conn_close(c);
			return;
		}
		conn_connected(c);
		return;
	}
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_read(c, now);
	if (c->state == C_DEAD)
		return;
	if (c->wlen > c->woff)
		conn_flush(c);
}

static int conn_open(struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	int fd, fl;

	fd = socket(o.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		conn_err(c, "socket: %s", strerror(errno));
		return -1;
	}
	c->fd = fd;
	if (o.family == AF_UNIX) {
		/* a non-blocking unix connect fails with EAGAIN on a full backlog */
		if (connect(fd, (struct sockaddr *)&o.addr, o.addrlen) < 0) {
			conn_err(c, "cannot connect to %s: %s (is the agent running?)",
			         o.target, strerror(errno));
			return -1;
		}
	}
	fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (o.family != AF_UNIX &&
	    connect(fd, (struct sockaddr *)&o.addr, o.addrlen) < 0 &&
	    errno != EINPROGRESS) {
		conn_err(c, "cannot connect to %s: %s (is the agent running?)",
		         o.target, strerror(errno));
		return -1;
	}
	c->state = C_CONNECTING;
	if (o.family == AF_UNIX)
		c->state = C_HELLO;
	else
		ev.events |= EPOLLOUT;
	c->want_out = !!(ev.events & EPOLLOUT);
	if (epoll_ctl(c->w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		conn_err(c, "epoll_ctl: %s", strerror(errno));
		return -1;
	}
	if (o.family == AF_UNIX)
		conn_connected(c);
	return 0;
}

/* ---- the per-thread loop ---- */

static void token_pass(struct worker *w, int64_t now)
{
	w->tokens += (double)(now - w->last_refill) * w->rate / 1e9;
	if (w->tokens > w->burst)
		w->tokens = w->burst;
	w->last_refill = now;
	while (w->tokens >= 1 && w->rcount) {
		struct conn *c = ready_pop(w);

		if (c->state != C_RUN || c->inflight >= o.pipeline)
			continue;
		conn_notify(c, now);
		mark_dirty(c);
		w->tokens -= 1;
		if (c->inflight < o.pipeline)
			ready_push(w, c);
	}
}

static void begin_close(struct worker *w)
{
	unsigned i;

	for (i = 0; i < w->nconns; i++) {
		struct conn *c = &w->conns[i];

		if (c->state == C_DEAD)
			continue;
		if (c->state != C_RUN) {      /* never finished its handshake */
			conn_close(c);
			continue;
		}
		if (c->wcap - c->wlen < bye_len) {
			conn_close(c);
			continue;
		}
		memcpy(c->wbuf + c->wlen, bye_frame, bye_len);
		c->wlen += bye_len;
		c->state = C_CLOSING;
		conn_flush(c);
	}
}

static unsigned total_inflight(const struct worker *w)
{
	unsigned i, n = 0;

	for (i = 0; i < w->nconns; i++)
		if (w->conns[i].state == C_RUN)
			n += w->conns[i].inflight;
	return n;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[64];
	int64_t now, end, wait_ns;
	struct timespec ts;
	int closing = 0, n, i;
	unsigned k;

	for (k = 0; k < w->nconns; k++)
		if (conn_open(&w->conns[k]) < 0)
			conn_close(&w->conns[k]);
	w->last_refill = mono_ns();
	for (;;) {
		now = mono_ns();
		end = effective_end();
		if (!w->live)
			break;
		if (!closing && now >= end &&
		    (total_inflight(w) == 0 || now >= end + DRAIN_NS)) {
			begin_close(w);
			closing = 1;
		}
		if (closing && (!w->live || now >= end + DRAIN_NS + CLOSE_NS))
			break;
		if (o.rate > 0 && now < end)
			token_pass(w, now);
		flush_dirty(w);

		wait_ns = MAX_WAIT_NS;
		if (now < end && end - now < wait_ns)
			wait_ns = end - now;
		if (o.rate > 0 && now < end && w->rcount && w->tokens < 1) {
			int64_t t = (int64_t)((1 - w->tokens) * 1e9 / w->rate) + 1;

			/* a wake-up per token costs more CPU than the agent spends
			 * on the message: tick at most every MIN_TICK_NS */
			if (t < MIN_TICK_NS)
				t = MIN_TICK_NS;
			if (t < wait_ns)
				wait_ns = t;
		}
		ts.tv_sec = wait_ns / 1000000000LL;
		ts.tv_nsec = wait_ns % 1000000000LL;
		n = epoll_pwait2(w->ep, evs, 64, &ts, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "spop-load: epoll_pwait2: %s\n", strerror(errno));
			w->errors++;
			break;
		}
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->state != C_DEAD)
				conn_event(c, evs[i].events, mono_ns());
		}
	}
	for (k = 0; k < w->nconns; k++)
		conn_close(&w->conns[k]);
	return NULL;
}

/* ---- setup ---- */

static int parse_target(const char *spec, char *err, size_t errlen)
{
	char host[256];
	const char *port, *h = spec;
	struct addrinfo hints, *res;
	size_t hl;
	int rc;

	if (!strncmp(spec, "unix:", 5)) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&o.addr;

		if (strlen(spec + 5) >= sizeof(sun->sun_path) || !spec[5]) {
			snprintf(err, errlen, "unix socket path empty or too long: %s", spec + 5);
			return -1;
		}
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, spec + 5);
		o.family = AF_UNIX;
		o.addrlen = sizeof(*sun);
		return 0;
	}
	if (*h == '[') {
		port = strstr(h, "]:");
		if (!port)
			goto bad;
		hl = (size_t)(port - h - 1);
		h++;
		port += 2;
	} else {
		port = strrchr(h, ':');
		if (!port)
			goto bad;
		hl = (size_t)(port - h);
		port++;
	}
	if (!hl || hl >= sizeof(host) || !*port)
		goto bad;
	memcpy(host, h, hl);
	host[hl] = 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "cannot resolve %s: %s", spec, gai_strerror(rc));
		return -1;
	}
	memcpy(&o.addr, res->ai_addr, res->ai_addrlen);
	o.addrlen = res->ai_addrlen;
	o.family = res->ai_family;
	freeaddrinfo(res);
	return 0;
bad:
	snprintf(err, errlen, "bad --connect \"%s\": use HOST:PORT, [IPV6]:PORT or unix:PATH",
	         spec);
	return -1;
}

static void build_fixed_frames(void)
{
	spop_wbuf w;
	size_t at;

	spop_wbuf_init(&w, hello_frame, sizeof(hello_frame));
	at = spop_frame_begin(&w, SPOP_FRAME_HAPROXY_HELLO, SPOP_FLAG_FIN, 0, 0);
	spop_put_name(&w, "supported-versions", 18);
	spop_put_str(&w, SPOP_T_STRING, SPOP_VERSION, 3);
	spop_put_name(&w, "max-frame-size", 14);
	spop_put_uint(&w, SPOP_T_UINT32, o.max_frame);
	spop_put_name(&w, "capabilities", 12);
	spop_put_str(&w, SPOP_T_STRING, "pipelining", 10);
	spop_put_name(&w, "engine-id", 9);
	spop_put_str(&w, SPOP_T_STRING, "5b0e5a44-9a5c-4d4e-8f53-73706f6f6c63", 36);
	hello_len = spop_frame_end(&w, at);

	spop_wbuf_init(&w, bye_frame, sizeof(bye_frame));
	at = spop_frame_begin(&w, SPOP_FRAME_HAPROXY_DISCONNECT, SPOP_FLAG_FIN, 0, 0);
	spop_put_name(&w, "status-code", 11);
	spop_put_uint(&w, SPOP_T_UINT32, SPOP_ST_NORMAL);
	spop_put_name(&w, "message", 7);
	spop_put_str(&w, SPOP_T_STRING, "", 0);
	bye_len = spop_frame_end(&w, at);
}

static int worker_init(struct worker *w, unsigned idx, char *err, size_t errlen)
{
	unsigned k, nslots = 2;
	struct timespec rt;

	w->idx = idx;
	hist_init(&w->lat);
	if (capmsg_init(&w->gen, o.size, idx, 0x9e3779b97f4a7c15ULL * (idx + 1) ^
	                (uint64_t)time(NULL), err, errlen) < 0)
		return -1;
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0) {
		snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
		return -1;
	}
	/* connections idx, idx + T, idx + 2T, ... */
	w->nconns = o.conns / o.threads + (idx < o.conns % o.threads);
	w->conns = calloc(w->nconns ? w->nconns : 1, sizeof(*w->conns));
	w->ready = calloc(w->nconns ? w->nconns : 1, sizeof(unsigned));
	w->dirty = calloc(w->nconns ? w->nconns : 1, sizeof(unsigned));
	if (!w->conns || !w->ready || !w->dirty)
		goto oom;
	while (nslots < 2 * o.pipeline)
		nslots <<= 1;
	for (k = 0; k < w->nconns; k++) {
		struct conn *c = &w->conns[k];

		c->fd = -1;
		c->id = (int)(idx + k * o.threads);
		c->w = w;
		c->state = C_CONNECTING;
		c->next_sid = 1;
		c->mask = nslots - 1;
		c->wcap = (size_t)(o.pipeline + 2) * w->gen.max_frame + sizeof(hello_frame);
		c->rbuf = malloc(RBUF_SIZE);
		c->wbuf = malloc(c->wcap);
		c->slots = calloc(nslots, sizeof(*c->slots));
		if (!c->rbuf || !c->wbuf || !c->slots)
			goto oom;
	}
	w->live = w->nconns;
	w->rate = o.rate / o.threads;
	w->burst = w->rate / 100 > 8 ? w->rate / 100 : 8;   /* 10 ms of sends */
	clock_gettime(CLOCK_REALTIME, &rt);
	w->rt_offset_ns = (int64_t)rt.tv_sec * 1000000000LL + rt.tv_nsec - mono_ns();
	return 0;
oom:
	snprintf(err, errlen, "out of memory for %u connections x %u in flight x %zu bytes",
	         o.conns, o.pipeline, w->gen.max_frame);
	return -1;
}

static void worker_free(struct worker *w)
{
	unsigned k;

	for (k = 0; w->conns && k < w->nconns; k++) {
		free(w->conns[k].rbuf);
		free(w->conns[k].wbuf);
		free(w->conns[k].slots);
	}
	free(w->conns);
	free(w->ready);
	free(w->dirty);
	capmsg_free(&w->gen);
	if (w->ep >= 0)
		close(w->ep);
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: spop-load --connect HOST:PORT|[V6]:PORT|unix:PATH [options]\n"
"Plays HAProxy's side of SPOP against an agent: C connections, P NOTIFYs in\n"
"flight on each, realistic \"cap-req\" capture messages; prints NOTIFY+ACK/s\n"
"and ACK latency percentiles.\n"
"  -c, --conns N          connections (default 1)\n"
"  -p, --pipeline N       NOTIFYs in flight per connection (default 1)\n"
"  -t, --threads N        generator threads, one epoll loop each (default 1)\n"
"  -d, --duration S       measured seconds (default 10)\n"
"  -w, --warmup S         unmeasured seconds first (default 1)\n"
"  -r, --rate N[/s]       pace NOTIFYs to N per second in total (default: as fast\n"
"                         as ACKs come back); k/m suffixes allowed\n"
"  -s, --size BYTES       NOTIFY frame size to aim for (default 1024)\n"
"  -m, --max-frame-size N announced in HAPROXY-HELLO (default 65532)\n"
"  -j, --json             print one JSON line instead of the text report\n"
"  -h, --help\n");
}

static int parse_num(const char *s, double *out)
{
	char *e;
	double v;

	errno = 0;
	v = strtod(s, &e);
	if (e == s || errno)
		return -1;
	if (*e == 'k' || *e == 'K')
		v *= 1e3, e++;
	else if (*e == 'm' || *e == 'M')
		v *= 1e6, e++;
	if (!strcmp(e, "/s"))
		e += 2;
	if (*e || v < 0)
		return -1;
	*out = v;
	return 0;
}

static void parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "connect", required_argument, NULL, 'C' },
		{ "conns", required_argument, NULL, 'c' },
		{ "pipeline", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "rate", required_argument, NULL, 'r' },
		{ "size", required_argument, NULL, 's' },
		{ "max-frame-size", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char err[256];
	double v;
	int ch;

	while ((ch = getopt_long(argc, argv, "C:c:p:t:d:w:r:s:m:jh", lo, NULL)) != -1) {
		if (ch == 'h') {
			usage(stdout);
			exit(0);
		}
		if (ch == 'j') {
			o.json = 1;
			continue;
		}
		if (ch == 'C') {
			o.target = optarg;
			continue;
		}
		if (ch == '?' || parse_num(optarg, &v) < 0) {
			if (ch != '?')
				fprintf(stderr, "spop-load: bad number \"%s\" for -%c\n", optarg, ch);
			usage(stderr);
			exit(2);
		}
		switch (ch) {
		case 'c': o.conns = (unsigned)v; break;
		case 'p': o.pipeline = (unsigned)v; break;
		case 't': o.threads = (unsigned)v; break;
		case 'd': o.duration = v; break;
		case 'w': o.warmup = v; break;
		case 'r': o.rate = v; break;
		case 's': o.size = (size_t)v; break;
		case 'm': o.max_frame = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v; break;
		}
	}
	if (optind < argc || !o.target) {
		fprintf(stderr, "spop-load: %s\n", o.target ? "unexpected argument"
		        : "--connect is required");
		usage(stderr);
		exit(2);
	}
	if (!o.conns || o.conns > 100000 || !o.pipeline || o.pipeline > 4096 ||
	    !o.threads || o.threads > 256 || o.duration <= 0 ||
	    o.size < 64 || o.size > 16u << 20 || o.max_frame < SPOP_FRAME_SIZE_MIN) {
		fprintf(stderr, "spop-load: out of range: need 1 <= -c <= 100000, "
		        "1 <= -p <= 4096, 1 <= -t <= 256, -d > 0, 64 <= -s <= 16 MiB, "
		        "-m >= 256\n");
		exit(2);
	}
	if (o.threads > o.conns)
		o.threads = o.conns;
	if (parse_target(o.target, err, sizeof(err)) < 0) {
		fprintf(stderr, "spop-load: %s\n", err);
		exit(2);
	}
}

/* The target as a JSON string body: escapes quotes, backslashes, controls. */
static const char *json_target(char *out, size_t len)
{
	const char *s = o.target;
	size_t n = 0;

	for (; *s && n + 7 < len; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			n += (size_t)snprintf(out + n, len - n, "\\%c", ch);
		else if (ch < 0x20)
			n += (size_t)snprintf(out + n, len - n, "\\u%04x", ch);
		else
			out[n++] = (char)ch;
	}
	out[n] = 0;
	return out;
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

int main(int argc, char **argv)
{
	struct worker *ws;
	struct sigaction sa;
	struct rusage ru;
	hist lat;
	uint64_t acks = 0, notifies = 0, bytes = 0, errors = 0, bad = 0, unacked = 0;
	double secs, cpu, wall;
	char err[256];
	unsigned i;
	int64_t stop, joined;
	double cpu0;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	build_fixed_frames();

	ws = calloc(o.threads, sizeof(*ws));
	if (!ws) {
		fprintf(stderr, "spop-load: out of memory\n");
		return 1;
	}
	for (i = 0; i < o.threads; i++)
		ws[i].ep = -1;
	for (i = 0; i < o.threads; i++) {
		if (worker_init(&ws[i], i, err, sizeof(err)) < 0) {
			fprintf(stderr, "spop-load: %s\n", err);
			return 1;
		}
	}
	if (ws[0].gen.max_frame - 4 > o.max_frame) {
		fprintf(stderr, "spop-load: NOTIFYs of up to %zu bytes do not fit the announced "
		        "max-frame-size %u: lower --size or raise --max-frame-size\n",
		        ws[0].gen.max_frame - 4, o.max_frame);
		return 2;
	}
	if (o.json == 0)
		fprintf(stderr, "spop-load: %s, %u thread%s, %u connection%s x %u in flight, "
		        "~%zu-byte NOTIFYs, %s, %.1f s (+%.1f s warmup)\n",
		        o.target, o.threads, o.threads > 1 ? "s" : "", o.conns,
		        o.conns > 1 ? "s" : "", o.pipeline, capmsg_avg_size(&ws[0].gen),
		        o.rate > 0 ? "paced" : "unpaced", o.duration, o.warmup);
	getrusage(RUSAGE_SELF, &ru);          /* leave template building out */
	cpu0 = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	if (capmsg_avg_size(&ws[0].gen) > o.size + o.size / 20)
		fprintf(stderr, "spop-load: note: --size %zu is below what the message's fixed "
		        "fields need; NOTIFYs are ~%zu bytes\n", o.size,
		        capmsg_avg_size(&ws[0].gen));
	t_start = mono_ns();
	t_meas = t_start + (int64_t)(o.warmup * 1e9);
	t_end = t_meas + (int64_t)(o.duration * 1e9);
	for (i = 0; i < o.threads; i++) {
		if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i])) {
			fprintf(stderr, "spop-load: cannot start thread %u\n", i);
			return 1;
		}
	}
	hist_init(&lat);
	for (i = 0; i < o.threads; i++) {
		pthread_join(ws[i].th, NULL);
		hist_merge(&lat, &ws[i].lat);
		acks += ws[i].acks_win;
		notifies += ws[i].notifies_win;
		bytes += ws[i].bytes_win;
		errors += ws[i].errors;
		bad += ws[i].bad_acks;
		unacked += ws[i].unacked_at_end;
	}
	joined = mono_ns();
	wall = (double)(joined - t_start) / 1e9;
	getrusage(RUSAGE_SELF, &ru);
	cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	      (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6 - cpu0;
	/* every connection gone before the end: measure up to then */
	stop = effective_end();
	if (joined < stop) {
		stop = joined;
		fprintf(stderr, "spop-load: no connection left after %.2f s; stopped early\n",
		        (double)(joined - t_start) / 1e9);
	}
	secs = stop > t_meas ? (double)(stop - t_meas) / 1e9 : 0;

	if (o.json) {
		printf("{\"target\":\"%s\",\"threads\":%u,\"conns\":%u,\"pipeline\":%u,"
		       "\"size\":%zu,\"frame_bytes\":%zu,\"rate_target\":%.0f,"
		       "\"duration_s\":%.3f,\"acks\":%llu,\"notifies\":%llu,"
		       "\"rate\":%.0f,\"notify_rate\":%.0f,\"mb_s\":%.1f,"
		       "\"lat_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p99_9\":%.1f,"
		       "\"max\":%.1f,\"mean\":%.1f,\"n\":%llu},\"errors\":%llu,"
		       "\"bad_acks\":%llu,\"unacked\":%llu,\"cpu_pct\":%.0f,"
		       "\"cpu_s\":%.3f,\"wall_s\":%.3f}\n",
		       json_target(err, sizeof(err)), o.threads, o.conns, o.pipeline, o.size,
		       capmsg_avg_size(&ws[0].gen), o.rate, secs,
		       (unsigned long long)acks, (unsigned long long)notifies,
		       secs > 0 ? acks / secs : 0, secs > 0 ? notifies / secs : 0,
		       secs > 0 ? bytes / secs / 1e6 : 0,
		       us(hist_quantile(&lat, 0.5)), us(hist_quantile(&lat, 0.9)),
		       us(hist_quantile(&lat, 0.99)), us(hist_quantile(&lat, 0.999)),
		       us(lat.count ? lat.max : 0), hist_mean(&lat) / 1000.0,
		       (unsigned long long)lat.count, (unsigned long long)errors,
		       (unsigned long long)bad, (unsigned long long)unacked,
		       wall > 0 ? 100.0 * cpu / wall : 0, cpu, wall);
	} else {
		if (agent_info[0])
			printf("agent        %s\n", agent_info);
		printf("NOTIFY+ACK   %llu in %.2f s = %.0f msgs/s (%.1f MB/s of NOTIFY frames)\n",
		       (unsigned long long)acks, secs, secs > 0 ? acks / secs : 0,
		       secs > 0 ? bytes / secs / 1e6 : 0);
		if (o.rate > 0)
			printf("paced        target %.0f/s, achieved %.0f NOTIFY/s\n", o.rate,
			       secs > 0 ? notifies / secs : 0);
		printf("ACK latency  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  "
		       "mean %.1f us (%llu samples)\n",
		       us(hist_quantile(&lat, 0.5)), us(hist_quantile(&lat, 0.9)),
		       us(hist_quantile(&lat, 0.99)), us(hist_quantile(&lat, 0.999)),
		       us(lat.count ? lat.max : 0), hist_mean(&lat) / 1000.0,
		       (unsigned long long)lat.count);
		printf("generator    %.0f%% of one CPU\n", wall > 0 ? 100.0 * cpu / wall : 0);
		printf("errors       %llu (bad ACKs %llu, unacknowledged at the end %llu)\n",
		       (unsigned long long)errors, (unsigned long long)bad,
		       (unsigned long long)unacked);
	}
	for (i = 0; i < o.threads; i++)
		worker_free(&ws[i]);
	free(ws);
	return errors || unacked || !acks ? 1 : 0;
}
