/* dkim_int.h - the parts of DKIM that ARC reuses (not for other modules). */
#ifndef YJ_DKIM_INT_H
#define YJ_DKIM_INT_H

#include "mailauth/dkim.h"
#include "mailauth/dkim_hdr.h"

/* A key found and usable for sig: its public key. Otherwise NULL with
 * *status (temperror, permerror, fail) and *reason set. */
EVP_PKEY *dkim_get_key(const struct ma_resolver *r, const struct dkim_sig *sig,
		       bool legacy, enum dkim_status *status, const char **reason,
		       unsigned *bits_r, bool *testing_r);

/* Checks a signature whose key is known: the body hash against bh, then
 * the header hash. Returns 1 valid, 0 not (with *reason). */
int dkim_check_sig(const struct dkim_sig *sig, const struct dkim_field *field,
		   const struct dkim_headers *h, const unsigned char *bh, size_t bh_len,
		   EVP_PKEY *pkey, const char **reason);

/* The default h= list for a message's fields (the set dkim_signer
 * uses); over-signed if oversign. Returns 1, or -1 if it does not fit. */
int dkim_default_h(const struct dkim_headers *h, bool oversign, char *out, size_t outlen);

/* Appends the canonical signature field with its b= value emptied and
 * no final CRLF (RFC 6376 3.7). */
int dkim_append_blanked(struct buf *out, enum dkim_canon canon, const struct dkim_field *f,
			const struct dkim_sig *sig);

/* Appends "tag=value;" pieces to a field being built, folding before a
 * piece that would pass 78 columns; *col tracks the column. A value may
 * be broken at its break characters (":" for h=, anywhere for b=). */
int dkim_fold_append(struct buf *out, size_t *col, const char *piece, bool breakable,
		     const char *breaks);

/* Signs the headers named by names (plus the field prefix being built,
 * which ends in "b=") and appends the folded base64 signature, ";"-free,
 * and CRLF. */
int dkim_sign_field(struct buf *out, size_t *col, EVP_PKEY *pkey, const struct buf *hashed,
		    struct yj_err *err);

#endif
