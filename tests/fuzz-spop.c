/* fuzz-spop.c -- libFuzzer harness for the SPOP decoders (not part of
 * `make check`). Build and run from a build directory:
 *     make fuzz-spop                  # clang -fsanitize=fuzzer,address,undefined
 *     ./fuzz-spop -max_total_time=60 fuzz-corpus/
 * The input is read as a stream of frames, exactly as the agent reads a
 * socket; every payload goes through every payload decoder whatever the
 * frame type claims. Besides "no crash, no over-read", it checks that the
 * decoders never report more than they were given and that each varint
 * re-encodes to the very bytes it came from (the encoding is canonical). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spoolcap/spop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static void fuzz_varints(const uint8_t *p, const uint8_t *end)
{
	while (p < end) {
		const uint8_t *q = p;
		uint8_t again[SPOP_VARINT_MAX];
		uint64_t v;
		size_t n;

		if (spop_varint_get(&q, end, &v) < 0) {
			CHECK(q == p);
			p++;
			continue;
		}
		n = spop_varint_put(again, v);
		CHECK(n == (size_t)(q - p) && memcmp(again, p, n) == 0);
		p = q;
	}
}

static void fuzz_payload(const uint8_t *p, size_t len)
{
	spop_iter it, args;
	spop_msg m;
	spop_str s;
	spop_data d;
	spop_action a;
	spop_hello h;
	spop_disconnect dc;
	unsigned n, count = 0;
	int rc;

	if (spop_msgs_check(p, len, &n) == 0)
		CHECK(len == 0 || n > 0);
	spop_iter_init(&it, p, len);
	while ((rc = spop_msg_next(&it, &m)) > 0) {
		CHECK(m.raw.ptr >= p && m.raw.ptr + m.raw.len <= p + len);
		args = m.args;
		count = 0;
		while (spop_arg_next(&args, &s, &d) > 0)
			count++;
		/* a message is only returned once all its args decode */
		CHECK(count == m.nargs && args.p == args.end);
	}
	spop_iter_init(&it, p, len);
	while (spop_kv_next(&it, &s, &d) > 0)
		CHECK(s.len > 0 && s.ptr + s.len <= p + len);
	spop_iter_init(&it, p, len);
	while (spop_action_next(&it, &a) > 0)
		CHECK(a.scope <= SPOP_SCOPE_RES);
	if (spop_hello_parse(p, len, &h) == 0) {
		(void)spop_list_has(h.capabilities, "pipelining");
		(void)spop_versions_support(h.versions, 2, 0);
	}
	(void)spop_disconnect_parse(p, len, &dc);
	fuzz_varints(p, p + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* copy to an exact-size heap block so ASan sees any over-read */
	uint8_t *buf = malloc(size ? size : 1);
	size_t off = 0, used;
	spop_frame f;
	spop_str caps = { NULL, 0 };
	int rc;

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	caps.ptr = buf;
	caps.len = size < 64 ? size : 64;
	(void)spop_list_has(caps, "async");
	(void)spop_versions_support(caps, 2, 0);
	while (off < size) {
		rc = spop_frame_get(buf + off, size - off, 65536, &f, &used);
		if (rc <= 0)
			break;
		CHECK(used >= 4 + SPOP_FRAME_HDR_MIN && used <= size - off);
		CHECK(f.payload + f.payload_len == buf + off + used);
		fuzz_payload(f.payload, f.payload_len);
		off += used;
	}
	if (off == 0)
		fuzz_payload(buf, size);
	free(buf);
	return 0;
}
