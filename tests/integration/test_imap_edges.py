"""IMAP details a hostile probe left, each with the exact responses: new
keywords told with FLAGS and PERMANENTFLAGS before any FETCH shows them
(RFC 9051 7.3.5), an empty APPEND refused (RFC 5530 CANNOT), a SEARCH or
SORT RETURN PARTIAL given twice (BAD; other options twice mean what
they mean once), search strings that are not UTF-8
(BAD), and SORT/THREAD's reading of sort keys inside the search time
limit (NO [LIMIT])."""

import time

from test_imap_search import login, msg

DATE = b"10-Feb-2020 12:00:00 +0000"
SYSTEM = b"\\Seen \\Answered \\Flagged \\Deleted \\Draft"


def fill(r, n, box=b"INBOX", flags=b""):
    for i in range(n):
        r.append(box, msg(b"e%d" % i), DATE, flags=flags)


def flags_lines(keywords, readonly=False, full=False):
    """The FLAGS and PERMANENTFLAGS responses for these keywords."""
    names = SYSTEM + b"".join(b" " + k for k in keywords)
    perm = b"()" if readonly else b"(" + names + (b")" if full else b" \\*)")
    return [b"* FLAGS (" + names + b")",
            b"* OK [PERMANENTFLAGS " + perm + b"] Flags permitted"]


# ---- 1. new keywords mid-session ----

def test_select_names_the_keywords_there(youju):
    r = login(youju)
    fill(r, 1, flags=b"$Work")
    lines = r.ok(b"SELECT INBOX")
    assert lines[:2] == flags_lines([b"$Work"]), lines
    lines = r.ok(b"EXAMINE INBOX")
    assert lines[1:3] == flags_lines([b"$Work"], readonly=True), lines


def test_own_store_tells_new_keyword_before_fetch(youju):
    r = login(youju)
    fill(r, 2)
    lines = r.ok(b"SELECT INBOX")
    assert lines[:2] == flags_lines([]), lines
    lines = r.ok(b"STORE 1 +FLAGS ($Work)")
    # Both APPENDed before this SELECT: \\Recent to it (RFC 3501 6.3.11).
    assert lines == flags_lines([b"$Work"]) + [b"* 1 FETCH (FLAGS (\\Recent $Work))"], lines
    # A keyword already named is not told again.
    assert r.ok(b"STORE 2 +FLAGS ($Work)") == [b"* 2 FETCH (FLAGS (\\Recent $Work))"]
    # .SILENT still names the new one (the next FETCH would show it).
    assert r.ok(b"STORE 2 +FLAGS.SILENT (Later)") == flags_lines([b"$Work", b"Later"])
    assert r.ok(b"FETCH 2 FLAGS") == [b"* 2 FETCH (FLAGS (\\Recent $Work Later))"]
    assert r.ok(b"NOOP") == []


def test_other_session_store_is_told_at_next_command(youju):
    a = login(youju)
    fill(a, 2)
    a.ok(b"SELECT INBOX")
    e = login(youju)
    e.ok(b"EXAMINE INBOX")
    b = login(youju)
    b.ok(b"SELECT INBOX")
    b.ok(b"STORE 2 +FLAGS (Todo)")
    assert a.ok(b"NOOP") == flags_lines([b"Todo"]) + [b"* 2 FETCH (UID 2 FLAGS (\\Recent Todo))"]
    assert a.ok(b"NOOP") == []
    # A read-only session is told too, with PERMANENTFLAGS ().
    assert e.ok(b"NOOP") == flags_lines([b"Todo"], readonly=True) + \
        [b"* 2 FETCH (UID 2 FLAGS (Todo))"]
    # Set and cleared: the keyword stays defined, so it is named, and
    # the message's flags are as the client knew them.
    b.ok(b"STORE 1 +FLAGS (Brief)")
    b.ok(b"STORE 1 -FLAGS (Brief)")
    assert a.ok(b"NOOP") == flags_lines([b"Todo", b"Brief"])


