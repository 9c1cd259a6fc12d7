"""DKIM keys and signatures through the youju command, cross-checked with
an independent implementation (dkimpy): every signature youju makes must
verify there, and every message dkimpy signs must verify in youju.
`youju dkim sign` and `youju dkim verify` run the same code the server
uses, on a file, with TXT records from a file."""
import base64
import os
import re
import stat
import subprocess

import dkim
import pytest

from conftest import YOUJU, DOMAIN

TESTDATA = os.environ.get("YOUJU_TESTDATA",
                          os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                       "testdata"))
DKIMPY = os.path.join(TESTDATA, "dkim", "dkimpy")
MESSAGES = ["test.message", "test2.message", "test_extra.message", "ed25519test.msg",
            "ed25519test2.msg", "rfc6376.msg"]


def youju(*args, input=None):
    return subprocess.run([YOUJU, *args], input=input, capture_output=True, timeout=60)


def read(name):
    with open(os.path.join(DKIMPY, name), "rb") as f:
        return f.read()


def crlf(msg):
    return re.sub(rb"(?<!\r)\n", b"\r\n", msg)


def record_of(stdout):
    """The TXT value from keygen's zone-file line: its strings joined,
    each at most 255 bytes."""
    strings = re.findall(r'"([^"]*)"', stdout)
    assert strings and all(len(s) <= 255 for s in strings)
    return "".join(strings)


def dnsfunc(records):
    def lookup(name, timeout=5):
        return records.get(name.decode().rstrip("."), "").encode() or None
    return lookup


def dkimpy_ok(msg, records, idx=0):
    try:
        return dkim.DKIM(msg).verify(idx=idx, dnsfunc=dnsfunc(records))
    except dkim.DKIMException:
        return False


@pytest.fixture
def keys(youju_factory):
    """A data dir with an RSA and an Ed25519 key for example.test."""
    y = youju_factory()
    y.init()
    out = {}
    for alg, sel in (("rsa", "r1"), ("ed25519", "e1")):
        r = y.cli("dkim", "keygen", DOMAIN, "--selector", sel, "--algorithm", alg)
        out[sel] = record_of(r.stdout)
    y.records = {f"{sel}._domainkey.{DOMAIN}": rec for sel, rec in out.items()}
    return y


def keyfile(y, sel):
    return os.path.join(y.data_dir, "dkim", DOMAIN, sel + ".key")


def test_keygen_files_and_records(keys):
    for sel in ("r1", "e1"):
        mode = stat.S_IMODE(os.stat(keyfile(keys, sel)).st_mode)
        assert mode == 0o600
    rsa = keys.records[f"r1._domainkey.{DOMAIN}"]
    assert rsa.startswith("v=DKIM1; k=rsa; p=MII")
    assert len(rsa) > 255        # RSA-2048 needs two strings
    ed = keys.records[f"e1._domainkey.{DOMAIN}"]
    assert ed.startswith("v=DKIM1; k=ed25519; p=")
    assert len(base64.b64decode(ed.split("p=")[1])) == 32
    listed = keys.cli("dkim", "list").stdout.splitlines()
    assert [line.split()[:3] for line in listed] == [
        [DOMAIN, "r1", "rsa-2048"], [DOMAIN, "e1", "ed25519-256"]] or \
        sorted(line.split()[1] for line in listed) == ["e1", "r1"]


def test_keygen_errors_and_rotation(keys):
    r = keys.cli("dkim", "keygen", DOMAIN, "--selector", "r1", check=False)
    assert r.returncode != 0 and "already exists" in r.stderr
    r = keys.cli("dkim", "keygen", "other.test", check=False)
    assert r.returncode != 0 and r.stderr.startswith("youju: ")
    r = keys.cli("dkim", "keygen", DOMAIN, "--algorithm", "dsa", check=False)
    assert r.returncode != 0 and "unknown algorithm" in r.stderr
    r = keys.cli("dkim", "keygen", DOMAIN, "--selector", "bad.sel", check=False)
    assert r.returncode != 0 and "bad selector" in r.stderr
    # Rotation: a new selector beside the old; the old goes when removed.
    keys.cli("dkim", "keygen", DOMAIN, "--selector", "r2")
    sels = [line.split()[1] for line in keys.cli("dkim", "list", DOMAIN).stdout.splitlines()]
    assert sorted(sels) == ["e1", "r1", "r2"]
    keys.cli("dkim", "remove", DOMAIN, "r1")
    sels = [line.split()[1] for line in keys.cli("dkim", "list", DOMAIN).stdout.splitlines()]
    assert sorted(sels) == ["e1", "r2"]
    r = keys.cli("dkim", "remove", DOMAIN, "r1", check=False)
    assert r.returncode != 0 and "has no DKIM key" in r.stderr


