"""What the outbound client puts on the wire, seen by a sink server in the
test (127.0.0.3, as B in test_queue.py) that offers CHUNKING and 8BITMIME
or not: BDAT chunks without dot-stuffing when offered, DATA otherwise;
8-bit content made quoted-printable for a server without 8BITMIME, or
returned when it cannot be."""
import email
import email.policy
import queue
import smtplib
import socket
import threading
import time

import pytest

from test_queue import BOB, SENDER, SENDER_PW, net, sender_a, wait_queue  # noqa: F401
from test_smtp_roles import sql


class Sink:
    """An SMTP server on 127.0.0.3:port saying EHLO with `extensions`;
    keeps each transaction's commands and content. It can misbehave:
    `hang` names the step it stops answering at (b"220", b"MAIL", b"RCPT",
    b"DATA", b"." for the end of DATA, b"LAST" for BDAT LAST);
    `chunk_replies` maps a chunk's number (from 0) to its reply; `lazy`
    answers the chunks only once BDAT LAST came (a client that waits for
    each reply never gets there); `rtt` seconds pass before each reply
    reaches the client, while the sink goes on reading (a distant
    server: the replies are sent by a thread of their own); `tls_junk`
    answers STARTTLS with 220 and then bytes no TLS client can take,
    `tls_refuse` with that reply instead; `trickle` sends the greeting
    as continuation lines, one each half second, never ending. It serves
    `sessions` connections, one after the other (`connections` counts
    them)."""

    def __init__(self, port, extensions, hang=None, chunk_replies=None, lazy=False,
                 rtt=0.0, tls_junk=False, tls_refuse=None, sessions=1, trickle=False):
        self.extensions = extensions
        self.hang = hang
        self.chunk_replies = chunk_replies or {}
        self.lazy = lazy
        self.rtt = rtt
        self.tls_junk = tls_junk
        self.tls_refuse = tls_refuse
        self.sessions = sessions
        self.trickle = trickle
        self.connections = 0
        self.out = queue.Queue()
        self.commands = []
        self.contents = []
        self.chunks = []
        self.timings = []        # (MAIL received, content's reply sent), monotonic
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.3", port))
        self.sock.listen(5)
        self.sock.settimeout(30)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        for _ in range(self.sessions):
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self.serve_one(conn)

    def serve_one(self, conn):
        replier = threading.Thread(target=self.late_replies, daemon=True)
        replier.start()
        with conn:
            try:
                self.session(conn.makefile("rb"), conn)
            except OSError:     # the client reset the connection
                pass
            self.out.put(None)
            replier.join(10)

    def stall(self, f):
        """Stops answering: reads until the client gives up."""
        for _ in f:
            pass

    def reply(self, conn, text):
        if self.rtt:
            self.out.put((time.monotonic() + self.rtt, conn, text))
        else:
            conn.sendall(text)

    def late_replies(self):
        while (item := self.out.get()) is not None:
            due, conn, text = item
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                conn.sendall(text)
            except OSError:
                pass

    def data(self, f, conn):
        self.reply(conn, b"354 go\r\n")
        data = bytearray()
        for dline in f:
            if dline == b".\r\n":
                break
            data += dline
        self.contents.append(bytes(data))
        if self.hang == b".":
            return False
        self.reply(conn, b"250 2.0.0 taken\r\n")
        self.timings[-1][1] = time.monotonic() + self.rtt
        return True

    def bdat(self, f, conn, line, held):
        """One chunk; False when the session ends."""
        words = line.split()
        last = len(words) > 2 and words[2].upper() == b"LAST"
        self.chunks.append(int(words[1]))
        self.content += f.read(int(words[1]))
        if last:
            self.contents.append(self.content)
            self.content = b""
            if self.hang == b"LAST":
                return False
        answer = b"250 2.0.0 taken\r\n" if last else \
            self.chunk_replies.get(len(self.chunks) - 1, b"250 2.0.0 chunk\r\n")
        held.append(answer)
        if not self.lazy or last:
            for a in held:
                self.reply(conn, a)
            held.clear()
        if last:
            self.timings[-1][1] = time.monotonic() + self.rtt
        return True

    def session(self, f, conn):
        if self.hang == b"220":
            return self.stall(f)
        if self.trickle:
            for _ in range(120):    # until the client gives up
                conn.sendall(b"220-sink is still greeting\r\n")
                time.sleep(0.5)
            return None
        self.reply(conn, b"220 sink ESMTP\r\n")
        self.content = b""
        held = []
        for line in f:
            self.commands.append(line)
            verb = line[:4].upper()
            if verb == self.hang:
                return self.stall(f)
            if verb == b"EHLO":
                ext = [b"sink"] + [e.encode() for e in self.extensions]
                self.reply(conn, b"".join(b"250-" + e + b"\r\n" for e in ext[:-1])
                           + b"250 " + ext[-1] + b"\r\n")
            elif verb == b"MAIL":
                self.timings.append([time.monotonic(), None])
                self.reply(conn, b"250 2.0.0 ok\r\n")
            elif verb == b"DATA":
                if not self.data(f, conn):
                    return self.stall(f)
            elif verb == b"BDAT":
                if not self.bdat(f, conn, line, held):
                    return self.stall(f)
            elif verb == b"QUIT":
                self.reply(conn, b"221 bye\r\n")
                return
            elif line.upper().startswith(b"STARTTLS") and self.tls_refuse:
                self.reply(conn, self.tls_refuse)
            elif line.upper().startswith(b"STARTTLS") and self.tls_junk:
                self.reply(conn, b"220 go ahead\r\n" + b"this is not TLS\r\n" * 10)
                return self.stall(f)
            else:
                self.reply(conn, b"250 2.0.0 ok\r\n")

    def close(self):
        self.sock.close()
        self.thread.join(10)


