/* t-cli-replay.c -- `spoolcap replay` end to end, against spools the real
 * spoolcapd wrote from captures shaped like the recipe's (cap-req with
 * method, path, query, header block and body; cap-res with status, paired
 * by uid).
 *
 *   replay --to: tests/receiver.py gets every selected event (and the bytes
 *   `spoolcap dump` gives), data.mdb is byte-identical afterwards, filters
 *   select the right seqs, scripted 503s and rejected ids give the right
 *   counts and exit status, --max-retry-time gives up; --drain moves the
 *   cursor and dead-letters, is refused while spoolcapd runs, keeps
 *   spoolcapd from starting while it runs, and stops cleanly on SIGINT.
 *
 *   replay --requests: a recording backend (python3, written here) gets
 *   each captured request with method, request-target, headers and body
 *   identical to the capture except the documented changes (hop-by-hop
 *   headers dropped, Host replaced, Content-Length recomputed); the status
 *   report and --diff-out match what the backend answered differently.
 *
 * No timed assertions: every wait has a generous bound and only guards
 * against hanging. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agentd.h"
#include "rxproc.h"
#include "spop_client.h"
#include "tap.h"

#define N        60             /* transactions captured */
#define NOREPLY  13             /* the transaction whose response was not captured */
#define PARTIAL  10             /* its body was captured short */
#define CHUNKED  20             /* sent with Transfer-Encoding: chunked */
#define MAXSEQ   (2 * N)

static char exe[512], cli[512], py[512], rxpy[600], tmp[] = "/tmp/t-cli-replay-XXXXXX";
static uint64_t req_seq[N + 1], res_seq[N + 1];    /* seq of each transaction's records */
static int is_req[MAXSEQ + 1], meth_of_seq[MAXSEQ + 1];
static uint64_t nrecords;

/* Runs a shell command; out gets stdout+stderr as the command redirects
 * them (NUL-terminated, cut to cap). Returns the exit status, or -1. */
static int run(const char *cmd, char *out, size_t cap)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0, r;
	char sink[4096];
	int st;

	if (!p)
		return -1;
	if (out && cap) {
		while (n < cap - 1 && (r = fread(out + n, 1, cap - 1 - n, p)) > 0)
			n += r;
		out[n] = 0;
	}
	while (fread(sink, 1, sizeof sink, p) > 0)
		;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The number after "key": in a JSON summary, or -1. */
static long long jnum(const char *json, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof k, "\"%s\":", key);
	p = strstr(json, k);
	return p ? strtoll(p + strlen(k), NULL, 10) : -1;
}

/* ------------------------------------------------- the capture */

static const char *const methods[5] = { "POST", "GET", "PUT", "HEAD", "DELETE" };

static int method_of(unsigned k) { return (int)(k % 5); }
static int has_body(unsigned k) { return method_of(k) == 0 || method_of(k) == 2; }

static void path_of(unsigned k, char *out, size_t len)
{
	if (k % 7 == 3)
		snprintf(out, len, "/missing/%u", k);
	else if (k % 11 == 5)
		snprintf(out, len, "/fail/%u", k);
	else if (k % 5 == 1)
		snprintf(out, len, "/gone/%u", k);
	else
		snprintf(out, len, "/api/items/%u", k);
}

static int has_query(unsigned k) { return k % 3 == 0; }

static void query_of(unsigned k, char *out, size_t len)
{
	snprintf(out, len, "a=1&b=%%20x&k=%u", k);
}

/* What the capture says the server answered, and what the test backend
 * answers (its rules are in backend_py). */
static int captured_status(unsigned k)
{
	char p[64];

	path_of(k, p, sizeof p);
	if (!strncmp(p, "/gone/", 6))
		return 404;
	return method_of(k) == 0 ? 201 : 200;
}

static int backend_status(unsigned k)
{
	char p[64];

	path_of(k, p, sizeof p);
	if (!strncmp(p, "/missing/", 9) || !strncmp(p, "/gone/", 6))
		return 404;
	if (!strncmp(p, "/fail/", 6))
		return 500;
	return method_of(k) == 0 ? 201 : 200;
}

static size_t body_of(unsigned k, uint8_t *out)
{
	size_t n = 40 + k * 3, i;

	for (i = 0; i < n; i++)
		out[i] = (uint8_t)(i * 7 + k);      /* NULs and non-UTF-8 bytes included */
	return n;
}

/* One header: name and value bytes. */
struct hdr { const char *n; char v[64]; size_t vl; };

/* The captured request headers of transaction k, in order. */
static unsigned headers_of(unsigned k, struct hdr *h)
{
	unsigned n = 0;

#define H(name, val) do { h[n].n = name; h[n].vl = strlen(val); memcpy(h[n].v, val, h[n].vl); n++; } while (0)
	H("host", "shop.example");
	H("user-agent", "spoolcap-test/1");
	if (k % 2 == 0)
		H("accept", "*/*");
	H("connection", "keep-alive, x-hop");
	H("x-hop", "named by connection");
	H("keep-alive", "timeout=5");
	H("te", "trailers");
	H("proxy-authorization", "Basic Zm9vOmJhcg==");
	H("x-dup", "one");
	H("x-dup", "two");
	H("x-empty", "");
	H("cookie", "s=abc; t=1");
	H("x-bin", "caf\xc3\xa9 \xff!");
	if (has_body(k)) {
		char len[24];
		uint8_t b[512];

		H("content-type", "application/octet-stream");
		if (k == CHUNKED) {
			H("transfer-encoding", "chunked");
		} else {
			snprintf(len, sizeof len, "%zu", body_of(k, b) + (k == PARTIAL ? 100 : 0));
			H("content-length", len);
		}
	}
	{
		char s[24];

		snprintf(s, sizeof s, "%u", k);
		H("x-seq", s);
	}
#undef H
	return n;
}

