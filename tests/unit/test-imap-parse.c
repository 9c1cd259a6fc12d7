/* Unit tests of the IMAP command reader, argument reader, command parser,
 * typed values (sequence sets, fetch items, search keys, flags, mailbox
 * names, dates) and response writers. */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "imap/imap_mailbox.h"
#include "imap/imap_parse.h"
#include "imap/imap_reader.h"
#include "imap/imap_write.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static const struct imap_reader_limits test_limits = {
	.line_max = 64,
	.literal_max = 100,
	.nonsync_max = 0,
	.command_max = 300,
	.literals_max = 3,
};

/* LITERAL+ switched off for the account: no {n+} at all. */
static const struct imap_reader_limits sync_only_limits = {
	.line_max = 64,
	.literal_max = 100,
	.nonsync_max = 0,
	.nonsync_refused = true,
	.command_max = 300,
	.literals_max = 3,
};

static const struct imap_reader_limits minus_limits = {
	.line_max = 64,
	.literal_max = 100,
	.nonsync_max = 10,	/* stands for LITERAL-'s 4096 */
	.command_max = 300,
	.literals_max = 3,
};

/* Commands other than APPEND kept smaller than an APPEND may be. */
static const struct imap_reader_limits other_limits = {
	.line_max = 64,
	.literal_max = 100,
	.nonsync_max = 0,
	.command_max = 300,
	.other_max = 100,
	.literals_max = 3,
};

/* ---- the reader ---- */

/* Records what the reader says as text: "+" for a continuation,
 * "<command>" for a command, "!tag text;" for an error. */
static void
transcript_event(struct imap_reader *r, enum imap_read_event ev, struct buf *t)
{
	size_t len;
	char *cmd;

	switch (ev) {
	case IMAP_READ_CONTINUE:
		(void)!buf_append(t, "+", 1);
		break;
	case IMAP_READ_COMMAND:
		cmd = imap_reader_command(r, &len);
		(void)!buf_append(t, "<", 1);
		(void)!buf_append(t, cmd, len);
		(void)!buf_append(t, ">", 1);
		break;
	case IMAP_READ_ERROR:
		(void)!buf_printf(t, "!%s %s;", imap_reader_error_tag(r), imap_reader_error_text(r));
		break;
	case IMAP_READ_MORE:
		break;
	}
}

/* Feeds data[0..len) in pieces cut at the given points (sorted; a cut of
 * 1 at every byte when bytewise). */
static void
reader_run(const struct imap_reader_limits *lim, const char *data, size_t len,
	   const size_t *cuts, size_t ncuts, bool bytewise, struct buf *t)
{
	struct imap_reader r;
	size_t start = 0;

	imap_reader_init(&r, lim);
	for (size_t k = 0; k <= (bytewise ? len : ncuts); k++) {
		size_t end = bytewise ? (k < len ? k + 1 : len) : (k < ncuts ? cuts[k] : len);
		size_t pos = start;
		while (pos < end) {
			size_t used = 0;
			enum imap_read_event ev = imap_reader_feed(&r, data + pos, end - pos, &used);
			test_assert(used > 0 || ev != IMAP_READ_MORE);
			test_assert(pos + used <= end);
			pos += used;
			transcript_event(&r, ev, t);
			if (used == 0 && ev == IMAP_READ_MORE)
				break;
		}
		start = end;
	}
	imap_reader_free(&r);
}

struct reader_case {
	const struct imap_reader_limits *lim;
	const char *in;
	const char *want;
};

static const struct reader_case reader_cases[] = {
	{ &test_limits, "a NOOP\r\n", "<a NOOP>" },
	{ &test_limits, "a NOOP\n", "<a NOOP>" },
	{ &test_limits, "\r\n\r\na NOOP\r\n", "<a NOOP>" },
	{ &test_limits, "a NOOP\r\nb CAPABILITY\r\n", "<a NOOP><b CAPABILITY>" },
	{ &test_limits, "a LOGIN {5}\r\nalice {6}\r\nsecret\r\n",
	  "++<a LOGIN {5}\r\nalice {6}\r\nsecret>" },
	{ &test_limits, "a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n",
	  "<a LOGIN {5+}\r\nalice {6+}\r\nsecret>" },
	{ &test_limits, "a APPEND x ~{3}\r\n\1\2\3\r\n", "+<a APPEND x ~{3}\r\n\1\2\3>" },
	{ &test_limits, "a LOGIN {0}\r\n {0}\r\n\r\n", "++<a LOGIN {0}\r\n {0}\r\n>" },
	/* A literal's bytes are not read for line ends or announcements. */
	{ &test_limits, "a X {9+}\r\n{1}\r\nb \nc\r\n", "<a X {9+}\r\n{1}\r\nb \nc>" },
	/* Too long a line: refused at once, the rest of it skipped. */
	{ &test_limits,
	  "t1 NOOP 0123456789012345678901234567890123456789012345678901234567890123\r\nb NOOP\r\n",
	  "!t1 BAD [TOOBIG] Command line too long;<b NOOP>" },
	/* 64 bytes is the limit, CR not counted. */
	{ &test_limits, "t2 NOOP 01234567890123456789012345678901234567890123456789012345\r\n",
	  "<t2 NOOP 01234567890123456789012345678901234567890123456789012345>" },
	{ &test_limits, "t2 NOOP 01234567890123456789012345678901234567890123456789012345\n",
	  "<t2 NOOP 01234567890123456789012345678901234567890123456789012345>" },
	{ &test_limits, "t2 NOOP 012345678901234567890123456789012345678901234567890123457\n",
	  "!t2 BAD [TOOBIG] Command line too long;" },
	{ &test_limits, "t2 NOOP 012345678901234567890123456789012345678901234567890123457\r\n",
	  "!t2 BAD [TOOBIG] Command line too long;" },
	/* A {n} too large: no continuation, the command is over. */
	{ &test_limits, "a APPEND x {101}\r\nb NOOP\r\n", "!a NO [TOOBIG] Literal too large;<b NOOP>" },
	{ &test_limits, "a APPEND x {99999999999999999999999}\r\nb NOOP\r\n",
	  "!a NO [TOOBIG] Literal too large;<b NOOP>" },
	/* A {n+} too large: its bytes are skipped, with the rest of the command. */
	{ &test_limits, "a APPEND x {101+}\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "012345678901234567890123456789 {2+}\r\nxy more\r\nb NOOP\r\n",
	  "!a BAD [TOOBIG] Literal too large;<b NOOP>" },
	/* ... and a {n} after it ends the refused command. */
	{ &test_limits, "a X {101+}\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "012345678901234567890123456789 {2}\r\nb NOOP\r\n",
	  "!a BAD [TOOBIG] Literal too large;<b NOOP>" },
	/* LITERAL-: {n+} up to the limit only; {n} may be larger. */
	{ &minus_limits, "a X {10+}\r\n0123456789\r\n", "<a X {10+}\r\n0123456789>" },
	{ &minus_limits, "a X {11+}\r\n01234567890\r\nb NOOP\r\n",
	  "!a BAD [TOOBIG] Literal too large;<b NOOP>" },
	{ &minus_limits, "a X {11}\r\n01234567890\r\n", "+<a X {11}\r\n01234567890>" },
	/* No {n+} served: refused, its bytes (and the rest) skipped; {n}
	 * and ~{n} are as before. */
	{ &sync_only_limits, "a X {5+}\r\nb X\r\n {2+}\r\n\r\n\r\nc NOOP\r\n",
	  "!a BAD Non-synchronizing literals are not supported;<c NOOP>" },
	{ &sync_only_limits, "a X {0+}\r\n\r\nb NOOP\r\n",
	  "!a BAD Non-synchronizing literals are not supported;<b NOOP>" },
	{ &sync_only_limits, "a X {3}\r\nabc ~{1}\r\nz\r\n", "++<a X {3}\r\nabc ~{1}\r\nz>" },
	/* Dropping goes on through further {n+} literals of the command. */
	{ &minus_limits, "a X {11+}\r\n01234567890 {1+}\r\nz {3+}\r\n\r\n\r\nb NOOP\r\nc NOOP\r\n",
	  "!a BAD [TOOBIG] Literal too large;<b NOOP><c NOOP>" },
	/* The command as a whole, and its number of literals. */
	{ &test_limits, "a X {1+}\r\n1 {1+}\r\n2 {1+}\r\n3 {1+}\r\n4\r\nb NOOP\r\n",
	  "!a BAD [TOOBIG] Command too large;<b NOOP>" },
	{ &test_limits, "a X {100}\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "012345678901234567890123456789 {100}\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "012345678901234567890123456789 {99}\r\nc NOOP\r\n",
	  "++!a NO [TOOBIG] Literal too large;<c NOOP>" },
	/* The limit passed first in the stream is the one reported. */
	{ &test_limits, "a X {100+}\r\n"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  " {100+}\r\n"
	  "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
	  " {60+}\r\n"
	  "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
	  " 0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
	  "b NOOP\r\n",
	  "!a BAD [TOOBIG] Command too large;<b NOOP>" },
	/* Only an APPEND's literals may take command_max; any other
	 * command stays within other_max, literals and lines together. */
	{ &other_limits, "a APPEND x {100+}\r\n" "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" "\r\n",
	  "<a APPEND x {100+}\r\n" "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" ">" },
	{ &other_limits, "a append x {100}\r\n" "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" "\r\n",
	  "+<a append x {100}\r\n" "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" ">" },
	{ &other_limits, "a SELECT {100+}\r\n" "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" "\r\nb NOOP\r\n",
	  "!a BAD [TOOBIG] Command too large;<b NOOP>" },
	{ &other_limits, "a SELECT {86}\r\nb NOOP\r\n", "!a NO [TOOBIG] Literal too large;<b NOOP>" },
	{ &other_limits, "a SELECT {84}\r\n" "012345678901234567890123456789012345678901234567890123456789012345678901234567890123" "\r\n",
	  "+<a SELECT {84}\r\n" "012345678901234567890123456789012345678901234567890123456789012345678901234567890123" ">" },
	{ &other_limits, "a X {0+}\r\n" "01234567890123456789012345678901234567890123456789" " {0+}\r\n" "01234567890123456789012345678901234567890123456789" "\r\nb NOOP\r\n",
	  "!a BAD [TOOBIG] Command too large;<b NOOP>" },
	{ &other_limits, "a APPENDX {90}\r\n", "!a NO [TOOBIG] Literal too large;" },
	/* A tag that cannot be echoed. */
	{ &test_limits, "{1}\r\n", "+" },
	{ &test_limits, "a+b X {200}\r\n", "!* NO [TOOBIG] Literal too large;" },
	/* A header field name in a section may be a literal (an astring). */
	{ &test_limits, "a FETCH 1 BODY[HEADER.FIELDS ({7}\r\nSubject)]\r\n",
	  "+<a FETCH 1 BODY[HEADER.FIELDS ({7}\r\nSubject)]>" },
	/* Not literals: braces elsewhere. */
	{ &test_limits, "a X {1}a\r\n", "<a X {1}a>" },
	{ &test_limits, "a X {}\r\n", "<a X {}>" },
	{ &test_limits, "a X {+}\r\n", "<a X {+}>" },
};

