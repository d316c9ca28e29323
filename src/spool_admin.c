/* spool_admin.c -- what the spoolcap admin subcommands need from the spool
 * beyond spool.h: a CLIENT handle that obeys the agent's recorded limits,
 * "is an agent running on this spool?", and LMDB's compacting copy. Part of
 * the spool module (it uses the handle's internals); see spool_admin.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool_int.h"
#include "spoolcap/spool_admin.h"

#define MIB (1024ull * 1024)

int spool_use_agent_limits(spool *sp)
{
	MDB_txn *txn;
	MDB_val k = { 8, (void *)"agentcfg" }, v;
	uint64_t max_size = 0, dlq_max = 0, policy = 0;
	int rc;

	if ((rc = spool_enter(sp)) != 0)
		return rc;
	if ((rc = spool_rtxn_begin(sp, &txn)) != 0)
		return rc;
	rc = mdb_get(txn, sp->meta, &k, &v);
	if (rc == 0 && v.mv_size == 32) {
		max_size = spool_get_le64(v.mv_data);
		dlq_max = spool_get_le64((const uint8_t *)v.mv_data + 8);
		policy = spool_get_le64((const uint8_t *)v.mv_data + 16);
	}
	spool_rtxn_end(sp, txn);
	if (rc && rc != MDB_NOTFOUND)
		return spool_mdb_err(sp, rc, "reading the agent's limits");
	if (!max_size || !dlq_max)
		return 0;
	pthread_mutex_lock(&sp->wlock);
	sp->cfg.max_size = max_size;
	sp->cfg.dlq_max_bytes = dlq_max;
	if (policy <= SPOOL_FULL_DROP_OLDEST)
		sp->cfg.full_policy = (int)policy;
	/* the agent's default map limit for that cap (spool.h) */
	if (sp->cfg.map_limit < 2 * max_size + 64 * MIB)
		sp->cfg.map_limit = 2 * max_size + 64 * MIB;
	pthread_mutex_unlock(&sp->wlock);
	return 0;
}

long spool_agent_pid(const char *dir)
{
	char path[PATH_MAX], buf[32];
	struct flock fl;
	long pid;
	ssize_t r;
	int fd;

	if (snprintf(path, sizeof(path), "%s/agent.lock", dir) >= (int)sizeof(path))
		return spool_seterr(SPOOL_EINVAL, "spool directory name too long");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return spool_seterr(SPOOL_EIO, "cannot open %s: %s", path, strerror(errno));
	}
	/* Only asks; never takes the lock (closing a file would drop every
	 * fcntl lock this process has on it, but we hold none). */
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_GETLK, &fl) < 0) {
		int e = errno;

		close(fd);
		return spool_seterr(SPOOL_EIO, "cannot check the lock on %s: %s", path,
		                    strerror(e));
	}
	if (fl.l_type == F_UNLCK) {
		close(fd);
		return 0;
	}
	pid = fl.l_pid;
	if (pid <= 0) {         /* holder in another pid namespace: its own text */
		r = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[r > 0 ? r : 0] = 0;
		pid = strtol(buf, NULL, 10);
	}
	close(fd);
	return pid > 0 ? pid : 1;
}

int spool_compact_copy(spool *sp, const char *outdir, uint64_t *bytes)
{
	char path[PATH_MAX], src[PATH_MAX];
	struct stat st;
	mode_t mode = 0640;
	int fd, dfd, rc, tries;

	if (bytes)
		*bytes = 0;
	if ((rc = spool_enter(sp)) != 0)
		return rc;
	if (snprintf(path, sizeof(path), "%s/data.mdb", outdir) >= (int)sizeof(path))
		return spool_seterr(SPOOL_EINVAL, "directory name too long: %s", outdir);
	snprintf(src, sizeof(src), "%s/data.mdb", sp->dir);
	if (stat(src, &st) == 0)
		mode = st.st_mode & 0777;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		int e = errno;

		return spool_seterr(e == EEXIST ? SPOOL_EEXIST : SPOOL_EIO, "cannot create "
		                    "%s: %s", path, strerror(e));
	}
	for (tries = 0;; tries++) {
		/* shared, like any read transaction of ours: a remap waits */
		pthread_rwlock_rdlock(&sp->maplock);
		rc = mdb_env_copyfd2(sp->env, fd, MDB_CP_COMPACT);
		pthread_rwlock_unlock(&sp->maplock);
		if (rc != MDB_MAP_RESIZED || tries == 3)
			break;
		/* the agent grew the map: adopt its size and start again */
		pthread_rwlock_wrlock(&sp->maplock);
		rc = mdb_env_set_mapsize(sp->env, 0);
		pthread_rwlock_unlock(&sp->maplock);
		if (rc || ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)
			break;
	}
	if (rc) {
		rc = rc > 0 ? spool_seterr(SPOOL_EIO, "copying %s to %s: %s", src, path,
		                           strerror(rc))
		            : spool_mdb_err(sp, rc, "mdb_env_copyfd2");
		goto fail;
	}
	if (fsync(fd) < 0 || fstat(fd, &st) < 0) {
		rc = spool_seterr(SPOOL_EIO, "cannot flush %s: %s", path, strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = spool_seterr(SPOOL_EIO, "cannot write %s: %s", path, strerror(errno));
		goto fail;
	}
	fd = -1;
	/* the new directory entry must survive a crash too */
	dfd = open(outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	if (bytes)
		*bytes = (uint64_t)st.st_size;
	return 0;

fail:
	if (fd >= 0)
		close(fd);
	unlink(path);
	return rc;
}
