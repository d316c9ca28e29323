/* cli_compact.c -- `spoolcap compact DIR --out DIR2`: a compacted copy of
 * the spool (LMDB's copy with compaction: live pages only, so a file that
 * grew during an outage shrinks back), to swap in while spoolcapd is
 * stopped. The copy is checked by opening it as a spool and comparing its
 * record counts with the original's. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spoolcap/cli.h"
#include "spoolcap/spool_admin.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: spoolcap compact DIR --out DIR2\n"
	        "Writes a compacted copy of the spool in DIR to DIR2 (LMDB's copy\n"
	        "with compaction: only the pages in use, so the file shrinks to what\n"
	        "the records need). DIR2 must be missing or empty; DIR is not\n"
	        "changed. Prints the sizes before and after. To shrink a spool:\n"
	        "stop spoolcapd, compact, move DIR2 in place of DIR, start it again.\n"
	        "  --out DIR2   where to write the copy (required)\n");
}

/* 0 if dir is an empty directory, 1 if it holds something, -1 (errno) if
 * it cannot be read or is not a directory. */
static int dir_has_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int any = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			any = 1;
			break;
		}
	closedir(d);
	return any;
}

static void remove_copy(const char *out, int created)
{
	char p[PATH_MAX];

	snprintf(p, sizeof p, "%s/data.mdb", out);
	unlink(p);
	snprintf(p, sizeof p, "%s/lock.mdb", out);
	unlink(p);
	if (created)
		rmdir(out);
}

static uint64_t held(const spool_stats *s)
{
	return s->records + s->retained_records + s->dlq_records;
}

int cli_compact(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *dir, *out = NULL;
	spool *sp = NULL, *cp = NULL;
	spool_stats before, after;
	struct stat sd, so;
	char err[512], b1[32], b2[32], b3[32];
	uint64_t bytes = 0;
	long agent;
	int opt, r, created = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'o': out = optarg; break;
		case 'h': usage(stdout); return CLI_EXIT_OK;
		default: usage(stderr); return CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "spoolcap compact: expected exactly one spool directory\n");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	dir = argv[optind];
	if (!out || !*out) {
		fprintf(stderr, "spoolcap compact: --out DIR2 is required (a new or empty "
		        "directory for the copy)\n");
		return CLI_EXIT_USAGE;
	}
	if (stat(dir, &sd) == 0 && stat(out, &so) == 0 && sd.st_dev == so.st_dev &&
	    sd.st_ino == so.st_ino) {
		fprintf(stderr, "spoolcap compact: --out %s is the spool itself; give a new "
		        "directory\n", out);
		return CLI_EXIT_USAGE;
	}
	r = spool_open(&sp, dir, NULL, SPOOL_MODE_READONLY, err, sizeof err);
	if (r < 0) {
		fprintf(stderr, "spoolcap: %s\n", err);
		return CLI_EXIT_USAGE;
	}
	if (stat(out, &so) == 0) {
		r = S_ISDIR(so.st_mode) ? dir_has_entries(out) : -1;
		if (r != 0) {
			fprintf(stderr, "spoolcap compact: refusing to write into %s: %s; give "
			        "a new or empty directory\n", out,
			        r > 0 ? "it is not empty" :
			        !S_ISDIR(so.st_mode) ? "it is not a directory" : strerror(errno));
			spool_close(sp);
			return CLI_EXIT_USAGE;
		}
	} else if (errno != ENOENT || mkdir(out, 0750) < 0) {
		fprintf(stderr, "spoolcap compact: cannot create %s: %s\n", out, strerror(errno));
		spool_close(sp);
		return CLI_EXIT_USAGE;
	} else {
		created = 1;
	}
	agent = spool_agent_pid(dir);
	if (agent > 0)
		fprintf(stderr, "spoolcap compact: note: spoolcapd (pid %ld) is running on %s: "
		        "the copy is a snapshot of this moment; stop spoolcapd before "
		        "swapping the copy in, or it will miss what happens next\n",
		        agent, dir);
	if (spool_stat(sp, &before) < 0 || spool_compact_copy(sp, out, &bytes) < 0) {
		fprintf(stderr, "spoolcap compact: %s\n", spool_errmsg());
		spool_close(sp);
		remove_copy(out, created);
		return CLI_EXIT_DATA;
	}
	spool_close(sp);
	/* the copy must open as a spool and hold what the original held */
	r = spool_open(&cp, out, NULL, SPOOL_MODE_READONLY, err, sizeof err);
	if (r < 0 || spool_stat(cp, &after) < 0) {
		fprintf(stderr, "spoolcap compact: the copy in %s does not open as a spool: "
		        "%s; removed it\n", out, r < 0 ? err : spool_errmsg());
		spool_close(cp);
		remove_copy(out, created);
		return CLI_EXIT_DATA;
	}
	spool_close(cp);
	if (agent <= 0 && (held(&after) != held(&before) || after.next_seq != before.next_seq ||
	                   strcmp(after.uuid, before.uuid) != 0)) {
		fprintf(stderr, "spoolcap compact: the copy differs from %s (%" PRIu64 " records "
		        "instead of %" PRIu64 "); removed it\n", dir, held(&after), held(&before));
		remove_copy(out, created);
		return CLI_EXIT_DATA;
	}
	cli_fmt_bytes(b1, sizeof b1, before.file_bytes);
	cli_fmt_bytes(b2, sizeof b2, before.used_bytes);
	cli_fmt_bytes(b3, sizeof b3, bytes);
	printf("compacted %s into %s\n", dir, out);
	printf("before   data.mdb %s (%" PRIu64 " bytes; %s in use, %" PRIu64
	       " free pages)\n", b1, before.file_bytes, b2, before.free_pages);
	printf("after    data.mdb %s (%" PRIu64 " bytes", b3, bytes);
	if (before.file_bytes)
		printf(", %.1f%% of before", 100.0 * (double)bytes / (double)before.file_bytes);
	printf(")\n");
	printf("records  %" PRIu64 " pending, %" PRIu64 " retained, %" PRIu64
	       " dead letters; next seq %" PRIu64 "\n", after.records,
	       after.retained_records, after.dlq_records, after.next_seq);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "spoolcap compact: cannot write the output\n");
		return CLI_EXIT_DATA;
	}
	return CLI_EXIT_OK;
}
