/* auth_cache.h - logins verified lately, so a client that logs in again
 * and again (a phone polling, a client opening several connections)
 * does not pay for a password hash each time (a yescrypt verification
 * takes tens of milliseconds of CPU), as Dovecot's auth_cache does.
 *
 * An entry is only a keyed digest, HMAC-SHA256 under a random key made
 * per process, of the account's id, its address, its stored hash string
 * and the password: no password is kept, and a changed password (another
 * stored hash), a removed account (no lookup, or another id) or another
 * password never matches. Only successful verifications are added; a
 * failure is never remembered, so it always pays the full hash.
 *
 * The table is fixed: AUTH_CACHE_SETS sets of AUTH_CACHE_WAYS entries,
 * the set chosen by the digest; a full set gives up its least recently
 * used entry. An entry is good for ttl seconds after it was added.
 * Thread-safe.
 */
#ifndef YJ_AUTH_CACHE_H
#define YJ_AUTH_CACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define AUTH_CACHE_SETS 1024
#define AUTH_CACHE_WAYS 4
#define AUTH_CACHE_DIGEST 32	/* HMAC-SHA256 */

struct auth_cache_entry {
	unsigned char digest[AUTH_CACHE_DIGEST];
	time_t added;		/* 0: the entry is free */
	uint64_t used;		/* the table's clock at its last hit */
};

/* What a verification was about. */
struct auth_cache_login {
	int64_t account_id;
	const char *address;
	const char *hash;	/* the stored password hash string */
	const char *password;
};

struct auth_cache {
	pthread_mutex_t lock;
	unsigned char key[32];
	bool keyed;		/* set once, at init: no key, no digests */
	uint64_t clock;		/* under lock */
	struct auth_cache_entry sets[AUTH_CACHE_SETS][AUTH_CACHE_WAYS];
};

/* Empties the table and draws a new key. Returns false if no random key
 * could be made (the cache then never matches). */
bool auth_cache_init(struct auth_cache *c);

/* Was this login verified at most ttl seconds before now? False when ttl
 * is 0 (the cache is off). */
bool auth_cache_check(struct auth_cache *c, const struct auth_cache_login *login, time_t now,
		      long ttl);

/* Remembers a login that was just verified. */
void auth_cache_add(struct auth_cache *c, const struct auth_cache_login *login, time_t now);

#endif
