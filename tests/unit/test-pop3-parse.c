/* Unit tests of the pure parts of the POP3 server: the command parser,
 * the multi-line encoder of RETR/TOP, UIDL values and the maildrop lock. */
#include "test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pop3/pop3_lock.h"
#include "pop3/pop3_msg.h"
#include "pop3/pop3_parse.h"

/* Parses a C string as a line (the caller's buffer has room for the NUL). */
static int
parse(const char *text, struct pop3_cmd *cmd, const char **error, char *buf, size_t bufsize)
{
	size_t len = strlen(text);

	if (len + 1 > bufsize)
		return -2;
	memcpy(buf, text, len + 1);
	return pop3_cmd_parse(buf, len, cmd, error);
}

struct good_case {
	const char *line;
	enum pop3_verb verb;
	const char *arg;
	bool has_msg;
	uint32_t msg;
	unsigned long lines;
	const char *initial;
};

static const struct good_case good_cases[] = {
	{ "USER alice\r\n", POP3_CMD_USER, "alice", false, 0, 0, NULL },
	{ "user alice@example.test\r\n", POP3_CMD_USER, "alice@example.test", false, 0, 0, NULL },
	{ "USER alice  \r\n", POP3_CMD_USER, "alice", false, 0, 0, NULL },
	{ "PASS secret\r\n", POP3_CMD_PASS, "secret", false, 0, 0, NULL },
	{ "PASS two words \r\n", POP3_CMD_PASS, "two words ", false, 0, 0, NULL },
	{ "PASS  lead\r\n", POP3_CMD_PASS, " lead", false, 0, 0, NULL },
	{ "pass x\n", POP3_CMD_PASS, "x", false, 0, 0, NULL },
	{ "STAT\r\n", POP3_CMD_STAT, "", false, 0, 0, NULL },
	{ "stat \r\n", POP3_CMD_STAT, "", false, 0, 0, NULL },
	{ "QUIT\r\n", POP3_CMD_QUIT, "", false, 0, 0, NULL },
	{ "NOOP\r\n", POP3_CMD_NOOP, "", false, 0, 0, NULL },
	{ "RSET\r\n", POP3_CMD_RSET, "", false, 0, 0, NULL },
	{ "CAPA\r\n", POP3_CMD_CAPA, "", false, 0, 0, NULL },
	{ "STLS\r\n", POP3_CMD_STLS, "", false, 0, 0, NULL },
	{ "LIST\r\n", POP3_CMD_LIST, "", false, 0, 0, NULL },
	{ "LIST 3\r\n", POP3_CMD_LIST, "", true, 3, 0, NULL },
	{ "list 0\r\n", POP3_CMD_LIST, "", true, 0, 0, NULL },
	{ "UIDL\r\n", POP3_CMD_UIDL, "", false, 0, 0, NULL },
	{ "UIDL 12 \r\n", POP3_CMD_UIDL, "", true, 12, 0, NULL },
	{ "RETR 1\r\n", POP3_CMD_RETR, "", true, 1, 0, NULL },
	{ "RETR 4294967295\r\n", POP3_CMD_RETR, "", true, 4294967295u, 0, NULL },
	{ "DELE 007\r\n", POP3_CMD_DELE, "", true, 7, 0, NULL },
	{ "TOP 1 0\r\n", POP3_CMD_TOP, "", true, 1, 0, NULL },
	{ "TOP 2 10\r\n", POP3_CMD_TOP, "", true, 2, 10, NULL },
	{ "TOP 2  99999999999999999999999\r\n", POP3_CMD_TOP, "", true, 2, (unsigned long)-1, NULL },
	{ "AUTH\r\n", POP3_CMD_AUTH, "", false, 0, 0, NULL },
	{ "AUTH plain\r\n", POP3_CMD_AUTH, "PLAIN", false, 0, 0, NULL },
	{ "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", POP3_CMD_AUTH, "PLAIN", false, 0, 0,
	  "AGFsaWNlAHNlY3JldA==" },
	{ "AUTH LOGIN =\r\n", POP3_CMD_AUTH, "LOGIN", false, 0, 0, "=" },
	{ "AUTH X-SOME_MECH\r\n", POP3_CMD_AUTH, "X-SOME_MECH", false, 0, 0, NULL },
	{ "NOOP", POP3_CMD_NOOP, "", false, 0, 0, NULL },
};

