"""Probes of the session runtime's run slots (docs/architecture.md: Run
slots) as hostile clients would try them: sessions running the most
expensive commands there are may not starve a normal client or a
delivery, and sessions fighting over one mailbox (IMAP writes, POP3
locks, deliveries) may not stall each other."""
import smtplib
import socket
import threading
import time

from conftest import PASSWORD, USER
from test_imap_search import Raw, login, msg

DATE = b"10-Feb-2020 12:00:00 +0000"
HEAVY = 6		# more than the slots on a 2-CPU machine (4)


def fill(r, n):
    """n distinct messages, pipelined: one round trip per batch."""
    body = b"The quick brown fox jumps over the lazy dog.\r\n" * 40
    batch = 50
    for start in range(0, n, batch):
        out = b""
        tags = []
        for i in range(start, min(n, start + batch)):
            m = msg(b"Re: topic %d" % (i % 37), body=body + b"%d\r\n" % i,
                    msgid=b"<m%d@example.org>" % i)
            r.n += 1
            tag = b"t%d" % r.n
            tags.append(tag)
            out += (tag + b" APPEND INBOX () \"" + DATE + b"\" {%d+}\r\n" % len(m) + m + b"\r\n")
        r.send(out)
        for tag in tags:
            assert b" OK" in r.until(tag)[-1]


class Heavy(threading.Thread):
    """A session asking for expensive answers over and over until told to stop."""

    COMMANDS = [b"THREAD REFERENCES UTF-8 ALL", b"SORT (SUBJECT FROM DATE) UTF-8 ALL",
                b"FETCH 1:* (BODYSTRUCTURE ENVELOPE)", b"SEARCH TEXT nowhere-to-be-found"]

    def __init__(self, y, k):
        super().__init__(daemon=True)
        self.y, self.k = y, k
        self.stop = threading.Event()
        self.done = 0
        self.error = None

    def run(self):
        try:
            r = login(self.y)
            r.ok(b"SELECT INBOX")
            i = self.k
            while not self.stop.is_set():
                r.ok(self.COMMANDS[i % len(self.COMMANDS)])
                i += 1
                self.done += 1
            r.s.close()
        except Exception as e:		# reported by the test
            self.error = e


def timed(fn):
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def test_expensive_sessions_starve_no_one(youju):
    r = login(youju)
    fill(r, 300)
    r.s.close()
    heavy = [Heavy(youju, k) for k in range(HEAVY)]
    for h in heavy:
        h.start()
    time.sleep(1)
    worst = {}

    def note(what, secs):
        worst[what] = max(worst.get(what, 0), secs)

    try:
        for round_ in range(8):
            c = Raw(youju.ports["imap"])
            note("greeting", timed(c.line))
            note("login", timed(lambda: c.ok(b"LOGIN " + USER.encode() + b" " + PASSWORD.encode())))
            note("select", timed(lambda: c.ok(b"EXAMINE INBOX")))
            note("fetch", timed(lambda: c.ok(b"FETCH %d (FLAGS BODY.PEEK[HEADER])" % (round_ + 1))))
            c.s.close()
            w = login(youju)
            w.ok(b"SELECT INBOX")
            note("store", timed(lambda: w.ok(b"STORE %d +FLAGS (\\Seen)" % (round_ + 1))))
            w.s.close()
            with smtplib.SMTP("127.0.0.1", youju.ports["smtp"], timeout=20) as s:
                def send():
                    refused = s.sendmail("x@example.org", [USER], msg(b"probe %d" % round_))
                    assert refused == {}
                note("delivery", timed(send))
    finally:
        for h in heavy:
            h.stop.set()
        for h in heavy:
            h.join(30)
    print("worst seconds:", {k: round(v, 3) for k, v in worst.items()},
          "heavy commands:", sum(h.done for h in heavy))
    assert all(h.error is None for h in heavy), [h.error for h in heavy]
    assert all(h.done > 0 for h in heavy)
    # A loaded 2-CPU machine answers a normal client within seconds, not tens.
    assert max(worst.values()) < 5, worst


