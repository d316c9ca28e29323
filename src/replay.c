/* replay.c -- the delivery engine: spool -> NDJSON batches -> HTTP POST,
 * on a private libev loop driving a libcurl multi handle (spool-notes B.3).
 * Decisions (class, delay, bisection) come from replay_policy.c; this file
 * does the I/O, keeps up to max_inflight batches ("slots") in flight and
 * moves the cursor only over a contiguous prefix of finished slots. */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <ev.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>
#include <libdeflate.h>
#include <zstd.h>

#include "spoolcap/json.h"
#include "spoolcap/log.h"
#include "spoolcap/recbatch.h"
#include "spoolcap/record.h"
#include "spoolcap/replay.h"

#define JSON_HARD_MAX   (256u << 20)   /* one oversized event still renders */
#define LOG_EVERY_S     10.0
#define HOL_SPLIT_AFTER 8              /* C.8: head batch failures before a probe */

enum wait_for { WAIT_NONE, WAIT_FILL, WAIT_RETRY };
enum slot_state { SL_FREE, SL_SENDING, SL_RETRY, SL_DONE };

struct sockw {
	ev_io   io;
	replay *r;
};

/* One batch: its records rendered as NDJSON, sent whole or, after a
 * reject, in bisected sub-ranges [lo, hi] (indexes into seq/off). */
struct slot {
	replay        *r;
	int            state;
	CURL          *easy;
	struct curl_slist *hlist;
	char           curlerr[CURL_ERROR_SIZE];
	char           snippet[SPOOL_SNIPPET_MAX];
	size_t         snippet_len;
	json_buf       body;
	uint8_t       *z;             /* compressed [zlo, zhi], reused on retries */
	size_t         zlen, zcap;
	uint64_t       zlo, zhi;
	int            zvalid;
	uint64_t      *seq;           /* seq of event i */
	size_t        *off;           /* body offset of event i (n + 1 entries) */
	size_t         n;
	uint64_t       adv;           /* the cursor may pass this once the slot is done
	                               * (its last event, or a record after it that
	                               * was skipped or dead-lettered) */
	replay_bisect  bis;
	uint64_t       lo, hi;
	unsigned       hol_fails;     /* 5xx/timeouts in a row on this range */
	double         hol_since;     /* when they started */
	int            suspect;       /* a probe proved the endpoint up: poison inside */
	long           last_status;
};

struct replay {
	spool         *sp;
	dictcache     *dc;
	replay_config  c;
	char          *url;
	char          *url_log;       /* url without its userinfo: what logs show */
	char         **hdrs;
	char          *ca_file, *ca_dir, *cert, *key;
	struct ev_loop *loop;
	ev_timer       ctimer;        /* curl's single timer */
	ev_timer       wait;          /* backoff / linger / poll */
	ev_timer       deadline;      /* replay_run_until_drained, replay_stop's grace */
	ev_async       stop_w;
	enum wait_for  waiting;
	CURLM         *multi;
	int            inflight;      /* easy handles in the multi */

	struct slot   *slots;
	unsigned       nslots;
	unsigned      *order;         /* slot indexes in seq order (a ring) */
	unsigned       ohead, ocount;
	uint64_t       taken;         /* last seq put in a slot (0: the cursor) */
	int            lingered;

	/* the empty POST that tells a poisoned batch from a sick endpoint */
	CURL          *probe;
	struct slot   *probe_for;
	struct curl_slist *probe_hlist;
	char           probe_err[CURL_ERROR_SIZE];
	char           probe_snip[64];
	size_t         probe_snip_len;

	record_dctx   *dctx;
	record_buf     raw;
	recbatch       rb;
	ZSTD_CCtx     *zc;
	struct libdeflate_compressor *gz;   /* whole-buffer gzip: 1.6x zlib's speed */

	int            failing;       /* endpoint-level backoff in progress */
	int            fail_class;
	int            ra_hold;       /* the endpoint asked for quiet (Retry-After) */
	double         next_send;     /* max_rate: earliest start of the next batch */
	unsigned       attempt;       /* consecutive endpoint-level failures */
	double         last_ok;       /* ev time of the last 2xx (batch or probe) */
	double         last_log;
	uint64_t       suppressed;

	int            until_drained, drained, timed_out;
	int            stopping;
	double         grace;
	pthread_t      thread;
	int            thread_running;
	pthread_mutex_t mu;           /* guards pub */
	replay_stats   pub;
	uint64_t       rnd;
	replay_stats   st;
};

static void fill(replay *r);
static void send_next(struct slot *s);
static void start_post(struct slot *s);

static uint64_t rng(replay *r)
{
	/* xorshift64*: jitter only, no security role */
	r->rnd ^= r->rnd >> 12;
	r->rnd ^= r->rnd << 25;
	r->rnd ^= r->rnd >> 27;
	return r->rnd * 2685821657736338717ull;
}

static int slots_busy(const replay *r)
{
	return r->ocount > 0;
}

static void publish(replay *r)
{
	if (r->failing)
		r->st.state = r->fail_class == REPLAY_ENDPOINT ? REPLAY_ST_PAUSED :
		              REPLAY_ST_BACKOFF;
	else
		r->st.state = slots_busy(r) ? REPLAY_ST_DELIVERING : REPLAY_ST_IDLE;
	if (!r->failing)
		r->st.reason[0] = 0;
	pthread_mutex_lock(&r->mu);
	r->pub = r->st;
	pthread_mutex_unlock(&r->mu);
}

static void maybe_stop(replay *r)
{
	if (r->stopping && r->inflight == 0)
		ev_break(r->loop, EVBREAK_ONE);
}

/* ---- libcurl <-> libev glue (spool-notes B.3) ---- */

static void check_done(replay *r);

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sockw *sw = (struct sockw *)w;
	replay *r = sw->r;
	int action = (revents & EV_READ ? CURL_CSELECT_IN : 0) |
	             (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
	int running;

	(void)loop;
	/* sw may be freed inside (CURL_POLL_REMOVE): use nothing of it after */
	curl_multi_socket_action(r->multi, w->fd, action, &running);
	check_done(r);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	replay *r = userp;
	struct sockw *sw = socketp;
	int ev;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (sw) {
			ev_io_stop(r->loop, &sw->io);
			free(sw);
		}
		return 0;
	}
	ev = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
	if (!sw) {
		sw = calloc(1, sizeof *sw);
		if (!sw)
			return -1;      /* curl fails the transfer: retried later */
		sw->r = r;
		ev_io_init(&sw->io, io_cb, s, ev);
		curl_multi_assign(r->multi, s, sw);
	} else {
		ev_io_stop(r->loop, &sw->io);
		ev_io_set(&sw->io, s, ev);
	}
	ev_io_start(r->loop, &sw->io);
	return 0;
}

