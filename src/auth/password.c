#include "auth/password.h"

#include <crypt.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth/sasl.h"

int
password_hash(const char *plain, char *out, size_t outlen, struct yj_err *err)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data data;
	const char *h;

	if (strlen(plain) > PASSWORD_MAX)
		return yj_err_set(err, "password too long");
	/* count 0 asks libxcrypt for its current default cost. */
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL)
		return yj_err_errno(err, "crypt_gensalt");
	memset(&data, 0, sizeof(data));
	h = crypt_r(plain, salt, &data);
	if (h == NULL || h[0] == '*')
		return yj_err_set(err, "crypt failed");
	if (strlen(h) >= outlen)
		return yj_err_set(err, "hash too long");
	strcpy(out, h);
	explicit_bzero(&data, sizeof(data));
	return 1;
}

static bool
equal_const(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen != blen)
		return false;
	return CRYPTO_memcmp(a, b, alen) == 0;
}

static bool
verify_crypt(const char *plain, const char *hash)
{
	struct crypt_data data;
	const char *h;
	bool ok;

	if (hash[0] == '\0')
		return false;
	memset(&data, 0, sizeof(data));
	h = crypt_r(plain, hash, &data);
	ok = h != NULL && h[0] != '*' && equal_const(h, strlen(h), hash, strlen(hash));
	explicit_bzero(&data, sizeof(data));
	return ok;
}

/* {SHA256}, {SHA512}: base64(digest); {SSHA256}, {SSHA512}:
 * base64(digest || salt) with digest = H(password || salt). */
static bool
verify_digest(const char *plain, const char *b64, const EVP_MD *md, bool salted)
{
	unsigned char raw[512], digest[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	size_t mdlen = (size_t)EVP_MD_get_size(md);
	long rawlen = sasl_base64_decode(b64, strlen(b64), raw, sizeof(raw));
	EVP_MD_CTX *ctx;
	bool ok = false;

	if (rawlen < 0 || (size_t)rawlen < mdlen || (!salted && (size_t)rawlen != mdlen))
		return false;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return false;
	if (EVP_DigestInit_ex(ctx, md, NULL) == 1 &&
	    EVP_DigestUpdate(ctx, plain, strlen(plain)) == 1 &&
	    EVP_DigestUpdate(ctx, raw + mdlen, (size_t)rawlen - mdlen) == 1 &&
	    EVP_DigestFinal_ex(ctx, digest, &dlen) == 1)
		ok = equal_const(digest, dlen, raw, mdlen);
	EVP_MD_CTX_free(ctx);
	return ok;
}

bool
password_verify(const char *plain, const char *hash)
{
	static const char *const crypt_schemes[] = {
		"CRYPT", "BLF-CRYPT", "SHA512-CRYPT", "SHA256-CRYPT", "MD5-CRYPT",
	};
	const char *end;
	size_t n;

	if (strlen(plain) > PASSWORD_MAX)
		return false;
	if (hash[0] != '{')
		return verify_crypt(plain, hash);
	end = strchr(hash, '}');
	if (end == NULL)
		return false;
	n = (size_t)(end - hash - 1);
	for (size_t i = 0; i < sizeof(crypt_schemes) / sizeof(crypt_schemes[0]); i++) {
		if (strlen(crypt_schemes[i]) == n && strncasecmp(hash + 1, crypt_schemes[i], n) == 0)
			return verify_crypt(plain, end + 1);
	}
#define SCHEME(name) (n == strlen(name) && strncasecmp(hash + 1, name, n) == 0)
	if (SCHEME("PLAIN") || SCHEME("CLEAR") || SCHEME("CLEARTEXT"))
		return equal_const(plain, strlen(plain), end + 1, strlen(end + 1));
	if (SCHEME("SHA256"))
		return verify_digest(plain, end + 1, EVP_sha256(), false);
	if (SCHEME("SHA512"))
		return verify_digest(plain, end + 1, EVP_sha512(), false);
	if (SCHEME("SSHA256"))
		return verify_digest(plain, end + 1, EVP_sha256(), true);
	if (SCHEME("SSHA512"))
		return verify_digest(plain, end + 1, EVP_sha512(), true);
#undef SCHEME
	return false;
}
