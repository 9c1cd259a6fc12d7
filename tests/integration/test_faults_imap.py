"""Faults of youjud's store seen through IMAP (with SMTP and POP3 beside
it): youjud killed with SIGKILL while clients append, deliver, store
flags and expunge; a full disk under APPEND and STORE; PostgreSQL
backends ended and the cluster restarted under running IMAP and POP3
sessions; and
the lazy transactions (the \\Recent floor, cached summaries) failing
on a database another process holds locked. Every answer a client got
stays true afterwards, and the server carries on without a restart."""

import contextlib
import imaplib
import os
import poplib
import re
import smtplib
import sqlite3
import subprocess
import threading
import time

import pytest

import conftest
from conftest import PASSWORD, USER, sqlite_only
from test_faults import assert_store_sound, fill_disk, small_disk, sql

MSGID_RE = re.compile(rb"Message-ID: <([^>@]+)@faults-imap\.test>", re.I)
APPENDUID_RE = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")
UID_RE = re.compile(rb"\bUID (\d+)")
DATE = '"10-Feb-2020 12:00:00 +0000"'


def message(tag, size=0):
    """A message known by its Message-ID tag; about size bytes long."""
    head = (f"From: Bob <bob@example.org>\r\nTo: {USER}\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}@faults-imap.test>\r\n\r\n").encode()
    line = b"y" * 78 + b"\r\n"
    return head + line * max(1, size // len(line))


def imap(y, timeout=30):
    c = imaplib.IMAP4("127.0.0.1", y.ports["imap"], timeout=timeout)
    c.login(USER, PASSWORD)
    return c


def append(c, tag, size=0):
    """APPENDs one message: (typ, the UID of APPENDUID or None, text)."""
    typ, data = c.append("INBOX", None, DATE, message(tag, size))
    text = data[0] if data and data[0] else b""
    m = APPENDUID_RE.search(text)
    return typ, int(m.group(2)) if m else None, text


def select(c, mailbox="INBOX"):
    """SELECTs mailbox: its UIDVALIDITY."""
    typ, _ = c.select(mailbox)
    assert typ == "OK"
    return int(c.response("UIDVALIDITY")[1][0])


def mailbox_view(c):
    """[(uid, tag, flags)] of the selected mailbox in sequence order."""
    typ, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert typ == "OK", data
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, tuple):
            continue
        head, body = item
        # the items may come in any order: UID and FLAGS before or after
        # the literal
        rest = data[i + 1] if i + 1 < len(data) and isinstance(data[i + 1], bytes) else b""
        uid = int(UID_RE.search(head + rest).group(1))
        flags = set(re.search(rb"FLAGS \(([^)]*)\)", head + rest).group(1).split())
        m = MSGID_RE.search(body)
        out.append((uid, m.group(1).decode() if m else None, flags))
    return out


def pop3_tags(y):
    """The Message-ID tags of alice's maildrop as a POP3 session sees them."""
    p = poplib.POP3("127.0.0.1", y.ports["pop3"], timeout=30)
    try:
        p.user(USER)
        p.pass_(PASSWORD)
        count = p.stat()[0]
        tags = []
        for n in range(1, count + 1):
            head = b"\r\n".join(p.top(n, 0)[1])
            m = MSGID_RE.search(head)
            tags.append(m.group(1).decode() if m else None)
        return tags
    finally:
        p.quit()


def smtp_deliver(y, tag, size=0):
    with smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=30) as s:
        s.sendmail("bob@example.org", [USER], message(tag, size))


# ---- 1. SIGKILL while every kind of write is under way ----

