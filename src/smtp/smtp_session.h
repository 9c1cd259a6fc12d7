/* smtp_session.h - state of one SMTP server session, shared by the files
 * of the SMTP server (commands, message reception). Private to src/smtp. */
#ifndef YJ_SMTP_SESSION_H
#define YJ_SMTP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/session.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_hdrscan.h"
#include "smtp/smtp_parse.h"
#include "store/store.h"

/* One mailbox that the transaction delivers to. */
struct smtp_target {
	int64_t account_id;
	char address[STORE_ADDRESS_MAX + 1];	/* for Delivered-To: */
};

/* Per-transaction state: from MAIL to the end of DATA/BDAT or RSET. */
struct smtp_tx {
	bool active;				/* MAIL was accepted */
	char id[16];				/* message id in logs and Received: */
	struct smtp_mail_args mail;
	char sender[STORE_ADDRESS_MAX + 1];	/* "" for the null sender */
	size_t n_rcpt;				/* accepted RCPT commands */
	char first_rcpt[STORE_ADDRESS_MAX + 1];
	struct smtp_target *targets;		/* local mailboxes, no duplicates */
	size_t n_targets, cap_targets;
	char (*relay)[STORE_ADDRESS_MAX + 1];	/* remote recipients */
	size_t n_relay, cap_relay;
	bool bdat;				/* BDAT chunks have started */
	struct smtp_crlf bdat_crlf;		/* BDAT line end state */
	struct smtp_hdrscan scan;		/* the header section filter */
	const char *loop_rcpt;			/* a target a Delivered-To: names */
	bool blob_open;
	struct store_blob *blob;
	uint64_t size;				/* message bytes received */
	bool too_big;
	bool write_failed;
};

enum smtp_helo_mode { SMTP_HELO_NONE, SMTP_HELO_SMTP, SMTP_HELO_ESMTP };

struct smtp_session {
	struct session_ctx *ctx;
	struct conn *conn;
	const struct config *cfg;
	struct store *st;			/* opened at first need */
	enum smtp_helo_mode helo_mode;
	char helo[256];
	char client_name[256];			/* verified reverse DNS or "unknown" */
	bool trusted;				/* client in mynetworks: may relay */
	unsigned errors;
	bool done;
	unsigned n_messages;
	char *line;				/* line_length_limit + 3 bytes */
	size_t line_size;
	struct smtp_tx tx;
};

/* Sends one reply line (without CRLF). Replies with a code >= 400 count
 * towards smtpd_hard_error_limit. */
void smtp_reply(struct smtp_session *s, const char *fmt, ...) YJ_PRINTF(2, 3);

/* The client's input ended (timeout, hang-up, or youjud stopping): says
 * the matching 421 where one is due and logs why. during names the
 * command that was cut short, or is NULL between commands. */
void smtp_say_goodbye(struct smtp_session *s, const char *during);

/* Ends the transaction, removing any blob that was not delivered. */
void smtp_tx_reset(struct smtp_session *s);

/* Opens the session's store connection if it is not open yet. */
int smtp_store(struct smtp_session *s);

/* DATA and BDAT (smtp_receive.c). */
void smtp_cmd_data(struct smtp_session *s, const char *arg);
void smtp_cmd_bdat(struct smtp_session *s, const char *arg);

#endif
