/* spop_client.c -- a small blocking SPOP client for the agent tests
 * (HAProxy's side of the protocol; see spop_client.h). Sockets are
 * non-blocking underneath so that every wait goes through poll() with a
 * deadline, and sends keep draining the agent's replies. */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "spop_client.h"

#define RBUF_MIN       (64 * 1024)
#define RBUF_LIMIT     (64u * 1024 * 1024)   /* unread agent output we keep */
#define FRAME_LIMIT    (16u * 1024 * 1024)   /* largest agent frame accepted */

static atomic_uint n_timeouts;

unsigned spc_timeouts(void)
{
	return atomic_load(&n_timeouts);
}

static int timed_out(void)
{
	atomic_fetch_add(&n_timeouts, 1);
	return SPC_ETIMEOUT;
}

const char *spc_strerror(int r)
{
	switch (r) {
	case SPC_FRAME:    return "frame";
	case SPC_OK:       return "ok / EOF";
	case SPC_ETIMEOUT: return "timed out";
	case SPC_ERESET:   return "connection reset";
	case SPC_EIO:      return "socket error";
	case SPC_EPROTO:   return "protocol error";
	case SPC_ENOMEM:   return "out of memory";
	}
	return "unknown";
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining(int64_t deadline)
{
	int64_t r = deadline - now_ms();
	return r < 0 ? 0 : (int)r;
}

static int sock_result(spc_conn *c, int err, const char *what)
{
	c->sock_err = err;
	snprintf(c->errmsg, sizeof(c->errmsg), "%s: %s", what, strerror(err));
	return (err == ECONNRESET || err == EPIPE) ? SPC_ERESET : SPC_EIO;
}

static void conn_init(spc_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Waits for a non-blocking connect() to finish. */
static int finish_connect(spc_conn *c, int timeout_ms)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
	int r, err = 0;
	socklen_t len = sizeof(err);

	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		snprintf(c->errmsg, sizeof(c->errmsg), "connect timed out after %d ms", timeout_ms);
		return timed_out();
	}
	if (r < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return sock_result(c, errno, "connect");
	if (err)
		return sock_result(c, err, "connect");
	return SPC_OK;
}

int spc_connect_tcp(spc_conn *c, const char *ip, unsigned port, int timeout_ms)
{
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	int r;

	conn_init(c);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
		snprintf(c->errmsg, sizeof(c->errmsg), "bad IPv4 address '%s'", ip);
		return SPC_EIO;
	}
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return sock_result(c, errno, "socket");
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EINPROGRESS) {
			r = sock_result(c, errno, "connect");
			spc_close(c);
			return r;
		}
		if ((r = finish_connect(c, timeout_ms)) != SPC_OK) {
			spc_close(c);
			return r;
		}
	}
	if (getsockname(c->fd, (struct sockaddr *)&sa, &salen) == 0) {
		char host[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &sa.sin_addr, host, sizeof(host));
		snprintf(c->local, sizeof(c->local), "%s:%u", host, ntohs(sa.sin_port));
	}
	return SPC_OK;
}

int spc_connect_unix(spc_conn *c, const char *path, int timeout_ms)
{
	struct sockaddr_un sa;
	int64_t deadline = now_ms() + timeout_ms;
	int r;

	conn_init(c);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(c->errmsg, sizeof(c->errmsg), "unix socket path too long: %s", path);
		return SPC_EIO;
	}
	strcpy(sa.sun_path, path);
	snprintf(c->local, sizeof(c->local), "unix:%.100s", path);
	for (;;) {
		c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			return sock_result(c, errno, "socket");
		if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return SPC_OK;
		if (errno == EINPROGRESS) {
			if ((r = finish_connect(c, remaining(deadline))) != SPC_OK)
				spc_close(c);
			return r;
		}
		/* EAGAIN: the listen backlog is full; retry until the deadline. */
		r = errno;
		spc_close(c);
		if (r != EAGAIN || remaining(deadline) == 0)
			return sock_result(c, r, "connect");
		usleep(10000);
	}
}

void spc_close(spc_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->rbuf);
	c->rbuf = NULL;
	c->rlen = c->roff = c->rcap = 0;
}

void spc_reset(spc_conn *c)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	if (c->fd >= 0)
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	spc_close(c);
}

int spc_nodelay(spc_conn *c)
{
	int one = 1;
	if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return sock_result(c, errno, "setsockopt(TCP_NODELAY)");
	return SPC_OK;
}

