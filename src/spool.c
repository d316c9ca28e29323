/* spool.c -- the spool's environment: open/create/close, the agent lock,
 * transaction helpers (read-txn reuse, write txn with map growth and
 * disk-full classification), statistics, sync, reader check, crash points.
 * Queue operations live in spool_queue.c, dead letters in spool_dlq.c,
 * dictionaries in spool_dict.c. Design notes: include/spoolcap/spool.h. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "spool_int.h"

#define MIB               (1024ull * 1024)
#define DEF_MAX_SIZE      (1024 * MIB)
#define DEF_INITIAL_MAP   (64 * MIB)
#define DEF_GC_GRACE_NS   (3600ll * 1000000000ll)
#define DEF_DISK_RESERVE  (16 * MIB)
#define EMERG_MAP         (16 * MIB)      /* map headroom for deletes at the limit */
#define SPOOL_MAGIC       "spoolcap-spool"

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
		if (strcmp(s, names[i]) == 0)
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

static int state_store(spool *sp, MDB_txn *txn, const uint64_t *st, size_t words)
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

int spool_first_key(MDB_txn *txn, MDB_dbi dbi, uint64_t *k)
{
	MDB_cursor *c;
	MDB_val key, val;
	int rc;

	*k = 0;
	rc = mdb_cursor_open(txn, dbi, &c);
	if (rc)
		return rc;
	rc = mdb_cursor_get(c, &key, &val, MDB_FIRST);
	if (rc == 0)
		*k = spool_keyu64(&key);
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int spool_last_key(MDB_txn *txn, MDB_dbi dbi, uint64_t *k)
{
	MDB_cursor *c;
	MDB_val key, val;
	int rc;

	*k = 0;
	rc = mdb_cursor_open(txn, dbi, &c);
	if (rc)
		return rc;
	rc = mdb_cursor_get(c, &key, &val, MDB_LAST);
	if (rc == 0)
		*k = spool_keyu64(&key);
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
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

static int crash_setup(void)
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
static uint64_t free_pages_txn(MDB_txn *txn);

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
static int reserve_create(spool *sp)
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
	if (size ? !reserve_create(sp) : fs_avail(sp) < 8 * MIB)
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

static int is_spool_code(int rc)
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
			rc = state_store(sp, w->txn, w->st, w->st_words);
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
		if (is_spool_code(rc))
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
	n = free_pages_txn(txn);
	spool_rtxn_end(sp, txn);
	return n * sp->psize;
}

/* -------------------------------------------------------- registry */

/* LMDB forbids opening one environment twice in a process (closing the
 * second handle drops the first one's locks), and an fcntl lock does not
 * conflict with its own process: so remember what this process opened. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static spool *reg_head;

static int registry_add(spool *sp)
{
	pid_t me = getpid();
	int rc = 0;

	pthread_mutex_lock(&reg_lock);
	for (spool *s = reg_head; s; s = s->reg_next)
		if (s->reg_pid == me && s->dev == sp->dev && s->ino == sp->ino)
			rc = spool_seterr(SPOOL_EINVAL, "spool %s is already open in this "
			                  "process (as %s)", sp->dir, s->dir);
	if (!rc) {
		sp->reg_pid = me;
		sp->reg_next = reg_head;
		reg_head = sp;
	}
	pthread_mutex_unlock(&reg_lock);
	return rc;
}

static void registry_remove(spool *sp)
{
	pthread_mutex_lock(&reg_lock);
	for (spool **p = &reg_head; *p; p = &(*p)->reg_next)
		if (*p == sp) {
			*p = sp->reg_next;
			break;
		}
	pthread_mutex_unlock(&reg_lock);
}

/* -------------------------------------------------------------- open */

static int mkdir_p(const char *dir)
{
	char path[PATH_MAX];
	size_t n = strlen(dir);

	if (n >= sizeof(path))
		return ENAMETOOLONG;
	memcpy(path, dir, n + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return errno;
		*p = '/';
	}
	if (mkdir(path, 0750) < 0 && errno != EEXIST)
		return errno;
	return 0;
}

static int take_agent_lock(spool *sp)
{
	char path[PATH_MAX], buf[32];
	struct flock fl;
	int fd;

	snprintf(path, sizeof(path), "%s/agent.lock", sp->dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return spool_seterr(SPOOL_EIO, "cannot open %s: %s", path, strerror(errno));
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_SETLK, &fl) < 0) {
		int e = errno;
		long pid = 0;
		ssize_t r;

		if (e != EAGAIN && e != EACCES) {
			close(fd);
			return spool_seterr(SPOOL_EIO, "cannot lock %s: %s", path, strerror(e));
		}
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
			pid = fl.l_pid;
		if (pid <= 0) {     /* holder in another pid namespace: use the file */
			r = pread(fd, buf, sizeof(buf) - 1, 0);
			buf[r > 0 ? r : 0] = 0;
			pid = strtol(buf, NULL, 10);
		}
		close(fd);
		return spool_seterr(SPOOL_ELOCKED, "spool %s is in use by another agent "
		                    "(pid %ld holds %s); stop it first, or give this one "
		                    "another spool directory", sp->dir, pid, path);
	}
	snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, strlen(buf), 0) < 0) {
		/* the lock is what matters; the pid text is a courtesy */
	}
	sp->lockfd = fd;
	return 0;
}

