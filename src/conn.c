/* conn.c -- one SPOP connection on its worker's thread: framing over the
 * byte stream, the HELLO handshake, NOTIFY -> sink -> ACK, DISCONNECT,
 * back-pressure, timers and the close path (ref §2, §4.6).
 *
 * Buffers. The read buffer starts at RBUF_INIT and doubles only when it is
 * full of one incomplete frame, never beyond 4 + max-frame-size: memory
 * follows bytes actually received, not a LENGTH a peer claims. Complete
 * frames are decoded in place; the sink gets pointers valid for the call.
 * The write buffer collects whole frames (HELLO, ACKs, DISCONNECT) and is
 * flushed with one send() per read batch or loop iteration. When more than
 * WBUF_HIGH bytes wait for HAProxy, or AGENT_INFLIGHT_MAX sink calls are
 * pending, the connection stops decoding and reading until that clears, so
 * a peer that never reads its ACKs costs bounded memory.
 *
 * Lifetime. Closing releases the fd and buffers at once; the struct itself
 * lives on (as a "zombie") while sink calls are pending, so a late
 * completion finds it and is dropped, and is freed from the worker's
 * prepare callback, never under a caller's feet. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent_int.h"
#include "spoolcap/log.h"
#include "spoolcap/spop.h"

#define RBUF_INIT    (32u << 10)   /* first read buffer */
#define RBUF_KEEP    (128u << 10)  /* shrink back to RBUF_INIT when empty and above this */
#define WBUF_INIT    (4u << 10)
#define WBUF_HIGH    (64u << 10)   /* unsent bytes that pause reading */
#define ACK_ROOM     160           /* >= largest ACK (ids 2x10 B, var <= 63 B) */
#define CTRL_ROOM    320           /* >= AGENT-HELLO and AGENT-DISCONNECT */
#define DISC_MSG_MAX 180           /* DISCONNECT message, fits a 256-byte frame */
#define LINGER       2.0           /* s to flush our DISCONNECT before closing */

enum conn_state { CONN_HELLO, CONN_READY, CONN_CLOSING, CONN_DEAD };

struct conn {
	struct worker *w;
	struct conn *prev, *next;      /* w->conns, w->zombies or w->dead */
	struct conn *dirty_next;       /* w->dirty */
	int       fd;
	uint8_t   state;
	uint8_t   dirty;               /* on w->dirty */
	uint8_t   paused;              /* back-pressure: not reading */
	uint8_t   draining;            /* agent stopping */
	uint8_t   healthcheck;
	uint8_t   pipelining;
	uint8_t   lingering;           /* CLOSING, all sent, FIN sent */
	uint32_t  max_frame;           /* ours before HELLO, then negotiated */
	unsigned  pending;             /* sink calls not yet completed */
	uint64_t  id;
	ev_io     rio, wio;
	ev_timer  tmr;                 /* hello, idle, or linger timeout */
	ev_tstamp t_start, last_rx;

	uint8_t  *rbuf;
	size_t    roff, rlen, rcap;    /* parsed up to roff, valid up to rlen */
	uint8_t  *wbuf;
	size_t    woff, wlen, wcap;    /* sent up to woff, valid up to wlen */

	uint64_t  frames, notifies, msgs, acks, bytes_in, bytes_out;
	char      reason[200];         /* why it is closing */
	char      peer[AGENT_PEER_LEN];
	size_t    engine_id_len;
	uint8_t   engine_id[AGENT_ENGINE_ID_MAX];
};

#define CFMT      "conn#%" PRIu64 " %s: "
#define CARG(c)   (c)->id, (c)->peer

