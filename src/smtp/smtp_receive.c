/* smtp_receive.c - message reception for the SMTP server: DATA (dot
 * stuffed, RFC 5321) and BDAT (CHUNKING, RFC 3030), the Received: header,
 * and the hand-over to deliver/ before the final reply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "deliver/deliver.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_session.h"
#include "smtp/smtp_trace.h"

#define SMTP_DATA_CHUNK 32768
/* Room for the fields we add before a message (Received:, Return-Path:,
 * Authentication-Results:, ...) on top of its declared SIZE=. */
#define SMTP_KEEP_SLACK 4096

/* RFC 3848 protocol names for the "with" clause ("A": after AUTH). */
static const char *
smtp_protocol_name(const struct smtp_session *s)
{
	static const char *const esmtp[2][2] = { { "ESMTP", "ESMTPA" }, { "ESMTPS", "ESMTPSA" } };
	static const char *const utf8[2][2] = {
		{ "UTF8SMTP", "UTF8SMTPA" }, { "UTF8SMTPS", "UTF8SMTPSA" },
	};
	bool tls = conn_is_tls(s->conn);

	if (s->helo_mode != SMTP_HELO_ESMTP)
		return tls ? "SMTPS" : "SMTP";
	if (s->tx->mail.smtputf8)
		return utf8[tls][s->authenticated];
	return esmtp[tls][s->authenticated];
}

/* A Delivered-To: field of the message names one of its mailboxes:
 * the message has been here before (smtp_hdrscan callback). */
static void
smtp_loop_check(void *ctx, const char *value)
{
	struct smtp_tx *tx = ctx;

	for (size_t i = 0; i < tx->n_targets && tx->loop_rcpt == NULL; i++) {
		if (smtp_trace_names(value, tx->targets[i].address))
			tx->loop_rcpt = tx->targets[i].address;
	}
}

/* Starts the blob with our Received: header. */
static int
smtp_blob_start(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	struct yj_err err;
	char date[64], tls[128], header[2048], helo[sizeof(s->helo)], ip[64];
	int n;

	if (smtp_store(s) < 0)
		return -1;
	tx->blob = calloc(1, sizeof(*tx->blob));
	if (tx->blob == NULL)
		log_fatal("out of memory");
	if (store_blob_create(s->st, tx->blob, &err) < 0) {
		log_error("smtp: session=%s id=%s blob: %s", s->ctx->id, tx->id, err.msg);
		return -1;
	}
	tx->blob_open = true;
	buf_init(&tx->kept, DELIVER_KEEP_MAX);
	/* The size the client declared (MAIL FROM SIZE=, Postfix sends
	 * it), with room for our trace fields: one allocation instead of a
	 * doubling per message. A larger message is not kept at all. */
	if (tx->mail.size > 0 && (unsigned long long)tx->mail.size + SMTP_KEEP_SLACK <= DELIVER_KEEP_MAX &&
	    buf_reserve(&tx->kept, (size_t)tx->mail.size + SMTP_KEEP_SLACK) < 0)
		log_debug("smtp: session=%s id=%s no room kept ahead", s->ctx->id, tx->id);
	store_blob_keep(tx->blob, &tx->kept);
	smtp_hdrscan_init(&tx->scan, smtp_loop_check, tx);
	smtp_hdrscan_authserv(&tx->scan, s->cfg->myhostname);
	if (s->role->submission)
		smtp_submit_scan_init(s);
	util_rfc5322_date(time(NULL), date, sizeof(date));
	conn_tls_describe(s->conn, tls, sizeof(tls));
	smtp_trace_helo(s->helo, helo, sizeof(helo));
	smtp_trace_ip(s->conn->peer_ip, ip, sizeof(ip));
	/* submission_hide_client: the client's address and names stay out
	 * of the message; the "by" clause alone is a valid Received:. */
	if (s->role->submission && s->cfg->submission_hide_client)
		n = snprintf(header, sizeof(header), "Received: ");
	else
		n = snprintf(header, sizeof(header), "Received: from %s (%s %s)\r\n\t", helo,
			     s->client_name, ip);
	n += snprintf(header + n, sizeof(header) - (size_t)n,
		     "%s%s%s"
		     "by %s (youju) with %s id %s%s%s%s;%s%s\r\n",
		     tls[0] != '\0' ? "(using " : "", tls, tls[0] != '\0' ? ")\r\n\t" : "",
		     s->cfg->myhostname, smtp_protocol_name(s), tx->id,
		     /* "for" names the recipient only when there is one: a
		      * list would tell each recipient about the others. */
		     tx->n_rcpt == 1 ? "\r\n\tfor <" : "", tx->n_rcpt == 1 ? tx->first_rcpt : "",
		     tx->n_rcpt == 1 ? ">" : "", tx->n_rcpt == 1 ? " " : "\r\n\t", date);
	if (n < 0 || (size_t)n >= sizeof(header) ||
	    store_blob_write(tx->blob, header, (size_t)n, &err) < 0) {
		log_error("smtp: session=%s id=%s blob: %s", s->ctx->id, tx->id,
			  n < 0 || (size_t)n >= sizeof(header) ? "header too long" : err.msg);
		return -1;
	}
	return 1;
}

