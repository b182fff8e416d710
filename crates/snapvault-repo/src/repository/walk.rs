//! The one walker over snapshot trees, for every operation that reads them (prune's mark,
//! forget's photo-loss guard, check, restore, repair, copy, the catalog and the binary's
//! `ls`, `find`, `stats`, …), so that they agree on order, sharing and errors.
//!
//! - **Order**: depth first, each folder's entries in listing order; a folder's entry comes
//!   before what it holds ([`Visitor::entry`], then [`Visitor::tree`] for its listing), and
//!   [`Visitor::leave`] after (post-order, for walks that build something bottom-up).
//!   [`TreeWalker::in_path_order`] instead visits entries in the byte order of their whole
//!   paths (what `ls` prints), so a listing can be printed as the walk goes instead of
//!   sorted at the end: a folder `a`'s listing comes at the place of `a/` among its
//!   siblings, after `a.txt` and before `a0` ('.' < '/' < '0').
//! - **Sharing**, chosen when the walker is made ([`Sharing`]):
//!   - [`Sharing::Once`]: each tree at most once over all the roots walked. A tree shared
//!     by several snapshots or folders is visited at the first path that reaches it and
//!     skipped at the others. For walks that need each *tree* once (mark, check, stats): a
//!     walk is as cheap as the distinct trees, however much a crafted snapshot repeats them.
//!   - [`Sharing::EveryPath`]: every *path*. A shared tree is entered again under each path
//!     that reaches it, so a listing (ls, restore, find) names every copy. Repetition is
//!     bounded instead by [`crate::repository::expansion`]: the walk counts its paths
//!     against the distinct entries it read and stops with that error when a crafted
//!     snapshot repeats its listings out of all proportion. With `keep`, trees once
//!     loaded are kept (as `Rc`) for the walker's life, so a tree shared by snapshots or
//!     folders is read once (find, check's naming of files); without, only the open
//!     folders are held and a shared tree is read again per path (memory bounded by the
//!     depth: ls, restore).
//! - **Errors**, one policy: a tree that cannot be loaded goes to
//!   [`Visitor::unreadable`], whose `Err` stops the walk with that error and whose `Ok`
//!   skips what lies below the tree. Nothing else stops a walk but the visitor's own
//!   errors (and, walking every path, the expansion bound).
//! - **A level at a time** ([`TreeWalker::walk_levels`]), for a walk that reads many new
//!   trees from a slow store (the catalog's first sync of a remote repository): breadth
//!   first, each tree once, up to [`LEVEL_BATCH`] trees of a level loaded at once on a few
//!   threads; then the visitor hears of them one by one, in level order, on the caller's
//!   thread. Same visitor, same error policy; no [`Visitor::leave`] (nothing is finished
//!   bottom-up in this order).
//!
//! - **Beside another tree** ([`walk_pair`]): tree `a` walked as above (every path), each
//!   folder and entry given with the one of the same name in a tree `b`, for the walks
//!   that compare two trees (copy's learning, repair's copies, what changed between two
//!   snapshots).
//!
//! Trees come from a [`TreeSource`]: a repository with its index
//! ([`TreeWalker::new`], [`TreeWalker::with`]), or anything else that loads a tree by id
//! ([`TreeWalker::over`]: another repository's trees, a benchmark's).
//!
//! Paths are the exact name bytes joined with `/` (`b""` for the root); [`shown`] makes
//! one printable.

mod pair;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::rc::Rc;

use crate::error::{RepoError, Result};
use crate::format::id::BlobId;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::repository::expansion::Expansion;
use crate::repository::index::{IdHasher, Index};
use crate::repository::{Repository, parallel_map};

pub use pair::{PairVisitor, Side, Verdicts, walk_pair};

/// Where a walker's trees come from. `Sync`: a level walk loads on several threads.
pub trait TreeSource: Sync {
    fn load_tree(&self, id: &BlobId) -> Result<Tree>;
}

/// A repository's trees, found through `index`.
#[derive(Clone, Copy)]
pub struct RepoTrees<'a> {
    pub repo: &'a Repository,
    pub index: &'a Index,
}

impl TreeSource for RepoTrees<'_> {
    fn load_tree(&self, id: &BlobId) -> Result<Tree> {
        self.repo.load_tree(self.index, id)
    }
}

