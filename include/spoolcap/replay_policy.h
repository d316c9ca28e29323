/* replay_policy.h -- the pure decisions of the delivery (replay) thread:
 * how a finished POST is classified, how long to wait before the next try,
 * and which sub-ranges of a rejected batch to send while isolating the
 * records the processor refuses. No I/O, no clock, no randomness of its
 * own, no allocation: the caller passes the curl result, the time and the
 * random bits, so every function is deterministic and unit-testable.
 *
 * Policy source: spool-notes B.3 (error classes) and C.8 (retry policy),
 * issue 4. Thread-safe: no shared state; a replay_bisect belongs to one
 * thread. */
#ifndef SPOOLCAP_REPLAY_POLICY_H
#define SPOOLCAP_REPLAY_POLICY_H

#include <stdint.h>

/* ---- 1. Classification -------------------------------------------------- */

typedef enum replay_class {
	REPLAY_OK = 0,     /* 2xx: the batch is delivered, advance the cursor */
	REPLAY_TRANSIENT,  /* retry the same batch after backoff, forever */
	REPLAY_ENDPOINT,   /* endpoint/config error: pause all delivery with the
	                    * same backoff, raise an alarm, keep everything */
	REPLAY_PAYLOAD,    /* the processor refuses this batch's content:
	                    * bisect; a single refused record -> dead letter */
	REPLAY_LOCAL       /* our bug or resource failure: fatal for the
	                    * replay thread (the spool keeps everything) */
} replay_class;

/* Classifies one finished transfer: curl_code is the CURLcode from
 * CURLMSG_DONE, http_status is CURLINFO_RESPONSE_CODE (0 when no response
 * was received). A curl error wins over the status (the response may be
 * incomplete), except CURLE_HTTP_RETURNED_ERROR, which is classified by its
 * status. CURLE_OK with status 0 (no HTTP response at all, e.g. a non-HTTP
 * URL) is REPLAY_ENDPOINT. Codes this table does not know (including codes
 * newer than libcurl 7.88) are REPLAY_LOCAL. */
replay_class replay_classify(int curl_code, long http_status);

/* Classification of an HTTP status alone (what replay_classify does for
 * CURLE_OK): 2xx ok; 408, 425, 429 and 5xx (but 501, 505) transient;
 * 0, 1xx, 3xx, >= 600, 501, 505 and the 4xx about the target, headers or
 * account (401 402 403 404 405 406 407 410 411 414 417 421 426 428 431
 * 451) endpoint; every other 4xx payload; negative local. */
replay_class replay_classify_http(long http_status);

/* "ok", "transient", "endpoint", "payload", "local" (metrics label). */
const char *replay_class_name(replay_class c);

/* ---- 2. Backoff ------------------------------------------------------- */

#define REPLAY_BACKOFF_BASE_MS 500u           /* C.8 */
#define REPLAY_BACKOFF_CAP_MS 60000u          /* C.8 */
#define REPLAY_RETRY_AFTER_MAX_MS 600000u     /* honour Retry-After up to 10 min */

/* Full-jitter exponential backoff: a value uniform in
 * [0, min(cap_ms, base_ms * 2^attempt)] derived from rnd (any 64-bit
 * random value from the caller; the modulo bias is < ceiling/2^64).
 * attempt 0 is the first retry after the first failure. Never overflows:
 * any attempt >= 64 or product beyond cap_ms yields the cap. */
uint64_t replay_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t cap_ms,
	uint64_t rnd);

/* The ceiling replay_backoff_ms draws below (inclusive), for metrics/tests. */
uint64_t replay_backoff_ceiling_ms(unsigned attempt, uint64_t base_ms,
	uint64_t cap_ms);

