/* replay.c -- the delivery engine: spool -> NDJSON batches -> HTTP POST,
 * on a private libev loop driving a libcurl multi handle (spool-notes B.3).
 * Decisions (class, delay, bisection) come from replay_policy.c; this file
 * does the I/O and keeps the cursor contiguous. One batch in flight. */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <ev.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "spoolcap/json.h"
#include "spoolcap/log.h"
#include "spoolcap/recbatch.h"
#include "spoolcap/record.h"
#include "spoolcap/replay.h"

#define JSON_HARD_MAX   (256u << 20)   /* one oversized event still renders */
#define LOG_EVERY_S     10.0

enum wait_for { WAIT_NONE, WAIT_FETCH, WAIT_RESEND };

/* Raw records copied out of the read transaction. */

struct sockw {
	ev_io   io;
	replay *r;
};

struct replay {
	spool         *sp;
	dictcache     *dc;
	replay_config  c;
	char          *url;
	char         **hdrs;
	struct ev_loop *loop;
	ev_timer       ctimer;        /* curl's single timer */
	ev_timer       wait;          /* backoff / linger / poll */
	ev_timer       deadline;      /* replay_run_until_drained */
	enum wait_for  waiting;
	CURLM         *multi;
	CURL          *easy;
	struct curl_slist *hlist;
	int            inflight;
	char           curlerr[CURL_ERROR_SIZE];
	char           snippet[SPOOL_SNIPPET_MAX];
	size_t         snippet_len;

	record_dctx   *dctx;
	record_buf     raw;
	recbatch       rb;            /* records copied out of the spool */
	json_buf       body;          /* NDJSON of the current batch */
	uint64_t      *seq;           /* seq of event i of the batch */
	size_t        *off;           /* body offset of event i (n + 1) */
	size_t         n;             /* events in the current batch, 0 = none */
	int            lingered;
	replay_bisect  bis;
	uint64_t       lo, hi;        /* range in flight or to resend */
	unsigned       attempt;       /* consecutive failures */
	double         last_log;
	uint64_t       suppressed;

	int            until_drained, drained, timed_out;
	uint64_t       rnd;
	replay_stats   st;
};

static void fetch(replay *r);
static void send_next(replay *r);

