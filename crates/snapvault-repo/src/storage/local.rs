//! A repository in a local folder (typically an external SSD).
//!
//! Writes go to `.tmp-<random>` in the target folder, are fsynced, linked into place with
//! `link(2)` (which fails if the name exists, so nothing is ever replaced) and the folder is
//! fsynced. On filesystems without hard links (exFAT, FAT) we fall back to `rename` after
//! an existence check. Files and folders are created owner-only.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::backend::{Backend, FileInfo, FileKind, PackSink};
use crate::error::{IoContext, RepoError, Result};
use crate::storage::direct_io::DirectWriter;

const TEMP_PREFIX: &str = ".tmp-";

pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBackend { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir_of(&self, kind: FileKind, name: &str) -> PathBuf {
        match kind {
            FileKind::Config => self.root.clone(),
            // Packs are spread over 256 folders by their first two hex digits.
            FileKind::Pack => self.root.join("data").join(name.get(..2).unwrap_or("00")),
            _ => self.root.join(kind.dir()),
        }
    }

    fn path_of(&self, kind: FileKind, name: &str) -> Result<PathBuf> {
        Ok(self.root.join(kind.path_of(name)?))
    }

    /// Create `path` and any missing parents, owner-only. The parent of each folder
    /// created is synced, so the folder's own name (a new `data/xx`) is durable before
    /// files are linked into it.
    fn mkdir(path: &Path) -> io::Result<()> {
        if fs::metadata(path).is_ok_and(|m| m.is_dir()) {
            return Ok(());
        }
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(p) = parent {
            Self::mkdir(p)?;
        }
        match fs::DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => fsync_dir(parent.unwrap_or(Path::new("."))),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Give the durable temporary file `tmp` its name `target` in `dir`: `link(2)`, which
/// fails if the name exists (so nothing is ever replaced), or where the filesystem has no
/// hard links a check and `rename(2)`; then the folder is synced.
fn publish(tmp: &Path, target: &Path, dir: &Path) -> io::Result<()> {
    match fs::hard_link(tmp, target) {
        Ok(()) => fs::remove_file(tmp)?,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(e);
        }
        Err(_) => {
            // No hard links on this filesystem: check, then rename.
            if target.exists() {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
            }
            fs::rename(tmp, target)?;
        }
    }
    fsync_dir(dir)
}

/// The outcome of a write to `tmp` meant for `target`: on failure the temporary file is
/// removed, and a name already taken is [`RepoError::FileExists`].
fn written(
    result: io::Result<()>,
    tmp: &Path,
    kind: FileKind,
    name: &str,
    target: &Path,
) -> Result<()> {
    let Err(e) = result else {
        return Ok(());
    };
    let _ = fs::remove_file(tmp);
    if e.kind() == io::ErrorKind::AlreadyExists {
        return Err(RepoError::FileExists(format!("{} {name}", kind.name())));
    }
    Err(RepoError::io(format!("writing {}", target.display()), e))
}

/// A pack being written as it fills ([`LocalBackend::begin_pack`]).
struct LocalPack<'a> {
    backend: &'a LocalBackend,
    /// `None` once committed.
    writer: Option<DirectWriter>,
    tmp: PathBuf,
}

impl PackSink for LocalPack<'_> {
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        w.write_all(bytes)
            .ctx(|| format!("writing {}", self.tmp.display()))
    }

    fn commit(mut self: Box<Self>, name: &str) -> Result<()> {
        let kind = FileKind::Pack;
        let target = self.backend.path_of(kind, name)?;
        let dir = self.backend.dir_of(kind, name);
        LocalBackend::mkdir(&dir).ctx(|| format!("creating folder {}", dir.display()))?;
        let Some(w) = self.writer.take() else {
            return Ok(());
        };
        let result = w.finish().and_then(|_| publish(&self.tmp, &target, &dir));
        written(result, &self.tmp, kind, name, &target)
    }
}

impl Drop for LocalPack<'_> {
    /// Not committed (the run failed or stopped): no pack, no temporary file left.
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    crate::storage::durable::sync_dir(dir)
}

