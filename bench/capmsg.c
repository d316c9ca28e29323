/* capmsg.c -- realistic "cap-req" NOTIFY frames built once, patched per
 * message (see capmsg.h). The templates are encoded with the project's
 * codec (spop_put_*); the per-message path only copies and patches. */
#include "capmsg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spoolcap/spop.h"

enum slot_kind {
	K_UID,      /* 36-char uuid-like text, same value in every K_UID slot */
	K_HEX,      /* random lower-case hex */
	K_DEC,      /* random decimal digits, first one non-zero */
	K_TMS,      /* INT64 varint: wall-clock milliseconds */
	K_PORT,     /* INT64 varint, 3 bytes: client port 32768..60999 */
	K_IP4       /* last two raw bytes of an IPv4 address */
};

struct variant {
	const char *meth, *host, *path, *query;   /* query NULL: arg is NULL */
	const char *accept, *ctype;               /* ctype NULL: GET headers */
	unsigned ua;
};

static const char *const user_agents[] = {
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
	"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
	"okhttp/4.12.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
};

static const struct variant variants[CAPMSG_VARIANTS] = {
	{ "POST", "shop.example.com", "/api/v1/orders", NULL,
	  "application/json", "application/json", 0 },
	{ "POST", "shop.example.com", "/api/v1/cart/items", NULL,
	  "application/json, text/plain, */*", "application/json", 1 },
	{ "POST", "shop.example.com", "/checkout/confirm", NULL,
	  "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
	  "application/json;charset=UTF-8", 2 },
	{ "POST", "api.example.com", "/api/v2/events", NULL,
	  "*/*", "application/json", 3 },
	{ "POST", "api.example.com", "/graphql", NULL,
	  "application/graphql-response+json, application/json", "application/json", 4 },
	{ "POST", "shop.example.com", "/api/v1/payments/intent", NULL,
	  "application/json", "application/json", 0 },
	{ "GET", "shop.example.com", "/products/search",
	  "q=wireless+headphones&page=2&sort=price_asc",
	  "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
	  NULL, 2 },
	{ "GET", "api.example.com", "/api/v1/users/me/orders",
	  "limit=20&offset=40&status=shipped", "application/json", NULL, 4 },
};

static const char *const words[] = {
	"wireless", "headphones", "charger", "cable", "usb-c", "blue", "black",
	"leather", "case", "organic", "coffee", "beans", "running", "shoes",
	"size", "large", "gift", "wrap", "please", "deliver", "after", "noon",
	"ring", "the", "bell", "backdoor", "fragile", "express", "standard",
	"warehouse", "berlin", "lyon", "discount", "code", "spring", "sale",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(0x2545F4914F6CDD1D);
}

static const char hexdig[] = "0123456789abcdef";

/* ---- building: a growable-free text buffer with slot bookkeeping ---- */

struct text {
	char    *p;
	size_t   len, cap;
	capmsg_slot *slots;
	unsigned *nslots;
	int      overflow;
};