class Writers:
    """Clients that write in threads until told to stop or the server
    goes, each keeping what was acknowledged: APPENDs (tag, uid),
    deliveries (tag), flag changes (uid, keyword), expunges (uid)."""

    def __init__(self, y, store_uids, expunge_uids):
        self.y = y
        self.stop = threading.Event()
        self.appended, self.delivered, self.flagged, self.expunged = [], [], [], []
        self.errors = []
        self.threads = [threading.Thread(target=self._guard, args=(f,)) for f in (
            lambda: self._append(0), lambda: self._append(1), self._deliver,
            lambda: self._store(store_uids), lambda: self._expunge(expunge_uids))]

    def _guard(self, work):
        """Runs work; the connection going with the server ends it
        quietly, anything else is an error."""
        try:
            work()
        except (OSError, EOFError, imaplib.IMAP4.abort, smtplib.SMTPServerDisconnected):
            pass
        except Exception as e:  # noqa: BLE001 - every other end is a finding
            self.errors.append(repr(e))

    def _append(self, w):
        c = imap(self.y)
        for i in range(100000):
            if self.stop.is_set():
                return
            tag = f"append-{w}-{i}"
            typ, uid, text = append(c, tag)
            assert typ == "OK" and uid, text
            self.appended.append((tag, uid))

    def _deliver(self):
        with smtplib.SMTP("127.0.0.1", self.y.ports["smtp"], timeout=30) as s:
            for i in range(100000):
                if self.stop.is_set():
                    return
                tag = f"smtp-{i}"
                s.sendmail("bob@example.org", [USER], message(tag))
                self.delivered.append(tag)

    def _store(self, uids):
        """Sets and clears 20 keywords on uids in turn (a mailbox has at
        most 63); self.trying is the change on its way."""
        c = imap(self.y)
        select(c)
        for i in range(100000):
            if self.stop.is_set():
                return
            uid, kw, add = uids[i % len(uids)], f"k{i // len(uids) % 20}", i // 200 % 2 == 0
            self.trying = (uid, kw, add)
            typ, data = c.uid("STORE", str(uid), "+FLAGS.SILENT" if add else "-FLAGS.SILENT",
                              f"({kw})")
            assert typ == "OK", data
            self.flagged.append(self.trying)

    def flags_expected(self):
        """{(uid, keyword): set or not} as the acknowledged changes left
        them, without the one whose answer never came."""
        out = {}
        for uid, kw, add in self.flagged:
            out[(uid, kw)] = add
        if getattr(self, "trying", None) and self.trying not in self.flagged[-1:]:
            out.pop(self.trying[:2], None)
        return out

    def _expunge(self, uids):
        c = imap(self.y)
        select(c)
        for uid in uids:
            if self.stop.is_set():
                return
            typ, data = c.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)")
            assert typ == "OK", data
            typ, data = c.uid("EXPUNGE", str(uid))
            assert typ == "OK", data
            self.expunged.append(uid)
            time.sleep(0.05)

    def start(self):
        for t in self.threads:
            t.start()

    def end(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)
        assert not any(t.is_alive() for t in self.threads), "a client hung"


