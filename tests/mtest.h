/* mtest.h -- helpers shared by the metrics and signal tests: a small HTTP
 * client (scrapes), Prometheus text look-ups, and tests/receiver.py
 * instances (tests/rxproc.c) started and stopped by PID. */
#ifndef SPOOLCAP_MTEST_H
#define SPOOLCAP_MTEST_H

#include <stddef.h>
#include <sys/types.h>

#include "rxproc.h"

double mt_now(void);                 /* monotonic seconds */

/* One HTTP/1.0 request to 127.0.0.1:port. Returns the status (or -1) and
 * the body, NUL-terminated, in a malloc'd *body (may be NULL to ignore). */
int mt_http(unsigned port, const char *method, const char *path, const char *data,
            char **body);

/* The value of one sample ("name" or "name{labels}" exactly as rendered),
 * or -1 when absent. */
double mt_prom(const char *text, const char *series);
/* Checks the text format: every sample's family has HELP and TYPE lines
 * before it, counters end in _total, values parse. 0, or -1 with why. */
int mt_prom_check(const char *text, char *why, size_t whylen);
/* One sample scraped from 127.0.0.1:port/metrics (-2 when the scrape
 * fails, -1 when the sample is absent), and the same polled every 50 ms
 * until it equals want or timeout_s passed (returns the last value). */
double mt_metric(unsigned port, const char *series);
double mt_wait_metric(unsigned port, const char *series, double want, double timeout_s);

/* A tests/receiver.py on 127.0.0.1, port 0 (tests/rxproc.h: --record in
 * rec, --record-events in events, stderr in err). */
typedef struct rxp mt_rx;
/* py: python3; script: tests/receiver.py; dir: scratch dir; name: prefix. */
int  mt_rx_start(mt_rx *x, const char *py, const char *script, const char *dir,
                 const char *name);
void mt_rx_stop(mt_rx *x);
/* POST /_control; 0 if applied. */
int  mt_rx_control(const mt_rx *x, const char *cmd);

/* The spoolcapd log line "metrics on http://HOST:PORT/metrics": the port,
 * waiting up to timeout_s for it; 0 if absent. */
unsigned mt_metrics_port(const char *log_path, double timeout_s);
/* 1 once the file holds needle (waits up to timeout_s). */
int  mt_file_has(const char *path, const char *needle, double timeout_s);
/* Counts lines of path containing needle. */
int  mt_count_lines(const char *path, const char *needle);

#endif
