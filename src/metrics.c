/* metrics.c -- the Prometheus /metrics, /healthz and /readyz endpoint
 * (metrics.h): a libmicrohttpd daemon with its internal polling thread, and
 * a text renderer that reads every source at scrape time.
 *
 * Naming follows the Prometheus conventions: spoolcap_ prefix, base units
 * (seconds, bytes), _total for counters, one HELP and TYPE line per family.
 * Counters that the spool persists (spoolcap_spool_*_total) count since the
 * spool was created; the others since the process started. */
#include <config.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "spoolcap/log.h"
#include "spoolcap/metrics.h"
#include "spoolcap/replay_policy.h"
#include "spoolcap/spool_sink.h"
#include "spoolcap/spop.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics {
	char     spec[160];
	char     name[160];                /* bound address */
	int      family;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct MHD_Daemon *d;

	pthread_mutex_t mu;                /* sources, replay base, spool cache */
	agent   *a;
	spool   *sp;
	sink    *ssink;
	replay  *r;
	replay_stats base;                 /* counters of replaced replays */
	int      had_replay;
	spool_stats sst;                   /* cached spool_stat */
	int      sst_ok;
	double   sst_at;                   /* monotonic s, 0 = never */
	uint64_t sst_errors;
	uint64_t reloads_ok, reloads_failed;
	double   last_reload_ok;           /* unix time */

	_Atomic int    ready, stopping;
	_Atomic double heartbeat;          /* monotonic s of the last tick */
	double   start_time;               /* unix time */
	uint64_t scrapes;
};

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double real_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- set-up ---- */

metrics *metrics_new(const char *listen, char *err, size_t errlen)
{
	char host[128];
	unsigned port;
	int family;
	metrics *m;

	if (strncmp(listen, "unix:", 5) == 0) {
		snprintf(err, errlen, "metrics listen '%s': a unix socket is not supported "
		         "(Prometheus scrapes TCP): give HOST:PORT", listen);
		return NULL;
	}
	if (agent_parse_addr(listen, &family, host, sizeof(host), &port, err, errlen) < 0)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(m->spec, sizeof(m->spec), "%s", listen);
	m->family = family;
	if (family == AF_INET6) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&m->addr;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) {
			snprintf(err, errlen, "metrics listen '%s': bad IPv6 address", listen);
			free(m);
			return NULL;
		}
		m->addrlen = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&m->addr;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		if (!*host || strcmp(host, "*") == 0)
			a4->sin_addr.s_addr = htonl(INADDR_ANY);
		else if (strcmp(host, "localhost") == 0)
			a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) {
			snprintf(err, errlen, "metrics listen '%s': bad IPv4 address", listen);
			free(m);
			return NULL;
		}
		m->addrlen = sizeof(*a4);
	}
	pthread_mutex_init(&m->mu, NULL);
	m->start_time = real_s();
	atomic_store(&m->heartbeat, mono_s());
	snprintf(m->name, sizeof(m->name), "%s", listen);
	return m;
}

/* ---- text building ---- */

struct buf {
	char  *p;
	size_t len, cap;
	int    oom;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap * 2 + (size_t)n;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
}

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
	bprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void u64(struct buf *b, const char *name, const char *labels, uint64_t v)
{
	if (labels)
		bprintf(b, "%s{%s} %" PRIu64 "\n", name, labels, v);
	else
		bprintf(b, "%s %" PRIu64 "\n", name, v);
}

static void dbl(struct buf *b, const char *name, const char *labels, double v)
{
	if (labels)
		bprintf(b, "%s{%s} %.17g\n", name, labels, v);
	else
		bprintf(b, "%s %.17g\n", name, v);
}

/* One-sample family. */
static void one_u64(struct buf *b, const char *name, const char *type, const char *help,
                    uint64_t v)
{
	family(b, name, type, help);
	u64(b, name, NULL, v);
}

static void one_dbl(struct buf *b, const char *name, const char *type, const char *help,
                    double v)
{
	family(b, name, type, help);
	dbl(b, name, NULL, v);
}

