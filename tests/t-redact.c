/* t-redact.c -- redact.c on hand-built SPOP messages: binary (hdrs_bin)
 * and text header blocks, every action (redact, drop, hash with RFC 4231
 * HMAC-SHA256 vectors, keep), bodies capped and dropped, malformed blocks
 * failing closed, the growth bound, and re-encoding that keeps every other
 * argument byte for byte. Expected bytes are written out by hand; hex
 * escapes always end a string literal ("\x0b" "example") so that no
 * following letter is read as a hex digit. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "spoolcap/redact.h"
#include "tap.h"

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

static const uint8_t key_tc1[20] = {
	0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
	0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
};
/* RFC 4231 test case 1 (key 20 x 0x0b, "Hi There"), first 128 bits. */
#define TC1_HASH "hmac:b0344c61d8db38535ca8afceaf0bf12b"
/* RFC 4231 test case 6 (key 131 x 0xaa), first 128 bits. */
#define TC6_DATA "Test Using Larger Than Block-Size Key - Hash Key First"
#define TC6_HASH "hmac:60e431591ee0b67f0d8a26aacbf5b77f"

static redact_rules *rules;
static redact_ctx *ctx;

/* Builds rules + one context from c (the previous ones are freed). */
static int setup(const redact_config *c)
{
	char err[256];

	redact_ctx_free(ctx);
	redact_free(rules);
	ctx = NULL;
	rules = NULL;
	if (redact_new(c, &rules, err, sizeof err) < 0 || !rules) {
		tap_diag("redact_new: %s", rules ? "" : err);
		return -1;
	}
	ctx = redact_ctx_new(rules, err, sizeof err);
	if (!ctx)
		tap_diag("redact_ctx_new: %s", err);
	return ctx ? 0 : -1;
}

/* Runs one message (raw wire bytes) through ctx. */
static int run(const uint8_t *in, size_t len, const uint8_t **out, size_t *outlen)
{
	spop_iter it;
	spop_msg m;

	spop_iter_init(&it, in, len);
	if (spop_msg_next(&it, &m) != 1 || it.p != it.end) {
		tap_diag("test input is not one valid message");
		return -9;
	}
	return redact_msg(ctx, &m, out, outlen);
}

/* Checks that in becomes exactly want; returns the flags. */
static int expect(const char *what, const uint8_t *in, size_t len, const uint8_t *want,
                  size_t wlen)
{
	const uint8_t *out;
	size_t olen;
	int rc = run(in, len, &out, &olen);

	tap_is_mem(out, olen, want, wlen, "%s", what);
	return rc;
}

static redact_stats stats(void)
{
	redact_stats st;

	memset(&st, 0, sizeof st);
	redact_ctx_stats(ctx, &st);
	return st;
}

static int has(const uint8_t *p, size_t n, const char *needle)
{
	return memmem(p, n, needle, strlen(needle)) != NULL;
}

/* 1 if p..n is exactly one valid message with nargs arguments. */
static int valid_msg(const uint8_t *p, size_t n, unsigned nargs)
{
	spop_iter it;
	spop_msg m;

	spop_iter_init(&it, p, n);
	return spop_msg_next(&it, &m) == 1 && it.p == it.end && m.nargs == nargs;
}

/* ---- binary header blocks ---- */

/* message "m", 3 args: uid="ab", hdrs=BINARY block, unnamed INT64 42 */
#define BIN_IN \
	"\x01" "m" "\x03" \
	"\x03" "uid" "\x08" "\x02" "ab" \
	"\x04" "hdrs" "\x09" "\x39" \
		"\x04" "host" "\x0b" "example.com" \
		"\x0d" "authorization" "\x0a" "Bearer xyz" \
		"\x06" "cookie" "\x05" "a=b;c" \
		"\x00\x00" \
	"\x00" "\x04" "\x2a"