static void
test_reader_cases(void)
{
	test_begin("imap reader: framing, literals, limits");
	for (size_t i = 0; i < N_ELEMENTS(reader_cases); i++) {
		const struct reader_case *c = &reader_cases[i];
		size_t len = strlen(c->in);
		struct buf whole, bytes;
		buf_init(&whole, 4096);
		buf_init(&bytes, 4096);
		reader_run(c->lim, c->in, len, NULL, 0, false, &whole);
		reader_run(c->lim, c->in, len, NULL, 0, true, &bytes);
		size_t wlen = strlen(c->want);
		if (whole.len != wlen || memcmp(whole.data, c->want, wlen) != 0) {
			printf("  case %zu: got \"%s\"\n", i, whole.data);
			test_assert(!"whole transcript");
		}
		test_assert(bytes.len == whole.len && memcmp(bytes.data, whole.data, whole.len) == 0);
		/* An APPEND held in a spool file reads the same. */
		struct imap_reader_limits spool = *c->lim;
		struct buf spooled;
		spool.spool_dir = "/tmp";
		spool.spool_min = 1;
		buf_init(&spooled, 4096);
		reader_run(&spool, c->in, len, NULL, 0, true, &spooled);
		test_assert(spooled.len == whole.len &&
			    memcmp(spooled.data, whole.data, whole.len) == 0);
		buf_free(&spooled);
		/* Split at every pair of points. */
		for (size_t a = 1; a < len; a++) {
			for (size_t b = a; b < len; b++) {
				struct buf split;
				size_t cuts[2] = { a, b };
				buf_init(&split, 4096);
				reader_run(c->lim, c->in, len, cuts, 2, false, &split);
				if (split.len != whole.len ||
				    memcmp(split.data, whole.data, whole.len) != 0) {
					printf("  case %zu split %zu,%zu: \"%s\"\n", i, a, b, split.data);
					test_assert(!"split transcript");
					a = b = len;
				}
				buf_free(&split);
			}
		}
		buf_free(&whole);
		buf_free(&bytes);
	}
	test_end();
}

/* Spool limits: an APPEND literal of 5 bytes or more goes to a file. */
static const struct imap_reader_limits spool_limits = {
	.line_max = 64,
	.literal_max = 100,
	.nonsync_max = 0,
	.command_max = 300,
	.other_max = 100,
	.literals_max = 3,
	.spool_dir = "/tmp",
	.spool_min = 5,
};

/* Two readers announce literals at once, each fitting above
 * spool_keep_free alone, not both: the second is refused until the first
 * command ends. */
static void
test_reader_spool_promised(void)
{
	struct imap_reader_limits lim = spool_limits;
	struct imap_reader a, b;
	struct statvfs fs;
	uint64_t room = 1u << 30, free_now;
	char line[64];
	size_t used;

	if (statvfs("/tmp", &fs) < 0)
		return;
	free_now = (uint64_t)fs.f_bavail * fs.f_frsize;
	if (free_now / 2 < room)
		room = free_now / 2;
	if (room < (64u << 20))
		return;		/* too little to tell from other writers */
	lim.spool_keep_free = free_now - room;
	lim.literal_max = room;
	lim.command_max = (size_t)room + 4096;
	snprintf(line, sizeof(line), "a APPEND x {%llu}\r\n", (unsigned long long)(room / 10 * 6));
	imap_reader_init(&a, &lim);
	imap_reader_init(&b, &lim);
	test_assert(imap_reader_feed(&a, line, strlen(line), &used) == IMAP_READ_CONTINUE);
	test_assert(imap_reader_feed(&b, line, strlen(line), &used) == IMAP_READ_ERROR &&
		    imap_reader_error(&b) == IMAP_RERR_SPOOL_FAILED);
	imap_reader_free(&a);
	test_assert(imap_reader_feed(&b, line, strlen(line), &used) == IMAP_READ_CONTINUE);
	imap_reader_refuse(&b);
	imap_reader_init(&a, &lim);
	test_assert(imap_reader_feed(&a, line, strlen(line), &used) == IMAP_READ_CONTINUE);
	imap_reader_free(&a);
	imap_reader_free(&b);
}

static void
test_reader_spool(void)
{
	static const struct reader_case cases[] = {
		{ &spool_limits, "a APPEND x {10}\r\n0123456789\r\n", "+<a APPEND x {10}\r\n0123456789>" },
		{ &spool_limits, "a APPEND x {3}\r\nabc {6+}\r\nabcdef {1}\r\nz\r\n",
		  "++<a APPEND x {3}\r\nabc {6+}\r\nabcdef {1}\r\nz>" },
		{ &spool_limits, "a APPEND x {6}\r\nabcdef {200}\r\nb NOOP\r\n",
		  "+!a NO [TOOBIG] Literal too large;<b NOOP>" },
		{ &spool_limits,
		  "a APPEND x {6+}\r\nabcdef 01234567890123456789012345678901234567890123456789012345678901234\r\nb NOOP\r\n",
		  "!a BAD [TOOBIG] Command line too long;<b NOOP>" },
		{ &spool_limits, "a APPEND x {90+}\r\n" "012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
		  " {90+}\r\n" "012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
		  " {90+}\r\n" "012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
		  " {90+}\r\n" "012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
		  "\r\nb NOOP\r\n",
		  "!a BAD [TOOBIG] Command too large;<b NOOP>" },
	};
	struct imap_reader_limits broken = spool_limits;
	struct imap_reader r;
	size_t used, len;
	const char *in = "a APPEND x {10}\r\n0123456789\r\nb LOGIN {6}\r\nsecret\r\n";

	test_begin("imap reader: large APPENDs held in a file");
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct buf t;
		buf_init(&t, 4096);
		reader_run(cases[i].lim, cases[i].in, strlen(cases[i].in), NULL, 0, true, &t);
		if (t.len != strlen(cases[i].want) || memcmp(t.data, cases[i].want, t.len) != 0) {
			printf("  case %zu: got \"%s\"\n", i, t.data);
			test_assert(!"spool transcript");
		}
		buf_free(&t);
	}
	/* An APPEND is spooled, not kept idle; a LOGIN is not spooled. */
	imap_reader_init(&r, &spool_limits);
	test_assert(imap_reader_feed(&r, in, 17, &used) == IMAP_READ_CONTINUE && used == 17);
	/* Until the literal's first byte, the command's start is in memory
	 * for the early answer (imap_reader_partial). */
	uint64_t lsize;
	const char *part = imap_reader_partial(&r, &len, &lsize);
	test_assert(imap_reader_spooled(&r) && part != NULL && len == 17 && lsize == 10 &&
		    memcmp(part, "a APPEND x {10}\r\n", 17) == 0);
	test_assert(imap_reader_feed(&r, in + 17, 4, &used) == IMAP_READ_MORE);
	test_assert(imap_reader_spooled(&r) && !imap_reader_idle(&r) && r.cmd.len == 0);
	test_assert(imap_reader_partial(&r, &len, &lsize) == NULL);
	test_assert(imap_reader_feed(&r, in + 21, 8, &used) == IMAP_READ_COMMAND);
	test_assert(strcmp(imap_reader_command(&r, &len), "a APPEND x {10}\r\n0123456789") == 0);
	test_assert(len == 27 && imap_reader_spooled(&r) && imap_reader_idle(&r));
	in += 29;
	test_assert(imap_reader_feed(&r, in, strlen(in), &used) == IMAP_READ_CONTINUE);
	in += used;
	test_assert(imap_reader_feed(&r, in, strlen(in), &used) == IMAP_READ_COMMAND);
	test_assert(!imap_reader_spooled(&r) && r.spool_fd < 0);
	imap_reader_free(&r);
	/* No file to be had: NO [UNAVAILABLE], before "+" or while the
	 * literal's bytes come, and the next command is read. */
	broken.spool_dir = "/nonexistent/spool";
	struct buf t;
	buf_init(&t, 4096);
	in = "a APPEND x {10}\r\nb APPEND x {10+}\r\n0123456789\r\nc NOOP\r\n";
	reader_run(&broken, in, strlen(in), NULL, 0, false, &t);
	test_assert(strcmp(t.data, "!a NO [UNAVAILABLE] Cannot hold the message now;"
				   "!b NO [UNAVAILABLE] Cannot hold the message now;<c NOOP>") == 0);
	buf_free(&t);
	/* No room on the disk for the literal with spool_keep_free left: any
	 * APPEND, small ones too, and nothing else. */
	broken = spool_limits;
	broken.spool_keep_free = UINT64_MAX / 2;
	buf_init(&t, 4096);
	in = "a APPEND x {1}\r\nb LOGIN {2}\r\nab {0}\r\n\r\n";
	reader_run(&broken, in, strlen(in), NULL, 0, false, &t);
	test_assert(strcmp(t.data, "!a NO [UNAVAILABLE] Cannot hold the message now;"
				   "++<b LOGIN {2}\r\nab {0}\r\n>") == 0);
	buf_free(&t);
	test_reader_spool_promised();
	/* Small literals that together reach spool_min go to the file too. */
	broken = spool_limits;
	broken.spool_min = 40;
	imap_reader_init(&r, &broken);
	in = "a APPEND x {10+}\r\n0123456789 {10+}\r\n0123456789 {10+}\r\n0123456789\r\n";
	test_assert(imap_reader_feed(&r, in, 28, &used) == IMAP_READ_MORE && used == 28);
	test_assert(!imap_reader_spooled(&r));
	test_assert(imap_reader_feed(&r, in + 28, 18, &used) == IMAP_READ_MORE && used == 18);
	test_assert(imap_reader_spooled(&r));
	test_assert(imap_reader_feed(&r, in + 46, strlen(in + 46), &used) == IMAP_READ_COMMAND);
	test_assert(strcmp(imap_reader_command(&r, &len),
			   "a APPEND x {10+}\r\n0123456789 {10+}\r\n0123456789 {10+}\r\n0123456789") == 0);
	imap_reader_free(&r);
	test_end();
}