static void t_put(struct text *t, const char *s, size_t n)
{
	if (t->len + n > t->cap) {
		t->overflow = 1;
		return;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
}

static void t_puts(struct text *t, const char *s)
{
	t_put(t, s, strlen(s));
}

/* A placeholder of width chars that capmsg_emit rewrites. */
static void t_slot(struct text *t, uint8_t kind, uint16_t width, uint64_t *rng)
{
	char tmp[64];
	uint16_t i;

	for (i = 0; i < width && i < sizeof(tmp); i++)
		tmp[i] = kind == K_HEX ? hexdig[rnd(rng) & 15]
		                       : (char)('1' + rnd(rng) % 9);
	if (*t->nslots < CAPMSG_MAX_SLOTS && t->len + width <= t->cap) {
		t->slots[*t->nslots].off = (uint32_t)t->len;
		t->slots[*t->nslots].width = width;
		t->slots[*t->nslots].kind = kind;
		(*t->nslots)++;
	}
	t_put(t, tmp, width);
}

/* JSON-ish order document of exactly len bytes (cut short like HAProxy's
 * bytes(0,N) when len is below its natural minimum). */
static void build_body(struct text *t, size_t len, unsigned v, uint64_t *rng)
{
	static const char *const tiers[] = { "basic", "silver", "gold" };
	static const char *const countries[] = { "DE", "FR", "NL", "US", "GB" };
	size_t end = t->len + len, n, note;
	unsigned item = 0;

	t_puts(t, "{\"order_id\":");
	t_slot(t, K_DEC, 9, rng);
	t_puts(t, ",\"customer\":{\"id\":\"c-");
	t_slot(t, K_HEX, 8, rng);
	t_puts(t, "\",\"email\":\"user.");
	t_slot(t, K_DEC, 6, rng);
	t_puts(t, "@example.org\",\"tier\":\"");
	t_puts(t, tiers[v % 3]);
	t_puts(t, "\"},\"currency\":\"EUR\",\"shipping\":{\"method\":\"standard\",\"country\":\"");
	t_puts(t, countries[v % 5]);
	t_puts(t, "\",\"zip\":\"");
	t_slot(t, K_DEC, 5, rng);
	t_puts(t, "\"},\"items\":[");
	/* items while there is room for one more plus the closing part */
	while (t->len + 110 + 16 < end && !t->overflow) {
		char buf[96];

		if (item++)
			t_puts(t, ",");
		t_puts(t, "{\"sku\":\"SKU-");
		t_slot(t, K_DEC, 6, rng);
		snprintf(buf, sizeof(buf), "\",\"name\":\"%s %s\",\"qty\":%u,\"price\":",
		         words[rnd(rng) % NWORDS], words[rnd(rng) % NWORDS],
		         1 + (unsigned)(rnd(rng) % 4));
		t_puts(t, buf);
		t_slot(t, K_DEC, 2, rng);
		t_puts(t, ".");
		t_slot(t, K_DEC, 2, rng);
		t_puts(t, "}");
	}
	t_puts(t, "],\"note\":\"");
	/* words up to 2 bytes before the end, then "} */
	note = t->len;
	while (t->len + 2 < end && !t->overflow) {
		const char *w = words[rnd(rng) % NWORDS];

		if (t->len > note)
			t_put(t, " ", 1);
		n = strlen(w);
		if (t->len + n > end - 2)
			n = end - 2 - t->len;
		t_put(t, w, n);
	}
	if (t->len + 2 <= end)
		t_puts(t, "\"}");
	if (t->len > end) {                       /* natural minimum too big: cut */
		t->len = end;
		while (*t->nslots && t->slots[*t->nslots - 1].off +
		       t->slots[*t->nslots - 1].width > end)
			(*t->nslots)--;
	}
}

/* req.hdrs_bin: varint name length, name, varint value length, value, ...,
 * then 00 00. pad extra bytes go into a cookie (GET) so GETs reach the size. */
static void hdr(struct text *t, const char *name, const char *value)
{
	uint8_t v[SPOP_VARINT_MAX];
	size_t n;

	n = spop_varint_put(v, strlen(name));
	t_put(t, (const char *)v, n);
	t_puts(t, name);
	n = spop_varint_put(v, strlen(value));
	t_put(t, (const char *)v, n);
	t_puts(t, value);
}

/* A header whose value contains slots: the caller writes the value. */
static void hdr_begin(struct text *t, const char *name, size_t value_len)
{
	uint8_t v[SPOP_VARINT_MAX];
	size_t n;

	n = spop_varint_put(v, strlen(name));
	t_put(t, (const char *)v, n);
	t_puts(t, name);
	n = spop_varint_put(v, value_len);
	t_put(t, (const char *)v, n);
}

static void build_hdrs(struct text *t, const struct variant *va, size_t body_len,
                       size_t cookie_pad, uint64_t *rng)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char num[32];
	size_t i, clen, start;

	hdr(t, "host", va->host);
	hdr(t, "user-agent", user_agents[va->ua]);
	hdr(t, "accept", va->accept);
	hdr(t, "accept-encoding", "gzip, deflate, br, zstd");
	hdr(t, "accept-language", "en-US,en;q=0.9,de;q=0.8");
	if (va->ctype) {
		hdr(t, "content-type", va->ctype);
		snprintf(num, sizeof(num), "%zu", body_len);
		hdr(t, "content-length", num);
	} else {
		hdr(t, "referer", "https://shop.example.com/");
		hdr(t, "cache-control", "no-cache");
	}
	/* cookie: session=<32 hex>; _ga=GA1.2.<10>.<10>; lang=en[; prefs=<pad>] */
	clen = 8 + 32 + 12 + 10 + 1 + 10 + 9 + (cookie_pad ? 8 + cookie_pad : 0);
	hdr_begin(t, "cookie", clen);
	start = t->len;
	t_puts(t, "session=");
	t_slot(t, K_HEX, 32, rng);
	t_puts(t, "; _ga=GA1.2.");
	t_slot(t, K_DEC, 10, rng);
	t_puts(t, ".");
	t_slot(t, K_DEC, 10, rng);
	t_puts(t, "; lang=en");
	if (cookie_pad) {
		t_puts(t, "; prefs=");
		for (i = 0; i < cookie_pad; i++)
			t_put(t, &b64[rnd(rng) & 63], 1);
	}
	if (t->len - start != clen)               /* keep the length prefix honest */
		t->overflow = 1;
	hdr_begin(t, "x-request-id", 36);
	t_slot(t, K_UID, 36, rng);
	/* traceparent: 00-<32 hex trace id>-<16 hex span id>-01 */
	hdr_begin(t, "traceparent", 55);
	t_puts(t, "00-");
	t_slot(t, K_HEX, 32, rng);
	t_puts(t, "-");
	t_slot(t, K_HEX, 16, rng);
	t_puts(t, "-01");
	t_put(t, "\0\0", 2);
}

