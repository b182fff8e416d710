//! Crashes (SIGKILL at write points, after removals) and the exclusive lock the parity
//! update and `repair --apply`'s write-backs hold.

use super::*;

/// Killed (SIGKILL) at each write point of a snapshot — a pack, the index, the manifest, or
/// one of its parity files half written — the repository's parity is the old or the new,
/// never a wrong one: every parity file in force reads and matches the files it names, and
/// the next snapshot covers what the killed one left uncovered.
#[test]
fn a_kill_at_any_write_point_leaves_old_or_new_parity_never_a_wrong_one() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let sv = init_with_parity(&tmp.path().join("repo"), "10");
    sv.snapshot(&[&src], &[]);
    let points = [
        "write-pack@1",
        "write-index@1",
        "write-snapshot@1",
        "write-parity@1",
        "write-parity@2",
    ];
    for (n, point) in points.iter().enumerate() {
        write_random(
            &src.join(format!("DCIM/NEW_{n}.HEIC")),
            100 + n as u64,
            300_000,
        );
        kill_at(&sv, &["snapshot", src.to_str().unwrap()], point, tmp.path());

        clean_after_kill(&sv, point, &src, 10);
    }
    let back = tmp.path().join("back");
    assert_eq!(sv.restore("latest", &back).code, Some(0));
    assert_same_tree(&src, &back.join("src"));
}

/// While a command brings parity up to date it holds the exclusive lock: a prune (or any
/// other command that removes files) cannot run in between and remove a file the new
/// parity is being computed over.
#[test]
fn the_parity_update_holds_the_exclusive_lock() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let sv = init_with_parity(&tmp.path().join("repo"), "10");
    let gate = tmp.path().join("gate");
    std::fs::create_dir_all(&gate).unwrap();
    let mut c = sv.command(&["snapshot", src.to_str().unwrap()]);
    c.env("SNAPVAULT_TEST_PAUSE", "parity-locked@1")
        .env("SNAPVAULT_TEST_PAUSE_DIR", &gate)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let deadline = std::time::Instant::now() + DEFAULT_TIMEOUT;
    while !gate.join("parity-locked@1.paused").exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "snapshot ended without taking the lock for its parity update"
        );
        assert!(std::time::Instant::now() < deadline, "never paused");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    for args in [&["prune"][..], &["forget", "--keep-last", "1"][..]] {
        let out = sv.run(args);
        assert_eq!(
            out.code,
            Some(11),
            "{args:?} while parity is updated: {out}"
        );
    }
    std::fs::write(gate.join("parity-locked@1.go"), b"").unwrap();
    let st = wait_with_timeout(&mut child, DEFAULT_TIMEOUT, "snapshot");
    assert!(st.success());
    assert_covered(&sv.repo, 10);
}

/// Killed between removing files and updating parity (or while writing parity), a later
/// `repair --apply` never brings back what was removed on purpose — a removed key file
/// (a password that must stop working), a forgotten snapshot, a pruned pack or index
/// file — and the repository checks clean.
#[test]
fn a_crash_after_a_removal_never_lets_repair_bring_the_file_back() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let cases: [(&str, &[&str]); 5] = [
        ("write-parity@1", &["key", "remove"]),
        ("parity-locked@1", &["key", "remove"]),
        (
            "write-parity@1",
            &[
                "forget",
                "--keep-last",
                "1",
                "--prune",
                "--allow-photo-loss",
            ],
        ),
        (
            "write-parity@3",
            &[
                "forget",
                "--keep-last",
                "1",
                "--prune",
                "--allow-photo-loss",
            ],
        ),
        (
            "parity-locked@1",
            &[
                "forget",
                "--keep-last",
                "1",
                "--prune",
                "--allow-photo-loss",
            ],
        ),
    ];
    for (n, (point, args)) in cases.iter().enumerate() {
        let work = tmp.path().join(format!("case-{n}"));
        std::fs::create_dir_all(&work).unwrap();
        let sv = init_with_parity(&work.join("repo"), "10");
        add_key(&sv);
        sv.snapshot(&[&src], &[]);
        write_random(
            &src.join(format!("DCIM/GONE_{n}.HEIC")),
            50 + n as u64,
            200_000,
        );
        sv.snapshot(&[&src], &[]);
        std::fs::remove_file(src.join(format!("DCIM/GONE_{n}.HEIC"))).unwrap();
        sv.snapshot(&[&src], &[]);
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if args[0] == "key" {
            let first = first_key(&sv.repo);
            let other = names_in(&sv.repo, "keys").into_iter().find(|k| *k != first);
            args.push(other.unwrap());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let all = |dir: &str| -> HashSet<String> { names_in(&sv.repo, dir).into_iter().collect() };
        let dirs = ["keys", "snapshots", "index"];
        let before: Vec<HashSet<String>> = dirs.iter().map(|d| all(d)).collect();
        let packs_before: HashSet<String> = pack_files(&sv.repo).into_iter().map(|p| p.0).collect();
        kill_if_reached(&sv, &args, point, &work);
        let after: Vec<HashSet<String>> = dirs.iter().map(|d| all(d)).collect();
        let packs_after: HashSet<String> = pack_files(&sv.repo).into_iter().map(|p| p.0).collect();

        let out = sv.ok(&["repair", "--apply"]);
        let what = format!("{args:?} killed at {point}");
        for (i, d) in dirs.iter().enumerate() {
            let removed: Vec<_> = before[i].difference(&after[i]).collect();
            for r in removed {
                assert!(
                    !all(d).contains(r),
                    "{what}: repair brought {d}/{r} back\n{out}"
                );
            }
        }
        for p in packs_before.difference(&packs_after) {
            assert!(
                !pack_files(&sv.repo).iter().any(|(q, _)| q == p),
                "{what}: repair brought pack {p} back\n{out}"
            );
        }
        let (code, v) = check_json(&sv);
        assert_eq!(code, Some(0), "{what}: {v}");
        sv.snapshot(&[&src], &[]);
        assert_covered(&sv.repo, 10);
    }
}

