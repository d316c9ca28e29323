/* notify.c -- sd_notify(3) messages for systemd's Type=notify (notify.h).
 * The only file that includes libsystemd, so the library is linked into
 * spoolcapd alone; without HAVE_SYSTEMD every function is empty. */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "spoolcap/notify.h"

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

#define NOTIFY_MAX 512

/* Sends "<head>STATUS=<formatted>" ("<head>" alone when fmt is NULL).
 * A status is one line: anything below 0x20 becomes a space. */
__attribute__((format(printf, 2, 0)))
static void send_status(const char *head, const char *fmt, va_list ap)
{
	char msg[NOTIFY_MAX];
	int n = snprintf(msg, sizeof(msg), "%s%s", head, fmt ? "STATUS=" : "");

	if (n < 0 || (size_t)n >= sizeof(msg))
		return;
	if (fmt) {
		int m = vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);

		for (char *p = msg + n; m > 0 && *p; p++)
			if ((unsigned char)*p < 0x20)
				*p = ' ';
	}
	(void)sd_notify(0, msg);
}

void notify_ready(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_status("READY=1\n", fmt, ap);
	va_end(ap);
}

void notify_status(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_status("", fmt, ap);
	va_end(ap);
}

void notify_stopping(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_status("STOPPING=1\n", fmt, ap);
	va_end(ap);
}

void notify_reloading(const char *fmt, ...)
{
	struct timespec ts;
	char head[80];
	va_list ap;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return;
	snprintf(head, sizeof(head), "RELOADING=1\nMONOTONIC_USEC=%llu\n",
	         (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
	va_start(ap, fmt);
	send_status(head, fmt, ap);
	va_end(ap);
}

void notify_extend_timeout(double seconds)
{
	if (seconds > 0 && seconds < 1e7)
		(void)sd_notifyf(0, "EXTEND_TIMEOUT_USEC=%llu",
		                 (unsigned long long)(seconds * 1e6));
}

#else /* !HAVE_SYSTEMD */

void notify_ready(const char *fmt, ...) { (void)fmt; }
void notify_status(const char *fmt, ...) { (void)fmt; }
void notify_stopping(const char *fmt, ...) { (void)fmt; }
void notify_reloading(const char *fmt, ...) { (void)fmt; }
void notify_extend_timeout(double seconds) { (void)seconds; }

#endif
