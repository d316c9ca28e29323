/* log.c -- leveled logging to stderr or syslog, with per-call-site rate
 * limiting.
 *
 * Every line is built in a stack buffer and handed to one write(2): stderr
 * may be shared by several I/O threads and by a supervisor's pipe, and a
 * single write of less than PIPE_BUF bytes is atomic there. No stdio
 * buffering (a crash never loses buffered lines). glibc's syslog(3) has its
 * own lock.
 *
 * Rate limiting keys on (format pointer, call site): the format alone would
 * lump every log_error("%s", ...) together. The log_* macros name the site
 * ("file.c:123"); direct log_msg calls use the return address (a tail call
 * makes that the caller's caller: still one key per path). A small table under a mutex holds the sites seen in the
 * current windows; only lines that pass the level check get there, so
 * debug logging and the hot paths never take the lock. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "spoolcap/log.h"

int log_level = LOGL_INFO;

static _Thread_local char thread_name[16] = "main";

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static int target = LOG_TARGET_STDERR;
static int sl_facility = LOG_DAEMON;
static const char *sl_ident = "spoolcapd";

/* ---- rate limiting ---- */

#define RL_SLOTS 64

struct rl_slot {
	const void *site;               /* caller; NULL = free */
	const char *fmt;
	long long   start;              /* window start, ns */
	unsigned    count;              /* lines written in this window */
	unsigned long long suppressed;  /* lines dropped in this window */
};

static pthread_mutex_t rl_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rl_slot rl[RL_SLOTS];
static unsigned rl_burst = LOG_RATE_BURST;
static long long rl_window = (long long)(LOG_RATE_WINDOW * 1e9);
static long long (*rl_clock)(void);

static long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void log_set_ratelimit(unsigned burst, double window_s)
{
	pthread_mutex_lock(&rl_mu);
	rl_burst = burst;
	rl_window = (long long)(window_s * 1e9);
	memset(rl, 0, sizeof(rl));
	pthread_mutex_unlock(&rl_mu);
}

void log_set_clock(long long (*now_ns)(void))
{
	pthread_mutex_lock(&rl_mu);
	rl_clock = now_ns;
	memset(rl, 0, sizeof(rl));
	pthread_mutex_unlock(&rl_mu);
}

/* 1: write the line; *resumed = lines of this site suppressed in the window
 * that just ended (to report). 0: suppress it. */
static int rl_admit(const void *site, const char *fmt, unsigned long long *resumed)
{
	struct rl_slot *s = NULL, *spare = NULL;
	long long now;
	int ok = 1;

	*resumed = 0;
	if (rl_burst == 0)
		return 1;
	pthread_mutex_lock(&rl_mu);
	now = rl_clock ? rl_clock() : mono_ns();
	for (int i = 0; i < RL_SLOTS; i++) {
		struct rl_slot *x = &rl[i];
		if (x->site == site && x->fmt == fmt) {
			s = x;
			break;
		}
		/* A slot whose window ended with nothing to report is free. */
		if (!spare && (!x->site || (now - x->start >= rl_window && !x->suppressed)))
			spare = x;
	}
	if (!s) {
		if (!spare)
			goto out;               /* table full of busy sites: do not limit */
		s = spare;
		s->site = site;
		s->fmt = fmt;
		s->start = now;
		s->count = 0;
		s->suppressed = 0;
	}
	if (now - s->start >= rl_window) {
		*resumed = s->suppressed;
		s->start = now;
		s->count = 0;
		s->suppressed = 0;
	}
	if (s->count < rl_burst) {
		s->count++;
	} else {
		s->suppressed++;
		ok = 0;
	}
out:
	pthread_mutex_unlock(&rl_mu);
	return ok;
}

/* ---- targets ---- */

int log_target_parse(const char *s)
{
	if (strcasecmp(s, "stderr") == 0)
		return LOG_TARGET_STDERR;
	if (strcasecmp(s, "syslog") == 0)
		return LOG_TARGET_SYSLOG;
	return -1;
}

const char *log_target_name(int t)
{
	return t == LOG_TARGET_SYSLOG ? "syslog" : t == LOG_TARGET_STDERR ? "stderr" : "?";
}

