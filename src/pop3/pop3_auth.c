/* pop3_auth.c - the AUTHORIZATION state: USER/PASS (RFC 1939), AUTH with
 * PLAIN and LOGIN (RFC 5034), and what a successful login does: take the
 * maildrop lock, honour LOGIN-DELAY and load the snapshot.
 *
 * Response codes (RFC 2449, 3206): [AUTH] for wrong credentials and for
 * passwords refused on an insecure connection, [SYS/TEMP] when the store
 * failed, [IN-USE] when another POP3 session holds the maildrop,
 * [LOGIN-DELAY] when the last login was too recent.
 */
#include "pop3/pop3_session.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/sasl_server.h"
#include "base/log.h"
#include "pop3/pop3_lock.h"

static int
pop3_plaintext_refused(struct pop3_session *p)
{
	pop3_reply(p, "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
		      "(SSL/TLS) connections");
	return 1;
}

/* Answers a failed login, as auth_verify() or auth_fail() judged it. */
static int
pop3_auth_reply(struct pop3_session *p, enum auth_result res)
{
	switch (res) {
	case AUTH_FAILED:
		pop3_reply(p, "-ERR [AUTH] Authentication failed");
		return 1;
	case AUTH_FAILED_LAST:
		pop3_reply(p, "-ERR [AUTH] Authentication failed; too many failures, "
			      "disconnecting");
		return 0;
	case AUTH_STOPPING:
		pop3_reply(p, "-ERR [SYS/TEMP] Server shutting down");
		return 0;
	case AUTH_TEMPFAIL:
	case AUTH_OK:
	default:
		pop3_reply(p, "-ERR [SYS/TEMP] Temporary authentication failure");
		return 1;
	}
}

/* Takes the maildrop lock: this process's table, then the store's, which
 * on a shared database excludes the sessions of every other node. */
static bool
pop3_take_maildrop(struct pop3_session *p, const struct store_account *acct)
{
	struct yj_err err;
	int ret = 0;

	/* A client that reconnects at once after its connection dropped
	 * finds its old session still ending: a moment's wait spares it
	 * an [IN-USE]. */
	if (pop3_lock_acquire(acct->id, POP3_LOCK_WAIT_MS)) {
		ret = store_maildrop_lock(p->store, acct->id, &err);
		if (ret != 1)
			pop3_lock_release(acct->id);
	}
	if (ret < 0) {
		log_error("pop3: session=%s user=%s maildrop lock: %s", p->ctx->id, acct->address,
			  err.msg);
		pop3_reply(p, "-ERR [SYS/TEMP] The maildrop cannot be locked; try again later");
		return false;
	}
	if (ret == 0) {
		log_info("pop3: session=%s login refused user=%s reason=in-use", p->ctx->id,
			 acct->address);
		pop3_reply(p, "-ERR [IN-USE] Mailbox is locked by another POP3 session");
		return false;
	}
	return true;
}

void
pop3_drop_maildrop(struct pop3_session *p, int64_t account_id)
{
	store_maildrop_unlock(p->store, account_id);
	pop3_lock_release(account_id);
}

/* The credentials were right: take the maildrop. A failure here leaves
 * the session in AUTHORIZATION, so the client may try again. */
static int
pop3_login_finish(struct pop3_session *p, const struct store_account *acct,
		  const char *method)
{
	struct yj_err err;
	long wait;

	if (!pop3_take_maildrop(p, acct))
		return 1;
	if (!pop3_login_interval_check(acct->id, p->cfg->pop3_login_delay, time(NULL), &wait)) {
		pop3_drop_maildrop(p, acct->id);
		log_info("pop3: session=%s login refused user=%s reason=login-delay", p->ctx->id,
			 acct->address);
		pop3_reply(p, "-ERR [LOGIN-DELAY] Logins are allowed every %ld seconds; "
			      "try again in %ld", p->cfg->pop3_login_delay, wait);
		return 1;
	}
	p->account = *acct;
	p->locked = true;
	if (pop3_maildrop_load(p, &err) < 0) {
		log_error("pop3: session=%s user=%s maildrop: %s", p->ctx->id, acct->address,
			  err.msg);
		pop3_drop_maildrop(p, acct->id);
		p->locked = false;
		pop3_reply(p, "-ERR [SYS/TEMP] The maildrop cannot be opened; try again later");
		return 1;
	}
	p->state = POP3_STATE_TRANSACTION;
	session_set_authenticated(p->ctx);	/* past the pre-auth limit */
	p->method = method;
	log_info("pop3: session=%s login user=%s method=%s client=%s tls=%s messages=%zu",
		 p->ctx->id, acct->address, method, p->conn->peer_ip,
		 conn_is_tls(p->conn) ? "yes" : "no", p->n_msgs);
	pop3_reply(p, "+OK Logged in, %zu message%s", p->n_msgs, p->n_msgs == 1 ? "" : "s");
	return 1;
}