static void
smtp_blob_write(struct smtp_session *s, const void *p, size_t n)
{
	struct smtp_tx *tx = s->tx;
	struct yj_err err;

	if (n > 0 && store_blob_write(tx->blob, p, n, &err) < 0) {
		log_error("smtp: session=%s id=%s blob: %s", s->ctx->id, tx->id, err.msg);
		tx->write_failed = true;
	}
}

/* Adds message bytes, honouring the size limit. Bytes past the limit or
 * after a write error are counted and dropped: the client is still
 * sending and must be read to the end before the reply. The header
 * section goes through the filter that removes Return-Path: and watches
 * Delivered-To:. */
static void
smtp_blob_filter(struct smtp_session *s, const void *p, size_t n)
{
	struct smtp_tx *tx = s->tx;
	unsigned char *out;

	if (tx->too_big || tx->write_failed || !tx->blob_open)
		return;
	out = malloc(n + SMTP_HDRSCAN_SLACK);
	if (out == NULL)
		log_fatal("out of memory");
	n = smtp_hdrscan_feed(&tx->scan, p, n, out);
	smtp_blob_write(s, out, n);
	smtp_ma_data(s, out, n);
	free(out);
}

static void
smtp_blob_add(struct smtp_session *s, const void *p, size_t n)
{
	struct smtp_tx *tx = s->tx;

	tx->size += n;
	if (tx->size > (uint64_t)s->cfg->message_size_limit)
		tx->too_big = true;
	smtp_blob_filter(s, p, n);
}

/* The last bytes: the line end a BDAT message may lack, and what the
 * header filter still holds. */
static void
smtp_blob_end(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	unsigned char tail[SMTP_HDRSCAN_SLACK + 2];
	size_t n;

	if (tx->bdat)
		smtp_blob_filter(s, tail, smtp_crlf_finish(&tx->bdat_crlf, tail));
	if (tx->too_big || tx->write_failed || !tx->blob_open)
		return;
	n = smtp_hdrscan_finish(&tx->scan, tail);
	smtp_blob_write(s, tail, n);
	smtp_ma_data(s, tail, n);
}

