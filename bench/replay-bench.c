/* replay-bench.c -- drain rate of the delivery engine (src/replay.c).
 *
 * Fills a fresh spool with N capture events through the daemon's own write
 * path (bench/capmsg.c builds ~1 KB "cap-req" NOTIFYs like the contrib
 * recipe's; spool_sink encodes, zstd-compresses with a trained dictionary
 * and group-commits them, as spoolcapd does), then times
 * replay_run_until_drained() against an HTTP receiver (bench/sink-http)
 * and prints events/s, MB/s of NDJSON and of request bodies, requests, CPU
 * of the engine (and of the receiver with --sink-pid), and the receiver's
 * own count of events as a check. Prints figures; asserts nothing (the exit
 * status is 1 only when the drain failed or the counts disagree).
 *
 *   replay-bench --url URL [-n EVENTS] [--size BYTES] [--batch N]
 *                [--compress none|gzip|zstd] [--level L] [--inflight K]
 *                [--stats-url URL] [--sink-pid PID] [--dir DIR] [--keep]
 *                [--timeout S] [--json]
 *   replay-bench --fill-only [-n EVENTS] [--size BYTES] [--dir DIR]
 *   replay-bench --spool SPOOLDIR --url URL [options as above]
 *
 * --fill-only prints the directory of the spool it filled and keeps it;
 * --spool drains such a spool (copy it first to drain it again): handy for
 * profiling the drain alone (perf record replay-bench --spool ...).
 * --stats-url defaults to the URL's scheme://host:port + /stats (sink-http).
 * The spool goes to a fresh directory under --dir (default $TMPDIR or
 * /var/tmp) and is removed at exit unless --keep. The spool was just
 * written, so the drain reads it from the page cache. */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "capmsg.h"
#include "spoolcap/dictcache.h"
#include "spoolcap/log.h"
#include "spoolcap/replay.h"
#include "spoolcap/sink.h"
#include "spoolcap/spool.h"
#include "spoolcap/spool_sink.h"
#include "spoolcap/spop.h"

