"""IMAP behaviour an independent compliance suite checks, each with the
exact responses the RFCs give (our own messages and checks): \\Recent of
APPENDed and copied messages (RFC 3501), LSUB "%" above a subscribed
name, FROM/TO/CC/BCC against the envelope's addresses, HIGHESTMODSEQ when
a MODSEQ use turns CONDSTORE on (RFC 7162), ESEARCH MIN/MAX MODSEQ (RFC
4731), BINARY[] (RFC 3516), RECURSIVEMATCH's CHILDINFO (RFC 5258),
subscriptions that outlive their mailbox (RFC 3501 6.3.9), and a FETCH of
a message another session expunged, not yet announced (RFC 2180 4.1)."""

from test_imap_ext import Client, ok
from test_postgresql import pg_cluster, pg_dsn  # noqa: F401 (fixtures)


def session(y):
    c = Client(y.ports["imap"])
    c.login()
    return c


def append(c, tag, mailbox, msg, extra=b""):
    """APPEND with a synchronising literal; the response lines."""
    c.send(tag + b" APPEND " + mailbox + extra + b" {%d}\r\n" % len(msg))
    assert c.line().startswith(b"+ ")
    c.send(msg + b"\r\n")
    return ok(c.until(tag), tag)


NOTE = b"From: Carol <carol@example.net>\r\nSubject: note %d\r\n\r\nline %d\r\n"


# ---- \Recent: APPEND sets it "in either case" (RFC 3501 6.3.11) ----

def test_appended_messages_are_recent_to_the_next_session(youju):
    c = session(youju)
    ok(c.cmd(b"a", b"CREATE Box"), b"a")
    for n in (1, 2):
        append(c, b"b%d" % n, b"Box", NOTE % (n, n))
    # EXAMINE shows them recent without taking them (RFC 3501 6.3.2)
    lines = ok(c.cmd(b"c", b"EXAMINE Box"), b"c")
    assert b"* 2 EXISTS" in lines and b"* 2 RECENT" in lines, lines
    ok(c.cmd(b"d", b"CLOSE"), b"d")
    assert ok(c.cmd(b"e", b"STATUS Box (RECENT)"), b"e")[0] == b'* STATUS "Box" (RECENT 2)'
    lines = ok(c.cmd(b"f", b"SELECT Box"), b"f")
    assert b"* 2 RECENT" in lines, lines
    lines = ok(c.cmd(b"g", b"FETCH 1:2 (FLAGS)"), b"g")
    assert lines[:2] == [b"* 1 FETCH (FLAGS (\\Recent))", b"* 2 FETCH (FLAGS (\\Recent))"]
    assert ok(c.cmd(b"h", b"SEARCH RECENT"), b"h")[0] == b"* SEARCH 1 2"
    # taken: the next SELECT has none
    other = session(youju)
    lines = ok(other.cmd(b"a", b"SELECT Box"), b"a")
    assert b"* 0 RECENT" in lines, lines


def test_a_copy_is_recent_to_the_session_that_has_the_target(youju):
    """RFC 3501 6.4.7: the Recent flag SHOULD be set in the copy."""
    a = session(youju)
    ok(a.cmd(b"a", b"CREATE Target"), b"a")
    append(a, b"b", b"INBOX", NOTE % (1, 1), b" (\\Seen)")
    watcher = session(youju)
    ok(watcher.cmd(b"a", b"SELECT Target"), b"a")
    ok(a.cmd(b"c", b"SELECT INBOX"), b"c")
    ok(a.cmd(b"d", b"COPY 1 Target"), b"d")
    lines = ok(watcher.cmd(b"b", b"NOOP"), b"b")
    assert lines[:2] == [b"* 1 EXISTS", b"* 1 RECENT"], lines
    lines = ok(watcher.cmd(b"c", b"FETCH 1 (FLAGS)"), b"c")
    assert lines[0] == b"* 1 FETCH (FLAGS (\\Seen \\Recent))", lines


# ---- LSUB "%" and a subscribed mailbox below an unsubscribed one ----

