/* auth.h - checking a login against the accounts in the store. */
#ifndef YJ_AUTH_H
#define YJ_AUTH_H

#include "store/store.h"

/* Looks the user up (a full address; a bare local part is tried in
 * default_domain) and checks the password. Returns 1 with acct_r filled,
 * 0 for a wrong user or password (the same answer for both), -1 if the
 * store failed (a temporary error). */
int auth_login(struct store *st, const char *default_domain, const char *user,
	       const char *password, struct store_account *acct_r);

#endif
