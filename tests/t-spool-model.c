/* t-spool-model.c -- randomized model test of the spool (the Vector
 * disk-buffer approach, with kill -9 crashes as in rsyslog's crash
 * driver).
 *
 * For each seed: rounds of random operations (appends of inline and
 * overflow-page sizes with content f(id), reads, scans, cursor advances,
 * dead-lettering, requeue, purges, prunes, reopen, sync, and fills under
 * both full policies with and without retention). The parent plans each
 * round against an exact in-memory model of the spool, so it knows the
 * result of every operation and the model state after each one. A forked
 * child runs the operations on the real spool and writes each result to a
 * pipe after the call returns; it exits normally, or is SIGKILLed at a
 * named crash point (SPOOLCAP_CRASH_POINT/AFTER) or at a random moment.
 * The parent then reopens the spool and checks it equals the model after
 * the last reported operation, or after the one in flight (a commit is
 * atomic): every record byte-identical, seqs never reused, the cursor,
 * the dead letters with their fields, and every counter.
 *
 * Usage: t-spool-model [SEED [ROUNDS]]. Without a seed it runs a fixed
 * set plus one random seed. Each seed is printed as a TAP diag line so a
 * failure can be replayed. */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spoolcap/spool.h"
#include "tap.h"

#define MAXQ    4096       /* records (max_size 512 KiB / min len 200 < 4096) */
#define MAXD    1024
#define MAXOPS  40
#define MAXK    64         /* items per append */
#define MINLEN  200

enum { C_ACCEPTED, C_DELIVERED, C_PRUNED, C_DLQ_IN, C_REQUEUED,
       C_DROP0, C_DLQR0 = C_DROP0 + SPOOL_DROP_NREASONS,
       C_N = C_DLQR0 + SPOOL_DLQ_NREASONS };

typedef struct { uint64_t seq, id; uint32_t len; } mrec;
typedef struct {
	uint64_t seq, id;
	uint32_t len, attempts, snip;
	int reason, status;
} mdlq;

typedef struct model {
	mrec q[MAXQ];
	int nq;
	mdlq d[MAXD];
	int nd;
	uint64_t next_seq, cursor;
	uint64_t qr, qb, rr, rb, dr, db;
	uint64_t c[C_N];
} model;

/* what a round runs with */
typedef struct rcfg {
	uint64_t max_size, retain_bytes, initial_map;
	int64_t retain_ns;
	int policy, sync;
} rcfg;

enum op_type { OP_APPEND, OP_READ, OP_SCAN, OP_ADVANCE, OP_DLQ_PUT, OP_REQUEUE,
               OP_DLQ_PURGE, OP_PRUNE, OP_PURGE, OP_REOPEN, OP_SYNC, OP_NTYPES };
static const char *const op_names[] = { "append", "read", "scan", "advance",
	"dlq_put", "requeue", "dlq_purge", "prune", "purge", "reopen", "sync" };

typedef struct op {
	int type;
	int k;                     /* append: items; requeue/purge: seqs (0 = all) */
	uint64_t id0;
	uint32_t len[MAXK];
	uint64_t seq[4];
	uint64_t a, b;             /* read: after, max_records; advance/purge: upto */
	uint64_t c;                /* read: max_bytes; purge: include_pending; prune: far */
	spool_dlq_info info;
	uint32_t snip;
} op;

typedef struct expect { int32_t rc; uint64_t a, b, c, d; } expect;
typedef struct report { int32_t idx, rc; uint64_t a, b, c, d; } report;

static char base[256];
static uint64_t rng;
static int failures;

static uint64_t rnd(void)
{
	uint64_t x = rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng = x;
}

static uint64_t rnd_in(uint64_t lo, uint64_t hi)      /* inclusive */
{
	return lo + rnd() % (hi - lo + 1);
}

/* ----------------------------------------------------- record contents */

#define VHDR 16
static void make_val(uint8_t *p, size_t len, uint64_t id)
{
	uint64_t s = id * 0x9E3779B97F4A7C15ull + 1, x;

	memset(p, 0, VHDR);
	memcpy(p + 4, &(uint32_t){ (uint32_t)len }, 4);
	memcpy(p + 8, &id, 8);
	for (size_t i = VHDR; i < len; i++) {
		x = s;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		s = x;
		p[i] = (uint8_t)(x >> 24);
	}
}

static int check_val(const void *v, size_t len, uint64_t *idp)
{
	static uint8_t buf[32 * 1024];
	uint64_t id;
	uint32_t l;

	if (len < VHDR || len > sizeof(buf))
		return 0;
	memcpy(&l, (const uint8_t *)v + 4, 4);
	memcpy(&id, (const uint8_t *)v + 8, 8);
	*idp = id;
	if (l != len)
		return 0;
	make_val(buf, len, id);
	return memcmp(buf, v, len) == 0;
}