/* Checks a user and password, whichever command carried them. */
static int
pop3_login(struct pop3_session *p, const char *user, const char *password, const char *method)
{
	struct store_account acct;
	enum auth_result res;
	int ret;

	if (!store_borrow(p->cfg->data_dir, &p->store, "pop3", p->ctx->id)) {
		pop3_reply(p, "-ERR [SYS/TEMP] Temporary authentication failure");
		return 1;
	}
	res = auth_verify(&p->auth, p->store, user, password, method, &acct);
	if (res != AUTH_OK)
		return pop3_auth_reply(p, res);
	ret = pop3_login_finish(p, &acct, method);
	explicit_bzero(&acct, sizeof(acct));
	return ret;
}

int
pop3_cmd_user(struct pop3_session *p, const struct pop3_cmd *cmd)
{
	if (!pop3_passwords_allowed(p))
		return pop3_plaintext_refused(p);
	if (strlen(cmd->arg) > STORE_ADDRESS_MAX) {
		pop3_reply(p, "-ERR User name too long");
		return 1;
	}
	snprintf(p->user, sizeof(p->user), "%s", cmd->arg);
	p->have_user = true;
	/* The same answer for every name: it must not tell who exists. */
	pop3_reply(p, "+OK Send your password");
	return 1;
}

int
pop3_cmd_pass(struct pop3_session *p, const struct pop3_cmd *cmd)
{
	int ret;

	if (!pop3_passwords_allowed(p))
		return pop3_plaintext_refused(p);
	if (!p->have_user) {
		pop3_reply(p, "-ERR No user name given: send USER first");
		return 1;
	}
	/* RFC 1939: PASS answers the USER right before it, and only once. */
	p->have_user = false;
	ret = pop3_login(p, p->user, cmd->arg, "USER");
	explicit_bzero(p->user, sizeof(p->user));
	return ret;
}

static int
pop3_sasl_send(void *arg, const char *b64)
{
	struct pop3_session *p = arg;

	pop3_reply(p, "+ %s", b64);
	return !p->conn->failed;
}

/* Read straight into the SASL server's buffer, which it wipes, as the
 * IMAP and SMTP paths do: no other copy of the response is left. */
static int
pop3_sasl_read(void *arg, char *buf, size_t size)
{
	struct pop3_session *p = arg;
	const char *b64;
	int ret;

	/* POP3's own limit for the line (with its line end), not the SASL
	 * server's larger buffer. */
	if (size > POP3_AUTH_LINE_MAX + 1)
		size = POP3_AUTH_LINE_MAX + 1;
	ret = conn_read_secret_line(p->conn, buf, size);
	/* 0 from the parse is the client's "*", which the SASL server
	 * reads itself. */
	if (ret > 0 && pop3_auth_line_parse(buf, strlen(buf), &b64) < 0) {
		explicit_bzero(buf, size);
		ret = -1;
	}
	return ret;
}

/* Runs one SASL exchange and the login it leads to. */
static int
pop3_auth_sasl(struct pop3_session *p, enum sasl_mech mech, const char *initial,
	       const char *method)
{
	const struct sasl_io io = { p, pop3_sasl_send, pop3_sasl_read };
	struct sasl_server sasl;
	int ret = 1;

	switch (sasl_exchange(&sasl, mech, initial, &io)) {
	case SASL_DONE:
		ret = pop3_login(p, sasl.authcid, sasl.passwd, method);
		break;
	case SASL_CANCELLED:
		pop3_reply(p, "-ERR Authentication cancelled");
		break;
	case SASL_MALFORMED:
		pop3_reply(p, "-ERR Invalid base64 data in the response");
		ret = ++p->bad_commands < POP3_BAD_COMMANDS_MAX;
		break;
	case SASL_BAD_CREDS:
		ret = pop3_auth_reply(p, auth_fail(&p->auth, sasl.authcid, method));
		break;
	case SASL_GONE:
	case SASL_CONTINUE:
	default:
		ret = 0;
		break;
	}
	sasl_server_clear(&sasl);
	return ret;
}

int
pop3_cmd_auth(struct pop3_session *p, const struct pop3_cmd *cmd)
{
	enum sasl_mech mech;

	if (!pop3_passwords_allowed(p))
		return pop3_plaintext_refused(p);
	if (cmd->arg[0] == '\0') {
		/* Not in RFC 5034, but older clients ask this way. */
		pop3_reply(p, "+OK Mechanisms follow");
		pop3_reply(p, "PLAIN");
		pop3_reply(p, "LOGIN");
		pop3_reply(p, ".");
		return 1;
	}
	/* USER then AUTH: the USER is forgotten. */
	p->have_user = false;
	if (sasl_mech_lookup(cmd->arg, &mech) == 0) {
		pop3_reply(p, "-ERR Unsupported authentication mechanism");
		return 1;
	}
	return pop3_auth_sasl(p, mech, cmd->initial, cmd->arg);
}
