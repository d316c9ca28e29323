/* cli_har.h -- HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/)
 * from captured events: one entry from a request event and its response
 * event, either of which may be missing. Arguments are read by the names
 * of the capture recipe (contrib/haproxy/capture.spoe.conf): a request has
 * meth (or method), path, query, ver, tls, dst, dport, src, sport; a
 * response has status, ver, srv, srvaddr; both have uid, a header block
 * (an argument named *hdrs or *headers, binary hdrs_bin or text), body,
 * blen, bsize. */
#ifndef SPOOLCAP_CLI_HAR_H
#define SPOOLCAP_CLI_HAR_H

#include <stdint.h>

#include "spoolcap/json.h"
#include "spoolcap/record.h"

enum cli_har_kind { CLI_HAR_OTHER = 0, CLI_HAR_REQUEST = 1, CLI_HAR_RESPONSE = 2 };

/* A request (has meth or method), a response (has status), or neither. */
int  cli_har_kind(const record_view *v);

typedef struct cli_har_half {
	const record_view *v;       /* NULL: not captured */
	uint64_t           seq;
	int                truncated;   /* the record's RECORD_F_TRUNCATED */
} cli_har_half;

/* The log's opening, up to "entries":[ (comment names the spool). */
void cli_har_begin(json_buf *j, const char *spool_uuid, const char *dir);
/* One entry object (no separator). */
void cli_har_entry(json_buf *j, const cli_har_half *req, const cli_har_half *res);
/* Closes entries, log and document, with a newline. */
void cli_har_end(json_buf *j);

#endif
