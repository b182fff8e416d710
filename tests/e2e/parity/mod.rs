//! Reed-Solomon parity (issue 21, docs/format.md §15): every file a restore needs is
//! covered at the configured level, through the commands that write and delete files.
//! Helpers shared by the parity tests live here; the tests are grouped by concern:
//! level changes and coverage (`levels`), damage within and beyond the promise (`damage`),
//! damage beyond the promise reported as lost by photo (`beyond`), crashes and locks
//! (`crash`), kill -9 at every write point of prune, copy and repair (`kill`), the config
//! and its copies (`config`), what `check` reports (`reporting`) and remote repositories
//! (`remote`, `remote_prune`, `remote_kill`, `remote_kill_apply`, `s3_damage`).

mod beyond;
mod config;
mod crash;
mod damage;
mod kill;
mod levels;
mod remote;
mod remote_kill;
mod remote_kill_apply;
mod remote_prune;
mod reporting;
mod s3_damage;
mod s3_raw;
mod writeback;

use std::collections::HashSet;
use std::path::Path;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use snapvault_repo::backend::LocalBackend;
use snapvault_repo::parity::MemberKind;
use snapvault_repo::parity::SHARD;
use snapvault_repo::parity::store;
use snapvault_repo::parity::store::Loaded;

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

pub(crate) fn assert_covered(repo: &Path, level: u8) {
    let (uncovered, stale, levels) = coverage(repo);
    assert!(uncovered.is_empty(), "not covered by parity: {uncovered:?}");
    assert!(stale.is_empty(), "stale parity: {stale:?}");
    assert_eq!(levels, HashSet::from([level]));
}

pub(crate) fn init_with_parity(repo: &Path, level: &str) -> Sv {
    let sv = Sv::at(repo, Some(PASSWORD));
    sv.ok(&["init", "--parity", level]);
    sv
}

/// Add a second password (key file) to the repository.
pub(crate) fn add_key(sv: &Sv) {
    let mut add = sv.command(&["key", "add"]);
    add.env("SNAPVAULT_NEW_PASSWORD", SECOND_PASSWORD);
    let out = run_command(add, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
}

pub(crate) const SECOND_PASSWORD: &str = "another long password for parity";

pub(crate) fn library(dir: &Path) {
    write_random(&dir.join("DCIM/IMG_0001.HEIC"), 1, 700_000);
    write_random(&dir.join("DCIM/IMG_0002.JPG"), 2, 300_000);
    write_file(&dir.join("DCIM/IMG_0002.AAE"), b"an edit sidecar\n");
}

pub(crate) fn member_path(repo: &Path, kind: MemberKind, name: &str) -> std::path::PathBuf {
    match kind {
        MemberKind::Config => repo.join("config"),
        MemberKind::Key => repo.join("keys").join(name),
        MemberKind::Snapshot => repo.join("snapshots").join(name),
        MemberKind::Index => repo.join("index").join(name),
        MemberKind::Pack => repo.join("data").join(&name[..2]).join(name),
    }
}

/// Flip one random bit in 4 KiB sector `row` of `path`, or zero the sector (as an
/// unreadable sector reads back after a drive remaps it).
pub(crate) fn damage_sector(path: &Path, row: u64, rng: &mut StdRng) {
    let mut b = std::fs::read(path).unwrap();
    let start = row as usize * SHARD;
    let end = (start + SHARD).min(b.len());
    if rng.gen_bool(0.5) {
        let k = rng.gen_range(start..end);
        b[k] ^= 1 << rng.gen_range(0..8);
    } else if b[start..end].iter().any(|&x| x != 0) {
        b[start..end].fill(0);
    } else {
        b[start] = 0xff;
    }
    std::fs::write(path, b).unwrap();
}

pub(crate) fn live_groups(repo: &Path) -> Vec<Loaded> {
    let (all, bad) = store::load(&LocalBackend::new(repo)).unwrap();
    assert!(bad.is_empty());
    store::live(all).0
}

/// A repository with parity, two keys (so a damaged key file does not lock the test out)
/// and two snapshots of a small library; returns it, the library and its copy.
pub(crate) fn damaged_setup(tmp: &Path, level: &str) -> (Sv, std::path::PathBuf) {
    let src = tmp.join("src");
    library(&src);
    write_random(&src.join("DCIM/IMG_0004.MOV"), 4, 1_500_000);
    let sv = init_with_parity(&tmp.join("repo"), level);
    add_key(&sv);
    sv.snapshot(&[&src], &[]);
    write_random(&src.join("DCIM/IMG_0005.HEIC"), 5, 200_000);
    sv.snapshot(&[&src], &[]);
    assert_covered(&sv.repo, level.parse().unwrap());
    (sv, src)
}

pub(crate) fn check_json(sv: &Sv) -> (Option<i32>, serde_json::Value) {
    let out = sv.run(&["check", "--read-data", "--json"]);
    let v = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("check: {e}\n{out}"));
    (out.code, v)
}

