/* t-config.c -- spoolcapd's configuration (src/config.c through
 * include/spoolcap/config.h): defaults, every [agent], [spool] and [log] key
 * read from a real INI file, size and duration units, the exact error text
 * for bad values, unknown keys and sections, overlong lines, flags over the
 * file, the spooled variable's defaults, every [forward] key and flag
 * (header-file reading, TLS paths checked at load time, the checks that
 * span several settings, header values kept out of --check), and that the
 * --check output loads back unchanged.
 *
 * It also keeps the documentation honest: every setting cfg_print knows
 * must be in this test's table, and every one of them must appear in
 * --help, in doc/spoolcapd.8 and in contrib/spoolcapd.conf, which must load
 * to exactly the defaults and pass `spoolcapd --check`. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spoolcap/config.h"
#include "spoolcap/log.h"
#include "spoolcap/spool.h"
#include "tap.h"

#ifndef TOP_SRCDIR
#define TOP_SRCDIR "."
#endif
#ifndef TOP_BUILDDIR
#define TOP_BUILDDIR "."
#endif

static char dir[200];           /* mkdtemp scratch directory */
static char path[240];          /* dir/t.ini, the file under test */
static const char *srcdir, *builddir;

/* Every setting: its [section] key and its flag (NULL: file only). The
 * documentation checks below walk this table; settings_cover_print()
 * fails when cfg_print shows a key missing here. */
static const struct {
	const char *section, *key, *flag;
} settings[] = {
	{ "agent", "listen",             "listen" },
	{ "agent", "threads",            "threads" },
	{ "agent", "max-frame-size",     "max-frame-size" },
	{ "agent", "max-connections",    "max-connections" },
	{ "agent", "hello-timeout",      "hello-timeout" },
	{ "agent", "idle-timeout",       "idle-timeout" },
	{ "agent", "spooled-var",        "spooled-var" },
	{ "spool", "dir",                "spool" },
	{ "spool", "max-size",           "max-size" },
	{ "spool", "full-policy",        "full-policy" },
	{ "spool", "durability",         "durability" },
	{ "spool", "sync-interval",      "sync-interval" },
	{ "spool", "compression-level",  "compression-level" },
	{ "spool", "dictionary",         "dictionary" },
	{ "spool", "dictionary-size",    "dictionary-size" },
	{ "spool", "dictionary-samples", "dictionary-samples" },
	{ "spool", "commit-max-records", "commit-max-records" },
	{ "spool", "commit-max-bytes",   "commit-max-bytes" },
	{ "spool", "commit-max-delay",   "commit-max-delay" },
	{ "spool", "queue-max-size",     "queue-max-size" },
	{ "spool", "retain",             "retain" },
	{ "spool", "retain-size",        "retain-size" },
	{ "spool", "dlq-max-size",       "dlq-max-size" },
	{ "forward", "url",              "forward" },
	{ "forward", "batch-events",     "forward-batch-events" },
	{ "forward", "batch-bytes",      "forward-batch-bytes" },
	{ "forward", "linger",           "forward-linger" },
	{ "forward", "max-inflight",     "forward-max-inflight" },
	{ "forward", "connect-timeout",  "forward-connect-timeout" },
	{ "forward", "timeout",          "forward-timeout" },
	{ "forward", "low-speed-limit",  "forward-low-speed-limit" },
	{ "forward", "low-speed-time",   "forward-low-speed-time" },
	{ "forward", "backoff-base",     "forward-backoff-base" },
	{ "forward", "backoff-cap",      "forward-backoff-cap" },
	{ "forward", "compression",      "forward-compression" },
	{ "forward", "compression-level", "forward-compression-level" },
	{ "forward", "header",           "forward-header" },
	{ "forward", "header-file",      "forward-header-file" },
	{ "forward", "ca-file",          "forward-ca-file" },
	{ "forward", "ca-dir",           "forward-ca-dir" },
	{ "forward", "client-cert",      "forward-client-cert" },
	{ "forward", "client-key",       "forward-client-key" },
	{ "forward", "insecure",         "forward-insecure" },
	{ "forward", "persistent-5xx-attempts", "forward-persistent-5xx-attempts" },
	{ "forward", "persistent-5xx-age", "forward-persistent-5xx-age" },
	{ "forward", "stop-timeout",     "forward-stop-timeout" },
	{ "capture", "redact-headers",   "redact-headers" },
	{ "capture", "header-action",    "header-action" },
	{ "capture", "hash-key-file",    "hash-key-file" },
	{ "capture", "header-args",      "header-args" },
	{ "capture", "body-args",        "body-args" },
	{ "capture", "body-max",         "body-max" },
	{ "capture", "body-drop",        "body-drop" },
	{ "log",   "level",              "log-level" },
	{ "log",   "target",             "log-target" },
	{ "log",   "facility",           "log-facility" },
	{ "log",   "rate-limit",         "log-rate-limit" },
	{ "metrics", "listen",           "metrics-listen" },
};
#define NSETTINGS (sizeof settings / sizeof settings[0])

/* ---- helpers ---- */

static void write_file(const char *p, const char *text)
{
	FILE *f = fopen(p, "w");

	if (!f) {
		printf("Bail out! cannot write %s: %s\n", p, strerror(errno));
		exit(1);
	}
	fputs(text, f);
	fclose(f);
}

