/* Unit tests for src/mime: header fields, RFC 2047/2231 decoding,
 * addresses, the part tree, sections, BINARY decoding, and ENVELOPE,
 * BODY and BODYSTRUCTURE of every corpus message compared with the
 * expected answers in tests/data/mime/ (see tests/tools/mime-reference.py
 * and tests/data/mime/README.md). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mime/mime.h"
#include "mime/mime_addr.h"
#include "mime/mime_charset.h"
#include "mime/mime_ctype.h"
#include "mime/mime_decode.h"
#include "mime/mime_header.h"
#include "mime/mime_imap.h"
#include "test.h"

#define BYTES(s) s, sizeof(s) - 1
#define FILE_MAX (8u * 1024 * 1024)

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data;

	if (f == NULL)
		return NULL;
	data = malloc(FILE_MAX);
	*len = fread(data, 1, FILE_MAX, f);
	fclose(f);
	return data;
}

/* Every line end becomes CR LF, as the store keeps messages. */
static char *
canonical(const char *p, size_t len, size_t *outlen)
{
	char *out = malloc(len * 2 + 1);
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\r' || p[i] == '\n') {
			if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')
				i++;
			out[n++] = '\r';
			out[n++] = '\n';
		} else {
			out[n++] = p[i];
		}
	}
	*outlen = n;
	return out;
}

/* What tests/tools/mime-reference.py writes for one message. */
static void
imap_answers(const char *data, size_t len, struct buf *out)
{
	struct mime_msg m;

	mime_parse(&m, data, len);
	test_assert(buf_append_str(out, "ENVELOPE ") > 0);
	test_assert(mime_imap_envelope(&m, 0, out, 0) > 0);
	test_assert(buf_append_str(out, "\r\nBODY ") > 0);
	test_assert(mime_imap_bodystructure(&m, 0, false, out, 0) > 0);
	test_assert(buf_append_str(out, "\r\nBODYSTRUCTURE ") > 0);
	test_assert(mime_imap_bodystructure(&m, 0, true, out, 0) > 0);
	test_assert(buf_append_str(out, "\r\n") > 0);
	mime_free(&m);
}

/* "mail-parser_rfc_000.eml.txt" -> "messages/mail-parser/rfc/000.eml" */
static void
corpus_path(const char *name, char *path, size_t size)
{
	char rel[256];
	size_t n = strlen(name) - 4;
	int under = 0;

	snprintf(rel, sizeof(rel), "%.*s", (int)n, name);
	for (char *s = rel; *s; s++)
		if (*s == '_' && (under++ < (strncmp(rel, "mail-parser", 11) == 0 ? 2 : 1)))
			*s = '/';
	snprintf(path, size, "%s/messages/%s", getenv("YOUJU_TESTDATA"), rel);
}

static void
report_diff(const char *name, const struct buf *got, const char *want, size_t wlen)
{
	size_t i = 0;

	while (i < got->len && i < wlen && got->data[i] == want[i])
		i++;
	printf("  %s differs at byte %zu:\n    got:  %.160s\n    want: %.160s\n", name, i,
	       got->data + (i > 40 ? i - 40 : 0), want + (i > 40 ? i - 40 : 0));
}

/* With YOUJU_MIME_DUMP=dir, a differing answer is written to
 * dir/NAME.got, to be read and, if right, kept as NAME.youju. */
