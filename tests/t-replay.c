/* t-replay.c -- the delivery engine end to end: a spool written by the real
 * spoolcapd is drained by replay.c into tests/receiver.py, healthy and
 * through scripted failures (503s, 429 + Retry-After, rejected ids,
 * refused connections). Checks: every id delivered exactly once (or
 * dead-lettered when rejected), the cursor moved, nothing pending, and the
 * POSTed bytes equal `spoolcap dump` of the same records. No timed
 * assertions beyond a generous lower bound for Retry-After. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agentd.h"
#include "rxproc.h"
#include "spop_client.h"
#include "spoolcap/dictcache.h"
#include "spoolcap/log.h"
#include "spoolcap/replay.h"
#include "tap.h"

#define N      500
#define BATCH  50

static char exe[512], cli[512], py[512], rxpy[600], tmp[] = "/tmp/t-replay-XXXXXX";
static char certs[700];                 /* tests/mkcerts.sh output */
static const char *rx_args[8];          /* extra receiver.py arguments */

/* ---- the spool: N NOTIFYs through the real daemon ---- */

static int feed(unsigned port, unsigned n)
{
	uint8_t buf[512], hello[256];
	spc_hello_opts ho = spc_hello_default(16380, "pipelining");
	spc_conn c;
	spc_frame fr;
	unsigned k;
	size_t len;

	if (spc_connect_tcp(&c, "127.0.0.1", port, 2000) < 0)
		return -1;
	len = spc_build_hello(hello, sizeof hello, &ho);
	if (spc_send(&c, hello, len, 2000) < 0 || spc_read_frame(&c, &fr, 5000) != SPC_FRAME)
		return -1;
	for (k = 1; k <= n; k++) {
		char uid[32];

		snprintf(uid, sizeof uid, "u%u", k);
		len = spc_build_notify_uid(buf, sizeof buf, k, 1, "cap-req", uid);
		if (spc_send(&c, buf, len, 2000) < 0 || spc_read_frame(&c, &fr, 5000) != SPC_FRAME ||
		    fr.f.type != SPOP_FRAME_ACK) {
			spc_close(&c);
			return -1;
		}
	}
	spc_close(&c);
	return 0;
}

/* Makes tmp/<name>/spool with n records; 0 or -1. */
static int make_spool(const char *name, unsigned n, char *dir, size_t dirlen)
{
	char log[700], err[512];
	const char *args[] = { "--spool", dir, "--log-level", "warn", NULL };
	agentd d;
	int ok;

	snprintf(dir, dirlen, "%s/%s", tmp, name);
	snprintf(log, sizeof log, "%s/%s.agent.log", tmp, name);
	if (agentd_start(&d, exe, log, args, 10000, err, sizeof err) < 0) {
		tap_diag("spoolcapd: %s", err);
		return -1;
	}
	ok = feed(d.port, n) == 0;
	if (agentd_stop(&d, 10000) != 0)
		ok = 0;
	if (!ok)
		agentd_dump_log(&d, 20);
	return ok ? 0 : -1;
}

/* ---- receivers ---- */

/* receiver.py, or capture.py (which takes the same arguments) when
 * capture is set; rx_args are passed on. */
static int rx_start(struct rxp *x, const char *name, int capture)
{
	char cap[700];

	snprintf(cap, sizeof cap, "%s/capture.py", tmp);
	return rxp_start(x, py, capture ? cap : rxpy, tmp, name, rx_args);
}

/* Counts 2xx lines per seq in a receiver.py record file: ok[seq] (1..N).
 * Returns the number of lines, -1 if unreadable. */
static int rx_tally(const struct rxp *x, const char *uuid, unsigned *ok, unsigned *bad)
{
	FILE *f = fopen(x->rec, "r");
	char line[512], id[200], key[200], nd[8];
	int status, lines = 0;
	size_t ul = strlen(uuid);

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		unsigned long seq;

		if (sscanf(line, "%d %199s %199s %7s", &status, id, key, nd) != 4 ||
		    strncmp(id, uuid, ul) != 0 || id[ul] != '-') {
			(*bad)++;
			continue;
		}
		seq = strtoul(id + ul + 1, NULL, 10);
		if (seq < 1 || seq > N) {
			(*bad)++;
			continue;
		}
		if (status >= 200 && status < 300)
			ok[seq]++;
		lines++;
	}
	fclose(f);
	return lines;
}

