/* dkim_tag.h - the tag=value lists of DKIM and ARC (RFC 6376 3.2).
 *
 * Strict: tag names are ALPHA *(ALPHA / DIGIT / "_"), values are runs of
 * VALCHAR (and, as RFC 8616 allows, bytes >= 0x80) separated by folding
 * whitespace, a tag appears at most once, and "a;;b", a tag without '='
 * or a list that is only whitespace are errors. One ';' (and whitespace)
 * may end the list. Nothing is copied: tags point into the parsed text.
 */
#ifndef YJ_DKIM_TAG_H
#define YJ_DKIM_TAG_H

#include <stdbool.h>
#include <stddef.h>

#define DKIM_TAGS_MAX 64

struct dkim_tag {
	const char *name;
	size_t name_len;
	const char *value;	/* without surrounding whitespace */
	size_t value_len;
	size_t raw_start;	/* offset just after '=' */
	size_t raw_end;		/* offset of the ';' that ends it, or the end */
};

struct dkim_tags {
	struct dkim_tag tag[DKIM_TAGS_MAX];
	size_t n;
};

/* Parses len bytes of text. Returns 1, or -1 with the reason in *why. */
int dkim_tags_parse(const char *text, size_t len, struct dkim_tags *tags,
		    const char **why);

/* The tag named name (case-sensitive, as RFC 6376 says), or NULL. */
const struct dkim_tag *dkim_tags_get(const struct dkim_tags *tags, const char *name);

/* Copies value without any whitespace into out (NUL-terminated).
 * Returns the length, or -1 if it does not fit in outlen. */
long dkim_tag_nows(const struct dkim_tag *t, char *out, size_t outlen);

/* Decodes base64 (base64.h's BASE64_FOLDED: whitespace ignored,
 * padding checked, unused bits zero). Returns the
 * length, or -1 if malformed or larger than outlen. */
long dkim_base64_decode(const char *in, size_t len, unsigned char *out, size_t outlen);
/* Encodes len bytes; out must hold 4 * ((len + 2) / 3) + 1. */
void dkim_base64_encode(const unsigned char *in, size_t len, char *out);

/* Decodes dkim-quoted-printable (RFC 6376 2.11), whitespace dropped.
 * Returns the length, or -1 if malformed or too long. */
long dkim_qp_decode(const char *in, size_t len, char *out, size_t outlen);

/* An unsigned decimal of at most 18 digits (RFC 6376: 12 are enough for
 * t= and x=, l= may be longer). Returns 1, or -1. */
int dkim_parse_uint(const char *s, size_t len, unsigned long long *v);

/* true if the value equals word exactly. */
bool dkim_tag_is(const struct dkim_tag *t, const char *word);

#endif
