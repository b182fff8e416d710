//! The one walker over snapshot trees, for every operation that reads them (prune's mark,
//! forget's photo-loss guard, check, …), so that they agree on order, sharing and errors.
//!
//! - **Order**: depth first, each folder's entries in listing order.
//! - **Sharing**: a walker loads each tree at most once over all the roots it walks: a
//!   tree shared by several snapshots or folders is visited at the first path that reaches
//!   it, and the visitor learns about it once. (A walk is as cheap as the distinct trees,
//!   however much a crafted snapshot repeats them; see [`crate::repository::expansion`].)
//! - **Errors**, one policy: a tree that cannot be loaded goes to
//!   [`Visitor::unreadable`], whose `Err` stops the walk with that error and whose `Ok`
//!   skips what lies below the tree. Nothing else stops a walk but the visitor's own errors.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;

use crate::error::{RepoError, Result};
use crate::format::id::BlobId;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::repository::Repository;
use crate::repository::index::{IdHasher, Index};

/// What a walk tells its user.
pub trait Visitor {
    /// A tree was loaded; `path` is its folder's path below the root (`""` for the root).
    /// Return `false` to not go into its folders.
    fn tree(&mut self, id: &BlobId, path: &str, tree: &Tree) -> Result<bool>;
    /// Everything below `id` has been walked (post-order); only for trees whose
    /// [`Visitor::tree`] returned `true`.
    fn leave(&mut self, _id: &BlobId) -> Result<()> {
        Ok(())
    }
    /// The tree `id` at `path` cannot be loaded: `Err` stops the walk, `Ok` skips it.
    fn unreadable(&mut self, id: &BlobId, path: &str, e: RepoError) -> Result<()>;
}

/// The path of `n` inside the folder at `path`.
pub fn join(path: &str, n: &Node) -> String {
    if path.is_empty() {
        n.name.lossy()
    } else {
        format!("{path}/{}", n.name.lossy())
    }
}

enum Step {
    Enter(BlobId, String),
    Leave(BlobId),
}

/// Walks trees of one repository; remembers the trees it has visited (≈ 40 bytes each).
pub struct TreeWalker<'a> {
    repo: &'a Repository,
    index: &'a Index,
    seen: HashSet<BlobId, BuildHasherDefault<IdHasher>>,
    loads: u64,
}

impl<'a> TreeWalker<'a> {
    pub fn new(repo: &'a Repository, index: &'a Index) -> Self {
        TreeWalker {
            repo,
            index,
            seen: HashSet::default(),
            loads: 0,
        }
    }

    /// Trees loaded so far (each at most once).
    #[cfg(test)]
    pub fn loads(&self) -> u64 {
        self.loads
    }

    /// Distinct trees reached so far, loaded or not.
    #[cfg(test)]
    pub fn visited(&self) -> usize {
        self.seen.len()
    }

    /// Walk the trees below `root` not visited yet.
    pub fn walk(&mut self, root: BlobId, v: &mut dyn Visitor) -> Result<()> {
        let mut stack = vec![Step::Enter(root, String::new())];
        while let Some(step) = stack.pop() {
            let (id, path) = match step {
                Step::Leave(id) => {
                    v.leave(&id)?;
                    continue;
                }
                Step::Enter(id, path) => (id, path),
            };
            if !self.seen.insert(id) {
                continue;
            }
            self.loads += 1;
            #[cfg(test)]
            LOADS.with(|n| n.set(n.get() + 1));
            let tree = match self.repo.load_tree(self.index, &id) {
                Ok(t) => t,
                Err(e) => {
                    v.unreadable(&id, &path, e)?;
                    continue;
                }
            };
            if !v.tree(&id, &path, &tree)? {
                continue;
            }
            stack.push(Step::Leave(id));
            for n in tree.nodes.iter().rev() {
                if let (NodeKind::Dir, Some(sub)) = (n.kind, n.subtree) {
                    stack.push(Step::Enter(sub, join(&path, n)));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
thread_local! {
    /// Trees loaded by walkers on this thread (tests count loads through every user).
    static LOADS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Trees loaded by walkers on this thread so far.
#[cfg(test)]
pub(crate) fn loads_on_this_thread() -> u64 {
    LOADS.with(|n| n.get())
}