static uint64_t rng(replay *r)
{
	/* xorshift64*: jitter only, no security role */
	r->rnd ^= r->rnd >> 12;
	r->rnd ^= r->rnd << 25;
	r->rnd ^= r->rnd >> 27;
	return r->rnd * 2685821657736338717ull;
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

static size_t write_cb(char *p, size_t size, size_t nmemb, void *user)
{
	replay *r = user;
	size_t n = size * nmemb, room = sizeof r->snippet - r->snippet_len;

	/* keep the start of the reply for the dead-letter table, drop the rest */
	if (room) {
		size_t k = n < room ? n : room;
		memcpy(r->snippet + r->snippet_len, p, k);
		r->snippet_len += k;
	}
	return n;
}

/* ---- reading a batch ---- */

static void wait_for(replay *r, enum wait_for what, double s)
{
	ev_timer_stop(r->loop, &r->wait);
	r->waiting = what;
	ev_timer_set(&r->wait, s > 0 ? s : 0., 0.);
	ev_timer_start(r->loop, &r->wait);
}

/* Dead-letters seq; 0 on success. */
static int dead_letter(replay *r, uint64_t seq, int reason, long status)
{
	spool_dlq_info info;
	int rc;

	memset(&info, 0, sizeof info);
	info.reason = reason;
	info.http_status = (int)status;
	info.attempts = 1;
	if (reason != SPOOL_DLQ_CORRUPT) {
		info.snippet = r->snippet;
		info.snippet_len = r->snippet_len;
	}
	rc = spool_dlq_put(r->sp, seq, &info);
	if (rc < 0 && rc != SPOOL_ENOENT) {
		log_msg(LOGL_ERROR, "replay: cannot dead-letter seq %" PRIu64 ": %s; "
		        "it stays pending and is retried", seq, spool_errmsg());
		return -1;
	}
	r->st.dead_letters++;
	log_msg(LOGL_WARN, "replay: seq %" PRIu64 " dead-lettered (%s%s%ld); "
	        "inspect with `spoolcap dlq`", seq, spool_dlq_reason_name(reason),
	        status ? ", HTTP " : "", status);
	return 0;
}

/* Reads, decodes and renders the next batch; starts sending it, or waits. */
static void fetch(replay *r)
{
	recbatch *b = &r->rb;
	size_t i;
	int n;

	r->n = 0;
	for (;;) {
		n = recbatch_fill(b, r->sp, 0, r->c.batch_max_bytes, 0);
		if (n < 0) {
			log_msg(LOGL_ERROR, "replay: reading the spool failed: %s; retrying",
			        n == SPOOL_ENOMEM ? "out of memory" : spool_errmsg());
			wait_for(r, WAIT_FETCH, 1.0);
			return;
		}
		if (b->n == 0) {
			if (r->until_drained) {
				r->drained = 1;
				ev_break(r->loop, EVBREAK_ONE);
			} else {
				wait_for(r, WAIT_FETCH, r->c.linger);
			}
			return;
		}
		if (b->n < r->c.batch_max_events && r->c.linger > 0 && !r->lingered &&
		    !r->until_drained) {
			r->lingered = 1;
			wait_for(r, WAIT_FETCH, r->c.linger);
			return;
		}
		r->lingered = 0;
		json_reset(&r->body);
		for (i = 0; i < b->n; i++) {
			record_view v;
			char why[200] = "";
			size_t before = r->body.len;
			int rc = record_decode(r->dctx, b->data + b->off[i], b->off[i + 1] - b->off[i],
			                       dictcache_lookup, r->dc, &r->raw, NULL, &v,
			                       why, sizeof why);

			if (rc == 0) {
				rc = event_render(&r->body, &v, b->seq[i], spool_uuid(r->sp),
				                  r->c.event_opts);
				if (rc == 0)
					json_char(&r->body, '\n');
				if (rc == 0 && r->body.err)
					rc = r->body.err;
				if (rc == JSON_ETOOBIG && r->n == 0) {
					/* alone beyond JSON_HARD_MAX: no POST can carry it */
					json_rollback(&r->body, before);
					if (dead_letter(r, b->seq[i], SPOOL_DLQ_TOO_LARGE, 0) < 0)
						break;
					continue;
				}
				if (rc == JSON_ETOOBIG || rc == JSON_ENOMEM ||
				    (rc == 0 && r->body.len > r->c.batch_max_bytes && r->n > 0)) {
					/* full: this record opens the next batch */
					json_rollback(&r->body, before);
					if (r->n == 0) {
						log_msg(LOGL_ERROR, "replay: cannot render seq %" PRIu64
						        " (out of memory); retrying", b->seq[i]);
						wait_for(r, WAIT_FETCH, 1.0);
						return;
					}
					break;
				}
			}
			if (rc != 0) {
				r->st.corrupt++;
				log_msg(LOGL_WARN, "replay: seq %" PRIu64 " does not decode: %s",
				        b->seq[i], why[0] ? why : "its arguments are malformed");
				if (dead_letter(r, b->seq[i], SPOOL_DLQ_CORRUPT, 0) < 0)
					break;  /* send what precedes it; the rest waits */
				continue;
			}
			r->seq[r->n] = b->seq[i];
			r->off[r->n] = before;
			r->n++;
			r->off[r->n] = r->body.len;
		}
		if (r->n > 0)
			break;
		if (i < b->n) {         /* a dead-letter failure blocks the head */
			wait_for(r, WAIT_FETCH, 1.0);
			return;
		}
		/* every record was corrupt and is dead-lettered: read on */
	}
	replay_bisect_init(&r->bis, r->n);
	send_next(r);
}

/* ---- sending ---- */

static void start_post(replay *r)
{
	char key[SPOOL_UUID_STR_LEN + 64];
	/* libcurl adds Expect: 100-continue over 1 MiB: a 1 s stall per batch */
	const char *fixed[3] = { "Content-Type: application/x-ndjson", "Expect:", key };
	struct curl_slist *l = NULL, *t;
	size_t i, len = r->off[r->hi + 1] - r->off[r->lo];
	CURLMcode mc;

	curl_slist_free_all(r->hlist);
	r->hlist = NULL;
	snprintf(key, sizeof key, "Idempotency-Key: %s-%" PRIu64 "-%" PRIu64,
	         spool_uuid(r->sp), r->seq[r->lo], r->seq[r->hi]);
	for (i = 0; i < 3 + r->c.nheaders; i++) {
		t = curl_slist_append(l, i < 3 ? fixed[i] : r->hdrs[i - 3]);
		if (!t) {       /* the list is left intact on failure */
			curl_slist_free_all(l);
			log_msg(LOGL_ERROR, "replay: out of memory building headers; retrying");
			wait_for(r, WAIT_RESEND, 1.0);
			return;
		}
		l = t;
	}
	r->hlist = l;
	r->snippet_len = 0;
	r->curlerr[0] = 0;
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->hlist);
	curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body.data + r->off[r->lo]);
	curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	mc = curl_multi_add_handle(r->multi, r->easy);
	if (mc != CURLM_OK) {
		log_msg(LOGL_ERROR, "replay: curl_multi_add_handle: %s; retrying",
		        curl_multi_strerror(mc));
		wait_for(r, WAIT_RESEND, 1.0);
		return;
	}
	r->inflight = 1;
	r->st.bytes_sent += len;
}

