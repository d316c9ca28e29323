/* redact.c -- the privacy rules of redact.h: header values redacted,
 * dropped or hashed in header blocks (binary hdrs_bin and text forms),
 * bodies capped or dropped, and the message re-encoded for the record.
 *
 * Cost model: a message none of whose arguments changes is returned as is
 * (no copy); the output is built lazily from the first argument that
 * changes, in a buffer the context keeps between calls. Header blocks are
 * scanned once to decide and, only when a header has a rule, once more to
 * rewrite. HMAC-SHA256 comes from OpenSSL's libcrypto (EVP_MAC): the key is
 * set once per context and each value only re-initialises the MAC. */
#include "spoolcap/redact.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

static const char *const default_headers[] = { REDACT_DEFAULT_HEADERS };
static const char *const default_header_args[] = { "*hdrs", "*headers" };
static const char *const default_body_args[] = { "*body" };

#define NDEFAULT(a) (sizeof(a) / sizeof((a)[0]))

struct hrule {
	char   name[REDACT_NAME_MAX + 1];   /* lower case */
	size_t len;
	int    action;
};

/* A list of owned strings. */
struct strv {
	char  **v;
	size_t  n;
};

struct redact_rules {
	struct hrule *rules;          /* only actions other than keep */
	size_t        nrules;
	struct strv   header_args, body_args, body_drop;
	int           drop_all;       /* body_drop has "*" */
	int           has_body_max;
	uint64_t      body_max;
	uint8_t       key[REDACT_KEY_MAX];
	size_t        keylen;
	int           hashes;         /* some rule hashes */
};

enum { C_CHANGED, C_REDACTED, C_DROPPED, C_HASHED, C_CAPPED, C_BODY_DROPPED, C_FAILED,
       C_N };

struct redact_ctx {
	const redact_rules *r;
	EVP_MAC     *mac;
	EVP_MAC_CTX *mctx;            /* keyed once; NULL when no rule hashes */
	uint8_t     *out;             /* the message being re-encoded */
	size_t       olen, ocap;
	uint8_t     *blk;             /* the header block being rewritten */
	size_t       blen, bcap;
	uint64_t     n[C_N];          /* this message's counts */
	_Atomic uint64_t ctr[C_N];    /* single writer: the owning thread */
};

/* ---- small helpers ---- */

static uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c;
}

static int ieq(const uint8_t *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lower(a[i]) != lower((uint8_t)b[i]))
			return 0;
	return 1;
}

