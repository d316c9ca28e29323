/* spool_admin.h -- operator-side additions to the spool module for the
 * spoolcap admin subcommands (dlq, verify, compact, purge): adopting the
 * agent's limits in a CLIENT handle, telling whether an agent runs on a
 * spool, and a compacting copy of the LMDB file. Same rules as spool.h:
 * errors are returned (negative enum spool_err, spool_errmsg()), nothing
 * is printed. */
#ifndef SPOOLCAP_SPOOL_ADMIN_H
#define SPOOLCAP_SPOOL_ADMIN_H

#include <stdint.h>

#include "spoolcap/spool.h"

/* Makes a handle use the size cap and dead-letter cap the agent recorded
 * in the spool (meta "agentcfg"), instead of the defaults it was opened
 * with: a CLIENT handle that dead-letters (verify --quarantine) then
 * evicts old dead letters exactly where the agent would, never earlier.
 * Without a recorded configuration (a spool no agent has opened since
 * the key was added) the handle keeps its own. Call it right after
 * spool_open, before other calls on the handle. */
int spool_use_agent_limits(spool *sp);

/* The pid of the agent holding dir/agent.lock, 0 if none holds it (or
 * the pid is not visible, e.g. another pid namespace: then 1), or a
 * negative error when the lock file exists but cannot be checked. */
long spool_agent_pid(const char *dir);

/* Writes a compacted copy of the spool's data.mdb (LMDB's copy with
 * MDB_CP_COMPACT: live pages only, free pages dropped, B-trees rebuilt)
 * to outdir/data.mdb, which must not exist; outdir must exist. The copy
 * is a consistent snapshot taken in one read transaction; it is flushed
 * to disk (fsync of the file and of outdir) before this returns. Nothing
 * else is needed to open it as a spool: LMDB creates lock.mdb and the
 * agent its agent.lock and disk.reserve. While the copy runs, the agent
 * cannot reuse pages freed after it started (LMDB's rule for any reader),
 * so its file may grow meanwhile. *bytes (may be NULL) gets the size of
 * the copy. On failure the partial outdir/data.mdb is removed. */
int spool_compact_copy(spool *sp, const char *outdir, uint64_t *bytes);

#endif
