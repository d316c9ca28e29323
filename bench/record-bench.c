/* record-bench.c -- record compression figures: ratio and MB/s of
 * record_encode / record_decode for capture-like SPOE messages of ~1 KB
 * (request: addresses, typical browser headers, small JSON body) and ~8 KB
 * (response: headers and a JSON document), at zstd levels 1 and 3, without
 * and with a 64 KiB dictionary trained on a disjoint set of messages; plus
 * event JSON rendering speed. Prints a table; asserts nothing.
 *
 *   make bench/record-bench && ./bench/record-bench [-n MESSAGES] [-d DICT_BYTES]
 *
 * The generator mixes fixed vocabulary (header names, user agents, JSON
 * keys) with random ids, tokens, numbers and words, so it is less templated
 * than spool-notes' corpus but is still synthetic: measure real captures
 * before fixing sizes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spoolcap/event.h"
#include "spoolcap/record.h"

static uint64_t rs = 88172645463325252ull;

static uint32_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (uint32_t)(rs >> 32);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#define PICK(a) (a)[rnd() % (sizeof(a) / sizeof((a)[0]))]

static const char *const uas[] = {
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
	"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
	"okhttp/4.12.0",
	"curl/8.5.0",
	"python-requests/2.31.0",
};
static const char *const langs[] = {
	"en-US,en;q=0.9", "de-DE,de;q=0.9,en;q=0.8", "fr-FR,fr;q=0.9", "en-GB,en;q=0.7",
};
static const char *const accepts[] = {
	"application/json", "*/*",
	"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
};
static const char *const words[] = {
	"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
	"juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
	"sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
	"red", "green", "blue", "small", "large", "premium", "basic", "wireless", "organic",
	"cotton", "steel", "wooden", "vintage", "modern", "classic", "portable", "smart",
};
static const char *const apis[] = {
	"/api/v1/users", "/api/v1/products", "/api/v2/search", "/cart/items",
	"/static/js/app", "/checkout", "/api/v1/sessions", "/images/p",
	"/account/settings", "/api/v1/recommendations",
};

struct gen {
	uint8_t buf[65536];
	spop_wbuf w;
	uint8_t hb[16384];
	spop_wbuf h;
	char tmp[4096];
};

static void hdr(struct gen *g, const char *name, const char *val)
{
	spop_put_name(&g->h, name, strlen(name));
	spop_put_name(&g->h, val, strlen(val));
}

static void arg_str(struct gen *g, const char *name, uint8_t type, const void *p, size_t n)
{
	spop_put_name(&g->w, name, strlen(name));
	spop_put_str(&g->w, type, p, n);
}

static void arg_int(struct gen *g, const char *name, int64_t v)
{
	spop_put_name(&g->w, name, strlen(name));
	spop_put_uint(&g->w, SPOP_T_INT64, (uint64_t)v);
}

static void arg_ip4(struct gen *g, const char *name, uint32_t ip)
{
	spop_data d;

	d.type = SPOP_T_IPV4;
	d.v.ip[0] = (uint8_t)(ip >> 24);
	d.v.ip[1] = (uint8_t)(ip >> 16);
	d.v.ip[2] = (uint8_t)(ip >> 8);
	d.v.ip[3] = (uint8_t)ip;
	spop_put_name(&g->w, name, strlen(name));
	spop_put_data(&g->w, &d);
}

static char *hex(char *o, unsigned n)
{
	static const char x[] = "0123456789abcdef";

	while (n--)
		*o++ = x[rnd() & 15];
	*o = '\0';
	return o;
}

static void uuid(char *o)
{
	hex(o, 8);
	o[8] = '-';
	hex(o + 9, 4);
	o[13] = '-';
	hex(o + 14, 4);
	o[14] = '4';
	o[18] = '-';
	hex(o + 19, 4);
	o[23] = '-';
	hex(o + 24, 12);
}

static int64_t clock_ms = 1795670945000;