#define WINDOW 2048             /* NOTIFYs queued to the sink at most */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_self(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of another process in s, or -1. */
static double cpu_of(long pid)
{
	char path[64], buf[2048], *p;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	if (!(f = fopen(path, "r")))
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');          /* comm may hold spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	                 &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Busy CPU time of the whole machine in s (all CPUs, from /proc/stat), or -1. */
static double cpu_busy_all(void)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	int k;

	if (!f)
		return -1;
	k = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
	           &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (k != 8)
		return -1;
	/* user nice system [idle iowait] irq softirq steal */
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- filling the spool through spool_sink ---- */

struct fill {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	uint64_t done, spooled, dropped;
};

static void on_done(void *arg, uint64_t token, int result)
{
	struct fill *f = arg;

	(void)token;
	pthread_mutex_lock(&f->mu);
	f->done++;
	if (result == SINK_SPOOLED)
		f->spooled++;
	else
		f->dropped++;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

/* Waits until at most `left` submitted NOTIFYs are still pending. */
static void wait_pending(struct fill *f, uint64_t submitted, uint64_t left)
{
	pthread_mutex_lock(&f->mu);
	while (submitted - f->done > left)
		pthread_cond_wait(&f->cv, &f->mu);
	pthread_mutex_unlock(&f->mu);
}

struct fill_result {
	uint64_t spooled, dropped;
	double   secs;
	uint64_t raw_bytes, stored_bytes, with_dict;
};

static int fill_spool(spool *sp, capmsg_gen *g, uint64_t n, struct fill_result *fr,
                      char *err, size_t errlen)
{
	spool_sink_config kc;
	spool_sink_stats ks;
	struct fill f;
	sink *s;
	uint8_t *frame = malloc(g->max_frame);
	uint64_t i, submitted = 0;
	double t0 = now_s();

	memset(&kc, 0, sizeof kc);
	kc.workers = 1;
	kc.level = 3;                   /* spoolcapd's defaults */
	kc.dict_samples = 4000;
	kc.sync_mode = SPOOL_SYNC_PROCESS;
	s = frame ? spool_sink_new(sp, &kc, err, errlen) : NULL;
	if (!s) {
		if (!frame)
			snprintf(err, errlen, "out of memory");
		free(frame);
		return -1;
	}
	memset(&f, 0, sizeof f);
	pthread_mutex_init(&f.mu, NULL);
	pthread_cond_init(&f.cv, NULL);
	for (i = 0; i < n; i++) {
		sink_notify sn;
		spop_frame fm;
		size_t used, len = capmsg_emit(g, frame, i + 1, (int64_t)(time(NULL) * 1000));
		struct timespec ts;
		int rc;

		if (spop_frame_get(frame, len, (uint32_t)g->max_frame, &fm, &used) != 1) {
			snprintf(err, errlen, "capmsg built a frame the codec does not accept");
			break;
		}
		memset(&sn, 0, sizeof sn);
		sn.msgs = fm.payload;
		sn.msgs_len = fm.payload_len;
		sn.nmsgs = 1;
		sn.sid = fm.sid;
		sn.fid = fm.fid;
		sn.engine_id.ptr = (const uint8_t *)"replay-bench";
		sn.engine_id.len = 12;
		clock_gettime(CLOCK_REALTIME, &ts);
		sn.recv_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		sn.peer = "replay-bench";
		/* the sink drops (never blocks) when its queue is full: keep a window */
		wait_pending(&f, submitted, WINDOW);
		submitted++;
		rc = s->submit(s, &sn, on_done, &f, i);
		if (rc != SINK_PENDING)
			on_done(&f, i, rc);
		/* let the dictionary be trained and stored before the bulk, as a
		 * daemon that has been running a while would have it */
		if (i + 1 == kc.dict_samples) {
			double w0 = now_s();

			wait_pending(&f, submitted, 0);
			do {
				spool_sink_get_stats(s, &ks);
				if (ks.dict_id)
					break;
				usleep(20000);
			} while (now_s() - w0 < 30);
		}
	}
	wait_pending(&f, submitted, 0);
	spool_sink_get_stats(s, &ks);
	s->destroy(s);
	free(frame);
	fr->spooled = f.spooled;
	fr->dropped = f.dropped;
	fr->secs = now_s() - t0;
	fr->raw_bytes = ks.raw_bytes;
	fr->stored_bytes = ks.stored_bytes;
	fr->with_dict = ks.raw_bytes_dict;
	pthread_mutex_destroy(&f.mu);
	pthread_cond_destroy(&f.cv);
	return i == n ? 0 : -1;
}

/* ---- the receiver's counters ---- */

struct sink_stats {
	uint64_t posts, wire_bytes, raw_bytes, events, decode_errors;
	uint64_t encoded;               /* POSTs with gzip or zstd bodies */
	int ok;
};

struct membuf {
	char   b[1024];
	size_t n;
};

static size_t mem_write(char *p, size_t sz, size_t nm, void *u)
{
	struct membuf *m = u;
	size_t n = sz * nm;

	if (n > sizeof m->b - 1 - m->n)
		n = sizeof m->b - 1 - m->n;
	memcpy(m->b + m->n, p, n);
	m->n += n;
	m->b[m->n] = 0;
	return sz * nm;
}

static uint64_t jnum(const char *j, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof k, "\"%s\":", key);
	p = strstr(j, k);
	return p ? strtoull(p + strlen(k), NULL, 10) : 0;
}

static struct sink_stats get_sink_stats(const char *url)
{
	struct sink_stats s;
	struct membuf m;
	CURL *e;
	long code = 0;

	memset(&s, 0, sizeof s);
	memset(&m, 0, sizeof m);
	if (!url || !(e = curl_easy_init()))
		return s;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, mem_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &m);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(e) == CURLE_OK &&
	    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200 &&
	    strstr(m.b, "\"events\":")) {
		s.posts = jnum(m.b, "posts");
		s.wire_bytes = jnum(m.b, "wire_bytes");
		s.raw_bytes = jnum(m.b, "raw_bytes");
		s.events = jnum(m.b, "events");
		s.decode_errors = jnum(m.b, "decode_errors");
		s.encoded = jnum(m.b, "gzip") + jnum(m.b, "zstd");
		s.ok = 1;
	}
	curl_easy_cleanup(e);
	return s;
}

/* scheme://authority/stats from the delivery URL. */
static char *default_stats_url(const char *url)
{
	const char *a = strstr(url, "://"), *slash;
	char *s;
	size_t n;

	if (!a)
		return NULL;
	slash = strchr(a + 3, '/');
	n = slash ? (size_t)(slash - url) : strlen(url);
	if (!(s = malloc(n + 7)))
		return NULL;
	memcpy(s, url, n);
	memcpy(s + n, "/stats", 7);
	return s;
}

