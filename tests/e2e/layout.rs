//! The repository on disk: its layout, owner-only permissions, no leftovers after a normal
//! run, and `check` noticing structural damage without reading data.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::common::*;

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn small_repo(tmp: &Path, encrypted: bool) -> Sv {
    let src = tmp.join("photos");
    write_random(&src.join("IMG_0001.HEIC"), 1, 1_500_000);
    write_random(&src.join("IMG_0002.JPG"), 2, 10_000);
    let sv = Sv::init(tmp.join("repo"), encrypted);
    sv.snapshot(&[&src], &[]);
    sv
}

#[test]
fn layout_names_and_owner_only_permissions() {
    let tmp = tempdir();
    let sv = small_repo(tmp.path(), true);
    let l = listing(&sv.repo);
    for (path, desc) in &l {
        let md = fs::symlink_metadata(sv.repo.join(path)).unwrap();
        assert_eq!(
            md.mode() & 0o077,
            0,
            "{path} is accessible to others: mode {:o}",
            md.mode() & 0o7777
        );
        let parts: Vec<&str> = path.split('/').collect();
        let ok = match parts.as_slice() {
            ["config"]
            | ["keys"]
            | ["locks"]
            | ["snapshots"]
            | ["index"]
            | ["data"]
            | ["parity"] => true,
            ["keys" | "snapshots" | "index" | "parity", name] => is_hex64(name),
            ["data", sub] => sub.len() == 2 && desc == "dir",
            ["data", sub, name] => is_hex64(name) && name.starts_with(sub),
            _ => false,
        };
        assert!(ok, "unexpected repository entry {path} ({desc})");
    }
    assert_eq!(names_in(&sv.repo, "keys").len(), 1);
    assert_eq!(names_in(&sv.repo, "snapshots").len(), 1);
    assert!(
        names_in(&sv.repo, "locks").is_empty(),
        "a lock was left behind"
    );
    assert!(!pack_files(&sv.repo).is_empty());
}

#[test]
fn check_notices_a_truncated_pack_without_read_data() {
    let tmp = tempdir();
    let sv = small_repo(tmp.path(), false);
    sv.ok(&["check"]);
    let (id, path) = pack_files(&sv.repo)
        .into_iter()
        .max_by_key(|(_, p)| fs::metadata(p).unwrap().len())
        .unwrap();
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let out = sv.run(&["check"]);
    assert_failed(&out);
    assert_mentions(&out, &id);
}

#[test]
fn check_notices_a_missing_pack_without_read_data() {
    let tmp = tempdir();
    let sv = small_repo(tmp.path(), false);
    let (id, path) = pack_files(&sv.repo)
        .into_iter()
        .max_by_key(|(_, p)| fs::metadata(p).unwrap().len())
        .unwrap();
    fs::remove_file(&path).unwrap();
    let out = sv.run(&["check"]);
    assert_failed(&out);
    assert_mentions(&out, &id);
}

#[test]
fn check_notices_a_missing_index() {
    let tmp = tempdir();
    let sv = small_repo(tmp.path(), true);
    for name in names_in(&sv.repo, "index") {
        fs::remove_file(sv.repo.join("index").join(name)).unwrap();
    }
    let out = sv.run(&["check"]);
    assert_failed(&out);
}

#[test]
fn check_notices_an_altered_snapshot_file() {
    let tmp = tempdir();
    let sv = small_repo(tmp.path(), true);
    let name = names_in(&sv.repo, "snapshots").remove(0);
    let path = sv.repo.join("snapshots").join(&name);
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x80;
    fs::write(&path, &bytes).unwrap();
    let out = sv.run(&["check"]);
    assert_failed(&out);
    assert_mentions(&out, &name[..8]);
}
