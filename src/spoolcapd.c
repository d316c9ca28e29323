/* spoolcapd.c -- the daemon's main: configuration, the sink, the agent, the
 * replay (delivery) thread when --forward is set, the metrics endpoint, and
 * a main loop that waits for SIGINT/SIGTERM (or a fatal spool error) to stop
 * gracefully and for SIGHUP to reopen the logs and reload delivery. */
#include <config.h>

#include <ev.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include "spoolcap/agent.h"
#include "spoolcap/config.h"
#include "spoolcap/dictcache.h"
#include "spoolcap/log.h"
#include "spoolcap/metrics.h"
#include "spoolcap/notify.h"
#include "spoolcap/replay.h"
#include "spoolcap/sink.h"
#include "spoolcap/spool.h"
#include "spoolcap/spool_sink.h"

#define STOP_GRACE 2.0          /* s to finish pending ACKs on shutdown */

static int stop_signal;
static ev_async fatal_watcher;       /* a spool thread asks the main loop to stop */
static char fatal_msg[512];

/* What SIGHUP needs: the command line to re-read the configuration with
 * (flags keep overriding the file), the start-up settings (only [forward]
 * is applied again) and the delivery in force. */
struct daemon_state {
	int        argc;
	char     **argv;
	const cfg *c;               /* start-up configuration */
	cfg       *fwd;             /* backs the running replay (== c or malloc'd) */
	spool     *sp;
	dictcache *dc;
	replay    *r;
	metrics   *m;
};
static struct daemon_state ds;

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	stop_signal = w->signum;
	ev_break(loop, EVBREAK_ALL);
}

static void on_fatal_async(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* Called from the writer or sync thread (spool_sink.h). */
static void on_spool_fatal(void *arg, const char *msg)
{
	struct ev_loop *loop = arg;

	snprintf(fatal_msg, sizeof(fatal_msg), "%s", msg);
	ev_async_send(loop, &fatal_watcher);
}

static unsigned io_threads(const cfg *c)
{
	long n;

	if (c->threads)
		return c->threads;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > AGENT_THREADS_MAX ? AGENT_THREADS_MAX : (unsigned)n;
}

/* Opens the spool and the sink that writes to it; NULL + err on failure. */
static sink *spool_sink_open(const cfg *c, struct ev_loop *loop, spool **spp,
                             char *err, size_t errlen)
{
	static const int sync_of[] = {
		[CFG_DUR_PROCESS] = SPOOL_SYNC_PROCESS, [CFG_DUR_RELAXED] = SPOOL_SYNC_RELAXED,
		[CFG_DUR_DURABLE] = SPOOL_SYNC_DURABLE, [CFG_DUR_RECEIPT] = SPOOL_SYNC_PROCESS,
	};
	const char *dir = c->spool_dir ? c->spool_dir : CFG_DEFAULT_SPOOL_DIR;
	spool_config sc;
	spool_sink_config kc;
	redact_config rc;
	char e[512];
	sink *s;

	memset(&sc, 0, sizeof(sc));
	sc.max_size = c->max_size;
	sc.dlq_max_bytes = c->dlq_max_size;
	sc.full_policy = c->full_policy;
	sc.sync_mode = sync_of[c->durability];
	sc.retain_ns = (int64_t)(c->retain * 1e9);
	sc.retain_bytes = c->retain_size;
	dictcache_header_hooks(&sc.hooks);
	if (spool_open(spp, dir, &sc, SPOOL_MODE_AGENT, e, sizeof(e)) < 0) {
		snprintf(err, errlen, "%s", e);
		return NULL;
	}
	memset(&kc, 0, sizeof(kc));
	kc.workers = io_threads(c);
	kc.level = c->compression_level;
	kc.ack_mode = c->durability == CFG_DUR_RECEIPT ? SPOOL_ACK_RECEIPT : SPOOL_ACK_COMMIT;
	kc.commit_max_records = c->commit_max_records;
	kc.commit_max_bytes = c->commit_max_bytes;
	kc.commit_max_delay = c->commit_max_delay;
	kc.sync_interval = c->sync_interval;
	kc.queue_max_bytes = c->queue_max_size;
	kc.dict = c->dictionary ? 0 : -1;
	kc.dict_samples = c->dictionary_samples;
	kc.dict_size = c->dictionary_size;
	kc.sync_mode = sc.sync_mode;
	kc.fatal = on_spool_fatal;
	kc.fatal_arg = loop;
	cfg_redact(c, &rc);         /* copied by spool_sink_new */
	kc.redact = &rc;
	s = spool_sink_new(*spp, &kc, err, errlen);
	if (!s) {
		spool_close(*spp);
		*spp = NULL;
	}
	return s;
}

/* Each connection costs one fd; raise the soft limit toward the hard one
 * rather than fail at accept time. */
static void check_nofile(unsigned max_connections, size_t nlisten)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)max_connections + nlisten + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need)
		log_warn("open-files limit is %llu, below the %llu that --max-connections %u "
		         "needs; raise it (ulimit -n, LimitNOFILE=) or lower --max-connections",
		         (unsigned long long)rl.rlim_cur, (unsigned long long)need,
		         max_connections);
}

