//! Copying snapshots into another repository that has its own keys (`snapvault copy`).
//!
//! Blob ids are keyed per repository, so every blob is re-identified: its plaintext is read
//! from the source, hashed under the destination's id key, and sealed and packed (by the
//! ordinary [`Packer`]) only when the destination lacks it. Chunk boundaries stay those of
//! the source. Trees are rewritten with the new ids in post-order, then the snapshot is
//! saved with the same metadata and `original` set to the source snapshot's id (or to its
//! own `original`, when it is a copy itself, as restic does: a copy of a copy is
//! recognised as the same snapshot).
//!
//! A destination snapshot whose `original` names a source snapshot, and which agrees with it
//! on time, host, user, source and tags, *is* its copy: that snapshot is skipped, and the
//! two trees are walked in lockstep (`learn_pair`, reading only tree blobs) to learn
//! which destination id each source tree and data blob has. A subtree found in that
//! `BlobMap` is not read again, and a data blob found there is neither read nor hashed,
//! so a nightly copy transfers only what the destination truly lacks.
//!
//! Write order is the repository's: one packer per snapshot, whose packs and index files
//! are written before that snapshot. An interrupted copy leaves the snapshots copied so far
//! complete and, at worst, packs no snapshot uses yet; a re-run reuses them.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam_channel::Sender;

use crate::error::{Interruption, RepoError, Result, Worker};
use crate::format::blob::{self, BlobType, Compression, EncodedBlob};
use crate::format::id::{BlobId, SnapshotId};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, Tree};
use crate::repository::index::Index;
use crate::repository::packer::Packer;
use crate::repository::walk::{TreeWalker, Visitor};
use crate::repository::{Repository, SnapshotEntry, parallel_map};

mod learn;

pub(crate) use learn::{BlobMap, learn_pair};

pub use crate::ops::observe::CopyObserver;

/// What copying one snapshot did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Blobs (data and trees) stored in the destination, and their stored bytes.
    pub blobs_copied: u64,
    pub bytes_copied: u64,
    /// Data blobs read from the source (the others were known to be in the destination).
    pub blobs_read: u64,
    pub bytes_read: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Written to the destination under this id.
    Copied(SnapshotId),
    /// The destination has it already, under this id.
    Skipped(SnapshotId),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyResult {
    pub source: SnapshotId,
    pub outcome: Outcome,
    pub stats: CopyStats,
}

/// The id a snapshot is known by across copies: its `original`, or its own.
pub fn identity(id: &SnapshotId, s: &Snapshot) -> SnapshotId {
    s.original.unwrap_or(*id)
}

/// Do two snapshots (one a copy of the other) describe the same backup?
fn same_backup(a: &Snapshot, b: &Snapshot) -> bool {
    a.time == b.time
        && a.hostname == b.hostname
        && a.username == b.username
        && a.source == b.source
        && a.tags == b.tags
}

/// The destination's snapshots by identity.
struct Copies(HashMap<SnapshotId, Vec<SnapshotEntry>>);

impl Copies {
    fn new(dst: Vec<SnapshotEntry>) -> Copies {
        let mut m: HashMap<SnapshotId, Vec<SnapshotEntry>> = HashMap::new();
        for (id, s) in dst {
            m.entry(identity(&id, &s)).or_default().push((id, s));
        }
        Copies(m)
    }

    /// The destination snapshot that is a copy of this source snapshot, if any.
    fn of(&self, id: &SnapshotId, s: &Snapshot) -> Option<&SnapshotEntry> {
        self.0
            .get(&identity(id, s))?
            .iter()
            .find(|(_, d)| same_backup(d, s))
    }

    fn add(&mut self, id: SnapshotId, s: Snapshot) {
        self.0.entry(identity(&id, &s)).or_default().push((id, s));
    }
}

/// The two repositories of a copy, with their indexes (the destination's grows as packs
/// are written).
pub struct Repos<'a> {
    pub src: &'a Repository,
    pub src_index: &'a Index,
    pub dst: &'a Repository,
    pub dst_index: Index,
}

