"""The outbound client's transaction against a sink server in the test
(test_queue_wire.Sink on 127.0.0.3): BDAT chunks pipelined, a chunk's
refusal, the SIZE it declares and the server's SIZE limit, and the RFC
5321 4.5.3.2 timeouts of each step, after which the recipients wait."""
import smtplib

import pytest

from test_queue import BOB, SENDER, SENDER_PW, net  # noqa: F401
from test_queue_wire import EIGHT, mail_from, sent, submit, wire, wire_with  # noqa: F401
from test_queue import wait_queue
from test_smtp_roles import sql

BERT = "bert@b.test"
# 4 chunks of at most 64 KiB
BIG = b"Subject: big\r\n\r\n" + (b"0123456789" * 7 + b"\r\n") * 3000
# no second attempt within a test
ONCE = {"minimal_backoff_time": "1h", "maximal_backoff_time": "1h"}


def submit_to(a, rcpts, body):
    with smtplib.SMTP("127.0.0.1", a.ports["submission"], timeout=30) as s:
        s.login(SENDER, SENDER_PW)
        assert s.sendmail(SENDER, rcpts, body) == {}


def test_bdat_chunks_are_pipelined(wire):
    """The sink answers no chunk before LAST: only a client that sends
    the chunks without waiting for each reply gets the message through."""
    a, sink = wire
    s = sink("PIPELINING", "CHUNKING", "8BITMIME", lazy=True)
    submit(a, BIG)
    content = sent(a, s)
    assert len(s.chunks) == 4 and content.endswith(BIG.split(b"\r\n\r\n", 1)[1])


def test_bdat_without_pipelining_waits_for_each_reply(wire_with):
    a, sink = wire_with(smtp_data_xfer_timeout="2s", **ONCE)
    s = sink("CHUNKING", "8BITMIME", lazy=True)
    submit(a, BIG)
    wait_queue(a, "SELECT status, last_error FROM queue",
               ["queued|421 4.4.2 timeout after 2 s waiting for the reply to BDAT "
                "from mx.b.test[127.0.0.3]"])
    assert len(s.chunks) == 1


@pytest.mark.parametrize("reply,status", [(b"554 5.3.0 chunk refused\r\n", "failed"),
                                          (b"452 4.3.1 out of room\r\n", "queued")])
def test_a_refused_chunk_answers_for_every_recipient(wire_with, reply, status):
    """RFC 3030: a chunk's 5xx fails the message for all the recipients
    of the transaction, a 4xx defers them; the session is reset."""
    a, sink = wire_with(**ONCE)
    s = sink("PIPELINING", "CHUNKING", "8BITMIME", chunk_replies={1: reply})
    submit_to(a, [BOB, BERT], BIG)
    text = reply.decode().strip()
    wait_queue(a, "SELECT recipient, status, last_error FROM queue ORDER BY recipient",
               [f"{BERT}|{status}|{text}", f"{BOB}|{status}|{text}"])
    s.thread.join(15)
    assert b"RSET\r\n" in s.commands


@pytest.mark.parametrize("hang,config,what", [
    (b"220", {"smtp_timeout": "2s"}, "the greeting"),
    (b"MAIL", {"smtp_timeout": "2s"}, "the reply to MAIL FROM"),
    (b"RCPT", {"smtp_timeout": "2s"}, "the reply to RCPT TO"),
    (b"DATA", {"smtp_data_init_timeout": "2s"}, "the reply to DATA"),
    (b".", {"smtp_data_done_timeout": "2s"}, "the reply to the end of the data"),
    (b"LAST", {"smtp_data_done_timeout": "2s"}, "the reply to BDAT LAST"),
])
def test_a_server_that_stops_answering_is_timed_out(wire_with, hang, config, what):
    """Each step has its own timeout (the others are long here): when it
    runs out the recipients wait for the next attempt, with a reason."""
    slow = {"smtp_timeout": "30s", "smtp_data_init_timeout": "30s",
            "smtp_data_done_timeout": "30s"}
    a, sink = wire_with(**{**ONCE, **slow, **config})
    sink("PIPELINING", "8BITMIME", *(["CHUNKING"] if hang == b"LAST" else []), hang=hang)
    submit_to(a, [BOB, BERT], b"Subject: hello?\r\n\r\nx\r\n")
    why = f"421 4.4.2 timeout after 2 s waiting for {what} from mx.b.test[127.0.0.3]"
    wait_queue(a, "SELECT recipient, status, last_error FROM queue ORDER BY recipient",
               [f"{BERT}|queued|{why}", f"{BOB}|queued|{why}"], timeout=20)


