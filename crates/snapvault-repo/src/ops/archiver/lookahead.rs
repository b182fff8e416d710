//! Read-ahead across folders, for a walk that will read every file (nothing to compare
//! with: a first snapshot, a re-import under new paths). Inside a folder the walker hints
//! the files after the one it chunks; at the folder's end those hints run out, and the next
//! folder's first file would wait for the disk (its listing too) while the cores idle —
//! once per folder, which is what a `Pictures/YYYY/MM` layout of a few dozen photos per
//! folder pays most. So when the hints reach the end of the folder, the folders next in
//! walk order are listed early (each listing is handed to the walk when it gets there, so
//! every folder is still listed exactly once) and their first files hinted.
//!
//! A hinted file is opened by its hint and that opening kept until the walk reads the
//! file ([`Lookahead::take`]): every file is opened once, and a file hinted again is not
//! touched again (at a million tiny files, opening each to hint it and again to read it,
//! and the next folders' files once more at each folder's end, was most of the time).

use std::collections::HashMap;
use std::io;
use std::rc::Rc;

use super::PREFETCH_BYTES;
use super::source_walk::join;
use crate::format::tree::NodeKind;
use crate::ops::fs_source::{Source, SourceEntry, SourceFile};

/// Folders listed ahead of the walk at most (bounds the listings held in memory).
const MAX_LISTED: usize = 8;
/// How deep below the folders next in line the look-ahead descends.
const MAX_DEPTH: usize = 4;
/// Once a folder's walk has hinted past its end, it hints again only when the budget left
/// for that grew by this much (a large file of the folder was read): hinting again for
/// every file made a folder of tiny files hint the next folders once per file.
pub(super) const HINT_AGAIN: u64 = 1 << 20;
/// Files opened ahead of the walk and held until it reads them, at most: with the byte
/// budget, this bounds the look-ahead of tiny files (and the descriptors held) while still
/// keeping that many reads in flight on a cold disk.
pub(super) const MAX_HELD: usize = 128;

pub(super) type Entries = Rc<Vec<SourceEntry>>;

pub(super) struct Lookahead<'a> {
    enabled: bool,
    /// Files opened by their hint, by path, until the walk reads them, with how many of
    /// their first bytes were hinted.
    held: HashMap<Vec<u8>, (Box<dyn SourceFile + 'a>, u64)>,
    /// Where the walk is: for each folder being walked, outermost first, its path, its
    /// entries and the index of the entry after the subfolder being walked now.
    stack: Vec<(Vec<u8>, Entries, usize)>,
    /// Folders listed ahead of the walk, waiting for it.
    listed: HashMap<Vec<u8>, io::Result<Entries>>,
}

impl<'a> Lookahead<'a> {
    /// Enabled only when every file will be read: with a parent snapshot most files are
    /// unchanged, and hinting them would read what the snapshot never needs.
    pub(super) fn new(enabled: bool) -> Self {
        Lookahead {
            enabled,
            held: HashMap::new(),
            stack: Vec::new(),
            listed: HashMap::new(),
        }
    }

    /// Hint that the first `len` bytes of `path` will be read soon, opening it now to
    /// read it from that opening later. A file held already is only hinted further (a
    /// longer `len` than its first hint), never opened again. False when
    /// [`MAX_HELD`] files are held: the look-ahead goes no further for now.
    pub(super) fn ahead(&mut self, source: &'a dyn Source, path: Vec<u8>, len: u64) -> bool {
        if let Some((_, hinted)) = self.held.get_mut(&path) {
            // A file first hinted short (the byte budget was nearly spent) is hinted further
            // when a later hint has more budget, as before files were held: without it a
            // cold re-import of photos took 1.55 -> 1.73 s (2 GiB, quiet machine). A tiny
            // file's first hint covers it whole, so it is not touched again.
            if len > *hinted {
                source.prefetch(&path, len);
                *hinted = len;
            }
            return true;
        }
        if self.held.len() >= MAX_HELD {
            return false;
        }
        if let Some(reader) = source.open_ahead(&path, len) {
            self.held.insert(path, (reader, len));
        }
        true
    }

