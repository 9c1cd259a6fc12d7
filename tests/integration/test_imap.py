"""IMAP server (RFC 3501 / RFC 9051) through Python's imaplib and a raw
socket, against a real youjud on loopback."""

import imaplib
import os
import re
import smtplib
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import PASSWORD, USER, unverified


def make_msg(subject, body=b"Hello.\r\n", extra=b""):
    return (b"From: Bob <bob@example.org>\r\n"
            b"To: alice@example.test\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"Message-ID: <" + subject.replace(" ", ".").encode() + b"@example.org>\r\n"
            + extra + b"\r\n" + body)


def deliver(y, *messages):
    with smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=30) as s:
        s.ehlo("client.example.org")
        for m in messages:
            s.sendmail("bob@example.org", [USER], m)


def imap(y, login=True):
    m = imaplib.IMAP4("127.0.0.1", y.ports["imap"], timeout=20)
    if login:
        m.login(USER, PASSWORD)
    return m


class Raw:
    """IMAP over a bare socket: exact bytes out, lines back."""

    def __init__(self, port, tls=False):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if tls:
            s = unverified().wrap_socket(s)
        self.s = s
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError(self.buf)
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def send(self, data):
        self.s.sendall(data)

    def until(self, tag):
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def cmd(self, tag, text):
        self.send(tag + b" " + text + b"\r\n")
        return self.until(tag)


def test_greeting_capability_and_logout(youju):
    m = imap(youju, login=False)
    caps = m.capabilities
    assert "IMAP4REV1" in caps and "IDLE" in caps and "UIDPLUS" in caps
    assert "STARTTLS" in caps
    typ, _ = m.noop()
    assert typ == "OK"
    m.login(USER, PASSWORD)
    assert m.logout()[0] == "BYE"


def test_login_failure_is_authenticationfailed(youju):
    m = imap(youju, login=False)
    with pytest.raises(imaplib.IMAP4.error) as e:
        m.login(USER, "wrong")
    assert "AUTHENTICATIONFAILED" in str(e.value)
    m.login(USER, PASSWORD)
    m.logout()


def test_logindisabled_before_tls_when_not_secure(youju_factory):
    y = youju_factory()
    y.init()
    y.add_account(USER, PASSWORD)
    y.start(secure_loopback="no", disable_plaintext_auth="yes")
    r = Raw(y.ports["imap"])
    greeting = r.line()
    assert b"LOGINDISABLED" in greeting and b"AUTH=PLAIN" not in greeting
    lines = r.cmd(b"a", b"LOGIN alice@example.test secret-alice")
    assert lines[-1].startswith(b"a NO")
    # STARTTLS drops what was sent behind it in clear text.
    r.send(b"b STARTTLS\r\nc CAPABILITY\r\n")
    assert r.until(b"b")[-1].startswith(b"b OK")
    r.s = unverified().wrap_socket(r.s)
    r.buf = b""
    lines = r.cmd(b"d", b"CAPABILITY")
    assert not any(line.startswith(b"c ") for line in lines)
    assert b"AUTH=PLAIN" in lines[0] and b"LOGINDISABLED" not in lines[0]
    lines = r.cmd(b"e", b"LOGIN alice@example.test secret-alice")
    assert lines[-1].startswith(b"e OK")


def test_imaps_and_authenticate_plain_with_sasl_ir(youju):
    r = Raw(youju.ports["imaps"], tls=True)
    assert r.line().startswith(b"* OK")
    import base64
    ir = base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD.encode())
    lines = r.cmd(b"a", b"AUTHENTICATE PLAIN " + ir)
    assert lines[-1].startswith(b"a OK")


