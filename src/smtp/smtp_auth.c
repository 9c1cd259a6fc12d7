/* smtp_auth.c - the AUTH command (RFC 4954) for roles that offer it
 * (submission): the SASL exchange of auth/sasl_server.h in SMTP's "334"
 * framing, and the login check of auth/auth.h, the same as POP3's.
 *
 * Replies: 235 on success, 535 5.7.8 for wrong credentials, 454 4.7.0
 * for a temporary failure, 501 for a cancelled or undecodable exchange,
 * 504 for an unknown mechanism, 538 5.7.11 when a password would cross
 * an unencrypted connection, 503 out of sequence.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/sasl_server.h"
#include "base/log.h"
#include "smtp/smtp_session.h"

/* Mechanism names are at most 20 characters (RFC 4422). */
#define SMTP_MECH_MAX 20

bool
smtp_auth_allowed(const struct smtp_session *s)
{
	return s->role->auth_offered &&
	       (!s->cfg->disable_plaintext_auth || session_is_secure(s->ctx));
}

static int
smtp_sasl_send(void *arg, const char *b64)
{
	struct smtp_session *s = arg;

	smtp_reply_uncounted(s, "334 %s", b64);
	return !s->conn->failed;
}

static int
smtp_sasl_read(void *arg, char *buf, size_t size)
{
	struct smtp_session *s = arg;

	return conn_read_secret_line(s->conn, buf, size);
}

/* Splits "MECH [initial-response]". Returns false if malformed. */
static bool
smtp_auth_parse(const char *arg, char *mech, const char **initial_r)
{
	size_t n = strcspn(arg, " ");

	if (n == 0 || n > SMTP_MECH_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		mech[i] = (char)toupper((unsigned char)arg[i]);
	mech[n] = '\0';
	*initial_r = NULL;
	if (arg[n] == ' ') {
		*initial_r = arg + n + 1;
		if ((*initial_r)[0] == '\0' || strchr(*initial_r, ' ') != NULL)
			return false;
	}
	return true;
}

static bool
smtp_auth_sleep(void *arg, long ms)
{
	struct smtp_session *s = arg;

	(void)conn_flush(s->conn);
	return stop_sleep(s->ctx->stop, ms);
}

/* Answers a login that did not succeed, as auth_verify() judged it. */
static void
smtp_auth_refused(struct smtp_session *s, enum auth_result res)
{
	switch (res) {
	case AUTH_FAILED:
		smtp_reply(s, "535 5.7.8 Error: authentication failed");
		break;
	case AUTH_FAILED_LAST:
		smtp_reply(s, "535 5.7.8 Error: authentication failed");
		smtp_reply(s, "421 4.7.0 %s Error: too many failed logins", s->cfg->myhostname);
		s->done = true;
		break;
	case AUTH_STOPPING:
		smtp_reply(s, "421 4.3.2 %s Service shutting down", s->cfg->myhostname);
		s->done = true;
		break;
	case AUTH_TEMPFAIL:
	case AUTH_OK:
	default:
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		break;
	}
}

/* Checks the credentials the exchange produced, and answers. */
static void
smtp_auth_check(struct smtp_session *s, const char *user, const char *password,
		const char *method)
{
	struct store_account acct;
	enum auth_result res = AUTH_TEMPFAIL;

	if (smtp_store(s) > 0)
		res = auth_verify(&s->auth, s->st, user, password, method, &acct);
	if (res == AUTH_OK) {
		s->authenticated = true;
		session_set_authenticated(s->ctx);	/* past the pre-auth limit */
		s->trusted = true;	/* a logged-in client may relay */
		snprintf(s->login, sizeof(s->login), "%s", acct.address);
		explicit_bzero(&acct, sizeof(acct));
		log_info("smtp: session=%s login user=%s method=%s client=%s tls=%s", s->ctx->id,
			 s->login, method, s->conn->peer_ip, conn_is_tls(s->conn) ? "yes" : "no");
		smtp_reply(s, "235 2.7.0 Authentication successful");
		return;
	}
	smtp_auth_refused(s, res);
}

/* Runs the exchange and answers whatever it ended with. */
static void
smtp_auth_exchange(struct smtp_session *s, enum sasl_mech mech, const char *initial,
		   const char *method)
{
	const struct sasl_io io = { s, smtp_sasl_send, smtp_sasl_read };
	struct sasl_server sasl;

	switch (sasl_exchange(&sasl, mech, initial, &io)) {
	case SASL_DONE:
		smtp_auth_check(s, sasl.authcid, sasl.passwd, method);
		break;
	case SASL_CANCELLED:
		smtp_reply(s, "501 5.7.0 Authentication aborted");
		break;
	case SASL_MALFORMED:
		smtp_reply(s, "501 5.5.2 Error: cannot decode response");
		break;
	case SASL_BAD_CREDS:
		smtp_auth_refused(s, auth_fail(&s->auth, sasl.authcid, method));
		break;
	case SASL_GONE:
	case SASL_CONTINUE:
	default:
		smtp_say_goodbye(s, "AUTH");
		s->done = true;
		break;
	}
	sasl_server_clear(&sasl);
}

void
smtp_cmd_auth(struct smtp_session *s, const char *arg)
{
	char mech_name[SMTP_MECH_MAX + 1];
	const char *initial;
	enum sasl_mech mech;

	if (!s->role->auth_offered) {
		smtp_reply(s, "503 5.5.1 Error: authentication not enabled on this port");
		return;
	}
	if (!smtp_auth_allowed(s)) {
		smtp_reply(s, "538 5.7.11 Encryption required for requested authentication "
			      "mechanism");
		return;
	}
	if (s->authenticated || s->tx != NULL) {
		smtp_reply(s, "503 5.5.1 Error: %s", s->authenticated ? "already authenticated"
								 : "AUTH not allowed in a mail transaction");
		return;
	}
	if (!smtp_auth_parse(arg, mech_name, &initial)) {
		smtp_reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
		return;
	}
	if (sasl_mech_lookup(mech_name, &mech) == 0) {
		smtp_reply(s, "504 5.5.4 Error: unsupported authentication mechanism");
		return;
	}
	smtp_auth_exchange(s, mech, initial, mech == SASL_MECH_PLAIN ? "PLAIN" : "LOGIN");
}

void
smtp_auth_init(struct smtp_session *s)
{
	s->auth = (struct auth_client){ .cfg = s->cfg, .proto = "smtp", .session_id = s->ctx->id,
					.ip = s->conn->peer_ip, .sleep = smtp_auth_sleep,
					.sleep_arg = s };
}