static void test_binary(void)
{
	static const redact_config defaults;          /* the default list */
	static const redact_rule drop_cookie[] = { { "Cookie", REDACT_DROP } };
	static const redact_rule keep_auth[] = { { "authorization", REDACT_KEEP } };
	redact_config c;
	redact_stats st;
	const uint8_t *out;
	size_t olen;
	int rc;

	if (setup(&defaults) < 0) {
		tap_ok(0, "default rules build");
		return;
	}
	rc = expect("default rules: authorization and cookie values become <redacted>",
	            S(BIN_IN), S(
	"\x01" "m" "\x03"
	"\x03" "uid" "\x08" "\x02" "ab"
	"\x04" "hdrs" "\x09" "\x3e"
		"\x04" "host" "\x0b" "example.com"
		"\x0d" "authorization" "\x0a" "<redacted>"
		"\x06" "cookie" "\x0a" "<redacted>"
		"\x00\x00"
	"\x00" "\x04" "\x2a"));
	tap_is_int(rc, REDACT_CHANGED, "... flagged as changed, not truncated");
	st = stats();
	tap_ok(st.headers_redacted == 2 && st.messages_changed == 1 && st.headers_dropped == 0 &&
	       st.blocks_failed == 0, "... counted: 2 headers redacted, 1 message changed");

	/* Nothing to do: the input itself comes back, no copy. */
	{
		static const uint8_t in[] =
			"\x01" "m" "\x01" "\x04" "hdrs" "\x09" "\x0a"
			"\x04" "host" "\x02" "h1" "\x00\x00";
		rc = run(in, sizeof in - 1, &out, &olen);
		tap_ok(rc == 0 && out == in && olen == sizeof in - 1,
		       "a block without a listed header is stored as received (same pointer)");
	}
	/* Names compare case-blind both ways (HTX lower-cases; h1 may not). */
	expect("Authorization in capitals is redacted too", S(
		"\x01" "m" "\x01" "\x04" "hdrs" "\x09" "\x14"
		"\x0d" "Authorization" "\x03" "xyz" "\x00\x00"), S(
		"\x01" "m" "\x01" "\x04" "hdrs" "\x09" "\x1b"
		"\x0d" "Authorization" "\x0a" "<redacted>" "\x00\x00"));
	expect("set-cookie and proxy-authorization are on the default list", S(
		"\x01" "r" "\x01" "\x04" "hdrs" "\x09" "\x29"
		"\x0a" "set-cookie" "\x03" "s=1"
		"\x13" "proxy-authorization" "\x03" "p:w" "\x00\x00"), S(
		"\x01" "r" "\x01" "\x04" "hdrs" "\x09" "\x37"
		"\x0a" "set-cookie" "\x0a" "<redacted>"
		"\x13" "proxy-authorization" "\x0a" "<redacted>" "\x00\x00"));

	/* drop: header-action Cookie:drop (config case does not matter) */
	memset(&c, 0, sizeof c);
	c.rules = drop_cookie;
	c.nrules = 1;
	if (setup(&c) == 0) {
		expect("cookie:drop removes the cookie header; authorization still redacted",
		       S(BIN_IN), S(
		"\x01" "m" "\x03"
		"\x03" "uid" "\x08" "\x02" "ab"
		"\x04" "hdrs" "\x09" "\x2c"
			"\x04" "host" "\x0b" "example.com"
			"\x0d" "authorization" "\x0a" "<redacted>"
			"\x00\x00"
		"\x00" "\x04" "\x2a"));
		st = stats();
		tap_ok(st.headers_dropped == 1 && st.headers_redacted == 1, "... counted as dropped");
	}

	/* keep takes a name off the default list */
	c.rules = keep_auth;
	if (setup(&c) == 0) {
		expect("authorization:keep keeps it; cookie still redacted", S(BIN_IN), S(
		"\x01" "m" "\x03"
		"\x03" "uid" "\x08" "\x02" "ab"
		"\x04" "hdrs" "\x09" "\x3e"
			"\x04" "host" "\x0b" "example.com"
			"\x0d" "authorization" "\x0a" "Bearer xyz"
			"\x06" "cookie" "\x0a" "<redacted>"
			"\x00\x00"
		"\x00" "\x04" "\x2a"));
	}

	/* an explicit empty list and no body rule: nothing would change */
	memset(&c, 0, sizeof c);
	c.headers = (const char *const[]){ "x" };
	c.nheaders = 0;
	{
		redact_rules *r = (redact_rules *)1;
		char err[128];

		tap_ok(redact_new(&c, &r, err, sizeof err) == 0 && r == NULL,
		       "redact-headers = none and no body rule: no rules at all (zero cost)");
	}
}

