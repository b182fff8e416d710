//! Crash safety: a snapshot killed (SIGKILL) at several points leaves a repository that
//! `check` passes and from which every earlier snapshot restores exactly; stale locks of the
//! dead processes block nobody; a normal snapshot afterwards completes and verifies.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;

const MIB: usize = 1024 * 1024;

/// When to kill the running snapshot.
#[derive(Clone, Copy, Debug)]
enum Stage {
    /// Right after spawning: before the repository is even opened.
    Immediately,
    /// A fixed delay (lands while opening / starting to read).
    AfterMs(u64),
    /// As soon as the process's lock file exists.
    LockTaken,
    /// While a pack is being written (a `.tmp-*` file exists under data/).
    PackBeingWritten,
    /// After this many new pack files exist.
    Packs(usize),
    /// As soon as a new index file appears (packs done, snapshot manifest not yet).
    IndexWritten,
}

fn file_names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// (pack names, temporary files) under REPO/data (a pack written as it fills has its
/// temporary file in data/ itself, its folder being known only at its end).
fn data_files(repo: &Path) -> (BTreeSet<String>, usize) {
    let mut packs = BTreeSet::new();
    let mut temps = 0;
    for sub in file_names(&repo.join("data")) {
        if sub.starts_with('.') {
            temps += 1;
            continue;
        }
        for n in file_names(&repo.join("data").join(&sub)) {
            if n.starts_with('.') {
                temps += 1;
            } else {
                packs.insert(n);
            }
        }
    }
    (packs, temps)
}

fn visible(names: BTreeSet<String>) -> BTreeSet<String> {
    names.into_iter().filter(|n| !n.starts_with('.')).collect()
}

/// What a completed snapshot must restore to.
enum Expected {
    /// A remembered state of the small folder.
    Small(BTreeMap<PathBuf, Item>),
    /// The big folder, which never changes.
    Big,
}

#[test]
fn killed_snapshots_leave_a_consistent_repository() {
    let tmp = tempdir();
    let big = tmp.path().join("big");
    let sizes = [5, 7, 9, 11, 13, 15, 17, 19, 20, 14, 12, 8];
    assert_eq!(sizes.iter().sum::<usize>(), 150);
    for (i, s) in sizes.iter().enumerate() {
        write_random(
            &big.join(format!("VID_{i:04}.MOV")),
            5000 + i as u64,
            s * MIB,
        );
    }
    let small = tmp.path().join("small");
    write_random(&small.join("IMG_0001.JPG"), 1, 100_000);
    write_random(&small.join("album/IMG_0002.HEIC"), 2, 700_000);

    let sv = Sv::init(tmp.path().join("repo"), true);
    let repo = sv.repo.clone();
    let mut completed: Vec<(String, Expected)> = Vec::new();
    let s0 = sv.snapshot(&[&small], &[]);
    completed.push((
        s0["id"].as_str().unwrap().to_string(),
        Expected::Small(tree_contents(&small)),
    ));

    let stages = [
        Stage::Immediately,
        Stage::AfterMs(30),
        Stage::LockTaken,
        Stage::PackBeingWritten,
        Stage::Packs(1),
        Stage::Packs(3),
        Stage::Packs(6),
        Stage::IndexWritten,
    ];
    let mut kills = Vec::new();
    let mut log = Vec::new();
    for (n, stage) in stages.iter().enumerate() {
        let (packs_before, _) = data_files(&repo);
        let locks_before = visible(file_names(&repo.join("locks")));
        let index_before = visible(file_names(&repo.join("index")));
        let errlog = tmp.path().join(format!("stage-{n}.stderr"));
        let mut cmd = sv.command(&["snapshot", big.to_str().unwrap()]);
        cmd.stdout(Stdio::null())
            .stderr(Stdio::from(File::create(&errlog).unwrap()));
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn snapshot");
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            let (packs, temps) = data_files(&repo);
            let new_packs = packs.difference(&packs_before).count();
            let fire = match *stage {
                Stage::Immediately => true,
                Stage::AfterMs(ms) => started.elapsed() >= Duration::from_millis(ms),
                Stage::LockTaken => {
                    !visible(file_names(&repo.join("locks"))).is_subset(&locks_before)
                }
                Stage::PackBeingWritten => temps > 0,
                Stage::Packs(k) => new_packs >= k,
                Stage::IndexWritten => {
                    !visible(file_names(&repo.join("index"))).is_subset(&index_before)
                }
            };
            if fire {
                child.kill().expect("kill");
                break child.wait().unwrap();
            }
            if started.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "stage {stage:?}: snapshot neither finished nor reached its kill point in 120 s"
                );
            }
            thread::sleep(Duration::from_micros(500));
        };
        let (packs_after, temps_after) = data_files(&repo);
        let entry = format!(
            "{stage:?}: {} after {} ms; {} new pack(s), {} temp file(s), {} lock file(s)",
            if status.signal() == Some(9) {
                "killed"
            } else {
                "finished"
            },
            started.elapsed().as_millis(),
            packs_after.difference(&packs_before).count(),
            temps_after,
            visible(file_names(&repo.join("locks"))).len(),
        );
        eprintln!("{entry}");
        log.push(entry);
        if status.signal() == Some(9) {
            kills.push(*stage);
        } else {
            // It won the race: a completed snapshot of the big folder.
            assert_eq!(
                status.code(),
                Some(0),
                "stage {stage:?}: snapshot failed: {}",
                fs::read_to_string(&errlog).unwrap_or_default()
            );
            let last = sv.snapshots().pop().unwrap();
            completed.push((last["id"].as_str().unwrap().to_string(), Expected::Big));
        }

        // After each kill: the structure checks out, every completed snapshot restores.
        let out = sv.run(&["check"]);
        assert_eq!(
            out.code,
            Some(0),
            "check after {stage:?} (log so far: {log:#?}):\n{out}"
        );
        verify_completed(&sv, &completed, &big, tmp.path(), n);

        // Midway, a completed snapshot of a changed small folder joins the earlier ones.
        if n == 2 {
            write_random(&small.join("album/IMG_0003.JPG"), 3, 300_000);
            write_random(&small.join("IMG_0001.JPG"), 4, 120_000);
            let s = sv.snapshot(&[&small], &[]);
            assert_eq!(summary_u64(&s, "files_new"), 1, "{s}");
            assert_eq!(summary_u64(&s, "files_changed"), 1, "{s}");
            completed.push((
                s["id"].as_str().unwrap().to_string(),
                Expected::Small(tree_contents(&small)),
            ));
        }
    }
    assert!(
        kills.len() >= 4,
        "only {} snapshot(s) were actually killed: {log:#?}",
        kills.len()
    );
    // Killed processes leave their lock files behind (at least the one killed right after
    // taking its lock): they are stale because the process is gone.
    let stale = visible(file_names(&repo.join("locks")));
    assert!(
        !stale.is_empty(),
        "expected lock files of killed processes: {log:#?}"
    );

    // A normal snapshot completes despite the stale locks, and every byte verifies.
    let s = sv.snapshot(&[&big], &[]);
    assert_eq!(s["incomplete"], false, "{s}");
    completed.push((s["id"].as_str().unwrap().to_string(), Expected::Big));
    let out = sv.ok(&["check", "--read-data"]);
    assert!(out.both().contains("no errors"), "{out}");
    verify_completed(&sv, &completed, &big, tmp.path(), 99);

    // An exclusive lock (key removal) is not blocked by the dead processes' locks.
    let out = sv.run_env(
        &["key", "add"],
        &[("SNAPVAULT_NEW_PASSWORD", "spare horse")],
    );
    assert_eq!(out.code, Some(0), "{out}");
    let keys = sv.ok(&["key", "list", "--json"]).json();
    let spare = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] == false)
        .expect("the added key")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = sv.run(&["key", "remove", &spare]);
    assert_eq!(
        out.code,
        Some(0),
        "stale locks of dead processes must not block an exclusive lock:\n{out}"
    );

    // unlock removes exactly the stale locks.
    let out = sv.ok(&["unlock"]);
    assert!(
        visible(file_names(&repo.join("locks"))).is_empty(),
        "unlock left locks behind:\n{out}"
    );
    sv.ok(&["check"]);
}

