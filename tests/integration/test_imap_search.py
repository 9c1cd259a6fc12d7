"""IMAP SEARCH with every key, SEARCHRES (RFC 5182), SORT (RFC 5256, 5957)
and THREAD (RFC 5256) against a real youjud: exact untagged responses
over a raw socket, messages put in with APPEND (set internal dates)."""

import base64
import socket

from conftest import PASSWORD, USER


class Raw:
    """IMAP over a bare socket: exact bytes out, lines back."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""
        self.n = 0

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError(self.buf)
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def send(self, data):
        self.s.sendall(data)

    def until(self, tag):
        """The lines up to and with the one tagged tag."""
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def cmd(self, text):
        """Runs a command; returns (untagged lines, tagged line)."""
        self.n += 1
        tag = b"t%d" % self.n
        self.send(tag + b" " + text + b"\r\n")
        lines = self.until(tag)
        return lines[:-1], lines[-1][len(tag) + 1:]

    def ok(self, text):
        lines, tagged = self.cmd(text)
        assert tagged.startswith(b"OK"), (text, tagged)
        return lines

    def one(self, text, prefix):
        """The one untagged response starting with prefix."""
        found = [l for l in self.ok(text) if l.startswith(prefix)]
        assert len(found) == 1, (text, found)
        return found[0]

    def append(self, mailbox, msg, date, flags=b""):
        self.n += 1
        tag = b"t%d" % self.n
        self.s.sendall(tag + b" APPEND " + mailbox + b" (" + flags + b") \"" + date + b"\" {%d+}\r\n" % len(msg)
                       + msg + b"\r\n")
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                assert b" OK" in line, line
                return


def login(y):
    r = Raw(y.ports["imap"])
    r.line()
    r.ok(b"LOGIN " + USER.encode() + b" " + PASSWORD.encode())
    return r


def msg(subject=None, frm=b"a@example.org", to=b"b@example.org", date=None, extra=b"",
        body=b"Hello.\r\n", msgid=None):
    h = b"From: " + frm + b"\r\nTo: " + to + b"\r\n"
    if subject is not None:
        h += b"Subject: " + subject + b"\r\n"
    if date is not None:
        h += b"Date: " + date + b"\r\n"
    if msgid is not None:
        h += b"Message-ID: " + msgid + b"\r\n"
    return h + extra + b"\r\n" + body


def search(r, text):
    line = r.one(b"SEARCH " + text, b"* SEARCH")
    return line[len(b"* SEARCH"):].split()


# ---- SEARCH keys ----

QP_LATIN1 = (b"Content-Type: text/plain; charset=ISO-8859-1\r\n"
             b"Content-Transfer-Encoding: quoted-printable\r\n")
MULTI = (b"MIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=XX\r\n")
MULTI_BODY = (b"--XX\r\nContent-Type: text/plain; charset=UTF-8\r\n"
              b"Content-Transfer-Encoding: base64\r\n\r\n"
              + base64.b64encode("Привет мир, ΣΟΦΙΑ".encode()) + b"\r\n"
              b"--XX\r\nContent-Type: application/octet-stream\r\n"
              b"Content-Transfer-Encoding: base64\r\n\r\n"
              + base64.b64encode(b"secretword") + b"\r\n--XX--\r\n")


def search_keys_setup(r):
    m1 = msg(b"Quarterly report", frm=b"Alice <alice@example.org>", to=b"bob@example.org",
             date=b"Sat, 1 Feb 2020 23:30:00 -0800",
             extra=b"Cc: carol@example.org\r\nBcc: dave@example.org\r\nX-Custom: yes\r\n",
             body=b"the budget is fine\r\n")
    m2 = msg(b"=?ISO-8859-1?Q?caf=E9_cr=E8me?=", date=b"3 Feb 2020 10:00:00 +0000",
             extra=QP_LATIN1, body=b"Gr=FC=DFe aus K=F6ln, sch=F6n=\r\nes Wetter\r\n")
    m3 = msg(b"multipart", extra=MULTI, body=MULTI_BODY)
    r.append(b"INBOX", m1, b"10-Feb-2020 12:00:00 +0000", b"\\Answered")
    r.append(b"INBOX", m2, b"05-Mar-2020 12:00:00 +0000", b"\\Draft \\Deleted")
    r.append(b"INBOX", m3, b"01-Apr-2020 12:00:00 +0000", b"\\Flagged \\Seen $Label1")
    r.ok(b"SELECT INBOX")
    return [len(m1), len(m2), len(m3)]


def test_every_search_key(youju):
    r = login(youju)
    sizes = search_keys_setup(r)
    cases = [
        (b"ALL", [1, 2, 3]),
        # APPENDed before this session selected INBOX: \\Recent here (RFC 3501 6.3.11)
        (b"OLD", []), (b"NEW", [1, 2]), (b"RECENT", [1, 2, 3]),
        (b"ANSWERED", [1]), (b"UNANSWERED", [2, 3]),
        (b"DELETED", [2]), (b"UNDELETED", [1, 3]),
        (b"DRAFT", [2]), (b"UNDRAFT", [1, 3]),
        (b"FLAGGED", [3]), (b"UNFLAGGED", [1, 2]),
        (b"SEEN", [3]), (b"UNSEEN", [1, 2]),
        (b"KEYWORD $Label1", [3]), (b"UNKEYWORD $Label1", [1, 2]),
        (b"KEYWORD $Unused", []), (b"UNKEYWORD $Unused", [1, 2, 3]),
        # internal date
        (b"ON 10-Feb-2020", [1]), (b"BEFORE 1-Mar-2020", [1]), (b"SINCE 5-Mar-2020", [2, 3]),
        # Date: as written, time and zone ignored (in UTC message 1 is 2 Feb)
        (b"SENTON 1-Feb-2020", [1]), (b"SENTBEFORE 2-Feb-2020", [1]),
        (b"SENTSINCE 2-Feb-2020", [2]), (b"SENTON \"3-Feb-2020\"", [2]),
        (b"FROM alice", [1]), (b"FROM ALICE@EXAMPLE", [1]), (b"TO bob", [1]),
        (b"CC carol", [1]), (b"BCC dave", [1]), (b"CC nobody", []),
        (b"HEADER X-Custom \"\"", [1]), (b"HEADER X-Missing \"\"", []),
        (b"HEADER x-custom YES", [1]),
        (b"SUBJECT report", [1]), (b"SUBJECT \"\"", [1, 2, 3]),
        (b"LARGER %d" % (min(sizes) - 1), [1, 2, 3]),
        (b"LARGER %d" % sizes[0], [i + 1 for i in range(3) if sizes[i] > sizes[0]]),
        (b"SMALLER %d" % sizes[0], [i + 1 for i in range(3) if sizes[i] < sizes[0]]),
        (b"BODY budget", [1]), (b"BODY quarterly", []), (b"TEXT quarterly", [1]),
        (b"TEXT x-custom", [1]),
        # attachments are not text: their bytes are not searched
        (b"BODY secretword", []), (b"TEXT c2VjcmV0d29yZA", []),
        # quoted-printable line joins are undone before matching
        (b"BODY \"schnes wetter\"", []), (b"BODY \"schones\"", []),
        (b"2:*", [2, 3]), (b"1,3", [1, 3]), (b"*", [3]),
        (b"UID 1:2", [1, 2]),
        (b"OR FROM alice FLAGGED", [1, 3]),
        (b"NOT (OR FROM alice FLAGGED)", [2]),
        (b"(SEEN FLAGGED) KEYWORD $Label1", [3]),
        (b"CHARSET US-ASCII FROM alice", [1]),
    ]
    for key, want in cases:
        assert search(r, key) == [b"%d" % n for n in want], key


def test_charset_search(youju):
    r = login(youju)
    search_keys_setup(r)
    utf8 = [
        # RFC 2047 subject in ISO-8859-1, matched in UTF-8 and case-folded
        ("café", [2]), ("CAFÉ CRÈME", [2]),
        # quoted-printable ISO-8859-1 body, converted to UTF-8
        ("grüße", [2]), ("KÖLN", [2]), ("schönes wetter", [2]),
        # base64 UTF-8 Cyrillic and Greek, folded both ways
        ("привет", [3]), ("МИР", [3]), ("σοφια", [3]),
    ]
    for text, want in utf8:
        b = text.encode()
        key = b"SUBJECT" if "caf" in text.lower() else b"BODY"
        got = search(r, b"CHARSET UTF-8 " + key + b" {%d+}\r\n" % len(b) + b)
        assert got == [b"%d" % n for n in want], text
        # a quoted 8-bit string works the same
        got = search(r, b"CHARSET UTF-8 " + key + b" \"" + b + b"\"")
        assert got == [b"%d" % n for n in want], text
    lines, tagged = r.cmd(b"SEARCH CHARSET KOI8-R BODY x")
    assert tagged == b"NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset"
    lines, tagged = r.cmd(b"SORT (DATE) ISO-8859-1 ALL")
    assert tagged.startswith(b"NO [BADCHARSET (UTF-8 US-ASCII)]")
    lines, tagged = r.cmd(b"THREAD REFERENCES X-UNKNOWN ALL")
    assert tagged.startswith(b"NO [BADCHARSET (UTF-8 US-ASCII)]")


def test_modseq_search(youju):
    r = login(youju)
    search_keys_setup(r)
    line = r.one(b"SEARCH MODSEQ 1", b"* SEARCH")
    assert line.startswith(b"* SEARCH 1 2 3 (MODSEQ ")
    r.ok(b"STORE 2 +FLAGS.SILENT (\\Seen)")
    line = r.one(b"FETCH 2 (MODSEQ)", b"* 2 FETCH")
    modseq = int(line.split(b"MODSEQ (")[1].split(b")")[0])
    assert search(r, b"MODSEQ %d" % modseq) == [b"2", b"(MODSEQ", b"%d)" % modseq]
    assert search(r, b"MODSEQ \"/flags/\\\\Seen\" all %d" % modseq)[0] == b"2"
    line = r.one(b"SEARCH RETURN (COUNT) MODSEQ %d" % modseq, b"* ESEARCH")
    assert line.endswith(b"COUNT 1 MODSEQ %d" % modseq)


# ---- SEARCHRES ----

def test_searchres(youju):
    r = login(youju)
    caps = r.one(b"CAPABILITY", b"* CAPABILITY")
    assert b" SEARCHRES" in caps
    r.ok(b"CREATE Other")
    for i in range(5):
        r.append(b"INBOX", msg(b"m%d" % (i + 1)), b"01-Jan-2021 00:00:00 +0000")
    r.ok(b"SELECT INBOX")
    r.ok(b"STORE 2,4 +FLAGS.SILENT (\\Flagged)")
    # SAVE alone: no ESEARCH response
    lines = r.ok(b"SEARCH RETURN (SAVE) FLAGGED")
    assert not [l for l in lines if l.startswith(b"* ESEARCH")]
    fetched = [l for l in r.ok(b"FETCH $ (UID)") if b"FETCH" in l]
    assert fetched == [b"* 2 FETCH (UID 2)", b"* 4 FETCH (UID 4)"]
    assert search(r, b"$") == [b"2", b"4"]
    assert search(r, b"NOT $") == [b"1", b"3", b"5"]
    assert r.one(b"UID SEARCH UID $", b"* SEARCH") == b"* SEARCH 2 4"
    r.ok(b"UID STORE $ +FLAGS.SILENT (\\Seen)")
    assert search(r, b"SEEN") == [b"2", b"4"]
    lines, tagged = r.cmd(b"COPY $ Other")
    assert tagged.startswith(b"OK [COPYUID ")
    # A saved message expunged leaves the set; the others are renumbered.
    r.ok(b"STORE 2 +FLAGS.SILENT (\\Deleted)")
    r.ok(b"EXPUNGE")
    assert search(r, b"$") == [b"3"]
    # SAVE with MIN/MAX keeps only those; ESEARCH still answers.
    line = r.one(b"SEARCH RETURN (SAVE MIN MAX) ALL", b"* ESEARCH")
    assert line.endswith(b"MIN 1 MAX 4")
    assert search(r, b"$") == [b"1", b"4"]
    r.ok(b"SEARCH RETURN (SAVE MIN) 2:4")
    assert search(r, b"$") == [b"2"]
    # A SAVE that fails empties $.
    lines, tagged = r.cmd(b"SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")
    assert tagged.startswith(b"NO [BADCHARSET")
    assert search(r, b"$") == []
    r.ok(b"SEARCH RETURN (SAVE) ALL")
    lines, tagged = r.cmd(b"SEARCH RETURN (SAVE) NOSUCHKEY")
    assert tagged.startswith(b"BAD")
    assert search(r, b"$") == []
    # SELECT forgets it.
    r.ok(b"SEARCH RETURN (SAVE) ALL")
    r.ok(b"SELECT INBOX")
    assert search(r, b"$") == []
    # $ in MOVE and in SORT/THREAD keys.
    r.ok(b"SEARCH RETURN (SAVE) 1:2")
    assert r.one(b"SORT (REVERSE SUBJECT) UTF-8 $", b"* SORT") == b"* SORT 2 1"
    assert r.one(b"THREAD ORDEREDSUBJECT UTF-8 $", b"* THREAD") == b"* THREAD (1)(2)"
    lines, tagged = r.cmd(b"MOVE $ Other")
    assert tagged.startswith(b"OK")
    assert search(r, b"ALL") == [b"1", b"2"]


# ---- SORT ----

def test_sort(youju):
    r = login(youju)
    msgs = [
        (msg(b"Re: beta", frm=b"Zed <zed@example.org>", to=b"amy@example.org",
             date=b"Thu, 2 Jan 2020 00:00:00 +0000", extra=b"Cc: c@example.org\r\n",
             body=b"x" * 300), b"05-Jan-2020 00:00:00 +0000"),
        (msg(b"alpha", frm=b"alice <bob@example.org>", to=b"Zoe <b@example.org>",
             date=b"1 Jan 2020 12:00:00 +0000", body=b"x" * 100), b"03-Jan-2020 00:00:00 +0000"),
        (msg(b"[list] Beta (fwd)", frm=b"=?UTF-8?Q?=C3=89mile?= <emile@example.org>",
             to=b"carl@example.org", body=b"x" * 500), b"04-Jan-2020 00:00:00 +0000"),
        (msg(b"Gamma", frm=b"mallory@example.org", to=b"Aaron <y@example.org>",
             date=b"3 Jan 2020 00:00:00 +0100", body=b"x" * 200), b"01-Jan-2020 00:00:00 +0000"),
    ]
    for m, date in msgs:
        r.append(b"INBOX", m, date)
    r.ok(b"SELECT INBOX")
    caps = r.one(b"CAPABILITY", b"* CAPABILITY")
    assert b" SORT " in caps and b" SORT=DISPLAY" in caps

    def sort(crit, keys=b"ALL", uid=b""):
        line = r.one(uid + b"SORT (" + crit + b") UTF-8 " + keys, b"* SORT")
        return line[len(b"* SORT"):].split()

    by_size = sorted(range(4), key=lambda i: (len(msgs[i][0]), i))
    cases = [
        (b"ARRIVAL", [4, 2, 3, 1]),
        (b"REVERSE ARRIVAL", [1, 3, 2, 4]),
        # message 3 has no Date: its internal date (4 Jan) stands in
        (b"DATE", [2, 1, 4, 3]),
        (b"SUBJECT", [2, 1, 3, 4]),
        (b"REVERSE SUBJECT", [4, 1, 3, 2]),
        (b"SUBJECT REVERSE DATE", [2, 3, 1, 4]),
        (b"FROM", [2, 3, 4, 1]),
        (b"DISPLAYFROM", [2, 4, 1, 3]),
        (b"TO", [1, 2, 3, 4]),
        (b"DISPLAYTO", [4, 1, 3, 2]),
        (b"CC", [2, 3, 4, 1]),
        (b"SIZE", [i + 1 for i in by_size]),
        (b"REVERSE SIZE", [i + 1 for i in reversed(by_size)]),
    ]
    for crit, want in cases:
        assert sort(crit) == [b"%d" % n for n in want], crit
    assert sort(b"ARRIVAL", b"SUBJECT beta") == [b"3", b"1"]
    assert sort(b"ARRIVAL", b"SUBJECT nothing") == []
    r.ok(b"STORE 2 +FLAGS.SILENT (\\Deleted)")
    r.ok(b"EXPUNGE")
    # UID SORT answers with UIDs
    assert sort(b"ARRIVAL", uid=b"UID ") == [b"4", b"3", b"1"]
    assert sort(b"ARRIVAL") == [b"3", b"2", b"1"]
    lines, tagged = r.cmd(b"SORT (FOO) UTF-8 ALL")
    assert tagged.startswith(b"BAD")
    lines, tagged = r.cmd(b"SORT DATE UTF-8 ALL")
    assert tagged.startswith(b"BAD")


def test_esort_and_partial(youju):
    """ESORT (RFC 5267 3.2) and PARTIAL (RFC 9394) with exact responses."""
    r = login(youju)
    caps = r.one(b"CAPABILITY", b"* CAPABILITY")
    assert b" ESORT" in caps and b" PARTIAL" in caps
    assert b"CONTEXT=" not in caps
    # subjects so that SUBJECT order is 4 2 5 1 3 (arrival 1..5)
    for subject in (b"delta", b"bravo", b"echo", b"alpha", b"charlie"):
        r.append(b"INBOX", msg(subject), b"01-Jan-2021 00:00:00 +0000")
    r.ok(b"SELECT INBOX")
    r.ok(b"STORE 3 +FLAGS.SILENT (\\Deleted)")
    assert r.one(b"SORT (SUBJECT) UTF-8 ALL", b"* SORT") == b"* SORT 4 2 5 1 3"

    def esearch(command):
        """The ESEARCH response of a command, after its correlator."""
        prefix = b'* ESEARCH (TAG "t%d")' % (r.n + 1)
        line = r.one(command, b"* ESEARCH")
        assert line.startswith(prefix), line
        return line[len(prefix):]

    cases = [
        # MIN and MAX are the first and the last in the sort order
        (b"SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL",
         b" MIN 4 MAX 3 COUNT 5 ALL 4,2,5,1,3"),
        (b"SORT RETURN () (REVERSE SUBJECT) UTF-8 UNDELETED", b" ALL 1,5,2,4"),
        (b"UID SORT RETURN (COUNT MIN) (ARRIVAL) UTF-8 UNDELETED", b" UID MIN 1 COUNT 4"),
        # consecutive runs in the sort order become ranges, never out of order
        (b"SORT RETURN (ALL) (ARRIVAL) UTF-8 ALL", b" ALL 1:5"),
        (b"SORT RETURN (COUNT) (SUBJECT) UTF-8 SUBJECT nothing", b" COUNT 0"),
        # PARTIAL: positions in the result, from its start or its end
        (b"SORT RETURN (PARTIAL 2:3) (SUBJECT) UTF-8 ALL", b" PARTIAL (2:3 2,5)"),
        (b"UID SORT RETURN (PARTIAL -1:-2 COUNT) (SUBJECT) UTF-8 ALL",
         b" UID COUNT 5 PARTIAL (-1:-2 1,3)"),
        (b"SEARCH RETURN (PARTIAL 1:2) UNDELETED", b" PARTIAL (1:2 1:2)"),
        (b"UID SEARCH RETURN (PARTIAL -3:-1 MIN) UNDELETED", b" UID MIN 1 PARTIAL (-3:-1 2,4:5)"),
        (b"SEARCH RETURN (PARTIAL 4:100) ALL", b" PARTIAL (4:100 4:5)"),
        (b"SEARCH RETURN (PARTIAL 6:10) ALL", b" PARTIAL (6:10 NIL)"),
    ]
    for command, want in cases:
        assert esearch(command) == want, command
    lines, tagged = r.cmd(b"SORT RETURN (SAVE) (SUBJECT) UTF-8 ALL")
    assert tagged == b"BAD SORT: Unknown RETURN option"
    lines, tagged = r.cmd(b"SEARCH RETURN (PARTIAL 1:2 ALL) ALL")
    assert tagged == b"BAD SEARCH: PARTIAL and ALL cannot be combined"
    # SAVE with PARTIAL keeps what PARTIAL returned
    r.ok(b"SEARCH RETURN (SAVE PARTIAL 2:3) ALL")
    assert search(r, b"$") == [b"2", b"3"]
    # CONDSTORE: the highest MODSEQ of what a MODSEQ search returns
    line = r.one(b"FETCH 3 (MODSEQ)", b"* 3 FETCH")
    modseq = int(line.split(b"MODSEQ (")[1].split(b")")[0])
    assert r.one(b"SORT (SUBJECT) UTF-8 MODSEQ %d" % modseq, b"* SORT") == \
        b"* SORT 3 (MODSEQ %d)" % modseq
    assert esearch(b"SORT RETURN (ALL) (SUBJECT) UTF-8 MODSEQ %d" % modseq) == \
        b" ALL 3 MODSEQ %d" % modseq


# ---- THREAD ----

def thread_set(r):
    t = [
        (b"Meeting", b"<1@x>", b""),
        (b"Re: Meeting", b"<2@x>", b"References: <1@x>\r\n"),
        (b"Re: Meeting", b"<3@x>", b"References: <1@x>\r\n <2@x>\r\n"),
        (b"Re: Meeting", b"<4@x>", b"In-Reply-To: <1@x> (Alice's message)\r\n"),
        (b"Lunch", b"<5@x>", b""),
        (b"Re: Lunch", b"<6@x>", b""),
        (b"Re: Orphan", b"<7@x>", b"References: <missing@x>\r\n"),
        (b"Re: Other", b"<8@x>", b"In-Reply-To: <missing@x>\r\n"),
        (b"[Fwd: Lunch]", b"<9@x>", b""),
    ]
    for i, (subject, mid, extra) in enumerate(t):
        m = msg(subject, date=b"%d Mar 2021 10:00:00 +0000" % (i + 1), msgid=mid, extra=extra)
        r.append(b"INBOX", m, b"01-Jan-2021 00:00:00 +0000")
    r.ok(b"SELECT INBOX")


def test_thread(youju):
    r = login(youju)
    caps = r.one(b"CAPABILITY", b"* CAPABILITY")
    assert b" THREAD=ORDEREDSUBJECT" in caps and b" THREAD=REFERENCES" in caps
    thread_set(r)
    assert r.one(b"THREAD REFERENCES UTF-8 ALL", b"* THREAD") == \
        b"* THREAD (1 (2 3)(4))(5 (6)(9))((7)(8))"
    assert r.one(b"THREAD ORDEREDSUBJECT UTF-8 ALL", b"* THREAD") == \
        b"* THREAD (1 (2)(3)(4))(5 (6)(9))(7)(8)"
    assert r.one(b"THREAD REFERENCES UTF-8 SUBJECT lunch", b"* THREAD") == \
        b"* THREAD (5 (6)(9))"
    assert r.one(b"THREAD REFERENCES UTF-8 SUBJECT nothing", b"* THREAD") == b"* THREAD"
    # message 1 gone: 2 and 4 lose their parent, which becomes a dummy
    r.ok(b"STORE 1 +FLAGS.SILENT (\\Deleted)")
    r.ok(b"EXPUNGE")
    assert r.one(b"UID THREAD REFERENCES UTF-8 ALL", b"* THREAD") == \
        b"* THREAD ((2 3)(4))(5 (6)(9))((7)(8))"
    assert r.one(b"THREAD REFERENCES UTF-8 ALL", b"* THREAD") == \
        b"* THREAD ((1 2)(3))(4 (5)(8))((6)(7))"
    lines, tagged = r.cmd(b"THREAD FOO UTF-8 ALL")
    assert tagged.startswith(b"BAD")


def test_imaplib_sort_and_thread(youju):
    """Python's imaplib, a real client, reads the replies."""
    import imaplib
    r = login(youju)
    thread_set(r)
    m = imaplib.IMAP4("127.0.0.1", youju.ports["imap"], timeout=20)
    m.login(USER, PASSWORD)
    m.select("INBOX")
    typ, data = m.sort("(REVERSE DATE)", "UTF-8", "ALL")
    assert typ == "OK" and data == [b"9 8 7 6 5 4 3 2 1"]
    typ, data = m.thread("REFERENCES", "UTF-8", "SUBJECT", "meeting")
    assert typ == "OK" and data == [b"(1 (2 3)(4))"]
    typ, data = m.uid("SORT", "(SUBJECT)", "UTF-8", "ALL")
    assert typ == "OK" and data == [b"5 6 9 1 2 3 4 7 8"]
    m.logout()


