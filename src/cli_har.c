/* cli_har.c -- renders HAR 1.2 entries from captured request and response
 * events (see cli_har.h). Pure formatting into a json_buf.
 *
 * What HAR asks for and the capture does not have: headersSize is -1 (the
 * wire form is not captured), statusText is the standard reason phrase
 * (HAProxy does not pass the one sent), timings are the difference of the
 * two capture times, all counted as "wait". A missing half is filled with
 * the values HAR tools use for "nothing" (status 0, url about:blank) and
 * the entry says so in its comment and in _spoolcap.missing. Strings in
 * HAR must be strings: names and values that are not UTF-8 get U+FFFD,
 * bodies that are not UTF-8 are base64 (content.encoding). */
#include "config.h"

#include "spoolcap/cli_har.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "spoolcap/cli_filter.h"
#include "spoolcap/cli_hdrs.h"
#include "spoolcap/event.h"

#define LIT(j, s) json_raw((j), (s), sizeof(s) - 1)

static int arg(const cli_har_half *h, const char *name, spop_data *val)
{
	return h && h->v && cli_rec_arg(h->v, name, strlen(name), val);
}

static int arg_str(const cli_har_half *h, const char *name, spop_str *s)
{
	spop_data v;

	if (!arg(h, name, &v) || (v.type != SPOP_T_STRING && v.type != SPOP_T_BINARY))
		return 0;
	*s = v.v.s;
	return 1;
}

static int arg_int(const cli_har_half *h, const char *name, int64_t *out)
{
	spop_data v;

	if (!arg(h, name, &v))
		return 0;
	switch (v.type) {
	case SPOP_T_INT32:
	case SPOP_T_INT64:
		*out = v.v.i;
		return 1;
	case SPOP_T_UINT32:
	case SPOP_T_UINT64:
		*out = v.v.u > INT64_MAX ? INT64_MAX : (int64_t)v.v.u;
		return 1;
	default:
		return 0;
	}
}

int cli_har_kind(const record_view *v)
{
	cli_har_half h = { v, 0, 0 };
	spop_data d;

	if (arg(&h, "meth", &d) || arg(&h, "method", &d))
		return CLI_HAR_REQUEST;
	if (arg(&h, "status", &d))
		return CLI_HAR_RESPONSE;
	return CLI_HAR_OTHER;
}

/* The first argument named as a header block that holds one. */
static int hdrs_of(const cli_har_half *h, cli_hdrs *it)
{
	spop_iter args;
	spop_str name;
	spop_data val;

	if (!h || !h->v)
		return 0;
	args = h->v->msg.args;
	while (spop_arg_next(&args, &name, &val) > 0)
		if (name.len && event_is_hdrs_arg(NULL, name.ptr, name.len) &&
		    cli_hdrs_init(it, &val) == 0)
			return 1;
	return 0;
}

/* The first header called name. */
static int header(const cli_har_half *h, const char *name, spop_str *value)
{
	cli_hdrs it;
	spop_str n;

	if (!hdrs_of(h, &it))
		return 0;
	while (cli_hdrs_next(&it, &n, value))
		if (cli_hdrs_name_eq(n, name, strlen(name)))
			return 1;
	return 0;
}

static void str(json_buf *j, const void *p, size_t n)
{
	json_str(j, p, n);
}

static void cstr(json_buf *j, const char *s)
{
	json_str(j, s, strlen(s));
}

/* "HTTP/1.1" from the ver argument ("1.1"), "" when unknown. */
static void http_version(json_buf *j, const cli_har_half *h)
{
	spop_str v;

	if (!arg_str(h, "ver", &v) || v.len == 0) {
		LIT(j, "\"\"");
		return;
	}
	LIT(j, "\"HTTP/");
	json_esc(j, v.ptr, v.len);
	json_char(j, '"');
}

static void headers(json_buf *j, const cli_har_half *h)
{
	cli_hdrs it;
	spop_str n, v;
	int first = 1;

	json_char(j, '[');
	if (hdrs_of(h, &it))
		while (cli_hdrs_next(&it, &n, &v)) {
			if (!first)
				json_char(j, ',');
			first = 0;
			LIT(j, "{\"name\":");
			str(j, n.ptr, n.len);
			LIT(j, ",\"value\":");
			str(j, v.ptr, v.len);
			json_char(j, '}');
		}
	json_char(j, ']');
}

