/* t-spop.c -- unit tests for the SPOP codec (src/spop.c).
 *
 * Every expected byte string below was written by hand from the protocol
 * reference (../shared/spop-protocol.md §1.5, §1.8, §2) or from HAProxy's
 * own reg-tests, never produced by our encoder; round trips through the
 * encoder come on top. Inputs are copied into malloc'd buffers of their
 * exact size, so under --enable-sanitizers any read past `end` is caught. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spoolcap/spop.h"
#include "tap.h"

/* ------------------------------------------------------------ helpers */

/* Parses a vector written like the reference: hex bytes and "quoted
 * text", separated by blanks. Returns the byte count. */
static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	abort();    /* a typo in a vector must not pass silently */
}

static size_t hex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;

	while (*s) {
		if (*s == ' ' || *s == '\n' || *s == '\t') {
			s++;
		} else if (*s == '"') {
			for (s++; *s && *s != '"'; s++) {
				if (n == cap)
					abort();
				out[n++] = (uint8_t)*s;
			}
			if (*s != '"')
				abort();
			s++;
		} else {
			if (n == cap || s[1] == 0)
				abort();
			out[n++] = (uint8_t)(nibble(s[0]) << 4 | nibble(s[1]));
			s += 2;
		}
	}
	return n;
}

/* An exact-size heap copy: ASan flags even a one-byte over-read. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);

	if (!q)
		abort();
	if (n)
		memcpy(q, p, n);
	return q;
}

typedef struct vec {
	uint8_t *p;
	size_t len;
} vec;

static vec V(const char *spec)
{
	uint8_t tmp[4096];
	size_t n = hex(spec, tmp, sizeof(tmp));
	vec v = { dup_exact(tmp, n), n };
	return v;
}

static int str_eq(spop_str s, const char *w)
{
	return s.len == strlen(w) && memcmp(s.ptr, w, s.len) == 0;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
	/* xorshift64*: seeded, so failures reproduce */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

/* --------------------------------------------------------- varints §1.5 */

static const struct { uint64_t v; const char *bytes; } varint_rows[] = {
	{ 0,                     "00" },
	{ 239,                   "EF" },
	{ 240,                   "F0 00" },
	{ 2287,                  "FF 7F" },
	{ 2288,                  "F0 80 00" },
	{ 264431,                "FF FF 7F" },           /* byte-count table edges */
	{ 264432,                "F0 80 80 00" },
	{ 33818863,              "FF FF FF 7F" },
	{ 33818864,              "F0 80 80 80 00" },
	{ 4328786159ull,         "FF FF FF FF 7F" },
	{ 4328786160ull,         "F0 80 80 80 80 00" },
	{ 1000000,               "F0 95 E7 02" },
	{ 16380,                 "FC F0 06" },
	{ UINT64_MAX,            "FF F0 FE FE FE FE FE FE FE 0E" },
};

static void test_varint_table(void)
{
	size_t i;

	for (i = 0; i < sizeof(varint_rows) / sizeof(varint_rows[0]); i++) {
		vec v = V(varint_rows[i].bytes);
		const uint8_t *p = v.p;
		uint8_t out[SPOP_VARINT_MAX + 2];
		uint64_t got = 12345;
		size_t n;
		int rc = spop_varint_get(&p, v.p + v.len, &got);

		tap_ok(rc == SPOP_OK && got == varint_rows[i].v && p == v.p + v.len,
		       "varint decode %s = %llu", varint_rows[i].bytes,
		       (unsigned long long)varint_rows[i].v);
		n = spop_varint_put(out, varint_rows[i].v);
		tap_is_mem(out, n, v.p, v.len, "varint encode %llu = %s",
		           (unsigned long long)varint_rows[i].v, varint_rows[i].bytes);
		free(v.p);
	}
	/* -1 as INT64 is the same 10 bytes (two's complement) */
	{
		vec v = V("04 FF F0 FE FE FE FE FE FE FE 0E");
		const uint8_t *p = v.p;
		spop_data d;
		int rc = spop_data_get(&p, v.p + v.len, &d);
		tap_ok(rc == 0 && d.type == SPOP_T_INT64 && d.v.i == -1 && p == v.p + v.len,
		       "INT64 -1 decodes from 10 bytes");
		free(v.p);
	}
}

static void expect_varint_err(const char *bytes, int want, const char *what)
{
	vec v = V(bytes);
	const uint8_t *p = v.p;
	uint64_t x;
	int rc = spop_varint_get(&p, v.p + v.len, &x);

	tap_ok(rc == want && p == v.p, "varint %s: %s -> %s", what, bytes, spop_strerror(want));
	if (rc != want)
		tap_diag("  got %d", rc);
	free(v.p);
}

static void test_varint_bad(void)
{
	static const char *const longs[] = {
		"FF F0 FE FE FE FE FE FE FE 0E", "F0 95 E7 02", "F0 80 80 80 80 00", "FF 7F",
	};
	size_t i, cut;

	/* every cut point of multi-byte varints: need more, never a value */
	for (i = 0; i < sizeof(longs) / sizeof(longs[0]); i++) {
		vec v = V(longs[i]);
		int all = 1;

		for (cut = 0; cut < v.len; cut++) {
			uint8_t *c = dup_exact(v.p, cut);
			const uint8_t *p = c;
			uint64_t x;
			if (spop_varint_get(&p, c + cut, &x) != SPOP_ETRUNC || p != c)
				all = 0;
			free(c);
		}
		tap_ok(all, "varint %s: every cut (0..%zu bytes) is ETRUNC", longs[i], v.len - 1);
		free(v.p);
	}
	expect_varint_err("FF 80 80 80 80 80 80 80 80 80 00", SPOP_EVARINT, "11 bytes");
	expect_varint_err("F0 80 80 80 80 80 80 80 80 80", SPOP_EVARINT,
	                  "10th byte says more follows");
	expect_varint_err("FF F0 FE FE FE FE FE FE FE 0F", SPOP_EVARINT, "2^64-1 + 2^60");
	expect_varint_err("F0 80 80 80 80 80 80 80 80 10", SPOP_EVARINT, "10th byte > 15");
	/* 10th byte 0E fits 2^64-1 only when the lower bytes are small enough:
	 * here the true sum is 0x1_0020_4081_0204_08EF, which would wrap */
	expect_varint_err("FF FF FF FF FF FF FF FF FF 0E", SPOP_EVARINT, "carry out of bit 63");
	{
		vec v = V("F0 80 80 80 80 80 80 80 80 0E");
		const uint8_t *p = v.p;
		uint64_t x = 0;
		tap_ok(spop_varint_get(&p, v.p + v.len, &x) == 0 && x == 17302900691186223344ull,
		       "10-byte varint just below 2^64 decodes");
		free(v.p);
	}
}

static int varint_len_ref(uint64_t v)
{
	/* byte counts from ref §1.5 */
	if (v <= 239) return 1;
	if (v <= 2287) return 2;
	if (v <= 264431) return 3;
	if (v <= 33818863) return 4;
	if (v <= 4328786159ull) return 5;
	return 0;           /* longer: only checked to be <= 10 */
}