def test_lsub_percent_lists_the_unsubscribed_level_as_noselect(youju):
    """RFC 3501 6.3.9: with only "foo/bar" subscribed, LSUB "%" returns
    "foo" flagged \\Noselect, not "foo/bar"."""
    c = session(youju)
    for name in (b"Proj", b"Proj/Plans", b"Proj/Plans/Q1", b"Misc", b"Misc/Old/Keep"):
        ok(c.cmd(b"a", b"CREATE " + name), b"a")
    for name in (b"Proj/Plans/Q1", b"Misc", b"Misc/Old/Keep"):
        ok(c.cmd(b"b", b"SUBSCRIBE " + name), b"b")
    lines = ok(c.cmd(b"c", b'LSUB "" "Proj/%"'), b"c")
    assert lines == [b'* LSUB (\\Noselect) "/" "Proj/Plans"', b"c OK LSUB completed"], lines
    lines = ok(c.cmd(b"d", b'LSUB "" %'), b"d")
    assert b'* LSUB (\\Noselect) "/" "Proj"' in lines and b'* LSUB () "/" "Misc"' in lines
    assert not [x for x in lines if b"Proj/" in x or b"Misc/" in x], lines
    # a subscribed level is listed as itself; "*" reaches the mailboxes
    lines = ok(c.cmd(b"e", b'LSUB "" "Misc/%"'), b"e")
    assert lines[:-1] == [b'* LSUB (\\Noselect) "/" "Misc/Old"'], lines
    lines = ok(c.cmd(b"f", b'LSUB "" "Proj*"'), b"f")
    assert lines[:-1] == [b'* LSUB () "/" "Proj/Plans/Q1"'], lines
    # LIST is unchanged by subscriptions
    lines = ok(c.cmd(b"g", b'LIST "" "Proj/%"'), b"g")
    assert lines[:-1] == [b'* LIST (\\HasChildren) "/" "Proj/Plans"'], lines


# ---- FROM/TO/CC/BCC search the envelope's addresses (RFC 3501 6.4.4) ----

def test_address_keys_match_the_address_without_comments(youju):
    c = session(youju)
    ok(c.cmd(b"a", b"CREATE Addr"), b"a")
    heads = (b"From: <dave (desk 4)@ (main office) shop.example>\r\nTo: <@relay.example:eve@shop.example>\r\n",
             b'From: "Dave Q" <dave@shop.example>\r\nCc: team: eve@shop.example, fred@shop.example;\r\n',
             b"From: dave@shop.example (Dave Q)\r\nBcc: Other <olga@else.example>\r\n")
    for n, head in enumerate(heads, 1):
        append(c, b"b%d" % n, b"Addr", head + b"Subject: a%d\r\n\r\nx\r\n" % n)
    ok(c.cmd(b"c", b"EXAMINE Addr"), b"c")
    expect = ((b"FROM dave@shop.example", b"1 2 3"), (b"FROM DAVE@SHOP", b"1 2 3"),
              (b'FROM "dave q"', b"2 3"), (b"FROM office", b"1"),
              (b"TO eve@shop.example", b"1"), (b"CC eve@shop.example", b"2"),
              (b"CC team", b"2"), (b"BCC olga@else", b"3"), (b"TO olga", b""),
              (b"OR CC fred@shop.example BCC other", b"2 3"))
    for n, (key, seqs) in enumerate(expect):
        tag = b"s%d" % n
        lines = ok(c.cmd(tag, b"SEARCH " + key), tag)
        assert lines[0] == (b"* SEARCH " + seqs).rstrip(), (key, lines)


# ---- CONDSTORE: enabled by a MODSEQ use while selected (RFC 7162 3.1) ----

