"""A FETCH stuck on a client that reads slowly holds no store connection
(docs/imap.md, "Cost per session and per FETCH"): more slow readers than
the store keeps connections each stall in a big FETCH, and meanwhile the
database holds no connection for them, and a normal client logs in,
selects, fetches and stores, and mail is delivered over SMTP, all
promptly; on PostgreSQL also under a connection limit smaller than the
number of slow readers, as a server's max_connections would be. A
client that reads slowly to the end gets the same responses as any."""
import os
import re
import socket
import time

import pytest

from conftest import DOMAIN, PASSWORD, USER, SmtpRaw
from test_imap_search import login, msg
from test_postgresql import pg_cluster, pg_query  # noqa: F401 (a fixture)
from test_runtime_hold import DATE, fill, slow_imap_reader

# Well over the idle connections the store keeps (STORE_POOL_MAX, 32)
# and youjud's own threads' ones: readers that each held a connection
# could not hide among them.
SLOW_READERS = 48
# Long enough that no reader is ended (write_timeout) during the test.
WRITE_TIMEOUT = "60s"
# PostgreSQL connections for the database of the limited test: room for
# youjud's own threads and the sessions busy at once (on a loaded
# machine, several readers may not have reached their wait yet), not
# for all the readers.
PG_CONNECTION_LIMIT = 32
PROMPT = 3.0			# seconds, on a loaded two-core machine


def stalled_reader(y):
    """A client whose FETCH 1:* BODY[] has begun (so its LOGIN and
    SELECT were served) and which then takes almost nothing."""
    s = slow_imap_reader(y)
    got = b""
    while b"* 1 FETCH (BODY[] {" not in got:
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
        assert b"a NO" not in got and b" BAD " not in got, got
    return s


def store_connections(y, dsn):
    """The connections youjud has to its database now: PostgreSQL's
    sessions on it, or SQLite's open files of youju.db."""
    if dsn is not None:
        return int(pg_query(dsn, "SELECT count(*) FROM pg_stat_activity WHERE"
                                 " datname = current_database() AND pid <> pg_backend_pid()"))
    fd_dir = f"/proc/{y.proc.pid}/fd"
    db = os.path.realpath(os.path.join(y.data_dir, "youju.db"))
    n = 0
    for fd in os.listdir(fd_dir):
        try:
            n += os.readlink(os.path.join(fd_dir, fd)) == db
        except OSError:
            pass		# closed meanwhile
    return n


def timed(what, fn):
    t0 = time.monotonic()
    out = fn()
    took = time.monotonic() - t0
    assert took < PROMPT, f"{what} took {took:.2f} s"
    return out


def deliver(y, subject):
    c = SmtpRaw(y.ports["smtp"])
    c.greet()
    wire = (f"From: bob@example.org\r\nTo: {USER}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@example.org>\r\n\r\nhello\r\n").encode()
    code, texts = c.mail("bob@example.org", [USER], wire)
    c.cmd("QUIT")
    c.close()
    assert code == 250, texts


def normal_client(y):
    """Logs in, selects, fetches a big message and flags, sets a flag,
    and sees a message delivered meanwhile: each step promptly."""
    c = timed("LOGIN", lambda: login(y))
    timed("SELECT", lambda: c.ok(b"SELECT INBOX"))
    lines = timed("FETCH", lambda: c.ok(b"FETCH 2 (FLAGS BODY.PEEK[])"))
    assert lines[0].startswith(b"* 2 FETCH (FLAGS ("), lines[:1]
    timed("STORE", lambda: c.ok(b"STORE 2 +FLAGS (\\Flagged)"))
    timed("SMTP delivery", lambda: deliver(y, "during-the-stall"))
    assert any(line.endswith(b" EXISTS") for line in timed("NOOP", lambda: c.ok(b"NOOP")))
    found = timed("SEARCH", lambda: c.one(b"UID SEARCH SUBJECT during-the-stall", b"* SEARCH"))
    assert found.split()[2:], found
    lines = timed("FETCH new", lambda: c.ok(b"UID FETCH %s BODY[HEADER.FIELDS (SUBJECT)]"
                                            % found.split()[2]))
    assert any(b"during-the-stall" in line for line in lines), lines
    c.ok(b"LOGOUT")


def still_waiting(socks):
    """The stalled readers are still there: their sessions wait on."""
    for s in socks:
        s.settimeout(0.2)
        assert s.recv(1) != b""


def no_session_went_without_store(y):
    """No store_borrow failed (its "store:" error in the log)."""
    log = y.read_log()
    assert not re.search(r"session=\S+ store: ", log), log[-3000:]