static int compress_parse(const char *s)
{
	if (strcmp(s, "none") == 0)
		return REPLAY_COMPRESS_NONE;
	if (strcmp(s, "gzip") == 0)
		return REPLAY_COMPRESS_GZIP;
	if (strcmp(s, "zstd") == 0)
		return REPLAY_COMPRESS_ZSTD;
	return -1;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: replay-bench --url URL [-n EVENTS] [--size BYTES] [--batch N]\n"
	        "                    [--compress none|gzip|zstd] [--level L] [--inflight K]\n"
	        "                    [--stats-url URL] [--sink-pid PID] [--dir DIR] [--keep]\n"
	        "                    [--timeout S] [--json]\n"
	        "       replay-bench --fill-only [-n EVENTS] [--size BYTES] [--dir DIR]\n"
	        "       replay-bench --spool SPOOLDIR --url URL [options]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "events", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "batch", required_argument, NULL, 'b' },
		{ "compress", required_argument, NULL, 'c' },
		{ "level", required_argument, NULL, 'L' },
		{ "inflight", required_argument, NULL, 'k' },
		{ "stats-url", required_argument, NULL, 'S' },
		{ "sink-pid", required_argument, NULL, 'P' },
		{ "dir", required_argument, NULL, 'd' },
		{ "keep", no_argument, NULL, 'K' },
		{ "spool", required_argument, NULL, 'p' },
		{ "fill-only", no_argument, NULL, 'F' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *url = NULL, *base = getenv("TMPDIR"), *existing = NULL;
	char *stats_url = NULL, dir[4096], err[512];
	unsigned long long n = 200000;
	unsigned long size = 1024, batch = 500, inflight = 1;
	int compress = REPLAY_COMPRESS_NONE, level = 0, keep = 0, json = 0, o, rc, bad = 0;
	int fill_only = 0;
	long sink_pid = 0;
	double timeout = 600;
	spool_config sc;
	spool *sp = NULL;
	dictcache *dc = NULL;
	replay_config rcfg;
	replay *r = NULL;
	capmsg_gen g;
	struct fill_result fr;
	struct sink_stats s0, s1;
	double t0, secs, c0, cpu, k0, kcpu, a0, other;
	const replay_stats *st;
	spool_stats ps;
	uint64_t raw, events, ev_rx;

	while ((o = getopt_long(argc, argv, "u:n:s:b:c:L:k:S:P:d:Kp:FT:jh", opts, NULL)) != -1) {
		switch (o) {
		case 'u': url = optarg; break;
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 's': size = strtoul(optarg, NULL, 10); break;
		case 'b': batch = strtoul(optarg, NULL, 10); break;
		case 'c':
			if ((compress = compress_parse(optarg)) < 0) {
				fprintf(stderr, "replay-bench: --compress takes none, gzip or zstd\n");
				return 2;
			}
			break;
		case 'L': level = atoi(optarg); break;
		case 'k': inflight = strtoul(optarg, NULL, 10); break;
		case 'S': stats_url = strdup(optarg); break;
		case 'P': sink_pid = atol(optarg); break;
		case 'd': base = optarg; break;
		case 'K': keep = 1; break;
		case 'p': existing = optarg; keep = 1; break;
		case 'F': fill_only = 1; keep = 1; break;
		case 'T': timeout = atof(optarg); break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if ((!url && !fill_only) || optind < argc || n < 1 || batch < 1 || inflight < 1 ||
	    inflight > REPLAY_MAX_INFLIGHT) {
		usage(stderr);
		return 2;
	}
	if (!stats_url && url)
		stats_url = default_stats_url(url);
	log_set_level(LOGL_WARN);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	memset(&fr, 0, sizeof fr);
	if (existing) {
		/* drain a spool filled before (--fill-only, then a copy of it) */
		snprintf(dir, sizeof dir, "%s", existing);
		memset(&sc, 0, sizeof sc);
		sc.max_size = UINT64_C(64) << 30;
		sc.sync_mode = SPOOL_SYNC_PROCESS;
		dictcache_header_hooks(&sc.hooks);
		if (spool_open(&sp, dir, &sc, SPOOL_MODE_AGENT, err, sizeof err) < 0 ||
		    spool_stat(sp, &ps) < 0) {
			fprintf(stderr, "replay-bench: %s\n", sp ? spool_errmsg() : err);
			bad = 1;
			goto out;
		}
		n = ps.records;
		goto drain;
	}
	snprintf(dir, sizeof dir, "%s/replay-bench.XXXXXX", base && *base ? base : "/var/tmp");
	if (!mkdtemp(dir)) {
		fprintf(stderr, "replay-bench: cannot create a directory from %s: %s\n", dir,
		        strerror(errno));
		return 1;
	}
	memset(&sc, 0, sizeof sc);
	sc.max_size = (uint64_t)n * size * 2 + (64u << 20);
	sc.sync_mode = SPOOL_SYNC_PROCESS;
	dictcache_header_hooks(&sc.hooks);
	if (spool_open(&sp, dir, &sc, SPOOL_MODE_AGENT, err, sizeof err) < 0) {
		fprintf(stderr, "replay-bench: %s\n", err);
		bad = 1;
		goto out;
	}
	if (capmsg_init(&g, size, 1, 0x5eed5eedULL, err, sizeof err) < 0) {
		fprintf(stderr, "replay-bench: %s\n", err);
		bad = 1;
		goto out;
	}
	rc = fill_spool(sp, &g, n, &fr, err, sizeof err);
	capmsg_free(&g);
	if (rc < 0 || fr.spooled != n) {
		fprintf(stderr, "replay-bench: filling the spool: %s (%" PRIu64 " of %llu spooled, "
		        "%" PRIu64 " dropped)\n", rc < 0 ? err : "records dropped", fr.spooled, n,
		        fr.dropped);
		bad = 1;
		goto out;
	}
	spool_sync(sp);
	if (fill_only) {
		printf("%s\n", dir);
		fprintf(stderr, "replay-bench: %llu events filled in %.2f s (%.0f B stored/event)\n",
		        n, fr.secs, (double)fr.stored_bytes / (double)n);
		goto out;
	}

drain:
	dc = dictcache_new(0);
	if (!dc || dictcache_load(dc, sp, err, sizeof err) < 0) {
		fprintf(stderr, "replay-bench: dictionaries: %s\n", dc ? err : "out of memory");
		bad = 1;
		goto out;
	}
	memset(&rcfg, 0, sizeof rcfg);
	rcfg.url = url;
	rcfg.batch_max_events = batch;
	rcfg.linger = -1;
	rcfg.max_inflight = (unsigned)inflight;
	rcfg.compress = compress;
	rcfg.compress_level = level;
	r = replay_new(sp, dc, &rcfg, err, sizeof err);
	if (!r) {
		fprintf(stderr, "replay-bench: %s\n", err);
		bad = 1;
		goto out;
	}

	s0 = get_sink_stats(stats_url);
	k0 = cpu_of(sink_pid);
	a0 = cpu_busy_all();
	c0 = cpu_self();
	t0 = now_s();
	rc = replay_run_until_drained(r, timeout);
	secs = now_s() - t0;
	cpu = cpu_self() - c0;
	kcpu = k0 >= 0 ? cpu_of(sink_pid) - k0 : -1;
	/* what everything else on the machine used meanwhile (noise) */
	other = a0 >= 0 ? cpu_busy_all() - a0 - cpu - (kcpu > 0 ? kcpu : 0) : -1;
	if (other < 0 && a0 >= 0)
		other = 0;              /* clock-tick rounding */
	s1 = get_sink_stats(stats_url);
	st = replay_get_stats(r);
	memset(&ps, 0, sizeof ps);
	spool_stat(sp, &ps);

	events = st->events_delivered;
	ev_rx = s1.ok && s0.ok ? s1.events - s0.events : 0;
	/* raw_bytes is filled by engines with request compression; before,
	 * the body is the NDJSON */
	raw = st->raw_bytes ? st->raw_bytes : st->bytes_sent;
	if (rc != 0 || events != n || ps.records != 0 || (s1.ok && ev_rx != n))
		bad = 1;
	if (json) {
		printf("{\"events\":%" PRIu64 ",\"secs\":%.4f,\"events_s\":%.0f,\"ndjson_mb_s\":%.2f,"
		       "\"wire_mb_s\":%.2f,\"requests\":%" PRIu64 ",\"ndjson_bytes\":%" PRIu64
		       ",\"wire_bytes\":%" PRIu64 ",\"event_bytes\":%.0f,\"retries\":%" PRIu64
		       ",\"engine_cpu_pct\":%.0f,\"sink_cpu_pct\":%.0f,\"other_cpu_pct\":%.0f"
		       ",\"sink_ok\":%d"
		       ",\"sink_events\":%" PRIu64 ",\"sink_posts\":%" PRIu64
		       ",\"sink_raw_bytes\":%" PRIu64 ",\"sink_wire_bytes\":%" PRIu64
		       ",\"sink_decode_errors\":%" PRIu64 ",\"sink_encoded_posts\":%" PRIu64
		       ",\"pending\":%" PRIu64
		       ",\"fill_s\":%.2f,\"stored_bytes\":%.0f,\"drained\":%d,\"check\":\"%s\"}\n",
		       events, secs, events / secs, raw / secs / 1e6, st->bytes_sent / secs / 1e6,
		       st->requests, raw, st->bytes_sent, events ? (double)raw / events : 0.0,
		       st->retries[0] + st->retries[1] + st->retries[2] + st->retries[3] +
		       st->retries[4], 100 * cpu / secs, kcpu >= 0 ? 100 * kcpu / secs : -1.0,
		       other >= 0 ? 100 * other / secs : -1.0, s1.ok && s0.ok, ev_rx,
		       s1.posts - s0.posts, s1.raw_bytes - s0.raw_bytes,
		       s1.wire_bytes - s0.wire_bytes, s1.decode_errors - s0.decode_errors,
		       s1.encoded - s0.encoded, ps.records, fr.secs,
		       (double)fr.stored_bytes / (double)n, rc == 0, bad ? "FAIL" : "ok");
	} else {
		if (existing)
			printf("spool        %llu events in %s\n", n, dir);
		else
			printf("spool        %llu events of ~%lu B frames filled in %.2f s "
			       "(%.0f B stored/event, %.0f%% of raw bytes with a dictionary)\n",
			       n, size, fr.secs, (double)fr.stored_bytes / (double)n,
			       fr.raw_bytes ? 100.0 * fr.with_dict / fr.raw_bytes : 0.0);
		printf("replay       batch %lu, %s, inflight %lu -> %s\n", batch,
		       compress == REPLAY_COMPRESS_GZIP ? "gzip" :
		       compress == REPLAY_COMPRESS_ZSTD ? "zstd" : "none", inflight, url);
		printf("drained      %" PRIu64 " events in %.3f s = %.0f events/s%s\n", events, secs,
		       events / secs, rc == 0 ? "" : " (TIMED OUT)");
		printf("volume       NDJSON %.1f MB/s (%.0f B/event), request bodies %.1f MB/s "
		       "(%.2fx)\n", raw / secs / 1e6, events ? (double)raw / events : 0.0,
		       st->bytes_sent / secs / 1e6,
		       st->bytes_sent ? (double)raw / st->bytes_sent : 0.0);
		printf("requests     %" PRIu64 " (%.0f/s), retries %" PRIu64 "\n", st->requests,
		       st->requests / secs, st->retries[0] + st->retries[1] + st->retries[2] +
		       st->retries[3] + st->retries[4]);
		printf("cpu          engine %.0f%%", 100 * cpu / secs);
		if (kcpu >= 0)
			printf(", receiver %.0f%%", 100 * kcpu / secs);
		if (other >= 0)
			printf(", other processes %.0f%%", 100 * other / secs);
		printf(" of one CPU\n");
		if (!s1.ok || !s0.ok)
			printf("receiver     no counters from %s\n", stats_url ? stats_url : "-");
		else
			printf("receiver     %" PRIu64 " events, %" PRIu64 " POSTs, %" PRIu64
			       " B decoded, %" PRIu64 " B on the wire, %" PRIu64 " compressed POSTs, %"
			       PRIu64 " decode errors\n",
			       ev_rx, s1.posts - s0.posts, s1.raw_bytes - s0.raw_bytes,
			       s1.wire_bytes - s0.wire_bytes, s1.encoded - s0.encoded,
			       s1.decode_errors - s0.decode_errors);
		if (s1.ok && s0.ok && compress != REPLAY_COMPRESS_NONE && s1.encoded == s0.encoded)
			printf("note         --compress %s asked, but no POST was compressed: this "
			       "engine does not compress yet\n",
			       compress == REPLAY_COMPRESS_GZIP ? "gzip" : "zstd");
		printf("check        %s (pending after the drain: %" PRIu64 ")\n",
		       bad ? "FAIL" : "ok", ps.records);
	}
out:
	replay_free(r);
	dictcache_free(dc);
	if (sp)
		spool_close(sp);
	if (!keep)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	else if (!existing && !fill_only)
		fprintf(stderr, "replay-bench: spool kept in %s\n", dir);
	free(stats_url);
	curl_global_cleanup();
	return bad;
}