/* AGENT creates a spool only in an empty directory (or a fresh mount
 * point), so a wrong --spool never scatters files among someone's data. */
static int dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		if (strcmp(n, ".") && strcmp(n, "..") && strcmp(n, "agent.lock") &&
		    strcmp(n, "lock.mdb") && strcmp(n, "lost+found") &&
		    strcmp(n, "disk.reserve")) {
			empty = 0;
			break;
		}
	}
	closedir(d);
	return empty;
}

static int make_uuid(char out[SPOOL_UUID_STR_LEN], uint8_t raw[16])
{
	size_t got = 0;

	while (got < 16) {
		ssize_t r = getrandom(raw + got, 16 - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return spool_seterr(SPOOL_EIO, "getrandom: %s", strerror(errno));
		}
		got += (size_t)r;
	}
	raw[6] = (raw[6] & 0x0f) | 0x40;      /* version 4 */
	raw[8] = (raw[8] & 0x3f) | 0x80;      /* RFC 4122 variant */
	snprintf(out, SPOOL_UUID_STR_LEN,
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7],
	         raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15]);
	return 0;
}

static void uuid_text(const uint8_t *raw, char out[SPOOL_UUID_STR_LEN])
{
	snprintf(out, SPOOL_UUID_STR_LEN,
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7],
	         raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15]);
}

struct dbdef {
	const char *name;
	unsigned    flags;
	size_t      off;
};
static const struct dbdef dbdefs[] = {
	{ "q",       MDB_INTEGERKEY, offsetof(spool, q) },
	{ "dict",    MDB_INTEGERKEY, offsetof(spool, dict) },
	{ "dictuse", MDB_INTEGERKEY, offsetof(spool, dictuse) },
	{ "dlq",     MDB_INTEGERKEY, offsetof(spool, dlq) },
	{ "rtime",   MDB_INTEGERKEY, offsetof(spool, rtime) },
};
#define NDBS (sizeof(dbdefs) / sizeof(dbdefs[0]))

static int open_dbs(spool *sp, MDB_txn *txn, unsigned create)
{
	for (size_t i = 0; i < NDBS; i++) {
		MDB_dbi *dbi = (MDB_dbi *)((char *)sp + dbdefs[i].off);
		int rc = mdb_dbi_open(txn, dbdefs[i].name, dbdefs[i].flags | create, dbi);
		if (rc == MDB_NOTFOUND)
			return spool_seterr(SPOOL_ECORRUPT, "spool %s has no \"%s\" table: "
			                    "damaged or not a spool", sp->dir, dbdefs[i].name);
		if (rc)
			return rc;
	}
	return 0;
}