/* A label value: backslash, double quote and newline escaped (the format
 * rules); other bytes go as they are (UTF-8 passes through). */
static void label_value(char *out, size_t outlen, const char *v)
{
	size_t o = 0;

	for (; *v && o + 3 < outlen; v++) {
		if (*v == '\\' || *v == '"') {
			out[o++] = '\\';
			out[o++] = *v;
		} else if (*v == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *v;
		}
	}
	out[o] = '\0';
}

/* Seconds from microseconds without exponent notation: 0.00005, 2.5, 1. */
static void us_to_s(char *out, size_t outlen, uint32_t us)
{
	size_t n;

	snprintf(out, outlen, "%u.%06u", us / 1000000, us % 1000000);
	n = strlen(out);
	while (n > 1 && out[n - 1] == '0')
		out[--n] = '\0';
	if (n > 1 && out[n - 1] == '.')
		out[--n] = '\0';
}

/* SPOP status codes as label values (codes 0..14; index 15 = other). */
static const char *spop_code_label(int i)
{
	static const char *const names[16] = {
		"normal", "io_error", "timeout", "too_big", "invalid", "no_version",
		"no_frame_size", "no_capabilities", "bad_version", "bad_frame_size",
		"fragmentation_not_supported", "interlaced_frames", "frame_id_not_found",
		"resource_allocation", "other_14", "other"
	};
	return i >= 0 && i < 16 ? names[i] : "other";
}

/* ---- sections ---- */

static void render_process(metrics *m, struct buf *b)
{
	struct rusage ru;
	long pages = 0, rss = 0;
	FILE *f;
	DIR *d;
	uint64_t fds = 0;

	family(b, "spoolcap_build_info", "gauge", "spoolcapd version (always 1).");
	bprintf(b, "spoolcap_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	one_dbl(b, "process_start_time_seconds", "gauge",
	        "Start time of the process since the Unix epoch in seconds.", m->start_time);
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		one_dbl(b, "process_cpu_seconds_total", "counter",
		        "Total user and system CPU time spent in seconds.",
		        (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		        (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) == 2)
			one_u64(b, "process_resident_memory_bytes", "gauge",
			        "Resident memory size in bytes.",
			        (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE));
		fclose(f);
	}
	d = opendir("/proc/self/fd");
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			fds += e->d_name[0] != '.';
		closedir(d);
		one_u64(b, "process_open_fds", "gauge", "Number of open file descriptors.",
		        fds ? fds - 1 : 0);     /* not the one opendir holds */
	}
}

