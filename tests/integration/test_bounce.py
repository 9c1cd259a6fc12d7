"""Bounces, delay notices and "relayed" reports that reach the sender:
A (127.0.0.2) sends to B (127.0.0.3), found by MX records of a real nsd
(queuenet.py); the notices come back to alice's INBOX at A as RFC 3464
multipart/report messages that Python's email package reads."""
import email
import email.policy
import re
import smtplib
import time

import dkim

from queuenet import (BOB, SENDER, SENDER_PW, FakeMx, net, sender_a,  # noqa: F401
                      submit, wait_queue, wait_uids)
from test_smtp_roles import sql


def notices(a, n, timeout=30.0):
    """alice's first n messages at A, parsed, once she has n."""
    uids = wait_uids(a, SENDER, n, timeout=timeout)
    return [email.message_from_bytes(a.msg_cat(SENDER, u), policy=email.policy.compat32)
            for u in uids[:n]]


def report_parts(msg):
    """The three parts of a multipart/report and the per-recipient
    fields of its delivery-status (the first recipient's)."""
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    text, status, original = msg.get_payload()
    assert text.get_content_type() == "text/plain"
    assert status.get_content_type() == "message/delivery-status"
    blocks = status.get_payload()
    return text.get_payload(decode=True).decode(), blocks[0], blocks[1:], original


def test_unknown_user_comes_back_explained(net):
    net("b", "127.0.0.3", [(BOB, "pw-bob")])
    a = sender_a(net)
    rec = a.cli("dkim", "keygen", "a.test", "--selector", "s1").stdout
    submit(a, ["nobody@b.test"], b"From: alice@a.test\r\nSubject: lost one\r\n\r\nthe body\r\n",
           mail_options=["ENVID=trip-1"], rcpt_options=["ORCPT=rfc822;nobody@b.test"])
    raw = a.msg_cat(SENDER, wait_uids(a, SENDER, 1)[0])
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert msg["Return-Path"] == "<>"
    assert msg["From"] == "Mail Delivery System <MAILER-DAEMON@mx.a.test>"
    assert msg["To"] == "<alice@a.test>"
    assert msg["Auto-Submitted"] == "auto-replied"
    text, per_msg, rcpts, original = report_parts(msg)
    assert "<nobody@b.test>: failed (5.1.1)" in text
    assert "The server mx.b.test said:" in text
    assert "does not exist on the receiving server" in text     # unknown user, in words
    assert per_msg["Reporting-MTA"] == "dns; mx.a.test"
    assert per_msg["Original-Envelope-Id"] == "trip-1"
    assert len(rcpts) == 1
    r = rcpts[0]
    assert r["Action"] == "failed" and r["Status"] == "5.1.1"
    assert r["Final-Recipient"] == "rfc822; nobody@b.test"
    assert r["Original-Recipient"] == "rfc822;nobody@b.test"
    assert r["Remote-MTA"] == "dns; mx.b.test"
    assert r["Diagnostic-Code"].startswith("smtp; 550 5.1.1 <nobody@b.test>")
    # RET not given: the whole message comes back
    assert original.get_content_type() == "message/rfc822"
    assert b"Subject: lost one" in raw and b"the body" in raw
    # signed as mail of a.test, and the signature verifies
    key = "".join(re.findall(r'"([^"]*)"', rec))
    body = raw.split(b"\r\n", 2)[2]     # after Return-Path: and Delivered-To:
    assert b"d=a.test" in body and b"s=s1" in body
    assert dkim.DKIM(body).verify(dnsfunc=lambda name, timeout=5: key.encode())
    # the row stays failed (for youju queue) and reported
    wait_queue(a, "SELECT status, notified FROM queue", ["failed|1"])
    time.sleep(2)
    assert len(a.uids(SENDER)) == 1


def test_one_bounce_lists_every_failed_recipient(net):
    b = net("b", "127.0.0.3", [(BOB, "pw-bob")])
    a = sender_a(net)
    submit(a, ["nobody@b.test", "noone@b.test", BOB], b"Subject: three\r\n\r\nx\r\n")
    wait_uids(b, BOB, 1)
    (msg,) = notices(a, 1)
    _, _, rcpts, _ = report_parts(msg)
    assert sorted(r["Final-Recipient"] for r in rcpts) == ["rfc822; nobody@b.test",
                                                          "rfc822; noone@b.test"]
    time.sleep(2)
    assert len(a.uids(SENDER)) == 1


