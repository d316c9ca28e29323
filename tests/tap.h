/* tap.h -- a tiny TAP producer for the C unit tests (no Debian package
 * ships one). Header-only: each test program includes it once. */
#ifndef SPOOLCAP_TAP_H
#define SPOOLCAP_TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static void tap_plan(int n) __attribute__((unused));
static void tap_plan(int n) { printf("1..%d\n", n); fflush(stdout); }

static void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static void tap_diag(const char *fmt, ...)
{
	va_list ap;
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static int tap_ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3), unused));
static int tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;
	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		tap_failed++;
	return cond;
}

#define tap_is_int(got, want, ...) do { \
	long long g_ = (long long)(got), w_ = (long long)(want); \
	if (!tap_ok(g_ == w_, __VA_ARGS__)) \
		tap_diag("  got %lld, want %lld (%s:%d)", g_, w_, __FILE__, __LINE__); \
} while (0)

#define tap_is_mem(got, glen, want, wlen, ...) do { \
	size_t gl_ = (glen), wl_ = (wlen); \
	int eq_ = gl_ == wl_ && memcmp((got), (want), gl_) == 0; \
	if (!tap_ok(eq_, __VA_ARGS__)) \
		tap_diag("  got %zu bytes, want %zu bytes (%s:%d)", gl_, wl_, __FILE__, __LINE__); \
} while (0)

static void tap_skip(int n, const char *why) __attribute__((unused));
static void tap_skip(int n, const char *why)
{
	while (n-- > 0)
		printf("ok %d # SKIP %s\n", ++tap_n, why);
	fflush(stdout);
}

/* Ends the run: prints the plan if none was given up front. */
static int tap_done(int planned) __attribute__((unused));
static int tap_done(int planned)
{
	if (!planned)
		printf("1..%d\n", tap_n);
	fflush(stdout);
	return tap_failed ? 1 : 0;
}

#endif
