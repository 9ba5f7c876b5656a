#!/usr/bin/env python3
"""A long soak of `ssoprobe serve`, scraped as Prometheus scrapes it.

Usage: bench/serve-soak.py [SSOPROBE] [MINUTES] [INTERVAL_SECONDS]
       (defaults: target/release/ssoprobe, 35, 15)

Everything runs on loopback: four embedded labs (healthy, idp-slow, tunnel-down,
challenge), a TCP tarpit (accepts, never sends a byte) and a trickling "TLS" server
(a handshake record header, then one byte a second, for ever). Seven targets:

  healthy      the healthy lab, anonymous, in the one-argument form (URL only)
  login        the healthy lab with a passkey (a full login; --min-login-interval 60s)
  idp-slow     Pocket ID stalls on every request
  tunnel-down  the site's tunnel is down: seen after a passkey login
  challenge    bot protection in front of Access
  tarpit       a site that accepts connections and never answers (URL only)
  trickle      a site whose TLS handshake trickles in and never completes (URL only)

Each target is scraped every INTERVAL seconds with `X-Prometheus-Scrape-Timeout-Seconds:
10`, and every five minutes 50 scrapes of the tarpit arrive at once while the healthy
target is scraped beside them. Memory (VmRSS), open descriptors and threads are read
from /proc once a minute. At the end serve gets SIGTERM with a tarpit scrape in flight,
and the time to exit is measured.

It prints, per target, the verdicts (probe_success 1/0, not-run reasons), the slowest
answer against the scrape timeout, and the failing check seen most; then memory, fds,
threads over time and the stop time. A benchmark, not a test: nothing asserts; read the
figures.
"""

import collections
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/ssoprobe"
MINUTES = float(sys.argv[2]) if len(sys.argv) > 2 else 35.0
INTERVAL = float(sys.argv[3]) if len(sys.argv) > 3 else 15.0
SCRAPE_TIMEOUT = 10

work = tempfile.mkdtemp(prefix="ssoprobe-soak-")
children = []


def start_lab(name, faults):
    d = os.path.join(work, name)
    os.makedirs(d)
    args = [BIN, "lab", "--dir", d]
    for f in faults:
        args += ["--fault", f]
    out = open(os.path.join(d, "lab.out"), "w")
    p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    children.append(p)
    for _ in range(200):
        text = open(os.path.join(d, "lab.out")).read()
        m = re.search(r"^  ssoprobe check https://service\.example\.com (.*)$", text, re.M)
        if m:
            flags = m.group(1).split()
            resolve = [flags[i + 1] for i, f in enumerate(flags) if f in ("--resolve", "--connect-to")]
            kind = "connect_to" if "--connect-to" in flags else "resolve"
            ca = flags[flags.index("--ca-file") + 1]
            enroll = re.search(r"^  (ssoprobe enroll .*)$", text, re.M)
            return {"dir": d, "routes": resolve, "kind": kind, "ca": ca,
                    "enroll": enroll.group(1) if enroll else None}
        time.sleep(0.1)
    raise SystemExit(f"lab {name} did not start:\n{open(os.path.join(d, 'lab.out')).read()}")


def listener():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(256)
    return s


def tarpit():
    s = listener()

    def run():
        held = []
        while True:
            c, _ = s.accept()
            held.append(c)
            if len(held) > 5000:
                held.pop(0).close()

    threading.Thread(target=run, daemon=True).start()
    return s.getsockname()[1]


def trickle():
    s = listener()

    def feed(c):
        try:
            # A TLS record header announcing 16 KiB of handshake, then a byte a second.
            c.sendall(bytes([0x16, 0x03, 0x03, 0x40, 0x00]))
            for _ in range(3600):
                time.sleep(1)
                c.sendall(b"\x00")
        except OSError:
            pass
        finally:
            c.close()

    def run():
        while True:
            c, _ = s.accept()
            threading.Thread(target=feed, args=(c,), daemon=True).start()

    threading.Thread(target=run, daemon=True).start()
    return s.getsockname()[1]


def toml_list(values):
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def target(name, service, lab=None, extra="", routes=None):
    lines = [f"[targets.{name}]", f'service = "{service}"']
    if lab:
        lines.append(f'ca_file = "{lab["ca"]}"')
        lines.append(f'{lab["kind"]} = {toml_list(lab["routes"])}')
    if routes:
        lines.append(f"connect_to = {toml_list(routes)}")
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n"


def scrape(port, name, timeout=SCRAPE_TIMEOUT):
    started = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout + 5)
        c.request("GET", f"/probe?target={name}",
                  headers={"X-Prometheus-Scrape-Timeout-Seconds": str(timeout)})
        r = c.getresponse()
        body = r.read().decode("utf-8", "replace")
        c.close()
    except OSError as e:
        return time.monotonic() - started, None, str(e)
    return time.monotonic() - started, r.status, body


def proc_figures(pid):
    status = open(f"/proc/{pid}/status").read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds, threads


