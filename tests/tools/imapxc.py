"""IMAP cross-check helpers shared by tests/tools/imap-reference.py (which
records a reference server's answers) and the integration test that
compares youjud's answers with them (tests/integration/test_imap_xcheck.py).

A raw client (exact bytes, literals kept), a parser of IMAP values, the
list of FETCH body-section requests a message's BODYSTRUCTURE calls for,
and the normalised form in which answers are recorded: strings (quoted or
literal, both are the same string to a client) as length and hash, texts
of tagged responses dropped, response codes kept.
"""
import hashlib
import itertools
import os
import re
import socket

# Header names asked for with HEADER.FIELDS and HEADER.FIELDS.NOT: two
# that most messages have and one that none has.
FIELDS = b"(FROM SUBJECT X-NOPE)"
# Part numbers of one message looked at, at most (the corpus has a few
# messages with hundreds of parts; the first ones are the interesting).
PARTS_MAX = 40
# An offset past the end of every corpus message.
FAR = 100000000


class Atom(str):
    """An atom (or a number kept as written): not a string."""


class Literal8(bytes):
    """A ~{n} literal (RFC 3516): the same bytes as a string, marked."""


def parse_value(data, i):
    """One IMAP value of data at i: (value, next index). Lists become
    lists, NIL None, strings bytes, anything else an Atom (text of it,
    brackets of BODY[...] and <n> included)."""
    c = data[i:i + 1]
    if c == b"(":
        items, i = [], i + 1
        while True:
            while data[i:i + 1] == b" ":
                i += 1
            if data[i:i + 1] == b")":
                return items, i + 1
            v, i = parse_value(data, i)
            items.append(v)
    if c == b'"':
        out, i = bytearray(), i + 1
        while data[i:i + 1] != b'"':
            if data[i:i + 1] == b"\\":
                i += 1
            out += data[i:i + 1]
            i += 1
        return bytes(out), i + 1
    m = re.compile(rb"(~?)\{(\d+)\+?\}\r\n").match(data, i)
    if m:
        start = m.end()
        n = int(m.group(2))
        v = data[start:start + n]
        return (Literal8(v) if m.group(1) else v), start + n
    m = re.compile(rb"[^ ()\[\]\r\n]+(\[[^\]]*\](<\d+>)?)?").match(data, i)
    if not m or m.end() == i:
        raise ValueError("bad IMAP value at %d: %r" % (i, data[i:i + 40]))
    text = m.group(0).decode("latin-1")
    return (None if text.upper() == "NIL" else Atom(text)), m.end()


def digest(b):
    return hashlib.sha256(b).hexdigest()[:16]


def norm_value(v):
    """The recorded form of a FETCH value."""
    if v is None:
        return "NIL"
    if isinstance(v, bytes):
        # A literal8 is the same string as a literal (RFC 3516 lets the
        # server choose), but only a literal8 may carry NUL.
        bad = "" if isinstance(v, Literal8) or b"\0" not in v else "NUL"
        return "{%d}%s#%s" % (len(v), bad, digest(v))
    if isinstance(v, list):
        return "(" + " ".join(norm_value(x) for x in v) + ")"
    return str(v)


def read_response(f, tag):
    """Untagged responses (literals inline) and the tagged line."""
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise EOFError("connection closed")
        while True:
            m = re.search(rb"\{(\d+)\+?\}\r\n$", line)
            if not m:
                break
            line += f.read(int(m.group(1)))
            line += f.readline()
        if line.startswith(tag + b" "):
            return lines, line
        lines.append(line)


class Client:
    """IMAP over a bare socket: one command at a time, tagged t1, t2..."""

    def __init__(self, port, host="127.0.0.1", timeout=30):
        self.sock = socket.create_connection((host, port), timeout)
        self.f = self.sock.makefile("rb")
        self.greeting = self.f.readline()
        self.n = 0

    def cmd(self, text, literal=None):
        """(untagged lines, tagged line) of one command; with literal,
        text is followed by it as a non-synchronising literal."""
        self.n += 1
        tag = b"t%d" % self.n
        if literal is None:
            self.sock.sendall(tag + b" " + text + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + text + b" {%d+}\r\n" % len(literal)
                              + literal + b"\r\n")
        return read_response(self.f, tag)

    def ok(self, text, literal=None):
        lines, tagged = self.cmd(text, literal)
        if not tagged.split(b" ", 2)[1:2] == [b"OK"]:
            raise RuntimeError("%r: %r" % (text, tagged))
        return lines

    def close(self):
        try:
            self.cmd(b"LOGOUT")
        except OSError:
            pass
        self.sock.close()


def tagged_status(line):
    """'OK', 'NO [CODE]', 'BAD [CODE]' of a tagged or untagged status
    line: the code's name and arguments kept, the text dropped."""
    parts = line.rstrip(b"\r\n").split(b" ", 2)
    status = parts[1].decode()
    rest = parts[2] if len(parts) > 2 else b""
    m = re.match(rb"\[([^\]]*)\]", rest)
    return status + (" [%s]" % m.group(1).decode("latin-1") if m else "")


