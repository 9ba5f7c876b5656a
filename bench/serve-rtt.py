#!/usr/bin/env python3
"""`ssoprobe serve` at a simulated round-trip time: the one-argument target against the
pinned target, probe after probe. See bench/README.md, "`ssoprobe serve` at a simulated RTT".

Usage: bench/serve-rtt.py [SSOPROBE]   (or env SSOPROBE; default
       $CARGO_TARGET_DIR/release/ssoprobe, else this repo's target/release/ssoprobe;
       nothing is built for you)
Environment: RTTS (default "20ms 50ms"), N probes per target and RTT (default 6, at
least 2), PASSKEY=0 (anonymous targets only), GAP seconds between probes (default 0.2),
KEEP=1 (keep the work directory: logs, config), PORT (serve's; default a free one).

Per RTT: a fresh `ssoprobe lab --rtt RTT`, a passkey enrolled and one unmeasured login
(a user's first login also consents to the client), then one `ssoprobe serve` with the
one-argument target (only `service`: team and Pocket ID found from the redirects) and
the pinned one (`service`, `idp`, `team`), each anonymous and with the passkey, probed
in turn, one probe at a time. A probe's wall time is its `probe_duration_seconds`.
Loopback only. Prints figures, asserts no timing.
"""

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

LOGIN_BURST, LOGIN_REFILL_S = 10, 5.2  # Pocket ID's login/finish limiter (+0.2 s margin)
SITE, IDP, TEAM = "https://service.example.com", "https://id.example.com", "xyz"


def die(msg, code=1):
    print(f"serve-rtt: {msg}", file=sys.stderr)
    sys.exit(code)


def rtt_ms(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)?", text)
    if not m or float(m.group(1)) == 0:
        die(f"RTTS: '{text}' is not a positive NNms or Ns (the figures are in RTTs)", 2)
    return float(m.group(1)) * (1 if m.group(2) == "ms" else 1000)


repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = (sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SSOPROBE")) or os.path.join(
    os.environ.get("CARGO_TARGET_DIR") or os.path.join(repo, "target"), "release", "ssoprobe")
RTTS = os.environ.get("RTTS", "20ms 50ms").split() or die("RTTS is empty", 2)
RTT_MS = {r: rtt_ms(r) for r in RTTS}
N = os.environ.get("N", "6")
if not N.isdigit() or int(N) < 2:
    die(f"N must be an integer of at least 2 (got '{N}'): the figures are of probes 2..N", 2)
N = int(N)
WITH_PASSKEY = os.environ.get("PASSKEY", "1") != "0"
GAP = float(os.environ.get("GAP", "0.2"))
if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
    die(f"no ssoprobe binary at {BIN}: build it (cargo build --release) or pass SSOPROBE", 2)
if subprocess.run([BIN, "lab", "--help"], capture_output=True).returncode != 0:
    die(f"{BIN} has no `lab` subcommand (built without the lab feature?)", 2)