static char *read_file(const char *p)
{
	FILE *f = fopen(p, "r");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;

	if (!f)
		return NULL;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *b = realloc(buf, cap = cap ? cap * 2 : 8192);
			if (!b) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = b;
		}
		n = fread(buf + len, 1, 4096, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/* cfg_init + the INI text through cfg_load_file. Returns its result. */
static int load_text(cfg *c, const char *text, char *err, size_t errlen)
{
	cfg_init(c);
	write_file(path, text);
	err[0] = '\0';
	return cfg_load_file(c, path, err, errlen);
}

/* cfg_init + cfg_load(argv). argv is NULL-terminated; argv[0] is added. */
static int load_argv(cfg *c, const char *const *args, char *err, size_t errlen)
{
	char *argv[64];
	int argc = 0;

	argv[argc++] = (char *)"spoolcapd";
	while (*args && argc < 63)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	cfg_init(c);
	err[0] = '\0';
	return cfg_load(c, argc, argv, err, errlen);
}

/* cfg_print into a malloc'd string. */
static char *print_str(const cfg *c)
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

/* Text after the first line (cfg_print's first line names the file). */
static const char *body(const char *s)
{
	const char *nl = s ? strchr(s, '\n') : NULL;
	return nl ? nl + 1 : "";
}

/* The exact error for line `line` of the file under test. */
static void is_err(const char *got, int line, const char *msg, const char *what)
{
	char want[1024];

	snprintf(want, sizeof want, "%s:%d: %s", path, line, msg);
	if (!tap_ok(strcmp(got, want) == 0, "%s", what)) {
		tap_diag("  got:  %s", got);
		tap_diag("  want: %s", want);
	}
}

static int near(double a, double b)
{
	return a - b < 1e-9 && b - a < 1e-9;
}

/* Runs a command; returns its exit status (or -1), stdout+stderr in out. */
static int run(const char *cmd, char *out, size_t cap)
{
	char full[2048];
	FILE *p;
	size_t n = 0;
	int st;

	snprintf(full, sizeof full, "%s 2>&1", cmd);
	p = popen(full, "r");
	if (!p)
		return -1;
	if (out && cap) {
		n = fread(out, 1, cap - 1, p);
		out[n] = '\0';
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* "max-size" -> "max\-size", as written in roff source. */
static void roff_escape(char *out, size_t len, const char *s)
{
	size_t o = 0;

	for (; *s && o + 3 < len; s++) {
		if (*s == '-')
			out[o++] = '\\';
		out[o++] = *s;
	}
	out[o] = '\0';
}

/* ---- the tests ---- */

static void test_defaults(void)
{
	char err[512];
	const char *none[] = { NULL };
	cfg c;

	cfg_init(&c);
	tap_is_int(c.nlisten, 0, "cfg_init: no listen address yet (cfg_load adds the default)");
	tap_is_int(c.threads, 0, "default threads 0 (one per CPU)");
	tap_is_int(c.max_frame_size, 1u << 20, "default max-frame-size 1M");
	tap_is_int(c.max_connections, 4096, "default max-connections 4096");
	tap_ok(near(c.hello_timeout, 5.0), "default hello-timeout 5s");
	tap_ok(near(c.idle_timeout, 0), "default idle-timeout off");
	tap_ok(c.spooled_var == NULL && !c.spooled_var_set, "spooled-var not set explicitly");
	tap_is_int(c.log_level, LOGL_INFO, "default log level info");
	tap_ok(c.spool_dir == NULL, "default spool dir (NULL = " CFG_DEFAULT_SPOOL_DIR ")");
	tap_is_int(c.max_size, 1ull << 30, "default max-size 1G");
	tap_is_int(c.full_policy, SPOOL_FULL_DROP_NEWEST, "default full-policy drop-newest");
	tap_is_int(c.durability, CFG_DUR_PROCESS, "default durability process");
	tap_ok(near(c.sync_interval, 1.0), "default sync-interval 1s");
	tap_is_int(c.compression_level, 3, "default compression-level 3");
	tap_is_int(c.dictionary, 1, "default dictionary on");
	tap_is_int(c.dictionary_size, 64 << 10, "default dictionary-size 64K");
	tap_is_int(c.dictionary_samples, 4000, "default dictionary-samples 4000");
	tap_is_int(c.commit_max_records, 1024, "default commit-max-records 1024");
	tap_is_int(c.commit_max_bytes, 4 << 20, "default commit-max-bytes 4M");
	tap_ok(near(c.commit_max_delay, 0), "default commit-max-delay 0");
	tap_is_int(c.queue_max_size, 64 << 20, "default queue-max-size 64M");
	tap_ok(near(c.retain, 0) && c.retain_size == 0, "default retain off, retain-size off");
	tap_is_int(c.dlq_max_size, 0, "default dlq-max-size 0 (= max-size / 4)");
	tap_ok(!c.config_file && !c.foreground && !c.check && !c.show_help &&
	       !c.show_version, "no file, no mode flags");
	tap_ok(c.forward_url == NULL && !cfg_forwarding(&c), "default: no forward URL "
	       "(spool only)");
	tap_is_int(c.fwd_batch_events, 500, "default forward batch-events 500");
	tap_is_int(c.fwd_batch_bytes, 4 << 20, "default forward batch-bytes 4M");
	tap_ok(near(c.fwd_linger, 0.1), "default forward linger 100ms");
	tap_is_int(c.fwd_max_inflight, 2, "default forward max-inflight 2");
	tap_ok(near(c.fwd_connect_timeout, 5), "default forward connect-timeout 5s");
	tap_ok(near(c.fwd_timeout, 30), "default forward timeout 30s");
	tap_is_int(c.fwd_low_speed_limit, 1, "default forward low-speed-limit 1 byte/s");
	tap_ok(near(c.fwd_low_speed_time, 30), "default forward low-speed-time 30s");
	tap_ok(near(c.fwd_backoff_base, 0.5) && near(c.fwd_backoff_cap, 60),
	       "default forward backoff-base 500ms, backoff-cap 60s");
	tap_ok(c.fwd_compression == REPLAY_COMPRESS_NONE && c.fwd_compression_level == 0,
	       "default forward compression none, level 0");
	tap_ok(c.fwd_nheaders == 0 && !c.fwd_ca_file && !c.fwd_ca_dir && !c.fwd_client_cert &&
	       !c.fwd_client_key && !c.fwd_insecure, "default: no headers, system CAs, "
	       "no client certificate, verification on");
	tap_ok(c.fwd_p5xx_attempts == 20 && near(c.fwd_p5xx_age, 600),
	       "default persistent-5xx-attempts 20, persistent-5xx-age 10m");
	tap_ok(near(c.fwd_stop_timeout, 5), "default forward stop-timeout 5s");
	tap_ok(cfg_spooling(&c), "spooling on by default");
	tap_ok(cfg_spooled_var(&c) && strcmp(cfg_spooled_var(&c), "spooled") == 0,
	       "spooled var defaults to \"spooled\" with a spool");
	cfg_free(&c);

	tap_is_int(load_argv(&c, none, err, sizeof err), 0, "cfg_load with no arguments");
	tap_ok(c.nlisten == 1 && strcmp(c.listen[0], "127.0.0.1:12345") == 0,
	       "cfg_load adds the default listen address 127.0.0.1:12345");
	cfg_free(&c);

	tap_ok(strcmp(cfg_durability_name(CFG_DUR_PROCESS), "process") == 0 &&
	       strcmp(cfg_durability_name(CFG_DUR_RELAXED), "relaxed") == 0 &&
	       strcmp(cfg_durability_name(CFG_DUR_DURABLE), "durable") == 0 &&
	       strcmp(cfg_durability_name(CFG_DUR_RECEIPT), "receipt") == 0 &&
	       strcmp(cfg_durability_name(4), "?") == 0,
	       "cfg_durability_name");
}

static void test_parse_size(void)
{
	static const struct {
		const char *in;
		uint64_t want;
	} good[] = {
		{ "0", 0 }, { "16380", 16380 }, { "100B", 100 }, { "100b", 100 },
		{ "64K", 64 << 10 }, { "64k", 64 << 10 }, { "64KB", 64 << 10 },
		{ "64KiB", 64 << 10 }, { "64kib", 64 << 10 }, { "64Ki", 64 << 10 },
		{ "1M", 1 << 20 }, { "1m", 1 << 20 }, { "1MiB", 1 << 20 },
		{ "1536K", 1536 << 10 }, { "1G", 1ull << 30 }, { "1024G", 1ull << 40 },
		{ "17179869183G", 17179869183ull << 30 },
	};
	static const struct {
		const char *in, *msg;
	} bad[] = {
		{ "", "'' is not a size (examples: 16380, 64K, 1M)" },
		{ "K", "'K' is not a size (examples: 16380, 64K, 1M)" },
		{ "-1", "'-1' is not a size (examples: 16380, 64K, 1M)" },
		{ " 1", "' 1' is not a size (examples: 16380, 64K, 1M)" },
		{ "1.5M", "'1.5M': sizes are whole numbers (write 1536K, not 1.5M)" },
		{ "1T", "'1T': unknown size unit (use K, M or G, powers of 1024)" },
		{ "1KK", "'1KK': unknown size unit (use K, M or G, powers of 1024)" },
		{ "1 K", "'1 K': unknown size unit (use K, M or G, powers of 1024)" },
		{ "1iB", "'1iB': unknown size unit (use K, M or G, powers of 1024)" },
		{ "20000000000000000000", "'20000000000000000000' is too large" },
		{ "17179869184G", "'17179869184G' is too large" },
		{ "123456789012345678901234567890123", "'123456789012345678901234567890123' "
		  "is not a size (examples: 16380, 64K, 1M)" },
	};
	char err[256];
	uint64_t v;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		v = 12345;
		err[0] = '\0';
		if (!tap_ok(cfg_parse_size(good[i].in, &v, err, sizeof err) == 0 &&
		            v == good[i].want, "size '%s' = %llu", good[i].in,
		            (unsigned long long)good[i].want))
			tap_diag("  got %llu (%s)", (unsigned long long)v, err);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		v = 777;
		if (!tap_ok(cfg_parse_size(bad[i].in, &v, err, sizeof err) < 0 &&
		            strcmp(err, bad[i].msg) == 0 && v == 777,
		            "size '%s' refused: %s", bad[i].in, bad[i].msg))
			tap_diag("  got: %s", err);
	}
}

static void test_parse_duration(void)
{
	static const struct {
		const char *in;
		double want;
	} good[] = {
		{ "0", 0 }, { "5", 5 }, { "5s", 5 }, { "1.5s", 1.5 }, { ".5s", 0.5 },
		{ "500ms", 0.5 }, { "1ms", 0.001 }, { "0.5ms", 0.0005 }, { "2m", 120 },
		{ "1h", 3600 }, { "1.5h", 5400 }, { "24h", 86400 },
	};
	static const struct {
		const char *in, *msg;
	} bad[] = {
		{ "", "'' is not a duration (examples: 5s, 500ms, 2m)" },
		{ "s", "'s' is not a duration (examples: 5s, 500ms, 2m)" },
		{ "-1s", "'-1s' is not a duration (examples: 5s, 500ms, 2m)" },
		{ "inf", "'inf' is not a duration (examples: 5s, 500ms, 2m)" },
		{ "nan", "'nan' is not a duration (examples: 5s, 500ms, 2m)" },
		{ "1.2.3s", "'1.2.3s' is not a duration (examples: 5s, 500ms, 2m)" },
		{ "1e3", "'1e3' is not a duration (examples: 5s, 500ms, 2m)" },
		{ "0x10", "'0x10' is not a duration (examples: 5s, 500ms, 2m)" },
		{ "5d", "'5d': unknown duration unit (use ms, s, m or h)" },
		{ "5S", "'5S': unknown duration unit (use ms, s, m or h)" },
		{ "5 s", "'5 s': unknown duration unit (use ms, s, m or h)" },
		{ "5sec", "'5sec': unknown duration unit (use ms, s, m or h)" },
	};
	char err[256];
	double d;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		d = -1;
		err[0] = '\0';
		if (!tap_ok(cfg_parse_duration(good[i].in, &d, err, sizeof err) == 0 &&
		            near(d, good[i].want), "duration '%s' = %g s", good[i].in,
		            good[i].want))
			tap_diag("  got %g (%s)", d, err);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		if (!tap_ok(cfg_parse_duration(bad[i].in, &d, err, sizeof err) < 0 &&
		            strcmp(err, bad[i].msg) == 0,
		            "duration '%s' refused: %s", bad[i].in, bad[i].msg))
			tap_diag("  got: %s", err);
	}
}

static void test_parse_uint(void)
{
	char err[256];
	uint64_t v;

	tap_ok(cfg_parse_uint("0", &v, err, sizeof err) == 0 && v == 0, "uint 0");
	tap_ok(cfg_parse_uint("18446744073709551600", &v, err, sizeof err) == 0 &&
	       v == 18446744073709551600ull, "uint near 2^64");
	tap_ok(cfg_parse_uint("", &v, err, sizeof err) < 0 &&
	       strcmp(err, "empty value, expected a number") == 0, "uint '' refused");
	tap_ok(cfg_parse_uint("+1", &v, err, sizeof err) < 0 &&
	       strcmp(err, "'+1' is not a number") == 0, "uint '+1' refused");
	tap_ok(cfg_parse_uint("99999999999999999999", &v, err, sizeof err) < 0 &&
	       strcmp(err, "'99999999999999999999' is too large") == 0,
	       "uint above 2^64 refused");
}

/* A file that sets every key to something other than its default. */
static const char full_file[] =
	"# every key, none at its default\n"
	"; both comment styles\n"
	"[agent]\n"
	"listen = 127.0.0.1:1001 [::1]:1002\n"
	"listen = unix:/tmp/spoolcap-t-config.sock\n"
	"threads = 3\n"
	"max-frame-size = 64K\n"
	"max-connections = 10\n"
	"hello-timeout = 250ms\n"
	"idle-timeout = 2m\n"
	"spooled-var = cap_ok.v2\n"
	"\n"
	"[spool]\n"
	"dir = /srv/spool ; an inline comment after ' ;'\n"
	"max-size = 2G\n"
	"full-policy = drop-oldest\n"
	"durability = Durable\n"
	"sync-interval = 250ms\n"
	"compression-level = 19\n"
	"dictionary = off\n"
	"dictionary-size = 128K\n"
	"dictionary-samples = 10\n"
	"commit-max-records = 100000\n"
	"commit-max-bytes = 1G\n"
	"commit-max-delay = 2ms\n"
	"queue-max-size = 1M\n"
	"retain = 1h\n"
	"retain-size = 10G\n"
	"dlq-max-size = 16M\n"
	"\n"
	"[log]\n"
	"level = warning\n";

static void test_file_every_key(void)
{
	char err[512];
	cfg c;

	tap_is_int(load_text(&c, full_file, err, sizeof err), 0, "a file setting every key loads");
	if (err[0])
		tap_diag("  %s", err);
	tap_ok(c.nlisten == 3 && strcmp(c.listen[0], "127.0.0.1:1001") == 0 &&
	       strcmp(c.listen[1], "[::1]:1002") == 0 &&
	       strcmp(c.listen[2], "unix:/tmp/spoolcap-t-config.sock") == 0,
	       "[agent] listen: two on one line, then a repeated key");
	tap_is_int(c.threads, 3, "[agent] threads");
	tap_is_int(c.max_frame_size, 65536, "[agent] max-frame-size 64K");
	tap_is_int(c.max_connections, 10, "[agent] max-connections");
	tap_ok(near(c.hello_timeout, 0.25), "[agent] hello-timeout 250ms");
	tap_ok(near(c.idle_timeout, 120), "[agent] idle-timeout 2m");
	tap_ok(c.spooled_var && strcmp(c.spooled_var, "cap_ok.v2") == 0 && c.spooled_var_set,
	       "[agent] spooled-var");
	tap_ok(c.spool_dir && strcmp(c.spool_dir, "/srv/spool") == 0,
	       "[spool] dir (inline ';' comment stripped)");
	tap_is_int(c.max_size, 2ull << 30, "[spool] max-size 2G");
	tap_is_int(c.full_policy, SPOOL_FULL_DROP_OLDEST, "[spool] full-policy drop-oldest");
	tap_is_int(c.durability, CFG_DUR_DURABLE, "[spool] durability (case-insensitive)");
	tap_ok(near(c.sync_interval, 0.25), "[spool] sync-interval 250ms");
	tap_is_int(c.compression_level, 19, "[spool] compression-level 19");
	tap_is_int(c.dictionary, 0, "[spool] dictionary off");
	tap_is_int(c.dictionary_size, 128 << 10, "[spool] dictionary-size 128K");
	tap_is_int(c.dictionary_samples, 10, "[spool] dictionary-samples 10");
	tap_is_int(c.commit_max_records, 100000, "[spool] commit-max-records 100000");
	tap_is_int(c.commit_max_bytes, 1ull << 30, "[spool] commit-max-bytes 1G");
	tap_ok(near(c.commit_max_delay, 0.002), "[spool] commit-max-delay 2ms");
	tap_is_int(c.queue_max_size, 1 << 20, "[spool] queue-max-size 1M");
	tap_ok(near(c.retain, 3600), "[spool] retain 1h");
	tap_is_int(c.retain_size, 10ull << 30, "[spool] retain-size 10G");
	tap_is_int(c.dlq_max_size, 16 << 20, "[spool] dlq-max-size 16M");
	tap_is_int(c.log_level, LOGL_WARN, "[log] level warning = warn");
	cfg_free(&c);
}

/* Other spellings each key accepts. */
static void test_file_alternatives(void)
{
	static const struct {
		const char *text, *what;
	} ok[] = {
		{ "[agent]\nthreads = auto\n", "threads = auto" },
		{ "[agent]\nthreads = AUTO\n", "threads = AUTO" },
		{ "[agent]\nthreads = 256\n", "threads = 256 (the most)" },
		{ "[agent]\nmax-frame-size = 256\n", "max-frame-size = 256 (the least)" },
		{ "[agent]\nmax-frame-size = 16M\n", "max-frame-size = 16M (the most)" },
		{ "[agent]\nmax-connections = 1000000\n", "max-connections = 1000000" },
		{ "[agent]\nhello-timeout = 1ms\n", "hello-timeout = 1ms" },
		{ "[agent]\nhello-timeout = 1h\n", "hello-timeout = 1h" },
		{ "[agent]\nidle-timeout = off\n", "idle-timeout = off" },
		{ "[agent]\nidle-timeout = 24h\n", "idle-timeout = 24h" },
		{ "[spool]\ndir = none\n", "dir = none" },
		{ "[spool]\nmax-size = 1M\n", "max-size = 1M (the least)" },
		{ "[spool]\nmax-size = 1048576G\n", "max-size = 1P (the most)" },
		{ "[spool]\nsync-interval = 10ms\n", "sync-interval = 10ms" },
		{ "[spool]\ncompression-level = off\n", "compression-level = off" },
		{ "[spool]\ncompression-level = 0\n", "compression-level = 0" },
		{ "[spool]\ndictionary = no\n", "dictionary = no" },
		{ "[spool]\ndictionary = TRUE\n", "dictionary = TRUE" },
		{ "[spool]\ndictionary = 1\n", "dictionary = 1" },
		{ "[spool]\ncommit-max-delay = 1s\n", "commit-max-delay = 1s (the most)" },
		{ "[spool]\nqueue-max-size = 1024G\n", "queue-max-size = 1T (the most)" },
		{ "[spool]\nretain = off\nretain-size = off\n", "retain = off, retain-size = off" },
		{ "[spool]\ndlq-max-size = 0\n", "dlq-max-size = 0" },
		{ "[log]\nlevel = DEBUG\n", "level = DEBUG" },
		{ "\xEF\xBB\xBF[agent]\r\nthreads = 2\r\n", "UTF-8 BOM and CRLF line ends" },
		{ "[agent]\nthreads : 2\n", "key : value" },
		{ "[agent]\n\tthreads = 2\n", "an indented first key" },
		{ "[agent]\n[spool]\n[agent]\nthreads = 2\n", "sections repeated" },
	};
	char err[512];
	cfg c;

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		if (!tap_ok(load_text(&c, ok[i].text, err, sizeof err) == 0, "accepted: %s",
		            ok[i].what))
			tap_diag("  %s", err);
		cfg_free(&c);
	}

	load_text(&c, "[agent]\nthreads = 3\nthreads = 5\n", err, sizeof err);
	tap_is_int(c.threads, 5, "a repeated key: the last one wins");
	cfg_free(&c);
	load_text(&c, "[agent]\nlisten = 127.0.0.1:1\n    127.0.0.1:2\n", err, sizeof err);
	tap_ok(c.nlisten == 2 && strcmp(c.listen[1], "127.0.0.1:2") == 0,
	       "an indented line continues listen");
	cfg_free(&c);
	load_text(&c, "[agent]\nspooled-var = none\n", err, sizeof err);
	tap_ok(c.spooled_var == NULL && c.spooled_var_set && cfg_spooled_var(&c) == NULL,
	       "spooled-var = none: no variable, even with a spool");
	cfg_free(&c);
	load_text(&c, "[agent]\nspooled-var =\n", err, sizeof err);
	tap_ok(cfg_spooled_var(&c) == NULL, "spooled-var = (empty): no variable");
	cfg_free(&c);
	load_text(&c, "[spool]\ndir = none\n", err, sizeof err);
	tap_ok(!cfg_spooling(&c) && cfg_spooled_var(&c) == NULL,
	       "dir = none: counting only, no spooled variable by default");
	cfg_free(&c);
	load_text(&c, "[spool]\ndir = none\n[agent]\nspooled-var = seen\n", err, sizeof err);
	tap_ok(cfg_spooled_var(&c) && strcmp(cfg_spooled_var(&c), "seen") == 0,
	       "dir = none with an explicit spooled-var keeps it");
	cfg_free(&c);
	load_text(&c, "[spool]\ncompression-level = 5\ncompression-level = off\n", err, sizeof err);
	tap_is_int(c.compression_level, 0, "compression-level = off is 0");
	cfg_free(&c);
}

