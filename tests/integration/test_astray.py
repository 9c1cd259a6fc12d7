"""Mail that goes to the wrong place, or vanishes, or lies: recipients
resolved to the right account, every alias member delivered, IDN domains,
Received: that stays a valid field, headers a client must not set,
canonical stored messages whose POP3 sizes are true, and log lines that
cannot be forged."""
import base64
import re
import socket
import time

import pytest

from conftest import Pop3Raw, SmtpRaw, wait_port, USER, PASSWORD

ALICE = "alice@example.test"


def assert_code(reply, code, esc=None):
    got, texts = reply
    assert got == code, f"expected {code} {esc or ''}, got {got} {texts}"
    if esc:
        assert texts[0].startswith(esc + " "), f"expected {esc}: {texts}"


def stored(y, account=ALICE, count=1):
    uids = y.uids(account)
    assert len(uids) == count, f"{account}: {y.msg_list(account)!r}"
    return [y.msg_cat(account, u) for u in uids]


def session(y, smtp_raw, helo="client.test", verb="EHLO"):
    c = smtp_raw(y.ports["smtp"])
    c.greet(helo, verb)
    return c


def send(y, smtp_raw, rcpts, subject="t", sender="bob@example.org", params=""):
    c = session(y, smtp_raw)
    reply = c.mail(sender, rcpts, f"Subject: {subject}\r\n\r\nbody {subject}\r\n".encode(),
                   params=params)
    assert_code(reply, 250, "2.0.0")
    c.cmd("QUIT")


def bdat(c, chunks):
    """Sends a BDAT message in chunks (the last with LAST); returns the
    reply to the last chunk."""
    for i, chunk in enumerate(chunks):
        last = " LAST" if i == len(chunks) - 1 else ""
        c.send(f"BDAT {len(chunk)}{last}\r\n".encode() + chunk)
        reply = c.reply()
        if last:
            return reply
        assert_code(reply, 250)


def wait_log(y, pattern, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(pattern, y.read_log()):
            return y.read_log()
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} in the log:\n{y.read_log()[-3000:]}")


# --- 1. the full address before its extension ---

def test_account_with_extension_is_its_own(youju, smtp_raw):
    youju.add_account("bob@example.test", "secret-bob")
    youju.add_account("bob+x@example.test", "secret-bobx")
    send(youju, smtp_raw, ["bob+x@example.test"], "for-bobx")
    send(youju, smtp_raw, ["bob+y@example.test"], "for-bob")
    (bx,) = stored(youju, "bob+x@example.test")
    (b,) = stored(youju, "bob@example.test")
    assert b"Subject: for-bobx" in bx
    assert b"Subject: for-bob\r\n" in b


def test_delimiter_in_a_real_name(youju_with, smtp_raw):
    y = youju_with(recipient_delimiter="-")
    y.add_account("mary@example.test", "secret-mary")
    y.add_account("mary-ann@example.test", "secret-ann")
    send(y, smtp_raw, ["mary-ann@example.test"], "ann")
    send(y, smtp_raw, ["mary-news@example.test"], "mary")
    assert b"Subject: ann" in stored(y, "mary-ann@example.test")[0]
    assert b"Subject: mary" in stored(y, "mary@example.test")[0]


# --- 2. every alias member, or a refusal ---

def test_alias_with_70_members_delivers_to_all(youju, smtp_raw):
    members = [f"m{i}@example.test" for i in range(70)]
    for m in members:
        youju.add_account(m, "secret-" + m)
    youju.cli("alias", "add", "all@example.test", *members)
    send(youju, smtp_raw, ["all@example.test"], "everyone")
    for m in members:
        (msg,) = stored(youju, m)
        assert b"Subject: everyone" in msg


