/* t-spool-sink.c -- the spool sink: NOTIFYs submitted from several I/O
 * threads come back as completions only after their records are in the
 * spool, byte-identical; dictionaries are trained, stored before use and
 * reused after a restart; receipt mode, empty NOTIFYs and a full spool
 * give the documented results. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spoolcap/dictcache.h"
#include "spoolcap/log.h"
#include "spoolcap/record.h"
#include "spoolcap/spool.h"
#include "spoolcap/spool_sink.h"
#include "spoolcap/spop.h"
#include "tap.h"

#define NTHREADS 2
#define PER_THREAD 1500
#define MSGS_PER_NOTIFY 2

struct done_log {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned n, spooled, dropped;
	unsigned char *seen;         /* by token */
	unsigned dup;
};

static void on_done(void *arg, uint64_t token, int result)
{
	struct done_log *d = arg;

	pthread_mutex_lock(&d->mu);
	if (d->seen[token]++)
		d->dup++;
	d->n++;
	if (result == SINK_SPOOLED)
		d->spooled++;
	else
		d->dropped++;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

static int wait_done(struct done_log *d, unsigned want)
{
	struct timespec ts;
	int ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	pthread_mutex_lock(&d->mu);
	while (d->n < want && pthread_cond_timedwait(&d->cv, &d->mu, &ts) == 0)
		;
	ok = d->n >= want;
	pthread_mutex_unlock(&d->mu);
	return ok;
}

/* Body size of the messages below; a test raises it for large messages. */
static size_t body_size = 600;

/* One capture-like message: uid "u-<k>" and a body that varies with k. */
static size_t build_msg(uint8_t *out, size_t cap, unsigned k, const char *name)
{
	spop_wbuf w;
	char uid[32], body[8192];
	int n;
	size_t blen;

	spop_wbuf_init(&w, out, cap);
	snprintf(uid, sizeof uid, "u-%u", k);
	n = snprintf(body, sizeof body, "{\"order\":%u,\"customer\":\"c%u\",\"items\":[", k, k % 97);
	blen = (size_t)n;
	while (blen + 40 < body_size)
		blen += (size_t)snprintf(body + blen, body_size - blen,
		                         "{\"sku\":%u,\"qty\":%u},", (k * 7 + (unsigned)blen) % 1000,
		                         (unsigned)blen % 9);
	spop_put_name(&w, name, strlen(name));
	spop_put_bytes(&w, "\x03", 1);
	spop_put_name(&w, "uid", 3);
	spop_put_str(&w, SPOP_T_STRING, uid, strlen(uid));
	spop_put_name(&w, "t", 1);
	spop_put_uint(&w, SPOP_T_INT64, 1795670945000ULL + k);
	spop_put_name(&w, "body", 4);
	spop_put_str(&w, SPOP_T_BINARY, body, blen);
	return w.overflow ? 0 : w.len;
}

/* A NOTIFY payload with MSGS_PER_NOTIFY messages for notify number k. */
static size_t build_notify(uint8_t *out, size_t cap, unsigned k, size_t *lens)
{
	size_t a = build_msg(out, cap, k * 2, "cap-req");
	size_t b = build_msg(out + a, cap - a, k * 2 + 1, "cap-res");

	lens[0] = a;
	lens[1] = b;
	return a + b;
}

struct submitter {
	sink *s;
	struct done_log *d;
	unsigned worker, first, count;
};

static void *submit_run(void *arg)
{
	struct submitter *t = arg;
	uint8_t buf[20000];
	size_t lens[2];
	unsigned i;

	for (i = 0; i < t->count; i++) {
		unsigned k = t->first + i;
		sink_notify n = {
			.msgs = buf, .nmsgs = MSGS_PER_NOTIFY, .sid = k, .fid = 1,
			.engine_id = { (const uint8_t *)"engine-a", 8 },
			.recv_ns = 1795670945000000000LL + k, .worker = t->worker,
			.peer = "test",
		};
		int r;

		n.msgs_len = build_notify(buf, sizeof buf, k, lens);
		r = t->s->submit(t->s, &n, on_done, t->d, k);
		if (r != SINK_PENDING)
			on_done(t->d, k, r);
	}
	return NULL;
}

/* Reads every record back and compares it with what was sent. */
struct verify {
	record_dctx *dctx;
	dictcache *dc;
	record_buf raw;
	unsigned n, bad, with_dict;
	unsigned char *seen;         /* by message number */
	uint64_t last_seq;
	int order_ok;
};

static int verify_cb(uint64_t seq, const void *val, size_t len, void *user)
{
	struct verify *v = user;
	record_view view;
	record_hdr h;
	uint8_t want[20000];
	size_t lens[2], off;
	unsigned k, idx;
	char err[200];

	if (seq <= v->last_seq)
		v->order_ok = 0;
	v->last_seq = seq;
	v->n++;
	if (record_decode(v->dctx, val, len, dictcache_lookup, v->dc, &v->raw, &h, &view,
	                  err, sizeof err) != 0) {
		tap_diag("seq %llu does not decode: %s", (unsigned long long)seq, err);
		v->bad++;
		return 0;
	}
	if (h.flags & RECORD_F_DICT)
		v->with_dict++;
	k = (unsigned)view.sid;
	idx = view.msg_index;
	build_notify(want, sizeof want, k, lens);
	off = idx ? lens[0] : 0;
	if (idx > 1 || view.msg.raw.len != lens[idx] ||
	    memcmp(view.msg.raw.ptr, want + off, lens[idx]) != 0 ||
	    view.recv_ns != 1795670945000000000LL + k || view.fid != 1 ||
	    view.engine_id.len != 8 || memcmp(view.engine_id.ptr, "engine-a", 8) != 0) {
		tap_diag("seq %llu: content differs from notify %u message %u",
		         (unsigned long long)seq, k, idx);
		v->bad++;
		return 0;
	}
	if (v->seen[k * 2 + idx]++)
		v->bad++;
	return 0;
}

static char dir[] = "/tmp/t-spool-sink-XXXXXX";

static spool *open_spool(uint64_t max_size)
{
	spool_config cfg;
	spool *sp = NULL;
	char err[512];

	memset(&cfg, 0, sizeof cfg);
	cfg.max_size = max_size;
	if (spool_open(&sp, dir, &cfg, SPOOL_MODE_AGENT, err, sizeof err) < 0)
		tap_diag("spool_open: %s", err);
	return sp;
}

static void run_load(sink *s, struct done_log *d, unsigned first)
{
	pthread_t th[NTHREADS];
	struct submitter t[NTHREADS];
	unsigned i;

	for (i = 0; i < NTHREADS; i++) {
		t[i] = (struct submitter){ s, d, i, first + i * PER_THREAD, PER_THREAD };
		pthread_create(&th[i], NULL, submit_run, &t[i]);
	}
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
}

static void done_init(struct done_log *d, unsigned n)
{
	memset(d, 0, sizeof *d);
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	d->seen = calloc(n, 1);
}

static void done_free(struct done_log *d)
{
	free(d->seen);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
}

static void verify_spool(spool *sp, unsigned notifies, const char *what)
{
	struct verify v;
	spool_stats st;
	unsigned i, missing = 0;
	char err[256];

	memset(&v, 0, sizeof v);
	v.dctx = record_dctx_new();
	v.dc = dictcache_new(0);
	v.seen = calloc(notifies * 2, 1);
	v.order_ok = 1;
	if (dictcache_load(v.dc, sp, err, sizeof err) < 0)
		tap_diag("dictcache_load: %s", err);
	spool_scan(sp, 0, 0, 0, verify_cb, &v);
	for (i = 0; i < notifies * 2; i++)
		if (!v.seen[i])
			missing++;
	tap_is_int(v.n, notifies * 2, "%s: every message is one record", what);
	tap_is_int(v.bad, 0, "%s: every record decodes to the bytes sent", what);
	tap_is_int(missing, 0, "%s: no message is missing", what);
	tap_ok(v.order_ok, "%s: sequence numbers increase", what);
	spool_stat(sp, &st);
	tap_is_int(st.records, notifies * 2, "%s: spool_stat counts the records", what);
	tap_diag("%s: %u of %u records use a dictionary", what, v.with_dict, v.n);
	record_dctx_free(v.dctx);
	dictcache_free(v.dc);
	record_buf_free(&v.raw);
	free(v.seen);
}

static spool_sink_config sink_cfg(void)
{
	spool_sink_config c;

	memset(&c, 0, sizeof c);
	c.workers = NTHREADS;
	c.level = 3;
	c.dict_samples = 300;
	c.dict_size = 16 << 10;
	c.sync_mode = SPOOL_SYNC_PROCESS;
	c.sync_interval = 0.2;
	return c;
}

static void test_commit_mode(void)
{
	unsigned total = NTHREADS * PER_THREAD;
	spool_sink_config c = sink_cfg();
	spool_sink_stats st;
	struct done_log d;
	char err[256];
	spool *sp = open_spool(0);
	sink *s;
	int i;

	done_init(&d, total * 3);
	s = spool_sink_new(sp, &c, err, sizeof err);
	if (!tap_ok(s != NULL, "spool sink starts"))
		tap_diag("%s", err);
	run_load(s, &d, 0);
	tap_ok(wait_done(&d, total), "every NOTIFY completes");
	tap_is_int(d.spooled, total, "every NOTIFY is reported spooled");
	tap_is_int(d.dup, 0, "no NOTIFY completes twice");
	/* The trainer runs in the background: give it a moment. */
	for (i = 0; i < 100; i++) {
		spool_sink_get_stats(s, &st);
		if (st.dict_id)
			break;
		usleep(100000);
	}
	tap_ok(st.dict_id >= RECORD_DICT_ID_MIN, "a dictionary was trained (id %u)", st.dict_id);
	/* More traffic, now compressed with it. */
	run_load(s, &d, total);
	tap_ok(wait_done(&d, 2 * total), "the second load completes");
	spool_sink_get_stats(s, &st);
	tap_ok(st.raw_bytes_dict > 0 && st.stored_bytes_dict > 0,
	       "records were compressed with the dictionary (%.2fx with, %.2fx overall)",
	       st.stored_bytes_dict ? (double)st.raw_bytes_dict / st.stored_bytes_dict : 0.0,
	       st.stored_bytes ? (double)st.raw_bytes / st.stored_bytes : 0.0);
	tap_is_int(st.records_spooled, 4 * total, "the sink counts every record spooled");
	tap_ok(st.commits > 0 && st.commits <= st.records_spooled,
	       "records were group-committed (%llu records in %llu commits)",
	       (unsigned long long)st.records_spooled, (unsigned long long)st.commits);
	s->destroy(s);
	verify_spool(sp, 2 * total, "commit mode");
	spool_close(sp);

	/* After a restart the stored dictionary is used at once. */
	sp = open_spool(0);
	s = spool_sink_new(sp, &c, err, sizeof err);
	spool_sink_get_stats(s, &st);
	tap_ok(st.dict_id >= RECORD_DICT_ID_MIN, "a restarted sink reuses the stored dictionary");
	s->destroy(s);
	spool_close(sp);
	done_free(&d);
}

static void test_empty_and_receipt(void)
{
	spool_sink_config c = sink_cfg();
	struct done_log d;
	spool_stats st;
	char err[256];
	spool *sp = open_spool(0);
	uint64_t before;
	sink *s;
	sink_notify n = { .msgs = (const uint8_t *)"", .msgs_len = 0, .nmsgs = 0,
	                  .sid = 1, .fid = 1, .worker = 0, .peer = "test" };

	spool_stat(sp, &st);
	before = st.records;
	c.ack_mode = SPOOL_ACK_RECEIPT;
	done_init(&d, 1);
	s = spool_sink_new(sp, &c, err, sizeof err);
	tap_is_int(s->submit(s, &n, on_done, &d, 0), SINK_SPOOLED,
	           "an empty NOTIFY is ACKed at once as spooled (nothing to store)");
	{
		uint8_t buf[4096];
		size_t lens[2];

		n.msgs = buf;
		n.nmsgs = 2;
		n.sid = 7;
		n.recv_ns = 1795670945000000000LL + 7;
		n.engine_id = (spop_str){ (const uint8_t *)"engine-a", 8 };
		n.msgs_len = build_notify(buf, sizeof buf, 7, lens);
		tap_is_int(s->submit(s, &n, on_done, &d, 0), SINK_SPOOLED,
		           "receipt mode ACKs before the commit");
	}
	s->destroy(s);
	tap_is_int(d.n, 0, "receipt mode never calls done()");
	spool_stat(sp, &st);
	tap_is_int(st.records - before, 2, "receipt mode still spools the records (on a clean stop)");
	spool_close(sp);
	done_free(&d);
}

static void test_full(void)
{
	spool_sink_config c = sink_cfg();
	struct done_log d;
	spool_stats st;
	char err[256];
	spool *sp;
	sink *s;
	unsigned total = NTHREADS * PER_THREAD;
	char cmd[300];

	snprintf(cmd, sizeof cmd, "rm -rf %s/*", dir);
	if (system(cmd) != 0)
		tap_diag("cannot empty %s", dir);
	sp = open_spool(256 << 10);            /* a few hundred records */
	c.dict = -1;
	done_init(&d, total);
	s = spool_sink_new(sp, &c, err, sizeof err);
	run_load(s, &d, 0);
	tap_ok(wait_done(&d, total), "a full spool still completes every NOTIFY");
	tap_ok(d.dropped > 0 && d.spooled > 0, "some NOTIFYs are spooled, the rest dropped "
	       "(%u spooled, %u dropped)", d.spooled, d.dropped);
	s->destroy(s);
	spool_stat(sp, &st);
	tap_is_int(st.records + st.dropped[SPOOL_DROP_FULL], 2 * total,
	           "records stored + records counted as dropped (full) = records sent");
	/* A NOTIFY at the boundary may have one record stored, one dropped. */
	tap_ok(st.dropped[SPOOL_DROP_FULL] >= d.dropped &&
	       st.dropped[SPOOL_DROP_FULL] <= 2 * (uint64_t)d.dropped,
	       "dropped NOTIFYs match the dropped records (%llu records, %u NOTIFYs)",
	       (unsigned long long)st.dropped[SPOOL_DROP_FULL], d.dropped);
	spool_close(sp);
	done_free(&d);
}

/* Messages larger than 4 KiB: the sample buffer fills before the sample
 * count is reached, and training must still start (a bug once). */
static void test_large_samples(void)
{
	spool_sink_config c = sink_cfg();
	spool_sink_stats st;
	struct done_log d;
	char err[256], cmd[300];
	spool *sp;
	sink *s;
	int i;

	snprintf(cmd, sizeof cmd, "rm -rf %s/*", dir);
	if (system(cmd) != 0)
		tap_diag("cannot empty %s", dir);
	sp = open_spool(0);
	body_size = 5000;
	c.dict_samples = 1000000;           /* never reached: the buffer fills first */
	done_init(&d, NTHREADS * PER_THREAD);
	s = spool_sink_new(sp, &c, err, sizeof err);
	run_load(s, &d, 0);
	wait_done(&d, NTHREADS * PER_THREAD);
	for (i = 0; i < 100; i++) {
		spool_sink_get_stats(s, &st);
		if (st.dict_id)
			break;
		usleep(100000);
	}
	tap_ok(st.dict_id != 0, "with ~5 KB messages a dictionary is trained once the "
	       "sample buffer is full");
	s->destroy(s);
	spool_close(sp);
	done_free(&d);
	body_size = 600;
}

static int corrupt_cb(uint64_t seq, int in_dlq, const char *why, void *user)
{
	char *out = user;

	snprintf(out, 256, "seq %llu%s: %s", (unsigned long long)seq,
	         in_dlq ? " (dead letter)" : "", why);
	return 0;
}

/* A real record whose zstd frame is damaged fails its checksum, goes to the
 * dead-letter table as "corrupt" (never deleted), and the others stay. */
static void test_corrupt_record(void)
{
	spool_config cfg;
	spool *sp = NULL;
	dictcache *dc = dictcache_new(0);
	record_cctx *cc = record_cctx_new(3, NULL, 0);
	record_buf good = { 0 }, bad = { 0 };
	record_meta m = { .recv_ns = 1795670945000000000LL, .sid = 1, .fid = 1 };
	uint8_t msg[4096];
	spool_item items[2];
	spool_append_result res[2];
	spool_stats st;
	char err[512], why[256] = "", cmd[300];
	size_t n = build_msg(msg, sizeof msg, 1, "cap-req");

	snprintf(cmd, sizeof cmd, "rm -rf %s/*", dir);
	if (system(cmd) != 0)
		tap_diag("cannot empty %s", dir);
	memset(&cfg, 0, sizeof cfg);
	dictcache_hooks(dc, &cfg.hooks);
	spool_open(&sp, dir, &cfg, SPOOL_MODE_AGENT, err, sizeof err);
	record_encode(cc, NULL, &m, msg, n, &good);
	record_encode(cc, NULL, &m, msg, n, &bad);
	bad.data[bad.len / 2] ^= 0x40;              /* inside the compressed data */
	items[0] = (spool_item){ good.data, good.len };
	items[1] = (spool_item){ bad.data, bad.len };
	spool_append(sp, items, 2, res);
	tap_is_int(spool_verify(sp, SPOOL_VERIFY_DLQ_CORRUPT, corrupt_cb, why), 1,
	           "a damaged record fails verification (%s)", why);
	spool_stat(sp, &st);
	tap_ok(st.records == 1 && st.dlq_records == 1 &&
	       st.dlq_by_reason[SPOOL_DLQ_CORRUPT] == 1,
	       "it is moved to the dead-letter table as corrupt; the good one stays");
	why[0] = 0;
	tap_is_int(spool_verify(sp, 0, corrupt_cb, why), 1, "verify then finds it only among "
	           "the dead letters");
	tap_ok(strstr(why, "(dead letter)") != NULL, "... %s", why);
	spool_close(sp);
	record_cctx_free(cc);
	record_buf_free(&good);
	record_buf_free(&bad);
	dictcache_free(dc);
}

int main(void)
{
	char cmd[300];

	log_set_level(LOGL_WARN);
	if (!mkdtemp(dir)) {
		printf("1..0 # SKIP cannot create a temporary directory\n");
		return 0;
	}
	test_commit_mode();
	test_empty_and_receipt();
	test_full();
	test_large_samples();
	test_corrupt_record();
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		tap_diag("cannot remove %s", dir);
	return tap_done(0);
}
