/* spool.h -- the durable LMDB spool: a FIFO of opaque records keyed by a
 * 64-bit sequence number, with a delivery cursor, retention, a size cap
 * with an explicit full policy, a dead-letter table and dictionaries.
 *
 * A record is accepted when the write transaction holding it commits
 * (spool_append returns). From then on it ends in exactly one of:
 * delivered (the cursor moved over it), dead-lettered (spool_dlq_put), or
 * dropped by the full policy / an operator purge, and counted. Nothing
 * else removes a record; in particular a record that fails the caller's
 * validation is never deleted, only moved to the dead-letter table.
 *
 * On disk: DIR/data.mdb + DIR/lock.mdb (LMDB), DIR/agent.lock (holds the
 * agent's pid) and DIR/disk.reserve (see "Deleting needs" below). LMDB
 * sub-databases:
 *   q      u64 seq -> record bytes (MDB_INTEGERKEY, always MDB_APPEND)
 *   meta   "magic", "version", "uuid", "created", "state" (counters)
 *   dict   u32 id -> dictionary bytes (immutable)
 *   dictuse u32 id -> last seq using it + store time (for dict GC)
 *   dlq    u64 original seq -> dead-letter header, reply snippet, record
 *   rtime  u64 unix second -> highest seq delivered in that second (only
 *          while retention is configured; drives age-based pruning)
 * Records delivered while retention is on stay in q behind the cursor.
 *
 * Sequence numbers start at 1, are assigned only to stored records, and
 * are never reused: next_seq is persisted in the same transaction as the
 * appends, and at open next_seq = max(meta, last key in q or dlq + 1).
 *
 * Size cap: max_size bounds the sum of VALUE bytes held (pending +
 * retained + dead letters). LMDB's own overhead is not counted: the pages
 * in use measured 1.18x that sum for 300-1500 B values, 1.25x for
 * 700-2022 B, 1.35x for 1-4 KB, 1.18x for 4-20 KB, and 1.95x for values
 * just over the 2,022-byte inline limit (each takes a whole 4 KiB overflow
 * page); plus free pages. When an item does not fit: first the oldest retained (already
 * delivered) records are pruned; then drop-newest drops the item
 * (SPOOL_DROP_FULL) and drop-oldest evicts the oldest pending records in
 * the same transaction (SPOOL_DROP_EVICTED; an item that cannot fit even
 * then is dropped as SPOOL_DROP_FULL without evicting anything). The LMDB
 * map starts at initial_mapsize and grows on demand (doubling) up to
 * map_limit (default 2 x max_size + 64 MiB); hitting that limit is "full"
 * too. A full filesystem (ENOSPC, or LMDB 0.9.24's EIO for a short write
 * when statvfs shows the filesystem nearly full) is not fatal: the whole
 * transaction is aborted, its items are SPOOL_DROP_DISK_FULL, and the next
 * call tries again. Any other I/O error is fatal (SPOOL_EIO): the handle
 * refuses further writes and the process should exit and be restarted.
 *
 * Deleting needs fresh pages too (copy-on-write), so a spool whose file
 * cannot grow could not even deliver. Hence: an AGENT keeps a ballast file
 * DIR/disk.reserve (disk_reserve bytes, allocated at open when there is
 * room) and releases it when the filesystem fills; from then on (and when
 * the map is at its limit) the map is clamped so appends only reuse pages
 * freed by deliveries and leave headroom for the next delete, while
 * operations that free space (advance, prune, purge, dead-lettering,
 * eviction) may use the released reserve. The spool thus keeps working as
 * a ring inside its file, and returns to normal (re-creating the reserve)
 * once the filesystem has room for twice the reserve again.
 *
 * Drop counters are persisted in meta in the transaction that drops. When
 * that transaction itself failed (disk full, map full) the counts are kept
 * in memory and written by this process's next successful write
 * transaction; spool_stat adds them. A crash in between loses those counts
 * (never records). spool_close tries to flush them.
 *
 * Threads: a spool handle is shared by all threads of a process and every
 * function is thread-safe. Write operations are serialised by a per-handle
 * mutex (and by LMDB's lock across processes). Reads run in short,
 * reused read transactions (MDB_NOTLS) concurrently with one writer. The
 * map is grown by whichever thread's write hits MDB_MAP_FULL, under an
 * exclusive lock that waits for this process's in-progress reads and
 * writes to finish (LMDB requires that no transaction is active during
 * mdb_env_set_mapsize) -- so callbacks must be quick. A map grown by
 * another process is adopted the same way (MDB_MAP_RESIZED).
 * Callbacks run INSIDE a read transaction: copy or decode what you need
 * and return; never block, never do network I/O, and never call a spool_*
 * function from a callback (refused with SPOOL_EINVAL).
 * Never use a handle in a child after fork(); open a new one there.
 * A process may open a given spool directory only once (LMDB rule).
 *
 * Errors: functions return 0 (or a count) on success and a negative
 * enum spool_err on failure; spool_errmsg() then gives a sentence saying
 * what went wrong and what to do (per thread, like errno). Nothing is
 * printed.
 *
 * Crash-test hooks: with SPOOLCAP_CRASH_POINT=<name> in the environment at
 * spool_open, the process raise(SIGKILL)s when it reaches that point;
 * SPOOLCAP_CRASH_AFTER=<n> (default 1) picks the n-th time. Points:
 * after_put_before_commit, after_commit (spool_append), inside_advance,
 * during_dlq_move, during_dict_store. One predictable branch when unset. */
