"""IMAP at scale: sessions borrow store connections per command, IDLE
holds none, views catch up from the store's changes, bodies stream from
the blob, ENVELOPE and BODYSTRUCTURE come from stored summaries."""

import os
import re
import smtplib
import sqlite3
import threading
import time

from conftest import PASSWORD, USER, STORE_DRIVER, sqlite_only
from test_imap import Raw, deliver, make_msg

BOB = "bob@example.test"
BOB_PASSWORD = "secret-bob"


def login(y, user=USER, password=PASSWORD):
    r = Raw(y.ports["imap"])
    r.line()
    assert r.cmd(b"a", f"LOGIN {user} {password}".encode())[-1].startswith(b"a OK")
    return r


def literal_fetch(r, tag, text):
    """Sends a FETCH and returns (the literal's bytes, the lines)."""
    r.send(tag + b" " + text + b"\r\n")
    first = r.line()
    m = re.search(rb"\{(\d+)\}$", first)
    assert m, first
    n = int(m.group(1))
    while len(r.buf) < n:
        d = r.s.recv(1 << 20)
        assert d
        r.buf += d
    data, r.buf = r.buf[:n], r.buf[n:]
    return data, [first] + r.until(tag)


def db_connections(y):
    """Open descriptors of youjud on its SQLite database file."""
    db = os.path.realpath(os.path.join(y.data_dir, "youju.db"))
    n = 0
    for fd in os.listdir(f"/proc/{y.proc.pid}/fd"):
        try:
            if os.readlink(f"/proc/{y.proc.pid}/fd/{fd}") == db:
                n += 1
        except OSError:
            pass
    return n


def test_fifty_idle_sessions_hold_no_store_connection_and_all_wake(youju):
    sessions = []
    for _ in range(50):
        r = login(youju)
        r.cmd(b"b", b"SELECT INBOX")
        r.send(b"c IDLE\r\n")
        assert r.line().startswith(b"+")
        sessions.append(r)
    time.sleep(1.5)     # parked; pooled connections are all that is left
    if STORE_DRIVER != "postgresql":
        # The pool keeps at most 32 idle connections, whatever the
        # number of sessions; a connection per session would be 50.
        assert db_connections(youju) <= 32
    start = time.monotonic()
    deliver(youju, make_msg("wake all"))
    for r in sessions:
        assert r.line() == b"* 1 EXISTS"
    assert time.monotonic() - start < 5
    for r in sessions:
        r.send(b"DONE\r\n")
        assert r.until(b"c")[-1].startswith(b"c OK")
        assert r.cmd(b"d", b"FETCH 1 (UID FLAGS)")[-1].startswith(b"d OK")
        r.s.close()


def test_view_catches_up_with_flags_expunges_and_new_mail_at_once(youju):
    deliver(youju, *[make_msg(f"m{i}") for i in range(1, 6)])
    a = login(youju)
    a.cmd(b"b", b"SELECT INBOX")
    b = login(youju)
    b.cmd(b"b", b"SELECT INBOX")
    b.cmd(b"c", b"STORE 2 +FLAGS.SILENT (\\Flagged)")
    b.cmd(b"d", b"STORE 3 +FLAGS.SILENT (\\Deleted)")
    b.cmd(b"e", b"EXPUNGE")
    deliver(youju, make_msg("m6"), make_msg("m7"))
    lines = a.cmd(b"f", b"NOOP")
    assert b"* 3 EXPUNGE" in lines
    # a selected first: its messages are \\Recent, and so is the new mail
    assert any(re.match(rb"\* 2 FETCH \(UID 2 FLAGS \(\\Flagged \\Recent\)", x)
               for x in lines), lines
    assert b"* 6 EXISTS" in lines and b"* 6 RECENT" in lines
    lines = a.cmd(b"g", b"FETCH 1:* (UID)")
    uids = [int(m.group(1)) for m in (re.search(rb"UID (\d+)", x) for x in lines) if m]
    assert uids == [1, 2, 4, 5, 6, 7]
    # A second session change after that one is still seen.
    b.cmd(b"h", b"STORE 1 +FLAGS.SILENT (\\Answered)")
    lines = a.cmd(b"i", b"NOOP")
    assert any(re.match(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Answered \\Recent\)", x)
               for x in lines), lines


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(key)


