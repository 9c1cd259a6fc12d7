/* imap_seqset.h - sequence sets (RFC 9051 sequence-set, RFC 5182 "$"):
 * reading them from a command and writing them compactly in replies
 * (COPYUID, APPENDUID, VANISHED, ESEARCH). Pure code.
 */
#ifndef YJ_IMAP_SEQSET_H
#define YJ_IMAP_SEQSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "imap/imap_args.h"

/* "*": the largest number in use, known only to the server. It lies
 * above every nz-number, so 4294967295 (a valid UID) stays a number. */
#define IMAP_SEQ_STAR ((uint64_t)UINT32_MAX + 1)
/* Ranges in one set; a longer set is refused ("Sequence set too long"). */
#define IMAP_SEQSET_RANGES_MAX 50000

struct imap_seq_range {
	uint64_t lo, hi;	/* lo <= hi; hi may be IMAP_SEQ_STAR */
};

struct imap_seqset {
	bool saved;		/* "$": the result SEARCH saved (SEARCHRES) */
	size_t count;
	struct imap_seq_range *ranges;	/* as given, each put in order */
};

/* Reads s[0..len): "1", "2:4", "4:2" (the same), "*", "7:*", "1,3:5", or
 * "$" alone. Zero is refused. Returns 1 or -1 with *error_r for BAD. */
int imap_seqset_parse(const char *s, size_t len, struct imap_arena *a, struct imap_seqset *set,
		      const char **error_r) YJ_MUST_CHECK;

/* Is n in the set, with "*" meaning star (the largest number in use)?
 * A range "*:7" when star is 4 means 4:7, as RFC 9051 says. */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star);

/* Are all numbers given in the set at most max? A range to "*" always
 * is ("1:*" in an empty mailbox names nothing, clearly), and so is "$". */
bool imap_seqset_within(const struct imap_seqset *set, uint32_t max);

/* Appends numbers[0..n) in their order, consecutive runs as ranges
 * ("3:5,9,7"): the order matters for COPYUID. Returns 1 or -1 (full). */
int imap_seqset_write(struct buf *out, const uint32_t *numbers, size_t n) YJ_MUST_CHECK;

#endif
