"""IMAP extensions against a real youjud: COMPRESS=DEFLATE (RFC 4978) over
plain and TLS connections and across a parked IDLE, OBJECTID (RFC 8474),
SAVEDATE (RFC 8514), PREVIEW (RFC 8970), ENABLE IMAP4rev2 and UTF8=ACCEPT,
and the per-account capability switches."""

import os
import re
import smtplib
import subprocess
import time
import zlib

import pytest

from conftest import PASSWORD, USER
from test_imap import Raw, deliver, make_msg
from test_postgresql import pg_cluster, pg_dsn  # noqa: F401 (fixtures)


class Client(Raw):
    """Raw IMAP, optionally TLS, optionally compressed; the greeting is
    read at once."""

    def __init__(self, port, tls=False):
        super().__init__(port, tls)
        self.z_out = self.z_in = None
        self.greeting = self.line()

    def compress(self):
        self.z_out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.z_in = zlib.decompressobj(-15)

    def send(self, data):
        if self.z_out is not None:
            data = self.z_out.compress(data) + self.z_out.flush(zlib.Z_SYNC_FLUSH)
        self.s.sendall(data)

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError(self.buf)
        if self.z_in is not None:
            d = self.z_in.decompress(d)
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def login(self):
        lines = self.cmd(b"l", b"LOGIN " + USER.encode() + b" " + PASSWORD.encode())
        assert lines[-1].startswith(b"l OK"), lines
        return lines


def ok(lines, tag):
    assert lines[-1].startswith(tag + b" OK"), lines
    return lines


def compressed_session(y, tls=False):
    c = Client(y.ports["imaps" if tls else "imap"], tls=tls)
    caps = c.login()[-1]
    assert b"COMPRESS=DEFLATE" in caps
    lines = c.cmd(b"z", b"COMPRESS DEFLATE")
    assert lines[-1] == b"z OK DEFLATE active"
    c.compress()
    return c


def test_compress_plain_and_tls(youju):
    body = b"".join(b"line %d of a body that compresses well\r\n" % i for i in range(3000))
    deliver(youju, make_msg("big", body))
    for tls in (False, True):
        c = compressed_session(youju, tls)
        caps = ok(c.cmd(b"a", b"CAPABILITY"), b"a")
        assert b"COMPRESS=DEFLATE" not in caps[0]
        lines = c.cmd(b"b", b"COMPRESS DEFLATE")
        assert lines[-1].startswith(b"b NO [COMPRESSIONACTIVE]")
        ok(c.cmd(b"c", b"SELECT INBOX"), b"c")
        c.send(b"d FETCH 1 BODY.PEEK[TEXT]\r\n")
        first = c.line()
        n = int(re.search(rb"\{(\d+)\}$", first).group(1))
        while len(c.buf) < n:
            c._fill()
        assert c.buf[:n] == body
        c.buf = c.buf[n:]
        assert c.until(b"d")[-1].startswith(b"d OK")
        ok(c.cmd(b"e", b"LOGOUT"), b"e")


def test_compress_bad_mechanism_and_garbage(youju):
    c = Client(youju.ports["imap"])
    c.login()
    assert c.cmd(b"a", b"COMPRESS GZIP")[-1].startswith(b"a BAD")
    assert c.cmd(b"b", b"COMPRESS DEFLATE")[-1] == b"b OK DEFLATE active"
    c.s.sendall(b"\xff" * 64 + b"\r\n")      # not a deflate stream
    c.s.settimeout(5)
    assert c.s.recv(100) == b""               # the server hangs up
    # and goes on serving others
    c2 = Client(youju.ports["imap"])
    c2.login()


def test_compress_idle_parks_and_wakes(youju_with):
    y = youju_with(session_park_delay="0")
    c = compressed_session(y)
    ok(c.cmd(b"a", b"SELECT INBOX"), b"a")
    c.send(b"b IDLE\r\n")
    assert c.line().startswith(b"+")
    time.sleep(1.5)                           # parked, zlib state compacted
    deliver(y, make_msg("wake"))
    c.s.settimeout(10)
    assert c.line() == b"* 1 EXISTS"
    c.send(b"DONE\r\n")
    assert c.until(b"b")[-1].startswith(b"b OK")
    # history from before the parking is still good for back-references
    for tag in (b"c", b"d", b"e"):
        ok(c.cmd(tag, b"SELECT INBOX"), tag)
    lines = ok(c.cmd(b"f", b"FETCH 1 (ENVELOPE)"), b"f")
    assert b"wake" in lines[0]