/* JSON body of about target bytes. */
static size_t body_json(char *o, size_t cap, size_t target)
{
	size_t n = 0;
	unsigned i = 0;

	n += (size_t)snprintf(o + n, cap - n, "{\"request_id\":\"%08x%08x\",\"page\":%u,\"items\":[",
	                      rnd(), rnd(), rnd() % 50);
	while (n + 300 < target && n + 400 < cap) {
		n += (size_t)snprintf(o + n, cap - n,
			"%s{\"id\":%u,\"sku\":\"SKU-%06u\",\"name\":\"%s %s %s\",\"price\":%u.%02u,"
			"\"currency\":\"EUR\",\"in_stock\":%s,\"rating\":%u.%u,\"tags\":[\"%s\",\"%s\"],"
			"\"updated\":\"2026-11-%02uT%02u:%02u:%02uZ\"}",
			i++ ? "," : "", rnd() % 1000000, rnd() % 1000000, PICK(words), PICK(words),
			PICK(words), rnd() % 500, rnd() % 100, rnd() % 4 ? "true" : "false",
			rnd() % 5, rnd() % 10, PICK(words), PICK(words), 1 + rnd() % 28, rnd() % 24,
			rnd() % 60, rnd() % 60);
	}
	n += (size_t)snprintf(o + n, cap - n, "],\"total\":%u}", rnd() % 10000);
	return n;
}

/* ~1 KB: a cap-req message as in ref §5.4. */
static size_t gen_req(struct gen *g)
{
	char id[40], path[128], cookie[256], tp[64], ref[200], xff[20], body[1024];
	int post = rnd() % 4 == 0;
	size_t blen = 0;

	spop_wbuf_init(&g->w, g->buf, sizeof g->buf);
	spop_wbuf_init(&g->h, g->hb, sizeof g->hb);
	uuid(id);
	snprintf(path, sizeof path, "%s/%u", PICK(apis), rnd() % 100000);
	snprintf(cookie, sizeof cookie, "session=%08x%08x%08x%08x; _ga=GA1.2.%u.%u; theme=%s; consent=%s",
	         rnd(), rnd(), rnd(), rnd(), rnd(), 1700000000 + rnd() % 90000000,
	         rnd() % 2 ? "dark" : "light", rnd() % 2 ? "all" : "essential");
	snprintf(tp, sizeof tp, "00-%08x%08x%08x%08x-%08x%08x-01", rnd(), rnd(), rnd(), rnd(), rnd(), rnd());
	snprintf(ref, sizeof ref, "https://shop.example.com%s", PICK(apis));
	snprintf(xff, sizeof xff, "%u.%u.%u.%u", 1 + rnd() % 223, rnd() % 256, rnd() % 256, rnd() % 256);
	hdr(g, "host", "shop.example.com");
	hdr(g, "user-agent", PICK(uas));
	hdr(g, "accept", PICK(accepts));
	hdr(g, "accept-language", PICK(langs));
	hdr(g, "accept-encoding", "gzip, deflate, br");
	hdr(g, "cookie", cookie);
	hdr(g, "referer", ref);
	hdr(g, "x-forwarded-for", xff);
	hdr(g, "x-request-id", id);
	hdr(g, "traceparent", tp);
	if (post) {
		blen = (size_t)snprintf(body, sizeof body,
			"{\"user_id\":%u,\"cart\":[{\"sku\":\"SKU-%06u\",\"qty\":%u},{\"sku\":\"SKU-%06u\",\"qty\":%u}],"
			"\"coupon\":\"%s%u\",\"address\":{\"city\":\"%s\",\"zip\":\"%05u\"}}",
			rnd() % 1000000, rnd() % 1000000, 1 + rnd() % 5, rnd() % 1000000, 1 + rnd() % 5,
			PICK(words), rnd() % 100, PICK(words), rnd() % 100000);
		hdr(g, "content-type", "application/json");
		snprintf(g->tmp, sizeof g->tmp, "%zu", blen);
		hdr(g, "content-length", g->tmp);
	}
	spop_put_bytes(&g->h, "\0\0", 2);

	spop_put_name(&g->w, "cap-req", 7);
	spop_put_bytes(&g->w, "\x0f", 1);
	arg_str(g, "uid", SPOP_T_STRING, id, 36);
	arg_int(g, "t", clock_ms += rnd() % 5);
	arg_str(g, "meth", SPOP_T_STRING, post ? "POST" : "GET", post ? 4 : 3);
	arg_str(g, "path", SPOP_T_STRING, path, strlen(path));
	if (rnd() % 3) {
		spop_put_name(&g->w, "query", 5);
		spop_put_bytes(&g->w, "\0", 1);
	} else {
		snprintf(g->tmp, sizeof g->tmp, "q=%s+%s&page=%u", PICK(words), PICK(words), rnd() % 20);
		arg_str(g, "query", SPOP_T_STRING, g->tmp, strlen(g->tmp));
	}
	arg_str(g, "ver", SPOP_T_STRING, rnd() % 2 ? "2.0" : "1.1", 3);
	arg_ip4(g, "src", rnd());
	arg_int(g, "sport", 1024 + rnd() % 64000);
	arg_ip4(g, "dst", 0x0a000005);
	arg_int(g, "dport", 443);
	spop_put_name(&g->w, "tls", 3);
	spop_put_bytes(&g->w, "\x11", 1);
	arg_str(g, "hdrs", SPOP_T_BINARY, g->hb, g->h.len);
	arg_int(g, "blen", (int64_t)blen);
	arg_int(g, "bsize", (int64_t)blen);
	arg_str(g, "body", SPOP_T_BINARY, body, blen);
	return g->w.overflow ? 0 : g->w.len;
}

