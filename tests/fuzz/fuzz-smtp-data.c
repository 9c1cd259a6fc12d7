/* fuzz-smtp-data - the DATA decoder must give the same result whether
 * the input comes whole, split at one point, or one byte at a time; and
 * it may only stop after CR LF "." CR LF. The first two input bytes pick
 * the split point. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_result {
	unsigned char *out;	/* room for every byte the input can give */
	size_t outlen;
	size_t consumed;
	bool done;
};

/* Feeds one chunk through an output buffer of exactly the promised size. */
static void
fuzz_feed(struct smtp_data_decoder *d, const uint8_t *in, size_t n, struct fuzz_result *r)
{
	unsigned char *out = malloc(2 * n + 2);
	size_t outlen = 0, used;

	if (out == NULL)
		abort();
	used = smtp_data_decode(d, in, n, out, &outlen);
	if (used > n || outlen > 2 * n + 2 || (d->done && used == 0 && n > 0 && !r->done))
		abort();
	if (r->done && (used != 0 || outlen != 0))
		abort();
	memcpy(r->out + r->outlen, out, outlen);
	r->outlen += outlen;
	r->consumed += used;
	r->done = d->done;
	free(out);
}

/* Decodes in as chunks of at most step bytes, with a first chunk of
 * first bytes. */
static void
fuzz_decode(const uint8_t *in, size_t len, size_t first, size_t step, struct fuzz_result *r)
{
	struct smtp_data_decoder d;
	size_t pos = 0;

	r->outlen = 0;
	r->consumed = 0;
	r->done = false;
	smtp_data_init(&d);
	if (first > 0) {
		fuzz_feed(&d, in, first, r);
		pos = first;
	}
	while (pos < len) {
		size_t n = len - pos < step ? len - pos : step;

		fuzz_feed(&d, in + pos, n, r);
		pos += n;
	}
}

/* The end may only be CR LF "." CR LF, or "." CR LF as the first line. */
static void
fuzz_check_end(const uint8_t *in, size_t len, const struct fuzz_result *r)
{
	size_t c = r->consumed;

	if (!r->done) {
		if (c != len)
			abort();
		return;
	}
	if (c < 3 || memcmp(in + c - 3, ".\r\n", 3) != 0)
		abort();
	if (c != 3 && (c < 5 || memcmp(in + c - 5, "\r\n", 2) != 0))
		abort();
}

/* Stored text is canonical: every LF comes after a CR. */
static void
fuzz_check_canonical(const struct fuzz_result *r)
{
	for (size_t i = 0; i < r->outlen; i++) {
		if (r->out[i] == '\n' && (i == 0 || r->out[i - 1] != '\r'))
			abort();
	}
}

static bool
fuzz_same(const struct fuzz_result *a, const struct fuzz_result *b)
{
	return a->done == b->done && a->consumed == b->consumed && a->outlen == b->outlen &&
	       memcmp(a->out, b->out, a->outlen) == 0;
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
	whole.out = malloc(2 * len + 2);
	split.out = malloc(2 * len + 2);
	bytes.out = malloc(2 * len + 2);
	if (whole.out == NULL || split.out == NULL || bytes.out == NULL)
		abort();
	fuzz_decode(in, len, 0, len > 0 ? len : 1, &whole);
	fuzz_decode(in, len, cut, len > 0 ? len : 1, &split);
	fuzz_decode(in, len, 0, 1, &bytes);
	fuzz_check_end(in, len, &whole);
	fuzz_check_canonical(&whole);
	if (!fuzz_same(&whole, &split) || !fuzz_same(&whole, &bytes))
		abort();
	free(whole.out);
	free(split.out);
	free(bytes.out);
	return 0;
}
