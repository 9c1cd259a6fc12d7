/* Unit tests for the DSN composer: the reply classifier on replies real
 * servers send, the bounce's structure, what is never sent, hostile
 * values, limits; and Python's email package (an independent MIME parser)
 * reading the result as the right structure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/dsn.h"
#include "test.h"

struct classify_case {
	const char *status;
	const char *reply;
	enum dsn_reason want;
};

static const struct classify_case classify_cases[] = {
	{ "5.1.1", "550-5.1.1 The email account that you tried to reach does not exist.", DSN_R_UNKNOWN_USER },
	{ NULL, "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown", DSN_R_UNKNOWN_USER },
	{ NULL, "550 No such user here", DSN_R_UNKNOWN_USER },
	{ "5.2.2", "552 5.2.2 Mailbox full", DSN_R_MAILBOX_FULL },
	{ NULL, "452 4.2.2 The email account that you tried to reach is over quota.", DSN_R_MAILBOX_FULL },
	{ "5.7.25", "550-5.7.25 The IP address sending this message does not have a PTR record setup",
	  DSN_R_NO_PTR },
	{ NULL, "550 5.7.1 Client host rejected: cannot find your reverse hostname", DSN_R_NO_PTR },
	{ NULL, "550 5.7.1 rejected: no reverse DNS for 192.0.2.1", DSN_R_NO_PTR },
	{ "5.7.26", "550-5.7.26 This mail is unauthenticated, which poses a security risk",
	  DSN_R_AUTH_FAILED },
	{ NULL, "550 5.7.515 Access denied, sending domain example.org does not meet the required "
		"authentication level.", DSN_R_AUTH_FAILED },
	{ NULL, "550 5.7.1 Unauthenticated email from example.org is not accepted due to "
		"domain's DMARC policy", DSN_R_AUTH_FAILED },
	{ "5.7.29", "530 5.7.29 TLS required", DSN_R_TLS_REQUIRED },
	{ NULL, "530 5.7.0 Must issue a STARTTLS command first", DSN_R_TLS_REQUIRED },
	{ NULL, "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact "
		"your Internet service provider since part of their network is on our block list "
		"(S3140).", DSN_R_LISTED_IP },
	{ NULL, "550 5.7.1 Service unavailable, Client host [192.0.2.1] blocked using Spamhaus",
	  DSN_R_LISTED_IP },
	{ NULL, "(S3150)", DSN_R_LISTED_IP },
	{ "4.7.28", "421-4.7.28 Our system has detected an unusual rate of unsolicited mail",
	  DSN_R_RATE_LIMIT },
	{ NULL, "450 4.7.1 Too many messages, slow down", DSN_R_RATE_LIMIT },
	{ "5.3.4", "552 5.3.4 Message size exceeds fixed limit", DSN_R_TOO_BIG },
	{ NULL, "552 Message too large", DSN_R_TOO_BIG },
	{ NULL, "554 5.7.1 Service unavailable", DSN_R_GENERIC },
	{ NULL, NULL, DSN_R_GENERIC },
	{ "", "", DSN_R_GENERIC },
	/* Codes are whole tokens: 5.7.250 and 15.7.25 are not 5.7.25. */
	{ NULL, "550 5.7.250 x", DSN_R_GENERIC },
	{ NULL, "550 15.7.25 x", DSN_R_GENERIC },
	{ NULL, "550 5.7.25.1 x", DSN_R_GENERIC },
	/* Codes before words: 5.7.26 wins over "does not exist". */
	{ NULL, "550 5.7.26 the SPF record does not exist", DSN_R_AUTH_FAILED },
};

static void
test_classify(void)
{
	test_begin("dsn classify");
	for (size_t i = 0; i < sizeof(classify_cases) / sizeof(classify_cases[0]); i++) {
		const struct classify_case *c = &classify_cases[i];
		enum dsn_reason got = dsn_classify(c->status, c->reply);

		if (got != c->want)
			test_fail_str(__FILE__, __LINE__, dsn_reason_name(got),
				      dsn_reason_name(c->want));
	}
	test_end();
}

