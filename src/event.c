/* event.c -- one record as the event JSON object of design.md (mapping and
 * the choices the contract leaves open: see event.h). Pure formatting: no
 * allocation besides the json_buf, no locale, no gmtime. */
#include "spoolcap/event.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#define LIT(b, s) json_raw((b), (s), sizeof(s) - 1)

static const char *const default_hdrs[] = { "*hdrs", "*headers" };

/* ---- time ---- */

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
 * civil_from_days, exact for every int64 day count we can get here). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static char *put_digits(char *o, unsigned v, int n)
{
	int i;

	for (i = n - 1; i >= 0; i--) {
		o[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return o + n;
}

size_t event_time_format(char *out, int64_t ns)
{
	/* Floor division, so times before 1970 still print correctly. */
	int64_t sec = ns / 1000000000, rem = ns % 1000000000, days, sod, y;
	unsigned m, d;
	char *o = out;

	if (rem < 0) {
		rem += 1000000000;
		sec--;
	}
	days = sec / 86400;
	sod = sec % 86400;
	if (sod < 0) {
		sod += 86400;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	/* int64 ns spans years 1677..2262: always four digits. */
	o = put_digits(o, (unsigned)y, 4);
	*o++ = '-';
	o = put_digits(o, m, 2);
	*o++ = '-';
	o = put_digits(o, d, 2);
	*o++ = 'T';
	o = put_digits(o, (unsigned)(sod / 3600), 2);
	*o++ = ':';
	o = put_digits(o, (unsigned)(sod / 60 % 60), 2);
	*o++ = ':';
	o = put_digits(o, (unsigned)(sod % 60), 2);
	*o++ = '.';
	o = put_digits(o, (unsigned)(rem / 1000), 6);
	*o++ = 'Z';
	*o = '\0';
	return (size_t)(o - out);
}

/* ---- header blocks ---- */

int event_hdrs_render(json_buf *b, const void *block, size_t len)
{
	const uint8_t *p = block, *end = p + len;
	size_t mark = b->len;
	int first = 1;

	if (b->err)
		return b->err;
	json_char(b, '[');
	for (;;) {
		spop_str name, value;

		if (spop_name_get(&p, end, &name) < 0 || spop_name_get(&p, end, &value) < 0)
			goto bad;
		if (name.len == 0) {
			/* The 00 00 terminator, and nothing after it. */
			if (value.len != 0 || p != end)
				goto bad;
			break;
		}
		if (!first)
			json_char(b, ',');
		first = 0;
		json_char(b, '[');
		json_bytes(b, name.ptr, name.len);
		json_char(b, ',');
		json_bytes(b, value.ptr, value.len);
		json_char(b, ']');
	}
	json_char(b, ']');
	return b->err;
bad:
	if (b->err)
		return b->err;
	b->len = mark;
	return -1;
}

static int ieq(const uint8_t *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint8_t x = a[i], y = (uint8_t)b[i];

		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return 0;
	}
	return 1;
}

int event_is_hdrs_arg(const event_opts *opts, const void *name, size_t len)
{
	const char *const *pats = default_hdrs;
	size_t i, n = sizeof default_hdrs / sizeof default_hdrs[0];
	const uint8_t *s = name;

	if (opts && opts->hdrs_args) {
		pats = opts->hdrs_args;
		n = opts->nhdrs_args;
	}
	for (i = 0; i < n; i++) {
		const char *pat = pats[i];
		size_t pl;

		if (pat[0] == '*') {
			pl = strlen(++pat);
			if (pl <= len && ieq(s + len - pl, pat, pl))
				return 1;
		} else {
			pl = strlen(pat);
			if (pl == len && ieq(s, pat, pl))
				return 1;
		}
	}
	return 0;
}

/* ---- values ---- */

static void put_ipv4(json_buf *b, const uint8_t *ip)
{
	char tmp[18], *o = tmp;
	int i;

	*o++ = '"';
	for (i = 0; i < 4; i++) {
		unsigned v = ip[i];

		if (i)
			*o++ = '.';
		if (v >= 100)
			*o++ = (char)('0' + v / 100);
		if (v >= 10)
			*o++ = (char)('0' + v / 10 % 10);
		*o++ = (char)('0' + v % 10);
	}
	*o++ = '"';
	json_raw(b, tmp, (size_t)(o - tmp));
}

static void put_ipv6(json_buf *b, const uint8_t *ip)
{
	char tmp[INET6_ADDRSTRLEN];

	if (!inet_ntop(AF_INET6, ip, tmp, sizeof tmp)) {
		/* Cannot happen with a valid buffer; keep the bytes anyway. */
		json_bytes(b, ip, 16);
		return;
	}
	json_char(b, '"');
	json_cstr_raw(b, tmp);
	json_char(b, '"');
}

static void put_value(json_buf *b, const spop_str *name, const spop_data *v,
                      const event_opts *opts)
{
	switch (v->type) {
	case SPOP_T_NULL:
		LIT(b, "null");
		break;
	case SPOP_T_BOOL:
		if (v->v.b)
			LIT(b, "true");
		else
			LIT(b, "false");
		break;
	case SPOP_T_INT32:
	case SPOP_T_INT64:
		json_i64(b, v->v.i);
		break;
	case SPOP_T_UINT32:
	case SPOP_T_UINT64:
		json_u64(b, v->v.u);
		break;
	case SPOP_T_IPV4:
		put_ipv4(b, v->v.ip);
		break;
	case SPOP_T_IPV6:
		put_ipv6(b, v->v.ip);
		break;
	case SPOP_T_BINARY:
		if (name->len && event_is_hdrs_arg(opts, name->ptr, name->len) &&
		    event_hdrs_render(b, v->v.s.ptr, v->v.s.len) != -1)
			break;
		/* Not a header block, or a malformed one: keep the bytes. */
		json_bytes(b, v->v.s.ptr, v->v.s.len);
		break;
	case SPOP_T_STRING:
		json_bytes(b, v->v.s.ptr, v->v.s.len);
		break;
	default:
		/* The codec rejects reserved types; never reached. */
		LIT(b, "null");
		break;
	}
}

int event_render(json_buf *b, const record_view *v, uint64_t seq,
                 const char *spool_uuid, const event_opts *opts)
{
	size_t mark = b->len;
	char tbuf[EVENT_TIME_LEN + 1];
	spop_iter args = v->msg.args;
	spop_str name;
	spop_data val;
	unsigned pos = 0;
	int rc;

	if (b->err)
		return b->err;
	LIT(b, "{\"id\":\"");
	json_esc(b, spool_uuid, strlen(spool_uuid));
	json_char(b, '-');
	json_u64(b, seq);
	LIT(b, "\",\"seq\":");
	json_u64(b, seq);
	LIT(b, ",\"time\":\"");
	json_raw(b, tbuf, event_time_format(tbuf, v->recv_ns));
	LIT(b, "\",\"message\":");
	json_str(b, v->msg.name.ptr, v->msg.name.len);
	LIT(b, ",\"spoe\":{\"engine\":");
	if (v->engine_id.len)
		json_str(b, v->engine_id.ptr, v->engine_id.len);
	else
		LIT(b, "null");
	LIT(b, ",\"stream\":");
	json_u64(b, v->sid);
	LIT(b, ",\"frame\":");
	json_u64(b, v->fid);
	LIT(b, "},\"args\":{");
	while ((rc = spop_arg_next(&args, &name, &val)) > 0) {
		if (pos++)
			json_char(b, ',');
		if (name.len) {
			json_str(b, name.ptr, name.len);
		} else {
			LIT(b, "\"arg");
			json_u64(b, pos);
			json_char(b, '"');
		}
		json_char(b, ':');
		put_value(b, &name, &val, opts);
	}
	LIT(b, "}}");
	if (rc < 0 && !b->err)
		rc = EVENT_EMSG;
	else
		rc = b->err;
	if (rc)
		json_rollback(b, mark);
	return rc;
}
