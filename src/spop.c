/* spop.c -- SPOP (HAProxy SPOE protocol 2.0) codec: varints, typed data,
 * frames, KV lists, messages, actions, and the frames the agent sends.
 *
 * Pure: no I/O, no allocation, no global state. Every decoder works on a
 * cursor and an end pointer, checks each length against end before it
 * touches a byte, and only advances the cursor on success. Strings are
 * returned as slices of the input, never copied.
 * Wire format: ../shared/spop-protocol.md §1 (quoted as "ref §N"). */
#include <string.h>

#include "spoolcap/spop.h"

/* ---------------------------------------------------------------- errors */

const char *spop_strerror(int err)
{
	switch (err) {
	case SPOP_OK:
		return "success";
	case SPOP_ETRUNC:
		return "truncated input: the data ends inside an item";
	case SPOP_EVARINT:
		return "invalid varint: longer than 10 bytes or above 2^64-1";
	case SPOP_ETYPE:
		return "invalid typed data: reserved type id (10..15)";
	case SPOP_ELEN:
		return "invalid length: a string or name runs past the end of its frame";
	case SPOP_ESHORT:
		return "invalid frame: LENGTH below 7 (type, flags, stream-id, frame-id)";
	case SPOP_ETOOBIG:
		return "frame too big: LENGTH above the negotiated max-frame-size";
	case SPOP_EINVAL:
		return "invalid frame content (empty key, bad argument count, wrong value type...)";
	case SPOP_EOVERFLOW:
		return "output buffer too small for the frame";
	}
	return "unknown SPOP error";
}

const char *spop_status_str(unsigned code)
{
	switch (code) {
	case SPOP_ST_NORMAL:             return "normal";
	case SPOP_ST_IO:                 return "I/O error";
	case SPOP_ST_TIMEOUT:            return "a timeout occurred";
	case SPOP_ST_TOO_BIG:            return "frame is too big";
	case SPOP_ST_INVALID:            return "invalid frame received";
	case SPOP_ST_NO_VERSION:         return "version value not found";
	case SPOP_ST_NO_FRAME_SIZE:      return "max-frame-size value not found";
	case SPOP_ST_NO_CAPS:            return "capabilities value not found";
	case SPOP_ST_BAD_VERSION:        return "unsupported version";
	case SPOP_ST_BAD_FRAME_SIZE:     return "max-frame-size too big or too small";
	case SPOP_ST_FRAG_NOT_SUPPORTED: return "fragmentation not supported";
	case SPOP_ST_INTERLACED:         return "invalid interlaced frames";
	case SPOP_ST_FRAMEID_NOTFOUND:   return "frame-id not found";
	case SPOP_ST_RES_ALLOC:          return "resource allocation error";
	case SPOP_ST_UNKNOWN:            return "an unknown error occurred";
	}
	return "unassigned status code";
}

/* ------------------------------------------------------------ primitives */

/* Ref §1.5. The first byte carries 4 value bits when >= 240, each next byte
 * adds its whole value (0x80 bit included) at shift 4, 11, ..., 60; a byte
 * below 128 ends the number. Bytes 2..9 cannot overflow 64 bits (their sum
 * stays below 2^62), so only the 10th byte, at shift 60, needs checking:
 * it must end the number (< 128) and fit the 4 remaining bits. */
int spop_varint_get(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
	const uint8_t *p = *pp;
	uint64_t v, b, hi;
	unsigned shift;

	if (p >= end)
		return SPOP_ETRUNC;
	v = *p++;
	if (v < 240)
		goto done;
	for (shift = 4; shift < 60; shift += 7) {
		if (p == end)
			return SPOP_ETRUNC;
		b = *p++;
		v += b << shift;
		if (b < 128)
			goto done;
	}
	if (p == end)
		return SPOP_ETRUNC;
	b = *p++;
	if (b > 15)             /* >= 128: an 11th byte would follow; else > 2^64-1 */
		return SPOP_EVARINT;
	hi = b << 60;
	if (v + hi < v)         /* carry out of bit 63 */
		return SPOP_EVARINT;
	v += hi;
done:
	*out = v;
	*pp = p;
	return SPOP_OK;
}

