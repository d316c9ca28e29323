/* t-metrics.c -- the metrics endpoint of a real spoolcapd, scraped while
 * SPOP clients load it and while tests/receiver.py (the event processor)
 * fails: every counter the test can know is checked exactly against what
 * it sent, what the spool dropped (a 1 MiB spool overflowed during the
 * outage) and what the receiver recorded. Also /healthz, /readyz, errors,
 * the text format, and --check printing [metrics] and [log].
 *
 * Waits (for delivery, for the outage to be noticed) are bounded polls of
 * /metrics, never timed assertions. */
#include "config.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentd.h"
#include "mtest.h"
#include "spop_client.h"
#include "tap.h"

#define NCONN     2
#define ROUNDS    10
#define PIPE      50          /* NOTIFYs in flight per connection */
#define NMSG      2           /* messages per NOTIFY in the load phase */
#define BIG       12000       /* bytes of the incompressible arg (< max-frame-size) */
#define NBIG      150         /* NOTIFYs sent during the outage */

static char dir[512], logp[700], exe[600], py[600], rxpy[700];
static unsigned mport;

static char *scrape(void)
{
	char *body = NULL;
	int st = mt_http(mport, "GET", "/metrics", NULL, &body);

	if (st != 200) {
		free(body);
		return NULL;
	}
	return body;
}

static int wait_metric_above(const char *series, double floor, double timeout_s)
{
	double t0 = mt_now();

	while (mt_now() - t0 < timeout_s) {
		if (mt_metric(mport, series) > floor)
			return 1;
		usleep(50000);
	}
	return 0;
}

/* Lines of a receiver record answered 2xx and new (each delivered id once). */
static int delivered_ids(const mt_rx *x)
{
	FILE *f = fopen(x->rec, "r");
	char line[512], id[256], key[256], nd[8];
	int status, n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "%d %255s %255s %7s", &status, id, key, nd) == 4 &&
		    status >= 200 && status < 300 && strcmp(nd, "new") == 0)
			n++;
	fclose(f);
	return n;
}

static void check_config_output(void)
{
	char cmd[1600], line[512];
	FILE *p;
	int listen = 0, target = 0, facility = 0, rc;

	snprintf(cmd, sizeof cmd, "'%s' --check --spool none --metrics-listen 0.0.0.0:9120 "
	         "--log-target syslog --log-facility local3", exe);
	p = popen(cmd, "r");
	while (p && fgets(line, sizeof line, p)) {
		listen += strcmp(line, "listen = 0.0.0.0:9120\n") == 0;
		target += strcmp(line, "target = syslog\n") == 0;
		facility += strcmp(line, "facility = local3\n") == 0;
	}
	rc = p ? pclose(p) : -1;
	tap_ok(rc == 0 && listen == 1 && target == 1 && facility == 1,
	       "--check prints [metrics] listen, [log] target and facility");
	snprintf(cmd, sizeof cmd, "'%s' --check --spool none 2>/dev/null | grep -qx 'listen = none'",
	         exe);
	tap_ok(system(cmd) == 0, "metrics endpoint off by default (listen = none)");
	snprintf(cmd, sizeof cmd, "'%s' --check --metrics-listen unix:/tmp/x >/dev/null 2>&1", exe);
	rc = system(cmd);
	tap_ok(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "--metrics-listen unix:... refused (exit 1)");
	snprintf(cmd, sizeof cmd, "'%s' --check --log-target file >/dev/null 2>&1", exe);
	rc = system(cmd);
	tap_ok(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "--log-target file refused (exit 1)");
	snprintf(cmd, sizeof cmd, "'%s' --check --log-facility kern >/dev/null 2>&1", exe);
	rc = system(cmd);
	tap_ok(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "--log-facility kern refused (exit 1)");
}

static int connect_all(spc_conn *c, unsigned port)
{
	spc_hello_opts o = spc_hello_default(16380, "pipelining");
	spc_agent_hello h;
	spc_frame fr;

	for (int i = 0; i < NCONN; i++)
		if (spc_connect_tcp(&c[i], "127.0.0.1", port, 5000) != SPC_OK ||
		    spc_handshake(&c[i], &o, &h, &fr, 5000) != SPC_OK)
			return -1;
	return 0;
}

