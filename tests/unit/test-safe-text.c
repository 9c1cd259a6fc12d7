/* Client text made safe for logs and trace fields: log_value, the
 * Received: parts, the control characters refused, IDN domains. */
#include <stdio.h>
#include <string.h>

#include "base/idna.h"
#include "base/log.h"
#include "base/util.h"
#include "smtp/smtp_trace.h"
#include "test.h"

static void
test_log_value(void)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "alice@example.test", "alice@example.test" },
		{ "", "" },
		{ "j\xc3\xb6rg@b\xc3\xbc" "cher.example", "j\xc3\xb6rg@b\xc3\xbc" "cher.example" },
		{ "\"x> size=1 result=accepted client=10.9.9.9 id=FAKE\"@evil.example",
		  "\\x22x>\\x20size\\x3D1\\x20result\\x3Daccepted\\x20client\\x3D10.9.9.9"
		  "\\x20id\\x3DFAKE\\x22@evil.example" },
		{ "a\\b", "a\\x5Cb" },
		{ "tab\there", "tab\\x09here" },
		{ "c1\xc2\x85x", "c1\\xC2\\x85x" },
		{ "bidi\xe2\x80\xae" "evil", "bidi\\xE2\\x80\\xAE" "evil" },
		{ "isolate\xe2\x81\xa6x", "isolate\\xE2\\x81\\xA6x" },
		{ "alm\xd8\x9cx", "alm\\xD8\\x9Cx" },
		{ "bad\xff", "bad\\xFF" },
		{ "cut\xe2\x80", "cut\\xE2\\x80" },
		{ "del\x7f", "del\\x7F" },
		{ "\xc8\xa0", "\xc8\xa0" },	/* U+0220: its low byte is no space */
	};
	char out[LOG_VALUE_MAX];

	test_begin("log_value");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		test_assert_strcmp(log_value(out, sizeof(out), cases[i].in), cases[i].out);
	test_end();
}

static void
test_log_value_cut(void)
{
	char out[12], big[400], res[LOG_VALUE_MAX];

	test_begin("log_value cut to fit");
	test_assert_strcmp(log_value(out, sizeof(out), "abcdefghijklmnop"), "abcdefgh...");
	test_assert_strcmp(log_value(out, sizeof(out), "abcdefghijk"), "abcdefghijk");
	test_assert_strcmp(log_value(out, sizeof(out), "abcdefg h"), "abcdefg...");
	test_assert_strcmp(log_value(out, sizeof(out), "abcdefgh\xc3\xa9xyz"), "abcdefgh...");
	/* the largest address, all escaped, fits */
	memset(big, ' ', 320);
	big[320] = '\0';
	test_assert(strlen(log_value(res, sizeof(res), big)) == 320 * 4);
	test_end();
}

static void
test_controls(void)
{
	test_begin("util_utf8_valid refuses controls");
	test_assert(util_utf8_valid("b\xc3\xbc" "cher", 6));
	test_assert(util_utf8_valid("\xe2\x80\x8d", 3));		/* U+200D ZWJ is fine */
	test_assert(!util_utf8_valid("\xc2\x80", 2));
	test_assert(!util_utf8_valid("\xc2\x9f", 2));
	test_assert(util_utf8_valid("\xc2\xa0", 2));		/* U+00A0 */
	test_assert(!util_utf8_valid("\xe2\x80\xaa", 3));
	test_assert(!util_utf8_valid("\xe2\x80\xae", 3));
	test_assert(!util_utf8_valid("\xe2\x81\xa6", 3));
	test_assert(!util_utf8_valid("\xe2\x81\xa9", 3));
	test_assert(util_utf8_valid("\xe2\x81\xaa", 3));		/* U+206A is not bidi */
	test_assert(!util_utf8_valid("\xe2\x80\x8e", 3));
	test_assert(!util_utf8_valid("\xd8\x9c", 2));
	test_assert(!util_utf8_valid("a\tb", 3));
	test_end();
}

static void
test_trace_helo(void)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "mx.example.org", "mx.example.org" },
		{ "(comment", "?comment" },
		{ "a;b\"c\\d<e>f:g@h)", "a?b?c?d?e?f?g?h?" },
		{ "[192.0.2.1]", "[192.0.2.1]" },
		{ "[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]" },
		{ "[1.2.3", "?1.2.3" },
		{ "[1.2.3.4", "?1.2.3.4" },
		{ "1.2.3.4]", "1.2.3.4?" },
		{ "[1.2.3.4]x", "?1.2.3.4?x" },
		{ "[IPv6:zz]", "?IPv6?zz?" },
		{ "[x-tag:stuff]", "?x-tag?stuff?" },
		{ "[[1.2.3.4]]", "??1.2.3.4??" },
		{ "\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a",
		  "\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a" },
	};
	char out[256];

	test_begin("smtp_trace_helo");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		smtp_trace_helo(cases[i].in, out, sizeof(out));
		test_assert_strcmp(out, cases[i].out);
	}
	test_end();
}

static void
test_trace_ip_names(void)
{
	char out[64];

	test_begin("smtp_trace_ip, smtp_trace_names");
	smtp_trace_ip("192.0.2.1", out, sizeof(out));
	test_assert_strcmp(out, "[192.0.2.1]");
	smtp_trace_ip("2001:db8::1", out, sizeof(out));
	test_assert_strcmp(out, "[IPv6:2001:db8::1]");
	smtp_trace_ip("::1", out, sizeof(out));
	test_assert_strcmp(out, "[IPv6:::1]");
	test_assert(smtp_trace_names("alice@example.test", "alice@example.test"));
	test_assert(smtp_trace_names("<Alice@Example.TEST>", "alice@example.test"));
	test_assert(!smtp_trace_names("alice@example.test.", "alice@example.test"));
	test_assert(!smtp_trace_names("<alice@example.test", "alice@example.test"));
	test_assert(!smtp_trace_names("", "alice@example.test"));
	test_assert(!smtp_trace_names("bob@example.test", "alice@example.test"));
	test_end();
}

static void
test_idna(void)
{
	char out[256];

	test_begin("idna_to_ascii");
	test_assert(idna_to_ascii("Example.TEST", out, sizeof(out)) == 1);
	test_assert_strcmp(out, "example.test");
	test_assert(idna_to_ascii("ex\xc3\xa4mple.test", out, sizeof(out)) == 1);
	test_assert_strcmp(out, "xn--exmple-cua.test");
	/* NFC: "a" + combining diaeresis is the same name */
	test_assert(idna_to_ascii("exa\xcc\x88mple.test", out, sizeof(out)) == 1);
	test_assert_strcmp(out, "xn--exmple-cua.test");
	test_assert(idna_to_ascii("EX\xc3\x84MPLE.test", out, sizeof(out)) == 1);
	test_assert_strcmp(out, "xn--exmple-cua.test");
	/* not IDNA2008: a symbol, and a label of a leading combining mark */
	test_assert(idna_to_ascii("\xe2\x98\x83.test", out, sizeof(out)) == -1);
	test_assert(idna_to_ascii("\xcc\x88x.test", out, sizeof(out)) == -1);
	test_assert(idna_to_ascii("ex\xc3\xa4mple.test", out, 8) == -1);
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_log_value,
		test_log_value_cut,
		test_controls,
		test_trace_helo,
		test_trace_ip_names,
		test_idna,
		NULL,
	};

	return test_run(tests);
}
