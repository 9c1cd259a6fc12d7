"""Inbound SMTP (MX role): the dialogue itself. Greeting, EHLO/HELO,
command order, replies and their enhanced status codes, syntax errors,
pipelining, as a peer on port 25 sees them."""
import re
import smtplib
import subprocess

ESC = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")


def assert_reply(reply, code, esc=None):
    """reply is (code, texts). Checks the code and that the text starts
    with an enhanced status code of the same class (RFC 2034), equal to
    esc if given."""
    got, texts = reply
    assert got == code, f"expected {code}, got {got} {texts}"
    m = ESC.match(texts[0])
    assert m, f"no enhanced status code in {got} {texts[0]!r}"
    assert m.group(1) == str(code)[0], f"status class differs: {got} {texts[0]!r}"
    if esc is not None:
        assert texts[0].startswith(esc + " ") or texts[0] == esc, \
            f"expected {code} {esc}, got {got} {texts[0]!r}"


def test_greeting_is_banner(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    code, texts = c.reply()
    assert code == 220
    assert texts == ["mx.example.test ESMTP youju"]


def test_banner_is_configurable(youju_with, smtp_raw):
    y = youju_with(smtpd_banner="$myhostname ready")
    c = smtp_raw(y.ports["smtp"])
    assert c.reply() == (220, ["mx.example.test ready"])


def test_ehlo_lists_extensions(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    texts = c.greet()
    assert texts[0].split()[0] == "mx.example.test"
    keywords = {t.split()[0].upper(): t.split()[1:] for t in texts[1:]}
    for ext in ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES", "STARTTLS",
                "SMTPUTF8", "CHUNKING"):
        assert ext in keywords, f"{ext} missing from EHLO: {texts}"
    assert keywords["SIZE"] == ["52428800"]


def test_ehlo_size_follows_config(youju_with, smtp_raw):
    y = youju_with(message_size_limit=2048)
    c = smtp_raw(y.ports["smtp"])
    texts = c.greet()
    assert "SIZE 2048" in texts


def test_smtplib_sees_extensions(youju):
    with smtplib.SMTP("127.0.0.1", youju.ports["smtp"], timeout=10) as s:
        code, _ = s.ehlo("client.test")
        assert code == 250
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "starttls",
                    "smtputf8", "chunking"):
            assert s.has_extn(ext), ext


