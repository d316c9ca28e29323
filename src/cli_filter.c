/* cli_filter.c -- the options of spoolcap's record filters (--from ...
 * --state, see cli_filter.h): parsing them, RFC 3339 and relative times,
 * and the help text. Matching is in cli_match.c, the walk in cli_walk.c. */
#include "config.h"

#include "spoolcap/cli_filter.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spoolcap/event.h"

#define NS ((int64_t)1000000000)

/* ------------------------------------------------------------ options */

static const struct option filter_opts[CLI_FILTER_NOPTS] = {
	{ "from", required_argument, NULL, CLI_FILTER_OPT_FROM },
	{ "to", required_argument, NULL, CLI_FILTER_OPT_TO },
	{ "since", required_argument, NULL, CLI_FILTER_OPT_SINCE },
	{ "until", required_argument, NULL, CLI_FILTER_OPT_UNTIL },
	{ "message", required_argument, NULL, CLI_FILTER_OPT_MESSAGE },
	{ "match", required_argument, NULL, CLI_FILTER_OPT_MATCH },
	{ "limit", required_argument, NULL, CLI_FILTER_OPT_LIMIT },
	{ "state", required_argument, NULL, CLI_FILTER_OPT_STATE },
};

void cli_filter_init(cli_filter *f, const char *prog, unsigned default_states)
{
	memset(f, 0, sizeof *f);
	f->prog = prog;
	f->states = default_states & CLI_STATE_ALL;
}

struct option *cli_filter_longopts(const struct option *own, struct option *out, size_t cap)
{
	size_t n = 0, i;

	while (own && own[n].name)
		n++;
	if (n + CLI_FILTER_NOPTS + 1 > cap)
		return NULL;
	memcpy(out, own, n * sizeof *out);
	for (i = 0; i < CLI_FILTER_NOPTS; i++)
		out[n + i] = filter_opts[i];
	memset(&out[n + CLI_FILTER_NOPTS], 0, sizeof *out);
	return out;
}

void cli_filter_usage(FILE *out, const char *default_state)
{
	fprintf(out,
	        "Filters (all must hold):\n"
	        "  --from SEQ        sequence numbers from SEQ on\n"
	        "  --to SEQ          ... up to SEQ (inclusive)\n"
	        "  --since TIME      captured at TIME or later: RFC 3339\n"
	        "                    (2026-11-26T08:00:00Z, 2026-11-26T09:00:00+01:00,\n"
	        "                    2026-11-26 = its midnight UTC) or an age before\n"
	        "                    now: 45s, 10m, 2h, 3d, 1w, 1h30m\n"
	        "  --until TIME      captured before TIME (same forms)\n"
	        "  --message NAME    only messages called NAME (cap-req, cap-res)\n"
	        "  --match ARG=VALUE argument ARG is VALUE, as text (numbers in decimal,\n"
	        "                    true/false, addresses); ARG~TEXT: contains TEXT;\n"
	        "                    ARG.NAME=VALUE: header NAME of header block ARG\n"
	        "                    (hdrs.host=example.com); repeatable\n"
	        "  --limit N         at most N records\n"
	        "  --state LIST      pending, delivered (retained after delivery), dead\n"
	        "                    (dead letters), all, or a comma list (default: %s)\n",
	        default_state);
}

static int bad(const cli_filter *f, const char *opt, const char *arg, const char *why)
{
	fprintf(stderr, "%s: %s '%s': %s\n", f->prog, opt, arg, why);
	return -1;
}

static int64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static int parse_states(const char *s, unsigned *out)
{
	unsigned st = 0;

	while (*s) {
		size_t n = strcspn(s, ",");

		if (n == 7 && !strncmp(s, "pending", 7))
			st |= CLI_STATE_PENDING;
		else if (n == 9 && !strncmp(s, "delivered", 9))
			st |= CLI_STATE_DELIVERED;
		else if (n == 4 && !strncmp(s, "dead", 4))
			st |= CLI_STATE_DEAD;
		else if (n == 3 && !strncmp(s, "all", 3))
			st |= CLI_STATE_ALL;
		else
			return -1;
		s += n;
		if (*s == ',' && *++s == '\0')
			return -1;
	}
	if (!st)
		return -1;
	*out = st;
	return 0;
}

