"""The cache of verified logins (auth_cache_ttl): a login seen lately
skips the password hash, in IMAP, POP3 and SMTP AUTH alike, and a
changed password, a removed account or a wrong password is never taken
from it."""
import imaplib
import os
import poplib
import smtplib
import time

import pytest

from conftest import USER, PASSWORD


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def imap_login(y, password=PASSWORD, user=USER):
    m = imaplib.IMAP4("127.0.0.1", y.ports["imap"], timeout=30)
    try:
        m.login(user, password)
        m.logout()
        return True
    except imaplib.IMAP4.error:
        return False


def pop_login(y, password=PASSWORD):
    p = poplib.POP3("127.0.0.1", y.ports["pop3"], timeout=30)
    p.user(USER)
    try:
        p.pass_(password)
        p.quit()
        return True
    except poplib.error_proto:
        return False


def smtp_login(y, password=PASSWORD):
    with smtplib.SMTP("127.0.0.1", y.ports["submission"], timeout=30) as s:
        try:
            s.login(USER, password)
            return True
        except smtplib.SMTPAuthenticationError:
            return False


def login_cpu(y, n):
    """youjud's CPU seconds for n IMAP logins."""
    before = cpu_seconds(y.proc.pid)
    for _ in range(n):
        assert imap_login(y)
    return cpu_seconds(y.proc.pid) - before


def test_repeated_logins_skip_the_hash(youju_with):
    """Each yescrypt verification takes tens of milliseconds of CPU: with
    the cache, 20 logins cost about one; with auth_cache_ttl=0, 20."""
    cached = login_cpu(youju_with(), 20)
    uncached = login_cpu(youju_with(auth_cache_ttl="0"), 20)
    assert cached < uncached / 3, (cached, uncached)


@pytest.mark.parametrize("login", [imap_login, pop_login, smtp_login])
def test_a_changed_password_is_refused_at_once(youju_with, login):
    y = youju_with(auth_failure_delay="0")
    assert login(y)
    assert login(y)
    y.cli("account", "passwd", USER, "--password-stdin", input="new-secret\n")
    assert not login(y)
    assert login(y, "new-secret")
    assert login(y, "new-secret")
    assert not login(y)


def test_the_cache_is_shared_by_the_protocols(youju_with):
    y = youju_with()
    assert imap_login(y)
    before = cpu_seconds(y.proc.pid)
    for _ in range(5):
        assert pop_login(y)
        assert smtp_login(y)
    # Ten logins without a hash: far less than ten hashes (each at least
    # 10 ms).
    assert cpu_seconds(y.proc.pid) - before < 0.05


def test_a_removed_account_is_refused(youju_with):
    y = youju_with(auth_failure_delay="0", accounts=[("bob@example.test", "bob-secret")])
    assert imap_login(y, "bob-secret", "bob@example.test")
    y.cli("account", "del", "bob@example.test")
    assert not imap_login(y, "bob-secret", "bob@example.test")
    # Added again with the same password: a new account, checked afresh.
    y.add_account("bob@example.test", "bob-secret")
    assert imap_login(y, "bob-secret", "bob@example.test")


def test_failures_keep_their_delay_after_a_cached_login(youju_with):
    y = youju_with(auth_failure_delay="1s", auth_penalty_max="0")
    assert imap_login(y)
    assert imap_login(y)
    t = time.monotonic()
    assert not imap_login(y, "wrong")
    assert time.monotonic() - t >= 0.9
    # The failure was counted and logged as any other.
    assert "auth failed user=alice@example.test method=LOGIN" in y.read_log()
    assert imap_login(y)


def test_cache_off_still_logs_in(youju_with):
    y = youju_with(auth_cache_ttl="0", auth_failure_delay="0")
    assert imap_login(y)
    assert imap_login(y)
    assert not imap_login(y, "wrong")
    y.cli("account", "passwd", USER, "--password-stdin", input="new-secret\n")
    assert not imap_login(y)
    assert imap_login(y, "new-secret")
