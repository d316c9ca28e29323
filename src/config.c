/* config.c -- spoolcapd's settings: defaults, the INI file (libinih) and the
 * command-line flags. One table maps each setting to its [section] key, its
 * flag and its parser, so the file and the flags cannot drift apart. Flags
 * are collected first, the file is loaded, then the flags are applied over
 * it (a --listen on the command line replaces the file's listen list). */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
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

static int set_log_target(cfg *c, const char *v, char *err, size_t errlen)
{
	int t = log_target_parse(v);

	if (t < 0) {
		snprintf(err, errlen, "'%s': expected stderr or syslog", v);
		return -1;
	}
	c->log_target = t;
	return 0;
}

static int set_log_facility(cfg *c, const char *v, char *err, size_t errlen)
{
	int f = log_facility_parse(v);

	if (f < 0) {
		snprintf(err, errlen, "'%s': expected daemon, user, local0 to local7, authpriv "
		         "or syslog", v);
		return -1;
	}
	c->log_facility = f;
	return 0;
}

static int set_log_rate_limit(cfg *c, const char *v, char *err, size_t errlen)
{
	uint64_t n;

	if (strcasecmp(v, "off") == 0) {
		c->log_rate_limit = 0;
		return 0;
	}
	if (cfg_parse_uint(v, &n, err, errlen) < 0)
		return -1;
	if (n > 1000000) {
		snprintf(err, errlen, "%s: at most 1000000 lines per 10 s (0 or off: no limit)", v);
		return -1;
	}
	c->log_rate_limit = (unsigned)n;
	return 0;
}

/* ---- [metrics] ---- */

static int set_metrics_listen(cfg *c, const char *v, char *err, size_t errlen)
{
	int family;
	char host[128], *s;
	unsigned port;

	if (!*v || strcasecmp(v, "none") == 0 || strcasecmp(v, "off") == 0) {
		free(c->metrics_listen);
		c->metrics_listen = NULL;
		return 0;
	}
	if (strncmp(v, "unix:", 5) == 0) {
		snprintf(err, errlen, "'%s': the metrics endpoint listens on TCP only "
		         "(HOST:PORT or [V6]:PORT; none = off)", v);
		return -1;
	}
	if (agent_parse_addr(v, &family, host, sizeof(host), &port, err, errlen) < 0)
		return -1;
	s = strdup(v);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	free(c->metrics_listen);
	c->metrics_listen = s;
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

/* ---- [forward] ---- */

static const char *const compression_names[] = { "none", "gzip", "zstd" };

const char *cfg_compression_name(int c)
{
	return c >= 0 && c < 3 ? compression_names[c] : "?";
}

int cfg_forwarding(const cfg *c)
{
	return c->forward_url != NULL;
}

/* Where a URL's authority (after "scheme://") ends, and its '@' if any. */
static const char *url_userinfo_end(const char *url, const char **auth)
{
	const char *p = strstr(url, "://"), *end;

	if (!p)
		return NULL;
	*auth = p += 3;
	end = p + strcspn(p, "/?#");
	for (const char *at = end; at > p; at--)
		if (at[-1] == '@')
			return at - 1;
	return NULL;
}

void cfg_url_redacted(const char *url, char *out, size_t outlen)
{
	const char *auth, *at = url_userinfo_end(url, &auth), *colon;

	if (!at) {
		snprintf(out, outlen, "%s", url);
		return;
	}
	colon = memchr(auth, ':', (size_t)(at - auth));
	if (colon)
		snprintf(out, outlen, "%.*s" CFG_REDACTED "%s", (int)(colon + 1 - url), url, at);
	else
		snprintf(out, outlen, "%.*s" CFG_REDACTED "%s", (int)(auth - url), url, at);
}

static int set_forward_url(cfg *c, const char *v, char *err, size_t errlen)
{
	const char *host;
	char shown[160];

	if (strcasecmp(v, "none") == 0 || !*v) {
		free(c->forward_url);
		c->forward_url = NULL;
		return 0;
	}
	if (strncasecmp(v, "http://", 7) == 0)
		host = v + 7;
	else if (strncasecmp(v, "https://", 8) == 0)
		host = v + 8;
	else {
		cfg_url_redacted(v, shown, sizeof(shown));
		snprintf(err, errlen, "'%s': the URL must start with http:// or https:// "
		         "(for example https://events.example.com/ingest; none turns delivery "
		         "off)", shown);
		return -1;
	}
	if (!*host || strchr("/?#@", *host)) {
		cfg_url_redacted(v, shown, sizeof(shown));
		snprintf(err, errlen, "'%s': no host in the URL (for example "
		         "http://127.0.0.1:8080/events)", shown);
		return -1;
	}
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			snprintf(err, errlen, "the URL has a space or a control character at "
			         "offset %zu (percent-encode it: a space is %%20)", (size_t)(p - v));
			return -1;
		}
	if (strstr(v, CFG_REDACTED)) {
		snprintf(err, errlen, "the URL holds " CFG_REDACTED ", as spoolcapd --check "
		         "prints a password: write the real URL (better: no password in the "
		         "URL; send credentials with header-file)");
		return -1;
	}
	return set_string(&c->forward_url, v, err, errlen);
}

static int uint_in(const char *v, uint64_t *out, uint64_t lo, uint64_t hi, char *err,
                   size_t errlen)
{
	if (cfg_parse_uint(v, out, err, errlen) < 0)
		return -1;
	if (*out < lo || *out > hi) {
		snprintf(err, errlen, "%s: must be between %llu and %llu", v,
		         (unsigned long long)lo, (unsigned long long)hi);
		return -1;
	}
	return 0;
}

static int duration_in(const char *v, double *out, double lo, double hi, const char *range,
                       char *err, size_t errlen)
{
	double d;

	if (cfg_parse_duration(v, &d, err, errlen) < 0)
		return -1;
	if (d < lo || d > hi) {
		snprintf(err, errlen, "%s: must be %s", v, range);
		return -1;
	}
	*out = d;
	return 0;
}

static int set_fwd_batch_events(cfg *c, const char *v, char *err, size_t errlen)
{
	uint64_t n;

	if (uint_in(v, &n, 1, 1000000, err, errlen) < 0)
		return -1;
	c->fwd_batch_events = (unsigned)n;
	return 0;
}

