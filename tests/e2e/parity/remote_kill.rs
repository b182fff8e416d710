//! Kill -9 on remote repositories (issue 21: parity stays consistent through crashes "and
//! remote repositories (S3/SFTP)"). A snapshot and a `forget --prune` on S3 and on SFTP are
//! killed (SIGKILL) at a sample of their write points, counted by the test build's fault
//! injector (`SNAPVAULT_TEST_FAULT=write+remove@N:kill`), which sits beneath the parity
//! guard and counts every write and removal of packs, index files, snapshots, key files,
//! the config and parity files. After each kill `check --read-data` finds no wrong parity
//! (nothing damaged, lost, repairable or unreadable — the test damaged nothing, so a file
//! named repairable would be parity misreading an intact one), the command run again
//! completes, and at the end every file is covered, a lost pack is rebuilt from parity
//! (accepted by its BLAKE3) and the latest snapshot restores byte for byte.
//!
//! The write points, in order, of a snapshot that adds one photo here (7): 1 the clean-up of
//! leftover temporary files, 2–3 the data and tree packs, 4 the index file, 5 the manifest,
//! 6–7 the parity files of the new packs and of the index file with the manifest. Of a
//! `forget --keep-last 1 --prune` of three snapshots (24): 1 the clean-up, 2–7 each
//! forgotten snapshot's group rebuilt without it (new parity file, old one removed) and the
//! snapshot removed, 8–13 prune's repacked pack, new index file and the old index files
//! removed (each leaving its group first), 14–19 the pack groups rebuilt without the pruned
//! packs, 20–22 the pruned packs removed, 23–24 the parity of the new pack and index file.
//! Sampled (the local kill tests, `parity::kill` and `parity::crash`, go through every
//! point): on S3 a snapshot killed before 2, 4 and 6 and `forget --prune` before 3 (a
//! forgotten snapshot's new group written, the old not yet removed; where a guard that
//! removed the snapshot before regrouping it would leave parity naming a removed file),
//! 9 (a repacked pack not yet indexed) and 21 (between pruned packs' removals); on SFTP a snapshot killed before 3
//! and 5 and right after 7, and `forget --prune` before 13 (index files half replaced), 19
//! (pack groups half rebuilt) and right after 24 (all done, the process dies before it
//! exits). A kill is asserted to have happened, so a command with fewer write points fails
//! the test rather than sampling less.

use super::*;
use crate::remote::{Remote, no_servers, restore_matches};

const FORGET: [&str; 7] = [
    "forget",
    "--keep-last",
    "1",
    "--prune",
    "--max-unused",
    "0",
    "--allow-photo-loss",
];

/// Run `args` with the fault injector set to `spec`; it must be killed there.
fn killed(r: &Remote, args: &[&str], spec: &str) {
    killed_command(r, r.command(args), &format!("{args:?}"), spec);
}

/// Run `c` (a command on `r`) with the fault injector set to `spec`; it must be killed
/// there.
pub(super) fn killed_command(r: &Remote, mut c: std::process::Command, args: &str, spec: &str) {
    c.env("SNAPVAULT_TEST_FAULT", spec);
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(
        out.code, None,
        "{args} on {}: not killed at {spec}: {out}",
        r.url
    );
}

/// `check --read-data --json`: no parity wrong, nothing damaged; its report.
fn consistent(r: &Remote, what: &str) -> serde_json::Value {
    consistent_but(r, 10, &HashSet::new(), what)
}

/// `check --read-data --json` at parity level `level`: no parity file damaged or
/// unreadable, nothing lost, nothing repairable but files of `damaged` (the test's own
/// damage, "kind name"); its report.
pub(super) fn consistent_but(
    r: &Remote,
    level: u8,
    damaged: &HashSet<String>,
    what: &str,
) -> serde_json::Value {
    let out = r.run(&["check", "--read-data", "--json"]);
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{what}: check: {e}\n{out}"));
    let p = &v["parity"];
    assert_eq!(p["level"], level, "{what}: {v}");
    for list in ["parity_files_damaged", "parity_files_unreadable"] {
        assert_eq!(p[list], serde_json::json!([]), "{what}: {v}");
    }
    assert!(names(&v, "lost").is_empty(), "{what}: {v}");
    let repairable = names(&v, "repairable");
    assert!(
        repairable.is_subset(damaged),
        "{what}: parity reads files the test did not damage as damaged: {:?}\n{v}",
        repairable.difference(damaged).collect::<Vec<_>>()
    );
    let code = if repairable.is_empty() { 0 } else { 4 };
    assert_eq!(out.code, Some(code), "{what}: {out}");
    v
}

