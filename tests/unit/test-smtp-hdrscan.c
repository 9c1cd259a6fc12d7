/* Unit tests for the header section filter: Return-Path: removed,
 * Delivered-To: values reported, fed whole, byte by byte and split at
 * every point. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_hdrscan.h"
#include "test.h"

#define BYTES(s) s, sizeof(s) - 1

struct scan_case {
	const char *name;
	const char *in;
	size_t inlen;
	const char *out;
	size_t outlen;
	const char *values;	/* Delivered-To: values, each followed by '|' */
};

/* Cases named "sub ..." run in submission mode: From: values are
 * reported too, as "F:value|", Sender: values as "S:value|", and
 * Date:/Message-ID: added. */
static bool
scan_submission(const struct scan_case *c)
{
	return strncmp(c->name, "sub ", 4) == 0;
}

#define ADD_DATE "Date: Mon, 30 Nov 2026 14:00:00 +0000\r\n"
#define ADD_MSGID "Message-ID: <X1@example.test>\r\n"
#define ADD_FROM "From: <s@example.test>\r\n"
#define LONG_BLANKS "                                                                      "

static const struct scan_case scan_cases[] = {
	{ "empty", BYTES(""), BYTES(""), "" },
	{ "plain", BYTES("Subject: x\r\n\r\nbody\r\n"), BYTES("Subject: x\r\n\r\nbody\r\n"), "" },
	{ "our A-R removed", BYTES("Authentication-Results: mx.example.test; spf=pass\r\nA: 1\r\n\r\n"),
	  BYTES("A: 1\r\n\r\n"), "" },
	{ "our A-R folded, any case", BYTES("Authentication-Results:\r\n MX.Example.TEST (x);\r\n"
					    "\tdkim=pass\r\nA: 1\r\n\r\n"), BYTES("A: 1\r\n\r\n"), "" },
	{ "our A-R after a comment", BYTES("authentication-results : (c) mx.example.test;\r\nA: 1\r\n\r\n"),
	  BYTES("A: 1\r\n\r\n"), "" },
	{ "our A-R, id alone", BYTES("Authentication-Results: mx.example.test\nA: 1\n\n"),
	  BYTES("A: 1\n\n"), "" },
	{ "other A-R kept", BYTES("Authentication-Results: mx.example.test.evil; x\r\n"
				  "Authentication-Results: other; y\r\n\r\n"),
	  BYTES("Authentication-Results: mx.example.test.evil; x\r\n"
		"Authentication-Results: other; y\r\n\r\n"), "" },
	{ "A-R without id, then Return-Path", BYTES("Authentication-Results:\r\nReturn-Path: <e@x>\r\n"
						    "A: 1\r\n\r\n"),
	  BYTES("Authentication-Results:\r\nA: 1\r\n\r\n"), "" },
	{ "A-R in the body stays", BYTES("A: 1\r\n\r\nAuthentication-Results: mx.example.test; x\r\n"),
	  BYTES("A: 1\r\n\r\nAuthentication-Results: mx.example.test; x\r\n"), "" },
	{ "return-path removed", BYTES("Return-Path: <evil@x>\r\nSubject: x\r\n\r\nb\r\n"),
	  BYTES("Subject: x\r\n\r\nb\r\n"), "" },
	{ "any case", BYTES("A: 1\r\nreturn-PATH:<e@x>\r\nB: 2\r\n\r\n"),
	  BYTES("A: 1\r\nB: 2\r\n\r\n"), "" },
	{ "folded return-path", BYTES("Return-Path:\r\n <e@x>\r\n\tmore\r\nB: 2\r\n\r\n"),
	  BYTES("B: 2\r\n\r\n"), "" },
	{ "blanks before colon", BYTES("Return-Path \t : <e@x>\r\nB: 2\r\n\r\n"),
	  BYTES("B: 2\r\n\r\n"), "" },
	{ "many blanks before colon", BYTES("Return-Path" LONG_BLANKS ": <e@x>\r\nB: 2\r\n\r\n"),
	  BYTES("B: 2\r\n\r\n"), "" },
	{ "last line", BYTES("A: 1\r\nReturn-Path: <e@x>\r\n"), BYTES("A: 1\r\n"), "" },
	{ "bare LF lines", BYTES("Return-Path: <e@x>\nA: 1\n\nReturn-Path: body\n"),
	  BYTES("A: 1\n\nReturn-Path: body\n"), "" },
	{ "in the body it stays", BYTES("A: 1\r\n\r\nReturn-Path: <e@x>\r\n"),
	  BYTES("A: 1\r\n\r\nReturn-Path: <e@x>\r\n"), "" },
	{ "empty header section", BYTES("\r\nReturn-Path: <e@x>\r\n"),
	  BYTES("\r\nReturn-Path: <e@x>\r\n"), "" },
	{ "similar names pass", BYTES("Return-Paths: 1\r\nReturn-Pat: 2\r\nX-Return-Path: 3\r\n"
				      "Return-Path-X: 4\r\nReturn-Path\r\nReturn-Path x: 5\r\n\r\n"),
	  BYTES("Return-Paths: 1\r\nReturn-Pat: 2\r\nX-Return-Path: 3\r\n"
		"Return-Path-X: 4\r\nReturn-Path\r\nReturn-Path x: 5\r\n\r\n"), "" },
	{ "continuation of another field", BYTES("A: 1\r\n Return-Path: <e@x>\r\n\r\n"),
	  BYTES("A: 1\r\n Return-Path: <e@x>\r\n\r\n"), "" },
	{ "line starting with CR", BYTES("A: 1\r\n\rReturn-Path: <e@x>\r\n\r\n"),
	  BYTES("A: 1\r\n\rReturn-Path: <e@x>\r\n\r\n"), "" },
	{ "ends inside a name", BYTES("A: 1\r\nReturn-Pa"), BYTES("A: 1\r\nReturn-Pa"), "" },
	{ "ends after a CR", BYTES("A: 1\r\n\r"), BYTES("A: 1\r\n\r"), "" },
	{ "ends in a return-path", BYTES("Return-Path: <e@x>"), BYTES(""), "" },
	{ "NUL in a name", BYTES("Return\0Path: x\r\n"), BYTES("Return\0Path: x\r\n"), "" },

	{ "delivered-to", BYTES("Delivered-To: alice@example.test\r\nB: 2\r\n\r\nb\r\n"),
	  BYTES("Delivered-To: alice@example.test\r\nB: 2\r\n\r\nb\r\n"),
	  "alice@example.test|" },
	{ "delivered-to trimmed and unfolded",
	  BYTES("delivered-to \t:\r\n \t <bob@x>  \r\n\r\n"),
	  BYTES("delivered-to \t:\r\n \t <bob@x>  \r\n\r\n"), "<bob@x>|" },
	{ "delivered-to folded inside", BYTES("Delivered-To: a\r\n b\r\n"),
	  BYTES("Delivered-To: a\r\n b\r\n"), "a b|" },
	{ "several", BYTES("Delivered-To: a\r\nX: 1\r\nDELIVERED-TO: b\r\n\r\nDelivered-To: c\r\n"),
	  BYTES("Delivered-To: a\r\nX: 1\r\nDELIVERED-TO: b\r\n\r\nDelivered-To: c\r\n"),
	  "a|b|" },
	{ "delivered-to at the very end", BYTES("Delivered-To: z"), BYTES("Delivered-To: z"),
	  "z|" },
	{ "delivered-to empty", BYTES("Delivered-To:\r\n\r\n"), BYTES("Delivered-To:\r\n\r\n"),
	  "|" },
	{ "delivered-to with a NUL", BYTES("Delivered-To: a@x\0y\r\n\r\n"),
	  BYTES("Delivered-To: a@x\0y\r\n\r\n"), "" },
	{ "both", BYTES("Delivered-To: a@x\r\nReturn-Path: <b@y>\r\n c\r\nDelivered-To: d\r\n\r\n"),
	  BYTES("Delivered-To: a@x\r\nDelivered-To: d\r\n\r\n"), "a@x|d|" },
	/* The same fields pass on MX. */
	{ "mx keeps bcc", BYTES("Bcc: x@y\r\nFrom: a@b\r\n\r\n"),
	  BYTES("Bcc: x@y\r\nFrom: a@b\r\n\r\n"), "" },

	/* Submission: Bcc: removed, From: reported, Date:/Message-ID: added. */
	{ "sub adds both", BYTES("From: a@b\r\nBcc: x@y,\r\n z@w\r\nSubject: s\r\n\r\nbody\r\n"),
	  BYTES("From: a@b\r\nSubject: s\r\n" ADD_DATE ADD_MSGID "\r\nbody\r\n"), "F:a@b|" },
	{ "sub keeps its own", BYTES("date: x\r\nMessage-Id: <1@b>\r\nFROM : A <a@b>\r\n\r\n"),
	  BYTES("date: x\r\nMessage-Id: <1@b>\r\nFROM : A <a@b>\r\n\r\n"), "F:A <a@b>|" },
	{ "sub only date missing", BYTES("Message-ID: <1@b>\r\nFrom: a@b\r\n\r\n"),
	  BYTES("Message-ID: <1@b>\r\nFrom: a@b\r\n" ADD_DATE "\r\n"), "F:a@b|" },
	{ "sub bare LF", BYTES("From: a@b\nFrom: c@d\n\nBcc: body\n"),
	  BYTES("From: a@b\nFrom: c@d\n" ADD_DATE ADD_MSGID "\nBcc: body\n"), "F:a@b|F:c@d|" },
	{ "sub no body", BYTES("Subject: s\r\nBcc: x\r\n"),
	  BYTES("Subject: s\r\n" ADD_DATE ADD_MSGID ADD_FROM), "" },
	{ "sub empty", BYTES(""), BYTES(ADD_DATE ADD_MSGID ADD_FROM), "" },
	{ "sub similar names", BYTES("Bccx: 1\r\nFromage: 2\r\nDates: 3\r\n\r\n"),
	  BYTES("Bccx: 1\r\nFromage: 2\r\nDates: 3\r\n" ADD_DATE ADD_MSGID ADD_FROM "\r\n"),
	  "" },
	{ "sub sender reported", BYTES("From: a@b\r\nSender: S <s@b>\r\nsender :\r\n t@b\r\n\r\n"),
	  BYTES("From: a@b\r\nSender: S <s@b>\r\nsender :\r\n t@b\r\n" ADD_DATE ADD_MSGID "\r\n"),
	  "F:a@b|S:S <s@b>|S:t@b|" },
	{ "sub similar to sender", BYTES("Senders: x\r\nSende: y\r\n\r\nSender: body\r\n"),
	  BYTES("Senders: x\r\nSende: y\r\n" ADD_DATE ADD_MSGID ADD_FROM "\r\nSender: body\r\n"),
	  "" },
	{ "sub body starts at once", BYTES("\r\nFrom: body\r\n"),
	  BYTES(ADD_DATE ADD_MSGID ADD_FROM "\r\nFrom: body\r\n"), "" },
};

