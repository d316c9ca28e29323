/* cli_rerequest.c -- `spoolcap replay DIR --requests --target URL`: re-issues
 * the captured HTTP requests (method, path, query, headers, body) against
 * another server, at the recorded pace (scaled by --speed) or a fixed rate,
 * and compares each answer's status code with the response captured for
 * the same transaction (paired by the uid argument): the GoReplay use case,
 * from a durable capture.
 *
 * One thread: the filter walk (cli_filter.h: bounded copies out of short
 * read transactions) hands records over in seq order; the callback paces
 * itself by blocking in curl_multi_poll, so at most --concurrency requests
 * are in flight and at most one record batch is held. A request waits for
 * its captured response in a table keyed by uid; entries leave it in seq
 * order as soon as both the replayed and the captured status are known, or
 * when the walk has moved RESPONSE_WINDOW of capture time past them (no
 * response was captured), so memory stays bounded by the traffic of that
 * window (and by MAX_OUTSTANDING). Responses captured after the filters'
 * upper bound are looked for in a second walk over the records that
 * follow it.
 *
 * What is not copied verbatim (also in --help and spoolcap(1)): hop-by-hop
 * headers (Connection and the headers it names, Keep-Alive,
 * Transfer-Encoding, TE, Trailer, Upgrade, Proxy-*), Expect (the body is
 * sent at once), Content-Length (recomputed from the captured body), and
 * Host (the target's, unless --keep-host). libcurl writes the Host line
 * first and Content-Length last; every other header keeps its captured
 * name, value and order. */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "spoolcap/cli.h"
#include "spoolcap/cli_filter.h"
#include "spoolcap/cli_hdrs.h"
#include "spoolcap/cli_replay.h"
#include "spoolcap/config.h"
#include "spoolcap/event.h"
#include "spoolcap/json.h"

#define PROG             "spoolcap replay --requests"
#define DEF_CONCURRENCY  8
#define MAX_CONCURRENCY  1024
#define RESPONSE_WINDOW  (600 * (int64_t)1000000000)  /* capture time, ns */
#define MAX_OUTSTANDING  (1u << 20)                    /* requests awaiting pairing */
#define NBUCKETS         (1u << 16)
#define SET_HEADERS_MAX  64
#define TICK_S           0.5

/* ------------------------------------------------------------ options */

struct ropts {
	const char *dir, *target, *diff_out, *ca_file, *ca_dir;
	double      speed;              /* 0: as fast as --concurrency allows */
	double      rate;               /* requests/s, 0: by --speed */
	unsigned    concurrency;
	int         keep_host, insecure, json, progress, quiet;
	long        timeout_ms, connect_ms;
	const char *set_hdr[SET_HEADERS_MAX];
	unsigned    nset_hdr;
	cli_filter  f;
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: spoolcap replay DIR --requests --target URL [options] [filters]\n"
"Re-issues the HTTP requests captured in DIR against the server at URL, in\n"
"capture order, and compares each answer's status with the response captured\n"
"for the same transaction (paired by the uid argument, HAProxy's unique-id).\n"
"The spool is only read; safe while spoolcapd runs.\n"
"\n"
"  --requests             this mode (see 'spoolcap replay --help' for --to)\n"
"  --target URL           http(s)://HOST[:PORT][/PREFIX]: where to send them;\n"
"                         the captured path (and ?query) follows PREFIX\n"
"  --speed F              the recorded pace, F times faster (default 1: the\n"
"                         gaps between capture times); 'max' = no pacing\n"
"  --rate N               N requests per second instead of the recorded pace\n"
"  --concurrency K        requests in flight at most (default %d)\n"
"  --keep-host            send the captured Host header (default: the target's)\n"
"  --set-header 'NAME: VALUE'\n"
"                         replace (or add) header NAME in every request;\n"
"                         repeatable; NAME alone with ':' removes it\n"
"  --diff-out FILE        one JSON line per difference (status or error)\n"
"  --timeout DUR          per request (default 30s)\n"
"  --connect-timeout DUR  (default 5s)\n"
"  --insecure             do not verify the target's certificate\n"
"  --ca-file FILE, --ca-dir DIR\n"
"                         trust anchors for an https target\n"
"  --json                 the summary as one JSON object\n"
"  --no-progress          no progress line (it is drawn only on a terminal)\n"
"  -q, --quiet            no warnings about records that cannot be sent\n"
"\n"
"What is sent: the captured method, path and query byte for byte, the\n"
"captured headers in their order, and the captured body. Not copied\n"
"verbatim: hop-by-hop headers (Connection and the headers it names,\n"
"Keep-Alive, Transfer-Encoding, TE, Trailer, Upgrade, Proxy-*) and Expect\n"
"are dropped; Content-Length is recomputed from the captured body; Host is\n"
"the target's unless --keep-host (libcurl writes Host first and\n"
"Content-Length last). A body captured shorter than the request's (the\n"
"capture recipe keeps 32 KiB) is sent as captured and counted as partial.\n"
"Headers spoolcapd redacted at capture (by default Authorization and Cookie)\n"
"go out as stored, \"<redacted>\": give the target credentials with\n"
"--set-header.\n"
"Requests are the records with a method and a path (or url) argument;\n"
"responses those with a status and no method. Argument names understood:\n"
"meth|method, path|url, query, uid|unique-id, status, body, bsize, and any\n"
"name ending in hdrs or headers for the header block (the capture recipe of\n"
"contrib/haproxy/capture.spoe.conf). The filters select the requests;\n"
"responses are looked for up to 10 minutes (capture time) after them.\n"
"\n", DEF_CONCURRENCY);
	cli_filter_usage(f, "all");
	fprintf(f,
"Exit status: 0 every request was answered with its captured status (or no\n"
"response was captured for it); 1 some status differed or a request failed,\n"
"or it was interrupted (like diff(1)); 2 usage or environment error.\n");
}

enum {
	OPT_REQUESTS = 0x100, OPT_TARGET, OPT_SPEED, OPT_RATE, OPT_CONC, OPT_KEEP_HOST,
	OPT_SET_HEADER, OPT_DIFF_OUT, OPT_TIMEOUT, OPT_CONNECT_TIMEOUT, OPT_INSECURE,
	OPT_CA_FILE, OPT_CA_DIR, OPT_JSON, OPT_NO_PROGRESS
};

