"""SEARCH BODY and TEXT with the full-text index (SQLite FTS5 trigrams,
PostgreSQL pg_trgm) against a real youjud through imaplib: the index only
rules messages out, so every search must answer exactly what the scan of
every message answers (imap_fts = no), on a corpus delivered over SMTP
and put in with APPEND; and its rows come and go with the messages."""

import imaplib
import os
import random
import re
import smtplib
import sqlite3
import time

import pytest

from conftest import PASSWORD, STORE_DRIVER, USER

TESTDATA = os.environ.get("YOUJU_TESTDATA",
                          os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                       "testdata"))
CORPUS = os.path.join(TESTDATA, "messages")


def corpus():
    """The corpus messages, CRLF line ends, sorted by path."""
    out = []
    for root, _, files in os.walk(CORPUS):
        for name in files:
            if name.endswith((".md", ".py")):
                continue
            with open(os.path.join(root, name), "rb") as f:
                data = f.read()
            out.append(re.sub(rb"\r?\n", b"\r\n", data))
    return out


def msg(subject, body, extra=b""):
    return (b"From: Bob <bob@example.org>\r\nTo: alice@example.test\r\n"
            b"Subject: " + subject + b"\r\n" + extra + b"\r\n" + body)


# Bodies whose text is found only once decoded.
QP = msg(b"qp", b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln, soft=\r\nbroken word\r\n",
         b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
         b"Content-Transfer-Encoding: quoted-printable\r\n")
B64 = msg(b"b64", b"w4ljaGFsb3RlIGV0IGNyw6htZSBicsO7bMOpZQ0K\r\n",
          b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
          b"Content-Transfer-Encoding: base64\r\n")
