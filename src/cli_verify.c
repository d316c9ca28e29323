/* cli_verify.c -- `spoolcap verify DIR [--json] [--quarantine]`: decodes
 * every record of the spool (pending, retained and dead letters), checks
 * every checksum (zstd content checksum or CRC-32C) and the header against
 * the payload, and reports the damaged records by seq; exit status 1 if
 * there is any. --quarantine moves damaged pending records to the
 * dead-letter table (reason corrupt) so delivery goes on without them.
 *
 * The walk is spool_verify's: short read transactions of at most 1,000
 * records. A record that needs a dictionary spoolcapd stored after we
 * loaded ours is checked again once the new dictionaries are loaded, so a
 * verify that runs while the daemon trains one reports nothing false. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "spoolcap/cli.h"
#include "spoolcap/spool_admin.h"

struct verify {
	cli_spool  *c;
	json_buf    j;
	int         json, quarantine;
	uint64_t    checked, bytes;
	uint64_t    bad, bad_dlq, bad_pending, moved;
	uint64_t    cursor;
	record_buf  copy;             /* a bad record fetched again */
	int         copy_oom, err;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: spoolcap verify DIR [--json] [--quarantine]\n"
	        "Decodes every record of the spool in DIR (pending, retained and\n"
	        "dead letters) and checks every checksum. Reports each damaged\n"
	        "record by seq; exit status 1 if there is any, 0 if none.\n"
	        "  --json        one JSON object: the damaged records and a summary\n"
	        "  --quarantine  move damaged pending records to the dead-letter\n"
	        "                table (reason corrupt), out of delivery's way\n"
	        "Safe while spoolcapd runs.\n");
}

/* The validate hook: a full decode, counted. Runs inside the spool's read
 * transaction; the CLI is single-threaded, so the shared decoder is ours. */
static int validate(const void *val, size_t len, char *why, size_t whylen, void *user)
{
	struct verify *vf = user;
	record_view v;

	vf->checked++;
	vf->bytes += len;
	return cli_decode(vf->c, val, len, &v, why, whylen) != 0;
}

static int copy_q_cb(uint64_t seq, const void *val, size_t len, void *user)
{
	struct verify *vf = user;
	uint8_t *p;

	(void)seq;
	p = realloc(vf->copy.data, len ? len : 1);
	if (!p) {
		vf->copy_oom = 1;
		return 1;
	}
	memcpy(p, val, len);
	vf->copy.data = p;
	vf->copy.len = vf->copy.cap = len;
	return 0;
}

static int copy_dlq_cb(const spool_dlq_entry *e, void *user)
{
	return copy_q_cb(e->seq, e->record, e->record_len, user);
}

/* Checks a bad record again, outside the walk's transaction, after
 * loading dictionaries stored since we started. Returns 1 if it is still
 * bad (why updated), 0 if it decodes now or is gone, < 0 on error. */
static int recheck(struct verify *vf, uint64_t seq, int *in_dlq, char *why, size_t whylen)
{
	char err[256];
	record_view v;
	int r;

	vf->copy_oom = 0;
	r = *in_dlq ? spool_dlq_get(vf->c->sp, seq, copy_dlq_cb, vf)
	            : spool_get(vf->c->sp, seq, copy_q_cb, vf);
	if (r == SPOOL_ENOENT && !*in_dlq) {
		/* spoolcapd may have dead-lettered it meanwhile */
		r = spool_dlq_get(vf->c->sp, seq, copy_dlq_cb, vf);
		if (r == 0)
			*in_dlq = 1;
	}
	if (r == SPOOL_ENOENT)
		return 0;               /* delivered or purged: no longer in the spool */
	if (r < 0)
		return r;
	if (vf->copy_oom)
		return SPOOL_ENOMEM;
	r = cli_decode(vf->c, vf->copy.data, vf->copy.len, &v, why, whylen);
	if (r == RECORD_EDICT && dictcache_load(vf->c->dc, vf->c->sp, err, sizeof err) > 0)
		r = cli_decode(vf->c, vf->copy.data, vf->copy.len, &v, why, whylen);
	return r != 0;
}

