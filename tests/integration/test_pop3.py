"""The POP3 server (RFC 1939, 2449, 2595, 5034) on pop3_listen and
pop3s_listen: every command and its error paths with poplib and a raw
socket, the maildrop lock, UIDL stability, and real clients downloading
(fetchmail, getmail6, curl).

Mail goes in over SMTP and is compared with what the store holds
("youju msg cat"), so RETR is checked byte for byte.
"""
import base64
import imaplib
import os
import poplib
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import PASSWORD, USER, sqlite_only, unverified

UIDL_RE = re.compile(rb"[0-9a-f]{16}")
BAD_PASSWORD = "Wr0ng-Passw0rd"


# --- helpers ---

def make_msg(subject, body=b"Hello.\r\n", extra=b""):
    return (b"From: Bob <bob@example.org>\r\n"
            b"To: alice@example.test\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"Message-ID: <" + subject.replace(" ", ".").encode() + b"@example.org>\r\n"
            + extra + b"\r\n" + body)


def deliver(y, *messages):
    """Sends each message to alice over SMTP; returns the store UIDs."""
    before = set(y.uids(USER))
    with smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=30) as s:
        s.ehlo("client.example.org")
        for m in messages:
            s.sendmail("bob@example.org", [USER], m)
    uids = [u for u in y.uids(USER) if u not in before]
    assert len(uids) == len(messages), y.msg_list(USER)
    return sorted(uids)


def pop(y, login=True):
    p = poplib.POP3("127.0.0.1", y.ports["pop3"], timeout=20)
    if login:
        p.user(USER)
        p.pass_(PASSWORD)
    return p


def pop_ssl(y, login=True):
    p = poplib.POP3_SSL("127.0.0.1", y.ports["pop3s"], timeout=20, context=unverified())
    if login:
        p.user(USER)
        p.pass_(PASSWORD)
    return p


def err_of(fn, *args):
    """The -ERR line a poplib call got."""
    with pytest.raises(poplib.error_proto) as e:
        fn(*args)
    return e.value.args[0]


class Raw:
    """A POP3 client over a bare socket, for exact bytes on the wire."""

    def __init__(self, port, tls=False):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        if tls:
            self.sock = unverified().wrap_socket(self.sock)
        self.f = self.sock.makefile("rb")
        self.greeting = self.line()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.line()

    def line(self):
        ln = self.f.readline()
        assert ln.endswith(b"\r\n"), f"no CRLF: {ln!r}"
        return ln[:-2]

    def multi(self):
        """The raw lines of a multi-line body, up to the final "."."""
        out = []
        while True:
            ln = self.f.readline()
            assert ln.endswith(b"\r\n"), f"no CRLF: {ln!r}"
            if ln == b".\r\n":
                return out
            out.append(ln)

    def login(self):
        assert self.cmd("USER " + USER).startswith(b"+OK")
        r = self.cmd("PASS " + PASSWORD)
        assert r.startswith(b"+OK"), r
        return r

    def closed(self):
        try:
            return self.f.readline() == b""
        except (ConnectionResetError, ssl.SSLError):
            return True

    def close(self):
        # The file made by makefile() holds the socket open too.
        self.f.close()
        self.sock.close()


# --- greeting, CAPA ---

def test_greeting_and_capa(youju):
    p = pop(youju, login=False)
    assert p.getwelcome().startswith(b"+OK")
    capa = p.capa()
    for name in ("TOP", "UIDL", "USER", "SASL", "RESP-CODES", "AUTH-RESP-CODE",
                 "PIPELINING", "STLS", "EXPIRE"):
        assert name in capa, capa
    assert capa["SASL"] == ["PLAIN", "LOGIN"]
    assert capa["EXPIRE"] == ["NEVER"]
    assert "LOGIN-DELAY" not in capa
    p.user(USER)
    p.pass_(PASSWORD)
    after = p.capa()
    assert "STLS" not in after and "USER" not in after and "SASL" not in after
    assert "TOP" in after and "UIDL" in after
    p.quit()


def test_capa_on_pop3s_has_no_stls(youju):
    p = pop_ssl(youju, login=False)
    capa = p.capa()
    assert "STLS" not in capa
    assert "USER" in capa and capa["SASL"] == ["PLAIN", "LOGIN"]
    p.quit()


def test_capa_expire_and_login_delay_as_configured(youju):
    youju.restart(pop3_expire=30, pop3_login_delay=120)
    p = pop(youju, login=False)
    capa = p.capa()
    assert capa["EXPIRE"] == ["30"]
    assert capa["LOGIN-DELAY"] == ["120"]
    p.quit()


# --- login ---

def test_user_pass_login_and_empty_maildrop(youju):
    p = pop(youju)
    assert p.stat() == (0, 0)
    resp, lines, _ = p.list()
    assert resp.startswith(b"+OK") and lines == []
    resp, lines, _ = p.uidl()
    assert lines == []
    assert p.noop().startswith(b"+OK")
    assert p.quit().startswith(b"+OK")