static void log_stats(agent *a, sink *s)
{
	agent_stats st;
	char disc[256] = "", sum[1024] = "";
	size_t o = 0;

	agent_get_stats(a, &st);
	for (int i = 0; i < 16 && o < sizeof(disc); i++) {
		if (st.disconnects_sent[i]) {
			int r = snprintf(disc + o, sizeof(disc) - o, "%s%s%d:%" PRIu64,
			                 o ? " " : "", i == 15 ? ">" : "", i == 15 ? 14 : i,
			                 st.disconnects_sent[i]);
			o += r > 0 ? (size_t)r : 0;
		}
	}
	log_info("agent: %" PRIu64 " connections (%" PRIu64 " refused, %" PRIu64
	         " health checks), %" PRIu64 " frames, %" PRIu64 " notifies, %" PRIu64
	         " messages, %" PRIu64 " acks, %" PRIu64 " B in, %" PRIu64 " B out, "
	         "HAProxy disconnects %" PRIu64 ", our disconnects by status {%s}",
	         st.conns_accepted, st.conns_rejected, st.healthchecks, st.frames_in,
	         st.notifies, st.messages, st.acks, st.bytes_in, st.bytes_out,
	         st.haproxy_disconnects, disc);
	if (s->summary) {
		s->summary(s, sum, sizeof(sum));
		log_info("%s", sum);
	}
}

/* The decode dictionaries and the replay engine for --forward, created
 * before the agent listens so that a bad setting fails start-up at once.
 * Returns the replay, or NULL with err. *dcp is created when NULL (and then
 * freed again on failure); a reload passes the running engine's cache. */
static replay *forward_new(const cfg *c, spool *sp, dictcache **dcp, char *err, size_t errlen)
{
	replay_config rc;
	char e[400];
	replay *r;
	int own = !*dcp;            /* a reload reuses the running engine's cache */

	if (own)
		*dcp = dictcache_new(0);
	if (!*dcp) {
		snprintf(err, errlen, "delivery: out of memory");
		return NULL;
	}
	/* Dictionaries trained later are loaded by the replay when a record
	 * needs one (replay.h). */
	if (dictcache_load(*dcp, sp, e, sizeof(e)) < 0) {
		snprintf(err, errlen, "delivery: cannot load the spool's zstd dictionaries: %s "
		         "(check the spool with spoolcap stat)", e);
		goto fail;
	}
	cfg_replay(c, &rc);
	r = replay_new(sp, *dcp, &rc, err, errlen);     /* "replay: ..." */
	if (!r)
		goto fail;
	return r;
fail:
	if (own) {
		dictcache_free(*dcp);
		*dcp = NULL;
	}
	return NULL;
}

/* One line that says where events go and how, never a header value or a
 * URL password. */
static void log_forward(const cfg *c)
{
	char url[512];
	int tls = strncasecmp(c->forward_url, "https://", 8) == 0;

	cfg_url_redacted(c->forward_url, url, sizeof(url));
	log_info("forwarding to %s (batch %u events/%llu bytes, max-inflight %u, "
	         "compression %s, %s, %zu extra header%s)", url, c->fwd_batch_events,
	         (unsigned long long)c->fwd_batch_bytes, c->fwd_max_inflight,
	         cfg_compression_name(c->fwd_compression),
	         !tls ? "plain HTTP" : c->fwd_insecure ? "TLS verify off" : "TLS verify on",
	         c->fwd_nheaders, c->fwd_nheaders == 1 ? "" : "s");
	if (tls && c->fwd_insecure)
		log_warn("forward-insecure is on: the event processor's certificate and name "
		         "are NOT verified, so anyone on the path can read or change the events "
		         "and the headers; use forward-ca-file instead");
	if (!tls && (c->fwd_ca_file || c->fwd_ca_dir || c->fwd_client_cert || c->fwd_insecure))
		log_warn("the forward URL is http://: the TLS settings (ca-file, ca-dir, "
		         "client-cert, insecure) are not used");
}

