//! Steps 1 and 2 of [`plan`](super::plan): load the index (one file at a time) and every
//! snapshot, then mark the blobs in use by walking every snapshot's trees.

use std::collections::HashSet;

use super::PruneStats;
use crate::error::{PruneError, RepoError, Result};
use crate::format::id::{BlobId, Id, SnapshotId};
use crate::format::tree::{NodeKind, Tree};
use crate::repository::index::{Index, IndexFile};
use crate::repository::walk::{TreeWalker, Visitor};
use crate::repository::{LoadedIndex, Repository, SnapshotEntry};
use crate::storage::FileKind;

/// Blobs in use: one bit per indexed blob, at its [`Index::position`] — 10 million blobs in
/// 1.2 MiB. Exact: a blob is used or not by its whole id. (A hash set of 8-byte id prefixes
/// before: 10–21 bytes per blob, 150 MiB at 10 million.)
pub(super) struct UsedSet<'a> {
    index: &'a Index,
    bits: Vec<u64>,
}

impl<'a> UsedSet<'a> {
    fn new(index: &'a Index) -> UsedSet<'a> {
        UsedSet {
            index,
            bits: vec![0; index.blob_count().div_ceil(64)],
        }
    }
    /// Mark `id` used; a blob the index does not hold is not marked (callers check first).
    fn insert(&mut self, id: &BlobId) {
        if let Some(p) = self.index.position(id)
            && let Some(w) = self.bits.get_mut(p / 64)
        {
            *w |= 1 << (p % 64);
        }
    }
    pub(super) fn contains(&self, id: &BlobId) -> bool {
        self.index
            .position(id)
            .and_then(|p| self.bits.get(p / 64).map(|w| w & (1 << (p % 64)) != 0))
            .unwrap_or(false)
    }
}

/// Like [`Repository::load_index`], but one file at a time: the peak is the merged index
/// plus one file, not plus every file decoded at once (prune's peak memory).
pub(super) fn load_index_lean(repo: &Repository) -> Result<LoadedIndex> {
    let be = repo.backend();
    let mut index = Index::new();
    let mut files = Vec::new();
    for f in crate::repository::index::list_files(be.as_ref())?.0 {
        let bytes = be.read(FileKind::Index, &f.name)?;
        let what = format!("index {}", f.name);
        if Id::hash_of(&bytes).to_hex() != f.name {
            return Err(RepoError::corrupt(what, "content does not match its name"));
        }
        let file = IndexFile::open(repo.crypto(), &bytes, &what)?;
        drop(bytes);
        index.add_file(&file);
        files.push(f.name.parse()?);
    }
    Ok(LoadedIndex { index, files })
}

/// Every snapshot not in `ignore`; an unreadable one (not ignored) stops prune, since its
/// data might be needed.
pub(super) fn snapshots(
    repo: &Repository,
    ignore: &HashSet<SnapshotId>,
) -> Result<Vec<SnapshotEntry>> {
    let (snaps, bad) = repo.snapshots()?;
    if let Some((name, e)) = bad.into_iter().find(|(n, _)| {
        n.parse::<SnapshotId>()
            .map(|id| !ignore.contains(&id))
            .unwrap_or(true)
    }) {
        return Err(PruneError::SnapshotUnreadable {
            snapshot: name,
            reason: e.to_string(),
        }
        .into());
    }
    Ok(snaps
        .into_iter()
        .filter(|(id, _)| !ignore.contains(id))
        .collect())
}

/// Marks, for one snapshot at a time, the trees and data blobs its trees name.
struct Marker<'a, 's> {
    index: &'a Index,
    used: UsedSet<'a>,
    st: &'s mut PruneStats,
    snapshot: SnapshotId,
    missing: u64,
    first_missing: Option<String>,
}

impl Visitor for Marker<'_, '_> {
    fn tree(&mut self, id: &BlobId, _path: &[u8], tree: &Tree) -> Result<bool> {
        self.used.insert(id);
        self.st.trees += 1;
        for n in &tree.nodes {
            // Symlinks, FIFOs, sockets, devices: no data; folders are walked.
            if n.kind != NodeKind::File {
                continue;
            }
            for b in &n.content {
                if !self.index.contains(b) {
                    self.missing += 1;
                    self.first_missing.get_or_insert_with(|| {
                        format!(
                            "blob {} of {} in snapshot {}",
                            b.short(),
                            n.name.lossy(),
                            self.snapshot.short()
                        )
                    });
                } else {
                    self.used.insert(b);
                }
            }
        }
        Ok(true)
    }

    fn unreadable(&mut self, _id: &BlobId, _path: &[u8], e: RepoError) -> Result<()> {
        Err(PruneError::TreeUnreadable {
            snapshot: self.snapshot.short(),
            source: Box::new(e),
        }
        .into())
    }
}

/// Walk the trees of `snaps` and collect the blobs in use (trees and data); a used blob
/// missing from the index stops prune.
pub(super) fn mark<'a>(
    repo: &Repository,
    index: &'a Index,
    snaps: &[SnapshotEntry],
    st: &mut PruneStats,
) -> Result<UsedSet<'a>> {
    let mut walker = TreeWalker::new(repo, index);
    let mut m = Marker {
        index,
        used: UsedSet::new(index),
        st,
        snapshot: SnapshotId::default(),
        missing: 0,
        first_missing: None,
    };
    for (sid, s) in snaps {
        m.st.snapshots += 1;
        m.snapshot = *sid;
        walker.walk(s.tree, &mut m)?;
    }
    if m.missing > 0 {
        return Err(PruneError::BlobsNotIndexed {
            count: m.missing,
            first: m.first_missing.unwrap_or_default(),
        }
        .into());
    }
    Ok(m.used)
}