/* Bad values: the message names FILE:LINE, the section and the key. */
static void test_file_bad_values(void)
{
	static const struct {
		const char *section, *key, *value, *msg;
	} bad[] = {
		{ "agent", "listen", "", "empty listen address" },
		{ "agent", "listen", "1.2.3.4", NULL },
		{ "agent", "listen", "host.example:80", NULL },
		{ "agent", "threads", "257", "257: at most 256 I/O threads (0 or auto = one per CPU)" },
		{ "agent", "threads", "two", "'two' is not a number" },
		{ "agent", "threads", "", "empty value, expected a number" },
		{ "agent", "max-frame-size", "255", "255: must be between 256 and 16777216 (16M)" },
		{ "agent", "max-frame-size", "17M", "17M: must be between 256 and 16777216 (16M)" },
		{ "agent", "max-connections", "0", "0: must be between 1 and 1000000" },
		{ "agent", "hello-timeout", "0", "0: must be between 1ms and 1h" },
		{ "agent", "hello-timeout", "2h", "2h: must be between 1ms and 1h" },
		{ "agent", "idle-timeout", "25h", "25h: at most one day (24h); 0 or off disables it" },
		{ "agent", "spooled-var", "a-b",
		  "'a-b': a variable name has only letters, digits, '_' and '.'" },
		{ "agent", "spooled-var", "abcdefghijabcdefghijabcdefghijabcdefghijX",
		  "'abcdefghijabcdefghijabcdefghijabcdefghijX': at most 40 characters "
		  "(HAProxy limits txn.<prefix>.<name> to 63)" },
		{ "log", "level", "verbose", "'verbose': expected error, warn, info or debug" },
		{ "spool", "dir", "", "empty directory (use none to count messages without "
		  "storing them)" },
		{ "spool", "max-size", "1023K", "1023K: must be between 1M and 1P" },
		{ "spool", "max-size", "1048577G", "1048577G: must be between 1M and 1P" },
		{ "spool", "full-policy", "drop", "'drop': expected drop-newest or drop-oldest" },
		{ "spool", "durability", "fsync",
		  "'fsync': expected process, relaxed, durable or receipt" },
		{ "spool", "sync-interval", "5ms", "5ms: must be between 10ms and 1h" },
		{ "spool", "sync-interval", "2h", "2h: must be between 10ms and 1h" },
		{ "spool", "compression-level", "20", "20: zstd levels go from 1 to 19 (0 or off "
		  "stores records uncompressed)" },
		{ "spool", "compression-level", "-1", "'-1' is not a number" },
		{ "spool", "dictionary", "maybe", "'maybe': expected on or off" },
		{ "spool", "dictionary-size", "512", "512: must be between 1K and 1M" },
		{ "spool", "dictionary-size", "2M", "2M: must be between 1K and 1M" },
		{ "spool", "dictionary-samples", "9", "9: must be between 10 and 1000000" },
		{ "spool", "commit-max-records", "0", "0: must be between 1 and 100000" },
		{ "spool", "commit-max-records", "100001", "100001: must be between 1 and 100000" },
		{ "spool", "commit-max-bytes", "2K", "2K: must be between 4K and 1G" },
		{ "spool", "commit-max-delay", "2s", "2s: at most 1s (every ACK waits for it)" },
		{ "spool", "queue-max-size", "512K", "512K: must be between 1M and 1T" },
		{ "spool", "retain", "5d", "'5d': unknown duration unit (use ms, s, m or h)" },
		{ "spool", "retain-size", "1.5G",
		  "'1.5G': sizes are whole numbers (write 1536K, not 1.5M)" },
		{ "spool", "dlq-max-size", "lots", "'lots' is not a size (examples: 16380, 64K, 1M)" },
		{ "forward", "url", "ftp://x/", "'ftp://x/': the URL must start with http:// or "
		  "https:// (for example https://events.example.com/ingest; none turns delivery off)" },
		{ "forward", "url", "127.0.0.1:8080", "'127.0.0.1:8080': the URL must start with "
		  "http:// or https:// (for example https://events.example.com/ingest; none turns "
		  "delivery off)" },
		{ "forward", "url", "ftp://u:pw@x/", "'ftp://u:<redacted>@x/': the URL must start "
		  "with http:// or https:// (for example https://events.example.com/ingest; none "
		  "turns delivery off)" },
		{ "forward", "url", "http://", "'http://': no host in the URL (for example "
		  "http://127.0.0.1:8080/events)" },
		{ "forward", "url", "https:///x", "'https:///x': no host in the URL (for example "
		  "http://127.0.0.1:8080/events)" },
		{ "forward", "url", "http://a b/", "the URL has a space or a control character at "
		  "offset 8 (percent-encode it: a space is %20)" },
		{ "forward", "url", "https://u:<redacted>@h/", "the URL holds <redacted>, as "
		  "spoolcapd --check prints a password: write the real URL (better: no password "
		  "in the URL; send credentials with header-file)" },
		{ "forward", "batch-events", "0", "0: must be between 1 and 1000000" },
		{ "forward", "batch-events", "1000001", "1000001: must be between 1 and 1000000" },
		{ "forward", "batch-events", "1K", "'1K' is not a number" },
		{ "forward", "batch-bytes", "1023", "1023: must be between 1K and 256M" },
		{ "forward", "batch-bytes", "257M", "257M: must be between 1K and 256M" },
		{ "forward", "batch-bytes", "4.5M",
		  "'4.5M': sizes are whole numbers (write 1536K, not 1.5M)" },
		{ "forward", "linger", "0", "0: must be between 1ms and 1m" },
		{ "forward", "linger", "61s", "61s: must be between 1ms and 1m" },
		{ "forward", "max-inflight", "0", "0: must be between 1 and 64" },
		{ "forward", "max-inflight", "65", "65: must be between 1 and 64" },
		{ "forward", "connect-timeout", "0", "0: must be between 1ms and 10m" },
		{ "forward", "connect-timeout", "11m", "11m: must be between 1ms and 10m" },
		{ "forward", "timeout", "0", "0: must be between 1ms and 1h" },
		{ "forward", "timeout", "2h", "2h: must be between 1ms and 1h" },
		{ "forward", "timeout", "30 s", "'30 s': unknown duration unit (use ms, s, m or h)" },
		{ "forward", "low-speed-limit", "0", "0: must be between 1 and 1G (bytes per second)" },
		{ "forward", "low-speed-limit", "2G", "2G: must be between 1 and 1G (bytes per second)" },
		{ "forward", "low-speed-time", "500ms", "500ms: must be between 1s and 1h" },
		{ "forward", "low-speed-time", "1.5s", "1.5s: libcurl counts it in whole seconds "
		  "(write 2s, not 1.5s)" },
		{ "forward", "backoff-base", "0", "0: must be between 1ms and 1h" },
		{ "forward", "backoff-cap", "61m", "61m: must be between 1ms and 1h" },
		{ "forward", "compression", "brotli", "'brotli': expected none, gzip or zstd" },
		{ "forward", "compression", "deflate", "'deflate': expected none, gzip or zstd" },
		{ "forward", "compression", "", "'': expected none, gzip or zstd" },
		{ "forward", "compression-level", "20", "20: levels go from 1 to 9 for gzip, 1 to 19 "
		  "for zstd (0 = the codec's default)" },
		{ "forward", "compression-level", "-1", "'-1' is not a number" },
		{ "forward", "header", "X-Token", "expected 'Name: value' (no ':' found)" },
		{ "forward", "header", "Authorization Bearer s3cret",
		  "expected 'Name: value' (no ':' found)" },
		{ "forward", "header", ": v", "expected 'Name: value' (no name before ':')" },
		{ "forward", "header", "X Token: v", "'X Token' is not a header name (letters, "
		  "digits and !#$%&'*+-.^_`|~ only; no space before ':')" },
		{ "forward", "header", "X-Token : v", "'X-Token ' is not a header name (letters, "
		  "digits and !#$%&'*+-.^_`|~ only; no space before ':')" },
		{ "forward", "header", "X-Token:", "header X-Token: empty value" },
		{ "forward", "header", "X-Token:   ", "header X-Token: empty value" },
		{ "forward", "header", "X-Token: a\001b", "header X-Token: the value has a control "
		  "character (byte 0x01 at offset 1)" },
		{ "forward", "header", "X-Token: <redacted>", "header X-Token: the value is "
		  "<redacted>, as spoolcapd --check prints it: write the real value, or better, "
		  "put it in a file and use header-file" },
		{ "forward", "header", "content-type: text/plain", "Content-Type is set by "
		  "spoolcapd itself (the delivery contract; compression sets Content-Encoding) and "
		  "cannot be changed" },
		{ "forward", "header", "Idempotency-Key: 1", "Idempotency-Key is set by spoolcapd "
		  "itself (the delivery contract; compression sets Content-Encoding) and cannot be "
		  "changed" },
		{ "forward", "header", "Content-Encoding: gzip", "Content-Encoding is set by "
		  "spoolcapd itself (the delivery contract; compression sets Content-Encoding) and "
		  "cannot be changed" },
		{ "forward", "header", "Content-Length: 5", "Content-Length is set by spoolcapd "
		  "itself (the delivery contract; compression sets Content-Encoding) and cannot be "
		  "changed" },
		{ "forward", "header-file", "Authorization", "expected 'Name: value' (no ':' found)" },
		{ "forward", "header-file", "Authorization:", "expected 'Name: /path/to/file' "
		  "(no path after ':')" },
		{ "forward", "header-file", "Authorization: /nonexistent/spoolcap-t-config",
		  "cannot read /nonexistent/spoolcap-t-config: No such file or directory" },
		{ "forward", "header-file", "Authorization: /", "/ is not a regular file" },
		{ "forward", "ca-file", "/nonexistent/ca.pem",
		  "cannot read /nonexistent/ca.pem: No such file or directory" },
		{ "forward", "ca-file", "/", "/ is a directory (a directory of hashed CA "
		  "certificates goes in ca-dir)" },
		{ "forward", "ca-dir", "/nonexistent/certs",
		  "cannot read directory /nonexistent/certs: No such file or directory" },
		{ "forward", "ca-dir", "/dev/null",
		  "cannot read directory /dev/null: Not a directory" },
		{ "forward", "client-cert", "/nonexistent/client.pem",
		  "cannot read /nonexistent/client.pem: No such file or directory" },
		{ "forward", "client-cert", "/dev/null", "/dev/null is not a regular file" },
		{ "forward", "client-key", "/nonexistent/client.key",
		  "cannot read /nonexistent/client.key: No such file or directory" },
		{ "forward", "insecure", "maybe", "'maybe': expected yes or no" },
		{ "forward", "persistent-5xx-attempts", "1000001", "1000001: at most 1000000 "
		  "(0 or off: never dead-letter for persistent 5xx)" },
		{ "forward", "persistent-5xx-attempts", "-1", "'-1' is not a number" },
		{ "forward", "persistent-5xx-age", "169h", "169h: must be between 0 and 168h "
		  "(a week)" },
		{ "forward", "stop-timeout", "11m", "11m: must be between 0 and 10m" },
		{ "forward", "stop-timeout", "soon",
		  "'soon' is not a duration (examples: 5s, 500ms, 2m)" },
	};
	char text[512], err[512], msg[1024];
	cfg c;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		/* The bad line is line 3, after a comment and the section. */
		snprintf(text, sizeof text, "# bad %s\n[%s]\n%s = %s\n[log]\nlevel = debug\n",
		         bad[i].key, bad[i].section, bad[i].key, bad[i].value);
		if (load_text(&c, text, err, sizeof err) == 0) {
			tap_ok(0, "[%s] %s = '%s' refused", bad[i].section, bad[i].key,
			       bad[i].value);
		} else if (bad[i].msg) {
			snprintf(msg, sizeof msg, "[%s] %s: %s", bad[i].section, bad[i].key,
			         bad[i].msg);
			is_err(err, 3, msg, msg);
		} else {
			/* agent_parse_addr's own words; check the prefix only. */
			snprintf(msg, sizeof msg, "%s:3: [%s] %s: listen address '%s': ", path,
			         bad[i].section, bad[i].key, bad[i].value);
			if (!tap_ok(strncmp(err, msg, strlen(msg)) == 0, "[%s] %s = '%s' refused, "
			            "naming the address", bad[i].section, bad[i].key, bad[i].value))
				tap_diag("  got: %s", err);
		}
		cfg_free(&c);
	}
}

