"""Inbound SMTP (MX role): STARTTLS. Versions, the state reset it
implies, and commands pipelined behind it (CVE-2011-0411 style)."""
import re
import smtplib
import ssl
import subprocess
import warnings

import pytest

ALICE = "alice@example.test"


def assert_code(reply, code, esc=None):
    got, texts = reply
    assert got == code, f"expected {code} {esc or ''}, got {got} {texts}"
    if esc:
        assert texts[0].startswith(esc + " "), f"expected {esc}: {texts}"


def client_context(**kw):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def received_of(y):
    uids = y.uids(ALICE)
    assert len(uids) == 1
    msg = y.msg_cat(ALICE, uids[0])
    m = re.search(rb"^Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", msg, re.M)
    assert m, msg[:400]
    return m.group(0)


def test_starttls_then_mail(youju):
    with smtplib.SMTP("127.0.0.1", youju.ports["smtp"], timeout=10) as s:
        s.ehlo("client.test")
        assert s.has_extn("starttls")
        code, text = s.starttls(context=client_context())
        assert code == 220
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        code, text = s.ehlo("client.test")
        assert code == 250
        assert not s.has_extn("starttls"), "STARTTLS offered again inside TLS"
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "smtputf8",
                    "chunking"):
            assert s.has_extn(ext), ext
        s.sendmail("bob@example.org", [ALICE], b"Subject: tls\r\n\r\nsecret\r\n")
    rcvd = received_of(youju)
    assert b" with ESMTPS id " in rcvd, rcvd


def test_starttls_with_tls12_only(youju):
    with smtplib.SMTP("127.0.0.1", youju.ports["smtp"], timeout=10) as s:
        s.ehlo("client.test")
        s.starttls(context=client_context(maximum_version=ssl.TLSVersion.TLSv1_2))
        assert s.sock.version() == "TLSv1.2"
        assert s.noop()[0] == 250


def test_tls_below_12_is_refused(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = client_context(minimum_version=ssl.TLSVersion.TLSv1,
                             maximum_version=ssl.TLSVersion.TLSv1_1)
    try:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    try:
        c.starttls(ctx)
        c.cmd("NOOP")
    except ssl.SSLError as e:
        if "NO_PROTOCOLS_AVAILABLE" in str(e):
            pytest.skip("this OpenSSL cannot offer TLS below 1.2")
        return  # typically the server's protocol_version alert
    except (ConnectionResetError, EOFError):
        return
    pytest.fail(f"{c.sock.version()} accepted")


def test_starttls_resets_helo(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    c.starttls(client_context())
    assert_code(c.cmd("MAIL FROM:<bob@example.org>"), 503, "5.5.1")
    assert c.cmd("EHLO client.test")[0] == 250
    assert_code(c.cmd("MAIL FROM:<bob@example.org>"), 250)


def test_starttls_twice_is_refused(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    c.starttls(client_context())
    c.cmd("EHLO client.test")
    code, texts = c.cmd("STARTTLS")
    assert 500 <= code < 600, (code, texts)
    assert_code(c.cmd("NOOP"), 250)


def test_starttls_takes_no_argument(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    assert_code(c.cmd("STARTTLS now"), 501, "5.5.4")
    assert_code(c.cmd("NOOP"), 250)


def test_commands_pipelined_after_starttls_are_discarded(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    c.send(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<alice@example.test>\r\n"
           b"NOOP\r\n")
    code, texts = c.reply()
    assert code == 220, texts
    assert c.buf == b"", f"cleartext after the 220: {c.buf!r}"
    c.sock = client_context().wrap_socket(c.sock)
    # the first thing inside TLS is the answer to our EHLO, not to the
    # injected commands
    code, texts = c.cmd("EHLO client.test")
    assert code == 250 and texts[0].split()[0] == "mx.example.test", (code, texts)
    assert len(texts) > 1, texts
    assert_code(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1")
    assert_code(c.cmd("NOOP"), 250)
    assert_code(c.cmd("QUIT"), 221)


def test_transaction_does_not_survive_starttls(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    # a transaction opened in the clear must not carry over
    code, _ = c.cmd("MAIL FROM:<bob@example.org>")
    assert code == 250
    code, texts = c.cmd("STARTTLS")
    if code != 220:
        # refusing STARTTLS inside a transaction is fine too
        assert 500 <= code < 600, texts
        return
    c.sock = client_context().wrap_socket(c.sock)
    c.cmd("EHLO client.test")
    assert_code(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1")


def test_swaks_starttls(youju):
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{youju.ports['smtp']}", "--tls",
                        "--from", "bob@example.org", "--to", ALICE, "--helo", "client.test",
                        "--header", "Subject: swaks tls", "--timeout", "10"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert b" with ESMTPS id " in received_of(youju)


def test_bdat_inside_tls(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    c.starttls(client_context())
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<bob@example.org>")
    c.cmd(f"RCPT TO:<{ALICE}>")
    body = b"Subject: tls bdat\r\n\r\n" + bytes(range(256)) + b"\r\n"
    c.send(b"BDAT %d LAST\r\n" % len(body) + body)
    assert_code(c.reply(), 250)
    uids = youju.uids(ALICE)
    assert len(uids) == 1
    # stored as sent, but for the bare LF (byte 10) and the bare CR (byte
    # 13), which become CRLF
    assert youju.msg_cat(ALICE, uids[0]).endswith(re.sub(rb"\r\n|\r|\n", b"\r\n", body))
