"""Mail authentication in the SMTP server, end to end: SPF, DKIM, DMARC
and ARC on inbound mail (MX role) against records a real nsd serves on
loopback, the Authentication-Results: and Received-SPF: lines in front of
the stored message, the DMARC actions, the unknown-client policy, and
DKIM signing of submitted mail checked by dkimpy."""
import base64
import os
import re
import smtplib
import subprocess
import tempfile

import dkim
import dns.message
import dns.query
import pytest

from conftest import USER, PASSWORD, HOSTNAME
from dnsserver import DnsServer

ALICE = USER
# The test client connects from 127.0.0.1: outside these networks it is a
# stranger whose mail is checked.
OUTSIDE = "192.0.2.0/24"


def txt(value):
    """A TXT record's data as zone-file strings of at most 200 bytes."""
    return " ".join(f'"{value[i:i + 200]}"' for i in range(0, len(value), 200))


@pytest.fixture(scope="module")
def rsa_key():
    d = tempfile.mkdtemp(prefix="youju-dkimkey-")
    path = os.path.join(d, "key.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", path], check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    with open(path, "rb") as f:
        pem = f.read()
    return pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def sender_zone(record, spf="v=spf1 ip4:127.0.0.1 -all", dmarc="v=DMARC1; p=reject"):
    body = f"@ TXT {txt(spf)}\n"
    if dmarc:
        body += f"_dmarc TXT {txt(dmarc)}\n"
    body += f"sel._domainkey TXT {txt(record)}\n"
    return body


def message(frm="news@sender.test", subject="hello", extra=b""):
    return (b"From: <" + frm.encode() + b">\r\nTo: <alice@example.test>\r\n"
            b"Subject: " + subject.encode() + b"\r\nDate: Mon, 30 Nov 2026 12:00:00 +0000\r\n"
            b"Message-ID: <1@sender.test>\r\n" + extra + b"\r\nBody line.\r\n")


def signed(msg, pem, domain=b"sender.test"):
    sig = dkim.sign(msg, b"sel", domain, pem, include_headers=[b"from", b"to", b"subject"])
    return sig + msg


def send(y, smtp_raw, sender, wire, helo="mail.sender.test"):
    c = smtp_raw(y.ports["smtp"])
    c.greet(helo)
    reply = c.mail(sender, [ALICE], wire)
    c.cmd("QUIT")
    return reply


def stored(y, mailbox=None):
    uids = y.uids(ALICE, mailbox)
    assert len(uids) == 1, y.msg_list(ALICE, mailbox)
    return y.msg_cat(ALICE, uids[0], mailbox)


def authres(msg):
    m = re.search(rb"^Authentication-Results: (.*?)\r\n(?=\S)", msg, re.M | re.S)
    assert m, msg[:800]
    return re.sub(rb"\r\n\s+", b" ", m.group(1)).decode()


def header_names(msg):
    head = msg.split(b"\r\n\r\n", 1)[0]
    return [line.split(b":", 1)[0].decode() for line in head.split(b"\r\n")
            if line and line[:1] not in (b" ", b"\t")]


def checked(youju_with, dns, **kw):
    opts = dict(dns_servers=dns.spec, mynetworks=OUTSIDE)
    opts.update(kw)
    return youju_with(**opts)


def test_all_pass(youju_with, smtp_raw, rsa_key):
    pem, record = rsa_key
    with DnsServer({"sender.test": sender_zone(record)}) as dns:
        y = checked(youju_with, dns)
        assert send(y, smtp_raw, "news@sender.test", signed(message(), pem))[0] == 250
        msg = stored(y)
        y.stop()
    ar = authres(msg)
    assert ar.startswith(HOSTNAME + ";"), ar
    assert "spf=pass smtp.mailfrom=news@sender.test" in ar
    assert "dkim=pass header.d=sender.test header.s=sel" in ar
    assert "dmarc=pass" in ar and "header.from=sender.test" in ar
    assert "arc=none" in ar
    names = header_names(msg)
    # Ours come first, in front of our Received:, and only once.
    assert names.index("Authentication-Results") < names.index("Received")
    assert names.count("Authentication-Results") == 1
    assert re.search(rb"^Received-SPF: pass ", msg, re.M)
    # What the sender signed is still intact after our lines.
    body = msg.split(b"Received:", 1)[1]
    assert b"DKIM-Signature:" in body


