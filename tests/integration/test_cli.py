"""The youju admin command on its own: init, domains, accounts, aliases,
config checks, errors and exit codes, and dropping root to the owner of
the data dir. No daemon is started here."""
import os
import pty
import pwd
import re
import select
import stat
import subprocess

import pytest

from conftest import YOUJU, DOMAIN, HOSTNAME

STANDARD = {"smtp": "*:25", "submission": "*:587", "submissions": "*:465", "imap": "*:143",
            "imaps": "*:993", "pop3": "*:110", "pop3s": "*:995"}
DEV = {"smtp": "127.0.0.1:2525", "submission": "127.0.0.1:5587",
       "submissions": "127.0.0.1:5465", "imap": "127.0.0.1:1143", "imaps": "127.0.0.1:1993",
       "pop3": "127.0.0.1:1110", "pop3s": "127.0.0.1:1995"}


def run(*args, input=None, **kw):
    # A new session has no controlling terminal, so nothing can fall
    # back to asking on /dev/tty.
    return subprocess.run([YOUJU, *args], input=input, capture_output=True, text=True,
                          timeout=60, start_new_session=True, **kw)


def fails(r, *fragments):
    """Asserts the youju error contract: non-zero, one 'youju: ' line."""
    assert r.returncode != 0, r.stdout
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("youju: "), r.stderr
    for f in fragments:
        assert f in lines[0], r.stderr
    return lines[0]


def conf_values(path):
    values = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "=" in line:
                k, v = line.split("=", 1)
                values[k.strip()] = v.strip()
    return values


@pytest.fixture
def y(youju_factory):
    """An initialised data dir with the domain example.test."""
    y = youju_factory()
    y.init()
    return y


# ---- init ----

def test_init_makes_a_data_dir(y):
    d = y.data_dir
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o750
    for name in ("youju.conf", "youju.db", "tls/cert.pem", "tls/key.pem"):
        assert os.path.exists(os.path.join(d, name)), name
    assert stat.S_IMODE(os.stat(os.path.join(d, "tls/key.pem")).st_mode) == 0o600
    conf = conf_values(os.path.join(d, "youju.conf"))
    assert conf["myhostname"] == HOSTNAME
    assert conf["mydomain"] == DOMAIN
    for name, value in STANDARD.items():
        assert conf[f"{name}_listen"] == value
    assert y.cli("domain", "list").stdout == DOMAIN + "\n"
    assert y.cli("config", "check").stdout == "config ok\n"
    with open(os.path.join(d, "tls/cert.pem")) as f:
        assert "BEGIN CERTIFICATE" in f.read()


def test_init_dev_uses_loopback_ports(youju_factory):
    y = youju_factory()
    r = run("init", "--data-dir", y.data_dir, "--domain", "dev.test", "--hostname",
            "mail.dev.test", "--dev")
    assert r.returncode == 0, r.stderr
    conf = conf_values(os.path.join(y.data_dir, "youju.conf"))
    for name, value in DEV.items():
        assert conf[f"{name}_listen"] == value
    assert y.cli("domain", "list").stdout == "dev.test\n"


def test_init_refuses_twice(y):
    r = run("init", "--data-dir", y.data_dir, "--domain", DOMAIN, "--hostname", HOSTNAME)
    fails(r, "already initialised")


def test_init_refuses_a_dir_in_use(youju_factory):
    y = youju_factory()
    os.makedirs(y.data_dir)
    with open(os.path.join(y.data_dir, "precious"), "w") as f:
        f.write("x")
    r = run("init", "--data-dir", y.data_dir, "--domain", DOMAIN, "--hostname", HOSTNAME)
    fails(r, "not empty")


@pytest.mark.parametrize("args, fragment", [
    (["--domain", DOMAIN], "usage"),
    (["--hostname", HOSTNAME], "usage"),
    (["--domain", "bad domain", "--hostname", HOSTNAME], "invalid domain name"),
    (["--domain", DOMAIN, "--hostname", "-x.test"], "invalid domain name"),
])
def test_init_bad_arguments(youju_factory, args, fragment):
    y = youju_factory()
    fails(run("init", "--data-dir", y.data_dir, *args), fragment)
    assert not os.path.exists(y.data_dir)


# ---- domains ----

