/* Unit tests for the SMTP client's pure parts: DATA transparency and
 * line ends, and the TLS policy lookup. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/smtp_client.h"
#include "test.h"

/* The whole of in, stuffed and ended, fed in pieces of step bytes. */
static char *
stuffed(const char *in, size_t step)
{
	size_t n = strlen(in), o = 0;
	char *out = malloc(3 * n + 8);
	struct smtpc_stuff st = { .bol = true };

	for (size_t off = 0; off < n; off += step) {
		size_t len = n - off < step ? n - off : step;

		o += smtpc_dotstuff(&st, in + off, len, out + o);
	}
	o += smtpc_dotstuff_end(&st, out + o);
	out[o] = '\0';
	return out;
}

static void
test_dotstuff(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "", ".\r\n" },
		{ "a\r\n", "a\r\n.\r\n" },
		{ ".x\r\n", "..x\r\n.\r\n" },
		{ "..y\r\n.\r\nend", "...y\r\n..\r\nend\r\n.\r\n" },
		{ "a\nb\n", "a\r\nb\r\n.\r\n" },
		{ "a\rb", "a\r\nb\r\n.\r\n" },
		{ "a\r", "a\r\n.\r\n" },
		{ "a.b\r\n.\n.", "a.b\r\n..\r\n..\r\n.\r\n" },
		{ "\r\n\r\n", "\r\n\r\n.\r\n" },
	};

	test_begin("dot-stuffing and CRLF line ends");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t step = 1; step <= 3; step++) {
			char *got = stuffed(cases[i].in, step);

			test_assert_strcmp(got, cases[i].want);
			free(got);
		}
	}
	test_end();
}

static void
test_tls_policy(void)
{
	test_begin("smtp_tls_policy lookup");
	test_assert(smtpc_tls_policy("", "b.test") == SMTPC_TLS_MAY);
	test_assert(smtpc_tls_policy("b.test=encrypt", "b.test") == SMTPC_TLS_ENCRYPT);
	test_assert(smtpc_tls_policy("B.Test=ENCRYPT", "b.test") == SMTPC_TLS_ENCRYPT);
	test_assert(smtpc_tls_policy("a.test=encrypt, b.test=encrypt", "b.test") ==
		    SMTPC_TLS_ENCRYPT);
	test_assert(smtpc_tls_policy("b.test=may c.test=encrypt", "b.test") == SMTPC_TLS_MAY);
	test_assert(smtpc_tls_policy("xb.test=encrypt", "b.test") == SMTPC_TLS_MAY);
	test_assert(smtpc_tls_policy("b.test.x=encrypt", "b.test") == SMTPC_TLS_MAY);
	test_assert(smtpc_tls_policy("b.test=encrypted", "b.test") == SMTPC_TLS_MAY);
	test_assert(smtpc_tls_policy("b.test=verify", "b.test") == SMTPC_TLS_VERIFY);
	test_assert(smtpc_tls_policy("a.test=none,b.test=Verify", "a.test") == SMTPC_TLS_NONE);
	test_assert(smtpc_tls_policy("a.test=none,b.test=Verify", "b.test") == SMTPC_TLS_VERIFY);
	test_end();
}

static void
test_tls_policy_check(void)
{
	struct yj_err err;

	test_begin("smtp_tls_policy check");
	test_assert(smtpc_tls_policy_check("", &err) == 1);
	test_assert(smtpc_tls_policy_check(" a.test=none, b.test=may c.test=encrypt d.test=VERIFY ",
					   &err) == 1);
	test_assert(smtpc_tls_policy_check("b.test=sometimes", &err) == -1);
	test_assert(strstr(err.msg, "'b.test=sometimes'") != NULL);
	test_assert(smtpc_tls_policy_check("b.test", &err) == -1);
	test_assert(smtpc_tls_policy_check("=verify", &err) == -1);
	test_assert(smtpc_tls_policy_check("a.test=may b.test=", &err) == -1);
	test_assert(strstr(err.msg, "'b.test='") != NULL);
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_dotstuff,
		test_tls_policy,
		test_tls_policy_check,
		NULL,
	};

	return test_run(tests);
}