static size_t hdrs_bin(unsigned k, uint8_t *out)
{
	struct hdr h[24];
	unsigned n = headers_of(k, h), i;
	size_t len = 0;

	for (i = 0; i < n; i++) {
		out[len++] = (uint8_t)strlen(h[i].n);
		memcpy(out + len, h[i].n, strlen(h[i].n));
		len += strlen(h[i].n);
		out[len++] = (uint8_t)h[i].vl;      /* < 240: a one-byte varint */
		memcpy(out + len, h[i].v, h[i].vl);
		len += h[i].vl;
	}
	out[len++] = 0;
	out[len++] = 0;
	return len;
}

static int send_one(spc_conn *c, uint64_t sid, const spc_msg *m)
{
	static uint8_t buf[16384];
	spc_frame fr;
	size_t n = spc_build_notify(buf, sizeof buf, sid, 1, m, 1);

	if (n == 0 || spc_send(c, buf, n, 2000) < 0 || spc_read_frame(c, &fr, 5000) != SPC_FRAME ||
	    fr.f.type != SPOP_FRAME_ACK)
		return -1;
	nrecords++;
	return 0;
}

static int send_req(spc_conn *c, unsigned k)
{
	uint8_t hb[2048], body[512], ip[4] = { 192, 0, 2, 7 };
	char uid[32], path[64], query[64];
	size_t bl = has_body(k) ? body_of(k, body) : 0;
	spc_arg a[12];
	unsigned n = 0;
	spc_msg m = { "cap-req", a, 0 };

	snprintf(uid, sizeof uid, "uid-%04u", k);
	path_of(k, path, sizeof path);
	query_of(k, query, sizeof query);
	a[n++] = (spc_arg){ "uid", spc_cstr(uid) };
	a[n++] = (spc_arg){ "t", spc_int(SPOP_T_INT64, 1764000000000 + k) };
	a[n++] = (spc_arg){ "meth", spc_cstr(methods[method_of(k)]) };
	a[n++] = (spc_arg){ "path", spc_cstr(path) };
	a[n++] = (spc_arg){ "query", has_query(k) ? spc_cstr(query) : spc_null() };
	a[n++] = (spc_arg){ "ver", spc_cstr("1.1") };
	a[n++] = (spc_arg){ "src", spc_ip(SPOP_T_IPV4, ip) };
	a[n++] = (spc_arg){ "hdrs", spc_str(SPOP_T_BINARY, hb, hdrs_bin(k, hb)) };
	a[n++] = (spc_arg){ "blen", spc_int(SPOP_T_INT64, (int64_t)bl) };
	a[n++] = (spc_arg){ "bsize", spc_int(SPOP_T_INT64, (int64_t)bl + (k == PARTIAL ? 100 : 0)) };
	a[n++] = (spc_arg){ "body", spc_str(SPOP_T_BINARY, body, bl) };
	m.nargs = n;
	if (send_one(c, 1000 + k, &m) < 0)
		return -1;
	req_seq[k] = nrecords;
	is_req[nrecords] = 1;
	meth_of_seq[nrecords] = method_of(k);
	return 0;
}

static int send_res(spc_conn *c, unsigned k)
{
	static const uint8_t hb[] = { 12, 'c', 'o', 'n', 't', 'e', 'n', 't', '-', 't', 'y', 'p', 'e',
	                              10, 't', 'e', 'x', 't', '/', 'p', 'l', 'a', 'i', 'n', 0, 0 };
	char uid[32];
	spc_arg a[6];
	spc_msg m = { "cap-res", a, 6 };

	snprintf(uid, sizeof uid, "uid-%04u", k);
	a[0] = (spc_arg){ "uid", spc_cstr(uid) };
	a[1] = (spc_arg){ "t", spc_int(SPOP_T_INT64, 1764000000000 + k) };
	a[2] = (spc_arg){ "status", spc_int(SPOP_T_INT64, captured_status(k)) };
	a[3] = (spc_arg){ "ver", spc_cstr("1.1") };
	a[4] = (spc_arg){ "hdrs", spc_str(SPOP_T_BINARY, hb, sizeof hb) };
	a[5] = (spc_arg){ "body", spc_cstr("ok") };
	if (send_one(c, 5000 + k, &m) < 0)
		return -1;
	res_seq[k] = nrecords;
	return 0;
}

/* Requests and responses interleaved as traffic makes them: req k, then
 * the response of k - 1 (none for NOREPLY). Seqs are assigned in this
 * order (one connection, each NOTIFY ACKed before the next). */
static int feed(unsigned port)
{
	uint8_t hello[256];
	spc_hello_opts ho = spc_hello_default(16380, "pipelining");
	spc_conn c;
	spc_frame fr;
	unsigned k;
	size_t len;
	int rc = 0;

	nrecords = 0;
	memset(is_req, 0, sizeof is_req);
	if (spc_connect_tcp(&c, "127.0.0.1", port, 2000) < 0)
		return -1;
	len = spc_build_hello(hello, sizeof hello, &ho);
	if (spc_send(&c, hello, len, 2000) < 0 || spc_read_frame(&c, &fr, 5000) != SPC_FRAME)
		rc = -1;
	for (k = 1; rc == 0 && k <= N; k++) {
		rc = send_req(&c, k);
		if (rc == 0 && k > 1 && k - 1 != NOREPLY)
			rc = send_res(&c, k - 1);
	}
	if (rc == 0)
		rc = send_res(&c, N);
	spc_close(&c);
	return rc;
}

static int make_spool(const char *name, char *dir, size_t dirlen)
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
	ok = feed(d.port) == 0;
	if (agentd_stop(&d, 10000) != 0)
		ok = 0;
	if (!ok)
		agentd_dump_log(&d, 20);
	return ok ? 0 : -1;
}

/* ------------------------------------------------- helper servers */

/* Records each request as received (method, target, headers, body) and
 * answers by path. It takes receiver.py's arguments (rxp_start passes
 * them) and has no control commands: both port files name its one port. */
