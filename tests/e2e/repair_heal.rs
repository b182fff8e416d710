//! Repair converges (issue 24.4): a second `repair --apply` changes nothing and says so,
//! `check` ends with the next step to take, and a damaged photo is healed from another
//! repository (`repair --from REPO2`), by content, so every snapshot is whole again.

use std::path::{Path, PathBuf};

use crate::common::*;
use crate::repair::{Lab, flip};

/// Every file of a repository but its locks, by path.
fn listing(repo: &Path) -> Vec<String> {
    files_but_locks(repo)
        .into_iter()
        .map(|(rel, _)| rel)
        .collect()
}

fn repaired(lab: &Lab) -> usize {
    lab.sv
        .snapshots()
        .iter()
        .filter(|s| {
            s["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "repaired"))
        })
        .count()
}

/// Damage one blob of the lab's data; `check --read-data` finds it. Returns the photos it
/// names as damaged.
fn damage(lab: &Lab) -> Vec<String> {
    flip(&lab.data_pack(), |n| n / 3);
    let out = lab.run(&["check", "--read-data"]);
    assert_eq!(out.code, Some(4), "{out}");
    let damaged: Vec<String> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("damaged: photos/"))
        .map(|l| l.split(' ').next().unwrap_or_default().to_string())
        .collect();
    assert!(!damaged.is_empty(), "{out}");
    damaged
}

/// A second repository with its own keys (and so its own chunk boundaries).
fn offsite(lab: &Lab) -> Sv {
    Sv::init(lab._tmp.path().join("offsite"), true)
}

/// Run in the lab's repository with `REPO2`'s password at hand.
fn run2(lab: &Lab, args: &[&str]) -> Out {
    lab.sv.run_env(
        args,
        &[
            ("XDG_CACHE_HOME", lab.cache.to_str().unwrap()),
            ("SNAPVAULT_PASSWORD2", PASSWORD),
        ],
    )
}

