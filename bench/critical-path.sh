#!/usr/bin/env bash
# Benchmark: how close ssoprobe's runs come to their network critical path, against
# the embedded lab with a simulated round-trip time (`ssoprobe lab --rtt`; loopback
# only). See bench/README.md, "Critical path".
#
#   bench/critical-path.sh                  # RTTS="0 20ms 50ms", N=10
#   N=5 RTTS="0 50ms 100ms" bench/critical-path.sh
#
# Environment:
#   N          measured runs of each case per RTT (default 10), after one unmeasured
#              warm-up run of each
#   RTTS       the round-trip times, in ssoprobe's duration syntax (default
#              "0 20ms 50ms"); the slope is taken between the last two
#   SSOPROBE   the binary; when unset, the script builds this repo with
#              `cargo build --release` and uses target/release/ssoprobe (or
#              $CARGO_TARGET_DIR/release/ssoprobe)
#   TIMER=gnu  use /usr/bin/time (its %U and %S print hundredths of a second: CPU
#              figures then come in 10 ms steps); the default is the python3 wrapper
#              (wait4 rusage to the microsecond, sampled VmHWM)
#   KEEP=1     keep the work directory (raw per-run files) instead of deleting it
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
N=${N:-10}
RTTS=${RTTS:-0 20ms 50ms}
# Pocket ID's webauthn-login limiter (the lab's too, for the whole instance, not per
# client): a burst of 10 login/finish calls, then one per 5 s.
LOGIN_BURST=10
LOGIN_REFILL_S=5.2

say() { printf '%s\n' "$*" >&2; }
die() { say "critical-path: $*"; exit 1; }

case $N in '' | *[!0-9]* | 0) die "N must be a positive integer (got '$N')" ;; esac
read -r -a rtts <<<"$RTTS"
[ ${#rtts[@]} -ge 1 ] || die "RTTS is empty"
for r in "${rtts[@]}"; do
    case $r in 0 | 0ms | 0s | [0-9]*ms | [0-9]*s) ;; *) die "RTTS: '$r' is not 0, NNms or Ns" ;; esac
done

# ------------------------------------------------------------ prerequisites
missing=()
command -v python3 >/dev/null 2>&1 || missing+=("python3 (the report, and the timer when /usr/bin/time is missing)")
if [ -z "${SSOPROBE:-}" ]; then
    command -v cargo >/dev/null 2>&1 || missing+=("cargo, to build the release binary (or set SSOPROBE)")
