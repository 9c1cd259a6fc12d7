/* fuzz_hdrscan.h - the driver both header filter targets share
 * (fuzz-smtp-hdrscan for MX, fuzz-smtp-hdrscan-sub for submission): feed
 * the input in pieces, collect the output and a hash of the values
 * reported, check every call's output bound, compare runs and walk the
 * header section written. Each target sets the filter up its own way. */
#ifndef YJ_FUZZ_HDRSCAN_H
#define YJ_FUZZ_HDRSCAN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_hdrscan.h"

/* What one run of the filter gave. */
struct fuzz_result {
	unsigned char *out;	/* room for the input and what may be added */
	size_t outlen;
	unsigned n_values;	/* values reported */
	uint64_t values_hash;	/* FNV-1a over every value and its end */
};

/* The bounds of a run: most bytes one call may write beyond its input,
 * most bytes the whole output may grow by. */
struct fuzz_bounds {
	size_t slack;
	size_t growth;
};

/* The value callback: counts and hashes what the filter reports. */
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
fuzz_feed(struct smtp_hdrscan *h, const uint8_t *in, size_t n, size_t slack,
	  struct fuzz_result *r)
{
	unsigned char *out = malloc(n + SMTP_HDRSCAN_SLACK);
	size_t outlen;

	if (out == NULL)
		abort();
	outlen = smtp_hdrscan_feed(h, in, n, out);
	if (outlen > n + slack)
		abort();
	memcpy(r->out + r->outlen, out, outlen);
	r->outlen += outlen;
	free(out);
}

/* Runs the filter h (set up by the caller, its values reported to r) over
 * in[0..len): first bytes at once if first > 0, then step at a time. */
static void
fuzz_scan(struct smtp_hdrscan *h, const uint8_t *in, size_t len, size_t first, size_t step,
	  const struct fuzz_bounds *b, struct fuzz_result *r)
{
	unsigned char tail[SMTP_HDRSCAN_SLACK];
	size_t pos = 0, n;

	if (first > 0) {
		fuzz_feed(h, in, first, b->slack, r);
		pos = first;
	}
	while (pos < len) {
		n = len - pos < step ? len - pos : step;
		fuzz_feed(h, in + pos, n, b->slack, r);
		pos += n;
	}
	n = smtp_hdrscan_finish(h, tail);
	if (n > b->slack)
		abort();
	memcpy(r->out + r->outlen, tail, n);
	r->outlen += n;
	if (r->outlen > len + b->growth)
		abort();
}

/* An empty result with room for len input bytes and growth more. */
static void
fuzz_result_init(struct fuzz_result *r, size_t len, size_t growth)
{
	r->out = malloc(len + growth + 1);
	if (r->out == NULL)
		abort();
	r->outlen = 0;
	r->n_values = 0;
	r->values_hash = 14695981039346656037u;
}

static bool
fuzz_same(const struct fuzz_result *a, const struct fuzz_result *b)
{
	return a->outlen == b->outlen && memcmp(a->out, b->out, a->outlen) == 0 &&
	       a->n_values == b->n_values && a->values_hash == b->values_hash;
}

/* Is the line at p (n bytes to the end) a field named name? Returns the
 * index after its ':', or 0. */
static size_t
fuzz_field(const unsigned char *p, size_t n, const char *name)
{
	size_t i = strlen(name);

	if (n <= i || strncasecmp((const char *)p, name, i) != 0)
		return 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < n && p[i] == ':' ? i + 1 : 0;
}

/* Walks the header section of the output, up to its first empty line,
 * and aborts at a line that bad() rejects. */
static void
fuzz_check_headers(const struct fuzz_result *r, bool (*bad)(const unsigned char *p, size_t n))
{
	size_t i = 0;

	while (i < r->outlen) {
		const unsigned char *p = r->out + i;
		size_t n = r->outlen - i;
		const unsigned char *lf = memchr(p, '\n', n);

		if (p[0] == '\n' || (n >= 2 && p[0] == '\r' && p[1] == '\n'))
			return;
		if (bad(p, n))
			abort();
		if (lf == NULL)
			return;
		i += (size_t)(lf - p) + 1;
	}
}

#endif
