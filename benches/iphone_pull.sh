#!/usr/bin/env bash
# How fast `snapvault snapshot iphone` pulls a library from the emulated phone
# (snapvault-fakephone), next to the link's speed and to a plain folder snapshot of the same
# files. See docs/benchmarks.md ("Pulling from an iPhone").
#
#   benches/iphone_pull.sh [--size 500MiB] [--runs 3] [--rate 35000000] [--latency-ms 1]
#                          [--work /var/tmp/snapvault-iphone-bench] [--seed 1] [--keep]
#
# Cases, each into a fresh encrypted repository, page cache warm (the library is read once
# before every step), interleaved per run:
#   link    snapshot iphone, phone with --bytes-per-sec RATE --latency-ms MS (a USB 2 link)
#   free    snapshot iphone, phone without limits (loopback TCP)
#   unix    the same with usbmuxd on a Unix socket (where the system's listens)
#   folder  snapshot LIB/DCIM, the same files from the local disk
# For the phone cases both the whole command's time and the pull's (the phone's --report:
# from the first to the last reply carrying file data) are taken. Prints the medians as a
# Markdown table (and each run on stderr).
#
# Environment: SNAPVAULT and SNAPVAULT_FAKEPHONE (built binaries; default: cargo build
# --release of both), BENCH_PASSWORD.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

SIZE=500MiB
RUNS=3
RATE=35000000
LATENCY=1
WORK=/var/tmp/snapvault-iphone-bench
SEED=1
KEEP=0

USAGE_LINES=2,18p
# shellcheck source=benches/common.sh
. "$HERE/common.sh"

while [[ $# -gt 0 ]]; do
    case $1 in
        --size) SIZE=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --rate) RATE=${2:?}; shift 2 ;;
        --latency-ms) LATENCY=${2:?}; shift 2 ;;
        --work) WORK=${2:?}; shift 2 ;;
        --seed) SEED=${2:?}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage 0 ;;
        *) unknown_argument "$1" ;;
    esac
done
runs_ok "$RUNS"
[[ $RATE =~ ^[1-9][0-9]*$ ]] || die "--rate must be bytes per second"
SIZE_BYTES=$(size_bytes "$SIZE") || exit 1

if [[ -z ${SNAPVAULT:-} || -z ${SNAPVAULT_FAKEPHONE:-} ]]; then
    say "building snapvault and snapvault-fakephone (release)"
    (cd "$ROOT" && cargo build --release -q -p snapvault -p snapvault-fakephone)
    TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
    SNAPVAULT=${SNAPVAULT:-$TARGET/release/snapvault}
    SNAPVAULT_FAKEPHONE=${SNAPVAULT_FAKEPHONE:-$TARGET/release/snapvault-fakephone}
fi
[[ -x $SNAPVAULT && -x $SNAPVAULT_FAKEPHONE ]] || die "no binaries at $SNAPVAULT / $SNAPVAULT_FAKEPHONE"

mkdir -p "$WORK"
WORK=$(realpath "$WORK")
avail=$(df -B1 --output=avail "$WORK" | tail -1)
((avail > SIZE_BYTES * 3)) || die "$WORK has $((avail >> 20)) MiB free; need about $((SIZE_BYTES * 3 >> 20)) MiB"
export SNAPVAULT_PASSWORD=${BENCH_PASSWORD:-snapvault-bench-not-a-secret}
unset SNAPVAULT_REPOSITORY SNAPVAULT_PASSWORD_FILE SNAPVAULT_PASSWORD_COMMAND USBMUXD_SOCKET_ADDRESS

LIB=$WORK/lib
STAMP="$SIZE_BYTES $SEED"
if [[ ! -f $WORK/lib.stamp || $(cat "$WORK/lib.stamp") != "$STAMP" ]]; then
    say "generating a $SIZE library (seed $SEED)"
    rm -rf "$LIB" "$WORK/lib.manifest.json"
    python3 "$HERE/corpus.py" generate "$LIB" --size "$SIZE" --seed "$SEED" \
        --manifest "$WORK/lib.manifest.json" >&2
    echo "$STAMP" >"$WORK/lib.stamp"