static void render_agent(agent *a, struct buf *b)
{
	agent_stats st;
	uint64_t cum = 0;
	char lab[64], le[24];

	agent_get_stats(a, &st);
	one_u64(b, "spoolcap_spop_connections", "gauge",
	        "SPOP connections open now (health checks included).", st.conns_active);
	one_u64(b, "spoolcap_spop_connections_accepted_total", "counter",
	        "SPOP connections accepted.", st.conns_accepted);
	one_u64(b, "spoolcap_spop_connections_refused_total", "counter",
	        "SPOP connections refused because max-connections was reached.",
	        st.conns_rejected);
	one_u64(b, "spoolcap_spop_healthchecks_total", "counter",
	        "SPOP health checks answered.", st.healthchecks);
	one_u64(b, "spoolcap_spop_frames_received_total", "counter",
	        "SPOP frames received.", st.frames_in);
	one_u64(b, "spoolcap_spop_notifies_received_total", "counter",
	        "NOTIFY frames received.", st.notifies);
	one_u64(b, "spoolcap_spop_messages_received_total", "counter",
	        "SPOE messages received (a NOTIFY holds one or more).", st.messages);
	one_u64(b, "spoolcap_spop_acks_sent_total", "counter",
	        "ACK frames queued to HAProxy.", st.acks);
	one_u64(b, "spoolcap_spop_received_bytes_total", "counter",
	        "Bytes read from SPOP connections.", st.bytes_in);
	one_u64(b, "spoolcap_spop_sent_bytes_total", "counter",
	        "Bytes written to SPOP connections.", st.bytes_out);
	one_u64(b, "spoolcap_spop_haproxy_disconnects_total", "counter",
	        "HAPROXY-DISCONNECT frames received.", st.haproxy_disconnects);
	family(b, "spoolcap_spop_disconnects_sent_total", "counter",
	       "AGENT-DISCONNECT frames sent, by SPOP status (decode errors and timeouts "
	       "have non-normal codes).");
	for (int i = 0; i < 16; i++) {
		/* Always the common ones, so rate() has a series from the start. */
		if (!st.disconnects_sent[i] && i > SPOP_ST_RES_ALLOC)
			continue;
		snprintf(lab, sizeof(lab), "code=\"%s\"", spop_code_label(i));
		u64(b, "spoolcap_spop_disconnects_sent_total", lab, st.disconnects_sent[i]);
	}
	family(b, "spoolcap_spop_ack_latency_seconds", "histogram",
	       "Time from a NOTIFY's arrival to its ACK being queued (the spool commit "
	       "in the default durability).");
	for (int i = 0; i < AGENT_ACK_BUCKETS; i++) {
		cum += st.ack_latency[i];
		us_to_s(le, sizeof(le), agent_ack_bounds_us[i]);
		snprintf(lab, sizeof(lab), "le=\"%s\"", le);
		u64(b, "spoolcap_spop_ack_latency_seconds_bucket", lab, cum);
	}
	cum += st.ack_latency[AGENT_ACK_BUCKETS];
	u64(b, "spoolcap_spop_ack_latency_seconds_bucket", "le=\"+Inf\"", cum);
	dbl(b, "spoolcap_spop_ack_latency_seconds_sum", NULL, st.ack_latency_sum_ns / 1e9);
	u64(b, "spoolcap_spop_ack_latency_seconds_count", NULL, cum);
}

static void render_sink(sink *s, struct buf *b)
{
	spool_sink_stats st;

	spool_sink_get_stats(s, &st);
	one_u64(b, "spoolcap_capture_records_spooled_total", "counter",
	        "Records committed to the spool by this process.", st.records_spooled);
	family(b, "spoolcap_capture_dropped_total", "counter",
	       "Messages ACKed as not spooled, by reason: queue_full (the writer fell "
	       "queue-max-size behind), encode (could not be encoded), spool (the spool's "
	       "full policy or a full disk; see spoolcap_spool_dropped_total).");
	u64(b, "spoolcap_capture_dropped_total", "reason=\"queue_full\"", st.dropped_queue_full);
	u64(b, "spoolcap_capture_dropped_total", "reason=\"encode\"", st.dropped_encode);
	u64(b, "spoolcap_capture_dropped_total", "reason=\"spool\"", st.dropped_spool);
	one_u64(b, "spoolcap_spool_commits_total", "counter",
	        "Write transactions committed (group commits).", st.commits);
	one_u64(b, "spoolcap_spool_commit_records_total", "counter",
	        "Records written by those commits.", st.commit_records);
	family(b, "spoolcap_spool_commit_duration_seconds", "summary",
	       "Time to append and commit one group of records.");
	dbl(b, "spoolcap_spool_commit_duration_seconds_sum", NULL, st.commit_ns_total / 1e9);
	u64(b, "spoolcap_spool_commit_duration_seconds_count", NULL, st.commits);
	one_dbl(b, "spoolcap_spool_commit_duration_max_seconds", "gauge",
	        "Longest commit since the start.", st.commit_ns_max / 1e9);
	one_u64(b, "spoolcap_spool_syncs_total", "counter",
	        "Background flushes of the data file.", st.syncs);
	one_dbl(b, "spoolcap_spool_sync_duration_max_seconds", "gauge",
	        "Longest background flush since the start.", st.sync_ns_max / 1e9);
	one_u64(b, "spoolcap_capture_queue_bytes", "gauge",
	        "Encoded bytes waiting for the spool writer.", st.queue_bytes);
	family(b, "spoolcap_capture_raw_bytes_total", "counter",
	       "Message bytes before compression, by whether a dictionary was used.");
	u64(b, "spoolcap_capture_raw_bytes_total", "dictionary=\"no\"",
	    st.raw_bytes - st.raw_bytes_dict);
	u64(b, "spoolcap_capture_raw_bytes_total", "dictionary=\"yes\"", st.raw_bytes_dict);
	family(b, "spoolcap_capture_stored_bytes_total", "counter",
	       "Record bytes after compression, by whether a dictionary was used.");
	u64(b, "spoolcap_capture_stored_bytes_total", "dictionary=\"no\"",
	    st.stored_bytes - st.stored_bytes_dict);
	u64(b, "spoolcap_capture_stored_bytes_total", "dictionary=\"yes\"", st.stored_bytes_dict);
	one_dbl(b, "spoolcap_capture_compression_ratio", "gauge",
	        "Raw over stored bytes since the start (0 before the first record).",
	        st.stored_bytes ? (double)st.raw_bytes / (double)st.stored_bytes : 0.0);
	one_u64(b, "spoolcap_capture_dictionary_id", "gauge",
	        "Id of the zstd dictionary in use (0 = none yet).", st.dict_id);
	one_u64(b, "spoolcap_redact_messages_changed_total", "counter",
	        "Messages stored differently from how they were received (redaction).",
	        st.redact.messages_changed);
	family(b, "spoolcap_redact_headers_total", "counter",
	       "Header values changed before storing, by action.");
	u64(b, "spoolcap_redact_headers_total", "action=\"redact\"", st.redact.headers_redacted);
	u64(b, "spoolcap_redact_headers_total", "action=\"drop\"", st.redact.headers_dropped);
	u64(b, "spoolcap_redact_headers_total", "action=\"hash\"", st.redact.headers_hashed);
	family(b, "spoolcap_redact_bodies_total", "counter",
	       "Bodies changed before storing, by action.");
	u64(b, "spoolcap_redact_bodies_total", "action=\"cap\"", st.redact.bodies_capped);
	u64(b, "spoolcap_redact_bodies_total", "action=\"drop\"", st.redact.bodies_dropped);
	one_u64(b, "spoolcap_redact_failed_blocks_total", "counter",
	        "Header blocks that could not be parsed and were replaced by a marker.",
	        st.redact.blocks_failed);
}

