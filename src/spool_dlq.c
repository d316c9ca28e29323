/* spool_dlq.c -- the dead-letter table: moving a record out of the queue
 * with the reason it could not be delivered, listing, requeueing and
 * purging dead letters, and spool_verify (which feeds it corrupt records).
 *
 * dlq value, all little-endian:
 *    0  4  magic "DLQ1"
 *    4  2  reason (enum spool_dlq_reason)
 *    6  2  HTTP status
 *    8  4  attempts
 *   12  4  curl code (signed)
 *   16  8  first failure, ns since the epoch
 *   24  8  last failure
 *   32  8  when it was dead-lettered
 *   40  4  snippet length S (<= SPOOL_SNIPPET_MAX)
 *   44  4  record length R
 *   48  S  start of the processor's reply
 * 48+S  R  the original record, byte for byte
 * A value that does not parse is shown whole as the record, reason
 * "other", so nothing in the table is ever unreadable or lost. */
#include "config.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool_int.h"

#define DLQ_HDR        48
#define DLQ_MAGIC      "DLQ1"
#define CHUNK_RECORDS  1024

static void sub(uint64_t *x, uint64_t v)
{
	*x = *x > v ? *x - v : 0;
}

static void dlq_parse(uint64_t seq, const MDB_val *v, spool_dlq_entry *e)
{
	const uint8_t *p = v->mv_data;
	uint32_t snip, rec;

	memset(e, 0, sizeof(*e));
	e->seq = seq;
	e->record = v->mv_data;
	e->record_len = v->mv_size;
	if (v->mv_size < DLQ_HDR || memcmp(p, DLQ_MAGIC, 4) != 0)
		return;
	snip = spool_get_le32(p + 40);
	rec = spool_get_le32(p + 44);
	if (snip > SPOOL_SNIPPET_MAX || (uint64_t)DLQ_HDR + snip + rec != v->mv_size)
		return;
	e->info.reason = p[4] | p[5] << 8;
	if (e->info.reason >= SPOOL_DLQ_NREASONS)
		e->info.reason = SPOOL_DLQ_OTHER;
	e->info.http_status = p[6] | p[7] << 8;
	e->info.attempts = spool_get_le32(p + 8);
	e->info.curl_code = (int32_t)spool_get_le32(p + 12);
	e->info.first_ns = (int64_t)spool_get_le64(p + 16);
	e->info.last_ns = (int64_t)spool_get_le64(p + 24);
	e->dead_ns = (int64_t)spool_get_le64(p + 32);
	e->info.snippet = p + DLQ_HDR;
	e->info.snippet_len = snip;
	e->record = p + DLQ_HDR + snip;
	e->record_len = rec;
}

/* Removes dead letter at c (positioned), keeping the counters right. */
static int dlq_del_at(wtxn *w, MDB_cursor *c, const MDB_val *k, const MDB_val *v,
                      int drop_reason)
{
	spool_dlq_entry e;
	uint64_t *st = w->st;
	int rc;

	dlq_parse(spool_keyu64(k), v, &e);
	if ((rc = mdb_cursor_del(c, 0)) != 0)
		return rc;
	sub(&st[ST_D_RECORDS], 1);
	sub(&st[ST_D_BYTES], e.record_len);
	sub(&st[ST_DLQR0 + e.info.reason], 1);
	if (drop_reason >= 0)
		st[ST_DROP0 + drop_reason]++;
	return 0;
}

/* ---------------------------------------------------------------- put */

struct put_ctx {
	uint64_t seq;
	const spool_dlq_info *info;
	int64_t now;
};