static const struct {
	const char *name;
	int         value;
} facilities[] = {
	{ "daemon", LOG_DAEMON }, { "user", LOG_USER }, { "local0", LOG_LOCAL0 },
	{ "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 }, { "local6", LOG_LOCAL6 },
	{ "local7", LOG_LOCAL7 }, { "authpriv", LOG_AUTHPRIV }, { "syslog", LOG_SYSLOG },
};
#define NFACILITIES (sizeof(facilities) / sizeof(facilities[0]))

int log_facility_parse(const char *s)
{
	for (size_t i = 0; i < NFACILITIES; i++)
		if (strcasecmp(s, facilities[i].name) == 0)
			return facilities[i].value;
	return -1;
}

const char *log_facility_name(int f)
{
	for (size_t i = 0; i < NFACILITIES; i++)
		if (facilities[i].value == f)
			return facilities[i].name;
	return "?";
}

int log_open(int t, int facility, const char *ident, char *err, size_t errlen)
{
	struct stat st;

	if (target == LOG_TARGET_SYSLOG)
		closelog();
	target = t;
	if (t != LOG_TARGET_SYSLOG)
		return 0;
	sl_facility = facility;
	sl_ident = ident ? ident : "spoolcapd";
	/* LOG_NDELAY: connect now, before a chroot or sandbox could hide the
	 * socket; glibc reconnects by itself when the daemon restarts. */
	openlog(sl_ident, LOG_PID | LOG_NDELAY, sl_facility);
	errno = 0;
	if (stat("/dev/log", &st) < 0 || !S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "log target syslog: /dev/log is not a socket (%s), so "
		         "log lines would be lost; run a syslog daemon or use the stderr target",
		         errno ? strerror(errno) : "not a socket");
		return -1;
	}
	return 0;
}

int log_get_target(void)
{
	return target;
}

void log_reopen(void)
{
	if (target != LOG_TARGET_SYSLOG)
		return;
	closelog();
	openlog(sl_ident, LOG_PID | LOG_NDELAY, sl_facility);
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	if (strcasecmp(s, "warning") == 0)
		return LOGL_WARN;
	return -1;
}

const char *log_level_name(int level)
{
	if (level < LOGL_ERROR || level > LOGL_DEBUG)
		return "?";
	return level_names[level];
}

void log_set_level(int level)
{
	if (level < LOGL_ERROR)
		level = LOGL_ERROR;
	if (level > LOGL_DEBUG)
		level = LOGL_DEBUG;
	log_level = level;
}

void log_set_thread_name(const char *name)
{
	snprintf(thread_name, sizeof(thread_name), "%s", name);
}

size_t log_escape(char *dst, size_t dstlen, const void *src, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = src;
	size_t o = 0;

	if (dstlen == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = s[i];
		if (ch > 0x20 && ch < 0x7f && ch != '\\') {
			if (o + 1 >= dstlen)
				break;
			dst[o++] = (char)ch;
		} else {
			if (o + 4 >= dstlen)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[ch >> 4];
			dst[o++] = hex[ch & 15];
		}
	}
	dst[o] = '\0';
	return o;
}

static void write_stderr(const char *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t w = write(STDERR_FILENO, buf + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;         /* nowhere left to report it */
		}
		off += (size_t)w;
	}
}

__attribute__((format(printf, 3, 0)))
static void vlog(int level, const void *site, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char buf[LOG_LINE_MAX];
	unsigned long long resumed = 0;
	struct timespec ts;
	struct tm tm;
	size_t len, room;
	int n;

	if (level > log_level)
		return;
	if (level < LOGL_DEBUG &&
	    !rl_admit(site, fmt, &resumed))
		return;
	if (target == LOG_TARGET_SYSLOG) {
		n = snprintf(buf, sizeof(buf), "[%s] ", thread_name);
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] ",
		             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		             tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
		             log_level_name(level), thread_name);
	}
	if (n < 0)
		return;
	len = (size_t)n;
	/* Keep room for the suppression note and the newline. */
	room = sizeof(buf) - len - 1 - (resumed ? 48 : 0);

	n = vsnprintf(buf + len, room, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= room) {
		/* Cut: mark it so nobody mistakes it for the whole message. */
		len += room - 1;
		memcpy(buf + len - 3, "...", 3);
	} else {
		len += (size_t)n;
	}
	if (resumed)
		len += (size_t)snprintf(buf + len, 48, " (suppressed %llu similar)", resumed);
	if (target == LOG_TARGET_SYSLOG) {
		buf[len] = '\0';
		syslog(prio[level], "%s", buf);
		return;
	}
	buf[len++] = '\n';
	write_stderr(buf, len);
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vlog(level, __builtin_extract_return_addr(__builtin_return_address(0)), fmt, ap);
	va_end(ap);
}

void log_msg_at(int level, const char *site, const char *fmt, ...)
{
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vlog(level, site, fmt, ap);
	va_end(ap);
}
