/* cli_dump.c -- `spoolcap dump DIR [filters]`: the spool's records as
 * NDJSON events on standard output, byte for byte what the daemon
 * delivers.
 *
 * Records are copied out of LMDB in bounded batches inside short read
 * transactions, then decoded and written outside them (cli_filter.h), so
 * a slow reader of our stdout never pins the spool's pages. */
#include "config.h"

#include <getopt.h>
#include <string.h>

#include "spoolcap/cli.h"
#include "spoolcap/cli_export.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: spoolcap dump DIR [filters]\n"
	        "Writes the records of the spool in DIR to standard output as NDJSON\n"
	        "events, one per line, in sequence order: the same bytes spoolcapd\n"
	        "delivers. Safe while spoolcapd runs; covers the records present when\n"
	        "it starts.\n");
	cli_filter_usage(f, "pending,delivered: the queue, without dead letters");
	fprintf(f, "Records that fail to decode are reported on standard error and\n"
	        "skipped; the exit status is then 1.\n");
}

int cli_dump(int argc, char **argv)
{
	static const struct option own[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct option opts[16];
	cli_filter f;
	cli_export_stats st;
	cli_spool c;
	cli_out o;
	int ch, rc;

	cli_filter_init(&f, "spoolcap dump", CLI_STATE_PENDING | CLI_STATE_DELIVERED);
	if (!cli_filter_longopts(own, opts, sizeof opts / sizeof opts[0]))
		return CLI_EXIT_USAGE;      /* cannot happen: opts has room */
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if ((rc = cli_filter_add_opt(&f, ch, optarg)) < 0)
			return CLI_EXIT_USAGE;
		if (rc > 0)
			continue;
		if (ch == 'h') {
			usage(stdout);
			return CLI_EXIT_OK;
		}
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "spoolcap dump: expected exactly one spool directory\n");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (cli_filter_check(&f) < 0)
		return CLI_EXIT_USAGE;
	if (cli_open(&c, argv[optind], SPOOL_MODE_READONLY) < 0)
		return CLI_EXIT_USAGE;
	memset(&st, 0, sizeof st);
	if (cli_out_open(&o, f.prog, "-", CLI_OUT_PLAIN) < 0) {
		cli_close(&c);
		return CLI_EXIT_USAGE;
	}
	rc = cli_export_ndjson(&c, &f, &o, &st);
	if (cli_out_close(&o) < 0)
		rc = -1;
	cli_close(&c);
	return rc < 0 || st.bad ? CLI_EXIT_DATA : CLI_EXIT_OK;
}
