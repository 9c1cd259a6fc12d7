"""IMAP protocol details against a real youjud, with the exact responses
the RFCs give: \\Recent (RFC 3501), a .SILENT conditional STORE (RFC
7162), CREATE without subscribing and with USE (RFC 6154), BINARY (RFC
3516), and what an account's switched-off capabilities leave out."""

import re

from conftest import USER
from test_imap import deliver, make_msg
from test_imap_ext import Client, ok
from test_postgresql import pg_cluster, pg_dsn  # noqa: F401 (fixtures)


def session(y, *enable):
    c = Client(y.ports["imap"])
    caps = c.login()[-1]
    if enable:
        ok(c.cmd(b"e", b"ENABLE " + b" ".join(enable)), b"e")
    return c, caps


def untagged(lines, word):
    return [x for x in lines if x.startswith(b"* ") and word in x]


# ---- \Recent ----

def test_recent_goes_to_the_first_session_that_selects(youju):
    deliver(youju, make_msg("r1"), make_msg("r2"))
    watcher, _ = session(youju)
    lines = ok(watcher.cmd(b"s", b'STATUS INBOX (MESSAGES RECENT UNSEEN)'), b"s")
    assert lines[0] == b'* STATUS INBOX (MESSAGES 2 RECENT 2 UNSEEN 2)'
    # EXAMINE looks without taking (RFC 3501 6.3.2)
    lines = ok(watcher.cmd(b"x", b"EXAMINE INBOX"), b"x")
    assert b"* 2 RECENT" in lines
    ok(watcher.cmd(b"u", b"UNSELECT"), b"u")

    a, _ = session(youju)
    lines = ok(a.cmd(b"a", b"SELECT INBOX"), b"a")
    assert b"* 2 EXISTS" in lines and b"* 2 RECENT" in lines
    lines = ok(a.cmd(b"b", b"FETCH 1:2 (FLAGS)"), b"b")
    assert lines[:2] == [b"* 1 FETCH (FLAGS (\\Recent))", b"* 2 FETCH (FLAGS (\\Recent))"]
    assert ok(a.cmd(b"c", b"SEARCH RECENT"), b"c")[0] == b"* SEARCH 1 2"
    ok(a.cmd(b"d", b"STORE 1 +FLAGS.SILENT (\\Seen)"), b"d")
    assert ok(a.cmd(b"e", b"SEARCH NEW"), b"e")[0] == b"* SEARCH 2"
    assert ok(a.cmd(b"f", b"SEARCH OLD"), b"f")[0] == b"* SEARCH"
    # a STORE keeps \Recent: it is the session's, not stored
    lines = ok(a.cmd(b"g", b"STORE 2 +FLAGS (\\Flagged)"), b"g")
    assert lines[0] == b"* 2 FETCH (FLAGS (\\Flagged \\Recent))"

    # the second session is not the first to be told
    b, _ = session(youju)
    lines = ok(b.cmd(b"a", b"SELECT INBOX"), b"a")
    assert b"* 2 EXISTS" in lines and b"* 0 RECENT" in lines
    assert ok(b.cmd(b"b", b"SEARCH RECENT"), b"b")[0] == b"* SEARCH"
    lines = ok(watcher.cmd(b"t", b"STATUS INBOX (RECENT)"), b"t")
    assert lines[0] == b"* STATUS INBOX (RECENT 0)"

    # new mail: the first session to hear of it has it \Recent
    deliver(youju, make_msg("r3"))
    lines = ok(b.cmd(b"c", b"NOOP"), b"c")
    assert lines[:2] == [b"* 3 EXISTS", b"* 1 RECENT"], lines
    lines = ok(a.cmd(b"h", b"NOOP"), b"h")
    assert b"* 3 EXISTS" in lines and not untagged(lines, b"RECENT"), lines
    lines = ok(a.cmd(b"i", b"FETCH 3 (FLAGS)"), b"i")
    assert lines[0] == b"* 3 FETCH (FLAGS ())"
    lines = ok(b.cmd(b"d", b"FETCH 3 (FLAGS)"), b"d")
    assert lines[0] == b"* 3 FETCH (FLAGS (\\Recent))"


