/* t-event.c -- the event JSON of design.md for hand-built payloads, compared
 * with hand-written expected text: every SPOP type, header blocks (ref
 * §5.4), unnamed and duplicate args, fallbacks, time formatting. */
#include <stdlib.h>

#include "spoolcap/event.h"
#include "tap.h"

/* A raw payload (record.h layout) written byte by byte. */
static const uint8_t payload[] = {
	0x01, 0x00, 0x05, 0x00,                           /* version, flags, engine len 5 */
	0x02, 0x00, 0x00, 0x00,                           /* message index 2 */
	0x15, 0xd7, 0x92, 0xf1, 0x35, 0x81, 0xeb, 0x18,   /* recv_ns 1795670945123456789 */
	0x05, 0, 0, 0, 0, 0, 0, 0,                        /* sid 5 */
	0x07, 0, 0, 0, 0, 0, 0, 0,                        /* fid 7 */
	'e', 'n', 'g', '-', '1',
	/* message "req", 17 args */
	0x03, 'r', 'e', 'q', 0x11,
	0x03, 'u', 'i', 'd', 0x08, 0x02, 'a', 'b',        /* STRING "ab" */
	0x02, 'o', 'k', 0x11,                             /* BOOL true */
	0x02, 'n', 'f', 0x01,                             /* BOOL false */
	0x01, 'n', 0x00,                                  /* NULL */
	0x01, 'i', 0x04, 0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0x0e, /* INT64 -1 */
	0x03, 's', '3', '2', 0x02, 0xf0, 0x95, 0xe7, 0x02, /* INT32 1000000 */
	0x01, 'u', 0x03, 0xef,                            /* UINT32 239 */
	0x03, 'u', '6', '4', 0x05, 0xf0, 0x80, 0x00,      /* UINT64 2288 */
	0x03, 's', 'r', 'c', 0x06, 192, 168, 0, 1,        /* IPV4 */
	0x02, 'v', '6', 0x07, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, /* IPV6 */
	0x00, 0x08, 0x01, 'x',                            /* unnamed STRING "x" */
	0x04, 'b', 'o', 'd', 'y', 0x09, 0x02, 0xff, 0xfe, /* BINARY, not UTF-8 */
	0x04, 'h', 'd', 'r', 's', 0x09, 0x1e,             /* BINARY header block, 30 bytes */
	0x04, 'h', 'o', 's', 't', 0x0b, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
	0x06, 'a', 'c', 'c', 'e', 'p', 't', 0x03, '*', '/', '*', 0x00, 0x00,
	0x03, 'u', 'i', 'd', 0x08, 0x01, 'c',             /* duplicate name */
	0x01, 'q', 0x08, 0x03, 'a', '"', '\n',            /* needs escaping */
	0x07, 'r', 'e', 's', 'h', 'd', 'r', 's', 0x09, 0x03, 0x01, 'x', 0x00, /* malformed block */
	0x01, 't', 0x08, 0x02, 0xc3, 0xa9,                /* UTF-8 kept */
};

static const char expected[] =
	"{\"id\":\"0f8b2a8e-3c1d-4e5f-9a7b-1c2d3e4f5a6b-42\",\"seq\":42,"
	"\"time\":\"2026-11-26T05:29:05.123456Z\",\"message\":\"req\","
	"\"spoe\":{\"engine\":\"eng-1\",\"stream\":5,\"frame\":7},"
	"\"args\":{\"uid\":\"ab\",\"ok\":true,\"nf\":false,\"n\":null,\"i\":-1,"
	"\"s32\":1000000,\"u\":239,\"u64\":2288,\"src\":\"192.168.0.1\","
	"\"v6\":\"2001:db8::1\",\"arg11\":\"x\",\"body\":{\"base64\":\"//4=\"},"
	"\"hdrs\":[[\"host\",\"example.com\"],[\"accept\",\"*/*\"]],"
	"\"uid\":\"c\",\"q\":\"a\\\"\\n\",\"reshdrs\":\"\\u0001x\\u0000\","
	"\"t\":\"\xc3\xa9\"}}";

static const char uuid[] = "0f8b2a8e-3c1d-4e5f-9a7b-1c2d3e4f5a6b";

static void show(const json_buf *b)
{
	tap_diag("  got [%.*s]", (int)b->len, b->data ? b->data : "");
}

static void test_event(void)
{
	record_view v;
	json_buf b;
	int rc;

	json_init(&b, 1 << 20);
	rc = record_parse_payload(payload, sizeof payload, &v);
	tap_is_int(rc, 0, "hand-built payload parses");
	tap_is_int(v.msg.nargs, 17, "17 args");
	rc = event_render(&b, &v, 42, uuid, NULL);
	tap_is_int(rc, 0, "event renders");
	tap_is_mem(b.data, b.len, expected, sizeof expected - 1, "event JSON is exactly as expected");
	if (b.len != sizeof expected - 1 || memcmp(b.data, expected, b.len))
		show(&b);

	/* Appends after what is there; the cap makes it fail cleanly. */
	json_reset(&b);
	json_raw(&b, "[", 1);
	b.max = 100;
	rc = event_render(&b, &v, 42, uuid, NULL);
	tap_is_int(rc, JSON_ETOOBIG, "over the cap -> JSON_ETOOBIG");
	tap_ok(b.len == 1 && b.err == 0, "buffer restored to its length before the call");
	json_free(&b);
}

