//! Snapshots taken with the index a snapshot loads ([`Repository::load_index_for_snapshot`]:
//! data blobs as bare ids, trees whole) are the snapshots taken with the whole index: the
//! same trees, the same blobs stored, nothing stored twice, and what they hold restores.

use std::collections::BTreeMap;

use super::*;
use crate::format::id::BlobId;
use crate::ops::fs_source::FolderSource;
use crate::ops::test_support::{Photos, create_small_repo, files, noise, open, verify};

/// Folders of small files, one repeated content, one empty file.
fn library(src: &std::path::Path, round: u64) {
    for d in 0..3u64 {
        let dir = src.join(format!("d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..40u64 {
            std::fs::write(
                dir.join(format!("f{f}")),
                noise(d * 1000 + f + round * 7, 100 + f as usize),
            )
            .unwrap();
        }
        std::fs::write(dir.join("same"), b"the same in every folder").unwrap();
        std::fs::write(dir.join("empty"), b"").unwrap();
    }
}

/// The file `name` in a folder `dir` under the tree `id`, read through `index`.
fn find(repo: &Repository, index: &Index, id: &BlobId, dir: &[u8], name: &[u8]) -> Option<Node> {
    for n in repo.load_tree(index, id).unwrap().nodes {
        match n.subtree {
            Some(sub) if n.name.0 == dir => {
                return repo
                    .load_tree(index, &sub)
                    .unwrap()
                    .nodes
                    .into_iter()
                    .find(|f| f.name.0 == name);
            }
            Some(sub) => {
                if let Some(f) = find(repo, index, &sub, dir, name) {
                    return Some(f);
                }
            }
            None => {}
        }
    }
    None
}

fn take(
    repo: &Repository,
    folder: &FolderSource,
    parent: Option<(SnapshotId, Snapshot)>,
    ids_only: bool,
) -> (SnapshotId, Snapshot) {
    let loaded = match ids_only {
        true => repo.load_index_for_snapshot(),
        false => repo.load_index(),
    }
    .unwrap();
    let opts = ArchiveOptions {
        parent,
        ..crate::testing::folder_options(folder)
    };
    run(repo, loaded.index, folder, opts, &NoHooks, &Photos).unwrap()
}

#[test]
fn snapshots_through_data_ids_are_the_snapshots_through_the_whole_index() {
    let dir = tempfile::tempdir().unwrap();
    let (root, src) = (dir.path().join("repo"), dir.path().join("lib"));
    create_small_repo(&root, true);
    let repo = open(&root);
    library(&src, 0);
    let folder = FolderSource::new(std::slice::from_ref(&src)).unwrap();
    let mut kept: Vec<(SnapshotId, BTreeMap<String, Vec<u8>>)> = Vec::new();
    let content = |src: &std::path::Path| {
        files(src)
            .into_iter()
            .map(|(k, v)| (format!("lib/{k}"), v))
            .collect::<BTreeMap<_, _>>()
    };

    // First snapshot through the ids: every blob stored once.
    let first = take(&repo, &folder, None, true);
    let blobs = repo.load_index().unwrap().index.blob_count() as u64;
    assert_eq!(first.1.summary.blobs_added, blobs);
    kept.push((first.0, content(&src)));

    // No change, both ways: the same tree, nothing read, nothing stored.
    for ids_only in [true, false] {
        let again = take(&repo, &folder, Some(first.clone()), ids_only);
        assert_eq!(again.1.tree, first.1.tree, "ids only: {ids_only}");
        let s = &again.1.summary;
        assert_eq!(
            (s.files_unchanged, s.bytes_read, s.blobs_added),
            (s.files_total, 0, 0)
        );
        kept.push((again.0, content(&src)));
    }

    // A change: new and changed files stored through the ids, then the whole index finds
    // nothing left to store and gives the same tree.
    library(&src, 1);
    std::fs::write(src.join("d1/new"), noise(99, 5000)).unwrap();
    let changed = take(&repo, &folder, Some(first.clone()), true);
    assert!(changed.1.summary.blobs_added > 0);
    let whole = take(&repo, &folder, Some(first.clone()), false);
    assert_eq!(whole.1.tree, changed.1.tree);
    assert_eq!(whole.1.summary.blobs_added, 0);
    kept.push((changed.0, content(&src)));
    kept.push((whole.0, content(&src)));
    verify(&root, &kept, "through data ids");
}

/// A data blob read through the index a snapshot loads (a Photos database read back, a
/// tree whose bytes a file holds too) is read through the whole index, loaded once.
#[test]
fn a_data_blob_reads_through_the_index_a_snapshot_loads() {
    let dir = tempfile::tempdir().unwrap();
    let (root, src) = (dir.path().join("repo"), dir.path().join("lib"));
    create_small_repo(&root, true);
    let repo = open(&root);
    library(&src, 0);
    let folder = FolderSource::new(std::slice::from_ref(&src)).unwrap();
    let (_, snap) = take(&repo, &folder, None, false);
    let loaded = repo.load_index_for_snapshot().unwrap();
    let node = find(&repo, &loaded.index, &snap.tree, b"d0", b"f3").unwrap();
    let id = node.content[0];
    assert!(loaded.index.contains(&id) && loaded.index.get(&id).is_none());
    assert_eq!(repo.read_blob(&loaded.index, &id).unwrap(), noise(3, 103));
}
