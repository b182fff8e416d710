#!/usr/bin/env bash
# A/B of snapvault binaries on an S3 server: one repository (made by the first binary from
# LIBRARY), then restore and check --read-data by each binary in turn, RUNS times; prints
# durable wall, CPU seconds and peak RSS per step. Server and credentials as benches/s3.sh
# (target/test-servers/env: the tests' moto server).
#
#   benches/s3_ab.sh LIBRARY RUNS BINARY...
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
USAGE_LINES=2,7p
# shellcheck source=benches/common.sh
. "$HERE/common.sh"
[[ $# -ge 3 ]] || usage 1
LIB=$(realpath "$1")
RUNS=$2
shift 2
runs_ok "$RUNS"
ENVF=$ROOT/target/test-servers/env
# shellcheck disable=SC1090
[[ -f $ENVF ]] && . "$ENVF"
ENDPOINT=${S3_ENDPOINT:-${SV_S3_ENDPOINT:?no S3 endpoint: set S3_ENDPOINT}}
BUCKET=${S3_BUCKET:-${SV_S3_BUCKET:?no bucket: set S3_BUCKET}}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-snapvault-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-snapvault-test-secret}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
export SNAPVAULT_PASSWORD=${BENCH_PASSWORD:-snapvault-bench-not-a-secret}
REPO=s3:$ENDPOINT/$BUCKET/bench-ab-$$
W=${WORK:-/var/tmp/snapvault-s3ab}
rm -rf "$W"
mkdir -p "$W"
export XDG_CACHE_HOME=$W/cache
"$1" -q --repo "$REPO" init
"$1" -q --repo "$REPO" snapshot "$LIB"
for ((r = 1; r <= RUNS; r++)); do
    for bin in "$@"; do
        for step in restore check; do
            rm -rf "$W/t"
            mkdir -p "$W/t"
            case $step in
                restore) args=(restore latest --target "$W/t") ;;
                check) args=(check --read-data) ;;
            esac
            t0=$(date +%s.%N)
            /usr/bin/time -f "%U %S %M" -o "$W/tf" "$bin" -q --repo "$REPO" "${args[@]}"
            sync -f "$W"
            t1=$(date +%s.%N)
            read -r u s m <"$W/tf"
            python3 -c 'import sys; a=sys.argv[1:]; print(f"{a[0]} {a[1]} run{a[2]}: {float(a[4])-float(a[3]):.1f} s durable, {float(a[5])+float(a[6]):.2f} CPU-s, {int(a[7])//1024} MiB peak RSS, load {a[8]}")' \
                "$step" "$bin" "$r" "$t0" "$t1" "$u" "$s" "$m" "$(cut -d' ' -f1 /proc/loadavg)"
        done
    done
done
rm -rf "$W/t"
say "objects left under $BUCKET/bench-ab-$$ (delete them as benches/s3.sh does)"
