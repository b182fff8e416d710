//! Making written bytes durable: a file's data, and a folder's entries (a new name).
//!
//! On macOS `fsync` only hands the data to the drive, whose own write cache can lose it at
//! a power cut or an unplugged cable; `fcntl(F_FULLFSYNC)` also flushes that cache. The
//! price: it flushes the drive's whole cache and waits for it, a few milliseconds on an
//! SSD, more on a spinning disk, and the repository pays it twice per file it writes (the
//! file, then its folder; a 16 MiB pack or a small index, lock or snapshot file) and
//! restore once per restored file. Filesystems that refuse it (network shares, some
//! external formats) get a plain `fsync`, as SQLite does. Linux's `fdatasync`/`fsync`
//! already reach the medium, and elsewhere the standard library's sync is all there is.

use std::fs::File;
use std::io;
use std::path::Path;

/// Make the data of `file` (and its length) durable.
pub(crate) fn sync_data(file: &File) -> io::Result<()> {
    #[cfg(target_vendor = "apple")]
    return full_fsync(file);
    #[cfg(not(target_vendor = "apple"))]
    file.sync_data()
}

/// Make the entries of folder `dir` durable (a name just linked, renamed or removed).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    sync_open_dir(&File::open(dir)?)
}

/// The same for a folder already open (restore works through open folders).
pub(crate) fn sync_open_dir(f: &File) -> io::Result<()> {
    #[cfg(target_vendor = "apple")]
    return full_fsync(f);
    #[cfg(not(target_vendor = "apple"))]
    f.sync_all()
}

/// `F_FULLFSYNC`, or `fsync` where the filesystem does not support it.
#[cfg(target_vendor = "apple")]
fn full_fsync(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl and fsync on a descriptor we own, integer arguments only.
    if unsafe { libc::fcntl(fd, libc::F_FULLFSYNC) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if !matches!(
        e.raw_os_error(),
        Some(libc::ENOTSUP | libc::EINVAL | libc::ENOTTY)
    ) {
        return Err(e);
    }
    // SAFETY: as above.
    if unsafe { libc::fsync(fd) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Both syncs succeed on an ordinary file and folder, and a missing folder is an error
    /// (not silently skipped).
    #[test]
    fn syncs_files_and_folders() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut f = File::create(&p).unwrap();
        f.write_all(b"bytes").unwrap();
        sync_data(&f).unwrap();
        sync_dir(dir.path()).unwrap();
        assert!(sync_dir(&dir.path().join("missing")).is_err());
    }
}
