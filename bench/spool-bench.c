/* spool-bench.c -- append throughput of the LMDB spool (src/spool*.c):
 * records/s, MB/s and the latency of one spool_append call (the part of
 * the ACK latency the writer adds), per sync mode, value size and records
 * per transaction. In "process" mode a thread runs spool_sync() every
 * second, as the daemon does. A consumer thread can drain concurrently
 * (--drain) to show steady state with deletes competing for the writer
 * lock. Prints figures; asserts nothing.
 *
 *   spool-bench [--dir DIR] [--modes process,relaxed,durable]
 *               [--sizes 1024,8192] [--batches 1,16,256] [--seconds S]
 *               [--drain] */
#include "config.h"

#include <ftw.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spoolcap/spool.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static int parse_list(const char *s, long *out, int max)
{
	int n = 0;
	char *end;

	while (*s && n < max) {
		out[n++] = strtol(s, &end, 10);
		s = *end == ',' ? end + 1 : end;
		if (end == s && *s)
			break;
	}
	return n;
}

struct bg {
	spool *sp;
	atomic_int stop;
	int drain;
	uint64_t drained;
};

static void *sync_thread(void *a)
{
	struct bg *b = a;

	while (!atomic_load(&b->stop)) {
		for (int i = 0; i < 100 && !atomic_load(&b->stop); i++)
			usleep(10000);
		spool_sync(b->sp);
	}
	return NULL;
}

static int count_cb(uint64_t seq, const void *v, size_t len, void *u)
{
	uint64_t *last = u;
	(void)v;
	(void)len;
	*last = seq;
	return 0;
}

/* The replay thread's share: read a batch, then delete it. */
static void *drain_thread(void *a)
{
	struct bg *b = a;
	uint64_t last = 0;

	while (!atomic_load(&b->stop)) {
		int n = spool_read(b->sp, last, 500, 4u << 20, count_cb, &last);
		if (n > 0) {
			spool_advance(b->sp, last);
			b->drained += (uint64_t)n;
		} else {
			usleep(1000);
		}
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void run(const char *base, int mode, long size, long batch, double seconds,
                int drain)
{
	char dir[512], err[512];
	spool_config cfg;
	spool_item *items;
	spool_append_result *res;
	uint8_t *buf;
	double t0, t1, *lat;
	size_t nlat = 0, maxlat = 2000000;
	uint64_t recs = 0;
	pthread_t th_sync, th_drain;
	struct bg b;
	spool *sp;

	snprintf(dir, sizeof(dir), "%s/spool-bench.%d", base, (int)getpid());
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	memset(&cfg, 0, sizeof(cfg));
	cfg.sync_mode = mode;
	cfg.max_size = 64ull << 30;
	cfg.initial_mapsize = 1ull << 30;
	cfg.disk_reserve = UINT64_MAX;
	if (spool_open(&sp, dir, &cfg, SPOOL_MODE_AGENT, err, sizeof(err)) != 0) {
		fprintf(stderr, "spool-bench: %s\n", err);
		exit(1);
	}
	items = calloc((size_t)batch, sizeof(*items));
	res = calloc((size_t)batch, sizeof(*res));
	buf = malloc((size_t)(batch * size));
	lat = malloc(maxlat * sizeof(*lat));
	for (long i = 0; i < batch * size; i++)
		buf[i] = (uint8_t)(i * 131 + (i >> 9));    /* LMDB does not compress */
	for (long i = 0; i < batch; i++) {
		items[i].data = buf + i * size;
		items[i].len = (size_t)size;
	}
	memset(&b, 0, sizeof(b));
	b.sp = sp;
	if (mode == SPOOL_SYNC_PROCESS)
		pthread_create(&th_sync, NULL, sync_thread, &b);
	if (drain)
		pthread_create(&th_drain, NULL, drain_thread, &b);
	t0 = now_s();
	t1 = t0;
	while (t1 - t0 < seconds) {
		double a = now_s();
		int n = spool_append(sp, items, (size_t)batch, res);

		t1 = now_s();
		if (n != batch) {
			fprintf(stderr, "spool-bench: append stored %d of %ld: %s\n", n, batch,
			        n < 0 ? spool_errmsg() : "dropped");
			break;
		}
		if (nlat < maxlat)
			lat[nlat++] = t1 - a;
		recs += (uint64_t)n;
	}
	atomic_store(&b.stop, 1);
	if (mode == SPOOL_SYNC_PROCESS)
		pthread_join(th_sync, NULL);
	if (drain)
		pthread_join(th_drain, NULL);
	qsort(lat, nlat, sizeof(*lat), cmp_double);
	printf("%-8s %6ld B %5ld/txn %10.0f rec/s %8.1f MB/s  append p50 %7.3f ms "
	       "p99 %7.3f ms  max %7.3f ms%s\n", spool_sync_mode_name(mode), size, batch,
	       (double)recs / (t1 - t0), (double)recs * (double)size / (t1 - t0) / 1e6,
	       nlat ? lat[nlat / 2] * 1e3 : 0, nlat ? lat[nlat * 99 / 100] * 1e3 : 0,
	       nlat ? lat[nlat - 1] * 1e3 : 0, drain ? "  (with drain)" : "");
	fflush(stdout);
	spool_close(sp);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(items);
	free(res);
	free(buf);
	free(lat);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dir", 1, NULL, 'd' }, { "modes", 1, NULL, 'm' }, { "sizes", 1, NULL, 's' },
		{ "batches", 1, NULL, 'b' }, { "seconds", 1, NULL, 't' },
		{ "drain", 0, NULL, 'D' }, { "help", 0, NULL, 'h' }, { NULL, 0, NULL, 0 }
	};
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char modes[128] = "process,durable";
	long sizes[8] = { 1024, 8192 }, batches[8] = { 1, 16, 256 };
	int nsizes = 2, nbatches = 3, drain = 0, c;
	double seconds = 2;

	while ((c = getopt_long(argc, argv, "d:m:s:b:t:Dh", lo, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'm': snprintf(modes, sizeof(modes), "%s", optarg); break;
		case 's': nsizes = parse_list(optarg, sizes, 8); break;
		case 'b': nbatches = parse_list(optarg, batches, 8); break;
		case 't': seconds = atof(optarg); break;
		case 'D': drain = 1; break;
		default:
			fprintf(stderr, "usage: spool-bench [--dir DIR] [--modes process,relaxed,"
			        "durable] [--sizes 1024,8192] [--batches 1,16,256] [--seconds S] "
			        "[--drain]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	printf("# spool-bench: dir %s, %.1f s per case, LMDB appends of incompressible "
	       "values\n", dir, seconds);
	for (char *save = NULL, *m = strtok_r(modes, ",", &save); m;
	     m = strtok_r(NULL, ",", &save)) {
		int mode = spool_sync_mode_parse(m);
		if (mode < 0) {
			fprintf(stderr, "spool-bench: unknown mode %s\n", m);
			return 2;
		}
		for (int i = 0; i < nsizes; i++)
			for (int j = 0; j < nbatches; j++)
				run(dir, mode, sizes[i], batches[j], seconds, drain);
	}
	return 0;
}
