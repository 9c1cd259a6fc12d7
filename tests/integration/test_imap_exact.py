"""IMAP details a hostile probe found, each with the exact responses the
RFCs fix: a mailbox whose keywords are all used (RFC 5530 LIMIT, RFC 9051
PERMANENTFLAGS), literals as header field names (astring), NUL in
strings, the APPEND forms of BINARY and UTF8=ACCEPT when an account has
one switched off, STATUS items in the order asked, and a .SILENT STORE
once CONDSTORE is enabled."""

import imaplib
import re

from conftest import PASSWORD, USER
from test_imap import deliver, make_msg
from test_imap_ext import Client, ok
from test_postgresql import pg_cluster, pg_dsn  # noqa: F401 (fixtures)

KEYWORDS_MAX = 63
LIMIT = b"NO [LIMIT] The mailbox has 63 keywords, the most it can have"


def session(y, *enable):
    c = Client(y.ports["imap"])
    c.login()
    if enable:
        ok(c.cmd(b"e", b"ENABLE " + b" ".join(enable)), b"e")
    return c


def append(c, tag, mailbox, msg, flags=b"", literal=b"{%d+}"):
    """APPEND with a non-synchronizing literal; the response lines."""
    c.send(tag + b" APPEND " + mailbox + (b" (" + flags + b")" if flags else b"")
           + b" " + literal % len(msg) + b"\r\n" + msg + b"\r\n")
    return c.until(tag)


def sync_literal(c, tag, head, literal, tail):
    """Sends head ending in a {n} literal, waits for "+", sends the
    literal and the rest of the line; the response lines."""
    c.send(tag + b" " + head + b"{%d}\r\n" % len(literal))
    assert c.line().startswith(b"+ ")
    c.send(literal + tail + b"\r\n")
    return c.until(tag)


def permanentflags(lines):
    return [x for x in lines if x.startswith(b"* OK [PERMANENTFLAGS ")]


# ---- keywords: 63 per mailbox, then LIMIT (RFC 5530 3, RFC 9051 7.1) ----

def test_full_keyword_slots_are_a_limit(youju):
    c = session(youju)
    ok(c.cmd(b"a", b"CREATE Other"), b"a")
    names = [b"k%d" % i for i in range(KEYWORDS_MAX)]
    lines = append(c, b"b", b"INBOX", make_msg("full"), b" ".join(names))
    assert lines[-1].startswith(b"b OK [APPENDUID "), lines
    lines = append(c, b"c", b"Other", make_msg("fresh"), b"\\Seen fresh")
    assert lines[-1].startswith(b"c OK [APPENDUID "), lines

    # PERMANENTFLAGS: without \* no keyword can be made (RFC 9051 7.1)
    lines = ok(c.cmd(b"d", b"SELECT INBOX"), b"d")
    assert permanentflags(lines) == [
        b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft "
        + b" ".join(names) + b")] Flags permitted"], lines
    # APPEND, STORE: a new keyword is refused, one the mailbox has is not
    assert append(c, b"e", b"INBOX", make_msg("new"), b"\\Seen newkw") == [b"e " + LIMIT]
    lines = append(c, b"f", b"INBOX", make_msg("old"), b"\\Seen K5")
    assert lines[-1].startswith(b"f OK [APPENDUID "), lines
    assert c.cmd(b"g", b"STORE 1 +FLAGS (\\Flagged newkw)") == [b"g " + LIMIT]
    assert c.cmd(b"h", b"UID STORE 1 FLAGS.SILENT (newkw)") == [b"h " + LIMIT]
    # nothing of a refused STORE was done; the other message is the old one
    lines = ok(c.cmd(b"i", b"FETCH 1:* (FLAGS)"), b"i")
    assert lines[0] == b"* 1 FETCH (FLAGS (\\Recent " + b" ".join(names) + b"))", lines
    assert lines[1] == b"* 2 FETCH (FLAGS (\\Seen \\Recent k5))", lines
    assert len(lines) == 3, lines
    lines = ok(c.cmd(b"j", b"STORE 2 +FLAGS (k7)"), b"j")
    assert lines[0] == b"* 2 FETCH (FLAGS (\\Seen \\Recent k5 k7))", lines
    # removing an unknown keyword makes none
    ok(c.cmd(b"k", b"STORE 2 -FLAGS (newkw)"), b"k")

    # COPY and MOVE of a message whose keyword is new there
    lines = permanentflags(ok(c.cmd(b"m", b"EXAMINE Other"), b"m"))
    assert lines == [b"* OK [PERMANENTFLAGS ()] Flags permitted"], lines
    lines = ok(c.cmd(b"n", b"SELECT Other"), b"n")
    assert permanentflags(lines) == [
        b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft fresh \\*)]"
        b" Flags permitted"], lines
    assert c.cmd(b"o", b"COPY 1 INBOX") == [b"o " + LIMIT]
    assert c.cmd(b"p", b"UID COPY 1 INBOX") == [b"p " + LIMIT]
    assert c.cmd(b"q", b"MOVE 1 INBOX") == [b"q " + LIMIT]
    assert c.cmd(b"r", b"UID MOVE 1:* INBOX") == [b"r " + LIMIT]
    # the message stayed where it was, and INBOX got nothing
    lines = ok(c.cmd(b"s", b"FETCH 1:* (UID FLAGS)"), b"s")
    assert lines == [b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent fresh))", b"s OK FETCH completed"]
    lines = ok(c.cmd(b"t", b"STATUS INBOX (MESSAGES UIDNEXT)"), b"t")
    assert lines[0] == b"* STATUS INBOX (MESSAGES 2 UIDNEXT 3)", lines
    # without its keyword it copies
    ok(c.cmd(b"u", b"STORE 1 -FLAGS.SILENT (fresh)"), b"u")
    lines = ok(c.cmd(b"v", b"COPY 1 INBOX"), b"v")
    assert lines[-1].startswith(b"v OK [COPYUID "), lines


