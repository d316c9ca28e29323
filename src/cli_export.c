/* cli_export.c -- `spoolcap export DIR --out FILE [--format ndjson|har]
 * [filters]`: matching records to a file, as NDJSON events (the dump's
 * bytes; zstd-compressed when FILE ends in .zst) or as a HAR 1.2 log that
 * pairs requests with responses by uid. The file appears complete or not
 * at all (cli_out.h); "-" is standard output. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "spoolcap/cli.h"
#include "spoolcap/cli_export.h"

enum format { FMT_AUTO, FMT_NDJSON, FMT_HAR };

static void usage(FILE *f)
{
	fprintf(f, "usage: spoolcap export DIR --out FILE [--format ndjson|har] [filters]\n"
	        "Writes the records of the spool in DIR to FILE, replaced atomically\n"
	        "(written next to it, then renamed; mode 0600), or to standard output\n"
	        "with --out -. Safe while spoolcapd runs.\n"
	        "  --out FILE         where to write; compressed with zstd when FILE ends\n"
	        "                     in .zst (zstd -d or zstdcat read it)\n"
	        "  --format FORMAT    ndjson: the events, one per line, as dump writes them;\n"
	        "                     har: a HAR 1.2 log, one entry per request and its\n"
	        "                     response paired by the uid argument (a request or\n"
	        "                     response without its partner is kept, with\n"
	        "                     _spoolcap.paired false and a comment; events that are\n"
	        "                     neither are left out). Default: har when FILE ends\n"
	        "                     in .har or .har.zst, else ndjson\n");
	cli_filter_usage(f, "pending,delivered: the queue, without dead letters");
	fprintf(f, "Records that fail to decode are reported on standard error and\n"
	        "skipped; the exit status is then 1 (the file is still written).\n");
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n > k && strcmp(s + n - k, suffix) == 0;
}

int cli_export(int argc, char **argv)
{
	static const struct option own[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct option opts[16];
	enum format fmt = FMT_AUTO;
	const char *out = NULL;
	cli_export_stats st;
	cli_filter f;
	cli_spool c;
	cli_out o;
	int ch, rc;

	cli_filter_init(&f, "spoolcap export", CLI_STATE_PENDING | CLI_STATE_DELIVERED);
	if (!cli_filter_longopts(own, opts, sizeof opts / sizeof opts[0]))
		return CLI_EXIT_USAGE;      /* cannot happen: opts has room */
	optind = 1;
	while ((ch = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		if ((rc = cli_filter_add_opt(&f, ch, optarg)) < 0)
			return CLI_EXIT_USAGE;
		if (rc > 0)
			continue;
		switch (ch) {
		case 'o':
			out = optarg;
			break;
		case 'F':
			if (!strcmp(optarg, "ndjson")) {
				fmt = FMT_NDJSON;
			} else if (!strcmp(optarg, "har")) {
				fmt = FMT_HAR;
			} else {
				fprintf(stderr, "spoolcap export: --format '%s': expected ndjson "
				        "or har\n", optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		default:
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "spoolcap export: expected exactly one spool directory\n");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!out) {
		fprintf(stderr, "spoolcap export: --out FILE is required (--out - for "
		        "standard output)\n");
		return CLI_EXIT_USAGE;
	}
	if (fmt == FMT_AUTO)
		fmt = ends_with(out, ".har") || ends_with(out, ".har.zst") ? FMT_HAR : FMT_NDJSON;
	if (cli_filter_check(&f) < 0)
		return CLI_EXIT_USAGE;
	if (cli_open(&c, argv[optind], SPOOL_MODE_READONLY) < 0)
		return CLI_EXIT_USAGE;
	if (cli_out_open(&o, f.prog, out, CLI_OUT_AUTO) < 0) {
		cli_close(&c);
		return CLI_EXIT_USAGE;
	}
	memset(&st, 0, sizeof st);
	rc = fmt == FMT_HAR ? cli_export_har(&c, &f, &o, &st) : cli_export_ndjson(&c, &f, &o, &st);
	if (rc < 0)
		cli_out_abort(&o);
	else if (cli_out_close(&o) < 0)
		rc = -1;
	cli_close(&c);
	if (rc == 0 && isatty(STDERR_FILENO)) {
		if (fmt == FMT_HAR)
			fprintf(stderr, "spoolcap export: %" PRIu64 " entries (%" PRIu64 " unpaired) "
			        "from %" PRIu64 " events written to %s; %" PRIu64 " other events "
			        "left out\n", st.entries, st.unpaired, st.events, out, st.other);
		else
			fprintf(stderr, "spoolcap export: %" PRIu64 " events written to %s\n",
			        st.events, out);
	}
	return rc < 0 || st.bad ? CLI_EXIT_DATA : CLI_EXIT_OK;
}
