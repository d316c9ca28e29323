/* cli_ndjson.c -- matching records as NDJSON events: event_render + '\n'
 * for each, exactly the lines spoolcapd POSTs (spoolcap dump and export). */
#include "config.h"

#include <inttypes.h>
#include <string.h>

#include "spoolcap/cli_export.h"
#include "spoolcap/event.h"

#define FLUSH_BYTES (1u << 20)

struct nd {
	json_buf          j;
	cli_out          *o;
	const char       *prog;
	cli_export_stats *st;
};

static int flush(struct nd *x)
{
	int rc = cli_out_write(x->o, x->j.data, x->j.len);

	json_reset(&x->j);
	return rc;
}

static int nd_cb(cli_spool *c, const cli_rec *r, void *user)
{
	struct nd *x = user;

	if (r->err) {
		fprintf(stderr, "%s: seq %" PRIu64 " skipped: %s (the record is damaged; "
		        "the others are still written)\n", x->prog, r->seq, r->why);
		x->st->bad++;
		return 0;
	}
	if (event_render(&x->j, r->view, r->seq, spool_uuid(c->sp), NULL) != 0) {
		fprintf(stderr, "%s: seq %" PRIu64 " skipped: %s\n", x->prog, r->seq,
		        x->j.err ? "out of memory" : "its arguments do not decode");
		x->st->bad++;
		json_rollback(&x->j, x->j.len);
		return 0;
	}
	json_char(&x->j, '\n');
	x->st->events++;
	if (x->j.len >= FLUSH_BYTES)
		return flush(x) < 0;
	return 0;
}

int cli_export_ndjson(cli_spool *c, const cli_filter *f, cli_out *o, cli_export_stats *st)
{
	struct nd x;
	int rc;

	memset(&x, 0, sizeof x);
	json_init(&x.j, 256u << 20);
	x.o = o;
	x.prog = f->prog;
	x.st = st;
	rc = cli_filter_iterate(c, f, nd_cb, &x);
	if (rc < 0)
		fprintf(stderr, "%s: reading %s failed: %s\n", f->prog, c->dir,
		        rc == SPOOL_ENOMEM ? "out of memory" : spool_errmsg());
	if (rc >= 0 && flush(&x) < 0)
		rc = -1;
	json_free(&x.j);
	return rc < 0 || o->failed ? -1 : 0;
}
