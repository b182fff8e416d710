//! The photo-loss guard: which photos removing some snapshots would lose, by content.

use std::collections::HashSet;

use serde::Serialize;

use crate::error::{RepoError, Result};
use crate::format::id::{BlobId, SnapshotId};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{NodeKind, Tree};
use crate::repository::Repository;
use crate::repository::index::Index;
use crate::repository::walk::{TreeWalker, Visitor, join, shown};

/// A photo (or video or sidecar) that no remaining snapshot would hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LostPhoto {
    pub path: String,
    pub kind: String,
    pub taken: Option<String>,
    pub size: u64,
    /// A snapshot to be removed that holds it.
    pub snapshot: SnapshotId,
}

/// What removing some snapshots would lose.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PhotoLoss {
    /// Lost photos, one per distinct content, sorted by path.
    pub lost: Vec<LostPhoto>,
    pub bytes: u64,
    /// Earliest and latest capture time (as recorded, local wall time) of the lost photos.
    pub first_taken: Option<String>,
    pub last_taken: Option<String>,
    /// Trees that could not be read. Unreadable trees of snapshots to be removed make the
    /// answer unknown ([`PhotoLoss::is_safe`] is then false).
    pub problems: Vec<String>,
    pub unverifiable: usize,
}

impl PhotoLoss {
    pub fn is_safe(&self) -> bool {
        self.lost.is_empty() && self.unverifiable == 0
    }
}

/// Identity of a file's content: a digest of its blob ids (16 bytes is plenty against
/// accidental collisions among a library's files).
fn content_key(content: &[BlobId]) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    for b in content {
        h.update(b.as_bytes());
    }
    let mut k = [0u8; 16];
    k.copy_from_slice(&h.finalize().as_bytes()[..16]);
    k
}

pub(super) fn taken_key(t: &str) -> &str {
    crate::format::text::prefix(t, 19)
}

/// Photos held by `removed` snapshots whose content appears in none of `remaining` (as any
/// file). Trees are visited once each, and trees shared with a remaining snapshot are not
/// visited again for the removed ones (they cannot hold a lost photo). Memory: the set of
/// content keys of every distinct file in the remaining snapshots (≈ 40 bytes each) plus
/// the visited tree ids.
pub fn photos_lost(
    repo: &Repository,
    index: &Index,
    remaining: &[&Snapshot],
    removed: &[(SnapshotId, &Snapshot)],
) -> Result<PhotoLoss> {
    let mut walker = TreeWalker::new(repo, index);
    let mut kept = Kept {
        content: HashSet::new(),
        problems: Vec::new(),
    };
    for s in remaining {
        walker.walk(s.tree, &mut kept)?;
    }
    let mut lost = Lost {
        kept: kept.content,
        seen: HashSet::new(),
        snapshot: SnapshotId::default(),
        loss: PhotoLoss {
            problems: kept.problems,
            ..Default::default()
        },
    };
    for (sid, s) in removed {
        lost.snapshot = *sid;
        walker.walk(s.tree, &mut lost)?;
    }
    let mut loss = lost.loss;
    loss.lost.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(loss)
}

/// The content of every file of the remaining snapshots.
struct Kept {
    content: HashSet<[u8; 16]>,
    problems: Vec<String>,
}

impl Visitor for Kept {
    fn tree(&mut self, _id: &BlobId, _path: &[u8], tree: &Tree) -> Result<bool> {
        for n in &tree.nodes {
            // Symlinks, FIFOs, sockets, devices: no data; folders are walked.
            if n.kind == NodeKind::File {
                self.content.insert(content_key(&n.content));
            }
        }
        Ok(true)
    }

    fn unreadable(&mut self, id: &BlobId, _path: &[u8], e: RepoError) -> Result<()> {
        // Conservative: what it holds is treated as absent.
        self.problems
            .push(format!("tree {} of a remaining snapshot: {e}", id.short()));
        Ok(())
    }
}

/// The photos of the snapshots to remove that are not [`Kept`].
struct Lost {
    kept: HashSet<[u8; 16]>,
    /// Content already listed as lost.
    seen: HashSet<[u8; 16]>,
    snapshot: SnapshotId,
    loss: PhotoLoss,
}

impl Visitor for Lost {
    fn tree(&mut self, _id: &BlobId, path: &[u8], tree: &Tree) -> Result<bool> {
        let loss = &mut self.loss;
        for n in &tree.nodes {
            if n.kind != NodeKind::File {
                continue;
            }
            let Some(m) = &n.media else { continue };
            if !m.is_photo() {
                continue;
            }
            let key = content_key(&n.content);
            if self.kept.contains(&key) || !self.seen.insert(key) {
                continue;
            }
            loss.bytes += n.size;
            if let Some(t) = &m.taken {
                if loss
                    .first_taken
                    .as_deref()
                    .is_none_or(|f| taken_key(t) < taken_key(f))
                {
                    loss.first_taken = Some(t.clone());
                }
                if loss
                    .last_taken
                    .as_deref()
                    .is_none_or(|l| taken_key(t) > taken_key(l))
                {
                    loss.last_taken = Some(t.clone());
                }
            }
            loss.lost.push(LostPhoto {
                path: join(path, n),
                kind: m.kind.clone(),
                taken: m.taken.clone(),
                size: n.size,
                snapshot: self.snapshot,
            });
        }
        Ok(true)
    }

    fn unreadable(&mut self, _id: &BlobId, path: &[u8], e: RepoError) -> Result<()> {
        self.loss.unverifiable += 1;
        let at = if path.is_empty() {
            "/".into()
        } else {
            shown(path)
        };
        self.loss.problems.push(format!(
            "tree of {at} in snapshot {} cannot be read: {e}",
            self.snapshot.short()
        ));
        Ok(())
    }
}