/* ---- hash ---- */

static void test_hash(void)
{
	static const redact_rule hash_cookie[] = { { "cookie", REDACT_HASH } };
	static uint8_t key_tc6[131];
	redact_config c;
	const uint8_t *out;
	size_t olen;

	memset(&c, 0, sizeof c);
	c.rules = hash_cookie;
	c.nrules = 1;
	c.hash_key = key_tc1;
	c.hash_key_len = sizeof key_tc1;
	if (setup(&c) < 0) {
		tap_ok(0, "hash rules build");
		return;
	}
	expect("cookie:hash: HMAC-SHA256 (RFC 4231 case 1), 128 bits in hex, twice the same",
	       S("\x01" "m" "\x01" "\x04" "hdrs" "\x09" "\x22"
	         "\x06" "cookie" "\x08" "Hi There"
	         "\x06" "cookie" "\x08" "Hi There" "\x00\x00"),
	       S("\x01" "m" "\x01" "\x04" "hdrs" "\x09" "\x5c"
	         "\x06" "cookie" "\x25" TC1_HASH
	         "\x06" "cookie" "\x25" TC1_HASH "\x00\x00"));
	tap_is_int(stats().headers_hashed, 2, "... counted as hashed");
	run(S("\x01" "m" "\x01" "\x04" "hdrs" "\x09" "\x0c"
	      "\x06" "cookie" "\x02" "zz" "\x00\x00"), &out, &olen);
	tap_ok(!has(out, olen, TC1_HASH) && has(out, olen, "hmac:") && !has(out, olen, "zz"),
	       "another value hashes differently");
	expect("the context keeps its key between messages (same vector again)",
	       S("\x01" "m" "\x01" "\x04" "hdrs" "\x09" "\x12"
	         "\x06" "cookie" "\x08" "Hi There" "\x00\x00"),
	       S("\x01" "m" "\x01" "\x04" "hdrs" "\x09" "\x2f"
	         "\x06" "cookie" "\x25" TC1_HASH "\x00\x00"));
	expect("text block: the value after the spaces is hashed",
	       S("\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x14" "cookie: Hi There\r\n\r\n"),
	       S("\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x31" "cookie: " TC1_HASH "\r\n\r\n"));

	memset(key_tc6, 0xaa, sizeof key_tc6);
	c.hash_key = key_tc6;
	c.hash_key_len = sizeof key_tc6;
	if (setup(&c) == 0)
		expect("a key longer than SHA-256's block (RFC 4231 case 6)",
		       S("\x01" "m" "\x01" "\x04" "hdrs" "\x09" "\x40"
		         "\x06" "cookie" "\x36" TC6_DATA "\x00\x00"),
		       S("\x01" "m" "\x01" "\x04" "hdrs" "\x09" "\x2f"
		         "\x06" "cookie" "\x25" TC6_HASH "\x00\x00"));
}

/* ---- text header blocks ---- */

