/* cli_out.h -- where spoolcap subcommands write files: standard output
 * ("-") or a file replaced atomically (a temporary file in the same
 * directory, flushed to disk, then renamed over the target, so a reader
 * never sees half an export and a failed one leaves the old file alone),
 * optionally zstd-compressed on the fly (libzstd streaming, checksummed
 * frames that `zstd -d` reads). Functions print their own errors (the
 * program's edge), prefixed with the subcommand's name. */
#ifndef SPOOLCAP_CLI_OUT_H
#define SPOOLCAP_CLI_OUT_H

#include <stddef.h>
#include <stdio.h>

typedef struct cli_out {
	const char *prog;
	const char *path;           /* the target; NULL for standard output */
	char       *tmp;            /* the temporary file while writing */
	FILE       *f;
	void       *zc;             /* ZSTD_CCtx, when compressing */
	unsigned char *zbuf;
	size_t      zcap;
	int         failed;         /* a write failed (already reported) */
} cli_out;

#define CLI_OUT_PLAIN 0
#define CLI_OUT_ZSTD  1
#define CLI_OUT_AUTO  (-1)      /* zstd when path ends in ".zst" */

/* path "-" is standard output. The file is created with mode 0600 (it
 * holds captured traffic). 0, or -1 with a message printed. */
int  cli_out_open(cli_out *o, const char *prog, const char *path, int compress);
/* 0, or -1 once a write failed (reported once; later calls do nothing). */
int  cli_out_write(cli_out *o, const void *p, size_t n);
/* Ends the output: the last zstd block, flush, fsync, rename into place.
 * 0, or -1 (reported; the temporary file is removed). */
int  cli_out_close(cli_out *o);
/* Gives up: removes the temporary file, the target is untouched. */
void cli_out_abort(cli_out *o);

/* 1 if path names a zstd file (ends in ".zst"). */
int  cli_out_is_zst(const char *path);
/* Refuses binary output to a terminal: 0 when standard output is not
 * one, else prints why (naming what) and returns -1. */
int  cli_out_binary_ok(const char *prog, const char *what);

/* Pretty-prints one JSON value (our own output: valid JSON) with two-space
 * indentation; arrays holding only scalars stay on one line ("hdrs" pairs
 * read best that way). Appends to out, no trailing newline. Returns 0, or
 * -1 when out could not grow (nothing is half-written: out is rolled back). */
struct json_buf;
int  cli_json_pretty(struct json_buf *out, const char *in, size_t n);

#endif
