//! The library files of a snapshot (photos, videos, sidecars) keyed by content, for "what
//! vanished" and `diff`.
//! A photo's identity is its content: the BLAKE3 of its chunk ids, so the same photo under
//! another name or folder is the same photo.

use anyhow::Result;
use snapvault_repo::index::Index;
use snapvault_repo::tree::{MediaMeta, Node, NodeKind};
use snapvault_repo::walk::{Sharing, TreeWalker, Visitor, shown};
use snapvault_repo::{BlobId, RepoError, Repository};

pub type ContentKey = [u8; 32];

pub fn content_key(node: &Node) -> ContentKey {
    let mut h = blake3::Hasher::new();
    for id in &node.content {
        h.update(id.as_bytes());
    }
    *h.finalize().as_bytes()
}

/// Is this file one of the library's own: a photo, a video or an edit sidecar (`.AAE`),
/// not an unrecognised file? `diff` and the "no longer on the source" summary both count
/// exactly these, so their numbers agree.
pub fn is_library_file(m: &Option<MediaMeta>) -> bool {
    m.as_ref().is_some_and(|m| m.kind != "other")
}

/// "1 photo, 1 video, 1 sidecar": what a list of library files is made of.
pub fn kinds_text<'a>(kinds: impl Iterator<Item = Option<&'a str>>) -> String {
    let counts = kinds_count(kinds);
    counts
        .iter()
        .map(|(k, n)| {
            let plural = if *n == 1 { "" } else { "s" };
            match *k {
                "other" => format!("{n} other file{plural}"),
                k => format!("{n} {k}{plural}"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many of each kind (photo, video, sidecar, other), in that order.
pub fn kinds_count<'a>(kinds: impl Iterator<Item = Option<&'a str>>) -> Vec<(&'static str, usize)> {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for k in kinds {
        let k = match k {
            Some("photo") => "photo",
            Some("video") => "video",
            Some("sidecar") => "sidecar",
            _ => "other",
        };
        match counts.iter_mut().find(|(kk, _)| *kk == k) {
            Some((_, n)) => *n += 1,
            None => counts.push((k, 1)),
        }
    }
    let order = ["photo", "video", "sidecar", "other"];
    counts.sort_by_key(|(k, _)| order.iter().position(|o| o == k));
    counts
}

#[derive(Clone, Debug)]
pub struct PhotoEntry {
    pub path: String,
    pub media: Option<MediaMeta>,
}

/// Every file of a snapshot tree (media or not), by path: a walk of every path, so a
/// folder listing shared by several folders yields its files under each.
pub fn files_of(repo: &Repository, index: &Index, root: &BlobId) -> Result<Vec<(String, Node)>> {
    struct Files(Vec<(String, Node)>);
    impl Visitor for Files {
        fn entry(&mut self, path: &[u8], n: &Node) -> snapvault_repo::Result<bool> {
            if n.kind == NodeKind::File {
                self.0.push((shown(path), n.clone()));
            }
            Ok(true)
        }
        fn unreadable(&mut self, _: &BlobId, _: &[u8], e: RepoError) -> snapvault_repo::Result<()> {
            Err(e)
        }
    }
    let mut out = Files(Vec::new());
    TreeWalker::with(repo, index, Sharing::EveryPath { keep: false }).walk(*root, &mut out)?;
    let mut out = out.0;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The library files of a snapshot (see [`is_library_file`]), with their content keys.
pub fn library_files_of(
    repo: &Repository,
    index: &Index,
    root: &BlobId,
) -> Result<Vec<(ContentKey, PhotoEntry)>> {
    Ok(files_of(repo, index, root)?
        .into_iter()
        .filter(|(_, n)| is_library_file(&n.media))
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