static void test_varint_roundtrip(void)
{
	int i, ok = 1, lenok = 1;

	for (i = 0; i < 20000 && ok; i++) {
		uint64_t v = rnd() >> (rnd() % 64), got = 0;
		uint8_t buf[SPOP_VARINT_MAX];
		size_t n = spop_varint_put(buf, v);
		uint8_t *c = dup_exact(buf, n);
		const uint8_t *p = c;
		int want = varint_len_ref(v);

		if (spop_varint_get(&p, c + n, &got) != 0 || got != v || p != c + n) {
			ok = 0;
			tap_diag("  round trip failed for %llu", (unsigned long long)v);
		}
		if ((want && (int)n != want) || n > SPOP_VARINT_MAX)
			lenok = 0;
		free(c);
	}
	tap_ok(ok, "varint round trip, 20000 seeded random values of every width");
	tap_ok(lenok, "varint encoded lengths follow the ref §1.5 byte-count table");
}

/* ------------------------------------------------------ typed data §1.6 */

/* Decodes one typed value; *consumed_all: the cursor moved over exactly
 * the input on success, or not at all on error. The input stays allocated
 * until the next call (strings point into it). */
static int data1(const char *bytes, spop_data *d, int *consumed_all)
{
	static uint8_t *last;
	vec v;
	const uint8_t *p;
	int rc;

	free(last);
	last = NULL;
	if (bytes == NULL)
		return 0;
	v = V(bytes);
	p = v.p;
	rc = spop_data_get(&p, v.p + v.len, d);
	*consumed_all = rc == 0 ? p == v.p + v.len : p == v.p;
	last = v.p;
	return rc;
}

static void test_data_types(void)
{
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
	                                0, 0, 0, 0, 0, 0, 0, 0x01 };
	static const uint8_t v4[4] = { 192, 168, 1, 2 };
	spop_data d;
	int all, rc;
	char spec[8];
	unsigned t;

	rc = data1("00", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_NULL, "NULL: 00");
	rc = data1("01", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_BOOL && d.v.b == 0, "BOOL false: 01");
	rc = data1("11", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_BOOL && d.v.b == 1, "BOOL true: 11");
	rc = data1("21", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_BOOL && d.v.b == 0,
	       "BOOL: only flag 0x10 means true (21 is false)");
	rc = data1("02 05", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_INT32 && d.v.i == 5, "INT32 5: 02 05");
	rc = data1("02 FF F0 FE FE FE FE FE FE FE 0E", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_INT32 && d.v.i == -1, "INT32 -1 (64-bit two's complement)");
	rc = data1("02 F0 80 80 80 80 00", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_INT32 && d.v.i == 4328786160ll,
	       "INT32 above 32 bits is kept as sent (tolerant, like HAProxy)");
	rc = data1("03 FC F0 06", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_UINT32 && d.v.u == 16380, "UINT32 16380: 03 FC F0 06");
	rc = data1("03 FF F0 FE FE 7E", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_UINT32 && d.v.u == 4294967295u, "UINT32 2^32-1");
	rc = data1("04 00", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_INT64 && d.v.i == 0, "INT64 0");
	rc = data1("04 FF F0 FE FE FE FE FE FE FE 06", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_INT64 && d.v.i == INT64_MAX, "INT64 max");
	rc = data1("04 F0 F1 FE FE FE FE FE FE FE 06", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_INT64 && d.v.i == INT64_MIN, "INT64 min");
	rc = data1("05 FF F0 FE FE FE FE FE FE FE 0E", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_UINT64 && d.v.u == UINT64_MAX, "UINT64 2^64-1");
	rc = data1("06 C0 A8 01 02", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_IPV4 && memcmp(d.v.ip, v4, 4) == 0,
	       "IPV4 192.168.1.2");
	rc = data1("07 20 01 0D B8 00 00 00 00 00 00 00 00 00 00 00 01", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_IPV6 && memcmp(d.v.ip, v6, 16) == 0,
	       "IPV6 2001:db8::1");
	rc = data1("08 03 \"GET\"", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_STRING && str_eq(d.v.s, "GET"), "STRING GET");
	rc = data1("08 00", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_STRING && d.v.s.len == 0, "empty STRING: 08 00");
	rc = data1("09 00", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_BINARY && d.v.s.len == 0, "empty BINARY: 09 00");
	rc = data1("09 03 00 FF 7F", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_BINARY && d.v.s.len == 3 &&
	       memcmp(d.v.s.ptr, "\x00\xff\x7f", 3) == 0, "BINARY 00 FF 7F");
	rc = data1("18 01 \"x\"", &d, &all);
	tap_ok(rc == 0 && all && d.type == SPOP_T_STRING && str_eq(d.v.s, "x"),
	       "type is the low nibble: 18 is a STRING");

	for (t = 10; t <= 15; t++) {
		snprintf(spec, sizeof(spec), "%02X 00", t);
		rc = data1(spec, &d, &all);
		tap_ok(rc == SPOP_ETYPE && all, "reserved type %u -> ETYPE", t);
	}
	rc = data1("1F", &d, &all);
	tap_ok(rc == SPOP_ETYPE && all, "reserved type with flag bits (1F) -> ETYPE");

	/* truncation and lengths past the end */
	rc = data1("", &d, &all);
	tap_ok(rc == SPOP_ETRUNC && all, "no type byte -> ETRUNC");
	rc = data1("02", &d, &all);
	tap_ok(rc == SPOP_ETRUNC && all, "INT32 without its varint -> ETRUNC");
	rc = data1("04 F0 95", &d, &all);
	tap_ok(rc == SPOP_ETRUNC && all, "INT64 with a cut varint -> ETRUNC");
	rc = data1("05 FF 80 80 80 80 80 80 80 80 80 00", &d, &all);
	tap_ok(rc == SPOP_EVARINT && all, "UINT64 with an 11-byte varint -> EVARINT");
	rc = data1("06 C0 A8 01", &d, &all);
	tap_ok(rc == SPOP_ETRUNC && all, "IPV4 with 3 bytes -> ETRUNC");
	rc = data1("07 20 01 0D B8 00 00 00 00 00 00 00 00 00 00 00", &d, &all);
	tap_ok(rc == SPOP_ETRUNC && all, "IPV6 with 15 bytes -> ETRUNC");
	rc = data1("08", &d, &all);
	tap_ok(rc == SPOP_ETRUNC && all, "STRING without length -> ETRUNC");
	rc = data1("08 F0", &d, &all);
	tap_ok(rc == SPOP_ETRUNC && all, "STRING with a cut length varint -> ETRUNC");
	rc = data1("08 05 \"abc\"", &d, &all);
	tap_ok(rc == SPOP_ELEN && all, "STRING length 5 with 3 bytes left -> ELEN");
	rc = data1("09 FF F0 FE FE FE FE FE FE FE 0E \"abc\"", &d, &all);
	tap_ok(rc == SPOP_ELEN && all, "BINARY length 2^64-1 -> ELEN");
	rc = data1("09 F0 80 00 \"abc\"", &d, &all);
	tap_ok(rc == SPOP_ELEN && all, "BINARY length 2288 with 3 bytes left -> ELEN");
	data1(NULL, &d, &all);
}

