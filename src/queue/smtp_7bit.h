/* smtp_7bit.h - makes an 8-bit MIME message 7-bit for a server that does
 * not offer 8BITMIME (RFC 6152 3: convert, or return it), and makes lines
 * longer than SMTP allows short (RFC 5322 2.1.1, RFC 5321 4.5.3.1.6).
 *
 * Every leaf part whose transfer encoding is 7bit, 8bit, binary or none
 * and whose content holds bytes above 127 is re-encoded quoted-printable
 * (RFC 2045 6.7), its Content-Transfer-Encoding field replaced; a
 * message/rfc822 part's 8bit is made 7bit and its message converted the
 * same way; all else passes unchanged. Which parts need it is learnt by
 * reading the whole message once first (the scan), so the decision is
 * made before a byte is sent: a message that cannot be converted (8-bit
 * bytes in a header, a preamble, or a base64 or quoted-printable part;
 * parts nested too deep; a header section too long) is refused then.
 *
 * A line longer than SMTP7_LINE_LIMIT is a reason to convert too: a leaf
 * part with such a line in a 7bit/8bit/binary/no encoding goes out
 * quoted-printable (its content unchanged for a reader); where no
 * encoding can change, the line is broken instead: a header line folded
 * with CRLF SPACE (as Postfix does), a quoted-printable line with a soft
 * break, other lines (base64, a preamble) with CRLF. With keep_8bit (the
 * server offers 8BITMIME) only long lines are converted, and 8-bit bytes
 * pass.
 *
 * Input is the message as stored (the blob); output has CRLF line ends.
 * Lines of any length are handled in pieces, so memory is bounded.
 */
#ifndef YJ_SMTP_7BIT_H
#define YJ_SMTP_7BIT_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP7_REASON_MAX 128
#define SMTP7_LINE_LIMIT 998		/* octets in a line, CRLF not counted */

typedef void smtp7_out(void *arg, const char *p, size_t n);

struct smtp7;

struct smtp7 *smtp7_new(bool keep_8bit);
void smtp7_free(struct smtp7 *d);

/* The scan: feed the whole message, then smtp7_end(). */
void smtp7_feed(struct smtp7 *d, const char *p, size_t n);
/* The end of the message: 1, or -1 if it cannot be converted (why says
 * why, in words for a bounce). */
int smtp7_end(struct smtp7 *d, char *why, size_t whylen);

/* After a scan that ended with 1: feed the same message again, and the
 * converted message goes to out; smtp7_end() ends it. */
void smtp7_start_output(struct smtp7 *d, smtp7_out *out, void *arg);

#endif
