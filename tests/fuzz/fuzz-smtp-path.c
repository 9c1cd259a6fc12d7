/* fuzz-smtp-path - smtp_path_parse, then a round trip: a path formatted
 * by smtp_path_format must parse back to the same mailbox. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
fuzz_same_path(const struct smtp_path *a, const struct smtp_path *b)
{
	return a->null_path == b->null_path && a->postmaster == b->postmaster &&
	       a->utf8 == b->utf8 && strcmp(a->local, b->local) == 0 &&
	       strcmp(a->domain, b->domain) == 0;
}

static void
fuzz_round_trip(const char *s, size_t len, bool utf8_ok)
{
	struct smtp_path path, again;
	const char *end = NULL, *error = NULL;
	char out[1024], wrapped[1030];
	int n;

	if (smtp_path_parse(s, utf8_ok, &path, &end, &error) < 0) {
		if (error == NULL || error[0] == '\0')
			abort();
		return;
	}
	if (end <= s || end > s + len || end[-1] != '>' || (path.utf8 && !utf8_ok))
		abort();
	n = smtp_path_format(&path, out, sizeof(out));
	if (n < 0 || (size_t)n != strlen(out))
		abort();
	memcpy(wrapped, "<", 1);
	memcpy(wrapped + 1, out, (size_t)n);
	memcpy(wrapped + 1 + n, ">", 2);
	if (smtp_path_parse(wrapped, utf8_ok, &again, &end, &error) < 0)
		abort();
	if (*end != '\0' || !fuzz_same_path(&path, &again))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	/* An embedded NUL ends the string, as it would for the caller. */
	fuzz_round_trip(s, strlen(s), false);
	fuzz_round_trip(s, strlen(s), true);
	free(s);
	return 0;
}
