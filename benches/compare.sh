#!/usr/bin/env bash
# snapvault vs restic, rustic, bupstash and borg on the same generated iPhone-like library,
# same disk, interleaved; each step also against the disk's own time for its I/O (the floor)
# and, warm, against the two-core sum of the pipeline's stages. See benches/README.md and
# docs/benchmarks.md.
#
#   benches/compare.sh [--size 2GiB] [--runs 3] [--out docs/benchmarks.md]
#                      [--cache both|cold|warm] [--work /var/tmp/snapvault-bench]
#                      [--base DIR] [--tools snapvault,rustic,bupstash]
#                      [--steps first,nochange,mutate,restore,check,reimport]
#                      [--small-files 0] [--no-floor] [--no-stages] [--full]
#                      [--seed 1] [--keep]
#
# The default is the quick comparison (~15 min at 2 GiB on a quiet 2-core machine): the
# peers that are fastest somewhere (rustic, bupstash), the steps with targets. --full: every
# tool (restic and borg too), every step (month restore, forget + prune, 20,000 small files).
# --base DIR takes an existing corpus (DIR/lib + DIR/lib.manifest.json) read only.
#
# Environment: SNAPVAULT (path to a built binary; default: cargo build --release) and
# SNAPVAULT_REV (its revision, for the report),
# CARGO_TARGET_DIR, BENCH_PASSWORD (the repositories' password; it is handed to the tools
# only through SNAPVAULT_PASSWORD / RESTIC_PASSWORD / RUSTIC_PASSWORD / BORG_PASSPHRASE),
# BENCH_TOOLS (where rustic and bupstash are installed; default WORK/tools).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

SIZE=2GiB
RUNS=3
OUT=$ROOT/docs/benchmarks.md
CACHE=both
WORK=/var/tmp/snapvault-bench
TOOLS=snapvault,rustic,bupstash
STEPS=first,nochange,mutate,restore,check,reimport
SMALL=0
SEED=1
KEEP=0
FLOOR=1
STAGES=1
BASE=

USAGE_LINES=2,24p
# shellcheck source=benches/common.sh
. "$HERE/common.sh"

while [[ $# -gt 0 ]]; do
    case $1 in
        --size) SIZE=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --out) OUT=${2:?}; shift 2 ;;
        --cache) CACHE=${2:?}; shift 2 ;;
        --work) WORK=${2:?}; shift 2 ;;
        --tools) TOOLS=${2:?}; shift 2 ;;
        --steps) STEPS=${2:?}; shift 2 ;;
        --base) BASE=${2:?}; shift 2 ;;
        --small-files) SMALL=${2:?}; shift 2 ;;
        --no-floor) FLOOR=0; shift ;;
        --no-stages) STAGES=0; shift ;;
        --full) TOOLS=snapvault,restic,rustic,bupstash,borg
            STEPS=first,nochange,mutate,restore,month,check,prune,reimport; SMALL=20000; shift ;;
        --seed) SEED=${2:?}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage 0 ;;
        *) unknown_argument "$1" ;;
    esac
done
runs_ok "$RUNS"
[[ $SMALL =~ ^[0-9]+$ ]] || die "--small-files must be a number (0 to skip)"
case $CACHE in both) MODES=(cold warm) ;; cold|warm) MODES=("$CACHE") ;;
    *) die "--cache must be both, cold or warm" ;; esac
IFS=, read -r -a TOOL_LIST <<<"$TOOLS"
for t in "${TOOL_LIST[@]}"; do
    case $t in snapvault|restic|rustic|bupstash|borg) ;;
        *) die "unknown tool $t (snapvault, restic, rustic, bupstash, borg)" ;; esac
done
IFS=, read -r -a STEP_LIST <<<"$STEPS"
for st in "${STEP_LIST[@]}"; do
    case $st in first|nochange|mutate|restore|month|check|prune|reimport) ;;
        *) die "unknown step $st (first, nochange, mutate, restore, month, check, prune, reimport)" ;; esac
done
# The first snapshot is what every other step works on: always run.
[[ ,$STEPS, == *,first,* ]] || STEPS=first,$STEPS
SIZE_BYTES=$(size_bytes "$SIZE") || exit 1
uses() { [[ ,$TOOLS, == *,$1,* ]]; }
# The floor is measured on snapvault's own repository.
uses snapvault || FLOOR=0

# ------------------------------------------------------------------ prerequisites
# The peers from crates.io, pinned, built into a bench folder (not the system).
RUSTIC_VERSION=0.11.4
BUPSTASH_VERSION=0.12.0
BENCH_TOOLS=${BENCH_TOOLS:-$WORK/tools}
export PATH=$BENCH_TOOLS/bin:$PATH
need_apt=()
uses restic && ! command -v restic >/dev/null && need_apt+=(restic)
uses borg && ! command -v borg >/dev/null && need_apt+=(borgbackup)
[[ -x /usr/bin/time ]] || need_apt+=(time)
# bupstash links Debian's libsodium.
if uses bupstash && ! command -v bupstash >/dev/null; then
    [[ -e /usr/include/sodium.h ]] || need_apt+=(libsodium-dev)
    command -v pkg-config >/dev/null || need_apt+=(pkg-config)