def test_sigkill_under_append_delivery_store_and_expunge(youju):
    c = imap(youju)
    kept = [append(c, f"kept-{i}")[1] for i in range(10)]
    doomed = [append(c, f"doomed-{i}")[1] for i in range(60)]
    uidvalidity = select(c)
    c.logout()

    w = Writers(youju, kept, doomed)
    w.start()
    time.sleep(2.5)
    youju.kill()
    w.end()
    assert not w.errors, w.errors
    print(f"acknowledged: {len(w.appended)} appends, {len(w.delivered)} deliveries,"
          f" {len(w.flagged)} flag changes, {len(w.expunged)} expunges")
    assert w.appended and w.delivered and w.flagged and w.expunged
    youju.start(wait=("smtp", "imap", "pop3"))

    c = imap(youju)
    assert select(c) == uidvalidity, "UIDVALIDITY changed across the crash"
    view = mailbox_view(c)
    uids = [uid for uid, _, _ in view]
    assert uids == sorted(set(uids)), "UIDs not strictly increasing in sequence order"
    by_tag = {}
    for uid, tag, _ in view:
        by_tag.setdefault(tag, []).append(uid)
    twice = {t: u for t, u in by_tag.items() if len(u) > 1}
    assert not twice, f"stored more than once: {twice}"
    flags = {uid: f for uid, _, f in view}

    for tag, uid in w.appended:
        assert by_tag.get(tag) == [uid], (tag, uid, by_tag.get(tag))
    for tag in w.delivered:
        assert tag in by_tag, f"delivery {tag} got 250 and is gone"
    for uid in w.expunged:
        assert uid not in flags, f"uid {uid} was expunged (OK) and is back"
    for i, uid in enumerate(kept):
        assert by_tag[f"kept-{i}"] == [uid]
    for (uid, kw), add in w.flags_expected().items():
        assert (kw.encode() in flags[uid]) == add, (uid, kw, add, flags[uid])

    # A new message gets a UID above every UID ever handed out.
    highest = max(uids + [u for _, u in w.appended] + doomed)
    typ, uid, text = append(c, "after-restart")
    assert typ == "OK" and uid > highest, (uid, highest, text)
    tags = [t for _, t, _ in mailbox_view(c)]

    # A second IMAP session and POP3 see the same mailbox.
    c2 = imap(youju)
    assert select(c2) == uidvalidity
    assert [t for _, t, _ in mailbox_view(c2)] == tags
    c2.logout()
    c.logout()
    assert pop3_tags(youju) == tags
    if conftest.STORE_DRIVER == "sqlite":
        youju.stop()
        assert_store_sound(youju)


# ---- 2. a full disk ----

# RFC 5530's codes for a server that cannot take the message for now:
# neither the client's fault (BAD) nor a reason to give up on the
# session (BYE).
DISK_FULL_CODES = (b"[UNAVAILABLE]", b"[LIMIT]", b"[SERVERBUG]", b"[OVERQUOTA]")


def test_disk_full_under_append_and_store(youju_factory):
    y = youju_factory()
    with small_disk(y):
        y.init()
        y.add_account(USER, PASSWORD)
        y.start(wait=("smtp", "imap", "pop3"))
        c = imap(y)
        assert append(c, "before-full")[0] == "OK"
        select(c)
        filler = fill_disk(y, leave=512 * 1024)

        # too big for what is left (held in a file as it comes, as any
        # APPEND over 256 KiB is): NO with a code, nothing kept
        typ, uid, text = append(c, "too-big", 2 << 20)
        print("APPEND on a full disk:", typ, text)
        assert typ == "NO" and text.startswith(DISK_FULL_CODES), (typ, text)
        assert y.data_dir.encode() not in text, "the answer shows a server path"

        # small ones until the disk (the blob or the database log) is
        # full: each is OK or NO, never BAD or BYE (PostgreSQL keeps the
        # messages elsewhere: the blob files go once committed)
        ok, refused = ["before-full"], []
        for i in range(400 if conftest.STORE_DRIVER == "sqlite" else 0):
            typ, uid, text = append(c, f"fill-{i}", 20_000)
            assert typ in ("OK", "NO"), (typ, text)
            if typ == "NO":
                assert text.startswith(DISK_FULL_CODES), text
                refused.append(f"fill-{i}")
                if len(refused) == 3:
                    break
            else:
                ok.append(f"fill-{i}")
        assert refused or conftest.STORE_DRIVER != "sqlite", "the disk never filled up"
        typ, data = c.uid("STORE", "1:*", "+FLAGS.SILENT", r"(\Flagged)")
        print("STORE on a full disk:", typ, data)
        assert typ in ("OK", "NO"), (typ, data)
        with smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=30) as s:
            with pytest.raises(smtplib.SMTPException) as e:
                s.sendmail("bob@example.org", [USER], message("smtp-full", 1 << 20))
        print("SMTP on a full disk:", e.value)
        assert c.noop()[0] == "OK"

        # room again: the same session goes on, without a restart
        os.unlink(filler)
        assert append(c, "after-full", 100_000)[0] == "OK"
        assert append(c, "after-full-large", 2 << 20)[0] == "OK"
        ok += ["after-full", "after-full-large"]
        typ, data = c.uid("STORE", "1:*", "+FLAGS.SILENT", r"(\Flagged)")
        assert typ == "OK", data
        smtp_deliver(y, "smtp-after-full")
        ok.append("smtp-after-full")
        c.noop()
        view = mailbox_view(c)
        assert sorted(t for _, t, _ in view) == sorted(ok)
        assert all(rb"\Flagged" in f for _, t, f in view if t != "smtp-after-full")
        c.logout()
        assert sorted(pop3_tags(y)) == sorted(ok)
        if conftest.STORE_DRIVER == "sqlite":
            y.stop()
            assert_store_sound(y)


