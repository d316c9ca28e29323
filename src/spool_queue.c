/* spool_queue.c -- the queue proper: group-commit append with the size cap
 * and full policy, reads after the delivery cursor, cursor advance,
 * retention pruning and operator purge. See include/spoolcap/spool.h. */
#include "config.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "spool_int.h"

#define CHUNK_RECORDS  4096        /* bound on records touched per write txn */
#define DICT_TRACK     8

static void sub(uint64_t *x, uint64_t v)
{
	*x = *x > v ? *x - v : 0;
}

/* ------------------------------------------------------------- append */

struct append_ctx {
	const spool_item    *items;
	size_t               n;
	spool_append_result *res;
	int                  stored;
};

/* Deletes the oldest retained record (pruned). 0, MDB_NOTFOUND when none. */
static int prune_one(wtxn *w, MDB_cursor *c)
{
	uint64_t *st = w->st, k, b;
	MDB_val key, val;
	int rc;

	if (st[ST_R_RECORDS] == 0)
		return MDB_NOTFOUND;
	rc = mdb_cursor_get(c, &key, &val, MDB_FIRST);
	if (rc == 0 && spool_keyu64(&key) > st[ST_CURSOR])
		rc = MDB_NOTFOUND;
	if (rc == MDB_NOTFOUND) {          /* counters disagree: trust the table */
		st[ST_R_RECORDS] = st[ST_R_BYTES] = 0;
		return MDB_NOTFOUND;
	}
	if (rc || (rc = spool_q_del_first(c, &k, &b)) != 0)
		return rc;
	st[ST_R_RECORDS]--;
	sub(&st[ST_R_BYTES], b);
	st[ST_PRUNED]++;
	return 0;
}

/* Deletes the oldest pending record (evicted by drop-oldest). */
static int evict_one(wtxn *w, MDB_cursor *c)
{
	uint64_t *st = w->st, k, b;
	int rc;

	if (st[ST_Q_RECORDS] == 0)
		return MDB_NOTFOUND;
	rc = spool_q_del_first(c, &k, &b);
	if (rc == MDB_NOTFOUND) {
		st[ST_Q_RECORDS] = st[ST_Q_BYTES] = 0;
		return rc;
	}
	if (rc)
		return rc;
	st[ST_Q_RECORDS]--;
	sub(&st[ST_Q_BYTES], b);
	st[ST_DROP0 + SPOOL_DROP_EVICTED]++;
	return 0;
}

static uint64_t used_bytes(const uint64_t *st)
{
	return st[ST_Q_BYTES] + st[ST_R_BYTES] + st[ST_D_BYTES];
}

/* Makes room for len bytes under the cap as the policy allows. Returns 1
 * if the item may be stored, 0 if it must be dropped as full, or an LMDB
 * error. Order: retained (already delivered) records go first, then, with
 * drop-oldest, the oldest pending ones. Nothing is removed for an item
 * that could not fit anyway. */
static int make_room(wtxn *w, MDB_cursor *c, uint64_t len)
{
	spool *sp = w->sp;
	uint64_t *st = w->st, max = sp->cfg.max_size;
	int rc;

	if (len <= max && used_bytes(st) <= max - len)
		return 1;
	if (sp->cfg.full_policy == SPOOL_FULL_DROP_NEWEST) {
		if (len > max || st[ST_Q_BYTES] + st[ST_D_BYTES] > max - len)
			return 0;
	} else if (len > max || st[ST_D_BYTES] > max - len) {
		return 0;
	}
	while (used_bytes(st) > max - len) {
		rc = prune_one(w, c);
		if (rc == MDB_NOTFOUND)
			break;
		if (rc)
			return rc;
	}
	while (used_bytes(st) > max - len) {
		if (sp->cfg.full_policy != SPOOL_FULL_DROP_OLDEST)
			return 0;
		rc = evict_one(w, c);
		if (rc == MDB_NOTFOUND)
			return used_bytes(st) <= max - len;
		if (rc)
			return rc;
	}
	return 1;
}