def test_first_modseq_fetch_tells_highestmodseq(youju):
    c = session(youju)
    for n in (1, 2):
        append(c, b"a%d" % n, b"INBOX", NOTE % (n, n))
    lines = ok(c.cmd(b"b", b"SELECT INBOX"), b"b")
    highest = [x for x in lines if x.startswith(b"* OK [HIGHESTMODSEQ ")][0]
    lines = ok(c.cmd(b"c", b"FETCH 2 (MODSEQ)"), b"c")
    assert lines[0] == highest, lines
    assert lines[1].startswith(b"* 2 FETCH (MODSEQ ("), lines
    # once on, it is not said again; STORE's FETCH now carries MODSEQ
    lines = ok(c.cmd(b"d", b"FETCH 1 (MODSEQ)"), b"d")
    assert len(lines) == 2 and lines[0].startswith(b"* 1 FETCH (MODSEQ ("), lines
    lines = ok(c.cmd(b"e", b"STORE 1 +FLAGS (\\Answered)"), b"e")
    assert lines[0].startswith(b"* 1 FETCH (FLAGS (\\Answered \\Recent) MODSEQ ("), lines


def test_search_modseq_key_enables_condstore_with_highestmodseq(youju):
    c = session(youju)
    append(c, b"a", b"INBOX", NOTE % (1, 1))
    ok(c.cmd(b"b", b"SELECT INBOX"), b"b")
    lines = ok(c.cmd(b"c", b"SEARCH MODSEQ 1"), b"c")
    assert lines[0].startswith(b"* OK [HIGHESTMODSEQ "), lines
    assert lines[1].startswith(b"* SEARCH 1 (MODSEQ "), lines


# ---- ESEARCH MIN/MAX with MODSEQ: the modseq of those (RFC 4731 3.2) ----

def modseq_of(c, tag, seq):
    line = ok(c.cmd(tag, b"FETCH %d (MODSEQ)" % seq), tag)[-2]
    return int(line.split(b"MODSEQ (")[1].split(b")")[0])


def test_esearch_min_max_modseq_is_of_the_messages_returned(youju):
    c = session(youju)
    for n in (1, 2, 3):
        append(c, b"a%d" % n, b"INBOX", NOTE % (n, n))
    ok(c.cmd(b"e", b"ENABLE CONDSTORE"), b"e")
    ok(c.cmd(b"b", b"SELECT INBOX"), b"b")
    # changed in the order 3, 1, 2: message 2 has the highest MODSEQ
    for n in (3, 1, 2):
        ok(c.cmd(b"s%d" % n, b"STORE %d +FLAGS (\\Flagged)" % n), b"s%d" % n)
    m1, m2, m3 = (modseq_of(c, b"m%d" % n, n) for n in (1, 2, 3))
    assert m3 < m1 < m2
    cases = ((b"MIN", b"MIN 1 MODSEQ %d" % m1), (b"MAX", b"MAX 3 MODSEQ %d" % m3),
             (b"MIN MAX", b"MIN 1 MAX 3 MODSEQ %d" % m1),
             (b"COUNT", b"COUNT 3 MODSEQ %d" % m2), (b"ALL", b"ALL 1:3 MODSEQ %d" % m2))
    for n, (ret, result) in enumerate(cases):
        tag = b"r%d" % n
        lines = ok(c.cmd(tag, b"SEARCH RETURN (" + ret + b") MODSEQ 1"), tag)
        assert lines[0] == b'* ESEARCH (TAG "' + tag + b'") ' + result, lines
    lines = ok(c.cmd(b"u", b"UID SEARCH RETURN (MAX) 1:2 MODSEQ 1"), b"u")
    assert lines[0].endswith(b" MODSEQ %d" % m2), lines


# ---- BINARY[]: the whole message, as BODY[] (RFC 3516 4.1, RFC 9051 6.4.5) ----

def literal_of(line, item):
    """The literal after item in a one-item FETCH line ('* n FETCH (ITEM {k}...')."""
    head, _, rest = line.partition(item + b" {")
    size, _, data = rest.partition(b"}\r\n")
    return data[:int(size)]


def fetch_literal(c, tag, text):
    """Sends a FETCH whose response ends in one literal: (the line up to
    the literal, its bytes, the rest of the response), after the OK."""
    c.send(tag + b" " + text + b"\r\n")
    first = c.line()
    size = int(first[first.rindex(b"{") + 1:-1])
    while len(c.buf) < size + 2:
        c._fill()
    data, c.buf = c.buf[:size], c.buf[size:]
    rest = c.line()
    ok(c.until(tag), tag)
    return first, data, rest


