//! The photos of a snapshot as a set keyed by content, for "what vanished" and `diff`.
//! A photo's identity is its content: the BLAKE3 of its chunk ids, so the same photo under
//! another name or folder is the same photo.

use std::collections::HashMap;

use anyhow::Result;
use snapvault_repo::index::Index;
use snapvault_repo::tree::{MediaMeta, Node, NodeKind};
use snapvault_repo::{BlobId, Repository};

pub type ContentKey = [u8; 32];

pub fn content_key(node: &Node) -> ContentKey {
    let mut h = blake3::Hasher::new();
    for id in &node.content {
        h.update(id.as_bytes());
    }
    *h.finalize().as_bytes()
}

/// Is this file a photo or video (not a sidecar, not an unrecognised file)?
pub fn is_photo(m: &Option<MediaMeta>) -> bool {
    m.as_ref()
        .is_some_and(|m| m.kind == "photo" || m.kind == "video")
}

#[derive(Clone, Debug)]
pub struct PhotoEntry {
    pub path: String,
    pub media: Option<MediaMeta>,
}

/// Every file of a snapshot tree (media or not), by path.
pub fn files_of(repo: &Repository, index: &Index, root: &BlobId) -> Result<Vec<(String, Node)>> {
    let mut out = Vec::new();
    let mut stack = vec![(*root, String::new())];
    while let Some((tid, path)) = stack.pop() {
        let tree = repo.load_tree(index, &tid)?;
        for n in tree.nodes {
            let p = if path.is_empty() {
                n.name.lossy()
            } else {
                format!("{path}/{}", n.name.lossy())
            };
            match (n.kind, n.subtree) {
                (NodeKind::Dir, Some(sub)) => stack.push((sub, p)),
                (NodeKind::File, _) => out.push((p, n)),
                _ => {}
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Photos and videos of a snapshot by content.
pub fn photos_of(
    repo: &Repository,
    index: &Index,
    root: &BlobId,
) -> Result<HashMap<ContentKey, PhotoEntry>> {
    Ok(files_of(repo, index, root)?
        .into_iter()
        .filter(|(_, n)| is_photo(&n.media))
        .map(|(path, n)| {
            (
                content_key(&n),
                PhotoEntry {
                    path,
                    media: n.media,
                },
            )
        })
        .collect())
}

/// `YYYY-MM` of a capture time string.
pub fn month_of(taken: &str) -> &str {
    taken.get(..7).unwrap_or(taken)
}

/// "(taken 2021-03..2023-11)" for a set of photos, or "" when no dates are known.
pub fn taken_range<'a>(entries: impl Iterator<Item = &'a PhotoEntry>) -> Option<(String, String)> {
    let mut dates: Vec<&str> = entries
        .filter_map(|e| e.media.as_ref()?.taken.as_deref())
        .map(month_of)
        .collect();
    dates.sort_unstable();
    Some((dates.first()?.to_string(), dates.last()?.to_string()))
}
