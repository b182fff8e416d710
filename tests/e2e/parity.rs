//! Reed-Solomon parity (issue 21, docs/format.md §15): every file a restore needs is
//! covered at the configured level, through the commands that write and delete files.

use std::collections::HashSet;
use std::path::Path;

use snapvault_repo::backend::LocalBackend;
use snapvault_repo::parity::MemberKind;
use snapvault_repo::parity::store;

use crate::common::*;

/// Files no parity in force covers, parity files naming a file that is gone, and the levels
/// of the parity files in force.
fn coverage(repo: &Path) -> (Vec<(MemberKind, String)>, Vec<String>, HashSet<u8>) {
    let be = LocalBackend::new(repo);
    let (all, bad) = store::load(&be).unwrap();
    assert!(bad.is_empty(), "unreadable parity files: {bad:?}");
    let (live, superseded) = store::live(all);
    assert!(superseded.is_empty(), "superseded parity files left behind");
    let files = store::current_files(&be).unwrap();
    let mut covered = HashSet::new();
    let mut stale = Vec::new();
    for l in &live {
        for m in &l.header.members {
            if !files.contains_key(&(m.kind, m.name.clone())) {
                stale.push(format!("{} names missing {:?} {}", l.name, m.kind, m.name));
            }
            covered.insert((m.kind, m.name.clone()));
        }
    }
    let mut uncovered: Vec<_> = files.into_keys().filter(|f| !covered.contains(f)).collect();
    uncovered.sort();
    (
        uncovered,
        stale,
        live.iter().map(|l| l.header.percent).collect(),
    )
}

fn assert_covered(repo: &Path, level: u8) {
    let (uncovered, stale, levels) = coverage(repo);
    assert!(uncovered.is_empty(), "not covered by parity: {uncovered:?}");
    assert!(stale.is_empty(), "stale parity: {stale:?}");
    assert_eq!(levels, HashSet::from([level]));
}

fn init_with_parity(repo: &Path, level: &str) -> Sv {
    let sv = Sv::at(repo, Some(PASSWORD));
    sv.ok(&["init", "--parity", level]);
    sv
}

fn library(dir: &Path) {
    write_random(&dir.join("DCIM/IMG_0001.HEIC"), 1, 700_000);
    write_random(&dir.join("DCIM/IMG_0002.JPG"), 2, 300_000);
    write_file(&dir.join("DCIM/IMG_0002.AAE"), b"an edit sidecar\n");
}

#[test]
fn parity_covers_every_file_through_snapshot_forget_prune_keys_and_level_changes() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let sv = init_with_parity(&tmp.path().join("repo"), "5");
    assert_covered(&sv.repo, 5);
    sv.snapshot(&[&src], &[]);
    assert_covered(&sv.repo, 5);

    sv.ok(&["parity", "set", "10"]);
    assert_covered(&sv.repo, 10);
    let config = std::fs::read_to_string(sv.repo.join("config")).unwrap();
    assert!(config.contains("\"parity\": 10"), "{config}");

    write_random(&src.join("DCIM/IMG_0003.HEIC"), 3, 400_000);
    sv.snapshot(&[&src], &[]);
    std::fs::remove_file(src.join("DCIM/IMG_0001.HEIC")).unwrap();
    sv.snapshot(&[&src], &[]);
    sv.ok(&[
        "forget",
        "--keep-last",
        "1",
        "--prune",
        "--allow-photo-loss",
    ]);
    assert_covered(&sv.repo, 10);

    let mut add = sv.command(&["key", "add"]);
    add.env("SNAPVAULT_NEW_PASSWORD", "another long password for parity");
    let out = run_command(add, std::time::Duration::from_secs(120));
    assert_eq!(out.code, Some(0), "{out}");
    assert_covered(&sv.repo, 10);

    sv.ok(&["parity", "set", "0"]);
    assert_eq!(names_in(&sv.repo, "parity"), Vec::<String>::new());
    let config = std::fs::read_to_string(sv.repo.join("config")).unwrap();
    assert!(!config.contains("parity"), "{config}");
    // Still opens and restores.
    let out = sv.restore("latest", &tmp.path().join("back"));
    assert_eq!(out.code, Some(0), "{out}");
}

#[test]
fn copy_gives_the_destination_its_own_level() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let a = Sv::init(tmp.path().join("a"), true);
    a.snapshot(&[&src], &[]);
    let b = init_with_parity(&tmp.path().join("b"), "20");
    let mut c = a.command(&["copy", "--all", "--to"]);
    c.arg(&b.repo).env("SNAPVAULT_PASSWORD2", PASSWORD);
    let out = run_command(c, std::time::Duration::from_secs(120));
    assert_eq!(out.code, Some(0), "{out}");
    assert_covered(&b.repo, 20);
    assert_eq!(names_in(&a.repo, "parity"), Vec::<String>::new());
}

#[test]
fn a_parity_level_out_of_range_is_refused() {
    let tmp = tempdir();
    let sv = Sv::at(tmp.path().join("repo"), Some(PASSWORD));
    let out = sv.run(&["init", "--parity", "51"]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "--parity");
    assert!(!sv.repo.join("config").exists());
}
