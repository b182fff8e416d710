//! Sources of files for a snapshot. The archiver sees a virtual tree of byte paths; a
//! [`FolderSource`] maps it onto local folders (each given folder appears at the top level
//! under its own name). The iPhone source implements the same trait in the binary.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{RepoError, Result};
use crate::format::tree::{Name, NodeKind};
use crate::storage::readahead::{self, AheadReader};

mod open_dirs;
mod status;

use open_dirs::OpenDirs;
// The kind of an entry, as `entry_from_metadata` asks for it of an `fs::Metadata` or not.
use status::Kind as _;

/// One entry as the source reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceEntry {
    pub name: Name,
    pub kind: NodeKind,
    pub mode: u32,
    pub mtime: i64,
    pub btime: Option<i64>,
    pub size: u64,
    pub target: Option<Name>,
    /// Devices: the device number.
    pub rdev: Option<u64>,
    /// A file with more than one hard link: (device, inode), so restore can link it again.
    pub link: Option<(u64, u64)>,
    /// Files, when the source can tell (local folders): the status change time (ns) and
    /// the inode number, for the change test only (never for linking: see `link`).
    pub ctime: Option<i64>,
    pub inode: Option<u64>,
}

/// How a file was seen to change while the snapshot read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Listed at one length, read at another.
    Length { listed: u64, read: u64 },
    /// Read at its listed length, but its modification time moved after it was listed:
    /// written meanwhile (the next snapshot sees the time and reads it again).
    Time,
    /// Length and modification time as listed, but its status changed while it was read:
    /// written and its time set back (`touch -d`, a tool keeping times), or its mode or
    /// links changed. The next snapshot sees it by the change time its node recorded.
    TimeSetBack,
}

/// A file opened by a [`Source`], read front to back.
pub trait SourceFile: Read + Send {
    /// Asked once the file was read to its end (`read` bytes): how it changed since it was
    /// listed as `listed` and opened, when it did and the source can tell. A length read
    /// other than the listed one is the caller's to see.
    fn changed(&self, _listed: &SourceEntry, _read: u64) -> Option<Change> {
        None
    }
}

/// A local copy made for the snapshot (consistent by construction).
impl SourceFile for fs::File {}

/// A reader whose source cannot tell whether the file changed while it was read (a
/// phone's file over AFC: only its length is compared).
pub struct Unwatched<R>(pub R);

impl<R: Read> Read for Unwatched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read + Send> SourceFile for Unwatched<R> {}

/// A tree of files to back up, addressed by `/`-separated byte paths relative to its root.
pub trait Source: Send + Sync {
    /// Entries of a directory, sorted by name. `b""` is the root.
    fn list(&self, dir: &[u8]) -> io::Result<Vec<SourceEntry>>;
    /// Open a file for reading.
    fn open(&self, path: &[u8]) -> io::Result<Box<dyn SourceFile + '_>>;
    /// Does this error mean the whole source is gone (a phone unplugged), so the snapshot
    /// must stop rather than skip the file?
    fn is_fatal(&self, _error: &io::Error) -> bool {
        false
    }
    /// A hint that the first `len` bytes of `path` will be read soon, so a local source can
    /// have the disk fetch them while earlier files are still being chunked.
    fn prefetch(&self, _path: &[u8], _len: u64) {}
    /// Open `path` to read it soon and hint its first `len` bytes ([`Source::prefetch`]),
    /// handing back the opening so the read does not open it again. `None` when this source
    /// can only hint, or the open failed (the read opens it again and reports why).
    fn open_ahead(&self, path: &[u8], len: u64) -> Option<Box<dyn SourceFile + '_>> {
        self.prefetch(path, len);
        None
    }
}

pub struct FolderSource {
    roots: Vec<(Name, PathBuf)>,
    /// The folders below the roots, walked by open descriptors (see `open_dirs`).
    dirs: OpenDirs,
}