static void test_names(void)
{
	vec v;
	const uint8_t *p;
	spop_str s;

	v = V("00");
	p = v.p;
	tap_ok(spop_name_get(&p, v.p + v.len, &s) == 0 && s.len == 0 && p == v.p + 1,
	       "empty name: 00");
	free(v.p);
	v = V("06 \"method\"");
	p = v.p;
	tap_ok(spop_name_get(&p, v.p + v.len, &s) == 0 && str_eq(s, "method") && p == v.p + 7,
	       "name 06 method");
	free(v.p);
	v = V("06 \"meth\"");
	p = v.p;
	tap_ok(spop_name_get(&p, v.p + v.len, &s) == SPOP_ELEN && p == v.p,
	       "name length past end -> ELEN, cursor unmoved");
	free(v.p);
	v = V("");
	p = v.p;
	tap_ok(spop_name_get(&p, v.p, &s) == SPOP_ETRUNC, "name on empty input -> ETRUNC");
	free(v.p);
}

/* ----------------------------------------------------------- frames §1.1 */

/* ref §1.8, copied byte for byte */
#define REF_AGENT_HELLO \
	"00 00 00 40  65  00 00 00 01  00 00" \
	" 07 \"version\"        08 03 \"2.0\"" \
	" 0E \"max-frame-size\" 03 FC F0 06" \
	" 0C \"capabilities\"   08 0A \"pipelining\""
#define REF_NOTIFY \
	"00 00 00 20  03  00 00 00 01  01 01" \
	" 03 \"req\" 02  06 \"method\" 08 03 \"GET\"  03 \"uid\" 08 02 \"ab\""
#define REF_EMPTY_ACK "00 00 00 07 67 00 00 00 01 05 01"
#define REF_DISCONNECT \
	"00 00 00 1F 66 00 00 00 01 00 00 0B \"status-code\" 03 00 07 \"message\" 08 00"
/* HAProxy reg-tests/checks/spop-check.vtc, server s1: a valid AGENT-HELLO
 * with empty capabilities (LENGTH 0x36 = 54) */
#define VTC_AGENT_HELLO \
	"00000036 65 00000001 0000 0776657273696F6E 0803322E30" \
	" 0E6D61782D6672616D652D73697A65 03FCF0 060C6361706162696C6974696573 0800"

/* HAPROXY-HELLO as 2.6 sends it on a normal connection: supported-versions,
 * max-frame-size (UINT32), capabilities, engine-id. LENGTH 7 + 24 + 19 +
 * 31 + 48 = 129 = 0x81. */
#define HELLO_26 \
	"00 00 00 81  01  00 00 00 01  00 00" \
	" 12 \"supported-versions\" 08 03 \"2.0\"" \
	" 0E \"max-frame-size\" 03 FC F0 06" \
	" 0C \"capabilities\" 08 10 \"pipelining,async\"" \
	" 09 \"engine-id\" 08 24 \"6c1a1f9e-03b4-4c52-9d6e-3f3b1e0c9a11\""
/* The spop-check HELLO (3.x constant, 2.6 alike): capabilities "", healthcheck
 * true, no engine-id. LENGTH 7 + 24 + 19 + 15 + 13 = 78 = 0x4E; 82 bytes on
 * the wire, matching "recv 82" in HAProxy's spop-check.vtc. */
#define HELLO_CHECK \
	"00 00 00 4E  01  00 00 00 01  00 00" \
	" 12 \"supported-versions\" 08 03 \"2.0\"" \
	" 0E \"max-frame-size\" 03 FC F0 06" \
	" 0C \"capabilities\" 08 00" \
	" 0B \"healthcheck\" 11"

static int frame1(vec v, uint32_t max, spop_frame *f, size_t *used)
{
	return spop_frame_get(v.p, v.len, max, f, used);
}

static void test_frame_notify(void)
{
	vec v = V(REF_NOTIFY);
	spop_frame f;
	spop_iter it, args;
	spop_msg m;
	spop_str name;
	spop_data val;
	size_t used = 0;
	unsigned n = 99;
	int rc;

	rc = frame1(v, 16380, &f, &used);
	tap_ok(rc == 1 && used == 36 && f.len == 32 && f.type == SPOP_FRAME_NOTIFY &&
	       f.flags == SPOP_FLAG_FIN && f.sid == 1 && f.fid == 1 &&
	       f.payload == v.p + 11 && f.payload_len == 25, "§1.8 NOTIFY header: sid 1 fid 1 FIN");
	tap_ok(spop_msgs_check(f.payload, f.payload_len, &n) == 0 && n == 1,
	       "§1.8 NOTIFY: one valid message");
	spop_iter_init(&it, f.payload, f.payload_len);
	rc = spop_msg_next(&it, &m);
	tap_ok(rc == 1 && str_eq(m.name, "req") && m.nargs == 2, "message req, 2 args");
	tap_ok(m.raw.ptr == f.payload && m.raw.len == 25, "message raw = name varint through last arg");
	args = m.args;
	rc = spop_arg_next(&args, &name, &val);
	tap_ok(rc == 1 && str_eq(name, "method") && val.type == SPOP_T_STRING &&
	       str_eq(val.v.s, "GET"), "arg method = STRING GET");
	rc = spop_arg_next(&args, &name, &val);
	tap_ok(rc == 1 && str_eq(name, "uid") && val.type == SPOP_T_STRING &&
	       str_eq(val.v.s, "ab"), "arg uid = STRING ab");
	tap_is_int(spop_arg_next(&args, &name, &val), 0, "no third arg");
	tap_is_int(spop_msg_next(&it, &m), 0, "no second message");
	free(v.p);
}