/// `repair --apply` writes what parity rebuilds holding the exclusive lock: when it holds
/// the lock, the lost pack is not back yet.
#[test]
fn repair_writes_back_from_parity_under_the_lock() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let sv = init_with_parity(&tmp.path().join("repo"), "10");
    sv.snapshot(&[&src], &[]);
    let (pack, path) = pack_files(&sv.repo)
        .into_iter()
        .max_by_key(|(_, p)| std::fs::metadata(p).unwrap().len())
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    let gate = tmp.path().join("gate");
    std::fs::create_dir_all(&gate).unwrap();
    let mut c = sv.command(&["repair", "--apply"]);
    c.env("SNAPVAULT_TEST_PAUSE", "locked@1")
        .env("SNAPVAULT_TEST_PAUSE_DIR", &gate)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let deadline = std::time::Instant::now() + DEFAULT_TIMEOUT;
    while !gate.join("locked@1.paused").exists() {
        assert!(child.try_wait().unwrap().is_none(), "repair never locked");
        assert!(std::time::Instant::now() < deadline, "never paused");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(
        !path.exists(),
        "pack {pack} written back before the lock was taken"
    );
    std::fs::write(gate.join("locked@1.go"), b"").unwrap();
    assert!(wait_with_timeout(&mut child, DEFAULT_TIMEOUT, "repair").success());
    assert!(path.exists(), "pack {pack} not rebuilt");
    sv.ok(&["check", "--read-data"]);
}

/// The test builds' fault injector changes nothing while it does not fire: `forget
/// --prune` opened through it still brings parity up to date afterwards (the pruned packs
/// leave their groups and go, the new index file is covered), so the kill tests reach the
/// write points of that update too. Before, `prune`/`forget` opened the repository through
/// the injector without telling the parity update, which then skipped itself as if the
/// command had never opened the repository.
#[test]
fn forget_prune_under_a_fault_that_never_fires_still_updates_parity() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let sv = init_with_parity(&tmp.path().join("repo"), "10");
    sv.snapshot(&[&src], &[]);
    write_random(&src.join("DCIM/GONE.HEIC"), 60, 300_000);
    sv.snapshot(&[&src], &[]);
    std::fs::remove_file(src.join("DCIM/GONE.HEIC")).unwrap();
    sv.snapshot(&[&src], &[]);
    let packs = pack_files(&sv.repo).len();
    let out = sv.run_env(
        &[
            "forget",
            "--keep-last",
            "1",
            "--prune",
            "--max-unused",
            "0",
            "--allow-photo-loss",
        ],
        &[("SNAPVAULT_TEST_FAULT", "write+remove@1000000:kill")],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_covered(&sv.repo, 10);
    assert!(pack_files(&sv.repo).len() < packs, "no pack removed: {out}");
    let (code, v) = check_json(&sv);
    assert_eq!(code, Some(0), "{v}");
}