#define HDR "From: Alice <alice@example.test>\r\nTo: bob@example.org\r\nSubject: lunch\r\n" \
	    "Message-ID: <m1@example.test>\r\n\r\n"
#define BODY "Shall we?\r\n.dot line\r\n"

static const struct dsn_rcpt failed_rcpts[] = {
	{ .final_rcpt = "bob@example.org", .orcpt = "rfc822;Bob@Example.org",
	  .action = DSN_FAILED, .status = "5.1.1", .remote_mta = "mx.example.org",
	  .diagnostic = "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
			"550 5.1.1 Please try double-checking the recipient's email address",
	  .last_attempt = 1796050000 },
	{ .final_rcpt = "carol@example.net", .action = DSN_FAILED, .status = "5.7.25",
	  .remote_mta = "mx.example.net",
	  .diagnostic = "550 5.7.25 The IP address sending this message does not have a PTR record" },
};

static struct dsn_msg
sample_msg(const struct dsn_rcpt *rcpts, size_t n)
{
	struct dsn_msg m = {
		.myhostname = "mail.example.test", .sender = "alice@example.test",
		.envid = "QQ314159", .arrival = 1796040000, .now = 1796050100, .token = "TOKEN42",
		.header = HDR, .header_len = sizeof(HDR) - 1, .body = BODY,
		.body_len = sizeof(BODY) - 1, .body_max = 1024, .rcpts = rcpts, .nrcpts = n,
	};
	return m;
}

static bool
has(const struct buf *b, const char *s)
{
	return strstr(b->data, s) != NULL;
}

static void
test_compose_failed(void)
{
	struct dsn_msg m = sample_msg(failed_rcpts, 2);
	struct yj_err err;
	struct buf out;

	test_begin("dsn compose failed");
	buf_init(&out, 64 * 1024);
	test_assert(dsn_compose(&m, &out, &err) == 1);
	test_assert(has(&out, "From: Mail Delivery System <MAILER-DAEMON@mail.example.test>\r\n"));
	test_assert(has(&out, "To: <alice@example.test>\r\n"));
	test_assert(has(&out, "Auto-Submitted: auto-replied\r\n"));
	test_assert(has(&out, "Subject: Undelivered Mail Returned to Sender\r\n"));
	test_assert(has(&out, "Message-ID: <TOKEN42.dsn@mail.example.test>\r\n"));
	test_assert(has(&out, "multipart/report; report-type=delivery-status;"));
	test_assert(has(&out, "Reporting-MTA: dns; mail.example.test\r\n"));
	test_assert(has(&out, "Original-Envelope-Id: QQ314159\r\n"));
	test_assert(has(&out, "Original-Recipient: rfc822;Bob@Example.org\r\n"));
	test_assert(has(&out, "Final-Recipient: rfc822; bob@example.org\r\nAction: failed\r\n"
			      "Status: 5.1.1\r\nRemote-MTA: dns; mx.example.org\r\n"));
	/* A multi-line reply is one folded field. */
	test_assert(has(&out, "Diagnostic-Code: smtp; 550-5.1.1 The email account that you "
			      "tried to reach does not exist.\r\n 550 5.1.1 Please"));
	test_assert(has(&out, "does not exist on the receiving server"));
	test_assert(has(&out, "no reverse DNS (PTR) name"));
	test_assert(has(&out, "Content-Type: message/rfc822\r\n"));
	test_assert(has(&out, "\r\n\r\nShall we?\r\n.dot line\r\n"));
	test_assert(has(&out, "--=_dsn_TOKEN42--\r\n"));
	/* Text lines stay short enough for any reader. */
	for (const char *p = out.data; *p != '\0';) {
		size_t len = strcspn(p, "\r");

		test_assert(len <= 998);
		p += len;
		p += strspn(p, "\r\n");
	}
	buf_free(&out);
	test_end();
}