static void log_replay_stats(replay *r)
{
	replay_stats st;

	replay_snapshot(r, &st);
	log_info("delivery: %" PRIu64 " events delivered in %" PRIu64 " batches (%" PRIu64
	         " requests, %" PRIu64 " B sent), retries: %" PRIu64 " transient, %" PRIu64
	         " endpoint, %" PRIu64 " payload (%" PRIu64 " bisection sends), %" PRIu64
	         " local; %" PRIu64 " dead letters (%" PRIu64 " persistent 5xx, %" PRIu64
	         " corrupt); state %s%s%s", st.events_delivered, st.batches_ok, st.requests,
	         st.bytes_sent, st.retries[REPLAY_TRANSIENT], st.retries[REPLAY_ENDPOINT],
	         st.retries[REPLAY_PAYLOAD], st.bisect_sends, st.retries[REPLAY_LOCAL],
	         st.dead_letters, st.persistent_5xx, st.corrupt, replay_state_name(st.state),
	         st.reason[0] ? ": " : "", st.reason);
}

/* Each [section] of the effective configuration as cfg_print writes it,
 * to tell which sections a reload would change. */
static char *print_cfg(const cfg *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	cfg_print(c, f);
	fclose(f);
	return buf;
}

static const char *section_of(const char *text, const char *name, size_t *len)
{
	char hdr[32];
	const char *p, *e;

	snprintf(hdr, sizeof(hdr), "\n[%s]\n", name);
	p = strstr(text, hdr);
	if (!p) {
		snprintf(hdr, sizeof(hdr), "[%s]\n", name);
		p = strncmp(text, hdr, strlen(hdr)) == 0 ? text : strstr(text, hdr);
		if (!p)
			return NULL;
	}
	p++;
	e = strstr(p, "\n[");
	*len = e ? (size_t)(e - p) : strlen(p);
	return p;
}

/* Names the sections other than [forward] whose settings changed. */
static void log_unapplied(const cfg *old, const cfg *nc)
{
	static const char *const sections[] = { "agent", "spool", "capture", "metrics", "log" };
	char *a = print_cfg(old), *b = print_cfg(nc), list[128] = "";
	size_t o = 0;

	for (size_t i = 0; a && b && i < sizeof(sections) / sizeof(sections[0]); i++) {
		size_t la = 0, lb = 0;
		const char *sa = section_of(a, sections[i], &la), *sb = section_of(b, sections[i], &lb);
		if ((!sa) != (!sb) || la != lb || (sa && memcmp(sa, sb, la) != 0)) {
			int n = snprintf(list + o, sizeof(list) - o, "%s[%s]", o ? ", " : "",
			                 sections[i]);
			o += n > 0 && (size_t)n < sizeof(list) - o ? (size_t)n : 0;
		}
	}
	if (o)
		log_warn("SIGHUP: changes in %s are not applied: restart spoolcapd to apply them "
		         "(only [forward] is reloaded)", list);
	free(a);
	free(b);
}

static void free_cfg(cfg *c)
{
	if (c && c != ds.c) {
		cfg_free(c);
		free(c);
	}
}

/* SIGHUP: reopen the logs; re-read the configuration (file + the original
 * flags) and restart delivery with the new [forward] settings. The agent
 * is not touched: no HAProxy connection is dropped, capture goes on. A bad
 * configuration changes nothing. */
