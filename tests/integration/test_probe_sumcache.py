"""Hostile probes of youjud's IMAP summary cache (imap_summary_cache)
and of its store's connection pool: answers equal with the cache and
without it, under concurrent deliveries, EXPUNGE, STORE, COPY and MOVE
of messages that share a blob; UTF8=ACCEPT sessions next to sessions
that fill the cache; deep multipart messages whose summaries are large;
the size's bounds in `youju config check`."""

import os
import re
import threading
import time

import pytest

from conftest import PASSWORD, STORE_DRIVER, USER
from test_imap import deliver, imap, make_msg

SUMMARY_ITEMS = "(UID ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (Subject From)])"


def fetch_all(m, items=SUMMARY_ITEMS):
    typ, data = m.uid("FETCH", "1:*", items)
    assert typ == "OK", data
    return data


def flat(data):
    """A response's lines and literals as one byte string."""
    return b"".join(b"".join(x) if isinstance(x, tuple) else x for x in data)


def env(m, seq):
    typ, data = m.fetch(seq, "(ENVELOPE)")
    assert typ == "OK", data
    return flat(data).split(b"(ENVELOPE", 1)[1]


def searches(m, *keys):
    out = []
    for k in keys:
        typ, data = m.uid("SEARCH", *k)
        assert typ == "OK", (k, data)
        out.append(sorted(int(x) for x in data[0].split()))
    return out


def multipart(depth, width, tag):
    """A message of nested multiparts, depth deep, width parts each:
    its BODYSTRUCTURE is large."""
    def part(d, path):
        if d == 0:
            return (b"Content-Type: text/plain; charset=us-ascii; name=\"p" + path
                    + b".txt\"\r\nContent-Disposition: attachment; filename=\"p" + path
                    + b".txt\"\r\nContent-Language: en\r\n\r\nleaf " + path + b"\r\n")
        b = b"b" + path
        out = b"Content-Type: multipart/mixed; boundary=\"" + b + b"\"\r\n\r\n"
        for i in range(width):
            out += b"--" + b + b"\r\n" + part(d - 1, path + b"." + str(i).encode())
        return out + b"--" + b + b"--\r\n"
    return (b"From: Deep <deep@example.org>\r\nTo: alice@example.test\r\n"
            b"Subject: deep " + tag.encode() + b"\r\nMIME-Version: 1.0\r\n" + part(depth, b"0"))


def start(youju_factory, **overrides):
    y = youju_factory()
    y.init()
    y.add_account(USER, PASSWORD)
    y.start(wait=("smtp", "imap"), **overrides)
    return y


def test_config_check_bounds_the_cache_size(youju_factory):
    """Sizes from none to a tebibyte are taken; others are refused by
    `youju config check`, naming the key."""
    y = youju_factory()
    y.init()
    conf = os.path.join(y.data_dir, "youju.conf")
    with open(conf) as f:
        base = f.read()
    for value, ok in (("0", True), ("1k", True), ("1g", True), ("-1", False),
                      ("12q", False), ("2048g", False), ("99999999999999999999", False),
                      ("", False)):
        with open(conf, "w") as f:
            f.write(base + f"imap_summary_cache = {value}\n")
        r = y.cli("config", "check", check=False)
        assert (r.returncode == 0) == ok, (value, r.stdout, r.stderr)
        if not ok:
            assert "imap_summary_cache" in r.stderr + r.stdout, (value, r.stderr)


def test_shared_blobs_copy_move_expunge_same_answers(youju_factory):
    """COPY and MOVE share the blob: the copies answer as the original,
    also after the original is expunged and its blob kept by the copy;
    once every copy is gone, new mail is still answered right."""
    y = start(youju_factory, imap_summary_cache="32m")
    deliver(y, *[make_msg(f"shared {i}") for i in range(20)])
    m = imap(y)
    m.create("Copies")
    m.create("Moved")
    m.select("INBOX")
    first = fetch_all(m)
    assert m.uid("COPY", "1:10", "Copies")[0] == "OK"
    assert m.uid("MOVE", "11:20", "Moved")[0] == "OK"
    m.select("Copies")
    copies = fetch_all(m)
    m.select("Moved")
    moved = fetch_all(m)
    strip = lambda d: [re.sub(rb"^\d+ \(UID \d+ ", b"", x[0] if isinstance(x, tuple) else x)
                       for x in d]
    assert strip(copies) + strip(moved) == strip(first)
    m.select("INBOX")
    m.uid("STORE", "1:*", "+FLAGS", "(\\Deleted)")
    m.expunge()
    m.select("Copies")
    assert strip(fetch_all(m)) == strip(copies)
    m.uid("STORE", "1:*", "+FLAGS", "(\\Deleted)")
    m.expunge()
    m.select("Moved")
    m.uid("STORE", "1:*", "+FLAGS", "(\\Deleted)")
    m.expunge()
    deliver(y, *[make_msg(f"fresh {i}") for i in range(5)])
    m.select("INBOX")
    subjects = re.findall(rb'"fresh (\d)"', b"".join(
        x[0] if isinstance(x, tuple) else x for x in fetch_all(m)))
    assert subjects == [b"0", b"1", b"2", b"3", b"4"]
    m.logout()


