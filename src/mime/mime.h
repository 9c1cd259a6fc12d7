/* mime.h - the MIME structure of a message (RFC 2045, 2046): for every
 * part, where its header and body are, so that IMAP can serve
 * BODY[section] and BODYSTRUCTURE without parsing again.
 *
 * Pure code over one byte buffer, which the caller keeps alive while the
 * tree is used; nothing is copied. Never fails on content: missing or
 * wrong boundaries, a missing final boundary, a boundary inside a
 * header, bare LF line ends and NUL bytes all give some tree. Nesting
 * deeper than MIME_DEPTH_MAX, or parts beyond MIME_PARTS_MAX, are not
 * split further (the rest is body of the last part that could be).
 *
 * Part 0 is the message itself. Children of a multipart are its body
 * parts; the one child of a message/rfc822 (or message/global) part is
 * the message it contains, whose header starts at the parent's body.
 */
#ifndef YJ_MIME_H
#define YJ_MIME_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

#define MIME_DEPTH_MAX 64
#define MIME_PARTS_MAX 10000
/* Boundaries are compared up to this length (RFC 2046 allows 70). */
#define MIME_BOUNDARY_MAX 80

enum mime_kind {
	MIME_LEAF,
	MIME_MULTIPART,
	MIME_MESSAGE,		/* message/rfc822 or message/global */
};

struct mime_part {
	size_t hdr_off;		/* header section, its empty line included */
	size_t hdr_len;
	size_t body_off;
	size_t body_len;	/* the line end before a boundary excluded */
	size_t body_lines;	/* line ends in the body, plus a last unended line */
	enum mime_kind kind;
	bool text;		/* text/... (IMAP reports its line count) */
	unsigned depth;
	int parent;		/* -1 for the message */
	int first_child;	/* -1 if none */
	int next;		/* next sibling, -1 if none */
	unsigned nchildren;
};

struct mime_hdr_index;		/* mime_header.h */

struct mime_msg {
	const char *data;
	size_t len;
	struct mime_part *parts;
	size_t nparts;
	size_t cap;
	struct mime_hdr_index *fields;	/* per part, made at first use */
};

/* Parses data[0..len). Returns 1 (a tree is always made). */
int mime_parse(struct mime_msg *m, const char *data, size_t len);
void mime_free(struct mime_msg *m);

/* The fields of part's header that IMAP and threading read
 * (mime_header.h), found in one pass at the first call for that part
 * and kept with m until mime_free: ENVELOPE, BODY, BODYSTRUCTURE and the
 * thread ids of one parse share it. */
const struct mime_hdr_index *mime_part_fields(const struct mime_msg *m, int part);

/* The n-th (from 1) child of part, or -1. */
int mime_child(const struct mime_msg *m, int part, unsigned n);

#endif
