/* mime_fold.h - case-insensitive matching and ordering of UTF-8 text
 * (IMAP SEARCH, SORT and THREAD).
 *
 * A character folds to towupper(towlower(c)) of the C.UTF-8 locale, a
 * simple (one character to one) case folding covering Latin, Greek,
 * Cyrillic and the rest of Unicode that glibc maps; ASCII folds to upper
 * case, so ASCII text orders as the i;ascii-casemap comparator (RFC 4790)
 * says. There is no decomposition (i;unicode-casemap would also fold
 * "e" + U+0301 and U+00E9 together). Bytes that are not UTF-8 stay as
 * they are. Without the C.UTF-8 locale only ASCII is folded.
 */
#ifndef YJ_MIME_FOLD_H
#define YJ_MIME_FOLD_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

/* Appends p[0..len) folded. Returns 1, or -1 if out is full (what fit
 * is kept). */
int mime_fold_utf8(const char *p, size_t len, struct buf *out);

/* Does h[0..hlen) contain n[0..nlen) (both already folded)? An empty
 * needle is in every text. */
bool mime_fold_contains(const char *h, size_t hlen, const char *n, size_t nlen);

#endif
