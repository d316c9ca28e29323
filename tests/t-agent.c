/* t-agent.c -- protocol test of the agent: runs the real spoolcapd and plays
 * HAProxy against it with the in-tree SPOP test client (spop_client.c).
 *
 * Daemon A (--max-frame-size 65536, info log) takes the handshake variants,
 * health checks, pipelining (1,000 NOTIFYs on one connection, 50 concurrent
 * connections x 200), both id styles (2.6: sid from 0 with fid 1/2; 3.x: odd
 * sids, fid 1), a peer that stops reading its ACKs (back-pressure, bounded
 * memory), huge ids, every argument type, byte-at-a-time delivery,
 * HAPROXY-DISCONNECT, abrupt client ends and every class of bad input --
 * each bad input must get the right AGENT-DISCONNECT code, a close, a warn
 * line naming the peer, and the agent must serve the next client.
 * Daemon B (--max-frame-size 1048576, debug log, 2 s hello and idle
 * timeouts) takes the timeouts and a 1 MiB frame, and proves through the
 * counting sink's log that each message arrived once.
 * Both must send AGENT-DISCONNECT 0 to a connected client and exit 0 on
 * SIGTERM, with no sanitizer report in their logs. Every wait is bounded
 * (T_IO), and after HUNG_AFTER timeouts the test bails out, so a hung agent
 * fails the test quickly instead of hanging it. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "tap.h"
#include "spop_client.h"
#include "agentd.h"

#define T_IO        10000      /* ms for any one read, send or handshake */
#define T_START     60000      /* ms for the daemon to accept (ASan, busy box) */
#define T_STOP      30000      /* ms for the daemon to exit after SIGTERM */
#define OFFER       16380      /* HAProxy's default max-frame-size */
#define CAP_A       65536      /* daemon A's --max-frame-size */
#define CAP_B       1048576    /* daemon B's --max-frame-size */
#define HUNG_AFTER  3          /* timeouts before we call the agent hung */

static char tmpdir[256];
static const char *exe;
static agentd dA, dB;
static char unix_path[300];

/* ------------------------------------------------------------ helpers */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rm_tmpdir(void);

/* An agent that stopped answering would cost T_IO per remaining check:
 * after HUNG_AFTER timeouts, show its log and bail out instead. */
static void check_hung(void)
{
	if (spc_timeouts() < HUNG_AFTER)
		return;
	tap_diag("%u operations timed out (%d ms each): the agent looks hung", spc_timeouts(), T_IO);
	if (dA.pid > 0)
		agentd_dump_log(&dA, 20);
	if (dB.pid > 0)
		agentd_dump_log(&dB, 20);
	agentd_stop(&dA, 5000);
	agentd_stop(&dB, 5000);
	rm_tmpdir();
	printf("Bail out! spoolcapd stopped answering\n");
	fflush(stdout);
	exit(1);
}

/* Main thread only (it may bail out). */
static int connect_to(spc_conn *c, const agentd *d)
{
	check_hung();
	return spc_connect_tcp(c, "127.0.0.1", d->port, T_IO);
}

/* Flags exactly FIN and STREAM-ID/FRAME-ID as the raw bytes 00 00 (ref §1.4):
 * what HAProxy checks on AGENT-HELLO and AGENT-DISCONNECT. */
static int hello_header_ok(const spc_frame *fr)
{
	static const uint8_t want[] = { 0x00, 0x00, 0x00, 0x01, 0x00, 0x00 };
	return fr->raw_len >= 11 && memcmp(fr->raw + 5, want, sizeof(want)) == 0;
}

/* NULL if fr is a correct ACK (FIN only, exactly one harmless action, ref
 * §2.4), else why not, written into why. */
static const char *ack_problem(const spc_frame *fr, char *why, size_t len)
{
	spop_action a;
	unsigned n;
	int r;

	if (fr->f.type != SPOP_FRAME_ACK)
		snprintf(why, len, "frame type %u, not ACK (103)", fr->f.type);
	else if (fr->f.flags != SPOP_FLAG_FIN)
		snprintf(why, len, "ACK flags %#x, want exactly FIN (0x1)", fr->f.flags);
	else if ((r = spc_parse_ack(fr, &n, &a)) < 0)
		snprintf(why, len, "ACK action list does not decode: %s", spop_strerror(r));
	else if (n != 1)
		snprintf(why, len, "ACK carries %u actions, want exactly 1", n);
	else if (!((a.type == SPOP_ACT_UNSET_VAR && a.nargs == 2) ||
	           (a.type == SPOP_ACT_SET_VAR && a.nargs == 3)))
		snprintf(why, len, "ACK action type %u with %u args is not set-var/unset-var",
		         a.type, a.nargs);
	else if (a.scope > SPOP_SCOPE_RES || a.name.len == 0)
		snprintf(why, len, "ACK action has scope %u, name length %zu", a.scope, a.name.len);
	else
		return NULL;
	return why;
}

/* Reads the next frame; checks it is an AGENT-DISCONNECT with status want. */
static int expect_disconnect(spc_conn *c, unsigned want, const char *what)
{
	char why[256] = "";
	spc_frame fr;
	spop_disconnect d;
	int r = spc_read_frame(c, &fr, T_IO), ok = 0;

	if (r == SPC_OK)
		snprintf(why, sizeof(why), "the agent closed without an AGENT-DISCONNECT");
	else if (r != SPC_FRAME)
		snprintf(why, sizeof(why), "%s: %.200s", spc_strerror(r), c->errmsg);
	else if (fr.f.type != SPOP_FRAME_AGENT_DISCONNECT)
		snprintf(why, sizeof(why), "got frame type %u (sid %" PRIu64 " fid %" PRIu64 ")",
		         fr.f.type, fr.f.sid, fr.f.fid);
	else if ((r = spc_parse_disconnect(&fr, &d)) < 0 || !d.has_status)
		snprintf(why, sizeof(why), "AGENT-DISCONNECT payload: %s",
		         r < 0 ? spop_strerror(r) : "no status-code");
	else if (d.status != want)
		snprintf(why, sizeof(why), "status %" PRIu64 " (%s), message \"%.*s\"",
		         d.status, spop_status_str((unsigned)d.status),
		         (int)(d.message.len > 200 ? 200 : d.message.len),
		         (const char *)d.message.ptr);
	else if (!hello_header_ok(&fr))
		snprintf(why, sizeof(why), "flags/ids are not 00 00 00 01 / 00 00");
	else if (d.message.len > 255)
		snprintf(why, sizeof(why), "message is %zu bytes (2.6 rejects > 255)", d.message.len);
	else
		ok = 1;
	tap_ok(ok, "%s: AGENT-DISCONNECT status %u (%s)", what, want, spop_status_str(want));
	if (!ok)
		tap_diag("  %s", why);
	return ok;
}

/* The agent must close after its DISCONNECT (or health-check HELLO). */
static int expect_close(spc_conn *c, const char *what)
{
	unsigned n = 0;
	int type = -1;
	int r = spc_wait_close(c, T_IO, &n, &type);
	int ok = r == SPC_OK && n == 0;

	tap_ok(ok, "%s: then the agent closes the connection", what);
	if (!ok)
		tap_diag("  %s; %u more frame(s), first of type %d%s%s", spc_strerror(r), n, type,
		         r == SPC_OK ? "" : ": ", r == SPC_OK ? "" : c->errmsg);
	return ok;
}

/* A fresh client completes HELLO + NOTIFY + ACK: the agent survived. */
static int served(const agentd *d, const char *after)
{
	spc_hello_opts o = spc_hello_default(OFFER, "pipelining");
	spc_agent_hello h;
	spc_frame fr;
	spc_conn c;
	int r = connect_to(&c, d);

	if (r == SPC_OK)
		r = spc_handshake(&c, &o, &h, &fr, T_IO);
	if (r == SPC_OK)
		r = spc_roundtrip(&c, 1, 1, T_IO);
	tap_ok(r == SPC_OK, "after %s: a new client still gets HELLO + NOTIFY + ACK", after);
	if (r != SPC_OK)
		tap_diag("  %s: %s", spc_strerror(r), c.errmsg);
	spc_close(&c);
	return r == SPC_OK;
}

/* Case-insensitive strstr (no GNU extension needed). */
static const char *find_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++) {
		size_t i;
		for (i = 0; i < n && hay[i] &&
		     tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]); i++)
			;
		if (i == n)
			return hay;
	}
	return NULL;
}

/* Reads a whole (small) file; NULL if it cannot. Caller frees. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	do {
		if (cap - len < 65536) {
			char *nb = realloc(buf, cap + 65536 + 1);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	buf[len] = '\0';
	fclose(f);
	return buf;
}

/* ------------------------------------------------ ACK/id bookkeeping */

typedef struct idrec {
	uint64_t sid, fid;
	unsigned seen;
} idrec;

static int idcmp(const void *a, const void *b)
{
	const idrec *x = a, *y = b;
	if (x->sid != y->sid)
		return x->sid < y->sid ? -1 : 1;
	if (x->fid != y->fid)
		return x->fid < y->fid ? -1 : 1;
	return 0;
}

enum id_style { IDS_26, IDS_3X };

/* 2.6: sid counts from base (0 included), each with fid 1 then 2.
 * 3.x: odd sids 1, 3, 5, ..., fid always 1 (ref §1.4). */
static void make_ids(idrec *v, size_t n, enum id_style style, uint64_t base)
{
	size_t i;

	for (i = 0; i < n; i++) {
		v[i].seen = 0;
		if (style == IDS_26) {
			v[i].sid = base + i / 2;
			v[i].fid = 1 + i % 2;
		} else {
			v[i].sid = 2 * i + 1;
			v[i].fid = 1;
		}
	}
}

