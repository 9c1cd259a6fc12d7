#include "pop3/pop3_msg.h"

#include <stdio.h>
#include <string.h>

void
pop3_uidl_format(uint32_t uidvalidity, uint32_t uid, char *out)
{
	snprintf(out, POP3_UIDL_LEN + 1, "%08x%08x", uidvalidity, uid);
}

void
pop3_dot_init(struct pop3_dot *d, long long top_lines)
{
	*d = (struct pop3_dot){ .bol = true };
	if (top_lines >= 0) {
		d->limited = true;
		d->body_left = (unsigned long)top_lines;
	}
}

/* Called at each LF: moves the header/body state on and reports whether
 * a TOP limit has now been reached. */
static bool
pop3_dot_line_end(struct pop3_dot *d)
{
	bool empty = d->line_len == 0 || (d->line_len == 1 && d->prev_cr);

	d->line_len = 0;
	if (!d->in_body) {
		if (empty)
			d->in_body = true;
		return d->in_body && d->limited && d->body_left == 0;
	}
	if (d->limited && d->body_left > 0)
		d->body_left--;
	return d->limited && d->body_left == 0;
}

size_t
pop3_dot_encode(struct pop3_dot *d, const unsigned char *in, size_t inlen,
		unsigned char *out, size_t *consumed_r)
{
	size_t o = 0, i = 0;

	/* Whole runs up to the next LF are copied at once: only the first
	 * byte of a line and its end need a look. */
	while (i < inlen && !d->done) {
		const unsigned char *lf;
		size_t run;

		if (d->bol && in[i] == '.')
			out[o++] = '.';
		d->bol = false;
		lf = memchr(in + i, '\n', inlen - i);
		run = lf != NULL ? (size_t)(lf - (in + i)) : inlen - i;
		if (run > 0) {
			memcpy(out + o, in + i, run);
			o += run;
			d->line_len += run;
			d->prev_cr = in[i + run - 1] == '\r';
			i += run;
		}
		if (lf == NULL)
			break;
		if (!d->prev_cr)
			out[o++] = '\r';
		out[o++] = '\n';
		i++;
		d->done = pop3_dot_line_end(d);
		d->bol = true;
		d->prev_cr = false;
	}
	*consumed_r = i;
	return o;
}

size_t
pop3_dot_finish(const struct pop3_dot *d, unsigned char *out)
{
	size_t o = 0;

	if (!d->bol) {
		/* A message ending in a bare CR already has half a line break. */
		if (!d->prev_cr)
			out[o++] = '\r';
		out[o++] = '\n';
	}
	out[o++] = '.';
	out[o++] = '\r';
	out[o++] = '\n';
	return o;
}
