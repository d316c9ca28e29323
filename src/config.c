/* config.c -- spoolcapd's settings: defaults, the INI file (libinih) and the
 * command-line flags. One table maps each setting to its [section] key, its
 * flag and its parser, so the file and the flags cannot drift apart. Flags
 * are collected first, the file is loaded, then the flags are applied over
 * it (a --listen on the command line replaces the file's listen list). */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "spoolcap/config.h"
#include "spoolcap/log.h"
#include "spoolcap/spool.h"
#include "spoolcap/spop.h"

#define SPOOLED_VAR_MAX 40      /* HAProxy keeps "txn.<prefix>.<name>" <= 63 */

/* ---- value parsers ---- */

int cfg_parse_uint(const char *s, uint64_t *out, char *err, size_t errlen)
{
	uint64_t v = 0;

	if (!*s) {
		snprintf(err, errlen, "empty value, expected a number");
		return -1;
	}
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9') {
			snprintf(err, errlen, "'%s' is not a number", s);
			return -1;
		}
		if (v > (UINT64_MAX - 9) / 10) {
			snprintf(err, errlen, "'%s' is too large", s);
			return -1;
		}
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return 0;
}

int cfg_parse_size(const char *s, uint64_t *out, char *err, size_t errlen)
{
	char num[32];
	const char *p = s;
	uint64_t v, mult = 1;
	size_t n;

	while (*p >= '0' && *p <= '9')
		p++;
	n = (size_t)(p - s);
	if (n == 0 || n >= sizeof(num)) {
		snprintf(err, errlen, "'%s' is not a size (examples: 16380, 64K, 1M)", s);
		return -1;
	}
	memcpy(num, s, n);
	num[n] = '\0';
	if (cfg_parse_uint(num, &v, err, errlen) < 0)
		return -1;
	if (*p == '.') {
		snprintf(err, errlen, "'%s': sizes are whole numbers (write 1536K, not 1.5M)", s);
		return -1;
	}
	if (*p) {
		const char *u = p;
		if (strchr("kK", *u))
			mult = 1ull << 10;
		else if (strchr("mM", *u))
			mult = 1ull << 20;
		else if (strchr("gG", *u))
			mult = 1ull << 30;
		else if (!strchr("bB", *u))
			goto bad;
		if (mult > 1) {
			u++;
			if (*u == 'i' || *u == 'I')
				u++;
		}
		if (*u == 'b' || *u == 'B')
			u++;
		if (*u)
			goto bad;
	}
	if (v > UINT64_MAX / mult) {
		snprintf(err, errlen, "'%s' is too large", s);
		return -1;
	}
	*out = v * mult;
	return 0;
bad:
	snprintf(err, errlen, "'%s': unknown size unit (use K, M or G, powers of 1024)", s);
	return -1;
}

int cfg_parse_duration(const char *s, double *out, char *err, size_t errlen)
{
	const char *p = s;
	double v, mult = 1.0;
	char *end;
	int digits = 0;

	/* strtod alone would take "inf", "nan", hex and exponents. */
	for (; (*p >= '0' && *p <= '9') || *p == '.'; p++)
		digits += *p != '.';
	if (!digits) {
		snprintf(err, errlen, "'%s' is not a duration (examples: 5s, 500ms, 2m)", s);
		return -1;
	}
	errno = 0;
	v = strtod(s, &end);
	if (errno || end != p) {
		snprintf(err, errlen, "'%s' is not a duration (examples: 5s, 500ms, 2m)", s);
		return -1;
	}
	if (strcmp(p, "ms") == 0)
		mult = 0.001;
	else if (strcmp(p, "s") == 0 || *p == '\0')
		mult = 1.0;
	else if (strcmp(p, "m") == 0)
		mult = 60.0;
	else if (strcmp(p, "h") == 0)
		mult = 3600.0;
	else {
		snprintf(err, errlen, "'%s': unknown duration unit (use ms, s, m or h)", s);
		return -1;
	}
	*out = v * mult;
	return 0;
}

/* ---- setters: one per setting, shared by the file and the flags ---- */

typedef int (*setter)(cfg *c, const char *v, char *err, size_t errlen);

