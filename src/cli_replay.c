/* cli_replay.c -- `spoolcap replay DIR --to URL`: sends spooled events to an
 * event processor with the daemon's own sender (replay.h: batching,
 * retries with backoff, error classes, bisection, TLS, compression,
 * idempotency keys), in the foreground, with a progress line and a summary.
 *
 * Copy mode (the default) opens the spool read-only: every selected record
 * (pending or already delivered and retained) is sent, nothing in the spool
 * changes, and what the processor rejects is reported, not dead-lettered.
 * --drain is the daemon's job done by hand: deliver what is pending, move
 * the cursor, dead-letter rejects. It takes the agent lock (DIR/agent.lock)
 * for the whole run, so it is refused while spoolcapd runs on the spool and
 * a spoolcapd started meanwhile refuses to start: two senders would each
 * deliver the same events.
 *
 * The sender settings are parsed by the daemon's own configuration code
 * (config.h): each option here is a [forward] key, --config reads them from
 * a spoolcapd.conf, and the values are checked exactly as spoolcapd checks
 * them. Also here: `replay --requests` dispatch (cli_rerequest.c) and the
 * helpers both forms share (progress line, signals). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spoolcap/cli.h"
#include "spoolcap/cli_filter.h"
#include "spoolcap/cli_replay.h"
#include "spoolcap/config.h"
#include "spoolcap/log.h"
#include "spoolcap/replay.h"
#include "spoolcap/spool_admin.h"

#define PROG              "spoolcap replay"
#define SLICE_S           0.5           /* progress refresh: ~2 per second */
#define DEF_MAX_RETRY_S   300.0         /* --max-retry-time default */
#define RATE_WINDOW       10            /* slices the shown rate averages over */

/* ------------------------------------------------ shared with --requests */

volatile sig_atomic_t cli_replay_interrupted;

static void on_signal(int sig)
{
	(void)sig;
	cli_replay_interrupted = 1;
	signal(SIGINT, SIG_DFL);        /* a second ^C ends it at once */
	signal(SIGTERM, SIG_DFL);
}

void cli_replay_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: poll/epoll return EINTR, the loop checks the flag */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

double cli_replay_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int progress_state = -1;         /* -1 unknown, 0 off, 1 on */
static int progress_shown;

int cli_progress_on(void)
{
	if (progress_state < 0) {
		const char *term = getenv("TERM");

		progress_state = isatty(STDERR_FILENO) && !(term && !strcmp(term, "dumb"));
	}
	return progress_state;
}

void cli_progress_show(const char *line)
{
	if (!cli_progress_on())
		return;
	/* clear, draw, back to column 0 (see cli_replay.h) */
	fprintf(stderr, "\r\033[K%s\r", line);
	fflush(stderr);
	progress_shown = 1;
}

void cli_progress_clear(void)
{
	if (!progress_shown)
		return;
	fprintf(stderr, "\r\033[K");
	fflush(stderr);
	progress_shown = 0;
}

