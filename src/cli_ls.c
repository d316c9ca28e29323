/* cli_ls.c -- `spoolcap ls DIR [filters] [--json]`: one line per record:
 * sequence number, capture time, state, message name, sizes, and the
 * uid / method / status / path arguments of the capture recipe when the
 * record has them. A table whose column widths are set by the first 1,000
 * rows (later rows keep them: the output streams), or NDJSON with --json.
 *
 * Captured bytes are attacker-controlled: the table escapes every byte
 * outside printable ASCII as \xHH, so a path cannot drive the terminal. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "spoolcap/cli.h"
#include "spoolcap/cli_filter.h"
#include "spoolcap/event.h"

#define WIDTH_ROWS 1000

enum { C_SEQ, C_TIME, C_STATE, C_MSG, C_RAW, C_STORED, C_UID, C_METH, C_STATUS, C_PATH, NCOL };

static const char *const heads[NCOL] = {
	"SEQ", "TIME", "STATE", "MESSAGE", "RAW", "STORED", "UID", "METHOD", "STATUS", "PATH"
};
static const int right[NCOL] = { 1, 0, 0, 0, 1, 1, 0, 0, 1, 0 };

/* The recipe's argument names (contrib/haproxy/capture.spoe.conf). */
static const char *const uid_args[] = { "uid", NULL };
static const char *const meth_args[] = { "meth", "method", NULL };
static const char *const status_args[] = { "status", NULL };
static const char *const path_args[] = { "path", NULL };

struct row {
	char *f[NCOL];
};

struct ls {
	int         json;
	json_buf    j;
	struct row *rows;           /* buffered until the widths are known */
	size_t      nrows;
	size_t      w[NCOL];
	int         widths_set;
	uint64_t    bad;
	int         failed;
};

static int find(const record_view *v, const char *const *names, spop_data *val)
{
	for (; *names; names++)
		if (cli_rec_arg(v, *names, strlen(*names), val))
			return 1;
	return 0;
}

/* ---- table ---- */

/* Printable ASCII as is, anything else \xHH; "-" for nothing. */
static char *cell(const void *p, size_t n)
{
	const uint8_t *s = p;
	char *out, *o;
	size_t i;

	if (!p)
		return strdup("-");
	out = o = malloc(n * 4 + 1);
	if (!out)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\') {
			*o++ = (char)s[i];
		} else {
			snprintf(o, 5, "\\x%02x", s[i]);
			o += 4;
		}
	}
	*o = '\0';
	return out;
}

static char *cell_arg(const record_view *v, const char *const *names)
{
	spop_data val;
	char tmp[64];
	const uint8_t *p;
	size_t n;

	if (!v || !find(v, names, &val) || cli_value_text(&val, tmp, sizeof tmp, &p, &n) < 0)
		return cell(NULL, 0);
	return cell(p, n);
}

static char *cell_u64(uint64_t v)
{
	char tmp[32];

	snprintf(tmp, sizeof tmp, "%" PRIu64, v);
	return strdup(tmp);
}

static void print_row(struct ls *x, const struct row *r)
{
	int i;

	for (i = 0; i < NCOL; i++) {
		const char *s = r->f[i] ? r->f[i] : "?";
		int w = (int)x->w[i];

		if (i == NCOL - 1)
			printf("%s\n", s);
		else if (right[i])
			printf("%*s  ", w, s);
		else
			printf("%-*s  ", w, s);
	}
}

static void free_row(struct row *r)
{
	int i;

	for (i = 0; i < NCOL; i++)
		free(r->f[i]);
}

static void flush_rows(struct ls *x)
{
	struct row h;
	size_t k;
	int i;

	for (i = 0; i < NCOL; i++) {
		x->w[i] = strlen(heads[i]);
		for (k = 0; k < x->nrows; k++)
			if (x->rows[k].f[i] && strlen(x->rows[k].f[i]) > x->w[i])
				x->w[i] = strlen(x->rows[k].f[i]);
		h.f[i] = (char *)(uintptr_t)heads[i];
	}
	x->widths_set = 1;
	print_row(x, &h);
	for (k = 0; k < x->nrows; k++) {
		print_row(x, &x->rows[k]);
		free_row(&x->rows[k]);
	}
	x->nrows = 0;
}

