/* cli_walk.c -- the walk behind spoolcap ls/dump/export/replay: matching
 * records of the queue and the dead-letter table, merged in seq order,
 * copied out of LMDB in bounded batches (one short read transaction each)
 * and handed to a callback outside any transaction (see cli_filter.h). */
#include "config.h"

#include "spoolcap/cli_filter.h"

#include <stdlib.h>
#include <string.h>

#include "spoolcap/recbatch.h"

#define BATCH_RECORDS 1000
#define BATCH_BYTES   (8u << 20)
/* Records a transaction may look at while skipping ones outside the time
 * bounds, so skipping never makes a transaction long. */
#define VISIT_MAX     (BATCH_RECORDS * 16)

/* A batch from one table, copied out of its read transaction. */
struct source {
	recbatch        b;
	spool_dlq_info *info;       /* dead letters: per record (snippets in snip) */
	int64_t        *dead_ns;
	uint8_t        *snip;       /* BATCH_RECORDS x SPOOL_SNIPPET_MAX */
	size_t          pos;        /* next record of b to hand out */
	uint64_t        after;      /* resume after this seq */
	uint64_t        hi;         /* last seq wanted */
	int             done;
	int             dlq;
};

struct fill_ctx {
	struct source   *s;
	const cli_filter *f;
	uint64_t         last;      /* last seq looked at */
	size_t           visited;
	int              end;       /* went past s->hi */
};

static int in_time(const cli_filter *f, const void *val, size_t len)
{
	record_hdr h;

	if (!f->has_since && !f->has_until)
		return 1;
	if (record_hdr_parse(val, len, &h) != 0)
		return 1;               /* damaged: let the walk report it */
	if (f->has_since && h.time_ns < f->since_ns)
		return 0;
	if (f->has_until && h.time_ns >= f->until_ns)
		return 0;
	return 1;
}

/* Appends one record to the batch (inside the transaction: copy only). */
static int batch_add(recbatch *b, uint64_t seq, const void *val, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 1u << 16;
		uint8_t *d;

		while (cap < b->len + len)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d) {
			b->oom = 1;
			return -1;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, val, len);
	b->seq[b->n] = seq;
	b->off[b->n] = b->len;
	b->len += len;
	b->off[++b->n] = b->len;
	return 0;
}

static int visit(struct fill_ctx *x, uint64_t seq, const void *val, size_t len)
{
	struct source *s = x->s;

	if (seq > s->hi) {
		x->end = 1;
		return -1;
	}
	x->last = seq;
	x->visited++;
	if (!in_time(x->f, val, len))
		return 0;
	if (batch_add(&s->b, seq, val, len) < 0)
		return -1;
	return 1;
}

/* Ends the transaction: the batch holds enough, or enough was looked at. */
static int full(const struct fill_ctx *x)
{
	const recbatch *b = &x->s->b;

	return b->n >= b->max || b->len >= BATCH_BYTES || x->visited >= VISIT_MAX;
}

static int q_cb(uint64_t seq, const void *val, size_t len, void *user)
{
	struct fill_ctx *x = user;

	if (visit(x, seq, val, len) < 0)
		return 1;
	return full(x);
}

static int dlq_cb(const spool_dlq_entry *e, void *user)
{
	struct fill_ctx *x = user;
	struct source *s = x->s;
	size_t i = s->b.n;
	int rc = visit(x, e->seq, e->record, e->record_len);

	if (rc < 0)
		return 1;
	if (rc > 0) {
		size_t n = e->info.snippet_len < SPOOL_SNIPPET_MAX ? e->info.snippet_len
		                                                   : SPOOL_SNIPPET_MAX;

		s->info[i] = e->info;
		if (n)
			memcpy(s->snip + i * SPOOL_SNIPPET_MAX, e->info.snippet, n);
		s->info[i].snippet = s->snip + i * SPOOL_SNIPPET_MAX;
		s->info[i].snippet_len = n;
		s->dead_ns[i] = e->dead_ns;
	}
	return full(x);
}

