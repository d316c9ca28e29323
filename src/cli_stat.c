/* cli_stat.c -- `spoolcap stat DIR [--json]`: what the spool holds, how far
 * delivery is behind, what was dropped or dead-lettered, and how the LMDB
 * file is used. Its cost does not grow with the spool: counts come from the
 * spool's counters, the compression ratio from the newest 1,000 records. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spoolcap/cli.h"
#include "spoolcap/event.h"

#define RATIO_SAMPLE 1000

struct ratio {
	uint64_t raw, stored, n;
};

static int ratio_cb(uint64_t seq, const void *val, size_t len, void *user)
{
	struct ratio *r = user;
	record_hdr h;

	(void)seq;
	if (record_hdr_parse(val, len, &h) == 0) {
		r->raw += h.raw_len + RECORD_HDR_SIZE;
		r->stored += len;
		r->n++;
	}
	return 0;
}

struct dicts {
	json_buf *j;            /* JSON array being built, or NULL for text */
	unsigned n;
};

static int dict_cb(const spool_dict_info *d, void *user)
{
	struct dicts *ds = user;
	char t[EVENT_TIME_LEN + 1];

	event_time_format(t, d->stored_ns);
	if (ds->j) {
		if (ds->n)
			json_char(ds->j, ',');
		json_cstr_raw(ds->j, "{\"id\":");
		json_u64(ds->j, d->id);
		json_cstr_raw(ds->j, ",\"bytes\":");
		json_u64(ds->j, d->len);
		json_cstr_raw(ds->j, ",\"stored\":");
		json_str(ds->j, t, strlen(t));
		json_cstr_raw(ds->j, ",\"last_seq\":");
		json_u64(ds->j, d->last_seq);
		json_char(ds->j, '}');
	} else {
		printf("  dictionary   %u: %zu bytes, stored %s, last used by seq %" PRIu64 "\n",
		       d->id, d->len, t, d->last_seq);
	}
	ds->n++;
	return 0;
}

static int64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void jkey_u64(json_buf *j, const char *k, uint64_t v)
{
	json_char(j, ',');
	json_str(j, k, strlen(k));
	json_char(j, ':');
	json_u64(j, v);
}

static void jkey_time(json_buf *j, const char *k, int64_t ns)
{
	char t[EVENT_TIME_LEN + 1];

	json_char(j, ',');
	json_str(j, k, strlen(k));
	json_char(j, ':');
	if (ns <= 0) {
		json_cstr_raw(j, "null");
		return;
	}
	event_time_format(t, ns);
	json_str(j, t, strlen(t));
}

