/* test-imap-thread.c - the pure parts of SORT and THREAD: base subjects
 * (RFC 5256 2.1), msg-id lists, both threading algorithms, and the
 * Date: parser and case folding they and SEARCH use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_thread.h"
#include "mime/mime_date.h"
#include "mime/mime_fold.h"
#include "mime/mime_msgid.h"
#include "test.h"

static void
check_base(const char *subject, const char *want, bool want_reply)
{
	struct buf out;
	bool reply;

	buf_init(&out, 1 << 20);
	test_assert(imap_base_subject(subject, strlen(subject), &out, &reply) == 1);
	test_assert_strcmp(out.data ? out.data : "", want);
	if (reply != want_reply)
		test_fail_str(__FILE__, __LINE__, subject, want_reply ? "reply" : "not a reply");
	buf_free(&out);
}

static void
test_base_subject(void)
{
	test_begin("base subject");
	check_base("foo", "foo", false);
	check_base("Re: foo", "foo", true);
	check_base("RE: [list] Re: foo (fwd)", "foo", true);
	check_base("Fwd: Fw: Re:   hello \t  world  ", "hello world", true);
	check_base("re:fwd:foo", "foo", true);
	check_base("Re[2]: x", "x", true);
	check_base("Re [blob] : x", "x", true);
	check_base("[Fwd: Re: bar]", "bar", true);
	check_base("[fwd: [list] baz] (fwd)", "baz", true);
	check_base("[list] foo", "foo", false);
	check_base("[list] [other] foo", "foo", false);
	check_base("[only]", "[only]", false);
	check_base("[a][b]", "[b]", false);
	check_base("[a] [b] [c]", "[c]", false);
	check_base("[a][b] Re: [c][d] x", "x", true);
	check_base("[a][b]Re:", "", true);
	check_base("Refactor: thing", "Refactor: thing", false);
	check_base("Re: ", "", true);
	check_base("", "", false);
	check_base("   ", "", false);
	check_base("foo (fwd) (FWD)", "foo", true);
	check_base("(fwd) foo", "(fwd) foo", false);
	/* RFC 2047 first: the marker may be inside an encoded word. */
	check_base("=?ISO-8859-1?Q?Re=3A_caf=E9?=", "caf\xc3\xa9", true);
	check_base("=?UTF-8?B?UmU6IGbDtsO2?= bar", "f\xc3\xb6\xc3\xb6 bar", true);
	check_base("Re: multi\r\n line", "multi line", true);
	test_end();
}

static bool
collect(void *ctx, const char *id, size_t len)
{
	struct buf *b = ctx;

	return buf_append(b, id, len) > 0 && buf_append(b, "|", 1) > 0;
}

static void
check_ids(const char *value, const char *want)
{
	struct buf b;

	buf_init(&b, 4096);
	mime_msgids(value, strlen(value), collect, &b);
	test_assert_strcmp(b.data ? b.data : "", want);
	buf_free(&b);
}

static void
test_msgids(void)
{
	test_begin("msg-id lists");
	check_ids("<a@b>", "<a@b>|");
	check_ids(" <a@b> (comment)\r\n\t<c@d><e@f>", "<a@b>|<c@d>|<e@f>|");
	check_ids("junk <> <x <y@z>", "<y@z>|");
	check_ids("no ids here", "");
	check_ids("<\"01KF8JCEOCBS0045PS\"@xxx.yyy.com> <a\\\"b@c>",
		  "<01KF8JCEOCBS0045PS@xxx.yyy.com>|<a\"b@c>|");
	check_ids("<a@b\r\n c>", "<a@bc>|");
	check_ids("<unterminated@x", "");
	test_end();
}

/* A message for the thread tests: refs is a space-separated list. */
struct tmsg {
	uint32_t id;
	int64_t date;
	const char *subject;
	bool reply;
	const char *msgid;
	const char *refs;
};