def test_login_with_bare_local_part(youju):
    p = poplib.POP3("127.0.0.1", youju.ports["pop3"], timeout=20)
    p.user("alice")
    assert p.pass_(PASSWORD).startswith(b"+OK")
    p.quit()


def test_wrong_password_is_auth_error_then_disconnect(youju):
    youju.restart(auth_failure_delay=0, auth_max_failures=3)
    p = pop(youju, login=False)
    for _ in range(2):
        p.user(USER)
        assert err_of(p.pass_, BAD_PASSWORD).startswith(b"-ERR [AUTH] ")
    p.user("nobody@example.test")
    assert err_of(p.pass_, PASSWORD).startswith(b"-ERR [AUTH] ")
    with pytest.raises((poplib.error_proto, OSError, EOFError)):
        p.noop()
    log = youju.read_log()
    assert "auth failed" in log
    assert BAD_PASSWORD not in log and PASSWORD not in log


def test_failed_login_is_delayed(youju):
    youju.restart(auth_failure_delay=1)
    p = pop(youju, login=False)
    p.user(USER)
    t = time.monotonic()
    assert err_of(p.pass_, "wrong").startswith(b"-ERR [AUTH]")
    assert time.monotonic() - t >= 0.9
    p.user(USER)
    assert p.pass_(PASSWORD).startswith(b"+OK")
    p.quit()


def test_pass_without_user(youju):
    p = pop(youju, login=False)
    assert err_of(p.pass_, PASSWORD).startswith(b"-ERR")
    # A failed PASS consumes the USER: the next PASS needs a new USER.
    p.user(USER)
    p.pass_(PASSWORD)
    p.quit()


def test_plaintext_refused_without_tls_when_loopback_is_not_secure(youju):
    youju.restart(secure_loopback="no")
    p = pop(youju, login=False)
    capa = p.capa()
    assert "STLS" in capa
    assert "USER" not in capa and "SASL" not in capa
    e = err_of(p.user, USER)
    assert e.startswith(b"-ERR [AUTH] Plaintext authentication disallowed"), e
    assert err_of(p.pass_, PASSWORD).startswith(b"-ERR [AUTH]")
    r = Raw(youju.ports["pop3"])
    assert r.cmd("AUTH PLAIN " + base64.b64encode(
        b"\0" + USER.encode() + b"\0" + PASSWORD.encode()).decode()).startswith(b"-ERR [AUTH]")
    r.close()
    # After STLS, the same session may log in.
    p.stls(unverified())
    capa = p.capa()
    assert "STLS" not in capa and "USER" in capa and "SASL" in capa
    p.user(USER)
    assert p.pass_(PASSWORD).startswith(b"+OK")
    p.quit()


def test_plaintext_allowed_when_not_disabled(youju):
    youju.restart(secure_loopback="no", disable_plaintext_auth="no")
    p = pop(youju)
    assert p.stat() == (0, 0)
    p.quit()


# --- STLS and pop3s ---

def test_stls_then_login_and_retrieve(youju):
    deliver(youju, make_msg("over tls"))
    p = pop(youju, login=False)
    assert p.stls(unverified()).startswith(b"+OK")
    assert isinstance(p.sock, ssl.SSLSocket)
    p.user(USER)
    p.pass_(PASSWORD)
    _, lines, _ = p.retr(1)
    assert b"Subject: over tls" in lines
    p.quit()


def test_stls_twice_and_after_login(youju):
    p = pop(youju, login=False)
    p.stls(unverified())
    assert err_of(p._shortcmd, "STLS").startswith(b"-ERR")
    p.user(USER)
    p.pass_(PASSWORD)
    assert err_of(p._shortcmd, "STLS").startswith(b"-ERR")
    p.quit()


def test_stls_not_offered_on_pop3s(youju):
    p = pop_ssl(youju, login=False)
    assert err_of(p._shortcmd, "STLS").startswith(b"-ERR")
    p.quit()


def test_stls_discards_pipelined_plaintext(youju):
    """Commands sent after STLS in the same packet must not be run over
    TLS (the STARTTLS injection attack)."""
    r = Raw(youju.ports["pop3"])
    r.send("STLS\r\nUSER " + USER + "\r\n")
    assert r.line().startswith(b"+OK")
    tls = unverified().wrap_socket(r.sock)
    f = tls.makefile("rb")
    tls.sendall(b"PASS " + PASSWORD.encode() + b"\r\n")
    assert f.readline().startswith(b"-ERR"), "USER from before STLS was kept"
    tls.close()