static void send_next(replay *r)
{
	uint64_t lo, hi;

	if (replay_bisect_next(&r->bis, &lo, &hi) != 1) {
		r->n = 0;
		fetch(r);
		return;
	}
	if (replay_bisect_sends(&r->bis) > 1)
		r->st.bisect_sends++;
	r->lo = lo;
	r->hi = hi;
	start_post(r);
}

static void finished(replay *r, CURLcode code)
{
	long status = 0;
	curl_off_t ra = -1;
	replay_class cls;
	uint64_t n = r->hi - r->lo + 1, ra_ms, delay, idx;
	double now;

	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	cls = replay_classify((int)code, status);
	r->st.requests++;
	now = ev_now(r->loop);
	if (cls == REPLAY_OK) {
		replay_bisect_result(&r->bis, 1);
		if (spool_advance(r->sp, r->seq[r->hi]) < 0) {
			/* delivered but not recorded: resending is a duplicate, which
			 * the idempotency key covers; losing the cursor is not an option */
			log_msg(LOGL_ERROR, "replay: cannot move the cursor to %" PRIu64 ": %s",
			        r->seq[r->hi], spool_errmsg());
		}
		r->st.batches_ok++;
		r->st.events_delivered += n;
		if (r->attempt)
			log_msg(LOGL_INFO, "replay: delivering again after %u failed attempts",
			        r->attempt);
		r->attempt = 0;
		r->suppressed = 0;
		send_next(r);
		return;
	}
	if (cls == REPLAY_PAYLOAD) {
		if (replay_bisect_result(&r->bis, 0) == 1 &&
		    replay_bisect_poison(&r->bis, &idx)) {
			if (dead_letter(r, r->seq[idx], status == 413 ? SPOOL_DLQ_TOO_LARGE :
			                SPOOL_DLQ_REJECTED, status) < 0) {
				/* keep it pending: the whole batch is read again later */
				r->n = 0;
				wait_for(r, WAIT_FETCH, 1.0);
				return;
			}
		}
		send_next(r);
		return;
	}
	/* transient, endpoint, local: wait and resend the same range */
	r->st.retries[cls]++;
	if (curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &ra) != CURLE_OK)
		ra = -1;
	ra_ms = ra >= 0 ? (uint64_t)ra * 1000 : 0;
	if (ra_ms > REPLAY_RETRY_AFTER_MAX_MS)
		ra_ms = REPLAY_RETRY_AFTER_MAX_MS;
	delay = replay_next_delay_ms(r->attempt, r->c.backoff_base_ms, r->c.backoff_cap_ms,
	                             rng(r), ra > 0 ? &ra_ms : NULL);
	r->st.last_delay_ms = delay;
	if (r->attempt == 0 || now - r->last_log >= LOG_EVERY_S) {
		log_msg(LOGL_WARN, "replay: POST %s (seq %" PRIu64 "-%" PRIu64 ") failed: %s "
		        "(%s%s); attempt %u, retrying in %.3f s%s", r->url, r->seq[r->lo],
		        r->seq[r->hi], code ? (r->curlerr[0] ? r->curlerr : curl_easy_strerror(code))
		        : "HTTP error", replay_class_name(cls),
		        cls == REPLAY_ENDPOINT ? ": check the URL, credentials and TLS "
		        "settings; delivery is paused, nothing is dropped" : "",
		        r->attempt + 1, (double)delay / 1000.0,
		        r->suppressed ? " (similar lines suppressed)" : "");
		if (status)
			log_msg(LOGL_WARN, "replay: the processor answered HTTP %ld", status);
		r->last_log = now;
		r->suppressed = 0;
	} else {
		r->suppressed++;
	}
	if (r->attempt < 64)
		r->attempt++;
	wait_for(r, WAIT_RESEND, (double)delay / 1000.0);
}

