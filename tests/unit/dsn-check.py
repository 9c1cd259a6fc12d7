"""Checks a bounce with Python's email package, an independent MIME parser.

Usage: dsn-check.py FILE ORIGINAL-TYPE. Exits 0 when FILE is a
multipart/report (report-type=delivery-status) with a text/plain first part,
a message/delivery-status second part whose per-recipient groups each have
Final-Recipient, Action and Status, and a third part of ORIGINAL-TYPE;
otherwise prints what is wrong and exits 1.
"""
import email
import email.policy
import sys


def fail(what):
    print("dsn-check:", what)
    sys.exit(1)


def check_status(part):
    groups = part.get_payload()
    if not isinstance(groups, list) or len(groups) < 2:
        fail("delivery-status has no per-recipient group")
    if not groups[0].get("Reporting-MTA", "").startswith("dns;"):
        fail("no Reporting-MTA")
    for g in groups[1:]:
        for name in ("Final-Recipient", "Action", "Status"):
            if g.get(name) is None:
                fail(f"recipient group without {name}")


def main():
    path, want = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    if msg.defects:
        fail(f"defects: {msg.defects}")
    if msg.get_content_type() != "multipart/report":
        fail(f"top type {msg.get_content_type()}")
    if msg.get_param("report-type") != "delivery-status":
        fail("report-type")
    if msg["Auto-Submitted"] != "auto-replied":
        fail("Auto-Submitted")
    parts = msg.get_payload()
    types = [p.get_content_type() for p in parts]
    if types != ["text/plain", "message/delivery-status", want]:
        fail(f"parts {types}")
    for p in parts:
        if p.defects:
            fail(f"part defects: {p.defects}")
    if "could not be delivered" not in parts[0].get_content():
        fail("first part does not explain")
    check_status(parts[1])


main()