static const char backend_py[] =
	"import base64, http.server, json, os, socket, sys, threading\n"
	"lock = threading.Lock()\n"
	"a = dict(zip(sys.argv[1::2], sys.argv[2::2]))\n"
	"out = open(a['--record'], 'a')\n"
	"class H(http.server.BaseHTTPRequestHandler):\n"
	"    protocol_version = 'HTTP/1.1'\n"
	"    def setup(self):\n"
	"        super().setup()\n"
	"        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n"
	"    def any(self):\n"
	"        n = int(self.headers.get('Content-Length') or 0)\n"
	"        body = self.rfile.read(n) if n else b''\n"
	"        rec = {'method': self.command, 'target': self.path,\n"
	"               'headers': [[k, v] for k, v in self.headers.items()],\n"
	"               'body': base64.b64encode(body).decode()}\n"
	"        with lock:\n"
	"            out.write(json.dumps(rec) + '\\n')\n"
	"            out.flush()\n"
	"        p = self.path\n"
	"        if p.startswith('/missing/') or p.startswith('/gone/'):\n"
	"            st = 404\n"
	"        elif p.startswith('/fail/'):\n"
	"            st = 500\n"
	"        else:\n"
	"            st = 201 if self.command == 'POST' else 200\n"
	"        self.send_response(st)\n"
	"        self.send_header('Content-Length', '2')\n"
	"        self.end_headers()\n"
	"        if self.command != 'HEAD':\n"
	"            self.wfile.write(b'ok')\n"
	"    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = any\n"
	"    def log_message(self, *a):\n"
	"        pass\n"
	"s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
	"for pf in (a['--port-file'], a['--control-port-file']):\n"
	"    open(pf + '.tmp', 'w').write(str(s.server_address[1]))\n"
	"    os.rename(pf + '.tmp', pf)\n"
	"s.serve_forever()\n";

/* Compares what the backend received with the capture as stored (the
 * requests of `spoolcap dump`: what spoolcapd kept, after its redaction
 * rules), applying the documented changes: hop-by-hop headers, Expect and
 * Content-Length dropped (Content-Length recomputed), Host replaced unless
 * --keep-host. Bytes: the dump's strings are UTF-8, {"base64"} otherwise;
 * http.server decodes what it receives as latin-1. Prints TAP diagnostics,
 * exits 1 on any difference. argv: dump, received, keep-host (0/1),
 * authority, method filter ("" = all). */
static const char check_py[] =
	"import base64, json, sys\n"
	"def raw(v):\n"
	"    if v is None: return b''\n"
	"    if isinstance(v, dict): return base64.b64decode(v['base64'])\n"
	"    if isinstance(v, str): return v.encode('utf-8')\n"
	"    return str(v).encode()\n"
	"HOP = {b'connection', b'keep-alive', b'transfer-encoding', b'te', b'trailer',\n"
	"       b'upgrade', b'expect'}\n"
	"keep, auth, only = sys.argv[3] == '1', sys.argv[4], sys.argv[5]\n"
	"exp = {}\n"
	"for l in open(sys.argv[1]):\n"
	"    e = json.loads(l); a = e['args']\n"
	"    if 'meth' not in a or (only and a['meth'] != only): continue\n"
	"    target = raw(a['path']) + (b'?' + raw(a['query']) if a.get('query') else b'')\n"
	"    hs = [(raw(n), raw(v)) for n, v in a.get('hdrs') or []]\n"
	"    conn = [t.strip().lower() for n, v in hs if n.lower() == b'connection' for t in v.split(b',')]\n"
	"    kept = [[n, v] for n, v in hs if n.lower() not in HOP and n.lower() not in conn\n"
	"            and not n.lower().startswith(b'proxy-') and n.lower() not in (b'host', b'content-length')]\n"
	"    names = [n.lower() for n, v in hs]\n"
	"    body = raw(a.get('body'))\n"
	"    clen = bool(body) or b'content-length' in names or b'transfer-encoding' in names \\\n"
	"        or (a.get('bsize') or 0) > 0\n"
	"    host = [v for n, v in hs if n.lower() == b'host'][:1]\n"
	"    exp[target] = dict(method=a['meth'], headers=kept, body=body, clen=clen, host=host)\n"
	"got = [json.loads(l) for l in open(sys.argv[2])]\n"
	"bad = 0\n"
	"def fail(*a):\n"
	"    global bad\n"
	"    bad += 1\n"
	"    if bad < 10: print('#', *a)\n"
	"for g in got:\n"
	"    t = g['target'].encode('latin-1')\n"
	"    e = exp.pop(t, None)\n"
	"    if e is None:\n"
	"        fail('unexpected or repeated request', g['method'], t); continue\n"
	"    if g['method'] != e['method']: fail(t, 'method', g['method'])\n"
	"    body = base64.b64decode(g['body'])\n"
	"    if body != e['body']: fail(t, 'body differs', len(body), len(e['body']))\n"
	"    hs = [(k.encode('latin-1'), v.encode('latin-1')) for k, v in g['headers']]\n"
	"    host = [v for k, v in hs if k.lower() == b'host']\n"
	"    if host != (e['host'] if keep else [auth.encode()]): fail(t, 'host', host)\n"
	"    cl = [v for k, v in hs if k.lower() == b'content-length']\n"
	"    want = [str(len(body)).encode()] if e['clen'] else []\n"
	"    if cl != want: fail(t, 'content-length', cl, 'want', want)\n"
	"    rest = [[k, v] for k, v in hs if k.lower() not in (b'host', b'content-length')]\n"
	"    if rest != e['headers']: fail(t, 'headers', rest, 'want', e['headers'])\n"
	"for t in exp: fail('not received', t)\n"
	"print('# checked', len(got), 'requests,', bad, 'problems')\n"
	"sys.exit(1 if bad else 0)\n";

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0)
		return -1;
	return fclose(f);
}

/* receiver.py (kind 0) or the backend (kind 1). */
static int srv_start(struct rxp *x, const char *name, int kind, const char *const *extra)
{
	char script[700];

	snprintf(script, sizeof script, "%s/backend.py", tmp);
	return rxp_start(x, py, kind == 1 ? script : rxpy, tmp, name, extra);
}

