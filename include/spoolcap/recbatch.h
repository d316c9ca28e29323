/* recbatch.h -- a bounded batch of spool records copied out of LMDB.
 *
 * The spool hands records to a callback inside a short read transaction;
 * readers that decode, render or send them (spoolcap dump, the replay
 * engine) copy them here first, so no transaction is held while they work. */
#ifndef SPOOLCAP_RECBATCH_H
#define SPOOLCAP_RECBATCH_H

#include <stddef.h>
#include <stdint.h>

#include "spoolcap/spool.h"

typedef struct recbatch {
	uint8_t  *data;         /* the records, back to back */
	size_t    len, cap;
	uint64_t *seq;          /* seq[i] of record i */
	size_t   *off;          /* record i is data[off[i] .. off[i + 1]) */
	size_t    n, max;
	int       oom;
} recbatch;

/* max: records per batch at most. Returns 0, or -1 when out of memory. */
int  recbatch_init(recbatch *b, size_t max);
void recbatch_free(recbatch *b);
/* Replaces the batch with the records after after_seq: pending ones
 * (spool_read) or, with all, retained ones too (spool_scan); at most
 * b->max records and max_bytes of values (0: no byte limit). Returns the
 * number copied, or a negative spool error; SPOOL_ENOMEM when the copy
 * could not grow. */
int  recbatch_fill(recbatch *b, spool *sp, uint64_t after_seq, size_t max_bytes, int all);

#endif
