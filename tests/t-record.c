/* t-record.c -- the stored record format: hand-computed layout, round trips
 * for every SPOP type with and without compression and dictionaries,
 * dictionary training/loading/switching (also across threads), and
 * corruption detection: every single-byte flip and every truncation of a
 * record either fails with an error or decodes to the original payload. */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <zstd.h>

#include "spoolcap/record.h"
#include "tap.h"

/* One message with every SPOP type, a header block and non-UTF-8 bytes,
 * written byte by byte (same as t-event.c). */
static const uint8_t msg[] = {
	0x03, 'r', 'e', 'q', 0x11,
	0x03, 'u', 'i', 'd', 0x08, 0x02, 'a', 'b',
	0x02, 'o', 'k', 0x11,
	0x02, 'n', 'f', 0x01,
	0x01, 'n', 0x00,
	0x01, 'i', 0x04, 0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0x0e,
	0x03, 's', '3', '2', 0x02, 0xf0, 0x95, 0xe7, 0x02,
	0x01, 'u', 0x03, 0xef,
	0x03, 'u', '6', '4', 0x05, 0xf0, 0x80, 0x00,
	0x03, 's', 'r', 'c', 0x06, 192, 168, 0, 1,
	0x02, 'v', '6', 0x07, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
	0x00, 0x08, 0x01, 'x',
	0x04, 'b', 'o', 'd', 'y', 0x09, 0x02, 0xff, 0xfe,
	0x04, 'h', 'd', 'r', 's', 0x09, 0x1e,
	0x04, 'h', 'o', 's', 't', 0x0b, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
	0x06, 'a', 'c', 'c', 'e', 'p', 't', 0x03, '*', '/', '*', 0x00, 0x00,
	0x03, 'u', 'i', 'd', 0x08, 0x01, 'c',
	0x01, 'q', 0x08, 0x03, 'a', '"', '\n',
	0x07, 'r', 'e', 's', 'h', 'd', 'r', 's', 0x09, 0x03, 0x01, 'x', 0x00,
	0x01, 't', 0x08, 0x02, 0xc3, 0xa9,
};

/* The payload record_encode must build for meta() + msg. */
static const uint8_t payload_hdr[] = {
	0x01, 0x00, 0x05, 0x00,
	0x02, 0x00, 0x00, 0x00,
	0x15, 0xd7, 0x92, 0xf1, 0x35, 0x81, 0xeb, 0x18,
	0x05, 0, 0, 0, 0, 0, 0, 0,
	0x07, 0, 0, 0, 0, 0, 0, 0,
	'e', 'n', 'g', '-', '1',
};

static record_meta meta(void)
{
	record_meta m;

	memset(&m, 0, sizeof m);
	m.recv_ns = 1795670945123456789LL;
	m.sid = 5;
	m.fid = 7;
	m.msg_index = 2;
	m.engine_id.ptr = (const uint8_t *)"eng-1";
	m.engine_id.len = 5;
	return m;
}

static uint8_t expected_payload[sizeof payload_hdr + sizeof msg];

/* ---- dictionary lookup for the decoder ---- */
struct dicts {
	const record_dict *d[4];
	int n;
};

static const record_dict *lookup(void *arg, uint32_t id)
{
	struct dicts *ds = arg;
	int i;

	for (i = 0; i < ds->n; i++)
		if (ds->d[i] && record_dict_id(ds->d[i]) == id)
			return ds->d[i];
	return NULL;
}

