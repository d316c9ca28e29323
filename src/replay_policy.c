/* replay_policy.c -- pure delivery policy: error classes (spool-notes B.3),
 * full-jitter backoff and Retry-After (C.8, RFC 9110), and the bisection
 * planner that isolates the records a processor rejects. No I/O here. */
#include <curl/curl.h>
#include <stddef.h>

#include "spoolcap/replay_policy.h"

/* ---- classification ---------------------------------------------------- */

/* Statuses about the request target, our headers or the account, not about
 * the batch's content. Issue 4 says "other 4xx = payload", but bisecting on
 * these would dead-letter every record while the endpoint is misconfigured
 * (the Vector #10870 failure mode), so they pause delivery instead. */
static int http_is_endpoint_4xx(long s)
{
	switch (s) {
	case 401: /* Unauthorized */
	case 402: /* Payment Required: quota/account */
	case 403: /* Forbidden */
	case 404: /* Not Found: wrong URL or misrouted */
	case 405: /* Method Not Allowed */
	case 406: /* Not Acceptable: about our Accept headers */
	case 407: /* Proxy Authentication Required */
	case 410: /* Gone: the URL was removed */
	case 411: /* Length Required: about our framing */
	case 414: /* URI Too Long: the configured URL */
	case 417: /* Expectation Failed: our Expect header */
	case 421: /* Misdirected Request */
	case 426: /* Upgrade Required: TLS/HTTP version config */
	case 428: /* Precondition Required */
	case 431: /* Request Header Fields Too Large: configured headers */
	case 451: /* Unavailable For Legal Reasons */
		return 1;
	default:
		return 0;
	}
}

replay_class replay_classify_http(long s)
{
	if (s < 0)
		return REPLAY_LOCAL; /* not something curl reports: our bug */
	if (s >= 200 && s <= 299)
		return REPLAY_OK;
	if (s >= 400 && s <= 499) {
		if (s == 408 || s == 425 || s == 429)
			return REPLAY_TRANSIENT;
		return http_is_endpoint_4xx(s) ? REPLAY_ENDPOINT : REPLAY_PAYLOAD;
	}
	if (s >= 500 && s <= 599) {
		/* Waiting never fixes "method not implemented" or "HTTP version
		 * not supported": report them as configuration. Both classes
		 * retry with the same backoff, only the alarm differs. */
		if (s == 501 || s == 505)
			return REPLAY_ENDPOINT;
		return REPLAY_TRANSIENT; /* incl. 522/524 (Cloudflare) */
	}
	/* 0 (no HTTP response), 1xx as a final status, 3xx (we never follow
	 * redirects for a POST), and anything outside 100..599: the endpoint
	 * does not speak the HTTP we expect. Keep everything, pause. */
	return REPLAY_ENDPOINT;
}

replay_class replay_classify(int curl_code, long http_status)
{
	switch (curl_code) {
	case CURLE_OK:
	case CURLE_HTTP_RETURNED_ERROR: /* CURLOPT_FAILONERROR: the status says */
		return replay_classify_http(http_status);

	/* Network, DNS, TLS handshake, protocol-framing failures and stalls:
	 * the batch was not confirmed; retry it. */
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_HTTP2:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:    /* incl. CURLOPT_LOW_SPEED_* stalls */
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_ABORTED_BY_CALLBACK:   /* our own abort (e.g. stop): unconfirmed */
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_BAD_CONTENT_ENCODING:  /* response body mangled in transit */
	case CURLE_SEND_FAIL_REWIND:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_NO_CONNECTION_AVAILABLE:
	case CURLE_HTTP2_STREAM:
	case CURLE_HTTP3:
	case CURLE_QUIC_CONNECT_ERROR:
		return REPLAY_TRANSIENT;

	/* Bad URL, unsupported scheme/feature, certificates and keys, TLS
	 * verification, authentication, proxy setup, redirect loops: only a
	 * configuration change fixes them. Pause, keep everything. */
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_WEIRD_SERVER_REPLY:    /* e.g. http:// to a TLS port */
	case CURLE_REMOTE_ACCESS_DENIED:
	case CURLE_INTERFACE_FAILED:
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_PEER_FAILED_VERIFICATION: /* 60; 51 is obsolete since 7.62 */
	case CURLE_FILESIZE_EXCEEDED:     /* response larger than configured */
	case CURLE_USE_SSL_FAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_LOGIN_DENIED:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_AUTH_ERROR:
	case CURLE_PROXY:
	case CURLE_SSL_CLIENTCERT:
		return REPLAY_ENDPOINT;

	/* CURLE_FAILED_INIT, OUT_OF_MEMORY, BAD_FUNCTION_ARGUMENT, WRITE_ERROR
	 * and READ_ERROR (our callbacks refused), UNKNOWN_OPTION,
	 * RECURSIVE_API_CALL, UNRECOVERABLE_POLL, the FTP/SSH/LDAP/... codes an
	 * HTTP transfer cannot produce, and codes newer than this table. */
	default:
		return REPLAY_LOCAL;
	}
}

