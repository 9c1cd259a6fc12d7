/* pop3_session.h - the state of one POP3 session, shared by the files of
 * the POP3 server (private to src/pop3/).
 *
 *   pop3_server.c    the session loop, dispatch, CAPA, STLS, QUIT
 *   pop3_auth.c      AUTHORIZATION: USER, PASS, AUTH and the login
 *   pop3_maildrop.c  TRANSACTION and UPDATE: the snapshot of the INBOX
 *
 * Command handlers return 1 to go on reading commands, 0 to end the
 * session (QUIT, too many failures, a broken connection).
 */
#ifndef YJ_POP3_SESSION_H
#define YJ_POP3_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "base/err.h"
#include "net/session.h"
#include "pop3/pop3_parse.h"
#include "store/store.h"

/* Messages beyond this many in an INBOX are not shown: the oldest ones
 * are, and once the client has taken those the next session sees more. */
#define POP3_MAILDROP_MAX 1000000
/* Unknown or malformed commands in a row before the session is closed. */
#define POP3_BAD_COMMANDS_MAX 20

enum pop3_state {
	POP3_STATE_AUTHORIZATION,
	POP3_STATE_TRANSACTION,
};

/* One message of the snapshot taken at login; its number is its index
 * plus one. The rest (blob, prefix) is read from the store when sent. */
struct pop3_msg {
	uint32_t uid;
	bool deleted;			/* DELE'd in this session */
	bool retrieved;			/* RETR'd in this session */
	uint64_t size;			/* octets as sent, before dot-stuffing */
};

struct pop3_session {
	struct session_ctx *ctx;
	const struct config *cfg;
	struct conn *conn;
	enum pop3_state state;
	bool quit;			/* QUIT was given: apply deletions */
	struct auth_client auth;	/* failures counted, delays, the log line */
	unsigned bad_commands;

	struct store *store;		/* borrowed per command (store_borrow) */
	char user[STORE_ADDRESS_MAX + 1];	/* from USER, until PASS */
	bool have_user;

	/* TRANSACTION state */
	struct store_account account;
	bool locked;
	int64_t mailbox_id;
	uint32_t uidvalidity;
	struct pop3_msg *msgs;
	size_t n_msgs, cap_msgs;
	unsigned n_retr, n_top, n_dele;
	const char *method;		/* "USER", "PLAIN", "LOGIN" for the log */
	const char *end_reason;		/* why the session ended, for the log */
};

/* Queues one reply line; CRLF is added. */
void pop3_reply(struct pop3_session *p, const char *fmt, ...) YJ_PRINTF(2, 3);

/* Is a cleartext password allowed on this connection now? */
bool pop3_passwords_allowed(const struct pop3_session *p);

/* Releases the maildrop lock (the store's, then the process's). */
void pop3_drop_maildrop(struct pop3_session *p, int64_t account_id);

/* AUTHORIZATION commands, in pop3_auth.c. */
int pop3_cmd_user(struct pop3_session *p, const struct pop3_cmd *cmd);
int pop3_cmd_pass(struct pop3_session *p, const struct pop3_cmd *cmd);
int pop3_cmd_auth(struct pop3_session *p, const struct pop3_cmd *cmd);

/* TRANSACTION commands, in pop3_maildrop.c. */
int pop3_cmd_stat(struct pop3_session *p, const struct pop3_cmd *cmd);
int pop3_cmd_list(struct pop3_session *p, const struct pop3_cmd *cmd);
int pop3_cmd_uidl(struct pop3_session *p, const struct pop3_cmd *cmd);
int pop3_cmd_retr(struct pop3_session *p, const struct pop3_cmd *cmd);
int pop3_cmd_top(struct pop3_session *p, const struct pop3_cmd *cmd);
int pop3_cmd_dele(struct pop3_session *p, const struct pop3_cmd *cmd);
int pop3_cmd_rset(struct pop3_session *p, const struct pop3_cmd *cmd);
int pop3_cmd_noop(struct pop3_session *p, const struct pop3_cmd *cmd);

/* Takes the snapshot of the account's INBOX. Returns 1, or -1 with
 * err set (a store failure). */
int pop3_maildrop_load(struct pop3_session *p, struct yj_err *err) YJ_MUST_CHECK;
/* The UPDATE state: marks what was retrieved and stays \Seen, then
 * expunges what was deleted (and, with EXPIRE 0, what was retrieved).
 * Returns the number of messages removed, or -1. */
long pop3_maildrop_update(struct pop3_session *p, struct yj_err *err);
/* Frees the snapshot. */
void pop3_maildrop_free(struct pop3_session *p);

#endif
