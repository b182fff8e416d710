//! `prune`: reclaim the space of data no snapshot uses any more.
//!
//! [`plan`] reads and changes nothing but memory:
//! 1. load the index and every snapshot (an unreadable snapshot stops prune: its data might
//!    be needed);
//! 2. mark: walk every snapshot's trees and collect the ids of the blobs in use (trees and
//!    data) in a hash set; a used blob missing from the index stops prune;
//! 3. classify every indexed pack as fully used (kept), unused (removed) or partly used;
//!    copies of a blob stored more than once count as unused except one (the first that
//!    verifies, so a damaged copy never wins over a good one);
//! 4. choose partly used packs to repack: tree packs always, then data packs with the
//!    largest unused share first, until the unused space left is at most `--max-unused`,
//!    never more than `--max-repack` bytes of packs;
//! 5. packs that no index names (left by interrupted snapshots or prunes) are removed once
//!    older than a safety margin.
//!
//! [`execute`] then writes in the order that keeps every instant safe (invariant 2):
//! new packs (the used blobs of repacked packs, sealed bytes copied as they are after each
//! was verified) → new index files naming every kept and new pack, the last one listing the
//! old index files in `supersedes` → delete the old index files → delete the removed and
//! repacked packs → delete old unindexed packs and leftover temporary files. A crash before
//! the old index files are gone leaves duplicates (harmless); after, only unindexed packs.
//!
//! Memory: the index (see `index.rs`; ≈ 60 bytes per blob) plus the set of blobs in use,
//! one bit per indexed blob, plus ≈ 100 bytes per pack and one pack being read and two
//! being written (≈ 3 × 16 MiB). Nothing grows with the bytes stored; 10 million blobs
//! prune in 622 MiB (docs/benchmarks.md, *On paper, at scale*).

mod apply;
mod choose;
mod classify;
mod limits;
mod mark;
mod unindexed;

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::Result;
use crate::format::id::{IndexId, PackId, SnapshotId};
use crate::format::pack::PackEntry;
use crate::repository::Repository;
use crate::repository::index::IdMap;
use crate::storage::FileKind;

pub use apply::{PruneReport, execute};
pub use limits::{MaxUnused, parse_age, parse_max_repack, parse_max_unused};

pub(crate) use crate::format::index_file::MAX_INDEX_BLOBS;

#[derive(Clone, Debug)]
pub struct PruneOptions {
    pub max_unused: MaxUnused,
    /// Most bytes of packs to repack in one run; None = no limit.
    pub max_repack: Option<u64>,
    /// Packs no index names are deleted only when at least this old (seconds). Prune holds
    /// the exclusive lock, so no snapshot can be writing them; the margin guards against a
    /// writer that lost its lock (say, a process paused for longer than the lock lease).
    pub unindexed_min_age: u64,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            max_unused: MaxUnused::Percent(5.0),
            max_repack: None,
            unindexed_min_age: 3600,
        }
    }
}

/// What prune found and plans to do (bytes are stored, i.e. sealed, sizes).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneStats {
    pub snapshots: usize,
    /// Distinct trees walked.
    pub trees: u64,
    pub packs: u64,
    pub pack_bytes: u64,
    /// Index entries (a blob stored twice counts twice).
    pub blobs: u64,
    pub used_blobs: u64,
    pub used_bytes: u64,
    pub unused_blobs: u64,
    pub unused_bytes: u64,
    /// Extra copies of blobs stored more than once (included in unused).
    pub duplicate_blobs: u64,
    pub duplicate_bytes: u64,
    /// Header and trailer bytes of packs.
    pub overhead_bytes: u64,
    pub remove_packs: u64,
    pub remove_bytes: u64,
    pub repack_packs: u64,
    pub repack_bytes: u64,
    /// Used blobs copied out of repacked packs.
    pub repack_blobs: u64,
    pub repack_copy_bytes: u64,
    pub keep_packs: u64,
    pub keep_bytes: u64,
    /// Unused bytes left in kept packs after prune.
    pub unused_after_bytes: u64,
    /// The limit `--max-unused` translated into bytes.
    pub max_unused_bytes: u64,
    pub unindexed_packs: u64,
    pub unindexed_bytes: u64,
    pub unindexed_remove_packs: u64,
    pub unindexed_remove_bytes: u64,
    /// Files in `data/` that are not packs of this repository (someone else's): left alone.
    pub foreign_files: u64,
    pub index_files: usize,
    /// Bytes that will be freed: removed + repacked + unindexed removed − copied.
    pub estimated_freed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Keep,
    Remove,
    Repack,
}

