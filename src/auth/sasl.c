#include "auth/sasl.h"

#include <stdbool.h>
#include <string.h>

#include <openssl/evp.h>

long
sasl_base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outlen)
{
	size_t pad = 0;
	int n;

	if (inlen == 1 && in[0] == '=') {
		/* RFC 4954/5034: "=" is an empty initial response. */
		if (outlen < 1)
			return -1;
		out[0] = '\0';
		return 0;
	}
	if (inlen % 4 != 0 || inlen / 4 * 3 + 1 > outlen || inlen > 0x7fffffff)
		return -1;
	for (size_t i = 0; i < inlen; i++) {
		char c = in[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || c == '+' || c == '/';
		if (c == '=' && i >= inlen - 2) {
			pad++;
			continue;
		}
		if (!ok || pad > 0)
			return -1;
	}
	if (inlen == 0) {
		out[0] = '\0';
		return 0;
	}
	n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)inlen);
	if (n < 0 || (size_t)n < pad)
		return -1;
	n -= (int)pad;
	out[n] = '\0';
	return n;
}

long
sasl_base64_encode(const unsigned char *in, size_t inlen, char *out, size_t outlen)
{
	size_t need = (inlen + 2) / 3 * 4 + 1;

	if (need > outlen || inlen > 0x3fffffff)
		return -1;
	return EVP_EncodeBlock((unsigned char *)out, in, (int)inlen);
}

/* Copies one NUL-delimited field; returns the position after it or -1. */
static long
sasl_field(const unsigned char *msg, size_t len, size_t pos, char *out, bool last)
{
	size_t start = pos;

	while (pos < len && msg[pos] != '\0')
		pos++;
	if (pos - start > SASL_FIELD_MAX)
		return -1;
	if (last ? pos != len : pos == len)
		return -1;
	memcpy(out, msg + start, pos - start);
	out[pos - start] = '\0';
	return (long)pos + 1;
}

int
sasl_plain_split(const unsigned char *msg, size_t len, char *authzid, char *authcid,
		 char *passwd)
{
	long pos;

	pos = sasl_field(msg, len, 0, authzid, false);
	if (pos < 0)
		return -1;
	pos = sasl_field(msg, len, (size_t)pos, authcid, false);
	if (pos < 0 || authcid[0] == '\0')
		return -1;
	pos = sasl_field(msg, len, (size_t)pos, passwd, true);
	return pos < 0 ? -1 : 1;
}