#ifndef SPOOLCAP_SPOOL_H
#define SPOOLCAP_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#define SPOOL_FORMAT_VERSION  1
#define SPOOL_SNIPPET_MAX     512          /* reply bytes kept per dead letter */
#define SPOOL_UUID_STR_LEN    37           /* "xxxxxxxx-...-xxxxxxxxxxxx" + NUL */

enum spool_err {
	SPOOL_OK        = 0,
	SPOOL_EINVAL    = -1,   /* bad argument, or a call from inside a callback */
	SPOOL_ENOENT    = -2,   /* no such record / dead letter / dictionary */
	SPOOL_EEXIST    = -3,   /* dictionary id already stored with other bytes */
	SPOOL_ELOCKED   = -4,   /* another agent holds the spool (message has its pid) */
	SPOOL_ENOTSPOOL = -5,   /* missing directory, or not a spoolcap spool */
	SPOOL_EVERSION  = -6,   /* written by a newer spoolcap: not touched */
	SPOOL_EFULL     = -7,   /* no room (cap, map or filesystem); retry later */
	SPOOL_EIO       = -8,   /* fatal I/O error: stop using the spool, restart */
	SPOOL_ENOMEM    = -9,
	SPOOL_ERDONLY   = -10,  /* write on a READONLY handle */
	SPOOL_ECORRUPT  = -11   /* LMDB reports a damaged database */
};
const char *spool_strerror(int err);
/* The calling thread's message for its last failed spool call. */
const char *spool_errmsg(void);

enum spool_mode {
	SPOOL_MODE_AGENT    = 0,  /* the daemon: takes DIR/agent.lock, creates the spool */
	SPOOL_MODE_CLIENT   = 1,  /* CLI mutations: no agent lock, durable commits */
	SPOOL_MODE_READONLY = 2   /* inspection: MDB_RDONLY, safe beside the agent */
};

enum spool_sync_mode {
	/* Default. MDB_NOSYNC: no flush per commit; the caller runs spool_sync()
	 * on a timer (e.g. every 1 s). Survives kill -9 of the process with zero
	 * loss (data is in the page cache once commit returns); a power loss
	 * can lose up to one sync interval. */
	SPOOL_SYNC_PROCESS = 0,
	/* MDB_NOMETASYNC: one flush per commit; survives kill -9; a power loss
	 * may undo the last commit. */
	SPOOL_SYNC_RELAXED = 1,
	/* LMDB default: two flushes per commit; survives power loss. */
	SPOOL_SYNC_DURABLE = 2
};

enum spool_full_policy {
	SPOOL_FULL_DROP_NEWEST = 0,   /* default: keep what is already promised */
	SPOOL_FULL_DROP_OLDEST = 1    /* evict the oldest pending records */
};

/* Why a record was dropped; the index of spool_stats.dropped[]. */
enum spool_drop_reason {
	SPOOL_DROP_FULL = 0,          /* did not fit under the cap (or the map limit) */
	SPOOL_DROP_EVICTED,           /* pending record evicted by drop-oldest */
	SPOOL_DROP_DISK_FULL,         /* filesystem full at commit */
	SPOOL_DROP_DLQ_EVICTED,       /* oldest dead letter removed by dlq_max_bytes */
	SPOOL_DROP_PURGED,            /* removed by an operator (dlq purge, purge) */
	SPOOL_DROP_NREASONS
};