/* Makes room for at least RBUF_MIN more bytes in the read buffer. */
static int rbuf_room(spc_conn *c)
{
	size_t want;
	uint8_t *nb;

	if (c->roff > 0) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
	if (c->rcap - c->rlen >= RBUF_MIN)
		return SPC_OK;
	want = c->rcap ? c->rcap * 2 : 2 * RBUF_MIN;
	while (want - c->rlen < RBUF_MIN)
		want *= 2;
	if (want > RBUF_LIMIT) {
		snprintf(c->errmsg, sizeof(c->errmsg),
		         "more than %u unread bytes from the agent", RBUF_LIMIT);
		return SPC_ENOMEM;
	}
	nb = realloc(c->rbuf, want);
	if (!nb) {
		snprintf(c->errmsg, sizeof(c->errmsg), "out of memory");
		return SPC_ENOMEM;
	}
	c->rbuf = nb;
	c->rcap = want;
	return SPC_OK;
}

/* Reads what is available now (non-blocking) into the buffer. */
static int fill(spc_conn *c)
{
	for (;;) {
		ssize_t n;
		int r = rbuf_room(c);

		if (r != SPC_OK)
			return r;
		n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
		if (n > 0) {
			c->rlen += (size_t)n;
			continue;
		}
		if (n == 0) {
			c->eof = 1;
			return SPC_OK;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return SPC_OK;
		return sock_result(c, errno, "recv");
	}
}

int spc_send(spc_conn *c, const void *buf, size_t n, int timeout_ms)
{
	const uint8_t *p = buf;
	size_t off = 0;
	int64_t deadline = now_ms() + timeout_ms;

	while (off < n) {
		struct pollfd pfd;
		ssize_t w = send(c->fd, p + off, n - off, MSG_NOSIGNAL);
		int r;

		if (w > 0) {
			off += (size_t)w;
			deadline = now_ms() + timeout_ms;   /* progress: restart the clock */
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return sock_result(c, errno, "send");
		/* Socket buffer full: wait for room, reading the agent's replies
		 * meanwhile so it never blocks writing to us. */
		pfd.fd = c->fd;
		pfd.events = POLLOUT | (c->eof || c->sock_err ? 0 : POLLIN);
		pfd.revents = 0;
		r = poll(&pfd, 1, remaining(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return sock_result(c, errno, "poll");
		if (r == 0) {
			snprintf(c->errmsg, sizeof(c->errmsg),
			         "send stalled for %d ms with %zu of %zu bytes sent",
			         timeout_ms, off, n);
			return timed_out();
		}
		if ((pfd.revents & POLLIN) && (r = fill(c)) < 0)
			return r;
	}
	/* Pick up replies that are already there (cheap, keeps buffers short). */
	if (!c->eof && !c->sock_err) {
		int r = fill(c);
		if (r == SPC_ENOMEM)
			return r;
	}
	return SPC_OK;
}

int spc_send_blind(spc_conn *c, const void *buf, size_t n, int stall_ms, size_t *sent)
{
	const uint8_t *p = buf;

	*sent = 0;
	while (*sent < n) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
		ssize_t w = send(c->fd, p + *sent, n - *sent, MSG_NOSIGNAL);
		int r;

		if (w > 0) {
			*sent += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return sock_result(c, errno, "send");
		r = poll(&pfd, 1, stall_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return sock_result(c, errno, "poll");
		if (r == 0)
			break;                  /* stalled: the peer stopped reading */
	}
	return SPC_OK;
}

int spc_send_slowly(spc_conn *c, const void *buf, size_t n, size_t chunk,
                    unsigned pause_us, int timeout_ms)
{
	const uint8_t *p = buf;
	size_t off;

	if (chunk == 0)
		chunk = 1;
	for (off = 0; off < n; off += chunk) {
		size_t k = n - off < chunk ? n - off : chunk;
		int r = spc_send(c, p + off, k, timeout_ms);

		if (r != SPC_OK)
			return r;
		if (pause_us && off + k < n)
			usleep(pause_us);
	}
	return SPC_OK;
}

int spc_read_frame(spc_conn *c, spc_frame *fr, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		size_t avail = c->rlen - c->roff, used = 0;
		struct pollfd pfd;
		int r;

		if (avail > 0) {
			r = spop_frame_get(c->rbuf + c->roff, avail, FRAME_LIMIT, &fr->f, &used);
			if (r == 1) {
				fr->raw = c->rbuf + c->roff;
				fr->raw_len = used;
				c->roff += used;
				return SPC_FRAME;
			}
			if (r < 0) {
				char hex[64];
				spc_hex(hex, sizeof(hex), c->rbuf + c->roff, avail, 16);
				snprintf(c->errmsg, sizeof(c->errmsg),
				         "agent sent an invalid frame (%s): %s",
				         spop_strerror(r), hex);
				return SPC_EPROTO;
			}
		}
		if (c->eof || c->sock_err) {
			if (avail > 0) {
				snprintf(c->errmsg, sizeof(c->errmsg),
				         "connection ended inside a frame (%zu bytes pending)", avail);
				return SPC_EPROTO;
			}
			if (c->eof)
				return SPC_OK;
			return c->sock_err == ECONNRESET || c->sock_err == EPIPE ? SPC_ERESET : SPC_EIO;
		}
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		r = poll(&pfd, 1, remaining(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return sock_result(c, errno, "poll");
		if (r == 0) {
			snprintf(c->errmsg, sizeof(c->errmsg),
			         "no frame from the agent within %d ms (%zu bytes pending)",
			         timeout_ms, avail);
			return timed_out();
		}
		r = fill(c);
		if (r == SPC_ENOMEM)
			return r;
		/* A read error is recorded in sock_err; frames buffered before it
		 * are still returned by the next iteration. */
	}
}

int spc_wait_close(spc_conn *c, int timeout_ms, unsigned *nframes, int *first_type)
{
	int64_t deadline = now_ms() + timeout_ms;
	unsigned n = 0;
	int r;

	if (first_type)
		*first_type = -1;
	for (;;) {
		spc_frame fr;

		r = spc_read_frame(c, &fr, remaining(deadline));
		if (r != SPC_FRAME)
			break;
		if (n++ == 0 && first_type)
			*first_type = fr.f.type;
	}
	if (nframes)
		*nframes = n;
	if (r == SPC_ERESET)
		return SPC_OK;      /* an RST is a close too */
	return r;
}

/* ---- building ---- */

spc_hello_opts spc_hello_default(uint64_t max_frame_size, const char *caps)
{
	spc_hello_opts o;

	o.versions = "2.0";
	o.max_frame_size = max_frame_size;
	o.capabilities = caps;
	o.healthcheck = -1;
	o.engine_id = "5a1d2b0c-7e0f-4c39-9a7e-2f1d0c3b4a59";
	return o;
}

static void put_key(spop_wbuf *w, const char *k)
{
	spop_put_name(w, k, strlen(k));
}

size_t spc_build_hello(uint8_t *out, size_t cap, const spc_hello_opts *o)
{
	spop_wbuf w;
	size_t start;

	spop_wbuf_init(&w, out, cap);
	start = spop_frame_begin(&w, SPOP_FRAME_HAPROXY_HELLO, SPOP_FLAG_FIN, 0, 0);
	if (o->versions) {
		put_key(&w, "supported-versions");
		spop_put_str(&w, SPOP_T_STRING, o->versions, strlen(o->versions));
	}
	if (o->max_frame_size) {
		put_key(&w, "max-frame-size");
		spop_put_uint(&w, SPOP_T_UINT32, o->max_frame_size);
	}
	if (o->capabilities) {
		put_key(&w, "capabilities");
		spop_put_str(&w, SPOP_T_STRING, o->capabilities, strlen(o->capabilities));
	}
	if (o->healthcheck >= 0) {
		spop_data d = spc_bool(o->healthcheck);
		put_key(&w, "healthcheck");
		spop_put_data(&w, &d);
	}
	if (o->engine_id) {
		put_key(&w, "engine-id");
		spop_put_str(&w, SPOP_T_STRING, o->engine_id, strlen(o->engine_id));
	}
	return spop_frame_end(&w, start);
}

size_t spc_build_notify(uint8_t *out, size_t cap, uint64_t sid, uint64_t fid,
                        const spc_msg *msgs, unsigned nmsgs)
{
	spop_wbuf w;
	size_t start;
	unsigned i, j;

	spop_wbuf_init(&w, out, cap);
	start = spop_frame_begin(&w, SPOP_FRAME_NOTIFY, SPOP_FLAG_FIN, sid, fid);
	for (i = 0; i < nmsgs; i++) {
		uint8_t nargs = (uint8_t)msgs[i].nargs;

		spop_put_name(&w, msgs[i].name, strlen(msgs[i].name));
		spop_put_bytes(&w, &nargs, 1);
		for (j = 0; j < msgs[i].nargs; j++) {
			const spc_arg *a = &msgs[i].args[j];
			spop_put_name(&w, a->name ? a->name : "", a->name ? strlen(a->name) : 0);
			spop_put_data(&w, &a->val);
		}
	}
	return spop_frame_end(&w, start);
}

size_t spc_build_notify_uid(uint8_t *out, size_t cap, uint64_t sid, uint64_t fid,
                            const char *name, const char *uid)
{
	spc_arg arg = { "uid", spc_cstr(uid) };
	spc_msg msg = { name, &arg, 1 };

	return spc_build_notify(out, cap, sid, fid, &msg, 1);
}

size_t spc_build_frame(uint8_t *out, size_t cap, uint8_t type, uint32_t flags,
                       uint64_t sid, uint64_t fid, const void *payload, size_t n)
{
	spop_wbuf w;
	size_t start;

	spop_wbuf_init(&w, out, cap);
	start = spop_frame_begin(&w, type, flags, sid, fid);
	if (n)
		spop_put_bytes(&w, payload, n);
	return spop_frame_end(&w, start);
}

size_t spc_build_disconnect(uint8_t *out, size_t cap, unsigned status,
                            const char *message)
{
	spop_wbuf w;
	size_t start;

	spop_wbuf_init(&w, out, cap);
	start = spop_frame_begin(&w, SPOP_FRAME_HAPROXY_DISCONNECT, SPOP_FLAG_FIN, 0, 0);
	put_key(&w, "status-code");
	spop_put_uint(&w, SPOP_T_UINT32, status);
	put_key(&w, "message");
	spop_put_str(&w, SPOP_T_STRING, message, strlen(message));
	return spop_frame_end(&w, start);
}

spop_data spc_null(void)
{
	spop_data d;
	memset(&d, 0, sizeof(d));
	d.type = SPOP_T_NULL;
	return d;
}

spop_data spc_bool(int b)
{
	spop_data d = spc_null();
	d.type = SPOP_T_BOOL;
	d.v.b = b != 0;
	return d;
}

spop_data spc_int(uint8_t type, int64_t v)
{
	spop_data d = spc_null();
	d.type = type;
	if (type == SPOP_T_INT32 || type == SPOP_T_INT64)
		d.v.i = v;
	else
		d.v.u = (uint64_t)v;
	return d;
}

spop_data spc_str(uint8_t type, const void *p, size_t n)
{
	spop_data d = spc_null();
	d.type = type;
	d.v.s.ptr = p;
	d.v.s.len = n;
	return d;
}

spop_data spc_cstr(const char *s)
{
	return spc_str(SPOP_T_STRING, s, strlen(s));
}

spop_data spc_ip(uint8_t type, const void *addr)
{
	spop_data d = spc_null();
	d.type = type;
	memcpy(d.v.ip, addr, type == SPOP_T_IPV4 ? 4 : 16);
	return d;
}

/* ---- decoding ---- */

int spc_str_eq(spop_str s, const char *w)
{
	size_t n = strlen(w);
	return s.len == n && (n == 0 || memcmp(s.ptr, w, n) == 0);
}

int spc_parse_agent_hello(const spc_frame *fr, spc_agent_hello *h)
{
	spop_iter it;
	spop_str k;
	spop_data v;
	int r;

	memset(h, 0, sizeof(*h));
	spop_iter_init(&it, fr->f.payload, fr->f.payload_len);
	while ((r = spop_kv_next(&it, &k, &v)) == 1) {
		uint8_t t = v.type & SPOP_T_MASK;

		h->nkeys++;
		if (spc_str_eq(k, "version")) {
			h->duplicates += h->has_version;
			h->has_version = 1;
			if (t == SPOP_T_STRING)
				h->version = v.v.s;
			else
				h->version_not_string = 1;
		} else if (spc_str_eq(k, "max-frame-size")) {
			h->duplicates += h->has_max_frame_size;
			h->has_max_frame_size = 1;
			h->max_frame_size_type = t;
			if (t >= SPOP_T_INT32 && t <= SPOP_T_UINT64)
				h->max_frame_size = v.v.u;
		} else if (spc_str_eq(k, "capabilities")) {
			h->duplicates += h->has_capabilities;
			h->has_capabilities = 1;
			if (t == SPOP_T_STRING)
				h->capabilities = v.v.s;
			else
				h->caps_not_string = 1;
		}
	}
	return r;
}

int spc_parse_ack(const spc_frame *fr, unsigned *nactions, spop_action *first)
{
	spop_iter it;
	spop_action a;
	int r;

	*nactions = 0;
	memset(first, 0, sizeof(*first));
	spop_iter_init(&it, fr->f.payload, fr->f.payload_len);
	while ((r = spop_action_next(&it, &a)) == 1) {
		if ((*nactions)++ == 0)
			*first = a;
	}
	return r;
}

int spc_parse_disconnect(const spc_frame *fr, spop_disconnect *d)
{
	return spop_disconnect_parse(fr->f.payload, fr->f.payload_len, d);
}

/* ---- conveniences ---- */

static void describe_frame(char *out, size_t len, const spc_frame *fr)
{
	if (fr->f.type == SPOP_FRAME_AGENT_DISCONNECT) {
		spop_disconnect d;
		if (spc_parse_disconnect(fr, &d) == 0) {
			snprintf(out, len, "AGENT-DISCONNECT status %llu \"%.*s\"",
			         (unsigned long long)d.status,
			         (int)(d.message.len > 80 ? 80 : d.message.len),
			         (const char *)d.message.ptr);
			return;
		}
	}
	snprintf(out, len, "frame type %u, %zu bytes", fr->f.type, fr->raw_len);
}

int spc_handshake(spc_conn *c, const spc_hello_opts *o, spc_agent_hello *h,
                  spc_frame *fr, int timeout_ms)
{
	uint8_t buf[4096];
	size_t n = spc_build_hello(buf, sizeof(buf), o);
	char what[160];
	int r;

	if (n == 0) {
		snprintf(c->errmsg, sizeof(c->errmsg), "HELLO does not fit in %zu bytes", sizeof(buf));
		return SPC_ENOMEM;
	}
	if ((r = spc_send(c, buf, n, timeout_ms)) != SPC_OK)
		return r;
	r = spc_read_frame(c, fr, timeout_ms);
	if (r == SPC_OK) {
		snprintf(c->errmsg, sizeof(c->errmsg), "agent closed instead of answering the HELLO");
		return SPC_EPROTO;
	}
	if (r != SPC_FRAME)
		return r;
	if (fr->f.type != SPOP_FRAME_AGENT_HELLO) {
		describe_frame(what, sizeof(what), fr);
		snprintf(c->errmsg, sizeof(c->errmsg), "expected AGENT-HELLO, got %.120s", what);
		return SPC_EPROTO;
	}
	if ((r = spc_parse_agent_hello(fr, h)) < 0) {
		snprintf(c->errmsg, sizeof(c->errmsg), "bad AGENT-HELLO payload: %s", spop_strerror(r));
		return SPC_EPROTO;
	}
	return SPC_OK;
}

int spc_roundtrip(spc_conn *c, uint64_t sid, uint64_t fid, int timeout_ms)
{
	uint8_t buf[256];
	char uid[64], what[160];
	spc_frame fr;
	size_t n;
	int r;

	snprintf(uid, sizeof(uid), "rt-%llu-%llu", (unsigned long long)sid,
	         (unsigned long long)fid);
	n = spc_build_notify_uid(buf, sizeof(buf), sid, fid, "t-ping", uid);
	if ((r = spc_send(c, buf, n, timeout_ms)) != SPC_OK)
		return r;
	r = spc_read_frame(c, &fr, timeout_ms);
	if (r == SPC_OK) {
		snprintf(c->errmsg, sizeof(c->errmsg), "agent closed instead of ACKing");
		return SPC_EPROTO;
	}
	if (r != SPC_FRAME)
		return r;
	if (fr.f.type != SPOP_FRAME_ACK || fr.f.sid != sid || fr.f.fid != fid ||
	    fr.f.flags != SPOP_FLAG_FIN) {
		describe_frame(what, sizeof(what), &fr);
		snprintf(c->errmsg, sizeof(c->errmsg),
		         "expected ACK sid %llu fid %llu flags 1, got %.100s sid %llu fid %llu flags %#x",
		         (unsigned long long)sid, (unsigned long long)fid, what,
		         (unsigned long long)fr.f.sid, (unsigned long long)fr.f.fid,
		         fr.f.flags);
		return SPC_EPROTO;
	}
	return SPC_OK;
}

void spc_hex(char *out, size_t outlen, const void *p, size_t n, size_t max)
{
	const uint8_t *b = p;
	size_t i, o = 0;

	if (outlen == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < n && i < max && o + 4 < outlen; i++)
		o += (size_t)snprintf(out + o, outlen - o, "%s%02x", i ? " " : "", b[i]);
	if (i < n && o + 4 < outlen)
		snprintf(out + o, outlen - o, " ...");
}
