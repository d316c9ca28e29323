/* t-json.c -- the JSON writer: escaping, UTF-8 validation, base64 (RFC 4648
 * vectors), integers, the hard cap. Expected strings are written by hand;
 * long inputs are checked against a deliberately naive reference escaper. */
#include <stdlib.h>

#include "spoolcap/json.h"
#include "tap.h"

static json_buf b;

/* Renders with fn and compares with the expected text. */
#define CHECK(expr, want, ...) do { \
	json_reset(&b); \
	expr; \
	tap_is_mem(b.data, b.len, (want), strlen(want), __VA_ARGS__); \
	if (b.len != strlen(want) || memcmp(b.data, (want), b.len)) \
		tap_diag("  got [%.*s]", (int)b.len, b.data ? b.data : ""); \
} while (0)

#define S(lit) (lit), sizeof(lit) - 1

static void test_escapes(void)
{
	CHECK(json_str(&b, S("")), "\"\"", "empty string");
	CHECK(json_str(&b, S("plain text / ok")), "\"plain text / ok\"", "plain ASCII, '/' not escaped");
	CHECK(json_str(&b, S("a\"b\\c")), "\"a\\\"b\\\\c\"", "quote and backslash");
	CHECK(json_str(&b, S("\b\f\n\r\t")), "\"\\b\\f\\n\\r\\t\"", "short escapes");
	CHECK(json_str(&b, S("\x01")), "\"\\u0001\"", "U+0001 as \\u0001");
	CHECK(json_str(&b, S("\x1f")), "\"\\u001f\"", "U+001F");
	CHECK(json_str(&b, S("\0")), "\"\\u0000\"", "NUL byte");
	CHECK(json_str(&b, S("\x7f")), "\"\\u007f\"", "DEL escaped");
	CHECK(json_str(&b, S("x\x0by")), "\"x\\u000by\"", "vertical tab");
	CHECK(json_str(&b, S("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")),
	      "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", "2-, 3- and 4-byte UTF-8 kept");
	CHECK(json_str(&b, S("\xe2\x80\xa8|\xe2\x80\xa9")), "\"\\u2028|\\u2029\"",
	      "U+2028/U+2029 escaped");
	CHECK(json_str(&b, S("a\xff" "b")), "\"a\xef\xbf\xbd" "b\"", "json_str: invalid byte -> U+FFFD");
	CHECK(json_str(&b, S("\xe2\x82")), "\"\xef\xbf\xbd\xef\xbf\xbd\"",
	      "json_str: truncated sequence -> one U+FFFD per byte");
	CHECK(json_esc(&b, S("k\"")), "k\\\"", "json_esc has no quotes");
	/* Every escape position relative to the 8-byte fast path. */
	{
		int pos, okall = 1;

		for (pos = 0; pos < 20; pos++) {
			char in[21], want[40];
			size_t wl = 0;
			int i;

			for (i = 0; i < 20; i++)
				in[i] = i == pos ? '"' : 'a';
			want[wl++] = '"';
			for (i = 0; i < 20; i++) {
				if (i == pos)
					want[wl++] = '\\';
				want[wl++] = in[i];
			}
			want[wl++] = '"';
			json_reset(&b);
			json_str(&b, in, 20);
			if (b.len != wl || memcmp(b.data, want, wl))
				okall = 0;
		}
		tap_ok(okall, "a quote found at each of 20 positions");
	}
}

static void test_bytes(void)
{
	CHECK(json_bytes(&b, S("hello")), "\"hello\"", "bytes: valid UTF-8 -> string");
	CHECK(json_bytes(&b, S("\xc3\xa9\n")), "\"\xc3\xa9\\n\"", "bytes: UTF-8 with escape");
	CHECK(json_bytes(&b, S("\xff")), "{\"base64\":\"/w==\"}", "bytes: FF -> base64");
	CHECK(json_bytes(&b, S("a\xff" "b")), "{\"base64\":\"Yf9i\"}", "bytes: a FF b -> base64");
	CHECK(json_bytes(&b, S("\xc0\xaf")), "{\"base64\":\"wK8=\"}", "bytes: overlong 2-byte '/' rejected");
	CHECK(json_bytes(&b, S("\xe0\x80\xaf")), "{\"base64\":\"4ICv\"}", "bytes: overlong 3-byte rejected");
	CHECK(json_bytes(&b, S("\xed\xa0\x80")), "{\"base64\":\"7aCA\"}", "bytes: surrogate U+D800 rejected");
	CHECK(json_bytes(&b, S("\xf4\x90\x80\x80")), "{\"base64\":\"9JCAgA==\"}", "bytes: U+110000 rejected");
	CHECK(json_bytes(&b, S("\xe2\x82")), "{\"base64\":\"4oI=\"}", "bytes: truncated sequence rejected");
	CHECK(json_bytes(&b, S("\x80")), "{\"base64\":\"gA==\"}", "bytes: lone continuation rejected");
	CHECK(json_bytes(&b, S("")), "\"\"", "bytes: empty -> empty string");
}

