/* t-diskfull.c -- a full spool or a full disk never stops the ACKs.
 *
 * 1. --max-size tiny, drop-newest: once full, NOTIFYs are still ACKed but
 *    with spooled=false, and the spool counts exactly those drops.
 * 2. --max-size tiny, drop-oldest: every ACK says spooled, the oldest
 *    records are evicted and counted, the newest are kept.
 * 3. A real full filesystem (a small tmpfs, mounted as root; SKIP where
 *    mounting is impossible): the agent keeps ACKing with spooled=false and
 *    counts disk_full drops; once space is freed it spools again by itself.
 * In every case each message ACKed as spooled is in `spoolcap dump` and
 * stored + counted drops = messages sent. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentd.h"
#include "spop_client.h"
#include "tap.h"

#define BODY 3000                /* incompressible bytes per message */

static char exe[512], cli[512];

struct run {
	agentd d;
	spc_conn c;
	unsigned char *acked;        /* by message number: 1 spooled, 2 not */
	unsigned n, cap, spooled, not_spooled;
};

static void body_of(unsigned n, uint8_t *out)
{
	uint64_t x = 0x9E3779B97F4A7C15ull * (n + 1);
	unsigned i;

	for (i = 0; i < BODY; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		out[i] = (uint8_t)x;
	}
}

static int run_start(struct run *r, const char *const *args, const char *log, unsigned cap)
{
	uint8_t buf[256];
	spc_hello_opts ho = spc_hello_default(65532, "pipelining");
	spc_frame fr;
	char err[512];
	size_t n;

	memset(r, 0, sizeof *r);
	r->cap = cap;
	r->acked = calloc(cap, 1);
	if (agentd_start(&r->d, exe, log, args, 10000, err, sizeof err) < 0) {
		tap_diag("spoolcapd: %s", err);
		return -1;
	}
	if (spc_connect_tcp(&r->c, "127.0.0.1", r->d.port, 2000) < 0)
		return -1;
	n = spc_build_hello(buf, sizeof buf, &ho);
	if (spc_send(&r->c, buf, n, 2000) < 0 || spc_read_frame(&r->c, &fr, 5000) != SPC_FRAME)
		return -1;
	return 0;
}

/* Sends message r->n and waits for its ACK: 1 spooled, 2 not, -1 error. */
static int send_one(struct run *r)
{
	uint8_t buf[BODY + 256], body[BODY];
	char uid[32];
	spc_arg args[2];
	spc_msg m = { "cap-req", args, 2 };
	spc_frame fr;
	spop_iter it;
	spop_action a;
	size_t len;
	int res = 0;

	if (r->n >= r->cap)
		return -1;
	body_of(r->n, body);
	snprintf(uid, sizeof uid, "m-%u", r->n);
	args[0].name = "uid";
	args[0].val = spc_cstr(uid);
	args[1].name = "body";
	args[1].val = spc_str(SPOP_T_BINARY, body, BODY);
	len = spc_build_notify(buf, sizeof buf, r->n + 1, 1, &m, 1);
	if (spc_send(&r->c, buf, len, 5000) < 0 ||
	    spc_read_frame(&r->c, &fr, 10000) != SPC_FRAME || fr.f.type != SPOP_FRAME_ACK ||
	    fr.f.sid != r->n + 1)
		return -1;
	spop_iter_init(&it, fr.f.payload, fr.f.payload_len);
	while (spop_action_next(&it, &a) == 1)
		if (a.type == SPOP_ACT_SET_VAR && a.value.type == SPOP_T_BOOL)
			res = a.value.v.b ? 1 : 2;
	if (!res)
		return -1;
	r->acked[r->n++] = (unsigned char)res;
	if (res == 1)
		r->spooled++;
	else
		r->not_spooled++;
	return res;
}

