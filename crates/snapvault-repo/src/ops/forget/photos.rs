//! The photo-loss guard: which photos removing some snapshots would lose, by content.

use std::collections::HashSet;

use serde::Serialize;

use crate::error::Result;
use crate::format::id::{BlobId, SnapshotId};
use crate::format::snapshot::Snapshot;
use crate::format::tree::NodeKind;
use crate::repository::Repository;
use crate::repository::index::Index;

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
    let mut loss = PhotoLoss::default();
    let mut visited: HashSet<BlobId> = HashSet::new();
    let mut kept_content: HashSet<[u8; 16]> = HashSet::new();
    for s in remaining {
        let mut stack = vec![s.tree];
        while let Some(t) = stack.pop() {
            if !visited.insert(t) {
                continue;
            }
            let tree = match repo.load_tree(index, &t) {
                Ok(tree) => tree,
                Err(e) => {
                    // Conservative: what it holds is treated as absent.
                    loss.problems
                        .push(format!("tree {} of a remaining snapshot: {e}", t.short()));
                    continue;
                }
            };
            for n in tree.nodes {
                match n.kind {
                    NodeKind::Dir => stack.extend(n.subtree),
                    NodeKind::File => {
                        kept_content.insert(content_key(&n.content));
                    }
                    // Symlinks, FIFOs, sockets, devices: no data.
                    _ => {}
                }
            }
        }
    }
    let mut seen_lost: HashSet<[u8; 16]> = HashSet::new();
    for (sid, s) in removed {
        let mut stack = vec![(s.tree, String::new())];
        while let Some((t, path)) = stack.pop() {
            if !visited.insert(t) {
                continue;
            }
            let tree = match repo.load_tree(index, &t) {
                Ok(tree) => tree,
                Err(e) => {
                    loss.unverifiable += 1;
                    let shown = if path.is_empty() { "/" } else { &path };
                    loss.problems.push(format!(
                        "tree of {shown} in snapshot {} cannot be read: {e}",
                        sid.short()
                    ));
                    continue;
                }
            };
            for n in tree.nodes {
                let p = if path.is_empty() {
                    n.name.lossy()
                } else {
                    format!("{path}/{}", n.name.lossy())
                };
                match n.kind {
                    NodeKind::Dir => {
                        if let Some(sub) = n.subtree {
                            stack.push((sub, p));
                        }
                    }
                    NodeKind::File => {
                        let Some(m) = &n.media else { continue };
                        if !m.is_photo() {
                            continue;
                        }
                        let key = content_key(&n.content);
                        if kept_content.contains(&key) || !seen_lost.insert(key) {
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
                            path: p,
                            kind: m.kind.clone(),
                            taken: m.taken.clone(),
                            size: n.size,
                            snapshot: *sid,
                        });
                    }
                    // Symlinks, FIFOs, sockets, devices: no data.
                    _ => {}
                }
            }
        }
    }
    loss.lost.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(loss)
}
