/* libFuzzer target for the POP3 command parser, the AUTH continuation
 * parser and the RETR/TOP encoder.
 *
 * The first byte picks what is fed: 0-1 a command line, 2 an AUTH line,
 * 3 a message for RETR, 4 a message for TOP (the second byte is the line
 * count). The encoder's output is decoded again and compared with the
 * input, so a stuffing mistake is a crash, not just a crash-free run.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_msg.h"
#include "pop3/pop3_parse.h"

#define FUZZ_CHECK(x) do { if (!(x)) abort(); } while (0)

static void
fuzz_cmd(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	struct pop3_cmd cmd;
	const char *error = NULL;

	memcpy(line, data, size);
	line[size] = '\0';
	if (pop3_cmd_parse(line, size, &cmd, &error) == 1) {
		FUZZ_CHECK(cmd.verb > POP3_CMD_UNKNOWN && cmd.verb < POP3_CMD_COUNT);
		FUZZ_CHECK(cmd.arg != NULL && strlen(cmd.arg) < POP3_AUTH_LINE_MAX);
		FUZZ_CHECK(strlen(cmd.arg) <= POP3_MECH_MAX || cmd.verb != POP3_CMD_AUTH);
	} else {
		FUZZ_CHECK(error != NULL && strncmp(error, "-ERR ", 5) == 0);
	}
	free(line);
}

static void
fuzz_auth_line(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	const char *b64 = NULL;

	memcpy(line, data, size);
	line[size] = '\0';
	if (pop3_auth_line_parse(line, size, &b64) == 1)
		FUZZ_CHECK(strchr(b64, ' ') == NULL && strchr(b64, '\n') == NULL);
	free(line);
}

/* What the client must get back after un-stuffing: bare LFs as CRLF and
 * a line break at the end. Returns the length written to out. */
static size_t
fuzz_expected(const uint8_t *in, size_t n, uint8_t *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = in[i];
	}
	if (o > 0 && out[o - 1] != '\n') {
		if (out[o - 1] != '\r')
			out[o++] = '\r';
		out[o++] = '\n';
	}
	return o;
}

/* Un-stuffs a multi-line response; checks its framing on the way. */
static size_t
fuzz_unstuff(const uint8_t *in, size_t n, uint8_t *out)
{
	size_t o = 0, i = 0;
	bool bol = true;

	FUZZ_CHECK(n >= 3 && memcmp(in + n - 3, ".\r\n", 3) == 0);
	n -= 3;
	FUZZ_CHECK(n == 0 || (n >= 2 && in[n - 2] == '\r' && in[n - 1] == '\n'));
	for (; i < n; i++) {
		if (bol && in[i] == '.') {
			FUZZ_CHECK(i + 1 < n && in[i + 1] == '.');
			i++;
		}
		if (in[i] == '\n')
			FUZZ_CHECK(i > 0 && in[i - 1] == '\r');
		out[o++] = in[i];
		bol = in[i] == '\n';
	}
	return o;
}

static void
fuzz_encode(const uint8_t *data, size_t size, long long top)
{
	uint8_t *out = malloc(POP3_DOT_OUT_SIZE(size) + POP3_DOT_END_MAX + 1);
	uint8_t *want = malloc(size * 2 + 3);
	uint8_t *back = malloc(POP3_DOT_OUT_SIZE(size) + 1);
	struct pop3_dot dot;
	size_t o = 0, pos = 0, nwant, nback;

	pop3_dot_init(&dot, top);
	/* Odd chunk sizes, so state is carried across chunk boundaries. */
	while (pos < size && !dot.done) {
		size_t step = size - pos < 7 ? size - pos : 7, used = 0;
		o += pop3_dot_encode(&dot, data + pos, step, out + o, &used);
		FUZZ_CHECK(used == step || dot.done);
		pos += used;
	}
	o += pop3_dot_finish(&dot, out + o);
	nback = fuzz_unstuff(out, o, back);
	nwant = fuzz_expected(data, size, want);
	if (top < 0)
		FUZZ_CHECK(nback == nwant && memcmp(back, want, nwant) == 0);
	else
		FUZZ_CHECK(nback <= nwant && memcmp(back, want, nback) == 0);
	free(out);
	free(want);
	free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	switch (data[0] % 5) {
	case 0:
	case 1:
		fuzz_cmd(data + 1, size - 1);
		break;
	case 2:
		fuzz_auth_line(data + 1, size - 1);
		break;
	case 3:
		fuzz_encode(data + 1, size - 1, -1);
		break;
	case 4:
		fuzz_encode(data + 2, size - 2, data[1]);
		break;
	}
	return 0;
}