static void test_frame_errors(void)
{
	uint8_t buf[64];
	spop_frame f;
	size_t used;
	unsigned L;
	vec v;
	int rc, all;

	/* LENGTH 0..6: refused from the 4 prefix bytes alone, and with a body */
	all = 1;
	for (L = 0; L < 7; L++) {
		uint8_t *c;
		memset(buf, 0, sizeof(buf));
		buf[3] = (uint8_t)L;
		c = dup_exact(buf, 4);
		if (spop_frame_get(c, 4, 16380, &f, &used) != SPOP_ESHORT)
			all = 0;
		free(c);
		c = dup_exact(buf, 4 + L);
		if (spop_frame_get(c, 4 + L, 16380, &f, &used) != SPOP_ESHORT)
			all = 0;
		free(c);
	}
	tap_ok(all, "LENGTH 0..6 -> ESHORT (with and without the body)");

	v = V("00 00 40 00");
	tap_is_int(frame1(v, 16380, &f, &used), SPOP_ETOOBIG, "LENGTH 16384 > max 16380 -> ETOOBIG from the prefix alone");
	free(v.p);
	v = V("FF FF FF FF");
	tap_is_int(frame1(v, 16380, &f, &used), SPOP_ETOOBIG, "LENGTH 4 GB -> ETOOBIG, no buffering");
	free(v.p);
	v = V("00 00 3F FD 03");
	tap_is_int(frame1(v, 16380, &f, &used), SPOP_ETOOBIG, "LENGTH max+1 -> ETOOBIG");
	free(v.p);
	v = V("00 00 3F FC 03 00 00 00 01 01 01");
	tap_is_int(frame1(v, 16380, &f, &used), 0, "LENGTH == max is accepted (needs more)");
	free(v.p);

	/* truncated frame: each prefix of a valid frame means "need more" */
	v = V(REF_NOTIFY);
	all = 1;
	for (L = 0; L < v.len; L++) {
		uint8_t *c = dup_exact(v.p, L);
		if (spop_frame_get(c, L, 16380, &f, &used) != 0)
			all = 0;
		free(c);
	}
	tap_ok(all, "every prefix (0..35 bytes) of the §1.8 NOTIFY -> 0 (need more)");
	free(v.p);

	/* sid/fid must lie inside LENGTH even when more bytes are buffered */
	v = V("00 00 00 07 03 00 00 00 01 F0 80  00 01");
	tap_is_int(frame1(v, 16380, &f, &used), SPOP_ETRUNC, "sid varint crossing LENGTH -> ETRUNC");
	free(v.p);
	v = V("00 00 00 07 03 00 00 00 01 F0 00  01");
	tap_is_int(frame1(v, 16380, &f, &used), SPOP_ETRUNC, "fid missing inside LENGTH -> ETRUNC");
	free(v.p);
	v = V("00 00 00 11 03 00 00 00 01 FF 80 80 80 80 80 80 80 80 80 00 01");
	tap_is_int(frame1(v, 16380, &f, &used), SPOP_EVARINT, "11-byte sid -> EVARINT");
	free(v.p);

	/* two frames back to back */
	v = V(REF_EMPTY_ACK " " REF_NOTIFY);
	rc = frame1(v, 16380, &f, &used);
	tap_ok(rc == 1 && used == 11 && f.type == SPOP_FRAME_ACK && f.sid == 5 && f.fid == 1 &&
	       f.payload_len == 0, "§1.8 empty ACK sid 5 fid 1 decodes, consumed 11");
	rc = spop_frame_get(v.p + used, v.len - used, 16380, &f, &used);
	tap_ok(rc == 1 && used == 36 && f.type == SPOP_FRAME_NOTIFY, "the next frame follows it");
	free(v.p);

	/* big ids: sid 1000000, fid 2288 */
	v = V("00 00 00 11 67 00 00 00 01 F0 95 E7 02 F0 80 00 02 02 02 01 5F");
	rc = frame1(v, 16380, &f, &used);
	tap_ok(rc == 1 && f.sid == 1000000 && f.fid == 2288 && f.payload_len == 5,
	       "multi-byte sid/fid decode");
	free(v.p);
	/* flags are big-endian: ABORT|FIN = 00 00 00 03; 0x01000000 is not FIN */
	v = V("00 00 00 07 00 00 00 00 03 07 01");
	rc = frame1(v, 16380, &f, &used);
	tap_ok(rc == 1 && f.flags == (SPOP_FLAG_FIN | SPOP_FLAG_ABORT) && f.type == 0,
	       "flags read big-endian (FIN|ABORT)");
	free(v.p);
	v = V("00 00 00 07 03 01 00 00 00 07 01");
	rc = frame1(v, 16380, &f, &used);
	tap_ok(rc == 1 && f.flags == 0x01000000u && !(f.flags & SPOP_FLAG_FIN),
	       "host-order flags (1.0 bug) are not FIN");
	free(v.p);
}

/* ---------------------------------------------------- HELLO / DISCONNECT */

static void test_hello_parse(void)
{
	vec v = V(HELLO_26);
	spop_frame f;
	spop_hello h;
	size_t used;
	int rc;

	rc = frame1(v, 16380, &f, &used);
	tap_ok(rc == 1 && used == v.len && f.type == SPOP_FRAME_HAPROXY_HELLO && f.sid == 0 &&
	       f.fid == 0 && f.flags == SPOP_FLAG_FIN, "2.6 HAPROXY-HELLO frame header");
	rc = spop_hello_parse(f.payload, f.payload_len, &h);
	tap_ok(rc == 0 && h.has_versions && str_eq(h.versions, "2.0") &&
	       h.has_max_frame_size && h.max_frame_size == 16380 &&
	       h.has_capabilities && str_eq(h.capabilities, "pipelining,async") &&
	       h.healthcheck == 0 && h.engine_id.len == 36, "2.6 HAPROXY-HELLO fields");
	tap_ok(spop_versions_support(h.versions, 2, 0) && !spop_versions_support(h.versions, 2, 1),
	       "2.6 HELLO supports version 2.0, not 2.1");
	tap_ok(spop_list_has(h.capabilities, "pipelining") && spop_list_has(h.capabilities, "async") &&
	       !spop_list_has(h.capabilities, "fragmentation"),
	       "2.6 capabilities: pipelining, async, no fragmentation");
	free(v.p);

	v = V(HELLO_CHECK);
	tap_is_int(v.len, 82, "spop-check HELLO is 82 bytes on the wire");
	rc = frame1(v, 16380, &f, &used);
	rc = rc == 1 ? spop_hello_parse(f.payload, f.payload_len, &h) : rc;
	tap_ok(rc == 0 && h.healthcheck == 1 && h.has_capabilities && h.capabilities.len == 0 &&
	       !spop_list_has(h.capabilities, "pipelining") && h.engine_id.len == 0 &&
	       h.max_frame_size == 16380, "spop-check HELLO: healthcheck, empty capabilities, no engine-id");
	free(v.p);

	/* unknown keys of every type are skipped; exact key match */
	v = V("0A \"x-future-1\" 07 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01"
	      " 0E \"max-frame-size\" 04 F0 80 00"
	      " 10 \"max-frame-size-x\" 03 01"
	      " 0D \"capabilitiesX\" 08 01 \"z\""
	      " 0A \"x-future-2\" 09 02 00 00"
	      " 0A \"x-future-3\" 00"
	      " 0B \"healthcheck\" 01");
	rc = spop_hello_parse(v.p, v.len, &h);
	tap_ok(rc == 0 && h.max_frame_size == 2288 && !h.has_capabilities && !h.has_versions &&
	       h.healthcheck == 0, "unknown keys skipped, prefixes not matched, INT64 max-frame-size");
	free(v.p);
	v = V("0E \"max-frame-size\" 05 FC F0 06");
	rc = spop_hello_parse(v.p, v.len, &h);
	tap_ok(rc == 0 && h.max_frame_size == 16380, "max-frame-size as UINT64");
	free(v.p);
	v = V("0E \"max-frame-size\" 02 FC F0 06");
	rc = spop_hello_parse(v.p, v.len, &h);
	tap_ok(rc == 0 && h.max_frame_size == 16380, "max-frame-size as INT32");
	free(v.p);
	v = V("0E \"max-frame-size\" 04 FF F0 FE FE FE FE FE FE FE 0E");
	tap_is_int(spop_hello_parse(v.p, v.len, &h), SPOP_EINVAL, "negative max-frame-size -> EINVAL");
	free(v.p);
	v = V("0E \"max-frame-size\" 08 03 \"100\"");
	tap_is_int(spop_hello_parse(v.p, v.len, &h), SPOP_EINVAL, "max-frame-size as STRING -> EINVAL");
	free(v.p);
	v = V("0B \"healthcheck\" 03 01");
	tap_is_int(spop_hello_parse(v.p, v.len, &h), SPOP_EINVAL, "healthcheck not BOOLEAN -> EINVAL");
	free(v.p);
	v = V("12 \"supported-versions\" 08 03 \"2.0\" 00 08 01 \"x\"");
	tap_is_int(spop_hello_parse(v.p, v.len, &h), SPOP_EINVAL, "empty KV key -> EINVAL");
	free(v.p);
	v = V("0A \"x-future-1\" 0C 00");
	tap_is_int(spop_hello_parse(v.p, v.len, &h), SPOP_ETYPE, "unknown key with a reserved type -> ETYPE");
	free(v.p);
	v = V("0C \"capabilities\" 08 0A \"pipe\"");
	tap_is_int(spop_hello_parse(v.p, v.len, &h), SPOP_ELEN, "capabilities length past end -> ELEN");
	free(v.p);
	v = V("");
	rc = spop_hello_parse(v.p, 0, &h);
	tap_ok(rc == 0 && !h.has_versions && !h.has_max_frame_size && !h.has_capabilities,
	       "empty HELLO payload parses, nothing present");
	free(v.p);
}