/* Reads and checks magic, version, uuid, created. */
static int load_identity(spool *sp, MDB_txn *txn)
{
	MDB_val k, v;
	int rc;

	k = strval("magic");
	rc = mdb_get(txn, sp->meta, &k, &v);
	if (rc == MDB_NOTFOUND || (rc == 0 && (v.mv_size != strlen(SPOOL_MAGIC) ||
	                          memcmp(v.mv_data, SPOOL_MAGIC, v.mv_size) != 0)))
		return spool_seterr(SPOOL_ENOTSPOOL, "%s holds an LMDB database that is not "
		                    "a spoolcap spool (no spool magic in its meta table)",
		                    sp->dir);
	if (rc)
		return rc;
	k = strval("version");
	rc = mdb_get(txn, sp->meta, &k, &v);
	if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size != 4))
		return spool_seterr(SPOOL_ECORRUPT, "spool %s: meta table has no valid "
		                    "format version", sp->dir);
	if (rc)
		return rc;
	sp->format_version = spool_get_le32(v.mv_data);
	if (sp->format_version > SPOOL_FORMAT_VERSION)
		return spool_seterr(SPOOL_EVERSION, "spool %s uses format version %u but this "
		                    "spoolcap reads versions up to %u; it was not touched: "
		                    "upgrade spoolcap", sp->dir, sp->format_version,
		                    SPOOL_FORMAT_VERSION);
	if (sp->format_version < 1)
		return spool_seterr(SPOOL_ECORRUPT, "spool %s: invalid format version 0",
		                    sp->dir);
	k = strval("uuid");
	rc = mdb_get(txn, sp->meta, &k, &v);
	if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size != 16))
		return spool_seterr(SPOOL_ECORRUPT, "spool %s: meta table has no valid uuid",
		                    sp->dir);
	if (rc)
		return rc;
	uuid_text(v.mv_data, sp->uuid);
	k = strval("created");
	rc = mdb_get(txn, sp->meta, &k, &v);
	if (rc == 0 && v.mv_size == 8)
		sp->created_ns = (int64_t)spool_get_le64(v.mv_data);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int put_meta(spool *sp, MDB_txn *txn, const char *key, const void *p, size_t n)
{
	MDB_val k = strval(key), v = { n, (void *)p };

	return mdb_put(txn, sp->meta, &k, &v, 0);
}

/* The first write txn of AGENT/CLIENT: create (AGENT, empty env) or check
 * the spool, open the tables, and make next_seq at least the last key + 1. */
static int init_op(wtxn *w, void *ctx)
{
	spool *sp = w->sp;
	MDB_dbi main;
	MDB_stat ms;
	uint64_t st[ST_MAX], lastq, lastd, next;
	size_t words;
	int rc;

	(void)ctx;
	rc = mdb_dbi_open(w->txn, "meta", 0, &sp->meta);
	if (rc == MDB_NOTFOUND) {
		uint8_t raw[16], b[8];

		if ((rc = mdb_dbi_open(w->txn, NULL, 0, &main)) != 0 ||
		    (rc = mdb_stat(w->txn, main, &ms)) != 0)
			return rc;
		if (ms.ms_entries > 0)
			return spool_seterr(SPOOL_ENOTSPOOL, "%s holds an LMDB database of "
			                    "another application (no spoolcap meta table)",
			                    sp->dir);
		if (sp->mode != SPOOL_MODE_AGENT)
			return spool_seterr(SPOOL_ENOTSPOOL, "%s is not an initialised spool "
			                    "(start spoolcapd on it once)", sp->dir);
		if ((rc = mdb_dbi_open(w->txn, "meta", MDB_CREATE, &sp->meta)) != 0)
			return rc;
		if ((rc = open_dbs(sp, w->txn, MDB_CREATE)) != 0)
			return rc;
		if ((rc = make_uuid(sp->uuid, raw)) != 0)
			return rc;
		sp->format_version = SPOOL_FORMAT_VERSION;
		sp->created_ns = spool_now_ns();
		memset(st, 0, sizeof(st));
		st[ST_NEXT_SEQ] = 1;
		spool_put_le32(b, SPOOL_FORMAT_VERSION);
		if ((rc = put_meta(sp, w->txn, "magic", SPOOL_MAGIC, strlen(SPOOL_MAGIC))) ||
		    (rc = put_meta(sp, w->txn, "version", b, 4)) ||
		    (rc = put_meta(sp, w->txn, "uuid", raw, 16)))
			return rc;
		spool_put_le64(b, (uint64_t)sp->created_ns);
		if ((rc = put_meta(sp, w->txn, "created", b, 8)) != 0)
			return rc;
		return state_store(sp, w->txn, st, ST_N);
	}
	if (rc)
		return rc;
	if ((rc = load_identity(sp, w->txn)) != 0)
		return rc;
	if ((rc = open_dbs(sp, w->txn, 0)) != 0)
		return rc;
	rc = spool_state_load(sp, w->txn, st, &words);
	if (rc == MDB_NOTFOUND)
		return spool_seterr(SPOOL_ECORRUPT, "spool %s has no state record", sp->dir);
	if (rc)
		return rc;
	if ((rc = spool_last_key(w->txn, sp->q, &lastq)) != 0 ||
	    (rc = spool_last_key(w->txn, sp->dlq, &lastd)) != 0)
		return rc;
	next = st[ST_NEXT_SEQ] ? st[ST_NEXT_SEQ] : 1;
	if (lastq >= next)
		next = lastq + 1;
	if (lastd >= next)
		next = lastd + 1;
	if (next != st[ST_NEXT_SEQ]) {
		st[ST_NEXT_SEQ] = next;
		return state_store(sp, w->txn, st, words);
	}
	return 0;
}