/// Kill a snapshot at each of `points` (fault specifications), one after the other on one
/// repository, checking after each (module documentation); then lose the biggest pack
/// (`lose_biggest_pack` deletes it behind snapvault's back and names it) and repair it.
fn snapshot_kills(r: &Remote, points: &[&str], lose_biggest_pack: &dyn Fn() -> String) {
    let work = tempdir();
    let src = work.path().join("library");
    library(&src);
    let src_s = src.display().to_string();
    r.ok(&["init", "--parity", "10"]);
    r.ok(&["snapshot", &src_s]);
    for (n, spec) in points.iter().enumerate() {
        let what = format!("{}: snapshot killed at {spec}", r.url);
        write_random(
            &src.join(format!("DCIM/NEW_{n}.HEIC")),
            300 + n as u64,
            300_000,
        );
        killed(r, &["snapshot", &src_s], spec);
        consistent(r, &what);
        r.ok(&["snapshot", &src_s]);
    }
    // Everything covered now, and the parity in force rebuilds a lost pack.
    let v = consistent(r, "after the kills");
    assert_eq!(v["parity"]["files_unprotected"], 0, "{v}");
    let pack = lose_biggest_pack();
    let out = r.ok(&["repair", "--apply"]);
    assert_mentions(&out, &format!("repaired from parity: pack {pack}"));
    consistent(r, "after the repair");
    restore_matches(r, "latest", &src);
}

/// Kill `forget --prune` at each of `points`, each time on a new repository (`fresh`) of
/// three snapshots, so each point is the same step as in the module documentation.
fn prune_kills(fresh: &dyn Fn() -> Remote, points: &[&str]) {
    let work = tempdir();
    let src = work.path().join("library");
    library(&src);
    let src_s = src.display().to_string();
    let gone = src.join("DCIM/GONE.HEIC");
    for spec in points {
        let r = fresh();
        let what = format!("{}: forget --prune killed at {spec}", r.url);
        r.ok(&["init", "--parity", "10"]);
        r.ok(&["snapshot", &src_s]);
        write_random(&gone, 400, 300_000);
        r.ok(&["snapshot", &src_s]);
        std::fs::remove_file(&gone).unwrap();
        r.ok(&["snapshot", &src_s]);
        killed(&r, &FORGET, spec);
        consistent(&r, &what);
        r.ok(&FORGET);
        let v = consistent(&r, &format!("{what}, run again"));
        assert_eq!(v["parity"]["files_unprotected"], 0, "{what}: {v}");
        restore_matches(&r, "latest", &src);
    }
}

#[test]
fn snapshot_and_forget_prune_killed_on_s3_keep_parity_old_or_new() {
    if no_servers() {
        return;
    }
    let r = Remote::s3("parity-kill");
    let objects = super::s3_raw::Objects::of(&r);
    let lose = || {
        let path = objects
            .list("data")
            .into_iter()
            .max_by_key(|p| objects.get(p).len())
            .expect("a pack");
        objects.delete(&path);
        path.rsplit('/').next().unwrap().to_string()
    };
    snapshot_kills(
        &r,
        &["write+remove@2", "write+remove@4", "write+remove@6"],
        &lose,
    );
    prune_kills(
        &|| Remote::s3("parity-kill-prune"),
        &["write+remove@3", "write+remove@9", "write+remove@21"],
    );
}

#[test]
fn snapshot_and_forget_prune_killed_on_sftp_keep_parity_old_or_new() {
    if no_servers() {
        return;
    }
    let r = Remote::sftp("parity-kill");
    let folder = r.sftp_folder();
    let lose = || {
        let (pack, path) = pack_files(&folder)
            .into_iter()
            .max_by_key(|(_, p)| std::fs::metadata(p).unwrap().len())
            .expect("a pack");
        std::fs::remove_file(path).unwrap();
        pack
    };
    snapshot_kills(
        &r,
        &[
            "write+remove@3",
            "write+remove@5",
            "write+remove@7:kill-after",
        ],
        &lose,
    );
    prune_kills(
        &|| Remote::sftp("parity-kill-prune"),
        &[
            "write+remove@13",
            "write+remove@19",
            "write+remove@24:kill-after",
        ],
    );
}
