//! Unit tests of `read_back`: one read per pack region, damage found per blob, missing
//! packs and read errors told apart.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::format::id::{Id, PackId};
use crate::ops::test_support::{create_small_repo, noise, open, open_with, snapshot};
use crate::storage::faulty::{Effect, FaultyBackend, Op};
use crate::storage::{Backend, LocalBackend};

/// A repository holding one snapshot of a few photos and a multi-chunk video; returns the
/// temp dir, the repository root and every data blob its files use.
fn repo_with_data() -> (tempfile::TempDir, std::path::PathBuf, Vec<BlobId>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    create_small_repo(&root, true);
    let lib = dir.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    for i in 0..8u64 {
        std::fs::write(
            lib.join(format!("IMG_{i}.HEIC")),
            noise(i, 40_000 + 9000 * i as usize),
        )
        .unwrap();
    }
    std::fs::write(lib.join("clip.MOV"), noise(99, 2_500_000)).unwrap();
    let repo = open(&root);
    let (sid, _) = snapshot(&repo, &lib, &[]);
    let index = repo.load_index().unwrap().index;
    let snap = repo.load_snapshot(&sid).unwrap();
    let mut blobs = Vec::new();
    let mut stack = vec![snap.tree];
    while let Some(t) = stack.pop() {
        for n in repo.load_tree(&index, &t).unwrap().nodes {
            blobs.extend(n.content);
            stack.extend(n.subtree);
        }
    }
    (dir, root, blobs)
}

fn pack_path(root: &Path, pack: &PackId) -> std::path::PathBuf {
    let hex = pack.to_hex();
    root.join("data").join(&hex[..2]).join(hex)
}

fn run(repo: &Repository, blobs: &[BlobId]) -> ReadBack {
    let index = repo.load_index().unwrap().index;
    read_back(
        repo,
        &index,
        blobs.iter().copied(),
        3,
        &AtomicBool::new(false),
    )
    .unwrap()
}

#[test]
fn every_pack_region_is_read_once_and_verified() {
    let (_dir, root, blobs) = repo_with_data();
    let counting = Arc::new(
        FaultyBackend::new(Arc::new(LocalBackend::new(&root)))
            .watching(&[Op::Read])
            .kinds(&[FileKind::Pack]),
    );
    let repo = open_with(counting.clone() as Arc<dyn Backend>);
    let index = repo.load_index().unwrap().index;
    let reads_before = counting.count();
    // Each blob asked for twice (two files sharing it): still read once.
    let twice: Vec<BlobId> = blobs.iter().chain(&blobs).copied().collect();
    let r = read_back(&repo, &index, twice, 3, &AtomicBool::new(false)).unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    let packs: HashSet<u32> = blobs.iter().map(|b| index.get(b).unwrap().pack).collect();
    assert!(packs.len() > 1, "the test data should span several packs");
    assert_eq!(r.packs, packs.len());
    // The data blobs fill their packs back to back: one range read per pack.
    assert_eq!(counting.count() - reads_before, packs.len() as u64);
    let stored: u64 = blobs
        .iter()
        .collect::<HashSet<_>>()
        .iter()
        .map(|b| index.get(b).unwrap().length as u64)
        .sum();
    assert_eq!(r.bytes_read, stored);
}

#[test]
fn a_flipped_byte_fails_exactly_its_blob() {
    let (_dir, root, blobs) = repo_with_data();
    let repo = open(&root);
    let index = repo.load_index().unwrap().index;
    let victim = blobs[blobs.len() / 2];
    let loc = *index.get(&victim).unwrap();
    let path = pack_path(&root, &index.pack_of(&loc));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[loc.offset as usize + loc.length as usize / 2] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let r = run(&repo, &blobs);
    assert_eq!(r.failed.len(), 1, "{:?}", r.failed);
    match &r.failed[&victim] {
        Failure::Damaged(why) => assert!(why.contains("fail verification"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_pack_and_an_unindexed_blob_are_damage() {
    let (_dir, root, blobs) = repo_with_data();
    let repo = open(&root);
    let index = repo.load_index().unwrap().index;
    let pack = index.pack_of(index.get(&blobs[0]).unwrap());
    std::fs::remove_file(pack_path(&root, &pack)).unwrap();
    let stranger = BlobId(Id::random());
    let mut wanted = blobs.clone();
    wanted.push(stranger);
    let r = run(&repo, &wanted);
    let in_pack: Vec<&BlobId> = blobs
        .iter()
        .filter(|b| index.pack_of(index.get(b).unwrap()) == pack)
        .collect();
    assert_eq!(r.failed.len(), in_pack.len() + 1, "{:?}", r.failed);
    for b in in_pack {
        assert!(
            matches!(&r.failed[b], Failure::Damaged(w) if w.contains("is missing")),
            "{:?}",
            r.failed[b]
        );
    }
    assert!(matches!(&r.failed[&stranger], Failure::Damaged(w) if w.contains("index")));
}

#[test]
fn a_read_error_is_not_damage() {
    let (_dir, root, blobs) = repo_with_data();
    let eio = Arc::new(
        FaultyBackend::new(Arc::new(LocalBackend::new(&root)))
            .watching(&[Op::Read])
            .kinds(&[FileKind::Pack])
            .fail_at(1, Effect::ErrnoFromThenOn(libc::EIO)),
    );
    let repo = open_with(eio as Arc<dyn Backend>);
    let r = run(&repo, &blobs);
    assert_eq!(
        r.failed.len(),
        blobs.iter().collect::<HashSet<_>>().len(),
        "{:?}",
        r.failed
    );
    assert!(
        r.failed.values().all(|f| matches!(f, Failure::Unread(_))),
        "{:?}",
        r.failed
    );
}
