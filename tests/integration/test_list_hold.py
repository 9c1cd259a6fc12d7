"""LIST, LSUB, STATUS, SEARCH, SORT and THREAD stuck on a client that
reads slowly hold no store connection (docs/imap.md, "Cost per session
and per FETCH"). An account of thousands of mailboxes and more slow
listers than the store keeps connections, each stalled mid-LIST,
mid-LIST-STATUS or mid-LSUB: meanwhile the database holds fewer
connections than there are readers, other sessions and SMTP delivery
are served promptly and, on SQLite, the WAL is checkpointed to its end;
a lister that reads again gets the complete answer, the same as a fast
client's. The same for SEARCH, ESEARCH, SORT and THREAD results of
thousands of messages."""
import os
import re
import socket
import sqlite3
import time

from conftest import DOMAIN, PASSWORD, USER
from test_fetch_store_conn import limited_dsn  # noqa: F401 (a fixture)
from test_fetch_store_conn import no_session_went_without_store, normal_client, still_waiting
from test_fetch_store_conn import store_connections, timed
from test_imap_search import login, msg
from test_postgresql import pg_cluster  # noqa: F401 (a fixture)
from test_runtime_hold import DATE, fill

SLOW_READERS = 48		# as test_fetch_store_conn: well over the pool's 32
WRITE_TIMEOUT = "600s"		# no reader is ended during a test (ASan: 2 min)
PROJECTS = 2000			# CREATEs of a two-level name: 4,001 mailboxes
STALL_BYTES = 8 << 20		# output a stalled reader has asked for
LEAF = b"Archive/Project %04d/Correspondence kept for the records"
STATUS_ITEMS = b"(MESSAGES UIDNEXT UNSEEN SIZE)"
# What the slow readers ask; "Archive/*" leaves out INBOX, whose counts
# the deliveries of the test change.
COMMANDS = [
    (b'LIST "" "*"', b"* LIST "),
    (b'LIST "" "Archive/*" RETURN (STATUS ' + STATUS_ITEMS + b")", b"* STATUS "),
    (b'LSUB "" "*"', b"* LSUB "),
]
# Which of them each reader asks: a LIST-STATUS costs the server a
# STATUS per mailbox, and one of six is enough to show it waits as the
# others do.
KINDS = [0, 1, 2, 0, 2, 0]


def pipelined(r, commands):
    """Sends every command at once, then reads the answers: all OK."""
    tags = [b"p%d" % i for i in range(len(commands))]
    r.send(b"".join(t + b" " + c + b"\r\n" for t, c in zip(tags, commands)))
    for t in tags:
        lines = r.until(t)
        assert lines[-1].startswith(t + b" OK"), lines[-1]


def many_mailboxes(y):
    """PROJECTS leaves (each with its parent), subscribed; a message in
    one leaf in ten, so LIST-STATUS answers differ."""
    r = login(y)
    leaves = [LEAF % i for i in range(PROJECTS)]
    for at in range(0, PROJECTS, 500):
        pipelined(r, [b'CREATE "%s"' % n for n in leaves[at:at + 500]])
        pipelined(r, [b'SUBSCRIBE "%s"' % n for n in leaves[at:at + 500]])
    for i in range(0, PROJECTS, 10):
        r.append(b'"' + leaves[i] + b'"', msg(b"kept %d" % i), DATE)
    fill(r, 4, 64 * 1024)		# INBOX, for normal_client
    r.ok(b"LOGOUT")


def answer(y, command):
    """The untagged lines a fast client gets for command."""
    r = login(y)
    lines = r.ok(command)
    r.ok(b"LOGOUT")
    return lines


def repeats(lines):
    """How many times a reader asks for an answer of these lines for its
    session to wait on it: more than the kernel holds for a client that
    reads nothing (a few MiB on loopback, where TCP's buffers grow)."""
    size = sum(len(x) + 2 for x in lines)
    return (STALL_BYTES + size - 1) // size + 1


