"""youjud's IMAP answers against a reference server's (Debian's
dovecot-imapd), recorded by tests/tools/imap-reference.py: FETCH of the
body sections of every corpus message (tests/data/imap-sections/) and a
conversation of IMAP commands (tests/data/imap-conversation/). The
reference server is not needed here; deliberate differences are listed,
with the RFC text that decides them, in the README next to each."""

import difflib
import os
import sys

from conftest import PASSWORD, USER

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import imapxc  # noqa: E402

TESTDATA = os.environ.get("YOUJU_TESTDATA",
                          os.path.join(HERE, "..", "..", "..", "shared", "testdata"))
SECTIONS = os.path.join(HERE, "..", "data", "imap-sections")


def login(y):
    c = imapxc.Client(y.ports["imap"])
    c.ok(b"LOGIN %s %s" % (USER.encode(), PASSWORD.encode()))
    return c


REASONS = ("boundary-crlf", "header-cut", "header-no-blank-line", "binary-nested",
           "binary-size", "binary-decoded", "invalid-cte")


def differences():
    """{(file, request): answer} youjud gives instead of the reference's,
    from the differences file (file TAB request TAB answer TAB reason
    per line; the reasons are explained in the README there)."""
    out = {}
    with open(os.path.join(SECTIONS, "differences"), "rb") as f:
        for line in f:
            if line.startswith(b"#") or not line.strip():
                continue
            name, req, ans, why = line.rstrip(b"\n").split(b"\t")
            assert why.decode() in REASONS, line
            out[(name.decode(), req)] = ans.decode()
    return out


def dump(bad):
    """With YOUJU_XCHECK_DUMP=FILE, every difference is written there."""
    path = os.environ.get("YOUJU_XCHECK_DUMP")
    if path:
        with open(path, "w") as f:
            f.write("\n".join(bad) + "\n")


def test_fetch_sections_as_reference(youju):
    msgs = imapxc.corpus(TESTDATA)
    assert len(msgs) >= 150
    expect = differences()
    c = login(youju)
    for rel in msgs:
        with open(os.path.join(TESTDATA, rel), "rb") as f:
            c.ok(b"APPEND INBOX", imapxc.canonical(f.read()))
    c.ok(b"EXAMINE INBOX")
    bad, used, n = [], set(), 0
    for seq, rel in enumerate(msgs, 1):
        name = imapxc.data_name(rel)
        for req, want in imapxc.read_records(os.path.join(SECTIONS, name)):
            if (name, req) in expect:
                want = expect[(name, req)]
                used.add((name, req))
            elif want == "(connection closed)":
                continue
            got = imapxc.fetch_answer(c, seq, req)
            n += 1
            if got != want:
                bad.append("%s %s\n    got:  %s\n    want: %s" % (name, req.decode(), got, want))
    c.close()
    dump(bad)
    assert n > 4500
    assert not bad, "%d of %d answers differ:\n%s" % (len(bad), n, "\n".join(bad[:40]))
    assert used == set(expect), "unused differences: %s" % sorted(set(expect) - used)


CONVERSATION = os.path.join(HERE, "..", "data", "imap-conversation")


def conversation_expected():
    """youju.txt where youjud deliberately answers otherwise (each place
    explained in the README there), else the reference's transcript."""
    for name in ("youju.txt", "reference.txt"):
        path = os.path.join(CONVERSATION, name)
        if os.path.exists(path):
            with open(path) as f:
                return f.read().splitlines()
    raise FileNotFoundError(CONVERSATION)


def test_conversation_as_reference(youju):
    sessions = {1: login(youju), 2: login(youju)}
    script = imapxc.read_script(os.path.join(HERE, "..", "tools", "imap-conversation.txt"))
    got = imapxc.converse(sessions, script, TESTDATA)
    for c in sessions.values():
        c.close()
    path = os.environ.get("YOUJU_XCHECK_DUMP")
    if path:
        with open(path + ".conversation", "w") as f:
            f.write("\n".join(got) + "\n")
    want = conversation_expected()
    diff = list(difflib.unified_diff(want, got, "expected", "youjud", lineterm="", n=2))
    assert not diff, "\n".join(diff[:200])


SUMMARY_FETCH = (b"FETCH 1:* (ENVELOPE BODY BODYSTRUCTURE"
                 b" BODY.PEEK[HEADER.FIELDS (From To Cc Subject Received)])")
SUMMARY_SEARCHES = (b'SEARCH FROM "a"', b'SEARCH TO "example"', b'SEARCH SUBJECT "re"',
                    b'SEARCH HEADER Received "by"', b'SEARCH NOT CC ""')


def summary_answers(y):
    """Every message's summaries and header fields, fetched twice, and
    the header searches, as one youjud answers them."""
    c = login(y)
    for rel in imapxc.corpus(TESTDATA):
        with open(os.path.join(TESTDATA, rel), "rb") as f:
            c.ok(b"APPEND INBOX", imapxc.canonical(f.read()))
    c.ok(b"EXAMINE INBOX")
    answers = [c.ok(SUMMARY_FETCH), c.ok(SUMMARY_FETCH)]
    answers += [c.ok(s) for s in SUMMARY_SEARCHES]
    c.close()
    return answers


def test_summary_cache_changes_no_answer(youju_factory):
    """youjud's summary cache (imap_summary_cache) keeps summaries read
    once: answers from it, from a cache too small to keep them all, and
    from none are the same, byte for byte."""
    runs = {}
    for size in ("32m", "256k", "0"):
        y = youju_factory()
        y.init()
        y.add_account(USER, PASSWORD)
        y.start(imap_summary_cache=size)
        runs[size] = summary_answers(y)
        y.stop()
    first, again = runs["0"][0], runs["0"][1]
    assert len(first) >= 150 and first == again
    assert runs["32m"] == runs["0"]
    assert runs["256k"] == runs["0"]
    # Each search finds some messages and leaves others out.
    assert all(3 < len(a[0].split()) < len(first) + 2 for a in runs["0"][2:])