/* Adds the slots of a text block placed at payload offset base. */
static void add_slots(capmsg_tpl *tp, const capmsg_slot *s, unsigned n, size_t base)
{
	unsigned i;

	for (i = 0; i < n && tp->nslots < CAPMSG_MAX_SLOTS; i++) {
		tp->slots[tp->nslots] = s[i];
		tp->slots[tp->nslots].off += (uint32_t)base;
		tp->nslots++;
	}
}

static void arg_str(spop_wbuf *w, const char *name, uint8_t type,
                    const void *p, size_t n)
{
	spop_put_name(w, name, strlen(name));
	spop_put_str(w, type, p, n);
}

static void arg_int(capmsg_tpl *tp, spop_wbuf *w, const char *name, uint64_t v,
                    int kind)
{
	size_t at;

	spop_put_name(w, name, strlen(name));
	at = w->len;
	spop_put_uint(w, SPOP_T_INT64, v);
	if (kind >= 0 && tp->nslots < CAPMSG_MAX_SLOTS && !w->overflow) {
		tp->slots[tp->nslots].off = (uint32_t)(at + 1);
		tp->slots[tp->nslots].width = (uint16_t)(w->len - at - 1);
		tp->slots[tp->nslots].kind = (uint8_t)kind;
		tp->nslots++;
	}
}

static void arg_ip4(capmsg_tpl *tp, spop_wbuf *w, const char *name,
                    uint8_t a, uint8_t b, uint8_t c, uint8_t d, int patch)
{
	spop_data v;

	memset(&v, 0, sizeof(v));
	v.type = SPOP_T_IPV4;
	v.v.ip[0] = a; v.v.ip[1] = b; v.v.ip[2] = c; v.v.ip[3] = d;
	spop_put_name(w, name, strlen(name));
	spop_put_data(w, &v);
	if (patch && tp->nslots < CAPMSG_MAX_SLOTS && !w->overflow) {
		tp->slots[tp->nslots].off = (uint32_t)(w->len - 2);
		tp->slots[tp->nslots].width = 2;
		tp->slots[tp->nslots].kind = K_IP4;
		tp->nslots++;
	}
}

/* Encodes variant v with pad bytes of body (POST) or cookie (GET) into
 * tp->payload (capacity cap). Returns the payload length, 0 on overflow. */