/* ok[seq]: 2xx lines per seq of a receiver record file; returns the lines. */
static int tally(const struct rxp *x, const char *uuid, unsigned *ok)
{
	FILE *f = fopen(x->rec, "r");
	char line[512], id[200], key[200], nd[8];
	size_t ul = strlen(uuid);
	int status, lines = 0;

	memset(ok, 0, sizeof(unsigned) * (MAXSEQ + 1));
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long seq;

		if (sscanf(line, "%d %199s %199s %7s", &status, id, key, nd) != 4 ||
		    strncmp(id, uuid, ul) != 0 || id[ul] != '-')
			continue;
		seq = strtoul(id + ul + 1, NULL, 10);
		if (seq >= 1 && seq <= MAXSEQ && status >= 200 && status < 300)
			ok[seq]++;
		lines++;
	}
	fclose(f);
	return lines;
}

/* Seqs delivered (once each) == exactly those want() says. */
static int delivered_exactly(const struct rxp *x, const char *uuid, int (*want)(uint64_t),
                             unsigned *got)
{
	unsigned ok[MAXSEQ + 1];
	uint64_t s;
	int good = 1;

	tally(x, uuid, ok);
	*got = 0;
	for (s = 1; s <= nrecords; s++) {
		*got += ok[s] > 0;
		if ((want(s) ? 1u : 0u) != ok[s]) {
			if (good)
				tap_diag("  seq %" PRIu64 " delivered %u times", s, ok[s]);
			good = 0;
		}
	}
	return good;
}

static int want_all(uint64_t s) { (void)s; return 1; }
static int want_none(uint64_t s) { (void)s; return 0; }
static int want_req_10_40(uint64_t s) { return s >= 10 && s <= 40 && is_req[s]; }
static int want_to_30(uint64_t s) { return s <= 30; }
static int want_3_posts(uint64_t s)
{
	unsigned n = 0;
	uint64_t i;

	for (i = 1; i <= s; i++)
		n += is_req[i] && meth_of_seq[i] == 0;
	return is_req[s] && meth_of_seq[s] == 0 && n <= 3;
}
static uint64_t poison[2];
static int want_not_poison(uint64_t s) { return s != poison[0] && s != poison[1]; }

static int files_equal(const char *a, const char *b)
{
	char c[1500];

	snprintf(c, sizeof c, "cmp -s '%s' '%s'", a, b);
	return run(c, NULL, 0) == 0;
}

static void spool_uuid_of(const char *dir, char *uuid, size_t len)
{
	char c[900], out[8192];
	const char *u;

	snprintf(c, sizeof c, "'%s' stat --json '%s'", cli, dir);
	run(c, out, sizeof out);
	u = strstr(out, "\"uuid\":\"");
	snprintf(uuid, len, "%.36s", u ? u + 8 : "");
}

/* ------------------------------------------------- replay --to */

