/* t-kill9.c -- the ACK is the promise, under kill -9.
 *
 * Client threads send NOTIFYs with unique, deterministic payloads over
 * several connections to a real spoolcapd writing a spool, while the main
 * thread SIGKILLs and restarts the agent at random moments (24 times).
 * Clients reconnect after each kill and go on with new ids. At the end
 * `spoolcap dump` must show every message whose ACK a client received (with
 * spooled=true), byte-identical, each exactly once, in increasing sequence
 * order. Messages that were in flight at a kill may or may not be there. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agentd.h"
#include "spop_client.h"
#include "tap.h"

#define NCLIENTS    4
#define PER_CLIENT  12000       /* NOTIFYs each client sends in all */
#define WINDOW      8           /* NOTIFYs in flight per connection */
#define KILLS       24

static atomic_uint cur_port;    /* port of the running agent, 0 while down */
static atomic_int  clients_done;

struct client {
	unsigned id;
	pthread_t th;
	unsigned char *acked;        /* by message number: 1 spooled, 2 not spooled */
	unsigned sent, acks, reconnects, not_spooled;
};

/* The payload of message n of client c: deterministic, 40..1500 bytes. */
static size_t payload(unsigned c, unsigned n, char *out, size_t cap)
{
	size_t len = 40 + (size_t)((n * 2654435761u + c * 40503u) % 1460);
	size_t i;
	uint32_t x = n * 2246822519u ^ c;

	if (len > cap)
		len = cap;
	for (i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		out[i] = "abcdefghijklmnopqrstuvwxyz0123456789-_"[(x >> 16) % 38];
	}
	return len;
}

static size_t build(uint8_t *out, size_t cap, unsigned c, unsigned n)
{
	char uid[32], body[1600];
	size_t blen = payload(c, n, body, sizeof body);
	spc_arg args[2];
	spc_msg m = { "cap-req", args, 2 };

	snprintf(uid, sizeof uid, "c%u-%u", c, n);
	args[0].name = "uid";
	args[0].val = spc_cstr(uid);
	args[1].name = "body";
	args[1].val = spc_str(SPOP_T_BINARY, body, blen);
	/* sid = message number + 1 (sid 0 is legal too, but keep 0 unused). */
	return spc_build_notify(out, cap, (uint64_t)n + 1, 1, &m, 1);
}

/* 1 spooled, 2 not spooled, 0 malformed ACK. */
static int ack_spooled(const spc_frame *fr)
{
	spop_iter it;
	spop_action a;

	spop_iter_init(&it, fr->f.payload, fr->f.payload_len);
	while (spop_action_next(&it, &a) == 1)
		if (a.type == SPOP_ACT_SET_VAR && a.value.type == SPOP_T_BOOL)
			return a.value.v.b ? 1 : 2;
	return 0;
}

static int session(struct client *cl, unsigned *next)
{
	uint8_t hello[256], buf[2048];
	unsigned port = atomic_load(&cur_port), inflight = 0;
	spc_hello_opts ho = spc_hello_default(16380, "pipelining");
	spc_conn c;
	spc_frame fr;
	size_t n;

	if (!port || spc_connect_tcp(&c, "127.0.0.1", port, 1000) < 0)
		return -1;
	n = spc_build_hello(hello, sizeof hello, &ho);
	if (spc_send(&c, hello, n, 2000) < 0 || spc_read_frame(&c, &fr, 3000) != SPC_FRAME ||
	    fr.f.type != SPOP_FRAME_AGENT_HELLO) {
		spc_close(&c);
		return -1;
	}
	for (;;) {
		while (inflight < WINDOW && *next < PER_CLIENT) {
			n = build(buf, sizeof buf, cl->id, *next);
			if (spc_send(&c, buf, n, 2000) < 0)
				goto out;
			(*next)++;
			cl->sent++;
			inflight++;
		}
		if (inflight == 0)
			break;
		if (spc_read_frame(&c, &fr, 3000) != SPC_FRAME || fr.f.type != SPOP_FRAME_ACK)
			goto out;
		if (fr.f.sid >= 1 && fr.f.sid <= PER_CLIENT) {
			int r = ack_spooled(&fr);

			cl->acked[fr.f.sid - 1] = (unsigned char)(r ? r : 3);
			cl->acks++;
			if (r != 1)
				cl->not_spooled++;
		}
		inflight--;
		usleep(50);
	}
out:
	spc_close(&c);
	return 0;
}

static void *client_run(void *arg)
{
	struct client *cl = arg;
	unsigned next = 0;

	while (next < PER_CLIENT) {
		if (session(cl, &next) < 0)
			usleep(20000);          /* agent down: wait for the restart */
		cl->reconnects++;
	}
	atomic_fetch_add(&clients_done, 1);
	return NULL;
}

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 8) & 0xffffff;
}

/* Extracts the JSON string value of "key" from a dump line (values here
 * are plain ASCII without escapes). */