static void check_done(replay *r)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(r->multi, &left))) {
		CURLcode code;

		if (m->msg != CURLMSG_DONE)
			continue;
		code = m->data.result;
		curl_multi_remove_handle(r->multi, m->easy_handle);
		r->inflight = 0;
		finished(r, code);
	}
}

static void wait_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	replay *r = w->data;
	enum wait_for what = r->waiting;

	(void)loop;
	(void)revents;
	r->waiting = WAIT_NONE;
	if (what == WAIT_RESEND && r->n > 0)
		start_post(r);
	else
		fetch(r);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	replay *r = w->data;

	(void)revents;
	r->timed_out = 1;
	ev_break(loop, EVBREAK_ONE);
}

/* ---- life cycle ---- */

replay *replay_new(spool *sp, dictcache *dc, const replay_config *c,
                   char *err, size_t errlen)
{
	replay *r;
	size_t i;

	if (!c || !c->url || !*c->url) {
		snprintf(err, errlen, "replay: no URL to deliver to (set --forward URL)");
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
	r->sp = sp;
	r->dc = dc;
	r->c = *c;
	if (!r->c.batch_max_events)
		r->c.batch_max_events = REPLAY_DEF_BATCH_EVENTS;
	if (!r->c.batch_max_bytes)
		r->c.batch_max_bytes = REPLAY_DEF_BATCH_BYTES;
	if (r->c.linger == 0)
		r->c.linger = REPLAY_DEF_LINGER;
	if (r->c.linger < 0)
		r->c.linger = 0;
	if (!r->c.connect_timeout_ms)
		r->c.connect_timeout_ms = REPLAY_DEF_CONNECT_MS;
	if (!r->c.total_timeout_ms)
		r->c.total_timeout_ms = REPLAY_DEF_TIMEOUT_MS;
	if (!r->c.low_speed_limit)
		r->c.low_speed_limit = REPLAY_DEF_LOW_SPEED;
	if (!r->c.low_speed_time)
		r->c.low_speed_time = REPLAY_DEF_LOW_SPEED_TIME;
	if (!r->c.backoff_base_ms)
		r->c.backoff_base_ms = REPLAY_BACKOFF_BASE_MS;
	if (!r->c.backoff_cap_ms)
		r->c.backoff_cap_ms = REPLAY_BACKOFF_CAP_MS;
	r->c.headers = NULL;
	r->url = strdup(c->url);
	r->hdrs = calloc(c->nheaders + 1, sizeof *r->hdrs);
	for (i = 0; r->hdrs && i < c->nheaders; i++)
		if (!(r->hdrs[i] = strdup(c->headers[i])))
			break;
	recbatch_init(&r->rb, r->c.batch_max_events);   /* checked below */
	r->seq = calloc(r->rb.max, sizeof *r->seq);
	r->off = calloc(r->rb.max + 1, sizeof *r->off);
	r->dctx = record_dctx_new();
	json_init(&r->body, JSON_HARD_MAX);
	if (!r->url || !r->hdrs || i < c->nheaders || !r->rb.seq || !r->rb.off ||
	    !r->seq || !r->off || !r->dctx) {
		snprintf(err, errlen, "replay: out of memory");
		replay_free(r);
		return NULL;
	}
	r->loop = ev_loop_new(EVFLAG_AUTO);
	r->multi = curl_multi_init();
	r->easy = curl_easy_init();
	if (!r->loop || !r->multi || !r->easy) {
		snprintf(err, errlen, "replay: cannot create the event loop or curl handles");
		replay_free(r);
		return NULL;
	}
	ev_timer_init(&r->ctimer, ctimer_cb, 0., 0.);
	r->ctimer.data = r;
	ev_timer_init(&r->wait, wait_cb, 0., 0.);
	r->wait.data = r;
	ev_timer_init(&r->deadline, deadline_cb, 0., 0.);
	r->deadline.data = r;
	curl_multi_setopt(r->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(r->multi, CURLMOPT_SOCKETDATA, r);
	curl_multi_setopt(r->multi, CURLMOPT_TIMERFUNCTION, mtimer_cb);
	curl_multi_setopt(r->multi, CURLMOPT_TIMERDATA, r);
	curl_multi_setopt(r->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 4L);
	if (curl_easy_setopt(r->easy, CURLOPT_URL, r->url) != CURLE_OK) {
		snprintf(err, errlen, "replay: libcurl refuses the URL %s", r->url);
		replay_free(r);
		return NULL;
	}
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, r->c.connect_timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, r->c.total_timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_LOW_SPEED_LIMIT, r->c.low_speed_limit);
	curl_easy_setopt(r->easy, CURLOPT_LOW_SPEED_TIME, r->c.low_speed_time);
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	/* below common servers' keep-alive timeouts (nginx: 75 s) */
	curl_easy_setopt(r->easy, CURLOPT_MAXAGE_CONN, 60L);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->curlerr);
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "spoolcap/" PACKAGE_VERSION);
	if (getrandom(&r->rnd, sizeof r->rnd, 0) != (ssize_t)sizeof r->rnd)
		r->rnd = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)r;
	r->rnd |= 1;
	return r;
}

