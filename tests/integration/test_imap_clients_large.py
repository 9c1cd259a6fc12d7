"""Real IMAP clients moving large messages through youjud's APPEND spool
path and back: mbsync pushing a Maildir of multi-megabyte messages and
pulling it into a second one, curl uploading and fetching, offlineimap3
fetching, and the refusals a user sees (a message over
message_size_limit, a missing mailbox, an account over its quota).
A test is skipped only when its client is not installed
(scripts/deps.sh installs them)."""

import base64
import os
import random
import shutil
import subprocess

from conftest import PASSWORD, STORE_DRIVER, USER, make_tmpdir
from test_imap_clients import mbsync_remote, need

MIB = 1024 * 1024
# Above the 20 MiB message with room for its CRLFs and mbsync's header;
# below the 23 MiB one.
LIMIT = 21 * MIB
CRED = f"{USER}:{PASSWORD}"


def big_msg(subject, size, seed, eol=b"\r\n"):
    """A MIME message of about size bytes, the same for the same seed: an
    8-bit ISO-8859-1 text part full of bytes above 0x7f, then a base64
    attachment of random bytes filling the rest."""
    rng = random.Random(seed)
    head = [b"From: Bob <bob@example.org>", b"To: " + USER.encode(),
            b"Subject: " + subject.encode(), b"Message-ID: <%d.big@example.org>" % seed,
            b"MIME-Version: 1.0", b'Content-Type: multipart/mixed; boundary="part"', b""]
    text = [b"--part", b"Content-Type: text/plain; charset=iso-8859-1",
            b"Content-Transfer-Encoding: 8bit", b""]
    for _ in range(min(200, size // 400)):
        text.append(bytes(rng.randrange(0x20, 0x7f) if rng.random() < 0.5
                          else rng.randrange(0xa0, 0x100) for _ in range(76)))
    attachment = [b"--part", b"Content-Type: application/octet-stream",
                  b"Content-Transfer-Encoding: base64",
                  b'Content-Disposition: attachment; filename="blob.bin"', b""]
    start = eol.join(head + text + attachment) + eol
    end = eol + b"--part--" + eol
    lines = (size - len(start) - len(end)) // (76 + len(eol))
    encoded = base64.encodebytes(rng.randbytes(lines * 57)).replace(b"\n", eol)
    return start + encoded.rstrip(eol) + end


def run(cmd, timeout=90, check=True):
    r = subprocess.run(cmd, capture_output=True, timeout=timeout)
    if check:
        assert r.returncode == 0, \
            f"{cmd[0]} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r


def curl(*args):
    return run(["curl", "-sS", "--max-time", "60", "-u", CRED, *args], check=False)


def blobs_kept(y):
    """The message contents the store keeps: the files under blobs/ (and,
    on PostgreSQL, where contents are rows, the ids in its blobs table)."""
    out = []
    for root, _, names in os.walk(os.path.join(y.data_dir, "blobs")):
        out += [os.path.join(root, n) for n in names]
    if STORE_DRIVER == "postgresql":
        r = subprocess.run(["psql", y.pg_dsn, "-Atq", "-c", "SELECT id FROM blobs"],
                           capture_output=True, text=True, check=True, timeout=60)
        out += r.stdout.split()
    return sorted(out)


def used_bytes(y):
    # "ADDRESS: used N of M bytes (P%)" or "ADDRESS: used N bytes, no quota"
    return int(y.cli("account", "quota", USER).stdout.split("used ")[1].split()[0])


def listing(y, mailbox="INBOX"):
    """{uid: (size, flags)} as 'youju msg list' shows the mailbox."""
    out = {}
    for line in y.msg_list(USER, mailbox).splitlines():
        cols = line.split()
        if cols and cols[0].isdigit():
            out[int(cols[0])] = (int(cols[1]), set(cols[3:]))
    return out


def write_maildir(path, messages):
    """messages: [(name, flags, bytes)] into path/cur, stored with LF as
    Maildir files are. The directories' times are put back so mbsync need
    not wait out a second for a directory modified just now."""
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    for name, flags, data in messages:
        with open(os.path.join(path, "cur", f"{name}:2,{flags}"), "wb") as f:
            f.write(data)
    for sub in ("cur", "new", "tmp", ""):
        os.utime(os.path.join(path, sub), (1e9, 1e9))


def read_maildir(path):
    """{subject: (flags, bytes)} of the Maildir's messages."""
    out = {}
    for sub in ("cur", "new"):
        for name in os.listdir(os.path.join(path, sub)):
            with open(os.path.join(path, sub, name), "rb") as f:
                data = f.read()
            subject = [line for line in data.split(b"\n\n", 1)[0].split(b"\n")
                       if line.startswith(b"Subject: ")][0][9:].decode()
            out[subject] = (name.rsplit(":2,", 1)[1], data)
    return out


def without_tuid(data):
    """mbsync puts an X-TUID header into each message it uploads, to find
    the message's UID again; everything else must come back as it was."""
    head, sep, body = data.partition(b"\n\n")
    lines = [line for line in head.split(b"\n") if not line.startswith(b"X-TUID: ")]
    return b"\n".join(lines) + sep + body


def mbsync_config(y, base):
    rc = os.path.join(base, "mbsyncrc")
    with open(rc, "w") as f:
        f.write(mbsync_remote(y) + f"""
MaildirStore first
Path {base}/first/
Inbox {base}/first/INBOX

MaildirStore second
Path {base}/second/
Inbox {base}/second/INBOX

Channel push
Far :remote:
Near :first:
Patterns INBOX
Sync Push
SyncState *

Channel pull
Far :remote:
Near :second:
Patterns INBOX
Create Near
Sync Pull
SyncState *
""")
    return rc


def test_mbsync_large_messages_there_and_back(youju_with):
    need("mbsync")
    y = youju_with(message_size_limit=LIMIT)
    base = make_tmpdir()
    sent = {
        "three": ("S", big_msg("three", 3 * MIB, 3, b"\n")),
        "twenty": ("FS", big_msg("twenty", 20 * MIB, 20, b"\n")),
        "small": ("", big_msg("small", 3000, 5, b"\n")),
        "too big": ("S", big_msg("too big", 23 * MIB, 23, b"\n")),
    }
    write_maildir(os.path.join(base, "first", "INBOX"),
                  [(str(i), flags, data) for i, (flags, data) in enumerate(sent.values())])
    os.makedirs(os.path.join(base, "second"))
    rc = mbsync_config(y, base)

    r = run(["mbsync", "-c", rc, "push"])
    # the refusal is reported for the one message; the others are stored
    err = r.stderr.decode()
    assert "NO [TOOBIG]" in err, err
    assert "far side refuses to store message" in err, err
    assert err.count("refuses") == 1, err
    stored = listing(y)
    assert len(stored) == 3, stored
    by_size = sorted(stored.values(), key=lambda v: v[0])
    assert [flags for _, flags in by_size] == [set(), {"\\Seen"}, {"\\Seen", "\\Flagged"}]
    # on the server: the same bytes with CRLF line ends (and mbsync's header)
    for uid in stored:
        data = y.msg_cat(USER, uid)
        subject = data.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()
        assert without_tuid(data.replace(b"\r\n", b"\n")) == sent[subject][1], subject

    # a second run does not upload anything again
    run(["mbsync", "-c", rc, "push"])
    assert listing(y) == stored

    run(["mbsync", "-c", rc, "pull"])
    back = read_maildir(os.path.join(base, "second", "INBOX"))
    assert sorted(back) == ["small", "three", "twenty"]
    for subject, (flags, data) in back.items():
        assert flags == sent[subject][0], subject
        assert without_tuid(data) == sent[subject][1], subject
    shutil.rmtree(base, ignore_errors=True)


def test_curl_upload_fetch_and_offlineimap(youju_with):
    need("curl")
    y = youju_with(message_size_limit=LIMIT)
    base = make_tmpdir()
    msg = big_msg("ten by curl", 10 * MIB, 10)
    path = os.path.join(base, "ten.eml")
    with open(path, "wb") as f:
        f.write(msg)
    url = f"imap://127.0.0.1:{y.ports['imap']}/"

    # a missing mailbox: curl fails, nothing is created or kept
    blobs = blobs_kept(y)
    r = curl("-v", "-T", path, url + "Nowhere")
    assert r.returncode == 25, r.stderr
    assert b"curl: (25) Upload failed" in r.stderr, r.stderr
    assert b"NO [TRYCREATE]" in r.stderr, r.stderr
    assert blobs_kept(y) == blobs
    assert used_bytes(y) == 0
    r = curl(url)
    assert b"Nowhere" not in r.stdout, r.stdout

    # one over message_size_limit: refused before curl sends it
    toobig = os.path.join(base, "toobig.eml")
    with open(toobig, "wb") as f:
        f.write(big_msg("too big by curl", LIMIT + MIB, 22))
    r = curl("-v", "-T", toobig, url + "INBOX")
    assert r.returncode == 25, r.stderr
    assert b"NO [TOOBIG]" in r.stderr, r.stderr
    assert blobs_kept(y) == blobs
    assert listing(y) == {}

    # an existing one: stored as sent (curl marks it \Seen), fetched back
    r = curl("-T", path, url + "INBOX")
    assert r.returncode == 0, r.stderr
    assert listing(y) == {1: (len(msg), {"\\Seen"})}
    assert y.msg_cat(USER, 1) == msg
    r = curl(url + "INBOX;UID=1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == msg

    # offlineimap3 stores it in a Maildir unchanged but for LF line ends...
    if shutil.which("offlineimap") is None:
        return
    rc = os.path.join(base, "offlineimaprc")
    with open(rc, "w") as f:
        f.write(f"""[general]
accounts = test
metadata = {base}/meta

[Account test]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {base}/mail

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {y.ports["imap"]}
remoteuser = {USER}
remotepass = {PASSWORD}
ssl = no
starttls = no
folderfilter = lambda name: name == "INBOX"
""")
    sync = ["offlineimap", "-c", rc, "-o", "-u", "quiet"]
    run(sync, timeout=120)
    got = read_maildir(os.path.join(base, "mail", "INBOX"))
    assert list(got) == ["ten by curl"]
    assert got["ten by curl"] == ("S", msg.replace(b"\r\n", b"\n"))

    # and uploads one from the Maildir as it is, with CRLF line ends
    mine = big_msg("three by offlineimap", 3 * MIB, 13, b"\n")
    write_maildir(os.path.join(base, "mail", "INBOX"), [("mine", "FS", mine)])
    run(sync, timeout=120)
    stored = listing(y)
    assert sorted(stored) == [1, 2]
    assert stored[2][1] == {"\\Seen", "\\Flagged"}
    assert y.msg_cat(USER, 2) == mine.replace(b"\n", b"\r\n")
    shutil.rmtree(base, ignore_errors=True)


def test_quota_refusals_reported_by_curl_and_mbsync(youju_with):
    need("curl")
    need("mbsync")
    y = youju_with(message_size_limit=LIMIT)
    y.cli("account", "quota", USER, "5m")
    base = make_tmpdir()
    first = big_msg("first three", 3 * MIB, 31)
    path = os.path.join(base, "first.eml")
    with open(path, "wb") as f:
        f.write(first)
    url = f"imap://127.0.0.1:{y.ports['imap']}/INBOX"
    assert curl("-T", path, url).returncode == 0
    used = used_bytes(y)
    assert used == len(first)
    blobs = blobs_kept(y)
    assert blobs

    # curl: a second 3 MiB message would pass the 5 MiB quota
    second = big_msg("second three", 3 * MIB, 32)
    with open(path, "wb") as f:
        f.write(second)
    r = curl("-v", "-T", path, url)
    assert r.returncode == 25, r.stderr
    assert b"curl: (25) Upload failed" in r.stderr, r.stderr
    assert b"NO [OVERQUOTA]" in r.stderr, r.stderr
    assert used_bytes(y) == used
    assert blobs_kept(y) == blobs
    assert list(listing(y)) == [1]

    # mbsync: the small message fits and is stored, the large one reported
    write_maildir(os.path.join(base, "first", "INBOX"),
                  [("1", "", big_msg("small", 3000, 33, b"\n")),
                   ("2", "S", big_msg("second three", 3 * MIB, 32, b"\n"))])
    rc = mbsync_config(y, base)
    r = run(["mbsync", "-c", rc, "push"])
    err = r.stderr.decode()
    assert "NO [OVERQUOTA]" in err, err
    assert err.count("far side refuses to store message") == 1, err
    stored = listing(y)
    assert sorted(stored) == [1, 2]
    assert stored[2][0] < 4000
    assert len(blobs_kept(y)) == len(blobs) + 1
    shutil.rmtree(base, ignore_errors=True)


def test_short_disk_reported_by_curl_and_mbsync(youju_with):
    """queue_minfree above the disk's whole size: no APPEND literal would
    leave that much free, so each is answered NO [UNAVAILABLE] before its
    bytes are sent, and the clients say so."""
    need("curl")
    need("mbsync")
    y = youju_with(message_size_limit=LIMIT)
    y.restart(queue_minfree=str(shutil.disk_usage(y.data_dir).total + MIB))
    base = make_tmpdir()
    path = os.path.join(base, "three.eml")
    with open(path, "wb") as f:
        f.write(big_msg("three by curl", 3 * MIB, 41))
    r = curl("-v", "-T", path, f"imap://127.0.0.1:{y.ports['imap']}/INBOX")
    assert r.returncode == 25, r.stderr
    assert b"NO [UNAVAILABLE]" in r.stderr, r.stderr

    write_maildir(os.path.join(base, "first", "INBOX"),
                  [("1", "S", big_msg("three", 3 * MIB, 42, b"\n")),
                   ("2", "", big_msg("small", 3000, 43, b"\n"))])
    r = run(["mbsync", "-c", mbsync_config(y, base), "push"])
    err = r.stderr.decode()
    assert err.count("NO [UNAVAILABLE]") == 2, err
    assert err.count("far side refuses to store message") == 2, err
    assert listing(y) == {}
    assert blobs_kept(y) == []
    assert used_bytes(y) == 0
    shutil.rmtree(base, ignore_errors=True)