static char *
thread_of(const struct tmsg *t, size_t n, bool references)
{
	struct imap_thread_msg *m = calloc(n + 1, sizeof(*m));
	const char **refs = calloc(n * 8 + 1, sizeof(*refs));
	char *copies[64], *r;
	size_t nr = 0, nc = 0;
	struct buf out;

	for (size_t i = 0; i < n; i++) {
		m[i] = (struct imap_thread_msg){ .id = t[i].id, .seq = (uint32_t)(i + 1),
						 .date = t[i].date, .subject = t[i].subject,
						 .reply = t[i].reply, .msgid = t[i].msgid,
						 .refs = refs + nr };
		if (t[i].refs != NULL) {
			char *c = copies[nc++] = strdup(t[i].refs), *save = NULL;
			for (char *tok = strtok_r(c, " ", &save); tok != NULL;
			     tok = strtok_r(NULL, " ", &save)) {
				refs[nr++] = tok;
				m[i].nrefs++;
			}
		}
	}
	buf_init(&out, 1 << 20);
	test_assert((references ? imap_thread_references(m, n, &out)
				: imap_thread_orderedsubject(m, n, &out)) == 1);
	r = strdup(out.data ? out.data : "");
	buf_free(&out);
	for (size_t i = 0; i < nc; i++)
		free(copies[i]);
	free(refs);
	free(m);
	return r;
}

static void
check_thread(const struct tmsg *t, size_t n, bool references, const char *want)
{
	char *got = thread_of(t, n, references);

	test_assert_strcmp(got, want);
	free(got);
}

#define CHECK_REFS(t, want) check_thread(t, sizeof(t) / sizeof(t[0]), true, want)

static void
test_references(void)
{
	static const struct tmsg tree[] = {
		{ 1, 10, "a", false, "<a>", NULL },
		{ 2, 20, "a", true, "<b>", "<a>" },
		{ 3, 30, "a", true, "<c>", "<a> <b>" },
		{ 4, 40, "a", true, "<d>", "<a>" },
	};
	/* Two messages replying to one that is not there: a dummy root. */
	static const struct tmsg lost[] = {
		{ 1, 10, "x", true, "<1>", "<gone>" },
		{ 2, 20, "y", true, "<2>", "<gone>" },
	};
	static const struct tmsg lone[] = {
		{ 5, 10, "x", true, "<1>", "<gone> <gone2>" },
	};
	/* No references: grouped by subject (step 6). */
	static const struct tmsg subjects[] = {
		{ 1, 10, "foo", false, "<1>", NULL },
		{ 2, 20, "bar", false, "<2>", NULL },
		{ 3, 30, "foo", true, "<3>", NULL },
		{ 4, 40, "bar", false, "<4>", NULL },
		{ 5, 5, "", false, "<5>", NULL },
		{ 6, 50, "baz", true, "<6>", NULL },
		{ 7, 60, "baz", true, "<7>", NULL },
	};
	/* References that would loop, duplicate ids, a reply to itself. */
	static const struct tmsg loops[] = {
		{ 1, 10, "a", false, "<a>", "<b>" },
		{ 2, 20, "b", false, "<b>", "<a>" },
		{ 3, 30, "c", false, "<a>", NULL },
		{ 4, 40, "d", false, "<d>", "<d>" },
	};
	/* Root dummies with one child each give way to it (their lists
	 * must not be sorted again afterwards). */
	static const struct tmsg promoted[] = {
		{ 1, 10, "meeting", false, "<1@x>", NULL },
		{ 2, 20, "meeting", true, NULL, "<4@y> <2@x>" },
		{ 3, 0, "lunch", true, "<4@x>", "<98x>" },
		{ 4, 50, "zzz", false, "<1@x>", NULL },
	};
	/* Sorting siblings by date, ties by sequence number. */
	static const struct tmsg dates[] = {
		{ 1, 50, "s", false, "<r>", NULL },
		{ 2, 40, "t", true, "<x>", "<r>" },
		{ 3, 30, "u", true, "<y>", "<r>" },
		{ 4, 30, "v", true, "<z>", "<r>" },
	};

	test_begin("REFERENCES");
	CHECK_REFS(tree, "(1 (2 3)(4))");
	CHECK_REFS(lost, "((1)(2))");
	CHECK_REFS(lone, "(5)");
	CHECK_REFS(subjects, "(5)(1 3)((2)(4))((6)(7))");
	CHECK_REFS(loops, "(2 1)(3)(4)");
	CHECK_REFS(dates, "(1 (3)(4)(2))");
	CHECK_REFS(promoted, "(3)(1 2)(4)");
	check_thread(tree, 0, true, "");
	test_end();
}