class Fight:
    """Sessions fighting over alice's INBOX for a while: IMAP writers
    (STORE, COPY, APPEND, UID EXPUNGE of their own appends), POP3
    sessions taking and leaving the maildrop lock, SMTP deliveries, and
    CPU-heavy sessions. Records what the server acknowledged and the
    slowest answer of each kind."""

    WRITERS, POP3S = 4, 2

    def __init__(self, y):
        self.y = y
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked_ids = set()		# Message-IDs of APPENDs and deliveries answered OK/250
        self.gone_ids = set()		# ...that their writer then tried to expunge
        self.acked_flags = set()	# (message number in the fill, keyword) answered OK
        self.worst = {}
        self.errors = []
        self.threads = []

    def note(self, what, t0):
        with self.lock:
            self.worst[what] = max(self.worst.get(what, 0), time.monotonic() - t0)

    def guard(self, fn, *args):
        def run():
            try:
                fn(*args)
            except Exception as e:		# a dead server ends every loop
                if not self.stop.is_set():
                    self.errors.append(repr(e))
        t = threading.Thread(target=run, daemon=True)
        self.threads.append(t)
        t.start()

    def writer(self, k):
        r = login(self.y)
        r.ok(b"SELECT INBOX")
        i = 0
        while not self.stop.is_set():
            i += 1
            n = 1 + (k * 13 + i) % 50
            kw = b"k%dx%d" % (k, i % 8)	# a mailbox has at most 63 keywords
            t0 = time.monotonic()
            r.ok(b"STORE %d +FLAGS (%s)" % (n, kw))
            self.note("store", t0)
            self.acked_flags.add((n, kw.decode()))
            t0 = time.monotonic()
            r.ok(b"COPY %d Other" % n)
            self.note("copy", t0)
            mid = "<w%d.%d@example.org>" % (k, i)
            t0 = time.monotonic()
            r.append(b"INBOX", msg(b"w %d %d" % (k, i), msgid=mid.encode()), DATE)
            self.note("append", t0)
            self.acked_ids.add(mid)
            if i % 3 == 0:
                found = r.one(b"UID SEARCH HEADER Message-ID %s" % mid.encode(), b"* SEARCH")
                uid = found.split()[-1]
                self.gone_ids.add(mid)
                t0 = time.monotonic()
                r.ok(b"UID STORE %s +FLAGS (\\Deleted)" % uid)
                r.ok(b"UID EXPUNGE %s" % uid)
                self.note("expunge", t0)
        r.s.close()

    def pop3(self):
        from conftest import Pop3Raw
        while not self.stop.is_set():
            p = Pop3Raw(self.y.ports["pop3"], timeout=20)
            t0 = time.monotonic()
            assert p.line().startswith(b"+OK")
            assert p.cmd("USER " + USER).startswith(b"+OK")
            reply = p.cmd("PASS " + PASSWORD)
            self.note("pop3 login", t0)
            if reply.startswith(b"+OK"):
                t0 = time.monotonic()
                assert p.cmd("STAT").startswith(b"+OK")
                self.note("pop3 stat", t0)
            else:
                assert b"[IN-USE]" in reply, reply
            p.cmd("QUIT")
            p.close()

    def deliverer(self):
        i = 0
        with smtplib.SMTP("127.0.0.1", self.y.ports["smtp"], timeout=20) as s:
            while not self.stop.is_set():
                i += 1
                mid = "<d%d@example.org>" % i
                t0 = time.monotonic()
                assert s.sendmail("x@example.org", [USER], msg(b"d %d" % i, msgid=mid.encode())) == {}
                self.note("delivery", t0)
                self.acked_ids.add(mid)

    def start(self):
        r = login(self.y)
        fill(r, 50)
        r.ok(b"CREATE Other")
        r.s.close()
        for k in range(self.WRITERS):
            self.guard(self.writer, k)
        for _ in range(self.POP3S):
            self.guard(self.pop3)
        self.guard(self.deliverer)
        self.heavy = [Heavy(self.y, k) for k in range(2)]
        for h in self.heavy:
            h.start()

    def end(self):
        self.stop.set()
        for h in self.heavy:
            h.stop.set()
        for t in self.threads + self.heavy:
            t.join(30)

    def check_kept(self):
        """Every acknowledged message and keyword is there."""
        r = login(self.y)
        r.ok(b"SELECT INBOX")
        ids, flags = set(), {}
        for line in r.ok(b"FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"):
            if b"FETCH" in line and b"FLAGS (" in line:
                seq = int(line.split()[1])
                flags[seq] = line.split(b"FLAGS (")[1].split(b")")[0].decode().split()
            if line.lower().startswith(b"message-id:"):
                ids.add(line.split(b":", 1)[1].strip().decode())
        r.s.close()
        lost = self.acked_ids - self.gone_ids - ids
        unflagged = [(n, kw) for n, kw in self.acked_flags if kw not in flags.get(n, [])]
        return lost, unflagged


def test_one_mailbox_fight_stalls_no_one(youju):
    f = Fight(youju)
    f.start()
    time.sleep(5)
    f.end()
    print("worst seconds:", {k: round(v, 3) for k, v in f.worst.items()},
          "acknowledged:", len(f.acked_ids), len(f.acked_flags))
    assert not f.errors, f.errors
    assert {"store", "copy", "append", "expunge", "pop3 login", "delivery"} <= set(f.worst)
    assert max(f.worst.values()) < 10, f.worst
    lost, unflagged = f.check_kept()
    assert not lost and not unflagged, (lost, unflagged)


def test_kill_under_load_loses_nothing_answered(youju):
    f = Fight(youju)
    f.start()
    time.sleep(3)
    youju.kill()		# SIGKILL, in the middle of all of it
    f.end()
    youju.start(wait=("smtp", "imap"))
    lost, unflagged = f.check_kept()
    print("acknowledged:", len(f.acked_ids), len(f.acked_flags))
    assert len(f.acked_ids) > 0 and len(f.acked_flags) > 0
    assert not lost and not unflagged, (lost, unflagged)