/* One timer; -1 stops it. The 0 case fires from the loop, never from here:
 * calling curl from inside this callback is the documented recursion
 * hazard. Float division: an integer one turns 1..999 ms into 0 s. */
static int mtimer_cb(CURLM *m, long timeout_ms, void *userp)
{
	replay *r = userp;

	(void)m;
	ev_timer_stop(r->loop, &r->ctimer);
	if (timeout_ms >= 0) {
		ev_timer_set(&r->ctimer, (double)timeout_ms / 1000.0, 0.);
		ev_timer_start(r->loop, &r->ctimer);
	}
	return 0;
}

static void ctimer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	replay *r = w->data;
	int running;

	(void)loop;
	(void)revents;
	curl_multi_socket_action(r->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(r);
}

/* Keeps the start of the reply (for the dead-letter table), drops the rest. */
static size_t keep_start(char *dst, size_t cap, size_t *len, const char *p, size_t n)
{
	size_t room = cap - *len, k = n < room ? n : room;

	memcpy(dst + *len, p, k);
	*len += k;
	return n;
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *user)
{
	struct slot *s = user;

	return keep_start(s->snippet, sizeof s->snippet, &s->snippet_len, p, size * nmemb);
}

static size_t probe_write_cb(char *p, size_t size, size_t nmemb, void *user)
{
	replay *r = user;

	return keep_start(r->probe_snip, sizeof r->probe_snip, &r->probe_snip_len, p,
	                  size * nmemb);
}

static void wait_for(replay *r, enum wait_for what, double s)
{
	ev_timer_stop(r->loop, &r->wait);
	r->waiting = what;
	ev_timer_set(&r->wait, s > 0 ? s : 0., 0.);
	ev_timer_start(r->loop, &r->wait);
}

/* ---- dead letters ---- */

/* Dead-letters seq; 0 on success. snippet may be NULL. */
static int dead_letter(replay *r, uint64_t seq, int reason, long status,
                       const char *snippet, size_t snippet_len)
{
	spool_dlq_info info;
	int rc;

	if (r->c.copy) {
		/* the spool is not ours to change: report and move on */
		if (reason == SPOOL_DLQ_CORRUPT)
			return 0;       /* counted by the caller */
		r->st.rejected++;
		log_msg(LOGL_WARN, "replay: seq %" PRIu64 " refused by the processor (%s%s%ld); "
		        "not retried", seq, spool_dlq_reason_name(reason),
		        status ? ", HTTP " : "", status);
		return 0;
	}
	memset(&info, 0, sizeof info);
	info.reason = reason;
	info.http_status = (int)status;
	info.attempts = 1;
	info.snippet = snippet;
	info.snippet_len = snippet ? snippet_len : 0;
	rc = spool_dlq_put(r->sp, seq, &info);
	if (rc < 0 && rc != SPOOL_ENOENT) {
		log_msg(LOGL_ERROR, "replay: cannot dead-letter seq %" PRIu64 ": %s; "
		        "it stays pending and is retried", seq, spool_errmsg());
		return -1;
	}
	r->st.dead_letters++;
	if (reason == SPOOL_DLQ_PERSISTENT_5XX)
		r->st.persistent_5xx++;
	log_msg(LOGL_WARN, "replay: seq %" PRIu64 " dead-lettered (%s%s%ld); "
	        "inspect with `spoolcap dlq`", seq, spool_dlq_reason_name(reason),
	        status ? ", HTTP " : "", status);
	return 0;
}

/* ---- the slot ring ---- */

static struct slot *free_slot(replay *r)
{
	unsigned i;

	for (i = 0; i < r->nslots; i++)
		if (r->slots[i].state == SL_FREE)
			return &r->slots[i];
	return NULL;
}

static struct slot *slot_at(replay *r, unsigned k)
{
	return &r->slots[r->order[(r->ohead + k) % r->nslots]];
}

/* Pops finished slots off the head and moves the cursor over them. */
static void advance_done(replay *r)
{
	while (r->ocount > 0 && slot_at(r, 0)->state == SL_DONE) {
		struct slot *s = slot_at(r, 0);

		if (s->adv && !r->c.copy && spool_advance(r->sp, s->adv) < 0) {
			/* delivered but not recorded: resending is a duplicate, which
			 * the idempotency key covers; losing the cursor is not an option */
			log_msg(LOGL_ERROR, "replay: cannot move the cursor to %" PRIu64 ": %s",
			        s->adv, spool_errmsg());
		}
		s->state = SL_FREE;
		s->n = 0;
		s->adv = 0;
		r->ohead = (r->ohead + 1) % r->nslots;
		r->ocount--;
	}
	if (r->ocount == 0 && !r->failing && !r->c.copy)
		r->taken = 0;   /* re-read from the cursor: nothing can be skipped */
}

/* ---- reading a batch ---- */

static int decode_render(replay *r, struct slot *s, size_t i, int *reloaded,
                         char *why, size_t whylen)
{
	recbatch *b = &r->rb;
	record_view v;
	int rc;

	for (;;) {
		rc = record_decode(r->dctx, b->data + b->off[i], b->off[i + 1] - b->off[i],
		                   dictcache_lookup, r->dc, &r->raw, NULL, &v, why, whylen);
		if (rc == 0 || *reloaded)
			break;
		/* the writer may have stored a dictionary since we loaded ours */
		*reloaded = 1;
		if (dictcache_load(r->dc, r->sp, why, whylen) <= 0)
			break;
	}
	if (rc != 0)
		return 1;       /* corrupt */
	if (r->c.select && !r->c.select(r->c.select_arg, b->seq[i], &v))
		return 2;       /* not wanted */
	rc = event_render(&s->body, &v, b->seq[i], spool_uuid(r->sp), r->c.event_opts);
	if (rc == 0)
		json_char(&s->body, '\n');
	if (rc == 0 && s->body.err)
		rc = s->body.err;
	return rc == 0 ? 0 : rc == JSON_ETOOBIG || rc == JSON_ENOMEM ? rc : 1;
}