def test_dmarc_reject_code(youju_with, smtp_raw, rsa_key):
    _, record = rsa_key
    zone = sender_zone(record, spf="v=spf1 -all")
    with DnsServer({"sender.test": zone}) as dns:
        y = checked(youju_with, dns)
        code, texts = send(y, smtp_raw, "news@sender.test", message())
        assert (code, texts[0][:5]) == (550, "5.7.1"), texts
        assert y.uids(ALICE) == []
        log = y.read_log()
        y.stop()
    assert "result=rejected: DMARC policy of sender.test" in log


def test_dmarc_quarantine_files_into_junk(youju_with, smtp_raw, rsa_key):
    _, record = rsa_key
    zone = sender_zone(record, spf="v=spf1 -all", dmarc="v=DMARC1; p=quarantine")
    with DnsServer({"sender.test": zone}) as dns:
        y = checked(youju_with, dns)
        assert send(y, smtp_raw, "news@sender.test", message())[0] == 250
        assert y.uids(ALICE) == []
        msg = stored(y, "Junk")
        y.stop()
    ar = authres(msg)
    assert "spf=fail" in ar and "dmarc=fail" in ar and "dkim=none" in ar


def test_dmarc_enforce_no_delivers(youju_with, smtp_raw, rsa_key):
    _, record = rsa_key
    zone = sender_zone(record, spf="v=spf1 -all")
    with DnsServer({"sender.test": zone}) as dns:
        y = checked(youju_with, dns, dmarc_enforce="no")
        assert send(y, smtp_raw, "news@sender.test", message())[0] == 250
        msg = stored(y)
        y.stop()
    assert "dmarc=fail" in authres(msg)


def test_trusted_forwarder_override(youju_with, smtp_raw, rsa_key):
    _, record = rsa_key
    zone = sender_zone(record, spf="v=spf1 -all")
    with DnsServer({"sender.test": zone}) as dns:
        y = checked(youju_with, dns, dmarc_trusted_forwarders="127.0.0.0/8")
        assert send(y, smtp_raw, "news@sender.test", message())[0] == 250
        msg = stored(y)
        y.stop()
    ar = authres(msg)
    assert "dmarc=fail" in ar and "override trusted_forwarder" in ar


def test_softfail_and_dkim_pass_aligns(youju_with, smtp_raw, rsa_key):
    pem, record = rsa_key
    zone = sender_zone(record, spf="v=spf1 ~all")
    with DnsServer({"sender.test": zone}) as dns:
        y = checked(youju_with, dns)
        assert send(y, smtp_raw, "news@sender.test", signed(message(), pem))[0] == 250
        msg = stored(y)
        y.stop()
    ar = authres(msg)
    assert "spf=softfail" in ar and "dkim=pass" in ar and "dmarc=pass" in ar
    assert re.search(rb"^Received-SPF: softfail ", msg, re.M)


def test_broken_signature_fails(youju_with, smtp_raw, rsa_key):
    pem, record = rsa_key
    zone = sender_zone(record, dmarc="v=DMARC1; p=none")
    with DnsServer({"sender.test": zone}) as dns:
        y = checked(youju_with, dns)
        wire = signed(message(), pem).replace(b"Body line.", b"Body lime.")
        assert send(y, smtp_raw, "news@sender.test", wire)[0] == 250
        msg = stored(y)
        y.stop()
    ar = authres(msg)
    assert "dkim=fail" in ar and "spf=pass" in ar and "dmarc=pass" in ar


