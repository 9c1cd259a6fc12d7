"""What a delivery parses from a message (its summary and thread ids),
made from the bytes the SMTP session streamed, or read back from the blob
for a message too large to keep in memory: the same answers as for the
same message stored by APPEND, on both store drivers."""

import os
import socket
import sqlite3
import sys

import pytest

from conftest import PASSWORD, STORE_DRIVER, USER
from test_imap import deliver

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import imapxc  # noqa: E402

TESTDATA = os.environ.get("YOUJU_TESTDATA",
                          os.path.join(HERE, "..", "..", "..", "shared", "testdata"))


def login(y):
    c = imapxc.Client(y.ports["imap"])
    c.ok(b"LOGIN %s %s" % (USER.encode(), PASSWORD.encode()))
    return c


def summaries(c, mailbox, count):
    """FETCH of ITEMS for messages 1..count of mailbox, the sequence
    number and THREADID cut off (they differ between the copies)."""
    c.ok(b"EXAMINE " + mailbox)
    lines = c.ok(b"FETCH 1:%d (ENVELOPE BODY BODYSTRUCTURE)" % count)
    assert len(lines) == count
    return [line.split(b" FETCH ", 1)[1] for line in lines]


def summary_rows(y):
    if STORE_DRIVER == "postgresql":
        return None
    con = sqlite3.connect(f"file:{os.path.join(y.data_dir, 'youju.db')}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM summaries").fetchone()[0]
    finally:
        con.close()


def bdat(y, data, chunk=65536):
    """Sends data in BDAT chunks, the last with LAST; the final reply."""
    s = socket.create_connection(("127.0.0.1", y.ports["smtp"]), timeout=30)
    f = s.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            if line[3:4] != b"-":
                return line

    assert reply().startswith(b"220")
    for cmd in (b"EHLO client.example.org", b"MAIL FROM:<bob@example.org>",
                b"RCPT TO:<%s>" % USER.encode()):
        s.sendall(cmd + b"\r\n")
        assert reply().startswith(b"250"), cmd
    for i in range(0, len(data), chunk):
        piece = data[i:i + chunk]
        last = b" LAST" if i + chunk >= len(data) else b""
        s.sendall(b"BDAT %d%s\r\n" % (len(piece), last) + piece)
        r = reply()
        assert r.startswith(b"250"), r
    s.sendall(b"QUIT\r\n")
    s.close()
    return r


def test_corpus_delivered_has_the_summaries_of_its_stored_bytes(youju):
    """Each delivered message's summary is what the bytes stored for it
    give when APPENDed (SMTP itself may change a message: a line end
    added at the end, a Return-Path: removed)."""
    msgs = []
    for rel in imapxc.corpus(TESTDATA):
        with open(os.path.join(TESTDATA, rel), "rb") as f:
            msgs.append(imapxc.canonical(f.read()))
    assert len(msgs) >= 150
    deliver(youju, *msgs)
    # made at delivery, before any FETCH asked for them
    assert summary_rows(youju) in (None, len(msgs))
    c = login(youju)
    c.ok(b"CREATE Appended")
    for uid in youju.uids(USER):
        c.ok(b"APPEND Appended", youju.msg_cat(USER, uid))
    delivered = summaries(c, b"INBOX", len(msgs))
    appended = summaries(c, b"Appended", len(msgs))
    for i, (d, a) in enumerate(zip(delivered, appended)):
        assert d == a, (i, d[:300], a[:300])
    c.close()


def big(tag, size, parent=None):
    """A multipart message of about size bytes, a reply to parent's
    Message-ID if given."""
    head = (b"From: Ann <ann@example.org>\r\nTo: %s\r\nSubject: big %s\r\n"
            b"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%s@example.org>\r\n"
            % (USER.encode(), tag, tag))
    if parent is not None:
        head += b"In-Reply-To: <%s@example.org>\r\n" % parent
    head += (b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
             b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n"
             b"--b1\r\nContent-Type: application/octet-stream; name=\"x.bin\"\r\n"
             b"Content-Disposition: attachment; filename=\"x.bin\"\r\n"
             b"Content-Transfer-Encoding: base64\r\n\r\n")
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2\r\n"
    return head + line * (size // len(line)) + b"--b1--\r\n"


@pytest.mark.parametrize("size", [100 << 10, 400 << 10])
def test_kept_and_read_back_messages_alike(youju, size):
    """100 KiB stays in memory while it streams; 400 KiB is past the
    session's bound and is read back from its blob: same answers as
    APPEND, and a reply finds its parent's thread either way."""
    first, reply = big(b"first", size), big(b"reply", size, parent=b"first")
    deliver(youju, first)
    assert bdat(youju, reply).startswith(b"250")
    assert summary_rows(youju) in (None, 2)
    c = login(youju)
    c.ok(b"CREATE Appended")
    c.ok(b"APPEND Appended", first)
    c.ok(b"APPEND Appended", reply)
    assert summaries(c, b"INBOX", 2) == summaries(c, b"Appended", 2)
    c.ok(b"EXAMINE INBOX")
    threads = [line.split(b"THREADID (", 1)[1].split(b")")[0]
               for line in c.ok(b"FETCH 1:2 (THREADID)")]
    assert threads[0] == threads[1] and threads[0] != b"NIL", threads
    c.close()
