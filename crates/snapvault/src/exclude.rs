//! Excludes: `--exclude GLOB`, `--exclude-file FILE`, the config's `excludes`, and the
//! default junk list. Applied where the source lists a folder, so an excluded file is
//! never opened or read, and an excluded folder is not descended into.
//!
//! Matching (like restic and rsync): a pattern without `/` matches the name of a file or
//! folder at any depth (`*.tmp`, `.DS_Store`); a pattern with `/` matches the path relative
//! to the snapshot root (`iPhone/DCIM/*/IMG_0*.MOV`), where `*` stays within one folder and
//! `**` crosses folders; a leading `/` is ignored. A folder that matches is left out with
//! everything under it.

use std::io;
use std::path::Path;

use anyhow::{Context, Result, bail};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use snapvault_repo::fs_source::{Source, SourceEntry, SourceFile};

/// Files no one wants in a photo backup: Finder, Explorer and Spotlight litter.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    ".DS_Store",
    "._*",
    ".Spotlight-V100",
    ".Trashes",
    ".fseventsd",
    "Thumbs.db",
    "desktop.ini",
];

#[derive(Clone, Debug, Default)]
pub struct Excludes {
    names: Option<GlobSet>,
    paths: Option<GlobSet>,
    /// Exact paths left out (the repository itself, when it lies inside the source).
    exact: Vec<Vec<u8>>,
}

impl Excludes {
    /// Build from explicit patterns, pattern files (one per line, `#` comments, blank lines
    /// ignored) and, unless `no_defaults`, [`DEFAULT_EXCLUDES`].
    pub fn new(
        patterns: &[String],
        files: &[impl AsRef<Path>],
        no_defaults: bool,
    ) -> Result<Excludes> {
        let mut all: Vec<String> = Vec::new();
        if !no_defaults {
            all.extend(DEFAULT_EXCLUDES.iter().map(|s| s.to_string()));
        }
        all.extend(patterns.iter().cloned());
        for f in files {
            let f = f.as_ref();
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("reading exclude file {}", f.display()))?;
            for line in text.lines() {
                let line = line.trim();
                if !line.is_empty() && !line.starts_with('#') {
                    all.push(line.to_string());
                }
            }
        }
        let (mut names, mut paths) = (GlobSetBuilder::new(), GlobSetBuilder::new());
        let (mut n_names, mut n_paths) = (0, 0);
        for p in &all {
            let pat = p.trim_start_matches('/');
            if pat.is_empty() {
                bail!("invalid exclude pattern {p:?}: it is empty");
            }
            let glob = GlobBuilder::new(pat)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .with_context(|| format!("invalid exclude pattern {p:?}"))?;
            if p.contains('/') {
                paths.add(glob);
                n_paths += 1;
            } else {
                names.add(glob);
                n_names += 1;
            }
        }
        let build = |b: GlobSetBuilder, n: usize| -> Result<Option<GlobSet>> {
            if n == 0 {
                return Ok(None);
            }
            Ok(Some(b.build().context("building exclude patterns")?))
        };
        Ok(Excludes {
            names: build(names, n_names)?,
            paths: build(paths, n_paths)?,
            exact: Vec::new(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_none() && self.paths.is_none() && self.exact.is_empty()
    }

    /// Also leave out exactly this path (relative to the snapshot root), no glob.
    pub fn add_exact(&mut self, path: Vec<u8>) {
        self.exact.push(path);
    }

    /// Is `path` (relative to the snapshot root, `/`-separated), named `name`, excluded?
    pub fn excludes(&self, path: &[u8], name: &[u8]) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let as_path = |b: &[u8]| Path::new(std::ffi::OsStr::from_bytes(b)).to_path_buf();
        self.exact.iter().any(|e| e == path)
            || self
                .names
                .as_ref()
                .is_some_and(|g| g.is_match(as_path(name)))
            || self
                .paths
                .as_ref()
                .is_some_and(|g| g.is_match(as_path(path)))
    }
}

/// A source with some entries left out.
pub struct Filtered<'a> {
    pub inner: &'a dyn Source,
    pub excludes: &'a Excludes,
    /// How many entries were left out (for `-v`).
    pub left_out: std::sync::atomic::AtomicU64,
}

impl<'a> Filtered<'a> {
    pub fn new(inner: &'a dyn Source, excludes: &'a Excludes) -> Self {
        Filtered {
            inner,
            excludes,
            left_out: Default::default(),
        }
    }
}

impl Source for Filtered<'_> {
    fn list(&self, dir: &[u8]) -> io::Result<Vec<SourceEntry>> {
        let mut entries = self.inner.list(dir)?;
        // The roots themselves (the folders named on the command line) are never excluded.
        if dir.is_empty() || self.excludes.is_empty() {
            return Ok(entries);
        }
        let before = entries.len();
        entries.retain(|e| {
            let mut p = dir.to_vec();
            p.push(b'/');
            p.extend_from_slice(&e.name.0);
            !self.excludes.excludes(&p, &e.name.0)
        });
        let n = (before - entries.len()) as u64;
        if n > 0 {
            self.left_out
                .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(entries)
    }

    fn open(&self, path: &[u8]) -> io::Result<Box<dyn SourceFile + '_>> {
        self.inner.open(path)
    }

    fn is_fatal(&self, error: &io::Error) -> bool {
        self.inner.is_fatal(error)
    }

    fn prefetch(&self, path: &[u8], len: u64) {
        self.inner.prefetch(path, len)
    }

    fn open_ahead(&self, path: &[u8], len: u64) -> Option<Box<dyn SourceFile + '_>> {
        self.inner.open_ahead(path, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(p: &[&str], no_defaults: bool) -> Excludes {
        let p: Vec<String> = p.iter().map(|s| s.to_string()).collect();
        Excludes::new(&p, &[] as &[&Path], no_defaults).unwrap()
    }

    #[test]
    fn defaults_match_junk_at_any_depth() {
        let e = ex(&[], false);
        assert!(e.excludes(b"a/b/.DS_Store", b".DS_Store"));
        assert!(e.excludes(b"a/._IMG_0001.HEIC", b"._IMG_0001.HEIC"));
        assert!(e.excludes(b"a/Thumbs.db", b"Thumbs.db"));
        assert!(!e.excludes(b"a/IMG_0001.HEIC", b"IMG_0001.HEIC"));
        assert!(ex(&[], true).is_empty());
    }

    #[test]
    fn names_and_paths() {
        let e = ex(&["*.tmp", "lib/DCIM/*/IMG_0*.MOV", "/lib/cache"], true);
        assert!(e.excludes(b"lib/x/y.tmp", b"y.tmp"));
        assert!(e.excludes(b"lib/DCIM/100APPLE/IMG_0001.MOV", b"IMG_0001.MOV"));
        assert!(!e.excludes(b"lib/DCIM/100APPLE/sub/IMG_0001.MOV", b"IMG_0001.MOV"));
        assert!(!e.excludes(b"lib/DCIM/100APPLE/IMG_0001.HEIC", b"IMG_0001.HEIC"));
        assert!(e.excludes(b"lib/cache", b"cache"));
        assert!(!e.excludes(b"lib/x/cache", b"cache"));
        let deep = ex(&["**/raw/**"], true);
        assert!(deep.excludes(b"lib/a/raw/x.dng", b"x.dng"));
    }

    #[test]
    fn bad_pattern_is_an_error() {
        let p = vec!["[".to_string()];
        let err = Excludes::new(&p, &[] as &[&Path], true).unwrap_err();
        assert!(
            format!("{err:#}").contains("invalid exclude pattern"),
            "{err:#}"
        );
    }
}