/* One round: PIPE NOTIFYs (NMSG messages each) on every connection, then
 * every ACK. Returns the ACKs read. */
static int load_round(spc_conn *c, uint64_t *sid)
{
	static uint8_t buf[PIPE * 256];
	int acks = 0;

	for (int i = 0; i < NCONN; i++) {
		size_t off = 0;
		for (int k = 0; k < PIPE; k++) {
			char uid[32];
			spc_arg a[2];
			spc_msg m[NMSG];

			snprintf(uid, sizeof uid, "u%llu", (unsigned long long)*sid);
			a[0] = (spc_arg){ "uid", spc_cstr(uid) };
			a[1] = (spc_arg){ "path", spc_cstr("/metrics-test") };
			for (int j = 0; j < NMSG; j++)
				m[j] = (spc_msg){ "cap", a, 2 };
			off += spc_build_notify(buf + off, sizeof buf - off, (*sid)++, 1, m, NMSG);
		}
		if (spc_send(&c[i], buf, off, 5000) != SPC_OK)
			return acks;
	}
	for (int i = 0; i < NCONN; i++)
		for (int k = 0; k < PIPE; k++) {
			spc_frame fr;
			if (spc_read_frame(&c[i], &fr, 10000) != SPC_FRAME ||
			    fr.f.type != SPOP_FRAME_ACK)
				return acks;
			acks++;
		}
	return acks;
}

/* One NOTIFY with an incompressible BIG-byte arg; 1 if ACKed spooled=true,
 * 0 if spooled=false, -1 on error. */