/* Reads one number out of `spoolcap stat --json`. */
static long long stat_num(const char *dir, const char *key)
{
	char cmd[1200], out[8192], pat[64];
	FILE *p;
	size_t n;
	const char *s;

	snprintf(cmd, sizeof cmd, "'%s' stat --json '%s'", cli, dir);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	n = fread(out, 1, sizeof out - 1, p);
	pclose(p);
	out[n] = 0;
	snprintf(pat, sizeof pat, "\"%s\":", key);
	s = strstr(out, pat);
	return s ? strtoll(s + strlen(pat), NULL, 10) : -1;
}

/* Every message ACKed as spooled is in the dump; returns how many are
 * missing (and counts the dump's events). */
static unsigned check_dump(const char *dir, const struct run *r, unsigned *events)
{
	char cmd[1200], line[16384];
	unsigned char *seen = calloc(r->cap, 1);
	unsigned missing = 0, i, k;
	FILE *p;

	*events = 0;
	snprintf(cmd, sizeof cmd, "'%s' dump '%s'", cli, dir);
	p = popen(cmd, "r");
	while (p && fgets(line, sizeof line, p)) {
		const char *u = strstr(line, "\"uid\":\"m-");

		(*events)++;
		if (u && sscanf(u + 9, "%u", &k) == 1 && k < r->cap)
			seen[k] = 1;
	}
	if (p)
		pclose(p);
	for (i = 0; i < r->n; i++)
		if (r->acked[i] == 1 && !seen[i])
			missing++;
	free(seen);
	return missing;
}

static void test_policy(const char *tmp, const char *policy)
{
	char dir[600], log[600];
	const char *args[] = { "--spool", dir, "--max-size", "1M", "--full-policy", policy,
	                       "--compression-level", "1", "--dictionary", "off",
	                       "--log-level", "warn", NULL };
	struct run r;
	unsigned events, i;
	int newest = !strcmp(policy, "drop-newest");
	long long dropped, records;

	snprintf(dir, sizeof dir, "%s/spool-%s", tmp, policy);
	snprintf(log, sizeof log, "%s/agent-%s.log", tmp, policy);
	if (run_start(&r, args, log, 2000) < 0) {
		tap_ok(0, "%s: agent starts", policy);
		return;
	}
	for (i = 0; i < 1000; i++)
		if (send_one(&r) < 0)
			break;
	tap_is_int(r.n, 1000, "%s: 1000 NOTIFYs ACKed into a 1 MiB spool", policy);
	spc_close(&r.c);
	tap_is_int(agentd_stop(&r.d, 10000), 0, "%s: agent exits 0", policy);
	records = stat_num(dir, "records");
	dropped = stat_num(dir, newest ? "full" : "evicted");
	if (newest) {
		tap_ok(r.not_spooled > 0 && r.spooled > 0,
		       "%s: ACKs say spooled until full, then not spooled (%u / %u)", policy,
		       r.spooled, r.not_spooled);
		tap_is_int(dropped, r.not_spooled, "%s: drops counted as 'full' = ACKs saying not spooled",
		           policy);
		tap_is_int(records, r.spooled, "%s: records stored = ACKs saying spooled", policy);
		tap_is_int(check_dump(dir, &r, &events), 0, "%s: every message ACKed as spooled is in the dump",
		           policy);
	} else {
		tap_is_int(r.not_spooled, 0, "%s: every ACK says spooled", policy);
		tap_ok(dropped > 0, "%s: the oldest records were evicted and counted (%lld)", policy,
		       dropped);
		tap_is_int(records + dropped, 1000, "%s: records stored + evicted = messages sent", policy);
		check_dump(dir, &r, &events);
		{
			/* The survivors are the newest ones. */
			char cmd[1200], line[16384];
			FILE *p;
			unsigned first = 0;

			snprintf(cmd, sizeof cmd, "'%s' dump '%s' --limit 1", cli, dir);
			p = popen(cmd, "r");
			if (p && fgets(line, sizeof line, p)) {
				const char *u = strstr(line, "\"uid\":\"m-");
				if (u)
					sscanf(u + 9, "%u", &first);
			}
			if (p)
				pclose(p);
			tap_is_int(first, 1000 - records, "%s: the spool keeps the newest %lld messages",
			           policy, records);
		}
	}
	free(r.acked);
}