/// A repository's trees found through an index of its trees alone
/// ([`Repository::load_tree_index`]: at a million small files 52 MB less than the whole
/// index). A tree that is not found or not read that way is asked of the whole index,
/// loaded then, once: a tree stored as a data blob (a file of the same bytes has the same
/// id) is still found, and a tree reads as it does through [`RepoTrees`] with the whole
/// index (the same copies, and more, are tried).
pub struct TreesFirst<'a> {
    repo: &'a Repository,
    trees: Index,
    whole: std::sync::OnceLock<Index>,
}

impl<'a> TreesFirst<'a> {
    pub fn load(repo: &'a Repository) -> Result<Self> {
        Ok(TreesFirst {
            repo,
            trees: repo.load_tree_index()?.index,
            whole: std::sync::OnceLock::new(),
        })
    }

    /// Whether the whole index was loaded (a tree was not found among the trees).
    pub fn loaded_whole(&self) -> bool {
        self.whole.get().is_some()
    }
}

impl TreeSource for TreesFirst<'_> {
    fn load_tree(&self, id: &BlobId) -> Result<Tree> {
        if self.whole.get().is_none()
            && self.trees.contains(id)
            && let Ok(t) = self.repo.load_tree(&self.trees, id)
        {
            return Ok(t);
        }
        let whole = match self.whole.get() {
            Some(i) => i,
            None => {
                let i = self.repo.load_index()?.index;
                self.whole.get_or_init(|| i)
            }
        };
        self.repo.load_tree(whole, id)
    }
}

/// Trees of one level loaded at once by [`TreeWalker::walk_levels`] (bounds the memory
/// of a very wide level; the threads are `parallel_map`'s few).
pub const LEVEL_BATCH: usize = 64;

/// What a walk tells its user. Every method but [`Visitor::unreadable`] has a default that
/// goes everywhere and records nothing.
pub trait Visitor {
    /// A tree was loaded; `path` is its folder's path below the root (`b""` for the root).
    /// Return `false` to skip its entries and everything below it.
    fn tree(&mut self, _id: &BlobId, _path: &[u8], _tree: &Tree) -> Result<bool> {
        Ok(true)
    }
    /// One entry of a loaded tree, at `path`, in listing order. For a folder, return
    /// `false` to not go into it; it is entered right after this call, before the next
    /// entry.
    fn entry(&mut self, _path: &[u8], _node: &Node) -> Result<bool> {
        Ok(true)
    }
    /// Everything below the tree `id` at `path` has been walked (post-order); only for
    /// trees whose [`Visitor::tree`] returned `true`. `node` is the folder entry that led
    /// to it (`None` for a root).
    fn leave(&mut self, _id: &BlobId, _path: &[u8], _node: Option<&Node>) -> Result<()> {
        Ok(())
    }
    /// The tree `id` at `path` cannot be loaded: `Err` stops the walk, `Ok` skips it.
    fn unreadable(&mut self, id: &BlobId, path: &[u8], e: RepoError) -> Result<()>;
}

/// How a walker treats a tree it reaches again (see the module's documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// Each tree at most once over all roots.
    Once,
    /// Every path, a shared tree again under each; `keep`: loaded trees are kept.
    EveryPath { keep: bool },
}

/// `dir/name`, or `name` at the top.
pub fn child(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(dir.len() + 1 + name.len());
    p.extend_from_slice(dir);
    push_child(&mut p, dir.is_empty(), name);
    p
}

fn push_child(buf: &mut Vec<u8>, top: bool, name: &[u8]) {
    if !top {
        buf.push(b'/');
    }
    buf.extend_from_slice(name);
}

