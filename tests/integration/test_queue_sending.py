"""How the queue runner sends, seen by an MX in the test (127.0.0.3, as B
in test_queue.py): a transaction longer than the claim's lease keeps its
claim (the message goes once), DATA goes in one pipelined group with
MAIL and RCPT, and `youju queue retry` is acted on at once."""
import select
import socket
import threading
import time

from queuenet import BOB, net, sender_a, submit, wait_queue, wait_uids  # noqa: F401


class Mx:
    """An SMTP server on 127.0.0.3:port with PIPELINING that serves any
    number of connections and counts them and their MAIL commands.
    slow: seconds it takes over the content before its final reply
    (it starts reading it after half of them).
    hold: MAIL and RCPT replies wait for DATA (as a pipelining client
    lets them); a client that waits for them gets them after 3 s, and
    `waited` says so."""

    def __init__(self, port, slow=0.0, hold=False):
        self.slow = slow
        self.hold = hold
        self.connections = 0
        self.mails = 0
        self.messages = 0
        self.waited = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.3", port))
        self.sock.listen(5)
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


def test_a_transaction_longer_than_the_lease_keeps_its_claim(net):
    # Leases of 2 s, an MX that takes 8 s over one message, and idle
    # threads that look for due mail every second: without renewal during
    # the transaction, another thread would claim the message and send it
    # again while the first is still sending it.
    a = sender_a(net, queue_lease_time="2s", queue_run_threads=3, smtp_timeout="30s")
    mx = Mx(int(a.overrides["smtp_port"]), slow=8.0)
    try:
        body = b"Subject: slow\r\n\r\n" + b"x" * 70 + b"\r\n"
        submit(a, [BOB], body * 200)
        wait_queue(a, "SELECT count(*) FROM queue", ["0"], timeout=40)
        time.sleep(3)			# a second sender would have connected by now
        assert (mx.connections, mx.mails, mx.messages) == (1, 1, 1)
        log = a.read_log()
        assert "lapsed" not in log, log[-3000:]
        assert "status=sent" in log
    finally:
        mx.close()


def test_data_is_pipelined_with_mail_and_rcpt(net):
    # The MX answers MAIL and RCPT only once DATA has come: a client that
    # waits for those replies before DATA waits 3 s per message.
    a = sender_a(net)
    mx = Mx(int(a.overrides["smtp_port"]), hold=True)
    try:
        submit(a, [BOB, "bert@b.test"], b"Subject: pipelined\r\n\r\nx\r\n")
        wait_queue(a, "SELECT count(*) FROM queue", ["0"], timeout=20)
        assert mx.messages == 1
        assert not mx.waited
    finally:
        mx.close()


def test_queue_retry_wakes_the_running_daemon(net):
    # Idle threads look only every minute: the retry must tell them.
    b = net("b", "127.0.0.3", [(BOB, "pw-bob")])
    b.stop()
    a = sender_a(net, queue_run_delay="60s", minimal_backoff_time="1h",
                 maximal_backoff_time="1h")
    submit(a, [BOB], b"Subject: retried\r\n\r\nx\r\n")
    wait_queue(a, "SELECT count(*) FROM queue WHERE attempts = 1", ["1"])
    b.start()
    time.sleep(1)			# the threads are asleep for a minute now
    started = time.monotonic()
    a.cli("queue", "retry")
    wait_uids(b, BOB, 1, timeout=20)
    assert time.monotonic() - started < 10