def fetch_raw(c, tag, text):
    """Sends a FETCH and returns its untagged response with its literal."""
    first, data, rest = fetch_literal(c, tag, text)
    return first + b"\r\n" + data + rest


def test_binary_empty_section_is_the_whole_message(youju):
    c = session(youju)
    mixed = (b"From: Gil <gil@example.net>\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
             b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\nintro\r\n--b1\r\n'
             b"Content-Type: text/plain\r\n\r\nfirst\r\n--b1--\r\n")
    head = (b"From: Gil <gil@example.net>\r\nSubject: coded\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n")
    append(c, b"a", b"INBOX", mixed)
    append(c, b"b", b"INBOX", head + b"aGVsbG8NCg==\r\n")
    ok(c.cmd(b"c", b"SELECT INBOX"), b"c")
    line = fetch_raw(c, b"d", b"FETCH 1 (BINARY.PEEK[])")
    assert literal_of(line, b"BINARY[]") == mixed, line
    assert ok(c.cmd(b"e", b"FETCH 1 (BINARY.SIZE[])"), b"e")[0] == \
        b"* 1 FETCH (BINARY.SIZE[] %d)" % len(mixed)
    # a single part's body is decoded after the header as it is
    line = fetch_raw(c, b"f", b"FETCH 2 (BINARY.PEEK[])")
    assert literal_of(line, b"BINARY[]") == head + b"hello\r\n", line
    assert ok(c.cmd(b"g", b"FETCH 2 (BINARY.SIZE[])"), b"g")[0] == \
        b"* 2 FETCH (BINARY.SIZE[] %d)" % (len(head) + 7)
    # a part number still names the part alone
    line = fetch_raw(c, b"h", b"FETCH 1 (BINARY.PEEK[1])")
    assert literal_of(line, b"BINARY[1]") == b"first", line


# ---- RECURSIVEMATCH: CHILDINFO for children the patterns do not list ----

def test_childinfo_only_for_subscribed_children_not_listed(youju):
    c = session(youju)
    for name in (b"Trip", b"Trip/Day1", b"Trip/Day2"):
        ok(c.cmd(b"a", b"CREATE " + name), b"a")
    ok(c.cmd(b"b", b"SUBSCRIBE Trip/Day1"), b"b")
    childinfo = b'* LIST (\\HasChildren) "/" "Trip" ("CHILDINFO" ("SUBSCRIBED"))'
    lines = ok(c.cmd(b"c", b'LIST (SUBSCRIBED RECURSIVEMATCH) "" "Trip"'), b"c")
    assert lines[:-1] == [childinfo], lines
    # the subscribed child is listed itself: its parent is not
    lines = ok(c.cmd(b"d", b'LIST (SUBSCRIBED RECURSIVEMATCH) "" ("Trip" "Trip/Day1")'), b"d")
    assert lines[:-1] == [b'* LIST (\\HasNoChildren \\Subscribed) "/" "Trip/Day1"'], lines
    lines = ok(c.cmd(b"e", b'LIST (SUBSCRIBED RECURSIVEMATCH) "" "Trip*"'), b"e")
    assert lines[:-1] == [b'* LIST (\\HasNoChildren \\Subscribed) "/" "Trip/Day1"'], lines
    # a child not listed keeps the CHILDINFO
    lines = ok(c.cmd(b"f", b'LIST (SUBSCRIBED RECURSIVEMATCH) "" ("Trip" "Trip/Day2")'), b"f")
    assert lines[:-1] == [childinfo], lines


# ---- a deleted mailbox stays subscribed by name (RFC 3501 6.3.9) ----