static int append_op(wtxn *w, void *vctx)
{
	struct append_ctx *a = vctx;
	spool *sp = w->sp;
	uint64_t *st = w->st;
	MDB_cursor *ca = NULL, *cd = NULL;
	struct { uint32_t id; uint64_t seq; } dt[DICT_TRACK];
	int ndt = 0, rc;

	a->stored = 0;
	if ((rc = mdb_cursor_open(w->txn, sp->q, &ca)) != 0 ||
	    (rc = mdb_cursor_open(w->txn, sp->q, &cd)) != 0)
		goto out;
	for (size_t i = 0; i < a->n; i++) {
		const spool_item *it = &a->items[i];
		uint64_t seq = st[ST_NEXT_SEQ];
		MDB_val k = spool_u64key(&seq), v = { it->len, (void *)it->data };

		a->res[i].seq = 0;
		a->res[i].drop = SPOOL_DROP_FULL;
		rc = make_room(w, cd, it->len);
		if (rc < 0 || rc > 1)
			goto out;
		if (rc == 0) {
			st[ST_DROP0 + SPOOL_DROP_FULL]++;
			continue;
		}
		rc = mdb_cursor_put(ca, &k, &v, MDB_APPEND);
		if (rc)
			goto out;
		w->txn_bytes += it->len + 64;
		a->res[i].seq = seq;
		a->res[i].drop = -1;
		a->stored++;
		st[ST_NEXT_SEQ]++;
		st[ST_Q_RECORDS]++;
		st[ST_Q_BYTES] += it->len;
		st[ST_ACCEPTED]++;
		if (sp->cfg.hooks.dict_id) {
			uint32_t id;
			int j;

			spool_in_cb = 1;
			id = sp->cfg.hooks.dict_id(it->data, it->len, sp->cfg.hooks.user);
			spool_in_cb = 0;
			if (!id)
				continue;
			for (j = 0; j < ndt && dt[j].id != id; j++)
				;
			if (j == ndt && ndt == DICT_TRACK) {
				if ((rc = spool_dictuse_touch(w, dt[0].id, dt[0].seq)) != 0)
					goto out;
				j = 0;
			} else if (j == ndt) {
				ndt++;
			}
			dt[j].id = id;
			dt[j].seq = seq;
		}
	}
	for (int j = 0; j < ndt; j++)
		if ((rc = spool_dictuse_touch(w, dt[j].id, dt[j].seq)) != 0)
			goto out;
	rc = 0;
	if (a->stored)
		spool_crash_point(CP_AFTER_PUT_BEFORE_COMMIT);
out:
	if (ca)
		mdb_cursor_close(ca);
	if (cd)
		mdb_cursor_close(cd);
	return rc;
}

/* After the map hit its limit: free `need` bytes of values in their own
 * transaction (retained first, then pending under drop-oldest), since
 * pages freed inside the failing transaction could not be reused by it. */
struct room_ctx {
	uint64_t need;
	uint64_t freed;
};

