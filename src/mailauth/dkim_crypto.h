/* dkim_crypto.h - the public-key operations of DKIM and ARC, through
 * OpenSSL's EVP interface: rsa-sha256 (PKCS#1 v1.5 over SHA-256 of the
 * data) and ed25519-sha256 (RFC 8463: Ed25519 over the SHA-256 digest of
 * the data). rsa-sha1 is only recognised, never computed.
 */
#ifndef YJ_DKIM_CRYPTO_H
#define YJ_DKIM_CRYPTO_H

#include <stddef.h>

#include <openssl/evp.h>

#include "mailauth/dkim_sig.h"

/* Makes a public key from a key record's p= (RSA: SubjectPublicKeyInfo,
 * or a bare RSAPublicKey; Ed25519: the 32 raw bytes). *bits_r gets the
 * key size. Returns the key (the caller frees it; recently used keys are
 * shared from a small cache), or NULL if p= is not a key of that type. */
EVP_PKEY *dkim_pubkey(const struct dkim_key *key, unsigned *bits_r);

/* Checks sig over data with pkey and alg. Returns 1 valid, 0 not. */
int dkim_crypto_verify(EVP_PKEY *pkey, enum dkim_alg alg, const char *data, size_t len,
		       const unsigned char *sig, size_t sig_len);

/* Signs data; sig must hold EVP_PKEY_get_size(pkey) bytes. Returns 1 with
 * *sig_len set, or -1. */
int dkim_crypto_sign(EVP_PKEY *pkey, enum dkim_alg alg, const char *data, size_t len,
		     unsigned char *sig, size_t *sig_len);

/* The algorithm a private key signs with (rsa-sha256 or ed25519-sha256);
 * -1 for other key types. */
int dkim_crypto_alg(EVP_PKEY *pkey);

/* The p= value (base64 of the public key: SubjectPublicKeyInfo for RSA,
 * raw for Ed25519) of a private key, into out. Returns 1, or -1 if it
 * does not fit. */
int dkim_crypto_pubkey_b64(EVP_PKEY *pkey, char *out, size_t outlen);

#endif
