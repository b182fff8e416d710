//! Restore: trees back into files, every blob verified against its id on the way.
//!
//! In four steps: the folders (created or checked, parents first, never through a symlink:
//! see [`dirs`]); the files, in parallel, each written to a temporary name beside its
//! target and renamed into place when complete (see [`file`]), so an interrupted restore
//! never leaves a half-written file under the real name and a re-run skips files that are
//! already right; the symlinks; last the folders' own modes and times, deepest first.
//!
//! A restore carries on past what it cannot do: a folder it cannot create (a file or a
//! planted symlink in its place, a name too long for the target, no permission) skips what
//! belongs under it, a file in the way is left alone unless `overwrite`; each is recorded
//! in [`RestoreStats::problems`]. Only a full or read-only target disk stops it.
//! Every folder that received new names is synced before `restore` returns.

mod dirs;
mod file;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use globset::GlobSet;

use crate::chunker::Chunker;
use crate::error::{IoContext, RepoError, Result};
use crate::id::BlobId;
use crate::index::Index;
use crate::repository::Repository;
use crate::tree::{Node, NodeKind};

use dirs::{Dir, Entry};
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

pub trait RestoreObserver: Sync {
    fn file_restored(&self, _path: &[u8], _bytes: u64) {}
}
impl RestoreObserver for crate::archiver::NoHooks {}

#[derive(Debug, Default)]
pub struct RestoreStats {
    pub files_restored: u64,
    pub files_already_right: u64,
    pub symlinks: u64,
    pub dirs: u64,
    pub bytes_written: u64,
    /// (path, problem): files not restored.
    pub problems: Vec<(String, String)>,
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
pub fn collect_matching(
    repo: &Repository,
    index: &Index,
    tree: &BlobId,
    filter: Option<Filter<'_>>,
) -> Result<(Vec<RestoreItem>, Vec<RestoreItem>)> {
    let mut items = Vec::new();
    let mut dirs = Vec::new();
    walk(repo, index, tree, b"", filter, false, &mut items, &mut dirs)?;
    Ok((items, dirs))
}

#[allow(clippy::too_many_arguments)]
fn walk(
    repo: &Repository,
    index: &Index,
    tree: &BlobId,
    prefix: &[u8],
    filter: Option<Filter<'_>>,
    inherited: bool,
    items: &mut Vec<RestoreItem>,
    dirs: &mut Vec<RestoreItem>,
) -> Result<()> {
    let t = repo.load_tree(index, tree)?;
    for n in t.nodes {
        let mut path = prefix.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&n.name.0);
        let hit = inherited || filter.is_none_or(|f| f(&path, &n.name.0));
        match (n.kind, n.subtree) {
            (NodeKind::Dir, Some(sub)) => {
                let before = (items.len(), dirs.len());
                walk(repo, index, &sub, &path, filter, hit, items, dirs)?;
                if hit || (items.len(), dirs.len()) != before {
                    dirs.push(RestoreItem { path, node: n });
                }
            }
            _ => {
                if hit {
                    items.push(RestoreItem { path, node: n });
                }
            }
        }
    }
    Ok(())
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

/// Every folder the restore needs (the parents of each item, each restored folder), parents
/// first.
fn needed_folders(items: &[RestoreItem], dirs: &[RestoreItem]) -> Vec<Vec<u8>> {
    let mut set = BTreeSet::new();
    for p in items
        .iter()
        .map(|i| split(&i.path).0)
        .chain(dirs.iter().map(|d| d.path.as_slice()))
    {
        let mut p = p;
        // Inserting stops at the first folder already known: its parents are known too.
        while !p.is_empty() && set.insert(p.to_vec()) {
            p = split(p).0;
        }
    }
    let mut v: Vec<Vec<u8>> = set.into_iter().collect();
    v.sort_by(|a, b| by_components(a, b));
    v
}

/// The target's folders after the first step.
#[derive(Default)]
struct Folders {
    /// Folders that could not be created or opened, and why: nothing goes under them.
    failed: BTreeMap<Vec<u8>, String>,
    /// Folders that received new subfolders (synced before the restore returns).
    dirty: BTreeSet<Vec<u8>>,
}

impl Folders {
    /// The failed folder at or above `dir`, if any.
    fn blocked(&self, dir: &[u8]) -> Option<&[u8]> {
        if self.failed.is_empty() {
            return None;
        }
        let mut p = dir;
        loop {
            if let Some((k, _)) = self.failed.get_key_value(p) {
                return Some(k);
            }
            if p.is_empty() {
                return None;
            }
            p = split(p).0;
        }
    }
}

/// Why a folder could not be made: a problem to record, or trouble that stops the restore.
enum FolderFailure {
    Problem(String),
    Fatal(io::Error),
}

impl From<io::Error> for FolderFailure {
    fn from(e: io::Error) -> Self {
        if file::disk_trouble(&e) {
            return FolderFailure::Fatal(e);
        }
        FolderFailure::Problem(match e.raw_os_error() {
            Some(libc::ENAMETOOLONG) => "the name is too long for the target's file system".into(),
            Some(libc::EACCES) | Some(libc::EPERM) => format!("no permission to create it ({e})"),
            _ => format!("could not be created: {e}"),
        })
    }
}

/// Open the folder `name` in `parent`, creating it if missing. A symlink or file in its
/// place is never followed: with `overwrite` it is replaced by a folder, otherwise the
/// folder fails. Returns the folder and whether it was created.
fn ensure_folder(
    parent: &Dir,
    name: &[u8],
    mode_later: bool,
    overwrite: bool,
) -> std::result::Result<(Dir, bool), FolderFailure> {
    match parent.open(name) {
        Ok(d) => return Ok((d, false)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) if dirs::is_not_a_folder(&e) => {
            let why = match parent.entry(name)? {
                Entry::Symlink => {
                    let to = parent.read_link(name).unwrap_or_default();
                    format!(
                        "a symlink (to {}) is in the way of this folder; it was not followed and \
                         nothing under it was restored (--overwrite replaces it with a folder)",
                        shown(&to)
                    )
                }
                _ => "a file is in the way of this folder; nothing under it was restored \
                      (--overwrite replaces it with a folder)"
                    .to_string(),
            };
            if !overwrite {
                return Err(FolderFailure::Problem(why));
            }
            parent.remove_file(name)?;
        }
        Err(e) => return Err(e.into()),
    }
    // Folders whose mode is set at the end are owner-only until then; others (the parents
    // of `restore --date` photos) get the usual mode under the umask.
    let created = match parent.mkdir(name, if mode_later { 0o700 } else { 0o777 }) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(e.into()),
    };
    Ok((parent.open(name)?, created))
}

