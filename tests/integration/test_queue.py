"""The outbound queue and the SMTP client, between the instances of
queuenet.py."""
import os
import smtplib
import socket
import time

import pytest

from conftest import free_port
from dnsserver import DnsServer
from queuenet import (BOB, CAROL, FAST, SENDER, SENDER_PW, ZONES, FakeMx, net,  # noqa: F401
                      sender_a, submit, wait_queue, wait_uids)
from test_postgresql import pg_cluster, pg_dsn  # noqa: F401 (fixtures)
from test_smtp_roles import sql


def test_submitted_message_arrives_at_the_other_domain(net):
    b = net("b", "127.0.0.3", [(BOB, "pw-bob")])
    a = sender_a(net)
    submit(a, [BOB], b"From: alice@a.test\r\nSubject: hello b\r\n\r\nacross\r\n")
    uids = wait_uids(b, BOB, 1)
    msg = b.msg_cat(BOB, uids[0])
    assert b"Subject: hello b" in msg and b"across" in msg
    assert b"Return-Path: <alice@a.test>" in msg
    wait_queue(a, "SELECT count(*) FROM queue", ["0"])
    # B offered STARTTLS and A used it
    assert b"from mx.a.test" in msg and b"with ESMTPS id" in msg, msg[:600]


def test_several_domains_and_dot_stuffing(net):
    b = net("b", "127.0.0.3", [(BOB, "pw-bob"), ("bert@b.test", "pw-bert")])
    c = net("c", "127.0.0.4", [(CAROL, "pw-carol")])
    a = sender_a(net)
    body = (b"From: alice@a.test\r\nSubject: dots\r\n\r\n.x\r\n..y\r\n.\r\nend\r\n")
    submit(a, [BOB, "bert@b.test", CAROL], body)
    for y, who in ((b, BOB), (b, "bert@b.test"), (c, CAROL)):
        msg = y.msg_cat(who, wait_uids(y, who, 1)[0])
        assert msg.endswith(b"\r\n\r\n.x\r\n..y\r\n.\r\nend\r\n"), msg[-80:]
    # bob and bert went in one transaction
    assert a.read_log().count("status=sent reply=250") == 3


def test_receiver_down_then_back(net):
    b = net("b", "127.0.0.3", [(BOB, "pw-bob")])
    b.stop()
    a = sender_a(net)
    submit(a, [BOB], b"Subject: later\r\n\r\nwaits\r\n")
    wait_queue(a, "SELECT status, CASE WHEN attempts > 0 THEN 1 ELSE 0 END FROM queue",
               ["queued|1"])
    assert "cannot connect" in sql(a, "SELECT last_error FROM queue")[0]
    b.start()
    wait_uids(b, BOB, 1)
    wait_queue(a, "SELECT count(*) FROM queue", ["0"])


def test_unknown_user_fails_with_the_reply(net):
    net("b", "127.0.0.3", [(BOB, "pw-bob")])
    a = sender_a(net)
    submit(a, ["nobody@b.test"], b"Subject: lost\r\n\r\nx\r\n")
    wait_queue(a, "SELECT status, substr(last_error, 1, 3) FROM queue", ["failed|550"])


def test_null_mx_fails_at_once(net):
    a = sender_a(net)
    submit(a, ["who@null.test"], b"Subject: null\r\n\r\nx\r\n")
    wait_queue(a, "SELECT status, attempts, substr(last_error, 1, 10) FROM queue",
               ["failed|1|556 5.1.10"])


def test_tls_required_to_a_server_without_tls_defers(net):
    c = net("c", "127.0.0.4", [(CAROL, "pw-carol")], tls_cert_file="none.pem",
            submissions_listen="", pop3s_listen="", imaps_listen="")
    a = sender_a(net, smtp_tls_policy="c.test=encrypt")
    submit(a, [CAROL], b"Subject: tls\r\n\r\nx\r\n")
    wait_queue(a, "SELECT status, substr(last_error, 1, 10) FROM queue", ["queued|421 4.7.10"])
    assert c.uids(CAROL) == []


