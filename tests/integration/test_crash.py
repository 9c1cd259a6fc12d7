"""Crash safety of inbound mail: youjud is killed with SIGKILL at random
moments while several clients send, and restarted; every message that
got 250 must be in the mailbox, once, complete, and the database sound.

A client that loses its connection after sending the end of data cannot
know whether the message was taken, so it sends it again: such a message
may then be stored more than once, at most once per such attempt.
"""
import os
import random
import re
import shutil
import socket
import subprocess
import threading
import time

from conftest import sqlite_only

ALICE = "alice@example.test"
MESSAGES = 200      # at least this many messages...
MIN_KILLS = 8       # ...and at least this many crashes while they flow
THREADS = 6
PACE = (0.03, 0.15)  # seconds each sender rests between messages
SEND_PHASE = 40.0   # hard bound on the sending, in seconds


def message(i):
    rnd = random.Random(i)
    lines = [f"line {n} of message {i} " + "x" * rnd.randrange(0, 70)
             for n in range(rnd.randrange(1, 300))]
    return (f"Message-ID: <crash-{i}@example.org>\r\nSubject: crash {i}\r\n"
            f"From: bob@example.org\r\nTo: {ALICE}\r\n\r\n" + "\r\n".join(lines)
            + "\r\n").encode()


class Attempt:
    """One try at sending one message; outcome is 'ok', 'refused' (the
    server answered non-250 to the end of data), 'unknown' (the end of
    data may have reached it, no answer) or 'failed' (it cannot have)."""

    def __init__(self, port, wire):
        self.port = port
        self.wire = wire
        self.data_sent = False

    def _reply(self, f):
        while True:
            line = f.readline()
            if not line:
                raise EOFError
            if line[3:4] != b"-":
                return int(line[:3])

    def _expect(self, f, code):
        got = self._reply(f)
        if got != code:
            raise RuntimeError(f"got {got}, expected {code}")

    def run(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                f = s.makefile("rb")
                self._expect(f, 220)
                s.sendall(b"EHLO crash.test\r\n")
                self._expect(f, 250)
                s.sendall(b"MAIL FROM:<bob@example.org>\r\n")
                self._expect(f, 250)
                s.sendall(f"RCPT TO:<{ALICE}>\r\n".encode())
                self._expect(f, 250)
                s.sendall(b"DATA\r\n")
                self._expect(f, 354)
                self.data_sent = True
                s.sendall(self.wire + b".\r\n")
                code = self._reply(f)
                if code == 250:
                    try:
                        s.sendall(b"QUIT\r\n")
                    except OSError:
                        pass
                    return "ok"
                return "refused"
        except (OSError, EOFError, RuntimeError, ValueError):
            return "unknown" if self.data_sent else "failed"


def stored_copies(y):
    """{message number: [stored bytes, ...]} from alice's INBOX."""
    out = {}
    for uid in y.uids(ALICE):
        raw = y.msg_cat(ALICE, uid)
        m = re.search(rb"^Message-ID: <crash-(\d+)@example\.org>\r$", raw, re.M)
        assert m, f"uid {uid} has no test Message-ID:\n{raw[:300]!r}"
        out.setdefault(int(m.group(1)), []).append(raw)
    return out


def test_sigkill_during_delivery_loses_and_corrupts_nothing(youju):
    y = youju
    port = y.ports["smtp"]
    wires = {}
    # per message: 'ok' seen, and how many attempts may have stored it
    acked = {}
    possible = {}
    lock = threading.Lock()
    stop = threading.Event()
    deadline = time.monotonic() + SEND_PHASE
    kills = []
    errors = []

    def next_message():
        """A new message number, or None once there were enough of both
        messages and crashes."""
        with lock:
            if len(wires) >= MESSAGES and len(kills) >= MIN_KILLS:
                return None
            i = len(wires)
            wires[i] = message(i)
            possible[i] = 0
            return i

    def sender(seed):
        rnd = random.Random(seed)
        while time.monotonic() < deadline and not errors:
            i = next_message()
            if i is None:
                return
            while time.monotonic() < deadline and not errors:
                outcome = Attempt(port, wires[i]).run()
                with lock:
                    if outcome in ("ok", "unknown"):
                        possible[i] += 1
                    if outcome == "ok":
                        acked[i] = True
                if outcome == "ok":
                    break
                time.sleep(0.05)
            time.sleep(rnd.uniform(*PACE))

    def killer():
        rnd = random.Random(4242)
        try:
            while not stop.wait(rnd.uniform(0.2, 1.0)):
                y.kill()
                kills.append(time.monotonic())
                y.start()
        except BaseException as e:  # noqa: B902 - reported by the test
            errors.append(e)

    senders = [threading.Thread(target=sender, args=(n,)) for n in range(THREADS)]
    k = threading.Thread(target=killer)
    k.start()
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    stop.set()
    k.join()
    assert not errors, f"restart failed: {errors[0]}"
    assert len(kills) >= MIN_KILLS, f"only {len(kills)} crashes in {SEND_PHASE}s"
    assert len(acked) == len(wires), \
        f"only {len(acked)} of {len(wires)} acknowledged in {SEND_PHASE}s ({len(kills)} kills)"

    # one last crash at rest, then look at what is on disk
    if y.proc is None:
        y.start()
    y.kill()
    check = subprocess.run(["sqlite3", f"{y.data_dir}/youju.db", "PRAGMA integrity_check"],
                           capture_output=True, text=True, timeout=60)
    assert check.stdout.strip() == "ok", check.stdout + check.stderr

    copies = stored_copies(y)
    resent = sum(1 for i in wires if possible[i] > 1)
    extra = sum(len(c) - 1 for c in copies.values() if len(c) > 1)
    print(f"{len(wires)} messages, {len(kills)} kills, {resent} possibly stored twice "
          f"by a resend, {extra} extra copies, {len(copies)} stored")
    problems = []
    for i in wires:
        got = copies.get(i, [])
        if i in acked and not got:
            problems.append(f"message {i}: acknowledged, not stored")
        if len(got) > possible[i]:
            problems.append(f"message {i}: stored {len(got)} times, sent {possible[i]}")
        for raw in got:
            if not raw.endswith(wires[i]):
                problems.append(f"message {i}: stored copy differs from what was sent")
    assert not problems, "\n".join(problems[:20]) + f"\n({len(kills)} kills)"

    # and the restarted server still takes mail
    y.start()
    probe = Attempt(port, b"Subject: after\r\n\r\nafter the crashes\r\n")
    assert probe.run() == "ok"


def blob_files(y):
    blobs = os.path.join(y.data_dir, "blobs")
    return sorted(os.path.join(d, f) for d, _, files in os.walk(blobs) for f in files)


def start_checked(y):
    """Starts youjud and waits for its "youjud started" line: the ports
    open before the store is checked (and orphans removed), so a port
    that answers does not yet mean the check is done."""
    before = y.read_log().count("youjud started")
    y.start()
    deadline = time.monotonic() + 20
    while y.read_log().count("youjud started") <= before:
        assert time.monotonic() < deadline, "no 'youjud started':\n" + y.read_log()
        time.sleep(0.05)


def test_restart_after_a_crash_removes_blobs_of_unfinished_messages(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    assert c.cmd("MAIL FROM:<bob@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: cut short\r\n\r\nhalf a message")
    deadline = time.monotonic() + 10
    while not blob_files(youju):        # the blob exists from DATA on
        assert time.monotonic() < deadline
        time.sleep(0.05)
    youju.kill()
    assert len(blob_files(youju)) == 1
    start_checked(youju)
    assert blob_files(youju) == []
    assert "gc removed 1 orphan blob files" in youju.read_log()
    assert youju.uids("alice@example.test") == []


@sqlite_only("blob files: on PostgreSQL contents are rows")
def test_only_a_restart_after_a_crash_scans_for_orphans(youju, smtp_raw):
    """A clean stop leaves no orphans, so the next start does not scan
    every blob file; a start after a crash does."""
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    assert c.mail("bob@example.org", ["alice@example.test"], b"Subject: kept\r\n\r\nx\r\n")[0] == 250
    (kept,) = blob_files(youju)
    # an unreferenced file named like a blob, as a crash would leave one
    name = os.path.basename(kept)
    orphan = os.path.join(os.path.dirname(kept), name[::-1] if name[::-1] != name else name + "0")
    shutil.copy2(kept, orphan)
    os.chown(orphan, os.stat(kept).st_uid, os.stat(kept).st_gid)
    youju.stop()
    start_checked(youju)
    assert blob_files(youju) == sorted([kept, orphan])
    youju.kill()
    start_checked(youju)
    assert blob_files(youju) == [kept]
    (uid,) = youju.uids("alice@example.test")
    assert youju.msg_cat("alice@example.test", uid).endswith(b"Subject: kept\r\n\r\nx\r\n")


def test_flag_changes_answered_before_a_crash_survive_it(youju):
    """A STORE's commit does not wait for the disk (the writer syncs it
    within half a second), but a killed youjud loses none of them: what
    was answered OK is there after the restart."""
    import imaplib
    import smtplib
    from conftest import PASSWORD, USER

    with smtplib.SMTP("127.0.0.1", youju.ports["smtp"], timeout=30) as s:
        for i in range(20):
            s.sendmail("bob@example.org", [USER],
                       f"Subject: flags {i}\r\nMessage-ID: <f{i}@example.org>\r\n\r\nx\r\n")
    m = imaplib.IMAP4("127.0.0.1", youju.ports["imap"], timeout=20)
    m.login(USER, PASSWORD)
    m.select("INBOX")
    typ, _ = m.store("1", "+FLAGS.SILENT", "\\Seen")
    assert typ == "OK"
    deadline = time.monotonic() + 10    # synced within half a second
    while getattr(youju, "pg_dsn", None) is None and "deferred commits are on disk" not in youju.read_log():
        assert time.monotonic() < deadline, "no sync of the deferred commit"
        time.sleep(0.05)
    for i in range(1, 21):
        flag = "\\Flagged" if i % 2 else "\\Answered"
        typ, _ = m.store(str(i), "+FLAGS.SILENT", flag)
        assert typ == "OK"
    youju.kill()        # at once, before the half second is up
    youju.start(wait=("imap",))
    m = imaplib.IMAP4("127.0.0.1", youju.ports["imap"], timeout=20)
    m.login(USER, PASSWORD)
    m.select("INBOX", readonly=True)
    typ, data = m.fetch("1:20", "(FLAGS)")
    assert typ == "OK"
    for i, line in enumerate(data, start=1):
        want = b"\\Flagged" if i % 2 else b"\\Answered"
        assert want in line, (i, line)
    m.logout()
