/* smtp_session.h - state of one SMTP server session, shared by the files
 * of the SMTP server (commands, message reception). Private to src/smtp. */
#ifndef YJ_SMTP_SESSION_H
#define YJ_SMTP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "net/session.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_hdrscan.h"
#include "smtp/smtp_mailauth.h"
#include "smtp/smtp_parse.h"
#include "store/store.h"

/* One mailbox that the transaction delivers to. */
struct smtp_target {
	int64_t account_id;
	char address[STORE_ADDRESS_MAX + 1];	/* for Delivered-To: */
};

/* NOTIFY and ORCPT of a remote recipient (RFC 3461), as received. */
struct smtp_relay_dsn {
	char notify[64];
	char orcpt[512];
};

/* A success report the sender asked for (NOTIFY=SUCCESS) on a recipient
 * that ends here: delivered to a mailbox, or expanded by an alias. */
struct smtp_notice {
	char rcpt[STORE_ADDRESS_MAX + 1];	/* as in RCPT TO */
	char orcpt[512];			/* its ORCPT, "" if none */
	bool expanded;
};

/* Per-transaction state: from MAIL to the end of DATA/BDAT or RSET.
 * Allocated by MAIL and freed by smtp_tx_reset(), so that a session
 * between transactions (most of its life) does not carry it. */
struct smtp_tx {
	char id[16];				/* message id in logs and Received: */
	struct smtp_mail_args mail;
	char sender[STORE_ADDRESS_MAX + 1];	/* "" for the null sender */
	size_t n_rcpt;				/* accepted RCPT commands */
	size_t n_rcpt_over;			/* RCPTs refused for the recipient limit */
	char first_rcpt[STORE_ADDRESS_MAX + 1];
	char forward_domain[SMTP_DOMAIN_MAX + 1];	/* of the first alias with
							 * remote targets, or "" */
	struct smtp_target *targets;		/* local mailboxes, no duplicates */
	size_t n_targets, cap_targets;
	char (*relay)[STORE_ADDRESS_MAX + 1];	/* remote recipients */
	struct smtp_relay_dsn *relay_dsn;	/* their DSN parameters, in step */
	size_t n_relay, cap_relay;
	char (*unknown)[STORE_ADDRESS_MAX + 1];	/* alias targets without a user: bounced */
	size_t n_unknown, cap_unknown;
	struct smtp_notice *notices;		/* success reports owed */
	size_t n_notices, cap_notices;
	const struct smtp_rcpt_args *rcpt;	/* the RCPT being decided */
	bool bdat;				/* BDAT chunks have started */
	struct smtp_crlf bdat_crlf;		/* BDAT line end state */
	struct smtp_hdrscan scan;		/* the header section filter */
	const char *loop_rcpt;			/* a target a Delivered-To: names */
	char from_addr[STORE_ADDRESS_MAX + 1];	/* submission: the From: address */
	char sender_addr[STORE_ADDRESS_MAX + 1];	/* and the Sender: address */
	bool blob_open;
	struct store_blob *blob;
	struct buf kept;			/* the blob's bytes while they fit
						 * DELIVER_KEEP_MAX (deliver.h) */
	uint64_t size;				/* message bytes received */
	bool too_big;
	bool write_failed;
	struct smtp_ma *ma;			/* mail authentication (smtp_mailauth.h) */
};

enum smtp_helo_mode { SMTP_HELO_NONE, SMTP_HELO_SMTP, SMTP_HELO_ESMTP };

struct smtp_session;

/* EHLO keywords a role may advertise. */
enum smtp_cap {
	SMTP_CAP_PIPELINING = 1u << 0,
	SMTP_CAP_SIZE = 1u << 1,
	SMTP_CAP_STARTTLS = 1u << 2,		/* while the session is not TLS yet */
	SMTP_CAP_ENHANCEDSTATUSCODES = 1u << 3,
	SMTP_CAP_8BITMIME = 1u << 4,
	SMTP_CAP_SMTPUTF8 = 1u << 5,
	SMTP_CAP_CHUNKING = 1u << 6,
};

/* What the SMTP server is on one listener: MX on port 25, submission on
 * 587 and 465. Everything that differs between them is here, so a
 * new role is a new table entry, not a copy of the server. */
