#!/usr/bin/env bash
# A/B of snapvault binaries on the steps with a disk floor (issue 23.2): first snapshot,
# full restore, check --read-data and re-import under Pictures/YYYY/MM of one library,
# each binary in turn (order rotated per run), with the disk floor of each step measured
# in the same run. Durable and returned wall time, CPU seconds, peak RSS; medians, and per
# step in how many runs each binary beat the first one (paired, for busy machines).
#
#   benches/floor_ab.sh [--runs 3] [--cache cold|warm|both] [--work DIR] [--base DIR]
#                       [--steps first,restore,check,reimport] BINARY...
#
# --base: a corpus folder of benches/corpus.py (DIR/lib + DIR/lib.manifest.json; default
# /var/tmp/snapvault-bench/base, compare.sh's), used read only. The re-imported copy is
# made of hard links (no new data); one repository and one restore target exist at a time,
# so the work folder needs about twice the library's size free.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUNS=3
CACHE=cold
WORK=/var/tmp/snapvault-floor-ab
BASE=/var/tmp/snapvault-bench/base
STEPS=first,restore,check,reimport
USAGE_LINES=2,14p
# shellcheck source=benches/common.sh
. "$HERE/common.sh"

BINS=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) RUNS=${2:?}; shift 2 ;;
        --cache) CACHE=${2:?}; shift 2 ;;
        --work) WORK=${2:?}; shift 2 ;;
        --base) BASE=${2:?}; shift 2 ;;
        --steps) STEPS=${2:?}; shift 2 ;;
        -h|--help) usage 0 ;;
        -*) unknown_argument "$1" ;;
        *) BINS+=("$(realpath "$1")"); shift ;;
    esac
done
runs_ok "$RUNS"
((${#BINS[@]})) || usage 2
case $CACHE in both) MODES=(cold warm) ;; cold|warm) MODES=("$CACHE") ;;
    *) die "--cache must be both, cold or warm" ;; esac
for b in "${BINS[@]}"; do [[ -x $b ]] || die "$b is not an executable"; done
[[ -f $BASE/lib.manifest.json ]] || die "no corpus in $BASE (lib/ and lib.manifest.json)"
[[ -x /usr/bin/time ]] || die "needs /usr/bin/time (apt-get install time)"
wants() { [[ ,$STEPS, == *,$1,* ]]; }

mkdir -p "$WORK"
WORK=$(realpath "$WORK")
LIB=$BASE/lib
lib_bytes=$(du -sb --apparent-size "$LIB" | cut -f1)
avail=$(df -B1 --output=avail "$WORK" | tail -1)
((avail > lib_bytes * 21 / 10)) || die "$WORK has $((avail >> 30)) GiB free; needs about $((lib_bytes * 21 / 10 >> 30)) GiB"
export SNAPVAULT_PASSWORD=${BENCH_PASSWORD:-snapvault-bench-not-a-secret}
unset SNAPVAULT_REPOSITORY SNAPVAULT_PASSWORD_FILE SNAPVAULT_PASSWORD_COMMAND
RESULTS=$WORK/results.tsv
printf 'mode\trun\tbinary\tstep\tdurable\treturned\tcpu\trss_kb\tload\n' >"$RESULTS"
REPO=$WORK/repo

# The re-import layout, as hard links into the library (Pictures/YYYY/MM/name).
PICTURES=$WORK/Pictures
if [[ ! -d $PICTURES ]]; then
    python3 - "$LIB" "$PICTURES" <<'EOF'
import json, os, sys
lib, dest = sys.argv[1:]
for e in json.load(open(lib + ".manifest.json"))["files"]:
    when = e["capture"][0]
    sub = os.path.join(dest, when[:4], when[5:7])
    os.makedirs(sub, exist_ok=True)
    name = os.path.basename(e["path"])
    target, n = os.path.join(sub, name), 1
    while os.path.exists(target):
        target, n = os.path.join(sub, f"{n}-{name}"), n + 1
    os.link(os.path.join(lib, e["path"]), target)
EOF
fi

prepare() { # MODE INPUT...
    local mode=$1
    shift
    if [[ $mode == cold ]]; then
        python3 "$HERE/pagecache.py" evict "$WORK" "$LIB"
    else
        sync
        python3 "$HERE/pagecache.py" warm "$@"
    fi
}

# timed MODE RUN LABEL STEP CMD...: one timed step (durable = until sync -f returns).
timed() {
    local mode=$1 run=$2 label=$3 stepname=$4
    shift 4
    local tf t0 tr t1
    tf=$(mktemp)
    t0=$(date +%s.%N)
    /usr/bin/time -f '%U %S %M' -o "$tf" "$@" >/dev/null || die "$label $stepname failed: $*"
    tr=$(date +%s.%N)
    sync -f "$WORK"
    t1=$(date +%s.%N)
    local u s m
    read -r u s m <"$tf"
    rm -f "$tf"
    python3 -c 'import sys; a = sys.argv[1:]; print("\t".join(a[:4] + [f"{float(a[6]) - float(a[4]):.3f}", f"{float(a[5]) - float(a[4]):.3f}", f"{float(a[7]) + float(a[8]):.2f}", a[9], a[10]]))' \
        "$mode" "$run" "$label" "$stepname" "$t0" "$tr" "$t1" "$u" "$s" "$m" "$(cut -d' ' -f1 /proc/loadavg)" >>"$RESULTS"
    say "  $label $stepname: $(tail -1 "$RESULTS" | cut -f5-8 | tr '\t' ' ')"
}

