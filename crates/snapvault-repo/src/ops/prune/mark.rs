//! Steps 1 and 2 of [`plan`](super::plan): load the index (one file at a time) and every
//! snapshot, then mark the blobs in use by walking every snapshot's trees.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;

use super::PruneStats;
use crate::error::{PruneError, RepoError, Result};
use crate::format::id::{BlobId, Id, SnapshotId};
use crate::format::tree::{NodeKind, Tree};
use crate::repository::index::{IdHasher, Index, IndexFile};
use crate::repository::walk::{TreeWalker, Visitor};
use crate::repository::{LoadedIndex, Repository, SnapshotEntry};
use crate::storage::FileKind;

/// Blobs in use, by the first 8 bytes of their id (ids are uniformly random). A prefix
/// shared with another blob can only make an unused blob look used (it is then kept), so
/// the saving (9 instead of 33 bytes a slot) costs no safety.
pub(super) struct UsedSet(HashSet<u64, BuildHasherDefault<IdHasher>>);

impl UsedSet {
    fn with_capacity(n: usize) -> UsedSet {
        UsedSet(HashSet::with_capacity_and_hasher(n, Default::default()))
    }
    fn key(id: &BlobId) -> u64 {
        let b = id.as_bytes();
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }
    fn insert(&mut self, id: &BlobId) {
        self.0.insert(Self::key(id));
    }
    pub(super) fn contains(&self, id: &BlobId) -> bool {
        self.0.contains(&Self::key(id))
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
struct Marker<'a> {
    index: &'a Index,
    used: UsedSet,
    st: &'a mut PruneStats,
    snapshot: SnapshotId,
    missing: u64,
    first_missing: Option<String>,
}

impl Visitor for Marker<'_> {
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
pub(super) fn mark(
    repo: &Repository,
    index: &Index,
    snaps: &[SnapshotEntry],
    st: &mut PruneStats,
) -> Result<UsedSet> {
    let mut walker = TreeWalker::new(repo, index);
    let mut m = Marker {
        index,
        used: UsedSet::with_capacity(index.blob_count()),
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