static void
test_references_long_chain(void)
{
	enum { N = 100000 };
	struct imap_thread_msg *m = calloc(N, sizeof(*m));
	char (*ids)[16] = calloc(N, sizeof(*ids));
	const char **refs = calloc(N, sizeof(*refs));
	struct buf out;

	test_begin("REFERENCES: a chain of 100000 replies, no recursion");
	for (size_t i = 0; i < N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "<%zu>", i);
		refs[i] = ids[i];
		m[i] = (struct imap_thread_msg){ .id = (uint32_t)(i + 1), .seq = (uint32_t)(i + 1),
						 .date = (int64_t)i, .subject = "s", .msgid = ids[i],
						 .refs = i > 0 ? &refs[i - 1] : NULL,
						 .nrefs = i > 0 ? 1 : 0 };
	}
	buf_init(&out, 8 << 20);
	test_assert(imap_thread_references(m, N, &out) == 1);
	test_assert(strncmp(out.data, "(1 2 3 4 ", 9) == 0);
	test_assert(strcmp(out.data + out.len - 8, " 100000)") == 0);
	buf_free(&out);
	free(refs);
	free(ids);
	free(m);
	test_end();
}

static void
test_orderedsubject(void)
{
	static const struct tmsg t[] = {
		{ 1, 10, "b", false, NULL, NULL },
		{ 2, 20, "a", false, NULL, NULL },
		{ 3, 30, "b", true, NULL, NULL },
		{ 4, 40, "a", true, NULL, NULL },
		{ 5, 25, "b", false, NULL, NULL },
		{ 6, 5, "c", false, NULL, NULL },
	};

	test_begin("ORDEREDSUBJECT");
	check_thread(t, 6, false, "(6)(1 (5)(3))(2 4)");
	test_end();
}

static void
check_date(const char *v, int ok, int y, int mo, int d, int64_t utc)
{
	struct mime_date md;
	int r = mime_date_parse(v, strlen(v), &md);

	if (r != ok) {
		test_fail_str(__FILE__, __LINE__, v, ok ? "a date" : "not a date");
		return;
	}
	if (ok && (md.year != y || md.mon != mo || md.day != d || md.utc != utc))
		test_fail_str(__FILE__, __LINE__, v, "another date");
}

static void
test_dates(void)
{
	test_begin("Date: fields");
	check_date("Mon, 30 Nov 2026 15:00:00 +0000", 1, 2026, 11, 30, 1796050800);
	check_date("30 Nov 2026 15:00:00 -0130", 1, 2026, 11, 30, 1796050800 + 5400);
	check_date("Tue, 1 Dec 2026 01:00 +0200 (CEST)", 1, 2026, 12, 1, 1796079600);
	check_date("1 Dec 26 01:00:00 EST", 1, 2026, 12, 1, 1796104800);
	check_date(" (c) 29 Feb 2024 00:00:00 GMT", 1, 2024, 2, 29, 1709164800);
	check_date("29 Feb 2023 00:00:00 GMT", 0, 0, 0, 0, 0);
	check_date("1 Foo 2020", 0, 0, 0, 0, 0);
	check_date("yesterday", 0, 0, 0, 0, 0);
	check_date("", 0, 0, 0, 0, 0);
	check_date("2 Jan 1999", 1, 1999, 1, 2, 915235200);
	test_end();
}

static void
check_fold(const char *in, const char *want)
{
	struct buf out;

	buf_init(&out, 1024);
	test_assert(mime_fold_utf8(in, strlen(in), &out) == 1);
	test_assert_strcmp(out.data ? out.data : "", want);
	buf_free(&out);
}

static void
test_fold(void)
{
	struct buf a, b;

	test_begin("case folding");
	check_fold("Hello, World", "HELLO, WORLD");
	check_fold("bad \xff byte", "BAD \xff BYTE");
	/* é/É, Greek sigma in its three forms, Cyrillic д/Д */
	buf_init(&a, 1024);
	buf_init(&b, 1024);
	test_assert(mime_fold_utf8("caf\xc3\xa9 \xcf\x83\xcf\x82 \xd0\xb4", 12, &a) == 1);
	test_assert(mime_fold_utf8("CAF\xc3\x89 \xce\xa3\xce\xa3 \xd0\x94", 12, &b) == 1);
	test_assert(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	test_assert(mime_fold_contains(a.data, a.len, "", 0));
	buf_free(&a);
	buf_free(&b);
	test_end();
}

static void (*const tests[])(void) = {
	test_base_subject,
	test_msgids,
	test_references,
	test_references_long_chain,
	test_orderedsubject,
	test_dates,
	test_fold,
	NULL,
};

int
main(void)
{
	return test_run(tests);
}