static const uint8_t *trim(const uint8_t *p, const uint8_t *e, const uint8_t **end)
{
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*end = e;
	return p;
}

/* One cookie "name=value"; returns the new value of first. */
static int cookie(json_buf *j, const uint8_t *p, const uint8_t *e, int first)
{
	const uint8_t *eq, *ne, *v, *ve;

	p = trim(p, e, &e);
	eq = memchr(p, '=', (size_t)(e - p));
	if (!eq || eq == p)
		return first;
	p = trim(p, eq, &ne);
	v = trim(eq + 1, e, &ve);
	if (!first)
		json_char(j, ',');
	LIT(j, "{\"name\":");
	str(j, p, (size_t)(ne - p));
	LIT(j, ",\"value\":");
	str(j, v, (size_t)(ve - v));
	json_char(j, '}');
	return 0;
}

/* Request: every "cookie" header, split at ';'. Response: each
 * "set-cookie" header is one cookie (its attributes are not kept). */
static void cookies(json_buf *j, const cli_har_half *h, int response)
{
	const char *want = response ? "set-cookie" : "cookie";
	cli_hdrs it;
	spop_str n, v;
	int first = 1;

	json_char(j, '[');
	if (hdrs_of(h, &it))
		while (cli_hdrs_next(&it, &n, &v)) {
			const uint8_t *p = v.ptr, *e = v.ptr + v.len, *semi;

			if (!cli_hdrs_name_eq(n, want, strlen(want)))
				continue;
			if (response) {
				semi = memchr(p, ';', v.len);
				first = cookie(j, p, semi ? semi : e, first);
				continue;
			}
			while (p < e) {
				semi = memchr(p, ';', (size_t)(e - p));
				if (!semi)
					semi = e;
				first = cookie(j, p, semi, first);
				p = semi + 1;
			}
		}
	json_char(j, ']');
}

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A query component, percent-decoded when that gives UTF-8, else as is. */
static void query_part(json_buf *j, const uint8_t *p, size_t n, json_buf *tmp)
{
	size_t i;

	json_reset(tmp);
	for (i = 0; i < n; i++) {
		int hi, lo;

		if (p[i] == '%' && i + 2 < n && (hi = hexval(p[i + 1])) >= 0 &&
		    (lo = hexval(p[i + 2])) >= 0) {
			json_char(tmp, (char)(hi * 16 + lo));
			i += 2;
		} else {
			json_char(tmp, (char)p[i]);
		}
	}
	if (!tmp->err && json_utf8_valid(tmp->data, tmp->len))
		str(j, tmp->data, tmp->len);
	else
		str(j, p, n);
}

static void query_string(json_buf *j, const cli_har_half *h, json_buf *tmp)
{
	spop_str q;
	const uint8_t *p, *e;
	int first = 1;

	json_char(j, '[');
	if (arg_str(h, "query", &q)) {
		for (p = q.ptr, e = q.ptr + q.len; p < e;) {
			const uint8_t *amp = memchr(p, '&', (size_t)(e - p)), *eq;

			if (!amp)
				amp = e;
			if (amp > p) {
				eq = memchr(p, '=', (size_t)(amp - p));
				if (!first)
					json_char(j, ',');
				first = 0;
				LIT(j, "{\"name\":");
				query_part(j, p, (size_t)((eq ? eq : amp) - p), tmp);
				LIT(j, ",\"value\":");
				if (eq)
					query_part(j, eq + 1, (size_t)(amp - eq - 1), tmp);
				else
					LIT(j, "\"\"");
				json_char(j, '}');
			}
			p = amp + 1;
		}
	}
	json_char(j, ']');
}

/* Bytes that may not appear in a URI as they are: percent-encoded. */
static void url_bytes(json_buf *u, const uint8_t *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		uint8_t c = p[i];

		if (c <= 0x20 || c >= 0x7f || strchr("\"<>\\^`{|}", c)) {
			json_char(u, '%');
			json_char(u, hex[c >> 4]);
			json_char(u, hex[c & 15]);
		} else {
			json_char(u, (char)c);
		}
	}
}

