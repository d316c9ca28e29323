/* cli_purge.c -- `spoolcap purge DIR --to SEQ | --until TIME [--force]
 * [--dry-run]`: removes the oldest records on purpose. Without --force only
 * delivered records kept by retention go (counted as pruned); with it
 * pending ones too, counted as dropped with reason purged: they were never
 * delivered, and stat says so forever after.
 *
 * The spool removes a prefix of the queue (spool_purge, write transactions
 * of at most 1,024 records). --until TIME is turned into that prefix: it
 * ends before the first record captured at or after TIME (the same
 * exclusive bound as ls/dump --until), so nothing that new is ever removed;
 * capture times are not strictly in seq order (I/O threads, requeued dead
 * letters), so a few records older than TIME may stay. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spoolcap/cli.h"
#include "spoolcap/cli_filter.h"
#include "spoolcap/event.h"
#include "spoolcap/spool_admin.h"

#define SCAN_CHUNK 4096
#define NS         1000000000ll

static void usage(FILE *f)
{
	fprintf(f, "usage: spoolcap purge DIR (--to SEQ | --until TIME) [--force] [--dry-run]\n"
	        "Removes the oldest records of the spool in DIR: those with a seq up\n"
	        "to SEQ, or captured before TIME. Without --force only delivered\n"
	        "records kept by retention are removed; pending ones stay.\n"
	        "  --to SEQ      records with seq <= SEQ\n"
	        "  --until TIME  records captured before TIME: RFC 3339\n"
	        "                (2026-11-26T06:00:00Z, 2026-11-26) or an age (90s,\n"
	        "                10m, 2h, 7d, 1w: that long ago)\n"
	        "  --force       remove pending (undelivered) records too; they are\n"
	        "                counted as dropped, reason purged\n"
	        "  --dry-run     only say what would be removed\n"
	        "Dead letters are not touched: see 'spoolcap dlq purge'. Safe while\n"
	        "spoolcapd runs.\n");
}

/* Walks records (headers only) from the oldest, up to a seq bound. */
struct walk {
	uint64_t bound;           /* stop after this seq */
	int64_t  until;           /* --until: stop at the first record not before it */
	int      by_time;
	uint64_t cursor;
	uint64_t upto;            /* highest seq of the prefix so far */
	uint64_t retained, pending;
	uint64_t stop_seq;        /* the record that ended the prefix, 0 if none */
	int      stop_unreadable;
	int      done;
};

static int walk_cb(uint64_t seq, const void *val, size_t len, void *user)
{
	struct walk *w = user;
	record_hdr h;

	if (seq > w->bound) {
		w->done = 1;
		return 1;
	}
	if (w->by_time) {
		int ok = record_hdr_parse(val, len, &h) == 0;

		if (!ok || h.time_ns >= w->until) {
			/* an unreadable time ends the prefix too: never remove a
			 * record we cannot show is old enough */
			w->stop_seq = seq;
			w->stop_unreadable = !ok;
			w->done = 1;
			return 1;
		}
	}
	w->upto = seq;
	if (seq <= w->cursor)
		w->retained++;
	else
		w->pending++;
	return 0;
}

static int walk_run(spool *sp, struct walk *w)
{
	uint64_t after = 0;

	while (!w->done) {
		uint64_t last = w->upto;
		int n = spool_scan(sp, after, SCAN_CHUNK, 0, walk_cb, w);

		if (n < 0)
			return n;
		if (n == 0 || w->upto == last)
			break;
		after = w->upto;
	}
	return 0;
}