static void
test_never_to_null_sender(void)
{
	struct dsn_msg m = sample_msg(failed_rcpts, 2);
	struct yj_err err;
	struct buf out;

	test_begin("dsn never to the null sender");
	buf_init(&out, 64 * 1024);
	m.sender = "";
	test_assert(dsn_compose(&m, &out, &err) == 0);
	m.sender = NULL;
	test_assert(dsn_compose(&m, &out, &err) == 0);
	m = sample_msg(failed_rcpts, 0);
	test_assert(dsn_compose(&m, &out, &err) == 0);
	test_assert(out.len == 0);
	buf_free(&out);
	test_end();
}

static void
test_hostile_values(void)
{
	static const struct dsn_rcpt rcpts[] = {
		{ .final_rcpt = "x@y\r\nBcc: victim@z", .action = DSN_FAILED, .status = "5.0.0\r\nX: 1",
		  .remote_mta = "mx\r\nInjected: 1",
		  .diagnostic = "550 bad\r\n\r\nInjected-Field: 1\r\n--=_dsn_TOKEN42--\r\n" },
	};
	struct dsn_msg m = sample_msg(rcpts, 1);
	struct yj_err err;
	struct buf out;

	test_begin("dsn hostile values");
	buf_init(&out, 64 * 1024);
	m.sender = "a@b\r\nBcc: victim@z";
	test_assert(dsn_compose(&m, &out, &err) == 1);
	test_assert(!has(&out, "\r\nBcc:"));
	test_assert(!has(&out, "\r\nInjected"));
	test_assert(!has(&out, "\r\nX: 1"));
	test_assert(!has(&out, "\r\n--=_dsn_TOKEN42--\r\n--"));
	/* The only closing boundary is the last line. */
	test_assert(strstr(out.data, "\r\n--=_dsn_TOKEN42--") + strlen("\r\n--=_dsn_TOKEN42--\r\n") ==
		    out.data + out.len);
	m.token = "bad token";
	test_assert(dsn_compose(&m, &out, &err) == -1);
	m.token = "TOKEN42";
	m.myhostname = "";
	test_assert(dsn_compose(&m, &out, &err) == -1);
	buf_free(&out);
	test_end();
}

static void
test_limits(void)
{
	struct dsn_msg m = sample_msg(failed_rcpts, 2);
	struct yj_err err;
	struct buf out;

	test_begin("dsn limits");
	buf_init(&out, 512);
	test_assert(dsn_compose(&m, &out, &err) == -1);
	test_assert(out.len == 0);
	buf_free(&out);
	/* A body over body_max: headers only, as text/rfc822-headers. */
	buf_init(&out, 64 * 1024);
	m.body_max = 4;
	test_assert(dsn_compose(&m, &out, &err) == 1);
	test_assert(has(&out, "Content-Type: text/rfc822-headers\r\n"));
	test_assert(!has(&out, "Shall we?"));
	test_assert(has(&out, "<m1@example.test>\r\n\r\n--=_dsn_TOKEN42--\r\n"));
	buf_free(&out);
	test_end();
}

static void
test_delayed_and_8bit(void)
{
	static const struct dsn_rcpt rcpts[] = {
		{ .final_rcpt = "bob@example.org", .action = DSN_DELAYED, .status = "4.4.1",
		  .diagnostic = "connect to mx.example.org: Connection refused",
		  .retry_until = 1796400000 },
	};
	static const char hdr[] = "Subject: caf\xc3\xa9\nFrom: a@b\n\nbody\n";
	struct dsn_msg m = sample_msg(rcpts, 1);
	struct yj_err err;
	struct buf out;

	test_begin("dsn delayed, 8-bit header, LF lines");
	buf_init(&out, 64 * 1024);
	m.header = hdr;
	m.header_len = sizeof(hdr) - 1;
	m.body = NULL;
	test_assert(dsn_compose(&m, &out, &err) == 1);
	test_assert(has(&out, "Subject: Delayed Mail (still being retried)\r\n"));
	test_assert(has(&out, "Action: delayed\r\nStatus: 4.4.1\r\n"));
	test_assert(has(&out, "Will-Retry-Until: "));
	test_assert(has(&out, "you do not need to send it again"));
	test_assert(has(&out, "Content-Transfer-Encoding: 8bit\r\n"));
	test_assert(has(&out, "Subject: caf\xc3\xa9\r\nFrom: a@b\r\n\r\n--=_dsn_"));
	test_assert(!has(&out, "body"));
	buf_free(&out);
	test_end();
}