@pytest.mark.parametrize("name", MESSAGES)
@pytest.mark.parametrize("sel", ["r1", "e1"])
def test_youju_signs_dkimpy_verifies(keys, name, sel):
    r = youju("dkim", "sign", "--domain", DOMAIN, "--selector", sel, "--key",
              keyfile(keys, sel), os.path.join(DKIMPY, name))
    assert r.returncode == 0, r.stderr
    assert dkimpy_ok(r.stdout, keys.records)
    # And youju itself agrees; a changed body fails in both.
    dns = os.path.join(keys.base, "dns.txt")
    with open(dns, "w") as f:
        f.writelines(f"{k} {v}\n" for k, v in keys.records.items())
    # (Some of these messages carry older signatures of their own: only
    # the first result, the new signature's, is youju's concern here.)
    v = youju("dkim", "verify", "--dns", dns, input=r.stdout)
    assert v.stdout.startswith(b"dkim=pass header.d=" + DOMAIN.encode()), v.stdout
    bad = r.stdout + b"tampered\r\n"
    assert not dkimpy_ok(bad, keys.records)
    v = youju("dkim", "verify", "--dns", dns, input=bad)
    assert v.returncode != 0 and v.stdout.startswith(b"dkim=fail"), v.stdout


def dkimpy_keys():
    """dkimpy's own test keys: RSA-1024 and the RFC 8463 Ed25519 key."""
    return [
        (b"rsa-sha256", read("test.private"), "test", read("test.txt").decode().strip()),
        (b"ed25519-sha256", read("ed25519test.key").strip(), "ed",
         read("ed25519test.dns").decode().strip()),
    ]


@pytest.mark.parametrize("name", MESSAGES)
@pytest.mark.parametrize("canon", [(b"simple", b"simple"), (b"relaxed", b"simple"),
                                   (b"simple", b"relaxed"), (b"relaxed", b"relaxed")])
@pytest.mark.parametrize("length", [False, True])
def test_dkimpy_signs_youju_verifies(tmp_path, name, canon, length):
    msg = crlf(read(name))
    dns = tmp_path / "dns.txt"
    lines, signed = [], msg
    for alg, key, sel, rec in dkimpy_keys():
        sig = dkim.sign(msg, sel.encode(), b"example.com", key, canonicalize=canon,
                        signature_algorithm=alg, length=length,
                        include_headers=[b"from", b"to", b"subject", b"date", b"from"])
        signed = sig + signed
        lines.append(f"{sel}._domainkey.example.com {rec}\n")
    dns.write_text("".join(lines))
    v = youju("dkim", "verify", "--dns", str(dns), input=signed)
    assert v.stdout.count(b"dkim=pass header.d=example.com ") == 2, v.stdout


def test_dkimpy_test_data_signed_in_repo():
    """rfc6376.signed.msg: signed simple/simple with the RFC 8463 keys."""
    v = youju("dkim", "verify", "--dns", os.path.join(TESTDATA, "dkim", "rfc8463", "dns.txt"),
              os.path.join(DKIMPY, "rfc6376.signed.msg"))
    assert v.returncode == 0 and v.stdout.count(b"dkim=pass") == 2, v.stdout


def test_unsigned_and_no_from(tmp_path):
    dns = tmp_path / "dns.txt"
    dns.write_text("")
    v = youju("dkim", "verify", "--dns", str(dns), input=b"From: a@b\r\n\r\nhi\r\n")
    assert v.returncode != 0 and v.stdout == b"dkim=none\n"
    r = youju("dkim", "sign", "--domain", "example.com", "--selector", "test", "--key",
              os.path.join(DKIMPY, "test.private"), input=b"To: a@b\r\n\r\nhi\r\n")
    assert r.returncode != 0 and b"no From" in r.stderr