def test_twenty_megabyte_fetch_streams_with_bounded_memory(youju):
    body = b"".join(b"%07d streamed line of a large message body.....\r\n" % i
                    for i in range(400000))
    msg = make_msg("big", body=body)
    assert len(msg) > 20 * 1000 * 1000
    deliver(youju, msg)
    r = login(youju)
    r.cmd(b"b", b"SELECT INBOX")
    lines = r.cmd(b"c", b"FETCH 1 (RFC822.SIZE)")
    size = int(re.search(rb"RFC822.SIZE (\d+)", lines[0]).group(1))
    pid = youju.proc.pid
    # Reset the peak RSS, so that it tells what the FETCH alone took.
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
    before = status_kib(pid, "VmRSS")
    data, lines = literal_fetch(r, b"d", b"FETCH 1 (BODY.PEEK[])")
    peak = status_kib(pid, "VmHWM")
    assert lines[-1].startswith(b"d OK")
    assert len(data) == size and data.endswith(msg)
    # The whole message in memory would be 20 MB and more.
    assert peak - before < 8 * 1024, (before, peak)
    part, lines = literal_fetch(r, b"e", b"FETCH 1 (BODY.PEEK[]<1000.5000>)")
    assert part == data[1000:6000]
    assert b"BODY[]<1000>" in lines[0]


def spool_files(y):
    """The files youjud holds open that were unlinked (its APPEND spools)."""
    fd_dir = f"/proc/{y.proc.pid}/fd"
    out = []
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except FileNotFoundError:
            continue
        if target.startswith(y.data_dir) and target.endswith("(deleted)"):
            out.append(target)
    return out


