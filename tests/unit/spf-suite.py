#!/usr/bin/python3
"""Turns an openspf YAML test suite into a line format the C unit test
reads without a YAML parser.

Usage: spf-suite.py SUITE.yml OUT.txt

One record per line, fields separated by tabs; inside a field a backslash,
tab, CR, LF and every byte outside 0x20-0x7e is written as \\xHH.
  S  scenario-number description
  Z  name TYPE value      a record (A, AAAA, MX "prio host", TXT, PTR, CNAME)
  ZT name TYPE            queries of that type for name time out
  ZT name *               every query for name times out (bare TIMEOUT)
  T  id host helo mailfrom results   results: comma-separated, first preferred
  X  explanation          the expected explanation of the test just before
  H  receiver header      the expected Received-SPF header of that test

TXT data follows the suite's own rules: a name with SPF (type 99) records
and no TXT record gets them as TXT records; "NONE" values are left out;
the character-strings of a record are concatenated.
"""
import sys

import yaml


def esc(value):
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    out = []
    for b in value:
        if b < 0x20 or b > 0x7e or b in (0x5c,):
            out.append("\\x%02x" % b)
        else:
            out.append(chr(b))
    return "".join(out)


def line(*fields):
    return "\t".join(esc(str(f)) if not isinstance(f, bytes) else esc(f)
                     for f in fields) + "\n"


def txt_value(v):
    if isinstance(v, list):
        return "".join(v)
    return v


def zone_lines(name, records):
    out = []
    generated = []
    has_txt = any(isinstance(r, dict) and "TXT" in r for r in records)
    for rec in records:
        if rec == "TIMEOUT":
            out.append(line("ZT", name, "*"))
            continue
        for rtype, value in rec.items():
            if value == "NONE":
                continue
            if value == "TIMEOUT":
                out.append(line("ZT", name, rtype))
                continue
            if rtype == "SPF":
                if not has_txt:
                    generated.append(line("Z", name, "TXT", txt_value(value)))
                continue
            if rtype == "TXT":
                value = txt_value(value)
            elif rtype == "MX":
                value = "%d %s" % (value[0], value[1])
            out.append(line("Z", name, rtype, value))
    return out + generated


def main():
    src, dst = sys.argv[1], sys.argv[2]
    out = []
    with open(src, "rb") as f:
        for n, scenario in enumerate(yaml.safe_load_all(f)):
            out.append(line("S", n, scenario.get("description", "")))
            for name, records in scenario.get("zonedata", {}).items():
                out.extend(zone_lines(name, records))
            for tid, t in scenario["tests"].items():
                results = t["result"]
                if isinstance(results, str):
                    results = [results]
                out.append(line("T", tid, t["host"], t.get("helo", ""),
                                t.get("mailfrom", ""), ",".join(results)))
                if "explanation" in t:
                    out.append(line("X", t["explanation"]))
                if "header" in t:
                    out.append(line("H", t.get("receiver", ""), t["header"]))
    with open(dst + ".tmp", "w", encoding="ascii") as f:
        f.writelines(out)
    import os
    os.replace(dst + ".tmp", dst)


if __name__ == "__main__":
    main()
