//! A snapshot whose lock may have been lost (a laptop suspended past the lease, a failed
//! refresh, the lock removed by `unlock`) cannot trust the index it loaded at the start: a
//! prune elsewhere may have taken the lock as stale and deleted packs holding blobs the
//! snapshot reuses. Before committing, every blob of the new snapshot is looked up again in
//! the index as it is now (its files re-read) plus the packs this run wrote that are still
//! stored. A snapshot missing anything is not saved.

use std::collections::HashSet;

use crate::error::{RepoError, Result};
use crate::format::id::BlobId;
use crate::format::tree::NodeKind;
use crate::repository::Repository;
use crate::repository::index::IndexFile;
use crate::repository::packer::Flushed;

/// Check that the tree `root` and everything under it is stored; `why` says how the lock
/// was lost. Pending packs deleted meanwhile are dropped from the coming index file.
pub fn check(repo: &Repository, flushed: &Flushed, root: &BlobId, why: &str) -> Result<()> {
    flushed.drop_missing()?;
    let mut index = repo.load_index()?.index;
    index.add_file(&IndexFile {
        supersedes: Vec::new(),
        packs: flushed.pending(),
    });
    let mut missing = 0u64;
    let mut example: Option<String> = None;
    let mut note = |path: &[u8], missing: &mut u64| {
        *missing += 1;
        example.get_or_insert_with(|| String::from_utf8_lossy(path).into_owned());
    };
    let mut seen: HashSet<BlobId> = HashSet::new();
    let mut stack: Vec<(BlobId, Vec<u8>)> = vec![(*root, Vec::new())];
    while let Some((id, dir)) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if !index.contains(&id) {
            note(&dir, &mut missing);
            continue;
        }
        let tree = repo.load_tree(&index, &id)?;
        for n in tree.nodes {
            let mut path = dir.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&n.name.0);
            match (n.kind, n.subtree) {
                (NodeKind::Dir, Some(sub)) => stack.push((sub, path)),
                (NodeKind::File, _) if n.content.iter().any(|c| !index.contains(c)) => {
                    note(&path, &mut missing);
                }
                _ => {}
            }
        }
    }
    match (missing, example) {
        (0, _) => Ok(()),
        (n, e) => Err(RepoError::LockLost(format!(
            "{why}; meanwhile data this snapshot reuses was removed (by a prune elsewhere?): {n} file(s) or folder(s), e.g. {}; the snapshot was NOT saved (what it wrote is kept and reused by the next run)",
            e.unwrap_or_default()
        ))),
    }
}
