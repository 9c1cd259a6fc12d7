"""Hostile-client probes of youjud's IMAP APPEND path: large literals
held in an unlinked file in the data dir as they come (pipelined
commands right behind them, literal8 with NULs, MULTIAPPEND mixing held
and small literals, clients that leave at every point, many sessions
spooling at once against queue_minfree), and the early answer that
refuses an APPEND in place of its "+" (tricky mailbox names, literals
that are not the message, states where it must not run, the quota's
edge, untagged responses of a selected mailbox)."""

import os
import re
import socket
import time

import pytest

from conftest import PASSWORD, USER
from test_faults import small_disk
from test_imap import Raw, make_msg
from test_imap_scale import literal_fetch, login, spool_files

BIG = 300 * 1024		# over the size from which a literal is spooled


def big_msg(subject, size=BIG):
    return make_msg(subject, body=(b"x" * 76 + b"\r\n") * (size // 78 + 1))


def open_fds(y):
    """youjud's files but its store's (a pool of connections that grows
    with the load and is kept), and its IMAP connections in any state but
    LISTEN: what a session that ended must not leave."""
    n = 0
    d = f"/proc/{y.proc.pid}/fd"
    for fd in os.listdir(d):
        try:
            target = os.readlink(os.path.join(d, fd))
        except OSError:
            continue
        n += target.startswith("/") and "youju.db" not in target
    port = "%04X" % y.ports["imap"]
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{y.proc.pid}/net/{table}") as f:
            for row in f.readlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                n += local.endswith(":" + port) and state != "0A"
    return n


def gone(r):
    """Leaves, and waits for youjud to have ended the session."""
    r.s.shutdown(socket.SHUT_WR)
    while r.s.recv(65536):
        pass
    r.s.close()


def wait_for(pred, timeout=20):
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.05)
    return pred()


def test_pipelined_commands_right_behind_a_spooled_append(youju):
    """LITERAL+: the APPEND, its 300 KiB and three more commands in one
    write; each is answered in order and the spool file is gone."""
    msg = big_msg("pipelined")
    r = login(youju)
    r.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg +
           b"\r\nb NOOP\r\nc APPEND INBOX {5+}\r\nhello\r\nd STATUS INBOX (MESSAGES)\r\n")
    assert r.until(b"a")[-1].startswith(b"a OK [APPENDUID ")
    assert r.until(b"b")[-1].startswith(b"b OK")
    assert r.until(b"c")[-1].startswith(b"c OK [APPENDUID ")
    lines = r.until(b"d")
    assert lines[0] == b"* STATUS INBOX (MESSAGES 2)", lines
    assert spool_files(youju) == []
    r.cmd(b"e", b"EXAMINE INBOX")
    data, lines = literal_fetch(r, b"f", b"FETCH 1 (BODY.PEEK[])")
    assert data == msg


