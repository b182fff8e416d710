#!/usr/bin/env bash
# snapvault vs restic (and rustic, when installed) on an S3 server: snapshot, restore and
# check --read-data of one library, each tool into its own prefix of one bucket. Durable
# time (sync inside the timed step, for the restore) and returned time; medians.
#
#   benches/s3.sh LIBRARY [RUNS]
#
# The server comes from target/test-servers/env (SV_S3_ENDPOINT, SV_S3_BUCKET: the moto
# server the tests use, on 127.0.0.1) or from S3_ENDPOINT / S3_BUCKET; credentials from
# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (default: the test server's). Each run's objects
# are deleted afterwards (with boto3 from the test servers' venv, or python3's).
# Requests per step are counted in the server's request log (MOTO_LOG, default
# $SV_SERVERS_DIR/moto.log: werkzeug writes one line per request, path and query included),
# keeping only the lines that name the run's own prefix, so other clients of the same
# server do not count; without a readable log the column says "–".
# Environment: SNAPVAULT (binary; default target/release/snapvault), SNAPVAULT_BEFORE (an
# earlier binary, measured too as "snapvault-before"), RUSTIC (default: found
# on PATH or in /var/tmp/snapvault-bench/tools/bin), WORK (default /var/tmp/snapvault-s3).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
USAGE_LINES=2,18p
# shellcheck source=benches/common.sh
. "$HERE/common.sh"

[[ $# -ge 1 && $1 != -h && $1 != --help ]] || usage 0
LIB=$(realpath "$1")
RUNS=${2:-3}
runs_ok "$RUNS"
[[ -d $LIB ]] || die "no library folder $LIB"

ENVF=$ROOT/target/test-servers/env
if [[ -f $ENVF ]]; then
    # shellcheck disable=SC1090
    . "$ENVF"
fi
ENDPOINT=${S3_ENDPOINT:-${SV_S3_ENDPOINT:?no S3 endpoint: set S3_ENDPOINT}}
BUCKET=${S3_BUCKET:-${SV_S3_BUCKET:?no bucket: set S3_BUCKET}}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-snapvault-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-snapvault-test-secret}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
SNAPVAULT=${SNAPVAULT:-$ROOT/target/release/snapvault}
[[ -x $SNAPVAULT ]] || die "no snapvault binary at $SNAPVAULT (cargo build --release)"
export PATH=/var/tmp/snapvault-bench/tools/bin:$PATH
RUSTIC=${RUSTIC:-$(command -v rustic || true)}
command -v restic >/dev/null || die "restic is missing (apt-get install restic)"
WORK=${WORK:-/var/tmp/snapvault-s3}
PY=${SV_SERVERS_DIR:+$SV_SERVERS_DIR/venv/bin/python3}
[[ -n $PY && -x $PY ]] || PY=python3

export BENCH_PASSWORD=${BENCH_PASSWORD:-snapvault-bench-not-a-secret}
export SNAPVAULT_PASSWORD=$BENCH_PASSWORD RESTIC_PASSWORD=$BENCH_PASSWORD RUSTIC_PASSWORD=$BENCH_PASSWORD
mkdir -p "$WORK"
RESULTS=$WORK/results.tsv
LOG=$WORK/tools.log
MOTO_LOG=${MOTO_LOG:-${SV_SERVERS_DIR:+$SV_SERVERS_DIR/moto.log}}
[[ -n $MOTO_LOG && -r $MOTO_LOG ]] || MOTO_LOG=
LIB_BYTES=$(du -sb "$LIB" | cut -f1)
printf 'run\ttool\tstep\tdurable\treturned\tuser\tsys\trss_kb\tstatus\trequests\n' >"$RESULTS"
: >"$LOG"

# Delete every object under a prefix of the bucket.
wipe() {
    "$PY" - "$ENDPOINT" "$BUCKET" "$1" <<'EOF'
import sys, boto3
ep, bucket, prefix = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=ep)
pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
for page in pages:
    keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
    if keys:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
EOF
}