const char *replay_class_name(replay_class c)
{
	switch (c) {
	case REPLAY_OK: return "ok";
	case REPLAY_TRANSIENT: return "transient";
	case REPLAY_ENDPOINT: return "endpoint";
	case REPLAY_PAYLOAD: return "payload";
	case REPLAY_LOCAL: return "local";
	}
	return "unknown";
}

/* ---- backoff ----------------------------------------------------------- */

uint64_t replay_backoff_ceiling_ms(unsigned attempt, uint64_t base_ms,
	uint64_t cap_ms)
{
	/* base << attempt <= cap  <=>  base <= cap >> attempt (no overflow) */
	if (attempt >= 64 || base_ms > (cap_ms >> attempt))
		return cap_ms;
	return base_ms << attempt;
}

uint64_t replay_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t cap_ms,
	uint64_t rnd)
{
	uint64_t ceil = replay_backoff_ceiling_ms(attempt, base_ms, cap_ms);

	if (ceil == UINT64_MAX)
		return rnd;
	return rnd % (ceil + 1);
}

uint64_t replay_next_delay_ms(unsigned attempt, uint64_t base_ms,
	uint64_t cap_ms, uint64_t rnd, const uint64_t *retry_after_ms)
{
	uint64_t d = replay_backoff_ms(attempt, base_ms, cap_ms, rnd);

	if (retry_after_ms && *retry_after_ms > d)
		return *retry_after_ms;
	return d;
}

/* ---- Retry-After ------------------------------------------------------- */

static const char *const wday_short[7] = {
	"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"
};
static const char *const wday_long[7] = {
	"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
	"Sunday"
};
static const char *const month_name[12] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

/* A cursor over [p, e): each match advances it or fails. */
struct cur {
	const char *p, *e;
};

static int match_lit(struct cur *c, const char *lit)
{
	const char *p = c->p;

	for (; *lit; lit++, p++)
		if (p >= c->e || *p != *lit)
			return 0;
	c->p = p;
	return 1;
}

/* Exactly n digits. */
static int match_digits(struct cur *c, int n, int *out)
{
	int v = 0;

	if (c->e - c->p < n)
		return 0;
	for (int i = 0; i < n; i++) {
		char ch = c->p[i];
		if (ch < '0' || ch > '9')
			return 0;
		v = v * 10 + (ch - '0');
	}
	c->p += n;
	*out = v;
	return 1;
}

/* One of names[0..n-1], case-sensitive as RFC 9110 5.6.7 says. */
static int match_name(struct cur *c, const char *const *names, int n, int *idx)
{
	for (int i = 0; i < n; i++)
		if (match_lit(c, names[i])) {
			*idx = i;
			return 1;
		}
	return 0;
}

static int is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The Gregorian year containing day z (days since the epoch). */
static int64_t year_from_days(int64_t z)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	return yoe + era * 400 + (mp >= 10);
}

/* "HH:MM:SS" */
static int match_time(struct cur *c, int *h, int *mi, int *s)
{
	return match_digits(c, 2, h) && match_lit(c, ":") &&
		match_digits(c, 2, mi) && match_lit(c, ":") &&
		match_digits(c, 2, s);
}

/* Parses an HTTP-date in [p, e) into seconds since the epoch. */
static int parse_http_date(const char *p, const char *e, int64_t now_s,
	int64_t *t)
{
	struct cur c = { p, e };
	int wd, day, mon, year, h, mi, s;
	int64_t y;

	if (match_name(&c, wday_long, 7, &wd)) {
		/* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
		if (!(match_lit(&c, ", ") && match_digits(&c, 2, &day) &&
		    match_lit(&c, "-") && match_name(&c, month_name, 12, &mon) &&
		    match_lit(&c, "-") && match_digits(&c, 2, &year) &&
		    match_lit(&c, " ") && match_time(&c, &h, &mi, &s) &&
		    match_lit(&c, " GMT")))
			return -1;
		/* RFC 9110 5.6.7: a two-digit year more than 50 years in the
		 * future is the most recent past year with those digits. */
		int64_t now_y = year_from_days(now_s / 86400 - (now_s % 86400 < 0));
		y = now_y - now_y % 100 + year;
		if (y > now_y + 50)
			y -= 100;
	} else if (match_name(&c, wday_short, 7, &wd)) {
		if (match_lit(&c, ", ")) {
			/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
			if (!(match_digits(&c, 2, &day) && match_lit(&c, " ") &&
			    match_name(&c, month_name, 12, &mon) &&
			    match_lit(&c, " ") && match_digits(&c, 4, &year) &&
			    match_lit(&c, " ") && match_time(&c, &h, &mi, &s) &&
			    match_lit(&c, " GMT")))
				return -1;
		} else {
			/* asctime: Sun Nov  6 08:49:37 1994 */
			if (!(match_lit(&c, " ") &&
			    match_name(&c, month_name, 12, &mon) &&
			    match_lit(&c, " ")))
				return -1;
			if (!match_digits(&c, 2, &day) &&
			    !(match_lit(&c, " ") && match_digits(&c, 1, &day)))
				return -1;
			if (!(match_lit(&c, " ") && match_time(&c, &h, &mi, &s) &&
			    match_lit(&c, " ") && match_digits(&c, 4, &year)))
				return -1;
		}
		y = year;
	} else {
		return -1;
	}
	if (c.p != c.e)
		return -1;

	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int dim = mdays[mon] + (mon == 1 && is_leap(y));
	/* Second 60 is a leap second (RFC 5322 allows it). The weekday is not
	 * checked against the date: RFC 9110 does not ask recipients to. */
	if (day < 1 || day > dim || h > 23 || mi > 59 || s > 60)
		return -1;
	*t = days_from_civil(y, mon + 1, day) * 86400 + h * 3600 + mi * 60 + s;
	return 0;
}

