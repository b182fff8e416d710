//! The folder source's walk by open folders, never by path below a root.
//!
//! Anyone who can write to the library can swap a folder for a symlink (to `/etc`, to
//! another disk) between the listing of its parent and its own listing or the opening of a
//! file in it: a path resolved whole would then follow the symlink, and the snapshot store
//! outside files under the library's name (a snapshot run by root from cron reads
//! everything). Here each folder below a root is opened relative to its parent's open
//! descriptor with `openat(parent, name, O_DIRECTORY | O_NOFOLLOW)`, listed through that
//! descriptor (`getdents`, then `statx`/`fstatat` of each name), and its files are opened
//! relative to it (`O_NOFOLLOW`): a folder swapped after it was listed is refused, named as
//! what it is now, and a folder opened before the swap keeps being read as the folder it
//! was. The roots themselves are opened by path and followed, as `FolderSource::new` says.
//!
//! The open folders of the walk's current path (and of the folders listed ahead of it) are
//! kept, at most [`MAX_OPEN`] of them, least recently used dropped first: a file's opening
//! is one `openat` relative to its folder, not a walk of its whole path, and a deep tree
//! holds a bounded number of descriptors.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustix::fs::{AtFlags, Mode, OFlags};

use super::status::{Kind, Mode as TypeBits, Stat};
use super::{SourceEntry, entry_from_metadata};
use crate::format::tree::Name;

/// Open folders kept at most: the walk's depth plus the folders the look-ahead lists
/// before the walk gets there (a few dozen); deeper trees reopen their far ancestors.
pub(crate) const MAX_OPEN: usize = 64;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Open folders by tree path (`root/a/b`), least recently used dropped first.
#[derive(Default)]
pub(crate) struct OpenDirs {
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    dirs: Vec<(Vec<u8>, Arc<OwnedFd>, u64)>,
    clock: u64,
}

impl Held {
    fn get(&mut self, path: &[u8]) -> Option<Arc<OwnedFd>> {
        self.clock += 1;
        let (_, fd, used) = self.dirs.iter_mut().find(|(p, _, _)| p == path)?;
        *used = self.clock;
        Some(fd.clone())
    }

    fn put(&mut self, path: &[u8], fd: Arc<OwnedFd>) {
        self.clock += 1;
        if self.dirs.len() >= MAX_OPEN
            && let Some(i) = (0..self.dirs.len()).min_by_key(|&i| self.dirs[i].2)
        {
            self.dirs.swap_remove(i);
        }
        self.dirs.push((path.to_vec(), fd, self.clock));
    }
}

impl OpenDirs {
    /// The open folder at tree path `path`, whose first component is the root at `base`.
    /// Opened from its nearest open ancestor down, one no-follow `openat` per component.
    pub(crate) fn dir(&self, path: &[u8], base: &Path) -> io::Result<Arc<OwnedFd>> {
        let mut held = self
            .held
            .lock()
            .map_err(|_| io::Error::other("a thread failed while opening a folder"))?;
        let root_end = path.iter().position(|&b| b == b'/').unwrap_or(path.len());
        let mut end = path.len();
        let mut fd = loop {
            if let Some(fd) = held.get(&path[..end]) {
                break fd;
            }
            if end == root_end {
                // The root: by its path, followed when it is a symlink.
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
                let fd = Arc::new(rustix::fs::openat(
                    rustix::fs::CWD,
                    base,
                    flags,
                    Mode::empty(),
                )?);
                held.put(&path[..end], fd.clone());
                break fd;
            }
            end = path[..end]
                .iter()
                .rposition(|&b| b == b'/')
                .unwrap_or(root_end);
        };
        while end < path.len() {
            let next = path[end + 1..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(path.len(), |i| end + 1 + i);
            let name = OsStr::from_bytes(&path[end + 1..next]);
            let sub = rustix::fs::openat(&*fd, name, DIR_FLAGS, Mode::empty())
                .map_err(|e| refused(e, &fd, name, &path[..next], next == path.len()))?;
            fd = Arc::new(sub);
            held.put(&path[..next], fd.clone());
            end = next;
        }
        Ok(fd)
    }

    /// Folders held open now.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held.lock().map_or(0, |h| h.dirs.len())
    }
}

