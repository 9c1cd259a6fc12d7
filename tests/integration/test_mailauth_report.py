"""DMARC aggregate reports (RFC 7489 7.2, appendix C), end to end: youjud
counts the DMARC results of inbound mail for domains whose record has a
rua=, `youju dmarc report --now` builds the report, and it arrives in a
local mailbox of a domain that authorised it (the 7.1 TXT record), as a
multipart/mixed message with a gzipped XML attachment, DKIM-signed. The
XML is checked against the appendix C structure; a destination that did
not authorise the domain gets nothing; the cap and !size hold."""
import email
import email.policy
import gzip
import os
import re
import xml.etree.ElementTree as ET

import dkim

from conftest import USER
from dnsserver import DnsServer
from test_mailauth import (ALICE, OUTSIDE, keygen, message, nsd_dnsfunc, rsa_key,  # noqa: F401
                           send, signed, txt)

RUA = "dmarc@example.test"


def zones(record, b_rec, rua=f"mailto:{RUA}"):
    spf = txt("v=spf1 ip4:127.0.0.1 -all")
    return {
        "sender.test": (f"@ TXT {spf}\n"
                        f"_dmarc TXT {txt(f'v=DMARC1; p=none; rua={rua}')}\n"
                        f"sel._domainkey TXT {txt(record)}\n"),
        # Rejects what fails; its refused mail is counted too.
        "reject.test": (f"_dmarc TXT {txt(f'v=DMARC1; p=reject; rua={rua}')}\n"),
        # Asks for reports at example.test, which never said yes.
        "evil.test": (f"@ TXT {spf}\n"
                      f"_dmarc TXT {txt(f'v=DMARC1; p=none; rua=mailto:{RUA}')}\n"),
        # example.test takes reports about sender.test (RFC 7489 7.1).
        "example.test": (f"sender.test._report._dmarc TXT {txt('v=DMARC1')}\n"
                         f"reject.test._report._dmarc TXT {txt('v=DMARC1')}\n"
                         f"r1._domainkey TXT {txt(b_rec)}\n"),
    }


def start(youju_factory, dns, **opts):
    y = youju_factory()
    y.init()
    y.add_account(USER, "secret-alice")
    y.add_account(RUA, "secret-dmarc")
    with open(os.path.join(y.data_dir, "youju.conf"), "a") as f:
        f.write(f"dns_servers = {dns.spec}\n")
        for k, v in opts.items():
            f.write(f"{k} = {v}\n")
    y.start(dns_servers=dns.spec, mynetworks=OUTSIDE, **opts)
    return y


def traffic(y, smtp_raw, pem):
    """Two signed messages from sender.test, one that fails DMARC (its
    envelope is elsewhere, unsigned), one from evil.test."""
    for _ in range(2):
        assert send(y, smtp_raw, "news@sender.test", signed(message(), pem))[0] == 250
    assert send(y, smtp_raw, "x@evil.test", message(frm="news@sender.test"))[0] == 250
    assert send(y, smtp_raw, "x@evil.test", message(frm="x@evil.test"))[0] == 250
    assert send(y, smtp_raw, "x@evil.test", message(frm="x@reject.test"))[0] == 550


def report_run(y, *args):
    out = y.cli("dmarc", "report", *args).stdout
    m = re.search(r"reports sent: (\d+), .*?: (\d+), left for the next run: (\d+)", out)
    assert m, out
    return tuple(int(g) for g in m.groups())


def one(parent, path):
    found = parent.findall(path)
    assert len(found) == 1, (path, ET.tostring(parent)[:500])
    return found[0]


def check_appendix_c(root):
    """The appendix C structure: every required element, in order."""
    assert root.tag == "feedback"
    assert [c.tag for c in root][:2] == ["report_metadata", "policy_published"]
    assert all(c.tag == "record" for c in list(root)[2:]) and len(root) > 2
    meta = one(root, "report_metadata")
    for name in ("org_name", "email", "report_id"):
        assert one(meta, name).text
    begin, end = int(one(meta, "date_range/begin").text), int(one(meta, "date_range/end").text)
    assert 0 < begin <= end
    pol = one(root, "policy_published")
    assert [c.tag for c in pol] == ["domain", "adkim", "aspf", "p", "sp", "pct"]
    for rec in root.findall("record"):
        assert [c.tag for c in rec] == ["row", "identifiers", "auth_results"]
        row = one(rec, "row")
        assert one(row, "source_ip").text and int(one(row, "count").text) > 0
        ev = one(row, "policy_evaluated")
        assert [c.tag for c in ev][:3] == ["disposition", "dkim", "spf"]
        assert ev[0].text in ("none", "quarantine", "reject")
        assert ev[1].text in ("pass", "fail") and ev[2].text in ("pass", "fail")
        assert one(rec, "identifiers/header_from").text
        auth = one(rec, "auth_results")
        tags = [c.tag for c in auth]
        assert tags.count("spf") >= 1 and tags == sorted(tags)   # dkim* before spf+
        for d in auth.findall("dkim"):
            assert one(d, "domain").text and one(d, "result").text
        for s in auth.findall("spf"):
            assert one(s, "domain").text and one(s, "result").text
    return meta, pol


