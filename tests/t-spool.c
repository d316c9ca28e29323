/* t-spool.c -- unit tests for the LMDB spool (src/spool*.c): append, read,
 * advance, retention, sequence numbers across reopen, both full policies
 * with exact counts, map growth and the map limit, dead letters,
 * dictionaries, verification, the agent lock, READONLY beside a writing
 * agent in another process, foreign directories, stale readers, crash
 * points, threads, and a full filesystem on a small tmpfs (root only). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spoolcap/spool.h"
#include "tap.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

static char base[256];

/* ---------------------------------------------------------- helpers */

static char *newdir(const char *name)
{
	static char path[64][320];
	static int n;
	char *p = path[n++ % 64];

	snprintf(p, sizeof(path[0]), "%s/%s", base, name);
	return p;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void rm_rf(const char *p)
{
	nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Test record: [u32 dict][u32 len][u64 id][pattern from id]. Fake
 * capture time = id * 1000. */
#define VHDR 16
static void make_val(uint8_t *p, size_t len, uint64_t id, uint32_t dict)
{
	uint64_t s = id * 0x9E3779B97F4A7C15ull + 1;

	memset(p, 0, len < VHDR ? len : VHDR);
	if (len >= VHDR) {
		memcpy(p, &dict, 4);
		memcpy(p + 4, &(uint32_t){ (uint32_t)len }, 4);
		memcpy(p + 8, &id, 8);
	}
	for (size_t i = VHDR; i < len; i++)
		p[i] = (uint8_t)(rng_next(&s) >> 24);
}

static int check_val(const void *v, size_t len, uint64_t *idp)
{
	uint8_t buf[64 * 1024];
	uint64_t id;
	uint32_t dict, l;

	if (len < VHDR || len > sizeof(buf))
		return 0;
	memcpy(&dict, v, 4);
	memcpy(&l, (const uint8_t *)v + 4, 4);
	memcpy(&id, (const uint8_t *)v + 8, 8);
	if (l != len)
		return 0;
	make_val(buf, len, id, dict);
	if (idp)
		*idp = id;
	return memcmp(buf, v, len) == 0;
}

static uint32_t hook_dict(const void *v, size_t len, void *u)
{
	uint32_t d = 0;
	(void)u;
	if (len >= 4)
		memcpy(&d, v, 4);
	return d;
}

static int64_t hook_time(const void *v, size_t len, void *u)
{
	uint64_t id;
	(void)u;
	if (len < VHDR)
		return -1;
	memcpy(&id, (const uint8_t *)v + 8, 8);
	return (int64_t)id * 1000;
}

static int hook_validate(const void *v, size_t len, char *why, size_t wl, void *u)
{
	(void)u;
	if (check_val(v, len, NULL))
		return 0;
	snprintf(why, wl, "pattern mismatch");
	return 1;
}

static spool_config base_cfg(void)
{
	spool_config c;

	memset(&c, 0, sizeof(c));
	c.hooks.dict_id = hook_dict;
	c.hooks.time_ns = hook_time;
	c.hooks.validate = hook_validate;
	c.disk_reserve = 1 * MIB;
	return c;
}

static spool *xopen(const char *dir, const spool_config *cfg, enum spool_mode mode)
{
	char err[512];
	spool *sp;
	int rc = spool_open(&sp, dir, cfg, mode, err, sizeof(err));

	if (rc)
		tap_diag("spool_open(%s): %d %s", dir, rc, err);
	return sp;
}

/* Appends n records of size len (ids id0..), one transaction. */
static int append_n(spool *sp, uint64_t id0, size_t n, size_t len, uint32_t dict,
                    spool_append_result *res)
{
	spool_item *items = calloc(n, sizeof(*items));
	uint8_t *buf = malloc(n * len + 1);
	spool_append_result *r = res ? res : calloc(n, sizeof(*r));
	int rc;

	for (size_t i = 0; i < n; i++) {
		make_val(buf + i * len, len, id0 + i, dict);
		items[i].data = buf + i * len;
		items[i].len = len;
	}
	rc = spool_append(sp, items, n, r);
	if (rc < 0)
		tap_diag("spool_append: %d %s", rc, spool_errmsg());
	if (!res)
		free(r);
	free(items);
	free(buf);
	return rc;
}

struct coll {
	uint64_t seq[4096];
	uint64_t id[4096];
	size_t   len[4096];
	int      n, bad;
	int      stop_at;
};

static int collect(uint64_t seq, const void *v, size_t len, void *u)
{
	struct coll *c = u;
	uint64_t id = 0;

	if (!check_val(v, len, &id))
		c->bad++;
	if (c->n < 4096) {
		c->seq[c->n] = seq;
		c->id[c->n] = id;
		c->len[c->n] = len;
	}
	c->n++;
	return c->stop_at && c->n >= c->stop_at;
}

static spool_stats xstat(spool *sp)
{
	spool_stats st;

	if (spool_stat(sp, &st) != 0)
		tap_diag("spool_stat: %s", spool_errmsg());
	return st;
}

/* ---------------------------------------------------------- tests */

static void test_basic(void)
{
	const char *dir = newdir("basic");
	spool_config cfg = base_cfg();
	spool_append_result res[10];
	struct coll c;
	spool_stats st;
	char uuid[SPOOL_UUID_STR_LEN];
	uint64_t cur;
	spool *sp;
	int rc;

	sp = xopen(dir, &cfg, SPOOL_MODE_AGENT);
	tap_ok(sp != NULL, "basic: AGENT creates a new spool in a missing directory");
	if (!sp)
		return;
	snprintf(uuid, sizeof(uuid), "%s", spool_uuid(sp));
	tap_ok(strlen(uuid) == 36 && uuid[14] == '4' && strchr("89ab", uuid[19]),
	       "basic: uuid is a v4 UUID (%s)", uuid);
	rc = append_n(sp, 1, 10, 100, 0, res);
	tap_is_int(rc, 10, "basic: 10 appended in one txn");
	tap_ok(res[0].seq == 1 && res[9].seq == 10 && res[0].drop == -1,
	       "basic: seqs start at 1 and are consecutive");
	/* inline, one overflow page, several overflow pages */
	tap_is_int(append_n(sp, 11, 1, 2022, 0, NULL), 1, "basic: 2022-byte value (inline)");
	tap_is_int(append_n(sp, 12, 1, 4000, 0, NULL), 1, "basic: 4000-byte value (overflow)");
	tap_is_int(append_n(sp, 13, 1, 20000, 0, NULL), 1, "basic: 20000-byte value");

	memset(&c, 0, sizeof(c));
	rc = spool_read(sp, 0, 0, 0, collect, &c);
	tap_is_int(rc, 13, "basic: read returns all 13");
	tap_ok(c.bad == 0 && c.seq[12] == 13 && c.id[12] == 13 && c.len[12] == 20000,
	       "basic: contents byte-identical");
	memset(&c, 0, sizeof(c));
	tap_is_int(spool_read(sp, 0, 4, 0, collect, &c), 4, "basic: max_records");
	memset(&c, 0, sizeof(c));
	tap_is_int(spool_read(sp, 0, 0, 250, collect, &c), 2, "basic: max_bytes stops before exceeding");
	memset(&c, 0, sizeof(c));
	tap_is_int(spool_read(sp, 12, 0, 10, collect, &c), 1,
	           "basic: max_bytes always gives the first record");
	memset(&c, 0, sizeof(c));
	c.stop_at = 3;
	tap_is_int(spool_read(sp, 5, 0, 0, collect, &c), 3, "basic: callback can stop");
	tap_is_int(c.seq[0], 6, "basic: read starts after after_seq");

	tap_is_int(spool_advance(sp, 5), 0, "basic: advance to 5");
	spool_cursor_get(sp, &cur);
	tap_is_int(cur, 5, "basic: cursor is 5");
	memset(&c, 0, sizeof(c));
	tap_is_int(spool_read(sp, 0, 0, 0, collect, &c), 8, "basic: read after cursor gives 8");
	tap_is_int(c.seq[0], 6, "basic: first pending is 6");
	tap_is_int(spool_get(sp, 3, collect, &c), SPOOL_ENOENT, "basic: delivered record deleted");
	tap_is_int(spool_get(sp, 7, collect, &c), 0, "basic: spool_get finds a pending one");
	tap_is_int(spool_advance(sp, 3), 0, "basic: advance backwards is a no-op");
	st = xstat(sp);
	tap_ok(st.accepted == 13 && st.delivered == 5 && st.records == 8 &&
	       st.bytes == 5 * 100 + 2022 + 4000 + 20000 && st.cursor == 5 &&
	       st.next_seq == 14 && st.first_seq == 6 && st.first_pending_seq == 6 &&
	       st.last_seq == 13 && st.first_pending_time_ns == 6000 &&
	       st.last_time_ns == 13000 && st.retained_records == 0,
	       "basic: stat counters (accepted %llu delivered %llu records %llu bytes %llu)",
	       (unsigned long long)st.accepted, (unsigned long long)st.delivered,
	       (unsigned long long)st.records, (unsigned long long)st.bytes);
	tap_ok(st.reserve_held == 1 && st.space_state == 0 &&
	       access(newdir("basic/disk.reserve"), F_OK) == 0,
	       "basic: the agent holds its disk reserve file");
	tap_ok(st.page_size == 4096 && st.map_size >= 64 * MIB && st.used_bytes > 0 &&
	       st.file_bytes > 0 && st.readers_max == 126 && st.readers_used >= 1,
	       "basic: stat LMDB figures (map %llu, used %llu, readers %u)",
	       (unsigned long long)st.map_size, (unsigned long long)st.used_bytes,
	       st.readers_used);
	tap_is_int(spool_advance(sp, 1000), 0, "basic: advance past the end is clamped");
	st = xstat(sp);
	tap_ok(st.cursor == 13 && st.records == 0 && st.bytes == 0 && st.first_seq == 0,
	       "basic: queue empty, cursor 13");
	spool_close(sp);

	sp = xopen(dir, &cfg, SPOOL_MODE_AGENT);
	tap_ok(sp && strcmp(spool_uuid(sp), uuid) == 0, "basic: reopen keeps the uuid");
	if (sp)
		spool_close(sp);
}

static void test_seq_never_reused(void)
{
	const char *dir = newdir("seq");
	spool_config cfg = base_cfg();
	spool_append_result r[3];
	spool_dlq_info di = { .reason = SPOOL_DLQ_REJECTED };
	spool *sp;

	sp = xopen(dir, &cfg, SPOOL_MODE_AGENT);
	append_n(sp, 1, 3, 64, 0, NULL);
	spool_advance(sp, 3);
	spool_close(sp);
	sp = xopen(dir, &cfg, SPOOL_MODE_AGENT);
	append_n(sp, 4, 1, 64, 0, r);
	tap_is_int(r[0].seq, 4, "seq: empty queue + reopen continues at 4, not 1");
	spool_advance(sp, 4);
	spool_close(sp);
	for (int i = 0; i < 3; i++) {
		sp = xopen(dir, &cfg, SPOOL_MODE_AGENT);
		spool_close(sp);
	}
	sp = xopen(dir, &cfg, SPOOL_MODE_AGENT);
	append_n(sp, 5, 2, 64, 0, r);
	tap_ok(r[0].seq == 5 && r[1].seq == 6, "seq: several empty reopens: 5, 6");
	/* the highest seq sits in the dead-letter table; q is empty */
	spool_dlq_put(sp, 6, &di);
	spool_advance(sp, 6);
	spool_close(sp);
	sp = xopen(dir, &cfg, SPOOL_MODE_AGENT);
	append_n(sp, 7, 1, 64, 0, r);
	tap_is_int(r[0].seq, 7, "seq: after a dead letter holds the last seq: 7");
	spool_close(sp);
}

static void test_retention(void)
{
	const char *dir = newdir("retain");
	spool_config cfg = base_cfg();
	struct coll c;
	spool_stats st;
	int64_t now = (int64_t)time(NULL) * 1000000000ll;
	spool *sp;

	cfg.retain_ns = 3600ll * 1000000000ll;
	sp = xopen(dir, &cfg, SPOOL_MODE_AGENT);
	append_n(sp, 1, 10, 200, 0, NULL);
	spool_advance(sp, 6);
	st = xstat(sp);
	tap_ok(st.cursor == 6 && st.records == 4 && st.bytes == 800 &&
	       st.retained_records == 6 && st.retained_bytes == 1200 && st.delivered == 6,
	       "retain: 6 delivered and retained, 4 pending");
	memset(&c, 0, sizeof(c));
	tap_is_int(spool_read(sp, 0, 0, 0, collect, &c), 4, "retain: read skips retained");
	tap_is_int(c.seq[0], 7, "retain: read starts after the cursor");
	memset(&c, 0, sizeof(c));
	tap_is_int(spool_scan(sp, 0, 0, 0, collect, &c), 10, "retain: scan sees all 10");
	tap_is_int(spool_prune(sp, now), 0, "retain: prune keeps records younger than retain");
	tap_is_int(spool_prune(sp, now + 2 * cfg.retain_ns), 6,
	           "retain: prune removes records delivered more than retain ago");
	st = xstat(sp);
	tap_ok(st.retained_records == 0 && st.retained_bytes == 0 && st.pruned == 6 &&
	       st.first_seq == 7 && st.records == 4, "retain: counters after age prune");
	spool_close(sp);

	/* by size: at most 3 records' bytes are kept */
	cfg.retain_ns = 0;
	cfg.retain_bytes = 600;
	sp = xopen(dir, &cfg, SPOOL_MODE_AGENT);
	spool_advance(sp, 10);
	st = xstat(sp);
	tap_ok(st.retained_records == 3 && st.retained_bytes == 600 && st.pruned == 7 &&
	       st.first_seq == 8, "retain: retain_bytes trims the oldest at advance");
	append_n(sp, 11, 4, 200, 0, NULL);
	spool_advance(sp, 12);
	st = xstat(sp);
	tap_ok(st.retained_records == 3 && st.first_seq == 10 && st.records == 2,
	       "retain: still 3 retained (10..12) after more deliveries");
	spool_close(sp);

	/* retention switched off: prune (and advance) remove retained records */
	memset(&cfg, 0, sizeof(cfg));
	sp = xopen(dir, &cfg, SPOOL_MODE_AGENT);
	tap_is_int(spool_prune(sp, 0), 3, "retain: off -> prune removes all retained");
	st = xstat(sp);
	tap_ok(st.retained_records == 0 && st.records == 2 && st.first_seq == 13,
	       "retain: pending untouched");
	spool_close(sp);

	/* purge: retained (pruned) and pending (purged) */
	cfg = base_cfg();
	cfg.retain_ns = 3600ll * 1000000000ll;
	sp = xopen(dir, &cfg, SPOOL_MODE_AGENT);
	append_n(sp, 15, 4, 100, 0, NULL);     /* 15..18 */
	spool_advance(sp, 14);
	tap_is_int(spool_purge(sp, 16, 0), 2, "purge: without include_pending only retained");
	tap_is_int(spool_purge(sp, 16, 1), 2, "purge: include_pending removes 15, 16");
	st = xstat(sp);
	tap_ok(st.dropped[SPOOL_DROP_PURGED] == 2 && st.records == 2 && st.first_seq == 17,
	       "purge: counted as purged");
	spool_close(sp);
}

static void test_full_policies(void)
{
	spool_config cfg = base_cfg();
	spool_append_result r[8];
	spool_stats st;
	struct coll c;
	spool *sp;

	/* drop-newest: 1000 bytes, 300-byte items -> 3 fit */
	cfg.max_size = 1000;
	cfg.full_policy = SPOOL_FULL_DROP_NEWEST;
	sp = xopen(newdir("full-newest"), &cfg, SPOOL_MODE_AGENT);
	tap_is_int(append_n(sp, 1, 5, 300, 0, r), 3, "newest: 3 of 5 stored");
	tap_ok(r[2].seq == 3 && r[3].drop == SPOOL_DROP_FULL && r[3].seq == 0 &&
	       r[4].drop == SPOOL_DROP_FULL, "newest: items 4 and 5 dropped full");
	tap_is_int(append_n(sp, 6, 1, 100, 0, r), 1, "newest: a 100-byte item still fits");
	tap_is_int(r[0].seq, 4, "newest: dropped items used no seq");
	tap_is_int(append_n(sp, 7, 1, 1001, 0, r), 0, "newest: an item above max_size is dropped");
	st = xstat(sp);
	tap_ok(st.dropped[SPOOL_DROP_FULL] == 3 && st.dropped[SPOOL_DROP_EVICTED] == 0 &&
	       st.records == 4 && st.bytes == 1000 && st.accepted == 4,
	       "newest: exact counts (full %llu)", (unsigned long long)st.dropped[0]);
	spool_advance(sp, 1);
	tap_is_int(append_n(sp, 8, 1, 300, 0, r), 1, "newest: room again after delivery");
	spool_close(sp);

	/* drop-oldest */
	cfg.full_policy = SPOOL_FULL_DROP_OLDEST;
	sp = xopen(newdir("full-oldest"), &cfg, SPOOL_MODE_AGENT);
	tap_is_int(append_n(sp, 1, 5, 300, 0, r), 5, "oldest: all 5 stored");
	st = xstat(sp);
	tap_ok(st.dropped[SPOOL_DROP_EVICTED] == 2 && st.records == 3 && st.bytes == 900 &&
	       st.first_seq == 3, "oldest: the 2 oldest evicted in the same txn");
	tap_is_int(append_n(sp, 6, 1, 1001, 0, r), 0, "oldest: an item above max_size is dropped");
	st = xstat(sp);
	tap_ok(st.dropped[SPOOL_DROP_FULL] == 1 && st.dropped[SPOOL_DROP_EVICTED] == 2 &&
	       st.records == 3, "oldest: ...without evicting anything");
	tap_is_int(append_n(sp, 7, 1, 700, 0, r), 1, "oldest: 700 bytes evict 2 records");
	st = xstat(sp);
	tap_ok(st.dropped[SPOOL_DROP_EVICTED] == 4 && st.records == 2 && st.bytes == 1000,
	       "oldest: evicted 4 in total, 2 records left");
	memset(&c, 0, sizeof(c));
	spool_read(sp, 0, 0, 0, collect, &c);
	tap_ok(c.n == 2 && c.seq[0] == 5 && c.seq[1] == 6 && c.id[1] == 7 && !c.bad,
	       "oldest: the newest survive");
	spool_close(sp);

	/* retained (delivered) records are pruned before anything else */
	cfg.retain_ns = 3600ll * 1000000000ll;
	cfg.full_policy = SPOOL_FULL_DROP_NEWEST;
	sp = xopen(newdir("full-retain"), &cfg, SPOOL_MODE_AGENT);
	append_n(sp, 1, 3, 300, 0, NULL);
	spool_advance(sp, 2);
	tap_is_int(append_n(sp, 4, 2, 300, 0, r), 2, "retain+full: 2 stored by pruning retained");
	st = xstat(sp);
	tap_ok(st.pruned == 2 && st.retained_records == 0 && st.records == 3 &&
	       st.dropped[SPOOL_DROP_FULL] == 0, "retain+full: 2 pruned, nothing dropped");
	spool_close(sp);

	/* dead letters count toward max_size */
	memset(&cfg, 0, sizeof(cfg));
	cfg.max_size = 1000;
	sp = xopen(newdir("full-dlq"), &cfg, SPOOL_MODE_AGENT);
	append_n(sp, 1, 3, 300, 0, NULL);
	spool_dlq_put(sp, 1, &(spool_dlq_info){ .reason = SPOOL_DLQ_REJECTED });
	spool_advance(sp, 3);
	tap_is_int(append_n(sp, 4, 3, 300, 0, r), 2, "dlq+full: dead letters use the cap");
	spool_close(sp);
}

static void test_map_growth(void)
{
	spool_config cfg = base_cfg();
	spool_stats st0, st;
	struct coll c;
	uint64_t id = 1, total = 0, rng = 42;
	int ok = 1, n;
	spool *sp;

	cfg.initial_mapsize = 64 * KIB;
	cfg.max_size = 256 * MIB;
	sp = xopen(newdir("growth"), &cfg, SPOOL_MODE_AGENT);
	tap_ok(sp != NULL, "growth: opens with a 64 KiB map");
	if (!sp)
		return;
	st0 = xstat(sp);
	while (total < 24 * MIB) {
		size_t len = 16 + rng_next(&rng) % 20000;
		n = append_n(sp, id, 8, len, 0, NULL);
		ok &= n == 8;
		id += 8;
		total += 8 * len;
	}
	st = xstat(sp);
	tap_ok(ok, "growth: every append stored (%llu records)", (unsigned long long)id - 1);
	tap_ok(st0.map_size <= 1 * MIB && st.map_size >= 24 * MIB,
	       "growth: map grew from %llu to %llu bytes", (unsigned long long)st0.map_size,
	       (unsigned long long)st.map_size);
	memset(&c, 0, sizeof(c));
	n = spool_read(sp, 0, 0, 0, collect, &c);
	tap_ok(n == (int)(id - 1) && c.bad == 0, "growth: all %d records intact", n);
	spool_close(sp);

	/* a map limit far below max_size: "full", never an error */
	memset(&cfg, 0, sizeof(cfg));
	cfg.initial_mapsize = 256 * KIB;
	cfg.map_limit = 2 * MIB;
	cfg.max_size = 1024 * MIB;
	sp = xopen(newdir("maplimit"), &cfg, SPOOL_MODE_AGENT);
	{
		spool_append_result r[4];
		int dropped = 0, stored = 0, errs = 0;
		for (int i = 0; i < 300 && !dropped; i++) {
			n = append_n(sp, 1 + i * 4, 4, 3000, 0, r);
			if (n < 0)
				errs++;
			else
				stored += n;
			if (n == 0 && r[0].drop == SPOOL_DROP_FULL)
				dropped = 1;
		}
		st = xstat(sp);
		tap_ok(dropped && !errs && st.map_size == 2 * MIB,
		       "maplimit: map limit reached -> items dropped full (%d stored)", stored);
		tap_ok(st.dropped[SPOOL_DROP_FULL] == 4, "maplimit: drops counted (in memory): %llu",
		       (unsigned long long)st.dropped[SPOOL_DROP_FULL]);
		spool_advance(sp, UINT64_MAX);
		st = xstat(sp);
		tap_ok(st.dropped[SPOOL_DROP_FULL] == 4, "maplimit: drops persisted by the next txn");
		n = append_n(sp, 5000, 4, 3000, 0, r);
		tap_is_int(n, 4, "maplimit: appends succeed again after delivery");
	}
	spool_close(sp);

	/* drop-oldest at the map limit evicts to make room */
	cfg.full_policy = SPOOL_FULL_DROP_OLDEST;
	sp = xopen(newdir("maplimit-oldest"), &cfg, SPOOL_MODE_AGENT);
	{
		int errs = 0, zero = 0;
		for (int i = 0; i < 600; i++) {
			n = append_n(sp, 1 + i * 4, 4, 3000, 0, NULL);
			errs += n < 0;
			zero += n == 0;
		}
		st = xstat(sp);
		tap_ok(!errs && zero == 0 && st.dropped[SPOOL_DROP_EVICTED] > 0,
		       "maplimit-oldest: every batch stored, %llu evicted",
		       (unsigned long long)st.dropped[SPOOL_DROP_EVICTED]);
	}
	spool_close(sp);
}

struct dlqcoll {
	int n;
	uint64_t seq[16];
	spool_dlq_info info[16];
	char snip[16][64];
	int recok[16];
};

static int dlq_collect(const spool_dlq_entry *e, void *u)
{
	struct dlqcoll *d = u;

	if (d->n < 16) {
		d->seq[d->n] = e->seq;
		d->info[d->n] = e->info;
		snprintf(d->snip[d->n], 64, "%.*s", (int)e->info.snippet_len,
		         (const char *)e->info.snippet);
		d->recok[d->n] = check_val(e->record, e->record_len, NULL);
	}
	d->n++;
	return 0;
}

static void test_dlq(void)
{
	spool_config cfg = base_cfg();
	spool_dlq_info di;
	struct dlqcoll d;
	struct coll c;
	spool_stats st;
	char big[700];
	spool *sp;
	int rc;

	sp = xopen(newdir("dlq"), &cfg, SPOOL_MODE_AGENT);
	append_n(sp, 1, 5, 3000, 0, NULL);
	memset(&di, 0, sizeof(di));
	di.reason = SPOOL_DLQ_REJECTED;
	di.http_status = 400;
	di.attempts = 3;
	di.first_ns = 111;
	di.last_ns = 222;
	di.snippet = "{\"error\":\"bad field\"}";
	di.snippet_len = strlen(di.snippet);
	tap_is_int(spool_dlq_put(sp, 2, &di), 0, "dlq: put 2");
	tap_is_int(spool_dlq_put(sp, 2, &di), SPOOL_ENOENT, "dlq: put 2 again -> ENOENT");
	tap_is_int(spool_dlq_put(sp, 99, &di), SPOOL_ENOENT, "dlq: unknown seq -> ENOENT");
	memset(&d, 0, sizeof(d));
	tap_is_int(spool_dlq_get(sp, 2, dlq_collect, &d), 0, "dlq: get 2");
	tap_ok(d.n == 1 && d.seq[0] == 2 && d.info[0].reason == SPOOL_DLQ_REJECTED &&
	       d.info[0].http_status == 400 && d.info[0].attempts == 3 &&
	       d.info[0].first_ns == 111 && d.info[0].last_ns == 222 &&
	       strcmp(d.snip[0], "{\"error\":\"bad field\"}") == 0 && d.recok[0],
	       "dlq: every field and the record bytes kept");
	memset(&c, 0, sizeof(c));
	spool_read(sp, 0, 0, 0, collect, &c);
	tap_ok(c.n == 4 && c.seq[0] == 1 && c.seq[1] == 3, "dlq: q read skips the dead letter");
	/* long snippet is cut to 512 */
	memset(big, 'x', sizeof(big));
	di.reason = SPOOL_DLQ_CORRUPT;
	di.snippet = big;
	di.snippet_len = sizeof(big);
	spool_dlq_put(sp, 4, &di);
	st = xstat(sp);
	tap_ok(st.dlq_records == 2 && st.dlq_bytes == 6000 && st.records == 3 &&
	       st.dlq_by_reason[SPOOL_DLQ_REJECTED] == 1 &&
	       st.dlq_by_reason[SPOOL_DLQ_CORRUPT] == 1 && st.dead_lettered == 2,
	       "dlq: stat counts by reason");
	memset(&d, 0, sizeof(d));
	tap_is_int(spool_dlq_iterate(sp, 0, 0, dlq_collect, &d), 2, "dlq: iterate gives 2");
	tap_ok(d.seq[0] == 2 && d.seq[1] == 4, "dlq: in seq order");
	memset(&d, 0, sizeof(d));
	tap_is_int(spool_dlq_iterate(sp, 2, 0, dlq_collect, &d), 1, "dlq: iterate after 2");

	tap_is_int(spool_dlq_requeue(sp, (uint64_t[]){ 2, 77 }, 2), 1,
	           "dlq: requeue 2 (77 unknown, skipped)");
	memset(&c, 0, sizeof(c));
	spool_read(sp, 0, 0, 0, collect, &c);
	tap_ok(c.n == 4 && c.seq[3] == 6 && c.id[3] == 2 && !c.bad,
	       "dlq: requeued record appended with new seq 6, same bytes");
	tap_is_int(spool_dlq_purge(sp, NULL, 0), 1, "dlq: purge all");
	st = xstat(sp);
	tap_ok(st.dlq_records == 0 && st.dlq_bytes == 0 && st.requeued == 1 &&
	       st.dropped[SPOOL_DROP_PURGED] == 1 && st.dlq_by_reason[SPOOL_DLQ_CORRUPT] == 0 &&
	       st.records == 4 && st.next_seq == 7, "dlq: counters after requeue and purge");

	/* requeue all */
	di.reason = SPOOL_DLQ_MANUAL;
	di.snippet_len = 0;
	spool_dlq_put(sp, 1, &di);
	spool_dlq_put(sp, 3, &di);
	tap_is_int(spool_dlq_requeue(sp, NULL, 0), 2, "dlq: requeue all");
	memset(&c, 0, sizeof(c));
	spool_read(sp, 0, 0, 0, collect, &c);
	tap_ok(c.n == 4 && c.seq[2] == 7 && c.id[2] == 1 && c.seq[3] == 8 && c.id[3] == 3,
	       "dlq: requeued in seq order at the end");
	/* a delivered record cannot be dead-lettered */
	spool_advance(sp, 6);
	tap_is_int(spool_dlq_put(sp, 5, &di), SPOOL_ENOENT, "dlq: delivered -> ENOENT");
	spool_close(sp);

	/* dlq_max_bytes drops the oldest dead letters */
	cfg.dlq_max_bytes = 7000;
	sp = xopen(newdir("dlqmax"), &cfg, SPOOL_MODE_AGENT);
	append_n(sp, 1, 4, 3000, 0, NULL);
	for (uint64_t s = 1; s <= 4; s++)
		spool_dlq_put(sp, s, &di);
	st = xstat(sp);
	memset(&d, 0, sizeof(d));
	rc = spool_dlq_iterate(sp, 0, 0, dlq_collect, &d);
	tap_ok(st.dlq_records == 2 && st.dlq_bytes == 6000 &&
	       st.dropped[SPOOL_DROP_DLQ_EVICTED] == 2 && rc == 2 && d.seq[0] == 3,
	       "dlqmax: 2 oldest dead letters evicted and counted");
	spool_close(sp);
}

static int dict_count(const spool_dict_info *d, void *u)
{
	spool_dict_info *out = u;
	out[0].id++;               /* [0] counts */
	out[1 + (out[0].id - 1) % 4] = *d;
	return 0;
}

static void test_dict(void)
{
	spool_config cfg = base_cfg();
	spool_dict_info list[5];
	uint8_t d1[1000], d2[2000];
	spool_stats st;
	void *buf;
	size_t len;
	int64_t now = (int64_t)time(NULL) * 1000000000ll;
	spool *sp;

	memset(d1, 0xd1, sizeof(d1));
	memset(d2, 0xd2, sizeof(d2));
	cfg.dict_gc_grace_ns = 60ll * 1000000000ll;
	sp = xopen(newdir("dict"), &cfg, SPOOL_MODE_AGENT);
	tap_is_int(spool_dict_put(sp, 40000, d1, sizeof(d1)), 0, "dict: put 40000");
	tap_is_int(spool_dict_put(sp, 40000, d1, sizeof(d1)), 0, "dict: same bytes again is fine");
	tap_is_int(spool_dict_put(sp, 40000, d2, sizeof(d2)), SPOOL_EEXIST,
	           "dict: different bytes -> EEXIST (immutable)");
	tap_is_int(spool_dict_get(sp, 40000, &buf, &len), 0, "dict: get");
	tap_ok(len == sizeof(d1) && memcmp(buf, d1, len) == 0, "dict: bytes identical");
	free(buf);
	tap_is_int(spool_dict_get(sp, 40001, &buf, &len), SPOOL_ENOENT, "dict: unknown -> ENOENT");
	append_n(sp, 1, 3, 100, 40000, NULL);        /* seqs 1..3 use 40000 */
	spool_dict_put(sp, 40001, d2, sizeof(d2));
	append_n(sp, 4, 2, 100, 40001, NULL);        /* 4..5 use 40001 */
	memset(list, 0, sizeof(list));
	tap_is_int(spool_dict_list(sp, dict_count, list), 2, "dict: list gives 2");
	tap_ok(list[1].id == 40000 && list[1].len == 1000 && list[1].last_seq == 3 &&
	       list[2].id == 40001 && list[2].last_seq == 5 && list[2].stored_ns > 0,
	       "dict: list has sizes and last seqs");
	tap_is_int(spool_dict_gc(sp, now + 3600ll * 1000000000ll), 0,
	           "dict: gc keeps 40000 while records 1..3 need it");
	spool_dlq_put(sp, 2, &(spool_dlq_info){ .reason = SPOOL_DLQ_REJECTED });
	spool_advance(sp, 5);
	tap_is_int(spool_dict_gc(sp, now + 3600ll * 1000000000ll), 0,
	           "dict: gc keeps 40000 while a dead letter needs it");
	spool_dlq_requeue(sp, NULL, 0);               /* 2 -> seq 6 */
	spool_advance(sp, 6);
	tap_is_int(spool_dict_gc(sp, now), 0,
	           "dict: gc waits for the grace period after the newer dictionary");
	tap_is_int(spool_dict_gc(sp, now + 3600ll * 1000000000ll), 1,
	           "dict: gc deletes 40000 once nothing needs it");
	tap_is_int(spool_dict_get(sp, 40000, &buf, &len), SPOOL_ENOENT, "dict: 40000 gone");
	tap_is_int(spool_dict_gc(sp, now + 7200ll * 1000000000ll), 0,
	           "dict: the newest dictionary is never deleted");
	st = xstat(sp);
	tap_is_int(st.dicts, 1, "dict: stat counts dictionaries");
	spool_close(sp);
}

static int bad_cb(uint64_t seq, int in_dlq, const char *why, void *u)
{
	int *n = u;
	(void)seq;
	(void)why;
	n[in_dlq]++;
	return 0;
}

static void test_verify(void)
{
	spool_config cfg = base_cfg();
	spool_item it;
	spool_append_result r;
	spool_stats st;
	uint8_t junk[300];
	int n[2] = { 0, 0 };
	spool *sp;

	sp = xopen(newdir("verify"), &cfg, SPOOL_MODE_AGENT);
	append_n(sp, 1, 5, 500, 0, NULL);
	memset(junk, 0xee, sizeof(junk));
	it.data = junk;
	it.len = sizeof(junk);
	spool_append(sp, &it, 1, &r);                  /* seq 6: corrupt */
	append_n(sp, 7, 2, 500, 0, NULL);
	tap_is_int(spool_verify(sp, 0, bad_cb, n), 1, "verify: finds the corrupt record");
	tap_is_int(spool_verify(sp, SPOOL_VERIFY_DLQ_CORRUPT, bad_cb, n), 1,
	           "verify: moves it to the dead-letter table");
	st = xstat(sp);
	tap_ok(st.dlq_by_reason[SPOOL_DLQ_CORRUPT] == 1 && st.records == 7,
	       "verify: dead letter reason corrupt, never deleted");
	n[0] = n[1] = 0;
	tap_is_int(spool_verify(sp, 0, bad_cb, n), 1, "verify: now reported from the DLQ");
	tap_ok(n[1] == 1 && n[0] == 0, "verify: in_dlq flag");
	spool_close(sp);
}

static int reenter_cb(uint64_t seq, const void *v, size_t len, void *u)
{
	spool *sp = u;
	spool_append_result r;
	spool_item it = { v, len };
	(void)seq;
	return spool_append(sp, &it, 1, &r) == SPOOL_EINVAL ? 0 : 1;
}

static void test_reentry(void)
{
	spool_config cfg = base_cfg();
	spool *sp = xopen(newdir("reentry"), &cfg, SPOOL_MODE_AGENT);

	append_n(sp, 1, 2, 64, 0, NULL);
	tap_is_int(spool_read(sp, 0, 0, 0, reenter_cb, sp), 2,
	           "reentry: spool call inside a callback is refused (EINVAL)");
	tap_ok(strstr(spool_errmsg(), "callback") != NULL, "reentry: message says why: %s",
	       spool_errmsg());
	spool_close(sp);
}

/* --------------------------------------------- multi-process tests */

static void test_agent_lock(void)
{
	const char *dir = newdir("lock");
	spool_config cfg = base_cfg();
	char err[512], msg[64];
	int p1[2], p2[2], rc;
	pid_t pid;
	spool *sp;
	char c;

	if (pipe(p1) || pipe(p2))
		return;
	pid = fork();
	if (pid == 0) {
		spool *s = NULL;
		close(p1[0]);
		close(p2[1]);
		spool_open(&s, dir, &cfg, SPOOL_MODE_AGENT, err, sizeof(err));
		c = s ? 'y' : 'n';
		if (write(p1[1], &c, 1) != 1)
			_exit(2);
		if (read(p2[0], &c, 1) < 0)
			_exit(2);
		spool_close(s);
		_exit(0);
	}
	close(p1[1]);
	close(p2[0]);
	rc = read(p1[0], &c, 1) == 1 && c == 'y';
	tap_ok(rc, "lock: child agent holds the spool");
	rc = spool_open(&sp, dir, &cfg, SPOOL_MODE_AGENT, err, sizeof(err));
	snprintf(msg, sizeof(msg), "pid %d", (int)pid);
	tap_is_int(rc, SPOOL_ELOCKED, "lock: second AGENT open fails");
	tap_ok(strstr(err, msg) != NULL, "lock: message names the holder: %s", err);
	rc = spool_open(&sp, dir, &cfg, SPOOL_MODE_READONLY, err, sizeof(err));
	tap_is_int(rc, 0, "lock: READONLY open works while the agent runs");
	spool_close(sp);
	rc = spool_open(&sp, dir, &cfg, SPOOL_MODE_CLIENT, err, sizeof(err));
	tap_is_int(rc, 0, "lock: CLIENT open works while the agent runs");
	spool_close(sp);
	if (write(p2[1], "x", 1) != 1)
		return;
	waitpid(pid, NULL, 0);
	close(p1[0]);
	close(p2[1]);
	sp = xopen(dir, &cfg, SPOOL_MODE_AGENT);
	tap_ok(sp != NULL, "lock: free again once the holder exited");
	rc = spool_open(&(spool *){ NULL }, dir, &cfg, SPOOL_MODE_READONLY, err, sizeof(err));
	tap_ok(rc == SPOOL_EINVAL && strstr(err, "already open in this process"),
	       "lock: same process cannot open it twice: %s", err);
	spool_close(sp);
}

/* A child agent appends with a tiny map (it grows several times) while
 * this process reads READONLY: adopting the grown map (MDB_MAP_RESIZED)
 * and seeing only whole, committed records. */
static void test_readonly_beside_agent(void)
{
	const char *dir = newdir("ro");
	spool_config cfg = base_cfg();
	int p[2], status, bad = 0, polls = 0, monotonic = 1;
	uint64_t last_next = 0;
	pid_t pid;
	char c;

	if (pipe(p))
		return;
	pid = fork();
	if (pid == 0) {
		spool *s = NULL;
		int ok = 1;
		close(p[0]);
		cfg.initial_mapsize = 64 * KIB;
		if (spool_open(&s, dir, &cfg, SPOOL_MODE_AGENT, NULL, 0))
			_exit(2);
		c = 'y';
		if (write(p[1], &c, 1) != 1)
			_exit(2);
		for (int i = 0; i < 400; i++)
			ok &= append_n(s, 1 + i * 10, 10, 1000 + (i % 7) * 2500, 0, NULL) == 10;
		spool_close(s);
		_exit(ok ? 0 : 1);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		c = 'n';
	for (;;) {
		spool *sp = NULL;
		spool_stats st;
		struct coll col;
		int done = waitpid(pid, &status, WNOHANG) == pid;

		if (spool_open(&sp, dir, &cfg, SPOOL_MODE_READONLY, NULL, 0) == 0) {
			for (int k = 0; k < 20; k++) {
				memset(&col, 0, sizeof(col));
				if (spool_read(sp, 0, 0, 0, collect, &col) < 0)
					bad++;
				bad += col.bad;
				if (spool_stat(sp, &st) == 0) {
					monotonic &= st.next_seq >= last_next;
					last_next = st.next_seq;
				}
				polls++;
			}
			spool_close(sp);
		} else {
			bad++;
			tap_diag("readonly open: %s", spool_errmsg());
		}
		if (done)
			break;
	}
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "ro: child agent appended 4000 records while growing its map");
	tap_ok(bad == 0 && polls > 20 && monotonic,
	       "ro: %d READONLY reads meanwhile, all records intact", polls);
	{
		spool *sp = xopen(dir, &cfg, SPOOL_MODE_READONLY);
		spool_stats st = xstat(sp);
		spool_append_result r;
		spool_item it = { "x", 1 };
		tap_ok(st.records == 4000 && st.next_seq == 4001, "ro: final view has 4000");
		tap_is_int(spool_append(sp, &it, 1, &r), SPOOL_ERDONLY, "ro: append refused");
		spool_close(sp);
	}
	close(p[0]);
}

static void test_foreign(void)
{
	const char *empty = newdir("foreign-empty"), *file = newdir("foreign-file");
	const char *other = newdir("foreign-other"), *junk = newdir("foreign-junk");
	const char *lmdbdir = newdir("foreign-lmdb"), *missing = newdir("foreign-missing");
	char err[512], path[400];
	spool *sp;
	int rc, fd;

	mkdir(empty, 0755);
	rc = spool_open(&sp, empty, NULL, SPOOL_MODE_READONLY, err, sizeof(err));
	tap_ok(rc == SPOOL_ENOTSPOOL && strstr(err, "not a spool"),
	       "foreign: empty dir READONLY refused: %s", err);
	rc = spool_open(&sp, empty, NULL, SPOOL_MODE_CLIENT, err, sizeof(err));
	tap_is_int(rc, SPOOL_ENOTSPOOL, "foreign: empty dir CLIENT refused");
	rc = spool_open(&sp, missing, NULL, SPOOL_MODE_READONLY, err, sizeof(err));
	tap_ok(rc == SPOOL_ENOTSPOOL && strstr(err, "No such file"),
	       "foreign: missing dir READONLY refused: %s", err);
	fd = open(file, O_CREAT | O_WRONLY, 0644);
	close(fd);
	rc = spool_open(&sp, file, NULL, SPOOL_MODE_AGENT, err, sizeof(err));
	tap_ok(rc == SPOOL_ENOTSPOOL && strstr(err, "not a directory"),
	       "foreign: a file refused: %s", err);
	mkdir(other, 0755);
	snprintf(path, sizeof(path), "%s/precious.txt", other);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	close(fd);
	rc = spool_open(&sp, other, NULL, SPOOL_MODE_AGENT, err, sizeof(err));
	tap_ok(rc == SPOOL_ENOTSPOOL && strstr(err, "other files"),
	       "foreign: AGENT refuses a directory with other files: %s", err);
	mkdir(junk, 0755);
	snprintf(path, sizeof(path), "%s/data.mdb", junk);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	if (write(fd, "this is not lmdb, just some text of enough length to look at....", 64) < 0)
		tap_diag("write failed");
	close(fd);
	rc = spool_open(&sp, junk, NULL, SPOOL_MODE_READONLY, err, sizeof(err));
	tap_ok(rc == SPOOL_ENOTSPOOL, "foreign: garbage data.mdb refused: %s", err);
	/* an LMDB environment of another application */
	{
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi dbi;
		MDB_val k = { 3, "key" }, v = { 5, "value" };

		mkdir(lmdbdir, 0755);
		mdb_env_create(&env);
		mdb_env_open(env, lmdbdir, 0, 0644);
		mdb_txn_begin(env, NULL, 0, &txn);
		mdb_dbi_open(txn, NULL, 0, &dbi);
		mdb_put(txn, dbi, &k, &v, 0);
		mdb_txn_commit(txn);
		mdb_env_close(env);
	}
	rc = spool_open(&sp, lmdbdir, NULL, SPOOL_MODE_AGENT, err, sizeof(err));
	tap_ok(rc == SPOOL_ENOTSPOOL && strstr(err, "another application"),
	       "foreign: another application's LMDB refused (AGENT): %s", err);
	rc = spool_open(&sp, lmdbdir, NULL, SPOOL_MODE_READONLY, err, sizeof(err));
	tap_is_int(rc, SPOOL_ENOTSPOOL, "foreign: ...and READONLY");
}

static void test_newer_version(void)
{
	const char *dir = newdir("newer");
	spool_config cfg = base_cfg();
	char err[512], path[400];
	struct stat s1, s2;
	spool *sp;
	int rc;

	sp = xopen(dir, &cfg, SPOOL_MODE_AGENT);
	append_n(sp, 1, 3, 100, 0, NULL);
	spool_close(sp);
	{
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi dbi;
		uint8_t b[4] = { 99, 0, 0, 0 };
		MDB_val k = { 7, "version" }, v = { 4, b };

		mdb_env_create(&env);
		mdb_env_set_maxdbs(env, 8);
		mdb_env_open(env, dir, 0, 0644);
		mdb_txn_begin(env, NULL, 0, &txn);
		mdb_dbi_open(txn, "meta", 0, &dbi);
		mdb_put(txn, dbi, &k, &v, 0);
		mdb_txn_commit(txn);
		mdb_env_close(env);
	}
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	stat(path, &s1);
	rc = spool_open(&sp, dir, &cfg, SPOOL_MODE_AGENT, err, sizeof(err));
	tap_ok(rc == SPOOL_EVERSION && strstr(err, "version 99"),
	       "newer: format 99 refused: %s", err);
	rc = spool_open(&sp, dir, &cfg, SPOOL_MODE_READONLY, err, sizeof(err));
	tap_is_int(rc, SPOOL_EVERSION, "newer: READONLY refuses too");
	stat(path, &s2);
	tap_ok(s1.st_size == s2.st_size && s1.st_mtim.tv_sec == s2.st_mtim.tv_sec &&
	       s1.st_mtim.tv_nsec == s2.st_mtim.tv_nsec, "newer: data.mdb untouched");
}

static void test_stale_reader(void)
{
	const char *dir = newdir("stale");
	spool_config cfg = base_cfg();
	spool_stats st;
	int p[2], dead = -1;
	pid_t pid;
	spool *sp;
	char c;

	sp = xopen(dir, &cfg, SPOOL_MODE_AGENT);
	append_n(sp, 1, 10, 100, 0, NULL);
	spool_close(sp);
	if (pipe(p))
		return;
	pid = fork();
	if (pid == 0) {
		MDB_env *env;
		MDB_txn *txn;
		close(p[0]);
		mdb_env_create(&env);
		mdb_env_set_maxdbs(env, 8);
		if (mdb_env_open(env, dir, MDB_RDONLY, 0644) ||
		    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))
			_exit(2);
		if (write(p[1], "y", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		c = 'n';
	sp = xopen(dir, &cfg, SPOOL_MODE_AGENT);
	st = xstat(sp);
	tap_ok(c == 'y' && st.readers_used >= 2, "stale: child holds a reader slot (%u in use)",
	       st.readers_used);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	tap_is_int(spool_reader_check(sp, &dead), 0, "stale: reader check runs");
	tap_is_int(dead, 1, "stale: the killed child's slot was cleared");
	st = xstat(sp);
	tap_ok(st.readers_used == 1, "stale: one slot left (ours): %u", st.readers_used);
	/* freed pages are reusable again: churn does not grow the file */
	{
		uint64_t used0;
		for (int i = 0; i < 30; i++) {
			append_n(sp, 100 + i * 50, 50, 3000, 0, NULL);
			spool_advance(sp, UINT64_MAX);
		}
		used0 = xstat(sp).used_bytes;
		for (int i = 0; i < 200; i++) {
			append_n(sp, 200 + i * 50, 50, 3000, 0, NULL);
			spool_advance(sp, UINT64_MAX);
		}
		st = xstat(sp);
		tap_ok(st.used_bytes <= used0 + 64 * KIB,
		       "stale: steady churn reuses pages (used %llu -> %llu bytes)",
		       (unsigned long long)used0, (unsigned long long)st.used_bytes);
	}
	spool_close(sp);
	close(p[0]);
}

/* Runs fn in a child with SPOOLCAP_CRASH_POINT=point; returns 1 if the
 * child died of SIGKILL. */
static int crash_child(const char *dir, const char *point, void (*fn)(spool *))
{
	spool_config cfg = base_cfg();
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		spool *s = NULL;
		setenv("SPOOLCAP_CRASH_POINT", point, 1);
		if (spool_open(&s, dir, &cfg, SPOOL_MODE_AGENT, NULL, 0))
			_exit(3);
		fn(s);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

static void cf_append(spool *s) { append_n(s, 100, 2, 300, 0, NULL); }
static void cf_advance(spool *s) { spool_advance(s, 2); }
static void cf_dlq(spool *s)
{
	spool_dlq_put(s, 3, &(spool_dlq_info){ .reason = SPOOL_DLQ_REJECTED });
}
static void cf_dict(spool *s) { spool_dict_put(s, 50000, "dictionary", 10); }

static void test_crash_points(void)
{
	const char *dir = newdir("crash");
	spool_config cfg = base_cfg();
	spool_stats st;
	void *buf;
	size_t len;
	spool *sp;

	sp = xopen(dir, &cfg, SPOOL_MODE_AGENT);
	append_n(sp, 1, 3, 300, 0, NULL);
	spool_close(sp);

	tap_ok(crash_child(dir, "after_put_before_commit", cf_append),
	       "crash: killed at after_put_before_commit");
	sp = xopen(dir, &cfg, SPOOL_MODE_READONLY);
	st = xstat(sp);
	tap_ok(st.records == 3 && st.next_seq == 4, "crash: ...the batch is not there");
	spool_close(sp);
	tap_ok(crash_child(dir, "after_commit", cf_append), "crash: killed at after_commit");
	sp = xopen(dir, &cfg, SPOOL_MODE_READONLY);
	st = xstat(sp);
	tap_ok(st.records == 5 && st.next_seq == 6 && st.accepted == 5,
	       "crash: ...the batch is there");
	spool_close(sp);
	tap_ok(crash_child(dir, "inside_advance", cf_advance), "crash: killed inside_advance");
	sp = xopen(dir, &cfg, SPOOL_MODE_READONLY);
	st = xstat(sp);
	tap_ok(st.cursor == 0 && st.records == 5, "crash: ...cursor and records unchanged");
	spool_close(sp);
	tap_ok(crash_child(dir, "during_dlq_move", cf_dlq), "crash: killed during_dlq_move");
	sp = xopen(dir, &cfg, SPOOL_MODE_READONLY);
	st = xstat(sp);
	tap_ok(st.dlq_records == 0 && st.records == 5, "crash: ...record still queued");
	spool_close(sp);
	tap_ok(crash_child(dir, "during_dict_store", cf_dict), "crash: killed during_dict_store");
	sp = xopen(dir, &cfg, SPOOL_MODE_READONLY);
	tap_is_int(spool_dict_get(sp, 50000, &buf, &len), SPOOL_ENOENT,
	           "crash: ...dictionary not stored");
	spool_close(sp);
	{
		char err[256];
		setenv("SPOOLCAP_CRASH_POINT", "nonsense", 1);
		tap_is_int(spool_open(&sp, dir, &cfg, SPOOL_MODE_READONLY, err, sizeof(err)),
		           SPOOL_EINVAL, "crash: unknown crash point name refused");
		unsetenv("SPOOLCAP_CRASH_POINT");
	}
}

/* -------------------------------------------------------- threads */

struct thr {
	spool *sp;
	uint64_t nrec;
	atomic_int writer_done;
	int errors, out_of_order, bad;
	uint64_t seen;
};

static void *writer_thr(void *a)
{
	struct thr *t = a;
	uint64_t rng = 7, id = 1;

	while (id <= t->nrec) {
		size_t n = 1 + rng_next(&rng) % 32, len = 16 + rng_next(&rng) % 12000;
		if (id + n - 1 > t->nrec)
			n = t->nrec - id + 1;
		if (append_n(t->sp, id, n, len, 0, NULL) != (int)n)
			t->errors++;
		id += n;
	}
	atomic_store(&t->writer_done, 1);
	return NULL;
}

struct rstate {
	struct thr *t;
	uint64_t last;
};

static int reader_cb(uint64_t seq, const void *v, size_t len, void *u)
{
	struct rstate *r = u;
	uint64_t id;

	if (!check_val(v, len, &id) || id != seq)
		r->t->bad++;
	if (seq != r->last + 1)
		r->t->out_of_order++;
	r->last = seq;
	r->t->seen++;
	return 0;
}

static void *reader_thr(void *a)
{
	struct thr *t = a;
	struct rstate r = { t, 0 };

	for (;;) {
		int done = atomic_load(&t->writer_done);
		int n = spool_read(t->sp, r.last, 100, 256 * KIB, reader_cb, &r);
		if (n < 0)
			t->errors++;
		if (n > 0 && spool_advance(t->sp, r.last) != 0)
			t->errors++;
		if (n == 0 && done)
			break;
	}
	return NULL;
}

static void *stat_thr(void *a)
{
	struct thr *t = a;
	spool_stats st;

	while (!atomic_load(&t->writer_done))
		if (spool_stat(t->sp, &st) != 0)
			t->errors++;
	return NULL;
}

static void test_threads(void)
{
	spool_config cfg = base_cfg();
	struct thr t;
	pthread_t w, r, s;
	spool_stats st;

	memset(&t, 0, sizeof(t));
	cfg.initial_mapsize = 64 * KIB;     /* grows while the reader reads */
	t.sp = xopen(newdir("threads"), &cfg, SPOOL_MODE_AGENT);
	t.nrec = 20000;
	pthread_create(&w, NULL, writer_thr, &t);
	pthread_create(&r, NULL, reader_thr, &t);
	pthread_create(&s, NULL, stat_thr, &t);
	pthread_join(w, NULL);
	pthread_join(r, NULL);
	pthread_join(s, NULL);
	st = xstat(t.sp);
	tap_ok(t.errors == 0 && t.bad == 0 && t.out_of_order == 0 && t.seen == t.nrec,
	       "threads: writer + reader/advancer + stat: %llu seen in order, %d errors",
	       (unsigned long long)t.seen, t.errors);
	tap_ok(st.records == 0 && st.delivered == t.nrec && st.accepted == t.nrec,
	       "threads: all delivered, counters agree");
	spool_close(t.sp);
}

/* ---------------------------------------------------- disk full */

static void test_disk_full(void)
{
	char mnt[300], dir[320], filler[320];
	spool_config cfg = base_cfg();
	spool_append_result r[16];
	spool_stats st;
	uint64_t id = 1, stored = 0, full_batches = 0, after;
	int errs = 0, rc, fd;
	spool *sp;

	snprintf(mnt, sizeof(mnt), "%s/tmpfs", base);
	mkdir(mnt, 0755);
	if (geteuid() != 0 || mount("tmpfs", mnt, "tmpfs", 0, "size=8m") != 0) {
		tap_skip(10, geteuid() != 0 ? "disk full: needs root to mount a tmpfs"
		                            : "disk full: cannot mount a tmpfs here");
		return;
	}
	/* someone else's 3 MiB, deleted later to "free space" */
	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	fd = open(filler, O_CREAT | O_WRONLY, 0644);
	if (fd < 0 || posix_fallocate(fd, 0, 3 * MIB) != 0)
		tap_diag("filler: %s", strerror(errno));
	close(fd);
	snprintf(dir, sizeof(dir), "%s/spool", mnt);
	cfg.initial_mapsize = 64 * MIB;
	cfg.disk_reserve = 1 * MIB;
	sp = xopen(dir, &cfg, SPOOL_MODE_AGENT);
	if (!sp) {
		umount(mnt);
		tap_skip(10, "disk full: cannot open a spool on the tmpfs");
		return;
	}
	/* 16 x 4 KB per batch until the filesystem refuses three in a row */
	while (full_batches < 3 && id < 100000) {
		rc = append_n(sp, id, 16, 4000, 0, r);
		if (rc < 0) {
			errs++;
			break;
		}
		if (rc == 0 && r[0].drop == SPOOL_DROP_DISK_FULL)
			full_batches++;
		stored += (uint64_t)rc;
		id += 16;
	}
	st = xstat(sp);
	tap_ok(errs == 0 && full_batches == 3, "disk full: appends return drops, not errors "
	       "(%llu stored first)", (unsigned long long)stored);
	tap_ok(st.dropped[SPOOL_DROP_DISK_FULL] == 48 && st.space_state == 2 &&
	       !st.reserve_held, "disk full: counted as disk_full (%llu), reserve released",
	       (unsigned long long)st.dropped[SPOOL_DROP_DISK_FULL]);
	rc = spool_advance(sp, stored / 2);
	tap_is_int(rc, 0, "disk full: advance (delete) works on the full filesystem");
	if (rc)
		tap_diag("advance: %s", spool_errmsg());
	rc = append_n(sp, id, 16, 4000, 0, r);
	id += 16;
	tap_is_int(rc, 16, "disk full: appends reuse the freed pages");
	/* steady state on a still-full disk: deliver and append, the file
	 * works as a ring and nothing fails */
	after = stored / 2;
	errs = 0;
	for (int i = 0; i < 200; i++) {
		after += 16;
		if (spool_advance(sp, after) != 0 || append_n(sp, id, 16, 4000, 0, r) != 16)
			errs++;
		id += 16;
	}
	st = xstat(sp);
	tap_ok(errs == 0 && st.space_state == 2,
	       "disk full: 200 deliver+append cycles on the full filesystem (%d failed)", errs);
	/* the operator frees space: the spool re-creates its reserve */
	unlink(filler);
	rc = append_n(sp, id, 16, 4000, 0, r);
	id += 16;
	st = xstat(sp);
	tap_ok(rc == 16 && st.space_state == 0 && st.reserve_held,
	       "disk full: space freed -> reserve re-created, back to normal");
	spool_close(sp);
	sp = xopen(dir, &cfg, SPOOL_MODE_READONLY);
	st = xstat(sp);
	tap_ok(st.dropped[SPOOL_DROP_DISK_FULL] == 48 && st.accepted == stored + 16 * 202,
	       "disk full: drop counters persisted by a later txn");
	{
		struct coll *c = calloc(1, sizeof(*c));
		spool_read(sp, 0, 0, 0, collect, c);
		tap_ok(c->bad == 0 && (uint64_t)c->n == st.records && st.records ==
		       stored + 16 * 202 - after, "disk full: every stored record intact (%d)",
		       c->n);
		free(c);
	}
	spool_close(sp);
	umount(mnt);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(base, sizeof(base), "%s/t-spool.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	unsetenv("SPOOLCAP_CRASH_POINT");
	test_basic();
	test_seq_never_reused();
	test_retention();
	test_full_policies();
	test_map_growth();
	test_dlq();
	test_dict();
	test_verify();
	test_reentry();
	test_agent_lock();
	test_readonly_beside_agent();
	test_foreign();
	test_newer_version();
	test_stale_reader();
	test_crash_points();
	test_threads();
	test_disk_full();
	rm_rf(base);
	return tap_done(0);
}
