/* spool_sink.c -- the sink that holds each ACK until its records are
 * committed to the spool (see spool_sink.h for the flow).
 *
 * Threads: I/O threads run submit() (encode + compress + enqueue); one
 * writer thread group-commits and completes jobs; one sync thread flushes
 * the data file on a timer in "process" durability mode; one trainer thread
 * builds the zstd dictionary once. The only shared structures are the job
 * queue (mutex + condition variable) and the sample buffer (trylock, so an
 * I/O thread never waits for it). */
#include "config.h"

#include "spoolcap/spool_sink.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spoolcap/dictcache.h"
#include "spoolcap/log.h"
#include "spoolcap/record.h"

#define PRUNE_EVERY_NS   (10LL * 1000000000)   /* retention and dictionary GC */
#define READERS_EVERY_NS (30LL * 1000000000)   /* stale LMDB reader slots */
#define SAMPLE_MAX_BYTES (8u << 20)           /* bound on training input */

/* One NOTIFY's records, as queued for the writer: lens[n] then the bytes. */
struct job {
	struct job   *next;
	sink_done_fn *done;          /* NULL once ACKed on receipt */
	void         *arg;
	uint64_t      token;
	uint32_t      n;
	int           partial;       /* a message could not be encoded */
	size_t        bytes;
	uint32_t      lens[];        /* followed by the record bytes */
};

/* Counters one thread writes and others read (single writer: a relaxed
 * load + store is enough and costs a plain mov on x86). */
typedef _Atomic uint64_t ctr;

static inline void ctr_add(ctr *c, uint64_t v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
	                      memory_order_relaxed);
}

