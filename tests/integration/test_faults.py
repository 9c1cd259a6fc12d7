"""Faults a running youjud must live through: a full disk, clients that
vanish at awkward moments, garbage on the wire, more connections than
allowed, SIGTERM in the middle of messages, and a second youjud on the
same data dir.

Each test checks what a user would check afterwards: the replies, what
"youju msg list" shows, SQLite's integrity check, that a message that
was not taken left no blob file behind, and that youjud still answers.
"""
import contextlib
import errno
import os
import poplib
import random
import re
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

from conftest import PASSWORD, USER, Pop3Raw, SmtpRaw, sqlite_only, unverified

ALICE = USER
SENDER = "bob@example.org"
TAG_RE = re.compile(rb"^Message-ID: <([^>@]+)@faults\.test>\r$", re.M)
# The replies a server may give when it is out of disk space.
DISK_FULL = {(451, "4.3.0"), (452, "4.3.1")}


# ---- messages and the store ----

def wire(tag, size=0):
    """A message about size bytes long as it goes on the wire (no line
    starts with a dot), known by its Message-ID."""
    head = (f"From: Bob <{SENDER}>\r\nTo: {ALICE}\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}@faults.test>\r\n\r\n").encode()
    line = b"x" * 78 + b"\r\n"
    return head + line * max(1, size // len(line))


def deliver(y, tag, size=0):
    """Sends one message over a new SMTP connection; returns the reply
    to its end of data."""
    c = SmtpRaw(y.ports["smtp"], timeout=30)
    try:
        c.greet()
        return c.mail(SENDER, [ALICE], wire(tag, size))
    finally:
        c.close()


def stored(y):
    """{tag: [uid, ...]} for alice's INBOX, as 'youju msg' shows it."""
    out = {}
    for uid in y.uids(ALICE):
        m = TAG_RE.search(y.msg_cat(ALICE, uid))
        assert m, f"uid {uid} is not a message of this test"
        out.setdefault(m.group(1).decode(), []).append(uid)
    return out


def assert_stored_once(y, tags):
    got = stored(y)
    assert sorted(got) == sorted(tags), \
        f"stored {sorted(got)}, expected {sorted(tags)}"
    twice = {t: uids for t, uids in got.items() if len(uids) > 1}
    assert not twice, f"stored more than once: {twice}"


def blob_files(y):
    """The files under blobs/, as blob ids "HOUR/NAME"."""
    top = os.path.join(y.data_dir, "blobs")
    out = set()
    for hour in os.listdir(top):
        d = os.path.join(top, hour)
        if os.path.isdir(d):
            out.update(f"{hour}/{name}" for name in os.listdir(d))
    return out


def sql(y, query):
    """Runs a query with the sqlite3 shell, as the owner of the database
    so that no file it makes is root's."""
    db = os.path.join(y.data_dir, "youju.db")
    kw = {}
    if os.geteuid() == 0:
        st = os.stat(db)
        kw = {"user": st.st_uid, "group": st.st_gid, "extra_groups": []}
    r = subprocess.run(["sqlite3", "-batch", db, query], capture_output=True, text=True,
                       timeout=60, **kw)
    assert r.returncode == 0, f"sqlite3 {query!r}: {r.stderr}"
    return r.stdout.splitlines()


REFCOUNT_SQL = ("SELECT b.id FROM blobs b WHERE b.refcount !="
                " (SELECT count(*) FROM messages m WHERE m.blob_id = b.id) +"
                " (SELECT count(*) FROM queue q WHERE q.blob_id = b.id)")


def assert_store_sound(y, in_flight=0):
    """SQLite's checks pass, every blob's reference count is right, and
    the blob files are exactly those the database names, apart from
    in_flight files of messages that are still coming in."""
    assert sql(y, "PRAGMA integrity_check") == ["ok"]
    assert sql(y, "PRAGMA foreign_key_check") == []
    assert sql(y, REFCOUNT_SQL) == [], "blobs with a wrong reference count"
    known = set(sql(y, "SELECT id FROM blobs"))
    files = blob_files(y)
    assert known <= files, f"blob files missing: {sorted(known - files)}"
    orphans = files - known
    assert len(orphans) == in_flight, \
        f"{len(orphans)} blob files no message owns, {in_flight} expected: {sorted(orphans)}"


def eventually(check, timeout=5.0, step=0.05):
    """Runs check until it passes (returns its value) or timeout is
    over (raises its last AssertionError)."""
    end = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > end:
                raise
            time.sleep(step)


# ---- the server ----

def pop_login(y):
    p = poplib.POP3("127.0.0.1", y.ports["pop3"], timeout=30)
    p.user(ALICE)
    p.pass_(PASSWORD)
    return p


def assert_alive(y):
    """youjud runs and serves an SMTP and a POP3 session."""
    assert y.proc is not None and y.proc.poll() is None, \
        "youjud has exited:\n" + y.read_log()[-4000:]
    c = SmtpRaw(y.ports["smtp"], timeout=10)
    try:
        c.greet()
        assert c.cmd("NOOP")[0] == 250
        assert c.cmd("QUIT")[0] == 221
    finally:
        c.close()
    p = pop_login(y)
    try:
        p.stat()
    finally:
        p.quit()


def session_id(y, sock, timeout=5.0):
    """The id youjud gave the session of this client socket."""
    port = sock.getsockname()[1]
    pattern = re.compile(rf"session=(\w+) connect client=\S+ port={port}\b")

    def find():
        found = pattern.findall(y.read_log())
        assert found, f"no session from port {port} in the log"
        return found[-1]
    return eventually(find, timeout)


def session_log(y, sid):
    return [line for line in y.read_log().splitlines() if f"session={sid} " in line]


def wait_session_end(y, sid, timeout=10.0):
    """Waits until youjud has finished the session (its thread has
    cleaned up and logged the disconnect)."""
    def ended():
        assert f"session={sid} disconnect client=" in y.read_log(), \
            f"session {sid} has not ended:\n" + "\n".join(session_log(y, sid))
    eventually(ended, timeout)


def reset_close(sock):
    """Closes with a TCP RST instead of a FIN, as a crashed client does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_to_end(sock, timeout=10.0):
    """Everything the server sends until it closes the connection.
    Returns (data, closed); closed is False if it was still open when
    timeout passed."""
    end = time.monotonic() + timeout
    data = b""
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return data, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data, False
        except (ConnectionResetError, ssl.SSLError):
            return data, True
        if not chunk:
            return data, True
        data += chunk


def client_hello():
    """The first flight of a TLS client: a ClientHello record."""
    out = ssl.MemoryBIO()
    tls = unverified().wrap_bio(ssl.MemoryBIO(), out, server_hostname="mx.example.test")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass    # it waits for the server's answer, which never comes here
    return out.read()


# ---- a data dir on a small file system ----

@contextlib.contextmanager
def small_disk(y, size="8m", inodes=None):
    """Mounts a tmpfs of size (and at most inodes files) as y's data dir
    for the duration; youjud is stopped before it goes away."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    os.makedirs(y.data_dir)
    opts = f"size={size},mode=0755" + (f",nr_inodes={inodes}" if inodes else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", y.data_dir],
                       capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(y.data_dir)
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    try:
        yield
    finally:
        try:
            y.stop()
        finally:
            if subprocess.run(["umount", y.data_dir]).returncode != 0:
                subprocess.run(["umount", "-l", y.data_dir])


def fill_disk(y, leave=0):
    """Fills the data dir's file system up to leave bytes free (to the
    last byte if leave is 0) with a file; returns its path."""
    path = os.path.join(y.data_dir, "filler")
    st = os.statvfs(y.data_dir)
    todo = st.f_bavail * st.f_frsize - leave if leave > 0 else 1 << 62
    with open(path, "wb", buffering=0) as f:
        while todo > 0:
            try:
                n = f.write(b"f" * min(todo, 1 << 16))
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
            todo -= n
    return path


def use_all_inodes(y):
    """Makes empty files until the file system has no inode left;
    returns their paths."""
    made = []
    while True:
        path = os.path.join(y.data_dir, f"inode-{len(made)}")
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            return made
        made.append(path)


def wait_started_or_exited(y, timeout=10.0):
    """True once youjud has started (it logs so after its store checks),
    False if it exited first."""
    started = f"youjud[{y.proc.pid}]: info: youjud started"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if started in y.read_log():
            return True
        if y.proc.poll() is not None:
            return False
        time.sleep(0.05)
    raise AssertionError("youjud neither started nor exited:\n" + y.read_log()[-3000:])


def start_on_small_disk(y):
    y.init()
    y.add_account(ALICE, PASSWORD)
    y.start(wait=("smtp", "pop3"))


def transaction(c, tag, size):
    """One message on an open session: the first reply that is not the
    expected one, or the reply to the end of data."""
    for line, want in ((f"MAIL FROM:<{SENDER}>", 250), (f"RCPT TO:<{ALICE}>", 250),
                       ("DATA", 354)):
        code, texts = c.cmd(line)
        if code != want:
            return code, texts
    c.send(wire(tag, size) + b".\r\n")
    return c.reply()


def is_disk_full(reply):
    code, texts = reply
    return (code, texts[0][:5]) in DISK_FULL


# ---- 1. the disk is full ----

def test_disk_full_refuses_the_message_and_keeps_nothing(youju_factory):
    y = youju_factory()
    with small_disk(y):
        start_on_small_disk(y)
        assert deliver(y, "before-full")[0] == 250
        filler = fill_disk(y, leave=512 * 1024)
        files = blob_files(y)
        big = wire("too-big", 2 << 20)
        c = SmtpRaw(y.ports["smtp"], timeout=30)
        try:
            c.greet()
            # declared too big for the free space: refused at once
            code, texts = c.cmd(f"MAIL FROM:<{SENDER}> SIZE={len(big)}")
            assert (code, texts[0][:5]) == (452, "4.3.1"), (code, texts)

            # undeclared: refused at the end of data, never 250
            reply = c.mail(SENDER, [ALICE], big)
            assert is_disk_full(reply), reply
            assert blob_files(y) == files, "the refused message left a blob file"

            # the same in BDAT chunks
            assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
            assert c.cmd(f"RCPT TO:<{ALICE}>")[0] == 250
            half = len(big) // 2
            c.send(b"BDAT %d\r\n" % half + big[:half])
            first = c.reply()
            c.send(b"BDAT %d LAST\r\n" % (len(big) - half) + big[half:])
            last = c.reply()
            assert first[0] in (250, 451, 452), first
            if first[0] == 250:
                assert is_disk_full(last), last
            assert blob_files(y) == files, "the refused BDAT message left a blob file"
            assert c.cmd("RSET")[0] == 250

            # room again: the same session delivers, and a new one too
            os.unlink(filler)
            assert c.mail(SENDER, [ALICE], wire("same-session-after", 100_000))[0] == 250
        finally:
            c.close()
        assert deliver(y, "new-session-after", 2 << 20)[0] == 250
        assert_stored_once(y, ["before-full", "same-session-after", "new-session-after"])
        assert_store_sound(y)
        assert_alive(y)


@sqlite_only("the database is not on the data dir's file system")
def test_disk_filling_up_under_a_stream_of_messages(youju_factory):
    """Messages of random sizes until the disk is full: it fills up in
    the blob, its fsync or the database log, wherever it happens to.
    Exactly the messages that got 250 are stored."""
    y = youju_factory()
    rnd = random.Random(4711)
    with small_disk(y):
        start_on_small_disk(y)
        filler = fill_disk(y, leave=1 << 20)
        accepted, refused, streak = [], [], 0
        c = SmtpRaw(y.ports["smtp"], timeout=30)
        try:
            c.greet()
            for i in range(120):
                tag = f"stream-{i}"
                # big messages first, tiny ones once the disk is about
                # full: those fit, but then the database log may not
                size = rnd.randrange(5_000, 120_000) if not refused else rnd.randrange(0, 3000)
                reply = transaction(c, tag, size)
                if reply[0] == 250:
                    accepted.append(tag)
                    streak = 0
                    continue
                assert is_disk_full(reply), (tag, reply)
                refused.append(tag)
                assert c.cmd("RSET")[0] == 250
                streak += 1
                if streak == 8:
                    break
            assert accepted and refused, (accepted, refused)
            eventually(lambda: assert_store_sound(y))
            assert_stored_once(y, accepted)

            os.unlink(filler)
            assert transaction(c, "after-space-freed", 200_000)[0] == 250
        finally:
            c.close()
        assert_stored_once(y, accepted + ["after-space-freed"])
        assert_store_sound(y)
        # and all of it is still there after a restart
        y.restart(wait=("smtp", "pop3"))
        assert_stored_once(y, accepted + ["after-space-freed"])
        assert_store_sound(y)
        assert_alive(y)


def test_disk_filling_up_under_concurrent_senders(youju_factory):
    """Several sessions deliver at once while the disk fills, so that
    deliveries that fit and deliveries that do not share the database
    writer's batches. Exactly the messages that got 250 are stored."""
    y = youju_factory()
    with small_disk(y):
        start_on_small_disk(y)
        filler = fill_disk(y, leave=768 * 1024)
        accepted, problems = [], []
        lock = threading.Lock()

        def sender(n):
            rnd = random.Random(n)
            streak = 0
            try:
                c = SmtpRaw(y.ports["smtp"], timeout=30)
                c.greet()
                for i in range(40):
                    tag = f"sender{n}-{i}"
                    reply = transaction(c, tag, rnd.randrange(0, 40_000))
                    if reply[0] == 250:
                        with lock:
                            accepted.append(tag)
                        streak = 0
                        continue
                    if not is_disk_full(reply):
                        problems.append((tag, reply))
                        return
                    c.cmd("RSET")
                    streak += 1
                    if streak == 6:
                        break
                c.close()
            except (OSError, EOFError, AssertionError) as e:
                problems.append((n, repr(e)))

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not problems, problems
        assert accepted
        eventually(lambda: assert_store_sound(y))
        assert_stored_once(y, accepted)
        os.unlink(filler)
        assert deliver(y, "after-space-freed")[0] == 250
        assert_stored_once(y, accepted + ["after-space-freed"])
        assert_store_sound(y)
        assert_alive(y)


def test_disk_full_during_pop3_expunge(youju_factory):
    y = youju_factory()
    with small_disk(y):
        start_on_small_disk(y)
        tags = [f"pop-{i}" for i in range(3)]
        for tag in tags:
            assert deliver(y, tag, 2000)[0] == 250
        p = pop_login(y)
        assert p.stat()[0] == 3
        filler = fill_disk(y)
        assert p.dele(1).startswith(b"+OK")
        try:
            resp = p.quit()
        except poplib.error_proto as e:
            resp = e.args[0]
            p.close()
        assert resp.startswith((b"+OK", b"-ERR")), resp
        expunged = resp.startswith(b"+OK")
        assert y.proc.poll() is None, "youjud died:\n" + y.read_log()[-3000:]

        os.unlink(filler)
        left = tags[1:] if expunged else tags
        p = pop_login(y)
        count, _ = p.stat()
        assert count == len(left), (resp, count)
        seen = []
        for n in range(1, count + 1):
            _, lines, _ = p.retr(n)
            m = TAG_RE.search(b"\r\n".join(lines) + b"\r\n")
            assert m, lines[:8]
            seen.append(m.group(1).decode())
        assert seen == left, (resp, seen)
        p.quit()
        assert_stored_once(y, left)
        assert_store_sound(y)
        assert_alive(y)


def test_no_inodes_left(youju_factory):
    y = youju_factory()
    with small_disk(y, inodes=64):
        start_on_small_disk(y)
        assert deliver(y, "before")[0] == 250
        fillers = use_all_inodes(y)
        c = SmtpRaw(y.ports["smtp"], timeout=30)
        try:
            c.greet()
            reply = transaction(c, "no-inode", 10_000)
            assert is_disk_full(reply), reply
            assert c.cmd("RSET")[0] == 250
            for path in fillers:
                os.unlink(path)
            assert transaction(c, "after", 10_000)[0] == 250
        finally:
            c.close()
        assert_stored_once(y, ["before", "after"])
        assert_store_sound(y)
        assert_alive(y)


def test_youjud_starts_on_a_full_disk(youju_factory):
    """A restart while the disk is full (a reboot, an upgrade) must not
    take the mail server down: youjud runs and refuses mail with a 4xx,
    lets users log in to POP3 (or says [SYS/TEMP]), and takes mail again
    as soon as there is room, without another restart."""
    y = youju_factory()
    with small_disk(y):
        start_on_small_disk(y)
        assert deliver(y, "before")[0] == 250
        y.stop()
        filler = fill_disk(y)
        y.start(wait=())
        assert wait_started_or_exited(y), \
            "youjud exits when started on a full disk:\n" + y.read_log()[-600:]
        c = SmtpRaw(y.ports["smtp"], timeout=30)
        try:
            c.greet()
            code, texts = transaction(c, "while-full", 10_000)
            assert 400 <= code < 500, (code, texts)
        finally:
            c.close()
        p = poplib.POP3("127.0.0.1", y.ports["pop3"], timeout=30)
        p.user(ALICE)
        try:
            resp = p.pass_(PASSWORD)
        except poplib.error_proto as e:
            resp = e.args[0]
        p.close()
        assert resp.startswith((b"+OK", b"-ERR [SYS/TEMP]")), resp
        os.unlink(filler)
        assert deliver(y, "after")[0] == 250
        assert_stored_once(y, ["before", "after"])
        assert_store_sound(y)
        assert_alive(y)


# ---- 2. clients that vanish ----

def _smtp_to_data(c):
    c.greet()
    assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
    assert c.cmd(f"RCPT TO:<{ALICE}>")[0] == 250
    assert c.cmd("DATA")[0] == 354


def _vanish_before_greeting(c):
    pass


def _vanish_mid_command(c):
    c.greet()
    c.send(b"MAIL FROM:<bob@exam")


def _vanish_mid_data(c):
    _smtp_to_data(c)
    c.send(wire("vanished", 200_000)[:150_000])


def _vanish_before_final_crlf(c):
    _smtp_to_data(c)
    c.send(wire("vanished-at-dot", 20_000) + b".")


def _vanish_mid_bdat(c):
    c.greet()
    assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
    assert c.cmd(f"RCPT TO:<{ALICE}>")[0] == 250
    c.send(b"BDAT 100000 LAST\r\n" + wire("vanished-bdat", 60_000)[:60_000])


def _vanish_after_starttls(c):
    c.greet()
    assert c.cmd("STARTTLS")[0] == 220


def _vanish_mid_tls_record(c):
    _vanish_after_starttls(c)
    c.send(client_hello()[:40])


def _vanish_after_client_hello(c):
    _vanish_after_starttls(c)
    c.send(client_hello())


def _vanish_mid_data_over_tls(c):
    c.greet()
    c.starttls()
    assert c.cmd("EHLO client.test")[0] == 250
    assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
    assert c.cmd(f"RCPT TO:<{ALICE}>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(wire("vanished-tls", 100_000)[:70_000])


# name: (what the client does before it goes, what youjud must log)
SMTP_VANISHERS = {
    "before the greeting": (_vanish_before_greeting, None),
    "mid command line": (_vanish_mid_command, "lost connection"),
    "mid DATA": (_vanish_mid_data, "lost connection during DATA"),
    "before the final CRLF": (_vanish_before_final_crlf, "lost connection during DATA"),
    "mid BDAT chunk": (_vanish_mid_bdat, "lost connection during BDAT"),
    "after STARTTLS": (_vanish_after_starttls, "starttls failed"),
    "mid TLS record": (_vanish_mid_tls_record, "starttls failed"),
    "after the ClientHello": (_vanish_after_client_hello, "starttls failed"),
    "mid DATA over TLS": (_vanish_mid_data_over_tls, "lost connection during DATA"),
}


def test_smtp_clients_that_vanish(youju):
    y = youju
    # A client in the middle of its own message all along: it must not
    # notice the others.
    bystander = SmtpRaw(y.ports["smtp"], timeout=30)
    _smtp_to_data(bystander)
    bystander_msg = wire("bystander", 100_000)
    sent = 0
    step = len(bystander_msg) // (len(SMTP_VANISHERS) * 2 + 1)
    expected = []
    try:
        for name, (act, logged) in SMTP_VANISHERS.items():
            for how in ("close", "reset"):
                what = f"{name} ({how})"
                c = SmtpRaw(y.ports["smtp"], timeout=10)
                sid = session_id(y, c.sock)
                act(c)
                if how == "reset":
                    reset_close(c.sock)
                else:
                    c.close()
                wait_session_end(y, sid)
                lines = "\n".join(session_log(y, sid))
                if logged:
                    assert logged in lines, f"{what}: youjud did not log it:\n{lines}"
                # nothing of it is kept; the bystander's blob is open
                eventually(lambda: assert_store_sound(y, in_flight=1))
                tag = f"after-{len(expected)}"
                assert deliver(y, tag)[0] == 250, what
                expected.append(tag)
                bystander.send(bystander_msg[sent:sent + step])
                sent += step
        bystander.send(bystander_msg[sent:] + b".\r\n")
        assert bystander.reply()[0] == 250
    finally:
        bystander.close()
    assert_stored_once(y, expected + ["bystander"])
    assert_store_sound(y)
    assert_alive(y)


def test_whole_transaction_pipelined_then_reset(youju):
    """A client that sends a whole message and QUIT in one go and resets
    the connection before any reply: each message is stored whole and
    once, or not at all."""
    y = youju
    sent = {}
    for i in range(10):
        tag = f"pipelined-{i}"
        sent[tag] = wire(tag, 1000 * (i * 7 % 50))
        c = SmtpRaw(y.ports["smtp"], timeout=10)
        sid = session_id(y, c.sock)
        c.send(f"EHLO client.test\r\nMAIL FROM:<{SENDER}>\r\nRCPT TO:<{ALICE}>\r\n"
               "DATA\r\n".encode() + sent[tag] + b".\r\nQUIT\r\n")
        reset_close(c.sock)
        wait_session_end(y, sid)
    for tag, uids in stored(y).items():
        assert tag in sent and len(uids) == 1, (tag, uids)
        assert y.msg_cat(ALICE, uids[0]).endswith(sent[tag]), f"{tag} is not whole"
    assert_store_sound(y)
    assert_alive(y)


def _pop_vanish_mid_retr(y):
    p = Pop3Raw(y.ports["pop3"])
    p.login()
    assert p.cmd("DELE 2").startswith(b"+OK")
    p.sock.sendall(b"RETR 1\r\n")
    got = b""
    while len(got) < 1024:
        chunk = p.sock.recv(1024 - len(got))
        assert chunk, "the server closed the connection during RETR"
        got += chunk
    assert got.startswith(b"+OK"), got[:100]
    return p.sock


def _pop_vanish_mid_command(y):
    p = Pop3Raw(y.ports["pop3"])
    assert p.line().startswith(b"+OK")
    p.sock.sendall(b"USER ali")
    return p.sock


def _pop_vanish_logged_in(y):
    p = Pop3Raw(y.ports["pop3"])
    p.login()
    assert p.cmd("DELE 1").startswith(b"+OK")
    return p.sock


def _pop_vanish_after_stls(y):
    p = Pop3Raw(y.ports["pop3"])
    assert p.line().startswith(b"+OK")
    assert p.cmd("STLS").startswith(b"+OK")
    return p.sock


def _pop_vanish_mid_stls_handshake(y):
    sock = _pop_vanish_after_stls(y)
    sock.sendall(client_hello()[:60])
    return sock


def _pop_vanish_mid_pop3s_handshake(y):
    sock = socket.create_connection(("127.0.0.1", y.ports["pop3s"]), timeout=10)
    sock.sendall(client_hello())
    return sock


def _pop_vanish_mid_pop3s_retr(y):
    p = Pop3Raw(y.ports["pop3s"], tls=True)
    p.login()
    p.sock.sendall(b"RETR 1\r\n")
    got = p.sock.recv(1024)
    assert got.startswith(b"+OK"), got[:100]
    return p.sock


POP3_VANISHERS = {
    "mid RETR of 5 MB": _pop_vanish_mid_retr,
    "mid command line": _pop_vanish_mid_command,
    "logged in, after DELE, no QUIT": _pop_vanish_logged_in,
    "after STLS": _pop_vanish_after_stls,
    "mid STLS handshake": _pop_vanish_mid_stls_handshake,
    "mid pop3s handshake": _pop_vanish_mid_pop3s_handshake,
    "mid RETR over pop3s": _pop_vanish_mid_pop3s_retr,
}


def test_pop3_clients_that_vanish(youju):
    y = youju
    assert deliver(y, "five-mb", 5 << 20)[0] == 250
    assert deliver(y, "small")[0] == 250
    uids = sorted(y.uids(ALICE))
    big = y.msg_cat(ALICE, uids[0])
    delivered = ["five-mb", "small"]
    for name, act in POP3_VANISHERS.items():
        for how in ("close", "reset"):
            what = f"{name} ({how})"
            sock = act(y)
            sid = session_id(y, sock)
            if how == "reset":
                reset_close(sock)
            else:
                sock.close()
            wait_session_end(y, sid)
            # other sessions go on: mail comes in...
            tag = f"after-{len(delivered)}"
            assert deliver(y, tag)[0] == 250, what
            delivered.append(tag)
            # ...and the maildrop is free at once, with nothing deleted
            p = pop_login(y)
            count, _ = p.stat()
            assert count == len(delivered), (what, count)
            p.quit()
    # the big message is still whole
    p = pop_login(y)
    _, lines, _ = p.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == big
    p.quit()
    assert_stored_once(y, delivered)
    assert_store_sound(y)
    assert_alive(y)


# ---- 3. garbage ----

def _smtp_lines_are_refusals(data, what):
    lines = data.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    assert lines and lines[0].startswith(b"220 "), (what, lines[:3])
    for line in lines[1:]:
        ok = line[:1] == b"5" or line.startswith((b"421 ", b"221 "))
        assert ok, f"{what}: youjud answered garbage with {line!r}"


def _pop3_lines_are_refusals(data, what):
    lines = data.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    assert lines and lines[0].startswith(b"+OK"), (what, lines[:3])
    for line in lines[1:-1]:
        assert line.startswith(b"-ERR"), f"{what}: youjud answered garbage with {line!r}"


def test_random_bytes_as_the_first_thing(youju):
    y = youju
    for seed in range(3):
        junk = random.Random(seed).randbytes(4096)
        for name in ("smtp", "pop3", "pop3s"):
            what = f"{name}, seed {seed}"
            s = socket.create_connection(("127.0.0.1", y.ports[name]), timeout=10)
            try:
                s.sendall(junk + b"\r\nQUIT\r\n")
                data, closed = read_to_end(s)
            finally:
                s.close()
            assert closed, f"{what}: youjud did not end the session"
            if name == "smtp":
                _smtp_lines_are_refusals(data, what)
            elif name == "pop3":
                _pop3_lines_are_refusals(data, what)
            else:
                assert b"+OK" not in data, f"{what}: plain text on the TLS port"
    # one endless line: one refusal, then the session goes on
    junk = random.Random(99).randbytes(300_000).replace(b"\n", b"")
    s = socket.create_connection(("127.0.0.1", y.ports["smtp"]), timeout=10)
    try:
        s.sendall(junk + b"\r\nQUIT\r\n")
        data, closed = read_to_end(s)
    finally:
        s.close()
    lines = data.split(b"\r\n")
    assert closed and len(lines) == 4, lines
    assert lines[1].startswith(b"500 5.5.2 ") and lines[2].startswith(b"221 "), lines
    assert_alive(y)


def _dot_stuff(content):
    """content (ending in CRLF) as it goes after DATA: a dot that starts
    an SMTP line is doubled."""
    out = content.replace(b"\r\n.", b"\r\n..")
    return b"." + out if out.startswith(b".") else out


def _pop3_retr_raw(p, n):
    """RETR n over a Pop3Raw: (the size the server announced, the message
    with the dot-stuffing undone)."""
    first = p.cmd(f"RETR {n}")
    assert first.startswith(b"+OK "), first
    while not p.buf.endswith(b"\r\n.\r\n"):
        chunk = p.sock.recv(1 << 20)
        assert chunk, "the connection closed in the middle of RETR"
        p.buf += chunk
    body, p.buf = p.buf[:-3], b""
    lines = [line[1:] if line.startswith(b".") else line for line in body.split(b"\r\n")]
    return int(first.split()[1]), b"\r\n".join(lines)


def test_binary_garbage_inside_a_message(youju):
    """Random bytes as a message body (NULs, bare CRs and LFs, lone dots):
    stored as received, bare LFs and bare CRs made CRLF, and POP3 gives
    back exactly those bytes, with the size it announces."""
    y = youju
    content = wire("binary") + random.Random(7).randbytes(60_000) + b"\r\n"
    c = SmtpRaw(y.ports["smtp"], timeout=30)
    try:
        c.greet()
        code, texts = c.mail(SENDER, [ALICE], _dot_stuff(content))
    finally:
        c.close()
    assert code == 250 or code >= 500, (code, texts)
    if code != 250:
        assert stored(y) == {}
        return
    uids = y.uids(ALICE)
    raw = y.msg_cat(ALICE, uids[0])
    assert raw.endswith(re.sub(rb"\r\n|\r|\n", b"\r\n", content))
    p = Pop3Raw(y.ports["pop3"])
    try:
        p.login()
        size, got = _pop3_retr_raw(p, 1)
        assert p.cmd("QUIT").startswith(b"+OK")
    finally:
        p.sock.close()
    assert got == raw
    assert size == len(raw)
    assert_alive(y)


def test_nul_bytes_inside_commands(youju):
    y = youju
    c = SmtpRaw(y.ports["smtp"])
    try:
        c.greet()
        assert c.cmd(b"NO\0OP")[0] == 500
        assert c.cmd(b"MAIL FROM:<bob@example.org>\0 SIZE=10")[0] == 500
        assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        # a NUL must not cut the address short and let the rest through
        assert c.cmd(b"RCPT TO:<alice@example.test>\0<x@elsewhere.test>")[0] >= 500
        assert c.cmd(b"RCPT TO:<alice@example.test\0>")[0] >= 500
        assert c.cmd(f"RCPT TO:<{ALICE}>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(wire("nul-commands") + b".\r\n")
        assert c.reply()[0] == 250
        assert c.cmd("QUIT")[0] == 221
    finally:
        c.close()
    p = Pop3Raw(y.ports["pop3"])
    try:
        assert p.line().startswith(b"+OK")
        assert p.cmd("USER " + ALICE + "\0junk").startswith(b"-ERR")
        assert p.cmd("USER " + ALICE).startswith(b"+OK")
        # the password before the NUL is right: still no login
        assert p.cmd("PASS " + PASSWORD + "\0junk").startswith(b"-ERR")
        assert p.cmd("STAT").startswith(b"-ERR")
        assert p.cmd("USER " + ALICE).startswith(b"+OK")
        assert p.cmd("PASS " + PASSWORD).startswith(b"+OK")
        assert p.cmd("STAT\0").startswith(b"-ERR")
        assert p.cmd("STAT") == b"+OK 1 %d" % len(y.msg_cat(ALICE, y.uids(ALICE)[0]))
        assert p.cmd("QUIT").startswith(b"+OK")
    finally:
        p.sock.close()
    assert_stored_once(y, ["nul-commands"])
    assert_alive(y)


def test_tls_on_plain_ports_and_plain_text_on_tls_ports(youju):
    y = youju
    hello = client_hello()
    for name in ("smtp", "pop3"):
        # a ClientHello where a command belongs
        s = socket.create_connection(("127.0.0.1", y.ports[name]), timeout=10)
        try:
            s.sendall(hello)
            time.sleep(0.2)
            s.sendall(b"\r\nQUIT\r\n")
            data, closed = read_to_end(s)
        finally:
            s.close()
        assert closed, f"{name}: the session did not end"
        if name == "smtp":
            _smtp_lines_are_refusals(data, name)
        else:
            _pop3_lines_are_refusals(data, name)
        # a real TLS client fails at once instead of waiting
        s = socket.create_connection(("127.0.0.1", y.ports[name]), timeout=10)
        start = time.monotonic()
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            unverified().wrap_socket(s, server_hostname="mx.example.test")
        s.close()
        assert time.monotonic() - start < 5
    # plain text on pop3s, at the start and instead of the STLS handshake
    s = socket.create_connection(("127.0.0.1", y.ports["pop3s"]), timeout=10)
    try:
        s.sendall(f"USER {ALICE}\r\nQUIT\r\n".encode())
        data, closed = read_to_end(s, 5)
    finally:
        s.close()
    assert closed and b"+OK" not in data, data
    p = Pop3Raw(y.ports["pop3"])
    try:
        assert p.line().startswith(b"+OK")
        assert p.cmd("STLS").startswith(b"+OK")
        p.sock.sendall(f"USER {ALICE}\r\nQUIT\r\n".encode())
        data, closed = read_to_end(p.sock, 5)
    finally:
        p.sock.close()
    assert closed and b"+OK" not in data, data
    assert_alive(y)


# ---- 4. more connections than allowed ----

def _open_greeted(port):
    """Connects and reads the first line (b"" if the server closed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    return s, data


def _hold(y, n, timeout=10.0):
    """n connections, SMTP and POP3 in turn, every one greeted; retries
    while youjud may still be ending earlier sessions."""
    end = time.monotonic() + timeout
    while True:
        held = [_open_greeted(y.ports["smtp" if i % 2 == 0 else "pop3"]) for i in range(n)]
        greetings = [data for _, data in held]
        if all(g.startswith((b"220 ", b"+OK")) for g in greetings):
            return [s for s, _ in held]
        for s, _ in held:
            s.close()
        assert time.monotonic() < end, f"only some of {n} were served: {greetings}"
        time.sleep(0.2)


def _assert_refused(y):
    for name, want in (("smtp", b"421 4.7.0 "), ("pop3", b"-ERR [SYS/TEMP] "), ("pop3s", b"")):
        s, data = _open_greeted(y.ports[name])
        try:
            assert data.startswith(want), (name, data)
            rest, closed = read_to_end(s, 3)
            assert closed and rest == b"", (name, data, rest)
        finally:
            s.close()


def _churn(y, i):
    """One short connection that ends in one of several rude ways."""
    name = ("smtp", "pop3", "pop3s")[i % 3]
    s = socket.create_connection(("127.0.0.1", y.ports[name]), timeout=5)
    way = i % 4
    try:
        if way == 1 and name != "pop3s":
            s.recv(4096)
            s.sendall(b"QUIT\r\n")
            s.recv(4096)
        elif way == 2:
            s.sendall(b"NOOP\r\nHALF A LI")
    except OSError:
        pass
    if way == 3:
        reset_close(s)
    else:
        s.close()


def test_connection_limit_and_no_slot_leak(youju_with):
    y = youju_with(max_connections=10)
    held = _hold(y, 10)
    try:
        _assert_refused(y)
        # a burst over the limit is refused too, and does not count
        burst = [_open_greeted(y.ports["smtp"]) for _ in range(20)]
        for s, data in burst:
            s.close()
            assert data.startswith(b"421 4.7.0 "), data
    finally:
        for s in held:
            s.close()
    for i in range(200):
        _churn(y, i)
    # every slot came back: ten at once again, the eleventh refused
    held = _hold(y, 10)
    try:
        _assert_refused(y)
    finally:
        for s in held:
            s.close()
    eventually(lambda: assert_alive(y))
    assert deliver(y, "after-the-crowd")[0] == 250
    assert_stored_once(y, ["after-the-crowd"])


# ---- 5. SIGTERM in the middle of messages ----

def test_sigterm_during_data(youju):
    y = youju
    bob, bob_pw = "bob@example.test", "pw-bob-123"
    y.add_account(bob, bob_pw)
    assert deliver(y, "five-mb", 5 << 20)[0] == 250
    c = SmtpRaw(y.ports["smtp"], timeout=30)
    c.greet()
    assert c.mail(SENDER, [bob], wire("five-mb-for-bob", 5 << 20))[0] == 250
    c.close()
    open_socks = []
    try:
        done = []
        for tag in ("done-1", "done-2"):
            c = SmtpRaw(y.ports["smtp"], timeout=30)
            open_socks.append(c.sock)
            c.greet()
            assert c.mail(SENDER, [ALICE], wire(tag, 50_000))[0] == 250
            done.append(c)
        halves = []
        for i in range(20):
            c = SmtpRaw(y.ports["smtp"], timeout=30)
            open_socks.append(c.sock)
            _smtp_to_data(c)
            c.send(wire(f"half-{i}", 300_000)[:200_000])
            halves.append(c)
        c = SmtpRaw(y.ports["smtp"], timeout=30)
        open_socks.append(c.sock)
        c.greet()
        assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>")[0] == 250
        c.send(b"BDAT 500000 LAST\r\n" + b"y" * 100_000)
        halves.append(c)
        # a TLS handshake that never comes
        c = SmtpRaw(y.ports["smtp"], timeout=30)
        open_socks.append(c.sock)
        c.greet()
        assert c.cmd("STARTTLS")[0] == 220
        # a POP3 client that asked for 5 MB and does not read them
        p = Pop3Raw(y.ports["pop3"], rcvbuf=4096)
        open_socks.append(p.sock)
        p.login()
        p.sock.sendall(b"RETR 1\r\n")
        # the same over TLS
        p = Pop3Raw(y.ports["pop3s"], tls=True, rcvbuf=4096)
        open_socks.append(p.sock)
        assert p.line().startswith(b"+OK")
        assert p.cmd("USER " + bob).startswith(b"+OK")
        assert p.cmd("PASS " + bob_pw).startswith(b"+OK")
        p.sock.sendall(b"RETR 1\r\n")
        # youjud has started every half message
        eventually(lambda: assert_store_sound(y, in_flight=len(halves)))

        start = time.monotonic()
        y.proc.send_signal(signal.SIGTERM)
        try:
            rc = y.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            y.proc.kill()
            y.proc.wait()
            pytest.fail("youjud did not stop within 20 s of SIGTERM:\n" + y.read_log()[-3000:])
        took = time.monotonic() - start
        assert rc == 0, y.read_log()[-3000:]
        assert took < 5, f"youjud took {took:.1f} s to stop"
        assert "youjud stopped" in y.read_log()
        y.stop()
        for c in halves:
            data, closed = read_to_end(c.sock, 5)
            assert closed and b"250" not in data, data
    finally:
        for s in open_socks:
            s.close()
    assert_store_sound(y)
    assert_stored_once(y, ["five-mb", "done-1", "done-2"])
    y.start(wait=("smtp", "pop3"))
    assert deliver(y, "after-restart")[0] == 250
    assert_stored_once(y, ["five-mb", "done-1", "done-2", "after-restart"])
    assert_alive(y)


# ---- 6. a second youjud on the same data dir ----

def test_second_youjud_on_the_same_data_dir(youju, youju_factory):
    """Whether a second youjud may run on a data dir in use is youjud's
    choice; if it runs, mail through both lands exactly once each, with
    distinct UIDs, and the store stays sound."""
    y = youju
    y2 = youju_factory()
    y2.data_dir = y.data_dir
    y2.start(wait=())
    if not wait_started_or_exited(y2):
        assert y2.proc.returncode != 0, "the second youjud exited with status 0"
        y2.stop()
        assert deliver(y, "first-only")[0] == 250
        assert_stored_once(y, ["first-only"])
        assert_store_sound(y)
        assert_alive(y)
        return

    results = {}
    lock = threading.Lock()

    def sender(inst, prefix):
        for i in range(10):
            tag = f"{prefix}-{i}"
            try:
                code = deliver(inst, tag, 10_000 * (i + 1))[0]
            except (OSError, EOFError, AssertionError) as e:
                code = repr(e)
            with lock:
                results[tag] = code

    threads = [threading.Thread(target=sender, args=(inst, f"{name}{n}"))
               for inst, name in ((y, "one"), (y2, "two")) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = {t: c for t, c in results.items() if c != 250}
    assert not failed, f"not accepted: {failed}"
    assert_stored_once(y, list(results))
    uids = y.uids(ALICE)
    assert len(uids) == len(set(uids)) == len(results), uids
    assert_store_sound(y)
    # each sees all of it
    for inst in (y, y2):
        p = pop_login(inst)
        assert p.stat()[0] == len(results)
        p.quit()
    y2.stop()
    assert_alive(y)


def test_second_youjud_keeps_the_pop3_maildrop_exclusive(youju, youju_factory):
    """RFC 1939: a POP3 session holds an exclusive lock on the maildrop.
    A second youjud on the same data dir must not hand out a second one
    (refusing to start at all is fine too)."""
    y = youju
    y2 = youju_factory()
    y2.data_dir = y.data_dir
    y2.start(wait=())
    if not wait_started_or_exited(y2):
        assert y2.proc.returncode != 0, "the second youjud exited with status 0"
        return
    first = pop_login(y)
    try:
        p = poplib.POP3("127.0.0.1", y2.ports["pop3"], timeout=30)
        p.user(ALICE)
        try:
            resp = p.pass_(PASSWORD)
        except poplib.error_proto as e:
            resp = e.args[0]
        p.close()
        assert resp.startswith(b"-ERR [IN-USE]"), \
            f"a second POP3 session got the maildrop through the other youjud: {resp!r}"
    finally:
        first.quit()
        y2.stop()