fi
if ((${#need_apt[@]})); then
    [[ $(id -u) == 0 ]] || die "missing ${need_apt[*]}; install them (apt-get install ${need_apt[*]}) or run as root"
    command -v apt-get >/dev/null || die "missing ${need_apt[*]} and no apt-get to install them"
    say "installing ${need_apt[*]} with apt-get"
    apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null \
        || die "apt-get install ${need_apt[*]} failed"
fi
# cargo_install CRATE VERSION BINARY: cargo install --locked, pinned, into BENCH_TOOLS.
cargo_install() {
    local crate=$1 version=$2 bin=$3
    shift 3
    command -v "$bin" >/dev/null && return 0
    command -v cargo >/dev/null || die "$bin is missing and there is no cargo to build it"
    say "building $crate $version into $BENCH_TOOLS (cargo install --locked; takes a while)"
    CARGO_TARGET_DIR=$BENCH_TOOLS/build nice -n 19 cargo install -q --locked --root "$BENCH_TOOLS" \
        "$@" "$crate@$version" || die "cargo install $crate@$version failed"
}
uses rustic && cargo_install rustic-rs "$RUSTIC_VERSION" rustic --no-default-features
uses bupstash && cargo_install bupstash "$BUPSTASH_VERSION" bupstash
if [[ -z ${SNAPVAULT:-} ]]; then
    say "building snapvault (release)"
    (cd "$ROOT" && cargo build --release -q -p snapvault) || die "cargo build failed"
    SNAPVAULT=${CARGO_TARGET_DIR:-$ROOT/target}/release/snapvault
    SNAPVAULT_REV=${SNAPVAULT_REV:-git $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')}
fi
# Where the binary came from, for the report (set SNAPVAULT_REV when passing SNAPVAULT=).
SNAPVAULT_REV=${SNAPVAULT_REV:-prebuilt binary, revision not given}
[[ -x $SNAPVAULT ]] || die "snapvault binary $SNAPVAULT not found"
SNAPVAULT=$(realpath "$SNAPVAULT")
# Builds from before `forget`/`prune` existed: that step is reported as missing, not failed.
SV_PRUNE=1
"$SNAPVAULT" forget --help >/dev/null 2>&1 || SV_PRUNE=0

mkdir -p "$WORK"
WORK=$(realpath "$WORK")
# Room: a repository per tool (~1.05x each), the re-import copy, the restore target or the
# floor's write file (never both at once), and the corpus itself when it is generated.
avail=$(df -B1 --output=avail "$WORK" | tail -1)
need=$((SIZE_BYTES * (${#TOOL_LIST[@]} * 21 / 20 + 2) + SMALL * 16384))
[[ -n $BASE ]] || [[ -f $WORK/base/lib.manifest.json ]] || need=$((need + SIZE_BYTES))
((avail > need)) || die "$WORK has $((avail >> 30)) GiB free; need about $((need >> 30)) GiB for --size $SIZE"

export BENCH_PASSWORD=${BENCH_PASSWORD:-snapvault-bench-not-a-secret}
export SNAPVAULT_PASSWORD=$BENCH_PASSWORD RESTIC_PASSWORD=$BENCH_PASSWORD BORG_PASSPHRASE=$BENCH_PASSWORD
export RUSTIC_PASSWORD=$BENCH_PASSWORD
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=no
export BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=YES BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=YES
unset SNAPVAULT_REPOSITORY RESTIC_REPOSITORY BORG_REPO SNAPVAULT_PASSWORD_FILE SNAPVAULT_PASSWORD_COMMAND
unset RUSTIC_REPOSITORY BUPSTASH_REPOSITORY BUPSTASH_KEY BUPSTASH_KEY_COMMAND

# The corpus: generated into WORK/base (and reused), or a given one (--base), read only.
BASE_GIVEN=0
if [[ -n $BASE ]]; then
    BASE_GIVEN=1
    BASE=$(realpath "$BASE")
else
    BASE=$WORK/base
fi
SMALL_DIR=$BASE/small
((BASE_GIVEN == 0)) || SMALL_DIR=$WORK/small
RUN=$WORK/run
RESULTS=$WORK/results.tsv
LOG=$WORK/tools.log
: >"$LOG"
# Rows of tool "floor" are the disk's own time for a step's I/O (read_bytes, write_bytes).
printf 'mode\trun\ttool\tstep\twall\tuser\tsys\trss_kb\trepo_bytes\tother_load\tstatus\treturned\tread_bytes\twrite_bytes\n' >"$RESULTS"
CLK_TCK=$(getconf CLK_TCK)

# ------------------------------------------------------------------ corpus
manifest_ok() {
    [[ -f $BASE/lib.manifest.json ]] && python3 - "$BASE/lib.manifest.json" "$SIZE_BYTES" "$SEED" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
sys.exit(0 if m["size_param"] == int(sys.argv[2]) and m["seed"] == int(sys.argv[3]) and m["mutations"] == 0 else 1)
EOF
}
if manifest_ok; then
    say "reusing corpus in $BASE/lib"
elif ((BASE_GIVEN)); then
    die "--base $BASE: no corpus of --size $SIZE and --seed $SEED there (lib/ and lib.manifest.json, unmutated)"
else
    say "generating a $SIZE corpus (seed $SEED) in $BASE/lib"
    rm -rf "$BASE"
    mkdir -p "$BASE"
    python3 "$HERE/corpus.py" generate "$BASE/lib" --size "$SIZE_BYTES" --seed "$SEED" >&2
fi
if ((SMALL > 0)) && [[ $(find "$SMALL_DIR" -type f 2>/dev/null | wc -l) != "$SMALL" ]]; then
    say "generating $SMALL small files in $SMALL_DIR"
    rm -rf "$SMALL_DIR"
    python3 "$HERE/corpus.py" small "$SMALL_DIR" --count "$SMALL" --seed "$SEED" >&2
fi
CORPUS_DESC=$(python3 "$HERE/corpus.py" stats "$BASE/lib")
MONTH=$(python3 "$HERE/corpus.py" month "$BASE/lib")
CORPUS_BYTES=$(python3 -c 'import json, sys; print(sum(e["size"] for e in json.load(open(sys.argv[1]))["files"]))' "$BASE/lib.manifest.json")

# ------------------------------------------------------------------ the tools
# tool_cmd TOOL VERB [ARG...] sets CMD (argv) and CWD for one step. REPO_OF / CACHE_OF name
# each tool's repository and client cache inside the current run folder.
SV_KEYED=0
repo_of() { echo "$RUN/repo-$1"; }
cache_of() { echo "$RUN/cache-$1"; }
declare -A BORG_LAST BUPSTASH_LAST

tool_env() {
    case $1 in
        # Its own config folder in the run folder, where `key remember` keeps the key of
        # the nochange_key step; SV_KEYED=1: no password at all, so that key must open it.
        snapvault) ENV=(XDG_CACHE_HOME="$(cache_of snapvault)" XDG_CONFIG_HOME="$(cache_of snapvault)/config")
            ((SV_KEYED == 0)) || ENV=(-u SNAPVAULT_PASSWORD "${ENV[@]}") ;;
        restic) ENV=(RESTIC_REPOSITORY="$(repo_of restic)" RESTIC_CACHE_DIR="$(cache_of restic)") ;;
        borg) ENV=(BORG_REPO="$(repo_of borg)" BORG_BASE_DIR="$(cache_of borg)") ;;
        rustic) ENV=() ;;
        # The key is made by init beside the client cache (its send log: the stat cache).
        bupstash) ENV=(BUPSTASH_REPOSITORY="$(repo_of bupstash)" BUPSTASH_KEY="$(cache_of bupstash)/key"
            XDG_CACHE_HOME="$(cache_of bupstash)") ;;
    esac
}

tool_cmd() {
    local tool=$1 verb=$2
    shift 2
    CWD=$RUN
    case $tool:$verb in
        snapvault:init) CMD=("$SNAPVAULT" -q --repo "$(repo_of snapvault)" init) ;;
        snapvault:backup) CMD=("$SNAPVAULT" -q --repo "$(repo_of snapvault)" snapshot "$1") ;;
        snapvault:restore) CMD=("$SNAPVAULT" -q --repo "$(repo_of snapvault)" restore latest --target "$1") ;;
        snapvault:month) CMD=("$SNAPVAULT" -q --repo "$(repo_of snapvault)" restore --date "$MONTH" --snapshot latest --target "$1") ;;
        snapvault:check) CMD=("$SNAPVAULT" -q --repo "$(repo_of snapvault)" check --read-data) ;;
        snapvault:prune) CMD=("$SNAPVAULT" -q --repo "$(repo_of snapvault)" forget --keep-last 1 --allow-photo-loss --prune) ;;

        restic:init) CMD=(restic -q init --repository-version 2) ;;
        restic:backup) CMD=(restic -q backup --compression auto "$1") ;;
        restic:restore) CMD=(restic -q restore latest --target "$1") ;;
        restic:month)
            CMD=(restic -q restore latest --target "$1")
            while read -r p; do CMD+=(--include "$p"); done < <(python3 "$HERE/corpus.py" month-files "$RUN/lib" "$MONTH" --prefix "$RUN/lib/")
            ;;
        restic:check) CMD=(restic -q check --read-data) ;;
        restic:prune) CMD=(restic -q forget --keep-last 1 --prune) ;;

        borg:init) CMD=(borg init --encryption repokey-blake2) ;;
        borg:backup)
            BORG_LAST[$RUN]=$2
            CMD=(borg create --compression zstd,3 "::$2" "$1") ;;
        borg:restore) CWD=$1; CMD=(borg extract "::${BORG_LAST[$RUN]}") ;;
        borg:month)
            CWD=$1
            CMD=(borg extract "::${BORG_LAST[$RUN]}")
            while read -r p; do CMD+=("$p"); done < <(python3 "$HERE/corpus.py" month-files "$RUN/lib" "$MONTH" --prefix "${RUN#/}/lib/")
            ;;
        borg:check) CMD=(borg check --verify-data) ;;
        borg:prune) CMD=(sh -c 'borg prune --keep-last 1 && borg compact') ;;

        rustic:init) CMD=(rustic --no-progress -r "$(repo_of rustic)" --cache-dir "$(cache_of rustic)" init) ;;
        rustic:backup) CMD=(rustic --no-progress -r "$(repo_of rustic)" --cache-dir "$(cache_of rustic)" backup "$1") ;;
        rustic:restore) CMD=(rustic --no-progress -r "$(repo_of rustic)" --cache-dir "$(cache_of rustic)" restore latest "$1") ;;
        rustic:check) CMD=(rustic --no-progress -r "$(repo_of rustic)" --cache-dir "$(cache_of rustic)" check --read-data) ;;
        rustic:prune) CMD=(rustic --no-progress -r "$(repo_of rustic)" --cache-dir "$(cache_of rustic)" forget --keep-last 1 --prune) ;;

        bupstash:init) mkdir -p "$(cache_of bupstash)"
            CMD=(sh -c 'bupstash new-key -o "$BUPSTASH_KEY" && bupstash init') ;;
        bupstash:backup)
            BUPSTASH_LAST[$RUN]=$2
            CMD=(bupstash put -q "name=$2" "$1") ;;
        bupstash:restore) CMD=(bupstash restore --into "$1" "name=${BUPSTASH_LAST[$RUN]}") ;;
        # bupstash has no check that reads every stored byte: reading back the newest
        # snapshot whole (decrypted, verified) is the nearest.
        bupstash:check) CMD=(sh -c 'bupstash get "name=$1" >/dev/null' sh "${BUPSTASH_LAST[$RUN]}") ;;
        bupstash:prune) CMD=(sh -c 'bupstash rm --allow-many "~name=$1" && bupstash gc' sh "${BUPSTASH_LAST[$RUN]}") ;;
        *) die "internal: no command for $tool $verb" ;;
    esac
}

