/* mime_decode.h - content transfer decodings (RFC 2045 6.7, 6.8) for IMAP
 * BINARY (RFC 3516) and for encoded words. Lenient, as readers must be:
 * characters outside the alphabet are skipped, a broken escape is kept.
 */
#ifndef YJ_MIME_DECODE_H
#define YJ_MIME_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

enum mime_cte {
	MIME_CTE_IDENTITY,	/* 7bit, 8bit, binary, none */
	MIME_CTE_BASE64,
	MIME_CTE_QP,
	MIME_CTE_UNKNOWN,	/* x-uuencode and the like: BINARY cannot decode */
};

/* The encoding a Content-Transfer-Encoding value names; an empty or
 * malformed value means the default, 7bit (identity). */
enum mime_cte mime_cte_parse(const char *p, size_t len);

/* Appends the decoded bytes to out. Returns 1, or -1 if out is full. */
int mime_base64_decode(const char *p, size_t len, struct buf *out);
/* q_word: the RFC 2047 "Q" form, where '_' is a space. */
int mime_qp_decode(const char *p, size_t len, bool q_word, struct buf *out);

/* Decodes a part's body as its encoding says. Returns 1, 0 if the
 * encoding is unknown (IMAP's UNKNOWN-CTE), -1 if out is full. */
int mime_body_decode(enum mime_cte cte, const char *p, size_t len, struct buf *out);

#endif
