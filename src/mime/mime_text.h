/* mime_text.h - the text of a message that IMAP SEARCH compares with,
 * folded (mime_fold.h): header fields decoded (RFC 2047) and the text
 * parts decoded from their transfer encoding and charset.
 *
 * SEARCH's scan of a message and the full-text index filled at delivery
 * both build their text here, so the index holds exactly what the scan
 * would look at.
 */
#ifndef YJ_MIME_TEXT_H
#define YJ_MIME_TEXT_H

#include <stddef.h>

#include "base/buf.h"
#include "mime/mime.h"
#include "mime/mime_header.h"

/* The most one field's line may take (a longer one is cut). */
#define MIME_TEXT_LINE_MAX (4 * MIME_FIELD_VALUE_MAX + 1024)

/* Appends the field's value unfolded, decoded to UTF-8 and folded. */
void mime_text_field(const char *data, const struct mime_field *f, struct buf *out);

/* Appends "NAME: value" (name and value folded; a long value is cut
 * where out is full). -1 if not even "NAME: " fits. */
int mime_text_field_line(const char *data, const struct mime_field *f, struct buf *out);

/* Appends the line of every field of the message's header
 * (mime_text_field_line, in a buffer of MIME_TEXT_LINE_MAX), each
 * followed by "\n". 1, or -1 if out is full (what fit is kept). */
int mime_text_header(const struct mime_msg *mm, struct buf *out);

/* Appends the text parts (text/..., or no Content-Type) decoded, in
 * UTF-8 and folded, each followed by "\n", as much as out->max allows:
 * text beyond it is not searched. */
void mime_text_body(const struct mime_msg *mm, struct buf *out);

/* Makes b valid UTF-8 without NUL in place: each byte that starts no
 * valid sequence, and each NUL, becomes '?'. Valid sequences stay, so a
 * valid needle found in the text before is found after. */
void mime_text_clean(struct buf *b);

#endif