def test_kill_during_sending_loses_nothing(net):
    b = net("b", "127.0.0.3", [(BOB, "pw-bob")])
    a = sender_a(net)
    n = 60
    with smtplib.SMTP("127.0.0.1", a.ports["submission"], timeout=30) as s:
        s.login(SENDER, SENDER_PW)
        for i in range(n):
            assert s.sendmail(SENDER, [BOB], f"Subject: m{i}\r\n\r\nx\r\n".encode()) == {}
    a.kill()
    a.start()
    wait_uids(b, BOB, n, timeout=60)
    wait_queue(a, "SELECT count(*) FROM queue", ["0"], timeout=60)
    subjects = set()
    for uid in b.uids(BOB):
        msg = b.msg_cat(BOB, uid)
        subjects.add(msg.split(b"Subject: ")[1].split(b"\r\n")[0])
    assert subjects == {f"m{i}".encode() for i in range(n)}


def test_queue_cli(net):
    b = net("b", "127.0.0.3", [(BOB, "pw-bob")])
    b.stop()
    a = sender_a(net, minimal_backoff_time="1h", maximal_backoff_time="1h")
    submit(a, [BOB, "bert@b.test"], b"Subject: cli\r\n\r\nx\r\n")
    wait_queue(a, "SELECT count(*) FROM queue WHERE attempts = 1", ["2"])
    lines = a.cli("queue", "list").stdout.splitlines()
    assert len(lines) == 2
    ids = [line.split()[0] for line in lines]
    assert all(" queued 1 " in line and "<alice@a.test>" in line for line in lines), lines
    shown = a.cli("queue", "show", ids[0]).stdout
    assert "last reply: 421 4.4.1 cannot connect" in shown
    a.cli("queue", "hold", ids[0])
    assert " held " in a.cli("queue", "list").stdout.splitlines()[0]
    assert a.cli("queue", "hold", ids[0], check=False).returncode == 1
    a.cli("queue", "bounce", ids[1])
    wait_queue(a, f"SELECT status FROM queue WHERE id = {ids[1]}", ["failed"])
    a.cli("queue", "delete", ids[1])
    assert a.cli("queue", "show", ids[1], check=False).returncode == 1
    b.start()
    a.cli("queue", "release", ids[0])
    wait_uids(b, BOB, 1)
    wait_queue(a, "SELECT count(*) FROM queue", ["0"])
    assert a.cli("queue", "list").stdout == "the queue is empty\n"
    assert a.cli("queue", "retry", "abc", check=False).returncode == 1


def test_dsn_parameters_reach_the_queue(net):
    b = net("b", "127.0.0.3", [(BOB, "pw-bob")])
    b.stop()
    a = sender_a(net, minimal_backoff_time="1h", maximal_backoff_time="1h")
    with smtplib.SMTP("127.0.0.1", a.ports["submission"], timeout=30) as s:
        s.login(SENDER, SENDER_PW)
        s.sendmail(SENDER, [BOB], b"Subject: dsn\r\n\r\n\xc3\xa9\r\n",
                   mail_options=["ENVID=env+2B1", "RET=HDRS", "BODY=8BITMIME"],
                   rcpt_options=["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;bob+40b.test"])
    wait_queue(a, "SELECT envid, ret, body FROM queue_messages", ["env+1|HDRS|8BITMIME"])
    wait_queue(a, "SELECT notify, orcpt FROM queue",
               ["FAILURE,DELAY|rfc822;bob+40b.test"])


@pytest.mark.parametrize("key,value", [("smtp_address_preference", "ipv5"),
                                       ("smtp_tls_policy", "b.test=sometimes")])
def test_bad_client_config_stops_the_start(youju_factory, key, value):
    y = youju_factory()
    y.init()
    with pytest.raises(AssertionError):
        y.start(**{key: value})
    assert f"queue: {key}" in y.read_log()


def test_one_connection_for_several_messages(net):
    b = net("b", "127.0.0.3", [(BOB, "pw-bob")])
    b.stop()
    a = sender_a(net, minimal_backoff_time="1h", maximal_backoff_time="1h", queue_run_threads=1)
    with smtplib.SMTP("127.0.0.1", a.ports["submission"], timeout=30) as s:
        s.login(SENDER, SENDER_PW)
        for i in range(5):
            s.sendmail(SENDER, [BOB], f"Subject: r{i}\r\n\r\nx\r\n".encode())
    wait_queue(a, "SELECT count(*) FROM queue WHERE attempts = 1", ["5"])
    b.start()
    a.cli("queue", "retry")
    wait_uids(b, BOB, 5)
    log = b.read_log()
    assert log.count(" connect client=127.0.0.2 ") == 1, log