static int field(const char *line, const char *key, const char **v, size_t *len)
{
	char pat[32];
	const char *p, *e;

	snprintf(pat, sizeof pat, "\"%s\":\"", key);
	p = strstr(line, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	e = strchr(p, '"');
	if (!e)
		return -1;
	*v = p;
	*len = (size_t)(e - p);
	return 0;
}

int main(int argc, char **argv)
{
	char tmp[] = "/tmp/t-kill9-XXXXXX", exe[512], cli[512], log[600], spooldir[600],
	     dump[600], cmd[2048], line[8192];
	const char *args[] = { "--spool", spooldir, "--threads", "2", "--log-level", "warn", NULL };
	struct client cl[NCLIENTS];
	unsigned seed = (unsigned)time(NULL), kills = 0, i, missing = 0, wrong = 0, dups = 0,
	         spooled_acks = 0, unknown = 0;
	unsigned char *seen[NCLIENTS];
	unsigned long long last_seq = 0, lines = 0;
	int order_ok = 1, rc;
	agentd d;
	char err[512];
	FILE *f;

	if (argc > 1)
		seed = (unsigned)strtoul(argv[1], NULL, 10);
	tap_diag("seed %u (rerun with: %s %u)", seed, argv[0], seed);
	if (!mkdtemp(tmp)) {
		printf("1..0 # SKIP cannot create a temporary directory\n");
		return 0;
	}
	agentd_exe(argv[0], exe, sizeof exe);
	agentd_cli_exe(exe, cli, sizeof cli);
	snprintf(spooldir, sizeof spooldir, "%s/spool", tmp);
	snprintf(log, sizeof log, "%s/agent.log", tmp);
	snprintf(dump, sizeof dump, "%s/dump.ndjson", tmp);

	if (agentd_start(&d, exe, log, args, 10000, err, sizeof err) < 0) {
		tap_ok(0, "spoolcapd starts: %s", err);
		return tap_done(0);
	}
	atomic_store(&cur_port, d.port);
	for (i = 0; i < NCLIENTS; i++) {
		memset(&cl[i], 0, sizeof cl[i]);
		cl[i].id = i;
		cl[i].acked = calloc(PER_CLIENT, 1);
		pthread_create(&cl[i].th, NULL, client_run, &cl[i]);
	}
	/* Kill at random moments while the clients send. */
	while (kills < KILLS || atomic_load(&clients_done) < NCLIENTS) {
		usleep(50000 + rnd(&seed) % 300000);
		if (kills >= KILLS)
			continue;
		atomic_store(&cur_port, 0);
		kill(d.pid, SIGKILL);
		agentd_wait(&d, 5000);
		kills++;
		if (agentd_start(&d, exe, log, args, 10000, err, sizeof err) < 0) {
			tap_ok(0, "spoolcapd restarts after kill %u: %s", kills, err);
			agentd_dump_log(&d, 20);
			return tap_done(0);
		}
		atomic_store(&cur_port, d.port);
	}
	for (i = 0; i < NCLIENTS; i++)
		pthread_join(cl[i].th, NULL);
	tap_ok(1, "the agent was SIGKILLed and restarted %u times under load", kills);
	rc = agentd_stop(&d, 10000);
	tap_is_int(rc, 0, "the last agent exits 0 on SIGTERM");

	for (i = 0; i < NCLIENTS; i++) {
		unsigned k;

		for (k = 0; k < PER_CLIENT; k++)
			if (cl[i].acked[k] == 1)
				spooled_acks++;
		tap_diag("client %u: %u sent, %u ACKed (%u not spooled), %u sessions", i,
		         cl[i].sent, cl[i].acks, cl[i].not_spooled, cl[i].reconnects);
	}
	tap_ok(spooled_acks > NCLIENTS * PER_CLIENT / 2,
	       "most messages were ACKed as spooled (%u)", spooled_acks);

	snprintf(cmd, sizeof cmd, "'%s' dump '%s' > '%s'", cli, spooldir, dump);
	rc = system(cmd);
	tap_ok(rc == 0, "spoolcap dump reads the spool after %u kills", kills);
	f = fopen(dump, "r");
	for (i = 0; i < NCLIENTS; i++)
		seen[i] = calloc(PER_CLIENT, 1);
	while (f && fgets(line, sizeof line, f)) {
		const char *uid, *body, *sq;
		size_t ulen, blen;
		unsigned c, n;
		unsigned long long seq;
		char want[1600];

		lines++;
		sq = strstr(line, "\"seq\":");
		seq = sq ? strtoull(sq + 6, NULL, 10) : 0;
		if (seq <= last_seq)
			order_ok = 0;
		last_seq = seq;
		if (field(line, "uid", &uid, &ulen) < 0 || field(line, "body", &body, &blen) < 0 ||
		    sscanf(uid, "c%u-%u", &c, &n) != 2 || c >= NCLIENTS || n >= PER_CLIENT) {
			unknown++;
			continue;
		}
		if (seen[c][n]++)
			dups++;
		if (payload(c, n, want, sizeof want) != blen || memcmp(want, body, blen) != 0)
			wrong++;
	}
	if (f)
		fclose(f);
	for (i = 0; i < NCLIENTS; i++) {
		unsigned k;

		for (k = 0; k < PER_CLIENT; k++)
			if (cl[i].acked[k] == 1 && !seen[i][k]) {
				if (missing < 10)
					tap_diag("ACKed as spooled but missing: c%u-%u", i, k);
				missing++;
			}
	}
	tap_diag("dump: %llu events", lines);
	tap_is_int(missing, 0, "every message ACKed as spooled is in the spool");
	tap_is_int(wrong, 0, "every spooled payload is byte-identical to what was sent");
	tap_is_int(dups, 0, "no message is stored twice");
	tap_is_int(unknown, 0, "nothing unknown is in the spool");
	tap_ok(order_ok, "sequence numbers increase across restarts (never reused)");

	agentd_cleanup_dir(tmp, tap_failed);
	for (i = 0; i < NCLIENTS; i++) {
		free(cl[i].acked);
		free(seen[i]);
	}
	return tap_done(0);
}
