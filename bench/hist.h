/* hist.h -- fixed-size log-linear histogram for latencies (bench tools).
 *
 * HdrHistogram-style buckets: values below 256 are exact; above, each power
 * of two is split into 128 equal buckets, so a reported value is at most
 * 1/128 (0.8%) above the true one. Values are unit-free (the tools record
 * nanoseconds); anything at or above 2^40 is clamped into the last bucket.
 * Memory is fixed (about 34 KiB) whatever is recorded: one per thread,
 * merged at the end. Not thread-safe. */
#ifndef SPOOLCAP_BENCH_HIST_H
#define SPOOLCAP_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 7                        /* 128 buckets per octave */
#define HIST_MAX_BITS 40                       /* clamp at 2^40 - 1 */
#define HIST_NBUCKETS ((2u << HIST_SUB_BITS) + \
	(HIST_MAX_BITS - HIST_SUB_BITS - 1) * (1u << HIST_SUB_BITS))

typedef struct hist {
	uint64_t count;
	uint64_t min, max;                         /* exact */
	double   sum;                              /* for the mean */
	uint64_t b[HIST_NBUCKETS];
} hist;

void     hist_init(hist *h);
void     hist_add(hist *h, uint64_t v);
void     hist_merge(hist *into, const hist *from);
/* Smallest recorded value v such that a fraction q (0..1) of the records
 * are <= v, reported as its bucket's upper bound (capped at the exact max);
 * 0 when empty. */
uint64_t hist_quantile(const hist *h, double q);
double   hist_mean(const hist *h);

#endif