/* Dead-letter reasons; the index of spool_stats.dlq_by_reason[]. */
enum spool_dlq_reason {
	SPOOL_DLQ_OTHER = 0,
	SPOOL_DLQ_CORRUPT,            /* failed validation (checksum, header...) */
	SPOOL_DLQ_REJECTED,           /* processor rejected it (4xx) */
	SPOOL_DLQ_TOO_LARGE,          /* 413 on a single record */
	SPOOL_DLQ_PERSISTENT_5XX,     /* head-of-line poison */
	SPOOL_DLQ_MANUAL,             /* moved by an operator */
	SPOOL_DLQ_NREASONS = 8        /* room for more; stats keep 8 slots */
};

const char *spool_sync_mode_name(int mode);        /* "process", "relaxed", "durable" */
int         spool_sync_mode_parse(const char *s);  /* -1 if unknown */
const char *spool_full_policy_name(int policy);    /* "drop-newest", "drop-oldest" */
int         spool_full_policy_parse(const char *s);
const char *spool_drop_reason_name(int reason);    /* "full", "evicted", "disk_full", ... */
const char *spool_dlq_reason_name(int reason);     /* "other", "corrupt", "rejected", ... */
int         spool_dlq_reason_parse(const char *s);

/* Record hooks: the spool never parses records itself. All optional. */
typedef struct spool_hooks {
	/* Dictionary id a record needs, 0 for none. Without it dictionaries
	 * are never deleted (spool_dict_gc does nothing). */
	uint32_t (*dict_id)(const void *val, size_t len, void *user);
	/* Capture time in ns since the epoch, or -1 if unreadable (stats). */
	int64_t  (*time_ns)(const void *val, size_t len, void *user);
	/* 0 if the record is valid, else nonzero with a reason in why
	 * (spool_verify). */
	int      (*validate)(const void *val, size_t len, char *why, size_t whylen,
	                     void *user);
	void     *user;
} spool_hooks;

/* Zero-initialise and set what you need: every 0 means the default. */
typedef struct spool_config {
	uint64_t max_size;          /* value bytes held; default 1 GiB */
	uint64_t dlq_max_bytes;     /* dead-letter value bytes; default max_size / 4 */
	int      full_policy;       /* enum spool_full_policy */
	int      sync_mode;         /* enum spool_sync_mode (ignored in CLIENT mode: durable) */
	int64_t  retain_ns;         /* keep delivered records this long (0: not by age) */
	uint64_t retain_bytes;      /* ...and/or at most this many bytes (0: not by size) */
	uint64_t initial_mapsize;   /* default 64 MiB (never below what the file uses) */
	uint64_t map_limit;         /* default 2 x max_size + 64 MiB */
	int64_t  dict_gc_grace_ns;  /* see spool_dict_gc; default 1 hour */
	uint64_t disk_reserve;      /* AGENT: DIR/disk.reserve ballast; default
	                             * 16 MiB, UINT64_MAX = none (see below) */
	spool_hooks hooks;
} spool_config;

typedef struct spool spool;

/* Opens (AGENT: creates if missing) the spool in dir. cfg may be NULL.
 * On failure *out is NULL and err holds the message. Errors:
 * SPOOL_ELOCKED (second agent; names the holder's pid), SPOOL_ENOTSPOOL
 * (no such directory / a file / a directory without a spool, or with
 * other files in AGENT mode / an LMDB file that is not ours),
 * SPOOL_EVERSION, SPOOL_EINVAL (already open in this process). */
int  spool_open(spool **out, const char *dir, const spool_config *cfg,
                enum spool_mode mode, char *err, size_t errlen);
/* Flushes in-memory drop counts, syncs (PROCESS mode), closes. */
void spool_close(spool *sp);

/* ---- append (the writer's group commit) ---- */
typedef struct spool_item {
	const void *data;
	size_t      len;
} spool_item;

typedef struct spool_append_result {
	uint64_t seq;               /* assigned seq, 0 when dropped */
	int      drop;              /* -1 stored, else enum spool_drop_reason */
} spool_append_result;

/* Appends n items in ONE write transaction. res (n entries) says per item
 * whether it is stored (seq) or dropped (reason). Dropped items do not use
 * sequence numbers; stored items get consecutive ones. Returns the number
 * stored (>= 0; a full spool or disk is not an error), or SPOOL_EIO
 * (fatal), SPOOL_ECORRUPT, SPOOL_ERDONLY, SPOOL_EINVAL. Note that with
 * drop-oldest an item stored by this call may be evicted by a later item
 * of the same call (counted as evicted). */
