/* agentd.h -- start and stop a spoolcapd for a test.
 *
 * agentd_start() picks a free 127.0.0.1 port (bind port 0, close), runs
 * spoolcapd --foreground --listen 127.0.0.1:PORT plus the caller's flags
 * with stdout+stderr going to a log file, and waits until the port accepts
 * connections (retrying with a new port if another process took it). The
 * daemon dies with the test process (PR_SET_PDEATHSIG), so a crashed test
 * leaves nothing running. agentd_stop() sends SIGTERM to that PID only. */
#ifndef SPOOLCAP_AGENTD_H
#define SPOOLCAP_AGENTD_H

#include <sys/types.h>

typedef struct agentd {
	pid_t    pid;            /* 0 once reaped */
	unsigned port;
	char     log_path[512];
	int      status;         /* wait status, valid once pid is 0 */
} agentd;

/* The spoolcapd to run: $SPOOLCAPD, else $top_builddir/src/spoolcapd, else
 * src/spoolcapd next to the test's own directory (argv0). */
const char *agentd_exe(const char *argv0, char *buf, size_t len);

/* The spoolcap CLI next to the spoolcapd found by agentd_exe. */
void agentd_cli_exe(const char *daemon_exe, char *buf, size_t len);
/* Removes a test's scratch directory, or keeps it (and says so as a TAP
 * diagnostic) when the test failed, for inspection. */
void agentd_cleanup_dir(const char *dir, int failed);
/* Reserves nothing: returns a port that was free a moment ago, or 0. */
unsigned agentd_free_port(void);

/* args: extra flags, NULL-terminated (may be NULL). Returns 0, or -1 with
 * err filled (and the log kept for inspection). */
int agentd_start(agentd *d, const char *exe, const char *log_path,
                 const char *const *args, int timeout_ms, char *err, size_t errlen);

/* Sends SIGTERM (once); 0 on success. */
int agentd_signal(agentd *d, int sig);
/* Waits up to timeout_ms for the daemon to exit; 0 if it did (d->status
 * holds its wait status), -1 if it is still running. */
int agentd_wait(agentd *d, int timeout_ms);
/* SIGTERM + wait; if it does not exit in time, SIGKILL. Returns the exit
 * code (0..255), 128+signal if it died from a signal, or -1 on timeout. */
int agentd_stop(agentd *d, int timeout_ms);
/* 1 while the process runs. */
int agentd_alive(agentd *d);

/* Prints the last max_lines of the log as TAP diagnostics ("# ..."). */
void agentd_dump_log(const agentd *d, int max_lines);

#endif