static void test_kv(void)
{
	vec v = V("03 \"abc\" 00 00 01 \"x\" 00");
	spop_iter it;
	spop_str k;
	spop_data d;

	spop_iter_init(&it, v.p, v.len);
	tap_ok(spop_kv_next(&it, &k, &d) == 1 && str_eq(k, "abc") && d.type == SPOP_T_NULL,
	       "kv abc = NULL");
	tap_is_int(spop_kv_next(&it, &k, &d), SPOP_EINVAL, "empty KV key -> EINVAL");
	tap_ok(spop_kv_next(&it, &k, &d) == SPOP_EINVAL && it.p == v.p + 5,
	       "KV iterator stays on the bad item");
	free(v.p);
	v = V("03 \"abc\"");
	spop_iter_init(&it, v.p, v.len);
	tap_is_int(spop_kv_next(&it, &k, &d), SPOP_ETRUNC, "KV key without value -> ETRUNC");
	free(v.p);
}

static void test_disconnect(void)
{
	vec v = V(REF_DISCONNECT);
	spop_frame f;
	spop_disconnect d;
	size_t used;
	int rc;

	rc = frame1(v, 16380, &f, &used);
	tap_ok(rc == 1 && f.type == SPOP_FRAME_AGENT_DISCONNECT && f.sid == 0 && f.fid == 0,
	       "§1.8 AGENT-DISCONNECT header");
	rc = spop_disconnect_parse(f.payload, f.payload_len, &d);
	tap_ok(rc == 0 && d.has_status && d.status == 0 && d.message.len == 0,
	       "§1.8 AGENT-DISCONNECT: status 0, empty message");
	free(v.p);
	v = V("0B \"status-code\" 04 02 07 \"message\" 08 0E \"a timeout, bye\" 03 \"foo\" 11");
	rc = spop_disconnect_parse(v.p, v.len, &d);
	tap_ok(rc == 0 && d.status == 2 && str_eq(d.message, "a timeout, bye"),
	       "HAPROXY-DISCONNECT: INT64 status 2, message, unknown key skipped");
	free(v.p);
	v = V("07 \"message\" 03 00");
	tap_is_int(spop_disconnect_parse(v.p, v.len, &d), SPOP_EINVAL, "message not a STRING -> EINVAL");
	free(v.p);
	tap_ok(strcmp(spop_status_str(3), "frame is too big") == 0 &&
	       strcmp(spop_status_str(12), "frame-id not found") == 0 &&
	       strlen(spop_status_str(42)) > 0, "status code texts");
	tap_ok(strlen(spop_strerror(SPOP_ETOOBIG)) > 0 && strlen(spop_strerror(-100)) > 0 &&
	       strcmp(spop_strerror(SPOP_ETRUNC), spop_strerror(SPOP_ELEN)) != 0, "error texts");
}

/* --------------------------------------------------------- messages §1.7 */

static void test_messages(void)
{
	spop_iter it, args;
	spop_msg m;
	spop_str name;
	spop_data val;
	unsigned n = 99;
	vec v;
	int rc, i;

	v = V("");
	tap_ok(spop_msgs_check(v.p, 0, &n) == 0 && n == 0, "empty NOTIFY payload: 0 messages (3.1)");
	free(v.p);

	/* two messages, unnamed args, a message with no args */
	v = V("07 \"cap-req\" 03  00 06 0A 00 00 01  00 01  00 11"
	      " 07 \"cap-res\" 00");
	tap_ok(spop_msgs_check(v.p, v.len, &n) == 0 && n == 2, "two messages");
	spop_iter_init(&it, v.p, v.len);
	rc = spop_msg_next(&it, &m);
	tap_ok(rc == 1 && str_eq(m.name, "cap-req") && m.nargs == 3 && m.raw.ptr == v.p &&
	       m.raw.len == 19, "first message: 3 unnamed args, raw 19 bytes");
	args = m.args;
	for (i = 0; (rc = spop_arg_next(&args, &name, &val)) == 1; i++)
		if (name.len != 0)
			break;
	tap_ok(rc == 0 && i == 3, "three unnamed args iterate");
	rc = spop_msg_next(&it, &m);
	tap_ok(rc == 1 && str_eq(m.name, "cap-res") && m.nargs == 0 && m.raw.ptr == v.p + 19 &&
	       m.raw.len == 9 && m.args.p == m.args.end, "second message: no args");
	free(v.p);

	/* bad nargs: declares 3 args, carries 2 */
	v = V("03 \"req\" 03  06 \"method\" 08 03 \"GET\"  03 \"uid\" 08 02 \"ab\"");
	spop_iter_init(&it, v.p, v.len);
	rc = spop_msg_next(&it, &m);
	tap_ok(rc == SPOP_ETRUNC && it.p == v.p, "nargs 3 with 2 args -> ETRUNC, message not returned");
	tap_is_int(spop_msgs_check(v.p, v.len, &n), SPOP_ETRUNC, "msgs_check reports it");
	free(v.p);
	v = V("03 \"req\"");
	tap_is_int(spop_msgs_check(v.p, v.len, &n), SPOP_ETRUNC, "message without NB-ARGS -> ETRUNC");
	free(v.p);
	v = V("09 \"req\"");
	tap_is_int(spop_msgs_check(v.p, v.len, &n), SPOP_ELEN, "message name past end -> ELEN");
	free(v.p);
	v = V("03 \"req\" 01 01 \"a\" 0B");
	tap_is_int(spop_msgs_check(v.p, v.len, &n), SPOP_ETYPE, "arg with reserved type -> ETYPE");
	free(v.p);
	v = V("03 \"req\" 01 01 \"a\" 08 09 \"abc\"");
	tap_is_int(spop_msgs_check(v.p, v.len, &n), SPOP_ELEN, "arg string past end -> ELEN");
	free(v.p);
	v = V("03 \"req\" 00  03 \"res\" 01 05 \"a\"");
	rc = spop_msgs_check(v.p, v.len, &n);
	tap_ok(rc == SPOP_ELEN && n == 1, "a bad second message fails the list after 1 good one");
	free(v.p);

	/* 255 args, the most a message can carry */
	{
		uint8_t buf[2 + 2 + 255 * 2];
		size_t k = 0;
		buf[k++] = 1; buf[k++] = 'm'; buf[k++] = 0xFF;
		for (i = 0; i < 255; i++) {
			buf[k++] = 0x00;        /* unnamed */
			buf[k++] = 0x11;        /* BOOL true */
		}
		spop_iter_init(&it, buf, k);
		rc = spop_msg_next(&it, &m);
		tap_ok(rc == 1 && m.nargs == 255 && m.raw.len == k, "255 args");
	}
}

