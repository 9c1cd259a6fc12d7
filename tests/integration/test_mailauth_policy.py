"""Policy knobs of inbound mail authentication: SPF for the HELO name
(spf_helo_fail_action, the null sender's HELO check and its
Received-SPF), dmarc_temperror_action, and DMARC quarantine filed by
the \\Junk special-use attribute rather than by the name "Junk"."""
import imaplib
import re

from conftest import PASSWORD
from dnsserver import DnsServer
from test_mailauth import (ALICE, authres, checked, message, rsa_key, send,  # noqa: F401
                           sender_zone, stored)

HELO_ZONES = {"badhelo.test": '@ TXT "v=spf1 -all"\n',
              "goodhelo.test": '@ TXT "v=spf1 ip4:127.0.0.1 -all"\n'}


def zones(record, **kw):
    return {"sender.test": sender_zone(record, **kw), **HELO_ZONES}


def mail_reply(y, smtp_raw, sender, helo):
    c = smtp_raw(y.ports["smtp"])
    c.greet(helo)
    reply = c.cmd(f"MAIL FROM:<{sender}>")
    c.cmd("QUIT")
    return reply


def test_helo_fail_recorded_by_default(youju_with, smtp_raw, rsa_key):
    _, record = rsa_key
    with DnsServer(zones(record)) as dns:
        y = checked(youju_with, dns)
        assert send(y, smtp_raw, "news@sender.test", message(), helo="badhelo.test")[0] == 250
        msg = stored(y)
        y.stop()
    ar = authres(msg)
    assert "spf=pass smtp.mailfrom=news@sender.test" in ar
    assert "spf=fail smtp.helo=badhelo.test" in ar, ar


def test_helo_fail_rejected(youju_with, smtp_raw, rsa_key):
    _, record = rsa_key
    with DnsServer(zones(record)) as dns:
        y = checked(youju_with, dns, spf_helo_fail_action="reject")
        code, texts = mail_reply(y, smtp_raw, "news@sender.test", "badhelo.test")
        assert (code, texts[0][:6]) == (550, "5.7.23"), texts
        assert "HELO badhelo.test" in texts[0]
        # A HELO that passes is not refused.
        assert mail_reply(y, smtp_raw, "news@sender.test", "goodhelo.test")[0] == 250
        # spf_fail_action (MAIL FROM) stays at record: only HELO refuses.
        y.stop()


def test_null_sender_checked_by_helo(youju_with, smtp_raw, rsa_key):
    """The null sender's SPF check is the HELO one (RFC 7208 2.4): its
    Received-SPF says identity=helo, and spf_helo_fail_action applies."""
    _, record = rsa_key
    with DnsServer(zones(record, dmarc="")) as dns:
        y = checked(youju_with, dns)
        assert send(y, smtp_raw, "", message(), helo="goodhelo.test")[0] == 250
        msg = stored(y)
        y.stop()
        y2 = checked(youju_with, dns, spf_helo_fail_action="reject")
        code, texts = mail_reply(y2, smtp_raw, "", "badhelo.test")
        y2.stop()
    assert (code, texts[0][:6]) == (550, "5.7.23"), texts
    spf = re.search(rb"^Received-SPF: (.*?)\r\n(?=\S)", msg, re.M | re.S).group(1)
    spf = re.sub(rb"\r\n\s+", b" ", spf).decode()
    assert spf.startswith("pass ") and "identity=helo" in spf and "helo=goodhelo.test" in spf
    assert "spf=pass smtp.helo=goodhelo.test" in authres(msg)


def test_dmarc_temperror_defer(youju_with, smtp_raw, rsa_key):
    """No answer for the From domain's _dmarc record: 451 4.7.5 with
    dmarc_temperror_action=defer, delivered by default."""
    _, record = rsa_key
    with DnsServer(zones(record)) as dns:
        y = checked(youju_with, dns, dmarc_temperror_action="defer")
        code, texts = send(y, smtp_raw, "news@sender.test", message(frm="x@elsewhere.test"))
        assert (code, texts[0][:5]) == (451, "4.7.5"), texts
        assert y.uids(ALICE) == []
        log = y.read_log()
        y.stop()
    assert "result=deferred: DMARC temperror for elsewhere.test" in log


def test_quarantine_follows_junk_attribute(youju_with, smtp_raw, rsa_key):
    """The user renamed Junk to Spam over IMAP: quarantined mail goes to
    the mailbox with \\Junk, whatever its name."""
    _, record = rsa_key
    zone = sender_zone(record, spf="v=spf1 -all", dmarc="v=DMARC1; p=quarantine")
    with DnsServer({"sender.test": zone}) as dns:
        y = checked(youju_with, dns)
        imap = imaplib.IMAP4("127.0.0.1", y.ports["imap"])
        imap.login(ALICE, PASSWORD)
        assert imap.rename("Junk", "Spam")[0] == "OK"
        typ, lines = imap.list('""', "Spam")
        assert typ == "OK" and b"\\Junk" in lines[0], lines
        imap.logout()
        assert send(y, smtp_raw, "news@sender.test", message())[0] == 250
        assert y.uids(ALICE) == []
        msg = stored(y, "Spam")
        y.stop()
    assert "dmarc=fail" in authres(msg)