/* scheme://host/path?query. host: the Host header, else dst[:dport]. */
static void url(json_buf *j, const cli_har_half *h, json_buf *u)
{
	spop_data tls, dst;
	spop_str host, path, query;
	int64_t port = 0;
	int https = arg(h, "tls", &tls) && tls.type == SPOP_T_BOOL && tls.v.b;

	json_reset(u);
	json_cstr_raw(u, https ? "https://" : "http://");
	if (header(h, "host", &host) && host.len) {
		url_bytes(u, host.ptr, host.len);
	} else if (arg(h, "dst", &dst) && (dst.type == SPOP_T_IPV4 || dst.type == SPOP_T_IPV6)) {
		char tmp[64];
		const uint8_t *p;
		size_t n;

		if (cli_value_text(&dst, tmp, sizeof tmp, &p, &n) == 0) {
			if (dst.type == SPOP_T_IPV6)
				json_char(u, '[');
			json_raw(u, p, n);
			if (dst.type == SPOP_T_IPV6)
				json_char(u, ']');
		}
		if (arg_int(h, "dport", &port) && port != (https ? 443 : 80)) {
			json_char(u, ':');
			json_i64(u, port);
		}
	} else {
		json_cstr_raw(u, "unknown");
	}
	if (arg_str(h, "path", &path) && path.len) {
		if (path.ptr[0] != '/')
			json_char(u, '/');
		url_bytes(u, path.ptr, path.len);
	} else {
		json_char(u, '/');
	}
	if (arg_str(h, "query", &query) && query.len) {
		json_char(u, '?');
		url_bytes(u, query.ptr, query.len);
	}
	str(j, u->data, u->len);
}

static void mime(json_buf *j, const cli_har_half *h, const char *unknown)
{
	spop_str ct;

	if (header(h, "content-type", &ct))
		str(j, ct.ptr, ct.len);
	else
		cstr(j, unknown);
}

/* The body's declared size (bsize), else what was seen (blen), else the
 * captured bytes; -1 when the capture has none of them. */
static int64_t body_size(const cli_har_half *h)
{
	spop_str b;
	int64_t n;

	if (arg_int(h, "bsize", &n) && n >= 0)
		return n;
	if (arg_int(h, "blen", &n) && n >= 0)
		return n;
	if (arg_str(h, "body", &b))
		return (int64_t)b.len;
	return -1;
}

/* Whether the captured body is shorter than the body. */
static int body_cut(const cli_har_half *h)
{
	spop_str b;
	int64_t n = body_size(h);

	return arg_str(h, "body", &b) && n > (int64_t)b.len;
}

/* ,"text":... of a body (base64 when it is not UTF-8; HAR 1.2 names that
 * "encoding" in content, and has no such field in postData, hence the
 * underscore there) and a comment when the capture was cut. */
static void body_text(json_buf *j, const cli_har_half *h, spop_str b, int in_post)
{
	LIT(j, ",\"text\":");
	if (json_utf8_valid(b.ptr, b.len)) {
		str(j, b.ptr, b.len);
	} else {
		json_char(j, '"');
		json_base64(j, b.ptr, b.len);
		if (in_post)
			LIT(j, "\",\"_encoding\":\"base64\"");
		else
			LIT(j, "\",\"encoding\":\"base64\"");
	}
	if (body_cut(h)) {
		LIT(j, ",\"comment\":\"truncated: ");
		json_u64(j, b.len);
		LIT(j, " of ");
		json_i64(j, body_size(h));
		LIT(j, " bytes captured\"");
	}
}

static void post_data(json_buf *j, const cli_har_half *h)
{
	spop_str b;

	if (!arg_str(h, "body", &b) || (b.len == 0 && body_size(h) <= 0))
		return;
	LIT(j, ",\"postData\":{\"mimeType\":");
	mime(j, h, "");
	body_text(j, h, b, 1);
	json_char(j, '}');
}

static void request(json_buf *j, const cli_har_half *h, json_buf *tmp)
{
	spop_str m;

	LIT(j, "{\"method\":");
	if (arg_str(h, "meth", &m) || arg_str(h, "method", &m))
		str(j, m.ptr, m.len);
	else
		LIT(j, "\"\"");
	LIT(j, ",\"url\":");
	if (h->v)
		url(j, h, tmp);
	else
		LIT(j, "\"about:blank\"");
	LIT(j, ",\"httpVersion\":");
	http_version(j, h);
	LIT(j, ",\"cookies\":");
	cookies(j, h, 0);
	LIT(j, ",\"headers\":");
	headers(j, h);
	LIT(j, ",\"queryString\":");
	query_string(j, h, tmp);
	post_data(j, h);
	LIT(j, ",\"headersSize\":-1,\"bodySize\":");
	json_i64(j, h->v ? body_size(h) : -1);
	json_char(j, '}');
}

