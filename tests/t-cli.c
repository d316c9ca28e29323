/* t-cli.c -- spoolcap stat and dump against a spool the real daemon wrote:
 * exact event JSON for a known message, --from/--limit, --json output, and
 * clear errors with exit status 2 for bad arguments and wrong directories. */
#include "config.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentd.h"
#include "spop_client.h"
#include "tap.h"

static char exe[512], cli[512], tmp[] = "/tmp/t-cli-XXXXXX";

/* Runs a shell command; *out gets stdout (NUL-terminated, truncated to
 * cap), returns the exit status (or -1). */
static int run(const char *cmd, char *out, size_t cap)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	int st;

	if (!p)
		return -1;
	if (out && cap) {
		n = fread(out, 1, cap - 1, p);
		out[n] = 0;
	} else {
		char sink[4096];
		while (fread(sink, 1, sizeof sink, p) > 0)
			;
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static unsigned count_lines(const char *s)
{
	unsigned n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Ten NOTIFYs; message k: uid "k<k>", status 200+k, a header block and a
 * non-UTF-8 body. */
static int feed(unsigned port)
{
	uint8_t buf[1024], hello[256];
	spc_hello_opts ho = spc_hello_default(16380, "pipelining");
	spc_conn c;
	spc_frame fr;
	unsigned k;
	size_t n;

	if (spc_connect_tcp(&c, "127.0.0.1", port, 2000) < 0)
		return -1;
	n = spc_build_hello(hello, sizeof hello, &ho);
	if (spc_send(&c, hello, n, 2000) < 0 || spc_read_frame(&c, &fr, 5000) != SPC_FRAME)
		return -1;
	for (k = 1; k <= 10; k++) {
		static const uint8_t hdrs[] = { 4, 'h', 'o', 's', 't', 11, 'e', 'x', 'a', 'm', 'p',
		                                'l', 'e', '.', 'c', 'o', 'm', 0, 0 };
		static const uint8_t body[] = { 0xff, 0x00, 'x' };
		uint8_t ip[4] = { 192, 0, 2, (uint8_t)k };
		char uid[16];
		spc_arg a[5];
		spc_msg m = { "cap-res", a, 5 };

		snprintf(uid, sizeof uid, "k%u", k);
		a[0] = (spc_arg){ "uid", spc_cstr(uid) };
		a[1] = (spc_arg){ "status", spc_int(SPOP_T_INT64, 200 + k) };
		a[2] = (spc_arg){ "hdrs", spc_str(SPOP_T_BINARY, hdrs, sizeof hdrs) };
		a[3] = (spc_arg){ "body", spc_str(SPOP_T_BINARY, body, sizeof body) };
		a[4] = (spc_arg){ "src", spc_ip(SPOP_T_IPV4, ip) };
		n = spc_build_notify(buf, sizeof buf, 100 + k, 1, &m, 1);
		if (spc_send(&c, buf, n, 2000) < 0 || spc_read_frame(&c, &fr, 5000) != SPC_FRAME ||
		    fr.f.type != SPOP_FRAME_ACK)
			return -1;
	}
	spc_close(&c);
	return 0;
}

int main(int argc, char **argv)
{
	char spool[600], log[600], cmd[2048], out[65536], uuid[64] = "", want[2048];
	const char *args[] = { "--spool", spool, "--log-level", "warn", NULL };
	agentd d;
	char err[512];
	const char *u;
	int rc;

	(void)argc;
	if (!mkdtemp(tmp)) {
		printf("1..0 # SKIP cannot create a temporary directory\n");
		return 0;
	}
	agentd_exe(argv[0], exe, sizeof exe);
	agentd_cli_exe(exe, cli, sizeof cli);
	snprintf(spool, sizeof spool, "%s/spool", tmp);
	snprintf(log, sizeof log, "%s/agent.log", tmp);
	if (agentd_start(&d, exe, log, args, 10000, err, sizeof err) < 0) {
		tap_ok(0, "spoolcapd starts: %s", err);
		return tap_done(0);
	}
	tap_ok(feed(d.port) == 0, "ten NOTIFYs are ACKed");

	/* While the daemon runs. */
	snprintf(cmd, sizeof cmd, "'%s' stat '%s'", cli, spool);
	rc = run(cmd, out, sizeof out);
	tap_is_int(rc, 0, "stat exits 0 while the daemon runs");
	tap_ok(strstr(out, "pending        10 records") != NULL, "stat shows 10 pending records");
	tap_ok(strstr(out, "cursor         0") != NULL, "stat shows the cursor");
	snprintf(cmd, sizeof cmd, "'%s' stat --json '%s'", cli, spool);
	rc = run(cmd, out, sizeof out);
	tap_is_int(rc, 0, "stat --json exits 0");
	tap_ok(strstr(out, "\"records\":10,") && strstr(out, "\"last_seq\":10,") &&
	       strstr(out, "\"next_seq\":11,"), "stat --json has records, last_seq and next_seq");
	u = strstr(out, "\"uuid\":\"");
	if (u)
		snprintf(uuid, sizeof uuid, "%.36s", u + 8);
	tap_is_int(strlen(uuid), 36, "stat --json gives the spool uuid");
	if (access("/usr/bin/python3", X_OK) == 0) {
		snprintf(cmd, sizeof cmd, "'%s' stat --json '%s' | /usr/bin/python3 -c "
		         "'import json,sys; d=json.load(sys.stdin); assert d[\"records\"]==10'",
		         cli, spool);
		tap_is_int(run(cmd, NULL, 0), 0, "stat --json is valid JSON (python3 json)");
	} else {
		tap_skip(1, "no /usr/bin/python3 to validate the JSON");
	}

	snprintf(cmd, sizeof cmd, "'%s' dump '%s'", cli, spool);
	rc = run(cmd, out, sizeof out);
	tap_is_int(rc, 0, "dump exits 0");
	tap_is_int(count_lines(out), 10, "dump writes one line per message");
	/* The exact event of message 3, written by hand from design.md. The
	 * time and engine id vary: check the line around them. */
	snprintf(want, sizeof want, "{\"id\":\"%s-3\",\"seq\":3,\"time\":\"", uuid);
	tap_ok(strstr(out, want) != NULL, "event 3 starts with its id and seq");
	tap_ok(strstr(out, "\"message\":\"cap-res\",\"spoe\":{\"engine\":\"") != NULL,
	       "events carry the message name and engine id");
	tap_ok(strstr(out, "\"stream\":103,\"frame\":1},\"args\":{\"uid\":\"k3\",\"status\":203,"
	                   "\"hdrs\":[[\"host\",\"example.com\"]],\"body\":{\"base64\":\"/wB4\"},"
	                   "\"src\":\"192.0.2.3\"}}\n") != NULL,
	       "event 3's args render exactly (header block, base64 body, address)");

	snprintf(cmd, sizeof cmd, "'%s' dump '%s' --from 5", cli, spool);
	run(cmd, out, sizeof out);
	tap_is_int(count_lines(out), 6, "dump --from 5 gives seqs 5..10");
	tap_ok(strncmp(out, "{\"id\":", 6) == 0 && strstr(out, "\"seq\":5,") == strstr(out, "\"seq\":"),
	       "dump --from 5 starts at seq 5");
	snprintf(cmd, sizeof cmd, "'%s' dump '%s' --from 2 --limit 3", cli, spool);
	run(cmd, out, sizeof out);
	tap_is_int(count_lines(out), 3, "dump --limit 3 stops after three events");
	snprintf(cmd, sizeof cmd, "'%s' dump '%s' --from 99", cli, spool);
	tap_is_int(run(cmd, out, sizeof out), 0, "dump --from past the end exits 0");
	tap_is_int(count_lines(out), 0, "... and prints nothing");

	tap_is_int(agentd_stop(&d, 10000), 0, "the daemon exits 0");
	snprintf(cmd, sizeof cmd, "'%s' dump '%s' | wc -l", cli, spool);
	run(cmd, out, sizeof out);
	tap_is_int(atoi(out), 10, "dump works on a stopped spool too");

	/* Errors: exit status 2 and a message saying what is wrong. */
	snprintf(cmd, sizeof cmd, "'%s' stat '%s/nonexistent' 2>&1", cli, tmp);
	tap_is_int(run(cmd, out, sizeof out), 2, "stat of a missing directory exits 2");
	tap_ok(strstr(out, "nonexistent") != NULL, "... naming the directory: %.*s",
	       (int)strcspn(out, "\n"), out);
	snprintf(cmd, sizeof cmd, "mkdir -p '%s/empty' && '%s' dump '%s/empty' 2>&1", tmp, cli, tmp);
	tap_is_int(run(cmd, out, sizeof out), 2, "dump of a directory that is not a spool exits 2");
	tap_ok(strstr(out, "spool") != NULL, "... saying it is not a spool: %.*s",
	       (int)strcspn(out, "\n"), out);
	snprintf(cmd, sizeof cmd, "'%s' stat '%s' 2>&1", cli, log);
	tap_is_int(run(cmd, out, sizeof out), 2, "stat of a regular file exits 2");
	snprintf(cmd, sizeof cmd, "'%s' dump '%s' --limit x 2>&1", cli, spool);
	tap_is_int(run(cmd, out, sizeof out), 2, "dump --limit x exits 2");
	tap_ok(strstr(out, "--limit") != NULL, "... naming the option");
	snprintf(cmd, sizeof cmd, "'%s' dump 2>&1", cli);
	tap_is_int(run(cmd, out, sizeof out), 2, "dump without a directory exits 2");
	snprintf(cmd, sizeof cmd, "'%s' frobnicate '%s' 2>&1", cli, spool);
	tap_is_int(run(cmd, out, sizeof out), 2, "an unknown subcommand exits 2");
	tap_ok(strstr(out, "frobnicate") != NULL, "... naming it");
	snprintf(cmd, sizeof cmd, "'%s' --help", cli);
	tap_is_int(run(cmd, out, sizeof out), 0, "--help exits 0");
	tap_ok(strstr(out, "stat") && strstr(out, "dump"), "--help lists the subcommands");
	snprintf(cmd, sizeof cmd, "'%s' dump --help", cli);
	tap_is_int(run(cmd, out, sizeof out), 0, "dump --help exits 0");
	tap_ok(strstr(out, "--from") && strstr(out, "--limit"), "dump --help lists its options");

	agentd_cleanup_dir(tmp, tap_failed);
	return tap_done(0);
}
