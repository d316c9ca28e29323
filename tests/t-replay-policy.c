/* t-replay-policy.c -- the replay thread's pure policy: classification of
 * every curl code and HTTP status in spool-notes B.3 (and around it),
 * full-jitter backoff bounds with no overflow, Retry-After in every RFC 9110
 * form, and the bisection planner checked exhaustively (n = 1..64, every
 * poison set of size 0..2) and on seeded random sets (n <= 2000). Expected
 * values are written by hand (epoch seconds from `date -u -d ... +%s`). */
#include <curl/curl.h>
#include <stdlib.h>
#include <time.h>

#include "spoolcap/replay_policy.h"
#include "tap.h"

/* ---- classification ---------------------------------------------------- */

struct cvec {
	int curl;
	long status;
	replay_class want;
};

static const struct cvec cvecs[] = {
	/* HTTP statuses with CURLE_OK */
	{ CURLE_OK, 200, REPLAY_OK }, { CURLE_OK, 201, REPLAY_OK },
	{ CURLE_OK, 202, REPLAY_OK }, { CURLE_OK, 204, REPLAY_OK },
	{ CURLE_OK, 299, REPLAY_OK },
	{ CURLE_OK, 408, REPLAY_TRANSIENT }, { CURLE_OK, 425, REPLAY_TRANSIENT },
	{ CURLE_OK, 429, REPLAY_TRANSIENT }, { CURLE_OK, 500, REPLAY_TRANSIENT },
	{ CURLE_OK, 502, REPLAY_TRANSIENT }, { CURLE_OK, 503, REPLAY_TRANSIENT },
	{ CURLE_OK, 504, REPLAY_TRANSIENT }, { CURLE_OK, 507, REPLAY_TRANSIENT },
	{ CURLE_OK, 522, REPLAY_TRANSIENT }, { CURLE_OK, 524, REPLAY_TRANSIENT },
	{ CURLE_OK, 599, REPLAY_TRANSIENT },
	{ CURLE_OK, 501, REPLAY_ENDPOINT }, { CURLE_OK, 505, REPLAY_ENDPOINT },
	{ CURLE_OK, 401, REPLAY_ENDPOINT }, { CURLE_OK, 402, REPLAY_ENDPOINT },
	{ CURLE_OK, 403, REPLAY_ENDPOINT }, { CURLE_OK, 404, REPLAY_ENDPOINT },
	{ CURLE_OK, 405, REPLAY_ENDPOINT }, { CURLE_OK, 406, REPLAY_ENDPOINT },
	{ CURLE_OK, 407, REPLAY_ENDPOINT }, { CURLE_OK, 410, REPLAY_ENDPOINT },
	{ CURLE_OK, 411, REPLAY_ENDPOINT }, { CURLE_OK, 414, REPLAY_ENDPOINT },
	{ CURLE_OK, 417, REPLAY_ENDPOINT }, { CURLE_OK, 421, REPLAY_ENDPOINT },
	{ CURLE_OK, 426, REPLAY_ENDPOINT }, { CURLE_OK, 428, REPLAY_ENDPOINT },
	{ CURLE_OK, 431, REPLAY_ENDPOINT }, { CURLE_OK, 451, REPLAY_ENDPOINT },
	{ CURLE_OK, 100, REPLAY_ENDPOINT }, { CURLE_OK, 101, REPLAY_ENDPOINT },
	{ CURLE_OK, 199, REPLAY_ENDPOINT }, { CURLE_OK, 300, REPLAY_ENDPOINT },
	{ CURLE_OK, 301, REPLAY_ENDPOINT }, { CURLE_OK, 302, REPLAY_ENDPOINT },
	{ CURLE_OK, 304, REPLAY_ENDPOINT }, { CURLE_OK, 307, REPLAY_ENDPOINT },
	{ CURLE_OK, 308, REPLAY_ENDPOINT }, { CURLE_OK, 399, REPLAY_ENDPOINT },
	{ CURLE_OK, 600, REPLAY_ENDPOINT }, { CURLE_OK, 999, REPLAY_ENDPOINT },
	{ CURLE_OK, 99, REPLAY_ENDPOINT },
	{ CURLE_OK, 0, REPLAY_ENDPOINT },  /* no HTTP response at all */
	{ CURLE_OK, -1, REPLAY_LOCAL },
	{ CURLE_OK, 400, REPLAY_PAYLOAD }, { CURLE_OK, 409, REPLAY_PAYLOAD },
	{ CURLE_OK, 412, REPLAY_PAYLOAD }, { CURLE_OK, 413, REPLAY_PAYLOAD },
	{ CURLE_OK, 415, REPLAY_PAYLOAD }, { CURLE_OK, 418, REPLAY_PAYLOAD },
	{ CURLE_OK, 422, REPLAY_PAYLOAD }, { CURLE_OK, 499, REPLAY_PAYLOAD },
	/* FAILONERROR: classified by the status */
	{ CURLE_HTTP_RETURNED_ERROR, 503, REPLAY_TRANSIENT },
	{ CURLE_HTTP_RETURNED_ERROR, 413, REPLAY_PAYLOAD },
	{ CURLE_HTTP_RETURNED_ERROR, 401, REPLAY_ENDPOINT },
	/* curl codes from the B.3 table; a status, if any, does not matter */
	{ 6, 0, REPLAY_TRANSIENT }, { 7, 0, REPLAY_TRANSIENT },
	{ 28, 0, REPLAY_TRANSIENT }, { 28, 200, REPLAY_TRANSIENT },
	{ 35, 0, REPLAY_TRANSIENT }, { 52, 0, REPLAY_TRANSIENT },
	{ 55, 0, REPLAY_TRANSIENT }, { 56, 0, REPLAY_TRANSIENT },
	{ 56, 200, REPLAY_TRANSIENT }, { 16, 0, REPLAY_TRANSIENT },
	{ 92, 0, REPLAY_TRANSIENT }, { 18, 200, REPLAY_TRANSIENT },
	{ 1, 0, REPLAY_ENDPOINT }, { 3, 0, REPLAY_ENDPOINT },
	{ 58, 0, REPLAY_ENDPOINT }, { 60, 0, REPLAY_ENDPOINT },
	{ 77, 0, REPLAY_ENDPOINT }, { 67, 0, REPLAY_ENDPOINT },
	{ 2, 0, REPLAY_LOCAL }, { 27, 0, REPLAY_LOCAL }, { 43, 0, REPLAY_LOCAL },
	{ 27, 200, REPLAY_LOCAL },
	/* codes added by judgement (see replay_policy.c) */
	{ 5, 0, REPLAY_TRANSIENT }, { 42, 0, REPLAY_TRANSIENT },
	{ 61, 200, REPLAY_TRANSIENT }, { 65, 0, REPLAY_TRANSIENT },
	{ 80, 0, REPLAY_TRANSIENT }, { 89, 0, REPLAY_TRANSIENT },
	{ 95, 0, REPLAY_TRANSIENT }, { 96, 0, REPLAY_TRANSIENT },
	{ 4, 0, REPLAY_ENDPOINT }, { 8, 0, REPLAY_ENDPOINT },
	{ 9, 0, REPLAY_ENDPOINT }, { 45, 0, REPLAY_ENDPOINT },
	{ 47, 301, REPLAY_ENDPOINT }, { 53, 0, REPLAY_ENDPOINT },
	{ 54, 0, REPLAY_ENDPOINT }, { 59, 0, REPLAY_ENDPOINT },
	{ 63, 200, REPLAY_ENDPOINT }, { 64, 0, REPLAY_ENDPOINT },
	{ 66, 0, REPLAY_ENDPOINT }, { 82, 0, REPLAY_ENDPOINT },
	{ 83, 0, REPLAY_ENDPOINT }, { 90, 0, REPLAY_ENDPOINT },
	{ 91, 0, REPLAY_ENDPOINT }, { 94, 0, REPLAY_ENDPOINT },
	{ 97, 0, REPLAY_ENDPOINT }, { 98, 0, REPLAY_ENDPOINT },
	{ 23, 0, REPLAY_LOCAL }, { 26, 0, REPLAY_LOCAL },
	{ 48, 0, REPLAY_LOCAL }, { 51, 0, REPLAY_LOCAL }, /* obsolete */
	{ 79, 0, REPLAY_LOCAL }, { 93, 0, REPLAY_LOCAL },
	{ 99, 0, REPLAY_LOCAL }, { 100, 0, REPLAY_LOCAL }, /* newer than 7.88 */
	{ 1000, 200, REPLAY_LOCAL }, { -1, 200, REPLAY_LOCAL },
};