def test_ret_hdrs_returns_the_header_only(net):
    net("b", "127.0.0.3", [(BOB, "pw-bob")])
    a = sender_a(net)
    submit(a, ["nobody@b.test"], b"Subject: headers only\r\n\r\nsecret body\r\n",
           mail_options=["RET=HDRS"])
    (msg,) = notices(a, 1)
    _, _, _, original = report_parts(msg)
    assert original.get_content_type() == "text/rfc822-headers"
    raw = a.msg_cat(SENDER, a.uids(SENDER)[0])
    assert b"Subject: headers only" in raw and b"secret body" not in raw


def test_notify_never_sends_nothing(net):
    net("b", "127.0.0.3", [(BOB, "pw-bob")])
    a = sender_a(net)
    submit(a, ["nobody@b.test"], b"Subject: never\r\n\r\nx\r\n", rcpt_options=["NOTIFY=NEVER"])
    wait_queue(a, "SELECT status, notified FROM queue", ["failed|1"])
    assert "no notice for 1 recipients (NOTIFY)" in a.read_log()
    time.sleep(2)
    assert a.uids(SENDER) == []


def test_null_mx_bounces_at_once(net):
    a = sender_a(net)
    started = time.monotonic()
    submit(a, ["who@null.test"], b"Subject: null mx\r\n\r\nx\r\n")
    (msg,) = notices(a, 1)
    assert time.monotonic() - started < 15
    text, _, rcpts, _ = report_parts(msg)
    assert rcpts[0]["Action"] == "failed" and rcpts[0]["Status"] == "5.1.10"
    assert "<who@null.test>: failed" in text
    assert sql(a, "SELECT attempts FROM queue") == ["1"]


def test_delay_notice_then_the_message_still_arrives(net):
    b = net("b", "127.0.0.3", [(BOB, "pw-bob")])
    b.stop()
    a = sender_a(net, delay_warning_time="2s")
    submit(a, [BOB], b"Subject: slow\r\n\r\nwaits\r\n")
    (msg,) = notices(a, 1)
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    text, _, rcpts, _ = report_parts(msg)
    assert rcpts[0]["Action"] == "delayed" and rcpts[0]["Status"].startswith("4.")
    assert rcpts[0]["Will-Retry-Until"]
    assert "keeps trying" in text
    wait_queue(a, "SELECT warned FROM queue_messages", ["1"])
    b.start()
    wait_uids(b, BOB, 1)
    wait_queue(a, "SELECT count(*) FROM queue", ["0"])
    time.sleep(2)
    assert len(a.uids(SENDER)) == 1     # one delay notice, nothing more


def test_notify_delay_not_asked_for_gives_no_delay_notice(net):
    b = net("b", "127.0.0.3", [(BOB, "pw-bob")])
    b.stop()
    a = sender_a(net, delay_warning_time="1s")
    submit(a, [BOB], b"Subject: quiet\r\n\r\nx\r\n", rcpt_options=["NOTIFY=FAILURE"])
    wait_queue(a, "SELECT warned FROM queue_messages", ["1"])
    time.sleep(1)
    assert a.uids(SENDER) == []


