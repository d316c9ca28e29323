/* sink-http.c -- a fast loopback HTTP receiver for the delivery benchmarks
 * (libmicrohttpd, one epoll thread or a thread pool).
 *
 *   POST any path   reads the body as it streams in, decoding
 *                   Content-Encoding gzip (zlib) or zstd on the fly, and
 *                   counts requests, bytes on the wire, decoded bytes and
 *                   events (newlines of the decoded body); answers 200 with
 *                   an empty body once the body is read (400 if it does not
 *                   decode or ends inside a gzip member / zstd frame, 415
 *                   for another encoding). Nothing is stored.
 *   GET /stats      the counters as one JSON object (not counted).
 *   GET other       200 with --get-body bytes of text: a fast backend for
 *                   HAProxy latency runs (counted as "gets").
 *   SIGTERM/SIGINT  prints the counters (the same JSON line) on stdout and
 *                   exits 0.
 *
 *   sink-http [--listen HOST:PORT] [--port-file FILE] [--threads N]
 *             [--get-body BYTES]
 *
 * --listen defaults to 127.0.0.1:0 (a free port); --port-file receives the
 * port actually bound (written to FILE.tmp, then renamed, so a reader never
 * sees half a number). Memory is bounded: bodies are decoded through a
 * 64 KiB buffer per thread and never kept. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <zlib.h>
#include <zstd.h>

#define GET_BODY_MAX (16u << 20)

enum enc { ENC_IDENTITY, ENC_GZIP, ENC_ZSTD, ENC_OTHER };
enum kind { K_POST, K_STATS, K_GET };

static struct counters {
	atomic_uint_fast64_t posts, gets, wire_bytes, raw_bytes, events;
	atomic_uint_fast64_t decode_errors, bad_encoding;
	atomic_uint_fast64_t by_enc[3];
} ctr;

static struct MHD_Response *empty_resp, *get_resp;

struct req {
	enum kind kind;
	enum enc  enc;
	int       bad;              /* decoding failed: discard the rest */
	int       mid;              /* inside a gzip member or zstd frame */
	uint64_t  wire, raw, events;
	z_stream  z;
	int       z_init;
	ZSTD_DCtx *zd;
};

static _Thread_local uint8_t out[65536];

/* Decompression contexts are reused: creating one per request (and its
 * window buffer, mmap'ed and faulted in each time) cost the receiver more
 * CPU than the decompression itself with several requests in flight. */
#define DCTX_POOL 64
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static ZSTD_DCtx *dctx_pool[DCTX_POOL];
static unsigned ndctx;

static ZSTD_DCtx *dctx_get(void)
{
	ZSTD_DCtx *d = NULL;

	pthread_mutex_lock(&pool_mu);
	if (ndctx)
		d = dctx_pool[--ndctx];
	pthread_mutex_unlock(&pool_mu);
	if (d)
		ZSTD_DCtx_reset(d, ZSTD_reset_session_only);
	return d ? d : ZSTD_createDCtx();
}

static void dctx_put(ZSTD_DCtx *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&pool_mu);
	if (ndctx < DCTX_POOL) {
		dctx_pool[ndctx++] = d;
		d = NULL;
	}
	pthread_mutex_unlock(&pool_mu);
	ZSTD_freeDCtx(d);
}

static uint64_t count_nl(const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n;
	uint64_t k = 0;

	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		k++;
		p++;
	}
	return k;
}

static void decoded(struct req *q, const uint8_t *p, size_t n)
{
	q->raw += n;
	q->events += count_nl(p, n);
}

static int feed_gzip(struct req *q, const uint8_t *p, size_t n)
{
	int rc;

	if (!q->z_init) {
		memset(&q->z, 0, sizeof q->z);
		if (inflateInit2(&q->z, 16 + MAX_WBITS) != Z_OK)
			return -1;
		q->z_init = 1;
	}
	q->z.next_in = (Bytef *)(uintptr_t)p;
	q->z.avail_in = (uInt)n;
	while (q->z.avail_in > 0) {
		q->z.next_out = out;
		q->z.avail_out = sizeof out;
		rc = inflate(&q->z, Z_NO_FLUSH);
		decoded(q, out, sizeof out - q->z.avail_out);
		q->mid = rc != Z_STREAM_END;
		if (rc == Z_STREAM_END) {
			/* concatenated members are valid gzip */
			if (inflateReset(&q->z) != Z_OK)
				return -1;
		} else if (rc != Z_OK && rc != Z_BUF_ERROR) {
			return -1;
		} else if (rc == Z_BUF_ERROR && q->z.avail_out == sizeof out) {
			return -1;  /* no progress with input left: cannot happen on valid data */
		}
	}
	return 0;
}

