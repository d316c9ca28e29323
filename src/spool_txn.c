/* spool_txn.c -- what every spool operation runs on: error messages,
 * little-endian and key helpers, the state vector, crash points, reused
 * read transactions, and the write-transaction runner with map growth,
 * full-disk classification and the constrained space states (disk
 * reserve, map clamp, emergency room for deletes). See spool_int.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "spool_int.h"

#define MIB               (1024ull * 1024)
#define EMERG_MAP         (16 * MIB)      /* map headroom for deletes at the limit */

_Thread_local int spool_in_cb;
atomic_int spool_crash_armed;
static atomic_long crash_countdown;
static _Thread_local char errbuf[512];

/* ------------------------------------------------------------ messages */

int spool_seterr(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return code;
}

const char *spool_errmsg(void)
{
	return errbuf[0] ? errbuf : "no error";
}

const char *spool_strerror(int err)
{
	switch (err) {
	case SPOOL_OK:        return "success";
	case SPOOL_EINVAL:    return "invalid argument";
	case SPOOL_ENOENT:    return "not found";
	case SPOOL_EEXIST:    return "already exists with different contents";
	case SPOOL_ELOCKED:   return "spool in use by another agent";
	case SPOOL_ENOTSPOOL: return "not a spool";
	case SPOOL_EVERSION:  return "spool written by a newer spoolcap";
	case SPOOL_EFULL:     return "spool or filesystem full";
	case SPOOL_EIO:       return "fatal I/O error";
	case SPOOL_ENOMEM:    return "out of memory";
	case SPOOL_ERDONLY:   return "spool opened read-only";
	case SPOOL_ECORRUPT:  return "spool database damaged";
	}
	return "unknown error";
}

static const char *const sync_names[] = { "process", "relaxed", "durable" };
static const char *const policy_names[] = { "drop-newest", "drop-oldest" };
static const char *const drop_names[SPOOL_DROP_NREASONS] = {
	"full", "evicted", "disk_full", "dlq_evicted", "purged"
};
static const char *const dlq_names[SPOOL_DLQ_NREASONS] = {
	"other", "corrupt", "rejected", "too_large", "persistent_5xx", "manual",
	"reason6", "reason7"
};

static const char *name_of(const char *const *names, int n, int i)
{
	return i >= 0 && i < n ? names[i] : "unknown";
}

