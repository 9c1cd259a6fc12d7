/* dkim.h - DKIM verification and signing (RFC 6376, RFC 8463, RFC 8301)
 * over byte buffers.
 *
 * Both sides take the header section whole (it is small and bounded by
 * DKIM_HEADER_MAX) and then the body in any chunking, which they hash as
 * it arrives, so a server never keeps the body for DKIM.
 *
 * Verification checks every DKIM-Signature (up to DKIM_SIGS_MAX, the
 * topmost first) and gives each its own result. rsa-sha1 signatures and
 * RSA keys under 1024 bits fail (RFC 8301); legacy mode lifts both, only
 * so that old test corpora can be run.
 */
#ifndef YJ_DKIM_H
#define YJ_DKIM_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "base/buf.h"
#include "base/err.h"
#include "mailauth/dkim_sig.h"
#include "mailauth/ma_resolver.h"

#define DKIM_HEADER_MAX (1024 * 1024)	/* header section kept for DKIM */
#define DKIM_SIGS_MAX 8			/* signatures checked per message */
#define DKIM_KEY_BITS_MAX 8192		/* larger keys are not tried */
#define DKIM_RSA_BITS_MIN 1024		/* RFC 8301 */
#define DKIM_CLOCK_SKEW 300		/* seconds t= may be ahead */
#define DKIM_SIGN_KEYS_MAX 4

enum dkim_status {
	DKIM_PASS, DKIM_FAIL, DKIM_NEUTRAL, DKIM_POLICY, DKIM_TEMPERROR, DKIM_PERMERROR
};

/* "pass", "fail", ... as in Authentication-Results (RFC 8601 2.7.1). */
const char *dkim_status_name(enum dkim_status status);

/* One signature's outcome and the properties Authentication-Results
 * reports: header.d, header.i, header.s, header.b (its first 8
 * characters), header.a. */
struct dkim_result {
	enum dkim_status status;
	const char *reason;		/* static text, "" on pass */
	enum dkim_alg alg;
	char d[DKIM_NAME_MAX];
	char i[DKIM_NAME_MAX];
	char s[DKIM_NAME_MAX];
	char b_prefix[16];
	unsigned key_bits;
	bool testing;			/* key t=y */
};

struct dkim_verify_opts {
	long long now;		/* seconds since the epoch; 0 = time() */
	bool legacy;		/* accept rsa-sha1 and RSA keys >= 512 bits */
};

struct dkim_verifier;

/* Copies the header section (through its last CRLF, without the empty
 * line) and parses its signatures. Never NULL (allocation failure is
 * fatal); a header section over the limits that has a DKIM-Signature
 * gives one permerror result. */
struct dkim_verifier *dkim_verifier_new(const struct dkim_verify_opts *opts,
					const char *hdr, size_t len);
void dkim_verifier_body(struct dkim_verifier *v, const char *data, size_t len);
/* Ends the body, looks up keys through r and writes one result per
 * signature (at most max). Returns how many; 0 means no DKIM-Signature. */
size_t dkim_verifier_finish(struct dkim_verifier *v, const struct ma_resolver *r,
			    struct dkim_result *res, size_t max);
void dkim_verifier_free(struct dkim_verifier *v);

/* All of the above for a message in one buffer (CRLF line ends). */
size_t dkim_verify_message(const struct dkim_verify_opts *opts, const struct ma_resolver *r,
			   const char *msg, size_t len, struct dkim_result *res, size_t max);

/* A signing key: RSA (rsa-sha256) or Ed25519 (ed25519-sha256). */
struct dkim_sign_key {
	const char *domain;
	const char *selector;
	EVP_PKEY *pkey;
};

struct dkim_sign_opts {
	const struct dkim_sign_key *keys;	/* one signature each */
	size_t n_keys;				/* 1 to DKIM_SIGN_KEYS_MAX */
	long long now;				/* t=; 0 = time() */
	unsigned long long expire_after;	/* x= = t= + this; 0: no x= */
};

struct dkim_signer;

/* Copies the header section as dkim_verifier_new does. NULL if n_keys
 * is out of range. */
struct dkim_signer *dkim_signer_new(const struct dkim_sign_opts *opts, const char *hdr,
				    size_t len);
void dkim_signer_body(struct dkim_signer *s, const char *data, size_t len);
/* Appends one DKIM-Signature field per key (folded to 78 columns, CRLF
 * ended) to out, to be put at the top of the message. Returns 1, or -1
 * with err (no From field, a key that cannot sign, header too large). */
int dkim_signer_finish(struct dkim_signer *s, struct buf *out, struct yj_err *err);
void dkim_signer_free(struct dkim_signer *s);

/* Loads a PEM private key (PKCS#8 or PKCS#1). NULL with err on failure. */
EVP_PKEY *dkim_key_load(const char *path, struct yj_err *err);

#endif
