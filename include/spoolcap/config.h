/* config.h -- spoolcapd's settings: defaults, the INI file (-c FILE, read
 * with libinih) and command-line flags, which override the file.
 *
 * File sections and keys (see spoolcapd(8)):
 *   [agent] listen (repeatable, or several separated by spaces), threads,
 *           max-frame-size, max-connections, hello-timeout, idle-timeout,
 *           spooled-var
 *   [spool] dir, max-size, full-policy, durability, sync-interval,
 *           compression-level, dictionary, dictionary-size, dictionary-samples,
 *           commit-max-records, commit-max-bytes, commit-max-delay,
 *           queue-max-size, retain, retain-size, dlq-max-size
 *   [log]   level
 * Sizes take K/M/G suffixes (powers of 1024), durations ms/s/m/h (default s). */
#ifndef SPOOLCAP_CONFIG_H
#define SPOOLCAP_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "spoolcap/agent.h"

#define CFG_DEFAULT_LISTEN          "127.0.0.1:12345"
#define CFG_DEFAULT_MAX_FRAME_SIZE  (1u << 20)
#define CFG_DEFAULT_MAX_CONNECTIONS 4096
#define CFG_DEFAULT_HELLO_TIMEOUT   5.0
#define CFG_DEFAULT_SPOOL_DIR       "/var/lib/spoolcap"
#define CFG_DEFAULT_SPOOLED_VAR     "spooled"



/* [spool] durability: when an ACK is sent and what it survives. */
enum cfg_durability {
	CFG_DUR_PROCESS = 0,   /* default: after commit, no fsync; survives kill -9 */
	CFG_DUR_RELAXED,       /* after commit + one flush; power loss may undo the last commit */
	CFG_DUR_DURABLE,       /* after commit + full fsync; survives power loss */
	CFG_DUR_RECEIPT        /* on receipt, before the commit; a crash loses the queue */
};
typedef struct cfg {
	char   **listen;            /* owned strings */
	size_t   nlisten;
	unsigned threads;           /* 0 = one per online CPU */
	uint32_t max_frame_size;
	unsigned max_connections;
	double   hello_timeout;     /* s */
	double   idle_timeout;      /* s, 0 = off */
	char    *spooled_var;       /* NULL = ACKs unset txn "_" */
	int      spooled_var_set;   /* given explicitly (else "spooled" with a spool) */
	int      log_level;         /* enum log_level */

	/* [spool] */
	char    *spool_dir;         /* NULL = CFG_DEFAULT_SPOOL_DIR; "none" = count only */
	uint64_t max_size;
	int      full_policy;       /* enum spool_full_policy */
	int      durability;        /* enum cfg_durability */
	double   sync_interval;     /* s */
	int      compression_level; /* 0 = store raw */
	int      dictionary;        /* 1 on, 0 off */
	uint64_t dictionary_size;
	unsigned dictionary_samples;
	unsigned commit_max_records;
	uint64_t commit_max_bytes;
	double   commit_max_delay;  /* s */
	uint64_t queue_max_size;
	double   retain;            /* s, 0 = delete on delivery */
	uint64_t retain_size;       /* 0 = not by size */
	uint64_t dlq_max_size;      /* 0 = a quarter of max_size */

	char    *config_file;       /* -c FILE, NULL if none */
	int      foreground;
	int      check;             /* --check: print effective config, exit */
	int      show_help, show_version;
} cfg;

const char *cfg_durability_name(int d);
/* 1 when spooling is on (dir is not "none"). */
int cfg_spooling(const cfg *c);
/* The txn variable ACKs set, or NULL (default: "spooled" when spooling). */
const char *cfg_spooled_var(const cfg *c);

void cfg_init(cfg *c);
void cfg_free(cfg *c);
/* Parses argv (flags), loads -c FILE if given, then applies the flags over
 * it. Returns 0, or -1 with a message naming the flag or FILE:LINE in err. */
int  cfg_load(cfg *c, int argc, char **argv, char *err, size_t errlen);
/* Loads one INI file over c (used by cfg_load; exposed for tests). */
int  cfg_load_file(cfg *c, const char *path, char *err, size_t errlen);
/* The effective configuration as an INI file (--check). */
void cfg_print(const cfg *c, FILE *f);
void cfg_usage(FILE *f);
/* Fills an agent_config that points into c (c must outlive its use). */
void cfg_agent(const cfg *c, agent_config *ac);

/* Value parsers (exposed for tests). Return 0, or -1 with err filled. */
int cfg_parse_size(const char *s, uint64_t *out, char *err, size_t errlen);
int cfg_parse_duration(const char *s, double *out, char *err, size_t errlen);
int cfg_parse_uint(const char *s, uint64_t *out, char *err, size_t errlen);

#endif
