# Shared by the bench scripts (sourced, not run): messages, usage from the script's own
# header comment, argument checks and sizes. Before sourcing, a script sets HERE (its
# folder) and USAGE_LINES (the `sed -n` range of its header that is the usage text).

NAME=$(basename "$0")

die() { echo "$NAME: error: $*" >&2; exit 1; }
say() { echo "[$(date +%H:%M:%S)] $*" >&2; }
usage() { sed -n "$USAGE_LINES" "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
unknown_argument() { echo "$NAME: unknown argument $1" >&2; usage 2; }

# runs_ok N: --runs must be a positive integer.
runs_ok() { [[ $1 =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"; }

# size_bytes SIZE: "2GiB", "500MiB", … in bytes (corpus.py's rule), or stop.
size_bytes() {
    python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import corpus; print(corpus.parse_size(sys.argv[2]))' "$HERE" "$1" \
        || die "bad --size $1"
}