static void test_classify(void)
{
	for (size_t i = 0; i < sizeof(cvecs) / sizeof(cvecs[0]); i++) {
		const struct cvec *v = &cvecs[i];
		replay_class got = replay_classify(v->curl, v->status);
		if (!tap_ok(got == v->want, "classify curl %d status %ld -> %s",
		    v->curl, v->status, replay_class_name(v->want)))
			tap_diag("  got %s", replay_class_name(got));
	}
	/* every 4xx not listed as endpoint/transient is payload */
	int bad = 0;
	for (long s = 400; s <= 499; s++) {
		replay_class c = replay_classify(CURLE_OK, s);
		if (c != REPLAY_PAYLOAD && c != REPLAY_ENDPOINT &&
		    c != REPLAY_TRANSIENT)
			bad++;
	}
	tap_is_int(bad, 0, "every 4xx is payload, endpoint or transient");
	tap_ok(strcmp(replay_class_name(REPLAY_OK), "ok") == 0 &&
		strcmp(replay_class_name(REPLAY_TRANSIENT), "transient") == 0 &&
		strcmp(replay_class_name(REPLAY_ENDPOINT), "endpoint") == 0 &&
		strcmp(replay_class_name(REPLAY_PAYLOAD), "payload") == 0 &&
		strcmp(replay_class_name(REPLAY_LOCAL), "local") == 0 &&
		strcmp(replay_class_name((replay_class)42), "unknown") == 0,
		"class names");
}

