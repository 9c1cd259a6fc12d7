/* smtp_hdrscan.h - a filter over the header section of an incoming
 * message, between the DATA/BDAT decoders and the blob.
 *
 * It removes every Return-Path: field, continuation lines included: that
 * field is ours to add at final delivery (RFC 5321 4.4), and a client's
 * copy would name a sender we never saw. It reports the value of every
 * Delivered-To: field, unfolded and trimmed, so that the caller can
 * refuse a message that has already been delivered to one of its
 * recipients (a mail loop). Field names are matched case-insensitively,
 * with the obsolete blanks before the colon (RFC 5322 4.5.3). The header
 * section ends at the first empty line; the body passes untouched.
 *
 * In submission mode (smtp_hdrscan_submission) it also removes Bcc:
 * fields, reports every From: value (and every Sender: value, given
 * smtp_hdrscan_sender), and adds the Date:, Message-ID: and
 * From: fields the caller prepared when the message has none, at the end of the
 * header section: so the blob gets them without the message being held.
 *
 * Given our authserv-id, it also removes every Authentication-Results:
 * field that claims it (RFC 8601 5): only we may say what we checked.
 * The id may follow blanks, folding and simple comments; a field whose
 * start fills the hold before its id is decided is removed too.
 *
 * Pure code, incremental: input may be split at any byte, memory is
 * bounded (the struct). A line ends at LF (CR LF, or a bare LF).
 */
#ifndef YJ_SMTP_HDRSCAN_H
#define YJ_SMTP_HDRSCAN_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes of a line's start held back until the field name is known: the
 * longest name looked for, plus blanks before its colon (a name with
 * more blanks than that still counts as the field), or an
 * Authentication-Results: name and its authserv-id. */
#define SMTP_HDRSCAN_HOLD 512
/* Longest authserv-id looked for (a host name). */
#define SMTP_HDRSCAN_ID_MAX 255
/* Longest Delivered-To: value reported; a longer one names no address. */
#define SMTP_HDRSCAN_VALUE_MAX 1000

/* Most bytes of the fields submission mode may add. */
#define SMTP_HDRSCAN_ADD_MAX 768
/* Room beyond inlen that feed and finish may need in out. */
#define SMTP_HDRSCAN_SLACK (SMTP_HDRSCAN_HOLD + SMTP_HDRSCAN_ADD_MAX)

/* Called with each Delivered-To: value (NUL-terminated) once its field
 * has ended. */
typedef void smtp_hdrscan_fn(void *ctx, const char *value);

struct smtp_hdrscan {
	smtp_hdrscan_fn *delivered_to;
	void *ctx;
	unsigned removed;		/* Return-Path: fields removed */
	unsigned authres_removed;	/* Authentication-Results: fields removed */
	char authserv_id[SMTP_HDRSCAN_ID_MAX + 1];	/* "": none removed */
	/* private */
	int state;
	int field;			/* the field the current line belongs to */
	unsigned char hold[SMTP_HDRSCAN_HOLD];
	size_t n_hold;
	char value[SMTP_HDRSCAN_VALUE_MAX + 1];
	size_t n_value;
	bool value_long;
	/* submission mode */
	bool submission;
	smtp_hdrscan_fn *from;
	unsigned n_from;		/* From: fields seen */
	smtp_hdrscan_fn *sender;
	unsigned n_sender;		/* Sender: fields seen */
	bool has_date, has_msgid;
	bool added;			/* the missing fields were written */
	char add_date[128];
	char add_msgid[256];
	char add_from[384];
};

void smtp_hdrscan_init(struct smtp_hdrscan *h, smtp_hdrscan_fn *delivered_to, void *ctx);

/* Removes Authentication-Results: fields claiming id (cut to
 * SMTP_HDRSCAN_ID_MAX). Call after init, before the first byte. */
void smtp_hdrscan_authserv(struct smtp_hdrscan *h, const char *id);

/* Turns on submission mode, before the first byte. from gets each From:
 * value (unfolded, trimmed; a value longer than SMTP_HDRSCAN_VALUE_MAX is
 * counted in n_from but not reported). date_field, msgid_field and
 * from_field are whole fields with their CRLF (or ""), added when the
 * message has no field of that name; longer ones than the struct holds
 * are not added. */
void smtp_hdrscan_submission(struct smtp_hdrscan *h, smtp_hdrscan_fn *from,
			     const char *date_field, const char *msgid_field,
			     const char *from_field);

/* In submission mode, also reports each Sender: value to sender, as
 * From: values are reported (counted in n_sender). Call before the
 * first byte. */
void smtp_hdrscan_sender(struct smtp_hdrscan *h, smtp_hdrscan_fn *sender);

/* Filters in[0..inlen) into out, which holds at least
 * inlen + SMTP_HDRSCAN_SLACK bytes. Returns the number of bytes written. */
size_t smtp_hdrscan_feed(struct smtp_hdrscan *h, const unsigned char *in, size_t inlen,
			 unsigned char *out);

/* At the end of the message: writes any held bytes and fields still to
 * be added to out (room for SMTP_HDRSCAN_SLACK bytes) and reports a pending Delivered-To: value.
 * Returns the number of bytes written. */
size_t smtp_hdrscan_finish(struct smtp_hdrscan *h, unsigned char *out);

#endif