/* ~8 KB: a cap-res message with a JSON document. */
static size_t gen_res(struct gen *g)
{
	char id[40], etag[40], date[64], cookie[128];
	static char body[16384];
	size_t blen;

	spop_wbuf_init(&g->w, g->buf, sizeof g->buf);
	spop_wbuf_init(&g->h, g->hb, sizeof g->hb);
	uuid(id);
	hex(etag, 16);
	snprintf(date, sizeof date, "Thu, 26 Nov 2026 %02u:%02u:%02u GMT", rnd() % 24, rnd() % 60, rnd() % 60);
	snprintf(cookie, sizeof cookie, "session=%08x%08x%08x%08x; Path=/; HttpOnly; Secure; SameSite=Lax",
	         rnd(), rnd(), rnd(), rnd());
	blen = body_json(body, sizeof body, 6900 + rnd() % 600);
	hdr(g, "content-type", "application/json; charset=utf-8");
	snprintf(g->tmp, sizeof g->tmp, "%zu", blen);
	hdr(g, "content-length", g->tmp);
	hdr(g, "date", date);
	hdr(g, "server", "nginx/1.24.0");
	hdr(g, "cache-control", "private, no-cache, no-store, must-revalidate");
	hdr(g, "etag", etag);
	hdr(g, "vary", "Accept-Encoding, Origin");
	if (rnd() % 3 == 0)
		hdr(g, "set-cookie", cookie);
	hdr(g, "x-request-id", id);
	hdr(g, "strict-transport-security", "max-age=31536000; includeSubDomains");
	spop_put_bytes(&g->h, "\0\0", 2);

	spop_put_name(&g->w, "cap-res", 7);
	spop_put_bytes(&g->w, "\x08", 1);
	arg_str(g, "uid", SPOP_T_STRING, id, 36);
	arg_int(g, "t", clock_ms += rnd() % 5);
	arg_int(g, "status", rnd() % 20 ? 200 : 404);
	arg_str(g, "ver", SPOP_T_STRING, "1.1", 3);
	arg_str(g, "srv", SPOP_T_STRING, "app1", 4);
	arg_str(g, "hdrs", SPOP_T_BINARY, g->hb, g->h.len);
	arg_int(g, "blen", (int64_t)blen);
	arg_str(g, "body", SPOP_T_BINARY, body, blen);
	return g->w.overflow ? 0 : g->w.len;
}

struct set {
	uint8_t *data;
	size_t *off, *len;
	size_t n, bytes;
};

static void set_free(struct set *s)
{
	free(s->data);
	free(s->off);
	free(s->len);
}