def test_utf8_accept_session_never_gets_the_stored_form(youju_factory):
    """A plain session fills the cache with a message's summary; a
    UTF8=ACCEPT session then fetches the same message and gets its
    addresses and subject in UTF-8, not the stored form; and the other
    way round."""
    y = start(youju_factory, imap_summary_cache="32m")
    msg = ("From: Jürgen <j@example.org>\r\n"
           "To: alice@example.test\r\nSubject: grüße\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n"
           ).encode()
    deliver(y, msg, msg)
    plain = imap(y)
    plain.select("INBOX")
    p1 = env(plain, "1")
    u = imap(y)
    assert u._simple_command("ENABLE", "UTF8=ACCEPT")[0] == "OK"
    u.select("INBOX")
    u1 = env(u, "1")
    u2 = env(u, "2")
    p2 = env(plain, "2")
    p1b = env(plain, "1")
    assert p1 == p1b == p2
    assert u1 == u2
    assert u1 != p1
    # Quoted under UTF8=ACCEPT, a literal otherwise.
    assert b'"' + "grüße".encode() + b'"' in u1, u1
    assert b"{7}" + "grüße".encode() in p1, p1
    u.logout()
    plain.logout()


def deep_answers(y, n):
    m = imap(y)
    m.select("INBOX")
    a = [fetch_all(m, "(UID BODYSTRUCTURE BODY ENVELOPE)"), fetch_all(m, "(UID BODYSTRUCTURE)")]
    a += searches(m, ("SUBJECT", "deep"), ("HEADER", "Subject", "7"), ("FROM", "deep"))
    m.logout()
    return a