void cli_replay_fmt_secs(char *out, size_t len, double s)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(out, len, "%.1fs", s);
	else if (s < 3600)
		snprintf(out, len, "%dm%02ds", (int)(s / 60), (int)s % 60);
	else
		snprintf(out, len, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

/* --------------------------------------------------------------- usage */

static void usage(FILE *f)
{
	fprintf(f,
"usage: spoolcap replay DIR --to URL [options] [filters]\n"
"       spoolcap replay DIR --to URL --drain [options]\n"
"       spoolcap replay DIR --requests --target URL [options] [filters]\n"
"Sends the spool's events to the event processor at URL with spoolcapd's own\n"
"sender: NDJSON batches, retries with backoff, rejected events isolated by\n"
"bisection, Idempotency-Key headers. By default it COPIES: every selected\n"
"record, pending or delivered (and retained), is sent and the spool is not\n"
"changed; events the processor rejects are reported, not dead-lettered.\n"
"Records appended after the start are not included. Safe while spoolcapd runs.\n"
"(--requests re-issues the captured HTTP requests instead: see\n"
"'spoolcap replay --requests --help'.)\n"
"\n"
"  --to URL               where to POST (http:// or https://)\n"
"  --drain                deliver what is pending as spoolcapd would: the\n"
"                         cursor moves, rejects are dead-lettered. Refused\n"
"                         while spoolcapd runs on DIR (and keeps it from\n"
"                         starting meanwhile); takes no filters\n"
"  --config FILE          take the [forward] settings (and, for --drain, the\n"
"                         [spool] size limits and retention) from spoolcapd's\n"
"                         configuration file; the options below override it\n"
"  --rate N               at most N events per second (default: as fast as the\n"
"                         processor takes them)\n"
"  --max-retry-time DUR   give up (exit 1) after DUR without progress while the\n"
"                         processor fails; 0 = retry forever like spoolcapd\n"
"                         (default 5m)\n"
"Sender settings, as spoolcapd's [forward] keys (spoolcapd(8)):\n"
"  --batch-events N       events per POST (default %d)\n"
"  --batch-bytes SIZE     NDJSON bytes per POST (default 4M)\n"
"  --max-inflight N       POSTs in flight (default %d, at most %d)\n"
"  --compression ALG      none, gzip or zstd request bodies (default none)\n"
"  --compression-level N  the codec's level (default: its own)\n"
"  --header 'NAME: VALUE' extra request header; repeatable. Visible in ps:\n"
"                         put secrets in a file and use --header-file\n"
"  --header-file 'NAME: PATH'\n"
"                         a header whose value is PATH's content; repeatable\n"
"  --ca-file FILE, --ca-dir DIR\n"
"                         trust anchors for https (default: the system's)\n"
"  --client-cert FILE, --client-key FILE\n"
"                         client certificate (PEM) for mutual TLS\n"
"  --insecure             do not verify the processor's certificate (testing)\n"
"  --timeout DUR          whole exchange per POST (default 30s)\n"
"  --connect-timeout DUR  (default 5s)\n"
"  --backoff-base DUR, --backoff-cap DUR\n"
"                         retry delays (default 500ms and 60s, full jitter)\n"
"Output:\n"
"  --json                 the summary as one JSON object\n"
"  --no-progress          no progress line (it is drawn only on a terminal)\n"
"  -q, --quiet            no warnings (rejected events, failing POSTs)\n"
"  -v, --verbose          more detail from the sender\n"
"DUR: 500ms, 30s, 5m, 1h (a bare number is seconds). SIZE: 512K, 4M.\n",
	        REPLAY_DEF_BATCH_EVENTS, REPLAY_DEF_MAX_INFLIGHT, REPLAY_MAX_INFLIGHT);
	cli_filter_usage(f, "pending,delivered");
	fprintf(f,
"  In copy mode --to takes the URL; a number given to --to is the --to SEQ\n"
"  filter (both may be given).\n"
"Exit status: 0 every selected event was delivered; 1 some were rejected, did\n"
"not decode, or it gave up (--max-retry-time, or interrupted); 2 usage or\n"
"environment error (bad option, not a spool, spoolcapd running for --drain).\n");
}

/* ------------------------------------------------------------- options */

enum {
	OPT_DRAIN = 0x100, OPT_CONFIG, OPT_RATE, OPT_MAX_RETRY, OPT_JSON, OPT_NO_PROGRESS,
	OPT_INSECURE, OPT_FWD             /* OPT_FWD + i: fwd_opts[i] */
};

/* Options handed to the daemon's configuration parser: ours, its flag. */
static const struct { const char *name, *flag; } fwd_opts[] = {
	{ "batch-events", "--forward-batch-events" },
	{ "batch-bytes", "--forward-batch-bytes" },
	{ "max-inflight", "--forward-max-inflight" },
	{ "compression", "--forward-compression" },
	{ "compression-level", "--forward-compression-level" },
	{ "header", "--forward-header" },
	{ "header-file", "--forward-header-file" },
	{ "ca-file", "--forward-ca-file" },
	{ "ca-dir", "--forward-ca-dir" },
	{ "client-cert", "--forward-client-cert" },
	{ "client-key", "--forward-client-key" },
	{ "timeout", "--forward-timeout" },
	{ "connect-timeout", "--forward-connect-timeout" },
	{ "backoff-base", "--forward-backoff-base" },
	{ "backoff-cap", "--forward-backoff-cap" },
};
#define NFWD (sizeof fwd_opts / sizeof fwd_opts[0])

struct opts {
	const char *dir, *url, *config;
	int         drain, json, quiet, verbose, progress, insecure;
	double      rate, max_retry;
	int         has_filter;
	cli_filter  f;
	char      **cargv;          /* argv for cfg_load */
	int         cargc;
};

static int cargs_add(struct opts *o, const char *a, const char *b)
{
	o->cargv[o->cargc++] = (char *)(uintptr_t)a;
	if (b)
		o->cargv[o->cargc++] = (char *)(uintptr_t)b;
	return 0;
}

/* "--forward-batch-events: ..." -> "--batch-events: ...". */
static void print_cfg_error(const char *err)
{
	if (!strncmp(err, "--forward-", 10))
		fprintf(stderr, PROG ": --%s\n", err + 10);
	else if (!strncmp(err, "--forward:", 10))
		fprintf(stderr, PROG ": --to:%s\n", err + 10);
	else
		fprintf(stderr, PROG ": %s\n", err);
}

static int parse_rate(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (!*s || *end || errno || !(v > 0) || v > 1e9) {
		fprintf(stderr, PROG ": --rate expects events per second above 0, not '%s'\n", s);
		return -1;
	}
	*out = v;
	return 0;
}

/* Returns -1 on a usage error (printed), 0 to run, 1 for --help. */
static int parse_args(struct opts *o, int argc, char **argv)
{
	static const struct option own_fixed[] = {
		{ "drain", no_argument, NULL, OPT_DRAIN },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "max-retry-time", required_argument, NULL, OPT_MAX_RETRY },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		{ "insecure", no_argument, NULL, OPT_INSECURE },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
	};
	enum { NFIXED = sizeof own_fixed / sizeof own_fixed[0] };
	struct option own[NFIXED + NFWD + 1], all[NFIXED + NFWD + 1 + CLI_FILTER_NOPTS + 1];
	char err[512];
	size_t i;
	int ch, r;

	memcpy(own, own_fixed, sizeof own_fixed);
	for (i = 0; i < NFWD; i++)
		own[NFIXED + i] = (struct option){ fwd_opts[i].name, required_argument, NULL,
		                                   OPT_FWD + (int)i };
	memset(&own[NFIXED + NFWD], 0, sizeof own[0]);
	if (!cli_filter_longopts(own, all, sizeof all / sizeof all[0]))
		return -1;
	cli_filter_init(&o->f, PROG, CLI_STATE_PENDING | CLI_STATE_DELIVERED);
	o->progress = 1;
	o->max_retry = DEF_MAX_RETRY_S;
	/* every option may become two cfg_load arguments, plus a few of ours */
	o->cargv = calloc((size_t)argc * 2 + 8, sizeof *o->cargv);
	if (!o->cargv) {
		fprintf(stderr, PROG ": out of memory\n");
		return -1;
	}
	cargs_add(o, "spoolcap replay", NULL);
	optind = 1;
	opterr = 1;
	while ((ch = getopt_long(argc, argv, "qvh", all, NULL)) != -1) {
		if (ch >= OPT_FWD && ch < OPT_FWD + (int)NFWD) {
			cargs_add(o, fwd_opts[ch - OPT_FWD].flag, optarg);
			continue;
		}
		switch (ch) {
		case OPT_DRAIN: o->drain = 1; break;
		case OPT_CONFIG: o->config = optarg; break;
		case OPT_RATE:
			if (parse_rate(optarg, &o->rate) < 0)
				return -1;
			break;
		case OPT_MAX_RETRY:
			if (cfg_parse_duration(optarg, &o->max_retry, err, sizeof err) < 0) {
				fprintf(stderr, PROG ": --max-retry-time: %s\n", err);
				return -1;
			}
			break;
		case OPT_JSON: o->json = 1; break;
		case OPT_NO_PROGRESS: o->progress = 0; break;
		case OPT_INSECURE: o->insecure = 1; break;
		case 'q': o->quiet = 1; break;
		case 'v': o->verbose = 1; break;
		case 'h': return 1;
		case CLI_FILTER_OPT_TO:
			/* --to is the URL here; a bare number is the --to SEQ filter */
			if (strstr(optarg, "://") || !strcasecmp(optarg, "none")) {
				o->url = optarg;
				break;
			}
			/* fall through */
		default:
			r = cli_filter_add_opt(&o->f, ch, optarg);
			if (r < 0)
				return -1;
			if (r == 0) {       /* getopt said what is wrong */
				fprintf(stderr, PROG ": see 'spoolcap replay --help'\n");
				return -1;
			}
			o->has_filter = 1;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, PROG ": expected exactly one spool directory%s\n",
		        optind < argc ? " (options start with --)" : "");
		return -1;
	}
	o->dir = argv[optind];
	if (cli_filter_check(&o->f) < 0)
		return -1;
	if (o->drain && o->has_filter) {
		fprintf(stderr, PROG ": --drain delivers everything pending and moves the "
		        "cursor, so it takes no filters (--from, --to SEQ, --since, --until, "
		        "--message, --match, --limit, --state); leave --drain out to send a "
		        "selection as a copy\n");
		return -1;
	}
	if (!o->drain && (o->f.states & CLI_STATE_DEAD)) {
		fprintf(stderr, PROG ": dead letters are not in the queue the sender reads; "
		        "put them back with 'spoolcap dlq %s requeue' first, or export them "
		        "with 'spoolcap dump --state dead'\n", o->dir);
		return -1;
	}
	if (o->url)
		cargs_add(o, "--forward", o->url);
	if (o->insecure)
		cargs_add(o, "--forward-insecure", "yes");
	if (o->config)
		cargs_add(o, "-c", o->config);
	/* cfg_check wants a spool for delivery; the file's [spool] dir is moot */
	cargs_add(o, "--spool", strcasecmp(o->dir, "none") ? o->dir : "./none");
	return 0;
}

