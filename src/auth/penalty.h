/* penalty.h - failed logins remembered per client address, across
 * connections, so the delay before each new attempt grows (as Dovecot's
 * auth_penalty does): a guesser gains nothing by opening more sessions.
 *
 * An IPv4 client is its whole address; an IPv6 client is its /64, since
 * one host usually holds a whole /64 (an IPv4-mapped address counts as
 * IPv4). The table is a fixed array: when it is full, the entry seen
 * longest ago gives way. Entries expire PENALTY_EXPIRE seconds after the
 * last failure. Login names are counted in the same table (their keys
 * cannot be taken for an address). Thread-safe.
 */
#ifndef YJ_PENALTY_H
#define YJ_PENALTY_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define PENALTY_SLOTS 4096
#define PENALTY_EXPIRE 3600	/* seconds after the last failure */

struct penalty_entry {
	uint8_t key[9];		/* family byte, then 4 or 8 address bytes */
	unsigned failures;	/* 0: the slot is free */
	time_t last;
};

struct penalty_table {
	pthread_mutex_t lock;
	struct penalty_entry slots[PENALTY_SLOTS];
};

void penalty_init(struct penalty_table *t);

/* Failures remembered for this client (0 for none, an expired entry or
 * an address that does not parse). */
unsigned penalty_get(struct penalty_table *t, const char *ip, time_t now);
/* Counts one more failure for this client. Returns the new count. */
unsigned penalty_add(struct penalty_table *t, const char *ip, time_t now);
/* Forgets the client's failures (after a successful login). */
void penalty_clear(struct penalty_table *t, const char *ip);

/* The same count for a login name, whatever the address: how many
 * failures one account has had lately (penalty_add_name returns it). */
unsigned penalty_add_name(struct penalty_table *t, const char *name, time_t now);
void penalty_clear_name(struct penalty_table *t, const char *name);

/* The wait before an attempt after `failures` failures: base_ms doubled
 * for each failure after the first, at most max_ms; 0 for none. */
long penalty_delay_ms(unsigned failures, long base_ms, long max_ms);

#endif