struct scan_result {
	unsigned char out[512];
	size_t outlen;
	char values[512];
	bool bound_ok;
};

/* Appends "<tag><value>|" to the result's values. */
static void
collect_tagged(void *ctx, const char *tag, const char *value)
{
	struct scan_result *r = ctx;
	size_t n = strlen(r->values);

	snprintf(r->values + n, sizeof(r->values) - n, "%s%s|", tag, value);
}

static void
collect_value(void *ctx, const char *value)
{
	collect_tagged(ctx, "", value);
}

static void
collect_from(void *ctx, const char *value)
{
	collect_tagged(ctx, "F:", value);
}

static void
collect_sender(void *ctx, const char *value)
{
	collect_tagged(ctx, "S:", value);
}

static void
scan_append(struct scan_result *r, const unsigned char *p, size_t n)
{
	if (r->outlen + n <= sizeof(r->out))
		memcpy(r->out + r->outlen, p, n);
	r->outlen += n;
}

/* Feeds in as chunks ending at each cut (the last cut is inlen). */
static void
scan_chunks(const struct scan_case *c, const size_t *cuts, size_t ncuts, struct scan_result *r)
{
	struct smtp_hdrscan h;
	unsigned char tail[SMTP_HDRSCAN_SLACK];
	size_t start = 0, slack = scan_submission(c) ? SMTP_HDRSCAN_SLACK : SMTP_HDRSCAN_HOLD;

	memset(r, 0, sizeof(*r));
	r->bound_ok = true;
	smtp_hdrscan_init(&h, collect_value, r);
	smtp_hdrscan_authserv(&h, "mx.example.test");
	if (scan_submission(c)) {
		smtp_hdrscan_submission(&h, collect_from, ADD_DATE, ADD_MSGID, ADD_FROM);
		smtp_hdrscan_sender(&h, collect_sender);
	}
	for (size_t k = 0; k < ncuts; k++) {
		size_t n = cuts[k] - start;
		unsigned char *out = malloc(n + slack);
		size_t outlen = smtp_hdrscan_feed(&h, (const unsigned char *)c->in + start, n, out);

		if (outlen > n + slack)
			r->bound_ok = false;
		else
			scan_append(r, out, outlen);
		free(out);
		start = cuts[k];
	}
	scan_append(r, tail, smtp_hdrscan_finish(&h, tail));
}