static void
test_reader_state(void)
{
	struct imap_reader r;
	size_t used;
	const char *in = "a IDLE\r\nDONE\r\nb NOOP\r\n";

	test_begin("imap reader: pipelining, idle, DONE");
	imap_reader_init(&r, &test_limits);
	test_assert(imap_reader_idle(&r));
	test_assert(imap_reader_feed(&r, in, strlen(in), &used) == IMAP_READ_COMMAND);
	test_assert(used == 8);
	/* The server reads DONE itself: the reader left it alone. */
	test_assert(imap_is_done_line(in + used, 6));
	test_assert(imap_is_done_line("done  \r\n", 8));
	test_assert(!imap_is_done_line("DONEX\r\n", 7));
	test_assert(imap_reader_feed(&r, in + 14, strlen(in) - 14, &used) == IMAP_READ_COMMAND);
	test_assert(imap_reader_idle(&r));
	test_assert(imap_reader_feed(&r, "c NO", 4, &used) == IMAP_READ_MORE && used == 4);
	test_assert(!imap_reader_idle(&r));
	imap_reader_free(&r);

	/* A large command's buffer is given back before parking; limits may
	 * change between commands. */
	struct imap_reader_limits big = test_limits, small = test_limits;
	char line[6000];
	big.line_max = sizeof(line);
	big.command_max = 2 * sizeof(line);
	small.line_max = 6;
	memset(line, 'x', sizeof(line));
	memcpy(line, "a NOOP ", 7);
	line[sizeof(line) - 1] = '\n';
	imap_reader_init(&r, &big);
	test_assert(imap_reader_feed(&r, line, sizeof(line), &used) == IMAP_READ_COMMAND);
	test_assert(r.cmd.cap > 4096);
	imap_reader_release(&r);
	test_assert(r.cmd.cap == 0 && imap_reader_idle(&r));
	imap_reader_set_limits(&r, &small);
	test_assert(imap_reader_feed(&r, "abc NOOP\r\n", 10, &used) == IMAP_READ_ERROR);
	test_assert(imap_reader_error(&r) == IMAP_RERR_LINE_TOO_LONG);
	test_assert_strcmp(imap_reader_error_tag(&r), "abc");
	imap_reader_free(&r);
	test_end();
}

/* ---- the command parser ---- */

/* Frames text (literals included) and parses it. */
static int
parse_text(struct imap_cmd *cmd, const char *text, size_t len, bool utf8, char **copy_r)
{
	struct imap_parse_opts opts = { .utf8 = utf8 };
	char *copy = malloc(len + 1);

	memcpy(copy, text, len);
	copy[len] = '\0';
	*copy_r = copy;
	return imap_cmd_parse(cmd, copy, len, &opts);
}

struct good_case {
	const char *line;
	enum imap_cmd_name name;
	bool uid;
};

static const struct good_case good_cases[] = {
	{ "a CAPABILITY", IMAP_CMD_CAPABILITY, false },
	{ "a noop", IMAP_CMD_NOOP, false },
	{ "a LOGOUT ", IMAP_CMD_LOGOUT, false },
	{ "a STARTTLS", IMAP_CMD_STARTTLS, false },
	{ "a AUTHENTICATE PLAIN", IMAP_CMD_AUTHENTICATE, false },
	{ "a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==", IMAP_CMD_AUTHENTICATE, false },
	{ "a AUTHENTICATE PLAIN =", IMAP_CMD_AUTHENTICATE, false },
	{ "a LOGIN alice \"se\\\"cret\"", IMAP_CMD_LOGIN, false },
	{ "a LOGIN {5}\r\nalice {6+}\r\nsecret", IMAP_CMD_LOGIN, false },
	{ "a ENABLE CONDSTORE QRESYNC UTF8=ACCEPT", IMAP_CMD_ENABLE, false },
	{ "a ID NIL", IMAP_CMD_ID, false },
	{ "a ID (\"name\" \"Thunderbird\" \"version\" NIL)", IMAP_CMD_ID, false },
	{ "a SELECT INBOX", IMAP_CMD_SELECT, false },
	{ "a SELECT inbox (CONDSTORE)", IMAP_CMD_SELECT, false },
	{ "a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
	  IMAP_CMD_SELECT, false },
	{ "a SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541 "
	  "(1:10,20 2:11,50)))", IMAP_CMD_SELECT, false },
	{ "a EXAMINE \"Sent Items\"", IMAP_CMD_EXAMINE, false },
	{ "a CREATE Archive", IMAP_CMD_CREATE, false },
	{ "a CREATE MyDrafts (USE (\\Drafts))", IMAP_CMD_CREATE, false },
	{ "a DELETE Archive", IMAP_CMD_DELETE, false },
	{ "a RENAME Archive \"Old Archive\"", IMAP_CMD_RENAME, false },
	{ "a SUBSCRIBE Archive", IMAP_CMD_SUBSCRIBE, false },
	{ "a UNSUBSCRIBE Archive", IMAP_CMD_UNSUBSCRIBE, false },
	{ "a LIST \"\" *", IMAP_CMD_LIST, false },
	{ "a LIST \"\" \"\"", IMAP_CMD_LIST, false },
	{ "a LIST \"\" %", IMAP_CMD_LIST, false },
	{ "a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (* Foo/%) RETURN (CHILDREN STATUS (MESSAGES SIZE))",
	  IMAP_CMD_LIST, false },
	{ "a LIST (SPECIAL-USE) \"\" * RETURN (SPECIAL-USE)", IMAP_CMD_LIST, false },
	{ "a LSUB \"\" *", IMAP_CMD_LSUB, false },
	{ "a NAMESPACE", IMAP_CMD_NAMESPACE, false },
	{ "a STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ)",
	  IMAP_CMD_STATUS, false },
	{ "a APPEND INBOX {3}\r\nabc", IMAP_CMD_APPEND, false },
	{ "a APPEND INBOX (\\Seen $Forwarded) \" 7-Feb-1994 21:52:25 -0800\" {3+}\r\nabc",
	  IMAP_CMD_APPEND, false },
	{ "a APPEND INBOX () {1}\r\nx (\\Draft) {1}\r\ny ~{1}\r\nz", IMAP_CMD_APPEND, false },
	{ "a IDLE", IMAP_CMD_IDLE, false },
	{ "a CHECK", IMAP_CMD_CHECK, false },
	{ "a CLOSE", IMAP_CMD_CLOSE, false },
	{ "a UNSELECT", IMAP_CMD_UNSELECT, false },
	{ "a EXPUNGE", IMAP_CMD_EXPUNGE, false },
	{ "a UID EXPUNGE 3:5,9", IMAP_CMD_EXPUNGE, true },
	{ "a SEARCH ALL", IMAP_CMD_SEARCH, false },
	{ "a UID SEARCH RETURN (MIN MAX COUNT) CHARSET UTF-8 UNSEEN", IMAP_CMD_SEARCH, true },
	{ "a SEARCH RETURN () 1:*", IMAP_CMD_SEARCH, false },
	{ "a SEARCH RETURN (SAVE) FLAGGED", IMAP_CMD_SEARCH, false },
	{ "a SEARCH CHARSET UTF-8 SUBJECT \"caf\xc3\xa9\"", IMAP_CMD_SEARCH, false },
	{ "a SEARCH CHARSET KOI8-R SUBJECT \"\xf0\xd2\xc9\"", IMAP_CMD_SEARCH, false },
	{ "a SEARCH $", IMAP_CMD_SEARCH, false },
	{ "a FETCH 1:* (FLAGS)", IMAP_CMD_FETCH, false },
	{ "a fetch 1 full", IMAP_CMD_FETCH, false },
	{ "a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0)", IMAP_CMD_FETCH, true },
	{ "a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)", IMAP_CMD_FETCH, true },
	{ "a UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (From To Subject)] BINARY.SIZE[1])",
	  IMAP_CMD_FETCH, true },
	{ "a FETCH 1 BODY[HEADER.FIELDS ({4}\r\nFrom {2+}\r\nTo \"Subject\")]", IMAP_CMD_FETCH, false },
	{ "a FETCH $ (PREVIEW (LAZY) EMAILID THREADID SAVEDATE MODSEQ)", IMAP_CMD_FETCH, false },
	{ "a STORE 1 +FLAGS (\\Seen)", IMAP_CMD_STORE, false },
	{ "a STORE 1:3 -FLAGS.SILENT \\Deleted $Junk", IMAP_CMD_STORE, false },
	{ "a UID STORE 1 (UNCHANGEDSINCE 200) FLAGS ()", IMAP_CMD_STORE, true },
	{ "a COPY 1:3 Trash", IMAP_CMD_COPY, false },
	{ "a UID MOVE 1:3 Trash", IMAP_CMD_MOVE, true },
	{ "a SORT (REVERSE DATE SUBJECT) UTF-8 ALL", IMAP_CMD_SORT, false },
	{ "a UID THREAD REFERENCES UTF-8 SINCE 1-Feb-1994", IMAP_CMD_THREAD, true },
	{ "a COMPRESS DEFLATE", IMAP_CMD_COMPRESS, false },
	{ "a GETQUOTA \"\"", IMAP_CMD_GETQUOTA, false },
	{ "a GETQUOTAROOT INBOX", IMAP_CMD_GETQUOTAROOT, false },
	{ "a SETQUOTA \"\" (STORAGE 512)", IMAP_CMD_SETQUOTA, false },
	/* Extra spaces some clients send. */
	{ "a  FETCH  1  ( FLAGS  UID )  ", IMAP_CMD_FETCH, false },
	{ "a uid  fetch 1 flags", IMAP_CMD_FETCH, true },
};

static void
test_parse_good(void)
{
	struct imap_cmd cmd;

	test_begin("imap parse: every command form");
	imap_cmd_init(&cmd);
	for (size_t i = 0; i < N_ELEMENTS(good_cases); i++) {
		const struct good_case *c = &good_cases[i];
		char *copy;
		int ret = parse_text(&cmd, c->line, strlen(c->line), false, &copy);
		if (ret != 1) {
			printf("  case %zu (%s): %s\n", i, c->line, cmd.error);
			test_assert(ret == 1);
		} else {
			test_assert(cmd.name == c->name);
			test_assert(cmd.uid == c->uid);
			test_assert_strcmp(cmd.tag, "a");
		}
		free(copy);
	}
	imap_cmd_clear(&cmd);
	test_end();
}

struct bad_case {
	const char *line;
	const char *tag;
	const char *error;
};

