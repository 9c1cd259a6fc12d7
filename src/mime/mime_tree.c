#include "mime/mime.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "mime/mime_ctype.h"
#include "mime/mime_header.h"

struct boundary {
	const char *p;
	size_t len;
};

struct parser {
	struct mime_msg *m;
	const char *data;
	size_t lim;		/* end of the message */
	struct boundary stack[MIME_DEPTH_MAX];
	size_t nstack;
};

/* What a part's header says about its body. */
struct part_type {
	enum mime_kind kind;
	bool text;
	bool digest;		/* multipart/digest: children default to message/rfc822 */
	/* A multipart without a boundary has no parts: its body is opaque. */
	char boundary[MIME_BOUNDARY_MAX + 1];
	size_t boundary_len;
};

static int
part_new(struct parser *ps, int parent, unsigned depth)
{
	struct mime_msg *m = ps->m;
	struct mime_part *p;

	if (m->nparts == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 8;

		m->parts = realloc(m->parts, cap * sizeof(*m->parts));
		if (m->parts == NULL)
			log_fatal("out of memory");
		m->cap = cap;
	}
	p = &m->parts[m->nparts];
	memset(p, 0, sizeof(*p));
	p->parent = parent;
	p->first_child = -1;
	p->next = -1;
	p->depth = depth;
	if (parent >= 0) {
		struct mime_part *par = &m->parts[parent];
		int *link = &par->first_child;

		while (*link >= 0)
			link = &m->parts[*link].next;
		*link = (int)m->nparts;
		par->nchildren++;
	}
	return (int)m->nparts++;
}

/* If the line at pos is a boundary line of an open multipart, returns
 * its stack index and whether it closes; else -1. Only the start of the
 * line has to match; where several boundaries match, the longest wins,
 * then the innermost (so "--ab" ends part "ab", not its child "a"). */
static int
boundary_match(const struct parser *ps, size_t pos, bool *close)
{
	const char *d = ps->data;
	size_t avail = ps->lim - pos, after;
	int best = -1;

	if (avail < 2 || d[pos] != '-' || d[pos + 1] != '-')
		return -1;
	for (size_t i = ps->nstack; i > 0; i--) {
		const struct boundary *b = &ps->stack[i - 1];

		if (avail - 2 >= b->len && memcmp(d + pos + 2, b->p, b->len) == 0 &&
		    (best < 0 || ps->stack[best].len < b->len))
			best = (int)(i - 1);
	}
	if (best < 0)
		return -1;
	after = pos + 2 + ps->stack[best].len;
	*close = ps->lim - after >= 2 && d[after] == '-' && d[after + 1] == '-';
	return best;
}

/* The first line at or after pos (a line start) that is a boundary line,
 * or ps->lim. It looks from dash to dash, not from line to line: a
 * boundary line starts with "--", and a base64 body has no '-' at all. */
static size_t
boundary_find(const struct parser *ps, size_t pos)
{
	const char *d = ps->data, *dash;
	size_t at = pos;
	bool close;

	if (ps->nstack == 0)
		return ps->lim;
	while (at < ps->lim && (dash = memchr(d + at, '-', ps->lim - at)) != NULL) {
		at = (size_t)(dash - d);
		if ((at == pos || d[at - 1] == '\n') && boundary_match(ps, at, &close) >= 0)
			return at;
		at++;
	}
	return ps->lim;
}

/* Where the content before a boundary line at stop ends: the line end
 * before the boundary belongs to the boundary (RFC 2046 5.1.1). */
static size_t
content_end(const struct parser *ps, size_t start, size_t stop)
{
	if (stop == ps->lim || stop <= start)
		return stop;
	if (ps->data[stop - 1] == '\n')
		stop--;
	if (stop > start && ps->data[stop - 1] == '\r')
		stop--;
	return stop;
}

/* Scans the header at pos: sets hdr_len and body_off. The header ends at
 * its empty line (*ended set), at a boundary line, or at the end. */
static size_t
header_scan(struct parser *ps, size_t pos, bool *ended)
{
	bool close;

	*ended = false;
	while (pos < ps->lim) {
		size_t ll = mime_line_len(ps->data, pos, ps->lim);

		if (ps->nstack > 0 && boundary_match(ps, pos, &close) >= 0)
			return pos;
		if (mime_line_is_empty(ps->data, pos, ps->lim)) {
			*ended = true;
			return pos + ll;
		}
		pos += ll;
	}
	return pos;
}