impl FolderSource {
    /// Each path must exist; two paths with the same final name are refused. A path that
    /// is a symlink is followed (as `cp -r` and `tar -h` do): its target is backed up under
    /// the link's name. `dir`, `dir/` and `./dir` are one source.
    pub fn new(paths: &[PathBuf]) -> Result<FolderSource> {
        let mut roots: Vec<(Name, PathBuf)> = Vec::new();
        for p in paths {
            let Ok(md) = fs::symlink_metadata(p) else {
                return Err(RepoError::SourceMissing(p.clone()));
            };
            let abs = normalize(p).map_err(|e| RepoError::io(p.display().to_string(), e))?;
            if md.file_type().is_symlink() && fs::metadata(&abs).is_err() {
                let target = fs::read_link(p).unwrap_or_default();
                return Err(RepoError::SourceDanglingSymlink {
                    path: p.clone(),
                    target,
                });
            }
            let name = match abs.file_name() {
                Some(n) => Name(n.as_bytes().to_vec()),
                None => Name(b"root".to_vec()),
            };
            if roots.iter().any(|(n, _)| *n == name) {
                return Err(RepoError::SourceNameClash {
                    name: name.lossy().to_string(),
                });
            }
            roots.push((name, abs));
        }
        roots.sort();
        Ok(FolderSource {
            roots,
            dirs: OpenDirs::default(),
        })
    }

    /// Where `path` (an absolute, existing path) appears in this source's tree, when it
    /// lies inside one of the folders backed up: `Some(b"")` for a root itself.
    pub fn tree_path_of(&self, path: &Path) -> Option<Vec<u8>> {
        let real = fs::canonicalize(path).ok()?;
        for (name, base) in &self.roots {
            let Ok(base) = fs::canonicalize(base) else {
                continue;
            };
            let Ok(rel) = real.strip_prefix(&base) else {
                continue;
            };
            let mut out = name.0.clone();
            for c in rel.components() {
                out.push(b'/');
                out.extend_from_slice(c.as_os_str().as_bytes());
            }
            return Some(out);
        }
        None
    }

    pub fn absolute_paths(&self) -> Vec<String> {
        self.roots
            .iter()
            .map(|(_, p)| p.display().to_string())
            .collect()
    }

    /// The folder given for the root that tree path `path` lies in.
    fn base(&self, path: &[u8]) -> io::Result<&Path> {
        let first = path.split(|&b| b == b'/').next().unwrap_or_default();
        self.roots
            .iter()
            .find(|(n, _)| n.0 == first)
            .map(|(_, base)| base.as_path())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown root"))
    }

    /// The open folder holding the entry at tree path `path` (not a root), and its name
    /// there.
    fn parent_of<'p>(
        &self,
        path: &'p [u8],
    ) -> io::Result<(std::sync::Arc<std::os::fd::OwnedFd>, &'p OsStr)> {
        let i = path
            .iter()
            .rposition(|&b| b == b'/')
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "not in a folder"))?;
        let dir = self.dirs.dir(&path[..i], self.base(path)?)?;
        Ok((dir, OsStr::from_bytes(&path[i + 1..])))
    }
}

/// `p` made absolute without trailing `/` or `.` components; `..` components are resolved
/// by the file system (the folder before a `..` may be a symlink, so the text alone cannot
/// say where it leads), so `snapshot ..` is named after the real parent folder.
fn normalize(p: &Path) -> io::Result<PathBuf> {
    use std::path::Component;
    let abs = std::path::absolute(p)?;
    let comps: Vec<Component> = abs.components().collect();
    let mut out = PathBuf::new();
    let mut rest = &comps[..];
    if let Some(i) = comps
        .iter()
        .rposition(|c| matches!(c, Component::ParentDir))
    {
        let (head, tail) = comps.split_at(i + 1);
        out = fs::canonicalize(head.iter().collect::<PathBuf>())?;
        rest = tail;
    }
    for c in rest {
        if !matches!(c, Component::CurDir) {
            out.push(c);
        }
    }
    Ok(out)
}

/// `link_target` is asked for only when the entry is a symlink. `md`: an [`fs::Metadata`],
/// or a status read relative to an open folder (`open_dirs`).
pub(crate) fn entry_from_metadata(
    name: Name,
    md: &impl status::Status,
    link_target: impl FnOnce() -> io::Result<Vec<u8>>,
) -> io::Result<SourceEntry> {
    let ft = md.file_type();
    // FIFOs, sockets and devices are recorded (never opened or read), as restic does.
    let kind = if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_symlink() {
        NodeKind::Symlink
    } else if ft.is_file() {
        NodeKind::File
    } else if ft.is_fifo() {
        NodeKind::Fifo
    } else if ft.is_socket() {
        NodeKind::Socket
    } else if ft.is_char_device() {
        NodeKind::CharDevice
    } else if ft.is_block_device() {
        NodeKind::BlockDevice
    } else {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "of a kind snapvault does not know (skipped)",
        ));
    };
    let target = if kind == NodeKind::Symlink {
        Some(Name(link_target()?))
    } else {
        None
    };
    let btime = md.created().ok().and_then(|t| {
        t.duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_nanos() as i64)
    });
    Ok(SourceEntry {
        name,
        kind,
        mode: md.mode() & 0o7777,
        mtime: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
        btime,
        size: if kind == NodeKind::File { md.len() } else { 0 },
        target,
        rdev: matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice).then(|| md.rdev()),
        link: (kind == NodeKind::File && md.nlink() > 1).then(|| (md.dev(), md.ino())),
        ctime: (kind == NodeKind::File).then(|| md.ctime() * 1_000_000_000 + md.ctime_nsec()),
        inode: (kind == NodeKind::File).then(|| md.ino()),
    })
}