static int open_readonly(spool *sp)
{
	MDB_txn *txn;
	int rc;

	for (;;) {
		rc = mdb_txn_begin(sp->env, NULL, MDB_RDONLY, &txn);
		if (rc == MDB_MAP_RESIZED) {
			if ((rc = mdb_env_set_mapsize(sp->env, 0)) != 0)
				return spool_mdb_err(sp, rc, "mdb_env_set_mapsize");
			continue;
		}
		if (rc)
			return spool_mdb_err(sp, rc, "mdb_txn_begin");
		break;
	}
	rc = mdb_dbi_open(txn, "meta", 0, &sp->meta);
	if (rc == MDB_NOTFOUND)
		rc = spool_seterr(SPOOL_ENOTSPOOL, "%s is not a spoolcap spool (its LMDB "
		                  "database has no meta table)", sp->dir);
	if (!rc)
		rc = load_identity(sp, txn);
	if (!rc)
		rc = open_dbs(sp, txn, 0);
	if (rc) {
		mdb_txn_abort(txn);
		return is_spool_code(rc) ? rc : spool_mdb_err(sp, rc, "opening tables");
	}
	rc = mdb_txn_commit(txn);       /* keeps the DBI handles */
	return rc ? spool_mdb_err(sp, rc, "mdb_txn_commit") : 0;
}

static void apply_defaults(spool_config *c)
{
	if (!c->max_size)
		c->max_size = DEF_MAX_SIZE;
	if (!c->dlq_max_bytes)
		c->dlq_max_bytes = c->max_size / 4 ? c->max_size / 4 : 1;
	if (!c->map_limit)
		c->map_limit = 2 * c->max_size + 64 * MIB;
	if (!c->initial_mapsize)
		c->initial_mapsize = DEF_INITIAL_MAP;
	if (c->initial_mapsize > c->map_limit)
		c->initial_mapsize = c->map_limit;
	if (!c->dict_gc_grace_ns)
		c->dict_gc_grace_ns = DEF_GC_GRACE_NS;
	if (c->retain_ns < 0)
		c->retain_ns = 0;
	if (!c->disk_reserve)
		c->disk_reserve = DEF_DISK_RESERVE;
}

static void spool_free(spool *sp)
{
	if (!sp)
		return;
	for (int i = 0; i < sp->nrpool; i++)
		mdb_txn_abort(sp->rpool[i]);
	if (sp->env)
		mdb_env_close(sp->env);
	if (sp->lockfd >= 0)
		close(sp->lockfd);
	if (sp->reg_pid)
		registry_remove(sp);
	pthread_mutex_destroy(&sp->wlock);
	pthread_rwlock_destroy(&sp->maplock);
	pthread_mutex_destroy(&sp->rpool_lock);
	free(sp->dir);
	free(sp);
}

