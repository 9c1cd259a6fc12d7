/* auth.h - checking a login, the same way for every protocol and
 * mechanism (POP3, SMTP AUTH, IMAP LOGIN and AUTHENTICATE):
 *
 * - a client address with recent failures waits before its attempt is
 *   even checked, longer after each failure (penalty.h), across sessions;
 * - at most auth_hash_limit password hashes run at once (sized at the
 *   first attempt; 0 means twice the CPUs): yescrypt takes 16 MiB each,
 *   so a flood of logins must queue for a slot, not take memory; a wait
 *   longer than AUTH_HASH_WAIT_MS is a temporary failure;
 * - a login whose password was verified within auth_cache_ttl (same
 *   account, same stored hash, same password) skips the hash
 *   (auth_cache.h); the account is still looked up each time;
 * - each failure is counted, logged once in the fail2ban line, and
 *   answered only after auth_failure_delay;
 * - after auth_max_failures in one session, the session must end.
 */
#ifndef YJ_AUTH_H
#define YJ_AUTH_H

#include <stdbool.h>

#include "base/config.h"
#include "store/store.h"

/* How long an attempt waits for a free hashing slot before it gets a
 * temporary failure. */
#define AUTH_HASH_WAIT_MS 20000

/* One protocol session's side of authentication. */
struct auth_client {
	const struct config *cfg;
	const char *proto;		/* "pop3", for the log line */
	const char *session_id;
	const char *ip;			/* the client's address, textual */
	/* Sleeps ms milliseconds; returns false early if the server is
	 * stopping. (The stop token is the protocol's to give.) */
	bool (*sleep)(void *arg, long ms);
	void *sleep_arg;
	unsigned failures;		/* in this session */
};

enum auth_result {
	AUTH_OK,		/* acct_r is filled */
	AUTH_FAILED,		/* wrong credentials; the client may try again */
	AUTH_FAILED_LAST,	/* wrong, and too many: say so and disconnect */
	AUTH_TEMPFAIL,		/* store failure or no hashing slot: try later */
	AUTH_STOPPING,		/* the server is stopping: say so and end */
};

/* Checks user (a full address; a bare local part is tried in
 * cfg->mydomain) and password. method names the mechanism in the log
 * ("USER", "PLAIN", "LOGIN"). Unknown users and wrong passwords get the
 * same answer and take the same time. */
enum auth_result auth_verify(struct auth_client *ac, struct store *st, const char *user,
			     const char *password, const char *method,
			     struct store_account *acct_r);

/* A failure found before any password check (an unusable SASL message):
 * counted, delayed and logged as auth_verify() would. */
enum auth_result auth_fail(struct auth_client *ac, const char *user, const char *method);

#endif
