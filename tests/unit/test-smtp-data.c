/* Unit tests for the DATA decoder: dot-unstuffing, the end of data, and
 * every smuggling shape, fed whole, byte by byte and split anywhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"
#include "test.h"

#define BYTES(s) s, sizeof(s) - 1

struct data_case {
	const char *name;
	const char *in;
	size_t inlen;
	const char *out;
	size_t outlen;
	bool done;
	size_t consumed;	/* when done; otherwise all of in */
};

static const struct data_case data_cases[] = {
	{ "empty input", BYTES(""), BYTES(""), false, 0 },
	{ "empty message", BYTES(".\r\n"), BYTES(""), true, 3 },
	{ "one line", BYTES("hello\r\n.\r\n"), BYTES("hello\r\n"), true, 10 },
	{ "empty first line", BYTES("\r\n.\r\n"), BYTES("\r\n"), true, 5 },
	{ "headers and body", BYTES("Subject: x\r\n\r\nbody\r\n.\r\n"),
	  BYTES("Subject: x\r\n\r\nbody\r\n"), true, 23 },
	{ "stuffed dot", BYTES("a\r\n..b\r\n.\r\n"), BYTES("a\r\n.b\r\n"), true, 11 },
	{ "stuffed dot alone", BYTES("a\r\n..\r\n.\r\n"), BYTES("a\r\n.\r\n"), true, 10 },
	{ "stuffed dot first line", BYTES("..x\r\n.\r\n"), BYTES(".x\r\n"), true, 8 },
	{ "dots inside a line", BYTES("a.b..\r\n.\r\n"), BYTES("a.b..\r\n"), true, 10 },
	{ "pipelined command after", BYTES("a\r\n.\r\nQUIT\r\n"), BYTES("a\r\n"), true, 6 },
	{ "two ends", BYTES("a\r\n.\r\n.\r\n"), BYTES("a\r\n"), true, 6 },
	{ "binary bytes", BYTES("a\0b\xff\r\n.\r\n"), BYTES("a\0b\xff\r\n"), true, 9 },
	{ "not finished", BYTES("abc\r\n"), BYTES("abc\r\n"), false, 0 },
	{ "held dot", BYTES("abc\r\n."), BYTES("abc\r\n"), false, 0 },
	{ "held dot CR", BYTES("abc\r\n.\r"), BYTES("abc\r\n"), false, 0 },
	{ "held CR", BYTES("abc\r"), BYTES("abc"), false, 0 },

	/* bare LF becomes CRLF, and the next line is plain text */
	{ "bare LF", BYTES("a\nb\r\n.\r\n"), BYTES("a\r\nb\r\n"), true, 8 },
	{ "bare LF no unstuffing after", BYTES("a\n..\r\n"), BYTES("a\r\n..\r\n"), false, 0 },
	{ "bare LF at start", BYTES("\nx"), BYTES("\r\nx"), false, 0 },

	/* smuggling shapes: none of these ends the data */
	{ "LF . LF", BYTES("a\n.\nMAIL FROM:<x@y>\r\n"),
	  BYTES("a\r\n.\r\nMAIL FROM:<x@y>\r\n"), false, 0 },
	{ "LF . CRLF", BYTES("a\n.\r\nMAIL FROM:<x@y>\r\n"),
	  BYTES("a\r\n.\r\nMAIL FROM:<x@y>\r\n"), false, 0 },
	{ "CRLF . LF", BYTES("a\r\n.\nMAIL FROM:<x@y>\r\n"),
	  BYTES("a\r\n.\r\nMAIL FROM:<x@y>\r\n"), false, 0 },
	{ "CR . CRLF", BYTES("a\r.\r\nMAIL FROM:<x@y>\r\n"),
	  BYTES("a\r\n.\r\nMAIL FROM:<x@y>\r\n"), false, 0 },
	{ "CRLF . CR x", BYTES("a\r\n.\rMAIL FROM:<x@y>\r\n"),
	  BYTES("a\r\n.\r\nMAIL FROM:<x@y>\r\n"), false, 0 },
	{ "CRLF . CR . CRLF", BYTES("a\r\n.\r.\r\nx"), BYTES("a\r\n.\r\n.\r\nx"), false, 0 },
	{ "CRLF . CR CRLF", BYTES("a\r\n.\r\r\nx"), BYTES("a\r\n.\r\n\r\nx"), false, 0 },
	{ "CRLF . LF . CRLF", BYTES("a\r\n.\n.\r\nx"), BYTES("a\r\n.\r\n.\r\nx"), false, 0 },
	{ "LF . LF at start", BYTES("\n.\n"), BYTES("\r\n.\r\n"), false, 0 },
	{ ". LF at start", BYTES(".\nx"), BYTES(".\r\nx"), false, 0 },
	{ ". CR x at start", BYTES(".\rx"), BYTES(".\r\nx"), false, 0 },

	/* a bare CR ends its line as CR LF, and the next line is plain text */
	{ "bare CR", BYTES("a\rb\r\n"), BYTES("a\r\nb\r\n"), false, 0 },
	{ "CR CR LF", BYTES("a\r\r\n.\r\n"), BYTES("a\r\n\r\n"), true, 7 },
	{ "CR CR", BYTES("a\r\rb"), BYTES("a\r\n\r\nb"), false, 0 },
	{ "bare CR then stuffed-looking dot", BYTES("a\r..\r\n.\r\n"),
	  BYTES("a\r\n..\r\n"), true, 9 },
	{ "bare CR at start", BYTES("\rx\r\n.\r\n"), BYTES("\r\nx\r\n"), true, 7 },
	{ "bare CR before the end", BYTES("x\r\r\n.\r\n"), BYTES("x\r\n\r\n"), true, 7 },

	/* after a smuggling shape, a real end still works */
	{ "LF . LF then end", BYTES("a\n.\nb\r\n.\r\nc"), BYTES("a\r\n.\r\nb\r\n"), true, 10 },
	{ "CRLF . CR x then end", BYTES("a\r\n.\rb\r\n.\r\n"), BYTES("a\r\n.\r\nb\r\n"), true, 11 },
	{ "CRLF . CR CRLF then end", BYTES("a\r\n.\r\r\n.\r\n"), BYTES("a\r\n.\r\n\r\n"), true, 10 },
};

