"""What the outbound client puts on the wire, seen by a sink server in the
test (127.0.0.3, as B in test_queue.py) that offers CHUNKING and 8BITMIME
or not: BDAT chunks without dot-stuffing when offered, DATA otherwise;
8-bit content made quoted-printable for a server without 8BITMIME, or
returned when it cannot be."""
import email
import email.policy
import smtplib
import socket
import threading

import pytest

from test_queue import BOB, SENDER, SENDER_PW, net, sender_a, wait_queue  # noqa: F401
from test_smtp_roles import sql


class Sink:
    """An SMTP server on 127.0.0.3:port saying EHLO with `extensions`;
    keeps each transaction's commands and content."""

    def __init__(self, port, extensions):
        self.extensions = extensions
        self.commands = []
        self.contents = []
        self.chunks = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.3", port))
        self.sock.listen(5)
        self.sock.settimeout(30)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            self.session(conn.makefile("rb"), conn)

    def session(self, f, conn):
        conn.sendall(b"220 sink ESMTP\r\n")
        content = b""
        for line in f:
            self.commands.append(line)
            verb = line[:4].upper()
            if verb == b"EHLO":
                ext = [b"sink"] + [e.encode() for e in self.extensions]
                conn.sendall(b"".join(b"250-" + e + b"\r\n" for e in ext[:-1])
                             + b"250 " + ext[-1] + b"\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go\r\n")
                data = b""
                for dline in f:
                    if dline == b".\r\n":
                        break
                    data += dline
                self.contents.append(data)
                conn.sendall(b"250 2.0.0 taken\r\n")
            elif verb == b"BDAT":
                words = line.split()
                size = int(words[1])
                chunk = f.read(size)
                self.chunks.append(size)
                content += chunk
                if len(words) > 2 and words[2].upper() == b"LAST":
                    self.contents.append(content)
                    content = b""
                    conn.sendall(b"250 2.0.0 taken\r\n")
                else:
                    conn.sendall(b"250 2.0.0 chunk\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 2.0.0 ok\r\n")

    def close(self):
        self.sock.close()
        self.thread.join(10)


@pytest.fixture
def wire(net):
    """A (sender A, sink factory); the sink is closed at the end."""
    a = sender_a(net)
    sinks = []

    def sink(*extensions):
        s = Sink(int(a.overrides["smtp_port"]), extensions)
        sinks.append(s)
        return s

    yield a, sink
    for s in sinks:
        s.close()


def submit(a, body, eight=False):
    with smtplib.SMTP("127.0.0.1", a.ports["submission"], timeout=30) as s:
        s.login(SENDER, SENDER_PW)
        s.sendmail(SENDER, [BOB], body, mail_options=["BODY=8BITMIME"] if eight else [])


def sent(a, sink):
    wait_queue(a, "SELECT count(*) FROM queue", ["0"])
    sink.thread.join(15)
    assert len(sink.contents) == 1, sink.commands
    return sink.contents[0]


def mail_from(sink):
    return [c for c in sink.commands if c.startswith(b"MAIL FROM")][0]


def test_chunking_sends_bdat_without_dot_stuffing(wire):
    a, sink = wire
    s = sink("PIPELINING", "CHUNKING", "8BITMIME")
    body = b"Subject: chunks\r\n\r\n.x\r\n..y\r\n.\r\n" + b"z" * 70 + b"\r\n"
    body += (b"0123456789" * 7 + b"\r\n") * 2000      # 144 KB: three chunks
    submit(a, body)
    content = sent(a, s)
    assert not any(c.upper().startswith(b"DATA") for c in s.commands)
    assert content.endswith(b"\r\n\r\n.x\r\n..y\r\n.\r\n" + b"z" * 70 + b"\r\n"
                            + (b"0123456789" * 7 + b"\r\n") * 2000)
    assert content.count(b"\n") == content.count(b"\r\n")
    assert len(s.chunks) == 3 and max(s.chunks) <= 65536, s.chunks
    assert sum(s.chunks) == len(content)


def test_without_chunking_data_is_dot_stuffed(wire):
    a, sink = wire
    s = sink("PIPELINING", "8BITMIME")
    submit(a, b"Subject: data\r\n\r\n.x\r\nplain\r\n")
    content = sent(a, s)
    assert content.endswith(b"\r\n\r\n..x\r\nplain\r\n")
    assert any(c.upper().startswith(b"DATA") for c in s.commands)


EIGHT = ("Subject: caf\u00e9 menu\r\n".encode("ascii", "replace").replace(b"?", b"e")
         + b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
         b"Content-Transfer-Encoding: 8bit\r\n\r\n"
         + "Caf\u00e9 cr\u00e8me, = 10 \u20ac \r\n.dot line\r\n".encode() + b"x" * 120 + b"\r\n")


@pytest.mark.parametrize("chunking", [False, True])
def test_8bit_to_a_server_without_8bitmime_is_quoted_printable(wire, chunking):
    a, sink = wire
    s = sink("PIPELINING", *(["CHUNKING"] if chunking else []))
    submit(a, EIGHT, eight=True)
    content = sent(a, s)
    assert b"BODY=8BITMIME" not in mail_from(s)
    assert all(b < 128 for b in content), content
    assert all(len(l) <= 76 for l in content.split(b"\r\n"))
    if not chunking:    # what the receiver takes the dot-stuffing off
        content = content.replace(b"\r\n..", b"\r\n.")
    msg = email.message_from_bytes(content, policy=email.policy.default)
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert msg.get_content().replace("\r\n", "\n") == \
        "Caf\u00e9 cr\u00e8me, = 10 \u20ac \n.dot line\n" + "x" * 120 + "\n"


def test_8bit_to_a_server_with_8bitmime_is_unchanged(wire):
    a, sink = wire
    s = sink("PIPELINING", "8BITMIME", "CHUNKING")
    submit(a, EIGHT, eight=True)
    content = sent(a, s)
    assert mail_from(s).rstrip().endswith(b"BODY=8BITMIME")
    assert content.endswith(EIGHT.split(b"\r\n\r\n", 1)[1])


def test_8bit_that_cannot_be_converted_fails(wire):
    a, sink = wire
    s = sink("PIPELINING")
    submit(a, b"Subject: bad\r\nMIME-Version: 1.0\r\nContent-Type: application/x-thing\r\n"
              b"Content-Transfer-Encoding: base64\r\n\r\n\xe9\xe9\xe9\r\n", eight=True)
    wait_queue(a, "SELECT status, substr(last_error, 1, 9) FROM queue", ["failed|554 5.6.3"])
    assert "cannot be converted" in sql(a, "SELECT last_error FROM queue")[0]
    assert not any(c.startswith(b"MAIL FROM") for c in s.commands)