static int parse_positive(const char *opt, const char *s, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (!*s || *end || errno || !(v > 0) || v > max) {
		fprintf(stderr, PROG ": %s expects a number above 0, not '%s'\n", opt, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_ms(const char *opt, const char *s, long *out)
{
	char err[200];
	double d;

	if (cfg_parse_duration(s, &d, err, sizeof err) < 0 || d <= 0 || d > 86400) {
		fprintf(stderr, PROG ": %s: %s\n", opt, d <= 0 || d > 86400 ?
		        "expected a duration between 1ms and 24h" : err);
		return -1;
	}
	*out = (long)(d * 1000 + 0.5);
	if (*out < 1)
		*out = 1;
	return 0;
}

/* A header name: RFC 9110 token characters. */
static int is_token(const uint8_t *p, size_t n)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'z') ||
		      (p[i] >= 'A' && p[i] <= 'Z') || (p[i] && strchr(extra, p[i]))))
			return 0;
	return 1;
}

/* A header value: no CR, LF or NUL (they would split the request). */
static int value_ok(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] == '\r' || p[i] == '\n' || p[i] == 0)
			return 0;
	return 1;
}

static int parse_ropts(struct ropts *o, int argc, char **argv)
{
	static const struct option own[] = {
		{ "requests", no_argument, NULL, OPT_REQUESTS },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "speed", required_argument, NULL, OPT_SPEED },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "concurrency", required_argument, NULL, OPT_CONC },
		{ "keep-host", no_argument, NULL, OPT_KEEP_HOST },
		{ "set-header", required_argument, NULL, OPT_SET_HEADER },
		{ "diff-out", required_argument, NULL, OPT_DIFF_OUT },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
		{ "insecure", no_argument, NULL, OPT_INSECURE },
		{ "ca-file", required_argument, NULL, OPT_CA_FILE },
		{ "ca-dir", required_argument, NULL, OPT_CA_DIR },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct option all[sizeof own / sizeof own[0] + CLI_FILTER_NOPTS + 1];
	uint64_t k;
	int ch, r, speed_set = 0;

	if (!cli_filter_longopts(own, all, sizeof all / sizeof all[0]))
		return -1;
	cli_filter_init(&o->f, PROG, CLI_STATE_ALL);
	o->speed = 1;
	o->concurrency = DEF_CONCURRENCY;
	o->progress = 1;
	o->timeout_ms = 30000;
	o->connect_ms = 5000;
	optind = 1;
	opterr = 1;
	while ((ch = getopt_long(argc, argv, "qh", all, NULL)) != -1) {
		switch (ch) {
		case OPT_REQUESTS: break;
		case OPT_TARGET: o->target = optarg; break;
		case OPT_SPEED:
			speed_set = 1;
			if (!strcmp(optarg, "max"))
				o->speed = 0;
			else if (parse_positive("--speed", optarg, 1e6, &o->speed) < 0)
				return -1;
			break;
		case OPT_RATE:
			if (parse_positive("--rate", optarg, 1e6, &o->rate) < 0)
				return -1;
			break;
		case OPT_CONC:
			if (cli_parse_u64("--concurrency", optarg, &k) < 0)
				return -1;
			if (k < 1 || k > MAX_CONCURRENCY) {
				fprintf(stderr, PROG ": --concurrency: between 1 and %d\n",
				        MAX_CONCURRENCY);
				return -1;
			}
			o->concurrency = (unsigned)k;
			break;
		case OPT_KEEP_HOST: o->keep_host = 1; break;
		case OPT_SET_HEADER: {
			const char *colon = strchr(optarg, ':');
			const char *v = colon ? colon + 1 : NULL;

			while (v && (*v == ' ' || *v == '\t'))
				v++;
			if (!colon || !is_token((const uint8_t *)optarg, (size_t)(colon - optarg)) ||
			    !value_ok((const uint8_t *)v, strlen(v))) {
				fprintf(stderr, PROG ": --set-header '%s': expected 'NAME: VALUE' "
				        "(NAME: alone removes the header)\n", optarg);
				return -1;
			}
			if (o->nset_hdr >= SET_HEADERS_MAX) {
				fprintf(stderr, PROG ": more than %d --set-header\n", SET_HEADERS_MAX);
				return -1;
			}
			o->set_hdr[o->nset_hdr++] = optarg;
			break;
		}
		case OPT_DIFF_OUT: o->diff_out = optarg; break;
		case OPT_TIMEOUT:
			if (parse_ms("--timeout", optarg, &o->timeout_ms) < 0)
				return -1;
			break;
		case OPT_CONNECT_TIMEOUT:
			if (parse_ms("--connect-timeout", optarg, &o->connect_ms) < 0)
				return -1;
			break;
		case OPT_INSECURE: o->insecure = 1; break;
		case OPT_CA_FILE: o->ca_file = optarg; break;
		case OPT_CA_DIR: o->ca_dir = optarg; break;
		case OPT_JSON: o->json = 1; break;
		case OPT_NO_PROGRESS: o->progress = 0; break;
		case 'q': o->quiet = 1; break;
		case 'h': return 1;
		default:
			r = cli_filter_add_opt(&o->f, ch, optarg);
			if (r < 0)
				return -1;
			if (r == 0) {       /* getopt said what is wrong */
				fprintf(stderr, PROG ": see 'spoolcap replay --requests --help'\n");
				return -1;
			}
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, PROG ": expected exactly one spool directory%s\n",
		        optind < argc ? " (options start with --)" : "");
		return -1;
	}
	o->dir = argv[optind];
	if (!o->target) {
		fprintf(stderr, PROG ": say where to send the requests: --target URL\n");
		return -1;
	}
	if (strncasecmp(o->target, "http://", 7) && strncasecmp(o->target, "https://", 8)) {
		fprintf(stderr, PROG ": --target %s: expected http://HOST[:PORT][/PREFIX] or "
		        "https://...\n", o->target);
		return -1;
	}
	if (strpbrk(o->target, "?#")) {
		fprintf(stderr, PROG ": --target %s: no query or fragment (the captured path "
		        "and query are appended)\n", o->target);
		return -1;
	}
	if (o->rate > 0 && speed_set) {
		fprintf(stderr, PROG ": --rate and --speed exclude each other (a fixed rate, "
		        "or the recorded pace scaled)\n");
		return -1;
	}
	return cli_filter_check(&o->f) < 0 ? -1 : 0;
}

/* ---------------------------------------------------------- the run */