static int dlq_put_op(wtxn *w, void *vctx)
{
	struct put_ctx *pc = vctx;
	const spool_dlq_info *in = pc->info;
	spool *sp = w->sp;
	uint64_t *st = w->st, seq = pc->seq;
	MDB_val k = spool_u64key(&seq), qv, dv;
	MDB_cursor *c;
	size_t snip = in->snippet ? in->snippet_len : 0, rlen;
	uint8_t *p;
	int rc;

	if (snip > SPOOL_SNIPPET_MAX)
		snip = SPOOL_SNIPPET_MAX;
	if (seq <= st[ST_CURSOR])
		return spool_seterr(SPOOL_ENOENT, "record %" PRIu64 " is not pending (the "
		                    "delivery cursor is at %" PRIu64 ")", seq, st[ST_CURSOR]);
	rc = mdb_get(w->txn, sp->q, &k, &qv);
	if (rc == MDB_NOTFOUND)
		return spool_seterr(SPOOL_ENOENT, "record %" PRIu64 " is not in the queue",
		                    seq);
	if (rc)
		return rc;
	rlen = qv.mv_size;
	dv.mv_size = DLQ_HDR + snip + rlen;
	dv.mv_data = NULL;
	rc = mdb_put(w->txn, sp->dlq, &k, &dv, MDB_NOOVERWRITE | MDB_RESERVE);
	if (rc == MDB_KEYEXIST)
		return spool_seterr(SPOOL_ECORRUPT, "record %" PRIu64 " is both queued and "
		                    "dead-lettered (inconsistent spool)", seq);
	if (rc)
		return rc;
	w->txn_bytes += dv.mv_size;
	p = dv.mv_data;
	memcpy(p, DLQ_MAGIC, 4);
	p[4] = (uint8_t)in->reason;
	p[5] = (uint8_t)(in->reason >> 8);
	p[6] = (uint8_t)in->http_status;
	p[7] = (uint8_t)(in->http_status >> 8);
	spool_put_le32(p + 8, in->attempts);
	spool_put_le32(p + 12, (uint32_t)in->curl_code);
	spool_put_le64(p + 16, (uint64_t)(in->first_ns ? in->first_ns : pc->now));
	spool_put_le64(p + 24, (uint64_t)(in->last_ns ? in->last_ns : pc->now));
	spool_put_le64(p + 32, (uint64_t)pc->now);
	spool_put_le32(p + 40, (uint32_t)snip);
	spool_put_le32(p + 44, (uint32_t)rlen);
	if (snip)
		memcpy(p + DLQ_HDR, in->snippet, snip);
	/* the put may have spilled dirty pages: fetch the record again */
	if ((rc = mdb_get(w->txn, sp->q, &k, &qv)) != 0)
		return rc;
	memcpy(p + DLQ_HDR + snip, qv.mv_data, rlen);
	if ((rc = mdb_del(w->txn, sp->q, &k, NULL)) != 0)
		return rc;
	sub(&st[ST_Q_RECORDS], 1);
	sub(&st[ST_Q_BYTES], rlen);
	st[ST_D_RECORDS]++;
	st[ST_D_BYTES] += rlen;
	st[ST_DLQ_IN]++;
	st[ST_DLQR0 + in->reason]++;

	/* dlq_max_bytes: the oldest other dead letters make room */
	if ((rc = mdb_cursor_open(w->txn, sp->dlq, &c)) != 0)
		return rc;
	while (st[ST_D_BYTES] > sp->cfg.dlq_max_bytes && st[ST_D_RECORDS] > 1) {
		rc = mdb_cursor_get(c, &k, &dv, MDB_FIRST);
		if (rc == 0 && spool_keyu64(&k) == seq)
			rc = mdb_cursor_get(c, &k, &dv, MDB_NEXT);
		if (rc)
			break;
		if ((rc = dlq_del_at(w, c, &k, &dv, SPOOL_DROP_DLQ_EVICTED)) != 0)
			break;
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	spool_crash_point(CP_DURING_DLQ_MOVE);
	return 0;
}

int spool_dlq_put(spool *sp, uint64_t seq, const spool_dlq_info *info)
{
	struct put_ctx pc = { seq, info, 0 };
	wtxn w;
	int rc;

	if ((rc = spool_enter_write(sp)) != 0)
		return rc;
	if (!info || info->reason < 0 || info->reason >= SPOOL_DLQ_NREASONS ||
	    info->http_status < 0 || info->http_status > 65535 ||
	    (info->snippet_len && !info->snippet))
		return spool_seterr(SPOOL_EINVAL, "spool_dlq_put: bad arguments");
	pc.now = spool_now_ns();
	pthread_mutex_lock(&sp->wlock);
	rc = spool_wtxn_run(sp, dlq_put_op, &pc, &w, WTXN_FREES);
	pthread_mutex_unlock(&sp->wlock);
	return rc;
}

/* ------------------------------------------------------------ reading */

int spool_dlq_get(spool *sp, uint64_t seq, spool_dlq_fn *cb, void *user)
{
	MDB_txn *txn;
	MDB_val k = spool_u64key(&seq), v;
	spool_dlq_entry e;
	int rc;

	if ((rc = spool_enter(sp)) != 0)
		return rc;
	if (!cb)
		return spool_seterr(SPOOL_EINVAL, "spool_dlq_get: no callback");
	if ((rc = spool_rtxn_begin(sp, &txn)) != 0)
		return rc;
	rc = mdb_get(txn, sp->dlq, &k, &v);
	if (rc == 0) {
		dlq_parse(seq, &v, &e);
		spool_in_cb = 1;
		cb(&e, user);
		spool_in_cb = 0;
	}
	spool_rtxn_end(sp, txn);
	if (rc == MDB_NOTFOUND)
		return spool_seterr(SPOOL_ENOENT, "no dead letter %" PRIu64, seq);
	return rc ? spool_mdb_err(sp, rc, "spool_dlq_get") : 0;
}

int spool_dlq_iterate(spool *sp, uint64_t after_seq, size_t max,
                      spool_dlq_fn *cb, void *user)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	spool_dlq_entry e;
	uint64_t start;
	int rc, n = 0;

	if ((rc = spool_enter(sp)) != 0)
		return rc;
	if (!cb)
		return spool_seterr(SPOOL_EINVAL, "spool_dlq_iterate: no callback");
	if (after_seq == UINT64_MAX)
		return 0;
	if (max == 0 || max > INT_MAX)
		max = INT_MAX;
	if ((rc = spool_rtxn_begin(sp, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, sp->dlq, &c)) == 0) {
		start = after_seq + 1;
		k = spool_u64key(&start);
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		while (rc == 0 && (size_t)n < max) {
			int stop;

			dlq_parse(spool_keyu64(&k), &v, &e);
			n++;
			spool_in_cb = 1;
			stop = cb(&e, user);
			spool_in_cb = 0;
			if (stop)
				break;
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
		}
		mdb_cursor_close(c);
	}
	spool_rtxn_end(sp, txn);
	if (rc && rc != MDB_NOTFOUND)
		return spool_mdb_err(sp, rc, "spool_dlq_iterate");
	return n;
}