static void set_build(struct set *s, size_t n, size_t (*gen)(struct gen *))
{
	static struct gen g;
	size_t i, cap = n * 12000;

	s->data = malloc(cap);
	s->off = malloc(n * sizeof *s->off);
	s->len = malloc(n * sizeof *s->len);
	s->n = n;
	s->bytes = 0;
	for (i = 0; i < n; i++) {
		size_t l = gen(&g);

		s->off[i] = s->bytes;
		s->len[i] = l;
		memcpy(s->data + s->bytes, g.buf, l);
		s->bytes += l;
	}
}

/* Raw payloads of a message set: what the spool would train on. */
static void payloads(const struct set *s, struct set *p)
{
	record_cctx *c = record_cctx_new(0, NULL, 0);
	record_buf out = { 0 };
	record_meta m;
	size_t i;

	memset(&m, 0, sizeof m);
	m.engine_id.ptr = (const uint8_t *)"9b1c6f1e-2f7d-4c53-a8b4-5f0e3d2a1c77";
	m.engine_id.len = 36;
	for (i = 0; i < s->n; i++)
		record_encode(c, NULL, &m, s->data + s->off[i], s->len[i], &out);
	p->data = malloc(out.len);
	p->off = malloc(s->n * sizeof *p->off);
	p->len = malloc(s->n * sizeof *p->len);
	p->n = s->n;
	p->bytes = 0;
	/* Strip the 24-byte record header (level 0 stores the payload raw). */
	for (i = 0; i < s->n; i++) {
		size_t l = RECORD_PAYLOAD_HDR + 36 + s->len[i];

		p->off[i] = p->bytes;
		p->len[i] = l;
		memcpy(p->data + p->bytes, out.data + i * (RECORD_HDR_SIZE) + p->bytes + RECORD_HDR_SIZE, l);
		p->bytes += l;
	}
	record_buf_free(&out);
	record_cctx_free(c);
}

static const record_dict *lookup(void *arg, uint32_t id)
{
	return arg && record_dict_id(arg) == id ? arg : NULL;
}

static void run(const char *label, const struct set *s, int level, record_dict *dict)
{
	record_cctx *c = record_cctx_new(level, NULL, 0);
	record_dctx *d = record_dctx_new();
	record_slot *slot = NULL;
	record_buf out = { 0 }, raw = { 0 };
	size_t i, *roff = malloc(s->n * sizeof *roff), rawbytes = 0;
	record_meta m;
	json_buf jb;
	double t0, tc, td, tj;
	size_t jbytes = 0;

	memset(&m, 0, sizeof m);
	m.engine_id.ptr = (const uint8_t *)"9b1c6f1e-2f7d-4c53-a8b4-5f0e3d2a1c77";
	m.engine_id.len = 36;
	if (dict) {
		slot = record_slot_new();
		record_slot_set(slot, dict);
	}
	t0 = now();
	for (i = 0; i < s->n; i++) {
		roff[i] = out.len;
		m.recv_ns = 1795670945000000000LL + (int64_t)i * 1000;
		m.sid = i;
		if (record_encode(c, slot, &m, s->data + s->off[i], s->len[i], &out) != 0) {
			fprintf(stderr, "encode failed\n");
			exit(1);
		}
	}
	tc = now() - t0;
	rawbytes = s->bytes + s->n * (RECORD_PAYLOAD_HDR + 36);

	t0 = now();
	for (i = 0; i < s->n; i++) {
		size_t end = i + 1 < s->n ? roff[i + 1] : out.len;
		char err[200];

		if (record_decode(d, out.data + roff[i], end - roff[i], lookup, dict, &raw, NULL,
		                  NULL, err, sizeof err) != 0) {
			fprintf(stderr, "decode failed: %s\n", err);
			exit(1);
		}
	}
	td = now() - t0;

	/* Decode + render, as the replay path does. */
	json_init(&jb, 1 << 26);
	t0 = now();
	for (i = 0; i < s->n; i++) {
		size_t end = i + 1 < s->n ? roff[i + 1] : out.len;
		record_view v;

		record_decode(d, out.data + roff[i], end - roff[i], lookup, dict, &raw, NULL, &v, NULL, 0);
		json_reset(&jb);
		event_render(&jb, &v, i, "4e1f0c7a-95d2-4b8e-b1a3-0c6d2e9f8a71", NULL);
		jbytes += jb.len + 1;
	}
	tj = now() - t0;

	printf("%-4s level %2d  %-9s  %6zu B/msg -> %5zu B stored  ratio %5.2f  "
	       "compress %6.0f MB/s  decompress %6.0f MB/s  decode+JSON %7.0f ev/s (%4.0f MB/s JSON)\n",
	       label, level, dict ? "64K dict" : "no dict", rawbytes / s->n, out.len / s->n,
	       (double)rawbytes / (double)out.len, rawbytes / tc / 1e6, rawbytes / td / 1e6,
	       s->n / tj, jbytes / tj / 1e6);
	fflush(stdout);
	json_free(&jb);
	free(roff);
	record_buf_free(&out);
	record_buf_free(&raw);
	record_slot_free(slot);
	record_cctx_free(c);
	record_dctx_free(d);
}

