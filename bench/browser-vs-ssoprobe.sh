#!/usr/bin/env bash
# Benchmark: ssoprobe against a headless browser on the same SSO chain, in the
# same run, against ssoprobe's embedded lab (loopback only). See bench/README.md.
#
#   bench/browser-vs-ssoprobe.sh            # N=5 measured runs of each
#   N=11 bench/browser-vs-ssoprobe.sh
#
# Environment:
#   N          measured runs of each of the three cases (default 5), after one
#              unmeasured warm-up run of each
#   SSOPROBE   the binary (default: target/release/ssoprobe of this repo)
#   BENCH_DIR  scratch dir holding node_modules/playwright-core
#              (default /tmp/bench-node; keep it outside the repo)
#   CHROMIUM   the browser (default /usr/bin/chromium, Debian's package)
#   CERTS      spki (default): Chromium trusts only the lab's three leaf keys
#              (--ignore-certificate-errors-spki-list); ignore-all: playwright's
#              ignoreHTTPSErrors: true
#   GATEWAY    access (default) or oauth2-proxy: what the lab puts in front of the
#              site (the browser then follows site → Pocket ID's /interaction)
#   KEEP=1     keep the work directory (raw per-run files) instead of deleting it
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
N=${N:-5}
SSOPROBE=${SSOPROBE:-$repo/target/release/ssoprobe}
BENCH_DIR=${BENCH_DIR:-/tmp/bench-node}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
CERTS=${CERTS:-spki}
GATEWAY=${GATEWAY:-access}
INTERVAL_MS=20
export BENCH_DIR

say() { printf '%s\n' "$*" >&2; }
die() { say "browser-vs-ssoprobe: $*"; exit 1; }

case $N in '' | *[!0-9]* | 0) die "N must be a positive integer (got '$N')" ;; esac
case $CERTS in spki | ignore-all) ;; *) die "CERTS must be spki or ignore-all" ;; esac
case $GATEWAY in access | oauth2-proxy) ;; *) die "GATEWAY must be access or oauth2-proxy" ;; esac
[ "$CHROMIUM" = /usr/bin/chromium ] || die "only CHROMIUM=/usr/bin/chromium is supported (browser.mjs pins it)"

# ------------------------------------------------------------ prerequisites
missing=()
[ "$(uname -s)" = Linux ] || missing+=("Linux (the sampler reads /proc/<pid>/smaps_rollup)")
[ -x /usr/bin/time ] || missing+=("GNU time at /usr/bin/time:  sudo apt-get install -y time")
if ! command -v node >/dev/null 2>&1; then
    missing+=("Node.js >= 18:  sudo apt-get install -y nodejs npm")
elif [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 18 ]; then
    missing+=("Node.js >= 18 (found $(node --version))")