static void copy_tests(const char *dir, const char *uuid)
{
	char cmd[2400], out[16384], mdb[700], before[700];
	struct rxp x;
	unsigned got;
	struct {
		const char *name, *args;
		int (*want)(uint64_t);
	} sel[] = {
		{ "--from 10 --to 40 --message cap-req", "--from 10 --to 40 --message cap-req",
		  want_req_10_40 },
		{ "--to 30 (a number: the filter)", "--to 30", want_to_30 },
		{ "--match meth=POST --limit 3", "--match meth=POST --limit 3", want_3_posts },
		{ "--since 1h", "--since 1h", want_all },
		{ "--until 1h", "--until 1h", want_none },
		{ "--state delivered", "--state delivered", want_none },
	};
	size_t i;
	int rc;

	snprintf(mdb, sizeof mdb, "%s/data.mdb", dir);
	snprintf(before, sizeof before, "%s/data.mdb.before", tmp);
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", mdb, before);
	tap_is_int(run(cmd, NULL, 0), 0, "copy: data.mdb saved for comparison");

	/* everything, bytes as spoolcap dump gives them */
	if (srv_start(&x, "rx-all", 0, NULL) == 0) {
		snprintf(cmd, sizeof cmd, "'%s' replay '%s' --to http://127.0.0.1:%u/events "
		         "--max-inflight 1 --json --no-progress", cli, dir, x.port);
		rc = run(cmd, out, sizeof out);
		tap_is_int(rc, 0, "copy all: exit 0");
		tap_ok(jnum(out, "sent") == (long long)nrecords && jnum(out, "rejected") == 0 &&
		       strstr(out, "\"mode\":\"copy\"") && strstr(out, "\"result\":\"done\""),
		       "copy all: the summary says %" PRIu64 " sent: %.200s", nrecords, out);
		rxp_stop(&x);
		rc = delivered_exactly(&x, uuid, want_all, &got);
		tap_ok(rc,
		       "copy all: every seq delivered exactly once (%u)", got);
		snprintf(cmd, sizeof cmd, "'%s' dump '%s' > '%s/dump.all'", cli, dir, tmp);
		run(cmd, NULL, 0);
		snprintf(cmd, sizeof cmd, "%s/dump.all", tmp);
		tap_ok(files_equal(cmd, x.events), "copy all: the events received are the bytes "
		       "of spoolcap dump");
		tap_ok(files_equal(mdb, before), "copy all: data.mdb is byte-identical afterwards");
	} else {
		tap_ok(0, "copy all: receiver");
	}

	/* filters */
	for (i = 0; i < sizeof sel / sizeof sel[0]; i++) {
		char name[32];

		snprintf(name, sizeof name, "rx-sel%zu", i);
		if (srv_start(&x, name, 0, NULL) != 0) {
			tap_ok(0, "%s: receiver", sel[i].name);
			continue;
		}
		snprintf(cmd, sizeof cmd, "'%s' replay '%s' --to http://127.0.0.1:%u/e %s --json "
		         "--no-progress", cli, dir, x.port, sel[i].args);
		rc = run(cmd, out, sizeof out);
		rxp_stop(&x);
		tap_is_int(rc, 0, "%s: exit 0", sel[i].name);
		rc = delivered_exactly(&x, uuid, sel[i].want, &got);
		tap_ok(rc, "%s: exactly the selected "
		       "seqs delivered (%u; summary sent %lld)", sel[i].name, got, jnum(out, "sent"));
		tap_is_int(jnum(out, "sent"), got, "%s: the summary counts them", sel[i].name);
	}

	/* 503 three times, two ids rejected with 400: copy mode reports them */
	poison[0] = req_seq[5];
	poison[1] = res_seq[9];
	if (srv_start(&x, "rx-fail", 0, NULL) == 0) {
		char c2[600];

		snprintf(c2, sizeof c2, "status 503 for 3\nreject-ids %s-%" PRIu64 " %s-%" PRIu64
		         " with 400", uuid, poison[0], uuid, poison[1]);
		tap_is_int(rxp_control(&x, "%s", c2), 0, "failures: receiver scripted");
		snprintf(cmd, sizeof cmd, "'%s' replay '%s' --to http://127.0.0.1:%u/e --json "
		         "--no-progress --batch-events 20 --backoff-base 50ms --backoff-cap 200ms "
		         "2>'%s/fail.err'", cli, dir, x.port, tmp);
		rc = run(cmd, out, sizeof out);
		rxp_stop(&x);
		tap_is_int(rc, 1, "failures: exit 1 (some events rejected)");
		tap_ok(jnum(out, "rejected") == 2 && jnum(out, "sent") == (long long)nrecords - 2,
		       "failures: 2 rejected, the rest sent: %.200s", out);
		tap_ok(jnum(out, "retries") >= 3, "failures: the 503s were retried (%lld retries)",
		       jnum(out, "retries"));
		rc = delivered_exactly(&x, uuid, want_not_poison, &got);
		tap_ok(rc,
		       "failures: every other seq delivered once (%u)", got);
		snprintf(cmd, sizeof cmd, "grep -c 'refused by the processor' '%s/fail.err'", tmp);
		run(cmd, out, sizeof out);
		tap_is_int(atoi(out), 2, "failures: each rejected seq is reported on stderr");
		tap_ok(files_equal(mdb, before), "failures: no dead letter, data.mdb unchanged");
	} else {
		tap_ok(0, "failures: receiver");
	}

	/* an endpoint that never recovers: --max-retry-time gives up */
	if (srv_start(&x, "rx-down", 0, NULL) == 0) {
		double t0 = rxp_now();

		tap_is_int(rxp_control(&x, "status 503"), 0, "give up: receiver scripted");
		snprintf(cmd, sizeof cmd, "'%s' replay '%s' --to http://127.0.0.1:%u/e --json "
		         "--no-progress -q --max-retry-time 1s --backoff-base 50ms "
		         "--backoff-cap 200ms 2>&1", cli, dir, x.port);
		rc = run(cmd, out, sizeof out);
		rxp_stop(&x);
		tap_is_int(rc, 1, "give up: exit 1 (%.1f s)", rxp_now() - t0);
		tap_ok(strstr(out, "giving up") && strstr(out, "\"result\":\"gave up\"") &&
		       jnum(out, "sent") == 0, "give up: says so: %.*s", (int)strcspn(out, "\n"),
		       out);
	} else {
		tap_ok(0, "give up: receiver");
	}

	/* usage and environment errors: exit 2 with a message naming the cause */
	{
		struct { const char *args, *says, *what; } bad[] = {
			{ "", "--to URL", "no --to URL" },
			{ "--to http://127.0.0.1:1/ --batch-events x", "--batch-events", "a bad value" },
			{ "--to http://127.0.0.1:1/ --compression lz4", "--compression", "an unknown codec" },
			{ "--to ftp://x/", "--to", "a URL that is not http(s)" },
			{ "--to http://127.0.0.1:1/ --drain --from 3", "no filters", "--drain with a filter" },
			{ "--to http://127.0.0.1:1/ --state dead", "requeue", "--state dead" },
			{ "--to http://127.0.0.1:1/ --client-key /x", "client-key", "a key without cert" },
			{ "--to http://127.0.0.1:1/ --max-retry-time soon", "--max-retry-time", "a bad duration" },
		};

		for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			snprintf(cmd, sizeof cmd, "'%s' replay '%s' %s 2>&1", cli, dir, bad[i].args);
			rc = run(cmd, out, sizeof out);
			tap_ok(rc == 2 && strstr(out, bad[i].says), "usage: %s exits 2 naming it "
			       "(%d: %.*s)", bad[i].what, rc, (int)strcspn(out, "\n"), out);
		}
		snprintf(cmd, sizeof cmd, "'%s' replay '%s/nope' --to http://127.0.0.1:1/ 2>&1",
		         cli, tmp);
		rc = run(cmd, out, sizeof out);
		tap_ok(rc == 2 && strstr(out, "nope"), "usage: a missing directory exits 2 (%.*s)",
		       (int)strcspn(out, "\n"), out);
		snprintf(cmd, sizeof cmd, "'%s' replay --help", cli);
		rc = run(cmd, out, sizeof out);
		tap_ok(rc == 0 && strstr(out, "--drain") && strstr(out, "--max-retry-time") &&
		       strstr(out, "--header-file") && strstr(out, "--since"),
		       "replay --help lists the options and the filters");
	}
	tap_ok(files_equal(mdb, before), "copy: data.mdb is still byte-identical after all runs");

	/* every option --help names is in spoolcap(1) */
	{
		const char *top = getenv("top_srcdir");

		snprintf(cmd, sizeof cmd, "( '%s' replay --help; '%s' replay --requests --help ) | "
		         "'%s' -c 'import re, sys\n"
		         "man = open(sys.argv[1]).read().replace(\"\\\\-\", \"-\")\n"
		         "opts = set(re.findall(r\"--[a-z][a-z0-9-]*\", sys.stdin.read()))\n"
		         "miss = sorted(o for o in opts if o not in man)\n"
		         "print(len(opts), \"options;\", \"missing:\", \" \".join(miss))\n"
		         "sys.exit(1 if miss or len(opts) < 30 else 0)' '%s/doc/spoolcap.1' 2>&1",
		         cli, cli, py, top && *top ? top : "..");
		rc = run(cmd, out, sizeof out);
		tap_ok(rc == 0, "every option of replay --help is in spoolcap(1): %.*s",
		       (int)strcspn(out, "\n"), out);
	}
}