/* The MX role's after-DATA: hands the message to deliver/, then replies. */
void
smtp_deliver(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	struct deliver_local *local = calloc(tx->n_targets + 1, sizeof(*local));
	const char **relay = calloc(tx->n_relay + 1, sizeof(*relay));
	const char **unknown = calloc(tx->n_unknown + 1, sizeof(*unknown));
	struct store_relay_dsn *dsn = calloc(tx->n_relay + 1, sizeof(*dsn));
	struct store_notice *notices = calloc(tx->n_notices + 1, sizeof(*notices));
	static const char *const bodies[] = {
		[SMTP_BODY_UNSET] = NULL, [SMTP_BODY_7BIT] = "7BIT",
		[SMTP_BODY_8BITMIME] = "8BITMIME", [SMTP_BODY_BINARYMIME] = "BINARYMIME",
	};
	struct deliver_envelope env = {
		.id = tx->id, .sender = tx->sender, .envid = tx->mail.envid, .ret = tx->mail.ret,
		.body = bodies[tx->mail.body], .smtputf8 = tx->mail.smtputf8, .relay_dsn = dsn,
	};
	struct yj_err err;
	char from[LOG_VALUE_MAX];
	int ret;

	if (local == NULL || relay == NULL || dsn == NULL || unknown == NULL || notices == NULL)
		log_fatal("out of memory");
	for (size_t i = 0; i < tx->n_notices; i++) {
		notices[i].recipient = tx->notices[i].rcpt;
		notices[i].orcpt = tx->notices[i].orcpt;
		notices[i].action = tx->notices[i].expanded ? "expanded" : "delivered";
	}
	for (size_t i = 0; i < tx->n_unknown; i++)
		unknown[i] = tx->unknown[i];
	for (size_t i = 0; i < tx->n_targets; i++) {
		local[i].account_id = tx->targets[i].account_id;
		local[i].address = tx->targets[i].address;
	}
	for (size_t i = 0; i < tx->n_relay; i++) {
		relay[i] = tx->relay[i];
		dsn[i].notify = tx->relay_dsn[i].notify;
		dsn[i].orcpt = tx->relay_dsn[i].orcpt;
	}
	env.local = local;
	env.n_local = tx->n_targets;
	env.relay = relay;
	env.n_relay = tx->n_relay;
	env.failed = unknown;
	env.n_failed = tx->n_unknown;
	env.failed_reply = "550 5.1.1 the alias names this address, which has no mailbox here";
	env.notices = notices;
	env.n_notices = tx->n_notices;
	env.headers = smtp_ma_headers(s);
	env.queue_headers = smtp_ma_queue_headers(s);
	smtp_ma_report_count(s, &env.dmarc_policy, &env.dmarc_row);
	env.mailbox = smtp_ma_mailbox(s);
	if (tx->kept.len == tx->blob->size) {
		env.data = tx->kept.data;
		env.len = tx->kept.len;
	}
	ret = deliver_message(s->st, &env, tx->blob, &err);
	tx->blob_open = false;		/* delivered, or removed by the store */
	log_value(from, sizeof(from), tx->sender);
	if (ret < 0) {
		log_error("smtp: session=%s id=%s from=<%s> size=%llu result=failed: %s",
			  s->ctx->id, tx->id, from, (unsigned long long)tx->size, err.msg);
		smtp_reply(s, "451 4.3.0 Error: queue file write error");
	} else {
		log_info("smtp: session=%s id=%s from=<%s> size=%llu nrcpt=%zu result=accepted",
			 s->ctx->id, tx->id, from, (unsigned long long)tx->size, tx->n_rcpt);
		smtp_reply(s, "250 2.0.0 Ok: queued as %s", tx->id);
		s->n_messages++;
		s->junk = 0;		/* as Postfix: junk counts restart after mail */
	}
	free(local);
	free(relay);
	free(unknown);
	free(dsn);
	free(notices);
}

/* A message whose every recipient is a local mailbox without room for
 * it (the quota filled since RCPT) is refused whole; one that any
 * recipient can take is delivered to all, so no one's copy is lost or
 * delayed for another's full mailbox. */
static bool
smtp_all_full(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	struct store_quota q;
	struct yj_err err;

	if (tx->n_targets == 0 || tx->n_relay > 0)
		return false;
	for (size_t i = 0; i < tx->n_targets; i++) {
		if (store_quota_get(s->st, tx->targets[i].account_id, &q, &err) != 1 ||
		    q.limit == STORE_QUOTA_NONE || q.used + tx->size <= (uint64_t)q.limit)
			return false;
	}
	return true;
}

