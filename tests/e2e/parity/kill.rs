//! Crash consistency of parity through `prune`, `copy` (into a destination with its own
//! level) and `repair --apply` (issue 21): each command is killed (SIGKILL) before every
//! write and every removal it makes — packs, index files, snapshots, key files, the config
//! and parity files alike, counted in order by the test build's fault injector, which sits
//! beneath the parity guard — each time on a fresh copy of one prepared repository, and
//! once more right after its last one. After every kill:
//!
//! - `check --read-data` finds no wrong parity: no parity file damaged or unreadable,
//!   nothing lost, and nothing "repairable" but what the test itself damaged (a parity file
//!   naming a file the command removed on purpose would show that file as repairable);
//! - the command run again completes and leaves every file covered by parity in force at
//!   the repository's level, with no stale or superseded parity file left;
//! - damage within the promised share (scattered sectors, or one lost file per group) is
//!   then repaired, a second check is clean and the latest snapshot restores byte for byte.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use snapvault_repo::parity::MemberKind;

use crate::common::*;
use crate::parity::{
    add_key, assert_covered, check_json, damage_within_promise, first_key, init_with_parity,
    kind_label, library, live_groups, member_path, names, repaired_in_full,
};
use crate::prune::copy_dir;

/// Runs the command on the repository at the given folder, with extra environment.
type Run<'a> = &'a dyn Fn(&Path, &[(&str, &str)]) -> Out;

/// One command to kill at each of its write points.
struct Case<'a> {
    name: &'a str,
    /// The prepared repository; each run works on a copy.
    template: &'a Path,
    /// The key file the test's password opens (never damaged: `check` needs it).
    first_key: &'a str,
    level: u8,
    /// What the latest snapshot must restore to.
    src: &'a Path,
    /// Files the test damaged before the run ("kind name"): the only ones allowed to be
    /// reported as repairable after a kill.
    damaged: HashSet<String>,
    run: Run<'a>,
}

/// Kill the command before each of its writes and removals in turn, and right after its
/// last; check each outcome (see the module documentation). Returns how many write points
/// the command has.
fn kill_at_every_write_point(case: &Case, work: &Path) -> u64 {
    let mut n = 1;
    let total = loop {
        let root = work.join(format!("{}-{n}", case.name));
        copy_dir(case.template, &root);
        let spec = format!("write+remove@{n}:kill");
        let out = (case.run)(&root, &[("SNAPVAULT_TEST_FAULT", &spec)]);
        if out.code.is_some() {
            // It ran to its end: n − 1 write points, each killed before.
            assert_eq!(
                out.code,
                Some(0),
                "{}: {spec}: the command failed: {out}",
                case.name
            );
            std::fs::remove_dir_all(&root).unwrap();
            break n - 1;
        }
        after_kill(case, &root, &format!("{} killed at {spec}", case.name), n);
        std::fs::remove_dir_all(&root).unwrap();
        n += 1;
    };
    assert!(total >= 3, "{}: only {total} write points", case.name);
    let root = work.join(format!("{}-last", case.name));
    copy_dir(case.template, &root);
    let spec = format!("write+remove@{total}:kill-after");
    let out = (case.run)(&root, &[("SNAPVAULT_TEST_FAULT", &spec)]);
    assert_eq!(out.code, None, "{}: {spec}: not killed: {out}", case.name);
    after_kill(case, &root, &format!("{} killed at {spec}", case.name), 0);
    total
}

fn after_kill(case: &Case, root: &Path, what: &str, n: u64) {
    let sv = Sv::at(root, Some(PASSWORD));
    let (code, v) = check_json(&sv);
    let p = &v["parity"];
    assert_eq!(
        p["parity_files_damaged"],
        serde_json::json!([]),
        "{what}: {v}"
    );
    assert_eq!(
        p["parity_files_unreadable"],
        serde_json::json!([]),
        "{what}: {v}"
    );
    assert!(names(&v, "lost").is_empty(), "{what}: {v}");
    let repairable = names(&v, "repairable");
    assert!(
        repairable.is_subset(&case.damaged),
        "{what}: parity reads files the test did not damage as damaged: {:?}\n{v}",
        repairable.difference(&case.damaged).collect::<Vec<_>>()
    );
    if case.damaged.is_empty() {
        assert_eq!(code, Some(0), "{what}: {v}");
    }

    // The next run completes and covers everything.
    let out = (case.run)(root, &[]);
    assert_eq!(out.code, Some(0), "{what}, run again: {out}");
    assert_covered(root, case.level);

    // Damage within the promise is repaired: scattered sectors, or one lost file per group.
    let mut rng = StdRng::seed_from_u64(n);
    let damaged = if n.is_multiple_of(2) {
        damage_within_promise(root, &mut rng, &|m| {
            m.kind == MemberKind::Config || m.kind == MemberKind::Snapshot
        })
    } else {
        lose_one_file_per_group(root, case.first_key)
    };
    let back = root.with_extension("restored");
    repaired_in_full(&sv, case.src, damaged, &back);
    std::fs::remove_dir_all(&back).unwrap();
}

/// Delete the biggest member of every group (never the key file the test opens with).
fn lose_one_file_per_group(repo: &Path, first_key: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for l in live_groups(repo) {
        let Some(m) = l
            .header
            .members
            .iter()
            .filter(|m| m.name != first_key)
            .max_by_key(|m| m.size)
        else {
            continue;
        };
        std::fs::remove_file(member_path(repo, m.kind, &m.name)).unwrap();
        out.insert(format!("{} {}", kind_label(m.kind), m.name));
    }
    out
}

