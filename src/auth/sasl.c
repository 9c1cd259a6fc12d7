#include "auth/sasl.h"

#include <stdbool.h>
#include <string.h>

#include "base/base64.h"

long
sasl_base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outlen)
{
	long n;

	if (outlen < 1)
		return -1;
	/* RFC 4954/5034: "=" is an empty initial response. */
	if (inlen == 1 && in[0] == '=')
		inlen = 0;
	n = base64_decode(in, inlen, BASE64_STRICT, out, outlen - 1);
	if (n >= 0)
		out[n] = '\0';
	return n;
}

long
sasl_base64_encode(const unsigned char *in, size_t inlen, char *out, size_t outlen)
{
	return base64_encode(in, inlen, out, outlen);
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
