/* cli_hdrs.c -- header blocks in binary (hdrs_bin) or text (hdrs) form, see
 * cli_hdrs.h. Both forms are validated whole before the first header is
 * returned, so a caller never acts on half a block. */
#include "config.h"

#include "spoolcap/cli_hdrs.h"

#include <string.h>

static int bin_valid(const uint8_t *p, const uint8_t *end)
{
	for (;;) {
		spop_str n, v;

		if (spop_name_get(&p, end, &n) < 0 || spop_name_get(&p, end, &v) < 0)
			return 0;
		if (n.len == 0)
			return v.len == 0 && p == end;
	}
}

/* One text line [p, eol) without its CR LF; *next after them. 0 at the end
 * of the input (a last line without a newline still counts). */
static int text_line(const uint8_t *p, const uint8_t *end, const uint8_t **eol,
                     const uint8_t **next)
{
	const uint8_t *nl;

	if (p >= end)
		return 0;
	nl = memchr(p, '\n', (size_t)(end - p));
	*next = nl ? nl + 1 : end;
	if (!nl)
		nl = end;
	*eol = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
	return 1;
}

static int text_split(const uint8_t *p, const uint8_t *eol, spop_str *name, spop_str *value)
{
	const uint8_t *colon = memchr(p, ':', (size_t)(eol - p)), *q;

	if (!colon || colon == p)
		return -1;
	for (q = p; q < colon; q++)
		if (*q <= ' ' || *q == 0x7f)
			return -1;
	name->ptr = p;
	name->len = (size_t)(colon - p);
	for (q = colon + 1; q < eol && (*q == ' ' || *q == '\t'); q++)
		;
	while (eol > q && (eol[-1] == ' ' || eol[-1] == '\t'))
		eol--;
	value->ptr = q;
	value->len = (size_t)(eol - q);
	return 0;
}

static int text_valid(const uint8_t *p, const uint8_t *end)
{
	const uint8_t *eol, *next;
	spop_str n, v;
	int lines = 0;

	while (text_line(p, end, &eol, &next)) {
		if (eol == p)
			return lines > 0;       /* the empty line ends the block */
		if (text_split(p, eol, &n, &v) < 0)
			return 0;
		lines++;
		p = next;
	}
	return lines > 0;
}

int cli_hdrs_init(cli_hdrs *h, const spop_data *v)
{
	if (v->type != SPOP_T_BINARY && v->type != SPOP_T_STRING)
		return -1;
	h->p = v->v.s.ptr;
	h->end = h->p + v->v.s.len;
	h->text = 0;
	if (bin_valid(h->p, h->end))
		return 0;
	h->text = 1;
	return text_valid(h->p, h->end) ? 0 : -1;
}

int cli_hdrs_next(cli_hdrs *h, spop_str *name, spop_str *value)
{
	const uint8_t *eol, *next;

	if (!h->text) {
		if (spop_name_get(&h->p, h->end, name) < 0 ||
		    spop_name_get(&h->p, h->end, value) < 0 || name->len == 0) {
			h->p = h->end;
			return 0;
		}
		return 1;
	}
	if (!text_line(h->p, h->end, &eol, &next) || eol == h->p ||
	    text_split(h->p, eol, name, value) < 0) {
		h->p = h->end;
		return 0;
	}
	h->p = next;
	return 1;
}

int cli_hdrs_name_eq(spop_str name, const char *s, size_t n)
{
	size_t i;

	if (name.len != n)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned a = name.ptr[i], b = (unsigned char)s[i];

		if (a >= 'A' && a <= 'Z')
			a += 'a' - 'A';
		if (b >= 'A' && b <= 'Z')
			b += 'a' - 'A';
		if (a != b)
			return 0;
	}
	return 1;
}