/// A repository at level 10 with two keys and three snapshots of a changing library, the
/// first two forgotten: prune has packs to repack and delete and index files to replace.
fn prepared_for_prune(tmp: &Path) -> (PathBuf, PathBuf, String) {
    let src = tmp.join("src");
    library(&src);
    let sv = init_with_parity(&tmp.join("template"), "10");
    add_key(&sv);
    sv.snapshot(&[&src], &[]);
    write_random(&src.join("DCIM/IMG_0010.HEIC"), 10, 400_000);
    sv.snapshot(&[&src], &[]);
    std::fs::remove_file(src.join("DCIM/IMG_0001.HEIC")).unwrap();
    write_random(&src.join("DCIM/IMG_0011.JPG"), 11, 250_000);
    sv.snapshot(&[&src], &[]);
    sv.ok(&["forget", "--keep-last", "1", "--allow-photo-loss"]);
    assert_covered(&sv.repo, 10);
    let key = first_key(&sv.repo);
    (sv.repo.clone(), src, key)
}

#[test]
fn prune_killed_at_every_write_point_keeps_parity_old_or_new() {
    let tmp = tempdir();
    let (template, src, key) = prepared_for_prune(tmp.path());
    let run = |root: &Path, env: &[(&str, &str)]| {
        Sv::at(root, Some(PASSWORD)).run_env(
            &["prune", "--max-unused", "0", "--unindexed-grace", "0"],
            env,
        )
    };
    let case = Case {
        name: "prune",
        template: &template,
        first_key: &key,
        level: 10,
        src: &src,
        damaged: HashSet::new(),
        run: &run,
    };
    let points = kill_at_every_write_point(&case, tmp.path());
    eprintln!("prune: killed at each of {points} write points");
    // Parity files are write points too: more than prune's own packs and index files.
    let probe = tmp.path().join("probe");
    copy_dir(&template, &probe);
    let v = Sv::at(&probe, Some(PASSWORD))
        .ok(&["prune", "--json", "--max-unused", "0"])
        .json();
    let d = &v["done"];
    let own: u64 = [
        "packs_written",
        "index_files_written",
        "index_files_removed",
        "packs_removed",
    ]
    .iter()
    .map(|k| d[*k].as_u64().unwrap())
    .sum();
    assert!(
        own >= 3 && points > own,
        "{points} write points, {own} of prune's own: {v}"
    );
}

#[test]
fn copy_killed_at_every_write_point_keeps_the_destinations_parity_old_or_new() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    // The source has its own level (5 %), the destination another (20 %).
    let a = init_with_parity(&tmp.path().join("a"), "5");
    a.snapshot(&[&src], &[]);
    write_random(&src.join("DCIM/IMG_0010.HEIC"), 10, 400_000);
    a.snapshot(&[&src], &[]);
    let b = init_with_parity(&tmp.path().join("template"), "20");
    // The destination holds one snapshot already: the copy adds to groups in force.
    let first = a.snapshots()[0]["id"].as_str().unwrap().to_string();
    let mut c = a.command(&["copy", &first, "--to"]);
    c.arg(&b.repo).env("SNAPVAULT_PASSWORD2", PASSWORD);
    assert_eq!(run_command(c, DEFAULT_TIMEOUT).code, Some(0));
    assert_covered(&b.repo, 20);
    let key = first_key(&b.repo);
    let a_repo = a.repo.clone();
    let run = |root: &Path, env: &[(&str, &str)]| {
        let a = Sv::at(&a_repo, Some(PASSWORD));
        let mut c = a.command(&["copy", "--all", "--to"]);
        c.arg(root).env("SNAPVAULT_PASSWORD2", PASSWORD);
        for (k, v) in env {
            c.env(k, v);
        }
        run_command(c, DEFAULT_TIMEOUT)
    };
    let case = Case {
        name: "copy",
        template: &b.repo,
        first_key: &key,
        level: 20,
        src: &src,
        damaged: HashSet::new(),
        run: &run,
    };
    let points = kill_at_every_write_point(&case, tmp.path());
    eprintln!("copy: killed at each of {points} write points");
    // The source's parity is its own, untouched by the copies.
    assert_covered(&a_repo, 5);
}

#[test]
fn repair_killed_at_every_write_point_keeps_parity_old_or_new() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    write_random(&src.join("DCIM/IMG_0004.MOV"), 4, 1_500_000);
    let sv = init_with_parity(&tmp.path().join("template"), "10");
    add_key(&sv);
    sv.snapshot(&[&src], &[]);
    write_random(&src.join("DCIM/IMG_0005.HEIC"), 5, 200_000);
    sv.snapshot(&[&src], &[]);
    let key = first_key(&sv.repo);
    // Damage within the promise in every group, the config among it: repair writes back
    // a pack, index files, a snapshot and the config.
    let mut rng = StdRng::seed_from_u64(2121);
    let damaged = damage_within_promise(&sv.repo, &mut rng, &|m| {
        m.kind == MemberKind::Config || m.kind == MemberKind::Snapshot
    });
    let run = |root: &Path, env: &[(&str, &str)]| {
        Sv::at(root, Some(PASSWORD)).run_env(&["repair", "--apply"], env)
    };
    let case = Case {
        name: "repair",
        template: &sv.repo,
        first_key: &key,
        level: 10,
        src: &src,
        damaged,
        run: &run,
    };
    let points = kill_at_every_write_point(&case, tmp.path());
    eprintln!("repair: killed at each of {points} write points");
}
