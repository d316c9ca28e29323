/* cli_replay.h -- pieces shared by the two forms of `spoolcap replay`:
 * --to URL (src/cli_replay.c: events through the daemon's delivery engine)
 * and --requests (src/cli_rerequest.c: captured HTTP requests re-issued
 * against another server). Both run in the foreground, draw a progress line
 * on a terminal, stop cleanly on SIGINT/SIGTERM and end with a summary. */
#ifndef SPOOLCAP_CLI_REPLAY_H
#define SPOOLCAP_CLI_REPLAY_H

#include <signal.h>
#include <stdint.h>

/* `spoolcap replay DIR --requests --target URL ...` (argv[0] = "replay"). */
int cli_rerequest(int argc, char **argv);

/* Set by the first SIGINT or SIGTERM after cli_replay_signals(); a second
 * one kills the process the default way. */
extern volatile sig_atomic_t cli_replay_interrupted;
void cli_replay_signals(void);

/* CLOCK_MONOTONIC in seconds. */
double cli_replay_now(void);

/* The progress line on standard error, redrawn in place; only when
 * standard error is a terminal (cli_progress_on). The line is left with the
 * cursor at its start, so a log line written meanwhile overwrites it
 * instead of being glued to its end. */
int  cli_progress_on(void);
void cli_progress_show(const char *line);
void cli_progress_clear(void);

/* "1m05s" / "2.4s" for a duration in seconds (>= 0). */
void cli_replay_fmt_secs(char *out, size_t len, double s);

#endif