def test_what_a_session_stores_elsewhere_is_recent(youju):
    """RFC 3501 6.3.11: an APPENDed message has \\Recent "in either case";
    6.4.7: a copy SHOULD have it. The first session to select the mailbox
    takes it, as for delivered mail (and as the reference server does)."""
    a, _ = session(youju)
    msg = make_msg("mine")
    a.send(b"a APPEND Drafts {%d}\r\n" % len(msg))
    assert a.line().startswith(b"+ ")
    a.send(msg + b"\r\n")
    ok(a.until(b"a"), b"a")
    deliver(youju, make_msg("delivered"))
    ok(a.cmd(b"b", b"SELECT INBOX"), b"b")
    ok(a.cmd(b"c", b"COPY 1 Drafts"), b"c")
    b, _ = session(youju)
    lines = ok(b.cmd(b"a", b"SELECT Drafts"), b"a")
    assert b"* 2 EXISTS" in lines and b"* 2 RECENT" in lines, lines
    lines = ok(b.cmd(b"b", b"FETCH 1:2 (FLAGS)"), b"b")
    assert lines[:2] == [b"* 1 FETCH (FLAGS (\\Recent))", b"* 2 FETCH (FLAGS (\\Recent))"], lines
    # into the selected mailbox, the session itself is told first
    a.send(b"d APPEND INBOX {%d}\r\n" % len(msg))
    assert a.line().startswith(b"+ ")
    a.send(msg + b"\r\n")
    lines = ok(a.until(b"d"), b"d")
    assert lines[:2] == [b"* 2 EXISTS", b"* 2 RECENT"], lines


def test_imap4rev2_has_no_recent(youju):
    deliver(youju, make_msg("v1"))
    c, _ = session(youju, b"IMAP4rev2")
    lines = ok(c.cmd(b"a", b"SELECT INBOX"), b"a")
    assert not untagged(lines, b"RECENT"), lines
    assert ok(c.cmd(b"b", b"FETCH 1 (FLAGS)"), b"b")[0] == b"* 1 FETCH (FLAGS ())"
    # and does not take it from an IMAP4rev1 session
    d, _ = session(youju)
    assert b"* 1 RECENT" in ok(d.cmd(b"a", b"SELECT INBOX"), b"a")


# ---- STORE (UNCHANGEDSINCE) .SILENT: MODSEQ only (RFC 7162 3.1.3) ----

def test_silent_conditional_store_sends_modseq_only(youju):
    deliver(youju, make_msg("c1"), make_msg("c2"), make_msg("c3"))
    c, _ = session(youju, b"CONDSTORE")
    ok(c.cmd(b"a", b"SELECT INBOX"), b"a")
    lines = ok(c.cmd(b"b", b"UID FETCH 1:* (MODSEQ)"), b"b")
    high = max(int(x) for x in re.findall(rb"MODSEQ \((\d+)\)", b"\n".join(lines)))
    lines = c.cmd(b"c", b"UID STORE 1,3 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Deleted)" % high)
    assert len(lines) == 3 and lines[-1].startswith(b"c OK"), lines
    assert re.fullmatch(rb"\* 1 FETCH \(UID 1 MODSEQ \(\d+\)\)", lines[0]), lines
    assert re.fullmatch(rb"\* 3 FETCH \(UID 3 MODSEQ \(\d+\)\)", lines[1]), lines
    lines = c.cmd(b"d", b"STORE 2 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Answered)" % high)
    assert re.fullmatch(rb"\* 2 FETCH \(MODSEQ \(\d+\)\)", lines[0]), lines
    assert lines[1].startswith(b"d OK"), lines
    # one that fails the test is named in MODIFIED and not told of
    lines = c.cmd(b"e", b"STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Flagged)" % high)
    assert len(lines) == 1 and lines[0].startswith(b"e OK [MODIFIED 1:2] "), lines
    # not .SILENT: FLAGS and MODSEQ
    lines = ok(c.cmd(b"f", b"STORE 3 (UNCHANGEDSINCE 9223372036854775807) +FLAGS (\\Seen)"),
               b"f")
    assert re.fullmatch(rb"\* 3 FETCH \(FLAGS \(\\Seen \\Deleted \\Recent\) MODSEQ \(\d+\)\)", lines[0]), \
        lines


# ---- CREATE: not subscribed; USE (RFC 6154) ----