/* One request between its capture and its verdict. */
struct ent {
	struct ent *hnext, *qnext;
	uint64_t    seq;
	int64_t     t_ns;
	int         captured;           /* -1 not seen yet, 0 none, else the status */
	int         replayed;           /* -1 in flight, 0 failed, else the status */
	int         partial;            /* body captured shorter than sent */
	int         judged;             /* counted in the summary */
	int         code;               /* CURLcode of a failure */
	char        err[CURL_ERROR_SIZE];
	size_t      uid_len, method_len, path_len, query_len;
	int         has_query;
	char       *uid, *method, *path, *query;   /* into data[] */
	char        data[];
};

/* One request on the wire. */
struct xfer {
	struct xfer       *next, *prev; /* the transfers in flight */
	struct ent        *e;
	CURL              *easy;
	struct curl_slist *hdrs;
	char              *target;      /* the request-target */
	uint8_t           *body;
	char               errbuf[CURL_ERROR_SIZE];
};

struct pair { int cap, rep; uint64_t n; };
struct errc { char what[96]; uint64_t n; };

struct rr {
	struct ropts *o;
	cli_spool    *c;
	CURLM        *multi;
	char          base[2048];       /* scheme://authority */
	char          prefix[2048];     /* the target URL's path, without a final / */
	char          authority[1024];  /* Host for the target */
	FILE         *diff;
	const char   *uuid;
	/* pacing */
	double        t_start;          /* wall clock of the first request */
	int64_t       t_first_ns;       /* its capture time */
	uint64_t      started;
	double        max_late;
	/* pairing */
	struct ent   *bucket[NBUCKETS];
	struct ent   *qhead, *qtail;
	size_t        outstanding;
	size_t        awaiting;         /* of them, without a captured status yet */
	unsigned      active;
	struct xfer  *xfers;            /* in flight */
	int64_t       last_req_ns;      /* capture time of the newest request */
	uint64_t      last_seq;         /* last record the first walk gave */
	uint64_t      lo, hi;           /* the walk's seq range, for progress */
	/* counters */
	uint64_t      selected, same, differ, errors, unpaired, partial, corrupt;
	uint64_t      unsendable, hdr_dropped;
	uint64_t      not_selected;     /* other records, requests the filters leave out */
	struct pair  *pairs;
	size_t        npairs;
	struct errc  *errs;
	size_t        nerrs;
	int           tail;             /* the second walk: responses only */
	int           io_error;         /* out of memory, libcurl refused: stopped */
	int           diff_error;       /* --diff-out could not be written */
	double        next_tick;
};

static uint32_t hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h & (NBUCKETS - 1);
}

static void count_pair(struct rr *x, int cap, int rep)
{
	struct pair *p;
	size_t i;

	for (i = 0; i < x->npairs; i++)
		if (x->pairs[i].cap == cap && x->pairs[i].rep == rep) {
			x->pairs[i].n++;
			return;
		}
	p = realloc(x->pairs, (x->npairs + 1) * sizeof *p);
	if (!p)
		return;                 /* the total still counts it */
	x->pairs = p;
	p[x->npairs++] = (struct pair){ cap, rep, 1 };
}

static void count_error(struct rr *x, const char *what)
{
	struct errc *e;
	size_t i;

	for (i = 0; i < x->nerrs; i++)
		if (!strcmp(x->errs[i].what, what)) {
			x->errs[i].n++;
			return;
		}
	e = realloc(x->errs, (x->nerrs + 1) * sizeof *e);
	if (!e)
		return;
	x->errs = e;
	i = strlen(what) < sizeof e->what - 1 ? strlen(what) : sizeof e->what - 1;
	memcpy(e[x->nerrs].what, what, i);
	e[x->nerrs].what[i] = 0;
	e[x->nerrs++].n = 1;
}

static void diff_line(struct rr *x, const struct ent *e)
{
	char t[EVENT_TIME_LEN + 1], id[64];
	json_buf j;

	if (!x->diff)
		return;
	json_init(&j, 1u << 20);
	event_time_format(t, e->t_ns);
	json_cstr_raw(&j, "{\"seq\":");
	json_u64(&j, e->seq);
	json_cstr_raw(&j, ",\"id\":");
	snprintf(id, sizeof id, "-%" PRIu64, e->seq);
	json_char(&j, '"');
	json_esc(&j, x->uuid, strlen(x->uuid));
	json_esc(&j, id, strlen(id));
	json_char(&j, '"');
	json_cstr_raw(&j, ",\"time\":");
	json_str(&j, t, strlen(t));
	json_cstr_raw(&j, ",\"uid\":");
	if (e->uid_len)
		json_bytes(&j, e->uid, e->uid_len);
	else
		json_cstr_raw(&j, "null");
	json_cstr_raw(&j, ",\"method\":");
	json_bytes(&j, e->method, e->method_len);
	json_cstr_raw(&j, ",\"path\":");
	json_bytes(&j, e->path, e->path_len);
	json_cstr_raw(&j, ",\"query\":");
	if (e->has_query)
		json_bytes(&j, e->query, e->query_len);
	else
		json_cstr_raw(&j, "null");
	json_cstr_raw(&j, ",\"captured\":");
	if (e->captured > 0)
		json_u64(&j, (uint64_t)e->captured);
	else
		json_cstr_raw(&j, "null");
	json_cstr_raw(&j, ",\"replayed\":");
	if (e->replayed > 0)
		json_u64(&j, (uint64_t)e->replayed);
	else
		json_cstr_raw(&j, "null");
	if (e->replayed == 0) {
		json_cstr_raw(&j, ",\"error\":");
		json_str(&j, e->err, strlen(e->err));
	}
	if (e->partial)
		json_cstr_raw(&j, ",\"partial_body\":true");
	json_cstr_raw(&j, "}\n");
	if (j.err || fwrite(j.data, 1, j.len, x->diff) != j.len)
		x->diff_error = 1;
	json_free(&j);
}

/* Counts a request's verdict as soon as it is known: it failed, or both
 * statuses are known (captured 0: none was captured). Called again later,
 * it does nothing. */
static void judge(struct rr *x, struct ent *e)
{
	if (e->judged || e->replayed < 0 || (e->replayed > 0 && e->captured < 0))
		return;
	e->judged = 1;
	if (e->replayed == 0) {
		x->errors++;
		count_error(x, e->code ? curl_easy_strerror((CURLcode)e->code) : e->err);
	} else if (e->captured == 0) {
		x->unpaired++;
	} else if (e->captured == e->replayed) {
		x->same++;
	} else {
		x->differ++;
		count_pair(x, e->captured, e->replayed);
	}
}

