/* smtp_server.c - the SMTP server session (RFC 5321): the roles, the
 * command table, greeting, EHLO, the envelope commands and the MX
 * recipient policy. Message data is received in smtp_receive.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "auth/sasl_server.h"
#include "base/idna.h"
#include "base/log.h"
#include "base/util.h"
#include "deliver/resolve.h"
#include "net/dns.h"
#include "net/listen.h"
#include "smtp/smtp.h"
#include "smtp/smtp_session.h"

static void
smtp_vreply(struct smtp_session *s, bool counted, const char *fmt, va_list ap)
{
	char line[1024], value[LOG_VALUE_MAX];

	(void)conn_vwrite_line(s->conn, line, sizeof(line), fmt, ap);
	if (counted && line[0] >= '4' && line[0] <= '5' && strncmp(line, "421", 3) != 0)
		s->errors++;
	/* Replies quote client addresses. */
	log_debug("smtp: session=%s reply=%s", s->ctx->id, log_value(value, sizeof(value), line));
}

void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	smtp_vreply(s, true, fmt, ap);
	va_end(ap);
}

void
smtp_reply_uncounted(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	smtp_vreply(s, false, fmt, ap);
	va_end(ap);
}

int
smtp_store(struct smtp_session *s)
{
	struct yj_err err;

	if (s->st != NULL)
		return 1;
	if (store_open(s->cfg->data_dir, &s->st, &err) < 0) {
		log_error("smtp: session=%s store: %s", s->ctx->id, err.msg);
		return -1;
	}
	return 1;
}

void
smtp_tx_reset(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	conn_transfer_end(s->conn);
	if (tx == NULL)
		return;
	if (tx->blob_open)
		store_blob_abort(tx->blob);
	free(tx->blob);
	buf_free(&tx->kept);
	free(tx->targets);
	free(tx->relay);
	free(tx->unknown);
	free(tx->notices);
	smtp_ma_free(tx->ma);
	free(tx->relay_dsn);
	free(tx);
	s->tx = NULL;
}

void
smtp_say_goodbye(struct smtp_session *s, const char *during)
{
	const char *why = "lost connection";

	if (s->conn->timed_out) {
		why = s->conn->failed ? "write timeout" : "timeout";
		smtp_reply(s, "421 4.4.2 %s Error: timeout exceeded", s->cfg->myhostname);
	} else if (stop_requested(s->ctx->stop)) {
		why = "shutdown";
		smtp_reply(s, "421 4.3.2 %s Service shutting down", s->cfg->myhostname);
	}
	if (during != NULL)
		log_info("smtp: session=%s id=%s %s during %s", s->ctx->id,
			 s->tx != NULL ? s->tx->id : "", why, during);
	else
		log_info("smtp: session=%s client=%s %s", s->ctx->id, s->conn->peer_ip, why);
}

/* ---- EHLO / HELO ---- */

/* The EHLO reply: our name, then the role's keywords in this order. */
static void
smtp_ehlo_reply(struct smtp_session *s)
{
	static const struct { unsigned cap; const char *text; } keywords[] = {
		{ SMTP_CAP_PIPELINING, "PIPELINING" },
		{ SMTP_CAP_SIZE, NULL },
		{ SMTP_CAP_STARTTLS, "STARTTLS" },
		{ SMTP_CAP_ENHANCEDSTATUSCODES, "ENHANCEDSTATUSCODES" },
		{ SMTP_CAP_8BITMIME, "8BITMIME" },
		{ SMTP_CAP_SMTPUTF8, "SMTPUTF8" },
		{ SMTP_CAP_CHUNKING, "CHUNKING" },
	};
	const char *lines[sizeof(keywords) / sizeof(keywords[0]) + 2];
	char size[32];
	size_t n = 0;

	lines[n++] = s->cfg->myhostname;
	snprintf(size, sizeof(size), "SIZE %ld", s->cfg->message_size_limit);
	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		if ((s->role->caps & keywords[i].cap) == 0)
			continue;
		if (keywords[i].cap == SMTP_CAP_STARTTLS &&
		    (s->ctx->tls == NULL || conn_is_tls(s->conn)))
			continue;
		lines[n++] = keywords[i].cap == SMTP_CAP_SIZE ? size : keywords[i].text;
	}
	if (smtp_auth_allowed(s))
		lines[n++] = "AUTH " SASL_MECHS;
	for (size_t i = 0; i < n; i++)
		smtp_reply(s, "250%c%s", i + 1 < n ? '-' : ' ', lines[i]);
}

