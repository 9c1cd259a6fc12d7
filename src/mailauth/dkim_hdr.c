/* dkim_hdr.c - header fields and their selection for signing. */
#include <strings.h>
#include <string.h>

#include "mailauth/dkim_hdr.h"

void
dkim_msg_split(const char *msg, size_t len, size_t *hdr_len, size_t *body_off)
{
	if (len >= 2 && msg[0] == '\r' && msg[1] == '\n') {
		*hdr_len = 0;
		*body_off = 2;
		return;
	}
	for (size_t i = 0; i + 3 < len; i++) {
		if (msg[i] == '\r' && msg[i + 1] == '\n' && msg[i + 2] == '\r' &&
		    msg[i + 3] == '\n') {
			*hdr_len = i + 2;
			*body_off = i + 4;
			return;
		}
	}
	*hdr_len = len;
	*body_off = len;
}

/* The end of the line at p: just after its LF, or end. */
static const char *
line_end(const char *p, const char *end)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));

	return lf != NULL ? lf + 1 : end;
}

static size_t
field_name_len(const char *p, size_t len)
{
	const char *colon = memchr(p, ':', len);
	size_t n = colon != NULL ? (size_t)(colon - p) : 0;

	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	return n;
}

int
dkim_headers_parse(const char *hdr, size_t len, struct dkim_headers *h)
{
	const char *p = hdr, *end = hdr + len;

	h->n = 0;
	while (p < end) {
		const char *q = line_end(p, end);
		while (q < end && (*q == ' ' || *q == '\t'))
			q = line_end(q, end);
		if (h->n == DKIM_FIELDS_MAX)
			return -1;
		struct dkim_field *f = &h->f[h->n++];
		f->p = p;
		f->len = (size_t)(q - p);
		f->name_len = field_name_len(p, f->len);
		p = q;
	}
	return 1;
}

bool
dkim_field_is(const struct dkim_field *f, const char *name, size_t name_len)
{
	return f->name_len == name_len && f->name_len > 0 &&
	       strncasecmp(f->p, name, name_len) == 0;
}

const char *
dkim_field_value(const struct dkim_field *f, size_t *len)
{
	const char *colon = memchr(f->p, ':', f->len);
	size_t n;

	if (colon == NULL) {
		*len = 0;
		return f->p + f->len;
	}
	n = f->len - (size_t)(colon + 1 - f->p);
	while (n > 0 && (colon[n] == '\r' || colon[n] == '\n'))
		n--;
	*len = n;
	return colon + 1;
}

/* Bottom-up: the last field of that name not chosen yet. */
static int
choose(const struct dkim_headers *h, const char *name, size_t n, unsigned char *used,
       const struct dkim_field *skip)
{
	for (size_t i = h->n; i-- > 0;) {
		if (used[i] || &h->f[i] == skip || !dkim_field_is(&h->f[i], name, n))
			continue;
		used[i] = 1;
		return (int)i;
	}
	return -1;
}

int
dkim_hdr_select(struct buf *out, const struct dkim_headers *h, enum dkim_canon canon,
		const char *names, size_t names_len, const struct dkim_field *skip)
{
	static _Thread_local unsigned char used[DKIM_FIELDS_MAX];
	size_t i = 0;

	memset(used, 0, h->n);
	while (i <= names_len) {
		size_t s = i, e;
		while (i < names_len && names[i] != ':')
			i++;
		e = i++;
		while (s < e && strchr(" \t\r\n", names[s]) != NULL)
			s++;
		while (e > s && strchr(" \t\r\n", names[e - 1]) != NULL)
			e--;
		if (e == s)
			continue;	/* only an AMS may have one (see dkim_sig.c) */
		int k = choose(h, names + s, e - s, used, skip);
		if (k >= 0 && dkim_canon_header(out, canon, h->f[k].p, h->f[k].len, true) < 0)
			return -1;
	}
	return 1;
}