static void table_row(struct ls *x, const cli_rec *r)
{
	const record_view *v = r->view;
	struct row row;
	char t[EVENT_TIME_LEN + 1];
	char state[64];

	memset(&row, 0, sizeof row);
	row.f[C_SEQ] = cell_u64(r->seq);
	if (r->hdr_ok) {
		event_time_format(t, r->hdr.time_ns);
		memcpy(t + 23, "Z", 2);             /* milliseconds are enough here */
		row.f[C_TIME] = strdup(t);
		row.f[C_RAW] = cell_u64(r->hdr.raw_len);
	} else {
		row.f[C_TIME] = strdup("?");
		row.f[C_RAW] = strdup("?");
	}
	row.f[C_STORED] = cell_u64(r->stored_len);
	if (r->dlq && spool_dlq_reason_name(r->dlq->reason))
		snprintf(state, sizeof state, "dead:%s", spool_dlq_reason_name(r->dlq->reason));
	else
		snprintf(state, sizeof state, "%s", cli_state_name(r->state));
	row.f[C_STATE] = strdup(state);
	row.f[C_MSG] = v ? cell(v->msg.name.ptr, v->msg.name.len) : strdup("(damaged)");
	row.f[C_UID] = cell_arg(v, uid_args);
	row.f[C_METH] = cell_arg(v, meth_args);
	row.f[C_STATUS] = cell_arg(v, status_args);
	row.f[C_PATH] = cell_arg(v, path_args);
	if (x->widths_set) {
		print_row(x, &row);
		free_row(&row);
		return;
	}
	x->rows[x->nrows++] = row;
	if (x->nrows == WIDTH_ROWS)
		flush_rows(x);
}

/* ---- NDJSON ---- */

static void jvalue(json_buf *j, const record_view *v, const char *const *names)
{
	spop_data val;

	if (!v || !find(v, names, &val)) {
		json_cstr_raw(j, "null");
		return;
	}
	switch (val.type) {
	case SPOP_T_INT32:
	case SPOP_T_INT64:
		json_i64(j, val.v.i);
		break;
	case SPOP_T_UINT32:
	case SPOP_T_UINT64:
		json_u64(j, val.v.u);
		break;
	case SPOP_T_STRING:
	case SPOP_T_BINARY:
		json_bytes(j, val.v.s.ptr, val.v.s.len);
		break;
	default: {
		char tmp[64];
		const uint8_t *p;
		size_t n;

		if (cli_value_text(&val, tmp, sizeof tmp, &p, &n) < 0)
			json_cstr_raw(j, "null");
		else
			json_str(j, p, n);
	}
	}
}

static void jtime(json_buf *j, int64_t ns)
{
	char t[EVENT_TIME_LEN + 1];

	json_char(j, '"');
	json_raw(j, t, event_time_format(t, ns));
	json_char(j, '"');
}

static void json_row(struct ls *x, const cli_rec *r)
{
	json_buf *j = &x->j;
	const record_view *v = r->view;
	const char *s;

	json_cstr_raw(j, "{\"seq\":");
	json_u64(j, r->seq);
	json_cstr_raw(j, ",\"time\":");
	if (r->hdr_ok)
		jtime(j, r->hdr.time_ns);
	else
		json_cstr_raw(j, "null");
	json_cstr_raw(j, ",\"state\":\"");
	json_cstr_raw(j, cli_state_name(r->state));
	json_cstr_raw(j, "\",\"message\":");
	if (v)
		json_str(j, v->msg.name.ptr, v->msg.name.len);
	else
		json_cstr_raw(j, "null");
	json_cstr_raw(j, ",\"raw_bytes\":");
	if (r->hdr_ok)
		json_u64(j, r->hdr.raw_len);
	else
		json_cstr_raw(j, "null");
	json_cstr_raw(j, ",\"stored_bytes\":");
	json_u64(j, r->stored_len);
	json_cstr_raw(j, ",\"dict\":");
	if (r->hdr_ok && r->hdr.dict_id)
		json_u64(j, r->hdr.dict_id);
	else
		json_cstr_raw(j, "null");
	json_cstr_raw(j, ",\"uid\":");
	jvalue(j, v, uid_args);
	json_cstr_raw(j, ",\"method\":");
	jvalue(j, v, meth_args);
	json_cstr_raw(j, ",\"status\":");
	jvalue(j, v, status_args);
	json_cstr_raw(j, ",\"path\":");
	jvalue(j, v, path_args);
	if (r->dlq) {
		s = spool_dlq_reason_name(r->dlq->reason);
		json_cstr_raw(j, ",\"dead\":{\"reason\":");
		if (s)
			json_str(j, s, strlen(s));
		else
			json_cstr_raw(j, "null");
		json_cstr_raw(j, ",\"http_status\":");
		json_u64(j, r->dlq->http_status > 0 ? (uint64_t)r->dlq->http_status : 0);
		json_cstr_raw(j, ",\"attempts\":");
		json_u64(j, r->dlq->attempts);
		json_cstr_raw(j, ",\"time\":");
		jtime(j, r->dead_ns);
		json_char(j, '}');
	}
	if (r->err) {
		json_cstr_raw(j, ",\"error\":");
		json_str(j, r->why, strlen(r->why));
	}
	json_cstr_raw(j, "}\n");
	if (j->err || fwrite(j->data, 1, j->len, stdout) != j->len)
		x->failed = 1;
	json_reset(j);
}

