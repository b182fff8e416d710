#!/usr/bin/env python3
"""Deterministic iPhone-like photo library for the snapvault benchmarks (stdlib only).

    corpus.py generate LIB --size 2GiB [--seed 1] [--manifest M]
    corpus.py mutate LIB [--manifest M]            # "a month later": ~2% new, ~1% deleted
    corpus.py reimport LIB DEST [--manifest M]     # copy as DEST/YYYY/MM/<name> (new inodes)
    corpus.py month LIB [--manifest M]             # print the month with the most photos
    corpus.py month-files LIB YYYY-MM [--prefix P] # files (relative paths) captured that month
    corpus.py verify-month LIB YYYY-MM RESTORED    # check a month restore against the source
    corpus.py small LIB --count 20000 [--seed 1] [--min-size 1024 --max-size 16384]   # many small files
    corpus.py photos LIB --count 100000 [--seed 1] # many tiny HEIC/JPEG stills with EXIF dates
    corpus.py stats LIB [--manifest M]             # one-line description of the library

Layout: LIB/DCIM/1nnAPPLE/IMG_nnnn.{HEIC,JPG,MOV,AAE}. Stills are HEIC (~70%) or JPEG,
1.5-4 MB; about half are Live Photos with a 2-4 MB MOV companion (same content id); ~5%
have an .AAE edit sidecar; a few 50-200 MB videos; ~0.4% of stills are exact duplicates
under another IMG number. Every file's payload is pseudo-random (incompressible, like camera
output) behind a real, parseable header: JPEG APP1 Exif and HEIC Exif items carry
DateTimeOriginal + OffsetTimeOriginal (+ Apple MakerNote content id for Live Photos), MOVs
carry mvhd + com.apple.quicktime.creationdate with `moov` at the end, as iPhones write.
The byte layouts follow crates/snapvault-media/src/sample.rs. mtimes are capture instants.

The same seed and size always give byte-identical files. The manifest (JSON, default
LIB.manifest.json, kept outside LIB so no tool backs it up) lists every file with its
capture time; `mutate`, `reimport` and `month*` read it.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import struct
import sys
from datetime import datetime, timedelta, timezone

MiB = 1 << 20
NOISE_BLOCK = 4 * MiB


def parse_size(s):
    s = s.strip()
    units = {"": 1, "B": 1, "K": 1 << 10, "KB": 10**3, "KIB": 1 << 10, "M": MiB, "MB": 10**6,
             "MIB": MiB, "G": 1 << 30, "GB": 10**9, "GIB": 1 << 30, "T": 1 << 40, "TIB": 1 << 40}
    num = s.rstrip("kKmMgGtTiIbB")
    unit = s[len(num):].upper()
    if unit not in units or not num:
        raise argparse.ArgumentTypeError(f"bad size {s!r} (try 2GiB, 500MiB)")
    return int(float(num) * units[unit])


# ------------------------------------------------------------------ noise

def noise_blocks(seed, n):
    """`n` pseudo-random bytes from `seed` (bytes), in blocks of at most 4 MiB."""
    i = 0
    while n > 0:
        k = min(n, NOISE_BLOCK)
        yield hashlib.shake_128(seed + struct.pack("<Q", i)).digest(k)
        n -= k
        i += 1


def noise(seed, n):
    return b"".join(noise_blocks(seed, n))


# ------------------------------------------------------------------ capture times

class Capture:
    """A wall-clock capture time with its UTC offset in minutes."""

    def __init__(self, wall, offset_min):
        self.wall = wall  # naive datetime, local wall clock
        self.offset = offset_min

    @property
    def unix(self):
        return int((self.wall - timedelta(minutes=self.offset))
                   .replace(tzinfo=timezone.utc).timestamp())

    def exif(self):
        return self.wall.strftime("%Y:%m:%d %H:%M:%S")

    def offset_str(self, colon=True):
        sign = "-" if self.offset < 0 else "+"
        a = abs(self.offset)
        return f"{sign}{a // 60:02}{':' if colon else ''}{a % 60:02}"

    def month(self):
        return self.wall.strftime("%Y-%m")

    def to_json(self):
        return [self.wall.strftime("%Y-%m-%dT%H:%M:%S"), self.offset]

    @staticmethod
    def from_json(v):
        return Capture(datetime.strptime(v[0], "%Y-%m-%dT%H:%M:%S"), v[1])


def offset_for(wall, i):
    if i % 11 == 5:
        return -240  # New York trip
    if i % 13 == 8:
        return 540  # Tokyo
    return 120 if 4 <= wall.month <= 10 else 60  # CET / CEST


# ------------------------------------------------------------------ TIFF / EXIF (big-endian)

ASCII, SHORT, LONG, UNDEFINED, SLONG = 2, 3, 4, 7, 9


def ent_ascii(tag, s):
    v = s.encode() + b"\0"
    return (tag, ASCII, len(v), v)


def ent_short(tag, v):
    return (tag, SHORT, 1, struct.pack(">H", v))


def ent_long(tag, v):
    return (tag, LONG, 1, struct.pack(">I", v))


def ent_undef(tag, v):
    return (tag, UNDEFINED, len(v), v)


def ifd_size(entries):
    return 2 + 12 * len(entries) + 4 + sum(
        len(e[3]) + (len(e[3]) & 1) for e in entries if len(e[3]) > 4)


def write_ifd(out, entries):
    value_off = len(out) + 2 + 12 * len(entries) + 4
    offsets = []
    for e in entries:
        offsets.append(value_off)
        if len(e[3]) > 4:
            value_off += len(e[3]) + (len(e[3]) & 1)
    out += struct.pack(">H", len(entries))
    for i in sorted(range(len(entries)), key=lambda i: entries[i][0]):
        tag, typ, count, value = entries[i]
        out += struct.pack(">HHI", tag, typ, count)
        out += value.ljust(4, b"\0") if len(value) <= 4 else struct.pack(">I", offsets[i])
    out += b"\0\0\0\0"
    for e in entries:
        if len(e[3]) > 4:
            out += e[3] + (b"\0" if len(e[3]) & 1 else b"")


def apple_maker_note(content_id):
    cid = content_id.encode() + b"\0"
    m = bytearray(b"Apple iOS\0\0\x01MM")
    m += struct.pack(">H", 2)
    m += struct.pack(">HHII", 0x0001, SLONG, 1, 14)
    m += struct.pack(">HHI", 0x0011, ASCII, len(cid))
    m += struct.pack(">I", 14 + 2 + 24 + 4) + b"\0\0\0\0" + cid
    return bytes(m)


def exif_block(cap, content_id):
    ifd0 = [ent_ascii(0x010F, "Apple"), ent_ascii(0x0110, "iPhone 15 Pro"),
            ent_ascii(0x0131, "17.2"), ent_short(0x0112, 1), ent_long(0x8769, 0)]
    exif = [ent_undef(0x9000, b"0232"), ent_ascii(0x9011, cap.offset_str()),
            ent_ascii(0x9012, cap.offset_str()), ent_ascii(0x9003, cap.exif()),
            ent_ascii(0x9004, cap.exif())]
    if content_id:
        exif.append(ent_undef(0x927C, apple_maker_note(content_id)))
    exif_off = 8 + ifd_size(ifd0)
    ifd0[-1] = ent_long(0x8769, exif_off)
    out = bytearray(b"MM\0*") + struct.pack(">I", 8)
    write_ifd(out, ifd0)
    write_ifd(out, exif)
    return bytes(out)


def content_id(rng):
    h = "%032X" % rng.getrandbits(128)
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


# ------------------------------------------------------------------ file formats (streamed)

def write_jpeg(f, cap, cid, payload, seed):
    seg = lambda marker, body: b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body
    f.write(b"\xff\xd8" + seg(0xE1, b"Exif\0\0" + exif_block(cap, cid)))
    rest = b""
    for block in noise_blocks(seed, payload):
        data = rest + block
        n = len(data) - len(data) % 65533
        for i in range(0, n, 65533):
            f.write(seg(0xFE, data[i:i + 65533]))
        rest = data[n:]
    if rest:
        f.write(seg(0xFE, rest))
    f.write(seg(0xDB, b"\0" + b"\x01" * 64))
    f.write(seg(0xC0, bytes([8, 0, 8, 0, 8, 1, 1, 0x11, 0])))
    for cls in (0x00, 0x10):
        f.write(seg(0xC4, bytes([cls, 1]) + b"\0" * 15 + b"\0"))
    f.write(seg(0xDA, bytes([1, 1, 0, 0, 63, 0])) + b"\x3f\xff\xd9")


def bx(typ, body):
    return struct.pack(">I", len(body) + 8) + typ + body


def full_bx(typ, version, flags, body):
    return bx(typ, bytes([version]) + struct.pack(">I", flags)[1:] + body)


def ftyp(major, minor, compatible):
    return bx(b"ftyp", major + struct.pack(">I", minor) + b"".join(compatible))


def hdlr(handler):
    return full_bx(b"hdlr", 0, 0, b"\0" * 4 + handler + b"\0" * 12 + b"\0")


def infe(item_id, item_type):
    return full_bx(b"infe", 2, 0, struct.pack(">HH", item_id, 0) + item_type + b"\0")


def write_heic(f, cap, cid, payload, seed):
    exif_item = struct.pack(">I", 6) + b"Exif\0\0" + exif_block(cap, cid)
    head = ftyp(b"heic", 0, [b"mif1", b"heic"])

    def meta(mdat_body_off):
        c = hdlr(b"pict") + full_bx(b"pitm", 0, 0, struct.pack(">H", 1))
        c += full_bx(b"iinf", 0, 0, struct.pack(">H", 2) + infe(1, b"hvc1") + infe(2, b"Exif"))
        c += full_bx(b"iref", 0, 0, bx(b"cdsc", bytes([0, 2, 0, 1, 0, 1])))
        ipco = bx(b"ipco", full_bx(b"ispe", 0, 0, struct.pack(">II", 8, 8)))
        c += bx(b"iprp", ipco + full_bx(b"ipma", 0, 0, bytes([0, 0, 0, 1, 0, 1, 1, 0x01])))
        iloc = bytes([0x44, 0x00]) + struct.pack(">H", 2)
        for item_id, off, ln in ((1, mdat_body_off + len(exif_item), payload),
                                 (2, mdat_body_off, len(exif_item))):
            iloc += struct.pack(">HHHII", item_id, 0, 1, off, ln)
        c += full_bx(b"iloc", 0, 0, iloc)
        return full_bx(b"meta", 0, 0, c)

    off = len(head) + len(meta(0)) + 8
    f.write(head + meta(off))
    f.write(struct.pack(">I", 8 + len(exif_item) + payload) + b"mdat" + exif_item)
    for block in noise_blocks(seed, payload):
        f.write(block)


QT_EPOCH_OFFSET = 2_082_844_800


def write_mov(f, cap, cid, payload, seed):
    f.write(ftyp(b"qt  ", 0x20050300, [b"qt  "]) + bx(b"wide", b""))
    f.write(struct.pack(">I", payload + 8) + b"mdat")
    for block in noise_blocks(seed, payload):
        f.write(block)
    secs = cap.unix + QT_EPOCH_OFFSET
    mv = struct.pack(">IIII", secs, secs, 600, 1800) + struct.pack(">IH", 0x00010000, 0x0100)
    mv += b"\0" * 10 + b"".join(struct.pack(">I", m) for m in
                                (0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000))
    mv += b"\0" * 24 + struct.pack(">I", 2)
    items = [("com.apple.quicktime.make", "Apple"), ("com.apple.quicktime.model", "iPhone 15 Pro"),
             ("com.apple.quicktime.creationdate",
              cap.wall.strftime("%Y-%m-%dT%H:%M:%S") + cap.offset_str(colon=False))]
    if cid:
        items.append(("com.apple.quicktime.content.identifier", cid))
    keys = struct.pack(">I", len(items))
    ilst = b""
    for i, (k, v) in enumerate(items):
        keys += struct.pack(">I", len(k) + 8) + b"mdta" + k.encode()
        ilst += bx(struct.pack(">I", i + 1), bx(b"data", struct.pack(">II", 1, 0) + v.encode()))
    qt_meta = bx(b"meta", hdlr(b"mdta") + full_bx(b"keys", 0, 0, keys) + bx(b"ilst", ilst))
    f.write(bx(b"moov", full_bx(b"mvhd", 0, 0, mv) + qt_meta))


def write_aae(f, cap, seed):
    import base64
    edited = datetime.fromtimestamp(cap.unix + 3600, timezone.utc)
    f.write(f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>adjustmentBaseVersion</key>
	<integer>0</integer>
	<key>adjustmentData</key>
	<data>
	{base64.b64encode(noise(seed, 240)).decode()}
	</data>
	<key>adjustmentEditorBundleID</key>
	<string>com.apple.mobileslideshow</string>
	<key>adjustmentFormatIdentifier</key>
	<string>com.apple.photo</string>
	<key>adjustmentFormatVersion</key>
	<string>1.5</string>
	<key>adjustmentTimestamp</key>
	<date>{edited.strftime('%Y-%m-%dT%H:%M:%SZ')}</date>
</dict>
</plist>
""".encode())