static void reload(void)
{
	cfg *nc = malloc(sizeof(*nc));
	replay *nr = NULL, *old = ds.r;
	char err[512];

	log_reopen();
	if (!nc) {
		log_error("SIGHUP: out of memory; configuration not reloaded");
		goto failed;
	}
	cfg_init(nc);
	if (cfg_load(nc, ds.argc, ds.argv, err, sizeof(err)) < 0) {
		log_error("SIGHUP: configuration not reloaded: %s; delivery goes on with the "
		          "previous settings", err);
		cfg_free(nc);
		free(nc);
		goto failed;
	}
	log_unapplied(ds.c, nc);
	if (cfg_forwarding(nc)) {
		nr = forward_new(nc, ds.sp, &ds.dc, err, sizeof(err));
		if (!nr) {
			log_error("SIGHUP: new delivery settings refused: %s; delivery goes on with "
			          "the previous settings", err);
			free_cfg(nc);
			goto failed;
		}
	}
	/* Stop the old engine first: two engines must never deliver at once
	 * (both would move the cursor). What it had in flight and could not
	 * finish stays pending and goes out again through the new one. */
	if (old) {
		log_info("SIGHUP: stopping delivery (up to %.0f s for POSTs in flight)",
		         ds.fwd->fwd_stop_timeout);
		replay_stop(old, ds.fwd->fwd_stop_timeout);
	}
	if (ds.m)
		metrics_set_replay(ds.m, nr);
	replay_free(old);
	free_cfg(ds.fwd);
	ds.fwd = nc;
	ds.r = nr;
	if (nr) {
		log_forward(nc);
		if (replay_start(nr, err, sizeof(err)) < 0) {
			log_error("SIGHUP: %s; delivery is stopped (events stay in the spool): "
			          "restart spoolcapd", err);
			if (ds.m)
				metrics_set_replay(ds.m, NULL);
			replay_free(nr);
			ds.r = NULL;
			goto failed;
		}
	} else {
		log_info("SIGHUP: no forward URL any more: delivery stopped, events stay in "
		         "the spool");
	}
	log_info("SIGHUP: delivery settings reloaded");
	if (ds.m)
		metrics_reload_done(ds.m, 1);
	return;
failed:
	if (ds.m)
		metrics_reload_done(ds.m, 0);
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	log_info("SIGHUP received: reopening logs, reloading delivery settings");
	notify_reloading("reloading the delivery settings");
	reload();
	notify_ready("capturing; delivery %s", ds.r ? "on" : "off");
	if (ds.m)
		metrics_heartbeat(ds.m);
}

static void on_heartbeat(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	metrics_heartbeat(w->data);
}