/* Copy mode: the range end; records past it are not ours. */
static size_t in_range(const replay *r, const recbatch *b)
{
	size_t n = b->n;

	if (r->c.copy && r->c.to_seq)
		while (n > 0 && b->seq[n - 1] > r->c.to_seq)
			n--;
	return n;
}

/* Reads the next batch after r->taken into a free slot and renders it.
 * Returns 1 when a slot was filled, 0 when there is nothing (or not enough
 * yet) to send, -1 when it must retry later (a wait is set). */
static int fetch(replay *r, struct slot *s)
{
	recbatch *b = &r->rb;
	int reloaded = 0;
	uint64_t handled = r->taken;    /* last record looked at and dealt with */
	size_t i;
	int n;

	for (;;) {
		size_t avail;

		n = recbatch_fill(b, r->sp, handled, r->c.batch_max_bytes, r->c.copy);
		if (n < 0) {
			log_msg(LOGL_ERROR, "replay: reading the spool failed: %s; retrying",
			        n == SPOOL_ENOMEM ? "out of memory" : spool_errmsg());
			wait_for(r, WAIT_FILL, 1.0);
			return -1;
		}
		avail = in_range(r, b);
		if (avail == 0)
			return 0;
		if (avail == b->n && b->n < r->c.batch_max_events &&
		    b->len < r->c.batch_max_bytes && !r->until_drained) {
			/* partial: let it fill while another batch is out, or linger once */
			if (slots_busy(r))
				return 0;
			if (r->c.linger > 0 && !r->lingered) {
				r->lingered = 1;
				wait_for(r, WAIT_FILL, r->c.linger);
				return -1;
			}
		}
		r->lingered = 0;
		json_reset(&s->body);
		s->n = 0;
		s->off[0] = 0;
		for (i = 0; i < avail; i++) {
			char why[200] = "";
			size_t before = s->body.len;
			int rc = decode_render(r, s, i, &reloaded, why, sizeof why);

			if (rc == 0 && s->body.len > r->c.batch_max_bytes && s->n > 0)
				rc = JSON_ETOOBIG;      /* full: this record opens the next batch */
			if (rc == JSON_ETOOBIG || rc == JSON_ENOMEM) {
				json_rollback(&s->body, before);
				if (s->n > 0)
					break;
				if (rc == JSON_ETOOBIG) {
					/* alone beyond JSON_HARD_MAX: no POST can carry it */
					if (dead_letter(r, b->seq[i], SPOOL_DLQ_TOO_LARGE, 0, NULL, 0) < 0)
						break;
					handled = b->seq[i];
					continue;
				}
				log_msg(LOGL_ERROR, "replay: cannot render seq %" PRIu64
				        " (out of memory); retrying", b->seq[i]);
				wait_for(r, WAIT_FILL, 1.0);
				return -1;
			}
			if (rc == 2) {          /* select() said no */
				json_rollback(&s->body, before);
				r->st.skipped++;
				handled = b->seq[i];
				continue;
			}
			if (rc != 0) {
				json_rollback(&s->body, before);
				r->st.corrupt++;
				log_msg(LOGL_WARN, "replay: seq %" PRIu64 " does not decode: %s",
				        b->seq[i], why[0] ? why : "its arguments are malformed");
				if (dead_letter(r, b->seq[i], SPOOL_DLQ_CORRUPT, 0, NULL, 0) < 0)
					break;  /* send what precedes it; the rest waits */
				handled = b->seq[i];
				continue;
			}
			s->seq[s->n] = b->seq[i];
			handled = b->seq[i];
			s->n++;
			s->off[s->n] = s->body.len;
		}
		if (s->n > 0)
			break;
		if (i < avail) {        /* a dead-letter failure blocks the head */
			wait_for(r, WAIT_FILL, 1.0);
			return -1;
		}
		/* every record was corrupt or skipped: read on. Skipped records
		 * count as handled: the cursor may pass them when nothing earlier
		 * is still out (else a later batch's advance covers them). */
		if (r->c.select && !r->c.copy && !slots_busy(r) &&
		    spool_advance(r->sp, handled) < 0)
			log_msg(LOGL_ERROR, "replay: cannot move the cursor to %" PRIu64 ": %s",
			        handled, spool_errmsg());
		r->taken = handled;
	}
	r->taken = handled;
	s->adv = handled;
	s->state = SL_SENDING;
	s->hol_fails = 0;
	s->suspect = 0;
	s->zvalid = 0;
	s->last_status = 0;
	replay_bisect_init(&s->bis, s->n);
	r->order[(r->ohead + r->ocount) % r->nslots] = (unsigned)(s - r->slots);
	r->ocount++;
	return 1;
}

/* Starts batches while there is room, data and no endpoint failure. */
static void fill(replay *r)
{
	struct slot *s;
	int rc = 0;

	if (r->stopping || r->failing || r->waiting == WAIT_FILL)
		return;
	while ((s = free_slot(r))) {
		if (r->c.max_rate > 0) {
			double now = ev_now(r->loop);

			if (now < r->next_send) {
				wait_for(r, WAIT_FILL, r->next_send - now);
				rc = -1;
				break;
			}
		}
		rc = fetch(r, s);
		if (rc <= 0)
			break;
		if (r->c.max_rate > 0)
			r->next_send = (r->next_send > ev_now(r->loop) ? r->next_send :
			                ev_now(r->loop)) + (double)s->n / r->c.max_rate;
		send_next(s);
		if (r->failing)
			break;
	}
	if (rc == 0 && !slots_busy(r)) {
		if (r->until_drained) {
			r->drained = 1;
			ev_break(r->loop, EVBREAK_ONE);
		} else {
			wait_for(r, WAIT_FILL, r->c.linger > 0 ? r->c.linger : 0.05);
		}
	}
	publish(r);
}

/* ---- sending ---- */

static const char *encoding_header(int c)
{
	return c == REPLAY_COMPRESS_GZIP ? "Content-Encoding: gzip" :
	       c == REPLAY_COMPRESS_ZSTD ? "Content-Encoding: zstd" : NULL;
}

