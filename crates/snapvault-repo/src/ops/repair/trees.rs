//! Repair's two walks of the snapshots' trees, on the tree walker (each tree once, results
//! memoised per tree so shared subtrees cost one visit over all snapshots; post-order, as
//! both build a tree's result from its folders'): the losses under each tree, and the
//! rewrite of a tree without its lost files. A listing that cannot be read is lost; one
//! that could not be read for lack of storage stops the walk.

use std::collections::HashMap;

use super::{Holds, Losses, LostFile};
use crate::error::{Interruption, RepoError, Result, Worker};
use crate::format::blob::{self, BlobType, Compression, EncodedBlob};
use crate::format::id::BlobId;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::repository::Repository;
use crate::repository::walk::{TreeWalker, Visitor};

/// The last component of a walk path: the folder's own name.
fn name_of(path: &[u8]) -> String {
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    String::from_utf8_lossy(name).into_owned()
}

/// The files (and folders whose listing is lost) under `tree` whose data is lost, as paths
/// relative to it; remembered per tree, so shared subtrees are walked once.
pub(super) fn collect_losses(
    repo: &Repository,
    holds: &Holds<'_>,
    tree: &BlobId,
    l: &mut Losses,
) -> Result<()> {
    if l.memo.contains_key(tree) {
        return Ok(());
    }
    let mut v = CollectLosses {
        holds,
        l,
        open: Vec::new(),
    };
    TreeWalker::new(repo, holds.index).walk(*tree, &mut v)
}

struct CollectLosses<'a, 'h> {
    holds: &'a Holds<'h>,
    l: &'a mut Losses,
    /// Per folder entered, innermost last: what is lost under it so far, in listing order.
    open: Vec<Vec<(String, u64)>>,
}

impl CollectLosses<'_, '_> {
    /// What is lost under the folder `name` (whose listing is `sub`) goes into its parent's.
    fn add_folder(&mut self, name: &str, sub: &BlobId) {
        let Some(parent) = self.open.last_mut() else {
            return;
        };
        for (r, bytes) in self.l.memo.get(sub).map(Vec::as_slice).unwrap_or_default() {
            let path = if r.starts_with('(') {
                format!("{name}/ {r}")
            } else {
                format!("{name}/{r}")
            };
            parent.push((path, *bytes));
        }
    }
}

