/* Unit tests for the SMTP client's pure parts: DATA transparency and
 * line ends, the TLS policy lookup, and the 8-bit to 7-bit conversion. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "queue/smtp_7bit.h"
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

	/* A default entry for the domains not named, wherever it stands. */
	test_begin("smtp_tls_policy default entry");
	test_assert(smtpc_tls_policy("*=verify", "b.test") == SMTPC_TLS_VERIFY);
	test_assert(smtpc_tls_policy("default=encrypt", "b.test") == SMTPC_TLS_ENCRYPT);
	test_assert(smtpc_tls_policy("DEFAULT=none", "b.test") == SMTPC_TLS_NONE);
	test_assert(smtpc_tls_policy("*=verify b.test=may", "b.test") == SMTPC_TLS_MAY);
	test_assert(smtpc_tls_policy("b.test=may, *=verify", "b.test") == SMTPC_TLS_MAY);
	test_assert(smtpc_tls_policy("b.test=may, *=verify", "c.test") == SMTPC_TLS_VERIFY);
	test_assert(smtpc_tls_policy("b.test=none *=encrypt", "b.test") == SMTPC_TLS_NONE);
	test_assert(smtpc_tls_policy("*.test=verify", "b.test") == SMTPC_TLS_MAY);
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
	test_assert(smtpc_tls_policy_check("*=verify b.test=may default=encrypt", &err) == 1);
	test_assert(smtpc_tls_policy_check("*=sometimes", &err) == -1);
	test_assert(smtpc_tls_policy_check("b.test", &err) == -1);
	test_assert(smtpc_tls_policy_check("=verify", &err) == -1);
	test_assert(smtpc_tls_policy_check("a.test=may b.test=", &err) == -1);
	test_assert(strstr(err.msg, "'b.test='") != NULL);
	test_end();
}

static void
collect(void *arg, const char *p, size_t n)
{
	struct buf *b = arg;

	test_assert(buf_append(b, p, n) == 1);
}

/* in converted (fed in pieces of step bytes), or NULL with why when it
 * cannot be; the caller frees the result. */
static char *
seven_keep(const char *in, size_t step, bool keep_8bit, char *why, size_t whylen)
{
	struct smtp7 *d = smtp7_new(keep_8bit);
	struct buf out = { 0 };
	size_t n = strlen(in);
	char *res;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t off = 0; off < n; off += step)
			smtp7_feed(d, in + off, n - off < step ? n - off : step);
		if (smtp7_end(d, why, whylen) < 0) {
			smtp7_free(d);
			return NULL;
		}
		if (pass == 0) {
			buf_init(&out, 1 << 20);
			smtp7_start_output(d, collect, &out);
		}
	}
	smtp7_free(d);
	res = strndup(out.data != NULL ? out.data : "", out.len);
	buf_free(&out);
	return res;
}

static char *
seven(const char *in, size_t step, char *why, size_t whylen)
{
	return seven_keep(in, step, false, why, whylen);
}

static void
test_7bit(void)
{
	static const size_t steps[] = { 1, 3, 7, 100000 };
	char why[SMTP7_REASON_MAX], *got, longline[300], want[600];

	test_begin("8-bit to 7-bit conversion");
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		got = seven("Subject: x\nContent-Type: text/plain; charset=utf-8\n"
			    "Content-Transfer-Encoding: 8bit\n\nh\xc3\xa9 =x \n.\n", steps[i],
			    why, sizeof(why));
		test_assert_strcmp(got, "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n"
				   "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
				   "h=C3=A9 =3Dx=20\r\n.\r\n");
		free(got);
	}
	/* No Content-Type: text/plain, converted; a 7-bit part as it is. */
	got = seven("Subject: y\r\n\r\n\xe9\r\n", 5, why, sizeof(why));
	test_assert_strcmp(got, "Subject: y\r\nContent-Transfer-Encoding: quoted-printable\r\n"
			   "\r\n=E9\r\n");
	free(got);
	got = seven("Subject: y\r\n\r\na = b \r\n", 5, why, sizeof(why));
	test_assert_strcmp(got, "Subject: y\r\n\r\na = b \r\n");
	free(got);
	/* Multipart: only the 8-bit part changes; boundaries, the ASCII
	 * part, base64 and the epilogue stay. */
	got = seven("Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
		    "Content-Transfer-Encoding: 8bit\r\n\r\npre\r\n"
		    "--b1\r\nContent-Type: text/plain\r\n\r\nascii = yes\r\n"
		    "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: 8bit\r\n\r\n\xc3\xbc\r\n"
		    "--b1\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
		    "Subject: inner\r\n\r\n\xc3\xa4\r\n"
		    "--b1\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
		    "iVBO\r\n--b1--\r\nepilogue\r\n", 4, why, sizeof(why));
	test_assert_strcmp(got, "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npre\r\n"
			   "--b1\r\nContent-Type: text/plain\r\n\r\nascii = yes\r\n"
			   "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
			   "Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=BC\r\n"
			   "--b1\r\nContent-Type: message/rfc822\r\n"
			   "Content-Transfer-Encoding: 7bit\r\n\r\n"
			   "Subject: inner\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
			   "=C3=A4\r\n"
			   "--b1\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
			   "\r\niVBO\r\n--b1--\r\nepilogue\r\n");
	free(got);
	/* A long line: soft breaks, no line over 76. */
	memset(longline, '\xe9', 100);
	longline[100] = '\0';
	snprintf(want, sizeof(want), "Subject: l\r\n\r\n%s", longline);
	got = seven(want, 9, why, sizeof(why));
	test_assert(got != NULL);
	if (got != NULL) {
		char *body = strstr(got, "\r\n\r\n") + 4;
		size_t col = 0, lines = 0;

		for (char *p = body; *p != '\0'; p++) {
			if (*p == '\n') {
				test_assert(col <= 77);	/* 76 and the CR */
				col = 0;
				lines++;
			} else {
				col++;
			}
		}
		test_assert(lines == 4);	/* 100 x "=E9": 25 to a line */
		test_assert(strncmp(body, "=E9=E9", 6) == 0);
	}
	free(got);
	/* What cannot be converted. */
	test_assert(seven("Subject: \xc3\xa9\r\n\r\nx\r\n", 3, why, sizeof(why)) == NULL);
	test_assert(strstr(why, "header") != NULL);
	test_assert(seven("Content-Transfer-Encoding: base64\r\n\r\n\xe9\r\n", 3, why,
			  sizeof(why)) == NULL);
	test_assert(strstr(why, "no encoding can be changed") != NULL);
	test_end();
}