static const char *reason(int64_t s)
{
	static const struct { int code; const char *text; } tab[] = {
		{ 100, "Continue" }, { 101, "Switching Protocols" }, { 103, "Early Hints" },
		{ 200, "OK" }, { 201, "Created" }, { 202, "Accepted" },
		{ 203, "Non-Authoritative Information" }, { 204, "No Content" },
		{ 205, "Reset Content" }, { 206, "Partial Content" }, { 207, "Multi-Status" },
		{ 300, "Multiple Choices" }, { 301, "Moved Permanently" }, { 302, "Found" },
		{ 303, "See Other" }, { 304, "Not Modified" }, { 307, "Temporary Redirect" },
		{ 308, "Permanent Redirect" }, { 400, "Bad Request" }, { 401, "Unauthorized" },
		{ 402, "Payment Required" }, { 403, "Forbidden" }, { 404, "Not Found" },
		{ 405, "Method Not Allowed" }, { 406, "Not Acceptable" },
		{ 407, "Proxy Authentication Required" }, { 408, "Request Timeout" },
		{ 409, "Conflict" }, { 410, "Gone" }, { 411, "Length Required" },
		{ 412, "Precondition Failed" }, { 413, "Content Too Large" },
		{ 414, "URI Too Long" }, { 415, "Unsupported Media Type" },
		{ 416, "Range Not Satisfiable" }, { 417, "Expectation Failed" },
		{ 421, "Misdirected Request" }, { 422, "Unprocessable Content" },
		{ 425, "Too Early" }, { 426, "Upgrade Required" },
		{ 428, "Precondition Required" }, { 429, "Too Many Requests" },
		{ 431, "Request Header Fields Too Large" },
		{ 451, "Unavailable For Legal Reasons" }, { 500, "Internal Server Error" },
		{ 501, "Not Implemented" }, { 502, "Bad Gateway" },
		{ 503, "Service Unavailable" }, { 504, "Gateway Timeout" },
		{ 505, "HTTP Version Not Supported" },
	};
	size_t i;

	for (i = 0; i < sizeof tab / sizeof tab[0]; i++)
		if (tab[i].code == s)
			return tab[i].text;
	return "";
}

static void content(json_buf *j, const cli_har_half *h)
{
	spop_str b;
	int64_t size = body_size(h);

	LIT(j, "{\"size\":");
	json_i64(j, size > 0 ? size : 0);
	LIT(j, ",\"mimeType\":");
	mime(j, h, "x-unknown");
	if (arg_str(h, "body", &b))
		body_text(j, h, b, 0);
	json_char(j, '}');
}

static void response(json_buf *j, const cli_har_half *h)
{
	spop_str loc;
	int64_t status = 0;

	if (!h->v) {
		LIT(j, "{\"status\":0,\"statusText\":\"\",\"httpVersion\":\"\",\"cookies\":[],"
		    "\"headers\":[],\"content\":{\"size\":0,\"mimeType\":\"x-unknown\"},"
		    "\"redirectURL\":\"\",\"headersSize\":-1,\"bodySize\":-1}");
		return;
	}
	arg_int(h, "status", &status);
	LIT(j, "{\"status\":");
	json_i64(j, status);
	LIT(j, ",\"statusText\":");
	cstr(j, reason(status));
	LIT(j, ",\"httpVersion\":");
	http_version(j, h);
	LIT(j, ",\"cookies\":");
	cookies(j, h, 1);
	LIT(j, ",\"headers\":");
	headers(j, h);
	LIT(j, ",\"content\":");
	content(j, h);
	LIT(j, ",\"redirectURL\":");
	if (header(h, "location", &loc))
		str(j, loc.ptr, loc.len);
	else
		LIT(j, "\"\"");
	LIT(j, ",\"headersSize\":-1,\"bodySize\":");
	json_i64(j, body_size(h));
	json_char(j, '}');
}