typedef struct pipe_result {
	unsigned acks, unknown, dups, bad, missing;
	int io;                 /* SPC_OK, or the I/O error that stopped the run */
	char why[256];          /* first problem seen */
} pipe_result;

/* Writes a NOTIFY for every id in one go, then reads as many ACKs and
 * matches each to exactly one sent (sid, fid). ids get sorted. */
static void run_pipeline(spc_conn *c, idrec *ids, size_t n, const char *tag,
                         pipe_result *res)
{
	uint8_t *buf = malloc(n * 128 + 1);
	size_t i, len = 0;
	char uid[64], why[200];
	spc_frame fr;

	memset(res, 0, sizeof(*res));
	if (!buf) {
		res->io = SPC_ENOMEM;
		snprintf(res->why, sizeof(res->why), "out of memory");
		return;
	}
	for (i = 0; i < n; i++) {
		snprintf(uid, sizeof(uid), "%s-%" PRIu64 "-%" PRIu64, tag, ids[i].sid, ids[i].fid);
		len += spc_build_notify_uid(buf + len, 128, ids[i].sid, ids[i].fid, "t-pipe", uid);
	}
	qsort(ids, n, sizeof(*ids), idcmp);
	res->io = spc_send(c, buf, len, T_IO);
	free(buf);
	if (res->io != SPC_OK) {
		snprintf(res->why, sizeof(res->why), "send: %.200s", c->errmsg);
		return;
	}
	for (i = 0; i < n; i++) {
		idrec key, *hit;
		int r = spc_read_frame(c, &fr, T_IO);

		if (r != SPC_FRAME) {
			res->io = r == SPC_OK ? SPC_EPROTO : r;
			snprintf(res->why, sizeof(res->why), "after %zu ACKs: %.200s", i,
			         r == SPC_OK ? "the agent closed the connection" : c->errmsg);
			break;
		}
		res->acks++;
		if (ack_problem(&fr, why, sizeof(why))) {
			if (res->bad++ == 0)
				snprintf(res->why, sizeof(res->why), "%s", why);
			if (fr.f.type != SPOP_FRAME_ACK)
				continue;
		}
		key.sid = fr.f.sid;
		key.fid = fr.f.fid;
		hit = bsearch(&key, ids, n, sizeof(*ids), idcmp);
		if (!hit) {
			if (res->unknown++ == 0 && !res->why[0])
				snprintf(res->why, sizeof(res->why), "ACK for unknown sid %" PRIu64
				         " fid %" PRIu64, key.sid, key.fid);
		} else if (hit->seen++) {
			if (res->dups++ == 0 && !res->why[0])
				snprintf(res->why, sizeof(res->why), "second ACK for sid %" PRIu64
				         " fid %" PRIu64, key.sid, key.fid);
		}
	}
	for (i = 0; i < n; i++)
		res->missing += ids[i].seen == 0;
}

static int pipe_ok(const pipe_result *r, size_t n)
{
	return r->io == SPC_OK && r->acks == n && r->unknown == 0 && r->dups == 0 &&
	       r->bad == 0 && r->missing == 0;
}

static void pipe_diag(const pipe_result *r)
{
	tap_diag("  acks %u, unknown %u, duplicate %u, malformed %u, missing %u; %s",
	         r->acks, r->unknown, r->dups, r->bad, r->missing,
	         r->why[0] ? r->why : "");
}

/* -------------------------------------------------------- handshakes */

static void test_hello_variants(void)
{
	static const struct {
		const char *offer;
		int pipelining;
	} caps[] = {
		{ "", 0 },
		{ "pipelining", 1 },
		{ "pipelining,async", 1 },
		{ "pipelining, async", 1 },
		{ " pipelining ", 1 },
		{ "async , pipelining", 1 },
		{ "async", 0 },
		{ "pipelining,async,fragmentation", 1 },
		{ "fragmentation", 0 },
		{ "pipeliningx,xpipelining", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		spc_hello_opts o = spc_hello_default(OFFER, caps[i].offer);
		const char *want = caps[i].pipelining ? "pipelining" : "";
		spc_agent_hello h;
		spc_frame fr;
		spc_conn c;
		int r = connect_to(&c, &dA);

		if (r == SPC_OK)
			r = spc_handshake(&c, &o, &h, &fr, T_IO);
		if (!tap_ok(r == SPC_OK, "HELLO capabilities \"%s\": AGENT-HELLO", caps[i].offer)) {
			tap_diag("  %s: %s", spc_strerror(r), c.errmsg);
			tap_skip(5, "no AGENT-HELLO");
			spc_close(&c);
			continue;
		}
		if (!tap_ok(hello_header_ok(&fr), "  flags exactly 00 00 00 01, sid/fid bytes 00 00")) {
			char hex[64];
			spc_hex(hex, sizeof(hex), fr.raw, fr.raw_len, 12);
			tap_diag("  frame starts %s", hex);
		}
		tap_ok(h.has_version && !h.version_not_string && !h.duplicates &&
		       spc_str_eq(h.version, "2.0"), "  version \"2.0\" (STRING, once)");
		tap_ok(h.has_max_frame_size && h.max_frame_size == OFFER,
		       "  max-frame-size %d answered with %" PRIu64, OFFER, h.max_frame_size);
		if (!tap_ok(h.has_capabilities && !h.caps_not_string &&
		            spc_str_eq(h.capabilities, want),
		            "  capabilities \"%s\" (never async/fragmentation)", want))
			tap_diag("  got %s\"%.*s\"", h.has_capabilities ? "" : "no key, ",
			         (int)h.capabilities.len, (const char *)h.capabilities.ptr);
		r = spc_roundtrip(&c, 1, 1, T_IO);
		if (!tap_ok(r == SPC_OK, "  then NOTIFY -> ACK"))
			tap_diag("  %s: %s", spc_strerror(r), c.errmsg);
		spc_close(&c);
	}
}

/* Builds a NOTIFY (sid, fid 1) of LENGTH exactly len by sizing the
 * string/binary *fill (whose bytes must hold len); 0 if it cannot. */
static size_t build_exact(uint8_t *out, size_t cap, uint64_t sid, const spc_msg *m,
                          spop_data *fill, size_t len)
{
	size_t n = 0;
	int i;

	fill->v.s.len = 0;
	/* The fill's varint length grows with it: converge in a few steps. */
	for (i = 0; i < 4; i++) {
		n = spc_build_notify(out, cap, sid, 1, m, 1);
		if (n == 0 || n == len + 4)
			break;
		if (n > len + 4 && fill->v.s.len < n - (len + 4))
			return 0;
		fill->v.s.len = fill->v.s.len + (len + 4) - n;
	}
	return n == len + 4 ? n : 0;
}

/* max-frame-size = min(offered, our cap), and the agent accepts a frame of
 * exactly that LENGTH. */
static void test_frame_size_negotiation(void)
{
	static const struct {
		uint64_t offer, want;
	} v[] = {
		{ 1048576, CAP_A }, { CAP_A + 1, CAP_A }, { CAP_A, CAP_A },
		{ OFFER, OFFER }, { 4096, 4096 }, { 256, 256 },
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		spc_hello_opts o = spc_hello_default(v[i].offer, "pipelining");
		spc_agent_hello h;
		spc_frame fr;
		spc_conn c;
		int r = connect_to(&c, &dA);
		uint8_t *buf, *pad;
		size_t n;
		spc_arg args[2];
		spc_msg m = { "t-size", args, 2 };
		char why[200];

		if (r == SPC_OK)
			r = spc_handshake(&c, &o, &h, &fr, T_IO);
		if (!tap_ok(r == SPC_OK && h.max_frame_size == v[i].want,
		            "offer max-frame-size %" PRIu64 " with cap %d -> %" PRIu64,
		            v[i].offer, CAP_A, v[i].want)) {
			tap_diag("  %s %s; got %" PRIu64, spc_strerror(r), c.errmsg, h.max_frame_size);
			tap_skip(1, "no handshake");
			spc_close(&c);
			continue;
		}
		/* A NOTIFY whose LENGTH is exactly the negotiated size. */
		buf = malloc(v[i].want + 64);
		pad = calloc(1, v[i].want);
		args[0].name = "uid";
		args[0].val = spc_cstr("max");
		args[1].name = "pad";
		args[1].val = spc_str(SPOP_T_BINARY, pad, 0);
		n = build_exact(buf, v[i].want + 64, 3, &m, &args[1].val, (size_t)v[i].want);
		r = n ? spc_send(&c, buf, n, T_IO) : SPC_ENOMEM;
		if (r == SPC_OK)
			r = spc_read_frame(&c, &fr, T_IO);
		tap_ok(r == SPC_FRAME && !ack_problem(&fr, why, sizeof(why)) &&
		       fr.f.sid == 3 && fr.f.fid == 1,
		       "  a NOTIFY of LENGTH exactly %" PRIu64 " is ACKed", v[i].want);
		if (r != SPC_FRAME)
			tap_diag("  %s: %s (built %zu bytes)", spc_strerror(r), c.errmsg, n);
		else if (ack_problem(&fr, why, sizeof(why)))
			tap_diag("  %s", why);
		free(buf);
		free(pad);
		spc_close(&c);
	}
}

/* HAProxy 3.x `option spop-check`: a fixed 78-byte-LENGTH HELLO, written
 * here byte by byte from the reference (§2.1), not with our encoder. */
static const uint8_t hc_3x[] = {
	0x00, 0x00, 0x00, 0x4e, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
	0x12, 's', 'u', 'p', 'p', 'o', 'r', 't', 'e', 'd', '-',
	'v', 'e', 'r', 's', 'i', 'o', 'n', 's', 0x08, 0x03, '2', '.', '0',
	0x0e, 'm', 'a', 'x', '-', 'f', 'r', 'a', 'm', 'e', '-', 's', 'i', 'z', 'e',
	0x03, 0xfc, 0xf0, 0x06,
	0x0c, 'c', 'a', 'p', 'a', 'b', 'i', 'l', 'i', 't', 'i', 'e', 's', 0x08, 0x00,
	0x0b, 'h', 'e', 'a', 'l', 't', 'h', 'c', 'h', 'e', 'c', 'k', 0x11,
};

static void check_healthcheck(spc_conn *c, const char *what)
{
	spc_agent_hello h;
	spc_frame fr;
	unsigned more = 0;
	int type = -1, r;

	r = spc_read_frame(c, &fr, T_IO);
	if (!tap_ok(r == SPC_FRAME && fr.f.type == SPOP_FRAME_AGENT_HELLO,
	            "%s: AGENT-HELLO", what)) {
		tap_diag("  %s: %s (type %d)", spc_strerror(r), c->errmsg,
		         r == SPC_FRAME ? fr.f.type : -1);
		tap_skip(2, "no AGENT-HELLO");
		return;
	}
	r = spc_parse_agent_hello(&fr, &h);
	/* The 3.x check wants flags exactly FIN and all three keys (ref §2.2). */
	tap_ok(r == 0 && hello_header_ok(&fr) && spc_str_eq(h.version, "2.0") &&
	       h.max_frame_size == OFFER && h.has_capabilities &&
	       spc_str_eq(h.capabilities, ""),
	       "%s: flags FIN, version 2.0, max-frame-size 16380, capabilities \"\"", what);
	/* Then the agent closes; a DISCONNECT before the close is tolerated. */
	r = spc_wait_close(c, T_IO, &more, &type);
	tap_ok(r == SPC_OK && (more == 0 || (more == 1 && type == SPOP_FRAME_AGENT_DISCONNECT)),
	       "%s: then the agent closes", what);
	if (r != SPC_OK || more)
		tap_diag("  %s; %u more frame(s), first type %d", spc_strerror(r), more, type);
}

static void test_healthcheck(void)
{
	spc_hello_opts o = spc_hello_default(OFFER, "");
	spc_conn c;
	uint8_t buf[512];
	size_t n;
	int r;

	r = connect_to(&c, &dA);
	if (r == SPC_OK)
		r = spc_send(&c, hc_3x, sizeof(hc_3x), T_IO);
	if (r == SPC_OK)
		check_healthcheck(&c, "3.x spop-check HELLO (fixed 82 bytes)");
	else
		tap_ok(0, "3.x spop-check HELLO: %s", c.errmsg);
	spc_close(&c);
	served(&dA, "a 3.x health check");

	/* 2.6 spop-check: built by HAProxy, no engine-id. */
	o.engine_id = NULL;
	o.healthcheck = 1;
	n = spc_build_hello(buf, sizeof(buf), &o);
	r = connect_to(&c, &dA);
	if (r == SPC_OK)
		r = spc_send(&c, buf, n, T_IO);
	if (r == SPC_OK)
		check_healthcheck(&c, "2.6 spop-check HELLO");
	else
		tap_ok(0, "2.6 spop-check HELLO: %s", c.errmsg);
	spc_close(&c);

	/* healthcheck false is an ordinary connection. */
	{
		spc_hello_opts o2 = spc_hello_default(OFFER, "pipelining");
		spc_agent_hello h;
		spc_frame fr;

		o2.healthcheck = 0;
		r = connect_to(&c, &dA);
		if (r == SPC_OK)
			r = spc_handshake(&c, &o2, &h, &fr, T_IO);
		if (r == SPC_OK)
			r = spc_roundtrip(&c, 7, 1, T_IO);
		if (!tap_ok(r == SPC_OK, "HELLO with healthcheck=false stays open: NOTIFY -> ACK"))
			tap_diag("  %s: %s", spc_strerror(r), c.errmsg);
		spc_close(&c);
	}
}

static void test_versions(void)
{
	static const char *const good[] = { "2.0", " 2.0 ", "1.0,2.0", "1.0, 2.0", "2.1" };
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		spc_hello_opts o = spc_hello_default(OFFER, "pipelining");
		spc_agent_hello h;
		spc_frame fr;
		spc_conn c;
		int r = connect_to(&c, &dA);

		o.versions = good[i];
		if (r == SPC_OK)
			r = spc_handshake(&c, &o, &h, &fr, T_IO);
		if (!tap_ok(r == SPC_OK && spc_str_eq(h.version, "2.0"),
		            "supported-versions \"%s\" -> AGENT-HELLO version 2.0", good[i]))
			tap_diag("  %s: %s", spc_strerror(r), c.errmsg);
		spc_close(&c);
	}
}

