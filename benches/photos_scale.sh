#!/usr/bin/env bash
# A catalog of many photos (issue 23.4): COUNT tiny HEIC/JPEG stills with EXIF capture
# dates (corpus.py photos: 1–3 KiB each, DCIM/1nnAPPLE folders of 1,000, 2016–2025), one
# fresh repository per tool and run. Steps: first snapshot, no-change snapshot, one month
# of photos (snapvault `photos --date MONTH`; the peers have no capture dates, so their
# closest equivalent is the files whose mtime falls in that month — the generator sets
# each mtime to the capture's wall clock), and snapvault's `restore --date MONTH
# --dry-run`, `photos --date` with the catalog rebuilt from the repository, and `check`.
# Per step: durable wall (sync inside), CPU seconds and peak RSS (/usr/bin/time -v, the
# filter of a pipe included), the load average, and how many files the step found.
#
#   benches/photos_scale.sh [--count 100000] [--tools snapvault,restic,rustic,bupstash]
#                           [--runs 3] [--month 2020-07]
#
# The month step, per tool:
#   snapvault  photos --date MONTH --json          (every snapshot, capture date)
# The peers look in the newest snapshot only (less work than every snapshot).
#   restic     find --snapshot latest --oldest FIRST --newest LAST '*' (mtime, TZ=UTC)
#   rustic     ls -l latest | awk (month and year columns, TZ=UTC)
#   bupstash   list-contents --format jsonl1 name=… | awk (mtime field)
# WORK (default /var/tmp/snapvault-scale) holds the library and the repositories;
# SNAPVAULT (default target/release/snapvault); BENCH_TOOLS (default
# /var/tmp/snapvault-bench/tools: rustic and bupstash in its bin/).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
USAGE_LINES=2,22p
# shellcheck source=benches/common.sh
. "$HERE/common.sh"

COUNT=100000
TOOLS=snapvault,restic,rustic,bupstash
RUNS=3
MONTH=2020-07
while [[ $# -gt 0 ]]; do
    case $1 in
        --count) COUNT=$2; shift 2 ;;
        --tools) TOOLS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --month) MONTH=$2; shift 2 ;;
        -h | --help) usage 0 ;;
        *) unknown_argument "$1" ;;
    esac
done
runs_ok "$RUNS"
[[ $COUNT =~ ^[1-9][0-9]*$ ]] || die "--count must be a positive integer"
[[ $MONTH =~ ^20(1[6-9]|2[0-5])-(0[1-9]|1[0-2])$ ]] || die "--month must be YYYY-MM in 2016..2025"
WORK=${WORK:-/var/tmp/snapvault-scale}
SNAPVAULT=${SNAPVAULT:-$ROOT/target/release/snapvault}
[[ -x $SNAPVAULT ]] || die "no snapvault binary at $SNAPVAULT (cargo build --release)"
export PATH=${BENCH_TOOLS:-/var/tmp/snapvault-bench/tools}/bin:$PATH
export TZ=UTC
export BENCH_PASSWORD=${BENCH_PASSWORD:-snapvault-bench-not-a-secret}
export SNAPVAULT_PASSWORD=$BENCH_PASSWORD RESTIC_PASSWORD=$BENCH_PASSWORD RUSTIC_PASSWORD=$BENCH_PASSWORD
mkdir -p "$WORK"
LIB=$WORK/photos-$COUNT
if [[ ! -f $LIB.done ]]; then
    rm -rf "$LIB"
    say "generating $COUNT photos into $LIB"
    python3 "$HERE/corpus.py" photos "$LIB" --count "$COUNT" --seed 1 >&2
    touch "$LIB.done"
