"""INTERNALDATE keeps the zone APPEND gave it: FETCH shows the date-time in
that zone and SEARCH BEFORE/ON/SINCE compare its day there (RFC 3501 6.4.4,
RFC 9051 6.4.4: "disregarding time and timezone"). COPY, MOVE and
`youju store copy` keep the zone; delivered mail and an APPEND without a
date-time are in UTC. Exact responses over a raw socket."""

import os
import re

import pytest

from conftest import PASSWORD, USER
from test_imap import deliver, make_msg
from test_imap_search import login, search
from test_postgresql import pg_cluster, pg_dsn  # noqa: F401 (fixtures)

# The same few moments written in different zones. Around a midnight, so
# that the day depends on the zone.
APPENDS = [
    (b"first", b"24-Mar-2007 23:00:00 +0200"),    # 21:00 UTC, the 24th
    (b"second", b"25-Mar-2007 01:30:00 +0300"),   # 22:30 UTC, the 24th
    (b"third", b"24-Mar-2007 19:45:00 -0430"),    # 00:15 UTC, the 25th
    (b"fourth", b"25-Mar-2007 00:15:00 +0000"),   # 00:15 UTC, the 25th
]


def append_all(r, mailbox=b"INBOX"):
    for subject, date in APPENDS:
        r.append(mailbox, make_msg(subject.decode()), date)


def internaldates(r, what=b"1:*"):
    lines = r.ok(b"FETCH " + what + b" (INTERNALDATE)")
    return [l for l in lines if l.startswith(b"* ")]


AS_GIVEN = [
    b'* 1 FETCH (INTERNALDATE "24-Mar-2007 23:00:00 +0200")',
    b'* 2 FETCH (INTERNALDATE "25-Mar-2007 01:30:00 +0300")',
    b'* 3 FETCH (INTERNALDATE "24-Mar-2007 19:45:00 -0430")',
    b'* 4 FETCH (INTERNALDATE "25-Mar-2007 00:15:00 +0000")',
]


def test_fetch_and_search_in_the_appended_zone(youju):
    r = login(youju)
    append_all(r)
    r.ok(b"SELECT INBOX")
    assert internaldates(r) == AS_GIVEN
    # Each message's day as it reads in its own zone: 24, 25, 24, 25.
    assert search(r, b"ON 24-Mar-2007") == [b"1", b"3"]
    assert search(r, b"ON 25-Mar-2007") == [b"2", b"4"]
    assert search(r, b"BEFORE 25-Mar-2007") == [b"1", b"3"]
    assert search(r, b"SINCE 25-Mar-2007") == [b"2", b"4"]
    assert search(r, b"BEFORE 24-Mar-2007") == []
    assert search(r, b"SINCE 26-Mar-2007") == []
    assert r.one(b"UID SEARCH ON 25-Mar-2007", b"* SEARCH") == b"* SEARCH 2 4"
    # ARRIVAL orders by the moment, whatever the zone: 1 (21:00 UTC),
    # 2 (22:30), then 3 and 4 (both 00:15: in mailbox order, RFC 5256,
    # also under REVERSE).
    assert r.one(b"SORT (ARRIVAL) UTF-8 ALL", b"* SORT") == b"* SORT 1 2 3 4"
    assert r.one(b"SORT (REVERSE ARRIVAL) UTF-8 ALL", b"* SORT") == b"* SORT 3 4 2 1"
    r.ok(b"LOGOUT")


def test_copy_and_move_keep_the_zone(youju):
    r = login(youju)
    append_all(r)
    r.ok(b"CREATE Kept")
    r.ok(b"CREATE Moved")
    r.ok(b"SELECT INBOX")
    r.ok(b"COPY 1:2 Kept")
    r.ok(b"MOVE 3:4 Moved")
    r.ok(b"SELECT Kept")
    assert internaldates(r) == AS_GIVEN[:2]
    assert search(r, b"ON 24-Mar-2007") == [b"1"]
    r.ok(b"SELECT Moved")
    assert internaldates(r) == [
        b'* 1 FETCH (INTERNALDATE "24-Mar-2007 19:45:00 -0430")',
        b'* 2 FETCH (INTERNALDATE "25-Mar-2007 00:15:00 +0000")',
    ]
    assert search(r, b"ON 24-Mar-2007") == [b"1"]
    assert search(r, b"SINCE 25-Mar-2007") == [b"2"]
    r.ok(b"LOGOUT")


UTC_DATE = re.compile(rb'^\* 1 FETCH \(INTERNALDATE "[ 0-9]\d-[A-Z][a-z]{2}-\d{4} '
                      rb'\d\d:\d\d:\d\d \+0000"\)$')


def test_delivered_and_dateless_mail_is_in_utc(youju):
    deliver(youju, make_msg("delivered"))
    r = login(youju)
    r.ok(b"CREATE Plain")
    lines, tagged = r.cmd(b"APPEND Plain {%d+}\r\n" % len(make_msg("plain"))
                          + make_msg("plain"))
    assert tagged.startswith(b"OK"), tagged
    for box in (b"INBOX", b"Plain"):
        r.ok(b"SELECT " + box)
        dates = internaldates(r)
        assert len(dates) == 1 and UTC_DATE.match(dates[0]), dates
    r.ok(b"LOGOUT")


def test_zone_survives_store_copy(youju_factory, pg_dsn):  # noqa: F811
    y = youju_factory()
    y.init()
    if getattr(y, "pg_dsn", None) is not None:
        pytest.skip("copies from a SQLite store")
    y.add_account(USER, PASSWORD)
    y.start()
    r = login(y)
    append_all(r)
    r.ok(b"LOGOUT")
    y.stop()
    y.cli("store", "copy", "--to", pg_dsn)
    with open(os.path.join(y.data_dir, "youju.conf"), "a") as f:
        f.write(f"store_driver = postgresql\nstore_dsn = {pg_dsn}\n")
    y.start()
    r = login(y)
    r.ok(b"SELECT INBOX")
    assert internaldates(r) == AS_GIVEN
    assert search(r, b"ON 24-Mar-2007") == [b"1", b"3"]
    r.ok(b"LOGOUT")
