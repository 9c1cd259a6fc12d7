/* smtp_submit.c - what the submission role does beyond the MX role: the
 * logged-in account may send only as itself, an alias delivering to it
 * alone, an alias it owns or an address its sender rules allow (MAIL
 * FROM and the one From: address), and the message gets the fields an MSA adds (RFC 6409 8:
 * Date:, Message-ID:; Bcc: removed), through the header filter. */
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/idna.h"
#include "base/log.h"
#include "base/util.h"
#include "deliver/resolve.h"
#include "mime/mime_addr.h"
#include "smtp/smtp_session.h"

/* The one account an address delivers to: 1 with *id_r, 0 if it is not
 * exactly one local account, -1 if the store failed. */
static int
smtp_submit_owner(struct smtp_session *s, const char *address, int64_t *id_r)
{
	const char *at = strrchr(address, '@');
	char local[STORE_ADDRESS_MAX + 1], domain[256];
	struct resolve_result r = { 0 };
	int ret;

	if (at == NULL || at == address || (size_t)(at - address) >= sizeof(local) ||
	    idna_to_ascii(at + 1, domain, sizeof(domain)) < 0)
		return 0;
	memcpy(local, address, (size_t)(at - address));
	local[at - address] = '\0';
	if (smtp_store(s) < 0 || resolve_rcpt(s->st, s->cfg, local, domain, &r) < 0)
		return -1;
	ret = r.status == RESOLVE_OK && r.n_local == 1 && r.n_remote == 0;
	if (ret)
		*id_r = r.local[0].account_id;
	resolve_result_free(&r);
	return ret;
}

/* The account's sender rules and owned aliases (youju account senders,
 * youju alias owner): 1 allowed, 0 not, -1 store failure. */
static int
smtp_submit_rules(struct smtp_session *s, int64_t login_id, const char *address)
{
	const char *at = strrchr(address, '@');
	char ascii[STORE_ADDRESS_MAX + 1], domain[256];
	struct yj_err err;
	int ret;

	if (at == NULL || idna_to_ascii(at + 1, domain, sizeof(domain)) < 0 ||
	    snprintf(ascii, sizeof(ascii), "%.*s@%s", (int)(at - address), address, domain) >=
	    (int)sizeof(ascii))
		return 0;
	ret = store_sender_allowed(s->st, login_id, ascii, &err);
	if (ret < 0)
		log_error("smtp: session=%s sender rules: %s", s->ctx->id, err.msg);
	return ret;
}

/* The account the login is, by its exact address: never through an
 * alias, so that a catch-all or an alias named like an account cannot
 * turn a local user without an account (sendmail) or a redirected
 * account into another account. 1 with *id_r, 0 none, -1 store failure. */
static int
smtp_submit_login_account(struct smtp_session *s, int64_t *id_r)
{
	struct store_account acct;
	int ret;

	if (smtp_store(s) < 0)
		return -1;
	ret = store_account_lookup(s->st, s->login, &acct);
	if (ret > 0)
		*id_r = acct.id;
	explicit_bzero(&acct, sizeof(acct));
	return ret;
}

int
smtp_submit_sender_ok(struct smtp_session *s, const char *address)
{
	int64_t login_id = 0, id = 0;
	int ret;

	if (s->any_sender || !s->cfg->smtpd_sender_login_check ||
	    strcasecmp(address, s->login) == 0)
		return 1;
	ret = smtp_submit_login_account(s, &login_id);
	if (ret <= 0)
		return ret;
	ret = smtp_submit_owner(s, address, &id);
	if (ret < 0 || (ret == 1 && id == login_id))
		return ret;
	return smtp_submit_rules(s, login_id, address);
}

/* A From: or Sender: value into out: its single mailbox, or "" when it
 * is not exactly one (a group, a list, no domain, too long). */
static void
smtp_submit_one_mailbox(const char *value, char *out, size_t outlen)
{
	struct mime_addr_list list = { NULL, 0 };
	const struct mime_addr *a;

	(void)mime_addr_parse(value, strlen(value), &list);
	a = list.n == 1 ? &list.v[0] : NULL;
	if (a == NULL || a->kind != MIME_ADDR_MAILBOX || a->mailbox.len == 0 ||
	    a->domain.len == 0 ||
	    snprintf(out, outlen, "%s@%s", a->mailbox.data, a->domain.data) >= (int)outlen)
		out[0] = '\0';
	mime_addr_list_free(&list);
}

/* Each From: value (smtp_hdrscan callback): the first one's single
 * mailbox is kept; anything else makes the header unusable. */
static void
smtp_submit_from(void *ctx, const char *value)
{
	struct smtp_tx *tx = ctx;

	smtp_submit_one_mailbox(value, tx->from_addr, sizeof(tx->from_addr));
}

