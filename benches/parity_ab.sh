#!/usr/bin/env bash
# Parity's cost, two binaries paired (issue 21): for each run, each binary in turn, the first
# snapshot of LIBRARY into a fresh repository without parity and with 5 %. One line per
# snapshot: binary, level, wall s, user + system CPU s, peak RSS MiB, load average. On a busy
# machine compare the CPU column; wall times only on a quiet one.
#
#   benches/parity_ab.sh RUNS LIBRARY BINARY_A BINARY_B
#
# LIBRARY: e.g. the 512 MiB one benches/parity_snapshot.sh makes (WORK/lib), or a corpus.
# COLD=1 (root): drop the page cache before each snapshot and time `snapshot && sync` (the
# durable time, as issue 21's target is measured); the wall column is then that.
set -euo pipefail
[ $# -ge 4 ] || { sed -n 2,11p "$0"; exit 2; }
runs=$1; lib=$2; shift 2
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
export SNAPVAULT_PASSWORD=bench-password-parity-21
for _ in $(seq 1 "$runs"); do
  for bin in "$@"; do
    for level in 0 5; do
      w=$(mktemp -d "${TMPDIR:-/var/tmp}/parity-ab.XXXX")
      export XDG_CACHE_HOME=$w/cache
      if [ "$level" = 0 ]; then "$bin" -q --repo "$w/repo" init --allow-weak-password >/dev/null
      else "$bin" -q --repo "$w/repo" init --parity "$level" --allow-weak-password >/dev/null; fi
      sync
      [ "${COLD:-0}" = 1 ] && echo 3 > /proc/sys/vm/drop_caches
      start=$(date +%s.%N)
      /usr/bin/time -o "$w/t" -f '%e %U %S %M' "$bin" -q --repo "$w/repo" snapshot "$lib" \
        >/dev/null 2>"$w/err" || echo "FAILED: $(cat "$w/err")"
      read -r wall user sys rss < <(tail -1 "$w/t")
      if [ "${COLD:-0}" = 1 ]; then sync; wall=$(echo "$(date +%s.%N) - $start" | bc); fi
      printf '%-40s parity=%s wall %6.2f s  cpu %6.2f s  rss %5d MiB  load %s\n' "$bin" "$level" \
        "$wall" "$(echo "$user + $sys" | bc)" $((rss / 1024)) "$(cut -d' ' -f1 /proc/loadavg)"
      rm -rf "$w"
    done
  done
done
