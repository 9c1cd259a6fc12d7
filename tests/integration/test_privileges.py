"""youjud started as root: it runs as mail_owner, and still reaches a
data dir whose parent that user cannot search (a checkout under /root,
where `make run` puts ./var)."""
import os
import pwd
import smtplib
import subprocess

import pytest

from conftest import USER, PASSWORD, YOUJUD, free_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def daemon_user(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return []


def test_runs_as_mail_owner_from_a_private_parent(youju_factory):
    y = youju_factory()
    os.chmod(y.base, 0o700)          # only root may search the parent
    y.init()
    y.add_account(USER, PASSWORD)
    y.start()
    # real, effective and saved uid are all the service user's
    youju_uid = pwd.getpwnam("youju").pw_uid
    assert daemon_user(y.proc.pid) == [youju_uid] * 4
    with smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=10) as s:
        s.sendmail("bob@example.org", [USER], b"Subject: private parent\r\n\r\nhi\r\n")
    (uid,) = y.uids(USER)
    assert b"Subject: private parent" in y.msg_cat(USER, uid)
    # every file in the data dir belongs to the service user
    for root, dirs, files in os.walk(y.data_dir):
        for name in dirs + files:
            assert os.stat(os.path.join(root, name)).st_uid == youju_uid, name


def test_second_daemon_on_the_same_data_dir_refuses_to_start(youju):
    r = subprocess.run([YOUJUD, "-d", youju.data_dir, "-o", f"smtp_listen=127.0.0.1:{free_port()}",
                        "-o", "pop3_listen=", "-o", "pop3s_listen=", "-o", "dns_servers=127.0.0.1@9"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert f"in use by another youjud (pid {youju.proc.pid})" in r.stderr
