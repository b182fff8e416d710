//! Every error of the repository core: a clear message, a non-zero exit code, and nothing
//! written to the repository.

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

/// A repository with one small snapshot, and its source folder.
fn repo_with_snapshot(tmp: &Path, encrypted: bool) -> (Sv, std::path::PathBuf) {
    let src = tmp.join("src");
    write_random(&src.join("IMG_0001.JPG"), 1, 20_000);
    write_random(&src.join("sub/IMG_0002.HEIC"), 2, 30_000);
    let sv = Sv::init(tmp.join("repo"), encrypted);
    sv.snapshot(&[&src], &[]);
    (sv, src)
}

#[test]
fn wrong_password_exits_12_and_writes_nothing() {
    let tmp = tempdir();
    let (sv, src) = repo_with_snapshot(tmp.path(), true);
    let before = listing(&sv.repo);
    let wrong = Sv::at(&sv.repo, Some("not the password"));
    let target = tmp.path().join("target");
    for args in [
        vec!["snapshots"],
        vec!["snapshot", src.to_str().unwrap()],
        vec!["restore", "latest", "--target", target.to_str().unwrap()],
        vec!["check"],
        // Packs are listed and hinted while the key is derived: still exit 12, no write.
        vec!["check", "--read-data"],
    ] {
        let out = wrong.run(&args);
        assert_eq!(out.code, Some(12), "{args:?} with a wrong password:\n{out}");
        assert_stderr_mentions(&out, "wrong password");
        assert_unchanged(&before, &sv.repo, "a command with a wrong password");
    }
    assert!(
        !target.exists(),
        "restore with a wrong password created its target"
    );
    // The right password still works.
    assert_eq!(sv.snapshots().len(), 1);
}

#[test]
fn repository_path_that_does_not_exist_exits_10() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    write_random(&src.join("a.jpg"), 1, 100);
    let missing = tmp.path().join("no").join("such-repo");
    let sv = Sv::at(&missing, Some(PASSWORD));
    for args in [
        vec!["snapshots"],
        vec!["snapshot", src.to_str().unwrap()],
        vec!["check"],
        vec!["ls", "latest"],
    ] {
        let out = sv.run(&args);
        assert_eq!(
            out.code,
            Some(10),
            "{args:?} on a missing repository:\n{out}"
        );
        // Its parent is missing too: an unplugged drive, named as such (24.2).
        assert_stderr_mentions(&out, "does not exist — is the drive plugged in?");
        assert_stderr_mentions(&out, &missing.display().to_string());
        assert!(
            !tmp.path().join("no").exists(),
            "{args:?} created something at the missing repository path"
        );
    }
}

#[test]
fn folder_that_is_not_a_repository_exits_10() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    write_random(&src.join("a.jpg"), 1, 100);
    let folder = tmp.path().join("just-a-folder");
    write_random(&folder.join("notes.txt"), 2, 100);
    fs::create_dir_all(folder.join("data")).unwrap();
    let before = listing(&folder);
    let sv = Sv::at(&folder, Some(PASSWORD));
    for args in [
        vec!["snapshots"],
        vec!["snapshot", src.to_str().unwrap()],
        vec!["check", "--read-data"],
    ] {
        let out = sv.run(&args);
        assert_eq!(out.code, Some(10), "{args:?} on a plain folder:\n{out}");
        assert_stderr_mentions(&out, "there is no repository at");
        assert_unchanged(
            &before,
            &folder,
            "a command on a folder that is not a repository",
        );
    }
}

#[test]
fn second_init_is_refused() {
    let tmp = tempdir();
    let (sv, _) = repo_with_snapshot(tmp.path(), true);
    let before = listing(&sv.repo);
    for (args, pw) in [
        (vec!["init"], "another password"),
        (vec!["init"], PASSWORD),
        (vec!["init", "--insecure-no-encryption"], PASSWORD),
    ] {
        let out = Sv::at(&sv.repo, Some(pw)).run(&args);
        assert_failed(&out);
        assert_stderr_mentions(&out, "already exists");
        assert_unchanged(&before, &sv.repo, "a second init");
    }
    // The repository still opens with its password, and only with it.
    assert_eq!(sv.snapshots().len(), 1);
    let out = Sv::at(&sv.repo, Some("another password")).run(&["snapshots"]);
    assert_eq!(out.code, Some(12), "{out}");
}

