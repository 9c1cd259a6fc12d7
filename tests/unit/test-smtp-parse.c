/* Unit tests for smtp_parse: command lines, paths, MAIL/RCPT/BDAT
 * arguments and HELO checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_parse.h"
#include "test.h"

/* ---- command lines ---- */

static void
test_cmd_parse(void)
{
	static const struct {
		const char *line;
		int ret;
		enum smtp_verb verb;
		const char *name, *arg;	/* or the error when ret < 0 */
	} cases[] = {
		{ "EHLO mx.example.org\r\n", 1, SMTP_CMD_EHLO, "EHLO", "mx.example.org" },
		{ "ehlo mx\n", 1, SMTP_CMD_EHLO, "ehlo", "mx" },
		{ "HELO x\r\n", 1, SMTP_CMD_HELO, "HELO", "x" },
		{ "MAIL FROM:<a@b> SIZE=10\r\n", 1, SMTP_CMD_MAIL, "MAIL", "FROM:<a@b> SIZE=10" },
		{ "rcpt TO:<a@b>\r\n", 1, SMTP_CMD_RCPT, "rcpt", "TO:<a@b>" },
		{ "DATA\r\n", 1, SMTP_CMD_DATA, "DATA", "" },
		{ "BDAT 100 LAST\r\n", 1, SMTP_CMD_BDAT, "BDAT", "100 LAST" },
		{ "RSET\r\n", 1, SMTP_CMD_RSET, "RSET", "" },
		{ "NoOp hello there\r\n", 1, SMTP_CMD_NOOP, "NoOp", "hello there" },
		{ "QUIT\r\n", 1, SMTP_CMD_QUIT, "QUIT", "" },
		{ "HELP\r\n", 1, SMTP_CMD_HELP, "HELP", "" },
		{ "VRFY x\r\n", 1, SMTP_CMD_VRFY, "VRFY", "x" },
		{ "EXPN x\r\n", 1, SMTP_CMD_EXPN, "EXPN", "x" },
		{ "STARTTLS\r\n", 1, SMTP_CMD_STARTTLS, "STARTTLS", "" },
		{ "AUTH PLAIN AGZvbwBiYXI=\r\n", 1, SMTP_CMD_AUTH, "AUTH", "PLAIN AGZvbwBiYXI=" },
		{ "XYZZY plugh\r\n", 1, SMTP_CMD_UNKNOWN, "XYZZY", "plugh" },
		{ "QUITX\r\n", 1, SMTP_CMD_UNKNOWN, "QUITX", "" },
		/* trailing blanks are dropped */
		{ "QUIT  \t\r\n", 1, SMTP_CMD_QUIT, "QUIT", "" },
		{ "MAIL FROM:<a@b> \r\n", 1, SMTP_CMD_MAIL, "MAIL", "FROM:<a@b>" },
		/* only the verb's one space is eaten */
		{ "MAIL  FROM:<>\r\n", 1, SMTP_CMD_MAIL, "MAIL", " FROM:<>" },
		{ "\r\n", -1, 0, "500 5.5.2 Syntax error: no command", NULL },
		{ " QUIT\r\n", -1, 0, "500 5.5.2 Syntax error: no command", NULL },
		{ "   \r\n", -1, 0, "500 5.5.2 Syntax error: no command", NULL },
		{ "QUIT", -1, 0, "500 5.5.2 Syntax error: line not terminated", NULL },
		{ "QUIT\r", -1, 0, "500 5.5.2 Syntax error: line not terminated", NULL },
		{ "", -1, 0, "500 5.5.2 Syntax error: line not terminated", NULL },
		{ "NOOP a\rb\r\n", -1, 0, "500 5.5.2 Syntax error: bare CR in command", NULL },
		{ "NOOP\r\r\n", -1, 0, "500 5.5.2 Syntax error: bare CR in command", NULL },
		{ "NOOP a\nb\r\n", -1, 0, "500 5.5.2 Syntax error: bare LF in command", NULL },
	};

	test_begin("smtp_cmd_parse");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char line[256];
		size_t len = strlen(cases[i].line);
		struct smtp_cmd cmd;
		const char *error = NULL;
		int ret;

		memcpy(line, cases[i].line, len + 1);
		ret = smtp_cmd_parse(line, len, &cmd, &error);
		test_assert(ret == cases[i].ret);
		if (ret != cases[i].ret) {
			printf("  case %zu: %s\n", i, cases[i].line);
			continue;
		}
		if (ret < 0) {
			test_assert_strcmp(error, cases[i].name);
			continue;
		}
		test_assert(cmd.verb == cases[i].verb);
		test_assert_strcmp(cmd.name, cases[i].name);
		test_assert_strcmp(cmd.arg, cases[i].arg);
	}
	test_end();
}