/// A path for messages (names that are not UTF-8 shown lossily; the exact bytes stay in
/// the path).
pub fn shown(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// The path of `n` inside the folder at `path`, for messages.
pub fn join(path: &[u8], n: &Node) -> String {
    shown(&child(path, &n.name.0))
}

/// A folder being walked: its listing and the next entry to visit.
struct Frame {
    id: BlobId,
    path: Vec<u8>,
    node: Option<Node>,
    tree: Rc<Tree>,
    next: usize,
    /// In path order: the steps sorted by path, and which folders' entries said to go in.
    order: Option<(Vec<Step>, Vec<bool>)>,
}

/// A step of a walk in path order: an entry's index, and whether it is the descent into
/// that folder (rather than the entry itself).
type Step = (usize, bool);

impl Frame {
    /// The next step: an entry (`false`) or, in path order, the descent into the folder
    /// entry of that index (`true`).
    fn step(&mut self) -> Option<Step> {
        let i = self.next;
        self.next += 1;
        match &self.order {
            Some((steps, _)) => steps.get(i).copied(),
            None => (i < self.tree.nodes.len()).then_some((i, false)),
        }
    }
}

/// The steps of one listing in the byte order of their paths: each entry at its name, each
/// folder's descent at its name followed by `/` (names are unique and hold no `/`, so the
/// order of the keys is the order of the whole paths below them).
fn path_order(nodes: &[Node]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        steps.push((i, false));
        if n.kind == NodeKind::Dir && n.subtree.is_some() {
            steps.push((i, true));
        }
    }
    let key = |&(i, descent): &Step| {
        let name = nodes.get(i).map(|n| &n.name.0[..]).unwrap_or_default();
        let slash: &[u8] = if descent { b"/" } else { b"" };
        name.iter().chain(slash).copied()
    };
    steps.sort_by(|a, b| key(a).cmp(key(b)));
    steps
}

/// Walks trees of one repository. Walking each tree once it remembers the trees visited
/// (≈ 40 bytes each); keeping trees, it holds them all.
pub struct TreeWalker<'a> {
    trees: Trees<'a>,
    sharing: Sharing,
    seen: HashSet<BlobId, BuildHasherDefault<IdHasher>>,
    kept: HashMap<BlobId, Rc<Tree>, BuildHasherDefault<IdHasher>>,
    loads: u64,
    path_order: bool,
}

/// A walker's [`TreeSource`]: held by value for a repository, borrowed otherwise.
enum Trees<'a> {
    Repo(RepoTrees<'a>),
    Other(&'a dyn TreeSource),
}

impl Trees<'_> {
    fn source(&self) -> &dyn TreeSource {
        match self {
            Trees::Repo(r) => r,
            Trees::Other(s) => *s,
        }
    }
}

impl<'a> TreeWalker<'a> {
    /// A walker that visits each tree once ([`Sharing::Once`]).
    pub fn new(repo: &'a Repository, index: &'a Index) -> Self {
        Self::with(repo, index, Sharing::Once)
    }

    pub fn with(repo: &'a Repository, index: &'a Index, sharing: Sharing) -> Self {
        Self::from_trees(Trees::Repo(RepoTrees { repo, index }), sharing)
    }

    /// A walker over the trees of `source`.
    pub fn over(source: &'a dyn TreeSource, sharing: Sharing) -> Self {
        Self::from_trees(Trees::Other(source), sharing)
    }

    fn from_trees(trees: Trees<'a>, sharing: Sharing) -> Self {
        TreeWalker {
            trees,
            sharing,
            seen: HashSet::default(),
            kept: HashMap::default(),
            loads: 0,
            path_order: false,
        }
    }

    /// Visit entries in the byte order of their whole paths (see the module's
    /// documentation): a folder is entered at the place of `name/` among its siblings, not
    /// right after its entry. [`TreeWalker::walk_levels`] ignores it.
    pub fn in_path_order(mut self) -> Self {
        self.path_order = true;
        self
    }

    /// Trees loaded from the repository so far.
    pub fn loads(&self) -> u64 {
        self.loads
    }

    /// Distinct trees reached so far, loaded or not (walking each tree once).
    pub fn visited(&self) -> usize {
        self.seen.len()
    }

    /// Walk the trees below `root`; walking every path, the expansion bound names the walk
    /// "tree <root>".
    pub fn walk(&mut self, root: BlobId, v: &mut dyn Visitor) -> Result<()> {
        self.walk_named(root, &format!("tree {}", root.short()), v)
    }

