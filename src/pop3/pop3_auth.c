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
#include "auth/sasl.h"
#include "base/log.h"
#include "pop3/pop3_lock.h"

/* Decoded AUTH responses: a PLAIN message holds three fields. */
#define POP3_SASL_DECODED_MAX (POP3_AUTH_LINE_MAX / 4 * 3 + 1)

enum pop3_sasl_result {
	POP3_SASL_OK,
	POP3_SASL_CANCEL,		/* "*": the reply has been sent */
	POP3_SASL_BAD,			/* malformed: the reply has been sent */
	POP3_SASL_GONE,			/* the connection failed */
};

static int
pop3_plaintext_refused(struct pop3_session *p)
{
	pop3_reply(p, "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
		      "(SSL/TLS) connections");
	return 1;
}

/* Wrong user or password. The delay slows down guessing; after too many
 * failures the connection is closed. */
static int
pop3_auth_failed(struct pop3_session *p, const char *user, const char *method)
{
	char name[256];

	p->auth_failures++;
	log_value(name, sizeof(name), user);
	log_info("pop3: session=%s auth failed user=%s method=%s client=%s failures=%u",
		 p->ctx->id, name, method, p->conn->peer_ip, p->auth_failures);
	if (p->cfg->auth_failure_delay > 0) {
		(void)conn_flush(p->conn);
		if (!stop_sleep(p->ctx->stop, p->cfg->auth_failure_delay * 1000)) {
			pop3_reply(p, "-ERR [SYS/TEMP] Server shutting down");
			return 0;
		}
	}
	if (p->auth_failures >= (unsigned long)p->cfg->auth_max_failures) {
		pop3_reply(p, "-ERR [AUTH] Authentication failed; too many failures, "
			      "disconnecting");
		return 0;
	}
	pop3_reply(p, "-ERR [AUTH] Authentication failed");
	return 1;
}

static bool
pop3_store_ready(struct pop3_session *p)
{
	struct yj_err err;

	if (p->store != NULL)
		return true;
	if (store_open(p->cfg->data_dir, &p->store, &err) < 0) {
		log_error("pop3: session=%s store: %s", p->ctx->id, err.msg);
		p->store = NULL;
		return false;
	}
	return true;
}

/* The credentials were right: take the maildrop. A failure here leaves
 * the session in AUTHORIZATION, so the client may try again. */