/* ---- one scenario ---- */

struct run {
	char       dir[600];
	spool     *sp;
	dictcache *dc;
	replay    *r;
	char       uuid[SPOOL_UUID_STR_LEN];
	double     secs;
	int        rc;
};

/* Settings a scenario changes from run_open's (tw.url: the scheme). */
static replay_config tw;

static int run_open(struct run *u, const char *name, const struct rxp *x)
{
	char err[512], url[128];
	replay_config c;

	memset(u, 0, sizeof *u);
	if (make_spool(name, N, u->dir, sizeof u->dir) < 0)
		return -1;
	if (spool_open(&u->sp, u->dir, NULL, SPOOL_MODE_CLIENT, err, sizeof err) < 0) {
		tap_diag("spool_open: %s", err);
		return -1;
	}
	snprintf(u->uuid, sizeof u->uuid, "%s", spool_uuid(u->sp));
	u->dc = dictcache_new(0);
	if (!u->dc || dictcache_load(u->dc, u->sp, err, sizeof err) < 0) {
		tap_diag("dictcache: %s", err);
		return -1;
	}
	memset(&c, 0, sizeof c);
	snprintf(url, sizeof url, "%s://127.0.0.1:%u/events", tw.url ? tw.url : "http",
	         x->port);     /* tw.url: the scheme */
	c.url = url;
	c.max_inflight = tw.max_inflight;
	c.compress = tw.compress;
	c.ca_file = tw.ca_file;
	c.client_cert = tw.client_cert;
	c.client_key = tw.client_key;
	c.insecure = tw.insecure;
	c.persistent_5xx_attempts = tw.persistent_5xx_attempts;
	c.persistent_5xx_age = tw.persistent_5xx_age;
	c.copy = tw.copy;
	c.from_seq = tw.from_seq;
	c.to_seq = tw.to_seq;
	c.select = tw.select;
	c.max_rate = tw.max_rate;
	c.batch_max_events = BATCH;
	c.linger = -1;
	c.backoff_base_ms = 50;      /* keep the test short */
	c.backoff_cap_ms = 400;
	c.connect_timeout_ms = 2000;
	c.total_timeout_ms = 10000;
	u->r = replay_new(u->sp, u->dc, &c, err, sizeof err);
	if (!u->r) {
		tap_diag("replay_new: %s", err);
		return -1;
	}
	return 0;
}

static void run_drain_for(struct run *u, double secs)
{
	double t0 = rxp_now();

	u->rc = replay_run_until_drained(u->r, secs);
	u->secs = rxp_now() - t0;
}

static void run_drain(struct run *u)
{
	run_drain_for(u, 40);
}

static uint64_t pending_of(struct run *u)
{
	spool_stats st;

	return spool_stat(u->sp, &st) == 0 ? st.records : UINT64_MAX;
}

static void run_close(struct run *u)
{
	replay_free(u->r);
	dictcache_free(u->dc);
	if (u->sp)
		spool_close(u->sp);
	u->r = NULL;
	u->dc = NULL;
	u->sp = NULL;
}

/* Checks shared by every scenario: drained, cursor at N, nothing pending;
 * every seq not in skip[] delivered (exactly once when once). */
