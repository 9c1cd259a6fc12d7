#include "auth/auth.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "auth/password.h"
#include "base/util.h"

/* A hash of a random string, made once: a login for an unknown user
 * still pays for one hash, so timing does not tell which users exist. */
static char auth_dummy_hash[STORE_HASH_MAX + 1];
static pthread_once_t auth_dummy_once = PTHREAD_ONCE_INIT;

static void
auth_dummy_init(void)
{
	char random[33];

	util_random_id(random, 32);
	if (password_hash(random, auth_dummy_hash, sizeof(auth_dummy_hash), NULL) < 0)
		auth_dummy_hash[0] = '\0';
}

int
auth_login(struct store *st, const char *default_domain, const char *user,
	   const char *password, struct store_account *acct_r)
{
	char address[STORE_ADDRESS_MAX + 1];
	int ret;

	if (strchr(user, '@') != NULL)
		ret = snprintf(address, sizeof(address), "%s", user);
	else
		ret = snprintf(address, sizeof(address), "%s@%s", user, default_domain);
	if (ret < 0 || (size_t)ret >= sizeof(address))
		return 0;
	util_ascii_lower(address);
	ret = store_account_lookup(st, address, acct_r);
	if (ret < 0)
		return -1;
	if (ret == 0) {
		pthread_once(&auth_dummy_once, auth_dummy_init);
		(void)password_verify(password, auth_dummy_hash);
		return 0;
	}
	return password_verify(password, acct_r->password_hash) ? 1 : 0;
}
