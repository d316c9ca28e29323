/* listen.c -- listen addresses: parsing "HOST:PORT" / "[V6]:PORT" /
 * "unix:PATH", binding non-blocking listening sockets, stale unix socket
 * files, and naming peers for logs. Runs on the main thread at start-up. */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent_int.h"

#define UNIX_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path))

static int parse_port(const char *s, unsigned *port)
{
	unsigned long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 65535)
			return -1;
	}
	*port = (unsigned)v;
	return 0;
}

int agent_parse_addr(const char *spec, int *family, char *host, size_t hostlen,
                     unsigned *port, char *err, size_t errlen)
{
	const char *colon;
	char buf[INET6_ADDRSTRLEN + 1];
	unsigned char bin[sizeof(struct in6_addr)];
	size_t n;

	if (strncmp(spec, "unix:", 5) == 0) {
		const char *path = spec + 5;
		if (*path == '\0') {
			snprintf(err, errlen, "listen address '%s': empty unix socket path", spec);
			return -1;
		}
		if (strlen(path) >= UNIX_PATH_MAX || strlen(path) >= hostlen) {
			snprintf(err, errlen, "listen address '%s': unix socket path longer than %zu bytes",
			         spec, UNIX_PATH_MAX - 1);
			return -1;
		}
		*family = AF_UNIX;
		strcpy(host, path);
		*port = 0;
		return 0;
	}

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close || close[1] != ':') {
			snprintf(err, errlen, "listen address '%s': expected [IPV6]:PORT", spec);
			return -1;
		}
		n = (size_t)(close - spec - 1);
		if (n == 0 || n >= sizeof(buf)) {
			snprintf(err, errlen, "listen address '%s': bad IPv6 address", spec);
			return -1;
		}
		memcpy(buf, spec + 1, n);
		buf[n] = '\0';
		if (inet_pton(AF_INET6, buf, bin) != 1) {
			snprintf(err, errlen, "listen address '%s': '%s' is not a numeric IPv6 address",
			         spec, buf);
			return -1;
		}
		if (parse_port(close + 2, port) < 0) {
			snprintf(err, errlen, "listen address '%s': port must be a number from 0 to 65535",
			         spec);
			return -1;
		}
		if (n >= hostlen) {
			snprintf(err, errlen, "listen address '%s': address too long", spec);
			return -1;
		}
		*family = AF_INET6;
		strcpy(host, buf);
		return 0;
	}

	colon = strrchr(spec, ':');
	if (!colon) {
		snprintf(err, errlen, "listen address '%s': missing :PORT (expected HOST:PORT, "
		         "[IPV6]:PORT or unix:PATH)", spec);
		return -1;
	}
	n = (size_t)(colon - spec);
	if (memchr(spec, ':', n)) {
		snprintf(err, errlen, "listen address '%s': write IPv6 addresses in brackets, "
		         "e.g. [::1]:12345", spec);
		return -1;
	}
	if (n >= sizeof(buf)) {
		snprintf(err, errlen, "listen address '%s': host too long", spec);
		return -1;
	}
	memcpy(buf, spec, n);
	buf[n] = '\0';
	if (n == 0 || strcmp(buf, "*") == 0)
		strcpy(buf, "0.0.0.0");
	else if (strcmp(buf, "localhost") == 0)
		strcpy(buf, "127.0.0.1");
	if (inet_pton(AF_INET, buf, bin) != 1) {
		snprintf(err, errlen, "listen address '%s': '%s' is not a numeric IPv4 address "
		         "(host names are not resolved; use [IPV6]:PORT for IPv6)", spec, buf);
		return -1;
	}
	if (parse_port(colon + 1, port) < 0) {
		snprintf(err, errlen, "listen address '%s': port must be a number from 0 to 65535",
		         spec);
		return -1;
	}
	if (strlen(buf) >= hostlen) {
		snprintf(err, errlen, "listen address '%s': address too long", spec);
		return -1;
	}
	*family = AF_INET;
	strcpy(host, buf);
	return 0;
}

