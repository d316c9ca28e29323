/* log.h -- leveled logging to stderr (one write per line, thread-safe).
 *
 * Line format: "<RFC 3339 UTC time> <level> [<thread>] <message>", e.g.
 *   2025-11-26T05:40:01.234Z info  [io0] conn#7 127.0.0.1:40522: closed ...
 * Each line is formatted on the stack and written with a single write(2)
 * (lines are capped below PIPE_BUF, so lines from threads never interleave). */
#ifndef SPOOLCAP_LOG_H
#define SPOOLCAP_LOG_H

#include <stddef.h>

enum log_level { LOGL_ERROR = 0, LOGL_WARN = 1, LOGL_INFO = 2, LOGL_DEBUG = 3 };

#define LOG_LINE_MAX 2048           /* longer lines are cut and end in "..." */

extern int log_level;               /* messages above it are not formatted */
int  log_level_parse(const char *s);   /* -1 if unknown */
const char *log_level_name(int level);
void log_set_level(int level);
/* Name shown in brackets for lines written by the calling thread (at most
 * 15 characters are kept; default "main"). */
void log_set_thread_name(const char *name);
void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Copies n bytes of untrusted data into dst as printable ASCII: bytes
 * outside 0x21..0x7e and the backslash become \xHH, so a value never breaks
 * a log line or its space-separated fields. Output is cut (never mid-escape)
 * to fit dstlen and always NUL-terminated; returns strlen(dst). */
size_t log_escape(char *dst, size_t dstlen, const void *src, size_t n);

#define log_error(...) log_msg(LOGL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOGL_WARN, __VA_ARGS__)
#define log_info(...)  do { if (log_level >= LOGL_INFO) log_msg(LOGL_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_level >= LOGL_DEBUG) log_msg(LOGL_DEBUG, __VA_ARGS__); } while (0)

#endif
