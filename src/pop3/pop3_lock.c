#include "pop3/pop3_lock.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "base/block.h"
#include "base/log.h"
#include "base/util.h"

/* One account that is locked now or logged in recently. Entries that
 * are neither are dropped, so the table holds at most the concurrent
 * sessions plus the logins of the last pop3_login_delay seconds. */
struct pop3_lock_entry {
	int64_t account_id;
	bool locked;
	time_t last_login;		/* 0: none remembered */
	long interval;			/* the delay in force at that login */
};

static pthread_mutex_t pop3_lock_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pop3_lock_released = PTHREAD_COND_INITIALIZER;
static struct pop3_lock_entry *pop3_lock_entries;
static size_t pop3_lock_count, pop3_lock_cap;

/* Caller holds the mutex. */
static struct pop3_lock_entry *
pop3_lock_find(int64_t account_id)
{
	for (size_t i = 0; i < pop3_lock_count; i++) {
		if (pop3_lock_entries[i].account_id == account_id)
			return &pop3_lock_entries[i];
	}
	return NULL;
}

/* Caller holds the mutex. Allocation failure is fatal, as for buf. */
static struct pop3_lock_entry *
pop3_lock_add(int64_t account_id)
{
	if (pop3_lock_count == pop3_lock_cap) {
		size_t cap = pop3_lock_cap == 0 ? 16 : pop3_lock_cap * 2;
		void *p = realloc(pop3_lock_entries, cap * sizeof(*pop3_lock_entries));
		if (p == NULL)
			log_fatal("pop3: out of memory for maildrop locks");
		pop3_lock_entries = p;
		pop3_lock_cap = cap;
	}
	pop3_lock_entries[pop3_lock_count] = (struct pop3_lock_entry){ .account_id = account_id };
	return &pop3_lock_entries[pop3_lock_count++];
}

static bool
pop3_lock_needed(const struct pop3_lock_entry *e, time_t now)
{
	return e->locked ||
	       (e->last_login != 0 && now >= e->last_login && now - e->last_login < e->interval);
}

/* Caller holds the mutex. Drops the entries that no longer matter; the
 * table is small, so a full sweep per login or logout is cheap. */
static void
pop3_lock_sweep(time_t now)
{
	size_t i = 0;

	while (i < pop3_lock_count) {
		if (pop3_lock_needed(&pop3_lock_entries[i], now))
			i++;
		else
			pop3_lock_entries[i] = pop3_lock_entries[--pop3_lock_count];
	}
}

int
pop3_lock_acquire(int64_t account_id, long wait_ms)
{
	struct pop3_lock_entry *e;
	struct timespec until;
	int ret = 1;

	util_deadline(&until, CLOCK_REALTIME, wait_ms);
	block_begin();
	pthread_mutex_lock(&pop3_lock_mutex);
	/* Looked up again after each wait: a release may sweep the entry. */
	while ((e = pop3_lock_find(account_id)) != NULL && e->locked) {
		if (pthread_cond_timedwait(&pop3_lock_released, &pop3_lock_mutex, &until) != 0) {
			ret = 0;
			break;
		}
	}
	if (ret == 1) {
		if (e == NULL)
			e = pop3_lock_add(account_id);
		e->locked = true;
	}
	pthread_mutex_unlock(&pop3_lock_mutex);
	block_end();
	return ret;
}

void
pop3_lock_release(int64_t account_id)
{
	struct pop3_lock_entry *e;

	pthread_mutex_lock(&pop3_lock_mutex);
	e = pop3_lock_find(account_id);
	if (e != NULL)
		e->locked = false;
	pop3_lock_sweep(time(NULL));
	pthread_cond_broadcast(&pop3_lock_released);
	pthread_mutex_unlock(&pop3_lock_mutex);
}

int
pop3_login_interval_check(int64_t account_id, long min_interval, time_t now,
			  long *wait_r)
{
	struct pop3_lock_entry *e;
	int ret = 1;

	*wait_r = 0;
	if (min_interval <= 0)
		return 1;
	pthread_mutex_lock(&pop3_lock_mutex);
	e = pop3_lock_find(account_id);
	if (e == NULL)
		e = pop3_lock_add(account_id);
	if (e->last_login != 0 && now >= e->last_login &&
	    now - e->last_login < min_interval) {
		*wait_r = (long)(min_interval - (now - e->last_login));
		ret = 0;
	} else {
		e->last_login = now;
		e->interval = min_interval;
	}
	pop3_lock_sweep(now);
	pthread_mutex_unlock(&pop3_lock_mutex);
	return ret;
}