def test_authenticate_ended_by_a_command_instead_of_star(youju):
    """eM Client gives up on an exchange with "TAG LOGOUT" where RFC 9051
    says "*": a line with a space is no base64 response, so it cancels
    the exchange (BAD, as "*" does) and then runs as the command it is."""
    r = Raw(youju.ports["imaps"], tls=True)
    assert r.line().startswith(b"* OK")
    r.send(b"A1 AUTHENTICATE PLAIN\r\n")
    assert r.line() == b"+ "
    r.send(b"A2 LOGOUT\r\n")
    assert r.line() == b"A1 BAD Authentication cancelled"
    assert r.line().startswith(b"* BYE")
    assert r.line() == b"A2 OK LOGOUT completed"
    # "*" still cancels, and a real response still logs in.
    r = Raw(youju.ports["imaps"], tls=True)
    r.line()
    r.send(b"b AUTHENTICATE PLAIN\r\n")
    assert r.line() == b"+ "
    r.send(b"*\r\n")
    assert r.line() == b"b BAD Authentication cancelled"
    import base64
    r.send(b"c AUTHENTICATE PLAIN\r\n")
    assert r.line() == b"+ "
    r.send(base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD.encode()) + b"\r\n")
    assert r.until(b"c")[-1].startswith(b"c OK")


def test_authenticate_login_through_imaplib(youju):
    m = imap(youju, login=False)
    answers = iter([USER.encode(), PASSWORD.encode()])
    typ, _ = m.authenticate("LOGIN", lambda challenge: next(answers))
    assert typ == "OK"
    m.logout()


def test_select_list_status(youju):
    deliver(youju, make_msg("s1"), make_msg("s2"))
    m = imap(youju)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data[0] == b"2"
    assert m.untagged_responses.get("UIDVALIDITY")
    assert m.untagged_responses.get("UIDNEXT")
    typ, data = m.list()
    names = b"\n".join(data)
    assert b'"INBOX"' in names or b" INBOX" in names
    assert b"\\Sent" in names and b"\\Trash" in names
    assert b"\\HasNoChildren" in names
    typ, data = m.status("INBOX", "(MESSAGES UNSEEN UIDNEXT)")
    assert typ == "OK" and b"MESSAGES 2" in data[0] and b"UNSEEN 2" in data[0]
    typ, data = m.namespace()
    assert typ == "OK" and b'(("" "/"))' in data[0]
    typ, data = m.select("Nope")
    assert typ == "NO"


def test_create_rename_delete_subscribe(youju):
    m = imap(youju)
    assert m.create("Projects/Alpha")[0] == "OK"
    assert m.create("Projects/Alpha")[0] == "NO"
    typ, data = m.list('""', "Projects*")
    assert any(b"Projects/Alpha" in d for d in data)
    assert m.rename("Projects/Alpha", "Projects/Beta")[0] == "OK"
    assert m.subscribe("Projects/Beta")[0] == "OK"
    typ, data = m.lsub('""', "*")
    assert any(b"Projects/Beta" in d for d in data)
    assert m.unsubscribe("Projects/Beta")[0] == "OK"
    assert m.delete("Projects/Beta")[0] == "OK"
    assert m.select("Projects/Beta")[0] == "NO"
    assert m.delete("INBOX")[0] == "NO"


def test_fetch_items_and_seen(youju):
    body = b"Line one.\r\nLine two.\r\n"
    deliver(youju, make_msg("f1", body))
    m = imap(youju)
    m.select("INBOX")
    typ, data = m.fetch("1", "(FLAGS UID RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)")
    assert typ == "OK"
    text = data[0] if isinstance(data[0], bytes) else data[0][0]
    assert b"ENVELOPE (" in text and b'"f1"' in text and b"BODYSTRUCTURE (" in text
    assert b"\\Seen" not in text
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert data[0][1] == b"Subject: f1\r\n\r\n"
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]
    typ, data = m.fetch("1", "(BODY[TEXT]<5.3>)")
    assert data[0][1] == b"one"
    assert b"\\Seen" in data[0][0] or b"\\Seen" in b"".join(
        d if isinstance(d, bytes) else d[0] for d in data)
    typ, data = m.fetch("1", "(RFC822)")
    assert data[0][1].endswith(body)
    size = int(re.search(rb"RFC822.SIZE (\d+)", m.fetch("1", "(RFC822.SIZE)")[1][0]).group(1))
    assert size == len(data[0][1])
    typ, data = m.fetch("1", "(BINARY.PEEK[1] BINARY.SIZE[1])")
    assert typ == "OK"
    typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
    assert b"UID " in data[0]