static void test_text(void)
{
	static const redact_config defaults;
	static const redact_rule drop_auth[] = { { "authorization", REDACT_DROP } };
	redact_config c;

	if (setup(&defaults) < 0) {
		tap_ok(0, "default rules build");
		return;
	}
	expect("text block (STRING, req.hdrs): values redacted, spacing and CRLF kept", S(
		"\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x49"
		"Host: example.com\r\nAuthorization: Bearer xyz\r\nCookie:a=b \r\n"
		"X-Other: 1\r\n\r\n"), S(
		"\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x50"
		"Host: example.com\r\nAuthorization: <redacted>\r\nCookie:<redacted> \r\n"
		"X-Other: 1\r\n\r\n"));
	expect("a text block in a BINARY argument is recognised too", S(
		"\x01" "m" "\x01" "\x07" "headers" "\x09" "\x0f" "cookie: abc\r\n\r\n"), S(
		"\x01" "m" "\x01" "\x07" "headers" "\x09" "\x16" "cookie: <redacted>\r\n\r\n"));
	expect("a binary block in a STRING argument is recognised too", S(
		"\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x0c"
		"\x06" "cookie" "\x02" "ab" "\x00\x00"), S(
		"\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x14"
		"\x06" "cookie" "\x0a" "<redacted>" "\x00\x00"));
	expect("LF line ends, no final empty line (a cut block): still line by line", S(
		"\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x17" "host: a\ncookie: s3cr3t\n"), S(
		"\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x1b" "host: a\ncookie: <redacted>\n"));
	expect("a last line without its line end is redacted too", S(
		"\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x1b" "host: a\r\nauthorization: sec"), S(
		"\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x22" "host: a\r\nauthorization: <redacted>"));
	expect("an empty value becomes the marker too", S(
		"\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x0b" "cookie:\r\n\r\n"), S(
		"\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x15" "cookie:<redacted>\r\n\r\n"));

	memset(&c, 0, sizeof c);
	c.rules = drop_auth;
	c.nrules = 1;
	if (setup(&c) == 0)
		expect("text drop removes the whole line", S(
			"\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x1d"
			"host: a\r\nauthorization: x\r\n\r\n"), S(
			"\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x0b" "host: a\r\n\r\n"));
}

/* ---- fail closed ---- */

static void fails_closed(const char *what, const uint8_t *in, size_t len, const char *secret)
{
	redact_stats before = stats(), after;
	const uint8_t *out;
	size_t olen;
	int rc = run(in, len, &out, &olen);

	after = stats();
	tap_ok(rc > 0 && has(out, olen, REDACT_FAILED_MARKER) && !has(out, olen, secret) &&
	       after.blocks_failed == before.blocks_failed + 1 && valid_msg(out, olen, 1),
	       "fails closed: %s", what);
}

