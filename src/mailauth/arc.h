/* arc.h - ARC chain validation and sealing (RFC 8617) over byte buffers.
 *
 * Like dkim.h, both sides take the header section whole and the body in
 * chunks. Validation gives the chain status (cv=none, pass or fail) and
 * the oldest instance whose AMS still verifies; sealing adds a new ARC
 * set (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results)
 * carrying the Authentication-Results the caller gives.
 */
#ifndef YJ_ARC_H
#define YJ_ARC_H

#include <stddef.h>

#include <openssl/evp.h>

#include "base/buf.h"
#include "base/err.h"
#include "mailauth/dkim.h"

#define ARC_INSTANCES_MAX 50	/* RFC 8617 4.2.1 */

enum arc_cv { ARC_CV_NONE, ARC_CV_PASS, ARC_CV_FAIL };

/* "none", "pass", "fail". */
const char *arc_cv_name(enum arc_cv cv);

struct arc_result {
	enum arc_cv cv;
	const char *reason;	/* static text, "" on pass or none */
	unsigned instances;	/* the highest instance, 0 if none */
	bool terminated;	/* a seal already said cv=fail: an earlier hop
				 * ended the chain (the suite's "no verdict") */
	unsigned oldest_pass;	/* lowest instance whose AMS and all later
				 * ones verify; 0 when all do (RFC 8617 5.2) */
	char d[DKIM_NAME_MAX];	/* of the latest ARC-Seal */
	char s[DKIM_NAME_MAX];
};

struct arc_verifier;

struct arc_verifier *arc_verifier_new(const struct dkim_verify_opts *opts,
				      const char *hdr, size_t len);
void arc_verifier_body(struct arc_verifier *v, const char *data, size_t len);
void arc_verifier_finish(struct arc_verifier *v, const struct ma_resolver *r,
			 struct arc_result *res);
void arc_verifier_free(struct arc_verifier *v);

void arc_verify_message(const struct dkim_verify_opts *opts, const struct ma_resolver *r,
			const char *msg, size_t len, struct arc_result *res);

struct arc_seal_opts {
	const char *domain;
	const char *selector;
	EVP_PKEY *pkey;
	long long now;			/* t=; 0 = time() */
	const char *sign_headers;	/* AMS h=, colon-separated; NULL: a default set */
	const char *authres;		/* "authserv-id; method=result ..." */
	enum arc_cv cv;			/* this hop's validation of the chain */
};

struct arc_sealer;

struct arc_sealer *arc_sealer_new(const struct arc_seal_opts *opts, const char *hdr,
				  size_t len);
void arc_sealer_body(struct arc_sealer *s, const char *data, size_t len);
/* Replaces opts' authres and cv, for a caller that knows them only after
 * the body (the server seals what it verified while the body streamed).
 * authres must stay valid until arc_sealer_finish(). */
void arc_sealer_set_result(struct arc_sealer *s, const char *authres, enum arc_cv cv);
/* Appends ARC-Seal, ARC-Message-Signature and ARC-Authentication-Results
 * (in that order, CRLF-ended) for the top of the message. Returns 1, or
 * -1 with err: the chain has 50 sets, cv does not fit the chain (none
 * with sets present, pass or fail without), a malformed chain with cv not
 * fail, a key that cannot sign. */
int arc_sealer_finish(struct arc_sealer *s, struct buf *out, struct yj_err *err);
void arc_sealer_free(struct arc_sealer *s);

#endif