def test_deleted_mailbox_stays_subscribed(youju):
    c = session(youju)
    for name in (b"Old", b"Old2/Sub"):
        ok(c.cmd(b"a", b"CREATE " + name), b"a")
        ok(c.cmd(b"b", b"SUBSCRIBE " + name), b"b")
        ok(c.cmd(b"c", b"DELETE " + name), b"c")
    lines = ok(c.cmd(b"d", b'LIST (SUBSCRIBED) "" "Old*"'), b"d")
    assert lines[:-1] == [b'* LIST (\\Subscribed \\NonExistent) "/" "Old"',
                          b'* LIST (\\Subscribed \\NonExistent) "/" "Old2/Sub"'], lines
    lines = ok(c.cmd(b"e", b'LSUB "" "Old*"'), b"e")
    assert lines[:-1] == [b'* LSUB () "/" "Old"', b'* LSUB () "/" "Old2/Sub"'], lines
    lines = ok(c.cmd(b"f", b'LSUB "" "Old%"'), b"f")
    assert lines[:-1] == [b'* LSUB () "/" "Old"', b'* LSUB (\\Noselect) "/" "Old2"'], lines
    # a plain LIST has no such names (CREATE made "Old2", DELETE left it)
    lines = ok(c.cmd(b"g", b'LIST "" "Old*"'), b"g")
    assert lines[:-1] == [b'* LIST (\\HasNoChildren) "/" "Old2"'], lines
    # made again, the mailbox is subscribed
    ok(c.cmd(b"h", b"CREATE Old"), b"h")
    lines = ok(c.cmd(b"i", b'LIST "" "Old" RETURN (SUBSCRIBED)'), b"i")
    assert lines[:-1] == [b'* LIST (\\HasNoChildren \\Subscribed) "/" "Old"'], lines
    # UNSUBSCRIBE forgets a name without a mailbox; then there is none
    ok(c.cmd(b"j", b"UNSUBSCRIBE Old2/Sub"), b"j")
    assert c.cmd(b"k", b"UNSUBSCRIBE Old2/Sub")[-1].startswith(b"k NO [NONEXISTENT]")
    lines = ok(c.cmd(b"l", b'LSUB "" "Old*"'), b"l")
    assert lines[:-1] == [b'* LSUB () "/" "Old"'], lines


# ---- a message expunged by another session, not yet announced (RFC 2180 4.1) ----

def test_fetch_of_an_unannounced_expunge_answers_the_view(youju):
    a, b = session(youju), session(youju)
    for i in (1, 2):
        append(a, b"a%d" % i, b"INBOX", NOTE % (i, i))
    ok(a.cmd(b"b", b"ENABLE CONDSTORE"), b"b")
    ok(a.cmd(b"c", b"SELECT INBOX"), b"c")
    ok(b.cmd(b"a", b"SELECT INBOX"), b"a")
    ok(b.cmd(b"b", b"STORE 1 +FLAGS.SILENT (\\Deleted)"), b"b")
    ok(b.cmd(b"c", b"EXPUNGE"), b"c")
    # a still numbers it 1 and has not heard of the \\Deleted: what a's
    # view holds is answered...
    lines = ok(a.cmd(b"d", b"FETCH 1 (UID FLAGS)"), b"d")[:-1]
    assert lines == [b"* 1 FETCH (UID 1 FLAGS (\\Recent))"], lines
    lines = ok(a.cmd(b"e", b"FETCH 1 (FLAGS MODSEQ)"), b"e")[:-1]
    assert len(lines) == 1 and lines[0].startswith(b"* 1 FETCH (FLAGS (\\Recent) MODSEQ ("), lines
    # ...its contents are gone: nothing is said of them.
    lines = ok(a.cmd(b"f", b"FETCH 1:2 (UID RFC822.SIZE)"), b"f")[:-1]
    assert len(lines) == 1 and lines[0].startswith(b"* 2 FETCH (UID 2 RFC822.SIZE "), lines
    # The expunge is told at the next command that may.
    assert ok(a.cmd(b"g", b"NOOP"), b"g")[0] == b"* 1 EXPUNGE"


# ---- BINARY[spec]: every section spec BODY[] takes (RFC 3516, liberal) ----