/* ---------------------------------------------------------- ACK §2.4 */

static void test_actions(void)
{
	spop_iter it;
	spop_action a;
	vec v;

	v = V("02 02 02 01 5F  01 03 03 04 \"flag\" 11  01 03 04 01 \"n\" 04 07");
	spop_iter_init(&it, v.p, v.len);
	tap_ok(spop_action_next(&it, &a) == 1 && a.type == SPOP_ACT_UNSET_VAR && a.nargs == 2 &&
	       a.scope == SPOP_SCOPE_TXN && str_eq(a.name, "_"), "unset-var txn _");
	tap_ok(spop_action_next(&it, &a) == 1 && a.type == SPOP_ACT_SET_VAR && a.nargs == 3 &&
	       a.scope == SPOP_SCOPE_REQ && str_eq(a.name, "flag") && a.value.type == SPOP_T_BOOL &&
	       a.value.v.b == 1, "set-var req flag = true");
	tap_ok(spop_action_next(&it, &a) == 1 && a.scope == SPOP_SCOPE_RES &&
	       a.value.type == SPOP_T_INT64 && a.value.v.i == 7, "set-var res n = INT64 7");
	tap_is_int(spop_action_next(&it, &a), 0, "end of actions");
	free(v.p);

	v = V("01 02 02 01 5F");
	spop_iter_init(&it, v.p, v.len);
	tap_is_int(spop_action_next(&it, &a), SPOP_EINVAL, "set-var with nargs 2 -> EINVAL");
	free(v.p);
	v = V("02 03 02 01 5F 00");
	spop_iter_init(&it, v.p, v.len);
	tap_is_int(spop_action_next(&it, &a), SPOP_EINVAL, "unset-var with nargs 3 -> EINVAL");
	free(v.p);
	v = V("03 02 02 01 5F");
	spop_iter_init(&it, v.p, v.len);
	tap_is_int(spop_action_next(&it, &a), SPOP_EINVAL, "unknown action type -> EINVAL");
	free(v.p);
	v = V("02 02 05 01 5F");
	spop_iter_init(&it, v.p, v.len);
	tap_is_int(spop_action_next(&it, &a), SPOP_EINVAL, "unknown scope 5 -> EINVAL");
	free(v.p);
	v = V("01 03 02 01 5F");
	spop_iter_init(&it, v.p, v.len);
	tap_is_int(spop_action_next(&it, &a), SPOP_ETRUNC, "set-var without value -> ETRUNC");
	free(v.p);
	v = V("02 02");
	spop_iter_init(&it, v.p, v.len);
	tap_is_int(spop_action_next(&it, &a), SPOP_ETRUNC, "action without scope -> ETRUNC");
	free(v.p);
}

/* ------------------------------------------------------ comma lists §3 */

static spop_str S(const char *s)
{
	spop_str r = { (const uint8_t *)s, strlen(s) };
	return r;
}

static void test_lists(void)
{
	spop_str none = { NULL, 0 };

	tap_ok(spop_list_has(S("pipelining,async"), "pipelining") &&
	       spop_list_has(S("pipelining,async"), "async"), "pipelining,async");
	tap_ok(spop_list_has(S("pipelining, async"), "async") &&
	       spop_list_has(S("pipelining, async"), "pipelining"), "pipelining, async");
	tap_ok(spop_list_has(S(" pipelining "), "pipelining"), "\" pipelining \"");
	tap_ok(spop_list_has(S("\tasync\t,\tpipelining\t"), "pipelining"), "tabs around items");
	tap_ok(!spop_list_has(S(""), "pipelining") && !spop_list_has(none, "pipelining"),
	       "empty list has nothing");
	tap_ok(!spop_list_has(S("pipelining"), "pipe") && !spop_list_has(S("pipeliningx"), "pipelining") &&
	       !spop_list_has(S("pipe lining"), "pipelining"), "whole items only");
	tap_ok(spop_list_has(S("a,,b"), "b") && !spop_list_has(S("a,,b"), ""), "empty items skipped");
	tap_ok(!spop_list_has(S("Pipelining"), "pipelining"), "case-sensitive like HAProxy");

	tap_ok(spop_versions_support(S("2.0"), 2, 0), "\"2.0\" supports 2.0");
	tap_ok(!spop_versions_support(S("2.0"), 1, 0) && !spop_versions_support(S("2.0"), 3, 0),
	       "\"2.0\" does not support 1.0 or 3.0");
	tap_ok(spop_versions_support(S("1.0, 2.0"), 2, 0) && spop_versions_support(S(" 2.0 "), 2, 0),
	       "lists with spaces");
	tap_ok(spop_versions_support(S("2.3"), 2, 0) && spop_versions_support(S("2.3"), 2, 3) &&
	       !spop_versions_support(S("2.3"), 2, 4), "a major covers its lower minors");
	tap_ok(!spop_versions_support(S("2"), 2, 0) && !spop_versions_support(S("2.0.1"), 2, 0) &&
	       !spop_versions_support(S("x.y"), 2, 0) && !spop_versions_support(S(""), 2, 0) &&
	       !spop_versions_support(S(".0"), 2, 0) && !spop_versions_support(S("2."), 2, 0) &&
	       !spop_versions_support(S("99999999999999999999.0"), 2, 0),
	       "malformed items are ignored");
	tap_ok(spop_versions_support(S("bogus,2.0"), 2, 0), "a bad item does not hide a good one");
}

/* -------------------------------------------------------------- encoders */

