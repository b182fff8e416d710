//! Unit tests of `copy`: the lockstep id map, and copies that restore and check.

use std::path::Path;

use super::*;
use crate::format::tree::{NodeKind, Tree};
use crate::ops::observe::NoHooks;
use crate::ops::test_support::{create_small_repo, noise, open, photo, snapshot, verify};

/// Every tree and chunk id reachable from `root`.
fn reachable(repo: &Repository, index: &Index, root: BlobId) -> HashSet<BlobId> {
    let mut out = HashSet::new();
    let mut stack = vec![root];
    while let Some(t) = stack.pop() {
        if !out.insert(t) {
            continue;
        }
        for n in repo.load_tree(index, &t).unwrap().nodes {
            out.extend(n.content);
            stack.extend(n.subtree);
        }
    }
    out
}

fn copy_all(src: &Repository, dst: &Repository) -> Vec<CopyResult> {
    let src_index = src.load_index().unwrap().index;
    let (all, _) = src.snapshots().unwrap();
    let ids: Vec<SnapshotId> = all.iter().map(|(i, _)| *i).collect();
    let repos = Repos {
        src,
        src_index: &src_index,
        dst,
        dst_index: dst.load_index().unwrap().index,
    };
    copy(repos, &all, &ids, &NoHooks).unwrap()
}

fn library(dir: &Path) -> std::path::PathBuf {
    let lib = dir.join("lib");
    std::fs::create_dir_all(lib.join("2023")).unwrap();
    std::fs::create_dir_all(lib.join("2024/deep")).unwrap();
    for i in 0..6 {
        photo(&lib.join("2023"), i);
    }
    photo(&lib.join("2024/deep"), 50);
    // Several chunks (16 KiB average in these repositories), a compressible file, an
    // empty one and a symlink.
    std::fs::write(lib.join("2024/video.MOV"), noise(7, 300_000)).unwrap();
    std::fs::write(lib.join("notes.txt"), b"compressible ".repeat(5000)).unwrap();
    std::fs::write(lib.join("empty"), b"").unwrap();
    std::os::unix::fs::symlink("2023", lib.join("link")).unwrap();
    lib
}

#[test]
fn lockstep_maps_every_tree_and_chunk_to_its_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    create_small_repo(&a, true);
    create_small_repo(&b, true);
    let (src, dst) = (open(&a), open(&b));
    let lib = library(dir.path());
    let (sid, content) = snapshot(&src, &lib, &[]);
    let res = copy_all(&src, &dst);
    let Outcome::Copied(did) = res[0].outcome else {
        panic!("{res:?}")
    };
    verify(&b, &[(did, content)], "copy");

    let (si, di) = (
        src.load_index().unwrap().index,
        dst.load_index().unwrap().index,
    );
    let (s, d) = (
        src.load_snapshot(&sid).unwrap(),
        dst.load_snapshot(&did).unwrap(),
    );
    assert_eq!(d.original, Some(sid));
    let mut map = BlobMap::default();
    assert!(learn_pair(&src, &si, &dst, &di, s.tree, d.tree, &mut map));
    let ids = reachable(&src, &si, s.tree);
    assert_eq!(map.len(), ids.len(), "every tree and chunk, nothing else");
    assert_eq!(map.get(&s.tree), Some(&d.tree));
    for id in ids {
        let to = map[&id];
        let plain = src.read_blob(&si, &id).unwrap();
        if si.get(&id).unwrap().typ() == BlobType::Data {
            assert_eq!(dst.read_blob(&di, &to).unwrap(), plain);
        } else {
            // The copied tree is the source tree with the mapped ids.
            let mut t = Tree::decode(&plain).unwrap();
            for n in &mut t.nodes {
                n.content.iter_mut().for_each(|c| *c = map[&*c]);
                n.subtree = n.subtree.map(|x| map[&x]);
            }
            assert_eq!(dst.load_tree(&di, &to).unwrap(), t);
        }
    }
    // Learning again is free: the root is known.
    let before = map.len();
    assert!(learn_pair(&src, &si, &dst, &di, s.tree, d.tree, &mut map));
    assert_eq!(map.len(), before);
}