static void check_delivered(const char *what, struct run *u, const struct rxp *x,
                            const uint64_t *skip, size_t nskip, int once)
{
	static unsigned ok[N + 1];
	unsigned bad = 0, missing = 0, dups = 0, wrong = 0, s;
	spool_stats st;
	int rc;
	size_t i;

	tap_is_int(u->rc, 0, "%s: replay_run_until_drained returns 0 (%.2f s)", what, u->secs);
	memset(ok, 0, sizeof ok);
	tap_ok(rx_tally(x, u->uuid, ok, &bad) > 0 && bad == 0,
	       "%s: the record file lists our ids (%u foreign lines)", what, bad);
	for (s = 1; s <= N; s++) {
		int skipped = 0;

		for (i = 0; i < nskip; i++)
			skipped |= skip[i] == s;
		if (skipped)
			wrong += ok[s] != 0;
		else if (ok[s] == 0)
			missing++;
		else if (ok[s] > 1)
			dups++;
	}
	tap_is_int(missing, 0, "%s: every event delivered", what);
	if (once)
		tap_is_int(dups, 0, "%s: each id exactly once", what);
	else
		tap_diag("%s: %u duplicate deliveries (allowed)", what, dups);
	tap_is_int(wrong, 0, "%s: no dead-lettered id delivered", what);
	memset(&st, 0, sizeof st);
	rc = spool_stat(u->sp, &st);
	tap_ok(rc == 0 && st.records == 0 && st.cursor == N,
	       "%s: nothing pending, cursor at %d (pending %" PRIu64 ", cursor %" PRIu64 ")",
	       what, N, st.records, st.cursor);
}

struct dlq_seen {
	uint64_t seq[16];
	int      status[16], reason[16];
	size_t   n;
};

static int dlq_cb(const spool_dlq_entry *e, void *user)
{
	struct dlq_seen *d = user;

	if (d->n < 16) {
		d->seq[d->n] = e->seq;
		d->status[d->n] = e->info.http_status;
		d->reason[d->n] = e->info.reason;
	}
	d->n++;
	return 0;
}

struct later {
	const struct rxp *x;
	const char *cmd;
	unsigned ms;
	int rc;
};

static void *later_fn(void *arg)
{
	struct later *l = arg;

	usleep(l->ms * 1000u);
	l->rc = rxp_control(l->x, "%s", l->cmd);
	return NULL;
}

/* Records the POST bodies as received. It takes receiver.py's arguments
 * (rxp_start passes them) and has no control commands: both port files
 * name its one port. */
static const char capture_py[] =
	"import http.server, os, sys\n"
	"a = dict(zip(sys.argv[1::2], sys.argv[2::2]))\n"
	"class H(http.server.BaseHTTPRequestHandler):\n"
	"    protocol_version = 'HTTP/1.1'\n"
	"    def do_POST(self):\n"
	"        b = self.rfile.read(int(self.headers.get('Content-Length', '0')))\n"
	"        with open(a['--record'], 'ab') as f:\n"
	"            f.write(b)\n"
	"        self.send_response(200)\n"
	"        self.send_header('Content-Length', '0')\n"
	"        self.end_headers()\n"
	"    def log_message(self, *a):\n"
	"        pass\n"
	"s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
	"for pf in (a['--port-file'], a['--control-port-file']):\n"
	"    open(pf + '.tmp', 'w').write(str(s.server_address[1]))\n"
	"    os.rename(pf + '.tmp', pf)\n"
	"s.serve_forever()\n";

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	long n;

	*len = 0;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (b = malloc((size_t)n + 1)) && fread(b, 1, (size_t)n, f) == (size_t)n)
		*len = (size_t)n;
	fclose(f);
	return b;
}

static int odd_only(void *arg, uint64_t seq, const record_view *v)
{
	(void)arg;
	(void)v;
	return seq % 2 == 1;
}

/* A new replay object over the run's spool (after replay_free). */
static int restart_replay(struct run *u, const struct rxp *x)
{
	char err[512], url[128];
	replay_config c;

	memset(&c, 0, sizeof c);
	snprintf(url, sizeof url, "http://127.0.0.1:%u/events", x->port);
	c.url = url;
	c.batch_max_events = BATCH;
	c.linger = 0.02;
	c.backoff_base_ms = 50;
	c.backoff_cap_ms = 400;
	u->r = replay_new(u->sp, u->dc, &c, err, sizeof err);
	if (!u->r)
		tap_diag("replay_new: %s", err);
	return u->r ? 0 : -1;
}

/* (10) TLS: verification against our CA, refusal without it, the insecure
 * opt-out, and a receiver that requires a client certificate. */