    /// [`TreeWalker::walk`], with `what` (such as "snapshot 1a2b3c4d") naming the walk in
    /// the expansion bound's error.
    pub fn walk_named(&mut self, root: BlobId, what: &str, v: &mut dyn Visitor) -> Result<()> {
        let mut exp = match self.sharing {
            Sharing::Once => None,
            Sharing::EveryPath { .. } => Some(Expansion::new(what)),
        };
        let mut stack: Vec<Frame> = Vec::new();
        if let Some(f) = self.enter(root, Vec::new(), None, v, &mut exp)? {
            stack.push(f);
        }
        let mut path = Vec::new();
        while let Some(top) = stack.last_mut() {
            let tree = top.tree.clone();
            let Some((i, descent)) = top.step() else {
                if let Some(f) = stack.pop() {
                    v.leave(&f.id, &f.path, f.node.as_ref())?;
                }
                continue;
            };
            let Some(n) = tree.nodes.get(i) else {
                continue;
            };
            path.clear();
            path.extend_from_slice(&top.path);
            push_child(&mut path, top.path.is_empty(), &n.name.0);
            let go = if descent {
                // Path order: the folder's entry was visited earlier, at its own place.
                top.order.as_ref().and_then(|(_, go)| go.get(i)) == Some(&true)
            } else {
                if let Some(e) = exp.as_mut() {
                    e.path()?;
                }
                let go = v.entry(&path, n)?;
                match top.order.as_mut() {
                    Some((_, wanted)) => {
                        if let Some(w) = wanted.get_mut(i) {
                            *w = go;
                        }
                        continue;
                    }
                    None => go,
                }
            };
            if let (true, NodeKind::Dir, Some(sub)) = (go, n.kind, n.subtree)
                && let Some(f) = self.enter(sub, path.clone(), Some(n.clone()), v, &mut exp)?
            {
                stack.push(f);
            }
        }
        Ok(())
    }

    /// Walk the trees below `root` a level at a time (see the module's documentation):
    /// each tree once, whatever the walker's sharing (trees reached in earlier walks of
    /// this walker are not visited again); [`Visitor::leave`] is not called.
    pub fn walk_levels(&mut self, root: BlobId, v: &mut dyn Visitor) -> Result<()> {
        if !self.seen.insert(root) {
            return Ok(());
        }
        let mut level: Vec<(BlobId, Vec<u8>)> = vec![(root, Vec::new())];
        while !level.is_empty() {
            let mut next = Vec::new();
            for batch in level.chunks(LEVEL_BATCH) {
                let source = self.trees.source();
                let loaded = parallel_map(batch, |(id, _)| source.load_tree(id));
                self.count_loads(batch.len() as u64);
                for ((id, path), tree) in batch.iter().zip(loaded) {
                    let tree = match tree {
                        Ok(t) => t,
                        Err(e) => {
                            v.unreadable(id, path, e)?;
                            continue;
                        }
                    };
                    if !v.tree(id, path, &tree)? {
                        continue;
                    }
                    for n in &tree.nodes {
                        let p = child(path, &n.name.0);
                        let go = v.entry(&p, n)?;
                        if let (true, NodeKind::Dir, Some(sub)) = (go, n.kind, n.subtree)
                            && self.seen.insert(sub)
                        {
                            next.push((sub, p));
                        }
                    }
                }
            }
            level = next;
        }
        Ok(())
    }

    fn count_loads(&mut self, n: u64) {
        self.loads += n;
        #[cfg(test)]
        LOADS.with(|c| c.set(c.get() + n));
    }

    /// Load `id` and tell the visitor; `None`: nothing to walk below it.
    fn enter(
        &mut self,
        id: BlobId,
        path: Vec<u8>,
        node: Option<Node>,
        v: &mut dyn Visitor,
        exp: &mut Option<Expansion>,
    ) -> Result<Option<Frame>> {
        if self.sharing == Sharing::Once && !self.seen.insert(id) {
            return Ok(None);
        }
        let tree = match self.load(&id) {
            Ok(t) => t,
            Err(e) => {
                v.unreadable(&id, &path, e)?;
                return Ok(None);
            }
        };
        if let Some(e) = exp.as_mut() {
            e.enter(&id, tree.nodes.len());
        }
        if !v.tree(&id, &path, &tree)? {
            return Ok(None);
        }
        let order = self
            .path_order
            .then(|| (path_order(&tree.nodes), vec![false; tree.nodes.len()]));
        Ok(Some(Frame {
            id,
            path,
            node,
            tree,
            next: 0,
            order,
        }))
    }

    fn load(&mut self, id: &BlobId) -> Result<Rc<Tree>> {
        if let Some(t) = self.kept.get(id) {
            return Ok(t.clone());
        }
        self.count_loads(1);
        let t = Rc::new(self.trees.source().load_tree(id)?);
        if self.sharing == (Sharing::EveryPath { keep: true }) {
            self.kept.insert(*id, t.clone());
        }
        Ok(t)
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
