"""Inbound SMTP (MX role): message content. DATA and its end, dot
unstuffing, SMTP smuggling, BDAT, what the stored message looks like,
durability of a 250 and the log lines of a session."""
import re

import pytest

ALICE = "alice@example.test"
BOB = "bob@example.test"

DATE = rb"[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}"


def assert_code(reply, code, esc=None):
    got, texts = reply
    assert got == code, f"expected {code} {esc or ''}, got {got} {texts}"
    if esc:
        assert texts[0].startswith(esc + " "), f"expected {esc}: {texts}"


def stored(y, account=ALICE, count=1):
    uids = y.uids(account)
    assert len(uids) == count, f"{account}: {y.msg_list(account)!r}"
    return [y.msg_cat(account, u) for u in uids]


def split_trace(msg):
    """Returns (Return-Path, Delivered-To, Received, rest) of a stored
    message; the Received header is unfolded lines joined with CRLF."""
    m = re.match(rb"(Return-Path: [^\r\n]*\r\n)(Delivered-To: [^\r\n]*\r\n)"
                 rb"(Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)", msg)
    assert m, f"stored message does not start with the trace headers:\n{msg[:400]!r}"
    return m.group(1), m.group(2), m.group(3), msg[m.end():]


def session(y, smtp_raw, helo="client.test", verb="EHLO"):
    c = smtp_raw(y.ports["smtp"])
    c.greet(helo, verb)
    return c


# --- stored form ---

def test_stored_message_has_trace_headers_then_the_message(youju, smtp_raw):
    c = session(youju, smtp_raw, "client.test")
    wire = (b"From: Bob <bob@example.org>\r\nTo: alice@example.test\r\n"
            b"Subject: trace\r\nMessage-ID: <trace@example.org>\r\n\r\n"
            b"line one\r\nline two\r\n")
    assert_code(c.mail("bob@example.org", [ALICE], wire), 250, "2.0.0")
    (msg,) = stored(youju)
    rp, dt, rcvd, rest = split_trace(msg)
    assert rp == b"Return-Path: <bob@example.org>\r\n"
    assert re.fullmatch(rb"Delivered-To: <?alice@example\.test>?\r\n", dt), dt
    pattern = (rb"Received: from client\.test \((?:[^\s()\[\]]+ )?\[127\.0\.0\.1\]\)\r\n"
               rb"\tby mx\.example\.test \(youju\) with ESMTP id [A-Za-z0-9]+\r\n"
               rb"\tfor <alice@example\.test>; " + DATE + rb"\r\n")
    assert re.fullmatch(pattern, rcvd), rcvd
    assert rest == wire


def test_received_after_helo_says_smtp(youju, smtp_raw):
    c = session(youju, smtp_raw, "old.client.test", "HELO")
    assert_code(c.mail("bob@example.org", [ALICE], b"Subject: helo\r\n\r\nx\r\n"), 250)
    (msg,) = stored(youju)
    rcvd = split_trace(msg)[2]
    assert rcvd.startswith(b"Received: from old.client.test (")
    assert b") with SMTP id " in rcvd, rcvd


def test_two_local_recipients_get_one_copy_each(youju, smtp_raw):
    youju.add_account(BOB, "secret-bob")
    c = session(youju, smtp_raw)
    wire = b"Subject: both\r\n\r\nfor two\r\n"
    assert_code(c.mail("carol@example.org", [ALICE, BOB], wire), 250)
    (a,) = stored(youju, ALICE)
    (b,) = stored(youju, BOB)
    ra, rb_ = split_trace(a), split_trace(b)
    assert re.fullmatch(rb"Delivered-To: <?alice@example\.test>?\r\n", ra[1])
    assert re.fullmatch(rb"Delivered-To: <?bob@example\.test>?\r\n", rb_[1])
    assert ra[3] == rb_[3] == wire
    # several recipients: the Received header names none of them
    assert b"for <" not in ra[2], ra[2]
    assert re.search(rb"with ESMTP id [A-Za-z0-9]+;(?: |\r\n\t)" + DATE + rb"\r\n$", ra[2]), ra[2]


