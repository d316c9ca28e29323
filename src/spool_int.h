/* spool_int.h -- what the spool_*.c files share: the handle, the persisted
 * state vector, transaction helpers and crash points. Not installed. */
#ifndef SPOOLCAP_SPOOL_INT_H
#define SPOOLCAP_SPOOL_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/types.h>

#include "spoolcap/spool.h"

/* meta "state": an array of little-endian u64 words, read and rewritten by
 * every write transaction. Older (shorter) arrays read as zero-extended;
 * words beyond ST_N written by a newer minor version are carried through. */
enum spool_state_word {
	ST_NEXT_SEQ = 0,
	ST_CURSOR,
	ST_Q_RECORDS, ST_Q_BYTES,         /* pending: seq > cursor */
	ST_R_RECORDS, ST_R_BYTES,         /* retained: in q, seq <= cursor */
	ST_D_RECORDS, ST_D_BYTES,         /* dead letters (record bytes only) */
	ST_ACCEPTED, ST_DELIVERED, ST_PRUNED, ST_DLQ_IN, ST_REQUEUED,
	ST_DROP0,                         /* + enum spool_drop_reason */
	ST_DLQR0 = ST_DROP0 + SPOOL_DROP_NREASONS,  /* + enum spool_dlq_reason */
	ST_N = ST_DLQR0 + SPOOL_DLQ_NREASONS
};
#define ST_MAX 64                     /* words we carry through */

enum spool_crash_point {
	CP_NONE = 0,
	CP_AFTER_PUT_BEFORE_COMMIT,
	CP_AFTER_COMMIT,
	CP_INSIDE_ADVANCE,
	CP_DURING_DLQ_MOVE,
	CP_DURING_DICT_STORE
};

#define RPOOL_MAX 4                   /* reset read txns kept for reuse */

struct spool {
	MDB_env *env;
	MDB_dbi  q, meta, dict, dictuse, dlq, rtime;
	enum spool_mode mode;
	spool_config cfg;                 /* with defaults applied */
	char    *dir;
	char     uuid[SPOOL_UUID_STR_LEN];
	uint32_t format_version;
	int64_t  created_ns;
	uint32_t psize;
	int      lockfd;                  /* DIR/agent.lock (AGENT), else -1 */
	dev_t    dev;
	ino_t    ino;
	pthread_mutex_t  wlock;           /* one write txn of ours at a time */
	pthread_rwlock_t maplock;         /* every txn shared; remap exclusive */
	pthread_mutex_t  rpool_lock;
	MDB_txn *rpool[RPOOL_MAX];
	int      nrpool;
	uint64_t pend_drops[SPOOL_DROP_NREASONS];  /* under wlock, see spool.h */
	int      constrained;             /* SPACE_*, under wlock */
	int      have_reserve;            /* DIR/disk.reserve is allocated */
	atomic_int broken;                /* a fatal I/O error happened */
	struct spool *reg_next;           /* process registry of open dirs */
	pid_t    reg_pid;
};

/* Space states (spool_stats.space_state). In MAP and DISK the file cannot
 * grow: appends must fit in LMDB's free pages (with headroom left for the
 * deletes that free more), and operations that free space may grow the
 * map a little beyond the limit (MAP) or into the released disk reserve
 * (DISK) so that delivery can always commit. */
enum { SPACE_OK = 0, SPACE_MAP = 1, SPACE_DISK = 2 };

/* spool_wtxn_run flags */
#define WTXN_FREES    1               /* the op frees space (deletes) */
#define WTXN_NOSTATE  2               /* no state vector (spool creation) */
#define WTXN_BUMP     4               /* internal: the commit after a FREES op */

/* A write transaction in progress: the op edits st[]. */
typedef struct wtxn {
	spool   *sp;
	MDB_txn *txn;
	uint64_t st[ST_MAX];
	size_t   st_words;                /* length to write back */
	uint64_t txn_bytes;               /* rough bytes written (disk-full test) */
	int      full_kind;               /* set on SPOOL_EFULL: 1 map, 2 disk */
	int      force_store;             /* write the state even if unchanged */
} wtxn;