/* RFC 9110 token characters: what a header name is made of. */
static int is_tchar(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Matches name against patterns: "*suffix" or a whole name, case-blind. */
static int pat_match(const struct strv *pats, const uint8_t *name, size_t len)
{
	for (size_t i = 0; i < pats->n; i++) {
		const char *p = pats->v[i];
		size_t pl;

		if (p[0] == '*') {
			pl = strlen(++p);
			if (pl <= len && ieq(name + len - pl, p, pl))
				return 1;
		} else {
			pl = strlen(p);
			if (pl == len && ieq(name, p, pl))
				return 1;
		}
	}
	return 0;
}

static void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static int strv_copy(struct strv *s, const char *const *v, size_t n, const char *const *def,
                     size_t ndef)
{
	if (!v) {
		v = def;
		n = ndef;
	}
	s->n = 0;
	s->v = calloc(n ? n : 1, sizeof(*s->v));
	if (!s->v)
		return -1;
	for (size_t i = 0; i < n; i++) {
		s->v[i] = strdup(v[i]);
		if (!s->v[i])
			return -1;
		s->n++;
	}
	return 0;
}

static int check_patterns(const struct strv *s, const char *what, char *err, size_t errlen)
{
	for (size_t i = 0; i < s->n; i++) {
		const char *p = s->v[i];

		if (!*p || (p[0] == '*' && !p[1])) {
			snprintf(err, errlen, "%s: '%s' matches every argument; give a name or "
			         "*suffix (for example *hdrs)", what, p);
			return -1;
		}
	}
	return 0;
}

/* ---- rules ---- */

static struct hrule *find_rule(struct hrule *rules, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (rules[i].len == len && ieq((const uint8_t *)rules[i].name, name, len))
			return &rules[i];
	return NULL;
}

/* Adds or updates name's rule in a table of up to REDACT_RULES_MAX. */
static int set_rule(struct hrule *rules, size_t *n, const char *name, int action,
                    char *err, size_t errlen)
{
	size_t len = strlen(name);
	struct hrule *h;

	if (len == 0 || len > REDACT_NAME_MAX) {
		snprintf(err, errlen, "header name '%.64s': must have 1 to %d characters", name,
		         REDACT_NAME_MAX);
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		if (!is_tchar((uint8_t)name[i])) {
			snprintf(err, errlen, "'%.64s' is not a header name (letters, digits and "
			         "!#$%%&'*+-.^_`|~ only)", name);
			return -1;
		}
	if (action < REDACT_KEEP || action > REDACT_HASH) {
		snprintf(err, errlen, "header %.64s: unknown action %d", name, action);
		return -1;
	}
	h = find_rule(rules, *n, name, len);
	if (!h) {
		if (*n >= REDACT_RULES_MAX) {
			snprintf(err, errlen, "more than %d header names with a rule", REDACT_RULES_MAX);
			return -1;
		}
		h = &rules[(*n)++];
		for (size_t i = 0; i < len; i++)
			h->name[i] = (char)lower((uint8_t)name[i]);
		h->name[len] = '\0';
		h->len = len;
	}
	h->action = action;
	return 0;
}

void redact_free(redact_rules *r)
{
	if (!r)
		return;
	free(r->rules);
	strv_free(&r->header_args);
	strv_free(&r->body_args);
	strv_free(&r->body_drop);
	OPENSSL_cleanse(r->key, sizeof(r->key));
	free(r);
}

int redact_new(const redact_config *c, redact_rules **out, char *err, size_t errlen)
{
	static const redact_config zero;
	const char *const *hl;
	struct hrule *all = NULL;
	redact_rules *r = NULL;
	size_t nall = 0, nhl, k;

	*out = NULL;
	if (!c)
		c = &zero;
	all = calloc(REDACT_RULES_MAX, sizeof(*all));
	r = calloc(1, sizeof(*r));
	if (!all || !r)
		goto oom;
	hl = c->headers ? c->headers : default_headers;
	nhl = c->headers ? c->nheaders : NDEFAULT(default_headers);
	for (size_t i = 0; i < nhl; i++)
		if (set_rule(all, &nall, hl[i], REDACT_REDACT, err, errlen) < 0)
			goto fail;
	for (size_t i = 0; i < c->nrules; i++)
		if (set_rule(all, &nall, c->rules[i].name, c->rules[i].action, err, errlen) < 0)
			goto fail;
	/* Keep only what changes something: "keep" is the absence of a rule. */
	for (size_t i = k = 0; i < nall; i++)
		if (all[i].action != REDACT_KEEP) {
			all[k] = all[i];
			r->hashes |= all[k].action == REDACT_HASH;
			k++;
		}
	r->nrules = k;
	if (r->hashes) {
		if (!c->hash_key || c->hash_key_len < REDACT_KEY_MIN ||
		    c->hash_key_len > REDACT_KEY_MAX) {
			snprintf(err, errlen, "a header-action hashes, which needs a key of %d to %d "
			         "bytes (hash-key-file; create one with: head -c 32 /dev/urandom "
			         "> FILE)", REDACT_KEY_MIN, REDACT_KEY_MAX);
			goto fail;
		}
		memcpy(r->key, c->hash_key, c->hash_key_len);
		r->keylen = c->hash_key_len;
	}
	if (strv_copy(&r->header_args, c->header_args, c->nheader_args, default_header_args,
	              NDEFAULT(default_header_args)) < 0 ||
	    strv_copy(&r->body_args, c->body_args, c->nbody_args, default_body_args,
	              NDEFAULT(default_body_args)) < 0 ||
	    strv_copy(&r->body_drop, c->body_drop ? c->body_drop : default_body_args,
	              c->body_drop ? c->nbody_drop : 0, NULL, 0) < 0)
		goto oom;
	if (check_patterns(&r->header_args, "header-args", err, errlen) < 0 ||
	    check_patterns(&r->body_args, "body-args", err, errlen) < 0)
		goto fail;
	for (size_t i = 0; i < r->body_drop.n; i++) {
		if (!*r->body_drop.v[i]) {
			snprintf(err, errlen, "body-drop: empty message name");
			goto fail;
		}
		r->drop_all |= strcmp(r->body_drop.v[i], "*") == 0;
	}
	r->has_body_max = c->has_body_max;
	r->body_max = c->body_max;
	if (r->nrules == 0 && !r->has_body_max && r->body_drop.n == 0) {
		free(all);
		redact_free(r);
		return 0;                /* nothing would ever change */
	}
	r->rules = realloc(all, (r->nrules ? r->nrules : 1) * sizeof(*all));
	if (!r->rules) {
		r->rules = all;
		all = NULL;
		goto oom;
	}
	*out = r;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	free(all);
	redact_free(r);
	return -1;
}

static const char *action_name(int a)
{
	switch (a) {
	case REDACT_REDACT: return "redact";
	case REDACT_DROP:   return "drop";
	case REDACT_HASH:   return "hash";
	}
	return "keep";
}

void redact_describe(const redact_rules *r, char *buf, size_t len)
{
	size_t o = 0;

#define ADD(...) do { \
	if (o < len) \
		o += (size_t)snprintf(buf + o, len - o, __VA_ARGS__); \
} while (0)
	if (!len)
		return;
	buf[0] = '\0';
	if (!r) {
		ADD("off");
		return;
	}
	ADD("headers");
	if (!r->nrules)
		ADD(" none");
	for (size_t i = 0; i < r->nrules; i++)
		ADD(" %s:%s", r->rules[i].name, action_name(r->rules[i].action));
	ADD(" (in args");
	for (size_t i = 0; i < r->header_args.n; i++)
		ADD(" %s", r->header_args.v[i]);
	ADD("); bodies (args");
	for (size_t i = 0; i < r->body_args.n; i++)
		ADD(" %s", r->body_args.v[i]);
	ADD(")");
	if (r->has_body_max)
		ADD(" capped at %llu bytes", (unsigned long long)r->body_max);
	else
		ADD(" not capped");
	if (r->body_drop.n) {
		ADD(", dropped in");
		for (size_t i = 0; i < r->body_drop.n; i++)
			ADD(" %s", r->body_drop.v[i]);
	}
#undef ADD
}

/* ---- contexts ---- */

redact_ctx *redact_ctx_new(const redact_rules *r, char *err, size_t errlen)
{
	redact_ctx *x = calloc(1, sizeof(*x));
	OSSL_PARAM params[2];

	if (!x) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	x->r = r;
	for (int i = 0; i < C_N; i++)
		atomic_init(&x->ctr[i], 0);
	if (!r->hashes)
		return x;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	x->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	x->mctx = x->mac ? EVP_MAC_CTX_new(x->mac) : NULL;
	if (!x->mctx || !EVP_MAC_init(x->mctx, r->key, r->keylen, params)) {
		snprintf(err, errlen, "libcrypto cannot set up HMAC-SHA256 (is the OpenSSL "
		         "default provider available?)");
		redact_ctx_free(x);
		return NULL;
	}
	return x;
}

void redact_ctx_free(redact_ctx *x)
{
	if (!x)
		return;
	EVP_MAC_CTX_free(x->mctx);
	EVP_MAC_free(x->mac);
	free(x->out);
	free(x->blk);
	free(x);
}

void redact_ctx_stats(const redact_ctx *x, redact_stats *st)
{
	uint64_t v[C_N];

	for (int i = 0; i < C_N; i++)
		v[i] = atomic_load_explicit(&((redact_ctx *)x)->ctr[i], memory_order_relaxed);
	st->messages_changed += v[C_CHANGED];
	st->headers_redacted += v[C_REDACTED];
	st->headers_dropped += v[C_DROPPED];
	st->headers_hashed += v[C_HASHED];
	st->bodies_capped += v[C_CAPPED];
	st->bodies_dropped += v[C_BODY_DROPPED];
	st->blocks_failed += v[C_FAILED];
}

/* ---- output buffers: reserved up front, so puts cannot overflow ---- */

static int reserve(uint8_t **buf, size_t *cap, size_t need)
{
	uint8_t *nb;
	size_t ncap = *cap ? *cap : 4096;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	nb = realloc(*buf, ncap);
	if (!nb)
		return -1;
	*buf = nb;
	*cap = ncap;
	return 0;
}

static void put(uint8_t *buf, size_t *len, const void *p, size_t n)
{
	memcpy(buf + *len, p, n);
	*len += n;
}

static void put_varint(uint8_t *buf, size_t *len, uint64_t v)
{
	*len += spop_varint_put(buf + *len, v);
}

static size_t varint_len(uint64_t v)
{
	uint8_t tmp[SPOP_VARINT_MAX];

	return spop_varint_put(tmp, v);
}

/* ---- header values ---- */

static int rule_for(const redact_rules *r, const uint8_t *name, size_t len)
{
	for (size_t i = 0; i < r->nrules; i++)
		if (r->rules[i].len == len && ieq(name, r->rules[i].name, len))
			return r->rules[i].action;
	return REDACT_KEEP;
}

/* The new value for a header with action a (REDACT or HASH) into out
 * (REDACT_HASH_LEN bytes); returns its length. */
static size_t new_value(redact_ctx *x, int a, const uint8_t *v, size_t vlen, uint8_t *out)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t mac[EVP_MAX_MD_SIZE];
	size_t mlen = 0;

	if (a == REDACT_HASH && x->mctx && EVP_MAC_init(x->mctx, NULL, 0, NULL) &&
	    EVP_MAC_update(x->mctx, v, vlen) && EVP_MAC_final(x->mctx, mac, &mlen, sizeof(mac)) &&
	    mlen >= 16) {
		memcpy(out, REDACT_HASH_PREFIX, sizeof(REDACT_HASH_PREFIX) - 1);
		for (int i = 0; i < 16; i++) {
			out[5 + 2 * i] = (uint8_t)hex[mac[i] >> 4];
			out[6 + 2 * i] = (uint8_t)hex[mac[i] & 15];
		}
		x->n[C_HASHED]++;
		OPENSSL_cleanse(mac, sizeof(mac));
		return REDACT_HASH_LEN;
	}
	/* redact, or a hash the library failed to compute: fail closed */
	memcpy(out, REDACT_MARKER, sizeof(REDACT_MARKER) - 1);
	x->n[C_REDACTED]++;
	return sizeof(REDACT_MARKER) - 1;
}