static void test_engine_null(void)
{
	uint8_t p[64];
	record_view v;
	json_buf b;
	static const char want[] =
		"{\"id\":\"u-1\",\"seq\":1,\"time\":\"1970-01-01T00:00:00.000000Z\","
		"\"message\":\"m\",\"spoe\":{\"engine\":null,\"stream\":18446744073709551615,"
		"\"frame\":0},\"args\":{}}";

	memset(p, 0, sizeof p);
	p[0] = 1;
	memset(p + 16, 0xff, 8);         /* sid 2^64-1 */
	p[32] = 1;                       /* message "m", 0 args */
	p[33] = 'm';
	p[34] = 0;
	json_init(&b, 4096);
	tap_is_int(record_parse_payload(p, 35, &v), 0, "minimal payload parses");
	tap_is_int(event_render(&b, &v, 1, "u", NULL), 0, "renders");
	tap_is_mem(b.data, b.len, want, sizeof want - 1, "empty engine id -> null, no args -> {}");
	if (b.len != sizeof want - 1 || memcmp(b.data, want, b.len))
		show(&b);
	json_free(&b);
}

#define CHECK_HDRS(block, want, what) do { \
	json_reset(&b); \
	rc = event_hdrs_render(&b, (block), sizeof(block)); \
	tap_ok(rc == 0 && b.len == strlen(want) && !memcmp(b.data, (want), b.len), "hdrs: %s", what); \
	if (rc || b.len != strlen(want) || memcmp(b.data, (want), b.len)) \
		show(&b); \
} while (0)

#define BAD_HDRS(block, what) do { \
	json_reset(&b); \
	json_raw(&b, "x", 1); \
	rc = event_hdrs_render(&b, (block), sizeof(block)); \
	tap_ok(rc == -1 && b.len == 1, "hdrs malformed: %s", what); \
} while (0)

static void test_hdrs(void)
{
	/* Ref §5.4's example, byte for byte. */
	static const uint8_t ex[] = {
		0x04, 'h', 'o', 's', 't', 0x0b, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
		0x06, 'a', 'c', 'c', 'e', 'p', 't', 0x03, '*', '/', '*', 0x00, 0x00,
	};
	static const uint8_t empty[] = { 0x00, 0x00 };
	static const uint8_t repeated[] = {
		0x01, 'a', 0x01, '1', 0x01, 'a', 0x00, 0x00, 0x00,
	};
	static const uint8_t binval[] = { 0x05, 'x', '-', 'b', 'i', 'n', 0x02, 0xff, 0xfe, 0x00, 0x00 };
	static const uint8_t esc[] = { 0x01, 'q', 0x02, '"', '\\', 0x00, 0x00 };
	static const uint8_t noterm[] = { 0x01, 'a', 0x01, '1' };
	static const uint8_t halfterm[] = { 0x01, 'a', 0x01, '1', 0x00 };
	static const uint8_t trailing[] = { 0x00, 0x00, 0x00 };
	static const uint8_t longname[] = { 0x05, 'a', 0x00, 0x00 };
	static const uint8_t emptyname[] = { 0x00, 0x01, 'v', 0x00, 0x00 };
	static const uint8_t badvarint[] = { 0xf0 };
	json_buf b;
	int rc;

	json_init(&b, 4096);
	CHECK_HDRS(ex, "[[\"host\",\"example.com\"],[\"accept\",\"*/*\"]]", "ref 5.4 example");
	CHECK_HDRS(empty, "[]", "no headers");
	CHECK_HDRS(repeated, "[[\"a\",\"1\"],[\"a\",\"\"]]", "repeated name and empty value kept in order");
	CHECK_HDRS(binval, "[[\"x-bin\",{\"base64\":\"//4=\"}]]", "non-UTF-8 value -> base64");
	CHECK_HDRS(esc, "[[\"q\",\"\\\"\\\\\"]]", "value escaped");
	BAD_HDRS(noterm, "no terminator");
	BAD_HDRS(halfterm, "half a terminator");
	BAD_HDRS(trailing, "bytes after the terminator");
	BAD_HDRS(longname, "name longer than the block");
	BAD_HDRS(emptyname, "empty name with a value");
	BAD_HDRS(badvarint, "truncated varint");
	{
		static const uint8_t z[1];

		json_reset(&b);
		rc = event_hdrs_render(&b, z, 0);
		tap_ok(rc == -1 && b.len == 0, "hdrs malformed: empty block");
	}
	json_free(&b);
}

