"""Shared pieces of youju's side-by-side benchmarks.

Each benchmark starts its own servers, listening on loopback, in
temporary directories: youjud from the build tree, and the incumbents
from Debian (Postfix with its own config and queue directory, Dovecot
with its own base_dir and config). A Run owns every process it starts
and its directory; closing it (a with-block, also on error or on a
signal, which start() turns into an exception) stops them all. The
directories, and the scratch file system they may be on, go when the
benchmark exits.
"""

import atexit
import os
import pwd
import grp
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

DOMAIN = "bench.test"
HOSTNAME = "mx.bench.test"
PASSWORD = "bench-password"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Where the incumbents' helpers live on Debian.
SMTP_SOURCE = "/usr/sbin/smtp-source"
POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"

# Dovecot's mail processes run as this user; the mail tree is its own.
MAIL_USER = "nobody"
MAIL_GROUP = "nogroup"


class BenchError(Exception):
    pass


# Temporary directories are removed when the benchmark ends, not between
# runs: on an ext4 without a journal, removing thousands of files makes
# ext4 spend CPU skipping the freed inodes each time it allocates one, for
# a while after, which would tax whichever server runs next.
_trash = []
_scratch = {"base": None, "mount": None, "image": None}


def remove_trash():
    while _trash:
        shutil.rmtree(_trash.pop(), ignore_errors=True)


def scratch_fs():
    """Chooses where the runs' directories go (BENCH_FS):
      ext4    a fresh ext4 (with journal, as a server would have) in an
              image file on loop, made for this benchmark and removed
              after it: both sides get the same clean file system, which
              other work on the machine does not churn;
      tmpdir  a plain temporary directory (BENCH_TMPDIR or the default);
      auto    ext4 where it can be made, else tmpdir (the default;
              tmpdir with BENCH_KEEP=1, which keeps the directories).
    Call once, before the first Run."""
    mode = os.environ.get("BENCH_FS", "auto")
    if mode not in ("auto", "ext4", "tmpdir"):
        raise BenchError("BENCH_FS: auto, ext4 or tmpdir")
    if mode == "tmpdir" or (mode == "auto" and
                            os.environ.get("BENCH_KEEP") == "1"):
        return "tmpdir"
    try:
        _mount_scratch()
        return "fresh ext4 on loop"
    except (BenchError, OSError) as e:
        _unmount_scratch()
        if mode == "ext4":
            raise BenchError(f"cannot make the ext4 scratch: {e}")
        log(f"bench: no ext4 scratch ({e}); using a temporary directory")
        return "tmpdir"


def _mount_scratch():
    parent = os.environ.get("BENCH_TMPDIR") or "/var/tmp"
    top = tempfile.mkdtemp(prefix="youju-bench-fs-", dir=parent)
    _scratch["base"] = top
    image = os.path.join(top, "fs.img")
    mnt = os.path.join(top, "mnt")
    os.mkdir(mnt)
    with open(image, "wb") as f:
        f.truncate(int(os.environ.get("BENCH_FS_SIZE_GB", "32")) << 30)
    _scratch["image"] = image
    run_cmd(["mkfs.ext4", "-q", "-F", "-E", "nodiscard", image])
    run_cmd(["mount", "-o", "loop", image, mnt])
    _scratch["mount"] = mnt
    os.chmod(top, 0o755)
    os.chmod(mnt, 0o755)
    atexit.register(_unmount_scratch)


def _unmount_scratch():
    mnt = _scratch["mount"]
    if mnt:
        # lazily if a server's last process is still on its way out
        if subprocess.run(["umount", mnt], capture_output=True).returncode:
            time.sleep(1)
            if subprocess.run(["umount", mnt],
                              capture_output=True).returncode:
                subprocess.run(["umount", "-l", mnt], capture_output=True)
        _scratch["mount"] = None
    if _scratch["base"]:
        shutil.rmtree(_scratch["base"], ignore_errors=True)
        _scratch["base"] = None


def scratch_dir():
    """Where a Run makes its directory."""
    if _scratch["mount"]:
        return _scratch["mount"]
    return os.environ.get("BENCH_TMPDIR") or None


atexit.register(remove_trash)


_hash = []


