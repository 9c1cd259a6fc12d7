/* dsn.h - delivery status notifications (bounces) a person understands.
 *
 * A pure composer: it takes what the queue knows about a message and its
 * recipients and returns the whole bounce message as bytes, ready to be
 * stored and sent with a null envelope sender. The format is RFC 3464's
 * message/delivery-status inside RFC 6522's multipart/report, with the
 * original message (RET=FULL) or its header section (text/rfc822-headers,
 * RFC 6522) as the last part. The first part is plain text that says in
 * ordinary words what the remote server's reply means and what to do.
 *
 * Nothing here reads the clock, the store or the network: the caller gives
 * the times and the random token, so the output is reproducible.
 */
#ifndef YJ_DSN_H
#define YJ_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "base/buf.h"
#include "base/err.h"

/* The most of a remote reply quoted in a bounce; the rest is cut. */
#define DSN_DIAG_MAX 2048
/* The most of the original header section returned. */
#define DSN_HEADER_MAX (256 * 1024)

enum dsn_action {
	DSN_FAILED,
	DSN_DELAYED,
	DSN_DELIVERED,
	DSN_RELAYED,		/* passed to a server that does not report (RFC 3461 6.2) */
	DSN_EXPANDED,		/* an alias passed it on to several addresses */
};

/* What a reply means, for the explanation in the bounce's first part. */
enum dsn_reason {
	DSN_R_GENERIC,
	DSN_R_UNKNOWN_USER,
	DSN_R_MAILBOX_FULL,
	DSN_R_NO_PTR,		/* no reverse DNS for our address (Gmail 5.7.25) */
	DSN_R_AUTH_FAILED,	/* SPF/DKIM/DMARC (5.7.26, Microsoft 5.7.515) */
	DSN_R_TLS_REQUIRED,	/* (5.7.29, 530 5.7.0 STARTTLS first) */
	DSN_R_LISTED_IP,	/* block lists (Microsoft S3140/S3150) */
	DSN_R_RATE_LIMIT,
	DSN_R_TOO_BIG,
	DSN_R_COUNT
};

struct dsn_rcpt {
	const char *final_rcpt;	/* the address tried, without <> */
	const char *orcpt;	/* RFC 3461 ORCPT "type;address" (decoded), or NULL */
	enum dsn_action action;
	const char *status;	/* enhanced status code "5.1.1" */
	const char *remote_mta;	/* the host that replied, or NULL */
	const char *diagnostic;	/* its whole reply, lines split by LF or CRLF, or NULL */
	time_t last_attempt;	/* 0: not given */
	time_t retry_until;	/* DSN_DELAYED: when the queue gives up; 0: not given */
};

struct dsn_msg {
	const char *myhostname;	/* the reporting MTA and MAILER-DAEMON's domain */
	const char *sender;	/* the original envelope sender ("" = null sender) */
	const char *envid;	/* RFC 3461 ENVID (decoded), or NULL */
	time_t arrival;		/* when the original message was received */
	time_t now;		/* Date: of the bounce */
	const char *token;	/* random letters for Message-ID and boundary */
	const char *header;	/* the original header section (LF or CRLF lines) */
	size_t header_len;
	const char *body;	/* the original body, or NULL for headers only */
	size_t body_len;
	size_t body_max;	/* a body larger than this is left out (headers only) */
	const struct dsn_rcpt *rcpts;
	size_t nrcpts;
};

/* Classifies a remote reply: its enhanced status code (may be NULL) and
 * its text (may be NULL; any bytes up to the NUL). Never fails. */
enum dsn_reason dsn_classify(const char *status, const char *reply);

/* A short name for the reason ("unknown-user"), for logs and tests. */
const char *dsn_reason_name(enum dsn_reason reason);

/* Appends the whole bounce message (header section and body, CRLF line
 * ends) to out. Returns 1, 0 when no bounce may be sent (the null sender:
 * a bounce never answers a bounce; no recipients), or -1 with err when
 * out's limit is too small or an input is unusable. */
int dsn_compose(const struct dsn_msg *m, struct buf *out, struct yj_err *err) YJ_MUST_CHECK;

#endif
