"""Hostile-client probes against the IMAP limits merged last: literal
sizes at the edges, literals as header field names, the 100 text keys of
SEARCH/SORT/THREAD across OR/NOT and SEARCHRES, keyword names and slots
(also filled by several sessions at once), kill -9 in the middle of
APPEND and STORE bursts, CONDSTORE sessions storing at once while mail
arrives, and readers that stall or crawl under COMPRESS and TLS. Each
must get the right IMAP answer, never a crash, a hang or a lost message."""

import os
import socket
import threading

from conftest import PASSWORD, USER
from test_imap_search import login, msg
from test_runtime_hold import ended

DATE = b"10-Feb-2020 12:00:00 +0000"


def alive(y):
    r = login(y)
    r.ok(b"NOOP")
    r.s.close()


def fill(r, n=3):
    for i in range(n):
        r.append(b"INBOX", msg(b"s%d" % i), DATE)


# ---- literals ----

def test_literal_sizes_at_the_edges(youju):
    r = login(youju)
    fill(r, 1)
    r.s.close()
    for head, want in [(b"{-1}", b"BAD"), (b"{-1+}", b"BAD"), (b"{}", b"BAD"), (b"{+}", b"BAD"),
                       (b"{ 1}", b"BAD"), (b"{1 }", b"BAD"), (b"{0x10}", b"BAD"),
                       (b"{99999999999999999999}", b"NO [TOOBIG]"),
                       (b"{9223372036854775808}", b"NO [TOOBIG]"),
                       (b"{18446744073709551615+}", b"BAD [TOOBIG]"),
                       (b"{0+}\r\n", b"NO [CANNOT]"), (b"~{0+}\r\n", b"NO [CANNOT]")]:
        # Each on its own session: after a refused non-synchronizing
        # literal the server skips its bytes (RFC 7888 4).
        r = login(youju)
        r.send(b"x APPEND INBOX " + head + b"\r\n")
        lines = r.until(b"x")
        assert lines[-1].startswith(b"x " + want), (head, lines)
        if not head.endswith(b"+}"):
            r.ok(b"NOOP")
        r.s.close()
    alive(youju)


def test_header_field_literals_odd(youju):
    r = login(youju)
    fill(r, 1)
    r.ok(b"SELECT INBOX")
    # A field name is an astring of ftext (RFC 5322 3.6.8: printable
    # ASCII but ':'): no empty name, space, colon, NUL, line break or
    # 8-bit byte, whatever carries it; a list or a literal8 is no astring.
    for i, name in enumerate([b"{0+}\r\n", b"{4+}\r\nFr m", b"{5+}\r\nFrom:",
                              b"{5+}\r\nFr\x00om", b"{5+}\r\nFr\r\nm", b"\"\"", b"(From)",
                              b"{6+}\r\nFr\xc3\xa9m", b"{2+}\r\nFr{3+}\r\nom ",
                              b"~{4+}\r\nFrom"]):
        tag = b"H%d" % i
        r.send(tag + b" FETCH 1 BODY.PEEK[HEADER.FIELDS (" + name + b")]\r\n")
        lines = r.until(tag)
        assert lines[-1].startswith(tag + b" BAD"), (name, lines)
    # ')' ']' '{' '"' are ftext: asked for, they are echoed as strings.
    for i, (name, echo) in enumerate([(b"{5+}\r\nFr)om", b'"Fr)om"'), (b"{5+}\r\nFr]om", b'"Fr]om"'),
                                      (b"{2+}\r\n{1", b'"{1"'), (b'"Fr\\"om"', b'"Fr\\"om"')]):
        tag = b"G%d" % i
        r.send(tag + b" FETCH 1 BODY.PEEK[HEADER.FIELDS (" + name + b")]\r\n")
        lines = r.until(tag)
        assert lines[0] == b"* 1 FETCH (BODY[HEADER.FIELDS (" + echo + b")] {2}", (name, lines)
        assert lines[-1].startswith(tag + b" OK"), (name, lines)
    r.ok(b"NOOP")
    alive(youju)


# ---- 100 text keys ----

def keys(n, word=b"x"):
    return b" ".join(b"BODY " + word for _ in range(n))