/* Under m->mu. */
static void render_spool(metrics *m, struct buf *b)
{
	static const char *const space_names[] = { "ok", "map_limit", "filesystem_full" };
	spool_stats *st = &m->sst;
	double now = mono_s();
	char lab[64];

	if (!m->sst_at || now - m->sst_at >= METRICS_SPOOL_STAT_TTL) {
		m->sst_ok = spool_stat(m->sp, st) == 0;
		m->sst_at = now;
		if (!m->sst_ok) {
			m->sst_errors++;
			log_warn("metrics: spool_stat failed: %s", spool_errmsg());
		}
	}
	one_u64(b, "spoolcap_spool_stat_errors_total", "counter",
	        "Scrapes where the spool could not be read (its gauges are left out).",
	        m->sst_errors);
	if (!m->sst_ok)
		return;
	one_u64(b, "spoolcap_spool_pending_records", "gauge",
	        "Records waiting for delivery.", st->records);
	one_u64(b, "spoolcap_spool_pending_bytes", "gauge",
	        "Record bytes waiting for delivery.", st->bytes);
	one_u64(b, "spoolcap_spool_retained_records", "gauge",
	        "Delivered records kept by retention.", st->retained_records);
	one_u64(b, "spoolcap_spool_retained_bytes", "gauge",
	        "Delivered record bytes kept by retention.", st->retained_bytes);
	one_dbl(b, "spoolcap_spool_oldest_pending_age_seconds", "gauge",
	        "Age of the oldest record waiting for delivery (0 when none).",
	        st->first_pending_seq && st->first_pending_time_ns > 0 ?
	        (real_s() - st->first_pending_time_ns / 1e9 > 0 ?
	         real_s() - st->first_pending_time_ns / 1e9 : 0) : 0);
	one_u64(b, "spoolcap_spool_cursor_lag", "gauge",
	        "Sequence numbers assigned but not yet passed by the delivery cursor "
	        "(pending records plus dead-lettered and evicted gaps).",
	        st->next_seq > st->cursor + 1 ? st->next_seq - 1 - st->cursor : 0);
	one_u64(b, "spoolcap_spool_cursor", "gauge",
	        "Highest delivered sequence number.", st->cursor);
	one_u64(b, "spoolcap_spool_last_seq", "gauge",
	        "Newest sequence number assigned.", st->next_seq ? st->next_seq - 1 : 0);
	one_u64(b, "spoolcap_spool_accepted_total", "counter",
	        "Records accepted into the spool since it was created.", st->accepted);
	one_u64(b, "spoolcap_spool_delivered_total", "counter",
	        "Records delivered since the spool was created.", st->delivered);
	one_u64(b, "spoolcap_spool_pruned_total", "counter",
	        "Retained records removed by retention since the spool was created.", st->pruned);
	one_u64(b, "spoolcap_spool_dead_lettered_total", "counter",
	        "Records moved to the dead-letter table since the spool was created.",
	        st->dead_lettered);
	one_u64(b, "spoolcap_spool_requeued_total", "counter",
	        "Dead letters put back in the queue since the spool was created.", st->requeued);
	family(b, "spoolcap_spool_dropped_total", "counter",
	       "Records dropped by the spool since it was created, by reason.");
	for (int i = 0; i < SPOOL_DROP_NREASONS; i++) {
		snprintf(lab, sizeof(lab), "reason=\"%s\"", spool_drop_reason_name(i));
		u64(b, "spoolcap_spool_dropped_total", lab, st->dropped[i]);
	}
	one_u64(b, "spoolcap_spool_dead_letter_records", "gauge",
	        "Records in the dead-letter table.", st->dlq_records);
	one_u64(b, "spoolcap_spool_dead_letter_bytes", "gauge",
	        "Record bytes in the dead-letter table.", st->dlq_bytes);
	family(b, "spoolcap_spool_dead_letters", "gauge",
	       "Records in the dead-letter table, by reason.");
	for (int i = 0; i < SPOOL_DLQ_NREASONS; i++) {
		const char *n = spool_dlq_reason_name(i);
		/* spare slots ("reason6") only once something uses them */
		if (strncmp(n, "reason", 6) == 0 && !st->dlq_by_reason[i])
			continue;
		snprintf(lab, sizeof(lab), "reason=\"%s\"", n);
		u64(b, "spoolcap_spool_dead_letters", lab, st->dlq_by_reason[i]);
	}
	one_u64(b, "spoolcap_spool_max_bytes", "gauge",
	        "Configured cap on record bytes held (max-size).", st->max_size);
	one_u64(b, "spoolcap_spool_file_bytes", "gauge", "Size of data.mdb.", st->file_bytes);
	one_u64(b, "spoolcap_spool_used_bytes", "gauge",
	        "Bytes of data.mdb up to its last used page.", st->used_bytes);
	one_u64(b, "spoolcap_spool_map_bytes", "gauge", "LMDB map size now.", st->map_size);
	one_u64(b, "spoolcap_spool_free_pages", "gauge",
	        "LMDB pages free for reuse.", st->free_pages);
	one_u64(b, "spoolcap_spool_dictionaries", "gauge",
	        "zstd dictionaries stored.", st->dicts);
	one_u64(b, "spoolcap_spool_readers", "gauge",
	        "LMDB reader slots in use.", st->readers_used);
	family(b, "spoolcap_spool_space_state", "gauge",
	       "1 for the spool's space state: ok, map_limit (the map is at its limit) or "
	       "filesystem_full (appends only reuse freed pages).");
	for (int i = 0; i < 3; i++) {
		snprintf(lab, sizeof(lab), "state=\"%s\"", space_names[i]);
		u64(b, "spoolcap_spool_space_state", lab, st->space_state == i);
	}
	one_u64(b, "spoolcap_spool_disk_reserve_held", "gauge",
	        "1 while the disk reserve file is allocated.", (uint64_t)st->reserve_held);
}

