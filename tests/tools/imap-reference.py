#!/usr/bin/python3
"""Writes tests/data/imap-sections/: what Debian's dovecot-imapd answers to
FETCH of the body sections of every corpus message (BODY[], HEADER, TEXT,
HEADER.FIELDS(.NOT), partials, every part number's BODY[n], n.MIME,
n.HEADER/n.TEXT of message/rfc822 parts, BINARY[n], BINARY.SIZE[n],
RFC822.SIZE/HEADER/TEXT), recorded as tests/integration/test_imap_xcheck.py
compares youjud's: one line per request, "REQUEST TAB ANSWER", strings as
length and hash (see tests/tools/imapxc.py).

It also runs the conversation of tests/tools/imap-conversation.txt (two
sessions of one user) and writes its normalised transcript to
tests/data/imap-conversation/reference.txt.

Usage (as root, after `scripts/deps.sh bench`):
    tests/tools/imap-reference.py [TESTDATA [sections|conversation]]
    (TESTDATA defaults to ../shared/testdata; both are written by default)

The private Dovecot is the one of mime-reference.py: run as nobody, on a
free port of 127.0.0.1, in a temporary directory, stopped at the end.
"""
import importlib.util
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import imapxc  # noqa: E402

OUT = os.path.normpath(os.path.join(HERE, "..", "data", "imap-sections"))
CONVERSATION = os.path.join(HERE, "imap-conversation.txt")
CONVERSATION_OUT = os.path.normpath(os.path.join(HERE, "..", "data", "imap-conversation",
                                                 "reference.txt"))

# youju's default mailboxes and hierarchy separator, so that the
# conversation starts from the same place on both servers.
DOVECOT_MAILBOXES = """\
namespace inbox {
  inbox = yes
  separator = /
  mailbox INBOX {
    auto = subscribe
  }
%s}
""" % "".join("  mailbox %s {\n    special_use = \\%s\n    auto = subscribe\n  }\n" % (n, n)
              for n in ("Drafts", "Sent", "Junk", "Trash", "Archive"))


def mime_reference():
    spec = importlib.util.spec_from_file_location("mime_reference",
                                                  os.path.join(HERE, "mime-reference.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def login(port):
    c = imapxc.Client(port)
    c.ok(b"LOGIN reference reference")
    return c


def record_sections(port, root, msgs):
    c = login(port)
    for seq, rel in enumerate(msgs, 1):
        with open(os.path.join(root, rel), "rb") as f:
            c.ok(b"APPEND INBOX", imapxc.canonical(f.read()))
    c.ok(b"EXAMINE INBOX")
    os.makedirs(OUT, exist_ok=True)
    for seq, rel in enumerate(msgs, 1):
        bs = imapxc.fetch_one(c, seq, b"BODYSTRUCTURE")
        size = int(imapxc.fetch_one(c, seq, b"RFC822.SIZE"))
        records = []
        for req in imapxc.section_requests(bs, size):
            try:
                records.append((req, imapxc.fetch_answer(c, seq, req)))
            except EOFError:
                # Dovecot ends the session on some damaged content; say
                # so, and go on with a new one.
                records.append((req, "(connection closed)"))
                c = login(port)
                c.ok(b"EXAMINE INBOX")
        imapxc.write_records(os.path.join(OUT, imapxc.data_name(rel)), records)
    c.close()
    print("wrote %d files to %s" % (len(msgs), OUT))


def record_conversation(port, root):
    sessions = {1: login(port), 2: login(port)}
    lines = imapxc.converse(sessions, imapxc.read_script(CONVERSATION), root)
    for c in sessions.values():
        c.close()
    os.makedirs(os.path.dirname(CONVERSATION_OUT), exist_ok=True)
    with open(CONVERSATION_OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s" % CONVERSATION_OUT)


def run(root):
    ref = mime_reference()
    msgs = imapxc.corpus(root)
    for what in ("sections", "conversation"):
        if len(sys.argv) > 2 and sys.argv[2] != what:
            continue
        tmp = tempfile.mkdtemp(prefix="imap-ref-")
        try:
            port = ref.start_dovecot(tmp, DOVECOT_MAILBOXES)
            if what == "sections":
                record_sections(port, root, msgs)
            else:
                record_conversation(port, root)
        finally:
            ref.stop_dovecot(tmp)
            shutil.rmtree(tmp)


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else
        os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "testdata")))