/* The end of a message, from DATA or the last BDAT: reply and reset. */
static void
smtp_message_end(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	char from[LOG_VALUE_MAX];

	smtp_blob_end(s);
	log_value(from, sizeof(from), tx->sender);
	if (tx->too_big) {
		log_info("smtp: session=%s id=%s from=<%s> size=%llu result=rejected: too big",
			 s->ctx->id, tx->id, from, (unsigned long long)tx->size);
		smtp_reply(s, "552 5.3.4 Error: message file too big");
	} else if (tx->write_failed || !tx->blob_open) {
		smtp_reply(s, "451 4.3.0 Error: queue file write error");
	} else if (tx->loop_rcpt != NULL) {
		/* Delivering again would only go round once more. */
		log_info("smtp: session=%s id=%s from=<%s> size=%llu result=rejected: "
			 "mail forwarding loop for <%s>", s->ctx->id, tx->id,
			 from, (unsigned long long)tx->size, tx->loop_rcpt);
		smtp_reply(s, "554 5.4.6 Error: mail forwarding loop for <%s>", tx->loop_rcpt);
	} else if (smtp_all_full(s)) {
		log_info("smtp: session=%s id=%s from=<%s> size=%llu result=deferred: "
			 "mailbox full", s->ctx->id, tx->id, from, (unsigned long long)tx->size);
		smtp_reply(s, "452 4.2.2 Error: mailbox full");
	} else if (smtp_ma_end(s) > 0) {
		s->role->after_data(s);
	}
	smtp_tx_reset(s);
}

/* The client went silent or away in the middle of a message: nothing was
 * promised, so nothing is kept. */
static void
smtp_lost(struct smtp_session *s, const char *during)
{
	smtp_say_goodbye(s, during);
	smtp_tx_reset(s);
	s->done = true;
}