/* ---- binary header blocks (req.hdrs_bin, ref §5.4) ---- */

/* Validates a block; *hits gets the headers with a rule. 0 or -1. */
static int bin_scan(const redact_rules *r, const uint8_t *p, size_t len, unsigned *hits)
{
	const uint8_t *end = p + len;
	spop_str n, v;

	*hits = 0;
	for (;;) {
		if (spop_name_get(&p, end, &n) < 0 || spop_name_get(&p, end, &v) < 0)
			return -1;
		if (n.len == 0)        /* the 00 00 terminator ends the block */
			return v.len == 0 && p == end ? 0 : -1;
		*hits += rule_for(r, n.ptr, n.len) != REDACT_KEEP;
	}
}

/* Room for a rewritten block of len bytes: it may grow by at most
 * REDACT_GROWTH_MAX (the caller checks the exact bound afterwards); a
 * rewrite that would go beyond stops with 1 and fails closed. */
static int blk_reserve(redact_ctx *x, size_t len)
{
	x->blen = 0;
	return reserve(&x->blk, &x->bcap, len + REDACT_GROWTH_MAX);
}

/* Rewrites a valid block into x->blk: 0, 1 (too big) or -1 (no memory). */
static int bin_rewrite(redact_ctx *x, const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len;
	uint8_t nv[REDACT_HASH_LEN];
	spop_str n, v;

	if (blk_reserve(x, len) < 0)
		return -1;
	for (;;) {
		const uint8_t *pair = p;
		int a;
		size_t nl;

		spop_name_get(&p, end, &n);
		spop_name_get(&p, end, &v);
		if (n.len == 0)
			break;
		a = rule_for(x->r, n.ptr, n.len);
		if (a == REDACT_DROP) {
			x->n[C_DROPPED]++;
			continue;
		}
		if (a == REDACT_KEEP) {
			if (x->blen + (size_t)(p - pair) > x->bcap)
				return 1;
			put(x->blk, &x->blen, pair, (size_t)(p - pair));
			continue;
		}
		nl = new_value(x, a, v.ptr, v.len, nv);
		if (x->blen + 2 * SPOP_VARINT_MAX + n.len + nl > x->bcap)
			return 1;
		put_varint(x->blk, &x->blen, n.len);
		put(x->blk, &x->blen, n.ptr, n.len);
		put_varint(x->blk, &x->blen, nl);
		put(x->blk, &x->blen, nv, nl);
	}
	if (x->blen + 2 > x->bcap)
		return 1;
	x->blk[x->blen++] = 0;
	x->blk[x->blen++] = 0;
	return 0;
}