static void test_utf8(void)
{
	static const struct {
		const char *s;
		size_t n;
		int valid;
		const char *what;
	} v[] = {
		{ S("ascii only text here"), 1, "ASCII" },
		{ S("\xc2\x80"), 1, "U+0080" },
		{ S("\xdf\xbf"), 1, "U+07FF" },
		{ S("\xe0\xa0\x80"), 1, "U+0800" },
		{ S("\xed\x9f\xbf"), 1, "U+D7FF" },
		{ S("\xee\x80\x80"), 1, "U+E000" },
		{ S("\xef\xbf\xbf"), 1, "U+FFFF" },
		{ S("\xf0\x90\x80\x80"), 1, "U+10000" },
		{ S("\xf4\x8f\xbf\xbf"), 1, "U+10FFFF" },
		{ S("\xc0\x80"), 0, "overlong NUL C0 80" },
		{ S("\xc1\xbf"), 0, "overlong C1 BF" },
		{ S("\xe0\x9f\xbf"), 0, "overlong E0 9F BF" },
		{ S("\xf0\x8f\xbf\xbf"), 0, "overlong F0 8F BF BF" },
		{ S("\xed\xa0\x80"), 0, "surrogate U+D800" },
		{ S("\xed\xbf\xbf"), 0, "surrogate U+DFFF" },
		{ S("\xed\xa0\xbd\xed\xb8\x80"), 0, "CESU-8 surrogate pair" },
		{ S("\xf4\x90\x80\x80"), 0, "U+110000" },
		{ S("\xf5\x80\x80\x80"), 0, "F5 lead" },
		{ S("\xff"), 0, "FF" },
		{ S("\xc3"), 0, "truncated 2-byte" },
		{ S("\xf0\x9f\x98"), 0, "truncated 4-byte" },
		{ S("\xc3\x28"), 0, "bad continuation" },
		{ S("abcdefgh\x80"), 0, "continuation after 8 ASCII bytes" },
	};
	size_t i;

	for (i = 0; i < sizeof v / sizeof v[0]; i++)
		tap_is_int(json_utf8_valid(v[i].s, v[i].n), v[i].valid, "utf8: %s", v[i].what);
}

static void test_base64(void)
{
	/* RFC 4648 section 10. */
	CHECK(json_base64(&b, S("")), "", "base64 \"\"");
	CHECK(json_base64(&b, S("f")), "Zg==", "base64 f");
	CHECK(json_base64(&b, S("fo")), "Zm8=", "base64 fo");
	CHECK(json_base64(&b, S("foo")), "Zm9v", "base64 foo");
	CHECK(json_base64(&b, S("foob")), "Zm9vYg==", "base64 foob");
	CHECK(json_base64(&b, S("fooba")), "Zm9vYmE=", "base64 fooba");
	CHECK(json_base64(&b, S("foobar")), "Zm9vYmFy", "base64 foobar");
	CHECK(json_base64(&b, S("\xfb\xff\xbf")), "+/+/", "base64 uses + and /");
	tap_is_int(json_base64_len(0), 0, "base64 len 0");
	tap_is_int(json_base64_len(4), 8, "base64 len 4");
}

static void test_numbers(void)
{
	CHECK(json_u64(&b, 0), "0", "u64 0");
	CHECK(json_u64(&b, 9), "9", "u64 9");
	CHECK(json_u64(&b, 10), "10", "u64 10");
	CHECK(json_u64(&b, 100), "100", "u64 100");
	CHECK(json_u64(&b, 1234567), "1234567", "u64 1234567");
	CHECK(json_u64(&b, UINT64_MAX), "18446744073709551615", "u64 max");
	CHECK(json_i64(&b, -1), "-1", "i64 -1");
	CHECK(json_i64(&b, 42), "42", "i64 42");
	CHECK(json_i64(&b, INT64_MIN), "-9223372036854775808", "i64 min");
	CHECK(json_i64(&b, INT64_MAX), "9223372036854775807", "i64 max");
}

