//! Restore: trees back into files, every blob verified against its id on the way.
//!
//! In four steps: the folders (created or checked, parents first, never through a symlink:
//! see `dirs`); the files, in parallel, each written to a temporary name beside its
//! target and renamed into place once complete and durable (see [`file`]; many at a time
//! where the file system allows, see [`batch`]), so an interrupted restore never leaves a
//! half-written file under the real name and a re-run skips files that are already right; the symlinks; last the folders' own modes and times, deepest first.
//!
//! A restore carries on past what it cannot do: a folder it cannot create (a file or a
//! planted symlink in its place, a name too long for the target, no permission) skips what
//! belongs under it, a file in the way is left alone unless `overwrite`; each is recorded
//! in [`RestoreStats::problems`]. Only a full or read-only target disk stops it.
//! Every folder that received new names is synced before `restore` returns.

mod ahead;
mod batch;
mod case;
mod dirs;
mod file;
mod folders;
mod others;
mod problem;
mod split;
mod temp;

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

use globset::GlobSet;

use crate::error::{IoContext, RepoError, Result};
use crate::format::id::BlobId;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::repository::Repository;
use crate::repository::chunker::Chunker;
use crate::repository::index::Index;
use crate::repository::walk::{Sharing, TreeWalker, Visitor};

use dirs::Dir;
use file::Outcome;

pub struct RestoreOptions {
    pub target: PathBuf,
    /// Only entries whose path (or an ancestor's path) matches are restored.
    pub include: Option<GlobSet>,
    pub overwrite: bool,
    pub dry_run: bool,
    pub threads: usize,
}

/// One file or symlink to restore, with its path relative to the target.
#[derive(Clone, Debug)]
pub struct RestoreItem {
    pub path: Vec<u8>,
    pub node: Node,
}

pub use crate::ops::observe::RestoreObserver;
pub use problem::Problem;

#[derive(Debug, Default)]
pub struct RestoreStats {
    pub files_restored: u64,
    pub files_already_right: u64,
    pub symlinks: u64,
    /// Files linked to another restored file, as they were in the snapshot.
    pub hardlinks: u64,
    /// FIFOs and device files made (or found right).
    pub specials: u64,
    pub dirs: u64,
    pub bytes_written: u64,
    /// (path, problem): files not restored.
    pub problems: Vec<(String, Problem)>,
    /// (path, note): recorded but not recreated on purpose (sockets); not a problem.
    pub notes: Vec<(String, String)>,
}

/// Which entries to restore: called with each entry's path (from the snapshot's top) and
/// name; an entry under a matching folder is restored without asking.
pub type Filter<'a> = &'a dyn Fn(&[u8], &[u8]) -> bool;

/// Collect files, symlinks and directories of a tree (depth first); with `include`, only
/// entries whose path (or an ancestor's path) matches.
pub fn collect(
    repo: &Repository,
    index: &Index,
    tree: &BlobId,
    include: &Option<GlobSet>,
) -> Result<(Vec<RestoreItem>, Vec<RestoreItem>)> {
    match include {
        None => collect_matching(repo, index, tree, None),
        Some(g) => {
            let f = |path: &[u8], _: &[u8]| g.is_match(Path::new(OsStr::from_bytes(path)));
            collect_matching(repo, index, tree, Some(&f))
        }
    }
}

/// Collect files, symlinks and directories of a tree (depth first; a folder after what it
/// holds); with a filter, only what it matches and what lies under a folder it matches.
/// A listing shared by several folders is collected under each (the walker's every-path
/// rule, bounded by `expansion`); a listing that cannot be read stops the collection.
pub fn collect_matching(
    repo: &Repository,
    index: &Index,
    tree: &BlobId,
    filter: Option<Filter<'_>>,
) -> Result<(Vec<RestoreItem>, Vec<RestoreItem>)> {
    let mut items = Vec::new();
    let mut keep = |path: &[u8], n: &Node| {
        items.push(RestoreItem {
            path: path.to_vec(),
            node: n.clone(),
        });
        Ok(())
    };
    let mut c = Collect::new(filter, &mut keep, true);
    TreeWalker::with(repo, index, Sharing::EveryPath { keep: false }).walk(*tree, &mut c)?;
    let dirs = std::mem::take(&mut c.dirs);
    drop(c);
    Ok((items, dirs))
}

