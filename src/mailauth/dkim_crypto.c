/* dkim_crypto.c - RSA and Ed25519 through EVP. */
#include <pthread.h>
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

/* Decoding an RSA key is most of the cost of a verification, and mail
 * comes again and again from the same few keys: the last KEY_CACHE_SIZE
 * keys decoded are kept (shared by all threads; an EVP_PKEY is safe to
 * use from several at once). Entries are matched on the key bytes. */
#define KEY_CACHE_SIZE 32

static struct key_cache_entry {
	unsigned char p[DKIM_KEY_BYTES_MAX];
	size_t len;
	bool ed25519;
	EVP_PKEY *pkey;
	unsigned long long used;
} key_cache[KEY_CACHE_SIZE];
static unsigned long long key_cache_clock;
static pthread_mutex_t key_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static EVP_PKEY *
cache_find(const struct dkim_key *key)
{
	EVP_PKEY *pkey = NULL;

	pthread_mutex_lock(&key_cache_lock);
	for (size_t i = 0; i < KEY_CACHE_SIZE; i++) {
		struct key_cache_entry *e = &key_cache[i];
		if (e->pkey != NULL && e->ed25519 == key->ed25519 && e->len == key->p_len &&
		    memcmp(e->p, key->p, e->len) == 0) {
			e->used = ++key_cache_clock;
			if (EVP_PKEY_up_ref(e->pkey) == 1)
				pkey = e->pkey;
			break;
		}
	}
	pthread_mutex_unlock(&key_cache_lock);
	return pkey;
}

/* Keeps pkey in place of the least recently used entry. */
static void
cache_add(const struct dkim_key *key, EVP_PKEY *pkey)
{
	struct key_cache_entry *victim = &key_cache[0];

	if (EVP_PKEY_up_ref(pkey) != 1)
		return;
	pthread_mutex_lock(&key_cache_lock);
	for (size_t i = 1; i < KEY_CACHE_SIZE; i++) {
		if (key_cache[i].used < victim->used)
			victim = &key_cache[i];
	}
	EVP_PKEY_free(victim->pkey);
	memcpy(victim->p, key->p, key->p_len);
	victim->len = key->p_len;
	victim->ed25519 = key->ed25519;
	victim->pkey = pkey;
	victim->used = ++key_cache_clock;
	pthread_mutex_unlock(&key_cache_lock);
}

EVP_PKEY *
dkim_pubkey(const struct dkim_key *key, unsigned *bits_r)
{
	EVP_PKEY *pkey = cache_find(key);

	if (pkey != NULL) {
		*bits_r = (unsigned)EVP_PKEY_get_bits(pkey);
		return pkey;
	}
	if (key->ed25519)
		pkey = key->p_len == 32
			? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key->p, 32)
			: NULL;
	else
		pkey = rsa_pubkey(key);
	*bits_r = pkey != NULL ? (unsigned)EVP_PKEY_get_bits(pkey) : 0;
	if (pkey != NULL)
		cache_add(key, pkey);
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