def test_a_reply_trickled_line_by_line_is_timed_out(wire_with):
    """smtp_timeout bounds the whole reply, not each of its lines: a
    server sending a line of its greeting now and then cannot hold the
    session past it."""
    a, sink = wire_with(smtp_timeout="2s", **ONCE)
    sink("PIPELINING", "8BITMIME", trickle=True)
    submit_to(a, [BOB], b"Subject: hello?\r\n\r\nx\r\n")
    why = "421 4.4.2 timeout after 2 s waiting for the greeting from mx.b.test[127.0.0.3]"
    wait_queue(a, "SELECT recipient, status, last_error FROM queue",
               [f"{BOB}|queued|{why}"], timeout=20)


def size_param(sink):
    words = [w for w in mail_from(sink).split() if w.upper().startswith(b"SIZE=")]
    assert len(words) == 1, mail_from(sink)
    return int(words[0][5:])


@pytest.mark.parametrize("chunking", [False, True])
def test_size_after_the_7bit_conversion_is_what_is_sent(wire, chunking):
    a, sink = wire
    s = sink("PIPELINING", "SIZE", *(["CHUNKING"] if chunking else []))
    submit(a, EIGHT, eight=True)
    content = sent(a, s)
    if not chunking:    # SIZE does not count DATA's dot-stuffing (RFC 1870 3)
        content = content.replace(b"\r\n..", b"\r\n.")
    assert b"quoted-printable" in content
    assert size_param(s) == len(content)


def test_size_of_a_plain_message_is_what_is_sent(wire):
    a, sink = wire
    s = sink("PIPELINING", "SIZE 100000", "8BITMIME")
    submit(a, b"Subject: dots\r\n\r\n.one\r\n..two\r\n")
    content = sent(a, s).replace(b"\r\n..", b"\r\n.")
    assert size_param(s) == len(content)


