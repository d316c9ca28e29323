/* t-signals.c -- spoolcapd's signals under load, on a real daemon:
 *   SIGHUP  re-reads the configuration file and moves delivery from
 *           receiver A to receiver B while NOTIFYs are in flight and A's
 *           answers are slow: the SPOP connection stays up (no DISCONNECT,
 *           every NOTIFY ACKed), B gets events after the reload, and every
 *           ACKed message ends delivered to A or B. A bad file is refused
 *           (old delivery keeps going), a changed [agent] is named as "restart
 *           to apply".
 *   SIGTERM under pipelined load: exit 0 within STOP_GRACE + stop-timeout,
 *           and every message ACKed as spooled is delivered or still in the
 *           spool (spoolcap dump).
 * Messages are told apart by their "uid" argument (s<N>). */
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

#define MAXUID   4096
#define BURST    400
#define TERM_BOUND_MS 20000    /* STOP_GRACE 2 s + stop-timeout 5 s + slack */

static char dir[512], logp[700], exe[600], cli[600], py[600], rxpy[700], cfgp[700];
static unsigned mport;
static unsigned char acked[MAXUID];   /* 1: ACKed spooled=true */
static unsigned char seen[MAXUID];    /* found delivered or in the spool */

static int write_cfg(const char *forward_url, const char *extra)
{
	char tmp[800];
	FILE *f;

	snprintf(tmp, sizeof tmp, "%s.new", cfgp);
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "[agent]\nthreads = 2\n\n[spool]\ndir = %s/spool\n\n"
	        "[forward]\nurl = %s\nlinger = 10ms\nbackoff-base = 50ms\nbackoff-cap = 300ms\n"
	        "stop-timeout = 5s\n\n[metrics]\nlisten = 127.0.0.1:0\n", dir, forward_url);
	if (extra)
		fprintf(f, "%s\n", extra);
	fclose(f);
	return rename(tmp, cfgp);
}

/* Sends n NOTIFYs (one message, uid s<sid>) in one write. */
static int send_burst(spc_conn *c, uint64_t *sid, int n)
{
	static uint8_t buf[BURST * 128];
	size_t off = 0;

	for (int k = 0; k < n; k++) {
		char uid[32];
		size_t w;
		snprintf(uid, sizeof uid, "s%llu", (unsigned long long)*sid);
		w = spc_build_notify_uid(buf + off, sizeof buf - off, *sid, 1, "cap", uid);
		if (!w)
			return -1;
		off += w;
		(*sid)++;
	}
	return spc_send(c, buf, off, 5000) == SPC_OK ? 0 : -1;
}

/* Reads up to n ACKs, marking acked[sid] for spooled=true. Returns the
 * ACKs read (fewer when the agent disconnects). */
static int read_acks(spc_conn *c, int n, int *disconnected)
{
	int got = 0;

	while (got < n) {
		spc_frame fr;
		spop_action a;
		unsigned na = 0;
		int r = spc_read_frame(c, &fr, 15000);

		if (r != SPC_FRAME) {
			*disconnected = 1;
			break;
		}
		if (fr.f.type != SPOP_FRAME_ACK) {
			*disconnected = 1;
			break;
		}
		got++;
		if (spc_parse_ack(&fr, &na, &a) == 0 && na == 1 && a.value.type == SPOP_T_BOOL &&
		    a.value.v.b && fr.f.sid < MAXUID)
			acked[fr.f.sid] = 1;
	}
	return got;
}

/* Marks seen[] for every "uid":"s<N>" in a file (events or dump output). */
static void mark_uids(const char *path)
{
	FILE *f = fopen(path, "r");
	static char line[1 << 16];

	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		const char *p = line;
		while ((p = strstr(p, "\"uid\":\"s"))) {
			unsigned long n = strtoul(p + 8, NULL, 10);
			if (n < MAXUID)
				seen[n] = 1;
			p += 8;
		}
	}
	fclose(f);
}

static int count_events(const char *path)
{
	return mt_count_lines(path, "\"uid\":\"s");
}