def test_two_transactions_in_one_session(youju, smtp_raw):
    c = session(youju, smtp_raw)
    assert_code(c.mail("bob@example.org", [ALICE], b"Subject: one\r\n\r\n1\r\n"), 250)
    assert_code(c.mail("bob@example.org", [ALICE], b"Subject: two\r\n\r\n2\r\n"), 250)
    msgs = stored(youju, count=2)
    assert sorted(split_trace(m)[3] for m in msgs) == [b"Subject: one\r\n\r\n1\r\n",
                                                       b"Subject: two\r\n\r\n2\r\n"]


def test_eight_bit_body_kept_exact(youju, smtp_raw):
    c = session(youju, smtp_raw)
    wire = ("Subject: =?utf-8?q?8bit?=\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n\u4f60\u597d \u00e9t\u00e9 \xff\r\n").encode()
    wire += bytes(range(0x80, 0x100)) + b"\r\n"
    assert_code(c.mail("bob@example.org", [ALICE], wire, params=" BODY=8BITMIME"), 250)
    (msg,) = stored(youju)
    assert split_trace(msg)[3] == wire


def test_empty_body(youju, smtp_raw):
    c = session(youju, smtp_raw)
    c.cmd("MAIL FROM:<bob@example.org>")
    c.cmd(f"RCPT TO:<{ALICE}>")
    assert c.cmd("DATA")[0] == 354
    c.send(b".\r\n")
    assert_code(c.reply(), 250)
    (msg,) = stored(youju)
    assert split_trace(msg)[3] == b""


# --- end of data and dots ---

def test_dot_unstuffing(youju, smtp_raw):
    c = session(youju, smtp_raw)
    wire = (b"Subject: dots\r\n\r\n..leading dot\r\n...\r\n..\r\n"
            b"middle . dot\r\n. space\r\n")
    assert_code(c.mail("bob@example.org", [ALICE], wire), 250)
    (msg,) = stored(youju)
    assert split_trace(msg)[3] == (b"Subject: dots\r\n\r\n.leading dot\r\n..\r\n.\r\n"
                                   b"middle . dot\r\n space\r\n")


def test_smtplib_dot_stuffs_and_server_unstuffs(youju):
    import smtplib
    body = b"Subject: lib dots\r\n\r\n.one\r\n.\r\n..two\r\nend\r\n"
    with smtplib.SMTP("127.0.0.1", youju.ports["smtp"], timeout=10) as s:
        s.sendmail("bob@example.org", [ALICE], body)
    (msg,) = stored(youju)
    assert split_trace(msg)[3] == body


def test_bare_lf_lines_are_stored_with_crlf(youju, smtp_raw):
    c = session(youju, smtp_raw)
    c.cmd("MAIL FROM:<bob@example.org>")
    c.cmd(f"RCPT TO:<{ALICE}>")
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: lf\nX-A: b\n\nline one\nline two\r\nlast\n\r\n.\r\n")
    assert_code(c.reply(), 250)
    (msg,) = stored(youju)
    assert split_trace(msg)[3] == (b"Subject: lf\r\nX-A: b\r\n\r\nline one\r\n"
                                   b"line two\r\nlast\r\n\r\n")
    assert re.search(rb"(?<!\r)\n", msg) is None, "bare LF in stored message"


def test_data_split_at_every_byte_boundary(youju, smtp_raw):
    """The end-of-data sequence spread over packets still ends the data."""
    import time
    c = session(youju, smtp_raw)
    c.cmd("MAIL FROM:<bob@example.org>")
    c.cmd(f"RCPT TO:<{ALICE}>")
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: split\r\n\r\nbody\r")
    for piece in (b"\n", b".", b"\r", b"\n"):
        time.sleep(0.05)
        c.send(piece)
    assert_code(c.reply(), 250)
    (msg,) = stored(youju)
    assert split_trace(msg)[3] == b"Subject: split\r\n\r\nbody\r\n"


SMUGGLE_ENDS = [
    pytest.param(b"\n.\n", id="lf-dot-lf"),
    pytest.param(b"\n.\r\n", id="lf-dot-crlf"),
    pytest.param(b"\r\n.\n", id="crlf-dot-lf"),
    pytest.param(b"\r.\r\n", id="cr-dot-crlf"),
    pytest.param(b"\r\n.\r", id="crlf-dot-cr"),
    pytest.param(b"\r\n.\r\r\n", id="crlf-dot-cr-crlf"),
]