static inline uint64_t ctr_get(ctr *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* Per I/O thread state, on its own cache lines. */
struct worker {
	record_cctx *cctx;
	redact_ctx  *rctx;           /* NULL without redaction */
	record_buf   buf;
	uint32_t    *lens;
	unsigned     lens_cap;
	ctr notifies, messages, dropped_encode, dropped_queue;
	ctr raw, stored, raw_dict, stored_dict;
} __attribute__((aligned(64)));

typedef struct ssink {
	sink               base;
	spool             *sp;
	spool_sink_config  cfg;
	struct worker     *w;
	record_slot       *slot;
	dictcache         *dc;
	redact_rules      *redact;       /* NULL: messages are stored as received */

	/* the job queue */
	pthread_mutex_t    mu;
	pthread_cond_t     cv;
	struct job        *head, *tail;
	size_t             qbytes;
	unsigned           qrecords;
	int                stop;
	pthread_t          writer;

	/* background sync */
	pthread_mutex_t    smu;
	pthread_cond_t     scv;
	int                sstop;
	pthread_t          syncer;
	int                has_syncer;

	/* dictionary training */
	pthread_mutex_t    tmu;
	pthread_cond_t     tcv;
	atomic_int         collecting;   /* I/O threads copy samples while set */
	int                tstop, tready;
	uint8_t           *samples;
	size_t            *sizes;
	unsigned           nsamples;
	size_t             sbytes;
	pthread_t          trainer;
	int                has_trainer;

	atomic_int         fatal_seen;

	/* drop reporting (writer thread only) */
	uint64_t           drop_by[SPOOL_DROP_NREASONS];
	uint64_t           logged_by[SPOOL_DROP_NREASONS + 2];  /* + queue, encode */
	int64_t            next_drop_log;

	/* writer counters */
	ctr spooled, dropped_spool, commits, commit_records, commit_ns_total, commit_ns_max;
	ctr syncs, sync_ns_max;
} ssink;

static int64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void abs_deadline(struct timespec *ts, double seconds)
{
	int64_t t = now_ns(CLOCK_REALTIME) + (int64_t)(seconds * 1e9);

	ts->tv_sec = t / 1000000000;
	ts->tv_nsec = t % 1000000000;
}

static void fatal(ssink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fatal(ssink *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (atomic_exchange(&s->fatal_seen, 1))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_error("%s", msg);
	if (s->cfg.fatal)
		s->cfg.fatal(s->cfg.fatal_arg, msg);
}

/* ---- I/O threads ---- */

static void take_sample(ssink *s, const void *p, size_t len)
{
	int full = 0;

	if (pthread_mutex_trylock(&s->tmu) != 0)
		return;                  /* the trainer or another thread has it */
	if (!atomic_load(&s->collecting))
		goto out;
	if (s->sbytes + len <= SAMPLE_MAX_BYTES) {
		memcpy(s->samples + s->sbytes, p, len);
		s->sizes[s->nsamples++] = len;
		s->sbytes += len;
	} else {
		full = 1;                /* large messages: train on what we have */
	}
	if (s->nsamples == s->cfg.dict_samples || full) {
		atomic_store(&s->collecting, 0);
		s->tready = 1;
		pthread_cond_signal(&s->tcv);
	}
out:
	pthread_mutex_unlock(&s->tmu);
}

static int lens_reserve(struct worker *w, unsigned n)
{
	uint32_t *l;
	unsigned cap = w->lens_cap ? w->lens_cap : 16;

	if (n <= w->lens_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	l = realloc(w->lens, cap * sizeof *l);
	if (!l)
		return -1;
	w->lens = l;
	w->lens_cap = cap;
	return 0;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static int ss_submit(sink *base, const sink_notify *n, sink_done_fn *done,
                     void *arg, uint64_t token)
{
	ssink *s = (ssink *)base;
	struct worker *w = &s->w[n->worker % s->cfg.workers];
	record_meta meta = {
		.recv_ns = n->recv_ns, .sid = n->sid, .fid = n->fid,
		.engine_id = n->engine_id,
	};
	spop_iter it;
	spop_msg m;
	unsigned nrec = 0, idx = 0;
	int partial = 0, rc, sampling = atomic_load_explicit(&s->collecting,
	                                                     memory_order_relaxed);
	struct job *j;

	if (meta.engine_id.len > RECORD_ENGINE_ID_MAX)
		meta.engine_id.len = RECORD_ENGINE_ID_MAX;
	ctr_add(&w->notifies, 1);
	w->buf.len = 0;
	spop_iter_init(&it, n->msgs, n->msgs_len);
	while ((rc = spop_msg_next(&it, &m)) == 1) {
		size_t before = w->buf.len, len = m.raw.len;
		const uint8_t *h, *msg = m.raw.ptr;
		int red = 0;

		meta.msg_index = idx++;
		/* Redact before encoding: what is removed never reaches the
		 * record, the queue, the disk or the dictionary samples. */
		if (w->rctx)
			red = redact_msg(w->rctx, &m, &msg, &len);
		meta.truncated = red > 0 && (red & REDACT_TRUNCATED);
		if (red < 0 || lens_reserve(w, nrec + 1) < 0 ||
		    record_encode(w->cctx, s->cfg.dict >= 0 ? s->slot : NULL, &meta,
		                  msg, len, &w->buf) != 0) {
			w->buf.len = before;
			partial = 1;
			ctr_add(&w->dropped_encode, 1);
			continue;
		}
		w->lens[nrec++] = (uint32_t)(w->buf.len - before);
		h = w->buf.data + before;
		if (h[3] & RECORD_F_DICT) {
			ctr_add(&w->raw_dict, le32(h + 8));
			ctr_add(&w->stored_dict, w->buf.len - before);
		}
		ctr_add(&w->raw, le32(h + 8));
		ctr_add(&w->stored, w->buf.len - before);
		if (sampling) {
			/* Train on exactly what gets compressed. */
			size_t plen;
			const void *pl = record_cctx_payload(w->cctx, &plen);

			if (pl)
				take_sample(s, pl, plen);
		}
	}
	ctr_add(&w->messages, idx);
	if (nrec == 0)                   /* an empty NOTIFY (3.1) stores nothing */
		return partial ? SINK_DROPPED : SINK_SPOOLED;

	j = malloc(sizeof *j + nrec * sizeof j->lens[0] + w->buf.len);
	if (!j) {
		ctr_add(&w->dropped_queue, nrec);
		return SINK_DROPPED;
	}
	j->next = NULL;
	j->done = s->cfg.ack_mode == SPOOL_ACK_RECEIPT ? NULL : done;
	j->arg = arg;
	j->token = token;
	j->n = nrec;
	j->partial = partial;
	j->bytes = w->buf.len;
	memcpy(j->lens, w->lens, nrec * sizeof j->lens[0]);
	memcpy((uint8_t *)(j->lens + nrec), w->buf.data, w->buf.len);

	pthread_mutex_lock(&s->mu);
	if (s->stop || (s->head && s->qbytes + j->bytes > s->cfg.queue_max_bytes)) {
		pthread_mutex_unlock(&s->mu);
		free(j);
		ctr_add(&w->dropped_queue, nrec);
		return SINK_DROPPED;
	}
	if (s->tail)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	s->qbytes += j->bytes;
	s->qrecords += nrec;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);

	if (s->cfg.ack_mode == SPOOL_ACK_RECEIPT)
		return partial ? SINK_DROPPED : SINK_SPOOLED;
	return SINK_PENDING;
}

/* ---- the writer ---- */

struct batch {
	spool_item          *items;
	spool_append_result *res;
	size_t               cap;
};

static int batch_reserve(struct batch *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 256;
	spool_item *it;
	spool_append_result *r;

	if (n <= b->cap)
		return 0;
	while (cap < n)
		cap *= 2;
	it = realloc(b->items, cap * sizeof *it);
	if (!it)
		return -1;
	b->items = it;
	r = realloc(b->res, cap * sizeof *r);
	if (!r)
		return -1;
	b->res = r;
	b->cap = cap;
	return 0;
}

/* Takes whole jobs off the queue, up to the commit bounds (at least one). */
static struct job *take_jobs(ssink *s, unsigned *nrec)
{
	struct job *first = s->head, *last = NULL, *j;
	unsigned recs = 0;
	size_t bytes = 0;

	for (j = s->head; j; j = j->next) {
		if (last && (recs + j->n > s->cfg.commit_max_records ||
		             bytes + j->bytes > s->cfg.commit_max_bytes))
			break;
		recs += j->n;
		bytes += j->bytes;
		last = j;
	}
	if (!last)
		return NULL;
	s->head = last->next;
	if (!s->head)
		s->tail = NULL;
	last->next = NULL;
	s->qbytes -= bytes;
	s->qrecords -= recs;
	*nrec = recs;
	return first;
}

static void complete(struct job *list, int ok_all, const spool_append_result *res)
{
	struct job *j, *next;
	size_t k = 0;

	for (j = list; j; j = next) {
		int result = ok_all && !j->partial ? SINK_SPOOLED : SINK_DROPPED;
		uint32_t i;

		next = j->next;
		if (res)
			for (i = 0; i < j->n; i++, k++)
				if (res[k].drop >= 0)
					result = SINK_DROPPED;
		if (j->done)
			j->done(j->arg, j->token, result);
		free(j);
	}
}

#define DROP_LOG_EVERY_NS (10LL * 1000000000)

/* Says when messages start being dropped, then at most every 10 s with the
 * counts since the last line: an operator should not learn of loss only
 * from the exit summary. */
static void report_drops(ssink *s, int64_t t)
{
	uint64_t now[SPOOL_DROP_NREASONS + 2], total = 0;
	char line[400];
	size_t o = 0;
	unsigned i;

	if (t < s->next_drop_log)
		return;
	memcpy(now, s->drop_by, sizeof(s->drop_by));
	now[SPOOL_DROP_NREASONS] = now[SPOOL_DROP_NREASONS + 1] = 0;
	for (i = 0; i < s->cfg.workers; i++) {
		now[SPOOL_DROP_NREASONS] += ctr_get(&s->w[i].dropped_queue);
		now[SPOOL_DROP_NREASONS + 1] += ctr_get(&s->w[i].dropped_encode);
	}
	for (i = 0; i < SPOOL_DROP_NREASONS + 2; i++) {
		uint64_t d = now[i] - s->logged_by[i];
		const char *name = i < SPOOL_DROP_NREASONS ? spool_drop_reason_name((int)i)
		                 : i == SPOOL_DROP_NREASONS ? "queue_full" : "encode";

		if (d && o < sizeof(line))
			o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s %llu",
			                      total ? ", " : "", name, (unsigned long long)d);
		total += d;
	}
	if (!total)
		return;
	memcpy(s->logged_by, now, sizeof(now));
	s->next_drop_log = t + DROP_LOG_EVERY_NS;
	log_warn("spool: %llu message%s dropped (%s); newly arrived ones were ACKed "
	         "with spooled=false. full/evicted: raise max-size or drain the spool; "
	         "disk_full: free disk space; queue_full: the disk is too slow for the load",
	         (unsigned long long)total, total == 1 ? "" : "s", line);
}

static void housekeeping(ssink *s, int64_t *next_prune, int64_t *next_readers)
{
	int64_t t = now_ns(CLOCK_MONOTONIC);
	int dead = 0;

	report_drops(s, t);

	if (t >= *next_prune) {
		*next_prune = t + PRUNE_EVERY_NS;
		if (spool_prune(s->sp, 0) < 0)
			log_warn("spool: pruning retained records failed: %s", spool_errmsg());
		if (spool_dict_gc(s->sp, 0) < 0)
			log_warn("spool: dictionary clean-up failed: %s", spool_errmsg());
	}
	if (t >= *next_readers) {
		*next_readers = t + READERS_EVERY_NS;
		if (spool_reader_check(s->sp, &dead) == 0 && dead > 0)
			log_info("spool: cleared %d stale reader slot%s left by killed processes",
			         dead, dead == 1 ? "" : "s");
	}
}

static void *writer_main(void *arg)
{
	ssink *s = arg;
	struct batch b = { 0 };
	int64_t next_prune = 0, next_readers = 0;

	log_set_thread_name("writer");
	for (;;) {
		struct job *list, *j;
		unsigned nrec = 0;
		size_t k = 0;
		int64_t t0, dt;
		int rc;

		pthread_mutex_lock(&s->mu);
		while (!s->head && !s->stop) {
			struct timespec ts;

			abs_deadline(&ts, 1.0);
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
			if (!s->head) {
				pthread_mutex_unlock(&s->mu);
				housekeeping(s, &next_prune, &next_readers);
				pthread_mutex_lock(&s->mu);
			}
		}
		if (!s->head && s->stop) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		if (s->cfg.commit_max_delay > 0 && !s->stop) {
			/* Optional: wait a little for a fuller commit. */
			struct timespec ts;

			abs_deadline(&ts, s->cfg.commit_max_delay);
			while (!s->stop && s->qrecords < s->cfg.commit_max_records &&
			       s->qbytes < s->cfg.commit_max_bytes &&
			       pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT)
				;
		}
		list = take_jobs(s, &nrec);
		pthread_mutex_unlock(&s->mu);

		if (atomic_load(&s->fatal_seen) || batch_reserve(&b, nrec) < 0) {
			ctr_add(&s->dropped_spool, nrec);
			complete(list, 0, NULL);
			continue;
		}
		for (j = list; j; j = j->next) {
			const uint8_t *p = (const uint8_t *)(j->lens + j->n);
			uint32_t i;

			for (i = 0; i < j->n; i++, k++) {
				b.items[k].data = p;
				b.items[k].len = j->lens[i];
				p += j->lens[i];
			}
		}
		t0 = now_ns(CLOCK_MONOTONIC);
		rc = spool_append(s->sp, b.items, nrec, b.res);
		dt = now_ns(CLOCK_MONOTONIC) - t0;
		if (rc < 0) {
			fatal(s, "spool: cannot append to the spool: %s; stopping so a "
			      "supervisor can restart the agent (records already committed are safe)",
			      spool_errmsg());
			ctr_add(&s->dropped_spool, nrec);
			complete(list, 0, NULL);
			continue;
		}
		ctr_add(&s->commits, 1);
		ctr_add(&s->commit_records, nrec);
		ctr_add(&s->spooled, (uint64_t)rc);
		ctr_add(&s->dropped_spool, nrec - (unsigned)rc);
		if ((unsigned)rc < nrec)
			for (k = 0; k < nrec; k++)
				if (b.res[k].drop >= 0 && b.res[k].drop < SPOOL_DROP_NREASONS)
					s->drop_by[b.res[k].drop]++;
		ctr_add(&s->commit_ns_total, (uint64_t)dt);
		if ((uint64_t)dt > ctr_get(&s->commit_ns_max))
			atomic_store_explicit(&s->commit_ns_max, (uint64_t)dt, memory_order_relaxed);
		complete(list, 1, b.res);
		housekeeping(s, &next_prune, &next_readers);
	}
	s->next_drop_log = 0;                /* the last counts, whatever the time */
	report_drops(s, now_ns(CLOCK_MONOTONIC));
	free(b.items);
	free(b.res);
	return NULL;
}

/* ---- background sync (process durability mode) ---- */

static void *syncer_main(void *arg)
{
	ssink *s = arg;

	log_set_thread_name("sync");
	pthread_mutex_lock(&s->smu);
	while (!s->sstop) {
		struct timespec ts;
		int64_t t0, dt;
		int rc;

		abs_deadline(&ts, s->cfg.sync_interval);
		while (!s->sstop && pthread_cond_timedwait(&s->scv, &s->smu, &ts) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&s->smu);
		t0 = now_ns(CLOCK_MONOTONIC);
		rc = spool_sync(s->sp);
		dt = now_ns(CLOCK_MONOTONIC) - t0;
		if (rc < 0)
			fatal(s, "spool: flushing the spool to disk failed: %s; stopping "
			      "(a failed fsync cannot be retried safely)", spool_errmsg());
		ctr_add(&s->syncs, 1);
		if ((uint64_t)dt > ctr_get(&s->sync_ns_max))
			atomic_store_explicit(&s->sync_ns_max, (uint64_t)dt, memory_order_relaxed);
		pthread_mutex_lock(&s->smu);
	}
	pthread_mutex_unlock(&s->smu);
	return NULL;
}

/* ---- dictionary training ---- */

static uint32_t next_dict_id(ssink *s)
{
	record_dict *d = dictcache_newest(s->dc);

	return d ? record_dict_id(d) + 1 : RECORD_DICT_ID_MIN;
}

static void *trainer_main(void *arg)
{
	ssink *s = arg;
	record_dict *d;
	char err[256];
	int64_t t0;
	uint32_t id;
	size_t len;
	const void *bytes;

	log_set_thread_name("dict");
	pthread_mutex_lock(&s->tmu);
	while (!s->tready && !s->tstop)
		pthread_cond_wait(&s->tcv, &s->tmu);
	pthread_mutex_unlock(&s->tmu);
	if (s->tstop)
		return NULL;

	/* The samples are no longer written: train without the lock. */
	t0 = now_ns(CLOCK_MONOTONIC);
	id = next_dict_id(s);
	d = record_dict_train(s->samples, s->sizes, s->nsamples, s->cfg.dict_size, id,
	                      s->cfg.level, err, sizeof err);
	if (!d) {
		log_warn("spool: no compression dictionary trained from %u messages (%s); "
		         "records stay compressed without one", s->nsamples, err);
		goto out;
	}
	bytes = record_dict_data(d, &len);
	/* Durable before use: a record that names the dictionary may be
	 * committed as soon as the slot holds it. */
	if (spool_dict_put(s->sp, id, bytes, len) < 0) {
		log_warn("spool: cannot store the new dictionary %u: %s; not using it",
		         id, spool_errmsg());
		record_dict_unref(d);
		goto out;
	}
	dictcache_add(s->dc, d);
	record_slot_set(s->slot, d);
	log_info("spool: trained compression dictionary %u (%zu bytes) from %u messages "
	         "in %.0f ms; new records use it", id, len, s->nsamples,
	         (now_ns(CLOCK_MONOTONIC) - t0) / 1e6);
	record_dict_unref(d);
out:
	pthread_mutex_lock(&s->tmu);
	free(s->samples);
	free(s->sizes);
	s->samples = NULL;
	s->sizes = NULL;
	pthread_mutex_unlock(&s->tmu);
	return NULL;
}

/* ---- the sink ---- */

void spool_sink_get_stats(sink *base, spool_sink_stats *st)
{
	ssink *s = (ssink *)base;
	record_dict *d;
	unsigned i;

	memset(st, 0, sizeof *st);
	for (i = 0; i < s->cfg.workers; i++) {
		struct worker *w = &s->w[i];

		st->notifies += ctr_get(&w->notifies);
		st->messages += ctr_get(&w->messages);
		st->dropped_encode += ctr_get(&w->dropped_encode);
		st->dropped_queue_full += ctr_get(&w->dropped_queue);
		st->raw_bytes += ctr_get(&w->raw);
		st->stored_bytes += ctr_get(&w->stored);
		st->raw_bytes_dict += ctr_get(&w->raw_dict);
		st->stored_bytes_dict += ctr_get(&w->stored_dict);
		if (w->rctx)
			redact_ctx_stats(w->rctx, &st->redact);
	}
	st->records_spooled = ctr_get(&s->spooled);
	st->dropped_spool = ctr_get(&s->dropped_spool);
	st->commits = ctr_get(&s->commits);
	st->commit_records = ctr_get(&s->commit_records);
	st->commit_ns_total = ctr_get(&s->commit_ns_total);
	st->commit_ns_max = ctr_get(&s->commit_ns_max);
	st->syncs = ctr_get(&s->syncs);
	st->sync_ns_max = ctr_get(&s->sync_ns_max);
	pthread_mutex_lock(&s->mu);
	st->queue_bytes = s->qbytes;
	pthread_mutex_unlock(&s->mu);
	d = record_slot_get(s->slot);
	st->dict_id = d ? record_dict_id(d) : 0;
	record_dict_unref(d);
}

static void ss_summary(sink *base, char *buf, size_t len)
{
	spool_sink_stats st;
	uint64_t raw_nd, stored_nd;

	spool_sink_get_stats(base, &st);
	raw_nd = st.raw_bytes - st.raw_bytes_dict;
	stored_nd = st.stored_bytes - st.stored_bytes_dict;
	snprintf(buf, len, "spool sink: %llu messages, %llu records spooled in %llu commits "
	         "(max %.1f ms), dropped: %llu queue-full, %llu encode, %llu spool-policy; "
	         "compression %.2fx overall, %.2fx without a dictionary, "
	         "%.2fx with dictionary %u",
	         (unsigned long long)st.messages, (unsigned long long)st.records_spooled,
	         (unsigned long long)st.commits, st.commit_ns_max / 1e6,
	         (unsigned long long)st.dropped_queue_full,
	         (unsigned long long)st.dropped_encode, (unsigned long long)st.dropped_spool,
	         st.stored_bytes ? (double)st.raw_bytes / st.stored_bytes : 0.0,
	         stored_nd ? (double)raw_nd / stored_nd : 0.0,
	         st.stored_bytes_dict ? (double)st.raw_bytes_dict / st.stored_bytes_dict : 0.0,
	         st.dict_id);
	if (((ssink *)base)->redact) {
		size_t o = strlen(buf);

		snprintf(buf + o, len - o, "; redaction: %llu messages changed, headers %llu "
		         "redacted, %llu dropped, %llu hashed, bodies %llu capped, %llu dropped, "
		         "%llu header blocks failed closed",
		         (unsigned long long)st.redact.messages_changed,
		         (unsigned long long)st.redact.headers_redacted,
		         (unsigned long long)st.redact.headers_dropped,
		         (unsigned long long)st.redact.headers_hashed,
		         (unsigned long long)st.redact.bodies_capped,
		         (unsigned long long)st.redact.bodies_dropped,
		         (unsigned long long)st.redact.blocks_failed);
	}
}

/* Sets *flag under mu, wakes the thread waiting on cv, and joins it. */
static void stop_thread(pthread_mutex_t *mu, pthread_cond_t *cv, int *flag, pthread_t th)
{
	pthread_mutex_lock(mu);
	*flag = 1;
	pthread_cond_broadcast(cv);
	pthread_mutex_unlock(mu);
	pthread_join(th, NULL);
}

static void ss_destroy(sink *base)
{
	ssink *s = (ssink *)base;
	unsigned i;

	if (!s)
		return;
	/* The writer drains the queue before it exits: every job completes. */
	stop_thread(&s->mu, &s->cv, &s->stop, s->writer);
	if (s->has_syncer)
		stop_thread(&s->smu, &s->scv, &s->sstop, s->syncer);
	if (s->has_trainer)
		stop_thread(&s->tmu, &s->tcv, &s->tstop, s->trainer);
	for (i = 0; i < s->cfg.workers; i++) {
		record_cctx_free(s->w[i].cctx);
		redact_ctx_free(s->w[i].rctx);
		record_buf_free(&s->w[i].buf);
		free(s->w[i].lens);
	}
	free(s->w);
	free(s->samples);
	free(s->sizes);
	record_slot_free(s->slot);
	dictcache_free(s->dc);
	redact_free(s->redact);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->smu);
	pthread_cond_destroy(&s->scv);
	pthread_mutex_destroy(&s->tmu);
	pthread_cond_destroy(&s->tcv);
	free(s);
}

sink *spool_sink_new(spool *sp, const spool_sink_config *c, char *err, size_t errlen)
{
	ssink *s = calloc(1, sizeof *s);
	unsigned i;
	int loaded;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->base.name = "spool";
	s->base.submit = ss_submit;
	s->base.summary = ss_summary;
	s->base.destroy = ss_destroy;
	s->sp = sp;
	s->cfg = *c;
	if (!s->cfg.workers)
		s->cfg.workers = 1;
	if (!s->cfg.commit_max_records)
		s->cfg.commit_max_records = 1024;
	if (!s->cfg.commit_max_bytes)
		s->cfg.commit_max_bytes = 4u << 20;
	if (s->cfg.sync_interval <= 0)
		s->cfg.sync_interval = 1.0;
	if (!s->cfg.queue_max_bytes)
		s->cfg.queue_max_bytes = 64u << 20;
	if (!s->cfg.dict_samples)
		s->cfg.dict_samples = 4000;
	if (!s->cfg.dict_size)
		s->cfg.dict_size = 64u << 10;
	if (s->cfg.level == 0)
		s->cfg.dict = -1;        /* a dictionary needs compression */
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_mutex_init(&s->smu, NULL);
	pthread_cond_init(&s->scv, NULL);
	pthread_mutex_init(&s->tmu, NULL);
	pthread_cond_init(&s->tcv, NULL);
	atomic_init(&s->collecting, 0);
	atomic_init(&s->fatal_seen, 0);

	s->w = calloc(s->cfg.workers, sizeof *s->w);
	s->slot = record_slot_new();
	s->dc = dictcache_new(s->cfg.level);
	if (!s->w || !s->slot || !s->dc) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < s->cfg.workers; i++) {
		s->w[i].cctx = record_cctx_new(s->cfg.level, err, errlen);
		if (!s->w[i].cctx)
			goto fail;
	}
	if (c->redact) {
		char e[256], what[1024];

		if (redact_new(c->redact, &s->redact, e, sizeof e) < 0) {
			snprintf(err, errlen, "redaction: %s", e);
			goto fail;
		}
		for (i = 0; s->redact && i < s->cfg.workers; i++) {
			s->w[i].rctx = redact_ctx_new(s->redact, err, errlen);
			if (!s->w[i].rctx)
				goto fail;
		}
		redact_describe(s->redact, what, sizeof what);
		log_info("redaction before storing: %s", what);
	}

	/* Keep using the newest dictionary of an earlier run. */
	loaded = dictcache_load(s->dc, sp, err, errlen);
	if (loaded < 0)
		goto fail;
	if (s->cfg.dict >= 0 && dictcache_newest(s->dc))
		record_slot_set(s->slot, dictcache_newest(s->dc));
	else if (s->cfg.dict >= 0) {
		s->samples = malloc(SAMPLE_MAX_BYTES);
		s->sizes = malloc(s->cfg.dict_samples * sizeof *s->sizes);
		if (!s->samples || !s->sizes) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		atomic_store(&s->collecting, 1);
		if (pthread_create(&s->trainer, NULL, trainer_main, s) != 0) {
			snprintf(err, errlen, "cannot start the dictionary thread");
			goto fail;
		}
		s->has_trainer = 1;
	}
	if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
		snprintf(err, errlen, "cannot start the spool writer thread");
		goto fail_trainer;
	}
	if (s->cfg.sync_mode == SPOOL_SYNC_PROCESS) {
		if (pthread_create(&s->syncer, NULL, syncer_main, s) != 0) {
			snprintf(err, errlen, "cannot start the spool sync thread");
			ss_destroy(&s->base);
			return NULL;
		}
		s->has_syncer = 1;
	}
	return &s->base;

fail_trainer:
	if (s->has_trainer)
		stop_thread(&s->tmu, &s->tcv, &s->tstop, s->trainer);
fail:
	if (s->w)
		for (i = 0; i < s->cfg.workers; i++) {
			record_cctx_free(s->w[i].cctx);
			redact_ctx_free(s->w[i].rctx);
		}
	free(s->w);
	free(s->samples);
	free(s->sizes);
	record_slot_free(s->slot);
	dictcache_free(s->dc);
	redact_free(s->redact);
	free(s);
	return NULL;
}
