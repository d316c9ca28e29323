/* cli.c -- helpers shared by the spoolcap subcommands: open a spool with its
 * dictionaries, decode records, format ages and sizes. */
#include "config.h"

#include "spoolcap/cli.h"
#include "spoolcap/spool_admin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int cli_open(cli_spool *c, const char *dir, enum spool_mode mode)
{
	spool_config cfg;
	char err[512];
	int rc;

	memset(c, 0, sizeof *c);
	c->dir = dir;
	c->dc = dictcache_new(0);
	c->dctx = record_dctx_new();
	if (!c->dc || !c->dctx) {
		fprintf(stderr, "spoolcap: out of memory\n");
		cli_close(c);
		return -1;
	}
	memset(&cfg, 0, sizeof cfg);
	dictcache_hooks(c->dc, &cfg.hooks);
	rc = spool_open(&c->sp, dir, &cfg, mode, err, sizeof err);
	if (rc < 0) {
		fprintf(stderr, "spoolcap: %s\n", err);
		cli_close(c);
		return -1;
	}
	/* a CLI that writes (dead letters, purge) evicts where the agent would */
	if (mode == SPOOL_MODE_CLIENT && spool_use_agent_limits(c->sp) < 0)
		fprintf(stderr, "spoolcap: warning: cannot read the agent's limits: %s\n",
		        spool_errmsg());
	if (dictcache_load(c->dc, c->sp, err, sizeof err) < 0)
		/* Records needing a missing dictionary fail to decode, each with
		 * its own message; the rest of the spool is still readable. */
		fprintf(stderr, "spoolcap: warning: %s\n", err);
	return 0;
}

void cli_close(cli_spool *c)
{
	if (c->sp)
		spool_close(c->sp);
	dictcache_free(c->dc);
	record_dctx_free(c->dctx);
	record_buf_free(&c->raw);
	memset(c, 0, sizeof *c);
}

int cli_decode(cli_spool *c, const void *val, size_t len, record_view *v,
               char *why, size_t whylen)
{
	char detail[200] = "";
	int rc = record_decode(c->dctx, val, len, dictcache_lookup, c->dc, &c->raw,
	                       NULL, v, detail, sizeof detail);

	if (rc != 0)
		/* the detail, when there is one, already starts with the error */
		snprintf(why, whylen, "%s", detail[0] ? detail : record_strerror(rc));
	return rc;
}

void cli_fmt_age(char *out, size_t len, int64_t ns)
{
	uint64_t s = ns > 0 ? (uint64_t)(ns / 1000000000) : 0;

	if (s < 60)
		snprintf(out, len, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(out, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
	else
		snprintf(out, len, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s / 3600 % 24);
}

void cli_fmt_bytes(char *out, size_t len, uint64_t n)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	unsigned i = 0;

	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(out, len, "%" PRIu64 " B", n);
	else
		snprintf(out, len, "%.1f %s", v, unit[i]);
}

int cli_parse_u64(const char *opt, const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!*s || *end || errno || s[0] == '-') {
		fprintf(stderr, "spoolcap: %s expects a non-negative whole number, not '%s'\n",
		        opt, s);
		return -1;
	}
	*out = v;
	return 0;
}