static int add_listen(cfg *c, const char *spec, char *err, size_t errlen)
{
	int family;
	char host[128];
	unsigned port;
	char **l;

	if (agent_parse_addr(spec, &family, host, sizeof(host), &port, err, errlen) < 0)
		return -1;
	l = realloc(c->listen, (c->nlisten + 1) * sizeof(*l));
	if (!l)
		goto oom;
	c->listen = l;
	c->listen[c->nlisten] = strdup(spec);
	if (!c->listen[c->nlisten])
		goto oom;
	c->nlisten++;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

static int set_listen(cfg *c, const char *v, char *err, size_t errlen)
{
	char *copy = strdup(v), *save = NULL;
	int n = 0, rc = 0;

	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if ((rc = add_listen(c, t, err, errlen)) < 0)
			break;
		n++;
	}
	free(copy);
	if (rc == 0 && n == 0) {
		snprintf(err, errlen, "empty listen address");
		rc = -1;
	}
	return rc;
}

static int set_threads(cfg *c, const char *v, char *err, size_t errlen)
{
	uint64_t n;

	if (strcasecmp(v, "auto") == 0) {
		c->threads = 0;
		return 0;
	}
	if (cfg_parse_uint(v, &n, err, errlen) < 0)
		return -1;
	if (n > AGENT_THREADS_MAX) {
		snprintf(err, errlen, "%s: at most %u I/O threads (0 or auto = one per CPU)", v,
		         AGENT_THREADS_MAX);
		return -1;
	}
	c->threads = (unsigned)n;
	return 0;
}

static int set_max_frame_size(cfg *c, const char *v, char *err, size_t errlen)
{
	uint64_t n;

	if (cfg_parse_size(v, &n, err, errlen) < 0)
		return -1;
	if (n < SPOP_FRAME_SIZE_MIN || n > AGENT_FRAME_SIZE_MAX) {
		snprintf(err, errlen, "%s: must be between %u and %u (16M)", v,
		         SPOP_FRAME_SIZE_MIN, AGENT_FRAME_SIZE_MAX);
		return -1;
	}
	c->max_frame_size = (uint32_t)n;
	return 0;
}

static int set_max_connections(cfg *c, const char *v, char *err, size_t errlen)
{
	uint64_t n;

	if (cfg_parse_uint(v, &n, err, errlen) < 0)
		return -1;
	if (n < 1 || n > 1000000) {
		snprintf(err, errlen, "%s: must be between 1 and 1000000", v);
		return -1;
	}
	c->max_connections = (unsigned)n;
	return 0;
}

static int set_hello_timeout(cfg *c, const char *v, char *err, size_t errlen)
{
	double d;

	if (cfg_parse_duration(v, &d, err, errlen) < 0)
		return -1;
	if (d < 0.001 || d > 3600) {
		snprintf(err, errlen, "%s: must be between 1ms and 1h", v);
		return -1;
	}
	c->hello_timeout = d;
	return 0;
}

static int set_idle_timeout(cfg *c, const char *v, char *err, size_t errlen)
{
	double d;

	if (strcasecmp(v, "off") == 0) {
		c->idle_timeout = 0;
		return 0;
	}
	if (cfg_parse_duration(v, &d, err, errlen) < 0)
		return -1;
	if (d > 86400) {
		snprintf(err, errlen, "%s: at most one day (24h); 0 or off disables it", v);
		return -1;
	}
	c->idle_timeout = d;
	return 0;
}

static int set_spooled_var(cfg *c, const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);

	free(c->spooled_var);
	c->spooled_var = NULL;
	c->spooled_var_set = 1;
	if (n == 0 || strcasecmp(v, "none") == 0)
		return 0;
	if (n > SPOOLED_VAR_MAX) {
		snprintf(err, errlen, "'%s': at most %d characters (HAProxy limits "
		         "txn.<prefix>.<name> to 63)", v, SPOOLED_VAR_MAX);
		return -1;
	}
	for (const char *p = v; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.') {
			snprintf(err, errlen, "'%s': a variable name has only letters, digits, "
			         "'_' and '.'", v);
			return -1;
		}
	}
	c->spooled_var = strdup(v);
	if (!c->spooled_var) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int set_log_level(cfg *c, const char *v, char *err, size_t errlen)
{
	int l = log_level_parse(v);

	if (l < 0) {
		snprintf(err, errlen, "'%s': expected error, warn, info or debug", v);
		return -1;
	}
	c->log_level = l;
	return 0;
}

/* ---- [spool] ---- */

static const char *const durability_names[] = { "process", "relaxed", "durable", "receipt" };

const char *cfg_durability_name(int d)
{
	return d >= 0 && d < 4 ? durability_names[d] : "?";
}

int cfg_spooling(const cfg *c)
{
	return !c->spool_dir || strcmp(c->spool_dir, "none") != 0;
}