static int grow(struct slot *s, size_t need)
{
	uint8_t *p;

	if (need <= s->zcap)
		return 0;
	p = realloc(s->z, need);
	if (!p)
		return -1;
	s->z = p;
	s->zcap = need;
	return 0;
}

/* Compresses body[lo..hi] into s->z; 0, or -1 (out of memory / codec). */
static int compress_range(replay *r, struct slot *s, const char *src, size_t len)
{
	if (s->zvalid && s->zlo == s->lo && s->zhi == s->hi)
		return 0;
	if (r->c.compress == REPLAY_COMPRESS_ZSTD) {
		size_t bound = ZSTD_compressBound(len), n;

		if (grow(s, bound) < 0)
			return -1;
		n = ZSTD_compressCCtx(r->zc, s->z, bound, src, len,
		                      r->c.compress_level ? r->c.compress_level : 1);
		if (ZSTD_isError(n))
			return -1;
		s->zlen = n;
	} else {
		size_t bound, n;

		if (!r->gz && !(r->gz = libdeflate_alloc_compressor(r->c.compress_level ?
		                                                    r->c.compress_level : 1)))
			return -1;
		bound = libdeflate_gzip_compress_bound(r->gz, len);
		if (grow(s, bound) < 0)
			return -1;
		n = libdeflate_gzip_compress(r->gz, src, len, s->z, bound);
		if (n == 0)
			return -1;
		s->zlen = n;
	}
	s->zlo = s->lo;
	s->zhi = s->hi;
	s->zvalid = 1;
	return 0;
}

/* Builds the header list: fixed lines, the Idempotency-Key, user headers. */
static struct curl_slist *headers(replay *r, const char *key)
{
	/* libcurl adds Expect: 100-continue over 1 MiB: a 1 s stall per batch */
	const char *fixed[4] = { "Content-Type: application/x-ndjson", "Expect:", key,
	                         encoding_header(r->c.compress) };
	struct curl_slist *l = NULL, *t;
	size_t i;

	for (i = 0; i < 4 + r->c.nheaders; i++) {
		const char *h = i < 4 ? fixed[i] : r->hdrs[i - 4];

		if (!h)
			continue;
		t = curl_slist_append(l, h);
		if (!t) {       /* the list is left intact on failure */
			curl_slist_free_all(l);
			return NULL;
		}
		l = t;
	}
	return l;
}

static void local_failure(struct slot *s, const char *what);

static void start_post(struct slot *s)
{
	replay *r = s->r;
	char key[SPOOL_UUID_STR_LEN + 64];
	const char *body = s->body.data + s->off[s->lo];
	size_t len = s->off[s->hi + 1] - s->off[s->lo];
	CURLMcode mc;

	if (r->stopping) {
		s->state = SL_RETRY;    /* stays pending; the next start resends it */
		return;
	}
	snprintf(key, sizeof key, "Idempotency-Key: %s-%" PRIu64 "-%" PRIu64,
	         spool_uuid(r->sp), s->seq[s->lo], s->seq[s->hi]);
	curl_slist_free_all(s->hlist);
	s->hlist = headers(r, key);
	if (!s->hlist) {
		local_failure(s, "out of memory building headers");
		return;
	}
	r->st.raw_bytes += len;
	if (r->c.compress != REPLAY_COMPRESS_NONE) {
		if (compress_range(r, s, body, len) < 0) {
			local_failure(s, "request compression failed (out of memory?)");
			return;
		}
		body = (const char *)s->z;
		len = s->zlen;
	}
	s->snippet_len = 0;
	s->curlerr[0] = 0;
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->hlist);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	mc = curl_multi_add_handle(r->multi, s->easy);
	if (mc != CURLM_OK) {
		local_failure(s, curl_multi_strerror(mc));
		return;
	}
	s->state = SL_SENDING;
	r->inflight++;
	r->st.bytes_sent += len;
}

/* Sends the next range of the slot's bisection, or finishes the slot. */
static void send_next(struct slot *s)
{
	replay *r = s->r;
	uint64_t lo, hi;

	if (replay_bisect_next(&s->bis, &lo, &hi) != 1) {
		s->state = SL_DONE;
		advance_done(r);
		return;
	}
	if (replay_bisect_sends(&s->bis) > 1)
		r->st.bisect_sends++;
	if (lo != s->lo || hi != s->hi) {
		s->hol_fails = 0;
		s->zvalid = 0;
	}
	s->lo = lo;
	s->hi = hi;
	start_post(s);
}

/* ---- failures ---- */

/* The oldest slot waiting to resend (not the one a probe speaks for). */
static struct slot *oldest_retry(replay *r)
{
	unsigned k;

	for (k = 0; k < r->ocount; k++)
		if (slot_at(r, k)->state == SL_RETRY && slot_at(r, k) != r->probe_for)
			return slot_at(r, k);
	return NULL;
}

static void log_failure(replay *r, struct slot *s, replay_class cls, const char *why,
                        long status, uint64_t delay)
{
	double now = ev_now(r->loop);
	char range[64] = "probe", st[32] = "";

	if (s)
		snprintf(range, sizeof range, "seq %" PRIu64 "-%" PRIu64,
		         s->seq[s->lo], s->seq[s->hi]);
	if (status)
		snprintf(st, sizeof st, ", HTTP %ld", status);
	snprintf(r->st.reason, sizeof r->st.reason, "%s: %s%s", replay_class_name(cls),
	         why, st);
	if (r->attempt > 1 && now - r->last_log < LOG_EVERY_S) {
		r->suppressed++;
		return;
	}
	log_msg(LOGL_WARN, "replay: POST %s (%s) failed: %s%s (%s%s); attempt %u, "
	        "retrying in %.3f s%s", r->url_log, range, why, st, replay_class_name(cls),
	        cls == REPLAY_ENDPOINT ? ": check the URL, credentials and TLS "
	        "settings; delivery is paused, nothing is dropped" : "",
	        r->attempt, (double)delay / 1000.0,
	        r->suppressed ? " (similar lines suppressed)" : "");
	r->last_log = now;
	r->suppressed = 0;
}

/* Whether the last failure of easy never reached the server (refused, no
 * route, no DNS answer): retrying costs one SYN, so a short cap brings
 * delivery back within seconds of the endpoint's return. */
