"""Hostile-peer and careless-user probes of submission, sendmail, the
queue and POP3 (issue 9): each test here failed before its fix."""
import os
import shutil
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import YOUJU, sqlite_only
from queuenet import Mx
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


@sqlite_only("about the SQLite database files")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv missing")
def test_a_searchable_data_dir_does_not_expose_the_database(youju):
    # docs/cli.md: the data dir may be 0711 so that every local user
    # reaches sendmail.sock; the database (password hashes) must still be
    # closed to them, whatever the umask was.
    os.chmod(youju.base, 0o755)
    os.chmod(youju.data_dir, 0o711)
    r = sendmail_as_nobody(youju, ALICE)
    assert r.returncode == 0, r.stderr
    for name in ("youju.db", "youju.db-wal", "youju.db-shm"):
        path = os.path.join(youju.data_dir, name)
        if os.path.exists(path):
            assert os.stat(path).st_mode & 0o007 == 0, (name, oct(os.stat(path).st_mode))
    r = subprocess.run([*AS_NOBODY, "cat", os.path.join(youju.data_dir, "youju.db")],
                       capture_output=True, timeout=30)
    assert r.returncode != 0 and b"ermission denied" in r.stderr


def test_sendmail_keeps_the_rest_of_a_line_after_a_nul_byte(youju):
    cmd = [YOUJU, "-d", youju.data_dir, "sendmail", ALICE]
    r = subprocess.run(cmd, input=b"Subject: nul\n\nbefore\x00after\nnext\n", capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    body = youju.msg_cat(ALICE, youju.uids(ALICE)[-1]).split(b"\r\n\r\n", 1)[1]
    assert b"after\r\nnext\r\n" in body, body


def test_sender_field_must_be_owned_too(two, smtp_raw):
    # "Sender: bob" makes clients show "bob on behalf of alice".
    y = two()
    c = logged_in(y, smtp_raw)
    for head, code in [(b"From: alice@example.test\r\nSender: bob@example.test\r\n", 553),
                       (b"From: alice@example.test\r\nSender: a@x.test, b@x.test\r\n", 553),
                       (b"From: alice@example.test\r\nSender: alice@example.test\r\n"
                        b"Sender: sales@example.test\r\n", 553),
                       (b"From: sales@example.test\r\nSender: Alice <alice@example.test>\r\n", 250),
                       (b"Sender: sales@example.test\r\n", 250)]:
        assert c.cmd(f"MAIL FROM:<{ALICE}>")[0] == 250
        assert c.cmd(f"RCPT TO:<{BOB}>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(head + b"Subject: s\r\n\r\nx\r\n.\r\n")
        got, texts = c.reply()
        assert got == code, (head, got, texts)
    assert "header_sender=<bob@example.test> result=rejected" in y.read_log()


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv missing")
def test_sendmail_null_sender_gets_the_callers_from(youju):
    # "sendmail -f ''" (cron, vacation scripts) used to add "From: <>",
    # which is no address, and which submission then refused.
    r = sendmail_as_nobody(youju, "-f", "", ALICE)
    assert r.returncode == 0, r.stderr
    msg = youju.msg_cat(ALICE, youju.uids(ALICE)[-1])
    assert b"Return-Path: <>\r\n" in msg
    assert b"\r\nFrom: <nobody@example.test>\r\n" in msg, msg


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv missing")
def test_sendmail_sees_a_from_field_with_blanks_before_its_colon(youju):
    # It added a second From:, and submission refused the two.
    r = sendmail_as_nobody(youju, ALICE, message=b"From : nobody@example.test\nSubject: b\n\nx\n")
    assert r.returncode == 0, r.stderr
    head = youju.msg_cat(ALICE, youju.uids(ALICE)[-1]).split(b"\r\n\r\n")[0]
    assert head.lower().count(b"\r\nfrom") == 1, head


def test_sendmail_t_reads_fields_with_blanks_before_the_colon(youju_with):
    y = youju_with(accounts=[(BOB, "bob-password-1")])
    cmd = [YOUJU, "-d", y.data_dir, "sendmail", "-t"]
    r = subprocess.run(cmd, input=b"To : alice@example.test\nCc\t: bob@example.test\n\nx\n",
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert y.uids(ALICE) and y.uids(BOB)


def test_sendmail_socket_does_not_start_tls(youju):
    # EHLO there does not offer STARTTLS; the command must not start it.
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    sock.connect(os.path.join(youju.data_dir, "sendmail.sock"))
    f = sock.makefile("rb")
    assert f.readline().startswith(b"220 ")
    sock.sendall(b"EHLO x\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    sock.sendall(b"STARTTLS\r\nNOOP\r\n")
    assert f.readline().startswith(b"503 ")
    assert f.readline().startswith(b"250 ")
    sock.close()


def test_bounce_and_hold_leave_an_entry_being_sent_alone(youju_with):
    # A bounce of a recipient whose delivery was under way told the sender
    # it failed, and then the message was delivered all the same.
    sink = Mx(0, slow=4, host="127.0.0.1")
    try:
        y = youju_with(relayhost=f"[127.0.0.1]:{sink.port}", queue_run_delay="1s")
        c = smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=30)
        c.sendmail(ALICE, ["far@remote.test"], b"From: alice@example.test\r\n\r\nx\r\n")
        c.quit()
        deadline = time.monotonic() + 20
        while "claimed by: -" in y.cli("queue", "show", "1").stdout:
            assert time.monotonic() < deadline, y.read_log()
            time.sleep(0.1)
        for op in ("bounce", "hold"):
            r = y.cli("queue", op, "1", check=False)
            assert r.returncode == 1 and "is being sent now" in r.stderr, (op, r)
        deadline = time.monotonic() + 20
        while "the queue is empty" not in y.cli("queue", "list").stdout:
            assert time.monotonic() < deadline, y.read_log()
            time.sleep(0.2)
        assert sink.messages == 1 and y.uids(ALICE) == []
    finally:
        sink.close()


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv missing")
def test_one_local_user_cannot_lock_others_out_of_the_sendmail_socket(youju_with):
    # Every local connection counted as the one client "local": a user
    # holding client_connection_count_limit of them idle stopped root's
    # cron mail.
    y = youju_with(client_connection_count_limit="3")
    os.chmod(y.base, 0o755)
    os.chmod(y.data_dir, 0o711)
    hold = ("import socket, sys, time\n"
            "s = [socket.socket(socket.AF_UNIX) for _ in range(4)]\n"
            "got = []\n"
            "for x in s:\n"
            "    x.settimeout(10); x.connect(sys.argv[1]); got.append(x.recv(100)[:3])\n"
            "print(b' '.join(got).decode(), flush=True)\n"
            "time.sleep(30)\n")
    holder = subprocess.Popen([*AS_NOBODY, "/usr/bin/python3", "-c", hold,
                               os.path.join(y.data_dir, "sendmail.sock")],
                              stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().split() == [b"220", b"220", b"220", b"421"]
        r = subprocess.run([YOUJU, "-d", y.data_dir, "sendmail", ALICE],
                           input=b"Subject: cron\n\nx\n", capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
    finally:
        holder.kill()
        holder.wait()


def test_sendmail_bs_and_bi(youju):
    # Alpine sends with "sendmail -bs -odb -oem"; package scripts run
    # "newaliases" (sendmail -bi). Both were usage errors.
    dialogue = (b"EHLO client\r\nMAIL FROM:<root@example.test>\r\n"
                b"RCPT TO:<alice@example.test>\r\nDATA\r\n"
                b"Subject: via -bs\r\n\r\nhello\r\n.\r\nQUIT\r\n")
    r = subprocess.run([YOUJU, "-d", youju.data_dir, "sendmail", "-bs", "-odb", "-oem"],
                       input=dialogue, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    codes = [line[:3] for line in r.stdout.split(b"\r\n") if line[3:4] == b" "]
    assert codes == [b"220", b"250", b"250", b"250", b"354", b"250", b"221"], r.stdout
    assert b"Subject: via -bs" in youju.msg_cat(ALICE, youju.uids(ALICE)[-1])
    for opt in ("-bi", "-I"):
        r = subprocess.run([YOUJU, "-d", youju.data_dir, "sendmail", opt],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr


def test_sendmail_refused_recipient_does_not_cost_the_others(youju_with):
    # "mail -s x root typo": one unknown recipient stopped the whole
    # message, so the valid ones got nothing (and cron ignores the status).
    y = youju_with(accounts=[(BOB, "bob-password-1")])
    r = subprocess.run([YOUJU, "-d", y.data_dir, "sendmail", ALICE, "typo@example.test", BOB],
                       input=b"Subject: partly\n\nx\n", capture_output=True, timeout=60)
    assert r.returncode == 69 and b"550 5.1.1 <typo@example.test>" in r.stderr, r
    for who in (ALICE, BOB):
        assert b"Subject: partly" in y.msg_cat(who, y.uids(who)[-1])


def test_sendmail_bare_name_too_long_with_the_domain(youju_with):
    # A bare name that fits on its own but not with the domain added: a
    # usage error naming it, and the other recipients still get the mail.
    y = youju_with(accounts=[(BOB, "bob-password-1")])
    long_name = "u" * 320
    r = subprocess.run([YOUJU, "-d", y.data_dir, "sendmail", long_name, BOB],
                       input=b"Subject: long\n\nx\n", capture_output=True, timeout=60)
    assert r.returncode == 64 and b"recipient too long with the domain" in r.stderr, r
    assert b"Subject: long" in y.msg_cat(BOB, y.uids(BOB)[-1])
    r = subprocess.run([YOUJU, "-d", y.data_dir, "sendmail", "-f", long_name, BOB],
                       input=b"Subject: long2\n\nx\n", capture_output=True, timeout=60)
    assert r.returncode == 64 and b"sender address too long" in r.stderr, r
    assert len(y.uids(BOB)) == 1


def test_sendmail_bare_user_names_are_local(youju):
    # cron runs "sendmail -FCronDaemon -i -B8BITMIME -oem root", and
    # "mail -s x alice" passes "alice": RCPT TO:<alice> got 501.
    youju.cli("alias", "add", "root@example.test", ALICE)
    cron = [YOUJU, "-d", youju.data_dir, "sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem"]
    r = subprocess.run([*cron, "root"], input=b"Subject: cron\n\nx\n", capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*cron, "-f", "cron", "-t"], input=b"To: alice\nSubject: t\n\nx\n",
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    msg = youju.msg_cat(ALICE, youju.uids(ALICE)[-1])
    assert b"Return-Path: <cron@example.test>" in msg and len(youju.uids(ALICE)) == 2
