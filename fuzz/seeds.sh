#!/bin/sh
# Generate the seed corpus of every fuzz target into fuzz/corpus/<target>/ (gitignored):
# real repository objects from an unencrypted repository made by the snapvault binary,
# sample photos/videos from `snapvault demo`, and hand-made device-protocol frames.
#
#   fuzz/seeds.sh [OUT_DIR]         (default: fuzz/corpus)
#
# SNAPVAULT_BIN=path/to/snapvault skips building the binary.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out=${1:-$here/corpus}

if [ -n "${SNAPVAULT_BIN:-}" ]; then
    sv=$SNAPVAULT_BIN
else
    cargo build -q --manifest-path "$root/Cargo.toml" -p snapvault --bin snapvault
    sv=${CARGO_TARGET_DIR:-$root/target}/debug/snapvault
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

for t in pack_header index_file tree snapshot key_file config lock media_inspect blob \
    afc_packet usbmuxd_frame lockdown_frame parity_file; do
    mkdir -p "$out/$t"
done

# A snapvault run with no inherited settings.
run() {
    env -u SNAPVAULT_PASSWORD -u SNAPVAULT_PASSWORD_FILE -u SNAPVAULT_PASSWORD_COMMAND \
        -u SNAPVAULT_CONFIG -u SNAPVAULT_PROFILE XDG_CACHE_HOME="$work/cache" "$sv" "$@"
}