struct data_result {
	unsigned char out[512];
	size_t outlen;
	size_t consumed;
	bool done;
	bool bound_ok;		/* every call kept within 2 * inlen + 2 */
};

/* Feeds in as chunks ending at each cut (the last cut is inlen). */
static void
decode_chunks(const struct data_case *c, const size_t *cuts, size_t ncuts,
	      struct data_result *r)
{
	struct smtp_data_decoder d;
	size_t start = 0;

	memset(r, 0, sizeof(*r));
	r->bound_ok = true;
	smtp_data_init(&d);
	for (size_t k = 0; k < ncuts; k++) {
		size_t n = cuts[k] - start, outlen = 0, used;
		unsigned char *out = malloc(2 * n + 2);

		used = smtp_data_decode(&d, (const unsigned char *)c->in + start, n, out, &outlen);
		if (outlen > 2 * n + 2 || used > n)
			r->bound_ok = false;
		else if (r->outlen + outlen <= sizeof(r->out))
			memcpy(r->out + r->outlen, out, outlen);
		free(out);
		r->outlen += outlen;
		r->consumed += used;
		start = cuts[k];
	}
	r->done = d.done;
}

static bool
data_result_ok(const struct data_case *c, const struct data_result *r)
{
	size_t want_consumed = c->done ? c->consumed : c->inlen;

	return r->bound_ok && r->done == c->done && r->consumed == want_consumed &&
	       r->outlen == c->outlen && memcmp(r->out, c->out, c->outlen) == 0;
}

static void
data_report(const struct data_case *c, const char *how, const struct data_result *r)
{
	printf("  %s (%s): done=%d consumed=%zu outlen=%zu\n", c->name, how, r->done,
	       r->consumed, r->outlen);
}

static void
test_data_whole(void)
{
	test_begin("smtp_data_decode whole input");
	for (size_t i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		const struct data_case *c = &data_cases[i];
		size_t cut = c->inlen;
		struct data_result r;

		decode_chunks(c, &cut, 1, &r);
		test_assert(data_result_ok(c, &r));
		if (!data_result_ok(c, &r))
			data_report(c, "whole", &r);
	}
	test_end();
}

static void
test_data_bytewise(void)
{
	test_begin("smtp_data_decode one byte at a time");
	for (size_t i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		const struct data_case *c = &data_cases[i];
		size_t cuts[128];
		struct data_result r;

		for (size_t k = 0; k < c->inlen; k++)
			cuts[k] = k + 1;
		decode_chunks(c, cuts, c->inlen, &r);
		test_assert(data_result_ok(c, &r));
		if (!data_result_ok(c, &r))
			data_report(c, "bytewise", &r);
	}
	test_end();
}

/* Every pair of cut points: three chunks, some of them empty. */
static void
test_data_splits(void)
{
	test_begin("smtp_data_decode split anywhere");
	for (size_t i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		const struct data_case *c = &data_cases[i];

		for (size_t a = 0; a <= c->inlen; a++) {
			for (size_t b = a; b <= c->inlen; b++) {
				size_t cuts[3] = { a, b, c->inlen };
				struct data_result r;

				decode_chunks(c, cuts, 3, &r);
				test_assert(data_result_ok(c, &r));
				if (!data_result_ok(c, &r))
					data_report(c, "split", &r);
			}
		}
	}
	test_end();
}