def test_store_flags_keywords_and_search(youju):
    deliver(youju, make_msg("a1"), make_msg("a2"), make_msg("b3"))
    m = imap(youju)
    m.select("INBOX")
    typ, data = m.store("1", "+FLAGS", "(\\Flagged $Forwarded)")
    assert typ == "OK" and b"\\Flagged" in data[0] and b"$Forwarded" in data[0]
    typ, data = m.store("2", "+FLAGS.SILENT", "(\\Seen)")
    assert typ == "OK" and data == [None]
    assert m.search(None, "FLAGGED")[1] == [b"1"]
    assert m.search(None, "KEYWORD", "$Forwarded")[1] == [b"1"]
    assert m.search(None, "UNSEEN")[1] == [b"1 3"]
    assert m.search(None, "SUBJECT", "a")[1] == [b"1 2"]
    assert m.search(None, "OR", "SUBJECT", "a1", "SUBJECT", "b3")[1] == [b"1 3"]
    assert m.search(None, "NOT", "SUBJECT", "a")[1] == [b"3"]
    assert m.search(None, "BODY", "hello")[1] == [b"1 2 3"]
    assert m.search(None, "SINCE", "1-Jan-2000", "LARGER", "10")[1] == [b"1 2 3"]
    assert m.search(None, "HEADER", "Message-ID", "b3@")[1] == [b"3"]
    typ, data = m.uid("SEARCH", "ALL")
    assert len(data[0].split()) == 3
    typ, data = m.search(None, "RETURN", "(MIN MAX COUNT)", "ALL")
    assert b"ESEARCH" in m.untagged_responses.get("ESEARCH", [b"ESEARCH"])[0] or typ == "OK"
    typ, data = m.store("1", "-FLAGS", "(\\Flagged)")
    assert b"\\Flagged" not in data[0]


def test_expunge_close_unselect(youju):
    deliver(youju, make_msg("e1"), make_msg("e2"), make_msg("e3"))
    m = imap(youju)
    m.select("INBOX")
    m.store("2", "+FLAGS", "(\\Deleted)")
    typ, data = m.expunge()
    assert typ == "OK" and data == [b"2"]
    typ, data = m.select("INBOX")
    assert data[0] == b"2"
    m.store("1", "+FLAGS", "(\\Deleted)")
    assert m.unselect()[0] == "OK"
    assert m.select("INBOX")[1][0] == b"2"
    assert m.close()[0] == "OK"
    assert m.select("INBOX")[1][0] == b"1"


def test_append_with_flags_and_appenduid(youju):
    m = imap(youju)
    msg = make_msg("appended")
    typ, data = m.append("Drafts", "(\\Draft \\Seen)", imaplib.Time2Internaldate(time.time()), msg)
    assert typ == "OK" and b"APPENDUID" in data[0]
    typ, data = m.append("Missing", None, None, msg)
    assert typ == "NO" and b"TRYCREATE" in data[0]
    m.select("Drafts")
    typ, data = m.fetch("1", "(FLAGS BODY.PEEK[])")
    assert b"\\Draft" in data[0][0] and data[0][1] == msg
    # Keywords on APPEND, and COPY keeps flags and keywords.
    typ, data = m.append("Drafts", "(\\Flagged $Label1 NonJunk)", None, make_msg("kw"))
    assert typ == "OK"
    m.select("Drafts")
    assert m.copy("2", "Archive")[0] == "OK"
    m.select("Archive")
    typ, data = m.fetch("1", "(FLAGS)")
    for flag in (b"\\Flagged", b"$Label1", b"NonJunk"):
        assert flag in data[0]


def test_copy_and_move(youju):
    deliver(youju, make_msg("c1"), make_msg("c2"))
    m = imap(youju)
    m.select("INBOX")
    typ, data = m.copy("1", "Archive")
    assert typ == "OK" and b"COPYUID" in data[0]
    typ, data = m._simple_command("MOVE", "2", "Trash")
    assert typ == "OK"
    assert m.select("INBOX")[1][0] == b"1"
    assert m.select("Archive")[1][0] == b"1"
    assert m.select("Trash")[1][0] == b"1"
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"c2" in data[0][1]