# ---- sample media, an encrypted repository (key file, config) from `snapvault demo`
run -q demo --dir "$work/demo" >/dev/null 2>&1
n=0
for f in "$work"/demo/iPhone/DCIM/*/*; do
    n=$((n + 1))
    # Metadata sits at the start (HEIC, JPEG, PNG, AAE) or, for videos, at the end.
    head -c 6000 "$f" >"$out/media_inspect/head-$n-$(basename "$f")"
    case "$f" in
    *.MOV | *.mov | *.MP4 | *.mp4) tail -c 6000 "$f" >"$out/media_inspect/tail-$n-$(basename "$f")" ;;
    esac
    [ $n -lt 12 ] || break
done
cp "$work/demo/repo/config" "$out/config/encrypted"
for k in "$work"/demo/repo/keys/*; do cp "$k" "$out/key_file/real"; done

# ---- an unencrypted repository holding a few small files: every object is plain
src="$work/Camera Roll"
mkdir -p "$src/DCIM/100APPLE" "$src/empty"
printf 'a small text sidecar\n' >"$src/DCIM/100APPLE/IMG_0001.AAE"
head -c 3000 /dev/urandom >"$src/DCIM/100APPLE/IMG_0002.HEIC"
ln -s IMG_0002.HEIC "$src/DCIM/100APPLE/link"
cp "$out/media_inspect/head-1-"* "$src/DCIM/100APPLE/" 2>/dev/null || true
export SNAPVAULT_REPOSITORY="$work/plain"
run -q init --insecure-no-encryption
run -q snapshot --tag seed "$src"
printf 'changed\n' >>"$src/DCIM/100APPLE/IMG_0001.AAE"
run -q snapshot "$src"
cp "$work/plain/config" "$out/config/plain"
i=0
for f in "$work"/plain/data/*/*; do i=$((i + 1)); cp "$f" "$out/pack_header/pack-$i"; done
i=0
for f in "$work"/plain/index/*; do i=$((i + 1)); cp "$f" "$out/index_file/index-$i"; done
i=0
for f in "$work"/plain/snapshots/*; do i=$((i + 1)); cp "$f" "$out/snapshot/snapshot-$i"; done
unset SNAPVAULT_REPOSITORY

# ---- hand-made JSON objects (tree blobs are zstd-compressed inside packs)
id=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
cat >"$out/tree/tree-1" <<EOF
{"nodes":[{"name":"IMG_0001.HEIC","type":"file","mode":420,"mtime":1689350591000000000,"btime":1689350591000000000,"size":2048,"content":["$id","$id"],"media":{"kind":"photo","taken":"2023-07-14T18:03:11+02:00","date_source":"exif","pair":"IMG_0001","content_id":"5F3C2B1A-0000-4000-8000-000000000001"}},{"name":{"hex":"ff00fe"},"type":"symlink","mode":511,"mtime":0,"size":0,"target":{"hex":"2e2e2f78"}},{"name":"sub","type":"dir","mode":493,"mtime":-1000,"size":0,"subtree":"$id"}]}
EOF
# Hard links (dev/ino), a FIFO, a socket, devices (rdev): the fields added for 16.6.
cat >"$out/tree/tree-2" <<EOF
{"nodes":[{"name":"a.jpg","type":"file","mode":420,"mtime":0,"size":1,"content":["$id"],"dev":66306,"ino":1234567},{"name":"b.jpg","type":"file","mode":420,"mtime":0,"size":1,"content":["$id"],"dev":66306,"ino":1234567},{"name":"disk","type":"blockdev","mode":432,"mtime":0,"rdev":2049},{"name":"null","type":"chardev","mode":438,"mtime":0,"rdev":259},{"name":"pipe","type":"fifo","mode":420,"mtime":0},{"name":"sock","type":"socket","mode":493,"mtime":0}]}
EOF
# Change-test fields (ctime, inode), on a file with one name and on one with two.
cat >"$out/tree/tree-3" <<EOF
{"nodes":[{"name":"IMG_0001.HEIC","type":"file","mode":420,"mtime":1700000000000000000,"size":60000,"content":["$id"],"ctime":1700000123456789012,"inode":4295032833},{"name":"IMG_0002.HEIC","type":"file","mode":420,"mtime":-1,"size":1,"content":["$id"],"dev":66306,"ino":917505,"ctime":-5,"inode":917505}]}
EOF
printf '{"nodes":[]}' >"$out/tree/tree-empty"
# As snapvault writes them, without the final newline: read by the compact decoder.
for f in tree-1 tree-2; do
    printf '%s' "$(cat "$out/tree/$f")" >"$out/tree/$f-compact"
done
cat >"$out/lock/lock" <<EOF
{"hostname":"mac","username":"me","pid":4242,"time":1700000000,"exclusive":true,"command":"prune"}
EOF
cat >"$out/key_file/cheap" <<EOF
{"version":1,"created":1700000000,"hostname":"mac","username":"me","kdf":"argon2id","params":{"m_kib":64,"t":1,"p":1},"salt":"00112233445566778899aabbccddeeff","data":"$id$id$id$id"}
EOF

# ---- blobs: flags byte, claimed plaintext length (u32 LE), stored bytes
printf '\000\005\000\000\000hello' >"$out/blob/plain"
if command -v zstd >/dev/null 2>&1; then
    { printf '\001\014\000\000\000'; printf 'hello photos' | zstd -q -c; } >"$out/blob/zstd"
    { printf '\001\014\000\000\000'; printf 'hello photos' | zstd -q -c; printf '\000\000\000'; } >"$out/blob/zstd-padded"
fi

# ---- device protocol frames
# le VALUE BYTES / be VALUE BYTES: an integer in little/big-endian bytes.
le() {
    v=$1 k=0
    while [ $k -lt "$2" ]; do
        printf "\\$(printf '%03o' $((v & 255)))"
        v=$((v >> 8)) k=$((k + 1))
    done
}
be() {
    k=$(($2 - 1))
    while [ $k -ge 0 ]; do
        printf "\\$(printf '%03o' $((($1 >> (k * 8)) & 255)))"
        k=$((k - 1))
    done
}
plist() {
    printf '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>%s</dict></plist>\n' "$1"
}
usbmuxd() { # NAME BODY
    len=$(printf '%s' "$2" | wc -c)
    { le $((16 + len)) 4; le 1 4; le 8 4; le 7 4; printf '%s' "$2"; } >"$out/usbmuxd_frame/$1"
}
lockdown() { # NAME BODY
    len=$(printf '%s' "$2" | wc -c)
    { be "$len" 4; printf '%s' "$2"; } >"$out/lockdown_frame/$1"
}
afc() { # NAME OPCODE HEADER_PAYLOAD PAYLOAD (payloads as printf formats)
    hl=$(printf "$3" | wc -c)
    pl=$(printf "$4" | wc -c)
    {
        le $((0x4141504c36414643)) 8
        le $((40 + hl + pl)) 8
        le $((40 + hl)) 8
        le 1 8
        le "$2" 8
        printf "$3"
        printf "$4"
    } >"$out/afc_packet/$1"
}
usbmuxd list "$(plist '<key>MessageType</key><string>ListDevices</string><key>ClientVersionString</key><string>snapvault</string><key>ProgName</key><string>snapvault</string>')"
usbmuxd connect "$(plist '<key>MessageType</key><string>Connect</string><key>DeviceID</key><integer>3</integer><key>PortNumber</key><integer>32498</integer>')"
usbmuxd result "$(plist '<key>MessageType</key><string>Result</string><key>Number</key><integer>0</integer>')"
usbmuxd devices "$(plist '<key>DeviceList</key><array><dict><key>DeviceID</key><integer>3</integer><key>MessageType</key><string>Attached</string><key>Properties</key><dict><key>ConnectionType</key><string>USB</string><key>DeviceID</key><integer>3</integer><key>SerialNumber</key><string>00008110-001A2B3C4D5E6F70</string></dict></dict></array>')"
# The binary protocol (version 0): Connect to device 3, port 62078 (network order), and Listen.
{ le 24 4; le 0 4; le 2 4; le 9 4; le 3 4; be 62078 2; le 0 2; } >"$out/usbmuxd_frame/connect-v0"
{ le 16 4; le 0 4; le 3 4; le 9 4; } >"$out/usbmuxd_frame/listen-v0"
lockdown query "$(plist '<key>Label</key><string>snapvault</string><key>Request</key><string>QueryType</string>')"
lockdown type "$(plist '<key>Request</key><string>QueryType</string><key>Type</key><string>com.apple.mobile.lockdown</string>')"
lockdown getvalue "$(plist '<key>Key</key><string>ProductVersion</string><key>Label</key><string>snapvault</string><key>Request</key><string>GetValue</string>')"
lockdown service "$(plist '<key>Request</key><string>StartService</string><key>Service</key><string>com.apple.afc</string><key>Port</key><integer>49152</integer>')"
afc readdir 3 '/DCIM\000' ''
afc fileinfo 10 '/DCIM/100APPLE/IMG_0001.HEIC\000' ''
afc open 13 '\003\000\000\000\000\000\000\000/DCIM/100APPLE/IMG_0001.HEIC\000' ''
afc read 15 '\001\000\000\000\000\000\000\000\000\000\001\000\000\000\000\000' ''
afc status 1 '\000\000\000\000\000\000\000\000' ''
afc data 2 '' 'st_size\0003000\000st_ifmt\000S_IFREG\000st_mtime\0001689350591000000000\000st_birthtime\0001689350591000000000\000'
afc names 2 '' '.\000..\000IMG_0001.HEIC\000IMG_0001.MOV\000'

for t in "$out"/*; do
    printf '%-16s %3d seeds\n' "$(basename "$t")" "$(ls "$t" | wc -l)"
done
