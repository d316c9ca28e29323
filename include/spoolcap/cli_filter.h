/* cli_filter.h -- the record filters of spoolcap's read-side subcommands
 * (ls, dump, export, replay) and the walk that applies them.
 *
 * Options (every subcommand that lists events takes the same ones):
 *   --from SEQ, --to SEQ      sequence numbers, both inclusive
 *   --since TIME, --until T   capture time, since <= t < until; RFC 3339
 *                             (2026-11-26T08:00:00Z, ...+01:00, a date
 *                             alone is its midnight UTC) or an age: 10m,
 *                             2h, 3d, 1w, 1h30m (that long before now)
 *   --message NAME            the spoe-message name, exactly
 *   --match ARG=VALUE         an argument's value as text, exactly;
 *   --match ARG~TEXT          ... or containing TEXT; ARG.HEADER looks
 *                             inside a header-block argument (hdrs.host);
 *                             repeatable: all must hold
 *   --limit N                 at most N matching records
 *   --state LIST              pending, delivered, dead, all, or a comma
 *                             list; the default is the subcommand's
 *
 * The walk copies records out of LMDB in bounded batches (one short read
 * transaction each, like recbatch) and calls back outside any transaction,
 * so a callback may print, block or call spool functions. Sequence bounds
 * and --state position the LMDB cursor; time bounds are checked on the
 * 24-byte record header inside the transaction (nothing else is copied or
 * decompressed) and also narrow the scan by a binary search over header
 * times, which assumes capture time grows with seq to within
 * CLI_FILTER_TIME_SLACK_NS (the writer commits in arrival order). A spool
 * where dead letters were ever requeued (they keep their capture time
 * under a new seq) is scanned without that narrowing, so the result stays
 * exact. --message and --match need the decoded record. */
#ifndef SPOOLCAP_CLI_FILTER_H
#define SPOOLCAP_CLI_FILTER_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "spoolcap/cli.h"

/* Record states, as bits of cli_filter.states and values of cli_rec.state. */
#define CLI_STATE_PENDING    1u     /* not delivered yet (seq > cursor) */
#define CLI_STATE_DELIVERED  2u     /* delivered, kept by retention */
#define CLI_STATE_DEAD       4u     /* in the dead-letter table */
#define CLI_STATE_ALL        7u

#define CLI_FILTER_MATCH_MAX    32
#define CLI_FILTER_TIME_SLACK_NS (60 * (int64_t)1000000000)

/* getopt_long values of the filter options (above any short option). */
enum cli_filter_opt {
	CLI_FILTER_OPT_FROM = 0x1000,
	CLI_FILTER_OPT_TO,
	CLI_FILTER_OPT_SINCE,
	CLI_FILTER_OPT_UNTIL,
	CLI_FILTER_OPT_MESSAGE,
	CLI_FILTER_OPT_MATCH,
	CLI_FILTER_OPT_LIMIT,
	CLI_FILTER_OPT_STATE,
	CLI_FILTER_OPT_END
};
#define CLI_FILTER_NOPTS (CLI_FILTER_OPT_END - CLI_FILTER_OPT_FROM)

/* One --match. Strings point into argv. */
typedef struct cli_match {
	const char *arg;            /* the whole ARG */
	size_t      arg_len;
	size_t      prefix_len;     /* ARG up to its first '.', or arg_len */
	const char *hdr;            /* after that '.': a header name, or NULL */
	size_t      hdr_len;
	const char *value;
	size_t      value_len;
	int         substring;      /* ARG~TEXT */
} cli_match;

typedef struct cli_filter {
	const char *prog;           /* "spoolcap ls": starts every message */
	uint64_t    from, to;       /* inclusive; to 0: no upper bound */
	int64_t     since_ns, until_ns;
	int         has_since, has_until;
	const char *message;        /* NULL: any */
	cli_match   match[CLI_FILTER_MATCH_MAX];
	unsigned    nmatch;
	uint64_t    limit;          /* 0: none */
	unsigned    states;         /* CLI_STATE_* bits */
	int64_t     now_ns;         /* "now" for relative times; 0 = the clock */
} cli_filter;