def test_append_and_copy_into_selected_mailbox_tell_new_keywords(youju):
    a = login(youju)
    fill(a, 1)
    a.ok(b"CREATE Other")
    fill(a, 1, box=b"Other", flags=b"Copied")
    a.ok(b"SELECT INBOX")
    # This session's APPEND into the selected mailbox.
    m = msg(b"appended")
    a.send(b"x APPEND INBOX (Mine) {%d+}\r\n" % len(m) + m + b"\r\n")
    lines = a.until(b"x")
    assert lines[:-1] == flags_lines([b"Mine"]) + [b"* 2 EXISTS", b"* 2 RECENT"], lines
    assert lines[-1].startswith(b"x OK [APPENDUID "), lines
    assert a.ok(b"FETCH 2 FLAGS") == [b"* 2 FETCH (FLAGS (\\Recent Mine))"]
    # Another session's COPY into it.
    b = login(youju)
    b.ok(b"SELECT Other")
    assert b.cmd(b"COPY 1 INBOX")[1].startswith(b"OK [COPYUID ")
    # Copied in: \\Recent to this session, the first to hear of it.
    assert a.ok(b"NOOP") == flags_lines([b"Mine", b"Copied"]) + [b"* 3 EXISTS", b"* 3 RECENT"]
    assert a.ok(b"FETCH 3 FLAGS") == [b"* 3 FETCH (FLAGS (\\Recent Copied))"]
    # Another session's APPEND.
    b.append(b"INBOX", msg(b"b"), DATE, flags=b"Theirs")
    assert a.ok(b"NOOP") == flags_lines([b"Mine", b"Copied", b"Theirs"]) + \
        [b"* 4 EXISTS", b"* 4 RECENT"]


def test_idle_session_hears_of_new_keyword(youju):
    a = login(youju)
    fill(a, 1)
    a.ok(b"SELECT INBOX")
    a.send(b"i IDLE\r\n")
    assert a.line().startswith(b"+ ")
    b = login(youju)
    b.ok(b"SELECT INBOX")
    b.ok(b"STORE 1 +FLAGS (Urgent)")
    want = flags_lines([b"Urgent"]) + [b"* 1 FETCH (UID 1 FLAGS (\\Recent Urgent))"]
    got = [a.line() for _ in want]
    assert got == want, got
    a.send(b"DONE\r\n")
    assert a.until(b"i") == [b"i OK IDLE terminated"]


def test_last_keyword_slot_drops_the_star(youju):
    a = login(youju)
    fill(a, 1)
    a.ok(b"SELECT INBOX")
    b = login(youju)
    b.ok(b"SELECT INBOX")
    names = [b"k%02d" % i for i in range(63)]
    a.ok(b"STORE 1 +FLAGS.SILENT (" + b" ".join(names[:62]) + b")")
    assert b.ok(b"NOOP")[:2] == flags_lines(names[:62])
    # The 63rd (the last slot): PERMANENTFLAGS no longer has \*.
    assert a.ok(b"STORE 1 +FLAGS.SILENT (k62)") == flags_lines(names, full=True)
    assert b.ok(b"NOOP")[:2] == flags_lines(names, full=True)
    t = a.cmd(b"STORE 1 +FLAGS (k63)")[1]
    assert t == b"NO [LIMIT] The mailbox has 63 keywords, the most it can have", t
    assert a.ok(b"NOOP") == []
    c = login(youju)
    assert c.ok(b"SELECT INBOX")[:2] == flags_lines(names, full=True)


# ---- 2. APPEND of an empty message ----

def count(r):
    line = r.one(b"STATUS INBOX (MESSAGES)", b"* STATUS")
    return int(line.split(b"MESSAGES ")[1].rstrip(b")"))