/// Copy the `selected` source snapshots (oldest first) into the destination. `all_src` is
/// every source snapshot (for parents and for learning from earlier copies). Snapshots
/// the destination has already are skipped.
pub fn copy(
    mut r: Repos<'_>,
    all_src: &[SnapshotEntry],
    selected: &[SnapshotId],
    observer: &dyn CopyObserver,
) -> Result<Vec<CopyResult>> {
    if r.src.config().id == r.dst.config().id {
        return Err(RepoError::CopyToItself);
    }
    let by_id: HashMap<SnapshotId, &Snapshot> = all_src.iter().map(|(i, s)| (*i, s)).collect();
    let (dst_snaps, _) = r.dst.snapshots()?;
    let mut copies = Copies::new(dst_snaps);
    let todo = selected
        .iter()
        .filter(|id| by_id.get(*id).is_some_and(|s| copies.of(id, s).is_none()))
        .count();
    // Learn from every earlier copy, but only when there is something to copy.
    let mut map = BlobMap::default();
    if todo > 0 {
        let pairs = all_src.iter().filter(|(i, s)| copies.of(i, s).is_some());
        observer.learning(pairs.count());
        for (id, s) in all_src.iter().rev() {
            if let Some((_, d)) = copies.of(id, s) {
                learn_pair(
                    r.src,
                    r.src_index,
                    r.dst,
                    &r.dst_index,
                    s.tree,
                    d.tree,
                    &mut map,
                );
            }
        }
    }
    let mut out = Vec::with_capacity(selected.len());
    let mut n = 0;
    for id in selected {
        let snap = *by_id
            .get(id)
            .ok_or_else(|| RepoError::NoSuchSnapshot(id.to_hex()))?;
        if let Some((existing, _)) = copies.of(id, snap) {
            out.push(CopyResult {
                source: *id,
                outcome: Outcome::Skipped(*existing),
                stats: CopyStats::default(),
            });
            continue;
        }
        observer.snapshot_started(n, todo, id);
        n += 1;
        let (root, stats) = copy_tree_packed(&mut r, &mut map, snap.tree, observer, n == todo)?;
        let mut new = snap.clone();
        new.tree = root;
        new.original = Some(identity(id, snap));
        // Parent links point at destination snapshots, or nowhere.
        new.parent = snap.parent.and_then(|p| {
            let ps = by_id.get(&p)?;
            copies.of(&p, ps).map(|(d, _)| *d)
        });
        let new_id = r.dst.save_snapshot(&new)?;
        copies.add(new_id, new);
        out.push(CopyResult {
            source: *id,
            outcome: Outcome::Copied(new_id),
            stats,
        });
    }
    Ok(out)
}

/// Copy one snapshot's tree with its own packer; the packs and their index files are
/// written (and added to the destination index) when this returns. After the `last`
/// snapshot's packs the destination is told that no more come
/// ([`crate::storage::Backend::packs_done`]): its parity guard writes the last group's
/// parity beside the last index and snapshot files, under the copy's lock.
fn copy_tree_packed(
    r: &mut Repos<'_>,
    map: &mut BlobMap,
    root: BlobId,
    observer: &dyn CopyObserver,
    last: bool,
) -> Result<(BlobId, CopyStats)> {
    let dst = r.dst;
    let packer = Packer::start(
        dst.backend().clone(),
        dst.crypto().clone(),
        dst.config().pack_size as usize,
    );
    let walk = {
        let w = TreeCopier {
            src: r.src,
            src_index: r.src_index,
            dst,
            dst_index: &r.dst_index,
            tx: packer.sender(),
            claimed: Mutex::new(HashSet::new()),
            stats: Stats::default(),
            observer,
            plain_ids: !r.src.crypto().is_encrypted() && !dst.crypto().is_encrypted(),
        };
        let root = w.tree(map, root);
        drop(w.tx);
        root.map(|id| (id, w.stats.get()))
    };
    // A failed pack or index write is why the walk saw "the pack writer stopped".
    let flushed = packer.flush()?;
    if last {
        dst.backend().packs_done();
    }
    let written = flushed.write_index()?;
    let (root, stats) = walk?;
    for p in &written.packs_written {
        r.dst_index.add_pack(p.id, p.size, &p.blobs);
    }
    Ok((root, stats))
}

#[derive(Default)]
struct Stats {
    blobs_copied: AtomicU64,
    bytes_copied: AtomicU64,
    blobs_read: AtomicU64,
    bytes_read: AtomicU64,
}

impl Stats {
    fn get(&self) -> CopyStats {
        CopyStats {
            blobs_copied: self.blobs_copied.load(Relaxed),
            bytes_copied: self.bytes_copied.load(Relaxed),
            blobs_read: self.blobs_read.load(Relaxed),
            bytes_read: self.bytes_read.load(Relaxed),
        }
    }
}

struct TreeCopier<'a> {
    src: &'a Repository,
    src_index: &'a Index,
    dst: &'a Repository,
    dst_index: &'a Index,
    tx: Sender<EncodedBlob>,
    /// Blobs sent to the packer in this run (not in `dst_index` yet).
    claimed: Mutex<HashSet<BlobId>>,
    stats: Stats,
    observer: &'a dyn CopyObserver,
    /// Both repositories unencrypted: ids are plain BLAKE3 in both, so equal.
    plain_ids: bool,
}

