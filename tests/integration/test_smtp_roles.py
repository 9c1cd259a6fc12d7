"""Inbound SMTP (MX role): the limits that live in the protocol. Junk
command floods count as errors past smtpd_junk_command_limit; recipients
past smtpd_recipient_limit get 452 without costing the session, so DATA
reaches those accepted (RFC 5321 4.5.3.1.10); a BDAT chunk larger than
the size limit allows is refused without being read."""
import os
import smtplib
import subprocess
import time

from conftest import USER

ALICE = USER


def sql(y, query):
    if getattr(y, "pg_dsn", None) is not None:     # YOUJU_STORE_DRIVER=postgresql
        r = subprocess.run(["psql", y.pg_dsn, "-At", "-c", query], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()
    db = os.path.join(y.data_dir, "youju.db")
    kw = {}
    if os.geteuid() == 0:
        st = os.stat(db)
        kw = {"user": st.st_uid, "group": st.st_gid, "extra_groups": []}
    r = subprocess.run(["sqlite3", "-batch", db, query], capture_output=True, text=True,
                       timeout=60, **kw)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def replies(c, n):
    return [c.reply() for _ in range(n)]


# --- recipients over the limit ---

def test_1100_pipelined_rcpts_then_data_delivers_to_the_1000(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"], timeout=60)
    c.greet()
    rcpts = [f"r{i}@remote{i % 7}.example" for i in range(1100)]
    batch = "MAIL FROM:<bob@example.org>\r\n"
    batch += "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts)
    batch += "DATA\r\n"
    c.send(batch)
    got = replies(c, 1 + 1100 + 1)
    codes = [code for code, _ in got]
    assert codes[0] == 250
    assert codes[1:1001] == [250] * 1000
    assert codes[1001:1101] == [452] * 100, set(codes[1001:1101])
    assert got[1001][1][0].startswith("4.5.3")
    assert codes[1101] == 354, got[1101]
    c.send(b"Subject: many\r\n\r\nto the first thousand\r\n.\r\n")
    code, texts = c.reply()
    assert code == 250, texts
    assert c.cmd("NOOP")[0] == 250
    queued = sql(youju, "SELECT recipient FROM queue ORDER BY id")
    assert sorted(queued) == sorted(rcpts[:1000])


def test_smtplib_sends_to_those_accepted(youju_with):
    y = youju_with(smtpd_recipient_limit=5)
    rcpts = [ALICE] + [f"r{i}@remote.example" for i in range(7)]
    with smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=30) as s:
        refused = s.sendmail("bob@example.org", rcpts,
                             b"Subject: limited\r\n\r\nbody\r\n")
        assert sorted(refused) == sorted(rcpts[5:])
        assert all(code == 452 for code, _ in refused.values())
        assert s.noop()[0] == 250
    assert len(y.uids(ALICE)) == 1
    assert len(sql(y, "SELECT id FROM queue")) == 4


def test_far_past_the_recipient_limit_the_session_ends(youju_with, smtp_raw):
    y = youju_with(smtpd_recipient_limit=2, smtpd_recipient_overshoot_limit=5,
                   smtpd_hard_error_limit=3)
    c = smtp_raw(y.ports["smtp"])
    c.greet()
    c.send("MAIL FROM:<bob@example.org>\r\n" + "RCPT TO:<x@remote.example>\r\n" * 20)
    codes = [c.reply()[0] for _ in range(1 + 2 + 5 + 3 + 1)]
    # 2 accepted, 5 refused free of charge, then 3 that count: 421.
    assert codes[:8] == [250, 250, 250] + [452] * 5
    assert codes[8:11] == [452] * 3
    assert codes[11] == 421
    assert c.closed()


# --- junk commands ---

def test_junk_flood_ends_the_session(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"], timeout=30)
    c.greet()
    c.send("RSET\r\n" * 1000)
    codes = []
    while True:
        try:
            code, _ = c.reply()
        except EOFError:
            break
        codes.append(code)
        if code == 421:
            break
    assert codes[-1] == 421, codes[-5:]
    # 200 free, then each one counts: 20 errors end the session.
    assert codes[:-1] == [250] * 220, len(codes)
    assert c.closed()


def test_noop_vrfy_help_count_too(youju_with, smtp_raw):
    y = youju_with(smtpd_junk_command_limit=3, smtpd_hard_error_limit=4)
    c = smtp_raw(y.ports["smtp"])
    c.greet()
    for verb in ("NOOP", "VRFY x", "HELP", "NOOP", "VRFY y", "HELP"):
        assert c.cmd(verb)[0] in (250, 252, 214)
    assert c.cmd("NOOP")[0] == 250
    assert c.reply()[0] == 421


def test_junk_count_restarts_after_each_message(youju_with, smtp_raw):
    y = youju_with(smtpd_junk_command_limit=10, smtpd_hard_error_limit=3)
    c = smtp_raw(y.ports["smtp"])
    c.greet()
    for _ in range(3):
        c.send("NOOP\r\n" * 10)
        assert [c.reply()[0] for _ in range(10)] == [250] * 10
        assert c.mail("bob@example.org", [ALICE], b"Subject: x\r\n\r\nx\r\n")[0] == 250
    assert c.cmd("QUIT")[0] == 221
    assert len(y.uids(ALICE)) == 3


# --- BDAT chunks that cannot fit ---

def test_huge_bdat_chunk_is_refused_unread(youju_with, smtp_raw):
    y = youju_with(message_size_limit=2048)
    c = smtp_raw(y.ports["smtp"])
    c.greet()
    assert c.cmd("MAIL FROM:<bob@example.org>")[0] == 250
    assert c.cmd(f"RCPT TO:<{ALICE}>")[0] == 250
    t = time.monotonic()
    c.send(b"BDAT 18446744073709551615 LAST\r\n" + b"x" * 1000)
    code, texts = c.reply()
    assert (code, texts[0][:5]) == (552, "5.3.4"), texts
    code, texts = c.reply()
    assert code == 421, texts
    assert c.closed()
    assert time.monotonic() - t < 3
    assert y.uids(ALICE) == []
    assert "refused unread" in y.read_log()


def test_huge_bdat_without_a_transaction_is_not_read(youju, smtp_raw):
    c = smtp_raw(youju.ports["smtp"])
    c.greet()
    c.send(b"BDAT 9000000000000 LAST\r\n" + b"x" * 100)
    assert c.reply()[0] == 503
    assert c.reply()[0] == 421
    assert c.closed()


def test_bdat_chunk_over_what_is_left_is_skipped(youju_with, smtp_raw):
    """A chunk of at most one message's worth is read off the wire and
    refused; the session goes on."""
    y = youju_with(message_size_limit=2048)
    c = smtp_raw(y.ports["smtp"])
    c.greet()
    assert c.cmd("MAIL FROM:<bob@example.org>")[0] == 250
    assert c.cmd(f"RCPT TO:<{ALICE}>")[0] == 250
    c.send(b"BDAT 1000\r\n" + b"a" * 1000)
    assert c.reply()[0] == 250
    c.send(b"BDAT 2000 LAST\r\n" + b"b" * 2000)
    code, texts = c.reply()
    assert (code, texts[0][:5]) == (552, "5.3.4")
    assert c.mail("bob@example.org", [ALICE], b"Subject: small\r\n\r\nok\r\n")[0] == 250
    assert len(y.uids(ALICE)) == 1
