/* cli_dump.c -- `spoolcap dump DIR [--from SEQ] [--limit N]`: the spool's
 * records as NDJSON events, byte for byte what the daemon delivers.
 *
 * Records are copied out of LMDB in bounded batches inside a short read
 * transaction, then decoded and written outside it, so a slow reader of
 * our stdout never pins the spool's pages. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "spoolcap/cli.h"
#include "spoolcap/event.h"
#include "spoolcap/recbatch.h"

#define BATCH_RECORDS 1000
#define BATCH_BYTES   (8u << 20)

static void usage(FILE *f)
{
	fprintf(f, "usage: spoolcap dump DIR [--from SEQ] [--limit N]\n"
	        "Writes the records of the spool in DIR (pending and retained) to\n"
	        "standard output as NDJSON events, one per line, in sequence order:\n"
	        "the same bytes spoolcapd delivers. Safe while spoolcapd runs.\n"
	        "  --from SEQ   start at sequence number SEQ (default: the oldest)\n"
	        "  --limit N    stop after N events\n"
	        "Records that fail to decode are reported on standard error and\n"
	        "skipped; the exit status is then 1.\n");
}

int cli_dump(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "limit", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	cli_spool c;
	recbatch rb, *b = &rb;
	json_buf j;
	uint64_t from = 0, limit = 0, done = 0, after;
	unsigned bad = 0;
	int ch, rc = CLI_EXIT_OK;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "f:n:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			if (cli_parse_u64("--from", optarg, &from) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 'n':
			if (cli_parse_u64("--limit", optarg, &limit) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 'h': usage(stdout); return CLI_EXIT_OK;
		default: usage(stderr); return CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "spoolcap dump: expected exactly one spool directory\n");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (cli_open(&c, argv[optind], SPOOL_MODE_READONLY) < 0)
		return CLI_EXIT_USAGE;
	if (recbatch_init(b, BATCH_RECORDS) < 0) {
		fprintf(stderr, "spoolcap dump: out of memory\n");
		cli_close(&c);
		return CLI_EXIT_USAGE;
	}
	json_init(&j, 256u << 20);
	after = from ? from - 1 : 0;
	for (;;) {
		size_t want = BATCH_RECORDS;
		unsigned i;
		int n;

		if (limit && limit - done < want)
			want = (size_t)(limit - done);
		if (want == 0)
			break;
		b->max = want;            /* never above BATCH_RECORDS (recbatch_init) */
		n = recbatch_fill(b, c.sp, after, BATCH_BYTES, 1);
		if (n < 0) {
			fprintf(stderr, "spoolcap dump: reading %s failed: %s\n", c.dir,
			        n == SPOOL_ENOMEM ? "out of memory" : spool_errmsg());
			rc = CLI_EXIT_DATA;
			break;
		}
		if (b->n == 0)
			break;
		json_reset(&j);
		for (i = 0; i < b->n; i++) {
			record_view v;
			char why[256];

			if (cli_decode(&c, b->data + b->off[i], b->off[i + 1] - b->off[i], &v,
			               why, sizeof why) != 0) {
				fprintf(stderr, "spoolcap dump: seq %" PRIu64 " skipped: %s "
				        "(the record is damaged; the others are still dumped)\n",
				        b->seq[i], why);
				bad++;
				continue;
			}
			if (event_render(&j, &v, b->seq[i], spool_uuid(c.sp), NULL) != 0) {
				fprintf(stderr, "spoolcap dump: seq %" PRIu64 " skipped: its "
				        "arguments do not decode\n", b->seq[i]);
				bad++;
				continue;
			}
			json_char(&j, '\n');
		}
		if (j.err || fwrite(j.data, 1, j.len, stdout) != j.len) {
			fprintf(stderr, "spoolcap dump: cannot write the output%s\n",
			        j.err ? " (out of memory)" : "");
			rc = CLI_EXIT_DATA;
			break;
		}
		done += b->n;
		after = b->seq[b->n - 1];
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "spoolcap dump: cannot write the output\n");
		rc = CLI_EXIT_DATA;
	}
	if (bad && rc == CLI_EXIT_OK)
		rc = CLI_EXIT_DATA;
	json_free(&j);
	recbatch_free(b);
	cli_close(&c);
	return rc;
}