fi
BYTES=$(find "$LIB/DCIM" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
FILES=$(find "$LIB/DCIM" -type f | wc -l)

PHONE_PID=
stop_phone() {
    if [[ -n $PHONE_PID ]]; then
        kill "$PHONE_PID" 2>/dev/null || true
        wait "$PHONE_PID" 2>/dev/null || true
        PHONE_PID=
    fi
}

# Seconds from the first to the last file data reply of the stopped phone's AFC connection
# that served the most.
pull_secs() {
    awk '/^afc: / && $2 > n { n = $2; s = $6 } END { print s }' "$WORK/phone.err"
}
cleanup() {
    stop_phone
    rm -rf "$WORK/repo" "$WORK/usbmuxd.sock"
    ((KEEP)) || rm -rf "$LIB" "$WORK/lib.stamp" "$WORK/lib.manifest.json"
}
trap cleanup EXIT

# Starts the phone with extra switches; sets USBMUXD_SOCKET_ADDRESS.
start_phone() {
    local out=$WORK/phone.out line
    rm -f "$out"
    "$SNAPVAULT_FAKEPHONE" --library "$LIB" --report "$@" >"$out" 2>"$WORK/phone.err" &
    PHONE_PID=$!
    for _ in $(seq 200); do
        line=$(grep -m1 '^USBMUXD_SOCKET_ADDRESS=' "$out" 2>/dev/null || true)
        if [[ -n $line ]]; then
            export "$line"
            return
        fi
        sleep 0.05
    done
    die "the fake phone did not start: $(cat "$out")"
}

warm() { find "$LIB/DCIM" -type f -exec cat {} + >/dev/null; }

# One timed snapshot into a fresh repository; prints seconds.
timed_snapshot() {
    rm -rf "$WORK/repo"
    "$SNAPVAULT" -q --repo "$WORK/repo" init >/dev/null
    warm
    sync
    local t0 t1
    t0=$(date +%s.%N)
    "$SNAPVAULT" -q --repo "$WORK/repo" snapshot "$@" >/dev/null
    t1=$(date +%s.%N)
    python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f}")' "$t0" "$t1"
}

LINK=() LINK_PULL=() FREE=() FREE_PULL=() UNIX=() FOLDER=()
for ((r = 1; r <= RUNS; r++)); do
    start_phone --bytes-per-sec "$RATE" --latency-ms "$LATENCY"
    LINK+=("$(timed_snapshot iphone)")
    stop_phone
    LINK_PULL+=("$(pull_secs)")
    start_phone
    FREE+=("$(timed_snapshot iphone)")
    stop_phone
    FREE_PULL+=("$(pull_secs)")
    rm -f "$WORK/usbmuxd.sock"
    start_phone --socket "$WORK/usbmuxd.sock"
    UNIX+=("$(timed_snapshot iphone)")
    stop_phone
    FOLDER+=("$(timed_snapshot "$LIB/DCIM")")
    say "run $r: link ${LINK[-1]} s (pull ${LINK_PULL[-1]} s), free ${FREE[-1]} s" \
        "(pull ${FREE_PULL[-1]} s), unix ${UNIX[-1]} s, folder ${FOLDER[-1]} s" \
        "(load $(cut -d' ' -f1-3 /proc/loadavg))"
done

python3 - "$BYTES" "$FILES" "$RATE" "$LATENCY" "${LINK[*]}" "${LINK_PULL[*]}" "${FREE[*]}" \
    "${FREE_PULL[*]}" "${UNIX[*]}" "${FOLDER[*]}" <<'EOF'
import statistics, sys
nbytes, files, rate, latency = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
keys = ("link", "link_pull", "free", "free_pull", "unix", "folder")
runs = {k: [float(x) for x in v.split()] for k, v in zip(keys, sys.argv[5:11])}
med = {k: statistics.median(v) for k, v in runs.items()}
mb = lambda s: nbytes / s / 1e6
link = rate / 1e6
print(f"{files} files, {nbytes / 1e6:.1f} MB; medians of {len(runs['link'])} runs (min–max)\n")
print("| case | time, s | MB/s | target | |")
print("|---|---|---|---|---|")
def row(name, k, target="", ok=None):
    v = runs[k]
    mark = "" if ok is None else ("met" if ok else "missed")
    print(f"| {name} | {med[k]:.2f} ({min(v):.2f}–{max(v):.2f}) | {mb(med[k]):.1f} | {target} | {mark} |")
share = lambda k: mb(med[k]) / link
row(f"`snapshot iphone`, link {link:g} MB/s + {latency} ms per reply: the pull", "link_pull",
    f"≥ 95 % of {link:g} MB/s: {100 * share('link_pull'):.1f} %", share("link_pull") >= 0.95)
row("… the whole command", "link", f"{100 * share('link'):.1f} % of {link:g} MB/s")
free_share = med["folder"] / med["free"]
row("`snapshot iphone`, no limit (loopback)", "free",
    f"≥ 0.9 × folder: {free_share:.2f}", free_share >= 0.9)
row("… the pull", "free_pull")
row("`snapshot iphone`, no limit, usbmuxd on a Unix socket", "unix",
    f"{med['folder'] / med['unix']:.2f} × folder")
row("`snapshot DCIM` (local folder)", "folder")
EOF