static void unhash(struct rr *x, struct ent *e)
{
	struct ent **pp;

	if (!e->uid_len)
		return;
	for (pp = &x->bucket[hash(e->uid, e->uid_len)]; *pp; pp = &(*pp)->hnext)
		if (*pp == e) {
			*pp = e->hnext;
			return;
		}
}

/* Settles entries at the head of the queue, in seq order (--diff-out
 * lines come out in that order): done, and paired or past the window
 * (now_ns: the capture time the walk has reached; INT64_MAX at the end). */
static void reap(struct rr *x, int64_t now_ns)
{
	while (x->qhead) {
		struct ent *e = x->qhead;

		if (e->replayed < 0)
			break;
		if (e->captured < 0) {
			int expired = now_ns == INT64_MAX || !e->uid_len ||
			              (now_ns - e->t_ns > RESPONSE_WINDOW) ||
			              x->outstanding > MAX_OUTSTANDING;

			if (!expired)
				break;
			e->captured = 0;
			if (e->uid_len)
				x->awaiting--;  /* (entries without a uid never wait) */
		}
		judge(x, e);
		if (e->replayed == 0 || (e->captured > 0 && e->captured != e->replayed))
			diff_line(x, e);
		unhash(x, e);
		x->qhead = e->qnext;
		if (!x->qhead)
			x->qtail = NULL;
		x->outstanding--;
		free(e);
	}
}

/* ------------------------------------------------------------ transfers */

static size_t discard(char *p, size_t size, size_t n, void *user)
{
	(void)p;
	(void)user;
	return size * n;
}

static void xfer_free(struct xfer *t)
{
	if (t->easy)
		curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->hdrs);
	free(t->target);
	free(t->body);
	free(t);
}

static void unlink_xfer(struct rr *x, struct xfer *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		x->xfers = t->next;
	if (t->next)
		t->next->prev = t->prev;
	x->active--;
}

static void finish(struct rr *x, CURL *easy, CURLcode res)
{
	struct xfer *t = NULL;
	long code = 0;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
	curl_multi_remove_handle(x->multi, easy);
	unlink_xfer(x, t);
	if (res == CURLE_OK && curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK &&
	    code > 0) {
		t->e->replayed = (int)code;
	} else {
		t->e->replayed = 0;
		t->e->code = (int)res;
		memcpy(t->e->err, t->errbuf, sizeof t->e->err);
		if (!t->e->err[0])
			snprintf(t->e->err, sizeof t->e->err, "%s", res == CURLE_OK ?
			         "no HTTP status" : curl_easy_strerror(res));
	}
	judge(x, t->e);
	xfer_free(t);
}

static void show(struct rr *x, double now)
{
	char line[320], eta[64] = "", s[32];
	double el = now - x->t_start, frac = -1;

	if (!x->o->progress || !cli_progress_on())
		return;
	if (x->hi >= x->lo && x->last_seq >= x->lo)
		frac = (double)(x->last_seq - x->lo + 1) / (double)(x->hi - x->lo + 1);
	if (frac > 0.001 && frac < 1 && !x->tail) {
		cli_replay_fmt_secs(s, sizeof s, el * (1 - frac) / frac);
		snprintf(eta, sizeof eta, " %2.0f%% ETA %s", frac * 100, s);
	}
	snprintf(line, sizeof line, "requests: %" PRIu64 " sent, %.0f/s, %" PRIu64 " same, %"
	         PRIu64 " differ, %" PRIu64 " errors, %u in flight%s%s", x->started,
	         el >= TICK_S ? (double)x->started / el : 0, x->same, x->differ, x->errors, x->active,
	         eta, x->tail ? " (looking for the last responses)" : "");
	cli_progress_show(line);
}

/* Runs what is ready; the transfers that ended are settled. Returns how
 * many ended. */
static unsigned progress(struct rr *x)
{
	CURLMsg *m;
	unsigned done = 0;
	int running, n;

	curl_multi_perform(x->multi, &running);
	while ((m = curl_multi_info_read(x->multi, &n)))
		if (m->msg == CURLMSG_DONE) {
			finish(x, m->easy_handle, m->data.result);
			done++;
		}
	return done;
}

/* Runs transfers; unless one ended at once, waits up to wait_s for
 * activity (the callers loop on their own conditions). */
static void pump(struct rr *x, double wait_s)
{
	double now;

	if (progress(x) == 0 && wait_s > 0) {
		curl_multi_poll(x->multi, NULL, 0, (int)(wait_s * 1000) + 1, NULL);
		progress(x);
	}
	now = cli_replay_now();
	if (now >= x->next_tick) {
		x->next_tick = now + TICK_S;
		show(x, now);
	}
}

/* ------------------------------------------------------ reading records */

static int arg_any(const record_view *v, const char *const *names, spop_data *val)
{
	for (; *names; names++)
		if (cli_rec_arg(v, *names, strlen(*names), val))
			return 1;
	return 0;
}

static int str_of(const spop_data *d, spop_str *s)
{
	if (d->type != SPOP_T_STRING && d->type != SPOP_T_BINARY)
		return 0;
	*s = d->v.s;
	return 1;
}

static int int_of(const spop_data *d, int64_t *out)
{
	switch (d->type) {
	case SPOP_T_INT32: case SPOP_T_INT64: *out = d->v.i; return 1;
	case SPOP_T_UINT32: case SPOP_T_UINT64:
		*out = d->v.u > INT64_MAX ? INT64_MAX : (int64_t)d->v.u;
		return 1;
	case SPOP_T_STRING: case SPOP_T_BINARY: {
		char b[24];
		size_t n = d->v.s.len < sizeof b - 1 ? d->v.s.len : sizeof b - 1;
		char *end;

		if (n)
			memcpy(b, d->v.s.ptr, n);
		b[n] = 0;
		*out = strtoll(b, &end, 10);
		return n > 0 && *end == 0;
	}
	default:
		return 0;
	}
}

static const char *const A_METHOD[] = { "meth", "method", NULL };
static const char *const A_PATH[] = { "path", NULL };
static const char *const A_URL[] = { "url", "pathq", NULL };
static const char *const A_QUERY[] = { "query", NULL };
static const char *const A_UID[] = { "uid", "unique-id", "unique_id", NULL };
static const char *const A_STATUS[] = { "status", NULL };
static const char *const A_BODY[] = { "body", NULL };
static const char *const A_BSIZE[] = { "bsize", NULL };

/* The header block argument: the first whose name event.h's default
 * rule takes for one (*hdrs, *headers). */