/* ------------------------------------------------------- pipelining */

static void test_pipeline_one(enum id_style style, size_t n)
{
	const char *name = style == IDS_26 ? "2.6 ids (sid from 0, fid 1 and 2)"
	                                   : "3.x ids (odd sids, fid 1)";
	spc_hello_opts o = spc_hello_default(OFFER, style == IDS_26 ? "pipelining,async"
	                                                            : "pipelining");
	idrec *ids = calloc(n, sizeof(*ids));
	spc_agent_hello h;
	spc_frame fr;
	pipe_result res;
	spc_conn c;
	int r = connect_to(&c, &dA);

	make_ids(ids, n, style, 0);
	if (r == SPC_OK)
		r = spc_handshake(&c, &o, &h, &fr, T_IO);
	if (r != SPC_OK) {
		tap_ok(0, "%zu pipelined NOTIFYs, %s: handshake", n, name);
		tap_diag("  %s: %s", spc_strerror(r), c.errmsg);
		spc_close(&c);
		free(ids);
		return;
	}
	run_pipeline(&c, ids, n, style == IDS_26 ? "p26" : "p3x", &res);
	if (!tap_ok(pipe_ok(&res, n), "%zu pipelined NOTIFYs on one connection, %s: "
	            "every ACK matches one sent sid/fid exactly once", n, name))
		pipe_diag(&res);
	tap_ok(res.bad == 0, "  every ACK has flags FIN and exactly one set-var/unset-var");
	/* The connection is still in a clean state afterwards. */
	r = spc_roundtrip(&c, style == IDS_26 ? 100000 : 2 * n + 1, 1, T_IO);
	if (!tap_ok(r == SPC_OK, "  connection still usable after the burst"))
		tap_diag("  %s: %s", spc_strerror(r), c.errmsg);
	spc_close(&c);
	free(ids);
}

#define NCONN    50
#define PER_CONN 200

typedef struct conn_job {
	pthread_t th;
	unsigned index;
	pipe_result res;
	int hs;                 /* handshake result */
	char hs_err[160];
} conn_job;

static void *conn_thread(void *arg)
{
	conn_job *j = arg;
	enum id_style style = j->index % 2 ? IDS_3X : IDS_26;
	spc_hello_opts o = spc_hello_default(OFFER, style == IDS_26 ? "pipelining,async"
	                                                            : "pipelining");
	idrec *ids = calloc(PER_CONN, sizeof(*ids));
	spc_agent_hello h;
	spc_frame fr;
	spc_conn c;
	char tag[16];

	memset(&j->res, 0, sizeof(j->res));
	/* 2.6 sids are process-wide, so each connection gets its own range;
	 * 3.x sids restart at 1 on every connection. */
	make_ids(ids, PER_CONN, style, 1000u * j->index);
	j->hs = spc_connect_tcp(&c, "127.0.0.1", dA.port, T_IO);
	if (j->hs == SPC_OK)
		j->hs = spc_handshake(&c, &o, &h, &fr, T_IO);
	if (j->hs != SPC_OK) {
		snprintf(j->hs_err, sizeof(j->hs_err), "%.150s", c.errmsg);
	} else {
		snprintf(tag, sizeof(tag), "c%u", j->index);
		run_pipeline(&c, ids, PER_CONN, tag, &j->res);
	}
	spc_close(&c);
	free(ids);
	return NULL;
}

static void test_concurrent(void)
{
	conn_job *jobs = calloc(NCONN, sizeof(*jobs));
	unsigned i, started = 0, hs_ok = 0, ok = 0;
	pipe_result sum;
	const conn_job *first_bad = NULL;
	int64_t t0 = now_ms();

	memset(&sum, 0, sizeof(sum));
	for (i = 0; i < NCONN; i++) {
		jobs[i].index = i;
		if (pthread_create(&jobs[i].th, NULL, conn_thread, &jobs[i]) != 0)
			break;
		started++;
	}
	for (i = 0; i < started; i++)
		pthread_join(jobs[i].th, NULL);
	for (i = 0; i < started; i++) {
		const conn_job *j = &jobs[i];
		if (j->hs == SPC_OK)
			hs_ok++;
		if (j->hs == SPC_OK && pipe_ok(&j->res, PER_CONN))
			ok++;
		else if (!first_bad)
			first_bad = j;
		sum.acks += j->res.acks;
		sum.unknown += j->res.unknown;
		sum.dups += j->res.dups;
		sum.bad += j->res.bad;
		sum.missing += j->res.missing;
	}
	tap_ok(started == NCONN && hs_ok == NCONN,
	       "%d concurrent connections all complete the handshake (%u/%u)", NCONN, hs_ok, started);
	if (!tap_ok(ok == NCONN && sum.acks == NCONN * PER_CONN,
	            "%d connections x %d pipelined NOTIFYs (both id styles): all %d ACKs "
	            "matched exactly once", NCONN, PER_CONN, NCONN * PER_CONN)) {
		pipe_diag(&sum);
		if (first_bad)
			tap_diag("  first failing connection #%u: handshake %s %s; %s",
			         first_bad->index, spc_strerror(first_bad->hs), first_bad->hs_err,
			         first_bad->res.why);
	}
	tap_diag("%d x %d NOTIFY+ACK took %lld ms", NCONN, PER_CONN, (long long)(now_ms() - t0));
	free(jobs);
}