/* The longest line of s, CRLF not counted. */
static size_t
longest_line(const char *s)
{
	size_t col = 0, max = 0;

	for (; *s != '\0'; s++) {
		if (*s == '\n')
			col = 0;
		else if (*s != '\r' && ++col > max)
			max = col;
	}
	return max;
}

/* m, with %s replaced by n copies of ch. */
static char *
with_run(const char *m, char ch, size_t n)
{
	char *run = malloc(n + 1), *res;

	memset(run, ch, n);
	run[n] = '\0';
	test_assert(asprintf(&res, m, run) > 0);
	free(run);
	return res;
}

static void
test_long_lines(void)
{
	static const size_t steps[] = { 1, 7, 1000, 100000 };
	char why[SMTP7_REASON_MAX], *in, *got, *want;

	test_begin("lines over 998 octets");
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		/* A text part: quoted-printable, soft breaks, 8-bit kept elsewhere. */
		in = with_run("Subject: l\r\n\r\n%s\r\nshort \xc3\xa9\r\n", 'a', 1500);
		got = seven_keep(in, steps[i], true, why, sizeof(why));
		test_assert(got != NULL && longest_line(got) <= 76);
		test_assert(got != NULL && strncmp(got, "Subject: l\r\nContent-Transfer-Encoding: "
						   "quoted-printable\r\n\r\n", 57) == 0);
		test_assert(got != NULL && strstr(got, "a=\r\naaa") != NULL &&
			    strstr(got, "short =C3=A9\r\n") != NULL);
		free(in);
		free(got);
		/* A header line: folded at 998 with CRLF SPACE. */
		in = with_run("Subject: %s\r\n\r\nx\r\n", 'b', 1200);
		got = seven_keep(in, steps[i], true, why, sizeof(why));
		want = with_run("Subject: %s\r\n", 'b', 989);
		free(in);
		in = with_run(" %s\r\n\r\nx\r\n", 'b', 1200 - 989);
		test_assert(got != NULL && strncmp(got, want, strlen(want)) == 0);
		test_assert(got != NULL && strlen(got) > strlen(want) &&
			    strcmp(got + strlen(want), in) == 0);
		test_assert(got != NULL && longest_line(got) == 998);
		free(in);
		free(got);
		free(want);
		/* base64: broken with CRLF, which its decoders skip. */
		in = with_run("Content-Transfer-Encoding: base64\r\n\r\n%s\r\n", 'Q', 1000);
		got = seven_keep(in, steps[i], true, why, sizeof(why));
		want = with_run("Content-Transfer-Encoding: base64\r\n\r\n%s\r\nQQ\r\n", 'Q', 998);
		test_assert_strcmp(got, want);
		free(in);
		free(got);
		free(want);
		/* quoted-printable: a soft break, never inside =XX. */
		in = with_run("Content-Transfer-Encoding: quoted-printable\r\n\r\n%s=41BC\r\n",
			      'c', 995);
		got = seven_keep(in, steps[i], true, why, sizeof(why));
		want = with_run("Content-Transfer-Encoding: quoted-printable\r\n\r\n%s=\r\n=41BC\r\n",
				'c', 995);
		test_assert_strcmp(got, want);
		free(in);
		free(got);
		free(want);
	}
	/* Short lines and 8-bit bytes, kept: unchanged. */
	got = seven_keep("Subject: y\r\n\r\n\xe9\r\n", 3, true, why, sizeof(why));
	test_assert_strcmp(got, "Subject: y\r\n\r\n\xe9\r\n");
	free(got);
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_dotstuff,
		test_tls_policy,
		test_tls_policy_check,
		test_7bit,
		test_long_lines,
		NULL,
	};

	return test_run(tests);
}
