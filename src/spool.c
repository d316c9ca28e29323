/* spool.c -- opening, creating and closing a spool: the directory checks
 * (never create a spool among foreign files), the agent lock with the
 * holder's pid, the process registry (LMDB forbids a second open), the
 * identity in meta (magic, format version, UUID), the start-up
 * reconciliation of next_seq, and sync / reader check. Transactions live
 * in spool_txn.c; design notes in include/spoolcap/spool.h. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool_int.h"

#define MIB               (1024ull * 1024)
#define DEF_MAX_SIZE      (1024 * MIB)
#define DEF_INITIAL_MAP   (64 * MIB)
#define DEF_GC_GRACE_NS   (3600ll * 1000000000ll)
#define DEF_DISK_RESERVE  (16 * MIB)
#define SPOOL_MAGIC       "spoolcap-spool"

static MDB_val strval(const char *s)
{
	MDB_val v = { strlen(s), (void *)s };
	return v;
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

/* meta "agentcfg": the running agent's cap and policy (4 LE u64: max_size,
 * dlq_max_bytes, full_policy, sync_mode), so that `spoolcap stat` from
 * another process shows the agent's limits rather than its own defaults. */
int spool_agentcfg_store(spool *sp, MDB_txn *txn)
{
	uint8_t b[32];

	spool_put_le64(b, sp->cfg.max_size);
	spool_put_le64(b + 8, sp->cfg.dlq_max_bytes);
	spool_put_le64(b + 16, (uint64_t)sp->cfg.full_policy);
	spool_put_le64(b + 24, (uint64_t)sp->cfg.sync_mode);
	return put_meta(sp, txn, "agentcfg", b, sizeof(b));
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
		if ((rc = put_meta(sp, w->txn, "created", b, 8)) != 0 ||
		    (rc = spool_agentcfg_store(sp, w->txn)) != 0)
			return rc;
		return spool_state_store(sp, w->txn, st, ST_N);
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
	if (sp->mode == SPOOL_MODE_AGENT && (rc = spool_agentcfg_store(sp, w->txn)) != 0)
		return rc;
	if (next != st[ST_NEXT_SEQ]) {
		st[ST_NEXT_SEQ] = next;
		return spool_state_store(sp, w->txn, st, words);
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
		return spool_is_code(rc) ? rc : spool_mdb_err(sp, rc, "opening tables");
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
			                    "permissions: even reading a spool needs write access to "
			                    "its lock.mdb, so run as the user spoolcapd runs as)",
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
	if ((rc = spool_crash_setup()) != 0)
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
		if (errno != ENOENT) {
			rc = spool_seterr(SPOOL_EIO, "cannot look at %s: %s (run as the user "
			                  "spoolcapd runs as, or fix the permissions)", path,
			                  strerror(errno));
			goto fail_free;
		}
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
		spool_reserve_create(sp);
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

