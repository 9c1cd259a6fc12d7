/* pop3_lock.h - the POP3 maildrop lock and the login interval.
 *
 * RFC 1939 gives a POP3 session exclusive access to its maildrop, so
 * that message numbers and deletions stay consistent. youjud is one
 * process, so the lock is a set of account ids in memory, guarded by a
 * mutex: it only excludes other POP3 sessions (IMAP keeps working on the
 * same INBOX), and it cannot outlive the process. A session releases it
 * when it ends, however it ends.
 *
 * The same table remembers when each account last logged in, for the
 * LOGIN-DELAY policy (RFC 2449).
 *
 * All functions are thread-safe.
 */
#ifndef YJ_POP3_LOCK_H
#define YJ_POP3_LOCK_H

#include <stdint.h>
#include <time.h>

/* How long a login waits for the session holding its maildrop to end. */
#define POP3_LOCK_WAIT_MS 2000

/* Takes the lock of an account's maildrop, waiting up to wait_ms for
 * a session that holds it to end. Returns 1 if taken, 0 if another
 * session still holds it. */
int pop3_lock_acquire(int64_t account_id, long wait_ms);
/* Releases a lock this session took. */
void pop3_lock_release(int64_t account_id);

/* Records a login of the account at now, unless the previous recorded
 * login was less than min_interval seconds before. Returns 1 if
 * recorded (always when min_interval is 0), 0 if too soon; *wait_r
 * is then the number of seconds still to wait. */
int pop3_login_interval_check(int64_t account_id, long min_interval, time_t now,
			      long *wait_r);

#endif
