/* mime_text.c - SEARCH's text of a message (mime_text.h). */
#include "mime/mime_text.h"

#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "mime/mime_charset.h"
#include "mime/mime_ctype.h"
#include "mime/mime_fold.h"
#include "mime/mime_imap.h"

void
mime_text_field(const char *data, const struct mime_field *f, struct buf *out)
{
	struct buf raw, dec;

	buf_init(&raw, MIME_FIELD_VALUE_MAX);
	buf_init(&dec, 4 * MIME_FIELD_VALUE_MAX);
	mime_field_unfold(data, f, &raw);
	if (mime_2047_decode(raw.data ? raw.data : "", raw.len, &dec) < 0)
		buf_reset(&dec);
	(void)mime_fold_utf8(dec.data ? dec.data : "", dec.len, out);
	buf_free(&dec);
	buf_free(&raw);
}

int
mime_text_field_line(const char *data, const struct mime_field *f, struct buf *out)
{
	if (mime_fold_utf8(data + f->off, f->name_len, out) < 0 || buf_append(out, ": ", 2) < 0)
		return -1;
	mime_text_field(data, f, out);
	return 1;
}

int
mime_text_header(const struct mime_msg *mm, struct buf *out)
{
	const struct mime_part *p0 = &mm->parts[0];
	struct mime_hdr_iter it;
	struct mime_field f;
	struct buf line;
	int ret = 1;

	buf_init(&line, MIME_TEXT_LINE_MAX);
	mime_hdr_iter_init(&it, mm->data, p0->hdr_off, p0->hdr_off + p0->hdr_len);
	while (ret > 0 && mime_hdr_next(&it, &f)) {
		buf_reset(&line);
		/* A field whose line cannot be made is not searched (SEARCH
		 * TEXT skips it too). */
		if (mime_text_field_line(mm->data, &f, &line) < 0)
			continue;
		if (buf_append(out, line.data, line.len) < 0 || buf_append(out, "\n", 1) < 0)
			ret = -1;
	}
	buf_free(&line);
	return ret;
}

/* Appends as much of p[0..n) as fits. */
static void
append_some(struct buf *b, const char *p, size_t n)
{
	size_t room = b->max - b->len;

	if (buf_append(b, p, n < room ? n : room) < 0)
		return;
}

/* Is the part text/... (or without Content-Type, so text/plain)? */
static bool
part_is_text(const struct mime_msg *mm, const struct mime_part *p, struct mime_ctype *ct)
{
	struct mime_field f;
	struct buf raw;
	bool text = true;

	if (mime_hdr_find(mm->data, p->hdr_off, p->hdr_off + p->hdr_len, "Content-Type", &f)) {
		buf_init(&raw, MIME_FIELD_VALUE_MAX);
		mime_field_unfold(mm->data, &f, &raw);
		text = mime_ctype_parse(ct, raw.data ? raw.data : "", raw.len, true) != 1 ||
		       strcasecmp(ct->type.data, "text") == 0;
		buf_free(&raw);
	}
	return text;
}

/* Appends the body of text part i decoded, in UTF-8 and folded. */
static void
part_text(const struct mime_msg *mm, size_t i, struct buf *out)
{
	const struct mime_part *p = &mm->parts[i];
	struct mime_ctype ct;
	struct buf dec, utf8;
	const struct buf *cs;
	size_t n;

	mime_ctype_init(&ct);
	if (!part_is_text(mm, p, &ct)) {
		mime_ctype_free(&ct);
		return;
	}
	/* Decoding never makes the body longer. */
	buf_init(&dec, p->body_len + 1);
	if (mime_binary_decode(mm, (int)i, &dec) != 1) {
		buf_reset(&dec);
		append_some(&dec, mm->data + p->body_off, p->body_len);
	}
	n = dec.len < out->max - out->len ? dec.len : out->max - out->len;
	buf_init(&utf8, 4 * n + 16);
	cs = mime_ctype_param(&ct, "charset");
	if (cs == NULL || mime_charset_to_utf8(cs->data, dec.data ? dec.data : "", n, &utf8) < 0) {
		buf_reset(&utf8);
		append_some(&utf8, dec.data ? dec.data : "", n);
	}
	if (mime_fold_utf8(utf8.data ? utf8.data : "", utf8.len, out) > 0)
		append_some(out, "\n", 1);
	buf_free(&utf8);
	buf_free(&dec);
	mime_ctype_free(&ct);
}

void
mime_text_body(const struct mime_msg *mm, struct buf *out)
{
	for (size_t i = 0; i < mm->nparts && out->len < out->max; i++)
		if (mm->parts[i].kind == MIME_LEAF)
			part_text(mm, i, out);
}

void
mime_text_clean(struct buf *b)
{
	unsigned char *p = (unsigned char *)b->data;
	size_t i = 0;

	while (i < b->len) {
		unsigned cp;
		size_t n = util_utf8_decode(p + i, b->len - i, &cp);

		if (n == 0 || cp == 0) {
			p[i++] = '?';
			continue;
		}
		i += n;
	}
}
