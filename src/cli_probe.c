/* cli_probe.c -- `spoolcap probe HOST:PORT|unix:PATH`: plays HAProxy
 * against an SPOP agent (spoolcapd or any other) to test it before
 * deploying: HAPROXY-HELLO, AGENT-HELLO, one NOTIFY shaped like the contrib
 * recipe's cap-req message, its ACK, HAPROXY-DISCONNECT. Prints what was
 * negotiated, the ACK's actions and the round-trip time of each step, and
 * checks every reply the way HAProxy does; exit status 1 on the first
 * thing HAProxy would refuse, with what and why.
 *
 * The NOTIFY is a real message: spoolcapd stores and delivers it like any
 * other (its uid starts with "spoolcap-probe-"). --healthcheck stops after
 * the HELLO exchange, like HAProxy's option spop-check, and stores nothing.
 *
 * Blocking I/O with poll() deadlines; every frame read is bounded by the
 * max-frame-size we announced. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "spoolcap/cli.h"
#include "spoolcap/spop.h"

#define DEF_TIMEOUT_MS   5000
#define DEF_FRAME_SIZE   16380u          /* HAProxy's default: tune.bufsize - 4 */
#define MAX_FRAME_SIZE   (16u << 20)
#define PROBE_SID        1
#define PROBE_FID        1
#define INDENT           "                          "   /* under the text column */

struct probe {
	int      fd;
	int      timeout_ms;
	uint32_t max_frame;           /* what we accept from the agent */
	uint8_t *buf;                 /* received bytes: [0, len) */
	size_t   len, cap;
	int      eof;
	char     peer[300];           /* "tcp 127.0.0.1:12345" / "unix /run/x.sock" */
	char     err[512];
};

static void usage(FILE *f)
{
	fprintf(f, "usage: spoolcap probe ADDRESS [--timeout TIME] [--healthcheck]\n"
	        "                      [--max-frame-size N] [--message NAME]\n"
	        "Tests the SPOP agent at ADDRESS (HOST:PORT, [IPV6]:PORT or unix:PATH)\n"
	        "the way HAProxy talks to it: HELLO, one NOTIFY with sample request\n"
	        "arguments, its ACK, DISCONNECT. Prints the negotiated version,\n"
	        "max-frame-size and capabilities, the ACK's actions and the round-trip\n"
	        "times. Exit status 0 if HAProxy would be content, 1 if not (with the\n"
	        "reason), 2 for bad arguments. The NOTIFY is stored like real traffic\n"
	        "(uid spoolcap-probe-...); --healthcheck stores nothing.\n"
	        "  --timeout TIME       wait at most TIME for each step (default 5s;\n"
	        "                       500ms, 2s, 1m)\n"
	        "  --healthcheck        a health-check HELLO only (option spop-check)\n"
	        "  --max-frame-size N   announce N, 256 to 16777216 (default 16380)\n"
	        "  --message NAME       the NOTIFY's message name (default cap-req)\n");
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double ms_since(int64_t t0)
{
	return (double)(mono_ns() - t0) / 1e6;
}

static int parse_timeout(const char *s, int *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || v <= 0 || s[0] == '-')
		return -1;
	if (!strcmp(end, "ms"))
		;
	else if (!*end || !strcmp(end, "s"))
		v *= 1000;
	else if (!strcmp(end, "m"))
		v *= 60000;
	else
		return -1;
	if (v < 1 || v > 3600000)
		return -1;
	*ms = (int)v;
	return 0;
}

/* ------------------------------------------------------------- socket */

static int wait_fd(int fd, short ev, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int r;

	for (;;) {
		int64_t left = (deadline - mono_ns()) / 1000000;

		if (left <= 0)
			return 0;
		r = poll(&p, 1, (int)left);
		if (r >= 0 || errno != EINTR)
			return r;
	}
}