/* ------------------------------------------------- replay --to --drain */

static int lock_holder(const char *dir)
{
	char p[700];
	FILE *f;
	int pid = 0;

	snprintf(p, sizeof p, "%s/agent.lock", dir);
	f = fopen(p, "r");
	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return pid;
}

static void drain_tests(const char *dir, const char *uuid)
{
	char cmd[2400], out[16384], log[700], err[512], outp[700];
	const char *args[] = { "--spool", dir, "--log-level", "warn", NULL };
	struct rxp x;
	agentd d;
	unsigned got;
	int rc;

	/* (1) a drain that cannot deliver holds the agent lock: spoolcapd
	 * does not start meanwhile; SIGINT ends the drain with exit 1 */
	if (srv_start(&x, "rx-hold", 0, NULL) == 0) {
		pid_t p;
		double t0;
		int st = 0, held = 0;

		rxp_control(&x, "status 503");
		snprintf(outp, sizeof outp, "%s/hold.out", tmp);
		p = fork();
		if (p == 0) {
			char url[64];

			snprintf(url, sizeof url, "http://127.0.0.1:%u/e", x.port);
			if (!freopen(outp, "w", stdout) || !freopen("/dev/null", "w", stderr))
				_exit(126);
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			execl(cli, cli, "replay", dir, "--to", url, "--drain", "--backoff-base", "50ms",
			      "--backoff-cap", "200ms", "--no-progress", (char *)NULL);
			_exit(127);
		}
		for (t0 = rxp_now(); p > 0 && rxp_now() - t0 < 15 && !held; usleep(20000))
			held = lock_holder(dir) == p;
		tap_ok(held, "drain: holds DIR/agent.lock (pid %d)", (int)p);
		snprintf(log, sizeof log, "%s/hold.agent.log", tmp);
		rc = agentd_start(&d, exe, log, args, 3000, err, sizeof err);
		tap_ok(rc < 0, "drain: spoolcapd refuses to start on the spool meanwhile");
		if (rc == 0)
			agentd_stop(&d, 5000);
		snprintf(cmd, sizeof cmd, "grep -c 'in use by another agent' '%s'", log);
		run(cmd, out, sizeof out);
		tap_ok(atoi(out) >= 1, "drain: ... saying the spool is in use");
		if (p > 0)
			kill(p, SIGINT);
		for (t0 = rxp_now(); p > 0 && rxp_now() - t0 < 15; usleep(20000))
			if (waitpid(p, &st, WNOHANG) == p)
				break;
		tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 1, "drain: SIGINT ends it with exit 1");
		snprintf(cmd, sizeof cmd, "cat '%s'", outp);
		run(cmd, out, sizeof out);
		tap_ok(strstr(out, "interrupted") != NULL, "drain: its summary says interrupted: %.200s",
		       out);
		rxp_stop(&x);
	} else {
		tap_ok(0, "drain hold: receiver");
	}
	snprintf(cmd, sizeof cmd, "'%s' stat --json '%s'", cli, dir);
	run(cmd, out, sizeof out);
	tap_ok(jnum(out, "records") == (long long)nrecords && jnum(out, "cursor") == 0,
	       "drain: the interrupted drain delivered nothing, all %" PRIu64 " pending", nrecords);

	/* (2) refused while spoolcapd runs */
	snprintf(log, sizeof log, "%s/drain.agent.log", tmp);
	if (agentd_start(&d, exe, log, args, 10000, err, sizeof err) == 0) {
		snprintf(cmd, sizeof cmd, "'%s' replay '%s' --to http://127.0.0.1:1/ --drain 2>&1",
		         cli, dir);
		rc = run(cmd, out, sizeof out);
		tap_ok(rc == 2 && strstr(out, "spoolcapd is running on") &&
		       strstr(out, "copy mode"), "drain: refused while spoolcapd runs (%d: %.*s)", rc,
		       (int)strcspn(out, "\n"), out);
		/* copy mode beside the daemon, settings from a spoolcapd.conf */
		if (srv_start(&x, "rx-conf", 0, NULL) == 0) {
			char conf[700], text[400];

			snprintf(conf, sizeof conf, "%s/spoolcapd.conf", tmp);
			snprintf(text, sizeof text, "[forward]\nurl = http://127.0.0.1:%u/ingest\n"
			         "batch-events = 7\nheader = X-Token: abc\n", x.port);
			write_file(conf, text);
			snprintf(cmd, sizeof cmd, "'%s' replay '%s' --config '%s' --json --no-progress",
			         cli, dir, conf);
			rc = run(cmd, out, sizeof out);
			rxp_stop(&x);
			tap_ok(rc == 0 && jnum(out, "sent") == (long long)nrecords &&
			       jnum(out, "requests") >= (long long)(nrecords + 6) / 7,
			       "copy beside spoolcapd, --config: all sent, batches of 7 (%d: %.200s)",
			       rc, out);
			rc = delivered_exactly(&x, uuid, want_all, &got);
			tap_ok(rc, "copy beside spoolcapd: every seq once (%u)", got);
		}
		tap_is_int(agentd_stop(&d, 10000), 0, "drain: spoolcapd was not disturbed");
	} else {
		tap_ok(0, "drain: spoolcapd starts: %s", err);
	}

	/* (3) the drain itself: delivered, cursor moved, a reject dead-lettered */
	poison[0] = req_seq[7];
	poison[1] = 0;
	if (srv_start(&x, "rx-drain", 0, NULL) == 0) {
		char c2[300];

		snprintf(c2, sizeof c2, "reject-ids %s-%" PRIu64 " with 400", uuid, poison[0]);
		rxp_control(&x, "%s", c2);
		snprintf(cmd, sizeof cmd, "'%s' replay '%s' --to http://127.0.0.1:%u/e --drain "
		         "--json --no-progress -q --rate 5000", cli, dir, x.port);
		rc = run(cmd, out, sizeof out);
		rxp_stop(&x);
		tap_is_int(rc, 1, "drain: exit 1 (one event dead-lettered)");
		tap_ok(jnum(out, "sent") == (long long)nrecords - 1 && jnum(out, "dead_lettered") == 1 &&
		       strstr(out, "\"mode\":\"drain\""), "drain: summary %.200s", out);
		rc = delivered_exactly(&x, uuid, want_not_poison, &got);
		tap_ok(rc,
		       "drain: every other seq delivered once (%u)", got);
		snprintf(cmd, sizeof cmd, "'%s' stat --json '%s'", cli, dir);
		run(cmd, out, sizeof out);
		tap_ok(jnum(out, "records") == 0 && jnum(out, "cursor") == (long long)nrecords &&
		       jnum(out, "dead_letters") == 1, "drain: nothing pending, cursor %" PRIu64
		       ", one dead letter", nrecords);
	} else {
		tap_ok(0, "drain: receiver");
	}
	/* nothing left: a second drain is a no-op */
	snprintf(cmd, sizeof cmd, "'%s' replay '%s' --to http://127.0.0.1:1/ --drain --json "
	         "--no-progress", cli, dir);
	rc = run(cmd, out, sizeof out);
	tap_ok(rc == 0 && jnum(out, "sent") == 0, "drain: an empty spool drains at once (%d)", rc);
}