pub(crate) fn names(v: &serde_json::Value, list: &str) -> HashSet<String> {
    v["parity"][list]
        .as_array()
        .unwrap_or_else(|| panic!("no parity.{list} in {v}"))
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["kind"].as_str().unwrap(),
                f["name"].as_str().unwrap()
            )
        })
        .collect()
}

/// check names every damaged file as repairable, repair --apply fixes it, a second check
/// is clean and the latest snapshot restores byte for byte.
pub(crate) fn repaired_in_full(sv: &Sv, src: &Path, damaged: HashSet<String>, tmp: &Path) {
    let (code, v) = check_json(sv);
    assert_eq!(code, Some(4), "check must report the damage: {v}");
    assert_eq!(names(&v, "repairable"), damaged, "{v}");
    assert!(names(&v, "lost").is_empty(), "{v}");
    let out = sv.ok(&["repair", "--apply"]);
    for d in &damaged {
        assert!(
            out.stdout.contains(&format!("repaired from parity: {d}")),
            "{out}"
        );
    }
    let second = sv.run(&["check", "--read-data", "--json"]);
    assert_eq!(
        second.code,
        Some(0),
        "second check: {second}\nafter repair:\n{out}"
    );
    let v = second.json();
    assert!(names(&v, "repairable").is_empty() && names(&v, "lost").is_empty());
    let back = tmp.join("back");
    assert_eq!(sv.restore("latest", &back).code, Some(0));
    assert_same_tree(src, &back.join(src.file_name().unwrap()));
}

/// Damage every band of every group up to its recovery count (the promise), in random
/// sectors of its members; in the group of config and key files (one sector of budget at
/// this size) the file of kind `prefer`. Returns "kind name" of each damaged file.
pub(crate) fn damage_within_promise(
    repo: &Path,
    rng: &mut StdRng,
    prefer: &dyn Fn(&snapvault_repo::parity::Member) -> bool,
) -> HashSet<String> {
    let mut damaged = HashSet::new();
    for l in live_groups(repo) {
        let h = &l.header;
        for (b, band) in h.bands.iter().enumerate() {
            let mut places: Vec<(usize, u64)> = (0..h.members.len())
                .flat_map(|i| h.band_range(b, i).map(move |r| (i, r)))
                .collect();
            places.shuffle(rng);
            places.sort_by_key(|(i, _)| !prefer(&h.members[*i]));
            for &(i, row) in places.iter().take(band.recovery_hashes.len()) {
                let m = &h.members[i];
                damage_sector(&member_path(repo, m.kind, &m.name), row, rng);
                damaged.insert(format!("{} {}", kind_label(m.kind), m.name));
            }
        }
    }
    damaged
}

/// The key file written by `init` (the one the test's password opens).
pub(crate) fn first_key(repo: &Path) -> String {
    names_in(repo, "keys")
        .into_iter()
        .min_by_key(|k| {
            std::fs::metadata(repo.join("keys").join(k))
                .unwrap()
                .modified()
                .unwrap()
        })
        .unwrap()
}

pub(crate) fn kind_label(k: MemberKind) -> &'static str {
    match k {
        MemberKind::Config => "config",
        MemberKind::Key => "key",
        MemberKind::Snapshot => "snapshot",
        MemberKind::Index => "index",
        MemberKind::Pack => "pack",
    }
}

// ---- Crashes.

/// Run `snapvault ARGS` until it reaches pause point `point` (`POINT@N`), then kill it
/// (SIGKILL), as a crash or a pulled plug would stop it there.
pub(crate) fn kill_at(sv: &Sv, args: &[&str], point: &str, tmp: &Path) {
    assert!(
        kill_if_reached(sv, args, point, tmp),
        "{args:?} ended before reaching {point}"
    );
}

/// [`kill_at`], or let the command end if it never reaches `point`; whether it was killed.
pub(crate) fn kill_if_reached(sv: &Sv, args: &[&str], point: &str, tmp: &Path) -> bool {
    let gate = tmp.join(format!("gate-{}", point.replace('@', "-")));
    let _ = std::fs::remove_dir_all(&gate);
    std::fs::create_dir_all(&gate).unwrap();
    let mut c = sv.command(args);
    c.env("SNAPVAULT_TEST_PAUSE", point)
        .env("SNAPVAULT_TEST_PAUSE_DIR", &gate)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let paused = gate.join(format!("{point}.paused"));
    let deadline = std::time::Instant::now() + DEFAULT_TIMEOUT;
    while !paused.exists() {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never reached {point}"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}