/// At most this many folder handles are kept open along the current chain (a very deep
/// tree must not run out of descriptors); deeper ancestors are opened again when needed.
const CHAIN_HANDLES: usize = 64;

/// Step 1: create or check every needed folder, parents first, each from its parent's
/// handle.
fn prepare_folders(
    root: &Dir,
    needed: &[Vec<u8>],
    with_mode: &BTreeSet<&[u8]>,
    overwrite: bool,
) -> Result<Folders> {
    let mut out = Folders::default();
    let mut chain: Vec<(Vec<u8>, Option<Dir>)> = Vec::new();
    for path in needed {
        let (parent, name) = split(path);
        if out.blocked(parent).is_some() {
            continue;
        }
        while chain.last().is_some_and(|(p, _)| p.as_slice() != parent) {
            chain.pop();
        }
        let reopened;
        let pdir = match chain.last() {
            _ if parent.is_empty() => root,
            Some((_, Some(d))) => d,
            _ => match root.open_path(parent) {
                Ok(d) => {
                    reopened = d;
                    &reopened
                }
                Err(e) => {
                    out.failed
                        .insert(parent.to_vec(), format!("could not be opened again: {e}"));
                    continue;
                }
            },
        };
        match ensure_folder(pdir, name, with_mode.contains(path.as_slice()), overwrite) {
            Ok((d, created)) => {
                if created {
                    out.dirty.insert(parent.to_vec());
                }
                chain.push((path.clone(), Some(d)));
                let n = chain.len();
                if n > CHAIN_HANDLES {
                    chain[n - CHAIN_HANDLES - 1].1 = None;
                }
            }
            Err(FolderFailure::Problem(why)) => {
                out.failed.insert(path.clone(), why);
            }
            Err(FolderFailure::Fatal(e)) => {
                return Err(RepoError::io(format!("creating folder {}", shown(path)), e));
            }
        }
    }
    Ok(out)
}