static int set_fwd_batch_bytes(cfg *c, const char *v, char *err, size_t errlen)
{
	return size_in(v, &c->fwd_batch_bytes, 1024, 256u << 20, "between 1K and 256M",
	               err, errlen);
}

static int set_fwd_linger(cfg *c, const char *v, char *err, size_t errlen)
{
	return duration_in(v, &c->fwd_linger, 0.001, 60, "between 1ms and 1m", err, errlen);
}

static int set_fwd_max_inflight(cfg *c, const char *v, char *err, size_t errlen)
{
	uint64_t n;

	if (uint_in(v, &n, 1, REPLAY_MAX_INFLIGHT, err, errlen) < 0)
		return -1;
	c->fwd_max_inflight = (unsigned)n;
	return 0;
}

static int set_fwd_connect_timeout(cfg *c, const char *v, char *err, size_t errlen)
{
	return duration_in(v, &c->fwd_connect_timeout, 0.001, 600, "between 1ms and 10m",
	                   err, errlen);
}

static int set_fwd_timeout(cfg *c, const char *v, char *err, size_t errlen)
{
	return duration_in(v, &c->fwd_timeout, 0.001, 3600, "between 1ms and 1h", err, errlen);
}

static int set_fwd_low_speed_limit(cfg *c, const char *v, char *err, size_t errlen)
{
	return size_in(v, &c->fwd_low_speed_limit, 1, 1u << 30, "between 1 and 1G (bytes per "
	               "second)", err, errlen);
}

static int set_fwd_low_speed_time(cfg *c, const char *v, char *err, size_t errlen)
{
	double d;

	if (duration_in(v, &d, 1, 3600, "between 1s and 1h", err, errlen) < 0)
		return -1;
	if (d != (double)(long)d) {
		snprintf(err, errlen, "%s: libcurl counts it in whole seconds (write 2s, not 1.5s)", v);
		return -1;
	}
	c->fwd_low_speed_time = d;
	return 0;
}

static int set_fwd_backoff_base(cfg *c, const char *v, char *err, size_t errlen)
{
	return duration_in(v, &c->fwd_backoff_base, 0.001, 3600, "between 1ms and 1h",
	                   err, errlen);
}

static int set_fwd_backoff_cap(cfg *c, const char *v, char *err, size_t errlen)
{
	return duration_in(v, &c->fwd_backoff_cap, 0.001, 3600, "between 1ms and 1h",
	                   err, errlen);
}

static int set_fwd_compression(cfg *c, const char *v, char *err, size_t errlen)
{
	for (int i = 0; i < 3; i++)
		if (strcasecmp(v, compression_names[i]) == 0) {
			c->fwd_compression = i;
			return 0;
		}
	snprintf(err, errlen, "'%s': expected none, gzip or zstd", v);
	return -1;
}

static int set_fwd_compression_level(cfg *c, const char *v, char *err, size_t errlen)
{
	uint64_t n;

	if (cfg_parse_uint(v, &n, err, errlen) < 0)
		return -1;
	if (n > 19) {
		snprintf(err, errlen, "%s: levels go from 1 to 9 for gzip, 1 to 19 for zstd "
		         "(0 = the codec's default)", v);
		return -1;
	}
	c->fwd_compression_level = (int)n;
	return 0;
}

/* Headers the engine sets itself (replay.h): a second copy would break the
 * delivery contract or the framing. */
static const char *const reserved_headers[] = {
	"Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding",
	"Idempotency-Key", "Expect", "Connection",
};

static int is_tchar(int ch)
{
	return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Splits "Name: rest" and checks the name. Error messages name the header
 * but never quote its value: it may be a secret. */
static int split_header(const char *v, size_t *name_len, const char **rest,
                        char *err, size_t errlen)
{
	const char *colon = strchr(v, ':');
	size_t n;

	if (!colon) {
		snprintf(err, errlen, "expected 'Name: value' (no ':' found)");
		return -1;
	}
	n = (size_t)(colon - v);
	if (n == 0) {
		snprintf(err, errlen, "expected 'Name: value' (no name before ':')");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)v[i])) {
			snprintf(err, errlen, "'%.*s' is not a header name (letters, digits and "
			         "!#$%%&'*+-.^_`|~ only; no space before ':')", (int)(n > 64 ? 64 : n), v);
			return -1;
		}
	for (size_t i = 0; i < sizeof(reserved_headers) / sizeof(reserved_headers[0]); i++)
		if (strlen(reserved_headers[i]) == n && strncasecmp(v, reserved_headers[i], n) == 0) {
			snprintf(err, errlen, "%s is set by spoolcapd itself (the delivery "
			         "contract; compression sets Content-Encoding) and cannot be "
			         "changed", reserved_headers[i]);
			return -1;
		}
	*name_len = n;
	*rest = colon + 1;
	return 0;
}

/* Checks a header value of len bytes (trimmed). */
static int check_header_value(const char *name, size_t name_len, const char *val, size_t len,
                              const char *where, char *err, size_t errlen)
{
	if (len == 0) {
		snprintf(err, errlen, "header %.*s: empty value%s", (int)name_len, name, where);
		return -1;
	}
	if (len > CFG_HEADER_VALUE_MAX) {
		snprintf(err, errlen, "header %.*s: the value is longer than %d bytes%s",
		         (int)name_len, name, CFG_HEADER_VALUE_MAX, where);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)val[i];
		if ((ch < ' ' && ch != '\t') || ch == 0x7f) {
			snprintf(err, errlen, "header %.*s: the value has a control character "
			         "(byte 0x%02x at offset %zu)%s", (int)name_len, name, ch, i, where);
			return -1;
		}
	}
	if (len == strlen(CFG_REDACTED) && memcmp(val, CFG_REDACTED, len) == 0) {
		snprintf(err, errlen, "header %.*s: the value is " CFG_REDACTED ", as "
		         "spoolcapd --check prints it: write the real value, or better, put "
		         "it in a file and use header-file", (int)name_len, name);
		return -1;
	}
	return 0;
}

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void free_headers(cfg *c)
{
	for (size_t i = 0; i < c->fwd_nheaders; i++) {
		wipe_free(c->fwd_headers[i].line);
		free(c->fwd_headers[i].file);
	}
	free(c->fwd_headers);
	free(c->fwd_header_lines);
	c->fwd_headers = NULL;
	c->fwd_header_lines = NULL;
	c->fwd_nheaders = 0;
}