/* ---- text header blocks (req.hdrs: "name: value" lines, empty line) ---- */

struct line {
	const uint8_t *name, *val, *next;  /* val..val_end: value without OWS */
	size_t nlen, vlen;
	const uint8_t *line, *val_end;
};

/* Parses one line at p. Returns 1 (a header line), 0 (the empty line that
 * ends the block, and nothing after it), -1 (malformed). */
static int text_line(const uint8_t *p, const uint8_t *end, struct line *l)
{
	const uint8_t *eol = memchr(p, '\n', (size_t)(end - p)), *ce, *colon, *v;

	l->line = p;
	ce = eol ? eol : end;
	l->next = eol ? eol + 1 : end;
	if (ce > p && ce[-1] == '\r')
		ce--;
	if (ce == p)               /* empty line: the end, nothing may follow */
		return l->next == end ? 0 : -1;
	if (*p == ' ' || *p == '\t')
		return -1;             /* obs-fold: a value continued on this line */
	colon = memchr(p, ':', (size_t)(ce - p));
	if (!colon || colon == p)
		return -1;
	for (const uint8_t *q = p; q < colon; q++)
		if (!is_tchar(*q))
			return -1;
	l->name = p;
	l->nlen = (size_t)(colon - p);
	v = colon + 1;
	while (v < ce && (*v == ' ' || *v == '\t'))
		v++;
	while (ce > v && (ce[-1] == ' ' || ce[-1] == '\t'))
		ce--;
	l->val = v;
	l->val_end = ce;
	l->vlen = (size_t)(ce - v);
	return 1;
}

