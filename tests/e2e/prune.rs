//! `forget` and `prune` end to end: retention rules keep exactly the expected snapshots,
//! photo safety refuses (and can be overridden), prune gives back the space of removed
//! photos, `check --read-data` passes and the remaining snapshots restore byte-exact,
//! dry runs change nothing, and a prune killed at any of several moments leaves a
//! repository that checks, restores and prunes cleanly afterwards.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use snapvault_media::CaptureTime;
use snapvault_repo::backend::LocalBackend;
use snapvault_repo::snapshot::Snapshot;
use snapvault_repo::{Repository, SnapshotId};

use crate::common::*;

fn open_repo(sv: &Sv) -> Repository {
    let pw = sv.password.clone().unwrap_or_default();
    Repository::open(
        Arc::new(LocalBackend::new(&sv.repo)),
        || Ok(pw.into_bytes()),
    )
    .expect("open repository")
}

/// `YYYY-MM-DD HH:MM` (UTC) → ns.
fn at(s: &str) -> i64 {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
    let days = snapvault_repo::time::days_from_civil(n(0, 4), n(5, 7) as u32, n(8, 10) as u32);
    (days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60) * 1_000_000_000
}

/// A HEIC the media inspector recognises, taken on `date` (YYYY-MM-DD), ≈ `kb` KiB.
fn heic(path: &Path, date: &str, kb: usize, seed: u64) -> Vec<u8> {
    let c = CaptureTime {
        year: date[0..4].parse().unwrap(),
        month: date[5..7].parse().unwrap(),
        day: date[8..10].parse().unwrap(),
        hour: 12,
        minute: 0,
        second: 0,
        offset_minutes: Some(120),
    };
    let bytes = snapvault_media::sample::heic(&c, None, kb * 1024, seed);
    write_file(path, &bytes);
    bytes
}