def test_spf_fail_action_reject(youju_with, smtp_raw, rsa_key):
    _, record = rsa_key
    zone = sender_zone(record, spf="v=spf1 -all")
    with DnsServer({"sender.test": zone}) as dns:
        y = checked(youju_with, dns, spf_fail_action="reject")
        c = smtp_raw(y.ports["smtp"])
        c.greet("mail.sender.test")
        code, texts = c.cmd("MAIL FROM:<news@sender.test>")
        assert (code, texts[0][:6]) == (550, "5.7.23"), texts
        # The session goes on: a sender whose SPF does not fail is taken.
        assert c.cmd("MAIL FROM:<>")[0] == 250
        y.stop()


def test_spf_temperror(youju_with, smtp_raw, rsa_key):
    """A domain the DNS server refuses to answer for is a temporary
    error, recorded; the message is delivered."""
    _, record = rsa_key
    with DnsServer({"sender.test": sender_zone(record)}) as dns:
        y = checked(youju_with, dns)
        assert send(y, smtp_raw, "x@elsewhere.test", message(frm="x@elsewhere.test"))[0] == 250
        msg = stored(y)
        y.stop()
    ar = authres(msg)
    assert "spf=temperror" in ar, ar
    assert "dmarc=temperror" in ar, ar


def test_forged_authres_removed(youju_with, smtp_raw, rsa_key):
    pem, record = rsa_key
    forged = (b"Authentication-Results: " + HOSTNAME.encode() +
              b"; dkim=pass header.d=bank.test\r\n"
              b"Authentication-Results:\r\n " + HOSTNAME.upper().encode() + b" (folded);\r\n"
              b"\tspf=pass\r\n"
              b"Authentication-Results: other.example; spf=pass\r\n")
    with DnsServer({"sender.test": sender_zone(record)}) as dns:
        y = checked(youju_with, dns)
        assert send(y, smtp_raw, "news@sender.test",
                    signed(message(extra=forged), pem))[0] == 250
        msg = stored(y)
        y.stop()
    assert msg.count(b"Authentication-Results: " + HOSTNAME.encode()) == 1
    assert b"bank.test" not in msg and b"(folded)" not in msg
    assert b"Authentication-Results: other.example; spf=pass" in msg


def test_mynetworks_is_not_checked(youju_with, smtp_raw, rsa_key):
    _, record = rsa_key
    zone = sender_zone(record, spf="v=spf1 -all")
    with DnsServer({"sender.test": zone}) as dns:
        y = youju_with(dns_servers=dns.spec)
        assert send(y, smtp_raw, "news@sender.test", message())[0] == 250
        msg = stored(y)
        y.stop()
    assert b"Authentication-Results" not in msg.split(b"\r\n\r\n")[0]


@pytest.mark.parametrize("policy,code,enh", [("defer", 450, "4.7.25"),
                                             ("reject", 550, "5.7.25")])
def test_unknown_client(youju_with, smtp_raw, policy, code, enh):
    with DnsServer({"0.0.127.in-addr.arpa": "", "example.net": ""}) as dns:
        y = checked(youju_with, dns, smtpd_peername_lookup="yes",
                    smtpd_reject_unknown_client=policy)
        c = smtp_raw(y.ports["smtp"])
        c.greet("client.test")
        got, texts = c.cmd("MAIL FROM:<bob@example.org>")
        assert (got, texts[0][:6].strip()) == (code, enh), texts
        y.stop()


def test_known_client_passes(youju_with, smtp_raw):
    zones = {
        "0.0.127.in-addr.arpa": "1 PTR client.example.net.\n",
        "example.net": "client A 127.0.0.1\n",
    }
    with DnsServer(zones) as dns:
        y = checked(youju_with, dns, smtpd_peername_lookup="yes",
                    smtpd_reject_unknown_client="reject")
        c = smtp_raw(y.ports["smtp"])
        c.greet("client.test")
        assert c.cmd("MAIL FROM:<bob@example.org>")[0] == 250
        y.stop()


