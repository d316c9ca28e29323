/* spool_dict.c -- compression dictionaries kept in the spool: immutable
 * once stored, and deleted only when no record in q or the dead-letter
 * table can need them.
 *
 * dict:    u32 id -> dictionary bytes
 * dictuse: u32 id -> 16 bytes, little-endian: highest seq appended with
 *          this dictionary (from hooks.dict_id, updated in the append's own
 *          transaction), and when the dictionary was stored (ns).
 * Every record that uses dictionary d has a seq <= last_seq(d) (requeued
 * dead letters get a new seq and update last_seq too), and a record keeps
 * its seq in q and in the dead-letter table; so once last_seq(d) is below
 * every seq still held, no record needs d. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "spool_int.h"

#define DICT_GC_MAX 4096

static MDB_val u32key(const uint32_t *id)
{
	MDB_val v = { sizeof(*id), (void *)id };
	return v;
}

int spool_dictuse_touch(wtxn *w, uint32_t id, uint64_t seq)
{
	MDB_val k = u32key(&id), v;
	uint8_t b[16];
	int rc;

	rc = mdb_get(w->txn, w->sp->dictuse, &k, &v);
	if (rc == 0 && v.mv_size == 16) {
		if (spool_get_le64(v.mv_data) >= seq)
			return 0;
		memcpy(b, v.mv_data, 16);
	} else if (rc == 0 || rc == MDB_NOTFOUND) {
		memset(b, 0, sizeof(b));
	} else {
		return rc;
	}
	spool_put_le64(b, seq);
	v.mv_size = 16;
	v.mv_data = b;
	return mdb_put(w->txn, w->sp->dictuse, &k, &v, 0);
}

struct dput_ctx {
	uint32_t    id;
	const void *buf;
	size_t      len;
	int64_t     now;
};

static int dict_put_op(wtxn *w, void *vctx)
{
	struct dput_ctx *d = vctx;
	spool *sp = w->sp;
	MDB_val k = u32key(&d->id), v;
	uint8_t b[16];
	int rc;

	rc = mdb_get(w->txn, sp->dict, &k, &v);
	if (rc == 0) {
		if (v.mv_size == d->len && memcmp(v.mv_data, d->buf, d->len) == 0)
			return 0;
		return spool_seterr(SPOOL_EEXIST, "dictionary %u is already stored with "
		                    "different contents (dictionaries are immutable: use a "
		                    "new id)", d->id);
	}
	if (rc != MDB_NOTFOUND)
		return rc;
	v.mv_size = d->len;
	v.mv_data = (void *)d->buf;
	if ((rc = mdb_put(w->txn, sp->dict, &k, &v, MDB_NOOVERWRITE)) != 0)
		return rc;
	w->txn_bytes += d->len;
	rc = mdb_get(w->txn, sp->dictuse, &k, &v);
	if (rc == 0 && v.mv_size == 16)
		memcpy(b, v.mv_data, 16);
	else if (rc == 0 || rc == MDB_NOTFOUND)
		memset(b, 0, sizeof(b));
	else
		return rc;
	spool_put_le64(b + 8, (uint64_t)d->now);
	v.mv_size = 16;
	v.mv_data = b;
	if ((rc = mdb_put(w->txn, sp->dictuse, &k, &v, 0)) != 0)
		return rc;
	spool_crash_point(CP_DURING_DICT_STORE);
	return 0;
}

int spool_dict_put(spool *sp, uint32_t id, const void *buf, size_t len)
{
	struct dput_ctx d = { id, buf, len, 0 };
	wtxn w;
	int rc;

	if ((rc = spool_enter_write(sp)) != 0)
		return rc;
	if (!id || !buf || !len || len > UINT32_MAX)
		return spool_seterr(SPOOL_EINVAL, "spool_dict_put: dictionary id 0 or "
		                    "empty dictionary");
	d.now = spool_now_ns();
	pthread_mutex_lock(&sp->wlock);
	rc = spool_wtxn_run(sp, dict_put_op, &d, &w, 0);
	pthread_mutex_unlock(&sp->wlock);
	return rc;
}

int spool_dict_get(spool *sp, uint32_t id, void **buf, size_t *len)
{
	MDB_txn *txn;
	MDB_val k = u32key(&id), v;
	void *copy = NULL;
	int rc;

	if ((rc = spool_enter(sp)) != 0)
		return rc;
	if (!buf || !len)
		return spool_seterr(SPOOL_EINVAL, "spool_dict_get: bad arguments");
	*buf = NULL;
	*len = 0;
	if ((rc = spool_rtxn_begin(sp, &txn)) != 0)
		return rc;
	rc = mdb_get(txn, sp->dict, &k, &v);
	if (rc == 0 && (copy = malloc(v.mv_size ? v.mv_size : 1)) != NULL) {
		memcpy(copy, v.mv_data, v.mv_size);
		*buf = copy;
		*len = v.mv_size;
	}
	spool_rtxn_end(sp, txn);
	if (rc == MDB_NOTFOUND)
		return spool_seterr(SPOOL_ENOENT, "dictionary %u is not in the spool", id);
	if (rc)
		return spool_mdb_err(sp, rc, "spool_dict_get");
	return copy ? 0 : spool_seterr(SPOOL_ENOMEM, "out of memory");
}

static void dict_info(MDB_txn *txn, spool *sp, const MDB_val *k, const MDB_val *v,
                      spool_dict_info *d)
{
	MDB_val uv;

	memset(d, 0, sizeof(*d));
	memcpy(&d->id, k->mv_data, sizeof(d->id));
	d->len = v->mv_size;
	if (mdb_get(txn, sp->dictuse, (MDB_val *)k, &uv) == 0 && uv.mv_size == 16) {
		d->last_seq = spool_get_le64(uv.mv_data);
		d->stored_ns = (int64_t)spool_get_le64((const uint8_t *)uv.mv_data + 8);
	}
}

int spool_dict_list(spool *sp, spool_dict_fn *cb, void *user)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	spool_dict_info d;
	int rc, n = 0;

	if ((rc = spool_enter(sp)) != 0)
		return rc;
	if (!cb)
		return spool_seterr(SPOOL_EINVAL, "spool_dict_list: no callback");
	if ((rc = spool_rtxn_begin(sp, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, sp->dict, &c)) == 0) {
		while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
			int stop;

			dict_info(txn, sp, &k, &v, &d);
			n++;
			spool_in_cb = 1;
			stop = cb(&d, user);
			spool_in_cb = 0;
			if (stop)
				break;
		}
		mdb_cursor_close(c);
	}
	spool_rtxn_end(sp, txn);
	if (rc && rc != MDB_NOTFOUND)
		return spool_mdb_err(sp, rc, "spool_dict_list");
	return n;
}

struct gc_ctx {
	int64_t now;
	int     deleted;
};

static int dict_gc_op(wtxn *w, void *vctx)
{
	struct gc_ctx *g = vctx;
	spool *sp = w->sp;
	spool_dict_info *ds;
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t firstq, firstd, minkey = w->st[ST_NEXT_SEQ];
	int64_t old_enough = g->now - sp->cfg.dict_gc_grace_ns;
	int rc, n = 0, newest = -1;

	g->deleted = 0;
	if ((rc = spool_first_key(w->txn, sp->q, &firstq)) != 0 ||
	    (rc = spool_first_key(w->txn, sp->dlq, &firstd)) != 0)
		return rc;
	if (firstq && firstq < minkey)
		minkey = firstq;
	if (firstd && firstd < minkey)
		minkey = firstd;
	ds = calloc(DICT_GC_MAX, sizeof(*ds));
	if (!ds)
		return ENOMEM;
	if ((rc = mdb_cursor_open(w->txn, sp->dict, &c)) != 0)
		goto out;
	while (n < DICT_GC_MAX && (rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0)
		dict_info(w->txn, sp, &k, &v, &ds[n++]);
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		goto out;
	rc = 0;
	for (int i = 0; i < n; i++)
		if (newest < 0 || ds[i].stored_ns > ds[newest].stored_ns ||
		    (ds[i].stored_ns == ds[newest].stored_ns && ds[i].id > ds[newest].id))
			newest = i;
	for (int i = 0; i < n; i++) {
		int successor = 0;

		if (i == newest || ds[i].last_seq >= minkey)
			continue;
		/* records compressed with it may still be on their way: wait until
		 * a newer dictionary has been stored for the grace period */
		for (int j = 0; j < n; j++)
			if (ds[j].stored_ns > ds[i].stored_ns && ds[j].stored_ns <= old_enough)
				successor = 1;
		if (!successor)
			continue;
		k = u32key(&ds[i].id);
		if ((rc = mdb_del(w->txn, sp->dict, &k, NULL)) != 0)
			goto out;
		rc = mdb_del(w->txn, sp->dictuse, &k, NULL);
		if (rc && rc != MDB_NOTFOUND)
			goto out;
		rc = 0;
		g->deleted++;
	}
out:
	free(ds);
	return rc;
}

int spool_dict_gc(spool *sp, int64_t now_ns)
{
	struct gc_ctx g = { now_ns ? now_ns : spool_now_ns(), 0 };
	wtxn w;
	int rc;

	if ((rc = spool_enter_write(sp)) != 0)
		return rc;
	if (!sp->cfg.hooks.dict_id)
		return 0;
	pthread_mutex_lock(&sp->wlock);
	rc = spool_wtxn_run(sp, dict_gc_op, &g, &w, WTXN_FREES);
	pthread_mutex_unlock(&sp->wlock);
	return rc ? rc : g.deleted;
}