def test_objectid(youju):
    deliver(youju, make_msg("o1"), make_msg("o2"))
    c = Client(youju.ports["imap"])
    caps = c.login()[-1]
    assert b"OBJECTID" in caps
    lines = ok(c.cmd(b"a", b"CREATE Projects"), b"a")
    created = re.search(rb"\[MAILBOXID \(([A-Za-z0-9_-]+)\)\]", lines[-1]).group(1)
    lines = ok(c.cmd(b"b", b"STATUS Projects (MAILBOXID)"), b"b")
    assert b"MAILBOXID (" + created + b")" in lines[0]
    ok(c.cmd(b"b2", b"RENAME Projects Work"), b"b2")
    lines = ok(c.cmd(b"b3", b"STATUS Work (MAILBOXID)"), b"b3")
    assert b"MAILBOXID (" + created + b")" in lines[0]
    lines = ok(c.cmd(b"c", b"SELECT INBOX"), b"c")
    inbox = re.search(rb"\[MAILBOXID \(([A-Za-z0-9_-]+)\)\]", b"\n".join(lines)).group(1)
    assert inbox != created
    lines = ok(c.cmd(b"d", b"FETCH 1:2 (EMAILID THREADID)"), b"d")
    ids = [re.search(rb"EMAILID \(([A-Za-z0-9_-]{1,255})\)", x).group(1) for x in lines[:2]]
    assert ids[0] != ids[1]
    # two unrelated messages: two threads
    threads = [re.search(rb"THREADID \((T[0-9a-f]+)\)", x).group(1) for x in lines[:2]]
    assert threads[0] != threads[1]
    lines = ok(c.cmd(b"e", b"SEARCH EMAILID " + ids[1]), b"e")
    assert lines[0] == b"* SEARCH 2"
    lines = ok(c.cmd(b"f", b"SEARCH THREADID T0"), b"f")
    assert lines[0] == b"* SEARCH"
    lines = ok(c.cmd(b"g", b"LIST \"\" \"*\" RETURN (STATUS (MAILBOXID))"), b"g")
    assert any(b"MAILBOXID (" + inbox + b")" in x for x in lines)
    c.cmd(b"h", b"LOGOUT")

    youju.restart()
    c = Client(youju.ports["imap"])
    c.login()
    lines = ok(c.cmd(b"a", b"SELECT INBOX"), b"a")
    assert b"[MAILBOXID (" + inbox + b")]" in b"\n".join(lines)
    lines = ok(c.cmd(b"b", b"FETCH 1:2 (EMAILID THREADID)"), b"b")
    assert [re.search(rb"EMAILID \(([^)]+)\)", x).group(1) for x in lines[:2]] == ids
    assert [re.search(rb"THREADID \(([^)]+)\)", x).group(1) for x in lines[:2]] == threads


def thread_of(c, tag, seqs):
    lines = ok(c.cmd(tag, b"FETCH %s (THREADID)" % seqs), tag)
    return [re.search(rb"THREADID \((T[0-9a-f]+)\)", x).group(1) for x in lines[:-1]]


def test_threadid(youju):
    """RFC 8474 THREADID: the messages of one conversation in one account
    share a thread, found at delivery and APPEND from Message-ID,
    In-Reply-To and References; copies keep it; another account's copy
    of the same mail has its own."""
    youju.add_account("bob@example.test", "secret-bob")
    deliver(youju, make_msg("t1"),
            make_msg("t2", extra=b"In-Reply-To: <t1@example.org>\r\n"),
            make_msg("t3"),
            # a reply whose References name the root and t2
            make_msg("t4", extra=b"References: <t1@example.org>\r\n <t2@example.org>\r\n"))
    c = Client(youju.ports["imap"])
    c.login()
    ok(c.cmd(b"a", b"SELECT INBOX"), b"a")
    t = thread_of(c, b"b", b"1:4")
    assert t[0] == t[1] == t[3] and t[2] != t[0]
    # APPEND: a reply to t3 (quoted local part, as RFC 5256 normalizes),
    # then a message known only by being referred to earlier (t4's root)
    msg = (b'From: a@example.org\r\nSubject: Re: t3\r\nMessage-ID: <t5@example.org>\r\n'
           b'In-Reply-To: <"t3"@example.org>\r\n\r\nHi\r\n')
    ok(c.cmd(b"c", b"APPEND INBOX {%d+}\r\n" % len(msg) + msg), b"c")
    msg2 = b"From: a@example.org\r\nSubject: none\r\n\r\nNo ids at all\r\n"
    ok(c.cmd(b"d", b"APPEND INBOX {%d+}\r\n" % len(msg2) + msg2), b"d")
    msg3 = b"From: a@example.org\r\nMessage-ID: <t2@example.org>\r\n\r\nagain\r\n"
    ok(c.cmd(b"d2", b"APPEND INBOX {%d+}\r\n" % len(msg3) + msg3), b"d2")
    t = thread_of(c, b"e", b"1:7")
    assert t[4] == t[2]                        # t5 joins t3's thread
    assert t[5] not in t[:5]                   # no ids: a thread of its own
    assert t[6] == t[0]                        # the same Message-ID again
    lines = ok(c.cmd(b"f", b"SEARCH THREADID " + t[0]), b"f")
    assert lines[0] == b"* SEARCH 1 2 4 7"
    # a copy keeps its thread
    ok(c.cmd(b"g", b"COPY 2 Archive"), b"g")
    ok(c.cmd(b"h", b"SELECT Archive"), b"h")
    assert thread_of(c, b"i", b"1") == [t[0]]
    # the same conversation in another account is another thread
    deliver_to = Client(youju.ports["imap"])
    lines = deliver_to.cmd(b"l", b"LOGIN bob@example.test secret-bob")
    assert lines[-1].startswith(b"l OK")
    bob = "bob@example.test"
    with smtplib.SMTP("127.0.0.1", youju.ports["smtp"]) as smtp:
        smtp.sendmail("x@example.org", [bob], make_msg("t1"))
    ok(deliver_to.cmd(b"s", b"SELECT INBOX"), b"s")
    assert thread_of(deliver_to, b"t", b"1")[0] not in t


