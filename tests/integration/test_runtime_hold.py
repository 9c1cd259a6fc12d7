"""No client holds a worker for long: one that stops reading our output
(IMAP FETCH, POP3 RETR, SMTP replies to a pipelined flood) is ended
after write_timeout, and meanwhile others log in and fetch at once; a
SEARCH too big to answer gets NO [LIMIT] quickly and the session goes
on (docs/architecture.md, docs/imap.md)."""
import re
import socket
import time

from conftest import PASSWORD, USER, Pop3Raw
from test_imap_search import Raw, login, msg
from test_runtime import threads, wait_for

DATE = b"10-Feb-2020 12:00:00 +0000"
WRITE_TIMEOUT = 3
SLOW_READERS = 12		# more than the runtime's idle workers kept (4)


def fill(r, n, size):
    line = b"abcdefghij klmnoprstuvwxy 0123456789 " * 2 + b"\r\n"
    body = line * (size // len(line) + 1)
    for i in range(n):
        r.append(b"INBOX", msg(b"big %d" % i, body=body), DATE)


def slow_imap_reader(y):
    """Logged in, asks for every message and then takes almost nothing:
    a small receive window, read one byte now and then."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", y.ports["imap"]))
    s.recv(1024)
    s.sendall(b"a LOGIN " + USER.encode() + b" " + PASSWORD.encode() + b"\r\n"
              b"b SELECT INBOX\r\nc FETCH 1:* BODY[]\r\n")
    return s


def ended(s, timeout):
    """Drains what the server had queued: True once it closed."""
    s.settimeout(0.2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if s.recv(1 << 20) == b"":
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


def test_slow_imap_readers_hold_no_one_up(youju_with):
    y = youju_with(write_timeout=f"{WRITE_TIMEOUT}s")
    r = login(y)
    fill(r, 20, 512 * 1024)
    r.s.close()
    time.sleep(4)		# workers beyond the kept ones go after 3 s idle
    before = threads(y.proc.pid)
    readers = [slow_imap_reader(y) for _ in range(SLOW_READERS)]
    started = time.monotonic()
    # Each reader's FETCH is stuck writing; a byte now and then does not
    # free it.
    time.sleep(1)
    for s in readers:
        s.recv(1)
    # Meanwhile another client logs in and fetches a whole message.
    t0 = time.monotonic()
    c = login(y)
    c.ok(b"SELECT INBOX")
    lines = c.ok(b"FETCH 20 BODY.PEEK[]")
    took = time.monotonic() - t0
    assert lines and lines[0].startswith(b"* 20 FETCH"), lines[:1]
    assert took < 1.0, f"a normal client waited {took:.2f} s"
    # The readers are ended once write_timeout passes without their
    # taking the 64 KiB in flight; a byte a second changes nothing.
    for s in readers:
        s.recv(1)
    time.sleep(WRITE_TIMEOUT + 1)
    for s in readers:
        assert ended(s, 10), "a slow reader's session was not ended"
    took = time.monotonic() - started
    assert took < WRITE_TIMEOUT + 12, took
    log = y.read_log()
    assert len(re.findall(r"imap: session=\w+ logout user=\S+ reason=write-timeout", log)) \
        >= SLOW_READERS, log[-3000:]
    # Their workers went back to the pool, which shrinks again to the
    # idle workers it keeps (4; it started with 2).
    assert wait_for(lambda: threads(y.proc.pid) <= before + 4, timeout=15), \
        (before, threads(y.proc.pid))
    # And the server serves as before.
    c.ok(b"NOOP")
    c.ok(b"LOGOUT")


def test_slow_but_steady_reader_gets_everything(youju_with):
    """A client on a slow link reads on all the while: each 64 KiB
    reaches it well within write_timeout, and it gets the whole FETCH."""
    y = youju_with(write_timeout=f"{WRITE_TIMEOUT}s")
    r = login(y)
    fill(r, 2, 512 * 1024)
    r.s.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", y.ports["imap"]))
    s.sendall(b"a LOGIN " + USER.encode() + b" " + PASSWORD.encode() + b"\r\n"
              b"b SELECT INBOX\r\nc FETCH 1:* BODY.PEEK[]\r\n")
    got = b""
    started = time.monotonic()
    while b"\r\nc OK" not in got[-200:]:
        time.sleep(0.05)		# about 300 KiB/s
        chunk = s.recv(16384)
        assert chunk, got[-300:]
        got += chunk
    assert time.monotonic() - started > WRITE_TIMEOUT, "the link was not slow"
    assert got.count(b" FETCH (BODY[] {") == 2
    s.close()


def test_slow_pop3_reader_is_ended(youju_with):
    y = youju_with(write_timeout=f"{WRITE_TIMEOUT}s")
    r = login(y)
    fill(r, 1, 4 << 20)
    r.s.close()
    p = Pop3Raw(y.ports["pop3"], rcvbuf=4096)
    p.login()
    p.sock.sendall(b"RETR 1\r\n")
    started = time.monotonic()
    time.sleep(WRITE_TIMEOUT + 1)
    assert ended(p.sock, 10)
    assert time.monotonic() - started < WRITE_TIMEOUT + 12
    # Another POP3 client is served.
    q = Pop3Raw(y.ports["pop3"])
    q.login()
    assert q.cmd("STAT").startswith(b"+OK 1 ")
    assert q.cmd("QUIT").startswith(b"+OK")


def test_smtp_client_not_reading_replies_is_ended(youju_with):
    y = youju_with(write_timeout=f"{WRITE_TIMEOUT}s")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", y.ports["smtp"]))
    s.settimeout(0.5)
    # Pipelined commands whose replies we never read: their replies fill
    # our window, then the server's send buffer.
    flood = b"EHLO client.test\r\n" + b"NOOP\r\n" * 2000
    started = time.monotonic()
    while time.monotonic() - started < WRITE_TIMEOUT + 10:
        try:
            s.sendall(flood)
        except (socket.timeout, OSError):
            break		# the server stopped reading (or closed)
    stuck = time.monotonic()
    assert ended(s, WRITE_TIMEOUT + 10), "the SMTP session was not ended"
    assert time.monotonic() - stuck < WRITE_TIMEOUT + 5
    s.close()


# ---- work per command ----

def test_search_with_too_many_text_keys_is_refused_quickly(youju):
    r = login(youju)
    fill(r, 30, 16 * 1024)
    r.ok(b"SELECT INBOX")
    t0 = time.monotonic()
    lines, t = r.cmd(b"SEARCH " + b"BODY nothing " * 900)
    assert t == b"NO [LIMIT] Too many text search keys", t
    assert time.monotonic() - t0 < 0.5
    # The same nested deep in ORs with header keys, for SORT and THREAD.
    nested = b"(OR FROM a SUBJECT b) " * 50 + b"NOT (TEXT c)"
    assert r.cmd(b"SEARCH " + nested)[1] == b"NO [LIMIT] Too many text search keys"
    assert r.cmd(b"SORT (DATE) UTF-8 " + nested)[1] == b"NO [LIMIT] Too many text search keys"
    assert r.cmd(b"THREAD REFERENCES UTF-8 " + nested)[1] == \
        b"NO [LIMIT] Too many text search keys"
    # A SAVE that failed so empties $ (RFC 5182 2.1).
    assert r.ok(b"SEARCH RETURN (SAVE) ALL") == []
    assert r.cmd(b"SEARCH RETURN (SAVE) " + nested)[1].startswith(b"NO [LIMIT]")
    assert r.ok(b"SEARCH $") == [b"* SEARCH"]
    # A hundred text keys are within the limit, and the session goes on.
    lines = r.ok(b"SEARCH " + b"NOT BODY nothing " * 99 + b"SUBJECT \"big 7\"")
    assert lines == [b"* SEARCH 8"], lines
    r.ok(b"NOOP")


def test_search_past_its_time_limit_answers_no_limit(youju_with):
    y = youju_with(imap_search_time_limit="1s", imap_fts="no")
    r = login(y)
    fill(r, 150, 256 * 1024)
    r.ok(b"SELECT INBOX")
    # A hundred two-letter BODY keys none of which matches: every key
    # scans every message's text.
    program = b"NOT BODY qq " * 100
    t0 = time.monotonic()
    lines, t = r.cmd(b"SEARCH " + program)
    took = time.monotonic() - t0
    assert t == b"NO [LIMIT] Search took too long", (t, took)
    assert took < 3, took
    assert "search stopped after" in y.read_log()
    # A quick search in the same session still works.
    assert r.ok(b"SEARCH SUBJECT \"big 149\"") == [b"* SEARCH 150"]