def test_pop3s_login_and_retrieve(youju):
    deliver(youju, make_msg("implicit tls"))
    p = pop_ssl(youju)
    assert p.stat()[0] == 1
    _, lines, _ = p.retr(1)
    assert b"Subject: implicit tls" in lines
    p.quit()


# --- SASL ---

def plain(authz=b"", user=USER.encode(), pw=PASSWORD.encode()):
    return base64.b64encode(authz + b"\0" + user + b"\0" + pw).decode()


def test_auth_plain_with_initial_response(youju):
    r = Raw(youju.ports["pop3"])
    assert r.cmd("AUTH PLAIN " + plain()).startswith(b"+OK")
    assert r.cmd("STAT") == b"+OK 0 0"
    assert r.cmd("QUIT").startswith(b"+OK")


def test_auth_plain_with_continuation(youju):
    r = Raw(youju.ports["pop3"])
    assert r.cmd("AUTH PLAIN") == b"+ "
    assert r.cmd(plain()).startswith(b"+OK")
    r.close()


def test_auth_plain_authzid(youju):
    youju.restart(auth_failure_delay=0)
    r = Raw(youju.ports["pop3"])
    assert r.cmd("AUTH PLAIN " + plain(authz=USER.encode())).startswith(b"+OK")
    r.close()
    r = Raw(youju.ports["pop3"])
    assert r.cmd("AUTH PLAIN " + plain(authz=b"bob@example.test")).startswith(b"-ERR [AUTH]")
    r.close()


def test_auth_login(youju):
    r = Raw(youju.ports["pop3"])
    assert r.cmd("AUTH LOGIN") == b"+ VXNlcm5hbWU6"
    assert r.cmd(base64.b64encode(USER.encode()).decode()) == b"+ UGFzc3dvcmQ6"
    assert r.cmd(base64.b64encode(PASSWORD.encode()).decode()).startswith(b"+OK")
    r.close()
    r = Raw(youju.ports["pop3"])
    assert r.cmd("AUTH LOGIN " + base64.b64encode(USER.encode()).decode()) == b"+ UGFzc3dvcmQ6"
    assert r.cmd(base64.b64encode(PASSWORD.encode()).decode()).startswith(b"+OK")
    r.close()


def test_auth_errors(youju):
    youju.restart(auth_failure_delay=0, auth_max_failures=10)
    r = Raw(youju.ports["pop3"])
    assert r.cmd("AUTH") == b"+OK Mechanisms follow"
    assert r.multi() == [b"PLAIN\r\n", b"LOGIN\r\n"]
    assert r.cmd("AUTH CRAM-MD5").startswith(b"-ERR")
    assert r.cmd("AUTH PLAIN") == b"+ "
    assert r.cmd("*") == b"-ERR Authentication cancelled"
    assert r.cmd("AUTH PLAIN") == b"+ "
    assert r.cmd("!!!!").startswith(b"-ERR")
    assert r.cmd("AUTH PLAIN ====").startswith(b"-ERR")
    assert r.cmd("AUTH PLAIN " + plain(pw=b"wrong")).startswith(b"-ERR [AUTH]")
    assert r.cmd("AUTH PLAIN =").startswith(b"-ERR [AUTH]")
    assert r.cmd("AUTH LOGIN") == b"+ VXNlcm5hbWU6"
    assert r.cmd("*") == b"-ERR Authentication cancelled"
    # Still usable afterwards.
    assert r.cmd("AUTH PLAIN " + plain()).startswith(b"+OK")
    assert r.cmd("AUTH PLAIN " + plain()).startswith(b"-ERR")
    r.close()


def test_auth_continuation_lines_bad_or_too_long(youju):
    # The answer to "+ " is read under POP3's AUTH line limit (2048 with
    # CRLF), not the larger SASL one; a bad or long line is refused in
    # POP3's terms and the session goes on.
    youju.restart(auth_failure_delay=0, auth_max_failures=10)
    r = Raw(youju.ports["pop3"])
    assert r.cmd("AUTH PLAIN") == b"+ "
    assert r.cmd("AAAA AAAA") == b"-ERR Invalid base64 data in the response"
    assert r.cmd("AUTH PLAIN") == b"+ "
    assert r.cmd("A" * 3000) == b"-ERR Invalid base64 data in the response"
    assert r.cmd("AUTH LOGIN") == b"+ VXNlcm5hbWU6"
    assert r.cmd(base64.b64encode(USER.encode()).decode()) == b"+ UGFzc3dvcmQ6"
    assert r.cmd(base64.b64encode(PASSWORD.encode()).decode()).startswith(b"+OK")
    assert r.cmd("STAT") == b"+OK 0 0"
    r.close()


# --- the maildrop ---

