/* deliver.h - the one way a message enters mailboxes and the outbound
 * queue: an envelope (sender, resolved local recipients, remote ones)
 * plus a finished message blob. Inbound SMTP uses it now; submission,
 * `youju sendmail`, bounces and Sieve's redirect will.
 *
 * Recipients come here already resolved (resolve.h): local ones as
 * accounts, remote ones as addresses for the queue. Each local copy
 * gets its own prefix: Return-Path: (RFC 5321 4.4, added at final
 * delivery) and Delivered-To:, built here and nowhere else, then the
 * per-message header lines the caller gives (the results of the
 * authentication checks, DKIM signatures).
 */
#ifndef YJ_DELIVER_H
#define YJ_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/err.h"
#include "store/store.h"

/* One local mailbox to deliver to. */
struct deliver_local {
	int64_t account_id;
	const char *address;		/* the account's address, for Delivered-To: */
};

struct deliver_envelope {
	const char *id;			/* the message's id, for log lines */
	const char *sender;		/* reverse path, "" for the null sender */
	const struct deliver_local *local;
	size_t n_local;
	const char *const *relay;	/* remote recipients, for the queue */
	size_t n_relay;
	/* Header lines (CRLF-ended) every local copy starts with after
	 * Return-Path: and Delivered-To: (Authentication-Results:,
	 * Received-SPF:, DKIM-Signature:), or NULL; queued copies start
	 * with them too. */
	const char *headers;
	/* The queued copies' header lines, when not the same as headers
	 * (an ARC set in front of them), or NULL. */
	const char *queue_headers;
	/* The mailbox of each local copy: NULL for INBOX, or a name such
	 * as STORE_MAILBOX_JUNK (DMARC quarantine: the mailbox with the
	 * \Junk special-use attribute, whatever its name). */
	const char *mailbox;
	/* DSN and body parameters for the queue; zero: not given */
	const char *envid;
	const char *ret;		/* "FULL", "HDRS" */
	const char *body;		/* "7BIT", "8BITMIME", "BINARYMIME" */
	bool smtputf8;
	const struct store_relay_dsn *relay_dsn;	/* NULL or n_relay */
	/* The DMARC result to count for aggregate reports, committed with
	 * the delivery; NULL for none. */
	const struct store_dmarc_policy *dmarc_policy;
	const struct store_dmarc_row *dmarc_row;
	/* recipients that failed already, queued as failed with
	 * failed_reply for the queue runner to report (store.h) */
	const char *const *failed;
	size_t n_failed;
	const char *failed_reply;
	const struct store_queue_settle *settle;	/* NULL, or rows a notice settles */
	/* recipients whose delivery here the sender asked to hear of
	 * (NOTIFY=SUCCESS): queued as owed reports (store.h) */
	const struct store_notice *notices;
	size_t n_notices;
	/* The blob's bytes, all of them, when the caller holds them (it
	 * wrote them), or NULL: the local copies' summary and thread ids
	 * are parsed from them instead of the blob read back. */
	const char *data;
	size_t len;
};

/* The most of a message a receiving session keeps in memory as it
 * streams it into the blob (store_blob_keep), for deliver_envelope's
 * data: most mail fits; a larger message is read back from its blob. */
#define DELIVER_KEEP_MAX (256u << 10)

/* Delivers blob (written, not yet committed) to every local recipient
 * and queues it for every remote one, in one transaction, and logs one
 * line per recipient. The blob belongs to the store afterwards, whatever
 * the result. Returns 1 when everything is durable, -1 with err set when
 * nothing was delivered (a temporary failure). */
int deliver_message(struct store *st, const struct deliver_envelope *env,
		    struct store_blob *blob, struct yj_err *err) YJ_MUST_CHECK;

/* ---- messages youju writes itself ----
 * Bounces, delay notices, reports: a whole message (header section and
 * body, CRLF lines) in memory, DKIM-signed as mail of our own domain,
 * delivered like any other: to the mailboxes of local recipients, to
 * the queue for the rest. */
struct deliver_generated {
	const char *id;			/* for log lines */
	const char *sender;		/* envelope sender, "" (null) for notices */
	const char *const *rcpts;	/* addresses, local or remote */
	size_t n_rcpts;
	const char *data;		/* the message */
	size_t len;
	const char *sign_domain;	/* whose DKIM keys sign it, NULL: none */
	/* Queue rows the message reports on, settled in its transaction
	 * (store.h); NULL: none. */
	const struct store_queue_settle *settle;
};

/* Appends the DKIM-Signature lines for msg, signed with domain's keys,
 * to out. 1 signed, 0 the domain has no keys, -1 with err. */
typedef int deliver_signer_fn(const char *data_dir, const char *domain, const char *msg,
			      size_t len, struct buf *out, struct yj_err *err);
/* The signer of generated messages (mail authentication lives above
 * this module). Set once, before they are sent; none: unsigned. */
void deliver_set_signer(deliver_signer_fn *fn);

/* Resolves each recipient (aliases, plus-addressing; one of our domains
 * without such a user is logged and left out), signs, stores the message
 * and delivers it with g->settle in one transaction. Returns 1 delivered,
 * 0 nowhere to deliver (every recipient unknown; the rows of g->settle
 * are settled all the same, so nobody waits for the notice), -1 with err
 * (nothing delivered, nothing settled; also when the rows were settled
 * already by another thread or node). */
int deliver_generated(struct store *st, const struct config *cfg,
		      const struct deliver_generated *g, struct yj_err *err) YJ_MUST_CHECK;

/* fn is called after each delivery that queued remote recipients (the
 * queue runner wakes its threads), report true when the delivery also
 * left a notice owed (a failed recipient, a success report). Set once,
 * before sessions start. */
void deliver_set_queued_hook(void (*fn)(bool report));

#endif
