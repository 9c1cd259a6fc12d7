/* smtp_hdrscan.c - the header section filter.
 *
 * A byte-at-a-time state machine. At the start of each header line the
 * bytes are held until they either cannot be one of the two names looked
 * for (then they go out, and the rest of the line passes) or make a whole
 * name and its colon. Only then is it known whether the line is dropped,
 * so no byte of a Return-Path: field is ever written.
 */
#include "smtp/smtp_hdrscan.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum hs_state {
	HS_BOL,		/* at the start of a header line */
	HS_BOL_CR,	/* a CR at the start of a line, held */
	HS_NAME,	/* the start of a line, held in h->hold */
	HS_PASS,	/* in a line that passes */
	HS_DROP,	/* in a line that is removed */
	HS_VALUE,	/* in a Delivered-To: line: passes, and is kept */
	HS_BODY,	/* after the empty line: everything passes */
};

enum hs_field {
	HS_F_OTHER,
	HS_F_RETURN_PATH,
	HS_F_DELIVERED_TO,
	HS_F_BCC,
	HS_F_FROM,
	HS_F_DATE,
	HS_F_MESSAGE_ID,
	HS_F_SENDER,
	HS_F_LAST = HS_F_SENDER,
	HS_F_AUTHRES,		/* matched with its authserv-id, not by name alone */
};

static const char *const hs_names[] = {
	[HS_F_RETURN_PATH] = "return-path",
	[HS_F_DELIVERED_TO] = "delivered-to",
	[HS_F_BCC] = "bcc",
	[HS_F_FROM] = "from",
	[HS_F_DATE] = "date",
	[HS_F_MESSAGE_ID] = "message-id",
	[HS_F_SENDER] = "sender",
	[HS_F_AUTHRES] = "authentication-results",
};

/* What the held bytes of a line start are. */
enum hs_class {
	HS_C_NONE,	/* not one of the names: the line passes */
	HS_C_MAYBE,	/* a prefix of a name, or a name and blanks */
	HS_C_FIELD,	/* a name, blanks, and the colon */
};

void
smtp_hdrscan_init(struct smtp_hdrscan *h, smtp_hdrscan_fn *delivered_to, void *ctx)
{
	memset(h, 0, sizeof(*h));
	h->delivered_to = delivered_to;
	h->ctx = ctx;
	h->state = HS_BOL;
	h->field = HS_F_OTHER;
}

void
smtp_hdrscan_submission(struct smtp_hdrscan *h, smtp_hdrscan_fn *from,
			const char *date_field, const char *msgid_field, const char *from_field)
{
	h->submission = true;
	h->from = from;
	if (strlen(date_field) < sizeof(h->add_date))
		strcpy(h->add_date, date_field);
	if (strlen(msgid_field) < sizeof(h->add_msgid))
		strcpy(h->add_msgid, msgid_field);
	if (strlen(from_field) < sizeof(h->add_from))
		strcpy(h->add_from, from_field);
}

/* Is the current field removed? Return-Path: always, Bcc: on submission. */
static bool
hs_dropped(const struct smtp_hdrscan *h)
{
	return h->field == HS_F_RETURN_PATH || h->field == HS_F_AUTHRES ||
	       (h->submission && h->field == HS_F_BCC);
}

/* Is the current field's value kept to be reported? */
static bool
hs_reported(const struct smtp_hdrscan *h)
{
	return h->field == HS_F_DELIVERED_TO ||
	       (h->submission && (h->field == HS_F_FROM || h->field == HS_F_SENDER));
}

void
smtp_hdrscan_sender(struct smtp_hdrscan *h, smtp_hdrscan_fn *sender)
{
	h->sender = sender;
}

void
smtp_hdrscan_authserv(struct smtp_hdrscan *h, const char *id)
{
	snprintf(h->authserv_id, sizeof(h->authserv_id), "%s", id);
}

static void
hs_put(unsigned char *out, size_t *o, unsigned char c)
{
	out[(*o)++] = c;
}

static void
hs_release(struct smtp_hdrscan *h, unsigned char *out, size_t *o)
{
	memcpy(out + *o, h->hold, h->n_hold);
	*o += h->n_hold;
	h->n_hold = 0;
}

static bool
hs_blank(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Classifies hold[0..n) against one name; bytes after the name must be
 * blanks, and a colon may come last. */
static enum hs_class
hs_match(const unsigned char *hold, size_t n, const char *name)
{
	size_t len = strlen(name);

	if (strncasecmp((const char *)hold, name, n < len ? n : len) != 0)
		return HS_C_NONE;
	for (size_t i = len; i < n; i++) {
		if (hold[i] == ':' && i == n - 1)
			return HS_C_FIELD;
		if (!hs_blank(hold[i]))
			return HS_C_NONE;
	}
	return HS_C_MAYBE;
}

/* Is c a byte an authserv-id may hold (a host name's)? */
static bool
hs_id_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == '_' || c >= 0x80;
}