static int open_env(spool *sp)
{
	unsigned flags = MDB_NOTLS;
	char path[PATH_MAX];
	MDB_envinfo ei;
	MDB_stat ms;
	int rc;

	if (sp->mode == SPOOL_MODE_READONLY)
		flags |= MDB_RDONLY;
	else if (sp->mode == SPOOL_MODE_AGENT && sp->cfg.sync_mode == SPOOL_SYNC_PROCESS)
		flags |= MDB_NOSYNC;
	else if (sp->mode == SPOOL_MODE_AGENT && sp->cfg.sync_mode == SPOOL_SYNC_RELAXED)
		flags |= MDB_NOMETASYNC;
	if ((rc = mdb_env_create(&sp->env)) != 0)
		return spool_mdb_err(sp, rc, "mdb_env_create");
	mdb_env_set_maxdbs(sp->env, 8);
	mdb_env_set_maxreaders(sp->env, 126);
	rc = mdb_env_open(sp->env, sp->dir, flags, 0640);
	if (rc) {
		snprintf(path, sizeof(path), "%s/data.mdb", sp->dir);
		if (rc == MDB_INVALID)
			return spool_seterr(SPOOL_ENOTSPOOL, "%s is not an LMDB database, so "
			                    "%s is not a spool", path, sp->dir);
		if (rc == MDB_VERSION_MISMATCH)
			return spool_seterr(SPOOL_ENOTSPOOL, "%s was written by an incompatible "
			                    "LMDB version", path);
		if (rc == EACCES || rc == EROFS)
			return spool_seterr(SPOOL_EIO, "cannot open spool %s: %s (check "
			                    "permissions; READONLY still needs lock.mdb writable)",
			                    sp->dir, strerror(rc));
		return spool_mdb_err(sp, rc, "mdb_env_open");
	}
	mdb_env_stat(sp->env, &ms);
	sp->psize = ms.ms_psize;
	mdb_reader_check(sp->env, NULL);     /* slots of killed CLI runs */
	if (sp->mode != SPOOL_MODE_READONLY) {
		mdb_env_info(sp->env, &ei);
		if (ei.me_mapsize < sp->cfg.initial_mapsize &&
		    (rc = mdb_env_set_mapsize(sp->env, sp->cfg.initial_mapsize)) != 0)
			return spool_mdb_err(sp, rc, "mdb_env_set_mapsize");
	}
	return 0;
}

int spool_open(spool **out, const char *dir, const spool_config *cfg,
               enum spool_mode mode, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct stat st;
	spool *sp = NULL;
	wtxn w;
	int rc;

	errbuf[0] = 0;
	if (out)
		*out = NULL;
	if (!out || !dir || !*dir || mode > SPOOL_MODE_READONLY) {
		rc = spool_seterr(SPOOL_EINVAL, "spool_open: bad arguments");
		goto fail;
	}
	if (spool_in_cb) {
		rc = spool_enter(NULL);
		goto fail;
	}
	if (strlen(dir) > PATH_MAX - 32) {
		rc = spool_seterr(SPOOL_EINVAL, "spool directory name too long");
		goto fail;
	}
	if ((rc = crash_setup()) != 0)
		goto fail;
	sp = calloc(1, sizeof(*sp));
	if (!sp || !(sp->dir = strdup(dir))) {
		rc = spool_seterr(SPOOL_ENOMEM, "out of memory");
		free(sp);
		sp = NULL;
		goto fail;
	}
	sp->lockfd = -1;
	sp->mode = mode;
	if (cfg)
		sp->cfg = *cfg;
	apply_defaults(&sp->cfg);
	if (sp->cfg.full_policy < 0 || sp->cfg.full_policy > SPOOL_FULL_DROP_OLDEST ||
	    sp->cfg.sync_mode < 0 || sp->cfg.sync_mode > SPOOL_SYNC_DURABLE) {
		rc = spool_seterr(SPOOL_EINVAL, "spool_open: unknown full policy or sync mode");
		goto fail_free;
	}
	if (mode == SPOOL_MODE_CLIENT)
		sp->cfg.sync_mode = SPOOL_SYNC_DURABLE;
	pthread_mutex_init(&sp->wlock, NULL);
	pthread_mutex_init(&sp->rpool_lock, NULL);
	{
		pthread_rwlockattr_t a;
		pthread_rwlockattr_init(&a);
		/* a waiting remap must not starve behind a stream of readers */
		pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&sp->maplock, &a);
		pthread_rwlockattr_destroy(&a);
	}

	if (stat(dir, &st) < 0) {
		if (errno != ENOENT || mode != SPOOL_MODE_AGENT) {
			rc = spool_seterr(SPOOL_ENOTSPOOL, "spool directory %s: %s%s", dir,
			                  strerror(errno), errno == ENOENT ?
			                  " (spoolcapd creates it on first start)" : "");
			goto fail_free;
		}
		if ((rc = mkdir_p(dir)) != 0) {
			rc = spool_seterr(SPOOL_EIO, "cannot create spool directory %s: %s",
			                  dir, strerror(rc));
			goto fail_free;
		}
		if (stat(dir, &st) < 0) {
			rc = spool_seterr(SPOOL_EIO, "%s: %s", dir, strerror(errno));
			goto fail_free;
		}
	}
	if (!S_ISDIR(st.st_mode)) {
		rc = spool_seterr(SPOOL_ENOTSPOOL, "%s is not a directory (a spool is a "
		                  "directory holding data.mdb and lock.mdb)", dir);
		goto fail_free;
	}
	sp->dev = st.st_dev;
	sp->ino = st.st_ino;
	if ((rc = registry_add(sp)) != 0)
		goto fail_free;
	if (mode == SPOOL_MODE_AGENT && (rc = take_agent_lock(sp)) != 0)
		goto fail_free;
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (stat(path, &st) < 0) {
		if (mode != SPOOL_MODE_AGENT) {
			rc = spool_seterr(SPOOL_ENOTSPOOL, "%s is not a spool (it has no "
			                  "data.mdb)", dir);
			goto fail_free;
		}
		if (!dir_is_empty(dir)) {
			rc = spool_seterr(SPOOL_ENOTSPOOL, "%s holds other files and no spool; "
			                  "refusing to create a spool there (use an empty or "
			                  "new directory)", dir);
			goto fail_free;
		}
	} else if (!S_ISREG(st.st_mode)) {
		rc = spool_seterr(SPOOL_ENOTSPOOL, "%s is not a regular file, so %s is not "
		                  "a spool", path, dir);
		goto fail_free;
	}
	if ((rc = open_env(sp)) != 0)
		goto fail_free;
	if (mode == SPOOL_MODE_READONLY) {
		rc = open_readonly(sp);
	} else {
		pthread_mutex_lock(&sp->wlock);
		rc = spool_wtxn_run(sp, init_op, NULL, &w, WTXN_NOSTATE);
		pthread_mutex_unlock(&sp->wlock);
	}
	if (rc)
		goto fail_free;
	if (mode == SPOOL_MODE_AGENT)
		reserve_create(sp);
	*out = sp;
	return 0;

