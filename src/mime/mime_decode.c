#include "mime/mime_decode.h"

#include <string.h>
#include <strings.h>

#include "base/base64.h"
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

/* Alphabet characters decoded at a time: whole quanta, so that no bits
 * are left over between one run and the next. */
#define MIME_B64_RUN 1024

/* Decodes digits[0..n) and appends the bytes. Returns 1 or -1 (full). */
static int
mime_base64_run(const char *digits, size_t n, struct buf *out)
{
	unsigned char bytes[MIME_B64_RUN / 4 * 3];
	long m = base64_decode(digits, n, BASE64_LENIENT, bytes, sizeof(bytes));

	return m < 0 || buf_append(out, bytes, (size_t)m) < 0 ? -1 : 1;
}

int
mime_base64_decode(const char *p, size_t len, struct buf *out)
{
	char digits[MIME_B64_RUN];
	size_t n = 0;

	/* The first '=' ends the data; anything else outside the alphabet
	 * (line ends, junk) is skipped, as BASE64_LENIENT does. */
	for (size_t i = 0; i < len && p[i] != '='; i++) {
		if (!base64_in_alphabet(p[i]))
			continue;
		digits[n++] = p[i];
		if (n == sizeof(digits)) {
			if (mime_base64_run(digits, n, out) < 0)
				return -1;
			n = 0;
		}
	}
	return mime_base64_run(digits, n, out);
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