static int room_op(wtxn *w, void *vctx)
{
	struct room_ctx *r = vctx;
	MDB_cursor *c;
	uint64_t before = used_bytes(w->st);
	int rc;

	if ((rc = mdb_cursor_open(w->txn, w->sp->q, &c)) != 0)
		return rc;
	while (before - used_bytes(w->st) < r->need) {
		rc = prune_one(w, c);
		if (rc == MDB_NOTFOUND && w->sp->cfg.full_policy == SPOOL_FULL_DROP_OLDEST)
			rc = evict_one(w, c);
		if (rc)
			break;
	}
	mdb_cursor_close(c);
	r->freed = before - used_bytes(w->st);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* In a constrained space state (see spool_int.h): can LMDB's free pages
 * take these items and still leave headroom for the next delete? */
#define HEADROOM_PAGES 128

static uint64_t pages_needed(spool *sp, const spool_item *items, size_t n)
{
	uint64_t bytes = 0, ps = sp->psize;

	for (size_t i = 0; i < n; i++)
		bytes += items[i].len > 2022 ? ((items[i].len + 15) / ps + 1) * ps
		                             : items[i].len + 18;
	return bytes + HEADROOM_PAGES * ps;
}

static int room_run(spool *sp, uint64_t need)
{
	struct room_ctx r = { need, 0 };
	wtxn w;

	return spool_wtxn_run(sp, room_op, &r, &w, WTXN_FREES) == 0 && r.freed > 0;
}

static void drop_all(spool *sp, spool_append_result *res, size_t n, int reason)
{
	for (size_t i = 0; i < n; i++) {
		res[i].seq = 0;
		res[i].drop = reason;
	}
	/* the transaction is gone: counted in memory until the next one */
	sp->pend_drops[reason] += n;
}

int spool_append(spool *sp, const spool_item *items, size_t n,
                 spool_append_result *res)
{
	struct append_ctx a = { items, n, res, 0 };
	int rc, oldest;
	wtxn w;

	if ((rc = spool_enter_write(sp)) != 0)
		return rc;
	if (n == 0)
		return 0;
	if (!items || !res || n > INT_MAX)
		return spool_seterr(SPOOL_EINVAL, "spool_append: bad arguments");
	for (size_t i = 0; i < n; i++)
		if ((!items[i].data && items[i].len) || items[i].len > UINT32_MAX)
			return spool_seterr(SPOOL_EINVAL, "spool_append: item %zu has no data "
			                    "or is larger than 4 GiB", i);
	oldest = sp->cfg.full_policy == SPOOL_FULL_DROP_OLDEST;
	pthread_mutex_lock(&sp->wlock);
	spool_space_recheck(sp);
	if (sp->constrained != SPACE_OK) {
		uint64_t need = pages_needed(sp, items, n), have = spool_free_bytes(sp);

		if (have < need && oldest && room_run(sp, need - have))
			have = spool_free_bytes(sp);
		if (have < need) {
			drop_all(sp, res, n, sp->constrained == SPACE_DISK ?
			         SPOOL_DROP_DISK_FULL : SPOOL_DROP_FULL);
			pthread_mutex_unlock(&sp->wlock);
			return 0;
		}
	}
	rc = spool_wtxn_run(sp, append_op, &a, &w, 0);
	if (rc == SPOOL_EFULL && oldest && room_run(sp, pages_needed(sp, items, n)))
		rc = spool_wtxn_run(sp, append_op, &a, &w, 0);
	if (rc == SPOOL_EFULL) {
		drop_all(sp, res, n, w.full_kind == 2 ? SPOOL_DROP_DISK_FULL : SPOOL_DROP_FULL);
		a.stored = 0;
		rc = 0;
	}
	pthread_mutex_unlock(&sp->wlock);
	if (rc)
		return rc;
	if (a.stored)
		spool_crash_point(CP_AFTER_COMMIT);
	return a.stored;
}

/* ------------------------------------------------------------ reading */

static int read_common(spool *sp, uint64_t after, size_t maxr, size_t maxb,
                       spool_record_fn *cb, void *user, int pending_only)
{
	uint64_t st[ST_MAX], start, bytes = 0;
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	size_t words;
	int rc, n = 0;

	if ((rc = spool_enter(sp)) != 0)
		return rc;
	if (!cb)
		return spool_seterr(SPOOL_EINVAL, "spool_read: no callback");
	if (maxr == 0 || maxr > INT_MAX)
		maxr = INT_MAX;
	if ((rc = spool_rtxn_begin(sp, &txn)) != 0)
		return rc;
	if (pending_only) {
		rc = spool_state_load(sp, txn, st, &words);
		if (rc)
			goto out;
		if (after < st[ST_CURSOR])
			after = st[ST_CURSOR];
	}
	if (after == UINT64_MAX)
		goto out;
	start = after + 1;
	if ((rc = mdb_cursor_open(txn, sp->q, &c)) != 0)
		goto out;
	k = spool_u64key(&start);
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && (size_t)n < maxr) {
		int stop;

		if (maxb && n > 0 && bytes + v.mv_size > maxb)
			break;
		n++;
		bytes += v.mv_size;
		spool_in_cb = 1;
		stop = cb(spool_keyu64(&k), v.mv_data, v.mv_size, user);
		spool_in_cb = 0;
		if (stop)
			break;
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		rc = 0;
out:
	spool_rtxn_end(sp, txn);
	if (rc)
		return spool_mdb_err(sp, rc, "spool_read");
	return n;
}

int spool_read(spool *sp, uint64_t after_seq, size_t max_records,
               size_t max_bytes, spool_record_fn *cb, void *user)
{
	return read_common(sp, after_seq, max_records, max_bytes, cb, user, 1);
}

int spool_scan(spool *sp, uint64_t after_seq, size_t max_records,
               size_t max_bytes, spool_record_fn *cb, void *user)
{
	return read_common(sp, after_seq, max_records, max_bytes, cb, user, 0);
}

int spool_get(spool *sp, uint64_t seq, spool_record_fn *cb, void *user)
{
	MDB_txn *txn;
	MDB_val k = spool_u64key(&seq), v;
	int rc;

	if ((rc = spool_enter(sp)) != 0)
		return rc;
	if (!cb)
		return spool_seterr(SPOOL_EINVAL, "spool_get: no callback");
	if ((rc = spool_rtxn_begin(sp, &txn)) != 0)
		return rc;
	rc = mdb_get(txn, sp->q, &k, &v);
	if (rc == 0) {
		spool_in_cb = 1;
		cb(seq, v.mv_data, v.mv_size, user);
		spool_in_cb = 0;
	}
	spool_rtxn_end(sp, txn);
	if (rc == MDB_NOTFOUND)
		return spool_seterr(SPOOL_ENOENT, "record %" PRIu64 " is not in the queue",
		                    seq);
	return rc ? spool_mdb_err(sp, rc, "spool_get") : 0;
}

int spool_cursor_get(spool *sp, uint64_t *cursor)
{
	uint64_t st[ST_MAX];
	MDB_txn *txn;
	size_t words;
	int rc;

	if ((rc = spool_enter(sp)) != 0)
		return rc;
	if ((rc = spool_rtxn_begin(sp, &txn)) != 0)
		return rc;
	rc = spool_state_load(sp, txn, st, &words);
	spool_rtxn_end(sp, txn);
	if (rc)
		return spool_mdb_err(sp, rc, "spool_cursor_get");
	if (cursor)
		*cursor = st[ST_CURSOR];
	return 0;
}

/* ------------------------------------------------------------ advance */

/* rtime: unix second -> highest seq delivered by then. Keys never go
 * back, even if the clock does. */
static int rtime_touch(wtxn *w, int64_t now_ns, uint64_t cursor)
{
	uint64_t sec = now_ns > 0 ? (uint64_t)now_ns / 1000000000u : 0, last;
	uint8_t b[8];
	MDB_val k, v = { 8, b };
	int rc;

	if ((rc = spool_last_key(w->txn, w->sp->rtime, &last)) != 0)
		return rc;
	if (sec < last)
		sec = last;
	k = spool_u64key(&sec);
	spool_put_le64(b, cursor);
	return mdb_put(w->txn, w->sp->rtime, &k, &v, 0);
}

/* Drops rtime entries that no longer cover any record in q. */
static int rtime_clean(wtxn *w, MDB_cursor *cq)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t first = UINT64_MAX;
	int rc;

	rc = mdb_cursor_get(cq, &k, &v, MDB_FIRST);
	if (rc == 0)
		first = spool_keyu64(&k);
	else if (rc != MDB_NOTFOUND)
		return rc;
	if ((rc = mdb_cursor_open(w->txn, w->sp->rtime, &c)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0 && v.mv_size == 8 &&
	       spool_get_le64(v.mv_data) < first)
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			break;
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

struct adv_ctx {
	uint64_t upto;
	int64_t  now_ns;
	int      done;
};

static int advance_op(wtxn *w, void *vctx)
{
	struct adv_ctx *a = vctx;
	spool *sp = w->sp;
	uint64_t *st = w->st, upto = a->upto, cur = st[ST_CURSOR], newcur, k, b;
	uint64_t count = 0;
	MDB_cursor *c;
	MDB_val key, val;
	int rc;

	a->done = 1;
	if (st[ST_NEXT_SEQ] && upto > st[ST_NEXT_SEQ] - 1)
		upto = st[ST_NEXT_SEQ] - 1;
	if (upto <= cur)
		return 0;
	newcur = upto;
	if ((rc = mdb_cursor_open(w->txn, sp->q, &c)) != 0)
		return rc;
	if (!spool_retention_on(sp)) {
		/* delivered records go now, and so do any retained ones in front */
		while ((rc = mdb_cursor_get(c, &key, &val, MDB_FIRST)) == 0) {
			k = spool_keyu64(&key);
			if (k > upto)
				break;
			if (count++ >= CHUNK_RECORDS) {
				newcur = k - 1;
				a->done = 0;
				break;
			}
			b = val.mv_size;
			if ((rc = mdb_cursor_del(c, 0)) != 0)
				goto out;
			if (k <= cur) {
				sub(&st[ST_R_RECORDS], 1);
				sub(&st[ST_R_BYTES], b);
				st[ST_PRUNED]++;
			} else {
				sub(&st[ST_Q_RECORDS], 1);
				sub(&st[ST_Q_BYTES], b);
				st[ST_DELIVERED]++;
			}
		}
	} else {
		/* delivered records stay behind the cursor as retained */
		uint64_t from = cur + 1;

		key = spool_u64key(&from);
		rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
		while (rc == 0) {
			k = spool_keyu64(&key);
			if (k > upto)
				break;
			if (count++ >= CHUNK_RECORDS) {
				newcur = k - 1;
				a->done = 0;
				break;
			}
			sub(&st[ST_Q_RECORDS], 1);
			sub(&st[ST_Q_BYTES], val.mv_size);
			st[ST_R_RECORDS]++;
			st[ST_R_BYTES] += val.mv_size;
			st[ST_DELIVERED]++;
			rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
		}
		if (rc && rc != MDB_NOTFOUND)
			goto out;
		st[ST_CURSOR] = newcur;
		if ((rc = rtime_touch(w, a->now_ns, newcur)) != 0)
			goto out;
		count = 0;
		while (sp->cfg.retain_bytes && st[ST_R_BYTES] > sp->cfg.retain_bytes &&
		       count++ < CHUNK_RECORDS)
			if ((rc = prune_one(w, c)) != 0)
				break;
		if (rc && rc != MDB_NOTFOUND)
			goto out;
		rc = rtime_clean(w, c);
		if (rc)
			goto out;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (rc)
		goto out;
	st[ST_CURSOR] = newcur;
	spool_crash_point(CP_INSIDE_ADVANCE);
out:
	mdb_cursor_close(c);
	return rc;
}

int spool_advance(spool *sp, uint64_t upto_seq)
{
	struct adv_ctx a = { upto_seq, 0, 0 };
	wtxn w;
	int rc;

	if ((rc = spool_enter_write(sp)) != 0)
		return rc;
	a.now_ns = spool_now_ns();
	do {
		pthread_mutex_lock(&sp->wlock);
		rc = spool_wtxn_run(sp, advance_op, &a, &w, WTXN_FREES);
		pthread_mutex_unlock(&sp->wlock);
	} while (rc == 0 && !a.done);
	return rc;
}

/* ------------------------------------------------------ prune / purge */

struct prune_ctx {
	int64_t  now_ns;
	uint64_t upto;            /* purge: highest seq to remove */
	int      include_pending; /* purge */
	int      purge;
	uint64_t removed;         /* this txn */
	int      done;
};

static int prune_op(wtxn *w, void *vctx)
{
	struct prune_ctx *p = vctx;
	spool *sp = w->sp;
	uint64_t *st = w->st, cur = st[ST_CURSOR], boundary = cur, k, b;
	MDB_cursor *c, *cr;
	MDB_val key, val;
	int rc;

	p->removed = 0;
	p->done = 1;
	if (spool_retention_on(sp)) {
		boundary = 0;
		if (sp->cfg.retain_ns && p->now_ns > sp->cfg.retain_ns) {
			uint64_t cutoff = (uint64_t)(p->now_ns - sp->cfg.retain_ns) / 1000000000u;

			if ((rc = mdb_cursor_open(w->txn, sp->rtime, &cr)) != 0)
				return rc;
			rc = mdb_cursor_get(cr, &key, &val, MDB_FIRST);
			while (rc == 0 && spool_keyu64(&key) <= cutoff) {
				if (val.mv_size == 8 && spool_get_le64(val.mv_data) > boundary)
					boundary = spool_get_le64(val.mv_data);
				rc = mdb_cursor_get(cr, &key, &val, MDB_NEXT);
			}
			mdb_cursor_close(cr);
			if (rc && rc != MDB_NOTFOUND)
				return rc;
		}
		if (boundary > cur)
			boundary = cur;
	}
	if ((rc = mdb_cursor_open(w->txn, sp->q, &c)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(c, &key, &val, MDB_FIRST)) == 0) {
		k = spool_keyu64(&key);
		if (p->purge) {
			if (k > p->upto || (k > cur && !p->include_pending))
				break;
		} else if (k > cur || (k > boundary && !(sp->cfg.retain_bytes &&
		                       st[ST_R_BYTES] > sp->cfg.retain_bytes))) {
			break;
		}
		if (p->removed >= CHUNK_RECORDS) {
			p->done = 0;
			break;
		}
		b = val.mv_size;
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			goto out;
		p->removed++;
		if (k <= cur) {
			sub(&st[ST_R_RECORDS], 1);
			sub(&st[ST_R_BYTES], b);
			st[ST_PRUNED]++;
		} else {
			sub(&st[ST_Q_RECORDS], 1);
			sub(&st[ST_Q_BYTES], b);
			st[ST_DROP0 + SPOOL_DROP_PURGED]++;
		}
	}
	if (rc && rc != MDB_NOTFOUND)
		goto out;
	rc = rtime_clean(w, c);
out:
	mdb_cursor_close(c);
	return rc;
}

static int prune_loop(spool *sp, struct prune_ctx *p)
{
	uint64_t total = 0;
	wtxn w;
	int rc;

	if ((rc = spool_enter_write(sp)) != 0)
		return rc;
	do {
		pthread_mutex_lock(&sp->wlock);
		rc = spool_wtxn_run(sp, prune_op, p, &w, WTXN_FREES);
		pthread_mutex_unlock(&sp->wlock);
		if (rc == 0)
			total += p->removed;
	} while (rc == 0 && !p->done);
	if (rc)
		return rc;
	return total > INT_MAX ? INT_MAX : (int)total;
}

int spool_prune(spool *sp, int64_t now_ns)
{
	struct prune_ctx p = { 0 };

	p.now_ns = now_ns ? now_ns : spool_now_ns();
	return prune_loop(sp, &p);
}

int spool_purge(spool *sp, uint64_t upto_seq, int include_pending)
{
	struct prune_ctx p = { 0 };

	p.purge = 1;
	p.upto = upto_seq;
	p.include_pending = include_pending;
	return prune_loop(sp, &p);
}
