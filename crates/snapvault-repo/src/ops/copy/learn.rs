//! Learning which destination id each source blob has, from a snapshot and its copy.
//!
//! A copied tree is the source tree with every id replaced, so the two trees of a
//! (snapshot, copy) pair can be walked together, reading only tree blobs: the k-th chunk
//! of a file in one is the k-th chunk of the same file in the other.
//!
//! Not a walk of [`crate::repository::walk`]: that walker follows one tree, and this
//! compares two, from two repositories, entry by entry; what it memoises is *pairs* of
//! trees, and a pair that differs stops the comparison below it.

use std::collections::HashSet;

use crate::format::id::BlobId;
use crate::format::tree::Node;
use crate::repository::Repository;
use crate::repository::index::{IdMap, Index};

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
        src,
        src_index,
        dst,
        dst_index,
        map,
        bad: HashSet::new(),
    };
    l.walk(src_tree, dst_tree)
}

struct Learner<'a> {
    src: &'a Repository,
    src_index: &'a Index,
    dst: &'a Repository,
    dst_index: &'a Index,
    map: &'a mut BlobMap,
    /// Pairs found not to correspond (so a shared subtree is compared once).
    bad: HashSet<(BlobId, BlobId)>,
}

impl Learner<'_> {
    fn walk(&mut self, s: BlobId, d: BlobId) -> bool {
        // Copies are deterministic: a tree learned with another partner is not this one's.
        if let Some(known) = self.map.get(&s) {
            return *known == d;
        }
        if self.bad.contains(&(s, d)) {
            return false;
        }
        let ok = self.compare(s, d);
        if ok {
            self.map.insert(s, d);
        } else {
            self.bad.insert((s, d));
        }
        ok
    }

    fn compare(&mut self, s: BlobId, d: BlobId) -> bool {
        let (Ok(st), Ok(dt)) = (
            self.src.load_tree(self.src_index, &s),
            self.dst.load_tree(self.dst_index, &d),
        ) else {
            return false;
        };
        let mut whole = st.nodes.len() == dt.nodes.len();
        // Both lists are sorted by name with unique names (checked by `Tree::decode`).
        let (mut i, mut j) = (0, 0);
        while i < st.nodes.len() && j < dt.nodes.len() {
            let (a, b) = (&st.nodes[i], &dt.nodes[j]);
            match a.name.cmp(&b.name) {
                std::cmp::Ordering::Less => {
                    whole = false;
                    i += 1;
                    continue;
                }
                std::cmp::Ordering::Greater => {
                    whole = false;
                    j += 1;
                    continue;
                }
                std::cmp::Ordering::Equal => {}
            }
            (i, j) = (i + 1, j + 1);
            if !same_but_ids(a, b) {
                whole = false;
                continue;
            }
            for (x, y) in a.content.iter().zip(&b.content) {
                let len = |ix: &Index, id: &BlobId| ix.get(id).map(|l| l.raw_len);
                match (len(self.src_index, x), len(self.dst_index, y)) {
                    (Some(m), Some(n)) if m == n => {
                        self.map.insert(*x, *y);
                    }
                    _ => whole = false,
                }
            }
            if let (Some(x), Some(y)) = (a.subtree, b.subtree)
                && !self.walk(x, y)
            {
                whole = false;
            }
        }
        whole
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
