/* dsn.c - compose an RFC 3464 bounce (dsn.h).
 *
 * Every value that goes into a header field or a delivery-status field
 * comes from outside (addresses, a remote server's reply), so it is
 * cleaned first: no CR or LF can start a field of its own, no control
 * character passes, and a multi-line reply becomes one folded field. */
#include <stdbool.h>
#include <string.h>

#include "base/util.h"
#include "queue/dsn_int.h"

#define WRAP_COLUMN 72

static int
too_big(struct yj_err *err)
{
	return yj_err_set(err, "bounce message larger than its limit");
}

/* Appends s (at most max bytes) with control characters, and bytes
 * above 0x7e when ascii_only, replaced by '?'. */
static int
put_clean(struct buf *out, const char *s, size_t max, bool ascii_only)
{
	for (size_t i = 0; s[i] != '\0' && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		char o = (c < 0x20 || c == 0x7f || (ascii_only && c > 0x7e)) ? '?' : (char)c;

		if (buf_append(out, &o, 1) < 0)
			return -1;
	}
	return 1;
}

/* Appends a paragraph wrapped at WRAP_COLUMN, each line after indent. */
static int
put_wrapped(struct buf *out, const char *indent, const char *text)
{
	size_t col = 0;

	if (buf_append_str(out, indent) < 0)
		return -1;
	while (*text != '\0') {
		size_t word = strcspn(text, " ");

		if (col > 0 && col + 1 + word > WRAP_COLUMN) {
			if (buf_printf(out, "\r\n%s", indent) < 0)
				return -1;
			col = 0;
		} else if (col > 0 && buf_append(out, " ", 1) < 0) {
			return -1;
		}
		if (buf_append(out, text, word) < 0)
			return -1;
		col += word + (col > 0);
		text += word;
		text += strspn(text, " ");
	}
	return buf_append(out, "\r\n", 2);
}

/* Appends a remote reply, one output line per reply line, each line
 * after sep (the folding or indenting text); ascii_only as put_clean. */
static int
put_reply_lines(struct buf *out, const char *reply, const char *sep, bool ascii_only)
{
	size_t left = DSN_DIAG_MAX;
	bool first = true;

	while (*reply != '\0' && left > 0) {
		size_t len = strcspn(reply, "\r\n");

		if (len > left)
			len = left;
		if (len > 0) {
			if (!first && buf_append_str(out, sep) < 0)
				return -1;
			if (put_clean(out, reply, len, ascii_only) < 0)
				return -1;
			first = false;
		}
		left -= len;
		reply += len;
		reply += strspn(reply, "\r\n");
	}
	return 1;
}

static enum dsn_action
worst_action(const struct dsn_msg *m)
{
	enum dsn_action worst = DSN_RELAYED;

	for (size_t i = 0; i < m->nrcpts; i++) {
		if (m->rcpts[i].action == DSN_FAILED)
			return DSN_FAILED;
		if (m->rcpts[i].action == DSN_DELAYED)
			worst = DSN_DELAYED;
		else if ((m->rcpts[i].action == DSN_DELIVERED ||
			  m->rcpts[i].action == DSN_EXPANDED) && worst == DSN_RELAYED)
			worst = DSN_DELIVERED;
	}
	return worst;
}

static const char *
action_name(enum dsn_action a)
{
	return a == DSN_FAILED ? "failed" : a == DSN_DELAYED ? "delayed" :
	       a == DSN_RELAYED ? "relayed" : a == DSN_EXPANDED ? "expanded" : "delivered";
}

static const char *
subject_for(enum dsn_action worst)
{
	return worst == DSN_FAILED    ? "Undelivered Mail Returned to Sender"
	       : worst == DSN_DELAYED ? "Delayed Mail (still being retried)"
				      : "Successful Mail Delivery Report";
}

static bool
has_8bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] > 0x7f)
			return true;
	}
	return false;
}

static bool
rcpts_8bit(const struct dsn_msg *m)
{
	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct dsn_rcpt *r = &m->rcpts[i];
		const char *s[] = { r->final_rcpt, r->remote_mta, r->diagnostic };

		for (size_t j = 0; j < 3; j++) {
			if (s[j] != NULL && has_8bit(s[j], strnlen(s[j], DSN_DIAG_MAX)))
				return true;
		}
	}
	return false;
}