static size_t build_variant(capmsg_tpl *tp, size_t cap, unsigned v, size_t pad,
                            uint64_t seed)
{
	const struct variant *va = &variants[v];
	int post = va->ctype != NULL;
	size_t body_len = post ? pad : 0;
	capmsg_slot bslots[CAPMSG_MAX_SLOTS], hslots[CAPMSG_MAX_SLOTS];
	unsigned nb = 0, nh = 0;
	struct text bt, ht;
	char *body, *hdrs;
	uint64_t rng = seed;
	spop_wbuf w;
	spop_data d;
	size_t len = 0;

	/* room past body_len: the fixed part of the document is cut to fit */
	body = malloc(body_len + 1024);
	hdrs = malloc(4096 + pad);
	if (!body || !hdrs)
		goto out;
	bt = (struct text){ body, 0, body_len + 1024, bslots, &nb, 0 };
	if (post)
		build_body(&bt, body_len, v, &rng);
	ht = (struct text){ hdrs, 0, 4096 + pad, hslots, &nh, 0 };
	build_hdrs(&ht, va, body_len, post ? 0 : pad, &rng);
	if (bt.overflow || ht.overflow || bt.len != body_len)
		goto out;

	tp->nslots = 0;
	spop_wbuf_init(&w, tp->payload, cap);
	spop_put_name(&w, "cap-req", 7);
	spop_put_bytes(&w, "\x0f", 1);            /* 15 arguments */
	spop_put_name(&w, "uid", 3);
	spop_put_str(&w, SPOP_T_STRING, "00000000-0000-4000-8000-000000000000", 36);
	if (!w.overflow) {
		tp->slots[tp->nslots++] = (capmsg_slot){ (uint32_t)(w.len - 36), 36, K_UID };
	}
	/* a 2024 timestamp: 7-byte varint, like every ms value until year 4200 */
	arg_int(tp, &w, "t", UINT64_C(1717171717171), K_TMS);
	arg_str(&w, "meth", SPOP_T_STRING, va->meth, strlen(va->meth));
	arg_str(&w, "path", SPOP_T_STRING, va->path, strlen(va->path));
	if (va->query) {
		arg_str(&w, "query", SPOP_T_STRING, va->query, strlen(va->query));
	} else {
		spop_put_name(&w, "query", 5);
		memset(&d, 0, sizeof(d));
		d.type = SPOP_T_NULL;
		spop_put_data(&w, &d);
	}
	arg_str(&w, "ver", SPOP_T_STRING, "1.1", 3);
	arg_ip4(tp, &w, "src", 10, 20, 30, 40, 1);
	arg_int(tp, &w, "sport", 40000, K_PORT);
	arg_ip4(tp, &w, "dst", 192, 0, 2, 10, 0);
	arg_int(tp, &w, "dport", 443, -1);
	spop_put_name(&w, "tls", 3);
	memset(&d, 0, sizeof(d));
	d.type = SPOP_T_BOOL;
	d.v.b = 1;
	spop_put_data(&w, &d);
	spop_put_name(&w, "hdrs", 4);
	spop_put_str(&w, SPOP_T_BINARY, hdrs, ht.len);
	if (!w.overflow)
		add_slots(tp, hslots, nh, w.len - ht.len);
	arg_int(tp, &w, "blen", body_len, -1);
	arg_int(tp, &w, "bsize", body_len, -1);
	spop_put_name(&w, "body", 4);
	spop_put_str(&w, SPOP_T_BINARY, body, body_len);
	if (!w.overflow)
		add_slots(tp, bslots, nb, w.len - body_len);
	if (!w.overflow)
		len = w.len;
out:
	free(body);
	free(hdrs);
	return len;
}

/* Frame bytes around a payload with a one-byte sid and fid. */
#define FRAME_OVERHEAD (4 + 1 + 4 + 1 + 1)

int capmsg_init(capmsg_gen *g, size_t target_size, uint32_t gen_id,
                uint64_t seed, char *err, size_t errlen)
{
	unsigned v, i;

	memset(g, 0, sizeof(*g));
	g->rng = seed ? seed : 1;
	g->gen_id = gen_id;
	for (v = 0; v < CAPMSG_VARIANTS; v++) {
		capmsg_tpl *tp = &g->tpl[v];
		size_t cap = target_size + 8192, pad = 0, len = 0, frame;

		tp->payload = malloc(cap);
		if (!tp->payload) {
			snprintf(err, errlen, "out of memory building message templates");
			capmsg_free(g);
			return -1;
		}
		/* the body/cookie pad changes a few varint lengths too: converge */
		for (i = 0; i < 6; i++) {
			len = build_variant(tp, cap, v, pad, seed + v);
			if (!len)
				break;
			frame = FRAME_OVERHEAD + len;
			if (frame == target_size || (frame > target_size && pad == 0))
				break;
			if (frame < target_size)
				pad += target_size - frame;
			else
				pad = pad > frame - target_size ? pad - (frame - target_size) : 0;
		}
		if (!len) {
			snprintf(err, errlen, "cannot build a %zu-byte message template", target_size);
			capmsg_free(g);
			return -1;
		}
		tp->payload_len = len;
		if (FRAME_OVERHEAD - 2 + 2 * SPOP_VARINT_MAX + len > g->max_frame)
			g->max_frame = FRAME_OVERHEAD - 2 + 2 * SPOP_VARINT_MAX + len;
	}
	return 0;
}

