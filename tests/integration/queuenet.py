"""Instances that send to each other: youjud A (127.0.0.2) sends to B
(127.0.0.3) and C (127.0.0.4), found through MX records that a real nsd on
loopback serves. Every instance listens for SMTP on the same port number
on its own address, which A's smtp_port names. Shared by test_queue and
test_bounce."""
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
