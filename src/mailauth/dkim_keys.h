/* dkim_keys.h - the DKIM signing keys in the data dir.
 *
 * One PEM file per key: DATA/dkim/DOMAIN/SELECTOR.key (mode 0600, dirs
 * 0700). A domain may have several selectors at once, which is how keys
 * rotate: a new key is made beside the old, and the old one stays (and
 * its DNS record stays valid) until it is removed. Signing uses the
 * newest key of each algorithm: RSA always, Ed25519 as a second
 * signature when the domain has one.
 */
#ifndef YJ_DKIM_KEYS_H
#define YJ_DKIM_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>

#include "base/buf.h"
#include "base/err.h"
#include "mailauth/dkim.h"

#define DKIM_KEYS_DIR "dkim"
#define DKIM_SELECTOR_MAX 63
#define DKIM_KEYS_PER_DOMAIN_MAX 64

enum dkim_key_alg { DKIM_KEY_RSA, DKIM_KEY_ED25519 };

/* A selector: a DNS label of letters, digits and '-', not at the ends. */
bool dkim_selector_ok(const char *selector);

/* Makes a new key (RSA-2048 or Ed25519) and writes it, never replacing
 * an existing file. Returns the key (the caller frees it), or NULL with
 * err. */
EVP_PKEY *dkim_keys_create(const char *data_dir, const char *domain, const char *selector,
			   enum dkim_key_alg alg, struct yj_err *err);

struct dkim_key_info {
	char selector[DKIM_SELECTOR_MAX + 1];
	enum dkim_key_alg alg;
	unsigned bits;
	time_t mtime;
};

/* The keys of a domain, oldest first, at most max. Returns how many
 * (0 if the domain has none), or -1 with err. */
int dkim_keys_list(const char *data_dir, const char *domain, struct dkim_key_info *keys,
		   size_t max, struct yj_err *err);

/* Deletes one key. Returns 1, 0 if there is no such key, -1 with err. */
int dkim_keys_remove(const char *data_dir, const char *domain, const char *selector,
		     struct yj_err *err);

/* The TXT record for a key: "v=DKIM1; k=rsa; p=...". Returns 1 or -1. */
int dkim_keys_record(EVP_PKEY *pkey, char *out, size_t outlen);

/* The keys to sign a domain's mail with (newest RSA, then newest
 * Ed25519), loaded; selectors point into sel (the caller keeps it).
 * Returns how many (0: the domain has no keys), or -1 with err. */
int dkim_keys_signing(const char *data_dir, const char *domain, struct dkim_sign_key keys[2],
		      char sel[2][DKIM_SELECTOR_MAX + 1], struct yj_err *err);

/* How often, at most, the cache below looks at the key files again. */
#define DKIM_KEYS_RECHECK_SECS 1
#define DKIM_KEYS_CACHE_MAX 256		/* domains remembered */

/* dkim_keys_signing() through a cache in memory, for the server: a
 * domain's keys are loaded once and looked at again (the stat of its
 * directory and of the chosen key files, no reading) at most every
 * DKIM_KEYS_RECHECK_SECS, so `youju dkim keygen` or `remove` on a running
 * server takes effect within that time. A domain without keys is
 * remembered too. Each returned pkey holds its own reference (the caller
 * frees them, as with dkim_keys_signing()); selectors point into sel.
 * Safe from several threads. */
int dkim_keys_cached(const char *data_dir, const char *domain, struct dkim_sign_key keys[2],
		     char sel[2][DKIM_SELECTOR_MAX + 1], struct yj_err *err);

/* Forgets every cached key (tests, and the end of the process). */
void dkim_keys_cache_clear(void);

/* Signs msg (a whole message, CRLF lines) with domain's signing keys:
 * appends the DKIM-Signature lines to put on top of it to out. Returns
 * 1 signed, 0 the domain has no keys (nothing appended), -1 with err. */
int dkim_sign_message(const char *data_dir, const char *domain, const char *msg, size_t len,
		      struct buf *out, struct yj_err *err);

#endif
