#!/usr/bin/python3
"""Writes tests/data/mime/: what a mature IMAP server (Debian's dovecot-imapd)
answers for ENVELOPE, BODY and BODYSTRUCTURE of every message of the test
corpus, as the expected results of tests/unit/test-mime.c.

Usage (as root, after `scripts/deps.sh bench`):
    tests/tools/mime-reference.py [TESTDATA]     (default ../shared/testdata)

A private Dovecot runs in a fresh temporary directory, entirely as the
unprivileged user nobody, listening on a free port on 127.0.0.1 (never the
system service); the script logs in over IMAP, and stops it at the end. Each
message has its line ends made CRLF (as youju's store keeps messages), is
APPENDed, and FETCHed one item at a time. Each expected
file holds the exact bytes of the three items, each as
"NAME SP value CRLF", literals included. Files named *.youju next to one
override it where youju deliberately answers differently (see README there).
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import imapxc  # noqa: E402
OUT = os.path.normpath(os.path.join(HERE, "..", "data", "mime"))
ITEMS = ("ENVELOPE", "BODY", "BODYSTRUCTURE")


def read_reply(out, tag):
    """Untagged lines (literals kept inline) until the tagged OK."""
    lines, tagged = imapxc.read_response(out, tag)
    if not tagged.startswith(tag + b" OK"):
        raise RuntimeError(tagged)
    return lines


def fetch_item(line, seq, item):
    prefix = b"* %d FETCH (%s " % (seq, item.encode())
    if not line.startswith(prefix) or not line.endswith(b")\r\n"):
        raise RuntimeError("unexpected: %r" % line[:200])
    return line[len(prefix):-3]


DOVECOT_CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/log
ssl = no
listen = 127.0.0.1
protocols = imap
disable_plaintext_auth = no
auth_mechanisms = plain
default_internal_user = nobody
default_internal_group = nogroup
default_login_user = nobody
mail_location = maildir:{d}/Maildir
passdb {{
  driver = static
  args = password=reference
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_dovecot(tmp, extra=""):
    """Starts a private Dovecot as nobody; returns its port. extra: more
    configuration (imap-reference.py's conversation needs some)."""
    port = free_port()
    conf = os.path.join(tmp, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(DOVECOT_CONF.format(d=tmp, port=port) + extra)
    os.chmod(tmp, 0o755)
    for path in (tmp, conf):
        shutil.chown(path, "nobody", "nogroup")
    subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                    "/usr/sbin/dovecot", "-c", conf],
                   env={"PATH": "/usr/bin:/bin"}, check=True)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return port
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("dovecot did not start; see its log")


def stop_dovecot(tmp):
    try:
        with open(os.path.join(tmp, "run", "master.pid")) as f:
            pid = int(f.read())
    except (OSError, ValueError):
        return
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def run(root):
    msgs = imapxc.corpus(root)
    tmp = tempfile.mkdtemp(prefix="mime-ref-")
    try:
        port = start_dovecot(tmp)
        sock = socket.create_connection(("127.0.0.1", port), 30)
        out = sock.makefile("rb")
        greeting = out.readline()
        assert greeting.startswith(b"* OK"), greeting
        n = 0

        def cmd(text, literal=None):
            nonlocal n
            n += 1
            tag = b"t%d" % n
            if literal is None:
                sock.sendall(tag + b" " + text + b"\r\n")
            else:
                sock.sendall(tag + b" " + text + b" {%d+}\r\n" % len(literal)
                             + literal + b"\r\n")
            return read_reply(out, tag)

        cmd(b"LOGIN reference reference")
        cmd(b"SELECT INBOX")
        os.makedirs(OUT, exist_ok=True)
        for seq, rel in enumerate(msgs, 1):
            with open(os.path.join(root, rel), "rb") as f:
                cmd(b"APPEND INBOX", imapxc.canonical(f.read()))
            cmd(b"NOOP")
            result = b""
            for item in ITEMS:
                lines = cmd(b"FETCH %d %s" % (seq, item.encode()))
                lines = [x for x in lines if b" FETCH (" in x]
                result += item.encode() + b" " + fetch_item(lines[0], seq, item) + b"\r\n"
            with open(os.path.join(OUT, imapxc.data_name(rel)), "wb") as f:
                f.write(result)
        cmd(b"LOGOUT")
        sock.close()
        print("wrote %d expected files to %s" % (len(msgs), OUT))
    finally:
        stop_dovecot(tmp)
        shutil.rmtree(tmp)


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else
        os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "testdata")))
