"""IMAP APPEND, COPY and MOVE with exact UIDs (RFC 4315, RFC 6851),
MULTIAPPEND (RFC 3502), APPENDLIMIT (RFC 7889), QUOTA (RFC 9208), the
quota at SMTP, and RENAME INBOX, against a real youjud on loopback."""

import imaplib
import re
import smtplib
import threading
import time

import pytest

from conftest import PASSWORD, USER
from test_imap import Raw, deliver, imap, make_msg

LIMIT = 65536			# message_size_limit of the instances here


def raw_login(y):
    r = Raw(y.ports["imap"])
    r.line()
    assert r.cmd(b"l", b'LOGIN "%s" "%s"' % (USER.encode(), PASSWORD.encode()))[-1] \
        .startswith(b"l OK")
    return r


def subject_of(m, uid):
    typ, data = m.uid("FETCH", str(uid), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and data[0] is not None, data
    return data[0][1].strip().decode()


def uid_set(text):
    """The numbers of an IMAP sequence set such as "3:5,9", in order."""
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def code(data, name):
    m = re.search(rb"\[" + name.encode() + rb" ([^\]]*)\]", data)
    assert m is not None, data
    return m.group(1).decode().split()


class Deliverer(threading.Thread):
    """Delivers to alice over SMTP as fast as it can until stopped."""

    def __init__(self, y):
        super().__init__(daemon=True)
        self.y, self.stop, self.sent, self.error = y, threading.Event(), 0, None

    def run(self):
        try:
            with smtplib.SMTP("127.0.0.1", self.y.ports["smtp"], timeout=30) as s:
                s.ehlo("client.example.org")
                while not self.stop.is_set():
                    s.sendmail("bob@example.org", [USER], make_msg(f"bg {self.sent}"))
                    self.sent += 1
        except Exception as e:  # reported by the test
            self.error = e


def test_appenduid_and_copyuid_exact_while_mail_arrives(youju_with):
    y = youju_with(message_size_limit=LIMIT)
    m = imap(y)
    bg = Deliverer(y)
    bg.start()
    try:
        appended = {}
        for i in range(15):
            typ, data = m.append("INBOX", None, None, make_msg(f"mine {i}"))
            assert typ == "OK", data
            validity, uid = code(data[0], "APPENDUID")
            appended[int(uid)] = f"mine {i}"
        for i in range(5):
            assert m.append("Drafts", "(\\Flagged)", None, make_msg(f"draft {i}"))[0] == "OK"
        m.select("Drafts")
        copied = []
        for i in range(5):
            typ, data = m._simple_command("UID", "COPY", f"{i + 1}", "INBOX")
            assert typ == "OK", data
            validity, src, dst = code(data[0], "COPYUID")
            copied.append((uid_set(src), uid_set(dst)))
        # The whole set at once: pairs in source UID order.
        typ, data = m._simple_command("UID", "COPY", "1:5", "INBOX")
        validity, src, dst = code(data[0], "COPYUID")
        copied.append((uid_set(src), uid_set(dst)))
    finally:
        bg.stop.set()
        bg.join(30)
    assert bg.error is None and bg.sent > 0, bg.error
    m.select("INBOX")
    for uid, subject in appended.items():
        assert subject_of(m, uid) == "Subject: " + subject
    for src, dst in copied:
        assert len(src) == len(dst)
        for s, d in zip(src, dst):
            assert subject_of(m, d) == f"Subject: draft {s - 1}"
    typ, data = m.uid("FETCH", str(copied[0][1][0]), "(FLAGS)")
    assert b"\\Flagged" in data[0]
    # The target must exist: TRYCREATE, and nothing is copied.
    m.select("Drafts")
    typ, data = m.copy("1", "Nowhere")
    assert typ == "NO" and b"[TRYCREATE]" in data[0]
    typ, data = m._simple_command("MOVE", "1", "Nowhere")
    assert typ == "NO" and b"[TRYCREATE]" in data[0]
    assert m.select("Drafts")[1][0] == b"5"


def test_multiappend_is_all_or_nothing(youju_with):
    y = youju_with(message_size_limit=LIMIT)
    r = raw_login(y)
    one, two = make_msg("multi one"), make_msg("multi two")
    # A second literal over APPENDLIMIT is refused before it is sent:
    # no "+", and not even the first message is stored.
    r.send(b"a APPEND Drafts (\\Seen) {%d}\r\n" % len(one))
    assert r.line().startswith(b"+ ")
    r.send(one + b" {%d}\r\n" % (LIMIT + 1))
    assert r.line() == b"a NO [TOOBIG] Literal too large"
    assert r.cmd(b"s", b"STATUS Drafts (MESSAGES UIDNEXT)")[0] == \
        b'* STATUS "Drafts" (MESSAGES 0 UIDNEXT 1)'
    # All of them: one APPENDUID with a UID set.
    r.send(b"b APPEND Drafts (\\Seen) {%d+}\r\n%s (\\Flagged $Work) {%d+}\r\n%s {%d+}\r\n%s\r\n"
           % (len(one), one, len(two), two, len(one), one))
    ok = r.until(b"b")[-1]
    validity = code(ok, "APPENDUID")[0]
    assert ok == b"b OK [APPENDUID %s 1:3] APPEND completed" % validity.encode()
    lines = r.cmd(b"f", b"EXAMINE Drafts")
    assert b"* 3 EXISTS" in lines
    lines = r.cmd(b"g", b"FETCH 1:3 (FLAGS)")
    # APPENDed, so \\Recent (RFC 3501 6.3.11), which EXAMINE shows without taking
    assert lines[:3] == [b"* 1 FETCH (FLAGS (\\Seen \\Recent))",
                         b"* 2 FETCH (FLAGS (\\Flagged \\Recent $Work))",
                         b"* 3 FETCH (FLAGS (\\Recent))"]
    # A failing message in the middle (its mailbox is gone) keeps none.
    assert r.cmd(b"c", b"APPEND Gone {%d+}\r\n%s {%d+}\r\n%s" % (len(one), one, len(two), two)
                 )[-1].startswith(b"c NO [TRYCREATE]")
    r.s.close()


def test_appendlimit_and_toobig_before_the_literal(youju_with):
    y = youju_with(message_size_limit=LIMIT)
    m = imap(y)
    assert f"APPENDLIMIT={LIMIT}" in m.capabilities
    r = raw_login(y)
    assert r.cmd(b"s", b"STATUS INBOX (APPENDLIMIT)")[0] == \
        b"* STATUS INBOX (APPENDLIMIT %d)" % LIMIT
    # Refused at the announcement: no "+", no byte of it read, and the
    # session goes on with the next command.
    r.send(b"a APPEND INBOX {%d}\r\n" % (LIMIT + 1))
    assert r.line() == b"a NO [TOOBIG] Literal too large"
    assert r.cmd(b"n", b"NOOP")[-1] == b"n OK NOOP completed"
    # Exactly the limit is fine.
    body = make_msg("big", body=b"x" * 1000 + b"\r\n")
    body += b"y" * (LIMIT - len(body))
    assert len(body) == LIMIT
    r.send(b"b APPEND INBOX {%d}\r\n" % LIMIT)
    assert r.line().startswith(b"+ ")
    r.send(body + b"\r\n")
    assert r.until(b"b")[-1].startswith(b"b OK [APPENDUID ")
    r.s.close()


def test_append_to_a_missing_mailbox_or_a_full_account_refused_before_the_literal(youju_with):
    """RFC 9051 7.5: the server may answer instead of sending "+". A
    mailbox that does not exist or a message that would pass the quota is
    answered before the client sends its bytes; the session goes on."""
    y = youju_with(message_size_limit=LIMIT)
    r = raw_login(y)
    r.send(b"a APPEND Nowhere (\\Seen) {60000}\r\n")
    assert r.line() == b"a NO [TRYCREATE] No such mailbox"
    assert r.cmd(b"n", b"NOOP")[-1] == b"n OK NOOP completed"
    # the mailbox name a literal of its own: asked for, then the message's
    # literal refused
    r.send(b"b APPEND {7}\r\n")
    assert r.line().startswith(b"+ ")
    r.send(b"Nowhere ~{60000}\r\n")
    assert r.line() == b"b NO [TRYCREATE] No such mailbox"
    # over the quota with this message: refused at once; within it, asked for
    y.cli("account", "quota", USER, "50000")
    msg = make_msg("fits", body=b"f" * 1000 + b"\r\n")
    r.send(b"c APPEND INBOX {60000}\r\n")
    assert r.line() == b"c NO [OVERQUOTA] Quota exceeded"
    r.send(b"d APPEND INBOX {%d}\r\n" % len(msg))
    assert r.line().startswith(b"+ ")
    r.send(msg + b"\r\n")
    assert r.until(b"d")[-1].startswith(b"d OK [APPENDUID ")
    # a MULTIAPPEND's later message that passes it: answered at its end,
    # nothing kept
    r.send(b"e APPEND INBOX {%d}\r\n" % len(msg))
    assert r.line().startswith(b"+ ")
    r.send(msg + b" {49000}\r\n")
    assert r.line().startswith(b"+ ")
    r.send(b"z" * 49000 + b"\r\n")
    assert r.until(b"e")[-1] == b"e NO [OVERQUOTA] Quota exceeded"
    # with LITERAL+ the bytes come anyway: answered after them
    r.send(b"f APPEND Nowhere {5+}\r\nhello\r\n")
    assert r.until(b"f")[-1] == b"f NO [TRYCREATE] No such mailbox"
    assert r.cmd(b"g", b"STATUS INBOX (MESSAGES)")[0] == b"* STATUS INBOX (MESSAGES 1)"
    # imaplib hears the NO in place of the "+"
    m = imap(y)
    typ, data = m.append("Nowhere", None, None, msg)
    assert typ == "NO" and data[0] == b"[TRYCREATE] No such mailbox"
    assert m.noop()[0] == "OK"
    r.s.close()


def test_move_is_vanished_for_a_qresync_session(youju_with):
    y = youju_with(message_size_limit=LIMIT)
    deliver(y, make_msg("v1"), make_msg("v2"), make_msg("v3"))
    watcher = raw_login(y)
    assert watcher.cmd(b"e", b"ENABLE QRESYNC")[-1].startswith(b"e OK")
    lines = watcher.cmd(b"s", b"SELECT INBOX")
    validity = re.search(rb"UIDVALIDITY (\d+)", b"\n".join(lines)).group(1)
    modseq = re.search(rb"HIGHESTMODSEQ (\d+)", b"\n".join(lines)).group(1)

    mover = raw_login(y)
    mover.cmd(b"s", b"SELECT INBOX")
    lines = mover.cmd(b"m", b"UID MOVE 1:2 Archive")
    assert re.fullmatch(rb"\* OK \[COPYUID \d+ 1:2 1:2\] Moved", lines[0]), lines
    assert lines[1:] == [b"* 1 EXPUNGE", b"* 1 EXPUNGE", b"m OK MOVE completed"]

    assert watcher.cmd(b"n", b"NOOP") == [b"* VANISHED 1:2", b"n OK NOOP completed"]
    # A later resync from the old MODSEQ learns the same.
    watcher.cmd(b"u", b"UNSELECT")
    lines = watcher.cmd(b"q", b"SELECT INBOX (QRESYNC (%s %s))" % (validity, modseq))
    assert b"* VANISHED (EARLIER) 1:2" in lines
    assert b"* 1 EXISTS" in lines
    m = imap(y)
    m.select("Archive")
    assert subject_of(m, 1) == "Subject: v1" and subject_of(m, 2) == "Subject: v2"
    watcher.s.close()
    mover.s.close()


def smtp_to_alice(y, subject):
    """Sends one message to alice; the RCPT reply's (code, text)."""
    with smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=30) as s:
        s.ehlo("client.example.org")
        s.mail("bob@example.org")
        code_, text = s.rcpt(USER)
        if code_ == 250:
            s.data(make_msg(subject))
        return code_, text