/* Parses a Retry-After header value (RFC 9110 10.2.3): delta-seconds
 * ("120") or an HTTP-date in IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"),
 * RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") or asctime
 * ("Sun Nov  6 08:49:37 1994") form, surrounded by optional spaces/tabs.
 * now_s is the current time in seconds since the epoch (dates are made
 * relative to it; a date in the past gives 0). The result in ms is clamped
 * to max_ms (0 means REPLAY_RETRY_AFTER_MAX_MS) and stored in *out.
 * delta-seconds too large for any integer are clamped too, as RFC 9110
 * 1.2.2 asks. Returns 0, or -1 for anything else (empty, sign, garbage,
 * impossible date, trailing junk); *out is then untouched. */
int replay_retry_after_ms(const char *header_value, int64_t now_s,
	uint64_t max_ms, uint64_t *out);

/* The delay before the next attempt: the jittered backoff, or, when the
 * server sent Retry-After (retry_after_ms != NULL, already clamped by
 * replay_retry_after_ms), the larger of the two -- the server's "not before"
 * is honoured and the jitter still spreads clients that got the same date. */
uint64_t replay_next_delay_ms(unsigned attempt, uint64_t base_ms,
	uint64_t cap_ms, uint64_t rnd, const uint64_t *retry_after_ms);

/* ---- 3. Bisection of a rejected batch ---------------------------------- */

/* Records are indexes 0..n-1 of a batch. The planner hands out sub-ranges
 * to send, in index order (so delivery order and a contiguous cursor are
 * kept); a range that succeeds is done, a failing range of more than one
 * record is split in halves, a failing single record is poison. When a
 * left half succeeds after its parent failed, the right half is known to
 * fail and is split without being sent (a single record is always sent on
 * its own before it is called poison). Sends <= 2*p*ceil(log2 n) + 1 for p
 * poison records; every other record is in exactly one successful range.
 *
 * Use:
 *   replay_bisect_init(&b, n);        (after the whole batch got REPLAY_PAYLOAD,
 *                                      or before sending it: the first range
 *                                      is then the whole batch)
 *   while (replay_bisect_next(&b, &lo, &hi) == 1) {
 *           ok = send(lo..hi) == REPLAY_OK;
 *           if (replay_bisect_result(&b, ok) == 1)
 *                   dead_letter(lo);  (== replay_bisect_poison())
 *   }
 * Only REPLAY_OK / REPLAY_PAYLOAD outcomes belong here: on a transient or
 * endpoint failure just resend the same range later (call nothing).
 * Fixed size, no allocation: 64 levels cover any n < 2^64. Fields are
 * private. */
#define REPLAY_BISECT_DEPTH 65

typedef struct replay_bisect {
	uint64_t lo[REPLAY_BISECT_DEPTH];
	uint64_t hi[REPLAY_BISECT_DEPTH];
	unsigned char left[REPLAY_BISECT_DEPTH]; /* a left half (sibling below) */
	unsigned depth;       /* pending ranges on the stack */
	int busy;             /* a range was handed out, result pending */
	uint64_t cur_lo, cur_hi;
	int cur_left;
	int have_poison;      /* the last result isolated a poison record */
	uint64_t poison;
	uint64_t sends;       /* ranges handed out so far */
} replay_bisect;

/* Starts planning over records 0..n-1 (n == 0: nothing to do). */
void replay_bisect_init(replay_bisect *b, uint64_t n);

/* Next range to send, inclusive: returns 1 and sets *lo, *hi; 0 when the
 * batch is fully resolved; -1 if the previous range has no result yet. */
int replay_bisect_next(replay_bisect *b, uint64_t *lo, uint64_t *hi);

/* Outcome of the range last handed out (ok != 0: accepted). Returns 1 when
 * it was a single rejected record (now poison, see replay_bisect_poison),
 * 0 otherwise, -1 if no range was outstanding. */
int replay_bisect_result(replay_bisect *b, int ok);

/* Returns 1 and sets *idx if the last result isolated a poison record. */
int replay_bisect_poison(const replay_bisect *b, uint64_t *idx);

/* Number of ranges handed out since init (for metrics). */
uint64_t replay_bisect_sends(const replay_bisect *b);

#endif