/* NOTIFY=SUCCESS passed to a server without DSN (RFC 3461 6.2). */
static void
test_relayed(void)
{
	static const struct dsn_rcpt rcpts[] = {
		{ .final_rcpt = "bob@example.net", .action = DSN_RELAYED,
		  .remote_mta = "mx.example.net", .diagnostic = "250 2.0.0 queued" },
	};
	struct dsn_msg m = sample_msg(rcpts, 1);
	struct yj_err err;
	struct buf out;

	test_begin("dsn relayed");
	buf_init(&out, 64 * 1024);
	m.body = NULL;
	test_assert(dsn_compose(&m, &out, &err) == 1);
	test_assert(has(&out, "Subject: Successful Mail Delivery Report\r\n"));
	test_assert(has(&out, "Action: relayed\r\nStatus: 2.0.0\r\n"));
	test_assert(has(&out, "<bob@example.net>: relayed\r\n"));
	test_assert(has(&out, "This is the mail system at mail.example.test.\r\n\r\nYour message was passed on"));
	buf_free(&out);
	test_end();
}

/* A mailbox here and an alias with several targets (RFC 3461 5.2.7,
 * RFC 3464 2.3.3): one report, "delivered" and "expanded". */
static void
test_delivered_and_expanded(void)
{
	static const struct dsn_rcpt rcpts[] = {
		{ .final_rcpt = "bob@example.test", .orcpt = "rfc822;Bob@example.test",
		  .action = DSN_DELIVERED },
		{ .final_rcpt = "team@example.test", .action = DSN_EXPANDED },
	};
	struct dsn_msg m = sample_msg(rcpts, 2);
	struct yj_err err;
	struct buf out;

	test_begin("dsn delivered and expanded");
	buf_init(&out, 64 * 1024);
	m.body = NULL;
	test_assert(dsn_compose(&m, &out, &err) == 1);
	test_assert(has(&out, "Subject: Successful Mail Delivery Report\r\n"));
	test_assert(has(&out, "Final-Recipient: rfc822; bob@example.test\r\n"
			      "Action: delivered\r\nStatus: 2.0.0\r\n"));
	test_assert(has(&out, "Final-Recipient: rfc822; team@example.test\r\n"
			      "Action: expanded\r\nStatus: 2.0.0\r\n"));
	test_assert(has(&out, "<team@example.test>: expanded\r\n  This address passes mail on"));
	test_assert(has(&out, "Your message was delivered to the recipients listed below"));
	test_assert(!has(&out, "Remote-MTA"));
	buf_free(&out);
	test_end();
}

/* Python's email package must see multipart/report with the three parts
 * RFC 3464 asks for; tests/unit/dsn-check.py says what it found. */
static void
check_with_python(const struct dsn_msg *m, const char *want)
{
	char path[] = "/tmp/test-dsn-XXXXXX", cmd[512];
	struct yj_err err;
	struct buf out;
	int fd;

	buf_init(&out, 64 * 1024);
	test_assert(dsn_compose(m, &out, &err) == 1);
	fd = mkstemp(path);
	test_assert(fd >= 0);
	if (fd < 0)
		return;
	test_assert(write(fd, out.data, out.len) == (ssize_t)out.len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s/tests/unit/dsn-check.py %s '%s'",
		 YJ_SOURCE_DIR, path, want);
	test_assert(system(cmd) == 0);
	if (getenv("TEST_DSN_KEEP") == NULL)
		unlink(path);
	buf_free(&out);
}

static void
test_python_parses(void)
{
	struct dsn_msg m = sample_msg(failed_rcpts, 2);

	test_begin("dsn parsed by python email");
	check_with_python(&m, "message/rfc822");
	m.body = NULL;
	check_with_python(&m, "text/rfc822-headers");
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_classify,	   test_compose_failed, test_never_to_null_sender, test_hostile_values,
		test_limits,	   test_delayed_and_8bit, test_relayed, test_delivered_and_expanded,
		test_python_parses, NULL,
	};
	return test_run(tests);
}
