#!/usr/bin/env python3
"""Memory of `ssoprobe serve` under a flood of idle, half-sent requests.

Starts `ssoprobe serve` on a loopback port with a config whose hosts do not resolve
(nothing is probed), reads its resident set size (VmRSS in /proc/PID/status) at
baseline, while N connections (default 10,000) each hold half a request line, and
after they are closed, and prints the figures and the ratio after/baseline; then
floods again (--rounds, default 2) to show whether "after" keeps growing.

Usage: bench/serve-idle-flood.py [--bin PATH] [--connections N]
Linux only (reads /proc). Only loopback traffic.
"""

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def http_get(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode(errors="replace")


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(root, "target", "release", "ssoprobe"))
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=2,
                    help="floods one after the other; a second shows whether 'after' keeps growing")
    args = ap.parse_args()

    # ulimit -n: the flood needs one descriptor per connection on this side.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.connections + 512
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < want:
            sys.exit(f"ulimit -n is {new} (hard limit); {want} needed")

    work = tempfile.mkdtemp(prefix="ssoprobe-flood-")
    cfg = os.path.join(work, "offline.toml")
    with open(cfg, "w") as f:
        f.write('idp = "https://id.invalid"\n[targets.main]\nservice = "https://a.invalid"\n')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSOPROBE_")}
    err = open(os.path.join(work, "serve.err"), "w")
    serve = subprocess.Popen(
        [args.bin, "serve", "--config", cfg, "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        started = time.monotonic()
        while True:
            try:
                if http_get(port, "/healthz")[0] == 204:
                    break
            except OSError:
                pass
            if time.monotonic() - started > 15 or serve.poll() is not None:
                sys.exit("serve did not come up")
            time.sleep(0.05)
        for _ in range(20):
            http_get(port, "/healthz")
            http_get(port, "/metrics")
        time.sleep(1)
        baseline = rss_kib(serve.pid)

        mb = lambda kib: f"{kib / 1024:.1f} MB"
        print(f"serve RSS baseline: {mb(baseline)}")
        afters = []
        for round_ in range(1, args.rounds + 1):
            conns, failed, peak = [], 0, baseline
            t0 = time.monotonic()
            for i in range(args.connections):
                try:
                    c = socket.create_connection(("127.0.0.1", port), timeout=5)
                    c.sendall(b"GET /healthz HT")
                    conns.append(c)
                except OSError:
                    failed += 1
                if i % 500 == 0:
                    peak = max(peak, rss_kib(serve.pid))
            opened = time.monotonic() - t0
            for _ in range(10):
                peak = max(peak, rss_kib(serve.pid))
                time.sleep(0.1)
            during = rss_kib(serve.pid)
            status, _ = http_get(port, "/healthz")
            _, m = http_get(port, "/metrics")
            open_during = metric(m, "ssoprobe_exporter_connections_open")
            evicted = metric(m, "ssoprobe_exporter_connections_evicted_total")

            for c in conns:
                c.close()
            time.sleep(3)
            for _ in range(20):
                http_get(port, "/healthz")
            time.sleep(1)
            after = rss_kib(serve.pid)
            afters.append(after)
            _, m = http_get(port, "/metrics")
            open_after = metric(m, "ssoprobe_exporter_connections_open")

            print(f"round {round_}: {len(conns)} connections held open by the client "
                  f"({failed} failed to connect) in {opened:.1f} s")
            print(f"  serve RSS during: {mb(during)} (peak sampled {mb(peak)}); server-side "
                  f"connections open {open_during:.0f}, evicted so far {evicted:.0f}; /healthz -> {status}")
            fds = len(os.listdir(f"/proc/{serve.pid}/fd"))
            print(f"  serve RSS after:  {mb(after)}; connections open {open_after:.0f}; descriptors {fds}")
            print(f"  ratio after/baseline: {after / baseline:.2f}   peak/baseline: {peak / baseline:.2f}")
        if len(afters) > 1:
            print(f"ratio after last round / after first round: {afters[-1] / afters[0]:.2f}")
    finally:
        serve.terminate()
        try:
            serve.wait(timeout=10)
        except subprocess.TimeoutExpired:
            serve.kill()
        err.close()


if __name__ == "__main__":
    main()
