/* smtp_data.h - the DATA body decoder: dot-unstuffing and end-of-data
 * detection over a byte stream, safe against SMTP smuggling.
 *
 * The end of data is CR LF "." CR LF and nothing else: a line that ended
 * in a bare LF, or a "." line ending in a bare LF, never ends it. Lines
 * ending in a bare LF are passed on with CRLF (so the stored message is
 * canonical); a bare CR not followed by LF is passed through unchanged.
 * The first line counts as following a CRLF (the DATA command's).
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

/* For BDAT chunks, which are not dot-stuffed: copies in to out, making
 * each LF that has no CR before it a CRLF, as DATA does, so that every
 * stored message has canonical line ends (this server announces no
 * BINARYMIME). *prev_cr carries the last byte's state from one chunk to
 * the next (start with false). out holds at least 2 * inlen bytes.
 * Returns the number of bytes written. */
size_t smtp_crlf_normalize(bool *prev_cr, const unsigned char *in, size_t inlen,
			   unsigned char *out);

#endif
