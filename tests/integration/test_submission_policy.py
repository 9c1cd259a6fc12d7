"""Submission as an MSA does it: the logged-in account sends only as its
own addresses (MAIL FROM and From:), the message gets Date:, Message-ID:
and From: when missing and loses Bcc:, the size limit holds, and what real
clients send (Outlook's space after "FROM:", iOS's SMTPUTF8 without
8BITMIME, swaks, msmtp, curl) works."""
import base64
import os
import re
import shutil
import smtplib
import subprocess

import pytest

from conftest import USER, PASSWORD

ALICE = USER
BOB = "bob@example.test"
BOB_PW = "bob-password-1"


def plain(user=USER, pw=PASSWORD):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode()).decode()


def logged_in(y, smtp_raw, port="submission"):
    c = smtp_raw(y.ports[port])
    c.greet()
    assert c.cmd("AUTH PLAIN " + plain())[0] == 235
    return c


def send_raw(c, sender, rcpt, message):
    """MAIL, RCPT, DATA; returns the reply to the end of data."""
    assert c.cmd(f"MAIL FROM:<{sender}>")[0] == 250
    assert c.cmd(f"RCPT TO:<{rcpt}>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(message + b".\r\n")
    return c.reply()


def last_message(y, account):
    uids = y.uids(account)
    assert uids, f"nothing delivered to {account}"
    return y.msg_cat(account, uids[-1])


def header_section(msg):
    """The header section, each field with its CRLF."""
    return msg.split(b"\r\n\r\n", 1)[0] + b"\r\n"


@pytest.fixture
def two(youju_with):
    """youjud with alice and bob, and aliases: sales -> alice alone,
    team -> alice and bob."""
    def make(**overrides):
        y = youju_with(accounts=[(BOB, BOB_PW)], **overrides)
        y.cli("alias", "add", "sales@example.test", ALICE)
        y.cli("alias", "add", "team@example.test", ALICE, BOB)
        return y
    return make


def test_forged_mail_from_is_refused(two, smtp_raw):
    y = two()
    c = logged_in(y, smtp_raw)
    code, texts = c.cmd(f"MAIL FROM:<{BOB}>")
    assert (code, texts[0][:5]) == (553, "5.7.1"), texts
    assert "not owned by user" in texts[0]
    code, texts = c.cmd("MAIL FROM:<team@example.test>")
    assert (code, texts[0][:5]) == (553, "5.7.1")
    code, texts = c.cmd("MAIL FROM:<someone@elsewhere.example>")
    assert (code, texts[0][:5]) == (553, "5.7.1")
    # Own address in any case, an alias that delivers to alice alone,
    # and the null sender pass.
    for sender in ("ALICE@Example.test", "sales@example.test", ""):
        assert c.cmd(f"MAIL FROM:<{sender}>")[0] == 250, sender
        assert c.cmd("RSET")[0] == 250
    assert f"user={ALICE} sender=<{BOB}> result=rejected: not owned by user" in y.read_log()


def test_forged_from_header_is_refused(two, smtp_raw):
    y = two()
    c = logged_in(y, smtp_raw)
    code, texts = send_raw(c, ALICE, BOB, b"From: Bob <bob@example.test>\r\nSubject: x\r\n\r\nhi\r\n")
    assert (code, texts[0][:5]) == (553, "5.7.1"), texts
    assert "From: address not owned" in texts[0]
    code, texts = send_raw(c, ALICE, BOB, b"From: alice@example.test, bob@example.test\r\n\r\nhi\r\n")
    assert (code, texts[0][:5]) == (553, "5.7.1"), texts
    code, texts = send_raw(c, ALICE, BOB, b"From: a@example.test\r\nFrom: alice@example.test\r\n\r\nx\r\n")
    assert (code, texts[0][:5]) == (553, "5.7.1"), texts
    assert y.uids(BOB) == []
    code, texts = send_raw(c, ALICE, BOB, b"From: Sales <sales@example.test>\r\n\r\nhi\r\n")
    assert code == 250, texts
    assert len(y.uids(BOB)) == 1


def test_check_can_be_turned_off(two, smtp_raw):
    y = two(smtpd_sender_login_check="no")
    c = logged_in(y, smtp_raw)
    code, texts = send_raw(c, BOB, BOB, b"From: bob@example.test\r\n\r\nhi\r\n")
    assert code == 250, texts


def test_fixups_visible_in_the_delivered_message(two):
    y = two()
    with smtplib.SMTP("127.0.0.1", y.ports["submission"], timeout=30) as s:
        s.login(USER, PASSWORD)
        s.sendmail(ALICE, [BOB, "carol@remote.example"],
                   b"Subject: fix me\r\nBcc: carol@remote.example,\r\n dave@remote.example\r\n"
                   b"\r\nBcc: in the body stays\r\n")
    msg = last_message(y, BOB)
    head = header_section(msg)
    assert b"Bcc:" not in head and b"dave@" not in head
    assert b"\r\n\r\nBcc: in the body stays\r\n" in msg
    assert re.search(rb"\r\nDate: \w{3}, \d+ \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r\n", head)
    assert re.search(rb"\r\nMessage-ID: <[0-9A-Z]+@[^>]+>\r\n", head)
    assert b"\r\nFrom: <alice@example.test>\r\n" in head
    assert b"with ESMTPSA id" in head or b"with ESMTPA id" in head
    assert b"127.0.0.1" in head


def test_fields_a_client_sent_are_kept(two):
    y = two()
    with smtplib.SMTP("127.0.0.1", y.ports["submission"], timeout=30) as s:
        s.login(USER, PASSWORD)
        s.sendmail(ALICE, [BOB], b"From: Alice <alice@example.test>\r\n"
                   b"Date: Sun, 1 Nov 2026 10:00:00 +0000\r\nMessage-ID: <own@example.test>\r\n\r\nx\r\n")
    head = header_section(last_message(y, BOB))
    assert head.count(b"\r\nDate: ") == 1 and b"Date: Sun, 1 Nov 2026" in head
    assert head.count(b"Message-ID: ") == 1 and b"<own@example.test>" in head
    assert head.count(b"\r\nFrom: ") == 1


def test_hide_client(two):
    y = two(submission_hide_client="yes")
    with smtplib.SMTP("127.0.0.1", y.ports["submission"], timeout=30) as s:
        s.ehlo("secret-laptop.example")
        s.login(USER, PASSWORD)
        s.sendmail(ALICE, [BOB], b"From: alice@example.test\r\n\r\nx\r\n")
    head = header_section(last_message(y, BOB))
    received = head.split(b"\r\nFrom:")[0]
    assert b"127.0.0.1" not in received and b"secret-laptop" not in received
    assert re.search(rb"\r\nReceived: by \S+ \(youju\) with ESMTPA id ", head), head


def test_oversize_is_refused(two, smtp_raw):
    y = two(message_size_limit="10k")
    c = logged_in(y, smtp_raw)
    code, texts = send_raw(c, ALICE, BOB, b"From: alice@example.test\r\n\r\n" + b"x" * 76 + b"\r\n" * 1
                           + (b"y" * 78 + b"\r\n") * 200)
    assert (code, texts[0][:5]) == (552, "5.3.4"), texts
    assert y.uids(BOB) == []


def test_no_auth_is_refused(two, smtp_raw):
    y = two()
    c = smtp_raw(y.ports["submission"])
    c.greet()
    code, texts = c.cmd(f"MAIL FROM:<{ALICE}>")
    assert (code, texts[0][:5]) == (530, "5.7.0")


def test_outlook_space_and_ios_smtputf8(two, smtp_raw):
    y = two()
    c = logged_in(y, smtp_raw)
    assert c.cmd(f"MAIL FROM: <{ALICE}>")[0] == 250
    assert c.cmd(f"RCPT TO: <{BOB}>")[0] == 250
    assert c.cmd("RSET")[0] == 250
    # iOS Mail: SMTPUTF8 without BODY=8BITMIME.
    assert c.cmd(f"MAIL FROM:<{ALICE}> SMTPUTF8")[0] == 250
    assert c.cmd(f"RCPT TO:<{BOB}>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("From: alice@example.test\r\nSubject: caf\u00e9\r\n\r\n\u00e9t\u00e9\r\n.\r\n".encode())
    assert c.reply()[0] == 250
    assert "caf\u00e9".encode() in last_message(y, BOB)


def test_swaks(two):
    y = two()
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(y.ports["submission"]),
                        "--tls", "--auth", "PLAIN", "--auth-user", USER, "--auth-password", PASSWORD,
                        "--from", ALICE, "--to", BOB, "--header", "Subject: by swaks",
                        "--body", "hello from swaks"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert b"Subject: by swaks" in last_message(y, BOB)
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(y.ports["submission"]),
                        "--tls", "--auth", "PLAIN", "--auth-user", USER, "--auth-password", PASSWORD,
                        "--from", ALICE, "--to", BOB, "--header", f"From: {BOB}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "553 5.7.1" in r.stdout


@pytest.mark.skipif(shutil.which("msmtp") is None, reason="msmtp not installed (scripts/deps.sh)")
def test_msmtp(two):
    y = two()
    conf = os.path.join(y.base, "msmtprc")
    with open(conf, "w") as f:
        f.write(f"account default\nhost 127.0.0.1\nport {y.ports['submission']}\n"
                f"from {ALICE}\nauth plain\nuser {USER}\npassword {PASSWORD}\n"
                "tls on\ntls_starttls on\ntls_certcheck off\n")
    os.chmod(conf, 0o600)
    r = subprocess.run(["msmtp", "-C", conf, BOB], input=b"Subject: by msmtp\n\nhello\n",
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    msg = last_message(y, BOB)
    assert b"Subject: by msmtp" in msg and b"\r\nMessage-ID: " in msg


def test_curl(two):
    y = two()
    mail = os.path.join(y.base, "curl-mail.txt")
    with open(mail, "wb") as f:
        f.write(b"From: alice@example.test\r\nSubject: by curl\r\n\r\nhello\r\n")
    r = subprocess.run(["curl", "-sS", "--ssl-reqd", "-k", f"smtp://127.0.0.1:{y.ports['submission']}",
                        "--mail-from", ALICE, "--mail-rcpt", BOB, "--user", f"{USER}:{PASSWORD}",
                        "--upload-file", mail], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert b"Subject: by curl" in last_message(y, BOB)


def test_failed_logins_limited_per_account(youju_with, smtp_raw):
    """Wrong passwords for one account from new sessions each time: once
    the account has had auth_account_max_failures, the failure ends the
    session with 421 4.7.0 at once; another account is not affected."""
    y = youju_with(auth_failure_delay=0, auth_max_failures=5, auth_account_max_failures=3)
    for attempt in range(4):
        c = smtp_raw(y.ports["submission"])
        c.greet()
        code, texts = c.cmd("AUTH PLAIN " + plain(pw="wrong"))
        assert code == 535, texts
        if attempt < 2:
            assert c.cmd("NOOP")[0] == 250
        else:
            assert c.reply()[0] == 421
            assert c.closed()
    c = smtp_raw(y.ports["submission"])
    c.greet()
    assert c.cmd("AUTH PLAIN " + plain(user="other@example.test", pw="x"))[0] == 535
    assert c.cmd("NOOP")[0] == 250
    # The right password still works, and clears the count.
    assert c.cmd("AUTH PLAIN " + plain())[0] == 235
    assert re.search(rf"auth failed user={ALICE} method=PLAIN client=127\.0\.0\.1 failures=1 "
                     r"account=4 remembered=\d+", y.read_log())