static void test_names(void)
{
	static const char *const exact[] = { "h", "*_HEADERS" };
	event_opts o = { exact, 2 }, off = { exact, 0 };

	tap_ok(event_is_hdrs_arg(NULL, "hdrs", 4), "default: hdrs");
	tap_ok(event_is_hdrs_arg(NULL, "req_hdrs", 8), "default: req_hdrs");
	tap_ok(event_is_hdrs_arg(NULL, "ResHeaders", 10), "default: ResHeaders (case-insensitive)");
	tap_ok(!event_is_hdrs_arg(NULL, "hdr", 3), "default: hdr is not");
	tap_ok(!event_is_hdrs_arg(NULL, "hdrsx", 5), "default: hdrsx is not");
	tap_ok(event_is_hdrs_arg(&o, "h", 1), "custom exact: h");
	tap_ok(!event_is_hdrs_arg(&o, "hh", 2), "custom exact: hh is not");
	tap_ok(event_is_hdrs_arg(&o, "req_headers", 11), "custom suffix: req_headers");
	tap_ok(!event_is_hdrs_arg(&o, "hdrs", 4), "custom list replaces the default");
	tap_ok(!event_is_hdrs_arg(&off, "hdrs", 4), "empty list: off");
}

static void test_opts_render(void)
{
	/* One arg "h" holding a valid block: rendered as pairs only when the
	 * options name it. */
	static const uint8_t p[] = {
		0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0x01, 'm', 0x02,
		0x01, 'h', 0x09, 0x06, 0x01, 'a', 0x01, 'b', 0x00, 0x00,
		0x00, 0x09, 0x02, 0x00, 0x00,           /* unnamed: never a block */
	};
	static const char *const names[] = { "h" };
	event_opts o = { names, 1 };
	const char *tail;
	record_view v;
	json_buf b;

	json_init(&b, 4096);
	tap_is_int(record_parse_payload(p, sizeof p, &v), 0, "opts payload parses");
	event_render(&b, &v, 7, "u", NULL);
	tail = "\"args\":{\"h\":\"\\u0001a\\u0001b\\u0000\\u0000\",\"arg2\":\"\\u0000\\u0000\"}}";
	tap_ok(b.len > strlen(tail) && !memcmp(b.data + b.len - strlen(tail), tail, strlen(tail)),
	       "default opts: h is a plain binary");
	if (!(b.len > strlen(tail) && !memcmp(b.data + b.len - strlen(tail), tail, strlen(tail))))
		show(&b);
	json_reset(&b);
	event_render(&b, &v, 7, "u", &o);
	tail = "\"args\":{\"h\":[[\"a\",\"b\"]],\"arg2\":\"\\u0000\\u0000\"}}";
	tap_ok(b.len > strlen(tail) && !memcmp(b.data + b.len - strlen(tail), tail, strlen(tail)),
	       "opts {\"h\"}: h rendered as pairs; unnamed arg2 untouched");
	if (!(b.len > strlen(tail) && !memcmp(b.data + b.len - strlen(tail), tail, strlen(tail))))
		show(&b);
	json_free(&b);
}

static void test_time(void)
{
	static const struct {
		int64_t ns;
		const char *want;
	} v[] = {
		{ 0, "1970-01-01T00:00:00.000000Z" },
		{ 1795670945123456789LL, "2026-11-26T05:29:05.123456Z" },
		{ 1709251199999999999LL, "2024-02-29T23:59:59.999999Z" },
		{ 951868800000000000LL, "2000-03-01T00:00:00.000000Z" },
		{ -1, "1969-12-31T23:59:59.999999Z" },
		{ -2208988800000000000LL, "1900-01-01T00:00:00.000000Z" },
		{ INT64_MAX, "2262-04-11T23:47:16.854775Z" },
		{ INT64_MIN, "1677-09-21T00:12:43.145224Z" },
	};
	char out[EVENT_TIME_LEN + 1];
	size_t i;

	for (i = 0; i < sizeof v / sizeof v[0]; i++) {
		size_t n = event_time_format(out, v[i].ns);

		tap_ok(n == EVENT_TIME_LEN && strcmp(out, v[i].want) == 0, "time %s", v[i].want);
		if (strcmp(out, v[i].want))
			tap_diag("  got %s", out);
	}
}

static void test_bad_args(void)
{
	/* A hand-made view whose args iterator is truncated (record_parse_payload
	 * would refuse it; event_render must still fail cleanly). */
	static const uint8_t args[] = { 0x01, 'a', 0x08, 0x05, 'x' };
	record_view v;
	json_buf b;
	int rc;

	memset(&v, 0, sizeof v);
	v.msg.name.ptr = (const uint8_t *)"m";
	v.msg.name.len = 1;
	v.msg.nargs = 1;
	spop_iter_init(&v.msg.args, args, sizeof args);
	json_init(&b, 4096);
	json_raw(&b, "ab", 2);
	rc = event_render(&b, &v, 1, "u", NULL);
	tap_ok(rc == EVENT_EMSG && b.len == 2, "truncated args -> EVENT_EMSG, buffer restored");
	json_free(&b);
}

int main(void)
{
	(void)tap_plan;         /* plan printed at the end by tap_done */
	test_event();
	test_engine_null();
	test_hdrs();
	test_names();
	test_opts_render();
	test_time();
	test_bad_args();
	return tap_done(0);
}