/* Each Sender: value, as From: (RFC 5322 3.6.2: one mailbox). */
static void
smtp_submit_sender_field(void *ctx, const char *value)
{
	struct smtp_tx *tx = ctx;

	smtp_submit_one_mailbox(value, tx->sender_addr, sizeof(tx->sender_addr));
}

void
smtp_submit_scan_init(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	char date[64], date_field[128], msgid_field[256], from_field[STORE_ADDRESS_MAX + 16];

	util_rfc5322_date(time(NULL), date, sizeof(date));
	snprintf(date_field, sizeof(date_field), "Date: %s\r\n", date);
	snprintf(msgid_field, sizeof(msgid_field), "Message-ID: <%s@%s>\r\n", tx->id,
		 s->cfg->myhostname);
	/* Without a From:, the envelope sender (already checked) is the author. */
	if (tx->sender[0] != '\0')
		snprintf(from_field, sizeof(from_field), "From: <%s>\r\n", tx->sender);
	else
		from_field[0] = '\0';
	smtp_hdrscan_submission(&tx->scan, smtp_submit_from, date_field, msgid_field,
				from_field);
	smtp_hdrscan_sender(&tx->scan, smtp_submit_sender_field);
}

/* One author field's address (From: or Sender:) must be the login's;
 * field is the field's name, log_key the log line's name for it.
 * Returns 1, or 0 having replied. */
static int
smtp_submit_check_field(struct smtp_session *s, const char *field, const char *log_key,
			const char *address)
{
	struct smtp_tx *tx = s->tx;
	int ret = smtp_submit_sender_ok(s, address);

	if (ret < 0) {
		smtp_reply(s, "451 4.3.0 Error: temporary lookup failure");
		return 0;
	}
	if (ret == 0) {
		char addr[LOG_VALUE_MAX];

		log_info("smtp: session=%s id=%s user=%s %s=<%s> result=rejected: "
			 "not owned by user", s->ctx->id, tx->id, s->login, log_key,
			 log_value(addr, sizeof(addr), address));
		smtp_reply(s, "553 5.7.1 <%s>: %s: address not owned by user %s", address, field,
			   s->login);
		return 0;
	}
	return 1;
}

/* The author check at the end of the message: one From: field, one
 * mailbox, owned by the login (or none, and the filter added the
 * envelope sender's); at most one Sender:, owned too. Returns 1, or 0
 * having replied. */
static int
smtp_submit_check_from(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	if (s->any_sender || !s->cfg->smtpd_sender_login_check)
		return 1;
	if (tx->scan.n_sender > 1 || (tx->scan.n_sender == 1 && tx->sender_addr[0] == '\0')) {
		log_info("smtp: session=%s id=%s user=%s result=rejected: %u Sender: fields or "
			 "not one address", s->ctx->id, tx->id, s->login, tx->scan.n_sender);
		smtp_reply(s, "553 5.7.1 Error: a Sender: field must be one address");
		return 0;
	}
	if (tx->scan.n_sender == 1 &&
	    smtp_submit_check_field(s, "Sender", "header_sender", tx->sender_addr) == 0)
		return 0;
	if (tx->scan.n_from == 0 && tx->scan.add_from[0] != '\0')
		return 1;
	if (tx->scan.n_from != 1 || tx->from_addr[0] == '\0') {
		log_info("smtp: session=%s id=%s user=%s result=rejected: %u From: fields or "
			 "not one address", s->ctx->id, tx->id, s->login, tx->scan.n_from);
		smtp_reply(s, "553 5.7.1 Error: the message needs exactly one From: address");
		return 0;
	}
	return smtp_submit_check_field(s, "From", "header_from", tx->from_addr);
}

void
smtp_submit_deliver(struct smtp_session *s)
{
	if (smtp_submit_check_from(s) > 0)
		smtp_deliver(s);
}

int
smtp_submit_local_login(struct smtp_session *s)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct passwd pw, *found = NULL;
	char pwbuf[4096];

	if (getsockopt(s->conn->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    getpwuid_r(cred.uid, &pw, pwbuf, sizeof(pwbuf), &found) != 0 || found == NULL)
		return -1;
	if (snprintf(s->login, sizeof(s->login), "%s@%s", pw.pw_name, s->cfg->mydomain) >=
	    (int)sizeof(s->login))
		return -1;
	/* youjud runs as mail_owner: root and that user may send as anyone. */
	s->any_sender = cred.uid == 0 || cred.uid == geteuid();
	s->trusted = true;
	log_info("smtp: session=%s local user=%s uid=%lu", s->ctx->id, s->login,
		 (unsigned long)cred.uid);
	return 1;
}
