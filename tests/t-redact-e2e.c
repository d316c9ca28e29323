/* t-redact-e2e.c -- redaction verified on the bytes on disk. The real
 * spoolcapd receives capture-like NOTIFYs whose header blocks (binary and
 * text) and bodies hold known secrets; then, with the daemon stopped, the
 * test reads the spool itself:
 *   - every value of every LMDB sub-database (records, dictionaries, dead
 *     letters, meta), raw and, for records, decoded with record.h and
 *     libzstd using the spool's own dictionaries;
 *   - every file of the spool directory byte by byte (data.mdb with its
 *     free pages, lock.mdb, disk.reserve), and the agent's log.
 * No secret may appear anywhere. Control runs without redaction show that
 * the same scan finds them (raw records and a trained dictionary), so a
 * pass is not a blind check. The run with compression waits for a zstd
 * dictionary to be trained from the live traffic, which is therefore
 * taken from the messages as stored, after redaction. */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agentd.h"
#include "spoolcap/record.h"
#include "spop_client.h"
#include "tap.h"

#define AUTH_SECRET      "tok-7f3c9a1e5b2d8c4f6a0e1d2c3b4a"
#define COOKIE_SECRET    "c00k1e-5ecret-93b1e8d7c6f5a4"
#define PROXY_SECRET     "cHJveHk6c2VjcmV0LXB3ZA"
#define SETCOOKIE_SECRET "setc00k1e-5ecret-0a9b8c7d6e"
#define BODY_SECRET      "b0dy-5ecret-past-the-cap-1f2e3d"
#define RESBODY_SECRET   "r35-b0dy-5ecret-dropped-4c5d6e"
#define MALFORMED_SECRET "malf0rmed-5ecret-7a8b9c0d"
#define TC1_VALUE        "Hi There"
/* RFC 4231 case 1 (key 20 x 0x0b, "Hi There"): HMAC-SHA256, 128 bits. */
#define TC1_HASH         "hmac:b0344c61d8db38535ca8afceaf0bf12b"

static const char *const secrets[] = {
	AUTH_SECRET, COOKIE_SECRET, PROXY_SECRET, SETCOOKIE_SECRET, BODY_SECRET,
	RESBODY_SECRET, MALFORMED_SECRET, TC1_VALUE,
};
#define NSECRETS (sizeof secrets / sizeof secrets[0])

static char exe[512], cli[512], tmp[] = "/tmp/t-redact-e2e-XXXXXX", keyfile[600];

/* ---- building messages by hand ---- */

struct blk {
	uint8_t b[2048];
	size_t  n;
};

/* One hdrs_bin pair: 1-byte lengths (all ours are < 128). */
static void pair(struct blk *k, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);

	k->b[k->n++] = (uint8_t)nl;
	memcpy(k->b + k->n, name, nl);
	k->n += nl;
	k->b[k->n++] = (uint8_t)vl;
	memcpy(k->b + k->n, value, vl);
	k->n += vl;
}

static void end(struct blk *k)
{
	k->b[k->n++] = 0;
	k->b[k->n++] = 0;
}

/* Request k: a binary block with Authorization and two cookies (one the
 * RFC 4231 value), a text block with Proxy-Authorization, a body whose
 * secret lies past the 64-byte cap. Every 10th has a malformed block. */
static size_t build_req(uint8_t *out, size_t cap, unsigned k)
{
	static const char text[] = "Host: app.example\r\nProxy-Authorization: Basic "
	                           PROXY_SECRET "\r\nAccept: */*\r\n\r\n";
	struct blk h = { .n = 0 };
	char uid[32], body[128];
	spc_arg a[6];
	spc_msg m = { "cap-req", a, 6 };

	snprintf(uid, sizeof uid, "req-%u", k);
	if (k % 10 == 9) {
		/* no 00 00 end: a block cut short, so the agent cannot trust
		 * what it would find in it and stores none of it */
		pair(&h, "host", "app.example");
		pair(&h, "authorization", "Bearer " MALFORMED_SECRET);
	} else {
		pair(&h, "host", "app.example");
		pair(&h, "authorization", "Bearer " AUTH_SECRET);
		pair(&h, "cookie", "session=" COOKIE_SECRET);
		pair(&h, "cookie", TC1_VALUE);
		pair(&h, "user-agent", "t-redact-e2e/1.0");
		end(&h);
	}
	memset(body, 'a', 64);
	memcpy(body + 64, BODY_SECRET, sizeof BODY_SECRET);
	a[0] = (spc_arg){ "uid", spc_cstr(uid) };
	a[1] = (spc_arg){ "meth", spc_cstr("POST") };
	a[2] = (spc_arg){ "hdrs", spc_str(SPOP_T_BINARY, h.b, h.n) };
	a[3] = (spc_arg){ "texthdrs", spc_str(SPOP_T_STRING, text, sizeof text - 1) };
	a[4] = (spc_arg){ "blen", spc_int(SPOP_T_INT64, (int64_t)strlen(body)) };
	a[5] = (spc_arg){ "body", spc_str(SPOP_T_BINARY, body, strlen(body)) };
	return spc_build_notify(out, cap, 2 * k + 1, 1, &m, 1);
}