def fetch_items(line):
    """The items of one '* n FETCH (...)' line as (name, value) pairs."""
    m = re.match(rb"\* \d+ FETCH \(", line)
    if not m:
        raise ValueError("not a FETCH response: %r" % line[:80])
    items, i = [], m.end()
    while data_at(line, i) != b")":
        name, i = parse_value(line, i)
        i += 1
        value, i = parse_value(line, i)
        items.append((str(name), value))
        while data_at(line, i) == b" ":
            i += 1
    return items


def data_at(b, i):
    return b[i:i + 1]


def fetch_answer(client, seq, att):
    """The normalised answer to 'FETCH seq att': its items, or the
    tagged status when it is not OK."""
    lines, tagged = client.cmd(b"FETCH %d %s" % (seq, att))
    status = tagged_status(tagged)
    if status != "OK":
        return status
    items = []
    for line in lines:
        if re.match(rb"\* \d+ FETCH ", line):
            items += ["%s %s" % (n, norm_value(v)) for n, v in fetch_items(line)]
    return " ".join(items) if items else "OK, nothing"


def _is_message(part):
    return (isinstance(part[0], bytes) and part[0].lower() == b"message" and
            isinstance(part[1], bytes) and part[1].lower() in (b"rfc822", b"global") and
            len(part) > 8 and isinstance(part[8], list))


def _children(body, prefix):
    """(number, part) of the parts of a message whose body structure is
    body, numbered under prefix, depth first."""
    if isinstance(body[0], list):
        # The parts come first; the subtype and extension data follow.
        kids = list(itertools.takewhile(lambda c: isinstance(c, list), body))
    else:
        kids = [body]
    for k, part in enumerate(kids, 1):
        num = prefix + str(k)
        yield num, part
        if isinstance(part[0], list):
            yield from _children(part, num + ".")
        elif _is_message(part):
            yield from _children(part[8], num + ".")


def section_requests(bodystructure, size):
    """The FETCH items asked for one message, given its BODYSTRUCTURE
    (as parsed) and its RFC822.SIZE."""
    top = [b"RFC822.SIZE", b"BODY.PEEK[]", b"BODY.PEEK[HEADER]", b"BODY.PEEK[TEXT]",
           b"BODY.PEEK[HEADER.FIELDS %s]" % FIELDS, b"BODY.PEEK[HEADER.FIELDS.NOT %s]" % FIELDS,
           b"BODY.PEEK[]<0.10>", b"BODY.PEEK[]<%d.10>" % max(size - 4, 0),
           b"BODY.PEEK[]<%d.10>" % FAR, b"BODY.PEEK[TEXT]<3.7>", b"BODY.PEEK[1]<1.3>",
           b"RFC822.HEADER", b"RFC822.TEXT",
           b"BODY.PEEK[99]", b"BODY.PEEK[1.99]", b"BINARY.PEEK[99]", b"BINARY.SIZE[99]"]
    parts = []
    for num, part in list(_children(bodystructure, ""))[:PARTS_MAX]:
        n = num.encode()
        parts += [b"BODY.PEEK[%s]" % n, b"BODY.PEEK[%s.MIME]" % n,
                  b"BINARY.PEEK[%s]" % n, b"BINARY.SIZE[%s]" % n]
        if _is_message(part):
            parts += [b"BODY.PEEK[%s.HEADER]" % n, b"BODY.PEEK[%s.TEXT]" % n,
                      b"BODY.PEEK[%s.HEADER.FIELDS %s]" % (n, FIELDS),
                      b"BODY.PEEK[%s.HEADER.FIELDS.NOT %s]" % (n, FIELDS)]
    return top + parts


def fetch_one(client, seq, item):
    """The value of one FETCH item (e.g. BODYSTRUCTURE), parsed."""
    for line in client.ok(b"FETCH %d %s" % (seq, item)):
        if re.match(rb"\* \d+ FETCH ", line):
            for name, value in fetch_items(line):
                if name.upper() == item.decode().upper():
                    return value
    raise RuntimeError("no %s for %d" % (item, seq))


def corpus(root):
    """Relative paths of the corpus messages under root, sorted."""
    msgs = []
    for d, _, files in os.walk(os.path.join(root, "messages")):
        for f in files:
            if f.endswith(".eml") or re.match(r"msg_.*\.txt$", f):
                msgs.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(msgs)


def canonical(data):
    """Every line end (CRLF, bare LF, bare CR) becomes CRLF."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def data_name(rel):
    """The name of a message's recorded file (as in tests/data/mime)."""
    return rel.replace("messages/", "", 1).replace("/", "_") + ".txt"


def read_records(path):
    """[(request, answer)] of one recorded file (request TAB answer)."""
    out = []
    with open(path, "rb") as f:
        for line in f:
            req, _, ans = line.rstrip(b"\n").partition(b"\t")
            out.append((req, ans.decode()))
    return out


def write_records(path, records):
    with open(path, "wb") as f:
        for req, ans in records:
            f.write(req + b"\t" + ans.encode() + b"\n")