fn not_found_is(kind: FileKind, name: &str, e: io::Error) -> RepoError {
    if e.kind() == io::ErrorKind::NotFound {
        RepoError::corrupt(
            format!("{} {name}", kind.name()),
            "file is missing from the repository",
        )
    } else {
        RepoError::io(format!("reading {} {name}", kind.name()), e)
    }
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        let p = self.path_of(kind, name)?;
        match fs::metadata(&p) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(RepoError::io(format!("checking {}", p.display()), e)),
        }
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let p = self.path_of(kind, name)?;
        fs::read(&p).map_err(|e| not_found_is(kind, name, e))
    }

    fn read_range_into(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: usize,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let p = self.path_of(kind, name)?;
        let f = File::open(&p).map_err(|e| not_found_is(kind, name, e))?;
        // Only bytes beyond the buffer's current length get zeroed first.
        buf.resize(len, 0);
        f.read_exact_at(buf, offset).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                RepoError::corrupt(
                    format!("{} {name}", kind.name()),
                    format!("file ends before byte {}", offset + len as u64),
                )
            } else {
                RepoError::io(format!("reading {}", p.display()), e)
            }
        })
    }

    fn read_whole_into<'b>(
        &self,
        kind: FileKind,
        name: &str,
        len: usize,
        buf: &'b mut Vec<u8>,
    ) -> Result<&'b mut [u8]> {
        let p = self.path_of(kind, name)?;
        let f = File::open(&p).map_err(|e| not_found_is(kind, name, e))?;
        match crate::storage::direct_read::read_whole(&f, len, buf) {
            Ok((bytes, _)) => Ok(bytes),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(RepoError::corrupt(
                format!("{} {name}", kind.name()),
                format!("file ends before byte {len}"),
            )),
            Err(e) => Err(RepoError::io(format!("reading {}", p.display()), e)),
        }
    }

    fn prefetch(&self, kind: FileKind, name: &str, offset: u64, len: u64) {
        if let Ok(p) = self.path_of(kind, name) {
            crate::storage::readahead::willneed(&p, offset, len);
        }
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        let target = self.path_of(kind, name)?;
        let dir = self.dir_of(kind, name);
        Self::mkdir(&dir).ctx(|| format!("creating folder {}", dir.display()))?;
        let tmp = dir.join(format!(
            "{TEMP_PREFIX}{}",
            crate::format::id::Id::random().short()
        ));
        let result = (|| -> io::Result<()> {
            let f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            crate::storage::testhooks::pause_write(kind);
            // Packs go past the page cache (see `direct_io`); `finish` makes it durable.
            let mut w = DirectWriter::new(f, data.len() as u64);
            w.write_all(data)?;
            w.finish()?;
            publish(&tmp, &target, &dir)
        })();
        written(result, &tmp, kind, name, &target)
    }

    fn streams_packs(&self) -> bool {
        true
    }

    /// The pack goes to `data/.tmp-<random>` (its folder depends on its name, known only
    /// at the end), written with direct I/O as its segments come; the commit makes it
    /// durable and links it into `data/<2 hex>/` as [`LocalBackend::write`] does.
    fn begin_pack(&self, expected_len: u64) -> Result<Box<dyn PackSink + '_>> {
        let dir = self.root.join(FileKind::Pack.dir());
        Self::mkdir(&dir).ctx(|| format!("creating folder {}", dir.display()))?;
        let tmp = dir.join(format!(
            "{TEMP_PREFIX}{}",
            crate::format::id::Id::random().short()
        ));
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .ctx(|| format!("creating {}", tmp.display()))?;
        let sink = LocalPack {
            backend: self,
            writer: Some(DirectWriter::new(f, expected_len)),
            tmp,
        };
        crate::storage::testhooks::pause_write(FileKind::Pack);
        Ok(Box::new(sink))
    }

    /// Temp file, fsync, `rename(2)` over the old file, fsync of the folder: a reader sees
    /// the old file or the new one, never neither.
    fn replace(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        let target = self.path_of(kind, name)?;
        let dir = self.dir_of(kind, name);
        let tmp = dir.join(format!(
            "{TEMP_PREFIX}{}",
            crate::format::id::Id::random().short()
        ));
        let result = (|| -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            io::Write::write_all(&mut f, data)?;
            f.sync_all()?;
            fs::rename(&tmp, &target)?;
            fsync_dir(&dir)
        })();
        result.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            RepoError::io(format!("replacing {}", target.display()), e)
        })
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        let mut out = Vec::new();
        let dirs: Vec<PathBuf> = match kind {
            FileKind::Config => {
                return Ok(match fs::metadata(self.root.join("config")) {
                    Ok(m) => vec![FileInfo {
                        name: "config".into(),
                        size: m.len(),
                    }],
                    Err(_) => vec![],
                });
            }
            FileKind::Pack => {
                let data = self.root.join("data");
                let mut v = Vec::new();
                match fs::read_dir(&data) {
                    Ok(rd) => {
                        for e in rd {
                            let e = e.ctx(|| format!("listing {}", data.display()))?;
                            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                                v.push(e.path());
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(RepoError::io(format!("listing {}", data.display()), e)),
                }
                v
            }
            _ => vec![self.root.join(kind.dir())],
        };
        for dir in dirs {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(RepoError::io(format!("listing {}", dir.display()), e)),
            };
            for e in rd {
                let e = e.ctx(|| format!("listing {}", dir.display()))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let md = match e.metadata() {
                    Ok(m) => m,
                    // Removed between readdir and stat (a concurrent prune): not there.
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(RepoError::io(format!("stat {name}"), err)),
                };
                if md.is_file() {
                    out.push(FileInfo {
                        name,
                        size: md.len(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        let p = self.path_of(kind, name)?;
        fs::metadata(&p)
            .map(|m| m.len())
            .map_err(|e| not_found_is(kind, name, e))
    }

    fn age_secs(&self, kind: FileKind, name: &str) -> Result<Option<u64>> {
        let p = self.path_of(kind, name)?;
        let md = fs::metadata(&p).map_err(|e| not_found_is(kind, name, e))?;
        Ok(md
            .modified()
            .ok()
            .map(|m| m.elapsed().map(|d| d.as_secs()).unwrap_or(0)))
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        let p = self.path_of(kind, name)?;
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(RepoError::io(format!("removing {}", p.display()), e)),
        }
        if let Some(d) = p.parent() {
            fsync_dir(d).ctx(|| format!("syncing folder {}", d.display()))?;
        }
        Ok(())
    }

    fn create_layout(&self) -> Result<()> {
        Self::mkdir(&self.root).ctx(|| format!("creating {}", self.root.display()))?;
        for kind in [
            FileKind::Key,
            FileKind::Lock,
            FileKind::Snapshot,
            FileKind::Index,
            FileKind::Pack,
            FileKind::Parity,
        ] {
            let d = self.root.join(kind.dir());
            Self::mkdir(&d).ctx(|| format!("creating {}", d.display()))?;
        }
        fsync_dir(&self.root).ctx(|| format!("syncing {}", self.root.display()))
    }

    fn leftover_temp_files(&self) -> Result<Vec<FileInfo>> {
        Ok(self.temp_files()?.into_iter().map(|(_, f, _)| f).collect())
    }

    fn remove_leftover_temp_files(&self, min_age_secs: u64) -> Result<usize> {
        let mut n = 0;
        for (path, _, age) in self.temp_files()? {
            if age >= min_age_secs && fs::remove_file(&path).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }
}

impl LocalBackend {
    /// Every `.tmp-*` file in the repository with its age in seconds.
    fn temp_files(&self) -> Result<Vec<(PathBuf, FileInfo, u64)>> {
        // `data` itself holds the temporary files of packs written as they filled.
        let mut dirs = vec![self.root.clone()];
        for k in ["keys", "locks", "snapshots", "index", "data"] {
            dirs.push(self.root.join(k));
        }
        if let Ok(rd) = fs::read_dir(self.root.join("data")) {
            dirs.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
        let mut out = Vec::new();
        for d in dirs {
            let Ok(rd) = fs::read_dir(&d) else { continue };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.starts_with(TEMP_PREFIX) {
                    continue;
                }
                let Ok(md) = e.metadata() else { continue };
                let age = md
                    .modified()
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let shown = e
                    .path()
                    .strip_prefix(&self.root)
                    .map(|p| p.display().to_string())
                    .unwrap_or(name);
                out.push((
                    e.path(),
                    FileInfo {
                        name: shown,
                        size: md.len(),
                    },
                    age,
                ));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("repo"));
        b.create_layout().unwrap();
        let name = "ab".repeat(32);
        b.write(FileKind::Pack, &name, b"hello").unwrap();
        assert!(b.write(FileKind::Pack, &name, b"other").is_err());
        assert_eq!(b.read(FileKind::Pack, &name).unwrap(), b"hello");
        assert_eq!(b.read_range(FileKind::Pack, &name, 1, 3).unwrap(), b"ell");
        assert!(b.read_range(FileKind::Pack, &name, 3, 5).is_err());
        assert_eq!(
            b.list(FileKind::Pack).unwrap(),
            vec![FileInfo {
                name: name.clone(),
                size: 5
            }]
        );
        let mode = fs::metadata(b.path_of(FileKind::Pack, &name).unwrap())
            .unwrap()
            .permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
        b.remove(FileKind::Pack, &name).unwrap();
        assert!(b.list(FileKind::Pack).unwrap().is_empty());
        assert!(b.read(FileKind::Pack, "../x").is_err());
        assert!(b.leftover_temp_files().unwrap().is_empty());
    }
}