LATIN1 = msg(b"latin1", b"Caf\xe9 cr\xe8me, na\xefve\r\n",
             b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n")
ENCWORD = msg(b"=?utf-8?q?Sch=C3=B6ne_Gr=C3=BC=C3=9Fe?=", b"plain body\r\n")
ATTACH = msg(b"attach",
             b"--XX\r\nContent-Type: text/plain\r\n\r\nvisible zanzibar text\r\n"
             b"--XX\r\nContent-Type: application/octet-stream\r\n"
             b"Content-Transfer-Encoding: base64\r\n\r\naGlkZGVuIHF1b2trYSBieXRlcw==\r\n"
             b"--XX--\r\n",
             b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n")
OWN = [QP, B64, LATIN1, ENCWORD, ATTACH]

# Needles: whole words, pieces of words, across a soft line break,
# case and accents folded, short ones (scanned), and ones in no message.
NEEDLES = ["Grüße", "GRÜSSE", "grü", "rüß", "köln", "softbroken", "broken word", "échalote",
           "CRÈME BRÛ", "ème", "Café", "naïve", "Schöne", "zanzibar", "anzi", "quokka",
           "hidden", "a", "ab", "é", "Zz", "the", "THE", "Subject", "bob@example", "from: bob",
           "delivered-to", "alice@example.test", "Hello", "nothing-like-this-anywhere",
           "ü", "\"quoted\"", "100%", "a_b", "\\"]


def imap(y):
    m = imaplib.IMAP4("127.0.0.1", y.ports["imap"], timeout=60)
    m.login(USER, PASSWORD)
    return m


def deliver(y, messages):
    with smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=60) as s:
        s.ehlo("client.example.org")
        for m in messages:
            s.sendmail("bob@example.org", [USER], m)


def append(m, mailbox, messages):
    for data in messages:
        typ, res = m.append(mailbox, None, None, data)
        assert typ == "OK", res


def search(m, key, needle):
    """UID SEARCH CHARSET UTF-8 key {literal}: the UIDs, sorted."""
    m.literal = needle.encode()
    typ, res = m.uid("SEARCH", "CHARSET", "UTF-8", key)
    assert typ == "OK", res
    return sorted(int(u) for u in res[0].split())


def all_searches(y, mailbox="INBOX", needles=NEEDLES):
    m = imap(y)
    m.select(mailbox)
    out = {(key, n): search(m, key, n) for key in ("BODY", "TEXT") for n in needles}
    m.logout()
    return out


def corpus_needles(messages, count, seed=8):
    """Pieces of the messages' lines (3 to 12 characters), as a reader
    might type them."""
    rnd = random.Random(seed)
    out = []
    while len(out) < count:
        data = rnd.choice(messages).decode("utf-8", "replace")
        words = re.findall(r"[A-Za-z\u00c0-\u024f]{3,}", data)
        if not words:
            continue
        w = rnd.choice(words)
        a = rnd.randrange(0, max(1, len(w) - 3))
        out.append(w[a:a + rnd.randrange(3, 13)])
    return out


def db_rows(y, sql):
    """A query on the SQLite store (read-only), or None on PostgreSQL."""
    if STORE_DRIVER != "sqlite":
        return None
    db = sqlite3.connect("file:" + os.path.join(y.data_dir, "youju.db") + "?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def wait_indexed(y, timeout=60):
    """Waits for youjud's maintenance thread to make every pending text
    (after the delivery or APPEND, when the store is quiet)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = db_rows(y, "SELECT count(*) = 0 FROM search_pending")
        if rows is None or rows[0][0] == 1:
            return
        assert time.monotonic() < deadline, "the index was not filled"
        time.sleep(0.2)


def test_index_equals_scan_on_corpus(youju):
    messages = corpus()
    assert len(messages) > 200
    half = len(messages) // 2
    deliver(youju, messages[:half] + OWN)
    m = imap(youju)
    append(m, "INBOX", messages[half:] + OWN)
    m.logout()
    needles = NEEDLES + corpus_needles(messages, 60)
    # Half indexed, half not yet: the answers are the same either way.
    partly = all_searches(youju, needles=needles[:20])
    wait_indexed(youju)
    indexed = all_searches(youju, needles=needles)
    # Every blob has its text row (or the mark that it has none).
    rows = db_rows(youju, "SELECT (SELECT count(*) FROM blobs),"
                          " (SELECT count(*) FROM search_text), (SELECT count(*) FROM summaries)")
    if rows is not None:
        assert rows[0][0] == rows[0][1] == rows[0][2], rows
    youju.restart(imap_fts="no")
    scanned = all_searches(youju, needles=needles)
    assert indexed == scanned
    assert partly == {k: v for k, v in scanned.items() if k[1] in needles[:20]}
    assert sum(1 for v in scanned.values() if v) > 40, "the needles should find something"


def test_decoded_bodies(youju):
    deliver(youju, [QP, B64, LATIN1])
    m = imap(youju)
    append(m, "INBOX", [ENCWORD, ATTACH])
    wait_indexed(youju)
    m.select("INBOX")
    qp, b64, latin1, encword, attach = 1, 2, 3, 4, 5
    assert search(m, "BODY", "grüsse") == []        # no decomposition or ß expansion
    assert search(m, "BODY", "GRÜßE") == [qp]
    assert search(m, "BODY", "softbroken") == [qp]  # a soft line break joins
    assert search(m, "BODY", "brûlée") == [b64]
    assert search(m, "BODY", "crème") == [b64, latin1]
    assert search(m, "BODY", "naïv") == [latin1]    # a piece of a word
    assert search(m, "BODY", "schöne") == []        # only in the header
    assert search(m, "TEXT", "schöne") == [encword]
    assert search(m, "BODY", "zanzibar") == [attach]
    assert search(m, "BODY", "quokka") == []        # not a text part
    assert search(m, "TEXT", "alice@example") == [1, 2, 3, 4, 5]
    # The per-recipient prefix of delivered copies is searched too.
    assert search(m, "TEXT", "delivered-to: alice") == [qp, b64, latin1]
    assert search(m, "BODY", "é") == [b64, latin1]  # short: scanned
    m.logout()


def test_expunge_copy_and_append(youju):
    m = imap(youju)
    m.create("Archive")
    append(m, "INBOX", [msg(b"one", b"The zebracorn grazes.\r\n"),
                        msg(b"two", b"Nothing here.\r\n")])
    wait_indexed(youju)
    m.select("INBOX")
    assert search(m, "BODY", "zebracorn") == [1]
    typ, _ = m.uid("COPY", "1", "Archive")
    assert typ == "OK"
    m.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
    m.expunge()
    assert search(m, "BODY", "zebracorn") == []
    m.select("Archive")
    assert search(m, "BODY", "ebraco") == [1]       # the copy keeps the blob's text
    m.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
    m.expunge()
    assert search(m, "BODY", "zebracorn") == []
    gone = db_rows(youju, "SELECT count(*) FROM search_fts WHERE search_fts MATCH '\"ZEBRACORN\"'")
    if gone is not None:
        assert gone == [(0,)]
        assert db_rows(youju, "SELECT count(*) FROM search_text") == [(1,)]
    append(m, "Archive", [msg(b"three", b"A new zebracorn.\r\n")])
    assert search(m, "BODY", "zebracorn") == [2]
    m.logout()


def test_reindex_after_fts_off(youju):
    youju.restart(imap_fts="no")
    messages = corpus()[:40] + OWN
    deliver(youju, messages)
    rows = db_rows(youju, "SELECT (SELECT count(*) FROM search_text),"
                          " (SELECT count(*) FROM search_pending)")
    if rows is not None:
        assert rows == [(0, 0)]
    needles = NEEDLES + corpus_needles(messages, 20, seed=3)
    scanned = all_searches(youju, needles=needles)
    youju.stop()
    out = youju.cli("store", "reindex").stdout
    assert f"indexed {len(messages)} messages" in out, out
    assert "indexed 0 messages" in youju.cli("store", "reindex").stdout
    youju.start(imap_fts="yes")
    assert all_searches(youju, needles=needles) == scanned
    rows = db_rows(youju, "SELECT count(*) FROM search_text WHERE body IS NOT NULL")
    if rows is not None:
        assert rows == [(len(messages),)]


@pytest.mark.parametrize("needle", ["(", "\"\"", "a\"b", "*", "NEAR", "AND", "{body}", "% _"])
def test_query_syntax_is_text(youju, needle):
    """Characters with a meaning to FTS5 or LIKE are only text."""
    m = imap(youju)
    append(m, "INBOX", [msg(b"syntax", b"x NEAR y AND {body} a\"b % _ (*) \"\"\r\n"),
                        msg(b"other", b"plain\r\n")])
    m.select("INBOX")
    assert search(m, "BODY", needle) == [1]
    m.logout()