static int parse_name(const char *const *names, int n, const char *s)
{
	for (int i = 0; s && i < n; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

const char *spool_sync_mode_name(int m) { return name_of(sync_names, 3, m); }
int spool_sync_mode_parse(const char *s) { return parse_name(sync_names, 3, s); }
const char *spool_full_policy_name(int p) { return name_of(policy_names, 2, p); }
int spool_full_policy_parse(const char *s) { return parse_name(policy_names, 2, s); }
const char *spool_drop_reason_name(int r)
{
	return name_of(drop_names, SPOOL_DROP_NREASONS, r);
}
const char *spool_dlq_reason_name(int r)
{
	return name_of(dlq_names, SPOOL_DLQ_NREASONS, r);
}
int spool_dlq_reason_parse(const char *s)
{
	return parse_name(dlq_names, SPOOL_DLQ_NREASONS, s);
}

/* ------------------------------------------------------------- helpers */

void spool_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t spool_get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void spool_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t spool_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

int64_t spool_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int spool_retention_on(const spool *sp)
{
	return sp->cfg.retain_ns > 0 || sp->cfg.retain_bytes > 0;
}

static MDB_val strval(const char *s)
{
	MDB_val v = { strlen(s), (void *)s };
	return v;
}

int spool_state_load(spool *sp, MDB_txn *txn, uint64_t *st, size_t *words)
{
	MDB_val k = strval("state"), v;
	size_t n;
	int rc;

	memset(st, 0, ST_MAX * sizeof(*st));
	*words = 0;
	rc = mdb_get(txn, sp->meta, &k, &v);
	if (rc)
		return rc;
	n = v.mv_size / 8;
	if (n > ST_MAX)
		n = ST_MAX;
	for (size_t i = 0; i < n; i++)
		st[i] = spool_get_le64((const uint8_t *)v.mv_data + 8 * i);
	*words = n;
	return 0;
}

int spool_state_store(spool *sp, MDB_txn *txn, const uint64_t *st, size_t words)
{
	MDB_val k = strval("state"), v;
	int rc;

	if (words < ST_N)
		words = ST_N;
	v.mv_size = words * 8;
	v.mv_data = NULL;
	rc = mdb_put(txn, sp->meta, &k, &v, MDB_RESERVE);
	if (rc)
		return rc;
	for (size_t i = 0; i < words; i++)
		spool_put_le64((uint8_t *)v.mv_data + 8 * i, st[i]);
	return 0;
}

/* The first or last key of a table (0 when it is empty). */
static int edge_key(MDB_txn *txn, MDB_dbi dbi, MDB_cursor_op op, uint64_t *k)
{
	MDB_cursor *c;
	MDB_val key, val;
	int rc;

	*k = 0;
	rc = mdb_cursor_open(txn, dbi, &c);
	if (rc)
		return rc;
	rc = mdb_cursor_get(c, &key, &val, op);
	if (rc == 0)
		*k = spool_keyu64(&key);
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int spool_first_key(MDB_txn *txn, MDB_dbi dbi, uint64_t *k)
{
	return edge_key(txn, dbi, MDB_FIRST, k);
}

int spool_last_key(MDB_txn *txn, MDB_dbi dbi, uint64_t *k)
{
	return edge_key(txn, dbi, MDB_LAST, k);
}

int spool_q_del_first(MDB_cursor *c, uint64_t *key, uint64_t *bytes)
{
	MDB_val k, v;
	int rc;

	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	if (rc)
		return rc;
	*key = spool_keyu64(&k);
	*bytes = v.mv_size;
	return mdb_cursor_del(c, 0);
}

/* ------------------------------------------------------- crash points */

static const char *const cp_names[] = {
	"", "after_put_before_commit", "after_commit", "inside_advance",
	"during_dlq_move", "during_dict_store"
};

void spool_crash_hit(void)
{
	if (atomic_fetch_sub(&crash_countdown, 1) <= 1)
		raise(SIGKILL);
}

int spool_crash_setup(void)
{
	const char *s = getenv("SPOOLCAP_CRASH_POINT"), *n;
	long after = 1;
	int cp = CP_NONE;

	if (s && *s) {
		cp = parse_name(cp_names, (int)(sizeof(cp_names) / sizeof(*cp_names)), s);
		if (cp <= 0)
			return spool_seterr(SPOOL_EINVAL, "SPOOLCAP_CRASH_POINT=%s is not a "
			                    "crash point (after_put_before_commit, after_commit, "
			                    "inside_advance, during_dlq_move, during_dict_store)", s);
		n = getenv("SPOOLCAP_CRASH_AFTER");
		if (n && *n)
			after = strtol(n, NULL, 10);
		if (after < 1)
			after = 1;
	}
	atomic_store(&crash_countdown, after);
	atomic_store(&spool_crash_armed, cp);
	return 0;
}

/* ---------------------------------------------------- error mapping */

/* EIO from a commit is LMDB 0.9.24's "short write, filesystem full?": it
 * is a full disk when statvfs says there is (almost) no room left for
 * what the transaction wrote. */
static int disk_nearly_full(spool *sp, uint64_t txn_bytes)
{
	struct statvfs vfs;
	uint64_t avail, need = 2 * txn_bytes + MIB;

	if (statvfs(sp->dir, &vfs) < 0)
		return 0;
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	return avail < need;
}

int spool_mdb_err(spool *sp, int rc, const char *what)
{
	const char *dir = sp ? sp->dir : "?";

	switch (rc) {
	case 0:
		return 0;
	case ENOMEM:
		return spool_seterr(SPOOL_ENOMEM, "%s: out of memory", what);
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
		if (sp)
			atomic_store(&sp->broken, 1);
		return spool_seterr(SPOOL_ECORRUPT, "spool %s is damaged (%s: %s); stop "
		                    "spoolcapd, move the directory aside and salvage it with "
		                    "`spoolcap compact`", dir, what, mdb_strerror(rc));
	case MDB_KEYEXIST:
		return spool_seterr(SPOOL_ECORRUPT, "spool %s: %s: a sequence number is "
		                    "already in use (inconsistent state)", dir, what);
	case MDB_PANIC:
	case EIO:
		if (sp)
			atomic_store(&sp->broken, 1);
		return spool_seterr(SPOOL_EIO, "spool %s: %s: %s; the spool can no longer "
		                    "tell what reached the disk: restart the process (check "
		                    "the disk and kernel log)", dir, what, mdb_strerror(rc));
	case MDB_TXN_FULL:
	case MDB_BAD_VALSIZE:
	case MDB_BAD_TXN:
	case MDB_BAD_DBI:
	case EINVAL:
		return spool_seterr(SPOOL_EINVAL, "spool %s: %s: %s", dir, what,
		                    mdb_strerror(rc));
	}
	if (rc > 0) {
		if (sp)
			atomic_store(&sp->broken, 1);
		return spool_seterr(SPOOL_EIO, "spool %s: %s: %s; restart the process "
		                    "(check the disk and kernel log)", dir, what, strerror(rc));
	}
	return spool_seterr(SPOOL_EIO, "spool %s: %s: %s", dir, what, mdb_strerror(rc));
}

/* -------------------------------------------------- read transactions */

int spool_enter(spool *sp)
{
	if (!sp)
		return spool_seterr(SPOOL_EINVAL, "spool handle is NULL");
	if (spool_in_cb)
		return spool_seterr(SPOOL_EINVAL, "a spool function was called from inside "
		                    "a spool callback (callbacks run inside a transaction)");
	return 0;
}

int spool_enter_write(spool *sp)
{
	int rc = spool_enter(sp);

	if (rc)
		return rc;
	if (sp->mode == SPOOL_MODE_READONLY)
		return spool_seterr(SPOOL_ERDONLY, "spool %s is open read-only", sp->dir);
	if (atomic_load(&sp->broken))
		return spool_seterr(SPOOL_EIO, "spool %s had a fatal I/O error earlier; "
		                    "restart the process", sp->dir);
	return 0;
}

static int set_mapsize(spool *sp, uint64_t size);

int spool_rtxn_begin(spool *sp, MDB_txn **txn)
{
	MDB_txn *t = NULL;
	int rc;

	for (;;) {
		pthread_rwlock_rdlock(&sp->maplock);
		pthread_mutex_lock(&sp->rpool_lock);
		if (sp->nrpool > 0)
			t = sp->rpool[--sp->nrpool];
		pthread_mutex_unlock(&sp->rpool_lock);
		if (t) {
			rc = mdb_txn_renew(t);
			if (rc) {
				mdb_txn_abort(t);
				t = NULL;
			}
		} else {
			rc = mdb_txn_begin(sp->env, NULL, MDB_RDONLY, &t);
		}
		if (rc == 0) {
			*txn = t;
			return 0;
		}
		t = NULL;
		pthread_rwlock_unlock(&sp->maplock);
		if (rc != MDB_MAP_RESIZED)
			return spool_mdb_err(sp, rc, "mdb_txn_begin (read)");
		/* another process grew the map beyond ours: adopt its size (no
		 * transaction of ours may be active, hence the exclusive lock) */
		rc = set_mapsize(sp, 0);
		if (rc)
			return spool_mdb_err(sp, rc, "mdb_env_set_mapsize");
	}
}

void spool_rtxn_end(spool *sp, MDB_txn *txn)
{
	mdb_txn_reset(txn);
	pthread_mutex_lock(&sp->rpool_lock);
	if (sp->nrpool < RPOOL_MAX) {
		sp->rpool[sp->nrpool++] = txn;
		txn = NULL;
	}
	pthread_mutex_unlock(&sp->rpool_lock);
	if (txn)
		mdb_txn_abort(txn);
	pthread_rwlock_unlock(&sp->maplock);
}

/* ------------------------------------------------- write transactions */

static int set_mapsize(spool *sp, uint64_t size)
{
	int rc;

	pthread_rwlock_wrlock(&sp->maplock);
	rc = mdb_env_set_mapsize(sp->env, size);
	pthread_rwlock_unlock(&sp->maplock);
	return rc;
}

static uint64_t map_size(spool *sp)
{
	MDB_envinfo ei;

	mdb_env_info(sp->env, &ei);
	return ei.me_mapsize;
}

/* Bytes up to the last page in use (the file never needs to be larger). */
static uint64_t used_size(spool *sp)
{
	MDB_envinfo ei;

	mdb_env_info(sp->env, &ei);
	return (uint64_t)(ei.me_last_pgno + 1) * sp->psize;
}

/* Grows the map toward map_limit. Returns 1 if grown, 0 if at the limit,
 * or a negative SPOOL_E*. Caller holds wlock and no transaction. */
static int map_grow(spool *sp, uint64_t need)
{
	uint64_t cur, want;
	int rc = 0, grown = 0;

	pthread_rwlock_wrlock(&sp->maplock);
	cur = map_size(sp);
	if (cur < sp->cfg.map_limit) {
		want = cur * 2;
		if (want < cur + need + MIB)
			want = cur + need + MIB;
		want = (want + MIB - 1) / MIB * MIB;
		if (want > sp->cfg.map_limit)
			want = sp->cfg.map_limit;
		rc = mdb_env_set_mapsize(sp->env, want);
		grown = rc == 0;
	}
	pthread_rwlock_unlock(&sp->maplock);
	if (rc)
		return spool_mdb_err(sp, rc, "mdb_env_set_mapsize");
	return grown;
}

static uint64_t reserve_size(const spool *sp)
{
	return sp->cfg.disk_reserve == UINT64_MAX ? 0 : sp->cfg.disk_reserve;
}

static void reserve_path(const spool *sp, char *path, size_t len)
{
	snprintf(path, len, "%s/disk.reserve", sp->dir);
}

static uint64_t fs_avail(const spool *sp)
{
	struct statvfs vfs;

	if (statvfs(sp->dir, &vfs) < 0)
		return UINT64_MAX;
	return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

/* Allocates DIR/disk.reserve (AGENT) when the filesystem has room for
 * twice its size. Returns 1 if held. */
int spool_reserve_create(spool *sp)
{
	char path[PATH_MAX];
	struct stat st;
	uint64_t size = reserve_size(sp);
	int fd;

	if (sp->have_reserve || sp->mode != SPOOL_MODE_AGENT || !size)
		return sp->have_reserve;
	reserve_path(sp, path, sizeof(path));
	if (stat(path, &st) == 0 && (uint64_t)st.st_blocks * 512 >= size) {
		sp->have_reserve = 1;   /* left by the previous run, still allocated */
		return 1;
	}
	if (fs_avail(sp) < 2 * size + MIB)
		return 0;
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return 0;
	if (posix_fallocate(fd, 0, (off_t)size) != 0) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	sp->have_reserve = 1;
	return 1;
}

/* The filesystem is full: give the reserve back to it for deletes, and
 * clamp the map so appends cannot grow the file. */
static void enter_disk_full(spool *sp)
{
	char path[PATH_MAX];

	if (sp->constrained == SPACE_DISK)
		return;
	sp->constrained = SPACE_DISK;
	if (sp->have_reserve) {
		reserve_path(sp, path, sizeof(path));
		unlink(path);
		sp->have_reserve = 0;
	}
	set_mapsize(sp, used_size(sp));        /* LMDB keeps it >= what is used */
}

void spool_space_recheck(spool *sp)
{
	uint64_t size = reserve_size(sp);

	if (sp->constrained != SPACE_DISK)
		return;
	if (size ? !spool_reserve_create(sp) : fs_avail(sp) < 8 * MIB)
		return;
	sp->constrained = SPACE_OK;     /* the map grows on demand again */
}

/* An op that frees space needs a few fresh pages to do it: let it grow
 * the map beyond the limit (address space) or into the released reserve. */
static int map_emergency(spool *sp)
{
	uint64_t extra = sp->constrained == SPACE_DISK ? reserve_size(sp) : EMERG_MAP;
	int rc;

	if (extra < MIB)
		extra = MIB;
	rc = set_mapsize(sp, map_size(sp) + extra);
	return rc ? spool_mdb_err(sp, rc, "mdb_env_set_mapsize") : 0;
}

static void map_settle(spool *sp)
{
	set_mapsize(sp, sp->constrained == SPACE_DISK ? used_size(sp) : sp->cfg.map_limit);
}

int spool_is_code(int rc)
{
	return rc < 0 && rc >= SPOOL_ECORRUPT;
}

static int run_once(spool *sp, wtxn_fn *fn, void *ctx, wtxn *w, int nostate)
{
	uint64_t st0[ST_MAX];
	int rc;

	rc = mdb_txn_begin(sp->env, NULL, 0, &w->txn);
	if (rc) {
		w->txn = NULL;
		return rc;
	}
	if (!nostate) {
		rc = spool_state_load(sp, w->txn, w->st, &w->st_words);
		if (rc == MDB_NOTFOUND)
			rc = spool_seterr(SPOOL_ECORRUPT, "spool %s has no state record in "
			                  "its meta table", sp->dir);
		memcpy(st0, w->st, sizeof(st0));
	}
	if (!rc)
		rc = fn(w, ctx);
	if (!rc && !nostate) {
		for (int i = 0; i < SPOOL_DROP_NREASONS; i++)
			w->st[ST_DROP0 + i] += sp->pend_drops[i];
		if (w->force_store || memcmp(st0, w->st, sizeof(st0)) != 0)
			rc = spool_state_store(sp, w->txn, w->st, w->st_words);
	}
	if (rc) {
		mdb_txn_abort(w->txn);
		w->txn = NULL;
		return rc;
	}
	rc = mdb_txn_commit(w->txn);
	w->txn = NULL;
	return rc;
}

static int full_error(spool *sp, wtxn *w, int rc)
{
	if (sp->constrained == SPACE_DISK) {
		w->full_kind = 2;
		return spool_seterr(SPOOL_EFULL, "spool %s: the filesystem is full%s%s; "
		                    "free some space: the spool recovers by itself",
		                    sp->dir, rc ? ": " : "", rc ? strerror(rc) : "");
	}
	w->full_kind = 1;
	return spool_seterr(SPOOL_EFULL, "spool %s: the LMDB map reached its limit "
	                    "(%" PRIu64 " bytes); deliver or purge records, or raise "
	                    "max-size", sp->dir, sp->cfg.map_limit);
}

static int bump_op(wtxn *w, void *ctx)
{
	(void)ctx;
	w->force_store = 1;
	return 0;
}

int spool_wtxn_run(spool *sp, wtxn_fn *fn, void *ctx, wtxn *w, int flags)
{
	int nostate = flags & WTXN_NOSTATE, emergency = 0, disk_retry = 0, rc, g;

	for (;;) {
		memset(w, 0, sizeof(*w));
		w->sp = sp;
		pthread_rwlock_rdlock(&sp->maplock);
		rc = run_once(sp, fn, ctx, w, nostate);
		pthread_rwlock_unlock(&sp->maplock);
		if (rc == 0) {
			if (!nostate)
				memset(sp->pend_drops, 0, sizeof(sp->pend_drops));
			break;
		}
		if (spool_is_code(rc))
			break;
		if (rc == MDB_MAP_RESIZED) {
			if ((rc = set_mapsize(sp, 0)) != 0) {
				rc = spool_mdb_err(sp, rc, "mdb_env_set_mapsize");
				break;
			}
			continue;
		}
		if (rc == MDB_MAP_FULL) {
			if (sp->constrained == SPACE_OK) {
				g = map_grow(sp, w->txn_bytes);
				if (g > 0)
					continue;
				if (g < 0) {
					rc = g;
					break;
				}
				sp->constrained = SPACE_MAP;
			}
			if ((flags & WTXN_FREES) && !emergency) {
				emergency = 1;
				if ((rc = map_emergency(sp)) != 0)
					break;
				continue;
			}
			rc = full_error(sp, w, 0);
			break;
		}
		if (rc == ENOSPC || rc == EDQUOT ||
		    (rc == EIO && disk_nearly_full(sp, w->txn_bytes))) {
			int e = rc;

			enter_disk_full(sp);
			if ((flags & WTXN_FREES) && !disk_retry) {
				disk_retry = 1;
				continue;
			}
			rc = full_error(sp, w, e);
			break;
		}
		rc = spool_mdb_err(sp, rc, "write transaction");
		break;
	}
	if (emergency)
		map_settle(sp);
	/* LMDB reuses pages freed by transaction T only from T+2 on: when the
	 * file cannot grow, commit one more small transaction so the next
	 * append can use what this one freed. */
	if (rc == 0 && (flags & WTXN_FREES) && !(flags & WTXN_BUMP) &&
	    sp->constrained != SPACE_OK) {
		wtxn wb;
		spool_wtxn_run(sp, bump_op, NULL, &wb, WTXN_FREES | WTXN_BUMP);
	}
	return rc;
}

uint64_t spool_free_bytes(spool *sp)
{
	MDB_txn *txn;
	uint64_t n;

	if (spool_rtxn_begin(sp, &txn) != 0)
		return 0;
	n = spool_free_pages(txn);
	spool_rtxn_end(sp, txn);
	return n * sp->psize;
}