static void test_agent_frames(void)
{
	uint8_t out[512], ref[512];
	size_t n, rn;

	rn = hex(REF_AGENT_HELLO, ref, sizeof(ref));
	n = spop_agent_hello(out, sizeof(out), 16380, "pipelining");
	tap_is_mem(out, n, ref, rn, "AGENT-HELLO = ref §1.8 bytes");
	rn = hex(VTC_AGENT_HELLO, ref, sizeof(ref));
	n = spop_agent_hello(out, sizeof(out), 16380, "");
	tap_is_mem(out, n, ref, rn, "AGENT-HELLO with empty capabilities = HAProxy spop-check.vtc bytes");
	n = spop_agent_hello(out, sizeof(out), 16380, NULL);
	tap_is_mem(out, n, ref, rn, "AGENT-HELLO with NULL capabilities sends \"\"");
	tap_is_int(spop_agent_hello(out, sizeof(out), 60, "pipelining"), 0,
	           "AGENT-HELLO larger than its own max-frame-size -> 0");

	rn = hex(REF_DISCONNECT, ref, sizeof(ref));
	n = spop_agent_disconnect(out, sizeof(out), 0, "");
	tap_is_mem(out, n, ref, rn, "AGENT-DISCONNECT status 0 = ref §1.8 bytes");
	rn = hex("00 00 00 2C 66 00 00 00 01 00 00 0B \"status-code\" 03 03"
	         " 07 \"message\" 08 0D \"frame too big\"", ref, sizeof(ref));
	n = spop_agent_disconnect(out, sizeof(out), 3, "frame too big");
	tap_is_mem(out, n, ref, rn, "AGENT-DISCONNECT status 3 with a message");
	{
		char msg[301];
		memset(msg, 'x', 300);
		msg[300] = 0;
		/* 255 = FF 00; LENGTH 7 + 12 + 2 + 8 + 1 + 2 + 255 = 287 = 0x11F */
		rn = hex("00 00 01 1F 66 00 00 00 01 00 00 0B \"status-code\" 03 04"
		         " 07 \"message\" 08 FF 00", ref, sizeof(ref));
		memset(ref + rn, 'x', 255);
		rn += 255;
		n = spop_agent_disconnect(out, sizeof(out), 4, msg);
		tap_is_mem(out, n, ref, rn, "AGENT-DISCONNECT message cut to 255 bytes");
	}

	rn = hex("00 00 00 0C 67 00 00 00 01 05 01  02 02 02 01 5F", ref, sizeof(ref));
	n = spop_ack(out, sizeof(out), 5, 1, NULL, 0);
	tap_is_mem(out, n, ref, rn, "ACK sid 5 fid 1 = unset-var txn \"_\"");
	rn = hex("00 00 00 11 67 00 00 00 01 F0 95 E7 02 F0 80 00 02 02 02 01 5F", ref, sizeof(ref));
	n = spop_ack(out, sizeof(out), 1000000, 2288, NULL, 0);
	tap_is_mem(out, n, ref, rn, "ACK echoes multi-byte sid/fid");
	rn = hex("00 00 00 13 67 00 00 00 01 05 01  01 03 02 07 \"spooled\" 11", ref, sizeof(ref));
	n = spop_ack(out, sizeof(out), 5, 1, "spooled", 1);
	tap_is_mem(out, n, ref, rn, "ACK set-var txn spooled = true");
	rn = hex("00 00 00 13 67 00 00 00 01 00 01  01 03 02 07 \"spooled\" 01", ref, sizeof(ref));
	n = spop_ack(out, sizeof(out), 0, 1, "spooled", 0);
	tap_is_mem(out, n, ref, rn, "ACK set-var txn spooled = false, sid 0 (2.6)");
}

/* Encoders never write past cap: canary bytes after cap stay intact. */
static void test_encoder_bounds(void)
{
	uint8_t buf[400];
	size_t cap, n, full_h, full_d, full_a;
	int ok_h = 1, ok_d = 1, ok_a = 1, i;
	spop_wbuf w;

	full_h = spop_agent_hello(buf, sizeof(buf), 16380, "pipelining");
	full_d = spop_agent_disconnect(buf, sizeof(buf), 4, "invalid frame received");
	full_a = spop_ack(buf, sizeof(buf), 12345, 1, "spooled", 1);
	for (cap = 0; cap <= full_h; cap++) {
		memset(buf, 0xAA, sizeof(buf));
		n = spop_agent_hello(buf, cap, 16380, "pipelining");
		for (i = (int)cap; i < (int)sizeof(buf); i++)
			if (buf[i] != 0xAA)
				ok_h = 0;
		if (n != (cap == full_h ? full_h : 0))
			ok_h = 0;
	}
	for (cap = 0; cap <= full_d; cap++) {
		memset(buf, 0xAA, sizeof(buf));
		n = spop_agent_disconnect(buf, cap, 4, "invalid frame received");
		for (i = (int)cap; i < (int)sizeof(buf); i++)
			if (buf[i] != 0xAA)
				ok_d = 0;
		if (n != (cap == full_d ? full_d : 0))
			ok_d = 0;
	}
	for (cap = 0; cap <= full_a; cap++) {
		memset(buf, 0xAA, sizeof(buf));
		n = spop_ack(buf, cap, 12345, 1, "spooled", 1);
		for (i = (int)cap; i < (int)sizeof(buf); i++)
			if (buf[i] != 0xAA)
				ok_a = 0;
		if (n != (cap == full_a ? full_a : 0))
			ok_a = 0;
	}
	tap_ok(ok_h, "AGENT-HELLO: every cap 0..%zu writes nothing past cap, 0 until it fits", full_h);
	tap_ok(ok_d, "AGENT-DISCONNECT: every cap 0..%zu stays inside cap", full_d);
	tap_ok(ok_a, "ACK: every cap 0..%zu stays inside cap", full_a);

	memset(buf, 0xAA, sizeof(buf));
	spop_wbuf_init(&w, buf, 3);
	spop_put_varint(&w, 1000000);
	tap_ok(w.overflow && w.len == 0 && buf[0] == 0xAA, "4-byte varint into a 3-byte wbuf: overflow, nothing written");
	spop_wbuf_init(&w, buf, 8);
	spop_put_str(&w, SPOP_T_STRING, "abcdefgh", 8);
	spop_put_bytes(&w, "z", 1);
	tap_ok(w.overflow && w.len <= 8 && buf[8] == 0xAA, "STRING overflow is sticky and bounded");
	spop_wbuf_init(&w, buf, sizeof(buf));
	{
		spop_data bad;
		memset(&bad, 0, sizeof(bad));
		bad.type = 12;
		spop_put_data(&w, &bad);
		tap_ok(w.overflow, "put_data with a reserved type fails the buffer");
	}
	spop_wbuf_init(&w, buf, 10);
	n = spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, 1000000, 1);
	tap_ok(spop_frame_end(&w, n) == 0, "frame_end after overflow -> 0");
}

/* ------------------------------------------------------------ round trips */

static void rand_data(spop_data *d, uint8_t *store, size_t cap)
{
	size_t i, n;

	memset(d, 0, sizeof(*d));
	d->type = (uint8_t)(rnd() % 10);
	switch (d->type) {
	case SPOP_T_BOOL:
		d->v.b = (int)(rnd() & 1);
		break;
	case SPOP_T_INT32: case SPOP_T_INT64:
		d->v.u = rnd() >> (rnd() % 64);
		if (rnd() & 1)
			d->v.u = ~d->v.u + 1;   /* negative, read through v.i */
		break;
	case SPOP_T_UINT32: case SPOP_T_UINT64:
		d->v.u = rnd() >> (rnd() % 64);
		break;
	case SPOP_T_IPV4: case SPOP_T_IPV6:
		for (i = 0; i < 16; i++)
			d->v.ip[i] = (uint8_t)rnd();
		break;
	case SPOP_T_STRING: case SPOP_T_BINARY:
		n = rnd() % 8 == 0 ? 240 + rnd() % 300 : rnd() % 20;
		if (n > cap)
			n = cap;
		for (i = 0; i < n; i++)
			store[i] = (uint8_t)rnd();
		d->v.s.ptr = store;
		d->v.s.len = n;
		break;
	}
}