def stalled_lister(y, command, marker, times):
    """A client that asks command times over (as a client that lists at
    start pipelines its LIST, LSUB and STATUS), reads until the first
    answer has begun and then reads nothing."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(20)
    s.connect(("127.0.0.1", y.ports["imap"]))
    s.sendall(b"a LOGIN " + USER.encode() + b" " + PASSWORD.encode() + b"\r\n" +
              b"".join(b"c%d %s\r\n" % (k, command) for k in range(times)))
    got = b""
    while marker not in got:
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
        assert b"a NO" not in got and b" BAD " not in got, got
    return s, got


def read_rest(s, got, times):
    """The answers of the stalled commands, read to the last tagged
    reply: a list of (untagged lines, tagged line) per command."""
    last = b"c%d " % (times - 1)
    s.settimeout(30)
    while not re.search(rb"(^|\r\n)" + last + rb"[^\r\n]*\r\n$", got):
        chunk = s.recv(1 << 20)
        assert chunk, got[-300:]
        got += chunk
    answers, lines = [], []
    for line in got.split(b"\r\n")[:-1]:
        if re.match(rb"c\d+ ", line):
            answers.append((lines, line.split(b" ", 1)[1]))
            lines = []
        elif re.match(rb"(a|b) OK|\* OK \[CAPABILITY", line):
            lines = []
        else:
            lines.append(line)
    return answers


def wal_checkpointed(y):
    """SQLite: a checkpoint copies the whole WAL into the database (no
    reader holds a snapshot older than the last commit)."""
    db = sqlite3.connect(os.path.join(y.data_dir, "youju.db"), timeout=10)
    try:
        for _ in range(50):
            busy, log, done = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if busy == 0 and log == done:
                return True
            time.sleep(0.1)
        return False
    finally:
        db.close()


def waiting(y, verbs, n):
    """The sessions that gave their store connection back while one of
    verbs waited on the client (a debug line), once there are n of them
    or after a minute: a reader stalls only once the server has filled
    the kernel's buffers for it."""
    line = re.compile(r"session=(\w+) (?:%s) waits on its client: store connection given back"
                      % "|".join(verbs))
    deadline = time.monotonic() + 60
    while True:
        found = set(line.findall(y.read_log()))
        if len(found) >= n or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def stall_and_serve(y, dsn):
    many_mailboxes(y)
    expected = [answer(y, c) for c, _ in COMMANDS]
    assert len(expected[0]) > 2 * PROJECTS, len(expected[0])
    assert len([x for x in expected[1] if x.startswith(b"* STATUS ")]) == 2 * PROJECTS
    assert len(expected[2]) > PROJECTS, len(expected[2])
    times = [repeats(lines) for lines in expected]
    started = time.monotonic()
    readers = []
    try:
        for i in range(SLOW_READERS):
            kind = KINDS[i % len(KINDS)]
            command, marker = COMMANDS[kind]
            readers.append((kind, *stalled_lister(y, command, marker, times[kind])))
        # Each reader's session waits on its client inside a LIST or
        # LSUB, having given its connection back: none of them holds one.
        assert len(waiting(y, ("LIST", "LSUB"), SLOW_READERS)) >= SLOW_READERS
        held = store_connections(y, dsn)
        assert held < SLOW_READERS, f"{held} store connections for {SLOW_READERS} stalled LISTs"
        normal_client(y)
        c = timed("LOGIN", lambda: login(y))
        timed("STATUS", lambda: c.ok(b"STATUS INBOX (MESSAGES)"))
        lines = timed("LIST", lambda: c.ok(b'LIST "" "Archive/Project 0007/%"'))
        assert lines == [b'* LIST (\\HasNoChildren) "/" "%s"' % (LEAF % 7)], lines
        timed("CREATE", lambda: c.ok(b"CREATE Meanwhile"))
        c.ok(b"LOGOUT")
        if dsn is None:
            assert timed("WAL checkpoint", lambda: wal_checkpointed(y))
        assert time.monotonic() - started < 590, "the readers may have been ended (write_timeout)"
        # A reader of each kind reads on and gets whole answers, each the
        # same as a fast client's before: the LISTs that had begun list
        # the mailboxes they had read, the later ones "Meanwhile" too.
        for kind in range(len(COMMANDS)):
            _, s, got = readers.pop([x[0] for x in readers].index(kind))
            answers = read_rest(s, got, times[kind])
            s.close()
            assert len(answers) == times[kind], (kind, len(answers))
            assert answers[0] == (expected[kind], b"OK %s completed" % COMMANDS[kind][0][:4]), kind
            for lines, tagged in answers[1:]:
                assert tagged.startswith(b"OK "), tagged
                assert [x for x in lines if b"Meanwhile" not in x] == expected[kind], kind
        # The others are still there, stalled.
        still_waiting(s for _, s, _ in readers)
    finally:
        for _, s, _ in readers:
            s.close()
    no_session_went_without_store(y)


def test_slow_list_readers_hold_no_store_connection(youju_with):
    y = youju_with(write_timeout=WRITE_TIMEOUT)
    stall_and_serve(y, getattr(y, "pg_dsn", None))


def test_slow_list_readers_within_a_postgresql_connection_limit(youju_factory,
                                                               limited_dsn):  # noqa: F811
    y = youju_factory()
    y.init()
    y.use_database(limited_dsn)		# the last line of youju.conf wins
    y.cli("domain", "add", DOMAIN)
    y.add_account(USER, PASSWORD)
    y.start(write_timeout=WRITE_TIMEOUT)
    stall_and_serve(y, limited_dsn)


# ---- SEARCH, ESEARCH, SORT and THREAD ----

