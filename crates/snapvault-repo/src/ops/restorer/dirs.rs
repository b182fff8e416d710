//! Folders of a restore target, opened relative to their parent and never through a
//! symlink.
//!
//! Anyone who can write to the target (a shared folder, a drive another account uses) could
//! plant `T/S/photos -> /victim`: a restore that joins path strings would then write, and
//! chmod, inside `/victim`. Here every folder below the target is opened with
//! `openat(parent, name, O_DIRECTORY | O_NOFOLLOW)`, and every operation on what it holds
//! (create, rename, chmod, times, links) is made relative to such a handle, so a name is
//! never resolved through a symlink after it was checked. Only the target itself is opened
//! by its path: it is the user's choice.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};

/// An open folder of the restore target.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

/// What stands at a name in a folder (the name itself, not what a symlink points to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Missing,
    Dir,
    File { len: u64, dev: u64, ino: u64 },
    Symlink,
    Fifo,
    Device { char: bool, rdev: u64 },
    Other,
}

fn os(name: &[u8]) -> &OsStr {
    OsStr::from_bytes(name)
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

impl Dir {
    /// The target folder itself (created with its parents if missing).
    pub(crate) fn open_target(path: &Path) -> io::Result<Dir> {
        fs::create_dir_all(path)?;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(rustix::fs::CWD, path, flags, Mode::empty())?;
        Ok(Dir { fd })
    }

    /// The folder `name` in this one; fails (ELOOP / ENOTDIR) when `name` is a symlink or
    /// not a folder.
    pub fn open(&self, name: &[u8]) -> io::Result<Dir> {
        let fd = rustix::fs::openat(&self.fd, os(name), DIR_FLAGS, Mode::empty())?;
        Ok(Dir { fd })
    }

    /// The folder at `rel` (`/`-separated, relative to this one), every step no-follow.
    pub(crate) fn open_path(&self, rel: &[u8]) -> io::Result<Dir> {
        let mut cur = self.try_clone()?;
        for part in rel.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
            cur = cur.open(part)?;
        }
        Ok(cur)
    }

    /// The same folder through a new open file description (not a `dup`: errors that
    /// `syncfs` reports once per description are then this one's own).
    pub(crate) fn reopen(&self) -> io::Result<Dir> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, ".", flags, Mode::empty())?;
        Ok(Dir { fd })
    }

    pub fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
        })
    }

    /// Create the folder `name` with `mode` (under the umask).
    pub fn mkdir(&self, name: &[u8], mode: u32) -> io::Result<()> {
        Ok(rustix::fs::mkdirat(
            &self.fd,
            os(name),
            Mode::from_raw_mode(mode as _),
        )?)
    }

    // `stat` field types differ between platforms: the casts are needed elsewhere.
    #[allow(clippy::unnecessary_cast)]
    pub fn entry(&self, name: &[u8]) -> io::Result<Entry> {
        match rustix::fs::statat(&self.fd, os(name), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(match FileType::from_raw_mode(st.st_mode as _) {
                FileType::Directory => Entry::Dir,
                FileType::Symlink => Entry::Symlink,
                FileType::Fifo => Entry::Fifo,
                FileType::CharacterDevice => Entry::Device {
                    char: true,
                    rdev: st.st_rdev as u64,
                },
                FileType::BlockDevice => Entry::Device {
                    char: false,
                    rdev: st.st_rdev as u64,
                },
                FileType::RegularFile => Entry::File {
                    len: st.st_size as u64,
                    dev: st.st_dev as u64,
                    ino: st.st_ino as u64,
                },
                _ => Entry::Other,
            }),
            Err(rustix::io::Errno::NOENT) => Ok(Entry::Missing),
            Err(e) => Err(e.into()),
        }
    }

    /// Links, mode and time of the entry `name` itself (a symlink not followed), without
    /// opening it (opening a device file can act on the device).
    #[allow(clippy::unnecessary_cast)]
    pub(crate) fn status(&self, name: &[u8]) -> io::Result<Status> {
        let st = rustix::fs::statat(&self.fd, os(name), AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(Status {
            nlink: st.st_nlink as u64,
            mode: st.st_mode as u32,
            mtime_ns: st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128,
        })
    }

    /// Open the regular file `name` for reading; a symlink there is an error, not followed.
    /// Without blocking: a FIFO put in the file's place since it was looked up opens at once
    /// (and the caller's check of the open file's type turns it down) instead of waiting
    /// for a writer for ever. Reads of a regular file ignore the flag.
    pub(crate) fn open_file(&self, name: &[u8]) -> io::Result<File> {
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        Ok(rustix::fs::openat(&self.fd, os(name), flags, Mode::empty())?.into())
    }

    /// Create `name` for writing; fails if anything (a symlink included) is there.
    pub fn create_new(&self, name: &[u8]) -> io::Result<File> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, os(name), flags, Mode::from_raw_mode(0o600))?;
        Ok(fd.into())
    }

    /// Rename `from` to `to` in this folder, replacing a file or symlink at `to`.
    pub fn rename(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, os(from), &self.fd, os(to))?)
    }

    /// Remove the file or symlink `name` (never a folder).
    pub fn remove_file(&self, name: &[u8]) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.fd, os(name), AtFlags::empty())?)
    }

    /// Remove `name` if it is there (a leftover temporary file).
    pub(crate) fn remove_if_there(&self, name: &[u8]) -> io::Result<()> {
        match self.remove_file(name) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    pub fn symlink(&self, target: &[u8], name: &[u8]) -> io::Result<()> {
        Ok(rustix::fs::symlinkat(os(target), &self.fd, os(name))?)
    }

    pub fn read_link(&self, name: &[u8]) -> io::Result<Vec<u8>> {
        Ok(rustix::fs::readlinkat(&self.fd, os(name), Vec::new())?.into_bytes())
    }

    /// A hard link `name` here to the file `from_name` in `from` (not following symlinks).
    pub fn hard_link(&self, from: &Dir, from_name: &[u8], name: &[u8]) -> io::Result<()> {
        Ok(rustix::fs::linkat(
            &from.fd,
            os(from_name),
            &self.fd,
            os(name),
            AtFlags::empty(),
        )?)
    }

    /// Create a FIFO or device node `name` (its mode under the umask).
    #[cfg(not(target_vendor = "apple"))]
    pub fn mknod(&self, name: &[u8], kind: FileType, mode: u32, rdev: u64) -> io::Result<()> {
        Ok(rustix::fs::mknodat(
            &self.fd,
            os(name),
            kind,
            Mode::from_raw_mode((mode & 0o7777) as _),
            rdev as _,
        )?)
    }

    /// Create a FIFO or device node `name` (its mode under the umask). rustix has no
    /// `mknodat` for Apple's systems, though macOS has had one since 10.13: call it directly.
    #[cfg(target_vendor = "apple")]
    pub fn mknod(&self, name: &[u8], kind: FileType, mode: u32, rdev: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let path = std::ffi::CString::new(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a name with a NUL byte"))?;
        let raw = (kind.as_raw_mode() as u32 | (mode & 0o7777)) as libc::mode_t;
        // SAFETY: a valid descriptor of this open folder and a NUL-terminated name.
        if unsafe { libc::mknodat(self.fd.as_raw_fd(), path.as_ptr(), raw, rdev as libc::dev_t) }
            != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Open the FIFO `name` without blocking and without following a symlink, to set its
    /// mode and times through the descriptor.
    pub(crate) fn open_fifo(&self, name: &[u8]) -> io::Result<File> {
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        Ok(rustix::fs::openat(&self.fd, os(name), flags, Mode::empty())?.into())
    }

    /// Set the modification (and access) time of `name` itself, a symlink included.
    pub(crate) fn set_link_times(&self, name: &[u8], mtime_ns: i64) -> io::Result<()> {
        Ok(rustix::fs::utimensat(
            &self.fd,
            os(name),
            &timestamps(mtime_ns),
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// Permissions and modification time of this folder itself.
    pub(crate) fn set_meta(&self, mode: u32, mtime_ns: i64) {
        set_meta(&self.fd, mode, mtime_ns);
    }

    /// Does this folder see `a` and `A` as one name? Asked by creating a probe file with
    /// a lower-case name and looking it up in upper case; the probe is removed at once.
    /// Finding the upper-case name at all (it was not there before) is the answer:
    /// comparing inode numbers is not, since FUSE file systems without stable inodes
    /// (exfat-fuse) give each name looked up its own number.
    pub(crate) fn is_case_insensitive(&self) -> io::Result<bool> {
        // A file of that name already there says nothing: another random name (a few
        // tries; a folder that claims every name exists is taken as case-sensitive).
        for _ in 0..3 {
            let name = format!(
                ".snapvault-case-probe-{}",
                crate::format::id::Id::random().short()
            );
            let upper = name.to_ascii_uppercase();
            if !matches!(self.entry(upper.as_bytes())?, Entry::Missing) {
                continue;
            }
            let f = self.create_new(name.as_bytes())?;
            let same = self.entry(upper.as_bytes());
            drop(f);
            let _ = self.remove_file(name.as_bytes());
            return Ok(!matches!(same?, Entry::Missing));
        }
        Ok(false)
    }

    /// Make the names created in this folder durable.
    pub fn sync(&self) -> io::Result<()> {
        crate::storage::durable::sync_open_dir(&File::from(self.fd.try_clone()?))
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Is `a` the path `b` itself or a folder above it?
fn is_self_or_above(a: &[u8], b: &[u8]) -> bool {
    b.starts_with(a) && (a.len() == b.len() || b.get(a.len()) == Some(&b'/'))
}

/// Folders open along one path down from the target, kept while the next path asked for
/// shares them: paths visited in (roughly) depth-first order cost one `openat` each, not
/// one per level. At most [`Chain::KEEP`] handles are held (a tree thousands of folders
/// deep must not run out of descriptors); a dropped one is opened again if needed.
pub(crate) struct Chain<'a> {
    root: &'a Dir,
    open: Vec<(Vec<u8>, Option<Dir>)>,
}

impl<'a> Chain<'a> {
    const KEEP: usize = 64;

    pub fn new(root: &'a Dir) -> Self {
        Chain {
            root,
            open: Vec::new(),
        }
    }

    /// The folder at `path` (relative to the target, every step no-follow).
    pub fn get(&mut self, path: &[u8]) -> io::Result<&Dir> {
        if path.is_empty() {
            return Ok(self.root);
        }
        while self
            .open
            .last()
            .is_some_and(|(p, _)| !is_self_or_above(p, path))
        {
            self.open.pop();
        }
        if let Some(top) = self.open.len().checked_sub(1) {
            self.refill(top)?;
        }
        loop {
            let have = self.open.last().map_or(0, |(p, _)| p.len());
            if have == path.len() {
                break;
            }
            let start = if have == 0 { 0 } else { have + 1 };
            let end = path
                .get(start..)
                .and_then(|rest| rest.iter().position(|&b| b == b'/'))
                .map_or(path.len(), |i| start + i);
            let name = path.get(start..end).unwrap_or_default();
            let next = match self.open.last() {
                None => self.root.open(name)?,
                Some((_, Some(d))) => d.open(name)?,
                Some((_, None)) => return Err(io::Error::other("folder handle lost")),
            };
            self.open.push((path[..end].to_vec(), Some(next)));
            let n = self.open.len();
            if n > Self::KEEP {
                self.open[n - Self::KEEP - 1].1 = None;
            }
        }
        match self.open.last() {
            Some((_, Some(d))) => Ok(d),
            Some((_, None)) => Err(io::Error::other("folder handle lost")),
            None => Ok(self.root),
        }
    }

    /// Make sure `open[i]` holds a handle: walk down from the nearest held one above it (or
    /// the target), keeping handles for the last [`Chain::KEEP`] steps, so climbing back up
    /// a deep tree reopens a stretch at a time, not every level from the top.
    fn refill(&mut self, i: usize) -> io::Result<()> {
        if self.open.get(i).is_none_or(|(_, d)| d.is_some()) {
            return Ok(());
        }
        let from = self.open[..i].iter().rposition(|(_, d)| d.is_some());
        let mut cur: Option<Dir> = None;
        let first = from.map_or(0, |j| j + 1);
        for k in first..=i {
            let start = if k == 0 {
                0
            } else {
                self.open[k - 1].0.len() + 1
            };
            let name = self.open[k].0.get(start..).unwrap_or_default().to_vec();
            let parent = match (&cur, k.checked_sub(1)) {
                (Some(c), _) => c,
                (None, Some(j)) => match &self.open[j].1 {
                    Some(d) => d,
                    None => self.root,
                },
                (None, None) => self.root,
            };
            let d = parent.open(&name)?;
            if i - k < Self::KEEP {
                cur = Some(d.try_clone()?);
                self.open[k].1 = Some(d);
            } else {
                cur = Some(d);
            }
        }
        Ok(())
    }
}

fn timestamps(mtime_ns: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime_ns.div_euclid(1_000_000_000) as _,
        tv_nsec: mtime_ns.rem_euclid(1_000_000_000) as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// What decides whether an entry already there is shared with another name.
#[derive(Clone, Copy)]
pub(crate) struct Status {
    pub nlink: u64,
    pub mode: u32,
    pub mtime_ns: i128,
}

impl Status {
    pub fn of(md: &fs::Metadata) -> Status {
        use std::os::unix::fs::MetadataExt;
        Status {
            nlink: md.nlink(),
            mode: md.mode(),
            mtime_ns: md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
        }
    }
}

/// Permissions and modification time through an open descriptor. Best effort: some
/// filesystems (exFAT, FAT) keep neither, and the content is what matters.
pub(crate) fn set_meta(fd: impl AsFd, mode: u32, mtime_ns: i64) {
    let _ = rustix::fs::fchmod(&fd, Mode::from_raw_mode((mode & 0o7777) as _));
    let _ = rustix::fs::futimens(&fd, &timestamps(mtime_ns));
}

/// The device an open file or folder is on.
// `stat` field types differ between platforms.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn device(fd: impl AsFd) -> io::Result<u64> {
    Ok(rustix::fs::fstat(fd)?.st_dev as u64)
}

/// ELOOP / ENOTDIR: a symlink or something other than a folder stands at the name.
pub(crate) fn is_not_a_folder(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_are_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        fs::create_dir(&victim).unwrap();
        fs::write(victim.join("f"), b"x").unwrap();
        let t = tmp.path().join("t");
        let root = Dir::open_target(&t).unwrap();
        std::os::unix::fs::symlink(&victim, t.join("link")).unwrap();
        std::os::unix::fs::symlink(victim.join("f"), t.join("flink")).unwrap();
        let e = root.open(b"link").unwrap_err();
        assert!(is_not_a_folder(&e), "{e}");
        assert!(root.open_path(b"link/sub").is_err());
        assert_eq!(root.entry(b"link").unwrap(), Entry::Symlink);
        assert!(root.open_file(b"flink").is_err());
        assert!(root.create_new(b"flink").is_err());
        assert_eq!(
            root.read_link(b"flink").unwrap(),
            victim.join("f").as_os_str().as_bytes()
        );
        assert_eq!(root.entry(b"none").unwrap(), Entry::Missing);
        root.mkdir(b"d", 0o700).unwrap();
        root.open_path(b"d").unwrap().mkdir(b"e", 0o700).unwrap();
        assert_eq!(
            root.open_path(b"d/e").unwrap().entry(b"x").unwrap(),
            Entry::Missing
        );
        assert_eq!(fs::read(victim.join("f")).unwrap(), b"x");
        // A chain of handles reaches the same folders, and nothing through the symlink.
        let mut chain = Chain::new(&root);
        assert!(chain.get(b"d/e").is_ok());
        assert!(chain.get(b"d").is_ok());
        assert!(chain.get(b"link/sub").is_err());
        assert!(chain.get(b"d/e").is_ok());
        // An ordinary Linux folder tells case apart, and the probe leaves nothing behind.
        let d = root.open_path(b"d").unwrap();
        assert!(!d.is_case_insensitive().unwrap());
        assert_eq!(fs::read_dir(t.join("d")).unwrap().count(), 1);
    }

    /// A file of the target swapped for a FIFO between its look-up and its opening (anyone
    /// who may write to the target can do it): opening it to see whether it is already
    /// right must not wait for a writer for ever. Before, `open_file` blocked in open(2)
    /// (found as the snapshot's twin in session 11; this is restore's side).
    #[test]
    fn opening_a_fifo_in_place_of_a_file_does_not_block() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().join("t");
        let root = Dir::open_target(&t).unwrap();
        root.mknod(b"pipe", FileType::Fifo, 0o644, 0).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let opened = root
                .open_file(b"pipe")
                .map(|f| f.metadata().map(|m| m.is_file()));
            let _ = tx.send(opened.is_ok_and(|m| m.is_ok_and(|file| file)));
        });
        // A hang guard, not a timing: the open returns at once or never.
        let regular = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("open_file blocked on a FIFO");
        assert!(!regular);
    }
}
