/* redact.h -- privacy rules applied to each SPOE message before it is
 * encoded into a record, so that what never should be stored never touches
 * the disk (nor the dictionary trained from stored records).
 *
 * What it does to one message (a LIST-OF-MESSAGES item, ref §1.7):
 *   - Header blocks: an argument whose name matches header_args ("*hdrs",
 *     "*headers" by default, as event.h renders them) and holds either
 *     HAProxy's binary encoding (req.hdrs_bin / res.hdrs_bin: varint-length
 *     name and value pairs ended by 00 00) or the text form (req.hdrs:
 *     "name: value" lines ending in CRLF or LF, then an empty line). Each
 *     header whose name (ASCII case-insensitive) has a rule gets its action:
 *       redact  the value becomes REDACT_MARKER ("<redacted>")
 *       drop    the header is removed
 *       hash    the value becomes "hmac:" + 32 hex digits: HMAC-SHA256 keyed
 *               with the hash key over the value bytes, cut to 128 bits.
 *               Equal values give equal hashes under one key, so events can
 *               be joined on them without revealing them
 *       keep    stored as received
 *     Fail closed: a block that parses as neither form (truncated, trailing
 *     bytes, obs-fold continuation lines, a line without ':'...) is replaced
 *     by REDACT_FAILED_MARKER and counted; never stored as received.
 *   - Bodies: an argument whose name matches body_args ("*body" by default)
 *     holding a STRING or BINARY is cut to body_max bytes (at a UTF-8
 *     character boundary when the cut falls inside one: at most 3 bytes
 *     less), or becomes NULL when the message's name is in body_drop.
 * Everything else is kept byte for byte. The result is re-encoded as one
 * valid SPOP message with the same name, argument count, argument names,
 * order and types (a dropped body is NULL), so every reader decodes it
 * unchanged. The output is never longer than the input plus
 * REDACT_GROWTH_MAX: a header block whose rewrite would exceed that (hashes
 * are longer than very short values) fails closed instead.
 *
 * Threads: redact_rules is immutable once built; share it. A redact_ctx
 * (HMAC state, output buffer, counters) belongs to one thread; its
 * counters may be read from any thread with redact_ctx_stats. */
#ifndef SPOOLCAP_REDACT_H
#define SPOOLCAP_REDACT_H

#include <stddef.h>
#include <stdint.h>
#include "spoolcap/spop.h"

#define REDACT_MARKER         "<redacted>"
#define REDACT_FAILED_MARKER  "<redacted: unparsable header block>"
#define REDACT_HASH_PREFIX    "hmac:"
#define REDACT_HASH_LEN       37          /* "hmac:" + 32 hex digits */
#define REDACT_GROWTH_MAX     4096        /* output <= input + this */
#define REDACT_KEY_MIN        16          /* hash key bytes, at least... */
#define REDACT_KEY_MAX        1024        /* ...and at most */
#define REDACT_RULES_MAX      256         /* header names with a rule */
#define REDACT_NAME_MAX       255         /* HTX header names are <= 255 */

/* The default list redacted with the marker when the configuration does
 * not name one (redact_config.headers == NULL). */
#define REDACT_DEFAULT_HEADERS "authorization", "proxy-authorization", "cookie", "set-cookie"

enum redact_action {
	REDACT_KEEP = 0,
	REDACT_REDACT,
	REDACT_DROP,
	REDACT_HASH
};

/* One per-header rule (configuration: header-action = NAME:ACTION). */
typedef struct redact_rule {
	const char *name;
	int         action;           /* enum redact_action */
} redact_rule;

/* What the configuration says; pointers are only read by redact_new.
 * A zeroed struct means the defaults: the default header list redacted,
 * default argument patterns, no body cap, no body dropped. */
typedef struct redact_config {
	/* Header names to redact with the marker; NULL: REDACT_DEFAULT_HEADERS,
	 * non-NULL with nheaders 0: none. */
	const char *const *headers;
	size_t nheaders;
	/* Per-header actions; they override headers (the last rule for a name
	 * wins). "keep" takes a name off the list. */
	const redact_rule *rules;
	size_t nrules;
	/* The HMAC key for "hash" (REDACT_KEY_MIN..REDACT_KEY_MAX bytes);
	 * required when a rule hashes. */
	const uint8_t *hash_key;
	size_t hash_key_len;
	/* Argument name patterns as in event_opts: "*suffix" or a whole name,
	 * ASCII case-insensitive. NULL: the defaults ("*hdrs", "*headers" and
	 * "*body"); non-NULL with n = 0: no argument matches. */
	const char *const *header_args;
	size_t nheader_args;
	const char *const *body_args;
	size_t nbody_args;
	int      has_body_max;        /* cap bodies at body_max bytes (0: empty) */
	uint64_t body_max;
	/* Message names (exact) whose bodies become NULL; "*" means every one. */
	const char *const *body_drop;
	size_t nbody_drop;
} redact_config;

typedef struct redact_rules redact_rules;

/* Compiles c. Returns 0 and *out, which is NULL when the rules would never
 * change a message (no header rule, no body cap, no body drop): callers
 * then skip redaction entirely. Returns -1 and a message in err for a bad
 * configuration (a hash rule without a key, a bad name...). */
int  redact_new(const redact_config *c, redact_rules **out, char *err, size_t errlen);
void redact_free(redact_rules *r);
/* One line for logs: "headers authorization:redact cookie:hash ...;
 * bodies capped at 4096 bytes; bodies dropped in cap-res". */
void redact_describe(const redact_rules *r, char *buf, size_t len);

/* Counters, summed over contexts by redact_ctx_stats. */
typedef struct redact_stats {
	uint64_t messages_changed;    /* messages stored differently from received */
	uint64_t headers_redacted;
	uint64_t headers_dropped;
	uint64_t headers_hashed;
	uint64_t bodies_capped;
	uint64_t bodies_dropped;
	uint64_t blocks_failed;       /* header blocks replaced by REDACT_FAILED_MARKER */
} redact_stats;

typedef struct redact_ctx redact_ctx;
/* r must outlive the context. NULL + err on failure (no memory, the
 * crypto library cannot set up HMAC-SHA256). */
redact_ctx *redact_ctx_new(const redact_rules *r, char *err, size_t errlen);
void        redact_ctx_free(redact_ctx *x);
/* Adds x's counters into *st (call with a zeroed st to read one). */
void        redact_ctx_stats(const redact_ctx *x, redact_stats *st);

/* Flags of redact_msg's result. */
#define REDACT_CHANGED    1           /* *out points into the context */
#define REDACT_TRUNCATED  2           /* a body was cut (RECORD_F_TRUNCATED) */

/* Applies the rules to message m (from spop_msg_next). *out and *outlen
 * get the bytes to store: m->raw itself when nothing changes (result 0),
 * else a re-encoded message in the context's buffer, valid until its next
 * call (result has REDACT_CHANGED). Returns the flags, or -1 when out of
 * memory: the caller must then store nothing of this message. */
int redact_msg(redact_ctx *x, const spop_msg *m, const uint8_t **out, size_t *outlen);

#endif
