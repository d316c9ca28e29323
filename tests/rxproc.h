/* rxproc.h -- tests/receiver.py (or a script taking its arguments) run as
 * a child process on 127.0.0.1: started with port 0 and found through its
 * port files, scripted over HTTP (POST /_control on the control port), and
 * stopped by PID (SIGTERM, then SIGKILL). The child dies with the test
 * (PR_SET_PDEATHSIG). Shared by the tests that deliver to a receiver. */
#ifndef SPOOLCAP_RXPROC_H
#define SPOOLCAP_RXPROC_H

#include <sys/types.h>

struct rxp {
	pid_t    pid;                   /* 0 when not running */
	unsigned port, cport;           /* data and control ports */
	char     rec[700];              /* --record: one line per event */
	char     events[700];           /* --record-events: the events as received */
	char     err[700];              /* the child's stderr */
};

/* Monotonic seconds. */
double rxp_now(void);

/* Runs `python receiver_py --port-file DIR/NAME.port --control-port-file
 * DIR/NAME.cport --record DIR/NAME.rec --record-events DIR/NAME.events
 * extra_args...` (extra_args NULL-terminated, may be NULL; at most 16) with
 * stderr appended to DIR/NAME.err, and waits up to 15 s for both ports.
 * 0, or -1 with a TAP diagnostic. The same NAME may be started again once
 * stopped (the port files are removed first). */
int rxp_start(struct rxp *x, const char *python, const char *receiver_py, const char *dir,
              const char *name, const char *const *extra_args);
/* SIGTERM, up to 10 s for it to exit, then SIGKILL; reaped. No-op if not
 * running. */
void rxp_stop(struct rxp *x);
/* POST /_control with the command (printf format) to the control port:
 * 0 once the receiver answered 200, else -1 with a TAP diagnostic. */
int rxp_control(const struct rxp *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