static int set_string(char **dst, const char *v, char *err, size_t errlen)
{
	char *s = strdup(v);

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	free(*dst);
	*dst = s;
	return 0;
}

static int set_spool_dir(cfg *c, const char *v, char *err, size_t errlen)
{
	if (!*v) {
		snprintf(err, errlen, "empty directory (use none to count messages without storing them)");
		return -1;
	}
	return set_string(&c->spool_dir, v, err, errlen);
}

static int size_in(const char *v, uint64_t *out, uint64_t lo, uint64_t hi, const char *range,
                   char *err, size_t errlen)
{
	if (cfg_parse_size(v, out, err, errlen) < 0)
		return -1;
	if (*out < lo || *out > hi) {
		snprintf(err, errlen, "%s: must be %s", v, range);
		return -1;
	}
	return 0;
}

static int set_max_size(cfg *c, const char *v, char *err, size_t errlen)
{
	return size_in(v, &c->max_size, 1u << 20, (uint64_t)1 << 50, "between 1M and 1P", err, errlen);
}

static int set_full_policy(cfg *c, const char *v, char *err, size_t errlen)
{
	int p = spool_full_policy_parse(v);

	if (p < 0) {
		snprintf(err, errlen, "'%s': expected drop-newest or drop-oldest", v);
		return -1;
	}
	c->full_policy = p;
	return 0;
}

static int set_durability(cfg *c, const char *v, char *err, size_t errlen)
{
	for (int i = 0; i < 4; i++)
		if (strcasecmp(v, durability_names[i]) == 0) {
			c->durability = i;
			return 0;
		}
	snprintf(err, errlen, "'%s': expected process, relaxed, durable or receipt", v);
	return -1;
}

static int set_sync_interval(cfg *c, const char *v, char *err, size_t errlen)
{
	if (cfg_parse_duration(v, &c->sync_interval, err, errlen) < 0)
		return -1;
	if (c->sync_interval < 0.01 || c->sync_interval > 3600) {
		snprintf(err, errlen, "%s: must be between 10ms and 1h", v);
		return -1;
	}
	return 0;
}

static int set_compression_level(cfg *c, const char *v, char *err, size_t errlen)
{
	uint64_t n;

	if (strcasecmp(v, "off") == 0) {
		c->compression_level = 0;
		return 0;
	}
	if (cfg_parse_uint(v, &n, err, errlen) < 0)
		return -1;
	if (n > 19) {
		snprintf(err, errlen, "%s: zstd levels go from 1 to 19 (0 or off stores records uncompressed)", v);
		return -1;
	}
	c->compression_level = (int)n;
	return 0;
}

