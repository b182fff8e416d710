//! Read-ahead hints to the kernel, so the disk fetches what a thread will read next while
//! the cores work on what it has: the snapshot's source files, and the packs a restore
//! reads. `posix_fadvise` on Linux, `fcntl(F_RDADVISE)` on macOS, nothing elsewhere. Hints
//! only; a failed one costs nothing but the overlap.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use crossbeam_channel::{Sender, unbounded};

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
    file: Arc<File>,
    pos: u64,
    hinted: u64,
    /// Where this reader's hints are given, when not on the reading thread.
    hinter: Option<Hinter>,
}

/// Hints at least this long go to the [`Hinter`]'s thread; shorter ones are given on the
/// caller's (a tiny file's hint costs less than waking a thread).
pub(crate) const HINT_ON_THREAD: u64 = 256 << 10;

/// A thread that gives read-ahead hints for another. `POSIX_FADV_WILLNEED` is not free:
/// the kernel allocates the page-cache pages and submits the reads before it returns,
/// about 0.15 ms per MiB here, so a thread hinting 2 GiB of photos spends ~0.3 s in it.
/// The snapshot's walker is the pipeline's one serial stage (it reads and chunks every
/// file), so its hints are given here, beside it, on the other core.
#[derive(Clone)]
pub(crate) struct Hinter {
    tx: Sender<(Arc<File>, u64, u64)>,
}

impl Hinter {
    /// Starts the thread; it ends when the last clone of this is dropped and the hints
    /// sent before are given.
    pub fn start() -> Hinter {
        let (tx, rx) = unbounded::<(Arc<File>, u64, u64)>();
        // Without the thread the receiver is gone, sends fail, and `hint` gives its hints
        // on the caller's thread.
        let _ = std::thread::Builder::new()
            .name("read-ahead".into())
            .spawn(move || {
                for (file, offset, len) in rx.iter() {
                    willneed_file(&file, offset, len);
                }
            });
        Hinter { tx }
    }

    /// Hint `len` bytes of `file` from `offset`: on the thread when long enough to be
    /// worth it (and the thread is there), else right away.
    pub fn hint(&self, file: &Arc<File>, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        if len < HINT_ON_THREAD || self.tx.send((file.clone(), offset, len)).is_err() {
            willneed_file(file, offset, len);
        }
    }
}

impl AheadReader {
    /// Open `path` for reading front to back (`POSIX_FADV_SEQUENTIAL` too).
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        sequential(&file);
        Ok(AheadReader {
            file: Arc::new(file),
            pos: 0,
            hinted: READ_AHEAD,
            hinter: None,
        })
    }

    /// Open `path` now and ask the kernel for its first `len` bytes, to be read soon: the
    /// walker hints the files after the one it chunks this way and later reads from this
    /// opening (one open per file, not one to hint and one to read). A file the hint does
    /// not cover whole is also read front to back (`POSIX_FADV_SEQUENTIAL`). The hints,
    /// these and the reader's later ones, are given by `hinter`.
    pub fn open_ahead(path: &Path, len: u64, hinter: &Hinter) -> io::Result<Self> {
        let file = Arc::new(File::open(path)?);
        if len >= READ_AHEAD {
            sequential(&file);
        }
        hinter.hint(&file, 0, len);
        Ok(AheadReader {
            file,
            pos: 0,
            hinted: READ_AHEAD,
            hinter: Some(hinter.clone()),
        })
    }
}

impl Read for AheadReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos + READ_AHEAD / 2 >= self.hinted {
            match &self.hinter {
                Some(h) => h.hint(&self.file, self.hinted, READ_AHEAD),
                None => willneed_file(&self.file, self.hinted, READ_AHEAD),
            }
            self.hinted += READ_AHEAD;
        }
        let n = (&*self.file).read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Ask the kernel to start reading `len` bytes of `path` into the page cache, without
/// waiting for them. Failures only lose the hint.
pub(crate) fn willneed(path: &Path, offset: u64, len: u64) {
    if let Ok(f) = File::open(path) {
        willneed_file(&f, offset, len);
    }
}

#[cfg(target_os = "linux")]
fn sequential(f: &File) {
    fadvise(f, 0, 0, libc::POSIX_FADV_SEQUENTIAL);
}

#[cfg(target_os = "linux")]
fn willneed_file(f: &File, offset: u64, len: u64) {
    #[cfg(test)]
    tests::HINTS_HERE.with(|n| n.set(n.get() + 1));
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

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;

    thread_local! {
        /// `POSIX_FADV_WILLNEED` hints given on this thread.
        pub(crate) static HINTS_HERE: Cell<u64> = const { Cell::new(0) };
    }
}
