#!/usr/bin/env bash
# CPU and wall time `ssoprobe serve` spends per probe of an anonymous target, against
# the embedded lab on loopback (needs curl):
#   bench/serve-probe-cost.sh SSOPROBE [LAB_SSOPROBE] [N]
# SSOPROBE runs `serve`; LAB_SSOPROBE (default: the same) runs `lab`, so two probes can
# be compared against one lab. N probes (default 50) after one warm-up; the figure is
# the serve process's utime+stime (/proc/PID/stat) over the N probes, divided by N, and
# its resident memory (VmRSS, VmHWM from /proc/PID/status) after the warm-up, half-way
# and at the end: the recent-probes ring (100 reports, the newest 20 with their HAR)
# must make it level off, not grow with N.
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
rss() { awk '/^VmRSS/{r=$2} /^VmHWM/{h=$2} END{printf "%.1f MB (peak %.1f MB)", r/1024, h/1024}' /proc/$spid/status; }
rss0=$(rss)
t0=$(awk '{print $14+$15}' /proc/$spid/stat)
s=$(date +%s.%N)
for i in $(seq $N); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/probe?target=site"
  [ "$i" -eq $((N / 2)) ] && rss_half=$(rss)
done
e=$(date +%s.%N)
t1=$(awk '{print $14+$15}' /proc/$spid/stat)
rss1=$(rss)
hz=$(getconf CLK_TCK)
python3 -c "print(f'serve: {($t1-$t0)/$hz/$N*1000:.1f} ms CPU per probe, {($e-$s)/$N*1000:.1f} ms wall per probe, over $N probes')"
echo "serve: resident memory after the warm-up $rss0, after $((N / 2)) probes ${rss_half:-?}, after $N $rss1"
page=$(curl -s "http://127.0.0.1:$PORT/" | wc -c)
echo "serve: / is $page bytes with the ring full"
kill $spid $labpid; wait 2>/dev/null || true
rm -rf "$d"