impl TreeCopier<'_> {
    fn has(&self, id: &BlobId) -> bool {
        self.dst_index.contains(id) || self.claimed.lock().is_ok_and(|c| c.contains(id))
    }

    /// The destination id of a source blob, when the destination is known to hold it.
    fn known(&self, map: &BlobMap, id: &BlobId) -> Option<BlobId> {
        match map.get(id) {
            Some(d) if self.has(d) => Some(*d),
            _ if self.plain_ids && self.has(id) => Some(*id),
            _ => None,
        }
    }

    /// Claim a destination blob for storing: false when it is stored or being stored.
    fn claim(&self, id: &BlobId) -> Result<bool> {
        if self.dst_index.contains(id) {
            return Ok(false);
        }
        self.claimed
            .lock()
            .map(|mut c| c.insert(*id))
            .map_err(|_| RepoError::Interrupted(Interruption::Poisoned))
    }

    fn store(&self, e: EncodedBlob) -> Result<()> {
        self.stats.blobs_copied.fetch_add(1, Relaxed);
        self.stats
            .bytes_copied
            .fetch_add(e.sealed.len() as u64, Relaxed);
        self.tx
            .send(e)
            .map_err(|_| RepoError::Interrupted(Interruption::WorkerStopped(Worker::PackWriter)))
    }

    /// Copy the tree `root` and everything under it; returns its new id. A walk of the
    /// tree walker (each tree once; a tree the destination holds already is not entered):
    /// a folder's chunks are copied when its listing is read, the listing itself, with
    /// the new ids, once everything under it is copied (post-order).
    fn tree(&self, map: &mut BlobMap, root: BlobId) -> Result<BlobId> {
        if let Some(d) = self.known(map, &root) {
            return Ok(d);
        }
        let mut v = CopyTrees {
            c: self,
            map,
            open: Vec::new(),
        };
        TreeWalker::new(self.src, self.src_index).walk(root, &mut v)?;
        self.known(map, &root)
            .ok_or_else(|| RepoError::MissingBlob(root.to_hex()))
    }

    /// The chunks of the folder `tree` not in the destination yet, each once, on a few
    /// threads.
    fn chunks(&self, map: &mut BlobMap, tree: &Tree) -> Result<()> {
        let mut seen = HashSet::new();
        let mut todo = Vec::new();
        for n in &tree.nodes {
            for c in &n.content {
                match self.known(map, c) {
                    Some(_) => {
                        let size = self.src_index.get(c).map_or(0, |l| l.raw_len as u64);
                        self.observer.blob_done(size, 0);
                    }
                    None if seen.insert(*c) => todo.push(*c),
                    None => {}
                }
            }
        }
        for r in parallel_map(&todo, |c| self.data_blob(c)) {
            let (s, d) = r?;
            map.insert(s, d);
        }
        Ok(())
    }

    /// Store the folder listing `tree` (source id `id`) with every id replaced by its
    /// destination id; everything under it is copied.
    fn listing(&self, map: &mut BlobMap, id: BlobId, mut tree: Tree) -> Result<()> {
        for n in &mut tree.nodes {
            for c in n.content.iter_mut().chain(n.subtree.as_mut()) {
                let s = *c;
                *c = self
                    .known(map, &s)
                    .ok_or_else(|| RepoError::MissingBlob(s.to_hex()))?;
            }
        }
        let bytes = tree.encode();
        let new = self.dst.crypto().blob_id(&bytes);
        if self.claim(&new)? {
            let level = self.dst.config().compression_level;
            let e = blob::encode(
                self.dst.crypto(),
                new,
                BlobType::Tree,
                &bytes,
                Compression::Try(level),
            );
            self.store(e)?;
        }
        map.insert(id, new);
        Ok(())
    }

    /// Read one data blob from the source and store it in the destination unless it is
    /// there already; returns (source id, destination id).
    fn data_blob(&self, id: &BlobId) -> Result<(BlobId, BlobId)> {
        let loc = self
            .src_index
            .get(id)
            .ok_or_else(|| RepoError::MissingBlob(id.to_hex()))?;
        let plain = self.src.read_blob(self.src_index, id)?;
        let size = plain.len() as u64;
        self.stats.blobs_read.fetch_add(1, Relaxed);
        self.stats.bytes_read.fetch_add(size, Relaxed);
        let new = self.dst.crypto().blob_id(&plain);
        if self.claim(&new)? {
            // Stored compressed in the source: worth a try; otherwise (media, or a failed
            // trial) not.
            let compression = if loc.compressed() {
                Compression::Try(self.dst.config().compression_level)
            } else {
                Compression::Never
            };
            let e = blob::encode(self.dst.crypto(), new, BlobType::Data, &plain, compression);
            drop(plain);
            self.store(e)?;
        }
        self.observer.blob_done(size, size);
        Ok((*id, new))
    }
}

#[cfg(test)]
mod tests;

/// The walk of [`TreeCopier::tree`].
struct CopyTrees<'c, 'm> {
    c: &'c TreeCopier<'c>,
    map: &'m mut BlobMap,
    /// The listings entered and not yet stored, innermost last.
    open: Vec<Tree>,
}

impl Visitor for CopyTrees<'_, '_> {
    /// A folder the destination holds already is not entered.
    fn entry(&mut self, _: &[u8], n: &Node) -> Result<bool> {
        Ok(n.subtree
            .is_none_or(|sub| self.c.known(self.map, &sub).is_none()))
    }

    fn tree(&mut self, _: &BlobId, _: &[u8], tree: &Tree) -> Result<bool> {
        self.c.chunks(self.map, tree)?;
        self.open.push(tree.clone());
        Ok(true)
    }

    fn leave(&mut self, id: &BlobId, _: &[u8], _: Option<&Node>) -> Result<()> {
        let tree = self.open.pop().unwrap_or_default();
        self.c.listing(self.map, *id, tree)
    }

    fn unreadable(&mut self, _: &BlobId, _: &[u8], e: RepoError) -> Result<()> {
        Err(e)
    }
}
