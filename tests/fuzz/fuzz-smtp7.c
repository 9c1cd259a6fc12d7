/* fuzz-smtp7 - the 8-bit to 7-bit converter over any message, fed in
 * pieces whose size the first byte picks (its low bit: 8-bit bytes
 * kept, only long lines converted): it must never crash, and a message
 * it accepts must come out with CRLF line ends only, no line longer
 * than SMTP7_LINE_LIMIT, and 7-bit bytes unless they are kept, whatever
 * the pieces. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "queue/smtp_7bit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_collect(void *arg, const char *p, size_t n)
{
	if (buf_append(arg, p, n) < 0)
		abort();
}

static void
fuzz_feed(struct smtp7 *d, const char *p, size_t n, size_t step)
{
	for (size_t off = 0; off < n; off += step)
		smtp7_feed(d, p + off, n - off < step ? n - off : step);
}

static void
fuzz_check_lines(const struct buf *out)
{
	size_t col = 0;

	for (size_t i = 0; i < out->len; i++) {
		if (out->data[i] == '\n')
			col = 0;
		else if (out->data[i] != '\r' && ++col > SMTP7_LINE_LIMIT)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp7 *d;
	struct buf out;
	char why[SMTP7_REASON_MAX];
	size_t step;

	if (size < 1)
		return 0;
	step = (size_t)data[0] + 1;
	d = smtp7_new((data[0] & 1) != 0);
	fuzz_feed(d, (const char *)data + 1, size - 1, step);
	if (smtp7_end(d, why, sizeof(why)) < 0) {
		smtp7_free(d);
		return 0;
	}
	buf_init(&out, 64 * 1024 * 1024);
	smtp7_start_output(d, fuzz_collect, &out);
	fuzz_feed(d, (const char *)data + 1, size - 1, 4096 / step + 1);
	if (smtp7_end(d, why, sizeof(why)) < 0)
		abort();
	for (size_t i = 0; i < out.len; i++) {
		unsigned char ch = (unsigned char)out.data[i];

		if ((ch > 127 && (data[0] & 1) == 0) || (ch == '\n' && (i == 0 || out.data[i - 1] != '\r')) ||
		    (ch == '\r' && (i + 1 == out.len || out.data[i + 1] != '\n')))
			abort();
	}
	fuzz_check_lines(&out);
	buf_free(&out);
	smtp7_free(d);
	return 0;
}