LAYERS = (b"From: Ines <ines@example.org>\r\nSubject: layers\r\nMIME-Version: 1.0\r\n"
          b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
          b"--outer\r\nContent-Type: text/plain; charset=utf-8\r\n"
          b"Content-Transfer-Encoding: quoted-printable\r\n\r\ngr=C3=BC=C3=9F dich\r\n"
          b"--outer\r\nContent-Type: message/rfc822\r\n\r\n"
          b"From: Jon <jon@example.org>\r\nSubject: inner\r\nContent-Type: text/plain\r\n"
          b"Content-Transfer-Encoding: base64\r\n\r\naW5uZXIgd29yZHM=\r\n"
          b"--outer\r\nContent-Type: message/rfc822\r\n\r\n"
          b'Subject: nested parts\r\nContent-Type: multipart/alternative; boundary="in"\r\n\r\n'
          b"--in\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
          b"c2hvdWxkIHN0YXk=\r\n--in--\r\n"
          b"--outer--\r\n")
SINGLE = b"From: Kim <kim@example.org>\r\nSubject: %s\r\nContent-Transfer-Encoding: %s\r\n\r\n%s\r\n"


def fetch_item(c, tag, text):
    """One FETCH of one string item: (item name, '{' or '~{', bytes)."""
    first, data, rest = fetch_literal(c, tag, text)
    assert rest == b")"
    head = first[:first.rindex(b"{")]
    kind = b"~{" if head.endswith(b"~") else b"{"
    name = head.rstrip(b"~").split(b" (", 1)[1].rstrip(b" ")
    return name, kind, data


def binary_session(y):
    c = session(y)
    append(c, b"a1", b"INBOX", LAYERS)
    append(c, b"a2", b"INBOX", SINGLE % (b"nul", b"base64", b"b25lAHR3bw=="))
    append(c, b"a3", b"INBOX", SINGLE % (b"odd", b"x-rot13", b"bar"))
    append(c, b"a4", b"INBOX", SINGLE % (b"qp", b"Quoted-Printable", b"soft=\r\nbreak =3D ok"))
    ok(c.cmd(b"s", b"SELECT INBOX"), b"s")
    return c


