#!/bin/sh
# CI smoke run of every fuzz target: a few seconds each from freshly generated seeds.
# One summary line per target; exit status 1 if any target crashed, timed out or ran out of
# memory (the input is kept in fuzz/artifacts/<target>/), 2 if setup or the build failed.
#
#   fuzz/smoke.sh [SECONDS_PER_TARGET]        (default 5)
#
# Needs only stable Rust (and a C compiler, for zstd): installs cargo-fuzz (pinned) when
# missing and sets RUSTC_BOOTSTRAP=1 for the fuzz build. Settings (environment):
#   FUZZ_TARGET_DIR   cargo target folder of the fuzz build (default fuzz/target)
#   FUZZ_SANITIZER    address | none (default none: a third of the build time; the long
#                     local runs of docs/fuzzing.md use ASan)
#   FUZZ_PROFILE      dev | release (default dev: no optimisation, fastest to build;
#                     debug assertions and overflow checks are on either way)
#   SNAPVAULT_BIN     a built snapvault binary for the seed generator (else seeds.sh builds it)
set -u

CARGO_FUZZ_VERSION=0.13.2
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
secs=${1:-5}
sanitizer=${FUZZ_SANITIZER:-none}
profile=${FUZZ_PROFILE:-dev}
target_dir=${FUZZ_TARGET_DIR:-$here/target}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" || exit 2
fi

case $profile in
dev) set -- --dev; bindir=debug ;;
release) set -- -O --debug-assertions; bindir=release ;;
*) echo "FUZZ_PROFILE must be dev or release" >&2; exit 2 ;;
esac
triple=$(rustc -vV | sed -n 's/^host: //p')

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

echo "== seeds"
sh ./seeds.sh "$work/seeds" || exit 2
# Only the fuzz build needs the unstable flags: RUSTC_BOOTSTRAP stays out of the seed
# generator's snapvault build, so that one reuses what `cargo test` built.
echo "== build ($profile, sanitizer $sanitizer)"
RUSTC_BOOTSTRAP=1 cargo fuzz build "$@" --sanitizer "$sanitizer" --target-dir "$target_dir" || exit 2

echo "== run (${secs}s per target)"
fail=0
for t in $(cargo fuzz list); do
    mkdir -p "$work/new/$t" "$work/seeds/$t" "artifacts/$t"
    log=$work/$t.log
    # New inputs go to a scratch folder; the seeds are only read.
    "$target_dir/$triple/$bindir/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
        "$work/new/$t" "$work/seeds/$t" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(printf '%s' "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(printf '%s' "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    corpus=$(($(ls "$work/seeds/$t" | wc -l) + $(ls "$work/new/$t" | wc -l)))
    if [ $rc -eq 0 ]; then
        status=ok
    else
        status=FAIL
        fail=1
    fi
    printf '%-16s %-5s %4ss  execs %10s  cov %6s  ft %7s  corpus %5s\n' \
        "$t" "$status" "$secs" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$corpus"
    if [ $rc -ne 0 ]; then
        grep -E 'ERROR|panicked|SUMMARY|Test unit written|artifact|timeout|out-of-memory' "$log" |
            head -n 20 | sed 's/^/    /'
    fi
done
exit $fail
