"""Hostile-peer and careless-user probes of submission, sendmail, the
queue and POP3 (issue 9): each test here failed before its fix."""
import os
import shutil
import subprocess

import pytest

from conftest import USER, YOUJU
from test_submission_policy import ALICE, BOB, logged_in, two  # noqa: F401

AS_NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")


def sendmail_as_nobody(y, *args, message=b"Subject: x\n\nx\n"):
    os.chmod(y.base, 0o755)
    os.chmod(y.data_dir, 0o711)
    cmd = [*AS_NOBODY, YOUJU, "-d", y.data_dir, "sendmail", *args]
    return subprocess.run(cmd, input=message, capture_output=True, timeout=60)


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv missing")
def test_catch_all_does_not_make_a_local_user_an_account(two):
    # A catch-all delivers nobody@example.test to alice; that must not let
    # the Unix user nobody send as alice through sendmail.
    y = two()
    y.cli("alias", "add", "@example.test", ALICE)
    r = sendmail_as_nobody(y, "-f", ALICE, BOB)
    assert r.returncode == 69 and b"553 5.7.1" in r.stderr, r
    r = sendmail_as_nobody(y, BOB, message=b"From: Alice <alice@example.test>\n\nx\n")
    assert r.returncode == 69 and b"553 5.7.1" in r.stderr, r
    r = sendmail_as_nobody(y, BOB)
    assert r.returncode == 0, r.stderr


def test_alias_named_like_an_account_does_not_lend_its_target(two, smtp_raw):
    # alice's mail redirected to bob (an alias with alice's own address):
    # alice still logs in, but only as alice, never as bob.
    y = two()
    y.cli("alias", "add", ALICE, BOB)
    c = logged_in(y, smtp_raw)
    assert c.cmd(f"MAIL FROM:<{BOB}>")[0] == 553
    assert c.cmd(f"MAIL FROM:<{ALICE}>")[0] == 250