static bool
scan_ok(const struct scan_case *c, const struct scan_result *r)
{
	bool ok = r->bound_ok && r->outlen == c->outlen && memcmp(r->out, c->out, c->outlen) == 0 &&
		  strcmp(r->values, c->values) == 0;

	if (!ok)
		printf("  %s: outlen=%zu values=\"%s\"\n", c->name, r->outlen, r->values);
	return ok;
}

static void
test_scan_whole(void)
{
	test_begin("smtp_hdrscan whole input");
	for (size_t i = 0; i < sizeof(scan_cases) / sizeof(scan_cases[0]); i++) {
		size_t cut = scan_cases[i].inlen;
		struct scan_result r;

		scan_chunks(&scan_cases[i], &cut, 1, &r);
		test_assert(scan_ok(&scan_cases[i], &r));
	}
	test_end();
}

static void
test_scan_bytewise(void)
{
	test_begin("smtp_hdrscan one byte at a time");
	for (size_t i = 0; i < sizeof(scan_cases) / sizeof(scan_cases[0]); i++) {
		const struct scan_case *c = &scan_cases[i];
		size_t cuts[256];
		struct scan_result r;

		for (size_t k = 0; k < c->inlen; k++)
			cuts[k] = k + 1;
		scan_chunks(c, cuts, c->inlen, &r);
		test_assert(scan_ok(c, &r));
	}
	test_end();
}