static void
test_cmd_parse_nul(void)
{
	char line[] = "NOOP a\0b\r\n";
	struct smtp_cmd cmd;
	const char *error = NULL;

	test_begin("smtp_cmd_parse NUL byte");
	test_assert(smtp_cmd_parse(line, sizeof(line) - 1, &cmd, &error) == -1);
	test_assert_strcmp(error, "500 5.5.2 Syntax error: NUL byte in command");
	test_end();
}

/* ---- paths ---- */

struct path_case {
	const char *in;
	bool utf8_ok;
	const char *local, *domain;	/* local NULL: must fail */
	const char *rest;		/* what follows the '>' */
};

static const struct path_case path_cases[] = {
	{ "<user@example.org>", false, "user", "example.org", "" },
	{ "<User.Name+tag@Example.ORG> SIZE=1", false, "User.Name+tag", "example.org", " SIZE=1" },
	{ "<!#$%&'*+-/=?^_`{|}~@x.y>", false, "!#$%&'*+-/=?^_`{|}~", "x.y", "" },
	{ "<\"a b\"@x.y>", false, "a b", "x.y", "" },
	{ "<\"a\\\"b\\\\c\"@x.y>", false, "a\"b\\c", "x.y", "" },
	{ "<\"\"@x.y>", false, "", "x.y", "" },
	{ "<\"a@b\"@x.y>", false, "a@b", "x.y", "" },
	{ "<\"a>b\"@x.y>", false, "a>b", "x.y", "" },
	{ "<a@[192.0.2.1]>", false, "a", "[192.0.2.1]", "" },
	{ "<a@[IPv6:2001:db8::1]>", false, "a", "[IPv6:2001:db8::1]", "" },
	{ "<a@[ipv6:::ffff:192.0.2.1]>", false, "a", "[ipv6:::ffff:192.0.2.1]", "" },
	{ "<a@1.2.3.4>", false, "a", "1.2.3.4", "" },
	{ "<a@x-y.z0>", false, "a", "x-y.z0", "" },
	{ "<a@localhost>", false, "a", "localhost", "" },
	{ "<@relay.example:u@x.y>", false, "u", "x.y", "" },
	{ "<@r1.example,@r2.example:u@x.y>", false, "u", "x.y", "" },
	{ "<@[10.0.0.1],@r2:u@x.y>", false, "u", "x.y", "" },
	{ "<用户@例子.广告>", true, "用户", "例子.广告", "" },
	{ "<jöran@BÜCHER.example>", true, "jöran", "bÜcher.example", "" },
	{ "<\"ü x\"@x.y>", true, "ü x", "x.y", "" },
	/* failures */
	{ "<用户@例子.广告>", false, NULL, NULL, NULL },
	{ "<a@bücher.example>", false, NULL, NULL, NULL },
	{ "<\xc3\x28@x.y>", true, NULL, NULL, NULL },		/* bad UTF-8 */
	{ "<\xed\xa0\x80@x.y>", true, NULL, NULL, NULL },	/* surrogate */
	{ "<\xc0\xaf@x.y>", true, NULL, NULL, NULL },		/* overlong */
	{ "<a@\xff.y>", true, NULL, NULL, NULL },
	/* C1 and bidirectional controls, in every part */
	{ "<a\xc2\x85" "b@x.y>", true, NULL, NULL, NULL },		/* U+0085 NEL */
	{ "<\"a\xc2\x9b\"@x.y>", true, NULL, NULL, NULL },	/* U+009B CSI, quoted */
	{ "<a\xe2\x80\xae" "b@x.y>", true, NULL, NULL, NULL },	/* U+202E RLO */
	{ "<\"x\xe2\x81\xa6 y\"@x.y>", true, NULL, NULL, NULL },	/* U+2066 LRI */
	{ "<a\xe2\x80\x8f@x.y>", true, NULL, NULL, NULL },	/* U+200F RLM */
	{ "<a\xd8\x9c@x.y>", true, NULL, NULL, NULL },		/* U+061C ALM */
	{ "<a@x\xe2\x80\xaa.y>", true, NULL, NULL, NULL },	/* U+202A in the domain */
	{ "<a@\xc2\x80x.y>", true, NULL, NULL, NULL },		/* U+0080 in the domain */
	{ "<@r\xe2\x81\xa9.example:u@x.y>", true, NULL, NULL, NULL },	/* U+2069, route */
	{ "user@example.org", false, NULL, NULL, NULL },
	{ "<user@example.org", false, NULL, NULL, NULL },
	{ "<user>", false, NULL, NULL, NULL },
	{ "<user@>", false, NULL, NULL, NULL },
	{ "<@x.y>", false, NULL, NULL, NULL },
	{ "<.a@x.y>", false, NULL, NULL, NULL },
	{ "<a.@x.y>", false, NULL, NULL, NULL },
	{ "<a..b@x.y>", false, NULL, NULL, NULL },
	{ "<a b@x.y>", false, NULL, NULL, NULL },
	{ "<a(b)@x.y>", false, NULL, NULL, NULL },
	{ "<a@x..y>", false, NULL, NULL, NULL },
	{ "<a@.x.y>", false, NULL, NULL, NULL },
	{ "<a@x.y.>", false, NULL, NULL, NULL },
	{ "<a@-x.y>", false, NULL, NULL, NULL },
	{ "<a@x-.y>", false, NULL, NULL, NULL },
	{ "<a@x_y.z>", false, NULL, NULL, NULL },
	{ "<a@x.y >", false, NULL, NULL, NULL },
	{ "< a@x.y>", false, NULL, NULL, NULL },
	{ "<a@[1.2.3]>", false, NULL, NULL, NULL },
	{ "<a@[1.2.3.256]>", false, NULL, NULL, NULL },
	{ "<a@[1.2.3.4.5]>", false, NULL, NULL, NULL },
	{ "<a@[IPv6:1.2.3.4]>", false, NULL, NULL, NULL },
	{ "<a@[IPv6:2001:db8::1::2]>", false, NULL, NULL, NULL },
	{ "<a@[x-tag:stuff]>", false, NULL, NULL, NULL },
	{ "<a@[1.2.3.4>", false, NULL, NULL, NULL },
	{ "<\"a@x.y>", false, NULL, NULL, NULL },
	{ "<\"a\tb\"@x.y>", false, NULL, NULL, NULL },
	{ "<\"a\\", false, NULL, NULL, NULL },
	{ "<@r1.example u@x.y>", false, NULL, NULL, NULL },
	{ "<@r1.example,u@x.y>", false, NULL, NULL, NULL },
	{ "<@:u@x.y>", false, NULL, NULL, NULL },
	{ "<>", false, NULL, NULL, NULL },	/* checked separately */
	{ "", false, NULL, NULL, NULL },
	{ "<", false, NULL, NULL, NULL },
};

