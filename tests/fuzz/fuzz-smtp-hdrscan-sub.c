/* fuzz-smtp-hdrscan-sub - the header section filter in submission mode:
 * whole input and one byte at a time give the same output and the same
 * From: values; each call keeps within its output bound; the output
 * grows by at most the added fields; and its header section holds no
 * Bcc: field. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_hdrscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ADDED "Date: Mon, 30 Nov 2026 14:00:00 +0000\r\n" \
	      "Message-ID: <FUZZ@example.test>\r\nFrom: <a@example.test>\r\n"

struct fuzz_result {
	unsigned char *out;
	size_t outlen;
	unsigned n_values;
	uint64_t values_hash;
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
	unsigned char *out = malloc(n + SMTP_HDRSCAN_SLACK);
	size_t outlen;

	if (out == NULL)
		abort();
	outlen = smtp_hdrscan_feed(h, in, n, out);
	if (outlen > n + SMTP_HDRSCAN_SLACK)
		abort();
	memcpy(r->out + r->outlen, out, outlen);
	r->outlen += outlen;
	free(out);
}

static void
fuzz_scan(const uint8_t *in, size_t len, size_t step, struct fuzz_result *r)
{
	struct smtp_hdrscan h;
	unsigned char tail[SMTP_HDRSCAN_SLACK];
	size_t pos = 0, n;

	r->outlen = 0;
	r->n_values = 0;
	r->values_hash = 14695981039346656037u;
	smtp_hdrscan_init(&h, NULL, NULL);
	smtp_hdrscan_submission(&h, fuzz_value, "Date: Mon, 30 Nov 2026 14:00:00 +0000\r\n",
				"Message-ID: <FUZZ@example.test>\r\n", "From: <a@example.test>\r\n");
	h.ctx = r;
	while (pos < len) {
		n = len - pos < step ? len - pos : step;
		fuzz_feed(&h, in + pos, n, r);
		pos += n;
	}
	n = smtp_hdrscan_finish(&h, tail);
	if (n > SMTP_HDRSCAN_SLACK)
		abort();
	memcpy(r->out + r->outlen, tail, n);
	r->outlen += n;
	if (r->outlen > len + sizeof(ADDED) - 1)
		abort();
}

/* No line of the output's header section is a Bcc: field. */
static void
fuzz_check_headers(const struct fuzz_result *r)
{
	size_t i = 0;

	while (i < r->outlen) {
		const unsigned char *p = r->out + i;
		size_t n = r->outlen - i, k = 3;
		const unsigned char *lf = memchr(p, '\n', n);

		if (p[0] == '\n' || (n >= 2 && p[0] == '\r' && p[1] == '\n'))
			return;
		if (n > 3 && strncasecmp((const char *)p, "bcc", 3) == 0) {
			while (k < n && (p[k] == ' ' || p[k] == '\t'))
				k++;
			if (k < n && p[k] == ':')
				abort();
		}
		if (lf == NULL)
			return;
		i += (size_t)(lf - p) + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_result whole, bytes;
	size_t room = size + sizeof(ADDED);

	whole.out = malloc(room);
	bytes.out = malloc(room);
	if (whole.out == NULL || bytes.out == NULL)
		abort();
	fuzz_scan(data, size, size > 0 ? size : 1, &whole);
	fuzz_scan(data, size, 1, &bytes);
	fuzz_check_headers(&whole);
	if (whole.outlen != bytes.outlen || memcmp(whole.out, bytes.out, whole.outlen) != 0 ||
	    whole.n_values != bytes.n_values || whole.values_hash != bytes.values_hash)
		abort();
	free(whole.out);
	free(bytes.out);
	return 0;
}
