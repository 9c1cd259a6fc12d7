/* pop3_msg.h - how a message goes out over POP3: the multi-line encoding
 * of RETR and TOP (RFC 1939 section 3) and UIDL values. Pure code over
 * byte buffers, so a message of any size is sent in fixed-size chunks.
 */
#ifndef YJ_POP3_MSG_H
#define YJ_POP3_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "<uidvalidity><uid>", 16 hex digits. RFC 1939 allows up to 70. */
#define POP3_UIDL_LEN 16

/* Writes the unique-id of a message: both halves are fixed for the
 * life of the mailbox and UIDs are never reused, so the value names one
 * message forever. out holds POP3_UIDL_LEN + 1 bytes. */
void pop3_uidl_format(uint32_t uidvalidity, uint32_t uid, char *out);

/* The encoder of a message body into a multi-line response: a line that
 * starts with "." gets another one, a bare LF becomes CRLF, and for TOP
 * the output stops after the header, the blank line and the requested
 * number of body lines. */
struct pop3_dot {
	bool bol;			/* the next byte starts a line */
	bool prev_cr;			/* the last byte was a CR */
	size_t line_len;		/* bytes in the current line so far */
	bool in_body;			/* the blank line after the header has passed */
	bool limited;			/* TOP: stop after body_left lines */
	unsigned long body_left;
	bool done;			/* TOP: the limit was reached */
};

/* For RETR: top_lines < 0 sends everything. For TOP: top_lines >= 0. */
void pop3_dot_init(struct pop3_dot *d, long long top_lines);

/* Worst case growth: every input byte may become two output bytes. */
#define POP3_DOT_OUT_SIZE(inlen) ((inlen) * 2)

/* Encodes in into out, which holds at least POP3_DOT_OUT_SIZE(inlen)
 * bytes. Returns the number of bytes written. Stops early (and sets
 * d->done) when a TOP limit is reached; *consumed_r says how much of in
 * was used. Once done, further calls write nothing. */
size_t pop3_dot_encode(struct pop3_dot *d, const unsigned char *in, size_t inlen,
		       unsigned char *out, size_t *consumed_r);

/* The end of the response: CRLF if the message did not end with a line
 * break, then ".\r\n". out holds POP3_DOT_END_MAX bytes; returns the
 * length written. */
#define POP3_DOT_END_MAX 5
size_t pop3_dot_finish(const struct pop3_dot *d, unsigned char *out);

#endif
