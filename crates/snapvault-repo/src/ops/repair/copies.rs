//! Repaired copies: which snapshot `repair` wrote for which, so a second run writes no
//! second copy, and a copy no longer needed (its original is whole again, healed from the
//! source or another repository) is recognised.

use std::collections::HashMap;

use crate::error::Result;
use crate::format::id::{BlobId, SnapshotId};
use crate::format::snapshot::Snapshot;
use crate::format::tree::NodeKind;
use crate::repository::index::Index;
use crate::repository::{Repository, SnapshotEntry};

/// The tag `repair` gives the snapshots it writes.
pub(crate) const REPAIRED: &str = "repaired";

fn tags_but_repaired(s: &Snapshot) -> Vec<&str> {
    let mut t: Vec<&str> = s
        .tags
        .iter()
        .map(String::as_str)
        .filter(|t| *t != REPAIRED)
        .collect();
    t.sort_unstable();
    t
}

/// Is `copy` a repaired copy `repair` wrote of the original `of`? The copy has the
/// original's time, host, user, source and tags, plus the `repaired` tag.
pub(crate) fn is_repaired_copy(copy: &Snapshot, of: &Snapshot) -> bool {
    copy.tags.iter().any(|t| t == REPAIRED)
        && !of.tags.iter().any(|t| t == REPAIRED)
        && copy.time == of.time
        && copy.hostname == of.hostname
        && copy.username == of.username
        && copy.source == of.source
        && tags_but_repaired(copy) == tags_but_repaired(of)
}

/// A repaired copy of snapshot `id` among `all`, if there is one.
pub fn repaired_copy_of(all: &[SnapshotEntry], id: &SnapshotId) -> Option<SnapshotId> {
    let (_, of) = all.iter().find(|(i, _)| i == id)?;
    all.iter()
        .find(|(i, s)| i != id && is_repaired_copy(s, of))
        .map(|(i, _)| *i)
}

/// A repaired copy that holds nothing its original (or another copy) does not.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Redundant {
    pub copy: SnapshotId,
    pub of: SnapshotId,
    /// The original is whole again (else: `of` is an identical repaired copy, kept).
    pub original_whole: bool,
}

/// Repaired copies no longer needed: the original is whole (`damaged` does not name it)
/// and holds everything the copy holds; or another repaired copy of the same original is
/// identical (one is kept). `damaged`: snapshots that use lost data.
pub fn redundant_copies(
    repo: &Repository,
    index: &Index,
    snaps: &[SnapshotEntry],
    damaged: &[SnapshotId],
) -> Result<Vec<Redundant>> {
    let mut out = Vec::new();
    let mut memo = HashMap::new();
    for (cid, copy) in snaps {
        for (oid, of) in snaps {
            if cid == oid || !is_repaired_copy(copy, of) {
                continue;
            }
            if !damaged.contains(oid) && subset(repo, index, copy.tree, of.tree, &mut memo)? {
                out.push(Redundant {
                    copy: *cid,
                    of: *oid,
                    original_whole: true,
                });
                break;
            }
            // Two identical copies of one original (an older snapvault wrote one per run):
            // the one with the smallest id stays.
            let twin = snaps
                .iter()
                .find(|(i, s)| i < cid && s.tree == copy.tree && is_repaired_copy(s, of));
            if let Some((tid, _)) = twin {
                out.push(Redundant {
                    copy: *cid,
                    of: *tid,
                    original_whole: false,
                });
                break;
            }
        }
    }
    Ok(out)
}

/// Does tree `a` hold nothing that tree `b` does not (every file the same, every folder a
/// subset)? A tree that cannot be read proves nothing: false, unless storage failed.
/// Not a walk of [`crate::repository::walk`] (which follows one tree): it compares two
/// trees entry by entry, memoises pairs, and stops at the first difference.
fn subset(
    repo: &Repository,
    index: &Index,
    a: BlobId,
    b: BlobId,
    memo: &mut HashMap<(BlobId, BlobId), bool>,
) -> Result<bool> {
    if a == b {
        return Ok(true);
    }
    if let Some(r) = memo.get(&(a, b)) {
        return Ok(*r);
    }
    let load = |id: &BlobId| match repo.load_tree(index, id) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.is_unavailable() => Err(e),
        Err(_) => Ok(None),
    };
    let (Some(ta), Some(tb)) = (load(&a)?, load(&b)?) else {
        memo.insert((a, b), false);
        return Ok(false);
    };
    let mut ok = true;
    for n in &ta.nodes {
        let Some(m) = tb.nodes.iter().find(|m| m.name == n.name) else {
            ok = false;
            break;
        };
        ok = match (n.kind, n.subtree, m.kind, m.subtree) {
            (NodeKind::Dir, Some(x), NodeKind::Dir, Some(y)) => subset(repo, index, x, y, memo)?,
            _ => n == m,
        };
        if !ok {
            break;
        }
    }
    memo.insert((a, b), ok);
    Ok(ok)
}
