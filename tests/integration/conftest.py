"""Fixtures for the integration tests: a real youjud on free loopback
ports with a fresh data dir, driven by real clients.

Binaries come from $YOUJU_BUILD (default: build/ in the repo). With
YOUJU_STORE_DRIVER=postgresql every youjud keeps its store in a new
database of a throwaway PostgreSQL cluster started for the session.
"""
import atexit
import collections
import os
import random
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import shutil

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("YOUJU_BUILD", os.path.join(REPO, "build"))
YOUJUD = os.path.join(BUILD, "youjud")
YOUJU = os.path.join(BUILD, "youju")

LISTENERS = ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s")

STORE_DRIVER = os.environ.get("YOUJU_STORE_DRIVER", "sqlite")
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")

DOMAIN = "example.test"
HOSTNAME = "mx.example.test"
USER = "alice@example.test"
PASSWORD = "secret-alice"


# Test listeners take ports below the kernel's ephemeral range
# (/proc/sys/net/ipv4/ip_local_port_range, 32768 and up by default), so
# that no client socket of this or any other process on the machine can
# be given a listener's port while youjud restarts.
# Runs of the suite side by side (make test runs its passes at once)
# each take their own part of it, YOUJU_TEST_PORTS="FIRST-LAST": a port
# one run checked and handed out is not taken by another before its
# youjud binds it, nor while that youjud restarts.
PORT_RANGE = tuple(int(p) for p in os.environ.get("YOUJU_TEST_PORTS", "20000-32767").split("-"))
# A port handed out is not handed out again until this many others have
# been: far more than any one test uses, so one youjud never gets the
# same port twice, nor a test's restarted youjud a port another took.
PORT_REUSE_AFTER = min(3000, (PORT_RANGE[1] - PORT_RANGE[0]) // 2)
_handed_out = collections.deque()
_handed_set = set()


def free_port():
    """A loopback port that is free now and was not handed out lately in
    this run."""
    for _ in range(500):
        port = random.randint(*PORT_RANGE)
        if port in _handed_set:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.append(port)
        _handed_set.add(port)
        if len(_handed_out) > PORT_REUSE_AFTER:
            _handed_set.discard(_handed_out.popleft())
        return port
    raise RuntimeError("no free loopback port")


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open")


_EMPTY_DNS = None


def empty_dns():
    """One nsd for the whole run, authoritative for the root zone with no
    names in it: every lookup gets NXDOMAIN straight away. Without it,
    lookups would wait out their timeout, and checks made at MAIL (SPF,
    HELO) would stall every client outside mynetworks."""
    global _EMPTY_DNS
    if _EMPTY_DNS is None:
        from dnsserver import DnsServer
        _EMPTY_DNS = DnsServer({".": "$ORIGIN .\n$TTL 60\n"
                                     "@ IN SOA ns.invalid. hostmaster.invalid. 1 3600 600 86400 60\n"
                                     "@ IN NS ns.invalid.\n"}).start()
        atexit.register(_EMPTY_DNS.stop)
    return _EMPTY_DNS


def make_tmpdir():
    # The daemon drops to an unprivileged user when started as root, so
    # the directories above the data dir must be traversable by it.
    d = tempfile.mkdtemp(prefix="youju-test-", dir="/tmp")
    os.chmod(d, 0o755)
    return d


class PgCluster:
    """A throwaway PostgreSQL: initdb in a temporary directory, run by the
    postgres user when the tests run as root, on a Unix socket only."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="youju-pg-", dir="/tmp")
        # youjud runs as its own user: it must reach the socket here.
        os.chmod(self.dir, 0o755)
        if os.getuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.data = os.path.join(self.dir, "data")
        self.n = 0
        self._as_owner([f"{PGBIN}/initdb", "-D", self.data, "-A", "trust", "-U", "youju",
                        "-E", "UTF8", "--no-sync"])
        self.start()
        self.dsn = f"host={self.dir} user=youju"

    def start(self):
        """Starts the cluster (also again, after a test stopped it). A
        checkpoint every 30 s keeps what a crash leaves to replay small:
        after a whole pass's writes (large messages among them) with the
        default 5 minutes, a restart test's recovery took over 100 s on a
        busy machine. pg_ctl waits up to 5 minutes for it all the same:
        every later test needs the cluster."""
        self._as_owner([f"{PGBIN}/pg_ctl", "-D", self.data, "-l",
                        os.path.join(self.dir, "log"), "-w", "-t", "300", "-o",
                        f"-k {self.dir} -c listen_addresses= -c max_connections=500"
                        " -c checkpoint_timeout=30s", "start"])

    @staticmethod
    def _as_owner(cmd):
        if os.getuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        subprocess.run(cmd, check=True, capture_output=True, timeout=360)

    def new_database(self):
        self.n += 1
        name = f"yj_{os.getpid()}_{self.n}"
        subprocess.run(["psql", self.dsn + " dbname=postgres", "-q", "-c",
                        f"CREATE DATABASE {name}"], check=True, capture_output=True,
                       timeout=60)
        return f"{self.dsn} dbname={name}"

    def stop(self):
        self._as_owner([f"{PGBIN}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)


PG_CLUSTER = None


def sqlite_only(reason):
    """Marks a test that is about the SQLite store's files."""
    return pytest.mark.skipif(STORE_DRIVER == "postgresql", reason=reason)


@pytest.fixture(scope="session", autouse=True)
def store_database():
    """The PostgreSQL cluster of a YOUJU_STORE_DRIVER=postgresql run."""
    global PG_CLUSTER
    if STORE_DRIVER != "postgresql":
        yield None
        return
    PG_CLUSTER = PgCluster()
    yield PG_CLUSTER
    PG_CLUSTER.stop()
    PG_CLUSTER = None


class Youju:
    """One youjud instance with its own data dir and ports."""

    def __init__(self, domain=DOMAIN, hostname=HOSTNAME):
        self.base = make_tmpdir()
        self.data_dir = os.path.join(self.base, "data")
        self.domain = domain
        self.hostname = hostname
        self.ports = {name: free_port() for name in LISTENERS}
        self.proc = None
        self.log_path = os.path.join(self.base, "youjud.log")
        self.overrides = {}

    # --- the youju command ---
    def cli(self, *args, input=None, check=True):
        cmd = [YOUJU, "-d", self.data_dir, *args]
        r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr}")
        return r

    def init(self):
        r = subprocess.run([YOUJU, "init", "--data-dir", self.data_dir, "--domain", self.domain,
                            "--hostname", self.hostname], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        if PG_CLUSTER is not None:
            self.use_database(PG_CLUSTER.new_database())
            self.cli("domain", "add", self.domain)
        return r

    def use_database(self, dsn):
        """Keeps the store in PostgreSQL database dsn from now on."""
        self.pg_dsn = dsn
        with open(os.path.join(self.data_dir, "youju.conf"), "a") as f:
            f.write(f"store_driver = postgresql\nstore_dsn = {dsn}\n")

    def add_account(self, address, password):
        return self.cli("account", "add", address, "--password-stdin", input=password + "\n")

    def msg_list(self, account, mailbox=None):
        args = ["msg", "list", account] + ([mailbox] if mailbox else [])
        return self.cli(*args).stdout

    def msg_cat(self, account, uid, mailbox=None):
        args = ["msg", "cat", account, str(uid)] + ([mailbox] if mailbox else [])
        cmd = [YOUJU, "-d", self.data_dir, *args]
        r = subprocess.run(cmd, capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def uids(self, account, mailbox=None):
        """UIDs listed by 'youju msg list' (the first column of each line)."""
        out = []
        for line in self.msg_list(account, mailbox).splitlines():
            first = line.split()[0] if line.split() else ""
            if first.isdigit():
                out.append(int(first))
        return out

    # --- the daemon ---
    def options(self):
        opts = {f"{name}_listen": f"127.0.0.1:{port}" for name, port in self.ports.items()}
        opts["log_level"] = "debug"
        # Tests never reach the machine's resolver: lookups go to a DNS
        # server on loopback that knows no names, as the internet would
        # answer for test domains: at once, NXDOMAIN (a test that needs
        # records starts its own nsd and overrides the key).
        opts["dns_servers"] = empty_dns().spec
        opts["smtpd_peername_lookup"] = "no"
        opts.update(self.overrides)
        return opts

    def start(self, wait=("smtp",), **overrides):
        self.overrides.update({k: str(v) for k, v in overrides.items()})
        cmd = [YOUJUD, "-d", self.data_dir]
        for k, v in self.options().items():
            cmd += ["-o", f"{k}={v}"]
        self.log = open(self.log_path, "ab")
        start_offset = self.log.tell()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        if wait and not self.wait_started(start_offset):
            self.proc.kill()
            raise AssertionError("youjud did not start:\n" + self.read_log())
        return self

    def wait_started(self, offset, timeout=30.0):
        """Waits for this start's "youjud started" line: by then every
        listener is bound, the privileges are dropped and the store is
        checked. Waiting on the log, not on a probe connection, keeps
        the probe from counting against the connection limits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                if b"youjud started" in f.read():
                    return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("youjud did not stop on SIGTERM")
        self.log.close()
        self.proc = None

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        self.proc = None

    def restart(self, **overrides):
        self.stop()
        return self.start(**overrides)

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def sanitizer_reports(self):
        """Reports from AddressSanitizer/UBSan builds in the daemon's log."""
        if not os.path.exists(self.log_path):
            return []
        return [line for line in self.read_log().splitlines()
                if "ERROR: AddressSanitizer" in line or "runtime error:" in line
                or "ERROR: LeakSanitizer" in line]

    def cleanup(self):
        try:
            self.stop()
            reports = self.sanitizer_reports()
            assert not reports, "sanitizer reports in youjud's log:\n" + self.read_log()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def youju_factory():
    made = []

    def make(**kw):
        y = Youju(**kw)
        made.append(y)
        return y

    yield make
    for y in made:
        y.cleanup()


@pytest.fixture
def youju(youju_factory):
    """A running youjud for example.test with the account alice@example.test."""
    y = youju_factory()
    y.init()
    y.add_account(USER, PASSWORD)
    y.start()
    return y


# --- SMTP test helpers (raw client, instances with overrides) ---

class SmtpRaw:
    """A raw SMTP client over a socket: sends exact bytes, reads replies
    without interpreting them, so tests can misbehave as no library would."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, source=None):
        src = (source, 0) if source else None
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=src)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def readline(self):
        while b"\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def reply(self):
        """Reads one (possibly multi-line) reply: (code, [texts]). Each
        text is what follows "NNN-" or "NNN "."""
        texts = []
        while True:
            line = self.readline().decode("utf-8", "replace").rstrip("\r\n")
            if len(line) < 3 or not line[:3].isdigit():
                raise AssertionError(f"malformed reply line {line!r}")
            texts.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return int(line[:3]), texts
            if line[3] != "-":
                raise AssertionError(f"malformed reply line {line!r}")

    def cmd(self, line):
        self.send(line + "\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply()

    def greet(self, helo="client.test", verb="EHLO"):
        code, texts = self.reply()
        assert code == 220, texts
        code, texts = self.cmd(f"{verb} {helo}")
        assert code == 250, texts
        return texts

    def mail(self, sender, rcpts, wire, params=""):
        """One transaction. wire is the DATA content exactly as it goes on
        the wire (dot-stuffed by the caller) and ends in CRLF; the ".CRLF"
        is added here. Returns the reply to the end of data."""
        code, texts = self.cmd(f"MAIL FROM:<{sender}>{params}")
        assert code == 250, texts
        for r in rcpts:
            code, texts = self.cmd(f"RCPT TO:<{r}>")
            assert code == 250, (r, code, texts)
        code, texts = self.cmd("DATA")
        assert code == 354, texts
        self.send(wire + b".\r\n")
        return self.reply()

    def starttls(self, context=None):
        code, texts = self.cmd("STARTTLS")
        assert code == 220, texts
        assert self.buf == b"", "server sent data after 220 to STARTTLS"
        self.sock = (context or unverified()).wrap_socket(self.sock)
        return self.sock

    def closed(self, timeout=5.0):
        """True if the server closes the connection (EOF or reset) within
        timeout with no further data."""
        self.sock.settimeout(timeout)
        try:
            data = self.buf or self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        return data == b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def unverified():
    """A TLS client context that accepts the test servers' self-signed
    certificates."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Pop3Raw:
    """A POP3 client over a bare socket: exact bytes out, replies as bytes.
    tls: implicit TLS (pop3s); rcvbuf: a small receive window, so that the
    server soon blocks writing to us."""

    def __init__(self, port, tls=False, rcvbuf=None, timeout=10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        if tls:
            self.sock = unverified().wrap_socket(self.sock)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.line()

    def login(self):
        """Reads the greeting, then logs in as alice."""
        assert self.line().startswith(b"+OK")
        assert self.cmd("USER " + USER).startswith(b"+OK")
        r = self.cmd("PASS " + PASSWORD)
        assert r.startswith(b"+OK"), r

    def multiline(self):
        """The body of a multi-line response, dot-unstuffed, exactly as
        sent (CRLF kept), without the terminating ".CRLF"."""
        lines = []
        while True:
            line = self.line()
            if line == b".":
                return b"".join(lines)
            if line.startswith(b"."):
                line = line[1:]
            lines.append(line + b"\r\n")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


@pytest.fixture
def smtp_raw():
    """smtp_raw(port, **kw) -> SmtpRaw; all are closed at teardown."""
    opened = []

    def connect(port, **kw):
        c = SmtpRaw(port, **kw)
        opened.append(c)
        return c

    yield connect
    for c in opened:
        c.close()


@pytest.fixture
def youju_with(youju_factory):
    """youju_with(**overrides) -> a running youjud for example.test with
    alice@example.test, started with the given config overrides."""

    def make(accounts=(), **overrides):
        y = youju_factory()
        y.init()
        y.add_account(USER, PASSWORD)
        for address, password in accounts:
            y.add_account(address, password)
        y.start(**overrides)
        return y

    return make