static void
test_parse_good(void)
{
	char buf[POP3_AUTH_LINE_MAX + 8];
	struct pop3_cmd cmd;
	const char *error = NULL;

	test_begin("pop3 parse: valid commands");
	for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
		const struct good_case *c = &good_cases[i];
		int ret = parse(c->line, &cmd, &error, buf, sizeof(buf));
		if (ret != 1) {
			printf("  case %zu (%s): %s\n", i, c->line, ret < 0 ? error : "?");
			test_assert(ret == 1);
			continue;
		}
		test_assert(cmd.verb == c->verb);
		test_assert_strcmp(cmd.arg, c->arg);
		test_assert(cmd.has_msg == c->has_msg);
		test_assert(cmd.msg == c->msg);
		test_assert(cmd.lines == c->lines);
		if (c->initial == NULL)
			test_assert(cmd.initial == NULL);
		else
			test_assert(cmd.initial != NULL && strcmp(cmd.initial, c->initial) == 0);
	}
	test_end();
}

struct bad_case {
	const char *line;
	enum pop3_verb verb;		/* as recognised despite the error */
	const char *error;
};

static const struct bad_case bad_cases[] = {
	{ "\r\n", POP3_CMD_UNKNOWN, "-ERR Unknown command" },
	{ "FOO\r\n", POP3_CMD_UNKNOWN, "-ERR Unknown command" },
	{ "APOP alice 0123456789abcdef\r\n", POP3_CMD_UNKNOWN, "-ERR Unknown command" },
	{ "STATS\r\n", POP3_CMD_UNKNOWN, "-ERR Unknown command" },
	{ "RETR1\r\n", POP3_CMD_UNKNOWN, "-ERR Unknown command" },
	{ " STAT\r\n", POP3_CMD_UNKNOWN, "-ERR Unknown command" },
	{ "STAT\tx\r\n", POP3_CMD_UNKNOWN, "-ERR Unknown command" },
	{ "ST\rAT\r\n", POP3_CMD_UNKNOWN, "-ERR Invalid characters in command" },
	{ "USER\r\n", POP3_CMD_USER, "-ERR Syntax: USER name" },
	{ "USER a b\r\n", POP3_CMD_USER, "-ERR Syntax: USER name" },
	{ "PASS\r\n", POP3_CMD_PASS, "-ERR Syntax: PASS password" },
	{ "PASS \r\n", POP3_CMD_PASS, "-ERR Syntax: PASS password" },
	{ "STAT 1\r\n", POP3_CMD_STAT, "-ERR Syntax: STAT takes no arguments" },
	{ "QUIT now\r\n", POP3_CMD_QUIT, "-ERR Syntax: QUIT takes no arguments" },
	{ "RETR\r\n", POP3_CMD_RETR, "-ERR Syntax: RETR msg" },
	{ "RETR x\r\n", POP3_CMD_RETR, "-ERR Syntax: RETR msg" },
	{ "RETR -1\r\n", POP3_CMD_RETR, "-ERR Syntax: RETR msg" },
	{ "RETR +1\r\n", POP3_CMD_RETR, "-ERR Syntax: RETR msg" },
	{ "RETR 1 2\r\n", POP3_CMD_RETR, "-ERR Syntax: RETR msg" },
	{ "RETR 4294967296\r\n", POP3_CMD_RETR, "-ERR Syntax: RETR msg" },
	{ "RETR 00000000001\r\n", POP3_CMD_RETR, "-ERR Syntax: RETR msg" },
	{ "DELE\r\n", POP3_CMD_DELE, "-ERR Syntax: DELE msg" },
	{ "LIST a\r\n", POP3_CMD_LIST, "-ERR Syntax: LIST [msg]" },
	{ "UIDL 1 2\r\n", POP3_CMD_UIDL, "-ERR Syntax: UIDL [msg]" },
	{ "TOP 1\r\n", POP3_CMD_TOP, "-ERR Syntax: TOP msg lines" },
	{ "TOP 1 -1\r\n", POP3_CMD_TOP, "-ERR Syntax: TOP msg lines" },
	{ "TOP 1 2 3\r\n", POP3_CMD_TOP, "-ERR Syntax: TOP msg lines" },
	{ "TOP x 2\r\n", POP3_CMD_TOP, "-ERR Syntax: TOP msg lines" },
	{ "AUTH PL@IN\r\n", POP3_CMD_AUTH, "-ERR Syntax: AUTH mechanism [initial-response]" },
	{ "AUTH PLAIN a b\r\n", POP3_CMD_AUTH, "-ERR Syntax: AUTH mechanism [initial-response]" },
	{ "AUTH ABCDEFGHIJKLMNOPQRSTU\r\n", POP3_CMD_AUTH,
	  "-ERR Syntax: AUTH mechanism [initial-response]" },
};

