"""Success reports for mail that ends here (RFC 3461 NOTIFY=SUCCESS): a
"delivered" report when a mailbox takes the message, an "expanded" one
when an alias passes it on to several addresses (RFC 3461 5.2.7), one
report per message, made through the queue with the delivery's own
transaction; never to the null sender."""
import email
import email.policy
import re
import smtplib
import time

from conftest import PASSWORD, USER
from queuenet import wait_queue, wait_uids
from test_smtp_roles import sql

ALICE = USER
BOB = "bob@example.test"
CAROL = "carol@example.test"


def make(youju_with):
    y = youju_with(accounts=[(BOB, "pw-bob"), (CAROL, "pw-carol")], queue_run_delay="1s")
    y.cli("alias", "add", "team@example.test", BOB, CAROL)
    y.cli("alias", "add", "far@example.test", BOB, "someone@remote.test")
    y.cli("alias", "add", "fwd@example.test", "other@remote.test")
    return y


def submit(y, rcpts, body, mail_options=(), rcpt_options=()):
    with smtplib.SMTP("127.0.0.1", y.ports["submission"], timeout=30) as s:
        s.login(ALICE, PASSWORD)
        assert s.sendmail(ALICE, rcpts, body, mail_options=list(mail_options),
                          rcpt_options=list(rcpt_options)) == {}


def wait_messages(y, account, n, timeout=30.0):
    return [email.message_from_bytes(y.msg_cat(account, u), policy=email.policy.compat32)
            for u in wait_uids(y, account, n, timeout)]


def report(msg):
    """The text, the per-message fields and the per-recipient blocks."""
    assert msg.get_content_type() == "multipart/report"
    text, status, original = msg.get_payload()
    blocks = status.get_payload()
    return text.get_payload(decode=True).decode(), blocks[0], blocks[1:], original