static int hdrs_arg(const record_view *v, spop_data *val)
{
	spop_iter it = v->msg.args;
	spop_str name;

	while (spop_arg_next(&it, &name, val) > 0)
		if (event_is_hdrs_arg(NULL, name.ptr, name.len))
			return val->type == SPOP_T_BINARY || val->type == SPOP_T_STRING;
	return 0;
}

static int ieq(spop_str s, const char *w)
{
	return cli_hdrs_name_eq(s, w, strlen(w));
}

/* Is a header named in a Connection header's value (a comma list)? */
static int named_in(spop_str conn, spop_str name)
{
	const uint8_t *p = conn.ptr, *end = p + conn.len;

	while (p < end) {
		const uint8_t *q;
		spop_str tok;

		while (p < end && (*p == ',' || *p == ' ' || *p == '\t'))
			p++;
		for (q = p; q < end && *q != ','; q++)
			;
		tok.ptr = p;
		tok.len = (size_t)(q - p);
		while (tok.len && (tok.ptr[tok.len - 1] == ' ' || tok.ptr[tok.len - 1] == '\t'))
			tok.len--;
		if (tok.len == name.len && cli_hdrs_name_eq(tok, (const char *)name.ptr, name.len))
			return 1;
		p = q;
	}
	return 0;
}

static int hop_by_hop(spop_str n)
{
	static const char *const hop[] = { "connection", "keep-alive", "transfer-encoding", "te",
	                                   "trailer", "upgrade", "expect", NULL };
	const char *const *h;

	for (h = hop; *h; h++)
		if (ieq(n, *h))
			return 1;
	return n.len >= 6 && cli_hdrs_name_eq((spop_str){ n.ptr, 6 }, "proxy-", 6);
}

/* --set-header names NAME? Then it replaces the captured one. */
static int overridden(const struct ropts *o, spop_str n)
{
	unsigned i;

	for (i = 0; i < o->nset_hdr; i++) {
		const char *colon = strchr(o->set_hdr[i], ':');

		if ((size_t)(colon - o->set_hdr[i]) == n.len &&
		    cli_hdrs_name_eq(n, o->set_hdr[i], n.len))
			return 1;
	}
	return 0;
}

static int slist_add(struct curl_slist **l, const char *line)
{
	struct curl_slist *n = curl_slist_append(*l, line);

	if (!n)
		return -1;
	*l = n;
	return 0;
}

/* "name: value" (or "name;" for an empty value, libcurl's way to send one). */
static int add_header(struct curl_slist **l, spop_str n, spop_str v)
{
	char *line = malloc(n.len + v.len + 3);
	int rc;

	if (!line)
		return -1;
	memcpy(line, n.ptr, n.len);
	if (v.len) {
		memcpy(line + n.len, ": ", 2);
		memcpy(line + n.len + 2, v.ptr, v.len);
		line[n.len + 2 + v.len] = 0;
	} else {
		line[n.len] = ';';
		line[n.len + 1] = 0;
	}
	rc = slist_add(l, line);
	free(line);
	return rc;
}

/* Builds the request of a record: 0, 1 when it is not a request, -1 when
 * it cannot be sent (warned), -2 out of memory. */