static void
test_path_case(size_t i, const struct path_case *c)
{
	struct smtp_path path;
	const char *end = NULL, *error = NULL;
	int ret = smtp_path_parse(c->in, c->utf8_ok, &path, &end, &error);

	if (c->local == NULL) {
		/* "<>" is a valid path, only not a mailbox */
		if (strcmp(c->in, "<>") == 0)
			test_assert(ret == 1 && path.null_path);
		else
			test_assert(ret == -1 && error != NULL && *error != '\0');
		return;
	}
	test_assert(ret == 1);
	if (ret != 1) {
		printf("  case %zu: %s: %s\n", i, c->in, error);
		return;
	}
	test_assert(!path.null_path && !path.postmaster);
	test_assert_strcmp(path.local, c->local);
	test_assert_strcmp(path.domain, c->domain);
	test_assert_strcmp(end, c->rest);
	test_assert(path.utf8 == c->utf8_ok);
}

static void
test_path_parse(void)
{
	test_begin("smtp_path_parse");
	for (size_t i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++)
		test_path_case(i, &path_cases[i]);
	test_end();
}

static void
test_path_special(void)
{
	struct smtp_path path;
	const char *end, *error;

	test_begin("smtp_path_parse null and postmaster");
	test_assert(smtp_path_parse("<> BODY=8BITMIME", false, &path, &end, &error) == 1);
	test_assert(path.null_path);
	test_assert_strcmp(end, " BODY=8BITMIME");
	test_assert(smtp_path_parse("<Postmaster>", false, &path, &end, &error) == 1);
	test_assert(path.postmaster && !path.null_path);
	test_assert_strcmp(path.local, "Postmaster");
	test_assert_strcmp(path.domain, "");
	test_assert(smtp_path_parse("<pOsTmAsTeR> x", false, &path, &end, &error) == 1);
	test_assert(path.postmaster);
	test_assert_strcmp(end, " x");
	test_assert(smtp_path_parse("<postmaster@x.y>", false, &path, &end, &error) == 1);
	test_assert(!path.postmaster);
	test_assert_strcmp(path.local, "postmaster");
	test_assert(smtp_path_parse("<postmasters>", false, &path, &end, &error) == -1);
	test_end();
}

