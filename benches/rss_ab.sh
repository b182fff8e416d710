#!/usr/bin/env bash
# Peak RSS and CPU seconds of snapvault binaries, alternated, on every step of one library
# (issue 23.3: peak RSS <= 0.75x the lowest peer's on every step): the first snapshot into a
# fresh encrypted repository, then the no-change snapshot, a full restore, check
# --read-data and a re-import (a snapshot of a hard-linked copy of the library under
# another path). Warm page cache: peak RSS hardly depends on the machine's load, so this
# runs on a busy machine too; read CPU seconds as paired figures. One line per step:
#
#   RUN BINARY STEP wall_s user_s sys_s peak_rss_KiB
#
#   benches/rss_ab.sh RUNS LIBRARY WORK_DIR BINARY...
set -euo pipefail
[[ $# -ge 4 ]] || { sed -n 2,11p "$0"; exit 2; }
runs=$1 lib=$2 work=$3
shift 3
export SNAPVAULT_PASSWORD=${BENCH_PASSWORD:-snapvault-bench-not-a-secret}
unset SNAPVAULT_REPOSITORY SNAPVAULT_PASSWORD_FILE SNAPVAULT_PASSWORD_COMMAND
mkdir -p "$work"
[[ -d $work/imp ]] || cp -al "$lib" "$work/imp"
for r in $(seq 1 "$runs"); do
    for bin in "$@"; do
        rm -rf "$work/repo" "$work/target"
        "$bin" -q --repo "$work/repo" init >/dev/null
        step() {
            local label=$1 out
            shift
            out=$({ /usr/bin/time -f '%e %U %S %M' "$bin" -q --repo "$work/repo" "$@" >/dev/null; } 2>&1 | tail -1)
            echo "$r $bin $label $out"
        }
        step first snapshot "$lib"
        step nochange snapshot "$lib"
        step restore restore latest --target "$work/target"
        step check check --read-data
        step reimport snapshot "$work/imp"
    done
done
rm -rf "$work/repo" "$work/target" "$work/imp"
