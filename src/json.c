/* json.c -- streaming JSON writer: growable capped buffer, RFC 8259 string
 * escaping with RFC 3629 UTF-8 validation, base64, integers.
 *
 * Speed matters (the replay path renders 100k+ events/s): strings are
 * escaped in chunks, each chunk reserving its worst-case output once, plain
 * ASCII is skipped eight bytes at a time and copied with memcpy, and no
 * function is called per character. */
#include "spoolcap/json.h"

#include <stdlib.h>

/* Input bytes escaped per reservation; each needs at most 6 output bytes. */
#define ESC_CHUNK   4096
/* Memory may exceed max by this much, so that a chunk's worst-case
 * reservation near the cap does not fail when its real output fits. */
#define JSON_SLACK  (ESC_CHUNK * 6 + 64)

void json_init(json_buf *b, size_t max)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->max = max;
	b->err = JSON_OK;
}

void json_free(json_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void json_reset(json_buf *b)
{
	b->len = 0;
	b->err = JSON_OK;
}

void json_rollback(json_buf *b, size_t len)
{
	if (len < b->len)
		b->len = len;
	b->err = JSON_OK;
}

static int grow(json_buf *b, size_t n)
{
	size_t limit = b->max > SIZE_MAX - JSON_SLACK ? SIZE_MAX : b->max + JSON_SLACK;
	size_t need, ncap;
	char *nd;

	if (n > limit - b->len) {
		b->err = JSON_ETOOBIG;
		return -1;
	}
	need = b->len + n;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap = ncap > limit / 2 ? limit : ncap * 2;
	nd = realloc(b->data, ncap);
	if (!nd) {
		b->err = JSON_ENOMEM;
		return -1;
	}
	b->data = nd;
	b->cap = ncap;
	return 0;
}

/* Room for n more bytes at b->data + b->len, or NULL (err set). Writers
 * then end with commit(), which enforces the cap on what they wrote. */
static char *json_reserve(json_buf *b, size_t n)
{
	if (b->err)
		return NULL;
	if (n > b->cap - b->len && grow(b, n) < 0)
		return NULL;
	return b->data + b->len;
}

/* Ends a write that stopped at o; enforces the hard cap on the result. */
static void commit(json_buf *b, char *o)
{
	b->len = (size_t)(o - b->data);
	if (b->len > b->max)
		b->err = JSON_ETOOBIG;
}

void json_raw(json_buf *b, const void *p, size_t n)
{
	char *o = json_reserve(b, n);

	if (!o)
		return;
	if (n)
		memcpy(o, p, n);
	commit(b, o + n);
}

static const char digits2[] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* Writes v's decimal digits ending at end; returns where they start. */
static char *u64_digits(char *end, uint64_t v)
{
	while (v >= 100) {
		unsigned d = (unsigned)(v % 100) * 2;
		v /= 100;
		*--end = digits2[d + 1];
		*--end = digits2[d];
	}
	if (v >= 10) {
		*--end = digits2[v * 2 + 1];
		*--end = digits2[v * 2];
	} else {
		*--end = (char)('0' + v);
	}
	return end;
}

void json_u64(json_buf *b, uint64_t v)
{
	char tmp[20], *s = u64_digits(tmp + sizeof tmp, v);

	json_raw(b, s, (size_t)(tmp + sizeof tmp - s));
}

void json_i64(json_buf *b, int64_t v)
{
	char tmp[21], *s;

	/* The magnitude of INT64_MIN does not fit int64_t; negate as unsigned. */
	if (v < 0) {
		s = u64_digits(tmp + sizeof tmp, (uint64_t)0 - (uint64_t)v);
		*--s = '-';
	} else {
		s = u64_digits(tmp + sizeof tmp, (uint64_t)v);
	}
	json_raw(b, s, (size_t)(tmp + sizeof tmp - s));
}

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0 if the
 * bytes there are not one (RFC 3629 table 3.1 of well-formed sequences). */
static inline size_t utf8_seq(const uint8_t *p, const uint8_t *end)
{
	size_t avail = (size_t)(end - p);
	uint8_t c = p[0], lo = 0x80, hi = 0xBF;

	if (c < 0xC2)                    /* continuation byte, or C0/C1 overlong */
		return 0;
	if (c < 0xE0)
		return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
	if (c < 0xF0) {
		if (c == 0xE0)
			lo = 0xA0;               /* overlong below U+0800 */
		else if (c == 0xED)
			hi = 0x9F;               /* surrogates U+D800..U+DFFF */
		return avail >= 3 && p[1] >= lo && p[1] <= hi &&
		       (p[2] & 0xC0) == 0x80 ? 3 : 0;
	}
	if (c < 0xF5) {
		if (c == 0xF0)
			lo = 0x90;               /* overlong below U+10000 */
		else if (c == 0xF4)
			hi = 0x8F;               /* above U+10FFFF */
		return avail >= 4 && p[1] >= lo && p[1] <= hi &&
		       (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80 ? 4 : 0;
	}
	return 0;
}

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* 1 if none of the 8 bytes in x needs escaping or UTF-8 handling, i.e. all
 * are in 0x20..0x7E and none is '"' or '\\'. Exact "any byte" tests. */
static inline int word_plain(uint64_t x)
{
	uint64_t q, s;

	if (x & HIGHS)
		return 0;
	q = x ^ (ONES * '"');
	s = x ^ (ONES * '\\');
	return !((((x - ONES * 0x20) & ~x) |         /* a byte below 0x20 */
	          ((q - ONES) & ~q) |                /* a '"' */
	          ((s - ONES) & ~s) |                /* a '\\' */
	          (x + ONES)) & HIGHS);              /* a 0x7F (DEL) */
}

int json_utf8_valid(const void *s, size_t n)
{
	const uint8_t *p = s, *end = p + n;

	while (p < end) {
		uint64_t x;
		size_t k;

		if (end - p >= 8) {
			memcpy(&x, p, 8);
			if (!(x & HIGHS)) {
				p += 8;
				continue;
			}
		}
		if (*p < 0x80) {
			p++;
			continue;
		}
		k = utf8_seq(p, end);
		if (!k)
			return 0;
		p += k;
	}
	return 1;
}

/* ---- escaping ---- */

/* For ASCII bytes: 0 = copy as is, else the escape letter ('u' = \u00XX). */
static const char esc_tab[128] = {
	'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
	'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
	['"'] = '"', ['\\'] = '\\', [0x7F] = 'u',
};

static const char hexdig[] = "0123456789abcdef";

/* Escapes s into b. strict: stop at invalid UTF-8 and return -1 (the
 * caller rolls back); otherwise write U+FFFD per invalid byte. Returns 0,
 * or -2 when b->err got set. */
static int escape(json_buf *b, const uint8_t *s, size_t n, int strict)
{
	const uint8_t *p = s, *end = s + n;

	while (p < end) {
		size_t chunk = (size_t)(end - p) > ESC_CHUNK ? ESC_CHUNK : (size_t)(end - p);
		const uint8_t *cend = p + chunk;
		/* +16: a multibyte sequence may run up to 3 bytes past cend. */
		char *o = json_reserve(b, chunk * 6 + 16);

		if (!o)
			return -2;
		while (p < cend) {
			const uint8_t *run = p;
			uint8_t c;
			size_t k;

			while (cend - p >= 8) {
				uint64_t x;

				memcpy(&x, p, 8);
				if (!word_plain(x))
					break;
				p += 8;
			}
			while (p < cend && *p < 0x80 && !esc_tab[*p])
				p++;
			if (p > run) {
				memcpy(o, run, (size_t)(p - run));
				o += p - run;
			}
			if (p >= cend)
				break;
			c = *p;
			if (c < 0x80) {
				*o++ = '\\';
				if (esc_tab[c] == 'u') {
					memcpy(o, "u00", 3);
					o[3] = hexdig[c >> 4];
					o[4] = hexdig[c & 15];
					o += 5;
				} else {
					*o++ = esc_tab[c];
				}
				p++;
				continue;
			}
			k = utf8_seq(p, end);
			if (!k) {
				if (strict)
					return -1;      /* the caller rolls back */
				memcpy(o, "\xEF\xBF\xBD", 3);
				o += 3;
				p++;
				continue;
			}
			if (k == 3 && c == 0xE2 && p[1] == 0x80 && (p[2] & 0xFE) == 0xA8) {
				/* U+2028/U+2029: valid JSON, but not valid JavaScript. */
				memcpy(o, p[2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
				o += 6;
			} else {
				memcpy(o, p, k);
				o += k;
			}
			p += k;
		}
		commit(b, o);
		if (b->err)
			return -2;
	}
	return 0;
}

void json_esc(json_buf *b, const void *s, size_t n)
{
	escape(b, s, n, 0);
}

void json_str(json_buf *b, const void *s, size_t n)
{
	json_char(b, '"');
	escape(b, s, n, 0);
	json_char(b, '"');
}

void json_bytes(json_buf *b, const void *s, size_t n)
{
	size_t mark = b->len;

	if (b->err)
		return;
	json_char(b, '"');
	switch (escape(b, s, n, 1)) {
	case 0:
		json_char(b, '"');
		break;
	case -1:
		b->len = mark;
		json_raw(b, "{\"base64\":\"", 11);
		json_base64(b, s, n);
		json_raw(b, "\"}", 2);
		break;
	default:
		/* Escaped output hit the cap before the end of s was validated;
		 * if s is not UTF-8 its base64 form may still fit. */
		if (b->err == JSON_ETOOBIG && !json_utf8_valid(s, n)) {
			json_rollback(b, mark);
			json_raw(b, "{\"base64\":\"", 11);
			json_base64(b, s, n);
			json_raw(b, "\"}", 2);
		}
		break;
	}
}

/* ---- base64 ---- */

static const char b64tab[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t json_base64_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

void json_base64(json_buf *b, const void *s, size_t n)
{
	const uint8_t *p = s, *end = p + n;

	while (end - p >= 3) {
		/* Whole groups, a chunk per reservation. */
		size_t groups = (size_t)(end - p) / 3;
		char *o;

		if (groups > ESC_CHUNK / 3)
			groups = ESC_CHUNK / 3;
		o = json_reserve(b, groups * 4);
		if (!o)
			return;
		while (groups--) {
			uint32_t v = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];

			o[0] = b64tab[v >> 18];
			o[1] = b64tab[(v >> 12) & 63];
			o[2] = b64tab[(v >> 6) & 63];
			o[3] = b64tab[v & 63];
			o += 4;
			p += 3;
		}
		commit(b, o);
		if (b->err)
			return;
	}
	if (p < end) {
		uint32_t v = (uint32_t)p[0] << 16;
		char t[4];

		if (end - p == 2)
			v |= (uint32_t)p[1] << 8;
		t[0] = b64tab[v >> 18];
		t[1] = b64tab[(v >> 12) & 63];
		t[2] = end - p == 2 ? b64tab[(v >> 6) & 63] : '=';
		t[3] = '=';
		json_raw(b, t, 4);
	}
}
