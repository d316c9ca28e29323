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
 *   [forward] url, batch-events, batch-bytes, linger, max-inflight,
 *           connect-timeout, timeout, low-speed-limit, low-speed-time,
 *           backoff-base, backoff-cap, compression, compression-level,
 *           header (repeatable), header-file (repeatable), ca-file, ca-dir,
 *           client-cert, client-key, insecure, persistent-5xx-attempts,
 *           persistent-5xx-age, stop-timeout
 *   [capture] redact-headers, header-action (repeatable), hash-key-file,
 *           header-args, body-args, body-max, body-drop (redaction before
 *           storing: see redact.h)
 *   [metrics] listen (HOST:PORT of the Prometheus/probe endpoint; none = off)
 *   [log]   level, target (stderr | syslog), facility (syslog facility),
 *           rate-limit (lines per call site per 10 s; 0 = off)
 * Sizes take K/M/G suffixes (powers of 1024), durations ms/s/m/h (default s).
 *
 * Secrets: header values are kept in memory only (header-file values are
 * read when the configuration is loaded), never printed by cfg_print, and
 * wiped by cfg_free. */
#ifndef SPOOLCAP_CONFIG_H
#define SPOOLCAP_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "spoolcap/agent.h"
#include "spoolcap/redact.h"
#include "spoolcap/replay.h"

#define CFG_DEFAULT_LISTEN          "127.0.0.1:12345"
#define CFG_DEFAULT_MAX_FRAME_SIZE  (1u << 20)
#define CFG_DEFAULT_MAX_CONNECTIONS 4096
#define CFG_DEFAULT_HELLO_TIMEOUT   5.0
#define CFG_DEFAULT_SPOOL_DIR       "/var/lib/spoolcap"
#define CFG_DEFAULT_SPOOLED_VAR     "spooled"
#define CFG_HEADERS_MAX             64          /* [forward] header + header-file */
#define CFG_HEADER_VALUE_MAX        16384       /* bytes of one header value */
#define CFG_REDACTED                "<redacted>"

/* [spool] durability: when an ACK is sent and what it survives. */
enum cfg_durability {
	CFG_DUR_PROCESS = 0,   /* default: after commit, no fsync; survives kill -9 */
	CFG_DUR_RELAXED,       /* after commit + one flush; power loss may undo the last commit */
	CFG_DUR_DURABLE,       /* after commit + full fsync; survives power loss */
	CFG_DUR_RECEIPT        /* on receipt, before the commit; a crash loses the queue */
};

/* A list setting of words ([capture]); set = given, even as "none". */
typedef struct cfg_words {
	char   **v;
	size_t   n;
	int      set;
} cfg_words;

/* One extra request header of [forward]. */
typedef struct cfg_header {
	char   *line;               /* "Name: value" (the value is secret) */
	size_t  name_len;
	char   *file;               /* header-file: the path it was read from;
	                             * NULL for an inline header */
} cfg_header;

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
	int      log_target;        /* enum log_target */
	int      log_facility;      /* syslog LOG_xxx facility */
	unsigned log_rate_limit;    /* lines per call site per LOG_RATE_WINDOW; 0 = off */
	char    *metrics_listen;    /* [metrics] listen; NULL = no endpoint */

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

	/* [forward] (delivery; see replay.h for what each does) */
	char    *forward_url;       /* NULL = spool only */
	unsigned fwd_batch_events;
	uint64_t fwd_batch_bytes;
	double   fwd_linger;        /* s */
	unsigned fwd_max_inflight;
	double   fwd_connect_timeout; /* s */
	double   fwd_timeout;       /* s, the whole exchange */
	uint64_t fwd_low_speed_limit; /* bytes/s ... */
	double   fwd_low_speed_time;  /* ... for this long (whole seconds) */
	double   fwd_backoff_base, fwd_backoff_cap; /* s */
	int      fwd_compression;   /* enum replay_compress */
	int      fwd_compression_level; /* 0 = the codec's default */
	cfg_header *fwd_headers;
	size_t   fwd_nheaders;
	const char **fwd_header_lines; /* the fwd_headers' lines, for replay_config */
	char    *fwd_ca_file, *fwd_ca_dir, *fwd_client_cert, *fwd_client_key;
	int      fwd_insecure;
	unsigned fwd_p5xx_attempts; /* 0 = never dead-letter for persistent 5xx */
	double   fwd_p5xx_age;      /* s */
	double   fwd_stop_timeout;  /* s SIGTERM lets POSTs in flight finish */

	/* [capture] (redaction before storing; see redact.h) */
	cfg_words    cap_redact_headers;  /* not set: REDACT_DEFAULT_HEADERS */
	redact_rule *cap_rules;           /* header-action; names owned */
	size_t       cap_nrules;
	char        *cap_hash_key_file;
	uint8_t     *cap_hash_key;        /* the file's bytes: secret, wiped */
	size_t       cap_hash_key_len;
	cfg_words    cap_header_args;     /* not set: redact.h's defaults */
	cfg_words    cap_body_args;
	int          cap_has_body_max;
	uint64_t     cap_body_max;
	cfg_words    cap_body_drop;

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
/* Parses argv (flags), loads -c FILE if given, applies the flags over it,
 * then cfg_check. Returns 0, or -1 with a message naming the flag or
 * FILE:LINE in err. */
int  cfg_load(cfg *c, int argc, char **argv, char *err, size_t errlen);
/* Loads one INI file over c (used by cfg_load; exposed for tests). */
int  cfg_load_file(cfg *c, const char *path, char *err, size_t errlen);
/* Checks that need several settings (after the file and the flags):
 * forwarding needs a spool, client-key needs client-cert, backoff-base
 * <= backoff-cap, the compression level fits the codec. 0, or -1 + err. */
int  cfg_check(const cfg *c, char *err, size_t errlen);
/* 1 when delivery is on (a forward URL is set). */
int  cfg_forwarding(const cfg *c);
/* The effective configuration as an INI file (--check). Header values are
 * printed as CFG_REDACTED (loading that back is refused), the password of
 * a URL too. */
void cfg_print(const cfg *c, FILE *f);
void cfg_usage(FILE *f);
/* Fills an agent_config that points into c (c must outlive its use). */
void cfg_agent(const cfg *c, agent_config *ac);
/* Fills a redact_config that points into c (c must outlive its use). */
void cfg_redact(const cfg *c, redact_config *rc);
/* Fills a replay_config that points into c (c must outlive its use). */
void cfg_replay(const cfg *c, replay_config *rc);
/* url with the password of its user info (or the whole user info when it
 * has no ':') replaced by CFG_REDACTED, for logs; always NUL-terminated. */
void cfg_url_redacted(const char *url, char *out, size_t outlen);
/* "none", "gzip", "zstd" (the enum replay_compress names), or "?". */
const char *cfg_compression_name(int c);

/* Value parsers (exposed for tests). Return 0, or -1 with err filled. */
int cfg_parse_size(const char *s, uint64_t *out, char *err, size_t errlen);
int cfg_parse_duration(const char *s, double *out, char *err, size_t errlen);
int cfg_parse_uint(const char *s, uint64_t *out, char *err, size_t errlen);

#endif