static void
dump_got(const char *name, const struct buf *got)
{
	const char *dir = getenv("YOUJU_MIME_DUMP");
	char path[1024];
	FILE *f;

	if (dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%.*s.got", dir, (int)(strlen(name) - 4), name);
	if ((f = fopen(path, "wb")) != NULL) {
		fwrite(got->data, 1, got->len, f);
		fclose(f);
	}
}

/* Compares one message's answers with its expected file (or its
 * .youju override). Returns true if they match. */
static bool
corpus_one(const char *dir, const char *name)
{
	char path[2048], epath[2048];
	size_t len, clen, wlen;
	char *raw, *msg, *want;
	struct buf got;
	bool ok;

	corpus_path(name, path, sizeof(path));
	raw = read_file(path, &len);
	if (raw == NULL) {
		printf("  cannot read %s\n", path);
		return false;
	}
	snprintf(epath, sizeof(epath), "%s/%.*s.youju", dir, (int)(strlen(name) - 4), name);
	want = read_file(epath, &wlen);
	if (want == NULL) {
		snprintf(epath, sizeof(epath), "%s/%s", dir, name);
		want = read_file(epath, &wlen);
	}
	msg = canonical(raw, len, &clen);
	buf_init(&got, FILE_MAX);
	imap_answers(msg, clen, &got);
	ok = want != NULL && got.len == wlen && memcmp(got.data, want, wlen) == 0;
	if (!ok && want != NULL)
		report_diff(name, &got, want, wlen);
	if (!ok)
		dump_got(name, &got);
	buf_free(&got);
	free(raw);
	free(msg);
	free(want);
	return ok;
}

static void
test_corpus(void)
{
	char dir[1024];
	struct dirent *de;
	unsigned n = 0, bad = 0;
	DIR *d;

	test_begin("corpus: ENVELOPE, BODY, BODYSTRUCTURE as expected");
	test_assert(getenv("YOUJU_TESTDATA") != NULL);
	snprintf(dir, sizeof(dir), "%s/tests/data/mime", YJ_SOURCE_DIR);
	d = opendir(dir);
	test_assert(d != NULL);
	while (d != NULL && (de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);

		if (l < 5 || strcmp(de->d_name + l - 4, ".txt") != 0)
			continue;
		n++;
		if (!corpus_one(dir, de->d_name))
			bad++;
	}
	if (d != NULL)
		closedir(d);
	printf("  %u messages, %u differ\n", n, bad);
	test_assert(n >= 150);
	test_assert(bad == 0);
	test_end();
}


/* ENVELOPE/BODYSTRUCTURE of a literal message, for the cases below. */
static void
answers_of(const char *msg, size_t len, bool ext, unsigned flags, struct buf *env,
	   struct buf *bs)
{
	struct mime_msg m;

	mime_parse(&m, msg, len);
	buf_init(env, 1 << 20);
	buf_init(bs, 1 << 20);
	test_assert(mime_imap_envelope(&m, 0, env, flags) > 0);
	test_assert(mime_imap_bodystructure(&m, 0, ext, bs, flags) > 0);
	mime_free(&m);
}

static void
test_header_fields(void)
{
	static const char msg[] = "Subject: a\r\n b\r\nno colon line\r\n continued\r\n"
				  "X-Blank  : v \r\nBad\xff: 8bit\r\n\r\nBody: no\r\n";
	struct mime_hdr_iter it;
	struct mime_field f;
	struct buf v;
	unsigned n = 0;

	test_begin("header: fields, offsets, unfolding, broken lines");
	buf_init(&v, 1024);
	mime_hdr_iter_init(&it, msg, 0, sizeof(msg) - 1);
	while (mime_hdr_next(&it, &f)) {
		buf_reset(&v);
		mime_field_unfold(msg, &f, &v);
		if (n == 0) {
			test_assert(f.off == 0 && f.name_len == 7 && f.value_off == 9);
			test_assert(f.end == 16);
			test_assert_strcmp(v.data, "a b");
		} else if (n == 1) {
			test_assert(mime_field_is(msg, &f, "x-blank"));
			test_assert_strcmp(v.data, "v");
		} else if (n == 2) {
			test_assert(f.name_len == 4);
			test_assert_strcmp(v.data, "8bit");
		}
		n++;
	}
	test_assert(n == 3);
	test_assert(!mime_hdr_find(msg, 0, sizeof(msg) - 1, "Body", &f));
	buf_free(&v);
	test_end();
}

/* mime_header_len: the top part's header as mime_parse takes it. */
static void
test_header_len(void)
{
	static const char *const cases[] = {
		"A: 1\r\n\r\nbody", "\r\nbody", "A: 1\r\n", "A: 1\n\nb", "A: 1\r\n\r",
		"", "\n", "A: 1\r\n\rX: 2\r\n\r\nb", "A: 1\r\n \r\n\r\n",
	};
	struct mime_msg m;

	test_begin("header: mime_header_len is mime_parse's header");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i]);

		mime_parse(&m, cases[i], len);
		test_assert(mime_header_len(cases[i], len) == m.parts[0].hdr_len);
		mime_free(&m);
	}
	test_assert(mime_header_len("A: 1\r\n\r\nbody", 14) == 8);
	test_assert(mime_header_len("\r\nbody", 6) == 2);
	test_assert(mime_header_len("A: 1\r\n", 6) == 6);
	test_assert(mime_header_len("A: 1\r\n\r", 7) == 7);
	test_end();
}

