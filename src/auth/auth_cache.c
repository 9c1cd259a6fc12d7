#include "auth/auth_cache.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth/password.h"
#include "store/store.h"

/* The longest message the digest covers: id, address, hash, password,
 * each followed by a NUL (none of them can contain one). */
#define AUTH_CACHE_INPUT_MAX (24 + STORE_ADDRESS_MAX + STORE_HASH_MAX + PASSWORD_MAX + 4)

bool
auth_cache_init(struct auth_cache *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	/* Without a key no digest is made, so nothing is ever added. */
	c->keyed = RAND_bytes(c->key, sizeof(c->key)) == 1;
	return c->keyed;
}

/* The login's digest. Returns false for a login that cannot be cached
 * (a field too long, no key, or an HMAC failure). */
static bool
auth_cache_digest(const struct auth_cache *c, const struct auth_cache_login *login,
		  unsigned char out[AUTH_CACHE_DIGEST])
{
	char input[AUTH_CACHE_INPUT_MAX];
	unsigned outlen = 0;
	int n;
	bool ok;

	if (!c->keyed)
		return false;
	n = snprintf(input, sizeof(input), "%" PRId64 "%c%s%c%s%c%s", login->account_id, '\0',
		     login->address, '\0', login->hash, '\0', login->password);
	if (n < 0 || (size_t)n >= sizeof(input))
		return false;
	ok = HMAC(EVP_sha256(), c->key, sizeof(c->key), (const unsigned char *)input, (size_t)n,
		  out, &outlen) != NULL && outlen == AUTH_CACHE_DIGEST;
	explicit_bzero(input, sizeof(input));
	return ok;
}

static struct auth_cache_entry *
auth_cache_set(struct auth_cache *c, const unsigned char digest[AUTH_CACHE_DIGEST])
{
	uint32_t h;

	memcpy(&h, digest, sizeof(h));
	return c->sets[h % AUTH_CACHE_SETS];
}

bool
auth_cache_check(struct auth_cache *c, const struct auth_cache_login *login, time_t now, long ttl)
{
	unsigned char digest[AUTH_CACHE_DIGEST];
	struct auth_cache_entry *set;
	bool hit = false;

	if (ttl <= 0 || !auth_cache_digest(c, login, digest))
		return false;
	pthread_mutex_lock(&c->lock);
	set = auth_cache_set(c, digest);
	for (int i = 0; i < AUTH_CACHE_WAYS; i++) {
		struct auth_cache_entry *e = &set[i];

		if (e->added == 0 || CRYPTO_memcmp(e->digest, digest, AUTH_CACHE_DIGEST) != 0)
			continue;
		/* A clock set back also ends the entry: it is not trusted
		 * for longer than ttl either way. */
		if (now < e->added || now - e->added > ttl) {
			e->added = 0;
			break;
		}
		e->used = ++c->clock;
		hit = true;
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

void
auth_cache_add(struct auth_cache *c, const struct auth_cache_login *login, time_t now)
{
	unsigned char digest[AUTH_CACHE_DIGEST];
	struct auth_cache_entry *set, *victim;

	if (!auth_cache_digest(c, login, digest))
		return;
	pthread_mutex_lock(&c->lock);
	set = auth_cache_set(c, digest);
	victim = &set[0];
	for (int i = 0; i < AUTH_CACHE_WAYS; i++) {
		struct auth_cache_entry *e = &set[i];

		if (e->added != 0 && CRYPTO_memcmp(e->digest, digest, AUTH_CACHE_DIGEST) == 0) {
			victim = e;
			break;
		}
		if (e->added == 0 || (victim->added != 0 && e->used < victim->used))
			victim = e;
	}
	memcpy(victim->digest, digest, AUTH_CACHE_DIGEST);
	victim->added = now > 0 ? now : 1;
	victim->used = ++c->clock;
	pthread_mutex_unlock(&c->lock);
}