static void
test_parse_bad(void)
{
	char buf[POP3_AUTH_LINE_MAX + 8];
	struct pop3_cmd cmd;
	const char *error = NULL;

	test_begin("pop3 parse: bad commands");
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		error = NULL;
		int ret = parse(c->line, &cmd, &error, buf, sizeof(buf));
		if (ret != -1) {
			printf("  case %zu (%s) was accepted\n", i, c->line);
			test_assert(ret == -1);
			continue;
		}
		test_assert(cmd.verb == c->verb);
		test_assert_strcmp(error, c->error);
	}
	test_end();
}

static void
test_parse_nul(void)
{
	char line[] = "USER a\0b\r\n";
	struct pop3_cmd cmd;
	const char *error = NULL;

	test_begin("pop3 parse: NUL byte");
	test_assert(pop3_cmd_parse(line, sizeof(line) - 1, &cmd, &error) == -1);
	test_assert_strcmp(error, "-ERR Invalid characters in command");
	test_end();
}

/* RFC 2449: 255 octets with CRLF for a command; AUTH may be longer. */
static void
test_parse_length(void)
{
	char text[POP3_AUTH_LINE_MAX + 8], buf[POP3_AUTH_LINE_MAX + 8];
	struct pop3_cmd cmd;
	const char *error = NULL;

	test_begin("pop3 parse: line length limits");
	memset(text, 'a', sizeof(text));
	memcpy(text, "USER ", 5);
	memcpy(text + POP3_CMD_LINE_MAX - 2, "\r\n", 3);
	test_assert(parse(text, &cmd, &error, buf, sizeof(buf)) == 1);
	test_assert(strlen(cmd.arg) == POP3_CMD_LINE_MAX - 2 - 5);
	memset(text, 'a', sizeof(text));
	memcpy(text, "USER ", 5);
	memcpy(text + POP3_CMD_LINE_MAX - 1, "\r\n", 3);
	test_assert(parse(text, &cmd, &error, buf, sizeof(buf)) == -1);
	test_assert_strcmp(error, "-ERR Command line too long");

	memset(text, 'A', sizeof(text));
	memcpy(text, "AUTH PLAIN ", 11);
	memcpy(text + 1000, "\r\n", 3);
	test_assert(parse(text, &cmd, &error, buf, sizeof(buf)) == 1);
	test_assert(cmd.initial != NULL && strlen(cmd.initial) == 1000 - 11);
	memset(text, 'A', sizeof(text));
	memcpy(text, "AUTH PLAIN ", 11);
	memcpy(text + POP3_AUTH_LINE_MAX - 1, "\r\n", 3);
	test_assert(parse(text, &cmd, &error, buf, sizeof(buf)) == -1);
	test_end();
}

static void
test_verb_names(void)
{
	test_begin("pop3 parse: verb names");
	test_assert_strcmp(pop3_verb_name(POP3_CMD_RETR), "RETR");
	test_assert_strcmp(pop3_verb_name(POP3_CMD_TOP), "TOP");
	test_assert_strcmp(pop3_verb_name(POP3_CMD_UNKNOWN), "?");
	test_assert_strcmp(pop3_verb_name(POP3_CMD_COUNT), "?");
	test_end();
}

