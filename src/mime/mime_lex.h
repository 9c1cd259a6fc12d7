/* mime_lex.h - the lexical pieces of structured header fields: blanks and
 * comments (CFWS), quoted strings, RFC 2045 tokens and RFC 5322 atoms.
 * Works over a byte range; never reads past it. Lenient: an unterminated
 * quoted string or comment ends at the end of the value.
 */
#ifndef YJ_MIME_LEX_H
#define YJ_MIME_LEX_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

/* Comments nest at most this deep; deeper parentheses are plain text. */
#define MIME_COMMENT_DEPTH_MAX 32

/* Appends what fits of p[0..n) to b: values longer than the buffer's
 * maximum are cut, not refused (a header is still readable). */
void mime_buf_add(struct buf *b, const void *p, size_t n);

struct mime_lex {
	const char *p;
	size_t pos;
	size_t len;
	/* If set, the text of every comment skipped goes here (the last one
	 * wins), for "addr (Name)" forms. */
	struct buf *comments;
};

void mime_lex_init(struct mime_lex *lx, const char *p, size_t len);
bool mime_lex_eof(const struct mime_lex *lx);
/* The next byte, or -1 at the end. */
int mime_lex_peek(const struct mime_lex *lx);

/* Skips blanks, line ends and comments. If comment is not NULL, the text
 * of the last comment skipped replaces its content. */
void mime_lex_cfws(struct mime_lex *lx, struct buf *comment);

/* Reads a quoted string at the current position (which must be '"'),
 * appending its content without the quoting to out. */
void mime_lex_quoted(struct mime_lex *lx, struct buf *out);

/* Reads an RFC 2045 token (any bytes but SP, CTLs and tspecials).
 * Returns its length (0 if there is none). */
size_t mime_lex_token(struct mime_lex *lx, struct buf *out);

/* Reads an RFC 5322 atom, or with dot set a dot-atom-ish run (atext and
 * '.'). 8-bit bytes count as atext (RFC 6532). Returns its length. */
size_t mime_lex_atom(struct mime_lex *lx, bool dot, struct buf *out);

#endif