/// A snapshot whose packs make one full group and a short tail (three packs at 50 %, *K* =
/// 2: two data packs of 28 MiB of clips, then the tree pack) writes one parity file for
/// them, the tail joined to the full group (format.md §15.5: coded in the other half of
/// the slots, so no pack is coded twice). Killed as it writes that file, or right after,
/// the parity in force is the old or the new, never a wrong one; the next snapshot covers
/// the rest.
#[test]
fn a_kill_around_a_short_tail_joining_its_full_group_leaves_old_or_new_parity() {
    for (n, point) in ["write-parity@1", "parity-spooled@1"].iter().enumerate() {
        let tmp = tempdir();
        let src = tmp.path().join("src");
        for i in 0..2 {
            write_random(
                &src.join(format!("DCIM/CLIP_{i:04}.MOV")),
                300 + i + 10 * n as u64,
                14 << 20,
            );
        }
        let sv = init_with_parity(&tmp.path().join("repo"), "50");
        let killed = kill_if_reached(&sv, &["snapshot", src.to_str().unwrap()], point, tmp.path());
        assert!(killed, "the snapshot never reached {point}");
        let packs = |l: &Loaded| {
            l.header
                .members
                .iter()
                .filter(|m| m.kind == MemberKind::Pack)
                .count()
        };
        let pack_groups: Vec<usize> = live_groups(&sv.repo)
            .iter()
            .map(packs)
            .filter(|&p| p > 0)
            .collect();
        let want: Vec<usize> = if n == 0 { vec![] } else { vec![3] };
        assert_eq!(pack_groups, want, "killed at {point}: pack groups in force");

        clean_after_kill(&sv, point, &src, 50);
        let back = tmp.path().join("back");
        assert_eq!(sv.restore("latest", &back).code, Some(0));
        assert_same_tree(&src, &back.join("src"));
    }
}

/// The last group's parity file is written as soon as the snapshot's packs are all durable,
/// beside its index and snapshot files (format.md §15.5), not after them: with the index
/// write held, the file is in force already. Killed there — every pack covered, none named
/// by an index — check finds nothing wrong, the next snapshot covers the rest and a prune
/// removes the unindexed packs and their group (never "repairing" them back).
#[test]
fn the_last_groups_parity_is_written_beside_the_index_and_a_kill_there_is_clean() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    for i in 0..2 {
        write_random(
            &src.join(format!("DCIM/CLIP_{i:04}.MOV")),
            400 + i,
            14 << 20,
        );
    }
    let sv = init_with_parity(&tmp.path().join("repo"), "50");
    let gate = tmp.path().join("gate");
    std::fs::create_dir_all(&gate).unwrap();
    let mut c = sv.command(&["snapshot", src.to_str().unwrap()]);
    c.env("SNAPVAULT_TEST_PAUSE", "write-index@1,parity-spooled@1")
        .env("SNAPVAULT_TEST_PAUSE_DIR", &gate)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let deadline = std::time::Instant::now() + DEFAULT_TIMEOUT;
    let both = ["write-index@1.paused", "parity-spooled@1.paused"];
    while !both.iter().all(|p| gate.join(p).exists()) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the snapshot ended before its index and last parity file were both under way"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "never paused at both: {:?}",
            both.map(|p| gate.join(p).exists())
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        names_in(&sv.repo, "index").is_empty(),
        "no index file may be complete yet"
    );
    let packs = |l: &Loaded| {
        l.header
            .members
            .iter()
            .filter(|m| m.kind == MemberKind::Pack)
            .count()
    };
    let groups: Vec<usize> = live_groups(&sv.repo)
        .iter()
        .map(packs)
        .filter(|&p| p > 0)
        .collect();
    assert_eq!(
        groups,
        vec![3],
        "the joined group of all three packs is in force"
    );

    clean_after_kill(&sv, "write-index@1 and parity-spooled@1", &src, 50);
    sv.ok(&["prune"]);
    let (code, v) = check_json(&sv);
    assert_eq!(code, Some(0), "after prune: {v}");
    assert_covered(&sv.repo, 50);
    let back = tmp.path().join("back");
    assert_eq!(sv.restore("latest", &back).code, Some(0));
    assert_same_tree(&src, &back.join("src"));
}

/// After a kill at `point`: check finds nothing lost or repairable and no parity file
/// unreadable or damaged, and a next snapshot of `src` leaves `percent` % parity covering
/// the repository.
fn clean_after_kill(sv: &Sv, point: &str, src: &Path, percent: u8) {
    let (_, v) = check_json(sv);
    assert!(names(&v, "lost").is_empty(), "killed at {point}: {v}");
    assert!(names(&v, "repairable").is_empty(), "killed at {point}: {v}");
    assert_eq!(
        v["parity"]["parity_files_unreadable"],
        serde_json::json!([]),
        "{v}"
    );
    assert_eq!(
        v["parity"]["parity_files_damaged"],
        serde_json::json!([]),
        "{v}"
    );
    sv.snapshot(&[src], &[]);
    assert_covered(&sv.repo, percent);
}