/* Refills an exhausted source: 0, or a negative spool error. */
static int refill(struct source *s, cli_spool *c, const cli_filter *f, int pending_only)
{
	struct fill_ctx x;
	int n;

	s->b.n = 0;
	s->b.len = 0;
	s->b.oom = 0;
	s->pos = 0;
	if (s->done)
		return 0;
	memset(&x, 0, sizeof x);
	x.s = s;
	x.f = f;
	if (s->dlq)
		n = spool_dlq_iterate(c->sp, s->after, VISIT_MAX, dlq_cb, &x);
	else if (pending_only)
		n = spool_read(c->sp, s->after, VISIT_MAX, BATCH_BYTES, q_cb, &x);
	else
		n = spool_scan(c->sp, s->after, VISIT_MAX, BATCH_BYTES, q_cb, &x);
	if (n < 0)
		return n;
	if (s->b.oom)
		return SPOOL_ENOMEM;
	if (x.end || x.visited == 0 || x.last >= s->hi)
		s->done = 1;
	else
		s->after = x.last;
	return 0;
}

struct probe_ctx {
	uint64_t seq;
	int64_t  t;                 /* -1: header unreadable */
	int      found;
};

static int probe_cb(uint64_t seq, const void *val, size_t len, void *user)
{
	struct probe_ctx *p = user;
	record_hdr h;

	p->found = 1;
	p->seq = seq;
	p->t = record_hdr_parse(val, len, &h) == 0 ? h.time_ns : -1;
	return 1;
}

/* The smallest seq s in [lo, hi + 1] such that the first record at or after
 * s is past hi or captured at target or later (a damaged header counts as
 * unknown_is_late): a lower bound over capture times that grow with seq.
 * Each probe is one read transaction reading one record header. */
static int seek_time(cli_spool *c, uint64_t lo, uint64_t hi, int64_t target,
                     int unknown_is_late, uint64_t *out)
{
	uint64_t l = lo, r = hi + 1;

	while (l < r) {
		uint64_t mid = l + (r - l) / 2;
		struct probe_ctx p = { 0, 0, 0 };
		int rc = spool_scan(c->sp, mid - 1, 1, 0, probe_cb, &p), late;

		if (rc < 0)
			return rc;
		if (!p.found || p.seq > hi)
			late = 1;
		else if (p.t < 0)
			late = unknown_is_late;
		else
			late = p.t >= target;
		if (late)
			r = mid;
		else
			l = p.seq + 1;
	}
	*out = l;
	return 0;
}

static void source_free(struct source *s)
{
	recbatch_free(&s->b);
	free(s->info);
	free(s->dead_ns);
	free(s->snip);
}

/* Decodes r (reloading the dictionaries once per unknown id: the daemon may
 * have stored one since we opened the spool). */
static void decode(cli_spool *c, cli_rec *r, record_view *view, char *why, size_t whylen,
                   uint32_t *reloaded)
{
	int rc;

	rc = cli_decode(c, r->stored, r->stored_len, view, why, whylen);
	if (rc == RECORD_EDICT && r->hdr_ok && r->hdr.dict_id && r->hdr.dict_id != *reloaded) {
		char err[256];

		*reloaded = r->hdr.dict_id;
		if (dictcache_load(c->dc, c->sp, err, sizeof err) > 0)
			rc = cli_decode(c, r->stored, r->stored_len, view, why, whylen);
	}
	r->err = rc;
	r->why = rc ? why : "";
	r->view = rc ? NULL : view;
}

