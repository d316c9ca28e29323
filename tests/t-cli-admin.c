/* t-cli-admin.c -- spoolcap dlq, verify, compact, purge and probe against
 * the real daemon: dead letters made by real rejects (tests/receiver.py
 * answering 400 for chosen event ids), records corrupted through LMDB,
 * counters checked with stat --json, every subcommand run while the daemon
 * captures and delivers under load (no error, the daemon unharmed), probe
 * against spoolcapd, a closed port and servers that are not SPOP agents,
 * and bad arguments (exit status 2). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "agentd.h"
#include "rxproc.h"
#include "spop_client.h"
#include "tap.h"

static char exe[512], cli[512], tmp[] = "/tmp/t-cli-admin-XXXXXX";
static char py[512], rxpy[700];
static char out[262144];

/* Runs `spoolcap ARGS` (fmt) through the shell; stdout (and stderr with
 * both) into out; returns the exit status, or -1. */
static int sc(int both, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sc(int both, const char *fmt, ...)
{
	char args[4096], cmd[4800];
	va_list ap;
	FILE *p;
	size_t n;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof cmd, "'%s' %s%s", cli, args, both ? " 2>&1" : " 2>/dev/null");
	p = popen(cmd, "r");
	if (!p)
		return -1;
	n = fread(out, 1, sizeof out - 1, p);
	out[n] = 0;
	while (fgetc(p) != EOF)
		;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A shell command's exit status (output discarded). */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4800];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static unsigned count_lines(const char *s)
{
	unsigned n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* The line of s holding what (the first line when absent), for a TAP
 * description (which must stay on one line). */
static const char *line_of(const char *s, const char *what)
{
	static char l[400];
	const char *p = what ? strstr(s, what) : NULL;

	if (p)
		while (p > s && p[-1] != '\n')
			p--;
	else
		p = s;
	snprintf(l, sizeof l, "%.*s", (int)strcspn(p, "\n"), p);
	return l;
}

static const char *line1(const char *s)
{
	return line_of(s, "spoolcap");
}

/* The number after "key": in a JSON text (first occurrence), or -1. */
static long long jnum(const char *json, const char *key)
{
	char k[80];
	const char *p;

	snprintf(k, sizeof k, "\"%s\":", key);
	p = strstr(json, k);
	return p ? strtoll(p + strlen(k), NULL, 10) : -1;
}

static long long stat_num(const char *spool, const char *key)
{
	if (sc(0, "stat --json '%s'", spool) != 0)
		return -1;
	return jnum(out, key);
}

/* Waits (bounded; not a timed assertion) until stat's key reaches want. */
static int wait_stat(const char *spool, const char *key, long long want, double max_s)
{
	double t0 = rxp_now();

	do {
		if (stat_num(spool, key) >= want)
			return 0;
		usleep(50000);
	} while (rxp_now() - t0 < max_s);
	tap_diag("stat %s stayed at %lld, wanted %lld", key, stat_num(spool, key), want);
	return -1;
}

/* ---- feeding the daemon ---- */

/* n NOTIFYs, message k = first..first+n-1: uid "k<k>", a header block and
 * a body, all ACKed. */
static int feed(unsigned port, unsigned first, unsigned n)
{
	uint8_t buf[2048], hello[256];
	spc_hello_opts ho = spc_hello_default(16380, "pipelining");
	spc_conn c;
	spc_frame fr;
	size_t len;

	if (spc_connect_tcp(&c, "127.0.0.1", port, 2000) < 0)
		return -1;
	len = spc_build_hello(hello, sizeof hello, &ho);
	if (spc_send(&c, hello, len, 2000) < 0 || spc_read_frame(&c, &fr, 5000) != SPC_FRAME) {
		spc_close(&c);
		return -1;
	}
	for (unsigned k = first; k < first + n; k++) {
		static const uint8_t hdrs[] = { 4, 'h', 'o', 's', 't', 11, 'e', 'x', 'a', 'm', 'p',
		                                'l', 'e', '.', 'c', 'o', 'm', 0, 0 };
		char uid[16], body[64];
		spc_arg a[4];
		spc_msg m = { "cap-req", a, 4 };

		snprintf(uid, sizeof uid, "k%u", k);
		snprintf(body, sizeof body, "{\"order\":%u}", k);
		a[0] = (spc_arg){ "uid", spc_cstr(uid) };
		a[1] = (spc_arg){ "path", spc_cstr("/api/orders") };
		a[2] = (spc_arg){ "hdrs", spc_str(SPOP_T_BINARY, hdrs, sizeof hdrs) };
		a[3] = (spc_arg){ "body", spc_str(SPOP_T_BINARY, body, strlen(body)) };
		len = spc_build_notify(buf, sizeof buf, 100 + k, 1, &m, 1);
		if (spc_send(&c, buf, len, 2000) < 0 || spc_read_frame(&c, &fr, 5000) != SPC_FRAME ||
		    fr.f.type != SPOP_FRAME_ACK) {
			spc_close(&c);
			return -1;
		}
	}
	spc_close(&c);
	return 0;
}

/* ---- damage ---- */

/* Flips the last byte of a value in table "q" or "dlq" through LMDB: the
 * last byte of a record, i.e. its zstd content checksum. */
static int corrupt(const char *dir, const char *table, uint64_t seq)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val k = { sizeof seq, &seq }, v, nv;
	uint8_t *copy = NULL;
	int rc;

	if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 8)) ||
	    (rc = mdb_env_open(env, dir, 0, 0640)) || (rc = mdb_txn_begin(env, NULL, 0, &txn)) ||
	    (rc = mdb_dbi_open(txn, table, MDB_INTEGERKEY, &dbi)) ||
	    (rc = mdb_get(txn, dbi, &k, &v)))
		goto out;
	copy = malloc(v.mv_size);
	if (!copy) {
		rc = ENOMEM;
		goto out;
	}
	memcpy(copy, v.mv_data, v.mv_size);
	copy[v.mv_size - 1] ^= 0x5a;
	nv.mv_size = v.mv_size;
	nv.mv_data = copy;
	if ((rc = mdb_put(txn, dbi, &k, &nv, 0)) == 0)
		rc = mdb_txn_commit(txn);
	txn = NULL;