def test_stat_list_uidl_match_the_store(youju):
    uids = deliver(youju, make_msg("one"), make_msg("two", (b"x" * 70 + b"\r\n") * 80),
                   make_msg("three"))
    sizes = [len(youju.msg_cat(USER, u)) for u in uids]
    p = pop(youju)
    assert p.stat() == (3, sum(sizes))
    resp, lines, _ = p.list()
    assert lines == [f"{i + 1} {s}".encode() for i, s in enumerate(sizes)]
    assert p.list(2) == f"+OK 2 {sizes[1]}".encode()
    resp, lines, _ = p.uidl()
    ids = [ln.split()[1] for ln in lines]
    assert [ln.split()[0] for ln in lines] == [b"1", b"2", b"3"]
    assert all(UIDL_RE.fullmatch(i) for i in ids) and len(set(ids)) == 3
    assert p.uidl(3).split()[2] == ids[2]
    p.quit()


def test_retr_is_byte_exact(youju):
    body = (b"first line\r\n"
            b".starts with a dot\r\n"
            b"..two dots\r\n"
            b".\r\n"
            b" . \r\n"
            b"tab\tand 8bit \xc3\xa9\r\n"
            b"\r\n"
            b"last line without anything special\r\n")
    (uid,) = deliver(youju, make_msg("exact", body))
    stored = youju.msg_cat(USER, uid)
    p = pop(youju)
    resp, lines, octets = p.retr(1)
    assert resp == f"+OK {len(stored)} octets".encode()
    assert b"\r\n".join(lines) + b"\r\n" == stored
    assert octets == len(stored)
    p.quit()


def test_retr_wire_is_dot_stuffed(youju):
    body = b".hidden\r\n..two\r\n.\r\nend\r\n"
    (uid,) = deliver(youju, make_msg("stuffing", body))
    stored = youju.msg_cat(USER, uid)
    r = Raw(youju.ports["pop3"])
    r.login()
    assert r.cmd("RETR 1").startswith(b"+OK")
    wire = b"".join(r.multi())
    assert wire.endswith(b"\r\n...two\r\n..\r\nend\r\n")
    assert b"\r\n..hidden\r\n" in wire
    unstuffed = b"".join(ln[1:] if ln.startswith(b".") else ln
                         for ln in wire.splitlines(keepends=True))
    assert unstuffed == stored
    r.close()


def test_top(youju):
    body = b"b1\r\n.b2\r\nb3\r\nb4\r\n"
    (uid,) = deliver(youju, make_msg("top", body))
    stored = youju.msg_cat(USER, uid)
    header = stored[:stored.index(b"\r\n\r\n") + 2]
    p = pop(youju)
    _, lines, _ = p.top(1, 0)
    assert b"\r\n".join(lines) + b"\r\n" == header + b"\r\n"
    _, lines, _ = p.top(1, 2)
    assert b"\r\n".join(lines) + b"\r\n" == header + b"\r\nb1\r\n.b2\r\n"
    _, lines, _ = p.top(1, 1000)
    assert b"\r\n".join(lines) + b"\r\n" == stored
    assert err_of(p.top, 2, 1).startswith(b"-ERR")
    assert err_of(p._shortcmd, "TOP 1").startswith(b"-ERR Syntax")
    assert err_of(p._shortcmd, "TOP 1 -1").startswith(b"-ERR Syntax")
    p.quit()


