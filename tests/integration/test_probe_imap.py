"""Hostile-client probes against today's IMAP extensions: odd SORT and
THREAD criteria, deep SEARCH nesting, SEARCHRES before SAVE, reference
loops, COMPRESS abuse, MULTIAPPEND cut off, huge UID ranges, quota and
RENAME edge cases. Each must get a protocol answer, never a crash."""

import os
import shutil
import socket
import subprocess
import zlib

import pytest

from conftest import PASSWORD, USER
from test_auth_limits import server_uses_asan
from test_imap_search import Raw, login, msg

DATE = b"10-Feb-2020 12:00:00 +0000"


def alive(y):
    r = login(y)
    r.ok(b"NOOP")
    r.s.close()


def fill(r, n=3, mailbox=b"INBOX", **kw):
    for i in range(n):
        r.append(mailbox, msg(b"s%d" % i, **kw), DATE)


def tagged(r, text):
    return r.cmd(text)[1]


def test_sort_odd_criteria(youju):
    r = login(youju)
    fill(r)
    r.ok(b"SELECT INBOX")
    for crit in [b"SORT () UTF-8 ALL", b"SORT (REVERSE) UTF-8 ALL",
                 b"SORT (REVERSE REVERSE DATE) UTF-8 ALL",
                 b"SORT (" + b"DATE " * 5000 + b") UTF-8 ALL",
                 b"SORT (BOGUS) UTF-8 ALL", b"SORT (DATE) KOI8-ZZ ALL",
                 b"SORT (DATE) UTF-8", b"SORT DATE UTF-8 ALL",
                 b"SORT (DISPLAYFROM DISPLAYTO ARRIVAL CC SIZE SUBJECT) US-ASCII ALL",
                 b"UID SORT (SUBJECT) UTF-8 $", b"SORT (DATE) UTF-8 UID *:1",
                 b"SORT (DATE) UTF-8 1:4294967295"]:
        t = tagged(r, crit)
        assert t[:2] in (b"OK", b"NO", b"BA"), (crit, t)
    alive(youju)


def test_thread_odd(youju):
    r = login(youju)
    # References that form a loop and an enormous References header.
    r.append(b"INBOX", msg(b"a", msgid=b"<a@x>", extra=b"References: <b@x>\r\n"), DATE)
    r.append(b"INBOX", msg(b"b", msgid=b"<b@x>", extra=b"References: <a@x>\r\n"), DATE)
    r.append(b"INBOX", msg(b"c", msgid=b"<c@x>", extra=b"In-Reply-To: <c@x>\r\nReferences: <c@x> <c@x>\r\n"), DATE)
    big = b" ".join(b"<r%d@x>" % i for i in range(20000))
    r.append(b"INBOX", msg(b"d", msgid=b"<d@x>", extra=b"References: " + big + b"\r\n"), DATE)
    rev = b" ".join(b"<r%d@x>" % i for i in reversed(range(20000)))
    r.append(b"INBOX", msg(b"e", msgid=b"<r5@x>", extra=b"References: " + rev + b"\r\n"), DATE)
    r.append(b"INBOX", msg(b"f", msgid=b"<a@x>", extra=b"References: <a@x> <b@x> <a@x>\r\n"), DATE)
    r.ok(b"SELECT INBOX")
    for alg in [b"REFERENCES", b"ORDEREDSUBJECT", b"REFS"]:
        t = tagged(r, b"THREAD " + alg + b" UTF-8 ALL")
        assert t[:2] in (b"OK", b"NO", b"BA"), (alg, t)
    assert tagged(r, b"THREAD BOGUS UTF-8 ALL")[:3] in (b"BAD", b"NO ")
    alive(youju)


