#!/usr/bin/python3
"""Turns an ARC test suite YAML file into the simple record format that
test-arc.c reads: every item is a line "KEY LENGTH" followed by LENGTH
bytes and a newline. Keys: scenario, txt NAME, test NAME, and the test
fields (message, cv, t, sig-headers, srv-id, AS, AMS, AAR), and the
scenario fields domain, sel, privatekey. Messages get CRLF line ends."""
import sys

import yaml


def item(out, key, value):
    data = str(value).encode("utf-8")
    out.write(b"%s %d\n" % (key.encode("utf-8"), len(data)))
    out.write(data + b"\n")


def main():
    out = sys.stdout.buffer
    with open(sys.argv[1], encoding="utf-8") as f:
        for scenario in yaml.safe_load_all(f):
            if not scenario:
                continue
            item(out, "scenario", scenario.get("description", ""))
            for name, rec in (scenario.get("txt-records") or {}).items():
                item(out, "txt " + name, rec)
            for key in ("domain", "sel", "privatekey"):
                if key in scenario:
                    item(out, key, scenario[key])
            for name, test in (scenario.get("tests") or {}).items():
                item(out, "test " + name, "")
                for key, value in test.items():
                    if key == "message":
                        value = value.replace("\r\n", "\n").replace("\n", "\r\n")
                    if value is None:
                        value = ""
                    item(out, key, value)
    return 0


if __name__ == "__main__":
    sys.exit(main())