/// The items [`collect_matching`] collects (files, symlinks, other non-folders), handed to
/// `each` one by one in the same order as the walk finds them, none kept: a listing of any
/// size in the memory of the folders open (`restore --dry-run`). Returns whether anything
/// matched, an item or a folder (what `collect_matching` returns non-empty for).
pub fn each_matching(
    repo: &Repository,
    index: &Index,
    tree: &BlobId,
    filter: Option<Filter<'_>>,
    each: &mut dyn FnMut(&[u8], &Node) -> Result<()>,
) -> Result<bool> {
    let mut c = Collect::new(filter, each, false);
    TreeWalker::with(repo, index, Sharing::EveryPath { keep: false }).walk(*tree, &mut c)?;
    Ok(c.items > 0 || c.folders > 0)
}

/// What [`collect_matching`] finds, as the walk goes.
struct Collect<'f, 'e> {
    filter: Option<Filter<'f>>,
    /// Gets every item matched, in walk order.
    each: &'e mut dyn FnMut(&[u8], &Node) -> Result<()>,
    /// Items and folders matched so far.
    items: usize,
    folders: usize,
    /// The folders matched, when kept.
    keep_dirs: bool,
    dirs: Vec<RestoreItem>,
    /// Folders entered, innermost last: (matched, items and folders found before it).
    open: Vec<(bool, usize, usize)>,
    /// The same for the folder entry just seen, whose listing is entered next.
    next: (bool, usize, usize),
}

impl<'f, 'e> Collect<'f, 'e> {
    fn new(
        filter: Option<Filter<'f>>,
        each: &'e mut dyn FnMut(&[u8], &Node) -> Result<()>,
        keep_dirs: bool,
    ) -> Self {
        Collect {
            filter,
            each,
            items: 0,
            folders: 0,
            keep_dirs,
            dirs: Vec::new(),
            open: Vec::new(),
            next: (false, 0, 0),
        }
    }
}

impl Visitor for Collect<'_, '_> {
    fn entry(&mut self, path: &[u8], n: &Node) -> Result<bool> {
        let inherited = self.open.last().is_some_and(|f| f.0);
        let hit = inherited || self.filter.is_none_or(|f| f(path, &n.name.0));
        match (n.kind, n.subtree) {
            (NodeKind::Dir, Some(_)) => self.next = (hit, self.items, self.folders),
            _ if hit => {
                self.items += 1;
                (self.each)(path, n)?;
            }
            _ => {}
        }
        Ok(true)
    }

    fn tree(&mut self, _: &BlobId, _: &[u8], _: &Tree) -> Result<bool> {
        self.open.push(std::mem::take(&mut self.next));
        Ok(true)
    }

    fn leave(&mut self, _: &BlobId, path: &[u8], node: Option<&Node>) -> Result<()> {
        let (hit, items, folders) = self.open.pop().unwrap_or_default();
        if let Some(n) = node
            && (hit || (self.items, self.folders) != (items, folders))
        {
            self.folders += 1;
            if self.keep_dirs {
                self.dirs.push(RestoreItem {
                    path: path.to_vec(),
                    node: n.clone(),
                });
            }
        }
        Ok(())
    }

    fn unreadable(&mut self, _: &BlobId, _: &[u8], e: RepoError) -> Result<()> {
        Err(e)
    }
}

/// `a/b/c` → (`a/b`, `c`); a top-level name has the parent `b""` (the target).
fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

fn shown(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// Paths in depth-first order: by components, so `a/b` comes right after `a`, before `a-x`.
fn by_components(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/'))
}

/// What every step of one restore works with.
struct Run<'a> {
    repo: &'a Repository,
    index: &'a Index,
    chunker: &'a Chunker,
    root: &'a Dir,
    opts: &'a RestoreOptions,
    observer: &'a dyn RestoreObserver,
    temps: temp::TempNames,
}