/* Builds "<" + n copies of unit + suffix into buf. */
static const char *
path_with_local(char *buf, size_t n, const char *unit, const char *suffix)
{
	size_t len = 1;

	buf[0] = '<';
	for (size_t i = 0; i < n; i++) {
		memcpy(buf + len, unit, strlen(unit));
		len += strlen(unit);
	}
	strcpy(buf + len, suffix);
	return buf;
}

static void
test_path_limits(void)
{
	static const char spaced[] =
		"a b c d e f g h i j k l m n o p q r s t u v w x y z 0 1 2 3 4 5 6 7 8 9";
	char buf[2048];
	struct smtp_path path;
	const char *end, *error;

	test_begin("smtp_path_parse length limits");
	/* ASCII local part: 64 octets */
	test_assert(smtp_path_parse(path_with_local(buf, 64, "a", "@x.y>"), false, &path,
				    &end, &error) == 1);
	test_assert(smtp_path_parse(path_with_local(buf, 65, "a", "@x.y>"), false, &path,
				    &end, &error) == -1);
	/* quoted: the limit applies to the unquoted text */
	snprintf(buf, sizeof(buf), "<\"%.64s\"@x.y>", spaced);
	test_assert(smtp_path_parse(buf, false, &path, &end, &error) == 1);
	test_assert(strlen(path.local) == 64);
	snprintf(buf, sizeof(buf), "<\"%.65s\"@x.y>", spaced);
	test_assert(smtp_path_parse(buf, false, &path, &end, &error) == -1);
	/* UTF-8 local part: SMTP_LOCAL_MAX bytes (2 per ü) */
	test_assert(smtp_path_parse(path_with_local(buf, SMTP_LOCAL_MAX / 2, "ü", "@x.y>"),
				    true, &path, &end, &error) == 1);
	test_assert(strlen(path.local) == SMTP_LOCAL_MAX);
	test_assert(smtp_path_parse(path_with_local(buf, SMTP_LOCAL_MAX / 2 + 1, "ü", "@x.y>"),
				    true, &path, &end, &error) == -1);
	/* domain: labels of 63, total 255 */
	snprintf(buf, sizeof(buf), "<a@%s.x>",
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	test_assert(smtp_path_parse(buf, false, &path, &end, &error) == 1);
	snprintf(buf, sizeof(buf), "<a@%s.x>",
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	test_assert(smtp_path_parse(buf, false, &path, &end, &error) == -1);
	/* 127 "a." pairs then "b": 255 bytes, then one more label: 257 */
	strcpy(buf, "<a@");
	for (int i = 0; i < 127; i++)
		strcat(buf, "a.");
	strcat(buf, "b>");
	test_assert(smtp_path_parse(buf, false, &path, &end, &error) == 1);
	test_assert(strlen(path.domain) == 255);
	buf[strlen(buf) - 1] = '\0';
	strcat(buf, ".c>");
	test_assert(smtp_path_parse(buf, false, &path, &end, &error) == -1);
	test_end();
}

static void
test_path_format(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "<a@x.y>", "a@x.y" },
		{ "<A.B@X.Y>", "A.B@x.y" },
		{ "<\"ab\"@x.y>", "ab@x.y" },
		{ "<\"a b\"@x.y>", "\"a b\"@x.y" },
		{ "<\"a\\\"b\"@x.y>", "\"a\\\"b\"@x.y" },
		{ "<\"a\\\\b\"@x.y>", "\"a\\\\b\"@x.y" },
		{ "<\"\"@x.y>", "\"\"@x.y" },
		{ "<\".a\"@x.y>", "\".a\"@x.y" },
		{ "<\"a.\"@x.y>", "\"a.\"@x.y" },
		{ "<\"a..b\"@x.y>", "\"a..b\"@x.y" },
		{ "<\"a\\b\"@x.y>", "ab@x.y" },
		{ "<a@[192.0.2.1]>", "a@[192.0.2.1]" },
		{ "<@r:a@x.y>", "a@x.y" },
		{ "<Postmaster>", "Postmaster" },
		{ "<>", "" },
		{ "<ü@例子.广告>", "ü@例子.广告" },
	};

	test_begin("smtp_path_format");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_path path, again;
		const char *end, *error;
		char out[600], wrapped[604];
		int n;

		test_assert(smtp_path_parse(cases[i].in, true, &path, &end, &error) == 1);
		n = smtp_path_format(&path, out, sizeof(out));
		test_assert(n == (int)strlen(cases[i].out));
		test_assert_strcmp(out, cases[i].out);
		/* and back */
		snprintf(wrapped, sizeof(wrapped), "<%s>", out);
		test_assert(smtp_path_parse(wrapped, true, &again, &end, &error) == 1);
		test_assert_strcmp(again.local, path.local);
		test_assert_strcmp(again.domain, path.domain);
	}
	test_end();
}