@pytest.mark.parametrize("size", [1000, BIG])
def test_literal8_with_nuls_same_held_in_memory_or_a_file(youju, size):
    """A literal8 message with NULs (RFC 3516 4.4) is stored byte for
    byte whether it was held in memory or spooled."""
    body = (b"bin\x00ary\r\n" * (size // 9 + 1))
    msg = make_msg("binary", body=body)
    r = login(youju)
    r.send(b"a APPEND INBOX ~{%d}\r\n" % len(msg))
    assert r.line().startswith(b"+ ")
    r.send(msg + b"\r\n")
    ok = r.until(b"a")[-1]
    assert ok.startswith(b"a OK [APPENDUID "), ok
    r.cmd(b"c", b"EXAMINE INBOX")
    data, lines = literal_fetch(r, b"d", b"FETCH 1 (BINARY.PEEK[])")
    assert lines[-1].startswith(b"d OK"), lines
    assert data == msg
    assert spool_files(youju) == []


def test_plain_literal_with_a_nul_answered_alike_in_memory_and_spooled(youju):
    answers = []
    for size in (1000, BIG):
        msg = make_msg("nul", body=b"a\x00b\r\n" * (size // 5 + 1))
        r = login(youju)
        r.send(b"a APPEND INBOX {%d}\r\n" % len(msg))
        assert r.line().startswith(b"+ ")
        r.send(msg + b"\r\n")
        answers.append(r.until(b"a")[-1].split(b"[")[0])
        r.s.close()
    assert answers[0] == answers[1], answers


def test_multiappend_small_spooled_small_all_sync(youju):
    small = make_msg("s1", body=b"one\r\n")
    big = big_msg("b2")
    small2 = make_msg("s3", body=b"three\r\n")
    r = login(youju)
    r.send(b"a APPEND INBOX {%d}\r\n" % len(small))
    assert r.line().startswith(b"+ ")
    r.send(small + b" (\\Flagged) {%d}\r\n" % len(big))
    assert r.line().startswith(b"+ ")
    r.send(big + b" ~{%d}\r\n" % len(small2))
    assert r.line().startswith(b"+ ")
    r.send(small2 + b"\r\n")
    assert r.until(b"a")[-1].startswith(b"a OK [APPENDUID ")
    r.cmd(b"b", b"EXAMINE INBOX")
    for seq, m in ((1, small), (2, big), (3, small2)):
        data, lines = literal_fetch(r, b"c", b"FETCH %d (BODY.PEEK[])" % seq)
        assert data == m
    assert spool_files(youju) == []


def test_no_file_or_descriptor_left_by_a_client_leaving_at_any_point(youju):
    msg = big_msg("leaver")
    r0 = login(youju)
    base = open_fds(youju)
    cuts = [
        b"a APPEND INBOX {%d}\r\n" % len(msg),		# after "+"
        b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg[:1000],
        b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg,	# before the CRLF
        b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b" {%d+}\r\n" % len(msg),
        b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b" {5+}\r\nab",
        b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b" {99999999999}\r\n",
        b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b" (\\Seen",
        b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\nb NOOP\r\n",
    ]
    for cut in cuts:
        r = login(youju)
        r.send(cut)
        time.sleep(0.2)
        r.s.close()
    assert wait_for(lambda: spool_files(youju) == []), spool_files(youju)
    assert wait_for(lambda: open_fds(youju) <= base), (open_fds(youju), base)
    assert r0.cmd(b"z", b"NOOP")[-1].startswith(b"z OK")
    assert [f for f in os.listdir(youju.data_dir) if "spool" in f] == []


def test_early_answer_keeps_untagged_responses_of_the_selected_mailbox(youju):
    r = login(youju)
    for i in range(3):
        r.send(b"a APPEND INBOX {5}\r\n")
        assert r.line().startswith(b"+ ")
        r.send(b"hello\r\n")
        r.until(b"a")
    r.cmd(b"s", b"SELECT INBOX")
    q = login(youju)
    q.cmd(b"s", b"SELECT INBOX")
    q.cmd(b"t", b"STORE 2 +FLAGS (\\Deleted)")
    q.cmd(b"u", b"EXPUNGE")
    q.send(b"v APPEND INBOX {5}\r\n")
    q.line()
    q.send(b"hello\r\n")
    q.until(b"v")
    r.send(b"x APPEND Nowhere {50}\r\n")
    lines = r.until(b"x")
    print(lines)
    assert lines[-1] == b"x NO [TRYCREATE] No such mailbox"
    assert b"* 2 EXPUNGE" in lines and b"* 3 EXISTS" in lines, lines
    assert r.cmd(b"y", b"NOOP")[-1].startswith(b"y OK")


def test_early_answer_tricked_by_names_and_literals(youju):
    r = login(youju)
    r.cmd(b"c", b'CREATE "br{3}ace"')
    # a quoted name that holds an announcement
    r.send(b'a APPEND "No{5}where" {10}\r\n')
    assert r.line() == b"a NO [TRYCREATE] No such mailbox"
    r.send(b'b APPEND "br{3}ace" {10}\r\n')
    assert r.line().startswith(b"+ ")
    r.send(b"0123456789\r\n")
    assert r.until(b"b")[-1].startswith(b"b OK [APPENDUID ")
    # the name a literal that holds braces
    r.send(b"d APPEND {6}\r\n")
    assert r.line().startswith(b"+ ")
    r.send(b"br{3}a (\\Seen) {10}\r\n")
    assert r.line() == b"d NO [TRYCREATE] No such mailbox"
    r.send(b"e APPEND {8}\r\n")
    assert r.line().startswith(b"+ ")
    r.send(b"br{3}ace {10}\r\n")
    assert r.line().startswith(b"+ ")
    r.send(b"0123456789\r\n")
    assert r.until(b"e")[-1].startswith(b"e OK [APPENDUID ")
    # an unfinished quoted string ending in an announcement
    r.send(b'f APPEND "Nowhere {3}\r\n')
    line = r.line()
    if line.startswith(b"+"):
        r.send(b'abc"\r\n')
        line = r.until(b"f")[-1]
    assert line.startswith(b"f BAD") or line.startswith(b"f NO"), line
    # UTF8 (~{n}): not the early path's business, but answered right
    r.send(b"g APPEND Nowhere UTF8 (~{10}\r\n")
    line = r.line()
    if line.startswith(b"+"):
        r.send(b"0123456789)\r\n")
        line = r.until(b"g")[-1]
    assert line.startswith(b"g NO [TRYCREATE]") or line.startswith(b"g BAD"), line
    assert r.cmd(b"h", b"NOOP")[-1].startswith(b"h OK")


def test_no_early_answer_before_login(youju):
    r = Raw(youju.ports["imap"])
    r.line()
    r.send(b"a APPEND Nowhere {10}\r\n")
    line = r.line()
    if line.startswith(b"+"):
        r.send(b"0123456789\r\n")
        line = r.until(b"a")[-1]
    assert line.startswith(b"a BAD") or line.startswith(b"a NO"), line
    assert b"TRYCREATE" not in line


def test_early_quota_check_at_the_exact_edge(youju):
    youju.cli("account", "quota", USER, "50000")
    r = login(youju)
    r.send(b"a APPEND INBOX {50000}\r\n")
    assert r.line().startswith(b"+ ")
    r.send(b"S" * 50000 + b"\r\n")
    assert r.until(b"a")[-1].startswith(b"a OK [APPENDUID ")
    r.send(b"b APPEND INBOX {1}\r\n")
    assert r.line() == b"b NO [OVERQUOTA] Quota exceeded"


def test_queue_minfree_counts_what_other_sessions_have_announced(youju_factory):
    """queue_minfree is checked at an APPEND literal's announcement, when
    none of its bytes are on disk yet: many sessions announcing at once
    must not each count the same free space. Two 8 MB literals with 12 MB
    above queue_minfree: the second is refused before its "+", and is
    taken once the first session has left."""
    y = youju_factory()
    with small_disk(y, size="64m"):
        y.init()
        y.add_account(USER, PASSWORD)
        y.start(wait=("imap",), message_size_limit="20m")
        st = os.statvfs(y.data_dir)
        free = st.f_bavail * st.f_frsize
        y.restart(wait=("imap",), queue_minfree=str(free - 12 * 1000 * 1000))
        a, b = login(y), login(y)
        a.send(b"a APPEND INBOX {8000000}\r\n")
        assert a.line().startswith(b"+ ")
        b.send(b"b APPEND INBOX {8000000}\r\n")
        line = b.line()
        assert line.startswith(b"b NO [UNAVAILABLE]"), line
        # smaller ones are counted too, held in memory or not
        b.send(b"c APPEND INBOX {%d}\r\n" % (200 * 1000))
        assert b.line().startswith(b"+ ")
        b.send(b"d" * (200 * 1000) + b"\r\n")
        assert b.until(b"c")[-1].startswith(b"c OK [APPENDUID ")
        a.s.close()
        assert wait_for(lambda: spool_files(y) == [])
        b.send(b"e APPEND INBOX {8000000}\r\n")
        line = b.line()
        assert line.startswith(b"+ "), line
        b.send(b"e" * 8000000 + b"\r\n")
        assert b.until(b"e")[-1].startswith(b"e OK [APPENDUID ")


def test_sigkill_inside_a_spooled_literal_leaves_nothing(youju):
    msg = big_msg("killed", size=2 << 20)
    r = login(youju)
    r.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg[:1 << 20])
    assert wait_for(lambda: spool_files(youju) != [])
    before = set(os.listdir(youju.data_dir))
    youju.kill()
    r.s.close()
    assert set(os.listdir(youju.data_dir)) <= before
    assert [f for f in before if "spool" in f] == []
    youju.start(wait=("imap",))
    r = login(youju)
    assert r.cmd(b"b", b"STATUS INBOX (MESSAGES)")[0] == b"* STATUS INBOX (MESSAGES 0)"
    r.send(b"c APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    assert r.until(b"c")[-1].startswith(b"c OK [APPENDUID ")


def test_many_sessions_spooling_at_once(youju):
    """Twelve sessions each send a 1 MB APPEND in slices, interleaved:
    every message is stored exactly once, no file or descriptor stays."""
    base = open_fds(youju)
    msgs = [big_msg("many-%02d" % i, size=1 << 20) for i in range(12)]
    sessions = [login(youju) for _ in msgs]
    for i, (r, m) in enumerate(zip(sessions, msgs)):
        r.send(b"a%d APPEND INBOX {%d+}\r\n" % (i, len(m)))
    step = 64 * 1024
    for off in range(0, len(msgs[0]) + step, step):
        for r, m in zip(sessions, msgs):
            if off < len(m):
                r.send(m[off:off + step])
    assert wait_for(lambda: len(spool_files(youju)) == len(msgs)), spool_files(youju)
    for i, (r, m) in enumerate(zip(sessions, msgs)):
        r.send(b"\r\n")
        assert r.until(b"a%d" % i)[-1].startswith(b"a%d OK [APPENDUID " % i)
    assert spool_files(youju) == []
    r = sessions[0]
    r.cmd(b"x", b"EXAMINE INBOX")
    subjects = r.cmd(b"y", b"FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert len([s for s in subjects if s.startswith(b"Subject: many-")]) == len(msgs) \
        or len(subjects) > len(msgs)
    for i, m in enumerate(msgs):
        data, _ = literal_fetch(r, b"z", b"FETCH %d (BODY.PEEK[])" % (i + 1))
        assert data in msgs
    for r in sessions:
        r.s.close()
    assert wait_for(lambda: open_fds(youju) <= base), (open_fds(youju), base)


def test_spool_without_an_inode_refused_before_the_literal(youju_factory):
    y = youju_factory()
    with small_disk(y, size="64m", inodes=4000):
        y.init()
        y.add_account(USER, PASSWORD)
        y.start(wait=("imap",))
        r = login(y)
        from test_faults import use_all_inodes
        made = use_all_inodes(y)
        r.send(b"a APPEND INBOX {%d}\r\n" % BIG)
        line = r.line()
        assert line == b"a NO [UNAVAILABLE] Cannot hold the message now", line
        r.send(b"b APPEND INBOX {%d+}\r\n" % BIG + b"b" * BIG + b"\r\n")
        assert r.until(b"b")[-1] == b"b NO [UNAVAILABLE] Cannot hold the message now"
        assert r.cmd(b"c", b"NOOP")[-1].startswith(b"c OK")
        for p in made:
            os.unlink(p)
        msg = big_msg("inode-again")
        r.send(b"d APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        assert r.until(b"d")[-1].startswith(b"d OK [APPENDUID ")


def test_idle_done_then_spooled_append_in_one_write(youju):
    msg = big_msg("after-idle")
    r = login(youju)
    r.cmd(b"s", b"SELECT INBOX")
    r.send(b"i IDLE\r\n")
    assert r.line().startswith(b"+ ")
    r.send(b"DONE\r\na APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\nb NOOP\r\n")
    assert r.until(b"i")[-1].startswith(b"i OK")
    assert r.until(b"a")[-1].startswith(b"a OK [APPENDUID ")
    lines = r.until(b"b")
    assert b"* 1 EXISTS" in lines or lines[-1].startswith(b"b OK"), lines


def test_early_answer_under_compress(youju):
    from test_probe_imap3 import Z
    r = login(youju)
    r.send(b"z COMPRESS DEFLATE\r\n")
    assert r.until(b"z")[-1].startswith(b"z OK")
    z = Z(r.s)
    z.buf = r.buf
    z.s.settimeout(10)
    z.send(b"a APPEND Nowhere {%d}\r\n" % BIG)
    assert z.line() == b"a NO [TRYCREATE] No such mailbox"
    z.send(b"b APPEND INBOX {%d}\r\n" % BIG)
    assert z.line().startswith(b"+ ")
    z.send(b"\x00" * BIG + b"\r\n")
    assert z.until(b"b")[-1].startswith(b"b OK [APPENDUID ")


def test_client_that_does_not_wait_after_an_early_answer(youju):
    """A client that sends its literal without waiting for "+" (against
    RFC 9051 4.3) after an early NO: its bytes are read as commands; the
    session must go on answering, not hang."""
    r = login(youju)
    r.send(b"a APPEND Nowhere {12}\r\nb NOOP\r\nxy\r\nc NOOP\r\n")
    lines = r.until(b"c")
    print(lines)
    assert lines[0] == b"a NO [TRYCREATE] No such mailbox"
    assert lines[-1].startswith(b"c OK")


def test_early_answer_for_a_message_large_enough_to_be_spooled(youju_with):
    """The early answer is for large messages above all (a client should
    not send 20 MB to a mistyped mailbox): a literal that goes to a spool
    file is refused before its "+" too, and no file stays open."""
    y = youju_with(message_size_limit="30m")
    r = login(y)
    r.send(b"a APPEND Nowhere (\\Seen) {20000000}\r\n")
    assert r.line() == b"a NO [TRYCREATE] No such mailbox"
    assert spool_files(y) == []
    r.send(b"b APPEND {7}\r\n")
    assert r.line().startswith(b"+ ")
    r.send(b"Nowhere ~{%d}\r\n" % BIG)
    assert r.line() == b"b NO [TRYCREATE] No such mailbox"
    y.cli("account", "quota", USER, "1000000")
    r.send(b"c APPEND INBOX {2000000}\r\n")
    assert r.line() == b"c NO [OVERQUOTA] Quota exceeded"
    assert spool_files(y) == []
    msg = big_msg("spooled-fits")
    r.send(b"d APPEND INBOX {%d}\r\n" % len(msg))
    assert r.line().startswith(b"+ ")
    r.send(msg + b"\r\n")
    assert r.until(b"d")[-1].startswith(b"d OK [APPENDUID ")
    assert spool_files(y) == []
    r.cmd(b"e", b"EXAMINE INBOX")
    data, _ = literal_fetch(r, b"f", b"FETCH 1 (BODY.PEEK[])")
    assert data == msg


def test_no_free_space_stays_promised_after_any_end_of_an_append(youju_factory):
    """What an APPEND literal was promised of queue_minfree's headroom
    is given back however the command ends: stored, refused early, too
    big, a MULTIAPPEND over its limit or the quota, the client gone
    inside it. With room for one 7 MB literal, one still fits after
    each of them."""
    y = youju_factory()
    with small_disk(y, size="64m"):
        y.init()
        y.add_account(USER, PASSWORD)
        y.start(wait=("imap",), message_size_limit="20m")
        st = os.statvfs(y.data_dir)
        free = st.f_bavail * st.f_frsize
        # 12 MB above queue_minfree, 5 of them left for the database
        y.restart(wait=("imap",), message_size_limit="8m",
                  queue_minfree=str(free - 12 * 1000 * 1000))
        n = 7 * 1000 * 1000

        def fits():
            r = login(y)
            r.send(b"f APPEND INBOX {%d}\r\n" % n)
            line = r.line()
            gone(r)
            return line.startswith(b"+ ")

        def wait_fits():
            assert wait_for(fits, timeout=10), "free space left promised"
        wait_fits()
        r = login(y)
        msg = big_msg("promised", size=BIG)
        # stored, in memory and spooled
        for size in (1000, BIG):
            m = big_msg("p", size=size)
            r.send(b"a APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
            assert r.until(b"a")[-1].startswith(b"a OK")
        wait_fits()
        # refused early, and too big
        r.send(b"b APPEND Nowhere {%d}\r\n" % n)
        assert r.line().startswith(b"b NO [TRYCREATE]")
        r.send(b"c APPEND INBOX {%d}\r\n" % (9 << 20))
        assert r.line().startswith(b"c NO [TOOBIG]")
        # a MULTIAPPEND whose second literal is too big, or far too big
        r.send(b"d APPEND INBOX {%d+}\r\n" % len(msg) + msg + b" {%d}\r\n" % (9 << 20))
        assert r.until(b"d")[-1].startswith(b"d NO [TOOBIG]")
        r.send(b"e APPEND INBOX {%d+}\r\n" % len(msg) + msg + b" {%d+}\r\n" % (9 << 20))
        assert r.until(b"e")[-1].startswith(b"e BAD")
        r.s.close()
        r = login(y)
        wait_fits()
        # stored after the refused, in a MULTIAPPEND over the quota
        y.cli("account", "quota", USER, str(2 * BIG))
        r.send(b"g APPEND INBOX {%d+}\r\n" % len(msg) + msg + b" {%d}\r\n" % len(msg))
        assert r.line().startswith(b"+ ")
        r.send(msg + b"\r\n")
        assert r.until(b"g")[-1].startswith(b"g NO [OVERQUOTA]")
        y.cli("account", "quota", USER, "none")
        wait_fits()
        # clients gone at every point
        for cut in (b"h APPEND INBOX {%d}\r\n" % n,
                    b"h APPEND INBOX {%d+}\r\n" % n + b"x" * 100000,
                    b"h APPEND INBOX {%d+}\r\n" % len(msg) + msg,
                    b"h APPEND INBOX {%d+}\r\n" % len(msg) + msg + b" {%d}\r\n" % n):
            q = login(y)
            q.send(cut)
            time.sleep(0.2)
            gone(q)
        wait_fits()
        r = login(y)
        r.send(b"m APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        assert r.until(b"m")[-1].startswith(b"m OK [APPENDUID ")


NAMES = [b"Nowhere", b"INBOX", b"inbox", b'"par"', b'"par/child"', b'"par/"',
         b'"Nowhere/child"', b'""', b'"&AKM-"', b'"INBOX/sub"', b'"a\\\\b"',
         b'"/par"', b'"par//child"', b'"Trash"']


def final_answer(lines, tag):
    last = lines[-1]
    return re.sub(rb"\[APPENDUID [^\]]*\]", b"[APPENDUID]", last[len(tag) + 1:])


@pytest.mark.parametrize("name", NAMES)
def test_early_answer_same_as_after_the_literal(youju, name):
    """Whatever the name, the answer in place of "+" is the one the
    whole command gets (with LITERAL+, answered after its bytes)."""
    r = login(youju)
    r.cmd(b"c", b'CREATE "par/child"')
    msg = make_msg("same", body=b"same\r\n")
    r.send(b"a APPEND %s {%d+}\r\n" % (name, len(msg)) + msg + b"\r\n")
    whole = final_answer(r.until(b"a"), b"a")
    r.send(b"b APPEND %s {%d}\r\n" % (name, len(msg)))
    line = r.line()
    if line.startswith(b"+"):
        r.send(msg + b"\r\n")
        lines = r.until(b"b")
    else:
        lines = [line]
    early = final_answer(lines, b"b")
    assert early == whole, (name, early, whole)


def test_early_answer_right_after_idle_and_not_for_other_commands(youju):
    r = login(youju)
    r.cmd(b"s", b"SELECT INBOX")
    r.send(b"i IDLE\r\n")
    assert r.line().startswith(b"+ ")
    r.send(b"DONE\r\na APPEND Nowhere {%d}\r\n" % BIG)
    assert r.until(b"i")[-1].startswith(b"i OK")
    assert r.line() == b"a NO [TRYCREATE] No such mailbox"
    # a literal of another command is asked for, whatever it names
    r.send(b"b STATUS {7}\r\n")
    assert r.line().startswith(b"+ ")
    r.send(b"Nowhere (MESSAGES)\r\n")
    assert r.until(b"b")[-1].startswith(b"b NO")
    r.send(b"c CREATE {7}\r\n")
    assert r.line().startswith(b"+ ")
    r.send(b"Nowhere\r\n")
    assert r.until(b"c")[-1].startswith(b"c OK")
    r.send(b"d APPEND Nowhere {5}\r\n")
    assert r.line().startswith(b"+ ")
    r.send(b"hello\r\n")
    assert r.until(b"d")[-1].startswith(b"d OK [APPENDUID ")


def test_multiappend_of_many_small_literals_is_held_on_disk(youju):
    """No literal of this MULTIAPPEND reaches the spool size, but 120 of
    200 KB each make 24 MB: a client that stalls inside the last one (or
    sends them as a few KB of deflate) must cost the server disk, not
    24 MB of memory; then every message is stored."""
    from test_imap_scale import status_kib
    part = make_msg("small-part", body=(b"s" * 76 + b"\r\n") * 2600)
    assert len(part) < 256 * 1024
    r = login(youju)
    pid = youju.proc.pid
    before = status_kib(pid, "VmRSS")
    out = b"a APPEND INBOX"
    for _ in range(120):
        out += b" {%d+}\r\n" % len(part) + part
    r.send(out + b" {%d+}\r\n" % len(part) + part[:1000])
    assert wait_for(lambda: len(spool_files(youju)) == 1), "not held in a file"
    time.sleep(0.5)
    grown = status_kib(pid, "VmRSS") - before
    assert grown < 8 * 1024, f"{grown} KiB held for a stalled 24 MB MULTIAPPEND"
    r.send(part[1000:] + b"\r\n")
    assert r.until(b"a")[-1].startswith(b"a OK [APPENDUID ")
    assert spool_files(youju) == []
    assert r.cmd(b"b", b"STATUS INBOX (MESSAGES)")[0] == b"* STATUS INBOX (MESSAGES 121)"