int main(int argc, char **argv)
{
	const char *top = getenv("top_srcdir"), *p = getenv("PYTHON3");
	char err[512], urla[128], urlb[128], cmd[2000];
	spc_conn c;
	spc_hello_opts o = spc_hello_default(16380, "pipelining");
	spc_agent_hello h;
	spc_frame fr;
	agentd d;
	mt_rx ra, rb;
	uint64_t sid = 1;
	int got, disc = 0, missing = 0, nacked = 0, rc, b_before;
	double accepted0, t0;

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
	agentd_cli_exe(exe, cli, sizeof cli);
	snprintf(dir, sizeof dir, "/tmp/t-signals.XXXXXX");
	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	snprintf(logp, sizeof logp, "%s/spoolcapd.log", dir);
	snprintf(cfgp, sizeof cfgp, "%s/spoolcapd.conf", dir);
	if (mt_rx_start(&ra, py, rxpy, dir, "a") < 0 || mt_rx_start(&rb, py, rxpy, dir, "b") < 0) {
		printf("Bail out! receiver.py did not start\n");
		return 1;
	}
	snprintf(urla, sizeof urla, "http://127.0.0.1:%u/ingest", ra.port);
	snprintf(urlb, sizeof urlb, "http://127.0.0.1:%u/ingest", rb.port);
	write_cfg(urla, NULL);
	{
		char spool[600];
		/* agentd adds --spool none unless given one: the same dir as the file */
		snprintf(spool, sizeof spool, "%s/spool", dir);
		const char *args[] = { "-c", cfgp, "--spool", spool, NULL };
		if (agentd_start(&d, exe, logp, args, 10000, err, sizeof err) < 0) {
			printf("Bail out! spoolcapd: %s\n", err);
			return 1;
		}
	}
	mport = mt_metrics_port(logp, 10);
	if (!tap_ok(mport != 0, "metrics endpoint from [metrics] listen"))
		goto out;
	accepted0 = mt_metric(mport, "spoolcap_spop_connections_accepted_total");
	c.fd = -1;
	if (spc_connect_tcp(&c, "127.0.0.1", d.port, 5000) != SPC_OK ||
	    spc_handshake(&c, &o, &h, &fr, 5000) != SPC_OK) {
		tap_ok(0, "SPOP connection: %s", c.errmsg);
		goto out;
	}

	/* ---- SIGHUP under load: A -> B ---- */
	/* A records each batch at once but answers only after 8 s: when the
	 * reload stops A's engine (stop-timeout 5 s) POSTs are in flight and
	 * get cut, so those events stay pending and go to B too. */
	tap_is_int(mt_rx_control(&ra, "delay 8"), 0, "receiver A answers after 8 s");
	got = 0;
	send_burst(&c, &sid, BURST);
	got += read_acks(&c, BURST / 2, &disc);
	tap_ok(mt_file_has(ra.rec, " new", 15), "receiver A has a batch in hand");
	write_cfg(urlb, NULL);
	agentd_signal(&d, SIGHUP);
	send_burst(&c, &sid, BURST);
	got += read_acks(&c, BURST / 2 + BURST, &disc);
	tap_ok(mt_wait_metric(mport, "spoolcap_config_reloads_total", 1, 30) == 1,
	       "SIGHUP: reload applied (spoolcap_config_reloads_total 1)");
	send_burst(&c, &sid, BURST);
	got += read_acks(&c, BURST, &disc);
	tap_ok(got == 3 * BURST && !disc, "the SPOP connection carried on through the reload: "
	       "%d of %d NOTIFYs ACKed, no DISCONNECT", got, 3 * BURST);
	tap_ok(mt_metric(mport, "spoolcap_spop_connections_accepted_total") == accepted0 + 1 &&
	       mt_metric(mport, "spoolcap_spop_connections") == 1,
	       "no new connection, one open");
	tap_ok(mt_file_has(logp, "SIGHUP: delivery settings reloaded", 5) &&
	       mt_count_lines(logp, urlb) >= 1, "the log says the reload and the new URL");
	/* spool_delivered_total only ever reaches 3 x BURST when all is
	 * delivered (the spool gauges may be up to 1 s old) */
	tap_ok(mt_wait_metric(mport, "spoolcap_spool_delivered_total", 3 * BURST, 60) == 3 * BURST &&
	       mt_wait_metric(mport, "spoolcap_spool_pending_records", 0, 5) == 0 &&
	       mt_metric(mport, "spoolcap_capture_dropped_total{reason=\"spool\"}") == 0,
	       "everything delivered, nothing dropped");
	mark_uids(ra.events);
	mark_uids(rb.events);
	nacked = missing = 0;
	for (uint64_t i = 1; i < sid; i++) {
		nacked += acked[i];
		missing += acked[i] && !seen[i];
	}
	tap_ok(nacked == 3 * BURST && missing == 0, "every ACKed message (%d) delivered to A or "
	       "B (%d missing)", nacked, missing);
	tap_ok(count_events(rb.events) > 0, "receiver B got events after the reload (%d)",
	       count_events(rb.events));
	tap_diag("receiver A got %d event lines, B %d (duplicates possible across the switch)",
	         count_events(ra.events), count_events(rb.events));

	/* ---- a bad file is refused; delivery goes on ---- */
	write_cfg(urla, "[forward]\nbogus-key = 1");
	agentd_signal(&d, SIGHUP);
	tap_ok(mt_wait_metric(mport, "spoolcap_config_reload_failures_total", 1, 30) == 1 &&
	       mt_file_has(logp, "configuration not reloaded", 5) &&
	       mt_file_has(logp, "unknown key 'bogus-key'", 1),
	       "bad configuration refused with the reason");
	b_before = count_events(rb.events);
	send_burst(&c, &sid, 100);
	got = read_acks(&c, 100, &disc);
	tap_ok(got == 100 && mt_wait_metric(mport, "spoolcap_spool_delivered_total", 3 * BURST + 100, 30) ==
	       3 * BURST + 100 &&
	       count_events(rb.events) >= b_before + 100,
	       "after the refused reload events still go to B");

	/* ---- other sections: named, not applied ---- */
	write_cfg(urlb, "[capture]\nbody-max = 1K");
	agentd_signal(&d, SIGHUP);
	tap_ok(mt_wait_metric(mport, "spoolcap_config_reloads_total", 2, 30) == 2 &&
	       mt_file_has(logp, "changes in [capture] are not applied: restart", 5),
	       "a changed [capture] is logged as 'restart to apply'");

	/* ---- SIGTERM under load ---- */
	mt_rx_control(&rb, "delay 0.2");
	send_burst(&c, &sid, BURST);
	agentd_signal(&d, SIGTERM);
	t0 = mt_now();
	read_acks(&c, BURST, &disc);
	rc = agentd_wait(&d, TERM_BOUND_MS);
	tap_ok(rc == 0 && WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0,
	       "SIGTERM under load: exit 0 within %d s (took %.1f s)", TERM_BOUND_MS / 1000,
	       mt_now() - t0);
	if (rc != 0)
		agentd_stop(&d, 5000);
	spc_close(&c);
	c.fd = -1;
	{
		char dump[700];
		snprintf(dump, sizeof dump, "%s/dump.ndjson", dir);
		snprintf(cmd, sizeof cmd, "'%s' dump '%s/spool' > '%s' 2>&1", cli, dir, dump);
		tap_ok(system(cmd) == 0, "spoolcap dump after the stop");
		memset(seen, 0, sizeof seen);
		mark_uids(ra.events);
		mark_uids(rb.events);
		mark_uids(dump);
	}
	nacked = missing = 0;
	for (uint64_t i = 1; i < sid; i++) {
		nacked += acked[i];
		if (acked[i] && !seen[i] && missing++ < 5)
			tap_diag("ACKed s%llu is neither delivered nor in the spool",
			         (unsigned long long)i);
	}
	tap_ok(missing == 0, "nothing acknowledged lost: %d ACKed, all delivered or in the "
	       "spool", nacked);
	tap_ok(mt_file_has(logp, "stopped", 1), "the log ends with 'stopped'");
out:
	if (c.fd >= 0)
		spc_close(&c);
	if (d.pid)
		agentd_stop(&d, 20000);
	mt_rx_stop(&ra);
	mt_rx_stop(&rb);
	tap_ok(mt_count_lines(logp, "Sanitizer") == 0 &&
	       mt_count_lines(logp, "runtime error:") == 0,
	       "no sanitizer report in the daemon's log");
	agentd_cleanup_dir(dir, tap_failed != 0);
	return tap_done(0);
}