# ---- header field names are astrings: quoted strings and literals ----

def fetch_literal(c, tag):
    """The untagged FETCH of a one-literal reply: its first line and data."""
    first = c.line()
    n = int(re.search(rb"\{(\d+)\}$", first).group(1))
    while len(c.buf) < n:
        c._fill()
    data, c.buf = c.buf[:n], c.buf[n:]
    assert c.line() == b")"
    ok(c.until(tag), tag)
    return first, data


def test_header_field_names_as_literals(youju):
    deliver(youju, make_msg("lit"))
    c = session(youju)
    ok(c.cmd(b"a", b"SELECT INBOX"), b"a")
    want = b"Subject: lit\r\n\r\n"
    c.send(b"b FETCH 1 BODY.PEEK[HEADER.FIELDS ({7}\r\n")
    assert c.line().startswith(b"+ ")
    c.send(b"Subject)]\r\n")
    assert fetch_literal(c, b"b") == (b"* 1 FETCH (BODY[HEADER.FIELDS (Subject)] {%d}" % len(want),
                                      want)
    # LITERAL+, and mixed with an atom and a quoted string
    c.send(b"c FETCH 1 BODY.PEEK[HEADER.FIELDS (From {2+}\r\nTo \"Message-ID\")]\r\n")
    three = (b"From: Bob <bob@example.org>\r\nTo: alice@example.test\r\n"
             b"Message-ID: <lit@example.org>\r\n\r\n")
    first, data = fetch_literal(c, b"c")
    assert first == b"* 1 FETCH (BODY[HEADER.FIELDS (From To Message-ID)] {%d}" % len(three)
    assert data == three
    c.send(b"c2 FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT ({4+}\r\nFROM)]\r\n")
    first, data = fetch_literal(c, b"c2")
    assert first.startswith(b"* 1 FETCH (BODY[HEADER.FIELDS.NOT (FROM)] {"), first
    assert b"\r\nSubject: lit\r\n" in data and b"From:" not in data, data
    # a literal holds one name only
    lines = sync_literal(c, b"d", b"FETCH 1 BODY.PEEK[HEADER.FIELDS (", b"To Cc", b")]")
    assert lines == [b"d BAD FETCH: Invalid fetch item"], lines
    # with another item that answers with a literal
    c.send(b"f FETCH 1 (BINARY.PEEK[1] BODY.PEEK[HEADER.FIELDS ({7+}\r\nSUBJECT)])\r\n")
    lines = c.until(b"f")
    assert lines[0] == b"* 1 FETCH (BINARY[1] {8}", lines
    assert b"Hello.\r\n BODY[HEADER.FIELDS (SUBJECT)] {%d}" % len(want) in b"\r\n".join(lines)
    assert lines[-1] == b"f OK FETCH completed", lines