static void print_json(cli_spool *c, const spool_stats *st, const struct ratio *r)
{
	json_buf j;
	struct dicts ds = { &j, 0 };
	int i;

	json_init(&j, 1u << 20);
	json_cstr_raw(&j, "{\"dir\":");
	json_str(&j, c->dir, strlen(c->dir));
	json_cstr_raw(&j, ",\"uuid\":");
	json_str(&j, st->uuid, strlen(st->uuid));
	jkey_u64(&j, "format", st->format_version);
	jkey_time(&j, "created", st->created_ns);
	jkey_u64(&j, "records", st->records);
	jkey_u64(&j, "bytes", st->bytes);
	jkey_u64(&j, "retained_records", st->retained_records);
	jkey_u64(&j, "retained_bytes", st->retained_bytes);
	jkey_u64(&j, "first_seq", st->first_seq);
	jkey_u64(&j, "first_pending_seq", st->first_pending_seq);
	jkey_u64(&j, "last_seq", st->last_seq);
	jkey_time(&j, "oldest_pending_time", st->first_pending_time_ns);
	jkey_time(&j, "newest_time", st->last_time_ns);
	json_cstr_raw(&j, ",\"oldest_pending_age_seconds\":");
	if (st->first_pending_time_ns > 0)
		json_u64(&j, (uint64_t)((wall_ns() - st->first_pending_time_ns) / 1000000000));
	else
		json_cstr_raw(&j, "null");
	jkey_u64(&j, "next_seq", st->next_seq);
	jkey_u64(&j, "cursor", st->cursor);
	jkey_u64(&j, "dead_letters", st->dlq_records);
	jkey_u64(&j, "dead_letter_bytes", st->dlq_bytes);
	json_cstr_raw(&j, ",\"dead_letters_by_reason\":{");
	for (i = 0, ds.n = 0; i < SPOOL_DLQ_NREASONS; i++) {
		const char *name = spool_dlq_reason_name(i);

		if (!st->dlq_by_reason[i] || !name)
			continue;
		if (ds.n++)
			json_char(&j, ',');
		json_str(&j, name, strlen(name));
		json_char(&j, ':');
		json_u64(&j, st->dlq_by_reason[i]);
	}
	json_char(&j, '}');
	json_cstr_raw(&j, ",\"counters\":{\"accepted\":");
	json_u64(&j, st->accepted);
	jkey_u64(&j, "delivered", st->delivered);
	jkey_u64(&j, "pruned", st->pruned);
	jkey_u64(&j, "dead_lettered", st->dead_lettered);
	jkey_u64(&j, "requeued", st->requeued);
	json_char(&j, '}');
	json_cstr_raw(&j, ",\"dropped\":{");
	for (i = 0; i < SPOOL_DROP_NREASONS; i++) {
		const char *name = spool_drop_reason_name(i);

		if (i)
			json_char(&j, ',');
		json_str(&j, name, strlen(name));
		json_char(&j, ':');
		json_u64(&j, st->dropped[i]);
	}
	json_char(&j, '}');
	json_cstr_raw(&j, ",\"dictionaries\":[");
	ds.n = 0;
	spool_dict_list(c->sp, dict_cb, &ds);
	json_char(&j, ']');
	json_cstr_raw(&j, ",\"compression\":{\"sampled_records\":");
	json_u64(&j, r->n);
	jkey_u64(&j, "raw_bytes", r->raw);
	jkey_u64(&j, "stored_bytes", r->stored);
	json_cstr_raw(&j, ",\"ratio\":");
	if (r->stored) {
		char num[32];

		snprintf(num, sizeof num, "%.3f", (double)r->raw / r->stored);
		json_cstr_raw(&j, num);
	} else {
		json_cstr_raw(&j, "null");
	}
	json_char(&j, '}');
	json_cstr_raw(&j, ",\"config\":{\"max_size\":");
	json_u64(&j, st->max_size);
	json_cstr_raw(&j, ",\"full_policy\":");
	json_str(&j, spool_full_policy_name(st->full_policy),
	         strlen(spool_full_policy_name(st->full_policy)));
	json_char(&j, '}');
	json_cstr_raw(&j, ",\"lmdb\":{\"map_size\":");
	json_u64(&j, st->map_size);
	jkey_u64(&j, "used_bytes", st->used_bytes);
	jkey_u64(&j, "file_bytes", st->file_bytes);
	jkey_u64(&j, "free_pages", st->free_pages);
	jkey_u64(&j, "page_size", st->page_size);
	jkey_u64(&j, "readers_used", st->readers_used);
	jkey_u64(&j, "readers_max", st->readers_max);
	json_cstr_raw(&j, "}}\n");
	fwrite(j.data, 1, j.len, stdout);
	json_free(&j);
}

