//! A snapshot whose lock may have been lost (a laptop suspended past the lease, a failed
//! refresh, the lock removed by `unlock`) cannot trust the index it loaded at the start: a
//! prune elsewhere may have taken the lock as stale and deleted packs holding blobs the
//! snapshot reuses. Before committing, every blob of the new snapshot is looked up again in
//! the index as it is now (its files re-read) plus the packs this run wrote that are still
//! stored. A snapshot missing anything is not saved.

use crate::error::{LockLoss, RepoError, Result};
use crate::format::id::BlobId;
use crate::format::tree::{NodeKind, Tree};
use crate::repository::Repository;
use crate::repository::index::{Index, IndexFile};
use crate::repository::packer::Flushed;
use crate::repository::walk::{TreeWalker, Visitor, join, shown};

/// Check that the tree `root` and everything under it is stored; `why` says how the lock
/// was lost. Pending packs deleted meanwhile are dropped from the coming index file.
pub fn check(repo: &Repository, flushed: &Flushed, root: &BlobId, why: &LockLoss) -> Result<()> {
    flushed.drop_missing()?;
    let mut index = repo.load_index()?.index;
    index.add_file(&IndexFile {
        supersedes: Vec::new(),
        packs: flushed.pending(),
    });
    let mut v = Missing {
        index: &index,
        count: 0,
        example: None,
    };
    TreeWalker::new(repo, &index).walk(*root, &mut v)?;
    let (missing, example) = (v.count, v.example);
    match (missing, example) {
        (0, _) => Ok(()),
        (missing, example) => Err(RepoError::LockLost {
            why: why.clone(),
            missing,
            example: example.unwrap_or_default(),
        }),
    }
}

/// Counts the folders and files whose data is not stored, and names the first.
struct Missing<'a> {
    index: &'a Index,
    count: u64,
    example: Option<String>,
}

impl Missing<'_> {
    fn note(&mut self, path: String) {
        self.count += 1;
        self.example.get_or_insert(path);
    }
}

impl Visitor for Missing<'_> {
    fn tree(&mut self, _id: &BlobId, path: &[u8], tree: &Tree) -> Result<bool> {
        for n in &tree.nodes {
            if n.kind == NodeKind::File && n.content.iter().any(|c| !self.index.contains(c)) {
                self.note(join(path, n));
            }
        }
        Ok(true)
    }

    fn unreadable(&mut self, id: &BlobId, path: &[u8], e: RepoError) -> Result<()> {
        if self.index.contains(id) {
            return Err(e);
        }
        self.note(shown(path));
        Ok(())
    }
}