struct str_case {
	const char *in;
	const char *want;
};

static void
test_rfc2047(void)
{
	static const struct str_case cases[] = {
		{ "=?iso-8859-1?Q?J=FCrgen?= =?iso-8859-1?Q?_Schm=FCrgen?=", "J\xc3\xbcrgen Schm\xc3\xbcrgen" },
		{ "=?UTF-8?B?w6TDtsO8?=", "\xc3\xa4\xc3\xb6\xc3\xbc" },
		{ "a =?utf-8?q?b?= c", "a b c" },
		{ "=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab" },
		{ "=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b" },
		{ "=?nosuch-charset?q?a?=", "=?nosuch-charset?q?a?=" },
		{ "=?utf-8?x?a?=", "=?utf-8?x?a?=" },
		{ "=?utf-8?q?broken", "=?utf-8?q?broken" },
		{ "=?utf-8*en?Q?lang?=", "lang" },
		{ "=?utf-7?Q?Fr+APY-sche?=", "Fr\xc3\xb6sche" },
		{ "=?utf-8?B?/w==?=", "\xef\xbf\xbd" },
	};
	struct buf out;

	test_begin("RFC 2047 encoded words to UTF-8");
	buf_init(&out, 4096);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&out);
		test_assert(mime_2047_decode(cases[i].in, strlen(cases[i].in), &out) > 0);
		test_assert_strcmp(out.data, cases[i].want);
	}
	buf_free(&out);
	test_end();
}

static void
test_rfc2231(void)
{
	static const char ct_val[] = "text/plain; title*2=\"isn't it!\"; charset=us-ascii;\r\n"
				     " title*0*=us-ascii'en'This%20is%20; title*1*=%2A%2Afun%2A%2A%20;"
				     " name*=iso-8859-1''Fr%F6sche.txt; junk here; x=1 y=2; z=\"q\\\"q\"";
	struct mime_ctype ct;
	struct buf out;

	test_begin("Content-Type: parameters, RFC 2231 continuations and charsets");
	mime_ctype_init(&ct);
	test_assert(mime_ctype_parse(&ct, ct_val, sizeof(ct_val) - 1, true) == 1);
	test_assert_strcmp(ct.type.data, "text");
	test_assert_strcmp(ct.subtype.data, "plain");
	test_assert(ct.nparams == 5);
	test_assert_strcmp(ct.params[0].name.data, "charset");
	test_assert_strcmp(ct.params[1].name.data, "x");
	test_assert_strcmp(ct.params[1].value.data, "1");
	test_assert_strcmp(ct.params[2].value.data, "q\"q");
	test_assert_strcmp(ct.params[3].name.data, "name*");
	test_assert_strcmp(ct.params[4].name.data, "title*");
	test_assert_strcmp(ct.params[4].value.data, "us-ascii'en'This%20is%20%2A%2Afun%2A%2A%20isn't it!");
	buf_init(&out, 1024);
	test_assert(mime_param_decode(ct.params[4].value.data, ct.params[4].value.len, &out) > 0);
	test_assert_strcmp(out.data, "This is **fun** isn't it!");
	buf_reset(&out);
	test_assert(mime_param_decode(ct.params[3].value.data, ct.params[3].value.len, &out) > 0);
	test_assert_strcmp(out.data, "Fr\xc3\xb6sche.txt");
	buf_reset(&out);
	test_assert(mime_param_decode(BYTES("bogus-cs''%41"), &out) < 0);
	test_assert_strcmp(out.data, "bogus-cs''%41");
	mime_ctype_free(&ct);
	mime_ctype_init(&ct);
	test_assert(mime_ctype_parse(&ct, BYTES("text"), true) == 0);
	mime_ctype_free(&ct);
	mime_ctype_init(&ct);
	test_assert(mime_ctype_parse(&ct, BYTES(" attachment ; filename=\"a b.txt\""), false) == 1);
	test_assert_strcmp(ct.type.data, "attachment");
	test_assert_strcmp(mime_ctype_param(&ct, "FILENAME")->data, "a b.txt");
	mime_ctype_free(&ct);
	buf_free(&out);
	test_end();
}