def keygen(y, *args):
    out = y.cli("dkim", "keygen", y.domain, *args).stdout
    name = re.search(r"^(\S+)\s", out, re.M).group(1)
    return name, "".join(re.findall(r'"([^"]*)"', out))


def nsd_dnsfunc(dns_spec):
    host, port = dns_spec.split("@")

    def lookup(name, timeout=5):
        q = dns.message.make_query(name.decode(), "TXT")
        r = dns.query.udp(q, host, port=int(port), timeout=timeout)
        for rrset in r.answer:
            for rd in rrset:
                return b"".join(rd.strings)
        return None
    return lookup


def test_submission_is_signed(youju_factory):
    y = youju_factory()
    y.init()
    y.add_account(USER, PASSWORD)
    rsa_name, rsa_rec = keygen(y, "--selector", "r1")
    ed_name, ed_rec = keygen(y, "--selector", "e1", "--algorithm", "ed25519")
    zone = (f"r1._domainkey TXT {txt(rsa_rec)}\n"
            f"e1._domainkey TXT {txt(ed_rec)}\n")
    with DnsServer({y.domain: zone}) as dns:
        y.start(dns_servers=dns.spec)
        with smtplib.SMTP("127.0.0.1", y.ports["submission"], timeout=30) as s:
            s.login(USER, PASSWORD)
            assert s.sendmail(ALICE, [ALICE], message(frm=ALICE, subject="signed")) == {}
        msg = stored(y)
        y.stop()
        lookup = nsd_dnsfunc(dns.spec)
        # Our signatures come first (after Return-Path:, Delivered-To:).
        d = dkim.DKIM(msg)
        assert d.verify(idx=0, dnsfunc=lookup), msg[:1500]
        assert dkim.DKIM(msg).verify(idx=1, dnsfunc=lookup)
    names = header_names(msg)
    assert names.count("DKIM-Signature") == 2
    assert names.index("DKIM-Signature") < names.index("Received")
    assert b"a=rsa-sha256" in msg and b"a=ed25519-sha256" in msg


def test_submission_without_key_unsigned(youju):
    with smtplib.SMTP("127.0.0.1", youju.ports["submission"], timeout=30) as s:
        s.login(USER, PASSWORD)
        assert s.sendmail(ALICE, [ALICE], message(frm=ALICE)) == {}
    msg = stored(youju)
    assert b"DKIM-Signature" not in msg


def test_relay_from_mynetworks_is_signed_in_the_queue(youju_factory):
    """A message relayed for mynetworks with one of our domains in From:
    is queued with its signature, which dkimpy verifies over the queued
    header lines plus the blob."""
    from test_smtp_roles import sql
    y = youju_factory()
    y.init()
    y.add_account(USER, PASSWORD)
    _, rsa_rec = keygen(y, "--selector", "r1")
    with DnsServer({y.domain: f"r1._domainkey TXT {txt(rsa_rec)}\n"}) as dns:
        y.start(dns_servers=dns.spec)
        with smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=30) as s:
            assert s.sendmail(ALICE, ["bob@remote.example"],
                              message(frm=ALICE, subject="relayed")) == {}
        hexed = ("encode(header, 'hex')" if getattr(y, "pg_dsn", None) is not None
                 else "hex(header)")
        header = sql(y, f"SELECT {hexed} FROM queue_messages")
        blob_id = sql(y, "SELECT blob_id FROM queue_messages")
        y.stop()
        assert len(header) == 1 and len(blob_id) == 1
        head = bytes.fromhex(header[0])
        assert head.startswith(b"DKIM-Signature:"), head
        if getattr(y, "pg_dsn", None) is not None:      # blobs are rows there
            data = sql(y, f"SELECT encode(data, 'hex') FROM blob_data "
                          f"WHERE id = '{blob_id[0]}'")
            msg = head + bytes.fromhex("".join(data))
        else:
            tail = blob_id[0].rsplit("/", 1)[-1]
            blobs = [os.path.join(dp, f) for dp, _, fs in os.walk(y.data_dir) for f in fs
                     if f.startswith(tail)]
            assert blobs, blob_id
            with open(blobs[0], "rb") as f:
                msg = head + f.read()
        assert dkim.DKIM(msg).verify(dnsfunc=nsd_dnsfunc(dns.spec))