/// A root of the tree (a path given to the snapshot): followed when it is a symlink, as
/// [`FolderSource::new`] says; a file in a folder is listed as what it is and never read
/// through a symlink put in its place.
fn is_root(path: &[u8]) -> bool {
    !path.contains(&b'/')
}

/// One `fstat` on the descriptor read, after the read: its modification time and length
/// against the listing's, its status change time against the opening's.
impl SourceFile for AheadReader {
    fn changed(&self, listed: &SourceEntry, read: u64) -> Option<Change> {
        let (file, opened) = self.file();
        let now = file.metadata().ok()?;
        let mtime = now.mtime() * 1_000_000_000 + now.mtime_nsec();
        if mtime != listed.mtime || now.len() != read {
            Some(Change::Time)
        } else if (now.ctime(), now.ctime_nsec()) != (opened.ctime(), opened.ctime_nsec()) {
            Some(Change::TimeSetBack)
        } else {
            None
        }
    }
}

impl Source for FolderSource {
    fn list(&self, dir: &[u8]) -> io::Result<Vec<SourceEntry>> {
        let mut out = Vec::new();
        if dir.is_empty() {
            for (name, p) in &self.roots {
                // Follows a root given as a symlink.
                let md = fs::metadata(p)?;
                let target = || Ok(fs::read_link(p)?.into_os_string().into_vec());
                out.push(entry_from_metadata(name.clone(), &md, target)?);
            }
            return Ok(out);
        }
        open_dirs::list(&*self.dirs.dir(dir, self.base(dir)?)?)
    }

