#!/usr/bin/env bash
# Repair's cost, binaries paired (issue 21): one repository of LIBRARY with 5 % parity is made
# once (by the first binary); then for each run and each binary in turn, a copy of it loses
# the same 16 MiB pack and `repair --apply` rebuilds it from parity, and `check --read-data`
# must pass after. One line per repair: binary, wall s, user + system CPU s, peak RSS MiB,
# load average. On a busy machine compare the CPU column.
#
#   benches/parity_repair_ab.sh RUNS LIBRARY BINARY...
#
# WORK (default /var/tmp/parity-repair-ab) holds the repository and its copies.
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,10p "$0"; exit 2; }
runs=$1; lib=$2; shift 2
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
work=${WORK:-/var/tmp/parity-repair-ab}
export SNAPVAULT_PASSWORD=bench-password-parity-21 XDG_CACHE_HOME=$work/cache
rm -rf "$work" && mkdir -p "$work"
"$1" -q --repo "$work/base" init --parity 5 --allow-weak-password >/dev/null
"$1" -q --repo "$work/base" snapshot "$lib" >/dev/null
pack=$(cd "$work/base" && find data -type f -size +15M | sort | head -1)
echo "losing $pack ($(stat -c %s "$work/base/$pack") bytes)"
for _ in $(seq 1 "$runs"); do
  for bin in "$@"; do
    rm -rf "$work/repo" "$work/cache" && cp -a "$work/base" "$work/repo" && rm "$work/repo/$pack"
    sync
    /usr/bin/time -o "$work/t" -f '%e %U %S %M' "$bin" -q --repo "$work/repo" repair --apply \
      >/dev/null 2>"$work/err" || echo "FAILED: $(cat "$work/err")"
    read -r wall user sys rss < <(tail -1 "$work/t")
    [ -f "$work/repo/$pack" ] || echo "FAILED: $pack not rebuilt"
    "$bin" -q --repo "$work/repo" check --read-data >/dev/null 2>&1 || echo "FAILED: check after repair"
    printf '%-40s repair wall %6.2f s  cpu %6.2f s  rss %5d MiB  load %s\n' "$bin" "$wall" \
      "$(echo "$user + $sys" | bc)" $((rss / 1024)) "$(cut -d' ' -f1 /proc/loadavg)"
  done
done
rm -rf "$work"
