/* fuzz-smtp-hdrscan - the header section filter must give the same
 * output and report the same Delivered-To: values whether the input
 * comes whole, split at one point, or one byte at a time; keep within its
 * output bound; never grow the message; and leave no Return-Path: field,
 * nor an Authentication-Results: field plainly claiming our authserv-id,
 * in the header section it writes. The first two input bytes pick the
 * split point. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_hdrscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ID "mx.example.test"


struct fuzz_result {
	unsigned char *out;
	size_t outlen;
	unsigned n_values;
	uint64_t values_hash;	/* FNV-1a over every value and its end */
};

static void
fuzz_value(void *ctx, const char *value)
{
	struct fuzz_result *r = ctx;
	size_t n = strlen(value);

	if (n > SMTP_HDRSCAN_VALUE_MAX)
		abort();
	for (size_t i = 0; i <= n; i++)
		r->values_hash = (r->values_hash ^ (unsigned char)value[i]) * 1099511628211u;
	r->n_values++;
}

static void
fuzz_feed(struct smtp_hdrscan *h, const uint8_t *in, size_t n, struct fuzz_result *r)
{
	unsigned char *out = malloc(n + SMTP_HDRSCAN_HOLD);
	size_t outlen;

	if (out == NULL)
		abort();
	outlen = smtp_hdrscan_feed(h, in, n, out);
	if (outlen > n + SMTP_HDRSCAN_HOLD)
		abort();
	memcpy(r->out + r->outlen, out, outlen);
	r->outlen += outlen;
	free(out);
}

static void
fuzz_scan(const uint8_t *in, size_t len, size_t first, size_t step, struct fuzz_result *r)
{
	struct smtp_hdrscan h;
	unsigned char tail[SMTP_HDRSCAN_HOLD];
	size_t pos = 0, n;

	r->outlen = 0;
	r->n_values = 0;
	r->values_hash = 14695981039346656037u;
	smtp_hdrscan_init(&h, fuzz_value, r);
	smtp_hdrscan_authserv(&h, FUZZ_ID);
	if (first > 0) {
		fuzz_feed(&h, in, first, r);
		pos = first;
	}
	while (pos < len) {
		n = len - pos < step ? len - pos : step;
		fuzz_feed(&h, in + pos, n, r);
		pos += n;
	}
	n = smtp_hdrscan_finish(&h, tail);
	if (n > SMTP_HDRSCAN_HOLD)
		abort();
	memcpy(r->out + r->outlen, tail, n);
	r->outlen += n;
	if (r->outlen > len)
		abort();
}

/* Is the line at p (n bytes to the end) a Return-Path: field? */
static bool
fuzz_return_path(const unsigned char *p, size_t n)
{
	size_t i = 11;

	if (n < 12 || strncasecmp((const char *)p, "return-path", 11) != 0)
		return false;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < n && p[i] == ':';
}

/* Is the line at p an Authentication-Results: field whose value starts
 * (after blanks) with our authserv-id and a ';'? */
static bool
fuzz_our_authres(const unsigned char *p, size_t n)
{
	size_t i = 22, idlen = strlen(FUZZ_ID);

	if (n < 23 || strncasecmp((const char *)p, "authentication-results", 22) != 0)
		return false;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (i >= n || p[i++] != ':')
		return false;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return n - i > idlen && strncasecmp((const char *)p + i, FUZZ_ID, idlen) == 0 &&
	       p[i + idlen] == ';';
}

/* Walks the header section of the output, up to its first empty line. */
static void
fuzz_check_headers(const struct fuzz_result *r)
{
	size_t i = 0;

	while (i < r->outlen) {
		const unsigned char *p = r->out + i;
		size_t n = r->outlen - i;
		const unsigned char *lf = memchr(p, '\n', n);

		if (p[0] == '\n' || (n >= 2 && p[0] == '\r' && p[1] == '\n'))
			return;
		if (fuzz_return_path(p, n) || fuzz_our_authres(p, n))
			abort();
		if (lf == NULL)
			return;
		i += (size_t)(lf - p) + 1;
	}
}

static bool
fuzz_same(const struct fuzz_result *a, const struct fuzz_result *b)
{
	return a->outlen == b->outlen && memcmp(a->out, b->out, a->outlen) == 0 &&
	       a->n_values == b->n_values && a->values_hash == b->values_hash;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_result whole, split, bytes;
	const uint8_t *in = data + 2;
	size_t len, cut;

	if (size < 2)
		return 0;
	len = size - 2;
	cut = ((size_t)data[0] | (size_t)data[1] << 8) % (len + 1);
	whole.out = malloc(len + SMTP_HDRSCAN_HOLD);
	split.out = malloc(len + SMTP_HDRSCAN_HOLD);
	bytes.out = malloc(len + SMTP_HDRSCAN_HOLD);
	if (whole.out == NULL || split.out == NULL || bytes.out == NULL)
		abort();
	fuzz_scan(in, len, 0, len > 0 ? len : 1, &whole);
	fuzz_scan(in, len, cut, len > 0 ? len : 1, &split);
	fuzz_scan(in, len, 0, 1, &bytes);
	fuzz_check_headers(&whole);
	if (!fuzz_same(&whole, &split) || !fuzz_same(&whole, &bytes))
		abort();
	free(whole.out);
	free(split.out);
	free(bytes.out);
	return 0;
}
