/* redact-bench.c -- what redaction costs an I/O thread: messages/s and
 * ns/message of redact_msg alone and of redact_msg + record_encode (zstd
 * level 3, no dictionary; what the spool sink does per message) for the
 * capture recipe's cap-req messages of ~1 KB and ~8 KB (bench/capmsg.c:
 * ten usual headers including a cookie, a body), under four rule sets:
 * none (the current path), the default list (cookie -> <redacted>),
 * cookie:hash (HMAC-SHA256), and cookie:hash plus body-max 1K. One
 * thread, best of 5 interleaved rounds; prints a table, asserts nothing.
 *
 *   make bench/redact-bench && ./bench/redact-bench [-n MESSAGES] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capmsg.h"
#include "spoolcap/record.h"
#include "spoolcap/redact.h"

#define NDISTINCT 1024            /* distinct messages cycled through */
#define NRULES    4
#define ROUNDS    5

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct corpus {
	uint8_t *frames;              /* NDISTINCT frames, max_frame bytes apart */
	size_t   stride;
	spop_msg msg[NDISTINCT];      /* the one message of each frame */
	size_t   avg;
};

static int corpus_init(struct corpus *c, size_t size)
{
	capmsg_gen g;
	char err[256];
	size_t total = 0;

	if (capmsg_init(&g, size, 1, 42, err, sizeof err) < 0) {
		fprintf(stderr, "redact-bench: %s\n", err);
		return -1;
	}
	c->stride = g.max_frame;
	c->frames = malloc(NDISTINCT * c->stride);
	if (!c->frames)
		return -1;
	for (unsigned i = 0; i < NDISTINCT; i++) {
		uint8_t *f = c->frames + i * c->stride;
		size_t n = capmsg_emit(&g, f, i + 1, 1700000000000LL + i), used;
		spop_frame fr;
		spop_iter it;

		if (spop_frame_get(f, n, (uint32_t)n, &fr, &used) != 1)
			return -1;
		spop_iter_init(&it, fr.payload, fr.payload_len);
		if (spop_msg_next(&it, &c->msg[i]) != 1)
			return -1;
		total += c->msg[i].raw.len;
	}
	c->avg = total / NDISTINCT;
	capmsg_free(&g);
	return 0;
}

static const uint8_t key[32] = "0123456789abcdef0123456789abcdef";

/* Runs n messages; encode: also record_encode the result. Returns ns/msg. */
static double run(const struct corpus *c, redact_ctx *x, record_cctx *cc, unsigned n,
                  int encode, size_t *out_bytes)
{
	record_buf buf = { 0 };
	record_meta meta = { .recv_ns = 1, .sid = 1, .fid = 1 };
	double t0 = now();
	size_t bytes = 0;

	for (unsigned i = 0; i < n; i++) {
		const spop_msg *m = &c->msg[i % NDISTINCT];
		const uint8_t *p = m->raw.ptr;
		size_t len = m->raw.len;

		if (x && redact_msg(x, m, &p, &len) < 0)
			abort();
		bytes += len;
		if (encode) {
			buf.len = 0;
			if (record_encode(cc, NULL, &meta, p, len, &buf) != 0)
				abort();
		}
	}
	*out_bytes = bytes / n;
	record_buf_free(&buf);
	return (now() - t0) * 1e9 / n;
}

int main(int argc, char **argv)
{
	static const redact_rule hash_cookie[] = { { "cookie", REDACT_HASH } };
	static const char *const none[1] = { NULL };
	static const size_t sizes[] = { 1000, 8000 };
	unsigned n = 50000;
	int opt;

	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt == 'n')
			n = (unsigned)strtoul(optarg, NULL, 10);
		else {
			fprintf(stderr, "usage: redact-bench [-n MESSAGES]\n");
			return 2;
		}
	}
	/* "redact / encode": redact_msg's time as a share of what the same
	 * thread spends encoding a message without redaction; steadier on a
	 * busy machine than comparing two end-to-end rates. */
	printf("| message | rules | bytes in | bytes out | redact ns/msg | redact / encode "
	       "| redact+zstd msgs/s |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		static const char *const names[NRULES] = { "none (current path)", "default list",
		                                           "cookie:hash", "cookie:hash, body-max 1K" };
		redact_rules *rules[NRULES] = { NULL };
		redact_ctx *x[NRULES] = { NULL };
		double best_red[NRULES], best_all[NRULES];
		size_t out[NRULES];
		struct corpus c;
		char err[256];
		record_cctx *cc = record_cctx_new(3, err, sizeof err);

		if (!cc || corpus_init(&c, sizes[s]) < 0)
			return 1;
		for (int r = 0; r < NRULES; r++) {
			redact_config rc;

			memset(&rc, 0, sizeof rc);
			if (r == 0) {
				rc.headers = none;        /* an empty list: no rules at all */
			} else if (r >= 2) {
				rc.rules = hash_cookie;
				rc.nrules = 1;
				rc.hash_key = key;
				rc.hash_key_len = sizeof key;
			}
			if (r == 3) {
				rc.has_body_max = 1;
				rc.body_max = 1024;
			}
			if (redact_new(&rc, &rules[r], err, sizeof err) < 0 ||
			    (rules[r] && !(x[r] = redact_ctx_new(rules[r], err, sizeof err)))) {
				fprintf(stderr, "redact-bench: %s\n", err);
				return 1;
			}
			best_red[r] = best_all[r] = 1e30;
			run(&c, x[r], cc, n / 10 + 1, 1, &out[r]);          /* warm up */
		}
		/* Interleaved rounds, best of each: the machine is shared, and
		 * the fastest round is the one least disturbed. */
		for (int round = 0; round < ROUNDS; round++)
			for (int r = 0; r < NRULES; r++) {
				double t = x[r] ? run(&c, x[r], cc, n, 0, &out[r]) : 0;

				if (t < best_red[r])
					best_red[r] = t;
				t = run(&c, x[r], cc, n, 1, &out[r]);
				if (t < best_all[r])
					best_all[r] = t;
			}
		for (int r = 0; r < NRULES; r++) {
			printf("| ~%zu B | %s | %zu | %zu | %.0f | %.1f%% | %.0f |\n", sizes[s],
			       names[r], c.avg, out[r], best_red[r], best_red[r] / best_all[0] * 100,
			       1e9 / best_all[r]);
			redact_ctx_free(x[r]);
			redact_free(rules[r]);
		}
		record_cctx_free(cc);
		free(c.frames);
	}
	return 0;
}