/* Appends "name: val" (takes file, a strdup'd path or NULL). */
static int add_header(cfg *c, const char *name, size_t name_len, const char *val, size_t len,
                      char *file, char *err, size_t errlen)
{
	cfg_header *h;
	const char **lines;
	char *line;

	for (size_t i = 0; i < c->fwd_nheaders; i++)
		if (c->fwd_headers[i].name_len == name_len &&
		    strncasecmp(c->fwd_headers[i].line, name, name_len) == 0) {
			snprintf(err, errlen, "header %.*s is given twice (header and "
			         "header-file share one list); give it once", (int)name_len, name);
			goto fail;
		}
	if (c->fwd_nheaders >= CFG_HEADERS_MAX) {
		snprintf(err, errlen, "more than %d headers", CFG_HEADERS_MAX);
		goto fail;
	}
	line = malloc(name_len + 2 + len + 1);
	h = realloc(c->fwd_headers, (c->fwd_nheaders + 1) * sizeof(*h));
	if (h)
		c->fwd_headers = h;
	lines = realloc(c->fwd_header_lines, (c->fwd_nheaders + 1) * sizeof(*lines));
	if (lines)
		c->fwd_header_lines = lines;
	if (!line || !h || !lines) {
		free(line);
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	memcpy(line, name, name_len);
	memcpy(line + name_len, ": ", 2);
	memcpy(line + name_len + 2, val, len);
	line[name_len + 2 + len] = '\0';
	h[c->fwd_nheaders].line = line;
	h[c->fwd_nheaders].name_len = name_len;
	h[c->fwd_nheaders].file = file;
	lines[c->fwd_nheaders] = line;
	c->fwd_nheaders++;
	return 0;
fail:
	free(file);
	return -1;
}

static int set_fwd_header(cfg *c, const char *v, char *err, size_t errlen)
{
	const char *val;
	size_t name_len, len;

	if (split_header(v, &name_len, &val, err, errlen) < 0)
		return -1;
	val += strspn(val, " \t");
	len = strlen(val);
	while (len && (val[len - 1] == ' ' || val[len - 1] == '\t'))
		len--;
	if (check_header_value(v, name_len, val, len, "", err, errlen) < 0)
		return -1;
	return add_header(c, v, name_len, val, len, NULL, err, errlen);
}

/* Opens path for reading, refusing what would block or is not a file. */
static int open_regular(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		close(fd);
		return -1;
	}
	return fd;
}

static int set_fwd_header_file(cfg *c, const char *v, char *err, size_t errlen)
{
	char buf[CFG_HEADER_VALUE_MAX + 3], where[300], *file;
	const char *path;
	size_t name_len, len = 0;
	ssize_t n;
	int fd, rc;

	if (split_header(v, &name_len, &path, err, errlen) < 0)
		return -1;
	path += strspn(path, " \t");
	if (!*path) {
		snprintf(err, errlen, "expected 'Name: /path/to/file' (no path after ':')");
		return -1;
	}
	fd = open_regular(path, err, errlen);
	if (fd < 0)
		return -1;
	/* One byte more than the longest value + CRLF tells "too long". */
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
			close(fd);
			explicit_bzero(buf, sizeof(buf));
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	snprintf(where, sizeof(where), " (in %s)", path);
	if (len > CFG_HEADER_VALUE_MAX)
		len = CFG_HEADER_VALUE_MAX + 1;         /* reported as too long */
	rc = check_header_value(v, name_len, buf, len, where, err, errlen);
	if (rc == 0) {
		file = strdup(path);
		if (!file) {
			snprintf(err, errlen, "out of memory");
			rc = -1;
		} else {
			rc = add_header(c, v, name_len, buf, len, file, err, errlen);
		}
	}
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

/* A path libcurl reads at start: checked now so that a typo fails at load
 * time with the reason, not as a TLS error on the first POST. Empty: unset. */
static int set_path(char **dst, const char *v, int dir, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (!*v) {
		free(*dst);
		*dst = NULL;
		return 0;
	}
	if (dir) {
		fd = open(v, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
		if (fd < 0) {
			snprintf(err, errlen, "cannot read directory %s: %s", v, strerror(errno));
			return -1;
		}
		close(fd);
	} else {
		if (stat(v, &st) == 0 && S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "%s is a directory (a directory of hashed CA "
			         "certificates goes in ca-dir)", v);
			return -1;
		}
		fd = open_regular(v, err, errlen);
		if (fd < 0)
			return -1;
		close(fd);
	}
	return set_string(dst, v, err, errlen);
}

static int set_fwd_ca_file(cfg *c, const char *v, char *err, size_t errlen)
{
	return set_path(&c->fwd_ca_file, v, 0, err, errlen);
}

static int set_fwd_ca_dir(cfg *c, const char *v, char *err, size_t errlen)
{
	return set_path(&c->fwd_ca_dir, v, 1, err, errlen);
}

static int set_fwd_client_cert(cfg *c, const char *v, char *err, size_t errlen)
{
	return set_path(&c->fwd_client_cert, v, 0, err, errlen);
}

static int set_fwd_client_key(cfg *c, const char *v, char *err, size_t errlen)
{
	return set_path(&c->fwd_client_key, v, 0, err, errlen);
}

static int set_fwd_insecure(cfg *c, const char *v, char *err, size_t errlen)
{
	if (set_bool(&c->fwd_insecure, v, err, errlen) < 0) {
		snprintf(err, errlen, "'%s': expected yes or no", v);
		return -1;
	}
	return 0;
}

static int set_fwd_p5xx_attempts(cfg *c, const char *v, char *err, size_t errlen)
{
	uint64_t n;

	if (strcasecmp(v, "off") == 0) {
		c->fwd_p5xx_attempts = 0;
		return 0;
	}
	if (cfg_parse_uint(v, &n, err, errlen) < 0)
		return -1;
	if (n > 1000000) {
		snprintf(err, errlen, "%s: at most 1000000 (0 or off: never dead-letter "
		         "for persistent 5xx)", v);
		return -1;
	}
	c->fwd_p5xx_attempts = (unsigned)n;
	return 0;
}

static int set_fwd_p5xx_age(cfg *c, const char *v, char *err, size_t errlen)
{
	return duration_in(v, &c->fwd_p5xx_age, 0, 7 * 86400, "between 0 and 168h (a week)",
	                   err, errlen);
}

static int set_fwd_stop_timeout(cfg *c, const char *v, char *err, size_t errlen)
{
	return duration_in(v, &c->fwd_stop_timeout, 0, 600, "between 0 and 10m", err, errlen);
}

/* ---- [capture]: redaction before storing (redact.h) ---- */

static void words_free(cfg_words *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i]);
	free(w->v);
	w->v = NULL;
	w->n = 0;
	w->set = 0;
}