/* Hot-path wrappers: most varints on the wire (name and string lengths,
 * ids, small integers) are one byte, so that case is inlined and only longer
 * ones pay for the call. */
static inline int varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
	const uint8_t *p = *pp;

	if (p < end && *p < 240) {
		*out = *p;
		*pp = p + 1;
		return SPOP_OK;
	}
	return spop_varint_get(pp, end, out);
}

static inline int name_get(const uint8_t **pp, const uint8_t *end, spop_str *out)
{
	const uint8_t *p = *pp;
	uint64_t n;
	int rc;

	if ((rc = varint(&p, end, &n)) < 0)
		return rc;
	if (n > (uint64_t)(end - p))
		return SPOP_ELEN;
	out->ptr = p;
	out->len = (size_t)n;
	*pp = p + n;
	return SPOP_OK;
}

int spop_name_get(const uint8_t **pp, const uint8_t *end, spop_str *out)
{
	return name_get(pp, end, out);
}

/* Ref §1.6. The four integer types share one path: the varint goes into
 * v.u and signed readers see it through v.i (reading another union member
 * reinterprets the bits, C11 6.5.2.3), which is HAProxy's two's complement
 * encoding. INT32/UINT32 values are NOT narrowed or rejected above 32 bits:
 * HAProxy decodes every integer type as a 64-bit varint, and a capture
 * agent should keep what it was sent rather than refuse it. */
int spop_data_get(const uint8_t **pp, const uint8_t *end, spop_data *out)
{
	const uint8_t *p = *pp;
	uint64_t n;
	uint8_t tb;
	int rc;

	if (p >= end)
		return SPOP_ETRUNC;
	tb = *p++;
	out->type = tb & SPOP_T_MASK;
	switch (out->type) {
	case SPOP_T_NULL:
		break;
	case SPOP_T_BOOL:
		out->v.b = (tb & SPOP_BOOL_TRUE) != 0;
		break;
	case SPOP_T_INT32:
	case SPOP_T_UINT32:
	case SPOP_T_INT64:
	case SPOP_T_UINT64:
		if ((rc = varint(&p, end, &out->v.u)) < 0)
			return rc;
		break;
	case SPOP_T_IPV4:
		if (end - p < 4)
			return SPOP_ETRUNC;
		memcpy(out->v.ip, p, 4);
		p += 4;
		break;
	case SPOP_T_IPV6:
		if (end - p < 16)
			return SPOP_ETRUNC;
		memcpy(out->v.ip, p, 16);
		p += 16;
		break;
	case SPOP_T_STRING:
	case SPOP_T_BINARY:
		if ((rc = varint(&p, end, &n)) < 0)
			return rc;
		if (n > (uint64_t)(end - p))
			return SPOP_ELEN;
		out->v.s.ptr = p;
		out->v.s.len = (size_t)n;
		p += n;
		break;
	default:                /* 10..15: reserved, no way to know their size */
		return SPOP_ETYPE;
	}
	*pp = p;
	return SPOP_OK;
}

/* ---------------------------------------------------------------- frames */

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int spop_frame_get(const uint8_t *buf, size_t avail, uint32_t max_len,
                   spop_frame *f, size_t *consumed)
{
	const uint8_t *p, *end;
	uint32_t len;
	int rc;

	if (avail < 4)
		return 0;
	/* Judge LENGTH before waiting for the body: a peer announcing a huge
	 * frame is refused at once instead of making us buffer it. */
	len = get_be32(buf);
	if (len < SPOP_FRAME_HDR_MIN)
		return SPOP_ESHORT;
	if (len > max_len)
		return SPOP_ETOOBIG;
	if (avail - 4 < len)
		return 0;
	p = buf + 4;
	end = p + len;
	f->len = len;
	f->type = p[0];
	f->flags = get_be32(p + 1);
	p += 5;
	if ((rc = varint(&p, end, &f->sid)) < 0)
		return rc;
	if ((rc = varint(&p, end, &f->fid)) < 0)
		return rc;
	f->payload = p;
	f->payload_len = (size_t)(end - p);
	*consumed = (size_t)len + 4;
	return 1;
}

