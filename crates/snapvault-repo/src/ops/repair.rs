//! `repair`: rebuild the index from what the packs really hold, rescue the intact blobs of
//! damaged packs, and write snapshots without the files whose data is lost.
//!
//! Loss is judged only against the [`Survey`] (every pack read and verified), never against
//! the index files: a lost or damaged index loses nothing, and a snapshot is rewritten only
//! for blobs proven missing or corrupt.
//!
//! Write order (every crash leaves a repository `check` accepts):
//! 1. new packs (rescued blobs, rewritten trees) and their index;
//! 2. one index file naming every good pack, superseding all older index files;
//! 3. repaired snapshots;
//! 4. old index files removed; 5. damaged packs removed; 6. (`forget_damaged`) the
//!    original damaged snapshots removed, and repaired copies no longer needed.
//!
//! Repair converges: a snapshot that already has its repaired copy (the same rewritten
//! tree) gets no second one, so a second `repair --apply` changes nothing. Lost data can
//! come back — from the source (the next snapshot stores the same photo under the same blob
//! id) or from another repository ([`crate::ops::heal`]) — and then the original is whole again
//! and its repaired copy, which holds nothing the original does not, is removed.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::Result;
use crate::format::blob::{self, EncodedBlob};
use crate::format::id::{BlobId, IndexId, PackId, SnapshotId};
use crate::format::snapshot::Snapshot;
use crate::format::tree::Tree;
use crate::ops::survey::{OldIndex, Survey};
use crate::repository::Repository;
use crate::repository::index::{Index, IndexFile};
use crate::repository::packer::Packer;
use crate::storage::FileKind;

mod copies;
mod trees;

use trees::{collect_losses, rewrite};

pub(crate) use copies::{REPAIRED, is_repaired_copy};
pub use copies::{Redundant, repaired_copy_of};

#[derive(Debug, Default, Serialize)]
pub struct SnapshotFix {
    pub snapshot: SnapshotId,
    /// Files (and folders whose listing is lost) left out of the repaired snapshot.
    pub removed: Vec<String>,
    /// Bytes of the files left out.
    pub bytes_removed: u64,
    /// The root tree itself is lost: nothing of this snapshot can be rebuilt.
    pub root_lost: bool,
    /// The repaired copy an earlier repair wrote (the same tree): none is written again.
    pub repaired_copy: Option<SnapshotId>,
}

/// A file whose data is (partly) lost: what another repository is searched for.
#[derive(Clone, Debug)]
pub struct LostFile {
    /// Its name (the last part of its path), to try files of that name first.
    pub name: String,
    pub size: u64,
    pub content: Vec<BlobId>,
}

#[derive(Debug, Default, Serialize)]
pub struct RepairPlan {
    /// Damaged packs: their intact blobs are copied into new packs, then they are removed.
    pub salvage_packs: Vec<PackId>,
    /// Intact packs no index names: added to the rebuilt index.
    pub adopt_packs: Vec<PackId>,
    /// Files in `data/` that are not provably this repository's packs: left in place.
    pub foreign_packs: Vec<PackId>,
    /// Index files that are damaged (all index files are replaced when the index is rebuilt).
    pub damaged_index_files: Vec<IndexId>,
    /// The index does not say what the packs hold: a new one is written from them.
    pub rebuild_index: bool,
    /// Index files replaced by the rebuilt index.
    pub replace_index: Vec<IndexId>,
    /// Blobs some snapshot uses that no pack holds intact.
    pub lost_blobs: usize,
    pub snapshots: Vec<SnapshotFix>,
    /// Snapshot files that are damaged (fail authentication or do not match their name).
    pub unreadable_snapshots: Vec<String>,
    /// Repaired copies no longer needed: removed.
    pub redundant_copies: Vec<Redundant>,
    /// The files whose data is lost, each distinct content once.
    #[serde(skip)]
    pub lost_files: Vec<LostFile>,
}