static void add_replay(replay_stats *to, const replay_stats *s)
{
	to->requests += s->requests;
	to->batches_ok += s->batches_ok;
	to->events_delivered += s->events_delivered;
	to->bytes_sent += s->bytes_sent;
	for (int i = 0; i < 5; i++)
		to->retries[i] += s->retries[i];
	to->bisect_sends += s->bisect_sends;
	to->dead_letters += s->dead_letters;
	to->corrupt += s->corrupt;
	to->persistent_5xx += s->persistent_5xx;
	to->probes += s->probes;
	to->raw_bytes += s->raw_bytes;
	to->rejected += s->rejected;
	to->skipped += s->skipped;
}

/* Under m->mu. */
static void render_replay(metrics *m, struct buf *b)
{
	static const int states[] = { REPLAY_ST_IDLE, REPLAY_ST_DELIVERING, REPLAY_ST_BACKOFF,
	                              REPLAY_ST_PAUSED };
	replay_stats cur, st = m->base;
	char lab[256], reason[200];

	memset(&cur, 0, sizeof(cur));
	if (m->r)
		replay_snapshot(m->r, &cur);
	add_replay(&st, &cur);
	one_u64(b, "spoolcap_delivery_enabled", "gauge",
	        "1 when events are forwarded (a forward URL is set).", m->r != NULL);
	one_u64(b, "spoolcap_delivery_requests_total", "counter",
	        "POSTs completed, any outcome (probes and bisection sends included).",
	        st.requests);
	family(b, "spoolcap_delivery_batches_total", "counter",
	       "Batches by outcome: delivered (2xx) or failed (retried after backoff, or "
	       "split to find a rejected event).");
	u64(b, "spoolcap_delivery_batches_total", "outcome=\"delivered\"", st.batches_ok);
	u64(b, "spoolcap_delivery_batches_total", "outcome=\"failed\"",
	    st.requests > st.batches_ok + st.probes ? st.requests - st.batches_ok - st.probes : 0);
	family(b, "spoolcap_delivery_events_total", "counter",
	       "Events by outcome: delivered, dead_lettered, skipped (not selected).");
	u64(b, "spoolcap_delivery_events_total", "outcome=\"delivered\"", st.events_delivered);
	u64(b, "spoolcap_delivery_events_total", "outcome=\"dead_lettered\"", st.dead_letters);
	u64(b, "spoolcap_delivery_events_total", "outcome=\"skipped\"", st.skipped);
	family(b, "spoolcap_delivery_retries_total", "counter",
	       "Failed POSTs by error class (transient, endpoint, payload, local).");
	for (int i = REPLAY_TRANSIENT; i <= REPLAY_LOCAL; i++) {
		snprintf(lab, sizeof(lab), "class=\"%s\"", replay_class_name((replay_class)i));
		u64(b, "spoolcap_delivery_retries_total", lab, st.retries[i]);
	}
	one_u64(b, "spoolcap_delivery_bisect_requests_total", "counter",
	        "Sub-range POSTs sent to isolate a rejected event.", st.bisect_sends);
	one_u64(b, "spoolcap_delivery_probes_total", "counter",
	        "Empty POSTs sent to tell a poison event from an outage.", st.probes);
	one_u64(b, "spoolcap_delivery_sent_bytes_total", "counter",
	        "Request body bytes sent (after request compression).", st.bytes_sent);
	one_u64(b, "spoolcap_delivery_ndjson_bytes_total", "counter",
	        "NDJSON bytes rendered (before request compression).", st.raw_bytes);
	family(b, "spoolcap_delivery_dead_letters_total", "counter",
	       "Events dead-lettered by the delivery engine, by reason (rejected includes "
	       "too_large).");
	u64(b, "spoolcap_delivery_dead_letters_total", "reason=\"rejected\"",
	    st.dead_letters > st.corrupt + st.persistent_5xx ?
	    st.dead_letters - st.corrupt - st.persistent_5xx : 0);
	u64(b, "spoolcap_delivery_dead_letters_total", "reason=\"corrupt\"", st.corrupt);
	u64(b, "spoolcap_delivery_dead_letters_total", "reason=\"persistent_5xx\"",
	    st.persistent_5xx);
	one_dbl(b, "spoolcap_delivery_retry_delay_seconds", "gauge",
	        "The last backoff delay chosen.", cur.last_delay_ms / 1000.0);
	one_u64(b, "spoolcap_delivery_last_http_status", "gauge",
	        "HTTP status of the last answer (0 = none yet).", (uint64_t)cur.last_status);
	family(b, "spoolcap_delivery_state", "gauge",
	       "1 for the delivery state: idle, delivering, backing-off or paused.");
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		snprintf(lab, sizeof(lab), "state=\"%s\"", replay_state_name(states[i]));
		u64(b, "spoolcap_delivery_state", lab, m->r && cur.state == states[i]);
	}
	family(b, "spoolcap_delivery_state_info", "gauge",
	       "The delivery state with the reason for backing off or pausing (always 1).");
	label_value(reason, sizeof(reason), cur.reason);
	snprintf(lab, sizeof(lab), "state=\"%s\",reason=\"%s\"",
	         m->r ? replay_state_name(cur.state) : "disabled", reason);
	u64(b, "spoolcap_delivery_state_info", lab, 1);
}