# ---- NUL: no string may hold one, only a literal8 (RFC 9051 9) ----

def test_nul_in_strings_is_bad(youju):
    deliver(youju, make_msg("nul"))
    c = Client(youju.ports["imap"])
    lines = sync_literal(c, b"a", b"LOGIN " + USER.encode() + b" ", b"pass\0word", b"")
    assert lines == [b"a BAD LOGIN: NUL in string"], lines
    c.send(b"b LOGIN \"" + USER.encode() + b"\0\" x\r\n")
    assert c.until(b"b") == [b"b BAD LOGIN: NUL in string"]
    c.login()
    ok(c.cmd(b"c", b"SELECT INBOX"), b"c")
    cases = [
        (b"SEARCH SUBJECT ", b"n\0l", b"", b"BAD SEARCH: NUL in string"),
        (b"UID SEARCH HEADER ", b"Sub\0ject", b" nul", b"BAD UID SEARCH: NUL in string"),
        (b"SEARCH CHARSET UTF-8 OR BODY x TEXT ", b"\0", b"", b"BAD SEARCH: NUL in string"),
        (b"SORT (DATE) UTF-8 FROM ", b"bob\0", b"", b"BAD SORT: NUL in string"),
        (b"CREATE ", b"Box\0", b"", b"BAD CREATE: NUL in string"),
        (b"STATUS ", b"IN\0BOX", b" (MESSAGES)", b"BAD STATUS: NUL in string"),
    ]
    for i, (head, literal, tail, reply) in enumerate(cases):
        tag = b"s%d" % i
        assert sync_literal(c, tag, head, literal, tail) == [tag + b" " + reply], head
    for i, (line, reply) in enumerate([
            (b"SEARCH SUBJECT \"n\0l\"", b"BAD SEARCH: NUL in string"),
            (b"SEARCH TEXT \"\0\"", b"BAD SEARCH: NUL in string"),
            (b"APPEND INBOX (\\Seen k\0) {1+}\r\nx", b"BAD APPEND: Invalid character"),
            (b"APPEND \"IN\0BOX\" {1+}\r\nx", b"BAD APPEND: NUL in string")]):
        tag = b"q%d" % i
        c.send(tag + b" " + line + b"\r\n")
        assert c.until(tag) == [tag + b" " + reply], line
    # the same strings without the NUL are fine, and nothing was stored
    lines = ok(c.cmd(b"d", b"SEARCH SUBJECT nul"), b"d")
    assert lines[0] == b"* SEARCH 1", lines
    lines = ok(c.cmd(b"e", b"STATUS INBOX (MESSAGES)"), b"e")
    assert lines[0] == b"* STATUS INBOX (MESSAGES 1)", lines


# ---- APPEND: a bare ~{n} is BINARY's, UTF8 (~{n}) UTF8=ACCEPT's ----

def test_append_forms_follow_their_switches(youju):
    youju.cli("account", "set", USER, "imap_disable", "BINARY")
    c = session(youju, b"UTF8=ACCEPT")
    msg = make_msg("naïve café")
    # RFC 6855's form works once UTF8=ACCEPT is enabled
    c.send(b"a APPEND INBOX UTF8 (~{%d}\r\n" % len(msg))
    assert c.line().startswith(b"+ ")
    c.send(msg + b")\r\n")
    lines = c.until(b"a")
    assert lines[-1].startswith(b"a OK [APPENDUID "), lines
    # a bare literal8 is BINARY's, which is off, whatever else is enabled
    c.send(b"b APPEND INBOX ~{%d}\r\n" % len(msg))
    assert c.line().startswith(b"+ ")
    c.send(msg + b"\r\n")
    assert c.until(b"b") == [b"b BAD APPEND: BINARY is not supported"]
    lines = ok(c.cmd(b"c", b"STATUS INBOX (MESSAGES)"), b"c")
    assert lines[0] == b"* STATUS INBOX (MESSAGES 1)", lines

    # without ENABLE UTF8=ACCEPT the UTF8 form is no syntax at all
    d = session(youju)
    d.send(b"a APPEND INBOX UTF8 (~{%d}\r\n" % len(msg))
    assert d.line().startswith(b"+ ")
    d.send(msg + b")\r\n")
    assert d.until(b"a") == [b"a BAD APPEND: UTF8 needs ENABLE UTF8=ACCEPT"]
    # ... nor when the account has it off: ENABLE leaves it out
    youju.cli("account", "set", USER, "imap_disable", "BINARY,UTF8=ACCEPT")
    e = session(youju)
    assert e.cmd(b"b", b"ENABLE UTF8=ACCEPT") == [b"* ENABLED", b"b OK ENABLE completed"]
    e.send(b"c APPEND INBOX UTF8 (~{1+}\r\nx)\r\n")
    assert e.until(b"c") == [b"c BAD APPEND: UTF8 needs ENABLE UTF8=ACCEPT"]
    # with BINARY on, the bare literal8 needs nothing enabled
    youju.cli("account", "set", USER, "imap_disable", "UTF8=ACCEPT")
    f = session(youju)
    lines = append(f, b"a", b"INBOX", msg, literal=b"~{%d+}")
    assert lines[-1].startswith(b"a OK [APPENDUID "), lines