def test_search_nesting_and_searchres(youju):
    r = login(youju)
    fill(r)
    r.ok(b"SELECT INBOX")
    t = tagged(r, b"SEARCH $")
    assert t[:2] in (b"OK", b"NO", b"BA"), t
    t = tagged(r, b"UID SEARCH UID $")
    assert t[:2] in (b"OK", b"NO", b"BA"), t
    for depth in (10, 100, 1000, 20000):
        t = tagged(r, b"SEARCH " + b"NOT " * depth + b"ALL")
        assert t[:2] in (b"OK", b"NO", b"BA"), (depth, t)
        t = tagged(r, b"SEARCH " + b"OR ALL " * depth + b"ALL")
        assert t[:2] in (b"OK", b"NO", b"BA"), (depth, t)
        t = tagged(r, b"SEARCH " + b"(" * depth + b"ALL" + b")" * depth)
        assert t[:2] in (b"OK", b"NO", b"BA"), (depth, t)
    # within the nesting limit (32) a saved OR chain works; past it BAD
    t = tagged(r, b"SEARCH RETURN (SAVE) " + b"OR " * 30 + b"ALL " * 31)
    assert t[:2] == b"OK", t
    t = tagged(r, b"COPY $ INBOX")
    assert t[:2] in (b"OK", b"NO"), t
    alive(youju)


def test_copy_move_huge_ranges(youju):
    r = login(youju)
    r.ok(b"CREATE Other")
    fill(r, 3)
    r.ok(b"SELECT INBOX")
    for c in [b"UID COPY 1:4294967295 Other", b"UID COPY *:1 Other",
              b"COPY 1:4294967295 Other", b"UID MOVE 4294967295:1 Other",
              b"UID COPY 0:5 Other", b"UID COPY 4294967296 Other",
              b"COPY 1,1,1,1,1,1,1,1 Other", b"UID MOVE 1:* Nope"]:
        t = tagged(r, c)
        assert t[:2] in (b"OK", b"NO", b"BA"), (c, t)
    r.ok(b"SELECT Other")
    alive(youju)


def test_getquotaroot_and_rename(youju):
    r = login(youju)
    for name in [b"\"\"", b"NIL", b"\"INBOX/../x\"", b"{5+}\r\nINBOX", b"\"" + b"x" * 5000 + b"\"",
                 b"\"\xff\xfe\"", b"nonexistent", b"inbox"]:
        t = tagged(r, b"GETQUOTAROOT " + name)
        assert t[:2] in (b"OK", b"NO", b"BA"), (name, t)
        t = tagged(r, b"GETQUOTA " + name)
        assert t[:2] in (b"OK", b"NO", b"BA"), (name, t)
    fill(r, 2)
    r.ok(b"RENAME INBOX Old1")
    t = tagged(r, b"RENAME INBOX Old2")
    assert t[:2] in (b"OK", b"NO"), t
    t = tagged(r, b"RENAME INBOX Old1")
    assert t[:2] == b"NO", t
    r.ok(b"SELECT INBOX")
    alive(youju)


def test_fetch_ext_malformed(youju):
    r = login(youju)
    bad = [b"", b"\r\n", b"garbage no headers", b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--",
           b"Content-Type: text/plain; charset=bogus\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!====\r\n",
           b"Content-Type: text/html\r\n\r\n<" + b"<" * 10000 + b"\r\n",
           b"Content-Type: multipart/alternative; boundary=a\r\n\r\n" + b"--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n" * 500,
           b"Subject: =?UTF-8?B?" + b"/" * 3000 + b"?=\r\n\r\n" + b"\xff\xfe" * 300,
           b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + b"=" * 1000 + b"=\r\n" * 100]
    for b in bad:
        r.n += 1
        tag = b"t%d" % r.n
        r.s.sendall(tag + b" APPEND INBOX {%d+}\r\n" % len(b) + b + b"\r\n")
        while True:
            line = r.line()
            if line.startswith(tag + b" "):
                break
    r.ok(b"SELECT INBOX")
    t = tagged(r, b"FETCH 1:* (PREVIEW EMAILID THREADID SAVEDATE)")
    assert t[:2] == b"OK", t
    t = tagged(r, b"FETCH 1:* (PREVIEW (LAZY))")
    assert t[:2] in (b"OK", b"BA"), t
    alive(youju)


