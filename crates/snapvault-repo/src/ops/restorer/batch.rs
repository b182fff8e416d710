//! Making many restored files durable at once.
//!
//! A file gets its real name only once its content is on the disk, so a crash never leaves
//! a name holding a partial file. Syncing each file on its own (`fdatasync`, then the
//! rename) costs a device flush and a synchronous metadata write per file: about 100 µs of
//! system CPU and more of waiting per photo sidecar, most of the time of a restore of many
//! small files. Where the file system's `syncfs` writes every dirty file with its metadata
//! and flushes the device (ext4, XFS, btrfs on Linux ≥ 5.8, where `syncfs` also reports
//! writeback errors), each restore thread instead writes files under their temporary names
//! without syncing them, and when its batch is full makes them all durable with one
//! `syncfs`, then renames each into place. The order is the same as for a single file:
//! content durable first, then the name. If `syncfs` fails, each file of the batch is
//! synced on its own, and a file that cannot be is removed and reported. Elsewhere (FUSE,
//! network shares, exFAT, macOS) every file is synced on its own, as before.

use std::io;
use std::sync::Arc;

use super::dirs::Dir;

/// At most this many files wait in one thread's batch…
const MAX_FILES: usize = 1024;
/// …holding at most this many bytes…
const MAX_BYTES: u64 = 256 << 20;
/// …in at most this many folders (each held open until its files are renamed).
const MAX_FOLDERS: usize = 32;

/// Can files in folders on the same file system as `root` be synced in batches? On Linux
/// ≥ 5.8, for the file systems whose `syncfs` makes every file's data and metadata durable.
pub(super) fn batches_on(root: &Dir) -> bool {
    #[cfg(target_os = "linux")]
    {
        kernel_reports_syncfs_errors() && durable_syncfs(root).unwrap_or(false)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = root;
        false
    }
}

/// ext4 (and ext2/3), XFS, btrfs: `syncfs` writes the dirty data and metadata and flushes
/// the device. Not FUSE (exfat-fuse: its `syncfs` reaches no disk unless the daemon
/// supports it), network file systems or anything unknown.
#[cfg(target_os = "linux")]
fn durable_syncfs(root: &Dir) -> io::Result<bool> {
    const EXT4: i64 = 0xEF53;
    const XFS: i64 = 0x5846_5342;
    const BTRFS: i64 = 0x9123_683E;
    let st = rustix::fs::fstatfs(root)?;
    // `f_type`'s integer type differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    let kind = st.f_type as i64;
    Ok(matches!(kind, EXT4 | XFS | BTRFS))
}

/// `syncfs` returns writeback errors since Linux 5.8; before, it always succeeded.
#[cfg(target_os = "linux")]
fn kernel_reports_syncfs_errors() -> bool {
    // SAFETY: uname fills the zeroed struct we own.
    let release = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return false;
        }
        std::ffi::CStr::from_ptr(u.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    };
    at_least(&release, (5, 8))
}

/// Is the kernel release `release` (`6.1.0-13-amd64`) at least `want`?
#[cfg(any(target_os = "linux", test))]
fn at_least(release: &str, want: (u32, u32)) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= want,
        _ => false,
    }
}

/// A file written under its temporary name, not yet synced.
pub(super) struct Staged {
    /// Position in the restore's list of files.
    pub file: usize,
    pub dir: Arc<Dir>,
    pub tmp: Vec<u8>,
    pub bytes: u64,
}

/// One thread's files waiting for their sync.
pub(super) struct Batch {
    files: Vec<Staged>,
    bytes: u64,
    folders: usize,
    /// This thread's own descriptor on the target's file system, opened before any of its
    /// files was written: `syncfs` reports a writeback error once per open file
    /// description, so a descriptor shared between threads would let one thread take
    /// another's error and the other rename a file that was never written into place.
    /// None if it could not be opened: each file is then synced on its own.
    fs: Option<Dir>,
}

impl Batch {
    /// A thread's batch, syncing through a new descriptor on `root`'s file system.
    pub fn new(root: &Dir) -> Batch {
        Batch {
            files: Vec::new(),
            bytes: 0,
            folders: 0,
            fs: root.reopen().ok(),
        }
    }

    /// Add a file; returns whether the batch is now full.
    pub fn push(&mut self, s: Staged) -> bool {
        if self
            .files
            .last()
            .is_none_or(|last| !Arc::ptr_eq(&last.dir, &s.dir))
        {
            self.folders += 1;
        }
        self.bytes += s.bytes;
        self.files.push(s);
        self.files.len() >= MAX_FILES || self.bytes >= MAX_BYTES || self.folders >= MAX_FOLDERS
    }

    /// Make every file of the batch durable (one `syncfs` through this batch's own
    /// descriptor, which sees every writeback error since it was opened), and hand each
    /// back with the result: `Ok` when its content is durable, ready to be renamed. The
    /// batch is empty afterwards.
    pub fn sync(&mut self) -> Vec<(Staged, io::Result<()>)> {
        self.bytes = 0;
        self.folders = 0;
        let files = std::mem::take(&mut self.files);
        if files.is_empty() {
            return Vec::new();
        }
        if self.fs.as_ref().is_some_and(|fs| syncfs(fs).is_ok()) {
            return files.into_iter().map(|s| (s, Ok(()))).collect();
        }
        // Each on its own: which file's data could not be written.
        files
            .into_iter()
            .map(|s| {
                let r = s
                    .dir
                    .open_file(&s.tmp)
                    .and_then(|f| crate::storage::durable::sync_data(&f));
                (s, r)
            })
            .collect()
    }
}

#[cfg(target_os = "linux")]
fn syncfs(fs: &Dir) -> io::Result<()> {
    Ok(rustix::fs::syncfs(fs)?)
}

/// Never reached: batches are only made on Linux (see [`batches_on`]).
#[cfg(not(target_os = "linux"))]
fn syncfs(_: &Dir) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases_are_compared_by_major_and_minor() {
        assert!(at_least("6.18.44-fc-v1300", (5, 8)));
        assert!(at_least("5.8.0", (5, 8)));
        assert!(at_least("5.10.0-13-amd64", (5, 8)));
        assert!(!at_least("5.4.0-150-generic", (5, 8)));
        assert!(!at_least("4.19.0", (5, 8)));
        assert!(!at_least("", (5, 8)));
        assert!(!at_least("garbage", (5, 8)));
    }
}
