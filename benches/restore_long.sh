#!/usr/bin/env bash
# Restore of one long video: a single generated file (incompressible), snapshotted once,
# then restored cold (page cache evicted) RUNS times by each snapvault binary given. Shows
# whether the file is spread over the cores: CPU seconds ÷ wall seconds is the number of
# cores kept busy. Durable time (sync inside the timed step) and peak RSS; restore verifies
# every blob against its id, and the script compares the restored file with cmp.
#
#   benches/restore_long.sh [--size 1536MiB] [--runs 3] [--cache cold|warm] BINARY...
#
# cold: the repository and the file are evicted from the page cache before each restore;
# warm: the repository is read once first (the disk's read time out of the way).
# WORK (default /var/tmp/snapvault-long) holds the file, one repository (made by the first
# binary) and the restore target (TARGET, default WORK/t; TARGET=/dev/shm/t takes the
# target disk out of the measure, leaving the CPU's part); needs ~3× the size free.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
USAGE_LINES=2,15p
# shellcheck source=benches/common.sh
. "$HERE/common.sh"

SIZE=1536MiB
RUNS=3
CACHE=cold
while [[ $# -gt 0 ]]; do
    case $1 in
        --size) SIZE=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --cache) CACHE=$2; shift 2 ;;
        -h | --help) usage 0 ;;
        *) break ;;
    esac
done
[[ $# -ge 1 ]] || usage 1
runs_ok "$RUNS"
[[ $CACHE == cold || $CACHE == warm ]] || die "--cache must be cold or warm"
BYTES=$(size_bytes "$SIZE")
WORK=${WORK:-/var/tmp/snapvault-long}
export SNAPVAULT_PASSWORD=${BENCH_PASSWORD:-snapvault-bench-not-a-secret}
mkdir -p "$WORK/src"
SRC=$WORK/src/long.mov
if [[ ! -f $SRC || $(stat -c %s "$SRC") != "$BYTES" ]]; then
    say "generating $SRC ($SIZE)"
    head -c "$BYTES" /dev/urandom >"$SRC"
fi
T=${TARGET:-$WORK/t}
REPO=$WORK/repo
if [[ ! -f $REPO/config ]]; then
    rm -rf "$REPO"
    "$1" -q --repo "$REPO" init
    "$1" -q --repo "$REPO" snapshot "$WORK/src"
fi
printf 'cache\tbinary\trun\tdurable_s\tuser_s\tsys_s\tcores\trss_kib\tload\n'
for bin in "$@"; do
    for ((r = 1; r <= RUNS; r++)); do
        rm -rf "$T"
        mkdir -p "$T"
        python3 "$HERE/pagecache.py" evict "$REPO" "$SRC"
        [[ $CACHE == warm ]] && python3 "$HERE/pagecache.py" warm "$REPO"
        tf=$(mktemp)
        t0=$(date +%s.%N)
        /usr/bin/time -v -o "$tf" "$bin" -q --repo "$REPO" restore latest --target "$T"
        sync -f "$T"
        t1=$(date +%s.%N)
        got=$(find "$T" -name long.mov -type f -print -quit)
        cmp "$SRC" "$got" || die "restored file differs ($bin)"
        python3 - "$CACHE" "$bin" "$r" "$t0" "$t1" "$tf" "$(cut -d' ' -f1 /proc/loadavg)" <<'EOF'
import sys
cache, bin, r, t0, t1, tf, load = sys.argv[1:]
v = {}
for line in open(tf):
    k, _, x = line.strip().rpartition(": ")
    v[k] = x
wall = float(t1) - float(t0)
u, s = float(v["User time (seconds)"]), float(v["System time (seconds)"])
print(f"{cache}\t{bin}\t{r}\t{wall:.2f}\t{u:.2f}\t{s:.2f}\t{(u + s) / wall:.2f}\t{v['Maximum resident set size (kbytes)']}\t{load}")
EOF
        rm -f "$tf"
        rm -rf "$T"
    done
done