pub fn restore(
    repo: &Repository,
    index: &Index,
    items: &[RestoreItem],
    dirs: &[RestoreItem],
    opts: &RestoreOptions,
    observer: &dyn RestoreObserver,
) -> Result<RestoreStats> {
    // The target itself is the user's choice: a symlink to a folder is fine there.
    if let Ok(md) = fs::metadata(&opts.target)
        && !md.is_dir()
    {
        return Err(RepoError::RestoreTargetNotFolder(opts.target.clone()));
    }
    let mut stats = RestoreStats::default();
    if opts.dry_run {
        return Ok(stats);
    }
    let root = Dir::open_target(&opts.target)
        .ctx(|| format!("opening the restore target {}", opts.target.display()))?;
    let chunker = Chunker::new(&repo.config().chunker, repo.crypto());

    // Names that differ only in case, on a target that cannot tell them apart: renamed.
    let mut probe = |rel: &[u8]| -> bool {
        // The nearest folder that exists decides (new folders inherit its behaviour).
        let mut p = rel;
        loop {
            if let Ok(d) = root.open_path(p) {
                return d.is_case_insensitive().unwrap_or(false);
            }
            if p.is_empty() {
                return false;
            }
            p = split(p).0;
        }
    };
    let (items, dirs, renamed) = case::plan(items, dirs, &mut probe);
    let (items, dirs) = (&items[..], &dirs[..]);
    let run = Run {
        repo,
        index,
        chunker: &chunker,
        root: &root,
        opts,
        observer,
        temps: temp::TempNames::new(items.iter().chain(dirs).map(|i| i.path.as_slice())),
    };
    for (from, to) in renamed {
        stats.notes.push((
            shown(&to),
            format!(
                "restored under this name: {} differs from another name in its folder only \
                 in case, and the target does not tell such names apart",
                shown(&from)
            ),
        ));
    }

    // Step 1: the folders.
    let with_mode: BTreeSet<&[u8]> = dirs.iter().map(|d| d.path.as_slice()).collect();
    let folders = folders::prepare_folders(
        &root,
        &folders::needed_folders(items, dirs),
        &with_mode,
        opts.overwrite,
    )?;
    for (f, why) in &folders.failed {
        let mut under = f.clone();
        under.push(b'/');
        let n = items
            .iter()
            .chain(dirs)
            .filter(|i| i.path.starts_with(&under))
            .count();
        stats
            .problems
            .push((shown(f), why.clone().with_items_below(n)));
    }

    // Step 2: the files, folder by folder, in parallel; then the hard links among them.
    let mut files: Vec<&RestoreItem> = items
        .iter()
        .filter(|i| i.node.kind == NodeKind::File)
        .filter(|i| folders.blocked(split(&i.path).0).is_none())
        .collect();
    files.sort_by(|a, b| by_components(split(&a.path).0, split(&b.path).0));
    let (files, links) = others::split_link_groups(files);
    let ok = write_files(&run, &files, &mut stats)?;
    let mut dirty = folders.dirty.clone();
    others::link(&run, &files, &ok, &links, &mut stats, &mut dirty)?;

    // Step 3: symlinks, FIFOs, devices (sockets are noted).
    others::make(&run, items, &folders, &mut stats, &mut dirty)?;

    // Step 4: sync the folders that received new names; then the folders' own modes and
    // times, deepest first, so creating their contents does not change their times.
    let mut chain = dirs::Chain::new(&root);
    let mut dirty: Vec<Vec<u8>> = dirty.into_iter().collect();
    dirty.sort_by(|a, b| by_components(a, b));
    for d in &dirty {
        if folders.blocked(d).is_some() {
            continue;
        }
        if let Err(e) = chain.get(d).and_then(|dir| dir.sync()) {
            stats.problems.push((
                shown(d),
                format!("the folder could not be synced: {e}").into(),
            ));
        }
    }
    for d in dirs {
        if folders.blocked(&d.path).is_some() {
            continue;
        }
        if let Ok(dir) = chain.get(&d.path) {
            dir.set_meta(d.node.mode, d.node.mtime);
            stats.dirs += 1;
        }
    }
    stats.problems.sort();
    Ok(stats)
}