@pytest.mark.parametrize("fake_end", SMUGGLE_ENDS)
def test_smtp_smuggling_is_not_possible(youju, smtp_raw, fake_end):
    """A false end of data followed by commands: the commands are message
    text, never executed; one message only is delivered."""
    youju.add_account(BOB, "secret-bob")
    c = session(youju, smtp_raw)
    c.cmd("MAIL FROM:<bob@example.org>")
    c.cmd(f"RCPT TO:<{ALICE}>")
    assert c.cmd("DATA")[0] == 354
    smuggled = (b"MAIL FROM:<admin@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
                b"DATA\r\nSubject: smuggled\r\n\r\nevil\r\n")
    c.send(b"Subject: carrier\r\n\r\ninnocent" + fake_end + smuggled + b".\r\nQUIT\r\n")
    replies = []
    while True:
        try:
            replies.append(c.reply())
        except (EOFError, ConnectionResetError):
            break
    codes = [r[0] for r in replies]
    assert codes == [250, 221], f"replies after the payload: {replies}"
    (msg,) = stored(youju, ALICE)
    assert b"MAIL FROM:<admin@example.test>" in msg
    assert b"Subject: smuggled" in msg
    assert youju.uids(BOB) == []


def test_bare_cr_becomes_crlf(youju, smtp_raw):
    """A CR without an LF after it ends its line, stored as CRLF, so that
    the stored message is canonical."""
    c = session(youju, smtp_raw)
    wire = b"Subject: cr\r\n\r\na\rb\r\n"
    assert_code(c.mail("bob@example.org", [ALICE], wire), 250)
    (msg,) = stored(youju)
    assert split_trace(msg)[3] == b"Subject: cr\r\n\r\na\r\nb\r\n"


def test_long_body_lines_are_accepted(youju, smtp_raw):
    c = session(youju, smtp_raw)
    wire = b"Subject: long\r\n\r\n" + b"x" * 20000 + b"\r\n"
    assert_code(c.mail("bob@example.org", [ALICE], wire), 250)
    (msg,) = stored(youju)
    assert split_trace(msg)[3] == wire


