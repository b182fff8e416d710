//! The library files of a snapshot (photos, videos, sidecars) keyed by content, for "what
//! vanished" and `diff`.
//! A photo's identity is its content: the BLAKE3 of its chunk ids, so the same photo under
//! another name or folder is the same photo.

use anyhow::Result;
use snapvault_repo::index::Index;
use snapvault_repo::tree::{MediaMeta, Node, NodeKind};
use snapvault_repo::walk::{
    PairVisitor, RepoTrees, Sharing, Side, TreeSource, TreeWalker, Visitor, shown, walk_pair,
};
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

/// The library files (see [`is_library_file`]) of the snapshot tree `old`, with their
/// content keys, in the folders that differ from the same folder of the tree `new`: a
/// folder with the same tree id in both holds the same files under the same paths, so
/// none of them can have vanished and it is not read. Only library files are kept, so a
/// no-change snapshot of 200,000 other files holds nothing here (it held every file of the
/// parent, node and path, at once: the peak of the no-change snapshot).
pub fn library_files_changed(
    repo: &Repository,
    index: &Index,
    old: &BlobId,
    new: Option<&BlobId>,
) -> Result<Vec<(ContentKey, PhotoEntry)>> {
    changed_library_files(&RepoTrees { repo, index }, old, new)
}

/// [`library_files_changed`] with trees from `trees`: a pair walk of the one walker, the
/// old tree beside the new.
fn changed_library_files(
    trees: &dyn TreeSource,
    old: &BlobId,
    new: Option<&BlobId>,
) -> Result<Vec<(ContentKey, PhotoEntry)>> {
    struct Changed(Vec<(ContentKey, PhotoEntry)>);
    impl PairVisitor for Changed {
        /// A folder with the same tree in both is not read.
        fn pair(
            &mut self,
            _: &[u8],
            a: &BlobId,
            b: Option<&BlobId>,
        ) -> snapvault_repo::Result<bool> {
            Ok(b != Some(a))
        }
        fn entry(&mut self, p: &[u8], n: &Node, _: Option<&Node>) -> snapvault_repo::Result<bool> {
            match n.kind {
                NodeKind::Dir => return Ok(n.subtree.is_some()),
                NodeKind::File if is_library_file(&n.media) => self.0.push((
                    content_key(n),
                    PhotoEntry {
                        path: shown(p),
                        media: n.media.clone(),
                    },
                )),
                _ => {}
            }
            Ok(false)
        }
        /// The old tree must be read whole; a new folder that cannot be read only means
        /// its old counterpart is read through.
        fn unreadable(
            &mut self,
            _: &[u8],
            side: Side,
            _: &BlobId,
            e: RepoError,
        ) -> snapvault_repo::Result<()> {
            match side {
                Side::A => Err(e),
                Side::B => Ok(()),
            }
        }
    }
    let mut v = Changed(Vec::new());
    walk_pair(
        trees,
        trees,
        *old,
        new.copied(),
        &format!("tree {}", old.short()),
        &mut v,
    )?;
    let mut out = v.0;
    out.sort_by(|a, b| a.1.path.cmp(&b.1.path));
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use snapvault_repo::Id;
    use snapvault_repo::tree::{Name, Tree};
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Trees from a map, each load logged.
    struct Logged {
        trees: HashMap<BlobId, Tree>,
        loaded: Mutex<Vec<BlobId>>,
    }

    impl TreeSource for Logged {
        fn load_tree(&self, id: &BlobId) -> snapvault_repo::Result<Tree> {
            self.loaded.lock().unwrap().push(*id);
            self.trees
                .get(id)
                .cloned()
                .ok_or_else(|| RepoError::MissingBlob(id.to_hex()))
        }
    }

    fn node(name: &str, kind: NodeKind, media: Option<&str>, subtree: Option<BlobId>) -> Node {
        Node {
            name: Name::from(name),
            kind,
            mode: 0o644,
            mtime: 0,
            btime: None,
            size: 1,
            content: vec![BlobId(Id::hash_of(name.as_bytes()))],
            subtree,
            target: None,
            media: media.map(|k| MediaMeta {
                kind: k.into(),
                taken: None,
                date_source: None,
                pair: None,
                content_id: None,
            }),
            rdev: None,
            dev: None,
            ino: None,
            ctime: None,
            inode: None,
        }
    }

    /// A folder whose tree is the same in both snapshots is not read (its files cannot
    /// have vanished), and only library files of the other folders are listed. Before, the
    /// whole parent snapshot was read and every file, photo or not, held at once.
    #[test]
    fn unchanged_folders_are_not_read_and_only_library_files_are_kept() {
        let id = |s: &str| BlobId(Id::hash_of(s.as_bytes()));
        let same = Tree {
            nodes: vec![node("big.bin", NodeKind::File, None, None)],
        };
        let old_dcim = Tree {
            nodes: vec![
                node("IMG_1.HEIC", NodeKind::File, Some("photo"), None),
                node("IMG_2.MOV", NodeKind::File, Some("video"), None),
                node("notes.txt", NodeKind::File, Some("other"), None),
                node("x.bin", NodeKind::File, None, None),
            ],
        };
        let new_dcim = Tree {
            nodes: vec![node("IMG_1.HEIC", NodeKind::File, Some("photo"), None)],
        };
        let old_root = Tree {
            nodes: vec![
                node("DCIM", NodeKind::Dir, None, Some(id("old_dcim"))),
                node("other", NodeKind::Dir, None, Some(id("same"))),
            ],
        };
        let new_root = Tree {
            nodes: vec![
                node("DCIM", NodeKind::Dir, None, Some(id("new_dcim"))),
                node("other", NodeKind::Dir, None, Some(id("same"))),
            ],
        };
        let trees: HashMap<BlobId, Tree> = [
            ("same", same),
            ("old_dcim", old_dcim),
            ("new_dcim", new_dcim),
            ("old_root", old_root),
            ("new_root", new_root),
        ]
        .into_iter()
        .map(|(k, t)| (id(k), t))
        .collect();
        let load = Logged {
            trees,
            loaded: Mutex::new(Vec::new()),
        };
        let got = changed_library_files(&load, &id("old_root"), Some(&id("new_root"))).unwrap();
        let paths: Vec<&str> = got.iter().map(|(_, e)| e.path.as_str()).collect();
        assert_eq!(paths, ["DCIM/IMG_1.HEIC", "DCIM/IMG_2.MOV"]);
        let loaded = load.loaded.lock().unwrap().clone();
        assert!(!loaded.contains(&id("same")), "{loaded:?}");
        // Without a new tree (the parent alone), every folder is read.
        let all = changed_library_files(&load, &id("old_root"), None).unwrap();
        assert_eq!(all.len(), 2);
        assert!(load.loaded.lock().unwrap().contains(&id("same")));
    }
}