def test_notify_success_to_a_server_without_dsn_is_reported_relayed(net):
    a = sender_a(net)
    fake = FakeMx(int(a.overrides["smtp_port"]))
    try:
        submit(a, [BOB], b"Subject: tell me\r\n\r\nx\r\n",
               rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
        (msg,) = notices(a, 1)
    finally:
        fake.close()
    _, _, rcpts, _ = report_parts(msg)
    assert rcpts[0]["Action"] == "relayed" and rcpts[0]["Status"].startswith("2.")
    assert b"NOTIFY" not in fake.data
    wait_queue(a, "SELECT count(*) FROM queue", ["0"])


def test_notify_success_to_a_server_with_dsn_is_left_to_it(net):
    a = sender_a(net)
    fake = FakeMx(int(a.overrides["smtp_port"]), extensions=["DSN"])
    try:
        submit(a, [BOB], b"Subject: it tells\r\n\r\nx\r\n", rcpt_options=["NOTIFY=SUCCESS"])
        wait_queue(a, "SELECT count(*) FROM queue", ["0"])
    finally:
        fake.close()
    assert b"NOTIFY=SUCCESS" in fake.data
    time.sleep(2)
    assert a.uids(SENDER) == []


def test_kill_during_bounces_loses_none_and_doubles_none(net):
    net("b", "127.0.0.3", [(BOB, "pw-bob")])
    a = sender_a(net)
    n = 40
    with smtplib.SMTP("127.0.0.1", a.ports["submission"], timeout=30) as s:
        s.login(SENDER, SENDER_PW)
        for i in range(n):
            assert s.sendmail(SENDER, ["nobody@b.test"],
                              f"Subject: k{i}\r\n\r\nx\r\n".encode()) == {}
    # kill while the failures are recorded and their bounces made
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(a.uids(SENDER)) == 0:
        time.sleep(0.05)
    a.kill()
    a.start()
    wait_queue(a, "SELECT count(*) FROM queue WHERE notified = 1", [str(n)], timeout=90)
    time.sleep(2)
    subjects = []
    for u in a.uids(SENDER):
        raw = a.msg_cat(SENDER, u)
        subjects += re.findall(rb"\r\nSubject: (k\d+)\r\n", raw)
    assert sorted(subjects) == sorted(f"k{i}".encode() for i in range(n))


def test_queue_bounce_command_bounces_now(net):
    b = net("b", "127.0.0.3", [(BOB, "pw-bob")])
    b.stop()
    a = sender_a(net, minimal_backoff_time="1h", maximal_backoff_time="1h")
    submit(a, [BOB], b"Subject: give up\r\n\r\nx\r\n")
    wait_queue(a, "SELECT count(*) FROM queue WHERE attempts = 1", ["1"])
    qid = a.cli("queue", "list").stdout.split()[0]
    a.cli("queue", "bounce", qid)
    # made by the command itself, not at the runner's next look
    assert len(a.uids(SENDER)) == 1
    (msg,) = notices(a, 1)
    text, _, rcpts, _ = report_parts(msg)
    assert rcpts[0]["Action"] == "failed"
    assert "returned by the administrator" in rcpts[0]["Diagnostic-Code"]
    assert sql(a, "SELECT status, notified FROM queue") == ["failed|1"]


def test_bounce_to_a_remote_sender_goes_through_the_queue(net):
    """B's user sends through B to an unknown user at A; A refuses at
    RCPT, so B bounces to its own user... and a bounce A itself owes a
    sender at B (an alias target without an account) reaches B."""
    b = net("b", "127.0.0.3", [(BOB, "pw-bob")])
    a = sender_a(net)
    a.cli("alias", "add", "team@a.test", SENDER)
    a.cli("alias", "add", "team@a.test", "gone@a.test")
    with smtplib.SMTP("127.0.0.2", int(a.overrides["smtp_port"]), timeout=30) as s:
        assert s.sendmail(BOB, ["team@a.test"], b"Subject: to the team\r\n\r\nx\r\n") == {}
    wait_uids(a, SENDER, 1)
    uids = wait_uids(b, BOB, 1)
    msg = email.message_from_bytes(b.msg_cat(BOB, uids[0]), policy=email.policy.compat32)
    text, _, rcpts, _ = report_parts(msg)
    assert msg["Return-Path"] == "<>"
    assert [r["Final-Recipient"] for r in rcpts] == ["rfc822; gone@a.test"]
    assert rcpts[0]["Action"] == "failed" and rcpts[0]["Status"] == "5.1.1"
    assert "does not exist" in text


def test_a_retried_failure_that_fails_again_bounces_again(net):
    net("b", "127.0.0.3", [(BOB, "pw-bob")])
    a = sender_a(net)
    submit(a, ["nobody@b.test"], b"Subject: twice\r\n\r\nx\r\n")
    notices(a, 1)
    wait_queue(a, "SELECT status, notified FROM queue", ["failed|1"])
    qid = a.cli("queue", "list").stdout.split()[0]
    a.cli("queue", "retry", qid)
    notices(a, 2)
    wait_queue(a, "SELECT status, notified, attempts FROM queue", ["failed|1|2"])
