/* libFuzzer target for the SASL decoders shared by SMTP, POP3 and IMAP:
 * base64 (checked by a round trip through the encoder), the PLAIN
 * message split, and the SASL server's state machine fed the input as
 * response lines. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sasl.h"
#include "auth/sasl_server.h"

#define FUZZ_CHECK(x) do { if (!(x)) abort(); } while (0)
#define FUZZ_MAX 4096

static void
fuzz_base64(const uint8_t *data, size_t size)
{
	static unsigned char out[FUZZ_MAX];
	static char again[FUZZ_MAX * 2];
	long n;

	n = sasl_base64_decode((const char *)data, size, out, sizeof(out));
	if (n < 0)
		return;
	static unsigned char back[FUZZ_MAX];
	long m, k;

	FUZZ_CHECK((size_t)n < sizeof(out) && out[n] == '\0');
	/* The bytes must survive a trip through the encoder. (The input
	 * itself need not come back: unused low bits of a last quantum are
	 * tolerated, as most decoders do.) */
	m = sasl_base64_encode(out, (size_t)n, again, sizeof(again));
	FUZZ_CHECK(m >= 0 && (n == 0 || m == (long)size));
	k = sasl_base64_decode(again, (size_t)m, back, sizeof(back));
	FUZZ_CHECK(k == n && memcmp(back, out, (size_t)n) == 0);
}

static void
fuzz_plain(const uint8_t *data, size_t size)
{
	static char z[SASL_FIELD_MAX + 1], c[SASL_FIELD_MAX + 1], p[SASL_FIELD_MAX + 1];

	if (sasl_plain_split(data, size, z, c, p) == 1) {
		FUZZ_CHECK(c[0] != '\0');
		FUZZ_CHECK(strlen(z) + strlen(c) + strlen(p) + 2 == size);
	}
}

/* Splits the input at LF into response lines; the first byte picks the
 * mechanism and whether the first line is an initial response. */
static void
fuzz_server(const uint8_t *data, size_t size)
{
	static char line[FUZZ_MAX + 1];
	struct sasl_server s;
	enum sasl_mech mech = size > 0 && (data[0] & 2) ? SASL_MECH_LOGIN : SASL_MECH_PLAIN;
	bool initial = size > 0 && (data[0] & 4);
	const char *challenge = "";
	enum sasl_status st = SASL_CONTINUE;
	size_t pos = size > 0 ? 1 : 0;
	bool started = false;

	while (st == SASL_CONTINUE && pos <= size) {
		size_t end = pos;

		while (end < size && data[end] != '\n')
			end++;
		memcpy(line, data + pos, end - pos);
		line[end - pos] = '\0';
		if (!started)
			st = sasl_server_start(&s, mech, initial ? line : NULL, &challenge);
		else
			st = sasl_server_step(&s, line, &challenge);
		if (!started && !initial) {
			started = true;
			continue;	/* the line is the answer to the first challenge */
		}
		started = true;
		FUZZ_CHECK(challenge != NULL);
		if (st == SASL_DONE)
			FUZZ_CHECK(s.authcid[0] != '\0' && strlen(s.passwd) <= SASL_FIELD_MAX);
		pos = end + 1;
	}
	sasl_server_clear(&s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > FUZZ_MAX)
		return 0;
	if ((data[0] & 3) == 1)
		fuzz_base64(data + 1, size - 1);
	else if ((data[0] & 3) == 2)
		fuzz_plain(data + 1, size - 1);
	else
		fuzz_server(data + 1, size - 1);
	return 0;
}