/* ----------------------------------------------------- requeue / purge */

struct many_ctx {
	const uint64_t *seqs;     /* NULL: all */
	size_t n;
	size_t pos, next_pos;     /* progress through seqs, committed / this txn */
	uint64_t done;            /* this txn */
	int requeue;
	int finished;
};

/* Positions c on the next dead letter to handle; MDB_NOTFOUND when done. */
static int many_next(wtxn *w, struct many_ctx *m, MDB_cursor *c, MDB_val *k,
                     MDB_val *v, uint64_t *keybuf)
{
	int rc;

	if (!m->seqs)
		return mdb_cursor_get(c, k, v, MDB_FIRST);
	while (m->next_pos < m->n) {
		*keybuf = m->seqs[m->next_pos++];
		*k = spool_u64key(keybuf);
		rc = mdb_cursor_get(c, k, v, MDB_SET_KEY);
		if (rc != MDB_NOTFOUND)
			return rc;
	}
	(void)w;
	return MDB_NOTFOUND;
}

static int many_op(wtxn *w, void *vctx)
{
	struct many_ctx *m = vctx;
	spool *sp = w->sp;
	uint64_t *st = w->st, keybuf, seq, nseq;
	MDB_cursor *c;
	MDB_val k, v, nk, nv;
	spool_dlq_entry e;
	int rc;

	m->next_pos = m->pos;
	m->done = 0;
	m->finished = 0;
	if ((rc = mdb_cursor_open(w->txn, sp->dlq, &c)) != 0)
		return rc;
	for (;;) {
		if (m->done >= CHUNK_RECORDS)
			break;
		rc = many_next(w, m, c, &k, &v, &keybuf);
		if (rc == MDB_NOTFOUND) {
			m->finished = 1;
			rc = 0;
			break;
		}
		if (rc)
			break;
		seq = spool_keyu64(&k);
		if (!m->requeue) {
			if ((rc = dlq_del_at(w, c, &k, &v, SPOOL_DROP_PURGED)) != 0)
				break;
			m->done++;
			continue;
		}
		dlq_parse(seq, &v, &e);
		nseq = st[ST_NEXT_SEQ];
		nk = spool_u64key(&nseq);
		nv.mv_size = e.record_len;
		nv.mv_data = NULL;
		rc = mdb_put(w->txn, sp->q, &nk, &nv, MDB_APPEND | MDB_RESERVE);
		if (rc)
			break;
		w->txn_bytes += e.record_len + 64;
		/* the reserve may have spilled pages: look the dead letter up again */
		k = spool_u64key(&seq);
		if ((rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY)) != 0)
			break;
		dlq_parse(seq, &v, &e);
		memcpy(nv.mv_data, e.record, e.record_len);
		if (sp->cfg.hooks.dict_id) {
			uint32_t id;

			spool_in_cb = 1;
			id = sp->cfg.hooks.dict_id(e.record, e.record_len, sp->cfg.hooks.user);
			spool_in_cb = 0;
			if (id && (rc = spool_dictuse_touch(w, id, nseq)) != 0)
				break;
			/* the touch may move pages too */
			if ((rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY)) != 0)
				break;
		}
		if ((rc = dlq_del_at(w, c, &k, &v, -1)) != 0)
			break;
		st[ST_NEXT_SEQ]++;
		st[ST_Q_RECORDS]++;
		st[ST_Q_BYTES] += e.record_len;
		st[ST_REQUEUED]++;
		m->done++;
	}
	mdb_cursor_close(c);
	return rc;
}