def test_two_sessions_see_each_others_changes(youju):
    deliver(youju, make_msg("t1"), make_msg("t2"))
    a = imap(youju)
    b = imap(youju)
    a.select("INBOX")
    b.select("INBOX")
    a.store("1", "+FLAGS", "(\\Flagged)")
    a.store("2", "+FLAGS", "(\\Deleted)")
    a.expunge()
    # No EXPUNGE during FETCH: the number stays until NOOP.
    typ, data = b.fetch("1:*", "(FLAGS)")
    assert typ == "OK" and "EXPUNGE" not in b.untagged_responses
    assert any(b"\\Flagged" in d for d in data)
    b.noop()
    assert b.untagged_responses.pop("EXPUNGE") == [b"2"]
    deliver(youju, make_msg("t3"))
    typ, data = b.noop()
    assert b.untagged_responses.get("EXISTS")[-1] == b"2"
    typ, data = a.noop()
    assert a.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][1] == b"Subject: t3\r\n\r\n"


def test_idle_woken_by_smtp_and_done_pipelined(youju):
    r = Raw(youju.ports["imap"])
    r.line()
    r.cmd(b"a", b"LOGIN alice@example.test secret-alice")
    r.cmd(b"b", b"SELECT INBOX")
    r.send(b"c IDLE\r\n")
    assert r.line().startswith(b"+")
    start = time.monotonic()
    deliver(youju, make_msg("idle"))
    assert r.line() == b"* 1 EXISTS"
    assert time.monotonic() - start < 5
    # iOS: the next command right behind DONE.
    r.send(b"DONE\r\nd NOOP\r\n")
    assert r.until(b"c")[-1].startswith(b"c OK")
    assert r.until(b"d")[-1].startswith(b"d OK")


def test_idle_keepalive(youju_factory):
    y = youju_factory()
    y.init()
    y.add_account(USER, PASSWORD)
    y.start(imap_idle_notify_interval="1s")
    r = Raw(y.ports["imap"])
    r.line()
    r.cmd(b"a", b"LOGIN alice@example.test secret-alice")
    r.cmd(b"b", b"SELECT INBOX")
    r.send(b"c IDLE\r\n")
    assert r.line().startswith(b"+")
    assert r.line() == b"* OK Still here"
    r.send(b"DONE\r\n")
    assert r.until(b"c")[-1].startswith(b"c OK")


def test_bad_input_gets_bad_not_a_crash(youju):
    r = Raw(youju.ports["imap"])
    r.line()
    assert r.cmd(b"a", b"FROBNICATE")[-1].startswith(b"a BAD")
    assert r.cmd(b"b", b"SELECT INBOX")[-1].startswith(b"b BAD")
    r.cmd(b"c", b"LOGIN alice@example.test secret-alice")
    assert r.cmd(b"d", b"FETCH 1 (FLAGS)")[-1].startswith(b"d BAD")
    r.cmd(b"e", b"SELECT INBOX")
    assert r.cmd(b"f", b"FETCH x (FLAGS)")[-1].startswith(b"f BAD")
    assert r.cmd(b"g", b"FETCH 1:* (FLAGS)")[-1].startswith(b"g OK")
    assert r.cmd(b"h", b"LOGOUT")[0].startswith(b"* BYE")


