//! Damage to the index, or to pack names, loses no photo: `repair` judges loss against what
//! the packs really hold, never against the damaged index, and `prune` waits for a repair
//! that is pending (issue 15.1).

use std::fs;
use std::path::PathBuf;

use crate::common::*;
use crate::repair::{Lab, flip};

fn data_packs(lab: &Lab) -> Vec<PathBuf> {
    pack_files(&lab.sv.repo)
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| fs::metadata(p).unwrap().len() >= 1 << 20)
        .collect()
}

fn index_files(lab: &Lab) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(lab.sv.repo.join("index"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(fs::metadata(p).unwrap().len()));
    v
}

fn tags(lab: &Lab) -> Vec<String> {
    lab.sv
        .snapshots()
        .iter()
        .flat_map(|s| s["tags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect()
}

/// The damage touched only the index (or pack names): the plan names no loss, repair keeps
/// every snapshot as it was, and a prune afterwards keeps every photo.
fn repair_loses_nothing(lab: &Lab) {
    let before = lab.sv.snapshots().len();
    let plan = lab.ok(&["repair", "--forget-damaged"]);
    for bad in ["lost", "will be removed", "repaired copy", "unreadable"] {
        assert!(!plan.both().contains(bad), "the plan says {bad:?}:\n{plan}");
    }
    let out = lab.ok(&["repair", "--apply", "--forget-damaged"]);
    for bad in ["lost", "will be removed", "repaired copy"] {
        assert!(!out.both().contains(bad), "repair says {bad:?}:\n{out}");
    }
    assert_eq!(lab.sv.snapshots().len(), before, "repair removed snapshots");
    assert!(
        !tags(lab).iter().any(|t| t == "repaired"),
        "repair wrote repaired copies of intact snapshots"
    );
    let out = lab.ok(&["check", "--read-data"]);
    assert!(out.stdout.contains("no errors found"), "{out}");
    lab.ok(&["prune"]);
    assert_eq!(lab.sv.snapshots().len(), before, "prune removed snapshots");
    lab.ok(&["check", "--read-data"]);
    assert!(lab.restore_latest("after").is_empty(), "photos lost");
}

#[test]
fn every_index_file_removed() {
    let lab = Lab::new();
    for f in index_files(&lab) {
        fs::remove_file(f).unwrap();
    }
    // Before any repair, prune refuses (the index is known to be incomplete).
    let packs = pack_files(&lab.sv.repo).len();
    let out = lab.run(&["prune"]);
    assert_ne!(
        out.code,
        Some(0),
        "prune ran on a repository without index:\n{out}"
    );
    assert_eq!(pack_files(&lab.sv.repo).len(), packs, "prune removed packs");
    repair_loses_nothing(&lab);
}

#[test]
fn one_flipped_byte_in_an_index_file() {
    let lab = Lab::new();
    flip(&index_files(&lab)[0], |n| n / 2);
    repair_loses_nothing(&lab);
}

#[test]
fn two_packs_swapped() {
    let lab = Lab::new();
    let packs = data_packs(&lab);
    assert!(packs.len() >= 2, "the lab needs two data packs");
    let (a, b) = (fs::read(&packs[0]).unwrap(), fs::read(&packs[1]).unwrap());
    fs::remove_file(&packs[0]).unwrap();
    fs::remove_file(&packs[1]).unwrap();
    fs::write(&packs[0], b).unwrap();
    fs::write(&packs[1], a).unwrap();
    repair_loses_nothing(&lab);
}

#[test]
fn repair_index_alone_claims_no_lost_data() {
    let lab = Lab::new();
    for f in index_files(&lab) {
        fs::remove_file(f).unwrap();
    }
    let out = lab.ok(&["repair", "index", "--apply"]);
    assert!(!out.both().contains("lost"), "{out}");
    lab.ok(&["check", "--read-data"]);
    assert!(lab.restore_latest("all").is_empty());
}

/// Index gone and one data pack gone: only the photos of that pack are lost, each named
/// by path in the plan; every other photo restores.
#[test]
fn index_removed_and_a_pack_missing_loses_only_that_packs_photos() {
    let lab = Lab::new();
    for f in index_files(&lab) {
        fs::remove_file(f).unwrap();
    }
    fs::remove_file(&data_packs(&lab)[0]).unwrap();
    let plan = lab.ok(&["repair", "--forget-damaged"]);
    let lost: Vec<String> = plan
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("lost: "))
        .map(|l| l.trim_start_matches("photos/").to_string())
        .collect();
    assert!(!lost.is_empty(), "a lost pack names no photo:\n{plan}");
    assert!(
        lost.iter().all(|l| l.contains("IMG_")),
        "the plan names something other than photos:\n{plan}"
    );
    assert!(
        !lost.iter().any(|l| l.contains("IMG_0100")),
        "a photo of another pack is called lost:\n{plan}"
    );
    assert!(!plan.stdout.contains("root folder"), "{plan}");
    lab.ok(&["repair", "--apply", "--forget-damaged"]);
    lab.ok(&["check", "--read-data"]);
    assert_eq!(lab.sv.snapshots().len(), 2);
    let bad = lab.restore_latest("after");
    assert!(!bad.is_empty());
    for f in &bad {
        assert!(
            lost.iter().any(|l| l.ends_with(f.as_str())),
            "{f} did not restore but the plan did not name it: {lost:?}"
        );
    }
}

/// `check` found damage that is not repaired yet: prune refuses (it would throw away the
/// evidence and the good copies repair needs), and runs once the repair is done.
#[test]
fn prune_refuses_while_a_repair_is_pending() {
    let lab = Lab::new();
    flip(&data_packs(&lab)[0], |n| n / 3);
    let out = lab.run(&["check", "--read-data"]);
    assert_eq!(out.code, Some(4), "{out}");
    let before = listing(&lab.sv.repo.join("data"));
    let out = lab.run(&["prune"]);
    assert_ne!(out.code, Some(0), "prune ran with a repair pending:\n{out}");
    assert!(out.stderr.contains("repair"), "{out}");
    assert_unchanged(&before, &lab.sv.repo.join("data"), "a refused prune");
    lab.ok(&["repair", "--apply", "--forget-damaged"]);
    lab.ok(&["prune"]);
}
