#include "mime/mime_fold.h"

#include <locale.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <wctype.h>

static locale_t fold_locale = (locale_t)0;
static pthread_once_t fold_once = PTHREAD_ONCE_INIT;

static void
fold_locale_init(void)
{
	fold_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* Decodes one well-formed UTF-8 sequence; returns its length or 0. */
static size_t
utf8_decode(const unsigned char *p, size_t len, uint32_t *cp)
{
	size_t n;
	uint32_t c = p[0], min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, c &= 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, c &= 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, c &= 0x07, min = 0x10000;
	else
		return 0;
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

static size_t
utf8_encode(uint32_t c, char *out)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | c >> 12);
		out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | c >> 18);
	out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

static uint32_t
fold_char(uint32_t c)
{
	uint32_t f;

	if (c < 0x80)
		return c >= 'a' && c <= 'z' ? c - 0x20 : c;
	if (fold_locale == (locale_t)0)
		return c;
	f = (uint32_t)towupper_l(towlower_l((wint_t)c, fold_locale), fold_locale);
	return f == 0 || (f >= 0xd800 && f <= 0xdfff) || f > 0x10ffff ? c : f;
}

int
mime_fold_utf8(const char *p, size_t len, struct buf *out)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0;

	pthread_once(&fold_once, fold_locale_init);
	while (i < len) {
		size_t run = i, n;
		uint32_t c;
		char enc[4];

		/* ASCII runs in bulk, folded in place: most mail is ASCII. */
		while (run < len && u[run] < 0x80)
			run++;
		if (run > i) {
			size_t at = out->len;

			if (buf_append(out, p + i, run - i) < 0)
				return -1;
			for (char *q = out->data + at; q < out->data + out->len; q++)
				if (*q >= 'a' && *q <= 'z')
					*q = (char)(*q - 0x20);
			i = run;
			continue;
		}
		if ((n = utf8_decode(u + i, len - i, &c)) == 0) {
			if (buf_append(out, p + i, 1) < 0)
				return -1;
			i++;
			continue;
		}
		if (buf_append(out, enc, utf8_encode(fold_char(c), enc)) < 0)
			return -1;
		i += n;
	}
	return 1;
}

bool
mime_fold_contains(const char *h, size_t hlen, const char *n, size_t nlen)
{
	return nlen == 0 || memmem(h, hlen, n, nlen) != NULL;
}
