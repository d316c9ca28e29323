/* cli_dlq.c -- `spoolcap dlq ls|show|requeue|purge DIR ...`: the dead
 * letters (records the processor rejected, or that failed validation),
 * with the reason, the HTTP status, the attempts and the start of the
 * processor's reply; one shown with its event; put back in the queue; or
 * deleted (counted as dropped, reason purged).
 *
 * Reads copy entries out of short read transactions before printing
 * anything; requeue and purge are write transactions of at most a few
 * hundred dead letters each, serialised with spoolcapd's by LMDB. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "spoolcap/cli.h"
#include "spoolcap/cli_out.h"
#include "spoolcap/event.h"
#include "spoolcap/spool_admin.h"

#define LS_CHUNK      256     /* dead letters copied per read transaction */
#define RQ_BATCH      256     /* dead letters requeued per write transaction */
#define SCAN_CHUNK    1024
#define REPLY_COLUMN  60      /* reply bytes shown in the table */

static const struct option help_only[] = {
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

static void usage(FILE *f)
{
	fprintf(f, "usage: spoolcap dlq ls DIR [--json] [--limit N]\n"
	        "       spoolcap dlq show DIR SEQ\n"
	        "       spoolcap dlq requeue DIR SEQ... | --all\n"
	        "       spoolcap dlq purge DIR SEQ... | --all\n"
	        "The dead letters of the spool in DIR: records the event processor\n"
	        "rejected or that failed validation, kept apart with the reason.\n"
	        "  ls        one line per dead letter: seq, when, reason, HTTP status,\n"
	        "            attempts, start of the processor's reply (--json: one\n"
	        "            object per line; --limit N: the first N)\n"
	        "  show      one dead letter with its event, as indented JSON\n"
	        "  requeue   put dead letters back at the end of the queue for\n"
	        "            delivery; each gets a new seq (printed as OLD -> NEW)\n"
	        "  purge     delete dead letters for good (counted as dropped,\n"
	        "            reason purged)\n"
	        "Safe while spoolcapd runs.\n");
}

/* ------------------------------------------------------------ helpers */

/* A dead letter copied out of its transaction (the record itself only
 * where needed). */
struct dl {
	uint64_t seq;
	spool_dlq_info info;          /* snippet -> reply */
	int64_t  dead_ns;
	size_t   record_len;
	uint8_t  reply[SPOOL_SNIPPET_MAX];
	size_t   reply_len;
	uint8_t *record;              /* dlq show: malloc'd copy */
	int      oom;
};

static void dl_copy(struct dl *d, const spool_dlq_entry *e)
{
	d->seq = e->seq;
	d->info = e->info;
	d->dead_ns = e->dead_ns;
	d->record_len = e->record_len;
	d->reply_len = e->info.snippet_len < sizeof d->reply ? e->info.snippet_len
	                                                     : sizeof d->reply;
	if (d->reply_len)
		memcpy(d->reply, e->info.snippet, d->reply_len);
	d->info.snippet = NULL;
}

static int parse_seq(const char *cmd, const char *s, uint64_t *seq)
{
	char opt[64];

	snprintf(opt, sizeof opt, "dlq %s: SEQ", cmd);
	if (cli_parse_u64(opt, s, seq) < 0)
		return -1;
	if (*seq == 0) {
		fprintf(stderr, "spoolcap dlq %s: sequence numbers start at 1\n", cmd);
		return -1;
	}
	return 0;
}

static void jkey(json_buf *j, const char *k)
{
	json_char(j, ',');
	json_str(j, k, strlen(k));
	json_char(j, ':');
}

static void jtime(json_buf *j, int64_t ns)
{
	char t[EVENT_TIME_LEN + 1];

	if (ns <= 0) {
		json_cstr_raw(j, "null");
		return;
	}
	event_time_format(t, ns);
	json_str(j, t, strlen(t));
}

/* The fields every dead-letter object starts with (no closing brace). */
static void dl_json(json_buf *j, const struct dl *d)
{
	const char *reason = spool_dlq_reason_name(d->info.reason);

	json_cstr_raw(j, "{\"seq\":");
	json_u64(j, d->seq);
	jkey(j, "dead_lettered");
	jtime(j, d->dead_ns);
	jkey(j, "reason");
	json_str(j, reason, strlen(reason));
	jkey(j, "http_status");
	json_u64(j, (uint64_t)d->info.http_status);
	jkey(j, "curl_code");
	json_i64(j, d->info.curl_code);
	jkey(j, "attempts");
	json_u64(j, d->info.attempts);
	jkey(j, "first_failure");
	jtime(j, d->info.first_ns);
	jkey(j, "last_failure");
	jtime(j, d->info.last_ns);
	jkey(j, "record_bytes");
	json_u64(j, d->record_len);
	jkey(j, "reply");
	json_bytes(j, d->reply, d->reply_len);
}

/* ----------------------------------------------------------------- ls */

struct ls_chunk {
	struct dl *v;
	size_t n;
};

static int ls_cb(const spool_dlq_entry *e, void *user)
{
	struct ls_chunk *c = user;

	dl_copy(&c->v[c->n++], e);
	return 0;
}

/* The reply on one table line: control bytes as spaces (collapsed),
 * anything but printable ASCII as '?', cut with "...". */
static void reply_text(char *out, size_t cap, const uint8_t *p, size_t n)
{
	size_t o = 0, i;
	int space = 1;

	for (i = 0; i < n && o + 4 < cap && o < REPLY_COLUMN; i++) {
		int c = p[i];

		if (c < 0x20 || c == 0x7f || c == ' ') {
			if (!space)
				out[o++] = ' ';
			space = 1;
			continue;
		}
		out[o++] = c < 0x7f ? (char)c : '?';
		space = 0;
	}
	while (o && out[o - 1] == ' ')
		o--;
	if (i < n && o + 4 <= cap) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = 0;
}

static int dlq_ls(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "limit", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	cli_spool c;
	struct ls_chunk ch;
	json_buf j;
	uint64_t limit = 0, shown = 0, bytes = 0, after = 0;
	int json = 0, opt, rc = CLI_EXIT_OK;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "jn:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'j': json = 1; break;
		case 'n':
			if (cli_parse_u64("--limit", optarg, &limit) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 'h': usage(stdout); return CLI_EXIT_OK;
		default: usage(stderr); return CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "spoolcap dlq ls: expected exactly one spool directory\n");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	ch.v = calloc(LS_CHUNK, sizeof *ch.v);
	if (!ch.v) {
		fprintf(stderr, "spoolcap dlq ls: out of memory\n");
		return CLI_EXIT_USAGE;
	}
	if (cli_open(&c, argv[optind], SPOOL_MODE_READONLY) < 0) {
		free(ch.v);
		return CLI_EXIT_USAGE;
	}
	json_init(&j, 1u << 20);
	if (!json)
		printf("%10s  %-20s  %-14s  %-7s  %8s  %s\n", "SEQ", "DEAD-LETTERED (UTC)",
		       "REASON", "STATUS", "ATTEMPTS", "REPLY");
	for (;;) {
		size_t want = LS_CHUNK, i;
		int n;

		if (limit && limit - shown < want)
			want = (size_t)(limit - shown);
		if (want == 0)
			break;
		ch.n = 0;
		n = spool_dlq_iterate(c.sp, after, want, ls_cb, &ch);
		if (n < 0) {
			fprintf(stderr, "spoolcap dlq ls: reading %s failed: %s\n", c.dir,
			        spool_errmsg());
			rc = CLI_EXIT_DATA;
			break;
		}
		if (ch.n == 0)
			break;
		for (i = 0; i < ch.n; i++) {
			const struct dl *d = &ch.v[i];

			bytes += d->record_len;
			if (json) {
				json_reset(&j);
				dl_json(&j, d);
				json_cstr_raw(&j, "}\n");
				fwrite(j.data, 1, j.len, stdout);
			} else {
				char t[EVENT_TIME_LEN + 1], st[16], reply[REPLY_COLUMN + 8];

				event_time_format(t, d->dead_ns);
				t[19] = 'Z';    /* seconds are enough in a table */
				t[20] = 0;
				if (d->info.http_status)
					snprintf(st, sizeof st, "%d", d->info.http_status);
				else if (d->info.curl_code)
					snprintf(st, sizeof st, "curl %d", d->info.curl_code);
				else
					snprintf(st, sizeof st, "-");
				reply_text(reply, sizeof reply, d->reply, d->reply_len);
				printf("%10" PRIu64 "  %-20s  %-14s  %-7s  %8" PRIu32 "  %s\n", d->seq,
				       d->dead_ns > 0 ? t : "?", spool_dlq_reason_name(d->info.reason),
				       st, d->info.attempts, reply);
			}
		}
		shown += ch.n;
		after = ch.v[ch.n - 1].seq;
	}
	if (!json && rc == CLI_EXIT_OK) {
		char b[32];

		cli_fmt_bytes(b, sizeof b, bytes);
		printf("%" PRIu64 " dead letter%s, %s%s\n", shown, shown == 1 ? "" : "s", b,
		       limit && shown == limit ? " (--limit reached)" : "");
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "spoolcap dlq ls: cannot write the output\n");
		rc = CLI_EXIT_DATA;
	}
	json_free(&j);
	cli_close(&c);
	free(ch.v);
	return rc;
}