fail_free:
	spool_free(sp);
fail:
	if (err && errlen)
		snprintf(err, errlen, "%s", spool_errmsg());
	return rc;
}

static int noop_op(wtxn *w, void *ctx)
{
	(void)w;
	(void)ctx;
	return 0;
}

void spool_close(spool *sp)
{
	wtxn w;
	int pending = 0;

	if (!sp)
		return;
	if (sp->mode != SPOOL_MODE_READONLY && !atomic_load(&sp->broken)) {
		pthread_mutex_lock(&sp->wlock);
		for (int i = 0; i < SPOOL_DROP_NREASONS; i++)
			pending |= sp->pend_drops[i] != 0;
		if (pending)
			spool_wtxn_run(sp, noop_op, NULL, &w, 0);
		pthread_mutex_unlock(&sp->wlock);
		if (sp->mode == SPOOL_MODE_AGENT && sp->cfg.sync_mode != SPOOL_SYNC_DURABLE)
			mdb_env_sync(sp->env, 1);
	}
	spool_free(sp);
}

/* -------------------------------------------------- housekeeping */

int spool_sync(spool *sp)
{
	int rc = spool_enter_write(sp);

	if (rc)
		return rc;
	rc = mdb_env_sync(sp->env, 1);
	if (rc) {
		/* after a failed fsync the kernel may have dropped the dirty pages:
		 * nothing can be promised any more (never retry an fsync) */
		atomic_store(&sp->broken, 1);
		return spool_seterr(SPOOL_EIO, "spool %s: sync failed: %s; restart the "
		                    "process (check the disk and kernel log)", sp->dir,
		                    rc > 0 ? strerror(rc) : mdb_strerror(rc));
	}
	return 0;
}

int spool_reader_check(spool *sp, int *dead)
{
	int rc = spool_enter(sp), n = 0;

	if (rc)
		return rc;
	rc = mdb_reader_check(sp->env, &n);
	if (dead)
		*dead = n;
	return rc ? spool_mdb_err(sp, rc, "mdb_reader_check") : 0;
}

const char *spool_uuid(const spool *sp)
{
	return sp ? sp->uuid : "";
}

const char *spool_dir(const spool *sp)
{
	return sp ? sp->dir : "";
}

/* -------------------------------------------------------- statistics */

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

static uint64_t free_pages_txn(MDB_txn *txn)
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
	s->free_pages = free_pages_txn(txn);
out:
	spool_rtxn_end(sp, txn);
	if (rc)
		return is_spool_code(rc) ? rc : spool_mdb_err(sp, rc, "spool_stat");
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
	s->max_size = sp->cfg.max_size;
	s->dlq_max_bytes = sp->cfg.dlq_max_bytes;
	s->full_policy = sp->cfg.full_policy;
	s->sync_mode = sp->cfg.sync_mode;
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
