"""The server's TLS policy, seen from a client: TLS 1.2 offers only ECDHE
suites with AEAD ciphers (Mozilla's "intermediate" profile without DHE),
in the server's order; TLS 1.3 keeps OpenSSL's suites. Checked on SMTP
STARTTLS and on pop3s, with the default (ECDSA) certificate and an RSA
one."""
import os
import socket
import ssl
import subprocess

import pytest

from conftest import SmtpRaw

AEAD = {
    "ecdsa": ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
              "ECDHE-ECDSA-CHACHA20-POLY1305"),
    "rsa": ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-RSA-CHACHA20-POLY1305"),
}
TLS13_DEFAULT = ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                 "TLS_AES_128_GCM_SHA256")


def tls12_client(ciphers):
    """A client that speaks only TLS 1.2 and offers exactly ciphers, in
    that order (security level 0, so that it can offer weak ones)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(":".join(ciphers) + ":@SECLEVEL=0")
    return ctx


def tls12_suites():
    """Every TLS 1.2 suite this client's OpenSSL can offer with a
    certificate-based key exchange (no PSK, SRP or anonymous ones: the
    server has no use for them either way)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    names = [c["name"] for c in ctx.get_ciphers()
             if c["protocol"] != "TLSv1.3"
             and c.get("kea") in ("kx-ecdhe", "kx-dhe", "kx-rsa")
             and c.get("auth") in ("auth-rsa", "auth-ecdsa")]
    assert len(names) >= 20, names
    for suites in AEAD.values():
        for name in suites:
            assert name in names, name
    return names


def handshake_smtp(port, ctx):
    """STARTTLS with ctx; the negotiated (version, cipher), or None if the
    handshake fails."""
    c = SmtpRaw(port)
    try:
        c.greet()
        code, texts = c.cmd("STARTTLS")
        assert code == 220, texts
        try:
            s = ctx.wrap_socket(c.sock)
        except (ssl.SSLError, ConnectionResetError):
            return None
        c.sock = s
        return s.version(), s.cipher()[0]
    finally:
        c.close()


def handshake_pop3s(port, ctx):
    """A pop3s connection with ctx: (version, cipher) after the greeting,
    or None if the handshake fails."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        try:
            sock = ctx.wrap_socket(sock)
        except (ssl.SSLError, ConnectionResetError):
            return None
        assert sock.recv(512).startswith(b"+OK")
        return sock.version(), sock.cipher()[0]
    finally:
        sock.close()


HANDSHAKES = {"smtp": handshake_smtp, "pop3s": handshake_pop3s}


def rsa_cert(base):
    """An RSA certificate and key for the server, made with openssl."""
    cert, key = os.path.join(base, "rsa-cert.pem"), os.path.join(base, "rsa-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=mx.example.test"],
                   check=True, capture_output=True, timeout=120)
    return cert, key


@pytest.fixture(params=["ecdsa", "rsa"])
def server(request, youju_factory):
    """A running youjud with the default ECDSA certificate of `youju init`,
    or with an RSA one; (instance, key type)."""
    y = youju_factory()
    y.init()
    overrides = {}
    if request.param == "rsa":
        cert, key = rsa_cert(y.base)
        overrides = {"tls_cert_file": cert, "tls_key_file": key}
    y.start(wait=("smtp", "pop3s"), **overrides)
    return y, request.param


@pytest.mark.parametrize("listener", ["smtp", "pop3s"])
def test_tls12_offers_only_ecdhe_aead(server, listener):
    y, keytype = server
    handshake = HANDSHAKES[listener]
    wrong = []
    for name in tls12_suites():
        got = handshake(y.ports[listener], tls12_client([name]))
        if name in AEAD[keytype]:
            if got != ("TLSv1.2", name):
                wrong.append(f"{name}: refused ({got})")
        elif got is not None:
            wrong.append(f"{name}: accepted ({got})")
    assert not wrong, f"{listener} with {keytype} certificate:\n" + "\n".join(wrong)
    # all those failed handshakes left the server serving
    assert handshake(y.ports[listener], tls12_client(AEAD[keytype])) is not None


@pytest.mark.parametrize("listener", ["smtp", "pop3s"])
def test_server_order_wins(server, listener):
    y, keytype = server
    handshake = HANDSHAKES[listener]
    aes128, aes256, chacha = AEAD[keytype]
    port = y.ports[listener]
    # the client would rather have AES-256; the server picks its first
    assert handshake(port, tls12_client([aes256, aes128])) == ("TLSv1.2", aes128)
    assert handshake(port, tls12_client([aes256, chacha, aes128])) == ("TLSv1.2", aes128)
    # the one exception: a client that lists ChaCha20 first (no AES
    # hardware) gets it
    assert handshake(port, tls12_client([chacha, aes256, aes128])) == ("TLSv1.2", chacha)


@pytest.mark.parametrize("listener", ["smtp", "pop3s"])
def test_tls13_keeps_openssl_suites(server, listener):
    y, _ = server
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    version, cipher = HANDSHAKES[listener](y.ports[listener], ctx)
    assert version == "TLSv1.3"
    assert cipher in TLS13_DEFAULT, cipher


def test_openssl_s_client_sees_the_policy(youju):
    """The same, as an administrator would check it by hand."""
    def s_client(*args):
        return subprocess.run(["openssl", "s_client", "-connect",
                               f"127.0.0.1:{youju.ports['smtp']}", "-starttls", "smtp",
                               *args], input="QUIT\n", capture_output=True, text=True,
                              timeout=30)

    r = s_client("-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA")
    assert r.returncode != 0, r.stdout
    assert "handshake failure" in r.stdout + r.stderr, r.stdout + r.stderr
    r = s_client("-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Cipher is ECDHE-ECDSA-CHACHA20-POLY1305" in r.stdout, r.stdout