def test_big_message(youju, smtp_raw):
    c = session(youju, smtp_raw)
    line = b"0123456789" * 7 + b"\r\n"
    wire = b"Subject: big\r\n\r\n" + line * (4 * 1024 * 1024 // len(line))
    assert_code(c.mail("bob@example.org", [ALICE], wire), 250)
    (msg,) = stored(youju)
    assert split_trace(msg)[3] == wire


# --- BDAT (CHUNKING) ---

def bdat_tx(c, rcpts=(ALICE,)):
    assert_code(c.cmd("MAIL FROM:<bob@example.org>"), 250)
    for r in rcpts:
        assert_code(c.cmd(f"RCPT TO:<{r}>"), 250)


def test_bdat_several_chunks(youju, smtp_raw):
    c = session(youju, smtp_raw)
    bdat_tx(c)
    parts = [b"Subject: chunks\r\n\r\n", b"first part, ", b"second\r\n.\r\n", b"last\r\n"]
    for p in parts[:-1]:
        c.send(b"BDAT %d\r\n" % len(p) + p)
        assert_code(c.reply(), 250)
    c.send(b"BDAT %d LAST\r\n" % len(parts[-1]) + parts[-1])
    assert_code(c.reply(), 250)
    (msg,) = stored(youju)
    assert split_trace(msg)[3] == b"".join(parts)


def test_bdat_zero_last(youju, smtp_raw):
    c = session(youju, smtp_raw)
    bdat_tx(c)
    body = b"Subject: zero last\r\n\r\ndone\r\n"
    c.send(b"BDAT %d\r\n" % len(body) + body)
    assert_code(c.reply(), 250)
    assert_code(c.cmd("BDAT 0 LAST"), 250)
    (msg,) = stored(youju)
    assert split_trace(msg)[3] == body


def test_bdat_pipelined(youju, smtp_raw):
    c = session(youju, smtp_raw)
    a = b"Subject: piped bdat\r\n\r\n"
    b = b"tail\r\n"
    c.send(b"MAIL FROM:<bob@example.org>\r\nRCPT TO:<alice@example.test>\r\n"
           + b"BDAT %d\r\n" % len(a) + a + b"BDAT %d LAST\r\n" % len(b) + b + b"NOOP\r\n")
    for _ in range(5):
        assert_code(c.reply(), 250)
    (msg,) = stored(youju)
    assert split_trace(msg)[3] == a + b


def test_bdat_content_is_exact_but_for_line_ends(youju, smtp_raw):
    """Every byte value, bare CR, NUL and a fake end of data: what goes in
    a chunk is stored as is, except that a LF without a CR before it and a
    CR without an LF after it become CRLF, as in DATA (no BINARYMIME is
    offered, so a message has CRLF lines, and POP3/IMAP sizes must match
    what they send)."""
    c = session(youju, smtp_raw)
    bdat_tx(c)
    body = (b"Subject: binary\r\nContent-Type: application/octet-stream\r\n\r\n"
            + bytes(range(256)) * 8 + b"\r\n.\r\n\n.\n\x00\r\r\n")
    c.send(b"BDAT %d LAST\r\n" % len(body) + body)
    assert_code(c.reply(), 250)
    (msg,) = stored(youju)
    assert split_trace(msg)[3] == re.sub(rb"\r\n|\r|\n", b"\r\n", body)


def test_bdat_bare_lf_split_across_chunks(youju, smtp_raw):
    c = session(youju, smtp_raw)
    bdat_tx(c)
    c.send(b"BDAT 11\r\nSubject: x\r")
    assert_code(c.reply(), 250)
    c.send(b"BDAT 8\r\n\n\nbody\n\n")
    assert_code(c.reply(), 250)
    c.send(b"BDAT 0 LAST\r\n")
    assert_code(c.reply(), 250)
    (msg,) = stored(youju)
    assert split_trace(msg)[3] == b"Subject: x\r\n\r\nbody\r\n\r\n"


def test_bdat_eight_bit_crlf_content_is_exact(youju, smtp_raw):
    c = session(youju, smtp_raw)
    bdat_tx(c)
    body = (b"Subject: 8bit bdat\r\n\r\n" + bytes(range(0x20, 0x100)) + b"\r\n"
            + b".dot line\r\n")
    c.send(b"BDAT %d LAST\r\n" % len(body) + body)
    assert_code(c.reply(), 250)
    (msg,) = stored(youju)
    assert split_trace(msg)[3] == body


def test_data_after_bdat_is_refused(youju, smtp_raw):
    c = session(youju, smtp_raw)
    bdat_tx(c)
    part = b"Subject: mixed\r\n\r\n"
    c.send(b"BDAT %d\r\n" % len(part) + part)
    assert_code(c.reply(), 250)
    assert_code(c.cmd("DATA"), 503, "5.5.1")
    assert youju.uids(ALICE) == []


def test_bdat_without_transaction_consumes_its_chunk(youju, smtp_raw):
    """RFC 3030: a refused BDAT's chunk is still read, not run as commands."""
    c = session(youju, smtp_raw)
    chunk = b"HELP\r\n"
    c.send(b"BDAT %d\r\n" % len(chunk) + chunk + b"NOOP\r\n")
    assert_code(c.reply(), 503, "5.5.1")
    # 214 here would mean the chunk ran as a command
    assert_code(c.reply(), 250)
    assert_code(c.cmd("NOOP"), 250)


def test_each_message_ends_its_transaction(youju, smtp_raw):
    """The transaction exists from MAIL to the end of the message: after
    DATA or BDAT LAST nothing of it is left (RCPT and BDAT want a MAIL),
    and the next MAIL starts afresh, in the same session."""
    c = session(youju, smtp_raw)
    bdat_tx(c)
    assert c.cmd("DATA")[0] == 354
    assert_code(c.cmd(b"Subject: one\r\n\r\nfirst\r\n."), 250)
    assert_code(c.cmd(f"RCPT TO:<{ALICE}>"), 503, "5.5.1")
    chunk = b"Subject: stray\r\n\r\nx\r\n"
    c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
    assert_code(c.reply(), 503, "5.5.1")
    bdat_tx(c)
    body = b"Subject: two\r\n\r\nsecond\r\n"
    c.send(b"BDAT %d LAST\r\n" % len(body) + body)
    assert_code(c.reply(), 250)
    assert_code(c.cmd("DATA"), 503, "5.5.1")
    first, second = stored(youju, count=2)
    assert b"first" in split_trace(first)[3] and split_trace(second)[3] == body


@pytest.mark.parametrize("line", ["BDAT", "BDAT x LAST", "BDAT 10 FIRST", "BDAT -1"])
def test_bdat_syntax(youju, smtp_raw, line):
    """501 5.5.4; as the chunk's length is unknown the server may end the
    session rather than guess where the next command starts."""
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    bdat_tx(c)
    assert_code(c.cmd(line), 501, "5.5.4")
    try:
        code, texts = c.cmd("NOOP")
    except (EOFError, ConnectionResetError, BrokenPipeError):
        return
    assert code in (250, 421), (code, texts)


# --- durability and logs ---

def test_250_survives_sigkill(youju, smtp_raw):
    for i in range(3):
        c = session(youju, smtp_raw)
        wire = b"Subject: durable %d\r\n\r\nkept\r\n" % i
        assert_code(c.mail("bob@example.org", [ALICE], wire), 250)
        youju.kill()
        youju.start()
    msgs = stored(youju, count=3)
    assert sorted(split_trace(m)[3] for m in msgs) == [
        b"Subject: durable %d\r\n\r\nkept\r\n" % i for i in range(3)]


def test_250_for_two_recipients_survives_sigkill(youju, smtp_raw):
    youju.add_account(BOB, "secret-bob")
    c = session(youju, smtp_raw)
    wire = b"Subject: durable pair\r\n\r\nkept twice\r\n"
    assert_code(c.mail("bob@example.org", [ALICE, BOB], wire), 250)
    youju.kill()
    youju.start()
    (a,) = stored(youju, ALICE)
    (b,) = stored(youju, BOB)
    assert split_trace(a)[3] == split_trace(b)[3] == wire


def test_bdat_250_survives_sigkill(youju, smtp_raw):
    c = session(youju, smtp_raw)
    bdat_tx(c)
    body = b"Subject: durable bdat\r\n\r\nkept\r\n"
    c.send(b"BDAT %d LAST\r\n" % len(body) + body)
    assert_code(c.reply(), 250)
    youju.kill()
    youju.start()
    (msg,) = stored(youju)
    assert split_trace(msg)[3] == body


def test_unfinished_data_is_not_stored(youju, smtp_raw):
    c = session(youju, smtp_raw)
    c.cmd("MAIL FROM:<bob@example.org>")
    c.cmd(f"RCPT TO:<{ALICE}>")
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: cut\r\n\r\nhalf a message\r\n")
    c.close()
    c2 = session(youju, smtp_raw)
    assert_code(c2.cmd("NOOP"), 250)
    assert youju.uids(ALICE) == []


def test_log_lines(youju, smtp_raw):
    ids = []
    for n in range(2):
        c = session(youju, smtp_raw)
        assert_code(c.mail("bob@example.org", [ALICE], b"Subject: log %d\r\n\r\nx\r\n" % n), 250)
        c.cmd("QUIT")
        c.closed()
    msgs = stored(youju, count=2)
    for m in msgs:
        rcvd = split_trace(m)[2]
        ids.append(re.search(rb" id ([A-Za-z0-9]+)", rcvd).group(1).decode())
    import time
    time.sleep(0.3)  # the disconnect line may follow the client's close
    log = youju.read_log().splitlines()
    connects = [l for l in log if re.search(r"\bconnect", l) and "127.0.0.1" in l
                and "disconnect" not in l]
    assert len(connects) >= 2, "\n".join(log[-40:])
    assert any("disconnect" in l for l in log), "\n".join(log[-40:])
    for qid in ids:
        lines = [l for l in log if qid in l]
        assert lines, f"id {qid} not in the log:\n" + "\n".join(log[-40:])
        # the session id ties the connect line to the delivery lines
        linked = False
        for conn in connects:
            tokens = set(re.findall(r"[A-Za-z0-9]{6,}", conn))
            tokens -= {"connect", "youjud", "smtpd"}
            others = [set(re.findall(r"[A-Za-z0-9]{6,}", o)) for o in connects if o != conn]
            own = {t for t in tokens if not any(t in o for o in others)}
            if any(t in l for t in own for l in lines):
                linked = True
        assert linked, f"no session id shared by a connect line and id {qid}:\n" + \
            "\n".join(log[-40:])