impl Visitor for CollectLosses<'_, '_> {
    fn entry(&mut self, _: &[u8], n: &Node) -> Result<bool> {
        match (n.kind, n.subtree) {
            (NodeKind::Dir, Some(sub)) => {
                // Walked already (here or in another snapshot): its result is known.
                if self.l.memo.contains_key(&sub) {
                    self.add_folder(&n.name.lossy(), &sub);
                    return Ok(false);
                }
                Ok(true)
            }
            (NodeKind::File, _) => {
                let missing: Vec<BlobId> = n
                    .content
                    .iter()
                    .filter(|b| !self.holds.has(b))
                    .copied()
                    .collect();
                if !missing.is_empty() {
                    let name = n.name.lossy();
                    self.l.blobs.extend(missing);
                    self.l
                        .files
                        .entry(n.content.clone())
                        .or_insert_with(|| LostFile {
                            name: name.clone(),
                            size: n.size,
                            content: n.content.clone(),
                        });
                    if let Some(out) = self.open.last_mut() {
                        out.push((name, n.size));
                    }
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    fn tree(&mut self, _: &BlobId, _: &[u8], _: &Tree) -> Result<bool> {
        self.open.push(Vec::new());
        Ok(true)
    }

    fn leave(&mut self, id: &BlobId, path: &[u8], _: Option<&Node>) -> Result<()> {
        let out = self.open.pop().unwrap_or_default();
        self.l.memo.insert(*id, out);
        self.add_folder(&name_of(path), id);
        Ok(())
    }

    fn unreadable(&mut self, id: &BlobId, path: &[u8], e: RepoError) -> Result<()> {
        if e.is_unavailable() {
            return Err(e);
        }
        self.l.blobs.insert(*id);
        self.l
            .memo
            .insert(*id, vec![("(folder listing lost)".to_string(), 0)]);
        self.add_folder(&name_of(path), id);
        Ok(())
    }
}

/// Rewrite a tree without lost files; returns the new tree id (None: listing lost). Without
/// `tx` only the id is worked out (nothing is stored).
pub(super) fn rewrite(
    repo: &Repository,
    holds: &Holds<'_>,
    tree: &BlobId,
    tx: Option<&crossbeam_channel::Sender<EncodedBlob>>,
    memo: &mut HashMap<BlobId, Option<BlobId>>,
) -> Result<Option<BlobId>> {
    if let Some(r) = memo.get(tree) {
        return Ok(*r);
    }
    let mut v = Rewrite {
        repo,
        holds,
        tx,
        memo,
        open: Vec::new(),
    };
    TreeWalker::new(repo, holds.index).walk(*tree, &mut v)?;
    Ok(memo.get(tree).copied().flatten())
}

struct Rewrite<'a, 'h> {
    repo: &'a Repository,
    holds: &'a Holds<'h>,
    tx: Option<&'a crossbeam_channel::Sender<EncodedBlob>>,
    memo: &'a mut HashMap<BlobId, Option<BlobId>>,
    /// The listings entered and not yet rewritten, innermost last.
    open: Vec<Tree>,
}

impl Visitor for Rewrite<'_, '_> {
    /// A folder rewritten already (here or for another snapshot) is not entered.
    fn entry(&mut self, _: &[u8], n: &Node) -> Result<bool> {
        Ok(n.subtree.is_none_or(|sub| !self.memo.contains_key(&sub)))
    }

    fn tree(&mut self, _: &BlobId, _: &[u8], tree: &Tree) -> Result<bool> {
        self.open.push(tree.clone());
        Ok(true)
    }

    fn leave(&mut self, id: &BlobId, _: &[u8], _: Option<&Node>) -> Result<()> {
        let t = self.open.pop().unwrap_or_default();
        let mut out = Tree::default();
        for mut n in t.nodes {
            match (n.kind, n.subtree) {
                (NodeKind::Dir, Some(sub)) => {
                    if let Some(Some(new)) = self.memo.get(&sub) {
                        n.subtree = Some(*new);
                        out.nodes.push(n);
                    }
                }
                (NodeKind::File, _) if n.content.iter().any(|b| !self.holds.has(b)) => {}
                _ => out.nodes.push(n),
            }
        }
        let bytes = out.encode();
        let new = self.repo.crypto().blob_id(&bytes);
        if let Some(tx) = self.tx
            && !self.holds.index.contains(&new)
        {
            let e = blob::encode(
                self.repo.crypto(),
                new,
                BlobType::Tree,
                &bytes,
                Compression::Try(self.repo.config().compression_level),
            );
            tx.send(e).map_err(|_| {
                RepoError::Interrupted(Interruption::WorkerStopped(Worker::PackWriter))
            })?;
        }
        self.memo.insert(*id, Some(new));
        Ok(())
    }

    fn unreadable(&mut self, id: &BlobId, _: &[u8], e: RepoError) -> Result<()> {
        if e.is_unavailable() {
            return Err(e);
        }
        self.memo.insert(*id, None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::format::id::Id;
    use crate::ops::observe::NoHooks;
    use crate::ops::repair::{self, Parts};
    use crate::ops::survey::{load_old_index, survey};
    use crate::ops::test_support::{create_small_repo, open};
    use crate::testing::trees::{Crafter, dir, file, save_snapshot};
    use crate::{BlobId, Repository};

    fn names(repo: &Repository, tree: &BlobId) -> Vec<String> {
        let index = repo.load_index().unwrap().index;
        let t = repo.load_tree(&index, tree).unwrap();
        t.nodes.iter().map(|n| n.name.lossy()).collect()
    }

    /// A lost file in a listing shared by two folders is named under both, a listing that
    /// is missing is named as lost, and the repaired snapshot keeps everything else.
    #[test]
    fn losses_in_shared_listings_are_named_under_every_path() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        create_small_repo(&root, true);
        let repo = open(&root);
        let c = Crafter::new(&repo);
        let lost = file("lost.jpg", vec![BlobId(Id::random())], 10);
        let shared = c.tree(vec![lost, c.file("fine.jpg", b"fine")]);
        let b = c.tree(vec![dir("x", shared)]);
        let top = c.tree(vec![
            dir("a", shared),
            dir("b", b),
            dir("gone", BlobId::default()),
            c.file("top.txt", b"top"),
        ]);
        c.finish();
        let sid = save_snapshot(&repo, top, 1_700_000_000);

        let old = load_old_index(&repo).unwrap();
        let found = survey(&repo, &old.index, 2, &NoHooks).unwrap();
        let plan = repair::plan(&repo, &found, &old).unwrap();
        assert_eq!(plan.snapshots.len(), 1);
        assert_eq!(plan.snapshots[0].snapshot, sid);
        assert_eq!(
            plan.snapshots[0].removed,
            ["a/lost.jpg", "b/x/lost.jpg", "gone/ (folder listing lost)"]
        );
        assert_eq!(plan.lost_files.len(), 1, "one lost content");

        let parts = Parts {
            index: true,
            snapshots: true,
        };
        let out = repair::apply(&repo, &found, &plan, parts, false).unwrap();
        let (_, new) = out.snapshots_written[0];
        let snap = repo.load_snapshot(&new).unwrap();
        assert_eq!(names(&repo, &snap.tree), ["a", "b", "top.txt"]);
        let index = repo.load_index().unwrap().index;
        let t = repo.load_tree(&index, &snap.tree).unwrap();
        let a = t.nodes[0].subtree.unwrap();
        assert_eq!(names(&repo, &a), ["fine.jpg"]);
        let bx = repo
            .load_tree(&index, &t.nodes[1].subtree.unwrap())
            .unwrap();
        assert_eq!(bx.nodes[0].subtree, Some(a), "b/x/ is a/ again");
    }
}