static int set_bool(int *dst, const char *v, char *err, size_t errlen)
{
	if (!strcasecmp(v, "on") || !strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1"))
		*dst = 1;
	else if (!strcasecmp(v, "off") || !strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0"))
		*dst = 0;
	else {
		snprintf(err, errlen, "'%s': expected on or off", v);
		return -1;
	}
	return 0;
}

static int set_dictionary(cfg *c, const char *v, char *err, size_t errlen)
{
	return set_bool(&c->dictionary, v, err, errlen);
}

static int set_dictionary_size(cfg *c, const char *v, char *err, size_t errlen)
{
	return size_in(v, &c->dictionary_size, 1024, 1u << 20, "between 1K and 1M", err, errlen);
}

static int set_dictionary_samples(cfg *c, const char *v, char *err, size_t errlen)
{
	uint64_t n;

	if (cfg_parse_uint(v, &n, err, errlen) < 0)
		return -1;
	if (n < 10 || n > 1000000) {
		snprintf(err, errlen, "%s: must be between 10 and 1000000", v);
		return -1;
	}
	c->dictionary_samples = (unsigned)n;
	return 0;
}

static int set_commit_max_records(cfg *c, const char *v, char *err, size_t errlen)
{
	uint64_t n;

	if (cfg_parse_uint(v, &n, err, errlen) < 0)
		return -1;
	if (n < 1 || n > 100000) {
		snprintf(err, errlen, "%s: must be between 1 and 100000", v);
		return -1;
	}
	c->commit_max_records = (unsigned)n;
	return 0;
}

static int set_commit_max_bytes(cfg *c, const char *v, char *err, size_t errlen)
{
	return size_in(v, &c->commit_max_bytes, 4096, 1u << 30, "between 4K and 1G", err, errlen);
}

static int set_commit_max_delay(cfg *c, const char *v, char *err, size_t errlen)
{
	if (cfg_parse_duration(v, &c->commit_max_delay, err, errlen) < 0)
		return -1;
	if (c->commit_max_delay > 1) {
		snprintf(err, errlen, "%s: at most 1s (every ACK waits for it)", v);
		return -1;
	}
	return 0;
}

static int set_queue_max_size(cfg *c, const char *v, char *err, size_t errlen)
{
	return size_in(v, &c->queue_max_size, 1u << 20, (uint64_t)1 << 40, "between 1M and 1T", err, errlen);
}

static int set_retain(cfg *c, const char *v, char *err, size_t errlen)
{
	if (strcasecmp(v, "off") == 0) {
		c->retain = 0;
		return 0;
	}
	if (cfg_parse_duration(v, &c->retain, err, errlen) < 0)
		return -1;
	if (c->retain > 10.0 * 366 * 86400) {
		snprintf(err, errlen, "%s: at most 10 years (87840h); off keeps nothing", v);
		return -1;
	}
	return 0;
}

static int set_retain_size(cfg *c, const char *v, char *err, size_t errlen)
{
	if (strcasecmp(v, "off") == 0) {
		c->retain_size = 0;
		return 0;
	}
	return cfg_parse_size(v, &c->retain_size, err, errlen);
}

static int set_dlq_max_size(cfg *c, const char *v, char *err, size_t errlen)
{
	return cfg_parse_size(v, &c->dlq_max_size, err, errlen);
}

static int unsupported(cfg *c, const char *v, char *err, size_t errlen)
{
	(void)c;
	(void)v;
	snprintf(err, errlen, "is not supported by this build yet (delivery to an event "
	         "processor comes in a later release; 'spoolcap dump' reads the spool meanwhile)");
	return -1;
}

struct setting {
	const char *section, *key;      /* in the file */
	const char *flag;               /* long option, NULL = file only */
	setter set;
};

static const struct setting settings[] = {
	{ "agent",   "listen",          "listen",          set_listen },
	{ "agent",   "threads",         "threads",         set_threads },
	{ "agent",   "max-frame-size",  "max-frame-size",  set_max_frame_size },
	{ "agent",   "max-connections", "max-connections", set_max_connections },
	{ "agent",   "hello-timeout",   "hello-timeout",   set_hello_timeout },
	{ "agent",   "idle-timeout",    "idle-timeout",    set_idle_timeout },
	{ "agent",   "spooled-var",     "spooled-var",     set_spooled_var },
	{ "log",     "level",           "log-level",       set_log_level },
	{ "spool",   "dir",             "spool",           set_spool_dir },
	{ "spool",   "max-size",        "max-size",        set_max_size },
	{ "spool",   "full-policy",     "full-policy",     set_full_policy },
	{ "spool",   "durability",      "durability",      set_durability },
	{ "spool",   "sync-interval",   "sync-interval",   set_sync_interval },
	{ "spool",   "compression-level", "compression-level", set_compression_level },
	{ "spool",   "dictionary",      "dictionary",      set_dictionary },
	{ "spool",   "dictionary-size", "dictionary-size", set_dictionary_size },
	{ "spool",   "dictionary-samples", "dictionary-samples", set_dictionary_samples },
	{ "spool",   "commit-max-records", "commit-max-records", set_commit_max_records },
	{ "spool",   "commit-max-bytes", "commit-max-bytes", set_commit_max_bytes },
	{ "spool",   "commit-max-delay", "commit-max-delay", set_commit_max_delay },
	{ "spool",   "queue-max-size",  "queue-max-size",  set_queue_max_size },
	{ "spool",   "retain",          "retain",          set_retain },
	{ "spool",   "retain-size",     "retain-size",     set_retain_size },
	{ "spool",   "dlq-max-size",    "dlq-max-size",    set_dlq_max_size },
	{ "forward", "url",             "forward",         unsupported },
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* ---- defaults ---- */

void cfg_init(cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->threads = 0;
	c->max_frame_size = CFG_DEFAULT_MAX_FRAME_SIZE;
	c->max_connections = CFG_DEFAULT_MAX_CONNECTIONS;
	c->hello_timeout = CFG_DEFAULT_HELLO_TIMEOUT;
	c->idle_timeout = 0;
	c->log_level = LOGL_INFO;
	c->max_size = (uint64_t)1 << 30;
	c->full_policy = SPOOL_FULL_DROP_NEWEST;
	c->durability = CFG_DUR_PROCESS;
	c->sync_interval = 1.0;
	c->compression_level = 3;
	c->dictionary = 1;
	c->dictionary_size = 64u << 10;
	c->dictionary_samples = 4000;
	c->commit_max_records = 1024;
	c->commit_max_bytes = 4u << 20;
	c->commit_max_delay = 0;
	c->queue_max_size = 64u << 20;
}

static void free_listen(cfg *c)
{
	for (size_t i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	free(c->listen);
	c->listen = NULL;
	c->nlisten = 0;
}

void cfg_free(cfg *c)
{
	free_listen(c);
	free(c->spooled_var);
	free(c->spool_dir);
	free(c->config_file);
	memset(c, 0, sizeof(*c));
}

/* ---- the INI file ---- */

struct ini_state {
	cfg        *c;
	FILE       *f;
	int         line;           /* line being parsed */
	int         long_line;      /* first line longer than the reader's buffer */
	int         max_len;        /* longest line the reader takes whole */
	int         err_line;       /* first line a handler refused */
	int         key_seen;       /* a key line since the last [section] */
	int         continued;      /* this line continues the previous key (inih) */
	char        err[512];
};

/* fgets for inih that counts lines, so handler errors can name them, and
 * catches lines too long for inih's buffer instead of parsing their tail. */
static char *line_reader(char *str, int num, void *stream)
{
	struct ini_state *st = stream;
	size_t n;

	if (!fgets(str, num, st->f))
		return NULL;
	st->line++;
	st->max_len = num - 2;
	n = strlen(str);
	if (n == (size_t)num - 1 && str[n - 1] != '\n' && !feof(st->f)) {
		int ch;
		while ((ch = getc(st->f)) != EOF && ch != '\n')
			;
		if (!st->long_line)
			st->long_line = st->line;
	}
	/* Classify the line as inih will, only to explain errors: an indented
	 * line after a key continues that key's value. */
	{
		const char *p = str + strspn(str, " \t");
		int indented = p > str, blank = !*p || *p == '\n' || *p == '\r';

		st->continued = 0;
		if (blank || *p == '#' || *p == ';')
			;
		else if (indented && st->key_seen)
			st->continued = 1;
		else
			st->key_seen = *p != '[';
	}
	return str;
}

static int key_handler(void *user, const char *section, const char *key, const char *value)
{
	struct ini_state *st = user;
	char err[200];
	int known_section = 0;

	if (st->err_line)
		return 1;               /* report only the first problem */
	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *s = &settings[i];
		if (strcmp(section, s->section) != 0)
			continue;
		known_section = 1;
		if (strcmp(key, s->key) != 0)
			continue;
		/* An indented line continues the previous key (inih's multi-line
		 * values); only listen takes several values, so anywhere else it
		 * is a mistake that would silently change the previous setting. */
		if (st->continued && s->set != set_listen) {
			snprintf(st->err, sizeof(st->err), "[%s] '%s' is indented, so it is read as "
			         "a second value for %s; remove the indentation", section, value, key);
			st->err_line = st->line;
			return 0;
		}
		if (s->set(st->c, value, err, sizeof(err)) < 0) {
			const char *hint = "";
			char cont[96];

			/* The two ways a well-meant line turns into a bad value. */
			if (st->continued) {
				snprintf(cont, sizeof(cont), " (this line is indented, so it "
				         "continues %s; remove the indentation)", key);
				hint = cont;
			} else if (strstr(value, " #") || strstr(value, "\t#")) {
				hint = " (a comment after a value starts with ';', not '#')";
			}
			if (s->set == unsupported)
				snprintf(st->err, sizeof(st->err), "[%s] %s", section, err);
			else
				snprintf(st->err, sizeof(st->err), "[%s] %s: %s%s", section, key,
				         err, hint);
			st->err_line = st->line;
			return 0;
		}
		return 1;
	}
	st->err_line = st->line;
	if (!*section) {
		snprintf(st->err, sizeof(st->err), "'%s' is outside any section "
		         "(put it under [agent], [spool] or [log])", key);
	} else if (!known_section) {
		snprintf(st->err, sizeof(st->err), "unknown section [%s] (known: [agent], [spool], [log])",
		         section);
	} else {
		char alt[64];
		size_t i;
		snprintf(alt, sizeof(alt), "%s", key);
		for (i = 0; alt[i]; i++)
			if (alt[i] == '_')
				alt[i] = '-';
		for (i = 0; i < NSETTINGS; i++)
			if (strcmp(settings[i].section, section) == 0 &&
			    strcmp(settings[i].key, alt) == 0)
				break;
		snprintf(st->err, sizeof(st->err), "unknown key '%s' in [%s]%s%s%s", key, section,
		         i < NSETTINGS ? " (did you mean " : "", i < NSETTINGS ? alt : "",
		         i < NSETTINGS ? "?)" : "");
	}
	return 0;
}

int cfg_load_file(cfg *c, const char *path, char *err, size_t errlen)
{
	struct ini_state st;
	int r;

	memset(&st, 0, sizeof(st));
	st.c = c;
	st.f = fopen(path, "r");
	if (!st.f) {
		snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
		return -1;
	}
	r = ini_parse_stream(line_reader, &st, key_handler, &st);
	fclose(st.f);
	/* inih goes on after an error; report whichever came first. */
	if (st.long_line && (!st.err_line || st.long_line <= st.err_line) &&
	    (r <= 0 || st.long_line <= r)) {
		snprintf(err, errlen, "%s:%d: line longer than %d characters (split it: "
		         "listen may be repeated)", path, st.long_line, st.max_len);
		return -1;
	}
	if (r > 0 && (!st.err_line || r < st.err_line)) {
		snprintf(err, errlen, "%s:%d: syntax error (expected [section], key = value "
		         "or a comment)", path, r);
		return -1;
	}
	if (st.err_line) {
		snprintf(err, errlen, "%s:%d: %s", path, st.err_line, st.err);
		return -1;
	}
	if (r < 0) {
		snprintf(err, errlen, "cannot parse config file %s", path);
		return -1;
	}
	return 0;
}

/* ---- flags ---- */

enum { OPT_BASE = 256, OPT_CHECK, OPT_FOREGROUND };

void cfg_usage(FILE *f)
{
	fprintf(f,
"Usage: spoolcapd [OPTION]...\n"
"SPOP agent for HAProxy's SPOE filter: stores every message HAProxy sends in\n"
"a durable LMDB spool (zstd-compressed) and acknowledges each NOTIFY once its\n"
"messages are stored.\n"
"\n"
"  -c, --config FILE          read settings from FILE (INI); flags override it\n"
"      --listen ADDR          listen on ADDR: HOST:PORT, [IPV6]:PORT or unix:PATH;\n"
"                             repeatable (default " CFG_DEFAULT_LISTEN ")\n"
"      --threads N            I/O threads (default: one per online CPU)\n"
"      --max-frame-size SIZE  largest SPOP frame accepted, 256 to 16M\n"
"                             (default 1M); HAProxy's value is used if smaller\n"
"      --max-connections N    open connections at most (default %u)\n"
"      --hello-timeout TIME   wait this long for HAPROXY-HELLO (default 5s)\n"
"      --idle-timeout TIME    close connections idle this long (default off)\n"
"      --spooled-var NAME     txn variable each ACK sets to true/false: was the\n"
"                             message stored? (default " CFG_DEFAULT_SPOOLED_VAR " with a spool;\n"
"                             none: no variable)\n"
"\n"
"Spool:\n"
"      --spool DIR            spool directory (default " CFG_DEFAULT_SPOOL_DIR ");\n"
"                             none: count messages without storing them\n"
"      --max-size SIZE        most record bytes the spool holds (default 1G)\n"
"      --full-policy POLICY   when full: drop-newest (default) or drop-oldest\n"
"      --durability MODE      when to ACK: process (default; after the commit,\n"
"                             no fsync: survives kill -9), relaxed (one flush),\n"
"                             durable (fsync: survives power loss), or receipt\n"
"                             (before the commit: a crash loses queued messages)\n"
"      --sync-interval TIME   background flush period in process and receipt modes (default 1s)\n"
"      --compression-level N  zstd level 1-19 (default 3); 0 or off stores raw\n"
"      --dictionary on|off    train a zstd dictionary from traffic (default on)\n"
"      --dictionary-size SIZE dictionary capacity (default 64K)\n"
"      --dictionary-samples N messages to train on (default 4000)\n"
"      --commit-max-records N records in one commit at most (default 1024)\n"
"      --commit-max-bytes SIZE bytes in one commit at most (default 4M)\n"
"      --commit-max-delay TIME wait up to TIME for a fuller commit (default 0)\n"
"      --queue-max-size SIZE  memory for records waiting for the writer; beyond\n"
"                             it messages are ACKed as not spooled (default 64M)\n"
"      --retain TIME          keep delivered records this long (default off)\n"
"      --retain-size SIZE     keep at most this much delivered data (default off)\n"
"      --dlq-max-size SIZE    dead-letter bytes at most (default max-size / 4)\n"
"\n"
"      --forward URL          delivery URL (not supported by this build yet)\n"
"  -f, --foreground           stay in the foreground (always the case in this\n"
"                             version), logging to stderr\n"
"      --log-level LEVEL      error, warn, info (default) or debug\n"
"      --check                validate the configuration, print it, and exit\n"
"  -V, --version              print the version and exit\n"
"  -h, --help                 print this help and exit\n"
"\n"
"SIZE takes K, M or G (powers of 1024); TIME takes ms, s (default), m or h.\n"
"Exit status: 0 success, 1 configuration or usage error, 2 start-up failure,\n"
"3 a fatal spool error while running (a supervisor should restart it).\n"
"See spoolcapd(8).\n", CFG_DEFAULT_MAX_CONNECTIONS);
}

static const struct setting *setting_for_flag(const char *flag)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		if (settings[i].flag && strcmp(settings[i].flag, flag) == 0)
			return &settings[i];
	return NULL;
}

struct override {
	const struct setting *s;
	const char *value;
};

int cfg_load(cfg *c, int argc, char **argv, char *err, size_t errlen)
{
	static const struct option longopts[] = {
		{ "config",          required_argument, NULL, 'c' },
		{ "listen",          required_argument, NULL, OPT_BASE },
		{ "threads",         required_argument, NULL, OPT_BASE },
		{ "max-frame-size",  required_argument, NULL, OPT_BASE },
		{ "max-connections", required_argument, NULL, OPT_BASE },
		{ "hello-timeout",   required_argument, NULL, OPT_BASE },
		{ "idle-timeout",    required_argument, NULL, OPT_BASE },
		{ "spooled-var",     required_argument, NULL, OPT_BASE },
		{ "spool",           required_argument, NULL, OPT_BASE },
		{ "forward",         required_argument, NULL, OPT_BASE },
		{ "max-size",        required_argument, NULL, OPT_BASE },
		{ "full-policy",     required_argument, NULL, OPT_BASE },
		{ "durability",      required_argument, NULL, OPT_BASE },
		{ "sync-interval",   required_argument, NULL, OPT_BASE },
		{ "compression-level", required_argument, NULL, OPT_BASE },
		{ "dictionary",      required_argument, NULL, OPT_BASE },
		{ "dictionary-size", required_argument, NULL, OPT_BASE },
		{ "dictionary-samples", required_argument, NULL, OPT_BASE },
		{ "commit-max-records", required_argument, NULL, OPT_BASE },
		{ "commit-max-bytes", required_argument, NULL, OPT_BASE },
		{ "commit-max-delay", required_argument, NULL, OPT_BASE },
		{ "queue-max-size",  required_argument, NULL, OPT_BASE },
		{ "retain",          required_argument, NULL, OPT_BASE },
		{ "retain-size",     required_argument, NULL, OPT_BASE },
		{ "dlq-max-size",    required_argument, NULL, OPT_BASE },
		{ "log-level",       required_argument, NULL, OPT_BASE },
		{ "foreground",      no_argument,       NULL, 'f' },
		{ "check",           no_argument,       NULL, OPT_CHECK },
		{ "version",         no_argument,       NULL, 'V' },
		{ "help",            no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct override *ov;
	size_t nov = 0;
	int opt, idx, rc = -1, listen_cleared = 0;
	char e[200];

	ov = calloc((size_t)argc + 1, sizeof(*ov));
	if (!ov) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	opterr = 0;
	optind = 0;             /* 0: a full reset of getopt's state (glibc) */
	while ((opt = getopt_long(argc, argv, ":c:fVh", longopts, &idx)) != -1) {
		switch (opt) {
		case 'c':
			free(c->config_file);
			c->config_file = strdup(optarg);
			break;
		case OPT_BASE:
			ov[nov].s = setting_for_flag(longopts[idx].name);
			ov[nov].value = optarg;
			nov++;
			break;
		case 'f':
			c->foreground = 1;
			break;
		case OPT_CHECK:
			c->check = 1;
			break;
		case 'V':
			c->show_version = 1;
			break;
		case 'h':
			c->show_help = 1;
			break;
		case ':':
			snprintf(err, errlen, "option '%s' needs a value", argv[optind - 1]);
			goto out;
		default:
			snprintf(err, errlen, "unknown option '%s'", argv[optind - 1]);
			goto out;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (options start with --)",
		         argv[optind]);
		goto out;
	}
	if (c->show_help || c->show_version) {
		rc = 0;
		goto out;
	}
	if (c->config_file && cfg_load_file(c, c->config_file, err, errlen) < 0)
		goto out;
	for (size_t i = 0; i < nov; i++) {
		const struct setting *s = ov[i].s;
		if (s->set == set_listen && !listen_cleared) {
			free_listen(c);
			listen_cleared = 1;
		}
		if (s->set(c, ov[i].value, e, sizeof(e)) < 0) {
			if (s->set == unsupported)
				snprintf(err, errlen, "--%s %s", s->flag, e);
			else
				snprintf(err, errlen, "--%s: %s", s->flag, e);
			goto out;
		}
	}
	if (c->nlisten == 0 && add_listen(c, CFG_DEFAULT_LISTEN, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	free(ov);
	return rc;
}

/* ---- output ---- */

static void print_duration(FILE *f, const char *key, double d)
{
	if (d == 0)
		fprintf(f, "%s = 0\n", key);
	else if (d < 1 || d != (double)(long long)d)
		fprintf(f, "%s = %.6gms\n", key, d * 1000);  /* keeps sub-ms values */
	else
		fprintf(f, "%s = %.0fs\n", key, d);
}

void cfg_print(const cfg *c, FILE *f)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (c->config_file)
		fprintf(f, "# spoolcapd effective configuration: %s and flags\n", c->config_file);
	else
		fprintf(f, "# spoolcapd effective configuration: defaults and flags\n");
	fprintf(f, "[agent]\n");
	for (size_t i = 0; i < c->nlisten; i++)
		fprintf(f, "listen = %s\n", c->listen[i]);
	if (c->threads == 0)
		fprintf(f, "# auto: one per online CPU (%ld here)\nthreads = auto\n", cpus);
	else
		fprintf(f, "threads = %u\n", c->threads);
	fprintf(f, "max-frame-size = %u\n", c->max_frame_size);
	fprintf(f, "max-connections = %u\n", c->max_connections);
	print_duration(f, "hello-timeout", c->hello_timeout);
	print_duration(f, "idle-timeout", c->idle_timeout);
	fprintf(f, "spooled-var = %s\n", cfg_spooled_var(c) ? cfg_spooled_var(c) : "none");
	fprintf(f, "\n[spool]\n");
	fprintf(f, "dir = %s\n", c->spool_dir ? c->spool_dir : CFG_DEFAULT_SPOOL_DIR);
	fprintf(f, "max-size = %llu\n", (unsigned long long)c->max_size);
	fprintf(f, "full-policy = %s\n", spool_full_policy_name(c->full_policy));
	fprintf(f, "durability = %s\n", cfg_durability_name(c->durability));
	print_duration(f, "sync-interval", c->sync_interval);
	fprintf(f, "compression-level = %d\n", c->compression_level);
	fprintf(f, "dictionary = %s\n", c->dictionary ? "on" : "off");
	fprintf(f, "dictionary-size = %llu\n", (unsigned long long)c->dictionary_size);
	fprintf(f, "dictionary-samples = %u\n", c->dictionary_samples);
	fprintf(f, "commit-max-records = %u\n", c->commit_max_records);
	fprintf(f, "commit-max-bytes = %llu\n", (unsigned long long)c->commit_max_bytes);
	print_duration(f, "commit-max-delay", c->commit_max_delay);
	fprintf(f, "queue-max-size = %llu\n", (unsigned long long)c->queue_max_size);
	if (c->retain == 0)
		fprintf(f, "retain = off\n");
	else
		print_duration(f, "retain", c->retain);
	if (c->retain_size == 0)
		fprintf(f, "retain-size = off\n");
	else
		fprintf(f, "retain-size = %llu\n", (unsigned long long)c->retain_size);
	fprintf(f, "dlq-max-size = %llu\n", (unsigned long long)(c->dlq_max_size ?
	        c->dlq_max_size : c->max_size / 4));
	fprintf(f, "\n[log]\nlevel = %s\n", log_level_name(c->log_level));
}

void cfg_agent(const cfg *c, agent_config *ac)
{
	memset(ac, 0, sizeof(*ac));
	ac->listen = (const char **)c->listen;
	ac->nlisten = c->nlisten;
	ac->threads = c->threads;
	ac->max_frame_size = c->max_frame_size;
	ac->max_connections = c->max_connections;
	ac->hello_timeout = c->hello_timeout;
	ac->idle_timeout = c->idle_timeout;
	ac->spooled_var = cfg_spooled_var(c);
}

const char *cfg_spooled_var(const cfg *c)
{
	if (c->spooled_var_set)
		return c->spooled_var;
	return cfg_spooling(c) ? CFG_DEFAULT_SPOOLED_VAR : NULL;
}