def test_enable_condstore_and_unchangedsince(youju):
    deliver(youju, make_msg("m1"))
    r = Raw(youju.ports["imap"])
    r.line()
    r.cmd(b"a", b"LOGIN alice@example.test secret-alice")
    assert b"CONDSTORE" in r.cmd(b"b", b"ENABLE CONDSTORE")[0]
    lines = r.cmd(b"c", b"SELECT INBOX")
    assert any(b"HIGHESTMODSEQ" in x for x in lines)
    lines = r.cmd(b"d", b"FETCH 1 (MODSEQ)")
    modseq = int(re.search(rb"MODSEQ \((\d+)\)", lines[0]).group(1))
    lines = r.cmd(b"e", b"STORE 1 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % modseq)
    assert lines[-1].startswith(b"e OK") and b"MODSEQ" in lines[0]
    lines = r.cmd(b"f", b"STORE 1 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)" % modseq)
    assert b"MODIFIED 1" in lines[-1]
    lines = r.cmd(b"g", b"FETCH 1:* (FLAGS) (CHANGEDSINCE 0)")
    assert lines[-1].startswith(b"g OK") and b"FETCH" in lines[0]


def condstore_session(youju):
    r = Raw(youju.ports["imap"])
    r.line()
    assert r.cmd(b"a", b"LOGIN alice@example.test secret-alice")[-1].startswith(b"a OK")
    assert r.cmd(b"b", b"ENABLE CONDSTORE")[-1].startswith(b"b OK")
    assert r.cmd(b"c", b"SELECT INBOX")[-1].startswith(b"c OK")
    return r


def modseqs_of(lines, seq):
    """The MODSEQs in the untagged FETCH responses for message seq."""
    return {int(m.group(1)) for line in lines
            if line.startswith(b"* %d FETCH" % seq)
            for m in [re.search(rb"MODSEQ \((\d+)\)", line)] if m}


def test_concurrent_stores_get_distinct_modseqs_and_see_each_other(youju):
    """Sessions changing flags at once on one mailbox (the changes share
    commits): each STORE gets one MODSEQ of its own, never another's,
    increasing, and every session sees the others' last changes."""
    sessions, rounds = 6, 12
    deliver(youju, *(make_msg(f"c{i}") for i in range(sessions)))
    conns = [condstore_session(youju) for _ in range(sessions)]
    got = [[] for _ in range(sessions)]
    errors = []
    start = threading.Barrier(sessions)

    def run(i):
        r, seq = conns[i], i + 1
        try:
            start.wait(10)
            for k in range(rounds):
                op = b"+" if k % 2 == 0 else b"-"
                tag = b"s%d" % k
                lines = r.cmd(tag, b"STORE %d %sFLAGS (\\Flagged)" % (seq, op))
                assert lines[-1].startswith(tag + b" OK"), lines
                mine = modseqs_of(lines, seq)
                assert len(mine) == 1, lines	# one MODSEQ per STORE command
                got[i].append(mine.pop())
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    every = [m for g in got for m in g]
    assert len(every) == sessions * rounds and len(set(every)) == len(every)
    assert all(g == sorted(g) for g in got)
    # Each message ends as its session last left it (-FLAGS: no \Flagged),
    # with that STORE's MODSEQ, in every session's view.
    for r in conns:
        r.cmd(b"n", b"NOOP")
        lines = r.cmd(b"f", b"FETCH 1:* (FLAGS MODSEQ)")
        for i in range(sessions):
            assert modseqs_of(lines, i + 1) == {got[i][-1]}, lines
        assert not any(b"\\Flagged" in line for line in lines[:-1]), lines
    lines = condstore_session(youju).cmd(b"d", b"SELECT INBOX")
    highest = [int(m.group(1)) for line in lines
               for m in [re.search(rb"HIGHESTMODSEQ (\d+)", line)] if m]
    assert highest == [max(every)]


def test_fetch_of_many_unseen_sets_seen_in_one_change(youju):
    """FETCH 1:50 BODY[] on 50 unseen messages: each response carries
    FLAGS with \\Seen (RFC 3501 6.4.5), under CONDSTORE all with the one
    MODSEQ of the single change, and a second session finds all 50 \\Seen."""
    n = 50
    deliver(youju, *(make_msg(f"u{i}") for i in range(n)))
    r = condstore_session(youju)
    lines = r.cmd(b"f", b"FETCH 1:%d BODY[]" % n)
    assert lines[-1].startswith(b"f OK"), lines[-1]
    heads = [x for x in lines if re.match(rb"\* \d+ FETCH \(", x)]
    assert [int(x.split()[1]) for x in heads] == list(range(1, n + 1))
    # FLAGS and MODSEQ follow each literal, on the line that closes it.
    tails = [x for x in lines if b"FLAGS (" in x]
    assert len(tails) == n and all(b"\\Seen" in x for x in tails), tails
    modseqs = {int(m.group(1)) for x in tails for m in [re.search(rb"MODSEQ \((\d+)\)", x)] if m}
    assert len(modseqs) == 1, tails
    # Already \Seen: a second FETCH changes nothing and says no FLAGS.
    lines = r.cmd(b"g", b"FETCH 1:%d BODY[]" % n)
    assert lines[-1].startswith(b"g OK") and not any(b"FLAGS" in x for x in lines), lines
    other = condstore_session(youju)
    lines = other.cmd(b"h", b"FETCH 1:* (FLAGS MODSEQ)")
    flags = [x for x in lines if x.startswith(b"* ")]
    assert len(flags) == n and all(b"\\Seen" in x for x in flags), flags
    assert {int(re.search(rb"MODSEQ \((\d+)\)", x).group(1)) for x in flags} == modseqs


def test_fetch_failing_part_way_reports_the_seen_it_set(youju):
    """\\Seen is set on the whole set before the first response: when
    BINARY fails on the second message (UNKNOWN-CTE, RFC 3516), the
    messages left without a response still get their new FLAGS before
    the NO, so the client's view stays true."""
    deliver(youju, make_msg("b1"),
            make_msg("b2", extra=b"Content-Transfer-Encoding: x-uuencode\r\n"),
            make_msg("b3"))
    r = condstore_session(youju)
    lines = r.cmd(b"f", b"FETCH 1:3 BINARY[1]")
    assert lines[-1].startswith(b"f NO [UNKNOWN-CTE]"), lines
    assert lines[:2] == [b"* 1 FETCH (BINARY[1] {8}", b"Hello."], lines
    # the session was the first to select INBOX: its messages are \\Recent
    tails = [x for x in lines if b"FLAGS (\\Seen \\Recent)" in x]
    assert len(tails) == 3 and len(set(re.findall(rb"MODSEQ \((\d+)\)", b"".join(tails)))) == 1
    assert any(re.match(rb"\* 2 FETCH \(UID 2 FLAGS \(\\Seen \\Recent\) MODSEQ", x)
               for x in lines), lines
    assert any(re.match(rb"\* 3 FETCH \(UID 3 FLAGS \(\\Seen \\Recent\) MODSEQ", x)
               for x in lines), lines
    lines = condstore_session(youju).cmd(b"g", b"FETCH 1:* (FLAGS)")
    assert sum(b"\\Seen" in x for x in lines) == 3, lines


# --- real clients ---

def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "60", *args],
                          capture_output=True, timeout=120)