static int feed_zstd(struct req *q, const uint8_t *p, size_t n)
{
	ZSTD_inBuffer in = { p, n, 0 };

	if (!q->zd && !(q->zd = dctx_get()))
		return -1;
	/* until the input is used up and the output no longer fills up */
	for (;;) {
		ZSTD_outBuffer o = { out, sizeof out, 0 };
		size_t before = in.pos, rc = ZSTD_decompressStream(q->zd, &o, &in);

		if (ZSTD_isError(rc))
			return -1;
		decoded(q, out, o.pos);
		if (rc == 0)
			q->mid = 0;             /* a frame ended and is flushed */
		else if (in.pos > before)
			q->mid = 1;
		if (in.pos == in.size && o.pos < o.size)
			return 0;
	}
}

static void feed(struct req *q, const char *p, size_t n)
{
	int rc = 0;

	q->wire += n;
	if (q->bad)
		return;
	switch (q->enc) {
	case ENC_IDENTITY:
		decoded(q, (const uint8_t *)p, n);
		break;
	case ENC_GZIP:
		rc = feed_gzip(q, (const uint8_t *)p, n);
		break;
	case ENC_ZSTD:
		rc = feed_zstd(q, (const uint8_t *)p, n);
		break;
	default:
		break;
	}
	if (rc < 0)
		q->bad = 1;
}

static enum enc parse_enc(const char *v)
{
	if (!v || !*v || strcasecmp(v, "identity") == 0)
		return ENC_IDENTITY;
	if (strcasecmp(v, "gzip") == 0 || strcasecmp(v, "x-gzip") == 0)
		return ENC_GZIP;
	if (strcasecmp(v, "zstd") == 0)
		return ENC_ZSTD;
	return ENC_OTHER;
}