static void
test_data_after_done(void)
{
	static const unsigned char in[] = "x\r\n.\r\nRSET\r\n";
	struct smtp_data_decoder d;
	unsigned char out[64];
	size_t outlen = 99;

	test_begin("smtp_data_decode after the end");
	smtp_data_init(&d);
	test_assert(smtp_data_decode(&d, in, sizeof(in) - 1, out, &outlen) == 6);
	test_assert(d.done && outlen == 3);
	outlen = 99;
	test_assert(smtp_data_decode(&d, in + 6, 6, out, &outlen) == 0);
	test_assert(outlen == 0 && d.done);
	/* init starts a new message */
	smtp_data_init(&d);
	test_assert(!d.done);
	test_assert(smtp_data_decode(&d, in + 6, 6, out, &outlen) == 6);
	test_assert(outlen == 6 && memcmp(out, "RSET\r\n", 6) == 0);
	test_end();
}

/* The output bound is tight for the worst cases: all bare LFs, and held
 * bytes released by a one-byte call. */
static void
test_data_worst_case(void)
{
	struct smtp_data_decoder d;
	unsigned char out[64];
	size_t outlen;

	test_begin("smtp_data_decode output bound");
	smtp_data_init(&d);
	test_assert(smtp_data_decode(&d, (const unsigned char *)"\n\n\n\n", 4, out, &outlen) == 4);
	test_assert(outlen == 8 && memcmp(out, "\r\n\r\n\r\n\r\n", 8) == 0);
	smtp_data_init(&d);
	test_assert(smtp_data_decode(&d, (const unsigned char *)".\r", 2, out, &outlen) == 2);
	test_assert(outlen == 0);
	test_assert(smtp_data_decode(&d, (const unsigned char *)"x", 1, out, &outlen) == 1);
	test_assert(outlen == 4 && memcmp(out, ".\r\nx", 4) == 0);
	smtp_data_init(&d);
	test_assert(smtp_data_decode(&d, (const unsigned char *)".", 1, out, &outlen) == 1);
	test_assert(smtp_data_decode(&d, (const unsigned char *)"\n", 1, out, &outlen) == 1);
	test_assert(outlen == 3 && memcmp(out, ".\r\n", 3) == 0);
	test_end();
}

/* Runs in through the BDAT normaliser in chunks ending at each cut, and
 * finishes the message; returns the length written to out. */
static size_t
crlf_chunks(const char *in, const size_t *cuts, size_t ncuts, unsigned char *out)
{
	struct smtp_crlf c = { 0 };
	size_t start = 0, n = 0;

	for (size_t k = 0; k < ncuts; k++) {
		n += smtp_crlf_normalize(&c, (const unsigned char *)in + start, cuts[k] - start,
					 out + n);
		start = cuts[k];
	}
	return n + smtp_crlf_finish(&c, out + n);
}

static void
test_crlf_normalize(void)
{
	static const struct { const char *in; const char *out; } cases[] = {
		{ "a\nb\r\nc", "a\r\nb\r\nc\r\n" },
		{ "\n\n", "\r\n\r\n" },
		{ "\r\r\n\r", "\r\n\r\n\r\n" },
		{ "a\rb", "a\r\nb\r\n" },
		{ "a\r", "a\r\n" },
		{ "\r", "\r\n" },
		{ "x\r\n", "x\r\n" },
		{ "no final line end", "no final line end\r\n" },
		{ "\r\n\n\r\r", "\r\n\r\n\r\n\r\n" },
		{ "", "" },
	};
	unsigned char out[64];
	size_t n;

	test_begin("BDAT: bare LF and bare CR made CRLF, last line ended");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in), want = strlen(cases[i].out);
		size_t cuts[64];

		n = crlf_chunks(cases[i].in, &len, 1, out);
		test_assert(n == want && memcmp(out, cases[i].out, n) == 0);
		for (size_t k = 0; k < len; k++)
			cuts[k] = k + 1;
		n = crlf_chunks(cases[i].in, cuts, len, out);
		test_assert(n == want && memcmp(out, cases[i].out, n) == 0);
		for (size_t a = 0; a <= len; a++) {
			size_t two[2] = { a, len };

			n = crlf_chunks(cases[i].in, two, 2, out);
			test_assert(n == want && memcmp(out, cases[i].out, n) == 0);
		}
	}
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_data_whole,
		test_data_bytewise,
		test_data_splits,
		test_data_after_done,
		test_data_worst_case,
		test_crlf_normalize,
		NULL,
	};

	return test_run(tests);
}