/* ---- backoff ----------------------------------------------------------- */

static void test_backoff(void)
{
	const uint64_t base = 500, cap = 60000;
	/* base * 2^a, capped at 60000 from a = 7 (64000) on */
	static const uint64_t ceil_want[8] = {
		500, 1000, 2000, 4000, 8000, 16000, 32000, 60000
	};
	/* (2^64 - 1) mod (ceiling + 1), computed independently */
	static const uint64_t max_want[8] = {
		48, 15, 603, 2498, 1779, 3488, 11769, 59966
	};
	int ok_zero = 1, ok_bound = 1, ok_ceil = 1, ok_top = 1;

	for (unsigned a = 0; a <= 70; a++) {
		uint64_t c = a < 7 ? ceil_want[a] : cap;
		if (replay_backoff_ceiling_ms(a, base, cap) != c)
			ok_ceil = 0;
		if (replay_backoff_ms(a, base, cap, 0) != 0)
			ok_zero = 0;
		uint64_t m = replay_backoff_ms(a, base, cap, UINT64_MAX);
		if (m > c || m != max_want[a < 7 ? a : 7])
			ok_bound = 0;
		/* rnd == ceiling reaches the ceiling exactly (inclusive range) */
		if (replay_backoff_ms(a, base, cap, c) != c)
			ok_top = 0;
	}
	tap_ok(ok_ceil, "backoff ceiling 500*2^a capped at 60000, a = 0..70");
	tap_ok(ok_zero, "backoff rnd 0 -> 0, a = 0..70");
	tap_ok(ok_bound, "backoff rnd UINT64_MAX -> hand values <= ceiling, a = 0..70");
	tap_ok(ok_top, "backoff range includes the ceiling, a = 0..70");
	tap_is_int(replay_backoff_ms(3, 500, 60000, 4001), 0, "4001 mod 4001 = 0");
	tap_is_int(replay_backoff_ms(3, 500, 60000, 4002), 1, "4002 mod 4001 = 1");

	/* extremes: no overflow anywhere */
	tap_ok(replay_backoff_ceiling_ms(63, 1, UINT64_MAX) == (UINT64_C(1) << 63),
		"1 << 63 fits");
	tap_ok(replay_backoff_ceiling_ms(64, 1, UINT64_MAX) == UINT64_MAX,
		"attempt 64 -> cap");
	tap_ok(replay_backoff_ceiling_ms(63, 3, UINT64_MAX) == UINT64_MAX,
		"3 << 63 would overflow -> cap");
	tap_ok(replay_backoff_ceiling_ms(UINT32_MAX, 500, 60000) == 60000,
		"attempt UINT_MAX -> cap");
	tap_ok(replay_backoff_ms(200, 1, UINT64_MAX, UINT64_MAX) == UINT64_MAX,
		"ceiling UINT64_MAX: rnd passes through");
	tap_ok(replay_backoff_ms(5, 0, 60000, UINT64_MAX) == 0, "base 0 -> 0");
	tap_ok(replay_backoff_ms(5, 500, 0, UINT64_MAX) == 0, "cap 0 -> 0");
	tap_ok(replay_backoff_ceiling_ms(0, 70000, 60000) == 60000,
		"base above cap -> cap");

	/* next delay: Retry-After is a floor, jitter still applies above it */
	uint64_t ra = 120000, ra0 = 0;
	tap_is_int(replay_next_delay_ms(0, 500, 60000, 7, NULL), 7,
		"next delay without Retry-After = backoff");
	tap_is_int(replay_next_delay_ms(7, 500, 60000, 59999, &ra), 120000,
		"Retry-After 120 s beats backoff 59.999 s");
	tap_is_int(replay_next_delay_ms(7, 500, 60000, 59999, &ra0), 59999,
		"Retry-After 0 -> backoff");
}