/* Is the original's header or body (when returned) 8-bit? */
static bool
original_8bit(const struct dsn_msg *m, bool full)
{
	return has_8bit(m->header, m->header_len) || (full && has_8bit(m->body, m->body_len));
}

static bool
token_ok(const char *t)
{
	if (t == NULL || t[0] == '\0' || strlen(t) > 64)
		return false;
	for (; *t != '\0'; t++) {
		if (!((*t >= '0' && *t <= '9') || (*t >= 'A' && *t <= 'Z') ||
		      (*t >= 'a' && *t <= 'z')))
			return false;
	}
	return true;
}

static int
put_date_field(struct buf *out, const char *name, time_t t)
{
	char date[64];

	util_rfc5322_date(t, date, sizeof(date));
	return buf_printf(out, "%s: %s\r\n", name, date);
}

/* The bounce's own header section. */
static int
put_header(struct buf *out, const struct dsn_msg *m, enum dsn_action worst, bool eight)
{
	if (buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@") < 0 ||
	    put_clean(out, m->myhostname, 255, true) < 0 || buf_append_str(out, ">\r\nTo: <") < 0 ||
	    put_clean(out, m->sender, 512, false) < 0 || buf_append_str(out, ">\r\n") < 0)
		return -1;
	if (buf_printf(out, "Subject: %s\r\n", subject_for(worst)) < 0 ||
	    put_date_field(out, "Date", m->now) < 0 ||
	    buf_printf(out, "Message-ID: <%s.dsn@", m->token) < 0 ||
	    put_clean(out, m->myhostname, 255, true) < 0 || buf_append_str(out, ">\r\n") < 0)
		return -1;
	return buf_printf(out,
			  "Auto-Submitted: auto-replied\r\n"
			  "MIME-Version: 1.0\r\n"
			  "Content-Type: multipart/report; report-type=delivery-status;\r\n"
			  "\tboundary=\"=_dsn_%s\"\r\n"
			  "Content-Transfer-Encoding: %s\r\n"
			  "\r\n"
			  "This is a MIME-encapsulated message.\r\n"
			  "\r\n",
			  m->token, eight ? "8bit" : "7bit");
}

static int
put_boundary(struct buf *out, const struct dsn_msg *m, bool last)
{
	return buf_printf(out, "--=_dsn_%s%s\r\n", m->token, last ? "--" : "");
}

/* One recipient in the plain-text part. */
static int
put_text_rcpt(struct buf *out, const struct dsn_rcpt *r)
{
	const char *status = r->status != NULL ? r->status : "";

	if (buf_append(out, "<", 1) < 0 || put_clean(out, r->final_rcpt, 512, false) < 0 ||
	    buf_printf(out, ">: %s", action_name(r->action)) < 0 ||
	    (status[0] != '\0' && (buf_append_str(out, " (") < 0 ||
				   put_clean(out, status, 16, true) < 0 ||
				   buf_append_str(out, ")") < 0)) ||
	    buf_append_str(out, "\r\n") < 0)
		return -1;
	if (r->diagnostic != NULL && r->diagnostic[0] != '\0') {
		if (buf_append_str(out, "  The server ") < 0 ||
		    (r->remote_mta != NULL && put_clean(out, r->remote_mta, 255, false) < 0) ||
		    buf_append_str(out, r->remote_mta != NULL ? " said:\r\n    " : "said:\r\n    ") < 0 ||
		    put_reply_lines(out, r->diagnostic, "\r\n    ", false) < 0 ||
		    buf_append_str(out, "\r\n") < 0)
			return -1;
	}
	if (r->action == DSN_DELAYED && r->retry_until != 0) {
		char date[64];

		util_rfc5322_date(r->retry_until, date, sizeof(date));
		if (buf_printf(out, "  It will keep trying until %s.\r\n", date) < 0)
			return -1;
	}
	if (r->action == DSN_FAILED &&
	    put_wrapped(out, "  ", dsn_explanation(dsn_classify(r->status, r->diagnostic))) < 0)
		return -1;
	if (r->action == DSN_EXPANDED &&
	    put_wrapped(out, "  ", "This address passes mail on to several others; your "
			"message went on to each of them.") < 0)
		return -1;
	return buf_append_str(out, "\r\n");
}