    fn open(&self, path: &[u8]) -> io::Result<Box<dyn SourceFile + '_>> {
        if is_root(path) {
            return Ok(Box::new(AheadReader::open(self.base(path)?, true)?));
        }
        let (dir, name) = self.parent_of(path)?;
        Ok(Box::new(AheadReader::open_at(&dir, name, None)?))
    }

    fn prefetch(&self, path: &[u8], len: u64) {
        if is_root(path) {
            if let Ok(p) = self.base(path) {
                readahead::willneed(p, 0, len);
            }
        } else if let Ok((dir, name)) = self.parent_of(path) {
            let _ = AheadReader::open_at(&dir, name, Some(len));
        }
    }

    fn open_ahead(&self, path: &[u8], len: u64) -> Option<Box<dyn SourceFile + '_>> {
        let reader = if is_root(path) {
            AheadReader::open_ahead(self.base(path).ok()?, len, true)
        } else {
            let (dir, name) = self.parent_of(path).ok()?;
            AheadReader::open_at(&dir, name, Some(len))
        };
        Some(Box::new(reader.ok()?))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;

    /// Wait until the file system's clock has moved past `ctime` of `md` (timestamps are
    /// taken from a coarse clock: a change within the same tick leaves them as they were).
    fn past(dir: &Path, md: &fs::Metadata) {
        let probe = dir.join("probe");
        loop {
            fs::write(&probe, b"x").unwrap();
            let p = fs::metadata(&probe).unwrap();
            if (p.ctime(), p.ctime_nsec()) > (md.ctime(), md.ctime_nsec()) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// After a read, the opening's one `fstat` tells a file left alone from one written
    /// meanwhile, its modification time moved or set back to the listed one (the length
    /// kept: only the times can tell). Before: nothing looked after the read.
    #[test]
    fn a_file_written_while_it_is_read_is_told_by_its_times() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib");
        fs::create_dir(&lib).unwrap();
        let source = FolderSource::new(std::slice::from_ref(&lib)).unwrap();
        for (name, write, set_back, want) in [
            ("alone", false, false, None),
            ("written", true, false, Some(Change::Time)),
            ("set-back", true, true, Some(Change::TimeSetBack)),
        ] {
            let path = lib.join(name);
            fs::write(&path, vec![7u8; 100_000]).unwrap();
            let listed = source
                .list(b"lib")
                .unwrap()
                .into_iter()
                .find(|e| e.name.0 == name.as_bytes())
                .unwrap();
            let tree_path = format!("lib/{name}");
            let mut reader = source.open(tree_path.as_bytes()).unwrap();
            let mut half = vec![0u8; 50_000];
            reader.read_exact(&mut half).unwrap();
            if write {
                past(dir.path(), &fs::metadata(&path).unwrap());
                let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
                f.write_all_at(&[1u8; 10], 0).unwrap();
                f.write_all_at(&[1u8; 10], 90_000).unwrap();
                if set_back {
                    let t = std::time::UNIX_EPOCH
                        + std::time::Duration::from_nanos(listed.mtime as u64);
                    f.set_modified(t).unwrap();
                }
            }
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).unwrap();
            assert_eq!(half.len() + rest.len(), 100_000);
            assert_eq!(reader.changed(&listed, 100_000), want, "{name}");
        }
    }

    /// A folder listed as a folder, then swapped for a symlink to a folder outside the
    /// library (anyone who can write to the library, against a snapshot run by root from
    /// cron): listing it and opening a file in it must not go through the symlink. Before:
    /// both resolved the whole path, so the outside folder's names and bytes were stored
    /// under the library's. A folder listed before the swap is read as the folder it was;
    /// one listed after it is refused, named as a symlink now.
    #[test]
    fn a_folder_swapped_for_a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib");
        let outside = dir.path().join("outside");
        for d in ["lib/early", "lib/late", "outside"] {
            fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        fs::write(lib.join("early/a.jpg"), b"library").unwrap();
        fs::write(lib.join("late/a.jpg"), b"library").unwrap();
        fs::write(outside.join("a.jpg"), b"SECRET").unwrap();
        fs::write(outside.join("only-outside.jpg"), b"SECRET").unwrap();
        let source = FolderSource::new(std::slice::from_ref(&lib)).unwrap();
        let top = source.list(b"lib").unwrap();
        assert!(top.iter().all(|e| e.kind == NodeKind::Dir), "{top:?}");
        assert_eq!(source.list(b"lib/early").unwrap().len(), 1);
        for d in ["early", "late"] {
            fs::rename(lib.join(d), lib.join(format!("{d}.old"))).unwrap();
            std::os::unix::fs::symlink(&outside, lib.join(d)).unwrap();
        }
        // Listed before the swap: read from the folder it was (now `early.old`).
        let mut bytes = Vec::new();
        source
            .open(b"lib/early/a.jpg")
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        assert_eq!(bytes, b"library");
        // Listed after it: refused, never the outside folder.
        match source.list(b"lib/late") {
            Ok(entries) => panic!("listed through the symlink: {entries:?}"),
            Err(e) => assert!(e.to_string().contains("symlink"), "{e}"),
        }
        match source.open(b"lib/late/a.jpg") {
            Ok(mut r) => {
                let mut bytes = Vec::new();
                r.read_to_end(&mut bytes).unwrap();
                panic!(
                    "read through the symlink: {:?}",
                    String::from_utf8_lossy(&bytes)
                );
            }
            Err(e) => assert!(e.to_string().contains("symlink"), "{e}"),
        }
    }

    /// A walk deeper than the folders kept open holds no more than [`open_dirs::MAX_OPEN`]
    /// of them, and still lists and opens at every depth.
    #[test]
    fn a_deep_walk_holds_a_bounded_number_of_folders_open() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib");
        let depth = open_dirs::MAX_OPEN * 2;
        let mut p = lib.clone();
        for _ in 0..depth {
            p.push("d");
        }
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("f"), b"deep").unwrap();
        let source = FolderSource::new(std::slice::from_ref(&lib)).unwrap();
        let mut tree = b"lib".to_vec();
        for _ in 0..depth {
            assert_eq!(source.list(&tree).unwrap().len(), 1);
            tree.extend_from_slice(b"/d");
        }
        assert_eq!(source.list(&tree).unwrap()[0].size, 4);
        tree.extend_from_slice(b"/f");
        let mut bytes = Vec::new();
        source.open(&tree).unwrap().read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, b"deep");
        assert!(source.dirs.held() <= open_dirs::MAX_OPEN);
    }
}