def test_empty_append_is_refused(youju):
    r = login(youju)
    fill(r, 1)
    # A synchronizing {0}: the continuation, the empty literal, NO.
    r.send(b"a APPEND INBOX {0}\r\n")
    assert r.line().startswith(b"+ ")
    r.send(b"\r\n")
    assert r.until(b"a") == [b"a NO [CANNOT] An empty message cannot be stored"]
    for head in [b"{0+}", b"~{0}", b"~{0+}", b"(\\Seen) \"" + DATE + b"\" {0+}"]:
        r.send(b"b APPEND INBOX " + head + b"\r\n")
        if not head.endswith(b"+}"):
            assert r.line().startswith(b"+ ")
        r.send(b"\r\n")
        assert r.until(b"b") == [b"b NO [CANNOT] An empty message cannot be stored"], head
    # MULTIAPPEND with one empty part stores none of them.
    m = msg(b"first")
    r.send(b"c APPEND INBOX {%d+}\r\n" % len(m) + m + b" {0+}\r\n {%d+}\r\n" % len(m) + m
           + b"\r\n")
    assert r.until(b"c") == [b"c NO [CANNOT] An empty message cannot be stored"]
    assert count(r) == 1
    # The session is in step: a good APPEND goes on.
    r.send(b"d APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
    assert r.until(b"d")[-1].startswith(b"d OK [APPENDUID ")
    assert count(r) == 2


# ---- 3. RETURN options given twice ----

def test_return_option_twice(youju):
    r = login(youju)
    fill(r, 3)
    r.ok(b"SELECT INBOX")
    # Two PARTIAL ranges have no one meaning: BAD.
    for opts in [b"PARTIAL 1:2 PARTIAL 3:4", b"PARTIAL 1:2 PARTIAL 1:2"]:
        t = r.cmd(b"SEARCH RETURN (" + opts + b") ALL")[1]
        assert t == b"BAD SEARCH: RETURN option given twice", (opts, t)
    t = r.cmd(b"UID SORT RETURN (PARTIAL 1:1 PARTIAL -1:-1) (DATE) UTF-8 ALL")[1]
    assert t == b"BAD UID SORT: RETURN option given twice", t
    # Any other option given twice means what it means once.
    assert r.ok(b"SEARCH RETURN (MAX MIN MAX) ALL") == \
        [b'* ESEARCH (TAG "t%d") MIN 1 MAX 3' % r.n]
    assert r.ok(b"SEARCH RETURN (COUNT COUNT SAVE SAVE) ALL") == \
        [b'* ESEARCH (TAG "t%d") COUNT 3' % r.n]
    assert r.ok(b"UID SORT RETURN (MIN MIN) (DATE) UTF-8 ALL")[0].startswith(
        b'* ESEARCH (TAG "t%d") UID MIN ' % r.n)
    # Each once is fine, in any order.
    assert r.ok(b"SEARCH RETURN (MAX MIN COUNT) ALL") == \
        [b'* ESEARCH (TAG "t%d") MIN 1 MAX 3 COUNT 3' % r.n]
    assert r.ok(b"SORT RETURN (COUNT MIN) (REVERSE SUBJECT) UTF-8 ALL") == \
        [b'* ESEARCH (TAG "t%d") MIN 3 COUNT 3' % r.n]


# ---- 4. search strings that are not UTF-8 ----

def lit(b):
    return b"{%d+}\r\n" % len(b) + b


def test_search_string_not_utf8_is_bad(youju):
    r = login(youju)
    fill(r, 2)
    r.append(b"INBOX", msg("café".encode()), DATE)
    r.ok(b"SELECT INBOX")

    def bad(name):
        return b"BAD " + name + b": Search string is not valid UTF-8"
    for s in [b"\xff", b"caf\xe9", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80"]:
        for prog in [b"CHARSET UTF-8 TEXT " + lit(s), b"SUBJECT " + lit(s),
                     b"CHARSET US-ASCII BODY " + lit(s), b"HEADER Subject " + lit(s),
                     b"OR SEEN NOT FROM " + lit(s)]:
            assert r.cmd(b"SEARCH " + prog)[1] == bad(b"SEARCH"), (s, prog)
        assert r.cmd(b"UID SEARCH RETURN (COUNT) TEXT " + lit(s))[1] == bad(b"UID SEARCH")
        assert r.cmd(b"SORT (SUBJECT) UTF-8 SUBJECT " + lit(s))[1] == bad(b"SORT")
        assert r.cmd(b"SORT RETURN (ALL) (DATE) US-ASCII TEXT " + lit(s))[1] == bad(b"SORT")
        assert r.cmd(b"UID THREAD REFERENCES UTF-8 BODY " + lit(s))[1] == bad(b"UID THREAD")
        r.ok(b"NOOP")	# BAD commands in a row end a session
    # Well-formed UTF-8 still searches.
    assert r.ok(b"SEARCH CHARSET UTF-8 SUBJECT " + lit("CAFÉ".encode())) == [b"* SEARCH 3"]
    # Another charset is not read: NO [BADCHARSET], whatever its bytes.
    t = r.cmd(b"SEARCH CHARSET ISO-8859-1 SUBJECT " + lit(b"caf\xe9"))[1]
    assert t == b"NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset", t
    # A UTF8=ACCEPT session (no CHARSET, RFC 6855 3) is held to the same.
    u = login(youju)
    u.ok(b"ENABLE UTF8=ACCEPT")
    u.ok(b"SELECT INBOX")
    assert u.cmd(b"SEARCH SUBJECT \"caf\xe9\"")[1] == bad(b"SEARCH")
    assert u.cmd(b"SORT (DATE) UTF-8 SUBJECT \"\xe9\"")[1] == bad(b"SORT")
    assert u.ok(b"SEARCH SUBJECT \"caf\xc3\xa9\"") == [b"* SEARCH 3"]
    r.ok(b"NOOP")


# ---- 5. SORT and THREAD keys inside the time limit ----

def big_header_msg(i):
    """A message whose header takes some reading: long address lists and
    a long References field."""
    to = b", ".join(b"\"Person %d\" <p%d@example.org>" % (k, k) for k in range(100))
    refs = b" ".join(b"<r%d.%d@example.org>" % (i, k) for k in range(600))
    return (b"From: \"Sender %d\" <s%d@example.org>\r\nTo: " % (i, i) + to
            + b"\r\nCc: " + to + b"\r\nSubject: Re: topic %d\r\n" % (i % 7)
            + b"Date: Mon, 10 Feb 2020 12:%02d:00 +0000\r\n" % (i % 60)
            + b"References: " + refs + b"\r\n"
            + b"Message-ID: <m%d@example.org>\r\n\r\nBody.\r\n" % i)


def test_sort_and_thread_reading_past_the_limit_answers_no_limit(youju_with):
    # The limit is 20 ms: SEARCH ALL over these 3,000 messages takes well
    # under 1 ms; reading their headers for sort keys takes some 100 ms
    # or more (on SQLite; more on PostgreSQL).
    y = youju_with(imap_search_time_limit="20ms", imap_fts="no")
    r = login(y)
    for start in range(0, 3000, 100):
        parts = b" ".join(lit(big_header_msg(i)) for i in range(start, start + 100))
        r.send(b"m APPEND INBOX " + parts + b"\r\n")
        assert r.until(b"m")[-1].startswith(b"m OK"), start
    r.ok(b"SELECT INBOX")
    # The scan alone fits the limit easily: SEARCH ALL answers.
    assert r.ok(b"SEARCH RETURN (COUNT) ALL") == [b'* ESEARCH (TAG "t%d") COUNT 3000' % r.n]
    # Reading every message's header for its sort keys does not.
    for cmd in [b"SORT (FROM DATE) UTF-8 ALL", b"UID SORT RETURN (COUNT) (CC) UTF-8 ALL",
                b"THREAD REFERENCES UTF-8 ALL", b"THREAD ORDEREDSUBJECT UTF-8 ALL"]:
        t0 = time.monotonic()
        lines, t = r.cmd(cmd)
        took = time.monotonic() - t0
        assert (lines, t) == ([], b"NO [LIMIT] Search took too long"), (cmd, t, took)
        assert took < 2, (cmd, took)
    log = y.read_log()
    assert "sort stopped after reading" in log and "thread stopped after reading" in log
    # A small one still works in the same session.
    assert r.ok(b"SORT (DATE) UTF-8 1:3") == [b"* SORT 1 2 3"]