def test_large_multiappend_is_held_in_a_file_and_stored_exactly(youju):
    """A MULTIAPPEND of a 12 MB, a small and a 1 MB message, stalled
    inside the first literal: youjud holds what came in a file, not in
    memory; once complete, every message reads back byte for byte, and
    the file is gone."""
    big = make_msg("big-append", body=b"".join(
        b"%07d \x80\xff 8-bit line of an appended message.........\r\n" % i
        for i in range(200000)))
    small = make_msg("small-append", body=b"hello\r\n")
    medium = make_msg("medium-append", body=b"m" * 998 + b"\r\n" + b"x" * (1 << 20))
    r = login(youju)
    pid = youju.proc.pid
    before = status_kib(pid, "VmRSS")
    r.send(b"a APPEND INBOX (\\Seen) {%d+}\r\n" % len(big) + big[:len(big) // 2])
    deadline = time.monotonic() + 20
    while not spool_files(youju) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(spool_files(youju)) == 1, "no spool file while the literal comes"
    time.sleep(0.3)
    grown = status_kib(pid, "VmRSS") - before
    assert grown < 4 * 1024, f"{grown} KiB held for half of a 12 MB APPEND"
    r.send(big[len(big) // 2:] + b" {%d+}\r\n" % len(small) + small +
           b" {%d+}\r\n" % len(medium) + medium + b"\r\n")
    lines = r.until(b"a")
    assert lines[-1].startswith(b"a OK [APPENDUID "), lines
    assert spool_files(youju) == []
    r.cmd(b"b", b"EXAMINE INBOX")
    for seq, msg in ((1, big), (2, small), (3, medium)):
        data, lines = literal_fetch(r, b"c%d" % seq, b"FETCH %d (BODY.PEEK[])" % seq)
        assert lines[-1].startswith(b"c%d OK" % seq), lines
        assert data == msg, (seq, len(data), len(msg))
    assert b"\\Seen" in r.cmd(b"d", b"FETCH 1 (FLAGS)")[0]
    # a session that leaves inside a spooled literal leaves no file
    q = login(youju)
    q.send(b"e APPEND INBOX {%d+}\r\n" % len(big) + big[:1 << 20])
    while not spool_files(youju) and time.monotonic() < deadline:
        time.sleep(0.05)
    q.s.close()
    deadline = time.monotonic() + 20
    while spool_files(youju) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert spool_files(youju) == []
    assert r.cmd(b"f", b"NOOP")[-1].startswith(b"f OK")


def test_append_refused_before_its_bytes_without_room_on_disk(youju_with):
    """queue_minfree keeps room on the data dir's disk for IMAP too: an
    APPEND whose literal would leave less gets NO [UNAVAILABLE] before
    the "+" (no byte of it is sent), and the session goes on."""
    y = youju_with(queue_minfree="1000000g")
    r = login(y)
    r.send(b"a APPEND INBOX {300000}\r\n")
    line = r.line()
    assert line.startswith(b"a NO [UNAVAILABLE]"), line
    r.send(b"b APPEND INBOX {5}\r\n")
    assert r.line().startswith(b"b NO [UNAVAILABLE]")
    assert r.cmd(b"c", b"STATUS INBOX (MESSAGES)")[0] == b"* STATUS INBOX (MESSAGES 0)"
    y.restart(queue_minfree=0)
    r = login(y)
    msg = make_msg("room-again", body=b"y" * 300000)
    r.send(b"d APPEND INBOX {%d}\r\n" % len(msg))
    assert r.line().startswith(b"+")
    r.send(msg + b"\r\n")
    assert r.until(b"d")[-1].startswith(b"d OK [APPENDUID ")


MULTIPART = (b"From: =?utf-8?q?B=C3=B6b?= <bob@example.org>\r\n"
             b"To: alice@example.test, bob@example.test\r\n"
             b"Cc: Carol <carol@example.org>\r\n"
             b"Subject: summary\r\n"
             b"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
             b"Message-ID: <summary@example.org>\r\n"
             b"MIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
             b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n"
             b"--b1\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n"
             b"Content-Disposition: attachment; filename=\"a.pdf\"\r\n"
             b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
             b"--b1--\r\n")

SUMMARY_ITEMS = b"FETCH 1 (ENVELOPE BODY BODYSTRUCTURE)"


def summary_rows(y):
    con = sqlite3.connect(f"file:{os.path.join(y.data_dir, 'youju.db')}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM summaries").fetchone()[0]
    finally:
        con.close()


def test_envelope_and_bodystructure_same_before_and_after_the_summary_is_stored(youju):
    youju.add_account(BOB, BOB_PASSWORD)
    with smtplib.SMTP("127.0.0.1", youju.ports["smtp"], timeout=30) as s:
        s.sendmail("bob@example.org", [USER, BOB], MULTIPART)
    a = login(youju)
    a.cmd(b"b", b"SELECT INBOX")
    first = a.cmd(b"c", SUMMARY_ITEMS)[0]      # parsed, then saved
    assert b"ENVELOPE (\"Mon, 30 Nov 2026 10:00:00 +0000\" \"summary\"" in first
    assert b"\"attachment\" (\"filename\" \"a.pdf\")" in first
    second = a.cmd(b"d", SUMMARY_ITEMS)[0]     # from the store
    assert second == first
    # The other recipient has another prefix but the same blob and summary.
    b = login(youju, BOB, BOB_PASSWORD)
    b.cmd(b"b", b"SELECT INBOX")
    assert b.cmd(b"c", SUMMARY_ITEMS)[0] == first
    # Header fields come from the prefix + the stored header lines: each
    # recipient sees its own Delivered-To, both the same Subject.
    fields = b"FETCH 1 (BODY.PEEK[HEADER.FIELDS (Delivered-To Subject)])"
    for r, who in ((a, USER), (b, BOB)):
        data, lines = literal_fetch(r, b"f", fields)
        assert lines[-1].startswith(b"f OK")
        assert data == (b"Delivered-To: " + who.encode() + b"\r\nSubject: summary\r\n\r\n"), data
        whole, _ = literal_fetch(r, b"g", b"FETCH 1 (BODY.PEEK[HEADER])")
        full, _ = literal_fetch(r, b"h", b"FETCH 1 (BODY.PEEK[])")
        assert full.startswith(whole) and whole.endswith(b"\r\n\r\n")
    # One item alone is the same as in the list.
    env = a.cmd(b"e", b"FETCH 1 (ENVELOPE)")[0]
    assert first.startswith(env[:-1] + b" BODY (")


@sqlite_only("reads the summaries table of the SQLite file")
def test_summary_made_again_when_missing(youju):
    deliver(youju, MULTIPART)
    a = login(youju)
    a.cmd(b"b", b"SELECT INBOX")
    first = a.cmd(b"c", SUMMARY_ITEMS)[0]
    assert summary_rows(youju) == 1
    # As for a message stored before summaries existed: a youjud that
    # has not read it yet (one that has keeps it in memory).
    a.cmd(b"l", b"LOGOUT")
    youju.stop()
    con = sqlite3.connect(os.path.join(youju.data_dir, "youju.db"), timeout=10)
    con.execute("DELETE FROM summaries")
    con.commit()
    con.close()
    youju.start()
    a = login(youju)
    a.cmd(b"b", b"SELECT INBOX")
    assert a.cmd(b"d", SUMMARY_ITEMS)[0] == first
    assert summary_rows(youju) == 1
    # Gone with the blob.
    a.cmd(b"e", b"STORE 1 +FLAGS.SILENT (\\Deleted)")
    a.cmd(b"f", b"EXPUNGE")
    assert summary_rows(youju) == 0


def test_pop3_between_commands_and_imap_idle_together(youju):
    """POP3 and IMAP sessions borrowing from the same pool at once."""
    deliver(youju, make_msg("shared"))
    errors = []

    def imap_loop():
        try:
            r = login(youju)
            r.cmd(b"b", b"SELECT INBOX")
            for i in range(20):
                assert r.cmd(b"c%d" % i, b"FETCH 1 (ENVELOPE FLAGS)")[-1].startswith(b"c%d OK" % i)
        except Exception as e:  # reported below
            errors.append(e)
    threads = [threading.Thread(target=imap_loop) for _ in range(8)]
    for t in threads:
        t.start()
    import poplib
    for _ in range(3):
        p = poplib.POP3("127.0.0.1", youju.ports["pop3"], timeout=20)
        p.user(USER)
        p.pass_(PASSWORD)
        assert len(p.uidl()[1]) == 1
        p.retr(1)
        p.quit()
    for t in threads:
        t.join()
    assert not errors, errors