void replay_free(replay *r)
{
	size_t i;

	if (!r)
		return;
	if (r->multi && r->easy && r->inflight)
		curl_multi_remove_handle(r->multi, r->easy);
	if (r->easy)
		curl_easy_cleanup(r->easy);
	if (r->multi)
		curl_multi_cleanup(r->multi);   /* closes sockets via sock_cb */
	curl_slist_free_all(r->hlist);
	if (r->loop)
		ev_loop_destroy(r->loop);
	if (r->hdrs)
		for (i = 0; i < r->c.nheaders; i++)
			free(r->hdrs[i]);
	free(r->hdrs);
	free(r->url);
	recbatch_free(&r->rb);
	free(r->seq);
	free(r->off);
	json_free(&r->body);
	record_buf_free(&r->raw);
	record_dctx_free(r->dctx);
	free(r);
}

int replay_run_until_drained(replay *r, double timeout_s)
{
	r->until_drained = 1;
	r->drained = 0;
	r->timed_out = 0;
	ev_timer_set(&r->deadline, timeout_s > 0 ? timeout_s : 0., 0.);
	ev_now_update(r->loop);
	ev_timer_start(r->loop, &r->deadline);
	/* pick up where a previous run stopped, else read a new batch */
	if (!r->inflight && !ev_is_active(&r->wait)) {
		if (r->n > 0)
			start_post(r);
		else
			fetch(r);
	}
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

const replay_stats *replay_get_stats(const replay *r)
{
	return &r->st;
}