static int unreached(CURL *easy)
{
	long os_errno = 0;

	if (!easy)
		return 0;
	curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
	return os_errno == ECONNREFUSED || os_errno == EHOSTUNREACH ||
	       os_errno == ENETUNREACH;
}

/* An endpoint-level failure: everything waits one backoff, then the oldest
 * failed batch (or a probe) goes alone. */
static void endpoint_failed(replay *r, struct slot *s, CURL *easy, replay_class cls,
                            const char *why, long status)
{
	curl_off_t ra = -1;
	uint64_t ra_ms, delay;

	r->st.retries[cls]++;
	r->st.last_status = (int)status;
	if (r->failing && r->waiting == WAIT_RETRY && ev_is_active(&r->wait))
		return;         /* a backoff is already running for everyone */
	r->failing = 1;
	r->fail_class = cls;
	if (!easy || curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &ra) != CURLE_OK)
		ra = -1;
	ra_ms = ra >= 0 ? (uint64_t)ra * 1000 : 0;
	if (ra_ms > REPLAY_RETRY_AFTER_MAX_MS)
		ra_ms = REPLAY_RETRY_AFTER_MAX_MS;
	delay = replay_next_delay_ms(r->attempt, r->c.backoff_base_ms,
	                             unreached(easy) && r->c.backoff_cap_ms > REPLAY_UNREACHED_CAP_MS ?
	                             REPLAY_UNREACHED_CAP_MS : r->c.backoff_cap_ms,
	                             rng(r), ra > 0 ? &ra_ms : NULL);
	r->st.last_delay_ms = delay;
	r->ra_hold = ra > 0;
	if (r->attempt < 64)
		r->attempt++;
	log_failure(r, s, cls, why, status, delay);
	if (!r->stopping)
		wait_for(r, WAIT_RETRY, (double)delay / 1000.0);
	publish(r);
}

static void local_failure(struct slot *s, const char *what)
{
	s->state = SL_RETRY;
	endpoint_failed(s->r, s, NULL, REPLAY_LOCAL, what, 0);
}

/* 5xx, timeouts and replies cut short: what a record that breaks the
 * processor looks like (a down endpoint refuses connections instead). */
static int hol_failure(CURLcode code, long status)
{
	if (code == CURLE_OK)
		return status >= 500 && status <= 599;
	return code == CURLE_OPERATION_TIMEDOUT || code == CURLE_GOT_NOTHING ||
	       code == CURLE_RECV_ERROR || code == CURLE_SEND_ERROR ||
	       code == CURLE_PARTIAL_FILE;
}

static int p5xx_on(const replay *r)
{
	return r->c.persistent_5xx_attempts > 0;
}

/* Whether the next retry of s should be preceded by a probe: its range
 * has failed like poison often enough to suspect it. */
static int wants_probe(replay *r, struct slot *s)
{
	unsigned need = (unsigned)r->c.persistent_5xx_attempts;

	if (!p5xx_on(r) || r->probe_for)
		return 0;
	if (s->hi > s->lo)
		return s->hol_fails >= (need < HOL_SPLIT_AFTER ? need : HOL_SPLIT_AFTER);
	return s->hol_fails >= need &&
	       ev_now(r->loop) - s->hol_since >= r->c.persistent_5xx_age;
}