fn verify_completed(
    sv: &Sv,
    completed: &[(String, Expected)],
    big: &Path,
    tmp: &Path,
    round: usize,
) {
    for (i, (id, expected)) in completed.iter().enumerate() {
        let target = tmp.join(format!("restore-{round}-{i}"));
        sv.restore(id, &target);
        match expected {
            Expected::Small(state) => assert_contents(state, &target.join("small")),
            Expected::Big => assert_same_tree(big, &target.join("big")),
        }
        fs::remove_dir_all(&target).unwrap();
    }
}

/// Two snapshots running at the same time (shared locks) both complete, and the repository
/// verifies; content common to both is fine to store twice but must restore from either.
#[test]
fn concurrent_snapshots_both_complete() {
    let tmp = tempdir();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let shared = random_bytes(77, 6 * MIB);
    for dir in [&a, &b] {
        write_file(&dir.join("shared.MOV"), &shared);
    }
    write_random(&a.join("only-a.JPG"), 1, 3 * MIB);
    write_random(&b.join("only-b.JPG"), 2, 3 * MIB);
    let sv = Sv::init(tmp.path().join("repo"), false);
    let spawn = |dir: &Path| {
        let mut c = sv.command(&["snapshot", "--json", dir.to_str().unwrap()]);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c.spawn().expect("spawn snapshot")
    };
    let mut ca = spawn(&a);
    let mut cb = spawn(&b);
    let sa = wait_with_timeout(&mut ca, DEFAULT_TIMEOUT, "snapshot a");
    let sb = wait_with_timeout(&mut cb, DEFAULT_TIMEOUT, "snapshot b");
    assert_eq!((sa.code(), sb.code()), (Some(0), Some(0)));
    assert_eq!(sv.snapshots().len(), 2);
    sv.ok(&["check", "--read-data"]);
    for (dir, name) in [(&a, "a"), (&b, "b")] {
        let snap = sv
            .snapshots()
            .into_iter()
            .find(|s| s["source"]["paths"][0] == dir.to_str().unwrap())
            .unwrap();
        let target = tmp.path().join(format!("r-{name}"));
        sv.restore(snap["id"].as_str().unwrap(), &target);
        assert_same_tree(dir, &target.join(name));
    }
}