def test_helo(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.reply()
    code, texts = c.cmd("HELO client.test")
    assert code == 250
    assert len(texts) == 1
    assert_reply(c.cmd("MAIL FROM:<bob@example.org>"), 250)
    assert_reply(c.cmd("RCPT TO:<alice@example.test>"), 250)


def test_helo_and_ehlo_need_an_argument(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.reply()
    assert_reply(c.cmd("EHLO"), 501, "5.5.4")
    assert_reply(c.cmd("HELO"), 501, "5.5.4")
    assert c.cmd("EHLO client.test")[0] == 250


def test_noop_rset_help_quit(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    assert_reply(c.cmd("NOOP"), 250)
    assert_reply(c.cmd("NOOP with an argument"), 250)
    assert_reply(c.cmd("RSET"), 250)
    assert_reply(c.cmd("HELP"), 214)
    assert_reply(c.cmd("QUIT"), 221)
    assert c.closed()


def test_commands_are_case_insensitive(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.reply()
    assert c.cmd("ehlo client.test")[0] == 250
    assert_reply(c.cmd("mail from:<bob@example.org>"), 250)
    assert_reply(c.cmd("Rcpt To:<alice@example.test>"), 250)
    assert_reply(c.cmd("rset"), 250)


def test_vrfy_discloses_nothing(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    known = c.cmd("VRFY alice@example.test")
    unknown = c.cmd("VRFY nobody@example.test")
    assert_reply(known, 252)
    assert_reply(unknown, 252)
    assert known[1][0].replace("alice", "X") == unknown[1][0].replace("nobody", "X")
    bare = c.cmd("VRFY alice")
    assert_reply(bare, 252)


def test_mail_before_helo(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.reply()
    assert_reply(c.cmd("MAIL FROM:<bob@example.org>"), 503, "5.5.1")


def test_rcpt_before_mail(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    assert_reply(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1")


def test_data_before_mail_and_before_rcpt(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    assert_reply(c.cmd("DATA"), 503, "5.5.1")
    assert_reply(c.cmd("MAIL FROM:<bob@example.org>"), 250)
    assert_reply(c.cmd("DATA"), 503, "5.5.1")
    # the transaction survives the error
    assert_reply(c.cmd("RCPT TO:<alice@example.test>"), 250)
    assert c.cmd("DATA")[0] == 354
    assert_reply(c.cmd(b"Subject: t\r\n\r\nhi\r\n."), 250)


def test_nested_mail(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    assert_reply(c.cmd("MAIL FROM:<bob@example.org>"), 250)
    assert_reply(c.cmd("MAIL FROM:<carol@example.org>"), 503, "5.5.1")


def test_rset_ends_the_transaction(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    assert_reply(c.cmd("MAIL FROM:<bob@example.org>"), 250)
    assert_reply(c.cmd("RCPT TO:<alice@example.test>"), 250)
    assert_reply(c.cmd("RSET"), 250)
    assert_reply(c.cmd("DATA"), 503, "5.5.1")
    assert_reply(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1")
    assert_reply(c.cmd("MAIL FROM:<carol@example.org>"), 250)


def test_ehlo_again_ends_the_transaction(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    assert_reply(c.cmd("MAIL FROM:<bob@example.org>"), 250)
    assert c.cmd("EHLO client.test")[0] == 250
    assert_reply(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1")
    assert_reply(c.cmd("MAIL FROM:<bob@example.org>"), 250)


def test_unknown_command(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.reply()
    assert_reply(c.cmd("FROBNICATE now"), 500, "5.5.2")
    assert_reply(c.cmd("X"), 500, "5.5.2")
    assert c.cmd("EHLO client.test")[0] == 250


def test_empty_line_and_nul_byte_get_errors(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    code, texts = c.cmd("")
    assert 500 <= code < 600, texts
    code, texts = c.cmd(b"NOOP\x00x")
    assert 500 <= code < 600, texts
    assert_reply(c.cmd("NOOP"), 250)


def test_mail_syntax_errors(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    assert_reply(c.cmd("MAIL"), 501, "5.5.4")
    assert_reply(c.cmd("MAIL FROM bob@example.org"), 501, "5.5.4")
    assert_reply(c.cmd("MAIL TO:<bob@example.org>"), 501, "5.5.4")
    assert_reply(c.cmd("MAIL FROM:<bob@@example.org>"), 501, "5.1.7")
    assert_reply(c.cmd("MAIL FROM:<bob smith@example.org>"), 501, "5.1.7")
    assert_reply(c.cmd("MAIL FROM:<bob@exa_mple..org>"), 501, "5.1.7")
    assert_reply(c.cmd("MAIL FROM:<bob@example.org> FOO=BAR"), 555, "5.5.4")
    assert_reply(c.cmd("MAIL FROM:<bob@example.org> SIZE=lots"), 555, "5.5.4")
    assert_reply(c.cmd("MAIL FROM:<bob@example.org> SIZE=10 SIZE=10"), 555, "5.5.4")
    # none of these opened a transaction
    assert_reply(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1")
    assert_reply(c.cmd("MAIL FROM:<bob@example.org> SIZE=100 BODY=8BITMIME"), 250)


def test_rcpt_syntax_errors(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    assert_reply(c.cmd("MAIL FROM:<>"), 250)
    assert_reply(c.cmd("RCPT alice@example.test"), 501, "5.5.4")
    assert_reply(c.cmd("RCPT TO:<>"), 501, "5.1.3")
    assert_reply(c.cmd("RCPT TO:<alice@@example.test>"), 501, "5.1.3")
    assert_reply(c.cmd("RCPT TO:<ali ce@example.test>"), 501, "5.1.3")
    assert_reply(c.cmd("RCPT TO:<alice@example.test> FOO=BAR"), 555, "5.5.4")
    assert_reply(c.cmd("RCPT TO:<alice@example.test>"), 250)


def test_quoted_local_part_and_source_route(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    assert_reply(c.cmd('MAIL FROM:<"bob smith"@example.org>'), 250)
    assert_reply(c.cmd("RCPT TO:<@relay.example.org:alice@example.test>"), 250)


def test_space_after_colon_is_accepted(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    assert_reply(c.cmd("MAIL FROM: <bob@example.org>"), 250)
    assert_reply(c.cmd("RCPT TO: <alice@example.test>"), 250)


def test_every_reply_has_an_enhanced_status_code(youju, smtp_raw):
    """All replies but the greeting, HELO/EHLO and 354 carry one."""
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    script = [
        ("NOOP", 250), ("HELP", 214), ("VRFY x", 252), ("RSET", 250), ("BOGUS", 500),
        ("RCPT TO:<alice@example.test>", 503), ("MAIL FROM:<bob@example.org>", 250),
        ("RCPT TO:<nobody@example.test>", 550), ("RCPT TO:<alice@example.test>", 250),
    ]
    for line, code in script:
        assert_reply(c.cmd(line), code)
    assert c.cmd("DATA")[0] == 354
    assert_reply(c.cmd(b"Subject: esc\r\n\r\nx\r\n."), 250)
    assert_reply(c.cmd("QUIT"), 221)


def test_pipelining(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    c.send("MAIL FROM:<bob@example.org>\r\nRCPT TO:<alice@example.test>\r\n"
           "RCPT TO:<nobody@example.test>\r\nRCPT TO:<Alice@Example.Test>\r\nDATA\r\n")
    assert_reply(c.reply(), 250)
    assert_reply(c.reply(), 250)
    assert_reply(c.reply(), 550, "5.1.1")
    assert_reply(c.reply(), 250)
    assert c.reply()[0] == 354
    c.send(b"Subject: piped\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
    assert_reply(c.reply(), 250)
    assert_reply(c.reply(), 250)
    assert_reply(c.reply(), 221)
    assert c.closed()


def test_many_pipelined_commands_in_one_packet(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    n = 200
    c.send("NOOP\r\n" * n)
    for _ in range(n):
        assert_reply(c.reply(), 250)


def test_command_split_across_packets(youju, smtp_raw):
    import time
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    for part in (b"MA", b"IL FROM:<bob@exa", b"mple.org>\r", b"\n"):
        c.send(part)
        time.sleep(0.05)
    assert_reply(c.reply(), 250)


def test_swaks_delivers(youju):
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{youju.ports['smtp']}",
                        "--from", "bob@example.org", "--to", "alice@example.test",
                        "--helo", "client.test", "--header", "Subject: via swaks",
                        "--body", "hello from swaks", "--timeout", "10"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    uids = youju.uids("alice@example.test")
    assert len(uids) == 1
    msg = youju.msg_cat("alice@example.test", uids[0])
    assert b"Subject: via swaks" in msg
    assert b"hello from swaks" in msg


def test_swaks_pipelined(youju):
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{youju.ports['smtp']}",
                        "--from", "bob@example.org", "--to",
                        "alice@example.test,nobody@example.test", "--pipeline",
                        "--helo", "client.test", "--timeout", "10"],
                       capture_output=True, text=True, timeout=60)
    # one recipient refused: swaks reports it but the message goes through
    assert "550 5.1.1" in r.stdout, r.stdout
    assert len(youju.uids("alice@example.test")) == 1


def test_smtplib_sendmail(youju):
    with smtplib.SMTP("127.0.0.1", youju.ports["smtp"], timeout=10) as s:
        s.ehlo("client.test")
        refused = s.sendmail("bob@example.org", ["alice@example.test"],
                             b"Subject: lib\r\n\r\nvia smtplib\r\n")
        assert refused == {}
        code, text = s.noop()
        assert code == 250
    assert len(youju.uids("alice@example.test")) == 1