fi
[ -x "$CHROMIUM" ] || missing+=("Chromium at /usr/bin/chromium:  sudo apt-get update && sudo apt-get install -y chromium
      (this script never downloads a browser; playwright's own browser download is not used)")
[ -f "$BENCH_DIR/node_modules/playwright-core/package.json" ] ||
    missing+=("playwright-core in \$BENCH_DIR (now $BENCH_DIR), outside the repo:
      mkdir -p $BENCH_DIR && (cd $BENCH_DIR && npm install playwright-core)")
[ -x "$SSOPROBE" ] || missing+=("the ssoprobe binary at $SSOPROBE:  (cd $repo && cargo build --release)")
command -v mkfifo >/dev/null 2>&1 || missing+=("mkfifo (coreutils)")
if [ ${#missing[@]} -gt 0 ]; then
    say "browser-vs-ssoprobe: missing prerequisites:"
    for m in "${missing[@]}"; do say "  - $m"; done
    exit 2
fi

# ------------------------------------------------------------ work dir, cleanup
work=$(mktemp -d "${TMPDIR:-/tmp}/ssoprobe-bench.XXXXXX")
case $work in *[[:space:]]*) rmdir "$work"; die "the temp dir path must not contain whitespace: $work" ;; esac
lab_pid=
watch_pid=
cleanup() {
    local rc=$?
    if [ -n "$watch_pid" ] && kill -0 "$watch_pid" 2>/dev/null; then kill "$watch_pid" 2>/dev/null || true; fi
    if [ -n "$lab_pid" ] && kill -0 "$lab_pid" 2>/dev/null; then
        kill -TERM "$lab_pid" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$lab_pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$lab_pid" 2>/dev/null && kill -KILL "$lab_pid" 2>/dev/null
        wait "$lab_pid" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ the lab
mkdir -m 700 "$work/lab" "$work/runs" "$work/profiles" "$work/tmp"
"$SSOPROBE" lab --dir "$work/lab" --gateway "$GATEWAY" >"$work/lab.out" 2>"$work/lab.err" &
lab_pid=$!
for _ in $(seq 1 150); do
    grep -q 'Press Ctrl-C to stop' "$work/lab.out" 2>/dev/null && break
    kill -0 "$lab_pid" 2>/dev/null || { cat "$work/lab.err" >&2; die "ssoprobe lab exited early"; }
    sleep 0.1
done
grep -q 'Press Ctrl-C to stop' "$work/lab.out" || die "ssoprobe lab did not come up in 15 s"

check_line=$(grep -m1 '^ *ssoprobe check ' "$work/lab.out" | sed 's/^ *ssoprobe check //') ||
    die "no 'ssoprobe check' line in the lab's output"
enroll_line=$(grep -m1 '^ *ssoprobe enroll ' "$work/lab.out" | sed 's/^ *ssoprobe enroll //') ||
    die "no 'ssoprobe enroll' line in the lab's output"
passkey=$(grep -o -- '--passkey [^ ]*' "$work/lab.out" | head -1 | cut -d' ' -f2)
[ -n "$passkey" ] || die "no --passkey FILE in the lab's output"
read -r -a check_flags <<<"$check_line"
read -r -a enroll_flags <<<"$enroll_line"

# Routes for the browser, from the lab's own flags.
rules=()
spki_routes=()
for ((i = 0; i < ${#check_flags[@]}; i++)); do
    case ${check_flags[i]} in
    --resolve) # HOST:443:ADDR
        IFS=: read -r h p a <<<"${check_flags[i + 1]}"
        [ "$p" = 443 ] || die "unexpected --resolve ${check_flags[i + 1]} (port is not 443)"
        rules+=("MAP $h $a"); spki_routes+=(--route "$h=$a") ;;
    --connect-to) # HOST:443:ADDR:PORT
        IFS=: read -r h p a p2 <<<"${check_flags[i + 1]}"
        [ "$p" = 443 ] || die "unexpected --connect-to ${check_flags[i + 1]} (port is not 443)"
        rules+=("MAP $h $a:$p2"); spki_routes+=(--route "$h=$a:$p2") ;;
    esac
done
# Access: the site, the team domain and Pocket ID; oauth2-proxy: the site and Pocket ID.
[ ${#rules[@]} -ge 2 ] || die "expected --resolve or --connect-to routes for the lab's hosts in: $check_line"
# Everything not mapped fails to resolve: the browser can reach only the lab.
rules+=("MAP * ~NOTFOUND")
host_rules=$(IFS=,; printf '%s' "${rules[*]}" | sed 's/,/, /g')
ca_file=$(grep -o -- '--ca-file [^ ]*' <<<"$check_line" | cut -d' ' -f2)

"$SSOPROBE" enroll "${enroll_flags[@]}" >"$work/enroll.out" 2>&1 || { cat "$work/enroll.out" >&2; die "enrolment failed"; }

if [ "$CERTS" = spki ]; then
    spki=$(node "$here/browser.mjs" spki --ca "$ca_file" "${spki_routes[@]}") || die "could not read the lab's certificates"
    cert_note="--ignore-certificate-errors-spki-list (the lab's $((${#spki_routes[@]} / 2)) leaf keys only)"
else
    spki=all
    cert_note="playwright ignoreHTTPSErrors: true"
fi

# ------------------------------------------------------------ one measurement
# measure TAG CMD...: runs CMD under /usr/bin/time (max RSS), while a sampler
# (outside this shell's process tree, so its own CPU is not counted) sums the
# PSS of CMD's process tree every $INTERVAL_MS ms and keeps the last utime+stime
# it saw for each process of the tree. Wall time is $EPOCHREALTIME around CMD.
# The `times` delta of this shell's waited-for children is the user+sys of CMD
# and every descendant reaped through it (plus /usr/bin/time itself, about a
# millisecond), at microsecond resolution; no fork happens between the two
# `times` snapshots except CMD's. Chromium's renderers are not all reaped
# through the chain, so for the browser the sampler's figure is the larger one;
# the report takes the larger of the two (both are lower bounds).
measure() {
    local tag=$1; shift
    local d=$work/runs/$tag
    mkdir "$d"
    mkfifo "$d/fifo"
    # Double fork: the sampler is reparented away from this shell.
    (node "$here/browser.mjs" watch --fifo "$d/fifo" --ready "$d/ready" --out "$d/watch.json" \
        --interval-ms "$INTERVAL_MS" </dev/null >/dev/null 2>"$d/watch.err" &)
    for _ in $(seq 1 500); do [ -s "$d/ready" ] && break; sleep 0.01; done
    [ -s "$d/ready" ] || die "the sampler did not start: $(cat "$d/watch.err")"
    watch_pid=$(cat "$d/ready")
    local t0 t1 pid rc=0
    times >"$d/times0"
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%e %U %S %M' -o "$d/time" "$@" >"$d/out" 2>"$d/err" &
    pid=$!
    echo "$pid" >"$d/fifo"
    wait "$pid" || rc=$?
    t1=$EPOCHREALTIME
    times >"$d/times1"
    for _ in $(seq 1 500); do [ -s "$d/watch.json" ] && break; sleep 0.01; done
    [ -s "$d/watch.json" ] || die "the sampler gave no result: $(cat "$d/watch.err")"
    watch_pid=
    if [ "$rc" != 0 ]; then
        say "run $tag failed (exit $rc):"; tail -n 20 "$d/out" "$d/err" >&2
        die "aborting: every measured run must succeed"
    fi
    printf '%s %s\n' "$t0" "$t1" >"$d/wall"
}

run_case() { # CASE I
    local c=$1 i=$2
    case $c in
    passkey) measure "$c-$i" "$SSOPROBE" check "${check_flags[@]}" --passkey "$passkey" --format json ;;
    anon) measure "$c-$i" "$SSOPROBE" check "${check_flags[@]}" --format json ;;
    browser)
        local prof=$work/profiles/$i
        mkdir "$prof"
        # TMPDIR: Chromium's and playwright's temporary files land in $work too.
        measure "$c-$i" env TMPDIR="$work/tmp" node "$here/browser.mjs" run --url https://service.example.com/ \
            --expect-path /interaction --rules "$host_rules" --spki "$spki" --profile "$prof"
        rm -rf "$prof" ;;
    esac
}

say "lab: $(head -1 "$work/lab.out")"
say "browser: $("$CHROMIUM" --version 2>/dev/null | head -1), playwright-core $(node -p "require('$BENCH_DIR/node_modules/playwright-core/package.json').version"), node $(node --version)"
say "host-resolver-rules: $host_rules"
say "certificates: $cert_note"
say "warm-up (not counted) ..."
for c in passkey anon browser; do run_case "$c" 0; done
for ((i = 1; i <= N; i++)); do
    say "run $i/$N ..."
    for c in passkey anon browser; do run_case "$c" "$i"; done
done

# ------------------------------------------------------------ report
# Every run's figures, one JSON line each, then the table (medians, ratios).
node - "$work/runs" "$N" "$cert_note" <<'EOF'
const fs = require('fs');
const [dir, n, certNote] = process.argv.slice(2);
const secs = (s) => { const m = /(\d+)m([\d.]+)s/.exec(s); return Number(m[1]) * 60 + Number(m[2]); };
function times(file) { // second line: children user, children sys
  const l = fs.readFileSync(file, 'utf8').trim().split('\n')[1].trim().split(/\s+/);
  return secs(l[0]) + secs(l[1]);
}
function load(tag) {
  const d = `${dir}/${tag}`;
  const [t0, t1] = fs.readFileSync(`${d}/wall`, 'utf8').trim().split(' ').map(Number);
  const [e, u, s, maxrss] = fs.readFileSync(`${d}/time`, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  const w = JSON.parse(fs.readFileSync(`${d}/watch.json`, 'utf8'));
  const out = fs.readFileSync(`${d}/out`, 'utf8');
  const r = {
    wall_ms: (t1 - t0) * 1000,
    // Two lower bounds of the tree's CPU time; the larger one is reported.
    // waited_cpu_ms: user+sys of CMD and the descendants reaped through it
    // (exact for ssoprobe; misses Chromium processes that are not reaped
    // through the chain); tree_cpu_seen_ms: the last utime+stime the sampler
    // saw for each process of the tree (misses what ran after its last sample).
    waited_cpu_ms: (times(`${d}/times1`) - times(`${d}/times0`)) * 1000,
    time_cpu_ms: (u + s) * 1000, // /usr/bin/time, 10 ms resolution: a cross-check
    max_rss_mb: maxrss / 1024, // of the largest single process
    peak_pss_mb: w.peak_pss_kb / 1024, // sum over the tree, sampled
    peak_rss_sum_mb: w.peak_rss_sum_kb / 1024,
    tree_cpu_seen_ms: w.tree_cpu_ms_seen,
    processes: w.processes_seen,
    samples: w.samples,
  };
  r.cpu_ms = Math.max(r.waited_cpu_ms, r.tree_cpu_seen_ms);
  if (tag.startsWith('browser')) {
    const b = JSON.parse(out.trim().split('\n').pop());
    Object.assign(r, { final_url: b.final_url, status: b.status, redirects: b.redirects,
      requests: b.requests, hosts: b.hosts.join(' '), import_ms: b.import_ms,
      launch_ms: b.launch_ms, navigate_ms: b.navigate_ms, close_ms: b.close_ms });
  } else {
    const j = JSON.parse(out);
    Object.assign(r, { status: j.status, checks: j.checks.length, counts: JSON.stringify(j.counts) });
  }
  return r;
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const cases = ['passkey', 'anon', 'browser'];
const runs = {};
for (const c of cases) {
  runs[c] = [];
  for (let i = 1; i <= Number(n); i++) runs[c].push(load(`${c}-${i}`));
}
console.log('# per run (wall_ms, cpu_ms = user+sys of the process tree; memory in MB)');
for (const c of cases) runs[c].forEach((r, i) => {
  const f = {}; for (const [k, v] of Object.entries(r)) f[k] = typeof v === 'number' && !Number.isInteger(v) ? Number(v.toFixed(1)) : v;
  console.log(JSON.stringify({ case: c, run: i + 1, ...f }));
});
const med = (c, k) => median(runs[c].map((r) => r[k]));
const rows = [
  ['wall time (ms)', 'wall_ms', 'wall_ms', 0],
  ['CPU user+sys (ms)', 'cpu_ms', 'cpu_ms', 0],
  ['memory (MB)', 'max_rss_mb', 'peak_pss_mb', 1],
];
const fmt = (v, d = 0) => v.toFixed(d);
const pad = (s, w) => String(s).padStart(w);
const lines = [];
lines.push(`medians of ${n} runs each, measured in this run · ${new Date().toISOString().replace(/\..*/, 'Z')}`);
lines.push('');
const head = ['', 'ssoprobe --passkey', 'ssoprobe anon', 'headless Chromium', 'browser/passkey', 'browser/anon'];
const W = [18, 19, 14, 18, 16, 13];
lines.push(head.map((h, i) => i ? pad(h, W[i]) : h.padEnd(W[0])).join(''));
for (const [label, sk, bk, d] of rows) {
  const p = med('passkey', sk), a = med('anon', sk), b = med('browser', bk);
  lines.push([label.padEnd(W[0]), pad(fmt(p, d), W[1]), pad(fmt(a, d), W[2]), pad(fmt(b, d), W[3]),
    pad(fmt(b / p, 1) + 'x', W[4]), pad(fmt(b / a, 1) + 'x', W[5])].join(''));
}
const b1 = runs.browser[0];
lines.push('');
lines.push(`what ran:  ssoprobe --passkey: ${runs.passkey[0].checks} checks ${runs.passkey[0].counts}, full login`);
lines.push(`           ssoprobe anon:      ${runs.anon[0].checks} checks ${runs.anon[0].counts}, no login`);
lines.push(`           browser: ${b1.redirects} redirects to ${b1.final_url} (HTTP ${b1.status}), ${b1.requests} requests to ${b1.hosts}; no login`);
lines.push(`wall:      whole command; browser = node start + load playwright ${fmt(med('browser', 'import_ms'))} + launch ${fmt(med('browser', 'launch_ms'))}` +
  ` + navigate ${fmt(med('browser', 'navigate_ms'))} + close ${fmt(med('browser', 'close_ms'))} ms (medians)`);
lines.push(`CPU:       user+sys of the whole process tree: max(rusage of waited-for processes, last utime+stime seen`);
lines.push(`           per process by the sampler); browser medians ${fmt(med('browser', 'waited_cpu_ms'))} / ${fmt(med('browser', 'tree_cpu_seen_ms'))} ms: a lower bound`);
lines.push(`memory:    ssoprobe: max RSS (/usr/bin/time %M; sampled PSS ${fmt(med('passkey', 'peak_pss_mb'), 1)} / ${fmt(med('anon', 'peak_pss_mb'), 1)} MB);`);
lines.push(`           browser: peak summed PSS of node + Chromium + children (up to ${Math.max(...runs.browser.map((r) => r.processes))} processes), sampled every 20 ms`);
lines.push(`           (peak summed RSS, double-counting shared pages: ${fmt(med('browser', 'peak_rss_sum_mb'))} MB)`);
lines.push(`TLS:       ${certNote}`);
console.log('');
console.log(lines.join('\n'));
EOF