def ors(n):
    """n text keys as a balanced tree of OR (search keys nest at most 32
    deep), each under NOT."""
    if n == 1:
        return b"NOT SUBJECT q"
    return b"OR (" + ors(n // 2) + b") (" + ors(n - n // 2) + b")"


def test_text_keys_100_and_101_everywhere(youju):
    r = login(youju)
    fill(r)
    r.ok(b"SELECT INBOX")
    limit = b"NO [LIMIT] Too many text search keys"
    for n, ok in ((100, True), (101, False)):
        for q in [b"SEARCH " + keys(n), b"SEARCH " + ors(n),
                  b"SEARCH NOT (" + keys(n) + b")",
                  b"SEARCH RETURN (COUNT) " + keys(n),
                  b"UID SEARCH RETURN (SAVE) " + keys(n),
                  b"SORT (DATE) UTF-8 " + ors(n), b"UID SORT RETURN (ALL) (DATE) UTF-8 " + keys(n),
                  b"THREAD REFERENCES UTF-8 " + keys(n),
                  b"THREAD ORDEREDSUBJECT UTF-8 " + ors(n),
                  b"SEARCH HEADER X-A b " + keys(n - 1)]:
            t = r.cmd(q)[1]
            if ok:
                assert t.startswith(b"OK"), (n, q[:40], t)
            else:
                assert t == limit, (n, q[:40], t)
    alive(youju)


def test_failed_save_empties_dollar(youju):
    r = login(youju)
    fill(r)
    r.ok(b"SELECT INBOX")
    r.ok(b"SEARCH RETURN (SAVE) ALL")
    assert r.one(b"SEARCH $", b"* SEARCH") == b"* SEARCH 1 2 3"
    assert r.cmd(b"SEARCH RETURN (SAVE) " + ors(101))[1].startswith(b"NO [LIMIT]")
    assert r.one(b"SEARCH $", b"* SEARCH") == b"* SEARCH"
    # A SAVE the parser refuses (a bad key after it) empties it too.
    r.ok(b"SEARCH RETURN (SAVE) 2")
    assert r.cmd(b"SEARCH RETURN (SAVE) " + keys(50) + b" BOGUS")[1].startswith(b"BAD")
    assert r.one(b"SEARCH $", b"* SEARCH") == b"* SEARCH"
    # SORT has no SAVE (RFC 5267 gives it none): BAD, and $ is left.
    r.ok(b"SEARCH RETURN (SAVE) 3")
    assert r.cmd(b"SORT RETURN (SAVE) (DATE) UTF-8 " + keys(101))[1].startswith(b"BAD")
    assert r.one(b"SEARCH $", b"* SEARCH") == b"* SEARCH 3"
    alive(youju)


# ---- keywords ----

def test_keyword_names_at_the_limit(youju):
    r = login(youju)
    fill(r, 1)
    r.ok(b"SELECT INBOX")
    r.ok(b"STORE 1 +FLAGS (" + b"k" * 100 + b")")
    lines = r.ok(b"FETCH 1 FLAGS")
    assert b"k" * 100 in lines[0], lines
    for bad in [b"k" * 101, b"k*", b"k%", b"k]", b"\\Bogus\\", b"k\x7f"]:
        t = r.cmd(b"STORE 1 +FLAGS (" + bad + b")")[1]
        assert t.startswith(b"BAD") or t.startswith(b"NO"), (bad, t)
    alive(youju)


def test_sessions_fill_keyword_slots_at_once(youju):
    r = login(youju)
    fill(r, 4)
    r.s.close()
    results = {}

    def worker(w):
        c = login(youju)
        c.ok(b"SELECT INBOX")
        got = []
        for k in range(20):
            name = b"w%dk%d" % (w, k)
            t = c.cmd(b"STORE %d +FLAGS.SILENT (%s)" % (w + 1, name))[1]
            got.append((name, t))
        results[w] = got
        c.s.close()

    ts = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert len(results) == 4
    oks = {(w, n) for w, got in results.items() for n, t in got if t.startswith(b"OK")}
    for got in results.values():
        for n, t in got:
            assert t.startswith(b"OK") or t.startswith(b"NO [LIMIT]"), (n, t)
    assert len(oks) == 63, len(oks)
    c = login(youju)
    lines = c.ok(b"SELECT INBOX")
    pf = [x for x in lines if x.startswith(b"* OK [PERMANENTFLAGS")]
    assert pf and b"\\*" not in pf[0], pf
    for w in range(4):
        line = c.ok(b"FETCH %d FLAGS" % (w + 1))[0]
        have = {n for n in line.split(b"(FLAGS (")[1].rstrip(b")").split() if n.startswith(b"w")}
        assert have == {n for ww, n in oks if ww == w}, (w, have)
    alive(youju)


# ---- STORE and APPEND bursts, deliveries meanwhile, kill -9 ----

def burst_append(y, w, acked, stop):
    """APPENDs until the server goes; each OK's UID and subject."""
    try:
        r = login(y)
        for i in range(100000):
            if stop.is_set():
                return
            subject = b"w%dm%d" % (w, i)
            m = msg(subject)
            tag = b"a%d" % i
            r.s.sendall(tag + b" APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
            line = r.line()
            assert line.startswith(tag + b" OK [APPENDUID "), line
            acked.append((int(line.split(b" ")[4].rstrip(b"]")), subject))
    except (OSError, EOFError):
        return


def burst_store(y, w, acked, stop):
    """UID STORE +FLAGS of one keyword each until the server goes; each
    OK'd (uid, keyword)."""
    try:
        r = login(y)
        r.ok(b"SELECT INBOX")
        for i in range(100000):
            if stop.is_set():
                return
            uid, kw = i % 20 + 1, b"s%dk%d" % (w, i % 10)
            t = r.cmd(b"UID STORE %d +FLAGS.SILENT (%s \\Flagged)" % (uid, kw))[1]
            assert t.startswith(b"OK"), t
            acked.append((uid, kw))
    except (OSError, EOFError):
        return


def burst_deliver(y, stop):
    import smtplib
    try:
        with smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=10) as s:
            s.ehlo("client.example.org")
            while not stop.is_set():
                s.sendmail("bob@example.org", ["alice@example.test"], msg(b"delivered"))
    except (OSError, smtplib.SMTPException):
        return


def test_kill_during_store_and_append_bursts_loses_nothing_answered(youju):
    import time
    r = login(youju)
    fill(r, 20)
    r.s.close()
    appended, stored, stop = [], [], threading.Event()
    ts = [threading.Thread(target=burst_append, args=(youju, w, appended, stop)) for w in range(3)]
    ts += [threading.Thread(target=burst_store, args=(youju, w, stored, stop)) for w in range(2)]
    ts += [threading.Thread(target=burst_deliver, args=(youju, stop))]
    for t in ts:
        t.start()
    time.sleep(2.0)
    youju.kill()
    stop.set()
    for t in ts:
        t.join(30)
    print(f"{len(appended)} appends and {len(stored)} stores answered OK before the kill")
    assert appended and stored, (len(appended), len(stored))
    youju.start()
    c = login(youju)
    c.ok(b"SELECT INBOX")
    for uid, subject in appended:
        lines = c.ok(b"UID FETCH %d BODY.PEEK[HEADER.FIELDS (SUBJECT)]" % uid)
        assert lines and lines[-1].endswith(b"UID %d)" % uid), (uid, subject, lines)
        assert b"Subject: " + subject in lines[1], (uid, subject, lines)
    flags = {}
    for uid in range(1, 21):
        line = c.ok(b"UID FETCH %d FLAGS" % uid)[0]
        flags[uid] = set(line.split(b"FLAGS (")[1].split(b")")[0].split())
    for uid, kw in stored:
        assert kw in flags[uid] and b"\\Flagged" in flags[uid], (uid, kw, flags[uid])
    alive(youju)


# ---- readers that stop, or read slowly, under COMPRESS and TLS ----

WRITE_TIMEOUT = 2


def fill_random(y, n, size):
    """n messages of size bytes that deflate cannot shrink."""
    import base64
    r = login(y)
    for i in range(n):
        body = base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")
        r.append(b"INBOX", msg(b"big %d" % i, body=body), DATE)
    r.s.close()


def small_window(tls=False, port=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    if tls:
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s)
    return s


def read_until(s, want, inflate=None):
    got = b""
    while want not in got:
        d = s.recv(65536)
        assert d, got[-200:]
        got += inflate.decompress(d) if inflate else d
    return got


def stalled_reader(y, compress=False, tls=False):
    """Logs in (maybe COMPRESS), asks for every message, reads nothing."""
    import zlib
    s = small_window(tls, y.ports["imaps" if tls else "imap"])
    read_until(s, b"\r\n")
    s.sendall(b"a LOGIN " + USER.encode() + b" " + PASSWORD.encode() + b"\r\n")
    read_until(s, b"a OK")
    out = None
    if compress:
        s.sendall(b"z COMPRESS DEFLATE\r\n")
        read_until(s, b"z OK")
        out = zlib.compressobj(6, zlib.DEFLATED, -15)
    line = b"b SELECT INBOX\r\nc FETCH 1:* BODY.PEEK[]\r\n"
    s.sendall(out.compress(line) + out.flush(zlib.Z_SYNC_FLUSH) if out else line)
    return s


def test_stalled_readers_under_compress_and_tls_are_ended(youju_with):
    import re
    import time
    y = youju_with(write_timeout=f"{WRITE_TIMEOUT}s")
    fill_random(y, 20, 512 * 1024)	# more than the socket buffers hold
    readers = [stalled_reader(y, compress=True), stalled_reader(y, tls=True),
               stalled_reader(y, compress=False)]
    time.sleep(WRITE_TIMEOUT + 2)
    for s in readers:
        assert ended(s, 15), "a stalled reader's session was not ended"
    log = y.read_log()
    assert len(re.findall(rb"imap: session=\w+ logout user=\S+ reason=write-timeout",
                          log.encode() if isinstance(log, str) else log)) >= 3, log[-3000:]
    alive(y)


def test_steady_reader_under_compress_gets_everything(youju_with):
    import time
    import zlib
    y = youju_with(write_timeout=f"{WRITE_TIMEOUT}s")
    fill_random(y, 3, 512 * 1024)
    s = small_window(port=y.ports["imap"])
    read_until(s, b"\r\n")
    s.sendall(b"a LOGIN " + USER.encode() + b" " + PASSWORD.encode() + b"\r\nz COMPRESS DEFLATE\r\n")
    read_until(s, b"z OK")
    out, inflate = zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)
    s.sendall(out.compress(b"b SELECT INBOX\r\nc FETCH 1:* BODY.PEEK[]\r\n")
              + out.flush(zlib.Z_SYNC_FLUSH))
    got, started = b"", time.monotonic()
    while b"\r\nc OK" not in got[-200:]:
        time.sleep(0.1)		# about 160 KiB/s: 64 KiB well inside 2 s
        d = s.recv(16384)
        assert d, got[-300:]
        got += inflate.decompress(d)
    assert time.monotonic() - started > WRITE_TIMEOUT, "the link was not slow"
    assert got.count(b" FETCH (BODY[] {") == 3
    s.close()


