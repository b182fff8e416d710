#!/usr/bin/env bash
# Many small files (issue 23.4): first and no-change snapshot, `ls`, `restore --dry-run`,
# `check` of COUNT small files (corpus.py small: 1–16 KiB each, 500 a folder), snapvault vs
# restic (and rustic when installed). Per step: wall (durable: sync inside the timing), CPU
# seconds and peak RSS from /usr/bin/time -v, and the load average. Warm page cache.
#
#   benches/many_files.sh [--count 1000000] [--tools snapvault,restic,rustic] [--runs 1]
#
# WORK (default /var/tmp/snapvault-many) holds the files (≈ 8.5 KiB each on average) and
# one repository per tool. SNAPVAULT (default target/release/snapvault). The 100,000-photo
# catalog half of 23.4 (`photos --date`) is not in this script yet.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
USAGE_LINES=2,11p
# shellcheck source=benches/common.sh
. "$HERE/common.sh"

COUNT=1000000
TOOLS=snapvault,restic
RUNS=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --count) COUNT=$2; shift 2 ;;
        --tools) TOOLS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        -h | --help) usage 0 ;;
        *) unknown_argument "$1" ;;
    esac
done
runs_ok "$RUNS"
[[ $COUNT =~ ^[1-9][0-9]*$ ]] || die "--count must be a positive integer"
WORK=${WORK:-/var/tmp/snapvault-many}
SNAPVAULT=${SNAPVAULT:-$ROOT/target/release/snapvault}
[[ -x $SNAPVAULT ]] || die "no snapvault binary at $SNAPVAULT (cargo build --release)"
export PATH=/var/tmp/snapvault-bench/tools/bin:$PATH
export BENCH_PASSWORD=${BENCH_PASSWORD:-snapvault-bench-not-a-secret}
export SNAPVAULT_PASSWORD=$BENCH_PASSWORD RESTIC_PASSWORD=$BENCH_PASSWORD RUSTIC_PASSWORD=$BENCH_PASSWORD
LIB=$WORK/small-$COUNT
if [[ ! -f $LIB.done ]]; then
    rm -rf "$LIB"
    say "generating $COUNT small files into $LIB"
    python3 "$HERE/corpus.py" small "$LIB" --count "$COUNT" --seed 1 >&2
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
                measure "$tool" check "${c[@]}" check ;;
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
    done
done