fi
if [ ${#missing[@]} -gt 0 ]; then
    say "critical-path: missing prerequisites:"
    for m in "${missing[@]}"; do say "  - $m"; done
    exit 2
fi
if [ -z "${SSOPROBE:-}" ]; then
    say "building the release binary ..."
    (cd "$repo" && cargo build --release --quiet) || die "cargo build --release failed"
    SSOPROBE=${CARGO_TARGET_DIR:-$repo/target}/release/ssoprobe
fi
[ -x "$SSOPROBE" ] || die "no ssoprobe binary at $SSOPROBE"

# ------------------------------------------------------------ work dir, cleanup
work=$(mktemp -d "${TMPDIR:-/tmp}/ssoprobe-critical-path.XXXXXX")
case $work in *[[:space:]]*) rmdir "$work"; die "the temp dir path must not contain whitespace: $work" ;; esac
lab_pid=
stop_lab() {
    if [ -n "$lab_pid" ] && kill -0 "$lab_pid" 2>/dev/null; then
        kill -TERM "$lab_pid" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$lab_pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$lab_pid" 2>/dev/null && kill -KILL "$lab_pid" 2>/dev/null
        wait "$lab_pid" 2>/dev/null || true
    fi
    lab_pid=
}
cleanup() {
    local rc=$?
    stop_lab
    if [ "${KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -m 700 "$work/runs"

# ------------------------------------------------------------ the timer
# A python3 wrapper that writes GNU time's four fields from the child's rusage (wait4,
# to the microsecond) and its sampled VmHWM; /usr/bin/time -f '%e %U %S %M' with
# TIMER=gnu (it prints CPU in hundredths of a second: too coarse for a 10 ms run).
if [ "${TIMER:-}" = gnu ] && [ -x /usr/bin/time ] && /usr/bin/time -f '%M' -o /dev/null true 2>/dev/null; then
    timer=gnu
else
    timer=python
    cat >"$work/rusage.py" <<'EOF'
# rusage.py OUT CMD...: runs CMD and writes "%e %U %S %M" (seconds; KiB), as GNU time
# does. CPU: wait4's rusage of the one child, started with posix_spawn (a fork of
# python would charge the child python's copy-on-write faults). Peak memory: the
# child's VmHWM, sampled every 0.5 ms (ru_maxrss would report python's own
# high-water mark, which the child's exec records); it can miss growth in the last
# half millisecond.
import os, sys, threading, time
out, cmd = sys.argv[1], sys.argv[2:]
hwm, done = [0], threading.Event()
def sample(pid):
    while not done.is_set():
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm[0] = max(hwm[0], int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.0005)
t0 = time.monotonic()
pid = os.posix_spawnp(cmd[0], cmd, os.environ)
sampler = threading.Thread(target=sample, args=(pid,), daemon=True)
sampler.start()
_, status, r = os.wait4(pid, 0)
wall = time.monotonic() - t0
done.set()
sampler.join()
with open(out, "w") as f:
    f.write(f"{wall:.6f} {r.ru_utime:.6f} {r.ru_stime:.6f} {hwm[0] or r.ru_maxrss}\n")
sys.exit(os.waitstatus_to_exitcode(status))
EOF
fi

# measure TAG CMD...: runs CMD once. Wall time: $EPOCHREALTIME around it (GNU time)
# or the wrapper's own clock around the child (python). CPU (user+sys): the delta
# of bash's `times` for its waited-for children (GNU time: CMD plus /usr/bin/time
# itself, about 1 ms) or the wrapper's wait4 rusage (python: CMD alone). Peak memory:
# the max RSS of CMD (%M, or its sampled VmHWM).
measure() {
    local tag=$1; shift
    local d=$work/runs/$tag rc=0 t0 t1
    mkdir "$d"
    times >"$d/times0"
    t0=$EPOCHREALTIME
    if [ $timer = gnu ]; then
        /usr/bin/time -f '%e %U %S %M' -o "$d/time" "$@" >"$d/out" 2>"$d/err" || rc=$?
    else
        python3 "$work/rusage.py" "$d/time" "$@" >"$d/out" 2>"$d/err" || rc=$?
    fi
    t1=$EPOCHREALTIME
    times >"$d/times1"
    if [ "$rc" != 0 ]; then
        say "run $tag failed (exit $rc):"; tail -n 20 "$d/out" "$d/err" >&2
        die "aborting: every measured run must succeed"
    fi
    printf '%s %s\n' "$t0" "$t1" >"$d/wall"
}

# ------------------------------------------------------------ one RTT
# start_lab RTT: `ssoprobe lab --rtt RTT` in the background; sets check_flags,
# enroll_flags and passkey from what it prints, as browser-vs-ssoprobe.sh does.
start_lab() {
    local rtt=$1 dir=$work/lab-$1
    mkdir -m 700 "$dir"
    "$SSOPROBE" lab --rtt "$rtt" --dir "$dir" >"$dir.out" 2>"$dir.err" &
    lab_pid=$!
    for _ in $(seq 1 150); do
        grep -q 'Press Ctrl-C to stop' "$dir.out" 2>/dev/null && break
        kill -0 "$lab_pid" 2>/dev/null || { cat "$dir.err" >&2; die "ssoprobe lab --rtt $rtt exited early"; }
        sleep 0.1
    done
    grep -q 'Press Ctrl-C to stop' "$dir.out" || die "ssoprobe lab --rtt $rtt did not come up in 15 s"
    lab_line=$(head -1 "$dir.out")
    local check_line enroll_line
    check_line=$(grep -m1 '^ *ssoprobe check ' "$dir.out" | sed 's/^ *ssoprobe check //') ||
        die "no 'ssoprobe check' line in the lab's output"
    enroll_line=$(grep -m1 '^ *ssoprobe enroll ' "$dir.out" | sed 's/^ *ssoprobe enroll //') ||
        die "no 'ssoprobe enroll' line in the lab's output"
    passkey=$(grep -o -- '--passkey [^ ]*' "$dir.out" | head -1 | cut -d' ' -f2)
    [ -n "$passkey" ] || die "no --passkey FILE in the lab's output"
    read -r -a check_flags <<<"$check_line"
    read -r -a enroll_flags <<<"$enroll_line"
}

run_case() { # CASE TAG
    case $1 in
    login) measure "$2" "$SSOPROBE" check "${check_flags[@]}" --passkey "$passkey" --format json ;;
    anon) measure "$2" "$SSOPROBE" check "${check_flags[@]}" --format json ;;
    esac
}

say "ssoprobe: $SSOPROBE ($("$SSOPROBE" --version 2>/dev/null | head -1)); timer: $timer"
for rtt in "${rtts[@]}"; do
    # A fresh lab for every RTT: a fresh login limiter, nothing carried over.
    start_lab "$rtt"
    say "lab: $lab_line"
    "$SSOPROBE" enroll "${enroll_flags[@]}" >"$work/enroll-$rtt.out" 2>&1 ||
        { cat "$work/enroll-$rtt.out" >&2; die "enrolment failed (rtt $rtt)"; }
    say "  warm-up (not counted) ..."
    run_case login "$rtt-login-0"
    login_used=$EPOCHREALTIME
    run_case anon "$rtt-anon-0"
    # The warm-up took a login token: wait until the bucket is full again, so the
    # measured logins (up to the burst) never meet the limiter.
    wait_s=$(python3 -c "print(f'{max(0.0, $LOGIN_REFILL_S - ($EPOCHREALTIME - $login_used)):.2f}')")
    say "  waiting $wait_s s for Pocket ID's login limiter to refill ..."
    sleep "$wait_s"
    for ((i = 1; i <= N; i++)); do
        # Past the burst, one login per refill period.
        if [ "$i" -gt "$LOGIN_BURST" ]; then sleep "$LOGIN_REFILL_S"; fi
        run_case login "$rtt-login-$i"
        run_case anon "$rtt-anon-$i"
    done
    say "  $N runs of each done"
    stop_lab
done

# ------------------------------------------------------------ report
python3 - "$work/runs" "$N" "$timer" "$RTTS" <<'EOF'
import json, os, re, statistics, sys, time

runs_dir, n, timer, rtts = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split()

def ms(rtt):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)?", rtt)
    v = float(m.group(1))
    return v if m.group(2) == "ms" else v * 1000.0