def test_header_keys_over_many_messages(youju):
    """Header keys read the messages' headers in batches: more messages
    than one batch, gaps left by EXPUNGE, a message another session
    expunged meanwhile, and the delivery's own trace fields (the prefix)
    all give the answer a message-by-message scan gives."""
    import imaplib
    import smtplib
    with smtplib.SMTP("127.0.0.1", youju.ports["smtp"], timeout=30) as s:
        s.sendmail("carol@remote.example", [USER],
                   b"From: Sender 7 <s7@example.org>\r\nSubject: delivered\r\n\r\nhi\r\n")
    m = imaplib.IMAP4("127.0.0.1", youju.ports["imap"], timeout=60)
    m.login(USER, PASSWORD)
    for i in range(1, 301):
        m.append("INBOX", None, None,
                 b"From: Sender %d <s%d@example.org>\r\nSubject: note %d\r\n\r\nx\r\n"
                 % (i, i, i))
    m.select("INBOX")
    # Expunge UIDs 3..42 (seq 3..42): a gap in the middle of a batch.
    m.store("3:42", "+FLAGS.SILENT", "(\\Deleted)")
    m.expunge()
    # Another session expunges one our view still holds.
    other = imaplib.IMAP4("127.0.0.1", youju.ports["imap"], timeout=60)
    other.login(USER, PASSWORD)
    other.select("INBOX")
    other.uid("STORE", "200", "+FLAGS.SILENT", "(\\Deleted)")
    other.expunge()
    other.logout()
    # UID 1 is the delivered message; UID u > 1 holds "Sender u-1".
    uids = [1] + [u for u in range(2, 302) if not 3 <= u <= 42 and u != 200]
    sender = {u: (7 if u == 1 else u - 1) for u in uids}

    def found(*crit):
        typ, data = m.uid("SEARCH", *crit)
        assert typ == "OK", data
        return sorted(int(x) for x in data[-1].split())

    want = [u for u in uids if "sender 1" in f"sender {sender[u]}"]
    assert found("FROM", '"Sender 1"') == want
    assert found("FROM", "s7@") == [u for u in uids if sender[u] == 7]
    assert found("SUBJECT", '"note 299"') == [300]
    assert found("HEADER", "Return-Path", '"carol@remote"') == [1]
    assert found("TEXT", "Return-Path") == [1]
    assert found("NOT", "FROM", "Sender") == []
    m.logout()