def password_hash():
    """One yescrypt hash of PASSWORD (libxcrypt's default method, which
    youju uses), given to both sides, so that each login costs the same
    hashing on either."""
    if not _hash:
        import ctypes
        lib = ctypes.CDLL("libcrypt.so.1")
        lib.crypt_gensalt.restype = ctypes.c_char_p
        lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong,
                                      ctypes.c_char_p, ctypes.c_int]
        lib.crypt.restype = ctypes.c_char_p
        lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        salt = lib.crypt_gensalt(b"$y$", 0, None, 0)
        h = lib.crypt(PASSWORD.encode(), salt) if salt else None
        if not h or not h.startswith(b"$y$"):
            raise BenchError("libcrypt could not make a yescrypt hash")
        _hash.append(h.decode())
    return _hash[0]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20.0, proc=None):
    """Waits until something accepts on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"process exited ({proc.returncode}) "
                             f"before listening on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def wait_path(path, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return
        time.sleep(0.05)
    raise BenchError(f"{path} did not appear after {timeout}s")


def run_cmd(argv, stdin=None, timeout=120):
    """Runs a command to completion; raises with its output on failure."""
    p = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {p.returncode}:\n"
                         f"{p.stdout}{p.stderr}")
    return p.stdout


def _on_signal(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def start(need_youju=True):
    """Checks the machine, makes a signal unwind the benchmark (so every
    with-block and atexit cleanup runs), and sets up the scratch file
    system. Returns a description of the file system used."""
    if os.geteuid() != 0:
        raise BenchError("the benchmarks start mail servers that change "
                         "user: run them as root")
    check_tools(need_youju)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    return scratch_fs()


def youju_build():
    return os.path.abspath(os.environ.get("YOUJU_BUILD",
                                          os.path.join(REPO, "build")))


def check_tools(need_youju=True):
    missing = [p for p in (SMTP_SOURCE, POSTFIX, DOVECOT)
               if not os.access(p, os.X_OK)]
    if missing:
        raise BenchError("missing " + ", ".join(missing) +
                         ": run scripts/deps.sh bench")
    if need_youju:
        b = youju_build()
        for name in ("youjud", "youju"):
            if not os.access(os.path.join(b, name), os.X_OK):
                raise BenchError(f"no {name} in {b}: run make build "
                                 "(or set YOUJU_BUILD)")


class CpuGroup:
    """A control group that the processes of one server side join, so
    that the CPU time of all of them (Postfix's and Dovecot's many
    processes, youjud's threads) can be read, whoever reaped them. The
    machine is shared and busy at times: CPU per message is a figure
    that other load disturbs less than messages per second. Where no
    cgroup can be made, usage() is None."""

    V1 = "/sys/fs/cgroup/cpuacct"
    V2 = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")

    def __init__(self, name):
        self.path = None
        self.v2 = False
        leaf = f"youju-bench-{os.getpid()}-{name}"
        # cgroup v1's cpuacct, else a cgroup v2 hierarchy
        candidates = [(self.V1, "cpuacct.usage", False)] + [
            (d, "cgroup.controllers", True) for d in self.V2]
        for base, probe, v2 in candidates:
            if not os.path.exists(os.path.join(base, probe)):
                continue
            try:
                os.mkdir(os.path.join(base, leaf))
            except OSError:
                continue
            self.path, self.v2 = os.path.join(base, leaf), v2
            break

    def wrap(self, argv):
        """argv, run from inside the group."""
        if not self.path:
            return argv
        procs = os.path.join(self.path, "cgroup.procs")
        return ["/bin/sh", "-c", f'echo $$ > "{procs}" && exec "$@"',
                "sh"] + list(argv)

    def usage(self):
        """CPU seconds used in the group so far, or None."""
        if not self.path:
            return None
        try:
            if self.v2:
                with open(os.path.join(self.path, "cpu.stat")) as f:
                    for line in f:
                        k, v = line.split()
                        if k == "usage_usec":
                            return int(v) / 1e6
                return None
            with open(os.path.join(self.path, "cpuacct.usage")) as f:
                return int(f.read()) / 1e9
        except (OSError, ValueError):
            return None

    def remove(self):
        """Removes the group once the processes in it have gone."""
        if not self.path:
            return
        deadline = time.monotonic() + 10
        while True:
            try:
                os.rmdir(self.path)
                break
            except OSError:
                if time.monotonic() > deadline:
                    log(f"bench: could not remove {self.path}")
                    break
                time.sleep(0.1)
        self.path = None


class Run:
    """One benchmark run: a temporary directory and the servers in it."""

    def __init__(self, name):
        self.name = name
        self.dir = None
        self.procs = []          # (label, Popen) we started, stop in reverse
        self.postfix_dirs = []   # config dirs of Postfix instances started
        self.groups = {}         # name -> CpuGroup

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix=f"youju-bench-{self.name}-",
                                    dir=scratch_dir())
        # The servers change to unprivileged users that must reach it.
        os.chmod(self.dir, 0o755)
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def group(self, name):
        """The CpuGroup of one server side, made on first use."""
        if name not in self.groups:
            self.groups[name] = CpuGroup(name)
        return self.groups[name]

    def spawn(self, label, argv, group=None, **kw):
        if group:
            argv = self.group(group).wrap(argv)
        logf = open(self.path(f"{label}.out"), "ab")
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL,
                             start_new_session=True, **kw)
        logf.close()
        self.procs.append((label, p))
        return p

    def stop(self, proc, grace=10.0):
        """Stops one process we started (and its process group)."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(5)
        self.procs = [(l, p) for (l, p) in self.procs if p is not proc]

    def close(self):
        for cfg in reversed(self.postfix_dirs):
            postfix_stop(cfg)
        self.postfix_dirs = []
        for label, p in reversed(list(self.procs)):
            self.stop(p)
        for g in self.groups.values():
            g.remove()
        self.groups = {}
        if self.dir and os.environ.get("BENCH_KEEP") != "1":
            _trash.append(self.dir)
        elif self.dir:
            log(f"bench: kept {self.dir}")
        self.dir = None

    def tail(self, label, lines=20):
        """The last lines of a started process's output, for errors."""
        try:
            with open(self.path(f"{label}.out"), "rb") as f:
                data = f.read().decode("utf-8", "replace")
            return "\n".join(data.splitlines()[-lines:])
        except OSError:
            return ""


# ---------------------------------------------------------------- youju

PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")


def have_postgresql():
    return os.path.exists(os.path.join(PGBIN, "postgres"))


class PostgreSQL:
    """A PostgreSQL cluster of the run, on a Unix socket in the run's
    directory, with its default durability (fsync, synchronous_commit):
    a COMMIT that returned is on disk, as youju's 250 promises. Its CPU
    counts to the group of the youju that uses it."""

    def __init__(self, run, group):
        self.dir = run.path("pg")
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o755)
        owner = []
        if os.getuid() == 0:
            shutil.chown(self.dir, "postgres")
            owner = ["runuser", "-u", "postgres", "--"]
        data = os.path.join(self.dir, "data")
        run_cmd(owner + [os.path.join(PGBIN, "initdb"), "-D", data, "-A", "trust",
                         "-U", "youju", "-E", "UTF8"])
        self.proc = run.spawn("postgres", owner + [
            os.path.join(PGBIN, "postgres"), "-D", data, "-k", self.dir,
            "-c", "listen_addresses=", "-c", "max_connections=300"], group=group)
        wait_path(os.path.join(self.dir, ".s.PGSQL.5432"))
        base = f"host={self.dir} user=youju"
        run_cmd(["psql", base + " dbname=postgres", "-qc", "CREATE DATABASE youju"])
        self.dsn = base + " dbname=youju"