/* "addr:port" from two arguments, or nothing. */
static void endpoint(json_buf *j, const cli_har_half *h, const char *a, const char *p,
                     const char *k)
{
	spop_data ip;
	int64_t port;
	char tmp[64];
	const uint8_t *s;
	size_t n;

	if (!arg(h, a, &ip) || cli_value_text(&ip, tmp, sizeof tmp, &s, &n) < 0)
		return;
	LIT(j, ",\"");
	json_cstr_raw(j, k);
	LIT(j, "\":\"");
	json_esc(j, s, n);
	if (arg_int(h, p, &port)) {
		json_char(j, ':');
		json_i64(j, port);
	}
	json_char(j, '"');
}

static void ms(json_buf *j, int64_t ns)
{
	char num[32];

	snprintf(num, sizeof num, "%.3f", (double)ns / 1e6);
	json_cstr_raw(j, num);
}

static void seq_or_null(json_buf *j, const cli_har_half *h)
{
	if (h->v)
		json_u64(j, h->seq);
	else
		LIT(j, "null");
}

void cli_har_entry(json_buf *j, const cli_har_half *req, const cli_har_half *res)
{
	const cli_har_half *first = req->v ? req : res;
	char t[EVENT_TIME_LEN + 1];
	int64_t wait = req->v && res->v ? res->v->recv_ns - req->v->recv_ns : 0;
	spop_str uid, srv;
	spop_data sa;
	json_buf tmp;

	json_init(&tmp, 1u << 20);
	if (wait < 0)
		wait = 0;
	event_time_format(t, first->v->recv_ns);
	memcpy(t + 23, "Z", 2);
	LIT(j, "{\"startedDateTime\":\"");
	json_cstr_raw(j, t);
	LIT(j, "\",\"time\":");
	ms(j, wait);
	LIT(j, ",\"request\":");
	request(j, req, &tmp);
	LIT(j, ",\"response\":");
	response(j, res);
	LIT(j, ",\"cache\":{},\"timings\":{\"send\":0,\"wait\":");
	ms(j, wait);
	LIT(j, ",\"receive\":0}");
	if (arg(res, "srvaddr", &sa)) {
		char ip[64];
		const uint8_t *p;
		size_t n;

		if (cli_value_text(&sa, ip, sizeof ip, &p, &n) == 0) {
			LIT(j, ",\"serverIPAddress\":");
			str(j, p, n);
		}
	}
	if (!req->v)
		LIT(j, ",\"comment\":\"spoolcap: no request was captured for this response\"");
	else if (!res->v)
		LIT(j, ",\"comment\":\"spoolcap: no response was captured for this request\"");
	LIT(j, ",\"_spoolcap\":{\"uid\":");
	if (arg_str(req, "uid", &uid) || arg_str(res, "uid", &uid))
		str(j, uid.ptr, uid.len);
	else
		LIT(j, "null");
	LIT(j, ",\"paired\":");
	json_cstr_raw(j, req->v && res->v ? "true" : "false");
	if (!req->v || !res->v) {
		LIT(j, ",\"missing\":");
		json_cstr_raw(j, req->v ? "\"response\"" : "\"request\"");
	}
	LIT(j, ",\"request_seq\":");
	seq_or_null(j, req);
	LIT(j, ",\"response_seq\":");
	seq_or_null(j, res);
	endpoint(j, req, "src", "sport", "client");
	if (arg_str(res, "srv", &srv)) {
		LIT(j, ",\"server\":");
		str(j, srv.ptr, srv.len);
	}
	if (req->truncated || res->truncated)
		LIT(j, ",\"truncated\":true");
	LIT(j, "}}");
	json_free(&tmp);
}

void cli_har_begin(json_buf *j, const char *spool_uuid, const char *dir)
{
	json_buf c;

	LIT(j, "{\"log\":{\"version\":\"1.2\",\"creator\":{\"name\":\"spoolcap\",\"version\":\"");
	json_cstr_raw(j, PACKAGE_VERSION);
	LIT(j, "\"},\"comment\":");
	json_init(&c, 8192);
	json_cstr_raw(&c, "exported by spoolcap from spool ");
	json_cstr_raw(&c, spool_uuid);
	json_cstr_raw(&c, " (");
	json_raw(&c, dir, strlen(dir));
	json_cstr_raw(&c, ")");
	str(j, c.data, c.len);
	json_free(&c);
	LIT(j, ",\"entries\":[\n");
}

void cli_har_end(json_buf *j)
{
	LIT(j, "\n]}}\n");
}
