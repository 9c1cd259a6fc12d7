#include "auth/auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth_cache.h"
#include "auth/password.h"
#include "auth/penalty.h"
#include "base/block.h"
#include "base/log.h"
#include "base/util.h"

/* A hash of a random string, made once: a login for an unknown user
 * still pays for one hash, so timing does not tell which users exist. */
static char auth_dummy_hash[STORE_HASH_MAX + 1];
static pthread_once_t auth_dummy_once = PTHREAD_ONCE_INIT;

/* The hashing slots: a counting semaphore with a timed wait. */
static pthread_mutex_t auth_hash_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t auth_hash_free = PTHREAD_COND_INITIALIZER;
static long auth_hash_slots;		/* 0 until the first attempt sizes them */
static long auth_hash_busy;

static struct penalty_table auth_penalty;
static pthread_once_t auth_penalty_once = PTHREAD_ONCE_INIT;

static struct auth_cache auth_cache;
static pthread_once_t auth_cache_once = PTHREAD_ONCE_INIT;

static void
auth_dummy_init(void)
{
	char random[33];

	util_random_id(random, 32);
	if (password_hash(random, auth_dummy_hash, sizeof(auth_dummy_hash), NULL) < 0)
		auth_dummy_hash[0] = '\0';
}

static void
auth_penalty_init(void)
{
	penalty_init(&auth_penalty);
}

static void
auth_cache_setup(void)
{
	if (!auth_cache_init(&auth_cache))
		log_warn("auth: no random key for the login cache; every login is hashed");
}

/* The number of slots for a configured limit: 0 means 2 x CPUs, which
 * keeps every core busy without queueing memory behind them. */
static long
auth_slots_for(long limit)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	return limit > 0 ? limit : 2 * (cpus > 0 ? cpus : 1);
}

/* Takes a hashing slot, waiting up to AUTH_HASH_WAIT_MS. */
static bool
auth_hash_enter(long limit)
{
	struct timespec deadline;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += AUTH_HASH_WAIT_MS / 1000;
	pthread_mutex_lock(&auth_hash_lock);
	if (auth_hash_slots == 0)
		auth_hash_slots = auth_slots_for(limit);
	while (auth_hash_busy >= auth_hash_slots) {
		if (pthread_cond_timedwait(&auth_hash_free, &auth_hash_lock, &deadline) == ETIMEDOUT)
			break;
	}
	ok = auth_hash_busy < auth_hash_slots;
	if (ok)
		auth_hash_busy++;
	pthread_mutex_unlock(&auth_hash_lock);
	return ok;
}

static void
auth_hash_leave(void)
{
	pthread_mutex_lock(&auth_hash_lock);
	auth_hash_busy--;
	pthread_cond_signal(&auth_hash_free);
	pthread_mutex_unlock(&auth_hash_lock);
}

/* The account's address for a login name. Returns false if too long. */
static bool
auth_address(const char *user, const char *default_domain, char *out, size_t outlen)
{
	int n;

	if (strchr(user, '@') != NULL)
		n = snprintf(out, outlen, "%s", user);
	else
		n = snprintf(out, outlen, "%s@%s", user, default_domain);
	if (n < 0 || (size_t)n >= outlen)
		return false;
	util_ascii_lower(out);
	return true;
}

/* Was this account's password checked lately (auth_cache_ttl)? Only an
 * account that was found gets here: an unknown user always pays for the
 * dummy hash. */
static bool
auth_cache_hit(const struct config *cfg, const struct store_account *acct, const char *password)
{
	struct auth_cache_login login = { acct->id, acct->address, acct->password_hash, password };

	if (cfg->auth_cache_ttl <= 0)
		return false;
	pthread_once(&auth_cache_once, auth_cache_setup);
	return auth_cache_check(&auth_cache, &login, time(NULL), cfg->auth_cache_ttl);
}

/* Remembers a password just verified for this account. */
static void
auth_cache_remember(const struct config *cfg, const struct store_account *acct,
		    const char *password)
{
	struct auth_cache_login login = { acct->id, acct->address, acct->password_hash, password };

	if (cfg->auth_cache_ttl <= 0)
		return;
	pthread_once(&auth_cache_once, auth_cache_setup);
	auth_cache_add(&auth_cache, &login, time(NULL));
}