static void test_malformed(void)
{
	static const redact_config defaults;

	if (setup(&defaults) < 0) {
		tap_ok(0, "default rules build");
		return;
	}
	expect("a malformed block becomes the marker, same type (BINARY)", S(
		"\x01" "m" "\x01" "\x04" "hdrs" "\x09" "\x08" "\x04" "host" "\x02" "SE"), S(
		"\x01" "m" "\x01" "\x04" "hdrs" "\x09" "\x23" "<redacted: unparsable header block>"));
	fails_closed("binary, no 00 00 terminator",
	             S("\x01" "m" "\x01" "\x04" "hdrs" "\x09" "\x12"
	               "\x0d" "authorization" "\x03" "SEK"), "SEK");
	fails_closed("binary, bytes after the terminator",
	             S("\x01" "m" "\x01" "\x04" "hdrs" "\x09" "\x0c"
	               "\x04" "host" "\x01" "a" "\x00\x00" "SEK"), "SEK");
	fails_closed("binary, a value length past the end",
	             S("\x01" "m" "\x01" "\x04" "hdrs" "\x09" "\x0b"
	               "\x06" "cookie" "\x7f" "SEK"), "SEK");
	fails_closed("binary, an empty name with a value",
	             S("\x01" "m" "\x01" "\x04" "hdrs" "\x09" "\x07"
	               "\x00" "\x03" "SEK" "\x00\x00"), "SEK");
	fails_closed("binary, a bad varint",
	             S("\x01" "m" "\x01" "\x04" "hdrs" "\x09" "\x05"
	               "\xff\xff" "SEK"), "SEK");
	fails_closed("text, obs-fold continuation line",
	             S("\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x22"
	               "authorization: Bearer\r\n SEKRET\r\n\r\n"), "SEKRET");
	fails_closed("text, a line without ':'",
	             S("\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x0f" "host: a\r\nSEKR\r\n"), "SEKR");
	fails_closed("text, bytes after the empty line",
	             S("\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x0f" "host: a\r\n\r\nSEKR"), "SEKR");
	fails_closed("text, a space in a header name",
	             S("\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x0b" "x y: SEKR\r\n"), "SEKR");
	fails_closed("text, an empty name",
	             S("\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x07" ": SEKR\n"), "SEKR");
	fails_closed("a header-args STRING that is no header block at all",
	             S("\x01" "m" "\x01" "\x04" "hdrs" "\x08" "\x0b" "just SEKRET"), "SEKRET");

	/* Not header blocks: left alone. */
	{
		static const uint8_t in[] =
			"\x01" "m" "\x04"
			"\x04" "hdrs" "\x00"                          /* NULL (fetch failed) */
			"\x07" "reqhdrs" "\x04" "\x05"                 /* an INT64 */
			"\x00" "\x09" "\x06" "cookie"                  /* unnamed BINARY */
			"\x04" "hdrs" "\x09" "\x00";                   /* empty BINARY */
		const uint8_t *out;
		size_t olen;
		int rc = run(in, sizeof in - 1, &out, &olen);

		tap_ok(rc == 0 && out == in, "NULL, integer, unnamed and empty arguments are not "
		       "header blocks: message unchanged");
	}
}

/* ---- bodies ---- */

static void test_bodies(void)
{
	static const char *const drop_res[] = { "cap-res" };
	static const char *const drop_all[] = { "*" };
	redact_config c;
	redact_stats st;
	const uint8_t *out;
	size_t olen;
	int rc;

	memset(&c, 0, sizeof c);
	c.headers = drop_res;           /* any non-NULL list ... */
	c.nheaders = 0;                 /* ... that is empty: bodies only */
	c.has_body_max = 1;
	c.body_max = 4;
	if (setup(&c) < 0) {
		tap_ok(0, "body rules build");
		return;
	}
	rc = expect("body-max 4 cuts a BINARY body to 4 bytes", S(
		"\x01" "m" "\x02" "\x04" "body" "\x09" "\x08" "abcdefgh" "\x04" "blen" "\x04" "\x08"), S(
		"\x01" "m" "\x02" "\x04" "body" "\x09" "\x04" "abcd" "\x04" "blen" "\x04" "\x08"));
	tap_is_int(rc, REDACT_CHANGED | REDACT_TRUNCATED, "... flagged truncated");
	expect("a cut never splits a UTF-8 character (\"abc\" + e-acute: 3 bytes kept)", S(
		"\x01" "m" "\x01" "\x07" "reqbody" "\x08" "\x05" "abc" "\xc3\xa9"), S(
		"\x01" "m" "\x01" "\x07" "reqbody" "\x08" "\x03" "abc"));
	rc = run(S("\x01" "m" "\x01" "\x04" "body" "\x09" "\x04" "abcd"), &out, &olen);
	tap_is_int(rc, 0, "a body within the cap is unchanged");
	rc = run(S("\x01" "m" "\x01" "\x05" "bsize" "\x09" "\x06" "abcdef"), &out, &olen);
	tap_is_int(rc, 0, "an argument not named *body is not a body");
	st = stats();
	tap_is_int(st.bodies_capped, 2, "two bodies counted as capped");

	c.body_max = 0;
	if (setup(&c) == 0)
		expect("body-max 0 keeps an empty body", S(
			"\x01" "m" "\x01" "\x04" "body" "\x09" "\x03" "abc"), S(
			"\x01" "m" "\x01" "\x04" "body" "\x09" "\x00"));

	c.has_body_max = 0;
	c.body_drop = drop_res;
	c.nbody_drop = 1;
	if (setup(&c) == 0) {
		rc = expect("body-drop cap-res: the body becomes NULL, other args kept", S(
			"\x07" "cap-res" "\x03"
			"\x03" "uid" "\x08" "\x01" "u"
			"\x04" "body" "\x09" "\x06" "SEKRET"
			"\x06" "status" "\x04" "\xc8"), S(
			"\x07" "cap-res" "\x03"
			"\x03" "uid" "\x08" "\x01" "u"
			"\x04" "body" "\x00"
			"\x06" "status" "\x04" "\xc8"));
		tap_is_int(rc, REDACT_CHANGED, "... not flagged truncated (dropped by policy)");
		rc = run(S("\x07" "cap-req" "\x01" "\x04" "body" "\x09" "\x03" "abc"), &out, &olen);
		tap_is_int(rc, 0, "the body of another message is kept");
		rc = run(S("\x07" "cap-res" "\x01" "\x04" "body" "\x09" "\x00"), &out, &olen);
		tap_is_int(rc, 0, "an empty body is left as it is");
		tap_is_int(stats().bodies_dropped, 1, "one body counted as dropped");
	}
	c.body_drop = drop_all;
	if (setup(&c) == 0)
		expect("body-drop *: every message", S(
			"\x01" "x" "\x01" "\x04" "body" "\x08" "\x01" "a"), S(
			"\x01" "x" "\x01" "\x04" "body" "\x00"));
}