def stall_and_serve(y, dsn):
    r = login(y)
    fill(r, 8, 1 << 20)
    r.ok(b"LOGOUT")
    started = time.monotonic()
    readers = [stalled_reader(y) for _ in range(SLOW_READERS)]
    try:
        time.sleep(0.5)
        # Each reader's session waits on its client inside the FETCH;
        # none of them holds a connection meanwhile.
        held = store_connections(y, dsn)
        assert held < SLOW_READERS, f"{held} store connections for {SLOW_READERS} stalled FETCHes"
        normal_client(y)
        assert time.monotonic() - started < 50, "the readers may have been ended"
        still_waiting(readers)
    finally:
        for s in readers:
            s.close()
    no_session_went_without_store(y)


def test_slow_fetch_readers_hold_no_store_connection(youju_with):
    y = youju_with(write_timeout=WRITE_TIMEOUT)
    stall_and_serve(y, getattr(y, "pg_dsn", None))
    # Each reader's FETCH gave its connection back (a debug line).
    assert y.read_log().count("FETCH waits on its client: store connection given back") \
        >= SLOW_READERS


def literal_after(data, marker):
    """The literal that follows marker ("BODY[] ") in data."""
    at = data.index(marker) + len(marker)
    assert data[at:at + 1] == b"{", data[at:at + 40]
    end = data.index(b"}\r\n", at)
    n = int(data[at + 1:end])
    return data[end + 3:end + 3 + n], data[end + 3 + n:]


def test_fetch_read_slowly_gives_the_same_responses(youju_with):
    """A client that takes the output slowly (its FETCH gives the
    connection back several times and reads the next pieces of a body
    through the one it borrows next) gets the messages' exact bytes, and
    \\Seen is set and told as for any client."""
    y = youju_with(write_timeout=WRITE_TIMEOUT)
    r = login(y)
    bodies = [b"".join(b"%d line %06d of message %d\r\n" % (i, k, i) for k in range(80000))
              for i in range(3)]
    for i, body in enumerate(bodies):
        r.append(b"INBOX", msg(b"slow %d" % i, body=body), DATE)
    r.ok(b"SELECT INBOX")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(20)
    s.connect(("127.0.0.1", y.ports["imap"]))
    s.sendall(b"a LOGIN " + USER.encode() + b" " + PASSWORD.encode() + b"\r\n"
              b"b SELECT INBOX\r\nc FETCH 1:3 (BODY[] BODY[TEXT]<100.5000> RFC822.SIZE)\r\n")
    # A second without reading (the server's buffers fill and its FETCH
    # waits), then 512 KiB at a time with a pause after each.
    time.sleep(1.0)
    got = b""
    while b"\r\nc " not in got[-300:]:
        chunk = s.recv(65536)
        assert chunk, got[-300:]
        if len(got) // (512 << 10) != (len(got) + len(chunk)) // (512 << 10):
            time.sleep(0.1)
        got += chunk
    s.close()
    assert b"\r\nc OK" in got[-300:], got[-300:]
    assert y.read_log().count("FETCH waits on its client: store connection given back") >= 1
    rest = got
    for i in range(3):
        whole, rest = literal_after(rest, b"BODY[] ")
        assert whole == msg(b"slow %d" % i, body=bodies[i]), i
        part, rest = literal_after(rest, b"BODY[TEXT]<100> ")
        assert part == bodies[i][100:5100], i
        assert rest.startswith(b" RFC822.SIZE %d FLAGS (\\Seen))\r\n" % len(whole)), rest[:80]
    # \Seen was stored too, as another session sees.
    r.ok(b"NOOP")
    assert len([line for line in r.ok(b"SEARCH SEEN") if line.startswith(b"* SEARCH 1 2 3")]) == 1


@pytest.fixture
def limited_dsn(pg_cluster):  # noqa: F811 (the fixture imported above)
    """A database owned by a role that may hold PG_CONNECTION_LIMIT
    connections (a superuser is not held to a limit)."""
    name = f"yj_lim_{os.getpid()}_{int(time.monotonic() * 1000)}"
    admin = pg_cluster.dsn + " dbname=postgres"
    pg_query(admin, f"CREATE ROLE {name} LOGIN CONNECTION LIMIT {PG_CONNECTION_LIMIT}")
    pg_query(admin, f"CREATE DATABASE {name} OWNER {name}")
    # pg_trgm (the schema's search index) is trusted: the owner may make it.
    return f"{pg_cluster.dsn.replace('user=youju', 'user=' + name)} dbname={name}"


def test_slow_fetch_readers_within_a_postgresql_connection_limit(youju_factory, limited_dsn):
    y = youju_factory()
    y.init()
    y.use_database(limited_dsn)		# the last line of youju.conf wins
    y.cli("domain", "add", DOMAIN)
    y.add_account(USER, PASSWORD)
    y.start(write_timeout=WRITE_TIMEOUT)
    stall_and_serve(y, limited_dsn)
