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


# --- The protocol conversation (tests/tools/imap-conversation.txt) ---

# Commands whose untagged responses come in an order the RFCs leave open:
# compared sorted.
UNORDERED = ("SELECT", "EXAMINE", "LIST", "LSUB", "NAMESPACE", "STATUS", "ENABLE")


def read_script(path):
    """[(session, command)] of a conversation script: one command a line
    (no tag), "[2] " before it for the second session; '#' comments."""
    out = []
    with open(path, "rb") as f:
        for line in f:
            line = line.rstrip(b"\r\n")
            if not line.strip() or line.startswith(b"#"):
                continue
            session = 1
            m = re.match(rb"\[(\d)\] ", line)
            if m:
                session, line = int(m.group(1)), line[m.end():]
            out.append((session, line))
    return out


ATOM = re.compile(rb"[^\x00-\x20\x7f-\xff(){}\[\]%*\"\\]+")


def flag_like(v):
    text = v.decode("latin-1") if isinstance(v, bytes) else v
    return isinstance(text, str) and text[:1] in ("\\", "$")


def render(v):
    """A parsed value written back in one form of the several the
    grammar allows: a string that could be an atom (an astring) bare,
    other short printable ones quoted, the rest as length and hash; a
    list of flags or attributes (an unordered set) sorted, without
    \\Recent (see tests/data/imap-conversation/README.md)."""
    if v is None:
        return "NIL"
    if isinstance(v, bytes):
        if ATOM.fullmatch(v) and v.upper() != b"NIL":
            return v.decode()
        if len(v) <= 72 and re.fullmatch(rb"[\x20-\x7e]*", v):
            return '"%s"' % v.decode().replace("\\", "\\\\").replace('"', '\\"')
        return norm_value(v)
    if isinstance(v, list):
        items = [render(x) for x in v]
        if v and all(flag_like(x) for x in v):
            items = sorted(x for x in items if x != "\\Recent")
        return "(" + " ".join(items) + ")"
    return str(v)


def render_pairs(v):
    """A list of NAME value pairs (FETCH items, STATUS items), sorted by
    name: their order is the server's choice."""
    pairs = [(str(v[i]).upper(), render(v[i + 1])) for i in range(0, len(v) - 1, 2)]
    return "(" + " ".join("%s %s" % p for p in sorted(pairs) if p[0] != "RECENT") + ")"


# Values that differ between servers for no fault of either.
VOLATILE = [(re.compile(p), r) for p, r in (
    (r"(UIDVALIDITY|APPENDUID|COPYUID) \d+", r"\1 V"),
    (r"(HIGHESTMODSEQ|MODSEQ) \(\d+\)", r"\1 (M)"),
    (r"(HIGHESTMODSEQ|MODSEQ) \d+", r"\1 M"),
    (r"(EMAILID|THREADID) \([^()]*\)", r"\1 (X)"),
    (r'INTERNALDATE "[ 0]?(\d+)-', r'INTERNALDATE "\1-'),
    (r"SAVEDATE \"[^\"]*\"", r"SAVEDATE D"),
)]


def norm_status(line):
    """'* OK [CODE args]' or 'OK [CODE]': the text after the code dropped,
    capability lists emptied."""
    m = re.match(rb"(\* |)(OK|NO|BAD|BYE|PREAUTH)( \[([^\]]*)\])?", line)
    code = m.group(4).decode("latin-1") if m.group(3) else None
    if code is not None and code.upper().startswith("CAPABILITY"):
        code = "CAPABILITY"
    if code is not None and code.upper().startswith("MAILBOXID"):
        code = None
    if code is not None and "(" in code:
        # PERMANENTFLAGS, BADCHARSET: lists of flags or names, unordered.
        head, _, rest = code.partition("(")
        names = sorted(x for x in rest.rstrip(")").split() if x != "\\Recent")
        code = head + "(" + " ".join(names) + ")"
    return volatile(m.group(1).decode() + m.group(2).decode() +
                    (" [%s]" % code if code is not None else ""))


def volatile(text):
    for pat, rep in VOLATILE:
        text = pat.sub(rep, text)
    return text


def norm_untagged(line):
    body = line.rstrip(b"\r\n")
    if re.match(rb"\* (OK|NO|BAD|BYE|PREAUTH)\b", body):
        out = norm_status(body)
    elif re.match(rb"\* (CAPABILITY|ID)\b", body):
        out = body.split(b" (")[0].split(b" ")[0:2]
        out = b" ".join(out).decode()
    else:
        items, i = ["*"], 2
        while i < len(body):
            v, i = parse_value(body, i)
            items.append(v)
            while body[i:i + 1] == b" ":
                i += 1
        verb = str(items[2] if str(items[1]).isdigit() else items[1]).upper()
        if verb in ("FETCH", "STATUS"):
            items[-1] = render_pairs(items[-1])
        out = " ".join(x if isinstance(x, str) and not isinstance(x, Atom) else render(x)
                       for x in items)
    return volatile(out)


def dropped(line):
    """Untagged responses left out of the comparison: RECENT (youju does
    not report \\Recent) and MAILBOXID (RFC 8474, which the reference
    server does not implement)."""
    return re.match(rb"\* (\d+ RECENT|OK \[MAILBOXID )", line) is not None


def converse(sessions, script, root):
    """Runs script over sessions {1: Client, 2: Client}; returns the
    transcript: 'C: command' and its normalised 'S: ' lines."""
    out = []
    for session, command in script:
        literal = None
        m = re.search(rb" <corpus:([^>]+)>$", command)
        if m:
            with open(os.path.join(root, m.group(1).decode()), "rb") as f:
                literal = canonical(f.read())
            command = command[:m.start()]
        m = re.search(rb" <text:(.*)>$", command)
        if m:
            literal = m.group(1).replace(b"\\r\\n", b"\r\n")
            command = command[:m.start()]
        lines, tagged = sessions[session].cmd(command, literal)
        prefix = "[%d] " % session if session != 1 else ""
        out.append("C: " + prefix + command.decode("latin-1"))
        got = [norm_untagged(x) for x in lines if not dropped(x)]
        verb = command.split(b" ")[0].upper()
        if verb == b"UID":
            verb = command.split(b" ")[1].upper()
        if verb.decode() in UNORDERED:
            got.sort()
        out += ["S: " + x for x in got]
        out.append("S: " + norm_status(tagged.split(b" ", 1)[1]))
    return out
