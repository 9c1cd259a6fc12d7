"""Real IMAP clients against a real youjud: mbsync (isync) syncing both
ways, offlineimap3 syncing once, and neomutt driven in tmux over imaps.
A test is skipped only when its client is not installed
(scripts/deps.sh installs them)."""

import imaplib
import os
import shutil
import subprocess
import time

import pytest

from conftest import PASSWORD, USER, make_tmpdir
from test_imap import deliver, make_msg


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (scripts/deps.sh)")


def imap_state(y):
    """{subject: flags} of INBOX as the server has it."""
    m = imaplib.IMAP4("127.0.0.1", y.ports["imap"], timeout=20)
    m.login(USER, PASSWORD)
    m.select("INBOX", readonly=True)
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    m.logout()
    out = {}
    if data == [None]:
        return out
    for item in data:
        if isinstance(item, tuple):
            subject = item[1].decode().split(":", 1)[1].strip()
            out[subject] = item[0].decode()
    return out


def maildir_files(path):
    files = {}
    for sub in ("cur", "new"):
        d = os.path.join(path, sub)
        for name in os.listdir(d) if os.path.isdir(d) else []:
            with open(os.path.join(d, name), "rb") as f:
                head = f.read().split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n")
            subject = [line for line in head.split(b"\n") if line.startswith(b"Subject:")]
            files[subject[0][9:].decode().strip()] = os.path.join(d, name)
    return files


def run(cmd, timeout=60, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert r.returncode == 0, f"{cmd[0]} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


def mbsync_remote(y):
    """The part of an mbsyncrc that names y's IMAP account as the store
    "remote"."""
    return f"""IMAPAccount test
Host 127.0.0.1
Port {y.ports["imap"]}
User {USER}
Pass {PASSWORD}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account test
"""


def test_mbsync_both_ways(youju):
    need("mbsync")
    deliver(youju, make_msg("first"), make_msg("second"))
    base = make_tmpdir()
    mail = os.path.join(base, "mail")
    os.makedirs(mail)
    rc = os.path.join(base, "mbsyncrc")
    with open(rc, "w") as f:
        f.write(mbsync_remote(youju) + f"""
MaildirStore local
Path {mail}/
Inbox {mail}/INBOX

Channel test
Far :remote:
Near :local:
Patterns INBOX
Create Near
Expunge Both
Sync All
SyncState *
""")
    sync = ["mbsync", "-c", rc, "-a"]
    run(sync)
    files = maildir_files(os.path.join(mail, "INBOX"))
    assert sorted(files) == ["first", "second"]

    # a new message on the server reaches the Maildir
    deliver(youju, make_msg("third"))
    run(sync)
    files = maildir_files(os.path.join(mail, "INBOX"))
    assert sorted(files) == ["first", "second", "third"]

    # a local flag change and a local deletion reach the server
    path = files["first"]
    os.rename(path, path.split(":2,")[0] + ":2,FS")
    os.unlink(files["second"])
    run(sync)
    state = imap_state(youju)
    assert sorted(state) == ["first", "third"]
    assert "\\Flagged" in state["first"] and "\\Seen" in state["first"]
    shutil.rmtree(base, ignore_errors=True)


def test_offlineimap_one_sync(youju):
    need("offlineimap")
    deliver(youju, make_msg("offline one"), make_msg("offline two"))
    base = make_tmpdir()
    mail = os.path.join(base, "mail")
    rc = os.path.join(base, "offlineimaprc")
    with open(rc, "w") as f:
        f.write(f"""[general]
accounts = test
metadata = {base}/meta

[Account test]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {mail}

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {youju.ports["imap"]}
remoteuser = {USER}
remotepass = {PASSWORD}
ssl = no
starttls = no
folderfilter = lambda name: name == "INBOX"
""")
    run(["offlineimap", "-c", rc, "-o", "-u", "quiet"], timeout=120)
    files = maildir_files(os.path.join(mail, "INBOX"))
    assert sorted(files) == ["offline one", "offline two"]
    shutil.rmtree(base, ignore_errors=True)


def tmux(*args):
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=20)


def test_neomutt_in_tmux_over_imaps(youju):
    need("neomutt")
    need("tmux")
    deliver(youju, make_msg("Seen by neomutt"))
    base = make_tmpdir()
    rc = os.path.join(base, "muttrc")
    cert = os.path.join(youju.data_dir, "tls", "cert.pem")
    with open(rc, "w") as f:
        f.write(f"""set imap_user = "{USER}"
set imap_pass = "{PASSWORD}"
set folder = "imaps://127.0.0.1:{youju.ports["imaps"]}/"
set spoolfile = "+INBOX"
set certificate_file = "{cert}"
set ssl_verify_host = no
set header_cache = ""
set message_cachedir = ""
set mail_check = 5
set timeout = 5
set sort = date
set index_format = "%4C %-15.15L %s"
""")
    session = f"yj{os.getpid()}"
    env_cmd = f"TERM=xterm HOME={base} neomutt -n -F {rc}"
    tmux("kill-session", "-t", session)
    r = tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "40", env_cmd)
    assert r.returncode == 0, r.stderr
    try:
        screen = ""
        deadline = time.time() + 30
        while time.time() < deadline:
            screen = tmux("capture-pane", "-p", "-t", session).stdout
            if "Seen by neomutt" in screen:
                break
            time.sleep(0.5)
        assert "Seen by neomutt" in screen, screen
        tmux("send-keys", "-t", session, "q")
    finally:
        tmux("kill-session", "-t", session)
        shutil.rmtree(base, ignore_errors=True)
