//! Crafted trees in an unencrypted repository (16.10), written here with the repository
//! library as anyone with write access could: a "tree bomb" of shared folder listings that
//! expands to hundreds of thousands of paths from 34 entries, a file whose recorded size
//! is not what its content holds, a folder listing used as a file's content and file data
//! used as a folder listing.

use std::fs;
use std::sync::Arc;

use snapvault_repo::backend::LocalBackend;
use snapvault_repo::testing::trees::{Crafter, dir, file};
use snapvault_repo::tree::Tree;
use snapvault_repo::{BlobId, Repository};

use crate::common::*;

/// The unencrypted repository at `root`.
fn open(root: &std::path::Path) -> Repository {
    let repo = Repository::open(Arc::new(LocalBackend::new(root)), || Ok(Vec::new())).unwrap();
    assert!(!repo.crypto().is_encrypted());
    repo
}

/// One snapshot per root (a copy of the latest snapshot's manifest with another tree);
/// returns their ids in order.
fn snapshots(repo: &Repository, roots: &[BlobId]) -> Vec<String> {
    let (_, latest) = repo.find_snapshot("latest").unwrap();
    roots
        .iter()
        .enumerate()
        .map(|(i, root)| {
            let mut s = latest.clone();
            s.tree = *root;
            s.time += 1_000_000_000 * (i as i64 + 1);
            repo.save_snapshot(&s).unwrap().to_hex()
        })
        .collect()
}

/// The chunk ids of the file `name` in the latest snapshot, with its size.
fn stored_file(repo: &std::path::Path, name: &str) -> (Vec<BlobId>, u64) {
    let repo = open(repo);
    let index = repo.load_index().unwrap().index;
    let (_, snap) = repo.find_snapshot("latest").unwrap();
    let top = repo.load_tree(&index, &snap.tree).unwrap();
    let folder = repo
        .load_tree(&index, &top.nodes[0].subtree.unwrap())
        .unwrap();
    let n = folder
        .nodes
        .iter()
        .find(|n| n.name.0 == name.as_bytes())
        .unwrap();
    (n.content.clone(), n.size)
}