int  spool_append(spool *sp, const spool_item *items, size_t n,
                  spool_append_result *res);

/* ---- reading ---- */
/* Return 0 to continue, nonzero to stop after this record. val points into
 * the map and is valid only during the call. */
typedef int spool_record_fn(uint64_t seq, const void *val, size_t len, void *user);

/* Calls cb for pending records with seq > max(after_seq, cursor), in seq
 * order, at most max_records (0: no limit) and stopping before max_bytes
 * of values would be exceeded (0: no limit; the first record is always
 * given). One short read transaction. Returns the number of records given
 * to cb, or a negative error. */
int  spool_read(spool *sp, uint64_t after_seq, size_t max_records,
                size_t max_bytes, spool_record_fn *cb, void *user);
/* The same over every record in q, delivered-but-retained ones included
 * (records with seq <= cursor are retained). For the CLI. */
int  spool_scan(spool *sp, uint64_t after_seq, size_t max_records,
                size_t max_bytes, spool_record_fn *cb, void *user);
/* One record of q by seq: SPOOL_ENOENT if absent. */
int  spool_get(spool *sp, uint64_t seq, spool_record_fn *cb, void *user);

/* ---- delivery cursor and retention ---- */
int  spool_cursor_get(spool *sp, uint64_t *cursor);
/* Durably marks every record with seq <= upto_seq delivered: moves the
 * cursor and, without retention, deletes them in the same transaction
 * (with retention they stay and are pruned later). Gaps (dead-lettered,
 * evicted) are fine; upto_seq beyond the last assigned seq is clamped. A
 * large step is done in several transactions of bounded size. */
int  spool_advance(spool *sp, uint64_t upto_seq);
/* Removes retained records older than retain_ns (by delivery time) or
 * beyond retain_bytes, and every retained record if retention is now off.
 * now_ns 0 = the real clock. Run it periodically (e.g. every 10 s).
 * Returns the number of records removed. */
int  spool_prune(spool *sp, int64_t now_ns);
/* Operator purge: removes records with seq <= upto_seq: retained ones
 * (counted as pruned) and, when include_pending, pending ones too (counted
 * as SPOOL_DROP_PURGED). Returns the number removed. */
int  spool_purge(spool *sp, uint64_t upto_seq, int include_pending);

/* ---- durability and housekeeping ---- */
/* Flushes the data file (mdb_env_sync force). Run on a timer in PROCESS
 * mode; any thread, concurrently with appends. An error is fatal. */
int  spool_sync(spool *sp);
/* Clears reader slots of dead processes; *dead (may be NULL) = how many. */
int  spool_reader_check(spool *sp, int *dead);

/* ---- dead letters ---- */
typedef struct spool_dlq_info {
	int         reason;         /* enum spool_dlq_reason */
	int         http_status;    /* 0 if none */
	int         curl_code;      /* 0 if none */
	uint32_t    attempts;
	int64_t     first_ns;       /* first failure; 0 = now */
	int64_t     last_ns;        /* last failure; 0 = now */
	const void *snippet;        /* start of the processor's reply */
	size_t      snippet_len;    /* cut to SPOOL_SNIPPET_MAX */
} spool_dlq_info;

typedef struct spool_dlq_entry {
	uint64_t       seq;         /* the record's original seq */
	spool_dlq_info info;        /* snippet points into the map */
	int64_t        dead_ns;     /* when it was dead-lettered */
	const void    *record;      /* the original record bytes */
	size_t         record_len;
} spool_dlq_entry;
typedef int spool_dlq_fn(const spool_dlq_entry *e, void *user);

/* Moves pending record seq from q to the dead-letter table in one
 * transaction. SPOOL_ENOENT if seq is not pending. If dead letters would
 * exceed dlq_max_bytes the oldest ones are removed (SPOOL_DROP_DLQ_EVICTED). */
int  spool_dlq_put(spool *sp, uint64_t seq, const spool_dlq_info *info);
int  spool_dlq_get(spool *sp, uint64_t seq, spool_dlq_fn *cb, void *user);
/* Dead letters with seq > after_seq, at most max (0: all), one short read
 * transaction; returns how many were given. */
