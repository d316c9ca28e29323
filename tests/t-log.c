/* t-log.c -- log.c: rate limiting per call site with a fake clock (burst,
 * suppression, the "(suppressed K similar)" note when a site resumes,
 * sites independent, debug never limited), target and facility names. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "spoolcap/log.h"
#include "tap.h"

static long long fake_ns;
static long long fake_clock(void)
{
	return fake_ns;
}

static char path[] = "/tmp/t-log.XXXXXX";

static int count(const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/* Not a constant argument: the compiler could otherwise call a clone of
 * site_a specialised for it, which is another call site. */
static int nc(int i)
{
	volatile int v = i;
	return v;
}

__attribute__((noinline)) static void site_a(int i)
{
	log_warn("site A failed, attempt %d", i);
}

__attribute__((noinline)) static void site_b(int i)
{
	log_warn("site B failed, attempt %d", i);
}

/* Two call sites with the same format "%s" (the compiler merges the
 * literals): limited separately. */
__attribute__((noinline)) static void generic_1(const char *m)
{
	log_error("%s", m);
}

__attribute__((noinline)) static void generic_2(const char *m)
{
	log_warn("%s", m);
}

int main(void)
{
	int fd = mkstemp(path), saved = dup(STDERR_FILENO), i;

	if (fd < 0 || saved < 0) {
		printf("Bail out! cannot create a temporary file\n");
		return 1;
	}
	dup2(fd, STDERR_FILENO);
	log_set_clock(fake_clock);
	log_set_ratelimit(5, 10.0);
	log_set_level(LOGL_DEBUG);

	for (i = 0; i < 50; i++)
		site_a(i);
	for (i = 0; i < 3; i++)
		site_b(i);
	for (i = 0; i < 20; i++) {
		generic_1("generic one");
		generic_2("generic two");
	}
	for (i = 0; i < 30; i++)
		log_debug("debug line %d", i);
	fake_ns += 9LL * 1000000000LL;              /* still inside the window */
	site_a(nc(100));
	fake_ns += 2LL * 1000000000LL;              /* window over */
	site_a(nc(101));
	site_a(nc(102));
	fake_ns += 20LL * 1000000000LL;             /* quiet window: no note */
	site_a(nc(103));

	dup2(saved, STDERR_FILENO);
	tap_is_int(count("site A failed"), 5 + 2 + 1, "site A: 5 in the first window, then 2 "
	           "and 1 in the next ones");
	tap_is_int(count("site A failed, attempt 4\n"), 1, "the first 5 lines are written");
	tap_is_int(count("site A failed, attempt 5"), 0, "the 6th is suppressed");
	tap_is_int(count("attempt 101 (suppressed 46 similar)"), 1,
	           "the first line of the next window counts the 46 suppressed");
	tap_is_int(count("attempt 102 (suppressed"), 0, "only the first line carries the note");
	tap_is_int(count("attempt 103 (suppressed"), 0, "no note after a window without "
	           "suppression");
	tap_is_int(count("site B failed"), 3, "site B is limited on its own");
	tap_is_int(count("generic one"), 5, "one %%s format at one site: 5");
	tap_is_int(count("generic two"), 5, "the same format at another site: its own 5");
	tap_is_int(count("debug line"), 30, "debug lines are never limited");
	tap_is_int(count(" warn  [main] site A failed, attempt 0"), 1,
	           "stderr line format: time, level, thread, message");

	/* Off: everything goes through. */
	if (ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0) {
		dup2(fd, STDERR_FILENO);
		log_set_ratelimit(0, 10.0);
		for (i = 0; i < 40; i++)
			site_a(i);
		dup2(saved, STDERR_FILENO);
		tap_is_int(count("site A failed"), 40, "burst 0: no rate limiting");
	}

	tap_is_int(log_target_parse("stderr"), LOG_TARGET_STDERR, "target stderr");
	tap_is_int(log_target_parse("SysLog"), LOG_TARGET_SYSLOG, "target syslog (any case)");
	tap_is_int(log_target_parse("file"), -1, "unknown target refused");
	tap_is_int(log_facility_parse("daemon"), LOG_DAEMON, "facility daemon");
	tap_is_int(log_facility_parse("local7"), LOG_LOCAL7, "facility local7");
	tap_is_int(log_facility_parse("kern"), -1, "facility kern refused");
	tap_ok(strcmp(log_facility_name(LOG_LOCAL3), "local3") == 0, "facility name local3");

	close(fd);
	unlink(path);
	return tap_done(0);
}
