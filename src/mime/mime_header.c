#include "mime/mime_header.h"

#include <string.h>
#include <strings.h>

size_t
mime_line_len(const char *data, size_t pos, size_t end)
{
	const char *nl = memchr(data + pos, '\n', end - pos);

	return nl ? (size_t)(nl - (data + pos)) + 1 : end - pos;
}

bool
mime_line_is_empty(const char *data, size_t pos, size_t end)
{
	if (pos >= end)
		return false;
	if (data[pos] == '\n')
		return true;
	return data[pos] == '\r' && (pos + 1 == end || data[pos + 1] == '\n');
}

void
mime_hdr_iter_init(struct mime_hdr_iter *it, const char *data, size_t start, size_t end)
{
	it->data = data;
	it->pos = start;
	it->end = end;
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* The end of the field whose first line starts at pos: continuation
 * lines (starting with a blank) belong to it. */
static size_t
field_end(const char *data, size_t pos, size_t end)
{
	pos += mime_line_len(data, pos, end);
	while (pos < end && is_blank(data[pos]))
		pos += mime_line_len(data, pos, end);
	return pos;
}

/* Fills f from the field data[pos..fend); false if the first line has no
 * colon or no name. */
static bool
field_split(const char *data, size_t pos, size_t fend, struct mime_field *f)
{
	size_t line = mime_line_len(data, pos, fend);
	const char *colon = memchr(data + pos, ':', line);
	size_t n, v, vend;

	if (colon == NULL)
		return false;
	n = (size_t)(colon - (data + pos));
	while (n > 0 && is_blank(data[pos + n - 1]))
		n--;
	if (n == 0)
		return false;
	v = (size_t)(colon - data) + 1;
	while (v < fend && is_blank(data[v]))
		v++;
	vend = fend;
	if (vend > v && data[vend - 1] == '\n')
		vend--;
	if (vend > v && data[vend - 1] == '\r')
		vend--;
	f->off = pos;
	f->name_len = n;
	f->value_off = v;
	f->value_len = vend > v ? vend - v : 0;
	f->end = fend;
	return true;
}

bool
mime_hdr_next(struct mime_hdr_iter *it, struct mime_field *f)
{
	while (it->pos < it->end && !mime_line_is_empty(it->data, it->pos, it->end)) {
		size_t pos = it->pos;
		size_t fend = field_end(it->data, pos, it->end);

		it->pos = fend;
		if (!is_blank(it->data[pos]) && field_split(it->data, pos, fend, f))
			return true;
	}
	it->pos = it->end;
	return false;
}

bool
mime_field_is(const char *data, const struct mime_field *f, const char *name)
{
	return strlen(name) == f->name_len && strncasecmp(data + f->off, name, f->name_len) == 0;
}

bool
mime_hdr_find(const char *data, size_t start, size_t end, const char *name,
	      struct mime_field *f)
{
	struct mime_hdr_iter it;

	mime_hdr_iter_init(&it, data, start, end);
	while (mime_hdr_next(&it, f))
		if (mime_field_is(data, f, name))
			return true;
	return false;
}

/* The names of enum mime_hdr_known, in its order. */
static const struct {
	const char *name;
	size_t len;
} known_names[MIME_HDR_KNOWN] = {
#define KNOWN(s) { s, sizeof(s) - 1 }
	[MIME_HDR_DATE] = KNOWN("Date"),
	[MIME_HDR_SUBJECT] = KNOWN("Subject"),
	[MIME_HDR_FROM] = KNOWN("From"),
	[MIME_HDR_SENDER] = KNOWN("Sender"),
	[MIME_HDR_REPLY_TO] = KNOWN("Reply-To"),
	[MIME_HDR_TO] = KNOWN("To"),
	[MIME_HDR_CC] = KNOWN("Cc"),
	[MIME_HDR_BCC] = KNOWN("Bcc"),
	[MIME_HDR_IN_REPLY_TO] = KNOWN("In-Reply-To"),
	[MIME_HDR_MESSAGE_ID] = KNOWN("Message-ID"),
	[MIME_HDR_REFERENCES] = KNOWN("References"),
	[MIME_HDR_CONTENT_TYPE] = KNOWN("Content-Type"),
	[MIME_HDR_CONTENT_TRANSFER_ENCODING] = KNOWN("Content-Transfer-Encoding"),
	[MIME_HDR_CONTENT_ID] = KNOWN("Content-ID"),
	[MIME_HDR_CONTENT_DESCRIPTION] = KNOWN("Content-Description"),
	[MIME_HDR_CONTENT_DISPOSITION] = KNOWN("Content-Disposition"),
	[MIME_HDR_CONTENT_LANGUAGE] = KNOWN("Content-Language"),
	[MIME_HDR_CONTENT_LOCATION] = KNOWN("Content-Location"),
	[MIME_HDR_CONTENT_MD5] = KNOWN("Content-MD5"),
#undef KNOWN
};

/* Which known field f is, or MIME_HDR_KNOWN for none. */
static enum mime_hdr_known
known_of(const char *data, const struct mime_field *f)
{
	for (int i = 0; i < MIME_HDR_KNOWN; i++)
		if (known_names[i].len == f->name_len &&
		    strncasecmp(data + f->off, known_names[i].name, f->name_len) == 0)
			return (enum mime_hdr_known)i;
	return MIME_HDR_KNOWN;
}

void
mime_hdr_index_make(struct mime_hdr_index *ix, const char *data, size_t start, size_t end)
{
	struct mime_hdr_iter it;
	struct mime_field f;

	ix->data = data;
	ix->end = end;
	memset(ix->count, 0, sizeof(ix->count));
	mime_hdr_iter_init(&it, data, start, end);
	while (mime_hdr_next(&it, &f)) {
		enum mime_hdr_known k = known_of(data, &f);

		if (k == MIME_HDR_KNOWN)
			continue;
		if (ix->count[k] == 0)
			ix->first[k] = f.off;
		ix->last[k] = f.off;
		if (ix->count[k] < 2)
			ix->count[k]++;
	}
}

bool
mime_hdr_index_get(const struct mime_hdr_index *ix, enum mime_hdr_known name, bool last,
		   struct mime_field *f)
{
	size_t pos;

	if (ix->count[name] == 0)
		return false;
	pos = last ? ix->last[name] : ix->first[name];
	/* the field was split once already: it has a colon and a name */
	return field_split(ix->data, pos, field_end(ix->data, pos, ix->end), f);
}

void
mime_field_unfold(const char *data, const struct mime_field *f, struct buf *out)
{
	const char *p = data + f->value_off;
	size_t i, start = out->len, n = f->value_len, room, take;

	if (n > MIME_FIELD_VALUE_MAX)
		n = MIME_FIELD_VALUE_MAX;
	for (i = 0; i < n;) {
		/* A folding tab becomes a space, as Dovecot sends it. */
		bool fold_tab = p[i] == '\t' && i > 0 && p[i - 1] == '\n';
		size_t run = i;

		if (fold_tab || p[i] == '\r' || p[i] == '\n') {
			if (fold_tab && buf_append(out, " ", 1) < 0)
				break;
			i++;
			continue;
		}
		/* The bytes up to the next line end, in one append (what
		 * fits, if not all of them). */
		while (run < n && p[run] != '\r' && p[run] != '\n')
			run++;
		room = out->max - out->len;
		take = run - i < room ? run - i : room;
		if (take == 0 || buf_append(out, p + i, take) < 0 || take < run - i)
			break;
		i = run;
	}
	while (out->len > start && is_blank(out->data[out->len - 1]))
		out->data[--out->len] = '\0';
}

/* memchr from line end to line end, not a byte loop: delivery and
 * FETCH look for the end of every header they keep. */
size_t
mime_header_len(const char *data, size_t len)
{
	size_t pos = 0;

	while (pos < len && !mime_line_is_empty(data, pos, len))
		pos += mime_line_len(data, pos, len);
	return pos < len ? pos + mime_line_len(data, pos, len) : len;
}

size_t
mime_header_end(const char *data, size_t len, size_t from)
{
	size_t i = from;
	const char *nl;

	while (i + 1 < len && (nl = memchr(data + i, '\n', len - 1 - i)) != NULL) {
		i = (size_t)(nl - data);
		if (data[i + 1] == '\n')
			return i + 2;
		if (data[i + 1] == '\r' && i + 2 < len && data[i + 2] == '\n')
			return i + 3;
		i++;
	}
	return 0;
}
