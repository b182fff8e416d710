#!/usr/bin/env python3
"""Write a large photo library for the `snapvault browse` benchmark (docs/benchmarks.md).

    python3 benches/browse_library.py DIR [COUNT] [DENSE]

COUNT tiny JPEG files (default 50,000), each a few hundred bytes with its own EXIF capture
date, in DCIM/100APPLE… folders of 1,000 like a phone's. Dates run month by month over ten
years; the first DENSE photos (default 2,000) all fall in one month (2016-01), so the
benchmark has a 2,000-photo month page. Every file differs (its number is in a comment
segment), so each is one photo in the catalog. Nothing is decodable beyond the headers:
the benchmark times pages, not pictures.
"""

import os
import struct
import sys


def exif(date: str) -> bytes:
    """APP1 payload: a little-endian TIFF header, IFD0 with one ExifIFD pointer, and an
    Exif IFD with DateTimeOriginal."""
    dt = date.encode() + b"\0"  # 20 bytes
    # IFD0 at 8: 1 entry (12) + next (4) = 18 bytes -> Exif IFD at 26.
    exif_ifd = 8 + 2 + 12 + 4
    value_at = exif_ifd + 2 + 12 + 4
    tiff = b"II*\0" + struct.pack("<I", 8)
    tiff += struct.pack("<H", 1) + struct.pack("<HHII", 0x8769, 4, 1, exif_ifd) + b"\0\0\0\0"
    tiff += struct.pack("<H", 1) + struct.pack("<HHII", 0x9003, 2, len(dt), value_at) + b"\0\0\0\0"
    tiff += dt
    return b"Exif\0\0" + tiff


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg(date: str, n: int) -> bytes:
    return (
        b"\xff\xd8"
        + segment(0xE1, exif(date))
        + segment(0xFE, b"snapvault browse bench %d" % n)
        + b"\xff\xd9"
    )


def main() -> None:
    root = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
    dense = int(sys.argv[3]) if len(sys.argv) > 3 else 2_000
    months = 120
    rest = max(count - dense, 1)
    for i in range(count):
        if i < dense:
            y, m = 2016, 1
            day = 1 + i % 28
        else:
            k = (i - dense) * months // rest
            y, m = 2016 + k // 12, 1 + k % 12
            day = 1 + i % 28
        date = f"{y:04d}:{m:02d}:{day:02d} {10 + i % 12:02d}:{i % 60:02d}:{(i // 60) % 60:02d}"
        folder = os.path.join(root, "DCIM", f"{100 + i // 1000}APPLE")
        if i % 1000 == 0:
            os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"IMG_{i % 10000:04d}.JPG"), "wb") as f:
            f.write(jpeg(date, i))


if __name__ == "__main__":
    main()
