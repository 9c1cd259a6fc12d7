#include "mime/mime_lex.h"

#include <string.h>

void
mime_buf_add(struct buf *b, const void *p, size_t n)
{
	size_t room = b->max > b->len ? b->max - b->len : 0;

	if (buf_append(b, p, n < room ? n : room) < 0)
		return;
}

void
mime_lex_init(struct mime_lex *lx, const char *p, size_t len)
{
	lx->p = p;
	lx->pos = 0;
	lx->len = len;
	lx->comments = NULL;
}

bool
mime_lex_eof(const struct mime_lex *lx)
{
	return lx->pos >= lx->len;
}

int
mime_lex_peek(const struct mime_lex *lx)
{
	return lx->pos < lx->len ? (unsigned char)lx->p[lx->pos] : -1;
}

/* Skips one comment starting at '(' and stores its text in out. */
static void
lex_comment(struct mime_lex *lx, struct buf *out)
{
	unsigned depth = 0;

	if (out != NULL)
		buf_reset(out);
	while (lx->pos < lx->len) {
		char c = lx->p[lx->pos++];

		if (c == '\\' && lx->pos < lx->len) {
			c = lx->p[lx->pos++];
		} else if (c == '(' && depth < MIME_COMMENT_DEPTH_MAX) {
			if (depth++ == 0)
				continue;
		} else if (c == ')' && depth > 0) {
			if (--depth == 0)
				return;
		} else if (c == '\r' || c == '\n') {
			continue;
		}
		if (out != NULL)
			mime_buf_add(out, &c, 1);
	}
}

void
mime_lex_cfws(struct mime_lex *lx, struct buf *comment)
{
	while (lx->pos < lx->len) {
		char c = lx->p[lx->pos];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			lx->pos++;
		else if (c == '(')
			lex_comment(lx, comment != NULL ? comment : lx->comments);
		else
			return;
	}
}

void
mime_lex_quoted(struct mime_lex *lx, struct buf *out)
{
	lx->pos++;
	while (lx->pos < lx->len) {
		char c = lx->p[lx->pos++];

		if (c == '"')
			return;
		if (c == '\\' && lx->pos < lx->len)
			c = lx->p[lx->pos++];
		else if (c == '\r' || c == '\n')
			continue;
		if (out != NULL)
			mime_buf_add(out, &c, 1);
	}
}

static bool
is_tspecial(unsigned char c)
{
	return c <= ' ' || c == 0x7f || strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static bool
is_atext(unsigned char c, bool dot)
{
	if (c == '.')
		return dot;
	return c > ' ' && c != 0x7f && strchr("()<>[]:;@\\,\".", c) == NULL;
}

size_t
mime_lex_token(struct mime_lex *lx, struct buf *out)
{
	size_t start = lx->pos;

	while (lx->pos < lx->len && !is_tspecial((unsigned char)lx->p[lx->pos]))
		lx->pos++;
	if (out != NULL)
		mime_buf_add(out, lx->p + start, lx->pos - start);
	return lx->pos - start;
}

size_t
mime_lex_atom(struct mime_lex *lx, bool dot, struct buf *out)
{
	size_t start = lx->pos;

	while (lx->pos < lx->len && is_atext((unsigned char)lx->p[lx->pos], dot))
		lx->pos++;
	if (out != NULL)
		mime_buf_add(out, lx->p + start, lx->pos - start);
	return lx->pos - start;
}