def test_report_sent_and_parsed(youju_factory, smtp_raw, rsa_key):
    pem, record = rsa_key
    # example.test signs its reports: its key must be in the zone.
    y0 = youju_factory()
    y0.init()
    _, b_rec = keygen(y0, "--selector", "r1")
    keydir = os.path.join(y0.data_dir, "dkim")
    with DnsServer(zones(record, b_rec)) as dns:
        y = start(youju_factory, dns)
        os.rename(keydir, os.path.join(y.data_dir, "dkim"))
        traffic(y, smtp_raw, pem)
        assert report_run(y) == (0, 0, 0)            # today is not over
        # sender.test and reject.test sent; evil.test refused
        assert report_run(y, "--now") == (2, 1, 0)
        assert report_run(y, "--now") == (0, 0, 0)   # reported rows are gone
        uids = y.uids(RUA)
        assert len(uids) == 2, y.read_log()[-3000:]
        raws = [y.msg_cat(RUA, u) for u in uids]
        raw = [r for r in raws if b"Report Domain: sender.test" in r][0]
        rejected = [r for r in raws if b"Report Domain: reject.test" in r][0]
        y.stop()
        assert dkim.verify(raw, dnsfunc=nsd_dnsfunc(dns.spec)), raw[:1500]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/mixed"
    assert msg["From"].addresses[0].addr_spec == "noreply-dmarc@example.test"
    assert re.match(r"Report Domain: sender\.test Submitter: example\.test Report-ID: <.+>$",
                    str(msg["Subject"])), msg["Subject"]
    parts = [p for p in msg.iter_attachments()]
    assert len(parts) == 1 and parts[0].get_content_type() == "application/gzip"
    fname = parts[0].get_filename()
    m = re.fullmatch(r"example\.test!sender\.test!(\d+)!(\d+)\.xml\.gz", fname)
    assert m, fname
    root = ET.fromstring(gzip.decompress(parts[0].get_content()))
    meta, pol = check_appendix_c(root)
    assert (one(meta, "date_range/begin").text, one(meta, "date_range/end").text) == m.groups()
    assert one(meta, "email").text == "noreply-dmarc@example.test"
    assert one(pol, "domain").text == "sender.test" and one(pol, "p").text == "none"
    assert one(pol, "adkim").text == "r" and one(pol, "pct").text == "100"
    rows = {}
    for rec in root.findall("record"):
        ev = one(rec, "row/policy_evaluated")
        rows[(ev[1].text, ev[2].text)] = rec
        assert one(rec, "row/source_ip").text == "127.0.0.1"
        assert one(rec, "identifiers/header_from").text == "sender.test"
    assert set(rows) == {("pass", "pass"), ("fail", "fail")}, rows.keys()
    good, bad = rows[("pass", "pass")], rows[("fail", "fail")]
    assert one(good, "row/count").text == "2" and one(bad, "row/count").text == "1"
    assert one(good, "auth_results/dkim/domain").text == "sender.test"
    assert one(good, "auth_results/dkim/selector").text == "sel"
    assert one(good, "auth_results/dkim/result").text == "pass"
    assert one(good, "auth_results/spf/domain").text == "sender.test"
    assert one(good, "auth_results/spf/result").text == "pass"
    assert bad.findall("auth_results/dkim") == []
    assert one(bad, "auth_results/spf/domain").text == "evil.test"
    # The refused message: disposition reject.
    part = [p for p in email.message_from_bytes(rejected, policy=email.policy.default)
            .iter_attachments()][0]
    root = ET.fromstring(gzip.decompress(part.get_content()))
    check_appendix_c(root)
    rec = one(root, "record")
    assert one(rec, "row/policy_evaluated/disposition").text == "reject"
    assert one(rec, "row/count").text == "1"
    assert one(rec, "identifiers/header_from").text == "reject.test"


def test_report_cap_and_size(youju_factory, smtp_raw, rsa_key):
    """dmarc_report_max_per_day=0 keeps the rows; a !size smaller than the
    report drops them (nobody may receive it)."""
    pem, record = rsa_key
    with DnsServer(zones(record, "v=DKIM1; p=", rua=f"mailto:{RUA}!100")) as dns:
        y = start(youju_factory, dns, dmarc_report_max_per_day="0")
        traffic(y, smtp_raw, pem)
        assert report_run(y, "--now") == (0, 0, 3)
        y.stop()
        with open(os.path.join(y.data_dir, "youju.conf"), "a") as f:
            f.write("dmarc_report_max_per_day = 10\n")
        assert report_run(y, "--now") == (0, 3, 0)
        log_out = y.cli("dmarc", "report", "--now").stdout
        assert "reports sent: 0" in log_out
        assert y.uids(RUA) == []


def test_reports_off(youju_factory, smtp_raw, rsa_key):
    """dmarc_report_interval=0: nothing is counted."""
    pem, record = rsa_key
    with DnsServer(zones(record, "v=DKIM1; p=")) as dns:
        y = start(youju_factory, dns, dmarc_report_interval="0")
        traffic(y, smtp_raw, pem)
        assert report_run(y, "--now") == (0, 0, 0)
        y.stop()