/* Replaces w with the words of v (separated by spaces, tabs or commas);
 * "none" is an empty list. check (may be NULL) vets each word. */
static int set_words(cfg_words *w, const char *v, size_t max,
                     int (*check)(const char *, char *, size_t), char *err, size_t errlen)
{
	cfg_words nw = { NULL, 0, 1 };
	char *copy, *save = NULL;
	int rc = -1;

	if (!*v) {
		snprintf(err, errlen, "empty value (none: an empty list)");
		return -1;
	}
	if (strcasecmp(v, "none") == 0) {
		words_free(w);
		w->set = 1;
		return 0;
	}
	copy = strdup(v);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (char *t = strtok_r(copy, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
		char **l;

		if (check && check(t, err, errlen) < 0)
			goto out;
		if (nw.n >= max) {
			snprintf(err, errlen, "more than %zu names", max);
			goto out;
		}
		l = realloc(nw.v, (nw.n + 1) * sizeof(*l));
		if (l)
			nw.v = l;
		if (!l || !(nw.v[nw.n] = strdup(t))) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		nw.n++;
	}
	words_free(w);
	*w = nw;
	nw.v = NULL;
	nw.n = 0;
	rc = 0;
out:
	words_free(&nw);
	free(copy);
	return rc;
}

static int check_header_name(const char *t, char *err, size_t errlen)
{
	size_t n = strlen(t);

	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)t[i])) {
			snprintf(err, errlen, "'%.64s' is not a header name (letters, digits and "
			         "!#$%%&'*+-.^_`|~ only)", t);
			return -1;
		}
	if (n > REDACT_NAME_MAX) {
		snprintf(err, errlen, "'%.64s...': header names have at most %d characters", t,
		         REDACT_NAME_MAX);
		return -1;
	}
	return 0;
}

static int check_arg_pattern(const char *t, char *err, size_t errlen)
{
	if (strcmp(t, "*") == 0) {
		snprintf(err, errlen, "'*' would match every argument; give a name or *suffix "
		         "(for example *hdrs)");
		return -1;
	}
	return 0;
}

static int set_cap_redact_headers(cfg *c, const char *v, char *err, size_t errlen)
{
	return set_words(&c->cap_redact_headers, v, REDACT_RULES_MAX, check_header_name,
	                 err, errlen);
}

static const char *const redact_action_names[] = {
	[REDACT_KEEP] = "keep", [REDACT_REDACT] = "redact", [REDACT_DROP] = "drop",
	[REDACT_HASH] = "hash",
};

/* NAME:ACTION, several separated by spaces; a later rule for a name
 * replaces the earlier one (so flags override the file per name). */