fn ok2(lab: &Lab, args: &[&str]) -> Out {
    let out = run2(lab, args);
    assert_eq!(out.code, Some(0), "snapvault {args:?} failed:\n{out}");
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn repair_converges_and_check_says_what_to_do() {
    let lab = Lab::new();
    damage(&lab);
    let out = lab.run(&["check", "--read-data"]);
    assert!(
        out.stdout.contains("next: run `snapvault repair`") && out.stdout.contains("repair --from"),
        "check does not say what to do:\n{out}"
    );
    lab.ok(&["repair", "--apply"]);
    // The originals are kept: check still fails, and says what is left to do.
    let out = lab.run(&["check", "--read-data"]);
    assert_eq!(out.code, Some(4), "{out}");
    for next in ["repaired copies", "repair --from", "--forget-damaged"] {
        assert!(
            out.stdout.contains(next),
            "check does not say {next:?}:\n{out}"
        );
    }
    let copies = repaired(&lab);
    assert!(copies >= 1);
    // A second repair changes nothing, and says so.
    let before = listing(&lab.sv.repo);
    let out = lab.ok(&["repair", "--apply"]);
    assert!(
        out.stdout
            .contains("nothing to repair, nothing was changed"),
        "{out}"
    );
    assert_eq!(
        listing(&lab.sv.repo),
        before,
        "the second repair changed the repository"
    );
    // --forget-damaged removes the originals and writes no second copy.
    let n = lab.sv.snapshots().len();
    lab.ok(&["repair", "--apply", "--forget-damaged"]);
    assert_eq!(repaired(&lab), copies, "a second repaired copy was written");
    assert_eq!(lab.sv.snapshots().len(), n - copies);
    let out = lab.ok(&["check", "--read-data"]);
    assert!(out.stdout.contains("no errors found"), "{out}");
    let before = listing(&lab.sv.repo);
    let out = lab.ok(&["repair", "--apply", "--forget-damaged"]);
    assert!(out.stdout.contains("nothing to repair"), "{out}");
    assert_eq!(listing(&lab.sv.repo), before);
}

#[test]
fn a_damaged_photo_is_healed_from_the_offsite_copy() {
    let lab = Lab::new();
    let off = offsite(&lab);
    ok2(&lab, &["copy", "--all", "--to", s(&off.repo)]);
    let damaged = damage(&lab);
    // Copying back finds nothing to copy, but names the damage and what heals it.
    let mut back = off.command(&["copy", "--all", "--to", s(&lab.sv.repo)]);
    back.env("SNAPVAULT_PASSWORD2", PASSWORD)
        .env("XDG_CACHE_HOME", &lab.cache);
    let out = run_command(back, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("nothing to copy"), "{out}");
    assert!(
        out.stderr.contains("damaged") && out.stderr.contains("repair --from"),
        "copy does not point at the damage:\n{out}"
    );
    // The plan says what it would heal, and changes nothing.
    let before = listing(&lab.sv.repo);
    let out = ok2(&lab, &["repair", "--from", s(&off.repo)]);
    for d in &damaged {
        assert!(
            out.stdout.contains(&format!("healed: photos/{d}")),
            "{d} not found in the off-site copy:\n{out}"
        );
    }
    assert_eq!(
        listing(&lab.sv.repo),
        before,
        "the plan changed the repository"
    );
    let out = ok2(&lab, &["repair", "--from", s(&off.repo), "--apply"]);
    assert!(out.stdout.contains("stored here again"), "{out}");
    let out = lab.ok(&["check", "--read-data"]);
    assert!(out.stdout.contains("no errors found"), "{out}");
    assert_eq!(lab.sv.snapshots().len(), 2);
    assert_eq!(repaired(&lab), 0, "repaired copies written although healed");
    assert!(lab.restore_latest("healed").is_empty(), "not byte-exact");
    // Converged: nothing more to do.
    let before = listing(&lab.sv.repo);
    let out = ok2(&lab, &["repair", "--from", s(&off.repo), "--apply"]);
    assert!(out.stdout.contains("nothing to repair"), "{out}");
    assert_eq!(listing(&lab.sv.repo), before);
}

/// The other repository was filled by its own snapshots (other chunk boundaries), and an
/// earlier `repair --apply` already wrote repaired copies: healing makes the originals
/// whole and removes the copies, which hold nothing the originals do not.
#[test]
fn healed_from_an_independent_backup_after_an_earlier_repair() {
    let lab = Lab::new();
    let off = offsite(&lab);
    off.snapshot(&[&lab.src], &[]);
    damage(&lab);
    lab.ok(&["repair", "--apply"]);
    assert!(repaired(&lab) >= 1);
    let out = ok2(&lab, &["repair", "--from", s(&off.repo), "--apply"]);
    assert!(out.stdout.contains("whole again"), "{out}");
    assert_eq!(repaired(&lab), 0, "repaired copies left");
    assert_eq!(lab.sv.snapshots().len(), 2);
    let out = lab.ok(&["check", "--read-data"]);
    assert!(out.stdout.contains("no errors found"), "{out}");
    assert!(lab.restore_latest("healed").is_empty(), "not byte-exact");
}

/// Nothing in the other repository matches: nothing is stored, and the plan says so.
#[test]
fn heal_from_a_repository_without_the_photo_finds_nothing() {
    let lab = Lab::new();
    let off = offsite(&lab);
    let other: PathBuf = lab._tmp.path().join("other-photos");
    write_random(&other.join("IMG_9999.HEIC"), 4242, 3 << 20);
    off.snapshot(&[&other], &[]);
    damage(&lab);
    let before = listing(&lab.sv.repo);
    let out = ok2(&lab, &["repair", "--from", s(&off.repo)]);
    assert!(out.stdout.contains("not found in"), "{out}");
    assert!(out.stdout.contains("0 of "), "{out}");
    assert_eq!(listing(&lab.sv.repo), before);
}

/// A wrong password for the repository to heal from is met with the hint for the second
/// repository's settings, as in `copy` (the hint was once chosen by the message's first
/// words, which only `copy`'s matched, so this one was sent to SNAPVAULT_PASSWORD).
#[test]
fn a_wrong_password_for_the_repository_to_heal_from_names_its_settings() {
    let lab = Lab::new();
    let off = offsite(&lab);
    let out = lab.sv.run_env(
        &["repair", "--from", s(&off.repo)],
        &[
            ("XDG_CACHE_HOME", lab.cache.to_str().unwrap()),
            ("SNAPVAULT_PASSWORD2", "not the password"),
        ],
    );
    assert_eq!(out.code, Some(12), "{out}");
    assert_stderr_mentions(&out, "repository to heal from");
    assert_stderr_mentions(&out, "hint: check SNAPVAULT_PASSWORD2");
}