def test_alias_over_the_limit_is_refused(youju_with, smtp_raw):
    y = youju_with(virtual_alias_expansion_limit="5")
    members = [f"m{i}@example.test" for i in range(6)]
    for m in members:
        y.add_account(m, "secret-" + m)
    y.cli("alias", "add", "six@example.test", *members)
    y.cli("alias", "add", "five@example.test", *members[:5])
    c = session(y, smtp_raw)
    assert_code(c.cmd("MAIL FROM:<bob@example.org>"), 250)
    assert_code(c.cmd("RCPT TO:<six@example.test>"), 451, "4.6.0")
    assert_code(c.cmd("RCPT TO:<five@example.test>"), 250)
    wait_log(y, r"warning: resolve: rcpt=<six@example\.test> unreasonable alias expansion")


# --- 3. IDN domains ---

def test_idn_domain_matches_its_a_label(youju, smtp_raw):
    youju.cli("domain", "add", "ex\u00e4mple.test")
    youju.add_account("carol@ex\u00e4mple.test", "secret-carol")
    c = session(youju, smtp_raw)
    reply = c.mail("bob@example.org", ["carol@ex\u00e4mple.test", "carol@EXA\u0308MPLE.test"],
                   b"Subject: idn\r\n\r\nx\r\n", params=" SMTPUTF8")
    assert_code(reply, 250)
    (msg,) = stored(youju, "carol@xn--exmple-cua.test")
    assert b"Subject: idn" in msg
    # nothing went to the relay queue: the domain is ours
    assert "status=queued" not in youju.read_log()


def test_idn_domain_from_outside_mynetworks(youju_with, smtp_raw):
    y = youju_with(mynetworks="192.0.2.0/24")
    y.cli("domain", "add", "ex\u00e4mple.test")
    y.add_account("carol@ex\u00e4mple.test", "secret-carol")
    c = session(y, smtp_raw)
    assert_code(c.cmd("MAIL FROM:<bob@example.org> SMTPUTF8"), 250)
    assert_code(c.cmd("RCPT TO:<carol@ex\u00e4mple.test>"), 250)
    assert_code(c.cmd("RCPT TO:<nobody@ex\u00e4mple.test>"), 550, "5.1.1")
    assert_code(c.cmd("RCPT TO:<carol@xn--exmple-cua.test>"), 250)


def test_invalid_idn_domain_refused(youju, smtp_raw):
    c = session(youju, smtp_raw)
    assert_code(c.cmd("MAIL FROM:<bob@example.org> SMTPUTF8"), 250)
    assert_code(c.cmd("RCPT TO:<x@\u2603.test>"), 553, "5.1.3")


# --- 4. Received: ---

def received(msg):
    m = re.search(rb"^(Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)", msg, re.M)
    assert m, msg[:400]
    return m.group(1)


@pytest.mark.parametrize("helo, shown", [
    ("(comment", b"?comment"),
    ('a;b"c\\d<e>f:g@h)', b"a?b?c?d?e?f?g?h?"),
    ("[1.2.3", b"?1.2.3"),
    ("[192.0.2.7]", b"[192.0.2.7]"),
    ("[IPv6:2001:db8::7]", b"[IPv6:2001:db8::7]"),
])
def test_helo_neutered_in_received(youju, smtp_raw, helo, shown):
    c = session(youju, smtp_raw, helo)
    assert_code(c.mail("bob@example.org", [ALICE], b"Subject: h\r\n\r\nx\r\n"), 250)
    rcvd = received(stored(youju)[0])
    assert rcvd.startswith(b"Received: from " + shown + b" (unknown [127.0.0.1])\r\n"), rcvd
    # one comment, closed, before "by"
    assert re.fullmatch(rb"Received: from [^\s()<>\";@\\]+ \([^()]*\)\r\n\tby .*", rcvd, re.S), rcvd


def test_ipv6_client_in_received(youju_factory):
    y = youju_factory()
    y.init()
    y.add_account(USER, PASSWORD)
    y.start(wait=(), smtp_listen=f"[::1]:{y.ports['smtp']}")
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("::1", y.ports["smtp"]), timeout=0.5).close()
            break
        except OSError:
            assert time.monotonic() < deadline, y.read_log()
            time.sleep(0.05)
    c = SmtpRaw(y.ports["smtp"], host="::1")
    try:
        c.greet()
        assert_code(c.mail("bob@example.org", [ALICE], b"Subject: v6\r\n\r\nx\r\n"), 250)
    finally:
        c.close()
    rcvd = received(stored(y)[0])
    assert rcvd.startswith(b"Received: from client.test (unknown [IPv6:::1])\r\n"), rcvd