def test_smtp_refuses_a_full_mailbox_until_mail_is_expunged(youju_with):
    y = youju_with(message_size_limit=LIMIT)
    y.cli("account", "quota", USER, "2k")
    accepted = 0
    while True:
        code_, text = smtp_to_alice(y, f"fill {accepted}")
        if code_ != 250:
            break
        accepted += 1
        assert accepted < 20
    assert code_ == 452 and text == \
        b"4.2.2 <alice@example.test>: Recipient address rejected: Mailbox full"
    assert accepted >= 2
    # Submission's local delivery too; a remote recipient still goes.
    with smtplib.SMTP("127.0.0.1", y.ports["submission"], timeout=30) as s:
        s.login(USER, PASSWORD)
        s.mail(USER)
        assert s.rcpt(USER) == (452, text)
        assert s.rcpt("bob@remote.example")[0] == 250
        s.rset()
    out = y.cli("account", "list").stdout
    assert out.startswith(USER + "\tquota: used ")
    # POP3 and IMAP still work; an expunge makes room again.
    m = imap(y)
    m.select("INBOX")
    m.store("1:*", "+FLAGS", "(\\Deleted)")
    m.expunge()
    assert smtp_to_alice(y, "room again")[0] == 250
    y.cli("account", "quota", USER, "none")
    assert y.cli("account", "quota", USER).stdout.endswith("no quota\n")


