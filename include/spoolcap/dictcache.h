/* dictcache.h -- the spool's zstd dictionaries held in memory for decoding,
 * and the record-aware hooks the spool calls (dictionary id, capture time,
 * validation). Shared by the daemon (writer, replay) and the CLI.
 *
 * The cache only grows (dictionaries are immutable and few): lookups are
 * lock-free, additions take a mutex. */
#ifndef SPOOLCAP_DICTCACHE_H
#define SPOOLCAP_DICTCACHE_H

#include "spoolcap/record.h"
#include "spoolcap/spool.h"

#define DICTCACHE_MAX 256

typedef struct dictcache dictcache;

/* level: zstd level the daemon compresses at (dictionaries are digested
 * for it), or 0 for decode-only use (the CLI). */
dictcache *dictcache_new(int level);
void       dictcache_free(dictcache *dc);
/* Loads every dictionary stored in sp that is not cached yet (never from
 * inside a spool callback). Returns how many were added, or -1 with err. */
int        dictcache_load(dictcache *dc, spool *sp, char *err, size_t errlen);
/* Adds a dictionary (takes a new reference); 0, or -1 when full. */
int        dictcache_add(dictcache *dc, record_dict *d);
/* record_dict_lookup_fn over the cache; arg is the dictcache. */
const record_dict *dictcache_lookup(void *arg, uint32_t id);
/* The newest cached dictionary (highest id), or NULL; no new reference. */
record_dict *dictcache_newest(dictcache *dc);
/* Hooks for spool_config: dict_id and time_ns read the record header;
 * validate fully decodes the record with the cache's dictionaries. */
void       dictcache_hooks(dictcache *dc, spool_hooks *h);
/* Only the header hooks (dict_id, time_ns): what the daemon's spool needs. */
void       dictcache_header_hooks(spool_hooks *h);

#endif