/* ----------------------------------------------------------- the spool */

/* --drain: the agent lock, held until exit. fd >= 0, or -1 (printed). */
static int take_agent_lock(const char *dir)
{
	char path[4200], buf[32];
	struct flock fl;
	int fd;

	snprintf(path, sizeof path, "%s/agent.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, PROG ": cannot open %s: %s (run as the user spoolcapd runs "
		        "as)\n", path, strerror(errno));
		return -1;
	}
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_SETLK, &fl) < 0) {
		int e = errno;
		long pid = 0;

		if (e == EAGAIN || e == EACCES) {
			memset(&fl, 0, sizeof fl);
			fl.l_type = F_WRLCK;
			fl.l_whence = SEEK_SET;
			if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
				pid = fl.l_pid;
			if (pid > 0)
				fprintf(stderr, PROG ": spoolcapd is running on %s (pid %ld); stop "
				        "it or use copy mode (leave out --drain)\n", dir, pid);
			else
				fprintf(stderr, PROG ": spoolcapd is running on %s; stop it or use "
				        "copy mode (leave out --drain)\n", dir);
		} else {
			fprintf(stderr, PROG ": cannot lock %s: %s\n", path, strerror(e));
		}
		close(fd);
		return -1;
	}
	/* the daemon's convention: the holder's pid, for messages */
	snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, strlen(buf), 0) < 0) {
		/* the lock is what matters */
	}
	return fd;
}