/* --------------------------------------------------------------- show */

static int show_cb(const spool_dlq_entry *e, void *user)
{
	struct dl *d = user;

	dl_copy(d, e);
	d->record = malloc(e->record_len ? e->record_len : 1);
	if (!d->record)
		d->oom = 1;
	else
		memcpy(d->record, e->record, e->record_len);
	return 0;
}

static int dlq_show(int argc, char **argv)
{
	cli_spool c;
	struct dl d;
	json_buf j, pretty;
	record_view v;
	uint64_t seq;
	char why[256] = "";
	int opt, r, rc = CLI_EXIT_OK;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", help_only, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return CLI_EXIT_OK;
		}
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (optind + 2 != argc) {
		fprintf(stderr, "spoolcap dlq show: expected a spool directory and one SEQ\n");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (parse_seq("show", argv[optind + 1], &seq) < 0)
		return CLI_EXIT_USAGE;
	if (cli_open(&c, argv[optind], SPOOL_MODE_READONLY) < 0)
		return CLI_EXIT_USAGE;
	memset(&d, 0, sizeof d);
	r = spool_dlq_get(c.sp, seq, show_cb, &d);
	if (r == SPOOL_ENOENT) {
		fprintf(stderr, "spoolcap dlq show: %s holds no dead letter with seq %" PRIu64
		        " ('spoolcap dlq ls %s' lists them)\n", c.dir, seq, c.dir);
		cli_close(&c);
		return CLI_EXIT_DATA;
	}
	if (r < 0 || d.oom) {
		fprintf(stderr, "spoolcap dlq show: reading %s failed: %s\n", c.dir,
		        d.oom ? "out of memory" : spool_errmsg());
		free(d.record);
		cli_close(&c);
		return CLI_EXIT_DATA;
	}
	json_init(&j, 256u << 20);
	dl_json(&j, &d);
	jkey(&j, "event");
	if (cli_decode(&c, d.record, d.record_len, &v, why, sizeof why) != 0) {
		json_cstr_raw(&j, "null");
		jkey(&j, "error");
		json_str(&j, why, strlen(why));
		rc = CLI_EXIT_DATA;
	} else if (event_render(&j, &v, seq, spool_uuid(c.sp), NULL) != 0) {
		snprintf(why, sizeof why, "the record's arguments do not decode");
		json_cstr_raw(&j, "null");
		jkey(&j, "error");
		json_str(&j, why, strlen(why));
		rc = CLI_EXIT_DATA;
	}
	json_char(&j, '}');
	json_init(&pretty, 512u << 20);
	if (j.err || cli_json_pretty(&pretty, j.data, j.len) < 0) {
		fprintf(stderr, "spoolcap dlq show: out of memory\n");
		rc = CLI_EXIT_DATA;
	} else {
		json_char(&pretty, '\n');
		fwrite(pretty.data, 1, pretty.len, stdout);
	}
	json_free(&pretty);
	if (rc != CLI_EXIT_OK && why[0])
		fprintf(stderr, "spoolcap dlq show: seq %" PRIu64 " does not decode: %s\n",
		        seq, why);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "spoolcap dlq show: cannot write the output\n");
		rc = CLI_EXIT_DATA;
	}
	json_free(&j);
	free(d.record);
	cli_close(&c);
	return rc;
}

