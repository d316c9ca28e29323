/* hist.c -- log-linear latency histogram (see hist.h for the layout). */
#include "hist.h"

#include <string.h>

#define SUB   (1u << HIST_SUB_BITS)           /* 128 */
#define LIN   (2u * SUB)                      /* values below 256 are exact */
#define VMAX  ((UINT64_C(1) << HIST_MAX_BITS) - 1)

static unsigned bucket_of(uint64_t v)
{
	unsigned msb, shift;

	if (v < LIN)
		return (unsigned)v;
	if (v > VMAX)
		v = VMAX;
	msb = 63u - (unsigned)__builtin_clzll(v);  /* >= 8 here */
	shift = msb - HIST_SUB_BITS;               /* v >> shift is in [128, 255] */
	return LIN + (shift - 1) * SUB + (unsigned)((v >> shift) - SUB);
}

/* Highest value that lands in bucket i. */
static uint64_t bucket_top(unsigned i)
{
	unsigned shift;
	uint64_t m;

	if (i < LIN)
		return i;
	shift = (i - LIN) / SUB + 1;
	m = (i - LIN) % SUB + SUB;
	return ((m + 1) << shift) - 1;
}

void hist_init(hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void hist_add(hist *h, uint64_t v)
{
	h->b[bucket_of(v)]++;
	h->count++;
	h->sum += (double)v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void hist_merge(hist *into, const hist *from)
{
	unsigned i;

	if (!from->count)
		return;
	for (i = 0; i < HIST_NBUCKETS; i++)
		into->b[i] += from->b[i];
	into->count += from->count;
	into->sum += from->sum;
	if (from->min < into->min)
		into->min = from->min;
	if (from->max > into->max)
		into->max = from->max;
}

uint64_t hist_quantile(const hist *h, double q)
{
	uint64_t want, seen = 0, top;
	unsigned i;

	if (!h->count)
		return 0;
	if (q <= 0)
		return h->min;
	if (q >= 1)
		return h->max;
	/* ceil(q * count), at least 1: the rank of the record we want */
	want = (uint64_t)(q * (double)h->count);
	if ((double)want < q * (double)h->count)
		want++;
	if (!want)
		want = 1;
	for (i = 0; i < HIST_NBUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want) {
			top = bucket_top(i);
			return top < h->max ? top : h->max;
		}
	}
	return h->max;
}

double hist_mean(const hist *h)
{
	return h->count ? h->sum / (double)h->count : 0.0;
}
