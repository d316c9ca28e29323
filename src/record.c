/* record.c -- the stored record format (layout in record.h): encoding with
 * reusable zstd contexts, fully checked decoding, and dictionaries (load,
 * train, reference counting, and a slot the spool switches atomically).
 *
 * Every length read from a record is bounded before it is used: the raw
 * length by RECORD_RAW_MAX and by the zstd frame's own content size (checked
 * before allocating), the engine id by RECORD_ENGINE_ID_MAX, the message by
 * the codec. A damaged record is an error with a precise reason so the spool
 * can dead-letter it as "corrupt"; nothing here aborts on bad input. */
#include "spoolcap/record.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zdict.h>
#include <zstd.h>
#include <zstd_errors.h>

#define ZSTD_DICT_MAGIC 0xEC30A437u

struct record_dict {
	atomic_uint  refs;
	uint32_t     id;
	void        *bytes;
	size_t       len;
	ZSTD_CDict  *cdict;      /* NULL for a decode-only dictionary */
	ZSTD_DDict  *ddict;
};

struct record_slot {
	pthread_mutex_t mu;
	record_dict    *cur;
	atomic_uint_fast64_t gen;
};

/* Generations are unique across all slots (0 = "no slot"), so a context
 * can tell that its cached dictionary is still current from one number,
 * even when a slot is freed and another allocated at the same address. */
static atomic_uint_fast64_t next_gen = 1;

struct record_cctx {
	ZSTD_CCtx  *z;           /* NULL when level == 0 (store raw) */
	int         level;
	record_dict *dict;       /* referenced; the CDict z refers to */
	uint64_t    gen;         /* slot generation dict was taken from */
	record_buf  scratch;     /* the raw payload being built */
};

struct record_dctx {
	ZSTD_DCtx  *z;
};

/* ---- errors ---- */

static const struct {
	const char *name, *text;
} errs[] = {
	{ "ok",       "no error" },
	{ "short",    "record shorter than its header" },
	{ "magic",    "bad magic (not a spoolcap record)" },
	{ "version",  "unknown record or payload format version" },
	{ "header",   "invalid record header (unknown flags, reserved bits set, or capture time mismatch)" },
	{ "dict",     "dictionary unknown or not the one the frame was compressed with" },
	{ "zstd",     "invalid zstd frame" },
	{ "checksum", "content checksum mismatch" },
	{ "length",   "raw length over the limit or not the decompressed length" },
	{ "payload",  "invalid payload structure" },
	{ "nomem",    "out of memory" },
	{ "toobig",   "message too big for a record" },
	{ "inval",    "invalid argument" },
};

const char *record_strerror(int err)
{
	if (err > 0 || -err >= (int)(sizeof errs / sizeof errs[0]))
		return "unknown record error";
	return errs[-err].text;
}

