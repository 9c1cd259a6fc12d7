/* fuzz-dsn - the reply classifier over any text, then a whole bounce with
 * that text as the reply, address and header section: the composer must
 * never crash, and its header section must have no field the input made. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/dsn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_compose(const char *s, size_t len)
{
	struct dsn_rcpt r = { .final_rcpt = s, .orcpt = s, .action = DSN_FAILED, .status = s,
			      .remote_mta = s, .diagnostic = s, .last_attempt = 1 };
	struct dsn_msg m = { .myhostname = "mx.example.test", .sender = s, .envid = s,
			     .now = 1, .token = "FUZZ", .header = s, .header_len = len,
			     .body = s, .body_len = len, .body_max = 4096, .rcpts = &r,
			     .nrcpts = 1 };
	struct yj_err err;
	struct buf out;
	int rc;

	buf_init(&out, 1024 * 1024);
	rc = dsn_compose(&m, &out, &err);
	if (rc == 1) {
		const char *end = strstr(out.data, "\r\n\r\n");

		/* The bounce's own header section is the fixed set of fields. */
		if (end == NULL || memmem(out.data, (size_t)(end - out.data), "\r\nBcc", 5) != NULL)
			abort();
		if (strstr(out.data, "\r\n--=_dsn_FUZZ--\r\n") == NULL)
			abort();
	} else if (rc == 0 && s[0] != '\0') {
		abort();
	}
	buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if ((unsigned)dsn_classify(s, s) >= DSN_R_COUNT)
		abort();
	fuzz_compose(s, strlen(s));
	free(s);
	return 0;
}
