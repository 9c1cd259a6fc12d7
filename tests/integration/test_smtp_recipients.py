"""Inbound SMTP (MX role): who may receive. Local accounts, aliases,
catch-alls, plus-addressing, Postmaster, and relay control by mynetworks."""
import re

import pytest

from dnsserver import DnsServer


def assert_code(reply, code, esc=None):
    got, texts = reply
    assert got == code, f"expected {code} {esc or ''}, got {got} {texts}"
    if esc:
        assert texts[0].startswith(esc + " "), f"expected {esc}: {texts}"


def one_message(y, account):
    uids = y.uids(account)
    assert len(uids) == 1, f"{account}: {y.msg_list(account)!r}"
    return y.msg_cat(account, uids[0])


def delivered_to(msg):
    m = re.search(rb"^Delivered-To: <?([^>\r\n]*)>?\r$", msg, re.M)
    assert m, msg[:300]
    return m.group(1).decode().lower()


def send(y, smtp_raw, rcpts, subject="t", sender="bob@example.org", source=None):
    c = smtp_raw(y.ports["smtp"], source=source)
    c.greet()
    reply = c.mail(sender, rcpts, f"Subject: {subject}\r\n\r\nbody {subject}\r\n".encode())
    assert_code(reply, 250, "2.0.0")
    c.cmd("QUIT")


def test_local_account_accepted_and_delivered(youju, smtp_raw):
    send(youju, smtp_raw, ["alice@example.test"], "local")
    msg = one_message(youju, "alice@example.test")
    assert b"Subject: local" in msg
    assert delivered_to(msg) == "alice@example.test"