static void snip_bytes(uint8_t *p, uint32_t n, uint64_t seq)
{
	for (uint32_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seq * 7 + i * 13);
}

/* --------------------------------------------------------------- model */

static int retention_on(const rcfg *rc)
{
	return rc->retain_ns > 0 || rc->retain_bytes > 0;
}

static void q_del(model *m, int i)
{
	memmove(&m->q[i], &m->q[i + 1], (size_t)(m->nq - i - 1) * sizeof(mrec));
	m->nq--;
}

static void d_del(model *m, int i)
{
	memmove(&m->d[i], &m->d[i + 1], (size_t)(m->nd - i - 1) * sizeof(mdlq));
	m->nd--;
}

/* delete the first q record, as retained (pruned) or pending (counter) */
static void q_del_first(model *m, int pend_counter)
{
	mrec r = m->q[0];

	q_del(m, 0);
	if (r.seq <= m->cursor) {
		m->rr--;
		m->rb -= r.len;
		m->c[C_PRUNED]++;
	} else {
		m->qr--;
		m->qb -= r.len;
		m->c[pend_counter]++;
	}
}

static uint64_t used(const model *m)
{
	return m->qb + m->rb + m->db;
}

/* mirrors make_room() in src/spool_queue.c */
static int m_make_room(model *m, const rcfg *rc, uint64_t len)
{
	uint64_t max = rc->max_size;

	if (len <= max && used(m) <= max - len)
		return 1;
	if (rc->policy == SPOOL_FULL_DROP_NEWEST) {
		if (len > max || m->qb + m->db > max - len)
			return 0;
	} else if (len > max || m->db > max - len) {
		return 0;
	}
	while (used(m) > max - len && m->rr > 0)
		q_del_first(m, -1);
	while (used(m) > max - len) {
		if (rc->policy != SPOOL_FULL_DROP_OLDEST || m->qr == 0)
			return 0;
		q_del_first(m, C_DROP0 + SPOOL_DROP_EVICTED);
	}
	return 1;
}

static uint64_t digest_add(uint64_t h, uint64_t seq, int drop)
{
	return h * 1000003u + seq * 31u + (uint64_t)(drop + 2);
}

static void m_append(model *m, const rcfg *rc, const op *o, expect *e)
{
	uint64_t h = 0, first = 0, last = 0;
	int stored = 0;

	for (int i = 0; i < o->k; i++) {
		uint32_t len = o->len[i];

		if (!m_make_room(m, rc, len) || m->nq >= MAXQ) {
			m->c[C_DROP0 + SPOOL_DROP_FULL]++;
			h = digest_add(h, 0, SPOOL_DROP_FULL);
			continue;
		}
		m->q[m->nq++] = (mrec){ m->next_seq, o->id0 + (uint64_t)i, len };
		h = digest_add(h, m->next_seq, -1);
		if (!first)
			first = m->next_seq;
		last = m->next_seq;
		m->next_seq++;
		m->qr++;
		m->qb += len;
		m->c[C_ACCEPTED]++;
		stored++;
	}
	*e = (expect){ stored, first, last, h, 0 };
}

static void m_read(const model *m, const op *o, int pending_only, expect *e)
{
	uint64_t after = o->a, bytes = 0, first = 0, last = 0, maxr = o->b;
	int n = 0;

	if (pending_only && after < m->cursor)
		after = m->cursor;
	for (int i = 0; i < m->nq; i++) {
		if (m->q[i].seq <= after)
			continue;
		if (maxr && (uint64_t)n >= maxr)
			break;
		if (o->c && n > 0 && bytes + m->q[i].len > o->c)
			break;
		n++;
		bytes += m->q[i].len;
		if (!first)
			first = m->q[i].seq;
		last = m->q[i].seq;
	}
	*e = (expect){ n, first, last, bytes, 0 };
}

static void m_advance(model *m, const rcfg *rc, uint64_t upto, expect *e)
{
	*e = (expect){ 0, 0, 0, 0, 0 };
	if (upto > m->next_seq - 1)
		upto = m->next_seq - 1;
	if (upto <= m->cursor)
		return;
	if (!retention_on(rc)) {
		while (m->nq > 0 && m->q[0].seq <= upto)
			q_del_first(m, C_DELIVERED);
		m->cursor = upto;
		return;
	}
	for (int i = 0; i < m->nq; i++)
		if (m->q[i].seq > m->cursor && m->q[i].seq <= upto) {
			m->qr--;
			m->qb -= m->q[i].len;
			m->rr++;
			m->rb += m->q[i].len;
			m->c[C_DELIVERED]++;
		}
	m->cursor = upto;
	while (rc->retain_bytes && m->rb > rc->retain_bytes && m->rr > 0)
		q_del_first(m, -1);
}