/* ----------------------------------------------------------------- lists */

/* Iterators advance only past complete, valid items: after an error the
 * cursor stays on the bad item, so a retry returns the same error. */

void spop_iter_init(spop_iter *it, const uint8_t *p, size_t len)
{
	it->p = p;
	it->end = len ? p + len : p;    /* NULL + 0 is undefined in C */
}

int spop_kv_next(spop_iter *it, spop_str *key, spop_data *val)
{
	const uint8_t *p = it->p;
	int rc;

	if (p >= it->end)
		return 0;
	if ((rc = name_get(&p, it->end, key)) < 0)
		return rc;
	if (key->len == 0)
		return SPOP_EINVAL;
	if ((rc = spop_data_get(&p, it->end, val)) < 0)
		return rc;
	it->p = p;
	return 1;
}

int spop_arg_next(spop_iter *args, spop_str *name, spop_data *val)
{
	const uint8_t *p = args->p;
	int rc;

	if (p >= args->end)
		return 0;
	if ((rc = name_get(&p, args->end, name)) < 0)
		return rc;
	if ((rc = spop_data_get(&p, args->end, val)) < 0)
		return rc;
	args->p = p;
	return 1;
}

/* A message whose argument count exceeds what follows fails here with the
 * error of the first missing piece (SPOP_ETRUNC at the end of the payload),
 * so a consumer never sees a message it cannot fully decode. */
int spop_msg_next(spop_iter *it, spop_msg *m)
{
	const uint8_t *start = it->p, *p = it->p, *args;
	spop_str name;
	spop_data val;
	unsigned i, nargs;
	int rc;

	if (p >= it->end)
		return 0;
	if ((rc = name_get(&p, it->end, &m->name)) < 0)
		return rc;
	if (p == it->end)
		return SPOP_ETRUNC;
	nargs = *p++;
	args = p;
	for (i = 0; i < nargs; i++) {
		if ((rc = name_get(&p, it->end, &name)) < 0)
			return rc;
		if ((rc = spop_data_get(&p, it->end, &val)) < 0)
			return rc;
	}
	m->nargs = nargs;
	m->raw.ptr = start;
	m->raw.len = (size_t)(p - start);
	m->args.p = args;
	m->args.end = p;
	it->p = p;
	return 1;
}

int spop_msgs_check(const uint8_t *p, size_t len, unsigned *nmsgs)
{
	spop_iter it;
	spop_msg m;
	unsigned n = 0;
	int rc;

	spop_iter_init(&it, p, len);
	while ((rc = spop_msg_next(&it, &m)) > 0)
		n++;
	if (nmsgs)
		*nmsgs = n;
	return rc;
}

int spop_action_next(spop_iter *it, spop_action *a)
{
	const uint8_t *p = it->p;
	int rc;

	if (p >= it->end)
		return 0;
	if (it->end - p < 3)    /* action type, nargs, scope */
		return SPOP_ETRUNC;
	a->type = p[0];
	a->nargs = p[1];
	a->scope = p[2];
	p += 3;
	if (a->type == SPOP_ACT_SET_VAR) {
		if (a->nargs != 3)
			return SPOP_EINVAL;
	} else if (a->type == SPOP_ACT_UNSET_VAR) {
		if (a->nargs != 2)
			return SPOP_EINVAL;
	} else {
		return SPOP_EINVAL;
	}
	if (a->scope > SPOP_SCOPE_RES)
		return SPOP_EINVAL;
	if ((rc = name_get(&p, it->end, &a->name)) < 0)
		return rc;
	if (a->type == SPOP_ACT_SET_VAR) {
		if ((rc = spop_data_get(&p, it->end, &a->value)) < 0)
			return rc;
	} else {
		a->value.type = SPOP_T_NULL;
	}
	it->p = p;
	return 1;
}

/* ------------------------------------------------------ HELLO/DISCONNECT */

static int str_is(spop_str s, const char *lit, size_t litlen)
{
	return s.len == litlen && memcmp(s.ptr, lit, litlen) == 0;
}
#define KEY_IS(s, lit) str_is((s), (lit), sizeof(lit) - 1)