static void send_probe(replay *r, struct slot *s)
{
	static const char *fixed[2] = { "Content-Type: application/x-ndjson", "Expect:" };
	char key[SPOOL_UUID_STR_LEN + 64];
	struct curl_slist *l = NULL, *t;
	size_t i;

	snprintf(key, sizeof key, "Idempotency-Key: %s-probe", spool_uuid(r->sp));
	for (i = 0; i < 3 + r->c.nheaders; i++) {
		t = curl_slist_append(l, i < 2 ? fixed[i] : i == 2 ? key : r->hdrs[i - 3]);
		if (!t) {
			curl_slist_free_all(l);
			local_failure(s, "out of memory building the probe");
			return;
		}
		l = t;
	}
	curl_slist_free_all(r->probe_hlist);
	r->probe_hlist = l;
	r->probe_snip_len = 0;
	r->probe_err[0] = 0;
	curl_easy_setopt(r->probe, CURLOPT_HTTPHEADER, l);
	curl_easy_setopt(r->probe, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(r->probe, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	if (curl_multi_add_handle(r->multi, r->probe) != CURLM_OK) {
		local_failure(s, "cannot start the probe");
		return;
	}
	r->probe_for = s;
	r->inflight++;
	r->st.probes++;
}

/* The endpoint answers again: resend every waiting batch, read on. */
static void recovered(replay *r)
{
	struct slot *s;

	/* a batch already out when Retry-After came does not lift it */
	if (r->failing && r->ra_hold && r->waiting == WAIT_RETRY)
		return;
	if (r->failing)
		log_msg(LOGL_INFO, "replay: delivering again after %u failed attempts",
		        r->attempt);
	r->failing = 0;
	r->attempt = 0;
	r->suppressed = 0;
	if (r->waiting == WAIT_RETRY) {
		ev_timer_stop(r->loop, &r->wait);
		r->waiting = WAIT_NONE;
	}
	while ((s = oldest_retry(r)) && !r->stopping && !r->failing) {
		if (wants_probe(r, s)) {
			send_probe(r, s);
			break;
		}
		start_post(s);
	}
}

static void probe_finished(replay *r, CURLcode code)
{
	struct slot *s = r->probe_for;
	long status = 0;
	replay_class cls;

	r->probe_for = NULL;
	curl_easy_getinfo(r->probe, CURLINFO_RESPONSE_CODE, &status);
	cls = replay_classify((int)code, status);
	r->st.requests++;
	if (r->stopping || !s || s->state != SL_RETRY)
		return;
	if (cls != REPLAY_OK) {
		/* the endpoint itself is sick: no evidence against the batch */
		s->hol_fails = 0;
		endpoint_failed(r, s, r->probe, cls, code ? (r->probe_err[0] ? r->probe_err :
		                curl_easy_strerror(code)) : "HTTP error (probe)", status);
		return;
	}
	r->last_ok = ev_now(r->loop);
	if (s->hi > s->lo) {
		/* the endpoint is up and this range keeps failing: split it */
		log_msg(LOGL_WARN, "replay: seq %" PRIu64 "-%" PRIu64 " failed %u times "
		        "while an empty POST succeeds; bisecting to find the record "
		        "that breaks the processor", s->seq[s->lo], s->seq[s->hi], s->hol_fails);
		s->suspect = 1;
		replay_bisect_result(&s->bis, 0);
		send_next(s);
	} else {
		replay_bisect_result(&s->bis, 0);
		if (dead_letter(r, s->seq[s->lo], SPOOL_DLQ_PERSISTENT_5XX, s->last_status,
		                s->snippet, s->snippet_len) < 0) {
			s->state = SL_RETRY;
			endpoint_failed(r, s, NULL, REPLAY_LOCAL, "cannot dead-letter", 0);
			return;
		}
		send_next(s);
	}
	recovered(r);
	fill(r);
}

static void finished(struct slot *s, CURLcode code)
{
	replay *r = s->r;
	long status = 0;
	replay_class cls;
	uint64_t idx;
	double now = ev_now(r->loop);

	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
	cls = replay_classify((int)code, status);
	r->st.requests++;
	if (cls == REPLAY_OK) {
		r->last_ok = now;
		r->st.batches_ok++;
		r->st.events_delivered += s->hi - s->lo + 1;
		r->st.last_status = (int)status;
		replay_bisect_result(&s->bis, 1);
		s->hol_fails = 0;
		send_next(s);
		recovered(r);
		fill(r);
		return;
	}
	if (cls == REPLAY_PAYLOAD) {
		if (replay_bisect_result(&s->bis, 0) == 1 &&
		    replay_bisect_poison(&s->bis, &idx) &&
		    dead_letter(r, s->seq[idx], status == 413 ? SPOOL_DLQ_TOO_LARGE :
		                SPOOL_DLQ_REJECTED, status, s->snippet, s->snippet_len) < 0) {
			/* keep it pending: resend it, the dead letter is retried then */
			replay_bisect_init(&s->bis, s->n);
			local_failure(s, "cannot dead-letter a rejected record");
			return;
		}
		send_next(s);
		fill(r);
		return;
	}
	if (hol_failure(code, status)) {
		if (s->hol_fails++ == 0)
			s->hol_since = now;
		s->last_status = status;
	} else {
		s->hol_fails = 0;
	}
	if (s->suspect && s->hi > s->lo && hol_failure(code, status) && !r->stopping) {
		/* the poison is in this half: split on at once, as for a reject */
		replay_bisect_result(&s->bis, 0);
		send_next(s);
		return;
	}
	s->state = SL_RETRY;
	endpoint_failed(r, s, s->easy, cls, code ? (s->curlerr[0] ? s->curlerr :
	                curl_easy_strerror(code)) : "HTTP error", status);
}

static void check_done(replay *r)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(r->multi, &left))) {
		CURL *e = m->easy_handle;
		CURLcode code;
		char *priv = NULL;
		struct slot *s;

		if (m->msg != CURLMSG_DONE)
			continue;
		code = m->data.result;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
		s = (struct slot *)(void *)priv;
		curl_multi_remove_handle(r->multi, e);
		r->inflight--;
		if (e == r->probe)
			probe_finished(r, code);
		else if (s)
			finished(s, code);
	}
	publish(r);
	maybe_stop(r);
}

static void wait_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	replay *r = w->data;
	enum wait_for what = r->waiting;
	struct slot *s;

	(void)loop;
	(void)revents;
	r->waiting = WAIT_NONE;
	r->ra_hold = 0;
	if (what == WAIT_RETRY && (s = oldest_retry(r))) {
		if (wants_probe(r, s))
			send_probe(r, s);
		else
			start_post(s);       /* alone: the others follow its success */
		publish(r);
		return;
	}
	if (what == WAIT_RETRY)
		r->failing = 0;
	fill(r);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	replay *r = w->data;

	(void)revents;
	r->timed_out = 1;
	ev_break(loop, EVBREAK_ONE);
}

static void stop_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	replay *r = w->data;

	(void)revents;
	r->stopping = 1;
	ev_timer_stop(loop, &r->wait);
	r->waiting = WAIT_NONE;
	if (r->inflight == 0) {
		ev_break(loop, EVBREAK_ONE);
		return;
	}
	log_msg(LOGL_INFO, "replay: stopping; %d POST%s in flight get up to %.1f s",
	        r->inflight, r->inflight == 1 ? "" : "s", r->grace);
	ev_timer_set(&r->deadline, r->grace > 0 ? r->grace : 0., 0.);
	ev_timer_start(loop, &r->deadline);
}

/* ---- life cycle ---- */

static int setup_easy(replay *r, CURL *e, void *priv, curl_write_callback wcb,
                      void *wdata, char *errbuf)
{
	if (curl_easy_setopt(e, CURLOPT_URL, r->url) != CURLE_OK)
		return -1;
	curl_easy_setopt(e, CURLOPT_PRIVATE, priv);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, r->c.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->c.total_timeout_ms);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, r->c.low_speed_limit);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, r->c.low_speed_time);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	/* below common servers' keep-alive timeouts (nginx: 75 s) */
	curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, 60L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, wcb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, wdata);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "spoolcap/" PACKAGE_VERSION);
	/* redirects are an endpoint error (spool-notes B.3): never follow */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	if (r->ca_file && curl_easy_setopt(e, CURLOPT_CAINFO, r->ca_file) != CURLE_OK)
		return -1;
	if (r->ca_dir && curl_easy_setopt(e, CURLOPT_CAPATH, r->ca_dir) != CURLE_OK)
		return -1;
	if (r->cert && curl_easy_setopt(e, CURLOPT_SSLCERT, r->cert) != CURLE_OK)
		return -1;
	if (r->key && curl_easy_setopt(e, CURLOPT_SSLKEY, r->key) != CURLE_OK)
		return -1;
	if (r->c.insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return 0;
}

/* scheme://user:pass@host/... -> scheme://host/... (credentials never
 * reach a log line). */