static void m_prune(model *m, const rcfg *rc, int far, expect *e)
{
	uint64_t boundary = m->cursor;
	int n = 0;

	if (retention_on(rc))
		boundary = (rc->retain_ns && far) ? m->cursor : 0;
	while (m->nq > 0 && m->q[0].seq <= m->cursor &&
	       (m->q[0].seq <= boundary || (rc->retain_bytes && m->rb > rc->retain_bytes))) {
		q_del_first(m, -1);
		n++;
	}
	*e = (expect){ n, 0, 0, 0, 0 };
}

static void m_purge(model *m, uint64_t upto, int incl, expect *e)
{
	int n = 0;

	while (m->nq > 0 && m->q[0].seq <= upto && (m->q[0].seq <= m->cursor || incl)) {
		q_del_first(m, C_DROP0 + SPOOL_DROP_PURGED);
		n++;
	}
	*e = (expect){ n, 0, 0, 0, 0 };
}

static int m_find_q(const model *m, uint64_t seq)
{
	for (int i = 0; i < m->nq; i++)
		if (m->q[i].seq == seq)
			return i;
	return -1;
}

static int m_find_d(const model *m, uint64_t seq)
{
	for (int i = 0; i < m->nd; i++)
		if (m->d[i].seq == seq)
			return i;
	return -1;
}

static void d_remove(model *m, int i, int drop)
{
	m->dr--;
	m->db -= m->d[i].len;
	m->c[C_DLQR0 + m->d[i].reason]--;
	if (drop >= 0)
		m->c[C_DROP0 + drop]++;
	d_del(m, i);
}

static void m_dlq_put(model *m, const rcfg *rc, const op *o, uint64_t dlq_max, expect *e)
{
	uint64_t seq = o->seq[0];
	int i = m_find_q(m, seq), at;
	mrec r;

	(void)rc;
	if (i < 0 || seq <= m->cursor || m->nd >= MAXD) {
		*e = (expect){ SPOOL_ENOENT, 0, 0, 0, 0 };
		return;
	}
	r = m->q[i];
	q_del(m, i);
	m->qr--;
	m->qb -= r.len;
	for (at = 0; at < m->nd && m->d[at].seq < seq; at++)
		;
	memmove(&m->d[at + 1], &m->d[at], (size_t)(m->nd - at) * sizeof(mdlq));
	m->d[at] = (mdlq){ seq, r.id, r.len, o->info.attempts,
	                   o->snip > SPOOL_SNIPPET_MAX ? SPOOL_SNIPPET_MAX : o->snip,
	                   o->info.reason, o->info.http_status };
	m->nd++;
	m->dr++;
	m->db += r.len;
	m->c[C_DLQ_IN]++;
	m->c[C_DLQR0 + o->info.reason]++;
	while (m->db > dlq_max && m->dr > 1) {
		int v = m->d[0].seq == seq ? 1 : 0;
		d_remove(m, v, SPOOL_DROP_DLQ_EVICTED);
	}
	*e = (expect){ 0, 0, 0, 0, 0 };
}

static void m_requeue(model *m, const op *o, int requeue, expect *e)
{
	int n = 0;

	for (int j = 0; o->k ? j < o->k : m->nd > 0; j++) {
		int i = o->k ? m_find_d(m, o->seq[j]) : 0;
		mdlq d;

		if (i < 0)
			continue;
		d = m->d[i];
		d_remove(m, i, requeue ? -1 : SPOOL_DROP_PURGED);
		if (requeue) {
			m->q[m->nq++] = (mrec){ m->next_seq++, d.id, d.len };
			m->qr++;
			m->qb += d.len;
			m->c[C_REQUEUED]++;
		}
		n++;
	}
	*e = (expect){ n, 0, 0, 0, 0 };
}

/* Plans op o on m (applying it) and fills the expected result. */
static void m_apply(model *m, const rcfg *rc, op *o, uint64_t dlq_max, expect *e)
{
	*e = (expect){ 0, 0, 0, 0, 0 };
	switch (o->type) {
	case OP_APPEND:    m_append(m, rc, o, e); break;
	case OP_READ:      m_read(m, o, 1, e); break;
	case OP_SCAN:      m_read(m, o, 0, e); break;
	case OP_ADVANCE:   m_advance(m, rc, o->a, e); break;
	case OP_DLQ_PUT:   m_dlq_put(m, rc, o, dlq_max, e); break;
	case OP_REQUEUE:   m_requeue(m, o, 1, e); break;
	case OP_DLQ_PURGE: m_requeue(m, o, 0, e); break;
	case OP_PRUNE:     m_prune(m, rc, (int)o->c, e); break;
	case OP_PURGE:     m_purge(m, o->a, (int)o->c, e); break;
	default:           break;
	}
}

