/* mime_preview.c - RFC 8970 preview text. */
#include "mime/mime_preview.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "mime/mime_charset.h"
#include "mime/mime_ctype.h"
#include "mime/mime_decode.h"
#include "mime/mime_header.h"

enum preview_kind { PREVIEW_NONE, PREVIEW_PLAIN, PREVIEW_HTML };

/* What a leaf part offers: plain text, HTML, or nothing (an attachment,
 * another type). charset gets its charset parameter ("" if none). */
static enum preview_kind
part_kind(const struct mime_msg *m, const struct mime_part *p, char *charset, size_t cslen)
{
	enum preview_kind kind = PREVIEW_PLAIN;	/* RFC 2045 5.2's default */
	struct mime_field f;
	struct mime_ctype ct;

	charset[0] = '\0';
	if (mime_hdr_find(m->data, p->hdr_off, p->hdr_off + p->hdr_len, "Content-Disposition", &f) &&
	    f.value_len >= 10 && strncasecmp(m->data + f.value_off, "attachment", 10) == 0)
		return PREVIEW_NONE;
	if (!mime_hdr_find(m->data, p->hdr_off, p->hdr_off + p->hdr_len, "Content-Type", &f))
		return kind;
	mime_ctype_init(&ct);
	if (mime_ctype_parse(&ct, m->data + f.value_off, f.value_len, true) > 0) {
		const struct buf *cs = mime_ctype_param(&ct, "charset");

		if (strcasecmp(ct.type.data, "text") != 0)
			kind = PREVIEW_NONE;
		else if (strcasecmp(ct.subtype.data, "html") == 0)
			kind = PREVIEW_HTML;
		else if (strcasecmp(ct.subtype.data, "plain") != 0)
			kind = PREVIEW_NONE;
		if (cs != NULL && cs->len < cslen)
			memcpy(charset, cs->data, cs->len + 1);
	}
	mime_ctype_free(&ct);
	return kind;
}

/* Is part inside a message/rfc822 part (an attached message)? */
static bool
part_attached(const struct mime_msg *m, int part)
{
	for (int i = m->parts[part].parent; i >= 0; i = m->parts[i].parent)
		if (m->parts[i].kind == MIME_MESSAGE)
			return true;
	return false;
}

/* The first part of the wanted kind, or -1. */
static int
find_part(const struct mime_msg *m, enum preview_kind want, char *charset, size_t cslen)
{
	for (size_t i = 0; i < m->nparts; i++) {
		const struct mime_part *p = &m->parts[i];

		if (p->kind == MIME_LEAF && !part_attached(m, (int)i) &&
		    part_kind(m, p, charset, cslen) == want)
			return (int)i;
	}
	return -1;
}

/* The part's body, transfer-decoded and converted to UTF-8. */
static int
part_text(const struct mime_msg *m, int part, const char *charset, struct buf *out)
{
	const struct mime_part *p = &m->parts[part];
	enum mime_cte cte = MIME_CTE_IDENTITY;
	size_t len = p->body_len < MIME_PREVIEW_SCAN_MAX ? p->body_len : MIME_PREVIEW_SCAN_MAX;
	struct mime_field f;
	struct buf raw;
	int rc;

	if (mime_hdr_find(m->data, p->hdr_off, p->hdr_off + p->hdr_len,
			  "Content-Transfer-Encoding", &f))
		cte = mime_cte_parse(m->data + f.value_off, f.value_len);
	buf_init(&raw, 2 * MIME_PREVIEW_SCAN_MAX);
	if (mime_body_decode(cte, m->data + p->body_off, len, &raw) != 1) {
		buf_free(&raw);
		return 0;
	}
	/* An unknown or missing charset: read it as UTF-8, which keeps
	 * ASCII and marks anything else as U+FFFD. */
	rc = mime_charset_to_utf8(charset[0] != '\0' ? charset : "UTF-8",
				  raw.data != NULL ? raw.data : "", raw.len, out);
	if (rc < 0 && out->len == 0)
		rc = mime_charset_to_utf8("UTF-8", raw.data != NULL ? raw.data : "", raw.len, out);
	buf_free(&raw);
	return rc;
}

/* ---- HTML to text ---- */

/* Elements whose content is not text a reader sees. */
static bool
skipped_element(const char *tag, size_t len)
{
	static const char *const names[] = { "style", "script", "head", "title" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = strlen(names[i]);

		if (len >= n && strncasecmp(tag, names[i], n) == 0 &&
		    (len == n || tag[n] == ' ' || tag[n] == '>' || tag[n] == '\t' ||
		     tag[n] == '\n' || tag[n] == '\r' || tag[n] == '/'))
			return true;
	}
	return false;
}

/* Appends the UTF-8 form of code point cp (invalid ones as U+FFFD). */
static int
put_codepoint(struct buf *out, unsigned long cp)
{
	char u[4];
	size_t n;

	if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		cp = 0xFFFD;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | cp >> 18);
		u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
		u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return buf_append(out, u, n);
}

/* Decodes the entity at p ("&amp;", "&#233;", "&#xE9;"); returns the
 * bytes it takes, 0 if it is not one we know (the '&' stays). */