static int set_cap_header_action(cfg *c, const char *v, char *err, size_t errlen)
{
	char *copy = strdup(v), *save = NULL;
	int rc = -1, n = 0;

	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (char *t = strtok_r(copy, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
		char *colon = strrchr(t, ':');
		int a = -1;
		size_t i;

		if (!colon || colon == t) {
			snprintf(err, errlen, "'%s': expected NAME:ACTION (for example cookie:hash; "
			         "actions: redact, drop, hash, keep)", t);
			goto out;
		}
		*colon = '\0';
		for (i = 0; i < sizeof(redact_action_names) / sizeof(redact_action_names[0]); i++)
			if (strcasecmp(colon + 1, redact_action_names[i]) == 0)
				a = (int)i;
		if (a < 0) {
			snprintf(err, errlen, "'%s:%s': unknown action (redact, drop, hash or keep)",
			         t, colon + 1);
			goto out;
		}
		if (check_header_name(t, err, errlen) < 0)
			goto out;
		for (i = 0; i < c->cap_nrules; i++)
			if (strcasecmp(c->cap_rules[i].name, t) == 0)
				break;
		if (i == c->cap_nrules) {
			redact_rule *r;
			char *name;

			if (c->cap_nrules >= REDACT_RULES_MAX) {
				snprintf(err, errlen, "more than %d header actions", REDACT_RULES_MAX);
				goto out;
			}
			r = realloc(c->cap_rules, (c->cap_nrules + 1) * sizeof(*r));
			if (r)
				c->cap_rules = r;
			name = r ? strdup(t) : NULL;
			if (!name) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			for (char *p = name; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			c->cap_rules[c->cap_nrules++].name = name;
		}
		c->cap_rules[i].action = a;
		n++;
	}
	if (n == 0) {
		snprintf(err, errlen, "empty value, expected NAME:ACTION (for example cookie:hash)");
		goto out;
	}
	rc = 0;
out:
	free(copy);
	return rc;
}

static void free_hash_key(cfg *c)
{
	if (c->cap_hash_key) {
		explicit_bzero(c->cap_hash_key, c->cap_hash_key_len);
		free(c->cap_hash_key);
	}
	free(c->cap_hash_key_file);
	c->cap_hash_key = NULL;
	c->cap_hash_key_len = 0;
	c->cap_hash_key_file = NULL;
}

/* Reads the whole file now (as header-file does): the key never appears
 * in the configuration, in --check output or in an error message. */
static int set_cap_hash_key_file(cfg *c, const char *v, char *err, size_t errlen)
{
	uint8_t buf[REDACT_KEY_MAX + 1];
	size_t len = 0;
	ssize_t n;
	int fd;

	if (!*v || strcasecmp(v, "none") == 0) {
		free_hash_key(c);
		return 0;
	}
	fd = open_regular(v, err, errlen);
	if (fd < 0)
		return -1;
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "cannot read %s: %s", v, strerror(errno));
			close(fd);
			explicit_bzero(buf, sizeof(buf));
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	if (len < REDACT_KEY_MIN || len > REDACT_KEY_MAX) {
		explicit_bzero(buf, sizeof(buf));
		snprintf(err, errlen, "%s: a hash key has %d to %d bytes, this file %s (make one "
		         "with: head -c 32 /dev/urandom > %s; chmod 600 %s)", v, REDACT_KEY_MIN,
		         REDACT_KEY_MAX, len < REDACT_KEY_MIN ? "has fewer" : "has more", v, v);
		return -1;
	}
	free_hash_key(c);
	c->cap_hash_key = malloc(len);
	c->cap_hash_key_file = strdup(v);
	if (!c->cap_hash_key || !c->cap_hash_key_file) {
		explicit_bzero(buf, sizeof(buf));
		free_hash_key(c);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(c->cap_hash_key, buf, len);
	c->cap_hash_key_len = len;
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

static int set_cap_header_args(cfg *c, const char *v, char *err, size_t errlen)
{
	return set_words(&c->cap_header_args, v, 64, check_arg_pattern, err, errlen);
}

static int set_cap_body_args(cfg *c, const char *v, char *err, size_t errlen)
{
	return set_words(&c->cap_body_args, v, 64, check_arg_pattern, err, errlen);
}

static int set_cap_body_max(cfg *c, const char *v, char *err, size_t errlen)
{
	if (strcasecmp(v, "off") == 0) {
		c->cap_has_body_max = 0;
		return 0;
	}
	if (size_in(v, &c->cap_body_max, 0, 1u << 30, "between 0 and 1G (off: no cap)",
	            err, errlen) < 0)
		return -1;
	c->cap_has_body_max = 1;
	return 0;
}

static int set_cap_body_drop(cfg *c, const char *v, char *err, size_t errlen)
{
	return set_words(&c->cap_body_drop, v, 64, NULL, err, errlen);
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
	{ "log",     "target",          "log-target",      set_log_target },
	{ "log",     "facility",        "log-facility",    set_log_facility },
	{ "log",     "rate-limit",      "log-rate-limit",  set_log_rate_limit },
	{ "metrics", "listen",          "metrics-listen",  set_metrics_listen },
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
	{ "forward", "url",             "forward",         set_forward_url },
	{ "forward", "batch-events",    "forward-batch-events", set_fwd_batch_events },
	{ "forward", "batch-bytes",     "forward-batch-bytes", set_fwd_batch_bytes },
	{ "forward", "linger",          "forward-linger",  set_fwd_linger },
	{ "forward", "max-inflight",    "forward-max-inflight", set_fwd_max_inflight },
	{ "forward", "connect-timeout", "forward-connect-timeout", set_fwd_connect_timeout },
	{ "forward", "timeout",         "forward-timeout", set_fwd_timeout },
	{ "forward", "low-speed-limit", "forward-low-speed-limit", set_fwd_low_speed_limit },
	{ "forward", "low-speed-time",  "forward-low-speed-time", set_fwd_low_speed_time },
	{ "forward", "backoff-base",    "forward-backoff-base", set_fwd_backoff_base },
	{ "forward", "backoff-cap",     "forward-backoff-cap", set_fwd_backoff_cap },
	{ "forward", "compression",     "forward-compression", set_fwd_compression },
	{ "forward", "compression-level", "forward-compression-level", set_fwd_compression_level },
	{ "forward", "header",          "forward-header",  set_fwd_header },
	{ "forward", "header-file",     "forward-header-file", set_fwd_header_file },
	{ "forward", "ca-file",         "forward-ca-file", set_fwd_ca_file },
	{ "forward", "ca-dir",          "forward-ca-dir",  set_fwd_ca_dir },
	{ "forward", "client-cert",     "forward-client-cert", set_fwd_client_cert },
	{ "forward", "client-key",      "forward-client-key", set_fwd_client_key },
	{ "forward", "insecure",        "forward-insecure", set_fwd_insecure },
	{ "forward", "persistent-5xx-attempts", "forward-persistent-5xx-attempts",
	  set_fwd_p5xx_attempts },
	{ "forward", "persistent-5xx-age", "forward-persistent-5xx-age", set_fwd_p5xx_age },
	{ "forward", "stop-timeout",    "forward-stop-timeout", set_fwd_stop_timeout },
	{ "capture", "redact-headers",  "redact-headers",  set_cap_redact_headers },
	{ "capture", "header-action",   "header-action",   set_cap_header_action },
	{ "capture", "hash-key-file",   "hash-key-file",   set_cap_hash_key_file },
	{ "capture", "header-args",     "header-args",     set_cap_header_args },
	{ "capture", "body-args",       "body-args",       set_cap_body_args },
	{ "capture", "body-max",        "body-max",        set_cap_body_max },
	{ "capture", "body-drop",       "body-drop",       set_cap_body_drop },
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
	c->log_target = LOG_TARGET_STDERR;
	c->log_facility = log_facility_parse(LOG_DEFAULT_FACILITY_NAME);
	c->log_rate_limit = LOG_RATE_BURST;
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
	c->fwd_batch_events = REPLAY_DEF_BATCH_EVENTS;
	c->fwd_batch_bytes = REPLAY_DEF_BATCH_BYTES;
	c->fwd_linger = REPLAY_DEF_LINGER;
	c->fwd_max_inflight = REPLAY_DEF_MAX_INFLIGHT;
	c->fwd_connect_timeout = REPLAY_DEF_CONNECT_MS / 1000.0;
	c->fwd_timeout = REPLAY_DEF_TIMEOUT_MS / 1000.0;
	c->fwd_low_speed_limit = REPLAY_DEF_LOW_SPEED;
	c->fwd_low_speed_time = REPLAY_DEF_LOW_SPEED_TIME;
	c->fwd_backoff_base = REPLAY_BACKOFF_BASE_MS / 1000.0;
	c->fwd_backoff_cap = REPLAY_BACKOFF_CAP_MS / 1000.0;
	c->fwd_compression = REPLAY_COMPRESS_NONE;
	c->fwd_p5xx_attempts = REPLAY_DEF_P5XX_ATTEMPTS;
	c->fwd_p5xx_age = REPLAY_DEF_P5XX_AGE;
	c->fwd_stop_timeout = REPLAY_DEF_STOP_TIMEOUT;
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
	free(c->metrics_listen);
	free(c->config_file);
	wipe_free(c->forward_url);     /* may hold a password */
	free_headers(c);
	free(c->fwd_ca_file);
	free(c->fwd_ca_dir);
	free(c->fwd_client_cert);
	free(c->fwd_client_key);
	words_free(&c->cap_redact_headers);
	for (size_t i = 0; i < c->cap_nrules; i++)
		free((char *)c->cap_rules[i].name);
	free(c->cap_rules);
	free_hash_key(c);
	words_free(&c->cap_header_args);
	words_free(&c->cap_body_args);
	words_free(&c->cap_body_drop);
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
	char        err[1024];
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
	char err[512];
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
			/* never quote what may be a header's secret value */
			int secret = s->set == set_fwd_header || s->set == set_forward_url;
			snprintf(st->err, sizeof(st->err), "[%s] '%s' is indented, so it is read as "
			         "a second value for %s; remove the indentation", section,
			         secret ? "(value not shown)" : value, key);
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
		         "(put it under [agent], [spool], [forward], [capture], [metrics] or [log])", key);
	} else if (!known_section) {
		snprintf(st->err, sizeof(st->err), "unknown section [%s] (known: [agent], [spool], "
		         "[forward], [capture], [metrics], [log])", section);
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
		         "listen may be repeated; a long header value goes in a header-file)",
		         path, st.long_line, st.max_len);
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
"messages are stored; with --forward, delivers them to an HTTP event processor.\n"
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
"\n"
"Delivery (off without --forward; see Delivery in spoolcapd(8)):\n"
"      --forward URL          POST the spooled events as NDJSON batches to\n"
"                             URL (http:// or https://; none: no delivery)\n"
"      --forward-batch-events N\n"
"                             events per POST at most, 1-1000000 (default 500)\n"
"      --forward-batch-bytes SIZE\n"
"                             NDJSON bytes per POST, 1K-256M (default 4M)\n"
"      --forward-linger TIME  wait up to TIME for a partial batch to fill;\n"
"                             also how often an empty spool is polled\n"
"                             (default 100ms)\n"
"      --forward-max-inflight N\n"
"                             batches in flight at once, 1-64 (default 2)\n"
"      --forward-connect-timeout TIME\n"
"                             connecting, TLS included, at most (default 5s)\n"
"      --forward-timeout TIME\n"
"                             one whole POST exchange at most (default 30s)\n"
"      --forward-low-speed-limit SIZE\n"
"                             cut a transfer slower than SIZE bytes/s ...\n"
"                             (default 1)\n"
"      --forward-low-speed-time TIME\n"
"                             ... for TIME, whole seconds (default 30s)\n"
"      --forward-backoff-base TIME\n"
"                             first retry delay at most (default 500ms);\n"
"                             doubles per failure, randomised (full jitter)\n"
"      --forward-backoff-cap TIME\n"
"                             retry delay at most (default 60s)\n"
"      --forward-compression ALGO\n"
"                             request body encoding: none (default), gzip\n"
"                             or zstd\n"
"      --forward-compression-level N\n"
"                             gzip 1-9, zstd 1-19; 0 = the codec's default\n"
"                             (default 0)\n"
"      --forward-header 'NAME: VALUE'\n"
"                             extra request header; repeatable. Visible in\n"
"                             ps: use --forward-header-file for secrets\n"
"      --forward-header-file 'NAME: PATH'\n"
"                             a header whose value is read from PATH at\n"
"                             start; repeatable. Header flags replace every\n"
"                             header of the file\n"
"      --forward-ca-file FILE\n"
"                             trust the CA certificates in FILE (PEM), not\n"
"                             the system's\n"
"      --forward-ca-dir DIR   trust a directory of hashed CA certificates\n"
"      --forward-client-cert FILE\n"
"                             client certificate (PEM), for mutual TLS\n"
"      --forward-client-key FILE\n"
"                             its private key (default: in the certificate)\n"
"      --forward-insecure yes|no\n"
"                             do not verify the server's certificate and\n"
"                             name (default no; logs a warning)\n"
"      --forward-persistent-5xx-attempts N\n"
"                             dead-letter an event a batch keeps failing on\n"
"                             with 5xx after N tries (default 20; 0: never)\n"
"      --forward-persistent-5xx-age TIME\n"
"                             ... spread over TIME at least (default 10m)\n"
"      --forward-stop-timeout TIME\n"
"                             on SIGTERM, POSTs in flight get up to TIME to\n"
"                             finish (default 5s)\n"
"\n"
"Capture privacy (applied before anything is stored; see Privacy in\n"
"spoolcapd(8)):\n"
"      --redact-headers LIST  header values replaced by <redacted> in header\n"
"                             blocks (default authorization\n"
"                             proxy-authorization cookie set-cookie; none)\n"
"      --header-action NAME:ACTION\n"
"                             per header: redact, drop, hash (HMAC-SHA256)\n"
"                             or keep; repeatable, overrides the list\n"
"      --hash-key-file FILE   the HMAC key for hash, 16-1024 bytes\n"
"      --header-args LIST     args holding header blocks (default *hdrs\n"
"                             *headers; *suffix or a name)\n"
"      --body-args LIST       args holding bodies (default *body)\n"
"      --body-max SIZE        store at most SIZE bytes of a body (default off)\n"
"      --body-drop LIST       messages whose bodies are not stored (NULL);\n"
"                             * = every message (default none)\n"
"\n"
"  -f, --foreground           stay in the foreground (always the case in this\n"
"                             version), logging to stderr\n"
"      --log-level LEVEL      error, warn, info (default) or debug\n"
"      --log-target TARGET    stderr (default) or syslog\n"
"      --log-facility NAME    syslog facility: daemon (default), user,\n"
"                             local0-local7, ...\n"
"      --log-rate-limit N     lines per call site per 10 s before repeats are\n"
"                             counted, not written (default 100; 0: off)\n"
"      --metrics-listen ADDR  serve /metrics (Prometheus), /healthz and /readyz\n"
"                             on HOST:PORT (default none: no endpoint)\n"
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
	/* The long options: the settings table's flags, then the modes. */
	static const struct option modes[] = {
		{ "config",          required_argument, NULL, 'c' },
		{ "foreground",      no_argument,       NULL, 'f' },
		{ "check",           no_argument,       NULL, OPT_CHECK },
		{ "version",         no_argument,       NULL, 'V' },
		{ "help",            no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct option longopts[NSETTINGS + sizeof(modes) / sizeof(modes[0])];
	size_t nlong = 0;
	struct override *ov;
	size_t nov = 0;
	int opt, idx, rc = -1, listen_cleared = 0, headers_cleared = 0;
	char e[512];

	for (size_t i = 0; i < NSETTINGS; i++)
		if (settings[i].flag)
			longopts[nlong++] = (struct option){ settings[i].flag, required_argument,
			                                     NULL, OPT_BASE };
	memcpy(longopts + nlong, modes, sizeof(modes));
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
		/* Headers given as flags replace every header of the file (header
		 * and header-file make one list). */
		if ((s->set == set_fwd_header || s->set == set_fwd_header_file) &&
		    !headers_cleared) {
			free_headers(c);
			headers_cleared = 1;
		}
		if (s->set(c, ov[i].value, e, sizeof(e)) < 0) {
			snprintf(err, errlen, "--%s: %s", s->flag, e);
			goto out;
		}
	}
	if (c->nlisten == 0 && add_listen(c, CFG_DEFAULT_LISTEN, err, errlen) < 0)
		goto out;
	if (cfg_check(c, err, errlen) < 0)
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

static void print_path(FILE *f, const char *key, const char *path, const char *unset)
{
	if (path)
		fprintf(f, "%s = %s\n", key, path);
	else
		fprintf(f, "# %s = (not set: %s)\n", key, unset);
}

/* Header values never leave the process: inline ones print as
 * CFG_REDACTED (which loading refuses), header-file ones as their path. */
static void print_forward(const cfg *c, FILE *f)
{
	char url[1024];

	fprintf(f, "\n[forward]\n");
	if (c->forward_url) {
		cfg_url_redacted(c->forward_url, url, sizeof(url));
		fprintf(f, "url = %s\n", url);
	} else {
		fprintf(f, "# none: no delivery, the spool only fills\nurl = none\n");
	}
	fprintf(f, "batch-events = %u\n", c->fwd_batch_events);
	fprintf(f, "batch-bytes = %llu\n", (unsigned long long)c->fwd_batch_bytes);
	print_duration(f, "linger", c->fwd_linger);
	fprintf(f, "max-inflight = %u\n", c->fwd_max_inflight);
	print_duration(f, "connect-timeout", c->fwd_connect_timeout);
	print_duration(f, "timeout", c->fwd_timeout);
	fprintf(f, "low-speed-limit = %llu\n", (unsigned long long)c->fwd_low_speed_limit);
	print_duration(f, "low-speed-time", c->fwd_low_speed_time);
	print_duration(f, "backoff-base", c->fwd_backoff_base);
	print_duration(f, "backoff-cap", c->fwd_backoff_cap);
	fprintf(f, "compression = %s\n", cfg_compression_name(c->fwd_compression));
	fprintf(f, "compression-level = %d\n", c->fwd_compression_level);
	for (size_t i = 0; i < c->fwd_nheaders; i++) {
		const cfg_header *h = &c->fwd_headers[i];
		if (h->file)
			fprintf(f, "header-file = %.*s: %s\n", (int)h->name_len, h->line, h->file);
		else
			fprintf(f, "header = %.*s: " CFG_REDACTED "\n", (int)h->name_len, h->line);
	}
	if (!c->fwd_nheaders)
		fprintf(f, "# header = (not set: no extra header)\n"
		        "# header-file = (not set: no header read from a file)\n");
	print_path(f, "ca-file", c->fwd_ca_file, "the system's CA certificates");
	print_path(f, "ca-dir", c->fwd_ca_dir, "the system's CA certificates");
	print_path(f, "client-cert", c->fwd_client_cert, "no client certificate");
	print_path(f, "client-key", c->fwd_client_key, "the key is in client-cert");
	fprintf(f, "insecure = %s\n", c->fwd_insecure ? "yes" : "no");
	fprintf(f, "persistent-5xx-attempts = %u\n", c->fwd_p5xx_attempts);
	print_duration(f, "persistent-5xx-age", c->fwd_p5xx_age);
	print_duration(f, "stop-timeout", c->fwd_stop_timeout);
}

static void print_words(FILE *f, const char *key, const cfg_words *w,
                        const char *const *def, size_t ndef)
{
	const char *const *v = w->set ? (const char *const *)w->v : def;
	size_t n = w->set ? w->n : ndef;

	fprintf(f, "%s =", key);
	if (n == 0)
		fprintf(f, " none");
	for (size_t i = 0; i < n; i++)
		fprintf(f, " %s", v[i]);
	fprintf(f, "\n");
}

/* The hash key itself is never printed, only the file it came from. */
static void print_capture(const cfg *c, FILE *f)
{
	static const char *const def_headers[] = { REDACT_DEFAULT_HEADERS };
	static const char *const def_hdr_args[] = { "*hdrs", "*headers" };
	static const char *const def_body_args[] = { "*body" };

	fprintf(f, "\n[capture]\n");
	print_words(f, "redact-headers", &c->cap_redact_headers, def_headers,
	            sizeof(def_headers) / sizeof(def_headers[0]));
	if (!c->cap_nrules)
		fprintf(f, "# header-action = (not set: only redact-headers apply)\n");
	for (size_t i = 0; i < c->cap_nrules; i++)
		fprintf(f, "header-action = %s:%s\n", c->cap_rules[i].name,
		        redact_action_names[c->cap_rules[i].action]);
	print_path(f, "hash-key-file", c->cap_hash_key_file, "no key, no header can be hashed");
	print_words(f, "header-args", &c->cap_header_args, def_hdr_args, 2);
	print_words(f, "body-args", &c->cap_body_args, def_body_args, 1);
	if (c->cap_has_body_max)
		fprintf(f, "body-max = %llu\n", (unsigned long long)c->cap_body_max);
	else
		fprintf(f, "body-max = off\n");
	print_words(f, "body-drop", &c->cap_body_drop, NULL, 0);
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
	print_forward(c, f);
	print_capture(c, f);
	fprintf(f, "\n[metrics]\n");
	if (c->metrics_listen)
		fprintf(f, "listen = %s\n", c->metrics_listen);
	else
		fprintf(f, "# none: no /metrics, /healthz or /readyz endpoint\nlisten = none\n");
	fprintf(f, "\n[log]\nlevel = %s\n", log_level_name(c->log_level));
	fprintf(f, "target = %s\n", log_target_name(c->log_target));
	fprintf(f, "facility = %s\n", log_facility_name(c->log_facility));
	fprintf(f, "rate-limit = %u\n", c->log_rate_limit);
}

int cfg_check(const cfg *c, char *err, size_t errlen)
{
	if (c->forward_url && !cfg_spooling(c)) {
		snprintf(err, errlen, "--forward (or [forward] url) with --spool none: delivery "
		         "reads the spool; set --spool DIR (or [spool] dir), or drop --forward");
		return -1;
	}
	if (c->fwd_client_key && !c->fwd_client_cert) {
		snprintf(err, errlen, "[forward] client-key (--forward-client-key) is set without "
		         "client-cert: set client-cert to the certificate the key belongs to");
		return -1;
	}
	if (c->fwd_backoff_base > c->fwd_backoff_cap) {
		snprintf(err, errlen, "[forward] backoff-base (%gs) is above backoff-cap (%gs): "
		         "raise backoff-cap or lower backoff-base", c->fwd_backoff_base,
		         c->fwd_backoff_cap);
		return -1;
	}
	if (c->fwd_compression == REPLAY_COMPRESS_GZIP && c->fwd_compression_level > 9) {
		snprintf(err, errlen, "[forward] compression-level %d: gzip levels go from 1 to 9 "
		         "(0 = the fast default, 1)", c->fwd_compression_level);
		return -1;
	}
	for (size_t i = 0; i < c->cap_nrules; i++)
		if (c->cap_rules[i].action == REDACT_HASH && !c->cap_hash_key) {
			snprintf(err, errlen, "[capture] header-action %s:hash needs a key: set "
			         "hash-key-file (--hash-key-file) to a file of %d to %d secret bytes "
			         "(head -c 32 /dev/urandom > FILE; chmod 600 FILE), the same file on "
			         "every agent whose hashes should match", c->cap_rules[i].name,
			         REDACT_KEY_MIN, REDACT_KEY_MAX);
			return -1;
		}
	return 0;
}

void cfg_redact(const cfg *c, redact_config *rc)
{
	static const char *const none[1] = { NULL };

	memset(rc, 0, sizeof(*rc));
	if (c->cap_redact_headers.set) {
		rc->headers = c->cap_redact_headers.n ? (const char *const *)c->cap_redact_headers.v
		                                      : none;
		rc->nheaders = c->cap_redact_headers.n;
	}
	rc->rules = c->cap_rules;
	rc->nrules = c->cap_nrules;
	rc->hash_key = c->cap_hash_key;
	rc->hash_key_len = c->cap_hash_key_len;
	if (c->cap_header_args.set) {
		rc->header_args = c->cap_header_args.n ? (const char *const *)c->cap_header_args.v
		                                       : none;
		rc->nheader_args = c->cap_header_args.n;
	}
	if (c->cap_body_args.set) {
		rc->body_args = c->cap_body_args.n ? (const char *const *)c->cap_body_args.v : none;
		rc->nbody_args = c->cap_body_args.n;
	}
	rc->has_body_max = c->cap_has_body_max;
	rc->body_max = c->cap_body_max;
	rc->body_drop = (const char *const *)c->cap_body_drop.v;
	rc->nbody_drop = c->cap_body_drop.n;
}

static long to_ms(double s)
{
	return (long)(s * 1000 + 0.5);
}

void cfg_replay(const cfg *c, replay_config *rc)
{
	memset(rc, 0, sizeof(*rc));
	rc->url = c->forward_url;
	rc->batch_max_events = c->fwd_batch_events;
	rc->batch_max_bytes = (size_t)c->fwd_batch_bytes;
	rc->linger = c->fwd_linger;
	rc->connect_timeout_ms = to_ms(c->fwd_connect_timeout);
	rc->total_timeout_ms = to_ms(c->fwd_timeout);
	rc->low_speed_limit = (long)c->fwd_low_speed_limit;
	rc->low_speed_time = (long)c->fwd_low_speed_time;
	rc->backoff_base_ms = (uint64_t)to_ms(c->fwd_backoff_base);
	rc->backoff_cap_ms = (uint64_t)to_ms(c->fwd_backoff_cap);
	rc->headers = c->fwd_header_lines;
	rc->nheaders = c->fwd_nheaders;
	rc->max_inflight = c->fwd_max_inflight;
	rc->compress = c->fwd_compression;
	rc->compress_level = c->fwd_compression_level;
	rc->ca_file = c->fwd_ca_file;
	rc->ca_dir = c->fwd_ca_dir;
	rc->client_cert = c->fwd_client_cert;
	rc->client_key = c->fwd_client_key;
	rc->insecure = c->fwd_insecure;
	/* The engine's 0 means "default": its "off" and "no minimum age" are
	 * negative. */
	rc->persistent_5xx_attempts = c->fwd_p5xx_attempts ? (int)c->fwd_p5xx_attempts : -1;
	rc->persistent_5xx_age = c->fwd_p5xx_age > 0 ? c->fwd_p5xx_age : -1.0;
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