/// Write `files` in parallel (each folder synced after its last file). Returns, per file,
/// whether it is now right (written, or already so); a full or read-only target disk
/// stops everything.
fn write_files(run: &Run, files: &[&RestoreItem], stats: &mut RestoreStats) -> Result<Vec<bool>> {
    let mut files_in: HashMap<Vec<u8>, usize> = HashMap::new();
    for f in files {
        *files_in.entry(split(&f.path).0.to_vec()).or_default() += 1;
    }
    let batch_dev = batch::batches_on(run.root)
        .then(|| dirs::device(run.root).ok())
        .flatten();
    let open = folders::OpenFolders {
        files_in,
        batch_dev,
        open: Mutex::new(HashMap::new()),
        chain: Mutex::new(dirs::Chain::new(run.root)),
    };
    let units = split::units(run.index, files, run.opts.threads.max(1));
    let ahead = ahead::Ahead::new(run, files, &units, run.opts.threads.max(1));
    let next = AtomicUsize::new(0);
    let restored = AtomicU64::new(0);
    let right = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let ok: Vec<AtomicBool> = files.iter().map(|_| AtomicBool::new(false)).collect();
    let problems = Mutex::new(Vec::new());
    let fatal: Mutex<Option<RepoError>> = Mutex::new(None);
    let threads = run.opts.threads.max(1);
    let problem = |path: &[u8], why: Problem| {
        if let Ok(mut p) = problems.lock() {
            p.push((shown(path), why));
        }
    };
    // What became of file `i`: counted, reported, and its folder told (synced after its
    // last file).
    let report = |i: usize, result: Result<Outcome>| {
        let item = files[i];
        let dir_path = split(&item.path).0;
        let changed = matches!(result, Ok(Outcome::Written(_)));
        match result {
            Ok(Outcome::Written(n)) => {
                restored.fetch_add(1, Relaxed);
                bytes.fetch_add(n, Relaxed);
                ok[i].store(true, Relaxed);
                run.observer.file_restored(&item.path, n);
            }
            Ok(Outcome::AlreadyRight) => {
                right.fetch_add(1, Relaxed);
                ok[i].store(true, Relaxed);
                run.observer.file_restored(&item.path, 0);
            }
            Ok(Outcome::Refused(why)) => problem(&item.path, why),
            Err(RepoError::Io { context, source }) if file::disk_trouble(&source) => {
                // The target disk is full or read-only: stop, don't spray errors.
                let e = RepoError::Io { context, source };
                if let Ok(mut f) = fatal.lock() {
                    f.get_or_insert(e);
                }
                next.store(usize::MAX / 2, Relaxed);
            }
            Err(e) => problem(&item.path, e.to_string().into()),
        }
        if let Err(e) = open.done(dir_path, changed) {
            problem(
                dir_path,
                format!("the folder could not be synced: {e}").into(),
            );
        }
    };
    // A batch made durable: each file renamed into place, or removed.
    let settle = |batch: &mut batch::Batch| {
        for (s, synced) in batch.sync() {
            let item = files[s.file];
            let name = split(&item.path).1;
            let result = synced
                .ctx(|| format!("syncing {}", shown(&item.path)))
                .inspect_err(|_| {
                    let _ = s.dir.remove_file(&s.tmp);
                })
                .and_then(|()| file::rename_into_place(&s.dir, &s.tmp, name, &shown(&item.path)));
            report(s.file, result.map(|()| Outcome::Written(s.bytes)));
        }
    };
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                // This thread's read buffer, reused for every range it reads.
                let mut buf = Vec::new();
                let mut batch = batch::Batch::new(run.root);
                loop {
                    let u = next.fetch_add(1, Relaxed);
                    let Some(unit) = units.get(u) else { break };
                    let (i, item) = (unit.file, files[unit.file]);
                    // Later work announced: its packs are fetched while this is written.
                    ahead.starting(u);
                    let (dir_path, name) = split(&item.path);
                    let shown_path = shown(&item.path);
                    let result = match &unit.part {
                        // A segment of a large file: only the thread that settles the file
                        // reports it.
                        Some((whole, k)) => match whole.run(run, &open, item, *k, &mut buf) {
                            Some(r) => r,
                            None => continue,
                        },
                        None => {
                            let staged = open
                                .get_batched(dir_path)
                                .ctx(|| format!("opening the folder of {shown_path}"))
                                .and_then(|(dir, batched)| {
                                    let s = file::stage(
                                        run.repo,
                                        run.index,
                                        run.chunker,
                                        &dir,
                                        name,
                                        run.temps.for_path(&item.path),
                                        &shown_path,
                                        &item.node,
                                        run.opts.overwrite,
                                        &mut buf,
                                        !batched,
                                    )?;
                                    Ok((dir, batched, s))
                                });
                            match staged {
                                Err(e) => Err(e),
                                Ok((_, _, file::Staged::Done(outcome))) => Ok(outcome),
                                // Renamed (and reported) once its batch is durable.
                                Ok((dir, true, file::Staged::Temp { tmp, bytes })) => {
                                    let s = batch::Staged {
                                        file: i,
                                        dir,
                                        tmp,
                                        bytes,
                                    };
                                    if batch.push(s) {
                                        settle(&mut batch);
                                    }
                                    continue;
                                }
                                Ok((dir, false, file::Staged::Temp { tmp, bytes })) => {
                                    file::rename_into_place(&dir, &tmp, name, &shown_path)
                                        .map(|()| Outcome::Written(bytes))
                                }
                            }
                        }
                    };
                    report(i, result);
                }
                settle(&mut batch);
            });
        }
    });
    for (whole, _) in units.iter().filter_map(|u| u.part.as_ref()) {
        whole.abandon();
    }
    open.sync_rest();
    if let Some(e) = fatal.into_inner().ok().flatten() {
        return Err(e);
    }
    stats.files_restored += restored.into_inner();
    stats.files_already_right += right.into_inner();
    stats.bytes_written += bytes.into_inner();
    stats
        .problems
        .extend(problems.into_inner().unwrap_or_default());
    Ok(ok.into_iter().map(AtomicBool::into_inner).collect())
}

#[cfg(test)]
mod tests;