int cli_filter_iterate(cli_spool *c, const cli_filter *f, cli_rec_fn *cb, void *user)
{
	struct source q, d;
	spool_stats st;
	uint64_t lo = f->from ? f->from : 1, hi = f->to ? f->to : UINT64_MAX, cursor = 0, done = 0;
	unsigned want = f->states;
	int pending_only = want & CLI_STATE_PENDING && !(want & CLI_STATE_DELIVERED);
	uint32_t reloaded = 0;
	char why[256];
	int rc = 0;

	memset(&q, 0, sizeof q);
	memset(&d, 0, sizeof d);
	if ((rc = spool_stat(c->sp, &st)) < 0)
		return rc;
	if (recbatch_init(&q.b, BATCH_RECORDS) < 0 || recbatch_init(&d.b, BATCH_RECORDS) < 0 ||
	    !(d.info = calloc(BATCH_RECORDS, sizeof *d.info)) ||
	    !(d.dead_ns = calloc(BATCH_RECORDS, sizeof *d.dead_ns)) ||
	    !(d.snip = malloc((size_t)BATCH_RECORDS * SPOOL_SNIPPET_MAX))) {
		rc = SPOOL_ENOMEM;
		goto out;
	}
	d.dlq = 1;
	d.after = lo - 1;
	d.hi = hi < st.next_seq ? hi : st.next_seq - 1;    /* what exists now */
	d.done = !(want & CLI_STATE_DEAD);

	/* The queue: seq bounds, then the states, then the time bounds. */
	q.hi = hi < st.last_seq ? hi : st.last_seq;
	if (lo < st.first_seq)
		lo = st.first_seq;
	if (!(want & CLI_STATE_DELIVERED) && lo <= st.cursor)
		lo = st.cursor + 1;
	if (!(want & CLI_STATE_PENDING) && q.hi > st.cursor)
		q.hi = st.cursor;
	q.done = !(want & (CLI_STATE_PENDING | CLI_STATE_DELIVERED)) || st.last_seq == 0 ||
	         lo > q.hi;
	if (!q.done && !st.requeued && f->has_since) {
		int64_t t = f->since_ns - CLI_FILTER_TIME_SLACK_NS;

		if ((rc = seek_time(c, lo, q.hi, t, 1, &lo)) < 0)
			goto out;
	}
	if (!q.done && !st.requeued && f->has_until && lo <= q.hi &&
	    f->until_ns <= INT64_MAX - CLI_FILTER_TIME_SLACK_NS) {
		uint64_t end;

		if ((rc = seek_time(c, lo, q.hi, f->until_ns + CLI_FILTER_TIME_SLACK_NS, 0, &end)) < 0)
			goto out;
		q.hi = end - 1;
	}
	if (lo > q.hi)
		q.done = 1;
	q.after = lo - 1;

	for (;;) {
		struct source *s;
		record_view view;
		cli_rec r;
		size_t i;

		if (q.pos == q.b.n && !q.done) {
			if ((rc = spool_cursor_get(c->sp, &cursor)) < 0 ||
			    (rc = refill(&q, c, f, pending_only)) < 0)
				goto out;
			continue;
		}
		if (d.pos == d.b.n && !d.done) {
			if ((rc = refill(&d, c, f, 0)) < 0)
				goto out;
			continue;
		}
		if (q.pos == q.b.n && d.pos == d.b.n)
			break;
		if (d.pos == d.b.n || (q.pos < q.b.n && q.b.seq[q.pos] < d.b.seq[d.pos]))
			s = &q;
		else
			s = &d;
		i = s->pos++;
		memset(&r, 0, sizeof r);
		r.seq = s->b.seq[i];
		r.stored = s->b.data + s->b.off[i];
		r.stored_len = s->b.off[i + 1] - s->b.off[i];
		if (s->dlq) {
			r.state = CLI_STATE_DEAD;
			r.dlq = &d.info[i];
			r.dead_ns = d.dead_ns[i];
		} else {
			r.state = !pending_only && r.seq <= cursor ? CLI_STATE_DELIVERED
			                                           : CLI_STATE_PENDING;
			if (!(r.state & want))
				continue;       /* the cursor moved over it meanwhile */
		}
		r.hdr_ok = record_hdr_parse(r.stored, r.stored_len, &r.hdr) == 0;
		decode(c, &r, &view, why, sizeof why, &reloaded);
		if (r.err == 0 && !cli_filter_match(f, r.view))
			continue;
		if (cb(c, &r, user)) {
			rc = 1;
			goto out;
		}
		if (r.err == 0 && f->limit && ++done >= f->limit)
			break;
	}
	rc = 0;
out:
	source_free(&q);
	source_free(&d);
	return rc;
}