/* Response k: Set-Cookie, and a body that cap-res must not store. */
static size_t build_res(uint8_t *out, size_t cap, unsigned k)
{
	struct blk h = { .n = 0 };
	char uid[32];
	spc_arg a[4];
	spc_msg m = { "cap-res", a, 4 };

	snprintf(uid, sizeof uid, "req-%u", k);
	pair(&h, "content-type", "application/json");
	pair(&h, "set-cookie", "sid=" SETCOOKIE_SECRET "; Path=/; HttpOnly");
	end(&h);
	a[0] = (spc_arg){ "uid", spc_cstr(uid) };
	a[1] = (spc_arg){ "status", spc_int(SPOP_T_INT64, 200) };
	a[2] = (spc_arg){ "hdrs", spc_str(SPOP_T_BINARY, h.b, h.n) };
	a[3] = (spc_arg){ "body", spc_cstr("{\"secret\":\"" RESBODY_SECRET "\"}") };
	return spc_build_notify(out, cap, 2 * k + 2, 1, &m, 1);
}

/* Sends requests [from, to) and their responses; each ACK must say
 * spooled. Returns the number of ACKs that did not. */
static unsigned feed(unsigned port, unsigned from, unsigned to)
{
	uint8_t buf[4096], hello[256];
	spc_hello_opts ho = spc_hello_default(16380, "pipelining");
	spc_conn c;
	spc_frame fr;
	unsigned bad = 0, nact;
	spop_action first;
	size_t n;

	if (spc_connect_tcp(&c, "127.0.0.1", port, 2000) < 0)
		return to - from;
	n = spc_build_hello(hello, sizeof hello, &ho);
	if (spc_send(&c, hello, n, 2000) < 0 || spc_read_frame(&c, &fr, 5000) != SPC_FRAME) {
		spc_close(&c);
		return to - from;
	}
	for (unsigned k = from; k < to; k++)
		for (int res = 0; res < 2; res++) {
			n = res ? build_res(buf, sizeof buf, k) : build_req(buf, sizeof buf, k);
			if (!n || spc_send(&c, buf, n, 2000) < 0 ||
			    spc_read_frame(&c, &fr, 5000) != SPC_FRAME ||
			    fr.f.type != SPOP_FRAME_ACK || spc_parse_ack(&fr, &nact, &first) < 0 ||
			    first.type != SPOP_ACT_SET_VAR || first.value.type != SPOP_T_BOOL ||
			    !first.value.v.b)
				bad++;
		}
	spc_close(&c);
	return bad;
}

/* ---- reading the spool ---- */

struct scan {
	unsigned values;           /* LMDB values read */
	unsigned records, decoded, truncated, dicts, with_dict;
	unsigned hits_values;      /* secrets in raw LMDB values */
	unsigned hits_decoded;     /* secrets in decoded record payloads */
	unsigned hits_dict;        /* secrets in dictionaries */
	unsigned hits_files;       /* secrets in the directory's files */
	unsigned redacted, hashed_tc1, failed;  /* markers in decoded payloads */
	char first_hit[160];
};

static unsigned count_secrets(struct scan *s, const void *p, size_t n, const char *where)
{
	unsigned hits = 0;

	for (size_t i = 0; i < NSECRETS; i++)
		if (memmem(p, n, secrets[i], strlen(secrets[i]))) {
			if (!hits && !s->first_hit[0])
				snprintf(s->first_hit, sizeof s->first_hit, "%s in %s", secrets[i], where);
			hits++;
		}
	return hits;
}