impl RepairPlan {
    /// Nothing is damaged or lost, and nothing is left over from an earlier repair.
    pub fn is_empty(&self) -> bool {
        self.salvage_packs.is_empty()
            && self.adopt_packs.is_empty()
            && !self.rebuild_index
            && self.snapshots.is_empty()
            && self.unreadable_snapshots.is_empty()
            && self.redundant_copies.is_empty()
            && self.lost_blobs == 0
    }

    /// Would applying it change anything? A damaged snapshot that has its repaired copy
    /// already needs nothing more, unless the originals are to be removed.
    pub fn has_work(&self, parts: Parts, forget_damaged: bool) -> bool {
        let index = parts.index
            && (!self.salvage_packs.is_empty()
                || !self.adopt_packs.is_empty()
                || self.rebuild_index);
        let snapshots = parts.snapshots
            && (!self.redundant_copies.is_empty()
                || self
                    .snapshots
                    .iter()
                    .any(|f| !f.root_lost && f.repaired_copy.is_none())
                || (forget_damaged
                    && (!self.snapshots.is_empty() || !self.unreadable_snapshots.is_empty())));
        index || snapshots
    }

    /// Data blobs of the lost files that no pack holds: what healing looks for.
    pub fn lost_data(&self, present: &Index) -> HashSet<BlobId> {
        self.lost_files
            .iter()
            .flat_map(|f| f.content.iter())
            .filter(|b| !present.contains(b))
            .copied()
            .collect()
    }
}

/// Blobs a plan counts as stored: those the survey found intact, and those another
/// repository is known to hold (a plan made before healing from it).
struct Holds<'a> {
    index: &'a Index,
    extra: &'a HashSet<BlobId>,
}

