"""Hostile-client probes of what changed last in the IMAP server: run
slots under storms of logins (right and wrong passwords, costly hashes)
and of SEARCH/SORT, the DEFLATE layer (literals that inflate from a few
bytes, input inflating to exactly one read, parking between and inside
the client's blocks, pipelining around COMPRESS, COMPRESS over STARTTLS,
a stream the client ends or corrupts), TLS handshakes that stall or are
not TLS at all, plaintext injected behind STARTTLS, FETCH macros in a
pipeline, BINARY of broken encodings, partial ranges at 2^32 - 1, FETCH
of what another session expunged (also while a slow reader takes a big
FETCH and the mailbox goes), and APPEND's INTERNALDATE at the edges of
zones and years, MULTIAPPEND with a literal too big. Each must get the
right IMAP answer, never a crash, a hang, a held worker or a half-stored
command."""

import ctypes
import ctypes.util
import os
import re
import socket
import ssl
import threading
import time
import zlib

import pytest

from conftest import PASSWORD, USER, unverified
from test_imap_search import Raw, login, msg
from test_runtime_hold import ended

DATE = b"10-Feb-2020 12:00:00 +0000"


def alive(y):
    r = login(y)
    r.ok(b"NOOP")
    r.s.close()


def fill(r, n=3, mailbox=b"INBOX"):
    for i in range(n):
        r.append(mailbox, msg(b"s%d" % i, body=b"body %d\r\n" % i), DATE)