/// The error of a folder that could not be opened: a symlink or something else put in its
/// place is named as such (`path` is its tree path, named when it is not the folder asked
/// for but one on the way to it).
fn refused(
    err: rustix::io::Errno,
    parent: &OwnedFd,
    name: &OsStr,
    path: &[u8],
    last: bool,
) -> io::Error {
    use rustix::io::Errno;
    if err != Errno::LOOP && err != Errno::NOTDIR && err != Errno::MLINK {
        return err.into();
    }
    let symlink = stat_at(parent, name).is_ok_and(|st| TypeBits(st.mode).is_symlink());
    let what = if symlink {
        "a symlink now (a folder replaced while the snapshot ran); not followed"
    } else {
        "not a folder any more (replaced while the snapshot ran)"
    };
    let msg = if last {
        what.to_string()
    } else {
        format!("{} is {what}", String::from_utf8_lossy(path))
    };
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The entries of the open folder `dir`, sorted by name: its names (`getdents`), each one's
/// status relative to it (not following symlinks). An entry gone since the folder was read
/// is left out; one of a kind snapvault does not know is skipped.
pub(crate) fn list(dir: &OwnedFd) -> io::Result<Vec<SourceEntry>> {
    let mut names = rustix::fs::Dir::read_from(dir)?;
    let mut out = Vec::new();
    while let Some(e) = names.read() {
        let e = e?;
        let name = e.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let st = match stat_at(dir, name) {
            Ok(st) => st,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        let target = || Ok(rustix::fs::readlinkat(dir, name, Vec::new())?.into_bytes());
        match entry_from_metadata(Name(name.to_bytes().to_vec()), &st, target) {
            Ok(entry) => out.push(entry),
            Err(err) if err.kind() == io::ErrorKind::Unsupported => {}
            Err(err) => return Err(err),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The status of `name` in `dir`, not following a symlink: `statx` (for the birth time)
/// where the kernel has it, `fstatat` otherwise.
#[cfg(target_os = "linux")]
pub(crate) fn stat_at<P: rustix::path::Arg + Copy>(dir: &OwnedFd, name: P) -> io::Result<Stat> {
    use rustix::fs::{StatxFlags, makedev};
    use rustix::io::Errno;
    let mask = StatxFlags::BASIC_STATS | StatxFlags::BTIME;
    match rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, mask) {
        Ok(x) => Ok(Stat {
            mode: u32::from(x.stx_mode),
            size: x.stx_size,
            mtime: (x.stx_mtime.tv_sec, i64::from(x.stx_mtime.tv_nsec)),
            ctime: (x.stx_ctime.tv_sec, i64::from(x.stx_ctime.tv_nsec)),
            btime: (x.stx_mask & StatxFlags::BTIME.bits() != 0)
                .then_some((x.stx_btime.tv_sec, x.stx_btime.tv_nsec)),
            dev: makedev(x.stx_dev_major, x.stx_dev_minor),
            ino: x.stx_ino,
            nlink: u64::from(x.stx_nlink),
            rdev: makedev(x.stx_rdev_major, x.stx_rdev_minor),
        }),
        Err(Errno::NOSYS | Errno::PERM) => stat_at_plain(dir, name),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn stat_at<P: rustix::path::Arg + Copy>(dir: &OwnedFd, name: P) -> io::Result<Stat> {
    stat_at_plain(dir, name)
}

/// `fstatat` (no birth time but on Apple's systems).
// `stat` field types differ between platforms: the casts are needed elsewhere.
#[allow(clippy::unnecessary_cast)]
fn stat_at_plain<P: rustix::path::Arg>(dir: &OwnedFd, name: P) -> io::Result<Stat> {
    let st = rustix::fs::statat(dir.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW)?;
    #[cfg(target_vendor = "apple")]
    let btime = Some((st.st_birthtime as i64, st.st_birthtime_nsec as u32));
    #[cfg(not(target_vendor = "apple"))]
    let btime = None;
    Ok(Stat {
        mode: st.st_mode as u32,
        size: st.st_size as u64,
        mtime: (st.st_mtime as i64, st.st_mtime_nsec as i64),
        ctime: (st.st_ctime as i64, st.st_ctime_nsec as i64),
        btime,
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
        nlink: st.st_nlink as u64,
        rdev: st.st_rdev as u64,
    })
}
