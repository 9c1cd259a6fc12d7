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

/* The header signing step DKIM-Signature and ARC-Message-Signature
 * share. dkim_sign_hdr_data() appends the data such a signature covers,
 * relaxed: the fields names lists, then the signature field itself as
 * built so far (ending "b=", RFC 6376 3.7) without a final CRLF.
 * dkim_sign_b64() signs data with pkey into base64 (what names the
 * protocol in err). Both return 1, or -1 (with err). */
#define DKIM_SIG_B64_MAX (4 * (DKIM_SIG_BYTES_MAX / 3 + 1) + 1)
int dkim_sign_hdr_data(struct buf *data, const struct dkim_headers *h, const char *names,
		       const char *field, size_t field_len);
int dkim_sign_b64(EVP_PKEY *pkey, const struct buf *data, char b64[DKIM_SIG_B64_MAX],
		  const char *what, struct yj_err *err);

#endif