static void tls_scenarios(struct run *u, struct rxp *x)
{
	char ca[800], other_ca[800], srv[800], srvkey[800], cli_crt[800], cli_key[800];
	struct { const char *name, *ca; int insecure, mtls, client, ok; } cs[] = {
		{ "tls: our CA",          ca,       0, 0, 0, 1 },
		{ "tls: an unrelated CA", other_ca, 0, 0, 0, 0 },
		{ "tls: insecure",        NULL,     1, 0, 0, 1 },
		{ "mtls: no client cert", ca,       0, 1, 0, 0 },
		{ "mtls: client cert",    ca,       0, 1, 1, 1 },
	};
	size_t i;

	snprintf(ca, sizeof ca, "%s/ca.pem", certs);
	snprintf(other_ca, sizeof other_ca, "%s/ca2.pem", certs);
	snprintf(srv, sizeof srv, "%s/server.pem", certs);
	snprintf(srvkey, sizeof srvkey, "%s/server.key", certs);
	snprintf(cli_crt, sizeof cli_crt, "%s/client.pem", certs);
	snprintf(cli_key, sizeof cli_key, "%s/client.key", certs);
	for (i = 0; i < sizeof cs / sizeof cs[0]; i++) {
		char name[16];

		memset(rx_args, 0, sizeof rx_args);
		rx_args[0] = "--tls-cert";
		rx_args[1] = srv;
		rx_args[2] = "--tls-key";
		rx_args[3] = srvkey;
		if (cs[i].mtls) {
			rx_args[4] = "--tls-client-ca";
			rx_args[5] = ca;
		}
		memset(&tw, 0, sizeof tw);
		tw.url = "https";
		tw.ca_file = cs[i].ca;
		tw.insecure = cs[i].insecure;
		if (cs[i].client) {
			tw.client_cert = cli_crt;
			tw.client_key = cli_key;
		}
		snprintf(name, sizeof name, "s10-%zu", i);
		if (rx_start(x, name, 0) == 0 && run_open(u, name, x) == 0) {
			if (cs[i].ok) {
				run_drain(u);
				check_delivered(cs[i].name, u, x, NULL, 0, 0);
			} else {
				run_drain_for(u, 1.5);
				tap_ok(u->rc == -1 && pending_of(u) == N,
				       "%s: refused, nothing delivered or dropped (%" PRIu64 " pending)",
				       cs[i].name, pending_of(u));
				tap_ok(replay_get_stats(u->r)->retries[REPLAY_ENDPOINT] +
				       replay_get_stats(u->r)->retries[REPLAY_TRANSIENT] > 0,
				       "%s: retried (endpoint %" PRIu64 ", transient %" PRIu64 ")",
				       cs[i].name, replay_get_stats(u->r)->retries[REPLAY_ENDPOINT],
				       replay_get_stats(u->r)->retries[REPLAY_TRANSIENT]);
			}
		} else {
			tap_ok(0, "%s: set-up", cs[i].name);
		}
		run_close(u);
		rxp_stop(x);
	}
	memset(rx_args, 0, sizeof rx_args);
	memset(&tw, 0, sizeof tw);
}