static int parse_match(cli_filter *f, const char *arg)
{
	cli_match *m;
	size_t n = strcspn(arg, "=~");
	const char *dot;

	if (f->nmatch == CLI_FILTER_MATCH_MAX)
		return bad(f, "--match", arg, "too many --match options (32 at most)");
	if (!arg[n])
		return bad(f, "--match", arg, "expected ARG=VALUE or ARG~TEXT");
	if (n == 0)
		return bad(f, "--match", arg, "the argument name is empty");
	m = &f->match[f->nmatch];
	memset(m, 0, sizeof *m);
	m->arg = arg;
	m->arg_len = n;
	m->substring = arg[n] == '~';
	m->value = arg + n + 1;
	m->value_len = strlen(m->value);
	dot = memchr(arg, '.', n);
	m->prefix_len = n;
	if (dot) {
		m->prefix_len = (size_t)(dot - arg);
		m->hdr = dot + 1;
		m->hdr_len = n - m->prefix_len - 1;
		if (m->prefix_len == 0 || m->hdr_len == 0)
			return bad(f, "--match", arg, "expected ARG.HEADER with both parts");
	}
	f->nmatch++;
	return 0;
}

int cli_filter_add_opt(cli_filter *f, int opt, const char *arg)
{
	char err[200];
	int64_t t;

	if (!f->now_ns)
		f->now_ns = wall_ns();
	switch (opt) {
	case CLI_FILTER_OPT_FROM:
		return cli_parse_u64("--from", arg, &f->from) < 0 ? -1 : 1;
	case CLI_FILTER_OPT_TO:
		if (cli_parse_u64("--to", arg, &f->to) < 0)
			return -1;
		if (f->to == 0)
			return bad(f, "--to", arg, "sequence numbers start at 1");
		return 1;
	case CLI_FILTER_OPT_SINCE:
	case CLI_FILTER_OPT_UNTIL:
		if (cli_filter_parse_time(arg, f->now_ns, &t, err, sizeof err) < 0)
			return bad(f, opt == CLI_FILTER_OPT_SINCE ? "--since" : "--until", arg, err);
		if (opt == CLI_FILTER_OPT_SINCE) {
			f->since_ns = t;
			f->has_since = 1;
		} else {
			f->until_ns = t;
			f->has_until = 1;
		}
		return 1;
	case CLI_FILTER_OPT_MESSAGE:
		if (!*arg)
			return bad(f, "--message", arg, "the name is empty");
		f->message = arg;
		return 1;
	case CLI_FILTER_OPT_MATCH:
		return parse_match(f, arg) < 0 ? -1 : 1;
	case CLI_FILTER_OPT_LIMIT:
		return cli_parse_u64("--limit", arg, &f->limit) < 0 ? -1 : 1;
	case CLI_FILTER_OPT_STATE:
		if (parse_states(arg, &f->states) < 0)
			return bad(f, "--state", arg, "expected pending, delivered, dead, all "
			           "or a comma list of them");
		return 1;
	default:
		return 0;
	}
}

int cli_filter_check(const cli_filter *f)
{
	if (f->to && f->from > f->to) {
		fprintf(stderr, "%s: --from %" PRIu64 " is above --to %" PRIu64
		        ": nothing can match\n", f->prog, f->from, f->to);
		return -1;
	}
	if (f->has_since && f->has_until && f->since_ns >= f->until_ns) {
		char a[EVENT_TIME_LEN + 1], b[EVENT_TIME_LEN + 1];

		event_time_format(a, f->since_ns);
		event_time_format(b, f->until_ns);
		fprintf(stderr, "%s: --since (%s) is not before --until (%s): nothing can "
		        "match\n", f->prog, a, b);
		return -1;
	}
	return 0;
}

const char *cli_state_name(unsigned state)
{
	switch (state) {
	case CLI_STATE_PENDING: return "pending";
	case CLI_STATE_DELIVERED: return "delivered";
	case CLI_STATE_DEAD: return "dead";
	default: return "?";
	}
}

/* -------------------------------------------------------------- times */