/* ------------------------------------------------------------ planning */

static uint32_t rnd_len(int fill)
{
	uint64_t r = rnd() % 100;

	if (fill || r >= 85)
		return (uint32_t)rnd_in(8200, 20000);     /* several overflow pages */
	if (r >= 60)
		return (uint32_t)rnd_in(2023, 8200);      /* one or two overflow pages */
	if (r >= 55)
		return (uint32_t)rnd_in(2000, 2100);      /* around the inline limit */
	return (uint32_t)rnd_in(MINLEN, 2022);        /* inline */
}

static uint64_t pick_pending(const model *m)
{
	int n = 0, k;

	for (int i = 0; i < m->nq; i++)
		n += m->q[i].seq > m->cursor;
	if (!n)
		return m->next_seq + rnd_in(0, 3);        /* a missing one */
	k = (int)rnd_in(1, (uint64_t)n);
	for (int i = 0; i < m->nq; i++)
		if (m->q[i].seq > m->cursor && --k == 0)
			return m->q[i].seq;
	return 0;
}

static void plan_op(const model *m, op *o, uint64_t *next_id)
{
	static const int weight[OP_NTYPES] = { 38, 8, 4, 16, 8, 4, 3, 5, 2, 3, 2 };
	int total = 0, r, fill = 0;

	memset(o, 0, sizeof(*o));
	for (int i = 0; i < OP_NTYPES; i++)
		total += weight[i];
	r = (int)(rnd() % (uint64_t)total);
	for (o->type = 0; r >= weight[o->type]; o->type++)
		r -= weight[o->type];
	switch (o->type) {
	case OP_APPEND:
		fill = rnd() % 5 == 0;                 /* a burst that hits the cap */
		o->k = fill ? MAXK : (int)rnd_in(1, rnd() % 3 ? 8 : MAXK);
		o->id0 = *next_id;
		*next_id += (uint64_t)o->k;
		for (int i = 0; i < o->k; i++)
			o->len[i] = rnd_len(fill);
		break;
	case OP_READ:
	case OP_SCAN:
		o->a = rnd() % 3 ? 0 : m->cursor + rnd_in(0, 20);
		o->b = rnd() % 2 ? 0 : rnd_in(1, 50);
		o->c = rnd() % 2 ? 0 : rnd_in(1, 100000);
		break;
	case OP_ADVANCE:
		if (rnd() % 10 == 0)
			o->a = m->next_seq + rnd_in(0, 100);        /* clamped */
		else if (rnd() % 10 == 0)
			o->a = m->cursor > 3 ? m->cursor - rnd_in(0, 3) : 0;  /* no-op */
		else
			o->a = pick_pending(m);
		break;
	case OP_DLQ_PUT:
		o->seq[0] = rnd() % 8 ? pick_pending(m) : rnd_in(0, m->next_seq);
		o->info.reason = (int)rnd_in(0, 5);
		o->info.http_status = (int)rnd_in(0, 599);
		o->info.attempts = (uint32_t)rnd_in(0, 30);
		o->info.first_ns = (int64_t)rnd_in(1, 1000000);
		o->info.last_ns = o->info.first_ns + 5;
		o->snip = (uint32_t)(rnd() % 4 ? rnd_in(0, 600) : 0);
		break;
	case OP_REQUEUE:
	case OP_DLQ_PURGE:
		o->k = rnd() % 3 ? (int)rnd_in(1, 4) : 0;
		for (int j = 0; j < o->k; j++)
			o->seq[j] = m->nd && rnd() % 5 ? m->d[rnd() % (uint64_t)m->nd].seq
			                               : rnd_in(1, m->next_seq);
		if (o->k == 2 && rnd() % 2)
			o->seq[1] = o->seq[0];             /* a duplicate in the list */
		break;
	case OP_PRUNE:
		o->c = rnd() % 2;
		break;
	case OP_PURGE:
		o->a = m->nq ? m->q[rnd() % (uint64_t)m->nq].seq : rnd_in(0, 5);
		o->c = rnd() % 2;
		break;
	}
}

/* ---------------------------------------------------------------- child */

static spool_config make_cfg(const rcfg *rc)
{
	spool_config c;

	memset(&c, 0, sizeof(c));
	c.max_size = rc->max_size;
	c.full_policy = rc->policy;
	c.sync_mode = rc->sync;
	c.retain_ns = rc->retain_ns;
	c.retain_bytes = rc->retain_bytes;
	c.initial_mapsize = rc->initial_map;
	c.disk_reserve = UINT64_MAX;
	return c;
}

struct rd {
	uint64_t first, last, bytes, bad;
	int n;
};