out:
	if (rc)
		tap_diag("corrupting %s seq %llu: %s", table, (unsigned long long)seq,
		         mdb_strerror(rc));
	if (txn)
		mdb_txn_abort(txn);
	if (env)
		mdb_env_close(env);
	free(copy);
	return rc ? -1 : 0;
}

static long long file_size(const char *dir, const char *name)
{
	char p[800];
	struct stat st;

	snprintf(p, sizeof p, "%s/%s", dir, name);
	return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

/* ---- servers that are not SPOP agents ---- */

enum { FAKE_HTTP, FAKE_SILENT, FAKE_CLOSE, FAKE_BIG_HELLO, FAKE_BAD_ACK };

/* An agent that gets one thing wrong. BIG_HELLO: its AGENT-HELLO answers
 * max-frame-size 99999, above the 16380 announced. BAD_ACK: a proper
 * AGENT-HELLO, then an ACK with the wrong frame id. */
static void fake_agent(int c, int mode)
{
	uint8_t in[4096], o[512];
	spop_wbuf w;
	spop_frame f;
	size_t n = 0, used, start;
	ssize_t r;

	if (read(c, in, sizeof in) <= 0)
		return;
	if (mode == FAKE_BIG_HELLO) {
		spop_wbuf_init(&w, o, sizeof o);
		start = spop_frame_begin(&w, SPOP_FRAME_AGENT_HELLO, SPOP_FLAG_FIN, 0, 0);
		spop_put_name(&w, "version", 7);
		spop_put_str(&w, SPOP_T_STRING, "2.0", 3);
		spop_put_name(&w, "max-frame-size", 14);
		spop_put_uint(&w, SPOP_T_UINT32, 99999);
		spop_put_name(&w, "capabilities", 12);
		spop_put_str(&w, SPOP_T_STRING, "", 0);
		n = spop_frame_end(&w, start);
		if (write(c, o, n) < 0)
			return;
		return;
	}
	n = spop_agent_hello(o, sizeof o, 16380, "pipelining");
	if (write(c, o, n) < 0)
		return;
	for (n = 0; (r = read(c, in + n, sizeof in - n)) > 0;) {
		n += (size_t)r;
		if (spop_frame_get(in, n, sizeof in, &f, &used) == 1) {
			n = spop_ack(o, sizeof o, f.sid, f.fid + 1, NULL, 0);
			if (write(c, o, n) < 0)
				return;
			break;
		}
	}
	while (read(c, in, sizeof in) > 0)
		;
}

static pid_t fake_server(int mode, unsigned *port)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	pid_t pid;

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	fflush(stdout);
	pid = fork();
	if (pid != 0) {
		close(fd);
		return pid;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		static const char resp[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
		                           "Connection: close\r\n\r\n";
		char buf[512];
		int c = accept(fd, NULL, NULL);

		if (c < 0)
			_exit(0);
		if (mode == FAKE_HTTP) {
			if (read(c, buf, sizeof buf) > 0 && write(c, resp, sizeof resp - 1) < 0)
				_exit(1);
		} else if (mode == FAKE_SILENT) {
			while (read(c, buf, sizeof buf) > 0)
				;
		} else if (mode != FAKE_CLOSE) {
			fake_agent(c, mode);
		}
		close(c);
	}
}

static void stop_child(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

/* ---- load ---- */

struct load {
	unsigned   port;
	atomic_int stop;
	unsigned   acked, not_spooled;
	int        err;
	char       why[300];
};

/* NOTIFYs one after the other until told to stop; each ACK must say
 * spooled = true. Bodies vary so a dictionary gets trained meanwhile. */
static void *load_main(void *arg)
{
	struct load *l = arg;
	uint8_t buf[4096], hello[256];
	spc_hello_opts ho = spc_hello_default(16380, "pipelining");
	spc_conn c;
	spc_frame fr;
	size_t len;
	unsigned k;

	if (spc_connect_tcp(&c, "127.0.0.1", l->port, 2000) < 0) {
		snprintf(l->why, sizeof l->why, "connect: %s", c.errmsg);
		l->err = 1;
		return NULL;
	}
	len = spc_build_hello(hello, sizeof hello, &ho);
	if (spc_send(&c, hello, len, 2000) < 0 || spc_read_frame(&c, &fr, 5000) != SPC_FRAME) {
		snprintf(l->why, sizeof l->why, "hello: %s", c.errmsg);
		l->err = 1;
		spc_close(&c);
		return NULL;
	}
	for (k = 1; !atomic_load(&l->stop); k++) {
		char uid[32], body[1200];
		spc_arg a[3];
		spc_msg m = { "cap-req", a, 3 };
		spop_action act;
		unsigned nact;
		size_t o = 0;

		snprintf(uid, sizeof uid, "load-%u", k);
		while (o < 200 + (k * 37) % 900)
			o += (size_t)snprintf(body + o, sizeof body - o, "{\"item\":%u,\"sku\":\"A%u\"}",
			                      (k * 7 + (unsigned)o) % 100, k % 13);
		a[0] = (spc_arg){ "uid", spc_cstr(uid) };
		a[1] = (spc_arg){ "path", spc_cstr(k % 2 ? "/api/cart" : "/api/checkout") };
		a[2] = (spc_arg){ "body", spc_str(SPOP_T_BINARY, body, o) };
		len = spc_build_notify(buf, sizeof buf, k, 1, &m, 1);
		if (spc_send(&c, buf, len, 5000) < 0 || spc_read_frame(&c, &fr, 10000) != SPC_FRAME ||
		    fr.f.type != SPOP_FRAME_ACK || spc_parse_ack(&fr, &nact, &act) < 0) {
			snprintf(l->why, sizeof l->why, "NOTIFY %u: %s", k, c.errmsg);
			l->err = 1;
			break;
		}
		l->acked++;
		if (act.type != SPOP_ACT_SET_VAR || act.value.type != SPOP_T_BOOL || !act.value.v.b)
			l->not_spooled++;
	}
	spc_close(&c);
	return NULL;
}

/* ---- the parts ---- */

static void test_probe(void)
{
	char sock[600], log[600];
	const char *args[] = { "--listen", sock, "--log-level", "warn", NULL };
	char err[512];
	agentd d;
	unsigned port;
	pid_t fake;

	snprintf(sock, sizeof sock, "unix:%s/agent.sock", tmp);
	snprintf(log, sizeof log, "%s/probe-agent.log", tmp);
	if (agentd_start(&d, exe, log, args, 10000, err, sizeof err) < 0) {
		tap_ok(0, "spoolcapd (no spool) starts: %s", err);
		return;
	}
	tap_is_int(sc(1, "probe 127.0.0.1:%u", d.port), 0, "probe: exit 0 against spoolcapd");
	tap_ok(strstr(out, "version 2.0, max-frame-size 16380, capabilities \"pipelining\"") != NULL,
	       "probe: prints the negotiated version, max-frame-size and capabilities");
	tap_ok(strstr(out, "for a NOTIFY of 1 message \"cap-req\" (15 args,") != NULL,
	       "probe: sends one cap-req message with the recipe's 15 arguments");
	tap_ok(strstr(out, "unset-var txn._") != NULL,
	       "probe: prints the ACK's action (without a spool: the harmless unset-var)");
	tap_ok(strstr(out, "AGENT-DISCONNECT status 0 (normal)") != NULL &&
	       strstr(out, " ms  127.0.0.1:") && strstr(out, "speaks SPOP 2.0"),
	       "probe: DISCONNECT exchange and a summary with round-trip times");
	tap_is_int(sc(1, "probe 127.0.0.1:%u --healthcheck", d.port), 0, "probe --healthcheck: exit 0");
	tap_ok(strstr(out, "health check passed") && !strstr(out, "ACK"),
	       "probe --healthcheck: HELLO only, no NOTIFY");
	tap_is_int(sc(1, "probe 127.0.0.1:%u --max-frame-size 300", d.port), 0,
	           "probe --max-frame-size 300: exit 0");
	tap_ok(strstr(out, "max-frame-size 300,") != NULL,
	       "probe --max-frame-size: the agent answers the smaller size");
	tap_is_int(sc(1, "probe %s --message my-msg", sock), 0, "probe unix:PATH: exit 0");
	tap_ok(strstr(out, "\"my-msg\"") && strstr(out, "unix "), "probe --message over a unix socket");

	port = agentd_free_port();
	tap_is_int(sc(1, "probe 127.0.0.1:%u", port), 1, "probe of a closed port: exit 1");
	tap_ok(strstr(out, "refused") != NULL, "... saying the connection was refused: %s",
	       line1(out));
	fake = fake_server(FAKE_HTTP, &port);
	tap_is_int(sc(1, "probe 127.0.0.1:%u", port), 1, "probe of an HTTP server: exit 1");
	tap_ok(strstr(out, "not an SPOP frame") && strstr(out, "HTTP/1.1 400"),
	       "... saying it is not SPOP and showing what it sent: %s", line1(out));
	stop_child(fake);
	fake = fake_server(FAKE_SILENT, &port);
	tap_is_int(sc(1, "probe 127.0.0.1:%u --timeout 300ms", port), 1,
	           "probe of a server that never answers: exit 1");
	tap_ok(strstr(out, "within 300 ms") != NULL, "... after --timeout: %s", line1(out));
	stop_child(fake);
	fake = fake_server(FAKE_CLOSE, &port);
	tap_is_int(sc(1, "probe 127.0.0.1:%u", port), 1, "probe of a server that hangs up: exit 1");
	tap_ok(strstr(out, "closed the connection") || strstr(out, "reset the connection"),
	       "... saying so: %s", line1(out));
	stop_child(fake);

	fake = fake_server(FAKE_BIG_HELLO, &port);
	tap_is_int(sc(1, "probe 127.0.0.1:%u", port), 1,
	           "probe of an agent answering a max-frame-size above HAProxy's: exit 1");
	tap_ok(strstr(out, "max-frame-size 99999 is outside 256..16380") &&
	       strstr(out, "status 9"), "... saying what HAProxy would do: %s", line1(out));
	stop_child(fake);
	fake = fake_server(FAKE_BAD_ACK, &port);
	tap_is_int(sc(1, "probe 127.0.0.1:%u", port), 1, "probe of an agent ACKing the wrong frame: exit 1");
	tap_ok(strstr(out, "the ACK has stream/frame ids 1/2 but the NOTIFY had 1/1") != NULL,
	       "... naming the ids: %s", line1(out));
	stop_child(fake);

	tap_is_int(sc(1, "probe"), 2, "probe without an address: exit 2");
	tap_is_int(sc(1, "probe nohostport"), 2, "probe of 'nohostport': exit 2");
	tap_ok(strstr(out, "HOST:PORT") != NULL, "... saying what an address looks like");
	tap_is_int(sc(1, "probe 127.0.0.1:70000"), 2, "probe with port 70000: exit 2");
	tap_is_int(sc(1, "probe 127.0.0.1:%u --timeout 0", d.port), 2, "probe --timeout 0: exit 2");
	tap_is_int(sc(1, "probe 127.0.0.1:%u --max-frame-size 100", d.port), 2,
	           "probe --max-frame-size 100: exit 2");
	tap_is_int(sc(1, "probe 127.0.0.1:%u 127.0.0.1:%u", d.port, d.port), 2,
	           "probe of two addresses: exit 2");
	tap_is_int(sc(1, "probe --help"), 0, "probe --help: exit 0");
	tap_ok(strstr(out, "--healthcheck") && strstr(out, "--timeout"), "... listing the options");
	tap_ok(agentd_alive(&d), "spoolcapd survived the probes");
	tap_is_int(agentd_stop(&d, 10000), 0, "spoolcapd exits 0");
}

static char uuid[40];

static int seq_line(const char *text, unsigned seq)
{
	char l[32];

	snprintf(l, sizeof l, "\n%10u  ", seq);
	return strstr(text, l) != NULL;
}

/* Dead letters from real rejects; dlq ls/show/requeue/purge. */
static int test_dlq(const char *spool, struct rxp *x)
{
	char log[600], url[64];
	const char *fwd[] = { "--spool", spool, "--log-level", "warn", "--forward", url,
	                      "--retain", "1h", "--forward-linger", "20ms", NULL };
	const char *plain[] = { "--spool", spool, "--log-level", "warn", NULL };
	char err[512];
	agentd d;

	snprintf(log, sizeof log, "%s/agent.log", tmp);
	if (agentd_start(&d, exe, log, plain, 10000, err, sizeof err) < 0) {
		tap_ok(0, "spoolcapd starts: %s", err);
		return -1;
	}
	tap_ok(feed(d.port, 1, 10) == 0, "ten NOTIFYs are ACKed (seqs 1-10)");
	tap_is_int(agentd_stop(&d, 10000), 0, "spoolcapd exits 0");
	if (sc(0, "stat --json '%s'", spool) != 0 || !strstr(out, "\"uuid\":\""))
		return -1;
	snprintf(uuid, sizeof uuid, "%.36s", strstr(out, "\"uuid\":\"") + 8);

	/* the processor rejects events 3 and 7 */
	if (rxp_start(x, py, rxpy, tmp, "rx", NULL) < 0 ||
	    rxp_control(x, "reject-ids %s-3 %s-7 with 400", uuid, uuid) < 0) {
		tap_ok(0, "receiver.py starts");
		return -1;
	}
	snprintf(url, sizeof url, "http://127.0.0.1:%u/", x->port);
	if (agentd_start(&d, exe, log, fwd, 10000, err, sizeof err) < 0) {
		tap_ok(0, "spoolcapd --forward starts: %s", err);
		return -1;
	}
	tap_ok(wait_stat(spool, "cursor", 10, 30) == 0 &&
	       wait_stat(spool, "dead_letters", 2, 30) == 0,
	       "delivery: 8 events accepted, 3 and 7 rejected (400) and dead-lettered");

	tap_is_int(sc(1, "dlq ls '%s'", spool), 0, "dlq ls: exit 0 while the daemon runs");
	tap_ok(seq_line(out, 3) && seq_line(out, 7) && !seq_line(out, 5),
	       "dlq ls: one line for each dead letter (3, 7)");
	tap_ok(strstr(out, "rejected        400             1  rejected event ids") != NULL,
	       "dlq ls: reason, HTTP status, attempts and the start of the reply");
	tap_ok(strstr(out, "2 dead letters") != NULL, "dlq ls: a count at the end");
	tap_is_int(sc(0, "dlq ls --json '%s'", spool), 0, "dlq ls --json: exit 0");
	tap_is_int(count_lines(out), 2, "dlq ls --json: one line per dead letter");
	tap_is_int(sh("'%s' dlq ls --json '%s' | '%s' -c 'import json,sys\n"
	              "for l in sys.stdin:\n d=json.loads(l)\n"
	              " assert d[\"reason\"]==\"rejected\" and d[\"http_status\"]==400 and "
	              "d[\"attempts\"]>=1 and d[\"seq\"] in (3,7), d\n"
	              " assert d[\"reply\"].startswith(\"rejected event ids\"), d'",
	              cli, spool, py), 0, "dlq ls --json: valid JSON with reason, status, reply");
	tap_is_int(sc(1, "dlq ls '%s' --limit 1", spool), 0, "dlq ls --limit 1: exit 0");
	tap_ok(seq_line(out, 3) && !seq_line(out, 7), "dlq ls --limit 1: only the first");

	tap_is_int(sc(0, "dlq show '%s' 3", spool), 0, "dlq show 3: exit 0");
	tap_ok(strstr(out, "\"reason\": \"rejected\"") && strstr(out, "\"http_status\": 400") &&
	       strstr(out, "\"event\": {") && strstr(out, "\"uid\": \"k3\"") &&
	       strstr(out, "\"hdrs\": [\n"), "dlq show: the dead letter and its event, indented");
	tap_is_int(sh("'%s' dlq show '%s' 3 | '%s' -c 'import json,sys; d=json.load(sys.stdin); "
	              "assert d[\"event\"][\"seq\"]==3 and d[\"event\"][\"id\"].endswith(\"-3\")'",
	              cli, spool, py), 0, "dlq show: valid JSON");
	tap_is_int(sc(1, "dlq show '%s' 5", spool), 1, "dlq show of a seq that is not dead: exit 1");
	tap_ok(strstr(out, "no dead letter with seq 5") != NULL, "... saying so: %s", line1(out));
	tap_is_int(sc(1, "dlq show '%s'", spool), 2, "dlq show without SEQ: exit 2");
	tap_is_int(sc(1, "dlq show '%s' x", spool), 2, "dlq show x: exit 2");

	/* requeue: back in the queue under a new seq, delivered this time */
	tap_is_int(sc(1, "dlq requeue '%s' 3 3", spool), 0, "dlq requeue 3 3: exit 0");
	tap_ok(strstr(out, "3 -> 11\n") && strstr(out, "requeued 1 dead letter") &&
	       count_lines(out) == 2, "dlq requeue: prints OLD -> NEW (3 -> 11), once");
	tap_ok(wait_stat(spool, "cursor", 11, 30) == 0, "the requeued event is delivered");
	tap_is_int(sh("grep -q '^200 %s-11 ' '%s'", uuid, x->rec), 0,
	           "... the processor got it as %s-11", uuid);
	tap_is_int(stat_num(spool, "requeued"), 1, "stat counts 1 requeued");
	/* purge: gone for good, counted */
	tap_is_int(sc(1, "dlq '%s' purge 7", spool), 0, "dlq DIR purge 7 (directory first): exit 0");
	tap_ok(strstr(out, "purged 1 dead letter") != NULL, "... purged 1");
	tap_is_int(stat_num(spool, "purged"), 1, "stat counts it as dropped, reason purged");
	tap_is_int(stat_num(spool, "dead_letters"), 0, "no dead letters left");
	tap_is_int(sc(1, "dlq purge '%s' 7", spool), 1, "dlq purge of a seq that is gone: exit 1");
	tap_ok(strstr(out, "no dead letter with seq 7") != NULL, "... saying so");
	tap_is_int(sc(1, "dlq requeue '%s'", spool), 2, "dlq requeue without SEQ or --all: exit 2");
	tap_is_int(sc(1, "dlq requeue '%s' 3 --all", spool), 2, "dlq requeue SEQ --all: exit 2");
	tap_is_int(sc(1, "dlq purge '%s' 0", spool), 2, "dlq purge 0: exit 2");
	tap_is_int(sc(1, "dlq frob '%s'", spool), 2, "dlq frob: exit 2");
	tap_is_int(sc(1, "dlq"), 2, "dlq without an action: exit 2");
	tap_is_int(sc(1, "dlq ls '%s/nonexistent'", tmp), 2, "dlq ls of a missing directory: exit 2");
	tap_is_int(sc(1, "dlq --help"), 0, "dlq --help: exit 0");
	tap_ok(strstr(out, "requeue") && strstr(out, "--all"), "... describing the actions");

	/* --all: three more rejected, all requeued at once */
	rxp_control(x, "reject-ids %s-12 %s-13 %s-14 with 400", uuid, uuid, uuid);
	tap_ok(feed(d.port, 11, 3) == 0, "three more NOTIFYs (seqs 12-14)");
	tap_ok(wait_stat(spool, "dead_letters", 3, 30) == 0, "... all three dead-lettered");
	tap_is_int(sc(1, "dlq requeue '%s' --all", spool), 0, "dlq requeue --all: exit 0");
	tap_ok(strstr(out, "12 -> 15\n") && strstr(out, "13 -> 16\n") && strstr(out, "14 -> 17\n") &&
	       strstr(out, "requeued 3 dead letters"), "dlq requeue --all: 12->15, 13->16, 14->17");
	tap_ok(wait_stat(spool, "cursor", 17, 30) == 0, "... all delivered");
	/* two more to keep: one purged now, one for verify */
	rxp_control(x, "reject-ids %s-18 %s-19 with 400", uuid, uuid);
	tap_ok(feed(d.port, 14, 2) == 0 && wait_stat(spool, "dead_letters", 2, 30) == 0 &&
	       wait_stat(spool, "cursor", 19, 30) == 0, "two more dead letters (18, 19)");
	tap_is_int(sc(1, "dlq purge '%s' 18", spool), 0, "dlq purge 18: exit 0");
	tap_is_int(stat_num(spool, "purged"), 2, "purged counter 2");

	tap_is_int(sc(1, "verify '%s'", spool), 0, "verify of a sound spool: exit 0 (daemon running)");
	tap_ok(strstr(out, ": 13 records checked") && strstr(out, ", 0 corrupt"),
	       "verify: 12 retained records and 1 dead letter checked, none corrupt: %s",
	       line1(out));
	tap_ok(agentd_alive(&d), "the daemon is still running");
	tap_is_int(agentd_stop(&d, 10000), 0, "spoolcapd --forward exits 0");
	rxp_stop(x);
	return 0;
}

/* Damaged records: verify, --quarantine; purge with and without --force. */
static void test_verify_purge(const char *spool)
{
	char log[600], t24[64] = "";
	/* no delivery; retention kept on, or the daemon prunes what is retained */
	const char *plain[] = { "--spool", spool, "--log-level", "warn", "--retain", "1h", NULL };
	char err[512];
	const char *p;
	agentd d;

	snprintf(log, sizeof log, "%s/agent.log", tmp);
	if (agentd_start(&d, exe, log, plain, 10000, err, sizeof err) < 0) {
		tap_ok(0, "spoolcapd starts: %s", err);
		return;
	}
	tap_ok(feed(d.port, 20, 5) == 0, "five pending records (seqs 20-24)");
	tap_is_int(agentd_stop(&d, 10000), 0, "spoolcapd exits 0");
	tap_ok(corrupt(spool, "q", 5) == 0 && corrupt(spool, "q", 21) == 0 &&
	       corrupt(spool, "dlq", 19) == 0,
	       "damaged through LMDB: retained 5, pending 21, dead letter 19");

	tap_is_int(sc(0, "verify '%s'", spool), 1, "verify: exit 1");
	tap_ok(strstr(out, "seq 5 (retained): ") && strstr(out, "seq 21 (pending): ") &&
	       strstr(out, "seq 19 (dead letter): "), "verify: names each damaged record");
	tap_ok(strstr(out, "checksum") != NULL, "verify: says what is wrong (%s)", line1(out));
	tap_ok(strstr(out, "18 records checked") && strstr(out, ", 3 corrupt (1 among the dead"),
	       "verify: summary: %s", line_of(out, "records checked"));
	tap_is_int(sh("'%s' verify --json '%s' 2>/dev/null | '%s' -c 'import json,sys; d=json.load(sys.stdin); "
	              "assert d[\"corrupt\"]==3 and d[\"checked\"]==18 and d[\"complete\"], d; "
	              "s={(r[\"seq\"],r[\"state\"]) for r in d[\"corrupt_records\"]}; "
	              "assert s=={(5,\"retained\"),(21,\"pending\"),(19,\"dead\")}, s'",
	              cli, spool, py), 0, "verify --json: the damaged records and a summary");
	tap_is_int(sc(0, "verify --quarantine '%s'", spool), 1, "verify --quarantine: exit 1");
	tap_ok(strstr(out, "seq 21 (pending): ") &&
	       strstr(out, "moved to the dead-letter table (reason corrupt)") &&
	       strstr(out, "1 moved to the dead-letter table"), "... moves pending 21 aside");
	tap_is_int(stat_num(spool, "corrupt"), 1, "stat: 1 dead letter with reason corrupt");
	tap_is_int(sc(1, "dlq ls '%s'", spool), 0, "dlq ls shows it");
	tap_ok(seq_line(out, 21) && strstr(out, "corrupt") && strstr(out, "checksum"),
	       "... with the reason and the error as its reply");
	tap_is_int(sc(1, "dlq show '%s' 21", spool), 1, "dlq show of the damaged record: exit 1");
	tap_ok(strstr(out, "\"reason\": \"corrupt\"") && strstr(out, "\"event\": null") &&
	       strstr(out, "\"error\": \"") && strstr(out, "does not decode"),
	       "... still shows the entry, with the decoding error instead of the event");
	tap_is_int(sc(0, "verify '%s'", spool), 1, "verify still exits 1 (damage is damage)");
	tap_ok(strstr(out, ", 3 corrupt (2 among the dead letters)") != NULL, "... %s",
	       line_of(out, "records checked"));

	/* purge: retained only, then pending with --force */
	tap_is_int(sc(1, "purge '%s' --to 10", spool), 0, "purge --to 10: exit 0");
	tap_ok(strstr(out, "removed 8 records with seq <= 10: 8 delivered") != NULL,
	       "purge --to 10 removes the 8 retained records up to 10: %s", line1(out));
	tap_is_int(stat_num(spool, "pruned"), 8, "... counted as pruned");
	tap_is_int(stat_num(spool, "purged"), 2, "... not as purged drops");
	tap_is_int(sc(1, "purge '%s' --to 22 --force --dry-run", spool), 0, "purge --dry-run: exit 0");
	tap_ok(strstr(out, "would remove 6 records: 4 delivered (retained), 2 pending") != NULL,
	       "... says what would go: %s", line1(out));
	tap_is_int(stat_num(spool, "retained_records"), 4, "... and removes nothing");
	tap_is_int(sc(1, "purge '%s' --to 22", spool), 0, "purge --to 22 without --force: exit 0");
	tap_ok(strstr(out, "removed 4 records") && strstr(out, "0 pending") &&
	       strstr(out, "add --force"), "... removes the 4 retained, keeps pending ones");
	tap_is_int(stat_num(spool, "records"), 4, "4 pending records remain (20, 22, 23, 24)");
	tap_is_int(sc(1, "purge '%s' --to 22 --force", spool), 0, "purge --to 22 --force: exit 0");
	tap_ok(strstr(out, "removed 2 records with seq <= 22: 0 delivered") &&
	       strstr(out, "2 pending (counted as dropped, reason purged)"),
	       "... removes pending 20 and 22: %s", line1(out));
	tap_is_int(stat_num(spool, "purged"), 4, "stat: purged drops 2 -> 4");
	tap_is_int(stat_num(spool, "first_pending_seq"), 23, "the oldest pending is now 23");

	/* --until: records captured before record 24 (23 only) */
	if (sc(0, "dump '%s' --from 24", spool) == 0 && (p = strstr(out, "\"time\":\"")))
		snprintf(t24, sizeof t24, "%.27s", p + 8);
	tap_is_int(sc(1, "purge '%s' --until 1d --force", spool), 0, "purge --until 1d: exit 0");
	tap_ok(strstr(out, "removed 0 records") != NULL, "... nothing is a day old");
	tap_is_int(sc(1, "purge '%s' --until %s --force", spool, t24), 0, "purge --until <time of 24>");
	tap_ok(strstr(out, "removed 1 record with seq <= 23") != NULL, "... removes 23 only: %s",
	       line1(out));
	tap_is_int(stat_num(spool, "first_pending_seq"), 24, "24 is left");
	tap_is_int(stat_num(spool, "purged"), 5, "purged drops 5");

	tap_is_int(sc(1, "purge '%s'", spool), 2, "purge without --to or --until: exit 2");
	tap_ok(strstr(out, "--to SEQ or --until TIME") != NULL, "... saying what is missing");
	tap_is_int(sc(1, "purge '%s' --until yesterday", spool), 2, "purge --until yesterday: exit 2");
	tap_ok(strstr(out, "--until") != NULL, "... naming the option: %s", line1(out));
	tap_is_int(sc(1, "purge '%s' --to x", spool), 2, "purge --to x: exit 2");
	tap_is_int(sc(1, "purge '%s/nonexistent' --to 1", tmp), 2, "purge of a missing directory: exit 2");
	tap_is_int(sc(1, "purge --help"), 0, "purge --help: exit 0");

	tap_is_int(sc(1, "dlq purge '%s' --all", spool), 0, "dlq purge --all: exit 0");
	tap_ok(strstr(out, "purged 2 dead letters") != NULL, "... purges 19 and 21");
	tap_is_int(stat_num(spool, "purged"), 7, "purged drops 7");
	tap_is_int(sc(1, "verify '%s'", spool), 0, "verify: clean again, exit 0");
	tap_is_int(sc(1, "verify '%s' --frob", spool), 2, "verify --frob: exit 2");
	/* a directory that is not a spool */
	sh("mkdir -p '%s/notaspool' && touch '%s/notaspool/file'", tmp, tmp);
	tap_is_int(sc(1, "verify '%s/notaspool'", tmp), 2, "verify of a foreign directory: exit 2");
	tap_ok(strstr(out, "not a spool") != NULL, "... saying it is not a spool: %s", line1(out));
	tap_is_int(sc(1, "dlq ls '%s/notaspool'", tmp), 2, "dlq ls of a foreign directory: exit 2");
	tap_is_int(sc(1, "dlq purge '%s/notaspool' --all", tmp), 2,
	           "dlq purge of a foreign directory: exit 2");
	tap_is_int(sc(1, "purge '%s/notaspool' --to 1", tmp), 2, "purge of a foreign directory: exit 2");
	tap_is_int(sc(1, "compact '%s/notaspool' --out '%s/c3'", tmp, tmp), 2,
	           "compact of a foreign directory: exit 2");
	tap_ok(sh("test ! -e '%s/c3'", tmp) == 0,
	       "... creating nothing");
	tap_is_int(sc(1, "verify"), 2, "verify without a directory: exit 2");
	tap_is_int(sc(1, "verify '%s'", log), 2, "verify of a regular file: exit 2");
}

static void test_compact(const char *spool)
{
	char copy[600], dump1[700], dump2[700];
	long long a, b;

	snprintf(copy, sizeof copy, "%s/compacted", tmp);
	tap_is_int(sc(1, "compact '%s' --out '%s'", spool, copy), 0, "compact --out: exit 0");
	tap_ok(strstr(out, "before   data.mdb") && strstr(out, "after    data.mdb"),
	       "compact: prints the sizes before and after");
	a = file_size(spool, "data.mdb");
	b = file_size(copy, "data.mdb");
	tap_ok(b > 0 && b <= a, "the copy is not larger (%lld -> %lld bytes)", a, b);
	tap_is_int(sc(1, "verify '%s'", copy), 0, "the copy verifies clean");
	snprintf(dump1, sizeof dump1, "%s/dump1", tmp);
	snprintf(dump2, sizeof dump2, "%s/dump2", tmp);
	tap_is_int(sh("'%s' dump '%s' > '%s' && '%s' dump '%s' > '%s' && cmp -s '%s' '%s'", cli,
	              spool, dump1, cli, copy, dump2, dump1, dump2), 0,
	           "the copy holds the same events, byte for byte");
	tap_is_int(stat_num(copy, "next_seq"), stat_num(spool, "next_seq"), "... and the same next_seq");
	tap_is_int(sc(1, "compact '%s' --out '%s'", spool, copy), 2,
	           "compact into a non-empty directory: exit 2");
	tap_ok(strstr(out, "not empty") != NULL, "... refusing it: %s", line1(out));
	tap_is_int(sc(1, "compact '%s'", spool), 2, "compact without --out: exit 2");
	tap_is_int(sc(1, "compact '%s' --out '%s'", spool, dump1), 2,
	           "compact --out a regular file: exit 2");
	tap_is_int(sc(1, "compact '%s/nonexistent' --out '%s/c2'", tmp, tmp), 2,
	           "compact of a missing spool: exit 2");
	tap_is_int(sc(1, "compact '%s' --out '%s'", spool, spool), 2, "compact onto itself: exit 2");
	sh("rm -rf '%s'", copy);
}

/* Every subcommand while the daemon captures and delivers. */
static void test_under_load(const char *spool, struct rxp *x)
{
	char log[600], url[64], copy[600];
	const char *fwd[] = { "--spool", spool, "--log-level", "warn", "--forward", url,
	                      "--retain", "1h", "--forward-linger", "20ms",
	                      "--dictionary-samples", "300", NULL };
	struct load l;
	pthread_t th;
	char err[512];
	long long dead = 0, ok_before;
	const char *p;
	agentd d;
	int i, bad = 0;

	memset(&l, 0, sizeof l);
	if (rxp_start(x, py, rxpy, tmp, "rx", NULL) < 0) {
		tap_ok(0, "receiver.py starts");
		return;
	}
	/* 40 of the next events are rejected: dead letters keep coming */
	{
		char ids[8192];
		size_t o = 0;

		for (i = 0; i < 40; i++)
			o += (size_t)snprintf(ids + o, sizeof ids - o, " %s-%d", uuid, 30 + i * 25);
		rxp_control(x, "reject-ids%s with 422", ids);
	}
	snprintf(url, sizeof url, "http://127.0.0.1:%u/", x->port);
	snprintf(log, sizeof log, "%s/agent-load.log", tmp);
	if (agentd_start(&d, exe, log, fwd, 10000, err, sizeof err) < 0) {
		tap_ok(0, "spoolcapd under load starts: %s", err);
		return;
	}
	l.port = d.port;
	if (pthread_create(&th, NULL, load_main, &l) != 0) {
		tap_ok(0, "load thread starts");
		agentd_stop(&d, 10000);
		return;
	}
	ok_before = wait_stat(spool, "dead_letters", 3, 60);
	tap_ok(ok_before == 0, "under load: events are captured, delivered and dead-lettered");

	for (int round = 0; round < 2; round++) {
		unsigned s1 = 0, s2 = 0;

		bad += sc(1, "dlq ls '%s'", spool) != 0;
		bad += sc(0, "dlq ls --json '%s' --limit 2", spool) != 0;
		if ((p = strstr(out, "{\"seq\":")))
			s1 = (unsigned)strtoul(p + 7, NULL, 10);
		if (p && (p = strstr(p + 1, "{\"seq\":")))
			s2 = (unsigned)strtoul(p + 7, NULL, 10);
		if (s1 && s2) {
			bad += sc(1, "dlq show '%s' %u", spool, s1) != 0;
			bad += sc(1, "dlq requeue '%s' %u", spool, s1) != 0;
			bad += sc(1, "dlq purge '%s' %u", spool, s2) != 0;
		} else {
			bad++;
			tap_diag("no two dead letters to work on: %s", out);
		}
		if (sc(1, "verify '%s'", spool) != 0) {
			bad++;
			tap_diag("verify under load: %s", out);
		}
		bad += sc(0, "verify --json '%s'", spool) != 0 || jnum(out, "checked") <= 0;
		bad += sc(1, "verify --quarantine '%s'", spool) != 0;
		snprintf(copy, sizeof copy, "%s/load-copy-%d", tmp, round);
		if (sc(1, "compact '%s' --out '%s'", spool, copy) != 0 || !strstr(out, "is running on")) {
			bad++;
			tap_diag("compact under load: %s", out);
		}
		bad += sc(1, "purge '%s' --to %lld", spool, stat_num(spool, "cursor") / 2) != 0;
		bad += sc(1, "purge '%s' --until 1h --force --dry-run", spool) != 0;
		if (sc(1, "probe 127.0.0.1:%u", d.port) != 0 || !strstr(out, "set-var txn.spooled = true")) {
			bad++;
			tap_diag("probe under load: %s", out);
		}
		/* the read-side subcommands too (their own tests check output) */
		{
			/* SUBCOMMAND [options]: DIR is inserted after the subcommand */
			static const char *const reads[][2] = {
				{ "stat", "" }, { "stat", "--json" }, { "ls", "--limit 50" },
				{ "ls", "--json --since 10m" }, { "dump", "--limit 300" },
				{ "dump", "--state all --message cap-req --limit 50" },
			};
			for (size_t k = 0; k < sizeof reads / sizeof reads[0]; k++) {
				if (sc(1, "%s '%s' %s", reads[k][0], spool, reads[k][1]) != 0) {
					bad++;
					tap_diag("%s %s under load: %.300s", reads[k][0], reads[k][1], out);
				}
			}
			if (sc(1, "export '%s' --out '%s/load-%d.har' --limit 200", spool, tmp,
			       round) != 0 ||
			    sc(1, "export '%s' --out '%s/load-%d.ndjson.zst' --limit 200", spool,
			       tmp, round) != 0) {
				bad++;
				tap_diag("export under load: %.300s", out);
			}
		}
	}
	tap_is_int(bad, 0, "every subcommand exits 0 while the daemon works (twice over)");
	tap_ok(l.acked > 0 && !l.err, "the load kept going: %u NOTIFYs ACKed%s%s", l.acked,
	       l.err ? ", then: " : "", l.err ? l.why : "");
	atomic_store(&l.stop, 1);
	pthread_join(th, NULL);
	tap_ok(!l.err, "no NOTIFY failed (%s)", l.err ? l.why : "none");
	tap_is_int(l.not_spooled, 0, "every ACK said spooled = true");
	tap_ok(agentd_alive(&d), "the daemon is still running");
	dead = stat_num(spool, "dead_letters");
	tap_is_int(agentd_stop(&d, 10000), 0, "spoolcapd exits 0");
	rxp_stop(x);
	tap_is_int(sc(1, "verify '%s'", spool), 0, "verify after the load: clean");
	tap_ok(dead >= 0, "%lld dead letters at the end", dead);
	tap_is_int(sc(1, "verify '%s/load-copy-1'", tmp), 0, "the copy taken under load verifies clean");
}

int main(int argc, char **argv)
{
	const char *top = getenv("top_srcdir"), *pe = getenv("PYTHON3");
	char spool[600];
	struct rxp x;

	(void)argc;
	signal(SIGPIPE, SIG_IGN);
	snprintf(py, sizeof py, "%s", pe && *pe ? pe : "/usr/bin/python3");
	if (top && *top)
		snprintf(rxpy, sizeof rxpy, "%s/tests/receiver.py", top);
	else
		snprintf(rxpy, sizeof rxpy, "%.*s/receiver.py",
		         (int)(strrchr(argv[0], '/') ? strrchr(argv[0], '/') - argv[0] : 1),
		         strrchr(argv[0], '/') ? argv[0] : ".");
	if (access(py, X_OK) != 0 || access(rxpy, R_OK) != 0) {
		printf("1..0 # SKIP needs python3 (%s) and tests/receiver.py (%s)\n", py, rxpy);
		return 0;
	}
	if (!mkdtemp(tmp)) {
		printf("1..0 # SKIP cannot create a temporary directory\n");
		return 0;
	}
	agentd_exe(argv[0], exe, sizeof exe);
	agentd_cli_exe(exe, cli, sizeof cli);
	snprintf(spool, sizeof spool, "%s/spool", tmp);
	memset(&x, 0, sizeof x);

	test_probe();
	if (test_dlq(spool, &x) == 0) {
		test_verify_purge(spool);
		test_compact(spool);
		test_under_load(spool, &x);
	}
	rxp_stop(&x);
	agentd_cleanup_dir(tmp, tap_failed);
	return tap_done(0);
}
