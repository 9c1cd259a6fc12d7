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
#include "fuzz_hdrscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ID "mx.example.test"

static const struct fuzz_bounds mx_bounds = { SMTP_HDRSCAN_HOLD, 0 };

/* One run in MX mode (reporting Delivered-To: values). */
static void
mx_scan(const uint8_t *in, size_t len, size_t first, size_t step, struct fuzz_result *r)
{
	struct smtp_hdrscan h;

	fuzz_result_init(r, len, mx_bounds.growth);
	smtp_hdrscan_init(&h, fuzz_value, r);
	smtp_hdrscan_authserv(&h, FUZZ_ID);
	fuzz_scan(&h, in, len, first, step, &mx_bounds, r);
}

/* A Return-Path: field, or an Authentication-Results: field whose value
 * starts (after blanks) with our authserv-id and a ';'. */
static bool
mx_bad(const unsigned char *p, size_t n)
{
	size_t i = fuzz_field(p, n, "authentication-results"), idlen = strlen(FUZZ_ID);

	if (fuzz_field(p, n, "return-path") > 0)
		return true;
	if (i == 0)
		return false;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return n - i > idlen && strncasecmp((const char *)p + i, FUZZ_ID, idlen) == 0 &&
	       p[i + idlen] == ';';
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
	mx_scan(in, len, 0, len > 0 ? len : 1, &whole);
	mx_scan(in, len, cut, len > 0 ? len : 1, &split);
	mx_scan(in, len, 0, 1, &bytes);
	fuzz_check_headers(&whole, mx_bad);
	if (!fuzz_same(&whole, &split) || !fuzz_same(&whole, &bytes))
		abort();
	free(whole.out);
	free(split.out);
	free(bytes.out);
	return 0;
}