static bool
type_is(const struct buf *b, const char *s)
{
	return strcasecmp(b->data, s) == 0;
}

/* Does a boundary line of an enclosing multipart start at pos? A part
 * that is a multipart itself has its own boundary tried too: when that
 * one matches better (boundaries match by prefix), the line is its. */
static bool
at_outer_boundary(struct parser *ps, size_t pos, const struct part_type *t)
{
	size_t level = ps->nstack;
	bool close;
	int which;

	if (level == 0 || level >= MIME_DEPTH_MAX || pos >= ps->lim)
		return false;
	if (t->kind == MIME_MULTIPART && t->boundary_len > 0) {
		ps->stack[level].p = t->boundary;
		ps->stack[level].len = t->boundary_len;
		ps->nstack++;
	}
	which = boundary_match(ps, pos, &close);
	ps->nstack = level;
	return which >= 0 && (size_t)which < level;
}

/* Reads Content-Type from the header; dflt_msg: the default is
 * message/rfc822 (inside multipart/digest). */
static void
type_read(const char *data, size_t start, size_t end, bool dflt_msg, struct part_type *t)
{
	struct mime_field f;
	struct mime_ctype ct;
	const struct buf *bnd;

	memset(t, 0, sizeof(*t));
	t->kind = dflt_msg ? MIME_MESSAGE : MIME_LEAF;
	t->text = !dflt_msg;
	if (!mime_hdr_find(data, start, end, "Content-Type", &f))
		return;
	mime_ctype_init(&ct);
	if (mime_ctype_parse(&ct, data + f.value_off, f.value_len, true) > 0) {
		t->kind = MIME_LEAF;
		t->text = type_is(&ct.type, "text");
		if (type_is(&ct.type, "multipart")) {
			t->kind = MIME_MULTIPART;
			bnd = mime_ctype_param(&ct, "boundary");
			if (bnd != NULL && bnd->len > 0) {
				/* Longer ones are cut, as Dovecot does: the RFC
				 * limit is 70, what lies beyond is guesswork. */
				t->boundary_len = bnd->len < MIME_BOUNDARY_MAX ? bnd->len : MIME_BOUNDARY_MAX;
				memcpy(t->boundary, bnd->data, t->boundary_len);
			}
			t->digest = type_is(&ct.subtype, "digest");
		} else if (type_is(&ct.type, "message") &&
			   (type_is(&ct.subtype, "rfc822") || type_is(&ct.subtype, "global"))) {
			t->kind = MIME_MESSAGE;
		}
	} else {
		t->text = true;
	}
	mime_ctype_free(&ct);
}

/* memchr, not a byte loop: every stored message is parsed once at
 * delivery, and this is most of it for a long body. */
static size_t
count_lines(const char *p, size_t len)
{
	const char *end = p + len, *nl;
	size_t n = 0;

	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p = nl + 1;
	}
	return n;
}

/* Keeps the parts after idx (its descendants) inside its body, which
 * ends at end: a contained header's empty line, or a last line, may be
 * the line end that belongs to the boundary after the part. */
static void
clamp_descendants(struct parser *ps, int idx, size_t end)
{
	for (size_t i = (size_t)idx + 1; i < ps->m->nparts; i++) {
		struct mime_part *d = &ps->m->parts[i];

		if (d->body_off + d->body_len <= end)
			continue;
		if (d->hdr_off > end)
			d->hdr_off = end;
		if (d->hdr_off + d->hdr_len > end)
			d->hdr_len = end - d->hdr_off;
		d->body_off = d->hdr_off + d->hdr_len;
		if (d->body_off + d->body_len > end)
			d->body_len = end - d->body_off;
		d->body_lines = count_lines(ps->data + d->body_off, d->body_len);
	}
}

/* A part whose header a boundary line cut: no body, no parts; a message
 * still contains an (empty) message, as IMAP's syntax needs one. */
static size_t
part_cut(struct parser *ps, int idx, size_t cut, const struct part_type *t)
{
	size_t body = ps->m->parts[idx].body_off;

	if (t->kind == MIME_MESSAGE) {
		int c = part_new(ps, idx, ps->m->parts[idx].depth + 1);
		struct mime_part *child = &ps->m->parts[c];

		child->hdr_off = child->body_off = body;
		child->text = true;
	}
	return cut;
}

