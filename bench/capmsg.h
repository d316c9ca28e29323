/* capmsg.h -- realistic "cap-req" NOTIFY frames for the SPOP load generator.
 *
 * Builds, once, a few variants of the request message the contrib capture
 * recipe sends (uid, t, meth, path, query, ver, src, sport, dst, dport, tls,
 * hdrs = a req.hdrs_bin block of ten usual headers, blen, bsize, body), each
 * padded so the whole NOTIFY frame is about the requested size. Per message
 * only the varying fields are patched (uuid, time, client port and address,
 * trace/cookie ids, numbers in the JSON body): no allocation, one memcpy.
 * The ids are pseudo-random hex, so compressibility is realistic rather
 * than that of identical copies. */
#ifndef SPOOLCAP_BENCH_CAPMSG_H
#define SPOOLCAP_BENCH_CAPMSG_H

#include <stddef.h>
#include <stdint.h>

#define CAPMSG_VARIANTS  8
#define CAPMSG_MAX_SLOTS 32

/* A field rewritten for each message. */
typedef struct capmsg_slot {
	uint32_t off;                 /* into the payload */
	uint16_t width;               /* bytes */
	uint8_t  kind;                /* private to capmsg.c */
} capmsg_slot;

typedef struct capmsg_tpl {
	uint8_t    *payload;          /* LIST-OF-MESSAGES, one "cap-req" */
	size_t      payload_len;
	unsigned    nslots;
	capmsg_slot slots[CAPMSG_MAX_SLOTS];
} capmsg_tpl;

/* Per-thread generator state: the templates plus the id counter and PRNG. */
typedef struct capmsg_gen {
	capmsg_tpl tpl[CAPMSG_VARIANTS];
	uint64_t   rng;               /* xorshift64* state, never 0 */
	uint64_t   seq;               /* messages made; part of each uid */
	uint32_t   gen_id;            /* distinguishes threads in uids */
	size_t     max_frame;         /* largest frame capmsg_emit can write */
} capmsg_gen;

/* Builds the variants so that a frame with a one-byte sid is about
 * target_size bytes (4-byte prefix included; never below the size of the
 * fixed fields, about 700 bytes). Returns 0, or -1 with err filled. */
int    capmsg_init(capmsg_gen *g, size_t target_size, uint32_t gen_id,
                   uint64_t seed, char *err, size_t errlen);
void   capmsg_free(capmsg_gen *g);
/* Writes one NOTIFY frame (sid, fid 1, FIN) into out, which must have room
 * for g->max_frame bytes; returns its size. */
size_t capmsg_emit(capmsg_gen *g, uint8_t *out, uint64_t sid, int64_t now_ms);
/* Average frame size over the variants (for reports). */
size_t capmsg_avg_size(const capmsg_gen *g);

#endif