/* Like cli_open, with the [spool] settings that matter when the cursor
 * moves and records are dead-lettered (retention, dead-letter cap): those
 * of --config, else the caps the agent recorded in the spool. */
static int open_for_drain(cli_spool *c, const char *dir, const cfg *conf, int from_file)
{
	spool_config sc;
	char err[512];
	int rc;

	memset(c, 0, sizeof *c);
	c->dir = dir;
	c->dc = dictcache_new(0);
	c->dctx = record_dctx_new();
	if (!c->dc || !c->dctx) {
		fprintf(stderr, PROG ": out of memory\n");
		cli_close(c);
		return -1;
	}
	memset(&sc, 0, sizeof sc);
	sc.max_size = conf->max_size;
	sc.dlq_max_bytes = conf->dlq_max_size;
	sc.full_policy = conf->full_policy;
	sc.retain_ns = (int64_t)(conf->retain * 1e9);
	sc.retain_bytes = conf->retain_size;
	dictcache_hooks(c->dc, &sc.hooks);
	rc = spool_open(&c->sp, dir, &sc, SPOOL_MODE_CLIENT, err, sizeof err);
	if (rc == 0 && !from_file && (rc = spool_use_agent_limits(c->sp)) < 0)
		snprintf(err, sizeof err, "%s", spool_errmsg());
	if (rc < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		cli_close(c);
		return -1;
	}
	if (dictcache_load(c->dc, c->sp, err, sizeof err) < 0)
		fprintf(stderr, PROG ": warning: %s\n", err);
	return 0;
}