impl Holds<'_> {
    fn has(&self, b: &BlobId) -> bool {
        self.index.contains(b) || self.extra.contains(b)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Parts {
    pub index: bool,
    pub snapshots: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct RepairOutcome {
    pub blobs_rescued: u64,
    pub blobs_dropped: u64,
    pub packs_removed: usize,
    pub index_files_replaced: usize,
    pub snapshots_written: Vec<(SnapshotId, SnapshotId)>,
    pub snapshots_removed: usize,
}

/// Work out what to do from the survey of the packs and the index files as they are.
/// Reads trees (through the surveyed index); a read that fails for lack of storage stops it.
pub fn plan(repo: &Repository, survey: &Survey, old: &OldIndex) -> Result<RepairPlan> {
    plan_with(repo, survey, old, &HashSet::new())
}

/// [`plan`], counting the data blobs in `extra` as stored (found in another repository,
/// to be stored here again).
pub fn plan_with(
    repo: &Repository,
    survey: &Survey,
    old: &OldIndex,
    extra: &HashSet<BlobId>,
) -> Result<RepairPlan> {
    let mut p = RepairPlan {
        salvage_packs: survey.damaged.iter().map(|d| d.id).collect(),
        adopt_packs: survey
            .intact
            .iter()
            .filter(|i| !old.index.has_pack(&i.id))
            .map(|i| i.id)
            .collect(),
        foreign_packs: survey.foreign.clone(),
        damaged_index_files: old.damaged.clone(),
        ..RepairPlan::default()
    };
    if !survey.agrees_with(old) {
        p.rebuild_index = true;
        p.replace_index = old.files.clone();
    }
    let (snaps, bad) = repo.snapshots()?;
    for (name, e) in bad {
        if e.is_unavailable() {
            return Err(e);
        }
        p.unreadable_snapshots.push(name);
    }
    let holds = Holds {
        index: &survey.index,
        extra,
    };
    let mut losses = Losses::default();
    let mut roots: HashMap<BlobId, Option<BlobId>> = HashMap::new();
    for (sid, snap) in &snaps {
        let mut fix = SnapshotFix {
            snapshot: *sid,
            ..SnapshotFix::default()
        };
        match load_tree(repo, holds.index, &snap.tree)? {
            None => {
                losses.blobs.insert(snap.tree);
                fix.root_lost = true;
            }
            Some(_) => {
                collect_losses(repo, &holds, &snap.tree, &mut losses)?;
                let removed = losses.memo.get(&snap.tree).cloned().unwrap_or_default();
                fix.bytes_removed = removed.iter().map(|(_, b)| b).sum();
                fix.removed = removed.into_iter().map(|(p, _)| p).collect();
            }
        }
        if !fix.root_lost && !fix.removed.is_empty() {
            // The tree a repaired copy gets; an earlier repair may have written it.
            if let Some(root) = rewrite(repo, &holds, &snap.tree, None, &mut roots)? {
                fix.repaired_copy = snaps
                    .iter()
                    .find(|(i, s)| i != sid && s.tree == root && is_repaired_copy(s, snap))
                    .map(|(i, _)| *i);
            }
        }
        if fix.root_lost || !fix.removed.is_empty() {
            p.snapshots.push(fix);
        }
    }
    let damaged: Vec<SnapshotId> = p.snapshots.iter().map(|f| f.snapshot).collect();
    p.redundant_copies = copies::redundant_copies(repo, holds.index, &snaps, &damaged)?;
    p.lost_blobs = losses.blobs.len();
    p.lost_files = losses.files.into_values().collect();
    p.lost_files
        .sort_by(|a, b| (&a.name, a.size).cmp(&(&b.name, b.size)));
    Ok(p)
}

/// What `collect_losses` finds.
#[derive(Default)]
struct Losses {
    blobs: HashSet<BlobId>,
    /// Per tree: the files (and folders whose listing is lost) under it whose data is
    /// lost, as paths relative to it with their sizes.
    memo: HashMap<BlobId, Vec<(String, u64)>>,
    /// Lost files by content.
    files: HashMap<Vec<BlobId>, LostFile>,
}

/// A tree from the surveyed index: `None` when it is proven lost (missing or corrupt);
/// an error when storage could not be read.
fn load_tree(repo: &Repository, index: &Index, id: &BlobId) -> Result<Option<Tree>> {
    match repo.load_tree(index, id) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.is_unavailable() => Err(e),
        Err(_) => Ok(None),
    }
}

/// Carry out a plan made from `survey`.
pub fn apply(
    repo: &Repository,
    survey: &Survey,
    plan: &RepairPlan,
    parts: Parts,
    forget_damaged: bool,
) -> Result<RepairOutcome> {
    let mut out = RepairOutcome::default();
    let none = HashSet::new();
    let holds = Holds {
        index: &survey.index,
        extra: &none,
    };
    let packer = Packer::start(
        repo.backend().clone(),
        repo.crypto().clone(),
        repo.config().pack_size as usize,
    );
    let tx = packer.sender();
    let rebuild = parts.index && plan.rebuild_index;

    // 1a. Copy the intact blobs of damaged packs into new packs. A blob with an intact copy
    // in a good pack needs no rescue.
    if rebuild {
        let intact: HashSet<BlobId> = survey
            .intact
            .iter()
            .flat_map(|p| p.blobs.iter().map(|e| e.id))
            .collect();
        let mut sent: HashSet<BlobId> = HashSet::new();
        for d in &survey.damaged {
            out.blobs_dropped += d.bad.len() as u64;
            for e in &d.rescuable {
                if intact.contains(&e.id) || !sent.insert(e.id) {
                    continue;
                }
                let sealed = repo.backend().read_range(
                    FileKind::Pack,
                    &d.id.to_hex(),
                    e.offset as u64,
                    e.length as usize,
                )?;
                // Checked again: the pack was read whole a moment ago, but what is copied
                // must be what was verified.
                blob::decode(repo.crypto(), &e.id, e.compressed, e.raw_len, &sealed)?;
                out.blobs_rescued += 1;
                let b = EncodedBlob {
                    id: e.id,
                    typ: e.typ,
                    raw_len: e.raw_len,
                    compressed: e.compressed,
                    sealed,
                };
                if tx.send(b).is_err() {
                    break;
                }
            }
        }
    }

    // 1b. Rewritten trees for snapshots that lost files.
    let mut rewritten: Vec<(SnapshotId, Snapshot, BlobId)> = Vec::new();
    if parts.snapshots {
        let (snaps, _) = repo.snapshots()?;
        let mut memo: HashMap<BlobId, Option<BlobId>> = HashMap::new();
        for fix in &plan.snapshots {
            if fix.root_lost || fix.repaired_copy.is_some() {
                continue;
            }
            let Some((_, snap)) = snaps.iter().find(|(id, _)| *id == fix.snapshot) else {
                continue;
            };
            if let Some(root) = rewrite(repo, &holds, &snap.tree, Some(&tx), &mut memo)? {
                rewritten.push((fix.snapshot, snap.clone(), root));
            }
        }
    }
    drop(tx);
    let flushed = packer.flush()?;
    // Every pack repair writes is durable: the parity of the last of them is written now,
    // on the parity thread beside the index and snapshot files below and under repair's
    // lock, not after the command (format.md §15.5).
    repo.backend().packs_done();
    let packed = flushed.write_index()?;

    // 2. One index naming every good pack, superseding all others.
    if rebuild {
        let mut packs = survey.intact.clone();
        packs.extend(packed.packs_written.iter().cloned());
        let mut supersedes = plan.replace_index.clone();
        supersedes.extend(packed.index_files.iter().copied());
        repo.save_index(&IndexFile {
            supersedes: supersedes.clone(),
            packs,
        })?;
        // 4. and 5.
        for old in &supersedes {
            repo.backend().remove(FileKind::Index, &old.to_hex())?;
        }
        out.index_files_replaced = plan.replace_index.len();
        for pid in &plan.salvage_packs {
            repo.backend().remove(FileKind::Pack, &pid.to_hex())?;
            out.packs_removed += 1;
        }
    }

    // 3. Repaired snapshots (their trees are indexed by now), counting only what they hold.
    for (old_id, snap, root) in rewritten {
        let mut s = snap.clone();
        s.tree = root;
        if !s.tags.iter().any(|t| t == REPAIRED) {
            s.tags.push(REPAIRED.into());
        }
        if let Some(fix) = plan.snapshots.iter().find(|f| f.snapshot == old_id) {
            let files = fix.removed.iter().filter(|p| !p.contains("/ (")).count() as u64;
            s.summary.files_total = s.summary.files_total.saturating_sub(files);
            s.summary.bytes_total = s.summary.bytes_total.saturating_sub(fix.bytes_removed);
        }
        let new_id = repo.save_snapshot(&s)?;
        out.snapshots_written.push((old_id, new_id));
    }
    if !parts.snapshots {
        return Ok(out);
    }
    // 6. Repaired copies no longer needed; then (with forget_damaged) the originals that
    // have a repaired copy now.
    for r in &plan.redundant_copies {
        repo.backend()
            .remove(FileKind::Snapshot, &r.copy.to_hex())?;
        out.snapshots_removed += 1;
    }
    if forget_damaged {
        let written: HashSet<SnapshotId> = out.snapshots_written.iter().map(|(o, _)| *o).collect();
        for fix in &plan.snapshots {
            if written.contains(&fix.snapshot) || fix.repaired_copy.is_some() {
                repo.backend()
                    .remove(FileKind::Snapshot, &fix.snapshot.to_hex())?;
                out.snapshots_removed += 1;
            }
        }
        for fix in plan.snapshots.iter().filter(|f| f.root_lost) {
            repo.backend()
                .remove(FileKind::Snapshot, &fix.snapshot.to_hex())?;
            out.snapshots_removed += 1;
        }
        for name in &plan.unreadable_snapshots {
            repo.backend().remove(FileKind::Snapshot, name)?;
            out.snapshots_removed += 1;
        }
    }
    Ok(out)
}
