"""Hostile-peer probes on sender rules with odd addresses and on quota
at RCPT through aliases and catch-alls."""
import smtplib

from conftest import USER
from test_submission_policy import ALICE, BOB, logged_in, two  # noqa: F401


def mail_from(c, sender):
    code, texts = c.cmd(f"MAIL FROM:<{sender}>")
    if code == 250:
        assert c.cmd("RSET")[0] == 250
    return code, texts


def test_sender_rules_odd_addresses(two, smtp_raw):
    y = two()
    y.cli("domain", "add", "other.test")
    c = logged_in(y, smtp_raw)
    # plus-addressed and quoted forms of others' addresses stay refused
    for s in ["bob+x@example.test", '"bob"@example.test', '"alice@example.test"@other.test',
              "alice@example.test.", "alice@EXAMPLE.TEST.", "bob@", "@example.test",
              "alice@example.test@other.test", "<alice@example.test>",
              "alice%other.test@example.test", "\"bob\\\"\"@example.test",
              "alice@xn--bcher-kva.example", "alice@bücher.example",
              "news@OTHER.TEST", "x@other.test"]:
        code, texts = mail_from(c, s)
        assert code in (501, 553, 555), (s, code, texts)
    # own address in upper case and with +detail
    assert mail_from(c, "ALICE@EXAMPLE.TEST")[0] == 250
    y.cli("account", "senders", ALICE, "add", "@Other.TEST")
    assert mail_from(c, "x@other.test")[0] == 250
    assert mail_from(c, "X@OTHER.TEST")[0] == 250
    assert mail_from(c, "x@other.test.")[0] != 250
    assert mail_from(c, "x@evil.other.test")[0] == 553
    assert mail_from(c, "x@otherxtest")[0] == 553
    r = y.cli("account", "senders", ALICE, "add", "\"q\"@other.test", check=False)
    assert r.returncode in (0, 1)
    r = y.cli("account", "senders", ALICE, "add", "a@bücher.example", check=False)
    assert r.returncode in (0, 1)
    r = y.cli("account", "senders", ALICE, "add", "@", check=False)
    assert r.returncode != 0


def smtp_rcpt(y, rcpt):
    with smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=30) as s:
        s.ehlo("client.example.org")
        s.mail("x@example.org")
        code, text = s.rcpt(rcpt)
        if code == 250:
            s.data(b"Subject: fill\r\n\r\n" + b"z" * 200 + b"\r\n")
        return code, text


def test_quota_through_alias_and_catchall(two):
    y = two()
    y.cli("account", "quota", ALICE, "2k")
    # RCPT refuses once the mailbox is full; fill it with small messages
    for i in range(30):
        if smtp_rcpt(y, ALICE)[0] != 250:
            break
    assert smtp_rcpt(y, ALICE)[0] == 452
    assert smtp_rcpt(y, "sales@example.test")[0] == 452
    # team reaches alice (full) and bob (not): taken for bob
    code, _ = smtp_rcpt(y, "team@example.test")
    assert code in (250, 452)
    y.cli("alias", "add", "@example.test", ALICE)
    assert smtp_rcpt(y, "nobody@example.test")[0] == 452
    assert smtp_rcpt(y, "ALICE@Example.Test")[0] == 452
    assert smtp_rcpt(y, BOB)[0] == 250
