/* agentd.c -- start and stop a spoolcapd for a test (see agentd.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "agentd.h"

#define MAX_ARGS 32

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *agentd_exe(const char *argv0, char *buf, size_t len)
{
	const char *e = getenv("SPOOLCAPD"), *top = getenv("top_builddir");
	const char *slash;

	if (e && *e)
		return e;
	if (top && *top) {
		snprintf(buf, len, "%s/src/spoolcapd", top);
		return buf;
	}
	/* Run by hand from the build tree: <builddir>/tests/t-agent. */
	slash = strrchr(argv0, '/');
	if (slash)
		snprintf(buf, len, "%.*s/../src/spoolcapd", (int)(slash - argv0), argv0);
	else
		snprintf(buf, len, "../src/spoolcapd");
	return buf;
}

unsigned agentd_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	unsigned port = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* 1 if something accepts on 127.0.0.1:port (a plain connect, then close). */
static int port_accepts(unsigned port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	if (fd < 0)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static pid_t spawn(const char *exe, const char *log_path, char *const argv[])
{
	pid_t ppid = getpid(), pid;
	int fd;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid != 0)
		return pid;
#ifdef __linux__
	/* Die with the test, even if it crashes. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != ppid)
		_exit(127);
#endif
	fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		_exit(126);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		dup2(fd, STDIN_FILENO);
	signal(SIGPIPE, SIG_DFL);
	execv(exe, argv);
	dprintf(STDERR_FILENO, "agentd: cannot execute %s: %s\n", exe, strerror(errno));
	_exit(127);
}

static int start_once(agentd *d, const char *exe, const char *const *args,
                      int timeout_ms, char *err, size_t errlen, int *retry)
{
	char listen[64];
	char *argv[MAX_ARGS];
	int argc = 0;
	int64_t deadline;

	*retry = 0;
	d->port = agentd_free_port();
	if (d->port == 0) {
		snprintf(err, errlen, "cannot find a free port: %s", strerror(errno));
		return -1;
	}
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", d->port);
	argv[argc++] = (char *)exe;
	argv[argc++] = "--foreground";
	argv[argc++] = "--listen";
	argv[argc++] = listen;
	{
		int has_spool = 0;

		for (const char *const *a = args; a && *a; a++)
			if (strcmp(*a, "--spool") == 0)
				has_spool = 1;
		/* Tests that do not ask for a spool get none, rather than the
		 * shared default directory (which would also lock them out of
		 * each other). */
		if (!has_spool) {
			argv[argc++] = "--spool";
			argv[argc++] = "none";
		}
	}
	for (; args && *args && argc < MAX_ARGS - 1; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;

	d->status = 0;
	d->pid = spawn(exe, d->log_path, argv);
	if (d->pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		d->pid = 0;
		return -1;
	}
	deadline = now_ms() + timeout_ms;
	for (;;) {
		if (!agentd_alive(d)) {
			snprintf(err, errlen, "%s exited during startup (status %#x); see %s",
			         exe, d->status, d->log_path);
			/* Someone may have taken the port in between: try another. */
			*retry = 1;
			return -1;
		}
		if (port_accepts(d->port))
			return 0;
		if (now_ms() > deadline) {
			snprintf(err, errlen, "%s does not accept on %s after %d ms; see %s",
			         exe, listen, timeout_ms, d->log_path);
			agentd_stop(d, 5000);
			return -1;
		}
		usleep(20000);
	}
}

int agentd_start(agentd *d, const char *exe, const char *log_path,
                 const char *const *args, int timeout_ms, char *err, size_t errlen)
{
	int attempt, retry = 0;

	memset(d, 0, sizeof(*d));
	snprintf(d->log_path, sizeof(d->log_path), "%s", log_path);
	if (access(exe, X_OK) != 0) {
		snprintf(err, errlen, "%s is not executable (%s): build it first (make)",
		         exe, strerror(errno));
		return -1;
	}
	for (attempt = 0; attempt < 3; attempt++) {
		if (start_once(d, exe, args, timeout_ms, err, errlen, &retry) == 0)
			return 0;
		if (!retry)
			break;
	}
	return -1;
}

int agentd_alive(agentd *d)
{
	pid_t r;

	if (d->pid <= 0)
		return 0;
	do
		r = waitpid(d->pid, &d->status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == d->pid || (r < 0 && errno == ECHILD)) {
		d->pid = 0;
		return 0;
	}
	return 1;
}

int agentd_signal(agentd *d, int sig)
{
	if (d->pid <= 0)
		return -1;
	return kill(d->pid, sig);
}

int agentd_wait(agentd *d, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (agentd_alive(d)) {
		if (now_ms() > deadline)
			return -1;
		usleep(10000);
	}
	return 0;
}

int agentd_stop(agentd *d, int timeout_ms)
{
	if (d->pid > 0) {
		agentd_signal(d, SIGTERM);
		if (agentd_wait(d, timeout_ms) != 0) {
			agentd_signal(d, SIGKILL);
			agentd_wait(d, 5000);
			return -1;
		}
	}
	if (WIFEXITED(d->status))
		return WEXITSTATUS(d->status);
	if (WIFSIGNALED(d->status))
		return 128 + WTERMSIG(d->status);
	return -1;
}

void agentd_dump_log(const agentd *d, int max_lines)
{
	FILE *f = fopen(d->log_path, "r");
	char line[1024];
	long *starts;
	int n = 0, i;

	if (!f) {
		printf("# (no log at %s)\n", d->log_path);
		return;
	}
	/* Remember where the last max_lines lines start, then print them. */
	starts = calloc((size_t)max_lines, sizeof(*starts));
	if (!starts) {
		fclose(f);
		return;
	}
	for (;;) {
		long pos = ftell(f);
		if (!fgets(line, sizeof(line), f))
			break;
		starts[n++ % max_lines] = pos;
		while (!strchr(line, '\n') && fgets(line, sizeof(line), f))
			;
	}
	printf("# --- last lines of %s ---\n", d->log_path);
	for (i = n > max_lines ? n - max_lines : 0; i < n; i++) {
		fseek(f, starts[i % max_lines], SEEK_SET);
		if (fgets(line, sizeof(line), f))
			printf("#   %s%s", line, strchr(line, '\n') ? "" : "\n");
	}
	fflush(stdout);
	free(starts);
	fclose(f);
}

void agentd_cli_exe(const char *daemon_exe, char *buf, size_t len)
{
	const char *slash = strrchr(daemon_exe, '/');

	if (slash)
		snprintf(buf, len, "%.*s/spoolcap", (int)(slash - daemon_exe), daemon_exe);
	else
		snprintf(buf, len, "spoolcap");
}

void agentd_cleanup_dir(const char *dir, int failed)
{
	char cmd[1100];

	if (failed) {
		printf("# kept %s for inspection\n", dir);
		return;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
}
