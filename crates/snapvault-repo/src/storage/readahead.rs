//! Read-ahead hints to the kernel, so the disk fetches what a thread will read next while
//! the cores work on what it has: the snapshot's source files, and the packs a restore
//! reads. `posix_fadvise` on Linux, `fcntl(F_RDADVISE)` on macOS, nothing elsewhere. Hints
//! only; a failed one costs nothing but the overlap.

use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::Path;

/// Bytes the kernel is asked to fetch ahead of a reader. The chunker reads in large
/// blocks, and without a hint each block waits for the disk with nothing else to do (the
/// kernel's own read-ahead is a few hundred KiB). Measured on a cold 2 GiB library: first
/// snapshot 3.4 s without hints, 3.1–3.3 s with them; 64 MiB was no better than 32 and
/// slower for the re-import into folders of a few files (1.9 against 1.75 s).
pub(crate) const READ_AHEAD: u64 = 32 << 20;

/// A file read front to back that keeps the kernel fetching the next [`READ_AHEAD`] bytes
/// while the caller works on what it has (long videos on a cold disk). The first window is
/// the walker's to hint (with the files before it), so photos never need one of their own.
pub(crate) struct AheadReader {
    file: File,
    pos: u64,
    hinted: u64,
    /// The file's status when it was opened (the `fstat` that found it a regular file),
    /// to tell afterwards whether it changed while it was read.
    opened: Metadata,
}

impl AheadReader {
    /// Open `path` for reading front to back (`POSIX_FADV_SEQUENTIAL` too); a symlink
    /// there is followed only with `follow` (see [`open_regular`]).
    pub fn open(path: &Path, follow: bool) -> io::Result<Self> {
        let (file, opened) = open_regular(path, follow)?;
        sequential(&file);
        Ok(AheadReader {
            file,
            pos: 0,
            hinted: READ_AHEAD,
            opened,
        })
    }

    /// The open file, and its status when it was opened.
    pub fn file(&self) -> (&File, &Metadata) {
        (&self.file, &self.opened)
    }
}

impl AheadReader {
    /// Open the regular file `name` in the open folder `dir`, never through a symlink
    /// there (see [`open_regular_at`]): as [`AheadReader::open`] without `ahead`, as
    /// [`AheadReader::open_ahead`] with `ahead` bytes to hint.
    pub fn open_at(dir: &impl AsFd, name: &OsStr, ahead: Option<u64>) -> io::Result<Self> {
        let (file, opened) = open_regular_at(dir, name)?;
        Ok(Self::hinted(file, opened, ahead))
    }

    /// A reader of `file` just opened: without `ahead`, read front to back; with it, its
    /// first `len` bytes asked for now, and front to back when the hint does not cover it.
    fn hinted(file: File, opened: Metadata, ahead: Option<u64>) -> Self {
        match ahead {
            None => sequential(&file),
            Some(len) => {
                if len >= READ_AHEAD {
                    sequential(&file);
                }
                if len > 0 {
                    willneed_file(&file, 0, len);
                }
            }
        }
        AheadReader {
            file,
            pos: 0,
            hinted: READ_AHEAD,
            opened,
        }
    }

    /// Open `path` now and ask the kernel for its first `len` bytes, to be read soon: the
    /// walker hints the files after the one it chunks this way and later reads from this
    /// opening (one open per file, not one to hint and one to read). A file the hint does
    /// not cover whole is also read front to back (`POSIX_FADV_SEQUENTIAL`).
    pub fn open_ahead(path: &Path, len: u64, follow: bool) -> io::Result<Self> {
        let (file, opened) = open_regular(path, follow)?;
        Ok(Self::hinted(file, opened, Some(len)))
    }
}

impl Read for AheadReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos + READ_AHEAD / 2 >= self.hinted {
            willneed_file(&self.file, self.hinted, READ_AHEAD);
            self.hinted += READ_AHEAD;
        }
        let n = self.file.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Open `path` for reading only if it is a regular file. The walker listed a file, but
/// anyone who can write to the library can put a named pipe or a device in its place
/// before it is read: a plain `open` of a FIFO waits for a writer for ever (and a signal
/// does not end it), so the open never blocks (`O_NONBLOCK`, which reads of a regular
/// file ignore) and anything else is refused by what `fstat` says it is (returned too).
/// Likewise a symlink put in a listed file's place would lead the read anywhere (a file
/// outside the folder backed up, stored under the library's name): without `follow`, the
/// last component is not followed (`O_NOFOLLOW`).
pub(crate) fn open_regular(path: &Path, follow: bool) -> io::Result<(File, Metadata)> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
        opts.custom_flags(libc::O_NONBLOCK | nofollow);
    }
    let file = opts.open(path).map_err(|e| {
        if !follow && e.raw_os_error() == Some(libc::ELOOP) {
            symlink_now()
        } else {
            e
        }
    })?;
    regular(file)
}

fn symlink_now() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "a symlink now (replaced while the snapshot ran); not followed",
    )
}

/// [`open_regular`] of the file `name` in the open folder `dir` (`openat`), never
/// following a symlink there.
pub(crate) fn open_regular_at(dir: &impl AsFd, name: &OsStr) -> io::Result<(File, Metadata)> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| {
        if e == rustix::io::Errno::LOOP {
            symlink_now()
        } else {
            io::Error::from(e)
        }
    })?;
    regular(File::from(fd))
}

/// `file` and its status, if it is a regular file.
fn regular(file: File) -> io::Result<(File, Metadata)> {
    let md = file.metadata()?;
    if !md.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file any more (replaced while the snapshot ran)",
        ));
    }
    Ok((file, md))
}

/// Ask the kernel to start reading `len` bytes of `path` into the page cache, without
/// waiting for them. Failures only lose the hint.
pub(crate) fn willneed(path: &Path, offset: u64, len: u64) {
    if let Ok((f, _)) = open_regular(path, false) {
        willneed_file(&f, offset, len);
    }
}

#[cfg(target_os = "linux")]
fn sequential(f: &File) {
    fadvise(f, 0, 0, libc::POSIX_FADV_SEQUENTIAL);
}

#[cfg(target_os = "linux")]
fn willneed_file(f: &File, offset: u64, len: u64) {
    fadvise(f, offset, len, libc::POSIX_FADV_WILLNEED);
}

#[cfg(target_os = "linux")]
fn fadvise(f: &File, offset: u64, len: u64, advice: libc::c_int) {
    use std::os::fd::AsRawFd;
    let clamp = |v: u64| v.min(i64::MAX as u64) as libc::off_t;
    // SAFETY: advisory call on a valid open descriptor; failures only lose the hint.
    unsafe {
        libc::posix_fadvise(f.as_raw_fd(), clamp(offset), clamp(len), advice);
    }
}

/// macOS reads ahead of sequential readers on its own; it has no hint to ask for more.
#[cfg(not(target_os = "linux"))]
fn sequential(_f: &File) {}

/// `F_RDADVISE`: macOS's `POSIX_FADV_WILLNEED` (the count is an `int`, so at most 2 GiB).
#[cfg(target_vendor = "apple")]
fn willneed_file(f: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let advice = libc::radvisory {
        ra_offset: offset.min(i64::MAX as u64) as libc::off_t,
        ra_count: len.min(libc::c_int::MAX as u64) as libc::c_int,
    };
    // SAFETY: fcntl on a valid open descriptor with a pointer to a live `radvisory`;
    // failures only lose the hint.
    unsafe {
        libc::fcntl(f.as_raw_fd(), libc::F_RDADVISE, &advice);
    }
}

#[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
fn willneed_file(_f: &File, _offset: u64, _len: u64) {}
