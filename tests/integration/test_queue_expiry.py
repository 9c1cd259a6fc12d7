"""Finished queue entries go after queue_finished_retention (the store's
maintenance thread), with the message they kept when nothing else names
it; `youju queue list` shows what is still to be sent or kept for the
admin, `--all` also the rows whose success report is still being made."""
import os
import smtplib
import time

from conftest import PASSWORD, STORE_DRIVER, USER
from queuenet import wait_queue
from test_smtp_roles import sql

ALICE = USER
BOB = "bob@example.test"


def submit(y, rcpts, body, rcpt_options=()):
    with smtplib.SMTP("127.0.0.1", y.ports["submission"], timeout=30) as s:
        s.login(ALICE, PASSWORD)
        assert s.sendmail(ALICE, rcpts, body, rcpt_options=list(rcpt_options)) == {}


def test_finished_entries_go_after_the_retention(youju_with):
    y = youju_with(accounts=[(BOB, "pw-bob")], queue_finished_retention="4s",
                   queue_run_delay="1s", minimal_backoff_time="1h", maximal_backoff_time="1h")
    y.cli("alias", "add", "team@example.test", BOB, "gone@example.test")
    # a failed row kept with a message bob has too; one whose message
    # only the queue names; and one still waiting, never removed
    submit(y, ["team@example.test"], b"Subject: team\r\n\r\nx\r\n")
    submit(y, ["far@remote.test"], b"Subject: far\r\n\r\nx\r\n")
    submit(y, ["wait@remote.test"], b"Subject: wait\r\n\r\nx\r\n")
    wait_queue(y, "SELECT count(*) FROM queue WHERE recipient LIKE '%remote.test'"
             " AND attempts = 1", ["2"])
    far = sql(y, "SELECT id, blob_id FROM queue WHERE recipient = 'far@remote.test'")[0]
    qid, blob = far.split("|")
    y.cli("queue", "bounce", qid)
    wait_queue(y, "SELECT recipient, status, notified FROM queue ORDER BY recipient",
             ["far@remote.test|failed|1", "gone@example.test|failed|1",
              "wait@remote.test|queued|0"])
    lines = y.cli("queue", "list").stdout.splitlines()
    assert len(lines) == 3 and sum(" failed " in line for line in lines) == 2, lines
    wait_queue(y, "SELECT recipient, status FROM queue", ["wait@remote.test|queued"], timeout=20)
    wait_queue(y, "SELECT count(*) FROM queue_messages", ["1"])
    # the bounced message is gone with its last row; bob's copy stays
    assert sql(y, f"SELECT count(*) FROM blobs WHERE id = '{blob}'") == ["0"]
    if STORE_DRIVER != "postgresql":
        assert not os.path.exists(os.path.join(y.data_dir, "blobs", blob))
    assert b"Subject: team" in y.msg_cat(BOB, y.uids(BOB)[0])
    assert len(y.uids(ALICE)) == 2      # the two bounces
    assert "store: finished queue entries removed n=" in y.read_log()
    assert sql(y, "PRAGMA integrity_check" if STORE_DRIVER != "postgresql"
               else "SELECT 'ok'") == ["ok"]


def test_retention_zero_keeps_them(youju_with):
    y = youju_with(accounts=[(BOB, "pw-bob")], queue_finished_retention="0",
                   queue_run_delay="1s")
    y.cli("alias", "add", "team@example.test", BOB, "gone@example.test")
    submit(y, ["team@example.test"], b"Subject: team\r\n\r\nx\r\n")
    wait_queue(y, "SELECT status, notified FROM queue", ["failed|1"])
    time.sleep(3)
    assert sql(y, "SELECT status, notified FROM queue") == ["failed|1"]


def test_list_leaves_out_rows_waiting_for_their_success_report(youju_with):
    """With no runner on this node (queue_run_threads = 0) the report a
    delivery owes stays a row: `list` and mailq leave it out, `--all`
    shows it."""
    y = youju_with(accounts=[(BOB, "pw-bob")], queue_run_threads="0")
    submit(y, [BOB], b"Subject: tell me\r\n\r\nx\r\n", rcpt_options=["NOTIFY=SUCCESS"])
    wait_queue(y, "SELECT status, recipient FROM queue", [f"delivered|{BOB}"])
    assert y.cli("queue", "list").stdout == "the queue is empty\n"
    lines = y.cli("queue", "list", "--all").stdout.splitlines()
    assert len(lines) == 1 and f" delivered 0 " in lines[0] and f"<{BOB}>" in lines[0], lines
    assert y.cli("queue", "mailq").stdout == "Mail queue is empty\n"
    # nothing to retry or bounce there
    qid = lines[0].split()[0]
    assert y.cli("queue", "retry", qid, check=False).returncode == 1
    assert y.cli("queue", "bounce", qid, check=False).returncode == 1
