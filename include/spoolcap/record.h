/* record.h -- the spool's record format: one record per SPOE message.
 *
 * A stored record (the LMDB value) is a fixed 24-byte header followed by the
 * payload, either as one standard zstd frame (content checksum and
 * dictionary id on, so `zstd -d -D dict` decodes an exported frame) or as
 * raw bytes when compression is off. All integers are little-endian.
 *
 *   stored record, format version 1
 *   off size
 *    0   2  magic 'S' 'P'
 *    2   1  format version (1)
 *    3   1  flags: bit0 zstd, bit1 dictionary, bit2 truncated at capture
 *             limit (set by the caller); other bits must be 0
 *    4   4  dict_id: 0 = none, else RECORD_DICT_ID_MIN..RECORD_DICT_ID_MAX
 *    8   4  raw length: payload bytes after decompression (<= RECORD_RAW_MAX)
 *   12   4  check: CRC-32C of the payload when it is stored raw (bit0 = 0),
 *             0 when it is a zstd frame (which carries its own checksum)
 *   16   8  capture time, ns since the epoch (= the payload's recv_ns)
 *   24   n  payload (zstd frame, or raw length bytes)
 *
 *   payload (raw), version 1
 *    0   1  payload version (1)
 *    1   1  payload flags (0)
 *    2   2  engine id length E (<= RECORD_ENGINE_ID_MAX)
 *    4   4  message index within its NOTIFY (0-based)
 *    8   8  recv_ns: when the NOTIFY was complete (CLOCK_REALTIME ns)
 *   16   8  SPOP stream id
 *   24   8  SPOP frame id
 *   32   E  engine id (from HAPROXY-HELLO; may be empty)
 * 32+E   m  the message exactly as on the SPOP wire: NAME, NB-ARGS, then
 *             NB-ARGS x (NAME, TYPED-DATA) (ref §1.7); lossless for every
 *             SPOP type, decoded with the codec (spop_msg_next).
 *
 * Integrity: the zstd checksum (or the CRC-32C) covers the whole payload.
 * The header is checked field by field: magic, version, flags, reserved
 * bits, raw length against the frame's content size, dict id against the
 * frame's dict id, capture time against the payload's recv_ns. So any
 * damage is reported as an error, never decoded into a wrong event.
 *
 * Threads: a record_cctx / record_dctx belongs to one thread at a time.
 * record_dict is immutable and reference counted; share it freely. A
 * record_slot holds "the current dictionary": the spool switches it with
 * record_slot_set while I/O threads compress through it. */
#ifndef SPOOLCAP_RECORD_H
#define SPOOLCAP_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include "spoolcap/spop.h"

#define RECORD_HDR_SIZE         24
#define RECORD_FORMAT           1
#define RECORD_PAYLOAD_VERSION  1
#define RECORD_PAYLOAD_HDR      32          /* fixed part of the payload */
#define RECORD_F_ZSTD           0x01
#define RECORD_F_DICT           0x02
#define RECORD_F_TRUNCATED      0x04
#define RECORD_RAW_MAX          (64u << 20) /* cap on a payload's length */
#define RECORD_ENGINE_ID_MAX    255
#define RECORD_DICT_ID_MIN      32768u      /* zstd reserves ids below... */
#define RECORD_DICT_ID_MAX      0x7FFFFFFFu /* ...and from 2^31 */
#define RECORD_DICT_MAX         (1u << 20)  /* cap on a dictionary's size */

enum record_err {
	RECORD_OK        = 0,
	RECORD_ESHORT    = -1,   /* shorter than its header */
	RECORD_EMAGIC    = -2,   /* not 'S' 'P' */
	RECORD_EVERSION  = -3,   /* unknown format or payload version */
	RECORD_EHEADER   = -4,   /* unknown flags, reserved bits set, time mismatch */
	RECORD_EDICT     = -5,   /* dictionary unknown, or not the frame's one */
	RECORD_EZSTD     = -6,   /* zstd frame invalid (other than checksum) */
	RECORD_ECHECKSUM = -7,   /* zstd content checksum or CRC-32C mismatch */
	RECORD_ELENGTH   = -8,   /* raw length over the cap or not what decodes */
	RECORD_EPAYLOAD  = -9,   /* payload structure invalid */
	RECORD_ENOMEM    = -10,
	RECORD_ETOOBIG   = -11,  /* encode: payload would exceed RECORD_RAW_MAX */
	RECORD_EINVAL    = -12   /* encode: bad argument (engine id too long...) */
};
/* A sentence ("zstd content checksum mismatch"). */
const char *record_strerror(int err);
/* A short stable token for dead-letter reasons and metrics ("checksum"). */
const char *record_errname(int err);

/* A growable byte buffer; zero-initialise it, reuse it, record_buf_free. */
typedef struct record_buf {
	uint8_t *data;
	size_t   len, cap;
} record_buf;
void record_buf_free(record_buf *b);

/* What the agent knows about a message besides its bytes. */
typedef struct record_meta {
	int64_t  recv_ns;
	uint64_t sid, fid;
	uint32_t msg_index;       /* position in its NOTIFY, 0-based */
	spop_str engine_id;       /* <= RECORD_ENGINE_ID_MAX bytes */
	int      truncated;       /* sets RECORD_F_TRUNCATED */
} record_meta;