def test_delivered_report_for_local_mailboxes(youju_with):
    y = make(youju_with)
    submit(y, [BOB, CAROL], b"From: alice@example.test\r\nSubject: did it arrive\r\n\r\nbody\r\n",
           mail_options=["ENVID=trip+2B7", "RET=FULL"],
           rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Bob+40example.test"])
    wait_messages(y, BOB, 1)
    (msg,) = wait_messages(y, ALICE, 1)
    assert msg["Return-Path"] == "<>"
    assert msg["Subject"] == "Successful Mail Delivery Report"
    text, per_msg, rcpts, original = report(msg)
    assert per_msg["Original-Envelope-Id"] == "trip+7"
    # one report for the message, both recipients in it
    assert [r["Final-Recipient"] for r in rcpts] == [f"rfc822; {BOB}", f"rfc822; {CAROL}"]
    assert all(r["Action"] == "delivered" and r["Status"] == "2.0.0" for r in rcpts)
    assert rcpts[0]["Original-Recipient"] == "rfc822;Bob@example.test"
    assert "Remote-MTA" not in rcpts[0]
    assert f"<{BOB}>: delivered" in text
    # a success report returns the header section, whatever RET says
    assert original.get_content_type() == "text/rfc822-headers"
    assert "Subject: did it arrive" in original.get_payload()
    wait_queue(y, "SELECT count(*) FROM queue", ["0"])
    wait_queue(y, "SELECT count(*) FROM queue_messages", ["0"])
    time.sleep(2)
    assert len(y.uids(ALICE)) == 1
    assert f"to=<{BOB}> report=delivered" in y.read_log()


def test_no_report_without_notify_success(youju_with):
    y = make(youju_with)
    submit(y, [BOB], b"Subject: quiet\r\n\r\nx\r\n", rcpt_options=["NOTIFY=FAILURE"])
    submit(y, [CAROL], b"Subject: quiet too\r\n\r\nx\r\n")
    wait_messages(y, CAROL, 1)
    time.sleep(2)
    assert y.uids(ALICE) == []
    assert sql(y, "SELECT count(*) FROM queue") == ["0"]


def test_alias_to_several_is_reported_expanded(youju_with):
    y = make(youju_with)
    submit(y, ["team@example.test"], b"Subject: to the team\r\n\r\nx\r\n",
           rcpt_options=["NOTIFY=SUCCESS"])
    wait_messages(y, BOB, 1)
    wait_messages(y, CAROL, 1)
    (msg,) = wait_messages(y, ALICE, 1)
    text, _, rcpts, _ = report(msg)
    assert len(rcpts) == 1
    assert rcpts[0]["Action"] == "expanded" and rcpts[0]["Status"] == "2.0.0"
    assert rcpts[0]["Final-Recipient"] == "rfc822; team@example.test"
    assert "passes mail on to several others" in text
    time.sleep(2)
    assert len(y.uids(ALICE)) == 1      # no "delivered" for the members on top


def test_expanded_alias_passes_notify_on_without_success(youju_with):
    """The alias's remote target goes out with NOTIFY less SUCCESS (the
    sender heard of success once, "expanded"); a single forward keeps
    NOTIFY whole, for the next hop to report on."""
    y = make(youju_with)
    submit(y, ["far@example.test"], b"Subject: far\r\n\r\nx\r\n",
           rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
    submit(y, ["fwd@example.test"], b"Subject: fwd\r\n\r\nx\r\n",
           rcpt_options=["NOTIFY=SUCCESS", "ORCPT=rfc822;fwd+40example.test"])
    wait_messages(y, ALICE, 1)
    wait_queue(y, "SELECT recipient, notify, orcpt FROM queue WHERE status = 'queued'"
             " ORDER BY recipient",
             ["other@remote.test|SUCCESS|rfc822;fwd+40example.test",
              "someone@remote.test|FAILURE|"])
    (msg,) = wait_messages(y, ALICE, 1)
    _, _, rcpts, _ = report(msg)
    assert [(r["Action"], r["Final-Recipient"]) for r in rcpts] == \
        [("expanded", "rfc822; far@example.test")]


def test_never_to_the_null_sender_and_remote_senders_through_the_queue(youju_with):
    y = make(youju_with)
    with smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=30) as s:
        assert s.sendmail("", [BOB], b"Subject: a bounce\r\n\r\nx\r\n",
                          rcpt_options=["NOTIFY=SUCCESS"]) == {}
        assert s.sendmail("dave@remote.test", [CAROL], b"Subject: from afar\r\n\r\nx\r\n",
                          mail_options=["ENVID=far-1"], rcpt_options=["NOTIFY=SUCCESS"]) == {}
    wait_messages(y, CAROL, 1)
    # the report to dave waits in the queue for remote.test, from <>
    wait_queue(y, "SELECT q.recipient, m.sender FROM queue q JOIN queue_messages m"
             " ON m.id = q.message_id", ["dave@remote.test|"])
    time.sleep(2)
    assert sql(y, "SELECT count(*) FROM queue") == ["1"]
    assert y.uids(ALICE) == []


def test_a_sender_no_report_can_go_to_still_gets_its_mail_delivered(youju_with, smtp_raw):
    y = make(youju_with)
    c = smtp_raw(y.ports["smtp"])
    c.greet()
    assert c.cmd('MAIL FROM:<"john doe"@remote.test>')[0] == 250
    assert c.cmd(f"RCPT TO:<{BOB}> NOTIFY=SUCCESS")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: spaced\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    wait_messages(y, BOB, 1)
    assert "no success report for" in y.read_log()
    assert sql(y, "SELECT count(*) FROM queue") == ["0"]


def test_kill_during_reports_loses_none_and_doubles_none(youju_with):
    y = make(youju_with)
    n = 30
    with smtplib.SMTP("127.0.0.1", y.ports["submission"], timeout=30) as s:
        s.login(ALICE, PASSWORD)
        for i in range(n):
            assert s.sendmail(ALICE, [BOB], f"Subject: k{i}\r\n\r\nx\r\n".encode(),
                              rcpt_options=["NOTIFY=SUCCESS"]) == {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(y.uids(ALICE)) == 0:
        time.sleep(0.05)
    y.kill()
    y.start()
    wait_queue(y, "SELECT count(*) FROM queue", ["0"], timeout=90)
    time.sleep(2)
    subjects = []
    for u in y.uids(ALICE):
        subjects += re.findall(rb"\r\nSubject: (k\d+)\r\n", y.msg_cat(ALICE, u))
    assert sorted(subjects) == sorted(f"k{i}".encode() for i in range(n))
