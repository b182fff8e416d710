//! `restore --date`: the edits made in Photos come with their originals. An edit lives in
//! `PhotoData/Mutations/<original's folder>/<name>/Adjustments/FullSizeRender.*` in the same
//! snapshot as the original, beside its `DCIM` wherever the media root sits (at the root of
//! a phone's snapshot, under `iPhone/` in a folder snapshot of a copied media root;
//! [`crate::library::edit_in`]); with `--layout date` it is put beside the original as
//! `IMG_E1234.JPG` (the name Image Capture gives an edit, which Photos on a Mac imports as
//! the edited version), with `--layout original` at its own path (with its
//! `Adjustments.plist`). `--originals-only` and `--edits-only` choose one side.

use std::collections::HashMap;

use anyhow::Result;
use snapvault_repo::index::Index;
use snapvault_repo::tree::{Node, NodeKind, Tree};
use snapvault_repo::{BlobId, Repository};

use super::restore_date::Found;
use crate::cli::Layout;
use crate::library::{adjustments_dirs, edit_in};

/// Which side of an edited photo to restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Both,
    Originals,
    Edits,
}

/// Is this file an edit: a file of `PhotoData/Mutations`, or Apple's `IMG_E1234` rendition
/// beside an original?
fn is_edit(path: &[u8]) -> bool {
    let p = String::from_utf8_lossy(path);
    if edit_in(&p).is_some() {
        return true;
    }
    let name = p.rsplit_once('/').map_or(p.as_ref(), |(_, n)| n);
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    stem.rsplit_once('_').is_some_and(|(_, n)| {
        n.len() > 1 && n.starts_with('E') && n[1..].bytes().all(|b| b.is_ascii_digit())
    })
}

/// The name an edit gets beside its original: `IMG_E1234.JPG` for `IMG_1234.HEIC` and a
/// `FullSizeRender.jpg`; `NAME_edited.JPG` for a name without Apple's number.
fn edit_name(original: &[u8], render: &[u8]) -> Vec<u8> {
    let orig = String::from_utf8_lossy(original);
    let orig = orig.rsplit_once('/').map_or(orig.as_ref(), |(_, n)| n);
    let ext = String::from_utf8_lossy(render)
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_uppercase())
        .unwrap_or_default();
    let stem = match snapvault_photolib::e_rendition(orig) {
        Some(e) => e,
        None => {
            let base = orig.rsplit_once('.').map_or(orig, |(s, _)| s);
            format!("{base}_edited")
        }
    };
    if ext.is_empty() {
        stem.into_bytes()
    } else {
        format!("{stem}.{ext}").into_bytes()
    }
}

/// The nodes of the folder at `path` under `root`, `None` when there is none.
fn dir_nodes(
    repo: &Repository,
    index: &Index,
    trees: &mut HashMap<BlobId, Tree>,
    root: BlobId,
    path: &str,
) -> Result<Option<Vec<Node>>> {
    let mut id = root;
    for part in path.split('/') {
        let tree = match trees.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(repo.load_tree(index, &id)?),
        };
        match tree.nodes.iter().find(|n| n.name.0 == part.as_bytes()) {
            Some(n) if n.kind == NodeKind::Dir => match n.subtree {
                Some(sub) => id = sub,
                None => return Ok(None),
            },
            _ => return Ok(None),
        }
    }
    let tree = match trees.entry(id) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => e.insert(repo.load_tree(index, &id)?),
    };
    Ok(Some(tree.nodes.clone()))
}

/// The photos to restore: the edits found in Mutations put beside their originals (or at
/// their own paths), then `side` applied. Edits the catalog selected on their own are
/// dropped: they come with their original.
pub fn with_edits(
    repo: &Repository,
    index: &Index,
    found: Vec<Found>,
    layout: Layout,
    side: Side,
) -> Result<Vec<Found>> {
    let mut trees = HashMap::new();
    let (_, originals): (Vec<Found>, Vec<Found>) = found
        .into_iter()
        .partition(|f| edit_in(&String::from_utf8_lossy(&f.path)).is_some());
    let mut edits = Vec::new();
    for o in &originals {
        if !matches!(o.kind.as_str(), "photo" | "video") || is_edit(&o.path) {
            continue;
        }
        let mut found = None;
        for adj in adjustments_dirs(&String::from_utf8_lossy(&o.path)) {
            if let Some(nodes) = dir_nodes(repo, index, &mut trees, o.root, &adj)? {
                found = Some((adj, nodes));
                break;
            }
        }
        let Some((adj, nodes)) = found else {
            continue;
        };
        for n in nodes.into_iter().filter(|n| n.kind == NodeKind::File) {
            let render = n.name.0.starts_with(b"FullSizeRender.");
            let path = match layout {
                Layout::Original => [adj.as_bytes(), b"/", &n.name.0].concat(),
                // Beside the original: only the render, under Apple's edit name.
                Layout::Date if render => {
                    let dir = o
                        .path
                        .iter()
                        .rposition(|&b| b == b'/')
                        .map_or(&o.path[..0], |i| &o.path[..=i]);
                    [dir, &edit_name(&o.path, &n.name.0)].concat()
                }
                Layout::Date => continue,
            };
            let media = n.media.clone().unwrap_or_default();
            edits.push(Found {
                content_key: super::restore_date::content_key_of(&n),
                kind: if media.kind.is_empty() {
                    "sidecar".into()
                } else {
                    media.kind
                },
                taken: o.taken.clone(),
                // Grouped with the original, so it moves and is renamed with it.
                pair: o.pair.clone(),
                path,
                node: n,
                root: o.root,
            });
        }
    }
    Ok(match side {
        Side::Both => originals.into_iter().chain(edits).collect(),
        Side::Originals => originals
            .into_iter()
            .filter(|f| !is_edit(&f.path))
            .collect(),
        Side::Edits => originals
            .into_iter()
            .filter(|f| is_edit(&f.path))
            .chain(edits)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_names() {
        assert_eq!(
            edit_name(b"DCIM/100APPLE/IMG_1234.HEIC", b"FullSizeRender.jpg"),
            b"IMG_E1234.JPG"
        );
        assert_eq!(
            edit_name(b"IMG_0007.MOV", b"FullSizeRender.mov"),
            b"IMG_E0007.MOV"
        );
        assert_eq!(
            edit_name(b"A1B2.JPG", b"FullSizeRender.heic"),
            b"A1B2_edited.HEIC"
        );
        assert!(is_edit(b"DCIM/100APPLE/IMG_E0009.HEIC"));
        assert!(is_edit(
            b"PhotoData/Mutations/DCIM/100APPLE/IMG_0009/Adjustments/FullSizeRender.jpg"
        ));
        assert!(is_edit(
            b"iPhone/PhotoData/Mutations/DCIM/100APPLE/IMG_0009/Adjustments/Adjustments.plist"
        ));
        assert!(!is_edit(b"DCIM/100APPLE/IMG_0009.HEIC"));
        assert!(!is_edit(b"DCIM/100APPLE/IMG_EXTRA.HEIC"));
    }
}
