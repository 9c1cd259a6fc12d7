#include "mime/mime_imap.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Where the walk along a part number path stands: a message (whose
 * header and body are those of part idx), or a body part. */
struct walk {
	int idx;
	bool is_part;
};

/* The message a step starts from, or -1 if the part has no subparts. */
static int
walk_message(const struct mime_msg *m, const struct walk *w)
{
	const struct mime_part *p = &m->parts[w->idx];

	if (!w->is_part)
		return w->idx;
	if (p->kind == MIME_MESSAGE)
		return p->first_child;
	return -1;
}

/* One step "n" of the path. Returns false if there is no such part. */
static bool
walk_step(const struct mime_msg *m, struct walk *w, unsigned long n)
{
	int msg, c;

	if (w->is_part && m->parts[w->idx].kind == MIME_MULTIPART) {
		c = n > MIME_PARTS_MAX ? -1 : mime_child(m, w->idx, (unsigned)n);
		if (c < 0)
			return false;
		w->idx = c;
		return true;
	}
	msg = walk_message(m, w);
	if (msg < 0)
		return false;
	if (m->parts[msg].kind == MIME_MULTIPART) {
		c = n > MIME_PARTS_MAX ? -1 : mime_child(m, msg, (unsigned)n);
		if (c < 0)
			return false;
		w->idx = c;
	} else {
		if (n != 1)
			return false;
		w->idx = msg;
	}
	w->is_part = true;
	return true;
}

/* The text after the part numbers: which range it names. */
static int
section_text(const char *s, bool after_number, enum mime_section_kind *kind)
{
	if (*s == '\0')
		*kind = MIME_SECTION_ALL;
	else if (strcasecmp(s, "HEADER") == 0 || strcasecmp(s, "HEADER.FIELDS") == 0 ||
		 strcasecmp(s, "HEADER.FIELDS.NOT") == 0)
		*kind = MIME_SECTION_HEADER;
	else if (strcasecmp(s, "TEXT") == 0)
		*kind = MIME_SECTION_TEXT;
	else if (after_number && strcasecmp(s, "MIME") == 0)
		*kind = MIME_SECTION_MIME;
	else
		return -1;
	return 1;
}

/* Reads the part numbers of spec into the walk; *rest gets the text
 * after them. Returns 1, 0 (no such part) or -1 (malformed). */
static int
section_walk(const struct mime_msg *m, const char *spec, struct walk *w, const char **rest)
{
	const char *s = spec;
	int found = 1;

	while (*s >= '1' && *s <= '9') {
		char *end;
		unsigned long n = strtoul(s, &end, 10);

		if (found && !walk_step(m, w, n))
			found = 0;
		s = end;
		if (*s == '.')
			s++;
		else if (*s != '\0')
			return -1;
	}
	if (s > spec && s[-1] == '.' && *s == '\0')
		return -1;
	*rest = s;
	return found;
}

int
mime_section_find(const struct mime_msg *m, const char *spec, size_t *off_r, size_t *len_r,
		  int *part_r, enum mime_section_kind *kind_r)
{
	struct walk w = { 0, false };
	const char *rest;
	const struct mime_part *p;
	int rc = section_walk(m, spec, &w, &rest);

	if (rc < 0 || section_text(rest, w.is_part, kind_r) < 0)
		return -1;
	if (rc == 0)
		return 0;
	if (*kind_r == MIME_SECTION_HEADER || *kind_r == MIME_SECTION_TEXT) {
		int msg = walk_message(m, &w);

		if (msg < 0)
			return 0;
		w.idx = msg;
	}
	p = &m->parts[w.idx];
	*part_r = w.idx;
	switch (*kind_r) {
	case MIME_SECTION_ALL:
		*off_r = w.is_part ? p->body_off : 0;
		*len_r = w.is_part ? p->body_len : m->len;
		break;
	case MIME_SECTION_HEADER:
	case MIME_SECTION_MIME:
		*off_r = p->hdr_off;
		*len_r = p->hdr_len;
		break;
	case MIME_SECTION_TEXT:
		*off_r = p->body_off;
		*len_r = p->body_len;
		break;
	}
	return 1;
}
