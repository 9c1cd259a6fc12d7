/* dkim_sig.h - DKIM-Signature, ARC-Message-Signature and ARC-Seal fields
 * and DKIM key records, parsed and checked for what RFC 6376 (and RFC
 * 8617 for the ARC fields) requires of their tags.
 */
#ifndef YJ_DKIM_SIG_H
#define YJ_DKIM_SIG_H

#include <stdbool.h>
#include <stddef.h>

#include "mailauth/dkim_canon.h"
#include "mailauth/dkim_tag.h"

#define DKIM_SIG_BYTES_MAX 1024		/* b=: an 8192-bit RSA signature */
#define DKIM_NAME_MAX 256		/* d=, s=, i= decoded */
#define DKIM_KEY_BYTES_MAX 1200		/* p=: an 8192-bit RSA key */

enum dkim_alg { DKIM_ALG_RSA_SHA256, DKIM_ALG_ED25519_SHA256, DKIM_ALG_RSA_SHA1 };
enum dkim_kind { DKIM_KIND_SIG, DKIM_KIND_AMS, DKIM_KIND_AS };

struct dkim_sig {
	enum dkim_kind kind;
	struct dkim_tags tags;
	enum dkim_alg alg;
	enum dkim_canon hdr_canon, body_canon;
	char d[DKIM_NAME_MAX];		/* lower-cased */
	char s[DKIM_NAME_MAX];
	char i[DKIM_NAME_MAX];		/* DKIM: decoded AUID, "@d" if absent */
	unsigned instance;		/* ARC: i= */
	unsigned char b[DKIM_SIG_BYTES_MAX];
	size_t b_len;
	char b_prefix[16];		/* for header.b (RFC 6008) */
	unsigned char bh[32];
	size_t bh_len;
	const char *h;			/* h= as written */
	size_t h_len;
	bool has_l, has_t, has_x;
	unsigned long long l, t, x;
	char cv[8];			/* ARC-Seal: none, pass, fail */
};

/* Parses the value of a signature field of that kind (text must outlive
 * sig). Returns 1, or -1 with the reason in *why: the signature is then
 * unusable (permerror). An rsa-sha1 signature parses; the verifier
 * decides about it. */
int dkim_sig_parse(struct dkim_sig *sig, enum dkim_kind kind, const char *text,
		   size_t len, const char **why);

struct dkim_key {
	bool revoked;		/* empty p= */
	bool testing;		/* t=y */
	bool strict;		/* t=s: i= must be d= exactly */
	bool sha256_ok, sha1_ok;/* h= */
	bool ed25519;		/* k=ed25519 */
	unsigned char p[DKIM_KEY_BYTES_MAX];
	size_t p_len;
};

/* Parses a key record (RFC 6376 3.6.1). Returns 1, or -1 with *why. */
int dkim_key_parse(struct dkim_key *key, const char *text, size_t len, const char **why);

#endif
