#include "base/base64.h"

#include <limits.h>

static const char base64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* What has been read so far: the bits not yet written out, padding. */
struct base64_state {
	unsigned long acc;	/* the low `bits` bits are pending output */
	unsigned bits;
	size_t digits;		/* alphabet characters seen */
	size_t pad;		/* '=' seen */
	size_t out;		/* bytes written */
};

static int
base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static bool
base64_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Takes one alphabet character. Returns 1, or -1 if out is full. */
static int
base64_digit(struct base64_state *st, int v, unsigned char *out, size_t outlen)
{
	st->acc = (st->acc << 6) | (unsigned long)v;
	st->bits += 6;
	st->digits++;
	if (st->bits < 8)
		return 1;
	st->bits -= 8;
	if (st->out == outlen)
		return -1;
	out[st->out++] = (unsigned char)(st->acc >> st->bits);
	st->acc &= (1UL << st->bits) - 1;
	return 1;
}

/* Is what followed the data right for the mode? (Lenient takes all.) */
static bool
base64_end_ok(const struct base64_state *st, enum base64_mode mode)
{
	if (mode == BASE64_LENIENT)
		return true;
	/* Padding stands for the two or four bits left over, one '=' each. */
	if (st->pad > 2 || (st->pad > 0 && st->bits / 2 != st->pad))
		return false;
	if (mode == BASE64_STRICT)
		return (st->digits + st->pad) % 4 == 0;
	return st->acc == 0;
}

long
base64_decode(const char *in, size_t len, enum base64_mode mode, unsigned char *out,
	      size_t outlen)
{
	struct base64_state st = { 0 };

	for (size_t i = 0; i < len; i++) {
		int v = base64_value(in[i]);

		if (v >= 0) {
			if (st.pad > 0 || base64_digit(&st, v, out, outlen) < 0)
				return -1;
		} else if (in[i] == '=') {
			if (mode == BASE64_LENIENT)
				break;
			st.pad++;
		} else if (mode == BASE64_STRICT ||
			   (mode == BASE64_FOLDED && !base64_space(in[i]))) {
			return -1;
		}
	}
	if (!base64_end_ok(&st, mode) || st.out > LONG_MAX)
		return -1;
	return (long)st.out;
}

bool
base64_in_alphabet(char c)
{
	return base64_value(c) >= 0;
}

size_t
base64_encoded_len(size_t len)
{
	return (len + 2) / 3 * 4;
}

size_t
base64_decoded_max(size_t len)
{
	return len / 4 * 3 + (len % 4) * 3 / 4;
}

long
base64_encode(const unsigned char *in, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	if (len > (LONG_MAX / 4 - 1) * 3 || base64_encoded_len(len) >= outlen)
		return -1;
	for (size_t i = 0; i < len; i += 3) {
		unsigned long v = (unsigned long)in[i] << 16;

		if (i + 1 < len)
			v |= (unsigned long)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = base64_alphabet[(v >> 18) & 63];
		out[o++] = base64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? base64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? base64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return (long)o;
}
