/* smtp_data.c - the DATA body decoder.
 *
 * A byte-at-a-time state machine. Bytes whose meaning depends on what
 * follows (a CR, a dot at the start of a line) are held in the state, not
 * in a buffer, and written out once the next byte decides them; so input
 * may be split anywhere and at most two held bytes are ever pending.
 *
 * Only a line that follows CR LF is an SMTP line (RFC 5321 2.3.8), so
 * only there is a leading dot removed or ". CR LF" taken as the end.
 * After a bare LF the next bytes are ordinary text: that is what keeps
 * "\n.\r\n" and friends from ending the message here while a lenient
 * server further on might see an end (SMTP smuggling).
 */
#include "smtp/smtp_data.h"

enum smtp_data_state {
	DATA_TEXT,	/* inside a line, or at a line start after a bare LF */
	DATA_BOL,	/* at the start of a line that followed CR LF */
	DATA_CR,	/* a CR inside a line, held back */
	DATA_DOT,	/* "." at DATA_BOL, held back */
	DATA_DOT_CR,	/* "." CR at DATA_BOL, held back */
};

void
smtp_data_init(struct smtp_data_decoder *d)
{
	/* The DATA command's own CRLF comes before the first line. */
	d->state = DATA_BOL;
	d->done = false;
}

static void
smtp_data_put(unsigned char *out, size_t *o, unsigned char c)
{
	out[(*o)++] = c;
}

/* One byte of ordinary text. A bare LF is written as CR LF so that the
 * stored message is canonical, but the line after it stays text. */
static void
smtp_data_text(struct smtp_data_decoder *d, unsigned char c, unsigned char *out, size_t *o)
{
	if (c == '\r') {
		d->state = DATA_CR;
		return;
	}
	if (c == '\n')
		smtp_data_put(out, o, '\r');
	smtp_data_put(out, o, c);
	d->state = DATA_TEXT;
}

/* A CR that no LF followed ends its line as CR LF, so that the stored
 * message is canonical; like a bare LF, it does not start an SMTP line. */
static void
smtp_data_bare_cr(struct smtp_data_decoder *d, unsigned char *out, size_t *o)
{
	smtp_data_put(out, o, '\r');
	smtp_data_put(out, o, '\n');
	d->state = DATA_TEXT;
}

/* Feeds one byte; returns true when it completed CR LF "." CR LF. */
static bool
smtp_data_step(struct smtp_data_decoder *d, unsigned char c, unsigned char *out, size_t *o)
{
	switch (d->state) {
	case DATA_BOL:
		if (c == '.') {
			d->state = DATA_DOT;
			return false;
		}
		break;
	case DATA_DOT:
		if (c == '\r') {
			d->state = DATA_DOT_CR;
			return false;
		}
		/* "." then a bare LF is not the end, and that dot is not
		 * stuffing: keep it. Any other byte means a stuffed dot. */
		if (c == '\n')
			smtp_data_put(out, o, '.');
		break;
	case DATA_DOT_CR:
		if (c == '\n')
			return true;
		/* "." and a bare CR: not the end; the dot is kept and the
		 * bare CR ends its line like any other. */
		smtp_data_put(out, o, '.');
		smtp_data_bare_cr(d, out, o);
		break;
	case DATA_CR:
		if (c == '\n') {
			smtp_data_put(out, o, '\r');
			smtp_data_put(out, o, '\n');
			d->state = DATA_BOL;
			return false;
		}
		smtp_data_bare_cr(d, out, o);
		break;
	default:
		break;
	}
	smtp_data_text(d, c, out, o);
	return false;
}

size_t
smtp_data_decode(struct smtp_data_decoder *d, const unsigned char *in, size_t inlen,
		 unsigned char *out, size_t *outlen_r)
{
	size_t i = 0, o = 0;

	while (!d->done && i < inlen) {
		if (smtp_data_step(d, in[i++], out, &o))
			d->done = true;
	}
	*outlen_r = o;
	return i;
}

/* A CR is written at once; the byte after it decides whether an LF has
 * to be added (bare CR) or is the one that follows (CR LF). */
size_t
smtp_crlf_normalize(struct smtp_crlf *c, const unsigned char *in, size_t inlen,
		    unsigned char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < inlen; i++) {
		if (c->prev_cr && in[i] != '\n')
			out[o++] = '\n';
		else if (!c->prev_cr && in[i] == '\n')
			out[o++] = '\r';
		out[o++] = in[i];
		c->prev_cr = in[i] == '\r';
		c->in_line = in[i] != '\n';
	}
	return o;
}

size_t
smtp_crlf_finish(struct smtp_crlf *c, unsigned char *out)
{
	size_t o = 0;

	if (c->prev_cr)
		out[o++] = '\n';
	else if (c->in_line) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	c->prev_cr = false;
	c->in_line = false;
	return o;
}