/* --------------------------------------------------------------- select */

struct sel {
	const cli_filter *f;
	uint64_t lo, hi;            /* the seq range sent (copy mode) */
	uint64_t last_seq;          /* the last record the sender looked at */
	uint64_t last_selected;     /* the last record selected */
	uint64_t selected;          /* records handed to the sender */
	uint64_t skipped;           /* records the filters left out */
	int      limit_hit;
};

/* The sender asks about each record in seq order, but asks again about
 * the ones after the last record a batch took (the record that did not
 * fit, and the skipped ones behind it): the same answer then, counted
 * once. */
static int select_cb(void *arg, uint64_t seq, const record_view *v)
{
	struct sel *s = arg;
	const cli_filter *f = s->f;

	if (seq <= s->last_seq)
		return seq == s->last_selected;
	s->last_seq = seq;
	if (s->limit_hit)
		return 0;               /* read past --limit: neither sent nor "skipped" */
	if ((f->has_since && v->recv_ns < f->since_ns) ||
	    (f->has_until && v->recv_ns >= f->until_ns) || !cli_filter_match(f, v)) {
		s->skipped++;
		return 0;
	}
	if (f->limit && s->selected >= f->limit) {
		s->limit_hit = 1;
		return 0;
	}
	s->selected++;
	s->last_selected = seq;
	return 1;
}

static int first_cb(cli_spool *c, const cli_rec *r, void *user)
{
	(void)c;
	*(uint64_t *)user = r->seq;
	return 1;
}

/* The first seq in [lo, hi] captured at t or later, 0 if none: one short
 * walk, narrowed by the filter's binary search over header times. */
static int first_at(cli_spool *c, uint64_t lo, uint64_t hi, int64_t t, uint64_t *seq)
{
	cli_filter tf;
	int rc;

	cli_filter_init(&tf, PROG, CLI_STATE_PENDING | CLI_STATE_DELIVERED);
	tf.from = lo;
	tf.to = hi;
	tf.since_ns = t;
	tf.has_since = 1;
	*seq = 0;
	rc = cli_filter_iterate(c, &tf, first_cb, seq);
	return rc < 0 ? rc : 0;
}

/* Copy mode: the seq range to send, from the filters and the spool as it
 * is now (later appends are not included). 0, or -1 (printed). */
