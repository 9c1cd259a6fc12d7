#include "mime/mime_charset.h"

#include <errno.h>
#include <iconv.h>
#include <string.h>
#include <strings.h>

#include "mime/mime_decode.h"

static const char replacement[] = "\xef\xbf\xbd";

/* Charsets that are UTF-8 or a subset of it need no conversion. */
static bool
is_utf8_subset(const char *cs)
{
	return strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "utf8") == 0 ||
	       strcasecmp(cs, "us-ascii") == 0 || strcasecmp(cs, "ascii") == 0;
}

/* Converts with cd; a byte iconv refuses is replaced and skipped. */
static int
iconv_all(iconv_t cd, const char *p, size_t len, struct buf *out)
{
	char tmp[1024];
	char *in = (char *)p;
	size_t inleft = len;

	while (inleft > 0) {
		char *o = tmp;
		size_t oleft = sizeof(tmp);
		size_t r = iconv(cd, &in, &inleft, &o, &oleft);

		if (buf_append(out, tmp, sizeof(tmp) - oleft) < 0)
			return -1;
		if (r == (size_t)-1 && errno != E2BIG) {
			if (buf_append(out, replacement, 3) < 0)
				return -1;
			in++;
			inleft--;
			iconv(cd, NULL, NULL, NULL, NULL);
		}
	}
	return 1;
}

/* Appends UTF-8 input, replacing ill-formed sequences. */
static int
utf8_copy(const char *p, size_t len, struct buf *out)
{
	iconv_t cd = iconv_open("UTF-8", "UTF-8");
	int rc;

	if (cd == (iconv_t)-1)
		return buf_append(out, p, len) < 0 ? -1 : 1;
	rc = iconv_all(cd, p, len, out);
	iconv_close(cd);
	return rc;
}

int
mime_charset_to_utf8(const char *charset, const char *p, size_t len, struct buf *out)
{
	char cs[MIME_CHARSET_NAME_MAX + 1];
	size_t n = strcspn(charset, "*");
	iconv_t cd;
	int rc;

	if (n == 0 || n > MIME_CHARSET_NAME_MAX)
		return -1;
	memcpy(cs, charset, n);
	cs[n] = '\0';
	if (is_utf8_subset(cs))
		return utf8_copy(p, len, out);
	cd = iconv_open("UTF-8", cs);
	if (cd == (iconv_t)-1)
		return -1;
	rc = iconv_all(cd, p, len, out);
	iconv_close(cd);
	return rc;
}

/* One encoded word "=?cs?e?text?=" at p: its length, or 0 if there is
 * none. Fills the charset, encoding and text ranges. */
static size_t
word_scan(const char *p, size_t len, const char **cs, size_t *cslen, char *enc,
	  const char **text, size_t *textlen)
{
	const char *q, *end;

	if (len < 8 || p[0] != '=' || p[1] != '?')
		return 0;
	q = memchr(p + 2, '?', (len < MIME_2047_WORD_MAX ? len : MIME_2047_WORD_MAX) - 2);
	if (q == NULL || q == p + 2 || (size_t)(q - p) + 3 > len || q[2] != '?')
		return 0;
	*cs = p + 2;
	*cslen = (size_t)(q - *cs);
	*enc = q[1];
	if (*enc != 'B' && *enc != 'b' && *enc != 'Q' && *enc != 'q')
		return 0;
	*text = q + 3;
	if (len > MIME_2047_WORD_MAX)
		len = MIME_2047_WORD_MAX;
	for (end = *text; end + 1 < p + len; end++) {
		if (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			return 0;
		if (end[0] == '?' && end[1] == '=') {
			*textlen = (size_t)(end - *text);
			return (size_t)(end + 2 - p);
		}
	}
	return 0;
}

/* Decodes one encoded word's text and converts it. Returns 1, 0 if the
 * word cannot be decoded, -1 if out is full. */
static int
word_decode(const char *cs, size_t cslen, char enc, const char *text, size_t textlen,
	    struct buf *out)
{
	char charset[MIME_CHARSET_NAME_MAX + 1];
	struct buf raw;
	size_t start = out->len;
	int rc;

	if (cslen > MIME_CHARSET_NAME_MAX)
		return 0;
	memcpy(charset, cs, cslen);
	charset[cslen] = '\0';
	buf_init(&raw, textlen + 1);
	if (enc == 'B' || enc == 'b')
		rc = mime_base64_decode(text, textlen, &raw);
	else
		rc = mime_qp_decode(text, textlen, true, &raw);
	if (rc >= 0)
		rc = mime_charset_to_utf8(charset, raw.data, raw.len, out);
	buf_free(&raw);
	if (rc < 0) {
		buf_truncate(out, start);
		return 0;
	}
	return 1;
}

int
mime_2047_decode(const char *p, size_t len, struct buf *out)
{
	size_t i = 0;
	bool after_word = false;

	while (i < len) {
		const char *cs, *text;
		size_t cslen, textlen, wl;
		char enc;

		if (p[i] == '\r' || p[i] == '\n') {
			i++;
			continue;
		}
		wl = word_scan(p + i, len - i, &cs, &cslen, &enc, &text, &textlen);
		if (wl > 0 && word_decode(cs, cslen, enc, text, textlen, out) != 0) {
			i += wl;
			after_word = true;
			continue;
		}
		if (after_word && (p[i] == ' ' || p[i] == '\t')) {
			size_t j = i;

			while (j < len && (p[j] == ' ' || p[j] == '\t' || p[j] == '\r' || p[j] == '\n'))
				j++;
			if (j < len && word_scan(p + j, len - j, &cs, &cslen, &enc, &text, &textlen)) {
				i = j;
				continue;
			}
		}
		after_word = false;
		if (buf_append(out, p + i, 1) < 0)
			return -1;
		i++;
	}
	return 1;
}