static void
test_path_format_small(void)
{
	struct smtp_path path;
	const char *end, *error;
	char out[16];

	test_begin("smtp_path_format out too small");
	test_assert(smtp_path_parse("<abc@x.y>", false, &path, &end, &error) == 1);
	test_assert(smtp_path_format(&path, out, 8) == 7);
	test_assert_strcmp(out, "abc@x.y");
	test_assert(smtp_path_format(&path, out, 7) == -1);
	test_assert(smtp_path_format(&path, out, 0) == -1);
	test_assert(smtp_path_parse("<\"a b\"@x.y>", false, &path, &end, &error) == 1);
	test_assert(smtp_path_format(&path, out, 10) == 9);
	test_assert(smtp_path_format(&path, out, 9) == -1);
	test_end();
}

/* ---- MAIL ---- */

static void
test_mail_ok(void)
{
	struct smtp_mail_args m;
	const char *error = NULL;

	test_begin("smtp_mail_parse accepted");
	test_assert(smtp_mail_parse("FROM:<a@x.y>", &m, &error) == 1);
	test_assert_strcmp(m.path.local, "a");
	test_assert(m.size == -1 && m.body == SMTP_BODY_UNSET && !m.smtputf8);
	test_assert(m.auth[0] == '\0' && m.envid[0] == '\0' && m.ret[0] == '\0');

	test_assert(smtp_mail_parse("from: <a@x.y>", &m, &error) == 1);
	test_assert(smtp_mail_parse("FROM:<>", &m, &error) == 1);
	test_assert(m.path.null_path);
	test_assert(smtp_mail_parse("FROM:<>  ", &m, &error) == 1);

	test_assert(smtp_mail_parse("FROM:<a@x.y> SIZE=12345 BODY=8bitmime SMTPUTF8 "
				    "AUTH=a+2Bb@x.y ENVID=QQ+3D314 RET=hdrs", &m, &error) == 1);
	test_assert(m.size == 12345);
	test_assert(m.body == SMTP_BODY_8BITMIME);
	test_assert(m.smtputf8);
	test_assert_strcmp(m.auth, "a+b@x.y");
	test_assert_strcmp(m.envid, "QQ=314");
	test_assert_strcmp(m.ret, "HDRS");

	test_assert(smtp_mail_parse("FROM:<a@x.y>  size=0   body=7BIT  ", &m, &error) == 1);
	test_assert(m.size == 0 && m.body == SMTP_BODY_7BIT);
	test_assert(smtp_mail_parse("FROM:<a@x.y> BODY=BINARYMIME RET=Full", &m, &error) == 1);
	test_assert(m.body == SMTP_BODY_BINARYMIME);
	test_assert_strcmp(m.ret, "FULL");
	test_assert(smtp_mail_parse("FROM:<a@x.y> AUTH=<>", &m, &error) == 1);
	test_assert_strcmp(m.auth, "<>");
	test_assert(smtp_mail_parse("FROM:<a@x.y> SIZE=9223372036854775807", &m, &error) == 1);
	test_assert(m.size == 9223372036854775807LL);
	test_assert(smtp_mail_parse("FROM:<ü@例子.广告> SMTPUTF8", &m, &error) == 1);
	test_assert(m.path.utf8);
	test_end();
}