# --- 5. Return-Path: and Delivered-To: ---

def test_client_return_path_removed(youju, smtp_raw):
    c = session(youju, smtp_raw)
    wire = (b"Return-Path: <evil@attacker.example>\r\nSubject: rp\r\n"
            b"return-path:\r\n <folded@attacker.example>\r\n\tmore\r\n"
            b"X-Other: 1\r\n\r\nReturn-Path: in the body stays\r\n")
    assert_code(c.mail("bob@example.org", [ALICE], wire), 250)
    (msg,) = stored(youju)
    assert msg.startswith(b"Return-Path: <bob@example.org>\r\n")
    assert b"attacker" not in msg
    assert msg.lower().count(b"return-path:") == 2
    assert msg.endswith(b"Subject: rp\r\nX-Other: 1\r\n\r\nReturn-Path: in the body stays\r\n")


def test_client_return_path_removed_bdat_split(youju, smtp_raw):
    c = session(youju, smtp_raw)
    assert_code(c.cmd("MAIL FROM:<bob@example.org>"), 250)
    assert_code(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
    msg = b"Subject: b\r\nReturn-Path: <evil@attacker.example>\r\n\r\nbody\r\n"
    assert_code(bdat(c, [msg[:16], msg[16:20], msg[20:]]), 250)
    (stored_msg,) = stored(youju)
    assert b"attacker" not in stored_msg
    assert stored_msg.endswith(b"Subject: b\r\n\r\nbody\r\n")


def test_delivered_to_loop_refused(youju, smtp_raw):
    youju.add_account("bob@example.test", "secret-bob")
    c = session(youju, smtp_raw)
    wire = b"Delivered-To: Alice@Example.Test\r\nSubject: loop\r\n\r\nx\r\n"
    code, texts = c.mail("bob@example.org", ["bob@example.test", ALICE], wire)
    assert code == 554 and texts[0].startswith("5.4.6 "), (code, texts)
    assert "mail forwarding loop for <alice@example.test>" in texts[0]
    assert youju.uids(ALICE) == [] and youju.uids("bob@example.test") == []
    # BDAT, the field folded and split over chunks
    assert_code(c.cmd("MAIL FROM:<bob@example.org>"), 250)
    assert_code(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
    msg = b"Subject: l\r\ndelivered-to:\r\n <alice@example.test>\r\n\r\nx\r\n"
    reply = bdat(c, [msg[:15], msg[15:30], msg[30:]])
    assert_code(reply, 554, "5.4.6")
    assert youju.uids(ALICE) == []
    # someone else's Delivered-To: is no loop
    wire = b"Delivered-To: carol@example.org\r\nSubject: fine\r\n\r\nx\r\n"
    assert_code(c.mail("bob@example.org", [ALICE], wire), 250)
    (got,) = stored(youju)
    assert b"Delivered-To: carol@example.org\r\n" in got


def test_delivered_to_through_alias_is_a_loop(youju, smtp_raw):
    youju.cli("alias", "add", "sales@example.test", ALICE)
    c = session(youju, smtp_raw)
    code, texts = c.mail("bob@example.org", ["sales@example.test"],
                         b"Delivered-To: alice@example.test\r\n\r\nx\r\n")
    assert code == 554, (code, texts)
    assert youju.uids(ALICE) == []


# --- 6. canonical messages, true POP3 sizes ---

def pop3_list_retr(y, n=1):
    p = Pop3Raw(y.ports["pop3"])
    try:
        p.login()
        listed = p.cmd(f"LIST {n}")
        assert listed.startswith(b"+OK "), listed
        first = p.cmd(f"RETR {n}")
        assert first.startswith(b"+OK"), first
        body = p.multiline()
        p.cmd("QUIT")
    finally:
        p.close()
    return int(listed.split()[2]), body


def test_bdat_without_final_crlf(youju, smtp_raw):
    c = session(youju, smtp_raw)
    assert_code(c.cmd("MAIL FROM:<bob@example.org>"), 250)
    assert_code(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
    assert_code(bdat(c, [b"Subject: nocrlf\r\n\r\nlast line without end"]), 250)
    (msg,) = stored(youju)
    assert msg.endswith(b"\r\n\r\nlast line without end\r\n")
    size, body = pop3_list_retr(youju)
    assert size == len(body) == len(msg)


def test_bare_cr_stored_as_crlf(youju, smtp_raw):
    c = session(youju, smtp_raw)
    assert_code(c.mail("bob@example.org", [ALICE], b"Subject: cr\r\n\r\na\rb\r\rc\r\n"), 250)
    assert_code(c.cmd("MAIL FROM:<bob@example.org>"), 250)
    assert_code(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
    assert_code(bdat(c, [b"Subject: cr2\r\n\r\nx\r", b"y\r", b"\nz\r"]), 250)
    one, two = stored(youju, count=2)
    assert one.endswith(b"Subject: cr\r\n\r\na\r\nb\r\n\r\nc\r\n")
    assert two.endswith(b"Subject: cr2\r\n\r\nx\r\ny\r\nz\r\n")
    for msg in (one, two):
        assert re.search(rb"\r(?!\n)|(?<!\r)\n", msg) is None
    for n, msg in ((1, one), (2, two)):
        size, body = pop3_list_retr(youju, n)
        assert size == len(body) == len(msg)


# --- 7. log lines and control characters ---

def test_quoted_local_part_cannot_forge_log_fields(youju, smtp_raw):
    sender = '"x> size=1 result=accepted client=10.9.9.9 id=FAKE"@evil.example'
    c = session(youju, smtp_raw)
    assert_code(c.mail(sender, [ALICE], b"Subject: forge\r\n\r\nx\r\n"), 250)
    c.cmd("QUIT")
    log = wait_log(youju, r"result=accepted")
    assert "id=FAKE" not in log and "client=10.9.9.9" not in log
    lines = [l for l in log.splitlines() if "result=accepted" in l]
    assert len(lines) == 1, lines
    assert re.search(r" from=<\\x22x>\\x20size\\x3D1\\x20.*@evil\.example> size=\d+ ",
                     lines[0]), lines[0]


def test_pop3_user_name_cannot_forge_log_fields(youju):
    p = Pop3Raw(youju.ports["pop3"])
    try:
        assert p.line().startswith(b"+OK")
        creds = base64.b64encode(b"\0x method=PASS client=10.9.9.9 failures=0\0wrong")
        assert p.cmd("AUTH PLAIN " + creds.decode()).startswith(b"-ERR")
    finally:
        p.close()
    log = wait_log(youju, r"auth failed user=")
    assert "client=10.9.9.9" not in log
    assert "user=x\\x20method\\x3DPASS" in log


@pytest.mark.parametrize("char", ["\u0085", "\u009b", "\u202e", "\u2066", "\u200f", "\u061c"])
def test_controls_refused_in_addresses_and_helo(youju, smtp_raw, char):
    c = session(youju, smtp_raw)
    code, texts = c.cmd(f"MAIL FROM:<a{char}b@example.org> SMTPUTF8")
    assert code in (501, 553) and texts[0].startswith("5.1.7 "), (code, texts)
    code, texts = c.cmd(f'MAIL FROM:<"q{char} x"@example.org> SMTPUTF8')
    assert code in (501, 553), (code, texts)
    assert_code(c.cmd("MAIL FROM:<bob@example.org> SMTPUTF8"), 250)
    code, texts = c.cmd(f"RCPT TO:<alice{char}@example.test>")
    assert code in (501, 553) and texts[0].startswith("5.1.3 "), (code, texts)
    code, texts = c.cmd(f"RCPT TO:<alice@exa{char}mple.test>")
    assert code in (501, 553), (code, texts)
    code, texts = c.cmd(f"EHLO mx{char}.example")
    assert code == 501, (code, texts)
    assert char.encode() not in youju.read_log().encode()
