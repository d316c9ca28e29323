/* cli_pretty.c -- re-indents a JSON value for people (spoolcap cat). The
 * input is our own compact output, so this only tracks strings, nesting
 * and which arrays hold nothing but scalars; strings are copied verbatim
 * (escapes included), so the pretty form parses to the same value. */
#include "config.h"

#include "spoolcap/cli_out.h"
#include "spoolcap/json.h"

/* End of the string starting at in[i] == '"': the index after its closing
 * quote. */
static size_t skip_string(const char *in, size_t i, size_t n)
{
	for (i++; i < n; i++) {
		if (in[i] == '\\')
			i++;
		else if (in[i] == '"')
			return i + 1;
	}
	return n;
}

/* 1 if the array opening at in[i] == '[' holds no object or array. */
static int flat_array(const char *in, size_t i, size_t n)
{
	for (i++; i < n; i++) {
		if (in[i] == '"')
			i = skip_string(in, i, n) - 1;
		else if (in[i] == '[' || in[i] == '{')
			return 0;
		else if (in[i] == ']')
			return 1;
	}
	return 1;
}

static void newline(json_buf *o, unsigned depth)
{
	unsigned k;

	json_char(o, '\n');
	for (k = 0; k < depth; k++)
		json_raw(o, "  ", 2);
}

int cli_json_pretty(json_buf *o, const char *in, size_t n)
{
	size_t mark = o->len, i = 0;
	unsigned depth = 0, flat = 0;   /* flat: depth of an inline array, 0 if none */

	while (i < n) {
		char ch = in[i];

		if (ch == '"') {
			size_t e = skip_string(in, i, n);

			json_raw(o, in + i, e - i);
			i = e;
			continue;
		}
		i++;
		switch (ch) {
		case '{':
		case '[':
			json_char(o, ch);
			if (i < n && (in[i] == '}' || in[i] == ']')) {
				json_char(o, in[i++]);      /* {} and [] stay as they are */
				break;
			}
			depth++;
			if (flat)
				break;
			if (ch == '[' && flat_array(in, i - 1, n))
				flat = depth;
			else
				newline(o, depth);
			break;
		case '}':
		case ']':
			if (depth == 0) {
				json_char(o, ch);   /* unbalanced: not ours; copy */
				break;
			}
			if (!flat)
				newline(o, depth - 1);
			if (flat == depth)
				flat = 0;
			depth--;
			json_char(o, ch);
			break;
		case ',':
			json_char(o, ',');
			if (flat)
				json_char(o, ' ');
			else
				newline(o, depth);
			break;
		case ':':
			json_raw(o, ": ", 2);
			break;
		default:
			json_char(o, ch);
			break;
		}
	}
	if (o->err) {
		json_rollback(o, mark);
		return -1;
	}
	return 0;
}