static void
test_addresses(void)
{
	static const struct str_case cases[] = {
		{ "From: \"Doe, John\" <john@example.com>\r\n\r\n",
		  "((\"Doe, John\" NIL \"john\" \"example.com\"))" },
		{ "From: john@example.com (John Doe)\r\n\r\n",
		  "((\"John Doe\" NIL \"john\" \"example.com\"))" },
		{ "From: Undisclosed recipients:;\r\n\r\n",
		  "((NIL NIL \"Undisclosed recipients\" NIL)(NIL NIL NIL NIL))" },
		{ "From: team: a@b.c, Bob <d@e.f>; x@y.z\r\n\r\n",
		  "((NIL NIL \"team\" NIL)(NIL NIL \"a\" \"b.c\")(\"Bob\" NIL \"d\" \"e.f\")"
		  "(NIL NIL NIL NIL)(NIL NIL \"x\" \"y.z\"))" },
		{ "From: <@r1.example,@r2.example:joe@example.com>\r\n\r\n",
		  "((NIL \"@r1.example,@r2.example\" \"joe\" \"example.com\"))" },
		{ "From: \"a b\"@example.com\r\n\r\n", "((NIL NIL \"a b\" \"example.com\"))" },
		{ "From: joe\r\n\r\n", "((NIL NIL \"joe\" \"MISSING_DOMAIN\"))" },
		{ "From: Someone Else\r\n\r\n",
		  "((\"Someone Else\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\"))" },
		{ "From: <>\r\n\r\n", "((NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\"))" },
		{ "From: joe@[127.0.0.1], ,, \r\n\r\n", "((NIL NIL \"joe\" \"[127.0.0.1]\"))" },
		{ "From: J. Doe <j@example.com>\r\n\r\n", "((\"J. Doe\" NIL \"j\" \"example.com\"))" },
		{ "From: \"x\\\"y\" <a@b>\r\n\r\n", "((\"x\\\"y\" NIL \"a\" \"b\"))" },
		{ "From:\r\n\r\n", "NIL" },
	};
	struct buf env, bs;

	test_begin("addresses: groups, routes, comments, quoting, broken ones");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[1024];

		answers_of(cases[i].in, strlen(cases[i].in), true, 0, &env, &bs);
		snprintf(want, sizeof(want), "(NIL NIL %s %s %s NIL NIL NIL NIL NIL)", cases[i].want,
			 cases[i].want, cases[i].want);
		test_assert_strcmp(env.data, want);
		buf_free(&env);
		buf_free(&bs);
	}
	test_end();
}