static int
pop3_login_finish(struct pop3_session *p, const struct store_account *acct,
		  const char *method)
{
	struct yj_err err;
	long wait;

	if (!pop3_lock_acquire(acct->id)) {
		log_info("pop3: session=%s login refused user=%s reason=in-use", p->ctx->id,
			 acct->address);
		pop3_reply(p, "-ERR [IN-USE] Mailbox is locked by another POP3 session");
		return 1;
	}
	if (!pop3_login_interval_check(acct->id, p->cfg->pop3_login_delay, time(NULL), &wait)) {
		pop3_lock_release(acct->id);
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
		pop3_lock_release(acct->id);
		p->locked = false;
		pop3_reply(p, "-ERR [SYS/TEMP] The maildrop cannot be opened; try again later");
		return 1;
	}
	p->state = POP3_STATE_TRANSACTION;
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
	int ret;

	if (!pop3_store_ready(p)) {
		pop3_reply(p, "-ERR [SYS/TEMP] Temporary authentication failure");
		return 1;
	}
	ret = auth_login(p->store, p->cfg->mydomain, user, password, &acct);
	if (ret < 0) {
		log_error("pop3: session=%s auth: store failed", p->ctx->id);
		pop3_reply(p, "-ERR [SYS/TEMP] Temporary authentication failure");
		return 1;
	}
	if (ret == 0)
		return pop3_auth_failed(p, user, method);
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

/* Decodes one base64 response into out (POP3_SASL_DECODED_MAX bytes). */
static enum pop3_sasl_result
pop3_sasl_decode(struct pop3_session *p, const char *b64, unsigned char *out, size_t *len_r)
{
	long n = sasl_base64_decode(b64, strlen(b64), out, POP3_SASL_DECODED_MAX);

	if (n < 0) {
		pop3_reply(p, "-ERR Invalid base64 data in the response");
		return POP3_SASL_BAD;
	}
	*len_r = (size_t)n;
	return POP3_SASL_OK;
}

/* Sends a challenge ("+ " and base64) and reads the client's answer. */
static enum pop3_sasl_result
pop3_sasl_exchange(struct pop3_session *p, const char *challenge, unsigned char *out,
		   size_t *len_r)
{
	char line[POP3_AUTH_LINE_MAX + 1];
	enum pop3_sasl_result res;
	const char *b64;
	size_t len = 0;
	int ret;

	pop3_reply(p, "+ %s", challenge);
	ret = conn_read_line(p->conn, line, sizeof(line), POP3_AUTH_LINE_MAX, &len);
	if (ret == 0)
		return POP3_SASL_GONE;
	if (ret > 0)
		ret = pop3_auth_line_parse(line, len, &b64);
	else
		ret = -1;
	if (ret == 0) {
		pop3_reply(p, "-ERR Authentication cancelled");
		res = POP3_SASL_CANCEL;
	} else if (ret < 0) {
		pop3_reply(p, "-ERR Malformed authentication response");
		res = POP3_SASL_BAD;
	} else {
		res = pop3_sasl_decode(p, b64, out, len_r);
	}
	explicit_bzero(line, sizeof(line));
	return res;
}

/* The first response: the initial one from the AUTH line, or the answer
 * to an empty challenge. */
static enum pop3_sasl_result
pop3_sasl_first(struct pop3_session *p, const char *initial, const char *challenge,
		unsigned char *out, size_t *len_r)
{
	if (initial != NULL)
		return pop3_sasl_decode(p, initial, out, len_r);
	return pop3_sasl_exchange(p, challenge, out, len_r);
}

/* Ends an exchange that did not produce credentials. */
static int
pop3_sasl_end(struct pop3_session *p, enum pop3_sasl_result res)
{
	if (res == POP3_SASL_GONE)
		return 0;
	if (res == POP3_SASL_BAD && ++p->bad_commands >= POP3_BAD_COMMANDS_MAX)
		return 0;
	return 1;
}

/* RFC 4616: authzid NUL authcid NUL password. Logging in as someone
 * else (a different authzid) is not offered. */
static int
pop3_auth_plain(struct pop3_session *p, const char *initial)
{
	unsigned char msg[POP3_SASL_DECODED_MAX];
	char authzid[SASL_FIELD_MAX + 1], authcid[SASL_FIELD_MAX + 1];
	char passwd[SASL_FIELD_MAX + 1];
	enum pop3_sasl_result res;
	size_t len = 0;
	int ret;

	res = pop3_sasl_first(p, initial, "", msg, &len);
	if (res != POP3_SASL_OK)
		return pop3_sasl_end(p, res);
	if (sasl_plain_split(msg, len, authzid, authcid, passwd) < 0)
		ret = pop3_auth_failed(p, "", "PLAIN");
	else if (authzid[0] != '\0' && strcmp(authzid, authcid) != 0)
		ret = pop3_auth_failed(p, authcid, "PLAIN");
	else
		ret = pop3_login(p, authcid, passwd, "PLAIN");
	explicit_bzero(msg, sizeof(msg));
	explicit_bzero(passwd, sizeof(passwd));
	return ret;
}

/* Copies a decoded LOGIN field, which must be text of sane length. */
static bool
pop3_login_field(const unsigned char *in, size_t len, char *out)
{
	if (len == 0 || len > SASL_FIELD_MAX || memchr(in, '\0', len) != NULL)
		return false;
	memcpy(out, in, len);
	out[len] = '\0';
	return true;
}

/* The LOGIN mechanism: "Username:" and "Password:" challenges. */
static int
pop3_auth_login(struct pop3_session *p, const char *initial)
{
	unsigned char msg[POP3_SASL_DECODED_MAX];
	char user[SASL_FIELD_MAX + 1], passwd[SASL_FIELD_MAX + 1];
	enum pop3_sasl_result res;
	size_t len = 0;
	int ret;

	res = pop3_sasl_first(p, initial, "VXNlcm5hbWU6", msg, &len);
	if (res != POP3_SASL_OK)
		return pop3_sasl_end(p, res);
	if (!pop3_login_field(msg, len, user))
		return pop3_auth_failed(p, "", "LOGIN");
	res = pop3_sasl_exchange(p, "UGFzc3dvcmQ6", msg, &len);
	if (res != POP3_SASL_OK)
		return pop3_sasl_end(p, res);
	if (!pop3_login_field(msg, len, passwd))
		ret = pop3_auth_failed(p, user, "LOGIN");
	else
		ret = pop3_login(p, user, passwd, "LOGIN");
	explicit_bzero(msg, sizeof(msg));
	explicit_bzero(passwd, sizeof(passwd));
	return ret;
}

int
pop3_cmd_auth(struct pop3_session *p, const struct pop3_cmd *cmd)
{
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
	if (strcmp(cmd->arg, "PLAIN") == 0)
		return pop3_auth_plain(p, cmd->initial);
	if (strcmp(cmd->arg, "LOGIN") == 0)
		return pop3_auth_login(p, cmd->initial);
	pop3_reply(p, "-ERR Unsupported authentication mechanism");
	return 1;
}