static int text_scan(const redact_rules *r, const uint8_t *p, size_t len, unsigned *hits)
{
	const uint8_t *end = p + len;
	struct line l;
	int rc;

	*hits = 0;
	while (p < end) {
		if ((rc = text_line(p, end, &l)) <= 0)
			return rc;
		*hits += rule_for(r, l.name, l.nlen) != REDACT_KEEP;
		p = l.next;
	}
	return 0;                  /* no final empty line: a cut block, still lines */
}

/* As bin_rewrite, for a valid text block. */
static int text_rewrite(redact_ctx *x, const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len;
	uint8_t nv[REDACT_HASH_LEN];
	struct line l;

	if (blk_reserve(x, len) < 0)
		return -1;
	while (p < end) {
		int a;
		size_t nl;

		if (text_line(p, end, &l) == 0) {
			if (x->blen + (size_t)(end - p) > x->bcap)
				return 1;
			put(x->blk, &x->blen, p, (size_t)(end - p));   /* the empty line */
			break;
		}
		a = rule_for(x->r, l.name, l.nlen);
		if (a == REDACT_DROP) {
			x->n[C_DROPPED]++;
		} else if (a == REDACT_KEEP) {
			if (x->blen + (size_t)(l.next - p) > x->bcap)
				return 1;
			put(x->blk, &x->blen, p, (size_t)(l.next - p));
		} else {
			/* name, ':' and spaces as received; the new value; trailing
			 * spaces and the line end as received */
			nl = new_value(x, a, l.val, l.vlen, nv);
			if (x->blen + (size_t)(l.val - p) + nl + (size_t)(l.next - l.val_end) > x->bcap)
				return 1;
			put(x->blk, &x->blen, p, (size_t)(l.val - p));
			put(x->blk, &x->blen, nv, nl);
			put(x->blk, &x->blen, l.val_end, (size_t)(l.next - l.val_end));
		}
		p = l.next;
	}
	return 0;
}