static int ls_cb(cli_spool *c, const cli_rec *r, void *user)
{
	struct ls *x = user;

	(void)c;
	if (r->err) {
		fprintf(stderr, "spoolcap ls: seq %" PRIu64 " does not decode: %s\n", r->seq,
		        r->why);
		x->bad++;
	}
	if (x->json)
		json_row(x, r);
	else
		table_row(x, r);
	return x->failed;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: spoolcap ls DIR [filters] [--json]\n"
	        "Lists the records of the spool in DIR, one per line, in sequence\n"
	        "order: SEQ, capture TIME (UTC, milliseconds), STATE (pending;\n"
	        "delivered: kept by retention; dead:REASON: a dead letter), MESSAGE,\n"
	        "RAW and STORED sizes in bytes (decompressed payload, and as stored),\n"
	        "then the UID, METHOD, STATUS and PATH arguments of the capture recipe\n"
	        "(uid, meth or method, status, path; '-' when absent). Bytes outside\n"
	        "printable ASCII are shown as \\xHH. Safe while spoolcapd runs.\n"
	        "  --json            one JSON object per line instead of the table\n");
	cli_filter_usage(f, "all");
	fprintf(f, "A record that does not decode is listed as (damaged), reported on\n"
	        "standard error, and the exit status is 1.\n");
}

int cli_ls(int argc, char **argv)
{
	static const struct option own[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct option opts[16];
	struct ls x;
	cli_filter f;
	cli_spool c;
	int ch, rc;

	memset(&x, 0, sizeof x);
	cli_filter_init(&f, "spoolcap ls", CLI_STATE_ALL);
	if (!cli_filter_longopts(own, opts, sizeof opts / sizeof opts[0]))
		return CLI_EXIT_USAGE;      /* cannot happen: opts has room */
	optind = 1;
	while ((ch = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		if ((rc = cli_filter_add_opt(&f, ch, optarg)) < 0)
			return CLI_EXIT_USAGE;
		if (rc > 0)
			continue;
		switch (ch) {
		case 'j': x.json = 1; break;
		case 'h': usage(stdout); return CLI_EXIT_OK;
		default: usage(stderr); return CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "spoolcap ls: expected exactly one spool directory\n");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (cli_filter_check(&f) < 0)
		return CLI_EXIT_USAGE;
	if (!(x.rows = calloc(WIDTH_ROWS, sizeof *x.rows))) {
		fprintf(stderr, "spoolcap ls: out of memory\n");
		return CLI_EXIT_USAGE;
	}
	if (cli_open(&c, argv[optind], SPOOL_MODE_READONLY) < 0) {
		free(x.rows);
		return CLI_EXIT_USAGE;
	}
	json_init(&x.j, 64u << 20);
	rc = cli_filter_iterate(&c, &f, ls_cb, &x);
	if (rc < 0)
		fprintf(stderr, "spoolcap ls: reading %s failed: %s\n", c.dir,
		        rc == SPOOL_ENOMEM ? "out of memory" : spool_errmsg());
	if (!x.json && !x.widths_set)
		flush_rows(&x);
	if (fflush(stdout) != 0 || x.failed) {
		fprintf(stderr, "spoolcap ls: cannot write the output\n");
		rc = -1;
	}
	json_free(&x.j);
	free(x.rows);
	cli_close(&c);
	return rc < 0 || x.bad ? CLI_EXIT_DATA : CLI_EXIT_OK;
}
