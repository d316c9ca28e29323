/* spool_sink.h -- the sink that makes an ACK mean "on disk".
 *
 * I/O threads encode and compress each message of a NOTIFY into a record
 * (one reusable compression context per thread) and queue one job per
 * NOTIFY for the writer. The writer thread takes everything queued since
 * its last commit (bounded by records and bytes), appends it in ONE LMDB
 * transaction (group commit), and only then completes each job, which is
 * when the agent sends the ACK. A quiet agent therefore commits each
 * NOTIFY at once; a busy one commits hundreds together.
 *
 * The queue between them is bounded in bytes: when the writer falls that
 * far behind (a stalled disk), new NOTIFYs are ACKed at once as not spooled
 * and counted (capture never back-pressures HAProxy).
 *
 * A background thread trains a zstd dictionary from the first messages,
 * stores it in the spool, and only then makes it current.
 *
 * Redaction (redact.h), when configured, rewrites each message on the I/O
 * thread before it is encoded: neither the records nor the dictionary's
 * training samples ever hold what it removes. */
#ifndef SPOOLCAP_SPOOL_SINK_H
#define SPOOLCAP_SPOOL_SINK_H

#include <stdint.h>
#include "spoolcap/redact.h"
#include "spoolcap/sink.h"
#include "spoolcap/spool.h"

enum spool_ack_mode {
	SPOOL_ACK_COMMIT  = 0,   /* default: ACK after the commit returns */
	SPOOL_ACK_RECEIPT = 1    /* opt-in: ACK on receipt; a crash loses the queue */
};

typedef struct spool_sink_config {
	unsigned workers;            /* I/O threads (one compression context each) */
	int      level;              /* zstd level; 0 stores payloads raw */
	int      ack_mode;           /* enum spool_ack_mode */
	unsigned commit_max_records; /* default 1024 */
	size_t   commit_max_bytes;   /* default 4 MiB */
	double   commit_max_delay;   /* s to wait for more before committing; default 0 */
	double   sync_interval;      /* s between background syncs (process mode); default 1 */
	size_t   queue_max_bytes;    /* default 64 MiB */
	int      dict;               /* train a dictionary (default on; -1 = off) */
	unsigned dict_samples;       /* messages to train on; default 4000 */
	size_t   dict_size;          /* dictionary capacity; default 64 KiB */
	int      sync_mode;          /* the spool's enum spool_sync_mode */
	/* Redaction rules (read during spool_sink_new only); NULL, or rules
	 * that never change a message, cost nothing per message. */
	const redact_config *redact;
	/* Called (from the writer or sync thread) on a fatal spool error; the
	 * daemon should stop and exit non-zero. */
	void   (*fatal)(void *arg, const char *msg);
	void    *fatal_arg;
} spool_sink_config;

typedef struct spool_sink_stats {
	uint64_t notifies, messages;
	uint64_t records_spooled;
	uint64_t dropped_queue_full;     /* writer too far behind */
	uint64_t dropped_encode;         /* message could not be encoded */
	uint64_t dropped_spool;          /* the spool's full policy / disk full */
	uint64_t commits, commit_records;
	uint64_t commit_ns_total, commit_ns_max;
	uint64_t raw_bytes, stored_bytes;          /* everything encoded */
	uint64_t raw_bytes_dict, stored_bytes_dict; /* of which with a dictionary */
	uint64_t queue_bytes;                      /* now */
	uint32_t dict_id;                          /* current, 0 = none */
	uint64_t syncs, sync_ns_max;
	redact_stats redact;                       /* all zero without redaction */
} spool_sink_stats;

/* sp stays owned by the caller and must outlive the sink. */
sink *spool_sink_new(spool *sp, const spool_sink_config *c, char *err, size_t errlen);
void  spool_sink_get_stats(sink *s, spool_sink_stats *st);

#endif