class Youju:
    """A youjud with one domain, started in the foreground; on pg (a
    PostgreSQL) if given, else on its own SQLite; opts: more settings."""

    def __init__(self, run, accounts, pop3=False, pg=None, imap=False, opts=None):
        self.run = run
        b = youju_build()
        self.youju = os.path.join(b, "youju")
        self.youjud = os.path.join(b, "youjud")
        self.data = run.path("youju")
        self.smtp_port = free_port()
        self.pop3_port = free_port() if pop3 else None
        self.imap_port = free_port() if imap else None
        run_cmd([self.youju, "init", "--data-dir", self.data,
                 "--domain", DOMAIN, "--hostname", HOSTNAME])
        if pg is not None:
            with open(os.path.join(self.data, "youju.conf"), "a") as f:
                f.write(f"store_driver = postgresql\nstore_dsn = {pg.dsn}\n")
            run_cmd([self.youju, "-d", self.data, "domain", "add", DOMAIN])
        for a in accounts:
            run_cmd([self.youju, "-d", self.data, "account", "add", a,
                     "--password-hash", password_hash()])
        opts = {
            "smtp_listen": f"127.0.0.1:{self.smtp_port}",
            "pop3_listen": (f"127.0.0.1:{self.pop3_port}" if pop3 else ""),
            "submission_listen": "", "submissions_listen": "",
            "imap_listen": (f"127.0.0.1:{self.imap_port}" if imap else ""),
            "imaps_listen": "", "pop3s_listen": "",
            "log_level": "warn",
            "max_connections": "1000",
            "smtpd_client_connection_count_limit": "1000",
            # every client of a benchmark comes from 127.0.0.1
            "client_connection_count_limit": "2000",
            # as for Postfix: no name lookup of the client address
            "smtpd_peername_lookup": "no",
            **(opts or {}),
        }
        argv = [self.youjud, "-d", self.data]
        for k, v in opts.items():
            argv += ["-o", f"{k}={v}"]
        # extra settings, "key=value key=value"
        for kv in os.environ.get("BENCH_YOUJU_OPTS", "").split():
            argv += ["-o", kv]
        self.group = run.group("youju")
        self.proc = run.spawn("youjud", argv, group="youju")
        try:
            wait_port(self.smtp_port, proc=self.proc)
            if pop3:
                wait_port(self.pop3_port, proc=self.proc)
            if imap:
                wait_port(self.imap_port, proc=self.proc)
        except BenchError as e:
            raise BenchError(f"youjud: {e}\n{run.tail('youjud')}")

    def count(self, account):
        """Messages in account's INBOX, read with the youju command."""
        out = run_cmd([self.youju, "-d", self.data, "msg", "list", account])
        return sum(1 for line in out.splitlines() if line.strip())

    def stop(self):
        self.run.stop(self.proc)