    /// The opening of `path` its hint made, if it was hinted.
    pub(super) fn take(&mut self, path: &[u8]) -> Option<Box<dyn SourceFile + 'a>> {
        self.held.remove(path).map(|(reader, _)| reader)
    }

    /// The listing of `dir`: the one made ahead of the walk, or a new one.
    pub(super) fn list(&mut self, source: &dyn Source, dir: &[u8]) -> io::Result<Entries> {
        match self.listed.remove(dir) {
            Some(listed) => listed,
            None => source.list(dir).map(Rc::new),
        }
    }

    /// The walk goes into the subfolder at `entries[at]` of `dir`.
    pub(super) fn enter(&mut self, dir: &[u8], entries: &Entries, at: usize) {
        if self.enabled {
            self.stack.push((dir.to_vec(), entries.clone(), at + 1));
        }
    }

    /// The walk came back from the subfolder it last entered.
    pub(super) fn leave(&mut self) {
        if self.enabled {
            self.stack.pop();
        }
    }

    /// Hint the first `budget` bytes the walk will read after the files of `dir` already
    /// hinted: the subfolders among `rest` (the entries of `dir` after the file being
    /// chunked), then what follows `dir` in the folders above it. Hints already given are
    /// given again (cheap: the pages are there), so no position needs keeping.
    pub(super) fn hint(
        &mut self,
        source: &'a dyn Source,
        dir: &[u8],
        rest: &[SourceEntry],
        budget: u64,
    ) {
        if !self.enabled || budget == 0 {
            return;
        }
        let mut left = budget;
        let subfolders: Vec<SourceEntry> = rest
            .iter()
            .filter(|e| e.kind == NodeKind::Dir)
            .cloned()
            .collect();
        if !self.hint_entries(source, dir, &subfolders, &mut left, 0) {
            return;
        }
        let stack = self.stack.clone();
        for (up, entries, from) in stack.iter().rev() {
            let Some(after) = entries.get(*from..) else {
                continue;
            };
            if !self.hint_entries(source, up, after, &mut left, 0) {
                return;
            }
        }
    }

    /// Hint the files of `entries` (in `dir`) and of their subfolders in walk order until
    /// `left` is spent; false once it is (or the look-ahead may go no further).
    fn hint_entries(
        &mut self,
        source: &'a dyn Source,
        dir: &[u8],
        entries: &[SourceEntry],
        left: &mut u64,
        depth: usize,
    ) -> bool {
        for e in entries {
            if *left == 0 {
                return false;
            }
            match e.kind {
                NodeKind::File => {
                    let len = e.size.min(PREFETCH_BYTES).min(*left);
                    if !self.ahead(source, join(dir, &e.name.0), len) {
                        return false;
                    }
                    *left -= len;
                }
                NodeKind::Dir => {
                    let path = join(dir, &e.name.0);
                    let sub = match self.listed.get(&path) {
                        Some(Ok(sub)) => sub.clone(),
                        // The walk will meet the same error and report it.
                        Some(Err(_)) => return false,
                        None if depth >= MAX_DEPTH || self.listed.len() >= MAX_LISTED => {
                            return false;
                        }
                        None => {
                            let listed = source.list(&path).map(Rc::new);
                            let sub = listed.as_ref().ok().cloned();
                            self.listed.insert(path.clone(), listed);
                            match sub {
                                Some(sub) => sub,
                                None => return false,
                            }
                        }
                    };
                    if !self.hint_entries(source, &path, &sub, left, depth + 1) {
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
    use std::io::Read;
    use std::sync::Mutex;

    use super::*;
    use crate::ops::archiver::{self, ArchiveOptions};
    use crate::ops::fs_source::{Change, FolderSource};
    use crate::ops::observe::NoHooks;
    use crate::ops::test_support::{Photos, create_small_repo, open, photo};

    /// A folder source that records what the walk asks of it, in order.
    struct Recording {
        inner: FolderSource,
        log: Mutex<Vec<String>>,
    }

    /// A reader that notes its file's first read in the log.
    struct Noted<'r> {
        inner: Box<dyn SourceFile + 'r>,
        first: Option<String>,
        log: &'r Mutex<Vec<String>>,
    }

    impl Read for Noted<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if let Some(line) = self.first.take() {
                self.log.lock().unwrap().push(line);
            }
            self.inner.read(buf)
        }
    }

    impl SourceFile for Noted<'_> {
        fn changed(&self, listed: &SourceEntry, read: u64) -> Option<Change> {
            self.inner.changed(listed, read)
        }
    }

    impl Recording {
        /// A recording source over the folder `lib`.
        fn over(lib: &std::path::Path) -> Self {
            Recording {
                inner: FolderSource::new(&[lib.to_path_buf()]).unwrap(),
                log: Mutex::new(Vec::new()),
            }
        }
        fn note(&self, what: &str, path: &[u8]) {
            let line = format!("{what} {}", String::from_utf8_lossy(path));
            self.log.lock().unwrap().push(line);
        }
        fn noted<'r>(
            &'r self,
            path: &[u8],
            inner: Box<dyn SourceFile + 'r>,
        ) -> Box<dyn SourceFile + 'r> {
            Box::new(Noted {
                inner,
                first: Some(format!("read {}", String::from_utf8_lossy(path))),
                log: &self.log,
            })
        }
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.log.lock().unwrap())
        }
    }

    impl Source for Recording {
        fn list(&self, dir: &[u8]) -> io::Result<Vec<SourceEntry>> {
            self.note("list", dir);
            self.inner.list(dir)
        }
        fn open(&self, path: &[u8]) -> io::Result<Box<dyn SourceFile + '_>> {
            self.note("open", path);
            Ok(self.noted(path, self.inner.open(path)?))
        }
        fn prefetch(&self, path: &[u8], len: u64) {
            self.note("prefetch", path);
            self.inner.prefetch(path, len)
        }
        fn open_ahead(&self, path: &[u8], len: u64) -> Option<Box<dyn SourceFile + '_>> {
            self.note("prefetch", path);
            let opened = self.inner.open_ahead(path, len)?;
            Some(self.noted(path, opened))
        }
    }

    fn at(log: &[String], line: &str) -> usize {
        log.iter()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("no `{line}` in {log:#?}"))
    }

    /// A first snapshot hints the first files of the next folders before it opens the last
    /// file of the folder it is in, and still lists every folder once; a snapshot with a
    /// parent (nothing changed) hints and reads nothing.
    #[test]
    fn a_first_snapshot_reads_ahead_into_the_next_folders() {
        let dir = tempfile::tempdir().unwrap();
        let (root, lib) = (dir.path().join("repo"), dir.path().join("lib"));
        create_small_repo(&root, true);
        let folder = |p: &str| {
            let d = lib.join(p);
            std::fs::create_dir_all(&d).unwrap();
            d
        };
        let (a, b, d) = (folder("a"), folder("b"), folder("c/d"));
        for i in 0..2 {
            photo(&a, i);
            photo(&b, 10 + i);
        }
        photo(&d, 20);
        let repo = open(&root);
        let source = Recording::over(&lib);
        let options = || crate::testing::folder_options(&source.inner);
        let index = repo.load_index().unwrap().index;
        let first = archiver::run(&repo, index, &source, options(), &NoHooks, &Photos).unwrap();
        let log = source.take();
        let last_of_a = at(&log, "read lib/a/IMG_0001.HEIC");
        assert!(
            at(&log, "prefetch lib/b/IMG_0010.HEIC") < last_of_a,
            "{log:#?}"
        );
        assert!(
            at(&log, "prefetch lib/c/d/IMG_0020.HEIC") < last_of_a,
            "{log:#?}"
        );
        assert!(at(&log, "list lib/c/d") < last_of_a, "{log:#?}");
        let lists: Vec<&String> = log.iter().filter(|l| l.starts_with("list ")).collect();
        assert_eq!(
            lists,
            [
                "list ",
                "list lib",
                "list lib/a",
                "list lib/b",
                "list lib/c",
                "list lib/c/d"
            ],
            "every folder listed once, in walk order"
        );
        for f in [
            "a/IMG_0000",
            "a/IMG_0001",
            "b/IMG_0010",
            "b/IMG_0011",
            "c/d/IMG_0020",
        ] {
            at(&log, &format!("read lib/{f}.HEIC"));
        }

        let index = repo.load_index().unwrap().index;
        let again = ArchiveOptions {
            parent: Some(first),
            ..options()
        };
        archiver::run(&repo, index, &source, again, &NoHooks, &Photos).unwrap();
        let log = source.take();
        assert!(
            log.iter().all(|l| l.starts_with("list ")),
            "nothing hinted or read with a parent: {log:#?}"
        );
        assert_eq!(log.len(), 6, "{log:#?}");
    }

    /// Folders of tiny files: the files after a folder are hinted a few times at most, not
    /// once more for every file of the folders before them (that made a first snapshot of
    /// 20,000 files of 16-256 bytes take 200 CPU-seconds instead of 0.5).
    #[test]
    fn tiny_files_are_hinted_a_few_times_not_once_per_file_before_them() {
        let dir = tempfile::tempdir().unwrap();
        let (root, lib) = (dir.path().join("repo"), dir.path().join("lib"));
        create_small_repo(&root, true);
        for f in ["a", "b", "c"] {
            for i in 0..40 {
                crate::testing::write(&lib.join(f).join(format!("{i:02}.bin")), &[i as u8; 100]);
            }
        }
        let repo = open(&root);
        let source = Recording::over(&lib);
        let options = crate::testing::folder_options(&source.inner);
        let index = repo.load_index().unwrap().index;
        archiver::run(&repo, index, &source, options, &NoHooks, &Photos).unwrap();
        let log = source.take();
        let mut hints: HashMap<&str, usize> = HashMap::new();
        for l in &log {
            if let Some(p) = l.strip_prefix("prefetch ") {
                *hints.entry(p).or_default() += 1;
            }
        }
        assert_eq!(
            hints.len(),
            119,
            "every file but the first hinted: {hints:?}"
        );
        let most = hints.values().max().copied().unwrap_or_default();
        assert!(most <= 4, "a file hinted {most} times: {hints:?}");
    }
    /// A file whose first hint was cut short by the byte budget is hinted further by a
    /// later hint with more budget (without a second opening for the read), and a hint no
    /// longer than the one given is not given again. Holding the hint's opening had dropped
    /// the further hint: a cold re-import of photos took 1.55 -> 1.73 s.
    #[test]
    fn a_file_hinted_short_is_hinted_further_when_the_budget_allows() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib");
        crate::testing::write(&lib.join("big.bin"), &[7u8; 4000]);
        let source = Recording::over(&lib);
        let mut ahead = Lookahead::new(true);
        let path = b"lib/big.bin".to_vec();
        assert!(ahead.ahead(&source, path.clone(), 100));
        assert!(ahead.ahead(&source, path.clone(), 100));
        assert!(ahead.ahead(&source, path.clone(), 4000));
        assert!(ahead.ahead(&source, path.clone(), 2000));
        let hints = source.take();
        assert_eq!(
            hints,
            ["prefetch lib/big.bin", "prefetch lib/big.bin"],
            "{hints:?}"
        );
        let mut bytes = Vec::new();
        ahead.take(&path).unwrap().read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes.len(), 4000);
    }

    /// Every file is opened once: the hint that fetches a file ahead of the walk opens it
    /// and the walk reads from that opening, and a file hinted again (each folder's end
    /// hints the next folders) is not opened again. Opening every tiny file twice (once to
    /// hint, once to read), and the next folders' files again at each folder's end, was
    /// most of a first snapshot's system time at a million files.
    #[test]
    fn every_file_is_opened_once_by_hint_and_read_together() {
        let dir = tempfile::tempdir().unwrap();
        let (root, lib) = (dir.path().join("repo"), dir.path().join("lib"));
        create_small_repo(&root, true);
        for f in ["a", "b", "d/e"] {
            for i in 0..30 {
                crate::testing::write(&lib.join(f).join(format!("{i:02}.bin")), &[i as u8; 100]);
            }
        }
        let c = lib.join("c");
        std::fs::create_dir_all(&c).unwrap();
        for i in 0..3 {
            photo(&c, 30 + i);
        }
        let repo = open(&root);
        let source = Recording::over(&lib);
        let options = crate::testing::folder_options(&source.inner);
        let index = repo.load_index().unwrap().index;
        archiver::run(&repo, index, &source, options, &NoHooks, &Photos).unwrap();
        let log = source.take();
        let mut opens: HashMap<&str, usize> = HashMap::new();
        for l in &log {
            if let Some((what, p)) = l.split_once(' ')
                && (what == "open" || what == "prefetch")
            {
                *opens.entry(p).or_default() += 1;
            }
        }
        assert_eq!(opens.len(), 93, "every file opened: {opens:?}");
        let twice: Vec<_> = opens.iter().filter(|(_, n)| **n != 1).collect();
        assert!(twice.is_empty(), "opened more than once: {twice:?}");
    }
}