# requests_since OFFSET: requests in the server's log after byte OFFSET that name PREFIX
# (the run's own objects), as "N GET g PUT p HEAD h other o"; "–" without a log.
requests_since() {
    [[ -n $MOTO_LOG ]] || { echo "–"; return; }
    python3 -c '
import collections, re, sys
log, off, bucket, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
f = open(log, "rb"); f.seek(off)
n = collections.Counter()
for line in f.read().decode("utf-8", "replace").splitlines():
    line = re.sub(r"\x1b\[[0-9;]*m", "", line)  # werkzeug colours some lines
    m = re.search(r"\"([A-Z]+) (\S+) HTTP/", line)
    if m and (f"/{bucket}/{prefix}/" in m.group(2) or f"prefix={prefix}" in m.group(2)):
        n[m.group(1)] += 1
other = sum(v for k, v in n.items() if k not in ("GET", "PUT", "HEAD"))
g, p, h = n["GET"], n["PUT"], n["HEAD"]
print(f"{sum(n.values())} GET {g} PUT {p} HEAD {h} other {other}")
' "$MOTO_LOG" "$1" "$BUCKET" "$PREFIX"
}

log_size() { if [[ -n $MOTO_LOG ]]; then stat -c %s "$MOTO_LOG"; else echo 0; fi; }

# measure RUN TOOL STEP CMD...: time CMD (returned), then sync (durable); count the
# requests that name PREFIX.
measure() {
    local run=$1 tool=$2 step=$3
    shift 3
    local tf status=ok t0 tr t1 off reqs
    off=$(log_size)
    tf=$(mktemp)
    echo "=== $run $tool $step: $*" >>"$LOG"
    t0=$(date +%s.%N)
    /usr/bin/time -v -o "$tf" "$@" >>"$LOG" 2>&1 || status=FAILED
    tr=$(date +%s.%N)
    sync -f "$WORK"
    t1=$(date +%s.%N)
    local user sys rss
    user=$(awk -F': ' '/User time/{print $2}' "$tf")
    sys=$(awk -F': ' '/System time/{print $2}' "$tf")
    rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$tf")
    rm -f "$tf"
    reqs=$(requests_since "$off")
    python3 -c 'import sys; a=sys.argv[1:]; print(f"{a[0]}\t{a[1]}\t{a[2]}\t{float(a[5])-float(a[3]):.3f}\t{float(a[4])-float(a[3]):.3f}\t{a[6]}\t{a[7]}\t{a[8]}\t{a[9]}\t{a[10]}")' \
        "$run" "$tool" "$step" "$t0" "$tr" "$t1" "${user:-0}" "${sys:-0}" "${rss:-0}" "$status" "$reqs" >>"$RESULTS"
    say "  $tool $step: $(tail -1 "$RESULTS" | cut -f4) s durable, $status, requests: $reqs; $(uptime | sed 's/.*load/load/')"
    [[ $status == ok ]] || { tail -n 15 "$LOG" >&2; return 1; }
}

TOOLS=(snapvault restic)
# An earlier snapvault binary beside the current one (an A/B in the same table).
[[ -n ${SNAPVAULT_BEFORE:-} ]] && TOOLS=(snapvault-before "${TOOLS[@]}")
[[ -n $RUSTIC ]] && TOOLS+=(rustic)
HOST=${ENDPOINT#*://}
say "library $LIB ($(du -sh "$LIB" | cut -f1)), $RUNS run(s), tools: ${TOOLS[*]}; $(uptime | sed 's/.*load/load/')"
for ((r = 1; r <= RUNS; r++)); do
    for tool in "${TOOLS[@]}"; do
        prefix=bench-s3-$tool-$$-$r
        PREFIX=$prefix
        t=$WORK/restore-$tool
        rm -rf "$t" "$WORK/cache-$tool"
        mkdir -p "$t"
        case $tool in
            snapvault | snapvault-before)
                repo="s3:$ENDPOINT/$BUCKET/$prefix"
                bin=$SNAPVAULT
                [[ $tool == snapvault-before ]] && bin=$SNAPVAULT_BEFORE
                c=(env XDG_CACHE_HOME="$WORK/cache-$tool" "$bin" -q --repo "$repo")
                "${c[@]}" init >>"$LOG" 2>&1
                measure "$r" "$tool" snapshot "${c[@]}" snapshot "$LIB"
                measure "$r" "$tool" restore "${c[@]}" restore latest --target "$t"
                measure "$r" "$tool" check "${c[@]}" check --read-data ;;
            restic)
                repo="s3:$ENDPOINT/$BUCKET/$prefix"
                c=(restic -q -r "$repo" --cache-dir "$WORK/cache-$tool")
                "${c[@]}" init --repository-version 2 >>"$LOG" 2>&1
                measure "$r" "$tool" snapshot "${c[@]}" backup --compression auto "$LIB"
                measure "$r" "$tool" restore "${c[@]}" restore latest --target "$t"
                measure "$r" "$tool" check "${c[@]}" check --read-data ;;
            rustic)
                # rustic takes a backend's options only from a config profile.
                mkdir -p "$WORK/cfg/rustic"
                cat >"$WORK/cfg/rustic/s3bench.toml" <<EOF
