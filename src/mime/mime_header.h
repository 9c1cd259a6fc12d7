/* mime_header.h - the header section of a message or MIME part.
 *
 * A header section is a run of lines up to the first empty line (RFC 5322
 * 2.1). Real mail bends the rules, so lines may end in CR LF or a bare LF,
 * bytes may be 8-bit or NUL, a line may have no colon (it is skipped, as
 * is a continuation line before any field), and blanks may stand before
 * the colon (RFC 5322 4.5.3). Offsets are into the caller's buffer, which
 * is never changed or copied.
 */
#ifndef YJ_MIME_HEADER_H
#define YJ_MIME_HEADER_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

/* An unfolded field value longer than this is cut (mime_field_unfold). */
#define MIME_FIELD_VALUE_MAX (64 * 1024)

/* One field, offsets into the message. The value starts after the colon
 * (leading blanks skipped) and ends before the field's last line end;
 * continuation lines are inside it. */
struct mime_field {
	size_t off;		/* first byte of the name */
	size_t name_len;	/* trailing blanks before the colon excluded */
	size_t value_off;
	size_t value_len;
	size_t end;		/* just after the field's last line end */
};

struct mime_hdr_iter {
	const char *data;
	size_t pos;
	size_t end;		/* where the header section ends */
};

/* Where the header of data ends (just after its empty line), looking
 * from from on; 0 if it does not end in data[0..len). */
size_t mime_header_end(const char *data, size_t len, size_t from);

/* The length of the header section at the start of data as mime_parse
 * takes a message's: up to and including its first empty line (which
 * may be the first line), else all of data. */
size_t mime_header_len(const char *data, size_t len);

/* Length of the line starting at pos, its line end included (or up to
 * end if there is none). */
size_t mime_line_len(const char *data, size_t pos, size_t end);

/* Is the line at pos empty (CR LF, LF, or CR at the end of the data)? */
bool mime_line_is_empty(const char *data, size_t pos, size_t end);

/* Iterates over the fields of the header section data[start..end), where
 * end is the header section's end (its empty line excluded or not). */
void mime_hdr_iter_init(struct mime_hdr_iter *it, const char *data, size_t start, size_t end);
/* Returns true and fills *f with the next field, false at the end. */
bool mime_hdr_next(struct mime_hdr_iter *it, struct mime_field *f);

/* Does the field's name equal name (ASCII case-insensitive)? */
bool mime_field_is(const char *data, const struct mime_field *f, const char *name);

/* Finds the first field called name in data[start..end). */
bool mime_hdr_find(const char *data, size_t start, size_t end, const char *name,
		   struct mime_field *f);

/* The fields that IMAP's ENVELOPE and BODYSTRUCTURE and the thread ids
 * read, found in one pass over a header section (mime_hdr_index_make)
 * instead of a scan for each of them. */
enum mime_hdr_known {
	MIME_HDR_DATE,
	MIME_HDR_SUBJECT,
	MIME_HDR_FROM,
	MIME_HDR_SENDER,
	MIME_HDR_REPLY_TO,
	MIME_HDR_TO,
	MIME_HDR_CC,
	MIME_HDR_BCC,
	MIME_HDR_IN_REPLY_TO,
	MIME_HDR_MESSAGE_ID,
	MIME_HDR_REFERENCES,
	MIME_HDR_CONTENT_TYPE,
	MIME_HDR_CONTENT_TRANSFER_ENCODING,
	MIME_HDR_CONTENT_ID,
	MIME_HDR_CONTENT_DESCRIPTION,
	MIME_HDR_CONTENT_DISPOSITION,
	MIME_HDR_CONTENT_LANGUAGE,
	MIME_HDR_CONTENT_LOCATION,
	MIME_HDR_CONTENT_MD5,
	MIME_HDR_KNOWN
};

/* Where each known field of one header section is: the first and the
 * last field of that name (offsets of their names), and how many there
 * are, counted up to 2 (2: more than one). */
struct mime_hdr_index {
	const char *data;
	size_t end;
	size_t first[MIME_HDR_KNOWN];
	size_t last[MIME_HDR_KNOWN];
	unsigned char count[MIME_HDR_KNOWN];
};

/* Indexes the header section data[start..end), as mime_hdr_iter_init
 * takes it. */
void mime_hdr_index_make(struct mime_hdr_index *ix, const char *data, size_t start, size_t end);

/* The first (or, with last, the last) field of that name into *f, as
 * mime_hdr_find (or a scan to the end) would give it; false if there is
 * none. */
bool mime_hdr_index_get(const struct mime_hdr_index *ix, enum mime_hdr_known name, bool last,
			struct mime_field *f);

/* Appends the field's value to out unfolded: line ends (CR LF, LF, bare
 * CR) removed, a tab starting a continuation line made a space,
 * everything else kept; trailing blanks removed. Stops at
 * MIME_FIELD_VALUE_MAX bytes or when out is full. */
void mime_field_unfold(const char *data, const struct mime_field *f, struct buf *out);

#endif
