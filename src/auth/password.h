/* password.h - password hashes through libxcrypt.
 *
 * New hashes are yescrypt ("$y$..."), as Debian's /etc/shadow uses.
 * Verification accepts any crypt(3) hash libxcrypt knows (yescrypt,
 * bcrypt "$2b$", SHA-512-crypt "$6$", SHA-256-crypt "$5$", MD5-crypt)
 * and Dovecot's "{SCHEME}" prefixed forms: {CRYPT}, {BLF-CRYPT},
 * {SHA512-CRYPT}, {SHA256-CRYPT}, {MD5-CRYPT}, {PLAIN}, {CLEAR},
 * {SHA256}, {SHA512}, {SSHA256}, {SSHA512} (base64), so accounts can be
 * migrated with their hashes.
 */
#ifndef YJ_PASSWORD_H
#define YJ_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

#define PASSWORD_MAX 511	/* longest password accepted (crypt(3) limit) */

/* Hashes plain with yescrypt into out. Returns 1 or -1. */
int password_hash(const char *plain, char *out, size_t outlen, struct yj_err *err) YJ_MUST_CHECK;

/* Does plain match hash? Compares in constant time. */
bool password_verify(const char *plain, const char *hash);

#endif