#[test]
fn lockstep_learns_only_what_corresponds() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    create_small_repo(&a, true);
    create_small_repo(&b, true);
    let (src, dst) = (open(&a), open(&b));
    let lib = library(dir.path());
    snapshot(&src, &lib, &[]);
    copy_all(&src, &dst);
    // A new photo in 2024/deep: that folder, 2024 and the root change; 2023 does not.
    photo(&lib.join("2024/deep"), 51);
    let (s2, _) = snapshot(&src, &lib, &[]);
    let (si, di) = (
        src.load_index().unwrap().index,
        dst.load_index().unwrap().index,
    );
    let (dsnaps, _) = dst.snapshots().unwrap();
    let new = src.load_snapshot(&s2).unwrap();
    let mut map = BlobMap::default();
    // The new snapshot against the copy of the old one: not the same tree.
    assert!(!learn_pair(
        &src,
        &si,
        &dst,
        &di,
        new.tree,
        dsnaps[0].1.tree,
        &mut map
    ));
    assert!(!map.contains_key(&new.tree));
    let root = src.load_tree(&si, &new.tree).unwrap();
    let lib_tree = src.load_tree(&si, &root.nodes[0].subtree.unwrap()).unwrap();
    let sub = |t: &Tree, name: &str| {
        let n = t
            .nodes
            .iter()
            .find(|n| n.name.0 == name.as_bytes())
            .unwrap();
        assert_eq!(n.kind, NodeKind::Dir);
        n.subtree.unwrap()
    };
    let y2024 = src.load_tree(&si, &sub(&lib_tree, "2024")).unwrap();
    assert!(
        map.contains_key(&sub(&lib_tree, "2023")),
        "unchanged folder"
    );
    assert!(!map.contains_key(&sub(&lib_tree, "2024")), "changed folder");
    assert!(!map.contains_key(&sub(&y2024, "deep")), "changed folder");
    // Chunks of files present on both sides are learned, the new photo's are not.
    let video = y2024
        .nodes
        .iter()
        .find(|n| n.name.0 == b"video.MOV")
        .unwrap();
    assert!(video.content.iter().all(|c| map.contains_key(c)));
    let deep = src.load_tree(&si, &sub(&y2024, "deep")).unwrap();
    let new_photo = deep
        .nodes
        .iter()
        .find(|n| n.name.0 == b"IMG_0051.HEIC")
        .unwrap();
    assert!(new_photo.content.iter().all(|c| !map.contains_key(c)));
    // Unrelated trees teach nothing.
    let mut empty = BlobMap::default();
    assert!(!learn_pair(
        &src,
        &si,
        &dst,
        &di,
        sub(&lib_tree, "2023"),
        dsnaps[0].1.tree,
        &mut empty
    ));
    assert!(empty.is_empty());
}

#[test]
fn second_copy_reads_only_new_chunks_and_skips_copies() {
    for (enc_a, enc_b) in [(true, true), (false, true), (false, false)] {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        create_small_repo(&a, enc_a);
        create_small_repo(&b, enc_b);
        let (src, dst) = (open(&a), open(&b));
        let lib = library(dir.path());
        let (s1, c1) = snapshot(&src, &lib, &["x"]);
        let first = copy_all(&src, &dst);
        assert_eq!(first.len(), 1);
        photo(&lib.join("2024/deep"), 51);
        let (s2, c2) = snapshot(&src, &lib, &[]);
        let new_chunks = {
            let si = src.load_index().unwrap().index;
            let old = reachable(&src, &si, src.load_snapshot(&s1).unwrap().tree);
            let new = reachable(&src, &si, src.load_snapshot(&s2).unwrap().tree);
            new.difference(&old)
                .filter(|id| si.get(id).unwrap().typ() == BlobType::Data)
                .count() as u64
        };
        assert!(new_chunks > 0);
        // A fresh start, as a second run of the command.
        let (src, dst) = (open(&a), open(&b));
        let res = copy_all(&src, &dst);
        assert!(matches!(res[0].outcome, Outcome::Skipped(_)), "{res:?}");
        assert_eq!(res[0].stats, CopyStats::default());
        let Outcome::Copied(d2) = res[1].outcome else {
            panic!("{res:?}")
        };
        assert_eq!(res[1].stats.blobs_read, new_chunks, "{enc_a} {enc_b}");
        // New chunks plus the three changed folders and the root.
        assert_eq!(res[1].stats.blobs_copied, new_chunks + 4);
        let Outcome::Skipped(d1) = res[0].outcome else {
            unreachable!()
        };
        let copy2 = dst.load_snapshot(&d2).unwrap();
        assert_eq!(copy2.parent, None, "the source snapshot had no parent");
        assert_eq!(copy2.original, Some(s2));
        verify(&b, &[(d1, c1), (d2, c2)], "incremental copy");
        // Nothing left to do.
        let again = copy_all(&src, &dst);
        assert!(
            again
                .iter()
                .all(|r| matches!(r.outcome, Outcome::Skipped(_)))
        );
    }
}

