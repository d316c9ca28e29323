/* spoolcap.c -- the spoolcap command: looks inside a spoolcapd spool.
 * A thin dispatcher; each subcommand lives in its own src/cli_*.c. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "spoolcap/cli.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
} cmds[] = {
	{ "stat", cli_stat, "what the spool holds, delivery lag, drops, dead letters" },
	{ "ls", cli_ls, "one line per record: seq, time, state, sizes, uid, method, path" },
	{ "cat", cli_cat, "records by seq: pretty JSON, or the raw zstd frame (--raw)" },
	{ "dump", cli_dump, "records as NDJSON events (what the daemon delivers)" },
	{ "export", cli_export, "records to a file: NDJSON (.zst) or HAR 1.2 (--out FILE)" },
	{ "replay", cli_replay, "send events to a processor (--to), or re-issue requests (--requests)" },
	{ "dlq", cli_dlq, "dead letters: ls, show, requeue, purge" },
	{ "verify", cli_verify, "decode every record, check every checksum" },
	{ "compact", cli_compact, "a compacted copy of the spool (--out DIR2)" },
	{ "purge", cli_purge, "remove the oldest records (--to SEQ, --until TIME)" },
	{ "probe", cli_probe, "HOST:PORT (no DIR): test an SPOP agent like HAProxy" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: spoolcap SUBCOMMAND DIR [options]\n"
	        "Inspects the spool that spoolcapd writes (safe while it runs).\n\n"
	        "subcommands:\n");
	for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f, "\n'spoolcap SUBCOMMAND --help' describes each; see spoolcap(1).\n");
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("spoolcap %s\n", PACKAGE_VERSION);
		return CLI_EXIT_OK;
	}
	for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].run(argc - 1, argv + 1);
	fprintf(stderr, "spoolcap: unknown subcommand '%s'; try 'spoolcap --help'\n", argv[1]);
	return CLI_EXIT_USAGE;
}
