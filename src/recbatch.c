/* recbatch.c -- copies a bounded batch of spool records out of LMDB (see
 * recbatch.h). */
#include "config.h"

#include "spoolcap/recbatch.h"

#include <stdlib.h>
#include <string.h>

int recbatch_init(recbatch *b, size_t max)
{
	memset(b, 0, sizeof *b);
	b->max = max ? max : 1;
	b->seq = calloc(b->max, sizeof *b->seq);
	b->off = calloc(b->max + 1, sizeof *b->off);
	if (!b->seq || !b->off) {
		recbatch_free(b);
		return -1;
	}
	return 0;
}

void recbatch_free(recbatch *b)
{
	free(b->data);
	free(b->seq);
	free(b->off);
	memset(b, 0, sizeof *b);
}

/* Runs inside the spool's read transaction: copy and return at once. */
static int copy_cb(uint64_t seq, const void *val, size_t len, void *user)
{
	recbatch *b = user;

	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 1u << 16;
		uint8_t *d;

		while (cap < b->len + len)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d) {
			b->oom = 1;
			return 1;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, val, len);
	b->seq[b->n] = seq;
	b->off[b->n] = b->len;
	b->len += len;
	b->off[++b->n] = b->len;
	return b->n >= b->max;
}

int recbatch_fill(recbatch *b, spool *sp, uint64_t after_seq, size_t max_bytes, int all)
{
	int n;

	b->n = 0;
	b->len = 0;
	b->oom = 0;
	n = all ? spool_scan(sp, after_seq, b->max, max_bytes, copy_cb, b)
	        : spool_read(sp, after_seq, b->max, max_bytes, copy_cb, b);
	if (n < 0)
		return n;
	return b->oom ? SPOOL_ENOMEM : (int)b->n;
}
