/* cli_hdrs.h -- reads the header block an argument holds, in either form
 * HAProxy produces: req.hdrs_bin / res.hdrs_bin (pairs of varint-length
 * name and value ended by 00 00, ref §5.4, as event_hdrs_render reads them)
 * or req.hdrs / res.hdrs text ("Name: value" lines ended by an empty line).
 * For --match ARG.HEADER and the HAR export. */
#ifndef SPOOLCAP_CLI_HDRS_H
#define SPOOLCAP_CLI_HDRS_H

#include "spoolcap/spop.h"

typedef struct cli_hdrs {
	const uint8_t *p, *end;
	int            text;        /* 1: text lines, 0: binary block */
} cli_hdrs;

/* Starts on a STRING or BINARY value: a well-formed binary block, else
 * well-formed text (every line before the empty one is "name:value" with
 * a non-empty name without white space). Returns 0, or -1 when the value
 * is neither (then it is not a header block). */
int cli_hdrs_init(cli_hdrs *h, const spop_data *v);
/* The next header: 1 (name and value point into the value; text values
 * without the white space around them), 0 at the end. */
int cli_hdrs_next(cli_hdrs *h, spop_str *name, spop_str *value);

/* ASCII case-insensitive equality of a header name with s[0..n). */
int cli_hdrs_name_eq(spop_str name, const char *s, size_t n);

#endif
