/* mtest.c -- helpers for the metrics and signal tests (mtest.h). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "mtest.h"

double mt_now(void)
{
	return rxp_now();
}

int mt_http(unsigned port, const char *method, const char *path, const char *data,
            char **body)
{
	struct sockaddr_in a;
	struct timeval tv = { 10, 0 };
	char req[4096], *resp = NULL, *p;
	size_t got = 0, cap = 0;
	ssize_t n;
	int fd, status = -1;

	if (body)
		*body = NULL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n"
	             "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s", method, path,
	             data ? strlen(data) : 0, data ? data : "");
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 || write(fd, req, (size_t)n) != n)
		goto out;
	for (;;) {
		if (cap - got < 4096) {
			char *np = realloc(resp, cap ? cap * 2 : 65536);
			if (!np)
				goto out;
			resp = np;
			cap = cap ? cap * 2 : 65536;
		}
		n = read(fd, resp + got, cap - got - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (!resp)
		goto out;
	resp[got] = '\0';
	if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
		status = -1;
	p = strstr(resp, "\r\n\r\n");
	if (body && p) {
		*body = strdup(p + 4);
	}
out:
	free(resp);
	close(fd);
	return status;
}

double mt_metric(unsigned port, const char *series)
{
	char *b = NULL;
	double v = -2;

	if (mt_http(port, "GET", "/metrics", NULL, &b) == 200)
		v = mt_prom(b, series);
	free(b);
	return v;
}

double mt_wait_metric(unsigned port, const char *series, double want, double timeout_s)
{
	double t0 = mt_now(), v;

	for (;;) {
		v = mt_metric(port, series);
		if (v == want || mt_now() - t0 > timeout_s)
			return v;
		usleep(50000);
	}
}

double mt_prom(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

int mt_prom_check(const char *text, char *why, size_t whylen)
{
	char help[160] = "", type[160] = "", kind[32] = "";
	const char *p = text;

	while (*p) {
		const char *e = strchr(p, '\n');
		char line[1024], name[160];
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len >= sizeof line) {
			snprintf(why, whylen, "line too long");
			return -1;
		}
		memcpy(line, p, len);
		line[len] = '\0';
		p = e ? e + 1 : p + len;
		if (!len)
			continue;
		if (strncmp(line, "# HELP ", 7) == 0) {
			sscanf(line + 7, "%159s", help);
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			if (sscanf(line + 7, "%159s %31s", type, kind) != 2 || strcmp(type, help)) {
				snprintf(why, whylen, "TYPE without HELP: %s", line);
				return -1;
			}
			if (strcmp(kind, "counter") == 0 &&
			    (strlen(type) < 6 || strcmp(type + strlen(type) - 6, "_total"))) {
				snprintf(why, whylen, "counter not ending in _total: %s", type);
				return -1;
			}
			continue;
		}
		if (line[0] == '#')
			continue;
		if (sscanf(line, "%159[^{ ]", name) != 1 || strncmp(name, type, strlen(type)) != 0) {
			snprintf(why, whylen, "sample outside its family (%s): %s", type, line);
			return -1;
		}
		{
			const char *v = strrchr(line, ' ');
			char *end;
			double d = strtod(v + 1, &end);
			if (*end || isnan(d) || d < 0) {
				snprintf(why, whylen, "bad value: %s", line);
				return -1;
			}
		}
	}
	return 0;
}

int mt_rx_start(mt_rx *x, const char *py, const char *script, const char *dir,
                const char *name)
{
	return rxp_start(x, py, script, dir, name, NULL);
}

void mt_rx_stop(mt_rx *x)
{
	rxp_stop(x);
}

int mt_rx_control(const mt_rx *x, const char *cmd)
{
	return rxp_control(x, "%s", cmd);
}

int mt_file_has(const char *path, const char *needle, double timeout_s)
{
	double t0 = mt_now();

	do {
		if (mt_count_lines(path, needle) > 0)
			return 1;
		usleep(20000);
	} while (mt_now() - t0 < timeout_s);
	return 0;
}

int mt_count_lines(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[8192];
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

unsigned mt_metrics_port(const char *log_path, double timeout_s)
{
	double t0 = mt_now();

	do {
		FILE *f = fopen(log_path, "r");
		char line[8192];
		unsigned port = 0;

		if (f) {
			while (fgets(line, sizeof line, f)) {
				char *p = strstr(line, "metrics on http://");
				if (p && (p = strchr(p + 18, ':')))
					port = (unsigned)strtoul(p + 1, NULL, 10);
			}
			fclose(f);
		}
		if (port)
			return port;
		usleep(20000);
	} while (mt_now() - t0 < timeout_s);
	return 0;
}