WRITERS = {"heic": write_heic, "jpeg": write_jpeg, "mov": write_mov}


def write_file(lib, e):
    """Write manifest entry `e` under `lib` and set its mtime to the capture instant."""
    path = os.path.join(lib, e["path"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cap = Capture.from_json(e["capture"])
    seed = e["seed"].encode()
    with open(path, "wb") as f:
        if e["format"] == "aae":
            write_aae(f, cap, seed)
        else:
            WRITERS[e["format"]](f, cap, e.get("cid"), e["payload"], seed)
    e["size"] = os.path.getsize(path)
    os.utime(path, (cap.unix, cap.unix))


# ------------------------------------------------------------------ planning

class Planner:
    """Plans captures (a still with its companions, or a video) in IMG-number order."""

    def __init__(self, rng, seed, per_folder, start_num=1):
        self.rng = rng
        self.seed = seed
        self.per_folder = per_folder
        self.num = start_num

    def _rel(self, num, ext):
        folder = 100 + (num - 1) // self.per_folder
        return f"DCIM/{folder}APPLE/IMG_{(num - 1) % 9999 + 1:04}.{ext}"

    def capture(self, wall, kind, group):
        """Entries of one capture: kind 'still' or 'video'."""
        r = self.rng
        num = self.num
        self.num += 1
        cap = Capture(wall, offset_for(wall, num))
        mb = lambda lo, hi: int(r.uniform(lo, hi) * 10**6)
        out = []

        def add(ext, fmt, payload, cid=None, role="main"):
            out.append({"path": self._rel(num, ext), "format": fmt, "payload": payload,
                        "cid": cid, "capture": cap.to_json(), "group": group, "role": role,
                        "seed": f"{self.seed}:{num}:{ext}"})

        if kind == "video":
            add("MOV", "mov", mb(50, 200), role="video")
            return out
        live = r.random() < 0.5
        cid = content_id(r) if live else None
        if r.random() < 0.68:
            add("HEIC", "heic", mb(1.5, 4), cid)
        else:
            add("JPG", "jpeg", mb(1.5, 4), cid)
        if live:
            add("MOV", "mov", mb(2, 4), cid, role="live")
        if r.random() < 0.05:
            add("AAE", "aae", 0, role="sidecar")
        return out


def est(e):
    return e["payload"] + (1100 if e["format"] == "aae" else 600)


def plan_library(size, seed, per_folder):
    rng = random.Random(seed)
    p = Planner(rng, seed, per_folder)
    # Videos take ~15% of the budget (at least one); stills with companions the rest.
    n_videos = max(1, round(size * 0.15 / 125e6))
    stills_budget = size - n_videos * 125e6
    avg_capture = 2.75e6 + 0.5 * 3e6 + 0.05 * 1100  # still + half a Live Photo MOV
    n_captures = max(4, int(stills_budget / avg_capture)) + n_videos
    video_at = set(rng.sample(range(n_captures), n_videos))
    start = datetime(2023, 3, 1)
    span = timedelta(days=365)
    entries = []
    total = 0
    i = 0
    while total < size:
        frac = min(i / max(n_captures - 1, 1), 1.0)
        day = (start + span * frac).replace(hour=0, minute=0, second=0, microsecond=0)
        wall = day + timedelta(seconds=rng.randrange(8 * 3600, 21 * 3600))
        kind = "video" if i in video_at else "still"
        for e in p.capture(wall, kind, group=i):
            entries.append(e)
            total += est(e)
        i += 1
    # Exact duplicates under another IMG number (~0.4% of stills, at least one).
    stills = [e for e in entries if e["role"] == "main"]
    for src in rng.sample(stills, max(1, round(len(stills) * 0.004))):
        num = p.num
        p.num += 1
        ext = src["path"].rsplit(".", 1)[1]
        dup = dict(src, path=p._rel(num, ext), role="duplicate", group=i, cid=src["cid"])
        entries.append(dup)
        i += 1
    return entries, p.num, i


def manifest_path(lib, given):
    return given or os.path.normpath(lib) + ".manifest.json"


def load(lib, given):
    with open(manifest_path(lib, given)) as f:
        return json.load(f)


def save(lib, given, m):
    path = manifest_path(lib, given)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(m, f, indent=0)
    os.replace(tmp, path)


def cmd_generate(a):
    if os.path.exists(a.lib) and os.listdir(a.lib):
        sys.exit(f"corpus.py: {a.lib} exists and is not empty; remove it first")
    entries, next_num, next_group = plan_library(a.size, a.seed, a.per_folder)
    for e in entries:
        write_file(a.lib, e)
    m = {"seed": a.seed, "size_param": a.size, "per_folder": a.per_folder,
         "next_num": next_num, "next_group": next_group, "mutations": 0, "files": entries}
    save(a.lib, a.manifest, m)
    print(describe(m))


def cmd_mutate(a):
    m = load(a.lib, a.manifest)
    k = m["mutations"] + 1
    rng = random.Random(f"{m['seed']}-mutate-{k}")
    groups = {}
    for e in m["files"]:
        groups.setdefault(e["group"], []).append(e)
    still_groups = [g for g, es in groups.items() if any(e["role"] == "main" for e in es)]
    # ~1% of the photos deleted (with their Live Photo video and sidecar).
    gone = set(rng.sample(still_groups, max(1, round(len(still_groups) * 0.01))))
    removed = [e for e in m["files"] if e["group"] in gone]
    for e in removed:
        os.remove(os.path.join(a.lib, e["path"]))
    keep = [e for e in m["files"] if e["group"] not in gone]
    # ~2% new photos, taken during the month after the newest capture.
    last = max(Capture.from_json(e["capture"]).wall for e in keep)
    p = Planner(rng, f"{m['seed']}m{k}", m["per_folder"], m["next_num"])
    added = []
    n_new = max(2, round(len(still_groups) * 0.02))
    for j in range(n_new):
        wall = (last + timedelta(days=1 + 30 * j // n_new)).replace(hour=0, minute=0, second=0)
        wall += timedelta(seconds=rng.randrange(8 * 3600, 21 * 3600))
        for e in p.capture(wall, "still", group=m["next_group"] + j):
            write_file(a.lib, e)
            added.append(e)
    m["files"] = keep + added
    m["next_num"] = p.num
    m["next_group"] += n_new
    m["mutations"] = k
    save(a.lib, a.manifest, m)
    mb = lambda es: sum(e["size"] for e in es) / 1e6
    print(f"mutate: deleted {len(removed)} files ({mb(removed):.1f} MB) of {len(gone)} photos, "
          f"added {len(added)} files ({mb(added):.1f} MB) of {n_new} photos")


def cmd_reimport(a):
    m = load(a.lib, a.manifest)
    os.makedirs(a.dest, exist_ok=True)
    n = 0
    for e in m["files"]:
        cap = Capture.from_json(e["capture"])
        d = os.path.join(a.dest, cap.wall.strftime("%Y"), cap.wall.strftime("%m"))
        os.makedirs(d, exist_ok=True)
        name = os.path.basename(e["path"])
        target = os.path.join(d, name)
        stem, ext = os.path.splitext(name)
        j = 1
        while os.path.exists(target):
            target = os.path.join(d, f"{stem} ({j}){ext}")
            j += 1
        shutil.copy2(os.path.join(a.lib, e["path"]), target)
        n += 1
    print(f"reimport: {n} files copied under {a.dest}/YYYY/MM")


def busiest_month(m):
    count = {}
    for e in m["files"]:
        if e["role"] in ("main", "duplicate"):
            mo = Capture.from_json(e["capture"]).month()
            count[mo] = count.get(mo, 0) + 1
    return max(sorted(count), key=lambda k: count[k])


def month_files(m, month):
    return sorted(e["path"] for e in m["files"]
                  if Capture.from_json(e["capture"]).month() == month)


def cmd_month(a):
    print(busiest_month(load(a.lib, a.manifest)))


def cmd_month_files(a):
    for p in month_files(load(a.lib, a.manifest), a.month):
        print(a.prefix + p)


def file_hash(path):
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while True:
            b = f.read(MiB)
            if not b:
                return h.hexdigest()
            h.update(b)


def cmd_verify_month(a):
    """Every restored file must be a file of that month with the source's bytes, and every
    distinct content of that month must be restored (a tool may restore exact duplicates
    once: snapvault's --date restores each distinct photo once)."""
    m = load(a.lib, a.manifest)
    want = month_files(m, a.month)
    want_hash = {p: file_hash(os.path.join(a.lib, p)) for p in want}
    by_name = {}
    for p in want:
        by_name.setdefault(os.path.basename(p), []).append(p)
    problems = []
    got_hashes = set()
    n = 0
    for dirpath, _, files in os.walk(a.restored):
        for name in files:
            n += 1
            h = file_hash(os.path.join(dirpath, name))
            got_hashes.add(h)
            if not any(want_hash[p] == h for p in by_name.get(name, [])):
                problems.append(f"unexpected or different: {os.path.join(dirpath, name)}")
    missing = [p for p in want if want_hash[p] not in got_hashes]
    problems += [f"missing: {p}" for p in missing]
    distinct = len(set(want_hash.values()))
    print(f"verify-month {a.month}: {n} files restored, {len(want)} expected "
          f"({distinct} distinct contents), {len(problems)} problems")
    for p in problems[:20]:
        print("  " + p)
    sys.exit(1 if problems else 0)


def cmd_small(a):
    if not 0 < a.min_size < a.max_size:
        sys.exit("corpus.py: small needs 0 < --min-size < --max-size")
    if os.path.exists(a.lib) and os.listdir(a.lib):
        sys.exit(f"corpus.py: {a.lib} exists and is not empty; remove it first")
    rng = random.Random(f"{a.seed}-small")
    base = datetime(2023, 1, 1)
    for i in range(a.count):
        d = os.path.join(a.lib, f"d{i // 500:03}")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, f"f{i:05}.bin")
        with open(path, "wb") as f:
            f.write(noise(f"{a.seed}:small:{i}".encode(), rng.randrange(a.min_size, a.max_size)))
        t = int((base + timedelta(minutes=i)).replace(tzinfo=timezone.utc).timestamp())
        os.utime(path, (t, t))
    print(f"small: {a.count} files under {a.lib}")


def cmd_photos(a):
    """`count` tiny stills (1-3 KiB of noise behind a real HEIC or JPEG header with EXIF
    DateTimeOriginal), DCIM/1nnAPPLE folders of 1,000, captured 2016-01-01 .. 2025-12-31
    in shooting order; the mtime is the capture's wall clock read as UTC, so a tool
    without capture dates selects the same photos by a month of mtimes. Writes LIB.photos.json: {month: files} for the bench."""
    if os.path.exists(a.lib) and os.listdir(a.lib):
        sys.exit(f"corpus.py: {a.lib} exists and is not empty; remove it first")
    rng = random.Random(f"{a.seed}-photos")
    start = datetime(2016, 1, 1)
    span = (datetime(2026, 1, 1) - start).total_seconds()
    months = {}
    for i in range(a.count):
        d = os.path.join(a.lib, "DCIM", f"{100 + i // 1000}APPLE")
        if i % 1000 == 0:
            os.makedirs(d, exist_ok=True)
        wall = start + timedelta(seconds=int(span * i / a.count) + rng.randrange(0, 600))
        cap = Capture(wall, offset_for(wall, i))
        heic = rng.random() < 0.7
        path = os.path.join(d, f"IMG_{i % 10000:04}.{'HEIC' if heic else 'JPG'}")
        with open(path, "wb") as f:
            (write_heic if heic else write_jpeg)(f, cap, None, rng.randrange(1024, 3 * 1024),
                                                 f"{a.seed}:photo:{i}".encode())
        # The wall clock as UTC: a month of mtimes (UTC) is then exactly a capture month.
        t = int(wall.replace(tzinfo=timezone.utc).timestamp())
        os.utime(path, (t, t))
        months[cap.month()] = months.get(cap.month(), 0) + 1
    with open(os.path.normpath(a.lib) + ".photos.json", "w") as f:
        json.dump({"count": a.count, "seed": a.seed, "months": months}, f)
    print(f"photos: {a.count} stills under {a.lib}, {len(months)} months")


def describe(m):
    kinds = {}
    for e in m["files"]:
        k = e["path"].rsplit(".", 1)[1]
        c = kinds.setdefault(k, [0, 0])
        c[0] += 1
        c[1] += e["size"]
    total = sum(e["size"] for e in m["files"])
    parts = ", ".join(f"{k} {c[0]} ({c[1] / 2**30:.2f} GiB)" for k, c in sorted(kinds.items()))
    dups = sum(1 for e in m["files"] if e["role"] == "duplicate")
    vids = sum(1 for e in m["files"] if e["role"] == "video")
    return (f"{len(m['files'])} files, {total / 2**30:.2f} GiB ({total} bytes): {parts}; "
            f"{vids} videos 50-200 MB, {dups} exact duplicates; seed {m['seed']}")


def cmd_stats(a):
    print(describe(load(a.lib, a.manifest)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("lib")
    g.add_argument("--size", type=parse_size, default=parse_size("2GiB"))
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--per-folder", type=int, default=250,
                   help="IMG numbers per DCIM/1nnAPPLE folder (default 250)")
    for name, extra in (("mutate", []), ("reimport", ["dest"]), ("month", []),
                        ("month-files", ["month"]), ("verify-month", ["month", "restored"]),
                        ("stats", [])):
        s = sub.add_parser(name)
        s.add_argument("lib")
        for x in extra:
            s.add_argument(x)
        s.add_argument("--manifest")
        if name == "month-files":
            s.add_argument("--prefix", default="")
    g.add_argument("--manifest")
    s = sub.add_parser("small")
    s.add_argument("lib")
    s.add_argument("--count", type=int, default=20000)
    s.add_argument("--seed", type=int, default=1)
    # Sizes drawn from [min, max): the default 1-16 KiB; a million files fit on a small
    # disk with e.g. --min-size 64 --max-size 1024.
    s.add_argument("--min-size", type=int, default=1024)
    s.add_argument("--max-size", type=int, default=16 * 1024)
    s = sub.add_parser("photos")
    s.add_argument("lib")
    s.add_argument("--count", type=int, default=100000)
    s.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    {"generate": cmd_generate, "mutate": cmd_mutate, "reimport": cmd_reimport,
     "month": cmd_month, "month-files": cmd_month_files, "verify-month": cmd_verify_month,
     "small": cmd_small, "photos": cmd_photos, "stats": cmd_stats}[a.cmd](a)


if __name__ == "__main__":
    main()