static void
test_mail_errors(void)
{
	static const struct {
		const char *arg, *error;
	} cases[] = {
		{ "", "501 5.5.4 Syntax: MAIL FROM:<address>" },
		{ "FROM", "501 5.5.4 Syntax: MAIL FROM:<address>" },
		{ "TO:<a@x.y>", "501 5.5.4 Syntax: MAIL FROM:<address>" },
		{ "FROM:a@x.y", "501 5.5.4 Syntax: MAIL FROM:<address>" },
		{ "FROM:  <a@x.y>", "501 5.5.4 Syntax: MAIL FROM:<address>" },
		{ "FROM <a@x.y>", "501 5.5.4 Syntax: MAIL FROM:<address>" },
		{ "FROM:<a@x.y>SIZE=1", "501 5.5.4 Syntax: MAIL FROM:<address>" },
		{ "FROM:<a@x.y", "501 5.1.7 Bad sender address syntax" },
		{ "FROM:<a@@x.y>", "501 5.1.7 Bad sender address syntax" },
		{ "FROM:<a>", "501 5.1.7 Bad sender address syntax" },
		{ "FROM:<Postmaster>", "501 5.1.7 Bad sender address syntax" },
		{ "FROM:<a@x..y>", "501 5.1.7 Bad sender address syntax" },
		{ "FROM:<ü@x.y>", "553 5.6.7 Non-ASCII address requires SMTPUTF8" },
		{ "FROM:<a@x.y> FOO=1", "555 5.5.4 Unsupported parameter" },
		{ "FROM:<a@x.y> NOTIFY=NEVER", "555 5.5.4 Unsupported parameter" },
		{ "FROM:<a@x.y> =1", "555 5.5.4 Unsupported parameter" },
		{ "FROM:<a@x.y> -X", "555 5.5.4 Unsupported parameter" },
		{ "FROM:<a@x.y> SIZE=1 SIZE=2", "555 5.5.4 Duplicate parameter" },
		{ "FROM:<a@x.y> SMTPUTF8 smtputf8", "555 5.5.4 Duplicate parameter" },
		{ "FROM:<a@x.y> SIZE", "555 5.5.4 Bad SIZE value" },
		{ "FROM:<a@x.y> SIZE=", "555 5.5.4 Bad parameter value" },
		{ "FROM:<a@x.y> SIZE=-1", "555 5.5.4 Bad SIZE value" },
		{ "FROM:<a@x.y> SIZE=12k", "555 5.5.4 Bad SIZE value" },
		{ "FROM:<a@x.y> SIZE=9223372036854775808", "555 5.5.4 Bad SIZE value" },
		{ "FROM:<a@x.y> SIZE=99999999999999999999999", "555 5.5.4 Bad SIZE value" },
		{ "FROM:<a@x.y> BODY=8BIT", "555 5.5.4 Bad BODY value" },
		{ "FROM:<a@x.y> BODY", "555 5.5.4 Bad BODY value" },
		{ "FROM:<a@x.y> SMTPUTF8=yes", "555 5.5.4 SMTPUTF8 takes no value" },
		{ "FROM:<a@x.y> AUTH=a+2", "555 5.5.4 Bad AUTH value" },
		{ "FROM:<a@x.y> AUTH=a+0A", "555 5.5.4 Bad AUTH value" },
		{ "FROM:<a@x.y> AUTH=a+zz", "555 5.5.4 Bad AUTH value" },
		{ "FROM:<a@x.y> AUTH=a=b", "555 5.5.4 Bad parameter value" },
		{ "FROM:<a@x.y> ENVID=a+00", "555 5.5.4 Bad ENVID value" },
		{ "FROM:<a@x.y> ENVID=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "555 5.5.4 Bad ENVID value" },
		{ "FROM:<a@x.y> RET=ALL", "555 5.5.4 Bad RET value" },
		{ "FROM:<a@x.y> RET", "555 5.5.4 Bad RET value" },
		{ "FROM:<a@x.y> SIZE=1\t", "555 5.5.4 Bad parameter value" },
	};

	test_begin("smtp_mail_parse errors");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_mail_args m;
		const char *error = "";

		test_assert(smtp_mail_parse(cases[i].arg, &m, &error) == -1);
		test_assert_strcmp(error, cases[i].error);
	}
	test_end();
}