# ---- 4. the lazy transactions on a database another process holds ----

@contextlib.contextmanager
def database_locked(y):
    """Another process (this one) holds the write lock of y's SQLite
    database, as a backup or a stuck 'youju' command would."""
    # youjud may be writing at this moment (a session's lazy write, the
    # queue): wait for it as any second writer would, then hold the lock.
    db = sqlite3.connect(os.path.join(y.data_dir, "youju.db"), timeout=30,
                         isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            db.execute("ROLLBACK")
    finally:
        db.close()


def timed(f, *args):
    start = time.monotonic()
    r = f(*args)
    return r, time.monotonic() - start


# One wait for SQLite's busy timeout (10 s), and room for a busy machine.
BUSY_BOUND = 25


@sqlite_only("holds SQLite's write lock from another process")
def test_lazy_writes_on_a_locked_database(youju):
    """A FETCH caches the summaries (ENVELOPE, BODYSTRUCTURE) it had to
    make, for messages stored before there were any, in a lazy
    transaction per 64 messages; a SELECT moves the \\Recent floor in
    one. With the database locked by another process neither is
    written, and both answer OK after one busy timeout: not one per
    batch of 64, nor one more per writer queued ahead in youjud. An
    APPEND answers NO; once the lock is gone the sessions write again."""
    c = imap(youju)
    for i in range(200):
        assert append(c, f"lazy-{i}")[0] == "OK"
    c.logout()
    youju.stop()
    sql(youju, "DELETE FROM summaries")
    youju.start(wait=("smtp", "imap"))
    c = imap(youju)
    assert c.select("INBOX", readonly=True)[0] == "OK"     # EXAMINE claims no \Recent
    other = imap(youju)
    with database_locked(youju):
        # meanwhile another session's SELECT claims \Recent for all 200
        # (the other lazy write): it waits for the same lock at once
        selected = []
        t = threading.Thread(target=lambda: selected.append(timed(other.select, "INBOX")))
        t.start()
        (typ, data), took = timed(c.fetch, "1:*", "(ENVELOPE)")
        print(f"FETCH ENVELOPE on a locked database: {typ} in {took:.1f} s")
        assert typ == "OK"
        assert sum(1 for d in data if b"ENVELOPE" in (d if isinstance(d, bytes) else d[0])) == 200
        assert took < BUSY_BOUND, f"FETCH took {took:.1f} s"
        t.join(60)
        (typ, data), took = selected[0]
        print(f"SELECT on a locked database: {typ} in {took:.1f} s")
        assert typ == "OK" and took < BUSY_BOUND, (typ, data, took)
        (typ, uid, text), took = timed(append, c, "while-locked")
        print(f"APPEND on a locked database: {typ} {text} in {took:.1f} s")
        assert typ == "NO" and text.startswith(b"[UNAVAILABLE]"), (typ, text)
        assert took < BUSY_BOUND, f"APPEND took {took:.1f} s"
    # the lock is gone: the same session writes again
    typ, uid, text = append(c, "after-lock")
    assert typ == "OK", text
    assert c.fetch("1:*", "(ENVELOPE)")[0] == "OK"
    c.noop()
    tags = [t for _, t, _ in mailbox_view(c)]
    assert tags == [f"lazy-{i}" for i in range(200)] + ["after-lock"]
    assert other.noop()[0] == "OK"
    assert [t for _, t, _ in mailbox_view(other)] == tags
    other.logout()
    c.logout()
    assert "saving summaries" in youju.read_log()
    assert sql(youju, "SELECT count(*) FROM summaries") == ["201"]


# ---- 3. PostgreSQL's backends ended, its server restarted ----

postgresql_only = pytest.mark.skipif(conftest.STORE_DRIVER != "postgresql",
                                     reason="ends the store's PostgreSQL backends")


def end_backends(y):
    """pg_terminate_backend() for every connection of y's database: the
    number ended."""
    r = subprocess.run(["psql", y.pg_dsn, "-Atq", "-c",
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"],
                       capture_output=True, text=True, timeout=30, check=True)
    return int(r.stdout.strip())


def restart_cluster():
    """Stops the test run's shared cluster as a crash would (immediate:
    no shutdown checkpoint, whose length after hundreds of tests' writes
    depends on the disk) and starts it again, also if the stop failed:
    every later test needs it."""
    cluster = conftest.PG_CLUSTER
    try:
        cluster._as_owner([f"{conftest.PGBIN}/pg_ctl", "-D", cluster.data, "-m", "immediate",
                           "-w", "-t", "100", "stop"])
    finally:
        cluster.start()


def answer(f, *args):
    """What a command got: its result, or "gone" if the server ended the
    session (BYE, or the connection closed)."""
    try:
        return f(*args)
    except (imaplib.IMAP4.abort, OSError, EOFError):
        return "gone"


class Storer(threading.Thread):
    """UID STORE of one keyword after another on uid until stopped; each
    answer kept: (keyword, "OK" / "NO" / "gone")."""

    def __init__(self, y, uid):
        super().__init__()
        self.c = imap(y)
        select(self.c)
        self.uid, self.answers, self.stop = uid, [], threading.Event()

    def run(self):
        for i in range(100000):
            if self.stop.is_set():
                return
            kw = f"p{i % 40}"
            got = answer(self.c.uid, "STORE", str(self.uid), "+FLAGS.SILENT", f"({kw})")
            self.answers.append((kw, got if got == "gone" else got[0]))
            if got == "gone":
                return


def assert_carries_on(y, sessions, tags):
    """Each session answers its next commands or has been ended; a new
    session, a delivery and POP3 work; the mailbox holds exactly tags."""
    for c in sessions:
        got = answer(c.noop)
        if got != "gone":
            assert got[0] == "OK", got
            got = answer(mailbox_view, c)
            assert got == "gone" or sorted(t for _, t, _ in got) == sorted(tags), got
    smtp_deliver(y, f"smtp-after-{len(tags)}")
    tags.append(f"smtp-after-{len(tags)}")
    c = imap(y)
    select(c)
    assert sorted(t for _, t, _ in mailbox_view(c)) == sorted(tags)
    c.logout()
    assert sorted(pop3_tags(y)) == sorted(tags)


def pg_faults_setup(y):
    """Two idle selected sessions, one storing flags, and the tags stored."""
    c = imap(y)
    tags = []
    for i in range(5):
        assert append(c, f"pg-{i}")[0] == "OK"
        tags.append(f"pg-{i}")
    select(c)
    idle = [imap(y), imap(y)]
    for s in idle:
        select(s)
    return c, idle, tags


def half_append(y, tag):
    """A session in the middle of an APPEND: the literal half sent."""
    c = imap(y)
    m = message(tag, 50_000)
    c.send(b"h1 APPEND INBOX {%d}\r\n" % len(m))
    assert c.readline().startswith(b"+")
    c.send(m[:len(m) // 2])
    return c, m[len(m) // 2:]


def finish_append(c, rest):
    """The tagged answer to half_append's APPEND once the rest is sent."""
    try:
        c.send(rest + b"\r\n")
        while True:
            line = c.readline()
            if not line:
                return "gone"
            if line.startswith(b"h1 "):
                return line.split()[1].decode()
    except OSError:
        return "gone"


def check_flags(y, storer, tags):
    """Every keyword whose STORE was answered OK is set."""
    c = imap(y)
    select(c)
    typ, data = c.uid("FETCH", str(storer.uid), "(FLAGS)")
    assert typ == "OK", data
    flags = data[0]
    lost = {kw for kw, got in storer.answers if got == "OK" and kw.encode() not in flags}
    assert not lost, (lost, flags)
    c.logout()


def fault_under_sessions(youju, seed, fault, first_append_may_fail=False):
    """Runs fault() while sessions sit idle, STORE flags and are half-way
    through an APPEND: every answer is OK, NO or the session's end, no
    STORE hangs, and afterwards the sessions carry on with every change
    answered OK in place. first_append_may_fail: the first APPEND after
    the fault may fail once (it finds its connection lost)."""
    c, idle, tags = pg_faults_setup(youju)
    storer = Storer(youju, seed)
    storer.start()
    appender, rest = half_append(youju, "pg-mid-append")
    time.sleep(0.5)
    fault()
    got = finish_append(appender, rest)
    print("APPEND across the fault:", got)
    assert got in ("OK", "NO", "gone"), got
    if got == "OK":
        tags.append("pg-mid-append")
    time.sleep(0.5)
    storer.stop.set()
    storer.join(60)
    assert not storer.is_alive(), "a STORE hung"
    print("STORE answers:", {a: sum(1 for _, g in storer.answers if g == a)
                             for a in ("OK", "NO", "gone")})
    assert set(g for _, g in storer.answers) <= {"OK", "NO", "gone"}
    if first_append_may_fail:
        typ, uid, text = answer(append, c, "pg-after")
        if typ != "OK":
            typ, uid, text = append(c, "pg-after")
    else:
        typ, uid, text = append(c, "pg-after")
    assert typ == "OK", text
    tags.append("pg-after")
    assert_carries_on(youju, idle + [c], tags)
    check_flags(youju, storer, tags)


@postgresql_only
def test_postgresql_backends_ended_under_sessions(youju):
    def end_twice():
        ended = end_backends(youju)
        print("backends ended:", ended)
        assert ended > 0
        time.sleep(0.3)
        end_backends(youju)     # once more, while the sessions reconnect

    fault_under_sessions(youju, 1, end_twice)


@postgresql_only
def test_postgresql_restarted_under_sessions(youju):
    fault_under_sessions(youju, 2, restart_cluster, first_append_may_fail=True)


@postgresql_only
def test_postgresql_backend_ended_under_a_pop3_session(youju, youju_factory):
    """RFC 1939: a POP3 session holds the maildrop exclusively. On
    PostgreSQL the lock is the session's connection's; a session whose
    backend was ended has lost it, and another node may now take it: the
    first session must not go on to delete messages."""
    other = youju_factory()
    other.init()
    other.use_database(youju.pg_dsn)
    other.start()
    for i in range(2):
        smtp_deliver(youju, f"pop-{i}")
    first = poplib.POP3("127.0.0.1", youju.ports["pop3"], timeout=30)
    first.user(USER)
    first.pass_(PASSWORD)
    assert first.stat()[0] == 2
    assert end_backends(youju) > 0
    second = poplib.POP3("127.0.0.1", other.ports["pop3"], timeout=30)
    second.user(USER)
    try:
        second.pass_(PASSWORD)
    except poplib.error_proto as e:
        assert b"[IN-USE]" in e.args[0], e     # the first one still holds it
        return
    # the second session has the maildrop: the first one must not act on it
    try:
        first.dele(1)
        reply = first.quit()
    except (poplib.error_proto, OSError, EOFError) as e:
        reply = e
    print("the first session's QUIT:", reply)
    assert not (isinstance(reply, bytes) and reply.startswith(b"+OK")), reply
    assert second.stat()[0] == 2
    second.quit()
    assert sorted(pop3_tags(youju)) == ["pop-0", "pop-1"]