#define BP_CAP    (96u << 20)   /* more than kernel socket buffers can hold */
#define BP_STALL  1000          /* ms without progress: the agent stopped reading */

/* Resident memory of a process in kB, -1 if unknown (no /proc). */
static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* HAProxy busy elsewhere stops reading ACKs but keeps sending NOTIFYs: the
 * agent must stop reading too (bounded memory, no matter how much the peer
 * pushes), and deliver every ACK once the peer reads again. */
static void test_backpressure(void)
{
	spc_hello_opts o = spc_hello_default(OFFER, "pipelining");
	spc_msg m = { "m", NULL, 0 };
	static uint8_t chunk[64 * 1024];
	spc_agent_hello h;
	spc_frame fr;
	spc_conn c;
	size_t total = 0, len = 0, sent = 0;
	uint64_t next = 0, i;
	uint8_t *seen;
	long rss0, rss1;
	unsigned dups = 0, unknown = 0, bad = 0, acks = 0;
	char why[200] = "";
	int r = connect_to(&c, &dA), stalled = 0;

	/* Our receive buffer stays at its initial size (autotuning only grows
	 * it for a reader), so unread ACKs back up into the agent. Shrinking
	 * it further with SO_RCVBUF makes draining it later crawl. */
	if (r == SPC_OK)
		r = spc_handshake(&c, &o, &h, &fr, T_IO);
	if (r != SPC_OK) {
		tap_ok(0, "back-pressure: handshake (%s)", c.errmsg);
		spc_close(&c);
		return;
	}
	rss0 = rss_kb(dA.pid);
	while (total < BP_CAP) {
		/* Minimal NOTIFYs (16 bytes, so ACK bytes keep pace), sids 0, 1, 2... */
		for (len = 0; len + 32 <= sizeof(chunk); )
			len += spc_build_notify(chunk + len, sizeof(chunk) - len, next++, 1, &m, 1);
		r = spc_send_blind(&c, chunk, len, BP_STALL, &sent);
		total += sent;
		if (r != SPC_OK || sent < len) {
			stalled = r == SPC_OK;
			break;
		}
	}
	rss1 = rss_kb(dA.pid);
	if (!tap_ok(stalled, "a peer that never reads its ACKs: the agent stops reading after "
	            "%.1f MB (cap %u MB)", total / 1048576.0, BP_CAP >> 20))
		tap_diag("  %s %s", spc_strerror(r), c.errmsg);
	if (rss0 > 0 && rss1 > 0)
		tap_ok(rss1 - rss0 < 32 * 1024, "  meanwhile the daemon's RSS grew %ld kB (< 32 MB)",
		       rss1 - rss0);
	else
		tap_skip(1, "no /proc/PID/status");
	/* The peer reads again: finish the cut frame; every ACK must arrive. */
	if (r == SPC_OK && sent < len)
		r = spc_send(&c, chunk + sent, len - sent, T_IO);
	seen = calloc(next ? next : 1, 1);
	for (i = 0; r == SPC_OK && i < next; i++) {
		r = spc_read_frame(&c, &fr, T_IO);
		if (r != SPC_FRAME) {
			if (r == SPC_OK)
				r = SPC_EPROTO;
			break;
		}
		r = SPC_OK;
		acks++;
		if (ack_problem(&fr, why, sizeof(why)))
			bad++;
		else if (fr.f.sid >= next || fr.f.fid != 1)
			unknown++;
		else if (seen[fr.f.sid]++)
			dups++;
	}
	if (!tap_ok(r == SPC_OK && acks == next && !bad && !unknown && !dups,
	            "  once it reads again, all %" PRIu64 " ACKs arrive, each sid once", next))
		tap_diag("  %s %s; acks %u, malformed %u (%s), unknown %u, duplicate %u",
		         spc_strerror(r), c.errmsg, acks, bad, why, unknown, dups);
	free(seen);
	spc_close(&c);
}

/* Ids at the edges of the varint range are echoed verbatim. */
static void test_large_ids(void)
{
	static const uint64_t v[][2] = {
		{ 0, 1 }, { 0, 2 }, { 239, 240 }, { 2287, 2288 },
		{ 2147483647u, 1 },                     /* 2^31-1, 3.x's last sid */
		{ 2147483648u, 1 }, { 4294967295u, 2 }, /* 2.6's 32-bit wrap */
		{ UINT64_C(1) << 40, 1 }, { UINT64_C(1) << 40, UINT64_C(1) << 32 },
		{ UINT64_C(1) << 63, 7 }, { UINT64_MAX, UINT64_MAX },
	};
	spc_hello_opts o = spc_hello_default(OFFER, "pipelining");
	spc_agent_hello h;
	spc_frame fr;
	spc_conn c;
	size_t i;
	int r = connect_to(&c, &dA);

	if (r == SPC_OK)
		r = spc_handshake(&c, &o, &h, &fr, T_IO);
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (r == SPC_OK || r == SPC_EPROTO)
			r = spc_roundtrip(&c, v[i][0], v[i][1], T_IO);
		if (!tap_ok(r == SPC_OK, "sid %" PRIu64 " fid %" PRIu64 " echoed in the ACK",
		            v[i][0], v[i][1]))
			tap_diag("  %s: %s", spc_strerror(r), c.errmsg);
	}
	spc_close(&c);
}

/* ------------------------------------------------ exact bytes, types */

static void test_ack_bytes(void)
{
	/* Ref §1.8: NOTIFY sid 1 fid 1, message "req", method="GET", uid="ab". */
	static const uint8_t notify[] = {
		0x00, 0x00, 0x00, 0x20, 0x03, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01,
		0x03, 'r', 'e', 'q', 0x02,
		0x06, 'm', 'e', 't', 'h', 'o', 'd', 0x08, 0x03, 'G', 'E', 'T',
		0x03, 'u', 'i', 'd', 0x08, 0x02, 'a', 'b',
	};
	/* ACK sid 1 fid 1 with unset-var txn "_" (ref §2.4): LENGTH 12. */
	static const uint8_t ack_unset[] = {
		0x00, 0x00, 0x00, 0x0c, 0x67, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01,
		0x02, 0x02, 0x02, 0x01, '_',
	};
	/* A 2.6 NOTIFY with sid 0, fid 2, INT64 -1 written out (ref §1.5). */
	static const uint8_t notify_neg[] = {
		0x00, 0x00, 0x00, 0x1e, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02,
		0x03, 'r', 'e', 's', 0x01,
		0x06, 's', 't', 'a', 't', 'u', 's',
		0x04, 0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0x0e,
	};
	spc_hello_opts o = spc_hello_default(OFFER, "pipelining");
	spc_agent_hello h;
	spc_frame fr;
	spc_conn c;
	char why[200], hex[128];
	int r = connect_to(&c, &dA);

	if (r == SPC_OK)
		r = spc_handshake(&c, &o, &h, &fr, T_IO);
	if (r == SPC_OK)
		r = spc_send(&c, notify, sizeof(notify), T_IO);
	if (r == SPC_OK)
		r = spc_read_frame(&c, &fr, T_IO);
	if (!tap_ok(r == SPC_FRAME && !ack_problem(&fr, why, sizeof(why)) &&
	            fr.f.sid == 1 && fr.f.fid == 1,
	            "hand-written NOTIFY (ref 1.8) -> ACK sid 1 fid 1 with one action")) {
		tap_diag("  %s %s", r == SPC_FRAME ? why : spc_strerror(r), c.errmsg);
	} else {
		spc_hex(hex, sizeof(hex), fr.raw, fr.raw_len, 32);
		tap_diag("ACK bytes: %s", hex);
		/* The default agent sets no spooled variable: the ACK is the
		 * reference's unset-var txn "_". */
		tap_is_mem(fr.raw, fr.raw_len, ack_unset, sizeof(ack_unset),
		           "  ACK bytes are exactly 00 00 00 0c 67 00 00 00 01 01 01 02 02 02 01 5f");
	}
	if (r == SPC_FRAME)
		r = spc_send(&c, notify_neg, sizeof(notify_neg), T_IO);
	if (r == SPC_OK)
		r = spc_read_frame(&c, &fr, T_IO);
	if (!tap_ok(r == SPC_FRAME && !ack_problem(&fr, why, sizeof(why)) &&
	            fr.f.sid == 0 && fr.f.fid == 2,
	            "hand-written NOTIFY sid 0 fid 2 with INT64 -1 (10-byte varint) -> ACK"))
		tap_diag("  %s %s", r == SPC_FRAME ? why : spc_strerror(r), c.errmsg);
	spc_close(&c);
}

/* Sends one NOTIFY and expects its ACK on c. */
static int notify_acked(spc_conn *c, uint64_t sid, const spc_msg *msgs, unsigned n,
                        const char *what)
{
	size_t cap = 256 * 1024, len;
	uint8_t *buf = malloc(cap);
	spc_frame fr;
	char why[200] = "";
	int r;

	len = spc_build_notify(buf, cap, sid, 1, msgs, n);
	r = len ? spc_send(c, buf, len, T_IO) : SPC_ENOMEM;
	free(buf);
	if (r == SPC_OK)
		r = spc_read_frame(c, &fr, T_IO);
	if (!tap_ok(r == SPC_FRAME && !ack_problem(&fr, why, sizeof(why)) &&
	            fr.f.sid == sid && fr.f.fid == 1, "%s -> ACK", what)) {
		tap_diag("  %s %s", r == SPC_FRAME ? why : spc_strerror(r),
		         r == SPC_FRAME ? "" : c->errmsg);
		return 0;
	}
	return 1;
}