/* ---- Retry-After ------------------------------------------------------- */

/* 2015-10-21 07:28:00 UTC = 1445412480 */
#define T_2015 INT64_C(1445412480)

static void ra_ok(const char *v, int64_t now, uint64_t max, uint64_t want)
{
	uint64_t out = 12345;
	int rc = replay_retry_after_ms(v, now, max, &out);
	if (!tap_ok(rc == 0 && out == want, "Retry-After \"%s\" -> %" PRIu64 " ms",
	    v, want))
		tap_diag("  rc %d, got %" PRIu64, rc, out);
}

static void ra_bad(const char *v, int64_t now)
{
	uint64_t out = 12345;
	int rc = replay_retry_after_ms(v, now, 0, &out);
	tap_ok(rc == -1 && out == 12345, "Retry-After \"%s\" rejected", v);
}

static void test_retry_after(void)
{
	const uint64_t big = UINT64_MAX;

	ra_ok("0", 0, 0, 0);
	ra_ok("120", 0, 0, 120000);
	ra_ok(" 120 ", 0, 0, 120000);
	ra_ok("\t120\t", 0, 0, 120000);
	ra_ok("600", 0, 0, 600000);
	ra_ok("601", 0, 0, 600000);           /* default cap 10 min */
	ra_ok("120", 0, 5000, 5000);          /* caller's cap */
	ra_ok("0000120", 0, 0, 120000);
	/* RFC 9110 1.2.2: overflowing delta-seconds is clamped, not rejected */
	ra_ok("99999999999999999999", 0, 0, 600000);
	ra_ok("99999999999999999999", 0, big, UINT64_MAX);
	ra_ok("18446744073709552", 0, big, UINT64_MAX); /* *1000 overflows */
	ra_ok("18446744073709551", 0, big, UINT64_C(18446744073709551000));
	ra_bad("-1", 0);
	ra_bad("+1", 0);
	ra_bad("abc", 0);
	ra_bad("", 0);
	ra_bad("   ", 0);
	ra_bad("12a", 0);
	ra_bad("1 2", 0);
	ra_bad("1.5", 0);
	ra_bad("0x10", 0);
	tap_ok(replay_retry_after_ms(NULL, 0, 0, &(uint64_t){0}) == -1, "NULL rejected");

	/* the three HTTP-date forms, 120 s ahead of now */
	ra_ok("Wed, 21 Oct 2015 07:28:00 GMT", T_2015 - 120, 0, 120000);
	ra_ok("  Wed, 21 Oct 2015 07:28:00 GMT ", T_2015 - 120, 0, 120000);
	ra_ok("Wednesday, 21-Oct-15 07:28:00 GMT", T_2015 - 120, 0, 120000);
	ra_ok("Wed Oct 21 07:28:00 2015", T_2015 - 120, 0, 120000);
	/* 1994-11-06 08:49:37 UTC = 784111777; asctime pads the day */
	ra_ok("Sun Nov  6 08:49:37 1994", 784111777 - 1, 0, 1000);
	ra_ok("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 1, 0, 1000);
	ra_ok("Sunday, 06-Nov-94 08:49:37 GMT", 784111777 - 1, 0, 1000);
	/* past, or now -> 0 */
	ra_ok("Wed, 21 Oct 2015 07:28:00 GMT", T_2015, 0, 0);
	ra_ok("Wed, 21 Oct 2015 07:28:00 GMT", T_2015 + 86400, 0, 0);
	ra_ok("Sun, 06 Nov 1994 08:49:37 GMT", T_2015, 0, 0);
	/* clamping: one day ahead */
	ra_ok("Thu, 22 Oct 2015 07:28:00 GMT", T_2015, 0, 600000);
	ra_ok("Thu, 22 Oct 2015 07:28:00 GMT", T_2015, big, 86400000);
	/* leap day and leap second; 2024-02-29 = 1709164800 */
	ra_ok("Thu, 29 Feb 2024 00:00:00 GMT", 1709164800 - 5, 0, 5000);
	ra_ok("Wed, 21 Oct 2015 07:27:60 GMT", T_2015 - 120, 0, 120000);
	/* RFC 850 two-digit years, now = 2026-11-26 (1795651200): 76 is
	 * 2076 (exactly 50 years ahead: 2076-01-01 = 3345062400), 77 is 1977 */
	ra_ok("Wednesday, 01-Jan-76 00:00:00 GMT", 1795651200, big,
		(uint64_t)(INT64_C(3345062400) - 1795651200) * 1000);
	ra_ok("Saturday, 01-Jan-77 00:00:00 GMT", 1795651200, big, 0);
	/* the weekday name is not cross-checked (RFC 9110 does not ask it) */
	ra_ok("Mon, 21 Oct 2015 07:28:00 GMT", T_2015 - 1, 0, 1000);

	ra_bad("Wed, 21 Oct 2015 07:28:00", T_2015);       /* no GMT */
	ra_bad("Wed, 21 Oct 2015 07:28:00 UTC", T_2015);
	ra_bad("Wed, 21 Oct 2015 07:28:00 GMT x", T_2015);
	ra_bad("wed, 21 Oct 2015 07:28:00 GMT", T_2015);   /* case-sensitive */
	ra_bad("Wed, 21 oct 2015 07:28:00 GMT", T_2015);
	ra_bad("Wed, 1 Oct 2015 07:28:00 GMT", T_2015);    /* 2DIGIT day */
	ra_bad("Wed, 21 Oct 15 07:28:00 GMT", T_2015);
	ra_bad("Wed, 21 Oct 99999 07:28:00 GMT", T_2015);
	ra_bad("Wed, 32 Oct 2015 07:28:00 GMT", T_2015);
	ra_bad("Wed, 00 Oct 2015 07:28:00 GMT", T_2015);
	ra_bad("Sun, 29 Feb 2015 07:28:00 GMT", T_2015);   /* not a leap year */
	ra_bad("Wed, 21 Oct 2015 24:00:00 GMT", T_2015);
	ra_bad("Wed, 21 Oct 2015 07:60:00 GMT", T_2015);
	ra_bad("Wed, 21 Oct 2015 07:28:61 GMT", T_2015);
	ra_bad("Wed, 21 Foo 2015 07:28:00 GMT", T_2015);
	ra_bad("Wednesday, 21-Oct-2015 07:28:00 GMT", T_2015);
	ra_bad("Wednesday 21-Oct-15 07:28:00 GMT", T_2015);
	ra_bad("Wed Oct 21 07:28:00 15", T_2015);
	ra_bad("Wed Oct 21 07:28:00 2015 GMT", T_2015);
	ra_bad("Wed Oct 6 07:28:00 2015", T_2015);         /* day not padded */
	ra_bad("Wed", T_2015);
	ra_bad("Wed,", T_2015);
	ra_bad("Wed, 21 Oct 2015 07:28", T_2015);
}

/* ---- bisection --------------------------------------------------------- */

static unsigned ceil_log2(uint64_t n)
{
	unsigned k = 0;
	while (k < 64 && (UINT64_C(1) << k) < n)
		k++;
	return k;
}

#define NMAX 2000

/* Runs the planner over n records against a deterministic processor that
 * rejects a range iff it holds a poison record (is_poison[i]). Checks that
 * ranges come in index order, each record is resolved exactly once
 * (delivered, or reported poison iff it is poison), and the send bound.
 * Returns NULL or what went wrong. */
static const char *run_det(uint64_t n, const unsigned char *is_poison,
	uint64_t *sends_out)
{
	static unsigned pre[NMAX + 1]; /* prefix count of poison */
	replay_bisect b;
	uint64_t lo, hi, next = 0, p = 0, sends = 0;
	int rc;

	pre[0] = 0;
	for (uint64_t i = 0; i < n; i++) {
		pre[i + 1] = pre[i] + is_poison[i];
		p += is_poison[i];
	}
	replay_bisect_init(&b, n);
	while ((rc = replay_bisect_next(&b, &lo, &hi)) == 1) {
		if (++sends > 4 * n + 2)
			return "does not terminate";
		if (lo > hi || hi >= n)
			return "range out of bounds";
		if (lo != next)
			return "range not in index order (gap or repeat)";
		int ok = pre[hi + 1] - pre[lo] == 0;
		int r = replay_bisect_result(&b, ok);
		uint64_t idx;
		if (r == 1) {
			if (lo != hi || !replay_bisect_poison(&b, &idx) || idx != lo)
				return "poison report wrong";
			if (!is_poison[lo])
				return "clean record reported as poison";
			next = lo + 1;
		} else if (r == 0) {
			if (replay_bisect_poison(&b, &idx))
				return "stale poison report";
			if (ok)
				next = hi + 1;
		} else {
			return "result refused";
		}
	}
	if (rc != 0)
		return "next returned -1";
	if (next != n)
		return "not every record resolved";
	if (replay_bisect_sends(&b) != sends)
		return "send counter wrong";
	if (sends > 2 * p * ceil_log2(n) + 1)
		return "too many sends";
	*sends_out = sends;
	return NULL;
}

static void test_bisect_exhaustive(void)
{
	static unsigned char poison[NMAX];
	uint64_t worst[3] = { 0, 0, 0 };
	int cases = 0;

	for (uint64_t n = 1; n <= 64; n++) {
		const char *err = NULL;
		uint64_t sends = 0;
		memset(poison, 0, n);
		if ((err = run_det(n, poison, &sends)) != NULL)
			goto fail;
		cases++;
		for (uint64_t i = 0; i < n && !err; i++) {
			poison[i] = 1;
			if ((err = run_det(n, poison, &sends)) != NULL)
				goto fail;
			cases++;
			if (sends > worst[1])
				worst[1] = sends;
			for (uint64_t j = i + 1; j < n; j++) {
				poison[j] = 1;
				err = run_det(n, poison, &sends);
				poison[j] = 0;
				if (err)
					goto fail;
				cases++;
				if (sends > worst[2])
					worst[2] = sends;
			}
			poison[i] = 0;
		}
		tap_ok(1, "bisect n=%" PRIu64 ": every poison set of size 0..2", n);
		continue;
fail:
		tap_ok(0, "bisect n=%" PRIu64 ": every poison set of size 0..2", n);
		tap_diag("  %s", err);
	}
	tap_diag("%d exhaustive cases; worst sends at n<=64: p=1 %" PRIu64
		", p=2 %" PRIu64 " (bound 13 and 25)", cases, worst[1], worst[2]);
}

/* xorshift64*: fixed, seedable, portable */
static uint64_t rng_state;
static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static void test_bisect_random(uint64_t seed)
{
	static unsigned char poison[NMAX];
	const char *err = NULL;
	int trials = 0;

	rng_state = seed ? seed : 1;
	for (int t = 0; t < 400 && !err; t++) {
		uint64_t n = 1 + rng() % NMAX, sends;
		/* mostly few poison records, sometimes many, sometimes all */
		uint64_t p = t % 10 == 9 ? rng() % (n + 1) : rng() % 8;
		memset(poison, 0, n);
		for (uint64_t k = 0; k < p; k++)
			poison[rng() % n] = 1;
		if (t == 0)
			memset(poison, 1, n);
		err = run_det(n, poison, &sends);
		trials++;
	}
	if (!tap_ok(err == NULL, "bisect: %d random sets, n <= %d (seed %" PRIu64 ")",
	    trials, NMAX, seed))
		tap_diag("  %s at trial %d", err, trials);
}

/* A processor that is not a function of the poison set (e.g. 413 for the
 * whole batch's size, or flaky): every record must still be resolved
 * exactly once, poison only after its own single send failed. */
static void test_bisect_flaky(uint64_t seed)
{
	replay_bisect b;
	uint64_t lo, hi, next, sends;
	int bad = 0;

	/* size-based 413: ranges of more than 7 records are rejected */
	replay_bisect_init(&b, 100);
	next = 0;
	sends = 0;
	while (replay_bisect_next(&b, &lo, &hi) == 1) {
		int ok = hi - lo + 1 <= 7;
		sends++;
		if (lo != next || replay_bisect_result(&b, ok) != 0)
			bad++;
		if (ok)
			next = hi + 1;
	}
	tap_ok(!bad && next == 100, "size-limited processor: all 100 delivered, "
		"no poison (%" PRIu64 " sends)", sends);

	/* random rejects */
	rng_state = seed ^ UINT64_C(0x9e3779b97f4a7c15);
	bad = 0;
	for (int t = 0; t < 200; t++) {
		uint64_t n = 1 + rng() % 300;
		replay_bisect_init(&b, n);
		next = 0;
		sends = 0;
		while (replay_bisect_next(&b, &lo, &hi) == 1) {
			int ok = rng() % 3 != 0, r;
			if (lo != next || ++sends > 10 * n)
				bad++;
			r = replay_bisect_result(&b, ok);
			if (r == 1 && (ok || lo != hi))
				bad++;
			if (ok || r == 1)
				next = hi + 1;
			if (bad)
				break;
		}
		if (next != n)
			bad++;
		if (bad)
			break;
	}
	tap_ok(!bad, "random-reject processor: every record resolved exactly "
		"once, in order (seed %" PRIu64 ")", seed);
}

static void test_bisect_edges(void)
{
	replay_bisect b;
	uint64_t lo = 7, hi = 7, idx;

	replay_bisect_init(&b, 0);
	tap_is_int(replay_bisect_next(&b, &lo, &hi), 0, "n=0: nothing to send");
	tap_is_int(replay_bisect_result(&b, 1), -1, "result without a range refused");

	replay_bisect_init(&b, 5);
	tap_ok(replay_bisect_next(&b, &lo, &hi) == 1 && lo == 0 && hi == 4,
		"first range is the whole batch");
	tap_is_int(replay_bisect_next(&b, &lo, &hi), -1, "next before result refused");
	tap_is_int(replay_bisect_result(&b, 1), 0, "whole batch ok");
	tap_is_int(replay_bisect_next(&b, &lo, &hi), 0, "then done");
	tap_ok(!replay_bisect_poison(&b, &idx), "no poison");

	/* hand-traced: n=5, poison {3}: [0,4] x, [0,2] ok => [3,4] inferred
	 * bad and split, [3,3] x poison, [4,4] ok */
	static const uint64_t want[][3] = {
		{ 0, 4, 0 }, { 0, 2, 1 }, { 3, 3, 0 }, { 4, 4, 1 }
	};
	int good = 1;
	replay_bisect_init(&b, 5);
	for (int i = 0; i < 4; i++) {
		if (replay_bisect_next(&b, &lo, &hi) != 1 || lo != want[i][0] ||
		    hi != want[i][1]) {
			good = 0;
			break;
		}
		int r = replay_bisect_result(&b, (int)want[i][2]);
		if (i == 2 && (r != 1 || !replay_bisect_poison(&b, &idx) || idx != 3))
			good = 0;
	}
	tap_ok(good && replay_bisect_next(&b, &lo, &hi) == 0 &&
		replay_bisect_sends(&b) == 4, "n=5 poison {3}: hand-traced 4 sends");

	/* the full 64-bit range: the fixed stack suffices */
	const uint64_t n = UINT64_MAX, pz[2] = { 0, UINT64_MAX - 1 };
	uint64_t sends = 0, found = 0, next = 0, delivered = 0;
	good = 1;
	replay_bisect_init(&b, n);
	while (replay_bisect_next(&b, &lo, &hi) == 1 && sends < 1000) {
		int ok = !(lo <= pz[0] && pz[0] <= hi) && !(lo <= pz[1] && pz[1] <= hi);
		sends++;
		if (lo != next)
			good = 0;
		if (replay_bisect_result(&b, ok) == 1)
			found++;
		else if (ok)
			delivered += hi - lo + 1;
		if (ok || lo == hi)
			next = hi + 1;
	}
	tap_ok(good && found == 2 && delivered == n - 2 && next == n &&
		sends <= 2 * 2 * 64 + 1,
		"n=2^64-1, poison {0, 2^64-2}: isolated in %" PRIu64 " sends", sends);
}

int main(int argc, char **argv)
{
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : (uint64_t)time(NULL);

	tap_diag("seed %" PRIu64 " (rerun: t-replay-policy %" PRIu64 ")", seed, seed);
	test_classify();
	test_backoff();
	test_retry_after();
	test_bisect_edges();
	test_bisect_exhaustive();
	test_bisect_random(seed);
	test_bisect_flaky(seed);
	return tap_done(0);
}
