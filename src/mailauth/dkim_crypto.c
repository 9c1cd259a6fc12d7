/* dkim_crypto.c - RSA and Ed25519 through EVP. */
#include <string.h>

#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "mailauth/dkim_crypto.h"

static EVP_PKEY *
rsa_pubkey(const struct dkim_key *key)
{
	const unsigned char *p = key->p;
	EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)key->p_len);

	if (pkey != NULL && p != key->p + key->p_len) {
		EVP_PKEY_free(pkey);
		return NULL;
	}
	if (pkey == NULL) {
		p = key->p;
		pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)key->p_len);
	}
	if (pkey != NULL && EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

EVP_PKEY *
dkim_pubkey(const struct dkim_key *key, unsigned *bits_r)
{
	EVP_PKEY *pkey;

	if (key->ed25519)
		pkey = key->p_len == 32
			? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key->p, 32)
			: NULL;
	else
		pkey = rsa_pubkey(key);
	*bits_r = pkey != NULL ? (unsigned)EVP_PKEY_get_bits(pkey) : 0;
	return pkey;
}

static int
sha256(const char *data, size_t len, unsigned char out[32])
{
	unsigned int n = 0;

	return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 ? 1 : -1;
}

int
dkim_crypto_verify(EVP_PKEY *pkey, enum dkim_alg alg, const char *data, size_t len,
		   const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char digest[32];
	int ok = 0;

	if (ctx == NULL)
		return 0;
	if (alg == DKIM_ALG_ED25519_SHA256) {
		if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519 && sha256(data, len, digest) == 1 &&
		    EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1)
			ok = EVP_DigestVerify(ctx, sig, sig_len, digest, 32) == 1;
	} else if (alg == DKIM_ALG_RSA_SHA256 && EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA) {
		if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1)
			ok = EVP_DigestVerify(ctx, sig, sig_len,
					      (const unsigned char *)data, len) == 1;
	} else if (alg == DKIM_ALG_RSA_SHA1 && EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA) {
		/* Only reached in legacy mode, to run old test corpora. */
		if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha1(), NULL, pkey) == 1)
			ok = EVP_DigestVerify(ctx, sig, sig_len,
					      (const unsigned char *)data, len) == 1;
	}
	EVP_MD_CTX_free(ctx);
	return ok;
}

int
dkim_crypto_sign(EVP_PKEY *pkey, enum dkim_alg alg, const char *data, size_t len,
		 unsigned char *sig, size_t *sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char digest[32];
	int ok = -1;

	if (ctx == NULL)
		return -1;
	*sig_len = (size_t)EVP_PKEY_get_size(pkey);
	if (alg == DKIM_ALG_ED25519_SHA256) {
		if (sha256(data, len, digest) == 1 &&
		    EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
		    EVP_DigestSign(ctx, sig, sig_len, digest, 32) == 1)
			ok = 1;
	} else if (alg == DKIM_ALG_RSA_SHA256) {
		if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
		    EVP_DigestSign(ctx, sig, sig_len, (const unsigned char *)data, len) == 1)
			ok = 1;
	}
	EVP_MD_CTX_free(ctx);
	return ok;
}

int
dkim_crypto_alg(EVP_PKEY *pkey)
{
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		return DKIM_ALG_RSA_SHA256;
	case EVP_PKEY_ED25519:
		return DKIM_ALG_ED25519_SHA256;
	default:
		return -1;
	}
}

int
dkim_crypto_pubkey_b64(EVP_PKEY *pkey, char *out, size_t outlen)
{
	unsigned char der[DKIM_KEY_BYTES_MAX], *p = der;
	size_t n = sizeof(der);

	if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519) {
		if (EVP_PKEY_get_raw_public_key(pkey, der, &n) != 1)
			return -1;
	} else {
		int len = i2d_PUBKEY(pkey, NULL);
		if (len <= 0 || (size_t)len > sizeof(der) || i2d_PUBKEY(pkey, &p) != len)
			return -1;
		n = (size_t)len;
	}
	if (outlen < 4 * ((n + 2) / 3) + 1)
		return -1;
	dkim_base64_encode(der, n, out);
	return 1;
}
