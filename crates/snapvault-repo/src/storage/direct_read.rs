//! Reading a whole file past the page cache when it is not cached (`check --read-data`).
//!
//! `check` reads every pack once, verifies it and drops it. Through the page cache every
//! byte is first put into freshly allocated cache pages and then copied into the reader's
//! buffer; measured on the 2 GiB benchmark repository, cold, that kernel work cost 0.44 s
//! of system CPU against 0.09 s with `O_DIRECT`, where the device writes straight into the
//! buffer (docs/benchmarks.md, "check --read-data past the page cache"). A file that is
//! already mostly in the page cache is read from it instead: copying it is faster than the
//! disk. What is cached comes from `cachestat(2)` (Linux 6.5); without it, on other
//! systems, for small files and where the filesystem refuses `O_DIRECT` (tmpfs, some FUSE
//! and network filesystems), the read is an ordinary one of the same bytes.
//!
//! Direct I/O needs an aligned buffer, so the bytes land at an aligned place inside the
//! caller's buffer, and [`read_whole`] returns that place.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

#[cfg(target_os = "linux")]
use super::direct_io::ALIGN;

/// Files smaller than this are read the ordinary way: one read, little to gain (the same
/// bound as direct writes).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const MIN_DIRECT: usize = super::direct_io::MIN_DIRECT as usize;

/// How the bytes were read (for tests: whether the direct path was taken).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) enum How {
    PageCache,
    Direct,
}

/// Read the first `len` bytes of `file` (opened for reading by the caller, for this read
/// alone: it may be switched to `O_DIRECT`) into `buf`, returning them and how they were
/// read. `buf` is reused between calls: its old bytes outside the returned slice are left.
/// A file shorter than `len` is an [`io::ErrorKind::UnexpectedEof`] error.
pub(crate) fn read_whole<'b>(
    file: &File,
    len: usize,
    buf: &'b mut Vec<u8>,
) -> io::Result<(&'b mut [u8], How)> {
    #[cfg(target_os = "linux")]
    if len >= MIN_DIRECT && !mostly_cached(file, len) && super::direct_io::try_direct(file) {
        match read_direct(file, len, buf) {
            Ok(at) => return Ok((&mut buf[at..at + len], How::Direct)),
            // Refused after all (the flag was taken, the read is not): the ordinary way.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                super::direct_io::set_direct(file, false)?;
            }
            Err(e) => return Err(e),
        }
    }
    if buf.len() < len {
        buf.resize(len, 0);
    }
    let bytes = &mut buf[..len];
    file.read_exact_at(bytes, 0)?;
    Ok((bytes, How::PageCache))
}

/// Read `len` bytes with direct I/O into the aligned part of `buf`; returns where they
/// start. Only bytes beyond the buffer's current length get zeroed first.
#[cfg(target_os = "linux")]
fn read_direct(file: &File, len: usize, buf: &mut Vec<u8>) -> io::Result<usize> {
    let padded = len.next_multiple_of(ALIGN);
    if buf.len() < padded + ALIGN {
        buf.resize(padded + ALIGN, 0);
    }
    let at = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
    let mut done = 0;
    while done < len {
        // Whole blocks at block offsets, also past the file's end (the read stops there).
        let window = &mut buf[at + done..at + padded];
        match file.read_at(window, done as u64) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("file ends before byte {len}"),
                ));
            }
            // Short only at the end of the file: whole blocks otherwise.
            Ok(n) if n % ALIGN != 0 && done + n < len => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("file ends before byte {len}"),
                ));
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(at)
}

/// Are at least half of the first `len` bytes of `file` in the page cache? Unknown
/// (`cachestat(2)` missing or refused) counts as cached: the ordinary read is never wrong.
#[cfg(target_os = "linux")]
fn mostly_cached(file: &File, len: usize) -> bool {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    /// `cachestat`'s number, the same on every architecture (Linux 6.5).
    const SYS_CACHESTAT: libc::c_long = 451;
    let range = Range {
        off: 0,
        len: len as u64,
    };
    let mut stat = Stat::default();
    // SAFETY: cachestat(fd, *const range, *mut stat, flags 0) only reads `range` and
    // writes `stat`, both live, properly laid out (#[repr(C)]) values of this frame.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &range as *const Range,
            &mut stat as *mut Stat,
            0u32,
        )
    };
    if rc != 0 {
        return true;
    }
    let pages = len.div_ceil(4096) as u64;
    stat.nr_cache * 2 >= pages
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 13 + i / 4093) as u8).collect()
    }

    /// Drop `path`'s pages from the page cache (they are clean once synced); elsewhere
    /// than on Linux the file stays cached (no `posix_fadvise`) and is read the usual way.
    #[cfg(target_os = "linux")]
    fn evict(path: &std::path::Path) {
        use std::os::fd::AsRawFd;
        let f = File::open(path).unwrap();
        f.sync_all().unwrap();
        // SAFETY: fadvise on a descriptor we own, integer arguments only.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    }

    #[cfg(not(target_os = "linux"))]
    fn evict(_path: &std::path::Path) {}

    /// Cached or not, large or small, a whole read returns exactly the file's bytes; a file
    /// that is not in the page cache is read past it where the filesystem allows.
    #[test]
    fn a_whole_read_returns_the_files_bytes_cached_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut buf = Vec::new();
        for size in [
            0usize,
            1,
            4095,
            4096,
            MIN_DIRECT,
            (1 << 20) + 1,
            3 * (1 << 20) + 12_345,
        ] {
            let data = pattern(size);
            let p = dir.path().join(format!("f{size}"));
            std::fs::File::create(&p).unwrap().write_all(&data).unwrap();
            for cold in [false, true] {
                if cold {
                    evict(&p);
                }
                let f = File::open(&p).unwrap();
                let (got, how) = read_whole(&f, size, &mut buf).unwrap();
                assert!(got == &data[..], "size {size}, cold {cold}");
                if !cold || size < MIN_DIRECT {
                    assert_eq!(how, How::PageCache, "size {size}, cold {cold}");
                }
                if cold && size >= MIN_DIRECT && direct_allowed(dir.path()) && cachestat_works() {
                    assert_eq!(how, How::Direct, "size {size}");
                }
            }
        }
    }

    /// A file shorter than asked for is an error, not stale bytes from the buffer.
    #[test]
    fn a_short_file_is_an_error_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("short");
        let data = pattern(2 << 20);
        std::fs::File::create(&p).unwrap().write_all(&data).unwrap();
        let mut buf = vec![7u8; 4 << 20];
        for cold in [false, true] {
            if cold {
                evict(&p);
            }
            let f = File::open(&p).unwrap();
            let e = read_whole(&f, (2 << 20) + 10, &mut buf).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "cold {cold}");
        }
    }

    fn direct_allowed(dir: &std::path::Path) -> bool {
        let f = File::create(dir.join("probe")).unwrap();
        super::super::direct_io::try_direct(&f)
    }

    /// Does this kernel have `cachestat(2)` (a null range pointer: EFAULT if it does)?
    #[cfg(target_os = "linux")]
    fn cachestat_works() -> bool {
        use std::os::fd::AsRawFd;
        let f = File::open("/proc/self/exe").unwrap();
        // SAFETY: cachestat with null pointers fails (EFAULT, or ENOSYS) without writing.
        let rc = unsafe { libc::syscall(451, f.as_raw_fd(), 0usize, 0usize, 0u32) };
        !(rc != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
    }

    #[cfg(not(target_os = "linux"))]
    fn cachestat_works() -> bool {
        false
    }
}