static void
test_auth_line(void)
{
	char line[64];
	const char *b64 = NULL;

	test_begin("pop3 parse: AUTH continuation lines");
	strcpy(line, "dGVzdA==\r\n");
	test_assert(pop3_auth_line_parse(line, strlen(line), &b64) == 1);
	test_assert_strcmp(b64, "dGVzdA==");
	strcpy(line, "*\r\n");
	test_assert(pop3_auth_line_parse(line, strlen(line), &b64) == 0);
	strcpy(line, "\r\n");
	test_assert(pop3_auth_line_parse(line, strlen(line), &b64) == 1);
	test_assert_strcmp(b64, "");
	strcpy(line, "dGVz dA==\r\n");
	test_assert(pop3_auth_line_parse(line, strlen(line), &b64) == -1);
	strcpy(line, "a\x01\r\n");
	test_assert(pop3_auth_line_parse(line, strlen(line), &b64) == -1);
	test_end();
}

static void
test_uidl(void)
{
	char out[POP3_UIDL_LEN + 1];

	test_begin("pop3 msg: UIDL values");
	pop3_uidl_format(0x5f3a2b1c, 1, out);
	test_assert_strcmp(out, "5f3a2b1c00000001");
	pop3_uidl_format(0xffffffff, 0xffffffff, out);
	test_assert_strcmp(out, "ffffffffffffffff");
	pop3_uidl_format(1, 0x10, out);
	test_assert_strcmp(out, "0000000100000010");
	test_end();
}

/* Encodes a whole message, fed in chunks of step bytes. */
static char *
encode(const char *in, long long top, size_t step)
{
	size_t inlen = strlen(in), pos = 0, o = 0;
	unsigned char *out = malloc(POP3_DOT_OUT_SIZE(inlen) + POP3_DOT_END_MAX + 1);
	struct pop3_dot dot;

	pop3_dot_init(&dot, top);
	while (pos < inlen && !dot.done) {
		size_t n = inlen - pos < step ? inlen - pos : step;
		size_t used = 0;
		o += pop3_dot_encode(&dot, (const unsigned char *)in + pos, n, out + o, &used);
		test_assert(used == n || dot.done);
		pos += used;
	}
	o += pop3_dot_finish(&dot, out + o);
	out[o] = '\0';
	return (char *)out;
}

struct dot_case {
	const char *in;
	long long top;
	const char *want;
};

static const struct dot_case dot_cases[] = {
	{ "", -1, ".\r\n" },
	{ "a\r\n", -1, "a\r\n.\r\n" },
	{ "a", -1, "a\r\n.\r\n" },
	{ "a\r", -1, "a\r\n.\r\n" },
	{ "a\nb\n", -1, "a\r\nb\r\n.\r\n" },
	{ ".\r\n", -1, "..\r\n.\r\n" },
	{ "S: x\r\n\r\n.hidden\r\n..two\r\nend.\r\n", -1,
	  "S: x\r\n\r\n..hidden\r\n...two\r\nend.\r\n.\r\n" },
	{ "a\rb\r\n", -1, "a\rb\r\n.\r\n" },
	/* TOP: header, blank line, n body lines */
	{ "H: 1\r\nH: 2\r\n\r\nb1\r\nb2\r\nb3\r\n", 0, "H: 1\r\nH: 2\r\n\r\n.\r\n" },
	{ "H: 1\r\nH: 2\r\n\r\nb1\r\nb2\r\nb3\r\n", 2, "H: 1\r\nH: 2\r\n\r\nb1\r\nb2\r\n.\r\n" },
	{ "H: 1\r\n\r\nb1\r\n", 5, "H: 1\r\n\r\nb1\r\n.\r\n" },
	{ "H: 1\r\n\r\nb1", 5, "H: 1\r\n\r\nb1\r\n.\r\n" },
	{ "H: 1\r\n", 0, "H: 1\r\n.\r\n" },
	{ "H: 1\n\nb1\nb2\n", 1, "H: 1\r\n\r\nb1\r\n.\r\n" },
	{ "H: 1\r\n\r\n\r\n.x\r\nz\r\n", 2, "H: 1\r\n\r\n\r\n..x\r\n.\r\n" },
	{ "\r\nbody\r\n", 0, "\r\n.\r\n" },
};