static int send_big(spc_conn *c, uint64_t sid)
{
	static uint8_t body[BIG], buf[BIG + 512];
	spc_arg a[2];
	spc_msg m = { "cap", a, 2 };
	spc_frame fr;
	spop_action act;
	unsigned nact = 0;
	size_t n;
	char uid[32];

	for (size_t i = 0; i < sizeof body; i++)
		body[i] = (uint8_t)(random() >> 7);
	snprintf(uid, sizeof uid, "big%llu", (unsigned long long)sid);
	a[0] = (spc_arg){ "uid", spc_cstr(uid) };
	a[1] = (spc_arg){ "blob", spc_str(SPOP_T_BINARY, body, sizeof body) };
	n = spc_build_notify(buf, sizeof buf, sid, 1, &m, 1);
	if (!n || spc_send(c, buf, n, 5000) != SPC_OK ||
	    spc_read_frame(c, &fr, 10000) != SPC_FRAME || fr.f.type != SPOP_FRAME_ACK ||
	    spc_parse_ack(&fr, &nact, &act) != 0 || nact != 1 || act.value.type != SPOP_T_BOOL)
		return -1;
	return act.value.v.b ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *top = getenv("top_srcdir"), *p = getenv("PYTHON3");
	char err[512], url[128], *body = NULL, why[256] = "";
	spc_conn c[NCONN];
	agentd d;
	mt_rx rx;
	uint64_t sid = 1;
	int acks = 0, monotonic = 1, format_ok = 1, ntrue = 0, nfalse = 0, bad = 0, rc;
	double prev_acks = 0, prev_notifies = 0, accepted0;

	(void)argc;
	snprintf(py, sizeof py, "%s", p && *p ? p : "/usr/bin/python3");
	if (top && *top)
		snprintf(rxpy, sizeof rxpy, "%s/tests/receiver.py", top);
	else
		snprintf(rxpy, sizeof rxpy, "%.*s/receiver.py",
		         (int)(strrchr(argv[0], '/') ? strrchr(argv[0], '/') - argv[0] : 1),
		         strrchr(argv[0], '/') ? argv[0] : ".");
	if (access(py, X_OK) != 0 || access(rxpy, R_OK) != 0) {
		printf("1..0 # SKIP no python3 or %s\n", rxpy);
		return 0;
	}
	agentd_exe(argv[0], exe, sizeof exe);
	snprintf(dir, sizeof dir, "/tmp/t-metrics.XXXXXX");
	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	snprintf(logp, sizeof logp, "%s/spoolcapd.log", dir);
	memset(c, 0, sizeof c);
	for (int i = 0; i < NCONN; i++)
		c[i].fd = -1;

	check_config_output();

	if (mt_rx_start(&rx, py, rxpy, dir, "rx") < 0) {
		printf("Bail out! receiver.py did not start (%s)\n", rx.err);
		return 1;
	}
	snprintf(url, sizeof url, "http://127.0.0.1:%u/ingest", rx.port);
	{
		char spool[600];
		snprintf(spool, sizeof spool, "%s/spool", dir);
		const char *args[] = { "--spool", spool, "--forward", url,
		                       "--metrics-listen", "127.0.0.1:0", "--threads", "2",
		                       "--compression-level", "0", "--dictionary", "off",
		                       "--max-size", "1M", "--forward-linger", "10ms",
		                       "--forward-backoff-base", "50ms",
		                       "--forward-backoff-cap", "300ms", NULL };
		if (agentd_start(&d, exe, logp, args, 10000, err, sizeof err) < 0) {
			printf("Bail out! spoolcapd: %s\n", err);
			mt_rx_stop(&rx);
			return 1;
		}
	}
	mport = mt_metrics_port(logp, 10);
	if (!tap_ok(mport != 0, "the log names the metrics address")) {
		agentd_dump_log(&d, 20);
		goto out;
	}

	/* ---- probes and HTTP behaviour ---- */
	tap_is_int(mt_http(mport, "GET", "/healthz", NULL, NULL), 200, "/healthz 200");
	tap_is_int(mt_http(mport, "GET", "/readyz", NULL, NULL), 200, "/readyz 200 (listening, "
	           "spool open)");
	tap_is_int(mt_http(mport, "HEAD", "/metrics", NULL, NULL), 200, "HEAD /metrics 200");
	tap_is_int(mt_http(mport, "GET", "/nope", NULL, NULL), 404, "unknown path 404");
	tap_is_int(mt_http(mport, "POST", "/metrics", "x", NULL), 405, "POST refused with 405");
	body = scrape();
	tap_ok(body && mt_prom_check(body, why, sizeof why) == 0, "text format: HELP/TYPE for "
	       "every family, counters end in _total%s%s", body ? ": " : "", body ? why : "");
	tap_ok(body && mt_prom(body, "spoolcap_ready") == 1 &&
	       mt_prom(body, "spoolcap_delivery_enabled") == 1 &&
	       mt_prom(body, "spoolcap_spop_acks_sent_total") == 0,
	       "ready 1, delivery enabled, no ACK yet");
	free(body);

	/* ---- load: scraped between rounds ---- */
	accepted0 = mt_metric(mport, "spoolcap_spop_connections_accepted_total");  /* agentd's probe */
	if (connect_all(c, d.port) < 0) {
		tap_ok(0, "SPOP connections: %s", c[0].errmsg);
		goto out;
	}
	for (int r = 0; r < ROUNDS; r++) {
		double a, n;

		acks += load_round(c, &sid);
		body = scrape();
		if (!body) {
			monotonic = 0;
			break;
		}
		why[0] = '\0';
		if (mt_prom_check(body, why, sizeof why) < 0) {
			format_ok = 0;
			tap_diag("round %d: %s", r, why);
		}
		a = mt_prom(body, "spoolcap_spop_acks_sent_total");
		n = mt_prom(body, "spoolcap_spop_notifies_received_total");
		monotonic &= a >= prev_acks && n >= prev_notifies && a <= n;
		prev_acks = a;
		prev_notifies = n;
		free(body);
	}
	tap_is_int(acks, NCONN * ROUNDS * PIPE, "load: every NOTIFY ACKed");
	tap_ok(monotonic, "counters never go back between scrapes, ACKs <= NOTIFYs");
	tap_ok(format_ok, "every scrape under load is valid text format");
	body = scrape();
	tap_ok(body != NULL, "scrape after the load");
	if (body) {
		double total = NCONN * ROUNDS * PIPE;
		tap_ok(mt_prom(body, "spoolcap_spop_notifies_received_total") == total,
		       "notifies_received = %.0f", total);
		tap_ok(mt_prom(body, "spoolcap_spop_messages_received_total") == total * NMSG,
		       "messages_received = %.0f", total * NMSG);
		tap_ok(mt_prom(body, "spoolcap_spop_acks_sent_total") == total, "acks_sent = %.0f",
		       total);
		tap_ok(mt_prom(body, "spoolcap_spop_frames_received_total") == total + NCONN,
		       "frames_received = NOTIFYs + HELLOs");
		tap_ok(mt_prom(body, "spoolcap_spop_ack_latency_seconds_count") == total &&
		       mt_prom(body, "spoolcap_spop_ack_latency_seconds_bucket{le=\"+Inf\"}") == total &&
		       mt_prom(body, "spoolcap_spop_ack_latency_seconds_sum") > 0,
		       "ACK latency histogram: one observation per ACK");
		tap_ok(mt_prom(body, "spoolcap_spop_connections") == NCONN &&
		       mt_prom(body, "spoolcap_spop_connections_accepted_total") == accepted0 + NCONN,
		       "connections: %d open, %d accepted", NCONN, NCONN);
		tap_ok(mt_prom(body, "spoolcap_capture_records_spooled_total") == total * NMSG &&
		       mt_prom(body, "spoolcap_capture_dropped_total{reason=\"queue_full\"}") == 0 &&
		       mt_prom(body, "spoolcap_capture_dropped_total{reason=\"spool\"}") == 0,
		       "records spooled = messages, nothing dropped");
		tap_ok(mt_prom(body, "spoolcap_spool_commits_total") >= 1 &&
		       mt_prom(body, "spoolcap_spool_commit_records_total") == total * NMSG &&
		       mt_prom(body, "spoolcap_spool_commit_duration_seconds_count") ==
		       mt_prom(body, "spoolcap_spool_commits_total"),
		       "commits: records committed = messages, one duration per commit");
		tap_ok(mt_prom(body, "spoolcap_capture_raw_bytes_total{dictionary=\"no\"}") > 0 &&
		       mt_prom(body, "spoolcap_capture_compression_ratio") > 0,
		       "compression counters");
		free(body);
	}
	{
		double total = NCONN * ROUNDS * PIPE * NMSG;
		tap_ok(mt_wait_metric(mport, "spoolcap_delivery_events_total{outcome=\"delivered\"}", total, 30)
		       == total, "delivery: %.0f events delivered", total);
		tap_ok(mt_wait_metric(mport, "spoolcap_spool_delivered_total", total, 5) == total &&
		       mt_metric(mport, "spoolcap_spool_accepted_total") == total &&
		       mt_metric(mport, "spoolcap_spool_pending_records") == 0,
		       "spool: accepted = delivered = %.0f, nothing pending", total);
		tap_is_int(delivered_ids(&rx), (int)total, "the receiver recorded every event once");
		tap_ok(mt_metric(mport, "spoolcap_delivery_batches_total{outcome=\"delivered\"}") >= 1 &&
		       mt_metric(mport, "spoolcap_delivery_sent_bytes_total") > 0 &&
		       mt_metric(mport, "spoolcap_delivery_state{state=\"idle\"}") == 1,
		       "batches delivered, bytes sent, state idle");
	}

	/* ---- receiver outage, spool overflow ---- */
	tap_is_int(mt_rx_control(&rx, "status 503"), 0, "receiver answers 503");
	for (int i = 0; i < NBIG; i++) {
		int r = send_big(&c[0], sid++);
		if (r < 0) {
			bad++;
			break;
		}
		if (r)
			ntrue++;
		else
			nfalse++;
	}
	tap_ok(!bad && ntrue > 0 && nfalse > 0, "outage: %d NOTIFYs ACKed spooled, %d ACKed "
	       "not spooled (1M spool full)", ntrue, nfalse);
	{
		double base = NCONN * ROUNDS * PIPE * NMSG;
		tap_ok(wait_metric_above("spoolcap_delivery_retries_total{class=\"transient\"}", 0, 30),
		       "retries counted during the outage");
		/* spool gauges are cached for up to METRICS_SPOOL_STAT_TTL */
		mt_wait_metric(mport, "spoolcap_spool_dropped_total{reason=\"full\"}", nfalse, 5);
		body = scrape();
		tap_ok(body && mt_prom(body, "spoolcap_spool_dropped_total{reason=\"full\"}") == nfalse &&
		       mt_prom(body, "spoolcap_capture_dropped_total{reason=\"spool\"}") == nfalse,
		       "drops counted exactly: %d (reason full)", nfalse);
		tap_ok(body && mt_prom(body, "spoolcap_capture_records_spooled_total") == base + ntrue &&
		       mt_prom(body, "spoolcap_spop_acks_sent_total") == NCONN * ROUNDS * PIPE + NBIG,
		       "spooled and ACKed counters include the outage");
		tap_ok(body && mt_prom(body, "spoolcap_delivery_events_total{outcome=\"delivered\"}")
		       == base, "nothing delivered during the outage");
		tap_ok(body && mt_prom(body, "spoolcap_delivery_last_http_status") == 503 &&
		       (mt_prom(body, "spoolcap_delivery_state{state=\"backing-off\"}") == 1 ||
		        mt_prom(body, "spoolcap_delivery_state{state=\"delivering\"}") == 1) &&
		       strstr(body, "spoolcap_delivery_state_info{state=\"") != NULL,
		       "endpoint state: last status 503, backing off");
		free(body);
		tap_ok(mt_wait_metric(mport, "spoolcap_spool_pending_records", ntrue, 5) == ntrue &&
		       mt_metric(mport, "spoolcap_spool_oldest_pending_age_seconds") >= 0 &&
		       mt_metric(mport, "spoolcap_spool_cursor_lag") == ntrue,
		       "spool gauges: %d pending, cursor lag %d", ntrue, ntrue);

		tap_is_int(mt_rx_control(&rx, "ok"), 0, "receiver back to 200");
		tap_ok(mt_wait_metric(mport, "spoolcap_delivery_events_total{outcome=\"delivered\"}",
		                   base + ntrue, 60) == base + ntrue,
		       "after the outage every spooled event is delivered (%.0f)", base + ntrue);
		tap_ok(mt_wait_metric(mport, "spoolcap_spool_pending_records", 0, 5) == 0 &&
		       mt_metric(mport, "spoolcap_spool_delivered_total") == base + ntrue &&
		       mt_metric(mport, "spoolcap_spool_accepted_total") == base + ntrue,
		       "spool: accepted = delivered, nothing pending");
		tap_is_int(delivered_ids(&rx), (int)(base + ntrue), "the receiver has every accepted "
		           "event once");
		tap_ok(mt_wait_metric(mport, "spoolcap_delivery_state{state=\"idle\"}", 1, 10) == 1,
		       "delivery idle again");
	}
	/* An AGENT-DISCONNECT with a status code is counted by its name. */
	{
		uint8_t junk[8] = { 0, 0, 0, 4, 99, 0, 0, 0 };
		spc_conn x;
		spc_hello_opts o = spc_hello_default(16380, "");
		spc_agent_hello h;
		spc_frame fr;

		if (spc_connect_tcp(&x, "127.0.0.1", d.port, 5000) == SPC_OK &&
		    spc_handshake(&x, &o, &h, &fr, 5000) == SPC_OK) {
			spc_send(&x, junk, sizeof junk, 5000);
			spc_wait_close(&x, 5000, NULL, NULL);
			spc_close(&x);
		}
		tap_ok(mt_metric(mport, "spoolcap_spop_disconnects_sent_total{code=\"invalid\"}") == 1,
		       "a bad frame: disconnects_sent{code=\"invalid\"} = 1");
	}

out:
	for (int i = 0; i < NCONN; i++)
		if (c[i].fd >= 0)
			spc_close(&c[i]);
	rc = agentd_stop(&d, 30000);
	tap_is_int(rc, 0, "spoolcapd exits 0 on SIGTERM");
	mt_rx_stop(&rx);
	tap_ok(mt_count_lines(logp, "Sanitizer") == 0 &&
	       mt_count_lines(logp, "runtime error:") == 0,
	       "no sanitizer report in the daemon's log");
	agentd_cleanup_dir(dir, tap_failed != 0);
	return tap_done(0);
}