/* ------------------------------------------------- replay --requests */

static int get_k(unsigned k) { return method_of(k) == 1; }

static void requests_tests(const char *dir)
{
	char cmd[3000], out[16384], dump[700], chk[700], diff[700];
	unsigned k, same = 0, differ = 0, gets = 0, pairs[2][2];
	struct rxp x;
	int rc;

	snprintf(dump, sizeof dump, "%s/requests.dump", tmp);
	snprintf(chk, sizeof chk, "%s/check.py", tmp);
	snprintf(diff, sizeof diff, "%s/diff.ndjson", tmp);
	if (write_file(chk, check_py) < 0) {
		tap_ok(0, "requests: cannot write %s", chk);
		return;
	}
	/* pairs[captured 200/201][replayed 404/500]: the only changes */
	memset(pairs, 0, sizeof pairs);
	for (k = 1; k <= N; k++) {
		gets += get_k(k);
		if (k == NOREPLY)
			continue;
		if (captured_status(k) == backend_status(k)) {
			same++;
		} else {
			differ++;
			pairs[captured_status(k) == 201][backend_status(k) == 500]++;
		}
	}

	/* the capture as stored, to compare with */
	snprintf(cmd, sizeof cmd, "'%s' dump '%s' --message cap-req > '%s'", cli, dir, dump);
	tap_is_int(run(cmd, NULL, 0), 0, "requests: the captured requests dumped");
	snprintf(cmd, sizeof cmd, "wc -l < '%s'", dump);
	run(cmd, out, sizeof out);
	tap_is_int(atoi(out), N, "requests: %d of them", N);

	/* all requests, as fast as 4 connections go */
	if (srv_start(&x, "backend", 1, NULL) == 0) {
		char auth[64];

		snprintf(auth, sizeof auth, "127.0.0.1:%u", x.port);
		snprintf(cmd, sizeof cmd, "'%s' replay '%s' --requests --target http://%s "
		         "--speed max --concurrency 4 --json --no-progress --diff-out '%s'",
		         cli, dir, auth, diff);
		rc = run(cmd, out, sizeof out);
		rxp_stop(&x);
		tap_is_int(rc, 1, "requests: exit 1 (some statuses differ, like diff(1))");
		tap_ok(jnum(out, "requests") == N && jnum(out, "sent") == N && jnum(out, "errors") == 0,
		       "requests: all %d sent, no error: %.300s", N, out);
		tap_ok(jnum(out, "same") == same && jnum(out, "different") == differ &&
		       jnum(out, "no_captured_response") == 1,
		       "requests: %u same, %u different, 1 without a captured response", same, differ);
		for (k = 0; k < 4; k++) {
			unsigned n = pairs[k / 2][k % 2];

			if (!n)
				continue;
			snprintf(cmd, sizeof cmd, "{\"captured\":%d,\"replayed\":%d,\"count\":%u}",
			         k / 2 ? 201 : 200, k % 2 ? 500 : 404, n);
			tap_ok(strstr(out, cmd) != NULL, "requests: changes list %s", cmd);
		}
		tap_is_int(jnum(out, "partial_bodies"), 1, "requests: the short body is counted");
		snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s' 0 '%s' ''", py, chk, dump, x.rec, auth);
		rc = run(cmd, out, sizeof out);
		tap_ok(rc == 0, "requests: method, target, headers and body arrive as captured "
		       "(except the documented changes)");
		if (rc)
			tap_diag("%s", out);
		/* --diff-out: one line per difference, right seq and statuses */
		snprintf(cmd, sizeof cmd, "wc -l < '%s'", diff);
		run(cmd, out, sizeof out);
		tap_is_int(atoi(out), differ, "requests: --diff-out has one line per difference");
		for (k = 1, rc = 1; k <= N; k++) {
			if (k == NOREPLY || captured_status(k) == backend_status(k))
				continue;
			snprintf(cmd, sizeof cmd, "grep -c '^{\"seq\":%" PRIu64 ",.*\"captured\":%d,"
			         "\"replayed\":%d' '%s'", req_seq[k], captured_status(k),
			         backend_status(k), diff);
			run(cmd, out, sizeof out);
			if (atoi(out) != 1) {
				tap_diag("  transaction %u (seq %" PRIu64 ") not in --diff-out", k, req_seq[k]);
				rc = 0;
			}
		}
		tap_ok(rc, "requests: --diff-out names each differing request with both statuses");
	} else {
		tap_ok(0, "requests: backend");
	}

	/* a selection, --keep-host, paced by --rate, text summary */
	if (srv_start(&x, "backend2", 1, NULL) == 0) {
		char auth[64];

		snprintf(auth, sizeof auth, "127.0.0.1:%u", x.port);
		snprintf(cmd, sizeof cmd, "'%s' replay '%s' --requests --target http://%s/ "
		         "--message cap-req --match meth=GET --keep-host --rate 400 --no-progress",
		         cli, dir, auth);
		rc = run(cmd, out, sizeof out);
		rxp_stop(&x);
		tap_ok(rc == 0 || rc == 1, "requests --match meth=GET: runs (%d)", rc);
		snprintf(cmd, sizeof cmd, "replayed %u requests against", gets);
		tap_ok(strstr(out, cmd) && strstr(out, "same status") && strstr(out, "different status"),
		       "requests --match meth=GET: %u sent, the table printed", gets);
		snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s' 1 '%s' GET", py, chk, dump, x.rec, auth);
		rc = run(cmd, out, sizeof out);
		tap_ok(rc == 0, "requests --keep-host: only the GETs, with the captured Host");
		if (rc)
			tap_diag("%s", out);
	} else {
		tap_ok(0, "requests: backend2");
	}

	/* --to SEQ ends before the last responses: they are found after it */
	if (srv_start(&x, "backend3", 1, NULL) == 0) {
		snprintf(cmd, sizeof cmd, "'%s' replay '%s' --requests --target http://127.0.0.1:%u "
		         "--to %" PRIu64 " --speed 50 --json --no-progress", cli, dir, x.port,
		         req_seq[5]);
		run(cmd, out, sizeof out);
		rxp_stop(&x);
		tap_ok(jnum(out, "sent") == 5 && jnum(out, "same") + jnum(out, "different") == 5 &&
		       jnum(out, "no_captured_response") == 0,
		       "requests --to SEQ: 5 sent, each paired with a response captured after SEQ "
		       "(%.*s)", (int)strcspn(out, "\n"), out);
	} else {
		tap_ok(0, "requests: backend3");
	}

	/* a target that refuses connections: every request is an error */
	{
		unsigned port = agentd_free_port();

		snprintf(cmd, sizeof cmd, "'%s' replay '%s' --requests --target http://127.0.0.1:%u "
		         "--speed max --json --no-progress --limit 5 --diff-out '%s'", cli, dir, port, diff);
		rc = run(cmd, out, sizeof out);
		tap_ok(rc == 1 && jnum(out, "errors") == 5 && jnum(out, "sent") == 5,
		       "requests: a closed port gives 5 errors, exit 1 (%d: %.300s)", rc, out);
		snprintf(cmd, sizeof cmd, "grep -c '\"replayed\":null,\"error\":' '%s'", diff);
		run(cmd, out, sizeof out);
		tap_is_int(atoi(out), 5, "requests: --diff-out has each error");
	}

	/* usage */
	{
		struct { const char *args, *says, *what; } bad[] = {
			{ "--requests", "--target", "no --target" },
			{ "--requests --target ftp://x", "--target", "a non-http target" },
			{ "--requests --target http://x --rate 5 --speed 2", "exclude", "--rate with --speed" },
			{ "--requests --target http://x --concurrency 0", "--concurrency", "--concurrency 0" },
			{ "--requests --target http://x --set-header nocolon", "--set-header", "a bad header" },
		};
		size_t i;

		for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			snprintf(cmd, sizeof cmd, "'%s' replay '%s' %s 2>&1", cli, dir, bad[i].args);
			rc = run(cmd, out, sizeof out);
			tap_ok(rc == 2 && strstr(out, bad[i].says), "requests usage: %s exits 2 (%d: %.*s)",
			       bad[i].what, rc, (int)strcspn(out, "\n"), out);
		}
		snprintf(cmd, sizeof cmd, "'%s' replay --requests --help", cli);
		rc = run(cmd, out, sizeof out);
		tap_ok(rc == 0 && strstr(out, "hop-by-hop") && strstr(out, "--keep-host") &&
		       strstr(out, "Content-Length"), "replay --requests --help says what is not "
		       "copied verbatim");
	}
}