/* Classifies the value start of an Authentication-Results: field,
 * v[0..n): blanks, folding and comments, then the authserv-id. FIELD
 * when it is id, NONE when it is not, MAYBE while undecided. */
static enum hs_class
hs_match_id(const unsigned char *v, size_t n, const char *id)
{
	size_t i = 0, len = strlen(id);

	for (;;) {
		while (i < n && (hs_blank(v[i]) || v[i] == '\r' || v[i] == '\n'))
			i++;
		if (i < n && v[i] == '(') {
			while (i < n && v[i] != ')')
				i++;
			if (i == n)
				return HS_C_MAYBE;
			i++;
			continue;
		}
		break;
	}
	for (size_t k = 0; k < len; k++, i++) {
		if (i == n)
			return HS_C_MAYBE;
		if ((v[i] | 0x20) != (id[k] | 0x20) || !hs_id_byte(v[i]))
			return HS_C_NONE;
	}
	if (i == n)
		return HS_C_MAYBE;
	return hs_id_byte(v[i]) ? HS_C_NONE : HS_C_FIELD;
}

/* An Authentication-Results: line start: the name, blanks, the colon,
 * then our authserv-id. */
static enum hs_class
hs_match_authres(const unsigned char *hold, size_t n, const char *id)
{
	size_t len = strlen(hs_names[HS_F_AUTHRES]);
	size_t i;

	if (id[0] == '\0' ||
	    strncasecmp((const char *)hold, hs_names[HS_F_AUTHRES], n < len ? n : len) != 0)
		return HS_C_NONE;
	if (n <= len)
		return HS_C_MAYBE;
	for (i = len; i < n && hs_blank(hold[i]); i++)
		;
	if (i == n)
		return HS_C_MAYBE;
	if (hold[i] != ':')
		return HS_C_NONE;
	return hs_match_id(hold + i + 1, n - i - 1, id);
}

/* Classifies the held bytes; *field_r names the field they may be. */
static enum hs_class
hs_classify(const struct smtp_hdrscan *h, int *field_r)
{
	for (int f = HS_F_RETURN_PATH; f <= HS_F_LAST; f++) {
		enum hs_class c = hs_match(h->hold, h->n_hold, hs_names[f]);

		if (c != HS_C_NONE) {
			*field_r = f;
			return c;
		}
	}
	if (hs_match_authres(h->hold, h->n_hold, h->authserv_id) != HS_C_NONE) {
		*field_r = HS_F_AUTHRES;
		return hs_match_authres(h->hold, h->n_hold, h->authserv_id);
	}
	*field_r = HS_F_OTHER;
	return HS_C_NONE;
}

static void
hs_value_add(struct smtp_hdrscan *h, unsigned char c)
{
	if (c == '\r' || c == '\n')
		return;			/* unfolding removes the line ends */
	if (c == '\0' || h->n_value == SMTP_HDRSCAN_VALUE_MAX)
		h->value_long = true;
	else
		h->value[h->n_value++] = (char)c;
}

/* The current field has ended: reports a Delivered-To: or From: value. */
static void
hs_field_end(struct smtp_hdrscan *h)
{
	smtp_hdrscan_fn *fn = h->field == HS_F_DELIVERED_TO ? h->delivered_to
			     : h->field == HS_F_SENDER ? h->sender : h->from;
	size_t start = 0, end = h->n_value;

	if (hs_reported(h) && !h->value_long && fn != NULL) {
		while (start < end && hs_blank((unsigned char)h->value[start]))
			start++;
		while (end > start && hs_blank((unsigned char)h->value[end - 1]))
			end--;
		h->value[end] = '\0';
		fn(h->ctx, h->value + start);
	}
	h->field = HS_F_OTHER;
	h->n_value = 0;
	h->value_long = false;
}

/* The field of the current line is known: drop, keep, or pass it. */
static void
hs_begin_field(struct smtp_hdrscan *h, int field, unsigned char *out, size_t *o)
{
	h->field = field;
	if (hs_dropped(h)) {
		h->n_hold = 0;
		if (field == HS_F_AUTHRES)
			h->authres_removed++;
		else
			h->removed++;
		h->state = HS_DROP;
		return;
	}
	h->has_date |= field == HS_F_DATE;
	h->has_msgid |= field == HS_F_MESSAGE_ID;
	h->n_from += field == HS_F_FROM;
	h->n_sender += field == HS_F_SENDER;
	hs_release(h, out, o);
	h->state = hs_reported(h) ? HS_VALUE : HS_PASS;
}

static void hs_bol_byte(struct smtp_hdrscan *h, unsigned char c, unsigned char *out, size_t *o);