int main(int argc, char **argv)
{
	struct ev_loop *loop;
	ev_signal sigint, sigterm, sighup;
	ev_timer heartbeat;
	metrics *m = NULL;
	struct sigaction sa;
	agent_config ac;
	unsigned threads;
	char err[512];
	cfg c;
	sink *s;
	agent *a;
	spool *sp = NULL;
	dictcache *dc = NULL;
	replay *r = NULL;
	int rc = 2;

	cfg_init(&c);
	if (cfg_load(&c, argc, argv, err, sizeof(err)) < 0) {
		fprintf(stderr, "spoolcapd: %s\nTry 'spoolcapd --help' for more information.\n", err);
		cfg_free(&c);
		return 1;
	}
	if (c.show_help) {
		cfg_usage(stdout);
		cfg_free(&c);
		return 0;
	}
	if (c.show_version) {
		printf("spoolcapd %s\n", PACKAGE_VERSION);
		cfg_free(&c);
		return 0;
	}
	if (c.check) {
		cfg_print(&c, stdout);
		cfg_free(&c);
		return 0;
	}
	log_set_level(c.log_level);
	log_set_ratelimit(c.log_rate_limit, LOG_RATE_WINDOW);
	if (log_open(c.log_target, c.log_facility, "spoolcapd", err, sizeof(err)) < 0)
		fprintf(stderr, "spoolcapd: warning: %s\n", err);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	check_nofile(c.max_connections, c.nlisten);

	loop = EV_DEFAULT;
	ev_async_init(&fatal_watcher, on_fatal_async);
	ev_async_start(loop, &fatal_watcher);
	ev_signal_init(&sigint, on_signal, SIGINT);
	ev_signal_init(&sigterm, on_signal, SIGTERM);
	ev_signal_init(&sighup, on_hup, SIGHUP);
	if (cfg_spooling(&c)) {
		s = spool_sink_open(&c, loop, &sp, err, sizeof(err));
		if (!s) {
			log_error("%s", err);
			cfg_free(&c);
			return 2;
		}
	} else {
		s = sink_count_new();
		if (!s) {
			log_error("out of memory");
			cfg_free(&c);
			return 2;
		}
	}
	cfg_agent(&c, &ac);
	a = agent_new(&ac, s, err, sizeof(err));
	if (!a) {
		log_error("%s", err);
		rc = 1;
		goto out_sink;
	}
	if (cfg_forwarding(&c)) {
		r = forward_new(&c, sp, &dc, err, sizeof(err));
		if (!r) {
			log_error("%s", err);
			goto out_agent;
		}
	}
	if (c.metrics_listen) {
		m = metrics_new(c.metrics_listen, err, sizeof(err));
		if (!m || metrics_start(m, err, sizeof(err)) < 0) {
			log_error("%s", err);
			metrics_free(m);
			m = NULL;
			goto out_agent;
		}
		metrics_set_agent(m, a);
		if (sp)
			metrics_set_spool(m, sp, s);
		metrics_set_replay(m, r);
		log_info("metrics on http://%s/metrics (and /healthz, /readyz)",
		         metrics_listen_name(m));
		ev_timer_init(&heartbeat, on_heartbeat, METRICS_HEARTBEAT_S, METRICS_HEARTBEAT_S);
		heartbeat.data = m;
		ev_timer_start(loop, &heartbeat);
	}
	ds = (struct daemon_state){ argc, argv, &c, &c, sp, dc, r, m };
	/* Signal watchers first: the I/O threads block every signal. */
	ev_signal_start(loop, &sigint);
	ev_signal_start(loop, &sigterm);
	ev_signal_start(loop, &sighup);

	if (agent_start(a, err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto out_agent;
	}
	for (size_t i = 0; i < agent_listener_count(a); i++)
		log_info("listening on %s", agent_listener_name(a, i));
	threads = io_threads(&c);
	if (sp)
		log_info("spoolcapd %s ready: I/O threads %u, max-frame-size %u, max-connections %u, "
		         "spool %s (uuid %s, durability %s, max-size %llu, %s when full)",
		         PACKAGE_VERSION, threads, c.max_frame_size, c.max_connections,
		         spool_dir(sp), spool_uuid(sp), cfg_durability_name(c.durability),
		         (unsigned long long)c.max_size, spool_full_policy_name(c.full_policy));
	else
		log_info("spoolcapd %s ready: I/O threads %u, max-frame-size %u, max-connections %u, "
		         "spool none (messages are counted, not stored)", PACKAGE_VERSION, threads,
		         c.max_frame_size, c.max_connections);
	if (r) {
		log_forward(&c);
		if (replay_start(r, err, sizeof(err)) < 0) {
			log_error("%s", err);
			agent_stop(a, 0);
			goto out_agent;
		}
	} else {
		log_info("no --forward: events stay in the spool (read them with spoolcap dump)");
	}

	if (m)
		metrics_set_ready(m, 1);
	/* systemd (Type=notify): listening and the spool is open; units ordered
	 * after spoolcapd (HAProxy) start now. */
	notify_ready("capturing on %s%s; spool %s%s", agent_listener_name(a, 0),
	             agent_listener_count(a) > 1 ? " and more" : "",
	             sp ? spool_dir(sp) : "none (counting only)", r ? "; forwarding" : "");
	ev_run(loop, 0);
	if (m)
		metrics_set_stopping(m);
	/* SIGHUP may have replaced the delivery engine. */
	r = ds.r;
	dc = ds.dc;

	if (fatal_msg[0])
		log_error("stopping after a fatal spool error");
	else
		log_info("%s received, stopping (up to %.0f s for pending ACKs%s)",
		         stop_signal == SIGINT ? "SIGINT" : "SIGTERM", STOP_GRACE,
		         r ? ", then for POSTs in flight" : "");
	/* The stop takes up to STOP_GRACE, then the POSTs' stop-timeout, then
	 * the last commit: tell systemd when that may exceed TimeoutStopSec. */
	notify_stopping("stopping: %s", fatal_msg[0] ? fatal_msg : "sending the last ACKs");
	notify_extend_timeout(STOP_GRACE + (r ? ds.fwd->fwd_stop_timeout : 0) + 30);
	agent_stop(a, STOP_GRACE);
	/* After the agent: its last ACKs never wait for the downstream. What
	 * is not delivered stays in the spool for the next start. */
	if (r) {
		notify_status("stopping: up to %.0f s for POSTs in flight", ds.fwd->fwd_stop_timeout);
		replay_stop(r, ds.fwd->fwd_stop_timeout);
	}
	log_stats(a, s);
	if (r)
		log_replay_stats(r);
	rc = fatal_msg[0] ? 3 : 0;
out_agent:
	ev_signal_stop(loop, &sigint);
	ev_signal_stop(loop, &sigterm);
	ev_signal_stop(loop, &sighup);
	/* The endpoint reads the agent, the sink, the spool and the replay:
	 * it goes first. */
	if (m) {
		ev_timer_stop(loop, &heartbeat);
		metrics_free(m);
	}
	/* The sink completes whatever is queued before it goes (agent.h). */
	s->destroy(s);
	agent_free(a);
	replay_free(r);
	dictcache_free(dc);         /* after the replay that decodes with it */
	free_cfg(ds.fwd);
	if (sp)
		spool_close(sp);
	goto out_loop;
out_sink:
	s->destroy(s);
	if (sp)
		spool_close(sp);
out_loop:
	ev_async_stop(loop, &fatal_watcher);
	ev_loop_destroy(loop);
	cfg_free(&c);
	if (rc == 0 || rc == 3)
		log_info("stopped");
	return rc;
}