static char *url_for_logs(const char *url)
{
	const char *auth = strstr(url, "://"), *end, *at;
	char *out;

	if (!auth)
		return strdup(url);
	auth += 3;
	end = auth + strcspn(auth, "/?#");
	at = memchr(auth, '@', (size_t)(end - auth));
	while (at && memchr(at + 1, '@', (size_t)(end - at - 1)))
		at = memchr(at + 1, '@', (size_t)(end - at - 1));
	if (!at)
		return strdup(url);
	out = malloc(strlen(url) + 1);
	if (out)
		snprintf(out, strlen(url) + 1, "%.*s%s", (int)(auth - url), url, at + 1);
	return out;
}

static char *dup_or_null(const char *s, int *oom)
{
	char *d;

	if (!s || !*s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = 1;
	return d;
}

static void defaults(replay_config *c)
{
	if (!c->batch_max_events)
		c->batch_max_events = REPLAY_DEF_BATCH_EVENTS;
	if (!c->batch_max_bytes)
		c->batch_max_bytes = REPLAY_DEF_BATCH_BYTES;
	if (c->linger == 0)
		c->linger = REPLAY_DEF_LINGER;
	if (c->linger < 0)
		c->linger = 0;
	if (!c->connect_timeout_ms)
		c->connect_timeout_ms = REPLAY_DEF_CONNECT_MS;
	if (!c->total_timeout_ms)
		c->total_timeout_ms = REPLAY_DEF_TIMEOUT_MS;
	if (!c->low_speed_limit)
		c->low_speed_limit = REPLAY_DEF_LOW_SPEED;
	if (!c->low_speed_time)
		c->low_speed_time = REPLAY_DEF_LOW_SPEED_TIME;
	if (!c->backoff_base_ms)
		c->backoff_base_ms = REPLAY_BACKOFF_BASE_MS;
	if (!c->backoff_cap_ms)
		c->backoff_cap_ms = REPLAY_BACKOFF_CAP_MS;
	if (c->max_rate > 0 && c->batch_max_events > c->max_rate / 10 + 1)
		c->batch_max_events = (size_t)(c->max_rate / 10) + 1;   /* smooth pacing */
	if (!c->max_inflight)
		c->max_inflight = REPLAY_DEF_MAX_INFLIGHT;
	if (c->max_inflight > REPLAY_MAX_INFLIGHT)
		c->max_inflight = REPLAY_MAX_INFLIGHT;
	if (!c->persistent_5xx_attempts)
		c->persistent_5xx_attempts = REPLAY_DEF_P5XX_ATTEMPTS;
	if (c->persistent_5xx_age == 0)
		c->persistent_5xx_age = REPLAY_DEF_P5XX_AGE;
	if (c->persistent_5xx_age < 0)
		c->persistent_5xx_age = 0;
}

replay *replay_new(spool *sp, dictcache *dc, const replay_config *c,
                   char *err, size_t errlen)
{
	replay *r;
	size_t i;
	unsigned k;
	int oom = 0;

	if (!c || !c->url || !*c->url) {
		snprintf(err, errlen, "replay: no URL to deliver to (set --forward URL)");
		return NULL;
	}
	if (strncmp(c->url, "http://", 7) && strncmp(c->url, "https://", 8)) {
		snprintf(err, errlen, "replay: the URL is neither http:// nor https://");
		return NULL;
	}
	if (c->compress < REPLAY_COMPRESS_NONE || c->compress > REPLAY_COMPRESS_ZSTD) {
		snprintf(err, errlen, "replay: unknown request compression %d", c->compress);
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "replay: libcurl initialisation failed");
		return NULL;
	}
	r = calloc(1, sizeof *r);
	if (!r) {
		snprintf(err, errlen, "replay: out of memory");
		return NULL;
	}
	pthread_mutex_init(&r->mu, NULL);
	r->sp = sp;
	r->dc = dc;
	r->c = *c;
	defaults(&r->c);
	r->c.headers = NULL;
	r->url = strdup(c->url);
	r->url_log = url_for_logs(c->url);
	r->ca_file = dup_or_null(c->ca_file, &oom);
	r->ca_dir = dup_or_null(c->ca_dir, &oom);
	r->cert = dup_or_null(c->client_cert, &oom);
	r->key = dup_or_null(c->client_key, &oom);
	r->hdrs = calloc(c->nheaders + 1, sizeof *r->hdrs);
	for (i = 0; r->hdrs && i < c->nheaders; i++)
		if (!(r->hdrs[i] = strdup(c->headers[i])))
			break;
	if (r->c.copy && r->c.from_seq > 1)
		r->taken = r->c.from_seq - 1;
	r->nslots = r->c.max_inflight;
	r->slots = calloc(r->nslots, sizeof *r->slots);
	r->order = calloc(r->nslots, sizeof *r->order);
	recbatch_init(&r->rb, r->c.batch_max_events);   /* checked below */
	r->dctx = record_dctx_new();
	r->zc = ZSTD_createCCtx();
	if (!r->url || !r->url_log || oom || !r->hdrs || i < c->nheaders || !r->slots || !r->order ||
	    !r->rb.seq || !r->rb.off || !r->dctx || !r->zc) {
		snprintf(err, errlen, "replay: out of memory");
		replay_free(r);
		return NULL;
	}
	r->loop = ev_loop_new(EVFLAG_AUTO);
	r->multi = curl_multi_init();
	r->probe = curl_easy_init();
	if (!r->loop || !r->multi || !r->probe) {
		snprintf(err, errlen, "replay: cannot create the event loop or curl handles");
		replay_free(r);
		return NULL;
	}
	for (k = 0; k < r->nslots; k++) {
		struct slot *s = &r->slots[k];

		s->r = r;
		json_init(&s->body, JSON_HARD_MAX);
		s->seq = calloc(r->rb.max, sizeof *s->seq);
		s->off = calloc(r->rb.max + 1, sizeof *s->off);
		s->easy = curl_easy_init();
		if (!s->seq || !s->off || !s->easy) {
			snprintf(err, errlen, "replay: out of memory");
			replay_free(r);
			return NULL;
		}
		if (setup_easy(r, s->easy, s, write_cb, s, s->curlerr) < 0) {
			snprintf(err, errlen, "replay: libcurl refuses the URL %s or a TLS "
			         "setting (CA file/dir, client certificate or key)", r->url_log);
			replay_free(r);
			return NULL;
		}
	}
	if (setup_easy(r, r->probe, NULL, probe_write_cb, r, r->probe_err) < 0) {
		snprintf(err, errlen, "replay: libcurl refuses the URL %s", r->url_log);
		replay_free(r);
		return NULL;
	}
	ev_timer_init(&r->ctimer, ctimer_cb, 0., 0.);
	r->ctimer.data = r;
	ev_timer_init(&r->wait, wait_cb, 0., 0.);
	r->wait.data = r;
	ev_timer_init(&r->deadline, deadline_cb, 0., 0.);
	r->deadline.data = r;
	ev_async_init(&r->stop_w, stop_cb);
	r->stop_w.data = r;
	ev_async_start(r->loop, &r->stop_w);
	curl_multi_setopt(r->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(r->multi, CURLMOPT_SOCKETDATA, r);
	curl_multi_setopt(r->multi, CURLMOPT_TIMERFUNCTION, mtimer_cb);
	curl_multi_setopt(r->multi, CURLMOPT_TIMERDATA, r);
	curl_multi_setopt(r->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)r->nslots + 1);
	if (getrandom(&r->rnd, sizeof r->rnd, 0) != (ssize_t)sizeof r->rnd)
		r->rnd = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)r;
	r->rnd |= 1;
	publish(r);
	return r;
}

