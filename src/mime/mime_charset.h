/* mime_charset.h - text in a named charset to UTF-8 (iconv(3)), and
 * RFC 2047 encoded words in unstructured header text.
 */
#ifndef YJ_MIME_CHARSET_H
#define YJ_MIME_CHARSET_H

#include <stddef.h>

#include "base/buf.h"

/* Longest encoded word looked for (RFC 2047 allows 75 bytes; longer ones
 * are seen in the wild, but not this long): keeps decoding linear. */
#define MIME_2047_WORD_MAX 1024

/* Longest charset name accepted (RFC 2978 names are shorter). */
#define MIME_CHARSET_NAME_MAX 64

/* Appends p[0..len) converted from charset to UTF-8 (an RFC 2231 language
 * suffix "*lang" is ignored). Bytes that cannot be converted become
 * U+FFFD. Returns 1, or -1 if the charset is unknown (nothing appended)
 * or out is full. */
int mime_charset_to_utf8(const char *charset, const char *p, size_t len, struct buf *out);

/* Appends header text with its encoded words ("=?charset?B|Q?text?=",
 * RFC 2047) decoded to UTF-8; blanks between two adjacent encoded words
 * are dropped (RFC 2047 6.2). Malformed or unknown-charset words stay as
 * they are. Line ends are removed (unfolding). Returns 1, or -1 if out
 * is full. */
int mime_2047_decode(const char *p, size_t len, struct buf *out);

#endif