static void test_payload_shapes(void)
{
	static const uint8_t v4[4] = { 192, 0, 2, 1 };
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	static const uint8_t bin[] = { 0, 0xff, 0, 0x80, '\n' };
	static char names[255][8];
	spc_arg all[] = {
		{ "null", { .type = SPOP_T_NULL } },
		{ "t", { .type = SPOP_T_NULL } }, { "f", { .type = SPOP_T_NULL } },
		{ "i32", { .type = SPOP_T_NULL } }, { "u32", { .type = SPOP_T_NULL } },
		{ "neg", { .type = SPOP_T_NULL } }, { "min", { .type = SPOP_T_NULL } },
		{ "u64", { .type = SPOP_T_NULL } }, { "ip4", { .type = SPOP_T_NULL } },
		{ "ip6", { .type = SPOP_T_NULL } }, { "s", { .type = SPOP_T_NULL } },
		{ "empty", { .type = SPOP_T_NULL } }, { "bin", { .type = SPOP_T_NULL } },
		{ "", { .type = SPOP_T_NULL } },      /* unnamed argument */
	};
	spc_arg nulls[3], many[255];
	spc_msg msgs[3];
	spc_hello_opts o = spc_hello_default(OFFER, "pipelining");
	spc_agent_hello h;
	spc_frame fr;
	spc_conn c;
	unsigned i;
	int r = connect_to(&c, &dA);

	all[0].val = spc_null();
	all[1].val = spc_bool(1);
	all[2].val = spc_bool(0);
	all[3].val = spc_int(SPOP_T_INT32, -5);
	all[4].val = spc_int(SPOP_T_UINT32, 4294967295LL);
	all[5].val = spc_int(SPOP_T_INT64, -1);
	all[6].val = spc_int(SPOP_T_INT64, INT64_MIN);
	all[7].val = spc_int(SPOP_T_UINT64, (int64_t)UINT64_MAX);
	all[8].val = spc_ip(SPOP_T_IPV4, v4);
	all[9].val = spc_ip(SPOP_T_IPV6, v6);
	all[10].val = spc_cstr("caf\xc3\xa9 \xff not utf-8");
	all[11].val = spc_str(SPOP_T_STRING, "", 0);
	all[12].val = spc_str(SPOP_T_BINARY, bin, sizeof(bin));
	all[13].val = spc_cstr("unnamed");
	for (i = 0; i < 3; i++) {
		nulls[i].name = i == 0 ? "uid" : i == 1 ? "body" : "query";
		nulls[i].val = spc_null();
	}
	for (i = 0; i < 255; i++) {
		snprintf(names[i], sizeof(names[i]), "a%u", i);
		many[i].name = names[i];
		many[i].val = spc_int(SPOP_T_INT64, -(int64_t)i);
	}

	if (r == SPC_OK)
		r = spc_handshake(&c, &o, &h, &fr, T_IO);
	if (r != SPC_OK) {
		tap_ok(0, "payload shapes: handshake (%s)", c.errmsg);
		spc_close(&c);
		return;
	}
	notify_acked(&c, 1, NULL, 0, "NOTIFY with zero messages (3.1 quirk)");
	msgs[0] = (spc_msg){ "t-null", nulls, 3 };
	notify_acked(&c, 3, msgs, 1, "NOTIFY whose arguments are all NULL");
	msgs[0] = (spc_msg){ "t-types", all, sizeof(all) / sizeof(all[0]) };
	notify_acked(&c, 5, msgs, 1, "NOTIFY with every type (INT64 -1 and INT64_MIN, "
	             "IPv4/6, non-UTF-8 STRING, BINARY, empty string, unnamed arg)");
	msgs[0] = (spc_msg){ "t-noargs", NULL, 0 };
	notify_acked(&c, 7, msgs, 1, "message with zero arguments");
	msgs[0] = (spc_msg){ "t-many", many, 255 };
	notify_acked(&c, 9, msgs, 1, "message with 255 arguments");
	msgs[0] = (spc_msg){ "t-req", nulls, 1 };
	msgs[1] = (spc_msg){ "t-res", all, 3 };
	msgs[2] = (spc_msg){ "t-grp", NULL, 0 };
	notify_acked(&c, 11, msgs, 3, "NOTIFY with three messages");
	spc_close(&c);
}

/* The whole conversation delivered one byte per write with TCP_NODELAY:
 * the agent must reassemble frames from any split. */
static void test_byte_at_a_time(void)
{
	spc_hello_opts o = spc_hello_default(OFFER, "pipelining");
	uint8_t buf[1024];
	size_t n;
	spc_frame fr;
	spc_agent_hello h;
	spc_conn c;
	char why[200] = "";
	int r = connect_to(&c, &dA), ok;

	n = spc_build_hello(buf, sizeof(buf), &o);
	n += spc_build_notify_uid(buf + n, sizeof(buf) - n, 0, 1, "t-slow", "slow-1");
	n += spc_build_notify_uid(buf + n, sizeof(buf) - n, 1u << 20, 2, "t-slow", "slow-2");
	if (r == SPC_OK)
		r = spc_nodelay(&c);
	if (r == SPC_OK)
		r = spc_send_slowly(&c, buf, n, 1, 1000, T_IO);
	if (!tap_ok(r == SPC_OK, "HELLO + 2 NOTIFYs sent one byte at a time (%zu writes)", n)) {
		tap_diag("  %s: %s", spc_strerror(r), c.errmsg);
		tap_skip(2, "send failed");
		spc_close(&c);
		return;
	}
	r = spc_read_frame(&c, &fr, T_IO);
	ok = r == SPC_FRAME && fr.f.type == SPOP_FRAME_AGENT_HELLO &&
	     spc_parse_agent_hello(&fr, &h) == 0 && h.max_frame_size == OFFER;
	if (!tap_ok(ok, "  byte-at-a-time: AGENT-HELLO"))
		tap_diag("  %s %s", spc_strerror(r), c.errmsg);
	r = spc_read_frame(&c, &fr, T_IO);
	ok = r == SPC_FRAME && !ack_problem(&fr, why, sizeof(why)) && fr.f.sid == 0 && fr.f.fid == 1;
	if (ok) {
		r = spc_read_frame(&c, &fr, T_IO);
		ok = r == SPC_FRAME && !ack_problem(&fr, why, sizeof(why)) &&
		     fr.f.sid == 1u << 20 && fr.f.fid == 2;
	}
	if (!tap_ok(ok, "  byte-at-a-time: both ACKs with their sid/fid"))
		tap_diag("  %s %s %s", spc_strerror(r), why, c.errmsg);
	spc_close(&c);
}

/* ------------------------------------------------------ disconnects */

static void test_haproxy_disconnect(void)
{
	spc_hello_opts o = spc_hello_default(OFFER, "pipelining");
	uint8_t buf[4096];
	size_t n = 0, i;
	spc_agent_hello h;
	spc_frame fr;
	spc_conn c;
	unsigned acks = 0, extra = 0;
	int r = connect_to(&c, &dA), ok;

	if (r == SPC_OK)
		r = spc_handshake(&c, &o, &h, &fr, T_IO);
	if (r == SPC_OK)
		r = spc_roundtrip(&c, 1, 1, T_IO);
	n = spc_build_disconnect(buf, sizeof(buf), 0, "");
	if (r == SPC_OK)
		r = spc_send(&c, buf, n, T_IO);
	if (r != SPC_OK) {
		tap_ok(0, "HAPROXY-DISCONNECT: setup (%s)", c.errmsg);
		spc_close(&c);
		return;
	}
	expect_disconnect(&c, 0, "HAPROXY-DISCONNECT status 0");
	expect_close(&c, "HAPROXY-DISCONNECT status 0");
	spc_close(&c);

	/* 10 NOTIFYs and a DISCONNECT (2: idle timeout) in one write: the agent
	 * may ACK any of them first, but then says DISCONNECT 0 and closes. */
	r = connect_to(&c, &dA);
	if (r == SPC_OK)
		r = spc_handshake(&c, &o, &h, &fr, T_IO);
	n = 0;
	for (i = 0; i < 10; i++)
		n += spc_build_notify_uid(buf + n, sizeof(buf) - n, 2 * i + 1, 1, "t-bye", "bye");
	n += spc_build_disconnect(buf + n, sizeof(buf) - n, 2, "idle timeout");
	if (r == SPC_OK)
		r = spc_send(&c, buf, n, T_IO);
	for (;;) {
		char why[200];
		if (r == SPC_OK || r == SPC_FRAME)
			r = spc_read_frame(&c, &fr, T_IO);
		if (r != SPC_FRAME || fr.f.type != SPOP_FRAME_ACK)
			break;
		if (ack_problem(&fr, why, sizeof(why)) || fr.f.sid % 2 == 0 || fr.f.sid > 19)
			extra++;
		acks++;
	}
	ok = r == SPC_FRAME && fr.f.type == SPOP_FRAME_AGENT_DISCONNECT && extra == 0;
	if (ok) {
		spop_disconnect d;
		ok = spc_parse_disconnect(&fr, &d) == 0 && d.has_status && d.status == 0;
	}
	if (!tap_ok(ok, "NOTIFYs + HAPROXY-DISCONNECT 2 in one write: valid ACKs (%u), then "
	            "AGENT-DISCONNECT 0", acks))
		tap_diag("  %s %s (last type %d, bad ACKs %u)", spc_strerror(r), c.errmsg,
		         r == SPC_FRAME ? fr.f.type : -1, extra);
	expect_close(&c, "HAPROXY-DISCONNECT status 2");
	spc_close(&c);
}

