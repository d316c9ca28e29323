/* t-cli-view.c -- spoolcap ls, cat, dump and export, and the filters they
 * share, against three spools:
 *   built  twelve records written here record by record with known capture
 *          times, arguments, a dictionary, a dead letter, retained
 *          (delivered) records and a damaged record: every expectation is
 *          computed by hand from what was written;
 *   many   3,000 records one second apart, some out of order, then a
 *          requeued dead letter: --since/--until stay exact while they
 *          narrow the scan;
 *   live   written by the real spoolcapd, delivered to tests/receiver.py
 *          (one batch rejected, so one dead letter), kept by --retain, then
 *          more left pending: dump must equal what the receiver got.
 * Also: cat --raw decoded by the zstd CLI (with the dictionary cat --dict
 * writes), export .zst read back by zstd, HAR checked by tests/har-check.py,
 * and every error path (exit 2 with a message naming the problem). */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agentd.h"
#include "rxproc.h"
#include "spop_client.h"
#include "spoolcap/record.h"
#include "spoolcap/spool.h"
#include "tap.h"

#define T0      1768464000LL    /* 2026-01-15T08:00:00Z */
#define ENGINE  "eng-1"
#define NBUILT  12
#define NMANY   3000
#define NPAIRS  20              /* live: request/response pairs delivered */
#define NPEND   5               /* live: pairs left pending */

static char exe[512], cli[512], py[512], srcdir[512], zstd_cli[64];
static char tmp[] = "/tmp/t-cli-view-XXXXXX";
static char built[600], many[600], live[600];
static char out[1 << 20], out2[1 << 20];

/* ------------------------------------------------------------ helpers */

/* Runs a shell command built from fmt; stdout into buf (NUL-terminated,
 * may be NULL); returns the exit status, -1 if it did not exit. */