# The commands as documented (paths shortened).
commands_doc() {
    cat <<EOF
| step | snapvault | restic $(restic version | awk '{print $2}') | borg $(borg --version | awk '{print $2}') |
|---|---|---|---|
| init | \`snapvault init\` | \`restic init --repository-version 2\` | \`borg init --encryption repokey-blake2\` |
| snapshot | \`snapvault snapshot LIB\` | \`restic backup --compression auto LIB\` | \`borg create --compression zstd,3 ::NAME LIB\` |
| no-change, key remembered | \`snapvault snapshot LIB\` after \`snapvault key remember\`, no password given | not measured | not measured |
| full restore | \`snapvault restore latest --target T\` | \`restic restore latest --target T\` | \`cd T && borg extract ::NAME\` |
| month restore | \`snapvault restore --date $MONTH --snapshot latest --target T\` | \`restic restore latest --target T --include /…/lib/DCIM/…\` (one per file of that month, from the manifest) | \`cd T && borg extract ::NAME …/lib/DCIM/…\` (same list) |
| check, all data | \`snapvault check --read-data\` | \`restic check --read-data\` | \`borg check --verify-data\` |
| forget + prune | \`snapvault forget --keep-last 1 --allow-photo-loss --prune\` | \`restic forget --keep-last 1 --prune\` | \`borg prune --keep-last 1 && borg compact\` |
| re-import | \`snapvault snapshot PICTURES\` | \`restic backup --compression auto PICTURES\` | \`borg create --compression zstd,3 ::NAME PICTURES\` |

Passwords come from the environment only (\`SNAPVAULT_PASSWORD\`, \`RESTIC_PASSWORD\`,
\`BORG_PASSPHRASE\`), except snapvault's no-change snapshot with the key remembered on the
computer (none then); each tool's client cache lives in the run folder
(\`XDG_CACHE_HOME\`, \`RESTIC_CACHE_DIR\`, \`BORG_BASE_DIR\`) and is evicted with it.
EOF
    if uses rustic || uses bupstash; then
        cat <<EOF

| step | rustic $RUSTIC_VERSION (\`cargo install --locked --no-default-features rustic-rs\`) | bupstash $BUPSTASH_VERSION (\`cargo install --locked bupstash\`) |
|---|---|---|
| init | \`rustic -r R --cache-dir C init\` | \`bupstash new-key -o KEY && bupstash init\` |
| snapshot | \`rustic … backup LIB\` | \`bupstash put name=NAME LIB\` (send log in C) |
| full restore | \`rustic … restore latest T\` | \`bupstash restore --into T name=NAME\` |
| month restore | not measured | not measured |
| check, all data | \`rustic … check --read-data\` | no such check: \`bupstash get name=NAME >/dev/null\` reads the newest snapshot |
| forget + prune | \`rustic … forget --keep-last 1 --prune\` | \`bupstash rm --allow-many '~name=NAME' && bupstash gc\` |
| re-import | \`rustic … backup PICTURES\` | \`bupstash put name=NAME PICTURES\` |

rustic reads \`RUSTIC_PASSWORD\`; bupstash's key file and send log live in its client cache
folder in the run folder.
EOF
    fi
}

# ------------------------------------------------------------------ measuring
cpu_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }

# prepare MODE STEP PATH...: cold = sync + evict the whole run folder (and the small-files
# tree for those steps); warm = sync, then read PATHs once. The sync keeps a step from
# paying for the writeback of the step before it (a tool that returns with its writes
# still in the page cache would otherwise slow down whichever tool runs next).
prepare() {
    local mode=$1 stepname=$2
    shift 2
    if [[ $mode == cold ]]; then
        local extra=()
        [[ $stepname != small_* ]] || extra=("$SMALL_DIR")
        python3 "$HERE/pagecache.py" evict "$RUN" "${extra[@]}"
    else
        sync
        python3 "$HERE/pagecache.py" warm "$@"
    fi
}

declare -A BROKEN
# measure MODE RUN TOOL STEP: run CMD in CWD under /usr/bin/time and append a result row.
measure() {
    local mode=$1 run=$2 tool=$3 step=$4
    local tf status=ok
    tf=$(mktemp)
    tool_env "$tool"
    echo "=== $mode run $run $tool $step: (cd $CWD && ${ENV[*]} ${CMD[*]:0:12}${CMD[12]:+ …})" >>"$LOG"
    local b0 t0 t1 b1
    b0=$(cpu_busy)
    t0=$(date +%s.%N)
    if ! env -C "$CWD" "${ENV[@]}" /usr/bin/time -v -o "$tf" "${CMD[@]}" >>"$LOG" 2>&1; then
        status=FAILED
    fi
    # "Returned" time ends here; "durable" time (the headline) ends once the tool's writes
    # are on the disk: a tool that returns with its writes still in the page cache pays
    # for them too. syncfs of the work folder's filesystem (others' writes there count).
    local tr
    tr=$(date +%s.%N)
    sync -f "$RUN"
    t1=$(date +%s.%N)
    b1=$(cpu_busy)
    if [[ $status == FAILED ]]; then
        local code
        code=$(awk -F': ' '/Exit status/{print $2}' "$tf")
        # Exit 1 from borg is a warning (e.g. a file changed while read); 3 from snapvault
        # (if any) would be an incomplete snapshot: both are failures for a benchmark.
        say "FAILED: $tool $step (exit ${code:-?}); last lines of $LOG:"
        tail -n 15 "$LOG" >&2
        BROKEN[$tool]=1
    fi
    local user sys rss repo_bytes
    user=$(awk -F': ' '/User time/{print $2}' "$tf")
    sys=$(awk -F': ' '/System time/{print $2}' "$tf")
    rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$tf")
    rm -f "$tf"
    repo_bytes=$(du -sb "$(repo_of "$tool")" 2>/dev/null | cut -f1 || echo 0)
    python3 - "$mode" "$run" "$tool" "$step" "$t0" "$t1" "${user:-0}" "${sys:-0}" "${rss:-0}" \
        "${repo_bytes:-0}" "$b0" "$b1" "$CLK_TCK" "$status" "$tr" >>"$RESULTS" <<'EOF'
import sys
mode, run, tool, step, t0, t1, user, sys_, rss, repo, b0, b1, hz, status, tr = sys.argv[1:]
wall = float(t1) - float(t0)
returned = float(tr) - float(t0)
cpu = float(user) + float(sys_)
other = max(0.0, ((int(b1) - int(b0)) / int(hz) - cpu) / wall) if wall > 0 else 0.0
print(f"{mode}\t{run}\t{tool}\t{step}\t{wall:.3f}\t{user}\t{sys_}\t{rss}\t{repo}\t{other:.2f}\t{status}\t{returned:.3f}\t\t")
EOF
    say "  $tool $step: $(tail -1 "$RESULTS" | cut -f5) s durable, $(tail -1 "$RESULTS" | cut -f12) s returned, $status"
}

# note_status TOOL STEP STATUS: replace the status of the last row of TOOL/STEP.
note_status() {
    python3 - "$RESULTS" "$1" "$2" "$3" <<'EOF'
import sys
path, tool, step, status = sys.argv[1:]
rows = open(path).read().splitlines()
for i in range(len(rows) - 1, 0, -1):
    f = rows[i].split("\t")
    if f[2] == tool and f[3] == step:
        f[10] = status if f[10] == "ok" else f[10]
        rows[i] = "\t".join(f)
        break
open(path, "w").write("\n".join(rows) + "\n")
EOF
}

# restored_root DIR: the restored library root (the folder holding DCIM) under DIR.
restored_root() { find "$1" -type d -name DCIM -print -quit | xargs -r dirname; }

# step MODE RUN STEP VERB [ARG] over every tool (rotated per run), with cache preparation.
step() {
    local mode=$1 run=$2 stepname=$3 verb=$4 arg=${5:-}
    local i n=${#TOOL_LIST[@]}
    for ((i = 0; i < n; i++)); do
        local tool=${TOOL_LIST[$(((i + run) % n))]}
        [[ -z ${BROKEN[$tool]:-} ]] || continue
        local target=$RUN/restore-$tool
        if [[ $tool:$verb:$SV_PRUNE == snapvault:prune:0 ]]; then
            printf '%s\t%s\t%s\t%s\t0\t0\t0\t0\t0\t0\tno forget/prune in this build\t0\t\t\n' \
                "$mode" "$run" "$tool" "$stepname" >>"$RESULTS"
            say "  $tool $stepname: skipped (no forget/prune command in this build)"
            continue
        fi
        # A month's list of files is not handed to these two (see commands_doc).
        if [[ $verb == month && ($tool == rustic || $tool == bupstash) ]]; then
            printf '%s\t%s\t%s\t%s\t0\t0\t0\t0\t0\t0\tn/a\t0\t\t\n' \
                "$mode" "$run" "$tool" "$stepname" >>"$RESULTS"
            continue
        fi
        case $verb in
            restore|month) rm -rf "$target"; mkdir -p "$target"; tool_cmd "$tool" "$verb" "$target" ;;
            backup) tool_cmd "$tool" backup "$arg" "$stepname-$run" ;;
            *) tool_cmd "$tool" "$verb" ;;
        esac
        local inputs=("$(repo_of "$tool")" "$(cache_of "$tool")")
        [[ $verb == backup ]] && inputs+=("$arg")
        prepare "$mode" "$stepname" "${inputs[@]}"
        measure "$mode" "$run" "$tool" "$stepname" || true
        [[ -z ${BROKEN[$tool]:-} ]] || continue
        case $verb in
            restore)
                local got
                got=$(restored_root "$target")
                if [[ -n $got ]] && diff -r "$RUN/lib" "$got" >>"$LOG" 2>&1; then
                    note_status "$tool" "$stepname" ok
                else
                    say "VERIFY FAILED: $tool full restore differs from the library (see $LOG)"
                    note_status "$tool" "$stepname" "restore differs"
                fi
                rm -rf "$target" ;;
            month)
                local got
                got=$(restored_root "$target")
                if [[ -n $got ]] && python3 "$HERE/corpus.py" verify-month "$RUN/lib" "$MONTH" "$got" >>"$LOG" 2>&1; then
                    note_status "$tool" "$stepname" ok
                else
                    say "VERIFY FAILED: $tool month restore (see $LOG)"
                    note_status "$tool" "$stepname" "month restore differs"
                fi
                rm -rf "$target" ;;
        esac
    done
}

# ------------------------------------------------------------------ the disk floor
# floor MODE RUN STEP WRITE_BYTES [READ_PATH...]: the disk's own time for a step's I/O, with
# the same cache preparation as the tools' step: `cat` of every file the step reads while
# `dd oflag=direct` writes as many bytes as the step stores (both at once, as the tools
# overlap them), then `sync -f`, as in every timed step. Appends a row of tool "floor".
floor() {
    local mode=$1 run=$2 stepname=$3 write_bytes=$4
    shift 4
    ((FLOOR)) || return 0
    local read_bytes=0
    (($#)) && read_bytes=$(du -sb --apparent-size "$@" | awk '{s += $1} END {printf "%.0f\n", s}')
    prepare "$mode" "$stepname" "$@"
    local t0 tr t1 pids=() status=ok
    local bs=$((16 << 20))
    t0=$(date +%s.%N)
    if (($#)); then
        find "$@" -type f -print0 | xargs -0 -r cat >/dev/null &
        pids+=($!)
    fi
    if ((write_bytes > 0)); then
        dd if=/dev/zero of="$RUN/floor.tmp" bs=$bs count=$(((write_bytes + bs - 1) / bs)) \
            oflag=direct status=none &
        pids+=($!)
    fi
    local p
    for p in "${pids[@]}"; do wait "$p" || status=FAILED; done
    tr=$(date +%s.%N)
    sync -f "$RUN"
    t1=$(date +%s.%N)
    rm -f "$RUN/floor.tmp"
    python3 - "$mode" "$run" "$stepname" "$t0" "$tr" "$t1" "$status" "$read_bytes" "$write_bytes" \
        >>"$RESULTS" <<'EOF'
import sys
mode, run, step, t0, tr, t1, status, rb, wb = sys.argv[1:]
print(f"{mode}\t{run}\tfloor\t{step}\t{float(t1) - float(t0):.3f}\t0\t0\t0\t0\t0\t{status}\t"
      f"{float(tr) - float(t0):.3f}\t{rb}\t{wb}")
EOF
    say "  floor $stepname: $(tail -1 "$RESULTS" | cut -f5) s (read $((read_bytes >> 20)) MiB, write $((write_bytes >> 20)) MiB)"
}

# nochange_key MODE RUN: the no-change snapshot again, snapvault only, opening with the key
# remembered on this computer (`key remember`, unmeasured, first): no password given, no
# Argon2id. bupstash keeps its key in a file on the computer too, so this row is the one
# compared with bupstash's no-change snapshot (report.py: PEER_STEP); the row above it is
# snapvault with the password.
nochange_key() {
    local mode=$1 run=$2
    uses snapvault && [[ -z ${BROKEN[snapvault]:-} ]] || return 0
    tool_env snapvault
    if ! env "${ENV[@]}" "$SNAPVAULT" -q --repo "$(repo_of snapvault)" key remember >>"$LOG" 2>&1; then
        say "snapvault key remember failed (see $LOG): no nochange_key row"
        return 0
    fi
    local saved=("${TOOL_LIST[@]}")
    TOOL_LIST=(snapvault)
    SV_KEYED=1
    step "$mode" "$run" nochange_key backup "$RUN/lib"
    SV_KEYED=0
    TOOL_LIST=("${saved[@]}")
}

# bytes PATH: apparent size of everything under PATH (0 when missing).
bytes() { du -sb --apparent-size "$1" 2>/dev/null | cut -f1 || echo 0; }

wants() { [[ ,$STEPS, == *,$1,* ]]; }

one_run() {
    local mode=$1 run=$2
    say "run $run ($mode cache): $(uptime | sed 's/.*load/load/')"
    chmod -R u+w "$RUN" 2>/dev/null || true
    rm -rf "$RUN"
    mkdir -p "$RUN"
    BROKEN=()
    # A hard-linked copy: unchanged files keep their bytes and mtimes; mutate only unlinks
    # and adds, so the base corpus is never modified.
    cp -al "$BASE/lib" "$RUN/lib"
    cp "$BASE/lib.manifest.json" "$RUN/lib.manifest.json"
    local sv_repo
    sv_repo=$(repo_of snapvault)
    step "$mode" "$run" init init
    step "$mode" "$run" first backup "$RUN/lib"
    # What a first snapshot must do at least: read the library, write the repository.
    floor "$mode" "$run" first "$(bytes "$sv_repo")" "$RUN/lib"
    if wants nochange; then
        step "$mode" "$run" nochange backup "$RUN/lib"
        nochange_key "$mode" "$run"
    fi
    if wants mutate; then
        python3 "$HERE/corpus.py" mutate "$RUN/lib" >>"$LOG"
        step "$mode" "$run" mutate backup "$RUN/lib"
    fi
    if wants restore; then
        step "$mode" "$run" restore restore
        # Read the repository, write the library.
        floor "$mode" "$run" restore "$(bytes "$RUN/lib")" "$sv_repo"
    fi
    ! wants month || step "$mode" "$run" month month
    if wants check; then
        step "$mode" "$run" check check
        floor "$mode" "$run" check 0 "$sv_repo"
    fi
    ! wants prune || step "$mode" "$run" prune prune
    if wants reimport; then
        python3 "$HERE/corpus.py" reimport "$RUN/lib" "$RUN/Pictures" >>"$LOG"
        step "$mode" "$run" reimport backup "$RUN/Pictures"
        # Everything is known already: read the new copy, store next to nothing.
        floor "$mode" "$run" reimport 0 "$RUN/Pictures"
    fi
    if ((SMALL > 0)); then
        # Separate repositories for the small-files case.
        local t
        for t in "${TOOL_LIST[@]}"; do
            [[ -z ${BROKEN[$t]:-} ]] || continue
            chmod -R u+w "$(repo_of "$t")" 2>/dev/null || true
            rm -rf "$(repo_of "$t")" "$(cache_of "$t")"
        done
        rm -rf "$RUN/Pictures"
        step "$mode" "$run" small_init init
        step "$mode" "$run" small_first backup "$SMALL_DIR"
        step "$mode" "$run" small_nochange backup "$SMALL_DIR"
    fi
}

# The disk's own sequential read speed on this library (cold), for the cold-cache comparison.
python3 "$HERE/pagecache.py" evict "$BASE/lib"
t0=$(date +%s.%N)
python3 "$HERE/pagecache.py" warm "$BASE/lib"
t1=$(date +%s.%N)
DISK_MBPS=$(python3 -c 'import sys; print(round(int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2])) / 1e6))' "$CORPUS_BYTES" "$t0" "$t1")
say "cold sequential read of the library: $DISK_MBPS MB/s"

# The two-core ideal of the warm steps: the stages' own speed on this machine, one core each
# (benches/stages.rs through criterion), summed per byte the way the pipeline pays them.
STAGES_JSON=$WORK/stages.json
rm -f "$STAGES_JSON"
if ((STAGES)) && uses snapvault && [[ $CACHE != cold ]]; then
    if command -v cargo >/dev/null; then
        say "stage micro-benchmarks (cargo bench -p snapvault-repo --bench stages; ~1 min once built)"
        if (cd "$ROOT" && cargo bench -q -p snapvault-repo --bench stages -- \
            --warm-up-time 0.5 --measurement-time 2 \
            '^(chunker/keyed_gear_32MiB|hash/keyed_blake3_1MiB|seal/encode_in_place_never_1MiB|pack/writer_recycled_add_finish_16MiB|seal/decode_in_place_verify_1MiB)$') \
            >>"$LOG" 2>&1; then
            python3 "$HERE/report.py" stages "${CARGO_TARGET_DIR:-$ROOT/target}/criterion" >"$STAGES_JSON" \
                || { say "could not read the stage figures; warm shares left out"; rm -f "$STAGES_JSON"; }
        else
            say "cargo bench failed (see $LOG); warm shares of the stage sum left out"
        fi
    else
        say "no cargo: warm shares of the stage sum left out"
    fi
fi

START=$(date -u +%Y-%m-%dT%H:%MZ)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "corpus: $CORPUS_DESC; month restored: $MONTH"
for mode in "${MODES[@]}"; do
    for ((r = 1; r <= RUNS; r++)); do
        one_run "$mode" "$r"
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
MUTATION=$(grep '^mutate:' "$LOG" | tail -1 || true)

# ------------------------------------------------------------------ report
META=$WORK/meta.json
python3 - "$META" <<EOF
import json, sys
json.dump({
    "start": "$START",
    "size": "$SIZE", "runs": $RUNS, "cache": "$CACHE", "seed": $SEED, "small": $SMALL,
    "corpus": """$CORPUS_DESC""", "corpus_bytes": $CORPUS_BYTES, "mutation": """$MUTATION""", "month": "$MONTH",
    "nproc": "$(nproc)", "disk_mbps": $DISK_MBPS,
    "cpu": """$(lscpu | awk -F: '/Model name/{gsub(/^ +/, "", $2); print $2; exit}')""",
    "ram": "$(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)",
    "kernel": "$(uname -sr)",
    "os": """$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")""",
    "fs": """$(df -T "$WORK" | awk 'NR==2{print $2" on "$1}')""",
    "snapvault": """$("$SNAPVAULT" --version | head -1) ($SNAPVAULT_REV)""",
    "restic": """$(restic version | head -1)""",
    "borg": """$(borg --version | head -1)""",
    "rustic": """$(uses rustic && rustic --version | head -1)""",
    "bupstash": """$(uses bupstash && bupstash version | head -1)""",
    "load_before": "$LOAD_BEFORE", "load_after": "$LOAD_AFTER",
    "end": "$(date -u +%Y-%m-%dT%H:%MZ)", "seconds": $SECONDS,
    "stages": json.load(open("$STAGES_JSON")) if "$STAGES_JSON" and __import__("os").path.exists("$STAGES_JSON") else None,
    "commands": """$(commands_doc)""",
    "command_line": """benches/compare.sh --size $SIZE --runs $RUNS --cache $CACHE --tools $TOOLS --steps $STEPS --small-files $SMALL --seed $SEED$( ((FLOOR)) || echo ' --no-floor')$( ((STAGES)) || echo ' --no-stages')""",
}, open(sys.argv[1], "w"), indent=1)
EOF
python3 "$HERE/report.py" "$RESULTS" "$META" "$OUT"
say "results: $RESULTS; table written to $OUT"
if ((KEEP == 0)); then
    chmod -R u+w "$RUN" 2>/dev/null || true
    rm -rf "$RUN"
fi