/* Returns 0, an LMDB/errno code, or a negative SPOOL_E* (already reported
 * with spool_seterr) to abort. Must be repeatable: it may run again after
 * the map grew. */
typedef int wtxn_fn(wtxn *w, void *ctx);

/* Runs fn in a write txn and commits (caller holds sp->wlock). MAP_FULL
 * grows the map and retries. Returns 0 or a SPOOL_E* code (EFULL with
 * w->full_kind set when the cap, map or disk is full). */
int  spool_wtxn_run(spool *sp, wtxn_fn *fn, void *ctx, wtxn *w, int flags);
/* In SPACE_DISK: leaves it when the filesystem has room again (re-creating
 * the reserve). Caller holds wlock. */
void spool_space_recheck(spool *sp);
/* Bytes in LMDB's free list (pages freed by earlier transactions). */
uint64_t spool_free_bytes(spool *sp);
/* Pages in LMDB's free list as seen by txn. */
uint64_t spool_free_pages(MDB_txn *txn);
/* Allocates DIR/disk.reserve when there is room; returns 1 if held. */
int  spool_reserve_create(spool *sp);
/* Reads SPOOLCAP_CRASH_POINT / SPOOLCAP_CRASH_AFTER (at open). */
int  spool_crash_setup(void);
/* Is rc one of ours (SPOOL_E*) rather than an LMDB/errno code? */
int  spool_is_code(int rc);

/* Entry checks for write operations (RDONLY, broken, callback reentry)
 * and the read-txn helpers. */
int  spool_enter_write(spool *sp);
int  spool_enter(spool *sp);
int  spool_rtxn_begin(spool *sp, MDB_txn **txn);
void spool_rtxn_end(spool *sp, MDB_txn *txn);

/* Sets the calling thread's message; returns code. */
int  spool_seterr(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Maps an LMDB/errno code from operation `what` to a SPOOL_E* code. */
int  spool_mdb_err(spool *sp, int rc, const char *what);

/* Callback reentry guard (see spool.h). */
extern _Thread_local int spool_in_cb;

/* Crash points: one relaxed load and a compare when disarmed. */
extern atomic_int spool_crash_armed;
void spool_crash_hit(void);
static inline void spool_crash_point(int cp)
{
	if (__builtin_expect(atomic_load_explicit(&spool_crash_armed,
	                                          memory_order_relaxed) == cp, 0))
		spool_crash_hit();
}

/* Little helpers. */
static inline MDB_val spool_u64key(const uint64_t *k)
{
	MDB_val v = { sizeof(*k), (void *)k };
	return v;
}
static inline uint64_t spool_keyu64(const MDB_val *v)
{
	uint64_t k;
	memcpy(&k, v->mv_data, sizeof(k));
	return k;
}
void     spool_put_le64(uint8_t *p, uint64_t v);
uint64_t spool_get_le64(const uint8_t *p);
void     spool_put_le32(uint8_t *p, uint32_t v);
uint32_t spool_get_le32(const uint8_t *p);
int64_t  spool_now_ns(void);
int      spool_retention_on(const spool *sp);
/* Reads the "state" words of meta into st (zero-extended); *words gets
 * the stored length. Returns 0 or an LMDB code. */
int      spool_state_load(spool *sp, MDB_txn *txn, uint64_t *st, size_t *words);
int      spool_state_store(spool *sp, MDB_txn *txn, const uint64_t *st, size_t words);
/* First/last key of a DB (0 when empty). */
int      spool_first_key(MDB_txn *txn, MDB_dbi dbi, uint64_t *k);
int      spool_last_key(MDB_txn *txn, MDB_dbi dbi, uint64_t *k);
/* Deletes the first record of q, adding its value size to *bytes; *key
 * gets its seq. MDB_NOTFOUND when q is empty. */
int      spool_q_del_first(MDB_cursor *c, uint64_t *key, uint64_t *bytes);
/* Records that stored items referenced dictionaries (hooks.dict_id). */
int      spool_dictuse_touch(wtxn *w, uint32_t id, uint64_t seq);

/* Writes meta "agentcfg" (spool.c); spool_stat reads it. */
int spool_agentcfg_store(spool *sp, MDB_txn *txn);

#endif