static int runf(char *buf, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int runf(char *buf, size_t cap, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	FILE *p;
	size_t n = 0;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	if (!(p = popen(cmd, "r")))
		return -1;
	if (buf) {
		size_t k;

		while (n < cap - 1 && (k = fread(buf + n, 1, cap - 1 - n, p)) > 0)
			n += k;
		buf[n] = 0;
	}
	{
		char sink[4096];
		while (fread(sink, 1, sizeof sink, p) > 0)
			;
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static unsigned lines(const char *s)
{
	unsigned n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* The seqs of NDJSON lines ("seq":N) joined by commas: "3,4,5". */
static const char *seqs(const char *s)
{
	static char buf[8192];
	size_t n = 0;
	const char *p = s;

	buf[0] = 0;
	while ((p = strstr(p, "\"seq\":")) && n < sizeof buf - 24) {
		n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%lu", n ? "," : "",
		                      strtoul(p + 6, NULL, 10));
		p = strchr(p, '\n');
		if (!p)
			break;
	}
	return buf;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(s, f);
	return fclose(f);
}

/* ------------------------------------------------- SPOP message bytes */

static size_t msg_build(uint8_t *buf, size_t cap, const char *name, const spc_arg *a,
                        unsigned n)
{
	spop_wbuf w;
	uint8_t nb = (uint8_t)n;
	unsigned i;

	spop_wbuf_init(&w, buf, cap);
	spop_put_name(&w, name, strlen(name));
	spop_put_bytes(&w, &nb, 1);
	for (i = 0; i < n; i++) {
		spop_put_name(&w, a[i].name ? a[i].name : "", a[i].name ? strlen(a[i].name) : 0);
		spop_put_data(&w, &a[i].val);
	}
	return w.overflow ? 0 : w.len;
}

/* A binary header block (ref §5.4) from "name", "value", ..., NULL; every
 * length below 240 so each varint is one byte. */
static size_t hdrs_build(uint8_t *buf, size_t cap, ...)
{
	va_list ap;
	const char *s;
	size_t n = 0;

	va_start(ap, cap);
	while ((s = va_arg(ap, const char *)) != NULL) {
		size_t k = strlen(s);

		if (k >= 240 || n + 1 + k + 2 > cap)
			break;
		buf[n++] = (uint8_t)k;
		memcpy(buf + n, s, k);
		n += k;
	}
	va_end(ap);
	buf[n++] = 0;
	buf[n++] = 0;
	return n;
}

static spop_data ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	uint8_t ip[4] = { a, b, c, d };

	return spc_ip(SPOP_T_IPV4, ip);
}

/* The raw payload record.h documents, written by hand: what zstd -d of a
 * record's frame must give. */
static size_t payload_build(uint8_t *buf, int64_t recv_ns, uint64_t sid, uint64_t fid,
                            const uint8_t *msg, size_t len)
{
	size_t e = strlen(ENGINE), i;
	uint64_t t = (uint64_t)recv_ns;

	memset(buf, 0, 32);
	buf[0] = 1;
	buf[2] = (uint8_t)e;
	for (i = 0; i < 8; i++) {
		buf[8 + i] = (uint8_t)(t >> (8 * i));
		buf[16 + i] = (uint8_t)(sid >> (8 * i));
		buf[24 + i] = (uint8_t)(fid >> (8 * i));
	}
	memcpy(buf + 32, ENGINE, e);
	memcpy(buf + 32 + e, msg, len);
	return 32 + e + len;
}

/* --------------------------------------------------- the built spool */

struct brec {
	size_t  raw_len, stored_len;
	uint8_t payload[2048];
	size_t  payload_len;
};
static struct brec B[NBUILT + 1];

static int64_t tns(int k)
{
	return (T0 + 60 * (k - 1)) * 1000000000LL + 123000000;
}

/* The k-th message of the built spool (1-based); 0 if none. */
static size_t built_msg(int k, uint8_t *m, size_t cap)
{
	uint8_t h[512];
	size_t hn;
	spc_arg a[16];
	static const uint8_t bin[] = { 0xff, 0x00, 'x' };
	static const char text_hdrs[] = "Host: text.example\r\nAccept: */*\r\n\r\n";
	static const char json_body[] = "{\"order_id\":6133}";

	switch (k) {
	case 1:
		hn = hdrs_build(h, sizeof h, "host", "example.com", "cookie", "a=1; b=2",
		                "user-agent", "curl/8.0", NULL);
		a[0] = (spc_arg){ "uid", spc_cstr("u1") };
		a[1] = (spc_arg){ "meth", spc_cstr("GET") };
		a[2] = (spc_arg){ "path", spc_cstr("/a") };
		a[3] = (spc_arg){ "query", spc_cstr("x=1&y=%41") };
		a[4] = (spc_arg){ "ver", spc_cstr("1.1") };
		a[5] = (spc_arg){ "src", ip4(198, 51, 100, 7) };
		a[6] = (spc_arg){ "sport", spc_int(SPOP_T_INT32, 40001) };
		a[7] = (spc_arg){ "dst", ip4(192, 0, 2, 10) };
		a[8] = (spc_arg){ "dport", spc_int(SPOP_T_INT32, 80) };
		a[9] = (spc_arg){ "tls", spc_bool(0) };
		a[10] = (spc_arg){ "hdrs", spc_str(SPOP_T_BINARY, h, hn) };
		a[11] = (spc_arg){ "blen", spc_int(SPOP_T_INT32, 0) };
		a[12] = (spc_arg){ "bsize", spc_int(SPOP_T_INT64, 0) };
		a[13] = (spc_arg){ "body", spc_null() };
		return msg_build(m, cap, "cap-req", a, 14);
	case 2:
		hn = hdrs_build(h, sizeof h, "content-type", "text/plain", "set-cookie",
		                "sid=abc; Path=/", NULL);
		a[0] = (spc_arg){ "uid", spc_cstr("u1") };
		a[1] = (spc_arg){ "status", spc_int(SPOP_T_INT32, 200) };
		a[2] = (spc_arg){ "ver", spc_cstr("1.1") };
		a[3] = (spc_arg){ "srv", spc_cstr("s1") };
		a[4] = (spc_arg){ "srvaddr", ip4(10, 0, 0, 1) };
		a[5] = (spc_arg){ "hdrs", spc_str(SPOP_T_BINARY, h, hn) };
		a[6] = (spc_arg){ "blen", spc_int(SPOP_T_INT32, 5) };
		a[7] = (spc_arg){ "bsize", spc_int(SPOP_T_INT64, 5) };
		a[8] = (spc_arg){ "body", spc_str(SPOP_T_BINARY, "hello", 5) };
		return msg_build(m, cap, "cap-res", a, 9);
	case 3:
		hn = hdrs_build(h, sizeof h, "host", "api.example.com", "content-type",
		                "application/json", NULL);
		a[0] = (spc_arg){ "uid", spc_cstr("u2") };
		a[1] = (spc_arg){ "meth", spc_cstr("POST") };
		a[2] = (spc_arg){ "path", spc_cstr("/api/v2/events") };
		a[3] = (spc_arg){ "query", spc_null() };
		a[4] = (spc_arg){ "ver", spc_cstr("2.0") };
		a[5] = (spc_arg){ "tls", spc_bool(1) };
		a[6] = (spc_arg){ "hdrs", spc_str(SPOP_T_BINARY, h, hn) };
		a[7] = (spc_arg){ "bsize", spc_int(SPOP_T_INT64, 17) };
		a[8] = (spc_arg){ "body", spc_str(SPOP_T_BINARY, json_body, 17) };
		return msg_build(m, cap, "cap-req", a, 9);
	case 4:
		a[0] = (spc_arg){ "uid", spc_cstr("u2") };
		a[1] = (spc_arg){ "status", spc_int(SPOP_T_INT32, 201) };
		a[2] = (spc_arg){ "ver", spc_cstr("2.0") };
		a[3] = (spc_arg){ "bsize", spc_int(SPOP_T_INT64, 10) };
		a[4] = (spc_arg){ "body", spc_str(SPOP_T_BINARY, bin, 3) };
		return msg_build(m, cap, "cap-res", a, 5);
	case 5:
		a[0] = (spc_arg){ "uid", spc_cstr("u3") };
		a[1] = (spc_arg){ "meth", spc_cstr("GET") };
		a[2] = (spc_arg){ "path", spc_cstr("/missing") };
		a[3] = (spc_arg){ "hdrs", spc_str(SPOP_T_STRING, text_hdrs, strlen(text_hdrs)) };
		return msg_build(m, cap, "cap-req", a, 4);
	case 6:
		a[0] = (spc_arg){ "uid", spc_cstr("u4") };
		a[1] = (spc_arg){ "status", spc_int(SPOP_T_INT32, 404) };
		return msg_build(m, cap, "cap-res", a, 2);
	case 7:
		a[0] = (spc_arg){ "note", spc_cstr("hello world") };
		a[1] = (spc_arg){ NULL, spc_cstr("anon") };
		return msg_build(m, cap, "cap-log", a, 2);
	case 8:
		a[0] = (spc_arg){ "uid", spc_cstr("u5") };
		a[1] = (spc_arg){ "meth", spc_cstr("DELETE") };
		a[2] = (spc_arg){ "path", spc_cstr("/x") };
		return msg_build(m, cap, "cap-req", a, 3);
	case 9:
		a[0] = (spc_arg){ "uid", spc_cstr("u5") };
		a[1] = (spc_arg){ "status", spc_int(SPOP_T_INT32, 204) };
		return msg_build(m, cap, "cap-res", a, 2);
	case 10:
		a[0] = (spc_arg){ "uid", spc_cstr("broken") };
		a[1] = (spc_arg){ "meth", spc_cstr("GET") };
		return msg_build(m, cap, "cap-req", a, 2);
	case 11:
		a[0] = (spc_arg){ "uid", spc_cstr("u6") };
		a[1] = (spc_arg){ "meth", spc_cstr("PUT") };
		a[2] = (spc_arg){ "path", spc_cstr("/dict") };
		return msg_build(m, cap, "cap-req", a, 3);
	case 12:
		a[0] = (spc_arg){ "uid", spc_cstr("u6") };
		a[1] = (spc_arg){ "status", spc_int(SPOP_T_INT32, 500) };
		return msg_build(m, cap, "cap-res", a, 2);
	}
	return 0;
}

/* A dictionary trained on 1,500 varied messages of the recipe's shape. */
static record_dict *train_dict(char *err, size_t errlen)
{
	enum { NS = 1500 };
	static uint8_t samples[NS * 400];
	static size_t sizes[NS];
	record_cctx *cc = record_cctx_new(0, err, errlen);
	record_buf rb = { NULL, 0, 0 };
	size_t off = 0;
	record_dict *d;
	unsigned i;

	if (!cc)
		return NULL;
	for (i = 0; i < NS; i++) {
		uint8_t m[400], h[256];
		char uid[40], path[64], ua[40];
		spc_arg a[5];
		record_meta meta = { 1, i, 1, 0, { (const uint8_t *)ENGINE, 5 }, 0 };
		size_t n, hn, plen;
		const void *p;

		snprintf(uid, sizeof uid, "%08x-e132-4cdc-894b-%012u", i * 2654435761u, i);
		snprintf(path, sizeof path, "/api/v%u/items/%u", i % 3, i * 7919 % 10007);
		snprintf(ua, sizeof ua, "client/%u.%u", i % 5, i % 11);
		hn = hdrs_build(h, sizeof h, "host", "api.example.com", "user-agent", ua,
		                "accept", "application/json", NULL);
		a[0] = (spc_arg){ "uid", spc_cstr(uid) };
		a[1] = (spc_arg){ "meth", spc_cstr(i % 4 ? "GET" : "POST") };
		a[2] = (spc_arg){ "path", spc_cstr(path) };
		a[3] = (spc_arg){ "hdrs", spc_str(SPOP_T_BINARY, h, hn) };
		a[4] = (spc_arg){ "status", spc_int(SPOP_T_INT32, 200 + i % 5) };
		n = msg_build(m, sizeof m, "cap-req", a, 5);
		rb.len = 0;
		if (record_encode(cc, NULL, &meta, m, n, &rb) != 0)
			break;
		p = record_cctx_payload(cc, &plen);
		memcpy(samples + off, p, plen);
		sizes[i] = plen;
		off += plen;
	}
	d = i == NS ? record_dict_train(samples, sizes, NS, 16384, 32768, 3, err, errlen) : NULL;
	record_buf_free(&rb);
	record_cctx_free(cc);
	return d;
}

static int make_built(void)
{
	spool_config cfg;
	spool *sp;
	record_cctx *cc;
	record_slot *slot;
	record_dict *d;
	record_buf rb = { NULL, 0, 0 };
	spool_dlq_info info;
	const void *dbytes;
	size_t dlen;
	char err[512];
	int k, rc = -1;

	snprintf(built, sizeof built, "%s/built", tmp);
	memset(&cfg, 0, sizeof cfg);
	cfg.retain_ns = 86400 * 1000000000LL;      /* delivered records stay */
	if (spool_open(&sp, built, &cfg, SPOOL_MODE_AGENT, err, sizeof err) < 0) {
		tap_diag("spool_open: %s", err);
		return -1;
	}
	cc = record_cctx_new(3, err, sizeof err);
	slot = record_slot_new();
	if (!(d = train_dict(err, sizeof err))) {
		tap_diag("dictionary: %s", err);
		goto out;
	}
	dbytes = record_dict_data(d, &dlen);
	if (spool_dict_put(sp, 32768, dbytes, dlen) < 0)
		goto out;
	for (k = 1; k <= NBUILT; k++) {
		uint8_t m[2048];
		size_t n = built_msg(k, m, sizeof m);
		record_meta meta = { tns(k), 100 + (uint64_t)k, 1, 0,
		                     { (const uint8_t *)ENGINE, strlen(ENGINE) }, 0 };
		spool_item it;
		spool_append_result res;

		record_slot_set(slot, k >= 11 ? d : NULL);
		rb.len = 0;
		if (!n || record_encode(cc, slot, &meta, m, n, &rb) != 0)
			goto out;
		if (k == 10)
			rb.data[rb.len - 6] ^= 0x55;       /* damage the frame */
		B[k].raw_len = 32 + strlen(ENGINE) + n;
		B[k].stored_len = rb.len;
		B[k].payload_len = payload_build(B[k].payload, tns(k), 100 + (uint64_t)k, 1, m, n);
		it.data = rb.data;
		it.len = rb.len;
		if (spool_append(sp, &it, 1, &res) != 1 || res.seq != (uint64_t)k)
			goto out;
	}
	/* 1..4 delivered (retained), 8 dead-lettered as a processor's reject. */
	memset(&info, 0, sizeof info);
	info.reason = SPOOL_DLQ_REJECTED;
	info.http_status = 400;
	info.attempts = 2;
	info.snippet = "bad event";
	info.snippet_len = 9;
	if (spool_advance(sp, 4) < 0 || spool_dlq_put(sp, 8, &info) < 0)
		goto out;
	rc = 0;
out:
	if (rc)
		tap_diag("building the spool failed: %s", spool_errmsg());
	record_dict_unref(d);
	record_slot_free(slot);
	record_cctx_free(cc);
	record_buf_free(&rb);
	spool_close(sp);
	return rc;
}

/* 3,000 records at T0 + (seq - 1) s, except that seq 10k and 10k + 1 swap
 * their times (capture order is not quite seq order); then seq 500 (time
 * T0 + 499 s) is dead-lettered and requeued as seq 3001. */
static int make_many(void)
{
	spool *sp;
	record_cctx *cc;
	record_buf rb = { NULL, 0, 0 };
	spool_dlq_info info;
	uint64_t s500 = 500;
	char err[512];
	int k, rc = -1;

	snprintf(many, sizeof many, "%s/many", tmp);
	if (spool_open(&sp, many, NULL, SPOOL_MODE_AGENT, err, sizeof err) < 0) {
		tap_diag("spool_open: %s", err);
		return -1;
	}
	cc = record_cctx_new(1, err, sizeof err);
	for (k = 1; k <= NMANY; k++) {
		uint8_t m[256];
		char uid[16];
		spc_arg a[1];
		int64_t t = k - 1;
		record_meta meta = { 0, (uint64_t)k, 1, 0, { (const uint8_t *)ENGINE, 5 }, 0 };
		spool_item it;
		spool_append_result res;
		size_t n;

		if (k % 10 == 0)
			t = k;
		else if (k % 10 == 1 && k > 1)
			t = k - 2;
		meta.recv_ns = (T0 + t) * 1000000000LL;
		snprintf(uid, sizeof uid, "m%d", k);
		a[0] = (spc_arg){ "uid", spc_cstr(uid) };
		n = msg_build(m, sizeof m, "cap-req", a, 1);
		rb.len = 0;
		if (record_encode(cc, NULL, &meta, m, n, &rb) != 0)
			goto out;
		it.data = rb.data;
		it.len = rb.len;
		if (spool_append(sp, &it, 1, &res) != 1)
			goto out;
	}
	memset(&info, 0, sizeof info);
	info.reason = SPOOL_DLQ_MANUAL;
	if (spool_dlq_put(sp, 500, &info) < 0 || spool_dlq_requeue(sp, &s500, 1) != 1)
		goto out;
	rc = 0;
out:
	if (rc)
		tap_diag("building the spool failed: %s", spool_errmsg());
	record_cctx_free(cc);
	record_buf_free(&rb);
	spool_close(sp);
	return rc;
}

/* ------------------------------------------------ the live spool */

/* One request and one response NOTIFY per pair k, as the recipe sends them
 * (cap-req: seq 2k - 1, cap-res: seq 2k on an empty spool). */
static int feed_pairs(unsigned port, unsigned first, unsigned n)
{
	uint8_t buf[4096], hello[256], h[512];
	spc_hello_opts ho = spc_hello_default(16380, "pipelining");
	spc_conn c;
	spc_frame fr;
	unsigned k;
	size_t len;

	if (spc_connect_tcp(&c, "127.0.0.1", port, 2000) < 0)
		return -1;
	len = spc_build_hello(hello, sizeof hello, &ho);
	if (spc_send(&c, hello, len, 2000) < 0 || spc_read_frame(&c, &fr, 5000) != SPC_FRAME)
		goto fail;
	for (k = first; k < first + n; k++) {
		char uid[48], path[32], query[32], body[32];
		spc_arg a[14];
		spc_msg req = { "cap-req", a, 14 }, res = { "cap-res", a, 11 };
		size_t hn;

		snprintf(uid, sizeof uid, "64134867-e132-4cdc-894b-%012u", k);
		snprintf(path, sizeof path, "/item/%u", k);
		snprintf(query, sizeof query, "id=%u", k);
		hn = hdrs_build(h, sizeof h, "host", "www.example.com", "user-agent", "t-cli-view",
		                "accept", "*/*", NULL);
		a[0] = (spc_arg){ "uid", spc_cstr(uid) };
		a[1] = (spc_arg){ "t", spc_int(SPOP_T_INT64, 1795674376901LL + k) };
		a[2] = (spc_arg){ "meth", spc_cstr("GET") };
		a[3] = (spc_arg){ "path", spc_cstr(path) };
		a[4] = (spc_arg){ "query", spc_cstr(query) };
		a[5] = (spc_arg){ "ver", spc_cstr("1.1") };
		a[6] = (spc_arg){ "src", ip4(10, 20, 0, (uint8_t)k) };
		a[7] = (spc_arg){ "sport", spc_int(SPOP_T_INT32, 50000 + k) };
		a[8] = (spc_arg){ "dst", ip4(192, 0, 2, 10) };
		a[9] = (spc_arg){ "dport", spc_int(SPOP_T_INT32, 80) };
		a[10] = (spc_arg){ "tls", spc_bool(0) };
		a[11] = (spc_arg){ "hdrs", spc_str(SPOP_T_BINARY, h, hn) };
		a[12] = (spc_arg){ "blen", spc_int(SPOP_T_INT32, 0) };
		a[13] = (spc_arg){ "body", spc_null() };
		len = spc_build_notify(buf, sizeof buf, 2 * k, 1, &req, 1);
		if (!len || spc_send(&c, buf, len, 2000) < 0 ||
		    spc_read_frame(&c, &fr, 5000) != SPC_FRAME || fr.f.type != SPOP_FRAME_ACK)
			goto fail;
		snprintf(body, sizeof body, "{\"item\":%u}", k);
		hn = hdrs_build(h, sizeof h, "content-type", "application/json", NULL);
		a[1] = (spc_arg){ "t", spc_int(SPOP_T_INT64, 1795674376950LL + k) };
		a[2] = (spc_arg){ "status", spc_int(SPOP_T_INT32, k % 7 ? 200 : 404) };
		a[3] = (spc_arg){ "ver", spc_cstr("1.1") };
		a[4] = (spc_arg){ "srv", spc_cstr("app1") };
		a[5] = (spc_arg){ "srvaddr", ip4(10, 0, 0, 1) };
		a[6] = (spc_arg){ "srvport", spc_int(SPOP_T_INT32, 8080) };
		a[7] = (spc_arg){ "hdrs", spc_str(SPOP_T_BINARY, h, hn) };
		a[8] = (spc_arg){ "blen", spc_int(SPOP_T_INT32, (int)strlen(body)) };
		a[9] = (spc_arg){ "bsize", spc_int(SPOP_T_INT64, (int64_t)strlen(body)) };
		a[10] = (spc_arg){ "body", spc_str(SPOP_T_BINARY, body, strlen(body)) };
		len = spc_build_notify(buf, sizeof buf, 2 * k + 1, 1, &res, 1);
		if (!len || spc_send(&c, buf, len, 2000) < 0 ||
		    spc_read_frame(&c, &fr, 5000) != SPC_FRAME || fr.f.type != SPOP_FRAME_ACK)
			goto fail;
	}
	spc_close(&c);
	return 0;
fail:
	spc_close(&c);
	return -1;
}

/* stat --json's number after "key": */
static long stat_num(const char *key)
{
	char k[64];
	const char *p;

	if (runf(out2, sizeof out2, "'%s' stat --json '%s'", cli, live) != 0)
		return -1;
	snprintf(k, sizeof k, "\"%s\":", key);
	p = strstr(out2, k);
	return p ? strtol(p + strlen(k), NULL, 10) : -1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the lines of s in place (for comparing sets of events); drops
 * repeated lines. Returns the new text. */
static char *sorted_lines(char *s)
{
	static char res[1 << 20];
	char *lines_[4096], *p, *save = NULL;
	size_t n = 0, i, len = 0;

	for (p = strtok_r(s, "\n", &save); p && n < 4096; p = strtok_r(NULL, "\n", &save))
		lines_[n++] = p;
	qsort(lines_, n, sizeof *lines_, cmp_str);
	res[0] = 0;
	for (i = 0; i < n; i++)
		if (i == 0 || strcmp(lines_[i], lines_[i - 1]))
			len += (size_t)snprintf(res + len, sizeof res - len, "%s\n", lines_[i]);
	return res;
}

static int make_live(char *uuid, size_t uuidlen)
{
	char log[700], url[128], err[512], cmd[256], rxpy[700];
	const char *args[] = { "--spool", live, "--log-level", "error", "--forward", url,
	                       "--retain", "1h", "--forward-max-inflight", "1",
	                       "--forward-linger", "20ms", "--threads", "1", NULL };
	struct rxp x;
	agentd d;
	int64_t t0;
	int ok = 0;
	const char *u;

	snprintf(live, sizeof live, "%s/live", tmp);
	snprintf(log, sizeof log, "%s/live.log", tmp);
	snprintf(rxpy, sizeof rxpy, "%s/tests/receiver.py", srcdir);
	if (rxp_start(&x, py, rxpy, tmp, "rx", NULL) < 0)
		return -1;
	snprintf(url, sizeof url, "http://127.0.0.1:%u/events", x.port);
	if (agentd_start(&d, exe, log, args, 10000, err, sizeof err) < 0) {
		tap_diag("spoolcapd: %s", err);
		rxp_stop(&x);
		return -1;
	}
	/* Reject the response of pair 7 (seq 14): it becomes a dead letter. */
	if (runf(out2, sizeof out2, "'%s' stat --json '%s'", cli, live) == 0 &&
	    (u = strstr(out2, "\"uuid\":\"")))
		snprintf(uuid, uuidlen, "%.36s", u + 8);
	snprintf(cmd, sizeof cmd, "reject-ids %s-14 with 400", uuid);
	if (rxp_control(&x, "%s", cmd) < 0 || feed_pairs(d.port, 1, NPAIRS) < 0)
		goto out;
	for (t0 = now_ms(); now_ms() - t0 < 30000; usleep(50000))
		if (stat_num("records") == 0 && stat_num("dead_letters") == 1)
			break;
	tap_is_int(stat_num("records"), 0, "live: the daemon delivered everything");
	tap_is_int(stat_num("dead_letters"), 1, "live: the rejected record is a dead letter");
	/* The processor now fails: the next pairs stay pending. */
	if (rxp_control(&x, "status 503") < 0 || feed_pairs(d.port, NPAIRS + 1, NPEND) < 0)
		goto out;
	/* While the daemon runs: the subcommands work beside it. */
	tap_is_int(runf(out, sizeof out, "'%s' ls '%s'", cli, live), 0,
	           "live: ls exits 0 while the daemon runs");
	tap_is_int(lines(out), 1 + 2 * (NPAIRS + NPEND), "live: ls lists every record");
	tap_is_int(runf(out, sizeof out, "'%s' dump '%s' --since 10m", cli, live), 0,
	           "live: dump --since 10m exits 0");
	tap_is_int(lines(out), 2 * (NPAIRS + NPEND) - 1,
	           "live: dump --since 10m: every queued record was captured in the last 10 min");
	ok = 1;
out:
	if (agentd_stop(&d, 15000) != 0) {
		tap_diag("spoolcapd did not stop cleanly");
		ok = 0;
	}
	rxp_stop(&x);
	if (!ok)
		agentd_dump_log(&d, 20);
	return ok ? 0 : -1;
}

/* ---------------------------------------------------------- the tests */

/* Row k of a table (the line starting with "k "), runs of spaces squeezed. */
static char *row(const char *table, unsigned k)
{
	static char sq[1024];
	char key[24];
	const char *p = table;
	size_t n = 0;

	snprintf(key, sizeof key, "%u ", k);
	/* SEQ is right-aligned: skip the padding */
	while (p && strncmp(p + strspn(p, " "), key, strlen(key)) != 0)
		p = (p = strchr(p, '\n')) ? p + 1 : NULL;
	if (p)
		p += strspn(p, " ");
	for (; p && *p && *p != '\n' && n < sizeof sq - 1; p++)
		if (*p != ' ' || (n && sq[n - 1] != ' '))
			sq[n++] = *p;
	sq[n] = 0;
	return sq;
}

static void test_ls_built(void)
{
	char want[1024], *l2;
	const char *h, *cols[] = { "TIME", "STATE", "MESSAGE", "RAW", "STORED", "UID", "METHOD",
	                           "STATUS", "PATH" };
	size_t i, off[9];
	int rc, aligned = 1;
	char *line, *save = NULL;

	rc = runf(out, sizeof out, "'%s' ls '%s' 2>'%s/ls.err'", cli, built, tmp);
	tap_is_int(rc, 1, "ls: exit 1 (seq 10 does not decode), the other rows still listed");
	tap_is_int(lines(out), 1 + NBUILT, "ls: a header and one row per record, dead letter too");
	h = out;
	tap_ok(strncmp(h, "SEQ  TIME ", 10) == 0, "ls: the header starts with SEQ and TIME");
	for (i = 0; i < 9; i++)
		off[i] = strstr(h, cols[i]) ? (size_t)(strstr(h, cols[i]) - h) : 0;
	/* every row: left-aligned columns start where their heading does,
	 * right-aligned ones (RAW, STORED, STATUS) end where it ends */
	memcpy(out2, out, strlen(out) + 1);
	for (line = strtok_r(out2, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		for (i = 0; i < 9; i++) {
			int r = i == 3 || i == 4 || i == 7;
			size_t at = r ? off[i] + strlen(cols[i]) - 1 : off[i];

			if (strlen(line) <= at || line[at] == ' ' ||
			    (r ? line[at + 1] != ' ' : line[at - 1] != ' '))
				aligned = 0;
		}
	tap_ok(aligned, "ls: every column is aligned under its heading");
	snprintf(want, sizeof want, "1 2026-01-15T08:00:00.123Z delivered cap-req %zu %zu u1 GET - /a",
	         B[1].raw_len, B[1].stored_len);
	l2 = row(out, 1);
	tap_ok(strcmp(l2, want) == 0, "ls: row 1 is seq, time (ms), state, message, raw and "
	       "stored sizes, uid, method, '-' for no status, path: %s", l2);
	l2 = row(out, 10);
	tap_ok(strncmp(l2, "10 2026-01-15T08:09:00.123Z pending (damaged) ", 46) == 0,
	       "ls: seq 10 is listed as (damaged): %s", l2);
	tap_ok(strstr(out, "dead:rejected  cap-req") != NULL, "ls: seq 8 is dead:rejected");
	runf(out2, sizeof out2, "cat '%s/ls.err'", tmp);
	tap_ok(strstr(out2, "seq 10 does not decode") != NULL,
	       "ls: ... and reported on stderr: %.*s", (int)strcspn(out2, "\n"), out2);
	tap_ok(strstr(out, " 404 ") != NULL && strstr(out, " 201 ") != NULL,
	       "ls: statuses of responses");

	/* --json */
	rc = runf(out, sizeof out, "'%s' ls --json '%s' --to 2", cli, built);
	tap_is_int(rc, 0, "ls --json --to 2 exits 0");
	snprintf(want, sizeof want, "{\"seq\":1,\"time\":\"2026-01-15T08:00:00.123000Z\","
	         "\"state\":\"delivered\",\"message\":\"cap-req\",\"raw_bytes\":%zu,"
	         "\"stored_bytes\":%zu,\"dict\":null,\"uid\":\"u1\",\"method\":\"GET\","
	         "\"status\":null,\"path\":\"/a\"}\n", B[1].raw_len, B[1].stored_len);
	tap_ok(strncmp(out, want, strlen(want)) == 0, "ls --json: record 1 exactly: %.*s",
	       (int)strcspn(out, "\n"), out);
	tap_ok(strstr(out, "\"seq\":2,") && strstr(out, "\"status\":200,\"path\":null}"),
	       "ls --json: record 2 has its status as a number");
	rc = runf(out, sizeof out, "'%s' ls --json '%s' --from 8 --to 8", cli, built);
	tap_ok(rc == 0 && strstr(out, "\"state\":\"dead\"") &&
	       strstr(out, ",\"dead\":{\"reason\":\"rejected\",\"http_status\":400,\"attempts\":2,"
	                   "\"time\":\""), "ls --json: a dead letter says why: %.*s",
	       (int)strcspn(out, "\n"), out);
	rc = runf(out, sizeof out, "'%s' ls --json '%s' --from 11 --to 11", cli, built);
	tap_ok(rc == 0 && strstr(out, "\"dict\":32768"), "ls --json: dictionary id of seq 11");
	rc = runf(out, sizeof out, "'%s' ls --json '%s' --from 10 --to 10 2>/dev/null", cli, built);
	tap_ok(rc == 1 && strstr(out, "\"message\":null") && strstr(out, "\"error\":\""),
	       "ls --json: a damaged record has an error and exit 1: %.*s",
	       (int)strcspn(out, "\n"), out);
	if (access(py, X_OK) == 0) {
		rc = runf(NULL, 0, "'%s' ls --json '%s' 2>/dev/null | '%s' -c 'import json,sys\n"
		          "n=0\nfor l in sys.stdin:\n  json.loads(l); n+=1\nassert n==%d'",
		          cli, built, py, NBUILT);
		tap_is_int(rc, 0, "ls --json: every line is valid JSON (python3)");
	}
}

static void filter_case(const char *args, const char *want_seqs, const char *what)
{
	int rc = runf(out, sizeof out, "'%s' ls --json '%s' %s 2>/dev/null", cli, built, args);

	tap_ok((rc == 0 || rc == 1) && strcmp(seqs(out), want_seqs) == 0,
	       "filter %s: %s -> [%s]", args, what, seqs(out));
}

static void test_filters(void)
{
	filter_case("--from 3 --to 5", "3,4,5", "a seq range, inclusive");
	filter_case("--from 11", "11,12", "from a seq on");
	filter_case("--to 2", "1,2", "up to a seq");
	filter_case("--since 2026-01-15T08:02:00Z", "3,4,5,6,7,8,9,10,11,12", "since, UTC");
	filter_case("--until 2026-01-15T08:02:00.123Z", "1,2", "until is exclusive (seq 3 is at "
	            "08:02:00.123)");
	filter_case("--until 2026-01-15T08:02:00.124Z", "1,2,3", "... one ms later includes it");
	filter_case("--since 2026-01-15T09:05:00+01:00", "6,7,8,9,10,11,12", "an offset");
	filter_case("--since 2026-01-15T03:05:00.000-05:00 --until 2026-01-15T08:07:00Z",
	            "6,7", "since and until, negative offset");
	filter_case("--since 2026-01-16", "", "a date alone is its midnight UTC");
	filter_case("--until 2026-01-15", "", "... before every record");
	filter_case("--since 1000w", "1,2,3,4,5,6,7,8,9,10,11,12", "an age: 1000 weeks ago");
	filter_case("--since 1h", "", "an age: nothing captured in the last hour");
	filter_case("--until 1h30m", "1,2,3,4,5,6,7,8,9,10,11,12", "an age made of two units");
	filter_case("--message cap-res", "2,4,6,9,10,12", "a message name (the damaged seq 10 "
	            "cannot be checked: it is reported)");
	filter_case("--message cap-res --from 11", "12", "a message name");
	filter_case("--message nope", "10", "no such message (only the damaged record reported)");
	filter_case("--match uid=u1 --to 9", "1,2", "an argument's exact value");
	filter_case("--match uid=u1 --match status=200 --to 9", "2", "two --match: both must hold");
	filter_case("--match status=404 --message cap-res --to 9", "6", "a number as text");
	filter_case("--match path~api --to 9", "3", "ARG~TEXT: a substring");
	filter_case("--match 'uid~u' --to 4", "1,2,3,4", "a substring in many");
	filter_case("--match uid=u --to 9", "", "exact means exact");
	filter_case("--match src=198.51.100.7 --to 9", "1", "an IPv4 address as text");
	filter_case("--match tls=true --to 9", "3", "a boolean as text");
	filter_case("--match hdrs.host=example.com --to 9", "1", "ARG.HEADER: a header of a binary block");
	filter_case("--match hdrs.HOST~example.com --to 9", "1,3", "header names ignore case");
	filter_case("--match hdrs.host=text.example --to 9", "5", "a header of a text block (req.hdrs)");
	filter_case("--match arg2=anon --to 9", "7", "argN names an unnamed argument");
	filter_case("--match query= --to 9", "", "null matches nothing, not the empty string");
	filter_case("--state pending", "5,6,7,9,10,11,12", "pending only");
	filter_case("--state delivered", "1,2,3,4", "delivered (retained) only");
	filter_case("--state dead", "8", "dead letters only");
	filter_case("--state pending,dead --to 9", "5,6,7,8,9", "a comma list");
	filter_case("--state all --match uid=u5 --to 9", "8,9", "all: the dead letter beside its partner");
	filter_case("--state pending --limit 2", "5,6", "--limit after the state");
	filter_case("--limit 3 --from 9", "9,10,11,12", "--limit counts good records only "
	            "(10 is reported, not counted)");
	filter_case("--from 8 --to 8 --state pending", "", "a dead seq is not pending");
	filter_case("--message cap-req --since 2026-01-15T08:02:00Z --until 2026-01-15T08:11:00Z "
	            "--match uid~u --state pending,delivered --limit 2", "3,5",
	            "everything at once");

	/* Records outside the seq/time bounds are not even decoded. */
	tap_is_int(runf(out, sizeof out, "'%s' dump '%s' --from 11 2>&1", cli, built), 0,
	           "dump --from 11: the damaged seq 10 is outside the range: exit 0");
	tap_is_int(runf(out, sizeof out, "'%s' dump '%s' --since 2026-01-15T08:10:00Z 2>&1",
	                cli, built), 0,
	           "dump --since after seq 10's time: it is not looked at: exit 0");
	tap_ok(strstr(out, "seq 10") == NULL, "... and not reported");

	/* many: 3,000 records, times slightly out of seq order, a requeue */
	runf(out, sizeof out, "'%s' ls --json '%s' --since 2026-01-15T08:16:40Z "
	     "--until 2026-01-15T08:33:20Z", cli, many);
	tap_is_int(lines(out), 1000, "many: --since +1000 s --until +2000 s: exactly 1000 records");
	tap_ok(strncmp(seqs(out), "1000,1002,", 10) == 0,
	       "many: ... the first is seq 1000 (time +1000 s; seq 1001 is at +999 s)");
	tap_ok(strstr(seqs(out), ",1999,2001") && !strstr(seqs(out), ",2000,"),
	       "many: ... the last is seq 2001 (time +1999 s; seq 2000 is at +2000 s)");
	runf(out, sizeof out, "'%s' ls --json '%s' --since 2026-01-15T08:06:40Z "
	     "--until 2026-01-15T08:10:00Z", cli, many);
	tap_is_int(lines(out), 200, "many: +400 s .. +600 s: 200 records, the requeued one too");
	tap_ok(strstr(seqs(out), ",3001") != NULL,
	       "many: ... the requeued record (seq 3001, captured at +499 s) is found");
	runf(out, sizeof out, "'%s' ls --json '%s' --from 2990 --limit 5", cli, many);
	tap_ok(strcmp(seqs(out), "2990,2991,2992,2993,2994") == 0, "many: --from 2990 --limit 5");
	runf(out, sizeof out, "'%s' dump '%s' --match uid=m2500", cli, many);
	tap_ok(lines(out) == 1 && strstr(out, "\"seq\":2500,"), "many: --match finds one in 3000");
}

static void test_cat(const char *uuid_built)
{
	char want[4096], path[700], dpath[700];
	uint8_t got[4096];
	FILE *f;
	size_t n;
	int rc;

	(void)uuid_built;
	rc = runf(out, sizeof out, "'%s' cat '%s' 2", cli, built);
	tap_is_int(rc, 0, "cat 2 exits 0");
	snprintf(want, sizeof want, "\n  \"seq\": 2,\n  \"time\": \"2026-01-15T08:01:00.123000Z\",\n"
	         "  \"message\": \"cap-res\",\n  \"spoe\": {\n    \"engine\": \"eng-1\",\n"
	         "    \"stream\": 102,\n    \"frame\": 1\n  },\n  \"args\": {\n"
	         "    \"uid\": \"u1\",\n    \"status\": 200,\n    \"ver\": \"1.1\",\n"
	         "    \"srv\": \"s1\",\n    \"srvaddr\": \"10.0.0.1\",\n"
	         "    \"hdrs\": [\n      [\"content-type\", \"text/plain\"],\n"
	         "      [\"set-cookie\", \"sid=abc; Path=/\"]\n    ],\n"
	         "    \"blen\": 5,\n    \"bsize\": 5,\n    \"body\": \"hello\"\n  }\n}\n");
	tap_ok(strncmp(out, "{\n  \"id\": \"", 11) == 0 && strstr(out, want) != NULL,
	       "cat: the event pretty-printed, header pairs on one line each");
	if (access(py, X_OK) == 0) {
		rc = runf(NULL, 0, "a=$('%s' cat '%s' 3 | '%s' -c 'import json,sys; "
		          "print(json.dumps(json.load(sys.stdin),separators=(\",\",\":\")))'); "
		          "b=$('%s' dump '%s' --from 3 --to 3); test \"$a\" = \"$b\"",
		          cli, built, py, cli, built);
		tap_is_int(rc, 0, "cat: the pretty JSON is the dump line's object (python3)");
	}
	rc = runf(out, sizeof out, "'%s' cat '%s' 4 --compact", cli, built);
	runf(out2, sizeof out2, "'%s' dump '%s' --from 4 --to 4", cli, built);
	tap_ok(rc == 0 && strcmp(out, out2) == 0, "cat --compact is the dump line");
	rc = runf(out, sizeof out, "'%s' cat '%s' 8 --compact", cli, built);
	tap_ok(rc == 0 && strstr(out, "\"seq\":8,") && strstr(out, "\"meth\":\"DELETE\""),
	       "cat shows a dead letter too");
	rc = runf(out, sizeof out, "'%s' cat '%s' 1 2 --compact", cli, built);
	tap_ok(rc == 0 && lines(out) == 2, "cat with two seqs prints both");
	rc = runf(out, sizeof out, "'%s' cat '%s' 10 2>&1", cli, built);
	tap_ok(rc == 1 && strstr(out, "seq 10 does not decode"),
	       "cat of the damaged record: exit 1 and why: %.*s", (int)strcspn(out, "\n"), out);
	rc = runf(out, sizeof out, "'%s' cat '%s' 99 2>&1", cli, built);
	tap_ok(rc == 1 && strstr(out, "seq 99 does not exist yet (the newest is 12)"),
	       "cat 99: exit 1, not written yet: %.*s", (int)strcspn(out, "\n"), out);

	/* --raw through the zstd CLI */
	if (!zstd_cli[0]) {
		tap_skip(6, "no zstd command (install zstd) to decode cat --raw");
		return;
	}
	snprintf(path, sizeof path, "%s/2.zst", tmp);
	rc = runf(out, sizeof out, "'%s' cat '%s' 2 --raw > '%s' && %s -q -d -c '%s' > '%s.out'",
	          cli, built, path, zstd_cli, path, path);
	f = (snprintf(want, sizeof want, "%s.out", path), fopen(want, "rb"));
	n = f ? fread(got, 1, sizeof got, f) : 0;
	if (f)
		fclose(f);
	tap_ok(rc == 0 && n == B[2].payload_len && memcmp(got, B[2].payload, n) == 0,
	       "cat --raw 2 | zstd -d: the payload record.h documents, byte for byte (%zu)", n);
	snprintf(path, sizeof path, "%s/11.zst", tmp);
	snprintf(dpath, sizeof dpath, "%s/dict.32768", tmp);
	rc = runf(out, sizeof out, "'%s' cat '%s' 11 --raw 2>&1 > '%s'", cli, built, path);
	tap_ok(rc == 0 && strstr(out, "dictionary 32768") && strstr(out, "--dict 32768"),
	       "cat --raw of a dictionary record says which dictionary and how: %.*s",
	       (int)strcspn(out, "\n"), out);
	rc = runf(NULL, 0, "%s -q -d -c '%s' >/dev/null 2>&1", zstd_cli, path);
	tap_ok(rc != 0, "... zstd -d without the dictionary fails");
	rc = runf(out, sizeof out, "'%s' cat '%s' --dict 32768 > '%s' && %s -q -d -D '%s' -c '%s' "
	          "> '%s.out'", cli, built, dpath, zstd_cli, dpath, path, path);
	f = (snprintf(want, sizeof want, "%s.out", path), fopen(want, "rb"));
	n = f ? fread(got, 1, sizeof got, f) : 0;
	if (f)
		fclose(f);
	tap_ok(rc == 0 && n == B[11].payload_len && memcmp(got, B[11].payload, n) == 0,
	       "cat --dict 32768 + zstd -d -D: the payload of seq 11 byte for byte");
	rc = runf(out, sizeof out, "'%s' cat '%s' --dict 40000 2>&1 >/dev/null", cli, built);
	tap_ok(rc == 1 && strstr(out, "no dictionary 40000"), "cat --dict of an unknown id: "
	       "exit 1: %.*s", (int)strcspn(out, "\n"), out);
	/* a terminal: python3's pty gives the command one */
	if (access(py, X_OK) == 0) {
		rc = runf(out, sizeof out, "'%s' -c 'import os,pty,sys; "
		          "sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))' "
		          "'%s' cat '%s' 2 --raw 2>&1", py, cli, built);
		tap_ok(rc == 2 && strstr(out, "refusing to write zstd frames to a terminal"),
		       "cat --raw to a terminal is refused (exit 2): %.*s",
		       (int)strcspn(out, "\r\n"), out);
	} else {
		tap_skip(1, "no python3 for a pty");
	}
}

static void test_dump_export(void)
{
	char path[700], expect[4096];
	int rc;

	/* dump: every good record of the queue, the damaged one reported */
	rc = runf(out, sizeof out, "'%s' dump '%s' 2>'%s/dump.err'", cli, built, tmp);
	tap_is_int(rc, 1, "dump of the built spool: exit 1 (seq 10)");
	tap_ok(strcmp(seqs(out), "1,2,3,4,5,6,7,9,11,12") == 0,
	       "dump: the queue (pending and delivered), no dead letter, seq 10 skipped: [%s]",
	       seqs(out));
	runf(out2, sizeof out2, "cat '%s/dump.err'", tmp);
	tap_ok(strstr(out2, "seq 10 skipped") != NULL, "dump: says which record was skipped");
	tap_ok(strstr(out, "\"args\":{\"uid\":\"u2\",\"status\":201,\"ver\":\"2.0\",\"bsize\":10,"
	                   "\"body\":{\"base64\":\"/wB4\"}}}\n") != NULL,
	       "dump: event 4 as design.md renders it (base64 body)");

	/* export ndjson == dump */
	snprintf(path, sizeof path, "%s/e.ndjson", tmp);
	rc = runf(NULL, 0, "'%s' export '%s' --out '%s' 2>/dev/null", cli, built, path);
	tap_is_int(rc, 1, "export ndjson: exit 1 (seq 10), file written anyway");
	runf(out2, sizeof out2, "cat '%s'", path);
	tap_ok(strcmp(out, out2) == 0, "export ndjson == dump, byte for byte");
	rc = runf(out2, sizeof out2, "stat -c %%a '%s'", path);
	tap_ok(rc == 0 && strcmp(out2, "600\n") == 0, "export: the file has mode 0600");
	rc = runf(out2, sizeof out2, "ls -a '%s' | grep -c '^\\.e\\.ndjson' ", tmp);
	tap_ok(atoi(out2) == 0, "export: no temporary file left beside it");
	if (zstd_cli[0]) {
		snprintf(path, sizeof path, "%s/e.ndjson.zst", tmp);
		rc = runf(NULL, 0, "'%s' export '%s' --out '%s' --state all --to 9", cli, built, path);
		tap_is_int(rc, 0, "export to .zst exits 0");
		runf(out2, sizeof out2, "%s -q -d -c '%s'", zstd_cli, path);
		runf(out, sizeof out, "'%s' dump '%s' --state all --to 9", cli, built);
		tap_ok(strcmp(out, out2) == 0 && lines(out) == 9,
		       "export .zst: zstd -d gives the dump's bytes");
		rc = runf(out2, sizeof out2, "head -c 4 '%s' | od -An -tx1", path);
		tap_ok(strstr(out2, "28 b5 2f fd") != NULL, "export .zst starts with zstd's magic");
	} else {
		tap_skip(3, "no zstd command");
	}
	rc = runf(out, sizeof out, "'%s' export '%s' --out - --format ndjson --to 2", cli, built);
	tap_ok(rc == 0 && lines(out) == 2, "export --out - writes to standard output");

	/* A failed export leaves the old file alone. */
	snprintf(path, sizeof path, "%s/keep.ndjson", tmp);
	write_file(path, "old\n");
	rc = runf(NULL, 0, "'%s' export '%s' --out '%s' --since nonsense 2>/dev/null", cli,
	          built, path);
	runf(out2, sizeof out2, "cat '%s'", path);
	tap_ok(rc == 2 && strcmp(out2, "old\n") == 0, "a refused export leaves the file alone");

	/* HAR */
	if (access(py, X_OK) != 0) {
		tap_skip(4, "no python3 to check HAR");
		return;
	}
	snprintf(path, sizeof path, "%s/built.har", tmp);
	rc = runf(NULL, 0, "'%s' export '%s' --out '%s' 2>/dev/null", cli, built, path);
	tap_is_int(rc, 1, "export har (by the file name): exit 1 (seq 10)");
	snprintf(expect, sizeof expect, "{\"entries\": 6, \"match\": ["
	    "{\"startedDateTime\": \"2026-01-15T08:00:00.123Z\", \"time\": 60000,"
	    " \"request\": {\"method\": \"GET\", \"url\": \"http://example.com/a?x=1&y=%%41\","
	    "  \"httpVersion\": \"HTTP/1.1\", \"cookies\": [{\"name\": \"a\", \"value\": \"1\"},"
	    "  {\"name\": \"b\", \"value\": \"2\"}], \"queryString\": [{\"name\": \"x\", \"value\": \"1\"},"
	    "  {\"name\": \"y\", \"value\": \"A\"}], \"headers\": [{\"name\": \"host\", \"value\":"
	    "  \"example.com\"}, {\"name\": \"cookie\", \"value\": \"a=1; b=2\"}, {\"name\":"
	    "  \"user-agent\", \"value\": \"curl/8.0\"}], \"headersSize\": -1, \"bodySize\": 0},"
	    " \"response\": {\"status\": 200, \"statusText\": \"OK\", \"httpVersion\": \"HTTP/1.1\","
	    "  \"cookies\": [{\"name\": \"sid\", \"value\": \"abc\"}], \"content\": {\"size\": 5,"
	    "  \"mimeType\": \"text/plain\", \"text\": \"hello\"}, \"redirectURL\": \"\", \"bodySize\": 5},"
	    " \"timings\": {\"send\": 0, \"wait\": 60000, \"receive\": 0},"
	    " \"serverIPAddress\": \"10.0.0.1\", \"_spoolcap\": {\"uid\": \"u1\", \"paired\": true,"
	    "  \"request_seq\": 1, \"response_seq\": 2, \"client\": \"198.51.100.7:40001\","
	    "  \"server\": \"s1\"}},"
	    "{\"request\": {\"method\": \"POST\", \"url\": \"https://api.example.com/api/v2/events\","
	    "  \"httpVersion\": \"HTTP/2.0\", \"postData\": {\"mimeType\": \"application/json\","
	    "  \"text\": \"{\\\"order_id\\\":6133}\"}, \"bodySize\": 17},"
	    " \"response\": {\"status\": 201, \"statusText\": \"Created\", \"content\": {\"size\": 10,"
	    "  \"mimeType\": \"x-unknown\", \"text\": \"/wB4\", \"encoding\": \"base64\","
	    "  \"comment\": \"truncated: 3 of 10 bytes captured\"}}},"
	    "{\"request\": {\"url\": \"http://text.example/missing\", \"headers\": [{\"name\": \"Host\","
	    "  \"value\": \"text.example\"}, {\"name\": \"Accept\", \"value\": \"*/*\"}]},"
	    " \"response\": {\"status\": 0}, \"comment\": \"spoolcap: no response was captured for"
	    " this request\", \"_spoolcap\": {\"uid\": \"u3\", \"paired\": false, \"missing\":"
	    " \"response\", \"request_seq\": 5, \"response_seq\": null}},"
	    "{\"request\": {\"method\": \"\", \"url\": \"about:blank\"}, \"response\": {\"status\": 404,"
	    "  \"statusText\": \"Not Found\"}, \"_spoolcap\": {\"uid\": \"u4\", \"paired\": false,"
	    "  \"missing\": \"request\", \"request_seq\": null, \"response_seq\": 6}},"
	    "{\"response\": {\"status\": 204}, \"_spoolcap\": {\"uid\": \"u5\", \"missing\": \"request\","
	    "  \"response_seq\": 9}},"
	    "{\"request\": {\"method\": \"PUT\", \"url\": \"http://unknown/dict\"},"
	    " \"response\": {\"status\": 500, \"statusText\": \"Internal Server Error\"},"
	    " \"_spoolcap\": {\"uid\": \"u6\", \"paired\": true}}]}");
	snprintf(out2, sizeof out2, "%s/built.expect", tmp);
	write_file(out2, expect);
	rc = runf(out, sizeof out, "'%s' '%s/tests/har-check.py' '%s' --expect '%s'", py, srcdir,
	          path, out2);
	tap_ok(rc == 0, "HAR of the built spool: HAR 1.2 structure, 6 entries paired by uid, "
	       "unpaired ones kept and marked, other events left out: %.*s",
	       (int)strcspn(out, "\n"), out);
	if (rc)
		tap_diag("%s", out);
	rc = runf(out, sizeof out, "'%s' export '%s' --out '%s' --format har --state all "
	          "--match uid=u5 --to 9 && '%s' '%s/tests/har-check.py' '%s'", cli, built, path, py,
	          srcdir, path);
	runf(out2, sizeof out2, "cat '%s'", path);
	tap_ok(rc == 0 && strstr(out2, "\"paired\":true,\"request_seq\":8,\"response_seq\":9"),
	       "HAR --state all: the dead-lettered request pairs with its response");
}

static void test_live(const char *uuid)
{
	char path[700], events[700], expect[1024];
	int rc;

	(void)uuid;
	snprintf(events, sizeof events, "%s/rx.events", tmp);
	rc = runf(out, sizeof out, "'%s' dump '%s' --state delivered", cli, live);
	tap_is_int(rc, 0, "live: dump --state delivered exits 0");
	tap_is_int(lines(out), 2 * NPAIRS - 1, "live: every delivered record (one was rejected)");
	runf(out2, sizeof out2, "cat '%s'", events);
	{
		char *sorted = sorted_lines(out);     /* a static buffer */

		memmove(out, sorted, strlen(sorted) + 1);
	}
	tap_ok(strcmp(out, sorted_lines(out2)) == 0 && lines(out) == 2 * NPAIRS - 1,
	       "live: dump == the events the receiver got from the daemon, byte for byte");
	rc = runf(out, sizeof out, "'%s' dump '%s'", cli, live);
	tap_ok(rc == 0 && lines(out) == 2 * (NPAIRS + NPEND) - 1,
	       "live: dump (default state): delivered and pending, no dead letter");
	rc = runf(out, sizeof out, "'%s' ls '%s' --state dead", cli, live);
	tap_ok(rc == 0 && lines(out) == 2 && !strncmp(row(out, 14), "14 ", 3) &&
	       strstr(row(out, 14), " dead:rejected cap-res "),
	       "live: ls --state dead: seq 14, rejected");
	rc = runf(out, sizeof out, "'%s' ls '%s' --state pending", cli, live);
	tap_is_int(lines(out), 1 + 2 * NPEND, "live: ls --state pending: the pairs after the outage");
	rc = runf(out, sizeof out, "'%s' ls '%s' --until 10m", cli, live);
	tap_ok(rc == 0 && lines(out) == 1, "live: --until 10m: nothing is older than 10 minutes");
	if (access(py, X_OK) != 0) {
		tap_skip(1, "no python3");
		return;
	}
	snprintf(path, sizeof path, "%s/live.har", tmp);
	snprintf(expect, sizeof expect, "{\"entries\": %d, \"match\": [{\"request\": {\"method\":"
	         " \"GET\", \"url\": \"http://www.example.com/item/1?id=1\", \"queryString\":"
	         " [{\"name\": \"id\", \"value\": \"1\"}]}, \"response\": {\"status\": 200,"
	         " \"content\": {\"mimeType\": \"application/json\", \"text\": \"{\\\"item\\\":1}\"}},"
	         " \"serverIPAddress\": \"10.0.0.1\", \"_spoolcap\": {\"paired\": true,"
	         " \"request_seq\": 1, \"response_seq\": 2, \"client\": \"10.20.0.1:50001\"}}]}",
	         NPAIRS + NPEND);
	snprintf(out2, sizeof out2, "%s/live.expect", tmp);
	write_file(out2, expect);
	rc = runf(out, sizeof out, "'%s' export '%s' --state all --out '%s.zst' && "
	          "%s -q -d -c '%s.zst' > '%s' && '%s' '%s/tests/har-check.py' '%s' --expect '%s'",
	          cli, live, path, zstd_cli[0] ? zstd_cli : "zstd", path, path, py, srcdir, path,
	          out2);
	tap_ok(rc == 0 && strstr(out, "ok: 25 entries"),
	       "live: HAR (.har.zst) of the daemon's capture: every pair, checked: %.*s",
	       (int)strcspn(out, "\n"), out);
	runf(out, sizeof out, "grep -c '\"paired\":false' '%s'", path);
	tap_is_int(atoi(out), 0, "live: no unpaired entry");
}

static void errors(void)
{
	static const struct { const char *args, *says; } bad[] = {
		{ "ls %s --from x", "--from" },
		{ "ls %s --to 0", "start at 1" },
		{ "ls %s --from 5 --to 3", "--from 5 is above --to 3" },
		{ "ls %s --since yesterday", "RFC 3339" },
		{ "ls %s --since 2026-13-01T00:00:00Z", "no such date" },
		{ "ls %s --since 2026-02-29", "no such date" },
		{ "ls %s --since 2026-11-26T25:00:00Z", "no such time" },
		{ "ls %s --since 2026-11-26T08:00:00", "without a zone" },
		{ "ls %s --since 2026-11-26T08:00:00Zjunk", "RFC 3339" },
		{ "ls %s --until 10", "needs a unit" },
		{ "ls %s --until 10y", "RFC 3339" },
		{ "ls %s --since 2h --until 3h", "not before --until" },
		{ "ls %s --match foo", "ARG=VALUE" },
		{ "ls %s --match =x", "name is empty" },
		{ "ls %s --match .host=x", "ARG.HEADER" },
		{ "ls %s --message ''", "--message" },
		{ "ls %s --state bogus", "--state" },
		{ "ls %s --state pending,", "--state" },
		{ "ls %s --limit -1", "--limit" },
		{ "ls %s --bogus", "usage" },
		{ "ls", "exactly one spool directory" },
		{ "cat %s", "at least one sequence number" },
		{ "cat %s 0", "start at 1" },
		{ "cat %s x", "SEQ" },
		{ "cat %s 1 --dict 32768", "no sequence number with --dict" },
		{ "dump %s --state nope", "--state" },
		{ "export %s", "--out FILE is required" },
		{ "export %s --out x --format xml", "--format" },
		{ "export %s --out /nonexistent-dir/x.ndjson", "/nonexistent-dir/x.ndjson" },
		{ "export %s --out /tmp", "is a directory" },
	};
	size_t i;
	int rc;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char args[1024];
		const char *at = strstr(bad[i].args, "%s");

		/* "%s" in args stands for the spool directory */
		if (at)
			snprintf(args, sizeof args, "%.*s'%s'%s", (int)(at - bad[i].args),
			         bad[i].args, built, at + 2);
		else
			snprintf(args, sizeof args, "%s", bad[i].args);
		rc = runf(out, sizeof out, "'%s' %s 2>&1", cli, args);
		tap_ok(rc == 2 && strstr(out, bad[i].says) != NULL, "'%s': exit 2 (%d), says "
		       "'%s': %.*s", bad[i].args, rc, bad[i].says, (int)strcspn(out, "\n"), out);
	}
	rc = runf(out, sizeof out, "'%s' ls '%s/nonexistent' 2>&1", cli, tmp);
	tap_ok(rc == 2 && strstr(out, "nonexistent"), "ls of a missing directory: exit 2: %.*s",
	       (int)strcspn(out, "\n"), out);
	rc = runf(out, sizeof out, "mkdir -p '%s/empty' && '%s' export '%s/empty' --out - 2>&1",
	          tmp, cli, tmp);
	tap_ok(rc == 2 && strstr(out, "spool"), "export of a directory that is not a spool: "
	       "exit 2: %.*s", (int)strcspn(out, "\n"), out);
	rc = runf(out, sizeof out, "'%s' cat '%s/data.mdb' 1 2>&1", cli, built);
	tap_is_int(rc, 2, "cat of a regular file: exit 2");
	rc = runf(out, sizeof out, "'%s' ls '%s' --message nope 2>/dev/null --state delivered",
	          cli, built);
	tap_ok(rc == 0 && lines(out) == 1, "ls with nothing matching: exit 0, the header only");
	{
		static const char *cmds[] = { "ls", "cat", "dump", "export" };
		static const char *opts[] = { "--state", "--raw", "--match", "--format" };

		for (i = 0; i < 4; i++) {
			rc = runf(out, sizeof out, "'%s' %s --help", cli, cmds[i]);
			tap_ok(rc == 0 && strstr(out, opts[i]) && strstr(out, "usage: spoolcap"),
			       "%s --help: exit 0, describes %s", cmds[i], opts[i]);
		}
	}
	rc = runf(out, sizeof out, "'%s' --help", cli);
	tap_ok(rc == 0 && strstr(out, "  ls ") && strstr(out, "  cat ") && strstr(out, "  export "),
	       "spoolcap --help lists ls, cat and export");
}

int main(int argc, char **argv)
{
	const char *top = getenv("top_srcdir"), *p = getenv("PYTHON3");
	char uuid[64] = "";

	(void)argc;
	snprintf(py, sizeof py, "%s", p && *p ? p : "/usr/bin/python3");
	if (top && *top)
		snprintf(srcdir, sizeof srcdir, "%s", top);
	else
		snprintf(srcdir, sizeof srcdir, "%.*s/..",
		         (int)(strrchr(argv[0], '/') ? strrchr(argv[0], '/') - argv[0] : 1),
		         strrchr(argv[0], '/') ? argv[0] : ".");
	snprintf(out, sizeof out, "%s/tests/har-check.py", srcdir);
	if (access(out, R_OK) != 0) {
		printf("1..0 # SKIP %s not found (set top_srcdir)\n", out);
		return 0;
	}
	if (!mkdtemp(tmp)) {
		printf("1..0 # SKIP cannot create a temporary directory\n");
		return 0;
	}
	if (runf(NULL, 0, "command -v zstd >/dev/null") == 0)
		snprintf(zstd_cli, sizeof zstd_cli, "zstd");
	else
		tap_diag("no zstd command: the cat --raw and .zst checks are skipped");
	agentd_exe(argv[0], exe, sizeof exe);
	agentd_cli_exe(exe, cli, sizeof cli);

	tap_ok(make_built() == 0, "built spool: 12 records, a dictionary, retention, a dead "
	       "letter, a damaged record");
	tap_ok(make_many() == 0, "many spool: 3000 records, a requeued dead letter");
	test_ls_built();
	test_filters();
	test_cat(uuid);
	test_dump_export();
	if (access(py, X_OK) == 0 && make_live(uuid, sizeof uuid) == 0)
		test_live(uuid);
	else
		tap_ok(0, "live spool (spoolcapd + tests/receiver.py with %s)", py);
	errors();

	agentd_cleanup_dir(tmp, tap_failed);
	return tap_done(0);
}
