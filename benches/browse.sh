#!/usr/bin/env bash
# `snapvault browse` over HTTP on a large generated library (docs/benchmarks.md):
#
#   benches/browse.sh [SNAPVAULT_BINARY] [COUNT]
#
# Writes COUNT tiny photos (default 50,000; benches/browse_library.py) into a scratch
# folder, snapshots them into a new repository, starts `browse -v --no-open`, and times
# with curl: the timeline and a 2,000-photo month page (5 requests each), then the first
# timeline request after a new snapshot landed (the server reads the index and catalog
# again and makes a new timeline). The server's own `-v` lines say how long the timeline
# took to make. Everything is removed at the end.
set -euo pipefail
bin=${1:-target/release/snapvault}
count=${2:-50000}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/snapvault-browse-bench.XXXXXX)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
export SNAPVAULT_REPOSITORY=$work/repo SNAPVAULT_PASSWORD=benchmark-password-1
export XDG_CACHE_HOME=$work/cache
python3 "$here/browse_library.py" "$work/src" "$count" 2000
"$bin" init >/dev/null 2>&1
"$bin" snapshot "$work/src" | tail -1
"$bin" -v browse --no-open >"$work/url" 2>"$work/err" &
server=$!
for _ in $(seq 600); do [ -s "$work/url" ] && break; sleep 0.1; done
url=$(head -1 "$work/url")
addr=${url#http://}; addr=${addr%%/*}; token=${url##*token=}
cookie="snapvault_${addr##*:}=$token"
timed() { # LABEL PATH: five requests, each time_total in ms
  printf '%-34s' "$1"
  for _ in 1 2 3 4 5; do
    curl -s -o /dev/null -b "$cookie" -w '%{time_total}\n' "http://$addr$2"
  done | awk '{printf " %7.1f", $1 * 1000} END {print "  ms"}'
}
grep 'timeline of' "$work/err" || true
timed "timeline (GET /)" /
timed "month page, $(curl -s -b "$cookie" "http://$addr/month/2016-01" | grep -o 'class="cell"' | wc -l) photos" /month/2016-01
# A snapshot lands while the server runs: the next page makes a new view.
python3 - "$work/src/DCIM/999APPLE" <<'EOF'
import os, sys
os.makedirs(sys.argv[1], exist_ok=True)
open(os.path.join(sys.argv[1], "IMG_9999.JPG"), "wb").write(b"\xff\xd8new photo\xff\xd9")
EOF
"$bin" snapshot "$work/src" | tail -1
timed "timeline after a new snapshot" /
grep "changed; index" "$work/err" || true
