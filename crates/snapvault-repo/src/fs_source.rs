//! Sources of files for a snapshot. The archiver sees a virtual tree of byte paths; a
//! [`FolderSource`] maps it onto local folders (each given folder appears at the top level
//! under its own name). The iPhone source implements the same trait in the binary.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{RepoError, Result};
use crate::readahead::{self, AheadReader};
use crate::tree::{Name, NodeKind};

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
}

/// A tree of files to back up, addressed by `/`-separated byte paths relative to its root.
pub trait Source: Send + Sync {
    /// Entries of a directory, sorted by name. `b""` is the root.
    fn list(&self, dir: &[u8]) -> io::Result<Vec<SourceEntry>>;
    /// Open a file for reading.
    fn open(&self, path: &[u8]) -> io::Result<Box<dyn Read + Send + '_>>;
    /// Does this error mean the whole source is gone (a phone unplugged), so the snapshot
    /// must stop rather than skip the file?
    fn is_fatal(&self, _error: &io::Error) -> bool {
        false
    }
    /// A hint that the first `len` bytes of `path` will be read soon, so a local source can
    /// have the disk fetch them while earlier files are still being chunked.
    fn prefetch(&self, _path: &[u8], _len: u64) {}
}

pub struct FolderSource {
    roots: Vec<(Name, PathBuf)>,
}

impl FolderSource {
    /// Each path must exist; two paths with the same final name are refused.
    pub fn new(paths: &[PathBuf]) -> Result<FolderSource> {
        let mut roots: Vec<(Name, PathBuf)> = Vec::new();
        for p in paths {
            if fs::symlink_metadata(p).is_err() {
                return Err(RepoError::SourceMissing(p.clone()));
            }
            let abs =
                std::path::absolute(p).map_err(|e| RepoError::io(p.display().to_string(), e))?;
            let name = match abs.file_name() {
                Some(n) => Name(n.as_bytes().to_vec()),
                None => Name(b"root".to_vec()),
            };
            if roots.iter().any(|(n, _)| *n == name) {
                return Err(RepoError::Invalid(format!(
                    "two source paths end in the same name {:?}; back them up in separate snapshots",
                    name.lossy()
                )));
            }
            roots.push((name, abs));
        }
        roots.sort();
        Ok(FolderSource { roots })
    }

    pub fn absolute_paths(&self) -> Vec<String> {
        self.roots
            .iter()
            .map(|(_, p)| p.display().to_string())
            .collect()
    }

    fn resolve(&self, path: &[u8]) -> io::Result<PathBuf> {
        let mut parts = path.split(|&b| b == b'/');
        let first = parts.next().unwrap_or_default();
        let (_, base) = self
            .roots
            .iter()
            .find(|(n, _)| n.0 == first)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown root"))?;
        let mut p = base.clone();
        for part in parts {
            p.push(OsStr::from_bytes(part));
        }
        Ok(p)
    }
}

pub fn entry_from_metadata(name: Name, md: &fs::Metadata, path: &Path) -> io::Result<SourceEntry> {
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_symlink() {
        NodeKind::Symlink
    } else if ft.is_file() {
        NodeKind::File
    } else {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "not a regular file, folder or symlink (skipped)",
        ));
    };
    let target = if kind == NodeKind::Symlink {
        Some(Name(fs::read_link(path)?.as_os_str().as_bytes().to_vec()))
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
    })
}

impl Source for FolderSource {
    fn list(&self, dir: &[u8]) -> io::Result<Vec<SourceEntry>> {
        let mut out = Vec::new();
        if dir.is_empty() {
            for (name, p) in &self.roots {
                let md = fs::symlink_metadata(p)?;
                out.push(entry_from_metadata(name.clone(), &md, p)?);
            }
            return Ok(out);
        }
        let base = self.resolve(dir)?;
        for e in fs::read_dir(&base)? {
            let e = e?;
            let p = e.path();
            let md = match fs::symlink_metadata(&p) {
                Ok(m) => m,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            let name = Name(e.file_name().as_bytes().to_vec());
            match entry_from_metadata(name, &md, &p) {
                Ok(entry) => out.push(entry),
                // Sockets, fifos, devices: not photos; silently left out like other tools do.
                Err(err) if err.kind() == io::ErrorKind::Unsupported => {}
                Err(err) => return Err(err),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn open(&self, path: &[u8]) -> io::Result<Box<dyn Read + Send + '_>> {
        let p = self.resolve(path)?;
        Ok(Box::new(AheadReader::open(&p)?))
    }

    fn prefetch(&self, path: &[u8], len: u64) {
        if let Ok(p) = self.resolve(path) {
            readahead::willneed(&p, 0, len);
        }
    }
}
