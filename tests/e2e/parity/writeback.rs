//! What `repair --apply`, `copy` and `prune` leave of parity beside their own writes: a
//! file rebuilt from parity keeps its group (it has the bytes and name the group recorded),
//! and the last group of the packs they write is written beside their last index file,
//! under their lock (format.md §15.5), as a snapshot's is.

use std::path::Path;
use std::time::{Duration, Instant};

use snapvault_repo::parity::MemberKind;

use crate::common::*;
use crate::parity::{assert_covered, check_json, init_with_parity, live_groups, names};

/// How many groups in force name each pack.
fn groups_per_pack(repo: &Path) -> Vec<(String, usize)> {
    let groups = live_groups(repo);
    let mut out: Vec<(String, usize)> = pack_files(repo)
        .into_iter()
        .map(|(p, _)| {
            let n = groups
                .iter()
                .filter(|l| {
                    l.header
                        .members
                        .iter()
                        .any(|m| m.kind == MemberKind::Pack && m.name == p)
                })
                .count();
            (p, n)
        })
        .collect();
    out.sort();
    out
}

/// After a kill at the write point: `check --read-data` finds nothing lost and nothing
/// for parity to mend (the old or the new parity is valid, never a wrong one); its exit
/// code, for callers that expect more of it.
fn nothing_lost_or_repairable(sv: &Sv) -> Option<i32> {
    let (code, v) = check_json(sv);
    assert!(names(&v, "lost").is_empty(), "{v}");
    assert!(names(&v, "repairable").is_empty(), "{v}");
    code
}

/// The end of each story: `check --read-data` clean, everything covered at `percent`, and
/// (with a source) the latest snapshot restoring byte-exact.
fn clean_and_covered(sv: &Sv, percent: u8, restore: Option<(&Path, &Path)>, out: &str) {
    let (code, v) = check_json(sv);
    assert_eq!(code, Some(0), "{v}\n{out}");
    assert_covered(&sv.repo, percent);
    if let Some((src, back)) = restore {
        assert_eq!(sv.restore("latest", back).code, Some(0));
        assert_same_tree(src, &back.join("src"));
    }
}