static void test_file_structure(void)
{
	char err[512], text[1024];
	cfg c;
	int r;

	load_text(&c, "[spool]\nmax_size = 1G\n", err, sizeof err);
	is_err(err, 2, "unknown key 'max_size' in [spool] (did you mean max-size?)",
	       "unknown key with '_': did you mean the '-' spelling");
	cfg_free(&c);
	load_text(&c, "[agent]\nmax_frame_size = 1M\n", err, sizeof err);
	is_err(err, 2, "unknown key 'max_frame_size' in [agent] (did you mean max-frame-size?)",
	       "every '_' is replaced in the hint");
	cfg_free(&c);
	load_text(&c, "[spool]\nmaxsize = 1G\n", err, sizeof err);
	is_err(err, 2, "unknown key 'maxsize' in [spool]", "unknown key, no close match");
	cfg_free(&c);
	load_text(&c, "[spool]\nthreads = 2\n", err, sizeof err);
	is_err(err, 2, "unknown key 'threads' in [spool]", "a key of another section");
	cfg_free(&c);
	load_text(&c, "[agent]\nThreads = 2\n", err, sizeof err);
	is_err(err, 2, "unknown key 'Threads' in [agent]", "keys are case-sensitive");
	cfg_free(&c);
	load_text(&c, "[agent]\nthreads = 1\n[agnet]\nthreads = 2\n", err, sizeof err);
	is_err(err, 4, "unknown section [agnet] (known: [agent], [spool], [forward], [capture], "
	       "[metrics], [log])",
	       "unknown section, named at its first key");
	cfg_free(&c);
	load_text(&c, "threads = 2\n[agent]\n", err, sizeof err);
	is_err(err, 1, "'threads' is outside any section (put it under [agent], [spool], "
	       "[forward], [capture], [metrics] or [log])", "key outside any section");
	cfg_free(&c);
	load_text(&c, "[agent]\nthreads\n", err, sizeof err);
	is_err(err, 2, "syntax error (expected [section], key = value or a comment)",
	       "a line without '='");
	cfg_free(&c);
	load_text(&c, "[agent\nthreads = 2\n", err, sizeof err);
	is_err(err, 1, "syntax error (expected [section], key = value or a comment)",
	       "an unclosed section header");
	cfg_free(&c);
	load_text(&c, "[agent]\nthreads = 2\nthreads = x\nmax-connections = 0\n", err,
	          sizeof err);
	is_err(err, 3, "[agent] threads: 'x' is not a number", "only the first error is reported");
	cfg_free(&c);
	load_text(&c, "[agent]\nthreads = x\nbogus\n", err, sizeof err);
	is_err(err, 2, "[agent] threads: 'x' is not a number",
	       "a bad value before a syntax error: the bad value");
	cfg_free(&c);
	load_text(&c, "[agent]\nbogus\nthreads = x\n", err, sizeof err);
	is_err(err, 2, "syntax error (expected [section], key = value or a comment)",
	       "a syntax error before a bad value: the syntax error");
	cfg_free(&c);

	/* '#' starts only whole-line comments; inline comments need ' ;'. */
	load_text(&c, "[agent]\nthreads = 3 # three\n", err, sizeof err);
	is_err(err, 2, "[agent] threads: '3 # three' is not a number (a comment after a "
	       "value starts with ';', not '#')", "an inline '#' comment gets a hint");
	cfg_free(&c);
	/* An indented line continues the previous key's value (inih). */
	load_text(&c, "[agent]\nthreads = 3\n  max-connections = 10\n", err, sizeof err);
	is_err(err, 3, "[agent] 'max-connections = 10' is indented, so it is read as a "
	       "second value for threads; remove the indentation",
	       "an indented key line is refused, naming the key it would change");
	cfg_free(&c);
	/* ...even when the indented text would be a valid value (was silent). */
	load_text(&c, "[spool]\ndir = /x\n  none\n", err, sizeof err);
	is_err(err, 3, "[spool] 'none' is indented, so it is read as a second value for dir; "
	       "remove the indentation", "an indented valid value is refused too");
	cfg_free(&c);

	/* The longest line inih reads whole is 198 characters + newline. */
	snprintf(text, sizeof text, "[log]\nlevel = info ;%0*d\n", 198 - 14, 0);
	r = load_text(&c, text, err, sizeof err);
	tap_ok(r == 0, "a 198-character line is read");
	if (r)
		tap_diag("  %s", err);
	cfg_free(&c);
	snprintf(text, sizeof text, "[log]\nlevel = info ;%0*d\n", 199 - 14, 0);
	load_text(&c, text, err, sizeof err);
	is_err(err, 2, "line longer than 198 characters (split it: listen may be repeated; "
	       "a long header value goes in a header-file)",
	       "a 199-character line is refused, with the limit");
	cfg_free(&c);
	snprintf(text, sizeof text, "[agent]\n# %0*d\nthreads = x\n", 400, 0);
	load_text(&c, text, err, sizeof err);
	is_err(err, 2, "line longer than 198 characters (split it: listen may be repeated; "
	       "a long header value goes in a header-file)",
	       "an overlong comment line is refused too, before a later bad value");
	cfg_free(&c);
	snprintf(text, sizeof text, "[agent]\nthreads = 1\nlisten = 127.0.0.1:1 %0*d\n", 300, 0);
	load_text(&c, text, err, sizeof err);
	is_err(err, 3, "line longer than 198 characters (split it: listen may be repeated; "
	       "a long header value goes in a header-file)",
	       "an overlong value is refused, not cut");
	cfg_free(&c);

	cfg_init(&c);
	snprintf(text, sizeof text, "%s/does-not-exist.ini", dir);
	r = cfg_load_file(&c, text, err, sizeof err);
	snprintf(text, sizeof text, "cannot read config file %s/does-not-exist.ini: "
	         "No such file or directory", dir);
	if (!tap_ok(r < 0 && strcmp(err, text) == 0, "missing file: names it and the reason"))
		tap_diag("  got: %s", err);
	cfg_free(&c);

	/* The indentation error never quotes a header line: it may be a secret. */
	load_text(&c, "[forward]\nheader = X-A: b\n  Authorization: Bearer s3cret\n", err,
	          sizeof err);
	is_err(err, 3, "[forward] '(value not shown)' is indented, so it is read as a second "
	       "value for header; remove the indentation",
	       "an indented line after header is refused without quoting it");
	cfg_free(&c);
}

/* ---- [forward] ---- */

static char ca_pem[300], ca_dir[300], cert_pem[300], key_pem[300], tok[300], tok2[300];

/* The files [forward] settings name: contents do not matter to the
 * configuration (libcurl reads them), only that they are readable. */
static void make_forward_files(void)
{
	snprintf(ca_pem, sizeof ca_pem, "%s/ca.pem", dir);
	snprintf(ca_dir, sizeof ca_dir, "%s/certs", dir);
	snprintf(cert_pem, sizeof cert_pem, "%s/client.pem", dir);
	snprintf(key_pem, sizeof key_pem, "%s/client.key", dir);
	snprintf(tok, sizeof tok, "%s/token", dir);
	snprintf(tok2, sizeof tok2, "%s/token2", dir);
	write_file(ca_pem, "-----BEGIN CERTIFICATE-----\n");
	mkdir(ca_dir, 0700);
	write_file(cert_pem, "-----BEGIN CERTIFICATE-----\n");
	write_file(key_pem, "-----BEGIN PRIVATE KEY-----\n");
	write_file(tok, "Bearer tok-S3CRET-1\r\n");    /* CRLF from an editor */
	write_file(tok2, "k2-S3CRET-2\n\n");
}

static void remove_forward_files(void)
{
	unlink(ca_pem);
	rmdir(ca_dir);
	unlink(cert_pem);
	unlink(key_pem);
	unlink(tok);
	unlink(tok2);
}

/* The [forward] section with every key off its default. */
static void forward_file_text(char *text, size_t len)
{
	int n = snprintf(text, len,
	         "[spool]\n"
	         "dir = /srv/spool\n"
	         "[forward]\n"
	         "url = https://events.example.com:8443/ingest?src=cap\n"
	         "batch-events = 1000\n"
	         "batch-bytes = 8M\n"
	         "linger = 250ms\n"
	         "max-inflight = 8\n"
	         "connect-timeout = 2s\n"
	         "timeout = 1m\n"
	         "low-speed-limit = 10K\n"
	         "low-speed-time = 20s\n"
	         "backoff-base = 100ms\n"
	         "backoff-cap = 5m\n"
	         "compression = Zstd\n"
	         "compression-level = 7\n"
	         "header = X-Source:  edge-1 \n"
	         "header-file = Authorization: %s\n"
	         "header = X-Empty-Ok: a:b: c\n"
	         "header-file = X-Api-Key:%s\n"
	         "ca-file = %s\n"
	         "ca-dir = %s\n"
	         "client-cert = %s\n"
	         "client-key = %s\n"
	         "insecure = yes\n"
	         "persistent-5xx-attempts = 0\n"
	         "persistent-5xx-age = 1h\n"
	         "stop-timeout = 500ms\n",
	         tok, tok2, ca_pem, ca_dir, cert_pem, key_pem);

	if (n < 0 || (size_t)n >= len) {
		printf("Bail out! scratch paths too long for the test file\n");
		exit(1);
	}
}

static void test_forward_file(void)
{
	char text[2048], err[512];
	cfg c;
	int r;

	forward_file_text(text, sizeof text);
	r = load_text(&c, text, err, sizeof err);
	if (!tap_ok(r == 0, "a [forward] section setting every key loads"))
		tap_diag("  %s", err);
	tap_ok(c.forward_url && strcmp(c.forward_url,
	       "https://events.example.com:8443/ingest?src=cap") == 0 && cfg_forwarding(&c),
	       "[forward] url");
	tap_is_int(c.fwd_batch_events, 1000, "[forward] batch-events");
	tap_is_int(c.fwd_batch_bytes, 8 << 20, "[forward] batch-bytes 8M");
	tap_ok(near(c.fwd_linger, 0.25), "[forward] linger 250ms");
	tap_is_int(c.fwd_max_inflight, 8, "[forward] max-inflight");
	tap_ok(near(c.fwd_connect_timeout, 2), "[forward] connect-timeout 2s");
	tap_ok(near(c.fwd_timeout, 60), "[forward] timeout 1m");
	tap_is_int(c.fwd_low_speed_limit, 10240, "[forward] low-speed-limit 10K");
	tap_ok(near(c.fwd_low_speed_time, 20), "[forward] low-speed-time 20s");
	tap_ok(near(c.fwd_backoff_base, 0.1), "[forward] backoff-base 100ms");
	tap_ok(near(c.fwd_backoff_cap, 300), "[forward] backoff-cap 5m");
	tap_is_int(c.fwd_compression, REPLAY_COMPRESS_ZSTD, "[forward] compression Zstd "
	           "(case-insensitive)");
	tap_is_int(c.fwd_compression_level, 7, "[forward] compression-level");
	tap_is_int(c.fwd_nheaders, 4, "[forward] header and header-file: one list of 4");
	if (c.fwd_nheaders == 4) {
		tap_ok(strcmp(c.fwd_headers[0].line, "X-Source: edge-1") == 0 &&
		       c.fwd_headers[0].name_len == 8 && !c.fwd_headers[0].file,
		       "header: value trimmed, no file");
		tap_ok(strcmp(c.fwd_headers[1].line, "Authorization: Bearer tok-S3CRET-1") == 0 &&
		       c.fwd_headers[1].file && strcmp(c.fwd_headers[1].file, tok) == 0,
		       "header-file: the file's value, trailing CR LF stripped, path kept");
		tap_ok(strcmp(c.fwd_headers[2].line, "X-Empty-Ok: a:b: c") == 0,
		       "header: colons in the value are kept");
		tap_ok(strcmp(c.fwd_headers[3].line, "X-Api-Key: k2-S3CRET-2") == 0,
		       "header-file: no space after ':', every trailing newline stripped");
		tap_ok(c.fwd_header_lines && c.fwd_header_lines[0] == c.fwd_headers[0].line &&
		       c.fwd_header_lines[3] == c.fwd_headers[3].line,
		       "fwd_header_lines points at the lines, in order");
	} else {
		tap_skip(5, "wrong number of headers");
	}
	tap_ok(c.fwd_ca_file && strcmp(c.fwd_ca_file, ca_pem) == 0, "[forward] ca-file");
	tap_ok(c.fwd_ca_dir && strcmp(c.fwd_ca_dir, ca_dir) == 0, "[forward] ca-dir");
	tap_ok(c.fwd_client_cert && strcmp(c.fwd_client_cert, cert_pem) == 0,
	       "[forward] client-cert");
	tap_ok(c.fwd_client_key && strcmp(c.fwd_client_key, key_pem) == 0,
	       "[forward] client-key");
	tap_is_int(c.fwd_insecure, 1, "[forward] insecure = yes");
	tap_is_int(c.fwd_p5xx_attempts, 0, "[forward] persistent-5xx-attempts 0 (never)");
	tap_ok(near(c.fwd_p5xx_age, 3600), "[forward] persistent-5xx-age 1h");
	tap_ok(near(c.fwd_stop_timeout, 0.5), "[forward] stop-timeout 500ms");
	tap_is_int(cfg_check(&c, err, sizeof err), 0, "cfg_check accepts it");
	cfg_free(&c);

	/* Other spellings. */
	{
		static const struct {
			const char *text, *what;
		} ok[] = {
			{ "[forward]\nurl = none\n", "url = none" },
			{ "[forward]\nurl =\n", "url = (empty): none" },
			{ "[forward]\nurl = HTTP://127.0.0.1/\n", "url scheme in capitals" },
			{ "[forward]\nurl = http://[::1]:8080/x\n", "url with an IPv6 host" },
			{ "[forward]\nbatch-events = 1\nbatch-bytes = 1K\n", "the smallest batches" },
			{ "[forward]\nbatch-events = 1000000\nbatch-bytes = 256M\n", "the largest" },
			{ "[forward]\nlinger = 1ms\n", "linger 1ms" },
			{ "[forward]\nmax-inflight = 64\n", "max-inflight 64 (the most)" },
			{ "[forward]\nlow-speed-limit = 1G\nlow-speed-time = 1h\n", "low-speed at most" },
			{ "[forward]\ncompression = GZIP\ncompression-level = 9\n", "gzip level 9" },
			{ "[forward]\ncompression = zstd\ncompression-level = 19\n", "zstd level 19" },
			{ "[forward]\ninsecure = no\n", "insecure = no" },
			{ "[forward]\ninsecure = off\n", "insecure = off" },
			{ "[forward]\npersistent-5xx-attempts = off\n", "persistent-5xx-attempts off" },
			{ "[forward]\npersistent-5xx-age = 0\n", "persistent-5xx-age 0" },
			{ "[forward]\nstop-timeout = 0\n", "stop-timeout 0 (cut at once)" },
			{ "[forward]\nca-file =\nca-dir =\nclient-cert =\nclient-key =\n",
			  "empty TLS paths: the defaults" },
			{ "[forward]\nbackoff-base = 1s\nbackoff-cap = 1s\n", "backoff-base = cap" },
		};
		for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
			r = load_text(&c, ok[i].text, err, sizeof err);
			if (r == 0)
				r = cfg_check(&c, err, sizeof err);
			if (!tap_ok(r == 0, "accepted: %s", ok[i].what))
				tap_diag("  %s", err);
			cfg_free(&c);
		}
	}
	load_text(&c, "[forward]\nurl = http://a/\nurl = none\n", err, sizeof err);
	tap_ok(!cfg_forwarding(&c), "url = none after a URL turns delivery off");
	cfg_free(&c);
	load_text(&c, "[forward]\ninsecure = on\ninsecure = no\n", err, sizeof err);
	tap_is_int(c.fwd_insecure, 0, "insecure: the last one wins");
	cfg_free(&c);

	/* Repeats and limits of the header list. */
	load_text(&c, "[forward]\nheader = X-A: 1\nheader = x-a: 2\n", err, sizeof err);
	is_err(err, 3, "[forward] header: header x-a is given twice (header and header-file "
	       "share one list); give it once", "a header name twice (any case) is refused");
	cfg_free(&c);
	snprintf(text, sizeof text, "[forward]\nheader = Authorization: x\n"
	         "header-file = Authorization: %s\n", tok);
	load_text(&c, text, err, sizeof err);
	is_err(err, 3, "[forward] header-file: header Authorization is given twice (header and "
	       "header-file share one list); give it once",
	       "the same name as header and header-file is refused");
	cfg_free(&c);
	{
		char big[64 * 24 + 64];
		size_t o = (size_t)snprintf(big, sizeof big, "[forward]\n");
		for (int i = 0; i <= 64; i++)
			o += (size_t)snprintf(big + o, sizeof big - o, "header = X-H%d: v\n", i);
		load_text(&c, big, err, sizeof err);
		is_err(err, 66, "[forward] header: more than 64 headers", "65 headers refused");
		cfg_free(&c);
	}
}

