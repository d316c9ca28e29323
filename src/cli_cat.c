/* cli_cat.c -- `spoolcap cat DIR SEQ... [--raw | --compact]` and
 * `spoolcap cat DIR --dict ID`: records one at a time, Postfix's postcat
 * for the spool. By default each event is pretty-printed JSON (the same
 * object as its dump line); --compact prints the dump line itself; --raw
 * writes the stored zstd frame, which `zstd -d` decodes into the record's
 * payload (record.h), with `-D FILE` and the dictionary that --dict
 * writes when the record names one. Queue and dead letters alike. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "spoolcap/cli.h"
#include "spoolcap/cli_filter.h"
#include "spoolcap/cli_out.h"
#include "spoolcap/event.h"

enum mode { PRETTY, COMPACT, RAW };

struct cat {
	enum mode mode;
	json_buf  j, pretty;
	int       found, bad, failed;
	uint32_t  noted_dict;       /* the last dictionary we told about */
};

static void write_out(struct cat *x, const void *p, size_t n)
{
	if (fwrite(p, 1, n, stdout) != n)
		x->failed = 1;
}

static void raw_frame(struct cat *x, cli_spool *c, const cli_rec *r)
{
	const uint8_t *payload = r->stored + RECORD_HDR_SIZE;

	if (!r->hdr_ok) {
		fprintf(stderr, "spoolcap cat: seq %" PRIu64 ": the record's header is damaged "
		        "(%s); nothing written\n", r->seq, r->why);
		x->bad = 1;
		return;
	}
	if (r->err) {
		fprintf(stderr, "spoolcap cat: seq %" PRIu64 " does not decode (%s); its stored "
		        "bytes are written anyway\n", r->seq, r->why);
		x->bad = 1;
	}
	if (!(r->hdr.flags & RECORD_F_ZSTD))
		fprintf(stderr, "spoolcap cat: seq %" PRIu64 " is stored uncompressed: the output "
		        "is its payload itself, not a zstd frame\n", r->seq);
	else if ((r->hdr.flags & RECORD_F_DICT) && r->hdr.dict_id != x->noted_dict) {
		x->noted_dict = r->hdr.dict_id;
		fprintf(stderr, "spoolcap cat: seq %" PRIu64 " was compressed with dictionary %u; "
		        "decode with:\n  spoolcap cat %s --dict %u > dict.%u && zstd -d -D dict.%u\n",
		        r->seq, r->hdr.dict_id, c->dir, r->hdr.dict_id, r->hdr.dict_id,
		        r->hdr.dict_id);
	}
	write_out(x, payload, r->stored_len - RECORD_HDR_SIZE);
}

static int cat_cb(cli_spool *c, const cli_rec *r, void *user)
{
	struct cat *x = user;

	x->found = 1;
	if (x->mode == RAW) {
		raw_frame(x, c, r);
		return 1;
	}
	if (r->err) {
		fprintf(stderr, "spoolcap cat: seq %" PRIu64 " does not decode: %s\n", r->seq,
		        r->why);
		x->bad = 1;
		return 1;
	}
	json_reset(&x->j);
	json_reset(&x->pretty);
	if (event_render(&x->j, r->view, r->seq, spool_uuid(c->sp), NULL) != 0 ||
	    (x->mode == PRETTY && cli_json_pretty(&x->pretty, x->j.data, x->j.len) < 0)) {
		fprintf(stderr, "spoolcap cat: seq %" PRIu64 ": %s\n", r->seq,
		        x->j.err || x->pretty.err ? "out of memory" : "its arguments do not decode");
		x->bad = 1;
		return 1;
	}
	if (x->mode == PRETTY)
		write_out(x, x->pretty.data, x->pretty.len);
	else
		write_out(x, x->j.data, x->j.len);
	write_out(x, "\n", 1);
	return 1;
}

static int one(cli_spool *c, struct cat *x, uint64_t seq)
{
	cli_filter f;
	spool_stats st;
	int rc;

	cli_filter_init(&f, "spoolcap cat", CLI_STATE_ALL);
	f.from = f.to = seq;
	x->found = 0;
	rc = cli_filter_iterate(c, &f, cat_cb, x);
	if (rc < 0) {
		fprintf(stderr, "spoolcap cat: reading %s failed: %s\n", c->dir,
		        rc == SPOOL_ENOMEM ? "out of memory" : spool_errmsg());
		return -1;
	}
	if (x->found)
		return 0;
	if (spool_stat(c->sp, &st) == 0 && seq >= st.next_seq)
		fprintf(stderr, "spoolcap cat: seq %" PRIu64 " does not exist yet (the newest "
		        "is %" PRIu64 ")\n", seq, st.next_seq - 1);
	else
		fprintf(stderr, "spoolcap cat: seq %" PRIu64 " is not in the spool any more "
		        "(delivered and removed, evicted, or purged); 'spoolcap ls' shows what "
		        "is\n", seq);
	return -1;
}

