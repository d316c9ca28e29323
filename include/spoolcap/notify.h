/* notify.h -- tells the service manager what spoolcapd is doing, when it
 * runs as a systemd Type=notify service (contrib/systemd/spoolcapd.service).
 *
 * Each call sends one sd_notify(3) datagram to $NOTIFY_SOCKET. Outside
 * systemd (no NOTIFY_SOCKET), or in a build without libsystemd
 * (configure --without-systemd), every call does nothing. Failures are
 * ignored: the service manager is told, never relied upon. Any thread may
 * call these; the status text is formatted like printf, made one line
 * and cut at about 500 bytes. */
#ifndef SPOOLCAP_NOTIFY_H
#define SPOOLCAP_NOTIFY_H

/* READY=1: listening and the spool is open; systemd starts the units
 * ordered after spoolcapd (HAProxy) only now. */
void notify_ready(const char *status_fmt, ...)
	__attribute__((format(printf, 1, 2)));
/* STATUS=...: one line that `systemctl status spoolcapd` shows. */
void notify_status(const char *status_fmt, ...)
	__attribute__((format(printf, 1, 2)));
/* STOPPING=1: a graceful stop has begun. */
void notify_stopping(const char *status_fmt, ...)
	__attribute__((format(printf, 1, 2)));
/* RELOADING=1 (with MONOTONIC_USEC, as systemd 253+ wants): a reload has
 * begun; send notify_ready() when it is done. */
void notify_reloading(const char *status_fmt, ...)
	__attribute__((format(printf, 1, 2)));
/* EXTEND_TIMEOUT_USEC: the current phase (a stop) may take `seconds` more
 * from now. systemd never shortens its own timeout for it, so this only
 * matters when the configured bounds exceed TimeoutStopSec. */
void notify_extend_timeout(double seconds);

#endif
