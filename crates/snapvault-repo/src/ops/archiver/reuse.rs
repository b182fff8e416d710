//! A folder whose listing matches the parent snapshot's tree entry for entry keeps that
//! tree's id: the walker builds no node for it and the finalizer neither encodes, hashes
//! nor looks up its tree again. At a million unchanged small files, building every node
//! anew, encoding every tree as JSON, hashing it and finding it stored were a tenth of a
//! no-change snapshot's time, for a tree known in advance.
//!
//! "Matches" is exactly: the walk would have built the parent's node for every entry (the
//! same fields from the listing, an unchanged file's content and media taken from the
//! parent) and every subfolder's tree comes back with the parent's subtree id. The
//! finalizer checks the second part; where a subfolder changed, it writes the parent's tree
//! with the new subtree ids — the tree the walk would have built. So the snapshot is the one
//! the node-by-node path makes, tree for tree (test `tests_reuse`).

use super::*;

/// A tree of the parent snapshot (or of an older one consulted with it) and its id.
pub(super) struct Parent {
    pub(super) id: BlobId,
    pub(super) tree: Tree,
}

/// A folder (`dir`) listed exactly as `parent`, save for the subtree ids, which the
/// finalizer settles.
pub(super) struct Same {
    pub(super) dir: Vec<u8>,
    pub(super) parent: Parent,
}

/// What the walker hands the finalizer for a folder, after all of its subfolders.
pub(super) enum Folder {
    /// Its nodes, built one by one.
    Built(Vec<u8>, Vec<Pending>),
    /// The parent's tree, when it matches (see [`Same`]).
    Same(Same),
}

/// The node the walk records for `e`: the listing's fields, and for a file unchanged
/// since `unchanged`, that node's content and media (nothing is read).
pub(super) fn node_from(e: &SourceEntry, unchanged: Option<&Node>) -> Node {
    let mut n = Node {
        name: e.name.clone(),
        kind: e.kind,
        mode: e.mode,
        mtime: e.mtime,
        btime: e.btime,
        size: e.size,
        content: Vec::new(),
        subtree: None,
        target: e.target.clone(),
        media: None,
        rdev: e.rdev,
        dev: e.link.map(|(dev, _)| dev),
        ino: e.link.map(|(_, ino)| ino),
        ctime: e.ctime,
        inode: e.inode,
    };
    if let Some(o) = unchanged {
        n.content = o.content.clone();
        n.media = o.media.clone();
    }
    n
}

/// The change test's questions to the listing: is the file `e` the one `old` recorded?
/// Same size and mtime; where `old` has them, the same status change time and inode (a
/// write with the mtime set back, a rename onto the name, a new file under it all change
/// one of them); a file with several names, the same (device, inode) as recorded for
/// linking. A node without `ctime`/`inode` (written before they were, or by a source that
/// cannot tell) is judged by size and mtime, as it was: upgrading reads no file again, and
/// the new snapshot records both, so the next one compares them.
pub(super) fn same_file(e: &SourceEntry, old: &Node) -> bool {
    old.kind == NodeKind::File
        && old.size == e.size
        && old.mtime == e.mtime
        && old.ctime.is_none_or(|c| e.ctime == Some(c))
        && old.inode.is_none_or(|i| e.inode == Some(i))
        && e.link
            .is_none_or(|(dev, ino)| (old.dev, old.ino) == (Some(dev), Some(ino)))
}

/// Would the walk build exactly `old` for `e` (a folder's subtree aside)? `unchanged`
/// is the walker's change test for a file ([`same_file`], blobs stored); it is asked only
/// when every other field matches. Compared field by field, without building the node:
/// adding a field to [`Node`] fails to compile here until it is compared.
pub(super) fn same_node(e: &SourceEntry, old: &Node, unchanged: impl FnOnce() -> bool) -> bool {
    let Node {
        name,
        kind,
        mode,
        mtime,
        btime,
        size,
        content,
        subtree,
        target,
        media,
        rdev,
        dev,
        ino,
        ctime,
        inode,
    } = old;
    let listed = *name == e.name
        && *kind == e.kind
        && *mode == e.mode
        && *mtime == e.mtime
        && *btime == e.btime
        && *size == e.size
        && *target == e.target
        && *rdev == e.rdev
        && *dev == e.link.map(|(d, _)| d)
        && *ino == e.link.map(|(_, i)| i)
        && *ctime == e.ctime
        && *inode == e.inode;
    listed
        && match e.kind {
            NodeKind::File => subtree.is_none() && unchanged(),
            NodeKind::Dir => content.is_empty() && media.is_none(),
            _ => content.is_empty() && media.is_none() && subtree.is_none(),
        }
}

/// The first of `parents` whose tree the walk would build from `entries` (subtrees
/// aside); `unchanged(e, old)` is the walker's change test.
pub(super) fn matching(
    entries: &[SourceEntry],
    parents: &[Parent],
    unchanged: impl Fn(&SourceEntry, &Node) -> bool,
) -> Option<usize> {
    parents.iter().position(|p| {
        p.tree.nodes.len() == entries.len()
            && entries
                .iter()
                .zip(&p.tree.nodes)
                .all(|(e, old)| same_node(e, old, || unchanged(e, old)))
    })
}

/// The nodes the walk would have built for the first `upto` entries of a folder found the
/// same as `tree` (the walk stopped there: the source went away or a stop came).
pub(super) fn built(tree: &Tree, upto: usize) -> Vec<Pending> {
    tree.nodes
        .iter()
        .take(upto)
        .map(|n| match n.kind {
            NodeKind::Dir => Pending::Dir(Node {
                subtree: None,
                ..n.clone()
            }),
            _ => Pending::Ready(n.clone()),
        })
        .collect()
}

/// In the finalizer: give `same`'s subfolders their trees' ids (the last ones on `stack`)
/// and report its files. `Ok(id)`: the parent's tree is this folder's, still stored;
/// `Err(tree)`: a subfolder changed (or the tree must be stored again), write `tree`.
pub(super) fn settle(
    same: Same,
    stack: &mut Vec<BlobId>,
    sh: &Shared,
    observer: &dyn Observer,
) -> Result<std::result::Result<BlobId, Tree>> {
    let Same { dir, parent } = same;
    let Parent { id, mut tree } = parent;
    let n_dirs = tree
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Dir)
        .count();
    if stack.len() < n_dirs {
        return Err(Interruption::DirectoryOrder.into());
    }
    let mut subtrees = stack.split_off(stack.len() - n_dirs).into_iter();
    let mut same = true;
    for n in &mut tree.nodes {
        match n.kind {
            NodeKind::Dir => {
                let sub = subtrees.next();
                if n.subtree != sub {
                    n.subtree = sub;
                    same = false;
                }
            }
            NodeKind::File => observer.recorded(&dir, n),
            _ => {}
        }
    }
    // As `Shared::claim` would find it: stored, and not to be stored again.
    if same && sh.index.contains(&id) && !sh.reread.contains(&id) {
        observer.folder_reused(&dir);
        return Ok(Ok(id));
    }
    Ok(Err(tree))
}