static unsigned count(const void *p, size_t n, const char *needle)
{
	const char *q = p, *e = q + n;
	unsigned c = 0;
	size_t l = strlen(needle);

	while ((q = memmem(q, (size_t)(e - q), needle, l)) != NULL) {
		c++;
		q += l;
	}
	return c;
}

struct dicts {
	record_dict *d[16];
	unsigned n;
};

static const record_dict *find_dict(void *arg, uint32_t id)
{
	struct dicts *ds = arg;

	for (unsigned i = 0; i < ds->n; i++)
		if (record_dict_id(ds->d[i]) == id)
			return ds->d[i];
	return NULL;
}

/* Every value of every sub-database, raw; records also decoded. */
static int scan_lmdb(const char *dir, struct scan *s)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi main, dbi;
	MDB_cursor *mc, *c2;
	MDB_val k, v;
	struct dicts ds = { .n = 0 };
	char names[8][32];
	unsigned nnames = 0;
	record_dctx *dx = record_dctx_new();
	record_buf out = { 0 };
	int rc;

	if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 8) ||
	    mdb_env_open(env, dir, MDB_RDONLY, 0640)) {
		tap_diag("cannot open the spool %s with LMDB", dir);
		return -1;
	}
	mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	mdb_dbi_open(txn, NULL, 0, &main);
	mdb_cursor_open(txn, main, &mc);
	while (mdb_cursor_get(mc, &k, &v, MDB_NEXT) == 0 && nnames < 8)
		if (k.mv_size < sizeof names[0]) {
			memcpy(names[nnames], k.mv_data, k.mv_size);
			names[nnames++][k.mv_size] = '\0';
		}
	mdb_cursor_close(mc);
	/* The dictionaries first, to decode the records. */
	if (mdb_dbi_open(txn, "dict", 0, &dbi) == 0) {
		mdb_cursor_open(txn, dbi, &c2);
		while (mdb_cursor_get(c2, &k, &v, MDB_NEXT) == 0) {
			char err[200];
			record_dict *d = record_dict_new(v.mv_data, v.mv_size, 0, err, sizeof err);

			s->dicts++;
			s->hits_dict += count_secrets(s, v.mv_data, v.mv_size, "a dictionary");
			if (d && ds.n < 16)
				ds.d[ds.n++] = d;
			else
				record_dict_unref(d);
		}
		mdb_cursor_close(c2);
	}
	for (unsigned i = 0; i < nnames; i++) {
		if (mdb_dbi_open(txn, names[i], 0, &dbi) != 0)
			continue;
		mdb_cursor_open(txn, dbi, &c2);
		while (mdb_cursor_get(c2, &k, &v, MDB_NEXT) == 0) {
			record_hdr h;
			char where[64];

			s->values++;
			snprintf(where, sizeof where, "LMDB %.31s", names[i]);
			s->hits_values += count_secrets(s, v.mv_data, v.mv_size, where);
			if (strcmp(names[i], "q") != 0)
				continue;
			s->records++;
			rc = record_decode(dx, v.mv_data, v.mv_size, find_dict, &ds, &out, &h, NULL,
			                   NULL, 0);
			if (rc != 0)
				continue;
			s->decoded++;
			s->truncated += (h.flags & RECORD_F_TRUNCATED) != 0;
			s->with_dict += (h.flags & RECORD_F_DICT) != 0;
			s->hits_decoded += count_secrets(s, out.data, out.len, "a decoded record");
			s->redacted += count(out.data, out.len, "<redacted>");
			s->hashed_tc1 += count(out.data, out.len, TC1_HASH);
			s->failed += count(out.data, out.len, "<redacted: unparsable header block>");
		}
		mdb_cursor_close(c2);
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
	for (unsigned i = 0; i < ds.n; i++)
		record_dict_unref(ds.d[i]);
	record_buf_free(&out);
	record_dctx_free(dx);
	return 0;
}

/* Streams a file through the secret search (overlapping chunks, so a
 * secret across a chunk boundary is found too). */
static unsigned scan_file(struct scan *s, const char *path)
{
	static uint8_t buf[1 << 20];
	size_t keep = 0, n;
	unsigned hits = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return 0;
	while ((n = (size_t)read(fd, buf + keep, sizeof buf - keep)) > 0 && n != (size_t)-1) {
		n += keep;
		hits += count_secrets(s, buf, n, path);
		keep = n < 64 ? n : 64;
		memmove(buf, buf + n - keep, keep);
	}
	close(fd);
	return hits;
}