def test_threadid_large(youju):
    """A delivered message too large to be read back whole for its
    summary (over 8 MiB) still finds its thread, from its header."""
    body = (b"x" * 998 + b"\r\n") * (9 * 1024)
    deliver(youju, make_msg("big1"),
            make_msg("big2", body=body, extra=b"In-Reply-To: <big1@example.org>\r\n"),
            make_msg("big3"))
    c = Client(youju.ports["imap"])
    c.login()
    ok(c.cmd(b"a", b"SELECT INBOX"), b"a")
    t = thread_of(c, b"b", b"1:3")
    assert t[0] == t[1] and t[2] != t[0]
    lines = ok(c.cmd(b"c", b"FETCH 2 (RFC822.SIZE ENVELOPE)"), b"c")
    assert b"big2" in lines[0], lines[0]


def test_savedate(youju):
    c = Client(youju.ports["imap"])
    caps = c.login()[-1]
    assert b"SAVEDATE" in caps
    msg = make_msg("old")
    c.send(b'a APPEND INBOX "01-Jan-2001 10:00:00 +0000" {%d}\r\n' % len(msg))
    assert c.line().startswith(b"+")
    c.send(msg + b"\r\n")
    ok(c.until(b"a"), b"a")
    ok(c.cmd(b"b", b"SELECT INBOX"), b"b")
    lines = ok(c.cmd(b"c", b"FETCH 1 (INTERNALDATE SAVEDATE)"), b"c")
    assert b'INTERNALDATE " 1-Jan-2001 10:00:00 +0000"' in lines[0]
    saved = re.search(rb'SAVEDATE "([^"]+)"', lines[0]).group(1)
    day = time.gmtime()
    assert saved.strip().startswith(b"%d-%s-%d" % (day.tm_mday, time.strftime("%b", day).encode(),
                                                   day.tm_year))
    today = time.strftime("%d-%b-%Y", time.gmtime()).encode()
    assert ok(c.cmd(b"d", b"SEARCH SAVEDON " + today), b"d")[0] == b"* SEARCH 1"
    assert ok(c.cmd(b"e", b"SEARCH SAVEDSINCE 1-Jan-2020"), b"e")[0] == b"* SEARCH 1"
    assert ok(c.cmd(b"f", b"SEARCH SAVEDBEFORE 1-Jan-2020"), b"f")[0] == b"* SEARCH"
    assert ok(c.cmd(b"g", b"SEARCH BEFORE 1-Jan-2020"), b"g")[0] == b"* SEARCH 1"
    assert ok(c.cmd(b"h", b"SEARCH SAVEDATESUPPORTED"), b"h")[0] == b"* SEARCH 1"


def test_preview(youju):
    html = (b"Content-Type: text/html; charset=utf-8\r\n")
    deliver(youju, make_msg("p1", b"  Dear   Alice,\r\n\r\nthe report is ready.\r\n"),
            make_msg("p2", b"<html><style>b{}</style><body><p>Caf&eacute; &amp; <b>tea</b>"
                           b"</p></body></html>\r\n", html))
    c = Client(youju.ports["imap"])
    caps = c.login()[-1]
    assert b"PREVIEW" in caps
    ok(c.cmd(b"a", b"SELECT INBOX"), b"a")
    lines = ok(c.cmd(b"b", b"FETCH 1:2 (PREVIEW)"), b"b")
    assert b'PREVIEW "Dear Alice, the report is ready."' in lines[0]
    assert b'PREVIEW "Caf&eacute; & tea"' in lines[1]
    lines = ok(c.cmd(b"c", b"FETCH 1 (PREVIEW (LAZY))"), b"c")
    assert b'PREVIEW "Dear Alice, the report is ready."' in lines[0]
    # no \Seen from a preview
    lines = ok(c.cmd(b"d", b"FETCH 1 (FLAGS)"), b"d")
    assert b"\\Seen" not in lines[0]