/* Non-blocking connect with a deadline; 0 or -1 (errno set). */
static int connect_fd(int fd, const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
	int e = 0;
	socklen_t el = sizeof e;
	int r = connect(fd, sa, len);

	if (r == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -1;
	r = wait_fd(fd, POLLOUT, mono_ns() + (int64_t)timeout_ms * 1000000);
	if (r == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
		return -1;
	if (e) {
		errno = e;
		return -1;
	}
	return 0;
}

static int probe_connect(struct probe *p, const char *addr)
{
	char host[256], port[16];
	const char *colon;
	struct addrinfo hints, *res, *ai;
	char ip[INET6_ADDRSTRLEN] = "?";
	int r, e = 0, same = 1;

	if (!strncmp(addr, "unix:", 5)) {
		struct sockaddr_un sa;

		memset(&sa, 0, sizeof sa);
		sa.sun_family = AF_UNIX;
		if (!addr[5] || strlen(addr + 5) >= sizeof sa.sun_path) {
			snprintf(p->err, sizeof p->err, "bad unix socket path '%s'", addr + 5);
			return -2;
		}
		strcpy(sa.sun_path, addr + 5);
		snprintf(p->peer, sizeof p->peer, "unix %s", addr + 5);
		p->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (p->fd < 0 || connect_fd(p->fd, (struct sockaddr *)&sa, sizeof sa,
		                            p->timeout_ms) < 0) {
			snprintf(p->err, sizeof p->err, "cannot connect to %s: %s (is the agent "
			         "running and listening there?)", addr, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');

		if (!rb || rb[1] != ':' || (size_t)(rb - addr - 1) >= sizeof host) {
			snprintf(p->err, sizeof p->err, "bad address '%s': expected [IPV6]:PORT", addr);
			return -2;
		}
		snprintf(host, sizeof host, "%.*s", (int)(rb - addr - 1), addr + 1);
		colon = rb + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || colon == addr || strchr(addr, ':') != colon ||
		    (size_t)(colon - addr) >= sizeof host) {
			snprintf(p->err, sizeof p->err, "bad address '%s': expected HOST:PORT, "
			         "[IPV6]:PORT or unix:PATH", addr);
			return -2;
		}
		snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
	}
	{
		char *end;
		unsigned long pn = strtoul(colon + 1, &end, 10);

		if (!colon[1] || *end || pn == 0 || pn > 65535) {
			snprintf(p->err, sizeof p->err, "bad port in '%s': expected 1 to 65535", addr);
			return -2;
		}
		snprintf(port, sizeof port, "%lu", pn);
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
		snprintf(p->err, sizeof p->err, "cannot resolve '%s': %s", host, gai_strerror(r));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		void *a = ai->ai_family == AF_INET6
		          ? (void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
		          : (void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;

		inet_ntop(ai->ai_family, a, ip, sizeof ip);
		same = !strcmp(ip, host);
		snprintf(p->peer, sizeof p->peer, ai->ai_family == AF_INET6 ? "tcp [%s]:%s"
		         : "tcp %s:%s", ip, port);
		p->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (p->fd >= 0 && connect_fd(p->fd, ai->ai_addr, ai->ai_addrlen,
		                             p->timeout_ms) == 0) {
			int one = 1;

			setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			freeaddrinfo(res);
			return 0;
		}
		e = errno;
		if (p->fd >= 0)
			close(p->fd);
		p->fd = -1;
	}
	freeaddrinfo(res);
	/* name the address tried when HOST was a name */
	snprintf(p->err, sizeof p->err, "cannot connect to %s%s%s%s: %s (is the agent "
	         "running and listening there?)", addr, same ? "" : " (", same ? "" : p->peer + 4,
	         same ? "" : ")", strerror(e));
	return -1;
}

static int send_frame(struct probe *p, const uint8_t *b, size_t n, const char *what)
{
	int64_t deadline = mono_ns() + (int64_t)p->timeout_ms * 1000000;
	size_t off = 0;

	while (off < n) {
		ssize_t w = send(p->fd, b + off, n - off, MSG_NOSIGNAL);

		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			snprintf(p->err, sizeof p->err, "sending the %s failed: %s", what,
			         strerror(errno));
			return -1;
		}
		if (wait_fd(p->fd, POLLOUT, deadline) <= 0) {
			snprintf(p->err, sizeof p->err, "could not send the %s within %d ms", what,
			         p->timeout_ms);
			return -1;
		}
	}
	return 0;
}

/* The peer's first bytes as text when they are printable (an HTTP server's
 * status line), else in hex. */
static void show_bytes(char *out, size_t cap, const uint8_t *b, size_t n)
{
	size_t i, o = 0, printable = 0;

	if (n > 48)
		n = 48;
	for (i = 0; i < n; i++)
		printable += (b[i] >= 0x20 && b[i] < 0x7f) || b[i] == '\r' || b[i] == '\n';
	if (n && printable == n) {
		out[o++] = '"';
		for (i = 0; i < n && o + 6 < cap; i++) {
			if (b[i] == '\r' || b[i] == '\n') {
				o += (size_t)snprintf(out + o, cap - o, "\\%c", b[i] == '\r' ? 'r' : 'n');
				continue;
			}
			out[o++] = (char)b[i];
		}
		out[o++] = '"';
		out[o] = 0;
		return;
	}
	out[0] = 0;
	for (i = 0; i < n && o + 4 < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%02x", i ? " " : "", b[i]);
}

/* Reads one frame into *f (payload points into p->buf, valid until the
 * next call). 1: a frame; 0: the peer closed cleanly between frames;
 * -1: error (p->err). */
static int read_frame(struct probe *p, spop_frame *f, size_t *used, const char *what)
{
	int64_t deadline = mono_ns() + (int64_t)p->timeout_ms * 1000000;
	char shown[200];

	for (;;) {
		int r;
		ssize_t n;

		if (p->len) {
			r = spop_frame_get(p->buf, p->len, p->max_frame, f, used);
			if (r == 1)
				return 1;
			if (r < 0) {
				show_bytes(shown, sizeof shown, p->buf, p->len);
				if (r == SPOP_ETOOBIG)
					snprintf(p->err, sizeof p->err, "the %s is not an SPOP frame: its "
					         "length prefix says %" PRIu32 " bytes, more than the "
					         "max-frame-size %" PRIu32 " (is this an SPOP agent? it "
					         "sent %s)", what,
					         (uint32_t)p->buf[0] << 24 | (uint32_t)p->buf[1] << 16 |
					         (uint32_t)p->buf[2] << 8 | p->buf[3], p->max_frame, shown);
				else
					snprintf(p->err, sizeof p->err, "the %s is not a valid SPOP frame "
					         "(%s): %s", what, spop_strerror(r), shown);
				return -1;
			}
		}
		if (p->eof) {
			if (!p->len)
				return 0;
			show_bytes(shown, sizeof shown, p->buf, p->len);
			snprintf(p->err, sizeof p->err, "the agent closed the connection in the "
			         "middle of the %s (%zu bytes: %s)", what, p->len, shown);
			return -1;
		}
		if (p->len == p->cap) {    /* cannot happen: cap = max frame + 4 */
			snprintf(p->err, sizeof p->err, "the %s does not fit in %zu bytes", what,
			         p->cap);
			return -1;
		}
		r = wait_fd(p->fd, POLLIN, deadline);
		if (r == 0) {
			snprintf(p->err, sizeof p->err, "no %s within %d ms%s", what, p->timeout_ms,
			         p->len ? " (a partial frame arrived)" : "");
			return -1;
		}
		if (r < 0) {
			snprintf(p->err, sizeof p->err, "waiting for the %s: %s", what,
			         strerror(errno));
			return -1;
		}
		n = recv(p->fd, p->buf + p->len, p->cap - p->len, 0);
		if (n > 0)
			p->len += (size_t)n;
		else if (n == 0)
			p->eof = 1;
		else if (errno != EINTR && errno != EAGAIN) {
			snprintf(p->err, sizeof p->err, "reading the %s: %s%s", what, strerror(errno),
			         errno == ECONNRESET ? " (the agent reset the connection)" : "");
			return -1;
		}
	}
}

static void consume(struct probe *p, size_t used)
{
	memmove(p->buf, p->buf + used, p->len - used);
	p->len -= used;
}

/* An AGENT-DISCONNECT where another frame was expected: its reason. */
static void describe_disconnect(struct probe *p, const spop_frame *f, const char *instead)
{
	spop_disconnect d;

	if (spop_disconnect_parse(f->payload, f->payload_len, &d) == 0 && d.has_status)
		snprintf(p->err, sizeof p->err, "the agent answered the %s with AGENT-DISCONNECT "
		         "status %" PRIu64 " (%s): \"%.*s\"", instead, d.status,
		         spop_status_str((unsigned)d.status),
		         (int)(d.message.len > 255 ? 255 : d.message.len),
		         (const char *)d.message.ptr);
	else
		snprintf(p->err, sizeof p->err, "the agent answered the %s with an "
		         "AGENT-DISCONNECT that does not parse", instead);
}

/* ------------------------------------------------------------- frames */

static size_t build_hello(uint8_t *out, size_t cap, uint32_t max_frame, int healthcheck)
{
	spop_wbuf w;
	spop_data hc;
	uint8_t r[16];
	char eid[40];
	size_t start;

	/* an engine id like HAProxy's: a random UUID */
	if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
		memset(r, 0x5c, sizeof r);
	r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
	r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
	snprintf(eid, sizeof eid, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	         "%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
	         r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
	spop_wbuf_init(&w, out, cap);
	start = spop_frame_begin(&w, SPOP_FRAME_HAPROXY_HELLO, SPOP_FLAG_FIN, 0, 0);
	spop_put_name(&w, "supported-versions", 18);
	spop_put_str(&w, SPOP_T_STRING, SPOP_VERSION, strlen(SPOP_VERSION));
	spop_put_name(&w, "max-frame-size", 14);
	spop_put_uint(&w, SPOP_T_UINT32, max_frame);
	spop_put_name(&w, "capabilities", 12);
	spop_put_str(&w, SPOP_T_STRING, healthcheck ? "" : "pipelining",
	             healthcheck ? 0 : 10);
	spop_put_name(&w, "healthcheck", 11);
	memset(&hc, 0, sizeof hc);
	hc.type = SPOP_T_BOOL;
	hc.v.b = healthcheck;
	spop_put_data(&w, &hc);
	if (!healthcheck) {
		spop_put_name(&w, "engine-id", 9);
		spop_put_str(&w, SPOP_T_STRING, eid, strlen(eid));
	}
	return spop_frame_end(&w, start);
}

static void put_arg_str(spop_wbuf *w, const char *name, uint8_t type, const void *p, size_t n)
{
	spop_put_name(w, name, strlen(name));
	spop_put_str(w, type, p, n);
}

static void put_arg_int(spop_wbuf *w, const char *name, int64_t v)
{
	spop_data d;

	memset(&d, 0, sizeof d);
	d.type = SPOP_T_INT64;
	d.v.i = v;
	spop_put_name(w, name, strlen(name));
	spop_put_data(w, &d);
}

static void put_arg_data(spop_wbuf *w, const char *name, const spop_data *d)
{
	spop_put_name(w, name, strlen(name));
	spop_put_data(w, d);
}

/* A NOTIFY with one message shaped like the recipe's cap-req (full), or
 * with uid, meth and path only (when the agent's frames are that small).
 * *nargs gets the argument count. */
static size_t build_notify(uint8_t *out, size_t cap, const char *msg, int full,
                           unsigned *nargs)
{
	static const char *const hdrs[][2] = {
		{ "host", "spoolcap-probe.invalid" },
		{ "user-agent", "spoolcap-probe/" PACKAGE_VERSION },
		{ "accept", "*/*" },
	};
	uint8_t hb[160];
	spop_wbuf w, h;
	spop_data d;
	struct timespec ts;
	char uid[64];
	size_t start, i;
	uint8_t n = full ? 15 : 3;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(uid, sizeof uid, "spoolcap-probe-%ld-%lld", (long)getpid(),
	         (long long)ts.tv_sec);
	/* req.hdrs_bin: (name, value) as varint-length strings, then 00 00 */
	spop_wbuf_init(&h, hb, sizeof hb);
	for (i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
		spop_put_name(&h, hdrs[i][0], strlen(hdrs[i][0]));
		spop_put_name(&h, hdrs[i][1], strlen(hdrs[i][1]));
	}
	spop_put_bytes(&h, "\0\0", 2);

	spop_wbuf_init(&w, out, cap);
	start = spop_frame_begin(&w, SPOP_FRAME_NOTIFY, SPOP_FLAG_FIN, PROBE_SID, PROBE_FID);
	spop_put_name(&w, msg, strlen(msg));
	spop_put_bytes(&w, &n, 1);
	put_arg_str(&w, "uid", SPOP_T_STRING, uid, strlen(uid));
	if (full)
		put_arg_int(&w, "t", (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	put_arg_str(&w, "meth", SPOP_T_STRING, "GET", 3);
	put_arg_str(&w, "path", SPOP_T_STRING, "/spoolcap-probe", 15);
	if (full) {
		memset(&d, 0, sizeof d);
		put_arg_str(&w, "query", SPOP_T_STRING, "probe=1", 7);
		put_arg_str(&w, "ver", SPOP_T_STRING, "1.1", 3);
		d.type = SPOP_T_IPV4;
		memcpy(d.v.ip, "\xc0\x00\x02\x01", 4);          /* 192.0.2.1 (TEST-NET-1) */
		put_arg_data(&w, "src", &d);
		put_arg_int(&w, "sport", 54321);
		memcpy(d.v.ip, "\xc0\x00\x02\x02", 4);
		put_arg_data(&w, "dst", &d);
		put_arg_int(&w, "dport", 80);
		memset(&d, 0, sizeof d);
		d.type = SPOP_T_BOOL;
		put_arg_data(&w, "tls", &d);
		put_arg_str(&w, "hdrs", SPOP_T_BINARY, hb, h.len);
		put_arg_int(&w, "blen", 0);
		put_arg_int(&w, "bsize", 0);
		put_arg_str(&w, "body", SPOP_T_BINARY, "", 0);
	}
	*nargs = n;
	return spop_frame_end(&w, start);
}

static void fmt_value(char *out, size_t cap, const spop_data *d)
{
	char ip[INET6_ADDRSTRLEN];
	size_t i, o;

	switch (d->type & SPOP_T_MASK) {
	case SPOP_T_NULL: snprintf(out, cap, "null"); break;
	case SPOP_T_BOOL: snprintf(out, cap, "%s", d->v.b ? "true" : "false"); break;
	case SPOP_T_INT32:
	case SPOP_T_INT64: snprintf(out, cap, "%" PRId64, d->v.i); break;
	case SPOP_T_UINT32:
	case SPOP_T_UINT64: snprintf(out, cap, "%" PRIu64, d->v.u); break;
	case SPOP_T_IPV4:
	case SPOP_T_IPV6:
		inet_ntop((d->type & SPOP_T_MASK) == SPOP_T_IPV4 ? AF_INET : AF_INET6, d->v.ip,
		          ip, sizeof ip);
		snprintf(out, cap, "%s", ip);
		break;
	default:                            /* STRING, BINARY: quoted, cut, safe */
		o = 0;
		out[o++] = '"';
		for (i = 0; i < d->v.s.len && i < 64 && o + 6 < cap; i++) {
			uint8_t c = d->v.s.ptr[i];

			if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
				out[o++] = (char)c;
			else
				o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
		}
		if (i < d->v.s.len && o + 4 < cap)
			o += (size_t)snprintf(out + o, cap - o, "...");
		snprintf(out + o, cap - o, "\"");
	}
}

static const char *scope_name(unsigned s)
{
	static const char *const n[] = { "proc", "sess", "txn", "req", "res" };

	return s < 5 ? n[s] : "?";
}

/* ---------------------------------------------------------------- main */

static int fail(struct probe *p)
{
	fprintf(stderr, "spoolcap probe: %s\n", p->err);
	return CLI_EXIT_DATA;
}

/* Checks an AGENT-HELLO the way HAProxy does; prints it. *mfs gets the
 * negotiated max-frame-size. */
static int check_hello(struct probe *p, const spop_frame *f, uint32_t announced,
                       double ms, uint32_t *mfs)
{
	spop_iter it;
	spop_str k, version = { NULL, 0 }, caps = { NULL, 0 };
	spop_data v;
	uint64_t size = 0;
	int r, has_v = 0, has_s = 0, has_c = 0, major, minor, n = 0;
	char vs[32];

	if (f->type == SPOP_FRAME_AGENT_DISCONNECT) {
		describe_disconnect(p, f, "HELLO");
		return -1;
	}
	if (f->type != SPOP_FRAME_AGENT_HELLO) {
		snprintf(p->err, sizeof p->err, "expected AGENT-HELLO (frame type 101), got "
		         "frame type %u", f->type);
		return -1;
	}
	if (f->flags != SPOP_FLAG_FIN || f->sid || f->fid) {
		snprintf(p->err, sizeof p->err, "AGENT-HELLO must have flags exactly FIN and "
		         "stream/frame ids 0/0 (HAProxy 3.x checks refuse anything else); got "
		         "flags %#" PRIx32 ", ids %" PRIu64 "/%" PRIu64, f->flags, f->sid, f->fid);
		return -1;
	}
	spop_iter_init(&it, f->payload, f->payload_len);
	while ((r = spop_kv_next(&it, &k, &v)) == 1) {
		uint8_t t = v.type & SPOP_T_MASK;

		if (k.len == 7 && !memcmp(k.ptr, "version", 7)) {
			if (t != SPOP_T_STRING) {
				snprintf(p->err, sizeof p->err, "AGENT-HELLO: \"version\" is not a string");
				return -1;
			}
			version = v.v.s;
			has_v = 1;
		} else if (k.len == 14 && !memcmp(k.ptr, "max-frame-size", 14)) {
			if (t < SPOP_T_INT32 || t > SPOP_T_UINT64 ||
			    ((t == SPOP_T_INT32 || t == SPOP_T_INT64) && v.v.i < 0)) {
				snprintf(p->err, sizeof p->err, "AGENT-HELLO: \"max-frame-size\" is not "
				         "a non-negative integer");
				return -1;
			}
			size = v.v.u;
			has_s = 1;
		} else if (k.len == 12 && !memcmp(k.ptr, "capabilities", 12)) {
			if (t != SPOP_T_STRING) {
				snprintf(p->err, sizeof p->err, "AGENT-HELLO: \"capabilities\" is not "
				         "a string");
				return -1;
			}
			caps = v.v.s;
			has_c = 1;
		}
	}
	if (r < 0) {
		snprintf(p->err, sizeof p->err, "AGENT-HELLO payload does not decode: %s",
		         spop_strerror(r));
		return -1;
	}
	if (!has_v) {
		snprintf(p->err, sizeof p->err, "AGENT-HELLO has no \"version\" (HAProxy "
		         "disconnects with status 5)");
		return -1;
	}
	snprintf(vs, sizeof vs, "%.*s", (int)(version.len < 31 ? version.len : 31),
	         (const char *)version.ptr);
	if (sscanf(vs, " %d.%d %n", &major, &minor, &n) != 2 || vs[n] || major != 2 ||
	    minor != 0) {
		snprintf(p->err, sizeof p->err, "AGENT-HELLO version \"%s\" is not the one "
		         "HAProxy offered (%s; HAProxy disconnects with status 8)", vs,
		         SPOP_VERSION);
		return -1;
	}
	if (!has_s) {
		snprintf(p->err, sizeof p->err, "AGENT-HELLO has no \"max-frame-size\" "
		         "(HAProxy 2.6 disconnects with status 6)");
		return -1;
	}
	if (size < SPOP_FRAME_SIZE_MIN || size > announced) {
		snprintf(p->err, sizeof p->err, "AGENT-HELLO max-frame-size %" PRIu64 " is "
		         "outside %d..%" PRIu32 " (HAProxy disconnects with status 9)", size,
		         SPOP_FRAME_SIZE_MIN, announced);
		return -1;
	}
	if (!has_c) {
		snprintf(p->err, sizeof p->err, "AGENT-HELLO has no \"capabilities\" (send it "
		         "even empty: HAProxy 3.x health checks fail with status 7 without it)");
		return -1;
	}
	*mfs = (uint32_t)size;
	printf("%-13s%8.3f ms  version %s, max-frame-size %" PRIu64
	       ", capabilities \"%.*s\"\n", "AGENT-HELLO", ms, vs, size, (int)(caps.len > 200 ? 200 : caps.len),
	       (const char *)caps.ptr);
	if (spop_list_has(caps, "async"))
		printf(INDENT "note: the agent claims \"async\", which HAProxy did not "
		       "offer here (3.x ignores it)\n");
	if (spop_list_has(caps, "fragmentation"))
		printf(INDENT "note: the agent accepts fragmented NOTIFYs (HAProxy 2.6 "
		       "may then split large events)\n");
	return 0;
}

/* Checks the ACK and prints its actions. */
static int check_ack(struct probe *p, const spop_frame *f, double ms, const char *msg,
                     unsigned nargs, size_t notify_len)
{
	spop_iter it;
	spop_action a;
	char val[300];
	unsigned n = 0;
	int r, not_spooled = 0;

	if (f->type == SPOP_FRAME_AGENT_DISCONNECT) {
		describe_disconnect(p, f, "NOTIFY");
		return -1;
	}
	if (f->type != SPOP_FRAME_ACK) {
		snprintf(p->err, sizeof p->err, "expected an ACK (frame type 103), got frame "
		         "type %u", f->type);
		return -1;
	}
	if (f->sid != PROBE_SID || f->fid != PROBE_FID) {
		snprintf(p->err, sizeof p->err, "the ACK has stream/frame ids %" PRIu64 "/%" PRIu64
		         " but the NOTIFY had %d/%d (HAProxy matches ACKs by these ids)", f->sid,
		         f->fid, PROBE_SID, PROBE_FID);
		return -1;
	}
	if (!(f->flags & SPOP_FLAG_FIN) || (f->flags & SPOP_FLAG_ABORT)) {
		snprintf(p->err, sizeof p->err, "the ACK has flags %#" PRIx32 "; HAProxy needs "
		         "FIN%s", f->flags, f->flags & SPOP_FLAG_ABORT
		                            ? " and treats ABORT as a failed event" : "");
		return -1;
	}
	printf("%-13s%8.3f ms  for a NOTIFY of 1 message \"%s\" (%u args, %zu bytes)\n",
	       "ACK", ms, msg, nargs, notify_len);
	spop_iter_init(&it, f->payload, f->payload_len);
	while ((r = spop_action_next(&it, &a)) == 1) {
		n++;
		if (a.type == SPOP_ACT_SET_VAR) {
			fmt_value(val, sizeof val, &a.value);
			printf(INDENT "set-var %s.%.*s = %s\n", scope_name(a.scope),
			       (int)a.name.len, (const char *)a.name.ptr, val);
			if ((a.value.type & SPOP_T_MASK) == SPOP_T_BOOL && !a.value.v.b &&
			    a.name.len >= 7 && !memcmp(a.name.ptr + a.name.len - 7, "spooled", 7))
				not_spooled = 1;
		} else {
			printf(INDENT "unset-var %s.%.*s\n", scope_name(a.scope),
			       (int)a.name.len, (const char *)a.name.ptr);
		}
	}
	if (r < 0) {
		snprintf(p->err, sizeof p->err, "action %u of the ACK does not decode (%s); "
		         "HAProxy would silently skip it and the ones after it", n + 1,
		         spop_strerror(r));
		return -1;
	}
	if (n == 0)
		printf(INDENT "note: no actions (HAProxy 3.1 releases before a Feb 2025 "
		       "fix time out on empty ACKs)\n");
	if (not_spooled)
		printf(INDENT "note: the agent says it did NOT store the message (spool "
		       "full, or the disk)\n");
	return 0;
}

int cli_probe(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "healthcheck", no_argument, NULL, 'c' },
		{ "max-frame-size", required_argument, NULL, 'm' },
		{ "message", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct probe p;
	spop_frame f;
	const char *msg = "cap-req";
	uint64_t mfs_opt = DEF_FRAME_SIZE;
	uint32_t mfs = 0;
	uint8_t out[1024];
	size_t n, used;
	unsigned nargs;
	int64_t t0, t;
	int opt, r, health = 0, rc = CLI_EXIT_DATA;

	memset(&p, 0, sizeof p);
	p.fd = -1;
	p.timeout_ms = DEF_TIMEOUT_MS;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "t:cm:M:h", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			if (parse_timeout(optarg, &p.timeout_ms) < 0) {
				fprintf(stderr, "spoolcap probe: --timeout expects a duration from 1ms "
				        "to 1h (500ms, 5s, 1m), not '%s'\n", optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'c': health = 1; break;
		case 'm':
			if (cli_parse_u64("--max-frame-size", optarg, &mfs_opt) < 0)
				return CLI_EXIT_USAGE;
			if (mfs_opt < SPOP_FRAME_SIZE_MIN || mfs_opt > MAX_FRAME_SIZE) {
				fprintf(stderr, "spoolcap probe: --max-frame-size must be %d to %u\n",
				        SPOP_FRAME_SIZE_MIN, MAX_FRAME_SIZE);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'M':
			if (!*optarg || strlen(optarg) > 255) {
				fprintf(stderr, "spoolcap probe: --message expects a name of 1 to 255 "
				        "bytes\n");
				return CLI_EXIT_USAGE;
			}
			msg = optarg;
			break;
		case 'h': usage(stdout); return CLI_EXIT_OK;
		default: usage(stderr); return CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "spoolcap probe: expected exactly one address (HOST:PORT, "
		        "[IPV6]:PORT or unix:PATH)\n");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	p.max_frame = (uint32_t)mfs_opt;
	p.cap = (size_t)p.max_frame + 4;
	p.buf = malloc(p.cap);
	if (!p.buf) {
		fprintf(stderr, "spoolcap probe: out of memory\n");
		return CLI_EXIT_USAGE;
	}

	t0 = t = mono_ns();
	r = probe_connect(&p, argv[optind]);
	if (r == -2) {
		fprintf(stderr, "spoolcap probe: %s\n", p.err);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (r < 0) {
		rc = fail(&p);
		goto out;
	}
	printf("%-13s%8.3f ms  %s\n", "connected", ms_since(t), p.peer);

	n = build_hello(out, sizeof out, p.max_frame, health);
	t = mono_ns();
	if (send_frame(&p, out, n, "HAPROXY-HELLO") < 0) {
		rc = fail(&p);
		goto out;
	}
	r = read_frame(&p, &f, &used, "answer to the HELLO");
	if (r == 0)
		snprintf(p.err, sizeof p.err, "the agent closed the connection without "
		         "answering the HELLO");
	if (r <= 0 || check_hello(&p, &f, p.max_frame, ms_since(t), &mfs) < 0) {
		rc = fail(&p);
		goto out;
	}
	consume(&p, used);
	p.max_frame = mfs;              /* both directions from now on */
	if (health) {
		/* HAProxy's spop-check closes here; the agent may close first */
		printf("%-13s%8.3f ms  health check passed: %s speaks SPOP %s\n", "ok",
		       ms_since(t0), argv[optind], SPOP_VERSION);
		rc = CLI_EXIT_OK;
		goto out;
	}

	n = build_notify(out, sizeof out, msg, 1, &nargs);
	if (n == 0 || n - 4 > mfs)
		n = build_notify(out, sizeof out, msg, 0, &nargs);
	if (n == 0 || n - 4 > mfs) {
		snprintf(p.err, sizeof p.err, "the agent's max-frame-size %" PRIu32 " is too "
		         "small even for a three-argument NOTIFY", mfs);
		rc = fail(&p);
		goto out;
	}
	t = mono_ns();
	if (send_frame(&p, out, n, "NOTIFY") < 0) {
		rc = fail(&p);
		goto out;
	}
	r = read_frame(&p, &f, &used, "ACK");
	if (r == 0)
		snprintf(p.err, sizeof p.err, "the agent closed the connection instead of "
		         "ACKing the NOTIFY");
	if (r <= 0 || check_ack(&p, &f, ms_since(t), msg, nargs, n) < 0) {
		rc = fail(&p);
		goto out;
	}
	consume(&p, used);

	{
		spop_wbuf w;
		spop_data st;
		size_t start;
		static const char bye[] = "spoolcap probe done";

		memset(&st, 0, sizeof st);
		st.type = SPOP_T_UINT32;
		st.v.u = SPOP_ST_NORMAL;
		spop_wbuf_init(&w, out, sizeof out);
		start = spop_frame_begin(&w, SPOP_FRAME_HAPROXY_DISCONNECT, SPOP_FLAG_FIN, 0, 0);
		spop_put_name(&w, "status-code", 11);
		spop_put_data(&w, &st);
		spop_put_name(&w, "message", 7);
		spop_put_str(&w, SPOP_T_STRING, bye, sizeof bye - 1);
		n = spop_frame_end(&w, start);
	}
	t = mono_ns();
	if (send_frame(&p, out, n, "HAPROXY-DISCONNECT") < 0) {
		rc = fail(&p);
		goto out;
	}
	r = read_frame(&p, &f, &used, "answer to the DISCONNECT");
	if (r < 0) {
		rc = fail(&p);
		goto out;
	}
	if (r == 0) {
		printf("%-13s%8.3f ms  the agent closed without an AGENT-DISCONNECT "
		       "(HAProxy accepts that)\n", "DISCONNECT", ms_since(t));
	} else if (f.type == SPOP_FRAME_AGENT_DISCONNECT) {
		spop_disconnect d;

		if (spop_disconnect_parse(f.payload, f.payload_len, &d) < 0 || !d.has_status) {
			snprintf(p.err, sizeof p.err, "the AGENT-DISCONNECT does not parse or has "
			         "no status-code");
			rc = fail(&p);
			goto out;
		}
		printf("%-13s%8.3f ms  AGENT-DISCONNECT status %" PRIu64 " (%s)%s%.*s%s\n",
		       "DISCONNECT", ms_since(t), d.status, spop_status_str((unsigned)d.status),
		       d.message.len ? ", \"" : "", (int)(d.message.len > 200 ? 200 : d.message.len),
		       (const char *)d.message.ptr, d.message.len ? "\"" : "");
	} else {
		snprintf(p.err, sizeof p.err, "expected AGENT-DISCONNECT (frame type 102) or a "
		         "close, got frame type %u", f.type);
		rc = fail(&p);
		goto out;
	}
	printf("%-13s%8.3f ms  %s speaks SPOP %s\n", "ok", ms_since(t0), argv[optind],
	       SPOP_VERSION);
	rc = CLI_EXIT_OK;
out:
	if (p.fd >= 0)
		close(p.fd);
	free(p.buf);
	fflush(stdout);
	return rc;
}