fn ids(sv: &Sv) -> Vec<String> {
    sv.snapshots()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn snapshot_prefix_matching_nothing_is_an_error() {
    let tmp = tempdir();
    let (sv, _) = repo_with_snapshot(tmp.path(), false);
    let id = ids(&sv).remove(0);
    let unused = "0123456789abcdef"
        .chars()
        .find(|c| !id.starts_with(*c))
        .unwrap();
    let prefix = format!("{unused}{}", &id[1..6]);
    let before = listing(&sv.repo);
    let target = tmp.path().join("target");
    for args in [
        vec![
            "restore",
            prefix.as_str(),
            "--target",
            target.to_str().unwrap(),
        ],
        vec!["ls", prefix.as_str()],
        vec!["ls", "not-hex"],
    ] {
        let out = sv.run(&args);
        assert_failed(&out);
        assert_stderr_mentions(&out, "no snapshot matches");
        assert_stderr_mentions(&out, args[1]);
        assert_unchanged(&before, &sv.repo, "a command with an unknown snapshot");
    }
    assert!(
        !target.exists(),
        "restore of an unknown snapshot created its target"
    );
}

#[test]
fn latest_in_an_empty_repository_is_an_error() {
    let tmp = tempdir();
    let sv = Sv::init(tmp.path().join("repo"), false);
    let out = sv.run(&["ls", "latest"]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "no snapshot matches");
}

#[test]
fn ambiguous_snapshot_prefix_is_an_error() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    write_random(&src.join("a.jpg"), 1, 1000);
    let sv = Sv::init(tmp.path().join("repo"), false);
    // Snapshot until two ids share their first hex digit (at most 17 by pigeonhole).
    let shared = (0..17)
        .find_map(|_| {
            sv.snapshot(&[&src], &[]);
            let ids = ids(&sv);
            "0123456789abcdef"
                .chars()
                .find(|c| ids.iter().filter(|i| i.starts_with(*c)).count() >= 2)
        })
        .expect("17 snapshots must share a first hex digit");
    let prefix = shared.to_string();
    let before = listing(&sv.repo);
    let target = tmp.path().join("target");
    for args in [
        vec![
            "restore",
            prefix.as_str(),
            "--target",
            target.to_str().unwrap(),
        ],
        vec!["ls", prefix.as_str()],
    ] {
        let out = sv.run(&args);
        assert_failed(&out);
        assert_stderr_mentions(&out, "ambiguous");
        assert_stderr_mentions(&out, &format!("{prefix:?}"));
        assert_unchanged(
            &before,
            &sv.repo,
            "a command with an ambiguous snapshot prefix",
        );
    }
    assert!(
        !target.exists(),
        "restore of an ambiguous snapshot created its target"
    );
    // Upper case works like lower case, and a longer unique prefix resolves.
    let one = ids(&sv)
        .into_iter()
        .find(|i| i.starts_with(shared))
        .unwrap();
    let out = sv.ok(&["ls", &one[..12].to_ascii_uppercase(), "--json"]);
    assert!(out.stdout.contains("src/a.jpg"), "{out}");
}

#[test]
fn restore_target_that_is_a_file_is_refused() {
    let tmp = tempdir();
    let (sv, _) = repo_with_snapshot(tmp.path(), false);
    let target = tmp.path().join("target-file");
    write_file(&target, b"precious");
    let before = listing(&sv.repo);
    let out = sv.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "not a folder");
    assert_stderr_mentions(&out, &target.display().to_string());
    assert_eq!(fs::read(&target).unwrap(), b"precious");
    assert_unchanged(&before, &sv.repo, "a refused restore");
    // A symlink to a file is not a folder either.
    let link = tmp.path().join("link-to-file");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = sv.run(&["restore", "latest", "--target", link.to_str().unwrap()]);
    assert_failed(&out);
    assert_eq!(fs::read(&target).unwrap(), b"precious");
}

