"""How the queue runner sends, seen by an MX in the test (127.0.0.3, as B
in test_queue.py): a transaction longer than the claim's lease keeps its
claim (the message goes once), DATA goes in one pipelined group with
MAIL and RCPT, and `youju queue retry` is acted on at once."""
import time

from queuenet import BOB, Mx, net, sender_a, submit, wait_queue, wait_uids  # noqa: F401


def test_a_transaction_longer_than_the_lease_keeps_its_claim(net):
    # Leases of 2 s, an MX that takes 8 s over one message, and idle
    # threads that look for due mail every second: without renewal during
    # the transaction, another thread would claim the message and send it
    # again while the first is still sending it.
    a = sender_a(net, queue_lease_time="2s", queue_run_threads=3, smtp_timeout="30s")
    mx = Mx(int(a.overrides["smtp_port"]), slow=8.0)
    try:
        body = b"Subject: slow\r\n\r\n" + b"x" * 70 + b"\r\n"
        submit(a, [BOB], body * 200)
        wait_queue(a, "SELECT count(*) FROM queue", ["0"], timeout=40)
        time.sleep(3)			# a second sender would have connected by now
        assert (mx.connections, mx.mails, mx.messages) == (1, 1, 1)
        log = a.read_log()
        assert "lapsed" not in log, log[-3000:]
        assert "status=sent" in log
    finally:
        mx.close()


def test_data_is_pipelined_with_mail_and_rcpt(net):
    # The MX answers MAIL and RCPT only once DATA has come: a client that
    # waits for those replies before DATA waits 3 s per message.
    a = sender_a(net)
    mx = Mx(int(a.overrides["smtp_port"]), hold=True)
    try:
        submit(a, [BOB, "bert@b.test"], b"Subject: pipelined\r\n\r\nx\r\n")
        wait_queue(a, "SELECT count(*) FROM queue", ["0"], timeout=20)
        assert mx.messages == 1
        assert not mx.waited
    finally:
        mx.close()


def test_queue_retry_wakes_the_running_daemon(net):
    # Idle threads look only every minute: the retry must tell them.
    b = net("b", "127.0.0.3", [(BOB, "pw-bob")])
    b.stop()
    a = sender_a(net, queue_run_delay="60s", minimal_backoff_time="1h",
                 maximal_backoff_time="1h")
    submit(a, [BOB], b"Subject: retried\r\n\r\nx\r\n")
    wait_queue(a, "SELECT count(*) FROM queue WHERE attempts = 1", ["1"])
    b.start()
    time.sleep(1)			# the threads are asleep for a minute now
    started = time.monotonic()
    a.cli("queue", "retry")
    wait_uids(b, BOB, 1, timeout=20)
    assert time.monotonic() - started < 10