def test_create_does_not_subscribe(youju):
    c, _ = session(youju)
    ok(c.cmd(b"a", b"CREATE Work/Plans"), b"a")
    lines = ok(c.cmd(b"b", b'LSUB "" "*"'), b"b")
    assert not any(b"Work" in x for x in lines), lines
    lines = ok(c.cmd(b"c", b'LIST (SUBSCRIBED) "" "Work*"'), b"c")
    assert lines == [b"c OK LIST completed"], lines
    ok(c.cmd(b"d", b"SUBSCRIBE Work/Plans"), b"d")
    lines = ok(c.cmd(b"e", b'LSUB "" "*"'), b"e")
    assert b'* LSUB () "/" "Work/Plans"' in lines, lines
    # the mailboxes every account starts with stay subscribed
    assert b'* LSUB () "/" INBOX' in lines and b'* LSUB () "/" "Sent"' in lines, lines


def test_create_special_use(youju):
    c, caps = session(youju)
    assert b" CREATE-SPECIAL-USE " in caps and b" SPECIAL-USE " in caps
    ok(c.cmd(b"a", b"CREATE MySent (USE (\\Sent))"), b"a")
    lines = ok(c.cmd(b"b", b'LIST "" MySent'), b"b")
    assert lines[0] == b'* LIST (\\HasNoChildren \\Sent) "/" "MySent"', lines
    lines = ok(c.cmd(b"c", b'LIST (SPECIAL-USE) "" "*"'), b"c")
    assert b'* LIST (\\HasNoChildren \\Sent) "/" "MySent"' in lines, lines
    lines = c.cmd(b"d", b"CREATE Everything (USE (\\All))")
    assert lines[-1].startswith(b"d NO [USEATTR]"), lines
    lines = c.cmd(b"e", b"CREATE Both (USE (\\Sent \\Trash))")
    assert lines[-1].startswith(b"e NO [USEATTR]"), lines
    # nothing was created by a refused CREATE
    assert ok(c.cmd(b"f", b'LIST "" "Every*"'), b"f") == [b"f OK LIST completed"]
    assert c.cmd(b"g", b"CREATE Bad (USE (Sent))")[-1].startswith(b"g BAD")
    ok(c.cmd(b"h", b"CREATE Plain (USE ())"), b"h")


# ---- BINARY (RFC 3516) ----

def test_binary_announced_with_literal8_append(youju):
    c, caps = session(youju)
    assert b" BINARY " in caps
    body = b"bin\x00ary\x01\r\n"
    msg = (b"From: a@example.org\r\nSubject: b\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: binary\r\n\r\n" + body)
    c.send(b"a APPEND INBOX ~{%d}\r\n" % len(msg))
    assert c.line().startswith(b"+ ")
    c.send(msg + b"\r\n")
    lines = c.until(b"a")
    assert lines[-1].startswith(b"a OK [APPENDUID "), lines
    ok(c.cmd(b"b", b"SELECT INBOX"), b"b")
    c.send(b"c FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])\r\n")
    first = c.line()
    head = b"* 1 FETCH (BINARY.SIZE[1] %d BINARY[1] ~{%d}" % (len(body), len(body))
    assert first == head, first
    data = c.buf[:len(body)]
    while len(data) < len(body):
        c._fill()
        data = c.buf[:len(body)]
    assert data == body
    c.buf = c.buf[len(body):]
    assert c.line() == b")"
    ok(c.until(b"c"), b"c")


def test_unknown_cte_is_no_unknown_cte(youju):
    msg = (b"From: a@example.org\r\nSubject: u\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-frob\r\n\r\nzzz\r\n")
    deliver(youju, msg)
    c, _ = session(youju)
    ok(c.cmd(b"a", b"SELECT INBOX"), b"a")
    lines = c.cmd(b"b", b"FETCH 1 BINARY[1]")
    assert lines[-1].startswith(b"b NO [UNKNOWN-CTE]"), lines
    assert ok(c.cmd(b"c", b"FETCH 1 BODY.PEEK[1]"), b"c")[0] == b"* 1 FETCH (BODY[1] {5}"


# ---- switched-off capabilities leave no trace ----