/* ------------------------------------------------------ requeue, purge */

/* The seqs to act on: the command line's, or every dead letter now. */
struct seqlist {
	uint64_t *v;
	size_t n, cap;
};

static int seq_push(struct seqlist *l, uint64_t s)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		uint64_t *v = realloc(l->v, cap * sizeof *v);

		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = s;
	return 0;
}

struct collect {
	struct seqlist *l;
	int oom;
};

static int collect_cb(const spool_dlq_entry *e, void *user)
{
	struct collect *c = user;

	if (seq_push(c->l, e->seq) < 0)
		c->oom = 1;
	return c->oom;
}

/* Every dead letter's seq, in order, read in short transactions. */
static int collect_all(cli_spool *c, struct seqlist *l)
{
	struct collect col = { l, 0 };
	uint64_t after = 0;

	for (;;) {
		size_t before = l->n;
		int n = spool_dlq_iterate(c->sp, after, 4096, collect_cb, &col);

		if (n < 0)
			return n;
		if (col.oom)
			return SPOOL_ENOMEM;
		if (l->n == before)
			return 0;
		after = l->v[l->n - 1];
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Parses "[SEQ...] [--all]" after DIR; opens the spool for writing. */
static int mut_args(const char *cmd, int argc, char **argv, cli_spool *c,
                    struct seqlist *l, int *all)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	size_t k;
	int opt, i;

	*all = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "ah", opts, NULL)) != -1) {
		switch (opt) {
		case 'a': *all = 1; break;
		case 'h': usage(stdout); return 1;
		default: usage(stderr); return -1;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "spoolcap dlq %s: expected a spool directory\n", cmd);
		usage(stderr);
		return -1;
	}
	if (*all == (optind + 1 < argc)) {
		fprintf(stderr, "spoolcap dlq %s: give either sequence numbers or --all\n", cmd);
		usage(stderr);
		return -1;
	}
	for (i = optind + 1; i < argc; i++) {
		uint64_t s;

		if (parse_seq(cmd, argv[i], &s) < 0)
			return -1;
		if (seq_push(l, s) < 0) {
			fprintf(stderr, "spoolcap dlq %s: out of memory\n", cmd);
			return -1;
		}
	}
	/* in seq order, each once (a repeated SEQ is not "missing" the second time) */
	if (l->n > 1)
		qsort(l->v, l->n, sizeof *l->v, cmp_u64);
	for (i = 0, k = 0; (size_t)i < l->n; i++)
		if (k == 0 || l->v[k - 1] != l->v[i])
			l->v[k++] = l->v[i];
	l->n = k;
	if (cli_open(c, argv[optind], SPOOL_MODE_CLIENT) < 0)
		return -1;
	if (spool_use_agent_limits(c->sp) < 0) {
		fprintf(stderr, "spoolcap dlq %s: %s\n", cmd, spool_errmsg());
		cli_close(c);
		return -1;
	}
	if (*all) {
		int r = collect_all(c, l);

		if (r < 0) {
			fprintf(stderr, "spoolcap dlq %s: reading %s failed: %s\n", cmd, c->dir,
			        r == SPOOL_ENOMEM ? "out of memory" : spool_errmsg());
			cli_close(c);
			return -1;
		}
	}
	return 0;
}

