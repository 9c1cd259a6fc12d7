#!/usr/bin/python3
"""Writes tests/data/mime/: what a mature IMAP server (Debian's dovecot-imapd)
answers for ENVELOPE, BODY and BODYSTRUCTURE of every message of the test
corpus, as the expected results of tests/unit/test-mime.c.

Usage (as root, after `scripts/deps.sh bench`):
    tests/tools/mime-reference.py [TESTDATA]     (default ../shared/testdata)

Dovecot's imap binary runs in a fresh temporary directory as the unprivileged
user nobody, in PREAUTH mode over its stdin/stdout (no listener, no system
service, no port). Each message has its line ends made CRLF (as youju's store
keeps messages), is APPENDed, and FETCHed one item at a time. Each expected
file holds the exact bytes of the three items, each as
"NAME SP value CRLF", literals included. Files named *.youju next to one
override it where youju deliberately answers differently (see README there).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "data", "mime"))
ITEMS = ("ENVELOPE", "BODY", "BODYSTRUCTURE")


def corpus(root):
    """Relative paths of the corpus messages, sorted."""
    msgs = []
    for d, _, files in os.walk(os.path.join(root, "messages")):
        for f in files:
            if f.endswith(".eml") or re.match(r"msg_.*\.txt$", f):
                msgs.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(msgs)


def canonical(data):
    """Every line end (CRLF, bare LF, bare CR) becomes CRLF."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def expected_name(rel):
    return rel.replace("messages/", "", 1).replace("/", "_") + ".txt"


def read_reply(out, tag):
    """Untagged lines (literals kept inline) until the tagged one."""
    lines = []
    while True:
        line = out.readline()
        if not line:
            raise RuntimeError("imap closed")
        while True:
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if not m:
                break
            line += out.read(int(m.group(1)))
            line += out.readline()
        if line.startswith(tag + b" "):
            if not line.startswith(tag + b" OK"):
                raise RuntimeError(line)
            return lines
        lines.append(line)


def fetch_item(line, seq, item):
    prefix = b"* %d FETCH (%s " % (seq, item.encode())
    if not line.startswith(prefix) or not line.endswith(b")\r\n"):
        raise RuntimeError("unexpected: %r" % line[:200])
    return line[len(prefix):-3]


def run(root):
    msgs = corpus(root)
    tmp = tempfile.mkdtemp(prefix="mime-ref-")
    try:
        conf = os.path.join(tmp, "dovecot.conf")
        with open(conf, "w") as f:
            f.write("mail_location = maildir:%s/Maildir\n" % tmp)
            f.write("log_path = %s/log\nssl = no\n" % tmp)
        shutil.chown(tmp, "nobody", "nogroup")
        os.chmod(tmp, 0o755)
        env = {"USER": "nobody", "HOME": tmp, "PATH": "/usr/bin:/bin"}
        p = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup",
                              "--clear-groups", "/usr/lib/dovecot/imap", "-c", conf],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        greeting = p.stdout.readline()
        assert greeting.startswith(b"* PREAUTH"), greeting
        n = 0

        def cmd(text, literal=None):
            nonlocal n
            n += 1
            tag = b"t%d" % n
            if literal is None:
                p.stdin.write(tag + b" " + text + b"\r\n")
            else:
                p.stdin.write(tag + b" " + text + b" {%d+}\r\n" % len(literal))
                p.stdin.write(literal + b"\r\n")
            p.stdin.flush()
            return read_reply(p.stdout, tag)

        cmd(b"SELECT INBOX")
        os.makedirs(OUT, exist_ok=True)
        for seq, rel in enumerate(msgs, 1):
            with open(os.path.join(root, rel), "rb") as f:
                cmd(b"APPEND INBOX", canonical(f.read()))
            cmd(b"NOOP")
            result = b""
            for item in ITEMS:
                lines = cmd(b"FETCH %d %s" % (seq, item.encode()))
                lines = [x for x in lines if b" FETCH (" in x]
                result += item.encode() + b" " + fetch_item(lines[0], seq, item) + b"\r\n"
            with open(os.path.join(OUT, expected_name(rel)), "wb") as f:
                f.write(result)
        cmd(b"LOGOUT")
        p.wait(10)
        print("wrote %d expected files to %s" % (len(msgs), OUT))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else
        os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "testdata")))