static int rd_cb(uint64_t seq, const void *v, size_t len, void *u)
{
	struct rd *r = u;
	uint64_t id;

	if (!check_val(v, len, &id))
		r->bad++;
	if (!r->n)
		r->first = seq;
	r->last = seq;
	r->bytes += len;
	r->n++;
	return 0;
}

static void report_write(int fd, const report *r)
{
	if (write(fd, r, sizeof(*r)) != (ssize_t)sizeof(*r))
		_exit(4);
}

static void child_run(int fd, const char *dir, const rcfg *rc, const op *ops, int nops)
{
	static uint8_t buf[MAXK * 20001];
	spool_config cfg = make_cfg(rc);
	spool *sp = NULL;
	report r;

	if (spool_open(&sp, dir, &cfg, SPOOL_MODE_AGENT, NULL, 0) != 0) {
		r = (report){ -1, -1, 0, 0, 0, 0 };
		report_write(fd, &r);
		_exit(3);
	}
	for (int i = 0; i < nops; i++) {
		const op *o = &ops[i];
		spool_item items[MAXK];
		spool_append_result res[MAXK];
		struct rd rd;
		uint8_t snip[600];
		spool_dlq_info info;
		size_t off = 0;
		uint64_t h = 0;

		memset(&r, 0, sizeof(r));
		r.idx = i;
		switch (o->type) {
		case OP_APPEND:
			for (int j = 0; j < o->k; j++) {
				make_val(buf + off, o->len[j], o->id0 + (uint64_t)j);
				items[j].data = buf + off;
				items[j].len = o->len[j];
				off += o->len[j];
			}
			r.rc = spool_append(sp, items, (size_t)o->k, res);
			for (int j = 0; j < o->k && r.rc >= 0; j++) {
				h = digest_add(h, res[j].seq, res[j].drop);
				if (res[j].seq && !r.a)
					r.a = res[j].seq;
				if (res[j].seq)
					r.b = res[j].seq;
			}
			r.c = h;
			break;
		case OP_READ:
		case OP_SCAN:
			memset(&rd, 0, sizeof(rd));
			r.rc = (o->type == OP_READ ? spool_read : spool_scan)(sp, o->a, o->b, o->c,
			                                                        rd_cb, &rd);
			r.a = rd.first;
			r.b = rd.last;
			r.c = rd.bytes;
			r.d = rd.bad;
			break;
		case OP_ADVANCE:
			r.rc = spool_advance(sp, o->a);
			break;
		case OP_DLQ_PUT:
			info = o->info;
			snip_bytes(snip, o->snip, o->seq[0]);
			info.snippet = snip;
			info.snippet_len = o->snip;
			r.rc = spool_dlq_put(sp, o->seq[0], &info);
			break;
		case OP_REQUEUE:
			r.rc = spool_dlq_requeue(sp, o->k ? o->seq : NULL, (size_t)o->k);
			break;
		case OP_DLQ_PURGE:
			r.rc = spool_dlq_purge(sp, o->k ? o->seq : NULL, (size_t)o->k);
			break;
		case OP_PRUNE:
			r.rc = spool_prune(sp, o->c ? INT64_MAX / 2 : 0);
			break;
		case OP_PURGE:
			r.rc = spool_purge(sp, o->a, (int)o->c);
			break;
		case OP_REOPEN:
			spool_close(sp);
			sp = NULL;
			r.rc = spool_open(&sp, dir, &cfg, SPOOL_MODE_AGENT, NULL, 0);
			if (r.rc)
				_exit(5);
			break;
		case OP_SYNC:
			r.rc = spool_sync(sp);
			break;
		}
		report_write(fd, &r);
	}
	spool_close(sp);
	_exit(0);
}

/* --------------------------------------------------------- verification */

typedef struct actual {
	spool_stats st;
	mrec q[MAXQ + 16];
	int nq, badq;
	mdlq d[MAXD + 16];
	int nd, badd;
} actual;

static int act_q(uint64_t seq, const void *v, size_t len, void *u)
{
	actual *a = u;
	uint64_t id = 0;

	if (!check_val(v, len, &id))
		a->badq++;
	if (a->nq < MAXQ + 16)
		a->q[a->nq] = (mrec){ seq, id, (uint32_t)len };
	a->nq++;
	return 0;
}

static int act_d(const spool_dlq_entry *e, void *u)
{
	actual *a = u;
	uint8_t snip[SPOOL_SNIPPET_MAX];
	uint64_t id = 0;

	if (!check_val(e->record, e->record_len, &id))
		a->badd++;
	snip_bytes(snip, (uint32_t)e->info.snippet_len, e->seq);
	if (e->info.snippet_len > SPOOL_SNIPPET_MAX ||
	    memcmp(snip, e->info.snippet, e->info.snippet_len) != 0 ||
	    e->info.first_ns <= 0 || e->info.last_ns < e->info.first_ns || e->dead_ns <= 0)
		a->badd++;
	if (a->nd < MAXD + 16)
		a->d[a->nd] = (mdlq){ e->seq, id, (uint32_t)e->record_len, e->info.attempts,
		                      (uint32_t)e->info.snippet_len, e->info.reason,
		                      e->info.http_status };
	a->nd++;
	return 0;
}