static size_t
html_entity(const char *p, size_t len, struct buf *out, int *rc)
{
	static const struct { const char *name; unsigned long cp; } named[] = {
		{ "amp;", '&' }, { "lt;", '<' }, { "gt;", '>' }, { "quot;", '"' },
		{ "apos;", '\'' }, { "nbsp;", ' ' },
	};
	const char *semi = memchr(p, ';', len < 12 ? len : 12);

	if (semi == NULL)
		return 0;
	if (len > 2 && p[1] == '#') {
		bool hex = p[2] == 'x' || p[2] == 'X';
		unsigned long cp = 0;

		for (const char *q = p + 2 + hex; q < semi; q++) {
			int d = *q >= '0' && *q <= '9'			? *q - '0'
				: hex && *q >= 'a' && *q <= 'f'		? *q - 'a' + 10
				: hex && *q >= 'A' && *q <= 'F'		? *q - 'A' + 10
									: -1;

			if (d < 0)
				return 0;
			cp = cp * (hex ? 16 : 10) + (unsigned long)d;
			if (cp > 0x10FFFF)
				cp = 0x110000;
		}
		*rc = put_codepoint(out, cp);
		return (size_t)(semi - p) + 1;
	}
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		size_t n = strlen(named[i].name);

		if ((size_t)(semi - p) + 1 == n + 1 && strncasecmp(p + 1, named[i].name, n) == 0) {
			*rc = put_codepoint(out, named[i].cp);
			return n + 1;
		}
	}
	return 0;
}

/* Skips a tag starting at p[i] == '<': returns the index after it, and
 * after the element's content too if it is one nobody reads. */
static size_t
html_skip_tag(const char *p, size_t len, size_t i)
{
	const char *gt = memchr(p + i, '>', len - i);
	size_t end = gt != NULL ? (size_t)(gt - p) + 1 : len;

	if (len - i > 4 && strncmp(p + i, "<!--", 4) == 0) {
		for (size_t k = i + 4; k + 3 <= len; k++)
			if (strncmp(p + k, "-->", 3) == 0)
				return k + 3;
		return len;
	}
	if (skipped_element(p + i + 1, end - i - 1)) {
		/* to the matching end tag, "</style" etc. */
		for (size_t k = end; k + 2 < len; k++)
			if (p[k] == '<' && p[k + 1] == '/' &&
			    skipped_element(p + k + 2, len - k - 2)) {
				const char *g = memchr(p + k, '>', len - k);

				return g != NULL ? (size_t)(g - p) + 1 : len;
			}
		return len;
	}
	return end;
}

/* The text of an HTML document: tags out (each one a blank, as block
 * elements separate words), entities decoded. */
static int
html_to_text(const char *p, size_t len, struct buf *out)
{
	int rc = 1;

	for (size_t i = 0; i < len && rc > 0;) {
		size_t n;

		if (p[i] == '<') {
			i = html_skip_tag(p, len, i);
			rc = buf_append(out, " ", 1);
		} else if (p[i] == '&' && (n = html_entity(p + i, len - i, out, &rc)) > 0) {
			i += n;
		} else {
			rc = buf_append(out, p + i, 1);
			i++;
		}
	}
	return rc;
}

/* ---- the preview ---- */

static size_t
utf8_len(unsigned char c)
{
	return c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* Appends text with white space and control characters made single
 * spaces, trimmed, cut after MIME_PREVIEW_CHARS characters. */
static int
collapse(const char *p, size_t len, struct buf *out)
{
	size_t chars = 0, start = out->len;
	bool space = false;
	int rc = 1;

	for (size_t i = 0; i < len && chars < MIME_PREVIEW_CHARS && rc > 0;) {
		unsigned char c = (unsigned char)p[i];
		size_t n = utf8_len(c);

		if (c < 0x20 || c == 0x7F || c == ' ') {
			space = true;
			i++;
			continue;
		}
		if (i + n > len)
			break;
		if (space && out->len > start) {
			/* never end on the space */
			if (chars + 1 == MIME_PREVIEW_CHARS)
				break;
			rc = buf_append(out, " ", 1);
			chars++;
		}
		space = false;
		if (rc > 0)
			rc = buf_append(out, p + i, n);
		chars++;
		i += n;
	}
	return rc;
}

int
mime_preview(const struct mime_msg *m, struct buf *out)
{
	char charset[MIME_CHARSET_NAME_MAX + 1];
	enum preview_kind kind = PREVIEW_PLAIN;
	struct buf text, plain;
	int part, rc;

	part = find_part(m, PREVIEW_PLAIN, charset, sizeof(charset));
	if (part < 0) {
		kind = PREVIEW_HTML;
		part = find_part(m, PREVIEW_HTML, charset, sizeof(charset));
	}
	if (part < 0)
		return 1;
	buf_init(&text, 8 * MIME_PREVIEW_SCAN_MAX);
	buf_init(&plain, 8 * MIME_PREVIEW_SCAN_MAX);
	rc = part_text(m, part, charset, &text);
	if (rc > 0 && kind == PREVIEW_HTML) {
		rc = html_to_text(text.data != NULL ? text.data : "", text.len, &plain);
		if (rc > 0)
			rc = collapse(plain.data != NULL ? plain.data : "", plain.len, out);
	} else if (rc > 0) {
		rc = collapse(text.data != NULL ? text.data : "", text.len, out);
	}
	buf_free(&text);
	buf_free(&plain);
	return rc < 0 ? -1 : 1;
}
