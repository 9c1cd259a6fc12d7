"""Every DKIM signature youju makes verifies with OpenDKIM too
(opendkim-testmsg from Debian's opendkim-tools), besides dkimpy
(test_dkim.py): RSA-2048 and Ed25519, from `youju dkim sign` and from the
server's own signing of submitted mail. OpenDKIM asks the system resolver
on port 53, so it runs in namespaces of its own with nsd serving the keys
there (opendkim_ns.py)."""
import json
import os
import shutil
import smtplib
import subprocess
import sys

import pytest

from conftest import DOMAIN, PASSWORD, USER, make_tmpdir
from test_dkim import keyfile, keys, youju  # noqa: F401 (fixture)

HERE = os.path.dirname(os.path.abspath(__file__))

# OpenDKIM refuses to look at a message without Date: (a syntax error in
# its eyes), so each has the fields RFC 5322 requires.
MESSAGES = {
    "plain": (b"From: Alice <alice@example.test>\r\nTo: bob@example.org\r\n"
              b"Subject: hello\r\nDate: Mon, 30 Nov 2026 12:00:00 +0000\r\n"
              b"Message-ID: <1@example.test>\r\n\r\nHello, Bob.\r\n"),
    "folded": (b"From: alice@example.test\r\nTo: bob@example.org,\r\n\tcarol@example.org\r\n"
               b"Subject:  spaced   out \t\r\n  and folded\r\n"
               b"Date: Mon, 30 Nov 2026 12:00:00 +0000\r\nMessage-ID: <2@example.test>\r\n"
               b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
               b"Trailing spaces   \r\n\tand tabs\t\r\n\r\n\r\n"),
    "empty": (b"From: alice@example.test\r\nDate: Mon, 30 Nov 2026 12:00:00 +0000\r\n"
              b"Message-ID: <3@example.test>\r\nSubject: empty body\r\n\r\n"),
}


def opendkim_verify(zones, messages):
    """{name: (status, stderr)} of opendkim-testmsg for each message."""
    if shutil.which("opendkim-testmsg") is None:
        pytest.fail("opendkim-testmsg missing: scripts/deps.sh installs opendkim-tools")
    d = make_tmpdir()
    with open(os.path.join(d, "zones.json"), "w") as f:
        json.dump(zones, f)
    for name, msg in messages.items():
        with open(os.path.join(d, name + ".eml"), "wb") as f:
            f.write(msg)
    # Root needs no user namespace, and a chroot (as in scripts/fresh-check)
    # forbids making one; others get root inside one with -r.
    userns = [] if os.geteuid() == 0 else ["-r"]
    r = subprocess.run(["unshare", *userns, "-n", "-m", sys.executable,
                        os.path.join(HERE, "opendkim_ns.py"), d],
                       capture_output=True, text=True, timeout=120, cwd=HERE)
    try:
        assert r.returncode == 0, r.stderr
        with open(os.path.join(d, "results.json")) as f:
            return {k[:-4]: tuple(v) for k, v in json.load(f).items()}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def zones_of(records):
    body = ""
    for name, rec in records.items():
        label = name[:-len(DOMAIN) - 1]
        body += f"{label} TXT " + " ".join(f'"{rec[i:i + 200]}"'
                                          for i in range(0, len(rec), 200)) + "\n"
    return {DOMAIN: body}


def test_youju_signs_opendkim_verifies(keys):  # noqa: F811
    signed = {}
    for sel in ("r1", "e1"):
        for name, msg in MESSAGES.items():
            r = youju("dkim", "sign", "--domain", DOMAIN, "--selector", sel, "--key",
                      keyfile(keys, sel), input=msg)
            assert r.returncode == 0, r.stderr
            signed[f"{sel}-{name}"] = r.stdout
    # A changed body must fail there too, or the check proves nothing.
    signed["tampered"] = signed["r1-plain"].replace(b"Hello, Bob.", b"Hello, Eve.")
    got = opendkim_verify(zones_of(keys.records), signed)
    bad = {k: v for k, v in got.items() if k != "tampered" and v[0] != 0}
    assert not bad, bad
    assert got["tampered"][0] != 0 and "Bad signature" in got["tampered"][1], got["tampered"]


def test_server_signature_opendkim_verifies(keys):  # noqa: F811
    """Mail submitted to youjud is signed with both keys; OpenDKIM checks
    the stored copy (which starts with Return-Path: and Delivered-To:,
    not signed, as a receiver would see it)."""
    keys.add_account(USER, PASSWORD)
    keys.start()
    with smtplib.SMTP("127.0.0.1", keys.ports["submission"], timeout=30) as s:
        s.login(USER, PASSWORD)
        assert s.sendmail(USER, [USER], MESSAGES["folded"].replace(
            b"alice@example.test", USER.encode())) == {}
    uid = keys.uids(USER)[0]
    msg = keys.msg_cat(USER, uid)
    keys.stop()
    assert msg.count(b"DKIM-Signature:") == 2
    # Each signature on its own: OpenDKIM reports on the first it meets.
    head, rest = msg.split(b"DKIM-Signature:", 1)
    first, second = rest.split(b"DKIM-Signature:", 1)
    body_start = second.index(b"\r\n", second.index(b"b=")) + 2
    while second[body_start:body_start + 1] in (b" ", b"\t"):
        body_start = second.index(b"\r\n", body_start) + 2
    sig2, tail = second[:body_start], second[body_start:]
    only_first = head + b"DKIM-Signature:" + first + tail
    only_second = head + b"DKIM-Signature:" + sig2 + tail
    got = opendkim_verify(zones_of(keys.records), {"rsa": only_first, "ed25519": only_second})
    assert all(v[0] == 0 for v in got.values()), got