/* header-file: what is read, what is refused, and that errors never quote
 * the file's content. */
static void test_header_file(void)
{
	char hf[400], text[1024], err[1024], want[1024], *big;
	cfg c;
	size_t n = 16384;

	snprintf(hf, sizeof hf, "%s/hdr", dir);
	{
		static const struct {
			const char *content, *msg;
		} bad[] = {
			{ "", "header X-K: empty value" },
			{ "\r\n", "header X-K: empty value" },
			{ "S3CRET-a\nS3CRET-b\n", "header X-K: the value has a control character "
			  "(byte 0x0a at offset 8)" },
			{ "S3CRET-a\rb", "header X-K: the value has a control character "
			  "(byte 0x0d at offset 8)" },
			{ "S3C\001RET", "header X-K: the value has a control character "
			  "(byte 0x01 at offset 3)" },
			{ "<redacted>\n", "header X-K: the value is <redacted>, as spoolcapd --check "
			  "prints it: write the real value, or better, put it in a file and use "
			  "header-file" },
		};
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			write_file(hf, bad[i].content);
			snprintf(text, sizeof text, "[forward]\nheader-file = X-K: %s\n", hf);
			load_text(&c, text, err, sizeof err);
			snprintf(want, sizeof want, "[forward] header-file: %s%s%s%s", bad[i].msg,
			         strstr(bad[i].msg, "redacted") ? "" : " (in ",
			         strstr(bad[i].msg, "redacted") ? "" : hf,
			         strstr(bad[i].msg, "redacted") ? "" : ")");
			is_err(err, 2, want, want);
			tap_ok(!strstr(err, "S3CRET"), "  ... and the error does not quote the file");
			cfg_free(&c);
		}
	}
	/* A NUL byte: a control character too. */
	{
		FILE *f = fopen(hf, "w");
		fwrite("ab\0cd", 1, 5, f);
		fclose(f);
		snprintf(text, sizeof text, "[forward]\nheader-file = X-K: %s\n", hf);
		load_text(&c, text, err, sizeof err);
		snprintf(want, sizeof want, "[forward] header-file: header X-K: the value has a "
		         "control character (byte 0x00 at offset 2) (in %s)", hf);
		is_err(err, 2, want, "a NUL byte in a header-file is refused");
		cfg_free(&c);
	}
	/* The longest value is 16384 bytes, plus its newline. */
	big = malloc(n + 3);
	memset(big, 'v', n);
	strcpy(big + n, "\r\n");
	write_file(hf, big);
	snprintf(text, sizeof text, "[forward]\nheader-file = X-K: %s\n", hf);
	tap_is_int(load_text(&c, text, err, sizeof err), 0, "a 16384-byte header-file value "
	           "(+ CRLF) is read");
	tap_ok(c.fwd_nheaders == 1 && strlen(c.fwd_headers[0].line) == 5 + n,
	       "  ... whole");
	cfg_free(&c);
	big[n] = 'v';
	big[n + 1] = '\0';
	write_file(hf, big);
	load_text(&c, text, err, sizeof err);
	snprintf(want, sizeof want, "[forward] header-file: header X-K: the value is longer "
	         "than 16384 bytes (in %s)", hf);
	is_err(err, 2, want, "a 16385-byte header-file value is refused");
	cfg_free(&c);
	free(big);

	/* Unreadable files: root reads anything, so only as another user. */
	if (geteuid() != 0) {
		write_file(hf, "v\n");
		chmod(hf, 0);
		load_text(&c, text, err, sizeof err);
		snprintf(want, sizeof want, "[forward] header-file: cannot read %s: Permission "
		         "denied", hf);
		is_err(err, 2, want, "an unreadable header-file is refused with the reason");
		cfg_free(&c);
		snprintf(text, sizeof text, "[forward]\nca-file = %s\n", hf);
		load_text(&c, text, err, sizeof err);
		snprintf(want, sizeof want, "[forward] ca-file: cannot read %s: Permission "
		         "denied", hf);
		is_err(err, 2, want, "an unreadable ca-file is refused with the reason");
		cfg_free(&c);
		snprintf(text, sizeof text, "[forward]\nclient-key = %s\n", hf);
		load_text(&c, text, err, sizeof err);
		snprintf(want, sizeof want, "[forward] client-key: cannot read %s: Permission "
		         "denied", hf);
		is_err(err, 2, want, "an unreadable client-key is refused with the reason");
		cfg_free(&c);
	} else {
		tap_skip(3, "running as root: permission bits do not stop reads");
	}
	unlink(hf);
}

/* Flags: every [forward] key has one, and flags override the file. */
static void test_forward_flags(void)
{
	char text[2048], err[512], hdr1[400], hdr2[400];
	cfg c;

	snprintf(hdr1, sizeof hdr1, "Authorization: %s", tok);
	snprintf(hdr2, sizeof hdr2, "X-Api-Key: %s", tok2);
	{
		const char *a[] = { "--forward", "http://127.0.0.1:9/in",
		                    "--forward-batch-events", "7", "--forward-batch-bytes", "64K",
		                    "--forward-linger", "5ms", "--forward-max-inflight", "3",
		                    "--forward-connect-timeout", "1500ms", "--forward-timeout", "45s",
		                    "--forward-low-speed-limit", "100", "--forward-low-speed-time", "2s",
		                    "--forward-backoff-base", "50ms", "--forward-backoff-cap", "10s",
		                    "--forward-compression", "gzip", "--forward-compression-level=6",
		                    "--forward-header", "X-One: 1", "--forward-header", "X-Two: 2",
		                    "--forward-header-file", hdr1, "--forward-ca-file", ca_pem,
		                    "--forward-ca-dir", ca_dir, "--forward-client-cert", cert_pem,
		                    "--forward-client-key", key_pem, "--forward-insecure", "yes",
		                    "--forward-persistent-5xx-attempts", "8",
		                    "--forward-persistent-5xx-age", "90s",
		                    "--forward-stop-timeout", "2s", NULL };
		int r = load_argv(&c, a, err, sizeof err);
		if (!tap_ok(r == 0, "every --forward-* flag"))
			tap_diag("  %s", err);
		tap_ok(c.forward_url && strcmp(c.forward_url, "http://127.0.0.1:9/in") == 0,
		       "--forward URL");
		tap_ok(c.fwd_batch_events == 7 && c.fwd_batch_bytes == 65536 &&
		       near(c.fwd_linger, 0.005) && c.fwd_max_inflight == 3,
		       "--forward-batch-events, -batch-bytes, -linger, -max-inflight");
		tap_ok(near(c.fwd_connect_timeout, 1.5) && near(c.fwd_timeout, 45) &&
		       c.fwd_low_speed_limit == 100 && near(c.fwd_low_speed_time, 2),
		       "--forward-connect-timeout, -timeout, -low-speed-limit, -low-speed-time");
		tap_ok(near(c.fwd_backoff_base, 0.05) && near(c.fwd_backoff_cap, 10),
		       "--forward-backoff-base, -backoff-cap");
		tap_ok(c.fwd_compression == REPLAY_COMPRESS_GZIP && c.fwd_compression_level == 6,
		       "--forward-compression gzip, --forward-compression-level=6");
		tap_ok(c.fwd_nheaders == 3 && strcmp(c.fwd_headers[0].line, "X-One: 1") == 0 &&
		       strcmp(c.fwd_headers[1].line, "X-Two: 2") == 0 &&
		       strcmp(c.fwd_headers[2].line, "Authorization: Bearer tok-S3CRET-1") == 0,
		       "--forward-header twice and --forward-header-file");
		tap_ok(c.fwd_ca_file && c.fwd_ca_dir && c.fwd_client_cert && c.fwd_client_key &&
		       c.fwd_insecure, "--forward-ca-file, -ca-dir, -client-cert, -client-key, "
		       "-insecure");
		tap_ok(c.fwd_p5xx_attempts == 8 && near(c.fwd_p5xx_age, 90) &&
		       near(c.fwd_stop_timeout, 2), "--forward-persistent-5xx-attempts, "
		       "-persistent-5xx-age, -stop-timeout");
		cfg_free(&c);
	}

	/* Flags over the file. */
	forward_file_text(text, sizeof text);
	write_file(path, text);
	{
		const char *a[] = { "-c", path, "--forward", "http://127.0.0.1:1/",
		                    "--forward-max-inflight", "1", "--forward-compression", "none",
		                    "--forward-persistent-5xx-attempts", "3", NULL };
		load_argv(&c, a, err, sizeof err);
		tap_ok(c.forward_url && strcmp(c.forward_url, "http://127.0.0.1:1/") == 0 &&
		       c.fwd_max_inflight == 1 && c.fwd_compression == REPLAY_COMPRESS_NONE &&
		       c.fwd_p5xx_attempts == 3, "--forward-* flags override the file");
		tap_ok(c.fwd_batch_events == 1000 && near(c.fwd_backoff_cap, 300) &&
		       c.fwd_nheaders == 4, "keys without a flag keep the file's values");
		cfg_free(&c);
	}
	{
		const char *a[] = { "-c", path, "--forward-header", "X-Only: 1", NULL };
		load_argv(&c, a, err, sizeof err);
		tap_ok(c.fwd_nheaders == 1 && strcmp(c.fwd_headers[0].line, "X-Only: 1") == 0,
		       "--forward-header replaces every header of the file");
		cfg_free(&c);
	}
	{
		const char *a[] = { "--forward-header-file", hdr2, "-c", path, NULL };
		load_argv(&c, a, err, sizeof err);
		tap_ok(c.fwd_nheaders == 1 && strcmp(c.fwd_headers[0].line,
		       "X-Api-Key: k2-S3CRET-2") == 0,
		       "--forward-header-file (before -c) replaces them too");
		cfg_free(&c);
	}
	{
		const char *a[] = { "-c", path, "--forward", "none", NULL };
		load_argv(&c, a, err, sizeof err);
		tap_ok(!cfg_forwarding(&c), "--forward none turns off the file's url");
		cfg_free(&c);
	}
	{
		const char *a[] = { "--forward", "ftp://x/", NULL };
		tap_ok(load_argv(&c, a, err, sizeof err) < 0 &&
		       strcmp(err, "--forward: 'ftp://x/': the URL must start with http:// or "
		              "https:// (for example https://events.example.com/ingest; none turns "
		              "delivery off)") == 0, "a bad --forward names the flag and what to do");
		cfg_free(&c);
	}
	{
		const char *a[] = { "--forward-compression", "br", NULL };
		tap_ok(load_argv(&c, a, err, sizeof err) < 0 &&
		       strcmp(err, "--forward-compression: 'br': expected none, gzip or zstd") == 0,
		       "a bad compression name names the flag");
		cfg_free(&c);
	}
	{
		const char *a[] = { "--forward-header", "Authorization Bearer S3CRET", NULL };
		tap_ok(load_argv(&c, a, err, sizeof err) < 0 &&
		       strcmp(err, "--forward-header: expected 'Name: value' (no ':' found)") == 0,
		       "a malformed --forward-header does not echo the value");
		cfg_free(&c);
	}
	{
		const char *a[] = { "--forward-ca-file", "/nonexistent/ca.pem", NULL };
		tap_ok(load_argv(&c, a, err, sizeof err) < 0 &&
		       strcmp(err, "--forward-ca-file: cannot read /nonexistent/ca.pem: No such "
		              "file or directory") == 0, "a missing --forward-ca-file");
		cfg_free(&c);
	}
}