fn ids_of(v: &Value, keep: bool) -> Vec<String> {
    v["snapshots"]
        .as_array()
        .expect("snapshots")
        .iter()
        .filter(|s| s["keep"].as_bool() == Some(keep))
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

fn data_size(repo: &Path) -> u64 {
    tree_size(&repo.join("data"))
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

/// `check --read-data` passes, and each snapshot restores exactly to its remembered state.
fn verify(sv: &Sv, states: &[(String, BTreeMap<PathBuf, Item>)], what: &str) {
    let out = sv.run(&["check", "--read-data"]);
    assert_eq!(
        out.code,
        Some(0),
        "{what}: check --read-data failed:\n{out}"
    );
    let listed: Vec<String> = sv
        .snapshots()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed.len(), states.len(), "{what}: snapshots {listed:?}");
    for (id, state) in states {
        assert!(listed.contains(id), "{what}: snapshot {id} is gone");
        let t = tempdir();
        sv.restore(id, t.path());
        assert_contents(state, &t.path().join("lib"));
    }
}

#[test]
fn forget_rules_keep_exactly_the_expected_snapshots() {
    let tmp = tempdir();
    let sv = Sv::init(tmp.path().join("repo"), true);
    let lib = tmp.path().join("lib");
    write_random(&lib.join("notes.txt"), 1, 1000);
    let first = sv.snapshot(&[&lib], &[]);
    let repo = open_repo(&sv);
    let first_id: SnapshotId = first["id"].as_str().unwrap().parse().unwrap();
    let template: Snapshot = repo.load_snapshot(&first_id).unwrap();
    repo.backend()
        .remove(
            snapvault_repo::backend::FileKind::Snapshot,
            &first_id.to_hex(),
        )
        .unwrap();
    // The same source at fixed times (newest last).
    let times = [
        ("2023-12-31 23:30", vec!["keep"]),
        ("2024-01-15 08:00", vec![]),
        ("2024-02-29 12:00", vec![]),
        ("2024-03-01 09:00", vec![]),
        ("2024-03-01 18:00", vec![]),
        ("2024-03-03 10:00", vec![]),
        ("2024-03-04 07:00", vec![]),
        ("2024-03-10 20:00", vec![]),
    ];
    let mut ids = Vec::new();
    for (t, tags) in &times {
        let mut s = template.clone();
        s.time = at(t);
        s.tags = tags.iter().map(|x| x.to_string()).collect();
        s.parent = None;
        ids.push(repo.save_snapshot(&s).unwrap().to_hex());
    }
    let cases: Vec<(&[&str], &[usize])> = vec![
        (&["--keep-last", "3"], &[7, 6, 5]),
        (&["--keep-daily", "4"], &[7, 6, 5, 4]),
        // ISO weeks: Sun 10 Mar and Mon 4 Mar share week 10; Sun 3 Mar is week 9.
        (&["--keep-weekly", "2"], &[7, 5]),
        (&["--keep-monthly", "2"], &[7, 2]),
        // Fewer years than the count: the oldest is kept as well.
        (&["--keep-yearly", "5"], &[7, 0]),
        (&["--keep-within", "3d"], &[7]),
        (&["--keep-within", "1w2d"], &[7, 6, 5]),
        (&["--keep-tag", "keep"], &[0]),
        (
            &[
                "--keep-last",
                "1",
                "--keep-monthly",
                "3",
                "--keep-tag",
                "keep",
            ],
            &[7, 2, 1, 0],
        ),
    ];
    let before = listing(&sv.repo);
    for (args, want) in &cases {
        let mut a = vec!["forget", "--dry-run", "--json"];
        a.extend_from_slice(args);
        let v = sv.ok(&a).json();
        let mut kept = ids_of(&v, true);
        kept.sort();
        let mut expected: Vec<String> = want.iter().map(|&i| ids[i].clone()).collect();
        expected.sort();
        assert_eq!(kept, expected, "forget {args:?}");
        assert_eq!(ids_of(&v, false).len(), ids.len() - want.len());
        // Every kept snapshot says why.
        for s in v["snapshots"].as_array().unwrap() {
            let reasons = s["reasons"].as_array().unwrap();
            assert_eq!(s["keep"].as_bool().unwrap(), !reasons.is_empty(), "{s}");
        }
    }
    assert_unchanged(&before, &sv.repo, "forget --dry-run");

    // The text output lists each snapshot with its reasons or "remove".
    let out = sv.ok(&["forget", "--dry-run", "--keep-monthly", "2"]);
    assert_mentions(&out, "keep    monthly snapshot");
    assert_mentions(&out, "remove");
    assert_mentions(&out, "keep 2, remove 6");

    // A real run removes exactly those.
    let v = sv
        .ok(&[
            "forget",
            "--json",
            "--keep-last",
            "1",
            "--keep-monthly",
            "3",
            "--keep-tag",
            "keep",
        ])
        .json();
    assert_eq!(v["removed"].as_u64(), Some(4));
    let mut left: Vec<String> = sv
        .snapshots()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    left.sort();
    let mut expected: Vec<String> = [7, 2, 1, 0].iter().map(|&i| ids[i].clone()).collect();
    expected.sort();
    assert_eq!(left, expected);

    // By id (prefix).
    let short = &ids[1][..10];
    let out = sv.ok(&["forget", short]);
    assert_mentions(&out, "removed 1 snapshot");
    assert_eq!(sv.snapshots().len(), 3);

    // No policy, no ids: refused, nothing removed.
    let out = sv.run(&["forget"]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "refusing");
    let out = sv.run(&["forget", "--keep-last", "0"]);
    assert_failed(&out);
    assert_eq!(sv.snapshots().len(), 3);
    // Policy and ids together are refused too.
    assert_failed(&sv.run(&["forget", "--keep-last", "1", short]));
    assert_failed(&sv.run(&["forget", "--keep-within", "3x"]));
}

#[test]
fn photos_deleted_on_the_phone_are_protected_and_prune_frees_their_space() {
    let tmp = tempdir();
    let sv = Sv::init(tmp.path().join("repo"), true);
    let lib = tmp.path().join("lib");
    let dcim = lib.join("DCIM/100APPLE");
    // Ten photos of ≈ 400 KiB (one chunk each); two months of captures.
    let mut sizes = BTreeMap::new();
    for i in 0..10u64 {
        let date = format!("2023-{:02}-{:02}", 6 + i / 5, 1 + i * 2);
        let b = heic(&dcim.join(format!("IMG_{i:04}.HEIC")), &date, 400, i);
        sizes.insert(i, b.len() as u64);
    }
    let s1 = sv.snapshot(&[&lib], &[]);
    let st1 = tree_contents(&lib);
    // Deleted on the phone: 2, 3 and 7.
    for i in [2u64, 3, 7] {
        fs::remove_file(dcim.join(format!("IMG_{i:04}.HEIC"))).unwrap();
    }
    let s2 = sv.snapshot(&[&lib], &[]);
    let st2 = tree_contents(&lib);
    heic(&dcim.join("IMG_0010.HEIC"), "2023-08-01", 300, 10);
    let s3 = sv.snapshot(&[&lib], &[]);
    let st3 = tree_contents(&lib);
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    let (id1, id2, id3) = (id(&s1), id(&s2), id(&s3));

    // keep-last 2 would drop the only snapshot holding photos 2, 3 and 7: refused.
    let before = listing(&sv.repo);
    let out = sv.run(&["forget", "--keep-last", "2"]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "3 photo(s)");
    assert_stderr_mentions(&out, "taken 2023-06-05 … 2023-07-15");
    for i in [2, 3, 7] {
        assert_stderr_mentions(&out, &format!("DCIM/100APPLE/IMG_000{i}.HEIC"));
    }
    assert_stderr_mentions(&out, "--allow-photo-loss");
    assert_unchanged(&before, &sv.repo, "a refused forget");
    // The JSON says the same.
    let out = sv.run(&["forget", "--keep-last", "2", "--json"]);
    assert_failed(&out);
    let v = out.json();
    assert_eq!(v["refused"], Value::Bool(true));
    assert_eq!(v["photo_loss"]["lost"].as_array().unwrap().len(), 3);
    // Dropping the newest would lose IMG_0010, which only it holds.
    let out = sv.run(&["forget", &id3[..12], "--dry-run"]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "IMG_0010.HEIC");
    // Dropping s2 loses nothing: s1 and s3 hold every photo of it.
    let out = sv.ok(&["forget", &id2[..12], "--dry-run"]);
    assert_mentions(&out, "would remove 1 snapshot");
    assert_unchanged(&before, &sv.repo, "forget --dry-run");

    // forget --prune --dry-run shows the prune plan and changes nothing.
    let out = sv.ok(&[
        "forget",
        "--keep-last",
        "2",
        "--allow-photo-loss",
        "--prune",
        "--dry-run",
    ]);
    assert_mentions(&out, "would remove 1 snapshot");
    assert_mentions(&out, "would free about");
    assert_unchanged(&before, &sv.repo, "forget --prune --dry-run");
    let out = sv.ok(&["prune", "--dry-run"]);
    assert_mentions(&out, "nothing to prune");
    assert_unchanged(&before, &sv.repo, "prune --dry-run");

    // Overridden: the snapshot goes, prune frees the three photos' space.
    let size_before = data_size(&sv.repo);
    let out = sv.ok(&["forget", "--keep-last", "2", "--allow-photo-loss"]);
    assert_stderr_mentions(&out, "3 photo(s)");
    assert_mentions(&out, "removed 1 snapshot");
    // Until prune runs, nothing is freed.
    assert_eq!(data_size(&sv.repo), size_before);
    let v = sv.ok(&["prune", "--json", "--max-unused", "0"]).json();
    let freed = size_before - data_size(&sv.repo);
    let photos: u64 = [2, 3, 7].iter().map(|i| sizes[i]).sum();
    assert_eq!(v["done"]["bytes_freed"].as_i64().unwrap() as u64, freed);
    // The photos' bytes plus at most a few KiB of trees and headers (sealing adds ~40 B/blob).
    assert!(freed >= photos, "freed {freed}, photos {photos}: {v}");
    assert!(
        freed <= photos + 64 * 1024,
        "freed {freed}, photos {photos}: {v}"
    );
    verify(
        &sv,
        &[(id2.clone(), st2.clone()), (id3.clone(), st3.clone())],
        "after prune",
    );
    let _ = (id1, st1);

    // Nothing left to do.
    let v = sv.ok(&["prune", "--json"]).json();
    assert_eq!(v["plan"]["unused_bytes"].as_u64(), Some(0), "{v}");
}

/// A refused lock says once who holds it: one `error:` line naming the holder's command,
/// pid and time, without the holder (or "repository is") repeated; the hint and exit code
/// come from the kind. Shared holder refusing prune, exclusive holder refusing a snapshot.
#[test]
fn a_lock_refusal_names_the_holder_once() {
    let tmp = tempdir();
    let sv = Sv::init(tmp.path().join("repo"), true);
    let lib = tmp.path().join("lib");
    write_random(&lib.join("IMG_0001.HEIC"), 1, 10_000);
    let repo = open_repo(&sv);
    let pid = format!("(pid {} on ", std::process::id());
    for (holder, exclusive, args) in [
        ("prune", true, vec!["snapshot", lib.to_str().unwrap()]),
        ("snapshot", false, vec!["prune"]),
    ] {
        let guard = repo.lock(exclusive, holder).unwrap();
        let out = sv.run(&args);
        assert_eq!(out.code, Some(11), "{args:?}: {out}");
        let error: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(error.len(), 1, "{out}");
        let want = format!("error: repository is in use by `snapvault {holder}` {pid}");
        assert!(
            error[0].starts_with(&want),
            "{:?} wanted to start {want:?}",
            error[0]
        );
        assert_eq!(
            out.stderr.matches(&pid).count(),
            1,
            "holder named twice: {out}"
        );
        assert_eq!(out.stderr.matches("repository is").count(), 1, "{out}");
        assert!(error[0].ends_with(" UTC"), "{out}");
        assert_stderr_mentions(&out, "hint: wait for the other command to finish");
        drop(guard);
    }
}

#[test]
fn prune_respects_locks_and_reports_what_it_does() {
    let tmp = tempdir();
    let sv = Sv::init(tmp.path().join("repo"), false);
    let lib = tmp.path().join("lib");
    for i in 0..6 {
        write_random(&lib.join(format!("IMG_{i:04}.HEIC")), i, 200_000);
    }
    let s1 = sv.snapshot(&[&lib], &[]);
    fs::remove_file(lib.join("IMG_0000.HEIC")).unwrap();
    sv.snapshot(&[&lib], &[]);
    // A running snapshot holds a shared lock: prune and forget say who and since when.
    let repo = open_repo(&sv);
    let guard = repo.lock(false, "snapshot").unwrap();
    let out = sv.run(&["prune"]);
    assert_eq!(out.code, Some(11), "{out}");
    assert_stderr_mentions(&out, "repository is in use by `snapvault snapshot`");
    assert_stderr_mentions(&out, "since");
    assert_failed(&sv.run(&["forget", "--keep-last", "1", "--allow-photo-loss"]));
    drop(guard);
    // The storage internals of the plan are printed with -v (24.8).
    let out = sv.ok(&[
        "-v",
        "forget",
        s1["id"].as_str().unwrap(),
        "--allow-photo-loss",
        "--prune",
        "--max-unused",
        "0",
    ]);
    for needle in [
        "used:",
        "unused:",
        "plan:",
        "remove",
        "repack",
        "space freed:",
    ] {
        assert_mentions(&out, needle);
    }
    let out = sv.ok(&["check", "--read-data"]);
    assert_mentions(&out, "no errors found");
}

/// One prepared repository: two snapshots remain, one was forgotten, prune has work.
struct Prepared {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    states: Vec<(String, BTreeMap<PathBuf, Item>)>,
}

fn prepared() -> Prepared {
    let tmp = tempdir();
    let sv = Sv::init(tmp.path().join("repo"), true);
    let lib = tmp.path().join("lib");
    // Photos over 512 KiB are cut into several chunks; 15 of ≈ 200–700 KiB.
    for i in 0..15u64 {
        let kb = 200 + (i as usize * 97) % 500;
        heic(
            &lib.join(format!("DCIM/IMG_{i:04}.HEIC")),
            "2024-05-01",
            kb,
            i,
        );
    }
    let s1 = sv.snapshot(&[&lib], &[]);
    for i in (0..15u64).step_by(3) {
        fs::remove_file(lib.join(format!("DCIM/IMG_{i:04}.HEIC"))).unwrap();
    }
    let s2 = sv.snapshot(&[&lib], &[]);
    let st2 = tree_contents(&lib);
    write_random(&lib.join("notes.txt"), 5, 3000);
    let s3 = sv.snapshot(&[&lib], &[]);
    let st3 = tree_contents(&lib);
    sv.ok(&["forget", s1["id"].as_str().unwrap(), "--allow-photo-loss"]);
    Prepared {
        repo: sv.repo.clone(),
        states: vec![
            (s2["id"].as_str().unwrap().to_string(), st2),
            (s3["id"].as_str().unwrap().to_string(), st3),
        ],
        _tmp: tmp,
    }
}

#[test]
fn prune_killed_at_any_moment_leaves_a_good_repository() {
    let p = prepared();
    // How many pack/index writes and removes a full prune makes.
    let work = tempdir();
    let probe = work.path().join("probe");
    copy_dir(&p.repo, &probe);
    let sv = Sv::at(&probe, Some(PASSWORD));
    let v = sv.ok(&["prune", "--json", "--max-unused", "0"]).json();
    let d = &v["done"];
    let ops = d["packs_written"].as_u64().unwrap()
        + d["index_files_written"].as_u64().unwrap()
        + d["index_files_removed"].as_u64().unwrap()
        + d["packs_removed"].as_u64().unwrap();
    assert!(ops >= 5, "{v}");

    // Killed by SIGKILL before and right after each of them.
    let mut kills = 0;
    for n in 1..=ops {
        for effect in ["kill", "kill-after"] {
            let root = work.path().join(format!("k-{n}-{effect}"));
            copy_dir(&p.repo, &root);
            let sv = Sv::at(&root, Some(PASSWORD));
            let spec = format!("write+remove@{n}:{effect}");
            let out = sv.run_env(
                &["prune", "--max-unused", "0"],
                &[("SNAPVAULT_TEST_FAULT", &spec)],
            );
            assert_eq!(out.code, None, "{spec}: prune was not killed:\n{out}");
            kills += 1;
            let what = format!("prune killed at {spec}");
            verify(&sv, &p.states, &what);
            // The dead process's lock is stale; a new prune completes and cleans up.
            let v = sv
                .ok(&[
                    "prune",
                    "--json",
                    "--max-unused",
                    "0",
                    "--unindexed-grace",
                    "0",
                ])
                .json();
            let _ = v;
            verify(&sv, &p.states, &format!("{what}, then pruned again"));
            let v = sv
                .ok(&[
                    "prune",
                    "--json",
                    "--dry-run",
                    "--max-unused",
                    "0",
                    "--unindexed-grace",
                    "0",
                ])
                .json();
            let plan = &v["plan"];
            assert_eq!(
                (
                    plan["remove_packs"].as_u64(),
                    plan["unindexed_packs"].as_u64(),
                    plan["unused_bytes"].as_u64()
                ),
                (Some(0), Some(0), Some(0)),
                "{what}: work left after the re-run: {v}"
            );
            fs::remove_dir_all(&root).unwrap();
        }
    }
    assert!(kills >= 10);

    // And killed from outside after a few delays.
    for delay in [5u64, 20, 60, 150] {
        let root = work.path().join(format!("t-{delay}"));
        copy_dir(&p.repo, &root);
        let sv = Sv::at(&root, Some(PASSWORD));
        let mut cmd = sv.command(&["prune", "--max-unused", "0"]);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(delay) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = child.kill();
        let _ = child.wait();
        verify(&sv, &p.states, &format!("prune killed after {delay} ms"));
        sv.ok(&["prune", "--max-unused", "0", "--unindexed-grace", "0"]);
        verify(
            &sv,
            &p.states,
            &format!("prune killed after {delay} ms, then pruned again"),
        );
    }
}