static int
put_text_part(struct buf *out, const struct dsn_msg *m, enum dsn_action worst, bool eight)
{
	if (put_boundary(out, m, false) < 0 ||
	    buf_printf(out,
		       "Content-Description: Notification\r\n"
		       "Content-Type: text/plain; charset=%s\r\n"
		       "Content-Transfer-Encoding: %s\r\n\r\n"
		       "This is the mail system at ",
		       eight ? "utf-8" : "us-ascii", eight ? "8bit" : "7bit") < 0 ||
	    put_clean(out, m->myhostname, 255, true) < 0 || buf_append_str(out, ".\r\n\r\n") < 0 ||
	    put_wrapped(out, "", dsn_intro(worst)) < 0 || buf_append_str(out, "\r\n") < 0)
		return -1;
	for (size_t i = 0; i < m->nrcpts; i++) {
		if (put_text_rcpt(out, &m->rcpts[i]) < 0)
			return -1;
	}
	return 1;
}

/* "Name: type; value\r\n", with value cleaned to ASCII (RFC 3464 fields
 * are ASCII; a UTF-8 address shows as '?' there and whole in the text). */
static int
put_typed_field(struct buf *out, const char *name, const char *type, const char *value)
{
	return buf_printf(out, "%s: %s; ", name, type) < 0 ||
			       put_clean(out, value, 512, true) < 0 ||
			       buf_append_str(out, "\r\n") < 0
		       ? -1
		       : 1;
}

/* ORCPT is "type;address" as the client sent it (RFC 3461). */
static int
put_orcpt(struct buf *out, const char *orcpt)
{
	const char *semi = strchr(orcpt, ';');
	char type[32];
	size_t n;

	if (semi == NULL || semi == orcpt || (size_t)(semi - orcpt) >= sizeof(type))
		return put_typed_field(out, "Original-Recipient", "rfc822", orcpt);
	n = (size_t)(semi - orcpt);
	memcpy(type, orcpt, n);
	type[n] = '\0';
	return buf_printf(out, "Original-Recipient: ") < 0 || put_clean(out, type, n, true) < 0 ||
			       buf_append_str(out, ";") < 0 ||
			       put_clean(out, semi + 1, 512, true) < 0 ||
			       buf_append_str(out, "\r\n") < 0
		       ? -1
		       : 1;
}

static int
put_status_rcpt(struct buf *out, const struct dsn_rcpt *r)
{
	const char *status = r->status != NULL && r->status[0] != '\0'
				     ? r->status
				     : (r->action == DSN_FAILED ? "5.0.0"
					: r->action == DSN_DELAYED ? "4.0.0" : "2.0.0");

	if (buf_append_str(out, "\r\n") < 0 ||
	    (r->orcpt != NULL && put_orcpt(out, r->orcpt) < 0) ||
	    put_typed_field(out, "Final-Recipient", "rfc822", r->final_rcpt) < 0 ||
	    buf_printf(out, "Action: %s\r\nStatus: ", action_name(r->action)) < 0 ||
	    put_clean(out, status, 16, true) < 0 || buf_append_str(out, "\r\n") < 0 ||
	    (r->remote_mta != NULL && put_typed_field(out, "Remote-MTA", "dns", r->remote_mta) < 0))
		return -1;
	if (r->diagnostic != NULL && r->diagnostic[0] != '\0' &&
	    (buf_append_str(out, "Diagnostic-Code: smtp; ") < 0 ||
	     put_reply_lines(out, r->diagnostic, "\r\n ", true) < 0 ||
	     buf_append_str(out, "\r\n") < 0))
		return -1;
	if (r->last_attempt != 0 && put_date_field(out, "Last-Attempt-Date", r->last_attempt) < 0)
		return -1;
	if (r->action == DSN_DELAYED && r->retry_until != 0 &&
	    put_date_field(out, "Will-Retry-Until", r->retry_until) < 0)
		return -1;
	return 1;
}