/* ---- one argument ---- */

enum { SAME, REPLACED };

/* The new value of a header block argument, in *nv (pointing into x->blk
 * or at a constant). growth: bytes the output has gained so far; old: the
 * value's encoded size. */
static int header_arg(redact_ctx *x, const spop_data *val, spop_data *nv, long growth)
{
	const uint8_t *p = val->v.s.ptr;
	size_t len = val->v.s.len, old, newsz;
	unsigned hits = 0;
	int text, ok;

	if (len == 0)
		return SAME;
	/* HAProxy sends req.hdrs_bin as BINARY and req.hdrs as STRING: the
	 * form that matches the type is tried first, and is always the right
	 * reading of what HAProxy builds (a text block never ends in 00 00, so
	 * it cannot pass as binary either). The other form is only a fallback
	 * for samples converted to the other type; failing both fails closed. */
	text = val->type == SPOP_T_STRING;
	ok = (text ? text_scan : bin_scan)(x->r, p, len, &hits) == 0;
	if (!ok) {
		text = !text;
		ok = (text ? text_scan : bin_scan)(x->r, p, len, &hits) == 0;
	}
	*nv = *val;
	if (ok && hits == 0)
		return SAME;
	old = varint_len(len) + len;
	if (ok) {
		uint64_t saved[C_N];
		int rc;

		memcpy(saved, x->n, sizeof(saved));
		rc = (text ? text_rewrite : bin_rewrite)(x, p, len);
		if (rc < 0)
			return -1;
		newsz = varint_len(x->blen) + x->blen;
		if (rc == 0 && growth + (long)newsz - (long)old <= REDACT_GROWTH_MAX) {
			nv->v.s.ptr = x->blk;
			nv->v.s.len = x->blen;
			return REPLACED;
		}
		memcpy(x->n, saved, sizeof(saved));   /* not done after all */
	}
	/* Fail closed: the marker, or nothing when even that would not fit. */
	x->n[C_FAILED]++;
	newsz = 1 + sizeof(REDACT_FAILED_MARKER) - 1;
	if (growth + (long)newsz - (long)old <= REDACT_GROWTH_MAX) {
		nv->v.s.ptr = (const uint8_t *)REDACT_FAILED_MARKER;
		nv->v.s.len = sizeof(REDACT_FAILED_MARKER) - 1;
	} else {
		nv->v.s.len = 0;
	}
	return REPLACED;
}

