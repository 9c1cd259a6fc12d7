"""Limits on password guessing that hold across connections: failures
remembered per client address with a growing delay, and a bounded number
of password hashes at once (each yescrypt hash takes 16 MiB)."""
import poplib
import re
import threading
import time

from conftest import USER, PASSWORD


def pop(y):
    return poplib.POP3("127.0.0.1", y.ports["pop3"], timeout=60)


def fail_once(y):
    p = pop(y)
    p.user(USER)
    try:
        p.pass_("wrong")
        raise AssertionError("a wrong password was accepted")
    except poplib.error_proto as e:
        assert str(e).startswith("b'-ERR [AUTH]"), e
    p.quit()


def test_failures_are_remembered_across_connections(youju_with):
    y = youju_with(auth_failure_delay="1s", auth_penalty_max="3s")
    t = time.monotonic()
    fail_once(y)
    assert time.monotonic() - t < 1.9
    # The second connection waits for the first one's failure before its
    # password is even checked, then for its own.
    t = time.monotonic()
    fail_once(y)
    assert time.monotonic() - t >= 1.9
    fail_once(y)
    # Three failures remembered: 1 s doubled twice, capped at 3 s. A right
    # password is not told any sooner than a wrong one.
    p = pop(y)
    p.user(USER)
    t = time.monotonic()
    assert p.pass_(PASSWORD).startswith(b"+OK")
    assert time.monotonic() - t >= 2.9
    p.quit()
    # A successful login forgets the address's failures.
    p = pop(y)
    p.user(USER)
    t = time.monotonic()
    assert p.pass_(PASSWORD).startswith(b"+OK")
    assert time.monotonic() - t < 1.0
    p.quit()
    log = y.read_log()
    lines = [l for l in log.splitlines()
             if re.search(r" pop3: session=\S+ auth failed user=\S* method=\S+ client=127\.0\.0\.1 ", l)]
    assert len(lines) == 3, log
    assert lines[2].endswith(" remembered=3")


def test_parallel_guessers_from_one_address_are_slowed(youju_with):
    """Ten connections from one address, three guesses each: the guesses
    queue behind each other's penalty instead of running side by side."""
    # 30 failures of one account: its own limit is not what this measures
    y = youju_with(auth_failure_delay="1s", auth_penalty_max="2s", auth_max_failures="3",
                   auth_account_max_failures="0")
    done = []

    def guesser():
        p = pop(y)
        n = 0
        try:
            for _ in range(3):
                p.user(USER)
                try:
                    p.pass_("wrong")
                except poplib.error_proto:
                    n += 1
        except (OSError, EOFError, poplib.error_proto):
            pass
        done.append(n)

    t = time.monotonic()
    threads = [threading.Thread(target=guesser) for _ in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    took = time.monotonic() - t
    assert sum(done) == 30, done
    # Each session's second and third guess wait out the penalty (2 s)
    # plus the failure delay (1 s): at least 1 + 3 + 3 seconds.
    assert took >= 7.0, took


def server_uses_asan(pid):
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_parallel_logins_take_bounded_memory(youju_with):
    """100 failed logins at once used to take youjud from 11 MB to 270 MB
    and more; the hashes now wait for one of auth_hash_limit slots."""
    y = youju_with(auth_failure_delay="0", auth_penalty_max="0", auth_hash_limit="2",
                   client_connection_count_limit="0", auth_account_max_failures="0")
    time.sleep(0.3)
    before = peak_rss_kib(y.proc.pid)
    errors = []

    def one():
        try:
            fail_once(y)
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=one) for _ in range(100)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors[:3]
    grew = peak_rss_kib(y.proc.pid) - before
    if not server_uses_asan(y.proc.pid):
        assert grew < 100 * 1024, f"peak RSS grew by {grew} KiB"
    # Still answering, and the right password still works.
    p = pop(y)
    p.user(USER)
    assert p.pass_(PASSWORD).startswith(b"+OK")
    p.quit()