static int stats_json(char *buf, size_t len)
{
	return snprintf(buf, len,
	                "{\"posts\":%" PRIu64 ",\"wire_bytes\":%" PRIu64 ",\"raw_bytes\":%" PRIu64
	                ",\"events\":%" PRIu64 ",\"decode_errors\":%" PRIu64
	                ",\"bad_encoding\":%" PRIu64 ",\"identity\":%" PRIu64 ",\"gzip\":%" PRIu64
	                ",\"zstd\":%" PRIu64 ",\"gets\":%" PRIu64 "}\n",
	                (uint64_t)atomic_load(&ctr.posts), (uint64_t)atomic_load(&ctr.wire_bytes),
	                (uint64_t)atomic_load(&ctr.raw_bytes), (uint64_t)atomic_load(&ctr.events),
	                (uint64_t)atomic_load(&ctr.decode_errors),
	                (uint64_t)atomic_load(&ctr.bad_encoding),
	                (uint64_t)atomic_load(&ctr.by_enc[ENC_IDENTITY]),
	                (uint64_t)atomic_load(&ctr.by_enc[ENC_GZIP]),
	                (uint64_t)atomic_load(&ctr.by_enc[ENC_ZSTD]),
	                (uint64_t)atomic_load(&ctr.gets));
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status,
                              struct MHD_Response *r)
{
	return MHD_queue_response(c, status, r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
	struct req *q = *con_cls;

	(void)cls;
	(void)version;
	if (!q) {
		q = calloc(1, sizeof *q);
		if (!q)
			return MHD_NO;
		if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
			q->kind = K_POST;
			q->enc = parse_enc(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
			                                               "Content-Encoding"));
		} else {
			q->kind = strcmp(url, "/stats") == 0 ? K_STATS : K_GET;
		}
		*con_cls = q;
		return MHD_YES;
	}
	if (*upload_size) {
		if (q->kind == K_POST)
			feed(q, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (q->kind == K_STATS) {
		char buf[512];
		struct MHD_Response *r;
		enum MHD_Result rc;
		int n = stats_json(buf, sizeof buf);

		r = MHD_create_response_from_buffer((size_t)n, buf, MHD_RESPMEM_MUST_COPY);
		if (!r)
			return MHD_NO;
		MHD_add_response_header(r, "Content-Type", "application/json");
		rc = answer(c, 200, r);
		MHD_destroy_response(r);
		return rc;
	}
	if (q->kind == K_GET) {
		atomic_fetch_add(&ctr.gets, 1);
		return answer(c, 200, get_resp);
	}
	/* the whole POST body is in */
	atomic_fetch_add(&ctr.posts, 1);
	atomic_fetch_add(&ctr.wire_bytes, q->wire);
	if (q->enc == ENC_OTHER) {
		atomic_fetch_add(&ctr.bad_encoding, 1);
		return answer(c, 415, empty_resp);
	}
	atomic_fetch_add(&ctr.by_enc[q->enc], 1);
	if (q->bad || q->mid) {     /* undecodable, or cut short */
		atomic_fetch_add(&ctr.decode_errors, 1);
		return answer(c, 400, empty_resp);
	}
	atomic_fetch_add(&ctr.raw_bytes, q->raw);
	atomic_fetch_add(&ctr.events, q->events);
	return answer(c, 200, empty_resp);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct req *q = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (!q)
		return;
	if (q->z_init)
		inflateEnd(&q->z);
	dctx_put(q->zd);
	free(q);
	*con_cls = NULL;
}

static int parse_listen(const char *s, struct sockaddr_storage *ss, int *v6)
{
	char host[256];
	const char *colon, *port;
	size_t hl;
	struct addrinfo hints, *ai = NULL;
	int rc;

	if (s[0] == '[') {
		colon = strstr(s, "]:");
		if (!colon)
			return -1;
		hl = (size_t)(colon - s - 1);
		if (hl >= sizeof host)
			return -1;
		memcpy(host, s + 1, hl);
		port = colon + 2;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - s);
		if (hl >= sizeof host)
			return -1;
		memcpy(host, s, hl);
		port = colon + 1;
	}
	host[hl] = 0;
	memset(&hints, 0, sizeof hints);
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0 || !ai)
		return -1;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*v6 = ai->ai_family == AF_INET6;
	freeaddrinfo(ai);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: sink-http [--listen HOST:PORT] [--port-file FILE] [--threads N]\n"
	           "                 [--get-body BYTES]\n"
	           "POST: counts requests, bytes and events (newlines) of the body, decoding\n"
	           "gzip/zstd; GET /stats: counters as JSON; other GETs: --get-body bytes.\n"
	           "Prints the counters on SIGTERM/SIGINT.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' },
		{ "get-body", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *listen_at = "127.0.0.1:0", *port_file = NULL;
	unsigned long threads = 1, get_body = 64;
	struct sockaddr_storage ss;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *di;
	unsigned flags;
	char *gb, buf[512];
	sigset_t set;
	int o, v6 = 0, sig;

	while ((o = getopt_long(argc, argv, "l:p:t:g:h", opts, NULL)) != -1) {
		char *end;

		switch (o) {
		case 'l':
			listen_at = optarg;
			break;
		case 'p':
			port_file = optarg;
			break;
		case 't':
			threads = strtoul(optarg, &end, 10);
			if (*end || threads < 1 || threads > 64) {
				fprintf(stderr, "sink-http: --threads takes 1..64\n");
				return 2;
			}
			break;
		case 'g':
			get_body = strtoul(optarg, &end, 10);
			if (*end || get_body > GET_BODY_MAX) {
				fprintf(stderr, "sink-http: --get-body takes 0..%u bytes\n", GET_BODY_MAX);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (parse_listen(listen_at, &ss, &v6) < 0) {
		fprintf(stderr, "sink-http: --listen %s: expected a numeric HOST:PORT or [V6]:PORT\n",
		        listen_at);
		return 2;
	}

	/* signals go to sigwait below, not to the daemon's threads */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	gb = malloc(get_body + 1);
	if (!gb) {
		fprintf(stderr, "sink-http: out of memory\n");
		return 1;
	}
	for (unsigned long i = 0; i < get_body; i++)
		gb[i] = i + 1 == get_body ? '\n' : (char)('a' + i % 26);
	empty_resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	get_resp = MHD_create_response_from_buffer(get_body, gb, MHD_RESPMEM_PERSISTENT);
	if (!empty_resp || !get_resp) {
		fprintf(stderr, "sink-http: cannot create responses\n");
		return 1;
	}
	MHD_add_response_header(get_resp, "Content-Type", "text/plain");

	flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
	if (v6)
		flags |= MHD_USE_IPv6;
	d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL,
	                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	                     MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
	                     MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
	                     MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
	                     threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
	                     (unsigned)threads, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "sink-http: cannot listen on %s (%s): port in use, or not a "
		        "local address?\n", listen_at, strerror(errno));
		return 1;
	}
	di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (port_file) {
		char tmp[4096];
		FILE *f;

		snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
		f = fopen(tmp, "w");
		if (!f || fprintf(f, "%u\n", di ? di->port : 0) < 0 || fclose(f) != 0 ||
		    rename(tmp, port_file) != 0) {
			fprintf(stderr, "sink-http: cannot write %s: %s\n", port_file, strerror(errno));
			MHD_stop_daemon(d);
			return 1;
		}
	} else {
		fprintf(stderr, "sink-http: listening on port %u\n", di ? di->port : 0);
	}

	while (sigwait(&set, &sig) != 0)
		;
	MHD_stop_daemon(d);
	stats_json(buf, sizeof buf);
	fputs(buf, stdout);
	fflush(stdout);
	MHD_destroy_response(empty_resp);
	MHD_destroy_response(get_resp);
	free(gb);
	return 0;
}
