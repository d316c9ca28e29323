/* sink_count.c -- the counting sink: completes every NOTIFY at once and only
 * counts NOTIFYs and messages (per message name, first 32 names). At debug
 * level it logs one line per message, "message NAME uid=VALUE", VALUE being
 * the argument named "uid" or "unique-id" ("-" when absent or NULL); the
 * end-to-end tests parse exactly that. Names and values are escaped with
 * log_escape, so they never contain spaces.
 *
 * Lock-free: each I/O thread writes only its own shard (indexed by
 * sink_notify.worker) and the summary sums them; one agent per sink. */
#include <config.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spoolcap/log.h"
#include "spoolcap/sink.h"
#include "spoolcap/spop.h"

#define NAMES_MAX 32
#define NAME_LEN  64

typedef _Atomic uint64_t ctr;

struct name_count {
	uint8_t  name[NAME_LEN];
	size_t   len;
	ctr      count;
};

struct shard {
	ctr      notifies, messages, unnamed;   /* unnamed: past NAMES_MAX or too long */
	_Atomic unsigned nnames;                /* published after names[i] is filled */
	struct name_count names[NAMES_MAX];
};

struct sink_count {
	sink base;
	struct shard *_Atomic shards[SINK_WORKERS_MAX];
};

/* Single writer per shard: a relaxed load+store is enough (no lock prefix). */
static void inc(ctr *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

static void count_name(struct shard *sh, spop_str name)
{
	unsigned n = atomic_load_explicit(&sh->nnames, memory_order_relaxed);

	for (unsigned i = 0; i < n; i++) {
		struct name_count *nc = &sh->names[i];
		if (nc->len == name.len && memcmp(nc->name, name.ptr, name.len) == 0) {
			inc(&nc->count, 1);
			return;
		}
	}
	if (n == NAMES_MAX || name.len > NAME_LEN) {
		inc(&sh->unnamed, 1);
		return;
	}
	memcpy(sh->names[n].name, name.ptr, name.len);
	sh->names[n].len = name.len;
	atomic_store_explicit(&sh->names[n].count, 1, memory_order_relaxed);
	atomic_store_explicit(&sh->nnames, n + 1, memory_order_release);
}

static void format_value(char *out, size_t len, const spop_data *d)
{
	char ip[INET6_ADDRSTRLEN];

	switch (d->type) {
	case SPOP_T_BOOL:
		snprintf(out, len, "%s", d->v.b ? "true" : "false");
		break;
	case SPOP_T_INT32:
	case SPOP_T_INT64:
		snprintf(out, len, "%" PRId64, d->v.i);
		break;
	case SPOP_T_UINT32:
	case SPOP_T_UINT64:
		snprintf(out, len, "%" PRIu64, d->v.u);
		break;
	case SPOP_T_IPV4:
	case SPOP_T_IPV6:
		inet_ntop(d->type == SPOP_T_IPV4 ? AF_INET : AF_INET6, d->v.ip, ip, sizeof(ip));
		snprintf(out, len, "%s", ip);
		break;
	case SPOP_T_STRING:
	case SPOP_T_BINARY:
		if (d->v.s.len == 0)
			snprintf(out, len, "\"\"");
		else
			log_escape(out, len, d->v.s.ptr, d->v.s.len);
		break;
	default:
		snprintf(out, len, "-");
		break;
	}
}

static void log_message(const spop_msg *m)
{
	char name[NAME_LEN * 4 + 1], uid[256] = "-";
	spop_iter args = m->args;
	spop_str an;
	spop_data v;

	while (spop_arg_next(&args, &an, &v) > 0) {
		if ((an.len == 3 && memcmp(an.ptr, "uid", 3) == 0) ||
		    (an.len == 9 && memcmp(an.ptr, "unique-id", 9) == 0)) {
			format_value(uid, sizeof(uid), &v);
			break;
		}
	}
	log_escape(name, sizeof(name), m->name.ptr, m->name.len);
	log_msg(LOGL_DEBUG, "message %s uid=%s", name[0] ? name : "\"\"", uid);
}

static int count_submit(sink *s, const sink_notify *n, sink_done_fn *done, void *arg,
                        uint64_t token)
{
	struct sink_count *sc = (struct sink_count *)s;
	unsigned w = n->worker % SINK_WORKERS_MAX;
	struct shard *sh = atomic_load_explicit(&sc->shards[w], memory_order_acquire);
	int debug = log_level >= LOGL_DEBUG;
	spop_iter it;
	spop_msg m;

	(void)done;
	(void)arg;
	(void)token;
	if (!sh) {
		sh = calloc(1, sizeof(*sh));
		if (!sh)
			return SINK_DROPPED;
		atomic_store_explicit(&sc->shards[w], sh, memory_order_release);
	}
	inc(&sh->notifies, 1);
	inc(&sh->messages, n->nmsgs);
	spop_iter_init(&it, n->msgs, n->msgs_len);
	while (spop_msg_next(&it, &m) > 0) {
		count_name(sh, m.name);
		if (debug)
			log_message(&m);
	}
	return SINK_SPOOLED;
}

struct total {
	uint64_t notifies, messages, unnamed;
	unsigned nnames;
	struct { const uint8_t *name; size_t len; uint64_t count; } names[NAMES_MAX];
};

static void sum(struct sink_count *sc, struct total *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned w = 0; w < SINK_WORKERS_MAX; w++) {
		struct shard *sh = atomic_load_explicit(&sc->shards[w], memory_order_acquire);
		unsigned n;
		if (!sh)
			continue;
		t->notifies += atomic_load_explicit(&sh->notifies, memory_order_relaxed);
		t->messages += atomic_load_explicit(&sh->messages, memory_order_relaxed);
		t->unnamed += atomic_load_explicit(&sh->unnamed, memory_order_relaxed);
		n = atomic_load_explicit(&sh->nnames, memory_order_acquire);
		for (unsigned i = 0; i < n; i++) {
			struct name_count *nc = &sh->names[i];
			uint64_t c = atomic_load_explicit(&nc->count, memory_order_relaxed);
			unsigned j;
			for (j = 0; j < t->nnames; j++)
				if (t->names[j].len == nc->len &&
				    memcmp(t->names[j].name, nc->name, nc->len) == 0)
					break;
			if (j == t->nnames) {
				if (t->nnames == NAMES_MAX) {
					t->unnamed += c;
					continue;
				}
				t->names[j].name = nc->name;
				t->names[j].len = nc->len;
				t->nnames++;
			}
			t->names[j].count += c;
		}
	}
}