def test_curl_imap_fetch_and_imaps(youju):
    msg = make_msg("curl imap", b"Body by curl.\r\n")
    deliver(youju, msg)
    stored = youju.msg_cat(USER, youju.uids(USER)[0])
    cred = f"{USER}:{PASSWORD}"
    r = curl(f"imap://127.0.0.1:{youju.ports['imap']}/INBOX;UID=1", "-u", cred)
    assert r.returncode == 0, r.stderr
    assert r.stdout == stored
    r = curl(f"imaps://127.0.0.1:{youju.ports['imaps']}/INBOX;UID=1", "-k", "-u", cred)
    assert r.returncode == 0, r.stderr
    assert r.stdout == stored
    r = curl(f"imap://127.0.0.1:{youju.ports['imap']}/", "-u", cred)
    assert r.returncode == 0 and b"INBOX" in r.stdout and b"Sent" in r.stdout


def test_fetchmail_over_imap(youju, tmp_path):
    deliver(youju, make_msg("fm one"), make_msg("fm two"))
    outdir = tmp_path / "out"
    outdir.mkdir()
    rc = tmp_path / "fetchmailrc"
    rc.write_text("set no syslog\n"
                  f"poll 127.0.0.1 service {youju.ports['imap']} protocol imap "
                  "auth password\n"
                  f"  user \"{USER}\" there with password \"{PASSWORD}\" is root here\n"
                  "  nokeep sslproto ''\n"
                  f"  mda \"/bin/sh -c 'cat > {outdir}/msg.$$'\"\n")
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path))
    r = subprocess.run(["fetchmail", "-f", str(rc), "-v", "--nosyslog", "--pidfile",
                        str(tmp_path / "pid")], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    got = sorted(p.read_bytes() for p in outdir.iterdir())
    assert len(got) == 2
    assert any(b"Subject: fm one" in g for g in got) and any(b"Subject: fm two" in g for g in got)
    # nokeep: fetchmail flagged them \Deleted and expunged them.
    assert youju.uids(USER) == []


def raw_login(y):
    r = Raw(y.ports["imap"])
    r.line()
    assert r.cmd(b"a", b"LOGIN alice@example.test secret-alice")[-1].startswith(b"a OK")
    return r


def test_any_command_reports_new_mail_and_renames_follow(youju):
    m = imap(youju)
    m.create("Work")
    r = raw_login(youju)
    r.cmd(b"b", b"SELECT INBOX")
    deliver(youju, make_msg("n1"))
    lines = r.cmd(b"c", b"LIST \"\" INBOX")
    assert b"* 1 EXISTS" in lines and lines[-1].startswith(b"c OK")
    r.cmd(b"d", b"SELECT Work")
    assert m.rename("Work", "Job")[0] == "OK"
    assert m.append("Job", None, None, make_msg("w1"))[0] == "OK"
    lines = r.cmd(b"e", b"NOOP")
    assert b"* 1 EXISTS" in lines and lines[-1].startswith(b"e OK")
    assert m.delete("Job")[0] == "OK"
    lines = r.cmd(b"f", b"NOOP")
    assert lines[0].startswith(b"* BYE")


def test_mailbox_names_utf7_and_utf8_accept(youju):
    m = imap(youju)
    assert m.create("&AMk-t&AOk-")[0] == "OK"        # "Été" in modified UTF-7
    typ, data = m.list('""', "*")
    assert any(b"&AMk-t&AOk-" in d for d in data)
    r = raw_login(youju)
    assert b"UTF8=ACCEPT" in r.cmd(b"b", b"ENABLE UTF8=ACCEPT")[0]
    lines = r.cmd(b"c", "LIST \"\" \"Été\"".encode())
    assert lines[0] == "* LIST (\\HasNoChildren) \"/\" \"Été\"".encode()
    # Thunderbird sends a raw '&' once UTF8=ACCEPT is on.
    assert r.cmd(b"d", b"CREATE \"R&D\"")[-1].startswith(b"d OK")
    lines = r.cmd(b"e", b"LIST \"\" \"R&D\"")
    assert lines[0].endswith(b"\"R&D\"")
    typ, data = m.list('""', "R*")
    assert any(b"R&-D" in d for d in data)


def test_idle_sees_other_sessions_flags_and_expunges(youju):
    deliver(youju, make_msg("o1"), make_msg("o2"))
    r = raw_login(youju)
    r.cmd(b"b", b"SELECT INBOX")
    r.send(b"c IDLE\r\n")
    assert r.line().startswith(b"+")
    m = imap(youju)
    m.select("INBOX")
    m.store("1", "+FLAGS", "(\\Flagged)")
    line = r.line()
    assert line.startswith(b"* 1 FETCH") and b"\\Flagged" in line
    m.store("2", "+FLAGS", "(\\Deleted)")
    m.expunge()
    # The \Deleted flag is reported only when the idler looks before the
    # EXPUNGE commits; a message already gone is reported gone, nothing more.
    line = r.line()
    if line.startswith(b"* 2 FETCH"):
        assert b"\\Deleted" in line
        line = r.line()
    assert line == b"* 2 EXPUNGE"
    r.send(b"DONE\r\n")
    assert r.until(b"c")[-1].startswith(b"c OK")


def test_too_many_login_failures_end_the_session(youju):
    r = Raw(youju.ports["imap"])
    r.line()
    for tag in (b"a", b"b"):
        assert r.cmd(tag, b"LOGIN alice@example.test wrong")[-1].startswith(tag + b" NO")
    lines = r.cmd(b"c", b"LOGIN alice@example.test wrong")
    assert lines[0].startswith(b"* BYE") and b"AUTHENTICATIONFAILED" in lines[-1]
    with pytest.raises((EOFError, ConnectionError)):
        r.line()


def test_fetch_after_expunge_elsewhere_keeps_numbers(youju):
    deliver(youju, make_msg("k1"), make_msg("k2"), make_msg("k3"))
    r = raw_login(youju)
    r.cmd(b"b", b"SELECT INBOX")
    m = imap(youju)
    m.select("INBOX")
    m.store("2", "+FLAGS", "(\\Deleted)")
    m.expunge()
    lines = r.cmd(b"c", b"FETCH 3 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert not any(b"EXPUNGE" in x for x in lines)
    assert lines[0].startswith(b"* 3 FETCH") and lines[1] == b"Subject: k3"
    lines = r.cmd(b"d", b"SEARCH ALL")
    assert not any(b"EXPUNGE" in x for x in lines) and b"* SEARCH 1 3" in lines
    lines = r.cmd(b"e", b"NOOP")
    assert lines[0] == b"* 2 EXPUNGE"
    lines = r.cmd(b"f", b"FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert lines[0].startswith(b"* 2 FETCH") and lines[1] == b"Subject: k3"


def test_qresync_select_and_vanished(youju):
    deliver(youju, make_msg("q1"), make_msg("q2"), make_msg("q3"))
    r = raw_login(youju)
    assert b"QRESYNC" in r.cmd(b"b", b"ENABLE QRESYNC")[0]
    lines = r.cmd(b"c", b"SELECT INBOX")
    uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", b"\n".join(lines)).group(1))
    modseq = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"\n".join(lines)).group(1))
    r.cmd(b"d", b"UNSELECT")
    m = imap(youju)
    m.select("INBOX")
    m.store("1", "+FLAGS", "(\\Seen)")
    m.store("2", "+FLAGS", "(\\Deleted)")
    m.expunge()
    lines = r.cmd(b"e", b"SELECT INBOX (QRESYNC (%d %d 1:3))" % (uidvalidity, modseq))
    assert b"* VANISHED (EARLIER) 2" in lines
    assert any(x.startswith(b"* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ") for x in lines)
    assert lines[-1].startswith(b"e OK")
    lines = r.cmd(b"f", b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % modseq)
    assert lines[0] == b"* VANISHED (EARLIER) 2" and lines[-1].startswith(b"f OK")
    # With QRESYNC on, expunges come as VANISHED.
    m.store("1", "+FLAGS", "(\\Deleted)")
    m.expunge()
    lines = r.cmd(b"g", b"NOOP")
    assert b"* VANISHED 1" in lines and not any(b"EXPUNGE" in x for x in lines)
    # iOS sends CHANGEDSINCE 0.
    lines = r.cmd(b"h", b"FETCH 1:* (FLAGS) (CHANGEDSINCE 0)")
    assert lines[-1].startswith(b"h OK") and b"MODSEQ" in lines[0]


def test_list_extended_status_and_special_use(youju):
    deliver(youju, make_msg("l1"))
    r = raw_login(youju)
    lines = r.cmd(b"b", b"LIST (SPECIAL-USE) \"\" \"*\"")
    assert all(b"\\Sent" in x or b"\\Trash" in x or b"\\Drafts" in x or b"\\Junk" in x
               or b"\\Archive" in x or b"\\All" in x or x.startswith(b"b OK") for x in lines)
    assert any(b"\\Sent" in x for x in lines)
    lines = r.cmd(b"c", b"LIST \"\" \"INBOX\" RETURN (STATUS (MESSAGES UNSEEN SIZE))")
    assert lines[0].startswith(b"* LIST (") and b"INBOX" in lines[0]
    assert re.match(rb"\* STATUS INBOX \(MESSAGES 1 UNSEEN 1 SIZE \d+\)", lines[1])


def test_command_split_across_packets_and_literals(youju):
    r = Raw(youju.ports["imap"])
    r.line()
    # A slow client: the command arrives in pieces, a literal in between.
    r.send(b"a LOGIN {18}\r\n")
    assert r.line().startswith(b"+ ")
    r.send(b"alice@example.test")
    time.sleep(0.3)
    r.send(b" secret")
    time.sleep(0.3)
    r.send(b"-alice\r\n")
    assert r.until(b"a")[-1].startswith(b"a OK")
    r.send(b"b APPEND INBOX {5+}\r\nab")
    time.sleep(0.3)
    r.send(b"c\r\n\r\n")
    assert r.until(b"b")[-1].startswith(b"b OK [APPENDUID")