def test_compress_abuse(youju):
    # COMPRESS before login
    r = Raw(youju.ports["imap"])
    r.line()
    t = tagged(r, b"COMPRESS DEFLATE")
    assert t[:2] in (b"NO", b"BA"), t
    r.s.close()
    # Twice after login; garbage
    r = login(youju)
    t = tagged(r, b"COMPRESS DEFLATE")
    assert t[:2] == b"OK", t
    r.s.sendall(b"\x00garbage that is not deflate\xff" * 100)
    r.s.settimeout(10)
    try:
        while r.s.recv(65536):
            pass
    except (ConnectionResetError, socket.timeout):
        pass
    r.s.close()
    # Zip bomb: one line of 200 MB zeros without a newline.
    r = login(youju)
    assert tagged(r, b"COMPRESS DEFLATE")[:2] == b"OK"
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = c.compress(b"t1 NOOP " + b"A" * (1 << 20))
    r.s.sendall(chunk)
    try:
        for _ in range(200):
            r.s.sendall(c.compress(b"A" * (1 << 20)) + c.flush(zlib.Z_SYNC_FLUSH))
    except (BrokenPipeError, ConnectionResetError):
        pass
    r.s.close()
    # COMPRESS twice
    r = login(youju)
    assert tagged(r, b"COMPRESS DEFLATE")[:2] == b"OK"
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    d = zlib.decompressobj(-15)
    r.s.sendall(c.compress(b"t9 COMPRESS DEFLATE\r\n") + c.flush(zlib.Z_SYNC_FLUSH))
    out = b""
    r.s.settimeout(10)
    while b"t9 " not in out:
        data = r.s.recv(65536)
        if not data:
            break
        out += d.decompress(data)
    assert b"t9 NO" in out or b"t9 BAD" in out, out
    r.s.close()
    alive(youju)


def test_multiappend_cut(youju):
    r = login(youju)
    m = msg(b"x")
    r.s.sendall(b"a1 APPEND INBOX {%d+}\r\n" % len(m) + m + b" {%d+}\r\n" % 1000 + b"partial")
    r.s.close()
    r = login(youju)
    r.ok(b"SELECT INBOX")
    lines, t = r.cmd(b"UID SEARCH ALL")
    assert t[:2] == b"OK"
    assert lines == [b"* SEARCH"], lines  # all or nothing
    # literal with a bad continuation then a CATENATE-like garbage
    r.s.sendall(b"a2 APPEND INBOX {5+}\r\nhello {99999999999999999999}\r\n")
    while True:
        line = r.line()
        if line.startswith(b"a2 "):
            break
    assert line[3:5] in (b"NO", b"BA"), line
    alive(youju)


def test_concurrent_moves_both_ways(youju):
    """Sessions MOVE everything back and forth between two mailboxes at
    once: no deadlock, no lost message, no UID used twice."""
    import threading
    r = login(youju)
    r.ok(b"CREATE B")
    fill(r, 20)
    r.s.close()
    errors = []

    def mover(src, dst, rounds):
        try:
            c = login(youju)
            c.ok(b"SELECT " + src)
            for _ in range(rounds):
                lines, t = c.cmd(b"UID MOVE 1:* " + dst)
                if not t.startswith(b"OK"):
                    errors.append(t)
                c.ok(b"NOOP")
            c.s.close()
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
    ts = [threading.Thread(target=mover, args=(a, b, 15))
          for a, b in [(b"INBOX", b"B"), (b"B", b"INBOX")] * 3]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not any(t.is_alive() for t in ts), "movers hang"
    assert not errors, errors
    c = login(youju)
    total = 0
    for mb in (b"INBOX", b"B"):
        c.ok(b"SELECT " + mb)
        lines = c.ok(b"UID SEARCH ALL")
        uids = lines[0].split()[2:]
        assert len(uids) == len(set(uids)), (mb, uids)
        subj = c.ok(b"FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])") if uids else []
        total += len(uids)
    assert total == 20
    alive(youju)