/* No bounds, every record of the given states (the subcommand's default:
 * CLI_STATE_ALL for ls, CLI_STATE_PENDING | CLI_STATE_DELIVERED for dump
 * and export). prog prefixes error messages. */
void cli_filter_init(cli_filter *f, const char *prog, unsigned default_states);

/* A getopt_long table: the subcommand's own options (own, ended by a zero
 * entry) then the filter options, into out (room for cap entries; the
 * own ones + CLI_FILTER_NOPTS + 1 is enough). Returns out, or NULL when
 * cap is too small. */
struct option *cli_filter_longopts(const struct option *own, struct option *out,
                                   size_t cap);

/* Applies one option returned by getopt_long: 1 when it was a filter
 * option, 0 when it is not one (the caller handles it), -1 when its value
 * is bad (a message naming the option was printed: exit 2). */
int  cli_filter_add_opt(cli_filter *f, int opt, const char *arg);

/* After the options: rejects contradictions (--from above --to, --since
 * not before --until). 0, or -1 with a message printed. */
int  cli_filter_check(const cli_filter *f);

/* The filter options' lines for --help; default_state says what --state
 * defaults to for this subcommand (e.g. "pending,delivered"). */
void cli_filter_usage(FILE *out, const char *default_state);

/* Parses a --since/--until value: RFC 3339 with Z or an offset, a date
 * alone (midnight UTC), or an age (10m, 2h, 3d, 1w, 1h30m, 45s) before
 * now_ns. 0, or -1 with a reason in err. */
int  cli_filter_parse_time(const char *s, int64_t now_ns, int64_t *out,
                           char *err, size_t errlen);

/* "pending", "delivered", "dead". */
const char *cli_state_name(unsigned state);

/* One record as the walk gives it. Everything points into buffers that
 * stay valid until the callback returns. */
typedef struct cli_rec {
	uint64_t           seq;
	unsigned           state;       /* one CLI_STATE_* bit */
	const uint8_t     *stored;      /* the record as stored (header + payload) */
	size_t             stored_len;
	int                hdr_ok;      /* hdr parsed (size, time, dictionary) */
	record_hdr         hdr;
	int                err;         /* 0, or why the record does not decode: */
	const char        *why;         /* a sentence; "" when err is 0 */
	const record_view *view;        /* the decoded record; NULL when err */
	const spool_dlq_info *dlq;      /* dead letters: reason, status...; else NULL */
	int64_t            dead_ns;     /* dead letters: when */
} cli_rec;

/* Return 0 to go on, nonzero to stop the walk. */
typedef int cli_rec_fn(cli_spool *c, const cli_rec *r, void *user);

/* Calls cb for every record matching f, in seq order (queue and dead
 * letters merged). A record that does not decode is given with err set
 * (it cannot be checked against --message/--match) and does not count
 * towards --limit. Returns 0 when the walk is complete (or the limit
 * reached), 1 when cb stopped it, or a negative spool error
 * (spool_errmsg(), or SPOOL_ENOMEM). */
int  cli_filter_iterate(cli_spool *c, const cli_filter *f, cli_rec_fn *cb, void *user);

/* Whether a decoded record passes --message and --match (the walk uses it;
 * exported for callers with records from elsewhere). */
int  cli_filter_match(const cli_filter *f, const record_view *v);

/* The first argument called name (name "argN" also finds the N-th argument
 * when it has no name, as the event JSON calls it). 1 found, 0 not. */
int  cli_rec_arg(const record_view *v, const char *name, size_t len, spop_data *val);

/* An argument value as text (what --match compares and ls prints): the
 * bytes of a string or binary, decimal numbers, true/false, addresses as
 * inet_ntop writes them. tmp (>= 48 bytes) holds the text when it is not
 * in the record. Returns 0, or -1 for null. */
int  cli_value_text(const spop_data *v, char *tmp, size_t tmplen,
                    const uint8_t **p, size_t *n);

#endif