static void
test_strings(void)
{
	static const char msg[] = "Subject: caf\xc3\xa9 \"q\" \\\r\nMessage-ID: <a@b>\r\n"
				  "Date: x\r\n\ty\r\n\r\nhi\r\n";
	struct buf env, bs, s;

	test_begin("IMAP strings: quoting, literals, UTF8=ACCEPT, folded values");
	answers_of(BYTES(msg), true, 0, &env, &bs);
	test_assert_strcmp(env.data, "({3}\r\nx y {11}\r\ncaf\xc3\xa9 \"q\" \\ NIL NIL NIL NIL NIL NIL NIL \"<a@b>\")");
	buf_free(&env);
	buf_free(&bs);
	answers_of(BYTES(msg), true, MIME_IMAP_UTF8, &env, &bs);
	test_assert_strcmp(env.data, "({3}\r\nx y \"caf\xc3\xa9 \\\"q\\\" \\\\\" NIL NIL NIL NIL NIL NIL NIL \"<a@b>\")");
	test_assert_strcmp(bs.data, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 1 NIL NIL NIL NIL)");
	buf_free(&env);
	buf_free(&bs);
	buf_init(&s, 64);
	test_assert(mime_imap_nstring(&s, "a\0b", 3, MIME_IMAP_UTF8) > 0);
	/* A literal cannot carry NUL (CHAR8 is %x01-ff): masked, same length. */
	test_assert(s.len == 8 && memcmp(s.data, "{3}\r\na\x80" "b", 8) == 0);
	buf_reset(&s);
	test_assert(mime_imap_literal8(&s, "a\0b", 3) > 0);
	test_assert(s.len == 9 && memcmp(s.data, "~{3}\r\na\0b", 9) == 0);
	buf_reset(&s);
	test_assert(mime_imap_literal8(&s, "ab", 2) > 0);
	test_assert_strcmp(s.data, "{2}\r\nab");
	buf_reset(&s);
	test_assert(mime_imap_nstring(&s, "\xff", 1, MIME_IMAP_UTF8) > 0);
	test_assert_strcmp(s.data, "{1}\r\n\xff");
	buf_reset(&s);
	test_assert(mime_imap_nstring(&s, NULL, 0, 0) > 0);
	test_assert_strcmp(s.data, "NIL");
	buf_free(&s);
	test_end();
}

/* The one quoter IMAP responses share: long strings become literals, and
 * a string that does not fit leaves the buffer as it was. */
static void
test_imap_string_limits(void)
{
	static char text[MIME_IMAP_QUOTED_MAX + 1];
	struct buf s;
	char head[16];

	test_begin("IMAP strings: length limit for quoting, all or nothing");
	memset(text, 'a', sizeof(text));
	buf_init(&s, 4 * sizeof(text));
	test_assert(mime_imap_string(&s, text, MIME_IMAP_QUOTED_MAX, 0) == 1);
	test_assert(s.len == MIME_IMAP_QUOTED_MAX + 2 && s.data[0] == '"');
	buf_reset(&s);
	test_assert(mime_imap_string(&s, text, sizeof(text), 0) == 1);
	snprintf(head, sizeof(head), "{%zu}\r\na", sizeof(text));
	test_assert(s.len == strlen(head) - 1 + sizeof(text) &&
		    memcmp(s.data, head, strlen(head)) == 0);
	buf_free(&s);
	buf_init(&s, 8);
	test_assert(buf_append_str(&s, "x ") == 1);
	test_assert(mime_imap_string(&s, "a\"b\\c", 5, 0) == -1);
	test_assert(s.len == 2 && strcmp(s.data, "x ") == 0);
	test_assert(mime_imap_literal(&s, "abcdef", 6) == -1);
	test_assert(s.len == 2 && strcmp(s.data, "x ") == 0);
	test_assert(mime_imap_string(&s, "a\"b", 3, 0) == 1);
	test_assert_strcmp(s.data, "x \"a\\\"b\"");
	buf_truncate(&s, 1);
	test_assert(s.len == 1 && strcmp(s.data, "x") == 0);
	buf_truncate(&s, 5);
	test_assert(s.len == 1);
	buf_free(&s);
	test_end();
}

