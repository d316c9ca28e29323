/* cli_out.c -- output files of spoolcap subcommands: standard output or an
 * atomically replaced file, optionally zstd-compressed (see cli_out.h). */
#include "config.h"

#include "spoolcap/cli_out.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define ZSTD_LEVEL 3

int cli_out_is_zst(const char *path)
{
	size_t n = strlen(path);

	return n > 4 && strcmp(path + n - 4, ".zst") == 0;
}

int cli_out_binary_ok(const char *prog, const char *what)
{
	if (!isatty(STDOUT_FILENO))
		return 0;
	fprintf(stderr, "%s: refusing to write %s to a terminal; redirect it to a file "
	        "(> FILE) or a pipe\n", prog, what);
	return -1;
}

/* DIR/.NAME.XXXXXX next to path, so rename() stays on one filesystem. */
static char *tmp_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
	size_t n = strlen(path) + 16;
	char *t = malloc(n);

	if (t)
		snprintf(t, n, "%.*s.%s.XXXXXX", (int)dlen, path, path + dlen);
	return t;
}

int cli_out_open(cli_out *o, const char *prog, const char *path, int compress)
{
	struct stat st;
	int fd;

	memset(o, 0, sizeof *o);
	o->prog = prog;
	if (compress == CLI_OUT_AUTO)
		compress = strcmp(path, "-") != 0 && cli_out_is_zst(path);
	if (strcmp(path, "-") == 0) {
		o->f = stdout;
	} else {
		size_t n = strlen(path);

		if (n == 0 || path[n - 1] == '/') {
			fprintf(stderr, "%s: '%s' is not a file name\n", prog, path);
			return -1;
		}
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			fprintf(stderr, "%s: %s is a directory; name a file in it\n", prog, path);
			return -1;
		}
		o->path = path;
		if (!(o->tmp = tmp_name(path))) {
			fprintf(stderr, "%s: out of memory\n", prog);
			return -1;
		}
		fd = mkstemp(o->tmp);
		if (fd < 0) {
			fprintf(stderr, "%s: cannot create a file next to %s: %s (does the "
			        "directory exist, and may you write there?)\n", prog, path,
			        strerror(errno));
			free(o->tmp);
			o->tmp = NULL;
			return -1;
		}
		if (!(o->f = fdopen(fd, "w"))) {
			close(fd);
			cli_out_abort(o);
			fprintf(stderr, "%s: out of memory\n", prog);
			return -1;
		}
	}
	if (compress) {
		ZSTD_CCtx *z = ZSTD_createCCtx();

		o->zcap = ZSTD_CStreamOutSize();
		o->zbuf = malloc(o->zcap);
		if (!z || !o->zbuf ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, ZSTD_LEVEL)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_checksumFlag, 1))) {
			ZSTD_freeCCtx(z);
			fprintf(stderr, "%s: cannot set up zstd compression (out of memory)\n", prog);
			cli_out_abort(o);
			return -1;
		}
		o->zc = z;
	}
	return 0;
}

static int fail(cli_out *o, const char *what)
{
	if (!o->failed)
		fprintf(stderr, "%s: cannot write %s: %s\n", o->prog,
		        o->path ? o->path : "the output", what);
	o->failed = 1;
	return -1;
}

/* Runs the compressor over in with the given end directive, writing what
 * it produces. */
static int zpush(cli_out *o, const void *p, size_t n, ZSTD_EndDirective end)
{
	ZSTD_inBuffer in = { p, n, 0 };

	for (;;) {
		ZSTD_outBuffer out = { o->zbuf, o->zcap, 0 };
		size_t left = ZSTD_compressStream2(o->zc, &out, &in, end);

		if (ZSTD_isError(left))
			return fail(o, ZSTD_getErrorName(left));
		if (out.pos && fwrite(o->zbuf, 1, out.pos, o->f) != out.pos)
			return fail(o, strerror(errno));
		if (end == ZSTD_e_end ? left == 0 : in.pos == in.size)
			return 0;
	}
}

int cli_out_write(cli_out *o, const void *p, size_t n)
{
	if (o->failed)
		return -1;
	if (n == 0)
		return 0;
	if (o->zc)
		return zpush(o, p, n, ZSTD_e_continue);
	if (fwrite(p, 1, n, o->f) != n)
		return fail(o, strerror(errno));
	return 0;
}

static void release(cli_out *o)
{
	ZSTD_freeCCtx(o->zc);
	o->zc = NULL;
	free(o->zbuf);
	o->zbuf = NULL;
	free(o->tmp);
	o->tmp = NULL;
}

int cli_out_close(cli_out *o)
{
	if (!o->failed && o->zc)
		zpush(o, "", 0, ZSTD_e_end);
	if (!o->failed && fflush(o->f) != 0)
		fail(o, strerror(errno));
	if (!o->path) {
		release(o);
		return o->failed ? -1 : 0;
	}
	if (!o->failed && fsync(fileno(o->f)) != 0)
		fail(o, strerror(errno));
	if (fclose(o->f) != 0 && !o->failed)
		fail(o, strerror(errno));
	o->f = NULL;
	if (!o->failed && rename(o->tmp, o->path) != 0)
		fail(o, strerror(errno));
	if (o->failed) {
		unlink(o->tmp);
		release(o);
		return -1;
	}
	release(o);
	return 0;
}

void cli_out_abort(cli_out *o)
{
	if (o->path && o->f)
		fclose(o->f);
	o->f = NULL;
	if (o->tmp)
		unlink(o->tmp);
	release(o);
}