def test_imap4rev2_and_utf8(youju):
    deliver(youju, make_msg("r1"))
    c = Client(youju.ports["imap"])
    c.login()
    lines = ok(c.cmd(b"a", b"ENABLE IMAP4rev2"), b"a")
    assert lines[0] == b"* ENABLED IMAP4rev2"
    lines = ok(c.cmd(b"b", b"SELECT INBOX"), b"b")
    assert not any(b"RECENT" in x or b"[UNSEEN" in x for x in lines)
    # RFC 9051 6.3.2: the mailbox's LIST response, attributes accurate
    assert b'* LIST (\\HasNoChildren) "/" INBOX' in lines
    ok(c.cmd(b"b1", b"CREATE Sent/2026"), b"b1")
    lines = ok(c.cmd(b"b2", b"EXAMINE Sent"), b"b2")
    assert b'* LIST (\\HasChildren \\Sent) "/" "Sent"' in lines
    ok(c.cmd(b"b3", b"SELECT INBOX"), b"b3")
    lines = ok(c.cmd(b"c", b"SEARCH ALL"), b"c")
    assert lines[0] == b'* ESEARCH (TAG "c") ALL 1'
    lines = ok(c.cmd(b"d", b"UID SEARCH ALL"), b"d")
    assert lines[0] == b'* ESEARCH (TAG "d") UID ALL 1'
    # mailbox names in UTF-8
    ok(c.cmd(b"e", "CREATE \"Caf\u00e9\"".encode()), b"e")
    lines = ok(c.cmd(b"f", b'LIST "" "Caf*"'), b"f")
    assert "\"Caf\u00e9\"".encode() in lines[0]
    # CREATE makes the superior names; a deleted one with children stays
    # as a level of hierarchy that is no mailbox
    ok(c.cmd(b"g", b'CREATE "x/y/z"'), b"g")
    ok(c.cmd(b"g2", b'DELETE "x"'), b"g2")
    lines = ok(c.cmd(b"h", b'LIST "" "%"'), b"h")
    assert b'* LIST (\\NonExistent \\HasChildren) "/" "x"' in lines
    assert not any(b'"x/y' in x for x in lines)
    lines = ok(c.cmd(b"i", b'LIST "" "x/*"'), b"i")
    assert lines[:-1] == [b'* LIST (\\HasChildren) "/" "x/y"',
                          b'* LIST (\\HasNoChildren) "/" "x/y/z"']


def test_list_noselect_levels_in_rfc3501_list(youju):
    c = Client(youju.ports["imap"])
    c.login()
    ok(c.cmd(b"a", b'CREATE "p/q"'), b"a")
    ok(c.cmd(b"a2", b'DELETE "p"'), b"a2")
    lines = ok(c.cmd(b"b", b'LIST "" "p%"'), b"b")
    assert lines[:-1] == [b'* LIST (\\Noselect \\HasChildren) "/" "p"']


def test_create_parents_and_delete_with_children(youju):
    """RFC 3501 6.3.3 and 6.3.4, with the exact replies."""
    c = Client(youju.ports["imap"])
    c.login()
    ok(c.cmd(b"a", b"CREATE foo/bar/zap"), b"a")
    lines = ok(c.cmd(b"b", b'LIST "" "foo*"'), b"b")
    assert lines[:-1] == [b'* LIST (\\HasChildren) "/" "foo"',
                          b'* LIST (\\HasChildren) "/" "foo/bar"',
                          b'* LIST (\\HasNoChildren) "/" "foo/bar/zap"']
    for name in (b"foo", b"foo/bar"):               # each level is a real mailbox
        assert ok(c.cmd(b"c", b"SELECT " + name), b"c")[-1] == b"c OK [READ-WRITE] SELECT completed"
    ok(c.cmd(b"c2", b"UNSELECT"), b"c2")
    # a trailing separator: the name is made without it
    ok(c.cmd(b"d", b"CREATE owatagusiam/"), b"d")
    lines = ok(c.cmd(b"e", b'LIST "" "owatagusiam*"'), b"e")
    assert lines[:-1] == [b'* LIST (\\HasNoChildren) "/" "owatagusiam"']
    assert c.cmd(b"f", b"CREATE owatagusiam")[-1].startswith(b"f NO [ALREADYEXISTS]")
    ok(c.cmd(b"f2", b"CREATE owatagusiam/blurdybloop"), b"f2")
    assert c.cmd(b"f3", b"CREATE a//b")[-1].startswith(b"f3 NO [CANNOT]")
    assert c.cmd(b"f4", b'CREATE "/a"')[-1].startswith(b"f4 NO [CANNOT]")
    # INBOX/child: INBOX is there already
    ok(c.cmd(b"f5", b"CREATE INBOX/Lists"), b"f5")
    # DELETE of a mailbox with children: its messages go, the name stays
    # as \Noselect while the children are there (RFC 3501 6.3.4)
    deliver_to = c.cmd(b"g", b"APPEND foo {5+}\r\nHi\r\n")
    assert deliver_to[-1].startswith(b"g OK"), deliver_to
    ok(c.cmd(b"h", b"DELETE foo"), b"h")
    assert c.cmd(b"i", b"DELETE foo") == [
        b"i NO [NONEXISTENT] Name has inferior hierarchical names and is no mailbox"]
    lines = ok(c.cmd(b"j", b'LIST "" "foo*"'), b"j")
    assert lines[:-1] == [b'* LIST (\\HasChildren) "/" "foo/bar"',
                          b'* LIST (\\HasNoChildren) "/" "foo/bar/zap"',
                          b'* LIST (\\Noselect \\HasChildren) "/" "foo"']
    assert c.cmd(b"k", b"SELECT foo")[-1].startswith(b"k NO [NONEXISTENT]")
    # CREATE makes it a mailbox again, empty
    ok(c.cmd(b"l", b"CREATE foo"), b"l")
    assert b"* 0 EXISTS" in ok(c.cmd(b"m", b"SELECT foo"), b"m")
    ok(c.cmd(b"n", b"LOGOUT"), b"n")