def test_idle_sees_consistent_expunges(youju):
    """An IDLE session sees EXPUNGE/EXISTS in an order that keeps its
    sequence numbers equal to the server's."""
    r = login(youju)
    fill(r, 10)
    r.ok(b"SELECT INBOX")
    r.s.sendall(b"i1 IDLE\r\n")
    assert r.line().startswith(b"+")
    o = login(youju)
    o.ok(b"SELECT INBOX")
    o.ok(b"STORE 2,4,6 +FLAGS (\\Deleted)")
    o.ok(b"EXPUNGE")
    fill(o, 3)
    o.ok(b"STORE 1 +FLAGS (\\Deleted)")
    o.ok(b"EXPUNGE")
    import time
    time.sleep(2)
    r.s.sendall(b"DONE\r\n")
    count = 10
    while True:
        line = r.line()
        if line.startswith(b"i1 "):
            break
        parts = line.split()
        if len(parts) >= 3 and parts[2] == b"EXPUNGE":
            n = int(parts[1])
            assert 1 <= n <= count, line
            count -= 1
        elif len(parts) >= 3 and parts[2] == b"EXISTS":
            count = int(parts[1])
    assert count == 9, count
    lines = r.ok(b"SEARCH ALL")
    assert lines[0] == b"* SEARCH " + b" ".join(b"%d" % i for i in range(1, 10)), lines
    alive(youju)


def test_largest_uid_is_a_number(youju):
    """1:4294967295 is a valid UID set (RFC 9051 nz-number) meaning
    every message: OK, never BAD."""
    r = login(youju)
    r.ok(b"CREATE Other")
    fill(r, 3)
    r.ok(b"SELECT INBOX")
    assert len(r.ok(b"UID FETCH 1:4294967295 (UID)")) == 3
    assert r.ok(b"UID SEARCH UID 1:4294967295") == [b"* SEARCH 1 2 3"]
    assert r.ok(b"UID SEARCH UID 4294967295") == [b"* SEARCH"]
    assert r.ok(b"UID SEARCH UID 4294967295:*") == [b"* SEARCH 3"]
    r.ok(b"UID COPY 1:4294967295 Other")
    r.ok(b"UID STORE 1:4294967295 +FLAGS (\\Deleted)")
    r.ok(b"UID EXPUNGE 1:4294967295")
    r.ok(b"SELECT Other")
    assert r.ok(b"UID MOVE 4294967295:1 INBOX")
    assert tagged(r, b"UID FETCH 4294967296 (UID)").startswith(b"BAD")
    alive(youju)