/* A decoded payload; pointers go into the raw payload buffer. */
typedef struct record_view {
	int64_t  recv_ns;
	uint64_t sid, fid;
	uint32_t msg_index;
	spop_str engine_id;
	spop_msg msg;             /* name, nargs, args iterator, raw bytes */
} record_view;

/* The fixed header of a stored record. */
typedef struct record_hdr {
	uint8_t  version;
	uint8_t  flags;
	uint32_t dict_id;
	uint32_t raw_len;
	uint32_t check;
	int64_t  time_ns;
	size_t   stored_len;      /* payload bytes after the header */
} record_hdr;

/* ---- dictionaries ---- */
typedef struct record_dict record_dict;

/* Loads a zstd dictionary (zstd format, magic EC30A437) whose id is in
 * RECORD_DICT_ID_MIN..MAX. level: the compression level it will be used at
 * (a CDict is digested for it), or 0 for a decode-only dictionary.
 * Returns a dictionary with one reference, or NULL and a message. */
record_dict *record_dict_new(const void *bytes, size_t len, int level,
                             char *err, size_t errlen);
/* Trains a dictionary of at most capacity bytes (e.g. 64 KiB) with the
 * given id from n samples (raw payloads, concatenated, sizes[i] each;
 * ~100x capacity in total is best). Takes about a second; run it off the
 * hot path. Fails (NULL, message) when the samples are too few or too
 * uniform for a useful dictionary. */
record_dict *record_dict_train(const void *samples, const size_t *sizes,
                               unsigned n, size_t capacity, uint32_t id,
                               int level, char *err, size_t errlen);
record_dict *record_dict_ref(record_dict *d);
void         record_dict_unref(record_dict *d);          /* NULL is fine */
uint32_t     record_dict_id(const record_dict *d);
/* The dictionary's bytes (to store in the spool, or export for zstd -D). */
const void  *record_dict_data(const record_dict *d, size_t *len);

/* ---- the current dictionary, switchable while threads compress ---- */
typedef struct record_slot record_slot;
record_slot *record_slot_new(void);
void         record_slot_free(record_slot *s);
/* Makes d (or NULL: no dictionary) current; the slot takes its own
 * reference. Publish a dictionary only after it is durably stored, since
 * records compressed with it can be committed as soon as this returns. */
void         record_slot_set(record_slot *s, record_dict *d);
/* A new reference to the current dictionary, or NULL. */
record_dict *record_slot_get(record_slot *s);

/* ---- encoding (I/O threads) ---- */
typedef struct record_cctx record_cctx;
/* level: zstd level (ZSTD_minCLevel()..ZSTD_maxCLevel(), e.g. 1 or 3), or
 * 0 to store payloads uncompressed (CRC-32C protected). With a dictionary
 * the dictionary's level applies. */
record_cctx *record_cctx_new(int level, char *err, size_t errlen);
void         record_cctx_free(record_cctx *c);
/* Appends one stored record to out (the record is out->data[old len ..
 * out->len)). msg is one SPOP message (name, nb-args, args), checked with
 * the codec. slot: the dictionary to use, or NULL for none; the context
 * keeps a reference to the slot's dictionary and looks for a new one with
 * one atomic load per call, so the previous dictionary stays alive until
 * each context's next call or free. Returns 0 or RECORD_EINVAL (engine id
 * too long, msg not exactly one valid message), RECORD_ETOOBIG,
 * RECORD_ENOMEM, RECORD_EZSTD. */
int record_encode(record_cctx *c, record_slot *slot, const record_meta *m,
                  const void *msg, size_t msg_len, record_buf *out);
/* The raw payload the last successful record_encode built (valid until the
 * context's next call): a dictionary training sample, no decompression
 * needed. */
const void *record_cctx_payload(const record_cctx *c, size_t *len);

/* ---- decoding ---- */
typedef struct record_dctx record_dctx;
record_dctx *record_dctx_new(void);
void         record_dctx_free(record_dctx *d);

/* Parses and checks the stored header only (no decompression): magic,
 * version, flags, reserved bits, dict id range, raw length cap, and for raw
 * payloads the stored length. */
int record_hdr_parse(const void *val, size_t len, record_hdr *h);

/* Finds a dictionary by id, or NULL. The result must stay valid until
 * record_decode returns (the spool never frees a dictionary in use). */
typedef const record_dict *record_dict_lookup_fn(void *arg, uint32_t id);

/* Decodes a stored record into out (replacing its contents) and checks it
 * entirely: header, frame, checksum, lengths and payload structure. hdr and
 * view may be NULL; view points into out. err (may be NULL) gets details,
 * e.g. zstd's own error text. Returns 0 or a negative enum record_err. */
int record_decode(record_dctx *d, const void *val, size_t len,
                  record_dict_lookup_fn *lookup, void *lookup_arg,
                  record_buf *out, record_hdr *hdr, record_view *view,
                  char *err, size_t errlen);

/* Parses a raw payload (from record_decode) into a view. Returns 0,
 * RECORD_ESHORT, RECORD_EVERSION or RECORD_EPAYLOAD. */
int record_parse_payload(const void *raw, size_t len, record_view *v);

/* CRC-32C (Castagnoli), as stored in raw records' check field. */
uint32_t record_crc32c(uint32_t crc, const void *p, size_t n);

#endif