char *metrics_render(metrics *m, size_t *len)
{
	struct buf b = { NULL, 0, 0, 0 };

	b.cap = 32768;
	b.p = malloc(b.cap);
	if (!b.p)
		return NULL;
	b.p[0] = '\0';
	render_process(m, &b);
	pthread_mutex_lock(&m->mu);
	m->scrapes++;
	if (m->a)
		render_agent(m->a, &b);
	if (m->ssink)
		render_sink(m->ssink, &b);
	if (m->sp)
		render_spool(m, &b);
	render_replay(m, &b);
	one_u64(&b, "spoolcap_config_reloads_total", "counter",
	        "SIGHUP reloads of the delivery settings that were applied.", m->reloads_ok);
	one_u64(&b, "spoolcap_config_reload_failures_total", "counter",
	        "SIGHUP reloads refused (bad configuration; the old settings stay).",
	        m->reloads_failed);
	one_dbl(&b, "spoolcap_config_last_reload_success_timestamp_seconds", "gauge",
	        "When the last reload was applied (the start time if none).",
	        m->last_reload_ok ? m->last_reload_ok : m->start_time);
	pthread_mutex_unlock(&m->mu);
	one_u64(&b, "spoolcap_ready", "gauge", "1 when /readyz answers 200.",
	        atomic_load(&m->ready) && !atomic_load(&m->stopping));
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}

