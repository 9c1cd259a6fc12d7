/* fuzz-mime - the MIME parser on arbitrary bytes: the tree must stay
 * inside the message (every part's header and body within its parent's
 * body, sizes and line counts consistent), ENVELOPE and BODYSTRUCTURE
 * must come out balanced, section lookups must give ranges inside the
 * message, decoders must keep within their output bounds, and the
 * preview must be at most 200 characters of UTF-8 without controls,
 * and SEARCH's text must keep within its bound and, cleaned, be UTF-8
 * without NUL. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"
#include "mime/mime_addr.h"
#include "mime/mime_charset.h"
#include "mime/mime_header.h"
#include "mime/mime_imap.h"
#include "mime/mime_preview.h"
#include "mime/mime_text.h"
#include "base/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_part(const struct mime_msg *m, int i)
{
	const struct mime_part *p = &m->parts[i];
	size_t lines = 0;

	if (p->hdr_off + p->hdr_len != p->body_off || p->body_off + p->body_len > m->len)
		abort();
	for (size_t k = 0; k < p->body_len; k++)
		lines += m->data[p->body_off + k] == '\n';
	if (lines != p->body_lines)
		abort();
	if (p->parent >= 0) {
		const struct mime_part *par = &m->parts[p->parent];

		if (p->hdr_off < par->body_off || p->body_off + p->body_len > par->body_off + par->body_len)
			abort();
		if (p->depth != par->depth + 1 || p->depth >= MIME_DEPTH_MAX)
			abort();
	}
}

/* The part's field index finds what a scan for each name finds: the
 * same first field, and the same last one. */
static void
check_fields(const struct mime_msg *m, int i)
{
	static const char *const names[MIME_HDR_KNOWN] = {
		"Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "In-Reply-To",
		"Message-ID", "References", "Content-Type", "Content-Transfer-Encoding",
		"Content-ID", "Content-Description", "Content-Disposition", "Content-Language",
		"Content-Location", "Content-MD5",
	};
	const struct mime_part *p = &m->parts[i];
	const struct mime_hdr_index *ix = mime_part_fields(m, i);

	for (int k = 0; k < MIME_HDR_KNOWN; k++) {
		struct mime_hdr_iter it;
		struct mime_field f, got, last = { 0 };
		bool found = false;

		mime_hdr_iter_init(&it, m->data, p->hdr_off, p->hdr_off + p->hdr_len);
		while (mime_hdr_next(&it, &f))
			if (mime_field_is(m->data, &f, names[k])) {
				if (!found && (!mime_hdr_index_get(ix, k, false, &got) ||
					       memcmp(&got, &f, sizeof(f)) != 0))
					abort();
				found = true;
				last = f;
			}
		if (found != mime_hdr_index_get(ix, k, true, &got) ||
		    (found && memcmp(&got, &last, sizeof(last)) != 0))
			abort();
	}
}

/* Parentheses outside strings and literals balance. */
static void
check_balanced(const struct buf *b)
{
	long depth = 0;
	size_t i = 0;

	while (i < b->len) {
		char c = b->data[i++];

		if (c == '"') {
			while (i < b->len && b->data[i] != '"')
				i += b->data[i] == '\\' ? 2 : 1;
			i++;
		} else if (c == '{') {
			char *end;
			unsigned long n = strtoul(b->data + i, &end, 10);

			i = (size_t)(end - b->data) + 3 + n;
		} else if (c == '(') {
			depth++;
		} else if (c == ')' && --depth < 0) {
			abort();
		}
	}
	if (depth != 0)
		abort();
}

static void
fuzz_imap(const struct mime_msg *m, unsigned flags)
{
	struct buf out;

	buf_init(&out, 64u << 20);
	if (mime_imap_envelope(m, 0, &out, flags) < 0)
		abort();
	check_balanced(&out);
	buf_reset(&out);
	if (mime_imap_bodystructure(m, 0, true, &out, flags) < 0)
		abort();
	check_balanced(&out);
	buf_reset(&out);
	if (mime_imap_bodystructure(m, 0, false, &out, flags) < 0)
		abort();
	check_balanced(&out);
	buf_free(&out);
}