static void
test_mail_envid_max(void)
{
	char arg[256];
	struct smtp_mail_args m;
	const char *error;

	test_begin("smtp_mail_parse ENVID 100 characters");
	snprintf(arg, sizeof(arg), "FROM:<a@x.y> ENVID=%0100d", 7);
	test_assert(smtp_mail_parse(arg, &m, &error) == 1);
	test_assert(strlen(m.envid) == 100);
	test_end();
}

/* ---- RCPT ---- */

static void
test_rcpt_ok(void)
{
	struct smtp_rcpt_args r;
	const char *error = NULL;

	test_begin("smtp_rcpt_parse accepted");
	test_assert(smtp_rcpt_parse("TO:<b@x.y>", false, &r, &error) == 1);
	test_assert_strcmp(r.path.local, "b");
	test_assert(r.notify[0] == '\0' && r.orcpt[0] == '\0');
	test_assert(smtp_rcpt_parse("to: <b@X.Y>", false, &r, &error) == 1);
	test_assert_strcmp(r.path.domain, "x.y");
	test_assert(smtp_rcpt_parse("TO:<Postmaster>", false, &r, &error) == 1);
	test_assert(r.path.postmaster);
	test_assert(smtp_rcpt_parse("TO:<b@x.y> NOTIFY=delay,Success ORCPT=rfc822;b+2Bc@x.y",
				    false, &r, &error) == 1);
	test_assert_strcmp(r.notify, "SUCCESS,DELAY");
	test_assert_strcmp(r.orcpt, "rfc822;b+2Bc@x.y");
	test_assert(smtp_rcpt_parse("TO:<b@x.y> NOTIFY=never", false, &r, &error) == 1);
	test_assert_strcmp(r.notify, "NEVER");
	test_assert(smtp_rcpt_parse("TO:<b@x.y> NOTIFY=FAILURE,DELAY,SUCCESS", false, &r,
				    &error) == 1);
	test_assert_strcmp(r.notify, "SUCCESS,FAILURE,DELAY");
	test_assert(smtp_rcpt_parse("TO:<ü@x.y> ORCPT=utf-8;\xc3\xbc@x.y", true, &r, &error) == 1);
	test_assert(r.path.utf8);
	test_end();
}

static void
test_rcpt_errors(void)
{
	static const struct {
		const char *arg;
		bool utf8_ok;
		const char *error;
	} cases[] = {
		{ "", false, "501 5.5.4 Syntax: RCPT TO:<address>" },
		{ "TO", false, "501 5.5.4 Syntax: RCPT TO:<address>" },
		{ "FROM:<a@x.y>", false, "501 5.5.4 Syntax: RCPT TO:<address>" },
		{ "TO:b@x.y", false, "501 5.5.4 Syntax: RCPT TO:<address>" },
		{ "TO:<b@x.y>x", false, "501 5.5.4 Syntax: RCPT TO:<address>" },
		{ "TO:<>", false, "501 5.1.3 Bad recipient address syntax" },
		{ "TO:<b>", false, "501 5.1.3 Bad recipient address syntax" },
		{ "TO:<b@x.y", false, "501 5.1.3 Bad recipient address syntax" },
		{ "TO:<b@[1.2.3.999]>", false, "501 5.1.3 Bad recipient address syntax" },
		{ "TO:<ü@x.y>", false, "553 5.6.7 Non-ASCII address requires SMTPUTF8" },
		{ "TO:<b@x.y> SIZE=1", false, "555 5.5.4 Unsupported parameter" },
		{ "TO:<b@x.y> NOTIFY=NEVER,SUCCESS", false, "555 5.5.4 Bad NOTIFY value" },
		{ "TO:<b@x.y> NOTIFY=SUCCESS,SUCCESS", false, "555 5.5.4 Bad NOTIFY value" },
		{ "TO:<b@x.y> NOTIFY=SUCCESS,", false, "555 5.5.4 Bad NOTIFY value" },
		{ "TO:<b@x.y> NOTIFY=,DELAY", false, "555 5.5.4 Bad NOTIFY value" },
		{ "TO:<b@x.y> NOTIFY=SOMETIMES", false, "555 5.5.4 Bad NOTIFY value" },
		{ "TO:<b@x.y> NOTIFY", false, "555 5.5.4 Bad NOTIFY value" },
		{ "TO:<b@x.y> NOTIFY=DELAY NOTIFY=DELAY", false, "555 5.5.4 Duplicate parameter" },
		{ "TO:<b@x.y> ORCPT=b@x.y", false, "555 5.5.4 Bad ORCPT value" },
		{ "TO:<b@x.y> ORCPT=;b@x.y", false, "555 5.5.4 Bad ORCPT value" },
		{ "TO:<b@x.y> ORCPT=rfc822;", false, "555 5.5.4 Bad ORCPT value" },
		{ "TO:<b@x.y> ORCPT=rfc822;b+4@x.y", false, "555 5.5.4 Bad ORCPT value" },
		{ "TO:<b@x.y> ORCPT=rfc(822);b@x.y", false, "555 5.5.4 Bad ORCPT value" },
		{ "TO:<b@x.y> ORCPT", false, "555 5.5.4 Bad ORCPT value" },
	};

	test_begin("smtp_rcpt_parse errors");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_rcpt_args r;
		const char *error = "";

		test_assert(smtp_rcpt_parse(cases[i].arg, cases[i].utf8_ok, &r, &error) == -1);
		test_assert_strcmp(error, cases[i].error);
	}
	test_end();
}