static int is_ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

int replay_retry_after_ms(const char *v, int64_t now_s, uint64_t max_ms,
	uint64_t *out)
{
	const char *p, *e;
	uint64_t ms;

	if (!v)
		return -1;
	if (max_ms == 0)
		max_ms = REPLAY_RETRY_AFTER_MAX_MS;
	for (p = v; is_ows(*p); p++)
		;
	for (e = p; *e; e++)
		;
	while (e > p && is_ows(e[-1]))
		e--;
	if (p == e)
		return -1;

	if (*p >= '0' && *p <= '9') {
		/* delta-seconds = 1*DIGIT; saturate rather than overflow */
		uint64_t sec = 0;
		for (const char *q = p; q < e; q++) {
			if (*q < '0' || *q > '9')
				return -1;
			if (sec > (UINT64_MAX - 9) / 10)
				sec = UINT64_MAX;
			else
				sec = sec * 10 + (uint64_t)(*q - '0');
		}
		ms = sec > UINT64_MAX / 1000 ? UINT64_MAX : sec * 1000;
	} else {
		int64_t t;
		if (parse_http_date(p, e, now_s, &t) < 0)
			return -1;
		if (t <= now_s) {
			ms = 0;
		} else {
			/* t > now_s: the unsigned difference is exact */
			uint64_t d = (uint64_t)t - (uint64_t)now_s;
			ms = d > UINT64_MAX / 1000 ? UINT64_MAX : d * 1000;
		}
	}
	*out = ms < max_ms ? ms : max_ms;
	return 0;
}

/* ---- bisection --------------------------------------------------------- */

static void push(replay_bisect *b, uint64_t lo, uint64_t hi, int left)
{
	/* Depth <= levels of halving + 1 <= 65 for any 64-bit range. */
	if (b->depth >= REPLAY_BISECT_DEPTH)
		return;
	b->lo[b->depth] = lo;
	b->hi[b->depth] = hi;
	b->left[b->depth] = (unsigned char)left;
	b->depth++;
}

/* Queue both halves of a failed range, left on top (sent first), so
 * records are delivered in index order. */
static void split(replay_bisect *b, uint64_t lo, uint64_t hi)
{
	uint64_t mid = lo + (hi - lo) / 2;

	push(b, mid + 1, hi, 0);
	push(b, lo, mid, 1);
}

void replay_bisect_init(replay_bisect *b, uint64_t n)
{
	b->depth = 0;
	b->busy = 0;
	b->cur_lo = b->cur_hi = 0;
	b->cur_left = 0;
	b->have_poison = 0;
	b->poison = 0;
	b->sends = 0;
	if (n > 0)
		push(b, 0, n - 1, 0);
}

int replay_bisect_next(replay_bisect *b, uint64_t *lo, uint64_t *hi)
{
	if (b->busy)
		return -1;
	if (b->depth == 0)
		return 0;
	b->depth--;
	b->cur_lo = b->lo[b->depth];
	b->cur_hi = b->hi[b->depth];
	b->cur_left = b->left[b->depth];
	b->busy = 1;
	b->sends++;
	*lo = b->cur_lo;
	*hi = b->cur_hi;
	return 1;
}

int replay_bisect_result(replay_bisect *b, int ok)
{
	if (!b->busy)
		return -1;
	b->busy = 0;
	b->have_poison = 0;
	if (ok) {
		/* A left half passed while its parent failed: the right half
		 * (directly below on the stack) must fail, so split it without
		 * sending it. A single record is still sent alone before it is
		 * called poison, so a flaky processor costs sends, not data. */
		if (b->cur_left && b->depth > 0 &&
		    b->hi[b->depth - 1] > b->lo[b->depth - 1]) {
			b->depth--;
			split(b, b->lo[b->depth], b->hi[b->depth]);
		}
		return 0;
	}
	if (b->cur_lo == b->cur_hi) {
		b->have_poison = 1;
		b->poison = b->cur_lo;
		return 1;
	}
	split(b, b->cur_lo, b->cur_hi);
	return 0;
}

int replay_bisect_poison(const replay_bisect *b, uint64_t *idx)
{
	if (!b->have_poison)
		return 0;
	*idx = b->poison;
	return 1;
}

uint64_t replay_bisect_sends(const replay_bisect *b)
{
	return b->sends;
}