/* One dead letter being requeued: its record's length and FNV-1a hash,
 * to find it again under its new seq. */
struct rq {
	uint64_t seq, newseq, hash;
	size_t   len;
	int      present;
};

struct rq_batch {
	struct rq *v;
	size_t n, unmatched;
	uint64_t last;                /* the last seq the scan gave */
};

static uint64_t fnv1a(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 14695981039346656037ull;

	while (n--)
		h = (h ^ *b++) * 1099511628211ull;
	return h;
}

static int rq_get_cb(const spool_dlq_entry *e, void *user)
{
	struct rq *q = user;

	q->len = e->record_len;
	q->hash = fnv1a(e->record, e->record_len);
	q->present = 1;
	return 0;
}

static int rq_match_cb(uint64_t seq, const void *val, size_t len, void *user)
{
	struct rq_batch *b = user;
	uint64_t h = 0;
	int hashed = 0;

	b->last = seq;
	for (size_t i = 0; i < b->n; i++) {
		struct rq *q = &b->v[i];

		if (!q->present || q->newseq || q->len != len)
			continue;
		if (!hashed) {
			h = fnv1a(val, len);
			hashed = 1;
		}
		if (q->hash == h) {
			q->newseq = seq;
			b->unmatched--;
			break;
		}
	}
	return b->unmatched == 0;
}