/* H. Hinnant's days_from_civil: days since 1970-01-01. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char **s, int n, unsigned *out)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < n; i++) {
		if ((*s)[i] < '0' || (*s)[i] > '9')
			return -1;
		v = v * 10 + (unsigned)((*s)[i] - '0');
	}
	*s += n;
	*out = v;
	return 0;
}

static int parse_rfc3339(const char *s, int64_t *out, char *err, size_t errlen)
{
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y, mo, d, h = 0, mi = 0, sec = 0, oh, om;
	int64_t frac = 0, t;
	int sign;

	if (digits(&s, 4, &y) < 0 || *s++ != '-' || digits(&s, 2, &mo) < 0 || *s++ != '-' ||
	    digits(&s, 2, &d) < 0)
		goto syntax;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))) {
		snprintf(err, errlen, "no such date");
		return -1;
	}
	if (*s == '\0')
		goto done;                  /* a date alone: its midnight UTC */
	if (*s != 'T' && *s != 't' && *s != ' ')
		goto syntax;
	s++;
	if (digits(&s, 2, &h) < 0 || *s++ != ':' || digits(&s, 2, &mi) < 0)
		goto syntax;
	if (*s == ':') {
		s++;
		if (digits(&s, 2, &sec) < 0)
			goto syntax;
		if (*s == '.' || *s == ',') {
			int64_t scale = NS / 10;

			if (*++s < '0' || *s > '9')
				goto syntax;
			for (; *s >= '0' && *s <= '9'; s++, scale /= 10)
				frac += (*s - '0') * scale;     /* digits past ns are ignored */
		}
	}
	if (h > 23 || mi > 59 || sec > 60) {
		snprintf(err, errlen, "no such time of day");
		return -1;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
		oh = om = 0;
		sign = 1;
	} else if (*s == '+' || *s == '-') {
		sign = *s++ == '-' ? -1 : 1;
		if (digits(&s, 2, &oh) < 0)
			goto syntax;
		if (*s == ':')
			s++;
		if (digits(&s, 2, &om) < 0 || oh > 23 || om > 59)
			goto syntax;
	} else if (*s == '\0') {
		snprintf(err, errlen, "add Z (UTC) or an offset such as +01:00: a time "
		         "without a zone is ambiguous");
		return -1;
	} else {
		goto syntax;
	}
	if (*s)
		goto syntax;
	/* A leap second (sec 60) is the first instant of the next minute. */
	t = (int64_t)h * 3600 + mi * 60 + sec - sign * ((int64_t)oh * 3600 + om * 60);
	*out = (days_from_civil(y, mo, d) * 86400 + t) * NS + frac;
	if (y < 1678 || y > 2261) {
		snprintf(err, errlen, "the year is out of range");
		return -1;
	}
	return 0;
done:
	if (y < 1678 || y > 2261) {
		snprintf(err, errlen, "the year is out of range");
		return -1;
	}
	*out = days_from_civil(y, mo, d) * 86400 * NS;
	return 0;
syntax:
	snprintf(err, errlen, "expected RFC 3339 (2026-11-26T08:00:00Z, "
	         "2026-11-26T09:00:00.5+01:00, 2026-11-26) or an age (10m, 2h, 3d)");
	return -1;
}

static int parse_age(const char *s, int64_t *out)
{
	int64_t total = 0;

	if (!*s)
		return -1;
	while (*s) {
		uint64_t v = 0, unit;

		if (*s < '0' || *s > '9')
			return -1;
		for (; *s >= '0' && *s <= '9'; s++) {
			v = v * 10 + (uint64_t)(*s - '0');
			if (v > 1000000000)
				return -1;
		}
		switch (*s++) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		case 'w': unit = 7 * 86400; break;
		default: return -1;
		}
		/* Capped at ~100 years: far beyond any spool, far from overflow. */
		if (v > 100 * 366 * 86400ull / unit)
			return -1;
		total += (int64_t)(v * unit);
		if (total > 100 * 366 * 86400ll)
			return -1;
	}
	*out = total * NS;
	return 0;
}

int cli_filter_parse_time(const char *s, int64_t now_ns, int64_t *out, char *err,
                          size_t errlen)
{
	int64_t age;
	size_t n = strlen(s);

	if (n >= 10 && s[4] == '-')
		return parse_rfc3339(s, out, err, errlen);
	if (parse_age(s, &age) == 0) {
		*out = (now_ns ? now_ns : wall_ns()) - age;
		return 0;
	}
	if (n && s[n - 1] >= '0' && s[n - 1] <= '9' && strspn(s, "0123456789") == n)
		snprintf(err, errlen, "an age needs a unit: s, m, h, d or w (10m, 2h)");
	else
		parse_rfc3339(s, out, err, errlen);
	return -1;
}