/* Clients that vanish: FIN right after connecting, mid-HELLO, mid-frame
 * with NOTIFYs pending, and an RST. The agent must just carry on. */
static void test_abrupt_ends(void)
{
	spc_hello_opts o = spc_hello_default(OFFER, "pipelining");
	uint8_t buf[4096];
	size_t n, i;
	spc_agent_hello h;
	spc_frame fr;
	spc_conn c;
	int step;

	for (step = 0; step < 4; step++) {
		int r = connect_to(&c, &dA);
		const char *what = "";

		switch (step) {
		case 0:
			what = "a client closing before its HELLO";
			break;
		case 1:
			what = "a client closing in the middle of its HELLO";
			n = spc_build_hello(buf, sizeof(buf), &o);
			if (r == SPC_OK)
				r = spc_send(&c, buf, n / 2, T_IO);
			break;
		case 2:
			what = "a client closing with 20 NOTIFYs unacknowledged and half a frame";
			if (r == SPC_OK)
				r = spc_handshake(&c, &o, &h, &fr, T_IO);
			for (n = 0, i = 0; i < 20; i++)
				n += spc_build_notify_uid(buf + n, sizeof(buf) - n, i, 1, "t-gone", "gone");
			if (r == SPC_OK)
				r = spc_send(&c, buf, n - 10, T_IO);
			break;
		case 3:
			what = "a client resetting (RST) with NOTIFYs pending";
			if (r == SPC_OK)
				r = spc_handshake(&c, &o, &h, &fr, T_IO);
			for (n = 0, i = 0; i < 20; i++)
				n += spc_build_notify_uid(buf + n, sizeof(buf) - n, i, 1, "t-rst", "rst");
			if (r == SPC_OK)
				r = spc_send(&c, buf, n, T_IO);
			break;
		}
		if (r != SPC_OK)
			tap_diag("setup of \"%s\": %s", what, c.errmsg);
		if (step == 3)
			spc_reset(&c);
		else
			spc_close(&c);
		served(&dA, what);
	}
}

/* ------------------------------------------------------- bad inputs */

/* Each bad input's client address, to find the agent's warn line later. */
static struct {
	char peer[128];
	char what[128];
} bad_peers[48];
static unsigned n_bad_peers;

/* Writes bytes (after a normal HELLO if hello), expects AGENT-DISCONNECT
 * want, the close, and a healthy agent for the next client. local gets our
 * address for log checks. */
static void bad_input(const char *what, int hello, const void *bytes, size_t n,
                      unsigned want, char *local, size_t locallen)
{
	spc_hello_opts o = spc_hello_default(OFFER, "pipelining");
	spc_agent_hello h;
	spc_frame fr;
	spc_conn c;
	int r = connect_to(&c, &dA);

	if (r == SPC_OK && hello)
		r = spc_handshake(&c, &o, &h, &fr, T_IO);
	if (r == SPC_OK)
		r = spc_send(&c, bytes, n, T_IO);
	if (local)
		snprintf(local, locallen, "%s", c.local);
	if (n_bad_peers < sizeof(bad_peers) / sizeof(bad_peers[0])) {
		snprintf(bad_peers[n_bad_peers].peer, sizeof(bad_peers[0].peer), "%s", c.local);
		snprintf(bad_peers[n_bad_peers].what, sizeof(bad_peers[0].what), "%s", what);
		n_bad_peers++;
	}
	if (r != SPC_OK && r != SPC_ERESET) {
		tap_ok(0, "%s: setup (%s: %s)", what, spc_strerror(r), c.errmsg);
		tap_skip(1, "setup failed");
	} else if (expect_disconnect(&c, want, what)) {
		expect_close(&c, what);
	} else {
		tap_skip(1, "no AGENT-DISCONNECT");
	}
	spc_close(&c);
	served(&dA, what);
}

/* A NOTIFY sid 1 fid 1 with a message "m" and one argument "a" whose typed
 * value bytes are given (written by hand; the encoder refuses bad data). */
static size_t notify_with_value(uint8_t *out, size_t cap, const uint8_t *val, size_t vlen)
{
	uint8_t payload[256];
	size_t n = 0;

	payload[n++] = 0x01; payload[n++] = 'm';
	payload[n++] = 0x01;
	payload[n++] = 0x01; payload[n++] = 'a';
	memcpy(payload + n, val, vlen);
	n += vlen;
	return spc_build_frame(out, cap, SPOP_FRAME_NOTIFY, SPOP_FLAG_FIN, 1, 1, payload, n);
}

static void test_bad_inputs(char *http_peer, size_t http_peer_len)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, 0x03, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01 };
	static const uint8_t len3[] = { 0x00, 0x00, 0x00, 0x03, 0x03, 0x00, 0x00 };
	static const uint8_t len0[] = { 0x00, 0x00, 0x00, 0x00 };
	/* NOTIFY whose STREAM-ID is 11 bytes of 0xFF (LENGTH 1+4+11+1 = 17). */
	static const uint8_t badsid[] = {
		0x00, 0x00, 0x00, 0x11, 0x03, 0x00, 0x00, 0x00, 0x01,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
	};
	/* STREAM-ID ff f0 fe fe fe fe fe fe fe 0f: 10 bytes, 2^64-1 is ...0e. */
	static const uint8_t sidovf[] = {
		0x00, 0x00, 0x00, 0x10, 0x03, 0x00, 0x00, 0x00, 0x01,
		0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0x0f, 0x01,
	};
	static const uint8_t badint[] = {
		0x04, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	};
	static const uint8_t longstr[] = { 0x08, 0x64, 'a', 'b', 'c' };   /* says 100 */
	uint8_t buf[1024], pay[64];
	char what[128];
	size_t n;
	unsigned t;

	bad_input("HTTP bytes on the SPOP port", 0, http, sizeof(http) - 1,
	          SPOP_ST_TOO_BIG, http_peer, http_peer_len);
	bad_input("a 4 GB length prefix (ff ff ff ff)", 0, huge, sizeof(huge),
	          SPOP_ST_TOO_BIG, NULL, 0);
	n = spc_build_notify_uid(buf, sizeof(buf), 1, 1, "t-early", "early");
	bad_input("a NOTIFY before the HELLO", 0, buf, n, SPOP_ST_INVALID, NULL, 0);
	{
		spc_hello_opts o = spc_hello_default(OFFER, "pipelining");
		o.versions = "1.0";
		n = spc_build_hello(buf, sizeof(buf), &o);
		bad_input("HELLO offering only version 1.0", 0, buf, n,
		          SPOP_ST_BAD_VERSION, NULL, 0);
		o.versions = "3.0";
		n = spc_build_hello(buf, sizeof(buf), &o);
		bad_input("HELLO offering only version 3.0", 0, buf, n,
		          SPOP_ST_BAD_VERSION, NULL, 0);
	}
	{
		spc_hello_opts o = spc_hello_default(255, "pipelining");
		n = spc_build_hello(buf, sizeof(buf), &o);
		bad_input("HELLO offering max-frame-size 255 (below 256)", 0, buf, n,
		          SPOP_ST_BAD_FRAME_SIZE, NULL, 0);
	}
	/* HELLO whose capabilities string claims 200 bytes. */
	pay[0] = 0x0c;
	memcpy(pay + 1, "capabilities", 12);
	pay[13] = 0x08;
	pay[14] = 0xc8;
	pay[15] = 'p';
	n = spc_build_frame(buf, sizeof(buf), SPOP_FRAME_HAPROXY_HELLO, SPOP_FLAG_FIN, 0, 0, pay, 16);
	bad_input("a HELLO with a string longer than its frame", 0, buf, n,
	          SPOP_ST_INVALID, NULL, 0);

	n = spc_build_notify_uid(buf, sizeof(buf), 1, 1, "t-frag", "frag");
	buf[8] = 0x00;                          /* clear FIN */
	bad_input("a NOTIFY without FIN (fragmentation not negotiated)", 1, buf, n,
	          SPOP_ST_FRAG_NOT_SUPPORTED, NULL, 0);
	n = spc_build_frame(buf, sizeof(buf), SPOP_FRAME_UNSET, SPOP_FLAG_FIN, 1, 1, "\x01m\x00", 3);
	bad_input("a type-0 fragment (fragmentation not negotiated)", 1, buf, n,
	          SPOP_ST_FRAG_NOT_SUPPORTED, NULL, 0);
	bad_input("a NOTIFY whose stream-id is a bad varint (11 x ff)", 1, badsid,
	          sizeof(badsid), SPOP_ST_INVALID, NULL, 0);
	bad_input("a NOTIFY whose stream-id varint exceeds 2^64-1", 1, sidovf,
	          sizeof(sidovf), SPOP_ST_INVALID, NULL, 0);
	n = notify_with_value(buf, sizeof(buf), badint, sizeof(badint));
	bad_input("a NOTIFY with a bad varint (11 x ff) as INT64 value", 1, buf, n,
	          SPOP_ST_INVALID, NULL, 0);
	n = notify_with_value(buf, sizeof(buf), longstr, sizeof(longstr));
	bad_input("a NOTIFY with a string longer than its frame", 1, buf, n,
	          SPOP_ST_INVALID, NULL, 0);
	pay[0] = 0x40;                          /* message name claims 64 bytes */
	memcpy(pay + 1, "short", 5);
	n = spc_build_frame(buf, sizeof(buf), SPOP_FRAME_NOTIFY, SPOP_FLAG_FIN, 1, 1, pay, 6);
	bad_input("a NOTIFY with a message name longer than its frame", 1, buf, n,
	          SPOP_ST_INVALID, NULL, 0);
	/* Message "m" announcing 3 arguments but carrying 1. */
	memcpy(pay, "\x01m\x03\x01" "a\x00", 6);
	n = spc_build_frame(buf, sizeof(buf), SPOP_FRAME_NOTIFY, SPOP_FLAG_FIN, 1, 1, pay, 6);
	bad_input("a NOTIFY whose message has fewer arguments than NB-ARGS", 1, buf, n,
	          SPOP_ST_INVALID, NULL, 0);
	for (t = 10; t <= 15; t++) {
		uint8_t v[4] = { (uint8_t)t, 0x00, 0x00, 0x00 };
		n = notify_with_value(buf, sizeof(buf), v, sizeof(v));
		snprintf(what, sizeof(what), "a NOTIFY with reserved type id %u", t);
		bad_input(what, 1, buf, n, SPOP_ST_INVALID, NULL, 0);
	}
	bad_input("a frame of LENGTH 3 (below the 7-byte minimum)", 1, len3, sizeof(len3),
	          SPOP_ST_INVALID, NULL, 0);
	bad_input("a frame of LENGTH 0", 1, len0, sizeof(len0), SPOP_ST_INVALID, NULL, 0);
	/* Negotiated 16380 (our cap is larger): LENGTH 16381 must be refused,
	 * as soon as the prefix is read. Only a few payload bytes follow. */
	n = spc_build_notify_uid(buf, sizeof(buf), 1, 1, "t-big", "big");
	buf[0] = 0x00; buf[1] = 0x00; buf[2] = 0x3f; buf[3] = 0xfd;   /* 16381 */
	bad_input("a frame larger than the negotiated max-frame-size (16381 > 16380)", 1,
	          buf, n, SPOP_ST_TOO_BIG, NULL, 0);
}

