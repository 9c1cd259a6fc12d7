/* smtp_data.h - the DATA body decoder: dot-unstuffing and end-of-data
 * detection over a byte stream, safe against SMTP smuggling.
 *
 * The end of data is CR LF "." CR LF and nothing else: a line that ended
 * in a bare LF or a bare CR, or a "." line ending in either, never ends
 * it. Lines ending in a bare LF or a bare CR (one not followed by LF) are
 * passed on with CR LF, so that the stored message is canonical: every
 * line ends in CR LF, the last one included (the end of data follows a
 * CR LF). The first line counts as following a CRLF (the DATA command's).
 *
 * Pure code, incremental: input may be split at any byte.
 */
#ifndef YJ_SMTP_DATA_H
#define YJ_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>

struct smtp_data_decoder {
	int state;
	bool done;
};

void smtp_data_init(struct smtp_data_decoder *d);

/* Decodes from in[0..inlen). Writes message bytes to out, which must hold
 * at least 2 * inlen + 2 bytes; *outlen_r is the number written. Returns
 * the number of input bytes consumed: all of them unless the end of data
 * was reached, in which case d->done is set and the bytes after the final
 * CRLF are not consumed (they are the next pipelined command). The final
 * CRLF before "." belongs to the message; "." CRLF does not. */
size_t smtp_data_decode(struct smtp_data_decoder *d, const unsigned char *in, size_t inlen,
			unsigned char *out, size_t *outlen_r);

/* For BDAT chunks, which are not dot-stuffed: the same canonical form as
 * DATA gives (this server announces no BINARYMIME). All zero is the
 * state before the first byte. */
struct smtp_crlf {
	bool prev_cr;		/* the last byte written was a CR */
	bool in_line;		/* the last byte written was not an LF */
};

/* Copies in to out, making each LF that has no CR before it and each CR
 * that has no LF after it a CR LF. The state carries over from one chunk
 * to the next. out holds at least 2 * inlen bytes. Returns the number of
 * bytes written. */
size_t smtp_crlf_normalize(struct smtp_crlf *c, const unsigned char *in, size_t inlen,
			   unsigned char *out);

/* At the end of the message: writes the CR LF (or the LF after a final
 * CR) that the last line lacks, if any, to out (room for 2 bytes).
 * Returns the number of bytes written; 0 for an empty message. */
size_t smtp_crlf_finish(struct smtp_crlf *c, unsigned char *out);

#endif
