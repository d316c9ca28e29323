/* rxproc.c -- tests/receiver.py as a child process of a test (rxproc.h). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rxproc.h"
#include "tap.h"

#define MAX_EXTRA 16

double rxp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The port a child wrote (write + rename, so never half a number); 0 if
 * not there yet. */
static unsigned read_port(const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned p = 0;

	if (f) {
		if (fscanf(f, "%u", &p) != 1)
			p = 0;
		fclose(f);
	}
	return p;
}

int rxp_start(struct rxp *x, const char *python, const char *receiver_py, const char *dir,
              const char *name, const char *const *extra_args)
{
	const char *av[10 + MAX_EXTRA + 1];
	char pf[700], cpf[700];
	size_t n = 0, i;
	double t0;

	memset(x, 0, sizeof *x);
	snprintf(pf, sizeof pf, "%s/%s.port", dir, name);
	snprintf(cpf, sizeof cpf, "%s/%s.cport", dir, name);
	snprintf(x->rec, sizeof x->rec, "%s/%s.rec", dir, name);
	snprintf(x->events, sizeof x->events, "%s/%s.events", dir, name);
	snprintf(x->err, sizeof x->err, "%s/%s.err", dir, name);
	/* a previous run under the same name left its ports behind */
	unlink(pf);
	unlink(cpf);
	av[n++] = python;
	av[n++] = receiver_py;
	av[n++] = "--port-file";
	av[n++] = pf;
	av[n++] = "--control-port-file";
	av[n++] = cpf;
	av[n++] = "--record";
	av[n++] = x->rec;
	av[n++] = "--record-events";
	av[n++] = x->events;
	for (i = 0; extra_args && extra_args[i]; i++) {
		if (i == MAX_EXTRA) {
			tap_diag("receiver %s: more than %d extra arguments", name, MAX_EXTRA);
			return -1;
		}
		av[n++] = extra_args[i];
	}
	av[n] = NULL;
	fflush(stdout);         /* nothing buffered may be written twice */
	x->pid = fork();
	if (x->pid < 0) {
		x->pid = 0;
		tap_diag("receiver %s: fork: %s", name, strerror(errno));
		return -1;
	}
	if (x->pid == 0) {
		if (!freopen(x->err, "a", stderr))
			_exit(126);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(python, (char **)(uintptr_t)av);
		_exit(127);
	}
	for (t0 = rxp_now(); rxp_now() - t0 < 15; usleep(20000)) {
		x->port = read_port(pf);
		x->cport = read_port(cpf);
		if (x->port && x->cport)
			return 0;
		if (waitpid(x->pid, NULL, WNOHANG) == x->pid) {
			x->pid = 0;
			break;
		}
	}
	rxp_stop(x);
	tap_diag("receiver %s did not start (see %s)", name, x->err);
	return -1;
}

void rxp_stop(struct rxp *x)
{
	double t0;

	if (x->pid <= 0)
		return;
	kill(x->pid, SIGTERM);
	for (t0 = rxp_now(); rxp_now() - t0 < 10; usleep(10000))
		if (waitpid(x->pid, NULL, WNOHANG) == x->pid) {
			x->pid = 0;
			return;
		}
	kill(x->pid, SIGKILL);
	waitpid(x->pid, NULL, 0);
	x->pid = 0;
}

int rxp_control(const struct rxp *x, const char *fmt, ...)
{
	struct sockaddr_in a;
	struct timeval tv = { 10, 0 };
	char cmd[16384], req[16600], resp[512];
	size_t len, off = 0, got = 0;
	ssize_t n;
	va_list ap;
	int fd, status = -1, w;

	va_start(ap, fmt);
	w = vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= sizeof cmd) {
		tap_diag("receiver control command too long (%d bytes)", w);
		return -1;
	}
	w = snprintf(req, sizeof req, "POST /_control HTTP/1.0\r\nContent-Type: text/plain\r\n"
	             "Content-Length: %zu\r\n\r\n%s", strlen(cmd), cmd);
	len = (size_t)w;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)x->cport);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		tap_diag("receiver control '%.80s': connect to port %u: %s", cmd, x->cport,
		         strerror(errno));
		close(fd);
		return -1;
	}
	while (off < len) {
		n = write(fd, req + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	/* HTTP/1.0: the receiver closes once it has answered */
	while (off == len && got < sizeof resp - 1) {
		n = read(fd, resp + got, sizeof resp - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	resp[got] = '\0';
	close(fd);
	if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1 || status != 200) {
		tap_diag("receiver control '%.80s' answered: %.80s", cmd, got ? resp : "(nothing)");
		return -1;
	}
	return 0;
}
