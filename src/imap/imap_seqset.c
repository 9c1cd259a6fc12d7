#include "imap/imap_seqset.h"

#include <string.h>

/* One seq-number: nz-number or "*". */
static int
seq_number(const char *s, size_t len, uint64_t *n_r)
{
	if (len == 1 && s[0] == '*') {
		*n_r = IMAP_SEQ_STAR;
		return 1;
	}
	if (imap_str_number(s, len, UINT32_MAX, n_r) < 0 || *n_r == 0)
		return -1;
	return 1;
}

static int
seq_range(const char *s, size_t len, struct imap_seq_range *r)
{
	const char *colon = memchr(s, ':', len);
	uint64_t a, b;

	if (colon == NULL) {
		if (seq_number(s, len, &a) < 0)
			return -1;
		r->lo = r->hi = a;
		return 1;
	}
	if (seq_number(s, (size_t)(colon - s), &a) < 0 ||
	    seq_number(colon + 1, len - (size_t)(colon - s) - 1, &b) < 0)
		return -1;
	r->lo = a < b ? a : b;
	r->hi = a < b ? b : a;
	return 1;
}

int
imap_seqset_parse(const char *s, size_t len, struct imap_arena *a, struct imap_seqset *set,
		  const char **error_r)
{
	size_t count = 1, i = 0;

	memset(set, 0, sizeof(*set));
	if (len == 1 && s[0] == '$') {
		set->saved = true;
		return 1;
	}
	for (size_t k = 0; k < len; k++)
		count += s[k] == ',';
	if (count > IMAP_SEQSET_RANGES_MAX) {
		*error_r = "Sequence set too long";
		return -1;
	}
	set->ranges = imap_arena_alloc(a, count * sizeof(*set->ranges));
	if (set->ranges == NULL) {
		*error_r = "Sequence set too long";
		return -1;
	}
	while (set->count < count) {
		const char *comma = memchr(s + i, ',', len - i);
		size_t n = comma != NULL ? (size_t)(comma - (s + i)) : len - i;
		if (seq_range(s + i, n, &set->ranges[set->count]) < 0) {
			*error_r = "Invalid sequence set";
			return -1;
		}
		set->count++;
		i += n + 1;
	}
	return 1;
}

bool
imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star)
{
	for (size_t i = 0; i < set->count; i++) {
		uint64_t lo = set->ranges[i].lo, hi = set->ranges[i].hi;
		if (hi == IMAP_SEQ_STAR)
			hi = star;
		if (lo == IMAP_SEQ_STAR)
			lo = star;
		if (lo > hi) {
			uint64_t t = lo;
			lo = hi;
			hi = t;
		}
		if (n >= lo && n <= hi)
			return true;
	}
	return false;
}

bool
imap_seqset_within(const struct imap_seqset *set, uint32_t max)
{
	if (set->saved)
		return true;
	for (size_t i = 0; i < set->count; i++)
		if (set->ranges[i].hi != IMAP_SEQ_STAR && set->ranges[i].hi > max)
			return false;
	return true;
}

int
imap_seqset_write(struct buf *out, const uint32_t *numbers, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i;
		while (j + 1 < n && numbers[j] != UINT32_MAX && numbers[j + 1] == numbers[j] + 1)
			j++;
		if (buf_printf(out, "%s%u", i > 0 ? "," : "", numbers[i]) < 0)
			return -1;
		if (j > i && buf_printf(out, ":%u", numbers[j]) < 0)
			return -1;
		i = j + 1;
	}
	return 1;
}