def test_relayhost_with_auth_over_tls(net):
    # B as a smart host lets its client send as any address
    b = net("b", "127.0.0.3", [(BOB, "pw-bob")], smtpd_sender_login_check="no")
    # a directory youjud's mail_owner can read
    pwfile = os.path.join(b.base, "relay-password")
    with open(pwfile, "w") as f:
        f.write("pw-bob\n")
    os.chmod(pwfile, 0o644)
    a = sender_a(net, relayhost=f"[127.0.0.1]:{b.ports['submission']}",
                 relayhost_username=BOB, relayhost_password_file=pwfile)
    submit(a, [BOB, "x@elsewhere.test"], b"Subject: via relay\r\n\r\nx\r\n")
    wait_uids(b, BOB, 1)
    wait_queue(a, "SELECT count(*) FROM queue", ["0"])
    log = b.read_log()
    assert f"login user={BOB} method=PLAIN" in log
    assert "to=<x@elsewhere.test> status=queued" in log
    assert "pw-bob" not in a.read_log()


def test_relayhost_refusing_the_login_defers(net):
    b = net("b", "127.0.0.3", [(BOB, "pw-bob")])
    a = sender_a(net, relayhost=f"[127.0.0.1]:{b.ports['submission']}",
                 relayhost_username=BOB, relayhost_password="wrong")
    submit(a, [BOB], b"Subject: bad login\r\n\r\nx\r\n")
    wait_queue(a, "SELECT status, substr(last_error, 1, 9) FROM queue", ["queued|451 4.7.0"])


def test_destination_concurrency_limit(net):
    b = net("b", "127.0.0.3", [(BOB, "pw-bob"), ("bert@b.test", "pw-bert")])
    b.stop()
    a = sender_a(net, minimal_backoff_time="1h", maximal_backoff_time="1h",
                 queue_run_threads=4, smtp_destination_concurrency_limit=1)
    with smtplib.SMTP("127.0.0.1", a.ports["submission"], timeout=30) as s:
        s.login(SENDER, SENDER_PW)
        for i in range(12):
            s.sendmail(SENDER, [BOB if i % 2 else "bert@b.test"],
                       f"Subject: c{i}\r\n\r\nx\r\n".encode())
    wait_queue(a, "SELECT count(*) FROM queue WHERE attempts = 1", ["12"])
    b.start()
    a.cli("queue", "retry")
    wait_uids(b, BOB, 6)
    wait_uids(b, "bert@b.test", 6)
    open_now = most = 0
    for line in b.read_log().splitlines():
        if " connect client=127.0.0.2 " in line:
            open_now += 1
        elif " disconnect client=127.0.0.2 " in line:
            open_now -= 1
        most = max(most, open_now)
    assert most == 1


def test_sigterm_does_not_wait_for_a_silent_server(net):
    # the MX of b.test accepts and then says nothing
    silent = socket.socket()
    try:
        a = sender_a(net, smtp_timeout="120s")
        port = int(a.overrides["smtp_port"])
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind(("127.0.0.3", port))
        silent.listen(5)
        submit(a, [BOB], b"Subject: silent\r\n\r\nx\r\n")
        silent.settimeout(20)
        conn, _ = silent.accept()
        time.sleep(0.5)
        started = time.monotonic()
        a.stop()
        assert time.monotonic() - started < 10
        assert "still in a transaction" in a.read_log()
        conn.close()
    finally:
        silent.close()
    a.start()
    assert "released 1 recipients" in a.read_log()


def test_wire_has_crlf_and_stuffed_dots_only(net):
    a = sender_a(net)
    fake = FakeMx(int(a.overrides["smtp_port"]))
    try:
        submit(a, [BOB], b"Subject: wire\r\n\r\n.x\r\nplain\r\n..two\r\n")
        wait_queue(a, "SELECT count(*) FROM queue", ["0"])
        fake.thread.join(10)
    finally:
        fake.close()
    wire = fake.data
    assert b"MAIL FROM:<alice@a.test>" in wire and b"RCPT TO:<bob@b.test>" in wire
    assert b"\r\n..x\r\nplain\r\n...two\r\n.\r\n" in wire
    assert wire.count(b"\n") == wire.count(b"\r\n")