void replay_free(replay *r)
{
	size_t i;

	if (!r)
		return;
	if (r->thread_running)
		replay_stop(r, 0);
	for (i = 0; r->slots && i < r->nslots; i++) {
		struct slot *s = &r->slots[i];

		if (s->easy) {
			if (r->multi)
				curl_multi_remove_handle(r->multi, s->easy);
			curl_easy_cleanup(s->easy);
		}
		curl_slist_free_all(s->hlist);
		json_free(&s->body);
		free(s->z);
		free(s->seq);
		free(s->off);
	}
	if (r->probe) {
		if (r->multi)
			curl_multi_remove_handle(r->multi, r->probe);
		curl_easy_cleanup(r->probe);
	}
	curl_slist_free_all(r->probe_hlist);
	if (r->multi)
		curl_multi_cleanup(r->multi);   /* closes sockets via sock_cb */
	if (r->loop)
		ev_loop_destroy(r->loop);
	if (r->hdrs)
		for (i = 0; i < r->c.nheaders; i++)
			free(r->hdrs[i]);
	free(r->hdrs);
	free(r->url);
	free(r->url_log);
	free(r->ca_file);
	free(r->ca_dir);
	free(r->cert);
	free(r->key);
	free(r->slots);
	free(r->order);
	recbatch_free(&r->rb);
	record_buf_free(&r->raw);
	record_dctx_free(r->dctx);
	ZSTD_freeCCtx(r->zc);
	if (r->gz)
		libdeflate_free_compressor(r->gz);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

/* Resumes whatever a previous run left: waiting slots, else new batches. */
static void kick(replay *r)
{
	struct slot *s;

	if (r->inflight || ev_is_active(&r->wait))
		return;
	r->failing = 0;
	while ((s = oldest_retry(r)) && !r->failing)
		start_post(s);
	fill(r);
}

int replay_run_until_drained(replay *r, double timeout_s)
{
	r->until_drained = 1;
	r->drained = 0;
	r->timed_out = 0;
	ev_timer_set(&r->deadline, timeout_s > 0 ? timeout_s : 0., 0.);
	ev_now_update(r->loop);
	ev_timer_start(r->loop, &r->deadline);
	kick(r);
	while (!r->drained && !r->timed_out)
		ev_run(r->loop, 0);
	ev_timer_stop(r->loop, &r->deadline);
	r->until_drained = 0;
	if (r->drained) {
		ev_timer_stop(r->loop, &r->wait);
		r->waiting = WAIT_NONE;
		return 0;
	}
	return -1;
}

static void *thread_main(void *arg)
{
	replay *r = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);     /* signals are the main loop's */
	log_set_thread_name("replay");
	/* catching up on a backlog must not take CPU from the I/O threads that
	 * ACK HAProxy: this thread yields to them (Linux nice is per thread) */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), REPLAY_THREAD_NICE) < 0)
		log_msg(LOGL_DEBUG, "replay: cannot lower the thread's priority: %s",
		        strerror(errno));
	ev_now_update(r->loop);
	kick(r);
	while (!r->stopping || r->inflight)
		if (!ev_run(r->loop, 0) || r->timed_out)
			break;
	return NULL;
}

int replay_start(replay *r, char *err, size_t errlen)
{
	int rc;

	r->stopping = 0;
	r->timed_out = 0;
	rc = pthread_create(&r->thread, NULL, thread_main, r);
	if (rc) {
		snprintf(err, errlen, "replay: cannot start the delivery thread: %s",
		         strerror(rc));
		return -1;
	}
	r->thread_running = 1;
	return 0;
}

void replay_stop(replay *r, double grace_s)
{
	if (!r->thread_running)
		return;
	r->grace = grace_s;
	ev_async_send(r->loop, &r->stop_w);
	pthread_join(r->thread, NULL);
	r->thread_running = 0;
	if (r->inflight)
		log_msg(LOGL_WARN, "replay: %d POST(s) cut at stop: their events stay in "
		        "the spool and are sent again at the next start", r->inflight);
	publish(r);
}

const replay_stats *replay_get_stats(const replay *r)
{
	return &r->st;
}

void replay_snapshot(replay *r, replay_stats *out)
{
	pthread_mutex_lock(&r->mu);
	*out = r->pub;
	pthread_mutex_unlock(&r->mu);
}

const char *replay_state_name(int state)
{
	static const char *names[] = { "idle", "delivering", "backing-off", "paused" };

	return state >= 0 && state < 4 ? names[state] : "unknown";
}

const char *replay_compress_name(int c)
{
	return c == REPLAY_COMPRESS_GZIP ? "gzip" : c == REPLAY_COMPRESS_ZSTD ? "zstd" :
	       "none";
}

int replay_compress_parse(const char *s)
{
	if (!strcmp(s, "none"))
		return REPLAY_COMPRESS_NONE;
	if (!strcmp(s, "gzip"))
		return REPLAY_COMPRESS_GZIP;
	if (!strcmp(s, "zstd"))
		return REPLAY_COMPRESS_ZSTD;
	return -1;
}