/* cfg_check: what only the whole configuration can tell. */
static void test_forward_checks(void)
{
	char text[1024], err[512];
	cfg c;

	{
		const char *a[] = { "--spool", "none", "--forward", "http://127.0.0.1:9/", NULL };
		tap_ok(load_argv(&c, a, err, sizeof err) < 0 &&
		       strcmp(err, "--forward (or [forward] url) with --spool none: delivery reads "
		              "the spool; set --spool DIR (or [spool] dir), or drop --forward") == 0,
		       "--forward with --spool none is refused, saying what to do");
		cfg_free(&c);
	}
	write_file(path, "[spool]\ndir = none\n[forward]\nurl = http://127.0.0.1:9/\n");
	{
		const char *a[] = { "-c", path, NULL };
		const char *b[] = { "-c", path, "--spool", "/srv/x", NULL };
		const char *d[] = { "-c", path, "--forward", "none", NULL };
		tap_ok(load_argv(&c, a, err, sizeof err) < 0 && strstr(err, "delivery reads the "
		       "spool"), "the same conflict from the file");
		cfg_free(&c);
		tap_is_int(load_argv(&c, b, err, sizeof err), 0, "  ... resolved by --spool DIR");
		cfg_free(&c);
		tap_is_int(load_argv(&c, d, err, sizeof err), 0, "  ... or by --forward none");
		cfg_free(&c);
	}
	{
		const char *a[] = { "--forward-client-key", key_pem, NULL };
		const char *b[] = { "--forward-client-key", key_pem, "--forward-client-cert",
		                    cert_pem, NULL };
		tap_ok(load_argv(&c, a, err, sizeof err) < 0 &&
		       strcmp(err, "[forward] client-key (--forward-client-key) is set without "
		              "client-cert: set client-cert to the certificate the key belongs "
		              "to") == 0, "client-key without client-cert is refused");
		cfg_free(&c);
		tap_is_int(load_argv(&c, b, err, sizeof err), 0, "client-key with client-cert");
		cfg_free(&c);
	}
	{
		const char *a[] = { "--forward-backoff-base", "2m", NULL };
		tap_ok(load_argv(&c, a, err, sizeof err) < 0 &&
		       strcmp(err, "[forward] backoff-base (120s) is above backoff-cap (60s): "
		              "raise backoff-cap or lower backoff-base") == 0,
		       "backoff-base above backoff-cap is refused");
		cfg_free(&c);
	}
	{
		const char *a[] = { "--forward-compression", "gzip",
		                    "--forward-compression-level", "10", NULL };
		const char *b[] = { "--forward-compression", "zstd",
		                    "--forward-compression-level", "10", NULL };
		tap_ok(load_argv(&c, a, err, sizeof err) < 0 &&
		       strcmp(err, "[forward] compression-level 10: gzip levels go from 1 to 9 "
		              "(0 = the fast default, 1)") == 0, "gzip level 10 is refused");
		cfg_free(&c);
		tap_is_int(load_argv(&c, b, err, sizeof err), 0, "zstd level 10 is fine");
		cfg_free(&c);
	}
	(void)text;
}

/* Header values never appear in --check output, in-process or from the
 * daemon; header-file paths do. */
static void test_forward_print(void)
{
	char text[2048], err[512], cmd[2048], out[8192], *t;
	cfg c;
	int r;

	forward_file_text(text, sizeof text);
	load_text(&c, text, err, sizeof err);
	t = print_str(&c);
	tap_ok(t && !strstr(t, "S3CRET") && !strstr(t, "edge-1"), "cfg_print: no header value");
	tap_ok(t && strstr(t, "\nheader = X-Source: <redacted>\n") &&
	       strstr(t, "\nheader = X-Empty-Ok: <redacted>\n"),
	       "cfg_print: inline headers as Name: <redacted>");
	snprintf(cmd, sizeof cmd, "\ncompression-level = 7\nheader = X-Source: <redacted>\n"
	         "header-file = Authorization: %s\nheader = X-Empty-Ok: <redacted>\n"
	         "header-file = X-Api-Key: %s\nca-file = ", tok, tok2);
	tap_ok(t && strstr(t, cmd), "cfg_print: header-file as Name: path, every header in "
	       "the order given");
	tap_ok(t && strstr(t, "\n[forward]\nurl = https://events.example.com:8443/ingest?src=cap\n"
	       "batch-events = 1000\nbatch-bytes = 8388608\nlinger = 250ms\nmax-inflight = 8\n"
	       "connect-timeout = 2s\ntimeout = 60s\nlow-speed-limit = 10240\n"
	       "low-speed-time = 20s\nbackoff-base = 100ms\nbackoff-cap = 300s\n"
	       "compression = zstd\ncompression-level = 7\n"),
	       "cfg_print: the [forward] values");
	tap_ok(t && strstr(t, "\ninsecure = yes\npersistent-5xx-attempts = 0\n"
	       "persistent-5xx-age = 3600s\nstop-timeout = 500ms\n\n["),
	       "cfg_print: the last [forward] values, then the next section");
	free(t);
	cfg_free(&c);

	{
		const char *none[] = { NULL };
		load_argv(&c, none, err, sizeof err);
		t = print_str(&c);
		tap_ok(t && strstr(t, "\n[forward]\n# none: no delivery, the spool only fills\n"
		       "url = none\n") && strstr(t, "\n# ca-file = (not set: the system's CA "
		       "certificates)\n# ca-dir = (not set: the system's CA certificates)\n"
		       "# client-cert = (not set: no client certificate)\n# client-key = (not "
		       "set: the key is in client-cert)\ninsecure = no\n"),
		       "cfg_print without forwarding: url = none, TLS paths as comments");
		free(t);
		cfg_free(&c);
	}

	/* What --check printed loads back: with an inline header it is refused
	 * (its value is gone), without one it round-trips. */
	load_text(&c, text, err, sizeof err);
	t = print_str(&c);
	cfg_free(&c);
	write_file(path, t ? t : "");
	free(t);
	{
		const char *a[] = { "-c", path, NULL };
		tap_ok(load_argv(&c, a, err, sizeof err) < 0 && strstr(err, "header X-Source: the "
		       "value is <redacted>"), "--check output with an inline header does not "
		       "load back silently");
		cfg_free(&c);
	}

	/* The daemon itself: a URL password, a header flag and a header-file. */
	snprintf(cmd, sizeof cmd, "'%s/src/spoolcapd' --check --spool '%s/sp' --forward "
	         "'https://bob:pw-S3CRET@events.example.com/in' --forward-header "
	         "'X-Key: flag-S3CRET' --forward-header-file 'Authorization: %s'",
	         builddir, dir, tok);
	r = run(cmd, out, sizeof out);
	if (!tap_ok(r == 0 && strstr(out, "\nurl = https://bob:<redacted>@events.example.com/"
	            "in\n") && strstr(out, "\nheader = X-Key: <redacted>\n") &&
	            strstr(out, "\nheader-file = Authorization: "), "spoolcapd --check prints "
	            "[forward] with the secrets redacted"))
		tap_diag("  exit %d: %s", r, out);
	tap_ok(!strstr(out, "S3CRET"), "spoolcapd --check output holds no secret");
	snprintf(cmd, sizeof cmd, "'%s/src/spoolcapd' --check --spool none --forward "
	         "http://127.0.0.1:9/", builddir);
	r = run(cmd, out, sizeof out);
	tap_ok(r == 1 && strstr(out, "spoolcapd: --forward (or [forward] url) with --spool none: "
	       "delivery reads the spool; set --spool DIR"), "spoolcapd --check --spool none "
	       "--forward URL: exit 1 with the reason");
}

static void test_forward_helpers(void)
{
	static const struct {
		const char *in, *want;
	} urls[] = {
		{ "http://h/x", "http://h/x" },
		{ "https://u:p@h:1/x", "https://u:<redacted>@h:1/x" },
		{ "https://token@h/x", "https://<redacted>@h/x" },
		{ "https://u:p@q@h/", "https://u:<redacted>@h/" },
		{ "http://h/x?a=b@c", "http://h/x?a=b@c" },
		{ "http://h#@x", "http://h#@x" },
		{ "no-scheme", "no-scheme" },
	};
	char out[256], err[512];
	replay_config rc;
	cfg c;

	for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
		cfg_url_redacted(urls[i].in, out, sizeof out);
		if (!tap_ok(strcmp(out, urls[i].want) == 0, "cfg_url_redacted(%s) = %s",
		            urls[i].in, urls[i].want))
			tap_diag("  got %s", out);
	}
	cfg_url_redacted("https://u:p@h/x", out, 12);
	tap_ok(strlen(out) == 11, "cfg_url_redacted cuts to the buffer");
	tap_ok(strcmp(cfg_compression_name(0), "none") == 0 &&
	       strcmp(cfg_compression_name(1), "gzip") == 0 &&
	       strcmp(cfg_compression_name(2), "zstd") == 0 &&
	       strcmp(cfg_compression_name(3), "?") == 0, "cfg_compression_name");

	/* cfg_replay: units, and the engine's "0 = default" avoided. */
	{
		const char *a[] = { "--forward", "http://127.0.0.1:9/",
		                    "--forward-connect-timeout", "1500ms", "--forward-timeout", "2m",
		                    "--forward-low-speed-limit", "2K", "--forward-low-speed-time",
		                    "7s", "--forward-backoff-base", "250ms", "--forward-backoff-cap",
		                    "90s", "--forward-persistent-5xx-attempts", "0",
		                    "--forward-persistent-5xx-age", "0", "--forward-header", "A: 1",
		                    "--forward-compression", "zstd", NULL };
		load_argv(&c, a, err, sizeof err);
		cfg_replay(&c, &rc);
		tap_ok(rc.url == c.forward_url && rc.batch_max_events == 500 &&
		       rc.batch_max_bytes == 4194304 && near(rc.linger, 0.1) &&
		       rc.max_inflight == 2, "cfg_replay: url and batching");
		tap_ok(rc.connect_timeout_ms == 1500 && rc.total_timeout_ms == 120000 &&
		       rc.low_speed_limit == 2048 && rc.low_speed_time == 7,
		       "cfg_replay: timeouts in ms, low speed in bytes/s and s");
		tap_ok(rc.backoff_base_ms == 250 && rc.backoff_cap_ms == 90000,
		       "cfg_replay: backoff in ms");
		tap_ok(rc.persistent_5xx_attempts == -1 && rc.persistent_5xx_age < 0,
		       "cfg_replay: persistent-5xx 0 -> the engine's off (-1), age 0 -> negative");
		tap_ok(rc.nheaders == 1 && strcmp(rc.headers[0], "A: 1") == 0 &&
		       rc.compress == REPLAY_COMPRESS_ZSTD && rc.compress_level == 0 &&
		       !rc.ca_file && !rc.insecure && rc.event_opts == NULL,
		       "cfg_replay: headers, compression, TLS defaults");
		cfg_free(&c);
	}
	{
		const char *a[] = { "--forward", "http://127.0.0.1:9/", NULL };
		load_argv(&c, a, err, sizeof err);
		cfg_replay(&c, &rc);
		tap_ok(rc.persistent_5xx_attempts == 20 && near(rc.persistent_5xx_age, 600) &&
		       rc.connect_timeout_ms == 5000 && rc.total_timeout_ms == 30000 &&
		       rc.low_speed_limit == 1 && rc.low_speed_time == 30 &&
		       rc.backoff_base_ms == 500 && rc.backoff_cap_ms == 60000 &&
		       rc.nheaders == 0, "cfg_replay: the defaults, explicit");
		cfg_free(&c);
	}
}