#[test]
fn crafted_trees_are_bounded_and_checked() {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    write_file(&src.join("hello.txt"), b"hello world");
    // File data whose bytes are a valid folder listing (a FIFO named x).
    let listing = br#"{"nodes":[{"name":"x","type":"fifo","mode":420,"mtime":0}]}"#;
    write_file(&src.join("listing.json"), listing);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    let (hello, hello_size) = stored_file(&sv.repo, "hello.txt");
    assert_eq!(hello_size, 11);
    let (as_tree, _) = stored_file(&sv.repo, "listing.json");

    let repo = open(&sv.repo);
    let c = Crafter::new(&repo);
    // The bomb: 16 levels of folders a/ and b/ both naming the level below.
    let leaf = c.tree(vec![file("f.txt", hello.clone(), 11)]);
    let mut level = leaf;
    for _ in 0..16 {
        level = c.tree(vec![dir("a", level), dir("b", level)]);
    }
    let bomb = c.tree(vec![dir("bomb", level)]);
    let lying = c.tree(vec![dir(
        "photos",
        c.tree(vec![file("big.jpg", hello.clone(), 1000)]),
    )]);
    let leaf_len = Tree {
        nodes: vec![file("f.txt", hello.clone(), 11)],
    }
    .encode()
    .len() as u64;
    let confused = c.tree(vec![
        file("tree-as-file", vec![leaf], leaf_len),
        dir("data-as-folder", as_tree[0]),
    ]);
    c.finish();
    let ids = snapshots(&repo, &[bomb, lying, confused]);
    let (bomb, lying, confused) = (&ids[0], &ids[1], &ids[2]);

    // check reads each folder listing once, and names every problem.
    for args in [vec!["check"], vec!["check", "--read-data"]] {
        let out = sv.run(&args);
        assert_eq!(out.code, Some(4), "{args:?}:\n{out}");
        let lines: Vec<&str> = out.stdout.lines().collect();
        let has = |snap: &str, words: &[&str]| {
            lines
                .iter()
                .any(|l| l.contains(&snap[..16]) && words.iter().all(|w| l.contains(w)))
        };
        assert!(has(bomb, &["paths"]), "bomb not reported:\n{out}");
        assert!(
            has(lying, &["big.jpg", "1000", "11"]),
            "size lie not reported:\n{out}"
        );
        assert!(
            has(confused, &["tree-as-file", "folder listing"]),
            "tree as file content not reported:\n{out}"
        );
        assert!(
            has(confused, &["data-as-folder", "file data"]),
            "file data as a folder listing not reported:\n{out}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("damaged: photos/big.jpg")),
            "the file is not named as damaged:\n{out}"
        );
    }

    // ls and restore refuse the bomb with a clear error instead of expanding it.
    let out = sv.run(&["ls", bomb]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "paths");
    assert_stderr_mentions(&out, &bomb[..8]);
    let target = tmp.path().join("t");
    let out = sv.run(&[
        "restore",
        bomb,
        "--dry-run",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "paths");
    let first = sv.snapshots()[0]["id"].as_str().unwrap().to_string();
    for args in [vec!["diff", &first, bomb], vec!["find", "f.txt"]] {
        let out = sv.run(&args);
        assert_failed(&out);
        assert_stderr_mentions(&out, "paths");
    }

    // restore refuses the file whose content is not its recorded size, by name.
    let out = sv.run(&["restore", lying, "--target", target.to_str().unwrap()]);
    assert_eq!(out.code, Some(3), "{out}");
    assert_mentions(&out, "big.jpg");
    assert!(!target.join("photos/big.jpg").exists());

    // The real snapshot is untouched by all this.
    let good = tmp.path().join("good");
    sv.restore(&first, &good);
    assert_eq!(
        fs::read(good.join("photos/hello.txt")).unwrap(),
        b"hello world"
    );
}

/// One folder listing named by two folders (`a/` and `b/c/`), as identical folders are
/// stored: every command that lists paths lists it under both, the ones that count content
/// count it once; a listing that cannot be read stops a listing with an error naming it.
#[test]
fn a_listing_shared_by_two_folders_is_listed_under_both() {
    use serde_json::Value;
    use snapvault_repo::tree::MediaMeta;
    fn arr<'a>(v: &'a Value, what: &str) -> &'a Vec<Value> {
        v.as_array()
            .unwrap_or_else(|| panic!("{what} is not an array: {v}"))
    }
    fn s<'a>(v: &'a Value, field: &str) -> &'a str {
        v[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {v}"))
    }
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    write_file(&src.join("hello.txt"), b"hello world");
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    let (hello, _) = stored_file(&sv.repo, "hello.txt");
    let repo = open(&sv.repo);
    let c = Crafter::new(&repo);
    let mut photo = file("IMG_0001.JPG", hello.clone(), 11);
    photo.media = Some(MediaMeta {
        kind: "photo".into(),
        taken: Some("2021-03-04T05:06:07".into()),
        ..Default::default()
    });
    let album = c.tree(vec![photo]);
    let shared = c.tree(vec![
        dir("a", album),
        dir("b", c.tree(vec![dir("c", album)])),
    ]);
    c.finish();
    let ids = snapshots(&repo, &[shared]);
    let shared = &ids[0];
    let all = ["a", "a/IMG_0001.JPG", "b", "b/c", "b/c/IMG_0001.JPG"];

    let ls = sv.ok(&["ls", shared, "--json"]).json();
    let paths: Vec<&str> = arr(&ls, "ls").iter().map(|e| s(e, "path")).collect();
    assert_eq!(paths, all);
    let ls = sv.ok(&["ls", shared, "b", "--json"]).json();
    let paths: Vec<&str> = arr(&ls, "ls").iter().map(|e| s(e, "path")).collect();
    assert_eq!(paths, &all[2..]);

    let found = sv.ok(&["find", "IMG_0001.JPG", "--json"]).json();
    let mine = arr(&found, "find")
        .iter()
        .find(|f| s(f, "snapshot") == shared)
        .expect("the shared snapshot is found");
    let paths: Vec<&str> = arr(&mine["matches"], "matches")
        .iter()
        .map(|m| s(m, "path"))
        .collect();
    assert_eq!(paths, ["a/IMG_0001.JPG", "b/c/IMG_0001.JPG"]);

    let first = sv.snapshots()[0]["id"].as_str().unwrap().to_string();
    let d = sv.ok(&["diff", &first, shared, "--json"]).json();
    let added: Vec<&str> = arr(&d["added"], "added")
        .iter()
        .map(|m| s(m, "path"))
        .collect();
    assert_eq!(added, ["a/IMG_0001.JPG", "b/c/IMG_0001.JPG"], "{d}");

    let st = sv.ok(&["stats", "--snapshot", shared, "--json"]).json();
    assert_eq!(
        st["photos"].as_u64(),
        Some(1),
        "one photo, by content: {st}"
    );
    let months = arr(&st["by_month"], "by_month");
    assert_eq!(months.len(), 1);
    assert_eq!(s(&months[0], "month"), "2021-03");

    let target = tmp.path().join("t");
    sv.restore(shared, &target);
    for p in ["a/IMG_0001.JPG", "b/c/IMG_0001.JPG"] {
        assert_eq!(fs::read(target.join(p)).unwrap(), b"hello world", "{p}");
    }

    let repo = open(&sv.repo);
    let c = Crafter::new(&repo);
    let broken = c.tree(vec![dir("a", album), dir("gone", BlobId::default())]);
    c.finish();
    let broken = &snapshots(&repo, &[broken])[0];
    for args in [
        vec!["ls", broken.as_str()],
        vec!["stats", "--snapshot", broken],
    ] {
        let out = sv.run(&args);
        assert_failed(&out);
        assert_stderr_mentions(&out, "0000000000000000");
    }
}