[repository]
repository = "opendal:s3"
[repository.options]
endpoint = "$ENDPOINT"
bucket = "$BUCKET"
root = "/$prefix"
region = "$AWS_DEFAULT_REGION"
EOF
                c=(env XDG_CONFIG_HOME="$WORK/cfg" "$RUSTIC" -P s3bench --no-progress
                    --cache-dir "$WORK/cache-$tool")
                "${c[@]}" init >>"$LOG" 2>&1
                measure "$r" "$tool" snapshot "${c[@]}" backup "$LIB"
                measure "$r" "$tool" restore "${c[@]}" restore latest "$t"
                measure "$r" "$tool" check "${c[@]}" check --read-data ;;
        esac
        got=$(find "$t" -type d -name "$(basename "$LIB")" -print -quit)
        [[ $tool == snapvault* ]] && got=$(find "$t" -maxdepth 2 -type d -name DCIM -print -quit | xargs -r dirname)
        if [[ -n $got ]] && diff -r "$LIB" "$got" >>"$LOG" 2>&1; then
            say "  $tool restore verified"
        else
            say "  VERIFY FAILED: $tool restore differs (see $LOG)"
        fi
        rm -rf "$t"
        wipe "$prefix"
    done
done
say "$(uptime | sed 's/.*load/load/')"
python3 - "$RESULTS" "$LIB_BYTES" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
gib = int(sys.argv[2]) / 2**30
tools = list(dict.fromkeys(r["tool"] for r in rows))
print("| step | " + " | ".join(f"{t}: durable s (returned s); CPU s; peak RSS; requests per GiB" for t in tools) + " |")
print("|---" * (1 + len(tools)) + "|")
def per_gib(rs):
    counts = [r["requests"].split() for r in rs]
    if any(not c or c[0] == "–" for c in counts):
        return "requests –"
    total = statistics.median(int(c[0]) for c in counts)
    kinds = ", ".join(f"{counts[0][i]} {statistics.median(int(x[i + 1]) for x in counts) / gib:.0f}"
                      for i in range(1, len(counts[0]), 2))
    return f"{total / gib:.0f} req/GiB ({kinds})"
for step in ("snapshot", "restore", "check"):
    cells = []
    for t in tools:
        rs = [r for r in rows if r["tool"] == t and r["step"] == step and r["status"] == "ok"]
        if not rs:
            cells.append("–"); continue
        d = statistics.median(float(r["durable"]) for r in rs)
        ret = statistics.median(float(r["returned"]) for r in rs)
        cpu = statistics.median(float(r["user"]) + float(r["sys"]) for r in rs)
        rss = max(int(r["rss_kb"]) for r in rs) / 1024
        cells.append(f"{d:.2f} ({ret:.2f}); CPU {cpu:.1f} s; {rss:.0f} MiB; {per_gib(rs)}")
    print(f"| {step} | " + " | ".join(cells) + " |")
print(f"\n{len(set(r['run'] for r in rows))} run(s), medians; library {int(sys.argv[2])} bytes ({gib:.2f} GiB)")
EOF
