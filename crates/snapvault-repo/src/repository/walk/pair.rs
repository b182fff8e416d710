//! Walking a tree beside another: the walker follows tree `a` (its order, its bound on
//! repetition, its error policy), and each folder of `a` is given with the folder of the
//! same name in `b`, each entry with the entry of the same name. For the walks that
//! compare two trees: copy's learning (a snapshot and its copy, in two repositories),
//! repair's test of whether a repaired copy holds anything its original lacks, and the
//! binary's search for the library files that changed between two snapshots.
//!
//! Which pairs are walked is the visitor's choice ([`PairVisitor::pair`], asked before
//! either tree is loaded): a visitor that knows a pair's answer already (memoised, or the
//! same id on both sides) skips it, so a walk costs the distinct pairs it compares.

use crate::error::{RepoError, Result};
use crate::format::id::BlobId;
use crate::format::tree::{Node, NodeKind, Tree};

use super::{Sharing, TreeSource, TreeWalker, Visitor};

/// Which tree of a pair could not be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

/// What a pair walk tells its user. Paths are those of `a`.
pub trait PairVisitor {
    /// Walk the folder `a` at `path` beside `b` (`None`: nothing of that name in `b`)?
    /// Asked before either is loaded; `false` skips the pair and everything below it.
    fn pair(&mut self, path: &[u8], a: &BlobId, b: Option<&BlobId>) -> Result<bool>;
    /// Both listings of a pair the visitor chose (`b`: `None` when it has none, or it
    /// could not be loaded and [`PairVisitor::unreadable`] chose to go on without it).
    fn trees(&mut self, _path: &[u8], _a: &Tree, _b: Option<&Tree>) -> Result<()> {
        Ok(())
    }
    /// An entry of `a`'s listing, beside the entry of the same name in `b`'s. For a folder
    /// of `a`, `true` asks to go into it (then [`PairVisitor::pair`] decides).
    fn entry(&mut self, path: &[u8], a: &Node, b: Option<&Node>) -> Result<bool>;
    /// Everything below a pair whose listings were given has been walked.
    fn leave(&mut self, _path: &[u8], _a: &BlobId, _b: Option<&BlobId>) -> Result<()> {
        Ok(())
    }
    /// The tree of `side` of a pair the visitor chose cannot be loaded: `Err` stops the
    /// walk; `Ok` skips the pair (side `a`: nothing more is said of it) or goes on without
    /// `b` (side `b`).
    fn unreadable(&mut self, path: &[u8], side: Side, id: &BlobId, e: RepoError) -> Result<()>;
}

/// Walk the tree `a` (from `trees_a`) beside the tree `b` (from `trees_b`): every path,
/// each pair the visitor chooses once per path it is reached by (bounded by the walker's
/// expansion rule, named `what`).
pub fn walk_pair(
    trees_a: &dyn TreeSource,
    trees_b: &dyn TreeSource,
    a: BlobId,
    b: Option<BlobId>,
    what: &str,
    v: &mut dyn PairVisitor,
) -> Result<()> {
    if !v.pair(b"", &a, b.as_ref())? {
        return Ok(());
    }
    let mut beside = Beside {
        trees_b,
        v,
        pending: Some(b),
        open: Vec::new(),
    };
    TreeWalker::over(trees_a, Sharing::EveryPath { keep: false }).walk_named(a, what, &mut beside)
}

/// The walker's visitor over `a`: holds the listings of `b` beside the open folders.
struct Beside<'v, 's> {
    trees_b: &'s dyn TreeSource,
    v: &'v mut dyn PairVisitor,
    /// The partner of the folder of `a` the walker enters next (set when the visitor chose
    /// the pair; taken when the walker loads it or finds it unreadable).
    pending: Option<Option<BlobId>>,
    /// `b`'s id and listing beside each open folder of `a`.
    open: Vec<(Option<BlobId>, Option<Tree>)>,
}

impl Visitor for Beside<'_, '_> {
    fn tree(&mut self, _: &BlobId, path: &[u8], a: &Tree) -> Result<bool> {
        let b = self.pending.take().flatten();
        let tree_b = match b {
            None => None,
            Some(id) => match self.trees_b.load_tree(&id) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.v.unreadable(path, Side::B, &id, e)?;
                    None
                }
            },
        };
        self.v.trees(path, a, tree_b.as_ref())?;
        self.open.push((b, tree_b));
        Ok(true)
    }

    fn entry(&mut self, path: &[u8], a: &Node) -> Result<bool> {
        // Listings are sorted by name with unique names (checked by `Tree::decode`).
        let b = self
            .open
            .last()
            .and_then(|(_, t)| t.as_ref())
            .and_then(|t| {
                let i = t.nodes.binary_search_by(|m| m.name.cmp(&a.name)).ok()?;
                t.nodes.get(i)
            });
        if !self.v.entry(path, a, b)? {
            return Ok(false);
        }
        let (NodeKind::Dir, Some(sub)) = (a.kind, a.subtree) else {
            return Ok(false);
        };
        let sub_b = b
            .filter(|m| m.kind == NodeKind::Dir)
            .and_then(|m| m.subtree);
        if !self.v.pair(path, &sub, sub_b.as_ref())? {
            return Ok(false);
        }
        self.pending = Some(sub_b);
        Ok(true)
    }

    fn leave(&mut self, a: &BlobId, path: &[u8], _: Option<&Node>) -> Result<()> {
        let b = self.open.pop().and_then(|(b, _)| b);
        self.v.leave(path, a, b.as_ref())
    }

    fn unreadable(&mut self, id: &BlobId, path: &[u8], e: RepoError) -> Result<()> {
        self.pending = None;
        self.v.unreadable(path, Side::A, id, e)
    }
}

/// The bookkeeping of a pair walk that answers yes or no for each pair (does the copy
/// correspond, is `a` a subset of `b`): the pairs open, outermost first, each with its
/// answer so far; a pair's answer goes to the pair that holds it, or is the roots'.
#[derive(Default)]
pub struct Verdicts {
    open: Vec<(BlobId, BlobId, bool)>,
    roots: bool,
}

impl Verdicts {
    /// The walk goes into the pair (`a`, `b`), yes so far.
    pub fn open(&mut self, a: BlobId, b: BlobId) {
        self.open.push((a, b, true));
    }

    /// A pair answered without being walked (known already): `ok` goes to its holder.
    pub fn settle(&mut self, ok: bool) {
        match self.open.last_mut() {
            Some((_, _, yes)) => *yes &= ok,
            None => self.roots = ok,
        }
    }

    /// The innermost open pair's answer is no.
    pub fn no(&mut self) {
        if let Some((_, _, yes)) = self.open.last_mut() {
            *yes = false;
        }
    }

    /// Is the innermost open pair's answer still yes?
    pub fn yes_so_far(&self) -> bool {
        self.open.last().is_none_or(|(_, _, yes)| *yes)
    }

    /// The innermost pair is done (walked, or its `a` could not be read: `ok` false): its
    /// answer, also given to its holder.
    pub fn close(&mut self, ok: bool) -> Option<(BlobId, BlobId, bool)> {
        let (a, b, yes) = self.open.pop()?;
        let yes = yes && ok;
        self.settle(yes);
        Some((a, b, yes))
    }

    /// The roots' answer, once the walk is over.
    pub fn roots(&self) -> bool {
        self.roots
    }
}
