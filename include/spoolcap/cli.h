/* cli.h -- pieces shared by the spoolcap subcommands (src/cli_*.c): opening
 * a spool for inspection, decoding records, and formatting. Subcommands
 * print their own errors (this is the program's edge) and return an exit
 * status: 0 ok, 1 a problem found in the data, 2 usage or environment. */
#ifndef SPOOLCAP_CLI_H
#define SPOOLCAP_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "spoolcap/dictcache.h"
#include "spoolcap/json.h"
#include "spoolcap/record.h"
#include "spoolcap/spool.h"

#define CLI_EXIT_OK    0
#define CLI_EXIT_DATA  1
#define CLI_EXIT_USAGE 2

typedef struct cli_spool {
	spool       *sp;
	dictcache   *dc;
	record_dctx *dctx;
	record_buf   raw;
	const char  *dir;
} cli_spool;

/* Opens dir (mode: SPOOL_MODE_READONLY or SPOOL_MODE_CLIENT) and loads its
 * dictionaries; prints a message and returns -1 on failure. */
int  cli_open(cli_spool *c, const char *dir, enum spool_mode mode);
void cli_close(cli_spool *c);

/* Decodes a stored record into a view (pointing into c->raw). On failure
 * returns a negative record error and fills why. */
int  cli_decode(cli_spool *c, const void *val, size_t len, record_view *v,
                char *why, size_t whylen);

/* "3m12s", "2h05m", "4d03h" for a duration in ns (>= 0). */
void cli_fmt_age(char *out, size_t len, int64_t ns);
/* "1.5 MiB" style. */
void cli_fmt_bytes(char *out, size_t len, uint64_t n);
/* Parses an unsigned decimal option value; prints and returns -1 if bad. */
int  cli_parse_u64(const char *opt, const char *s, uint64_t *out);

int cli_stat(int argc, char **argv);
int cli_ls(int argc, char **argv);         /* cli_ls.c */
int cli_cat(int argc, char **argv);        /* cli_cat.c */
int cli_dump(int argc, char **argv);
int cli_export(int argc, char **argv);     /* cli_export.c: NDJSON, HAR */
int cli_replay(int argc, char **argv);     /* cli_replay.c: replay --to / --requests */
int cli_dlq(int argc, char **argv);
int cli_verify(int argc, char **argv);
int cli_compact(int argc, char **argv);
int cli_purge(int argc, char **argv);
int cli_probe(int argc, char **argv);

#endif