/* event_render alone over already decoded payloads: the JSON writer. */
static void run_json(const char *label, const struct set *s)
{
	struct set p;
	json_buf jb;
	size_t i, jbytes = 0;
	double t0, t;
	int rep;

	payloads(s, &p);
	json_init(&jb, 1 << 26);
	t0 = now();
	for (rep = 0; rep < 3; rep++) {
		for (i = 0; i < p.n; i++) {
			record_view v;

			record_parse_payload(p.data + p.off[i], p.len[i], &v);
			json_reset(&jb);
			event_render(&jb, &v, i, "4e1f0c7a-95d2-4b8e-b1a3-0c6d2e9f8a71", NULL);
			jbytes += jb.len + 1;
		}
	}
	t = now() - t0;
	printf("%-4s JSON only (parse payload + event_render): %8.0f ev/s, %4.0f MB/s of JSON, %zu B/event\n",
	       label, 3 * p.n / t, jbytes / t / 1e6, jbytes / (3 * p.n));
	json_free(&jb);
	set_free(&p);
}

int main(int argc, char **argv)
{
	size_t n = 20000, dsize = 65536;
	struct set req, res, treq, tres, preq, pres;
	int opt, levels[] = { 1, 3 };
	unsigned li;

	while ((opt = getopt(argc, argv, "n:d:")) != -1) {
		if (opt == 'n')
			n = strtoul(optarg, NULL, 10);
		else if (opt == 'd')
			dsize = strtoul(optarg, NULL, 10);
		else {
			fprintf(stderr, "usage: %s [-n MESSAGES] [-d DICT_BYTES]\n", argv[0]);
			return 2;
		}
	}
	/* Training sets come first from the generator, so they are disjoint
	 * from the measured sets. */
	set_build(&treq, 5000, gen_req);
	set_build(&tres, 1500, gen_res);
	set_build(&req, n, gen_req);
	set_build(&res, n / 4, gen_res);
	payloads(&treq, &preq);
	payloads(&tres, &pres);

	for (li = 0; li < 2; li++) {
		int level = levels[li];
		char err[256];
		double t0 = now(), t1;
		record_dict *dq = record_dict_train(preq.data, preq.len, (unsigned)preq.n, dsize,
		                                    40000, level, err, sizeof err);
		record_dict *ds;

		t1 = now();
		ds = record_dict_train(pres.data, pres.len, (unsigned)pres.n, dsize, 40001, level,
		                       err, sizeof err);
		if (!dq || !ds) {
			fprintf(stderr, "training failed: %s\n", err);
			return 1;
		}
		printf("# level %d: dictionaries trained on %zu x ~1 KB (%.2f s) and %zu x ~8 KB (%.2f s)\n",
		       level, preq.n, t1 - t0, pres.n, now() - t1);
		run("1KB", &req, level, NULL);
		run("1KB", &req, level, dq);
		run("8KB", &res, level, NULL);
		run("8KB", &res, level, ds);
		record_dict_unref(dq);
		record_dict_unref(ds);
	}
	run_json("1KB", &req);
	run_json("8KB", &res);
	set_free(&req);
	set_free(&res);
	set_free(&treq);
	set_free(&tres);
	set_free(&preq);
	set_free(&pres);
	return 0;
}
