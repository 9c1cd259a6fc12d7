/* smtp_7bit.c - 8-bit MIME to 7-bit, for a server without 8BITMIME;
 * lines too long for SMTP made short. */
#include "queue/smtp_7bit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/log.h"
#include "mime/mime_ctype.h"
#include "mime/mime_decode.h"
#include "mime/mime_header.h"

#define SMTP7_LINE_MAX 4096		/* a longer line goes on in pieces */
#define SMTP7_HEADER_MAX (256 * 1024)	/* one part's header section */
#define SMTP7_DEPTH_MAX 16		/* multiparts inside each other */
#define SMTP7_BOUNDARY_MAX 200		/* RFC 2046 5.1.1 allows 70 */
#define SMTP7_PARTS_MAX 4096		/* leaf parts whose need is kept */
#define SMTP7_QP_COLS 75		/* and the soft break's "=": 76 */

enum smtp7_state {
	SMTP7_HEADER,		/* a part's (or the message's) header section */
	SMTP7_BODY,		/* a leaf part's content, passed on */
	SMTP7_BODY_QP,		/* a leaf part's content, re-encoded */
	SMTP7_OTHER,		/* a multipart's preamble or epilogue */
};

struct smtp7 {
	smtp7_out *out;			/* NULL while scanning */
	void *arg;
	bool keep_8bit;			/* only long lines need converting */
	enum smtp7_state state;
	char line[SMTP7_LINE_MAX];	/* the current line, or piece of one */
	size_t len;
	bool cr;			/* the last byte was a CR */
	bool cont;			/* the next piece continues a line */
	size_t linelen;			/* of the line so far, as it came */
	size_t ocol;			/* of the line so far, as it goes out */
	enum mime_cte cte;		/* the leaf's encoding */
	struct buf header;
	char bound[SMTP7_DEPTH_MAX][SMTP7_BOUNDARY_MAX + 1];
	size_t depth;
	size_t part;			/* leaf parts so far */
	bool identity;			/* the leaf's encoding is 7bit, 8bit, binary */
	size_t col;			/* of the quoted-printable output */
	unsigned char need[SMTP7_PARTS_MAX / 8];
	char why[SMTP7_REASON_MAX];	/* the first reason not to convert */
};

static void
smtp7_reset(struct smtp7 *d)
{
	d->state = SMTP7_HEADER;
	d->len = d->depth = d->part = d->col = d->linelen = d->ocol = 0;
	d->cte = MIME_CTE_IDENTITY;
	d->cr = d->cont = d->identity = false;
	buf_reset(&d->header);
}

struct smtp7 *
smtp7_new(bool keep_8bit)
{
	struct smtp7 *d = calloc(1, sizeof(*d));

	if (d == NULL)
		log_fatal("out of memory");
	d->keep_8bit = keep_8bit;
	buf_init(&d->header, SMTP7_HEADER_MAX);
	smtp7_reset(d);
	return d;
}

void
smtp7_free(struct smtp7 *d)
{
	if (d == NULL)
		return;
	buf_free(&d->header);
	free(d);
}

void
smtp7_start_output(struct smtp7 *d, smtp7_out *out, void *arg)
{
	smtp7_reset(d);
	d->out = out;
	d->arg = arg;
}

static void
smtp7_fail(struct smtp7 *d, const char *why)
{
	if (d->why[0] == '\0')
		snprintf(d->why, sizeof(d->why), "%s", why);
}

static void
smtp7_emit(struct smtp7 *d, const char *p, size_t n)
{
	if (d->out != NULL && n > 0)
		d->out(d->arg, p, n);
}

/* A piece of a line as it came, and the line end if it ends there. A
 * line that grows past SMTP7_LINE_LIMIT is broken where it reaches it:
 * base64 decoders skip the line end, a quoted-printable part gets a soft
 * break (never inside an =XX), other text (a preamble, an epilogue, a
 * part the scan could not mark) a hard one. */
static void
smtp7_emit_line(struct smtp7 *d, const char *p, size_t n, bool eol)
{
	bool qp = d->state == SMTP7_BODY && d->cte == MIME_CTE_QP;
	size_t limit = SMTP7_LINE_LIMIT - (qp ? 1 : 0);	/* room for the "=" */

	while (d->ocol + n > limit) {
		size_t take = limit - d->ocol;

		for (size_t back = 1; qp && back <= 2 && back <= take; back++) {
			if (p[take - back] == '=') {
				take -= back;
				break;
			}
		}
		smtp7_emit(d, p, take);
		smtp7_emit(d, qp ? "=\r\n" : "\r\n", qp ? 3 : 2);
		d->ocol = 0;
		p += take;
		n -= take;
	}
	smtp7_emit(d, p, n);
	d->ocol += n;
	if (eol) {
		smtp7_emit(d, "\r\n", 2);
		d->ocol = 0;
	}
}

/* A piece of a header line into the header section, folded (CRLF SPACE,
 * as Postfix does) where it would pass SMTP7_LINE_LIMIT. */
