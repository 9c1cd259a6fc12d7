"""Regression tests from a security review of the network-facing code of
youjud (SMTP server, POP3 server, connections, listeners, shutdown): each
pins down a bug that was found and fixed, or behaviour the review
checked and found right where no other test covers it.
"""
import signal
import socket
import time


from conftest import USER, PASSWORD, Pop3Raw


# --- helpers ---

def stored_messages(y, account=USER):
    return [y.msg_cat(account, uid) for uid in y.uids(account)]


def wait_gone(proc, timeout):
    """Seconds until proc exits, or None if it is still running."""
    start = time.monotonic()
    try:
        proc.wait(timeout=timeout)
    except Exception:
        return None
    return time.monotonic() - start


# --- SMTP envelope state ---

def test_failed_mail_does_not_leave_its_sender_behind(youju, smtp_raw):
    """smtp_server.c smtp_cmd_mail(): a MAIL whose path parses but does not
    fit STORE_ADDRESS_MAX when rendered leaves the rendered prefix in
    tx->sender; a following MAIL FROM:<> keeps it, and the bounce is
    stored (and would be queued) with a made-up, non-null sender."""
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    local = '"' + "a " * 32 + '"'                 # 64 octets, needs quotes
    domain = ".".join(["b" * 63] * 3 + ["c" * 62])  # 254 octets
    code, _ = c.cmd(f"MAIL FROM:<{local}@{domain}>")
    assert code == 501
    code, texts = c.mail("", ["alice@example.test"], b"Subject: bounce\r\n\r\nx\r\n")
    assert code == 250, texts
    msgs = stored_messages(youju)
    assert len(msgs) == 1
    assert msgs[0].startswith(b"Return-Path: <>\r\n"), msgs[0][:400]


def test_control_bytes_in_quoted_local_parts_are_refused(youju, smtp_raw):
    """No CR, TAB or other control byte can reach Return-Path:,
    Delivered-To: or Received: through a quoted local part."""
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    for local in ('"a\rb"', '"a\\\rb"', '"a\tb"', '"a\x7fb"', '"a\\\x01b"'):
        code, _ = c.cmd(f"MAIL FROM:<{local}@example.org>".encode("latin-1"))
        assert code in (500, 501), local
    code, _ = c.cmd("MAIL FROM:<bob@example.org>")
    assert code == 250
    for local in ('"a\rb"', '"a\tb"', '"a\x7fb"'):
        code, _ = c.cmd(f"RCPT TO:<{local}@example.test>".encode("latin-1"))
        assert code in (500, 501), local


# --- SMTP replies ---

def test_bdat_syntax_error_that_closes_says_421(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    code, _ = c.cmd("MAIL FROM:<bob@example.org>")
    assert code == 250
    code, _ = c.cmd("RCPT TO:<alice@example.test>")
    assert code == 250
    code, _ = c.cmd("BDAT twelve")
    if code != 421:
        # Any other reply is fine only if the session goes on, or if a
        # 421 follows it before the close.
        code, _ = c.cmd("NOOP")
        assert code in (250, 421)


def test_postmaster_is_always_accepted(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"], source="127.0.0.2")
    c.greet()
    code, _ = c.cmd("MAIL FROM:<bob@example.org>")
    assert code == 250
    code, texts = c.cmd("RCPT TO:<Postmaster>")
    assert code == 250, texts
    code, texts = c.cmd("RCPT TO:<postmaster@example.test>")
    assert code == 250, texts


def test_long_utf8_helo_is_refused_or_kept_whole(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.reply()
    code, _ = c.cmd("EHLO " + "\u00e9" * 200)
    if code != 250:
        return
    code, texts = c.mail("bob@example.org", ["alice@example.test"], b"Subject: x\r\n\r\nx\r\n",
                         params=" SMTPUTF8")
    assert code == 250, texts
    msg = stored_messages(youju)[0]
    received = msg[msg.index(b"Received:"):]
    received = received[:received.index(b";")]
    received.decode("utf-8")


# --- POP3 ---

def test_pop3_size_matches_retr_for_bdat_with_bare_lf(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    body = b"Subject: lf\n\none\ntwo\nthree\n"
    c.cmd("MAIL FROM:<bob@example.org>")
    c.cmd("RCPT TO:<alice@example.test>")
    c.send(b"BDAT %d LAST\r\n" % len(body) + body)
    code, texts = c.reply()
    assert code == 250, texts
    p = Pop3Raw(youju.ports["pop3"])
    try:
        assert p.line().startswith(b"+OK")
        assert p.cmd("USER " + USER).startswith(b"+OK")
        assert p.cmd("PASS " + PASSWORD).startswith(b"+OK")
        listed = int(p.cmd("LIST 1").split()[2])
        assert p.cmd("RETR 1").startswith(b"+OK")
        sent = p.multiline()
        assert len(sent) == listed, (len(sent), listed)
    finally:
        p.close()


def test_pop3_lock_is_released_when_the_client_vanishes(youju):
    """The maildrop lock goes with the session however it ends: here the
    client drops the connection in TRANSACTION without QUIT."""
    for i in range(3):
        p = Pop3Raw(youju.ports["pop3"])
        assert p.line().startswith(b"+OK")
        assert p.cmd("USER " + USER).startswith(b"+OK")
        reply = p.cmd("PASS " + PASSWORD)
        assert reply.startswith(b"+OK"), reply
        p.sock.shutdown(socket.SHUT_RDWR)
        p.close()
        deadline = time.monotonic() + 5
        while (youju.read_log().count("logout user=" + USER) <= i and
               time.monotonic() < deadline):
            time.sleep(0.05)


# --- connection slots and shutdown ---

def test_pop3_clients_cannot_lock_out_smtp(youju_with, smtp_raw):
    y = youju_with(max_connections=4, client_connection_count_limit=3)
    held = []
    try:
        for _ in range(3):
            p = Pop3Raw(y.ports["pop3"])
            assert p.line().startswith(b"+OK")
            held.append(p)
        # the fourth from the same address is turned away ...
        p = Pop3Raw(y.ports["pop3"])
        assert p.line().startswith(b"-ERR [SYS/TEMP]")
        p.close()
        c = smtp_raw(y.ports["smtp"], source="127.0.0.2")
        code, texts = c.reply()
        assert code == 220, texts
    finally:
        for p in held:
            p.close()


def test_shutdown_says_421_to_smtp_clients(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    youju.proc.send_signal(signal.SIGTERM)
    c.sock.settimeout(5)
    data = c.sock.recv(1024)
    assert data.startswith(b"421"), data


def test_auth_failure_delay_does_not_hold_up_shutdown(youju_with):
    y = youju_with(auth_failure_delay="4s")
    p = Pop3Raw(y.ports["pop3"])
    try:
        assert p.line().startswith(b"+OK")
        assert p.cmd("USER " + USER).startswith(b"+OK")
        p.sock.sendall(b"PASS wrong\r\n")
        time.sleep(0.3)
        y.proc.send_signal(signal.SIGTERM)
        took = wait_gone(y.proc, 10)
        assert took is not None and took < 2.0, took
    finally:
        p.close()