static void print_text(cli_spool *c, const spool_stats *st, const struct ratio *r)
{
	char b1[32], b2[32], t[EVENT_TIME_LEN + 1], age[32];
	struct dicts ds = { NULL, 0 };
	int64_t now = wall_ns();
	int i, any;

	printf("spool          %s\n", c->dir);
	printf("uuid           %s\n", st->uuid);
	event_time_format(t, st->created_ns);
	printf("created        %s (format %u)\n", t, st->format_version);
	cli_fmt_bytes(b1, sizeof b1, st->bytes);
	cli_fmt_bytes(b2, sizeof b2, st->retained_bytes);
	printf("pending        %" PRIu64 " records, %s\n", st->records, b1);
	printf("retained       %" PRIu64 " records, %s (delivered, kept for replay)\n",
	       st->retained_records, b2);
	if (st->first_pending_seq) {
		event_time_format(t, st->first_pending_time_ns);
		cli_fmt_age(age, sizeof age, now - st->first_pending_time_ns);
		printf("first pending  seq %" PRIu64 ", captured %s (%s ago)\n",
		       st->first_pending_seq, st->first_pending_time_ns > 0 ? t : "?", age);
	}
	if (st->last_seq) {
		event_time_format(t, st->last_time_ns);
		cli_fmt_age(age, sizeof age, now - st->last_time_ns);
		printf("newest         seq %" PRIu64 ", captured %s (%s ago)\n", st->last_seq,
		       st->last_time_ns > 0 ? t : "?", age);
	}
	printf("next seq       %" PRIu64 "\n", st->next_seq);
	printf("cursor         %" PRIu64 " (delivered up to here; %" PRIu64 " pending behind it)\n",
	       st->cursor, st->records);
	cli_fmt_bytes(b1, sizeof b1, st->dlq_bytes);
	printf("dead letters   %" PRIu64 " (%s)", st->dlq_records, b1);
	for (i = 0, any = 0; i < SPOOL_DLQ_NREASONS; i++)
		if (st->dlq_by_reason[i] && spool_dlq_reason_name(i))
			printf("%s%s %" PRIu64, any++ ? ", " : ": ", spool_dlq_reason_name(i),
			       st->dlq_by_reason[i]);
	printf("\n");
	printf("accepted       %" PRIu64 "; delivered %" PRIu64 ", pruned %" PRIu64
	       ", dead-lettered %" PRIu64 ", requeued %" PRIu64 "\n",
	       st->accepted, st->delivered, st->pruned, st->dead_lettered, st->requeued);
	printf("dropped       ");
	for (i = 0; i < SPOOL_DROP_NREASONS; i++)
		printf(" %s %" PRIu64 "%s", spool_drop_reason_name(i), st->dropped[i],
		       i + 1 < SPOOL_DROP_NREASONS ? "," : "\n");
	cli_fmt_bytes(b1, sizeof b1, st->max_size);
	printf("limit          %s, when full: %s\n", b1, spool_full_policy_name(st->full_policy));
	printf("dictionaries   %" PRIu64 "\n", st->dicts);
	spool_dict_list(c->sp, dict_cb, &ds);
	if (r->stored)
		printf("compression    %.2fx over the newest %" PRIu64 " records (%" PRIu64
		       " bytes raw, %" PRIu64 " stored)\n",
		       (double)r->raw / r->stored, r->n, r->raw, r->stored);
	cli_fmt_bytes(b1, sizeof b1, st->file_bytes);
	cli_fmt_bytes(b2, sizeof b2, st->used_bytes);
	printf("lmdb           file %s, used %s, %" PRIu64 " free pages of %u bytes, map ",
	       b1, b2, st->free_pages, st->page_size);
	cli_fmt_bytes(b1, sizeof b1, st->map_size);
	printf("%s\n", b1);
	printf("readers        %u of %u slots in use\n", st->readers_used, st->readers_max);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: spoolcap stat DIR [--json]\n"
	        "Shows what the spool in DIR holds: pending and retained records, the\n"
	        "delivery cursor, dead letters, drops by reason, dictionaries, the\n"
	        "compression ratio and LMDB file use. Safe while spoolcapd runs.\n"
	        "  --json   one JSON object instead of the table\n");
}

int cli_stat(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	cli_spool c;
	spool_stats st;
	struct ratio r = { 0, 0, 0 };
	int json = 0, ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (ch) {
		case 'j': json = 1; break;
		case 'h': usage(stdout); return CLI_EXIT_OK;
		default: usage(stderr); return CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "spoolcap stat: expected exactly one spool directory\n");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (cli_open(&c, argv[optind], SPOOL_MODE_READONLY) < 0)
		return CLI_EXIT_USAGE;
	if (spool_stat(c.sp, &st) < 0) {
		fprintf(stderr, "spoolcap stat: %s\n", spool_errmsg());
		cli_close(&c);
		return CLI_EXIT_DATA;
	}
	if (st.last_seq)
		spool_scan(c.sp, st.last_seq > RATIO_SAMPLE ? st.last_seq - RATIO_SAMPLE : 0,
		           RATIO_SAMPLE, 0, ratio_cb, &r);
	if (json)
		print_json(&c, &st, &r);
	else
		print_text(&c, &st, &r);
	cli_close(&c);
	return CLI_EXIT_OK;
}
