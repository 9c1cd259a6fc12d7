/* base64.h - the one base64 codec (RFC 4648 section 4, the standard
 * alphabet) for every module.
 *
 * Its users differ only in what they accept, so the decoder takes a mode:
 * SASL answers malformed input with an error (RFC 4954 and 5034 ask it
 * to), DKIM tag values may be folded (RFC 6376 3.5), and a MIME body is
 * decoded as readers must, skipping what does not belong (RFC 2045 6.8).
 * Pure functions over byte buffers, no allocation.
 */
#ifndef YJ_BASE64_H
#define YJ_BASE64_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

enum base64_mode {
	/* Only the alphabet and final padding; the length a multiple of
	 * four. Unused low bits of the last quantum are tolerated, as most
	 * decoders do. (SASL, stored password hashes.) */
	BASE64_STRICT,
	/* SP, HT, CR and LF anywhere are ignored; padding may be left out,
	 * but if given it must match, and unused bits must be zero.
	 * Anything else is an error. (DKIM b=, bh=, p=.) */
	BASE64_FOLDED,
	/* Characters outside the alphabet are skipped and the first '='
	 * ends the data; nothing is an error. (MIME bodies, RFC 2047 "B"
	 * words.) */
	BASE64_LENIENT,
};

/* Is c one of the 64 characters of the alphabet? */
bool base64_in_alphabet(char c);

/* The length base64_encode() writes for len input bytes, without the
 * NUL. */
size_t base64_encoded_len(size_t len);
/* The most bytes in input of len characters decodes to. */
size_t base64_decoded_max(size_t len);

/* Decodes in[0..len) into out, as mode says. Returns the number of bytes
 * written, or -1 if the input is malformed for the mode or decodes to
 * more than outlen bytes. out is not NUL-terminated. */
long base64_decode(const char *in, size_t len, enum base64_mode mode, unsigned char *out,
		   size_t outlen) YJ_MUST_CHECK;

/* Encodes in[0..len) with padding and no line breaks, NUL-terminated.
 * Returns the length (base64_encoded_len(len)), or -1 if out cannot
 * hold it and the NUL; out is then left as it was. */
long base64_encode(const unsigned char *in, size_t len, char *out, size_t outlen) YJ_MUST_CHECK;

#endif