static void
smtp_cmd_helo(struct smtp_session *s, const char *arg, bool esmtp)
{
	const char *error;
	const struct config *cfg = s->cfg;

	if (smtp_helo_check(arg, &error) < 0) {
		smtp_reply(s, "%s", error);
		return;
	}
	/* Cut short, a name could end inside a UTF-8 sequence in Received:. */
	if (strlen(arg) >= sizeof(s->helo)) {
		smtp_reply(s, "501 5.5.4 Error: %s name too long", esmtp ? "EHLO" : "HELO");
		return;
	}
	smtp_tx_reset(s);
	snprintf(s->helo, sizeof(s->helo), "%s", arg);
	s->helo_mode = esmtp ? SMTP_HELO_ESMTP : SMTP_HELO_SMTP;
	if (!esmtp) {
		smtp_reply(s, "250 %s", cfg->myhostname);
		return;
	}
	smtp_ehlo_reply(s);
}

static void
smtp_cmd_starttls(struct smtp_session *s, const char *arg)
{
	struct yj_err err;

	if (arg[0] != '\0') {
		smtp_reply(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	/* Not where EHLO does not offer it: the sendmail socket is local. */
	if ((s->role->caps & SMTP_CAP_STARTTLS) == 0 || s->ctx->tls == NULL ||
	    conn_is_tls(s->conn)) {
		smtp_reply(s, "503 5.5.1 Error: STARTTLS not available");
		return;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	if (conn_tls_accept(s->conn, s->ctx->tls, &err) < 0) {
		log_info("smtp: session=%s client=%s starttls failed: %s", s->ctx->id,
			 s->conn->peer_ip, err.msg);
		s->done = true;
		return;
	}
	/* RFC 3207: forget everything learnt before the handshake. */
	smtp_tx_reset(s);
	if (s->authenticated) {
		s->authenticated = false;
		s->trusted = false;
		s->login[0] = '\0';
	}
	s->helo_mode = SMTP_HELO_NONE;
	s->helo[0] = '\0';
}

/* ---- MAIL / RCPT ---- */

/* Is there room in the data dir for a message of this size (-1: not
 * declared) plus queue_minfree? Saying 452 now is kinder than failing
 * at the end of DATA. */
static bool
smtp_space_for(const struct smtp_session *s, long long size)
{
	unsigned long long need = (unsigned long long)s->cfg->queue_minfree;
	struct statvfs fs;

	if (size > 0)
		need += (unsigned long long)size;
	if (need == 0 || statvfs(s->cfg->data_dir, &fs) < 0)
		return true;
	return (unsigned long long)fs.f_bavail * fs.f_frsize >= need;
}

/* Parses MAIL's argument into the transaction and applies the policy.
 * Returns NULL if it is accepted, else the reply. */
static const char *
smtp_mail_check(struct smtp_session *s, const char *arg)
{
	struct smtp_tx *tx = s->tx;
	const char *error;

	if (smtp_mail_parse(arg, &tx->mail, &error) < 0)
		return error;
	if (tx->mail.body == SMTP_BODY_BINARYMIME)
		return "555 5.5.4 BODY=BINARYMIME is not supported";
	if (tx->mail.size >= 0 && tx->mail.size > s->cfg->message_size_limit)
		return "552 5.3.4 Message size exceeds fixed limit";
	if (!smtp_space_for(s, tx->mail.size))
		return "452 4.3.1 Insufficient system storage";
	if (!tx->mail.path.null_path &&
	    smtp_path_format(&tx->mail.path, tx->sender, sizeof(tx->sender)) < 0)
		return "501 5.1.7 Bad sender address syntax";
	return NULL;
}

/* Submission: MAIL FROM must be the login's own (the null sender is
 * left alone: it is how a client sends a delivery report). Returns true,
 * or false having replied. */
static bool
smtp_mail_owner_ok(struct smtp_session *s)
{
	char sender[LOG_VALUE_MAX];
	int ret;

	if (s->tx->sender[0] == '\0')
		return true;
	ret = smtp_submit_sender_ok(s, s->tx->sender);
	if (ret > 0)
		return true;
	if (ret < 0) {
		smtp_reply(s, "451 4.3.0 Error: temporary lookup failure");
		return false;
	}
	log_info("smtp: session=%s user=%s sender=<%s> result=rejected: not owned by user",
		 s->ctx->id, s->login, log_value(sender, sizeof(sender), s->tx->sender));
	smtp_reply(s, "553 5.7.1 <%s>: Sender address rejected: not owned by user %s",
		   s->tx->sender, s->login);
	return false;
}

static void
smtp_cmd_mail(struct smtp_session *s, const char *arg)
{
	const char *error;

	if (s->role->auth_required && !s->authenticated) {
		smtp_reply(s, "530 5.7.0 Authentication required");
		return;
	}
	if (s->tx != NULL) {
		smtp_reply(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	s->tx = calloc(1, sizeof(*s->tx));
	if (s->tx == NULL)
		log_fatal("out of memory");
	error = smtp_mail_check(s, arg);
	if (error != NULL) {
		/* Nothing of a refused MAIL may linger into the next one. */
		smtp_tx_reset(s);
		smtp_reply(s, "%s", error);
		return;
	}
	if (s->role->submission && !smtp_mail_owner_ok(s)) {
		smtp_tx_reset(s);
		return;
	}
	session_set_authenticated(s->ctx);	/* past the pre-auth limit */
	util_random_id(s->tx->id, 12);
	if (smtp_ma_mail(s) == 0) {
		smtp_tx_reset(s);
		return;
	}
	smtp_reply(s, "250 2.1.0 Ok");
}

/* Adds the resolved mailboxes of one recipient to the transaction. */
static void
smtp_tx_add_targets(struct smtp_tx *tx, const struct resolve_result *r)
{
	for (size_t i = 0; i < r->n_local; i++) {
		bool dup = false;

		for (size_t k = 0; k < tx->n_targets && !dup; k++)
			dup = tx->targets[k].account_id == r->local[i].account_id;
		if (dup)
			continue;
		if (tx->n_targets == tx->cap_targets) {
			tx->cap_targets = tx->cap_targets * 2 + 8;
			tx->targets = realloc(tx->targets, tx->cap_targets * sizeof(*tx->targets));
			if (tx->targets == NULL)
				log_fatal("out of memory");
		}
		tx->targets[tx->n_targets].account_id = r->local[i].account_id;
		memcpy(tx->targets[tx->n_targets].address, r->local[i].address,
		       sizeof(r->local[i].address));
		tx->n_targets++;
	}
}

/* A remote recipient, with the NOTIFY it is sent with. */
static void
smtp_tx_add_relay(struct smtp_tx *tx, const char *address, const char *notify)
{
	for (size_t k = 0; k < tx->n_relay; k++) {
		if (strcmp(tx->relay[k], address) == 0)
			return;
	}
	if (tx->n_relay == tx->cap_relay) {
		tx->cap_relay = tx->cap_relay * 2 + 8;
		tx->relay = realloc(tx->relay, tx->cap_relay * sizeof(*tx->relay));
		tx->relay_dsn = realloc(tx->relay_dsn, tx->cap_relay * sizeof(*tx->relay_dsn));
		if (tx->relay == NULL || tx->relay_dsn == NULL)
			log_fatal("out of memory");
	}
	/* An alias's remote targets keep the RCPT's ORCPT. */
	snprintf(tx->relay_dsn[tx->n_relay].notify, sizeof(tx->relay_dsn[0].notify), "%s",
		 notify);
	snprintf(tx->relay_dsn[tx->n_relay].orcpt, sizeof(tx->relay_dsn[0].orcpt), "%s",
		 tx->rcpt != NULL ? tx->rcpt->orcpt : "");
	snprintf(tx->relay[tx->n_relay++], sizeof(tx->relay[0]), "%s", address);
}

static void
smtp_tx_add_notice(struct smtp_tx *tx, const char *address, bool expanded)
{
	struct smtp_notice *n;

	if (tx->n_notices == tx->cap_notices) {
		tx->cap_notices = tx->cap_notices * 2 + 4;
		tx->notices = realloc(tx->notices, tx->cap_notices * sizeof(*tx->notices));
		if (tx->notices == NULL)
			log_fatal("out of memory");
	}
	n = &tx->notices[tx->n_notices++];
	snprintf(n->rcpt, sizeof(n->rcpt), "%s", address);
	snprintf(n->orcpt, sizeof(n->orcpt), "%s", tx->rcpt != NULL ? tx->rcpt->orcpt : "");
	n->expanded = expanded;
}

/* NOTIFY=SUCCESS on a recipient that ends here (RFC 3461 5.2.7): one
 * mailbox means a "delivered" report; an alias with several targets an
 * "expanded" one, and its targets that leave get the NOTIFY without
 * SUCCESS, so that the sender hears of success once. An alias with one
 * remote target is a forward: that target keeps NOTIFY whole, and the
 * report comes from further on (or "relayed", from the queue). Returns
 * the NOTIFY (the RCPT's, notify) for the targets that leave. */
static const char *
smtp_rcpt_success(struct smtp_session *s, const struct resolve_result *r, const char *address,
		  const char *notify)
{
	size_t n = r->n_local + r->n_remote + r->n_unknown;

	/* stored in a fixed order, SUCCESS first (smtp_parse.c) */
	if (strncmp(notify, "SUCCESS", 7) != 0 || s->tx->sender[0] == '\0' || n == 0)
		return notify;
	if (n == 1 && r->n_local == 1)
		smtp_tx_add_notice(s->tx, address, false);
	if (n == 1)
		return notify;
	smtp_tx_add_notice(s->tx, address, true);
	return notify[7] == ',' ? notify + 8 : "NEVER";
}

/* Is one of the recipient's mailboxes at or over its storage quota? 1
 * yes, 0 no, -1 the store failed. */
static int
smtp_rcpt_full(struct smtp_session *s, const struct resolve_result *r)
{
	struct yj_err err;
	int ret = 0;

	for (size_t i = 0; i < r->n_local && ret == 0; i++) {
		ret = store_quota_full(s->st, r->local[i].account_id, &err);
		if (ret < 0)
			log_error("smtp: session=%s quota: %s", s->ctx->id, err.msg);
	}
	return ret;
}

/* An alias's target in one of our domains without such a user: the
 * message is bounced to the sender for it. */
static void
smtp_tx_add_unknown(struct smtp_tx *tx, const char *address)
{
	for (size_t k = 0; k < tx->n_unknown; k++) {
		if (strcmp(tx->unknown[k], address) == 0)
			return;
	}
	if (tx->n_unknown == tx->cap_unknown) {
		tx->cap_unknown = tx->cap_unknown * 2 + 4;
		tx->unknown = realloc(tx->unknown, tx->cap_unknown * sizeof(*tx->unknown));
		if (tx->unknown == NULL)
			log_fatal("out of memory");
	}
	snprintf(tx->unknown[tx->n_unknown++], sizeof(tx->unknown[0]), "%s", address);
}

/* Decides one recipient: local mailbox, relay for trusted clients, or no.
 * The domain is looked up in its A-label form (RFC 5890). */
static void
smtp_rcpt_decide(struct smtp_session *s, const struct smtp_path *path, const char *address)
{
	struct resolve_result r = { 0 };
	const char *local = path->postmaster ? "postmaster" : path->local;
	char domain[SMTP_DOMAIN_MAX + 1];
	int full;

	if (idna_to_ascii(path->postmaster ? s->cfg->mydomain : path->domain, domain,
			  sizeof(domain)) < 0) {
		smtp_reply(s, "553 5.1.3 <%s>: Recipient address rejected: invalid IDN domain",
			   address);
		return;
	}
	if (smtp_store(s) < 0) {
		smtp_reply(s, "451 4.3.0 <%s>: Temporary lookup failure", address);
		return;
	}
	if (resolve_rcpt(s->st, s->cfg, local, domain, &r) < 0) {
		smtp_reply(s, "451 4.3.0 <%s>: Temporary lookup failure", address);
	} else if (r.status == RESOLVE_OK && (full = smtp_rcpt_full(s, &r)) != 0) {
		/* RFC 3463 4.2.2; temporary, so the mail comes back once the
		 * user has made room (RFC 5321 4.5.3.1.10). */
		if (full < 0)
			smtp_reply(s, "451 4.3.0 <%s>: Temporary lookup failure", address);
		else
			smtp_reply(s, "452 4.2.2 <%s>: Recipient address rejected: Mailbox full",
				   address);
	} else if (r.status == RESOLVE_NOT_LOCAL && !s->trusted) {
		smtp_reply(s, "554 5.7.1 <%s>: Relay access denied", address);
	} else if (r.status == RESOLVE_UNKNOWN) {
		smtp_reply(s, "550 5.1.1 <%s>: Recipient address rejected: User unknown",
			   address);
	} else if (r.status == RESOLVE_LIMIT) {
		/* Accepting part of the list would lose the rest. */
		smtp_reply(s, "451 4.6.0 <%s>: Recipient address rejected: Alias expansion error",
			   address);
	} else {
		const char *notify = s->tx->rcpt != NULL ? s->tx->rcpt->notify : "";

		if (r.status == RESOLVE_OK)
			notify = smtp_rcpt_success(s, &r, address, notify);
		if (r.status == RESOLVE_NOT_LOCAL)
			smtp_tx_add_relay(s->tx, address, notify);
		smtp_tx_add_targets(s->tx, &r);
		for (size_t i = 0; i < r.n_remote; i++)
			smtp_tx_add_relay(s->tx, r.remote[i], notify);
		if (r.n_remote > 0 && s->tx->forward_domain[0] == '\0')
			snprintf(s->tx->forward_domain, sizeof(s->tx->forward_domain), "%s", domain);
		for (size_t i = 0; i < r.n_unknown; i++)
			smtp_tx_add_unknown(s->tx, r.unknown[i]);
		if (s->tx->n_rcpt++ == 0)
			snprintf(s->tx->first_rcpt, sizeof(s->tx->first_rcpt), "%s", address);
		smtp_reply(s, "250 2.1.5 Ok");
	}
	resolve_result_free(&r);
}

/* A recipient past smtpd_recipient_limit gets 452, and the client sends
 * the rest later (RFC 5321 4.5.3.1.10); DATA still goes to those it has.
 * Only well past the limit does each one count as an error, so a client
 * that pipelines a long list does not lose its session, and with it the
 * recipients already accepted. */
static void
smtp_rcpt_over_limit(struct smtp_session *s)
{
	if (++s->tx->n_rcpt_over > (size_t)s->cfg->smtpd_recipient_overshoot_limit)
		smtp_reply(s, "452 4.5.3 Error: too many recipients");
	else
		smtp_reply_uncounted(s, "452 4.5.3 Error: too many recipients");
}

static void
smtp_cmd_rcpt(struct smtp_session *s, const char *arg)
{
	struct smtp_rcpt_args rcpt;
	char address[STORE_ADDRESS_MAX + 1];
	const char *error;

	if (s->tx == NULL) {
		smtp_reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->tx->bdat) {
		smtp_reply(s, "503 5.5.1 Error: RCPT after BDAT");
		return;
	}
	if (smtp_rcpt_parse(arg, s->tx->mail.smtputf8, &rcpt, &error) < 0) {
		smtp_reply(s, "%s", error);
		return;
	}
	if (s->tx->n_rcpt >= (size_t)s->cfg->smtpd_recipient_limit) {
		smtp_rcpt_over_limit(s);
		return;
	}
	if (rcpt.path.postmaster)
		snprintf(address, sizeof(address), "postmaster@%s", s->cfg->mydomain);
	else if (smtp_path_format(&rcpt.path, address, sizeof(address)) < 0) {
		smtp_reply(s, "501 5.1.3 Bad recipient address syntax");
		return;
	}
	s->tx->rcpt = &rcpt;
	s->role->rcpt(s, &rcpt.path, address);
	s->tx->rcpt = NULL;
}

/* ---- the small commands ---- */

static void
smtp_cmd_vrfy(struct smtp_session *s, const char *arg)
{
	if (arg[0] == '\0') {
		smtp_reply(s, "501 5.5.4 Syntax: VRFY address");
		return;
	}
	/* Saying whether a user exists would help address harvesters. */
	smtp_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message for delivery");
}

static void
smtp_cmd_ehlo(struct smtp_session *s, const char *arg)
{
	smtp_cmd_helo(s, arg, true);
}

static void
smtp_cmd_helo_only(struct smtp_session *s, const char *arg)
{
	smtp_cmd_helo(s, arg, false);
}

static void
smtp_cmd_rset(struct smtp_session *s, const char *arg)
{
	smtp_tx_reset(s);
	smtp_reply(s, "250 2.0.0 Ok");
}

static void
smtp_cmd_noop(struct smtp_session *s, const char *arg)
{
	smtp_reply(s, "250 2.0.0 Ok");
}

static void
smtp_cmd_quit(struct smtp_session *s, const char *arg)
{
	smtp_reply(s, "221 2.0.0 Bye");
	s->done = true;
}

static void
smtp_cmd_help(struct smtp_session *s, const char *arg)
{
	smtp_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP "
		      "QUIT HELP VRFY STARTTLS; see RFC 5321");
}

static void
smtp_cmd_expn(struct smtp_session *s, const char *arg)
{
	smtp_reply(s, "502 5.5.1 Error: EXPN is not available");
}

static void
smtp_cmd_unknown(struct smtp_session *s, const char *arg)
{
	smtp_reply(s, "500 5.5.2 Error: command not recognized");
}

/* Command flags. */
#define SMTP_CMD_NEEDS_HELO 0x1u	/* refused before HELO/EHLO */
#define SMTP_CMD_JUNK 0x2u		/* counts towards smtpd_junk_command_limit */

struct smtp_command {
	void (*run)(struct smtp_session *s, const char *arg);
	unsigned flags;
};

/* Every verb the parser knows; SMTP_CMD_UNKNOWN answers the rest. */
static const struct smtp_command smtp_commands[] = {
	[SMTP_CMD_UNKNOWN] = { smtp_cmd_unknown, 0 },
	[SMTP_CMD_EHLO] = { smtp_cmd_ehlo, 0 },
	[SMTP_CMD_HELO] = { smtp_cmd_helo_only, 0 },
	[SMTP_CMD_STARTTLS] = { smtp_cmd_starttls, 0 },
	[SMTP_CMD_MAIL] = { smtp_cmd_mail, SMTP_CMD_NEEDS_HELO },
	[SMTP_CMD_RCPT] = { smtp_cmd_rcpt, 0 },
	[SMTP_CMD_DATA] = { smtp_cmd_data, 0 },
	[SMTP_CMD_BDAT] = { smtp_cmd_bdat, 0 },
	[SMTP_CMD_RSET] = { smtp_cmd_rset, SMTP_CMD_JUNK },
	[SMTP_CMD_NOOP] = { smtp_cmd_noop, SMTP_CMD_JUNK },
	[SMTP_CMD_QUIT] = { smtp_cmd_quit, 0 },
	[SMTP_CMD_HELP] = { smtp_cmd_help, SMTP_CMD_JUNK },
	[SMTP_CMD_VRFY] = { smtp_cmd_vrfy, SMTP_CMD_JUNK },
	[SMTP_CMD_EXPN] = { smtp_cmd_expn, SMTP_CMD_JUNK },
	[SMTP_CMD_AUTH] = { smtp_cmd_auth, SMTP_CMD_NEEDS_HELO },
};

static void
smtp_cmd_dispatch(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	const struct smtp_command *c = &smtp_commands[SMTP_CMD_UNKNOWN];

	if ((size_t)cmd->verb < sizeof(smtp_commands) / sizeof(smtp_commands[0]) &&
	    smtp_commands[cmd->verb].run != NULL)
		c = &smtp_commands[cmd->verb];
	if ((c->flags & SMTP_CMD_NEEDS_HELO) && s->helo_mode == SMTP_HELO_NONE) {
		smtp_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	/* As Postfix's smtpd_junk_command_limit: a few are normal, a flood
	 * of them is a client wasting a slot, and each one past the limit
	 * counts as an error. */
	if ((c->flags & SMTP_CMD_JUNK) && ++s->junk > (unsigned)s->cfg->smtpd_junk_command_limit)
		s->errors++;
	c->run(s, cmd->arg);
}

/* ---- roles ---- */

/* Inbound mail from other servers, port 25. */
static const struct smtp_role smtp_role_mx = {
	.name = "mx",
	.caps = SMTP_CAP_PIPELINING | SMTP_CAP_SIZE | SMTP_CAP_STARTTLS |
		SMTP_CAP_ENHANCEDSTATUSCODES | SMTP_CAP_8BITMIME | SMTP_CAP_SMTPUTF8 |
		SMTP_CAP_CHUNKING,
	.auth_offered = false,
	.auth_required = false,
	.greet_checks = true,
	.rcpt = smtp_rcpt_decide,
	.after_data = smtp_deliver,
};

/* Mail from the server's own users' clients, ports 587 and 465: only
 * after a login, which also allows relaying; the sender must be the
 * login's own, and the header gets an MSA's fix-ups (smtp_submit.c);
 * DKIM signing happens at the end of the data (smtp_mailauth.c). */
static const struct smtp_role smtp_role_submission = {
	.name = "submission",
	.caps = SMTP_CAP_PIPELINING | SMTP_CAP_SIZE | SMTP_CAP_STARTTLS |
		SMTP_CAP_ENHANCEDSTATUSCODES | SMTP_CAP_8BITMIME | SMTP_CAP_SMTPUTF8 |
		SMTP_CAP_CHUNKING,
	.auth_offered = true,
	.auth_required = true,
	.greet_checks = false,
	.submission = true,
	.rcpt = smtp_rcpt_decide,
	.after_data = smtp_submit_deliver,
};

/* `youju sendmail` on the local socket: the user is known from the
 * socket, so no AUTH; otherwise as submission. */
static const struct smtp_role smtp_role_local = {
	.name = "sendmail",
	.caps = SMTP_CAP_PIPELINING | SMTP_CAP_ENHANCEDSTATUSCODES | SMTP_CAP_8BITMIME |
		SMTP_CAP_SMTPUTF8,
	.auth_offered = false,
	.auth_required = false,
	.greet_checks = false,
	.submission = true,
	.local = true,
	.rcpt = smtp_rcpt_decide,
	.after_data = smtp_submit_deliver,
};

/* The role a listener serves. */
static const struct smtp_role *
smtp_role_for(enum listener_kind kind)
{
	if (kind == LISTENER_SUBMISSION || kind == LISTENER_SUBMISSIONS)
		return &smtp_role_submission;
	if (kind == LISTENER_SENDMAIL)
		return &smtp_role_local;
	return &smtp_role_mx;
}

/* ---- the session ---- */

/* The MX checks at connect: the client's verified reverse name (for
 * Received: and logs) and whether it is in mynetworks (may relay). */
static void
smtp_greet_checks(struct smtp_session *s)
{
	struct yj_err err;
	int ret;

	if (s->cfg->smtpd_peername_lookup) {
		s->ptr_status = dns_ptr(s->conn->peer_ip, s->client_name, sizeof(s->client_name));
		if (s->ptr_status <= 0)
			snprintf(s->client_name, sizeof(s->client_name), "unknown");
	}
	ret = cidr_list_match(s->cfg->mynetworks, s->conn->peer_ip, &err);
	if (ret < 0)
		log_error("smtp: mynetworks: %s", err.msg);
	s->trusted = ret > 0;
}

static void
smtp_session_greet(struct smtp_session *s)
{
	s->conn->timeout_ms = (int)(s->cfg->smtpd_timeout * 1000);
	snprintf(s->client_name, sizeof(s->client_name), "unknown");
	if (s->role->greet_checks)
		smtp_greet_checks(s);
	if (s->role->local && smtp_submit_local_login(s) < 0) {
		log_warn("smtp: session=%s sendmail socket: unknown peer", s->ctx->id);
		smtp_reply(s, "421 4.7.0 %s Error: cannot tell who you are", s->cfg->myhostname);
		s->done = true;
		return;
	}
	log_info("smtp: session=%s client=%s[%s] role=%s trusted=%s", s->ctx->id,
		 s->client_name, s->conn->peer_ip, s->role->name, s->trusted ? "yes" : "no");
	if (s->role->local)	/* youju sendmail learns its sender here */
		smtp_reply(s, "220 %s youju sendmail <%s>", s->cfg->myhostname, s->login);
	else
		smtp_reply(s, "220 %s", s->cfg->smtpd_banner);
}

/* Reads and handles one command line. */
static void
smtp_session_step(struct smtp_session *s)
{
	char value[LOG_VALUE_MAX];
	struct smtp_cmd cmd;
	const char *error;
	size_t len;
	int ret;

	ret = conn_read_line(s->conn, s->line, s->line_size, (size_t)s->cfg->line_length_limit,
			     &len);
	if (ret == 0) {
		smtp_say_goodbye(s, NULL);
		s->done = true;
		return;
	}
	if (ret < 0) {
		smtp_reply(s, "500 5.5.2 Error: line too long");
		return;
	}
	if (smtp_cmd_parse(s->line, len, &cmd, &error) < 0) {
		smtp_reply(s, "%s", error);
		return;
	}
	log_debug("smtp: session=%s command=%s", s->ctx->id,
		  log_value(value, sizeof(value), cmd.name));
	smtp_cmd_dispatch(s, &cmd);
}

static int
smtp_session_start(struct session_ctx *ctx)
{
	struct smtp_session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		log_fatal("out of memory");
	ctx->state = s;
	s->ctx = ctx;
	s->conn = ctx->conn;
	s->cfg = ctx->cfg;
	s->role = smtp_role_for(ctx->kind);
	smtp_auth_init(s);
	s->line_size = (size_t)s->cfg->line_length_limit + 3;
	smtp_session_greet(s);
	return !s->conn->failed && !s->done;
}

static int
smtp_session_next(struct session_ctx *ctx)
{
	struct smtp_session *s = ctx->state;

	/* The line buffer lives only as long as one command: a session that
	 * waits, parked, for its next command holds none. */
	s->line = malloc(s->line_size);
	if (s->line == NULL)
		log_fatal("out of memory");
	smtp_session_step(s);
	/* The line may have held a password (AUTH's initial response), and
	 * so may the input buffer it was read from. */
	explicit_bzero(s->line, s->line_size);
	conn_forget_input(s->conn);
	free(s->line);
	s->line = NULL;
	if (s->errors >= (unsigned)s->cfg->smtpd_hard_error_limit && !s->done) {
		smtp_reply(s, "421 4.7.0 %s Error: too many errors", s->cfg->myhostname);
		log_info("smtp: session=%s client=%s too many errors", ctx->id, s->conn->peer_ip);
		s->done = true;
	}
	return !s->done && !s->conn->failed;
}

static void
smtp_session_end(struct session_ctx *ctx)
{
	struct smtp_session *s = ctx->state;

	if (s == NULL)
		return;
	/* The last reply goes out when the conn is closed, which waits only
	 * a moment for a client that stopped reading. */
	smtp_tx_reset(s);
	store_close(&s->st);
	free(s);
	ctx->state = NULL;
}

const struct session_proto smtp_proto = {
	.name = "smtp",
	.start = smtp_session_start,
	.step = smtp_session_next,
	.end = smtp_session_end,
};