/* ---- bounds, random input ---- */

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 32);
}

/* Wraps a header block into message "m" with one BINARY "hdrs" arg. */
static size_t wrap(uint8_t *out, size_t cap, const uint8_t *blk, size_t n)
{
	spop_wbuf w;

	spop_wbuf_init(&w, out, cap);
	spop_put_name(&w, "m", 1);
	spop_put_bytes(&w, "\x01", 1);
	spop_put_name(&w, "hdrs", 4);
	spop_put_str(&w, SPOP_T_BINARY, blk, n);
	return w.overflow ? 0 : w.len;
}

static void test_bounds(void)
{
	static const redact_rule hash_cookie[] = { { "cookie", REDACT_HASH } };
	static uint8_t blk[16384], msg[20000];
	redact_config c;
	const uint8_t *out;
	size_t olen, n, len;
	unsigned i, bad = 0, invalid = 0, over = 0;

	memset(&c, 0, sizeof c);
	c.rules = hash_cookie;
	c.nrules = 1;
	c.hash_key = key_tc1;
	c.hash_key_len = sizeof key_tc1;
	if (setup(&c) < 0) {
		tap_ok(0, "hash rules build");
		return;
	}
	/* 100 empty cookies: each grows by 37 bytes, 3700 in all: allowed. */
	for (n = 0, i = 0; i < 100; i++) {
		memcpy(blk + n, "\x06" "cookie" "\x00", 8);
		n += 8;
	}
	memcpy(blk + n, "\x00\x00", 2);
	len = wrap(msg, sizeof msg, blk, n + 2);
	run(msg, len, &out, &olen);
	tap_ok(olen > len && olen <= len + REDACT_GROWTH_MAX && !has(out, olen, REDACT_FAILED_MARKER),
	       "100 hashed empty values grow the message by %zu bytes, within the bound",
	       olen - len);
	/* 200: 7400 bytes more than received would exceed it: fail closed. */
	for (n = 0, i = 0; i < 200; i++) {
		memcpy(blk + n, "\x06" "cookie" "\x00", 8);
		n += 8;
	}
	memcpy(blk + n, "\x00\x00", 2);
	len = wrap(msg, sizeof msg, blk, n + 2);
	run(msg, len, &out, &olen);
	tap_ok(olen <= len + REDACT_GROWTH_MAX && has(out, olen, REDACT_FAILED_MARKER) &&
	       valid_msg(out, olen, 1),
	       "200 would grow it by 7400 bytes: the block fails closed instead");

	/* Random blocks and random mutations of a valid one: the result is
	 * always one valid message, never larger than the bound. */
	for (i = 0; i < 20000; i++) {
		if (i & 1) {
			static const uint8_t valid[] =
				"\x04" "host" "\x01" "a" "\x06" "cookie" "\x03" "x=1"
				"\x0d" "authorization" "\x02" "zz" "\x00\x00";
			n = sizeof valid - 1;
			memcpy(blk, valid, n);
			for (unsigned k = rnd() % 4 + 1; k; k--)
				blk[rnd() % n] = (uint8_t)rnd();
		} else {
			n = rnd() % 64;
			for (size_t k = 0; k < n; k++)
				blk[k] = (uint8_t)(rnd() % 3 ? rnd() % 16 : rnd());
		}
		len = wrap(msg, sizeof msg, blk, n);
		if (run(msg, len, &out, &olen) < 0)
			bad++;
		else if (!valid_msg(out, olen, 1))
			invalid++;
		else if (olen > len + REDACT_GROWTH_MAX)
			over++;
	}
	tap_ok(bad == 0 && invalid == 0 && over == 0,
	       "20000 random blocks: %u errors, %u invalid outputs, %u over the bound",
	       bad, invalid, over);
}