MESSAGES = 5000			# in the mailbox "Results"
# What a reader asks, as (command, the start of its answer): a result of
# every message, of every other one (\Seen is on every other) in
# ESEARCH's ranges, and SORT and THREAD, which read each message's
# header first.
RESULTS = [
    (b"UID SEARCH ALL", b"* SEARCH "),
    (b"SEARCH RETURN (ALL COUNT) UNSEEN", b"* ESEARCH "),
    (b"SORT (REVERSE ARRIVAL) UTF-8 ALL", b"* SORT "),
    (b"THREAD ORDEREDSUBJECT UTF-8 ALL", b"* THREAD "),
]
# A SORT or THREAD of 5,000 messages reads as many headers: asking it
# for 8 MiB of answers would take the server minutes. Those readers ask
# first for SEARCHes of FILLER_BYTES (less than loopback's TCP buffers
# take, a few MiB), then for SORTs or THREADs of SORTED_BYTES, so that
# the buffers fill, and the session waits, within the SORTs. On
# PostgreSQL, where each header is a query, even that takes minutes: the
# SORT and THREAD readers are SQLite's (the waits are the same code).
FILLER_BYTES = 2 << 20
SORTED_BYTES = 3584 << 10
READERS_EACH = 2


def many_messages(y):
    """MESSAGES in "Results" (one APPEND of 1,000 at a time), every other
    one \\Seen, three to a subject; and a few in INBOX for normal_client."""
    r = login(y)
    r.ok(b"CREATE Results")
    for at in range(0, MESSAGES, 1000):
        parts = []
        for i in range(at, at + 1000):
            m = msg(b"result %d" % (i // 3), body=b"message %d\r\n" % i)
            parts.append(b"(%s) \"%s\" {%d+}\r\n%s" % (b"\\Seen" if i % 2 else b"", DATE,
                                                       len(m), m))
        r.ok(b"APPEND Results " + b" ".join(parts))
    fill(r, 4, 64 * 1024)
    r.ok(b"LOGOUT")


def times_for(lines, size):
    """How many answers of these lines make size bytes."""
    one = sum(len(x) + 2 for x in lines)
    return (size + one - 1) // one


def results_reader(y, commands):
    """A client that selects Results, asks commands (pipelined, tagged
    c0, c1, ...) and reads nothing until the first answer has begun."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(20)
    s.connect(("127.0.0.1", y.ports["imap"]))
    s.sendall(b"a LOGIN " + USER.encode() + b" " + PASSWORD.encode() + b"\r\n"
              b"b SELECT Results\r\n" +
              b"".join(b"c%d %s\r\n" % (k, c) for k, c in enumerate(commands)))
    got = b""
    while b"\r\nb OK" not in got or b"\r\n* " not in got[got.index(b"\r\nb OK"):]:
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
        assert b"a NO" not in got and b" BAD " not in got, got
    return s, got


def untagged(lines):
    """Lines without the tag ESEARCH names (which is the client's)."""
    return [re.sub(rb'^\* ESEARCH \(TAG "[^"]*"\)', b"* ESEARCH (TAG)", x) for x in lines]


def test_slow_search_sort_and_thread_readers_hold_no_store_connection(youju_with):
    y = youju_with(write_timeout=WRITE_TIMEOUT)
    dsn = getattr(y, "pg_dsn", None)
    many_messages(y)
    r = login(y)
    r.ok(b"EXAMINE Results")
    expected = [r.ok(c) for c, _ in RESULTS]
    r.ok(b"LOGOUT")
    for (_, start), lines in zip(RESULTS, expected):
        assert len(lines) == 1 and lines[0].startswith(start), lines[0][:80]
    filler = times_for(expected[0], FILLER_BYTES)
    asked = [[RESULTS[0][0]] * times_for(expected[0], STALL_BYTES),
             [RESULTS[1][0]] * times_for(expected[1], STALL_BYTES)]
    if dsn is None:
        asked += [[RESULTS[0][0]] * filler + [RESULTS[k][0]] * times_for(expected[k], SORTED_BYTES)
                  for k in (2, 3)]
    readers = []
    try:
        for _ in range(READERS_EACH):
            for kind, commands in enumerate(asked):
                readers.append((kind, *results_reader(y, commands)))
        # Each reader's session waits on its client, having given its
        # connection back; SORT and THREAD readers in their SORTs and
        # THREADs (those of the later ones, which read headers, come
        # out slowly).
        assert len(waiting(y, ("SEARCH", "SORT", "THREAD"), len(readers))) >= len(readers)
        if dsn is None:
            assert len(waiting(y, ("SORT", "THREAD"), 2 * READERS_EACH)) >= 2 * READERS_EACH
        normal_client(y)
        if dsn is None:
            assert timed("WAL checkpoint", lambda: wal_checkpointed(y))
        # Each reader reads on and gets every answer, as a fast client.
        want = {c: lines for (c, _), lines in zip(RESULTS, expected)}
        for kind, s, got in readers:
            answers = read_rest(s, got, len(asked[kind]))
            assert len(answers) == len(asked[kind]), (kind, len(answers))
            for k, (lines, tagged) in enumerate(answers):
                assert tagged.startswith(b"OK "), (kind, k, tagged)
                assert untagged(lines) == untagged(want[asked[kind][k]]), \
                    (kind, k, [x[:80] for x in lines])
    finally:
        for _, s, _ in readers:
            s.close()
    no_session_went_without_store(y)