/* Requeues one batch and prints OLD -> NEW for each. spool_dlq_requeue
 * does not say which seq each record got: it appends them at next_seq in
 * one transaction, so they are found again by content, scanning from the
 * next_seq seen before the call (records spoolcapd appends meanwhile
 * differ in their capture time, at least). */
static int rq_batch_run(cli_spool *c, struct rq_batch *b, uint64_t *done, uint64_t *missing)
{
	uint64_t arr[RQ_BATCH], after;
	spool_stats st;
	size_t k = 0, i;
	int r;

	for (i = 0; i < b->n; i++) {
		struct rq *q = &b->v[i];

		r = spool_dlq_get(c->sp, q->seq, rq_get_cb, q);
		if (r == SPOOL_ENOENT) {
			fprintf(stderr, "spoolcap dlq requeue: %s holds no dead letter with seq %"
			        PRIu64 "\n", c->dir, q->seq);
			(*missing)++;
			continue;
		}
		if (r < 0)
			return r;
		arr[k++] = q->seq;
	}
	if (k == 0)
		return 0;
	if ((r = spool_stat(c->sp, &st)) < 0)
		return r;
	if ((r = spool_dlq_requeue(c->sp, arr, k)) < 0)
		return r;
	*done += (uint64_t)r;
	b->unmatched = k;
	after = st.next_seq ? st.next_seq - 1 : 0;
	while (b->unmatched) {
		int n;

		b->last = 0;
		n = spool_scan(c->sp, after, SCAN_CHUNK, 0, rq_match_cb, b);
		if (n < 0)
			return n;
		if (n == 0 || b->last == 0)
			break;
		after = b->last;
	}
	for (i = 0; i < b->n; i++) {
		const struct rq *q = &b->v[i];

		if (!q->present)
			continue;
		if (q->newseq)
			printf("%" PRIu64 " -> %" PRIu64 "\n", q->seq, q->newseq);
		else
			printf("%" PRIu64 " -> ? (requeued, then delivered or removed before its "
			       "new seq could be read)\n", q->seq);
	}
	return 0;
}

