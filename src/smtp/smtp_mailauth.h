/* smtp_mailauth.h - mail authentication at work in the SMTP server.
 *
 * Inbound (MX role, clients outside mynetworks): the unknown-client
 * policy and SPF when MAIL arrives; DKIM and ARC while the message
 * streams (fed the same bytes that go to the blob); DMARC at the end of
 * the data, which may refuse the message or file it into Junk. The
 * results become Authentication-Results: (RFC 8601) and Received-SPF:
 * lines in front of the stored message.
 *
 * Inbound mail that an alias forwards to other domains is ARC-sealed
 * (RFC 8617) for the queued copies.
 *
 * Outbound (a logged-in client, or mynetworks): a message whose From:
 * domain has keys in DATA/dkim/DOMAIN/ is DKIM-signed; the signatures
 * are lines in front of the message in the same way.
 *
 * The state lives in the transaction (struct smtp_tx's ma) and is freed
 * with it. Every function replies itself when it refuses.
 */
#ifndef YJ_SMTP_MAILAUTH_H
#define YJ_SMTP_MAILAUTH_H

#include <stddef.h>

struct smtp_session;
struct smtp_ma;

/* At MAIL, once the command is otherwise accepted: sets up the
 * transaction's checks, applies smtpd_reject_unknown_client and SPF
 * (spf_fail_action). Returns 1 to accept MAIL, 0 if refused (replied). */
int smtp_ma_mail(struct smtp_session *s);

/* Message bytes as they are written to the blob. */
void smtp_ma_data(struct smtp_session *s, const void *p, size_t n);

/* At the end of a complete message: DKIM, ARC and DMARC results, or the
 * signatures. Returns 1 to deliver, 0 if refused (replied). */
int smtp_ma_end(struct smtp_session *s);

/* The header lines to put in front of the message ("" if none) and the
 * mailbox to deliver to (NULL: INBOX), after smtp_ma_end(). */
const char *smtp_ma_headers(const struct smtp_session *s);
const char *smtp_ma_mailbox(const struct smtp_session *s);
/* The header lines of the queued (forwarded) copies: the ARC set when
 * the message was sealed, then the same lines as smtp_ma_headers(). */
const char *smtp_ma_queue_headers(const struct smtp_session *s);
/* The DMARC result to count for aggregate reports with the delivery
 * (deliver_envelope's dmarc_policy and dmarc_row), or NULLs. */
struct store_dmarc_policy;
struct store_dmarc_row;
void smtp_ma_report_count(const struct smtp_session *s, const struct store_dmarc_policy **pol,
			  const struct store_dmarc_row **row);

void smtp_ma_free(struct smtp_ma *ma);

#endif