def test_domains(y):
    y.cli("domain", "add", "Other.Test")
    assert sorted(y.cli("domain", "list").stdout.split()) == ["example.test", "other.test"]
    fails(y.cli("domain", "add", "other.test", check=False), "already exists")
    y.cli("domain", "del", "other.test")
    assert y.cli("domain", "list").stdout.split() == ["example.test"]
    fails(y.cli("domain", "del", "other.test", check=False),
          "domain other.test does not exist")
    fails(y.cli("domain", "add", "no_underscores.test", check=False), "invalid domain")


def test_domain_with_accounts_cannot_go(y):
    y.add_account("a@example.test", "pw-a")
    fails(y.cli("domain", "del", DOMAIN, check=False))
    assert y.cli("domain", "list").stdout.split() == [DOMAIN]


# ---- accounts ----

def test_accounts(y):
    y.cli("domain", "add", "other.test")
    y.add_account("Alice@Example.Test", "secret-alice")
    y.add_account("bob@other.test", "secret-bob")
    assert sorted(y.cli("account", "list").stdout.split()) == ["alice@example.test",
                                                               "bob@other.test"]
    assert y.cli("account", "list", "other.test").stdout.split() == ["bob@other.test"]
    fails(y.cli("account", "list", "nowhere.test", check=False), "does not exist")
    r = y.cli("account", "add", "alice@example.test", "--password-stdin", input="x\n",
              check=False)
    fails(r, "account alice@example.test already exists")
    y.cli("account", "del", "bob@other.test")
    assert y.cli("account", "list").stdout.split() == ["alice@example.test"]
    fails(y.cli("account", "del", "bob@example.test", check=False),
          "account bob@example.test does not exist")


def test_account_needs_a_local_domain(y):
    r = y.cli("account", "add", "x@elsewhere.test", "--password-stdin", input="pw\n",
              check=False)
    fails(r, "domain elsewhere.test does not exist")


@pytest.mark.parametrize("address", ["nodomain", "@example.test", "a..b@example.test",
                                     "a b@example.test", "x@bad_domain.test"])
def test_account_bad_address(y, address):
    r = y.cli("account", "add", address, "--password-stdin", input="pw\n", check=False)
    fails(r, "invalid address")


@pytest.mark.parametrize("stdin, fragment", [
    ("", "no password"),
    ("\n", "empty password"),
    ("x" * 1025 + "\n", "too long"),
])
def test_account_bad_password(y, stdin, fragment):
    r = y.cli("account", "add", "c@example.test", "--password-stdin", input=stdin, check=False)
    fails(r, fragment)
    assert y.cli("account", "list").stdout == ""


def test_account_password_from_terminal_needs_one(y):
    r = run("-d", y.data_dir, "account", "add", "c@example.test", input="pw\npw\n")
    fails(r, "no terminal")
    assert y.cli("account", "list").stdout == ""


def test_account_generated_password(y):
    r = y.cli("account", "add", "gen@example.test", "--generate-password")
    m = re.search(r"^password: (\S+)$", r.stdout, re.M)
    assert m, r.stdout
    assert len(m.group(1)) == 20
    assert re.fullmatch(r"[a-km-np-zA-HJ-NP-Z2-9]{20}", m.group(1))
    assert r.stdout.count("password:") == 1
    other = y.cli("account", "add", "gen2@example.test", "--generate-password").stdout
    assert m.group(1) not in other


def test_account_password_hash(y):
    h = "{SHA512-CRYPT}$6$saltsalt$" + "a" * 86
    y.cli("account", "add", "mig@example.test", "--password-hash", h)
    assert "mig@example.test" in y.cli("account", "list").stdout
    fails(y.cli("account", "add", "mig2@example.test", "--password-hash", "plaintext",
                check=False), "password hash")
    fails(y.cli("account", "add", "mig3@example.test", "--password-hash", "{NOPE}x",
                check=False), "scheme")


def test_account_password_options_exclude_each_other(y):
    r = y.cli("account", "add", "x@example.test", "--password-stdin", "--generate-password",
              input="pw\n", check=False)
    fails(r, "only one of")


def test_account_passwd(y):
    y.add_account("p@example.test", "old")
    y.cli("account", "passwd", "p@example.test", "--password-stdin", input="new\n")
    r = y.cli("account", "passwd", "nobody@example.test", "--password-stdin", input="new\n",
              check=False)
    fails(r, "account nobody@example.test does not exist")