static int copy_range(cli_spool *c, const cli_filter *f, const spool_stats *st, struct sel *s)
{
	uint64_t lo = f->from > st->first_seq ? f->from : st->first_seq;
	uint64_t hi = f->to && f->to < st->last_seq ? f->to : st->last_seq, seq;

	if (!(f->states & CLI_STATE_DELIVERED) && lo <= st->cursor)
		lo = st->cursor + 1;
	if (!(f->states & CLI_STATE_PENDING) && hi > st->cursor)
		hi = st->cursor;
	if (st->last_seq == 0)
		lo = 1, hi = 0;
	/* Time bounds: exact for --since (records before the first one at
	 * since - slack are older than since); for --until it relies on time
	 * growing with seq, which requeued dead letters break. select_cb
	 * checks each record's time exactly either way. */
	if (lo <= hi && f->has_since) {
		if (first_at(c, lo, hi, f->since_ns - CLI_FILTER_TIME_SLACK_NS, &seq) < 0)
			goto fail;
		if (seq)
			lo = seq;
		else
			hi = lo - 1;
	}
	if (lo <= hi && f->has_until && !st->requeued &&
	    f->until_ns <= INT64_MAX - CLI_FILTER_TIME_SLACK_NS) {
		if (first_at(c, lo, hi, f->until_ns + CLI_FILTER_TIME_SLACK_NS, &seq) < 0)
			goto fail;
		if (seq)
			hi = seq - 1;
	}
	s->lo = lo;
	s->hi = hi;
	return 0;
fail:
	fprintf(stderr, PROG ": reading %s failed: %s\n", c->dir, spool_errmsg());
	return -1;
}

/* ------------------------------------------------------------ the run */

struct run {
	struct opts *o;
	replay      *r;
	struct sel   sel;
	uint64_t     total;         /* drain: pending at start */
	double       t0;
	uint64_t     win[RATE_WINDOW];
	double       wint[RATE_WINDOW];
	unsigned     nwin;
};

static uint64_t retries_of(const replay_stats *st)
{
	return st->retries[REPLAY_TRANSIENT] + st->retries[REPLAY_ENDPOINT] +
	       st->retries[REPLAY_PAYLOAD] + st->retries[REPLAY_LOCAL];
}

/* What counts as progress for --max-retry-time: any record handled. */
static uint64_t handled_of(const struct run *u, const replay_stats *st)
{
	return st->events_delivered + st->rejected + st->dead_letters + st->skipped +
	       (u->o->drain ? 0 : st->corrupt);
}

static void show_progress(struct run *u, const replay_stats *st, double now)
{
	char line[320], eta[64] = "", rs[32] = "", why[80] = "";
	double frac = -1, rate = 0;
	unsigned k = u->nwin % RATE_WINDOW, oldest;

	/* the shown rate: over the last RATE_WINDOW slices */
	u->win[k] = st->events_delivered;
	u->wint[k] = now;
	u->nwin++;
	oldest = u->nwin < RATE_WINDOW ? 0 : u->nwin % RATE_WINDOW;
	if (u->nwin > 1 && now > u->wint[oldest])
		rate = (double)(st->events_delivered - u->win[oldest]) / (now - u->wint[oldest]);
	else if (now > u->t0)
		rate = (double)st->events_delivered / (now - u->t0);
	if (!cli_progress_on())
		return;
	if (u->o->drain) {
		if (u->total)
			frac = (double)(st->events_delivered + st->dead_letters) / (double)u->total;
	} else if (u->sel.hi >= u->sel.lo && u->sel.last_seq >= u->sel.lo && u->sel.selected) {
		/* how far the sender has read, times the part of what it took
		 * that is settled (a batch stuck in retries is not progress) */
		frac = (double)(u->sel.last_seq - u->sel.lo + 1) /
		       (double)(u->sel.hi - u->sel.lo + 1) *
		       (double)(st->events_delivered + st->rejected) / (double)u->sel.selected;
	}
	if (frac > 0.001 && frac < 1 && rate > 0) {
		cli_replay_fmt_secs(rs, sizeof rs, (now - u->t0) * (1 - frac) / frac);
		snprintf(eta, sizeof eta, " %2.0f%% ETA %s", frac * 100, rs);
	}
	if (st->state == REPLAY_ST_BACKOFF || st->state == REPLAY_ST_PAUSED)
		snprintf(why, sizeof why, " [%s: %.50s]", replay_state_name(st->state),
		         st->reason);
	snprintf(line, sizeof line, "replay: %" PRIu64 " sent, %.0f/s, %" PRIu64 " %s, %"
	         PRIu64 " retries%s%s", st->events_delivered, rate,
	         u->o->drain ? st->dead_letters : st->rejected + st->corrupt,
	         u->o->drain ? "dead-lettered" : "errors", retries_of(st), eta, why);
	cli_progress_show(line);
}

