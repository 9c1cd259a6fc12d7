#!/usr/bin/python3
"""Random SPF scenarios judged by an independent implementation, pyspf
(python3-spf), written in spf-suite.py's line format so that test-spf
checks youju's result against pyspf's on the same zone data.

Usage: spf-crosscheck.py OUT.txt [COUNT] [SEED]

The scenarios use every mechanism and modifier, CIDR lengths, macros,
includes and redirects between a handful of domains, so that limits,
void lookups and recursion come up too. Fixed seed: the same file each
build.

Two kinds of scenario are left out, where pyspf goes its own way:
- "include has trivial recursion": pyspf refuses a record that includes
  its own domain even where evaluation never reaches that include;
  RFC 7208 has no such rule (a loop that is reached ends at the
  10-lookup limit, a permerror, and youju gives that).
- its void-lookup limit: pyspf counts every empty answer, including the
  address lookups of each MX host and repeated PTR queries, while RFC
  7208 4.6.4 limits the *terms* whose lookups come back empty (an IPv6
  client and a domain whose MX hosts have no AAAA would otherwise be a
  permerror). The openspf suite's void-lookup cases cover that limit.
"""
import importlib.util
import ipaddress
import os
import random
import sys

import spf

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("spf_suite", os.path.join(HERE, "spf-suite.py"))
suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(suite)

DOMAINS = ["d%d.example.com" % i for i in range(6)]
CLIENTS = ["192.0.2.%d" % i for i in range(1, 6)] + ["2001:db8::%d" % i for i in range(1, 4)]


def term(rng):
    d = rng.choice(DOMAINS)
    c4 = rng.choice(["", "/24", "/30", "/32", "/0"])
    c6 = rng.choice(["", "//64", "//128"])
    choices = [
        "all",
        "ip4:192.0.2.%d%s" % (rng.randint(0, 9), c4),
        "ip6:2001:db8::%d%s" % (rng.randint(0, 4), c6.replace("//", "/")),
        "a", "a:" + d, "a" + c4 + c6, "a:%s%s" % (d, c4),
        "mx", "mx:" + d, "mx:%s%s%s" % (d, c4, c6),
        "ptr", "ptr:example.com", "ptr:" + d,
        "exists:%{i}." + d, "exists:%{l}.%{o}", "exists:" + d, "a:%{d2}",
        "include:" + d,
    ]
    q = rng.choice(["", "", "-", "~", "?", "+"])
    return q + rng.choice(choices)


def record(rng):
    terms = [term(rng) for _ in range(rng.randint(0, 5))]
    if rng.random() < 0.25:
        terms.append("redirect=" + rng.choice(DOMAINS))
    if rng.random() < 0.2:
        terms.append("exp=exp.example.com")
    return " ".join(["v=spf1"] + terms)


def zone(rng):
    z = {}

    def add(name, rtype, value):
        z.setdefault(name, []).append((rtype, value))

    for d in DOMAINS:
        if rng.random() < 0.85:
            add(d, "TXT", record(rng))
        for _ in range(rng.randint(0, 2)):
            add(d, "A", "192.0.2.%d" % rng.randint(1, 6))
        if rng.random() < 0.3:
            add(d, "AAAA", "2001:db8::%d" % rng.randint(1, 3))
        for i in range(rng.randint(0, 2)):
            add(d, "MX", (10 * i, "mx%d.%s" % (i, d)))
            add("mx%d.%s" % (i, d), "A", "192.0.2.%d" % rng.randint(1, 6))
        if rng.random() < 0.3:
            add("192.0.2.%d.%s" % (rng.randint(1, 5), d), "A", "127.0.0.2")
    add("exp.example.com", "TXT", "%{i} is not one of %{d}'s")
    return z


def ptr_name(ip):
    if ":" not in ip:
        return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
    packed = ipaddress.ip_address(ip).packed
    nibbles = "".join("%02x" % b for b in packed)
    return ".".join(reversed(nibbles)) + ".ip6.arpa"


def main():
    dst = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 7208)
    lines = []
    current = {}
    skipped = 0

    def lookup(name, qtype, *args, **kwargs):
        name = name.rstrip(".").lower()
        out = []
        for rtype, value in current.get(name, []):
            if rtype != qtype:
                continue
            if rtype == "TXT":
                value = [value.encode()]
            out.append(((name, rtype), value))
        return out

    spf.DNSLookup = lookup
    for n in range(count):
        z = zone(rng)
        for c in CLIENTS:
            if rng.random() < 0.4:
                z.setdefault(ptr_name(c), []).append(("PTR", rng.choice(DOMAINS)))
        current.clear()
        current.update(z)
        ip = rng.choice(CLIENTS)
        sender = "user%d@%s" % (n, rng.choice(DOMAINS))
        res, _code, exp = spf.query(i=ip, s=sender, h="mx.example.org").check()
        res = {"unknown": "permerror", "error": "temperror"}.get(res, res)
        if os.environ.get("SPF_CROSSCHECK_DEBUG"):
            print("pyspf-%d" % n, res, exp, file=sys.stderr)
        if res == "permerror" and ("trivial recursion" in exp or "Void lookup" in exp):
            skipped += 1
            continue
        lines.append(suite.line("S", n, "pyspf cross-check"))
        for name, recs in z.items():
            for rtype, value in recs:
                if rtype == "MX":
                    value = "%d %s" % value
                lines.append(suite.line("Z", name, rtype, value))
        lines.append(suite.line("T", "pyspf-%d" % n, ip, "mx.example.org", sender, res))
    with open(dst + ".tmp", "w", encoding="ascii") as f:
        f.writelines(lines)
    os.replace(dst + ".tmp", dst)
    print("spf-crosscheck: %d scenarios, %d left out (pyspf's own rules)" % (count, skipped))


if __name__ == "__main__":
    main()