def test_sessions_append_and_copy_into_full_slots_at_once(youju):
    """Four APPENDs of 20 new keywords each and a COPY bringing 20 more
    race for 63 slots: each is all or nothing, OK or NO [LIMIT]."""
    r = login(youju)
    r.ok(b"CREATE Other")
    names = b" ".join(b"c%d" % k for k in range(20))
    r.append(b"Other", msg(b"copied"), DATE, flags=names)
    r.s.close()
    results = {}

    def appender(w):
        c = login(youju)
        m = msg(b"app%d" % w)
        flags = b" ".join(b"a%dk%d" % (w, k) for k in range(20))
        c.s.sendall(b"x APPEND INBOX (%s) {%d+}\r\n" % (flags, len(m)) + m + b"\r\n")
        results[w] = c.line()
        c.s.close()

    def copier():
        c = login(youju)
        c.ok(b"SELECT Other")
        results["copy"] = b"x " + c.cmd(b"COPY 1 INBOX")[1]
        c.s.close()

    ts = [threading.Thread(target=appender, args=(w,)) for w in range(4)]
    ts.append(threading.Thread(target=copier))
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert len(results) == 5, results
    for k, line in results.items():
        assert line.startswith(b"x OK") or line.startswith(b"x NO [LIMIT]"), (k, line)
    landed = [k for k, line in results.items() if line.startswith(b"x OK")]
    assert len(landed) == 3, results
    c = login(youju)
    c.ok(b"SELECT INBOX")
    lines = c.ok(b"FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    text = b"\n".join(lines)
    for k in results:
        subject = b"copied" if k == "copy" else b"app%d" % k
        assert (b"Subject: " + subject in text) == (k in landed), (k, text[:2000])
    assert text.count(b"FETCH (FLAGS (") == 3
    for line in lines:
        if line.startswith(b"* ") and b"FLAGS (" in line:
            kws = [f for f in line.split(b"FLAGS (")[1].split(b")")[0].split() if f[:1] != b"\\"]
            assert len(kws) == 20, line
    alive(youju)


def test_many_sessions_store_while_deliveries_run(youju):
    """Six CONDSTORE sessions flip flags on the same messages while mail
    arrives: every STORE is answered, each session's MODSEQs only grow,
    and at the end all sessions see the same flags."""
    r = login(youju)
    fill(r, 10)
    r.s.close()
    stop, errors, seen = threading.Event(), [], {}

    def storer(w):
        try:
            c = login(youju)
            c.ok(b"ENABLE CONDSTORE")
            c.ok(b"SELECT INBOX")
            last = {}
            for i in range(150):
                op = b"+" if (i + w) % 2 else b"-"
                for line in c.ok(b"UID STORE 1:10 %sFLAGS (\\Seen k%d)" % (op, i % 3)):
                    if b"MODSEQ (" in line and b"UID " in line:
                        uid = int(line.split(b"UID ")[1].split()[0].rstrip(b")"))
                        ms = int(line.split(b"MODSEQ (")[1].split(b")")[0])
                        assert ms > last.get(uid, 0), (uid, ms, last.get(uid))
                        last[uid] = ms
            c.ok(b"NOOP")
            seen[w] = c
        except Exception as e:  # noqa: B902 - reported by the test
            errors.append((w, e))

    def deliverer():
        import smtplib
        with smtplib.SMTP("127.0.0.1", youju.ports["smtp"], timeout=30) as s:
            s.ehlo("client.example.org")
            while not stop.is_set():
                s.sendmail("bob@example.org", ["alice@example.test"], msg(b"delivered"))

    d = threading.Thread(target=deliverer)
    d.start()
    ts = [threading.Thread(target=storer, args=(w,)) for w in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    stop.set()
    d.join(30)
    assert not errors, errors
    # A FETCH answers from the session's view and tells of the others'
    # changes after it (RFC 9051 7): the last word on each UID counts.
    views = set()
    for c in seen.values():
        last = {}
        for line in c.ok(b"UID FETCH 1:10 (FLAGS MODSEQ)"):
            if b" FETCH (" not in line:
                continue
            uid = int(line.split(b"UID ")[1].split()[0].rstrip(b")"))
            # \\Recent is the session's own (RFC 3501 2.3.2): not compared
            last[uid] = (sorted(f for f in line.split(b"FLAGS (")[1].split(b")")[0].split()
                                if f != b"\\Recent"),
                         line.split(b"MODSEQ (")[1].split(b")")[0])
        views.add(repr(sorted(last.items())))
    assert len(views) == 1, "\n".join(repr(v) for v in views)
    alive(youju)


def test_condstore_session_hears_of_a_flag_set_and_cleared(youju):
    """Another session sets and clears a keyword between two commands:
    the flags are as before, the MODSEQ is not, and a CONDSTORE client
    is told (RFC 7162 3.2: unsolicited FETCH carries MODSEQ)."""
    a = login(youju)
    fill(a, 2)
    a.ok(b"ENABLE CONDSTORE")
    a.ok(b"SELECT INBOX")
    before = a.one(b"FETCH 2 MODSEQ", b"* 2 FETCH")
    b = login(youju)
    b.ok(b"SELECT INBOX")
    b.ok(b"STORE 2 +FLAGS (x)")
    b.ok(b"STORE 2 -FLAGS (x)")
    ms = int(b.one(b"FETCH 2 MODSEQ", b"* 2 FETCH").split(b"MODSEQ (")[1].split(b")")[0])
    assert b"MODSEQ (%d)" % ms not in before
    # x stays defined: named first (RFC 9051 7.3.5).
    assert a.ok(b"NOOP") == [b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft x)",
                             b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft x \\*)] Flags permitted",
                             b"* 2 FETCH (UID 2 FLAGS (\\Recent) MODSEQ (%d))" % ms]
    assert a.ok(b"NOOP") == []
    # Without CONDSTORE there is nothing to tell.
    c = login(youju)
    c.ok(b"SELECT INBOX")
    b.ok(b"STORE 1 +FLAGS (y)")
    b.ok(b"STORE 1 -FLAGS (y)")
    assert c.ok(b"NOOP") == [b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft x y)",
                             b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft x y \\*)] Flags permitted"]
    alive(youju)