void capmsg_free(capmsg_gen *g)
{
	unsigned v;

	for (v = 0; v < CAPMSG_VARIANTS; v++) {
		free(g->tpl[v].payload);
		g->tpl[v].payload = NULL;
	}
}

size_t capmsg_avg_size(const capmsg_gen *g)
{
	size_t sum = 0;
	unsigned v;

	for (v = 0; v < CAPMSG_VARIANTS; v++)
		sum += FRAME_OVERHEAD + g->tpl[v].payload_len;
	return sum / CAPMSG_VARIANTS;
}

static void put_hex(uint8_t *p, unsigned n, uint64_t *rng)
{
	uint64_t r = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		if (!(i & 15))
			r = rnd(rng);
		p[i] = (uint8_t)hexdig[r & 15];
		r >>= 4;
	}
}

static void put_dec(uint8_t *p, unsigned n, uint64_t *rng)
{
	uint64_t r = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		if (!(i % 18))
			r = rnd(rng);
		p[i] = (uint8_t)('0' + r % 10);
		r /= 10;
	}
	if (n && p[0] == '0')
		p[0] = '7';
}

/* uuid v4 layout; the last group is the generator id and message counter,
 * so uids are unique across threads and messages. */
static void make_uid(capmsg_gen *g, uint8_t out[36])
{
	uint64_t tail = ((uint64_t)(g->gen_id & 0xff) << 40) |
	                (g->seq & UINT64_C(0xffffffffff));
	int i;

	put_hex(out, 8, &g->rng);
	out[8] = '-';
	put_hex(out + 9, 4, &g->rng);
	out[13] = '-';
	out[14] = '4';
	put_hex(out + 15, 3, &g->rng);
	out[18] = '-';
	put_hex(out + 19, 4, &g->rng);
	out[19] = (uint8_t)"89ab"[out[19] & 3];
	out[23] = '-';
	for (i = 35; i >= 24; i--) {
		out[i] = (uint8_t)hexdig[tail & 15];
		tail >>= 4;
	}
}

size_t capmsg_emit(capmsg_gen *g, uint8_t *out, uint64_t sid, int64_t now_ms)
{
	const capmsg_tpl *tp = &g->tpl[rnd(&g->rng) % CAPMSG_VARIANTS];
	uint8_t uid[36], v[SPOP_VARINT_MAX], *pl;
	size_t h, n, length;
	unsigned i;
	uint64_t r;

	g->seq++;
	h = 4;
	out[h++] = SPOP_FRAME_NOTIFY;
	out[h++] = 0; out[h++] = 0; out[h++] = 0; out[h++] = 1;   /* FIN */
	h += spop_varint_put(out + h, sid);
	out[h++] = 1;                                             /* fid */
	length = h - 4 + tp->payload_len;
	out[0] = (uint8_t)(length >> 24);
	out[1] = (uint8_t)(length >> 16);
	out[2] = (uint8_t)(length >> 8);
	out[3] = (uint8_t)length;
	pl = out + h;
	memcpy(pl, tp->payload, tp->payload_len);
	make_uid(g, uid);
	for (i = 0; i < tp->nslots; i++) {
		const capmsg_slot *s = &tp->slots[i];
		uint8_t *p = pl + s->off;

		switch (s->kind) {
		case K_UID:
			memcpy(p, uid, 36);
			break;
		case K_HEX:
			put_hex(p, s->width, &g->rng);
			break;
		case K_DEC:
			put_dec(p, s->width, &g->rng);
			break;
		case K_TMS:
			n = spop_varint_put(v, (uint64_t)now_ms);
			if (n == s->width)
				memcpy(p, v, n);
			break;
		case K_PORT:
			n = spop_varint_put(v, 32768 + rnd(&g->rng) % 28232);
			if (n == s->width)
				memcpy(p, v, n);
			break;
		case K_IP4:
			r = rnd(&g->rng);
			p[0] = (uint8_t)r;
			p[1] = (uint8_t)(1 + (r >> 8) % 254);
			break;
		}
	}
	return h + tp->payload_len;
}