# floor MODE RUN STEP WRITE_BYTES READ_PATH...: cat of what the step reads while dd
# oflag=direct writes what it stores (as compare.sh measures it).
floor() {
    local mode=$1 run=$2 stepname=$3 wb=$4
    shift 4
    prepare "$mode" "$@"
    local bs=$((16 << 20))
    timed "$mode" "$run" floor "$stepname" sh -c '
        find "$@" -type f -print0 | xargs -0 -r cat >/dev/null & c=$!
        if [ "$0" -gt 0 ]; then dd if=/dev/zero of="$W/floor.tmp" bs=16M count=$0 oflag=direct status=none; fi
        wait $c' $(((wb + bs - 1) / bs)) "$@"
    rm -f "$WORK/floor.tmp"
}
export W=$WORK

say "A/B of ${#BINS[@]} binaries, $RUNS run(s), cache ${MODES[*]}: $(uptime | sed 's/.*load/load/')"
for mode in "${MODES[@]}"; do
    for ((r = 1; r <= RUNS; r++)); do
        n=${#BINS[@]}
        for ((i = 0; i < n; i++)); do
            bin=${BINS[$(((i + r) % n))]}
            label=$(basename "$bin")
            label=$label@$((((i + r) % n) + 1))
            rm -rf "$REPO" "$WORK/cache" "$WORK/target" "$WORK/imp"
            export XDG_CACHE_HOME=$WORK/cache
            "$bin" -q --repo "$REPO" init >/dev/null
            prepare "$mode" "$LIB"
            timed "$mode" "$r" "$label" first "$bin" -q --repo "$REPO" snapshot "$LIB"
            if wants restore; then
                mkdir -p "$WORK/target"
                prepare "$mode" "$REPO"
                timed "$mode" "$r" "$label" restore "$bin" -q --repo "$REPO" restore latest --target "$WORK/target"
                rm -rf "$WORK/target"
            fi
            if wants check; then
                prepare "$mode" "$REPO"
                timed "$mode" "$r" "$label" check "$bin" -q --repo "$REPO" check --read-data
            fi
            if wants reimport; then
                # A new path each time: no parent snapshot to compare with.
                imp=$WORK/imp/$r-$i/Pictures
                mkdir -p "$(dirname "$imp")"
                cp -al "$PICTURES" "$imp"
                prepare "$mode" "$imp"
                timed "$mode" "$r" "$label" reimport "$bin" -q --repo "$REPO" snapshot "$imp"
            fi
        done
        # The floors, on the last binary's repository.
        ! wants first || floor "$mode" "$r" first "$(du -sb --apparent-size "$REPO" | cut -f1)" "$LIB"
        ! wants restore || floor "$mode" "$r" restore "$lib_bytes" "$REPO"
        ! wants check || floor "$mode" "$r" check 0 "$REPO"
        ! wants reimport || floor "$mode" "$r" reimport 0 "$imp"
    done
done
rm -rf "$REPO" "$WORK/cache" "$WORK/target" "$WORK/imp"

python3 - "$RESULTS" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
med = lambda v: statistics.median(v) if v else float("nan")
for mode in dict.fromkeys(r["mode"] for r in rows):
    labels = sorted(dict.fromkeys(r["binary"] for r in rows if r["mode"] == mode and r["binary"] != "floor"), key=lambda l: int(l.rsplit("@", 1)[1]))
    loads = [float(r["load"]) for r in rows if r["mode"] == mode]
    print(f"\n{mode} page cache, medians of {max(int(r['run']) for r in rows if r['mode'] == mode)} run(s), "
          f"load average {min(loads):.1f}–{max(loads):.1f}:\n")
    print("| step | floor s | " + " | ".join(f"{l}: durable s (returned) · CPU s · RSS MiB · ÷ floor" for l in labels) + " |")
    print("|---" * (2 + len(labels)) + "|")
    for step in dict.fromkeys(r["step"] for r in rows):
        sel = lambda l, k: [float(r[k]) for r in rows if r["mode"] == mode and r["binary"] == l and r["step"] == step]
        f = med(sel("floor", "durable"))
        cells = []
        for l in labels:
            d = med(sel(l, "durable"))
            cells.append(f"{d:.2f} ({med(sel(l, 'returned')):.2f}) · {med(sel(l, 'cpu')):.2f} · "
                         f"{max(sel(l, 'rss_kb') or [0]) / 1024:.0f} · {d / f:.2f}")
        print(f"| {step} | {f:.2f} | " + " | ".join(cells) + " |")
    # Paired: in how many runs each binary beat the first (same run, same disk state):
    # on a busy machine the medians mislead, the pairs less so.
    for l in labels[1:]:
        for step in dict.fromkeys(r["step"] for r in rows if r["mode"] == mode and r["binary"] == l):
            pairs = []
            for run in sorted({r["run"] for r in rows if r["mode"] == mode}, key=int):
                d = {r["binary"]: float(r["durable"]) for r in rows
                     if r["mode"] == mode and r["run"] == run and r["step"] == step}
                if labels[0] in d and l in d:
                    pairs.append(d[l] - d[labels[0]])
            if pairs:
                print(f"paired {step}: {l} faster than {labels[0]} in {sum(x < 0 for x in pairs)} of "
                      f"{len(pairs)} runs, median difference {med(pairs):+.2f} s")
EOF
say "raw rows: $RESULTS"
