#!/usr/bin/env python3
"""Requests per host of the one-argument form against the pinned form, from --har.

Usage: bench/request-count.py [SSOPROBE]   (default target/release/ssoprobe)

Starts the embedded lab on loopback, enrols a passkey, and runs four checks — the
one-argument form (`check URL`) and the pinned form (`--service --idp --team`), each
anonymous and with `--passkey` — writing a HAR archive of each. Prints the requests
each made to the site, the team domain and Pocket ID. The one-argument form should
ask the site and the team no more often than the pinned form: finding Pocket ID is
then part of the chain the checks walk anyway. A benchmark: it prints, it asserts
nothing.
"""

import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/ssoprobe"
d = tempfile.mkdtemp(prefix="ssoprobe-requests-")
lab = subprocess.Popen([BIN, "lab", "--dir", d], stdout=open(d + "/lab.out", "w"),
                       stderr=subprocess.STDOUT)
try:
    for _ in range(100):
        text = open(d + "/lab.out").read()
        m = re.search(r"^  ssoprobe check https://service\.example\.com (.*)$", text, re.M)
        if m:
            break
        time.sleep(0.1)
    else:
        raise SystemExit(f"the lab did not start:\n{text}")
    routes = m.group(1).split()
    enroll = re.search(r"^  (ssoprobe enroll .*)$", text, re.M).group(1).split()
    enroll[0] = BIN
    subprocess.run(enroll, check=True, stdout=subprocess.DEVNULL)
    passkey = enroll[enroll.index("--out") + 1]
    forms = {
        "one argument": ["https://service.example.com"],
        "pinned": ["--service", "https://service.example.com", "--idp", "https://id.example.com",
                   "--team", "xyz"],
    }
    # One login first, unmeasured: the user's first login also consents to the client
    # (one more request to Pocket ID), whichever form comes first.
    subprocess.run([BIN, "check", "https://service.example.com", *routes, "--passkey", passkey,
                    "-q"])
    time.sleep(1)
    rows = []
    for login, extra in [("anonymous", []), ("--passkey", ["--passkey", passkey])]:
        for name, form in forms.items():
            har = os.path.join(d, f"{name}-{login}.har".replace(" ", "-"))
            subprocess.run([BIN, "check", *form, *routes, *extra, "--har", har, "-q"])
            entries = json.load(open(har))["log"]["entries"]
            hosts = collections.Counter(
                re.match(r"https?://([^/:]+)", e["request"]["url"]).group(1) for e in entries)
            rows.append((login, name, hosts, len(entries)))
            time.sleep(1)
    print(f"{'run':<11} {'form':<13} {'site':>5} {'team':>5} {'Pocket ID':>10} {'all':>5}")
    for login, name, hosts, total in rows:
        print(f"{login:<11} {name:<13} {hosts['service.example.com']:>5} "
              f"{hosts['xyz.cloudflareaccess.com']:>5} {hosts['id.example.com']:>10} {total:>5}")
finally:
    lab.kill()