static int model_started;     /* a spool exists (a child opened it) */

static int load_actual(const char *dir, actual *a)
{
	char err[512];
	spool *sp;
	int rc;

	memset(a, 0, sizeof(*a));
	rc = spool_open(&sp, dir, NULL, SPOOL_MODE_READONLY, err, sizeof(err));
	if (rc == SPOOL_ENOTSPOOL && !model_started) {
		/* killed before the first commit created the spool: it is empty */
		a->st.next_seq = 1;
		return 0;
	}
	if (rc) {
		tap_diag("READONLY open failed: %s", err);
		return -1;
	}
	model_started = 1;
	rc = spool_stat(sp, &a->st);
	if (!rc)
		rc = spool_scan(sp, 0, 0, 0, act_q, a) < 0;
	if (!rc)
		rc = spool_dlq_iterate(sp, 0, 0, act_d, a) < 0;
	if (rc)
		tap_diag("reading the spool failed: %s", spool_errmsg());
	spool_close(sp);
	return rc ? -1 : 0;
}

/* Returns NULL if a equals m, else what differs. */
static const char *compare(const model *m, const actual *a, char *why, size_t wl)
{
	const spool_stats *s = &a->st;
	uint64_t ctr[C_N];

	if (a->badq || a->badd)
		return snprintf(why, wl, "%d queued / %d dead records with wrong bytes",
		                a->badq, a->badd), why;
	if (a->nq != m->nq)
		return snprintf(why, wl, "%d records in q, model %d", a->nq, m->nq), why;
	for (int i = 0; i < m->nq; i++)
		if (a->q[i].seq != m->q[i].seq || a->q[i].id != m->q[i].id ||
		    a->q[i].len != m->q[i].len)
			return snprintf(why, wl, "q[%d]: seq %llu id %llu len %u, model seq %llu "
			                "id %llu len %u", i, (unsigned long long)a->q[i].seq,
			                (unsigned long long)a->q[i].id, a->q[i].len,
			                (unsigned long long)m->q[i].seq,
			                (unsigned long long)m->q[i].id, m->q[i].len), why;
	if (a->nd != m->nd)
		return snprintf(why, wl, "%d dead letters, model %d", a->nd, m->nd), why;
	for (int i = 0; i < m->nd; i++)
		if (a->d[i].seq != m->d[i].seq || a->d[i].id != m->d[i].id ||
		    a->d[i].len != m->d[i].len || a->d[i].attempts != m->d[i].attempts ||
		    a->d[i].snip != m->d[i].snip || a->d[i].reason != m->d[i].reason ||
		    a->d[i].status != m->d[i].status)
			return snprintf(why, wl, "dlq[%d] seq %llu differs (model seq %llu)", i,
			                (unsigned long long)a->d[i].seq,
			                (unsigned long long)m->d[i].seq), why;
	if (s->next_seq != m->next_seq || s->cursor != m->cursor)
		return snprintf(why, wl, "next_seq %llu cursor %llu, model %llu %llu",
		                (unsigned long long)s->next_seq, (unsigned long long)s->cursor,
		                (unsigned long long)m->next_seq,
		                (unsigned long long)m->cursor), why;
	if (s->records != m->qr || s->bytes != m->qb || s->retained_records != m->rr ||
	    s->retained_bytes != m->rb || s->dlq_records != m->dr || s->dlq_bytes != m->db)
		return snprintf(why, wl, "sizes q %llu/%llu r %llu/%llu d %llu/%llu, model "
		                "%llu/%llu %llu/%llu %llu/%llu",
		                (unsigned long long)s->records, (unsigned long long)s->bytes,
		                (unsigned long long)s->retained_records,
		                (unsigned long long)s->retained_bytes,
		                (unsigned long long)s->dlq_records,
		                (unsigned long long)s->dlq_bytes, (unsigned long long)m->qr,
		                (unsigned long long)m->qb, (unsigned long long)m->rr,
		                (unsigned long long)m->rb, (unsigned long long)m->dr,
		                (unsigned long long)m->db), why;
	ctr[C_ACCEPTED] = s->accepted;
	ctr[C_DELIVERED] = s->delivered;
	ctr[C_PRUNED] = s->pruned;
	ctr[C_DLQ_IN] = s->dead_lettered;
	ctr[C_REQUEUED] = s->requeued;
	for (int i = 0; i < SPOOL_DROP_NREASONS; i++)
		ctr[C_DROP0 + i] = s->dropped[i];
	for (int i = 0; i < SPOOL_DLQ_NREASONS; i++)
		ctr[C_DLQR0 + i] = s->dlq_by_reason[i];
	for (int i = 0; i < C_N; i++)
		if (ctr[i] != m->c[i])
			return snprintf(why, wl, "counter %d is %llu, model %llu", i,
			                (unsigned long long)ctr[i],
			                (unsigned long long)m->c[i]), why;
	/* seqs strictly increasing and below next_seq; pending after cursor */
	for (int i = 0; i < a->nq; i++)
		if ((i && a->q[i].seq <= a->q[i - 1].seq) || a->q[i].seq >= s->next_seq)
			return snprintf(why, wl, "q seq order broken at %d", i), why;
	if (s->first_pending_seq && s->first_pending_seq <= s->cursor)
		return snprintf(why, wl, "first pending %llu <= cursor",
		                (unsigned long long)s->first_pending_seq), why;
	return NULL;
}