static int bad_cb(uint64_t seq, int in_dlq, const char *why0, void *user)
{
	struct verify *vf = user;
	const char *state;
	char why[256];
	int r, moved = 0;

	snprintf(why, sizeof why, "%s", why0);
	r = recheck(vf, seq, &in_dlq, why, sizeof why);
	if (r < 0) {
		fprintf(stderr, "spoolcap verify: reading seq %" PRIu64 " again failed: %s\n",
		        seq, r == SPOOL_ENOMEM ? "out of memory" : spool_errmsg());
		vf->err = 1;
		snprintf(why, sizeof why, "%s", why0);
	} else if (r == 0) {
		return 0;
	}
	vf->bad++;
	if (in_dlq) {
		vf->bad_dlq++;
		state = "dead";
	} else if (seq <= vf->cursor) {
		state = "retained";
	} else {
		state = "pending";
		vf->bad_pending++;
		if (vf->quarantine) {
			spool_dlq_info in;

			memset(&in, 0, sizeof in);
			in.reason = SPOOL_DLQ_CORRUPT;
			in.snippet = why;
			in.snippet_len = strlen(why);
			r = spool_dlq_put(vf->c->sp, seq, &in);
			if (r == 0) {
				vf->moved++;
				moved = 1;
			} else if (r == SPOOL_ENOENT) {
				state = "retained";     /* delivered since the walk saw it */
			} else {
				fprintf(stderr, "spoolcap verify: moving seq %" PRIu64 " to the "
				        "dead-letter table failed: %s\n", seq, spool_errmsg());
				vf->err = 1;
			}
		}
	}
	if (vf->json) {
		json_buf *j = &vf->j;

		json_reset(j);
		if (vf->bad > 1)
			json_char(j, ',');
		json_cstr_raw(j, "{\"seq\":");
		json_u64(j, seq);
		json_cstr_raw(j, ",\"state\":");
		json_str(j, state, strlen(state));
		json_cstr_raw(j, ",\"error\":");
		json_str(j, why, strlen(why));
		json_cstr_raw(j, ",\"quarantined\":");
		json_cstr_raw(j, moved ? "true" : "false");
		json_char(j, '}');
		fwrite(j->data, 1, j->len, stdout);
	} else {
		printf("seq %" PRIu64 " (%s): %s%s\n", seq,
		       in_dlq ? "dead letter" : state, why,
		       moved ? "; moved to the dead-letter table (reason corrupt)" : "");
	}
	return 0;
}