static int dlq_requeue(int argc, char **argv)
{
	struct seqlist l = { NULL, 0, 0 };
	struct rq v[RQ_BATCH];
	struct rq_batch b = { v, 0, 0, 0 };
	uint64_t done = 0, missing = 0;
	cli_spool c;
	size_t i;
	int all, r = 0, rc;

	rc = mut_args("requeue", argc, argv, &c, &l, &all);
	if (rc != 0) {
		free(l.v);
		return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	}
	for (i = 0; i < l.n && r >= 0; i += b.n) {
		b.n = l.n - i < RQ_BATCH ? l.n - i : RQ_BATCH;
		memset(v, 0, sizeof v);
		for (size_t k = 0; k < b.n; k++)
			v[k].seq = l.v[i + k];
		r = rq_batch_run(&c, &b, &done, &missing);
	}
	rc = CLI_EXIT_OK;
	if (r < 0) {
		fprintf(stderr, "spoolcap dlq requeue: %s\n", spool_errmsg());
		rc = CLI_EXIT_DATA;
	}
	printf("requeued %" PRIu64 " dead letter%s\n", done, done == 1 ? "" : "s");
	if (missing)
		rc = CLI_EXIT_DATA;
	if (fflush(stdout) != 0)
		rc = CLI_EXIT_DATA;
	free(l.v);
	cli_close(&c);
	return rc;
}

static int exists_cb(const spool_dlq_entry *e, void *user)
{
	(void)e;
	(void)user;
	return 0;
}

static int dlq_purge(int argc, char **argv)
{
	struct seqlist l = { NULL, 0, 0 }, have = { NULL, 0, 0 };
	uint64_t missing = 0;
	cli_spool c;
	size_t i;
	int all, r = 0, rc;

	rc = mut_args("purge", argc, argv, &c, &l, &all);
	if (rc != 0) {
		free(l.v);
		return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	}
	rc = CLI_EXIT_OK;
	if (all) {
		/* the dead letters there were when we looked, not newer ones */
		r = l.n ? spool_dlq_purge(c.sp, l.v, l.n) : 0;
	} else {
		for (i = 0; i < l.n && r >= 0; i++) {
			r = spool_dlq_get(c.sp, l.v[i], exists_cb, NULL);
			if (r == SPOOL_ENOENT) {
				fprintf(stderr, "spoolcap dlq purge: %s holds no dead letter with seq %"
				        PRIu64 "\n", c.dir, l.v[i]);
				missing++;
				r = 0;
			} else if (r == 0 && seq_push(&have, l.v[i]) < 0) {
				r = SPOOL_ENOMEM;
			}
		}
		if (r >= 0)
			r = have.n ? spool_dlq_purge(c.sp, have.v, have.n) : 0;
	}
	if (r < 0) {
		fprintf(stderr, "spoolcap dlq purge: %s\n",
		        r == SPOOL_ENOMEM ? "out of memory" : spool_errmsg());
		rc = CLI_EXIT_DATA;
	} else {
		printf("purged %d dead letter%s (counted as dropped, reason purged)\n", r,
		       r == 1 ? "" : "s");
	}
	if (missing)
		rc = CLI_EXIT_DATA;
	if (fflush(stdout) != 0)
		rc = CLI_EXIT_DATA;
	free(l.v);
	free(have.v);
	cli_close(&c);
	return rc;
}

/* ----------------------------------------------------------- dispatch */

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} actions[] = {
	{ "ls", dlq_ls },
	{ "show", dlq_show },
	{ "requeue", dlq_requeue },
	{ "purge", dlq_purge },
};

static int find_action(const char *s)
{
	for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
		if (!strcmp(s, actions[i].name))
			return (int)i;
	return -1;
}

int cli_dlq(int argc, char **argv)
{
	int a;

	if (argc < 2) {
		fprintf(stderr, "spoolcap dlq: expected ls, show, requeue or purge\n");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	a = find_action(argv[1]);
	if (a < 0 && argc >= 3 && find_action(argv[2]) >= 0) {
		/* "spoolcap dlq DIR ls": accept the directory first too */
		char *dir = argv[1];

		a = find_action(argv[2]);
		argv[1] = argv[2];
		argv[2] = dir;
	}
	if (a < 0) {
		fprintf(stderr, "spoolcap dlq: unknown action '%s'; expected ls, show, "
		        "requeue or purge\n", argv[1]);
		return CLI_EXIT_USAGE;
	}
	return actions[a].run(argc - 1, argv + 1);
}