def test_binary_header_sections_are_body_sections(youju):
    c = binary_session(youju)
    top = LAYERS[:LAYERS.index(b"\r\n\r\n") + 4]
    for spec, want in ((b"HEADER", top),
                       (b"1.MIME", b"Content-Type: text/plain; charset=utf-8\r\n"
                                   b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"),
                       (b"2.HEADER.FIELDS (Subject)", b"Subject: inner\r\n\r\n"),
                       (b"2.HEADER.FIELDS.NOT (From Content-Type)",
                        b"Subject: inner\r\nContent-Transfer-Encoding: base64\r\n\r\n"),
                       (b"HEADER.FIELDS (from)", b"From: Ines <ines@example.org>\r\n\r\n")):
        assert fetch_item(c, b"b", b"FETCH 1 (BINARY.PEEK[" + spec + b"])") == \
            (b"BINARY[" + spec + b"]", b"{", want)
        assert fetch_item(c, b"c", b"FETCH 1 (BODY.PEEK[" + spec + b"])")[2] == want
        assert ok(c.cmd(b"d", b"FETCH 1 (BINARY.SIZE[" + spec + b"])"), b"d")[0] == \
            b"* 1 FETCH (BINARY.SIZE[" + spec + b"] %d)" % len(want)
    # a header is never decoded: the unknown encoding does not matter
    assert fetch_item(c, b"e", b"FETCH 3 (BINARY.PEEK[HEADER.FIELDS (Subject)])")[2] == \
        b"Subject: odd\r\n\r\n"
    # MIME still needs a part number, as in BODY[]
    assert c.cmd(b"f", b"FETCH 1 (BINARY[MIME])")[-1].startswith(b"f BAD ")


def test_binary_text_is_decoded_when_the_body_is_one_part(youju):
    c = binary_session(youju)
    assert fetch_item(c, b"b", b"FETCH 1 (BINARY.PEEK[2.TEXT])") == \
        (b"BINARY[2.TEXT]", b"{", b"inner words")
    assert ok(c.cmd(b"c", b"FETCH 1 (BINARY.SIZE[2.TEXT])"), b"c")[0] == \
        b"* 1 FETCH (BINARY.SIZE[2.TEXT] 11)"
    assert fetch_item(c, b"d", b"FETCH 1 (BINARY.PEEK[2.TEXT]<6.50>)") == \
        (b"BINARY[2.TEXT]<6>", b"{", b"words")
    # a multipart body is given as it is, as BODY[] gives it
    for spec in (b"TEXT", b"3.TEXT"):
        raw = fetch_item(c, b"e", b"FETCH 1 (BODY.PEEK[" + spec + b"])")[2]
        assert fetch_item(c, b"f", b"FETCH 1 (BINARY.PEEK[" + spec + b"])") == \
            (b"BINARY[" + spec + b"]", b"{", raw)
        assert ok(c.cmd(b"g", b"FETCH 1 (BINARY.SIZE[" + spec + b"])"), b"g")[0] == \
            b"* 1 FETCH (BINARY.SIZE[" + spec + b"] %d)" % len(raw)
    assert b"c2hvdWxkIHN0YXk=" in raw
    # a top-level single part: base64 with a NUL comes as a literal8
    assert fetch_item(c, b"h", b"FETCH 2 (BINARY.PEEK[TEXT])") == \
        (b"BINARY[TEXT]", b"~{", b"one\x00two")
    assert fetch_item(c, b"i", b"FETCH 4 (BINARY.PEEK[TEXT])") == \
        (b"BINARY[TEXT]", b"{", b"softbreak = ok\r\n")
    assert ok(c.cmd(b"j", b"FETCH 4 (BINARY.SIZE[TEXT])"), b"j")[0] == \
        b"* 4 FETCH (BINARY.SIZE[TEXT] 16)"
    # the part-number forms answer as before
    assert fetch_item(c, b"k", b"FETCH 1 (BINARY.PEEK[1])")[2] == "grüß dich".encode()
    assert fetch_item(c, b"l", b"FETCH 1 (BINARY.PEEK[2.1])")[2] == b"inner words"


def test_binary_text_of_an_unknown_encoding_is_no_unknown_cte(youju):
    c = binary_session(youju)
    for item in (b"BINARY.PEEK[TEXT]", b"BINARY.SIZE[TEXT]"):
        lines = c.cmd(b"b", b"FETCH 3 (" + item + b")")
        assert lines[-1].startswith(b"b NO [UNKNOWN-CTE] "), lines
    assert fetch_item(c, b"c", b"FETCH 3 (BODY.PEEK[TEXT])")[2] == b"bar\r\n"


def test_binary_sections_set_seen_and_peek_does_not(youju):
    c = binary_session(youju)
    for n in (1, 2):
        fetch_item(c, b"b", b"FETCH %d (BINARY.PEEK[HEADER])" % n)
        fetch_item(c, b"c", b"FETCH %d (BINARY.PEEK[TEXT])" % n)
        ok(c.cmd(b"d", b"FETCH %d (BINARY.SIZE[TEXT])" % n), b"d")
    assert ok(c.cmd(b"e", b"FETCH 1:2 (FLAGS)"), b"e")[:2] == \
        [b"* 1 FETCH (FLAGS (\\Recent))", b"* 2 FETCH (FLAGS (\\Recent))"]
    c.send(b"f FETCH 1 (BINARY[1.MIME])\r\n")
    lines = c.until(b"f")
    ok(lines, b"f")
    c.send(b"g FETCH 2 (BINARY[TEXT]<0.3>)\r\n")
    lines = c.until(b"g")
    ok(lines, b"g")
    assert ok(c.cmd(b"h", b"FETCH 1:2 (FLAGS)"), b"h")[:2] == \
        [b"* 1 FETCH (FLAGS (\\Seen \\Recent))", b"* 2 FETCH (FLAGS (\\Seen \\Recent))"]