def test_rename_moves_inferiors(youju):
    """RENAME moves the names below the mailbox too (RFC 9051 6.3.6);
    renaming a mailbox below itself is NO, and nothing changes."""
    r = login(youju)
    for name in (b"A", b"A/B", b"A/B/C", b"AB"):
        r.ok(b"CREATE " + name)
    r.append(b"A/B/C", msg(b"deep"), DATE)
    r.ok(b"SELECT A/B/C")
    assert tagged(r, b"RENAME A A/X").startswith(b"NO")
    r.ok(b"RENAME A Z")
    names = [l.rsplit(b" ", 1)[1].strip(b'"') for l in r.ok(b'LIST "" *')]
    assert {b"Z", b"Z/B", b"Z/B/C", b"AB"} <= set(names), names
    assert not {b"A", b"A/B", b"A/B/C"} & set(names), names
    # the selected inferior goes on under its new name
    assert r.ok(b"FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[0].startswith(b"* 1 FETCH")
    assert r.ok(b"STATUS Z/B/C (MESSAGES)") == [b'* STATUS "Z/B/C" (MESSAGES 1)']
    r.ok(b"CREATE Q/B")
    assert tagged(r, b"RENAME Z Q").startswith(b"NO")
    names2 = [l.rsplit(b" ", 1)[1].strip(b'"') for l in r.ok(b'LIST "" *')]
    assert {b"Z", b"Z/B", b"Z/B/C"} <= set(names2), names2
    alive(youju)


def core_of(pid, tmpdir):
    """A core dump of the running server (gdb's gcore), as bytes."""
    prefix = os.path.join(tmpdir, "core")
    subprocess.run(["gcore", "-o", prefix, str(pid)], capture_output=True, timeout=180)
    names = [n for n in os.listdir(tmpdir) if n.startswith("core")]
    assert names, "gcore made no core"
    with open(os.path.join(tmpdir, names[0]), "rb") as f:
        return f.read()


@pytest.mark.skipif(shutil.which("gcore") is None, reason="needs gdb's gcore")
def test_login_password_leaves_no_copy(youju_factory, tmp_path):
    """After LOGIN (a quoted string or a literal) the password is in none
    of the server's buffers: the command's was wiped before, the conn's
    input buffer (which still held the line) is now too."""
    y = youju_factory()
    y.init()
    secret = "Pw-" + os.urandom(8).hex()
    y.add_account("carol@example.test", secret)
    y.start()
    if server_uses_asan(y.proc.pid):
        pytest.skip("an ASan process is too large to dump")
    r = Raw(y.ports["imap"])
    r.line()
    r.ok(b"LOGIN carol@example.test \"" + secret.encode() + b"\"")
    r2 = Raw(y.ports["imap"])
    r2.line()
    r2.ok(b"LOGIN {18+}\r\ncarol@example.test {%d+}\r\n" % len(secret) + secret.encode())
    r.ok(b"NOOP")
    core = core_of(y.proc.pid, str(tmp_path))
    assert core.count(secret.encode()) == 0


def list_names(r, pattern=b"*"):
    """{name: attributes} of LIST "" pattern."""
    out = {}
    for line in r.ok(b'LIST "" ' + pattern):
        attrs, rest = line[len(b"* LIST ("):].split(b")", 1)
        out[rest.rsplit(b" ", 1)[1].strip(b'"')] = attrs.split()
    return out


def test_inbox_children_in_any_case(youju):
    """"INBOX" is case-insensitive also as the first level of a name
    (RFC 9051 5.1): "inbox/sub" is INBOX's child "INBOX/sub", and LIST
    never shows a second inbox beside INBOX."""
    r = login(youju)
    r.ok(b"CREATE inbox/sub")
    r.ok(b"CREATE Inbox/Sub2/deeper")
    names = list_names(r)
    assert b"INBOX/sub" in names and b"INBOX/Sub2/deeper" in names, names
    assert not {b"inbox", b"Inbox", b"inbox/sub", b"Inbox/Sub2"} & set(names), names
    assert b"\\HasChildren" in names[b"INBOX"], names
    r.ok(b"SELECT INBOX/sub")
    r.ok(b"SELECT iNbOx/sub")
    assert tagged(r, b"CREATE INBOX/sub").startswith(b"NO [ALREADYEXISTS]")
    # "INBOXES" is no child of INBOX: it keeps its case
    r.ok(b"CREATE inboxes")
    assert b"inboxes" in list_names(r)
    alive(youju)


def test_rename_new_name_as_create(youju):
    """RENAME's new name follows CREATE's rules: no empty level, a
    trailing delimiter only says children may follow, and the missing
    superior names are made (RFC 9051 6.3.6), for INBOX too."""
    r = login(youju)
    r.ok(b"CREATE A")
    fill(r, 1)
    for bad in (b'"x//y"', b'"/lead"', b'"/"'):
        assert tagged(r, b"RENAME A " + bad).startswith(b"NO"), bad
        assert tagged(r, b"RENAME INBOX " + bad).startswith(b"NO"), bad
    names = list_names(r)
    assert b"A" in names and not {b"", b"x", b"x//y", b"/lead"} & set(names), names
    r.ok(b'RENAME A "z/"')
    names = list_names(r)
    assert b"z" in names and b"z/" not in names, names
    r.ok(b"RENAME z p/q/r")
    r.ok(b'RENAME INBOX "n/m/"')
    names = list_names(r)
    for name in (b"p", b"p/q", b"p/q/r", b"n", b"n/m"):
        assert name in names and b"\\Noselect" not in names[name], (name, names)
    assert b"n/m/" not in names, names
    r.ok(b"SELECT p/q")
    assert r.one(b"STATUS n/m (MESSAGES)", b"* STATUS") == b'* STATUS "n/m" (MESSAGES 1)'
    alive(youju)


def test_switched_off_capability_takes_its_extensions(youju):
    """A capability an account switches off takes those built on it
    along: QRESYNC (RFC 7162 implies CONDSTORE), SORT=DISPLAY and ESORT
    (on SORT), QUOTA=RES-STORAGE (on QUOTA). None is announced, and
    ENABLE QRESYNC does not turn MODSEQ on behind CONDSTORE's back."""
    youju.cli("account", "set", USER, "imap_disable", "CONDSTORE,SORT,QUOTA")
    r = login(youju)
    fill(r, 2)
    caps = r.one(b"CAPABILITY", b"* CAPABILITY").split()
    for cap in (b"CONDSTORE", b"QRESYNC", b"SORT", b"SORT=DISPLAY", b"ESORT", b"QUOTA",
                b"QUOTA=RES-STORAGE"):
        assert cap not in caps, (cap, caps)
    assert r.ok(b"ENABLE QRESYNC") == [b"* ENABLED"]
    assert tagged(r, b"SELECT INBOX (QRESYNC (1 1))").startswith(b"BAD")
    r.ok(b"SELECT INBOX")
    # The new keyword is named first (RFC 9051 7.3.5); no MODSEQ.
    assert r.ok(b"STORE 1 +FLAGS (x)") == [
        b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft x)",
        b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft x \\*)] Flags permitted",
        b"* 1 FETCH (FLAGS (\\Recent x))"]
    assert tagged(r, b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)").startswith(b"BAD")
    assert tagged(r, b"SORT RETURN (MIN) (DISPLAYFROM) UTF-8 ALL").startswith(b"BAD")
    alive(youju)