def main():
    labs = {
        "healthy": start_lab("healthy", []),
        "idp-slow": start_lab("idp-slow", ["idp-slow"]),
        "tunnel-down": start_lab("tunnel-down", ["tunnel-down"]),
        "challenge": start_lab("challenge", ["challenge"]),
    }
    def enrolled(lab):
        enroll = lab["enroll"].split()
        enroll[0] = BIN
        subprocess.run(enroll, check=True, stdout=subprocess.DEVNULL)
        return enroll[enroll.index("--out") + 1]

    passkey = enrolled(labs["healthy"])
    tunnel_passkey = enrolled(labs["tunnel-down"])
    pit, slow_tls = tarpit(), trickle()
    pinned = 'idp = "https://id.example.com"\nteam = "xyz"'
    config = "\n".join([
        target("healthy", "https://service.example.com", labs["healthy"]),
        target("login", "https://service.example.com", labs["healthy"], f'passkey = "{passkey}"'),
        target("idp-slow", "https://service.example.com", labs["idp-slow"], pinned),
        target("tunnel-down", "https://service.example.com", labs["tunnel-down"],
               f'{pinned}\npasskey = "{tunnel_passkey}"'),
        target("challenge", "https://service.example.com", labs["challenge"], pinned),
        target("tarpit", "https://tarpit.example.com",
               routes=[f"tarpit.example.com:443:127.0.0.1:{pit}"]),
        target("trickle", "https://trickle.example.com",
               routes=[f"trickle.example.com:443:127.0.0.1:{slow_tls}"]),
    ])
    cfg = os.path.join(work, "serve.toml")
    open(cfg, "w").write(config)
    s = listener()
    port = s.getsockname()[1]
    s.close()
    err = open(os.path.join(work, "serve.err"), "w")
    serve = subprocess.Popen([BIN, "serve", "--config", cfg, "--listen", f"127.0.0.1:{port}",
                              "--min-login-interval", "60s"], stderr=err)
    children.append(serve)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)

    names = ["healthy", "login", "idp-slow", "tunnel-down", "challenge", "tarpit", "trickle"]
    results = {n: [] for n in names}
    lock = threading.Lock()
    end = time.monotonic() + MINUTES * 60
    samples = []

    def record(name, took, status, body):
        if status is None:
            verdict, check = "no answer", body
        elif "\nprobe_success 1\n" in body:
            verdict, check = "success 1", None
        else:
            m = re.search(r'ssoprobe_probe_not_run\{reason="([a-z_]+)"\}', body)
            verdict = f"success 0, not run ({m.group(1)})" if m else "success 0"
            f = re.search(r'ssoprobe_check_success\{target="[^"]*",check="([^"]+)"\} 0', body)
            check = f.group(1) if f else None
        with lock:
            results[name].append((took, verdict, check))

    def loop(name, offset):
        time.sleep(offset)
        while time.monotonic() < end:
            t0 = time.monotonic()
            record(name, *scrape(port, name))
            time.sleep(max(0.0, INTERVAL - (time.monotonic() - t0)))

    threads = [threading.Thread(target=loop, args=(n, i * INTERVAL / len(names)), daemon=True)
               for i, n in enumerate(names)]
    for t in threads:
        t.start()

    floods = []
    next_flood = time.monotonic() + 60
    next_sample = time.monotonic()
    started = time.monotonic()
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= next_sample:
            samples.append((now - started, *proc_figures(serve.pid)))
            next_sample += 60
        if now >= next_flood:
            flood_results = []
            fl = threading.Lock()

            def one(name):
                r = scrape(port, name)
                with fl:
                    flood_results.append((name, r))

            ts = [threading.Thread(target=one, args=("tarpit",)) for _ in range(50)]
            ts += [threading.Thread(target=one, args=("healthy",)) for _ in range(5)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            healthy_ok = sum(1 for n, r in flood_results if n == "healthy" and r[1] == 200
                             and "\nprobe_success 1\n" in r[2])
            tarpit_zero = sum(1 for n, r in flood_results if n == "tarpit" and r[1] == 200
                              and "\nprobe_success 0\n" in r[2])
            slowest = max(r[0] for _, r in flood_results)
            floods.append((round(now - started), healthy_ok, tarpit_zero, slowest))
            next_flood += 300
        time.sleep(1)
    for t in threads:
        t.join()
    samples.append((time.monotonic() - started, *proc_figures(serve.pid)))

    # Stop with a tarpit scrape in flight.
    inflight = threading.Thread(target=lambda: record("tarpit", *scrape(port, "tarpit", 60)))
    inflight.start()
    time.sleep(1)
    t0 = time.monotonic()
    serve.send_signal(signal.SIGTERM)
    code = serve.wait(timeout=30)
    stop_took = time.monotonic() - t0
    inflight.join()
    last = results["tarpit"][-1]

    print(f"ssoprobe serve soak: {MINUTES:g} min, 7 targets, a scrape per target every "
          f"{INTERVAL:g} s with a {SCRAPE_TIMEOUT} s scrape timeout ({BIN})\n")
    print(f"{'target':<12} {'scrapes':>7}  {'slowest':>7}  verdicts; failing check seen most")
    for n in names:
        rs = results[n]
        verdicts = collections.Counter(v for _, v, _ in rs)
        checks = collections.Counter(c for _, _, c in rs if c)
        top = checks.most_common(1)[0][0] if checks else "-"
        slowest = max((t for t, _, _ in rs), default=0)
        v = ", ".join(f"{k}: {c}" for k, c in verdicts.most_common())
        print(f"{n:<12} {len(rs):>7}  {slowest:6.2f}s  {v}; {top}")
    print("\nfloods (50 tarpit scrapes at once + 5 healthy ones beside them):")
    for at, ok, zero, slowest in floods:
        print(f"  at {at:>5} s: healthy success 1 in {ok}/5, tarpit success 0 in {zero}/50, "
              f"slowest answer {slowest:.2f} s")
    print("\nserve's process (minute, VmRSS MiB, fds, threads):")
    for at, rss, fds, th in samples[:: max(1, len(samples) // 12)] + samples[-1:]:
        print(f"  {at / 60:5.1f}  {rss:6.1f}  {fds:4d}  {th:3d}")
    print(f"\nSIGTERM with a tarpit scrape in flight: exit {code} after {stop_took:.2f} s; "
          f"that scrape: {last[1]}")


try:
    main()
finally:
    for p in children:
        if p.poll() is None:
            p.kill()
            p.wait()
