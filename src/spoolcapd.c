/* spoolcapd.c -- the daemon's main: configuration, the sink, the agent, and
 * a main loop that only waits for SIGINT/SIGTERM to stop gracefully. */
#include <config.h>

#include <ev.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "spoolcap/agent.h"
#include "spoolcap/config.h"
#include "spoolcap/dictcache.h"
#include "spoolcap/log.h"
#include "spoolcap/sink.h"
#include "spoolcap/spool.h"
#include "spoolcap/spool_sink.h"

#define STOP_GRACE 2.0          /* s to finish pending ACKs on shutdown */

static int stop_signal;
static ev_async fatal_watcher;       /* a spool thread asks the main loop to stop */
static char fatal_msg[512];

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

int main(int argc, char **argv)
{
	struct ev_loop *loop;
	ev_signal sigint, sigterm;
	struct sigaction sa;
	agent_config ac;
	unsigned threads;
	char err[512];
	cfg c;
	sink *s;
	agent *a;
	spool *sp = NULL;

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

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	check_nofile(c.max_connections, c.nlisten);

	loop = EV_DEFAULT;
	ev_async_init(&fatal_watcher, on_fatal_async);
	ev_async_start(loop, &fatal_watcher);
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
		s->destroy(s);
		if (sp)
			spool_close(sp);
		cfg_free(&c);
		return 1;
	}
	/* Signal watchers first: the I/O threads block every signal. */
	ev_signal_init(&sigint, on_signal, SIGINT);
	ev_signal_start(loop, &sigint);
	ev_signal_init(&sigterm, on_signal, SIGTERM);
	ev_signal_start(loop, &sigterm);

	if (agent_start(a, err, sizeof(err)) < 0) {
		log_error("%s", err);
		agent_free(a);
		s->destroy(s);
		if (sp)
			spool_close(sp);
		cfg_free(&c);
		return 2;
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

	ev_run(loop, 0);

	if (fatal_msg[0])
		log_error("stopping after a fatal spool error");
	else
		log_info("%s received, stopping (up to %.0f s for pending ACKs)",
		         stop_signal == SIGINT ? "SIGINT" : "SIGTERM", STOP_GRACE);
	agent_stop(a, STOP_GRACE);
	log_stats(a, s);
	/* The sink completes whatever is queued before it goes (agent.h). */
	s->destroy(s);
	agent_free(a);
	if (sp)
		spool_close(sp);
	ev_signal_stop(loop, &sigint);
	ev_signal_stop(loop, &sigterm);
	ev_async_stop(loop, &fatal_watcher);
	ev_loop_destroy(loop);
	cfg_free(&c);
	log_info("stopped");
	return fatal_msg[0] ? 3 : 0;
}