static void test_flags(void)
{
	char err[512];
	cfg c;

	write_file(path, "[agent]\nlisten = 127.0.0.1:1001\nlisten = 127.0.0.1:1002\n"
	           "threads = 3\n[spool]\ndir = /srv/a\nmax-size = 2G\n[log]\nlevel = error\n");
	{
		const char *a[] = { "-c", path, "--threads", "5", "--max-size=4G", "--spool",
		                    "/srv/b", "--durability", "relaxed", "-f", "--check", NULL };
		tap_is_int(load_argv(&c, a, err, sizeof err), 0, "flags over a file");
		tap_ok(c.config_file && strcmp(c.config_file, path) == 0, "-c FILE remembered");
		tap_is_int(c.threads, 5, "--threads overrides the file");
		tap_is_int(c.max_size, 4ull << 30, "--max-size=4G (--flag=value form)");
		tap_ok(c.spool_dir && strcmp(c.spool_dir, "/srv/b") == 0, "--spool overrides dir");
		tap_is_int(c.durability, CFG_DUR_RELAXED, "--durability");
		tap_is_int(c.log_level, LOGL_ERROR, "a key without a flag keeps the file's value");
		tap_ok(c.nlisten == 2, "the file's two listen addresses without --listen");
		tap_ok(c.foreground && c.check, "-f and --check");
		cfg_free(&c);
	}
	{
		const char *a[] = { "--listen", "127.0.0.1:2001", "-c", path,
		                    "--listen", "unix:/tmp/x.sock", NULL };
		load_argv(&c, a, err, sizeof err);
		tap_ok(c.nlisten == 2 && strcmp(c.listen[0], "127.0.0.1:2001") == 0 &&
		       strcmp(c.listen[1], "unix:/tmp/x.sock") == 0,
		       "--listen on the command line replaces the file's list");
		cfg_free(&c);
	}
	{
		const char *a[] = { "--threads", "2", "--threads", "4", NULL };
		load_argv(&c, a, err, sizeof err);
		tap_is_int(c.threads, 4, "a repeated flag: the last one wins");
		cfg_free(&c);
	}
	{
		const char *a[] = { "--max-frame-size", "100", NULL };
		tap_ok(load_argv(&c, a, err, sizeof err) < 0 &&
		       strcmp(err, "--max-frame-size: 100: must be between 256 and 16777216 (16M)") == 0,
		       "a bad flag value names the flag");
		cfg_free(&c);
	}
	{
		const char *a[] = { "--bogus", NULL };
		tap_ok(load_argv(&c, a, err, sizeof err) < 0 &&
		       strcmp(err, "unknown option '--bogus'") == 0, "unknown long option");
		cfg_free(&c);
	}
	{
		const char *a[] = { "-x", NULL };
		tap_ok(load_argv(&c, a, err, sizeof err) < 0 &&
		       strcmp(err, "unknown option '-x'") == 0, "unknown short option");
		cfg_free(&c);
	}
	{
		const char *a[] = { "--threads", NULL };
		tap_ok(load_argv(&c, a, err, sizeof err) < 0 &&
		       strcmp(err, "option '--threads' needs a value") == 0, "a flag without its value");
		cfg_free(&c);
	}
	{
		const char *a[] = { "--check", "extra", NULL };
		tap_ok(load_argv(&c, a, err, sizeof err) < 0 &&
		       strcmp(err, "unexpected argument 'extra' (options start with --)") == 0,
		       "a stray argument");
		cfg_free(&c);
	}
	{
		char missing[300];
		const char *a[] = { "-c", missing, NULL };
		snprintf(missing, sizeof missing, "%s/missing.ini", dir);
		tap_ok(load_argv(&c, a, err, sizeof err) < 0 &&
		       strstr(err, "cannot read config file") != NULL, "-c with a missing file");
		cfg_free(&c);
	}
	{
		/* --help and --version win over everything else, even a bad file. */
		char missing[300];
		const char *a[] = { "-c", missing, "--help", NULL };
		const char *b[] = { "-V", "--threads", "999", NULL };
		snprintf(missing, sizeof missing, "%s/missing.ini", dir);
		tap_ok(load_argv(&c, a, err, sizeof err) == 0 && c.show_help,
		       "--help: the file is not read");
		cfg_free(&c);
		tap_ok(load_argv(&c, b, err, sizeof err) == 0 && c.show_version,
		       "-V: flag values are not checked");
		cfg_free(&c);
	}
	/* Not tested: a second cfg_load after one that stopped inside a group
	 * of short options ("-xf") resumes in the old argv, because cfg_load
	 * resets optind to 1, not 0 (glibc re-initialises only on 0). The
	 * daemon calls cfg_load once, so only tests could hit it. */

	/* The spooled variable's defaults. */
	{
		const char *a[] = { NULL };
		load_argv(&c, a, err, sizeof err);
		tap_ok(cfg_spooled_var(&c) && strcmp(cfg_spooled_var(&c), "spooled") == 0,
		       "cfg_spooled_var: spooled with a spool");
		cfg_free(&c);
	}
	{
		const char *a[] = { "--spool", "none", NULL };
		load_argv(&c, a, err, sizeof err);
		tap_ok(!cfg_spooling(&c) && cfg_spooled_var(&c) == NULL,
		       "cfg_spooled_var: none with --spool none");
		cfg_free(&c);
	}
	{
		const char *a[] = { "--spooled-var", "none", NULL };
		load_argv(&c, a, err, sizeof err);
		tap_ok(cfg_spooling(&c) && cfg_spooled_var(&c) == NULL,
		       "cfg_spooled_var: explicit none with a spool");
		cfg_free(&c);
	}
	{
		const char *a[] = { "--spool", "none", "--spooled-var", "stored", NULL };
		load_argv(&c, a, err, sizeof err);
		tap_ok(cfg_spooled_var(&c) && strcmp(cfg_spooled_var(&c), "stored") == 0,
		       "cfg_spooled_var: an explicit name with --spool none");
		cfg_free(&c);
	}
	{
		agent_config ac;
		const char *a[] = { "--listen", "127.0.0.1:7", "--threads", "2",
		                    "--max-frame-size", "64K", "--max-connections", "9",
		                    "--hello-timeout", "2s", "--idle-timeout", "1m", NULL };
		load_argv(&c, a, err, sizeof err);
		cfg_agent(&c, &ac);
		tap_ok(ac.nlisten == 1 && strcmp(ac.listen[0], "127.0.0.1:7") == 0 &&
		       ac.threads == 2 && ac.max_frame_size == 65536 && ac.max_connections == 9 &&
		       near(ac.hello_timeout, 2) && near(ac.idle_timeout, 60) &&
		       ac.spooled_var && strcmp(ac.spooled_var, "spooled") == 0,
		       "cfg_agent copies the [agent] settings");
		cfg_free(&c);
	}
}

static void round_trip(const char *what, cfg *a);

/* [capture]: redaction settings, from the file and flags, through
 * cfg_redact; the hash key is read at load time and never printed. */
static void test_capture(void)
{
	static const char key[] = "SEKRET-KEY-0123456789-abcdef";
	char err[1024], text[2048], keyfile[400], shortkey[400], *out;
	redact_config rc;
	cfg c;
	int r;

	snprintf(keyfile, sizeof keyfile, "%s/hash.key", dir);
	snprintf(shortkey, sizeof shortkey, "%s/short.key", dir);
	write_file(keyfile, key);
	write_file(shortkey, "0123456789");

	{
		const char *a[] = { NULL };
		load_argv(&c, a, err, sizeof err);
		cfg_redact(&c, &rc);
		tap_ok(rc.headers == NULL && rc.nrules == 0 && !rc.hash_key && !rc.header_args &&
		       !rc.body_args && !rc.has_body_max && rc.nbody_drop == 0,
		       "[capture] defaults: redact.h's default list and patterns, bodies as sent");
		out = print_str(&c);
		tap_ok(out && strstr(out, "\n[capture]\nredact-headers = authorization "
		       "proxy-authorization cookie set-cookie\n") && strstr(out, "\nbody-max = off\n")
		       && strstr(out, "\nbody-drop = none\n") &&
		       strstr(out, "\nheader-args = *hdrs *headers\n"),
		       "--check shows the default list, patterns and body settings");
		free(out);
		cfg_free(&c);
	}

	snprintf(text, sizeof text, "[capture]\nredact-headers = Authorization, x-api-key\n"
	         "header-action = cookie:hash\nheader-action = set-cookie:drop X-Token:KEEP\n"
	         "hash-key-file = %s\nheader-args = *hdrs reqh\nbody-args = *body\n"
	         "body-max = 4K\nbody-drop = cap-res cap-req\n", keyfile);
	r = load_text(&c, text, err, sizeof err);
	if (!tap_ok(r == 0 && cfg_check(&c, err, sizeof err) == 0, "every [capture] key loads"))
		tap_diag("  %s", err);
	cfg_redact(&c, &rc);
	tap_ok(rc.nheaders == 2 && !strcmp(rc.headers[0], "Authorization") &&
	       !strcmp(rc.headers[1], "x-api-key") && rc.nrules == 3 &&
	       !strcmp(rc.rules[0].name, "cookie") && rc.rules[0].action == REDACT_HASH &&
	       !strcmp(rc.rules[1].name, "set-cookie") && rc.rules[1].action == REDACT_DROP &&
	       !strcmp(rc.rules[2].name, "x-token") && rc.rules[2].action == REDACT_KEEP,
	       "cfg_redact: the list, and the rules in order (names lower-cased)");
	tap_ok(rc.hash_key_len == sizeof key - 1 && !memcmp(rc.hash_key, key, sizeof key - 1),
	       "hash-key-file is read at load time, bytes as they are");
	tap_ok(rc.nheader_args == 2 && !strcmp(rc.header_args[1], "reqh") &&
	       rc.nbody_args == 1 && rc.has_body_max && rc.body_max == 4096 &&
	       rc.nbody_drop == 2 && !strcmp(rc.body_drop[1], "cap-req"),
	       "cfg_redact: patterns, body-max 4K, body-drop list");
	out = print_str(&c);
	tap_ok(out && !strstr(out, "SEKRET") && strstr(out, "\nheader-action = cookie:hash\n") &&
	       strstr(out, "\nheader-action = x-token:keep\n") && strstr(out, keyfile),
	       "--check prints the rules and the key file's path, never the key");
	free(out);
	round_trip("[capture] every key", &c);
	cfg_free(&c);

	load_text(&c, "[capture]\nredact-headers = none\nbody-max = 0\n", err, sizeof err);
	cfg_redact(&c, &rc);
	tap_ok(rc.headers != NULL && rc.nheaders == 0 && rc.has_body_max && rc.body_max == 0,
	       "redact-headers = none is an empty list (not the default); body-max 0 is a cap");
	cfg_free(&c);

	/* Errors, with the line and without the key's bytes. */
	load_text(&c, "[capture]\nheader-action = cookie\n", err, sizeof err);
	is_err(err, 2, "[capture] header-action: 'cookie': expected NAME:ACTION (for example "
	       "cookie:hash; actions: redact, drop, hash, keep)", "header-action without ':'");
	cfg_free(&c);
	load_text(&c, "[capture]\nheader-action = cookie:mask\n", err, sizeof err);
	is_err(err, 2, "[capture] header-action: 'cookie:mask': unknown action (redact, drop, "
	       "hash or keep)", "an unknown action");
	cfg_free(&c);
	load_text(&c, "[capture]\nredact-headers = cookie x@y\n", err, sizeof err);
	is_err(err, 2, "[capture] redact-headers: 'x@y' is not a header name (letters, digits "
	       "and !#$%&'*+-.^_`|~ only)", "a bad header name");
	cfg_free(&c);
	load_text(&c, "[capture]\nheader-args = *\n", err, sizeof err);
	is_err(err, 2, "[capture] header-args: '*' would match every argument; give a name or "
	       "*suffix (for example *hdrs)", "header-args '*'");
	cfg_free(&c);
	load_text(&c, "[capture]\nbody-max = 2G\n", err, sizeof err);
	is_err(err, 2, "[capture] body-max: 2G: must be between 0 and 1G (off: no cap)",
	       "body-max above 1G");
	cfg_free(&c);
	snprintf(text, sizeof text, "[capture]\nhash-key-file = %s\n", shortkey);
	load_text(&c, text, err, sizeof err);
	tap_ok(strstr(err, ":2: [capture] hash-key-file: ") && strstr(err, "16 to 1024 bytes") &&
	       !strstr(err, "0123456789"), "a 10-byte key file is refused, without its bytes");
	cfg_free(&c);
	{
		const char *a[] = { "--header-action", "cookie:hash", NULL };
		r = load_argv(&c, a, err, sizeof err);
		tap_ok(r < 0 && strstr(err, "header-action cookie:hash needs a key: set "
		       "hash-key-file"), "hash without a key is refused: %s", err);
		cfg_free(&c);
	}
	{
		/* The file hashes cookie; the flag keeps it: rules change per name. */
		char cf[500];
		const char *a[] = { "-c", cf, "--header-action", "cookie:keep", "--body-max", "off",
		                    "--redact-headers", "authorization", NULL };

		snprintf(cf, sizeof cf, "%s/capture.ini", dir);
		snprintf(text, sizeof text, "[capture]\nheader-action = cookie:hash "
		         "set-cookie:drop\nhash-key-file = %s\nbody-max = 1K\n", keyfile);
		write_file(cf, text);
		r = load_argv(&c, a, err, sizeof err);
		cfg_redact(&c, &rc);
		tap_ok(r == 0 && rc.nrules == 2 && rc.rules[0].action == REDACT_KEEP &&
		       rc.rules[1].action == REDACT_DROP && !rc.has_body_max && rc.nheaders == 1,
		       "flags override the file: cookie:keep, body-max off, the list replaced");
		cfg_free(&c);
		unlink(cf);
	}
	unlink(keyfile);
	unlink(shortkey);
}