def pty_run(args, answers):
    """Runs youju on a new terminal, answering each prompt in turn."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(YOUJU, [YOUJU, *args])
    out = b""
    try:
        for prompt, answer in answers:
            while prompt not in out:
                r, _, _ = select.select([fd], [], [], 10)
                assert r, out
                out += os.read(fd, 1024)
            os.write(fd, answer + b"\n")
        while True:
            r, _, _ = select.select([fd], [], [], 10)
            if not r:
                break
            chunk = os.read(fd, 1024)
            if not chunk:
                break
            out += chunk
    except OSError:
        pass  # the terminal closes when youju exits
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode()


def test_account_password_from_terminal(y):
    args = ["-d", y.data_dir, "account", "add", "tty@example.test"]
    rc, out = pty_run(args, [(b"Password: ", b"typed-pw"), (b"again: ", b"typed-pw")])
    assert rc == 0, out
    assert "typed-pw" not in out  # no echo
    assert "tty@example.test" in y.cli("account", "list").stdout
    args = ["-d", y.data_dir, "account", "add", "tty2@example.test"]
    rc, out = pty_run(args, [(b"Password: ", b"one"), (b"again: ", b"two")])
    assert rc != 0
    assert "youju: the passwords do not match" in out
    assert "tty2@example.test" not in y.cli("account", "list").stdout


# ---- aliases ----

def test_aliases(y):
    y.add_account("alice@example.test", "pw")
    y.cli("alias", "add", "postmaster@example.test", "alice@example.test")
    y.cli("alias", "add", "team@example.test", "alice@example.test", "bob@remote.test")
    y.cli("alias", "add", "@example.test", "alice@example.test")
    lines = sorted(y.cli("alias", "list").stdout.splitlines())
    assert lines == sorted(["postmaster@example.test alice@example.test",
                            "team@example.test alice@example.test",
                            "team@example.test bob@remote.test",
                            "@example.test alice@example.test"])
    y.cli("alias", "del", "team@example.test", "bob@remote.test")
    fails(y.cli("alias", "del", "team@example.test", "bob@remote.test", check=False),
          "no target")
    y.cli("alias", "del", "@example.test")
    fails(y.cli("alias", "del", "@example.test", check=False), "does not exist")
    lines = sorted(y.cli("alias", "list").stdout.splitlines())
    assert lines == ["postmaster@example.test alice@example.test",
                     "team@example.test alice@example.test"]


def test_alias_errors(y):
    fails(y.cli("alias", "add", "x@elsewhere.test", "a@example.test", check=False),
          "domain elsewhere.test does not exist")
    fails(y.cli("alias", "add", "@elsewhere.test", "a@example.test", check=False),
          "domain elsewhere.test does not exist")
    fails(y.cli("alias", "add", "x@example.test", check=False), "usage")
    # a bad second target: nothing is added
    fails(y.cli("alias", "add", "x@example.test", "a@example.test", "not an address",
                check=False), "invalid address")
    assert y.cli("alias", "list").stdout == ""


# ---- messages ----

def test_msg_on_an_empty_mailbox(y):
    y.add_account("alice@example.test", "pw")
    assert y.cli("msg", "list", "alice@example.test").stdout == ""
    assert y.cli("msg", "list", "alice@example.test", "Sent").stdout == ""
    fails(y.cli("msg", "list", "alice@example.test", "Nope", check=False), "Nope")
    fails(y.cli("msg", "list", "bob@example.test", check=False),
          "account bob@example.test does not exist")
    fails(y.cli("msg", "cat", "alice@example.test", "1", check=False), "UID 1")
    fails(y.cli("msg", "cat", "alice@example.test", "x1", check=False), "invalid UID")


# ---- config ----

def append_conf(y, text):
    path = os.path.join(y.data_dir, "youju.conf")
    with open(path) as f:
        n = sum(1 for _ in f)
    with open(path, "a") as f:
        f.write(text + "\n")
    return path, n + 1


@pytest.mark.parametrize("line, fragment", [
    ("foo = bar", "unknown key 'foo'"),
    ("mynetworks = 10.0.0.0/40", "mynetworks"),
    ("imap_listen = localhost:143", "imap_listen"),
    ("imap_listen = 127.0.0.1:0", "imap_listen"),
    ("imap_listen = ::1:143", "imap_listen"),
    ("pop3_listen = *:25", "pop3_listen"),
    ("max_connections = lots", "max_connections"),
    ("log_level = loud", "log_level"),
    ("dns_servers = ns.example.test", "dns_servers"),
])
def test_config_check_errors(y, line, fragment):
    path, lineno = append_conf(y, line)
    msg = fails(y.cli("config", "check", check=False), fragment)
    assert msg.startswith(f"youju: {path}:{lineno}: "), msg


def test_config_unknown_key_exact(y):
    path, lineno = append_conf(y, "foo = 1")
    r = y.cli("config", "check", check=False)
    assert r.stderr == f"youju: {path}:{lineno}: unknown key 'foo'\n"
    # every command reads the config and refuses the same way
    fails(y.cli("domain", "list", check=False), "unknown key 'foo'")


def test_config_check_good_listener_forms(y):
    append_conf(y, "imap_listen = [::1]:1143\npop3_listen =\nsmtp_listen = :2525")
    assert y.cli("config", "check").stdout == "config ok\n"


def test_config_check_needs_certificate_for_tls(y):
    os.rename(os.path.join(y.data_dir, "tls/cert.pem"), os.path.join(y.data_dir, "moved.pem"))
    fails(y.cli("config", "check", check=False), "tls_cert_file")
    # without implicit-TLS listeners a missing certificate is fine
    append_conf(y, "submissions_listen =\nimaps_listen =\npop3s_listen =")
    assert y.cli("config", "check").stdout == "config ok\n"


def test_config_dump(y):
    out = y.cli("config", "dump").stdout
    values = dict(line.split(" = ", 1) for line in out.splitlines())
    assert values["myhostname"] == HOSTNAME
    assert values["imaps_listen"] == "*:993"
    assert values["mail_owner"] == "youju"


# ---- the command line ----

def test_unknown_command(y):
    r = run("-d", y.data_dir, "frob")
    assert r.stderr == "youju: unknown command 'frob'\n"
    assert r.returncode != 0
    fails(run("-d", y.data_dir, "domain", "frob"), "unknown command 'domain frob'")
    fails(run("-d", y.data_dir, "domain"), "usage")
    fails(run("-d", y.data_dir, "domain", "add"), "usage: youju domain add NAME")
    fails(run("-d", y.data_dir, "domain", "list", "extra"), "usage")
    fails(run("-d", y.data_dir, "domain", "list", "--nope"), "unknown option '--nope'")
    fails(run(), "no command")


def test_help_and_version():
    for args in (["help"], ["--help"], ["-h"]):
        r = run(*args)
        assert r.returncode == 0
        assert "usage: youju" in r.stdout and "account add" in r.stdout
    r = run("version")
    assert r.returncode == 0 and re.match(r"youju \d+\.\d+", r.stdout)
    r = run("account", "add", "--help")
    assert r.returncode == 0 and "--password-stdin" in r.stdout


def test_data_dir_option_forms(y):
    assert run("--data-dir", y.data_dir, "domain", "list").stdout == DOMAIN + "\n"
    assert run(f"--data-dir={y.data_dir}", "domain", "list").stdout == DOMAIN + "\n"
    assert run("domain", "list", "-d", y.data_dir).stdout == DOMAIN + "\n"


def test_default_data_dir_is_var(y):
    # (in y.base, which the service user can traverse when we are root)
    os.symlink(y.data_dir, os.path.join(y.base, "var"))
    r = run("domain", "list", cwd=y.base)
    assert r.returncode == 0, r.stderr
    assert r.stdout == DOMAIN + "\n"


def test_not_initialised(tmp_path):
    fails(run("-d", str(tmp_path / "none"), "domain", "list"), "youju init")


# ---- root ----

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def owners(top):
    found = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [*dirnames, *filenames, ""]:
            p = os.path.join(dirpath, name) if name else dirpath
            found[p] = os.lstat(p).st_uid
    return found


@root_only
def test_root_init_hands_the_dir_to_the_service_user(y):
    pw = pwd.getpwnam("youju")
    assert pw.pw_uid != 0
    assert pw.pw_shell.endswith("nologin")
    st = os.stat(y.data_dir)
    assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid)
    # commands run as root create their files as the service user
    y.add_account("alice@example.test", "pw")
    y.cli("alias", "add", "x@example.test", "alice@example.test")
    y.cli("domain", "add", "more.test")
    bad = {p: uid for p, uid in owners(y.data_dir).items() if uid != pw.pw_uid}
    assert not bad, bad


@root_only
def test_root_commands_run_as_the_dir_owner(y):
    # A config only root can read: a command that really gave up root
    # cannot read it.
    conf = os.path.join(y.data_dir, "youju.conf")
    os.chown(conf, 0, 0)
    os.chmod(conf, 0o600)
    fails(y.cli("domain", "list", check=False), "Permission denied")