def arc_sealed(msg, pem, sealer=b"list.test", results=b"spf=pass smtp.mailfrom=sender.test"):
    """msg as a mailing list at sealer passes it on: its A-R, then an ARC
    set over it (dkimpy's arc_sign)."""
    msg = b"Authentication-Results: " + sealer + b"; " + results + b"\r\n" + msg
    lines = dkim.arc_sign(msg, b"sel", sealer, pem, sealer)
    return b"".join(lines) + msg


@pytest.mark.parametrize("trusted", [False, True])
def test_arc_trusted_sealer(youju_with, smtp_raw, rsa_key, trusted):
    pem, record = rsa_key
    zones = {"sender.test": sender_zone(record, spf="v=spf1 -all"),
             "list.test": f"sel._domainkey TXT {txt(record)}\n"}
    with DnsServer(zones) as dns:
        y = checked(youju_with, dns, arc_trusted_sealers="list.test" if trusted else "")
        code, texts = send(y, smtp_raw, "news@sender.test", arc_sealed(message(), pem))
        if not trusted:
            assert (code, texts[0][:5]) == (550, "5.7.1"), texts
            y.stop()
            return
        assert code == 250, texts
        msg = stored(y)
        y.stop()
    ar = authres(msg)
    assert "arc=pass" in ar and "dmarc=fail" in ar and "override forwarded" in ar, ar
    assert "(trusted sealer list.test i=1 spf=pass sender.test)" in ar, ar


@pytest.mark.parametrize("results", [
    b"spf=fail smtp.mailfrom=sender.test",               # it saw a fail too
    b"spf=pass smtp.mailfrom=other.test",                # a pass, not aligned
    b"dkim=pass (comment; dmarc=pass) header.d=other.test",  # a comment is no result
])
def test_arc_trusted_sealer_must_vouch(youju_with, smtp_raw, rsa_key, results):
    """A trusted sealer whose sealed results show no aligned pass does not
    waive DMARC (RFC 8617 7.2: its results are honoured, not its name)."""
    pem, record = rsa_key
    zones = {"sender.test": sender_zone(record, spf="v=spf1 -all"),
             "list.test": f"sel._domainkey TXT {txt(record)}\n"}
    with DnsServer(zones) as dns:
        y = checked(youju_with, dns, arc_trusted_sealers="list.test")
        code, texts = send(y, smtp_raw, "news@sender.test",
                           arc_sealed(message(), pem, results=results))
        y.stop()
    assert (code, texts[0][:5]) == (550, "5.7.1"), texts


def test_arc_trusted_sealer_dmarc_pass(youju_with, smtp_raw, rsa_key):
    """The sealer's own dmarc=pass for the From domain vouches too."""
    pem, record = rsa_key
    zones = {"sender.test": sender_zone(record, spf="v=spf1 -all"),
             "list.test": f"sel._domainkey TXT {txt(record)}\n"}
    with DnsServer(zones) as dns:
        y = checked(youju_with, dns, arc_trusted_sealers="example.org, list.test")
        wire = arc_sealed(message(), pem, results=b"spf=fail smtp.mailfrom=sender.test;\r\n"
                          b" dmarc=pass (p=reject) header.from=Sender.Test")
        assert send(y, smtp_raw, "news@sender.test", wire)[0] == 250
        msg = stored(y)
        y.stop()
    assert "(trusted sealer list.test i=1 dmarc=pass sender.test)" in authres(msg)