def bash_times(path):  # `times` second line: children user, children sys
    secs = lambda s: (lambda m: int(m[1]) * 60 + float(m[2]))(re.fullmatch(r"(\d+)m([\d.]+)s", s))
    u, s = open(path).read().split("\n")[1].split()
    return secs(u) + secs(s)

def load(tag):
    d = os.path.join(runs_dir, tag)
    t0, t1 = map(float, open(f"{d}/wall").read().split())
    e, u, s, maxrss = open(f"{d}/time").read().strip().split("\n")[-1].split()
    report = json.loads(open(f"{d}/out").read())
    if timer == "gnu":
        wall = (t1 - t0) * 1000
        cpu = (bash_times(f"{d}/times1") - bash_times(f"{d}/times0")) * 1000
    else:
        wall = float(e) * 1000
        cpu = (float(u) + float(s)) * 1000
    return {"wall": wall, "cpu": cpu, "rss": int(maxrss) / 1024,
            "status": report["status"], "checks": len(report["checks"]), "counts": report["counts"],
            "durations": {c["id"]: c.get("duration_ms", 0) for c in report["checks"]}}

cases = [("login", "full login", 10), ("anon", "anonymous", 5)]
res = {}
for rtt in rtts:
    for c, _, _ in cases:
        res[(rtt, c)] = [load(f"{rtt}-{c}-{i}") for i in range(1, n + 1)]
