"""Runs OpenDKIM's verifier (opendkim-testmsg) against test zones.

opendkim-testmsg asks the system resolver, which only speaks to port 53
of the servers in /etc/resolv.conf. So this script is run by
opendkim_verify() inside new network and mount namespaces (`unshare -n
-m`, plus -r for a user namespace when not root): there it may bring up
its own loopback, serve the zones with nsd on 127.0.0.1:53 and bind-mount
a resolv.conf naming it, touching nothing outside.

    unshare -n -m python3 opendkim_ns.py DIR

DIR holds zones.json ({zone: records}) and *.eml; results.json gets
{file: [exit status, stderr]}."""
import json
import os
import subprocess
import sys
import tempfile

from dnsserver import DnsServer


def main(d):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    fd, resolv = tempfile.mkstemp(prefix="resolv-", dir=d)
    with os.fdopen(fd, "w") as f:
        f.write("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
    subprocess.run(["mount", "--bind", resolv, "/etc/resolv.conf"], check=True)
    with open(os.path.join(d, "zones.json")) as f:
        zones = json.load(f)
    results = {}
    with DnsServer(zones, port=53):
        for name in sorted(os.listdir(d)):
            if not name.endswith(".eml"):
                continue
            with open(os.path.join(d, name), "rb") as f:
                r = subprocess.run(["opendkim-testmsg", "-C"], stdin=f, capture_output=True,
                                   timeout=30)
            results[name] = [r.returncode, r.stderr.decode(errors="replace")]
    with open(os.path.join(d, "results.json"), "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1])