static size_t parse_part(struct parser *ps, size_t pos, int parent, unsigned depth,
			 bool dflt_msg);

/* The parts of a multipart body from pos; returns where the multipart
 * ends (a boundary line of an outer one, or the end). */
static size_t
parse_children(struct parser *ps, int idx, size_t pos, const struct part_type *t)
{
	unsigned depth = ps->m->parts[idx].depth + 1;
	size_t level = ps->nstack;
	bool close;
	int which;

	ps->stack[ps->nstack].p = t->boundary;
	ps->stack[ps->nstack++].len = t->boundary_len;
	pos = boundary_find(ps, pos);
	while (pos < ps->lim) {
		which = boundary_match(ps, pos, &close);
		if (which != (int)level)
			break;
		pos += mime_line_len(ps->data, pos, ps->lim);
		if (close) {
			ps->nstack--;
			return boundary_find(ps, pos);
		}
		if (ps->m->nparts >= MIME_PARTS_MAX) {
			pos = boundary_find(ps, pos);
			continue;
		}
		pos = parse_part(ps, pos, idx, depth, t->digest);
	}
	ps->nstack--;
	return pos;
}

static size_t
parse_part(struct parser *ps, size_t pos, int parent, unsigned depth, bool dflt_msg)
{
	int idx = part_new(ps, parent, depth);
	struct part_type t;
	size_t body, stop, cut = 0;
	struct mime_part *p;
	bool ended;

	body = header_scan(ps, pos, &ended);
	/* A header cut short by a boundary line gives that line's end to
	 * the boundary, as a body would (RFC 2046 5.1.1); the part is empty. */
	if (!ended && body < ps->lim) {
		cut = body;
		body = content_end(ps, pos, body);
	}
	type_read(ps->data, pos, body, dflt_msg, &t);
	/* So does a header whose empty line is right before a boundary
	 * line: the part is a header without its empty line, and no body. */
	if (ended && at_outer_boundary(ps, body, &t))
		body = content_end(ps, pos, body);
	p = &ps->m->parts[idx];
	p->hdr_off = pos;
	p->hdr_len = body - pos;
	p->body_off = body;
	p->text = t.text;
	if (depth + 1 >= MIME_DEPTH_MAX || ps->m->nparts >= MIME_PARTS_MAX ||
	    ps->nstack >= MIME_DEPTH_MAX)
		t.kind = MIME_LEAF;
	p->kind = t.kind;
	if (cut > 0)
		stop = part_cut(ps, idx, cut, &t);
	else if (t.kind == MIME_MULTIPART && t.boundary_len > 0)
		stop = parse_children(ps, idx, body, &t);
	else if (t.kind == MIME_MESSAGE)
		stop = parse_part(ps, body, idx, depth + 1, false);
	else
		stop = boundary_find(ps, body);
	p = &ps->m->parts[idx];
	p->body_len = content_end(ps, body, stop) - body;
	p->body_lines = count_lines(ps->data + body, p->body_len);
	clamp_descendants(ps, idx, body + p->body_len);
	return stop;
}

int
mime_parse(struct mime_msg *m, const char *data, size_t len)
{
	struct parser ps;

	memset(m, 0, sizeof(*m));
	m->data = data;
	m->len = len;
	ps.m = m;
	ps.data = data;
	ps.lim = len;
	ps.nstack = 0;
	(void)parse_part(&ps, 0, -1, 0, false);
	m->fields = calloc(m->nparts, sizeof(*m->fields));
	if (m->fields == NULL)
		log_fatal("out of memory");
	return 1;
}

const struct mime_hdr_index *
mime_part_fields(const struct mime_msg *m, int part)
{
	const struct mime_part *p = &m->parts[part];
	struct mime_hdr_index *ix = &m->fields[part];	/* made by mime_parse, empty */

	if (ix->data == NULL)
		mime_hdr_index_make(ix, m->data, p->hdr_off, p->hdr_off + p->hdr_len);
	return ix;
}

void
mime_free(struct mime_msg *m)
{
	free(m->parts);
	free(m->fields);
	memset(m, 0, sizeof(*m));
}

int
mime_child(const struct mime_msg *m, int part, unsigned n)
{
	int c;

	if (part < 0 || (size_t)part >= m->nparts || n == 0)
		return -1;
	for (c = m->parts[part].first_child; c >= 0 && n > 1; n--)
		c = m->parts[c].next;
	return c;
}
