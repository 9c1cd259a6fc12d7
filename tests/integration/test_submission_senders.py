"""Sender rules per account at submission: besides its own address and
aliases that deliver to it alone, an account may send as the addresses
and whole domains `youju account senders` gives it, and as the aliases it
owns (`youju alias owner`); anything else is 553 5.7.1 in MAIL FROM, in
From: and in Sender:. Also the default auth_account_max_failures."""
import re

import pytest

from conftest import USER
from test_submission_policy import (ALICE, BOB, last_message, logged_in, plain,  # noqa: F401
                                    send_raw, two)


def mail_from(c, sender):
    code, texts = c.cmd(f"MAIL FROM:<{sender}>")
    if code == 250:
        assert c.cmd("RSET")[0] == 250
    return code, texts


def test_sender_rules_for_addresses_and_domains(two, smtp_raw):
    y = two()
    y.cli("domain", "add", "other.test")
    c = logged_in(y, smtp_raw)
    assert mail_from(c, "news@other.test")[0] == 553
    y.cli("account", "senders", ALICE, "add", "News@Other.test")
    y.cli("account", "senders", ALICE, "add", "@partner.example")
    assert y.cli("account", "senders", ALICE, "list").stdout.splitlines() == \
        ["@partner.example", "news@other.test"]
    assert mail_from(c, "news@other.test")[0] == 250
    assert mail_from(c, "NEWS@other.test")[0] == 250
    assert mail_from(c, "anyone@partner.example")[0] == 250
    assert mail_from(c, "anyone@sub.partner.example")[0] == 553
    assert mail_from(c, "sales@other.test")[0] == 553
    # the From: header is held to the same rules
    code, texts = send_raw(c, ALICE, BOB, b"From: Partner <x@partner.example>\r\n\r\nhi\r\n")
    assert code == 250, texts
    code, texts = send_raw(c, ALICE, BOB, b"From: x@elsewhere.example\r\n\r\nhi\r\n")
    assert (code, texts[0][:5]) == (553, "5.7.1"), texts
    # the rules are the account's alone
    b = smtp_raw(y.ports["submission"])
    b.greet()
    assert b.cmd("AUTH PLAIN " + plain(BOB, "bob-password-1"))[0] == 235
    assert mail_from(b, "news@other.test")[0] == 553
    # removed: refused again (no restart needed)
    y.cli("account", "senders", ALICE, "remove", "@partner.example")
    assert mail_from(c, "anyone@partner.example")[0] == 553
    assert y.cli("account", "senders", ALICE, "list").stdout == "news@other.test\n"


def test_alias_owners_may_send_as_the_alias(two, smtp_raw):
    y = two()
    c = logged_in(y, smtp_raw)
    # team delivers to alice and bob: nobody's alone
    assert mail_from(c, "team@example.test")[0] == 553
    y.cli("alias", "owner", "team@example.test", ALICE)
    assert mail_from(c, "team@example.test")[0] == 250
    code, texts = send_raw(c, ALICE, BOB, b"From: Team <team@example.test>\r\n\r\nhi\r\n")
    assert code == 250, texts
    assert y.cli("account", "senders", ALICE, "list").stdout == "team@example.test\n"
    # the alias gone, its owners go too: made again, it has none
    y.cli("alias", "del", "team@example.test")
    assert mail_from(c, "team@example.test")[0] == 553
    y.cli("alias", "add", "team@example.test", ALICE, BOB)
    assert mail_from(c, "team@example.test")[0] == 553
    y.cli("alias", "owner", "team@example.test", ALICE)
    assert mail_from(c, "team@example.test")[0] == 250
    y.cli("alias", "disown", "team@example.test", ALICE)
    assert mail_from(c, "team@example.test")[0] == 553