/* print -> load -> print gives the same bytes, and the same values. */
static void round_trip(const char *what, cfg *a)
{
	char err[512], p2[600];
	char *t1, *t2;
	cfg b;
	int r;

	t1 = print_str(a);
	snprintf(p2, sizeof p2, "%s/printed.ini", dir);
	write_file(p2, t1 ? t1 : "");
	cfg_init(&b);
	r = cfg_load_file(&b, p2, err, sizeof err);
	if (!tap_ok(r == 0, "%s: cfg_print output loads back", what))
		tap_diag("  %s", err);
	t2 = print_str(&b);
	if (!tap_ok(t1 && t2 && strcmp(t1, t2) == 0, "%s: printed again, byte for byte", what))
		tap_diag("  first:\n%s\n  second:\n%s", t1 ? t1 : "", t2 ? t2 : "");
	tap_ok(b.nlisten == a->nlisten && b.threads == a->threads &&
	       b.max_frame_size == a->max_frame_size &&
	       b.max_connections == a->max_connections &&
	       near(b.hello_timeout, a->hello_timeout) &&
	       near(b.idle_timeout, a->idle_timeout) &&
	       (cfg_spooled_var(&b) == NULL) == (cfg_spooled_var(a) == NULL) &&
	       cfg_spooling(&b) == cfg_spooling(a) && b.max_size == a->max_size &&
	       b.full_policy == a->full_policy && b.durability == a->durability &&
	       near(b.sync_interval, a->sync_interval) &&
	       b.compression_level == a->compression_level && b.dictionary == a->dictionary &&
	       b.dictionary_size == a->dictionary_size &&
	       b.dictionary_samples == a->dictionary_samples &&
	       b.commit_max_records == a->commit_max_records &&
	       b.commit_max_bytes == a->commit_max_bytes &&
	       near(b.commit_max_delay, a->commit_max_delay) &&
	       b.queue_max_size == a->queue_max_size && near(b.retain, a->retain) &&
	       b.retain_size == a->retain_size && b.log_level == a->log_level,
	       "%s: every value survives the round trip", what);
	tap_ok(cfg_forwarding(&b) == cfg_forwarding(a) &&
	       (!a->forward_url || strcmp(a->forward_url, b.forward_url) == 0) &&
	       b.fwd_batch_events == a->fwd_batch_events &&
	       b.fwd_batch_bytes == a->fwd_batch_bytes && near(b.fwd_linger, a->fwd_linger) &&
	       b.fwd_max_inflight == a->fwd_max_inflight &&
	       near(b.fwd_connect_timeout, a->fwd_connect_timeout) &&
	       near(b.fwd_timeout, a->fwd_timeout) &&
	       b.fwd_low_speed_limit == a->fwd_low_speed_limit &&
	       near(b.fwd_low_speed_time, a->fwd_low_speed_time) &&
	       near(b.fwd_backoff_base, a->fwd_backoff_base) &&
	       near(b.fwd_backoff_cap, a->fwd_backoff_cap) &&
	       b.fwd_compression == a->fwd_compression &&
	       b.fwd_compression_level == a->fwd_compression_level &&
	       b.fwd_nheaders == a->fwd_nheaders && !b.fwd_ca_file == !a->fwd_ca_file &&
	       !b.fwd_ca_dir == !a->fwd_ca_dir && !b.fwd_client_cert == !a->fwd_client_cert &&
	       !b.fwd_client_key == !a->fwd_client_key && b.fwd_insecure == a->fwd_insecure &&
	       b.fwd_p5xx_attempts == a->fwd_p5xx_attempts &&
	       near(b.fwd_p5xx_age, a->fwd_p5xx_age) &&
	       near(b.fwd_stop_timeout, a->fwd_stop_timeout),
	       "%s: every [forward] value survives the round trip", what);
	for (size_t i = 0; i < a->fwd_nheaders && i < b.fwd_nheaders; i++)
		if (!tap_ok(strcmp(a->fwd_headers[i].line, b.fwd_headers[i].line) == 0,
		            "%s: header-file %zu read again, same value", what, i))
			break;
	free(t1);
	free(t2);
	cfg_free(&b);
}

static void test_round_trip(void)
{
	char err[512];
	cfg c;

	{
		const char *a[] = { NULL };
		load_argv(&c, a, err, sizeof err);
		round_trip("defaults", &c);
		cfg_free(&c);
	}
	load_text(&c, full_file, err, sizeof err);
	round_trip("every key set", &c);
	cfg_free(&c);
	{
		const char *a[] = { "--spool", "none", "--hello-timeout", "1.5s",
		                    "--compression-level", "off", "--retain", "90m", NULL };
		load_argv(&c, a, err, sizeof err);
		round_trip("--spool none, 1.5s, off, 90m", &c);
		cfg_free(&c);
	}
	{
		/* header-file settings print as their path: they load back. */
		char h1[400], h2[400];
		const char *a[] = { "--spool", "/srv/s", "--forward", "https://u:p@h:8443/x?y=1",
		                    "--forward-header-file", h1, "--forward-header-file", h2,
		                    "--forward-ca-file", ca_pem, "--forward-ca-dir", ca_dir,
		                    "--forward-client-cert", cert_pem, "--forward-client-key",
		                    key_pem, "--forward-linger", "1.5ms", "--forward-backoff-cap",
		                    "45m", "--forward-compression", "gzip",
		                    "--forward-compression-level", "9", "--forward-insecure", "yes",
		                    "--forward-persistent-5xx-attempts", "0",
		                    "--forward-persistent-5xx-age", "0", "--forward-stop-timeout",
		                    "0", NULL };
		snprintf(h1, sizeof h1, "Authorization: %s", tok);
		snprintf(h2, sizeof h2, "X-Api-Key: %s", tok2);
		if (load_argv(&c, a, err, sizeof err) < 0)
			tap_diag("  %s", err);
		/* a URL password prints redacted, which loading refuses: not here */
		free(c.forward_url);
		c.forward_url = strdup("https://h:8443/x?y=1");
		round_trip("[forward] with header-files and TLS paths", &c);
		cfg_free(&c);
	}
}

/* Every setting cfg_print knows is in this test's table (so a new one
 * cannot skip the documentation checks below). */
static void test_table_complete(void)
{
	char err[512], *text, *line, *save = NULL, section[32] = "";
	unsigned unknown = 0;
	const char *a[] = { NULL };
	cfg c;

	load_argv(&c, a, err, sizeof err);
	text = print_str(&c);
	cfg_free(&c);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char key[64];
		size_t i;

		if (sscanf(line, "[%31[^]]]", section) == 1)
			continue;
		if (line[0] == '#') {
			/* "# ca-file = (not set: ...)": a key shown as unset */
			if (sscanf(line, "# %63s = (not set", key) != 1 || !strstr(line, "(not set"))
				continue;
		} else if (sscanf(line, "%63s =", key) != 1) {
			continue;
		}
		for (i = 0; i < NSETTINGS; i++)
			if (!strcmp(settings[i].section, section) && !strcmp(settings[i].key, key))
				break;
		if (i == NSETTINGS) {
			tap_diag("cfg_print shows [%s] %s, missing from this test's table",
			         section, key);
			unknown++;
		}
	}
	free(text);
	tap_ok(unknown == 0, "every key cfg_print shows is in the test's settings table");

	/* And every flag of the table is a flag cfg_load knows. */
	unknown = 0;
	for (size_t i = 0; i < NSETTINGS; i++) {
		char opt[64];
		const char *b[] = { opt, NULL };

		snprintf(opt, sizeof opt, "--%s", settings[i].flag);
		if (load_argv(&c, b, err, sizeof err) < 0 && strstr(err, "unknown option")) {
			tap_diag("%s: %s", opt, err);
			unknown++;
		}
		cfg_free(&c);
	}
	tap_ok(unknown == 0, "every flag in the table is accepted by cfg_load");
}

/* 1 if pat occurs in text between the header "<open>section<close>" and
 * the next one starting with open (keys share names across sections). */
static int in_section(const char *text, const char *open, const char *section,
                      const char *close, const char *pat)
{
	char head[64];
	const char *start, *end, *hit;

	snprintf(head, sizeof head, "%s%s%s", open, section, close);
	start = strstr(text, head);
	if (!start)
		return 0;
	start += strlen(head);
	end = strstr(start, open);
	hit = strstr(start, pat);
	return hit && (!end || hit < end);
}

/* --help, doc/spoolcapd.8 and contrib/spoolcapd.conf mention every setting
 * (each key under its own section). */
static void test_documented(void)
{
	char p[600], esc[128], pat[160], *help = NULL, *man, *conf;
	size_t len = 0;
	FILE *f = open_memstream(&help, &len);
	unsigned miss_help = 0, miss_flag = 0, miss_key = 0, miss_conf = 0;

	cfg_usage(f);
	fclose(f);
	snprintf(p, sizeof p, "%s/doc/spoolcapd.8", srcdir);
	man = read_file(p);
	snprintf(p, sizeof p, "%s/contrib/spoolcapd.conf", srcdir);
	conf = read_file(p);
	if (!man || !conf) {
		tap_skip(4, "doc/spoolcapd.8 or contrib/spoolcapd.conf not found under top_srcdir");
		free(help);
		free(man);
		free(conf);
		return;
	}
	for (size_t i = 0; i < NSETTINGS; i++) {
		snprintf(pat, sizeof pat, "--%s ", settings[i].flag);
		if (!strstr(help, pat)) {
			tap_diag("--help does not describe --%s", settings[i].flag);
			miss_help++;
		}
		roff_escape(esc, sizeof esc, settings[i].flag);
		snprintf(pat, sizeof pat, "\\-\\-%s", esc);
		if (!strstr(man, pat)) {
			tap_diag("spoolcapd.8 does not describe --%s", settings[i].flag);
			miss_flag++;
		}
		roff_escape(esc, sizeof esc, settings[i].key);
		snprintf(pat, sizeof pat, "\n.BI %s \" = \"", esc);
		if (!in_section(man, "\n.B [", settings[i].section, "]\n.RS\n", pat)) {
			tap_diag("spoolcapd.8 does not describe [%s] %s (.BI %s \" = \" ...)",
			         settings[i].section, settings[i].key, esc);
			miss_key++;
		}
		snprintf(pat, sizeof pat, "\n%s = ", settings[i].key);
		snprintf(esc, sizeof esc, "\n# %s = ", settings[i].key);
		if (!in_section(conf, "\n[", settings[i].section, "]\n", pat) &&
		    !in_section(conf, "\n[", settings[i].section, "]\n", esc)) {
			tap_diag("contrib/spoolcapd.conf does not show [%s] %s",
			         settings[i].section, settings[i].key);
			miss_conf++;
		}
	}
	tap_ok(miss_help == 0, "--help describes every flag");
	tap_ok(miss_flag == 0, "doc/spoolcapd.8 describes every flag");
	tap_ok(miss_key == 0, "doc/spoolcapd.8 describes every configuration key");
	tap_ok(miss_conf == 0, "contrib/spoolcapd.conf shows every key");
	free(help);
	free(man);
	free(conf);
}

/* contrib/spoolcapd.conf is valid, and holds exactly the defaults. */
static void test_contrib(void)
{
	char conf[600], err[1024], cmd[1500], out[8192], *t_def, *t_conf;
	const char *none[] = { NULL };
	const char *a[] = { "-c", conf, NULL };
	struct stat st;
	cfg c;
	int r;

	snprintf(conf, sizeof conf, "%s/contrib/spoolcapd.conf", srcdir);
	if (stat(conf, &st) < 0) {
		tap_skip(5, "contrib/spoolcapd.conf not found under top_srcdir");
		return;
	}
	load_argv(&c, none, err, sizeof err);
	t_def = print_str(&c);
	cfg_free(&c);
	r = load_argv(&c, a, err, sizeof err);
	if (!tap_ok(r == 0, "contrib/spoolcapd.conf loads"))
		tap_diag("  %s", err);
	t_conf = print_str(&c);
	cfg_free(&c);
	if (!tap_ok(t_def && t_conf && strcmp(body(t_def), body(t_conf)) == 0,
	            "contrib/spoolcapd.conf holds exactly the defaults"))
		tap_diag("  defaults:\n%s\n  contrib:\n%s", t_def ? t_def : "",
		         t_conf ? t_conf : "");
	free(t_def);
	free(t_conf);

	snprintf(cmd, sizeof cmd, "'%s/src/spoolcapd' -c '%s' --check", builddir, conf);
	r = run(cmd, out, sizeof out);
	if (!tap_ok(r == 0 && strstr(out, "\n[spool]\n"), "spoolcapd -c contrib/spoolcapd.conf "
	            "--check exits 0 and prints the configuration"))
		tap_diag("  exit %d: %s", r, out);

	/* The daemon's own error path: message, hint, exit status 1. */
	write_file(path, "[spool]\nmax-size = 1.5G\n");
	snprintf(cmd, sizeof cmd, "'%s/src/spoolcapd' -c '%s' --check", builddir, path);
	r = run(cmd, out, sizeof out);
	snprintf(err, sizeof err, "spoolcapd: %s:2: [spool] max-size: '1.5G': sizes are whole "
	         "numbers (write 1536K, not 1.5M)\nTry 'spoolcapd --help' for more "
	         "information.\n", path);
	if (!tap_ok(r == 1 && strcmp(out, err) == 0, "spoolcapd --check on a bad file: "
	            "FILE:LINE message, exit 1"))
		tap_diag("  exit %d: %s", r, out);
	snprintf(cmd, sizeof cmd, "'%s/src/spoolcapd' --check --spool none", builddir);
	r = run(cmd, out, sizeof out);
	tap_ok(r == 0 && strstr(out, "\ndir = none\n") && strstr(out, "\nspooled-var = none\n"),
	       "spoolcapd --check --spool none: counting only, no spooled variable");
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");

	srcdir = getenv("top_srcdir");
	builddir = getenv("top_builddir");
	if (!srcdir || !*srcdir)
		srcdir = TOP_SRCDIR;
	if (!builddir || !*builddir)
		builddir = TOP_BUILDDIR;
	snprintf(dir, sizeof dir, "%s/t-config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp %s: %s\n", dir, strerror(errno));
		return 1;
	}
	snprintf(path, sizeof path, "%s/t.ini", dir);

	test_defaults();
	test_parse_size();
	test_parse_duration();
	test_parse_uint();
	test_file_every_key();
	test_file_alternatives();
	test_file_bad_values();
	test_file_structure();
	make_forward_files();
	test_forward_file();
	test_header_file();
	test_forward_flags();
	test_forward_checks();
	test_forward_print();
	test_forward_helpers();
	test_capture();
	test_flags();
	test_round_trip();
	test_table_complete();
	test_documented();
	test_contrib();

	remove_forward_files();
	unlink(path);
	{
		char p2[600];
		snprintf(p2, sizeof p2, "%s/printed.ini", dir);
		unlink(p2);
	}
	rmdir(dir);
	return tap_done(0);
}
