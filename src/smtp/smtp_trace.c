/* smtp_trace.c - safe parts for Received: and the loop check. */
#include "smtp/smtp_trace.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* A name that is one address literal, "[1.2.3.4]" or "[IPv6:...]"? */
static bool
smtp_trace_literal(const char *helo)
{
	size_t n = strlen(helo);
	char inside[64];
	struct in_addr a4;
	struct in6_addr a6;

	if (n < 3 || helo[0] != '[' || helo[n - 1] != ']' || n - 2 >= sizeof(inside))
		return false;
	memcpy(inside, helo + 1, n - 2);
	inside[n - 2] = '\0';
	if (strncasecmp(inside, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, inside + 5, &a6) == 1;
	return inet_pton(AF_INET, inside, &a4) == 1;
}

void
smtp_trace_helo(const char *helo, char *out, size_t outlen)
{
	bool literal = smtp_trace_literal(helo);
	size_t o = 0;

	if (outlen == 0)
		return;
	for (const char *p = helo; *p != '\0' && o + 1 < outlen; p++) {
		bool bracket = *p == '[' || *p == ']';

		if (strchr("<>()\\\";:@", *p) != NULL && !(literal && *p == ':'))
			out[o++] = '?';
		else if (bracket && !literal)
			out[o++] = '?';
		else
			out[o++] = *p;
	}
	out[o] = '\0';
}

void
smtp_trace_ip(const char *ip, char *out, size_t outlen)
{
	snprintf(out, outlen, "[%s%s]", strchr(ip, ':') != NULL ? "IPv6:" : "", ip);
}

bool
smtp_trace_names(const char *value, const char *address)
{
	size_t n = strlen(value), len = strlen(address);

	if (n >= 2 && value[0] == '<' && value[n - 1] == '>') {
		value++;
		n -= 2;
	}
	return n == len && strncasecmp(value, address, n) == 0;
}