/* Finds a line of log that names peer (whole port number) and says
 * "warn"; copies it to out. */
static int find_warn_line(const char *log, const char *peer, char *out, size_t outlen)
{
	const char *p;

	for (p = log && *peer ? strstr(log, peer) : NULL; p; p = strstr(p + 1, peer)) {
		const char *b = p, *e = strchr(p, '\n');
		char tmp[512];

		/* Whole port number only (":4242" must not match ":42420"). */
		if (isdigit((unsigned char)p[strlen(peer)]))
			continue;
		while (b > log && b[-1] != '\n')
			b--;
		snprintf(tmp, sizeof(tmp), "%.*s", (int)((e ? e : p + strlen(p)) - b), b);
		if (find_ci(tmp, "warn")) {
			snprintf(out, outlen, "%s", tmp);
			return 1;
		}
	}
	return 0;
}

/* Every bad input left a warn line naming the peer; the HTTP one also says
 * why (design: "a log line naming the peer and the reason"). */
static void test_warn_lines(const char *http_peer)
{
	int64_t deadline = now_ms() + T_IO;
	char *log = NULL, line[512], http_line[512] = "";
	unsigned i, found;

	/* Lines may be written just after the close we saw: wait for them. */
	for (;;) {
		free(log);
		log = slurp(dA.log_path);
		for (found = 0, i = 0; i < n_bad_peers; i++)
			found += find_warn_line(log, bad_peers[i].peer, line, sizeof(line));
		if (found == n_bad_peers || now_ms() > deadline)
			break;
		usleep(50000);
	}
	if (tap_ok(find_warn_line(log, http_peer, http_line, sizeof(http_line)),
	           "HTTP bytes: the log has a warn line naming the peer %s", http_peer))
		tap_diag("log: %s", http_line);
	tap_ok(find_ci(http_line, "too big") || find_ci(http_line, "too large") ||
	       find_ci(http_line, "length") || find_ci(http_line, "http"),
	       "  and it gives the reason (frame too big / LENGTH / HTTP)");
	for (i = 0; i < n_bad_peers; i++) {
		if (strcmp(bad_peers[i].peer, http_peer) == 0)
			continue;
		tap_ok(find_warn_line(log, bad_peers[i].peer, line, sizeof(line)),
		       "%s: warn line naming the peer", bad_peers[i].what);
	}
	if (found != n_bad_peers)
		agentd_dump_log(&dA, 20);
	free(log);
}

static void test_unix_listener(void)
{
	spc_hello_opts o = spc_hello_default(OFFER, "pipelining");
	spc_agent_hello h;
	spc_frame fr;
	spc_conn c;
	int r = spc_connect_unix(&c, unix_path, T_IO);

	if (r == SPC_OK)
		r = spc_handshake(&c, &o, &h, &fr, T_IO);
	if (r == SPC_OK)
		r = spc_roundtrip(&c, 5, 1, T_IO);
	if (!tap_ok(r == SPC_OK, "unix socket listener: HELLO + NOTIFY + ACK"))
		tap_diag("  %s: %s", spc_strerror(r), c.errmsg);
	spc_close(&c);
}

/* SIGTERM with a client connected: AGENT-DISCONNECT 0 to the client
 * (agent.h: graceful stop), close, exit status 0. */
static unsigned stop_with_client(agentd *d, const char *name)
{
	spc_hello_opts o = spc_hello_default(OFFER, "pipelining");
	spc_agent_hello h;
	spc_frame fr;
	spc_conn c;
	char what[128];
	int r = connect_to(&c, d), code;
	unsigned sent;

	if (r == SPC_OK)
		r = spc_handshake(&c, &o, &h, &fr, T_IO);
	if (r == SPC_OK)
		r = spc_roundtrip(&c, 1, 1, T_IO);
	sent = r == SPC_OK;
	snprintf(what, sizeof(what), "SIGTERM to %s with a client connected", name);
	if (r != SPC_OK) {
		tap_ok(0, "%s: setup (%s)", what, c.errmsg);
		agentd_signal(d, SIGTERM);
	} else {
		agentd_signal(d, SIGTERM);
		if (expect_disconnect(&c, SPOP_ST_NORMAL, what))
			expect_close(&c, what);
	}
	spc_close(&c);
	if (agentd_wait(d, T_STOP) != 0) {
		tap_ok(0, "%s exits after SIGTERM (still running after %d ms; killed)", name, T_STOP);
		agentd_stop(d, 1000);
		return sent;
	}
	code = WIFEXITED(d->status) ? WEXITSTATUS(d->status) :
	       WIFSIGNALED(d->status) ? 128 + WTERMSIG(d->status) : -1;
	if (!tap_ok(code == 0, "%s exits with status 0 on SIGTERM", name)) {
		tap_diag("  exit status %d", code);
		agentd_dump_log(d, 30);
	}
	return sent;
}

/* ------------------------------------------- daemon B: 1 MiB and sink */

static void test_big_frame(unsigned *nmsgs)
{
	spc_hello_opts o = spc_hello_default(CAP_B, "pipelining");
	spc_agent_hello h;
	spc_frame fr;
	spc_conn c;
	size_t cap = CAP_B + 64, n = 0, fill;
	uint8_t *buf = malloc(cap), *body = malloc(CAP_B);
	spc_arg args[2];
	spc_msg m = { "t-big", args, 2 };
	char why[200] = "";
	int r = connect_to(&c, &dB);

	if (r == SPC_OK)
		r = spc_handshake(&c, &o, &h, &fr, T_IO);
	if (!tap_ok(r == SPC_OK && h.max_frame_size == CAP_B,
	            "offer max-frame-size %d with cap %d -> %d", CAP_B, CAP_B, CAP_B)) {
		tap_diag("  %s %s; got %" PRIu64, spc_strerror(r), c.errmsg, h.max_frame_size);
		tap_skip(1, "no 1 MiB handshake");
		goto out;
	}
	/* One message whose BINARY body makes LENGTH exactly 1048576. */
	for (fill = 0; fill < CAP_B; fill++)
		body[fill] = (uint8_t)(fill * 7 + 1);
	args[0].name = "uid";
	args[0].val = spc_cstr("big-1");
	args[1].name = "body";
	args[1].val = spc_str(SPOP_T_BINARY, body, 0);
	n = build_exact(buf, cap, 1, &m, &args[1].val, CAP_B);
	r = n ? spc_send(&c, buf, n, T_IO) : SPC_ENOMEM;
	if (r == SPC_OK)
		r = spc_read_frame(&c, &fr, T_IO);
	if (tap_ok(r == SPC_FRAME && !ack_problem(&fr, why, sizeof(why)) &&
	           fr.f.sid == 1 && fr.f.fid == 1,
	           "a NOTIFY of LENGTH 1048576 (1 MiB negotiated) -> ACK"))
		(*nmsgs)++;
	else
		tap_diag("  %s %s (built %zu bytes)", r == SPC_FRAME ? why : spc_strerror(r),
		         c.errmsg, n);
out:
	spc_close(&c);
	free(buf);
	free(body);
}

/* Daemon B runs with --hello-timeout 2s --idle-timeout 2s: a silent new
 * connection and an idle one both get AGENT-DISCONNECT 2 (timeout) and a
 * close. Both wait at once. Returns the messages sent (for the sink count). */
static unsigned test_timeouts(void)
{
	spc_hello_opts o = spc_hello_default(OFFER, "pipelining");
	spc_agent_hello h;
	spc_frame fr;
	spc_conn quiet, idle;
	unsigned sent = 0;
	int r1 = connect_to(&quiet, &dB), r2 = connect_to(&idle, &dB);

	if (r2 == SPC_OK)
		r2 = spc_handshake(&idle, &o, &h, &fr, T_IO);
	if (r2 == SPC_OK)
		r2 = spc_roundtrip(&idle, 1, 1, T_IO);
	sent = r2 == SPC_OK;
	if (r1 == SPC_OK && expect_disconnect(&quiet, SPOP_ST_TIMEOUT,
	                                      "no HELLO within --hello-timeout 2s"))
		expect_close(&quiet, "no HELLO within --hello-timeout 2s");
	else if (r1 != SPC_OK)
		tap_ok(0, "hello timeout: connect (%s)", quiet.errmsg);
	if (r2 == SPC_OK && expect_disconnect(&idle, SPOP_ST_TIMEOUT,
	                                      "idle for --idle-timeout 2s after an ACK"))
		expect_close(&idle, "idle for --idle-timeout 2s after an ACK");
	else if (r2 != SPC_OK)
		tap_ok(0, "idle timeout: setup (%s)", idle.errmsg);
	spc_close(&quiet);
	spc_close(&idle);
	return sent;
}