def test_switched_off_uidplus_children_special_use(youju):
    deliver(youju, make_msg("o1"), make_msg("o2"))
    youju.cli("account", "set", USER, "imap_disable", "UIDPLUS,CHILDREN,SPECIAL-USE,BINARY")
    c, caps = session(youju)
    for cap in (b"UIDPLUS", b"CHILDREN", b"SPECIAL-USE", b"CREATE-SPECIAL-USE", b"BINARY"):
        assert b" " + cap + b" " not in caps + b" ", cap
    msg = make_msg("appended")
    c.send(b"a APPEND INBOX {%d}\r\n" % len(msg))
    assert c.line().startswith(b"+ ")
    c.send(msg + b"\r\n")
    assert c.until(b"a") == [b"a OK APPEND completed"]
    ok(c.cmd(b"b", b"SELECT INBOX"), b"b")
    assert ok(c.cmd(b"c", b"COPY 1 Trash"), b"c") == [b"c OK COPY completed"]
    assert ok(c.cmd(b"d", b"MOVE 2 Trash"), b"d") == [b"* 2 EXPUNGE", b"d OK MOVE completed"]
    ok(c.cmd(b"e", b"CREATE Projects/Alpha"), b"e")
    lines = ok(c.cmd(b"f", b'LIST "" "*"'), b"f")
    assert b'* LIST () "/" "Sent"' in lines and b'* LIST () "/" "Projects"' in lines, lines
    assert not any(b"Children" in x for x in lines), lines
    # RETURN (CHILDREN) asks for them (RFC 5258 4)
    lines = ok(c.cmd(b"g", b'LIST "" "Projects*" RETURN (CHILDREN)'), b"g")
    assert lines[:2] == [b'* LIST (\\HasChildren) "/" "Projects"',
                         b'* LIST (\\HasNoChildren) "/" "Projects/Alpha"'], lines
    refused = [
        (b"CREATE Out (USE (\\Sent))", b"BAD CREATE: SPECIAL-USE is not supported"),
        (b'LIST (SPECIAL-USE) "" "*"', b"BAD LIST: SPECIAL-USE is not supported"),
        (b"FETCH 1 (BINARY[1])", b"BAD FETCH: BINARY is not supported"),
        (b"FETCH 1 (BINARY.SIZE[1])", b"BAD FETCH: BINARY is not supported"),
    ]
    for i, (command, reply) in enumerate(refused):
        tag = b"r%d" % i
        assert c.cmd(tag, command) == [tag + b" " + reply], command
    # IMAP4rev2 has them all: once enabled, they are back
    ok(c.cmd(b"h", b"ENABLE IMAP4rev2"), b"h")
    ok(c.cmd(b"i", b"SELECT INBOX"), b"i")
    lines = ok(c.cmd(b"j", b"COPY 1 Trash"), b"j")
    assert lines[-1].startswith(b"j OK [COPYUID "), lines
    lines = ok(c.cmd(b"k", b'LIST "" "Sent"'), b"k")
    assert lines[0] == b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"', lines
    assert ok(c.cmd(b"l", b"FETCH 1 (BINARY.SIZE[1])"), b"l")[0].startswith(
        b"* 1 FETCH (BINARY.SIZE[1] ")


def test_switched_off_literal_plus(youju):
    youju.cli("account", "set", USER, "imap_disable", "LITERAL+")
    c, caps = session(youju)
    assert b"LITERAL+" not in caps
    msg = make_msg("nonsync")
    c.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    assert c.until(b"a") == [b"a BAD Non-synchronizing literals are not supported"]
    # the literal's bytes were skipped, not taken as commands
    ok(c.cmd(b"b", b"NOOP"), b"b")
    lines = ok(c.cmd(b"c", b"STATUS INBOX (MESSAGES)"), b"c")
    assert lines[0] == b"* STATUS INBOX (MESSAGES 0)"
    # IMAP4rev2 has LITERAL-: {n+} up to 4096
    ok(c.cmd(b"d", b"ENABLE IMAP4rev2"), b"d")
    c.send(b"e APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    assert c.until(b"e")[-1].startswith(b"e OK [APPENDUID ")
    big = make_msg("big", b"x" * 5000 + b"\r\n")
    c.send(b"f APPEND INBOX {%d+}\r\n" % len(big) + big + b"\r\n")
    assert c.until(b"f")[-1].startswith(b"f BAD [TOOBIG]")
    ok(c.cmd(b"g", b"NOOP"), b"g")
