"""Instances that send to each other: youjud A (127.0.0.2) sends to B
(127.0.0.3) and C (127.0.0.4), found through MX records that a real nsd on
loopback serves. Every instance listens for SMTP on the same port number
on its own address, which A's smtp_port names. Shared by test_queue and
test_bounce, with the fake MX servers tests send to."""
import select
import smtplib
import socket
import threading
import time

import pytest

from conftest import free_port
from dnsserver import DnsServer
from test_smtp_roles import sql

SENDER = "alice@a.test"
SENDER_PW = "secret-alice"
BOB = "bob@b.test"
CAROL = "carol@c.test"

ZONES = {
    "b.test": "@ MX 10 mx.b.test.\nmx A 127.0.0.3\n",
    "c.test": "@ MX 10 mx.c.test.\nmx A 127.0.0.4\n",
    "null.test": "@ MX 0 .\n",
}

# Quick retries so a test sees a second attempt within seconds.
FAST = {"queue_run_delay": "1s", "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
        "smtp_timeout": "10s", "smtp_connect_timeout": "5s"}


@pytest.fixture
def net(youju_factory):
    """dns, port and a factory of the three instances."""
    with DnsServer(ZONES) as dns:
        port = free_port()

        def make(name, ip, accounts, **overrides):
            y = youju_factory(domain=f"{name}.test", hostname=f"mx.{name}.test")
            y.init()
            for address, pw in accounts:
                y.add_account(address, pw)
            y.start(smtp_listen=f"{ip}:{port}", dns_servers=dns.spec, smtp_port=port,
                    **{**FAST, **overrides})
            return y

        yield make


def wait_uids(y, account, n, timeout=30.0, mailbox=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        uids = y.uids(account, mailbox)
        if len(uids) >= n:
            return uids
        time.sleep(0.2)
    raise AssertionError(f"{account} has {len(y.uids(account, mailbox))} of {n} messages:\n"
                         + y.read_log()[-4000:])


def wait_queue(y, query, want, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = sql(y, query)
        if got == want:
            return
        time.sleep(0.2)
    raise AssertionError(f"{query}: {sql(y, query)} != {want}\n" + y.read_log()[-4000:])


def submit(a, rcpts, body, **kw):
    with smtplib.SMTP("127.0.0.1", a.ports["submission"], timeout=30) as s:
        s.login(SENDER, SENDER_PW)
        assert s.sendmail(SENDER, rcpts, body, **kw) == {}


def sender_a(net, **overrides):
    """A sends from its own address (smtp_bind_address)."""
    return net("a", "127.0.0.2", [(SENDER, SENDER_PW)], smtp_bind_address="127.0.0.2",
               **overrides)


class FakeMx:
    """A minimal SMTP server on 127.0.0.3:port without SMTPUTF8 or
    8BITMIME (and the other EHLO keywords, if any, of extensions), keeping
    every byte it receives."""

    def __init__(self, port, extensions=()):
        self.ehlo = b"".join(b"250-" + e.encode() + b"\r\n" for e in extensions)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.3", port))
        self.sock.listen(5)
        self.sock.settimeout(30)
        self.data = b""
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, _ = self.sock.accept()
        f = conn.makefile("rb")
        conn.sendall(b"220 fake ESMTP\r\n")
        in_data = False
        for line in f:
            self.data += line
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    conn.sendall(b"250 2.0.0 taken\r\n")
                continue
            verb = line[:4].upper()
            if verb == b"EHLO":
                conn.sendall(b"250-fake\r\n" + self.ehlo + b"250 PIPELINING\r\n")
            elif verb == b"DATA":
                in_data = True
                conn.sendall(b"354 go\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                break
            else:
                conn.sendall(b"250 2.0.0 ok\r\n")
        conn.close()

    def close(self):
        self.sock.close()


class Mx:
    """An SMTP server on host:port (port 0: a free one, then in `port`)
    with PIPELINING that serves any number of connections and counts
    them, their MAIL commands and the messages taken (and the Subject
    lines of their contents, in `subjects`).
    slow: seconds it takes over the content before its final reply
    (it starts reading it after half of them).
    hold: MAIL and RCPT replies wait for DATA (as a pipelining client
    lets them); a client that waits for them gets them after 3 s, and
    `waited` says so."""

    def __init__(self, port, slow=0.0, hold=False, host="127.0.0.3"):
        self.slow = slow
        self.hold = hold
        self.connections = 0
        self.mails = 0
        self.messages = 0
        self.subjects = []
        self.waited = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.5)
        self.stopping = False
        self.thread = threading.Thread(target=self.accept, daemon=True)
        self.thread.start()

    def accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def line(self, conn, buf, timeout):
        """One line from buf and conn, or None after timeout seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in buf[0]:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([conn], [], [], left)[0]:
                return None
            got = conn.recv(65536)
            if not got:
                raise EOFError
            buf[0] += got
        line, buf[0] = buf[0].split(b"\n", 1)
        return line + b"\n"

    def content(self, conn, buf):
        """Reads up to the end of the data, after half the slow time."""
        time.sleep(self.slow / 2)
        while True:
            line = self.line(conn, buf, 30)
            if line is None or line == b".\r\n":
                return
            if line.startswith(b"Subject:"):
                self.subjects.append(line[8:].strip().decode())

    def session(self, conn):
        buf = [b""]
        held = []
        try:
            conn.sendall(b"220 mx ESMTP\r\n")
            while True:
                line = self.line(conn, buf, 3 if held else 30)
                if line is None:
                    self.waited = True
                    conn.sendall(b"".join(held))
                    held = []
                    continue
                verb = line[:4].upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-mx\r\n250 PIPELINING\r\n")
                elif verb in (b"MAIL", b"RCPT"):
                    self.mails += verb == b"MAIL"
                    if self.hold:
                        held.append(b"250 2.0.0 ok\r\n")
                    else:
                        conn.sendall(b"250 2.0.0 ok\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"".join(held) + b"354 go\r\n")
                    held = []
                    started = time.monotonic()
                    self.content(conn, buf)
                    # the rest of the slow time, however fast the bytes came
                    time.sleep(max(0.0, self.slow - (time.monotonic() - started)))
                    self.messages += 1
                    conn.sendall(b"250 2.0.0 taken\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 2.0.0 ok\r\n")
        except (EOFError, OSError):
            pass
        finally:
            conn.close()

    def close(self):
        self.stopping = True
        self.sock.close()
        self.thread.join(5)