fi
WANT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["months"].get(sys.argv[2], 0))' "$LIB.photos.json" "$MONTH")
# The month as mtimes (UTC): first and last second, and the same as epoch seconds.
Y=${MONTH%-*}
M=${MONTH#*-}
FIRST="$MONTH-01 00:00:00"
LO=$(date -u -d "$FIRST" +%s)
if [[ $M == 12 ]]; then NEXT="$((Y + 1))-01-01"; else NEXT="$Y-$(printf %02d $((10#$M + 1)))-01"; fi
HI=$(($(date -u -d "$NEXT 00:00:00" +%s) - 1))
LAST=$(date -u -d "@$HI" '+%Y-%m-%d %H:%M:%S')
MON=$(LC_ALL=C date -u -d "$FIRST" +%b)
LOG=$WORK/photos-tools.log
: >"$LOG"

# measure TOOL STEP CMD...: one timed step; prints a row. The step's stdout goes to
# $WORK/out; FOUND (set by the caller after it) counts what it found.
measure() {
    local tool=$1 step=$2
    shift 2
    local tf t0 t1 status=ok
    tf=$(mktemp)
    echo "=== $tool $step: $*" >>"$LOG"
    t0=$(date +%s.%N)
    /usr/bin/time -v -o "$tf" "$@" >"$WORK/out" 2>>"$LOG" || status=FAILED
    sync -f "$WORK"
    t1=$(date +%s.%N)
    python3 - "$tool" "$step" "$t0" "$t1" "$tf" "$status" "$(cut -d' ' -f1 /proc/loadavg)" "$r" <<'EOF'
import sys
tool, step, t0, t1, tf, status, load, run = sys.argv[1:]
v = {}
for line in open(tf):
    k, _, x = line.strip().rpartition(": ")
    v[k] = x
u = float(v.get("User time (seconds)", 0)); s = float(v.get("System time (seconds)", 0))
rss = int(v.get("Maximum resident set size (kbytes)", 0)) / 1024
print(f"{run}\t{tool}\t{step}\t{float(t1) - float(t0):.2f}\t{u + s:.2f}\t{rss:.0f}\t{load}\t{status}", end="")
EOF
    rm -f "$tf"
}
# found N: ends the row with what the step found (and whether it is the month's count).
found() {
    local n=$1 mark=""
    [[ -n ${2:-} && $n != "$2" ]] && mark=" (expected $2)"
    printf '\t%s%s\n' "$n" "$mark"
}

say "$COUNT photos, month $MONTH: $WANT photos; TZ=UTC; $(uptime)"
RESULTS=$WORK/photos-results.tsv
exec 3>&1 >"$RESULTS"
printf 'run\ttool\tstep\tdurable_s\tcpu_s\trss_mib\tload\tstatus\tfound\n'
IFS=, read -r -a TL <<<"$TOOLS"
for ((r = 1; r <= RUNS; r++)); do
    for tool in "${TL[@]}"; do
        repo=$WORK/repo-$tool
        cache=$WORK/cache-$tool
        rm -rf "$repo" "$cache" "$WORK/t"
        mkdir -p "$WORK/t" "$cache"
        case $tool in
            snapvault)
                c=(env XDG_CACHE_HOME="$cache" "$SNAPVAULT" -q --repo "$repo")
                "${c[@]}" init >>"$LOG" 2>&1
                measure "$tool" first "${c[@]}" snapshot "$LIB"; found "-"
                measure "$tool" no-change "${c[@]}" snapshot "$LIB"; found "-"
                measure "$tool" month "${c[@]}" photos --date "$MONTH" --json
                found "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$WORK/out")" "$WANT"
                measure "$tool" restore-month-dry-run "${c[@]}" restore --date "$MONTH" --dry-run --target "$WORK/t"
                found "-"
                find "$cache" -name 'catalog.sqlite*' -delete
                measure "$tool" month-new-catalog "${c[@]}" photos --date "$MONTH" --json
                found "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$WORK/out")" "$WANT"
                measure "$tool" check "${c[@]}" check; found "-" ;;
            restic)
                c=(restic -q -r "$repo" --cache-dir "$cache")
                "${c[@]}" init --repository-version 2 >>"$LOG" 2>&1
                measure "$tool" first "${c[@]}" backup "$LIB"; found "-"
                measure "$tool" no-change "${c[@]}" backup "$LIB"; found "-"
                measure "$tool" month "${c[@]}" find --snapshot latest --oldest "$FIRST" --newest "$LAST" '*'
                found "$(grep -c '/IMG_' "$WORK/out" || true)" "$WANT"
                measure "$tool" check "${c[@]}" check; found "-" ;;
            rustic)
                command -v rustic >/dev/null || die "rustic is missing (benches/compare.sh builds it)"
                c=(rustic --no-progress -r "$repo" --cache-dir "$cache")
                "${c[@]}" init >>"$LOG" 2>&1
                measure "$tool" first "${c[@]}" backup "$LIB"; found "-"
                measure "$tool" no-change "${c[@]}" backup "$LIB"; found "-"
                measure "$tool" month sh -c 'm=$1 y=$2; shift 2; "$@" ls -l latest | awk -v m="$m" -v y="$y" '\''$1 ~ /^-/ && $6 == m && $7 == y'\' sh "$MON" "$Y" "${c[@]}"
                found "$(grep -c '/IMG_' "$WORK/out" || true)" "$WANT"
                measure "$tool" check "${c[@]}" check; found "-" ;;
            bupstash)
                command -v bupstash >/dev/null || die "bupstash is missing (benches/compare.sh builds it)"
                export BUPSTASH_REPOSITORY=$repo BUPSTASH_KEY=$cache/key XDG_CACHE_HOME=$cache
                { bupstash new-key -o "$BUPSTASH_KEY" && bupstash init; } >>"$LOG" 2>&1
                measure "$tool" first bupstash put -q "name=photos-1" "$LIB"; found "-"
                measure "$tool" no-change bupstash put -q "name=photos-2" "$LIB"; found "-"
                measure "$tool" month sh -c 'bupstash list-contents --format jsonl1 name=photos-2 | awk -F"\"mtime\":" -v lo="$1" -v hi="$2" '\''{ split($2, a, ","); if (a[1] + 0 >= lo && a[1] + 0 <= hi) print }'\' sh "$LO" "$HI"
                found "$(grep -c '/IMG_' "$WORK/out" || true)" "$WANT"
                unset BUPSTASH_REPOSITORY BUPSTASH_KEY XDG_CACHE_HOME ;;
            *) die "unknown tool $tool" ;;
        esac
    done
done
exec 1>&3 3>&-
cat "$RESULTS"
# Medians per tool and step (and the range of the load average beside them).
python3 - "$RESULTS" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
cells = {}
for r in rows:
    cells.setdefault((r["tool"], r["step"]), []).append(r)
print("\nmedians: tool\tstep\tdurable_s\tcpu_s\trss_mib\tload (min-max)\truns\tall ok")
for (tool, step), rs in cells.items():
    med = lambda k: statistics.median(float(r[k]) for r in rs)
    loads = [float(r["load"]) for r in rs]
    ok = all(r["status"] == "ok" and "expected" not in r["found"] for r in rs)
    print(f"{tool}\t{step}\t{med('durable_s'):.2f}\t{med('cpu_s'):.2f}\t{med('rss_mib'):.0f}"
          f"\t{min(loads):.1f}-{max(loads):.1f}\t{len(rs)}\t{'yes' if ok else 'NO'}")
EOF
say "done; $(uptime)"