static int dict_out(cli_spool *c, const char *arg)
{
	uint64_t id;
	void *buf;
	size_t len;
	int rc;

	if (cli_parse_u64("--dict", arg, &id) < 0)
		return CLI_EXIT_USAGE;
	rc = id <= UINT32_MAX ? spool_dict_get(c->sp, (uint32_t)id, &buf, &len) : SPOOL_ENOENT;
	if (rc == SPOOL_ENOENT) {
		fprintf(stderr, "spoolcap cat: the spool has no dictionary %s ('spoolcap stat' "
		        "lists them)\n", arg);
		return CLI_EXIT_DATA;
	}
	if (rc < 0) {
		fprintf(stderr, "spoolcap cat: %s\n", spool_errmsg());
		return CLI_EXIT_DATA;
	}
	rc = fwrite(buf, 1, len, stdout) == len && fflush(stdout) == 0;
	free(buf);
	if (!rc) {
		fprintf(stderr, "spoolcap cat: cannot write the output\n");
		return CLI_EXIT_DATA;
	}
	return CLI_EXIT_OK;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: spoolcap cat DIR SEQ... [--compact | --raw]\n"
	        "       spoolcap cat DIR --dict ID\n"
	        "Shows records of the spool in DIR by sequence number, queued or dead\n"
	        "letters: each as its event JSON, pretty-printed.\n"
	        "  --compact   the event on one line, exactly as dump writes it\n"
	        "  --raw       the stored zstd frame, binary (refused on a terminal):\n"
	        "              'zstd -d' turns it into the record's payload (32-byte\n"
	        "              header, engine id, the SPOP message as received)\n"
	        "  --dict ID   write dictionary ID (binary) instead, for zstd -D:\n"
	        "                spoolcap cat DIR 42 --raw > 42.zst\n"
	        "                spoolcap cat DIR --dict 32768 > dict.32768\n"
	        "                zstd -d -D dict.32768 42.zst\n"
	        "              (--raw says on standard error which dictionary a\n"
	        "              record needs, if any)\n"
	        "A sequence number that is not in the spool, or a record that does not\n"
	        "decode, is reported and the exit status is 1.\n");
}

int cli_cat(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "raw", no_argument, NULL, 'r' },
		{ "compact", no_argument, NULL, 'c' },
		{ "dict", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cat x;
	const char *dict = NULL;
	cli_spool c;
	uint64_t *seqs;
	int ch, i, n, rc = CLI_EXIT_OK;

	memset(&x, 0, sizeof x);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'r': x.mode = RAW; break;
		case 'c': x.mode = COMPACT; break;
		case 'd': dict = optarg; break;
		case 'h': usage(stdout); return CLI_EXIT_OK;
		default: usage(stderr); return CLI_EXIT_USAGE;
		}
	}
	n = argc - optind - 1;
	if (n < 0 || (dict && n > 0) || (!dict && n == 0)) {
		fprintf(stderr, "spoolcap cat: expected a spool directory and %s\n",
		        dict ? "no sequence number with --dict" : "at least one sequence number");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!(seqs = calloc((size_t)n + 1, sizeof *seqs))) {
		fprintf(stderr, "spoolcap cat: out of memory\n");
		return CLI_EXIT_USAGE;
	}
	for (i = 0; i < n; i++) {
		if (cli_parse_u64("SEQ", argv[optind + 1 + i], &seqs[i]) < 0) {
			free(seqs);
			return CLI_EXIT_USAGE;
		}
		if (seqs[i] == 0) {
			fprintf(stderr, "spoolcap cat: sequence numbers start at 1\n");
			free(seqs);
			return CLI_EXIT_USAGE;
		}
	}
	if ((x.mode == RAW || dict) &&
	    cli_out_binary_ok("spoolcap cat", dict ? "a dictionary" : "zstd frames") < 0) {
		free(seqs);
		return CLI_EXIT_USAGE;
	}
	if (cli_open(&c, argv[optind], SPOOL_MODE_READONLY) < 0) {
		free(seqs);
		return CLI_EXIT_USAGE;
	}
	if (dict) {
		rc = dict_out(&c, dict);
		goto out;
	}
	json_init(&x.j, 256u << 20);
	json_init(&x.pretty, 512u << 20);
	for (i = 0; i < n && !x.failed; i++)
		if (one(&c, &x, seqs[i]) < 0)
			rc = CLI_EXIT_DATA;
	if (fflush(stdout) != 0 || x.failed) {
		fprintf(stderr, "spoolcap cat: cannot write the output\n");
		rc = CLI_EXIT_DATA;
	}
	if (x.bad)
		rc = CLI_EXIT_DATA;
	json_free(&x.j);
	json_free(&x.pretty);
out:
	free(seqs);
	cli_close(&c);
	return rc;
}