static void
test_dot_encode(void)
{
	static const size_t steps[] = { 1, 2, 3, 7, 4096 };

	test_begin("pop3 msg: dot-stuffing and TOP");
	for (size_t i = 0; i < sizeof(dot_cases) / sizeof(dot_cases[0]); i++) {
		for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
			char *got = encode(dot_cases[i].in, dot_cases[i].top, steps[s]);
			if (strcmp(got, dot_cases[i].want) != 0)
				printf("  case %zu step %zu\n", i, steps[s]);
			test_assert_strcmp(got, dot_cases[i].want);
			free(got);
		}
	}
	test_end();
}

/* The session holding account 20's lock ends a moment later. */
static void *
lock_release_later(void *arg)
{
	struct timespec pause = { 0, 200 * 1000 * 1000 };

	(void)arg;
	nanosleep(&pause, NULL);
	pop3_lock_release(20);
	return NULL;
}

static void
test_lock(void)
{
	long wait = -1;

	test_begin("pop3 lock: exclusive per account");
	test_assert(pop3_lock_acquire(1, 0) == 1);
	test_assert(pop3_lock_acquire(1, 0) == 0);
	test_assert(pop3_lock_acquire(2, 0) == 1);
	pop3_lock_release(1);
	test_assert(pop3_lock_acquire(1, 0) == 1);
	pop3_lock_release(1);
	pop3_lock_release(2);
	/* Many accounts at once: the table grows. */
	for (int64_t id = 100; id < 200; id++)
		test_assert(pop3_lock_acquire(id, 0) == 1);
	for (int64_t id = 100; id < 200; id++)
		test_assert(pop3_lock_acquire(id, 0) == 0);
	for (int64_t id = 100; id < 200; id++)
		pop3_lock_release(id);
	test_assert(pop3_lock_acquire(150, 0) == 1);
	pop3_lock_release(150);
	test_end();

	test_begin("pop3 lock: a login waits for the session that is ending");
	{
		pthread_t t;
		struct timespec t0, t1;
		long ms;

		test_assert(pop3_lock_acquire(20, 0) == 1);
		test_assert(pthread_create(&t, NULL, lock_release_later, NULL) == 0);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		test_assert(pop3_lock_acquire(20, 5000) == 1);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		test_assert(ms >= 150 && ms < 4000);
		pthread_join(t, NULL);
		/* Held and not released: the wait ends without it. */
		test_assert(pop3_lock_acquire(20, 100) == 0);
		pop3_lock_release(20);
	}
	test_end();

	test_begin("pop3 lock: login interval");
	test_assert(pop3_login_interval_check(7, 0, 1000, &wait) == 1);
	test_assert(pop3_login_interval_check(7, 0, 1000, &wait) == 1);
	test_assert(pop3_login_interval_check(7, 60, 1000, &wait) == 1);
	test_assert(pop3_login_interval_check(7, 60, 1030, &wait) == 0);
	test_assert(wait == 30);
	test_assert(pop3_login_interval_check(8, 60, 1030, &wait) == 1);
	test_assert(pop3_login_interval_check(7, 60, 1060, &wait) == 1);
	test_assert(pop3_login_interval_check(7, 60, 1061, &wait) == 0);
	test_assert(wait == 59);
	/* A held lock survives the sweep of stale login times. */
	test_assert(pop3_lock_acquire(9, 0) == 1);
	test_assert(pop3_login_interval_check(10, 60, 999999, &wait) == 1);
	test_assert(pop3_lock_acquire(9, 0) == 0);
	pop3_lock_release(9);
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_parse_good, test_parse_bad, test_parse_nul, test_parse_length,
		test_verb_names, test_auth_line, test_uidl, test_dot_encode, test_lock, NULL,
	};

	return test_run(tests);
}