/* ---- configuration errors, description ---- */

static void test_config(void)
{
	static const redact_rule hash_cookie[] = { { "cookie", REDACT_HASH } };
	static const redact_rule bad_name[] = { { "x y", REDACT_DROP } };
	static const char *const star[] = { "*" };
	redact_config c;
	redact_rules *r;
	char err[256], desc[512];

	memset(&c, 0, sizeof c);
	c.rules = hash_cookie;
	c.nrules = 1;
	tap_ok(redact_new(&c, &r, err, sizeof err) < 0 && strstr(err, "hash-key-file"),
	       "hash without a key is an error naming hash-key-file: %s", err);
	c.hash_key = key_tc1;
	c.hash_key_len = 8;
	tap_ok(redact_new(&c, &r, err, sizeof err) < 0, "an 8-byte key is too short");
	c.rules = bad_name;
	tap_ok(redact_new(&c, &r, err, sizeof err) < 0 && strstr(err, "not a header name"),
	       "'x y' is not a header name: %s", err);
	memset(&c, 0, sizeof c);
	c.header_args = star;
	c.nheader_args = 1;
	tap_ok(redact_new(&c, &r, err, sizeof err) < 0 && strstr(err, "every argument"),
	       "header-args '*' is refused: %s", err);

	memset(&c, 0, sizeof c);
	c.rules = hash_cookie;
	c.nrules = 1;
	c.hash_key = key_tc1;
	c.hash_key_len = sizeof key_tc1;
	c.has_body_max = 1;
	c.body_max = 4096;
	if (redact_new(&c, &r, err, sizeof err) == 0 && r) {
		redact_describe(r, desc, sizeof desc);
		tap_ok(strstr(desc, "authorization:redact") && strstr(desc, "cookie:hash") &&
		       strstr(desc, "4096"), "redact_describe: %s", desc);
		redact_free(r);
	} else {
		tap_ok(0, "rules with a key build");
	}
}

int main(void)
{
	test_binary();
	test_hash();
	test_text();
	test_malformed();
	test_bodies();
	test_bounds();
	test_config();
	redact_ctx_free(ctx);
	redact_free(rules);
	return tap_done(0);
}
