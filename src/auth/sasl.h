/* sasl.h - decoding SASL PLAIN (RFC 4616) and LOGIN responses, shared by
 * SMTP AUTH, POP3 AUTH and IMAP AUTHENTICATE. Pure functions, no I/O. */
#ifndef YJ_SASL_H
#define YJ_SASL_H

#include <stddef.h>

#include "base/err.h"

#define SASL_FIELD_MAX 1024

/* Decodes standard base64 (base64.h's BASE64_STRICT: padding required,
 * no whitespace). "=" alone decodes to empty. Returns the length, or -1 if malformed or
 * longer than outlen - 1. out is NUL-terminated. */
long sasl_base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outlen);
/* Encodes; returns the length or -1 if out is too small. */
long sasl_base64_encode(const unsigned char *in, size_t inlen, char *out, size_t outlen);

/* Splits a decoded PLAIN message "authzid\0authcid\0passwd". Each out
 * buffer must hold SASL_FIELD_MAX + 1 bytes. Returns 1 or -1 (malformed,
 * empty authcid, a field too long, or a NUL in the password). */
int sasl_plain_split(const unsigned char *msg, size_t len, char *authzid, char *authcid,
		     char *passwd) YJ_MUST_CHECK;

#endif
