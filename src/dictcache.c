/* dictcache.c -- in-memory table of the spool's dictionaries and the record
 * hooks the spool uses to read headers and validate records. */
#include "spoolcap/dictcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dictcache {
	pthread_mutex_t mu;            /* serialises additions and validation */
	record_dict    *d[DICTCACHE_MAX];
	atomic_uint     n;             /* published entries; lookups read up to it */
	record_dctx    *vdctx;         /* validation's decoder (under mu) */
	record_buf      vbuf;
	int             level;
};

dictcache *dictcache_new(int level)
{
	dictcache *dc = calloc(1, sizeof *dc);

	if (!dc)
		return NULL;
	dc->level = level;
	pthread_mutex_init(&dc->mu, NULL);
	atomic_init(&dc->n, 0);
	return dc;
}

void dictcache_free(dictcache *dc)
{
	unsigned i, n;

	if (!dc)
		return;
	n = atomic_load(&dc->n);
	for (i = 0; i < n; i++)
		record_dict_unref(dc->d[i]);
	record_dctx_free(dc->vdctx);
	record_buf_free(&dc->vbuf);
	pthread_mutex_destroy(&dc->mu);
	free(dc);
}

const record_dict *dictcache_lookup(void *arg, uint32_t id)
{
	dictcache *dc = arg;
	unsigned i, n = atomic_load_explicit(&dc->n, memory_order_acquire);

	for (i = 0; i < n; i++)
		if (record_dict_id(dc->d[i]) == id)
			return dc->d[i];
	return NULL;
}

int dictcache_add(dictcache *dc, record_dict *d)
{
	unsigned n;
	int rc = 0;

	pthread_mutex_lock(&dc->mu);
	n = atomic_load(&dc->n);
	if (dictcache_lookup(dc, record_dict_id(d)))
		goto out;
	if (n == DICTCACHE_MAX) {
		rc = -1;
		goto out;
	}
	dc->d[n] = record_dict_ref(d);
	atomic_store_explicit(&dc->n, n + 1, memory_order_release);
out:
	pthread_mutex_unlock(&dc->mu);
	return rc;
}

record_dict *dictcache_newest(dictcache *dc)
{
	unsigned i, n = atomic_load_explicit(&dc->n, memory_order_acquire);
	record_dict *best = NULL;

	for (i = 0; i < n; i++)
		if (!best || record_dict_id(dc->d[i]) > record_dict_id(best))
			best = dc->d[i];
	return best;
}

/* Collects ids first: spool_dict_get may not run inside the list callback. */
struct idlist {
	uint32_t ids[DICTCACHE_MAX];
	unsigned n;
};

static int collect_id(const spool_dict_info *d, void *user)
{
	struct idlist *l = user;

	if (l->n < DICTCACHE_MAX)
		l->ids[l->n++] = d->id;
	return 0;
}

int dictcache_load(dictcache *dc, spool *sp, char *err, size_t errlen)
{
	struct idlist l = { .n = 0 };
	unsigned i;
	int added = 0;

	if (spool_dict_list(sp, collect_id, &l) < 0) {
		snprintf(err, errlen, "cannot list dictionaries: %s", spool_errmsg());
		return -1;
	}
	for (i = 0; i < l.n; i++) {
		void *buf;
		size_t len;
		record_dict *d;
		char derr[256];

		if (dictcache_lookup(dc, l.ids[i]))
			continue;
		if (spool_dict_get(sp, l.ids[i], &buf, &len) < 0) {
			snprintf(err, errlen, "cannot read dictionary %u: %s",
			         l.ids[i], spool_errmsg());
			return -1;
		}
		/* With a level, a CDict is digested too, so the daemon keeps
		 * compressing with a dictionary it stored in an earlier run. */
		d = record_dict_new(buf, len, dc->level, derr, sizeof derr);
		free(buf);
		if (!d) {
			/* A damaged dictionary only makes its records undecodable
			 * (they dead-letter as "dict"); keep going. */
			snprintf(err, errlen, "dictionary %u unusable: %s", l.ids[i], derr);
			continue;
		}
		if (dictcache_add(dc, d) < 0) {
			record_dict_unref(d);
			snprintf(err, errlen, "more than %d dictionaries", DICTCACHE_MAX);
			return -1;
		}
		record_dict_unref(d);
		added++;
	}
	return added;
}

static uint32_t hook_dict_id(const void *val, size_t len, void *user)
{
	record_hdr h;

	(void)user;
	return record_hdr_parse(val, len, &h) == 0 ? h.dict_id : 0;
}

static int64_t hook_time_ns(const void *val, size_t len, void *user)
{
	record_hdr h;

	(void)user;
	return record_hdr_parse(val, len, &h) == 0 ? h.time_ns : -1;
}

static int hook_validate(const void *val, size_t len, char *why, size_t whylen,
                         void *user)
{
	dictcache *dc = user;
	char detail[200] = "";
	int rc;

	pthread_mutex_lock(&dc->mu);
	if (!dc->vdctx)
		dc->vdctx = record_dctx_new();
	rc = dc->vdctx ? record_decode(dc->vdctx, val, len, dictcache_lookup, dc,
	                               &dc->vbuf, NULL, NULL, detail, sizeof detail)
	               : RECORD_ENOMEM;
	pthread_mutex_unlock(&dc->mu);
	if (rc != 0)
		/* the detail, when there is one, already starts with the error */
		snprintf(why, whylen, "%s", detail[0] ? detail : record_strerror(rc));
	return rc != 0;
}

void dictcache_header_hooks(spool_hooks *h)
{
	h->dict_id = hook_dict_id;
	h->time_ns = hook_time_ns;
	h->validate = NULL;
	h->user = NULL;
}

void dictcache_hooks(dictcache *dc, spool_hooks *h)
{
	dictcache_header_hooks(h);
	h->validate = hook_validate;
	h->user = dc;
}
