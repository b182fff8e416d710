//! A local cache of a remote repository's index and snapshot files.
//!
//! Both kinds are immutable and named by the BLAKE3 hash of their bytes, so a cached copy is
//! checked against its name on every read and can never be stale: a file is either the one
//! the name says or ignored. Listing still asks the server (another machine may have added or
//! pruned files); cached files the server no longer lists are dropped then. The cache is
//! bounded: past its limit the least recently written files go first. It holds only sealed
//! bytes, in an owner-only folder.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use snapvault_repo::RepoError;
use snapvault_repo::backend::{Backend, FileInfo, FileKind, PackBuffer};

pub struct CachedBackend {
    inner: Arc<dyn Backend>,
    dir: PathBuf,
    limit: u64,
}

fn cached_kind(kind: FileKind) -> bool {
    matches!(kind, FileKind::Index | FileKind::Snapshot)
}

fn names_content(name: &str, bytes: &[u8]) -> bool {
    blake3::hash(bytes).to_hex().as_str() == name
}

impl CachedBackend {
    pub fn new(inner: Arc<dyn Backend>, dir: PathBuf, limit: u64) -> CachedBackend {
        let c = CachedBackend { inner, dir, limit };
        c.evict();
        c
    }

    fn file(&self, kind: FileKind, name: &str) -> Option<PathBuf> {
        let ok =
            cached_kind(kind) && name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| self.dir.join(kind.dir()).join(name))
    }

    fn get(&self, kind: FileKind, name: &str) -> Option<Vec<u8>> {
        let p = self.file(kind, name)?;
        let b = fs::read(&p).ok()?;
        if names_content(name, &b) {
            Some(b)
        } else {
            let _ = fs::remove_file(&p);
            None
        }
    }

    /// Best effort: a cache that cannot be written only costs downloads.
    fn put(&self, kind: FileKind, name: &str, bytes: &[u8]) {
        let Some(p) = self.file(kind, name) else {
            return;
        };
        if !names_content(name, bytes) || p.exists() {
            return;
        }
        let Some(dir) = p.parent() else { return };
        if fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .is_err()
        {
            return;
        }
        let tmp = dir.join(format!(".tmp-{}", hex::encode(rand::random::<[u8; 8]>())));
        let written = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(bytes))
            .and_then(|_| fs::rename(&tmp, &p));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }

    fn cached_files(&self) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
        let mut out = Vec::new();
        for kind in [FileKind::Index, FileKind::Snapshot] {
            let Ok(rd) = fs::read_dir(self.dir.join(kind.dir())) else {
                continue;
            };
            for e in rd.flatten() {
                if let Ok(m) = e.metadata()
                    && m.is_file()
                {
                    let t = m.modified().unwrap_or(std::time::UNIX_EPOCH);
                    out.push((e.path(), m.len(), t));
                }
            }
        }
        out
    }

    fn evict(&self) {
        let mut files = self.cached_files();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        if total <= self.limit {
            return;
        }
        files.sort_by_key(|f| f.2);
        for (p, len, _) in files {
            if total <= self.limit {
                break;
            }
            if fs::remove_file(&p).is_ok() {
                total -= len;
            }
        }
    }

    /// Drop cached files of `kind` that the repository no longer has.
    fn forget_unlisted(&self, kind: FileKind, listed: &[FileInfo]) {
        let dir = self.dir.join(kind.dir());
        let Ok(rd) = fs::read_dir(&dir) else { return };
        let keep: std::collections::HashSet<&str> =
            listed.iter().map(|f| f.name.as_str()).collect();
        for e in rd.flatten() {
            let name = e.file_name();
            if !keep.contains(name.to_string_lossy().as_ref()) {
                let _ = fs::remove_file(e.path());
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Backend for CachedBackend {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn exists(&self, kind: FileKind, name: &str) -> Result<bool, RepoError> {
        self.inner.exists(kind, name)
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, RepoError> {
        if let Some(b) = self.get(kind, name) {
            return Ok(b);
        }
        let b = self.inner.read(kind, name)?;
        self.put(kind, name, &b);
        Ok(b)
    }

    fn read_range_into(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: usize,
        buf: &mut Vec<u8>,
    ) -> Result<(), RepoError> {
        self.inner.read_range_into(kind, name, offset, len, buf)
    }

    fn prefetch(&self, kind: FileKind, name: &str, offset: u64, len: u64) {
        self.inner.prefetch(kind, name, offset, len)
    }

    fn prefetch_many(&self, kind: FileKind, ranges: &[(String, u64, u64)]) {
        self.inner.prefetch_many(kind, ranges)
    }

    fn read_ahead(&self) -> u64 {
        self.inner.read_ahead()
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), RepoError> {
        self.inner.write(kind, name, data)?;
        self.put(kind, name, data);
        Ok(())
    }

    /// Packs are not cached: straight through.
    fn write_pack(&self, name: &str, pack: PackBuffer) -> Result<(), RepoError> {
        self.inner.write_pack(name, pack)
    }

    fn keeps_packs(&self) -> usize {
        self.inner.keeps_packs()
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>, RepoError> {
        let listed = self.inner.list(kind)?;
        if cached_kind(kind) {
            self.forget_unlisted(kind, &listed);
            self.evict();
        }
        Ok(listed)
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64, RepoError> {
        self.inner.size(kind, name)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<(), RepoError> {
        if let Some(p) = self.file(kind, name) {
            let _ = fs::remove_file(p);
        }
        self.inner.remove(kind, name)
    }

    fn age_secs(&self, kind: FileKind, name: &str) -> Result<Option<u64>, RepoError> {
        self.inner.age_secs(kind, name)
    }

    fn checkpoint_packs(&self) -> usize {
        self.inner.checkpoint_packs()
    }

    fn create_layout(&self) -> Result<(), RepoError> {
        self.inner.create_layout()
    }

    fn leftover_temp_files(&self) -> Result<Vec<FileInfo>, RepoError> {
        self.inner.leftover_temp_files()
    }

    fn remove_leftover_temp_files(&self, min_age_secs: u64) -> Result<usize, RepoError> {
        self.inner.remove_leftover_temp_files(min_age_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use snapvault_repo::backend::LocalBackend;

    /// Counts reads that reach the inner backend.
    struct Counting(LocalBackend, std::sync::atomic::AtomicUsize);

    impl Backend for Counting {
        fn location(&self) -> String {
            self.0.location()
        }
        fn exists(&self, k: FileKind, n: &str) -> Result<bool, RepoError> {
            self.0.exists(k, n)
        }
        fn read(&self, k: FileKind, n: &str) -> Result<Vec<u8>, RepoError> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0.read(k, n)
        }
        fn read_range_into(
            &self,
            k: FileKind,
            n: &str,
            o: u64,
            l: usize,
            buf: &mut Vec<u8>,
        ) -> Result<(), RepoError> {
            self.0.read_range_into(k, n, o, l, buf)
        }
        fn write(&self, k: FileKind, n: &str, d: &[u8]) -> Result<(), RepoError> {
            self.0.write(k, n, d)
        }
        fn list(&self, k: FileKind) -> Result<Vec<FileInfo>, RepoError> {
            self.0.list(k)
        }
        fn size(&self, k: FileKind, n: &str) -> Result<u64, RepoError> {
            self.0.size(k, n)
        }
        fn remove(&self, k: FileKind, n: &str) -> Result<(), RepoError> {
            self.0.remove(k, n)
        }
        fn create_layout(&self) -> Result<(), RepoError> {
            self.0.create_layout()
        }
    }

    fn reads(c: &Arc<Counting>) -> usize {
        c.1.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[test]
    fn serves_verified_copies_and_forgets_pruned_files() {
        let repo = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let inner = Arc::new(Counting(LocalBackend::new(repo.path()), Default::default()));
        inner.create_layout().unwrap();
        let c = CachedBackend::new(inner.clone(), cache.path().join("r"), 1 << 20);
        let bytes = b"an index file".to_vec();
        let name = blake3::hash(&bytes).to_hex().to_string();
        inner.write(FileKind::Index, &name, &bytes).unwrap();
        assert_eq!(c.read(FileKind::Index, &name).unwrap(), bytes);
        assert_eq!(c.read(FileKind::Index, &name).unwrap(), bytes);
        assert_eq!(reads(&inner), 1, "second read comes from the cache");
        // A damaged cached copy is noticed and fetched again.
        let cached = cache.path().join("r/index").join(&name);
        fs::write(&cached, b"rot").unwrap();
        assert_eq!(c.read(FileKind::Index, &name).unwrap(), bytes);
        assert_eq!(reads(&inner), 2);
        // Pruned elsewhere: the next listing drops it.
        inner.remove(FileKind::Index, &name).unwrap();
        assert!(c.list(FileKind::Index).unwrap().is_empty());
        assert!(!cached.exists());
        // Packs are never cached.
        let p = blake3::hash(b"pack").to_hex().to_string();
        c.write(FileKind::Pack, &p, b"pack").unwrap();
        c.read(FileKind::Pack, &p).unwrap();
        assert_eq!(reads(&inner), 3);
    }

    #[test]
    fn stays_within_its_limit() {
        let repo = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let inner = Arc::new(LocalBackend::new(repo.path()));
        inner.create_layout().unwrap();
        let c = CachedBackend::new(inner.clone(), cache.path().join("r"), 3000);
        for i in 0..10u8 {
            let b = vec![i; 1000];
            let n = blake3::hash(&b).to_hex().to_string();
            c.write(FileKind::Snapshot, &n, &b).unwrap();
        }
        c.list(FileKind::Snapshot).unwrap();
        let total: u64 = c.cached_files().iter().map(|f| f.1).sum();
        assert!(total <= 3000, "{total}");
    }
}