int main(int argc, char **argv)
{
	const char *top = getenv("top_srcdir"), *p = getenv("PYTHON3");
	struct run u;
	struct rxp x;
	char path[800], cmd[2200];
	FILE *f;

	(void)argc;
	snprintf(py, sizeof py, "%s", p && *p ? p : "/usr/bin/python3");
	if (access(py, X_OK) != 0) {
		printf("1..0 # SKIP no python3 (%s) for tests/receiver.py\n", py);
		return 0;
	}
	if (top && *top)
		snprintf(rxpy, sizeof rxpy, "%s/tests/receiver.py", top);
	else
		snprintf(rxpy, sizeof rxpy, "%.*s/receiver.py",
		         (int)(strrchr(argv[0], '/') ? strrchr(argv[0], '/') - argv[0] : 1),
		         strrchr(argv[0], '/') ? argv[0] : ".");
	if (access(rxpy, R_OK) != 0) {
		printf("1..0 # SKIP %s not found (set top_srcdir)\n", rxpy);
		return 0;
	}
	if (!mkdtemp(tmp)) {
		printf("1..0 # SKIP cannot create a temporary directory\n");
		return 0;
	}
	/* TLS material: a missing openssl is a failure, not a skip (CI has it) */
	snprintf(certs, sizeof certs, "%s/certs", tmp);
	snprintf(cmd, sizeof cmd, "sh '%.*s/mkcerts.sh' '%s' >/dev/null",
	         (int)(strrchr(rxpy, '/') - rxpy), rxpy, certs);
	agentd_exe(argv[0], exe, sizeof exe);
	agentd_cli_exe(exe, cli, sizeof cli);
	log_set_level(LOGL_ERROR);      /* the failures below are expected */
	snprintf(path, sizeof path, "%s/capture.py", tmp);
	f = fopen(path, "w");
	if (!f || fputs(capture_py, f) < 0 || fclose(f) != 0) {
		printf("1..0 # SKIP cannot write %s\n", path);
		return 0;
	}

	tap_is_int(system(cmd), 0, "tests/mkcerts.sh made the TLS test certificates");

	/* (1) healthy: all N once, cursor moved. */
	if (rx_start(&x, "rx1", 0) == 0 && run_open(&u, "s1", &x) == 0) {
		const replay_stats *st;

		run_drain(&u);
		st = replay_get_stats(u.r);
		check_delivered("healthy", &u, &x, NULL, 0, 1);
		tap_is_int(st->events_delivered, N, "healthy: stats count %d events", N);
		tap_ok(st->batches_ok >= N / BATCH, "healthy: %" PRIu64 " batches of <= %d",
		       st->batches_ok, BATCH);
		tap_diag("healthy: %d events in %.3f s = %.0f events/s, %" PRIu64 " body bytes",
		         N, u.secs, N / u.secs, st->bytes_sent);
	} else {
		tap_ok(0, "healthy: set-up");
	}
	run_close(&u);
	rxp_stop(&x);

	/* (1b) the POSTed bytes are `spoolcap dump` of the same records, in
	 * order with one batch in flight. */
	tw.max_inflight = 1;
	if (rx_start(&x, "cap", 1) == 0 && run_open(&u, "s1b", &x) == 0) {
		char *want, *got;
		size_t wl, gl;

		snprintf(cmd, sizeof cmd, "'%s' dump '%s' > '%s/s1b.dump'", cli, u.dir, tmp);
		tap_is_int(system(cmd), 0, "bytes: spoolcap dump before delivery");
		run_drain(&u);
		tap_is_int(u.rc, 0, "bytes: drained");
		rxp_stop(&x);
		snprintf(path, sizeof path, "%s/s1b.dump", tmp);
		want = slurp(path, &wl);
		got = slurp(x.rec, &gl);
		tap_ok(want && got && wl > 0 && wl == gl && memcmp(want, got, wl) == 0,
		       "bytes: POST bodies concatenated == spoolcap dump (%zu vs %zu bytes)", gl, wl);
		free(want);
		free(got);
	} else {
		tap_ok(0, "bytes: set-up");
	}
	run_close(&u);
	rxp_stop(&x);
	tw.max_inflight = 0;

	/* (2) 503 three times, then ok. */
	if (rx_start(&x, "rx2", 0) == 0 && run_open(&u, "s2", &x) == 0) {
		tap_is_int(rxp_control(&x, "status 503 for 3"), 0, "503: receiver scripted");
		run_drain(&u);
		check_delivered("503", &u, &x, NULL, 0, 1);
		tap_ok(replay_get_stats(u.r)->retries[REPLAY_TRANSIENT] >= 3,
		       "503: %" PRIu64 " transient retries counted",
		       replay_get_stats(u.r)->retries[REPLAY_TRANSIENT]);
	} else {
		tap_ok(0, "503: set-up");
	}
	run_close(&u);
	rxp_stop(&x);

	/* (3) 429 with Retry-After: 1 once: the retry waits >= ~1 s. */
	if (rx_start(&x, "rx3", 0) == 0 && run_open(&u, "s3", &x) == 0) {
		tap_is_int(rxp_control(&x, "retry-after 1 for 1"), 0, "retry-after: receiver scripted");
		run_drain(&u);
		check_delivered("retry-after", &u, &x, NULL, 0, 1);
		tap_ok(replay_get_stats(u.r)->last_delay_ms >= 1000,
		       "retry-after: the delay chosen honours it (%" PRIu64 " ms)",
		       replay_get_stats(u.r)->last_delay_ms);
		tap_ok(u.secs >= 0.9, "retry-after: the drain took >= ~1 s (%.2f s)", u.secs);
	} else {
		tap_ok(0, "retry-after: set-up");
	}
	run_close(&u);
	rxp_stop(&x);

	/* (4) two poison ids -> dead letters with 400, the rest delivered. */
	if (rx_start(&x, "rx4", 0) == 0 && run_open(&u, "s4", &x) == 0) {
		static const uint64_t poison[2] = { 123, 377 };
		struct dlq_seen d;

		memset(&d, 0, sizeof d);
		snprintf(cmd, sizeof cmd, "reject-ids %s-%" PRIu64 " %s-%" PRIu64 " with 400",
		         u.uuid, poison[0], u.uuid, poison[1]);
		tap_is_int(rxp_control(&x, "%s", cmd), 0, "reject: receiver scripted");
		run_drain(&u);
		check_delivered("reject", &u, &x, poison, 2, 1);
		spool_dlq_iterate(u.sp, 0, 0, dlq_cb, &d);
		tap_is_int(d.n, 2, "reject: two dead letters");
		tap_ok(d.n == 2 && d.seq[0] == poison[0] && d.seq[1] == poison[1],
		       "reject: exactly the poison seqs (%" PRIu64 ", %" PRIu64 ")", d.seq[0], d.seq[1]);
		tap_ok(d.n == 2 && d.status[0] == 400 && d.status[1] == 400 &&
		       d.reason[0] == SPOOL_DLQ_REJECTED && d.reason[1] == SPOOL_DLQ_REJECTED,
		       "reject: status 400, reason rejected");
		tap_is_int(replay_get_stats(u.r)->dead_letters, 2, "reject: stats count 2");
		tap_ok(replay_get_stats(u.r)->bisect_sends > 0, "reject: bisection used (%" PRIu64
		       " sub-range POSTs)", replay_get_stats(u.r)->bisect_sends);
	} else {
		tap_ok(0, "reject: set-up");
	}
	run_close(&u);
	rxp_stop(&x);

	/* (4b) 413 for one id: dead-lettered as too large. */
	if (rx_start(&x, "rx4b", 0) == 0 && run_open(&u, "s4b", &x) == 0) {
		static const uint64_t poison[1] = { 250 };
		struct dlq_seen d;

		memset(&d, 0, sizeof d);
		snprintf(cmd, sizeof cmd, "reject-ids %s-%" PRIu64 " with 413", u.uuid, poison[0]);
		tap_is_int(rxp_control(&x, "%s", cmd), 0, "413: receiver scripted");
		run_drain(&u);
		check_delivered("413", &u, &x, poison, 1, 1);
		spool_dlq_iterate(u.sp, 0, 0, dlq_cb, &d);
		tap_ok(d.n == 1 && d.seq[0] == poison[0] && d.status[0] == 413 &&
		       d.reason[0] == SPOOL_DLQ_TOO_LARGE,
		       "413: one dead letter, seq 250, status 413, reason too_large");
	} else {
		tap_ok(0, "413: set-up");
	}
	run_close(&u);
	rxp_stop(&x);

	/* (5) connections refused for ~1 s, then ok: nothing lost. */
	if (rx_start(&x, "rx5", 0) == 0 && run_open(&u, "s5", &x) == 0) {
		struct later l = { &x, "ok", 1000, -1 };
		pthread_t t;
		int started;

		tap_is_int(rxp_control(&x, "refuse"), 0, "refuse: receiver scripted");
		started = pthread_create(&t, NULL, later_fn, &l) == 0;
		run_drain(&u);
		if (started)
			pthread_join(t, NULL);
		tap_is_int(l.rc, 0, "refuse: switched back to ok after 1 s");
		check_delivered("refuse", &u, &x, NULL, 0, 0);
		tap_ok(replay_get_stats(u.r)->retries[REPLAY_TRANSIENT] > 0,
		       "refuse: %" PRIu64 " transient retries",
		       replay_get_stats(u.r)->retries[REPLAY_TRANSIENT]);
	} else {
		tap_ok(0, "refuse: set-up");
	}
	run_close(&u);
	rxp_stop(&x);


	/* (6) four batches in flight, gzip and zstd bodies: all once, in any order. */
	for (int k = 0; k < 2; k++) {
		const char *name = k ? "zstd" : "gzip";

		tw.max_inflight = 4;
		tw.compress = k ? REPLAY_COMPRESS_ZSTD : REPLAY_COMPRESS_GZIP;
		if (rx_start(&x, k ? "rx6z" : "rx6g", 0) == 0 &&
		    run_open(&u, k ? "s6z" : "s6g", &x) == 0) {
			const replay_stats *st;

			run_drain(&u);
			check_delivered(name, &u, &x, NULL, 0, 1);
			st = replay_get_stats(u.r);
			tap_ok(st->bytes_sent > 0 && st->bytes_sent * 2 < st->raw_bytes,
			       "%s: bodies compressed (%" PRIu64 " of %" PRIu64 " bytes)", name,
			       st->bytes_sent, st->raw_bytes);
		} else {
			tap_ok(0, "%s: set-up", name);
		}
		run_close(&u);
		rxp_stop(&x);
	}
	tw.compress = 0;
	tw.max_inflight = 0;

	/* (7) 401 for a while: paused, nothing dropped, then all delivered. */
	if (rx_start(&x, "rx7", 0) == 0 && run_open(&u, "s7", &x) == 0) {
		tap_is_int(rxp_control(&x, "status 401 for 4"), 0, "401: receiver scripted");
		run_drain(&u);
		check_delivered("401", &u, &x, NULL, 0, 0);
		tap_ok(replay_get_stats(u.r)->retries[REPLAY_ENDPOINT] >= 4,
		       "401: %" PRIu64 " endpoint retries, no dead letter (%" PRIu64 ")",
		       replay_get_stats(u.r)->retries[REPLAY_ENDPOINT],
		       replay_get_stats(u.r)->dead_letters);
		tap_is_int(replay_get_stats(u.r)->dead_letters, 0, "401: no dead letter");
	} else {
		tap_ok(0, "401: set-up");
	}
	run_close(&u);
	rxp_stop(&x);

	/* (8) one record the processor answers 500 to, every time, while empty
	 * probes succeed: bisected and dead-lettered as persistent_5xx. */
	tw.persistent_5xx_attempts = 3;
	tw.persistent_5xx_age = -1;
	if (rx_start(&x, "rx8", 0) == 0 && run_open(&u, "s8", &x) == 0) {
		static const uint64_t poison[1] = { 321 };
		struct dlq_seen d;

		memset(&d, 0, sizeof d);
		snprintf(cmd, sizeof cmd, "reject-ids %s-%" PRIu64 " with 500", u.uuid, poison[0]);
		tap_is_int(rxp_control(&x, "%s", cmd), 0, "p5xx: receiver scripted");
		run_drain(&u);
		check_delivered("p5xx", &u, &x, poison, 1, 0);
		spool_dlq_iterate(u.sp, 0, 0, dlq_cb, &d);
		tap_ok(d.n == 1 && d.seq[0] == poison[0] && d.status[0] == 500 &&
		       d.reason[0] == SPOOL_DLQ_PERSISTENT_5XX,
		       "p5xx: exactly seq 321 dead-lettered, HTTP 500, persistent_5xx (%zu)", d.n);
		tap_ok(replay_get_stats(u.r)->probes > 0, "p5xx: %" PRIu64 " probes sent",
		       replay_get_stats(u.r)->probes);
	} else {
		tap_ok(0, "p5xx: set-up");
	}
	run_close(&u);
	rxp_stop(&x);

	/* (8b) an outage answering 503 to everything, probes included: with the
	 * same thresholds nothing is dead-lettered. */
	if (rx_start(&x, "rx8b", 0) == 0 && run_open(&u, "s8b", &x) == 0) {
		tap_is_int(rxp_control(&x, "status 503 for 24"), 0, "5xx outage: receiver scripted");
		run_drain(&u);
		check_delivered("5xx outage", &u, &x, NULL, 0, 0);
		tap_is_int(replay_get_stats(u.r)->dead_letters, 0,
		           "5xx outage: no dead letter (%" PRIu64 " probes)",
		           replay_get_stats(u.r)->probes);
	} else {
		tap_ok(0, "5xx outage: set-up");
	}
	run_close(&u);
	rxp_stop(&x);
	tw.persistent_5xx_attempts = 0;
	tw.persistent_5xx_age = 0;

	/* (9) the daemon's thread: a POST hangs, replay_stop cuts it within the
	 * grace time and keeps everything; a second start delivers it all. */
	if (rx_start(&x, "rx9", 0) == 0 && run_open(&u, "s9", &x) == 0) {
		char err[256];
		double t0;
		uint64_t left;

		tap_is_int(rxp_control(&x, "slow-body 60"), 0, "stop: receiver scripted");
		tap_is_int(replay_start(u.r, err, sizeof err), 0, "stop: replay_start");
		usleep(800000);
		t0 = rxp_now();
		replay_stop(u.r, 0.5);
		t0 = rxp_now() - t0;
		tap_ok(t0 >= 0.3 && t0 < 3, "stop: replay_stop returned after the grace (%.2f s)",
		       t0);
		left = pending_of(&u);
		tap_ok(left == N, "stop: nothing delivered, all %d still pending (%" PRIu64 ")",
		       N, left);
		tap_is_int(rxp_control(&x, "ok"), 0, "stop: receiver back to ok");
		replay_free(u.r);
		u.r = NULL;
		tap_ok(restart_replay(&u, &x) == 0 && replay_start(u.r, err, sizeof err) == 0,
		       "stop: a new replay thread starts");
		for (t0 = rxp_now(); rxp_now() - t0 < 30 && pending_of(&u) != 0; usleep(20000))
			;
		replay_stop(u.r, 1);
		u.rc = pending_of(&u) == 0 ? 0 : -1;
		check_delivered("stop", &u, &x, NULL, 0, 0);
		{
			replay_stats snap;

			replay_snapshot(u.r, &snap);
			tap_ok(snap.events_delivered == N && snap.state == REPLAY_ST_IDLE,
			       "stop: the snapshot says %" PRIu64 " delivered, state %s",
			       snap.events_delivered, replay_state_name(snap.state));
		}
	} else {
		tap_ok(0, "stop: set-up");
	}
	run_close(&u);
	rxp_stop(&x);

	tls_scenarios(&u, &x);

	/* (11) copy mode (spoolcap replay --to): seqs 100..199, odd ones only,
	 * paced at 1000 events/s; the spool is left as it was. */
	tw.copy = 1;
	tw.from_seq = 100;
	tw.to_seq = 199;
	tw.select = odd_only;
	tw.max_rate = 1000;
	if (rx_start(&x, "rx11", 0) == 0 && run_open(&u, "s11", &x) == 0) {
		static unsigned ok[N + 1];
		unsigned bad = 0, got = 0, wrong = 0, k;

		run_drain(&u);
		tap_is_int(u.rc, 0, "copy: drained (%.2f s)", u.secs);
		memset(ok, 0, sizeof ok);
		rx_tally(&x, u.uuid, ok, &bad);
		for (k = 1; k <= N; k++) {
			int want = k >= 100 && k <= 199 && k % 2 == 1;

			got += ok[k] > 0;
			wrong += (ok[k] > 0) != want;
		}
		tap_ok(got == 50 && wrong == 0 && bad == 0,
		       "copy: exactly the 50 odd seqs of 100..199 sent (%u, %u wrong)", got, wrong);
		tap_is_int(replay_get_stats(u.r)->skipped, 50, "copy: 50 skipped by select");
		tap_ok(pending_of(&u) == N, "copy: the spool is unchanged (%" PRIu64 " pending)",
		       pending_of(&u));
		tap_ok(u.secs >= 0.03, "copy: paced by max_rate (%.2f s for 50 at 1000/s)",
		       u.secs);
	} else {
		tap_ok(0, "copy: set-up");
	}
	run_close(&u);
	rxp_stop(&x);
	memset(&tw, 0, sizeof tw);

	agentd_cleanup_dir(tmp, tap_failed);
	return tap_done(0);
}
