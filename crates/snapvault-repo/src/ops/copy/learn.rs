//! Learning which destination id each source blob has, from a snapshot and its copy.
//!
//! A copied tree is the source tree with every id replaced, so the two trees of a
//! (snapshot, copy) pair can be walked together, reading only tree blobs: the k-th chunk
//! of a file in one is the k-th chunk of the same file in the other.
//!
//! A pair walk of the one walker ([`crate::repository::walk::walk_pair`]): the source
//! tree walked beside its copy. What it memoises is *pairs* of trees, and a pair that
//! differs stops the comparison below it.

use std::collections::HashSet;

use crate::error::{RepoError, Result};
use crate::format::id::BlobId;
use crate::format::tree::{Node, Tree};
use crate::repository::Repository;
use crate::repository::index::{IdMap, Index};
use crate::repository::walk::{PairVisitor, RepoTrees, Side, Verdicts, walk_pair};

/// Source blob id → destination blob id, for trees and data blobs.
pub(crate) type BlobMap = IdMap<BlobId, BlobId>;

/// Walk the source tree `src_tree` and the destination tree `dst_tree` copied from it in
/// lockstep and record in `map` the destination id of every tree and chunk they share.
///
/// Nodes are paired by name and must agree on everything but ids (kind, mode, times, size,
/// chunk count, symlink target, media metadata); paired chunks must have the same length in
/// both indexes. A tree is recorded only when it corresponds whole — every node paired,
/// every subtree corresponding — because the copy then reuses the destination tree without
/// looking inside. Chunks of paired files are recorded even when a sibling differs (a
/// destination snapshot rewritten by `repair`). A tree that cannot be read teaches
/// nothing: the copy reads it instead. Returns whether the roots correspond.
pub(crate) fn learn_pair(
    src: &Repository,
    src_index: &Index,
    dst: &Repository,
    dst_index: &Index,
    src_tree: BlobId,
    dst_tree: BlobId,
    map: &mut BlobMap,
) -> bool {
    let mut l = Learner {
        src_index,
        dst_index,
        map,
        bad: HashSet::new(),
        verdicts: Verdicts::default(),
    };
    let src_trees = RepoTrees {
        repo: src,
        index: src_index,
    };
    let dst_trees = RepoTrees {
        repo: dst,
        index: dst_index,
    };
    let what = format!("tree {}", src_tree.short());
    // Only the expansion bound can stop the walk: then nothing more is learned here.
    walk_pair(
        &src_trees,
        &dst_trees,
        src_tree,
        Some(dst_tree),
        &what,
        &mut l,
    )
    .is_ok()
        && l.verdicts.roots()
}

struct Learner<'a> {
    src_index: &'a Index,
    dst_index: &'a Index,
    map: &'a mut BlobMap,
    /// Pairs found not to correspond (so a shared subtree is compared once).
    bad: HashSet<(BlobId, BlobId)>,
    /// Whether each pair being compared corresponds so far.
    verdicts: Verdicts,
}

impl Learner<'_> {
    /// A pair is done: remember its answer.
    fn close(&mut self, ok: bool) {
        if let Some((s, d, whole)) = self.verdicts.close(ok) {
            if whole {
                self.map.insert(s, d);
            } else {
                self.bad.insert((s, d));
            }
        }
    }
}

impl PairVisitor for Learner<'_> {
    fn pair(&mut self, _: &[u8], s: &BlobId, d: Option<&BlobId>) -> Result<bool> {
        let Some(d) = d else {
            self.verdicts.settle(false);
            return Ok(false);
        };
        // Copies are deterministic: a tree learned with another partner is not this one's.
        if let Some(known) = self.map.get(s) {
            let same = known == d;
            self.verdicts.settle(same);
            return Ok(false);
        }
        if self.bad.contains(&(*s, *d)) {
            self.verdicts.settle(false);
            return Ok(false);
        }
        self.verdicts.open(*s, *d);
        Ok(true)
    }

    fn trees(&mut self, _: &[u8], st: &Tree, dt: Option<&Tree>) -> Result<()> {
        if dt.is_none_or(|dt| st.nodes.len() != dt.nodes.len()) {
            self.verdicts.no();
        }
        Ok(())
    }

    fn entry(&mut self, _: &[u8], a: &Node, b: Option<&Node>) -> Result<bool> {
        let Some(b) = b.filter(|b| same_but_ids(a, b)) else {
            self.verdicts.no();
            return Ok(false);
        };
        for (x, y) in a.content.iter().zip(&b.content) {
            let len = |ix: &Index, id: &BlobId| ix.get(id).map(|l| l.raw_len);
            match (len(self.src_index, x), len(self.dst_index, y)) {
                (Some(m), Some(n)) if m == n => {
                    self.map.insert(*x, *y);
                }
                _ => self.verdicts.no(),
            }
        }
        Ok(a.subtree.is_some() && b.subtree.is_some())
    }

    fn leave(&mut self, _: &[u8], _: &BlobId, _: Option<&BlobId>) -> Result<()> {
        self.close(true);
        Ok(())
    }

    /// A tree that cannot be read teaches nothing: the pair does not correspond.
    fn unreadable(&mut self, _: &[u8], side: Side, _: &BlobId, _: RepoError) -> Result<()> {
        match side {
            // Going on without the copy's listing: every entry differs, the pair too.
            Side::B => self.verdicts.no(),
            Side::A => self.close(false),
        }
        Ok(())
    }
}

/// Do two nodes agree on everything but blob ids?
fn same_but_ids(a: &Node, b: &Node) -> bool {
    a.kind == b.kind
        && a.mode == b.mode
        && a.mtime == b.mtime
        && a.btime == b.btime
        && a.size == b.size
        && a.content.len() == b.content.len()
        && a.subtree.is_some() == b.subtree.is_some()
        && a.target == b.target
        && a.media == b.media
}
