#include "mime/mime_decode.h"

#include <string.h>
#include <strings.h>

#include "mime/mime_lex.h"

enum mime_cte
mime_cte_parse(const char *p, size_t len)
{
	struct mime_lex lx;
	struct buf tok;
	enum mime_cte cte = MIME_CTE_UNKNOWN;

	mime_lex_init(&lx, p, len);
	mime_lex_cfws(&lx, NULL);
	buf_init(&tok, 64);
	(void)mime_lex_token(&lx, &tok);
	mime_lex_cfws(&lx, NULL);
	/* No token, or more than one ("8 bit"): the RFC 2045 default, 7bit,
	 * as BODYSTRUCTURE reports it. */
	if (tok.len == 0 || !mime_lex_eof(&lx) || strcasecmp(tok.data, "7bit") == 0 ||
	    strcasecmp(tok.data, "8bit") == 0 || strcasecmp(tok.data, "binary") == 0)
		cte = MIME_CTE_IDENTITY;
	else if (strcasecmp(tok.data, "base64") == 0)
		cte = MIME_CTE_BASE64;
	else if (strcasecmp(tok.data, "quoted-printable") == 0)
		cte = MIME_CTE_QP;
	buf_free(&tok);
	return cte;
}

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
mime_base64_decode(const char *p, size_t len, struct buf *out)
{
	unsigned acc = 0, bits = 0;

	for (size_t i = 0; i < len; i++) {
		int v = b64val((unsigned char)p[i]);

		if (p[i] == '=')
			break;
		if (v < 0)
			continue;
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			char c = (char)(acc >> (bits - 8));

			bits -= 8;
			if (buf_append(out, &c, 1) < 0)
				return -1;
		}
	}
	return 1;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* At a '=' at p[i]: is the rest of the line blanks (a soft line break)?
 * Returns the index after its line end, or 0. */
static size_t
soft_break(const char *p, size_t len, size_t i)
{
	size_t j = i + 1;

	while (j < len && (p[j] == ' ' || p[j] == '\t'))
		j++;
	if (j < len && p[j] == '\r')
		j++;
	if (j < len && p[j] == '\n')
		return j + 1;
	return j == len ? len : 0;
}

/* Appends the run of bytes at p[i], dropping blanks before a line end
 * (RFC 2045 6.7 (3)). Returns the index after it, or 0 if out is full. */
static size_t
qp_literal(const char *p, size_t len, size_t i, struct buf *out)
{
	size_t j = i;

	if (p[i] != ' ' && p[i] != '\t')
		return buf_append(out, p + i, 1) < 0 ? 0 : i + 1;
	while (j < len && (p[j] == ' ' || p[j] == '\t'))
		j++;
	if (j == len || p[j] == '\r' || p[j] == '\n')
		return j;
	return buf_append(out, p + i, j - i) < 0 ? 0 : j;
}

int
mime_qp_decode(const char *p, size_t len, bool q_word, struct buf *out)
{
	size_t i = 0;

	while (i < len) {
		int hi, lo;
		size_t sb;

		if (p[i] == '=' && i + 2 < len && (hi = hexval(p[i + 1])) >= 0 &&
		    (lo = hexval(p[i + 2])) >= 0) {
			char c = (char)(hi << 4 | lo);

			if (buf_append(out, &c, 1) < 0)
				return -1;
			i += 3;
			continue;
		}
		if (p[i] == '=' && !q_word && (sb = soft_break(p, len, i)) > 0) {
			i = sb;
			continue;
		}
		if (q_word && p[i] == '_') {
			if (buf_append(out, " ", 1) < 0)
				return -1;
			i++;
		} else if ((i = qp_literal(p, len, i, out)) == 0) {
			return -1;
		}
	}
	return 1;
}

int
mime_body_decode(enum mime_cte cte, const char *p, size_t len, struct buf *out)
{
	switch (cte) {
	case MIME_CTE_IDENTITY:
		return buf_append(out, p, len) < 0 ? -1 : 1;
	case MIME_CTE_BASE64:
		return mime_base64_decode(p, len, out);
	case MIME_CTE_QP:
		return mime_qp_decode(p, len, false, out);
	default:
		return 0;
	}
}
