/* event.h -- renders one spooled SPOE message as the event JSON object of
 * design.md ("Interface contract"), the unit of `spoolcap dump` and of the
 * NDJSON batches the replay thread POSTs:
 *
 *   {"id":"<spool-uuid>-<seq>","seq":N,"time":"2026-11-26T05:29:05.123456Z",
 *    "message":"<name>","spoe":{"engine":"<id>"|null,"stream":N,"frame":N},
 *    "args":{"<name>":VALUE,...}}
 *
 * Keys always in this order; one object, no trailing newline. Choices the
 * contract leaves open:
 *   - time: the agent's receive time of the NOTIFY, UTC, microseconds
 *     (nanoseconds truncated).
 *   - message name, engine id and arg names are strings; bytes that are not
 *     UTF-8 there (never seen in practice: they come from HAProxy's config
 *     and HELLO) become U+FFFD. An empty engine id renders as null.
 *   - args keep wire order. An unnamed arg gets the key "argN" where N is
 *     its 1-based position among all of the message's args ("arg1" is the
 *     first arg of the spoe-message's args line). Duplicate names are all
 *     kept, as repeated keys (RFC 8259 allows them; a parser that keeps only
 *     the last one loses the others, so give args distinct names).
 *   - VALUE: NULL null; BOOL true/false; INT32/INT64 signed and UINT32/
 *     UINT64 unsigned decimal numbers (all 64 bits; consumers that parse
 *     numbers as doubles lose precision above 2^53); IPV4/IPV6 address text
 *     (inet_ntop form); STRING/BINARY a string when valid UTF-8, else
 *     {"base64":"..."}; a BINARY arg named as a header block (event_opts)
 *     holding a well-formed req.hdrs_bin/res.hdrs_bin block:
 *     [["name","value"],...] in wire order, each name or value that is not
 *     UTF-8 as {"base64":"..."}; a malformed block falls back to the
 *     string/base64 form, so no byte is lost either way. */
#ifndef SPOOLCAP_EVENT_H
#define SPOOLCAP_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include "spoolcap/json.h"
#include "spoolcap/record.h"

#define EVENT_TIME_LEN  27      /* "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" */
#define EVENT_EMSG      (-3)    /* the message's args do not decode */

typedef struct event_opts {
	/* Names of BINARY args to render as header blocks. "*suffix" matches
	 * names ending in suffix, anything else matches the whole name; ASCII
	 * case-insensitive. NULL: the default, { "*hdrs", "*headers" }; a
	 * non-NULL list with n = 0 turns header rendering off. */
	const char *const *hdrs_args;
	size_t nhdrs_args;
} event_opts;

/* Appends the event object for record view v to b. opts may be NULL.
 * Returns 0, or JSON_ETOOBIG / JSON_ENOMEM / EVENT_EMSG after restoring b
 * to its length at the call (and clearing b->err), so a batch renderer
 * can stop at the cap and keep what it has. */
int event_render(json_buf *b, const record_view *v, uint64_t seq,
                 const char *spool_uuid, const event_opts *opts);

/* Appends a header block (ref §5.4: pairs of varint-length name and value,
 * ended by 00 00) as [["name","value"],...]. Returns 0; -1 when the block
 * is malformed (nothing appended); or b's error. */
int event_hdrs_render(json_buf *b, const void *block, size_t len);

/* 1 if arg name matches opts' header-block names. */
int event_is_hdrs_arg(const event_opts *opts, const void *name, size_t len);

/* Writes ns since the epoch as RFC 3339 UTC with microseconds plus a NUL
 * into out (EVENT_TIME_LEN + 1 bytes); returns EVENT_TIME_LEN. */
size_t event_time_format(char *out, int64_t ns);

#endif
