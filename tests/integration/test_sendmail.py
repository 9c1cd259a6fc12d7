"""youju sendmail: sendmail(1) as Postfix's, handing messages to the
running youjud over the sendmail socket in the data dir; and s-nail's
mail(1) delivering through it."""
import os
import shutil
import subprocess

import pytest

from conftest import USER, YOUJU

ALICE = USER


def sendmail(y, *args, input=b"", env=None, prefix=()):
    cmd = [*prefix, YOUJU, "-d", y.data_dir, "sendmail", *args]
    return subprocess.run(cmd, input=input, capture_output=True, timeout=60, env=env)


def last_message(y, account):
    uids = y.uids(account)
    assert uids, f"nothing delivered to {account}"
    return y.msg_cat(account, uids[-1])


def test_recipients_as_arguments(youju):
    r = sendmail(youju, ALICE, input=b"Subject: cron\n\nline one\n.\nnot read\n")
    assert r.returncode == 0, r.stderr
    msg = last_message(youju, ALICE)
    assert b"Subject: cron\r\n" in msg and b"line one\r\n" in msg
    assert b"not read" not in msg
    # Fix-ups: From: (the caller's identity), Date:, Message-ID:.
    assert b"\r\nFrom: <root@example.test>\r\n" in msg
    assert b"\r\nDate: " in msg and b"\r\nMessage-ID: <" in msg
    assert b"Return-Path: <root@example.test>" in msg
    assert "local user=root@example.test uid=0" in youju.read_log()


def test_dash_i_keeps_dot_lines_and_dot_stuffing(youju):
    r = sendmail(youju, "-oi", ALICE, input=b"Subject: dots\n\n.\n..x\n.end\n")
    assert r.returncode == 0, r.stderr
    assert b"\r\n\r\n.\r\n..x\r\n.end\r\n" in last_message(youju, ALICE)


def test_dash_t_reads_recipients_and_drops_bcc(youju_with):
    y = youju_with(accounts=[("bob@example.test", "bob-pw-123456"),
                             ("carol@example.test", "carol-pw-1234")])
    r = sendmail(y, "-t", "-i", input=b"To: Alice <alice@example.test>\nCc: bob@example.test\n"
                 b"Bcc: carol@example.test\nSubject: t\n\nhi\n")
    assert r.returncode == 0, r.stderr
    for who in (ALICE, "bob@example.test", "carol@example.test"):
        head = last_message(y, who).split(b"\r\n\r\n")[0]
        assert b"Subject: t" in head and b"Bcc:" not in head
        if who != "carol@example.test":
            assert b"carol@" not in head


def test_dash_f_and_full_name_and_legacy_options(youju):
    r = sendmail(youju, "-oem", "-odi", "-v", "-F", "Cron Daemon", "-f", "cron@example.test",
                 ALICE, input=b"Subject: named\n\nx\n")
    assert r.returncode == 0, r.stderr
    msg = last_message(youju, ALICE)
    assert b"\r\nFrom: \"Cron Daemon\" <cron@example.test>\r\n" in msg
    assert b"Return-Path: <cron@example.test>" in msg


def test_errors(youju):
    r = sendmail(youju, input=b"Subject: x\n\nx\n")
    assert r.returncode == 64 and b"no recipients" in r.stderr
    r = sendmail(youju, "-Z", ALICE)
    assert r.returncode == 64 and b"unknown option -Z" in r.stderr
    r = sendmail(youju, "nobody@example.test", input=b"Subject: x\n\nx\n")
    assert r.returncode == 69 and b"550 5.1.1" in r.stderr
    r = sendmail(youju, "-f", "a@b>\r\nRCPT TO:<x@y", ALICE)
    assert r.returncode == 64 and b"bad sender" in r.stderr
    r = sendmail(youju, "x>@y", input=b"x\n")
    assert r.returncode == 64 and b"bad recipient" in r.stderr
    r = sendmail(youju, "-bp")
    assert r.returncode == 0 and r.stdout


def test_youjud_not_running(youju):
    youju.stop()
    r = sendmail(youju, ALICE, input=b"Subject: x\n\nx\n")
    assert r.returncode == 75 and b"is youjud running" in r.stderr


def test_an_ordinary_user_sends_as_itself_only(youju):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv missing")
    os.chmod(youju.base, 0o755)
    os.chmod(youju.data_dir, 0o711)
    as_nobody = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
    r = sendmail(youju, ALICE, input=b"Subject: from nobody\n\nx\n", prefix=as_nobody)
    assert r.returncode == 0, r.stderr
    msg = last_message(youju, ALICE)
    assert b"Return-Path: <nobody@example.test>" in msg
    assert b"\r\nFrom: <nobody@example.test>\r\n" in msg
    r = sendmail(youju, "-f", "ceo@example.test", ALICE, input=b"Subject: x\n\nx\n",
                 prefix=as_nobody)
    assert r.returncode == 69 and b"553 5.7.1" in r.stderr
    r = sendmail(youju, ALICE, input=b"From: ceo@example.test\nSubject: x\n\nx\n",
                 prefix=as_nobody)
    assert r.returncode == 69 and b"553 5.7.1" in r.stderr


@pytest.mark.skipif(shutil.which("s-nail") is None, reason="s-nail not installed (scripts/deps.sh)")
def test_mail_command_through_sendmail(youju):
    wrapper = os.path.join(youju.base, "sendmail")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexec {YOUJU} -d {youju.data_dir} sendmail \"$@\"\n")
    os.chmod(wrapper, 0o755)
    env = dict(os.environ, HOME=youju.base, MAILRC="/dev/null")
    r = subprocess.run(["s-nail", "-:/", f"-Smta={wrapper}", "-s", "test", ALICE],
                       input=b"hi\n", capture_output=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    msg = last_message(youju, ALICE)
    assert b"Subject: test\r\n" in msg and b"\r\n\r\nhi\r\n" in msg
