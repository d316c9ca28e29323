/* cli_pair.c -- the HAR export: pairs each request event with its response
 * event by the uid argument, in one pass over the spool, and writes a HAR
 * entry per pair (cli_har.c renders it).
 *
 * Entries come out in the order their first event was captured (HAR
 * prefers startedDateTime order). A half waits for its partner until
 * events captured PAIR_WINDOW later are seen, then is written alone and
 * marked; events without a uid are written alone at once (so is a half
 * whose uid a later event of the same kind reuses). Memory is
 * bounded: when more than PAIR_MAX_BYTES or PAIR_MAX_HELD events wait, the
 * complete pairs stuck behind an incomplete one are written out of order
 * first, and only if that is not enough the oldest incomplete one is given
 * up. Each waiting event is a copy of its decoded payload. */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "spoolcap/cli_export.h"
#include "spoolcap/cli_har.h"

#define PAIR_WINDOW_NS  (300 * (int64_t)1000000000)  /* 5 min: beyond any sane timeout server */
#define PAIR_MAX_BYTES  (256u << 20)
#define PAIR_MAX_HELD   1000000u
#define FLUSH_BYTES     (1u << 20)

struct half {
	uint8_t *raw;               /* decoded payload copy; NULL: not seen */
	size_t   len;
	uint64_t seq;
	int      truncated;
};

struct slot {
	struct slot *next, *prev;   /* capture order */
	struct half  req, res;
	int64_t      t0;            /* capture time of the first half */
	uint8_t     *uid;           /* NULL: cannot be paired */
	size_t       uid_len;
	int          mapped;
};

struct pairer {
	struct slot  *head, *tail;
	struct slot **map;          /* open addressing on uid, linear probing */
	size_t        cap, count;
	size_t        held_bytes, held;
	json_buf      j;
	cli_out      *o;
	const char   *prog;
	cli_export_stats *st;
	int           started;      /* an entry was written: separate the next */
	int           oom;
};

/* ---- uid map ---- */

static uint64_t hash(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	while (n--)
		h = (h ^ *p++) * 1099511628211ull;
	return h;
}

static size_t map_find(struct pairer *x, const uint8_t *uid, size_t len)
{
	size_t i = (size_t)hash(uid, len) & (x->cap - 1);

	while (x->map[i] && (x->map[i]->uid_len != len || memcmp(x->map[i]->uid, uid, len)))
		i = (i + 1) & (x->cap - 1);
	return i;
}

static struct slot *map_get(struct pairer *x, const uint8_t *uid, size_t len)
{
	return x->cap ? x->map[map_find(x, uid, len)] : NULL;
}

static int map_grow(struct pairer *x)
{
	struct slot **old = x->map;
	size_t oldcap = x->cap, i;

	x->cap = oldcap ? oldcap * 2 : 1024;
	x->map = calloc(x->cap, sizeof *x->map);
	if (!x->map) {
		x->map = old;
		x->cap = oldcap;
		return -1;
	}
	for (i = 0; i < oldcap; i++)
		if (old[i])
			x->map[map_find(x, old[i]->uid, old[i]->uid_len)] = old[i];
	free(old);
	return 0;
}

/* Maps s->uid to s (replacing an older slot with the same uid). */
static int map_put(struct pairer *x, struct slot *s)
{
	size_t i;

	if ((x->count + 1) * 2 > x->cap && map_grow(x) < 0)
		return -1;
	i = map_find(x, s->uid, s->uid_len);
	if (x->map[i])
		x->map[i]->mapped = 0;
	else
		x->count++;
	x->map[i] = s;
	s->mapped = 1;
	return 0;
}