static const char nested[] =
	"Content-Type: multipart/mixed; boundary=\"out\"\r\n"
	"\r\n"
	"preamble\r\n"
	"--out\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"caf=C3=A9 =\r\n"
	"end\r\n"
	"--out\r\n"
	"Content-Type: message/rfc822\r\n"
	"Content-Disposition: attachment; filename=m.eml\r\n"
	"Content-Language: en, de\r\n"
	"\r\n"
	"Subject: inner\r\n"
	"Content-Type: multipart/alternative; boundary=in\r\n"
	"\r\n"
	"--in\r\n"
	"\r\n"
	"plain\r\n"
	"--in\r\n"
	"Content-Type: application/octet-stream\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
	"Content-Location: http://example.com/x\r\n"
	"\r\n"
	"AAEC\r\n"
	"/w==\r\n"
	"--in--\r\n"
	"\r\n"
	"--out--\r\n"
	"epilogue\r\n";

static void
test_tree(void)
{
	struct mime_msg m;
	struct buf env, bs;

	test_begin("tree: offsets, sizes, nested message/rfc822, extension data");
	mime_parse(&m, BYTES(nested));
	test_assert(m.nparts == 6);
	test_assert(m.parts[0].kind == MIME_MULTIPART && m.parts[0].nchildren == 2);
	test_assert(m.parts[1].body_len == 16 && m.parts[1].body_lines == 1);
	test_assert(memcmp(nested + m.parts[1].body_off, "caf=C3=A9 =\r\nend", 16) == 0);
	test_assert(m.parts[2].kind == MIME_MESSAGE && m.parts[3].parent == 2);
	test_assert(m.parts[3].kind == MIME_MULTIPART && m.parts[3].nchildren == 2);
	test_assert(m.parts[3].hdr_off == m.parts[2].body_off);
	mime_free(&m);
	answers_of(BYTES(nested), true, 0, &env, &bs);
	test_assert_strcmp(bs.data,
		"((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 16 1 NIL NIL NIL NIL)"
		"(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 265 (NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) "
		"((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL)"
		"(\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 10 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" NIL NIL "
		"\"http://example.com/x\") \"alternative\" (\"boundary\" \"in\") NIL NIL NIL) 15 NIL "
		"(\"attachment\" (\"filename\" \"m.eml\")) (\"en\" \"de\") NIL) \"mixed\" (\"boundary\" \"out\") NIL NIL NIL)");
	buf_free(&env);
	buf_free(&bs);
	test_end();
}

struct section_case {
	const char *spec;
	int rc;
	const char *want;	/* the range's start */
	size_t len;
};

static void
test_sections(void)
{
	static const struct section_case cases[] = {
		{ "", 1, "Content-Type: multipart/mixed", sizeof(nested) - 1 },
		{ "HEADER", 1, "Content-Type: multipart/mixed", 49 },
		{ "TEXT", 1, "preamble", sizeof(nested) - 1 - 49 },
		{ "1", 1, "caf=C3=A9", 16 },
		{ "1.MIME", 1, "Content-Type: text/plain", 88 },
		{ "2", 1, "Subject: inner", 265 },
		{ "2.HEADER", 1, "Subject: inner", 68 },
		{ "2.TEXT", 1, "--in", 197 },
		{ "2.1", 1, "plain", 5 },
		{ "2.2", 1, "AAEC", 10 },
		{ "2.2.MIME", 1, "Content-Type: application", 156 },
		{ "2.3", 0, NULL, 0 },
		{ "1.1", 0, NULL, 0 },
		{ "1.TEXT", 0, NULL, 0 },
		{ "3", 0, NULL, 0 },
		{ "0", -1, NULL, 0 },
		{ "1.", -1, NULL, 0 },
		{ "MIME", -1, NULL, 0 },
		{ "1.FOO", -1, NULL, 0 },
		{ "99999999999999999999", 0, NULL, 0 },
	};
	struct mime_msg m;

	test_begin("sections: part numbers, HEADER, TEXT, MIME");
	mime_parse(&m, BYTES(nested));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum mime_section_kind kind;
		size_t off = 0, len = 0;
		int part, rc = mime_section_find(&m, cases[i].spec, &off, &len, &part, &kind);

		if (rc != cases[i].rc)
			printf("  section \"%s\": %d\n", cases[i].spec, rc);
		test_assert(rc == cases[i].rc);
		if (rc == 1 && cases[i].want != NULL) {
			if (len != cases[i].len)
				printf("  section \"%s\": length %zu\n", cases[i].spec, len);
			test_assert(len == cases[i].len);
			test_assert(strncmp(nested + off, cases[i].want, strlen(cases[i].want)) == 0);
		}
	}
	mime_free(&m);
	test_end();
}