static int
smtp7_header_append(struct smtp7 *d, const char *p, size_t n, bool eol)
{
	while (d->ocol + n > SMTP7_LINE_LIMIT) {
		size_t take = SMTP7_LINE_LIMIT - d->ocol;

		if (buf_append(&d->header, p, take) < 0 || buf_append(&d->header, "\r\n ", 3) < 0)
			return -1;
		d->ocol = 1;
		p += take;
		n -= take;
	}
	d->ocol += n;
	if (buf_append(&d->header, p, n) < 0)
		return -1;
	if (eol) {
		d->ocol = 0;
		return buf_append(&d->header, "\r\n", 2);
	}
	return 1;
}

static bool
smtp7_has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)p[i] > 127)
			return true;
	}
	return false;
}

static bool
smtp7_needs(const struct smtp7 *d, size_t part)
{
	return part < SMTP7_PARTS_MAX && (d->need[part / 8] & (1u << (part % 8))) != 0;
}

/* Quoted-printable (RFC 2045 6.7): printable ASCII but '=' as it is,
 * blanks too unless they end the line, the rest =XX; soft line breaks
 * keep every line within 76 characters. */
static void
smtp7_qp(struct smtp7 *d, const char *p, size_t n, bool eol)
{
	char out[4 * SMTP7_LINE_MAX + 8];
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		bool blank = ch == ' ' || ch == '\t';
		bool plain = (ch >= 33 && ch <= 126 && ch != '=') || (blank && !(eol && i == n - 1));
		size_t w = plain ? 1 : 3;

		if (d->col + w > SMTP7_QP_COLS) {
			memcpy(out + o, "=\r\n", 3);
			o += 3;
			d->col = 0;
		}
		if (plain)
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, sizeof(out) - o, "=%02X", ch);
		d->col += w;
	}
	if (eol) {
		memcpy(out + o, "\r\n", 2);
		o += 2;
		d->col = 0;
	}
	smtp7_emit(d, out, o);
}

/* The header section less its Content-Transfer-Encoding fields, then
 * cte (a whole field, or "") and the empty line. */
static void
smtp7_emit_header(struct smtp7 *d, bool drop_cte, const char *cte)
{
	struct mime_hdr_iter it;
	struct mime_field f;
	size_t pos = 0;

	if (drop_cte) {
		mime_hdr_iter_init(&it, d->header.data, 0, d->header.len);
		while (mime_hdr_next(&it, &f)) {
			if (!mime_field_is(d->header.data, &f, "Content-Transfer-Encoding"))
				continue;
			smtp7_emit(d, d->header.data + pos, f.off - pos);
			pos = f.end;
		}
	}
	smtp7_emit(d, d->header.data + pos, d->header.len - pos);
	smtp7_emit(d, cte, strlen(cte));
	smtp7_emit(d, "\r\n", 2);
}

/* The unfolded value of the first field called name ("" if none). */
static bool
smtp7_field(const struct smtp7 *d, const char *name, struct buf *out)
{
	struct mime_field f;

	if (!mime_hdr_find(d->header.data, 0, d->header.len, name, &f))
		return false;
	mime_field_unfold(d->header.data, &f, out);
	return true;
}

/* A multipart: its boundary goes on the stack, its preamble follows. */
static void
smtp7_multipart(struct smtp7 *d, const struct buf *boundary)
{
	if (d->depth == SMTP7_DEPTH_MAX || boundary->len == 0 ||
	    boundary->len > SMTP7_BOUNDARY_MAX) {
		smtp7_fail(d, "its MIME parts are nested too deep or have a bad boundary");
		return;
	}
	memcpy(d->bound[d->depth], boundary->data, boundary->len);
	d->bound[d->depth][boundary->len] = '\0';
	d->depth++;
	/* Its parts become 7bit: so does it (no field says 7bit). */
	smtp7_emit_header(d, true, "");
	d->state = SMTP7_OTHER;
}

/* A leaf part: re-encoded if the scan found it needs to be. */
static void
smtp7_leaf(struct smtp7 *d, enum mime_cte cte)
{
	size_t part = d->part++;

	d->identity = cte == MIME_CTE_IDENTITY;
	d->cte = cte;
	if (d->out != NULL && smtp7_needs(d, part)) {
		smtp7_emit_header(d, true, "Content-Transfer-Encoding: quoted-printable\r\n");
		d->state = SMTP7_BODY_QP;
		d->col = 0;
		return;
	}
	smtp7_emit_header(d, false, "");
	d->state = SMTP7_BODY;
}

