/* spool_stat.c -- spool_stat: counts, sizes, cursor, drops, dead letters,
 * dictionaries and LMDB figures, at a cost that does not depend on the
 * number of records (the state vector, first/last keys, entry counts, the
 * free list and the reader table). */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "spool_int.h"


struct reader_count {
	uint32_t used;
};

static int count_reader(const char *msg, void *ctx)
{
	struct reader_count *rc = ctx;
	unsigned pid;

	/* one line per slot in use after a header line: "pid thread txnid" */
	if (sscanf(msg, " %u", &pid) == 1)
		rc->used++;
	return 0;
}

static int64_t record_time(spool *sp, MDB_txn *txn, uint64_t seq)
{
	MDB_val k = spool_u64key(&seq), v;
	int64_t t;

	if (!seq || !sp->cfg.hooks.time_ns || mdb_get(txn, sp->q, &k, &v) != 0)
		return -1;
	spool_in_cb = 1;
	t = sp->cfg.hooks.time_ns(v.mv_data, v.mv_size, sp->cfg.hooks.user);
	spool_in_cb = 0;
	return t;
}

uint64_t spool_free_pages(MDB_txn *txn)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t n = 0;
	size_t cnt;

	/* dbi 0 is LMDB's free list: each value is an ID list whose first word
	 * is its length. Bounded by the number of txns that freed pages. */
	if (mdb_cursor_open(txn, 0, &c) != 0)
		return 0;
	while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0)
		if (v.mv_size >= sizeof(size_t)) {
			memcpy(&cnt, v.mv_data, sizeof(cnt));
			n += cnt;
		}
	mdb_cursor_close(c);
	return n;
}

int spool_stat(spool *sp, spool_stats *s)
{
	uint64_t st[ST_MAX], k;
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val key, val;
	MDB_envinfo ei;
	MDB_stat ms;
	struct stat fst;
	struct reader_count rcount = { 0 };
	char path[PATH_MAX];
	size_t words;
	int rc;

	if ((rc = spool_enter(sp)) != 0)
		return rc;
	if (!s)
		return spool_seterr(SPOOL_EINVAL, "spool_stat: NULL stats");
	memset(s, 0, sizeof(*s));
	if ((rc = spool_rtxn_begin(sp, &txn)) != 0)
		return rc;
	rc = spool_state_load(sp, txn, st, &words);
	if (rc)
		goto out;
	s->next_seq = st[ST_NEXT_SEQ];
	s->cursor = st[ST_CURSOR];
	s->records = st[ST_Q_RECORDS];
	s->bytes = st[ST_Q_BYTES];
	s->retained_records = st[ST_R_RECORDS];
	s->retained_bytes = st[ST_R_BYTES];
	s->dlq_records = st[ST_D_RECORDS];
	s->dlq_bytes = st[ST_D_BYTES];
	s->accepted = st[ST_ACCEPTED];
	s->delivered = st[ST_DELIVERED];
	s->pruned = st[ST_PRUNED];
	s->dead_lettered = st[ST_DLQ_IN];
	s->requeued = st[ST_REQUEUED];
	for (int i = 0; i < SPOOL_DROP_NREASONS; i++)
		s->dropped[i] = st[ST_DROP0 + i];
	for (int i = 0; i < SPOOL_DLQ_NREASONS; i++)
		s->dlq_by_reason[i] = st[ST_DLQR0 + i];
	if ((rc = spool_first_key(txn, sp->q, &s->first_seq)) != 0 ||
	    (rc = spool_last_key(txn, sp->q, &s->last_seq)) != 0)
		goto out;
	if ((rc = mdb_cursor_open(txn, sp->q, &c)) != 0)
		goto out;
	k = s->cursor + 1;
	key = spool_u64key(&k);
	if (mdb_cursor_get(c, &key, &val, MDB_SET_RANGE) == 0)
		s->first_pending_seq = spool_keyu64(&key);
	mdb_cursor_close(c);
	s->first_pending_time_ns = record_time(sp, txn, s->first_pending_seq);
	s->last_time_ns = record_time(sp, txn, s->last_seq);
	if ((rc = mdb_stat(txn, sp->dict, &ms)) != 0)
		goto out;
	s->dicts = ms.ms_entries;
	s->free_pages = spool_free_pages(txn);
	s->max_size = sp->cfg.max_size;
	s->dlq_max_bytes = sp->cfg.dlq_max_bytes;
	s->full_policy = sp->cfg.full_policy;
	s->sync_mode = sp->cfg.sync_mode;
	if (sp->mode != SPOOL_MODE_AGENT) {
		/* Another process's view: the limits the agent last started with. */
		key.mv_data = (void *)"agentcfg";
		key.mv_size = 8;
		if (mdb_get(txn, sp->meta, &key, &val) == 0 && val.mv_size == 32) {
			const uint8_t *b = val.mv_data;

			s->max_size = spool_get_le64(b);
			s->dlq_max_bytes = spool_get_le64(b + 8);
			s->full_policy = (int)spool_get_le64(b + 16);
			s->sync_mode = (int)spool_get_le64(b + 24);
		}
	}
out:
	spool_rtxn_end(sp, txn);
	if (rc)
		return spool_is_code(rc) ? rc : spool_mdb_err(sp, rc, "spool_stat");
	/* drops whose own transaction failed, not yet persisted (see spool.h) */
	if (sp->mode != SPOOL_MODE_READONLY) {
		pthread_mutex_lock(&sp->wlock);
		for (int i = 0; i < SPOOL_DROP_NREASONS; i++)
			s->dropped[i] += sp->pend_drops[i];
		s->space_state = sp->constrained;
		s->reserve_held = sp->have_reserve;
		pthread_mutex_unlock(&sp->wlock);
	}
	snprintf(s->uuid, sizeof(s->uuid), "%s", sp->uuid);
	s->format_version = sp->format_version;
	s->created_ns = sp->created_ns;
	s->map_limit = sp->cfg.map_limit;
	mdb_env_info(sp->env, &ei);
	s->map_size = ei.me_mapsize;
	s->used_bytes = (uint64_t)(ei.me_last_pgno + 1) * sp->psize;
	s->page_size = sp->psize;
	s->readers_max = ei.me_maxreaders;
	mdb_reader_list(sp->env, count_reader, &rcount);
	s->readers_used = rcount.used;
	snprintf(path, sizeof(path), "%s/data.mdb", sp->dir);
	if (stat(path, &fst) == 0)
		s->file_bytes = (uint64_t)fst.st_size;
	return 0;
}