def two_in_inbox(y, prefix):
    """Delivers two messages; an IMAP session with INBOX selected, and
    their size in bytes."""
    deliver(y, make_msg(prefix + "1"), make_msg(prefix + "2"))
    m = imap(y)
    m.select("INBOX")
    typ, data = m.fetch("1:2", "(RFC822.SIZE)")
    return m, sum(int(re.search(rb"RFC822.SIZE (\d+)", d).group(1)) for d in data)


def test_overquota_for_append_and_copy_not_for_move(youju_with):
    y = youju_with(message_size_limit=LIMIT)
    m, used = two_in_inbox(y, "q")
    y.cli("account", "quota", USER, str(used + 100))
    typ, data = m.append("Drafts", None, None, make_msg("big", body=b"z" * 200 + b"\r\n"))
    assert typ == "NO" and data[0] == b"[OVERQUOTA] Quota exceeded"
    typ, data = m.copy("1", "Archive")
    assert typ == "NO" and data[0] == b"[OVERQUOTA] Quota exceeded"
    assert m.status("Drafts", "(MESSAGES)")[1][0] == b'"Drafts" (MESSAGES 0)'
    assert m.status("Archive", "(MESSAGES)")[1][0] == b'"Archive" (MESSAGES 0)'
    typ, data = m._simple_command("MOVE", "1:2", "Archive")
    assert typ == "OK"
    assert m.status("Archive", "(MESSAGES)")[1][0] == b'"Archive" (MESSAGES 2)'
    # A small message still fits.
    assert m.append("Drafts", None, None, b"Subject: s\r\n\r\nx\r\n")[0] == "OK"


