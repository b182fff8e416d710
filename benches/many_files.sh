#!/usr/bin/env bash
# Many small files (issue 23.4): first and no-change snapshot, `ls`, `restore --dry-run`,
# `check` of FILES small files (corpus.py small, 500 a folder), snapvault vs restic, rustic
# and bupstash. Per step: wall (durable: sync inside the timing), CPU seconds and peak RSS
# from /usr/bin/time -v, and the load average. Warm page cache.
#
#   benches/many_files.sh [--files 1000000] [--min-size 1024] [--max-size 16384]
#                         [--tools snapvault,restic,rustic,bupstash] [--runs 1] [--clean]
#
# WORK (default /var/tmp/snapvault-many) holds the files (kept for the next run unless
# --clean) and one repository per tool (removed at the end);
# a million files of 16-256 bytes (--min-size 16 --max-size 256) take about 4.3 GB
# there (one 4 KiB block each) plus one repository at a time; the script refuses to
# generate them with less than 12 GiB left after that. SNAPVAULT (default target/release/snapvault);
# BENCH_TOOLS (default /var/tmp/snapvault-bench/tools) holds rustic and bupstash;
# SNAPVAULT_BASE, a second snapvault binary whose no-change snapshot, `ls` and
# `restore --dry-run` run on the same repository too (tool `snapvault-base`).
# bupstash has no `restore --dry-run` and no check without data (not measured); restic
# only from 0.17 on has `restore --dry-run`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
USAGE_LINES=2,9p
# shellcheck source=benches/common.sh
. "$HERE/common.sh"

COUNT=1000000
MIN_SIZE=1024
MAX_SIZE=16384
TOOLS=snapvault,restic,rustic,bupstash
RUNS=1
CLEAN=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --files | --count) COUNT=$2; shift 2 ;;
        --min-size) MIN_SIZE=$2; shift 2 ;;
        --max-size) MAX_SIZE=$2; shift 2 ;;
        --tools) TOOLS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --clean) CLEAN=1; shift ;;
        -h | --help) usage 0 ;;
        *) unknown_argument "$1" ;;
    esac
done
runs_ok "$RUNS"
[[ $COUNT =~ ^[1-9][0-9]*$ ]] || die "--files must be a positive integer"
[[ $MIN_SIZE =~ ^[1-9][0-9]*$ && $MAX_SIZE =~ ^[1-9][0-9]*$ ]] && ((MIN_SIZE < MAX_SIZE)) \
    || die "--min-size and --max-size must be positive integers, min < max"
WORK=${WORK:-/var/tmp/snapvault-many}
SNAPVAULT=${SNAPVAULT:-$ROOT/target/release/snapvault}
[[ -x $SNAPVAULT ]] || die "no snapvault binary at $SNAPVAULT (cargo build --release)"
export PATH=${BENCH_TOOLS:-/var/tmp/snapvault-bench/tools}/bin:$PATH
export BENCH_PASSWORD=${BENCH_PASSWORD:-snapvault-bench-not-a-secret}
export SNAPVAULT_PASSWORD=$BENCH_PASSWORD RESTIC_PASSWORD=$BENCH_PASSWORD RUSTIC_PASSWORD=$BENCH_PASSWORD
unset SNAPVAULT_REPOSITORY RESTIC_REPOSITORY RUSTIC_REPOSITORY BUPSTASH_REPOSITORY BUPSTASH_KEY
mkdir -p "$WORK"
LIB=$WORK/small-$COUNT-$MIN_SIZE-$MAX_SIZE
if [[ ! -f $LIB.done ]]; then
    # Room: a 4 KiB block per file at least, the data again for the one repository on
    # the disk at a time, 12 GiB spare.
    avail=$(df -B1 --output=avail "$WORK" | tail -1)
    block=$(((MAX_SIZE + 4095) / 4096 * 4096))
    need=$((COUNT * (block + MAX_SIZE) + (12 << 30)))
    ((avail > need)) || die "$WORK has $((avail >> 30)) GiB free; --files $COUNT needs about $((need >> 30)) GiB (12 of them left for others)"
    rm -rf "$LIB"
    say "generating $COUNT files of $MIN_SIZE-$MAX_SIZE bytes into $LIB"
    python3 "$HERE/corpus.py" small "$LIB" --count "$COUNT" --seed 1 \
        --min-size "$MIN_SIZE" --max-size "$MAX_SIZE" >&2
    touch "$LIB.done"
fi
LOG=$WORK/tools.log
: >"$LOG"