/* ----------------------------------------------------------------- run */

static const char *const crash_points[] = { "after_put_before_commit", "after_commit",
	"inside_advance", "during_dlq_move" };

static int run_seed(uint64_t seed, int rounds)
{
	static model states[MAXOPS + 1];
	static actual act;
	static op ops[MAXOPS];
	static expect exp[MAXOPS];
	char dir[320], why[512];
	uint64_t next_id = 1, max_size, dlq_max, initial_map;
	int failed = 0, crashes = 0, cp_crashes = 0, ambiguous_after = 0, total_ops = 0;

	rng = seed * 0x9E3779B97F4A7C15ull + 0x1234567;
	if (!rng)
		rng = 1;
	snprintf(dir, sizeof(dir), "%s/seed-%llu", base, (unsigned long long)seed);
	max_size = rnd_in(32 * 1024, 512 * 1024);
	dlq_max = max_size / 4;
	initial_map = rnd() % 2 ? 128 * 1024 : 0;
	memset(&states[0], 0, sizeof(model));
	states[0].next_seq = 1;
	model_started = 0;

	for (int round = 0; round < rounds && !failed; round++) {
		rcfg rc;
		int nops = (int)rnd_in(3, MAXOPS), fds[2], status, nrep = 0, mode, kill_after;
		const char *cp = NULL;
		int cp_after = 1;
		report rep;
		pid_t pid;

		rc.max_size = max_size;
		rc.policy = (int)(rnd() % 2);
		rc.sync = (int)(rnd() % 10 == 0 ? SPOOL_SYNC_DURABLE : rnd() % 2);
		rc.initial_map = initial_map;
		switch (rnd() % 4) {
		case 0: rc.retain_ns = 0; rc.retain_bytes = 0; break;
		case 1: rc.retain_ns = 0; rc.retain_bytes = rnd_in(4096, max_size / 2); break;
		case 2: rc.retain_ns = 3600ll * 1000000000ll;
		        rc.retain_bytes = rnd_in(4096, max_size / 2); break;
		default: rc.retain_ns = 3600ll * 1000000000ll; rc.retain_bytes = 0; break;
		}
		if (rnd() % 2)
			rc.retain_ns = rc.retain_bytes = 0;   /* half the rounds without */
		for (int i = 0; i < nops; i++) {
			states[i + 1] = states[i];
			plan_op(&states[i], &ops[i], &next_id);
			m_apply(&states[i + 1], &rc, &ops[i], dlq_max, &exp[i]);
		}
		mode = (int)(rnd() % 4);           /* 0,1 clean; 2 crash point; 3 timed kill */
		kill_after = (int)rnd_in(0, (uint64_t)nops - 1);
		if (mode == 2) {
			cp = crash_points[rnd() % 4];
			cp_after = (int)rnd_in(1, 3);
		}
		if (pipe(fds) != 0)
			return 0;
		pid = fork();
		if (pid == 0) {
			close(fds[0]);
			if (cp) {
				char n[16];
				snprintf(n, sizeof(n), "%d", cp_after);
				setenv("SPOOLCAP_CRASH_POINT", cp, 1);
				setenv("SPOOLCAP_CRASH_AFTER", n, 1);
			}
			child_run(fds[1], dir, &rc, ops, nops);
		}
		close(fds[1]);
		for (int killed = 0;;) {
			ssize_t r;

			if (mode == 3 && !killed && nrep == kill_after) {
				kill(pid, SIGKILL);        /* somewhere inside op kill_after */
				killed = 1;
			}
			r = read(fds[0], &rep, sizeof(rep));
			if (r != (ssize_t)sizeof(rep))
				break;
			if (rep.idx != nrep) {
				tap_diag("round %d: child reported op %d, expected %d (open failed?)",
				         round, rep.idx, nrep);
				failed = 1;
				break;
			}
			if (rep.rc != exp[nrep].rc || rep.a != exp[nrep].a || rep.b != exp[nrep].b ||
			    rep.c != exp[nrep].c || rep.d != exp[nrep].d) {
				tap_diag("round %d op %d (%s): got rc %d a %llu b %llu c %llu d %llu, "
				         "model rc %d a %llu b %llu c %llu d %llu (%s)", round, nrep,
				         op_names[ops[nrep].type], rep.rc, (unsigned long long)rep.a,
				         (unsigned long long)rep.b, (unsigned long long)rep.c,
				         (unsigned long long)rep.d, exp[nrep].rc,
				         (unsigned long long)exp[nrep].a, (unsigned long long)exp[nrep].b,
				         (unsigned long long)exp[nrep].c, (unsigned long long)exp[nrep].d,
				         rep.rc < 0 ? spool_strerror(rep.rc) : "");
				failed = 1;
			}
			nrep++;
		}
		close(fds[0]);
		waitpid(pid, &status, 0);
		total_ops += nrep;
		if (failed)
			break;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			if (nrep != nops) {
				tap_diag("round %d: child exited after %d of %d ops", round, nrep, nops);
				failed = 1;
				break;
			}
			if (load_actual(dir, &act) || compare(&states[nops], &act, why, sizeof(why))) {
				tap_diag("round %d (clean, %d ops): %s", round, nops, why);
				failed = 1;
				break;
			}
			states[0] = states[nops];
			model_started = 1;
		} else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
			const char *w0, *w1 = "not in flight";
			int j = nrep;

			crashes++;
			cp_crashes += cp != NULL;
			if (load_actual(dir, &act)) {
				failed = 1;
				break;
			}
			/* the op in flight either committed (j + 1) or not (j) */
			w0 = compare(&states[j], &act, why, sizeof(why));
			if (w0 && j < nops) {
				char why1[512];
				w1 = compare(&states[j + 1], &act, why1, sizeof(why1));
				if (!w1) {
					j++;
					ambiguous_after++;
				} else {
					tap_diag("round %d: killed during op %d (%s)%s%s: before: %s; "
					         "after: %s", round, nrep, op_names[ops[nrep].type],
					         cp ? " at " : "", cp ? cp : "", w0, why1);
					failed = 1;
					break;
				}
			} else if (w0) {
				tap_diag("round %d: killed after all ops: %s", round, w0);
				failed = 1;
				break;
			}
			/* a crash point fixes which side it must be */
			if (cp && nrep < nops &&
			    j != (!strcmp(cp, "after_commit") ? nrep + 1 : nrep)) {
				tap_diag("round %d: crash at %s in op %d (%s) left it %s", round, cp,
				         nrep, op_names[ops[nrep].type],
				         j == nrep ? "not committed" : "committed");
				failed = 1;
				break;
			}
			states[0] = states[j];
		} else {
			tap_diag("round %d: child status %d", round, status);
			failed = 1;
			break;
		}
	}
	if (!failed)
		tap_diag("seed %llu: %d rounds, %d ops, max_size %llu, %d kills (%d at crash "
		         "points, %d landed after the commit)", (unsigned long long)seed, rounds,
		         total_ops, (unsigned long long)max_size, crashes, cp_crashes,
		         ambiguous_after);
	return !failed;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

int main(int argc, char **argv)
{
	static const uint64_t fixed[] = { 1, 2, 3, 42, 20251126, 0xC0FFEE };
	const char *tmp = getenv("TMPDIR");
	int rounds = 40, n = 0;
	uint64_t seeds[8];

	snprintf(base, sizeof(base), "%s/t-spool-model.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	unsetenv("SPOOLCAP_CRASH_POINT");
	unsetenv("SPOOLCAP_CRASH_AFTER");
	if (argc > 1) {
		seeds[n++] = strtoull(argv[1], NULL, 0);
		if (argc > 2)
			rounds = atoi(argv[2]);
	} else {
		for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
			seeds[n++] = fixed[i];
		seeds[n++] = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	}
	tap_plan(n);
	for (int i = 0; i < n; i++) {
		tap_diag("seed %llu (replay: tests/t-spool-model %llu %d)",
		         (unsigned long long)seeds[i], (unsigned long long)seeds[i], rounds);
		if (!tap_ok(run_seed(seeds[i], rounds), "model seed %llu",
		            (unsigned long long)seeds[i]))
			failures++;
	}
	if (!failures)          /* keep the spools of a failed run for a look */
		nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	else
		tap_diag("spools kept in %s", base);
	return tap_done(1);
}