/* ---- sources and state ---- */

void metrics_set_agent(metrics *m, agent *a)
{
	pthread_mutex_lock(&m->mu);
	m->a = a;
	pthread_mutex_unlock(&m->mu);
}

void metrics_set_spool(metrics *m, spool *sp, sink *spool_sink)
{
	pthread_mutex_lock(&m->mu);
	m->sp = sp;
	m->ssink = spool_sink;
	m->sst_at = 0;
	m->sst_ok = 0;
	pthread_mutex_unlock(&m->mu);
}

void metrics_set_replay(metrics *m, replay *r)
{
	replay_stats old;

	pthread_mutex_lock(&m->mu);
	if (m->r && m->r != r) {
		replay_snapshot(m->r, &old);
		add_replay(&m->base, &old);
	}
	m->r = r;
	pthread_mutex_unlock(&m->mu);
}

void metrics_heartbeat(metrics *m)
{
	atomic_store(&m->heartbeat, mono_s());
}

void metrics_set_ready(metrics *m, int ready)
{
	atomic_store(&m->ready, ready);
}

void metrics_set_stopping(metrics *m)
{
	atomic_store(&m->stopping, 1);
}

void metrics_reload_done(metrics *m, int ok)
{
	pthread_mutex_lock(&m->mu);
	if (ok) {
		m->reloads_ok++;
		m->last_reload_ok = real_s();
	} else {
		m->reloads_failed++;
	}
	pthread_mutex_unlock(&m->mu);
}