void agent_peer_name(const struct listener *l, const void *sa, char *out, size_t outlen)
{
	const struct sockaddr *s = sa;
	char ip[INET6_ADDRSTRLEN];

	switch (s->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *in = sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(out, outlen, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(out, outlen, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
		break;
	}
	default:
		/* Unix peers are unnamed: name the socket they came through. */
		snprintf(out, outlen, "unix:%s", l->path ? l->path : "?");
		break;
	}
}

/* EADDRINUSE on a unix path: a live server answers a connect, a stale file
 * left by a crash refuses it. Only a socket file may be removed. */
static int unix_stale(const char *path, char *err, size_t errlen, const char *spec)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd, r, e;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 1 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "cannot listen on %s: %s exists and is not a socket; "
		         "remove it or choose another path", spec, path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s: socket: %s", spec, strerror(errno));
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	e = errno;
	close(fd);
	if (r == 0 || e == EAGAIN || e == EINPROGRESS) {
		snprintf(err, errlen, "cannot listen on %s: another process is listening there "
		         "(another spoolcapd?); stop it or choose another path", spec);
		return -1;
	}
	if (e == ECONNREFUSED || e == ENOENT) {
		if (unlink(path) < 0 && errno != ENOENT) {
			snprintf(err, errlen, "cannot remove stale socket %s: %s", path, strerror(errno));
			return -1;
		}
		return 1;
	}
	snprintf(err, errlen, "cannot listen on %s: probing existing socket: %s", spec, strerror(e));
	return -1;
}

static const char *bind_hint(int e)
{
	switch (e) {
	case EADDRINUSE:
		return " (another process, perhaps another spoolcapd, uses it; choose another --listen)";
	case EACCES:
		return " (ports below 1024 need privileges; use a higher port)";
	case EADDRNOTAVAIL:
		return " (no local interface has this address)";
	default:
		return "";
	}
}

int agent_listener_open(struct listener *l, char *err, size_t errlen)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
		struct sockaddr_un un;
		struct sockaddr_storage ss;
	} sa;
	socklen_t salen;
	int fd, one = 1;

	memset(&sa, 0, sizeof(sa));
	switch (l->family) {
	case AF_INET:
		sa.in.sin_family = AF_INET;
		sa.in.sin_port = htons((uint16_t)l->port);
		inet_pton(AF_INET, l->host, &sa.in.sin_addr);
		salen = sizeof(sa.in);
		break;
	case AF_INET6:
		sa.in6.sin6_family = AF_INET6;
		sa.in6.sin6_port = htons((uint16_t)l->port);
		inet_pton(AF_INET6, l->host, &sa.in6.sin6_addr);
		salen = sizeof(sa.in6);
		break;
	default:
		sa.un.sun_family = AF_UNIX;
		memcpy(sa.un.sun_path, l->path, strlen(l->path) + 1);
		salen = sizeof(sa.un);
		break;
	}

	fd = socket(l->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s: socket: %s", l->spec, strerror(errno));
		return -1;
	}
	if (l->family != AF_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Lets [::]:P and 0.0.0.0:P coexist as two listeners. */
	if (l->family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));

	if (bind(fd, &sa.sa, salen) < 0) {
		int e = errno;
		if (l->family == AF_UNIX && e == EADDRINUSE) {
			int r = unix_stale(l->path, err, errlen, l->spec);
			if (r < 0) {
				close(fd);
				return -1;
			}
			if (bind(fd, &sa.sa, salen) == 0)
				goto bound;
			e = errno;
		}
		snprintf(err, errlen, "cannot listen on %s: bind: %s%s", l->spec, strerror(e),
		         bind_hint(e));
		close(fd);
		return -1;
	}
bound:
	if (l->family == AF_UNIX) {
		struct stat st;
		if (stat(l->path, &st) == 0) {
			l->dev = st.st_dev;
			l->ino = st.st_ino;
			l->unlink_on_close = 1;
		}
	}
	if (listen(fd, SOMAXCONN) < 0) {
		snprintf(err, errlen, "cannot listen on %s: listen: %s", l->spec, strerror(errno));
		close(fd);
		if (l->unlink_on_close)
			unlink(l->path);
		l->unlink_on_close = 0;
		return -1;
	}

	if (l->family == AF_UNIX) {
		snprintf(l->name, sizeof(l->name), "unix:%s", l->path);
	} else {
		salen = sizeof(sa);
		if (getsockname(fd, &sa.sa, &salen) == 0)
			agent_peer_name(l, &sa, l->name, sizeof(l->name));
		else
			snprintf(l->name, sizeof(l->name), "%s", l->spec);
	}
	l->fd = fd;
	return 0;
}

void agent_listener_close(struct listener *l)
{
	struct stat st;

	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
	/* Remove the socket file only if it is still the one we created: a
	 * newer instance may already have replaced it. */
	if (l->unlink_on_close && stat(l->path, &st) == 0 &&
	    st.st_dev == l->dev && st.st_ino == l->ino)
		unlink(l->path);
	l->unlink_on_close = 0;
}