/* Fills the filesystem holding path until about `leave` bytes remain. */
static long long fs_fill(const char *path, long long leave)
{
	char buf[1 << 16];
	long long written = 0;
	struct statvfs vf;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		return -1;
	memset(buf, 0xA5, sizeof buf);
	while (statvfs(path, &vf) == 0 && (long long)(vf.f_bavail * vf.f_frsize) > leave &&
	       write(fd, buf, sizeof buf) == (ssize_t)sizeof buf)
		written += sizeof buf;
	close(fd);
	return written;
}

static void test_disk_full(const char *tmp)
{
	char mnt[600], dir[700], log[600], filler[700], cmd[1400];
	const char *args[] = { "--spool", dir, "--compression-level", "1", "--dictionary", "off",
	                       "--log-level", "info", NULL };
	struct run r;
	unsigned i, events, first_false = 0, back = 0;
	long long disk_full, records;

	snprintf(mnt, sizeof mnt, "%s/mnt", tmp);
	snprintf(dir, sizeof dir, "%s/spool", mnt);
	snprintf(filler, sizeof filler, "%s/filler", mnt);
	snprintf(log, sizeof log, "%s/agent-diskfull.log", tmp);
	mkdir(mnt, 0700);
	if (geteuid() != 0 || mount("tmpfs", mnt, "tmpfs", 0, "size=48m") != 0) {
		tap_skip(6, geteuid() != 0 ? "disk-full test needs root to mount a tmpfs"
		                           : "cannot mount a tmpfs here");
		return;
	}
	if (run_start(&r, args, log, 40000) < 0) {
		tap_ok(0, "disk-full: agent starts on a 48 MiB tmpfs");
		goto out;
	}
	/* Leave ~6 MiB free for the spool, then push until it is full. */
	fs_fill(filler, 6 << 20);
	for (i = 0; i < 20000; i++) {
		int res = send_one(&r);

		if (res < 0)
			break;
		if (res == 2 && !first_false)
			first_false = r.n;
		if (first_false && r.n - first_false >= 300)
			break;
	}
	tap_ok(first_false > 0, "disk-full: the agent keeps ACKing when the disk fills "
	       "(spooled=false from message %u on)", first_false);
	/* Free the space: the agent must spool again by itself. */
	unlink(filler);
	for (i = 0; i < 3000 && back < 50; i++) {
		int res = send_one(&r);

		if (res < 0)
			break;
		back = res == 1 ? back + 1 : 0;
	}
	tap_ok(back >= 50, "disk-full: after space is freed, messages are spooled again");
	spc_close(&r.c);
	tap_is_int(agentd_stop(&r.d, 10000), 0, "disk-full: agent exits 0");
	disk_full = stat_num(dir, "disk_full");
	records = stat_num(dir, "records");
	tap_ok(disk_full + stat_num(dir, "full") >= r.not_spooled && disk_full > 0,
	       "disk-full: drops counted as disk_full (%lld) cover the ACKs saying not spooled (%u)",
	       disk_full, r.not_spooled);
	tap_is_int(records, r.spooled, "disk-full: records stored = ACKs saying spooled");
	tap_is_int(check_dump(dir, &r, &events), 0,
	           "disk-full: every message ACKed as spooled is in the dump");
	free(r.acked);
out:
	snprintf(cmd, sizeof cmd, "umount '%s'", mnt);
	if (system(cmd) != 0)
		tap_diag("could not unmount %s", mnt);
}

int main(int argc, char **argv)
{
	char tmp[] = "/tmp/t-diskfull-XXXXXX";

	(void)argc;
	if (!mkdtemp(tmp)) {
		printf("1..0 # SKIP cannot create a temporary directory\n");
		return 0;
	}
	agentd_exe(argv[0], exe, sizeof exe);
	agentd_cli_exe(exe, cli, sizeof cli);
	test_policy(tmp, "drop-newest");
	test_policy(tmp, "drop-oldest");
	test_disk_full(tmp);
	agentd_cleanup_dir(tmp, tap_failed);
	return tap_done(0);
}