/* A part's header whose empty line is right before a boundary line:
 * that line end belongs to the boundary (RFC 2046 5.1.1), so the part
 * is a header without its empty line, and no body. */
static void
test_header_at_boundary(void)
{
	static const char msg[] = "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
				  "--b\r\nContent-Type: text/plain\r\n\r\n--b\r\n\r\n--b--\r\n";
	enum mime_section_kind kind;
	size_t off = 0, len = 0;
	struct mime_msg m;
	int part;

	test_begin("sections: a header ended right before a boundary");
	mime_parse(&m, BYTES(msg));
	test_assert(mime_section_find(&m, "1.MIME", &off, &len, &part, &kind) == 1);
	test_assert(len == strlen("Content-Type: text/plain\r\n"));
	test_assert(mime_section_find(&m, "1", &off, &len, &part, &kind) == 1);
	test_assert(len == 0 && m.parts[part].body_lines == 0);
	test_assert(mime_section_find(&m, "2.MIME", &off, &len, &part, &kind) == 1);
	test_assert(len == 0);
	mime_free(&m);
	test_end();
}

static void
test_binary(void)
{
	static const char one[] = "Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n";
	struct mime_msg m;
	struct buf out;
	size_t size;

	test_begin("BINARY: base64 and quoted-printable decoding, unknown encodings");
	mime_parse(&m, BYTES(nested));
	buf_init(&out, 1024);
	test_assert(mime_binary_decode(&m, 1, &out) == 1);
	test_assert_strcmp(out.data, "caf\xc3\xa9 end");
	buf_reset(&out);
	test_assert(mime_binary_decode(&m, 5, &out) == 1);
	test_assert(out.len == 4 && memcmp(out.data, "\0\1\2\xff", 4) == 0);
	test_assert(mime_binary_size(&m, 5, &size) == 1 && size == 4);
	test_assert(mime_binary_size(&m, 1, &size) == 1 && size == 9);
	mime_free(&m);
	mime_parse(&m, BYTES(one));
	buf_reset(&out);
	test_assert(mime_binary_decode(&m, 0, &out) == 0);
	test_assert(mime_binary_size(&m, 0, &size) == 0);
	mime_free(&m);
	buf_reset(&out);
	test_assert(mime_qp_decode(BYTES("a=3Db  \r\nc=\r\nd=ZZ=4"), false, &out) == 1);
	test_assert_strcmp(out.data, "a=b\r\ncd=ZZ=4");
	buf_free(&out);
	buf_init(&out, 2);
	test_assert(mime_base64_decode(BYTES("QUJD"), &out) < 0);
	buf_free(&out);
	test_end();
}

/* Odd shapes: none may crash, each gives a well-formed answer. */
static void
test_malformed(void)
{
	static const struct str_case cases[] = {
		{ "", "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)" },
		{ "Subject: x", "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)" },
		{ "Content-Type: multipart/mixed\n\nbody\n",
		  "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"mixed\")" },
		{ "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/html\n\nx\n--b",
		  "((\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0)"
		  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"mixed\")" },
		{ "Content-Type: message/rfc822\n\n",
		  "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 0 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) "
		  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) 0)" },
		{ "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: s\n\nb\n--d--\n",
		  "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 13 (NIL \"s\" NIL NIL NIL NIL NIL NIL NIL NIL) "
		  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0) 2) \"digest\")" },
	};
	struct buf env, bs;

	test_begin("malformed: empty, headers only, no boundary, bare LF, digest");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		answers_of(cases[i].in, strlen(cases[i].in), false, 0, &env, &bs);
		test_assert_strcmp(bs.data, cases[i].want);
		buf_free(&env);
		buf_free(&bs);
	}
	test_end();
}

