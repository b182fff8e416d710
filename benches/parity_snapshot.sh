#!/usr/bin/env bash
# Parity's cost through the real binary (issue 21): the first snapshot of a 512 MiB library
# without parity and with 5 % (alternating, --runs times each), the repository's size, then
# `repair --apply` of one deleted 16 MiB pack and `check --read-data` of the 5 % repository.
# Prints one line per step: wall seconds, user + system CPU seconds, peak RSS, the load
# average beside it. Medians are the reader's (or `sort -n` of a column).
#
#   benches/parity_snapshot.sh [--runs N] [--size MiB] [--work DIR] [SNAPVAULT_BINARY]
#
# Default binary: target/release/snapvault (build it first: cargo build --release -p snapvault).
set -euo pipefail

runs=3
size=512
work=/var/tmp/snapvault-parity-bench
sv=target/release/snapvault
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) sv=$1; shift ;;
  esac
done
sv=$(realpath "$sv")
[ -x "$sv" ] || { echo "no snapvault binary at $sv" >&2; exit 2; }
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

mkdir -p "$work"
cd "$work"
export SNAPVAULT_PASSWORD=bench-password-parity-21 XDG_CACHE_HOME="$work/cache"

# The library: random files of 2-8 MiB (incompressible, like photos), the same bytes every
# time for a given size.
if [ "$(cat lib.size 2>/dev/null)" != "$size" ]; then
  rm -rf lib
  python3 - "$size" <<'EOF'
import os, random, sys
total = int(sys.argv[1]) << 20
rng = random.Random(21)
os.makedirs("lib", exist_ok=True)
i = 0
while total > 0:
    n = min(total, rng.randint(2 << 20, 8 << 20))
    with open(f"lib/IMG_{i:04d}.JPG", "wb") as f:
        f.write(rng.randbytes(n))
    total -= n
    i += 1
EOF
  echo "$size" > lib.size
fi

# step name, then the command: "step wall_s cpu_s rss_MiB load1"
timed() {
  local step=$1; shift
  local rc=0
  /usr/bin/time -o "$work/time.out" -f '%e %U %S %M' "$@" >/dev/null 2>"$work/stderr.out" || rc=$?
  read -r wall user sys rss <<<"$(tail -1 "$work/time.out")"
  printf '%-28s wall %6.2f s  cpu %6.2f s  rss %5d MiB  load %s  rc %d\n' \
    "$step" "$wall" "$(echo "$user + $sys" | bc)" $((rss / 1024)) \
    "$(cut -d' ' -f1 /proc/loadavg)" "$rc"
}

for run in $(seq 1 "$runs"); do
  for level in 0 5; do
    rm -rf repo cache
    sync
    if [ "$level" = 0 ]; then
      "$sv" -q --repo repo init --allow-weak-password >/dev/null
    else
      "$sv" -q --repo repo init --parity "$level" --allow-weak-password >/dev/null
    fi
    timed "snapshot parity=$level run=$run" "$sv" -q --repo repo snapshot lib
    total=$(du -sb repo | cut -f1)
    par=$(du -sb repo/parity 2>/dev/null | cut -f1 || echo 0)
    echo "  repository $total bytes, parity $par bytes, data+meta $((total - par)) bytes"
  done
done

# The last repository has 5 % parity: lose one 16 MiB pack, repair it, check.
pack=$(find repo/data -type f -size +15M | head -1)
rm "$pack"
timed "repair --apply (1 pack lost)" "$sv" -q --repo repo repair --apply
timed "check --read-data" "$sv" -q --repo repo check --read-data