static void summary(struct run *u, const replay_stats *st, double secs, const char *result)
{
	struct opts *o = u->o;
	char url[512];
	double rate = secs > 0 ? (double)st->events_delivered / secs : 0;

	cfg_url_redacted(o->url, url, sizeof url);
	if (o->json) {
		json_buf j;

		json_init(&j, 1 << 16);
		json_cstr_raw(&j, "{\"mode\":");
		json_cstr_raw(&j, o->drain ? "\"drain\"" : "\"copy\"");
		json_cstr_raw(&j, ",\"url\":");
		json_str(&j, url, strlen(url));
		json_cstr_raw(&j, ",\"result\":");
		json_str(&j, result, strlen(result));
		json_cstr_raw(&j, ",\"sent\":");
		json_u64(&j, st->events_delivered);
		json_cstr_raw(&j, ",\"skipped\":");
		json_u64(&j, st->skipped);
		json_cstr_raw(&j, ",\"rejected\":");
		json_u64(&j, o->drain ? st->dead_letters - st->corrupt : st->rejected);
		json_cstr_raw(&j, ",\"corrupt\":");
		json_u64(&j, st->corrupt);
		json_cstr_raw(&j, ",\"dead_lettered\":");
		json_u64(&j, o->drain ? st->dead_letters : 0);
		json_cstr_raw(&j, ",\"retries\":");
		json_u64(&j, retries_of(st));
		json_cstr_raw(&j, ",\"requests\":");
		json_u64(&j, st->requests);
		json_cstr_raw(&j, ",\"bytes_sent\":");
		json_u64(&j, st->bytes_sent);
		json_cstr_raw(&j, ",\"elapsed_s\":");
		{
			char n[64];

			snprintf(n, sizeof n, "%.3f,\"events_per_s\":%.1f}", secs, rate);
			json_cstr_raw(&j, n);
		}
		printf("%.*s\n", (int)j.len, j.data);
		json_free(&j);
	} else {
		printf("%s %s: %" PRIu64 " sent, %" PRIu64 " skipped, %" PRIu64 " %s, %" PRIu64
		       " corrupt, %" PRIu64 " retries in %.2f s (%.0f events/s)%s%s\n",
		       o->drain ? "drained to" : "copied to", url, st->events_delivered,
		       st->skipped, o->drain ? st->dead_letters - st->corrupt : st->rejected,
		       o->drain ? "dead-lettered" : "rejected", st->corrupt, retries_of(st), secs,
		       rate, strcmp(result, "done") ? "; " : "",
		       strcmp(result, "done") ? result : "");
	}
	fflush(stdout);
}

/* Drives the sender in short slices until done, interrupted or stuck.
 * Returns "done", "gave up", "interrupted" or "limit". */
static const char *drive(struct run *u, replay_stats *st)
{
	double last_progress = u->t0, now;
	uint64_t handled = 0;

	for (;;) {
		int rc = replay_run_until_drained(u->r, SLICE_S);

		*st = *replay_get_stats(u->r);
		now = cli_replay_now();
		if (rc == 0)
			return "done";
		if (cli_replay_interrupted)
			return "interrupted";
		/* --limit: all that was selected is handled, the rest would only
		 * be read and skipped */
		if (u->sel.limit_hit && st->events_delivered + st->rejected >= u->sel.selected)
			return "done";
		if (handled_of(u, st) != handled) {
			handled = handled_of(u, st);
			last_progress = now;
		} else if (u->o->max_retry > 0 && now - last_progress >= u->o->max_retry) {
			char d[32];

			cli_progress_clear();
			cli_replay_fmt_secs(d, sizeof d, now - last_progress);
			fprintf(stderr, PROG ": giving up: no progress for %s (%s%s%s)%s\n", d,
			        replay_state_name(st->state), st->reason[0] ? ": " : "", st->reason,
			        u->o->drain ? "; what was not delivered stays pending" : "");
			return "gave up";
		}
		if (u->o->progress)
			show_progress(u, st, now);
	}
}