def rss_kib(y):
    with open(f"/proc/{y.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# ---- run slots ----

def crypt_hash(password, prefix, cost):
    """A crypt(3) hash made by libxcrypt, as an admin would import one."""
    lib = ctypes.CDLL(ctypes.util.find_library("crypt"))
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = lib.crypt_gensalt(prefix, cost, None, 0)
    return lib.crypt(password.encode(), salt).decode()


def login_storm(y, n, command):
    """n sessions send command(i) at once while a logged-in session sends
    NOOPs; returns each storm session's tagged answer and the slowest
    NOOP in seconds."""
    quiet = login(y)
    quiet.ok(b"SELECT INBOX")
    results = [None] * n
    go = threading.Event()

    def storm(i):
        try:
            c = Raw(y.ports["imap"])
            c.s.settimeout(60)
            c.line()
            go.wait()
            results[i] = c.cmd(command(i))[1]
            c.s.close()
        except Exception as e:		# reported by the caller's assert
            results[i] = repr(e).encode()

    threads = [threading.Thread(target=storm, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    go.set()
    worst = 0.0
    while any(t.is_alive() for t in threads):
        started = time.monotonic()
        quiet.ok(b"NOOP")
        worst = max(worst, time.monotonic() - started)
        time.sleep(0.1)
    for t in threads:
        t.join(5)
    quiet.s.close()
    return results, worst


def test_login_storm_of_costly_hashes_starves_no_noop(youju_with):
    """30 sessions log in at once to accounts whose hashes cost tenths
    of a second each (bcrypt 10, yescrypt 5; the cache is off, so each
    login hashes): the hashes wait for their own slots, so a logged-in
    session's NOOPs still come back within seconds, and every login is
    answered OK."""
    y = youju_with(auth_cache_ttl="0")
    n, kinds = 30, 6
    accounts = []
    for i in range(kinds):
        address = f"storm{i}@example.test"
        prefix, cost = (b"$2b$", 10) if i % 2 else (b"$y$", 5)
        y.cli("account", "add", address, "--password-hash", crypt_hash(f"pw-{i}", prefix, cost))
        accounts.append((address, f"pw-{i}"))
    accounts = [accounts[i % kinds] for i in range(n)]
    results, worst = login_storm(
        y, n, lambda i: b"LOGIN " + accounts[i][0].encode() + b" " + accounts[i][1].encode())
    assert all(r is not None and r.startswith(b"OK") for r in results), results
    assert worst < 5, worst


def test_failing_login_storm_starves_no_noop(youju_with):
    """30 sessions send wrong passwords at once for accounts with costly
    hashes: each is hashed, then waits out the failure delay and the
    address's penalty (waits that hold no run slot). A logged-in
    session's NOOPs stay quick, every attempt gets NO, and the right
    password still works afterwards."""
    y = youju_with(auth_failure_delay="1s", auth_penalty_max="2s",
                   auth_account_max_failures="0")
    n = 30
    for i in range(3):
        y.cli("account", "add", f"fail{i}@example.test", "--password-hash",
              crypt_hash(f"pw-{i}", b"$2b$", 10))
    results, worst = login_storm(
        y, n, lambda i: b"LOGIN fail%d@example.test wrong-%d" % (i % 3, i))
    assert all(r is not None and r.startswith(b"NO") for r in results), results
    assert worst < 5, worst
    # The address's penalty (2 s at most here) is waited out first.
    r = Raw(y.ports["imap"])
    r.line()
    r.ok(b"LOGIN fail2@example.test pw-2")
    r.s.close()


def fill_big(y, n):
    """n messages of about 2 KiB, pipelined."""
    r = login(y)
    body = b"The quick brown fox jumps over the lazy dog.\r\n" * 40
    for start in range(0, n, 100):
        out, tags = b"", []
        for i in range(start, min(n, start + 100)):
            m = msg(b"topic %d" % (i % 41), body=body + b"%d\r\n" % i)
            r.n += 1
            tags.append(b"t%d" % r.n)
            out += tags[-1] + b" APPEND INBOX () \"" + DATE + b"\" {%d+}\r\n" % len(m) + m + b"\r\n"
        r.send(out)
        for tag in tags:
            assert b" OK" in r.until(tag)[-1]
    r.s.close()


def test_searches_and_sorts_at_once_leave_store_fast_and_right(youju):
    """Eight sessions SEARCH TEXT and SORT an 800-message mailbox over
    and over while another STOREs flags: each STORE is answered within
    seconds, and every SEARCH sees all the messages flagged so far."""
    fill_big(youju, 800)
    stop = threading.Event()
    errors = []
    stored = []

    def heavy(k):
        try:
            r = login(youju)
            r.s.settimeout(60)
            r.ok(b"EXAMINE INBOX")
            while not stop.is_set():
                if k % 2:
                    lines = r.ok(b"SORT (SUBJECT ARRIVAL) UTF-8 TEXT fox")
                    assert len([l for l in lines if l.startswith(b"* SORT")]) == 1
                else:
                    # The search runs on the flags this session was told
                    # of; changes made since follow in the same response.
                    before = len(stored)
                    lines = r.ok(b"SEARCH FLAGGED TEXT lazy")
                    found = [l for l in lines if l.startswith(b"* SEARCH")]
                    hits = {int(x) for x in found[0].split()[2:]}
                    hits |= {int(l.split()[1]) for l in lines
                             if b" FETCH (" in l and b"\\Flagged" in l}
                    assert hits >= set(stored[:before]), (lines, before)
            r.s.close()
        except Exception as e:		# reported below
            errors.append(e)

    threads = [threading.Thread(target=heavy, args=(k,), daemon=True) for k in range(8)]
    for t in threads:
        t.start()
    time.sleep(1)
    w = login(youju)
    w.ok(b"SELECT INBOX")
    worst = 0.0
    try:
        for i in range(1, 21):
            started = time.monotonic()
            w.ok(b"STORE %d +FLAGS.SILENT (\\Flagged)" % i)
            worst = max(worst, time.monotonic() - started)
            stored.append(i)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors
    assert worst < 5, worst
    w.s.close()


# ---- COMPRESS=DEFLATE ----

class Z:
    """An IMAP session that has switched to DEFLATE."""

    def __init__(self, sock, level=6):
        self.s = sock
        self.out = zlib.compressobj(level, zlib.DEFLATED, -15)
        self.inf = zlib.decompressobj(-15)
        self.buf = b""

    def send(self, data, flush=True):
        z = self.out.compress(data)
        if flush:
            z += self.out.flush(zlib.Z_SYNC_FLUSH)
        self.s.sendall(z)

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError(self.buf)
            self.buf += self.inf.decompress(d)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def until(self, tag):
        lines = []
        while True:
            lines.append(self.line())
            if lines[-1].startswith(tag + b" "):
                return lines


def compressed(y):
    r = login(y)
    r.s.settimeout(20)
    r.ok(b"COMPRESS DEFLATE")
    return Z(r.s)


def bomb(z, size, chunk=1 << 20):
    """size zero bytes, compressed about a thousandfold."""
    zeros = b"\0" * chunk
    try:
        for _ in range(size // chunk):
            z.send(zeros, flush=False)
        z.send(b"", flush=True)
    except (BrokenPipeError, ConnectionResetError):
        pass


def test_deflate_bomb_literals_are_refused_or_bounded(youju):
    """Literals that inflate from kilobytes: one too big for any command
    (non-synchronizing, so its bytes follow at once) is refused before
    its bytes, which are skipped without being held; literals just under
    APPENDLIMIT for commands that take no message (a mailbox name, a
    search string), in several sessions at once, are refused too, as
    only an APPEND's literals are messages: before, each session held
    its 40 MB (about 40 KB compressed) until the command ended."""
    z = compressed(youju)
    z.send(b"x SELECT {4000000000+}\r\n")
    start = rss_kib(youju)
    bomb(z, 64 << 20)
    lines = z.until(b"x")
    assert lines[-1].startswith(b"x BAD [TOOBIG]"), lines
    assert rss_kib(youju) - start < 32 * 1024
    z.s.close()
    start = rss_kib(youju)
    bombs = []
    for cmd in (b"SELECT", b"CREATE", b"SEARCH TEXT", b"LIST \"\"", b"STATUS", b"SELECT"):
        z = compressed(youju)
        z.send(b"x " + cmd + b" {40000000+}\r\n")
        bomb(z, 40000000 // 1000, chunk=1000)
        bombs.append(z)
    grown = rss_kib(youju) - start
    for z in bombs:
        lines = z.until(b"x")
        assert lines[-1].startswith(b"x BAD [TOOBIG]"), lines
        z.s.close()
    assert grown < 64 * 1024, f"{grown} KiB held for 6 refused literals"
    alive(youju)


def test_deflate_bomb_appends_hold_no_messages_worth_each(youju):
    """Six sessions each start an APPEND of 40 MB of zeros under COMPRESS
    (about 40 KB on the wire each) and stall before its end: the server
    does not hold 240 MB of memory for them (it holds each in a file)."""
    start = rss_kib(youju)
    bombs = []
    for _ in range(6):
        z = compressed(youju)
        z.send(b"x APPEND INBOX {40000000+}\r\n")
        bomb(z, 40000000 - (1 << 20))
        bombs.append(z)
    time.sleep(0.5)
    grown = rss_kib(youju) - start
    for z in bombs:
        z.s.close()
    alive(youju)
    assert grown < 64 * 1024, f"{grown} KiB held for 6 unfinished APPENDs"


def test_compress_with_commands_pipelined_behind(youju):
    """RFC 4978 3: compression starts after the tagged OK. A client that
    pipelines compressed commands right behind COMPRESS sent them before
    the switch; the server may drop them or answer them, but must not
    read them as plain text, hang the session forever, or crash. Plain
    text behind COMPRESS is never executed."""
    r = login(youju)
    r.s.settimeout(20)
    out = zlib.compressobj(6, zlib.DEFLATED, -15)
    r.send(b"z COMPRESS DEFLATE\r\n" + out.compress(b"n1 NOOP\r\n") + out.flush(zlib.Z_SYNC_FLUSH))
    assert r.until(b"z")[-1].startswith(b"z OK")
    r.s.close()
    # Plain text behind: dropped, never run.
    r = login(youju)
    r.s.settimeout(20)
    r.ok(b"CREATE Probe")
    r.send(b"z COMPRESS DEFLATE\r\ny DELETE Probe\r\n")
    lines = r.until(b"z")
    assert lines[-1].startswith(b"z OK"), lines
    z = Z(r.s)
    z.buf = r.buf
    z.send(b"w LIST \"\" Probe\r\n")
    lines = z.until(b"w")
    assert lines[-1].startswith(b"w OK"), lines
    assert any(b"Probe" in l for l in lines[:-1]), lines
    assert not any(l.startswith(b"y ") for l in lines), lines
    z.s.close()
    alive(youju)


def threads(y):
    with open(f"/proc/{y.proc.pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads")


def test_input_inflating_to_exactly_a_buffer_parks(youju):
    """Commands that inflate to exactly the 16 KiB a read takes: the
    layer must know whether zlib holds more, not guess. Before, it said
    "maybe", and each such session ran a step that held a worker thread
    until the client's next bytes (up to imap_timeout) instead of being
    parked. Bursts one byte longer or far longer are all answered."""
    time.sleep(3.5)		# workers from the start go back to the few kept
    before = threads(youju)
    sessions = []
    for size in [16384] * 20 + [16392, 16376, 100000]:
        z = compressed(youju)
        z.send(b"a NOOP\r\n" * (size // 8))
        sessions.append((z, size // 8))
    for z, n in sessions:
        got = 0
        while got < n:
            if z.line().startswith(b"a OK"):
                got += 1
    time.sleep(3.5)		# idle workers end after three seconds
    assert threads(youju) - before < 10, (before, threads(youju))
    for z, _ in sessions:
        z.send(b"b NOOP\r\n")
        assert z.until(b"b")[-1].startswith(b"b OK")
        z.s.close()


def starttls(r):
    r.send(b"s STARTTLS\r\n")
    assert r.until(b"s")[-1].startswith(b"s OK")
    r.s = unverified().wrap_socket(r.s)
    r.buf = b""


def test_compress_over_starttls(youju):
    """TLS, then DEFLATE on top (RFC 4978 allows both): commands and a
    big FETCH go through both layers; a second COMPRESS is refused with
    COMPRESSIONACTIVE; STARTTLS after login is refused."""
    r = login(youju)
    fill(r, 2)
    r.s.close()
    r = Raw(youju.ports["imap"])
    r.s.settimeout(20)
    r.line()
    starttls(r)
    r.ok(b"LOGIN " + USER.encode() + b" " + PASSWORD.encode())
    lines, tagged = r.cmd(b"STARTTLS")
    assert tagged.startswith(b"BAD") or tagged.startswith(b"NO"), tagged
    r.ok(b"COMPRESS DEFLATE")
    z = Z(r.s)
    z.send(b"a SELECT INBOX\r\nb FETCH 1:* (BODY.PEEK[] FLAGS)\r\nc COMPRESS DEFLATE\r\n")
    lines = z.until(b"c")
    assert any(l.startswith(b"a OK") for l in lines), lines
    assert any(l.startswith(b"b OK") for l in lines), lines
    assert lines[-1].startswith(b"c NO [COMPRESSIONACTIVE]"), lines
    assert b"body 1" in z.buf or any(b"body 1" in l for l in lines)
    z.send(b"d LOGOUT\r\n")
    assert z.until(b"d")[-1].startswith(b"d OK")
    z.s.close()


def test_client_ending_or_corrupting_its_stream(youju):
    """A client that ends its deflate stream (a final block) or corrupts
    it in the middle of a session: what came before is answered, then the
    session ends, at once and without a crash."""
    z = compressed(youju)
    z.s.sendall(z.out.compress(b"a NOOP\r\n") + z.out.flush(zlib.Z_FINISH))
    assert z.until(b"a")[-1].startswith(b"a OK")
    # Nothing can follow a final block.
    z.s.sendall(zlib.compress(b"b NOOP\r\n")[2:])
    assert ended(z.s, 10)
    z = compressed(youju)
    z.send(b"b NOOP\r\n")
    assert z.until(b"b")[-1].startswith(b"b OK")
    z.s.sendall(bytes(b ^ 0x5a for b in z.out.compress(b"c NOOP\r\n" * 50)
                      + z.out.flush(zlib.Z_SYNC_FLUSH)))
    assert ended(z.s, 10)
    alive(youju)


# ---- TLS ----

def test_stalled_and_garbage_handshakes_lock_out_no_one(youju_with):
    """Forty connections to imaps that never finish a handshake (silent,
    half a ClientHello, garbage, an SSLv2 hello) and forty after STARTTLS:
    a real client still logs in over imaps at once, the stalled ones are
    ended after tls_handshake_timeout, the garbage ones at once."""
    y = youju_with(tls_handshake_timeout="3s", max_preauth_connections="30",
                   preauth_stress_timeout="1s")
    hello = bytes.fromhex("16030100c8010000c40303") + os.urandom(32)
    socks = []
    for i in range(40):
        s = socket.create_connection(("127.0.0.1", y.ports["imaps"]), timeout=10)
        kind = i % 4
        if kind == 1:
            s.sendall(hello[:20])
        elif kind == 2:
            s.sendall(b"a LOGIN alice secret\r\n")
        elif kind == 3:
            s.sendall(bytes.fromhex("80 2e 01 00 02 00 15 00 00 00 10") + b"\0" * 21)
        socks.append((kind, s))
    for i in range(40):
        s = socket.create_connection(("127.0.0.1", y.ports["imap"]), timeout=10)
        s.sendall(b"s STARTTLS\r\n")
        if i % 2:
            s.sendall(hello[:30])
        socks.append((4, s))
    # Over max_preauth_connections, a new client may end one of them
    # once it has been idle for preauth_stress_timeout (before, it is
    # told to try later).
    time.sleep(1.5)
    started = time.monotonic()
    c = unverified().wrap_socket(socket.create_connection(("127.0.0.1", y.ports["imaps"]),
                                                          timeout=10))
    c.sendall(b"a LOGIN " + USER.encode() + b" " + PASSWORD.encode() + b"\r\n")
    got = b""
    while b"a OK" not in got:
        d = c.recv(65536)
        assert d, got
        got += d
    assert time.monotonic() - started < 5
    c.close()
    for kind, s in socks:
        assert ended(s, 10), kind
        s.close()
    alive(y)


def test_plaintext_injected_behind_starttls_is_never_run(youju):
    """RFC 2595 / CVE-2011-0411: commands sent in clear text behind
    STARTTLS, in the same segment or a later one before the handshake,
    must never run inside the TLS session."""
    r = Raw(youju.ports["imap"])
    r.s.settimeout(20)
    r.line()
    r.send(b"s STARTTLS\r\n")
    time.sleep(0.3)		# a segment of its own, after the command was read
    r.send(b"i LOGIN " + USER.encode() + b" " + PASSWORD.encode() + b"\r\n")
    assert r.until(b"s")[-1].startswith(b"s OK")
    try:
        r.s = unverified().wrap_socket(r.s)
    except (ssl.SSLError, OSError):
        alive(youju)
        return
    r.buf = b""
    lines = r.until_any = None
    r.send(b"c CAPABILITY\r\n")
    lines = r.until(b"c")
    assert not any(l.startswith(b"i ") for l in lines), lines
    lines, tagged = r.cmd(b"SELECT INBOX")
    assert tagged.startswith(b"NO") or tagged.startswith(b"BAD"), "injected LOGIN ran"


# ---- FETCH ----

def test_fetch_macros_in_a_pipeline(youju):
    """ALL, FAST and FULL mixed with other FETCHes in one pipeline: each
    response has exactly its macro's items, nothing carried over from the
    command before (RFC 3501 6.4.5); a macro in a list is BAD."""
    r = login(youju)
    fill(r, 2)
    r.ok(b"SELECT INBOX")
    r.send(b"a FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject From)] BINARY.PEEK[1]<0.3>)\r\n"
           b"b FETCH 1 FAST\r\nc FETCH 2 ALL\r\nd FETCH 1:2 FULL\r\n"
           b"e FETCH 1 (FLAGS ALL)\r\nf FETCH 1 FAST\r\n")
    lines = r.until(b"f")
    by = {}
    for l in lines:
        m = re.match(rb"([a-f]) ", l)
        if m:
            by.setdefault(m.group(1), []).append(l)
        elif l.startswith(b"* "):
            by.setdefault(b"pending", []).append(l)
    text = b"\n".join(lines)
    names = lambda l: re.findall(rb"(?:\(| )(FLAGS|INTERNALDATE|RFC822\.SIZE|ENVELOPE|BODY|"
                                 rb"BODY\[[^\]]*\](?:<\d+>)?|BINARY\[[^\]]*\](?:<\d+>)?|UID) ",
                                 l)
    fetches = [l for l in lines if b" FETCH (" in l]
    assert set(names(fetches[1])) == {b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"}, fetches[1]
    assert set(names(fetches[2])) == {b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE"}, \
        fetches[2]
    for f in fetches[3:5]:
        assert set(names(f)) == {b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE",
                                 b"BODY"}, f
    assert set(names(fetches[5])) == {b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"}, fetches[5]
    assert [l for l in lines if l.startswith(b"e ")][0].startswith(b"e BAD"), text
    for t in b"abcdf":
        assert [l for l in lines if l.startswith(bytes([t]) + b" ")][0][2:4] == b"OK", text


def read_fetch(r, tag):
    """A FETCH's lines with each literal's bytes put in place."""
    out = []
    while True:
        line = r.line()
        while True:
            m = re.search(rb"\{(\d+)\}$", line)
            if not m:
                break
            n = int(m.group(1))
            while len(r.buf) < n:
                d = r.s.recv(65536)
                if not d:
                    raise EOFError
                r.buf += d
            line += b"\r\n" + r.buf[:n]
            r.buf = r.buf[n:]
            line += r.line()
        out.append(line)
        if line.startswith(tag + b" "):
            return out


BROKEN = [
    (b"base64", b"SGVsbG8*gd29ybGQ=\r\n!!!!\r\nAAA"),
    (b"base64", b"=====\r\n"),
    (b"base64", b"SGVsbG8gd29ybGQ=SGVsbG8=\r\n"),
    (b"quoted-printable", b"caf=E\r\n=ZZ=\r\n=4"),
    (b"quoted-printable", b"soft break at end=\r\n="),
    (b"x-uuencode", b"begin 644 f\r\n#86)C\r\n`\r\nend\r\n"),
    (b"8bit", b"\xff\xfe\x00nul\r\n"),
    (b"binary", b"\x00\x01\x02"),
]


def test_binary_of_broken_encodings(youju):
    """RFC 3516: BINARY[1] of a part whose transfer encoding is broken
    (bad base64, cut quoted-printable) or unknown: either the decoded
    bytes, with BINARY.SIZE telling their exact count, or NO
    [UNKNOWN-CTE] for an encoding the server does not know."""
    r = login(youju)
    for cte, body in BROKEN:
        m = (b"From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
             b"boundary=B\r\n\r\n--B\r\nContent-Type: application/octet-stream\r\n"
             b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n" + body + b"\r\n--B--\r\n")
        r.append(b"INBOX", m, DATE)
    r.ok(b"SELECT INBOX")
    for i, (cte, body) in enumerate(BROKEN, 1):
        r.n += 1
        tag = b"t%d" % r.n
        r.send(tag + b" FETCH %d (BINARY.PEEK[1] BINARY.SIZE[1])\r\n" % i)
        lines = read_fetch(r, tag)
        if cte == b"x-uuencode":
            assert lines[-1].startswith(tag + b" NO [UNKNOWN-CTE]"), lines
            continue
        assert lines[-1].startswith(tag + b" OK"), (cte, body, lines)
        f = lines[0]
        size = int(re.search(rb"BINARY\.SIZE\[1\] (\d+)", f).group(1))
        m = re.search(rb"BINARY\[1\] ~?\{(\d+)\}\r\n", f)
        assert m, f
        assert int(m.group(1)) == size, (cte, body, f)
    alive(youju)


def test_partials_at_two_to_the_32(youju):
    """RFC 3501: partial offsets and lengths are 32-bit numbers. At
    4294967295 the answer is empty (BODY[]<4294967295> ""), the sum of
    offset and length must not wrap, and 4294967296 is BAD."""
    r = login(youju)
    fill(r, 1)
    r.ok(b"SELECT INBOX")
    body = r.ok(b"FETCH 1 BODY.PEEK[]")[0]
    size = int(re.search(rb"\{(\d+)\}", body).group(1))
    cases = [
        (b"BODY.PEEK[]<4294967295.4294967295>", rb"BODY\[\]<4294967295> (\"\"|\{0\})"),
        (b"BODY.PEEK[]<0.4294967295>", rb"BODY\[\]<0> \{%d\}" % size),
        (b"BODY.PEEK[TEXT]<4294967295.1>", rb"BODY\[TEXT\]<4294967295> (\"\"|\{0\})"),
        (b"BINARY.PEEK[1]<4294967295.4294967295>", rb"BINARY\[1\]<4294967295> (\"\"|~?\{0\})"),
        (b"BODY.PEEK[HEADER.FIELDS (From)]<4294967290.4294967295>",
         rb"<4294967290> (\"\"|\{0\})"),
        (b"BODY.PEEK[]<5.4294967295>", rb"BODY\[\]<5> \{%d\}" % (size - 5)),
    ]
    for item, want in cases:
        r.n += 1
        tag = b"t%d" % r.n
        r.send(tag + b" FETCH 1 " + item + b"\r\n")
        lines = read_fetch(r, tag)
        assert lines[-1].startswith(tag + b" OK"), (item, lines)
        assert re.search(want, lines[0]), (item, lines)
    for item in (b"BODY.PEEK[]<4294967296.1>", b"BODY.PEEK[]<0.4294967296>",
                 b"BODY.PEEK[]<0.0>", b"BINARY.PEEK[1]<99999999999999999999.1>"):
        lines, tagged = r.cmd(b"FETCH 1 " + item)
        assert tagged.startswith(b"BAD"), (item, lines, tagged)
    alive(youju)


def test_fetch_of_what_another_session_expunged(youju):
    """Session A has not been told of B's EXPUNGE yet: FETCH by sequence
    number still names the messages A knows. A gets each one's own data
    or NO, never another message's, and no EXPUNGE during a FETCH (RFC
    3501 7.4.1); the next NOOP tells it."""
    r = login(youju)
    fill(r, 3)
    a = login(youju)
    a.ok(b"SELECT INBOX")
    b = login(youju)
    b.ok(b"SELECT INBOX")
    b.ok(b"STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok(b"EXPUNGE")
    a.n += 1
    tag = b"t%d" % a.n
    a.send(tag + b" FETCH 1:3 (UID BODY.PEEK[TEXT])\r\n")
    lines = read_fetch(a, tag)
    assert not any(re.match(rb"\* \d+ EXPUNGE", l) for l in lines), lines
    for l in lines[:-1]:
        m = re.match(rb"\* (\d+) FETCH \(UID (\d+) BODY\[TEXT\] \{\d+\}\r\nbody (\d+)", l)
        assert m, lines
        seq, uid, n = (int(x) for x in m.groups())
        assert seq == uid == n + 1, lines
    if lines[-1].startswith(tag + b" OK"):
        assert len(lines) in (3, 4), lines
    else:
        assert lines[-1].startswith(tag + b" NO"), lines
    later = a.ok(b"NOOP")
    assert b"* 2 EXPUNGE" in later, later
    # UID FETCH may tell of the expunge.
    lines = a.ok(b"UID FETCH 1:* FLAGS")
    assert len([l for l in lines if b" FETCH " in l]) == 2, lines


def test_slow_reader_while_mailbox_is_expunged_and_deleted(youju_with):
    """A reads a big FETCH slowly while B expunges everything and deletes
    the mailbox: every literal A gets is whole and the bytes of its own
    message, the FETCH ends (OK or NO), or the session ends (BYE, or
    closed); the server stays up."""
    y = youju_with(write_timeout="20s")
    r = login(y)
    r.ok(b"CREATE Big")
    big = []
    for i in range(12):
        body = (b"%02d" % i) * (200 * 1024) + b"\r\n"
        big.append(body)
        r.append(b"Big", msg(b"big %d" % i, body=body), DATE)
    r.s.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(20)
    s.connect(("127.0.0.1", y.ports["imap"]))
    a = Raw.__new__(Raw)
    a.s, a.buf, a.n = s, b"", 0
    a.line()
    a.ok(b"LOGIN " + USER.encode() + b" " + PASSWORD.encode())
    a.ok(b"SELECT Big")
    a.send(b"f FETCH 1:* BODY.PEEK[TEXT]\r\n")
    first = a.line()
    assert first.startswith(b"* 1 FETCH"), first
    b = login(y)
    b.ok(b"SELECT Big")
    b.ok(b"STORE 1:* +FLAGS.SILENT (\\Deleted)")
    b.ok(b"CLOSE")
    b.ok(b"DELETE Big")
    got = 0
    try:
        n = int(re.search(rb"\{(\d+)\}$", first).group(1))
        line = first
        while True:
            while len(a.buf) < n:
                time.sleep(0.005)
                d = a.s.recv(16384)
                if not d:
                    raise EOFError
                a.buf += d
            seq = int(line.split()[1])
            assert a.buf[:n] == big[seq - 1], seq
            got += 1
            a.buf = a.buf[n:]
            assert a.line() == b")"
            line = a.line()
            if line.startswith(b"* BYE"):
                assert ended(a.s, 10)
                break
            if line.startswith(b"f "):
                assert line.startswith(b"f OK") or line.startswith(b"f NO"), line
                break
            m = re.match(rb"\* \d+ FETCH \(BODY\[TEXT\] \{(\d+)\}$", line)
            assert m, line
            n = int(m.group(1))
    except (EOFError, ConnectionResetError):
        pass
    assert got >= 1
    s.close()
    b.s.close()
    r = login(y)
    lines, tagged = r.cmd(b"SELECT Big")
    assert tagged.startswith(b"NO"), tagged
    alive(y)


# ---- APPEND ----

def internaldate(r):
    """The last message's INTERNALDATE, its day without padding."""
    line = r.one(b"FETCH * INTERNALDATE", b"* ")
    m = re.search(rb'INTERNALDATE "([^"]*)"', line)
    assert m, line
    return m.group(1).lstrip(b" 0")


def test_append_internaldate_zones_and_years(youju):
    """Every date-time RFC 3501's syntax takes is stored and given back
    as it was sent, zone included (+9959 and -1200 too; the day may be
    padded with a space or a zero); -0000 is zone zero; a day that does
    not exist, an hour 24 or a zone minute 60 is BAD; year 9999 west of
    UTC (year 10000 there) and year 0000 east of it (year -1 there) are
    kept or refused, never garbled."""
    r = login(youju)
    r.ok(b"SELECT INBOX")
    kept = [b"29-Feb-2020 23:59:59 +9959", b"01-Jan-2020 00:00:00 -1200",
            b" 1-Mar-2021 12:00:00 +1400", b"31-Dec-1969 23:59:59 +0000",
            b"01-Jan-1970 00:00:00 +0001", b"31-Dec-9999 23:59:59 +0000"]
    for d in kept:
        r.append(b"INBOX", msg(b"d"), d)
        assert internaldate(r) == d.lstrip(b" 0"), d
    r.append(b"INBOX", msg(b"d"), b"01-Jan-2020 00:00:00 -0000")
    assert internaldate(r) in (b"1-Jan-2020 00:00:00 +0000", b"1-Jan-2020 00:00:00 -0000")
    for d in (b"30-Feb-2020 00:00:00 +0000", b"29-Feb-2021 00:00:00 +0000",
              b"01-Jan-2020 24:00:00 +0000", b"01-Jan-2020 00:00:00 +0060",
              b"01-Jan-2020 00:00:00 0000", b"01-Jan-20 00:00:00 +0000",
              b"01-Foo-2020 00:00:00 +0000",
              b"01-Jan-2020 00:00:00 +00000"):
        lines, tagged = r.cmd(b"APPEND INBOX \"" + d + b"\" {1+}\r\nx")
        assert tagged.startswith(b"BAD"), (d, tagged)
    for d in (b"31-Dec-9999 23:59:59 -1200", b"01-Jan-0000 00:00:00 +1200",
              b"01-Jan-0000 00:00:00 +0000"):
        m = msg(b"edge")
        lines, tagged = r.cmd(b"APPEND INBOX \"" + d + b"\" {%d+}\r\n" % len(m) + m)
        if tagged.startswith(b"OK"):
            assert internaldate(r) == d.lstrip(b" 0"), d
        else:
            assert tagged.startswith(b"BAD") or tagged.startswith(b"NO"), (d, tagged)
    # Searching and sorting by internal date still work over all of them.
    r.ok(b"SEARCH SINCE 1-Jan-1900")
    r.ok(b"SORT (ARRIVAL) UTF-8 ALL")
    r.s.close()
    alive(youju)


def test_multiappend_second_literal_too_big_stores_nothing(youju_with):
    """MULTIAPPEND (RFC 3502) is all or nothing: when the second
    literal is over APPENDLIMIT (synchronizing: NO [TOOBIG] before its
    bytes; non-synchronizing: BAD [TOOBIG], its bytes skipped), the first
    message is not stored, and the session goes on."""
    y = youju_with(message_size_limit="64k")
    r = login(y)
    r.ok(b"SELECT INBOX")
    m = msg(b"first")
    big = 64 * 1024 + 1
    r.send(b"a APPEND INBOX (\\Seen) {%d+}\r\n" % len(m) + m + b" {%d}\r\n" % big)
    lines = r.until(b"a")
    assert lines[-1].startswith(b"a NO [TOOBIG]"), lines
    r.send(b"b APPEND INBOX {%d+}\r\n" % len(m) + m + b" \"" + DATE + b"\" {%d+}\r\n" % big
           + b"x" * big + b"\r\n")
    lines = r.until(b"b")
    assert lines[-1].startswith(b"b BAD [TOOBIG]"), lines
    r.send(b"c APPEND INBOX {%d+}\r\n" % len(m) + m + b" {%d+}\r\n" % big + b"y" * big
           + b" {%d+}\r\n" % len(m) + m + b"\r\n")
    lines = r.until(b"c")
    assert lines[-1].startswith(b"c BAD [TOOBIG]"), lines
    lines = r.ok(b"UID SEARCH ALL")
    assert lines[-1] == b"* SEARCH", lines
    lines = r.ok(b"STATUS INBOX (MESSAGES)")
    assert b"MESSAGES 0" in lines[-1], lines
    r.s.close()
    assert y.uids(USER) == []
    alive(y)


def test_compressed_session_parks_between_and_inside_blocks(youju_with):
    """A DEFLATE session parks (session_park_delay 0: at once) while
    idle: between the client's blocks only its history is kept, and the
    client's next commands refer back into it (the same text again, a
    32 KiB window); inside a block (a flush cut in two with a pause) the
    stream is kept whole. IDLE under COMPRESS tells of new mail through
    a deflate stream begun afresh. Nothing is lost or garbled."""
    y = youju_with(session_park_delay="0")
    r = login(y)
    fill(r, 3)
    r.s.close()
    r = login(y)
    r.s.settimeout(20)
    r.ok(b"COMPRESS DEFLATE")
    z = Z(r.s, level=9)
    pad = b"x NOOP " + b"filler words that repeat " * 40 + b"\r\n"
    for round_ in range(4):
        z.send(pad + b"a%d SELECT INBOX\r\nb%d FETCH 1:* (FLAGS BODY.PEEK[TEXT])\r\n"
               % (round_, round_))
        lines = z.until(b"b%d" % round_)
        assert lines[-1].startswith(b"b%d OK" % round_), lines
        assert sum(1 for l in lines if b" FETCH (" in l) == 3, lines
        time.sleep(0.5)		# parked, at a block boundary
    # A flush cut in the middle, with a pause: parked inside a block.
    data = z.out.compress(pad + b"c SELECT INBOX\r\nd NOOP\r\n") + z.out.flush(zlib.Z_SYNC_FLUSH)
    for i in range(0, len(data), max(1, len(data) // 5)):
        z.s.sendall(data[i:i + max(1, len(data) // 5)])
        time.sleep(0.3)
    assert z.until(b"d")[-1].startswith(b"d OK")
    # IDLE, parked, told of a new message.
    z.send(b"e IDLE\r\n")
    assert z.line().startswith(b"+")
    time.sleep(0.5)
    w = login(y)
    w.append(b"INBOX", msg(b"new"), DATE)
    w.s.close()
    got = []
    while not any(l.endswith(b" EXISTS") for l in got):
        got.append(z.line())
    assert b"* 4 EXISTS" in got, got
    time.sleep(0.5)
    z.send(b"DONE\r\n")
    assert z.until(b"e")[-1].startswith(b"e OK")
    z.send(pad + b"f FETCH 4 BODY.PEEK[HEADER.FIELDS (Subject)]\r\n")
    lines = z.until(b"f")
    assert lines[-1].startswith(b"f OK") and any(b"Subject: new" in l for l in lines), lines
    z.s.close()
