//! Repaired copies: which snapshot `repair` wrote for which, so a second run writes no
//! second copy, and a copy no longer needed (its original is whole again, healed from the
//! source or another repository) is recognised.

use std::collections::HashMap;

use crate::error::{RepoError, Result};
use crate::format::id::{BlobId, SnapshotId};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::repository::index::Index;
use crate::repository::walk::{PairVisitor, RepoTrees, Side, Verdicts, walk_pair};
use crate::repository::{Repository, SnapshotEntry};

pub(crate) use crate::format::snapshot::REPAIRED_TAG as REPAIRED;

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
/// A pair walk of the one walker (`a` beside `b`) that memoises pairs and stops at the
/// first difference.
fn subset(
    repo: &Repository,
    index: &Index,
    a: BlobId,
    b: BlobId,
    memo: &mut HashMap<(BlobId, BlobId), bool>,
) -> Result<bool> {
    let mut v = Subset {
        memo,
        verdicts: Verdicts::default(),
    };
    let trees = RepoTrees { repo, index };
    walk_pair(
        &trees,
        &trees,
        a,
        Some(b),
        &format!("tree {}", a.short()),
        &mut v,
    )?;
    Ok(v.verdicts.roots())
}

struct Subset<'m> {
    memo: &'m mut HashMap<(BlobId, BlobId), bool>,
    /// Whether `a` is a subset of `b` so far, for each pair being compared.
    verdicts: Verdicts,
}

impl Subset<'_> {
    /// A pair is done: remember its answer.
    fn close(&mut self, ok: bool) {
        if let Some((a, b, sub)) = self.verdicts.close(ok) {
            self.memo.insert((a, b), sub);
        }
    }
}

impl PairVisitor for Subset<'_> {
    fn pair(&mut self, _: &[u8], a: &BlobId, b: Option<&BlobId>) -> Result<bool> {
        let Some(b) = b else {
            self.verdicts.settle(false);
            return Ok(false);
        };
        let known = if a == b {
            Some(true)
        } else {
            self.memo.get(&(*a, *b)).copied()
        };
        if let Some(r) = known {
            self.verdicts.settle(r);
            return Ok(false);
        }
        self.verdicts.open(*a, *b);
        Ok(true)
    }

    fn trees(&mut self, _: &[u8], _: &Tree, b: Option<&Tree>) -> Result<()> {
        if b.is_none() {
            self.verdicts.no();
        }
        Ok(())
    }

    /// After the first difference nothing more is compared.
    fn entry(&mut self, _: &[u8], n: &Node, m: Option<&Node>) -> Result<bool> {
        if !self.verdicts.yes_so_far() {
            return Ok(false);
        }
        let Some(m) = m else {
            self.verdicts.no();
            return Ok(false);
        };
        match (n.kind, n.subtree, m.kind, m.subtree) {
            (NodeKind::Dir, Some(_), NodeKind::Dir, Some(_)) => Ok(true),
            _ => {
                if n != m {
                    self.verdicts.no();
                }
                Ok(false)
            }
        }
    }

    fn leave(&mut self, _: &[u8], _: &BlobId, _: Option<&BlobId>) -> Result<()> {
        self.close(true);
        Ok(())
    }

    /// Storage that failed stops the walk; a tree that cannot be read proves nothing.
    fn unreadable(&mut self, _: &[u8], side: Side, _: &BlobId, e: RepoError) -> Result<()> {
        if e.is_unavailable() {
            return Err(e);
        }
        match side {
            Side::B => self.verdicts.no(),
            Side::A => self.close(false),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::{create_small_repo, open};
    use crate::testing::trees::{Crafter, dir, save_snapshot};

    /// Folders nested deeper than a thread's stack holds recursive calls (a crafted
    /// snapshot nests as deep as it likes): the comparison walks them on the heap.
    #[test]
    fn a_copy_nested_deeper_than_the_stack_is_compared_to_its_original() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        create_small_repo(&root, false);
        let repo = open(&root);
        let c = Crafter::new(&repo);
        let x = c.file("x", b"x");
        let mut copy = c.tree(vec![x.clone()]);
        let mut original = c.tree(vec![x, c.file("y", b"y")]);
        for _ in 0..25_000 {
            copy = c.tree(vec![dir("d", copy)]);
            original = c.tree(vec![dir("d", original)]);
        }
        c.finish();
        let oid = save_snapshot(&repo, original, 1);
        let mut s = repo.load_snapshot(&oid).unwrap();
        s.tree = copy;
        s.tags.push(REPAIRED.into());
        let cid = repo.save_snapshot(&s).unwrap();
        let (snaps, _) = repo.snapshots().unwrap();
        let index = repo.load_index().unwrap().index;
        let r = redundant_copies(&repo, &index, &snaps, &[]).unwrap();
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!((r[0].copy, r[0].of, r[0].original_whole), (cid, oid, true));
    }
}