/* ---- BDAT, HELO ---- */

static void
test_bdat(void)
{
	static const struct {
		const char *arg;
		int ret;
		unsigned long long size;
		bool last;
	} cases[] = {
		{ "0", 1, 0, false },
		{ "100", 1, 100, false },
		{ "100 LAST", 1, 100, true },
		{ "0 last", 1, 0, true },
		{ "7  Last", 1, 7, true },
		{ "18446744073709551615", 1, 18446744073709551615ULL, false },
		{ "18446744073709551616", -1, 0, false },
		{ "", -1, 0, false },
		{ "LAST", -1, 0, false },
		{ " 100", -1, 0, false },
		{ "-1", -1, 0, false },
		{ "1e3", -1, 0, false },
		{ "100 LAS", -1, 0, false },
		{ "100 LAST x", -1, 0, false },
		{ "100 FIRST", -1, 0, false },
		{ "100LAST", -1, 0, false },
	};

	test_begin("smtp_bdat_parse");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned long long size = 42;
		bool last = false;
		const char *error = "";
		int ret = smtp_bdat_parse(cases[i].arg, &size, &last, &error);

		test_assert(ret == cases[i].ret);
		if (ret == 1) {
			test_assert(size == cases[i].size);
			test_assert(last == cases[i].last);
		} else {
			test_assert_strcmp(error, "501 5.5.4 Syntax: BDAT size [LAST]");
		}
	}
	test_end();
}

static void
test_helo(void)
{
	static const struct {
		const char *arg;
		int ret;
	} cases[] = {
		{ "mx.example.org", 1 },
		{ "[192.0.2.1]", 1 },
		{ "[IPv6:2001:db8::1]", 1 },
		{ "localhost", 1 },
		{ "under_score.example", 1 },	/* lenient on purpose */
		{ "例子.广告", 1 },
		{ "", -1 },
		{ "two words", -1 },
		{ " mx", -1 },
		{ "mx\tx", -1 },
		{ "mx\x7f", -1 },
		{ "\xff\xfe", -1 },
		{ "mx\xc2\x9f.example", -1 },		/* U+009F */
		{ "mx\xe2\x80\xae.example", -1 },	/* U+202E */
		{ "\xe2\x81\xa7mx.example", -1 },	/* U+2067 */
	};

	test_begin("smtp_helo_check");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *error = "";
		int ret = smtp_helo_check(cases[i].arg, &error);

		test_assert(ret == cases[i].ret);
		if (ret < 0)
			test_assert_strcmp(error, "501 5.5.4 Syntax: EHLO hostname");
	}
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_cmd_parse,
		test_cmd_parse_nul,
		test_path_parse,
		test_path_special,
		test_path_limits,
		test_path_format,
		test_path_format_small,
		test_mail_ok,
		test_mail_errors,
		test_mail_envid_max,
		test_rcpt_ok,
		test_rcpt_errors,
		test_bdat,
		test_helo,
		NULL,
	};

	return test_run(tests);
}