/* The empty line after a header section: what kind of part this is. */
static void
smtp7_header_end(struct smtp7 *d)
{
	struct mime_ctype ct;
	struct buf value;
	enum mime_cte cte = MIME_CTE_IDENTITY;
	bool typed;

	buf_init(&value, MIME_FIELD_VALUE_MAX);
	if (smtp7_field(d, "Content-Transfer-Encoding", &value))
		cte = mime_cte_parse(value.data, value.len);
	buf_reset(&value);
	mime_ctype_init(&ct);
	typed = smtp7_field(d, "Content-Type", &value) &&
		mime_ctype_parse(&ct, value.data, value.len, true) == 1;
	if (typed && ct.type.len == 9 && strncasecmp(ct.type.data, "multipart", 9) == 0 &&
	    mime_ctype_param(&ct, "boundary") != NULL) {
		smtp7_multipart(d, mime_ctype_param(&ct, "boundary"));
	} else if (typed && ct.type.len == 7 && strncasecmp(ct.type.data, "message", 7) == 0 &&
		   ct.subtype.len == 6 && strncasecmp(ct.subtype.data, "rfc822", 6) == 0) {
		/* Its message is converted too: then its 8bit label is wrong. */
		smtp7_emit_header(d, d->out != NULL, "Content-Transfer-Encoding: 7bit\r\n");
		d->state = SMTP7_HEADER;
	} else {
		smtp7_leaf(d, cte);
	}
	mime_ctype_free(&ct);
	buf_free(&value);
	buf_reset(&d->header);
}

/* A line that starts with "--" and an open boundary (RFC 2046 5.1.1):
 * the next part, or the end of that multipart. */
static bool
smtp7_boundary(struct smtp7 *d, const char *p, size_t n)
{
	if (n < 3 || p[0] != '-' || p[1] != '-')
		return false;
	for (size_t i = d->depth; i-- > 0;) {
		size_t bl = strlen(d->bound[i]), k;
		bool close;

		if (n < 2 + bl || memcmp(p + 2, d->bound[i], bl) != 0)
			continue;
		k = 2 + bl;
		close = n - k >= 2 && p[k] == '-' && p[k + 1] == '-';
		if (close)
			k += 2;
		while (k < n && (p[k] == ' ' || p[k] == '\t'))
			k++;
		if (k != n)
			continue;
		smtp7_emit_line(d, p, n, true);
		d->depth = close ? i : i + 1;
		d->state = close ? SMTP7_OTHER : SMTP7_HEADER;
		return true;
	}
	return false;
}

/* The scan: the current leaf part goes out quoted-printable. */
static void
smtp7_mark(struct smtp7 *d)
{
	if (d->part - 1 < SMTP7_PARTS_MAX)
		d->need[(d->part - 1) / 8] |= (unsigned char)(1u << ((d->part - 1) % 8));
	else
		smtp7_fail(d, "it has too many MIME parts");
}

/* One line, or one piece of a long line (eol: the line ends here). */
static void
smtp7_piece(struct smtp7 *d, const char *p, size_t n, bool eol)
{
	bool bol = !d->cont;

	d->cont = !eol;
	d->linelen = (bol ? 0 : d->linelen) + n;
	if (d->state == SMTP7_HEADER) {
		if (bol && eol && n == 0) {
			smtp7_header_end(d);
			return;
		}
		if (!d->keep_8bit && smtp7_has_8bit(p, n))
			smtp7_fail(d, "it has 8-bit bytes in a header section");
		if (smtp7_header_append(d, p, n, eol) < 0)
			smtp7_fail(d, "a header section is too long");
		return;
	}
	if (bol && eol && smtp7_boundary(d, p, n))
		return;
	if (d->state == SMTP7_BODY_QP) {
		smtp7_qp(d, p, n, eol);
		return;
	}
	if (d->out == NULL && d->state == SMTP7_BODY && d->identity &&
	    d->linelen > SMTP7_LINE_LIMIT)
		smtp7_mark(d);
	if (d->out == NULL && !d->keep_8bit && smtp7_has_8bit(p, n)) {
		if (d->state == SMTP7_BODY && d->identity)
			smtp7_mark(d);
		else
			smtp7_fail(d, "it has 8-bit bytes where no encoding can be changed");
	}
	smtp7_emit_line(d, p, n, eol);
}

void
smtp7_feed(struct smtp7 *d, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];

		/* CRLF, LF and a lone CR each end a line, as on the wire. */
		if (d->cr && ch != '\n') {
			smtp7_piece(d, d->line, d->len, true);
			d->len = 0;
		}
		d->cr = ch == '\r';
		if (ch == '\r')
			continue;
		if (ch == '\n') {
			smtp7_piece(d, d->line, d->len, true);
			d->len = 0;
			continue;
		}
		if (d->len == sizeof(d->line)) {
			smtp7_piece(d, d->line, d->len, false);
			d->len = 0;
		}
		d->line[d->len++] = ch;
	}
}

int
smtp7_end(struct smtp7 *d, char *why, size_t whylen)
{
	/* An unended last line is ended, as DATA ends it. */
	if (d->len > 0 || d->cr || d->cont)
		smtp7_piece(d, d->line, d->len, true);
	d->len = 0;
	d->cr = false;
	if (d->state == SMTP7_HEADER)	/* a header without a body */
		smtp7_emit(d, d->header.data, d->header.len);
	buf_reset(&d->header);
	if (d->why[0] != '\0') {
		snprintf(why, whylen, "%s", d->why);
		return -1;
	}
	return 1;
}