def test_utf8_accept_names_and_append(youju):
    c = Client(youju.ports["imap"])
    c.login()
    ok(c.cmd(b"a", b"ENABLE UTF8=ACCEPT"), b"a")
    ok(c.cmd(b"b", b'CREATE "R&D"'), b"b")           # raw & as Thunderbird sends it
    lines = ok(c.cmd(b"c", b'LIST "" "R*"'), b"c")
    assert lines[0].endswith(b'"R&D"')
    msg = make_msg("utf8").replace(b"Subject: utf8", "Subject: Gr\u00fc\u00dfe".encode())
    c.send(b"d APPEND INBOX UTF8 (~{%d}\r\n" % len(msg))
    assert c.line().startswith(b"+")
    c.send(msg + b")\r\n")
    ok(c.until(b"d"), b"d")
    ok(c.cmd(b"e", b"SELECT INBOX"), b"e")
    lines = ok(c.cmd(b"f", b"FETCH 1 (ENVELOPE)"), b"f")
    assert "Gr\u00fc\u00dfe".encode() in lines[0]


def test_account_capability_switches(youju):
    youju.cli("account", "set", USER, "imap_disable", "condstore, QRESYNC,compress=deflate")
    c = Client(youju.ports["imap"])
    caps = c.login()[-1]
    assert b"CONDSTORE" not in caps and b"QRESYNC" not in caps
    assert b"COMPRESS" not in caps and b"IDLE" in caps
    lines = ok(c.cmd(b"a", b"CAPABILITY"), b"a")
    assert b"CONDSTORE" not in lines[0] and b"UIDONLY" not in lines[0]
    lines = ok(c.cmd(b"b", b"ENABLE CONDSTORE QRESYNC UTF8=ACCEPT"), b"b")
    assert lines[0] == b"* ENABLED UTF8=ACCEPT"
    assert c.cmd(b"c", b"COMPRESS DEFLATE")[-1].startswith(b"c BAD")
    # what the client says it is changes nothing (RFC 2971)
    ok(c.cmd(b"d", b'ID ("name" "Outlook")'), b"d")
    lines = ok(c.cmd(b"e", b"CAPABILITY"), b"e")
    assert b"IDLE" in lines[0] and b"CONDSTORE" not in lines[0]
    # another account keeps everything
    youju.add_account("bob@example.test", "secret-bob")
    c2 = Client(youju.ports["imap"])
    lines = c2.cmd(b"l", b"LOGIN bob@example.test secret-bob")
    assert b"CONDSTORE" in lines[-1] and b"COMPRESS=DEFLATE" in lines[-1]
    youju.cli("account", "set", USER, "imap_disable", "")
    c3 = Client(youju.ports["imap"])
    assert b"CONDSTORE" in c3.login()[-1]
    bad = youju.cli("account", "set", USER, "imap_disable", "a;b", check=False)
    assert bad.returncode != 0


