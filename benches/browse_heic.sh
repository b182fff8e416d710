#!/usr/bin/env bash
# A HEIC's pictures in `snapvault browse` (docs/benchmarks.md, "A HEIC's pictures"):
#
#   benches/browse_heic.sh [SNAPVAULT_BINARY]
#
# Makes one 4032×3024 HEIC with libheif's heif-enc (-q 50, a 320-pixel thumbnail item)
# from a generated smooth picture, snapshots it, starts `browse --no-open`, and fetches
# `/thumb/…` and `/screen/…` three times each with curl (the first makes the picture, the
# next come from the cache): type, bytes and time. Then heif-thumbnailer's own PNG of the
# same thumbnail, for its size. Needs heif-enc, heif-thumbnailer (and heif-convert for the
# screen picture). Everything is removed at the end.
set -euo pipefail
bin=${1:-target/release/snapvault}
work=$(mktemp -d /tmp/snapvault-heic-bench.XXXXXX)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
export SNAPVAULT_REPOSITORY=$work/repo SNAPVAULT_PASSWORD=benchmark-password-1
export XDG_CACHE_HOME=$work/cache
mkdir -p "$work/src/DCIM/100APPLE"
python3 - "$work/pic.y4m" <<'PY'
import sys
w, h = 4032, 3024
with open(sys.argv[1], "wb") as f:
    f.write(f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\nFRAME\n".encode())
    f.write(bytes((x * 3 + y * 2) // 16 % 256 for y in range(h) for x in range(w)))
    f.write(bytes([100]) * (w // 2 * h // 2))
    f.write(bytes([160]) * (w // 2 * h // 2))
PY
heif-enc -q 50 -t 320 -o "$work/src/DCIM/100APPLE/IMG_0001.HEIC" "$work/pic.y4m" >/dev/null
ls -l "$work/src/DCIM/100APPLE/IMG_0001.HEIC" | awk '{print "HEIC: " $5 " bytes"}'
"$bin" init >/dev/null 2>&1
"$bin" snapshot "$work/src" | tail -1
"$bin" browse --no-open >"$work/url" 2>"$work/err" &
server=$!
for _ in $(seq 600); do [ -s "$work/url" ] && break; sleep 0.1; done
url=$(head -1 "$work/url")
addr=${url#http://}; addr=${addr%%/*}; token=${url##*token=}
cookie="snapvault_${addr##*:}=$token"
month=$(curl -s -b "$cookie" "http://$addr/" | grep -o 'data-month="[^"]*"' | head -1 | cut -d'"' -f2)
key=$(curl -s -b "$cookie" "http://$addr/month/$month" | grep -o 'src="/thumb/[0-9a-f]*"' | head -1 | cut -d/ -f3 | tr -d '"')
for what in thumb screen; do
  for _ in 1 2 3; do
    curl -s -o /dev/null -b "$cookie" -w "/$what: %{content_type} %{size_download} bytes %{time_total} s\n" \
      "http://$addr/$what/$key"
  done
done
heif-thumbnailer -s 320 "$work/src/DCIM/100APPLE/IMG_0001.HEIC" "$work/t.png"
ls -l "$work/t.png" | awk '{print "heif-thumbnailer -s 320 alone: PNG " $5 " bytes"}'
