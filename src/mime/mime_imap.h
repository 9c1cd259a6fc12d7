/* mime_imap.h - IMAP's view of a parsed message: ENVELOPE, BODY and
 * BODYSTRUCTURE (RFC 3501 7.4.2, RFC 9051 7.5.2), byte ranges for
 * BODY[section], and BINARY[section] decoding (RFC 3516).
 *
 * Strings follow IMAP's rules: NIL for what is absent, a quoted string
 * for 7-bit text without CR, LF or NUL of at most MIME_IMAP_QUOTED_MAX
 * bytes, else a literal; with MIME_IMAP_UTF8 (UTF8=ACCEPT enabled),
 * well-formed UTF-8 may be quoted. These string writers are the only
 * ones: the IMAP server's responses (imap/imap_write.h) use them too.
 * Header values are given as sent (unfolded, encoded words kept), as
 * the RFCs ask. Where the message leaves a field out, the defaults of
 * RFC 2045 apply (text/plain; charset=us-ascii, 7bit).
 */
#ifndef YJ_MIME_IMAP_H
#define YJ_MIME_IMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "mime/mime.h"

#define MIME_IMAP_UTF8 0x1

/* Quoted strings longer than this are sent as literals. */
#define MIME_IMAP_QUOTED_MAX 1024

/* Appends an IMAP string for p[0..len): quoted when that is safe, else a
 * literal. Returns 1, or -1 if out is full (out is then as it was). */
int mime_imap_string(struct buf *out, const char *p, size_t len, unsigned flags) YJ_MUST_CHECK;
/* The same, NIL if p is NULL. */
int mime_imap_nstring(struct buf *out, const char *p, size_t len, unsigned flags) YJ_MUST_CHECK;
/* A literal: "{n}" CRLF and the bytes. Returns 1 or -1, as above. A
 * literal cannot carry NUL (RFC 3501 and RFC 9051: CHAR8 is %x01-ff):
 * each one is sent as MIME_IMAP_NUL_MASK, which keeps every length and
 * offset (RFC822.SIZE, <partial>) true, as the reference server does. */
int mime_imap_literal(struct buf *out, const char *p, size_t len) YJ_MUST_CHECK;
#define MIME_IMAP_NUL_MASK 0x80
/* Replaces each NUL of p[0..len) with MIME_IMAP_NUL_MASK. */
void mime_imap_nul_mask(char *p, size_t len);
/* BINARY's literal (RFC 3516): the bytes as they are, as a literal8
 * ("~{n}") if they hold a NUL, else as a plain literal. */
int mime_imap_literal8(struct buf *out, const char *p, size_t len) YJ_MUST_CHECK;

/* Appends the ENVELOPE of the message whose header is part's (part 0,
 * or the child of a message/rfc822 part). Returns 1 or -1 (out full). */
int mime_imap_envelope(const struct mime_msg *m, int part, struct buf *out, unsigned flags);

/* Appends BODYSTRUCTURE (extended) or BODY (not) of part. */
int mime_imap_bodystructure(const struct mime_msg *m, int part, bool extended,
			    struct buf *out, unsigned flags);

enum mime_section_kind {
	MIME_SECTION_ALL,	/* "" or "1.2": the whole part */
	MIME_SECTION_HEADER,	/* "HEADER", "1.2.HEADER", HEADER.FIELDS(.NOT) */
	MIME_SECTION_TEXT,	/* "TEXT", "1.2.TEXT" */
	MIME_SECTION_MIME,	/* "1.2.MIME" */
};

/* Looks up a section spec ("", "1.2.3", "HEADER", "2.TEXT", "1.MIME",
 * "HEADER.FIELDS" without its field list). Sets the byte range
 * data[*off_r .. *off_r + *len_r) and the part it is in. Returns 1, 0 if
 * there is no such part (IMAP then returns an empty string or NO), -1
 * if the spec is malformed. */
int mime_section_find(const struct mime_msg *m, const char *spec, size_t *off_r,
		      size_t *len_r, int *part_r, enum mime_section_kind *kind_r);

/* Appends part's body decoded as its Content-Transfer-Encoding says
 * (BINARY[section]). Returns 1, 0 if the encoding is unknown (the
 * UNKNOWN-CTE response code), -1 if out is full. The length appended is
 * BINARY.SIZE. */
int mime_binary_decode(const struct mime_msg *m, int part, struct buf *out);

/* BINARY.SIZE of part: the length mime_binary_decode would give (never
 * more than the encoded body). Returns 1, or 0 if the encoding is unknown. */
int mime_binary_size(const struct mime_msg *m, int part, size_t *size_r);

#endif