# measure TOOL STEP CMD...: one timed step; prints a row.
measure() {
    local tool=$1 step=$2
    shift 2
    local tf t0 t1 status=ok
    tf=$(mktemp)
    echo "=== $tool $step: $*" >>"$LOG"
    t0=$(date +%s.%N)
    /usr/bin/time -v -o "$tf" "$@" >>"$LOG" 2>&1 || status=FAILED
    sync -f "$WORK"
    t1=$(date +%s.%N)
    python3 - "$tool" "$step" "$t0" "$t1" "$tf" "$status" "$(cut -d' ' -f1 /proc/loadavg)" <<'EOF'
import sys
tool, step, t0, t1, tf, status, load = sys.argv[1:]
v = {}
for line in open(tf):
    k, _, x = line.strip().rpartition(": ")
    v[k] = x
u = float(v.get("User time (seconds)", 0)); s = float(v.get("System time (seconds)", 0))
rss = int(v.get("Maximum resident set size (kbytes)", 0)) / 1024
print(f"{tool}\t{step}\t{float(t1) - float(t0):.2f}\t{u + s:.2f}\t{rss:.0f}\t{load}\t{status}")
EOF
    rm -f "$tf"
}

say "$COUNT files of $MIN_SIZE-$MAX_SIZE bytes; $(restic version | head -1); $(rustic --version 2>/dev/null || echo 'no rustic'); $(bupstash version 2>/dev/null || echo 'no bupstash')"
printf 'tool\tstep\tdurable_s\tcpu_s\trss_mib\tload\tstatus\n'
IFS=, read -r -a TL <<<"$TOOLS"
for ((r = 1; r <= RUNS; r++)); do
    for tool in "${TL[@]}"; do
        repo=$WORK/repo-$tool
        rm -rf "$repo" "$WORK/cache-$tool" "$WORK/t"
        mkdir -p "$WORK/t"
        case $tool in
            snapvault)
                c=(env XDG_CACHE_HOME="$WORK/cache-$tool" "$SNAPVAULT" -q --repo "$repo")
                "${c[@]}" init >>"$LOG" 2>&1
                measure "$tool" first "${c[@]}" snapshot "$LIB"
                measure "$tool" no-change "${c[@]}" snapshot "$LIB"
                measure "$tool" ls "${c[@]}" ls latest
                measure "$tool" restore-dry-run "${c[@]}" restore --dry-run --target "$WORK/t" latest
                measure "$tool" check "${c[@]}" check
                # A baseline binary (SNAPVAULT_BASE) on the same repository, for A/B.
                if [[ -n ${SNAPVAULT_BASE:-} ]]; then
                    b=(env XDG_CACHE_HOME="$WORK/cache-$tool" "$SNAPVAULT_BASE" -q --repo "$repo")
                    measure "$tool-base" no-change "${b[@]}" snapshot "$LIB"
                    measure "$tool-base" ls "${b[@]}" ls latest
                    measure "$tool-base" restore-dry-run "${b[@]}" restore --dry-run --target "$WORK/t" latest
                fi ;;
            restic)
                c=(restic -q -r "$repo" --cache-dir "$WORK/cache-$tool")
                "${c[@]}" init --repository-version 2 >>"$LOG" 2>&1
                measure "$tool" first "${c[@]}" backup "$LIB"
                measure "$tool" no-change "${c[@]}" backup "$LIB"
                measure "$tool" ls "${c[@]}" ls latest
                # restic has `restore --dry-run` only from 0.17 on.
                if "${c[@]}" restore --help 2>/dev/null | grep -q -- --dry-run; then
                    measure "$tool" restore-dry-run "${c[@]}" restore --dry-run --target "$WORK/t" latest
                fi
                measure "$tool" check "${c[@]}" check ;;
            bupstash)
                command -v bupstash >/dev/null || die "bupstash is missing (benches/compare.sh builds it)"
                mkdir -p "$WORK/cache-$tool"
                c=(env BUPSTASH_REPOSITORY="$repo" BUPSTASH_KEY="$WORK/cache-$tool/key"
                    XDG_CACHE_HOME="$WORK/cache-$tool" bupstash)
                "${c[@]}" new-key -o "$WORK/cache-$tool/key" >>"$LOG" 2>&1
                "${c[@]}" init >>"$LOG" 2>&1
                measure "$tool" first "${c[@]}" put -q name=first "$LIB"
                measure "$tool" no-change "${c[@]}" put -q name=second "$LIB"
                measure "$tool" ls "${c[@]}" list-contents name=second ;;
            rustic)
                command -v rustic >/dev/null || die "rustic is missing (benches/compare.sh builds it)"
                c=(rustic --no-progress -r "$repo" --cache-dir "$WORK/cache-$tool")
                "${c[@]}" init >>"$LOG" 2>&1
                measure "$tool" first "${c[@]}" backup "$LIB"
                measure "$tool" no-change "${c[@]}" backup "$LIB"
                measure "$tool" ls "${c[@]}" ls latest
                measure "$tool" restore-dry-run "${c[@]}" restore --dry-run latest "$WORK/t"
                measure "$tool" check "${c[@]}" check ;;
            *) die "unknown tool $tool" ;;
        esac
        # One repository on the disk at a time.
        rm -rf "$repo" "$WORK/cache-$tool" "$WORK/t"
    done
done
rm -rf "$WORK"/repo-* "$WORK"/cache-* "$WORK/t"
if ((CLEAN)); then
    rm -rf "$LIB" "$LIB.done"
fi