@pytest.fixture
def wire_with(net):
    """wire_with(**config) -> (sender A with that configuration, sink
    factory); the sinks are closed at the end."""
    sinks = []

    def make(**overrides):
        a = sender_a(net, **overrides)

        def sink(*extensions, **behaviour):
            s = Sink(int(a.overrides["smtp_port"]), extensions, **behaviour)
            sinks.append(s)
            return s

        return a, sink

    yield make
    for s in sinks:
        s.close()


@pytest.fixture
def wire(wire_with):
    """A (sender A, sink factory)."""
    return wire_with()


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


# Line ends of every kind, lines of dots, and a last line without an end,
# as a client hands them to A (BDAT carries them as they are).
RAW = (b"Subject: wire\r\n\r\nlone LF\nlone CR\rCRLF\r\n.\r\n.lead\r\n..two\r\n"
       b"\r\n \r\n.\r\n...\r\nlast line without an end")
# What A stores and sends: CRLF everywhere, the last line ended.
CANONICAL = (b"lone LF\r\nlone CR\r\nCRLF\r\n.\r\n.lead\r\n..two\r\n"
             b"\r\n \r\n.\r\n...\r\nlast line without an end\r\n")


def submit_raw(a, inbound):
    """RAW to A's submission in BDAT (as it is) or DATA (dot-stuffed)."""
    with smtplib.SMTP("127.0.0.1", a.ports["submission"], timeout=30) as s:
        s.login(SENDER, SENDER_PW)
        assert s.mail(SENDER)[0] == 250 and s.rcpt(BOB)[0] == 250
        if inbound == "BDAT":
            s.send(b"BDAT %d LAST\r\n" % len(RAW) + RAW)
        else:
            assert s.docmd("DATA")[0] == 354
            s.send(RAW.replace(b"\n.", b"\n..").replace(b"\r.", b"\r..") + b"\r\n.\r\n")
        assert s.getreply()[0] == 250


@pytest.mark.parametrize("inbound", ["BDAT", "DATA"])
@pytest.mark.parametrize("chunking", [False, True])
def test_line_ends_and_dots_on_the_wire(wire, inbound, chunking):
    """Only CRLF goes out; after DATA every line that starts with a dot
    has it doubled (RFC 5321 4.5.2), in BDAT none is."""
    a, sink = wire
    s = sink("PIPELINING", "8BITMIME", *(["CHUNKING"] if chunking else []))
    submit_raw(a, inbound)
    content = sent(a, s)
    body = content.split(b"\r\n\r\n", 1)[1]
    if chunking:
        assert body == CANONICAL
    else:
        assert body == CANONICAL.replace(b"\r\n.", b"\r\n..")
        assert body.startswith(b"lone LF\r\nlone CR\r\nCRLF\r\n..\r\n..lead\r\n...two\r\n")
        assert body.endswith(b"\r\n..\r\n....\r\nlast line without an end\r\n")
    assert content.count(b"\n") == content.count(b"\r\n")
    assert content.count(b"\r") == content.count(b"\r\n")


@pytest.mark.parametrize("chunking", [False, True])
def test_lines_over_998_octets_are_made_short(wire, chunking):
    """RFC 5322 2.1.1: no line over 998 octets. The text part goes out
    quoted-printable (its text unchanged for the reader), a header line
    is folded (CRLF SPACE, as Postfix does), 8-bit text stays 8-bit."""
    a, sink = wire
    s = sink("PIPELINING", "8BITMIME", "SIZE", *(["CHUNKING"] if chunking else []))
    text = "caf\u00e9 " + "x" * 1500 + " end"
    msg = ("X-Long: " + "h" * 1100 + "\r\nSubject: long\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
           "\r\n.first\r\n" + text + "\r\n").encode()
    submit(a, msg, eight=True)
    content = sent(a, s)
    assert max(len(l) for l in content.split(b"\r\n")) <= 998
    if not chunking:
        content = content.replace(b"\r\n..", b"\r\n.")
    assert size_of(s) == len(content)
    parsed = email.message_from_bytes(content, policy=email.policy.default)
    assert parsed["Content-Transfer-Encoding"] == "quoted-printable"
    assert parsed.get_content().replace("\r\n", "\n") == ".first\n" + text + "\n"
    assert b"\r\nX-Long: " + b"h" * 990 + b"\r\n " + b"h" * 110 + b"\r\n" in content
    assert mail_from(s).rstrip().endswith(b"BODY=8BITMIME")


def size_of(sink):
    return int([w for w in mail_from(sink).split() if w.upper().startswith(b"SIZE=")][0][5:])
