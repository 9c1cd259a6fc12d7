/* tls.c - OpenSSL contexts, and the self-signed certificate that lets a
 * fresh install offer STARTTLS from its first start. */
#include "net/tls.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/util.h"

/* TLS 1.2 suites, in the server's order of preference: forward secret
 * (ECDHE) and AEAD only, as Mozilla's "intermediate" profile has them.
 * CBC suites (Lucky13 and kin) and static-RSA key exchange are not
 * offered, nor DHE: ECDHE does its job faster and needs no DH parameters.
 * AES-128-GCM first: as strong in practice and the cheapest with AES-NI.
 * TLS 1.3 keeps OpenSSL's default suites, all of them AEAD. */
#define TLS_CIPHERS_12                                                  \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"    \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"    \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_CERT_DAYS 3652	/* ten years, leap days included */
#define TLS_CN_MAX 64		/* upper bound of commonName (RFC 5280) */

/* Sets err to the formatted text plus the most recent OpenSSL error,
 * and clears OpenSSL's (per-thread) error queue. Returns -1. */
static int YJ_PRINTF(2, 3)
tls_error(struct yj_err *err, const char *fmt, ...)
{
	unsigned long e = ERR_peek_last_error();
	char what[YJ_ERR_MAX / 2], reason[YJ_ERR_MAX / 2];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	ERR_clear_error();
	if (e == 0)
		return yj_err_set(err, "%s", what);
	ERR_error_string_n(e, reason, sizeof(reason));
	return yj_err_set(err, "%s: %s", what, reason);
}

static const long tls_options = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;

SSL_CTX *
tls_server_ctx_new(const char *cert_file, const char *key_file, struct yj_err *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		tls_error(err, "TLS server context");
		return NULL;
	}
	/* Our order wins over the client's, except that a client listing
	 * ChaCha20 first (one without AES hardware) gets it. */
	SSL_CTX_set_options(ctx, tls_options | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_PRIORITIZE_CHACHA);
	/* Idle IMAP connections are many; let them give back their buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12) != 1) {
		tls_error(err, "TLS server settings");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		tls_error(err, "certificate %s", cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		if (ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
			tls_error(err, "private key %s", key_file);
			goto fail;
		}
		ERR_clear_error();
	}
	/* OpenSSL checks a key against the certificate while loading it;
	 * this also covers a key loaded before a certificate without one. */
	if (SSL_CTX_check_private_key(ctx) != 1) {
		yj_err_set(err, "%s does not match %s", key_file, cert_file);
		ERR_clear_error();
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Outbound SMTP encrypts opportunistically: a peer that only speaks an
 * older protocol still gets TLS rather than plaintext, so the protocol
 * floor is left to the system's OpenSSL policy. */
SSL_CTX *
tls_client_ctx_new(const char *ca_file, struct yj_err *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		tls_error(err, "TLS client context");
		return NULL;
	}
	SSL_CTX_set_options(ctx, tls_options);
	/* The handshake never fails for the certificate: the caller decides
	 * with the verify result (a policy of verify defers, may logs). */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (ca_file != NULL && ca_file[0] != '\0') {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			tls_error(err, "CA file %s", ca_file);
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		/* No system store: every certificate is then unverified. */
		ERR_clear_error();
	}
	return ctx;
}

/* Host names only: the name goes into a config string for the SAN. */
static bool
tls_hostname_ok(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 253 || s[0] == '.' || s[0] == '-')
		return false;
	for (; *s != '\0'; s++) {
		char ch = *s;

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_'))
			return false;
	}
	return true;
}

static int
tls_add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 1 : -1;
}

static int
tls_set_serial(X509 *x)
{
	BIGNUM *bn = BN_new();
	int ok = bn != NULL && BN_rand(bn, 64, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) == 1 &&
		 BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;

	BN_free(bn);
	return ok ? 1 : -1;
}

static int
tls_set_names(X509 *x, const char *hostname)
{
	X509_NAME *name = X509_get_subject_name(x);
	char san[300];

	/* commonName is limited to 64 characters; the SAN is what clients
	 * check, so a longer name simply has no CN. */
	if (strlen(hostname) <= TLS_CN_MAX &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				       (const unsigned char *)hostname, -1, -1, 0) != 1)
		return -1;
	if (X509_set_issuer_name(x, name) != 1)
		return -1;
	snprintf(san, sizeof(san), "DNS:%s", hostname);
	if (tls_add_ext(x, NID_subject_alt_name, san) < 0 ||
	    tls_add_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    tls_add_ext(x, NID_key_usage, "critical,digitalSignature") < 0 ||
	    tls_add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
	    tls_add_ext(x, NID_subject_key_identifier, "hash") < 0)
		return -1;
	return 1;
}

/* Builds and signs the certificate for key. */
static X509 *
tls_build_cert(const char *hostname, EVP_PKEY *key)
{
	X509 *x = X509_new();

	if (x == NULL)
		return NULL;
	/* An hour back, for clients whose clocks run a little slow. */
	if (X509_set_version(x, 2) != 1 || tls_set_serial(x) < 0 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), TLS_CERT_DAYS, 0, NULL) == NULL ||
	    X509_set_pubkey(x, key) != 1 || tls_set_names(x, hostname) < 0 ||
	    X509_sign(x, key, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Writes what a PEM BIO holds to path, durably. */
static int
tls_write_bio(BIO *bio, const char *path, unsigned mode, struct yj_err *err)
{
	char *data;
	long len = BIO_get_mem_data(bio, &data);

	if (len <= 0)
		return yj_err_set(err, "%s: nothing to write", path);
	return util_write_file_atomic(path, data, (size_t)len, mode, err);
}

static int
tls_write_files(X509 *x, EVP_PKEY *key, const char *cert_file, const char *key_file,
		struct yj_err *err)
{
	/* Secure-heap memory BIO: the key's PEM text is wiped when freed. */
	BIO *kbio = BIO_new(BIO_s_secmem());
	BIO *cbio = BIO_new(BIO_s_mem());
	int ret = -1;

	if (kbio == NULL || cbio == NULL ||
	    PEM_write_bio_PrivateKey(kbio, key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_X509(cbio, x) != 1) {
		tls_error(err, "encode certificate");
		goto out;
	}
	/* Key first: a certificate must never be there without its key. */
	if (tls_write_bio(kbio, key_file, 0600, err) < 0)
		goto out;
	/* The write keeps the mode of a stale temporary file, if one was
	 * left behind; make sure the key is private either way. */
	if (chmod(key_file, 0600) < 0) {
		yj_err_errno(err, "chmod %s", key_file);
		goto out;
	}
	ret = tls_write_bio(cbio, cert_file, 0644, err);
out:
	BIO_free(kbio);
	BIO_free(cbio);
	return ret;
}

int
tls_make_self_signed(const char *hostname, const char *cert_file, const char *key_file,
		     struct yj_err *err)
{
	EVP_PKEY *key;
	X509 *x;
	int ret;

	if (!tls_hostname_ok(hostname))
		return yj_err_set(err, "cannot make a certificate for '%s': not a host name",
				  hostname);
	key = EVP_EC_gen("P-256");
	if (key == NULL)
		return tls_error(err, "generate EC P-256 key");
	x = tls_build_cert(hostname, key);
	if (x == NULL) {
		EVP_PKEY_free(key);
		return tls_error(err, "build self-signed certificate");
	}
	ret = tls_write_files(x, key, cert_file, key_file, err);
	X509_free(x);
	EVP_PKEY_free(key);
	return ret;
}