static void
fuzz_sections(const struct mime_msg *m)
{
	static const char *const specs[] = {
		"", "HEADER", "TEXT", "1", "1.MIME", "2", "1.1", "1.2.3", "2.HEADER", "2.TEXT",
		"1.1.1.1", "3.MIME", "1.HEADER.FIELDS", "4294967297", "0", "1..2", "MIME",
	};

	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		enum mime_section_kind kind;
		size_t off, len;
		int part;

		if (mime_section_find(m, specs[i], &off, &len, &part, &kind) == 1 &&
		    (off + len > m->len || part < 0 || (size_t)part >= m->nparts))
			abort();
	}
}

static void
fuzz_decoders(const struct mime_msg *m)
{
	for (size_t i = 0; i < m->nparts; i++) {
		const struct mime_part *p = &m->parts[i];
		struct mime_hdr_iter it;
		struct mime_field f;
		struct buf out;
		size_t size;
		int rc;

		buf_init(&out, p->body_len + 1);
		rc = mime_binary_decode(m, (int)i, &out);
		if (rc < 0 || out.len > p->body_len || mime_binary_size(m, (int)i, &size) != rc ||
		    (rc == 1 && size != out.len))
			abort();
		buf_free(&out);
		mime_hdr_iter_init(&it, m->data, p->hdr_off, p->hdr_off + p->hdr_len);
		while (mime_hdr_next(&it, &f)) {
			struct mime_addr_list list = { NULL, 0 };

			if (f.end > p->hdr_off + p->hdr_len)
				abort();
			buf_init(&out, 3 * f.value_len + 16);
			(void)mime_2047_decode(m->data + f.value_off, f.value_len, &out);
			buf_free(&out);
			mime_addr_parse(m->data + f.value_off, f.value_len, &list);
			mime_addr_list_free(&list);
		}
	}
}

static void
fuzz_preview(const struct mime_msg *m)
{
	struct buf out;
	size_t chars = 0;

	buf_init(&out, 4 * MIME_PREVIEW_CHARS);
	if (mime_preview(m, &out) != 1)
		abort();
	for (size_t i = 0; i < out.len; i++) {
		unsigned char c = (unsigned char)out.data[i];

		if (c < 0x20 || c == 0x7F)
			abort();
		chars += (c & 0xC0) != 0x80;
	}
	if (chars > MIME_PREVIEW_CHARS)
		abort();
	buf_free(&out);
}

/* The header and body text as the search index gets them. */
static void
fuzz_text(const struct mime_msg *m)
{
	struct buf t;

	buf_init(&t, 1u << 16);
	(void)mime_text_header(m, &t);
	mime_text_body(m, &t);
	if (t.len > t.max)
		abort();
	mime_text_clean(&t);
	for (size_t i = 0; i < t.len;) {
		unsigned cp;
		size_t n = util_utf8_decode((const unsigned char *)t.data + i, t.len - i, &cp);

		if (n == 0 || cp == 0)
			abort();
		i += n;
	}
	buf_free(&t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_msg m;

	mime_parse(&m, (const char *)data, size);
	if (m.nparts == 0 || m.nparts > MIME_PARTS_MAX)
		abort();
	for (size_t i = 0; i < m.nparts; i++) {
		check_part(&m, (int)i);
		check_fields(&m, (int)i);
	}
	fuzz_imap(&m, 0);
	fuzz_imap(&m, MIME_IMAP_UTF8);
	fuzz_sections(&m);
	fuzz_decoders(&m);
	fuzz_preview(&m);
	fuzz_text(&m);
	mime_free(&m);
	return 0;
}