/* One byte of a line start whose name is not known yet. */
static void
hs_name_byte(struct smtp_hdrscan *h, unsigned char c, unsigned char *out, size_t *o)
{
	enum hs_class cls;
	int field;

	if (h->n_hold > 0 && h->hold[h->n_hold - 1] == '\n' && !hs_blank(c)) {
		/* A folded Authentication-Results: start ended without an id:
		 * it passes, and c starts a new line. */
		hs_begin_field(h, HS_F_OTHER, out, o);
		h->state = HS_BOL;
		hs_bol_byte(h, c, out, o);
		return;
	}
	if (h->n_hold == SMTP_HDRSCAN_HOLD) {
		/* Only a whole name and blanks fill the hold, or an
		 * Authentication-Results: start padded to hide its id. */
		(void)hs_classify(h, &field);
		if (field == HS_F_AUTHRES) {
			hs_begin_field(h, field, out, o);
			if (c == '\n')
				h->state = HS_BOL;
			return;
		}
		if (hs_blank(c) || c == ':') {
			hs_begin_field(h, field, out, o);
			if (h->state == HS_VALUE)
				hs_put(out, o, c);
			return;
		}
		hs_begin_field(h, HS_F_OTHER, out, o);
		hs_put(out, o, c);
		if (c == '\n')
			h->state = HS_BOL;
		return;
	}
	h->hold[h->n_hold++] = c;
	cls = hs_classify(h, &field);
	if (cls == HS_C_MAYBE)
		return;
	hs_begin_field(h, cls == HS_C_FIELD ? field : HS_F_OTHER, out, o);
	if (c == '\n')
		h->state = HS_BOL;	/* no colon at all, or "...-Results: id" */
}

/* Before the empty line (or the end of a message that has none): the
 * fields submission adds, if the message lacks them. */
static void
hs_add_one(const char *field, unsigned char *out, size_t *o)
{
	size_t len = strlen(field);

	memcpy(out + *o, field, len);
	*o += len;
}

static void
hs_add_fields(struct smtp_hdrscan *h, unsigned char *out, size_t *o)
{
	if (!h->submission || h->added)
		return;
	h->added = true;
	if (!h->has_date)
		hs_add_one(h->add_date, out, o);
	if (!h->has_msgid)
		hs_add_one(h->add_msgid, out, o);
	if (h->n_from == 0)
		hs_add_one(h->add_from, out, o);
}

/* The empty line: the header section is over. */
static void
hs_end_headers(struct smtp_hdrscan *h)
{
	hs_field_end(h);
	h->state = HS_BODY;
}

/* The first byte of a header line. */
static void
hs_bol_byte(struct smtp_hdrscan *h, unsigned char c, unsigned char *out, size_t *o)
{
	if (c == '\r') {
		h->hold[0] = c;
		h->n_hold = 1;
		h->state = HS_BOL_CR;
		return;
	}
	if (c == '\n') {
		hs_add_fields(h, out, o);
		hs_put(out, o, c);
		hs_end_headers(h);
		return;
	}
	if (hs_blank(c)) {
		/* A continuation line belongs to the field above it. */
		if (hs_dropped(h)) {
			h->state = HS_DROP;
			return;
		}
		hs_put(out, o, c);
		if (hs_reported(h)) {
			hs_value_add(h, c);
			h->state = HS_VALUE;
		} else {
			h->state = HS_PASS;
		}
		return;
	}
	hs_field_end(h);
	h->state = HS_NAME;
	hs_name_byte(h, c, out, o);
}

static void
hs_step(struct smtp_hdrscan *h, unsigned char c, unsigned char *out, size_t *o)
{
	switch (h->state) {
	case HS_BOL:
		hs_bol_byte(h, c, out, o);
		break;
	case HS_BOL_CR:
		if (c == '\n')
			hs_add_fields(h, out, o);
		hs_release(h, out, o);
		hs_put(out, o, c);
		if (c == '\n') {
			hs_end_headers(h);
			break;
		}
		/* A line that starts with a bare CR is no field. */
		hs_field_end(h);
		h->state = HS_PASS;
		break;
	case HS_NAME:
		hs_name_byte(h, c, out, o);
		break;
	case HS_VALUE:
		hs_value_add(h, c);
		/* fall through */
	case HS_PASS:
		hs_put(out, o, c);
		/* fall through */
	case HS_DROP:
		if (c == '\n')
			h->state = HS_BOL;
		break;
	default:
		hs_put(out, o, c);
		break;
	}
}

size_t
smtp_hdrscan_feed(struct smtp_hdrscan *h, const unsigned char *in, size_t inlen,
		  unsigned char *out)
{
	size_t i = 0, o = 0;

	/* The body is most of the bytes: it goes through in one copy. */
	while (i < inlen && h->state != HS_BODY)
		hs_step(h, in[i++], out, &o);
	memcpy(out + o, in + i, inlen - i);
	return o + inlen - i;
}

size_t
smtp_hdrscan_finish(struct smtp_hdrscan *h, unsigned char *out)
{
	size_t o = 0;

	if (h->state == HS_BOL)
		hs_add_fields(h, out, &o);
	if (h->state == HS_NAME || h->state == HS_BOL_CR)
		hs_release(h, out, &o);
	hs_field_end(h);
	h->state = HS_BODY;
	return o;
}