void
smtp_cmd_data(struct smtp_session *s, const char *arg)
{
	struct smtp_tx *tx = s->tx;
	struct smtp_data_decoder dec;
	unsigned char *out;

	if (arg[0] != '\0') {
		smtp_reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (tx == NULL) {
		smtp_reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (tx->bdat) {
		smtp_reply(s, "503 5.5.1 Error: DATA after BDAT");
		return;
	}
	if (tx->n_rcpt == 0) {
		smtp_reply(s, "503 5.5.1 Error: no valid recipients");
		return;
	}
	if (smtp_blob_start(s) < 0) {
		smtp_reply(s, "451 4.3.0 Error: queue file write error");
		smtp_tx_reset(s);
		return;
	}
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	conn_flush(s->conn);
	conn_transfer_begin(s->conn, s->cfg->smtpd_min_data_rate,
			    s->cfg->smtpd_message_deadline * 1000);
	out = malloc(SMTP_DATA_CHUNK * 2 + 2);
	if (out == NULL)
		log_fatal("out of memory");
	smtp_data_init(&dec);
	while (!dec.done) {
		const unsigned char *in;
		size_t avail, used, outlen;

		if (conn_peek(s->conn, &in, &avail) <= 0) {
			free(out);
			smtp_lost(s, "DATA");
			return;
		}
		if (avail > SMTP_DATA_CHUNK)
			avail = SMTP_DATA_CHUNK;
		used = smtp_data_decode(&dec, in, avail, out, &outlen);
		conn_consume(s->conn, used);
		smtp_blob_add(s, out, outlen);
	}
	free(out);
	smtp_message_end(s);
}

/* Reads a BDAT chunk of n bytes, into the message (with canonical line
 * ends) if keep is set, else just off the wire (a refused chunk must
 * still be read to stay in step). */
static int
smtp_bdat_read(struct smtp_session *s, unsigned long long n, bool keep)
{
	unsigned char *out = keep ? malloc(SMTP_DATA_CHUNK * 2) : NULL;
	int ret = 1;

	if (keep && out == NULL)
		log_fatal("out of memory");
	conn_transfer_begin(s->conn, s->cfg->smtpd_min_data_rate,
			    s->cfg->smtpd_message_deadline * 1000);
	while (n > 0) {
		const unsigned char *in;
		size_t avail;

		if (conn_peek(s->conn, &in, &avail) <= 0) {
			ret = -1;
			break;
		}
		if (avail > n)
			avail = (size_t)n;
		if (avail > SMTP_DATA_CHUNK)
			avail = SMTP_DATA_CHUNK;
		if (keep)
			smtp_blob_add(s, out,
				      smtp_crlf_normalize(&s->tx->bdat_crlf, in, avail, out));
		conn_consume(s->conn, avail);
		n -= avail;
	}
	if (!keep)
		conn_transfer_end(s->conn);	/* no message: the chunk was all */
	free(out);
	return ret;
}

/* Refuses a chunk without keeping it. One message's worth is read off
 * the wire, so the session stays in step and goes on (RFC 3030); a
 * larger chunk is not read at all: the reply, then 421 and the end of
 * the session, since the rest of the input is the chunk. */
static void
smtp_bdat_refuse(struct smtp_session *s, unsigned long long size, const char *reply)
{
	if (size <= (unsigned long long)s->cfg->message_size_limit) {
		if (smtp_bdat_read(s, size, false) < 0) {
			smtp_lost(s, "BDAT");
			return;
		}
		smtp_reply(s, "%s", reply);
		return;
	}
	log_info("smtp: session=%s client=%s BDAT chunk of %llu octets refused unread",
		 s->ctx->id, s->conn->peer_ip, size);
	smtp_reply(s, "%s", reply);
	smtp_reply(s, "421 4.5.4 %s Error: BDAT chunk too large to skip, closing connection",
		   s->cfg->myhostname);
	smtp_tx_reset(s);
	s->done = true;
}

/* Does a chunk of size octets fit in what the size limit still allows? */
static bool
smtp_bdat_fits(const struct smtp_session *s, unsigned long long size)
{
	unsigned long long limit = (unsigned long long)s->cfg->message_size_limit;

	return s->tx->size <= limit && size <= limit - s->tx->size;
}

void
smtp_cmd_bdat(struct smtp_session *s, const char *arg)
{
	struct smtp_tx *tx = s->tx;
	unsigned long long size;
	const char *error;
	bool last;

	if (smtp_bdat_parse(arg, &size, &last, &error) < 0) {
		/* Without a valid size the chunk cannot be skipped and the
		 * session cannot be resynchronised: it has to end, and a
		 * server that closes says 421 (RFC 5321 3.8). */
		log_info("smtp: session=%s bad BDAT size: %s", s->ctx->id, error);
		smtp_reply(s, "%s", error);
		smtp_reply(s, "421 4.5.4 %s Error: lost track of BDAT data, closing connection",
			   s->cfg->myhostname);
		s->done = true;
		return;
	}
	if (tx == NULL || tx->n_rcpt == 0) {
		smtp_bdat_refuse(s, size, tx != NULL ? "503 5.5.1 Error: no valid recipients"
						     : "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (!smtp_bdat_fits(s, size)) {
		char from[LOG_VALUE_MAX];

		/* Refused before a byte of it is read: a chunk may declare up
		 * to 2^64 octets. */
		log_info("smtp: session=%s id=%s from=<%s> size=%llu chunk=%llu "
			 "result=rejected: too big", s->ctx->id, tx->id,
			 log_value(from, sizeof(from), tx->sender), (unsigned long long)tx->size,
			 size);
		smtp_bdat_refuse(s, size, "552 5.3.4 Error: message file too big");
		smtp_tx_reset(s);
		return;
	}
	if (!tx->bdat) {
		tx->bdat = true;
		if (smtp_blob_start(s) < 0)
			tx->write_failed = true;
	}
	if (smtp_bdat_read(s, size, true) < 0) {
		smtp_lost(s, "BDAT");
		return;
	}
	/* Line ends made CRLF can still carry a message past the limit. */
	if (last || tx->too_big) {
		smtp_message_end(s);
		return;
	}
	smtp_reply(s, "250 2.0.0 %llu octets received", size);
}
