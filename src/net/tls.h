/* tls.h - OpenSSL contexts and the self-signed certificate for first runs. */
#ifndef YJ_TLS_H
#define YJ_TLS_H

#include <openssl/ssl.h>

#include "base/err.h"

/* A server context with TLS 1.2 as the minimum and, for TLS 1.2, only
 * ECDHE suites with AEAD ciphers (AES-GCM, ChaCha20-Poly1305) in the
 * server's order; loads a PEM certificate chain (RSA or ECDSA) and its
 * private key. NULL on error. */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file,
			    struct yj_err *err);
/* A client context with the system's OpenSSL defaults for protocols and
 * suites, so that it can still reach servers that offer only CBC suites.
 * Certificates are checked against ca_file (PEM), or the system's CA
 * store when it is NULL or "", but a handshake never fails for them:
 * see conn_tls_verified(). NULL on error (an unreadable ca_file). */
SSL_CTX *tls_client_ctx_new(const char *ca_file, struct yj_err *err);

/* Writes a new self-signed certificate for hostname (CN and DNS SAN),
 * valid ten years, with an EC P-256 key. The key file is mode 0600. */
int tls_make_self_signed(const char *hostname, const char *cert_file,
			 const char *key_file, struct yj_err *err) YJ_MUST_CHECK;

#endif