/* Integers may come as any of the four integer types (HAProxy accepts all
 * four from the agent, so we do the same); a negative signed value is not a
 * size or a status. */
static int data_uint(const spop_data *d, uint64_t *out)
{
	switch (d->type) {
	case SPOP_T_INT32:
	case SPOP_T_INT64:
		if (d->v.i < 0)
			return SPOP_EINVAL;
		*out = (uint64_t)d->v.i;
		return SPOP_OK;
	case SPOP_T_UINT32:
	case SPOP_T_UINT64:
		*out = d->v.u;
		return SPOP_OK;
	}
	return SPOP_EINVAL;
}

int spop_hello_parse(const uint8_t *p, size_t len, spop_hello *h)
{
	spop_iter it;
	spop_str key;
	spop_data val;
	int rc;

	memset(h, 0, sizeof(*h));
	spop_iter_init(&it, p, len);
	while ((rc = spop_kv_next(&it, &key, &val)) > 0) {
		if (KEY_IS(key, "supported-versions") || KEY_IS(key, "version")) {
			if (val.type != SPOP_T_STRING)
				return SPOP_EINVAL;
			h->versions = val.v.s;
			h->has_versions = 1;
		} else if (KEY_IS(key, "max-frame-size")) {
			if ((rc = data_uint(&val, &h->max_frame_size)) < 0)
				return rc;
			h->has_max_frame_size = 1;
		} else if (KEY_IS(key, "capabilities")) {
			if (val.type != SPOP_T_STRING)
				return SPOP_EINVAL;
			h->capabilities = val.v.s;
			h->has_capabilities = 1;
		} else if (KEY_IS(key, "healthcheck")) {
			if (val.type != SPOP_T_BOOL)
				return SPOP_EINVAL;
			h->healthcheck = val.v.b;
		} else if (KEY_IS(key, "engine-id")) {
			if (val.type != SPOP_T_STRING)
				return SPOP_EINVAL;
			h->engine_id = val.v.s;
		}
		/* unknown keys: already skipped by decoding their value */
	}
	return rc;
}

int spop_disconnect_parse(const uint8_t *p, size_t len, spop_disconnect *d)
{
	spop_iter it;
	spop_str key;
	spop_data val;
	int rc;

	memset(d, 0, sizeof(*d));
	spop_iter_init(&it, p, len);
	while ((rc = spop_kv_next(&it, &key, &val)) > 0) {
		if (KEY_IS(key, "status-code")) {
			if ((rc = data_uint(&val, &d->status)) < 0)
				return rc;
			d->has_status = 1;
		} else if (KEY_IS(key, "message")) {
			if (val.type != SPOP_T_STRING)
				return SPOP_EINVAL;
			d->message = val.v.s;
		}
	}
	return rc;
}

static int is_blank(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* Comma lists (ref §3): yields the next item with blanks trimmed, 1 per
 * item, 0 at the end. *pp becomes NULL after the last item. */
static int list_next(const uint8_t **pp, const uint8_t *end, spop_str *item)
{
	const uint8_t *s = *pp, *p, *e;

	if (s == NULL)
		return 0;
	for (p = s; p < end && *p != ','; p++)
		;
	*pp = p < end ? p + 1 : NULL;
	for (e = p; s < e && is_blank(*s); s++)
		;
	while (e > s && is_blank(e[-1]))
		e--;
	item->ptr = s;
	item->len = (size_t)(e - s);
	return 1;
}

int spop_list_has(spop_str list, const char *word)
{
	size_t wlen = strlen(word);
	const uint8_t *p = list.ptr;
	spop_str item;

	if (wlen == 0 || p == NULL)
		return 0;
	while (list_next(&p, list.ptr + list.len, &item))
		if (item.len == wlen && memcmp(item.ptr, word, wlen) == 0)
			return 1;
	return 0;
}

/* Parses decimal digits at *pp; 0 if none or absurdly many. */
static int parse_num(const uint8_t **pp, const uint8_t *end, unsigned *out)
{
	const uint8_t *p = *pp;
	unsigned v = 0;

	if (p == end || *p < '0' || *p > '9')
		return 0;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (v > 99999)
			return 0;
		v = v * 10 + (unsigned)(*p - '0');
	}
	*out = v;
	*pp = p;
	return 1;
}

