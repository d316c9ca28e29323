/* cli_match.c -- --message and --match against a decoded record, and the
 * argument lookups ls and the HAR export share (see cli_filter.h). */
#include "config.h"

#include "spoolcap/cli_filter.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <string.h>
#include <sys/socket.h>

#include "spoolcap/cli_hdrs.h"

int cli_value_text(const spop_data *v, char *tmp, size_t tmplen, const uint8_t **p,
                   size_t *n)
{
	int len = 0;

	switch (v->type) {
	case SPOP_T_STRING:
	case SPOP_T_BINARY:
		*p = v->v.s.ptr;
		*n = v->v.s.len;
		return 0;
	case SPOP_T_BOOL:
		len = snprintf(tmp, tmplen, "%s", v->v.b ? "true" : "false");
		break;
	case SPOP_T_INT32:
	case SPOP_T_INT64:
		len = snprintf(tmp, tmplen, "%" PRId64, v->v.i);
		break;
	case SPOP_T_UINT32:
	case SPOP_T_UINT64:
		len = snprintf(tmp, tmplen, "%" PRIu64, v->v.u);
		break;
	case SPOP_T_IPV4:
	case SPOP_T_IPV6:
		if (!inet_ntop(v->type == SPOP_T_IPV4 ? AF_INET : AF_INET6, v->v.ip, tmp,
		               (socklen_t)tmplen))
			return -1;
		len = (int)strlen(tmp);
		break;
	default:
		return -1;              /* null */
	}
	if (len < 0 || (size_t)len >= tmplen)
		return -1;
	*p = (const uint8_t *)tmp;
	*n = (size_t)len;
	return 0;
}

/* "argN" naming the N-th argument (1-based) when it has no name. */
static int positional(const char *name, size_t len, unsigned pos)
{
	unsigned long v = 0;
	size_t i;

	if (len < 4 || len > 13 || memcmp(name, "arg", 3) != 0 || name[3] == '0')
		return 0;
	for (i = 3; i < len; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		v = v * 10 + (unsigned long)(name[i] - '0');
	}
	return v == pos;
}

static int name_is(spop_str name, unsigned pos, const char *want, size_t len)
{
	if (name.len)
		return name.len == len && memcmp(name.ptr, want, len) == 0;
	return positional(want, len, pos);
}

int cli_rec_arg(const record_view *v, const char *name, size_t len, spop_data *val)
{
	spop_iter it = v->msg.args;
	spop_str n;
	unsigned pos = 0;

	while (spop_arg_next(&it, &n, val) > 0)
		if (name_is(n, ++pos, name, len))
			return 1;
	return 0;
}

static int text_eq(const cli_match *m, const uint8_t *p, size_t n)
{
	if (!m->substring)
		return n == m->value_len && memcmp(p, m->value, n) == 0;
	return m->value_len == 0 || (n >= m->value_len && memmem(p, n, m->value, m->value_len));
}

static int match_one(const cli_match *m, const record_view *v)
{
	spop_iter it = v->msg.args;
	spop_str name;
	spop_data val;
	unsigned pos = 0;

	while (spop_arg_next(&it, &name, &val) > 0) {
		char tmp[64];
		const uint8_t *p;
		size_t n;

		pos++;
		if (name_is(name, pos, m->arg, m->arg_len)) {
			if (cli_value_text(&val, tmp, sizeof tmp, &p, &n) == 0 && text_eq(m, p, n))
				return 1;
		} else if (m->hdr && name_is(name, pos, m->arg, m->prefix_len)) {
			cli_hdrs h;
			spop_str hn, hv;

			if (cli_hdrs_init(&h, &val) < 0)
				continue;
			while (cli_hdrs_next(&h, &hn, &hv))
				if (cli_hdrs_name_eq(hn, m->hdr, m->hdr_len) && text_eq(m, hv.ptr, hv.len))
					return 1;
		}
	}
	return 0;
}

int cli_filter_match(const cli_filter *f, const record_view *v)
{
	unsigned i;

	if (f->message && (v->msg.name.len != strlen(f->message) ||
	                   memcmp(v->msg.name.ptr, f->message, v->msg.name.len) != 0))
		return 0;
	for (i = 0; i < f->nmatch; i++)
		if (!match_one(&f->match[i], v))
			return 0;
	return 1;
}