/* Every pair of cut points: three chunks, some of them empty. */
static void
test_scan_splits(void)
{
	test_begin("smtp_hdrscan split anywhere");
	for (size_t i = 0; i < sizeof(scan_cases) / sizeof(scan_cases[0]); i++) {
		const struct scan_case *c = &scan_cases[i];

		for (size_t a = 0; a <= c->inlen; a++) {
			for (size_t b = a; b <= c->inlen; b++) {
				size_t cuts[3] = { a, b, c->inlen };
				struct scan_result r;

				scan_chunks(c, cuts, 3, &r);
				test_assert(scan_ok(c, &r));
			}
		}
	}
	test_end();
}

/* A Delivered-To: value longer than the limit names no address. */
static void
test_scan_long_value(void)
{
	size_t n = SMTP_HDRSCAN_VALUE_MAX + 40;
	char *in = malloc(n + 64);
	struct scan_case c = { "long value", in, 0, in, 0, "" };
	struct scan_result r;
	size_t cut;

	test_begin("smtp_hdrscan long Delivered-To:");
	c.inlen = (size_t)sprintf(in, "Delivered-To: ");
	memset(in + c.inlen, 'a', n);
	c.inlen += n;
	c.inlen += (size_t)sprintf(in + c.inlen, "\r\n\r\n");
	c.outlen = c.inlen;
	cut = c.inlen;
	memset(&r, 0, sizeof(r));
	scan_chunks(&c, &cut, 1, &r);
	test_assert(r.bound_ok && strcmp(r.values, "") == 0);
	free(in);
	test_end();
}

/* The removed count, and the output bound when held bytes are released
 * by a one-byte call. */
static void
test_scan_counts(void)
{
	static const char in[] = "Return-Path: a\r\nreturn-path: b\r\nReturn-Path\tx";
	unsigned char out[256];
	struct smtp_hdrscan h;
	size_t n;

	test_begin("smtp_hdrscan counts and bound");
	smtp_hdrscan_init(&h, NULL, NULL);
	n = smtp_hdrscan_feed(&h, (const unsigned char *)in, sizeof(in) - 2, out);
	test_assert(n == 0 && h.removed == 2);
	n = smtp_hdrscan_feed(&h, (const unsigned char *)"x", 1, out);
	test_assert(n == 13 && memcmp(out, "Return-Path\tx", 13) == 0);
	test_end();
}

/* Sender: values are reported in submission mode when asked for, and
 * counted; the field stays in the message. */
static void
test_scan_sender(void)
{
	static const char in[] = "From: a@x\r\nSender:\r\n b@y\r\nsender : c@z\r\n\r\nSender: d@w\r\n";
	struct scan_result r = { .values = "" };
	unsigned char out[sizeof(in) + SMTP_HDRSCAN_SLACK];
	struct smtp_hdrscan h;
	size_t n;

	test_begin("smtp_hdrscan Sender: values");
	smtp_hdrscan_init(&h, NULL, NULL);
	smtp_hdrscan_submission(&h, collect_from, "", "", "");
	smtp_hdrscan_sender(&h, collect_value);
	h.ctx = &r;
	n = smtp_hdrscan_feed(&h, (const unsigned char *)in, sizeof(in) - 1, out);
	n += smtp_hdrscan_finish(&h, out + n);
	test_assert(n == sizeof(in) - 1 && memcmp(out, in, n) == 0);
	test_assert_strcmp(r.values, "F:a@x|b@y|c@z|");
	test_assert(h.n_from == 1 && h.n_sender == 2);
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_scan_whole,
		test_scan_bytewise,
		test_scan_splits,
		test_scan_long_value,
		test_scan_counts,
		test_scan_sender,
		NULL,
	};

	return test_run(tests);
}
