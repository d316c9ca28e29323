/* json.h -- a streaming JSON writer for the event and NDJSON paths.
 *
 * Output goes into a json_buf: a growable byte buffer with a hard cap on its
 * length. Writers never fail individually; the first problem (allocation
 * failure, or the cap exceeded) sets b->err, which is sticky: later writes
 * are ignored, so a caller renders a whole object and checks b->err once.
 * To drop a partly rendered object, remember b->len before it and restore
 * it (json_rollback), which also clears the error.
 *
 * Strings are escaped per RFC 8259: '"' and '\\' and every control byte
 * (0x00-0x1F, and DEL 0x7F) are escaped (\n, \t, ... or \u00XX); U+2028 and
 * U+2029 are escaped too so the output is also safe as JavaScript. All other
 * valid UTF-8 is copied as is. Validation follows RFC 3629: overlong forms,
 * surrogates (U+D800..U+DFFF), code points above U+10FFFF and truncated
 * sequences are invalid. */
#ifndef SPOOLCAP_JSON_H
#define SPOOLCAP_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum json_err {
	JSON_OK      = 0,
	JSON_ENOMEM  = -1,      /* allocation failed */
	JSON_ETOOBIG = -2       /* output would exceed the buffer's hard cap */
};

typedef struct json_buf {
	char   *data;           /* not NUL-terminated */
	size_t  len;            /* bytes written */
	size_t  cap;            /* bytes allocated */
	size_t  max;            /* hard cap on len */
	int     err;            /* sticky enum json_err */
} json_buf;

/* max: hard cap on the output length (e.g. a batch's byte limit). Memory
 * use stays below max plus a few tens of KiB of slack. */
void json_init(json_buf *b, size_t max);
void json_free(json_buf *b);
/* Empties the buffer and clears the error; keeps the allocation. */
void json_reset(json_buf *b);
/* Truncates back to an earlier length (a saved b->len) and clears err. */
void json_rollback(json_buf *b, size_t len);

/* Raw bytes, copied verbatim (no escaping). */
void json_raw(json_buf *b, const void *p, size_t n);
static inline void json_cstr_raw(json_buf *b, const char *s)
{
	json_raw(b, s, strlen(s));
}
static inline void json_char(json_buf *b, char c)
{
	if (b->len < b->cap && b->len < b->max && !b->err)
		b->data[b->len++] = c;
	else
		json_raw(b, &c, 1);
}

/* Numbers in decimal. */
void json_u64(json_buf *b, uint64_t v);
void json_i64(json_buf *b, int64_t v);

/* Escaped string contents, without the quotes. Bytes that are not valid
 * UTF-8 are replaced by U+FFFD (one per invalid byte): use it for names and
 * identifiers, where a lossy string beats a different JSON type. */
void json_esc(json_buf *b, const void *s, size_t n);
/* "..." with json_esc's rules. */
void json_str(json_buf *b, const void *s, size_t n);
/* Data: "..." when s is valid UTF-8, else {"base64":"..."} (lossless). */
void json_bytes(json_buf *b, const void *s, size_t n);
/* Base64 (RFC 4648 section 4, with '=' padding), without quotes. */
void json_base64(json_buf *b, const void *s, size_t n);
size_t json_base64_len(size_t n);

/* 1 if s[0..n) is valid UTF-8 (RFC 3629), else 0. */
int json_utf8_valid(const void *s, size_t n);

#endif