def test_deep_multipart_answers_equal_with_any_cache(youju_factory):
    """Messages whose BODYSTRUCTURE runs to many kilobytes: the answers
    are the same from a cache that holds them, from one too small for
    any (1k), and from none."""
    msgs = [multipart(3, 6, str(i)) for i in range(12)]
    runs = {}
    for size in ("0", "1k", "64m"):
        y = start(youju_factory, imap_summary_cache=size)
        deliver(y, *msgs)
        runs[size] = deep_answers(y, len(msgs))
        runs[size + " again"] = deep_answers(y, len(msgs))
        y.stop()
    assert len(runs["0"][0]) == 12
    assert len(runs["0"][1][0][0] if isinstance(runs["0"][1][0], tuple) else runs["0"][1][0]) > 4000
    for k in runs:
        assert runs[k] == runs["0"], k


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_rss_stays_near_the_cache_size(youju_factory):
    """Some 24 MB of summaries (2400 messages of 36 parts, about 10 KB
    of BODYSTRUCTURE and BODY apiece) read through a 4 MiB cache, twice:
    youjud's memory grows by a bounded multiple of the cache, not by all
    of them. (The bound is twice the size and some: entries freed by
    one thread and made by another sit in different malloc arenas.)"""
    n = 2400
    y = start(youju_factory, imap_summary_cache=os.environ.get("PROBE_RSS_CACHE", "4m"))
    with open(f"/proc/{y.proc.pid}/maps") as f:
        if "libasan" in f.read():
            pytest.skip("AddressSanitizer keeps freed memory in quarantine")
    for k in range(n // 100):
        deliver(y, *[multipart(2, 6, f"{k}-{i}") for i in range(100)])
    m = imap(y)
    m.select("INBOX")
    fetch_all(m, "(UID FLAGS)")
    before = rss_kib(y.proc.pid)
    for _ in range(2):
        for lo in range(1, n + 1, 200):
            typ, data = m.uid("FETCH", f"{lo}:{lo + 199}", "(BODYSTRUCTURE BODY ENVELOPE)")
            assert typ == "OK" and len(data) == 200
    after = rss_kib(y.proc.pid)
    m.logout()
    print("rss", before, after)
    assert after - before < (2 * 4 + 4) * 1024, (before, after)


def worker(y, errors, stop, mailbox, n_rounds):
    try:
        m = imap(y)
        m.select(mailbox)
        for _ in range(n_rounds):
            if stop.is_set():
                break
            data = fetch_all(m)
            for x in data:
                if not isinstance(x, tuple):
                    continue
                head, lit = x
                env = re.search(rb'ENVELOPE \((?:NIL|"[^"]*") "(race [0-9]+)"', head)
                sub = re.search(rb"Subject: (race [0-9]+)", lit)
                if env is None or sub is None or env.group(1) != sub.group(1):
                    errors.append((head, lit))
            typ, d = m.uid("SEARCH", "SUBJECT", "race")
            if typ != "OK":
                errors.append(d)
            typ, d = m.uid("SEARCH", "HEADER", "Message-ID", "race")
            if typ != "OK":
                errors.append(d)
        m.logout()
    except Exception as e:  # noqa: BLE001 - reported below
        errors.append(repr(e))


def test_concurrent_fetch_search_with_deliveries_and_expunges(youju_factory):
    """Sessions FETCH and SEARCH the summaries while SMTP delivers,
    others STORE and EXPUNGE and COPY: every ENVELOPE answered is the
    message's own, no command fails, and in the end the header searches
    find exactly the messages there are."""
    y = start(youju_factory, imap_summary_cache=os.environ.get("PROBE_CACHE", "64k"))
    deliver(y, *[make_msg(f"race {i}") for i in range(40)])
    a = imap(y)
    a.create("Other")
    a.logout()
    errors, stop = [], threading.Event()
    threads = [threading.Thread(target=worker, args=(y, errors, stop, mb, 60))
               for mb in ("INBOX", "INBOX", "Other", "INBOX", "Other", "INBOX")]
    for t in threads:
        t.start()
    n = 40
    w = imap(y)
    w.select("INBOX")
    for r in range(12):
        deliver(y, *[make_msg(f"race {n + i}") for i in range(5)])
        n += 5
        w.uid("COPY", "1:*", "Other")
        w.uid("STORE", f"{r * 5 + 1}:{r * 5 + 3}", "+FLAGS", "(\\Deleted)")
        w.expunge()
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    w.select("INBOX")
    data = fetch_all(w)
    have = sorted(int(s) for s in re.findall(rb"Subject: race ([0-9]+)", b"".join(
        x[1] for x in data if isinstance(x, tuple))))
    typ, d = w.search(None, "SUBJECT", "race")
    assert len(d[0].split()) == len(have)
    for i in have[:5] + have[-5:]:
        typ, d = w.search(None, "SUBJECT", f'"race {i}"')
        assert len(d[0].split()) >= 1
    keys = (("SUBJECT", "race"), ("SUBJECT", '"race 4"'), ("FROM", "bob"),
            ("HEADER", "Message-ID", "race.1"), ("NOT", "HEADER", "Subject", "race 3"))
    final = {}
    for mb in ("INBOX", "Other"):
        w.select(mb)
        final[mb] = (flat(fetch_all(w)), searches(w, *keys))
    w.logout()
    # The same from the database alone.
    y.restart(wait=("smtp", "imap"), imap_summary_cache="0")
    w = imap(y)
    for mb in ("INBOX", "Other"):
        w.select(mb)
        assert (flat(fetch_all(w)), searches(w, *keys)) == final[mb], mb
    w.logout()


def pg_backends(y):
    """youjud's connections to its PostgreSQL database."""
    import subprocess
    dbname = re.search(r"dbname=(\S+)", y.pg_dsn).group(1)
    base = re.sub(r"user=\S+", "user=youju", y.pg_dsn.replace(f"dbname={dbname}", "dbname=postgres"))
    r = subprocess.run(["psql", base, "-Atq", "-c",
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s'"
                        " AND pid <> pg_backend_pid()" % dbname],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip())


def busy_session(y, errors, rounds):
    try:
        m = imap(y)
        m.select("INBOX")
        for i in range(rounds):
            for cmd in (("STORE", "1:*", "+FLAGS", f"(k{i % 3})"), ("FETCH", "1:*", SUMMARY_ITEMS),
                        ("SEARCH", "SUBJECT", "pool")):
                typ, d = m.uid(*cmd)
                if typ != "OK":
                    errors.append((cmd, d))
        m.logout()
    except Exception as e:  # noqa: BLE001 - reported below
        errors.append(repr(e))


def run_busy(y, n, rounds):
    errors = []
    threads = [threading.Thread(target=busy_session, args=(y, errors, rounds)) for _ in range(n)]
    for t in threads:
        t.start()
    peak = 0
    while any(t.is_alive() for t in threads):
        peak = max(peak, pg_backends(y))
        time.sleep(0.2)
    for t in threads:
        t.join()
    return errors, peak


def pg_admin(y, sql, db=None):
    import subprocess
    dbname = re.search(r"dbname=(\S+)", y.pg_dsn).group(1)
    dsn = re.sub(r"user=\S+", "user=youju", y.pg_dsn)
    if db is not None:
        dsn = dsn.replace(f"dbname={dbname}", f"dbname={db}")
    r = subprocess.run(["psql", dsn, "-Atq", "-c", sql.replace("DB", dbname)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def limited_role(y, limit):
    """youjud's store from now on through a role that may hold only
    limit connections (the cluster's own user is a superuser, which
    no limit binds)."""
    role = "lim_" + re.search(r"dbname=(\S+)", y.pg_dsn).group(1)
    pg_admin(y, f"CREATE ROLE {role} LOGIN CONNECTION LIMIT {limit}", db="postgres")
    pg_admin(y, f"GRANT ALL ON SCHEMA public TO {role};"
             f" GRANT ALL ON ALL TABLES IN SCHEMA public TO {role};"
             f" GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
    conf = os.path.join(y.data_dir, "youju.conf")
    with open(conf) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text.replace("user=youju", f"user={role}"))
    y.pg_dsn = y.pg_dsn.replace("user=youju", f"user={role}")
    return role


@pytest.mark.skipif(STORE_DRIVER != "postgresql", reason="PostgreSQL's connection limit")
def test_pg_connection_limit_reached_gives_one_line_errors(youju_factory):
    """The database refuses youjud more connections while sixty sessions
    work at once: each command either works or is refused with a tagged
    NO of one line (libpq's message ends in a newline, which once went
    out inside the reply and broke it in two); nothing hangs, and once
    the sessions are gone new ones work, under the limit still."""
    y = start(youju_factory)
    deliver(y, *[make_msg(f"pool {i}") for i in range(10)])
    y.stop()
    role = limited_role(y, 14)
    y.start(wait=("smtp", "imap"))
    t0 = time.monotonic()
    errors, peak = run_busy(y, 60, 4)
    assert time.monotonic() - t0 < 120
    assert peak <= 14 + 1
    broken = [e for e in errors if "unterminated" in repr(e) or "\\n" in repr(e)]
    assert not broken, broken[:3]
    # The limit still holds, and youjud's pool holds idle connections up
    # to it: a few sessions must get theirs, and STORE its writer, from
    # those (they were refused until the pool was trimmed a minute on).
    errors, _ = run_busy(y, 3, 2)
    assert not errors, errors[:3]
    pg_admin(y, f"ALTER ROLE {role} CONNECTION LIMIT -1", db="postgres")
    errors, _ = run_busy(y, 3, 2)
    assert not errors, errors[:3]


def big_multipart(tag, mib=9):
    """Over the size whose summary is made at delivery: made at the
    first FETCH instead."""
    att = (b"QUJD" * 19 + b"\r\n") * (mib * 1024 * 1024 // 78 + 1)
    return (b"From: Big <big@example.org>\r\nTo: alice@example.test\r\n"
            b"Subject: big " + tag.encode() + b"\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n"
            b"--zz\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
            b"--zz\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + att + b"--zz--\r\n")


def test_large_messages_summaries_made_by_two_sessions_at_once(youju_factory):
    """Two sessions FETCH the summaries of messages over 8 MiB at the
    same moment, both making them: they answer the same, as does a
    third afterwards (from the cache) and youjud restarted without a
    cache (from the database)."""
    y = start(youju_factory, imap_summary_cache="32m", message_size_limit="40m")
    deliver(y, big_multipart("one"), big_multipart("two"))
    items = "(UID ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[HEADER.FIELDS (Subject)])"
    sessions = [imap(y) for _ in range(2)]
    for s in sessions:
        s.select("INBOX")
    out, barrier = [None, None], threading.Barrier(2)

    def run(i):
        barrier.wait()
        out[i] = flat(fetch_all(sessions[i], items))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert out[0] == out[1] and b"big two" in out[0] and b'"a.bin"' in out[0]
    third = imap(y)
    third.select("INBOX")
    assert flat(fetch_all(third, items)) == out[0]
    for s in sessions + [third]:
        s.logout()
    y.restart(imap_summary_cache="0")
    m = imap(y)
    m.select("INBOX")
    assert flat(fetch_all(m, items)) == out[0]
    m.logout()


def drop_summaries(y):
    """As a store from before summaries were kept: none."""
    if STORE_DRIVER == "postgresql":
        pg_admin(y, "DELETE FROM summaries")
        return
    import sqlite3
    db = sqlite3.connect(os.path.join(y.data_dir, "youju.db"))
    db.execute("DELETE FROM summaries")
    db.commit()
    db.close()


def test_reindex_from_the_cli_while_sessions_make_summaries(youju_factory):
    """Messages stored without summaries: sessions make them at FETCH
    while `youju store reindex` makes them too, from another process;
    every answer is the one given before they were dropped."""
    y = start(youju_factory, imap_summary_cache="32m")
    deliver(y, *[multipart(2, 4, str(i)) for i in range(30)])
    deliver(y, *[make_msg(f"plain {i}") for i in range(30)])
    items = "(UID ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[HEADER.FIELDS (Subject From)])"
    m = imap(y)
    m.select("INBOX")
    want = flat(fetch_all(m, items))
    want_search = searches(m, ("SUBJECT", "deep"), ("FROM", "bob"), ("HEADER", "Subject", "1"))
    m.logout()
    y.stop()
    drop_summaries(y)
    y.start(wait=("smtp", "imap"))
    got, errors = [], []

    def session():
        try:
            s = imap(y)
            s.select("INBOX")
            for _ in range(4):
                got.append((flat(fetch_all(s, items)),
                            searches(s, ("SUBJECT", "deep"), ("FROM", "bob"),
                                     ("HEADER", "Subject", "1"))))
            s.logout()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=session) for _ in range(2)]
    for t in threads:
        t.start()
    r = y.cli("store", "reindex", check=False)
    for t in threads:
        t.join(timeout=120)
    assert r.returncode == 0, r.stderr
    assert not errors, errors
    assert len(got) == 8
    for answer, found in got:
        assert answer == want
        assert found == want_search


@pytest.mark.skipif(STORE_DRIVER != "postgresql", reason="counts PostgreSQL's backends")
def test_pg_two_hundred_sessions_then_idle_connections_are_closed(youju_factory):
    """Two hundred sessions STORE, FETCH and SEARCH at once (from one
    address: its limit raised): none fails;
    the connections youjud then keeps idle are closed a minute on, down
    to a few."""
    y = start(youju_factory, client_connection_count_limit=1000)
    deliver(y, *[make_msg(f"pool {i}") for i in range(10)])
    idle = pg_backends(y)
    errors, peak = run_busy(y, 200, 3)
    assert not errors, errors[:3]
    assert peak > idle + 8
    assert pg_backends(y) > idle + 8
    deadline = time.monotonic() + 90
    while pg_backends(y) > idle + 8 and time.monotonic() < deadline:
        time.sleep(2)
    assert pg_backends(y) <= idle + 8


def evict_answers(y, n):
    """FETCH and SEARCH over n messages, in an order that keeps the
    cache's LRU turning over."""
    m = imap(y)
    m.select("INBOX")
    out = []
    for lo in list(range(1, n + 1, 250)) + list(range(n - 249, 0, -500)):
        typ, data = m.uid("FETCH", f"{lo}:{lo + 249}", SUMMARY_ITEMS)
        assert typ == "OK", data
        out.append(flat(data))
    out.append(searches(m, ("SUBJECT", "evict 7"), ("HEADER", "X-Tag", "t3"),
                        ("FROM", "bob"), ("NOT", "HEADER", "X-Tag", "t1")))
    out.append(flat(fetch_all(m, "(UID ENVELOPE BODY.PEEK[HEADER.FIELDS (X-Tag)])")))
    m.logout()
    return out


def test_answers_equal_while_the_cache_evicts(youju_factory):
    """1500 messages through a cache that holds a few hundred of their
    summaries (256k: each entry fits its shard, not all of them): the
    answers are those of no cache and of one that holds them all. (A
    cache of 16k or 64k keeps none of these summaries: an entry may take
    only a 256th of it.)"""
    n = 1500
    msgs = [make_msg(f"evict {i}", extra=b"X-Tag: t%d\r\n" % (i % 5)
                     + b"Cc: c%d@example.org\r\n" % i * (i % 4)) for i in range(n)]
    runs = {}
    for size in ("0", "256k", "32m"):
        y = start(youju_factory, imap_summary_cache=size)
        for k in range(0, n, 250):
            deliver(y, *msgs[k:k + 250])
        runs[size] = (evict_answers(y, n), evict_answers(y, n))
        y.stop()
    assert runs["0"][0] == runs["0"][1]
    assert runs["256k"] == runs["0"]
    assert runs["32m"] == runs["0"]