static void scan_dir(const char *dir, struct scan *s)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[1200];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		struct stat st;

		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
			s->hits_files += scan_file(s, p);
	}
	closedir(d);
}

/* Runs a command, stdout into out (NUL-terminated); returns exit status. */
static int run(const char *cmd, char *out, size_t cap)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	int st;

	if (!p)
		return -1;
	n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	while (fgetc(p) != EOF)          /* the rest, so the child never blocks */
		;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int log_has(const char *log, const char *needle, int timeout_ms)
{
	for (int t = 0; t <= timeout_ms; t += 50) {
		char cmd[1200], out[64];

		snprintf(cmd, sizeof cmd, "grep -c -F '%s' '%s'", needle, log);
		if (run(cmd, out, sizeof out) == 0 && atoi(out) > 0)
			return 1;
		usleep(50 * 1000);
	}
	return 0;
}

/* One daemon run: flags, traffic, stop, then the scan. wait_dict: send
 * the first 60 requests, wait for the dictionary, then 40 more (which
 * are compressed with it). */
static int session(const char *name, const char *const *flags, int wait_dict,
                   struct scan *s, char *spool, size_t spool_len)
{
	char log[700], err[512];
	const char *args[32];
	unsigned n = 0, bad;
	agentd d;

	snprintf(spool, spool_len, "%s/%s", tmp, name);
	snprintf(log, sizeof log, "%s/%s.log", tmp, name);
	args[n++] = "--spool";
	args[n++] = spool;
	args[n++] = "--threads";
	args[n++] = "2";
	while (*flags && n < 30)
		args[n++] = *flags++;
	args[n] = NULL;
	memset(s, 0, sizeof *s);
	if (agentd_start(&d, exe, log, args, 10000, err, sizeof err) < 0) {
		tap_ok(0, "%s: spoolcapd starts: %s", name, err);
		return -1;
	}
	bad = feed(d.port, 0, 60);
	if (wait_dict && !log_has(log, "trained compression dictionary", 20000))
		tap_diag("%s: no dictionary was trained", name);
	bad += feed(d.port, 60, 100);
	tap_is_int(bad, 0, "%s: 200 NOTIFYs ACKed as spooled", name);
	tap_is_int(agentd_stop(&d, 10000), 0, "%s: the daemon exits 0", name);
	scan_lmdb(spool, s);
	scan_dir(spool, s);
	s->hits_files += scan_file(s, log);
	return 0;
}