/* The machine-readable part: per-message fields, then per recipient. */
static int
put_status_part(struct buf *out, const struct dsn_msg *m)
{
	if (put_boundary(out, m, false) < 0 ||
	    buf_append_str(out, "Content-Description: Delivery report\r\n"
				"Content-Type: message/delivery-status\r\n\r\n") < 0 ||
	    put_typed_field(out, "Reporting-MTA", "dns", m->myhostname) < 0 ||
	    (m->envid != NULL && (buf_append_str(out, "Original-Envelope-Id: ") < 0 ||
				  put_clean(out, m->envid, 100, true) < 0 ||
				  buf_append_str(out, "\r\n") < 0)) ||
	    (m->arrival != 0 && put_date_field(out, "Arrival-Date", m->arrival) < 0))
		return -1;
	for (size_t i = 0; i < m->nrcpts; i++) {
		if (put_status_rcpt(out, &m->rcpts[i]) < 0)
			return -1;
	}
	return buf_append_str(out, "\r\n");
}

/* Copies lines with every line end made CRLF; NUL bytes are dropped. When
 * header_only, stops at the empty line that ends the header section. */
static int
put_crlf_lines(struct buf *out, const char *p, size_t len, bool header_only)
{
	size_t line_start = 0;

	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (c == '\r' || c == '\n') {
			if (header_only && i == line_start)
				return 1;
			if (buf_append(out, "\r\n", 2) < 0)
				return -1;
			if (c == '\r' && i + 1 < len && p[i + 1] == '\n')
				i++;
			line_start = i + 1;
		} else if (c != '\0' && buf_append(out, &c, 1) < 0) {
			return -1;
		}
	}
	/* A last line without its end gets one, so the boundary starts a line. */
	return line_start == len ? 1 : buf_append(out, "\r\n", 2);
}

/* The original: the whole message (RET=FULL, when it fits) or its header
 * section only. */
static int
put_original_part(struct buf *out, const struct dsn_msg *m, bool full, bool eight)
{
	if (put_boundary(out, m, false) < 0 ||
	    buf_printf(out,
		       "Content-Description: %s\r\n"
		       "Content-Type: %s\r\n"
		       "Content-Transfer-Encoding: %s\r\n\r\n",
		       full ? "Undelivered Message" : "Undelivered Message Headers",
		       full ? "message/rfc822" : "text/rfc822-headers",
		       eight ? "8bit" : "7bit") < 0 ||
	    put_crlf_lines(out, m->header, m->header_len, true) < 0)
		return -1;
	if (full && (buf_append(out, "\r\n", 2) < 0 ||
		     put_crlf_lines(out, m->body, m->body_len, false) < 0))
		return -1;
	return buf_append_str(out, "\r\n");
}

static bool
msg_usable(const struct dsn_msg *m)
{
	return m->myhostname != NULL && m->myhostname[0] != '\0' && token_ok(m->token) &&
	       (m->header != NULL || m->header_len == 0) &&
	       m->header_len <= DSN_HEADER_MAX;
}

int
dsn_compose(const struct dsn_msg *m, struct buf *out, struct yj_err *err)
{
	size_t start = out->len;
	enum dsn_action worst;
	bool full, eight, eight_text;

	if (m->sender == NULL || m->sender[0] == '\0' || m->nrcpts == 0)
		return 0;
	if (!msg_usable(m))
		return yj_err_set(err, "bounce: bad host name, token or header section");
	for (size_t i = 0; i < m->nrcpts; i++) {
		if (m->rcpts[i].final_rcpt == NULL)
			return yj_err_set(err, "bounce: recipient without an address");
	}
	worst = worst_action(m);
	full = m->body != NULL && m->body_len <= m->body_max;
	eight = original_8bit(m, full);
	eight_text = rcpts_8bit(m);
	if (put_header(out, m, worst, eight || eight_text) < 0 ||
	    put_text_part(out, m, worst, eight_text) < 0 ||
	    put_status_part(out, m) < 0 || put_original_part(out, m, full, eight) < 0 ||
	    put_boundary(out, m, true) < 0) {
		out->len = start;
		if (out->cap > 0)
			out->data[start] = '\0';
		return too_big(err);
	}
	return 1;
}
