"""How the queue runner sends, seen by an MX in the test (127.0.0.3, as B
in test_queue.py): a transaction longer than the claim's lease keeps its
claim (the message goes once), a claim not renewed in time is not sent
by its first holder, DATA goes in one pipelined group with
MAIL and RCPT, and `youju queue retry` is acted on at once."""
import os
import subprocess
import sys
import time

from conftest import sqlite_only
from queuenet import BOB, Mx, net, sender_a, submit, wait_queue, wait_uids  # noqa: F401


def test_a_transaction_longer_than_the_lease_keeps_its_claim(net):
    # Leases of 2 s, an MX that takes 8 s over one message, and idle
    # threads that look for due mail every second: without renewal during
    # the transaction, another thread would claim the message and send it
    # again while the first is still sending it.
    a = sender_a(net, queue_lease_time="2s", queue_run_threads=3, smtp_timeout="30s")
    mx = Mx(int(a.overrides["smtp_port"]), slow=8.0)
    try:
        body = b"Subject: slow\r\n\r\n" + b"x" * 70 + b"\r\n"
        submit(a, [BOB], body * 200)
        wait_queue(a, "SELECT count(*) FROM queue", ["0"], timeout=40)
        time.sleep(3)			# a second sender would have connected by now
        assert (mx.connections, mx.mails, mx.messages) == (1, 1, 1)
        log = a.read_log()
        assert "lapsed" not in log, log[-3000:]
        assert "status=sent" in log
    finally:
        mx.close()


LOCKER = """import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
c.execute("ROLLBACK")
"""


def hold_write_lock(y, seconds):
    """Holds the SQLite store's write lock for seconds, from another
    process (as the data dir's owner); returns once it is taken."""
    db = os.path.join(y.data_dir, "youju.db")
    kw = {}
    if os.geteuid() == 0:
        st = os.stat(db)
        kw = {"user": st.st_uid, "group": st.st_gid, "extra_groups": []}
    p = subprocess.Popen([sys.executable, "-c", LOCKER, db, str(seconds)],
                         stdout=subprocess.PIPE, text=True, **kw)
    assert p.stdout.readline() == "locked\n"
    return p


@sqlite_only("the renewal is held up with SQLite's write lock")
def test_a_claim_not_renewed_in_time_is_not_sent(net):
    # One claim holds two messages to one MX, each taking it 4 s, under
    # leases of 2 s. While the first is sent, the store's write lock is
    # held for 11.5 s, about as long as the writer waits for it (10 s):
    # the keeper's renewal fails or lands late, after the second
    # message's lease has ended. Its first holder must then count the
    # claim as lapsed and leave the message to whoever claims it next,
    # not send it on an old claim: the message reaches the MX once.
    a = sender_a(net, queue_lease_time="2s", queue_run_threads=2,
                 minimal_backoff_time="1h", maximal_backoff_time="1h", smtp_timeout="30s")
    for subject in ("one", "two"):
        submit(a, [BOB], f"Subject: {subject}\r\n\r\nx\r\n".encode())
    # No MX yet: both are deferred for an hour, then made due together,
    # so that one claim takes both.
    wait_queue(a, "SELECT count(*) FROM queue WHERE attempts = 1 AND claimed_by = ''", ["2"])
    mx = Mx(int(a.overrides["smtp_port"]), slow=4.0)
    try:
        a.cli("queue", "retry")
        deadline = time.monotonic() + 20
        while mx.mails == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert mx.mails == 1
        hold_write_lock(a, 11.5).wait(timeout=30)
        wait_queue(a, "SELECT count(*) FROM queue", ["0"], timeout=40)
        time.sleep(1)
        assert mx.subjects.count("two") == 1, mx.subjects
        log = a.read_log()
        assert "claim on bob@b.test lapsed before it was sent" in log, log[-3000:]
    finally:
        mx.close()


def test_data_is_pipelined_with_mail_and_rcpt(net):
    # The MX answers MAIL and RCPT only once DATA has come: a client that
    # waits for those replies before DATA waits 3 s per message.
    a = sender_a(net)
    mx = Mx(int(a.overrides["smtp_port"]), hold=True)
    try:
        submit(a, [BOB, "bert@b.test"], b"Subject: pipelined\r\n\r\nx\r\n")
        wait_queue(a, "SELECT count(*) FROM queue", ["0"], timeout=20)
        assert mx.messages == 1
        assert not mx.waited
    finally:
        mx.close()


def test_queue_retry_wakes_the_running_daemon(net):
    # Idle threads look only every minute: the retry must tell them.
    b = net("b", "127.0.0.3", [(BOB, "pw-bob")])
    b.stop()
    a = sender_a(net, queue_run_delay="60s", minimal_backoff_time="1h",
                 maximal_backoff_time="1h")
    submit(a, [BOB], b"Subject: retried\r\n\r\nx\r\n")
    wait_queue(a, "SELECT count(*) FROM queue WHERE attempts = 1", ["1"])
    b.start()
    time.sleep(1)			# the threads are asleep for a minute now
    started = time.monotonic()
    a.cli("queue", "retry")
    wait_uids(b, BOB, 1, timeout=20)
    assert time.monotonic() - started < 10