/* Items are "Major.Minor" (blanks around them allowed); an item that does
 * not parse is ignored rather than failing the whole list. */
int spop_versions_support(spop_str list, unsigned major, unsigned minor)
{
	const uint8_t *p = list.ptr, *q, *e;
	spop_str item;
	unsigned ma, mi;

	if (p == NULL)
		return 0;
	while (list_next(&p, list.ptr + list.len, &item)) {
		q = item.ptr;
		e = item.ptr + item.len;
		if (!parse_num(&q, e, &ma) || q == e || *q++ != '.' ||
		    !parse_num(&q, e, &mi) || q != e)
			continue;
		if (ma == major && minor <= mi)
			return 1;
	}
	return 0;
}

/* -------------------------------------------------------------- encoders */

void spop_wbuf_init(spop_wbuf *w, uint8_t *buf, size_t cap)
{
	w->buf = buf;
	w->len = 0;
	w->cap = cap;
	w->overflow = 0;
}

/* The exact inverse of spop_varint_get (ref §1.5, steps 1-4). */
size_t spop_varint_put(uint8_t *out, uint64_t v)
{
	size_t n = 0;

	if (v < 240) {
		out[0] = (uint8_t)v;
		return 1;
	}
	out[n++] = (uint8_t)(0xF0 | (v & 0x0F));
	v = (v - 240) >> 4;
	while (v >= 128) {
		out[n++] = (uint8_t)(0x80 | (v & 0x7F));
		v = (v - 128) >> 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

/* Once something did not fit, nothing more is written: a frame is either
 * whole or flagged, never silently missing a piece in the middle. */
static int wbuf_room(spop_wbuf *w, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = 1;
		return 0;
	}
	return 1;
}

void spop_put_bytes(spop_wbuf *w, const void *p, size_t n)
{
	if (!wbuf_room(w, n))
		return;
	if (n)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void put_byte(spop_wbuf *w, uint8_t b)
{
	if (!wbuf_room(w, 1))
		return;
	w->buf[w->len++] = b;
}

void spop_put_varint(spop_wbuf *w, uint64_t v)
{
	uint8_t tmp[SPOP_VARINT_MAX];

	if (!w->overflow && w->cap - w->len >= SPOP_VARINT_MAX) {
		w->len += spop_varint_put(w->buf + w->len, v);
		return;
	}
	spop_put_bytes(w, tmp, spop_varint_put(tmp, v));
}

void spop_put_name(spop_wbuf *w, const void *p, size_t n)
{
	spop_put_varint(w, n);
	spop_put_bytes(w, p, n);
}

void spop_put_str(spop_wbuf *w, uint8_t type, const void *p, size_t n)
{
	put_byte(w, type);
	spop_put_name(w, p, n);
}

void spop_put_uint(spop_wbuf *w, uint8_t type, uint64_t v)
{
	put_byte(w, type);
	spop_put_varint(w, v);
}

void spop_put_data(spop_wbuf *w, const spop_data *d)
{
	switch (d->type) {
	case SPOP_T_NULL:
		put_byte(w, SPOP_T_NULL);
		break;
	case SPOP_T_BOOL:
		put_byte(w, SPOP_T_BOOL | (d->v.b ? SPOP_BOOL_TRUE : 0));
		break;
	case SPOP_T_INT32:
	case SPOP_T_UINT32:
	case SPOP_T_INT64:
	case SPOP_T_UINT64:
		spop_put_uint(w, d->type, d->v.u);   /* v.i shares v.u's bits */
		break;
	case SPOP_T_IPV4:
		put_byte(w, SPOP_T_IPV4);
		spop_put_bytes(w, d->v.ip, 4);
		break;
	case SPOP_T_IPV6:
		put_byte(w, SPOP_T_IPV6);
		spop_put_bytes(w, d->v.ip, 16);
		break;
	case SPOP_T_STRING:
	case SPOP_T_BINARY:
		spop_put_str(w, d->type, d->v.s.ptr, d->v.s.len);
		break;
	default:                /* no encoding exists: fail the frame */
		w->overflow = 1;
		break;
	}
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

size_t spop_frame_begin(spop_wbuf *w, uint8_t type, uint32_t flags,
                        uint64_t sid, uint64_t fid)
{
	size_t start = w->len;
	uint8_t hdr[9] = { 0 };

	hdr[4] = type;
	put_be32(hdr + 5, flags);
	spop_put_bytes(w, hdr, sizeof(hdr));
	spop_put_varint(w, sid);
	spop_put_varint(w, fid);
	return start;
}

size_t spop_frame_end(spop_wbuf *w, size_t start)
{
	size_t len;

	if (w->overflow || start > w->len || w->len - start < 4 + SPOP_FRAME_HDR_MIN)
		return 0;
	len = w->len - start - 4;
	if (len > UINT32_MAX) {
		w->overflow = 1;
		return 0;
	}
	put_be32(w->buf + start, (uint32_t)len);
	return w->len - start;
}

static void put_kv_str(spop_wbuf *w, const char *key, const char *val, size_t n)
{
	spop_put_name(w, key, strlen(key));
	spop_put_str(w, SPOP_T_STRING, val, n);
}

size_t spop_agent_hello(uint8_t *out, size_t cap, uint32_t max_frame_size,
                        const char *capabilities)
{
	spop_wbuf w;
	size_t start, n;

	if (capabilities == NULL)
		capabilities = "";
	spop_wbuf_init(&w, out, cap);
	start = spop_frame_begin(&w, SPOP_FRAME_AGENT_HELLO, SPOP_FLAG_FIN, 0, 0);
	put_kv_str(&w, "version", SPOP_VERSION, sizeof(SPOP_VERSION) - 1);
	spop_put_name(&w, "max-frame-size", sizeof("max-frame-size") - 1);
	spop_put_uint(&w, SPOP_T_UINT32, max_frame_size);
	put_kv_str(&w, "capabilities", capabilities, strlen(capabilities));
	n = spop_frame_end(&w, start);
	/* our own frames obey the size we announce (ref §4.2) */
	if (n == 0 || n - 4 > max_frame_size)
		return 0;
	return n;
}

size_t spop_agent_disconnect(uint8_t *out, size_t cap, unsigned status,
                             const char *message)
{
	spop_wbuf w;
	size_t start, n;

	if (message == NULL)
		message = "";
	n = strlen(message);
	if (n > SPOP_DISCONNECT_MSG_MAX)
		n = SPOP_DISCONNECT_MSG_MAX;
	spop_wbuf_init(&w, out, cap);
	start = spop_frame_begin(&w, SPOP_FRAME_AGENT_DISCONNECT, SPOP_FLAG_FIN, 0, 0);
	spop_put_name(&w, "status-code", sizeof("status-code") - 1);
	spop_put_uint(&w, SPOP_T_UINT32, status);
	put_kv_str(&w, "message", message, n);
	return spop_frame_end(&w, start);
}

/* Never an empty action list: 3.1 before 851e52b55 ignored empty ACKs and
 * timed the event out (ref §2.4). */
size_t spop_ack(uint8_t *out, size_t cap, uint64_t sid, uint64_t fid,
                const char *spooled_var, int spooled)
{
	spop_wbuf w;
	size_t start;
	uint8_t act[3];

	spop_wbuf_init(&w, out, cap);
	start = spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, sid, fid);
	act[2] = SPOP_SCOPE_TXN;
	if (spooled_var == NULL) {
		act[0] = SPOP_ACT_UNSET_VAR;
		act[1] = 2;
		spop_put_bytes(&w, act, 3);
		spop_put_name(&w, "_", 1);
	} else {
		act[0] = SPOP_ACT_SET_VAR;
		act[1] = 3;
		spop_put_bytes(&w, act, 3);
		spop_put_name(&w, spooled_var, strlen(spooled_var));
		put_byte(&w, SPOP_T_BOOL | (spooled ? SPOP_BOOL_TRUE : 0));
	}
	return spop_frame_end(&w, start);
}
