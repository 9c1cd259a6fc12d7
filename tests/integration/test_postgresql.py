"""youjud on PostgreSQL (store_driver = postgresql): two nodes, each with
its own data dir and ports, on one database behave as one server.

A throwaway PostgreSQL cluster is made for the module (initdb in a
temporary directory, run by the postgres user when the tests run as root,
on a Unix socket only) and every test gets a new database in it.
"""
import imaplib
import os
import poplib
import smtplib
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import DOMAIN, PASSWORD, PGBIN, USER, PgCluster


@pytest.fixture(scope="module")
def pg_cluster(store_database):
    if store_database is not None:
        yield store_database
        return
    if not os.path.exists(os.path.join(PGBIN, "initdb")):
        pytest.skip("PostgreSQL is not installed (scripts/deps.sh)")
    cluster = PgCluster()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_dsn(pg_cluster):
    return pg_cluster.new_database()


def node(youju_factory, dsn, first):
    """A youjud on dsn; the first node also makes the domain and alice."""
    y = youju_factory()
    y.init()
    y.use_database(dsn)         # the last line of youju.conf wins
    if first:
        y.cli("domain", "add", DOMAIN)
        y.add_account(USER, PASSWORD)
    y.start()
    return y


def msg(i):
    return (f"From: bob@example.org\r\nTo: {USER}\r\nSubject: pg {i}\r\n"
            f"Message-ID: <pg-{i}@example.org>\r\n\r\nbody of {i}\r\n" + "x" * (i % 300)
            + "\r\n").encode()


def search_texts(y, timeout=30):
    """The count of search texts of a SQLite store, once youjud's
    maintenance thread has made every pending one."""
    deadline = time.monotonic() + timeout
    while sqlite_query(y, "SELECT count(*) FROM search_pending") != 0:
        assert time.monotonic() < deadline, "the search texts were not made"
        time.sleep(0.2)
    return sqlite_query(y, "SELECT count(*) FROM search_text WHERE body IS NOT NULL")