int main(int argc, char **argv)
{
	static const uint8_t key[20] = {
		0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
		0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
	};
	const char *off_raw[] = { "--redact-headers", "none", "--compression-level", "0", NULL };
	const char *off_dict[] = { "--redact-headers", "none", "--dictionary-samples", "40",
	                           "--dictionary-size", "4K", NULL };
	const char *on_raw[] = { "--header-action", "cookie:hash", "--hash-key-file", keyfile,
	                         "--header-args", "hdrs texthdrs", "--body-max", "64",
	                         "--body-drop", "cap-res", "--compression-level", "0", NULL };
	const char *on_dict[] = { "--header-action", "cookie:hash", "--hash-key-file", keyfile,
	                          "--header-args", "hdrs texthdrs", "--body-max", "64",
	                          "--body-drop", "cap-res", "--dictionary-samples", "40",
	                          "--dictionary-size", "4K", NULL };
	char spool[700], cmd[2000], log[700];
	static char out[1 << 20];
	struct scan s;
	FILE *f;

	(void)argc;
	if (!mkdtemp(tmp)) {
		printf("1..0 # SKIP cannot create a temporary directory\n");
		return 0;
	}
	agentd_exe(argv[0], exe, sizeof exe);
	agentd_cli_exe(exe, cli, sizeof cli);
	snprintf(keyfile, sizeof keyfile, "%s/hash.key", tmp);
	f = fopen(keyfile, "w");
	if (!f || fwrite(key, 1, sizeof key, f) != sizeof key || fclose(f) != 0) {
		printf("1..0 # SKIP cannot write %s\n", keyfile);
		return 0;
	}

	/* Controls: without redaction the scan does find the secrets. */
	if (session("off-raw", off_raw, 0, &s, spool, sizeof spool) == 0) {
		tap_ok(s.decoded == 200 && s.hits_decoded >= NSECRETS && s.hits_values > 0 &&
		       s.hits_files >= NSECRETS, "control, redaction off: the scan finds the secrets in "
		       "the records and in data.mdb (%u, %u, %u hits)", s.hits_decoded,
		       s.hits_values, s.hits_files);
	}
	if (session("off-dict", off_dict, 1, &s, spool, sizeof spool) == 0) {
		tap_ok(s.dicts >= 1 && s.hits_dict > 0, "control, redaction off: a dictionary "
		       "trained on the traffic holds secrets (%u dictionaries, %u hits)",
		       s.dicts, s.hits_dict);
	}

	/* Redaction on, records stored raw: data.mdb holds them as they are. */
	if (session("on-raw", on_raw, 0, &s, spool, sizeof spool) == 0) {
		tap_is_int(s.decoded, 200, "on-raw: 200 records decode (valid messages)");
		tap_ok(s.hits_values == 0, "on-raw: no secret in any LMDB value%s%s",
		       s.first_hit[0] ? ": " : "", s.first_hit);
		tap_ok(s.hits_decoded == 0, "on-raw: no secret in any decoded record");
		tap_ok(s.hits_files == 0, "on-raw: no secret in any file of the spool directory "
		       "nor the log%s%s", s.first_hit[0] ? ": " : "", s.first_hit);
		/* 90 good requests: authorization (binary), proxy-authorization
		 * (text) x 100; 100 responses: set-cookie. */
		tap_is_int(s.redacted, 90 + 100 + 100, "on-raw: every listed header reads <redacted>");
		tap_is_int(s.hashed_tc1, 90, "on-raw: cookie:hash gives the RFC 4231 HMAC");
		tap_is_int(s.failed, 10, "on-raw: the 10 malformed blocks failed closed");
		tap_is_int(s.truncated, 100, "on-raw: the 100 capped request bodies are marked "
		           "truncated");

		snprintf(cmd, sizeof cmd, "'%s' dump '%s' --from 1 --limit 2", cli, spool);
		tap_is_int(run(cmd, out, sizeof out), 0, "on-raw: spoolcap dump reads the spool");
		if (!tap_ok(strstr(out, "[\"authorization\",\"<redacted>\"]") &&
		       strstr(out, "[\"cookie\",\"" TC1_HASH "\"]") &&
		       strstr(out, "\"texthdrs\":\"Host: app.example\\r\\nProxy-Authorization: "
		                   "<redacted>\\r\\n") &&
		       strstr(out, "\"body\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		                   "aaaaaaaaaaaa\"") &&
		       strstr(out, "\"message\":\"cap-res\"") && strstr(out, "\"body\":null") &&
		       strstr(out, "[\"set-cookie\",\"<redacted>\"]"),
		       "on-raw: dump shows the markers, the hash, the capped and the dropped body"))
			tap_diag("%.*s", 1500, out);
		snprintf(log, sizeof log, "%s/on-raw.log", tmp);
		tap_ok(log_has(log, "redaction before storing: headers authorization:redact", 0) &&
		       log_has(log, "redaction: 200 messages changed, headers 290 redacted, "
		               "0 dropped, 180 hashed, bodies 100 capped, 100 dropped, 10 header "
		               "blocks failed closed", 0),
		       "on-raw: the log names the rules at start and the counts at exit");
	}

	/* Redaction on, zstd with a dictionary trained from live traffic. */
	if (session("on-dict", on_dict, 1, &s, spool, sizeof spool) == 0) {
		tap_is_int(s.decoded, 200, "on-dict: 200 records decode");
		tap_ok(s.dicts >= 1 && s.with_dict > 0, "on-dict: a dictionary was trained and "
		       "stored, %u records use it", s.with_dict);
		tap_ok(s.hits_dict == 0, "on-dict: the dictionary holds no secret (trained after "
		       "redaction)");
		tap_ok(s.hits_values == 0 && s.hits_decoded == 0 && s.hits_files == 0,
		       "on-dict: no secret in LMDB values, decoded records, files or the log%s%s",
		       s.first_hit[0] ? ": " : "", s.first_hit);
		tap_ok(s.redacted == 290 && s.hashed_tc1 == 90 && s.failed == 10,
		       "on-dict: the same markers as without compression");
	}

	agentd_cleanup_dir(tmp, tap_failed);
	return tap_done(0);
}
