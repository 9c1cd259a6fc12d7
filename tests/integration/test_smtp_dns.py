"""Inbound SMTP (MX role): the client's name in Received comes from
reverse DNS, confirmed forward (FCrDNS), served by a real nsd."""
import re

from dnsserver import DnsServer

ALICE = "alice@example.test"


def received_from(y, smtp_raw, timeout=10):
    c = smtp_raw(y.ports["smtp"], timeout=timeout)
    c.greet("helo.client.test")
    reply = c.mail("bob@example.org", [ALICE], b"Subject: rdns\r\n\r\nx\r\n")
    assert reply[0] == 250, reply
    c.cmd("QUIT")
    uids = y.uids(ALICE)
    assert len(uids) == 1
    msg = y.msg_cat(ALICE, uids[0])
    m = re.search(rb"^Received: from (\S+) \(([^)]*)\)\r\n", msg, re.M)
    assert m, msg[:400]
    return m.group(1).decode(), m.group(2).decode()


def test_reverse_name_in_received(youju_with, smtp_raw):
    zones = {
        "0.0.127.in-addr.arpa": "1 PTR client.example.net.\n",
        "example.net": "client A 127.0.0.1\n",
    }
    with DnsServer(zones) as dns:
        y = youju_with(dns_servers=dns.spec, smtpd_peername_lookup="yes")
        helo, info = received_from(y, smtp_raw)
        y.stop()
    assert helo == "helo.client.test"
    assert info == "client.example.net [127.0.0.1]"


def test_whole_127_zone(youju_with, smtp_raw):
    zones = {
        "127.in-addr.arpa": "1.0.0 PTR host.example.net.\n",
        "example.net": "host A 127.0.0.1\n",
    }
    with DnsServer(zones) as dns:
        y = youju_with(dns_servers=dns.spec, smtpd_peername_lookup="yes")
        _, info = received_from(y, smtp_raw)
        y.stop()
    assert info == "host.example.net [127.0.0.1]"


def test_no_ptr_is_unknown(youju_with, smtp_raw):
    with DnsServer({"0.0.127.in-addr.arpa": "", "example.net": ""}) as dns:
        y = youju_with(dns_servers=dns.spec, smtpd_peername_lookup="yes")
        _, info = received_from(y, smtp_raw)
        y.stop()
    assert info == "unknown [127.0.0.1]"


def test_ptr_without_matching_a_is_unknown(youju_with, smtp_raw):
    zones = {
        "0.0.127.in-addr.arpa": "1 PTR liar.example.net.\n",
        "example.net": "liar A 192.0.2.7\n",
    }
    with DnsServer(zones) as dns:
        y = youju_with(dns_servers=dns.spec, smtpd_peername_lookup="yes")
        _, info = received_from(y, smtp_raw)
        y.stop()
    assert info == "unknown [127.0.0.1]"


def test_dead_dns_server_does_not_block_mail(youju_with, smtp_raw):
    """A DNS server that never answers: mail still flows, the client is
    unknown, and the wait is bounded."""
    import socket
    import time
    quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    quiet.bind(("127.0.0.1", 0))
    try:
        y = youju_with(dns_servers=f"127.0.0.1@{quiet.getsockname()[1]}",
                       smtpd_peername_lookup="yes")
        start = time.monotonic()
        _, info = received_from(y, smtp_raw, timeout=30)
        assert time.monotonic() - start < 20
        y.stop()
    finally:
        quiet.close()
    assert info == "unknown [127.0.0.1]"