/// A lost pack rebuilt from parity is put back under its name with its bytes: its old
/// group still covers it. Before, the write-back went through the parity stream as a new
/// pack, so a second group of that one pack was written (a full 16 MiB copy of it, the
/// pack named by two groups).
#[test]
fn a_pack_rebuilt_from_parity_stays_in_its_group_alone() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    for i in 0..3 {
        write_random(&src.join(format!("DCIM/CLIP_{i}.MOV")), 60 + i, 6 << 20);
    }
    let sv = init_with_parity(&tmp.path().join("repo"), "10");
    sv.snapshot(&[&src], &[]);
    let before = live_groups(&sv.repo);
    let packs = pack_files(&sv.repo);
    assert!(packs.len() >= 2, "{packs:?}");
    let parity_bytes = |repo: &Path| -> u64 {
        names_in(repo, "parity")
            .iter()
            .map(|n| {
                std::fs::metadata(repo.join("parity").join(n))
                    .unwrap()
                    .len()
            })
            .sum()
    };
    let bytes_before = parity_bytes(&sv.repo);
    let (lost, path) = &packs[0];
    let original = std::fs::read(path).unwrap();
    std::fs::remove_file(path).unwrap();

    let out = sv.ok(&["repair", "--apply"]);
    assert_mentions(&out, &format!("repaired from parity: pack {lost}"));
    assert_eq!(std::fs::read(path).unwrap(), original, "{out}");
    for (p, n) in groups_per_pack(&sv.repo) {
        assert_eq!(n, 1, "pack {p} is named by {n} groups in force\n{out}");
    }
    let after = live_groups(&sv.repo);
    let names_of = |v: &[snapvault_repo::parity::store::Loaded]| {
        let mut n: Vec<String> = v.iter().map(|l| l.name.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(
        names_of(&after),
        names_of(&before),
        "no parity file changes\n{out}"
    );
    assert_eq!(parity_bytes(&sv.repo), bytes_before, "{out}");
    let (code, v) = check_json(&sv);
    assert_eq!(code, Some(0), "{v}");
    assert_covered(&sv.repo, 10);
}

/// Run `args` paused at both `points` (`POINT@N`), wait until both are reached, kill it.
/// Fails when the command ends first or the deadline passes with only some reached.
fn kill_when_paused_at_both(
    sv: &Sv,
    args: &[&str],
    env: &[(&str, &str)],
    points: [&str; 2],
    gate: &Path,
) {
    std::fs::create_dir_all(gate).unwrap();
    let mut c = sv.command(args);
    c.envs(env.iter().copied());
    c.env("SNAPVAULT_TEST_PAUSE", points.join(","))
        .env("SNAPVAULT_TEST_PAUSE_DIR", gate)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let deadline = Instant::now() + DEFAULT_TIMEOUT;
    let paused = points.map(|p| format!("{p}.paused"));
    while !paused.iter().all(|p| gate.join(p).exists()) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{args:?} ended before reaching both {points:?}"
        );
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "{args:?} never paused at both: {:?}",
                paused.map(|p| gate.join(p).exists())
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `repair --apply` rescuing a damaged pack's intact blobs into new packs writes their
/// parity beside its index file, not after the command; killed there (the new packs'
/// group in force, no index naming them yet), the repository checks as the damage left
/// it, and a second repair ends clean.
#[test]
fn repairs_last_group_is_written_beside_its_index_and_a_kill_there_is_clean() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    for i in 0..2 {
        write_random(&src.join(format!("DCIM/CLIP_{i}.MOV")), 70 + i, 5 << 20);
    }
    let sv = init_with_parity(&tmp.path().join("repo"), "50");
    sv.snapshot(&[&src], &[]);
    // One flipped byte in the largest pack: repair rescues its other blobs into a new
    // pack.
    let packs = pack_files(&sv.repo);
    let (_, path) = packs
        .iter()
        .max_by_key(|(_, p)| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut b = std::fs::read(path).unwrap();
    let at = b.len() / 2;
    b[at] ^= 0x10;
    std::fs::write(path, b).unwrap();
    // Parity would mend the byte first: its groups are made again over the pack as it
    // reads now, so the flip is the pack's own damage (its BLAKE3), not parity's.
    for n in names_in(&sv.repo, "parity") {
        std::fs::remove_file(sv.repo.join("parity").join(n)).unwrap();
    }
    sv.ok(&["parity", "set", "50"]);
    let indexes_before = names_in(&sv.repo, "index");

    let gate = tmp.path().join("gate");
    kill_when_paused_at_both(
        &sv,
        &["repair", "--apply"],
        &[],
        ["write-index@1", "parity-spooled@1"],
        &gate,
    );
    assert_eq!(
        names_in(&sv.repo, "index"),
        indexes_before,
        "no index file of the repair may be complete yet"
    );
    nothing_lost_or_repairable(&sv);
    sv.ok(&["unlock", "--remove-all"]);
    sv.ok(&["repair", "--apply", "--forget-damaged"]);
    sv.ok(&["prune"]);
    clean_and_covered(&sv, 50, None, "");
}

/// `copy` into a repository with parity writes the parity of its last packs beside its
/// last index file, under its lock, as a snapshot does (before, after the command, when
/// another command may hold the lock: then not at all until the next one).
#[test]
fn copys_last_group_is_written_beside_its_index_and_a_kill_there_is_clean() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    for i in 0..2 {
        write_random(&src.join(format!("DCIM/CLIP_{i}.MOV")), 80 + i, 5 << 20);
    }
    let from = Sv::init(tmp.path().join("from"), true);
    from.snapshot(&[&src], &[]);
    let to = init_with_parity(&tmp.path().join("to"), "50");
    let gate = tmp.path().join("gate");
    let to_repo = to.repo.to_str().unwrap().to_string();
    kill_when_paused_at_both(
        &from,
        &["copy", "--all", "--to", &to_repo],
        &[("SNAPVAULT_PASSWORD2", PASSWORD)],
        ["write-index@1", "parity-spooled@1"],
        &gate,
    );
    assert!(names_in(&to.repo, "index").is_empty());
    nothing_lost_or_repairable(&to);
    to.ok(&["unlock", "--remove-all"]);
    let mut c = from.command(&["copy", "--all", "--to", &to_repo]);
    c.env("SNAPVAULT_PASSWORD2", PASSWORD);
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
    to.ok(&["prune"]);
    let back = tmp.path().join("back");
    clean_and_covered(&to, 50, Some((&src, &back)), "");
}

/// `prune` repacking a pack's used blobs writes the new packs' parity beside its first
/// index file, under its lock (before, after the command, when another command may hold
/// the lock: then not at all until the next one). Killed there (the new pack's group in
/// force, no index naming the pack yet), the repository checks as before the prune, and
/// the next prune ends clean and covered, the snapshot restoring byte-exact.
#[test]
fn prunes_last_group_is_written_beside_its_index_and_a_kill_there_is_clean() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    for i in 0..3 {
        write_random(&src.join(format!("DCIM/IMG_{i}.HEIC")), 90 + i, 1 << 20);
    }
    let sv = init_with_parity(&tmp.path().join("repo"), "10");
    sv.snapshot(&[&src], &[]);
    // The first snapshot forgotten, one photo of the pack is unused: prune repacks the two
    // others into a new pack.
    std::fs::remove_file(src.join("DCIM/IMG_0.HEIC")).unwrap();
    sv.snapshot(&[&src], &[]);
    sv.ok(&["forget", "--keep-last", "1", "--allow-photo-loss"]);
    let indexes_before = names_in(&sv.repo, "index");

    let gate = tmp.path().join("gate");
    kill_when_paused_at_both(
        &sv,
        &["prune", "--max-unused", "0"],
        &[],
        ["write-index@1", "parity-spooled@1"],
        &gate,
    );
    assert_eq!(
        names_in(&sv.repo, "index"),
        indexes_before,
        "no index file of the prune may be complete yet"
    );
    assert_eq!(nothing_lost_or_repairable(&sv), Some(0));
    sv.ok(&["unlock", "--remove-all"]);
    let out = sv.ok(&["prune", "--max-unused", "0", "--unindexed-grace", "0"]);
    let back = tmp.path().join("back");
    clean_and_covered(&sv, 10, Some((&src, &back)), &out.to_string());
}
