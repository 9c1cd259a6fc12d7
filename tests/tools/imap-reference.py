#!/usr/bin/python3
"""Writes tests/data/imap-sections/: what Debian's dovecot-imapd answers to
FETCH of the body sections of every corpus message (BODY[], HEADER, TEXT,
HEADER.FIELDS(.NOT), partials, every part number's BODY[n], n.MIME,
n.HEADER/n.TEXT of message/rfc822 parts, BINARY[n], BINARY.SIZE[n],
RFC822.SIZE/HEADER/TEXT), recorded as tests/integration/test_imap_xcheck.py
compares youjud's: one line per request, "REQUEST TAB ANSWER", strings as
length and hash (see tests/tools/imapxc.py).

Usage (as root, after `scripts/deps.sh bench`):
    tests/tools/imap-reference.py [TESTDATA]     (default ../shared/testdata)

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


def run(root):
    ref = mime_reference()
    msgs = imapxc.corpus(root)
    tmp = tempfile.mkdtemp(prefix="imap-ref-")
    try:
        port = ref.start_dovecot(tmp)
        record_sections(port, root, msgs)
    finally:
        ref.stop_dovecot(tmp)
        shutil.rmtree(tmp)


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else
        os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "testdata")))