int cli_purge(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "until", required_argument, NULL, 'u' },
		{ "force", no_argument, NULL, 'f' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct timespec ts;
	struct walk w;
	spool_stats s0, s1;
	spool *sp = NULL;
	char err[512], when[EVENT_TIME_LEN + 1];
	uint64_t to = 0, pend;
	int64_t until = 0;
	int opt, r, have_to = 0, have_until = 0, force = 0, dry = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "t:u:fnh", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			if (cli_parse_u64("--to", optarg, &to) < 0)
				return CLI_EXIT_USAGE;
			have_to = 1;
			break;
		case 'u':
			if (cli_filter_parse_time(optarg, (int64_t)ts.tv_sec * NS + ts.tv_nsec,
			                          &until, err, sizeof err) < 0) {
				fprintf(stderr, "spoolcap purge: bad --until '%s': %s\n", optarg, err);
				return CLI_EXIT_USAGE;
			}
			have_until = 1;
			break;
		case 'f': force = 1; break;
		case 'n': dry = 1; break;
		case 'h': usage(stdout); return CLI_EXIT_OK;
		default: usage(stderr); return CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "spoolcap purge: expected exactly one spool directory\n");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!have_to && !have_until) {
		fprintf(stderr, "spoolcap purge: say which records: --to SEQ or --until TIME\n");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	r = spool_open(&sp, argv[optind], NULL, dry ? SPOOL_MODE_READONLY : SPOOL_MODE_CLIENT,
	               err, sizeof err);
	if (r < 0) {
		fprintf(stderr, "spoolcap: %s\n", err);
		return CLI_EXIT_USAGE;
	}
	if ((!dry && spool_use_agent_limits(sp) < 0) || spool_stat(sp, &s0) < 0)
		goto fail;
	/* The prefix to remove: up to --to, up to the cursor without --force,
	 * and before the first record captured at or after --until. */
	memset(&w, 0, sizeof w);
	w.bound = have_to ? to : UINT64_MAX;
	w.cursor = s0.cursor;
	if (!force && w.bound > s0.cursor)
		w.bound = s0.cursor;
	w.by_time = have_until;
	w.until = until;
	if (walk_run(sp, &w) < 0)
		goto fail;
	if (have_until && w.stop_unreadable)
		fprintf(stderr, "spoolcap purge: note: stopped before seq %" PRIu64 ": its capture "
		        "time does not read (damaged? see 'spoolcap verify'); use --to to go "
		        "past it\n", w.stop_seq);
	if (have_until) {
		event_time_format(when, until);
		printf("records captured before %s: seq <= %" PRIu64 "\n", when, w.upto);
	}
	if (dry) {
		printf("would remove %" PRIu64 " record%s: %" PRIu64 " delivered (retained), %"
		       PRIu64 " pending%s\n", w.retained + w.pending,
		       w.retained + w.pending == 1 ? "" : "s", w.retained, w.pending,
		       w.pending ? " (lost for good: never delivered)" : "");
	} else if (w.upto == 0) {
		printf("removed 0 records\n");
	} else {
		r = spool_purge(sp, w.upto, force);
		if (r < 0 || spool_stat(sp, &s1) < 0)
			goto fail;
		/* pending ones are counted as purged drops; retained ones as pruned */
		pend = s1.dropped[SPOOL_DROP_PURGED] - s0.dropped[SPOOL_DROP_PURGED];
		if (pend > (uint64_t)r)
			pend = (uint64_t)r;
		printf("removed %d record%s with seq <= %" PRIu64 ": %" PRIu64
		       " delivered (retained, counted as pruned), %" PRIu64
		       " pending (counted as dropped, reason purged)\n", r, r == 1 ? "" : "s",
		       w.upto, (uint64_t)r - pend, pend);
	}
	if (!force && s0.first_pending_seq && (!have_to || to >= s0.first_pending_seq) &&
	    (!have_until || s0.first_pending_time_ns < until))
		printf("pending records were kept: add --force to remove them too\n");
	spool_close(sp);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "spoolcap purge: cannot write the output\n");
		return CLI_EXIT_DATA;
	}
	return CLI_EXIT_OK;

fail:
	fprintf(stderr, "spoolcap purge: %s\n", spool_errmsg());
	spool_close(sp);
	return CLI_EXIT_DATA;
}