int main(int argc, char **argv)
{
	const char *top = getenv("top_srcdir"), *p = getenv("PYTHON3");
	char dir[600], dir2[600], uuid[64], uuid2[64], path[700];

	(void)argc;
	snprintf(py, sizeof py, "%s", p && *p ? p : "/usr/bin/python3");
	if (access(py, X_OK) != 0) {
		printf("1..0 # SKIP no python3 (%s)\n", py);
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
	agentd_exe(argv[0], exe, sizeof exe);
	agentd_cli_exe(exe, cli, sizeof cli);
	snprintf(path, sizeof path, "%s/backend.py", tmp);
	tap_is_int(write_file(path, backend_py), 0, "the recording backend is written");

	if (make_spool("copy", dir, sizeof dir) == 0 && make_spool("drain", dir2, sizeof dir2) == 0) {
		tap_is_int(nrecords, 2 * N - 1, "spools: %d requests and %d responses captured", N,
		           N - 1);
		spool_uuid_of(dir, uuid, sizeof uuid);
		spool_uuid_of(dir2, uuid2, sizeof uuid2);
		copy_tests(dir, uuid);
		requests_tests(dir);
		drain_tests(dir2, uuid2);
	} else {
		tap_ok(0, "spools: made by spoolcapd");
	}
	agentd_cleanup_dir(tmp, tap_failed);
	return tap_done(0);
}