#[test]
fn source_path_that_does_not_exist_is_an_error() {
    let tmp = tempdir();
    let (sv, src) = repo_with_snapshot(tmp.path(), false);
    let missing = tmp.path().join("no-such-folder");
    let before = listing(&sv.repo);
    for args in [
        vec!["snapshot", missing.to_str().unwrap()],
        // One good path and one missing: still nothing is written.
        vec!["snapshot", src.to_str().unwrap(), missing.to_str().unwrap()],
    ] {
        let out = sv.run(&args);
        assert_failed(&out);
        assert_stderr_mentions(&out, "does not exist");
        assert_stderr_mentions(&out, &missing.display().to_string());
        assert_unchanged(&before, &sv.repo, "a snapshot of a missing path");
    }
    assert_eq!(sv.snapshots().len(), 1);
}

#[test]
fn newer_format_version_is_refused_with_the_version() {
    let tmp = tempdir();
    let (sv, src) = repo_with_snapshot(tmp.path(), true);
    let cfg_path = sv.repo.join("config");
    let mut cfg: Value = serde_json::from_slice(&fs::read(&cfg_path).unwrap()).unwrap();
    assert_eq!(cfg["version"], 1, "config: {cfg}");
    cfg["version"] = Value::from(99);
    fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    let before = listing(&sv.repo);
    let target = tmp.path().join("t");
    let no_password = Sv::at(&sv.repo, None);
    for (who, args) in [
        (&sv, vec!["snapshots"]),
        (&sv, vec!["snapshot", src.to_str().unwrap()]),
        (
            &sv,
            vec!["restore", "latest", "--target", target.to_str().unwrap()],
        ),
        (&sv, vec!["check", "--read-data"]),
        // The version is known before any password is asked for.
        (&no_password, vec!["snapshots"]),
    ] {
        let out = who.run(&args);
        assert_failed(&out);
        assert_stderr_mentions(&out, "version 99");
        assert_stderr_mentions(&out, "upgrade");
        assert_unchanged(&before, &sv.repo, "a command on a newer repository");
    }
    assert!(!target.exists());
}

#[test]
fn no_password_and_no_terminal_is_an_error_not_a_hang() {
    let tmp = tempdir();
    let (sv, src) = repo_with_snapshot(tmp.path(), true);
    let before = listing(&sv.repo);
    let no_password = Sv::at(&sv.repo, None);
    for args in [vec!["snapshots"], vec!["snapshot", src.to_str().unwrap()]] {
        // stdin is /dev/null (see base_command); 20 s guard against a prompt that waits.
        let out = run_command(no_password.command(&args), Duration::from_secs(20));
        assert_failed(&out);
        assert_stderr_mentions(&out, "no password");
        assert_stderr_mentions(&out, "SNAPVAULT_PASSWORD");
        assert_unchanged(&before, &sv.repo, "a command without a password");
    }
    // init of a new encrypted repository without a password: error, nothing created.
    let new_repo = tmp.path().join("new-repo");
    let out = run_command(
        Sv::at(&new_repo, None).command(&["init"]),
        Duration::from_secs(20),
    );
    assert_failed(&out);
    assert_stderr_mentions(&out, "no password");
    assert!(
        !new_repo.exists(),
        "init without a password created {}",
        new_repo.display()
    );
}

#[test]
fn empty_password_is_refused() {
    let tmp = tempdir();
    let repo = tmp.path().join("repo");
    let out = Sv::at(&repo, Some("")).run(&["init"]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "empty password");
    assert!(!repo.join("config").exists());
}