/* Naive reference: one byte at a time, same rules. */
static size_t ref_escape(const unsigned char *s, size_t n, char *o)
{
	size_t i, k = 0;

	o[k++] = '"';
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\') {
			o[k++] = '\\';
			o[k++] = (char)c;
		} else if (c == '\n') {
			o[k++] = '\\';
			o[k++] = 'n';
		} else if (c < 0x20 && c != '\b' && c != '\f' && c != '\r' && c != '\t') {
			k += (size_t)sprintf(o + k, "\\u%04x", c);
		} else if (c == 0x7f) {
			k += (size_t)sprintf(o + k, "\\u007f");
		} else if (c < 0x20) {
			o[k++] = '\\';
			o[k++] = c == '\b' ? 'b' : c == '\f' ? 'f' : c == '\r' ? 'r' : 't';
		} else {
			o[k++] = (char)c;
		}
	}
	o[k++] = '"';
	return k;
}

static void test_long(void)
{
	size_t n = 50000, i, wl;
	unsigned char *in = malloc(n);
	char *want = malloc(n * 6 + 2);
	unsigned seed = 12345;
	int same;

	/* Mostly ASCII runs with escapes and 2/3-byte characters sprinkled,
	 * including across the 4096-byte chunk boundaries. */
	for (i = 0; i < n; i++) {
		seed = seed * 1103515245 + 12345;
		in[i] = (unsigned char)(' ' + (seed >> 16) % 95);
		if ((seed >> 8) % 97 == 0)
			in[i] = (unsigned char)((seed >> 4) % 32);
		if ((seed >> 8) % 89 == 0)
			in[i] = '"';
	}
	for (i = 4094; i + 3 < n; i += 4096) {
		in[i] = 0xe2;
		in[i + 1] = 0x82;
		in[i + 2] = 0xac;
	}
	in[100] = 0xc3;
	in[101] = 0xa9;
	wl = ref_escape(in, n, want);
	json_reset(&b);
	json_bytes(&b, in, n);
	same = b.len == wl && memcmp(b.data, want, wl) == 0;
	tap_ok(same, "50000-byte mixed string matches the reference escaper");

	/* Invalid at the very end: the whole string falls back to base64. */
	in[n - 1] = 0xff;
	json_reset(&b);
	json_bytes(&b, in, n);
	tap_ok(b.len == 11 + json_base64_len(n) + 2 && memcmp(b.data, "{\"base64\":\"", 11) == 0,
	       "invalid last byte -> whole value base64");
	free(in);
	free(want);
}

static void test_cap(void)
{
	json_buf c;
	size_t mark;

	json_init(&c, 10);
	json_raw(&c, "0123456789", 10);
	tap_ok(c.err == 0 && c.len == 10, "exactly at the cap is fine");
	json_char(&c, 'x');
	tap_is_int(c.err, JSON_ETOOBIG, "one byte over the cap -> ETOOBIG");
	json_raw(&c, "y", 1);
	tap_is_int(c.err, JSON_ETOOBIG, "error is sticky");
	json_rollback(&c, 4);
	tap_ok(c.err == 0 && c.len == 4, "rollback truncates and clears the error");
	mark = c.len;
	json_bytes(&c, "a long string value", 19);
	tap_is_int(c.err, JSON_ETOOBIG, "string over the cap -> ETOOBIG");
	json_rollback(&c, mark);
	json_str(&c, "abcd", 4);
	tap_ok(c.err == 0 && c.len == 10 && memcmp(c.data, "0123\"abcd\"", 10) == 0,
	       "string ending exactly at the cap");
	json_free(&c);

	json_init(&c, 100000);
	{
		char *big = malloc(200000);

		memset(big, '\x01', 200000);
		json_str(&c, big, 20000);   /* 120002 bytes > cap */
		tap_is_int(c.err, JSON_ETOOBIG, "escaped output over the cap -> ETOOBIG");
		tap_ok(c.cap <= 100000 + 6 * 4096 + 64, "memory stays within cap + slack (%zu)", c.cap);
		free(big);
	}
	json_free(&c);

	/* The escaped form of the first 4096 bytes passes the cap before the
	 * invalid byte is seen; the base64 form fits and must be used. */
	json_init(&c, 10000);
	{
		char *s = malloc(4097);

		memset(s, '\x01', 4096);
		s[4096] = '\xff';
		json_bytes(&c, s, 4097);
		tap_ok(c.err == 0 && c.len == 11 + json_base64_len(4097) + 2 &&
		       !memcmp(c.data, "{\"base64\":\"AQEB", 15),
		       "invalid UTF-8 whose escaped form exceeds the cap -> base64 that fits");
		free(s);
	}
	json_free(&c);
}

int main(void)
{
	(void)tap_plan;         /* plan printed at the end by tap_done */
	json_init(&b, 1 << 24);
	test_escapes();
	test_bytes();
	test_utf8();
	test_base64();
	test_numbers();
	test_long();
	test_cap();
	json_free(&b);
	return tap_done(0);
}
