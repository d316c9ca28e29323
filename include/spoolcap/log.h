/* log.h -- leveled logging to stderr or syslog (thread-safe).
 *
 * stderr line format: "<RFC 3339 UTC time> <level> [<thread>] <message>", e.g.
 *   2025-11-26T05:40:01.234Z info  [io0] conn#7 127.0.0.1:40522: closed ...
 * Each line is formatted on the stack and written with a single write(2)
 * (lines are capped below PIPE_BUF, so lines from threads never interleave).
 * With the syslog target the same "[<thread>] <message>" goes to syslog(3)
 * at the matching priority (error -> LOG_ERR, warn -> LOG_WARNING, info ->
 * LOG_INFO, debug -> LOG_DEBUG); syslog adds the time.
 *
 * Rate limiting: error, warn and info lines from one call site (the same
 * format string and source line) are written at most `burst` times per window
 * (default 100 per 10 s: a large HAProxy opening its connections at start
 * is not cut, a storm is); the rest are counted, and the first line written
 * after the window ends says "(suppressed K similar)". Debug lines are
 * never limited. */
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

/* ---- output target ---- */
enum log_target { LOG_TARGET_STDERR = 0, LOG_TARGET_SYSLOG = 1 };
#define LOG_DEFAULT_FACILITY_NAME "daemon"
int  log_target_parse(const char *s);          /* "stderr" | "syslog", -1 if unknown */
const char *log_target_name(int target);
/* Syslog facility by name ("daemon", "local0".."local7", "user", ...):
 * the LOG_xxx facility value, or -1 if unknown. */
int  log_facility_parse(const char *s);
const char *log_facility_name(int facility);   /* "?" if unknown */
/* Sends every later line to target (facility and ident are for syslog;
 * ident must stay valid). Call before starting threads. With syslog,
 * returns -1 and a reason in err when no syslog socket exists (lines would
 * be lost); the target is set anyway. */
int  log_open(int target, int facility, const char *ident, char *err, size_t errlen);
int  log_get_target(void);
/* SIGHUP: reconnects to syslog (a restarted syslog daemon); stderr needs
 * nothing. Any thread. */
void log_reopen(void);

/* ---- rate limiting ---- */
#define LOG_RATE_BURST   100     /* lines per call site ... */
#define LOG_RATE_WINDOW  10.0    /* ... per this many seconds */
/* burst 0 turns rate limiting off. */
void log_set_ratelimit(unsigned burst, double window_s);
/* Tests: the monotonic clock (ns) rate limiting reads; NULL = the real one. */
void log_set_clock(long long (*now_ns)(void));

/* log_msg with the call site named for rate limiting ("file.c:123"; the
 * macros below pass it). log_msg itself uses its return address. */
void log_msg_at(int level, const char *site, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define LOG_STR_(x) #x
#define LOG_STR(x)  LOG_STR_(x)
#define LOG_SITE    __FILE__ ":" LOG_STR(__LINE__)

#define log_error(...) log_msg_at(LOGL_ERROR, LOG_SITE, __VA_ARGS__)
#define log_warn(...)  log_msg_at(LOGL_WARN, LOG_SITE, __VA_ARGS__)
#define log_info(...)  do { if (log_level >= LOGL_INFO) log_msg_at(LOGL_INFO, LOG_SITE, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_level >= LOGL_DEBUG) log_msg_at(LOGL_DEBUG, LOG_SITE, __VA_ARGS__); } while (0)

#endif