int  spool_dlq_iterate(spool *sp, uint64_t after_seq, size_t max,
                       spool_dlq_fn *cb, void *user);
/* Puts dead letters back in the queue (seqs[n], or every one when seqs is
 * NULL). Each is re-appended with a NEW seq (so seqs stay increasing and
 * the delivery cursor needs no rewind; its event id changes). Returns the
 * number requeued; unknown seqs are skipped. */
int  spool_dlq_requeue(spool *sp, const uint64_t *seqs, size_t n);
/* Deletes dead letters (seqs[n], or all when seqs is NULL), counted as
 * SPOOL_DROP_PURGED. Returns the number deleted. */
int  spool_dlq_purge(spool *sp, const uint64_t *seqs, size_t n);

/* ---- dictionaries ---- */
/* Stores dictionary id (immutable). Storing the same bytes again is a
 * no-op; different bytes under a stored id is SPOOL_EEXIST. Store a
 * dictionary before the first record that uses it is appended. */
int  spool_dict_put(spool *sp, uint32_t id, const void *buf, size_t len);
/* Copies a dictionary into a malloc'd buffer (*buf, *len; caller frees). */
int  spool_dict_get(spool *sp, uint32_t id, void **buf, size_t *len);
typedef struct spool_dict_info {
	uint32_t id;
	size_t   len;
	int64_t  stored_ns;
	uint64_t last_seq;          /* highest seq that used it (hooks.dict_id) */
} spool_dict_info;
typedef int spool_dict_fn(const spool_dict_info *d, void *user);
int  spool_dict_list(spool *sp, spool_dict_fn *cb, void *user);
/* Deletes dictionaries no record can need: its last_seq is below every
 * seq still in q or the dead-letter table, it is not the most recently
 * stored one, and a newer one was stored at least dict_gc_grace_ns ago
 * (records compressed with the old one may still be on their way to the
 * writer). Requires hooks.dict_id (else does nothing). now_ns 0 = clock.
 * Returns the number deleted. */
int  spool_dict_gc(spool *sp, int64_t now_ns);

/* ---- verification ---- */
typedef int spool_bad_fn(uint64_t seq, int in_dlq, const char *why, void *user);
#define SPOOL_VERIFY_DLQ_CORRUPT  1   /* move bad pending records to the DLQ */
/* Runs hooks.validate over every record in q and the dead-letter table, in
 * short read transactions of bounded size; cb (may be NULL) gets each bad
 * one. Returns the number of bad records. */
int  spool_verify(spool *sp, int flags, spool_bad_fn *cb, void *user);

/* ---- statistics (cost independent of the number of records) ---- */
typedef struct spool_stats {
	char     uuid[SPOOL_UUID_STR_LEN];
	uint32_t format_version;
	int64_t  created_ns;
	uint64_t next_seq;
	uint64_t cursor;            /* highest delivered seq */
	uint64_t records, bytes;    /* pending (seq > cursor) */
	uint64_t retained_records, retained_bytes;
	uint64_t first_seq;         /* oldest in q (retained or pending), 0 if empty */
	uint64_t first_pending_seq; /* 0 if none pending */
	uint64_t last_seq;          /* newest in q, 0 if empty */
	int64_t  first_pending_time_ns, last_time_ns;   /* hooks.time_ns, or -1 */
	uint64_t dlq_records, dlq_bytes;
	uint64_t dlq_by_reason[SPOOL_DLQ_NREASONS];
	uint64_t dicts;
	/* counters since creation */
	uint64_t accepted, delivered, pruned, dead_lettered, requeued;
	uint64_t dropped[SPOOL_DROP_NREASONS];
	/* configuration in effect */
	uint64_t max_size, dlq_max_bytes;
	int      full_policy, sync_mode;
	/* LMDB */
	uint64_t map_size, map_limit;
	uint64_t used_bytes;        /* (last page + 1) x page size */
	uint64_t file_bytes;        /* size of data.mdb */
	uint64_t free_pages;        /* pages in the free list (reusable) */
	uint32_t page_size;
	uint32_t readers_used, readers_max;
	int      space_state;       /* 0 ok, 1 map at its limit, 2 filesystem full */
	int      reserve_held;      /* the disk reserve file is allocated */
} spool_stats;
int  spool_stat(spool *sp, spool_stats *st);

/* The spool's UUID as text (event ids are "<uuid>-<seq>"). */
const char *spool_uuid(const spool *sp);
const char *spool_dir(const spool *sp);

#endif
