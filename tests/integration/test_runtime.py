"""The session runtime: idle sessions parked and resumed, their timeouts,
a stop with many parked sessions, many idle TLS sessions on few threads,
and the limits a slow or silent client cannot beat (TLS handshake, first
command, DATA rate and deadline, file descriptors, pre-auth slots)."""
import os
import re
import resource
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import PASSWORD, USER, YOUJUD, Pop3Raw, SmtpRaw, unverified

# Many client sockets in one test process.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if _soft < min(_hard, 8192):
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(_hard, 8192), _hard))

PARK = {"session_park_delay": "100ms"}


def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads: line")


def wait_for(pred, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def parked_count(y):
    return len(re.findall(r"session=\w+ parked", y.read_log()))


def wait_parked(y, n, timeout=15.0):
    assert wait_for(lambda: parked_count(y) >= n, timeout), \
        f"expected {n} parked sessions, log says {parked_count(y)}"


def message(subject):
    return (f"From: <a@client.test>\r\nTo: <{USER}>\r\nSubject: {subject}\r\n\r\n"
            f"body of {subject}\r\n").encode()


# ---- parking and resuming ----

def test_parked_smtp_woken_by_a_command_in_pieces(youju_with, smtp_raw):
    y = youju_with(**PARK)
    c = smtp_raw(y.ports["smtp"])
    code, _ = c.reply()
    assert code == 220
    wait_parked(y, 1)
    # One command over several TCP segments, with pauses between them.
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    n = parked_count(y)
    for piece in (b"EH", b"LO cli", b"ent.test", b"\r\n"):
        c.send(piece)
        time.sleep(0.05)
    code, texts = c.reply()
    assert code == 250, texts
    assert "resumed: input" in y.read_log()
    # Parked again between commands, and still the same session.
    wait_parked(y, n + 1)
    assert c.mail("a@client.test", [USER], message("parked"))[0] == 250
    assert c.cmd("QUIT")[0] == 221
    assert len(y.uids(USER)) == 1


def test_pipelined_smtp_behind_a_parked_session(youju_with, smtp_raw):
    y = youju_with(**PARK)
    c = smtp_raw(y.ports["smtp"])
    c.greet()
    wait_parked(y, 1)
    batch = (b"MAIL FROM:<a@client.test>\r\nRCPT TO:<" + USER.encode() + b">\r\nDATA\r\n")
    c.send(batch)
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250
    assert c.reply()[0] == 354
    c.send(message("pipelined") + b".\r\nNOOP\r\nQUIT\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250
    assert c.reply()[0] == 221
    assert len(y.uids(USER)) == 1


def test_parked_pop3s_two_commands_in_one_tls_record(youju_with):
    y = youju_with(wait=("smtp", "pop3s"), **PARK)
    p = Pop3Raw(y.ports["pop3s"], tls=True)
    try:
        assert p.line().startswith(b"+OK")
        wait_parked(y, 1)
        # One sendall on an SSL socket is one TLS record.
        n = parked_count(y)
        p.sock.sendall(b"USER " + USER.encode() + b"\r\nPASS " + PASSWORD.encode() + b"\r\n")
        assert p.line().startswith(b"+OK")
        assert p.line().startswith(b"+OK Logged in")
        wait_parked(y, n + 1)
        p.sock.sendall(b"NOOP\r\nSTAT\r\nNOOP\r\n")
        assert p.line() == b"+OK"
        assert p.line().startswith(b"+OK 0 0")
        assert p.line() == b"+OK"
        assert p.cmd("QUIT").startswith(b"+OK")
    finally:
        p.close()


def test_parked_smtp_after_starttls(youju_with, smtp_raw):
    y = youju_with(**PARK)
    c = smtp_raw(y.ports["smtp"])
    c.greet()
    c.starttls()
    wait_parked(y, 1)
    n = parked_count(y)
    c.send(b"EHLO client.test\r\nNOOP\r\n")
    code, texts = c.reply()
    assert code == 250 and "STARTTLS" not in texts
    assert c.reply()[0] == 250
    wait_parked(y, n + 1)
    assert c.mail("a@client.test", [USER], message("tls parked"))[0] == 250


def test_parked_sessions_time_out_with_goodbye(youju_with, smtp_raw):
    y = youju_with(wait=("smtp", "pop3"), smtpd_timeout="2s", pop3_timeout="2s", **PARK)
    c = smtp_raw(y.ports["smtp"])
    c.greet()
    p = Pop3Raw(y.ports["pop3"])
    try:
        assert p.line().startswith(b"+OK")
        wait_parked(y, 2)
        t0 = time.monotonic()
        code, texts = c.reply()
        assert code == 421 and "4.4.2" in texts[0], texts
        assert c.closed()
        assert p.line().startswith(b"-ERR")
        assert time.monotonic() - t0 < 5
        assert "resumed: timeout" in y.read_log()
    finally:
        p.close()


def test_sigterm_with_500_parked_sessions(youju_with):
    y = youju_with(client_connection_count_limit="0", smtpd_client_connection_count_limit="0",
                   **PARK)
    clients = []
    try:
        for i in range(500):
            c = SmtpRaw(y.ports["smtp"], source=f"127.0.{1 + i // 200}.{1 + i % 200}")
            clients.append(c)
        for c in clients:
            assert c.reply()[0] == 220
        wait_parked(y, 500, timeout=30)
        t0 = time.monotonic()
        y.proc.send_signal(signal.SIGTERM)
        y.proc.wait(timeout=15)
        assert time.monotonic() - t0 < 5
        for c in clients:
            code, texts = c.reply()
            assert code == 421 and "4.3.2" in texts[0], texts
    finally:
        for c in clients:
            c.close()


def test_1000_idle_tls_sessions_on_few_threads(youju_with):
    y = youju_with(wait=("smtp", "pop3s"), client_connection_count_limit="0", **PARK)
    ctx = unverified()
    socks = []
    try:
        for i in range(1000):
            raw = socket.create_connection(("127.0.0.1", y.ports["pop3s"]), timeout=20,
                                           source_address=(f"127.1.{i // 250}.{1 + i % 250}", 0))
            s = ctx.wrap_socket(raw)
            socks.append(s)
        for s in socks:
            assert s.recv(512).startswith(b"+OK")
        wait_parked(y, 1000, timeout=60)
        assert wait_for(lambda: threads(y.proc.pid) < 20, timeout=20), threads(y.proc.pid)
        # All still alive: every one answers.
        for s in socks[::50]:
            s.sendall(b"USER " + USER.encode() + b"\r\n")
            assert s.recv(512).startswith(b"+OK")
    finally:
        for s in socks:
            s.close()


# ---- time limits ----

def test_silent_implicit_tls_client_is_dropped_after_the_handshake_timeout(youju_with):
    y = youju_with(wait=("smtp", "pop3s"), tls_handshake_timeout="1s", **PARK)
    s = socket.create_connection(("127.0.0.1", y.ports["pop3s"]), timeout=10)
    t0 = time.monotonic()
    try:
        assert s.recv(100) == b""
    except ConnectionResetError:
        pass
    assert time.monotonic() - t0 < 4
    s.close()
    assert "TLS handshake failed" in y.read_log()


def test_silent_starttls_client_is_dropped_after_the_handshake_timeout(youju_with, smtp_raw):
    y = youju_with(tls_handshake_timeout="1s", smtpd_timeout="60s")
    c = smtp_raw(y.ports["smtp"])
    c.greet()
    assert c.cmd("STARTTLS")[0] == 220
    t0 = time.monotonic()
    assert c.closed(timeout=10)
    assert time.monotonic() - t0 < 4


def test_first_command_timeout(youju_with, smtp_raw):
    y = youju_with(first_command_timeout="1s", smtpd_timeout="60s", **PARK)
    c = smtp_raw(y.ports["smtp"])
    assert c.reply()[0] == 220
    t0 = time.monotonic()
    code, texts = c.reply()
    assert code == 421 and "4.4.2" in texts[0], texts
    assert time.monotonic() - t0 < 4
    # After the first command the idle timeout is the session's own.
    c2 = smtp_raw(y.ports["smtp"])
    c2.greet()
    time.sleep(2.5)
    assert c2.cmd("NOOP")[0] == 250


def _drip(c, data, every):
    for b in data:
        c.send(bytes([b]))
        time.sleep(every)


def test_slow_drip_data_is_ended_by_the_minimum_rate(youju_with, smtp_raw):
    y = youju_with(smtpd_timeout="3s", smtpd_min_data_rate="100")
    c = smtp_raw(y.ports["smtp"])
    c.greet()
    assert c.cmd("MAIL FROM:<a@client.test>")[0] == 250
    assert c.cmd(f"RCPT TO:<{USER}>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    t0 = time.monotonic()
    c.sock.settimeout(0.5)
    got = None
    # One byte a second: never idle for the 3 s timeout, far below 100 B/s.
    for i in range(20):
        try:
            c.send(b"x")
        except OSError:
            break
        try:
            got = c.reply()
            break
        except socket.timeout:
            time.sleep(0.5)
    assert got is not None and got[0] == 421 and "4.4.2" in got[1][0], got
    assert time.monotonic() - t0 < 6
    assert y.uids(USER) == []


def test_message_deadline(youju_with, smtp_raw):
    y = youju_with(smtpd_timeout="10s", smtpd_min_data_rate="0", smtpd_message_deadline="2s")
    c = smtp_raw(y.ports["smtp"])
    c.greet()
    assert c.cmd("MAIL FROM:<a@client.test>")[0] == 250
    assert c.cmd(f"RCPT TO:<{USER}>")[0] == 250
    c.send(b"BDAT 1000000\r\n")
    c.sock.settimeout(0.3)
    t0 = time.monotonic()
    got = None
    while time.monotonic() - t0 < 8:
        try:
            c.send(b"y" * 1000)
        except OSError:
            break
        try:
            got = c.reply()
            break
        except socket.timeout:
            pass
    assert got is not None and got[0] == 421 and "4.4.2" in got[1][0], got
    assert time.monotonic() - t0 < 5
    assert y.uids(USER) == []


# ---- slots ----

def start_with_nofile(y, nofile, **overrides):
    """Starts youjud with RLIMIT_NOFILE at nofile (soft and hard)."""
    def low():
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    y.overrides.update({k: str(v) for k, v in overrides.items()})
    cmd = [YOUJUD, "-d", y.data_dir]
    for k, v in y.options().items():
        cmd += ["-o", f"{k}={v}"]
    y.log = open(y.log_path, "ab")
    offset = y.log.tell()
    y.proc = subprocess.Popen(cmd, stdout=y.log, stderr=y.log, preexec_fn=low)
    # No probe connection: it would hold a descriptor for a moment.
    assert y.wait_started(offset), y.read_log()
    return y


def test_out_of_file_descriptors_gives_421(youju_factory):
    y = youju_factory()
    y.init()
    start_with_nofile(y, 48, max_connections="500")
    if "open files limit raised" in y.read_log():
        pytest.skip("youjud could raise its hard limit; no way to run out here")
    clients, refused = [], []
    try:
        for i in range(40):
            c = SmtpRaw(y.ports["smtp"], timeout=5)
            code, texts = c.reply()
            (clients if code == 220 else refused).append((c, code, texts))
        assert clients, "no client was served"
        assert refused, "no client was refused"
        for c, code, texts in refused:
            assert code == 421 and "too many connections" in texts[0], (code, texts)
        p = Pop3Raw(y.ports["pop3"], timeout=5)
        assert p.line().startswith(b"-ERR"), y.read_log()[-3000:]
        p.close()
        time.sleep(0.5)
        assert y.read_log().count("Too many open files") <= 2
    finally:
        for c, _, _ in clients + refused:
            c.close()
    # Room again once sessions end.
    def served():
        c = SmtpRaw(y.ports["smtp"], timeout=5)
        try:
            return c.reply()[0] == 220
        finally:
            c.close()
    assert wait_for(served, timeout=10, step=0.2)


def test_low_open_files_limit_is_reported_or_raised(youju_factory):
    y = youju_factory()
    y.init()
    start_with_nofile(y, 64, max_connections="500")
    y.stop()
    out = y.read_log()
    # Root may raise the hard limit too (given CAP_SYS_RESOURCE); if not,
    # the start-up log says what is missing.
    assert ("open files limit raised to 756 for max_connections=500" in out or
            re.search(r"open files limit is 64 \(hard limit 64\), but max_connections=500 "
                      r"needs 756", out)), out


def test_silent_clients_cannot_lock_out_new_ones(youju_with, smtp_raw):
    """Idle sockets from 13 addresses fill the pre-auth slots; new SMTP and
    POP3 clients still get in (the idlest pre-auth sessions make room),
    and logged-in sessions are never the ones that go."""
    y = youju_with(accounts=[("bob@example.test", "pw-bob-123")], wait=("smtp", "pop3"),
                   max_connections="300", max_preauth_connections="150",
                   preauth_stress_timeout="1s",
                   **PARK)
    # A logged-in POP3 session, idle through it all.
    keeper = Pop3Raw(y.ports["pop3"])
    assert keeper.line().startswith(b"+OK")
    assert keeper.cmd("USER bob@example.test").startswith(b"+OK")
    assert keeper.cmd("PASS pw-bob-123").startswith(b"+OK")
    idle = []
    try:
        for i in range(13 * 20):
            port = y.ports["smtp"] if i % 2 else y.ports["pop3"]
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                             source_address=(f"127.2.0.{1 + i % 13}", 0))
                idle.append(s)
            except OSError:
                pass
        wait_parked(y, 150, timeout=30)
        time.sleep(1.5)     # idle past preauth_stress_timeout
        for _ in range(5):
            c = smtp_raw(y.ports["smtp"], source="127.3.0.1")
            c.greet()
            assert c.mail("a@client.test", [USER], message("through"))[0] == 250
            c.cmd("QUIT")
            c.close()
            p = Pop3Raw(y.ports["pop3"])
            try:
                p.login()
                assert p.cmd("QUIT").startswith(b"+OK")
            finally:
                p.close()
        assert keeper.cmd("NOOP") == b"+OK"
        assert "pre-auth slots are full" in y.read_log()
    finally:
        keeper.close()
        for s in idle:
            s.close()