int cli_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "quarantine", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct verify vf;
	spool_config cfg;
	cli_spool c;
	char err[512], b[32];
	int opt, r, rc = CLI_EXIT_OK;

	memset(&vf, 0, sizeof vf);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "jqh", opts, NULL)) != -1) {
		switch (opt) {
		case 'j': vf.json = 1; break;
		case 'q': vf.quarantine = 1; break;
		case 'h': usage(stdout); return CLI_EXIT_OK;
		default: usage(stderr); return CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "spoolcap verify: expected exactly one spool directory\n");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	/* cli_open, with our counting validate hook in place of the cache's */
	memset(&c, 0, sizeof c);
	c.dir = argv[optind];
	c.dc = dictcache_new(0);
	c.dctx = record_dctx_new();
	if (!c.dc || !c.dctx) {
		fprintf(stderr, "spoolcap verify: out of memory\n");
		cli_close(&c);
		return CLI_EXIT_USAGE;
	}
	vf.c = &c;
	memset(&cfg, 0, sizeof cfg);
	dictcache_header_hooks(&cfg.hooks);
	cfg.hooks.validate = validate;
	cfg.hooks.user = &vf;
	r = spool_open(&c.sp, c.dir, &cfg, vf.quarantine ? SPOOL_MODE_CLIENT
	                                                  : SPOOL_MODE_READONLY,
	               err, sizeof err);
	if (r < 0) {
		fprintf(stderr, "spoolcap: %s\n", err);
		cli_close(&c);
		return CLI_EXIT_USAGE;
	}
	if (vf.quarantine && spool_use_agent_limits(c.sp) < 0) {
		fprintf(stderr, "spoolcap verify: %s\n", spool_errmsg());
		cli_close(&c);
		return CLI_EXIT_USAGE;
	}
	if (dictcache_load(c.dc, c.sp, err, sizeof err) < 0)
		fprintf(stderr, "spoolcap verify: warning: %s\n", err);
	/* retained or pending is judged against the cursor at the start; a
	 * record delivered since then is still called pending (and
	 * --quarantine leaves it alone: spool_dlq_put refuses it) */
	if (spool_cursor_get(c.sp, &vf.cursor) < 0) {
		fprintf(stderr, "spoolcap verify: reading %s failed: %s\n", c.dir, spool_errmsg());
		cli_close(&c);
		return CLI_EXIT_DATA;
	}
	json_init(&vf.j, 1u << 16);
	if (vf.json) {
		json_cstr_raw(&vf.j, "{\"dir\":");
		json_str(&vf.j, c.dir, strlen(c.dir));
		json_cstr_raw(&vf.j, ",\"corrupt_records\":[");
		fwrite(vf.j.data, 1, vf.j.len, stdout);
	}
	r = spool_verify(c.sp, 0, bad_cb, &vf);
	if (r < 0) {
		fprintf(stderr, "spoolcap verify: reading %s failed: %s\n", c.dir, spool_errmsg());
		vf.err = 1;
	}
	if (vf.json) {
		json_reset(&vf.j);
		json_cstr_raw(&vf.j, "],\"checked\":");
		json_u64(&vf.j, vf.checked);
		json_cstr_raw(&vf.j, ",\"checked_bytes\":");
		json_u64(&vf.j, vf.bytes);
		json_cstr_raw(&vf.j, ",\"corrupt\":");
		json_u64(&vf.j, vf.bad);
		json_cstr_raw(&vf.j, ",\"corrupt_dead_letters\":");
		json_u64(&vf.j, vf.bad_dlq);
		json_cstr_raw(&vf.j, ",\"quarantined\":");
		json_u64(&vf.j, vf.moved);
		json_cstr_raw(&vf.j, ",\"complete\":");
		json_cstr_raw(&vf.j, vf.err ? "false" : "true");
		json_cstr_raw(&vf.j, "}\n");
		fwrite(vf.j.data, 1, vf.j.len, stdout);
	} else {
		cli_fmt_bytes(b, sizeof b, vf.bytes);
		printf("%s: %" PRIu64 " record%s checked (%s), %" PRIu64 " corrupt",
		       c.dir, vf.checked, vf.checked == 1 ? "" : "s", b, vf.bad);
		if (vf.bad_dlq)
			printf(" (%" PRIu64 " among the dead letters)", vf.bad_dlq);
		if (vf.quarantine)
			printf(", %" PRIu64 " moved to the dead-letter table", vf.moved);
		printf("%s\n", vf.err ? "; verification incomplete" : "");
	}
	if (vf.bad_pending && !vf.quarantine)
		fprintf(stderr, "spoolcap verify: damaged pending records go to the dead-letter "
		        "table when delivery reaches them; 'spoolcap verify --quarantine %s' "
		        "moves them now\n", c.dir);
	if (vf.bad || vf.err)
		rc = CLI_EXIT_DATA;
	if (fflush(stdout) != 0) {
		fprintf(stderr, "spoolcap verify: cannot write the output\n");
		rc = CLI_EXIT_DATA;
	}
	json_free(&vf.j);
	record_buf_free(&vf.copy);
	cli_close(&c);
	return rc;
}
