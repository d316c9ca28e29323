/* log.c -- leveled logging to stderr.
 *
 * Every line is built in a stack buffer and handed to one write(2): stderr
 * may be shared by several I/O threads and by a supervisor's pipe, and a
 * single write of less than PIPE_BUF bytes is atomic there. No locks, no
 * stdio buffering (a crash never loses buffered lines). */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "spoolcap/log.h"

int log_level = LOGL_INFO;

static _Thread_local char thread_name[16] = "main";

static const char *const level_names[] = { "error", "warn", "info", "debug" };

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

void log_msg(int level, const char *fmt, ...)
{
	char buf[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t len;
	int n;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] ",
	             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	             tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
	             log_level_name(level), thread_name);
	if (n < 0)
		return;
	len = (size_t)n;

	va_start(ap, fmt);
	n = vsnprintf(buf + len, sizeof(buf) - len - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(buf) - len - 1) {
		/* Cut: mark it so nobody mistakes it for the whole message. */
		len = sizeof(buf) - 1;
		memcpy(buf + len - 3, "...", 3);
	} else {
		len += (size_t)n;
	}
	buf[len++] = '\n';

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
