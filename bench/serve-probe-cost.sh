#!/usr/bin/env bash
# CPU and wall time `ssoprobe serve` spends per probe of an anonymous target, against
# the embedded lab on loopback (needs curl):
#   bench/serve-probe-cost.sh SSOPROBE [LAB_SSOPROBE] [N]
# SSOPROBE runs `serve`; LAB_SSOPROBE (default: the same) runs `lab`, so two probes can
# be compared against one lab. N probes (default 50) after one warm-up; the figure is
# the serve process's utime+stime (/proc/PID/stat) over the N probes, divided by N.
set -euo pipefail
BIN=${1:?usage: serve-probe-cost.sh SSOPROBE [LAB_SSOPROBE] [N]}
LAB=${2:-$BIN}
N=${3:-50}
PORT=${PORT:-9899}
d=$(mktemp -d)
"$LAB" lab --dir "$d/lab" > "$d/lab.out" 2>&1 &
labpid=$!
for i in $(seq 50); do grep -q "Press Ctrl-C" "$d/lab.out" 2>/dev/null && break; sleep 0.1; done
IP=$(grep -o "resolve service.example.com:443:[0-9.]*" "$d/lab.out" | head -1 | cut -d: -f3)
cat > "$d/sites.toml" <<T
service = "https://service.example.com"
idp = "https://id.example.com"
team = "xyz"
ca_file = "$d/lab/ca.pem"
resolve = ["service.example.com:443:$IP", "xyz.cloudflareaccess.com:443:$IP", "id.example.com:443:$IP"]
[targets.site]
T
"$BIN" serve --config "$d/sites.toml" --listen 127.0.0.1:$PORT > "$d/serve.out" 2>&1 &
spid=$!
for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:$PORT/healthz && break; sleep 0.05; done
curl -s "http://127.0.0.1:$PORT/probe?target=site" | grep -E "^probe_success" 
t0=$(awk '{print $14+$15}' /proc/$spid/stat)
s=$(date +%s.%N)
for i in $(seq $N); do curl -s -o /dev/null "http://127.0.0.1:$PORT/probe?target=site"; done
e=$(date +%s.%N)
t1=$(awk '{print $14+$15}' /proc/$spid/stat)
hz=$(getconf CLK_TCK)
python3 -c "print(f'serve: {($t1-$t0)/$hz/$N*1000:.1f} ms CPU per probe, {($e-$s)/$N*1000:.1f} ms wall per probe, over $N probes')"
kill $spid $labpid; wait 2>/dev/null || true
rm -rf "$d"
