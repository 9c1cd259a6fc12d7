/* mime_preview.h - a message's preview text (RFC 8970 PREVIEW): the
 * start of its first text/plain part (or, without one, of its first
 * text/html part with the markup taken out), decoded to UTF-8, with
 * runs of white space made one space, at most MIME_PREVIEW_CHARS
 * characters. Parts that are attachments or inside an attached message
 * are not looked at. Pure code over a parsed message.
 */
#ifndef YJ_MIME_PREVIEW_H
#define YJ_MIME_PREVIEW_H

#include "base/buf.h"
#include "mime/mime.h"

/* RFC 8970 3.1: at most 256 characters; 200 as most servers give. */
#define MIME_PREVIEW_CHARS 200
/* Bytes of a part's body looked at: plenty for 200 characters of text,
 * even of HTML with a large <style> block first. */
#define MIME_PREVIEW_SCAN_MAX (64u * 1024)

/* Appends the preview (possibly empty) to out. Returns 1, or -1 if out
 * is full. The text is valid UTF-8 without control characters. */
int mime_preview(const struct mime_msg *m, struct buf *out);

#endif