/* A lookup that returns the same dictionary whatever the id. */
static const record_dict *lookup_any(void *arg, uint32_t id)
{
	(void)id;
	return arg;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_crc(void)
{
	tap_is_int(record_crc32c(0, "123456789", 9), 0xE3069283u, "CRC-32C check value");
	tap_is_int(record_crc32c(0, "", 0), 0, "CRC-32C of nothing");
	tap_is_int(record_crc32c(record_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u,
	           "CRC-32C chains");
}

static void test_errors(void)
{
	int e, distinct = 1, j;

	for (e = 0; e >= RECORD_EINVAL; e--) {
		for (j = 0; j > e; j--)
			if (!strcmp(record_errname(e), record_errname(j)))
				distinct = 0;
		if (!record_strerror(e)[0])
			distinct = 0;
	}
	tap_ok(distinct, "every error has a distinct name and a text");
	tap_ok(!strcmp(record_errname(RECORD_ECHECKSUM), "checksum"), "errname checksum");
	tap_ok(!strcmp(record_errname(-100), "unknown"), "errname of an unknown code");
}

/* Raw (level 0) records can be written out entirely by hand. */
static void test_raw_layout(void)
{
	record_cctx *c = record_cctx_new(0, NULL, 0);
	record_dctx *d = record_dctx_new();
	record_meta m = meta();
	record_buf out = { 0 }, raw = { 0 };
	uint8_t want[RECORD_HDR_SIZE + sizeof expected_payload];
	uint32_t crc = record_crc32c(0, expected_payload, sizeof expected_payload);
	record_hdr h;
	record_view v;
	int rc;

	memcpy(want, "SP\x01\x00" "\x00\x00\x00\x00", 8);
	want[8] = (uint8_t)sizeof expected_payload;
	want[9] = want[10] = want[11] = 0;
	want[12] = (uint8_t)crc;
	want[13] = (uint8_t)(crc >> 8);
	want[14] = (uint8_t)(crc >> 16);
	want[15] = (uint8_t)(crc >> 24);
	memcpy(want + 16, "\x15\xd7\x92\xf1\x35\x81\xeb\x18", 8);
	memcpy(want + RECORD_HDR_SIZE, expected_payload, sizeof expected_payload);

	rc = record_encode(c, NULL, &m, msg, sizeof msg, &out);
	tap_is_int(rc, 0, "raw: encode");
	tap_is_mem(out.data, out.len, want, sizeof want, "raw: stored bytes exactly as laid out by hand");
	rc = record_decode(d, out.data, out.len, NULL, NULL, &raw, &h, &v, NULL, 0);
	tap_is_int(rc, 0, "raw: decode");
	tap_is_mem(raw.data, raw.len, expected_payload, sizeof expected_payload, "raw: payload back");
	tap_ok(h.flags == 0 && h.dict_id == 0 && h.time_ns == m.recv_ns && h.check == crc,
	       "raw: header fields");
	tap_ok(v.recv_ns == m.recv_ns && v.sid == 5 && v.fid == 7 && v.msg_index == 2 &&
	       v.engine_id.len == 5 && !memcmp(v.engine_id.ptr, "eng-1", 5), "raw: view context");
	tap_is_mem(v.msg.raw.ptr, v.msg.raw.len, msg, sizeof msg, "raw: message bytes identical");

	/* A payload flip is caught by the CRC. */
	out.data[RECORD_HDR_SIZE + 40] ^= 0x20;
	rc = record_decode(d, out.data, out.len, NULL, NULL, &raw, NULL, NULL, NULL, 0);
	tap_is_int(rc, RECORD_ECHECKSUM, "raw: flipped payload byte -> ECHECKSUM");
	record_buf_free(&out);
	record_buf_free(&raw);
	record_cctx_free(c);
	record_dctx_free(d);
}

/* Checks that arg i of the decoded message has the expected type. */
static void test_types(const record_view *v, const char *what)
{
	static const uint8_t types[17] = {
		SPOP_T_STRING, SPOP_T_BOOL, SPOP_T_BOOL, SPOP_T_NULL, SPOP_T_INT64,
		SPOP_T_INT32, SPOP_T_UINT32, SPOP_T_UINT64, SPOP_T_IPV4, SPOP_T_IPV6,
		SPOP_T_STRING, SPOP_T_BINARY, SPOP_T_BINARY, SPOP_T_STRING, SPOP_T_STRING,
		SPOP_T_BINARY, SPOP_T_STRING,
	};
	spop_iter it = v->msg.args;
	spop_str name;
	spop_data val;
	int i = 0, ok = 1;

	while (spop_arg_next(&it, &name, &val) > 0) {
		if (i >= 17 || val.type != types[i])
			ok = 0;
		if (i == 4 && val.v.i != -1)
			ok = 0;
		if (i == 7 && val.v.u != 2288)
			ok = 0;
		if (i == 11 && (val.v.s.len != 2 || val.v.s.ptr[0] != 0xff))
			ok = 0;
		i++;
	}
	tap_ok(ok && i == 17, "%s: all 17 args decode with their types and values", what);
}

static void test_zstd(int level)
{
	char what[32], err[256];
	record_cctx *c = record_cctx_new(level, err, sizeof err);
	record_dctx *d = record_dctx_new();
	record_meta m = meta();
	record_buf out = { 0 }, raw = { 0 };
	uint8_t plain[sizeof expected_payload];
	const uint8_t *f;
	record_hdr h;
	record_view v;
	size_t n;
	int rc;

	snprintf(what, sizeof what, "zstd level %d", level);
	tap_ok(c != NULL, "%s: context", what);
	rc = record_encode(c, NULL, &m, msg, sizeof msg, &out);
	tap_is_int(rc, 0, "%s: encode", what);
	f = out.data + RECORD_HDR_SIZE;
	tap_ok(!memcmp(out.data, "SP\x01\x01" "\x00\x00\x00\x00", 8) &&
	       le32(out.data + 8) == sizeof expected_payload && le32(out.data + 12) == 0 &&
	       !memcmp(out.data + 16, "\x15\xd7\x92\xf1\x35\x81\xeb\x18", 8),
	       "%s: header = SP 01 01, dict 0, raw length, check 0, time", what);
	tap_ok(!memcmp(f, "\x28\xb5\x2f\xfd", 4), "%s: a standard zstd frame follows", what);
	tap_ok((f[4] & 0x04) != 0, "%s: frame has the content checksum flag", what);
	/* Decoded by plain libzstd, not by our decoder. */
	n = ZSTD_decompress(plain, sizeof plain, f, out.len - RECORD_HDR_SIZE);
	tap_is_mem(plain, ZSTD_isError(n) ? 0 : n, expected_payload, sizeof expected_payload,
	           "%s: libzstd alone decodes the frame to the hand-built payload", what);
	{
		size_t pl;
		const void *pp = record_cctx_payload(c, &pl);

		tap_is_mem(pp, pl, expected_payload, sizeof expected_payload,
		           "%s: record_cctx_payload gives the raw payload", what);
	}
	rc = record_decode(d, out.data, out.len, NULL, NULL, &raw, &h, &v, err, sizeof err);
	tap_is_int(rc, 0, "%s: decode", what);
	tap_is_mem(v.msg.raw.ptr, v.msg.raw.len, msg, sizeof msg, "%s: message bytes identical", what);
	tap_ok(h.flags == RECORD_F_ZSTD && h.raw_len == sizeof expected_payload &&
	       h.stored_len == out.len - RECORD_HDR_SIZE, "%s: decoded header", what);
	test_types(&v, what);
	record_buf_free(&out);
	record_buf_free(&raw);
	record_cctx_free(c);
	record_dctx_free(d);
}

static void test_append_and_flags(void)
{
	record_cctx *c = record_cctx_new(1, NULL, 0);
	record_dctx *d = record_dctx_new();
	record_meta m = meta();
	record_buf out = { 0 }, raw = { 0 };
	size_t first;
	record_hdr h;
	record_view v;
	int rc;

	record_encode(c, NULL, &m, msg, sizeof msg, &out);
	first = out.len;
	m.truncated = 1;
	m.engine_id.len = 0;
	m.msg_index = 9;
	rc = record_encode(c, NULL, &m, msg, sizeof msg, &out);
	tap_ok(rc == 0 && out.len > first, "encode appends a second record");
	rc = record_decode(d, out.data, first, NULL, NULL, &raw, &h, &v, NULL, 0);
	tap_ok(rc == 0 && v.msg_index == 2 && !(h.flags & RECORD_F_TRUNCATED), "first record decodes");
	rc = record_decode(d, out.data + first, out.len - first, NULL, NULL, &raw, &h, &v, NULL, 0);
	tap_ok(rc == 0 && v.msg_index == 9 && v.engine_id.len == 0 && (h.flags & RECORD_F_TRUNCATED),
	       "second record decodes: empty engine id, truncated flag");
	record_buf_free(&out);
	record_buf_free(&raw);
	record_cctx_free(c);
	record_dctx_free(d);
}

static void test_encode_errors(void)
{
	char err[256] = "";
	record_cctx *c = record_cctx_new(100, err, sizeof err);
	record_meta m = meta();
	record_buf out = { 0 };
	uint8_t eng[256], two[2 * sizeof msg], *huge;

	tap_ok(c == NULL && strstr(err, "level 100"), "level 100 refused: %s", err);
	c = record_cctx_new(3, NULL, 0);
	memset(eng, 'e', sizeof eng);
	m.engine_id.ptr = eng;
	m.engine_id.len = 256;
	tap_is_int(record_encode(c, NULL, &m, msg, sizeof msg, &out), RECORD_EINVAL,
	           "engine id of 256 bytes -> EINVAL");
	m.engine_id.len = 255;
	tap_is_int(record_encode(c, NULL, &m, msg, sizeof msg, &out), 0, "engine id of 255 bytes ok");
	m = meta();
	tap_is_int(record_encode(c, NULL, &m, msg, sizeof msg - 1, &out), RECORD_EINVAL,
	           "truncated message -> EINVAL");
	memcpy(two, msg, sizeof msg);
	memcpy(two + sizeof msg, msg, sizeof msg);
	tap_is_int(record_encode(c, NULL, &m, two, sizeof two, &out), RECORD_EINVAL,
	           "two messages -> EINVAL");
	tap_is_int(record_encode(c, NULL, &m, msg, 0, &out), RECORD_EINVAL, "empty message -> EINVAL");
	huge = calloc(1, RECORD_RAW_MAX);
	tap_is_int(record_encode(c, NULL, &m, huge, RECORD_RAW_MAX - RECORD_PAYLOAD_HDR - 4, &out),
	           RECORD_ETOOBIG, "payload over RECORD_RAW_MAX -> ETOOBIG");
	free(huge);
	record_buf_free(&out);
	record_cctx_free(c);
}

static void test_large(void)
{
	size_t blen = 3u << 20, i;
	uint8_t *m = malloc(blen + 32), *p = m;
	record_cctx *c = record_cctx_new(3, NULL, 0);
	record_dctx *d = record_dctx_new();
	record_meta mt = meta();
	record_buf out = { 0 }, raw = { 0 };
	record_view v;
	unsigned seed = 7;
	int rc;

	/* "big" with one BINARY arg "b" of 3 MiB; the length varint comes from
	 * spop_varint_put, which the codec's own tests cover. */
	*p++ = 3; memcpy(p, "big", 3); p += 3;
	*p++ = 1;
	*p++ = 1; *p++ = 'b';
	*p++ = SPOP_T_BINARY;
	p += spop_varint_put(p, blen);
	for (i = 0; i < blen; i++) {
		seed = seed * 1103515245 + 12345;
		p[i] = (uint8_t)((seed >> 16) & 0x3f);
	}
	p += blen;
	rc = record_encode(c, NULL, &mt, m, (size_t)(p - m), &out);
	tap_is_int(rc, 0, "3 MiB message encodes");
	rc = record_decode(d, out.data, out.len, NULL, NULL, &raw, NULL, &v, NULL, 0);
	tap_ok(rc == 0 && v.msg.raw.len == (size_t)(p - m) && !memcmp(v.msg.raw.ptr, m, v.msg.raw.len),
	       "3 MiB message round trip (%zu -> %zu bytes)", (size_t)(p - m), out.len);
	free(m);
	record_buf_free(&out);
	record_buf_free(&raw);
	record_cctx_free(c);
	record_dctx_free(d);
}

/* ---- dictionaries ---- */

static const char *const paths[] = {
	"/api/v1/users", "/api/v1/orders", "/static/app.js", "/login", "/api/v2/search",
	"/health", "/api/v1/cart/items", "/images/logo.png",
};

static unsigned rnd(unsigned *seed)
{
	*seed = *seed * 1103515245 + 12345;
	return *seed >> 8;
}

/* A capture-like message: uid, method, path, header block, JSON body. */
static size_t sample_msg(uint8_t *out, size_t cap, unsigned *seed)
{
	spop_wbuf w;
	uint8_t hb[1024], body[512];
	spop_wbuf hw;
	const char *meth, *path;
	char tmp[128];
	int n;

	spop_wbuf_init(&hw, hb, sizeof hb);
	spop_put_name(&hw, "host", 4);
	spop_put_name(&hw, "shop.example.com", 16);
	spop_put_name(&hw, "user-agent", 10);
	spop_put_name(&hw, "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", 45);
	spop_put_name(&hw, "accept", 6);
	spop_put_name(&hw, "application/json", 16);
	n = snprintf(tmp, sizeof tmp, "sid=%08x%08x; theme=dark", rnd(seed), rnd(seed));
	spop_put_name(&hw, "cookie", 6);
	spop_put_name(&hw, tmp, (size_t)n);
	n = snprintf(tmp, sizeof tmp, "%08x-%04x-4%03x-a%03x-%08x%04x", rnd(seed), rnd(seed) & 0xffff,
	             rnd(seed) & 0xfff, rnd(seed) & 0xfff, rnd(seed), rnd(seed) & 0xffff);
	spop_put_name(&hw, "x-request-id", 12);
	spop_put_name(&hw, tmp, (size_t)n);
	spop_put_bytes(&hw, "\0\0", 2);
	n = snprintf((char *)body, sizeof body,
	             "{\"user\":%u,\"items\":[{\"sku\":\"SKU-%05u\",\"qty\":%u}],\"currency\":\"EUR\"}",
	             rnd(seed) % 100000, rnd(seed) % 100000, rnd(seed) % 10);

	spop_wbuf_init(&w, out, cap);
	spop_put_name(&w, "cap-req", 7);
	spop_put_bytes(&w, "\x05", 1);
	spop_put_name(&w, "uid", 3);
	snprintf(tmp, sizeof tmp, "%08x-%04x", rnd(seed), rnd(seed) & 0xffff);
	spop_put_str(&w, SPOP_T_STRING, tmp, 13);
	spop_put_name(&w, "meth", 4);
	meth = rnd(seed) % 3 ? "GET" : "POST";
	spop_put_str(&w, SPOP_T_STRING, meth, strlen(meth));
	spop_put_name(&w, "path", 4);
	path = paths[rnd(seed) % 8];
	spop_put_str(&w, SPOP_T_STRING, path, strlen(path));
	spop_put_name(&w, "hdrs", 4);
	spop_put_str(&w, SPOP_T_BINARY, hb, hw.len);
	spop_put_name(&w, "body", 4);
	spop_put_str(&w, SPOP_T_BINARY, body, (size_t)n);
	return w.overflow ? 0 : w.len;
}

struct corpus {
	uint8_t *data;
	size_t *sizes, *offs;
	unsigned n;
	size_t total;
};

/* Builds n raw payloads (what the spool would train on). */
static void corpus_build(struct corpus *cp, unsigned n, unsigned seed)
{
	record_cctx *c = record_cctx_new(0, NULL, 0);
	record_dctx *d = record_dctx_new();
	record_buf out = { 0 }, raw = { 0 };
	record_meta m = meta();
	uint8_t mb[4096];
	unsigned i;

	cp->data = malloc((size_t)n * 2048);
	cp->sizes = malloc(n * sizeof *cp->sizes);
	cp->offs = malloc(n * sizeof *cp->offs);
	cp->n = n;
	cp->total = 0;
	for (i = 0; i < n; i++) {
		size_t ml = sample_msg(mb, sizeof mb, &seed);

		out.len = 0;
		m.sid = i;
		record_encode(c, NULL, &m, mb, ml, &out);
		record_decode(d, out.data, out.len, NULL, NULL, &raw, NULL, NULL, NULL, 0);
		cp->offs[i] = cp->total;
		memcpy(cp->data + cp->total, raw.data, raw.len);
		cp->sizes[i] = raw.len;
		cp->total += raw.len;
	}
	record_buf_free(&out);
	record_buf_free(&raw);
	record_cctx_free(c);
	record_dctx_free(d);
}

static void corpus_free(struct corpus *cp)
{
	free(cp->data);
	free(cp->sizes);
	free(cp->offs);
}

static record_dict *dict_a, *dict_b;
static struct corpus corp;

static void test_dict(void)
{
	char err[256] = "";
	record_cctx *c = record_cctx_new(3, NULL, 0);
	record_dctx *d = record_dctx_new();
	record_slot *s = record_slot_new();
	record_buf out = { 0 }, raw = { 0 }, plain_out = { 0 };
	struct dicts ds = { { NULL }, 0 };
	record_meta m = meta();
	const uint8_t *db;
	uint8_t mb[4096], bad[64], *copy, *plain;
	size_t dl, ml, n;
	unsigned seed = 999;
	record_hdr h;
	record_view v;
	record_dict *re, *other;
	ZSTD_DCtx *zd;
	int rc;

	dict_a = record_dict_train(corp.data, corp.sizes, corp.n, 16384, 40000, 3, err, sizeof err);
	tap_ok(dict_a != NULL, "train a 16 KiB dictionary on %u samples (%zu bytes) %s",
	       corp.n, corp.total, err);
	if (!dict_a)
		return;
	dict_b = record_dict_train(corp.data, corp.sizes, corp.n, 16384, 40001, 3, err, sizeof err);
	db = record_dict_data(dict_a, &dl);
	tap_ok(record_dict_id(dict_a) == 40000 && dl <= 16384 && le32(db) == 0xEC30A437u &&
	       le32(db + 4) == 40000, "dictionary: id 40000, zstd magic, %zu bytes", dl);

	ml = sample_msg(mb, sizeof mb, &seed);
	record_slot_set(s, dict_a);
	rc = record_encode(c, s, &m, mb, ml, &out);
	tap_ok(rc == 0 && out.data[3] == (RECORD_F_ZSTD | RECORD_F_DICT) && le32(out.data + 4) == 40000,
	       "encode with the slot's dictionary: flags zstd|dict, dict id 40000");
	tap_is_int(ZSTD_getDictID_fromFrame(out.data + RECORD_HDR_SIZE, out.len - RECORD_HDR_SIZE),
	           40000, "frame carries dict id 40000");
	rc = record_encode(c, NULL, &m, mb, ml, &plain_out);
	tap_ok(rc == 0 && out.len < plain_out.len, "dictionary helps: %zu vs %zu bytes stored",
	       out.len, plain_out.len);

	ds.d[0] = dict_b;
	ds.d[1] = dict_a;
	ds.n = 2;
	rc = record_decode(d, out.data, out.len, lookup, &ds, &raw, &h, &v, err, sizeof err);
	tap_ok(rc == 0 && v.msg.raw.len == ml && !memcmp(v.msg.raw.ptr, mb, ml),
	       "decode with the dictionary: identical message");
	rc = record_decode(d, out.data, out.len, NULL, NULL, &raw, NULL, NULL, err, sizeof err);
	tap_ok(rc == RECORD_EDICT && strstr(err, "40000"), "no lookup -> EDICT (%s)", err);
	rc = record_decode(d, out.data, out.len, lookup_any, dict_b, &raw, NULL, NULL, err, sizeof err);
	tap_is_int(rc, RECORD_EDICT, "lookup returns another dictionary -> EDICT");

	/* What `zstd -d -D dict` does: the raw dictionary bytes, no DDict. */
	plain = malloc(h.raw_len);
	zd = ZSTD_createDCtx();
	n = ZSTD_decompress_usingDict(zd, plain, h.raw_len,
	                              out.data + RECORD_HDR_SIZE, out.len - RECORD_HDR_SIZE, db, dl);
	ZSTD_freeDCtx(zd);
	tap_ok(!ZSTD_isError(n) && n == h.raw_len && record_parse_payload(plain, n, &v) == 0 &&
	       v.msg.raw.len == ml && !memcmp(v.msg.raw.ptr, mb, ml),
	       "exported frame + exported dictionary decode with plain libzstd");
	free(plain);

	/* Reload from bytes, decode-only. */
	copy = malloc(dl);
	memcpy(copy, db, dl);
	re = record_dict_new(copy, dl, 0, err, sizeof err);
	free(copy);
	rc = re ? record_decode(d, out.data, out.len, lookup_any, re, &raw, NULL, &v, NULL, 0) : -99;
	tap_ok(rc == 0 && v.msg.raw.len == ml, "reloaded decode-only dictionary decodes");

	/* A decode-only dictionary in the slot: compress without it. */
	record_slot_set(s, re);
	out.len = 0;
	rc = record_encode(c, s, &m, mb, ml, &out);
	tap_ok(rc == 0 && out.data[3] == RECORD_F_ZSTD && le32(out.data + 4) == 0,
	       "decode-only dictionary in the slot -> no dictionary used");
	record_dict_unref(re);

	/* Switching. */
	record_slot_set(s, dict_b);
	out.len = 0;
	rc = record_encode(c, s, &m, mb, ml, &out);
	tap_ok(rc == 0 && le32(out.data + 4) == 40001, "slot switched -> dict id 40001");
	record_slot_set(s, NULL);
	out.len = 0;
	rc = record_encode(c, s, &m, mb, ml, &out);
	tap_ok(rc == 0 && out.data[3] == RECORD_F_ZSTD, "slot cleared -> no dictionary");
	other = record_slot_get(s);
	tap_ok(other == NULL, "record_slot_get of an empty slot");
	record_slot_set(s, dict_a);
	other = record_slot_get(s);
	tap_ok(other == dict_a, "record_slot_get returns a reference");
	record_dict_unref(other);

	/* Loading errors. */
	memset(bad, 0, sizeof bad);
	tap_ok(!record_dict_new(bad, sizeof bad, 3, err, sizeof err) && strstr(err, "magic"),
	       "no magic -> refused (%s)", err);
	memcpy(bad, db, sizeof bad);
	bad[4] = 100, bad[5] = bad[6] = bad[7] = 0;
	tap_ok(!record_dict_new(bad, sizeof bad, 3, err, sizeof err) && strstr(err, "id 100"),
	       "id 100 (reserved range) -> refused (%s)", err);
	tap_ok(!record_dict_new(db, 40, 3, err, sizeof err), "truncated dictionary -> refused (%s)", err);
	tap_ok(!record_dict_train(corp.data, corp.sizes, 3, 16384, 40002, 3, err, sizeof err),
	       "3 samples -> training refused (%s)", err);
	tap_ok(!record_dict_train(corp.data, corp.sizes, corp.n, 16384, 7, 3, err, sizeof err),
	       "training with id 7 refused (%s)", err);

	record_slot_free(s);
	record_cctx_free(c);
	record_dctx_free(d);
	record_buf_free(&out);
	record_buf_free(&raw);
	record_buf_free(&plain_out);
}

/* I/O threads compress through the slot while the "writer" switches it. */
struct worker {
	record_slot *slot;
	int failures, used_a, used_b, used_none;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	record_cctx *c = record_cctx_new(1, NULL, 0);
	record_dctx *d = record_dctx_new();
	record_buf out = { 0 }, raw = { 0 };
	struct dicts ds = { { dict_a, dict_b }, 2 };
	record_meta m = meta();
	unsigned i;

	for (i = 0; i < 3000; i++) {
		unsigned k = i % corp.n;
		const uint8_t *p = corp.data + corp.offs[k] + RECORD_PAYLOAD_HDR + 5;
		size_t ml = corp.sizes[k] - RECORD_PAYLOAD_HDR - 5;
		record_view v;

		out.len = 0;
		if (record_encode(c, w->slot, &m, p, ml, &out) != 0 ||
		    record_decode(d, out.data, out.len, lookup, &ds, &raw, NULL, &v, NULL, 0) != 0 ||
		    v.msg.raw.len != ml || memcmp(v.msg.raw.ptr, p, ml)) {
			w->failures++;
			continue;
		}
		switch (le32(out.data + 4)) {
		case 40000: w->used_a++; break;
		case 40001: w->used_b++; break;
		default: w->used_none++; break;
		}
	}
	record_buf_free(&out);
	record_buf_free(&raw);
	record_cctx_free(c);
	record_dctx_free(d);
	return NULL;
}

static void test_threads(void)
{
	record_slot *s = record_slot_new();
	struct worker w[3];
	pthread_t t[3];
	int i, fails = 0, a = 0, bb = 0, none = 0;

	memset(w, 0, sizeof w);
	for (i = 0; i < 3; i++) {
		w[i].slot = s;
		pthread_create(&t[i], NULL, worker_run, &w[i]);
	}
	for (i = 0; i < 3000; i++) {
		record_slot_set(s, i % 3 == 0 ? dict_a : i % 3 == 1 ? dict_b : NULL);
		if (i % 64 == 0)
			sched_yield();
	}
	for (i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		fails += w[i].failures;
		a += w[i].used_a;
		bb += w[i].used_b;
		none += w[i].used_none;
	}
	tap_ok(fails == 0, "3 threads x 3000 records while the slot switches 3000 times: "
	       "all round trip (dict A %d, B %d, none %d)", a, bb, none);
	record_slot_free(s);
}

/* ---- corruption ---- */

/* Every single-byte change at every offset (three patterns): decode must
 * fail or give back exactly the original payload; never crash. */
static void flip_all(const char *what, const record_buf *rec, const struct dicts *ds)
{
	record_dctx *d = record_dctx_new();
	record_buf orig = { 0 }, raw = { 0 };
	uint8_t *copy = malloc(rec->len);
	static const uint8_t masks[] = { 0x01, 0x80, 0xff };
	size_t i, k;
	int wrong = 0, detected = 0, same = 0, rc;

	record_decode(d, rec->data, rec->len, lookup, (void *)ds, &orig, NULL, NULL, NULL, 0);
	for (i = 0; i < rec->len; i++) {
		for (k = 0; k < sizeof masks; k++) {
			memcpy(copy, rec->data, rec->len);
			copy[i] ^= masks[k];
			rc = record_decode(d, copy, rec->len, lookup, (void *)ds, &raw, NULL, NULL, NULL, 0);
			if (rc < 0)
				detected++;
			else if (raw.len == orig.len && !memcmp(raw.data, orig.data, raw.len))
				same++;
			else
				wrong++;
		}
	}
	tap_ok(wrong == 0, "%s: %zu single-byte changes: %d detected, %d harmless, %d garbled",
	       what, rec->len * sizeof masks, detected, same, wrong);
	/* Every truncation. */
	wrong = 0;
	for (i = 0; i < rec->len; i++) {
		rc = record_decode(d, rec->data, i, lookup, (void *)ds, &raw, NULL, NULL, NULL, 0);
		if (rc >= 0 || (i < RECORD_HDR_SIZE && rc != RECORD_ESHORT))
			wrong++;
	}
	tap_ok(wrong == 0, "%s: all %zu truncations detected", what, rec->len);
	free(copy);
	record_buf_free(&orig);
	record_buf_free(&raw);
	record_dctx_free(d);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* Decodes a modified copy of rec; returns the error. */
static int try_mod(const record_buf *rec, size_t off, const void *bytes, size_t n,
                   const struct dicts *ds, char *err, size_t errlen)
{
	record_dctx *d = record_dctx_new();
	record_buf raw = { 0 };
	uint8_t *copy = malloc(rec->len + 1);
	size_t len = rec->len;
	int rc;

	memcpy(copy, rec->data, rec->len);
	if (off == (size_t)-1) {                /* append a byte */
		copy[len++] = 0;
	} else {
		memcpy(copy + off, bytes, n);
	}
	rc = record_decode(d, copy, len, lookup, (void *)ds, &raw, NULL, NULL, err, errlen);
	free(copy);
	record_buf_free(&raw);
	record_dctx_free(d);
	return rc;
}

static void test_corruption(void)
{
	record_cctx *c0 = record_cctx_new(0, NULL, 0), *c3 = record_cctx_new(3, NULL, 0);
	record_slot *s = record_slot_new();
	struct dicts ds = { { dict_a }, 1 };
	record_buf r0 = { 0 }, r3 = { 0 }, rd = { 0 };
	record_meta m = meta();
	char err[256];
	uint8_t b4[4];
	int rc;

	record_encode(c0, NULL, &m, msg, sizeof msg, &r0);
	record_encode(c3, NULL, &m, msg, sizeof msg, &r3);
	record_slot_set(s, dict_a);
	record_encode(c3, s, &m, corp.data + RECORD_PAYLOAD_HDR + 5,
	              corp.sizes[0] - RECORD_PAYLOAD_HDR - 5, &rd);

	flip_all("raw record", &r0, &ds);
	flip_all("zstd record", &r3, &ds);
	if (dict_a)
		flip_all("zstd+dict record", &rd, &ds);

	rc = try_mod(&r3, 0, "XP", 2, &ds, err, sizeof err);
	tap_is_int(rc, RECORD_EMAGIC, "bad magic -> EMAGIC");
	rc = try_mod(&r3, 2, "\x02", 1, &ds, err, sizeof err);
	tap_is_int(rc, RECORD_EVERSION, "format version 2 -> EVERSION");
	rc = try_mod(&r3, 3, "\x09", 1, &ds, err, sizeof err);
	tap_is_int(rc, RECORD_EHEADER, "unknown flag bit -> EHEADER");
	rc = try_mod(&r0, 3, "\x02", 1, &ds, err, sizeof err);
	tap_is_int(rc, RECORD_EHEADER, "dict flag without zstd -> EHEADER");
	rc = try_mod(&rd, 4, "\x42\x9c\x00\x00", 4, &ds, err, sizeof err);
	tap_ok(rc == RECORD_EDICT && strstr(err, "40002"), "unknown dict id 40002 -> EDICT (%s)", err);
	rc = try_mod(&rd, 4, "\x05\x00\x00\x00", 4, &ds, err, sizeof err);
	tap_is_int(rc, RECORD_EDICT, "dict id 5 (reserved) -> EDICT");
	rc = try_mod(&rd, 3, "\x01", 1, &ds, err, sizeof err);
	tap_is_int(rc, RECORD_EHEADER, "dict id set, dict flag cleared -> EHEADER");
	rc = try_mod(&r3, 3, "\x03", 1, &ds, err, sizeof err);
	tap_is_int(rc, RECORD_EDICT, "dict flag set, dict id 0 -> EDICT");
	put32(b4, RECORD_RAW_MAX + 1);
	rc = try_mod(&r3, 8, b4, 4, &ds, err, sizeof err);
	tap_is_int(rc, RECORD_ELENGTH, "raw length over the cap -> ELENGTH");
	put32(b4, sizeof expected_payload + 1);
	rc = try_mod(&r3, 8, b4, 4, &ds, err, sizeof err);
	tap_ok(rc == RECORD_ELENGTH, "raw length + 1 -> ELENGTH (%s)", err);
	rc = try_mod(&r0, 8, b4, 4, &ds, err, sizeof err);
	tap_is_int(rc, RECORD_ELENGTH, "raw record: raw length + 1 -> ELENGTH");
	rc = try_mod(&r3, 12, "\x01", 1, &ds, err, sizeof err);
	tap_is_int(rc, RECORD_EHEADER, "zstd record with a check value -> EHEADER");
	rc = try_mod(&r3, 16, "\x16", 1, &ds, err, sizeof err);
	tap_is_int(rc, RECORD_EHEADER, "capture time changed -> EHEADER");
	rc = try_mod(&r3, r3.len - 1, (uint8_t[]){ (uint8_t)(r3.data[r3.len - 1] ^ 0x10) }, 1,
	             &ds, err, sizeof err);
	tap_ok(rc == RECORD_ECHECKSUM, "flip in the frame's checksum -> ECHECKSUM (%s)", err);
	rc = try_mod(&r3, (size_t)-1, NULL, 0, &ds, err, sizeof err);
	tap_ok(rc == RECORD_EZSTD, "byte after the frame -> EZSTD (%s)", err);
	rc = try_mod(&r0, (size_t)-1, NULL, 0, &ds, err, sizeof err);
	tap_is_int(rc, RECORD_ELENGTH, "byte after a raw payload -> ELENGTH");
	rc = try_mod(&r0, RECORD_HDR_SIZE + 40, "\x7e", 1, &ds, err, sizeof err);
	tap_is_int(rc, RECORD_ECHECKSUM, "raw payload byte changed -> ECHECKSUM");

	record_buf_free(&r0);
	record_buf_free(&r3);
	record_buf_free(&rd);
	record_slot_free(s);
	record_cctx_free(c0);
	record_cctx_free(c3);
}

/* Raw records with a valid CRC over a bad payload: the structure checks. */
static void test_payload_errors(void)
{
	uint8_t p[sizeof expected_payload + 8], rec[RECORD_HDR_SIZE + sizeof p];
	record_dctx *d = record_dctx_new();
	record_buf raw = { 0 };
	record_view v;
	size_t n;

#define MAKE_REC(len) do { \
	memcpy(rec, "SP\x01\x00\x00\x00\x00\x00", 8); \
	put32(rec + 8, (uint32_t)(len)); \
	put32(rec + 12, record_crc32c(0, p, (len))); \
	memcpy(rec + 16, p + 8, 8); \
	memcpy(rec + RECORD_HDR_SIZE, p, (len)); \
} while (0)
#define DEC(len) record_decode(d, rec, RECORD_HDR_SIZE + (len), NULL, NULL, &raw, NULL, NULL, NULL, 0)

	n = sizeof expected_payload;
	memcpy(p, expected_payload, n);
	MAKE_REC(n);
	tap_is_int(DEC(n), 0, "hand-made raw record decodes");
	p[0] = 2;
	MAKE_REC(n);
	tap_is_int(DEC(n), RECORD_EVERSION, "payload version 2 -> EVERSION");
	p[0] = 1;
	p[1] = 1;
	MAKE_REC(n);
	tap_is_int(DEC(n), RECORD_EPAYLOAD, "payload flags set -> EPAYLOAD");
	p[1] = 0;
	p[2] = 0xff;
	MAKE_REC(n);
	tap_is_int(DEC(n), RECORD_EPAYLOAD, "engine id longer than the payload -> EPAYLOAD");
	p[2] = 5;
	p[n] = 0;
	MAKE_REC(n + 1);
	tap_is_int(DEC(n + 1), RECORD_EPAYLOAD, "byte after the message -> EPAYLOAD");
	MAKE_REC(n - 1);
	tap_is_int(DEC(n - 1), RECORD_EPAYLOAD, "message cut short -> EPAYLOAD");
	MAKE_REC(sizeof payload_hdr);
	tap_is_int(DEC(sizeof payload_hdr), RECORD_EPAYLOAD, "no message -> EPAYLOAD");
	tap_is_int(record_parse_payload(p, 31, &v), RECORD_ESHORT, "31-byte payload -> ESHORT");
	p[2] = 0;
	p[3] = 1;           /* engine id length 256 */
	tap_is_int(record_parse_payload(p, n, &v), RECORD_EPAYLOAD, "engine id of 256 bytes -> EPAYLOAD");
#undef MAKE_REC
#undef DEC
	record_buf_free(&raw);
	record_dctx_free(d);
}

/* Random bytes after a plausible header: errors, never a crash. */
static void test_garbage(void)
{
	record_dctx *d = record_dctx_new();
	record_buf raw = { 0 };
	struct dicts ds = { { dict_a }, 1 };
	uint8_t rec[600];
	unsigned seed = 4242, i, j, ok = 0;

	for (i = 0; i < 3000; i++) {
		size_t len = RECORD_HDR_SIZE + (seed >> 4) % 500;

		for (j = 0; j < sizeof rec; j++) {
			seed = seed * 1103515245 + 12345;
			rec[j] = (uint8_t)(seed >> 16);
		}
		memcpy(rec, "SP\x01", 3);
		rec[3] &= 7;
		if (i % 2) {                        /* a zstd frame start */
			memcpy(rec + RECORD_HDR_SIZE, "\x28\xb5\x2f\xfd", 4);
			rec[3] |= 1;
		}
		put32(rec + 8, 32 + (seed >> 3) % 2000);
		if (record_decode(d, rec, len, lookup, &ds, &raw, NULL, NULL, NULL, 0) == 0)
			ok++;
	}
	tap_is_int(ok, 0, "3000 random records: all refused, no crash");
	record_buf_free(&raw);
	record_dctx_free(d);
}

int main(void)
{
	(void)tap_plan;         /* plan printed at the end by tap_done */
	memcpy(expected_payload, payload_hdr, sizeof payload_hdr);
	memcpy(expected_payload + sizeof payload_hdr, msg, sizeof msg);

	test_crc();
	test_errors();
	test_raw_layout();
	test_zstd(1);
	test_zstd(3);
	test_zstd(-5);
	test_append_and_flags();
	test_encode_errors();
	test_large();
	corpus_build(&corp, 1500, 1);
	test_dict();
	if (dict_a && dict_b)
		test_threads();
	else
		tap_skip(1, "no dictionary");
	test_corruption();
	test_payload_errors();
	test_garbage();
	record_dict_unref(dict_a);
	record_dict_unref(dict_b);
	corpus_free(&corp);
	return tap_done(0);
}