#[derive(Clone, Debug)]
struct PackInfo {
    id: PackId,
    size: u64,
    used_blobs: u32,
    used_bytes: u64,
    unused_blobs: u32,
    unused_bytes: u64,
    has_tree: bool,
    action: Action,
}

/// The result of [`plan`]; [`execute`] carries it out.
pub struct PrunePlan {
    pub stats: PruneStats,
    packs: Vec<PackInfo>,
    pos_of: IdMap<PackId, u32>,
    /// Per repacked pack (by position): its used blobs in offset order.
    repack: Vec<(u32, Vec<PackEntry>)>,
    unindexed_remove: Vec<(String, u64)>,
    old_index: Vec<IndexId>,
    /// Minimum age of unindexed packs and temporary files to delete.
    min_age: u64,
}

impl PrunePlan {
    /// Nothing to delete or rewrite.
    pub fn is_noop(&self) -> bool {
        !self.rewrites_index() && self.unindexed_remove.is_empty()
    }

    fn rewrites_index(&self) -> bool {
        self.packs.iter().any(|p| p.action != Action::Keep)
    }

    /// Each indexed pack with its fate (for `--dry-run --verbose`, tests).
    pub fn pack_actions(&self) -> Vec<(PackId, Action, u64, u64)> {
        self.packs
            .iter()
            .map(|p| (p.id, p.action, p.used_bytes, p.unused_bytes))
            .collect()
    }
}

pub use crate::ops::observe::{PruneObserver, PruneWarning};

/// Work out what prune would do. Snapshots in `ignore` count as already removed (for
/// `forget --prune --dry-run`). Reads only. The steps are those of the module doc, one
/// submodule each.
pub fn plan(
    repo: &Repository,
    opts: &PruneOptions,
    ignore: &HashSet<SnapshotId>,
    obs: &dyn PruneObserver,
) -> Result<PrunePlan> {
    let mut st = PruneStats::default();
    obs.step("loading index and snapshots");
    let listed: HashMap<String, u64> = repo
        .backend()
        .list(FileKind::Pack)?
        .into_iter()
        .map(|f| (f.name, f.size))
        .collect();
    let loaded = mark::load_index_lean(repo)?;
    let index = &loaded.index;
    st.index_files = loaded.files.len();
    let snaps = mark::snapshots(repo, ignore)?;

    obs.step("marking used blobs");
    let used = mark::mark(repo, index, &snaps, &mut st)?;

    obs.step("classifying packs");
    let in_use = classify::InUse::new(repo, index, used, &listed);
    let (mut packs, pos_of) = classify::pack_infos(index, &in_use, &listed, &mut st)?;

    choose::decide_repacks(&mut packs, opts, &mut st);
    let repack = choose::repack_entries(index, &packs, &in_use);
    drop(in_use);
    choose::tally(&packs, &listed, &mut st);

    let unindexed_remove = unindexed::old_unindexed(repo, index, &listed, opts, &mut st);
    st.estimated_freed = (st.remove_bytes + st.repack_bytes + st.unindexed_remove_bytes)
        .saturating_sub(st.repack_copy_bytes);
    Ok(PrunePlan {
        stats: st,
        packs,
        pos_of,
        repack,
        unindexed_remove,
        old_index: loaded.files,
        min_age: opts.unindexed_min_age,
    })
}

#[cfg(test)]
pub(crate) mod tests;
