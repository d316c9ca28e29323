/* cli_export.h -- the writers behind spoolcap dump and export: the
 * matching records of a spool as NDJSON events (byte for byte what the
 * daemon delivers) or as a HAR 1.2 log. Records that do not decode are
 * reported on standard error and skipped. */
#ifndef SPOOLCAP_CLI_EXPORT_H
#define SPOOLCAP_CLI_EXPORT_H

#include <stdint.h>

#include "spoolcap/cli_filter.h"
#include "spoolcap/cli_out.h"

/* Counts of one export. */
typedef struct cli_export_stats {
	uint64_t events;            /* records written */
	uint64_t bad;               /* records skipped: they do not decode */
	uint64_t entries;           /* HAR: entries written */
	uint64_t unpaired;          /* HAR: entries missing their request or response */
	uint64_t other;             /* HAR: events neither request nor response */
} cli_export_stats;

/* Both return 0, or -1 when the walk or the output failed (reported). */
int cli_export_ndjson(cli_spool *c, const cli_filter *f, cli_out *o, cli_export_stats *st);
int cli_export_har(cli_spool *c, const cli_filter *f, cli_out *o, cli_export_stats *st);

#endif