def test_getquotaroot_getquota_setquota(youju_with):
    y = youju_with(message_size_limit=LIMIT)
    m, used = two_in_inbox(y, "g")
    assert "QUOTA" in m.capabilities and "QUOTA=RES-STORAGE" in m.capabilities
    r = raw_login(y)
    # No limit: no quota root.
    assert r.cmd(b"a", b"GETQUOTAROOT INBOX") == [b"* QUOTAROOT INBOX",
                                                   b"a OK GETQUOTAROOT completed"]
    assert r.cmd(b"b", b'GETQUOTA ""')[-1].startswith(b"b NO [NONEXISTENT]")
    y.cli("account", "quota", USER, "1M")
    kib = (used + 1023) // 1024
    assert r.cmd(b"c", b"GETQUOTAROOT Archive") == [
        b'* QUOTAROOT "Archive" ""', b'* QUOTA "" (STORAGE %d 1024)' % kib,
        b"c OK GETQUOTAROOT completed"]
    assert r.cmd(b"d", b'GETQUOTA ""') == [b'* QUOTA "" (STORAGE %d 1024)' % kib,
                                           b"d OK GETQUOTA completed"]
    assert r.cmd(b"e", b'GETQUOTA "other"')[-1].startswith(b"e NO [NONEXISTENT]")
    assert r.cmd(b"f", b"GETQUOTAROOT Nowhere")[-1].startswith(b"f NO [NONEXISTENT]")
    assert r.cmd(b"g", b'SETQUOTA "" (STORAGE 10)') == [
        b"g NO [NOPERM] Quotas are set by the administrator"]
    # RFC 9208 units are 1024 octets: a limit under 1 KiB is 1, not 0
    # (none at all), and a limit between units rounds up like usage.
    y.cli("account", "quota", USER, "500")
    assert r.cmd(b"g2", b'GETQUOTA ""')[0] == b'* QUOTA "" (STORAGE %d 1)' % kib
    y.cli("account", "quota", USER, "1500")
    assert r.cmd(b"g3", b'GETQUOTA ""')[0] == b'* QUOTA "" (STORAGE %d 2)' % kib
    y.cli("account", "quota", USER, "1M")
    # STATUS SIZE is the mailbox's own size, quota or not; DELETED-STORAGE
    # what an expunge would give back, in KiB.
    assert r.cmd(b"h", b"STATUS INBOX (SIZE DELETED-STORAGE)")[0] == \
        b"* STATUS INBOX (SIZE %d DELETED-STORAGE 0)" % used
    m.store("1:2", "+FLAGS", "(\\Deleted)")
    assert r.cmd(b"i", b"STATUS INBOX (DELETED-STORAGE)")[0] == \
        b"* STATUS INBOX (DELETED-STORAGE %d)" % kib
    r.s.close()


def test_rename_inbox_moves_its_messages(youju_with):
    y = youju_with(message_size_limit=LIMIT)
    deliver(y, make_msg("r1"), make_msg("r2"))
    m = imap(y)
    m.select("INBOX")
    typ, data = m.rename("INBOX", "\"Old Mail\"")
    assert typ == "OK", data
    # The selected INBOX saw its messages go.
    typ, data = m.noop()
    assert m.select("INBOX")[1][0] == b"0"
    assert m.select('"Old Mail"')[1][0] == b"2"
    assert subject_of(m, 1) == "Subject: r1" and subject_of(m, 2) == "Subject: r2"
    typ, data = m.rename("INBOX", "\"Old Mail\"")
    assert typ == "NO" and b"[ALREADYEXISTS]" in data[0]
    deliver(y, make_msg("r3"))
    assert m.select("INBOX")[1][0] == b"1"