int cli_replay(int argc, char **argv)
{
	struct opts o;
	struct run u;
	cfg conf;
	cli_spool c;
	spool_stats st0;
	replay_config rc;
	replay_stats st;
	char err[512];
	const char *result;
	int i, lockfd = -1, ret = CLI_EXIT_USAGE;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--requests"))
			return cli_rerequest(argc, argv);
		else if (!strcmp(argv[i], "--"))
			break;
	memset(&o, 0, sizeof o);
	memset(&u, 0, sizeof u);
	memset(&c, 0, sizeof c);
	cfg_init(&conf);
	i = parse_args(&o, argc, argv);
	if (i != 0) {
		if (i > 0) {
			usage(stdout);
			ret = CLI_EXIT_OK;
		}
		goto out_opts;
	}
	if (cfg_load(&conf, o.cargc, o.cargv, err, sizeof err) < 0) {
		print_cfg_error(err);
		goto out_opts;
	}
	if (!conf.forward_url) {
		fprintf(stderr, PROG ": say where to send the events: --to URL%s (or "
		        "--requests --target URL to re-issue the captured HTTP requests)\n",
		        o.config ? ", or url in [forward] of the --config file" : "");
		goto out_opts;
	}
	o.url = conf.forward_url;
	log_set_level(o.quiet ? LOGL_ERROR : o.verbose ? LOGL_INFO : LOGL_WARN);
	if (o.drain) {
		/* validate the directory first: the lock file is only created in
		 * a spool */
		if (open_for_drain(&c, o.dir, &conf, o.config != NULL) < 0)
			goto out_opts;
		if ((lockfd = take_agent_lock(o.dir)) < 0)
			goto out;
	} else if (cli_open(&c, o.dir, SPOOL_MODE_READONLY) < 0) {
		goto out_opts;
	}
	if (spool_stat(c.sp, &st0) < 0) {
		fprintf(stderr, PROG ": reading %s failed: %s\n", o.dir, spool_errmsg());
		ret = CLI_EXIT_DATA;
		goto out;
	}
	cfg_replay(&conf, &rc);
	rc.linger = -1;                 /* nothing to wait for: send at once */
	rc.max_rate = o.rate;
	u.o = &o;
	u.sel.f = &o.f;
	if (!o.drain) {
		if (copy_range(&c, &o.f, &st0, &u.sel) < 0) {
			ret = CLI_EXIT_DATA;
			goto out;
		}
		rc.copy = 1;
		rc.select = select_cb;
		rc.select_arg = &u.sel;
		if (u.sel.lo > u.sel.hi) {
			/* nothing in range: say so, send nothing */
			memset(&st, 0, sizeof st);
			summary(&u, &st, 0, "done");
			ret = CLI_EXIT_OK;
			goto out;
		}
		rc.from_seq = u.sel.lo;
		rc.to_seq = u.sel.hi;
	} else {
		u.total = st0.records;
	}
	if (o.insecure && !o.quiet && strncasecmp(o.url, "https://", 8) == 0)
		fprintf(stderr, PROG ": warning: --insecure: the processor's certificate is "
		        "not verified\n");
	u.r = replay_new(c.sp, c.dc, &rc, err, sizeof err);
	if (!u.r) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	cli_replay_signals();
	u.t0 = cli_replay_now();
	result = drive(&u, &st);
	if (!o.drain)
		st.skipped = u.sel.skipped;     /* see select_cb */
	cli_progress_clear();
	summary(&u, &st, cli_replay_now() - u.t0, result);
	if (o.drain)
		ret = !strcmp(result, "done") && st.dead_letters == 0 ? CLI_EXIT_OK : CLI_EXIT_DATA;
	else
		ret = !strcmp(result, "done") && st.rejected == 0 && st.corrupt == 0
		      ? CLI_EXIT_OK : CLI_EXIT_DATA;
	replay_free(u.r);
out:
	cli_close(&c);
	if (lockfd >= 0)
		close(lockfd);
out_opts:
	free(o.cargv);
	cfg_free(&conf);
	return ret;
}
