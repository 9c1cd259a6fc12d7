#include "auth/penalty.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>

void
penalty_init(struct penalty_table *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
}

/* The table key of a textual address. Returns false if it does not parse. */
static bool
penalty_key(const char *ip, uint8_t key[9])
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	uint8_t a[16];

	memset(key, 0, 9);
	if (inet_pton(AF_INET, ip, a) == 1) {
		key[0] = 4;
		memcpy(key + 1, a, 4);
		return true;
	}
	if (inet_pton(AF_INET6, ip, a) != 1)
		return false;
	if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0) {
		key[0] = 4;
		memcpy(key + 1, a + 12, 4);
		return true;
	}
	key[0] = 6;
	memcpy(key + 1, a, 8);		/* the /64 */
	return true;
}

/* The table key of a login name: 'n', then a 64-bit FNV-1a hash of the
 * name in lower case. Two names that share a hash share their count,
 * which only makes a limit come sooner for both. */
static void
penalty_name_key(const char *name, uint8_t key[9])
{
	uint64_t h = 14695981039346656037u;

	for (const char *p = name; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		h = (h ^ (c >= 'A' && c <= 'Z' ? c + 32 : c)) * 1099511628211u;
	}
	key[0] = 'n';
	for (int i = 0; i < 8; i++)
		key[1 + i] = (uint8_t)(h >> (8 * i));
}

static bool
penalty_live(const struct penalty_entry *e, time_t now)
{
	return e->failures > 0 && now - e->last < PENALTY_EXPIRE;
}

/* The client's live slot, or NULL. Called with the lock held. */
static struct penalty_entry *
penalty_find(struct penalty_table *t, const uint8_t key[9], time_t now)
{
	for (size_t i = 0; i < PENALTY_SLOTS; i++) {
		struct penalty_entry *e = &t->slots[i];

		if (e->failures > 0 && memcmp(e->key, key, 9) == 0)
			return penalty_live(e, now) ? e : NULL;
	}
	return NULL;
}

/* A slot for a new client: a free or expired one, else the oldest. */
static struct penalty_entry *
penalty_victim(struct penalty_table *t, const uint8_t key[9], time_t now)
{
	struct penalty_entry *oldest = &t->slots[0];

	for (size_t i = 0; i < PENALTY_SLOTS; i++) {
		struct penalty_entry *e = &t->slots[i];

		/* An expired entry of this same client must not survive
		 * beside the new one. */
		if (!penalty_live(e, now) || memcmp(e->key, key, 9) == 0)
			return e;
		if (e->last < oldest->last)
			oldest = e;
	}
	return oldest;
}

static unsigned
penalty_get_key(struct penalty_table *t, const uint8_t key[9], time_t now)
{
	struct penalty_entry *e;
	unsigned n;

	pthread_mutex_lock(&t->lock);
	e = penalty_find(t, key, now);
	n = e != NULL ? e->failures : 0;
	pthread_mutex_unlock(&t->lock);
	return n;
}

static unsigned
penalty_add_key(struct penalty_table *t, const uint8_t key[9], time_t now)
{
	struct penalty_entry *e;
	unsigned n;

	pthread_mutex_lock(&t->lock);
	e = penalty_find(t, key, now);
	if (e == NULL) {
		e = penalty_victim(t, key, now);
		memcpy(e->key, key, 9);
		e->failures = 0;
	}
	if (e->failures < 1000000)
		e->failures++;
	e->last = now;
	n = e->failures;
	pthread_mutex_unlock(&t->lock);
	return n;
}

static void
penalty_clear_key(struct penalty_table *t, const uint8_t key[9])
{
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < PENALTY_SLOTS; i++) {
		if (memcmp(t->slots[i].key, key, 9) == 0)
			t->slots[i].failures = 0;
	}
	pthread_mutex_unlock(&t->lock);
}

unsigned
penalty_get(struct penalty_table *t, const char *ip, time_t now)
{
	uint8_t key[9];

	return penalty_key(ip, key) ? penalty_get_key(t, key, now) : 0;
}

unsigned
penalty_add(struct penalty_table *t, const char *ip, time_t now)
{
	uint8_t key[9];

	return penalty_key(ip, key) ? penalty_add_key(t, key, now) : 0;
}

void
penalty_clear(struct penalty_table *t, const char *ip)
{
	uint8_t key[9];

	if (penalty_key(ip, key))
		penalty_clear_key(t, key);
}

unsigned
penalty_add_name(struct penalty_table *t, const char *name, time_t now)
{
	uint8_t key[9];

	penalty_name_key(name, key);
	return penalty_add_key(t, key, now);
}

void
penalty_clear_name(struct penalty_table *t, const char *name)
{
	uint8_t key[9];

	penalty_name_key(name, key);
	penalty_clear_key(t, key);
}

long
penalty_delay_ms(unsigned failures, long base_ms, long max_ms)
{
	long d = base_ms;

	if (failures == 0 || base_ms <= 0)
		return 0;
	for (unsigned i = 1; i < failures && d < max_ms; i++)
		d *= 2;
	return d < max_ms ? d : max_ms;
}
