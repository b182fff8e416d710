//! `repair`: rebuild the index from the packs themselves, rescue the intact blobs of
//! damaged packs, and write snapshots without the files whose data is lost.
//!
//! Write order (every crash leaves a repository `check` accepts):
//! 1. new packs (rescued blobs, rewritten trees) and their index;
//! 2. one index file naming every good pack, superseding all older index files;
//! 3. repaired snapshots;
//! 4. old index files removed; 5. damaged packs removed; 6. (`forget_damaged`) the
//!    original damaged snapshots removed.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::backend::FileKind;
use crate::blob::{self, BlobType, Compression, EncodedBlob};
use crate::checker::{CheckReport, read_header};
use crate::error::{RepoError, Result};
use crate::id::{BlobId, IndexId, PackId, SnapshotId};
use crate::index::{Index, IndexFile, IndexedPack};
use crate::pack::PackEntry;
use crate::packer::Packer;
use crate::repository::Repository;
use crate::snapshot::Snapshot;
use crate::tree::{NodeKind, Tree};

#[derive(Debug, Default, Serialize)]
pub struct SnapshotFix {
    pub snapshot: SnapshotId,
    /// Files (and folders whose listing is lost) left out of the repaired snapshot.
    pub removed: Vec<String>,
    /// The root tree itself is lost: nothing of this snapshot can be rebuilt.
    pub root_lost: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct RepairPlan {
    /// Damaged packs: their intact blobs are copied into new packs, then they are removed.
    pub salvage_packs: Vec<PackId>,
    /// Packs no index names whose header is readable: added to the index.
    pub adopt_packs: Vec<PackId>,
    /// Index files replaced by the rebuilt index.
    pub replace_index: Vec<IndexId>,
    /// Blobs with no good copy anywhere.
    pub lost_blobs: usize,
    pub snapshots: Vec<SnapshotFix>,
    /// Snapshot files that cannot be read at all.
    pub unreadable_snapshots: Vec<String>,
}

impl RepairPlan {
    pub fn is_empty(&self) -> bool {
        self.salvage_packs.is_empty()
            && self.adopt_packs.is_empty()
            && self.snapshots.is_empty()
            && self.unreadable_snapshots.is_empty()
            && self.lost_blobs == 0
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

/// Work out what to do from a full `check --read-data` report.
pub fn plan(repo: &Repository, report: &CheckReport) -> Result<RepairPlan> {
    let loaded = repo.load_index_lenient()?;
    let mut p = RepairPlan {
        salvage_packs: report.damaged_packs.iter().copied().collect(),
        replace_index: loaded.files.clone(),
        lost_blobs: report.bad_blobs.len(),
        ..RepairPlan::default()
    };
    p.salvage_packs.sort();
    for id in &report.unindexed_packs {
        let size = repo.backend().size(FileKind::Pack, &id.to_hex())?;
        if read_header(repo, id, size).is_err() {
            continue;
        }
        // A pack whose bytes are not its name is rescued blob by blob, not adopted.
        let intact = repo
            .backend()
            .read(FileKind::Pack, &id.to_hex())
            .is_ok_and(|b| crate::id::Id::hash_of(&b) == id.0);
        if intact {
            p.adopt_packs.push(*id);
        } else {
            p.salvage_packs.push(*id);
        }
    }
    let (snaps, bad) = repo.snapshots()?;
    p.unreadable_snapshots = bad.into_iter().map(|(n, _)| n).collect();
    let lost = &report.bad_blobs;
    for (sid, snap) in &snaps {
        let mut fix = SnapshotFix {
            snapshot: *sid,
            ..SnapshotFix::default()
        };
        if lost.contains(&snap.tree) || !loaded.index.contains(&snap.tree) {
            fix.root_lost = true;
        } else {
            collect_losses(repo, &loaded.index, &snap.tree, "", lost, &mut fix.removed)?;
        }
        if fix.root_lost || !fix.removed.is_empty() {
            p.snapshots.push(fix);
        }
    }
    Ok(p)
}

fn blob_lost(index: &Index, lost: &HashSet<BlobId>, id: &BlobId) -> bool {
    lost.contains(id) || !index.contains(id)
}

fn collect_losses(
    repo: &Repository,
    index: &Index,
    tree: &BlobId,
    prefix: &str,
    lost: &HashSet<BlobId>,
    out: &mut Vec<String>,
) -> Result<()> {
    let t = match repo.load_tree(index, tree) {
        Ok(t) => t,
        Err(_) => {
            out.push(format!("{prefix}/ (folder listing lost)"));
            return Ok(());
        }
    };
    for n in t.nodes {
        let p = if prefix.is_empty() {
            n.name.lossy()
        } else {
            format!("{prefix}/{}", n.name.lossy())
        };
        match (n.kind, n.subtree) {
            (NodeKind::Dir, Some(sub)) if blob_lost(index, lost, &sub) => {
                out.push(format!("{p}/ (folder listing lost)"))
            }
            (NodeKind::Dir, Some(sub)) => collect_losses(repo, index, &sub, &p, lost, out)?,
            (NodeKind::File, _) if n.content.iter().any(|b| blob_lost(index, lost, b)) => {
                out.push(p)
            }
            _ => {}
        }
    }
    Ok(())
}

/// Carry out a plan. `report` is the check the plan came from.
pub fn apply(
    repo: &Repository,
    report: &CheckReport,
    plan: &RepairPlan,
    parts: Parts,
    forget_damaged: bool,
) -> Result<RepairOutcome> {
    let mut out = RepairOutcome::default();
    let loaded = repo.load_index_lenient()?;
    let index = &loaded.index;
    let lost = &report.bad_blobs;
    let packer = Packer::start(
        repo.backend().clone(),
        repo.crypto().clone(),
        repo.config().pack_size as usize,
    );
    let tx = packer.sender();
    let bad_copies: HashSet<(BlobId, PackId)> = report.bad_copies.iter().copied().collect();
    let salvage: HashSet<PackId> = plan.salvage_packs.iter().copied().collect();

    // 1a. Rescue the intact blobs of damaged packs (indexed or not).
    if parts.index {
        let per_pack = index.entries_of_pack();
        let positions: HashMap<PackId, usize> = index
            .packs()
            .iter()
            .enumerate()
            .map(|(i, (p, _))| (*p, i))
            .collect();
        for pid in &plan.salvage_packs {
            let Ok(size) = repo.backend().size(FileKind::Pack, &pid.to_hex()) else {
                continue;
            };
            let mut entries: Vec<PackEntry> = read_header(repo, pid, size).unwrap_or_default();
            let indexed: &[(BlobId, crate::index::BlobLocation)] = match positions.get(pid) {
                Some(&pos) => &per_pack[pos],
                None => &[],
            };
            for (bid, loc) in indexed {
                if !entries
                    .iter()
                    .any(|e| e.id == *bid && e.offset == loc.offset)
                {
                    entries.push(PackEntry {
                        id: *bid,
                        typ: loc.typ(),
                        compressed: loc.compressed(),
                        offset: loc.offset,
                        length: loc.length,
                        raw_len: loc.raw_len,
                    });
                }
            }
            for e in entries {
                if bad_copies.contains(&(e.id, *pid)) {
                    out.blobs_dropped += 1;
                    continue;
                }
                let sealed = repo.backend().read_range(
                    FileKind::Pack,
                    &pid.to_hex(),
                    e.offset as u64,
                    e.length as usize,
                );
                let ok = sealed.as_ref().is_ok_and(|s| {
                    blob::decode(repo.crypto(), &e.id, e.compressed, e.raw_len, s).is_ok()
                });
                match (ok, sealed) {
                    (true, Ok(sealed)) => {
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
                    _ => out.blobs_dropped += 1,
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
            if fix.root_lost {
                continue;
            }
            let Some((_, snap)) = snaps.iter().find(|(id, _)| *id == fix.snapshot) else {
                continue;
            };
            if let Some(root) = rewrite(repo, index, lost, &snap.tree, &tx, &mut memo)? {
                rewritten.push((fix.snapshot, snap.clone(), root));
            }
        }
    }
    drop(tx);
    let packed = packer.finish()?;

    // 2. One index naming every good pack, superseding all others.
    if parts.index {
        let mut packs: Vec<IndexedPack> = Vec::new();
        let listed: HashMap<String, u64> = repo
            .backend()
            .list(FileKind::Pack)?
            .into_iter()
            .map(|f| (f.name, f.size))
            .collect();
        let mut candidates: Vec<(PackId, u64)> = index.packs().to_vec();
        for a in &plan.adopt_packs {
            if let Some(sz) = listed.get(&a.to_hex()) {
                candidates.push((*a, *sz));
            }
        }
        let fresh: HashSet<PackId> = packed.packs_written.iter().map(|p| p.id).collect();
        for (pid, _) in candidates {
            if salvage.contains(&pid) || fresh.contains(&pid) {
                continue;
            }
            let Some(&size) = listed.get(&pid.to_hex()) else {
                continue;
            };
            if let Ok(blobs) = read_header(repo, &pid, size) {
                packs.push(IndexedPack {
                    id: pid,
                    size,
                    blobs,
                });
            }
        }
        packs.extend(packed.packs_written.iter().cloned());
        let mut supersedes = loaded.files.clone();
        supersedes.extend(packed.index_files.iter().copied());
        repo.save_index(&IndexFile {
            supersedes: supersedes.clone(),
            packs,
        })?;
        // 4. and 5.
        for old in &supersedes {
            repo.backend().remove(FileKind::Index, &old.to_hex())?;
        }
        out.index_files_replaced = supersedes.len();
        for pid in &plan.salvage_packs {
            repo.backend().remove(FileKind::Pack, &pid.to_hex())?;
            out.packs_removed += 1;
        }
    }

    // 3. Repaired snapshots (their trees are indexed by now).
    for (old_id, snap, root) in rewritten {
        let mut s = snap.clone();
        s.tree = root;
        if !s.tags.iter().any(|t| t == "repaired") {
            s.tags.push("repaired".into());
        }
        let new_id = repo.save_snapshot(&s)?;
        out.snapshots_written.push((old_id, new_id));
        if forget_damaged {
            repo.backend()
                .remove(FileKind::Snapshot, &old_id.to_hex())?;
            out.snapshots_removed += 1;
        }
    }
    if forget_damaged && parts.snapshots {
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

/// Rewrite a tree without lost files; returns the new tree id (None: listing lost).
fn rewrite(
    repo: &Repository,
    index: &Index,
    lost: &HashSet<BlobId>,
    tree: &BlobId,
    tx: &crossbeam_channel::Sender<EncodedBlob>,
    memo: &mut HashMap<BlobId, Option<BlobId>>,
) -> Result<Option<BlobId>> {
    if let Some(r) = memo.get(tree) {
        return Ok(*r);
    }
    let Ok(t) = repo.load_tree(index, tree) else {
        memo.insert(*tree, None);
        return Ok(None);
    };
    let mut out = Tree::default();
    for mut n in t.nodes {
        match (n.kind, n.subtree) {
            (NodeKind::Dir, Some(sub)) => {
                if let Some(new) = rewrite(repo, index, lost, &sub, tx, memo)? {
                    n.subtree = Some(new);
                    out.nodes.push(n);
                }
            }
            (NodeKind::File, _) if n.content.iter().any(|b| blob_lost(index, lost, b)) => {}
            _ => out.nodes.push(n),
        }
    }
    let bytes = out.encode();
    let id = repo.crypto().blob_id(&bytes);
    if !index.contains(&id) || lost.contains(&id) {
        let e = blob::encode(
            repo.crypto(),
            id,
            BlobType::Tree,
            &bytes,
            Compression::Try(repo.config().compression_level),
        );
        tx.send(e)
            .map_err(|_| RepoError::Interrupted("the pack writer stopped".into()))?;
    }
    memo.insert(*tree, Some(id));
    Ok(Some(id))
}