med = lambda rtt, c, k: statistics.median(r[k] for r in res[(rtt, c)])

print(f"critical path: medians of {n} runs per case and RTT, after 1 warm-up each · "
      f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
print()
print("bound B, in round trips (RTT) of the simulated path:")
print("  full login: B = 10 RTT = 2 (TCP + TLS 1.3 set-up, the 3 hosts at once)")
print("                         + 8 requests (site, team login, authorize, interaction complete,")
print("                           authorize with interaction, callback, /authorized, site)")
print("  anonymous:  B =  5 RTT = 2 (set-up) + 3 requests (site, team login, authorize)")
print("RTTs used = (wall - wall at RTT 0) / RTT: the round trips a run really waits for")
print()
head = f"{'case':<11}{'RTT':>6}{'wall ms':>10}{'B ms':>8}{'wall/B':>8}{'RTTs used':>11}{'CPU ms':>9}{'RSS MB':>8}"
print(head)
print("-" * len(head))
for c, label, b_rtts in cases:
    base = med(rtts[0], c, "wall") if ms(rtts[0]) == 0 else None
    for rtt in rtts:
        r = ms(rtt)
        wall = med(rtt, c, "wall")
        b = b_rtts * r
        ratio = f"{wall / b:.2f}" if r > 0 else "—"
        used = f"{(wall - base) / r:.1f}" if r > 0 and base is not None else "—"
        print(f"{label:<11}{rtt:>6}{wall:>10.1f}{b:>8.0f}{ratio:>8}{used:>11}"
              f"{med(rtt, c, 'cpu'):>9.1f}{med(rtt, c, 'rss'):>8.1f}")
print()
nonzero = [r for r in rtts if ms(r) > 0]
if len(nonzero) >= 2:
    a, b = nonzero[-2], nonzero[-1]
    d = ms(b) - ms(a)
    print(f"slope, in RTTs per run = (wall({b}) - wall({a})) / {d:g} ms:")
    for c, label, b_rtts in cases:
        slope = (med(b, c, "wall") - med(a, c, "wall")) / d
        print(f"  {label:<11} {slope:5.1f} RTT per run (bound {b_rtts})")
    print()
print("what ran (every run of a case alike):")
for c, label, _ in cases:
    kinds = {(r["status"], r["checks"], json.dumps(r["counts"], sort_keys=True))
             for rtt in rtts for r in res[(rtt, c)]}
    for status, checks, counts in sorted(kinds):
        print(f"  {label:<11} {checks} checks, {status} {counts}")
top = max(rtts, key=ms)
if ms(top) > 0:
    # Checks run concurrently: their times overlap and do not add up to the wall time.
    print(f"where the round trips go: each check's own duration at RTT {top}, median, in RTTs")
    for c, label, _ in cases:
        ids = list(res[(top, c)][0]["durations"])
        cells = [f"{i} {statistics.median(r['durations'].get(i, 0) for r in res[(top, c)]) / ms(top):.1f}"
                 for i in ids]
        line, lines = f"  {label:<11}", []
        for cell in cells:
            if len(line) + len(cell) + 2 > 96:
                lines.append(line.rstrip(" ,"))
                line = " " * 13
            line += cell + ", "
        lines.append(line.rstrip(" ,"))
        print("\n".join(lines))
print("per-run wall times (ms):")
for c, label, _ in cases:
    for rtt in rtts:
        print(f"  {label:<11}{rtt:>6}: " + " ".join(f"{r['wall']:.0f}" for r in res[(rtt, c)]))
print(f"CPU: user+sys of the check process; memory: its max RSS; timer: "
      f"{'/usr/bin/time + bash times' if timer == 'gnu' else 'python3 wait4 rusage + sampled VmHWM'}")
EOF