def test_sender_field_is_held_to_the_rules_of_from(two, smtp_raw):
    """RFC 5322 3.6.2: Sender: names who sent the message, so it must be
    an address the login may send as, like From:, or 553 5.7.1."""
    y = two()
    c = logged_in(y, smtp_raw)
    head = b"From: Boss <sales@example.test>\r\nSubject: on behalf\r\n"
    code, texts = send_raw(c, ALICE, BOB, head + b"Sender: Alice <alice@example.test>\r\n\r\nhi\r\n")
    assert code == 250, texts
    assert b"\r\nSender: Alice <alice@example.test>\r\n" in last_message(y, BOB)
    for sender in (b"x@elsewhere.example", b"Bob <bob@example.test>",
                   b"alice@example.test, bob@example.test", b"undisclosed:;"):
        code, texts = send_raw(c, ALICE, BOB, head + b"Sender: " + sender + b"\r\n\r\nhi\r\n")
        assert (code, texts[0][:5]) == (553, "5.7.1"), (sender, texts)
        assert "Sender:" in texts[0], texts
    code, texts = send_raw(c, ALICE, BOB, head + b"Sender: alice@example.test\r\n"
                           b"Sender: alice@example.test\r\n\r\nhi\r\n")
    assert (code, texts[0][:5]) == (553, "5.7.1"), texts
    assert "a Sender: field must be one address" in texts[0]
    # the account's sender rules count here as for From:
    y.cli("account", "senders", ALICE, "add", "@partner.example")
    code, texts = send_raw(c, ALICE, BOB, head + b"Sender: Sec <sec@partner.example>\r\n\r\nhi\r\n")
    assert code == 250, texts
    assert len(y.uids(BOB)) == 2
    assert "header_sender=<x@elsewhere.example> result=rejected" in y.read_log()


def test_sender_check_off_lets_any_sender_field_through(two, smtp_raw):
    y = two(smtpd_sender_login_check="no")
    c = logged_in(y, smtp_raw)
    code, texts = send_raw(c, ALICE, BOB, b"From: alice@example.test\r\n"
                           b"Sender: x@elsewhere.example\r\n\r\nhi\r\n")
    assert code == 250, texts


def test_sender_cli_errors(two):
    y = two()
    r = y.cli("account", "senders", "nobody@example.test", "add", "@x.example", check=False)
    assert r.returncode == 1 and "account nobody@example.test does not exist" in r.stderr
    r = y.cli("account", "senders", ALICE, "add", "no-at-sign", check=False)
    assert r.returncode == 1 and "invalid address" in r.stderr
    r = y.cli("account", "senders", ALICE, "frob", "@x.example", check=False)
    assert r.returncode == 1 and "usage" in r.stderr
    y.cli("account", "senders", ALICE, "add", "@x.example")
    r = y.cli("account", "senders", ALICE, "add", "@X.example", check=False)
    assert r.returncode == 1 and "already" in r.stderr
    r = y.cli("account", "senders", ALICE, "remove", "@y.example", check=False)
    assert r.returncode == 1 and "no sender rule" in r.stderr
    r = y.cli("alias", "owner", "nosuch@example.test", ALICE, check=False)
    assert r.returncode == 1 and "no alias nosuch@example.test" in r.stderr
    r = y.cli("alias", "owner", "team@example.test", "nobody@example.test", check=False)
    assert r.returncode == 1 and "does not exist" in r.stderr
    r = y.cli("alias", "disown", "team@example.test", ALICE, check=False)
    assert r.returncode == 1 and "does not own" in r.stderr


def test_rules_go_with_the_account(two):
    y = two()
    y.cli("account", "senders", BOB, "add", "@x.example")
    y.cli("alias", "owner", "sales@example.test", BOB)
    y.cli("account", "del", BOB)
    y.cli("account", "add", BOB, "--password-stdin", input="bob-password-1\n")
    assert y.cli("account", "senders", BOB, "list").stdout == ""


def test_default_account_failure_limit(youju_with, smtp_raw):
    """Without auth_account_max_failures set, the tenth failure of one
    account ends its session with 421 4.7.0; the right password still
    passes (no lock-out)."""
    y = youju_with(auth_failure_delay=0, auth_penalty_max=0)
    for attempt in range(11):
        c = smtp_raw(y.ports["submission"])
        c.greet()
        code, texts = c.cmd("AUTH PLAIN " + plain(pw="wrong"))
        assert code == 535, texts
        if attempt < 9:
            assert c.cmd("NOOP")[0] == 250
        else:
            assert c.reply()[0] == 421
            assert c.closed()
    c = smtp_raw(y.ports["submission"])
    c.greet()
    assert c.cmd("AUTH PLAIN " + plain())[0] == 235
    assert re.search(rf"auth failed user={USER} method=PLAIN client=127\.0\.0\.1 failures=1 "
                     r"account=11 ", y.read_log())