def sqlite_query(y, sql):
    db = sqlite3.connect("file:" + os.path.join(y.data_dir, "youju.db") + "?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchone()[0]
    finally:
        db.close()


def pg_query(dsn, sql):
    return subprocess.run([os.path.join(PGBIN, "psql"), "-Atc", sql, dsn], capture_output=True,
                          text=True, check=True, timeout=30).stdout.strip()


def pop_all(y):
    p = poplib.POP3("127.0.0.1", y.ports["pop3"], timeout=30)
    p.user(USER)
    p.pass_(PASSWORD)
    count, _ = p.stat()
    out = [b"\r\n".join(p.retr(i)[1]) + b"\r\n" for i in range(1, count + 1)]
    p.quit()
    return out


def test_mail_taken_on_one_node_is_read_on_the_other(youju_factory, pg_dsn):
    a = node(youju_factory, pg_dsn, first=True)
    b = node(youju_factory, pg_dsn, first=False)
    with smtplib.SMTP("127.0.0.1", a.ports["smtp"], timeout=30) as s:
        s.sendmail("bob@example.org", [USER], msg(1))
        s.sendmail("bob@example.org", [USER], msg(2))
    got = pop_all(b)
    assert len(got) == 2
    # Byte for byte what the store holds, on either node.
    assert got[0] == a.msg_cat(USER, 1) == b.msg_cat(USER, 1)
    assert b"Subject: pg 2" in got[1]
    assert b.uids(USER) == [1, 2]


def send_until(port, stop, sent, lock, start):
    i = start
    while not stop.is_set():
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
                while not stop.is_set():
                    s.sendmail("bob@example.org", [USER], msg(i))
                    with lock:
                        sent.append(i)      # got 250
                    i += 2
        except (OSError, smtplib.SMTPException):
            time.sleep(0.05)


def test_one_node_killed_while_both_receive(youju_factory, pg_dsn):
    """Every message that got 250 is there exactly once."""
    a = node(youju_factory, pg_dsn, first=True)
    b = node(youju_factory, pg_dsn, first=False)
    stop, lock, sent = threading.Event(), threading.Lock(), []
    threads = [threading.Thread(target=send_until, args=(a.ports["smtp"], stop, sent, lock, 0)),
               threading.Thread(target=send_until, args=(b.ports["smtp"], stop, sent, lock, 1))]
    for t in threads:
        t.start()
    time.sleep(1.5)
    a.kill()
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    got = pop_all(b)
    print(f"{len(sent)} messages got 250, {len(got)} stored")
    assert len(sent) >= 20
    subjects = [m.split(b"Subject: pg ", 1)[1].split(b"\r\n", 1)[0] for m in got]
    numbers = sorted(int(x) for x in subjects)
    assert len(numbers) == len(set(numbers)), "a message stored twice"
    assert set(sent) <= set(numbers), "a message that got 250 is missing"
    assert any(n % 2 == 0 for n in sent) and any(n % 2 == 1 for n in sent)
    for m, n in zip(got, subjects):
        assert m.endswith(b"x" * (int(n) % 300) + b"\r\n")
    r = b.cli("msg", "list", USER)
    assert r.returncode == 0


def test_pop3_maildrop_is_locked_across_nodes(youju_factory, pg_dsn):
    """A POP3 session on one node makes a login on the other answer
    [IN-USE]; the lock goes with the session, and with a killed node."""
    a = node(youju_factory, pg_dsn, first=True)
    b = node(youju_factory, pg_dsn, first=False)
    pa = poplib.POP3("127.0.0.1", a.ports["pop3"], timeout=30)
    pa.user(USER)
    pa.pass_(PASSWORD)
    pb = poplib.POP3("127.0.0.1", b.ports["pop3"], timeout=30)
    pb.user(USER)
    with pytest.raises(poplib.error_proto) as e:
        pb.pass_(PASSWORD)
    assert e.value.args[0].startswith(b"-ERR [IN-USE]")
    pa.quit()
    pb.user(USER)
    pb.pass_(PASSWORD)
    # Held by b now; a node that dies lets go.
    pa = poplib.POP3("127.0.0.1", a.ports["pop3"], timeout=30)
    pa.user(USER)
    with pytest.raises(poplib.error_proto) as e:
        pa.pass_(PASSWORD)
    assert e.value.args[0].startswith(b"-ERR [IN-USE]")
    b.kill()
    deadline = time.monotonic() + 10
    while True:
        try:
            pa.user(USER)
            pa.pass_(PASSWORD)
            break
        except poplib.error_proto:
            assert time.monotonic() < deadline, "the dead node's lock stayed"
            time.sleep(0.2)
    pa.quit()


def test_store_copy_to_postgresql_and_back(youju_factory, pg_dsn):
    """youju store copy moves a SQLite store into PostgreSQL and back:
    UIDs, flags, sizes and bytes stay, and the nodes serve them."""
    y = youju_factory()
    y.init()
    if getattr(y, "pg_dsn", None) is not None:
        pytest.skip("copies from a SQLite store")
    y.add_account(USER, PASSWORD)
    y.cli("alias", "add", "team@" + DOMAIN, USER)
    y.cli("alias", "owner", "team@" + DOMAIN, USER)
    y.cli("account", "senders", USER, "add", "@partner.example")
    senders = y.cli("account", "senders", USER, "list").stdout
    assert senders == "@partner.example\nteam@" + DOMAIN + "\n"
    y.start()
    with smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=30) as s:
        for i in range(5):
            s.sendmail("bob@example.org", [USER], msg(i))
    p = poplib.POP3("127.0.0.1", y.ports["pop3"], timeout=30)
    p.user(USER)
    p.pass_(PASSWORD)
    p.retr(2)
    p.dele(1)
    p.quit()                        # 1 expunged, 2 \Seen
    m = imaplib.IMAP4("127.0.0.1", y.ports["imap"], timeout=30)
    m.login(USER, PASSWORD)
    for verb in (m.create, m.subscribe, m.delete):      # a subscription kept by name
        assert verb("Gone")[0] == "OK"
    m.logout()
    listing = y.msg_list(USER)
    assert "\\Seen" in listing and y.uids(USER) == [2, 3, 4, 5]
    stored = {u: y.msg_cat(USER, u) for u in y.uids(USER)}
    texts = search_texts(y)
    y.stop()

    r = y.cli("store", "copy", "--to", pg_dsn)
    assert "copied" in r.stdout
    fails = y.cli("store", "copy", "--to", pg_dsn, check=False)
    assert fails.returncode != 0 and "not empty" in fails.stderr
    with open(os.path.join(y.data_dir, "youju.conf"), "a") as f:
        f.write(f"store_driver = postgresql\nstore_dsn = {pg_dsn}\n")
    assert y.msg_list(USER) == listing
    assert {u: y.msg_cat(USER, u) for u in y.uids(USER)} == stored
    y.start()
    assert pg_query(pg_dsn, "SELECT name FROM kept_subscriptions") == "Gone"
    # the search text travels (and PostgreSQL indexes it)
    assert pg_query(pg_dsn, "SELECT count(*) FROM search_text WHERE body IS NOT NULL") == \
        str(texts)
    m = imaplib.IMAP4("127.0.0.1", y.ports["imap"], timeout=30)
    m.login(USER, PASSWORD)
    m.select("INBOX")
    assert m.uid("SEARCH", "BODY", '"body of 3"') == ("OK", [b"4"])
    m.logout()
    assert pop_all(y) == [stored[u] for u in sorted(stored)]
    y.stop()
    listing = y.msg_list(USER)      # POP3 made them all \Seen
    assert listing.count("\\Seen") == 4

    back = youju_factory()
    back.init()
    back.cli("domain", "del", DOMAIN)
    back.cli("store", "copy", "--from", pg_dsn)
    assert back.msg_list(USER) == listing
    assert {u: back.msg_cat(USER, u) for u in back.uids(USER)} == stored
    assert sqlite_query(back, "SELECT count(*) FROM search_fts WHERE search_fts"
                              " MATCH '\"BODY OF\"'") == texts
    assert sqlite_query(back, "SELECT name FROM kept_subscriptions") == "Gone"
    # sender rules and alias owners travel too
    assert back.cli("account", "senders", USER, "list").stdout == senders
