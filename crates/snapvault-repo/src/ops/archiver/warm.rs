//! Before the key is there: the source's first folders listed and their first files hinted,
//! in walk order, while the password's key is derived (`repository::pending`). A snapshot
//! needs the key to chunk (the gear table and the ids come from it), but not to list a
//! folder or have the disk fetch a file; on a cold cache the disk was idle for the whole
//! derivation. What this lists is listed again by the walk (from the kernel's cache now),
//! and what it hints is read by it from the page cache.
//!
//! Which files the snapshot will read is not known yet (the parent snapshot is sealed), so
//! the hints are bounded: [`WARM_BYTES`], [`WARM_FILES`], [`WARM_FOLDERS`], and nothing
//! more once the key is ready. A snapshot with a parent (most files unchanged) or a wrong
//! password costs at most those reads, made while the disk had nothing else to do.

use super::PREFETCH_BYTES;
use super::source_walk::join;
use crate::format::tree::NodeKind;
use crate::ops::fs_source::{Source, SourceEntry};

/// Bytes of file contents hinted at most: about what a fast SSD reads in the 0.1 s
/// of a default derivation, and what a slow disk finishes in a second.
pub const WARM_BYTES: u64 = 128 << 20;
/// Files hinted at most (each hint opens the file: a library of tiny files).
pub const WARM_FILES: usize = 256;
/// Folders listed at most, and how deep below the roots.
pub const WARM_FOLDERS: usize = 64;
const WARM_DEPTH: usize = 8;

/// What [`warm_up`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Warmed {
    pub folders: usize,
    pub files: usize,
    pub bytes: u64,
}

/// List the first folders of `source` and hint the first bytes of their files, in the
/// order the walk will read them, until a bound is reached or `stop` says the key is ready.
/// Only reads; errors are left for the walk to meet and report.
pub fn warm_up(source: &dyn Source, stop: &dyn Fn() -> bool) -> Warmed {
    let mut w = Warm {
        source,
        stop,
        done: Warmed::default(),
    };
    if let Some(roots) = w.list(b"") {
        w.entries(b"", &roots, 0);
    }
    w.done
}

struct Warm<'a> {
    source: &'a dyn Source,
    stop: &'a dyn Fn() -> bool,
    done: Warmed,
}

impl Warm<'_> {
    fn list(&mut self, dir: &[u8]) -> Option<Vec<SourceEntry>> {
        if self.done.folders >= WARM_FOLDERS || (self.stop)() {
            return None;
        }
        self.done.folders += 1;
        self.source.list(dir).ok()
    }

    /// False once a bound is reached: nothing more to do.
    fn entries(&mut self, dir: &[u8], entries: &[SourceEntry], depth: usize) -> bool {
        for e in entries {
            if self.done.bytes >= WARM_BYTES || self.done.files >= WARM_FILES || (self.stop)() {
                return false;
            }
            let path = join(dir, &e.name.0);
            match e.kind {
                NodeKind::File => {
                    let len = e.size.min(PREFETCH_BYTES).min(WARM_BYTES - self.done.bytes);
                    self.source.prefetch(&path, len);
                    self.done.files += 1;
                    self.done.bytes += len;
                }
                NodeKind::Dir if depth < WARM_DEPTH => {
                    let Some(sub) = self.list(&path) else {
                        return false;
                    };
                    if !self.entries(&path, &sub, depth + 1) {
                        return false;
                    }
                }
                _ => {}
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::ops::fs_source::{FolderSource, SourceFile};

    /// A folder source that notes what it was asked, in order.
    struct Noting {
        inner: FolderSource,
        seen: Mutex<Vec<String>>,
    }

    impl Source for Noting {
        fn list(&self, dir: &[u8]) -> io::Result<Vec<SourceEntry>> {
            if let Ok(mut s) = self.seen.lock() {
                s.push(format!("list {}", String::from_utf8_lossy(dir)));
            }
            self.inner.list(dir)
        }
        fn open(&self, path: &[u8]) -> io::Result<Box<dyn SourceFile + '_>> {
            self.inner.open(path)
        }
        fn prefetch(&self, path: &[u8], len: u64) {
            if let Ok(mut s) = self.seen.lock() {
                s.push(format!("hint {} {len}", String::from_utf8_lossy(path)));
            }
        }
    }

    fn library() -> (tempfile::TempDir, Noting) {
        let tmp = tempfile::tempdir().unwrap();
        let lib = tmp.path().join("lib");
        for (p, n) in [
            ("a/1.jpg", 10),
            ("a/2.jpg", 20),
            ("b/c/3.mov", 30),
            ("4.heic", 40),
        ] {
            let f = lib.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, vec![7u8; n]).unwrap();
        }
        let inner = FolderSource::new(&[lib]).unwrap();
        let seen = Mutex::new(Vec::new());
        (tmp, Noting { inner, seen })
    }

    #[test]
    fn lists_and_hints_in_walk_order() {
        let (_tmp, src) = library();
        let w = warm_up(&src, &|| false);
        assert_eq!(
            w,
            Warmed {
                folders: 5,
                files: 4,
                bytes: 100
            }
        );
        let seen = src.seen.into_inner().unwrap();
        assert_eq!(
            seen,
            [
                "list ",
                "list lib",
                "hint lib/4.heic 40",
                "list lib/a",
                "hint lib/a/1.jpg 10",
                "hint lib/a/2.jpg 20",
                "list lib/b",
                "list lib/b/c",
                "hint lib/b/c/3.mov 30",
            ]
        );
    }

    #[test]
    fn stops_when_the_key_is_ready() {
        let (_tmp, src) = library();
        let ready = AtomicBool::new(false);
        // The key comes once the first file is hinted.
        let stop = || {
            let hinted = src
                .seen
                .lock()
                .unwrap()
                .iter()
                .any(|s| s.starts_with("hint"));
            ready.fetch_or(hinted, Ordering::Relaxed) || hinted
        };
        let w = warm_up(&src, &stop);
        assert_eq!(w.files, 1);
        assert!(ready.load(Ordering::Relaxed));
        assert_eq!(warm_up(&src, &|| true), Warmed::default());
    }
}
