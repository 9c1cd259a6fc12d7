/* fuzz-smtp-hdrscan-sub - the header section filter in submission mode:
 * whole input and one byte at a time give the same output and the same
 * From: and Sender: values; each call keeps within its output bound; the output
 * grows by at most the added fields; and its header section holds no
 * Bcc: field. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_hdrscan.h"
#include "fuzz_hdrscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DATE "Date: Mon, 30 Nov 2026 14:00:00 +0000\r\n"
#define MSGID "Message-ID: <FUZZ@example.test>\r\n"
#define FROM "From: <a@example.test>\r\n"

static const struct fuzz_bounds sub_bounds = {
	SMTP_HDRSCAN_SLACK, sizeof(DATE MSGID FROM) - 1
};

/* One run in submission mode (reporting From: and Sender: values,
 * adding fields). */
static void
sub_scan(const uint8_t *in, size_t len, size_t step, struct fuzz_result *r)
{
	struct smtp_hdrscan h;

	fuzz_result_init(r, len, sub_bounds.growth);
	smtp_hdrscan_init(&h, NULL, NULL);
	smtp_hdrscan_submission(&h, fuzz_value, DATE, MSGID, FROM);
	smtp_hdrscan_sender(&h, fuzz_value);
	h.ctx = r;
	fuzz_scan(&h, in, len, 0, step, &sub_bounds, r);
}

static bool
sub_bad(const unsigned char *p, size_t n)
{
	return fuzz_field(p, n, "bcc") > 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_result whole, bytes;

	sub_scan(data, size, size > 0 ? size : 1, &whole);
	sub_scan(data, size, 1, &bytes);
	fuzz_check_headers(&whole, sub_bad);
	if (!fuzz_same(&whole, &bytes))
		abort();
	free(whole.out);
	free(bytes.out);
	return 0;
}
