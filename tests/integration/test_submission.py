"""SMTP submission (ports 587 and 465): the same SMTP server in the
submission role, with AUTH through the SASL server that POP3 uses."""
import base64
import re
import smtplib
import ssl

from conftest import USER, PASSWORD, unverified

ALICE = USER


def b64(text):
    return base64.b64encode(text.encode()).decode()


def plain(user=USER, pw=PASSWORD):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode()).decode()


def test_ehlo_offers_auth_on_submission_only(youju, smtp_raw):
    c = smtp_raw(youju.ports["submission"])
    texts = c.greet()
    assert "AUTH PLAIN LOGIN" in texts
    mx = smtp_raw(youju.ports["smtp"])
    texts = mx.greet()
    assert not any(t.startswith("AUTH") for t in texts)
    assert mx.cmd("AUTH PLAIN " + plain())[0] == 503


def test_mail_needs_a_login(youju, smtp_raw):
    c = smtp_raw(youju.ports["submission"])
    c.greet()
    code, texts = c.cmd("MAIL FROM:<alice@example.test>")
    assert (code, texts[0][:5]) == (530, "5.7.0")
    assert c.cmd("AUTH PLAIN " + plain())[0] == 235
    assert c.cmd("AUTH PLAIN " + plain())[0] == 503
    assert c.cmd("MAIL FROM:<alice@example.test>")[0] == 250


def test_smtplib_login_and_relay(youju):
    with smtplib.SMTP("127.0.0.1", youju.ports["submission"], timeout=30) as s:
        s.login(USER, PASSWORD)
        refused = s.sendmail(ALICE, ["bob@remote.example", ALICE],
                             b"Subject: submitted\r\n\r\nhello\r\n")
        assert refused == {}
    uids = youju.uids(ALICE)
    assert len(uids) == 1
    msg = youju.msg_cat(ALICE, uids[0])
    assert b"with ESMTPA id" in msg
    log = youju.read_log()
    assert "to=<bob@remote.example> status=queued" in log
    assert f"login user={ALICE} method=PLAIN" in log
    assert PASSWORD not in log


def test_login_mechanism_with_exact_challenges(youju, smtp_raw):
    c = smtp_raw(youju.ports["submission"])
    c.greet()
    assert c.cmd("AUTH LOGIN") == (334, ["VXNlcm5hbWU6"])
    assert c.cmd(b64(USER)) == (334, ["UGFzc3dvcmQ6"])
    code, texts = c.cmd(b64(PASSWORD))
    assert (code, texts[0][:5]) == (235, "2.7.0")
    c2 = smtp_raw(youju.ports["submission"])
    c2.greet()
    assert c2.cmd("AUTH LOGIN " + b64(USER)) == (334, ["UGFzc3dvcmQ6"])
    assert c2.cmd(b64(PASSWORD))[0] == 235


def test_auth_errors(youju_with, smtp_raw):
    y = youju_with(auth_failure_delay=0, auth_max_failures=3)
    c = smtp_raw(y.ports["submission"])
    c.greet()
    assert c.cmd("AUTH CRAM-MD5")[0] == 504
    assert c.cmd("AUTH")[0] == 501
    assert c.cmd("AUTH PLAIN") == (334, [""])
    assert c.cmd("*")[0] == 501
    assert c.cmd("AUTH PLAIN ====")[0] == 501
    code, texts = c.cmd("AUTH PLAIN " + plain(pw="wrong"))
    assert (code, texts[0][:5]) == (535, "5.7.8")
    assert c.cmd("AUTH PLAIN =")[0] == 535
    assert c.cmd("AUTH PLAIN " + plain(user="nobody@example.test"))[0] == 535
    assert c.reply()[0] == 421
    assert c.closed()
    lines = [l for l in y.read_log().splitlines()
             if re.search(r" smtp: session=\S+ auth failed user=\S* method=\S+ client=127\.0\.0\.1 ", l)]
    assert len(lines) == 3


def test_no_password_over_cleartext(youju_with, smtp_raw):
    y = youju_with(secure_loopback="no")
    c = smtp_raw(y.ports["submission"])
    texts = c.greet()
    assert not any(t.startswith("AUTH") for t in texts)
    code, texts = c.cmd("AUTH PLAIN " + plain())
    assert (code, texts[0][:6]) == (538, "5.7.11")
    c.starttls()
    code, texts = c.cmd("EHLO client.test")
    assert "AUTH PLAIN LOGIN" in texts
    assert c.cmd("AUTH PLAIN " + plain())[0] == 235


def test_login_is_forgotten_at_starttls(youju, smtp_raw):
    c = smtp_raw(youju.ports["submission"])
    c.greet()
    assert c.cmd("AUTH PLAIN " + plain())[0] == 235
    c.starttls()
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<alice@example.test>")[0] == 530


def test_implicit_tls_submissions(youju):
    with smtplib.SMTP_SSL("127.0.0.1", youju.ports["submissions"], timeout=30,
                          context=unverified()) as s:
        assert isinstance(s.sock, ssl.SSLSocket)
        s.login(USER, PASSWORD)
        s.sendmail(ALICE, [ALICE], b"Subject: over 465\r\n\r\nhello\r\n")
    msg = youju.msg_cat(ALICE, youju.uids(ALICE)[0])
    assert b"with ESMTPSA id" in msg
