"""ARC sealing of forwarded mail: a message from a DKIM-signing sender to
an alias at B (the instance under test, checking mail from outside
mynetworks) that forwards to carol@c.test is sealed by B before it is
queued, and arrives at C (a second youjud on 127.0.0.4) with an ARC chain
dkimpy's arc_verify accepts, B's SPF and DKIM results sealed in it."""
import re
import smtplib

import dkim

from conftest import free_port
from dnsserver import DnsServer
from test_mailauth import (OUTSIDE, keygen, message, nsd_dnsfunc, rsa_key, sender_zone,  # noqa: F401
                           signed, txt)
from test_queue import FAST, wait_uids

CAROL = "carol@c.test"
FWD = "fwd@example.test"


def forward(youju_factory, pem, record, sealed_by=None, **b_opts):
    """Sends one signed message to FWD at B; returns the copy C stored,
    B's log, dkimpy's arc_verify() of it and whether its DKIM verifies."""
    b = youju_factory()
    b.init()
    b.cli("alias", "add", FWD, CAROL)
    _, b_rec = keygen(b, "--selector", "arc1")
    port = free_port()
    zones = {"sender.test": sender_zone(record),
             "example.test": f"arc1._domainkey TXT {txt(b_rec)}\n",
             "c.test": "@ MX 10 mx.c.test.\nmx A 127.0.0.4\n"}
    if sealed_by:
        zones[sealed_by] = f"sel._domainkey TXT {txt(record)}\n"
    with DnsServer(zones) as dns:
        c = youju_factory(domain="c.test", hostname="mx.c.test")
        c.init()
        c.add_account(CAROL, "secret-carol")
        c.start(smtp_listen=f"127.0.0.4:{port}", dns_servers=dns.spec, **FAST)
        b.start(dns_servers=dns.spec, mynetworks=OUTSIDE, smtp_port=port, **FAST, **b_opts)
        wire = signed(message(), pem)
        if sealed_by:
            wire = dkim_arc(wire, pem, sealed_by)
        with smtplib.SMTP("127.0.0.1", b.ports["smtp"], timeout=30) as s:
            s.ehlo("mail.sender.test")
            assert s.sendmail("news@sender.test", [FWD], wire) == {}
        uids = wait_uids(c, CAROL, 1)
        msg = c.msg_cat(CAROL, uids[0])
        log = b.read_log()
        b.stop()
        c.stop()
        dnsfunc = nsd_dnsfunc(dns.spec)
        return msg, log, dkim.arc_verify(msg, dnsfunc=dnsfunc), dkim.verify(msg, dnsfunc=dnsfunc)


def dkim_arc(msg, pem, sealer):
    msg = b"Authentication-Results: " + sealer.encode() + b"; spf=pass\r\n" + msg
    return b"".join(dkim.arc_sign(msg, b"sel", sealer.encode(), pem, sealer.encode())) + msg


def aar(msg, instance):
    m = re.search(rb"^ARC-Authentication-Results: i=" + str(instance).encode()
                  + rb"; (.*?)\r\n(?=\S)", msg, re.M | re.S)
    assert m, msg[:2000]
    return re.sub(rb"\r\n\s+", b" ", m.group(1)).decode()


def test_forward_is_arc_sealed(youju_factory, rsa_key):
    pem, record = rsa_key
    msg, log, (cv, results, reason), dkim_ok = forward(youju_factory, pem, record)
    assert cv == dkim.CV_Pass, (reason, msg[:3000])
    assert "arc=sealed d=example.test s=arc1 cv=none" in log
    sealed = aar(msg, 1)
    assert sealed.startswith("mx.example.test;"), sealed
    assert "spf=pass smtp.mailfrom=news@sender.test" in sealed
    assert "dkim=pass header.d=sender.test" in sealed and "dmarc=pass" in sealed
    assert b"d=example.test" in msg and b"s=arc1" in msg
    # The sender's own signature still verifies at C.
    assert dkim_ok


def test_forward_extends_a_chain(youju_factory, rsa_key):
    """Mail that arrives with an ARC set (a list) gets instance 2, cv=pass."""
    pem, record = rsa_key
    msg, log, (cv, results, reason), _ = forward(youju_factory, pem, record,
                                                 sealed_by="list.test")
    assert cv == dkim.CV_Pass, (reason, msg[:3000])
    assert len(results) == 2
    assert "arc=sealed d=example.test s=arc1 cv=pass" in log
    assert "arc=pass" in aar(msg, 2)


def test_arc_seal_domain_without_key_forwards_unsealed(youju_factory, rsa_key):
    pem, record = rsa_key
    msg, log, _, dkim_ok = forward(youju_factory, pem, record, arc_seal_domain="nokey.test")
    assert b"ARC-Seal:" not in msg
    assert dkim_ok