/* ---- HTTP ---- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, char *body,
                             size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *resp;
	enum MHD_Result r;

	resp = MHD_create_response_from_buffer(len, body, mode);
	if (!resp) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        status == MHD_HTTP_OK && mode == MHD_RESPMEM_MUST_FREE ?
	                        CONTENT_TYPE : "text/plain; charset=utf-8");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned status, const char *msg)
{
	return reply(conn, status, (char *)msg, strlen(msg), MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **state)
{
	static _Thread_local int named;
	metrics *m = cls;

	(void)version;
	(void)upload;
	if (!named) {
		log_set_thread_name("metrics");
		named = 1;
	}
	/* MHD calls once with the headers, then per body chunk: answer on
	 * the first call (GET and HEAD have no body; other methods are
	 * refused before any body is read). */
	if (*state) {
		*upload_size = 0;
		return MHD_YES;
	}
	*state = (void *)1;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	if (strcmp(url, "/metrics") == 0) {
		size_t len;
		char *body = metrics_render(m, &len);
		if (!body)
			return text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
		return reply(conn, MHD_HTTP_OK, body, len, MHD_RESPMEM_MUST_FREE);
	}
	if (strcmp(url, "/healthz") == 0) {
		double quiet = mono_s() - atomic_load(&m->heartbeat);
		char msg[96];
		if (atomic_load(&m->stopping))
			return text(conn, MHD_HTTP_OK, "ok (stopping)\n");
		if (quiet > METRICS_STALL_S) {
			snprintf(msg, sizeof(msg), "main loop stalled: no tick for %.0f s\n", quiet);
			return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, msg, strlen(msg),
			             MHD_RESPMEM_MUST_COPY);
		}
		return text(conn, MHD_HTTP_OK, "ok\n");
	}
	if (strcmp(url, "/readyz") == 0) {
		if (atomic_load(&m->stopping))
			return text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "stopping\n");
		if (!atomic_load(&m->ready))
			return text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "starting\n");
		return text(conn, MHD_HTTP_OK, "ready\n");
	}
	if (strcmp(url, "/") == 0)
		return text(conn, MHD_HTTP_OK, "spoolcapd: /metrics /healthz /readyz\n");
	return text(conn, MHD_HTTP_NOT_FOUND, "not found; try /metrics, /healthz or /readyz\n");
}

__attribute__((format(printf, 2, 0)))
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_warn("metrics: %s", msg);
}

int metrics_start(metrics *m, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	sigset_t all, old;
	char host[INET6_ADDRSTRLEN];
	int fd, one = 1, e;

	fd = socket(m->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "metrics: socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (m->family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&m->addr, m->addrlen) < 0 || listen(fd, 64) < 0) {
		e = errno;
		close(fd);
		snprintf(err, errlen, "metrics: cannot listen on %s: %s%s", m->spec, strerror(e),
		         e == EADDRINUSE ? " (another process uses the port: pick another "
		         "[metrics] listen, or none)" : "");
		return -1;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host));
			snprintf(m->name, sizeof(m->name), "[%s]:%u", host, ntohs(a6->sin6_port));
		} else {
			struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a4->sin_addr, host, sizeof(host));
			snprintf(m->name, sizeof(m->name), "%s:%u", host, ntohs(a4->sin_port));
		}
	}
	/* The daemon's thread inherits our signal mask: block everything so
	 * SIGTERM/SIGHUP always reach the main loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC |
	                        MHD_USE_ERROR_LOG,
	                        0, NULL, NULL, on_request, m,
	                        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, (void *)m,
	                        MHD_OPTION_LISTEN_SOCKET, fd,
	                        MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
	                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
	                        MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!m->d) {
		close(fd);
		snprintf(err, errlen, "metrics: cannot start the HTTP server on %s "
		         "(libmicrohttpd refused; see the lines above)", m->name);
		return -1;
	}
	return 0;
}

const char *metrics_listen_name(const metrics *m)
{
	return m->name;
}

void metrics_free(metrics *m)
{
	if (!m)
		return;
	if (m->d)
		MHD_stop_daemon(m->d);  /* joins its thread, closes the socket */
	pthread_mutex_destroy(&m->mu);
	free(m);
}