/* Messages with unique uids, on two connections; returns how many. */
static unsigned send_counted(char uids[][16], unsigned maxu)
{
	spc_hello_opts o = spc_hello_default(OFFER, "pipelining");
	spc_agent_hello h;
	spc_frame fr;
	spc_conn c;
	spc_arg args[3][2];
	spc_msg msgs[3];
	unsigned nu = 0, k, j;
	int r;

	/* Connection 1, 3.x ids: NOTIFYs with 0, 1, 2 and 3 messages. */
	r = connect_to(&c, &dB);
	if (r == SPC_OK)
		r = spc_handshake(&c, &o, &h, &fr, T_IO);
	for (k = 0; k <= 3 && r == SPC_OK; k++) {
		char what[64];
		for (j = 0; j < k && nu < maxu; j++, nu++) {
			snprintf(uids[nu], 16, "sc-%02u", nu);
			args[j][0] = (spc_arg){ "uid", spc_cstr(uids[nu]) };
			args[j][1] = (spc_arg){ "n", spc_int(SPOP_T_INT64, -(int64_t)j) };
			msgs[j] = (spc_msg){ j % 2 ? "t-res" : "t-req", args[j], 2 };
		}
		snprintf(what, sizeof(what), "counted NOTIFY with %u message(s)", k);
		if (!notify_acked(&c, 2 * k + 1, msgs, k, what))
			r = SPC_EPROTO;
	}
	spc_close(&c);
	if (r != SPC_OK)
		return nu;
	/* Connection 2, 2.6 ids: 5 single-message NOTIFYs written at once. */
	{
		uint8_t buf[2048];
		size_t n = 0;
		unsigned acks = 0;
		char why[200] = "";

		r = connect_to(&c, &dB);
		if (r == SPC_OK)
			r = spc_handshake(&c, &o, &h, &fr, T_IO);
		for (k = 0; k < 5 && nu < maxu; k++, nu++) {
			snprintf(uids[nu], 16, "sc-%02u", nu);
			n += spc_build_notify_uid(buf + n, sizeof(buf) - n, k / 2, 1 + k % 2,
			                          "t-req", uids[nu]);
		}
		if (r == SPC_OK)
			r = spc_send(&c, buf, n, T_IO);
		while (r == SPC_OK && acks < 5) {
			r = spc_read_frame(&c, &fr, T_IO);
			if (r == SPC_FRAME && !ack_problem(&fr, why, sizeof(why))) {
				acks++;
				r = SPC_OK;
			} else if (r == SPC_FRAME) {
				r = SPC_EPROTO;
			}
		}
		if (!tap_ok(acks == 5, "5 counted pipelined NOTIFYs -> 5 ACKs"))
			tap_diag("  %s %s %s", spc_strerror(r), why, c.errmsg);
		spc_close(&c);
	}
	return nu;
}

/* After daemon B stopped: one "message NAME uid=VALUE" debug line per
 * message sent, each uid exactly once. */
static void check_sink_log(char uids[][16], unsigned nu, unsigned total)
{
	char *log = slurp(dB.log_path), *line, *save = NULL;
	unsigned lines = 0, any = 0, i, bad = 0;
	unsigned *seen = calloc(nu + 1, sizeof(*seen));

	if (!log) {
		tap_ok(0, "read daemon B's log %s", dB.log_path);
		free(seen);
		return;
	}
	for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *m = strstr(line, "message ");
		if (!m)
			continue;
		any++;
		if (!strstr(m, " uid="))
			continue;
		lines++;
		for (i = 0; i < nu; i++) {
			char key[32];
			const char *p;
			snprintf(key, sizeof(key), "uid=%.15s", uids[i]);
			p = strstr(m, key);
			if (p && !isalnum((unsigned char)p[strlen(key)]))
				seen[i]++;
		}
	}
	for (i = 0; i < nu; i++)
		bad += seen[i] != 1;
	if (!tap_ok(lines == total, "counting sink logged %u `message NAME uid=` lines for "
	            "%u messages sent", lines, total)) {
		tap_diag("  lines containing \"message \": %u", any);
		agentd_dump_log(&dB, 30);
	}
	tap_ok(nu > 0 && bad == 0, "  each of the %u counted uids appears exactly once", nu);
	free(seen);
	free(log);
}

/* No sanitizer or crash report in a daemon's log (matters in the
 * --enable-sanitizers build, where UBSan findings might only be printed). */
static void check_log_clean(const agentd *d, const char *name)
{
	static const char *const bad[] = {
		"AddressSanitizer", "LeakSanitizer", "runtime error:", "ThreadSanitizer",
		"Segmentation fault", "Assertion", "double free",
	};
	char *log = slurp(d->log_path);
	const char *hit = NULL;
	size_t i;

	for (i = 0; log && !hit && i < sizeof(bad) / sizeof(bad[0]); i++)
		if (strstr(log, bad[i]))
			hit = bad[i];
	if (!tap_ok(log && !hit, "%s's log has no sanitizer or crash report", name))
		agentd_dump_log(d, 40);
	free(log);
}

/* --------------------------------------------------------------- main */

static void rm_tmpdir(void)
{
	char path[600];
	static const char *const files[] = { "agent-a.log", "agent-b.log", "a.sock" };
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
		unlink(path);
	}
	if (rmdir(tmpdir) != 0)
		tap_diag("could not remove %s: %s", tmpdir, strerror(errno));
}

static int start(agentd *d, const char *logname, const char *const *args)
{
	char log[600], err[700];

	snprintf(log, sizeof(log), "%s/%s", tmpdir, logname);
	if (agentd_start(d, exe, log, args, T_START, err, sizeof(err)) != 0) {
		tap_ok(0, "start spoolcapd (%s)", err);
		agentd_dump_log(d, 30);
		return -1;
	}
	tap_ok(1, "spoolcapd started on 127.0.0.1:%u (pid %d)", d->port, (int)d->pid);
	return 0;
}

static void on_alarm(int sig)
{
	static const char msg[] = "Bail out! t-agent watchdog: the test ran for 15 minutes\n";
	(void)sig;
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(98);
	_exit(99);   /* the daemons die with us (PR_SET_PDEATHSIG) */
}

int main(int argc, char **argv)
{
	char exebuf[1024], listen_unix[320], http_peer[128] = "";
	const char *td = getenv("TMPDIR");
	int64_t t0 = now_ms();
	unsigned nmsgs = 0, nu;
	static char uids[16][16];

	(void)argc;
	(void)tap_plan;       /* tap.h's plan-first helper; this test plans at the end */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm(900);   /* last resort only; every wait below is bounded */

	exe = agentd_exe(argv[0], exebuf, sizeof(exebuf));
	/* Short base dir: the unix socket path must fit in sun_path. */
	if (!td || !*td || strlen(td) > 80)
		td = "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s/t-agent.XXXXXX", td);
	if (!mkdtemp(tmpdir)) {
		printf("Bail out! mkdtemp %s: %s\n", tmpdir, strerror(errno));
		return 1;
	}
	snprintf(unix_path, sizeof(unix_path), "%s/a.sock", tmpdir);
	snprintf(listen_unix, sizeof(listen_unix), "unix:%s", unix_path);
	tap_diag("spoolcapd: %s; temp dir %s", exe, tmpdir);

	{
		const char *args[] = { "--threads", "2", "--max-frame-size", "65536",
		                       "--log-level", "info", "--listen", listen_unix, NULL };
		if (start(&dA, "agent-a.log", args) == 0) {
			test_hello_variants();
			test_frame_size_negotiation();
			test_versions();
			test_healthcheck();
			test_pipeline_one(IDS_26, 1000);
			test_pipeline_one(IDS_3X, 1000);
			test_concurrent();
			test_backpressure();
			test_large_ids();
			test_ack_bytes();
			test_payload_shapes();
			test_byte_at_a_time();
			test_haproxy_disconnect();
			test_abrupt_ends();
			test_bad_inputs(http_peer, sizeof(http_peer));
			test_warn_lines(http_peer);
			test_unix_listener();
			stop_with_client(&dA, "daemon A");
			check_log_clean(&dA, "daemon A");
		}
	}
	{
		const char *args[] = { "--threads", "2", "--max-frame-size", "1048576",
		                       "--log-level", "debug", "--hello-timeout", "2s",
		                       "--idle-timeout", "2s", NULL };
		if (start(&dB, "agent-b.log", args) == 0) {
			nmsgs += test_timeouts();
			test_big_frame(&nmsgs);
			nu = send_counted(uids, 16);
			nmsgs += nu;
			nmsgs += stop_with_client(&dB, "daemon B");
			check_sink_log(uids, nu, nmsgs);
			check_log_clean(&dB, "daemon B");
		}
	}
	agentd_stop(&dA, 5000);
	agentd_stop(&dB, 5000);
	if (tap_failed) {
		tap_diag("daemon A log tail:");
		agentd_dump_log(&dA, 15);
	}
	rm_tmpdir();
	tap_diag("t-agent ran %.1f s", (double)(now_ms() - t0) / 1000.0);
	return tap_done(0);
}