static void count_summary(sink *s, char *buf, size_t len)
{
	struct total t;
	size_t o;
	int r;

	sum((struct sink_count *)s, &t);
	r = snprintf(buf, len, "counting sink: %" PRIu64 " notifies, %" PRIu64 " messages", t.notifies,
	             t.messages);
	o = r < 0 ? 0 : (size_t)r;
	for (unsigned i = 0; i < t.nnames && o < len; i++) {
		char name[NAME_LEN * 4 + 1];
		log_escape(name, sizeof(name), t.names[i].name, t.names[i].len);
		r = snprintf(buf + o, len - o, "%s%s %" PRIu64, i ? ", " : " (",
		             name[0] ? name : "\"\"", t.names[i].count);
		o += r < 0 ? 0 : (size_t)r;
	}
	if (t.unnamed && o < len) {
		r = snprintf(buf + o, len - o, "%sother names %" PRIu64, t.nnames ? ", " : " (",
		             t.unnamed);
		o += r < 0 ? 0 : (size_t)r;
	}
	if ((t.nnames || t.unnamed) && o < len)
		snprintf(buf + o, len - o, ")");
}

static void count_destroy(sink *s)
{
	struct sink_count *sc = (struct sink_count *)s;

	if (!sc)
		return;
	for (unsigned w = 0; w < SINK_WORKERS_MAX; w++)
		free(atomic_load_explicit(&sc->shards[w], memory_order_relaxed));
	free(sc);
}

sink *sink_count_new(void)
{
	struct sink_count *sc = calloc(1, sizeof(*sc));

	if (!sc)
		return NULL;
	sc->base.name = "count";
	sc->base.submit = count_submit;
	sc->base.summary = count_summary;
	sc->base.destroy = count_destroy;
	return &sc->base;
}

uint64_t sink_count_messages(sink *s)
{
	struct total t;

	sum((struct sink_count *)s, &t);
	return t.messages;
}