def test_switched_off_capabilities_are_not_implemented(youju):
    """An extension the account switched off is refused as a server
    without it would: BAD for its commands and for the arguments it adds
    to others; its response codes are not sent."""
    deliver(youju, make_msg("x1"), make_msg("x2"))
    off = ("OBJECTID,SAVEDATE,PREVIEW,ESORT,PARTIAL,SEARCHRES,ESEARCH,STATUS=SIZE,"
           "LIST-EXTENDED,LIST-STATUS,SORT=DISPLAY,THREAD=REFERENCES,QUOTA,UIDPLUS,"
           "CONDSTORE,QRESYNC,MOVE,UNSELECT,NAMESPACE,SPECIAL-USE,IMAP4rev2")
    youju.cli("account", "set", USER, "imap_disable", off)
    c = Client(youju.ports["imap"])
    caps = c.login()[-1]
    for cap in off.split(","):
        assert (b" " + cap.encode() + b" ") not in caps + b" ", cap
    assert b"THREAD=ORDEREDSUBJECT" in caps and b" SORT " in caps
    lines = ok(c.cmd(b"s", b"SELECT INBOX"), b"s")
    assert not any(b"HIGHESTMODSEQ" in x or b"MAILBOXID" in x for x in lines)
    refused = [
        (b"FETCH 1 (EMAILID)", b"BAD FETCH: OBJECTID is not supported"),
        (b"FETCH 1 (FLAGS THREADID)", b"BAD FETCH: OBJECTID is not supported"),
        (b"FETCH 1 (SAVEDATE)", b"BAD FETCH: SAVEDATE is not supported"),
        (b"FETCH 1 (PREVIEW)", b"BAD FETCH: PREVIEW is not supported"),
        (b"FETCH 1 (MODSEQ)", b"BAD FETCH: CONDSTORE is not supported"),
        (b"FETCH 1:* (FLAGS) (CHANGEDSINCE 1)", b"BAD FETCH: CONDSTORE is not supported"),
        (b"STORE 1 (UNCHANGEDSINCE 5) +FLAGS (x)", b"BAD STORE: CONDSTORE is not supported"),
        (b"SEARCH MODSEQ 1", b"BAD SEARCH: CONDSTORE is not supported"),
        (b"SEARCH NOT (EMAILID M1)", b"BAD SEARCH: OBJECTID is not supported"),
        (b"SEARCH SAVEDBEFORE 1-Jan-2030", b"BAD SEARCH: SAVEDATE is not supported"),
        (b"SEARCH RETURN (COUNT) ALL", b"BAD SEARCH: ESEARCH is not supported"),
        (b"SEARCH UID $", b"BAD SEARCH: SEARCHRES is not supported"),
        (b"SORT RETURN (ALL) (DATE) UTF-8 ALL", b"BAD SORT: ESORT is not supported"),
        (b"SORT (DISPLAYFROM) UTF-8 ALL", b"BAD SORT: SORT=DISPLAY is not supported"),
        (b"THREAD REFERENCES UTF-8 ALL", b"BAD THREAD: THREAD=REFERENCES is not supported"),
        (b"STATUS INBOX (SIZE)", b"BAD STATUS: STATUS=SIZE is not supported"),
        (b"STATUS INBOX (HIGHESTMODSEQ)", b"BAD STATUS: CONDSTORE is not supported"),
        (b"STATUS INBOX (MAILBOXID)", b"BAD STATUS: OBJECTID is not supported"),
        (b"STATUS INBOX (DELETED-STORAGE)", b"BAD STATUS: QUOTA is not supported"),
        (b'LIST (SUBSCRIBED) "" "*"', b"BAD LIST: LIST-EXTENDED is not supported"),
        (b'LIST "" ("a" "b")', b"BAD LIST: LIST-EXTENDED is not supported"),
        (b'LIST "" "*" RETURN (STATUS (MESSAGES))', b"BAD LIST: LIST-STATUS is not supported"),
        (b"UID EXPUNGE 1", b"BAD UID EXPUNGE: UIDPLUS is not supported"),
        (b"MOVE 1 Trash", b"BAD MOVE is not supported"),
        (b"UID MOVE 1 Trash", b"BAD MOVE is not supported"),
        (b"UNSELECT", b"BAD UNSELECT is not supported"),
        (b"NAMESPACE", b"BAD NAMESPACE is not supported"),
        (b'GETQUOTA ""', b"BAD GETQUOTA is not supported"),
        (b"GETQUOTAROOT INBOX", b"BAD GETQUOTAROOT is not supported"),
        (b'SETQUOTA "" (STORAGE 1)', b"BAD SETQUOTA is not supported"),
        (b"SELECT INBOX (CONDSTORE)", b"BAD SELECT: CONDSTORE is not supported"),
        (b"EXAMINE INBOX (QRESYNC (1 1))", b"BAD EXAMINE: QRESYNC is not supported"),
    ]
    for i, (command, reply) in enumerate(refused):
        tag = b"r%d" % i
        assert c.cmd(tag, command) == [tag + b" " + reply], command
        ok(c.cmd(b"n", b"NOOP"), b"n")   # not a run of bad commands
    lines = ok(c.cmd(b"e", b"ENABLE CONDSTORE QRESYNC IMAP4rev2"), b"e")
    assert lines[0] == b"* ENABLED"
    # what stays on works
    assert ok(c.cmd(b"t", b"THREAD ORDEREDSUBJECT UTF-8 ALL"), b"t")[0] == b"* THREAD (1)(2)"
    assert ok(c.cmd(b"u", b"SORT (ARRIVAL) UTF-8 ALL"), b"u")[0] == b"* SORT 1 2"
    assert ok(c.cmd(b"v", b"CREATE Box"), b"v")[-1] == b"v OK CREATE completed"
    ok(c.cmd(b"w", b"LOGOUT"), b"w")


