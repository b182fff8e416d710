//! The folders of a restore: created or checked before anything goes into them, parents
//! first, each opened from its parent's handle (never through a symlink, see [`super::dirs`]);
//! then held open while their files are restored, and synced after the last one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::sync::{Arc, Mutex};

use crate::error::{RepoError, Result};

use super::dirs::{self, Dir, Entry};
use super::problem::Problem;
use super::{RestoreItem, by_components, file, shown, split};

/// Every folder the restore needs (the parents of each item, each restored folder), parents
/// first.
pub(crate) fn needed_folders(items: &[RestoreItem], dirs: &[RestoreItem]) -> Vec<Vec<u8>> {
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
pub struct Folders {
    /// Folders that could not be created or opened, and why: nothing goes under them.
    pub failed: BTreeMap<Vec<u8>, Problem>,
    /// Folders that received new subfolders (synced before the restore returns).
    pub dirty: BTreeSet<Vec<u8>>,
}

impl Folders {
    /// The failed folder at or above `dir`, if any.
    pub fn blocked(&self, dir: &[u8]) -> Option<&[u8]> {
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
    Problem(Problem),
    Fatal(io::Error),
}

impl From<io::Error> for FolderFailure {
    fn from(e: io::Error) -> Self {
        if file::disk_trouble(&e) {
            return FolderFailure::Fatal(e);
        }
        FolderFailure::Problem(Problem::Failed(match e.raw_os_error() {
            Some(libc::ENAMETOOLONG) => "the name is too long for the target's file system".into(),
            Some(libc::EACCES) | Some(libc::EPERM) => format!("no permission to create it ({e})"),
            _ => format!("could not be created: {e}"),
        }))
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
            let symlink_to = match parent.entry(name)? {
                Entry::Symlink => Some(shown(&parent.read_link(name).unwrap_or_default())),
                _ => None,
            };
            let why = Problem::InTheWayOfFolder {
                symlink_to,
                below: 0,
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
pub(crate) fn prepare_folders(
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
                    out.failed.insert(
                        parent.to_vec(),
                        format!("could not be opened again: {e}").into(),
                    );
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
pub(crate) struct OpenFolders<'a> {
    pub files_in: HashMap<Vec<u8>, usize>,
    /// The target's device, when files on it are synced in batches (see [`super::batch`]).
    pub batch_dev: Option<u64>,
    pub open: Mutex<HashMap<Vec<u8>, OpenFolder>>,
    pub chain: Mutex<dirs::Chain<'a>>,
}

pub(crate) struct OpenFolder {
    dir: Arc<Dir>,
    /// On the target's file system, whose files are synced in batches.
    batched: bool,
    left: usize,
    changed: bool,
}

impl OpenFolders<'_> {
    pub fn get(&self, path: &[u8]) -> io::Result<Arc<Dir>> {
        Ok(self.get_batched(path)?.0)
    }

    /// The folder, and whether its files are synced in batches (it is on the target's file
    /// system, and that one allows it; a file system mounted below the target may not).
    pub fn get_batched(&self, path: &[u8]) -> io::Result<(Arc<Dir>, bool)> {
        let mut open = self.open.lock().map_err(|_| io::Error::other("poisoned"))?;
        if let Some(f) = open.get(path) {
            return Ok((f.dir.clone(), f.batched));
        }
        // Folders are handed out in path order: the chain reuses their parents' handles.
        let dir = {
            let mut chain = self
                .chain
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?;
            Arc::new(chain.get(path)?.try_clone()?)
        };
        let left = self.files_in.get(path).copied().unwrap_or(1);
        let batched = self
            .batch_dev
            .is_some_and(|dev| dirs::device(&*dir).is_ok_and(|d| d == dev));
        open.insert(
            path.to_vec(),
            OpenFolder {
                dir: dir.clone(),
                batched,
                left,
                changed: false,
            },
        );
        Ok((dir, batched))
    }

    /// One file of the folder is done; after the last one the folder is synced if a file
    /// was renamed into it.
    pub fn done(&self, path: &[u8], changed: bool) -> io::Result<()> {
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
    pub(crate) fn sync_rest(self) {
        if let Ok(open) = self.open.into_inner() {
            for f in open.into_values().filter(|f| f.changed) {
                let _ = f.dir.sync();
            }
        }
    }
}