/* Looks the account up and checks the password, in a hashing slot, or
 * finds it checked lately. Returns 1, 0 (wrong user or password) or -1 (store or slot failure). */
static int
auth_check(const struct config *cfg, struct store *st, const char *user,
	   const char *password, struct store_account *acct_r)
{
	char address[STORE_ADDRESS_MAX + 1];
	const char *hash;
	bool ok;
	int ret;

	if (!auth_address(user, cfg->mydomain, address, sizeof(address)))
		address[0] = '\0';
	ret = address[0] != '\0' ? store_account_lookup(st, address, acct_r) : 0;
	if (ret < 0)
		return -1;
	if (ret == 0) {
		pthread_once(&auth_dummy_once, auth_dummy_init);
		hash = auth_dummy_hash;
	} else {
		hash = acct_r->password_hash;
	}
	if (ret > 0 && auth_cache_hit(cfg, acct_r, password))
		return 1;
	/* Hashing has slots of its own: waiting for one, and the hash,
	 * leave the session's run slot to other sessions (base/block.h). */
	block_begin();
	if (!auth_hash_enter(cfg->auth_hash_limit)) {
		block_end();
		return -1;
	}
	ok = password_verify(password, hash);
	auth_hash_leave();
	block_end();
	if (ret > 0 && ok)
		auth_cache_remember(cfg, acct_r, password);
	return ret > 0 && ok ? 1 : 0;
}

static bool
auth_sleep(struct auth_client *ac, long ms)
{
	if (ms <= 0)
		return true;
	return ac->sleep(ac->sleep_arg, ms);
}

enum auth_result
auth_fail(struct auth_client *ac, const char *user, const char *method)
{
	char name[256];
	unsigned remembered, account;
	long account_max = ac->cfg->auth_account_max_failures;

	pthread_once(&auth_penalty_once, auth_penalty_init);
	ac->failures++;
	remembered = penalty_add(&auth_penalty, ac->ip, time(NULL));
	account = penalty_add_name(&auth_penalty, user, time(NULL));
	log_value(name, sizeof(name), user);
	/* The fail2ban line. The user name goes through log_value(), so it
	 * cannot end its field or fake the client's. */
	log_info("%s: session=%s auth failed user=%s method=%s client=%s failures=%u "
		 "account=%u remembered=%u", ac->proto, ac->session_id, name, method, ac->ip,
		 ac->failures, account, remembered);
	if (!auth_sleep(ac, ac->cfg->auth_failure_delay * 1000))
		return AUTH_STOPPING;
	/* Guessing one account from many addresses ends each session at
	 * its first failure once the account has had too many lately. */
	if (ac->failures >= (unsigned long)ac->cfg->auth_max_failures ||
	    (account_max > 0 && account >= (unsigned long)account_max))
		return AUTH_FAILED_LAST;
	return AUTH_FAILED;
}

enum auth_result
auth_verify(struct auth_client *ac, struct store *st, const char *user, const char *password,
	    const char *method, struct store_account *acct_r)
{
	long wait;
	int ret;

	pthread_once(&auth_penalty_once, auth_penalty_init);
	/* Earlier failures from this address: wait before even checking,
	 * so a right guess is not told any sooner than a wrong one. */
	wait = penalty_delay_ms(penalty_get(&auth_penalty, ac->ip, time(NULL)),
				ac->cfg->auth_failure_delay * 1000,
				ac->cfg->auth_penalty_max * 1000);
	if (!auth_sleep(ac, wait))
		return AUTH_STOPPING;
	ret = auth_check(ac->cfg, st, user, password, acct_r);
	if (ret < 0) {
		log_error("auth: session=%s proto=%s temporary failure (store, or no free "
			  "hashing slot)", ac->session_id, ac->proto);
		return AUTH_TEMPFAIL;
	}
	if (ret == 0)
		return auth_fail(ac, user, method);
	penalty_clear(&auth_penalty, ac->ip);
	penalty_clear_name(&auth_penalty, user);
	return AUTH_OK;
}