def ids_and_dates(y):
    c = Client(y.ports["imap"])
    caps = c.login()[-1]
    lines = ok(c.cmd(b"a", b"SELECT INBOX"), b"a")
    mbid = re.search(rb"\[MAILBOXID \(([^)]+)\)\]", b"\n".join(lines)).group(1)
    lines = ok(c.cmd(b"b", b"FETCH 1:* (EMAILID SAVEDATE THREADID)"), b"b")
    c.cmd(b"c", b"LOGOUT")
    return caps, mbid, [x for x in lines if x.startswith(b"* ")]


def test_ids_dates_and_switches_survive_store_copy(youju_factory, pg_dsn):
    y = youju_factory()
    y.init()
    if getattr(y, "pg_dsn", None) is not None:
        pytest.skip("copies from a SQLite store")
    y.add_account(USER, PASSWORD)
    y.cli("account", "set", USER, "imap_disable", "QRESYNC")
    y.start()
    deliver(y, make_msg("c1"), make_msg("c2"))
    before = ids_and_dates(y)
    assert b"QRESYNC" not in before[0]
    y.stop()
    y.cli("store", "copy", "--to", pg_dsn)
    with open(os.path.join(y.data_dir, "youju.conf"), "a") as f:
        f.write(f"store_driver = postgresql\nstore_dsn = {pg_dsn}\n")
    y.start()
    assert ids_and_dates(y) == before


def store_sql(y, query):
    """Runs SQL on the running youjud's store, on either driver: here, to
    stand for the maintenance job that compacts old expunge records."""
    if getattr(y, "pg_dsn", None) is not None:
        cmd = ["psql", y.pg_dsn, "-q", "-v", "ON_ERROR_STOP=1", "-c", query]
    else:
        cmd = ["sqlite3", "-batch", "-cmd", ".timeout 10000",
               os.path.join(y.data_dir, "youju.db"), query]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def select_state(lines):
    """UIDVALIDITY and HIGHESTMODSEQ of a SELECT's responses."""
    text = b"\n".join(lines)
    return (int(re.search(rb"UIDVALIDITY (\d+)", text).group(1)),
            int(re.search(rb"HIGHESTMODSEQ (\d+)", text).group(1)))


def test_qresync_sequence_match_data(youju):
    """RFC 7162 3.2.5.2: once the expunge records are compacted, the
    client's (message numbers, UIDs) pairs keep VANISHED (EARLIER) from
    naming what the client already knew was gone."""
    deliver(youju, *[make_msg("s%d" % i) for i in range(1, 11)])
    other = Client(youju.ports["imap"])
    other.login()
    ok(other.cmd(b"a", b"SELECT INBOX"), b"a")
    ok(other.cmd(b"b", b"STORE 1:2 +FLAGS.SILENT (\\Deleted)"), b"b")
    ok(other.cmd(b"c", b"EXPUNGE"), b"c")
    c = Client(youju.ports["imap"])
    c.login()
    ok(c.cmd(b"a", b"ENABLE QRESYNC"), b"a")
    uidvalidity, modseq = select_state(ok(c.cmd(b"b", b"SELECT INBOX"), b"b"))
    ok(c.cmd(b"c", b"UNSELECT"), b"c")          # the client knew UIDs 3:10 as 1:8
    ok(other.cmd(b"d", b"UID STORE 5,9 +FLAGS.SILENT (\\Deleted)"), b"d")
    ok(other.cmd(b"e", b"EXPUNGE"), b"e")
    sel = b"SELECT INBOX (QRESYNC (%d %d " % (uidvalidity, modseq)

    def vanished(params):
        """The VANISHED responses of a SELECT (QRESYNC (uv modseq params))."""
        lines = ok(c.cmd(b"s", sel + params + b"))"), b"s")
        ok(c.cmd(b"u", b"UNSELECT"), b"u")
        return [x for x in lines if b"VANISHED" in x]

    # with the records there, the answer is exact
    assert vanished(b"1:10") == [b"* VANISHED (EARLIER) 5,9"]
    store_sql(youju, "UPDATE mailboxes SET vanished_floor = highestmodseq;"
                     " DELETE FROM vanished;")
    cases = [
        # without them: every UID the mailbox lacks
        (b"1:10", b"1:2,5,9"),
        # message 2 was UID 4 and still is: nothing up to UID 4 went
        (b"1:10 (1:3 3:5)", b"5,9"),
        # a pair that does not match (number 3 is UID 6 now) gives no more
        (b"1:10 (1,3 3,5)", b"5,9"),
        # with the known UIDs as well
        (b"3:10 (1:8 3:10)", b"5,9"),
        # pairs out of order end the walk: only what is before them counts
        (b"1:10 (3,1 5,3)", b"1:2,5,9"),
    ]
    for params, want in cases:
        assert vanished(params) == [b"* VANISHED (EARLIER) " + want], params