static const struct bad_case bad_cases[] = {
	{ "", "*", "BAD Invalid tag" },
	{ "a", "a", "BAD Missing command" },
	{ "a ", "a", "BAD Missing command" },
	{ "+ NOOP", "*", "BAD Invalid tag" },
	{ "a(b NOOP", "*", "BAD Invalid tag" },
	{ "a FOO", "a", "BAD Unknown command" },
	{ "a UID NOOP", "a", "BAD UID NOOP: Not a UID command" },
	{ "a UID UID FETCH 1 FLAGS", "a", "BAD Unknown command" },
	{ "a NOOP x", "a", "BAD NOOP: Too many arguments" },
	{ "a LOGIN alice", "a", "BAD LOGIN: Missing argument" },
	{ "a LOGIN alice (x)", "a", "BAD LOGIN: Missing argument" },
	{ "a LOGIN \"alice", "a", "BAD LOGIN: Quoted string not closed" },
	{ "a LOGIN \"al\\ice\" x", "a", "BAD LOGIN: Bad escape in quoted string" },
	{ "a LOGIN alice x)", "a", "BAD LOGIN: Unexpected ')'" },
	{ "a LOGIN (alice x", "a", "BAD LOGIN: Missing ')'" },
	{ "a LOGIN alice x\001", "a", "BAD LOGIN: Invalid character" },
	{ "a LOGIN alice \001", "a", "BAD LOGIN: Invalid character" },
	{ "a LOGIN alice {5}\r\nabc", "a", "BAD LOGIN: Literal cut short" },
	{ "a LOGIN alice \"x\"y", "a", "BAD LOGIN: Missing space between arguments" },
	{ "a AUTHENTICATE", "a", "BAD AUTHENTICATE: Missing mechanism" },
	{ "a AUTHENTICATE PLAIN a b", "a", "BAD AUTHENTICATE: Too many arguments" },
	{ "a ENABLE", "a", "BAD ENABLE: Missing argument" },
	{ "a ID", "a", "BAD ID: Invalid ID parameters" },
	{ "a ID (\"name\")", "a", "BAD ID: Invalid ID parameters" },
	{ "a ID (\"a-field-name-much-longer-than-30\" \"x\")", "a",
	  "BAD ID: Invalid ID parameters" },
	{ "a SELECT", "a", "BAD SELECT: Missing argument" },
	{ "a SELECT INBOX (FOO)", "a", "BAD SELECT: Unknown SELECT parameter" },
	{ "a SELECT INBOX (QRESYNC (0 1))", "a", "BAD SELECT: Invalid QRESYNC parameters" },
	{ "a SELECT INBOX (QRESYNC (1))", "a", "BAD SELECT: Invalid QRESYNC parameters" },
	{ "a SELECT &AGE-", "a", "BAD SELECT: Mailbox name is not valid modified UTF-7" },
	{ "a SELECT &Jjo", "a", "BAD SELECT: Mailbox name is not valid modified UTF-7" },
	{ "a SELECT \"a\tb\"", "a",
	  "BAD SELECT: Mailbox name is not valid UTF-8 or holds control characters" },
	{ "a CREATE x (USE (Drafts))", "a", "BAD CREATE: Invalid special-use attribute" },
	{ "a CREATE x (FOO)", "a", "BAD CREATE: Invalid CREATE parameters" },
	{ "a RENAME x", "a", "BAD RENAME: Missing argument" },
	{ "a LIST \"\"", "a", "BAD LIST: Missing argument" },
	{ "a LIST (FOO) \"\" *", "a", "BAD LIST: Unknown LIST selection option" },
	{ "a LIST (RECURSIVEMATCH) \"\" *", "a",
	  "BAD LIST: RECURSIVEMATCH needs another selection option" },
	{ "a LIST \"\" * RETURN (FOO)", "a", "BAD LIST: Unknown LIST return option" },
	{ "a LIST \"\" * x", "a", "BAD LIST: Too many arguments" },
	{ "a LSUB \"\" (*)", "a", "BAD LSUB: Invalid mailbox pattern" },
	{ "a STATUS INBOX", "a", "BAD STATUS: Invalid status items" },
	{ "a STATUS INBOX (FOO)", "a", "BAD STATUS: Unknown status item" },
	{ "a APPEND INBOX", "a", "BAD APPEND: Missing message literal" },
	{ "a APPEND INBOX abc", "a", "BAD APPEND: Missing message literal" },
	{ "a APPEND INBOX (\\Recent) {1}\r\nx", "a", "BAD APPEND: \\Recent cannot be set" },
	{ "a APPEND INBOX \"7-Feb-1994\" {1}\r\nx", "a", "BAD APPEND: Invalid date-time" },
	{ "a APPEND INBOX \"31-Feb-1994 21:52:25 -0800\" {1}\r\nx", "a",
	  "BAD APPEND: Invalid date-time" },
	{ "a APPEND INBOX UTF8 (~{1}\r\nx)", "a", "BAD APPEND: UTF8 needs ENABLE UTF8=ACCEPT" },
	{ "a FETCH", "a", "BAD FETCH: Missing sequence set" },
	{ "a FETCH 0 FLAGS", "a", "BAD FETCH: Invalid sequence set" },
	{ "a FETCH 1: FLAGS", "a", "BAD FETCH: Invalid sequence set" },
	{ "a FETCH 1,,2 FLAGS", "a", "BAD FETCH: Invalid sequence set" },
	{ "a FETCH 4294967296 FLAGS", "a", "BAD FETCH: Invalid sequence set" },
	{ "a FETCH 1", "a", "BAD FETCH: Missing fetch items" },
	{ "a FETCH 1 FOO", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 ()", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 (FLAGS ALL)", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 BODY[HEADER", "a", "BAD FETCH: Missing ']' in section" },
	{ "a FETCH 1 BODY[FOO]", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 BODY[0]", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 BODY[MIME]", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 BODY[HEADER.FIELDS ()]", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 BODY[HEADER.FIELDS (a:b)]", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 BODY[HEADER.FIELDS ({3}\r\nA B)]", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 BODY[HEADER.FIELDS ({3}\r\nabcd)]", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 BODY[HEADER.FIELDS (To{2}\r\nCc)]", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 BODY[HEADER.FIELDS (\"To\"Cc)]", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 BODY[HEADER.FIELDS (~{3}\r\nabc)]", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 BODY[HEADER.FIELDS ({0}\r\n)]", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 BODY[HEADER.FIELDS ({9}\r\nabc)]", "a", "BAD FETCH: Literal cut short" },
	{ "a FETCH 1 BODY[HEADER.FIELDS ({3x}\r\nabc)]", "a", "BAD FETCH: Bad literal" },
	{ "a FETCH 1 BODY[]<1.0>", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 BODY[]<1>", "a", "BAD FETCH: Invalid fetch item" },
	/* BINARY takes BODY's section specs, and BODY's limits with them. */
	{ "a FETCH 1 BINARY[MIME]", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 BINARY.PEEK[1.HEADER.FIELDS]", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 BINARY[HEADER.FIELDS ()]", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 BINARY[1.TEXTS]", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 BINARY.SIZE[TEXT]<0.1>", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 BINARY.SIZE[1]<0.1>", "a", "BAD FETCH: Invalid fetch item" },
	{ "a FETCH 1 FLAGS (FOO)", "a", "BAD FETCH: Unknown fetch modifier" },
	{ "a FETCH 1 FLAGS (CHANGEDSINCE)", "a", "BAD FETCH: Invalid CHANGEDSINCE" },
	{ "a FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)", "a",
	  "BAD FETCH: VANISHED needs UID FETCH and CHANGEDSINCE" },
	{ "a UID FETCH 1 FLAGS (VANISHED)", "a",
	  "BAD UID FETCH: VANISHED needs UID FETCH and CHANGEDSINCE" },
	{ "a STORE 1 FLAGS", "a", "BAD STORE: Missing flags" },
	{ "a STORE 1 FLAG (\\Seen)", "a", "BAD STORE: Invalid STORE action" },
	{ "a STORE 1 +FLAGS (\\Seen) x", "a", "BAD STORE: Too many arguments" },
	{ "a STORE 1 +FLAGS (\\Recent)", "a", "BAD STORE: \\Recent cannot be set" },
	{ "a STORE 1 +FLAGS (\"x\")", "a", "BAD STORE: Invalid flag" },
	{ "a STORE 1 +FLAGS (a]b)", "a", "BAD STORE: Invalid flag" },
	{ "a STORE 1 (UNCHANGEDSINCE) FLAGS ()", "a", "BAD STORE: Invalid STORE modifier" },
	{ "a COPY 1", "a", "BAD COPY: Missing argument" },
	{ "a EXPUNGE 1", "a", "BAD EXPUNGE: Too many arguments" },
	{ "a UID EXPUNGE", "a", "BAD UID EXPUNGE: Missing sequence set" },
	{ "a SEARCH", "a", "BAD SEARCH: Missing search key" },
	{ "a SEARCH FOO", "a", "BAD SEARCH: Unknown search key" },
	{ "a SEARCH NOT", "a", "BAD SEARCH: Missing search key" },
	{ "a SEARCH OR SEEN", "a", "BAD SEARCH: Missing search key" },
	{ "a SEARCH ()", "a", "BAD SEARCH: Missing search key" },
	{ "a SEARCH FROM", "a", "BAD SEARCH: Missing search string" },
	{ "a SEARCH HEADER From", "a", "BAD SEARCH: Missing search string" },
	{ "a SEARCH SINCE 1-Foo-2020", "a", "BAD SEARCH: Invalid search date" },
	{ "a SEARCH SINCE 30-Feb-2020", "a", "BAD SEARCH: Invalid search date" },
	{ "a SEARCH LARGER x", "a", "BAD SEARCH: Invalid number in search key" },
	{ "a SEARCH OLDER 0", "a", "BAD SEARCH: Invalid number in search key" },
	{ "a SEARCH KEYWORD \\Seen", "a", "BAD SEARCH: Invalid keyword" },
	{ "a SEARCH UID 0", "a", "BAD SEARCH: Invalid sequence set" },
	{ "a SEARCH MODSEQ x", "a", "BAD SEARCH: Invalid MODSEQ value" },
	{ "a SEARCH MODSEQ \"/flags/\\\\draft\" none 5", "a", "BAD SEARCH: Invalid MODSEQ entry" },
	{ "a SEARCH CHARSET", "a", "BAD SEARCH: Missing charset" },
	{ "a SEARCH EMAILID a.b", "a", "BAD SEARCH: Invalid object id" },
	{ "a SEARCH THREADID \"\"", "a", "BAD SEARCH: Invalid object id" },
	{ "a SEARCH RETURN (FOO) ALL", "a", "BAD SEARCH: Unknown RETURN option" },
	{ "a SEARCH RETURN ALL", "a", "BAD SEARCH: Invalid RETURN options" },
	{ "a SORT DATE UTF-8 ALL", "a", "BAD SORT: Invalid sort criteria" },
	{ "a SORT RETURN (SAVE) (DATE) UTF-8 ALL", "a", "BAD SORT: Unknown RETURN option" },
	{ "a SORT RETURN (MIN)", "a", "BAD SORT: Invalid sort criteria" },
	{ "a SORT RETURN (MIN) UTF-8 ALL", "a", "BAD SORT: Invalid sort criteria" },
	{ "a SEARCH RETURN (PARTIAL) ALL", "a", "BAD SEARCH: Invalid PARTIAL range" },
	{ "a SEARCH RETURN (PARTIAL 0:10) ALL", "a", "BAD SEARCH: Invalid PARTIAL range" },
	{ "a SEARCH RETURN (PARTIAL 1:-10) ALL", "a", "BAD SEARCH: Invalid PARTIAL range" },
	{ "a SEARCH RETURN (PARTIAL 1:4294967296) ALL", "a", "BAD SEARCH: Invalid PARTIAL range" },
	{ "a SEARCH RETURN (PARTIAL 1:*) ALL", "a", "BAD SEARCH: Invalid PARTIAL range" },
	{ "a SEARCH RETURN (PARTIAL 5) ALL", "a", "BAD SEARCH: Invalid PARTIAL range" },
	{ "a SEARCH RETURN (PARTIAL 1:5 ALL) ALL", "a", "BAD SEARCH: PARTIAL and ALL cannot be combined" },
	{ "a SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL", "a",
	  "BAD SEARCH: RETURN option given twice" },
	{ "a SORT RETURN (PARTIAL 1:1 PARTIAL 2:2) (DATE) UTF-8 ALL", "a",
	  "BAD SORT: RETURN option given twice" },
	{ "a SEARCH TEXT \"caf\xe9\"", "a", "BAD SEARCH: Search string is not valid UTF-8" },
	{ "a SEARCH CHARSET UTF-8 HEADER X \"\xed\xa0\x80\"", "a",
	  "BAD SEARCH: Search string is not valid UTF-8" },
	{ "a SEARCH CHARSET US-ASCII SUBJECT \"\xc0\xaf\"", "a",
	  "BAD SEARCH: Search string is not valid UTF-8" },
	{ "a THREAD REFERENCES UTF-8 FROM \"\xc3\"", "a",
	  "BAD THREAD: Search string is not valid UTF-8" },
	{ "a SORT (REVERSE) UTF-8 ALL", "a", "BAD SORT: REVERSE without a sort key" },
	{ "a SORT (DATE REVERSE) UTF-8 ALL", "a", "BAD SORT: REVERSE without a sort key" },
	{ "a SORT (DATE) ALL", "a", "BAD SORT: Missing search key" },
	{ "a THREAD FOO UTF-8 ALL", "a", "BAD THREAD: Unknown thread algorithm" },
	{ "a COMPRESS GZIP", "a", "BAD COMPRESS: Unknown compression mechanism" },
	{ "a SETQUOTA \"\" (STORAGE)", "a", "BAD SETQUOTA: Invalid quota resources" },
	{ "a SETQUOTA \"\" (STORAGE x)", "a", "BAD SETQUOTA: Invalid quota resources" },
	{ "a NOOP{3}\r\nabc", "a", "BAD Unknown command" },
	{ "a LOGIN a{1}\r\nb c", "a", "BAD LOGIN: Missing space between arguments" },
};

struct nul_case {
	const char *line;
	size_t len;
	bool utf8;
	const char *error;
};

#define NUL_CASE(line, utf8, error) { line, sizeof(line) - 1, utf8, error }

static const struct nul_case nul_cases[] = {
	NUL_CASE("a LOGIN alice {3}\r\na\0b", false, "BAD LOGIN: NUL in string"),
	NUL_CASE("a LOGIN \"al\0ce\" x", false, "BAD LOGIN: NUL in string"),
	NUL_CASE("a SEARCH SUBJECT {3}\r\na\0b", false, "BAD SEARCH: NUL in string"),
	NUL_CASE("a SEARCH SUBJECT \"a\0b\"", false, "BAD SEARCH: NUL in string"),
	NUL_CASE("a SEARCH HEADER {3}\r\nX\0Y z", false, "BAD SEARCH: NUL in string"),
	NUL_CASE("a SEARCH HEADER X-Y {1}\r\n\0", false, "BAD SEARCH: NUL in string"),
	NUL_CASE("a SEARCH OR BODY x TEXT {2}\r\n\0\0", false, "BAD SEARCH: NUL in string"),
	NUL_CASE("a SEARCH CHARSET {6}\r\nUTF-8\0 ALL", false, "BAD SEARCH: NUL in string"),
	NUL_CASE("a SEARCH MODSEQ {12}\r\n/flags/\\Se\0n all 5", false,
		 "BAD SEARCH: NUL in string"),
	NUL_CASE("a UID SORT (DATE) UTF-8 FROM {2}\r\na\0", false, "BAD UID SORT: NUL in string"),
	NUL_CASE("a SELECT {3}\r\nIN\0", false, "BAD SELECT: NUL in string"),
	NUL_CASE("a CREATE \"a\0\"", true, "BAD CREATE: NUL in string"),
	NUL_CASE("a APPEND {3}\r\nIN\0 {1}\r\nx", false, "BAD APPEND: NUL in string"),
	NUL_CASE("a APPEND INBOX (\\Seen $a\0) {1}\r\nx", false, "BAD APPEND: Invalid character"),
	NUL_CASE("a ID ({4}\r\nna\0e \"x\")", false, "BAD ID: Invalid ID parameters"),
	NUL_CASE("a FETCH 1 BODY[HEADER.FIELDS ({3}\r\nA\0B)]", false,
		 "BAD FETCH: Invalid fetch item"),
};

static void
test_parse_bad(void)
{
	struct imap_cmd cmd;

	test_begin("imap parse: bad syntax gets BAD");
	imap_cmd_init(&cmd);
	for (size_t i = 0; i < N_ELEMENTS(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		char *copy;
		int ret = parse_text(&cmd, c->line, strlen(c->line), false, &copy);
		if (ret != -1 || strcmp(cmd.error, c->error) != 0 || strcmp(cmd.tag, c->tag) != 0) {
			printf("  case %zu (%s): ret %d tag %s error \"%s\"\n", i, c->line, ret,
			       cmd.tag, cmd.error);
			test_assert(!"bad case");
		}
		free(copy);
	}
	/* A NUL is possible only inside a literal, and no string may hold
	 * one: only a literal8 (RFC 9051 9 CHAR8, RFC 3516). */
	for (size_t i = 0; i < N_ELEMENTS(nul_cases); i++) {
		const struct nul_case *c = &nul_cases[i];
		char *copy;
		int ret = parse_text(&cmd, c->line, c->len, c->utf8, &copy);
		if (ret != -1 || strcmp(cmd.error, c->error) != 0) {
			printf("  NUL case %zu: ret %d error \"%s\"\n", i, ret, cmd.error);
			test_assert(!"NUL case");
		}
		free(copy);
	}
	imap_cmd_clear(&cmd);
	test_end();
}

/* Parses one line that must be valid; the copy lives until the next call. */
static struct imap_cmd *
parse_ok(const char *line, bool utf8)
{
	static struct imap_cmd cmd;
	static char *copy;
	static bool init;

	if (!init) {
		imap_cmd_init(&cmd);
		init = true;
	}
	free(copy);
	copy = NULL;
	if (parse_text(&cmd, line, strlen(line), utf8, &copy) != 1) {
		printf("  %s: %s\n", line, cmd.error);
		test_assert(!"parse failed");
	}
	return &cmd;
}

static void
test_parse_values(void)
{
	struct imap_cmd *cmd;

	test_begin("imap parse: command values");
	cmd = parse_ok("a LOGIN {5}\r\nalice \"se\\\\c\\\"ret\"", false);
	test_assert_strcmp(cmd->user, "alice");
	test_assert_strcmp(cmd->pass, "se\\c\"ret");

	cmd = parse_ok("a AUTHENTICATE plain AGFsaWNlAHNlY3JldA==", false);
	test_assert_strcmp(cmd->mech, "PLAIN");
	test_assert_strcmp(cmd->initial, "AGFsaWNlAHNlY3JldA==");

	cmd = parse_ok("a ENABLE CONDSTORE utf8=accept", false);
	test_assert(cmd->strs.count == 2);
	test_assert_strcmp(cmd->strs.v[1], "utf8=accept");

	cmd = parse_ok("a ID (\"name\" \"iPhone Mail\" \"os\" NIL)", false);
	test_assert(cmd->strs.count == 4 && cmd->strs.v[3] == NULL);
	test_assert_strcmp(cmd->strs.v[1], "iPhone Mail");

	cmd = parse_ok("a SELECT inbox (CONDSTORE QRESYNC (67890007 20050715194045000 "
		       "41,43:211 (1:10 2:11)))", false);
	test_assert_strcmp(cmd->mailbox, "INBOX");
	test_assert(cmd->select.condstore && cmd->select.qresync);
	test_assert(cmd->select.uidvalidity == 67890007u);
	test_assert(cmd->select.modseq == 20050715194045000ull);
	test_assert(cmd->select.known_uids_set && cmd->select.known_uids.count == 2);
	test_assert(cmd->select.seq_match_set && cmd->select.seq_match_uids.ranges[0].hi == 11);

	cmd = parse_ok("a CREATE Drafts2 (USE (\\Drafts \\Sent))", false);
	test_assert(cmd->strs.count == 2);
	test_assert_strcmp(cmd->strs.v[0], "\\Drafts");

	cmd = parse_ok("a RENAME \"A\" &AMQ-pfel", false);
	test_assert_strcmp(cmd->mailbox, "A");
	test_assert_strcmp(cmd->mailbox2, "\xc3\x84pfel");

	cmd = parse_ok("a LIST (SUBSCRIBED) \"\" (\"%\" INBOX/*) RETURN (CHILDREN STATUS "
		       "(MESSAGES UNSEEN))", false);
	test_assert(cmd->list.extended);
	test_assert(cmd->list.select == IMAP_LIST_SEL_SUBSCRIBED);
	test_assert(cmd->list.ret == (IMAP_LIST_RET_CHILDREN | IMAP_LIST_RET_STATUS));
	test_assert(cmd->list.status.mask == (IMAP_STATUS_MESSAGES | IMAP_STATUS_UNSEEN));
	test_assert(cmd->list.status.count == 2 && cmd->list.status.order[1] == IMAP_STATUS_UNSEEN);
	test_assert(cmd->list.npatterns == 2);
	test_assert_strcmp(cmd->list.patterns[1], "INBOX/*");
	cmd = parse_ok("a LIST \"\" *", false);
	test_assert(!cmd->list.extended && cmd->list.npatterns == 1);

	cmd = parse_ok("a STATUS Archive (SIZE RECENT APPENDLIMIT)", false);
	test_assert(cmd->status.mask ==
		    (IMAP_STATUS_SIZE | IMAP_STATUS_RECENT | IMAP_STATUS_APPENDLIMIT));
	/* In the order asked, each once. */
	test_assert(cmd->status.count == 3 && cmd->status.order[0] == IMAP_STATUS_SIZE &&
		    cmd->status.order[1] == IMAP_STATUS_RECENT &&
		    cmd->status.order[2] == IMAP_STATUS_APPENDLIMIT);
	cmd = parse_ok("a STATUS INBOX (unseen MESSAGES UNSEEN uidnext messages)", false);
	test_assert(cmd->status.count == 3 && cmd->status.order[0] == IMAP_STATUS_UNSEEN &&
		    cmd->status.order[1] == IMAP_STATUS_MESSAGES &&
		    cmd->status.order[2] == IMAP_STATUS_UIDNEXT);

	cmd = parse_ok("a APPEND Sent (\\seen $Forwarded) \"17-Jul-1996 02:44:25 -0700\" {5}\r\n"
		       "hello (\\Draft) ~{2}\r\nhi", false);
	test_assert(cmd->append.count == 2);
	test_assert(cmd->append.msgs[0].flags.count == 2);
	test_assert_strcmp(cmd->append.msgs[0].flags.flags[0], "\\Seen");
	test_assert(cmd->append.msgs[0].has_date && cmd->append.msgs[0].zone == -420);
	test_assert(cmd->append.msgs[0].date == 837596665);
	test_assert(cmd->append.msgs[0].len == 5 && memcmp(cmd->append.msgs[0].data, "hello", 5) == 0);
	test_assert(cmd->append.msgs[1].binary && cmd->append.msgs[1].len == 2);
	test_assert(!cmd->append.msgs[0].binary && !cmd->append.msgs[1].utf8);
	/* RFC 6855's form, once UTF8=ACCEPT is enabled. */
	cmd = parse_ok("a APPEND INBOX UTF8 (~{2}\r\nhi) {1}\r\nx", true);
	test_assert(cmd->append.count == 2);
	test_assert(cmd->append.msgs[0].binary && cmd->append.msgs[0].utf8);
	test_assert(cmd->append.msgs[0].len == 2 && memcmp(cmd->append.msgs[0].data, "hi", 2) == 0);
	test_assert(!cmd->append.msgs[1].utf8);

	cmd = parse_ok("a UID STORE 1:* (UNCHANGEDSINCE 320162338) -FLAGS.SILENT (\\Deleted foo)",
		       false);
	test_assert(cmd->uid && cmd->store.op == IMAP_STORE_REMOVE && cmd->store.silent);
	test_assert(cmd->store.unchangedsince_set && cmd->store.unchangedsince == 320162338);
	test_assert(cmd->store.flags.count == 2);
	test_assert(cmd->set.count == 1 && cmd->set.ranges[0].hi == IMAP_SEQ_STAR);
	cmd = parse_ok("a STORE 2 FLAGS \\Seen \\Answered", false);
	test_assert(cmd->store.op == IMAP_STORE_SET && cmd->store.flags.count == 2);

	cmd = parse_ok("a UID MOVE 4:2,7 \"Deleted Items\"", false);
	test_assert_strcmp(cmd->mailbox, "Deleted Items");
	test_assert(cmd->set.ranges[0].lo == 2 && cmd->set.ranges[0].hi == 4);

	cmd = parse_ok("a SETQUOTA \"\" (STORAGE 512 MESSAGE 1000)", false);
	test_assert(cmd->nquota == 2 && cmd->quota[1].limit == 1000);
	test_assert_strcmp(cmd->quota[1].name, "MESSAGE");
	test_end();
}

static void
test_parse_fetch(void)
{
	struct imap_cmd *cmd;
	const struct imap_fetch_att *att;

	test_begin("imap parse: fetch items");
	cmd = parse_ok("a FETCH 1 ALL", false);
	test_assert(cmd->fetch.count == 4 && cmd->fetch.atts[3].type == IMAP_FETCH_ENVELOPE);
	cmd = parse_ok("a FETCH 1 FAST", false);
	test_assert(cmd->fetch.count == 3);
	cmd = parse_ok("a FETCH 1 FULL", false);
	test_assert(cmd->fetch.count == 5 && cmd->fetch.atts[4].type == IMAP_FETCH_BODY);
	/* A macro's items carry nothing but their names. */
	for (size_t i = 0; i < cmd->fetch.count; i++) {
		att = &cmd->fetch.atts[i];
		test_assert(att->section.nfields == 0 && att->section.nparts == 0);
		test_assert(!att->peek && !att->partial && !att->lazy);
	}

	cmd = parse_ok("a FETCH 1:* (body.peek[1.2.HEADER.FIELDS.NOT (From \"X-A\")]<10.20> "
		       "BODY[] BODY[3.MIME] BINARY.PEEK[1]<0.5> BINARY.SIZE[] BODYSTRUCTURE "
		       "RFC822.SIZE PREVIEW (LAZY) UID)", false);
	test_assert(cmd->fetch.count == 9);
	att = &cmd->fetch.atts[0];
	test_assert(att->type == IMAP_FETCH_BODY_SECTION && att->peek && att->partial);
	test_assert(att->offset == 10 && att->count == 20);
	test_assert(att->section.nparts == 2 && att->section.parts[1] == 2);
	test_assert(att->section.text == IMAP_SECTION_HEADER_FIELDS_NOT);
	test_assert(att->section.nfields == 2);
	test_assert_strcmp(att->section.fields[1], "X-A");
	test_assert_strcmp(att->reply_name, "BODY[1.2.HEADER.FIELDS.NOT (From X-A)]<10>");
	test_assert_strcmp(cmd->fetch.atts[1].reply_name, "BODY[]");
	test_assert(!cmd->fetch.atts[1].peek);
	test_assert_strcmp(cmd->fetch.atts[2].reply_name, "BODY[3.MIME]");
	test_assert(cmd->fetch.atts[3].type == IMAP_FETCH_BINARY && cmd->fetch.atts[3].peek);
	test_assert_strcmp(cmd->fetch.atts[3].reply_name, "BINARY[1]<0>");
	test_assert_strcmp(cmd->fetch.atts[4].reply_name, "BINARY.SIZE[]");
	test_assert(cmd->fetch.atts[7].type == IMAP_FETCH_PREVIEW && cmd->fetch.atts[7].lazy);
	test_assert(cmd->fetch.atts[8].type == IMAP_FETCH_UID);

	/* BINARY[...] with every section spec BODY[...] takes. */
	cmd = parse_ok("a FETCH 1 (BINARY[TEXT] binary.peek[2.header.fields.not (From \"X-A\")]<5.10> "
		       "BINARY.SIZE[1.MIME] BINARY.PEEK[HEADER] BINARY.SIZE[2.TEXT])", false);
	test_assert(cmd->fetch.count == 5);
	att = &cmd->fetch.atts[0];
	test_assert(att->type == IMAP_FETCH_BINARY && !att->peek);
	test_assert(att->section.nparts == 0 && att->section.text == IMAP_SECTION_TEXT);
	test_assert_strcmp(att->reply_name, "BINARY[TEXT]");
	att = &cmd->fetch.atts[1];
	test_assert(att->type == IMAP_FETCH_BINARY && att->peek && att->partial);
	test_assert(att->offset == 5 && att->count == 10 && att->section.nfields == 2);
	test_assert(att->section.text == IMAP_SECTION_HEADER_FIELDS_NOT);
	test_assert_strcmp(att->reply_name, "BINARY[2.HEADER.FIELDS.NOT (From X-A)]<5>");
	att = &cmd->fetch.atts[2];
	test_assert(att->type == IMAP_FETCH_BINARY_SIZE && att->section.text == IMAP_SECTION_MIME);
	test_assert_strcmp(att->reply_name, "BINARY.SIZE[1.MIME]");
	test_assert_strcmp(cmd->fetch.atts[3].reply_name, "BINARY[HEADER]");
	test_assert(cmd->fetch.atts[3].peek);
	test_assert_strcmp(cmd->fetch.atts[4].reply_name, "BINARY.SIZE[2.TEXT]");

	cmd = parse_ok("a UID FETCH 300:500 (FLAGS) (VANISHED CHANGEDSINCE 12345)", false);
	test_assert(cmd->fetch.vanished && cmd->fetch.changedsince == 12345);
	cmd = parse_ok("a FETCH 1 (FLAGS) (CHANGEDSINCE 0)", false);
	test_assert(cmd->fetch.changedsince_set && cmd->fetch.changedsince == 0);
	cmd = parse_ok("a FETCH 1 BODY[HEADER.FIELDS (\"A]B\")]", false);
	test_assert_strcmp(cmd->fetch.atts[0].reply_name, "BODY[HEADER.FIELDS (\"A]B\")]");
	/* header-fld-name is an astring: literals too, {n} and {n+}. */
	cmd = parse_ok("a FETCH 1 BODY.PEEK[HEADER.FIELDS ({7}\r\nSubject)]", false);
	att = &cmd->fetch.atts[0];
	test_assert(att->peek && att->section.nfields == 1);
	test_assert_strcmp(att->section.fields[0], "Subject");
	test_assert_strcmp(att->reply_name, "BODY[HEADER.FIELDS (Subject)]");
	cmd = parse_ok("a FETCH 1 (BODY[1.HEADER.FIELDS.NOT (From {2+}\r\nTo \"Cc\" {3}\r\nA]B)]<0.9> "
		       "FLAGS)", false);
	att = &cmd->fetch.atts[0];
	test_assert(cmd->fetch.count == 2 && att->section.nfields == 4 && att->partial);
	test_assert_strcmp(att->section.fields[1], "To");
	test_assert_strcmp(att->section.fields[3], "A]B");
	test_assert_strcmp(att->reply_name, "BODY[1.HEADER.FIELDS.NOT (From To Cc \"A]B\")]<0>");
	cmd = parse_ok("a FETCH 1 rfc822.header", false);
	test_assert_strcmp(cmd->fetch.atts[0].reply_name, "RFC822.HEADER");
	test_end();
}

/* Renders a key tree compactly, to compare with the expected shape. */
static void
search_render(const struct imap_search_key *k, struct buf *out)
{
	static const char *const names[] = {
		[IMAP_SK_ALL] = "ALL", [IMAP_SK_AND] = "AND", [IMAP_SK_OR] = "OR",
		[IMAP_SK_NOT] = "NOT", [IMAP_SK_SEQSET] = "SET", [IMAP_SK_UID] = "UID",
		[IMAP_SK_SEEN] = "SEEN", [IMAP_SK_UNSEEN] = "UNSEEN", [IMAP_SK_FROM] = "FROM",
		[IMAP_SK_HEADER] = "HEADER", [IMAP_SK_SINCE] = "SINCE", [IMAP_SK_LARGER] = "LARGER",
		[IMAP_SK_MODSEQ] = "MODSEQ", [IMAP_SK_KEYWORD] = "KEYWORD",
		[IMAP_SK_DELETED] = "DELETED", [IMAP_SK_FLAGGED] = "FLAGGED",
		[IMAP_SK_TEXT] = "TEXT", [IMAP_SK_EMAILID] = "EMAILID",
		[IMAP_SK_SAVEDBEFORE] = "SAVEDBEFORE", [IMAP_SK_YOUNGER] = "YOUNGER",
	};
	for (; k != NULL; k = k->next) {
		const char *n = (size_t)k->type < N_ELEMENTS(names) && names[k->type] ? names[k->type]
											: "?";
		(void)!buf_printf(out, "%s", n);
		if (k->str != NULL)
			(void)!buf_printf(out, ":%s", k->str);
		if (k->str2 != NULL)
			(void)!buf_printf(out, "=%s", k->str2);
		if (k->type == IMAP_SK_SINCE || k->type == IMAP_SK_SAVEDBEFORE)
			(void)!buf_printf(out, ":%04d%02d%02d", k->date.year, k->date.mon, k->date.day);
		if (k->type == IMAP_SK_LARGER || k->type == IMAP_SK_MODSEQ || k->type == IMAP_SK_YOUNGER)
			(void)!buf_printf(out, ":%llu", (unsigned long long)k->number);
		if (k->child != NULL) {
			(void)!buf_append(out, "(", 1);
			search_render(k->child, out);
			(void)!buf_append(out, ")", 1);
		}
		if (k->next != NULL)
			(void)!buf_append(out, " ", 1);
	}
}

struct search_case {
	const char *line;
	const char *want;
};

static const struct search_case search_cases[] = {
	{ "a SEARCH ALL", "ALL" },
	{ "a SEARCH unseen from alice", "UNSEEN FROM:alice" },
	{ "a SEARCH OR SEEN NOT FLAGGED DELETED", "OR(SEEN NOT(FLAGGED)) DELETED" },
	{ "a SEARCH (SEEN FLAGGED) NOT (DELETED)", "AND(SEEN FLAGGED) NOT(AND(DELETED))" },
	{ "a SEARCH OR (FROM a TO b) OR SEEN UNSEEN", "OR(AND(FROM:a ?:b) OR(SEEN UNSEEN))" },
	{ "a SEARCH HEADER Message-ID \"<x@y>\"", "HEADER:Message-ID=<x@y>" },
	{ "a SEARCH SINCE 1-Feb-1994 LARGER 1000", "SINCE:19940201 LARGER:1000" },
	{ "a SEARCH SINCE \"01-feb-1994\"", "SINCE:19940201" },
	{ "a SEARCH 1:3,5 UID 7:*", "SET UID" },
	{ "a SEARCH MODSEQ 620162338", "MODSEQ:620162338" },
	{ "a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338",
	  "MODSEQ:/flags/\\draft=all:620162338" },
	{ "a SEARCH KEYWORD $Forwarded", "KEYWORD:$Forwarded" },
	{ "a SEARCH CHARSET UTF-8 TEXT {4}\r\n\xc3\xa4\xc3\xb6", "TEXT:\xc3\xa4\xc3\xb6" },
	{ "a SEARCH EMAILID M6d99ac3275bb4e YOUNGER 3600 SAVEDBEFORE 1-Jan-2020",
	  "EMAILID:M6d99ac3275bb4e YOUNGER:3600 SAVEDBEFORE:20200101" },
};

static void
test_parse_search(void)
{
	struct imap_cmd *cmd;
	struct buf out;
	char line[2048];

	test_begin("imap parse: search keys");
	buf_init(&out, 4096);
	for (size_t i = 0; i < N_ELEMENTS(search_cases); i++) {
		buf_reset(&out);
		cmd = parse_ok(search_cases[i].line, false);
		search_render(cmd->search.keys, &out);
		if (out.data == NULL || strcmp(out.data, search_cases[i].want) != 0) {
			printf("  case %zu: got \"%s\"\n", i, out.data != NULL ? out.data : "");
			test_assert(!"search tree");
		}
	}
	cmd = parse_ok("a UID SEARCH RETURN (MIN COUNT SAVE) CHARSET utf-8 ALL", false);
	test_assert(cmd->search.esearch);
	test_assert(cmd->search.ret == (IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_COUNT |
					IMAP_SEARCH_RET_SAVE));
	test_assert_strcmp(cmd->search.charset, "utf-8");
	cmd = parse_ok("a SEARCH RETURN () ALL", false);
	test_assert(cmd->search.ret == IMAP_SEARCH_RET_ALL);
	cmd = parse_ok("a SEARCH UID $", false);
	test_assert(cmd->search.uses_saved && cmd->search.keys->set.saved);
	cmd = parse_ok("a SORT (REVERSE ARRIVAL subject) US-ASCII NOT DELETED", false);
	test_assert(cmd->search.nsort == 2 && cmd->search.sort[0].reverse);
	test_assert(cmd->search.sort[1].key == IMAP_SORT_SUBJECT && !cmd->search.sort[1].reverse);
	cmd = parse_ok("a THREAD ORDEREDSUBJECT UTF-8 ALL", false);
	test_assert(cmd->search.thread == IMAP_THREAD_ORDEREDSUBJECT);
	/* ESORT (RFC 5267) and PARTIAL (RFC 9394). */
	cmd = parse_ok("a UID SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL", false);
	test_assert(cmd->search.esearch && cmd->search.nsort == 1);
	test_assert(cmd->search.ret == (IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX |
					IMAP_SEARCH_RET_COUNT | IMAP_SEARCH_RET_ALL));
	cmd = parse_ok("a SORT RETURN () (SUBJECT) UTF-8 ALL", false);
	test_assert(cmd->search.esearch && cmd->search.ret == IMAP_SEARCH_RET_ALL);
	cmd = parse_ok("a SEARCH RETURN (PARTIAL 1:100 COUNT) ALL", false);
	test_assert(cmd->search.ret == (IMAP_SEARCH_RET_PARTIAL | IMAP_SEARCH_RET_COUNT));
	test_assert(!cmd->search.partial_last && cmd->search.partial_lo == 1 &&
		    cmd->search.partial_hi == 100);
	cmd = parse_ok("a UID SORT RETURN (PARTIAL -50:-1) (ARRIVAL) UTF-8 ALL", false);
	test_assert(cmd->search.partial_last && cmd->search.partial_lo == 1 &&
		    cmd->search.partial_hi == 50);
	cmd = parse_ok("a SEARCH RETURN (PARTIAL 4294967295:7) ALL", false);
	test_assert(cmd->search.partial_lo == 7 && cmd->search.partial_hi == UINT32_MAX);
	test_assert_strcmp(cmd->search.partial_range, "4294967295:7");

	/* Depth and count are bounded. */
	strcpy(line, "a SEARCH");
	for (int i = 0; i < IMAP_SEARCH_DEPTH_MAX + 2; i++)
		strcat(line, " NOT");
	strcat(line, " SEEN");
	struct imap_cmd bad;
	imap_cmd_init(&bad);
	struct imap_parse_opts opts = { 0 };
	test_assert(imap_cmd_parse(&bad, line, strlen(line), &opts) < 0);
	test_assert_strcmp(bad.error, "BAD SEARCH: Search keys nested too deeply");
	{
		size_t n = IMAP_SEARCH_KEYS_MAX + 1;
		char *many = malloc(16 + n * 5);
		strcpy(many, "a SEARCH");
		for (size_t i = 0; i < n; i++)
			strcat(many, " ALL");
		test_assert(imap_cmd_parse(&bad, many, strlen(many), &opts) < 0);
		test_assert_strcmp(bad.error, "BAD SEARCH: Too many search keys");
		free(many);
	}
	strcpy(line, "a SEARCH ");
	for (int i = 0; i < IMAP_LIST_DEPTH_MAX + 1; i++)
		strcat(line, "(");
	test_assert(imap_cmd_parse(&bad, line, strlen(line), &opts) < 0);
	test_assert_strcmp(bad.error, "BAD SEARCH: Lists nested too deeply");
	imap_cmd_clear(&bad);
	buf_free(&out);
	test_end();
}

/* ---- values ---- */

static void
test_seqset(void)
{
	struct imap_arena a;
	struct imap_seqset set;
	const char *error;
	struct buf out;
	const uint32_t uids[] = { 1, 2, 3, 5, 7, 8, 4, 4294967294u, 4294967295u };

	test_begin("imap values: sequence sets");
	imap_arena_init(&a, 1 << 16);
	test_assert(imap_seqset_parse("1,3:5,*:8", 9, &a, &set, &error) == 1);
	test_assert(set.count == 3);
	test_assert(set.ranges[2].lo == 8 && set.ranges[2].hi == IMAP_SEQ_STAR);
	test_assert(imap_seqset_contains(&set, 1, 10));
	test_assert(!imap_seqset_contains(&set, 2, 10));
	test_assert(imap_seqset_contains(&set, 9, 10));
	test_assert(!imap_seqset_contains(&set, 11, 10));
	/* "*:8" when the largest is 6 means 6:8. */
	test_assert(imap_seqset_contains(&set, 6, 6) && !imap_seqset_contains(&set, 2, 6));
	test_assert(imap_seqset_parse("$", 1, &a, &set, &error) == 1 && set.saved);
	test_assert(imap_seqset_parse("$,1", 3, &a, &set, &error) == -1);
	test_assert(imap_seqset_parse("", 0, &a, &set, &error) == -1);
	test_assert(imap_seqset_parse("1:2:3", 5, &a, &set, &error) == -1);
	test_assert(imap_seqset_parse("4294967296", 10, &a, &set, &error) == -1);
	test_assert(imap_seqset_parse("4294967294", 10, &a, &set, &error) == 1);
	/* The largest nz-number is a number, not "*": "1:4294967295" holds
	 * every UID whatever the largest in use, and 4294967295:4294967295
	 * only UID 4294967295. */
	test_assert(imap_seqset_parse("1:4294967295", 12, &a, &set, &error) == 1);
	test_assert(imap_seqset_contains(&set, 7, 3) && imap_seqset_contains(&set, 3, 3));
	test_assert(imap_seqset_parse("4294967295", 10, &a, &set, &error) == 1);
	test_assert(!imap_seqset_contains(&set, 3, 3));
	test_assert(imap_seqset_contains(&set, 4294967295u, 4294967295u));
	test_assert(imap_seqset_parse("*", 1, &a, &set, &error) == 1);
	test_assert(imap_seqset_contains(&set, 3, 3) && !imap_seqset_contains(&set, 4294967295u, 3));
	/* Sequence numbers beyond the messages (BAD, RFC 9051 seq-number). */
	test_assert(imap_seqset_within(&set, 3) && imap_seqset_within(&set, 0));
	test_assert(imap_seqset_parse("1,3:5,*:8", 9, &a, &set, &error) == 1);
	test_assert(imap_seqset_within(&set, 5) && !imap_seqset_within(&set, 4));
	test_assert(imap_seqset_parse("2:4", 3, &a, &set, &error) == 1);
	test_assert(imap_seqset_within(&set, 4) && !imap_seqset_within(&set, 3));
	test_assert(imap_seqset_parse("$", 1, &a, &set, &error) == 1 && imap_seqset_within(&set, 0));
	imap_arena_free(&a);

	buf_init(&out, 1024);
	test_assert(imap_seqset_write(&out, uids, N_ELEMENTS(uids)) == 1);
	test_assert_strcmp(out.data, "1:3,5,7:8,4,4294967294:4294967295");
	buf_reset(&out);
	test_assert(imap_seqset_write(&out, uids, 0) == 1 && out.len == 0);
	buf_free(&out);
	test_end();
}

static void
test_dates(void)
{
	struct imap_date d, e;
	time_t t;
	int zone;
	char out[IMAP_DATETIME_SIZE];

	test_begin("imap values: dates");
	test_assert(imap_date_parse("1-Feb-1994", 10, &d) == 1 && d.day == 1 && d.mon == 2);
	test_assert(imap_date_parse("29-feb-2000", 11, &d) == 1);
	test_assert(imap_date_parse("29-Feb-1900", 11, &e) == -1);
	test_assert(imap_date_parse("29-Feb-2001", 11, &e) == -1);
	test_assert(imap_date_parse("1-Feb-94", 8, &e) == -1);
	test_assert(imap_date_parse(" 1-Feb-1994", 11, &e) == -1);
	test_assert(imap_date_parse("1-Feb-1994x", 11, &e) == -1);
	test_assert(imap_date_parse("01-Mar-2000", 11, &e) == 1 && imap_date_cmp(&d, &e) < 0);

	test_assert(imap_datetime_parse("17-Jul-1996 02:44:25 -0700", 26, &t, &zone) == 1);
	test_assert(t == 837596665 && zone == -420);
	test_assert(imap_datetime_parse(" 7-Jul-1996 02:44:25 +0000", 26, &t, &zone) == 1);
	test_assert(imap_datetime_parse("7-Jul-1996 02:44:25 +0000", 25, &t, &zone) == 1);
	test_assert(imap_datetime_parse("7-Jul-1996 24:44:25 +0000", 25, &t, &zone) == -1);
	test_assert(imap_datetime_parse("7-Jul-1996 02:44:25 0000", 24, &t, &zone) == -1);
	test_assert(imap_datetime_parse("7-Jul-1996 02:44 +0000", 22, &t, &zone) == -1);

	imap_datetime_format(837596665, -420, out, sizeof(out));
	test_assert_strcmp(out, "17-Jul-1996 02:44:25 -0700");
	imap_datetime_format(0, 330, out, sizeof(out));
	test_assert_strcmp(out, " 1-Jan-1970 05:30:00 +0530");
	test_end();
}

struct mbox_case {
	const char *wire;
	bool utf8;
	const char *name;	/* NULL: refused */
};

static const struct mbox_case mbox_cases[] = {
	{ "INBOX", false, "INBOX" },
	{ "iNbOx", false, "INBOX" },
	{ "INBOX/Sub", false, "INBOX/Sub" },
	{ "inbox/Sub", false, "INBOX/Sub" },		/* INBOX's child, in any case */
	{ "Inboxes", false, "Inboxes" },
	{ "inbox/Sub", true, "INBOX/Sub" },
	{ "&AOQ-rger", false, "\xc3\xa4rger" },
	{ "Tom &- Jerry", false, "Tom & Jerry" },
	{ "Tom & Jerry", false, "Tom & Jerry" },
	{ "R&D", false, NULL },
	{ "&ZeVnLIqe-", false, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
	{ "&2D3eAA-", false, "\xf0\x9f\x98\x80" },	/* a surrogate pair */
	{ "&2D0-", false, NULL },			/* a lone surrogate */
	{ "&AGE-", false, NULL },			/* 'a' encoded */
	{ "&AOQ", false, NULL },			/* not ended */
	{ "&AOQx-", false, NULL },			/* leftover bits */
	{ "\xc3\xa4rger", false, "\xc3\xa4rger" },	/* raw UTF-8, liberal */
	{ "\xc3rger", false, NULL },
	{ "a\x7f" "b", false, NULL },
	/* UTF8=ACCEPT: raw UTF-8; a raw '&' is itself (Thunderbird). */
	{ "R&D", true, "R&D" },
	{ "Tom & Jerry", true, "Tom & Jerry" },
	{ "\xc3\xa4rger", true, "\xc3\xa4rger" },
	{ "&AOQ-rger", true, "&AOQ-rger" },
	{ "&-", true, "&-" },
};

static void
test_mailbox_names(void)
{
	char out[IMAP_MAILBOX_MAX + 1];
	const char *error;
	struct buf b;

	test_begin("imap values: mailbox names");
	for (size_t i = 0; i < N_ELEMENTS(mbox_cases); i++) {
		const struct mbox_case *c = &mbox_cases[i];
		int ret = imap_mailbox_decode(c->wire, strlen(c->wire), c->utf8, out, sizeof(out),
					      &error);
		if (c->name == NULL ? ret != -1 : (ret != 1 || strcmp(out, c->name) != 0)) {
			printf("  case %zu (%s): ret %d \"%s\"\n", i, c->wire, ret, ret == 1 ? out : "");
			test_assert(!"mailbox decode");
		}
	}
	buf_init(&b, 4096);
	const char *names[] = { "INBOX", "Tom & Jerry", "\xc3\xa4rger", "\xe6\x97\xa5\xe6\x9c\xac",
				"\xf0\x9f\x98\x80 x \xc3\xa4", "a\xc3\xa4\xc3\xb6\xc3\xbc" "b" };
	for (size_t i = 0; i < N_ELEMENTS(names); i++) {
		buf_reset(&b);
		test_assert(imap_mailbox_encode(&b, names[i], false) == 1);
		test_assert(imap_mailbox_decode(b.data, b.len, false, out, sizeof(out), &error) == 1);
		test_assert_strcmp(out, names[i]);
		for (size_t k = 0; k < b.len; k++)
			test_assert((unsigned char)b.data[k] >= 0x20 && (unsigned char)b.data[k] < 0x7f);
	}
	buf_reset(&b);
	test_assert(imap_mailbox_encode(&b, "Tom & \xc3\xa4rger", false) == 1);
	test_assert_strcmp(b.data, "Tom &- &AOQ-rger");
	buf_reset(&b);
	test_assert(imap_mailbox_encode(&b, "Tom & \xc3\xa4rger", true) == 1);
	test_assert_strcmp(b.data, "Tom & \xc3\xa4rger");
	buf_free(&b);

	test_assert(imap_list_match("*", "a/b/c", '/'));
	test_assert(imap_list_match("%", "abc", '/'));
	test_assert(!imap_list_match("%", "a/b", '/'));
	test_assert(imap_list_match("a/%", "a/b", '/'));
	test_assert(!imap_list_match("a/%", "a/b/c", '/'));
	test_assert(imap_list_match("a/%/c", "a/b/c", '/'));
	test_assert(imap_list_match("inbox", "INBOX", '/'));
	test_assert(imap_list_match("Inbox/%", "INBOX/x", '/'));
	test_assert(!imap_list_match("Archive", "archive", '/'));
	test_assert(imap_list_match("*b*", "abc", '/'));
	test_assert(!imap_list_match("", "a", '/'));
	test_assert(imap_list_match("", "", '/'));
	test_assert(!imap_list_match("*%*%*%*%*%*%*%*%*x", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", '/'));
	test_assert(imap_list_match("a**b", "a/x/b", '/'));
	test_assert(imap_list_match("a%*b", "a/x/b", '/'));
	test_assert(!imap_list_match("a%%b", "a/x/b", '/'));

	test_assert(imap_flag_kind("\\seen", 5) == IMAP_FLAG_SYSTEM);
	test_assert(imap_flag_kind("\\Recent", 7) == IMAP_FLAG_RECENT);
	test_assert(imap_flag_kind("\\Junk", 5) == IMAP_FLAG_EXTENSION);
	test_assert(imap_flag_kind("$Forwarded", 10) == IMAP_FLAG_KEYWORD);
	test_assert(imap_flag_kind("a*b", 3) == IMAP_FLAG_INVALID);
	test_assert(imap_flag_kind("\\", 1) == IMAP_FLAG_INVALID);
	test_assert(imap_flag_kind("\xc3\xa4", 2) == IMAP_FLAG_INVALID);
	test_assert_strcmp(imap_flag_system_name("\\DRAFT", 6), "\\Draft");
	test_end();
}

static void
test_write(void)
{
	struct buf b, small;
	const char *flags[] = { "\\Seen", "$Forwarded" };

	test_begin("imap write: strings, flags, dates, mailboxes");
	buf_init(&b, 4096);
	test_assert(imap_write_astring(&b, "abc", 3, false) == 1);
	test_assert(imap_write_astring(&b, " ", 0, false) == 1);
	test_assert(imap_write_astring(&b, " a\"b\\", 5, false) == 1);
	test_assert(imap_write_astring(&b, "nil", 3, false) == 1);
	test_assert(imap_write_nstring(&b, NULL, 0, false) == 1);
	test_assert(imap_write_string(&b, "a\r\nb", 4, false) == 1);
	test_assert(imap_write_string(&b, "\xc3\xa4", 2, false) == 1);
	test_assert(imap_write_string(&b, "\xc3\xa4", 2, true) == 1);
	test_assert(imap_write_string(&b, "\xc3", 1, true) == 1);
	test_assert_strcmp(b.data, "abc\"\"\" a\\\"b\\\\\"\"nil\"NIL{4}\r\na\r\nb{2}\r\n\xc3\xa4"
				   "\"\xc3\xa4\"{1}\r\n\xc3");
	buf_reset(&b);
	test_assert(imap_write_flags(&b, flags, 2) == 1);
	test_assert(imap_write_flags(&b, flags, 0) == 1);
	test_assert(imap_write_datetime(&b, 837596665, -420) == 1);
	test_assert_strcmp(b.data, "(\\Seen $Forwarded)()\"17-Jul-1996 02:44:25 -0700\"");
	buf_reset(&b);
	test_assert(imap_write_mailbox(&b, "INBOX", false) == 1);
	test_assert(imap_write_mailbox(&b, "\xc3\xa4rger", false) == 1);
	test_assert(imap_write_mailbox(&b, "\xc3\xa4rger", true) == 1);
	test_assert_strcmp(b.data, "INBOX\"&AOQ-rger\"\"\xc3\xa4rger\"");
	buf_free(&b);

	/* A full buffer is left as it was. */
	buf_init(&small, 8);
	test_assert(buf_append(&small, "ab", 2) == 1);
	test_assert(imap_write_string(&small, "0123456789", 10, false) == -1);
	test_assert(small.len == 2);
	test_assert(imap_write_flags(&small, flags, 2) == -1 && small.len == 2);
	buf_free(&small);
	test_end();
}

/* Commands go through the reader and the parser together, fed whole and
 * byte by byte, as the server will do. */
static void
test_reader_then_parser(void)
{
	const char *in = "A1 LOGIN {5}\r\nalice {6}\r\nsecret\r\n"
			 "A2 APPEND INBOX (\\Seen) {12+}\r\nHello\r\nWorld\r\n"
			 "A3 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER])\r\n";
	const char *want[] = { "LOGIN", "APPEND", "FETCH" };

	test_begin("imap reader and parser together");
	for (int bytewise = 0; bytewise < 2; bytewise++) {
		struct imap_reader r;
		struct imap_cmd cmd;
		struct imap_parse_opts opts = { 0 };
		size_t pos = 0, n = 0, len = strlen(in), conts = 0;

		imap_reader_init(&r, &test_limits);
		imap_cmd_init(&cmd);
		while (pos < len) {
			size_t used, step = bytewise ? 1 : len - pos;
			enum imap_read_event ev = imap_reader_feed(&r, in + pos, step, &used);
			pos += used;
			conts += ev == IMAP_READ_CONTINUE;
			if (ev != IMAP_READ_COMMAND)
				continue;
			size_t clen;
			char *c = imap_reader_command(&r, &clen);
			test_assert(imap_cmd_parse(&cmd, c, clen, &opts) == 1);
			test_assert(n < 3 && strcmp(imap_cmd_str(cmd.name), want[n]) == 0);
			if (n == 1)
				test_assert(cmd.append.count == 1 && cmd.append.msgs[0].len == 12 &&
					    memcmp(cmd.append.msgs[0].data, "Hello\r\nWorld", 12) == 0);
			n++;
		}
		test_assert(n == 3 && conts == 2);
		imap_cmd_clear(&cmd);
		imap_reader_free(&r);
	}
	test_assert(imap_cmd_states(IMAP_CMD_LOGIN) == IMAP_STATE_NOTAUTH);
	test_assert(imap_cmd_states(IMAP_CMD_FETCH) == IMAP_STATE_SELECTED);
	test_assert_strcmp(imap_cmd_str(IMAP_CMD_UNKNOWN), "?");
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_reader_cases,
		test_reader_state,
		test_reader_spool,
		test_parse_good,
		test_parse_bad,
		test_parse_values,
		test_parse_fetch,
		test_parse_search,
		test_seqset,
		test_dates,
		test_mailbox_names,
		test_write,
		test_reader_then_parser,
		NULL,
	};
	return test_run(tests);
}