work = tempfile.mkdtemp(prefix="ssoprobe-serve-rtt-")
children = []


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start(name, args):
    log = open(os.path.join(work, name + ".log"), "w")
    proc = subprocess.Popen([BIN, *args], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    children.append(proc)
    return proc


def log_tail(name, lines=20):
    with open(os.path.join(work, name + ".log")) as f:
        return "".join(f.readlines()[-lines:])


def start_lab(rtt):
    """`ssoprobe lab --rtt RTT`: its routes and CA (check flags) and enrol command."""
    name, d = f"lab-{rtt}", os.path.join(work, f"lab-{rtt}")
    lab = start(name, ["lab", "--rtt", rtt, "--dir", d])
    for _ in range(150):
        text = open(os.path.join(work, name + ".log")).read()
        if "Press Ctrl-C to stop" in text:
            break
        if lab.poll() is not None:
            die(f"ssoprobe lab --rtt {rtt} exited ({lab.returncode}):\n{log_tail(name)}")
        time.sleep(0.1)
    else:
        die(f"ssoprobe lab --rtt {rtt} did not come up in 15 s:\n{log_tail(name)}")
    check = re.search(r"^  ssoprobe check https://service\.example\.com (.*)$", text, re.M)
    enroll = re.search(r"^  ssoprobe enroll (.*)$", text, re.M)
    if not check or not enroll:
        die(f"the lab printed no 'ssoprobe check URL' or 'ssoprobe enroll' line:\n{text}")
    return lab, check.group(1).split(), enroll.group(1).split()


def write_config(path, flags, passkey):
    """The lab's routes and CA as shared keys; the two (or four) targets."""
    keys = {"--resolve": "resolve", "--connect-to": "connect_to", "--ca-file": "ca_file"}
    shared = {"resolve": [], "connect_to": []}
    for flag, value in zip(flags[::2], flags[1::2]):
        if flag not in keys:
            die(f"unexpected flag in the lab's check line: {flag}")
        if keys[flag] == "ca_file":
            shared["ca_file"] = value
        else:
            shared[keys[flag]].append(value)
    q = json.dumps  # a JSON string is a TOML basic string
    lines = [f"{k} = {q(v)}" if isinstance(v, str) else f"{k} = [{', '.join(map(q, v))}]"
             for k, v in shared.items() if v]
    targets = {"one-arg": f"service = {q(SITE)}",
               "pinned": f"service = {q(SITE)}\nidp = {q(IDP)}\nteam = {q(TEAM)}"}
    for name, body in targets.items():
        lines += ["", f"[targets.{name}]", body]
        if passkey:
            lines += ["", f"[targets.{name}-passkey]", body, f"passkey = {q(passkey)}"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=60):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def probe(port, target):
    """One scrape: probe_duration_seconds (ms), the scrape's wall time (ms)."""
    t0 = time.monotonic()
    _, body = get(f"http://127.0.0.1:{port}/probe?target={target}")
    wall = (time.monotonic() - t0) * 1000
    m = dict(re.findall(r"^(probe_success|probe_duration_seconds|ssoprobe_result_age_seconds) "
                        r"(\S+)$", body, re.M))
    if m.get("probe_success") != "1":
        _, debug = get(f"http://127.0.0.1:{port}/probe?target={target}&debug=true")
        die(f"probe of {target} failed (probe_success {m.get('probe_success')}):\n{debug}")
    if float(m.get("ssoprobe_result_age_seconds", "0")) > 0:
        die(f"probe of {target} reused an earlier result (minimum login interval)")
    return float(m["probe_duration_seconds"]) * 1000, wall


def onerun(rtt):
    lab, flags, enroll = start_lab(rtt)
    print(f"RTT {rtt}: lab up; ", end="", file=sys.stderr, flush=True)
    passkey, tokens, refilled = None, float(LOGIN_BURST), time.monotonic()
    kinds = ["anonymous"]
    if WITH_PASSKEY:
        r = subprocess.run([BIN, "enroll", *enroll], capture_output=True, text=True)
        if r.returncode != 0:
            die(f"enrolment failed:\n{r.stdout}{r.stderr}")
        passkey = enroll[enroll.index("--out") + 1]
        r = subprocess.run([BIN, "check", SITE, *flags, "--passkey", passkey, "-q"],
                           capture_output=True, text=True)  # the consent, unmeasured
        if r.returncode != 0:
            die(f"the warm-up login failed:\n{r.stdout}{r.stderr}")
        tokens -= 1
        kinds.append("passkey")
    config = os.path.join(work, f"serve-{rtt}.toml")
    write_config(config, flags, passkey)
    port = int(os.environ.get("PORT") or free_port())
    serve = start(f"serve-{rtt}", ["serve", "--config", config, "--listen", f"127.0.0.1:{port}",
                                   "--min-login-interval", "1ms"])
    for _ in range(100):
        if serve.poll() is not None:
            die(f"ssoprobe serve exited ({serve.returncode}):\n{log_tail(f'serve-{rtt}')}")
        try:
            if get(f"http://127.0.0.1:{port}/healthz", 2)[0] == 204:
                break
        except OSError:
            pass
        time.sleep(0.1)
    else:
        die(f"ssoprobe serve did not answer /healthz in 10 s:\n{log_tail(f'serve-{rtt}')}")
    print(f"serve up on 127.0.0.1:{port}; probing", end="", file=sys.stderr, flush=True)
    res = {(k, f): [] for k in kinds for f in ("one-arg", "pinned")}
    for _ in range(N):
        for kind, form in res:
            if kind == "passkey":  # wait for a login token: never meet the limiter
                now = time.monotonic()
                tokens = min(LOGIN_BURST, tokens + (now - refilled) / LOGIN_REFILL_S)
                refilled = now
                if tokens < 1:
                    time.sleep((1 - tokens) * LOGIN_REFILL_S)
                    tokens, refilled = 1.0, time.monotonic()
                tokens -= 1
            name = form + ("-passkey" if kind == "passkey" else "")
            res[(kind, form)].append(probe(port, name))
            time.sleep(GAP)
        print(".", end="", file=sys.stderr, flush=True)
    print(" done", file=sys.stderr)
    stop(serve)
    stop(lab)
    return res


def main():
    version = subprocess.run([BIN, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"ssoprobe: {BIN} ({version}); work dir {work}", file=sys.stderr)
    results = {rtt: onerun(rtt) for rtt in RTTS}
    print(f"serve at a simulated RTT: {N} probes per target, one at a time · "
          f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
    print("wall = probe_duration_seconds, in RTTs; later = median of probes 2..N;")
    print("one-arg/pinned and Δ compare the later probes' medians\n")
    head = (f"{'RTT':>6}  {'login':<10}{'target':<9}{'first ms':>9}{'first':>7}"
            f"{'later ms':>10}{'later':>7}{'one-arg/pinned':>16}{'Δ RTTs':>8}")
    print(head)
    print("-" * len(head))
    for rtt, res in results.items():
        r = RTT_MS[rtt]
        for kind, form in res:
            walls = [w for w, _ in res[(kind, form)]]
            later = statistics.median(walls[1:])
            cmp = ""
            if form == "one-arg":
                pinned = statistics.median(w for w, _ in res[(kind, "pinned")][1:])
                cmp = f"{later / pinned:>16.2f}{(later - pinned) / r:>8.1f}"
            print(f"{rtt:>6}  {kind:<10}{form:<9}{walls[0]:>9.0f}{walls[0] / r:>7.1f}"
                  f"{later:>10.0f}{later / r:>7.1f}{cmp}")
    print("\nper-probe wall, ms (probe_duration_seconds / the scrape as the client saw it):")
    for rtt, res in results.items():
        for (kind, form), probes in res.items():
            print(f"  {rtt:>6} {kind:<10}{form:<8}: " +
                  " ".join(f"{w:.0f}/{c:.0f}" for w, c in probes))


signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
try:
    main()
except KeyboardInterrupt:
    sys.exit(130)
finally:
    for p in reversed(children):
        stop(p)
    if os.environ.get("KEEP") == "1":
        print(f"kept {work}", file=sys.stderr)
    else:
        subprocess.run(["rm", "-rf", work])