static void conn_close(struct conn *c, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void conn_fail(struct conn *c, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void conn_process(struct conn *c);
static int  conn_flush(struct conn *c);
static void conn_closing(struct conn *c, const char *reason);

static const char *frame_type_name(unsigned t)
{
	switch (t) {
	case SPOP_FRAME_UNSET:              return "UNSET (fragment)";
	case SPOP_FRAME_HAPROXY_HELLO:      return "HAPROXY-HELLO";
	case SPOP_FRAME_HAPROXY_DISCONNECT: return "HAPROXY-DISCONNECT";
	case SPOP_FRAME_NOTIFY:             return "NOTIFY";
	case SPOP_FRAME_AGENT_HELLO:        return "AGENT-HELLO";
	case SPOP_FRAME_AGENT_DISCONNECT:   return "AGENT-DISCONNECT";
	case SPOP_FRAME_ACK:                return "ACK";
	default:                            return "unknown";
	}
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ACK latency histogram bounds (agent.h): from a page-cache commit
 * (~100 us) to a stalled disk (seconds). */
const uint32_t agent_ack_bounds_us[AGENT_ACK_BUCKETS] = {
	50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
	250000, 500000, 1000000, 2500000, 5000000
};

static void ack_latency(struct worker *w, int64_t t_recv)
{
	int64_t ns = mono_ns() - t_recv;
	uint64_t us;
	int i;

	if (ns < 0)
		ns = 0;
	us = (uint64_t)ns / 1000;
	for (i = 0; i < AGENT_ACK_BUCKETS && us > agent_ack_bounds_us[i]; i++)
		;
	agent_ctr_add(&w->ctr.ack_latency[i], 1);
	agent_ctr_add(&w->ctr.ack_latency_sum_ns, (uint64_t)ns);
}

/* ---- lists ---- */

static void list_unlink(struct conn **head, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		*head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void list_push(struct conn **head, struct conn *c)
{
	c->prev = NULL;
	c->next = *head;
	if (*head)
		(*head)->prev = c;
	*head = c;
}

struct conn *agent_conn_next(const struct conn *c)
{
	return c->next;
}

static void mark_dirty(struct conn *c)
{
	if (!c->dirty) {
		c->dirty = 1;
		c->dirty_next = c->w->dirty;
		c->w->dirty = c;
	}
}

/* ---- output buffer ---- */

/* Room for at least need more bytes at wbuf + wlen, or NULL (out of memory). */
static uint8_t *wroom(struct conn *c, size_t need)
{
	if (c->woff == c->wlen)
		c->woff = c->wlen = 0;
	if (c->wcap - c->wlen < need && c->woff > 0) {
		memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
		c->wlen -= c->woff;
		c->woff = 0;
	}
	if (c->wcap - c->wlen < need) {
		size_t cap = c->wcap ? c->wcap : WBUF_INIT;
		uint8_t *nb;
		while (cap - c->wlen < need)
			cap *= 2;
		nb = realloc(c->wbuf, cap);
		if (!nb)
			return NULL;
		c->wbuf = nb;
		c->wcap = cap;
	}
	return c->wbuf + c->wlen;
}

static size_t wpending(const struct conn *c)
{
	return c->wlen - c->woff;
}

/* ---- close ---- */

static void conn_close(struct conn *c, int level, const char *fmt, ...)
{
	struct worker *w = c->w;
	char why[256];
	va_list ap;

	if (c->state == CONN_DEAD)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* Health checks come every few seconds: keep them out of info logs,
	 * spop-check ones and plain TCP checks (connect, close, no byte). */
	if (level == LOGL_INFO && (c->healthcheck || (c->state == CONN_HELLO && !c->bytes_in)))
		level = LOGL_DEBUG;
	if (level <= log_level)
		log_msg(level, CFMT "closed (%s) after %.3f s: %" PRIu64 " notifies, %" PRIu64
		        " messages, %" PRIu64 " acks%s", CARG(c), why,
		        ev_now(w->loop) - c->t_start, c->notifies, c->msgs, c->acks,
		        c->pending ? ", ACKs of pending NOTIFYs dropped" : "");
	log_debug(CFMT "closed: %" PRIu64 " frames, %" PRIu64 " B in, %" PRIu64 " B out",
	          CARG(c), c->frames, c->bytes_in, c->bytes_out);

	ev_io_stop(w->loop, &c->rio);
	ev_io_stop(w->loop, &c->wio);
	ev_timer_stop(w->loop, &c->tmr);
	close(c->fd);
	c->fd = -1;
	agent_conn_released(w);
	free(c->rbuf);
	free(c->wbuf);
	c->rbuf = c->wbuf = NULL;
	c->rlen = c->roff = c->rcap = c->wlen = c->woff = c->wcap = 0;
	list_unlink(&w->conns, c);
	c->state = CONN_DEAD;
	list_push(c->pending ? &w->zombies : &w->dead, c);
}

static void peer_gone(struct conn *c, int err, const char *op)
{
	size_t left = c->rlen - c->roff;

	if (err == 0 && wpending(c) && left == 0 &&
	    (c->state == CONN_READY || c->state == CONN_HELLO)) {
		/* Half-closed (a test client, not HAProxy): it may still read
		 * what we owe it, so finish sending before closing. */
		conn_closing(c, "peer closed the connection");
		return;
	}
	if (err == 0) {
		if (left)
			conn_close(c, LOGL_INFO, "peer closed the connection inside a frame, "
			           "%zu bytes unparsed", left);
		else
			conn_close(c, LOGL_INFO, "peer closed the connection");
	} else if (err == ECONNRESET || err == EPIPE) {
		/* HAProxy 3.x often ends connections with RST (ref §6 #7). */
		conn_close(c, LOGL_INFO, "connection reset by peer");
	} else {
		conn_close(c, LOGL_WARN, "%s error: %s", op, strerror(err));
	}
}

/* Stop reading and processing; close once our last bytes are out. */
static void conn_closing(struct conn *c, const char *reason)
{
	struct worker *w = c->w;

	if (c->state == CONN_DEAD || c->state == CONN_CLOSING)
		return;
	snprintf(c->reason, sizeof(c->reason), "%s", reason);
	c->state = CONN_CLOSING;
	ev_io_stop(w->loop, &c->rio);
	ev_timer_stop(w->loop, &c->tmr);
	ev_timer_set(&c->tmr, LINGER, 0.);
	ev_timer_start(w->loop, &c->tmr);
	conn_flush(c);
}

/* Queues AGENT-DISCONNECT (whole, ref §2.5) and closes after sending it. */
static void conn_disconnect(struct conn *c, unsigned status, const char *msg)
{
	uint8_t *o;
	char m[DISC_MSG_MAX + 1];

	if (c->state == CONN_DEAD || c->state == CONN_CLOSING)
		return;
	snprintf(m, sizeof(m), "%s", msg);
	o = wroom(c, CTRL_ROOM);
	if (o) {
		size_t n = spop_agent_disconnect(o, c->wcap - c->wlen, status, m);
		c->wlen += n;
		if (n)
			agent_ctr_add(&c->w->ctr.disconnects_sent[status < 15 ? status : 15], 1);
	}
	if (status == SPOP_ST_NORMAL) {
		conn_closing(c, msg);
	} else {
		char reason[64];
		snprintf(reason, sizeof(reason), "sent DISCONNECT %u, %s", status,
		         spop_status_str(status));
		conn_closing(c, reason);
	}
}

/* Bad input or a protocol condition: one warning naming the peer and the
 * reason, the status code to HAProxy, close. */
static void conn_fail(struct conn *c, unsigned status, const char *fmt, ...)
{
	char why[DISC_MSG_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn(CFMT "%s; sending DISCONNECT %u (%s) and closing", CARG(c), why, status,
	         spop_status_str(status));
	conn_disconnect(c, status, why);
}

/* ---- write ---- */

/* Sends what is buffered: one send() per call in the common case. Returns
 * -1 if the connection got closed. */
static int conn_flush(struct conn *c)
{
	struct worker *w = c->w;

	if (c->state == CONN_DEAD)
		return -1;
	while (c->woff < c->wlen) {
		ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			peer_gone(c, errno, "write");
			return -1;
		}
		c->woff += (size_t)n;
		c->bytes_out += (uint64_t)n;
		agent_ctr_add(&w->ctr.bytes_out, (uint64_t)n);
		if (c->woff < c->wlen)
			break;          /* socket buffer full: EAGAIN next; wait for POLLOUT */
	}
	if (c->woff == c->wlen) {
		c->woff = c->wlen = 0;
		ev_io_stop(w->loop, &c->wio);
		if (c->state == CONN_CLOSING && !c->lingering) {
			/* Lingering close: closing with unread input would send a
			 * RST that can destroy our DISCONNECT before the peer reads
			 * it. Send FIN, discard input until the peer closes too
			 * (or LINGER expires). */
			c->lingering = 1;
			shutdown(c->fd, SHUT_WR);
			ev_io_start(w->loop, &c->rio);
		}
	} else if (!ev_is_active(&c->wio)) {
		ev_io_start(w->loop, &c->wio);
	}
	return 0;
}

/* ---- back-pressure ---- */

static void conn_pause(struct conn *c)
{
	if (!c->paused) {
		c->paused = 1;
		ev_io_stop(c->w->loop, &c->rio);
		log_debug(CFMT "paused reading (%zu B unsent, %u sink calls pending)",
		          CARG(c), wpending(c), c->pending);
	}
}

/* Decode what is buffered, then send the answers. */
static void conn_kick(struct conn *c)
{
	conn_process(c);
	if (c->state != CONN_DEAD && wpending(c))
		conn_flush(c);
}

static void conn_maybe_resume(struct conn *c)
{
	if (!c->paused || c->draining)
		return;
	if (c->state != CONN_HELLO && c->state != CONN_READY)
		return;
	/* Hysteresis: resume well below the limits, not one item below. */
	if (wpending(c) >= WBUF_HIGH / 2 || c->pending > AGENT_INFLIGHT_MAX * 3 / 4)
		return;
	c->paused = 0;
	ev_io_start(c->w->loop, &c->rio);
	log_debug(CFMT "resumed reading", CARG(c));
	conn_kick(c);
}

/* ---- frames ---- */

static void conn_ack(struct conn *c, uint64_t sid, uint64_t fid, int spooled,
                     int64_t t_recv)
{
	uint8_t *o = wroom(c, ACK_ROOM);
	size_t n;

	if (!o) {
		conn_fail(c, SPOP_ST_RES_ALLOC, "out of memory for the ACK");
		return;
	}
	n = spop_ack(o, c->wcap - c->wlen, sid, fid, c->w->a->cfg.spooled_var, spooled);
	if (n == 0) {
		conn_fail(c, SPOP_ST_UNKNOWN, "internal error: cannot encode ACK");
		return;
	}
	c->wlen += n;
	c->acks++;
	agent_ctr_add(&c->w->ctr.acks, 1);
	ack_latency(c->w, t_recv);
}

static void conn_hello(struct conn *c, const spop_frame *f)
{
	struct agent *a = c->w->a;
	spop_hello h;
	uint32_t mfs;
	const char *caps;
	uint8_t *o;
	size_t n;
	int r;

	if (f->type != SPOP_FRAME_HAPROXY_HELLO) {
		conn_fail(c, SPOP_ST_INVALID, "expected HAPROXY-HELLO as the first frame, got %s "
		          "(type %u)", frame_type_name(f->type), f->type);
		return;
	}
	if (!(f->flags & SPOP_FLAG_FIN)) {
		conn_fail(c, SPOP_ST_FRAG_NOT_SUPPORTED, "fragmented HAPROXY-HELLO (FIN not set)");
		return;
	}
	if (f->sid != 0 || f->fid != 0) {
		conn_fail(c, SPOP_ST_INVALID, "HAPROXY-HELLO with stream-id %" PRIu64 " frame-id %"
		          PRIu64 " (must be 0/0)", f->sid, f->fid);
		return;
	}
	r = spop_hello_parse(f->payload, f->payload_len, &h);
	if (r < 0) {
		conn_fail(c, SPOP_ST_INVALID, "malformed HAPROXY-HELLO: %s", spop_strerror(r));
		return;
	}
	if (!h.has_versions) {
		conn_fail(c, SPOP_ST_NO_VERSION, "HAPROXY-HELLO without supported-versions");
		return;
	}
	if (!spop_versions_support(h.versions, 2, 0)) {
		char v[64];
		log_escape(v, sizeof(v), h.versions.ptr, h.versions.len);
		conn_fail(c, SPOP_ST_BAD_VERSION, "no supported version in \"%s\" "
		          "(this agent speaks SPOP 2.0)", v);
		return;
	}
	if (!h.has_max_frame_size) {
		conn_fail(c, SPOP_ST_NO_FRAME_SIZE, "HAPROXY-HELLO without max-frame-size");
		return;
	}
	if (h.max_frame_size < SPOP_FRAME_SIZE_MIN) {
		conn_fail(c, SPOP_ST_BAD_FRAME_SIZE, "max-frame-size %" PRIu64
		          " is below the minimum %u", h.max_frame_size, SPOP_FRAME_SIZE_MIN);
		return;
	}
	/* A missing capabilities key is read as "" (HAProxy always sends it;
	 * being strict here would only break a future health checker). */
	mfs = h.max_frame_size < a->cfg.max_frame_size ? (uint32_t)h.max_frame_size
	                                                : a->cfg.max_frame_size;
	c->pipelining = h.has_capabilities && spop_list_has(h.capabilities, "pipelining");
	caps = c->pipelining ? "pipelining" : "";
	c->healthcheck = h.healthcheck ? 1 : 0;
	c->engine_id_len = h.engine_id.len < sizeof(c->engine_id) ? h.engine_id.len
	                                                           : sizeof(c->engine_id);
	if (c->engine_id_len)
		memcpy(c->engine_id, h.engine_id.ptr, c->engine_id_len);

	o = wroom(c, CTRL_ROOM);
	n = o ? spop_agent_hello(o, c->wcap - c->wlen, mfs, caps) : 0;
	if (n == 0) {
		conn_fail(c, o ? SPOP_ST_UNKNOWN : SPOP_ST_RES_ALLOC,
		          "cannot build AGENT-HELLO");
		return;
	}
	c->wlen += n;
	c->max_frame = mfs;
	c->state = CONN_READY;
	ev_timer_stop(c->w->loop, &c->tmr);

	if (c->healthcheck) {
		agent_ctr_add(&c->w->ctr.healthchecks, 1);
		log_debug(CFMT "health check answered", CARG(c));
		conn_closing(c, "health check done");
		return;
	}
	if (log_level >= LOGL_INFO) {
		char eid[AGENT_ENGINE_ID_MAX * 4 + 1];
		char offered[96];
		log_escape(eid, sizeof(eid), c->engine_id, c->engine_id_len);
		log_escape(offered, sizeof(offered), h.capabilities.ptr, h.capabilities.len);
		log_info(CFMT "connected: SPOP 2.0, max-frame-size %u, %s, engine-id %s",
		         CARG(c), mfs, c->pipelining ? "pipelining" : "no pipelining",
		         c->engine_id_len ? eid : "-");
		log_debug(CFMT "hello: HAProxy max-frame-size %" PRIu64 ", capabilities "
		          "offered \"%s\"", CARG(c), h.max_frame_size, offered);
	}
	if (a->cfg.idle_timeout > 0) {
		c->last_rx = ev_now(c->w->loop);
		ev_timer_set(&c->tmr, a->cfg.idle_timeout, 0.);
		ev_timer_start(c->w->loop, &c->tmr);
	}
}

static void conn_notify(struct conn *c, const spop_frame *f, int64_t *now_ns)
{
	struct worker *w = c->w;
	sink *s = w->a->sink;
	sink_notify n;
	struct pend *p;
	int64_t t_recv;
	unsigned nmsgs;
	int r;

	r = spop_msgs_check(f->payload, f->payload_len, &nmsgs);
	if (r < 0) {
		conn_fail(c, SPOP_ST_INVALID, "malformed NOTIFY (stream-id %" PRIu64 " frame-id %"
		          PRIu64 "): %s", f->sid, f->fid, spop_strerror(r));
		return;
	}
	c->notifies++;
	c->msgs += nmsgs;
	agent_ctr_add(&w->ctr.notifies, 1);
	agent_ctr_add(&w->ctr.messages, nmsgs);

	p = agent_pend_get(w);
	if (!p) {
		conn_fail(c, SPOP_ST_RES_ALLOC, "out of memory for a pending NOTIFY");
		return;
	}
	p->c = c;
	p->sid = f->sid;
	p->fid = f->fid;
	p->t_recv = mono_ns();
	if (*now_ns == 0)
		*now_ns = realtime_ns();
	n.msgs = f->payload;
	n.msgs_len = f->payload_len;
	n.nmsgs = nmsgs;
	n.sid = f->sid;
	n.fid = f->fid;
	n.engine_id.ptr = c->engine_id;
	n.engine_id.len = c->engine_id_len;
	n.recv_ns = *now_ns;
	n.worker = w->idx;
	n.peer = c->peer;

	c->pending++;
	r = s->submit(s, &n, agent_sink_done, w, (uint64_t)(uintptr_t)p);
	if (r == SINK_PENDING)
		return;                 /* agent_conn_complete() sends the ACK */
	c->pending--;
	t_recv = p->t_recv;
	agent_pend_put(w, p);
	conn_ack(c, f->sid, f->fid, r == SINK_SPOOLED, t_recv);
}

static void conn_haproxy_disconnect(struct conn *c, const spop_frame *f)
{
	spop_disconnect d;
	char msg[128] = "";

	agent_ctr_add(&c->w->ctr.haproxy_disconnects, 1);
	if (spop_disconnect_parse(f->payload, f->payload_len, &d) == 0) {
		log_escape(msg, sizeof(msg), d.message.ptr, d.message.len);
		log_info(CFMT "HAProxy disconnects: status %" PRIu64 " (%s)%s%s", CARG(c),
		         d.status, spop_status_str((unsigned)(d.status > 99 ? 99 : d.status)),
		         msg[0] ? ", message " : "", msg);
	} else {
		log_info(CFMT "HAProxy disconnects (unparsable status)", CARG(c));
	}
	/* HAProxy drops any ACK that still arrives (ref §2.5): answer and go. */
	conn_disconnect(c, SPOP_ST_NORMAL, "HAProxy disconnected");
}

static void conn_frame(struct conn *c, const spop_frame *f, int64_t *now_ns)
{
	log_debug(CFMT "frame %s len %" PRIu32 " flags 0x%" PRIx32 " sid %" PRIu64 " fid %" PRIu64,
	          CARG(c), frame_type_name(f->type), f->len, f->flags, f->sid, f->fid);
	if (c->state == CONN_HELLO) {
		conn_hello(c, f);
		return;
	}
	/* Fragmentation is never announced, so a fragment is always an error. */
	if (f->type == SPOP_FRAME_UNSET || !(f->flags & SPOP_FLAG_FIN)) {
		conn_fail(c, SPOP_ST_FRAG_NOT_SUPPORTED, "fragmented frame (%s, FIN %s) but "
		          "fragmentation was not negotiated; set 'no option send-frag-payload' "
		          "in the SPOE config", frame_type_name(f->type),
		          (f->flags & SPOP_FLAG_FIN) ? "set" : "clear");
		return;
	}
	switch (f->type) {
	case SPOP_FRAME_NOTIFY:
		conn_notify(c, f, now_ns);
		break;
	case SPOP_FRAME_HAPROXY_DISCONNECT:
		conn_haproxy_disconnect(c, f);
		break;
	case SPOP_FRAME_HAPROXY_HELLO:
		conn_fail(c, SPOP_ST_INVALID, "second HAPROXY-HELLO on the connection");
		break;
	default:
		/* HAProxy 3.x does the same for frames it does not expect. */
		conn_fail(c, SPOP_ST_INVALID, "unexpected frame type %u (%s)", f->type,
		          frame_type_name(f->type));
		break;
	}
}

/* A frame header spop_frame_get refused. */
static void conn_bad_header(struct conn *c, int r)
{
	const uint8_t *p = c->rbuf + c->roff;
	size_t avail = c->rlen - c->roff;
	uint32_t len = avail >= 4 ? be32(p) : 0;
	char hint[96] = "";

	if (r == SPOP_ETOOBIG) {
		/* Text protocols look like absurd lengths: say what it probably is. */
		if (avail >= 2 && p[0] == 0x16 && p[1] == 0x03) {
			snprintf(hint, sizeof(hint), " (looks like TLS; SPOP is plain TCP)");
		} else if (p[0] >= 'A' && p[0] <= 'Z' && p[1] >= 'A' && p[1] <= 'Z') {
			char txt[40];
			log_escape(txt, sizeof(txt), p, avail < 8 ? avail : 8);
			snprintf(hint, sizeof(hint), " (starts with \"%s\": HTTP or text, not SPOP)", txt);
		}
		conn_fail(c, SPOP_ST_TOO_BIG, "frame LENGTH %" PRIu32 " exceeds max-frame-size %"
		          PRIu32 "%s", len, c->max_frame, hint);
	} else if (r == SPOP_ESHORT) {
		conn_fail(c, SPOP_ST_INVALID, "frame LENGTH %" PRIu32 " below the minimum %u",
		          len, SPOP_FRAME_HDR_MIN);
	} else {
		conn_fail(c, SPOP_ST_INVALID, "bad frame header: %s", spop_strerror(r));
	}
}

/* Decodes every complete frame in the read buffer, unless back-pressure or
 * a state change stops it. */
static void conn_process(struct conn *c)
{
	int64_t now_ns = 0;

	while (c->state == CONN_HELLO || c->state == CONN_READY) {
		spop_frame f;
		size_t used;
		int r;

		if (c->draining)
			break;
		if (wpending(c) >= WBUF_HIGH) {
			if (conn_flush(c) < 0)
				return;
			if (wpending(c) >= WBUF_HIGH) {
				conn_pause(c);
				break;
			}
		}
		if (c->pending >= AGENT_INFLIGHT_MAX) {
			conn_pause(c);
			break;
		}
		if (c->roff == c->rlen)
			break;
		r = spop_frame_get(c->rbuf + c->roff, c->rlen - c->roff, c->max_frame, &f, &used);
		if (r == 0)
			break;
		if (r < 0) {
			conn_bad_header(c, r);
			return;
		}
		c->roff += used;
		c->frames++;
		agent_ctr_add(&c->w->ctr.frames_in, 1);
		conn_frame(c, &f, &now_ns);
	}
	if (c->state == CONN_DEAD || !c->rbuf)
		return;
	/* Keep the partial frame at the front for the next read. */
	if (c->roff == c->rlen) {
		c->roff = c->rlen = 0;
		if (c->rcap > RBUF_KEEP) {
			uint8_t *nb = realloc(c->rbuf, RBUF_INIT);
			if (nb) {
				c->rbuf = nb;
				c->rcap = RBUF_INIT;
			}
		}
	} else if (c->roff > 0) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
}

/* The read buffer is full of one incomplete frame: double it, up to the
 * size that frame needs (its LENGTH is already checked against max_frame). */
static int rbuf_grow(struct conn *c)
{
	size_t need = c->rlen >= 4 ? 4 + (size_t)be32(c->rbuf) : c->rcap + 1;
	size_t cap = c->rcap * 2;
	uint8_t *nb;

	if (need > 4 + (size_t)c->max_frame)
		need = 4 + (size_t)c->max_frame;
	if (cap > need)
		cap = need;
	if (cap <= c->rcap)
		return 0;
	nb = realloc(c->rbuf, cap);
	if (!nb)
		return -1;
	c->rbuf = nb;
	c->rcap = cap;
	return 0;
}

/* Lingering close: read and drop until EOF. */
static void conn_drain(struct conn *c)
{
	uint8_t buf[16384];
	ssize_t n = read(c->fd, buf, sizeof(buf));

	if (n > 0) {
		c->bytes_in += (uint64_t)n;
		agent_ctr_add(&c->w->ctr.bytes_in, (uint64_t)n);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	conn_close(c, c->healthcheck ? LOGL_DEBUG : LOGL_INFO, "%s", c->reason);
}

static void on_read(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = io->data;
	ssize_t n;

	(void)revents;
	if (c->state == CONN_CLOSING) {
		conn_drain(c);
		return;
	}
	if (c->rlen == c->rcap) {
		if (rbuf_grow(c) < 0) {
			conn_fail(c, SPOP_ST_RES_ALLOC, "out of memory for a %zu-byte read buffer",
			          c->rcap * 2);
			return;
		}
		if (c->rlen == c->rcap) {
			/* Complete frames still buffered (cannot happen unless
			 * paused); decode them instead of reading. */
			conn_kick(c);
			return;
		}
	}
	n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		peer_gone(c, n == 0 ? 0 : errno, "read");
		return;
	}
	c->rlen += (size_t)n;
	c->bytes_in += (uint64_t)n;
	agent_ctr_add(&c->w->ctr.bytes_in, (uint64_t)n);
	c->last_rx = ev_now(loop);
	conn_kick(c);
}

static void on_write(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = io->data;

	(void)loop;
	(void)revents;
	if (conn_flush(c) == 0)
		conn_maybe_resume(c);
}

static void on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct conn *c = t->data;
	struct agent *a = c->w->a;

	(void)revents;
	switch (c->state) {
	case CONN_HELLO:
		conn_fail(c, SPOP_ST_TIMEOUT, "no HAPROXY-HELLO within %.3g s (hello-timeout)",
		          a->cfg.hello_timeout);
		break;
	case CONN_READY: {
		ev_tstamp left = c->last_rx + a->cfg.idle_timeout - ev_now(loop);
		/* Not idle while HAProxy waits for us or we wait for it. */
		if (left > 0 || c->pending || wpending(c) || c->paused) {
			ev_timer_set(t, left > 0.001 ? left : a->cfg.idle_timeout, 0.);
			ev_timer_start(loop, t);
			break;
		}
		log_info(CFMT "idle for %.3g s (idle-timeout)", CARG(c), a->cfg.idle_timeout);
		conn_disconnect(c, SPOP_ST_TIMEOUT, "idle timeout");
		break;
	}
	case CONN_CLOSING:
		if (c->lingering)
			conn_close(c, LOGL_INFO, "%s; peer did not close within %.0f s",
			           c->reason, LINGER);
		else
			conn_close(c, LOGL_INFO, "%s; peer did not read our last %zu B within %.0f s",
			           c->reason, wpending(c), LINGER);
		break;
	default:
		break;
	}
}

/* ---- entry points from agent.c ---- */

void agent_conn_start(struct worker *w, int fd, uint64_t id, const struct listener *l,
                      const char *peer)
{
	struct agent *a = w->a;
	struct conn *c = calloc(1, sizeof(*c));

	if (c)
		c->rbuf = malloc(RBUF_INIT);
	if (!c || !c->rbuf) {
		log_error("conn#%" PRIu64 " %s: out of memory for a new connection; closing",
		          id, peer);
		free(c);
		close(fd);
		agent_conn_released(w);
		return;
	}
	c->w = w;
	c->fd = fd;
	c->id = id;
	c->state = CONN_HELLO;
	c->rcap = RBUF_INIT;
	c->max_frame = a->cfg.max_frame_size;
	c->t_start = c->last_rx = ev_now(w->loop);
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	ev_io_init(&c->rio, on_read, fd, EV_READ);
	c->rio.data = c;
	ev_io_init(&c->wio, on_write, fd, EV_WRITE);
	c->wio.data = c;
	ev_timer_init(&c->tmr, on_timer, a->cfg.hello_timeout, 0.);
	c->tmr.data = c;
	list_push(&w->conns, c);
	agent_ctr_add(&w->ctr.conns_accepted, 1);
	log_debug(CFMT "accepted on %s", CARG(c), l->name);
	ev_io_start(w->loop, &c->rio);
	ev_timer_start(w->loop, &c->tmr);
}

void agent_conn_complete(struct worker *w, struct pend *p)
{
	struct conn *c = p->c;
	uint64_t sid = p->sid, fid = p->fid;
	int64_t t_recv = p->t_recv;
	int result = p->result;

	agent_pend_put(w, p);
	c->pending--;
	if (c->state == CONN_DEAD) {
		/* Closed meanwhile: drop the ACK; free once nothing refers to it. */
		if (c->pending == 0) {
			list_unlink(&w->zombies, c);
			list_push(&w->dead, c);
		}
		return;
	}
	if (c->state == CONN_CLOSING)
		return;                 /* nothing may follow our DISCONNECT */
	conn_ack(c, sid, fid, result == SINK_SPOOLED, t_recv);
	mark_dirty(c);
	/* Resuming (if paused) waits for the prepare callback: one flush and
	 * one resume for a whole batch of completions. */
	if (c->draining && c->pending == 0)
		conn_disconnect(c, SPOP_ST_NORMAL, "agent shutting down");
}

void agent_conn_flush_dirty(struct worker *w)
{
	struct conn *c;

	while ((c = w->dirty)) {
		w->dirty = c->dirty_next;
		c->dirty = 0;
		if (conn_flush(c) == 0)
			conn_maybe_resume(c);
	}
}

void agent_conn_free_dead(struct worker *w)
{
	struct conn *c;

	while ((c = w->dead)) {
		w->dead = c->next;
		free(c);
	}
}

void agent_conn_shutdown(struct conn *c)
{
	if (c->state == CONN_HELLO) {
		conn_disconnect(c, SPOP_ST_NORMAL, "agent shutting down");
		return;
	}
	if (c->state != CONN_READY)
		return;
	/* Stop taking NOTIFYs; ACK what the sink still holds, then leave. */
	c->draining = 1;
	ev_io_stop(c->w->loop, &c->rio);
	if (c->pending == 0)
		conn_disconnect(c, SPOP_ST_NORMAL, "agent shutting down");
}

void agent_conn_abort(struct conn *c)
{
	if (c->state == CONN_HELLO || c->state == CONN_READY) {
		conn_disconnect(c, SPOP_ST_NORMAL, "agent shutting down");
		if (c->state == CONN_DEAD)
			return;
	}
	conn_close(c, LOGL_INFO, "agent stopped before the peer read our DISCONNECT "
	           "and closed");
}

void agent_conn_free_all(struct worker *w)
{
	struct conn *c;

	while ((c = w->conns))
		conn_close(c, LOGL_DEBUG, "agent stopped");
	while ((c = w->zombies)) {
		w->zombies = c->next;
		free(c);
	}
	w->dirty = NULL;
	agent_conn_free_dead(w);
}

void agent_refuse(int fd, unsigned status, const char *why)
{
	uint8_t buf[CTRL_ROOM];
	size_t n = spop_agent_disconnect(buf, sizeof(buf), status, why);

	if (n)
		(void)!send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}