struct smtp_role {
	const char *name;			/* "mx", for logs */
	unsigned caps;				/* enum smtp_cap bits for EHLO */
	bool auth_offered;			/* AUTH in EHLO, and accepted */
	bool auth_required;			/* MAIL only after a login */
	bool greet_checks;			/* reverse DNS and mynetworks at connect */
	bool submission;			/* sender checks and MSA fix-ups */
	bool local;				/* the sendmail socket: the peer's uid
						 * gives the login */
	/* Decides one well-formed recipient: adds it to the transaction and
	 * replies 250, or refuses it with its own reply. */
	void (*rcpt)(struct smtp_session *s, const struct smtp_path *path, const char *address);
	/* Runs when a message is complete and within limits: hands it on
	 * (deliver/ for MX) and replies. */
	void (*after_data)(struct smtp_session *s);
};

struct smtp_session {
	struct session_ctx *ctx;
	struct conn *conn;
	const struct config *cfg;
	const struct smtp_role *role;
	struct store *st;			/* opened at first need */
	enum smtp_helo_mode helo_mode;
	char helo[256];
	char client_name[256];			/* verified reverse DNS or "unknown" */
	int ptr_status;				/* its lookup: 1 found, 0 none, -1 failed */
	bool trusted;				/* may relay: in mynetworks (MX), or
						 * logged in (submission) */
	bool authenticated;			/* an AUTH login succeeded */
	char login[STORE_ADDRESS_MAX + 1];	/* the account logged in as */
	bool any_sender;			/* local root or mail_owner: may use
						 * any sender (sendmail -f) */
	struct auth_client auth;		/* failures counted, delays, the log line */
	unsigned errors;
	unsigned junk;				/* junk commands since the last message */
	bool done;
	unsigned n_messages;
	char *line;				/* line_length_limit + 3 bytes, during a step */
	size_t line_size;
	struct smtp_tx *tx;			/* the transaction, NULL between them
						 * (set only while MAIL is decided or
						 * once it was accepted) */
};

/* Sends one reply line (without CRLF). Replies with a code >= 400 count
 * towards smtpd_hard_error_limit. */
void smtp_reply(struct smtp_session *s, const char *fmt, ...) YJ_PRINTF(2, 3);
/* The same, for a reply that must not count as an error (a recipient
 * over the limit within smtpd_recipient_overshoot_limit, a challenge). */
void smtp_reply_uncounted(struct smtp_session *s, const char *fmt, ...) YJ_PRINTF(2, 3);

/* The client's input ended (timeout, hang-up, or youjud stopping): says
 * the matching 421 where one is due and logs why. during names the
 * command that was cut short, or is NULL between commands. */
void smtp_say_goodbye(struct smtp_session *s, const char *during);

/* Ends the transaction, if any, removing any blob that was not
 * delivered, and frees it (s->tx becomes NULL). */
void smtp_tx_reset(struct smtp_session *s);

/* Opens the session's store connection if it is not open yet. */
int smtp_store(struct smtp_session *s);

/* DATA and BDAT (smtp_receive.c). */
void smtp_cmd_data(struct smtp_session *s, const char *arg);
void smtp_cmd_bdat(struct smtp_session *s, const char *arg);
/* AUTH (smtp_auth.c). smtp_auth_init() sets up the login checks at the
 * start of a session; smtp_auth_allowed() says whether EHLO may offer
 * AUTH now (the role offers it, and the connection is secure enough). */
void smtp_auth_init(struct smtp_session *s);
bool smtp_auth_allowed(const struct smtp_session *s);
void smtp_cmd_auth(struct smtp_session *s, const char *arg);

/* The MX role's after-DATA: local mailboxes and the queue, through
 * deliver_message(), then the reply (smtp_receive.c). */
void smtp_deliver(struct smtp_session *s);

/* Submission (smtp_submit.c). smtp_submit_sender_ok: may the logged-in
 * account send as address (its own, or an alias that delivers to it
 * alone; always, without smtpd_sender_login_check)? 1 yes, 0 no, -1 the
 * store failed. smtp_submit_scan_init puts the header filter of a new
 * message in submission mode. smtp_submit_deliver is the role's
 * after-DATA: the From: check, then smtp_deliver(). */
int smtp_submit_sender_ok(struct smtp_session *s, const char *address);
/* The sendmail socket: the login is the peer's user name @mydomain
 * (SO_PEERCRED). Returns 1, or -1 if the peer cannot be known. */
int smtp_submit_local_login(struct smtp_session *s);
void smtp_submit_scan_init(struct smtp_session *s);
void smtp_submit_deliver(struct smtp_session *s);

#endif