def test_smtputf8_message_to_a_server_without_it_fails(net):
    a = sender_a(net)
    fake = FakeMx(int(a.overrides["smtp_port"]))
    try:
        with smtplib.SMTP("127.0.0.1", a.ports["submission"], timeout=30) as s:
            s.login(SENDER, SENDER_PW)
            s.sendmail(SENDER, [BOB], "Subject: é\r\n\r\nx\r\n".encode(),
                       mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        wait_queue(a, "SELECT status, substr(last_error, 1, 9) FROM queue",
                   ["failed|553 5.6.7"])
    finally:
        fake.close()
    assert b"MAIL FROM" not in fake.data


def test_config_dump_hides_the_relayhost_password(youju_factory):
    y = youju_factory()
    y.init()
    with open(os.path.join(y.data_dir, "youju.conf"), "a") as f:
        f.write("relayhost_password = hunter2-secret\n")
    out = y.cli("config", "dump").stdout
    assert "relayhost_password = (set, not shown)" in out
    assert "hunter2-secret" not in out


def b_and_two_nodes(youju_factory, pg_dsn, port, common, threads=(4, 4)):
    """B, and two nodes of a.test on one PostgreSQL database (127.0.0.2
    and 127.0.0.5) with threads[k] queue threads each."""
    b = youju_factory(domain="b.test", hostname="mx.b.test")
    b.init()
    b.add_account(BOB, "pw-bob")
    b.start(smtp_listen=f"127.0.0.3:{port}", **common)
    nodes = []
    for k, ip in ((1, "127.0.0.2"), (2, "127.0.0.5")):
        y = youju_factory(domain="a.test", hostname=f"mx{k}.a.test")
        y.init()
        y.use_database(pg_dsn)
        if k == 1:
            y.cli("domain", "add", "a.test")
            y.add_account(SENDER, SENDER_PW)
        y.start(smtp_listen=f"{ip}:{port}", queue_run_threads=threads[k - 1], **common)
        nodes.append(y)
    return b, nodes


def test_two_nodes_on_one_postgresql_queue_send_each_once(youju_factory, pg_dsn):
    with DnsServer(ZONES) as dns:
        port = free_port()
        common = {**FAST, "dns_servers": dns.spec, "smtp_port": port,
                  "smtp_bind_address": "127.0.0.2"}
        b, nodes = b_and_two_nodes(youju_factory, pg_dsn, port, common)
        n = 40
        for i in range(n):
            submit(nodes[i % 2], [BOB], f"Subject: n{i}\r\n\r\nx\r\n".encode())
        uids = wait_uids(b, BOB, n, timeout=60)
        wait_queue(nodes[0], "SELECT count(*) FROM queue", ["0"], timeout=60)
        time.sleep(1)
        assert len(b.uids(BOB)) == n == len(uids)
        subjects = {b.msg_cat(BOB, u).split(b"Subject: ")[1].split(b"\r\n")[0]
                    for u in b.uids(BOB)}
        assert subjects == {f"n{i}".encode() for i in range(n)}
        for y in nodes:
            assert "queue: claim" not in y.read_log()


def test_mail_queued_on_one_node_is_sent_at_once_by_another(youju_factory, pg_dsn):
    """Node 1 only receives (queue_run_threads = 0); node 2 looks for due
    mail once an hour, yet sends what node 1 queued within a second or
    two: PostgreSQL's NOTIFY wakes it. `youju queue retry` on node 1
    wakes node 2 the same way."""
    with DnsServer(ZONES) as dns:
        port = free_port()
        common = {**FAST, "dns_servers": dns.spec, "smtp_port": port,
                  "smtp_bind_address": "127.0.0.2", "queue_run_delay": "1h"}
        b, nodes = b_and_two_nodes(youju_factory, pg_dsn, port, common, threads=(0, 2))
        time.sleep(1)   # the second node's first look for due mail is over
        start = time.monotonic()
        submit(nodes[0], [BOB], b"Subject: wake up\r\n\r\nx\r\n")
        wait_uids(b, BOB, 1, timeout=10)
        assert time.monotonic() - start < 5
        assert "mx2.a.test" in b.msg_cat(BOB, b.uids(BOB)[0]).decode()
        # (the sender's log is the one to see when a wait fails)
        wait_queue(nodes[1], "SELECT count(*) FROM queue", ["0"])
        # a deferred recipient made due again on node 1 is sent by node 2 now
        b.stop()
        submit(nodes[0], [BOB], b"Subject: later\r\n\r\nx\r\n")
        wait_queue(nodes[1], "SELECT count(*) FROM queue WHERE attempts = 1", ["1"])
        b.start()
        time.sleep(1)
        start = time.monotonic()
        nodes[0].cli("queue", "retry")
        wait_uids(b, BOB, 2, timeout=10)
        assert time.monotonic() - start < 5
