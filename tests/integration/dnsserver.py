"""A real DNS server (nsd) on a loopback port, serving test zones.

Use as a context manager:

    zones = {"example.net": "@ SOA ns. h. 1 3600 600 86400 60\\n..."}
    with DnsServer(zones) as dns:
        y.start(dns_servers=dns.spec)     # "127.0.0.1@PORT"

Each zone text is written to its own file as is; a zone that does not
start with $ORIGIN/$TTL gets "$ORIGIN name." and "$TTL 60" put in front,
so tests can write records with relative owner names. nsd runs in the
foreground (-d) with everything in a temporary directory: no chroot, no
user switch, no remote control, no database file.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

NSD = shutil.which("nsd") or "/usr/sbin/nsd"

SOA = "@ IN SOA ns.invalid. hostmaster.invalid. 1 3600 600 86400 60\n"


def _free_udp_tcp_port():
    # nsd needs the same port free for UDP and TCP.
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
            finally:
                u.close()
            return port
        finally:
            t.close()
    raise RuntimeError("no free port for nsd")


def _query_ok(port, name):
    """Sends one SOA query over UDP; True if any answer comes back."""
    qid = 0x4242
    header = qid.to_bytes(2, "big") + b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    labels = [p for p in name.strip(".").split(".") if p]
    qname = b"".join(bytes([len(p)]) + p.encode() for p in labels) + b"\x00"
    packet = header + qname + b"\x00\x06\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        try:
            s.sendto(packet, ("127.0.0.1", port))
            data, _ = s.recvfrom(4096)
        except OSError:
            return False
    return data[:2] == packet[:2]


def zone_text(name, body):
    """Puts $ORIGIN/$TTL and a SOA in front of body unless it has them."""
    head = ""
    if "$ORIGIN" not in body:
        head += f"$ORIGIN {name.rstrip('.')}.\n"
    if "$TTL" not in body:
        head += "$TTL 60\n"
    if " SOA " not in body:
        head += SOA
    return head + body if body.endswith("\n") else head + body + "\n"


class DnsServer:
    """nsd on 127.0.0.1:port serving zones {name: records text}."""

    def __init__(self, zones, port=None):
        self.zones = dict(zones)
        self.port = port or _free_udp_tcp_port()
        self.dir = tempfile.mkdtemp(prefix="youju-nsd-")
        self.proc = None

    @property
    def spec(self):
        """The form youjud's dns_servers takes."""
        return f"127.0.0.1@{self.port}"

    def _write_config(self):
        d = self.dir
        conf = [
            "server:",
            f"  port: {self.port}",
            "  ip-address: 127.0.0.1",
            "  do-ip6: no",
            f'  zonesdir: "{d}"',
            f'  pidfile: "{d}/nsd.pid"',
            f'  xfrdfile: "{d}/xfrd.state"',
            f'  zonelistfile: "{d}/zone.list"',
            f'  logfile: "{d}/nsd.log"',
            '  database: ""',
            '  username: ""',
            '  chroot: ""',
            "  server-count: 1",
            "  verbosity: 1",
            "remote-control:",
            "  control-enable: no",
        ]
        for i, (name, body) in enumerate(self.zones.items()):
            fname = f"zone{i}.zone"
            with open(os.path.join(d, fname), "w") as f:
                f.write(zone_text(name, body))
            conf += ["zone:", f"  name: {name.rstrip('.') or '.'}", f"  zonefile: {fname}"]
        path = os.path.join(d, "nsd.conf")
        with open(path, "w") as f:
            f.write("\n".join(conf) + "\n")
        return path

    def start(self, timeout=10.0):
        conf = self._write_config()
        check = subprocess.run(["nsd-checkconf", conf], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError("nsd config: " + check.stderr + check.stdout)
        self.proc = subprocess.Popen([NSD, "-d", "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        first = next(iter(self.zones), "invalid")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nsd exited:\n" + self.log())
            if _query_ok(self.port, first):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("nsd did not answer:\n" + self.log())

    def log(self):
        try:
            with open(os.path.join(self.dir, "nsd.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