static int many_run(spool *sp, const uint64_t *seqs, size_t n, int requeue)
{
	struct many_ctx m = { seqs, n, 0, 0, 0, requeue, 0 };
	uint64_t total = 0;
	wtxn w;
	int rc;

	if ((rc = spool_enter_write(sp)) != 0)
		return rc;
	if (seqs && n == 0)
		return 0;
	do {
		pthread_mutex_lock(&sp->wlock);
		rc = spool_wtxn_run(sp, many_op, &m, &w, requeue ? 0 : WTXN_FREES);
		pthread_mutex_unlock(&sp->wlock);
		if (rc == 0) {
			total += m.done;
			m.pos = m.next_pos;
		}
	} while (rc == 0 && !m.finished);
	if (rc)
		return rc;
	return total > INT_MAX ? INT_MAX : (int)total;
}

int spool_dlq_requeue(spool *sp, const uint64_t *seqs, size_t n)
{
	return many_run(sp, seqs, n, 1);
}

int spool_dlq_purge(spool *sp, const uint64_t *seqs, size_t n)
{
	return many_run(sp, seqs, n, 0);
}

/* ------------------------------------------------------------- verify */

#define VERIFY_CHUNK 1000
#define VERIFY_BAD   128

struct bad {
	uint64_t seq;
	char     why[160];
};

/* Validates up to VERIFY_CHUNK records after *after in one read txn;
 * collects the bad ones. Returns how many were looked at, or an error. */
static int verify_chunk(spool *sp, int dlq, uint64_t *after, struct bad *bad,
                        int *nbad)
{
	spool_hooks *h = &sp->cfg.hooks;
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	spool_dlq_entry e;
	uint64_t start = *after + 1;
	int rc, n = 0;

	*nbad = 0;
	if (*after == UINT64_MAX)
		return 0;
	if ((rc = spool_rtxn_begin(sp, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, dlq ? sp->dlq : sp->q, &c)) == 0) {
		k = spool_u64key(&start);
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		while (rc == 0 && n < VERIFY_CHUNK && *nbad < VERIFY_BAD) {
			const void *rec = v.mv_data;
			size_t len = v.mv_size;
			char why[160] = "";

			*after = spool_keyu64(&k);
			if (dlq) {
				dlq_parse(*after, &v, &e);
				rec = e.record;
				len = e.record_len;
			}
			spool_in_cb = 1;
			if (h->validate(rec, len, why, sizeof(why), h->user) != 0) {
				bad[*nbad].seq = *after;
				snprintf(bad[*nbad].why, sizeof(bad[*nbad].why), "%s",
				         why[0] ? why : "invalid record");
				(*nbad)++;
			}
			spool_in_cb = 0;
			n++;
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
		}
		mdb_cursor_close(c);
	}
	spool_rtxn_end(sp, txn);
	if (rc && rc != MDB_NOTFOUND)
		return spool_mdb_err(sp, rc, "spool_verify");
	return n;
}

int spool_verify(spool *sp, int flags, spool_bad_fn *cb, void *user)
{
	struct bad *bad;
	uint64_t after;
	int rc, nbad, total = 0;

	if ((rc = spool_enter(sp)) != 0)
		return rc;
	if (!sp->cfg.hooks.validate)
		return spool_seterr(SPOOL_EINVAL, "spool_verify: no validate hook configured");
	if ((flags & SPOOL_VERIFY_DLQ_CORRUPT) && sp->mode == SPOOL_MODE_READONLY)
		return spool_seterr(SPOOL_ERDONLY, "spool %s is open read-only", sp->dir);
	bad = calloc(VERIFY_BAD, sizeof(*bad));
	if (!bad)
		return spool_seterr(SPOOL_ENOMEM, "out of memory");
	/* dead letters first, so records moved there now are not seen twice */
	for (int dlq = 1; dlq >= 0; dlq--) {
		after = 0;
		for (;;) {
			rc = verify_chunk(sp, dlq, &after, bad, &nbad);
			if (rc <= 0)
				break;
			for (int i = 0; i < nbad; i++) {
				total++;
				if (cb)
					cb(bad[i].seq, dlq, bad[i].why, user);
				if (!dlq && (flags & SPOOL_VERIFY_DLQ_CORRUPT)) {
					spool_dlq_info in = { 0 };
					int r;

					in.reason = SPOOL_DLQ_CORRUPT;
					in.snippet = bad[i].why;
					in.snippet_len = strlen(bad[i].why);
					r = spool_dlq_put(sp, bad[i].seq, &in);
					if (r && r != SPOOL_ENOENT) {
						rc = r;
						goto out;
					}
				}
			}
		}
		if (rc < 0)
			break;
	}
out:
	free(bad);
	return rc < 0 ? rc : total;
}