# ---------------------------------------------------------------- Dovecot

def _ids():
    return pwd.getpwnam(MAIL_USER).pw_uid, grp.getgrnam(MAIL_GROUP).gr_gid


class Dovecot:
    """A Dovecot with LMTP on a UNIX socket and POP3 on a loopback port.

    mail_fsync stays at Dovecot's default "optimized": every message file
    is fsync'd before LMTP answers 250 (index files are not: Dovecot
    rebuilds them from the mail files). BENCH_DOVECOT_FSYNC overrides it,
    BENCH_DOVECOT_MAIL the mailbox format (maildir or sdbox)."""

    def __init__(self, run, accounts, pop3=False, group="dovecot",
                 imap=False):
        """The auth service's client socket (auth_socket) is open to
        all, for Postfix's SASL."""
        self.run = run
        self.root = run.path("dovecot")
        # base_dir short: Dovecot's sockets there (token-login/tokenlogin)
        # may pass the 108 bytes of a UNIX socket name on the scratch fs
        self.base = tempfile.mkdtemp(prefix="yjb-dovecot-")
        os.chmod(self.base, 0o755)
        atexit.register(shutil.rmtree, self.base, True)
        self.mail = os.path.join(self.root, "mail")
        self.conf = os.path.join(self.root, "dovecot.conf")
        self.fmt = os.environ.get("BENCH_DOVECOT_MAIL", "maildir")
        if self.fmt not in ("maildir", "sdbox"):
            raise BenchError("BENCH_DOVECOT_MAIL: maildir or sdbox")
        self.fsync = os.environ.get("BENCH_DOVECOT_FSYNC", "optimized")
        self.pop3_port = free_port() if pop3 else 0
        self.imap_port = free_port() if imap else 0
        self.lmtp_socket = os.path.join(self.base, "lmtp")
        self.auth_socket = os.path.join(self.base, "auth-client")
        uid, gid = _ids()
        for d in (self.root, os.path.join(self.root, "state")):
            os.makedirs(d, mode=0o755, exist_ok=True)
        os.makedirs(self.mail, mode=0o700)
        os.chown(self.mail, uid, gid)
        with open(os.path.join(self.root, "passwd"), "w") as f:
            for a in accounts:
                f.write(f"{a}:{{CRYPT}}{password_hash()}::::::\n")
        with open(self.conf, "w") as f:
            f.write(self._config(uid, gid))
        self.group = run.group(group)
        self.proc = run.spawn("dovecot", [DOVECOT, "-F", "-c", self.conf],
                              group=group)
        try:
            wait_path(self.lmtp_socket)
            if pop3:
                wait_port(self.pop3_port, proc=self.proc)
            if imap:
                wait_port(self.imap_port, proc=self.proc)
        except BenchError as e:
            raise BenchError(f"dovecot: {e}\n{run.tail('dovecot')}\n"
                             f"{self.log_tail()}")

    def _config(self, uid, gid):
        home = os.path.join(self.mail, "%d", "%n")
        if self.fmt == "maildir":
            loc = f"maildir:{home}/Maildir"
        else:
            loc = f"{self.fmt}:{home}/mail"
        protocols = "lmtp" + (" pop3" if self.pop3_port else "") + \
            (" imap" if self.imap_port else "")
        return f"""# youju benchmark: Dovecot on loopback only
base_dir = {self.base}
state_dir = {self.root}/state
instance_name = youju-bench-dovecot
protocols = {protocols}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
log_path = {self.root}/dovecot.log
mail_location = {loc}
mail_fsync = {self.fsync}
first_valid_uid = 1
pop3_uidl_format = %08Xu%08Xv
# every client of a benchmark comes from 127.0.0.1, 100 and more at once
mail_max_userip_connections = 2000
default_process_limit = 1000
default_client_limit = 4000
passdb {{
  driver = passwd-file
  args = scheme=CRYPT username_format=%u {self.root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={home}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
service auth {{
  unix_listener auth-client {{
    mode = 0666
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""

    def log_tail(self, lines=20):
        try:
            with open(os.path.join(self.root, "dovecot.log")) as f:
                return "\n".join(f.read().splitlines()[-lines:])
        except OSError:
            return ""

    def count(self, account):
        """Messages delivered into account's INBOX, counted as files, so
        that polling costs no Dovecot process."""
        user, domain = account.split("@")
        home = os.path.join(self.mail, domain, user)
        if self.fmt == "maildir":
            dirs = [os.path.join(home, "Maildir", d) for d in ("new", "cur")]
        else:
            dirs = [os.path.join(home, "mail", "mailboxes", "INBOX",
                                 "dbox-Mails")]
        n = 0
        for d in dirs:
            try:
                n += sum(1 for e in os.scandir(d)
                         if self.fmt == "maildir" or e.name.startswith("u."))
            except FileNotFoundError:
                pass
        return n

    def stop(self):
        self.run.stop(self.proc)


# ---------------------------------------------------------------- Postfix

MASTER_CF = """# youju benchmark: only what inbound mail to LMTP needs
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """A Postfix whose mydestination is the bench domain, delivering every
    local recipient over LMTP into Dovecot. Its queue keeps Postfix's
    default durability: cleanup fsyncs a queue file before smtpd answers
    250. Process limits, concurrency and in_flow_delay stay at their
    defaults; only DNS-free operation is configured (no client name
    lookup, as for youjud). BENCH_POSTFIX_MAIN adds main.cf lines
    ("name = value; name = value"); main_extra adds the benchmark's own.
    """

    def __init__(self, run, lmtp_socket, group="postfix", main_extra="", master_extra=""):
        self.run = run
        self.main_extra = main_extra
        self.root = run.path("postfix")
        self.cfg = os.path.join(self.root, "etc")
        self.queue = os.path.join(self.root, "queue")
        self.data = os.path.join(self.root, "data")
        self.port = free_port()
        os.makedirs(self.cfg, mode=0o755)
        os.makedirs(self.queue, mode=0o755)
        os.makedirs(self.data, mode=0o700)
        pf = pwd.getpwnam("postfix")
        os.chown(self.data, pf.pw_uid, pf.pw_gid)
        with open(os.path.join(self.cfg, "main.cf"), "w") as f:
            f.write(self._main_cf(lmtp_socket))
        with open(os.path.join(self.cfg, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(port=self.port) + master_extra)
        run.postfix_dirs.append(self.cfg)
        # postfix(1) reports errors to stderr only when it is a terminal.
        self.group = run.group(group)
        run_cmd(self.group.wrap(["script", "-qec",
                                 f"{POSTFIX} -c {self.cfg} start",
                                 "/dev/null"]))
        try:
            wait_port(self.port)
        except BenchError as e:
            raise BenchError(f"postfix: {e}\n{self.log_tail()}")

    def _main_cf(self, lmtp_socket):
        extra = os.environ.get("BENCH_POSTFIX_MAIN", "")
        return f"""# youju benchmark: Postfix on loopback only
compatibility_level = 3.6
queue_directory = {self.queue}
data_directory = {self.data}
mail_owner = postfix
setgid_group = postdrop
myhostname = {HOSTNAME}
mydomain = {DOMAIN}
myorigin = $mydomain
mydestination = {DOMAIN}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
local_recipient_maps =
local_transport = lmtp:unix:{lmtp_socket}
biff = no
append_dot_mydomain = no
smtpd_peername_lookup = no
smtpd_client_connection_count_limit = 1000
smtpd_client_connection_rate_limit = 0
maillog_file_prefixes = {self.root}
maillog_file = {self.root}/postfix.log
{self.main_extra}
{extra.replace(';', chr(10))}
"""

    def log_tail(self, lines=20):
        try:
            with open(os.path.join(self.root, "postfix.log")) as f:
                return "\n".join(f.read().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        postfix_stop(self.cfg)
        if self.cfg in self.run.postfix_dirs:
            self.run.postfix_dirs.remove(self.cfg)


def postfix_stop(cfg):
    """Stops a Postfix instance; kills its master if stop does not."""
    subprocess.run([POSTFIX, "-c", cfg, "stop"], capture_output=True,
                   timeout=60)
    try:
        out = subprocess.run(["postconf", "-c", cfg, "-h",
                              "queue_directory"], capture_output=True,
                             text=True, timeout=30).stdout.strip()
        pidfile = os.path.join(out, "pid", "master.pid")
        with open(pidfile) as f:
            pid = int(f.read().split()[0])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------- tools

def smtp_source(port, count, size, sessions, rcpt, timeout=600):
    """Sends count messages of size bytes over sessions parallel SMTP
    sessions with Postfix's smtp-source; returns the seconds it took."""
    argv = [SMTP_SOURCE, "-4", "-s", str(sessions), "-m", str(count),
            "-l", str(size), "-M", "client.bench.test",
            "-f", "sender@client.bench.test", "-t", rcpt]
    argv += os.environ.get("BENCH_SMTP_SOURCE_OPTS", "").split()
    argv.append(f"127.0.0.1:{port}")
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        raise BenchError(f"smtp-source exited {p.returncode}: "
                         f"{p.stdout}{p.stderr}")
    return dt


def wait_count(counter, want, timeout, interval=0.02):
    """Polls counter() until it reaches want; returns when it did
    (time.monotonic()), or raises after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        now = time.monotonic()
        n = counter()
        if n >= want:
            return now
        if now > deadline:
            raise BenchError(f"only {n} of {want} messages delivered "
                             f"after {timeout}s")
        time.sleep(interval)


class MessageMaker:
    """Plain RFC 5322 messages of a given size with CRLF line ends, built
    from a fixed-seed pool of text lines so every run sends the same
    bytes."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        words = ["".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz")
                         for _ in range(self.rng.randint(1, 10)))
                 for _ in range(2000)]
        self.lines = []
        for _ in range(4096):
            line = ""
            while len(line) < 60:
                line += self.rng.choice(words) + " "
            self.lines.append(line.rstrip().encode("ascii"))

    def make(self, i, size, rcpts):
        head = (f"From: Sender {i} <sender@client.bench.test>\r\n"
                f"To: {', '.join('<' + r + '>' for r in rcpts)}\r\n"
                f"Subject: benchmark message {i}\r\n"
                f"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
                f"Message-ID: <{i}.{size}@client.bench.test>\r\n"
                f"MIME-Version: 1.0\r\n"
                f"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
                ).encode("ascii")
        body = []
        left = max(size - len(head), 80)
        while left > 0:
            line = self.lines[self.rng.randrange(len(self.lines))]
            body.append(line)
            left -= len(line) + 2
        return head + b"\r\n".join(body) + b"\r\n"


def message_sizes(count, lo, hi, seed):
    """count sizes drawn log-uniformly from lo..hi bytes (most mail is
    small, some is large) with a fixed seed, so every run sends the same
    mix."""
    import math
    rng = random.Random(seed)
    a, b = math.log(lo), math.log(hi)
    return [int(math.exp(rng.uniform(a, b))) for _ in range(count)]


def ratio(a, b):
    return a / b if b > 0 else float("inf")
