#!/usr/bin/env python3
"""Evict files from, or load them into, the page cache (stdlib only).

    pagecache.py evict PATH...   # fsync + posix_fadvise(DONTNEED) every file under PATHs
    pagecache.py warm PATH...    # read every file under PATHs once (into the page cache)

Eviction only drops clean pages, so it runs sync(2) first. This is cold *in this
machine's page cache*; a hypervisor below may still cache the virtual disk.
"""

import os
import sys


def files(paths):
    for p in paths:
        if os.path.isfile(p):
            yield p
        elif os.path.isdir(p):
            for dirpath, _, names in os.walk(p):
                for n in names:
                    fp = os.path.join(dirpath, n)
                    if os.path.isfile(fp) and not os.path.islink(fp):
                        yield fp


def evict(paths):
    # One global sync makes every page clean (an fdatasync per file costs ~1 ms each on
    # ext4, which adds up over 20,000 small files); DONTNEED then drops them.
    os.sync()
    n = b = 0
    for fp in files(paths):
        try:
            fd = os.open(fp, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            n += 1
            b += os.fstat(fd).st_size
        finally:
            os.close(fd)
    return n, b


def warm(paths):
    n = b = 0
    buf = bytearray(1 << 20)
    for fp in files(paths):
        try:
            with open(fp, "rb", buffering=0) as f:
                while True:
                    k = f.readinto(buf)
                    if not k:
                        break
                    b += k
            n += 1
        except OSError:
            continue
    return n, b


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("evict", "warm"):
        sys.exit(__doc__)
    paths = [p for p in sys.argv[2:] if os.path.exists(p)]
    n, b = (evict if sys.argv[1] == "evict" else warm)(paths)
    if os.environ.get("PAGECACHE_VERBOSE"):
        print(f"{sys.argv[1]}: {n} files, {b / 2**20:.1f} MiB", file=sys.stderr)


if __name__ == "__main__":
    main()
