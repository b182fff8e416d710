//! `restore --include`: the parts of a snapshot to restore. Patterns match as excludes do
//! (see exclude.rs): one without `/` matches the name of a file or folder at any depth
//! (`IMG_0102.JPG`, `*.HEIC`); one with `/` matches the path from the snapshot's top
//! (`iPhone/DCIM/*/IMG_01*`), where `*` stays within one folder and `**` crosses folders; a
//! leading `/` is ignored. A folder that matches comes back whole. Each pattern remembers
//! whether it matched anything, so one that matched nothing can be named.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use anyhow::{Context, Result, bail};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

pub struct Include {
    patterns: Vec<String>,
    /// Patterns without `/`, and the index of each in `patterns`.
    names: GlobSet,
    name_of: Vec<usize>,
    /// Patterns with `/`.
    paths: GlobSet,
    path_of: Vec<usize>,
    hit: Vec<AtomicBool>,
}

impl Include {
    /// None when no pattern is given (everything is restored).
    pub fn new(patterns: &[String]) -> Result<Option<Include>> {
        Self::build(patterns, "--include pattern", false)
    }

    /// Patterns named `what` in messages; `ignore_case` makes `img_0102.jpg` match
    /// `IMG_0102.JPG`.
    pub fn build(patterns: &[String], what: &str, ignore_case: bool) -> Result<Option<Include>> {
        if patterns.is_empty() {
            return Ok(None);
        }
        let (mut names, mut paths) = (GlobSetBuilder::new(), GlobSetBuilder::new());
        let (mut name_of, mut path_of) = (Vec::new(), Vec::new());
        for (i, p) in patterns.iter().enumerate() {
            let pat = p.trim_start_matches('/');
            if pat.is_empty() {
                bail!("invalid {what} {p:?}: it is empty");
            }
            let glob = GlobBuilder::new(pat)
                .literal_separator(true)
                .backslash_escape(true)
                .case_insensitive(ignore_case)
                .build()
                .with_context(|| format!("invalid {what} {p:?}"))?;
            if p.contains('/') {
                paths.add(glob);
                path_of.push(i);
            } else {
                names.add(glob);
                name_of.push(i);
            }
        }
        Ok(Some(Include {
            patterns: patterns.to_vec(),
            names: names
                .build()
                .with_context(|| format!("building the {what}s"))?,
            name_of,
            paths: paths
                .build()
                .with_context(|| format!("building the {what}s"))?,
            path_of,
            hit: patterns.iter().map(|_| AtomicBool::new(false)).collect(),
        }))
    }

    /// Does the entry at `path` (from the snapshot's top), named `name`, match?
    pub fn matches(&self, path: &[u8], name: &[u8]) -> bool {
        let as_path = |b: &[u8]| Path::new(OsStr::from_bytes(b)).to_path_buf();
        let mut any = false;
        for (set, of, subject) in [
            (&self.names, &self.name_of, name),
            (&self.paths, &self.path_of, path),
        ] {
            if of.is_empty() {
                continue;
            }
            for k in set.matches(as_path(subject)) {
                if let Some(h) = of.get(k).and_then(|&i| self.hit.get(i)) {
                    h.store(true, Relaxed);
                }
                any = true;
            }
        }
        any
    }

    /// Does `path` or a folder above it match (for entries found without walking down to
    /// them, as `restore --date` finds photos)?
    pub fn matches_path(&self, path: &[u8]) -> bool {
        let mut end = path.len();
        let mut any = false;
        while end > 0 {
            let p = &path[..end];
            let start = p.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
            // Every level is asked, so each pattern that matches is recorded.
            any |= self.matches(p, &p[start..]);
            end = start.saturating_sub(1);
        }
        any
    }

    /// The patterns that have matched nothing so far.
    pub fn unmatched(&self) -> Vec<&str> {
        self.patterns
            .iter()
            .zip(&self.hit)
            .filter(|(_, h)| !h.load(Relaxed))
            .map(|(p, _)| p.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(p: &[&str]) -> Include {
        let p: Vec<String> = p.iter().map(|s| s.to_string()).collect();
        Include::new(&p).unwrap().unwrap()
    }

    #[test]
    fn bare_names_match_anywhere_paths_from_the_top() {
        let i = inc(&["IMG_0102.JPG", "lib/DCIM/*/IMG_0*.MOV", "*.txt"]);
        assert!(i.matches(b"lib/DCIM/100APPLE/IMG_0102.JPG", b"IMG_0102.JPG"));
        assert!(i.matches(b"lib/DCIM/100APPLE/IMG_0001.MOV", b"IMG_0001.MOV"));
        assert!(!i.matches(b"lib/DCIM/100APPLE/sub/IMG_0001.MOV", b"IMG_0001.MOV"));
        assert!(!i.matches(b"lib/IMG_0103.JPG", b"IMG_0103.JPG"));
        assert_eq!(i.unmatched(), vec!["*.txt"]);
        let d = inc(&["100APPLE"]);
        assert!(d.matches_path(b"lib/DCIM/100APPLE/IMG_0001.HEIC"));
        assert!(!d.matches_path(b"lib/DCIM/101APPLE/IMG_0001.HEIC"));
        assert!(Include::new(&[]).unwrap().is_none());
        assert!(Include::new(&["[".to_string()]).is_err());
    }
}