/// A listing shared by two folders is copied once and named by both copied folders; a
/// listing that cannot be read stops the copy with its error, and no snapshot is written.
#[test]
fn shared_listings_are_copied_once_and_unreadable_ones_stop_the_copy() {
    use crate::testing::trees::{Crafter, dir, save_snapshot};
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    create_small_repo(&a, true);
    create_small_repo(&b, true);
    let (src, dst) = (open(&a), open(&b));
    let c = Crafter::new(&src);
    let shared = c.tree(vec![c.file("f.jpg", b"photo"), c.file("g.jpg", b"other")]);
    let x = c.tree(vec![dir("x", shared)]);
    let top = c.tree(vec![dir("a", shared), dir("b", x), dir("c", shared)]);
    c.finish();
    save_snapshot(&src, top, 1_700_000_000);
    let res = copy_all(&src, &dst);
    let Outcome::Copied(did) = res[0].outcome else {
        panic!("{res:?}")
    };
    // Three listings and two chunks.
    assert_eq!(res[0].stats.blobs_copied, 5, "{res:?}");
    let di = dst.load_index().unwrap().index;
    let root = dst
        .load_tree(&di, &dst.load_snapshot(&did).unwrap().tree)
        .unwrap();
    let subs: Vec<BlobId> = root.nodes.iter().filter_map(|n| n.subtree).collect();
    assert_eq!(subs[0], subs[2], "a/ and c/ name one listing");
    let bx = dst.load_tree(&di, &subs[1]).unwrap();
    assert_eq!(bx.nodes[0].subtree, Some(subs[0]), "and so does b/x/");
    let names: Vec<String> = dst
        .load_tree(&di, &subs[0])
        .unwrap()
        .nodes
        .iter()
        .map(|n| n.name.lossy())
        .collect();
    assert_eq!(names, ["f.jpg", "g.jpg"]);

    // A second source snapshot with a listing that is missing.
    let c = Crafter::new(&src);
    let broken = c.tree(vec![dir("a", shared), dir("gone", BlobId::default())]);
    c.finish();
    let bad = save_snapshot(&src, broken, 1_700_000_100);
    let src_index = src.load_index().unwrap().index;
    let (all, _) = src.snapshots().unwrap();
    let repos = Repos {
        src: &src,
        src_index: &src_index,
        dst: &dst,
        dst_index: dst.load_index().unwrap().index,
    };
    let e = copy(repos, &all, &[bad], &NoHooks).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
    assert_eq!(dst.snapshots().unwrap().0.len(), 1);
}

/// Folders nested deeper than a thread's stack holds recursive calls (a crafted snapshot
/// nests as deep as it likes): learning walks them on the heap.
#[test]
fn lockstep_learns_a_tree_nested_deeper_than_the_stack() {
    use crate::testing::trees::{Crafter, dir};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    create_small_repo(&root, false);
    let repo = open(&root);
    let c = Crafter::new(&repo);
    let mut tree = c.tree(vec![c.file("x", b"x")]);
    for _ in 0..25_000 {
        tree = c.tree(vec![dir("d", tree)]);
    }
    c.finish();
    let index = repo.load_index().unwrap().index;
    let mut map = BlobMap::default();
    // A repository is its own copy: every tree corresponds to itself.
    assert!(learn_pair(
        &repo, &index, &repo, &index, tree, tree, &mut map
    ));
    assert_eq!(map.len(), 25_000 + 1 + 1, "every tree and the chunk");
}