static int body_arg(redact_ctx *x, const spop_data *val, spop_data *nv, int drop, int *flags)
{
	const redact_rules *r = x->r;
	size_t len = val->v.s.len, cut;

	if (len == 0)
		return SAME;
	if (drop) {
		nv->type = SPOP_T_NULL;
		x->n[C_BODY_DROPPED]++;
		return REPLACED;
	}
	if (!r->has_body_max || len <= r->body_max)
		return SAME;
	cut = (size_t)r->body_max;
	/* Do not split a UTF-8 character: a text body stays valid text. */
	for (int i = 0; i < 3 && cut > 0 && (val->v.s.ptr[cut] & 0xC0) == 0x80; i++)
		cut--;
	*nv = *val;
	nv->v.s.len = cut;
	x->n[C_CAPPED]++;
	*flags |= REDACT_TRUNCATED;
	return REPLACED;
}

static int name_listed(const struct strv *s, spop_str name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strlen(s->v[i]) == name.len && memcmp(s->v[i], name.ptr, name.len) == 0)
			return 1;
	return 0;
}

/* ---- one message ---- */

static void commit_counts(redact_ctx *x)
{
	for (int i = 0; i < C_N; i++)
		if (x->n[i])
			atomic_store_explicit(&x->ctr[i], atomic_load_explicit(&x->ctr[i],
			                      memory_order_relaxed) + x->n[i], memory_order_relaxed);
}

int redact_msg(redact_ctx *x, const spop_msg *m, const uint8_t **out, size_t *outlen)
{
	const redact_rules *r = x->r;
	const uint8_t *base = m->raw.ptr, *argstart;
	spop_iter it = m->args;
	spop_str name;
	spop_data val, nv;
	int started = 0, flags = 0, drop, rc;

	*out = m->raw.ptr;
	*outlen = m->raw.len;
	memset(x->n, 0, sizeof(x->n));
	drop = r->drop_all || name_listed(&r->body_drop, m->name);
	argstart = it.p;
	while ((rc = spop_arg_next(&it, &name, &val)) == 1) {
		int res = SAME, str = val.type == SPOP_T_STRING || val.type == SPOP_T_BINARY;
		long growth = started ? (long)x->olen - (long)(argstart - base) : 0;

		nv = val;
		if (str && name.len && pat_match(&r->header_args, name.ptr, name.len))
			res = header_arg(x, &val, &nv, growth);
		else if (str && name.len && pat_match(&r->body_args, name.ptr, name.len))
			res = body_arg(x, &val, &nv, drop, &flags);
		if (res < 0)
			return -1;
		if (res == SAME) {
			if (started)
				put(x->out, &x->olen, argstart, (size_t)(it.p - argstart));
			argstart = it.p;
			continue;
		}
		if (!started) {
			/* From here on the output differs: copy what came before
			 * (name, nb-args, unchanged args). The bound holds the
			 * whole message plus the allowed growth. */
			if (reserve(&x->out, &x->ocap, m->raw.len + REDACT_GROWTH_MAX +
			            2 * SPOP_VARINT_MAX + 1) < 0)
				return -1;
			x->olen = 0;
			put(x->out, &x->olen, base, (size_t)(argstart - base));
			started = 1;
		}
		put_varint(x->out, &x->olen, name.len);
		put(x->out, &x->olen, name.ptr, name.len);
		x->out[x->olen++] = nv.type;
		if (nv.type == SPOP_T_STRING || nv.type == SPOP_T_BINARY) {
			put_varint(x->out, &x->olen, nv.v.s.len);
			put(x->out, &x->olen, nv.v.s.ptr, nv.v.s.len);
		}
		argstart = it.p;
	}
	if (rc < 0)
		return -1;             /* spop_msg_next validated it: cannot happen */
	if (!started)
		return 0;
	x->n[C_CHANGED]++;
	commit_counts(x);
	*out = x->out;
	*outlen = x->olen;
	return flags | REDACT_CHANGED;
}