/// Folders open while their files are restored: each is synced after its last file and
/// closed, so few are open at once (files are handed out folder by folder).
struct OpenFolders<'a> {
    root: &'a Dir,
    files_in: HashMap<Vec<u8>, usize>,
    open: Mutex<HashMap<Vec<u8>, OpenFolder>>,
}

struct OpenFolder {
    dir: Arc<Dir>,
    left: usize,
    changed: bool,
}

impl OpenFolders<'_> {
    fn get(&self, path: &[u8]) -> io::Result<Arc<Dir>> {
        let mut open = self.open.lock().map_err(|_| io::Error::other("poisoned"))?;
        if let Some(f) = open.get(path) {
            return Ok(f.dir.clone());
        }
        let dir = Arc::new(self.root.open_path(path)?);
        let left = self.files_in.get(path).copied().unwrap_or(1);
        open.insert(
            path.to_vec(),
            OpenFolder {
                dir: dir.clone(),
                left,
                changed: false,
            },
        );
        Ok(dir)
    }

    /// One file of the folder is done; after the last one the folder is synced if a file
    /// was renamed into it.
    fn done(&self, path: &[u8], changed: bool) -> io::Result<()> {
        let finished = {
            let mut open = self.open.lock().map_err(|_| io::Error::other("poisoned"))?;
            let Some(f) = open.get_mut(path) else {
                return Ok(());
            };
            f.changed |= changed;
            f.left = f.left.saturating_sub(1);
            if f.left > 0 {
                return Ok(());
            }
            open.remove(path)
        };
        match finished {
            Some(f) if f.changed => f.dir.sync(),
            _ => Ok(()),
        }
    }

    /// Sync what is still open (after a restore stopped early).
    fn sync_rest(self) {
        if let Ok(open) = self.open.into_inner() {
            for f in open.into_values().filter(|f| f.changed) {
                let _ = f.dir.sync();
            }
        }
    }
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
        return Err(RepoError::Invalid(format!(
            "restore target {} exists and is not a folder",
            opts.target.display()
        )));
    }
    let mut stats = RestoreStats::default();
    if opts.dry_run {
        return Ok(stats);
    }
    let root = Dir::open_target(&opts.target)
        .ctx(|| format!("opening the restore target {}", opts.target.display()))?;
    let with_mode: BTreeSet<&[u8]> = dirs.iter().map(|d| d.path.as_slice()).collect();
    let folders = prepare_folders(
        &root,
        &needed_folders(items, dirs),
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
        let why = match n {
            0 => why.clone(),
            n => format!("{why}; {n} item(s) under it not restored"),
        };
        stats.problems.push((shown(f), why));
    }

    // Step 2: the files, folder by folder, in parallel.
    let mut files: Vec<&RestoreItem> = items
        .iter()
        .filter(|i| i.node.kind == NodeKind::File)
        .filter(|i| folders.blocked(split(&i.path).0).is_none())
        .collect();
    files.sort_by(|a, b| split(&a.path).0.cmp(split(&b.path).0));
    let mut files_in: HashMap<Vec<u8>, usize> = HashMap::new();
    for f in &files {
        *files_in.entry(split(&f.path).0.to_vec()).or_default() += 1;
    }
    let open = OpenFolders {
        root: &root,
        files_in,
        open: Mutex::new(HashMap::new()),
    };
    let chunker = Chunker::new(&repo.config().chunker, repo.crypto());
    let next = AtomicUsize::new(0);
    let restored = AtomicU64::new(0);
    let right = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let problems = Mutex::new(Vec::new());
    let fatal: Mutex<Option<RepoError>> = Mutex::new(None);
    let threads = opts.threads.max(1);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                // This thread's read buffer, reused for every range it reads.
                let mut buf = Vec::new();
                let problem = |path: &[u8], why: String| {
                    if let Ok(mut p) = problems.lock() {
                        p.push((shown(path), why));
                    }
                };
                loop {
                    let i = next.fetch_add(1, Relaxed);
                    let Some(item) = files.get(i) else { break };
                    // The file about one round ahead: its packs come off the disk while
                    // this one is decrypted and written.
                    if let Some(later) = files.get(i + threads) {
                        file::prefetch(repo, index, &later.node);
                    }
                    let (dir_path, name) = split(&item.path);
                    let shown_path = shown(&item.path);
                    let result = open
                        .get(dir_path)
                        .ctx(|| format!("opening the folder of {shown_path}"))
                        .and_then(|dir| {
                            file::restore(
                                repo,
                                index,
                                &chunker,
                                &dir,
                                name,
                                &shown_path,
                                &item.node,
                                opts.overwrite,
                                &mut buf,
                            )
                        });
                    let changed = matches!(result, Ok(Outcome::Written(_)));
                    match result {
                        Ok(Outcome::Written(n)) => {
                            restored.fetch_add(1, Relaxed);
                            bytes.fetch_add(n, Relaxed);
                            observer.file_restored(&item.path, n);
                        }
                        Ok(Outcome::AlreadyRight) => {
                            right.fetch_add(1, Relaxed);
                            observer.file_restored(&item.path, 0);
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
                        Err(e) => problem(&item.path, e.to_string()),
                    }
                    if let Err(e) = open.done(dir_path, changed) {
                        problem(dir_path, format!("the folder could not be synced: {e}"));
                    }
                }
            });
        }
    });
    open.sync_rest();
    if let Some(e) = fatal.into_inner().ok().flatten() {
        return Err(e);
    }
    stats.files_restored = restored.into_inner();
    stats.files_already_right = right.into_inner();
    stats.bytes_written = bytes.into_inner();
    stats
        .problems
        .extend(problems.into_inner().unwrap_or_default());

    // Step 3: symlinks.
    let mut dirty = folders.dirty.clone();
    let mut here: Option<(Vec<u8>, Dir)> = None;
    for it in items.iter().filter(|i| i.node.kind == NodeKind::Symlink) {
        let (dir_path, name) = split(&it.path);
        if folders.blocked(dir_path).is_some() {
            continue;
        }
        if here.as_ref().is_none_or(|(p, _)| p.as_slice() != dir_path) {
            match root.open_path(dir_path) {
                Ok(d) => here = Some((dir_path.to_vec(), d)),
                Err(e) => {
                    stats.problems.push((
                        shown(&it.path),
                        format!("its folder could not be opened: {e}"),
                    ));
                    continue;
                }
            }
        }
        let Some((_, dir)) = here.as_ref() else {
            continue;
        };
        let target = it.node.target.clone().unwrap_or_default();
        match restore_symlink(dir, name, &target.0, it.node.mtime, opts.overwrite) {
            Ok(None) => stats.symlinks += 1,
            Ok(Some(why)) => stats.problems.push((shown(&it.path), why)),
            Err(e) if file::disk_trouble(&e) => {
                return Err(RepoError::io(
                    format!("creating symlink {}", shown(&it.path)),
                    e,
                ));
            }
            Err(e) => stats.problems.push((shown(&it.path), e.to_string())),
        }
        dirty.insert(dir_path.to_vec());
    }
    drop(here);

    // Step 4: sync the folders that received new names; then the folders' own modes and
    // times, deepest first, so creating their contents does not change their times.
    for d in &dirty {
        if folders.blocked(d).is_some() {
            continue;
        }
        if let Err(e) = root.open_path(d).and_then(|dir| dir.sync()) {
            stats
                .problems
                .push((shown(d), format!("the folder could not be synced: {e}")));
        }
    }
    for d in dirs {
        if folders.blocked(&d.path).is_some() {
            continue;
        }
        if let Ok(dir) = root.open_path(&d.path) {
            dir.set_meta(d.node.mode, d.node.mtime);
            stats.dirs += 1;
        }
    }
    stats.problems.sort();
    Ok(stats)
}

/// Make the symlink `name` → `target` in `dir`. `Ok(Some(why))`: left alone.
fn restore_symlink(
    dir: &Dir,
    name: &[u8],
    target: &[u8],
    mtime: i64,
    overwrite: bool,
) -> io::Result<Option<String>> {
    match dir.entry(name)? {
        Entry::Missing => {}
        Entry::Symlink if dir.read_link(name)? == target => {
            let _ = dir.set_link_times(name, mtime);
            return Ok(None);
        }
        Entry::Dir => {
            return Ok(Some(
                "a folder is in the way; snapvault does not replace folders, even with --overwrite"
                    .into(),
            ));
        }
        _ if !overwrite => {
            return Ok(Some(
                "something else exists at this path; left untouched (use --overwrite to replace it)"
                    .into(),
            ));
        }
        _ => dir.remove_file(name)?,
    }
    dir.symlink(target, name)?;
    let _ = dir.set_link_times(name, mtime);
    Ok(None)
}

#[cfg(test)]
mod tests;
