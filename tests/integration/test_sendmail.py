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


def test_dash_bp_and_mailq_list_the_queue(youju):
    r = sendmail(youju, "-bp")
    assert r.returncode == 0 and r.stdout == b"Mail queue is empty\n", r
    r = sendmail(youju, "-f", "cron@example.test", "far@remote.test", "other@remote.test",
                 input=b"Subject: away\n\nx\n")
    assert r.returncode == 0, r.stderr
    r = sendmail(youju, "-bp")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0].split() == ["-Message-", "-Arrival", "Time-", "-Sender/Recipient-"]
    assert lines[1].endswith(" <cron@example.test>"), lines
    rcpts = [l for l in lines if l.endswith("@remote.test>")]
    assert len(rcpts) == 2, lines
    assert lines[-1] == "-- 1 message, 2 recipients", lines
    # called by the name mailq (as the installed link is), the data dir
    # from YOUJU_DATA_DIR; the same listing
    link = os.path.join(youju.base, "mailq")
    os.symlink(YOUJU, link)
    r2 = subprocess.run([link], capture_output=True, timeout=60,
                        env=dict(os.environ, YOUJU_DATA_DIR=youju.data_dir))
    assert r2.returncode == 0, r2.stderr
    assert [l.split()[0] for l in r2.stdout.decode().splitlines()[1:3]] == \
        [l.split()[0] for l in lines[1:3]]


def test_an_ordinary_user_cannot_list_the_queue(youju):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv missing")
    os.chmod(youju.base, 0o755)
    os.chmod(youju.data_dir, 0o711)
    as_nobody = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
    r = sendmail(youju, "-bp", prefix=as_nobody)
    assert r.returncode == 69 and r.stderr.startswith(b"youju: "), r
    assert b"ermission denied" in r.stderr, r.stderr


def run_make_install(destdir, *extra):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    build = os.path.dirname(YOUJU)
    # -o build: install what the test run built, without configuring it again
    return subprocess.run(["make", "-C", repo, "-o", "build", "install", f"BUILD={build}",
                           f"DESTDIR={destdir}", *extra],
                          capture_output=True, timeout=120)


def test_make_install_lays_out_the_files(tmp_path):
    r = run_make_install(tmp_path)
    assert r.returncode == 0, r.stderr
    for f in ("usr/local/sbin/youju", "usr/local/sbin/youjud"):
        assert os.access(tmp_path / f, os.X_OK), f
    for f in ("usr/sbin/sendmail", "usr/bin/mailq"):
        assert os.readlink(tmp_path / f) == "/usr/local/sbin/youju"
    # again: the links are youju's already
    assert run_make_install(tmp_path).returncode == 0


def test_make_install_leaves_another_mtas_sendmail(tmp_path):
    (tmp_path / "usr/sbin").mkdir(parents=True)
    other = tmp_path / "usr/sbin/sendmail"
    other.write_text("#!/bin/sh\n# another MTA\n")
    r = run_make_install(tmp_path)
    assert r.returncode == 0, r.stderr
    assert b"belongs to another MTA; left alone" in r.stderr
    assert other.read_text().endswith("# another MTA\n")
    assert os.readlink(tmp_path / "usr/bin/mailq") == "/usr/local/sbin/youju"
    r = run_make_install(tmp_path, "FORCE=1")
    assert r.returncode == 0, r.stderr
    assert os.readlink(other) == "/usr/local/sbin/youju"