def test_large_message_is_streamed(youju):
    line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"
    body = line * (6 * 1024 * 1024 // len(line)) + b".dot line at the end\r\n"
    (uid,) = deliver(youju, make_msg("large", body))
    stored = youju.msg_cat(USER, uid)
    p = pop(youju)
    resp, lines, octets = p.retr(1)
    assert octets == len(stored)
    assert b"\r\n".join(lines) + b"\r\n" == stored
    p.quit()


def test_dele_only_at_quit(youju):
    uids = deliver(youju, make_msg("a"), make_msg("b"), make_msg("c"))
    p = pop(youju)
    assert p.dele(2).startswith(b"+OK")
    assert p.stat()[0] == 2
    assert err_of(p.dele, 2).startswith(b"-ERR")
    assert err_of(p.retr, 2).startswith(b"-ERR")
    assert err_of(p.list, 2).startswith(b"-ERR")
    assert err_of(p.uidl, 2).startswith(b"-ERR")
    assert err_of(p.top, 2, 0).startswith(b"-ERR")
    _, lines, _ = p.list()
    assert [ln.split()[0] for ln in lines] == [b"1", b"3"]
    _, lines, _ = p.uidl()
    assert [ln.split()[0] for ln in lines] == [b"1", b"3"]
    # Not yet removed from the store, for IMAP or anyone.
    assert youju.uids(USER) == uids
    # RSET brings it back.
    assert p.rset().startswith(b"+OK")
    assert p.stat()[0] == 3
    p.dele(1)
    p.dele(3)
    assert youju.uids(USER) == uids
    resp = p.quit()
    assert resp.startswith(b"+OK") and b"2 messages deleted" in resp
    assert youju.uids(USER) == [uids[1]]
    p = pop(youju)
    assert p.stat()[0] == 1
    _, lines, _ = p.retr(1)
    assert b"Subject: b" in lines
    p.quit()


def test_no_update_without_quit(youju):
    uids = deliver(youju, make_msg("kept"))
    r = Raw(youju.ports["pop3"])
    r.login()
    assert r.cmd("DELE 1").startswith(b"+OK")
    r.close()
    time.sleep(0.3)
    assert youju.uids(USER) == uids
    # And the lock was released although the client just went away.
    p = pop(youju)
    assert p.stat()[0] == 1
    p.quit()


def test_message_numbers_and_ranges(youju):
    deliver(youju, make_msg("only"))
    p = pop(youju)
    for n in (0, 2, 4294967295):
        assert err_of(p.retr, n).startswith(b"-ERR There is no message")
        assert err_of(p.list, n).startswith(b"-ERR")
        assert err_of(p.dele, n).startswith(b"-ERR")
    assert err_of(p._shortcmd, "RETR 4294967296").startswith(b"-ERR Syntax")
    assert err_of(p._shortcmd, "RETR one").startswith(b"-ERR Syntax")
    assert err_of(p._shortcmd, "RETR").startswith(b"-ERR Syntax")
    assert err_of(p._shortcmd, "LIST 1 2").startswith(b"-ERR Syntax")
    assert err_of(p._shortcmd, "STAT now").startswith(b"-ERR Syntax")
    p.quit()


def test_uidl_stable_and_never_reused(youju):
    deliver(youju, make_msg("u1"), make_msg("u2"))
    p = pop(youju)
    _, first, _ = p.uidl()
    p.dele(1)
    p.quit()
    deliver(youju, make_msg("u3"))
    youju.restart()
    p = pop(youju)
    _, second, _ = p.uidl()
    p.quit()
    old = [ln.split()[1] for ln in first]
    new = [ln.split()[1] for ln in second]
    assert new[0] == old[1], "UIDL of a kept message changed"
    assert new[1] not in old, "UIDL reused"
    assert len(second) == 2


# --- states and bad input ---

def test_commands_in_the_wrong_state(youju):
    r = Raw(youju.ports["pop3"])
    for c in ("STAT", "LIST", "UIDL", "RETR 1", "DELE 1", "TOP 1 1", "RSET", "NOOP"):
        assert r.cmd(c) == b"-ERR " + c.split()[0].encode() + b" is not allowed before login"
    r.login()
    for c in ("USER " + USER, "PASS x", "AUTH PLAIN", "STLS"):
        assert r.cmd(c).startswith(b"-ERR"), c
    assert r.cmd("USER x") == b"-ERR USER is not allowed after login"
    assert r.cmd("STAT") == b"+OK 0 0"
    r.close()


def test_unknown_commands_and_long_lines(youju):
    r = Raw(youju.ports["pop3"])
    assert r.cmd("HELO") == b"-ERR Unknown command"
    assert r.cmd("APOP alice 0123456789abcdef0123456789abcdef") == b"-ERR Unknown command"
    assert r.cmd("") == b"-ERR Unknown command"
    assert r.cmd("USER " + "a" * 300) == b"-ERR Command line too long"
    assert r.cmd("X" * 10000) == b"-ERR Command line too long"
    assert r.cmd("US\x00ER a").startswith(b"-ERR")
    # The session goes on.
    r.login()
    assert r.cmd("stat") == b"+OK 0 0"
    r.close()


def test_too_many_bad_commands_disconnect(youju):
    r = Raw(youju.ports["pop3"])
    for _ in range(19):
        assert r.cmd("BOGUS") == b"-ERR Unknown command"
    assert r.cmd("BOGUS") == b"-ERR Unknown command"
    assert r.line().startswith(b"-ERR Too many bad commands")
    assert r.closed()


def test_pipelining(youju):
    deliver(youju, make_msg("p1"), make_msg("p2"))
    r = Raw(youju.ports["pop3"])
    r.send(f"USER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nLIST\r\nRETR 1\r\nUIDL 2\r\n"
           "DELE 1\r\nNOOP\r\nSTAT\r\n")
    assert r.line().startswith(b"+OK")
    assert r.line().startswith(b"+OK")
    assert r.line().startswith(b"+OK 2 ")
    assert r.line().startswith(b"+OK")
    assert len(r.multi()) == 2
    assert r.line().startswith(b"+OK")
    assert b"Subject: p1\r\n" in r.multi()
    assert UIDL_RE.fullmatch(r.line().split()[2])
    assert r.line().startswith(b"+OK")
    assert r.line() == b"+OK"
    assert r.line().startswith(b"+OK 1 ")
    r.close()


def test_idle_timeout_no_update(youju):
    uids = deliver(youju, make_msg("idle"))
    youju.restart(pop3_timeout=2)
    r = Raw(youju.ports["pop3"])
    r.login()
    assert r.cmd("DELE 1").startswith(b"+OK")
    time.sleep(3)
    # A farewell line is optional (RFC 1939 asks only for the close).
    last = r.f.readline()
    assert last in (b"", b"-ERR Disconnected for inactivity\r\n"), last
    assert r.closed()
    assert youju.uids(USER) == uids


def test_quit_before_login(youju):
    r = Raw(youju.ports["pop3"])
    assert r.cmd("QUIT").startswith(b"+OK")
    assert r.closed()


# --- the lock, LOGIN-DELAY, EXPIRE ---

def test_second_session_gets_in_use(youju):
    deliver(youju, make_msg("locked"))
    first = pop(youju)
    second = pop(youju, login=False)
    second.user(USER)
    assert err_of(second.pass_, PASSWORD).startswith(b"-ERR [IN-USE]")
    # pop3s too: the lock is per account, not per listener.
    third = pop_ssl(youju, login=False)
    assert err_of(third._shortcmd, "AUTH PLAIN " + plain()).startswith(b"-ERR [IN-USE]")
    first.quit()
    second.user(USER)
    assert second.pass_(PASSWORD).startswith(b"+OK")
    assert second.stat()[0] == 1
    second.quit()
    third.close()


def test_login_delay(youju):
    youju.restart(pop3_login_delay=60)
    p = pop(youju)
    p.quit()
    p = pop(youju, login=False)
    p.user(USER)
    assert err_of(p.pass_, PASSWORD).startswith(b"-ERR [LOGIN-DELAY]")
    p.quit()


def test_expire_zero_deletes_retrieved(youju):
    uids = deliver(youju, make_msg("x1"), make_msg("x2"), make_msg("x3"))
    youju.restart(pop3_expire=0)
    p = pop(youju)
    p.retr(1)
    p.top(2, 0)
    p.quit()
    assert youju.uids(USER) == uids[1:]


def blob_path(y, uid):
    """The file of alice's INBOX message uid, read from the database."""
    import sqlite3
    db = sqlite3.connect(os.path.join(y.data_dir, "youju.db"), timeout=10)
    try:
        (blob_id,) = db.execute(
            "SELECT m.blob_id FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id"
            " JOIN accounts a ON a.id = b.account_id"
            " WHERE a.address = ? AND b.name = 'INBOX' AND m.uid = ?", (USER, uid)).fetchone()
    finally:
        db.close()
    return os.path.join(y.data_dir, "blobs", blob_id)


@sqlite_only("truncates a blob file")
def test_retr_of_a_short_blob_fails_and_keeps_the_message(youju):
    """A blob shorter than its recorded size is refused before +OK, is not
    counted as retrieved, and EXPIRE 0 does not delete it."""
    uids = deliver(youju, make_msg("short", b"x" * 5000 + b"\r\n"), make_msg("fine"))
    path = blob_path(youju, uids[0])
    os.truncate(path, os.path.getsize(path) // 2)
    youju.restart(pop3_expire=0)
    p = pop(youju)
    assert err_of(p.retr, 1).startswith(b"-ERR [SYS/PERM]")
    p.retr(2)
    p.quit()
    assert youju.uids(USER) == uids[:1]


def test_retrieved_messages_become_seen(youju):
    """What POP3 downloaded and kept is \\Seen for every other client; TOP
    and a session that ends without QUIT change nothing."""
    uids = deliver(youju, make_msg("r1"), make_msg("r2"), make_msg("r3"))

    def flags():
        return {int(line.split()[0]): "\\Seen" in line.split()[3:]
                for line in youju.msg_list(USER).splitlines()}

    p = pop(youju)
    p.retr(1)
    p.sock.shutdown(socket.SHUT_RDWR)   # no QUIT: no UPDATE state
    p.file.close()
    p.sock.close()
    assert not any(flags().values())
    deadline = time.monotonic() + 10
    while True:                         # the server notices the close at once, or nearly
        try:
            p = pop(youju)
            break
        except poplib.error_proto as e:
            assert b"[IN-USE]" in e.args[0] and time.monotonic() < deadline, e
            time.sleep(0.05)
    p.retr(1)
    p.top(2, 0)
    p.retr(3)
    p.dele(3)
    p.quit()
    assert flags() == {uids[0]: True, uids[1]: False}


def test_log_lines(youju):
    deliver(youju, make_msg("logged"))
    p = pop(youju)
    p.retr(1)
    p.dele(1)
    p.quit()
    log = youju.read_log()
    assert re.search(r"pop3: session=\S+ login user=alice@example\.test method=USER", log), log
    assert re.search(r"pop3: session=\S+ logout user=alice@example\.test reason=quit "
                     r"retr=1 top=0 dele=1", log), log
    assert PASSWORD not in log


# --- real clients ---

def fetchmail(y, tmp, extra, keep, service=None):
    outdir = os.path.join(tmp, "out")
    os.makedirs(outdir, exist_ok=True)
    rc = os.path.join(tmp, "fetchmailrc")
    with open(rc, "w") as f:
        f.write("set no syslog\n"
                f"poll 127.0.0.1 service {service or y.ports['pop3']} protocol pop3 "
                "auth password\n"
                f"  user \"{USER}\" there with password \"{PASSWORD}\" is root here\n"
                f"  {'keep' if keep else 'nokeep'} {extra}\n"
                f"  mda \"/bin/sh -c 'cat > {outdir}/msg.$$'\"\n")
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=tmp)
    r = subprocess.run(["fetchmail", "-f", rc, "-v", "--nosyslog", "--pidfile",
                        os.path.join(tmp, "pid")], env=env, capture_output=True,
                       text=True, timeout=120)
    msgs = []
    for name in sorted(os.listdir(outdir)):
        with open(os.path.join(outdir, name), "rb") as f:
            msgs.append(f.read())
        os.unlink(os.path.join(outdir, name))
    return r, msgs


@pytest.mark.parametrize("keep", [True, False])
def test_fetchmail(youju, tmp_path, keep):
    uids = deliver(youju, make_msg("fm one", b".dotted\r\nplain\r\n"), make_msg("fm two"))
    tmp = str(tmp_path)
    r, msgs = fetchmail(youju, tmp, "sslproto ''", keep)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(msgs) == 2, r.stdout + r.stderr
    joined = b"".join(msgs)
    assert b"Subject: fm one" in joined and b"Subject: fm two" in joined
    assert b"\n.dotted\r\n" in joined or b"\n.dotted\n" in joined
    if keep:
        assert youju.uids(USER) == uids
    else:
        assert youju.uids(USER) == []


def test_fetchmail_stls_and_ssl(youju, tmp_path):
    deliver(youju, make_msg("fm tls"))
    tmp = str(tmp_path)
    r, msgs = fetchmail(youju, tmp, "sslproto tls1.2+ no sslcertck", keep=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "STLS" in r.stdout + r.stderr
    assert len(msgs) == 1 and b"Subject: fm tls" in msgs[0]
    # fetchall: the first run's keep made fetchmail remember the message.
    r, msgs = fetchmail(youju, tmp, "ssl no sslcertck fetchall", keep=False,
                        service=youju.ports["pop3s"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(msgs) == 1 and b"Subject: fm tls" in msgs[0]
    assert youju.uids(USER) == []


def getmail(y, tmp, retriever, port, dest, delete, read_all=True):
    gdir = os.path.join(tmp, "getmail")
    os.makedirs(gdir, exist_ok=True)
    rc = os.path.join(gdir, "rc")
    with open(rc, "w") as f:
        f.write("[retriever]\n"
                f"type = {retriever}\n"
                "server = 127.0.0.1\n"
                f"port = {port}\n"
                f"username = {USER}\n"
                f"password = {PASSWORD}\n"
                "\n[destination]\n" + dest +
                "\n[options]\n"
                "verbose = 2\n"
                f"delete = {'true' if delete else 'false'}\n"
                f"read_all = {'true' if read_all else 'false'}\n")
    # getmail refuses to deliver as root: run it as nobody.
    subprocess.run(["chown", "-R", "nobody:nogroup", tmp], check=True)
    try:
        return subprocess.run(["getmail", "--getmaildir", gdir, "--rcfile", rc],
                              capture_output=True, text=True, timeout=60, user="nobody",
                              group="nogroup", env=dict(os.environ, HOME=tmp))
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"getmail hung: {e.stdout!r}\n--- youjud log:\n"
                             + y.read_log()[-4000:])


@pytest.fixture
def nobody_dir():
    """A directory that the user nobody can reach and own."""
    d = tempfile.mkdtemp(prefix="youju-pop3-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def maildir_msgs(path):
    out = []
    for sub in ("new", "cur"):
        for name in sorted(os.listdir(os.path.join(path, sub))):
            with open(os.path.join(path, sub, name), "rb") as f:
                out.append(f.read())
    return out


def test_getmail_maildir_keep_then_delete(youju, nobody_dir):
    uids = deliver(youju, make_msg("gm one", b".dot\r\nx\r\n"), make_msg("gm two"))
    tmp = nobody_dir
    md = os.path.join(tmp, "Maildir")
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(md, sub))
    dest = f"type = Maildir\npath = {md}/\n"
    # Keep, and only new mail: a second run finds nothing new (UIDLs).
    r = getmail(youju, tmp, "SimplePOP3Retriever", youju.ports["pop3"], dest,
                delete=False, read_all=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(maildir_msgs(md)) == 2
    assert youju.uids(USER) == uids
    r = getmail(youju, tmp, "SimplePOP3Retriever", youju.ports["pop3"], dest,
                delete=False, read_all=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(maildir_msgs(md)) == 2, "already-seen messages were fetched again"
    # Now delete.
    r = getmail(youju, tmp, "SimplePOP3Retriever", youju.ports["pop3"], dest, delete=True)
    assert r.returncode == 0, r.stdout + r.stderr
    msgs = maildir_msgs(md)
    assert len(msgs) == 4
    assert youju.uids(USER) == []
    stored_bodies = b"".join(msgs)
    assert b"Subject: gm one" in stored_bodies and b"\n.dot\n" in stored_bodies.replace(
        b"\r\n", b"\n")


def test_getmail_ssl_mboxrd(youju, nobody_dir):
    deliver(youju, make_msg("gm ssl", b"From here\r\n>From there\r\n"))
    tmp = nobody_dir
    mbox = os.path.join(tmp, "mbox")
    open(mbox, "wb").close()
    r = getmail(youju, tmp, "SimplePOP3SSLRetriever", youju.ports["pop3s"],
                f"type = Mboxrd\npath = {mbox}\n", delete=True)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(mbox, "rb") as f:
        data = f.read()
    assert b"Subject: gm ssl" in data
    assert b"\n>From here\n" in data and b"\n>>From there\n" in data
    assert youju.uids(USER) == []


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "60", *args],
                          capture_output=True, timeout=120)


def test_curl_list_and_retr(youju):
    uids = deliver(youju, make_msg("curl one", b".dot\r\n"), make_msg("curl two"))
    stored = youju.msg_cat(USER, uids[0])
    url = f"pop3://127.0.0.1:{youju.ports['pop3']}/"
    cred = f"{USER}:{PASSWORD}"
    r = curl(url, "-u", cred)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"1 {len(stored)}".encode()
    r = curl(url + "1", "-u", cred)
    assert r.returncode == 0, r.stderr
    assert r.stdout == stored
    for opts in (["--login-options", "AUTH=LOGIN"], ["--login-options", "AUTH=PLAIN"],
                 ["--sasl-ir"]):
        r = curl(url + "2", "-u", cred, *opts)
        assert r.returncode == 0, (opts, r.stderr)
        assert b"Subject: curl two" in r.stdout
    # A custom command: DELE, without a body.
    r = curl(url + "1", "-u", cred, "-X", "DELE", "-I")
    assert r.returncode == 0, r.stderr
    assert youju.uids(USER) == uids[1:]
    r = curl(url, "-u", f"{USER}:wrong")
    assert r.returncode != 0


def test_curl_tls(youju):
    (uid,) = deliver(youju, make_msg("curl tls"))
    stored = youju.msg_cat(USER, uid)
    cred = f"{USER}:{PASSWORD}"
    r = curl(f"pop3://127.0.0.1:{youju.ports['pop3']}/1", "--ssl-reqd", "-k", "-u", cred)
    assert r.returncode == 0, r.stderr
    assert r.stdout == stored
    r = curl(f"pop3s://127.0.0.1:{youju.ports['pop3s']}/1", "-k", "-u", cred)
    assert r.returncode == 0, r.stderr
    assert r.stdout == stored


# --- the same INBOX over IMAP ---

def imap_or_skip(y):
    try:
        m = imaplib.IMAP4("127.0.0.1", y.ports["imap"], timeout=10)
        m.login(USER, PASSWORD)
    except (OSError, EOFError, imaplib.IMAP4.error) as e:
        pytest.skip(f"no IMAP server to check against: {e!r}")
    return m


def test_pop3_deletions_are_gone_for_imap(youju):
    deliver(youju, make_msg("i1"), make_msg("i2"))
    m = imap_or_skip(youju)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data[0] == b"2"
    p = pop(youju)
    p.dele(1)
    p.quit()
    m.close()
    typ, data = m.select("INBOX")
    assert data[0] == b"1"
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: i2" in data[0][1]
    m.logout()


def test_imap_keeps_working_while_pop3_holds_the_maildrop(youju):
    deliver(youju, make_msg("h1"), make_msg("h2"))
    p = pop(youju)
    m = imap_or_skip(youju)
    m.select("INBOX")
    m.store("1", "+FLAGS", "(\\Deleted)")
    typ, _ = m.expunge()
    assert typ == "OK"
    m.logout()
    # POP3 numbers stay as they were at login; the expunged one is gone.
    assert p.stat()[0] == 2
    e = err_of(p.retr, 1)
    assert e.startswith(b"-ERR") and b"removed" in e
    _, lines, _ = p.retr(2)
    assert b"Subject: h2" in lines
    p.dele(1)
    p.dele(2)
    assert p.quit().startswith(b"+OK")
    assert youju.uids(USER) == []