def test_unknown_local_user(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    assert_code(c.cmd("MAIL FROM:<bob@example.org>"), 250)
    assert_code(c.cmd("RCPT TO:<nobody@example.test>"), 550, "5.1.1")
    assert_code(c.cmd("RCPT TO:<nobody+tag@example.test>"), 550, "5.1.1")
    assert_code(c.cmd("RCPT TO:<alice.x@example.test>"), 550, "5.1.1")
    # nothing valid: no DATA
    code, texts = c.cmd("DATA")
    assert code in (503, 554), texts


def test_relay_denied_outside_mynetworks(youju_with, smtp_raw):
    y = youju_with(mynetworks="192.0.2.0/24")
    c = smtp_raw(y.ports["smtp"])
    c.greet()
    assert_code(c.cmd("MAIL FROM:<bob@example.org>"), 250)
    assert_code(c.cmd("RCPT TO:<carol@example.org>"), 554, "5.7.1")
    assert_code(c.cmd("RCPT TO:<carol@[192.0.2.1]>"), 554, "5.7.1")
    # a subdomain of a local domain is another domain
    assert_code(c.cmd("RCPT TO:<alice@sub.example.test>"), 554, "5.7.1")
    assert_code(c.cmd("RCPT TO:<alice@example.test>"), 250)


def test_relay_refusal_follows_client_address(youju_with, smtp_raw):
    """mynetworks covers 127.0.0.1 only: a peer on 127.0.0.2 is outside."""
    with DnsServer({"example.org": ""}) as dns:
        y = youju_with(mynetworks="127.0.0.1/32", dns_servers=dns.spec)
        outside = smtp_raw(y.ports["smtp"], source="127.0.0.2")
        outside.greet()
        assert_code(outside.cmd("MAIL FROM:<>"), 250)
        assert_code(outside.cmd("RCPT TO:<carol@example.org>"), 554, "5.7.1")
        inside = smtp_raw(y.ports["smtp"])
        inside.greet()
        assert_code(inside.cmd("MAIL FROM:<>"), 250)
        assert_code(inside.cmd("RCPT TO:<carol@example.org>"), 250)
        y.stop()


def test_relay_from_mynetworks_is_queued(youju_with, smtp_raw):
    # DNS goes to a local nsd that knows nothing of example.org, so the
    # queue's delivery attempt stays on this machine.
    with DnsServer({"example.org": ""}) as dns:
        y = youju_with(dns_servers=dns.spec)
        c = smtp_raw(y.ports["smtp"])
        c.greet()
        reply = c.mail("", ["carol@example.org", "alice@example.test"],
                       b"Subject: relay\r\n\r\nrelayed\r\n")
        assert_code(reply, 250, "2.0.0")
        c.cmd("QUIT")
        assert b"Subject: relay" in one_message(y, "alice@example.test")
        y.stop()


def test_plus_addressing(youju, smtp_raw):
    send(youju, smtp_raw, ["alice+lists@example.test"], "plus")
    msg = one_message(youju, "alice@example.test")
    assert b"Subject: plus" in msg
    assert delivered_to(msg) in ("alice@example.test", "alice+lists@example.test")


def test_custom_recipient_delimiter(youju_with, smtp_raw):
    y = youju_with(recipient_delimiter="-")
    c = smtp_raw(y.ports["smtp"])
    c.greet()
    assert_code(c.cmd("MAIL FROM:<bob@example.org>"), 250)
    assert_code(c.cmd("RCPT TO:<alice-news@example.test>"), 250)
    assert_code(c.cmd("RCPT TO:<alice+news@example.test>"), 550, "5.1.1")


def test_address_case_is_ignored(youju, smtp_raw):
    send(youju, smtp_raw, ["ALICE@EXAMPLE.TEST"], "upper")
    send(youju, smtp_raw, ["Alice@Example.Test"], "mixed")
    uids = youju.uids("alice@example.test")
    assert len(uids) == 2


def test_alias_fans_out(youju, smtp_raw):
    youju.add_account("bob@example.test", "secret-bob")
    youju.cli("alias", "add", "sales@example.test", "alice@example.test", "bob@example.test")
    send(youju, smtp_raw, ["sales@example.test"], "sales")
    a = one_message(youju, "alice@example.test")
    b = one_message(youju, "bob@example.test")
    assert b"Subject: sales" in a and b"Subject: sales" in b
    assert delivered_to(a) == "alice@example.test"
    assert delivered_to(b) == "bob@example.test"


def test_alias_case_and_plus(youju, smtp_raw):
    youju.cli("alias", "add", "sales@example.test", "alice@example.test")
    send(youju, smtp_raw, ["SALES@Example.TEST"], "upper-alias")
    send(youju, smtp_raw, ["sales+q3@example.test"], "plus-alias")
    assert len(youju.uids("alice@example.test")) == 2


def test_catch_all(youju, smtp_raw):
    youju.add_account("bob@example.test", "secret-bob")
    youju.cli("alias", "add", "@example.test", "alice@example.test")
    send(youju, smtp_raw, ["whoever@example.test"], "catchall")
    send(youju, smtp_raw, ["bob@example.test"], "forbob")
    a = one_message(youju, "alice@example.test")
    assert b"Subject: catchall" in a
    b = one_message(youju, "bob@example.test")
    assert b"Subject: forbob" in b


def test_postmaster_without_domain(youju, smtp_raw):
    # init may have made postmaster already; if not, make it alice's
    made = youju.cli("alias", "add", "postmaster@example.test", "alice@example.test",
                     check=False).returncode == 0
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    assert_code(c.cmd("MAIL FROM:<bob@example.org>"), 250)
    assert_code(c.cmd("RCPT TO:<postmaster>"), 250)
    assert_code(c.cmd("RSET"), 250)
    reply = c.mail("bob@example.org", ["Postmaster"], b"Subject: pm\r\n\r\nhi\r\n")
    assert_code(reply, 250)
    if made:
        assert b"Subject: pm" in one_message(youju, "alice@example.test")


def test_postmaster_at_domain(youju, smtp_raw):
    youju.cli("alias", "add", "postmaster@example.test", "alice@example.test", check=False)
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    assert_code(c.cmd("MAIL FROM:<>"), 250)
    assert_code(c.cmd("RCPT TO:<POSTMASTER@example.test>"), 250)


def test_null_sender_accepted(youju, smtp_raw):
    send(youju, smtp_raw, ["alice@example.test"], "bounce", sender="")
    msg = one_message(youju, "alice@example.test")
    assert msg.startswith(b"Return-Path: <>\r\n")


def test_smtputf8(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    code, texts = c.cmd("MAIL FROM:<j\u00f6rg@b\u00fccher.example>")
    assert 500 <= code < 600, "UTF-8 address accepted without SMTPUTF8"
    wire = "Subject: gr\u00fc\u00dfe\r\nFrom: j\u00f6rg@b\u00fccher.example\r\n\r\nhall\u00f6\r\n"
    reply = c.mail("j\u00f6rg@b\u00fccher.example", ["alice@example.test"],
                   wire.encode(), params=" SMTPUTF8 BODY=8BITMIME")
    assert_code(reply, 250)
    msg = one_message(youju, "alice@example.test")
    assert msg.startswith("Return-Path: <j\u00f6rg@b\u00fccher.example>\r\n".encode())
    assert msg.endswith(wire.encode())


@pytest.mark.parametrize("rcpt", ["alice@EXAMPLE.test", "alice+a+b@example.test"])
def test_more_spellings_of_alice(youju, smtp_raw, rcpt):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    assert_code(c.cmd("MAIL FROM:<>"), 250)
    assert_code(c.cmd(f"RCPT TO:<{rcpt}>"), 250)