/* Backward-shift deletion keeps every probe chain unbroken. */
static void map_del(struct pairer *x, struct slot *s)
{
	size_t i, j, home;

	if (!s->mapped)
		return;
	s->mapped = 0;
	i = map_find(x, s->uid, s->uid_len);
	x->map[i] = NULL;
	x->count--;
	for (j = (i + 1) & (x->cap - 1); x->map[j]; j = (j + 1) & (x->cap - 1)) {
		home = (size_t)hash(x->map[j]->uid, x->map[j]->uid_len) & (x->cap - 1);
		/* Move it back when its home is not in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			x->map[i] = x->map[j];
			x->map[j] = NULL;
			i = j;
		}
	}
}

/* ---- slots ---- */

/* Nothing more can join it: both halves are here, or its uid is not (or
 * no longer: a later event with the same uid took it over) in the map. */
static int complete(const struct slot *s)
{
	return !s->mapped || (s->req.raw && s->res.raw);
}

static void flush(struct pairer *x)
{
	cli_out_write(x->o, x->j.data, x->j.len);
	json_reset(&x->j);
}

static void unlink_slot(struct pairer *x, struct slot *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		x->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		x->tail = s->prev;
	map_del(x, s);
	x->held_bytes -= s->req.len + s->res.len + s->uid_len;
	x->held -= (s->req.raw != NULL) + (s->res.raw != NULL);
	free(s->req.raw);
	free(s->res.raw);
	free(s->uid);
	free(s);
}

static int view_of(const struct half *h, record_view *v)
{
	return h->raw && record_parse_payload(h->raw, h->len, v) == 0;
}

static void emit(struct pairer *x, struct slot *s)
{
	record_view rq, rs;
	cli_har_half req = { NULL, s->req.seq, s->req.truncated };
	cli_har_half res = { NULL, s->res.seq, s->res.truncated };
	size_t mark = x->j.len;

	if (view_of(&s->req, &rq))
		req.v = &rq;
	if (view_of(&s->res, &rs))
		res.v = &rs;
	if (req.v || res.v) {
		if (x->started)
			json_raw(&x->j, ",\n", 2);
		x->started = 1;
		cli_har_entry(&x->j, &req, &res);
		if (x->j.err) {
			json_rollback(&x->j, mark);
			x->oom = 1;
		} else {
			x->st->entries++;
			x->st->unpaired += !req.v || !res.v;
		}
	}
	unlink_slot(x, s);
	if (x->j.len >= FLUSH_BYTES)
		flush(x);
}

/* Writes what is ready: complete slots at the head, and the ones that
 * waited long enough; then enforces the memory bounds. */
static void drain(struct pairer *x, int64_t now)
{
	struct slot *s, *next;

	while (x->head && (complete(x->head) || now - x->head->t0 > PAIR_WINDOW_NS))
		emit(x, x->head);
	if (x->held_bytes <= PAIR_MAX_BYTES && x->held <= PAIR_MAX_HELD)
		return;
	for (s = x->head; s; s = next) {
		next = s->next;
		if (complete(s))
			emit(x, s);
	}
	while (x->head && (x->held_bytes > PAIR_MAX_BYTES || x->held > PAIR_MAX_HELD))
		emit(x, x->head);
}

static int fill(struct pairer *x, struct half *h, const cli_spool *c, const cli_rec *r)
{
	if (!(h->raw = malloc(c->raw.len ? c->raw.len : 1)))
		return -1;
	memcpy(h->raw, c->raw.data, c->raw.len);
	h->len = c->raw.len;
	h->seq = r->seq;
	h->truncated = r->hdr_ok && (r->hdr.flags & RECORD_F_TRUNCATED);
	x->held_bytes += h->len;
	x->held++;
	return 0;
}

static struct slot *new_slot(struct pairer *x, const spop_str *uid, int64_t t)
{
	struct slot *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	s->t0 = t;
	if (uid) {
		if (!(s->uid = malloc(uid->len))) {
			free(s);
			return NULL;
		}
		memcpy(s->uid, uid->ptr, uid->len);
		s->uid_len = uid->len;
		if (map_put(x, s) < 0) {
			free(s->uid);
			free(s);
			return NULL;
		}
		x->held_bytes += uid->len;
	}
	s->prev = x->tail;
	if (x->tail)
		x->tail->next = s;
	else
		x->head = s;
	x->tail = s;
	return s;
}

static int pair_cb(cli_spool *c, const cli_rec *r, void *user)
{
	struct pairer *x = user;
	int kind;
	spop_data u;
	spop_str uid, *up = NULL;
	struct slot *s;

	if (r->err) {
		fprintf(stderr, "%s: seq %" PRIu64 " skipped: %s (the record is damaged; "
		        "the others are still written)\n", x->prog, r->seq, r->why);
		x->st->bad++;
		return 0;
	}
	kind = cli_har_kind(r->view);
	if (kind == CLI_HAR_OTHER) {
		x->st->other++;
		return 0;
	}
	x->st->events++;
	if (cli_rec_arg(r->view, "uid", 3, &u) && (u.type == SPOP_T_STRING ||
	    u.type == SPOP_T_BINARY) && u.v.s.len) {
		uid = u.v.s;
		up = &uid;
	}
	s = up ? map_get(x, uid.ptr, uid.len) : NULL;
	if (!s || (kind == CLI_HAR_REQUEST ? s->req.raw != NULL : s->res.raw != NULL))
		s = new_slot(x, up, r->view->recv_ns);
	if (!s || fill(x, kind == CLI_HAR_REQUEST ? &s->req : &s->res, c, r) < 0) {
		x->oom = 1;
		return 1;
	}
	if (complete(s))
		map_del(x, s);
	drain(x, r->view->recv_ns);
	return x->oom || x->o->failed;
}

int cli_export_har(cli_spool *c, const cli_filter *f, cli_out *o, cli_export_stats *st)
{
	struct pairer x;
	int rc;

	memset(&x, 0, sizeof x);
	json_init(&x.j, 256u << 20);
	x.o = o;
	x.prog = f->prog;
	x.st = st;
	cli_har_begin(&x.j, spool_uuid(c->sp), c->dir);
	rc = cli_filter_iterate(c, f, pair_cb, &x);
	if (rc < 0)
		fprintf(stderr, "%s: reading %s failed: %s\n", f->prog, c->dir,
		        rc == SPOOL_ENOMEM ? "out of memory" : spool_errmsg());
	while (x.head)
		emit(&x, x.head);
	if (x.oom)
		fprintf(stderr, "%s: out of memory while pairing requests and responses\n",
		        f->prog);
	cli_har_end(&x.j);
	flush(&x);
	json_free(&x.j);
	free(x.map);
	return rc < 0 || x.oom || o->failed ? -1 : 0;
}
