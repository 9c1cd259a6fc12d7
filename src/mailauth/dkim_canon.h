/* dkim_canon.h - simple and relaxed canonicalization (RFC 6376 3.4).
 *
 * The body is hashed as it arrives: dkim_body_update takes any chunking
 * of the body bytes (lines end in CRLF; a lone CR or LF is an ordinary
 * byte) and keeps only a few bytes of state, so a server can feed DATA
 * as it reads it. Trailing empty lines are held back as a count until
 * more text shows whether they are at the end.
 */
#ifndef YJ_DKIM_CANON_H
#define YJ_DKIM_CANON_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "base/buf.h"

enum dkim_canon { DKIM_CANON_SIMPLE, DKIM_CANON_RELAXED };

struct dkim_body {
	EVP_MD_CTX *md;
	enum dkim_canon canon;
	bool limited;			/* l= given */
	unsigned long long limit;	/* bytes of canonical body to hash */
	unsigned long long hashed;	/* bytes hashed so far */
	unsigned long long total;	/* canonical length, past the limit too */
	unsigned long long empty_lines;	/* CRLFs held back */
	bool cr;			/* the last byte was a CR */
	bool wsp;			/* relaxed: WSP held back */
	bool any;			/* some text was seen */
	unsigned char out[1024];	/* batches small writes to the hash */
	size_t out_len;
};

/* Starts a SHA-256 body hash (SHA-1 if sha1: legacy verification only);
 * limited with limit for l=. Returns 1 or -1. */
int dkim_body_init(struct dkim_body *b, enum dkim_canon canon, bool limited,
		   unsigned long long limit, bool sha1);
void dkim_body_update(struct dkim_body *b, const char *data, size_t len);
/* Ends the body and writes the hash (32 bytes, 20 for SHA-1). Returns
 * its length. */
size_t dkim_body_final(struct dkim_body *b, unsigned char hash[32]);
void dkim_body_free(struct dkim_body *b);

/* Appends one header field (name ":" value, folded, with or without its
 * final CRLF) in canonical form with a final CRLF unless crlf is false.
 * Returns 1, or -1 if out is full. */
int dkim_canon_header(struct buf *out, enum dkim_canon canon, const char *field,
		      size_t len, bool crlf);

/* Parses "simple", "relaxed", "simple/relaxed" ... (c=). Returns 1 or -1. */
int dkim_canon_parse(const char *s, size_t len, enum dkim_canon *hdr,
		     enum dkim_canon *body);

#endif