static int build(struct rr *x, const cli_rec *r, struct xfer **out)
{
	const record_view *v = r->view;
	spop_data d, hd;
	spop_str method, path, query = { NULL, 0 }, uid = { NULL, 0 }, body = { NULL, 0 }, hn, hv;
	spop_str conn = { NULL, 0 };
	int has_query = 0, has_path, has_hdrs, has_len = 0, host_seen = 0, has_accept = 0;
	int has_ctype = 0;
	int64_t bsize = -1;
	struct xfer *t;
	struct ent *e;
	cli_hdrs h;
	size_t i, tlen;
	unsigned k;

	if (!arg_any(v, A_METHOD, &d) || !str_of(&d, &method) || method.len == 0)
		return 1;
	has_path = arg_any(v, A_PATH, &d) && str_of(&d, &path) && path.len > 0;
	if (has_path) {
		if (arg_any(v, A_QUERY, &d) && str_of(&d, &query) && query.len)
			has_query = 1;
	} else if (!(arg_any(v, A_URL, &d) && str_of(&d, &path) && path.len > 0)) {
		return 1;
	}
	if (arg_any(v, A_UID, &d))
		str_of(&d, &uid);
	if (arg_any(v, A_BODY, &d))
		str_of(&d, &body);
	if (arg_any(v, A_BSIZE, &d) && !int_of(&d, &bsize))
		bsize = -1;
	if (!is_token(method.ptr, method.len) || ieq(method, "CONNECT")) {
		if (!x->o->quiet)
			fprintf(stderr, PROG ": seq %" PRIu64 ": method %.*s cannot be replayed; "
			        "skipped\n", r->seq, (int)(method.len > 32 ? 32 : method.len),
			        method.ptr);
		return -1;
	}
	for (i = 0; i < path.len; i++)
		if (path.ptr[i] <= ' ' || path.ptr[i] == 0x7f)
			break;
	for (k = 0; i == path.len && k < query.len; k++)
		if (query.ptr[k] <= ' ' || query.ptr[k] == 0x7f)
			break;
	if (i < path.len || k < query.len) {
		if (!x->o->quiet)
			fprintf(stderr, PROG ": seq %" PRIu64 ": the captured path or query holds "
			        "spaces or control bytes; skipped\n", r->seq);
		return -1;
	}

	e = calloc(1, sizeof *e + uid.len + method.len + path.len + query.len + 4);
	t = calloc(1, sizeof *t);
	tlen = strlen(x->prefix) + path.len + 1 + query.len + 1;
	if (!e || !t || !(t->target = malloc(tlen)) ||
	    (body.len && !(t->body = malloc(body.len)))) {
		free(e);
		if (t)
			xfer_free(t);
		return -2;
	}
	t->e = e;
	e->seq = r->seq;
	e->t_ns = v->recv_ns;
	e->captured = -1;
	e->replayed = -1;
	e->uid = e->data;
	if (uid.len)
		memcpy(e->uid, uid.ptr, uid.len);
	e->uid_len = uid.len;
	e->method = e->uid + uid.len + 1;
	memcpy(e->method, method.ptr, method.len);
	e->method_len = method.len;
	e->method[method.len] = 0;
	e->path = e->method + method.len + 1;
	memcpy(e->path, path.ptr, path.len);
	e->path_len = path.len;
	e->query = e->path + path.len + 1;
	if (has_query)
		memcpy(e->query, query.ptr, query.len);
	e->query_len = has_query ? query.len : 0;
	e->has_query = has_query;
	snprintf(t->target, tlen, "%s%.*s%s%.*s", x->prefix, (int)path.len, path.ptr,
	         has_query ? "?" : "", (int)e->query_len, e->query);
	if (body.len)
		memcpy(t->body, body.ptr, body.len);

	/* Headers: first find Connection (it names more hop-by-hop ones). */
	has_hdrs = hdrs_arg(v, &hd) && cli_hdrs_init(&h, &hd) == 0;
	if (has_hdrs)
		while (cli_hdrs_next(&h, &hn, &hv))
			if (ieq(hn, "connection"))
				conn = hv;
	if (has_hdrs)
		cli_hdrs_init(&h, &hd);
	while (has_hdrs && cli_hdrs_next(&h, &hn, &hv)) {
		if (ieq(hn, "content-length") || ieq(hn, "transfer-encoding"))
			has_len = 1;
		if (ieq(hn, "content-length") || hop_by_hop(hn) || (conn.len && named_in(conn, hn)) ||
		    overridden(x->o, hn))
			continue;
		if (!is_token(hn.ptr, hn.len) || !value_ok(hv.ptr, hv.len)) {
			x->hdr_dropped++;
			continue;
		}
		if (ieq(hn, "host")) {
			if (host_seen++)
				continue;       /* one Host line (libcurl writes it) */
			if (!x->o->keep_host) {
				hv.ptr = (const uint8_t *)x->authority;
				hv.len = strlen(x->authority);
			}
		}
		has_accept |= ieq(hn, "accept");
		has_ctype |= ieq(hn, "content-type");
		if (add_header(&t->hdrs, hn, hv) < 0)
			goto oom;
	}
	for (k = 0; k < x->o->nset_hdr; k++) {
		const char *line = x->o->set_hdr[k], *colon = strchr(line, ':'), *val = colon + 1;
		spop_str n = { (const uint8_t *)line, (size_t)(colon - line) }, sv;

		while (*val == ' ' || *val == '\t')
			val++;
		if (!*val)
			continue;               /* NAME: alone: removed, above */
		sv.ptr = (const uint8_t *)val;
		sv.len = strlen(val);
		has_accept |= ieq(n, "accept");
		has_ctype |= ieq(n, "content-type");
		host_seen |= ieq(n, "host");
		if (add_header(&t->hdrs, n, sv) < 0)
			goto oom;
	}
	/* Keep libcurl from adding what the client did not send. */
	if ((!has_accept && slist_add(&t->hdrs, "Accept:") < 0) ||
	    (!has_ctype && slist_add(&t->hdrs, "Content-Type:") < 0) ||
	    slist_add(&t->hdrs, "Expect:") < 0)
		goto oom;

	if (!(t->easy = curl_easy_init()))
		goto oom;
	curl_easy_setopt(t->easy, CURLOPT_URL, x->base);
	curl_easy_setopt(t->easy, CURLOPT_REQUEST_TARGET, t->target);
	curl_easy_setopt(t->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->hdrs);
	curl_easy_setopt(t->easy, CURLOPT_PROXY, "");   /* not from the environment */
	curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(t->easy, CURLOPT_PRIVATE, (char *)t);
	curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, x->o->timeout_ms);
	curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, x->o->connect_ms);
	if (x->o->insecure) {
		curl_easy_setopt(t->easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(t->easy, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (x->o->ca_file)
		curl_easy_setopt(t->easy, CURLOPT_CAINFO, x->o->ca_file);
	if (x->o->ca_dir)
		curl_easy_setopt(t->easy, CURLOPT_CAPATH, x->o->ca_dir);
	if (method.len == 4 && !memcmp(method.ptr, "HEAD", 4)) {
		curl_easy_setopt(t->easy, CURLOPT_NOBODY, 1L);
	} else if (body.len || has_len || bsize > 0) {
		curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
		curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->body ? (char *)t->body : "");
		if (!(method.len == 4 && !memcmp(method.ptr, "POST", 4)))
			curl_easy_setopt(t->easy, CURLOPT_CUSTOMREQUEST, e->method);
		if (bsize > (int64_t)body.len) {
			e->partial = 1;
			x->partial++;
		}
	} else {
		curl_easy_setopt(t->easy, CURLOPT_HTTPGET, 1L);
		if (!(method.len == 3 && !memcmp(method.ptr, "GET", 3)))
			curl_easy_setopt(t->easy, CURLOPT_CUSTOMREQUEST, e->method);
	}
	*out = t;
	return 0;
oom:
	free(e);
	t->e = NULL;
	xfer_free(t);
	return -2;
}

/* Queues the entry for pairing (by uid) in seq order. */
static void track(struct rr *x, struct ent *e)
{
	if (e->uid_len) {
		uint32_t b = hash(e->uid, e->uid_len);

		/* append to the chain: the oldest entry of a uid pairs first */
		struct ent **pp = &x->bucket[b];

		while (*pp)
			pp = &(*pp)->hnext;
		*pp = e;
	}
	if (x->qtail)
		x->qtail->qnext = e;
	else
		x->qhead = e;
	x->qtail = e;
	x->outstanding++;
	if (e->uid_len)
		x->awaiting++;
}

static void captured(struct rr *x, const record_view *v)
{
	spop_data d;
	spop_str uid;
	int64_t status;
	struct ent *e;

	if (!arg_any(v, A_UID, &d) || !str_of(&d, &uid) || uid.len == 0 ||
	    !arg_any(v, A_STATUS, &d) || !int_of(&d, &status))
		return;
	for (e = x->bucket[hash((const char *)uid.ptr, uid.len)]; e; e = e->hnext)
		if (e->captured < 0 && e->uid_len == uid.len && !memcmp(e->uid, uid.ptr, uid.len)) {
			e->captured = status > 0 && status < 1000 ? (int)status : 0;
			x->awaiting--;
			judge(x, e);
			return;
		}
}

/* When the next request is due (CLOCK_MONOTONIC s). */
static double due_at(struct rr *x, int64_t t_ns)
{
	if (x->started == 0)
		return cli_replay_now();
	if (x->o->rate > 0)
		return x->t_start + (double)x->started / x->o->rate;
	if (x->o->speed <= 0)
		return 0;
	return x->t_start + (double)(t_ns - x->t_first_ns) / 1e9 / x->o->speed;
}

static int walk_cb(cli_spool *c, const cli_rec *r, void *user)
{
	struct rr *x = user;
	const record_view *v = r->view;
	struct xfer *t;
	spop_data d;
	double due, now;
	int rc;

	(void)c;
	if (!x->tail)
		x->last_seq = r->seq;
	if (r->err) {
		if (!x->tail) {
			x->corrupt++;
			if (!x->o->quiet)
				fprintf(stderr, PROG ": seq %" PRIu64 " skipped: %s\n", r->seq, r->why);
		}
		return cli_replay_interrupted;
	}
	/* done reading: every request is sent (the tail walk, or --limit
	 * reached) and every response is found or cannot come any more */
	if ((x->tail || (x->o->f.limit && x->selected >= x->o->f.limit)) &&
	    (!x->awaiting || v->recv_ns - x->last_req_ns > RESPONSE_WINDOW))
		return 1;
	if (!arg_any(v, A_METHOD, &d) && arg_any(v, A_STATUS, &d)) {
		captured(x, v);
		reap(x, v->recv_ns);
		if (!x->tail)
			pump(x, 0);
		return cli_replay_interrupted;
	}
	if (x->tail)
		return cli_replay_interrupted;
	/* a request, if the filters take it (they were left out of the walk
	 * so that responses come through) */
	if (!(r->state & x->o->f.states) || !cli_filter_match(&x->o->f, v) ||
	    (x->o->f.limit && x->selected >= x->o->f.limit)) {
		x->not_selected++;
		return cli_replay_interrupted;
	}
	rc = build(x, r, &t);
	if (rc == 1) {
		x->not_selected++;
		return cli_replay_interrupted;
	}
	x->selected++;
	if (rc == -1) {
		x->unsendable++;
		return cli_replay_interrupted;
	}
	if (rc == -2) {
		fprintf(stderr, PROG ": out of memory\n");
		x->io_error = 1;
		return 1;
	}
	/* pace: wait for its time and for a free slot */
	due = due_at(x, v->recv_ns);
	while (!cli_replay_interrupted) {
		now = cli_replay_now();
		if (now >= due && x->active < x->o->concurrency)
			break;
		pump(x, now < due ? (due - now < TICK_S ? due - now : TICK_S) : TICK_S);
	}
	if (cli_replay_interrupted) {
		x->selected--;          /* not sent after all */
		free(t->e);
		t->e = NULL;
		xfer_free(t);
		return 1;
	}
	now = cli_replay_now();
	if (x->started == 0) {
		x->t_start = now;
		x->t_first_ns = v->recv_ns;
	} else if (due > 0 && now - due > x->max_late) {
		x->max_late = now - due;
	}
	if (curl_multi_add_handle(x->multi, t->easy) != CURLM_OK) {
		fprintf(stderr, PROG ": libcurl refused a transfer\n");
		free(t->e);
		t->e = NULL;
		xfer_free(t);
		x->io_error = 1;
		return 1;
	}
	t->next = x->xfers;
	if (x->xfers)
		x->xfers->prev = t;
	x->xfers = t;
	x->active++;
	x->started++;
	x->last_req_ns = v->recv_ns;
	track(x, t->e);
	reap(x, v->recv_ns);
	pump(x, 0);
	return 0;
}

/* "http://h:p/prefix/" -> base "http://h:p", prefix "/prefix", authority "h:p". */
static int split_target(struct rr *x, const char *url)
{
	const char *auth = strstr(url, "://") + 3, *slash = strchr(auth, '/');
	size_t alen = slash ? (size_t)(slash - auth) : strlen(auth), plen;

	if (alen == 0 || alen >= sizeof x->authority || memchr(auth, '@', alen)) {
		fprintf(stderr, PROG ": --target %s: expected http(s)://HOST[:PORT][/PREFIX] "
		        "(no user info)\n", url);
		return -1;
	}
	memcpy(x->authority, auth, alen);
	x->authority[alen] = 0;
	snprintf(x->base, sizeof x->base, "%.*s/", (int)(auth - url) + (int)alen, url);
	plen = slash ? strlen(slash) : 0;
	while (plen && slash[plen - 1] == '/')
		plen--;
	if (plen >= sizeof x->prefix) {
		fprintf(stderr, PROG ": --target: the path is too long\n");
		return -1;
	}
	memcpy(x->prefix, slash ? slash : "", plen);
	x->prefix[plen] = 0;
	return 0;
}

static void print_summary(struct rr *x, double secs, int interrupted)
{
	size_t i;

	if (x->o->json) {
		json_buf j;
		char n[96];

		json_init(&j, 1u << 20);
		json_cstr_raw(&j, "{\"target\":");
		json_str(&j, x->o->target, strlen(x->o->target));
		json_cstr_raw(&j, ",\"result\":");
		json_cstr_raw(&j, interrupted ? "\"interrupted\"" : "\"done\"");
#define NUM(k, v) do { json_cstr_raw(&j, ",\"" k "\":"); json_u64(&j, v); } while (0)
		NUM("requests", x->selected);
		NUM("sent", x->started);
		NUM("same", x->same);
		NUM("different", x->differ);
		NUM("errors", x->errors);
		NUM("no_captured_response", x->unpaired);
		NUM("partial_bodies", x->partial);
		NUM("unsendable", x->unsendable);
		NUM("corrupt", x->corrupt);
		NUM("headers_dropped", x->hdr_dropped);
		NUM("not_selected", x->not_selected);
#undef NUM
		json_cstr_raw(&j, ",\"changes\":[");
		for (i = 0; i < x->npairs; i++) {
			snprintf(n, sizeof n, "%s{\"captured\":%d,\"replayed\":%d,\"count\":%" PRIu64
			         "}", i ? "," : "", x->pairs[i].cap, x->pairs[i].rep, x->pairs[i].n);
			json_cstr_raw(&j, n);
		}
		json_cstr_raw(&j, "],\"error_kinds\":[");
		for (i = 0; i < x->nerrs; i++) {
			json_cstr_raw(&j, i ? ",{\"error\":" : "{\"error\":");
			json_str(&j, x->errs[i].what, strlen(x->errs[i].what));
			snprintf(n, sizeof n, ",\"count\":%" PRIu64 "}", x->errs[i].n);
			json_cstr_raw(&j, n);
		}
		snprintf(n, sizeof n, "],\"elapsed_s\":%.3f,\"requests_per_s\":%.1f,"
		         "\"max_late_s\":%.3f}", secs, secs > 0 ? (double)x->started / secs : 0,
		         x->max_late);
		json_cstr_raw(&j, n);
		printf("%.*s\n", (int)j.len, j.data);
		json_free(&j);
		return;
	}
	printf("replayed %" PRIu64 " request%s against %s in %.2f s (%.0f/s)%s\n", x->started,
	       x->started == 1 ? "" : "s", x->o->target, secs,
	       secs > 0 ? (double)x->started / secs : 0, interrupted ? "; interrupted" : "");
	printf("  %-34s %10" PRIu64 "\n", "same status", x->same);
	printf("  %-34s %10" PRIu64 "\n", "different status", x->differ);
	for (i = 0; i < x->npairs; i++) {
		char k[48];

		snprintf(k, sizeof k, "%d -> %d", x->pairs[i].cap, x->pairs[i].rep);
		printf("    %-32s %10" PRIu64 "\n", k, x->pairs[i].n);
	}
	printf("  %-34s %10" PRIu64 "\n", "errors", x->errors);
	for (i = 0; i < x->nerrs; i++)
		printf("    %-32.32s %10" PRIu64 "\n", x->errs[i].what, x->errs[i].n);
	printf("  %-34s %10" PRIu64 "\n", "no captured response", x->unpaired);
	if (x->partial)
		printf("  %-34s %10" PRIu64 "\n", "partial bodies (sent as captured)", x->partial);
	if (x->unsendable)
		printf("  %-34s %10" PRIu64 "\n", "not sendable (skipped)", x->unsendable);
	if (x->corrupt)
		printf("  %-34s %10" PRIu64 "\n", "records that do not decode", x->corrupt);
	if (x->hdr_dropped)
		printf("  %-34s %10" PRIu64 "\n", "malformed headers dropped", x->hdr_dropped);
	if (x->max_late >= 1)
		printf("  behind the pace by up to %.1f s (raise --concurrency?)\n", x->max_late);
}

int cli_rerequest(int argc, char **argv)
{
	struct ropts o;
	struct rr *x = NULL;
	cli_spool c;
	cli_filter wf;
	spool_stats st;
	int rc, ret = CLI_EXIT_USAGE, interrupted;
	double t0;

	memset(&o, 0, sizeof o);
	memset(&c, 0, sizeof c);
	rc = parse_ropts(&o, argc, argv);
	if (rc) {
		if (rc > 0) {
			usage(stdout);
			return CLI_EXIT_OK;
		}
		return CLI_EXIT_USAGE;
	}
	x = calloc(1, sizeof *x);
	if (!x) {
		fprintf(stderr, PROG ": out of memory\n");
		return CLI_EXIT_USAGE;
	}
	x->o = &o;
	if (split_target(x, o.target) < 0)
		goto out;
	if (cli_open(&c, o.dir, SPOOL_MODE_READONLY) < 0)
		goto out;
	x->c = &c;
	x->uuid = spool_uuid(c.sp);
	if (o.diff_out) {
		/* 0600, like spoolcap export: it holds captured paths and ids */
		int fd = open(o.diff_out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd < 0 || !(x->diff = fdopen(fd, "w"))) {
			fprintf(stderr, PROG ": --diff-out %s: %s\n", o.diff_out, strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out;
		}
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(x->multi = curl_multi_init())) {
		fprintf(stderr, PROG ": libcurl initialisation failed\n");
		goto out;
	}
	curl_multi_setopt(x->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)o.concurrency);
	if (spool_stat(c.sp, &st) == 0) {
		x->lo = o.f.from > st.first_seq ? o.f.from : st.first_seq;
		x->hi = o.f.to && o.f.to < st.last_seq ? o.f.to : st.last_seq;
	}
	cli_replay_signals();
	t0 = cli_replay_now();
	x->t_start = t0;
	x->next_tick = t0 + TICK_S;

	/* The walk: the filters' bounds (seq, time) but not the ones that
	 * select requests (message, match, limit, state), so that responses
	 * come through to be paired. */
	wf = o.f;
	wf.message = NULL;
	wf.nmatch = 0;
	wf.limit = 0;
	wf.states = CLI_STATE_ALL;
	rc = cli_filter_iterate(&c, &wf, walk_cb, x);
	while (rc >= 0 && x->active && !cli_replay_interrupted)
		pump(x, TICK_S);
	reap(x, x->last_req_ns);
	/* responses captured after the filters' upper bound */
	if (rc >= 0 && x->awaiting && !cli_replay_interrupted && !x->io_error) {
		cli_filter_init(&wf, PROG, CLI_STATE_ALL);
		wf.from = x->last_seq + 1;
		x->tail = 1;
		rc = cli_filter_iterate(&c, &wf, walk_cb, x);
	}
	interrupted = cli_replay_interrupted != 0;
	/* cut what is still in flight (interrupted): it stays unsettled */
	while (x->active && !interrupted)
		pump(x, TICK_S);
	if (!interrupted)
		reap(x, INT64_MAX);
	cli_progress_clear();
	if (rc < 0)
		fprintf(stderr, PROG ": reading %s failed: %s\n", o.dir,
		        rc == SPOOL_ENOMEM ? "out of memory" : spool_errmsg());
	if (x->diff && (fflush(x->diff) != 0 || ferror(x->diff)))
		x->diff_error = 1;
	if (x->diff_error)
		fprintf(stderr, PROG ": writing %s failed: %s\n", o.diff_out, strerror(errno));
	print_summary(x, x->started ? cli_replay_now() - x->t_start : 0, interrupted);
	/* as the other subcommands: out of memory 2, an unwritable output 1 */
	ret = x->io_error ? CLI_EXIT_USAGE : rc < 0 ? CLI_EXIT_DATA :
	      interrupted || x->differ || x->errors || x->diff_error ? CLI_EXIT_DATA : CLI_EXIT_OK;
out:
	if (x) {
		struct ent *e, *n;

		while (x->xfers) {
			struct xfer *t = x->xfers;

			curl_multi_remove_handle(x->multi, t->easy);
			unlink_xfer(x, t);
			t->e = NULL;    /* owned by the queue */
			xfer_free(t);
		}
		if (x->multi)
			curl_multi_cleanup(x->multi);
		for (e = x->qhead; e; e = n) {
			n = e->qnext;
			free(e);
		}
		if (x->diff)
			fclose(x->diff);
		free(x->pairs);
		free(x->errs);
		free(x);
	}
	cli_close(&c);
	return ret;
}
