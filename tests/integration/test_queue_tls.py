"""TLS of the outbound client, per smtp_tls_policy: youjud A sends to B
(as in test_queue.py) whose certificate is signed by a test CA (made here
with openssl), is B's own self-signed one, or names another host.
verify defers unless the chain verifies against smtp_tls_ca_file and
names the MX host; may and encrypt send anyway and log the problem;
none sends without TLS. A server whose STARTTLS is refused or whose
handshake fails gets the mail in plain text at may, none at encrypt."""
import pathlib
import shutil
import subprocess

import pytest

from conftest import make_tmpdir
from test_queue import BOB, SENDER, net, sender_a, submit, wait_queue, wait_uids  # noqa: F401
from test_queue_session import submit_to
from test_queue_wire import wire_with  # noqa: F401
from test_smtp_roles import sql


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=120)


@pytest.fixture
def pki():
    """A test CA and a certificate maker: cert(name) -> (cert, key) paths,
    signed by the CA for DNS name `name`. In a directory youjud can read
    after it dropped its privileges."""
    tmp_path = pathlib.Path(make_tmpdir())
    ca_key, ca = str(tmp_path / "ca-key.pem"), str(tmp_path / "ca.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=youju test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def cert(name):
        key, csr, crt = (str(tmp_path / f"{name}.{x}") for x in ("key", "csr", "pem"))
        ext = tmp_path / f"{name}.ext"
        ext.write_text(f"subjectAltName=DNS:{name}\nbasicConstraints=critical,CA:FALSE\n"
                       "extendedKeyUsage=serverAuth\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                "-out", crt, "-days", "2", "-extfile", str(ext))
        return crt, key

    cert.ca = ca
    yield cert
    shutil.rmtree(tmp_path, ignore_errors=True)


def receiver(net, cert=None):
    """B with a certificate from pki, or its own self-signed one."""
    files = {"tls_cert_file": cert[0], "tls_key_file": cert[1]} if cert else {}
    return net("b", "127.0.0.3", [(BOB, "pw-bob")], **files)


def delivered_with(b, tls):
    msg = b.msg_cat(BOB, wait_uids(b, BOB, 1)[0])
    assert (b"with ESMTPS id" in msg) == tls, msg[:600]


def test_verify_with_a_certificate_from_the_trusted_ca(net, pki):
    b = receiver(net, pki("mx.b.test"))
    a = sender_a(net, smtp_tls_policy="b.test=verify", smtp_tls_ca_file=pki.ca)
    submit(a, [BOB], b"Subject: verified\r\n\r\nx\r\n")
    delivered_with(b, tls=True)
    wait_queue(a, "SELECT count(*) FROM queue", ["0"])
    assert "certificate not verified" not in a.read_log()


@pytest.mark.parametrize("case,reason", [("self-signed", "self-signed certificate"),
                                         ("other name", "hostname mismatch"),
                                         ("system CAs", "")])
def test_verify_defers_a_certificate_that_does_not_verify(net, pki, case, reason):
    b = receiver(net, pki("mx.other.test") if case == "other name" else None)
    ca = {} if case == "system CAs" else {"smtp_tls_ca_file": pki.ca}
    a = sender_a(net, smtp_tls_policy="b.test=verify", **ca)
    submit(a, [BOB], b"Subject: unverified\r\n\r\nx\r\n")
    wait_queue(a, "SELECT status, substr(last_error, 1, 9) FROM queue", ["queued|421 4.7.5"])
    err = sql(a, "SELECT last_error FROM queue")[0]
    assert "the certificate of mx.b.test[127.0.0.3] does not verify (" + reason in err, err
    assert "b.test requires verified TLS" in err
    log = a.read_log()
    assert "TLS with mx.b.test[127.0.0.3] for b.test: certificate not verified: " + reason in log
    assert "(policy verify: deferred)" in log
    assert b.uids(BOB) == []


@pytest.mark.parametrize("policy", ["", "b.test=may", "b.test=encrypt"])
def test_may_and_encrypt_send_over_unverified_tls_and_log_it(net, policy):
    b = receiver(net)
    a = sender_a(net, smtp_tls_policy=policy)
    submit(a, [BOB], b"Subject: opportunistic\r\n\r\nx\r\n")
    delivered_with(b, tls=True)
    log = a.read_log()
    assert "TLS with mx.b.test[127.0.0.3] for b.test: certificate not verified: " in log
    assert "deferred" not in log


def test_none_sends_without_tls(net):
    b = receiver(net)
    a = sender_a(net, smtp_tls_policy="b.test=none")
    submit(a, [BOB], b"Subject: plain\r\n\r\nx\r\n")
    delivered_with(b, tls=False)


def test_relayhost_name_is_what_verify_checks(net, pki):
    b = receiver(net, pki("mx.b.test"))
    port = b.overrides["smtp_listen"].rsplit(":", 1)[1]
    # the relayhost named as its certificate names it: verified
    a = sender_a(net, relayhost=f"[mx.b.test]:{port}", smtp_tls_policy="b.test=verify",
                 smtp_tls_ca_file=pki.ca)
    submit(a, [BOB], b"Subject: relayed\r\n\r\nx\r\n")
    delivered_with(b, tls=True)
    wait_queue(a, "SELECT count(*) FROM queue", ["0"])
    # the same server as an address literal: the certificate does not
    # name that address
    a.stop()
    a.start(relayhost=f"[127.0.0.3]:{port}")
    submit(a, [BOB], b"Subject: relayed\r\n\r\nx\r\n")
    wait_queue(a, "SELECT status, substr(last_error, 1, 9) FROM queue", ["queued|421 4.7.5"])
    assert "mismatch" in sql(a, "SELECT last_error FROM queue")[0]


def test_bad_ca_file_stops_the_start(youju_factory, tmp_path):
    y = youju_factory()
    y.init()
    with pytest.raises(AssertionError):
        y.start(smtp_tls_ca_file=str(tmp_path / "missing.pem"))
    assert "CA file" in y.read_log()


@pytest.mark.parametrize("policy,sent", [("*=verify", False), ("default=verify", False),
                                         ("*=verify b.test=may", True),
                                         ("b.test=encrypt, default=verify", True)])
def test_default_entry_covers_the_domains_not_named(net, pki, policy, sent):
    """verify everywhere, except the domains named otherwise: B's own
    self-signed certificate does not verify."""
    b = receiver(net)
    a = sender_a(net, smtp_tls_policy=policy, smtp_tls_ca_file=pki.ca)
    submit(a, [BOB], b"Subject: default policy\r\n\r\nx\r\n")
    if sent:
        delivered_with(b, tls=True)
        wait_queue(a, "SELECT count(*) FROM queue", ["0"])
    else:
        wait_queue(a, "SELECT status, substr(last_error, 1, 9) FROM queue",
                   ["queued|421 4.7.5"])
        assert "b.test requires verified TLS" in sql(a, "SELECT last_error FROM queue")[0]
        assert b.uids(BOB) == []


def test_bad_default_entry_stops_the_start(youju_factory):
    y = youju_factory()
    y.init()
    with pytest.raises(AssertionError):
        y.start(smtp_tls_policy="*=always")
    assert "'*=always'" in y.read_log()


# A server whose TLS does not work (test_queue_wire.Sink). At may the
# mail goes in plain text, as Postfix sends opportunistic TLS; at encrypt
# it waits.
ONCE = {"minimal_backoff_time": "1h", "maximal_backoff_time": "1h"}
BROKEN = "PIPELINING", "STARTTLS"


def starttls_count(sink):
    return sum(c.upper().startswith(b"STARTTLS") for c in sink.commands)


def test_may_sends_in_plaintext_after_a_failed_handshake(wire_with):
    """The handshake fails (junk after 220): A reconnects and sends
    without STARTTLS; the next message skips the handshake at once."""
    a, sink = wire_with(**ONCE)
    s = sink(*BROKEN, tls_junk=True, sessions=3)
    submit_to(a, [BOB], b"Subject: first\r\n\r\nx\r\n")
    wait_queue(a, "SELECT count(*) FROM queue", ["0"])
    assert s.connections == 2 and len(s.contents) == 1, s.commands
    log = a.read_log()
    assert "queue: TLS handshake with mx.b.test[127.0.0.3] failed (" in log, log[-3000:]
    assert "); sending in plaintext" in log
    submit_to(a, [BOB], b"Subject: second\r\n\r\nx\r\n")
    wait_queue(a, "SELECT count(*) FROM queue", ["0"])
    s.thread.join(15)
    assert s.connections == 3 and len(s.contents) == 2, s.commands
    assert starttls_count(s) == 1, s.commands
    assert a.read_log().count("sending in plaintext") == 1


@pytest.mark.parametrize("policy", ["b.test=encrypt", "b.test=verify"])
def test_encrypt_defers_after_a_failed_handshake(wire_with, policy):
    a, sink = wire_with(smtp_tls_policy=policy, **ONCE)
    s = sink(*BROKEN, tls_junk=True)
    submit_to(a, [BOB], b"Subject: must be TLS\r\n\r\nx\r\n")
    wait_queue(a, "SELECT status, substr(last_error, 1, 31) FROM queue",
               ["queued|421 4.7.0 TLS handshake failed:"])
    s.close()
    assert s.connections == 1 and s.contents == []
    assert not any(c.upper().startswith(b"MAIL") for c in s.commands), s.commands
    assert "sending in plaintext" not in a.read_log()


@pytest.mark.parametrize("reply", [b"454 4.7.0 TLS not available now\r\n",
                                   b"502 5.5.1 not here\r\n"])
def test_may_goes_on_in_plaintext_after_a_refused_starttls(wire_with, reply):
    """RFC 3207: after a refusal the session goes on as it was, on the
    same connection."""
    a, sink = wire_with(**ONCE)
    s = sink(*BROKEN, tls_refuse=reply)
    submit_to(a, [BOB], b"Subject: refused\r\n\r\nx\r\n")
    wait_queue(a, "SELECT count(*) FROM queue", ["0"])
    s.thread.join(15)
    assert s.connections == 1 and len(s.contents) == 1, s.commands
    assert (f"queue: mx.b.test[127.0.0.3] refused STARTTLS ({reply.decode().strip()}); "
            "sending in plaintext") in a.read_log()


def test_encrypt_defers_after_a_refused_starttls(wire_with):
    a, sink = wire_with(smtp_tls_policy="b.test=encrypt", **ONCE)
    s = sink(*BROKEN, tls_refuse=b"454 4.7.0 TLS not available now\r\n")
    submit_to(a, [BOB], b"Subject: must be TLS\r\n\r\nx\r\n")
    wait_queue(a, "SELECT status, last_error FROM queue",
               ["queued|454 4.7.0 TLS not available now"])
    s.close()
    assert not any(c.upper().startswith(b"MAIL") for c in s.commands), s.commands