def test_response_syntax_exact(youju):
    """The exact bytes of the untagged responses, as the formal syntax
    of RFC 9051 (and RFC 3501, 4731, 7162, 8474, 8514, 8970) has them."""
    deliver(youju, make_msg("syn", b"Body\r\n", b"Date: Tue, 1 Dec 2026 10:00:00 +0100\r\n"))
    c = Client(youju.ports["imap"])
    c.login()
    ok(c.cmd(b"k", b"CREATE Work"), b"k")
    lines = ok(c.cmd(b"a", b"SELECT INBOX"), b"a")
    uv, ms = select_state(lines)
    mbid = re.search(rb"MAILBOXID \(([A-Za-z0-9_-]+)\)", b"\n".join(lines)).group(1)
    assert lines == [
        b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)",
        b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft \\*)] Flags permitted",
        b"* 1 EXISTS", b"* 1 RECENT", b"* OK [UNSEEN 1] First unseen",
        b"* OK [UIDVALIDITY %d] UIDs valid" % uv, b"* OK [UIDNEXT 2] Predicted next UID",
        b"* OK [HIGHESTMODSEQ %d] Highest" % ms, b"* OK [MAILBOXID (%s)] Ok" % mbid,
        b"a OK [READ-WRITE] SELECT completed"]
    # a keyword joins FLAGS and PERMANENTFLAGS at the next SELECT
    ok(c.cmd(b"b", b"STORE 1 +FLAGS.SILENT ($Forwarded)"), b"b")
    lines = ok(c.cmd(b"c", b"EXAMINE INBOX"), b"c")
    assert lines[:3] == [
        b"* OK [CLOSED] Previous mailbox closed",
        b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Forwarded)",
        b"* OK [PERMANENTFLAGS ()] Flags permitted"]
    lines = ok(c.cmd(b"d", b"FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE UID MODSEQ THREADID"
                           b" BINARY.SIZE[1] PREVIEW)"), b"d")
    # MODSEQ turns CONDSTORE on: the selected mailbox's HIGHESTMODSEQ first (RFC 7162 3.1)
    assert re.fullmatch(rb"\* OK \[HIGHESTMODSEQ \d+\] Highest", lines.pop(0)), lines
    assert re.fullmatch(rb'\* 1 FETCH \(FLAGS \(\$Forwarded\) INTERNALDATE "[ 0-3]\d-[A-Z][a-z]{2}-'
                        rb'\d{4} \d\d:\d\d:\d\d [+-]\d{4}" RFC822\.SIZE \d+ UID 1 MODSEQ \(\d+\)'
                        rb' THREADID \(T[0-9a-f]+\) BINARY\.SIZE\[1\] 6 PREVIEW "Body"\)', lines[0]), lines[0]
    lines = ok(c.cmd(b"e", b"FETCH 1 (ENVELOPE)"), b"e")
    assert lines[0] == (b'* 1 FETCH (ENVELOPE ("Tue, 1 Dec 2026 10:00:00 +0100" "syn"'
                        b' (("Bob" NIL "bob" "example.org")) (("Bob" NIL "bob" "example.org"))'
                        b' (("Bob" NIL "bob" "example.org")) ((NIL NIL "alice" "example.test"))'
                        b' NIL NIL NIL "<syn@example.org>"))')
    lines = ok(c.cmd(b"f", b'LIST "" "W*" RETURN (STATUS (MESSAGES UIDNEXT UNSEEN SIZE))'), b"f")
    assert lines[:-1] == [b'* LIST (\\HasNoChildren) "/" "Work"',
                          b'* STATUS "Work" (MESSAGES 0 UIDNEXT 1 UNSEEN 0 SIZE 0)']
    lines = ok(c.cmd(b"g", b"STATUS INBOX (MESSAGES DELETED RECENT)"), b"g")
    assert lines[0] == b"* STATUS INBOX (MESSAGES 1 DELETED 0 RECENT 0)"
    tag = b"h"
    assert ok(c.cmd(tag, b"UID SEARCH RETURN (COUNT ALL) UNSEEN"), tag)[0] == \
        b'* ESEARCH (TAG "h") UID COUNT 1 ALL 1'
    assert ok(c.cmd(b"i", b"SEARCH RETURN (MIN) DELETED"), b"i")[0] == b'* ESEARCH (TAG "i")'
    assert ok(c.cmd(b"j", b'LIST "" ""'), b"j")[0] == b'* LIST (\\Noselect) "/" ""'