# ---- STATUS: the items in the order asked, each once ----

def test_status_items_in_the_order_asked(youju):
    deliver(youju, make_msg("st1"), make_msg("st2"))
    c = session(youju)
    lines = ok(c.cmd(b"a", b"STATUS INBOX (UNSEEN MESSAGES UIDNEXT unseen)"), b"a")
    assert lines[0] == b"* STATUS INBOX (UNSEEN 2 MESSAGES 2 UIDNEXT 3)", lines
    lines = ok(c.cmd(b"b", b"STATUS INBOX (UIDNEXT MESSAGES)"), b"b")
    assert lines[0] == b"* STATUS INBOX (UIDNEXT 3 MESSAGES 2)", lines
    lines = ok(c.cmd(b"c", b'LIST "" INBOX RETURN (STATUS (SIZE RECENT UIDNEXT))'), b"c")
    assert re.fullmatch(rb"\* STATUS INBOX \(SIZE \d+ RECENT 2 UIDNEXT 3\)", lines[1]), lines
    # a real client sees what it asked for, in its order
    m = imaplib.IMAP4("127.0.0.1", youju.ports["imap"], timeout=20)
    m.login(USER, PASSWORD)
    typ, data = m.status("INBOX", "(UIDNEXT UNSEEN MESSAGES)")
    assert typ == "OK" and data == [b"INBOX (UIDNEXT 3 UNSEEN 2 MESSAGES 2)"], data
    m.logout()


# ---- STORE .SILENT once CONDSTORE is enabled: the new MODSEQ ----

def modseqs(c, tag):
    lines = ok(c.cmd(tag, b"FETCH 1:* (MODSEQ)"), tag)
    return [int(x) for x in re.findall(rb"MODSEQ \((\d+)\)", b"\n".join(lines))]


def highestmodseq(lines):
    return int(re.search(rb"\[HIGHESTMODSEQ (\d+)\]", b"\n".join(lines)).group(1))


def test_silent_store_tells_modseq_once_condstore_is_on(youju):
    deliver(youju, make_msg("m1"), make_msg("m2"), make_msg("m3"))
    c = session(youju, b"CONDSTORE")
    high = highestmodseq(ok(c.cmd(b"a", b"SELECT INBOX"), b"a"))
    assert max(modseqs(c, b"b")) == high
    lines = c.cmd(b"c", b"STORE 1 +FLAGS.SILENT (\\Seen)")
    assert lines == [b"* 1 FETCH (MODSEQ (%d))" % (high + 1), b"c OK STORE completed"]
    lines = c.cmd(b"d", b"UID STORE 2:3 FLAGS.SILENT (\\Flagged $Work)")
    high += 2
    assert lines == [b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Work)",
                     b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Work \\*)] Flags permitted",
                     b"* 2 FETCH (UID 2 MODSEQ (%d))" % high,
                     b"* 3 FETCH (UID 3 MODSEQ (%d))" % high, b"d OK UID STORE completed"]
    assert modseqs(c, b"e") == [high - 1, high, high]
    # a STORE that changes nothing tells nothing
    assert c.cmd(b"f", b"STORE 1 +FLAGS.SILENT (\\Seen)") == [b"f OK STORE completed"]
    # without CONDSTORE, .SILENT is silent (RFC 9051 6.4.6)
    o = session(youju)
    ok(o.cmd(b"a", b"SELECT INBOX"), b"a")
    assert o.cmd(b"b", b"STORE 1 -FLAGS.SILENT (\\Seen)") == [b"b OK STORE completed"]