static int data_same(const spop_data *a, const spop_data *b)
{
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case SPOP_T_NULL:
		return 1;
	case SPOP_T_BOOL:
		return a->v.b == b->v.b;
	case SPOP_T_INT32: case SPOP_T_INT64:
		return a->v.i == b->v.i;
	case SPOP_T_UINT32: case SPOP_T_UINT64:
		return a->v.u == b->v.u;
	case SPOP_T_IPV4:
		return memcmp(a->v.ip, b->v.ip, 4) == 0;
	case SPOP_T_IPV6:
		return memcmp(a->v.ip, b->v.ip, 16) == 0;
	}
	return a->v.s.len == b->v.s.len && memcmp(a->v.s.ptr, b->v.s.ptr, a->v.s.len) == 0;
}

/* Random NOTIFY frames: encode messages and args, decode them back. */
static void test_notify_roundtrip(void)
{
	static uint8_t frame[65536], store[64][600];
	int iter, ok = 1, nmsg_ok = 1;

	for (iter = 0; iter < 500 && ok; iter++) {
		spop_data sent[64];
		char names[64][8];
		size_t namelen[64];
		unsigned nmsgs = 1 + rnd() % 4, nargs[4], k = 0, m, a, got;
		uint64_t sid = rnd() >> (rnd() % 64), fid = rnd() % 300;
		spop_wbuf w;
		size_t start, len, used;
		spop_frame f;
		spop_iter it, ai;
		spop_msg msg;
		uint8_t *c;

		spop_wbuf_init(&w, frame, sizeof(frame));
		start = spop_frame_begin(&w, SPOP_FRAME_NOTIFY, SPOP_FLAG_FIN, sid, fid);
		for (m = 0; m < nmsgs; m++) {
			nargs[m] = rnd() % 16;
			spop_put_name(&w, "msg", 3);
			spop_put_bytes(&w, &(uint8_t){ (uint8_t)nargs[m] }, 1);
			for (a = 0; a < nargs[m]; a++, k++) {
				int nl = snprintf(names[k], sizeof(names[k]), "a%u", k);
				rand_data(&sent[k], store[k], sizeof(store[k]));
				namelen[k] = rnd() % 4 ? (size_t)nl : 0;
				spop_put_name(&w, names[k], namelen[k]);
				spop_put_data(&w, &sent[k]);
			}
		}
		len = spop_frame_end(&w, start);
		c = dup_exact(frame, len);
		if (spop_frame_get(c, len, 65536, &f, &used) != 1 || used != len ||
		    f.sid != sid || f.fid != fid) {
			ok = 0;
			free(c);
			break;
		}
		if (spop_msgs_check(f.payload, f.payload_len, &got) != 0 || got != nmsgs)
			nmsg_ok = 0;
		spop_iter_init(&it, f.payload, f.payload_len);
		k = 0;
		for (m = 0; spop_msg_next(&it, &msg) == 1; m++) {
			spop_str name;
			spop_data val;
			if (msg.nargs != nargs[m] || !str_eq(msg.name, "msg"))
				ok = 0;
			ai = msg.args;
			for (a = 0; spop_arg_next(&ai, &name, &val) == 1; a++, k++)
				if (!data_same(&val, &sent[k]) || name.len != namelen[k] ||
				    memcmp(name.ptr, names[k], name.len) != 0)
					ok = 0;
			if (a != nargs[m])
				ok = 0;
		}
		if (m != nmsgs)
			ok = 0;
		free(c);
	}
	tap_ok(ok, "500 random NOTIFY frames (every type, ids, unnamed args) round trip");
	tap_ok(nmsg_ok, "spop_msgs_check counts their messages");
}

static void test_kv_roundtrip(void)
{
	uint8_t frame[1024], caps[64];
	int iter, ok = 1;

	for (iter = 0; iter < 300 && ok; iter++) {
		uint32_t mfs = (uint32_t)(256 + rnd() % 0xFFFFFF00u);
		size_t cl = rnd() % 40, i, n, used;
		spop_frame f;
		spop_hello h;

		for (i = 0; i < cl; i++)
			caps[i] = (uint8_t)('a' + rnd() % 26);
		caps[cl] = 0;
		n = spop_agent_hello(frame, sizeof(frame), mfs, (char *)caps);
		if (n == 0 || spop_frame_get(frame, n, mfs, &f, &used) != 1 || used != n ||
		    spop_hello_parse(f.payload, f.payload_len, &h) != 0 ||
		    !str_eq(h.versions, "2.0") || h.max_frame_size != mfs ||
		    !str_eq(h.capabilities, (char *)caps))
			ok = 0;
	}
	tap_ok(ok, "300 random AGENT-HELLOs parse back (max-frame-size, capabilities)");
}

/* -------------------------------------------- every prefix never overreads */

static void test_prefixes(void)
{
	vec v = V(REF_NOTIFY);
	size_t L, k;
	int ok = 1;

	/* the payload cut anywhere: only the empty and the full list are valid */
	for (k = 0; k <= 25; k++) {
		uint8_t *c = dup_exact(v.p + 11, k);
		unsigned n;
		int rc = spop_msgs_check(c, k, &n);
		if ((k == 0 || k == 25) ? rc != 0 : rc >= 0)
			ok = 0;
		free(c);
	}
	tap_ok(ok, "NOTIFY payload: every cut 1..24 is an error, 0 and 25 are valid");

	/* LENGTH rewritten to each cut: the frame is "complete" but short */
	ok = 1;
	for (L = 0; L <= 32; L++) {
		uint8_t *c = dup_exact(v.p, 4 + L);
		spop_frame f;
		size_t used;
		unsigned n;
		int rc;

		c[3] = (uint8_t)L;
		rc = spop_frame_get(c, 4 + L, 16380, &f, &used);
		if (L < 7) {
			if (rc != SPOP_ESHORT)
				ok = 0;
		} else if (rc != 1) {
			ok = 0;
		} else {
			rc = spop_msgs_check(f.payload, f.payload_len, &n);
			if ((L == 7 || L == 32) ? rc != 0 : rc >= 0)
				ok = 0;
		}
		free(c);
	}
	tap_ok(ok, "NOTIFY with LENGTH 0..32: ESHORT, then errors except at message boundaries");
	free(v.p);

	/* HAPROXY-HELLO payload cut anywhere: valid only between KV items */
	v = V(HELLO_26);
	ok = 1;
	for (k = 0; k <= v.len - 11; k++) {
		uint8_t *c = dup_exact(v.p + 11, k);
		spop_hello h;
		int rc = spop_hello_parse(c, k, &h);
		int boundary = k == 0 || k == 24 || k == 43 || k == 74 || k == 122;
		if (boundary ? rc != 0 : rc >= 0)
			ok = 0;
		free(c);
	}
	tap_ok(ok, "2.6 HELLO payload: every cut is an error except at KV boundaries");
	free(v.p);
}

int main(void)
{
	(void)tap_plan;         /* the plan is printed at the end (tap_done) */
	test_varint_table();
	test_varint_bad();
	test_varint_roundtrip();
	test_data_types();
	test_names();
	test_frame_notify();
	test_frame_errors();
	test_hello_parse();
	test_kv();
	test_disconnect();
	test_messages();
	test_actions();
	test_lists();
	test_agent_frames();
	test_encoder_bounds();
	test_notify_roundtrip();
	test_kv_roundtrip();
	test_prefixes();
	return tap_done(0);
}