const char *record_errname(int err)
{
	if (err > 0 || -err >= (int)(sizeof errs / sizeof errs[0]))
		return "unknown";
	return errs[-err].name;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Sets the message to the error's sentence plus an optional detail. */
static int fail(int rc, char *err, size_t errlen, const char *detail)
{
	if (detail)
		seterr(err, errlen, "%s: %s", record_strerror(rc), detail);
	else
		seterr(err, errlen, "%s", record_strerror(rc));
	return rc;
}

/* ---- little-endian fields ---- */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* ---- buffers ---- */

void record_buf_free(record_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* Room for n more bytes after b->len. */
static int buf_reserve(record_buf *b, size_t n)
{
	size_t ncap;
	uint8_t *nd;

	if (n <= b->cap - b->len)
		return 0;
	if (n > SIZE_MAX / 2 - b->len)
		return -1;
	ncap = b->cap ? b->cap : 1024;
	while (ncap < b->len + n)
		ncap *= 2;
	nd = realloc(b->data, ncap);
	if (!nd)
		return -1;
	b->data = nd;
	b->cap = ncap;
	return 0;
}

/* ---- CRC-32C (Castagnoli, reflected 0x82F63B78) for raw payloads ---- */

static const uint32_t crc32c_tab[256] = {
	0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c,
	0x26a1e7e8, 0xd4ca64eb, 0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b,
	0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24, 0x105ec76f, 0xe235446c,
	0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
	0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc,
	0xbc267848, 0x4e4dfb4b, 0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a,
	0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35, 0xaa64d611, 0x580f5512,
	0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
	0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad,
	0x1642ae59, 0xe4292d5a, 0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a,
	0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595, 0x417b1dbc, 0xb3109ebf,
	0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
	0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f,
	0xed03a29b, 0x1f682198, 0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927,
	0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38, 0xdbfc821c, 0x2997011f,
	0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
	0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e,
	0x4767748a, 0xb50cf789, 0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859,
	0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46, 0x7198540d, 0x83f3d70e,
	0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
	0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de,
	0xdde0eb2a, 0x2f8b6829, 0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c,
	0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93, 0x082f63b7, 0xfa44e0b4,
	0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
	0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b,
	0xb4091bff, 0x466298fc, 0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c,
	0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033, 0xa24bb5a6, 0x502036a5,
	0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
	0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975,
	0x0e330a81, 0xfc588982, 0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d,
	0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622, 0x38cc2a06, 0xcaa7a905,
	0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
	0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8,
	0xe52cc12c, 0x1747422f, 0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff,
	0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0, 0xd3d3e1ab, 0x21b862a8,
	0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
	0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78,
	0x7fab5e8c, 0x8dc0dd8f, 0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee,
	0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1, 0x69e9f0d5, 0x9b8273d6,
	0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
	0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69,
	0xd5cf889d, 0x27a40b9e, 0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e,
	0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

uint32_t record_crc32c(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *s = p;

	crc = ~crc;
	while (n--)
		crc = crc32c_tab[(crc ^ *s++) & 0xFF] ^ (crc >> 8);
	return ~crc;
}

/* ---- dictionaries ---- */

static int level_ok(int level)
{
	return level == 0 || (level >= ZSTD_minCLevel() && level <= ZSTD_maxCLevel());
}

record_dict *record_dict_new(const void *bytes, size_t len, int level,
                             char *err, size_t errlen)
{
	const uint8_t *b = bytes;
	record_dict *d;
	uint32_t id;

	if (!b || len < 8) {
		seterr(err, errlen, "dictionary too short (%zu bytes)", len);
		return NULL;
	}
	if (len > RECORD_DICT_MAX) {
		seterr(err, errlen, "dictionary too big (%zu bytes, limit %u)", len,
		       RECORD_DICT_MAX);
		return NULL;
	}
	if (get32(b) != ZSTD_DICT_MAGIC) {
		seterr(err, errlen, "not a zstd dictionary (bad magic)");
		return NULL;
	}
	id = get32(b + 4);
	if (id < RECORD_DICT_ID_MIN || id > RECORD_DICT_ID_MAX) {
		seterr(err, errlen, "dictionary id %u outside %u..%u", id,
		       RECORD_DICT_ID_MIN, RECORD_DICT_ID_MAX);
		return NULL;
	}
	if (!level_ok(level)) {
		seterr(err, errlen, "compression level %d out of range (%d..%d, 0 = decode only)",
		       level, ZSTD_minCLevel(), ZSTD_maxCLevel());
		return NULL;
	}
	d = calloc(1, sizeof *d);
	if (!d || !(d->bytes = malloc(len)))
		goto nomem;
	memcpy(d->bytes, b, len);
	d->len = len;
	d->id = id;
	atomic_init(&d->refs, 1);
	/* Both digest the entropy tables and fail on damaged ones. */
	d->ddict = ZSTD_createDDict(b, len);
	if (!d->ddict) {
		seterr(err, errlen, "dictionary %u is corrupted (zstd cannot load it)", id);
		goto fail;
	}
	if (level) {
		d->cdict = ZSTD_createCDict(b, len, level);
		if (!d->cdict) {
			seterr(err, errlen, "dictionary %u: cannot prepare it for level %d", id, level);
			goto fail;
		}
	}
	return d;
nomem:
	seterr(err, errlen, "out of memory loading a %zu-byte dictionary", len);
fail:
	if (d) {
		ZSTD_freeDDict(d->ddict);
		free(d->bytes);
		free(d);
	}
	return NULL;
}

record_dict *record_dict_train(const void *samples, const size_t *sizes,
                               unsigned n, size_t capacity, uint32_t id,
                               int level, char *err, size_t errlen)
{
	ZDICT_params_t params;
	record_dict *d;
	uint8_t *buf;
	size_t r, hs;

	if (!samples || !sizes || n == 0) {
		seterr(err, errlen, "no samples to train a dictionary on");
		return NULL;
	}
	if (id < RECORD_DICT_ID_MIN || id > RECORD_DICT_ID_MAX) {
		seterr(err, errlen, "dictionary id %u outside %u..%u", id,
		       RECORD_DICT_ID_MIN, RECORD_DICT_ID_MAX);
		return NULL;
	}
	if (capacity < 1024 || capacity > RECORD_DICT_MAX) {
		seterr(err, errlen, "dictionary size %zu outside 1024..%u", capacity,
		       RECORD_DICT_MAX);
		return NULL;
	}
	if (!level_ok(level)) {
		seterr(err, errlen, "compression level %d out of range", level);
		return NULL;
	}
	buf = malloc(capacity);
	if (!buf) {
		seterr(err, errlen, "out of memory training a dictionary");
		return NULL;
	}
	r = ZDICT_trainFromBuffer(buf, capacity, samples, sizes, n);
	if (ZDICT_isError(r)) {
		seterr(err, errlen, "dictionary training failed: %s (%u samples; give it more, "
		       "more varied samples, about 100x the dictionary size)",
		       ZDICT_getErrorName(r), n);
		free(buf);
		return NULL;
	}
	/* The trainer picks a random id; re-finalize the same content with ours
	 * and with entropy statistics tuned for the level in use. */
	hs = ZDICT_getDictHeaderSize(buf, r);
	if (ZDICT_isError(hs)) {
		seterr(err, errlen, "trained dictionary unreadable: %s", ZDICT_getErrorName(hs));
		free(buf);
		return NULL;
	}
	memset(&params, 0, sizeof params);
	params.compressionLevel = level;
	params.dictID = id;
	r = ZDICT_finalizeDictionary(buf, capacity, buf + hs, r - hs, samples, sizes,
	                             n, params);
	if (ZDICT_isError(r)) {
		seterr(err, errlen, "dictionary finalization failed: %s", ZDICT_getErrorName(r));
		free(buf);
		return NULL;
	}
	d = record_dict_new(buf, r, level, err, errlen);
	free(buf);
	return d;
}

record_dict *record_dict_ref(record_dict *d)
{
	if (d)
		atomic_fetch_add_explicit(&d->refs, 1, memory_order_relaxed);
	return d;
}

void record_dict_unref(record_dict *d)
{
	if (!d || atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) != 1)
		return;
	ZSTD_freeCDict(d->cdict);
	ZSTD_freeDDict(d->ddict);
	free(d->bytes);
	free(d);
}

uint32_t record_dict_id(const record_dict *d)
{
	return d->id;
}

const void *record_dict_data(const record_dict *d, size_t *len)
{
	*len = d->len;
	return d->bytes;
}

/* ---- the slot ---- */

record_slot *record_slot_new(void)
{
	record_slot *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return NULL;
	}
	atomic_init(&s->gen, atomic_fetch_add(&next_gen, 1));
	return s;
}

void record_slot_free(record_slot *s)
{
	if (!s)
		return;
	record_dict_unref(s->cur);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

void record_slot_set(record_slot *s, record_dict *d)
{
	record_dict *old;

	pthread_mutex_lock(&s->mu);
	old = s->cur;
	s->cur = record_dict_ref(d);
	atomic_store_explicit(&s->gen, atomic_fetch_add(&next_gen, 1),
	                      memory_order_release);
	pthread_mutex_unlock(&s->mu);
	record_dict_unref(old);
}

record_dict *record_slot_get(record_slot *s)
{
	record_dict *d;

	pthread_mutex_lock(&s->mu);
	d = record_dict_ref(s->cur);
	pthread_mutex_unlock(&s->mu);
	return d;
}

/* ---- encoding ---- */

record_cctx *record_cctx_new(int level, char *err, size_t errlen)
{
	record_cctx *c;

	if (!level_ok(level)) {
		seterr(err, errlen, "compression level %d out of range (%d..%d, 0 = off)",
		       level, ZSTD_minCLevel(), ZSTD_maxCLevel());
		return NULL;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	c->level = level;
	if (level == 0)
		return c;
	c->z = ZSTD_createCCtx();
	if (!c->z ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->z, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->z, ZSTD_c_checksumFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->z, ZSTD_c_dictIDFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->z, ZSTD_c_contentSizeFlag, 1))) {
		seterr(err, errlen, "cannot create a zstd compression context");
		record_cctx_free(c);
		return NULL;
	}
	return c;
}

void record_cctx_free(record_cctx *c)
{
	if (!c)
		return;
	ZSTD_freeCCtx(c->z);        /* drops its CDict pointer before the unref */
	record_dict_unref(c->dict);
	record_buf_free(&c->scratch);
	free(c);
}

/* The dictionary to compress with now: the cached one while the slot's
 * generation is unchanged (one atomic load), else a fresh reference taken
 * under the slot's lock. The old CDict is unreferenced only after the
 * context stopped pointing at it. */
static record_dict *cctx_dict(record_cctx *c, record_slot *s)
{
	uint64_t g = s ? atomic_load_explicit(&s->gen, memory_order_acquire) : 0;
	record_dict *d = NULL, *old;

	if (g == c->gen)
		return c->dict;
	if (s) {
		pthread_mutex_lock(&s->mu);
		d = record_dict_ref(s->cur);
		g = atomic_load_explicit(&s->gen, memory_order_relaxed);
		pthread_mutex_unlock(&s->mu);
	}
	if (d && !d->cdict) {           /* decode-only: compress without it */
		record_dict_unref(d);
		d = NULL;
	}
	if (ZSTD_isError(ZSTD_CCtx_refCDict(c->z, d ? d->cdict : NULL))) {
		/* Only fails mid-frame, which cannot happen between calls; be safe. */
		record_dict_unref(d);
		d = NULL;
		ZSTD_CCtx_reset(c->z, ZSTD_reset_session_only);
		ZSTD_CCtx_refCDict(c->z, NULL);
	}
	old = c->dict;
	c->dict = d;
	c->gen = g;
	record_dict_unref(old);
	return d;
}

static void hdr_write(uint8_t *h, uint8_t flags, uint32_t dict_id, uint32_t raw_len,
                      uint32_t check, int64_t time_ns)
{
	h[0] = 'S';
	h[1] = 'P';
	h[2] = RECORD_FORMAT;
	h[3] = flags;
	put32(h + 4, dict_id);
	put32(h + 8, raw_len);
	put32(h + 12, check);
	put64(h + 16, (uint64_t)time_ns);
}

int record_encode(record_cctx *c, record_slot *slot, const record_meta *m,
                  const void *msg, size_t msg_len, record_buf *out)
{
	uint8_t flags, *p, *h;
	uint32_t dict_id = 0, check = 0;
	size_t elen, raw_len, stored;
	record_dict *d;
	spop_iter it;
	spop_msg sm;

	if (!c || !m || !out || (!msg && msg_len) ||
	    (m->engine_id.len && !m->engine_id.ptr))
		return RECORD_EINVAL;
	elen = m->engine_id.len;
	if (elen > RECORD_ENGINE_ID_MAX)
		return RECORD_EINVAL;
	if (msg_len > RECORD_RAW_MAX - RECORD_PAYLOAD_HDR - elen)
		return RECORD_ETOOBIG;
	/* Only what decodes back is stored: exactly one well-formed message. */
	spop_iter_init(&it, msg, msg_len);
	if (spop_msg_next(&it, &sm) != 1 || it.p != it.end)
		return RECORD_EINVAL;

	raw_len = RECORD_PAYLOAD_HDR + elen + msg_len;
	c->scratch.len = 0;                 /* set again once the record is out */
	if (buf_reserve(&c->scratch, raw_len) < 0)
		return RECORD_ENOMEM;
	p = c->scratch.data;
	p[0] = RECORD_PAYLOAD_VERSION;
	p[1] = 0;
	put16(p + 2, (uint16_t)elen);
	put32(p + 4, m->msg_index);
	put64(p + 8, (uint64_t)m->recv_ns);
	put64(p + 16, m->sid);
	put64(p + 24, m->fid);
	if (elen)
		memcpy(p + RECORD_PAYLOAD_HDR, m->engine_id.ptr, elen);
	memcpy(p + RECORD_PAYLOAD_HDR + elen, msg, msg_len);

	flags = m->truncated ? RECORD_F_TRUNCATED : 0;
	if (c->level == 0) {
		if (buf_reserve(out, RECORD_HDR_SIZE + raw_len) < 0)
			return RECORD_ENOMEM;
		memcpy(out->data + out->len + RECORD_HDR_SIZE, p, raw_len);
		check = record_crc32c(0, p, raw_len);
		stored = raw_len;
	} else {
		size_t bound = ZSTD_compressBound(raw_len);

		d = cctx_dict(c, slot);
		if (d) {
			flags |= RECORD_F_DICT;
			dict_id = d->id;
		}
		flags |= RECORD_F_ZSTD;
		if (buf_reserve(out, RECORD_HDR_SIZE + bound) < 0)
			return RECORD_ENOMEM;
		stored = ZSTD_compress2(c->z, out->data + out->len + RECORD_HDR_SIZE,
		                        bound, p, raw_len);
		if (ZSTD_isError(stored)) {
			ZSTD_CCtx_reset(c->z, ZSTD_reset_session_only);
			return ZSTD_getErrorCode(stored) == ZSTD_error_memory_allocation ?
			       RECORD_ENOMEM : RECORD_EZSTD;
		}
	}
	h = out->data + out->len;
	hdr_write(h, flags, dict_id, (uint32_t)raw_len, check, m->recv_ns);
	out->len += RECORD_HDR_SIZE + stored;
	c->scratch.len = raw_len;
	return RECORD_OK;
}

const void *record_cctx_payload(const record_cctx *c, size_t *len)
{
	*len = c->scratch.len;
	return c->scratch.data;
}

/* ---- decoding ---- */

record_dctx *record_dctx_new(void)
{
	record_dctx *d = calloc(1, sizeof *d);

	if (!d)
		return NULL;
	d->z = ZSTD_createDCtx();
	if (!d->z) {
		free(d);
		return NULL;
	}
	return d;
}

void record_dctx_free(record_dctx *d)
{
	if (!d)
		return;
	ZSTD_freeDCtx(d->z);
	free(d);
}

int record_hdr_parse(const void *val, size_t len, record_hdr *h)
{
	const uint8_t *p = val;

	if (!p || len < RECORD_HDR_SIZE)
		return RECORD_ESHORT;
	if (p[0] != 'S' || p[1] != 'P')
		return RECORD_EMAGIC;
	if (p[2] != RECORD_FORMAT)
		return RECORD_EVERSION;
	h->version = p[2];
	h->flags = p[3];
	h->dict_id = get32(p + 4);
	h->raw_len = get32(p + 8);
	h->check = get32(p + 12);
	h->time_ns = (int64_t)get64(p + 16);
	h->stored_len = len - RECORD_HDR_SIZE;
	if (h->flags & ~(RECORD_F_ZSTD | RECORD_F_DICT | RECORD_F_TRUNCATED))
		return RECORD_EHEADER;
	if (h->flags & RECORD_F_DICT) {
		if (!(h->flags & RECORD_F_ZSTD))
			return RECORD_EHEADER;
		if (h->dict_id < RECORD_DICT_ID_MIN || h->dict_id > RECORD_DICT_ID_MAX)
			return RECORD_EDICT;
	} else if (h->dict_id != 0) {
		return RECORD_EHEADER;
	}
	if ((h->flags & RECORD_F_ZSTD) && h->check != 0)
		return RECORD_EHEADER;
	if (h->raw_len > RECORD_RAW_MAX || h->raw_len < RECORD_PAYLOAD_HDR)
		return RECORD_ELENGTH;
	if (!(h->flags & RECORD_F_ZSTD) && h->stored_len != h->raw_len)
		return RECORD_ELENGTH;
	return RECORD_OK;
}

int record_parse_payload(const void *raw, size_t len, record_view *v)
{
	const uint8_t *p = raw;
	size_t elen;
	spop_iter it;

	if (!p || len < RECORD_PAYLOAD_HDR)
		return RECORD_ESHORT;
	if (p[0] != RECORD_PAYLOAD_VERSION)
		return RECORD_EVERSION;
	if (p[1] != 0)
		return RECORD_EPAYLOAD;
	elen = get16(p + 2);
	if (elen > RECORD_ENGINE_ID_MAX || elen > len - RECORD_PAYLOAD_HDR)
		return RECORD_EPAYLOAD;
	v->msg_index = get32(p + 4);
	v->recv_ns = (int64_t)get64(p + 8);
	v->sid = get64(p + 16);
	v->fid = get64(p + 24);
	v->engine_id.ptr = p + RECORD_PAYLOAD_HDR;
	v->engine_id.len = elen;
	spop_iter_init(&it, p + RECORD_PAYLOAD_HDR + elen, len - RECORD_PAYLOAD_HDR - elen);
	if (spop_msg_next(&it, &v->msg) != 1 || it.p != it.end)
		return RECORD_EPAYLOAD;
	return RECORD_OK;
}

/* Maps a zstd error to ours, keeping zstd's words in the message. */
static int zstd_fail(size_t zr, char *err, size_t errlen)
{
	int rc;

	switch (ZSTD_getErrorCode(zr)) {
	case ZSTD_error_checksum_wrong:
		rc = RECORD_ECHECKSUM;
		break;
	case ZSTD_error_dstSize_tooSmall:
		rc = RECORD_ELENGTH;
		break;
	case ZSTD_error_dictionary_wrong:
		rc = RECORD_EDICT;
		break;
	case ZSTD_error_memory_allocation:
		rc = RECORD_ENOMEM;
		break;
	default:
		rc = RECORD_EZSTD;
		break;
	}
	seterr(err, errlen, "%s (zstd: %s)", record_strerror(rc), ZSTD_getErrorName(zr));
	return rc;
}

static int decompress(record_dctx *d, const record_hdr *h, const uint8_t *src,
                      record_dict_lookup_fn *lookup, void *arg, record_buf *out,
                      char *err, size_t errlen)
{
	size_t n = h->stored_len, fsz, r;
	unsigned long long fcs;
	const record_dict *dict = NULL;
	unsigned fdict;
	char detail[96];

	/* Exactly one frame: ZSTD_decompress would also run on into trailing
	 * bytes or further frames. */
	fsz = ZSTD_findFrameCompressedSize(src, n);
	if (ZSTD_isError(fsz))
		return zstd_fail(fsz, err, errlen);
	if (fsz != n) {
		snprintf(detail, sizeof detail, "%zu bytes after the frame", n - fsz);
		return fail(RECORD_EZSTD, err, errlen, detail);
	}
	/* Checked before allocating or decompressing, so a damaged header
	 * cannot make us allocate for, or decode into, the wrong size. */
	fcs = ZSTD_getFrameContentSize(src, n);
	if (fcs == ZSTD_CONTENTSIZE_ERROR)
		return fail(RECORD_EZSTD, err, errlen, "unreadable frame header");
	if (fcs == ZSTD_CONTENTSIZE_UNKNOWN)    /* we always write it */
		return fail(RECORD_EZSTD, err, errlen, "frame has no content size");
	if (fcs != h->raw_len) {
		snprintf(detail, sizeof detail, "header says %u bytes, frame holds %llu",
		         h->raw_len, fcs);
		return fail(RECORD_ELENGTH, err, errlen, detail);
	}
	fdict = ZSTD_getDictID_fromFrame(src, n);
	if (h->flags & RECORD_F_DICT) {
		if (lookup)
			dict = lookup(arg, h->dict_id);
		if (!dict) {
			snprintf(detail, sizeof detail, "dictionary %u not found", h->dict_id);
			return fail(RECORD_EDICT, err, errlen, detail);
		}
		if (fdict != h->dict_id || dict->id != h->dict_id) {
			snprintf(detail, sizeof detail, "header names dictionary %u, frame %u",
			         h->dict_id, fdict);
			return fail(RECORD_EDICT, err, errlen, detail);
		}
	} else if (fdict != 0) {
		snprintf(detail, sizeof detail, "frame needs dictionary %u, header names none",
		         fdict);
		return fail(RECORD_EDICT, err, errlen, detail);
	}
	if (buf_reserve(out, h->raw_len) < 0)
		return fail(RECORD_ENOMEM, err, errlen, NULL);
	if (dict)
		r = ZSTD_decompress_usingDDict(d->z, out->data, h->raw_len, src, n, dict->ddict);
	else
		r = ZSTD_decompressDCtx(d->z, out->data, h->raw_len, src, n);
	if (ZSTD_isError(r))
		return zstd_fail(r, err, errlen);
	if (r != h->raw_len) {
		snprintf(detail, sizeof detail, "header says %u bytes, frame gave %zu",
		         h->raw_len, r);
		return fail(RECORD_ELENGTH, err, errlen, detail);
	}
	return RECORD_OK;
}

int record_decode(record_dctx *d, const void *val, size_t len,
                  record_dict_lookup_fn *lookup, void *lookup_arg,
                  record_buf *out, record_hdr *hdr, record_view *view,
                  char *err, size_t errlen)
{
	const uint8_t *src;
	record_hdr h;
	record_view v;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	memset(&h, 0, sizeof h);
	rc = record_hdr_parse(val, len, &h);
	if (hdr)
		*hdr = h;
	if (rc < 0)
		return fail(rc, err, errlen, NULL);
	out->len = 0;
	src = (const uint8_t *)val + RECORD_HDR_SIZE;
	if (h.flags & RECORD_F_ZSTD) {
		rc = decompress(d, &h, src, lookup, lookup_arg, out, err, errlen);
		if (rc < 0)
			return rc;
	} else {
		/* hdr_parse checked stored_len == raw_len: allocation bounded
		 * by the value's own size. */
		if (record_crc32c(0, src, h.stored_len) != h.check)
			return fail(RECORD_ECHECKSUM, err, errlen, "CRC-32C of the raw payload");
		if (buf_reserve(out, h.raw_len) < 0)
			return fail(RECORD_ENOMEM, err, errlen, NULL);
		memcpy(out->data, src, h.stored_len);
	}
	out->len = h.raw_len;
	rc = record_parse_payload(out->data, out->len, &v);
	if (rc < 0)
		return fail(rc, err, errlen, NULL);
	if ((uint64_t)v.recv_ns != (uint64_t)h.time_ns)
		return fail(RECORD_EHEADER, err, errlen,
		            "capture time in the header differs from the payload's");
	if (view)
		*view = v;
	return RECORD_OK;
}