/* Nesting past MIME_DEPTH_MAX and a huge header: bounded, no crash. */
static void
test_limits(void)
{
	struct buf msg, env, bs;
	struct mime_msg m;

	test_begin("limits: deep nesting, many parts, huge header");
	buf_init(&msg, 16 << 20);
	for (int i = 0; i < 5000; i++)
		test_assert(buf_printf(&msg, "Content-Type: multipart/mixed; boundary=\"=_%d_=\"\r\n\r\n--=_%d_=\r\n",
				       i, i) > 0);
	mime_parse(&m, msg.data, msg.len);
	test_assert(m.nparts == MIME_DEPTH_MAX);
	for (size_t i = 0; i < m.nparts; i++)
		test_assert(m.parts[i].depth < MIME_DEPTH_MAX);
	mime_free(&m);
	answers_of(msg.data, msg.len, true, 0, &env, &bs);
	buf_free(&env);
	buf_free(&bs);
	buf_reset(&msg);
	test_assert(buf_append_str(&msg, "Content-Type: multipart/mixed; boundary=x\r\n\r\n") > 0);
	for (int i = 0; i < MIME_PARTS_MAX + 10; i++)
		test_assert(buf_append_str(&msg, "--x\r\n\r\na\r\n") > 0);
	mime_parse(&m, msg.data, msg.len);
	test_assert(m.nparts == MIME_PARTS_MAX);
	mime_free(&m);
	buf_reset(&msg);
	test_assert(buf_append_str(&msg, "Subject: ") > 0);
	for (int i = 0; i < 200000; i++)
		test_assert(buf_append_str(&msg, "xxxxx\r\n ") > 0);
	test_assert(buf_append_str(&msg, "\r\n\r\nbody") > 0);
	answers_of(msg.data, msg.len, true, 0, &env, &bs);
	test_assert(env.len < MIME_FIELD_VALUE_MAX + 200);
	buf_free(&env);
	buf_free(&bs);
	/* Shapes that would take quadratic time if a scan ran on: routes
	 * without a colon, encoded words without an end. */
	buf_reset(&msg);
	test_assert(buf_append_str(&msg, "To: ") > 0);
	for (int i = 0; i < 300000; i++)
		test_assert(buf_append_str(&msg, "<@a,") > 0);
	test_assert(buf_append_str(&msg, "\r\nCc: ") > 0);
	for (int i = 0; i < 300000; i++)
		test_assert(buf_append_str(&msg, "a (b), ") > 0);
	test_assert(buf_append_str(&msg, "\r\n\r\n") > 0);
	answers_of(msg.data, msg.len, true, 0, &env, &bs);
	buf_free(&env);
	buf_free(&bs);
	buf_reset(&msg);
	for (int i = 0; i < 300000; i++)
		test_assert(buf_append_str(&msg, "=?a?b?x") > 0);
	buf_init(&env, 16 << 20);
	test_assert(mime_2047_decode(msg.data, msg.len, &env) > 0);
	test_assert(env.len == msg.len);
	buf_free(&env);
	buf_free(&msg);
	test_end();
}

static void (*const tests[])(void) = {
	test_header_fields,
	test_header_len,
	test_rfc2047,
	test_rfc2231,
	test_addresses,
	test_strings,
	test_imap_string_limits,
	test_tree,
	test_sections,
	test_header_at_boundary,
	test_binary,
	test_malformed,
	test_limits,
	test_corpus,
	NULL,
};

int
main(void)
{
	return test_run(tests);
}