def test_a_message_over_the_servers_size_limit_fails_at_once(wire):
    """As Postfix does: the server's SIZE is a fixed limit (RFC 1870), so
    the message is returned at once (5.3.4) without being sent."""
    a, sink = wire
    s = sink("PIPELINING", "SIZE 1000", "8BITMIME")
    submit(a, b"Subject: too big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 30)
    wait_queue(a, "SELECT status, substr(last_error, 1, 9) FROM queue", ["failed|552 5.3.4"])
    err = sql(a, "SELECT last_error FROM queue")[0]
    assert "is larger than mx.b.test[127.0.0.3] accepts (SIZE 1000)" in err, err
    s.thread.join(15)
    assert not any(c.startswith(b"MAIL FROM") for c in s.commands)


@pytest.mark.parametrize("rtt", [0.0, 0.02])
def test_pipelined_bdat_saves_a_round_trip_per_chunk(wire, rtt):
    """A 4 MiB message (64 chunks) to a sink whose replies take rtt to
    come back: waiting for each chunk's reply costs a round trip per
    chunk, pipelining about one per 16 chunks; DATA one in all. (On bare
    loopback the three take about as long: printed, not compared.)"""
    a, sink = wire
    body = b"Subject: big\r\n\r\n" + (b"0123456789" * 7 + b"\r\n") * (4 * 1024 * 1024 // 72)
    took = {}
    for name, ext in [("BDAT, one at a time", ("CHUNKING", "8BITMIME")),
                      ("BDAT, pipelined", ("PIPELINING", "CHUNKING", "8BITMIME")),
                      ("DATA", ("PIPELINING", "8BITMIME"))]:
        s = sink(*ext, rtt=rtt)
        submit(a, body)
        sent(a, s)
        s.close()
        took[name] = s.timings[0][1] - s.timings[0][0]
    print(f"\nround trip {rtt * 1000:.0f} ms, MAIL to the reply after the message:",
          ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in took.items()))
    if rtt:
        assert took["BDAT, one at a time"] > 64 * rtt
        assert took["BDAT, pipelined"] < took["BDAT, one at a time"] / 3


# The relayhost's failures: the mail waits (451), and the log tells the
# admin what to fix.
FIX = "mail waits until this is fixed (relayhost, relayhost_username, relayhost_password)"


def test_relayhost_refusing_the_login_is_logged(net):
    b = net("b", "127.0.0.3", [(BOB, "pw-bob")])
    a = net("a", "127.0.0.2", [(SENDER, SENDER_PW)], smtp_bind_address="127.0.0.2",
            relayhost=f"[127.0.0.1]:{b.ports['submission']}", relayhost_username=BOB,
            relayhost_password="wrong-pw", **ONCE)
    submit_to(a, [BOB], b"Subject: bad login\r\n\r\nx\r\n")
    wait_queue(a, "SELECT status, substr(last_error, 1, 46) FROM queue",
               ["queued|451 4.7.0 the relayhost refused the login: 535"])
    log = a.read_log()
    assert (f"queue: relayhost 127.0.0.1[127.0.0.1]: cannot log in as {BOB}: 4.7.0 the "
            "relayhost refused the login: 535") in log, log[-3000:]
    assert FIX in log and "wrong-pw" not in log


def test_relayhost_without_auth(net):
    """B's MX service offers STARTTLS but no AUTH."""
    b = net("b", "127.0.0.3", [(BOB, "pw-bob")])
    a = net("a", "127.0.0.2", [(SENDER, SENDER_PW)], smtp_bind_address="127.0.0.2",
            relayhost="[127.0.0.3]", relayhost_username=BOB, relayhost_password="pw-bob",
            **ONCE)
    submit_to(a, [BOB], b"Subject: no auth\r\n\r\nx\r\n")
    why = "4.7.0 the relayhost does not offer AUTH PLAIN"
    wait_queue(a, "SELECT status, last_error FROM queue", [f"queued|451 {why}"])
    assert f"relayhost 127.0.0.3[127.0.0.3]: cannot log in as {BOB}: {why}; {FIX}" \
        in a.read_log()
    assert b.uids(BOB) == []


@pytest.mark.parametrize("case", ["no STARTTLS", "TLS fails"])
def test_relayhost_without_working_tls_never_sees_the_password(wire_with, case):
    a, sink = wire_with(relayhost="[127.0.0.3]", relayhost_username=BOB,
                        relayhost_password="pw-bob", **ONCE)
    junk = case == "TLS fails"
    s = sink("PIPELINING", "AUTH PLAIN LOGIN", *(["STARTTLS"] if junk else []), tls_junk=junk)
    submit_to(a, [BOB], b"Subject: no tls\r\n\r\nx\r\n")
    if junk:
        wait_queue(a, "SELECT status, substr(last_error, 1, 31) FROM queue",
                   ["queued|421 4.7.0 TLS handshake failed:"])
        assert "queue: TLS with 127.0.0.3[127.0.0.3]: " in a.read_log()
    else:
        why = "4.7.10 the relayhost offers no TLS (STARTTLS); its password is never sent in clear"
        wait_queue(a, "SELECT status, last_error FROM queue", [f"queued|451 {why}"])
        assert f"cannot log in as {BOB}: {why}; {FIX}" in a.read_log()
    s.close()
    assert not any(c.upper().startswith(b"AUTH") for c in s.commands), s.commands
    assert not any(c.upper().startswith(b"MAIL") for c in s.commands), s.commands