def test_switched_off_searchres_refuses_dollar(youju):
    """With SEARCHRES switched off, "$" is bad syntax in every command
    (docs/imap.md), not only in SEARCH."""
    youju.cli("account", "set", USER, "imap_disable", "SEARCHRES")
    r = login(youju)
    r.ok(b"CREATE B")
    fill(r, 2)
    r.ok(b"SELECT INBOX")
    for c in (b"SEARCH $", b"FETCH $ (UID)", b"UID FETCH $ (UID)", b"STORE $ +FLAGS (x)",
              b"COPY $ B", b"MOVE $ B", b"UID EXPUNGE $"):
        assert tagged(r, c).startswith(b"BAD"), c
    alive(youju)


def test_sort_thread_on_many_subject_blobs(youju):
    """A Subject of tens of thousands of "[x]" blobs (anyone can mail one)
    costs SORT and THREAD time in proportion to its length, not to its
    square: a few such messages must not hold a client for seconds."""
    import time
    r = login(youju)
    for i in range(3):
        r.append(b"INBOX", msg(b"[x]" * 60000 + b" s%d" % i), DATE)
    r.append(b"INBOX", msg(b"[a] [b] [c] Re: [d] plain"), DATE)
    r.ok(b"SELECT INBOX")
    t0 = time.monotonic()
    assert r.ok(b"SORT (SUBJECT) UTF-8 ALL") == [b"* SORT 4 1 2 3"]
    r.ok(b"SORT (DATE) UTF-8 ALL")
    r.ok(b"THREAD ORDEREDSUBJECT UTF-8 ALL")
    assert time.monotonic() - t0 < 3, time.monotonic() - t0
    alive(youju)


def test_selected_mailbox_deleted_and_made_again(youju):
    """Another session deletes the selected mailbox and creates one of the
    same name (with a new UIDVALIDITY, and on SQLite possibly the same row
    id). The session must not take the new mailbox's messages for its own
    UIDs: no FETCH of them, no STORE on them, but BYE."""
    a = login(youju)
    b = login(youju)
    for cmd in (b"FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
                b"STORE 1 +FLAGS (\\Deleted)", b"UID COPY 1 INBOX"):
        a.ok(b"CREATE Y")
        a.append(b"Y", msg(b"old"), DATE)
        a.ok(b"SELECT Y")
        b.ok(b"DELETE Y")
        b.ok(b"CREATE Y")
        b.append(b"Y", msg(b"new1"), DATE)
        lines, t = a.cmd(cmd)
        assert any(l.startswith(b"* BYE") for l in lines), (cmd, lines, t)
        assert not any(b"new1" in l or b" FETCH " in l for l in lines), (cmd, lines)
        b.ok(b"SELECT Y")
        assert b.ok(b"FETCH 1:* (UID FLAGS)") == [b"* 1 FETCH (UID 1 FLAGS (\\Recent))"], cmd
        assert b.one(b"STATUS INBOX (MESSAGES)", b"* STATUS") == b"* STATUS INBOX (MESSAGES 0)"
        b.ok(b"UNSELECT")
        b.ok(b"DELETE Y")
        a = login(youju)
    alive(youju)
