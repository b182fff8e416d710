//! Snapshot summaries and sources as real machines hand them over (issue 16, items 8 and
//! 9): a source given as a symlink, `dir` vs `dir/`, `snapshot ..`, folder counts, the
//! `interrupted` key of `--json`, `init` in a non-empty folder, a repository inside the
//! folder being backed up.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use crate::common::*;

/// Three photos in `dir`, one in each of two subfolders.
fn photos(dir: &Path) {
    write_random(&dir.join("IMG_0001.JPG"), 1, 40_000);
    write_random(&dir.join("2023/IMG_0002.JPG"), 2, 50_000);
    write_random(&dir.join("2024/IMG_0003.JPG"), 3, 60_000);
}

fn ls_latest(sv: &Sv) -> String {
    sv.ok(&["ls", "latest"]).stdout
}

#[test]
fn a_source_given_as_a_symlink_to_a_folder_is_followed() {
    let tmp = tempdir();
    let real = tmp.path().join("real");
    photos(&real);
    let link = tmp.path().join("Pictures");
    symlink(&real, &link).unwrap();
    let sv = Sv::init(tmp.path().join("repo"), false);
    let v = sv.snapshot(&[&link], &[]);
    assert_eq!(summary_u64(&v, "files_total"), 3, "{v}");
    let target = tmp.path().join("restored");
    sv.restore("latest", &target);
    assert_same_tree(&real, &target.join("Pictures"));

    // A link to nothing is refused, naming both.
    let dangling = tmp.path().join("gone");
    symlink(tmp.path().join("nowhere"), &dangling).unwrap();
    let out = sv.run(&["snapshot", dangling.to_str().unwrap()]);
    assert_failed(&out);
    assert!(
        out.stderr.contains("is a symlink to") && out.stderr.contains("nowhere"),
        "{out}"
    );
    assert_eq!(sv.snapshots().len(), 1);
}

#[test]
fn dir_and_dir_slash_are_one_source() {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    photos(&src);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    let slash = format!("{}/", src.display());
    let v = sv.snapshot(&[Path::new(&slash)], &[]);
    assert_eq!(summary_u64(&v, "files_unchanged"), 3, "{v}");
    let dot = format!("{}/.", src.display());
    let v = sv.snapshot(&[Path::new(&dot)], &[]);
    assert_eq!(summary_u64(&v, "files_unchanged"), 3, "{v}");
    let snaps = sv.snapshots();
    assert_eq!(snaps[0]["source"], snaps[2]["source"], "{snaps:?}");
}

#[test]
fn snapshot_dot_dot_is_named_after_the_real_folder_and_folders_exclude_the_root() {
    let tmp = tempdir();
    let src = tmp.path().join("Holiday");
    photos(&src);
    let sv = Sv::init(tmp.path().join("repo"), false);
    let mut cmd = sv.command(&["snapshot", "--json", ".."]);
    cmd.current_dir(src.join("2023"));
    let out = run_command(cmd, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
    let v = out.json();
    // Two folders below the one backed up; the root is not one of them.
    assert_eq!(summary_u64(&v, "dirs"), 2, "{v}");
    assert!(v["summary"]["interrupted"].is_null(), "{v}");
    assert!(
        v["summary"]
            .as_object()
            .unwrap()
            .contains_key("interrupted"),
        "`interrupted` must be present (null), as docs/json.md says: {v}"
    );
    let ls = ls_latest(&sv);
    assert!(ls.contains("Holiday/2023/IMG_0002.JPG"), "{ls}");
    assert!(!ls.contains("root"), "{ls}");
}

#[test]
fn init_refuses_a_folder_that_is_not_empty() {
    let tmp = tempdir();
    let dir = tmp.path().join("drive");
    write_random(&dir.join("holiday.mov"), 9, 1000);
    let before = listing(&dir);
    let out = Sv::at(&dir, None).run(&["init", "--insecure-no-encryption"]);
    assert_failed(&out);
    assert!(
        out.stderr.contains("not empty") && out.stderr.contains("holiday.mov"),
        "{out}"
    );
    assert_unchanged(&before, &dir, "a refused init");
    // An empty folder is fine.
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    Sv::at(&empty, None).ok(&["init", "--insecure-no-encryption"]);
}

#[test]
fn a_repository_inside_the_source_is_left_out_and_the_user_is_told() {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    photos(&src);
    let sv = Sv::init(src.join("backup"), false);
    let out = sv.run(&["snapshot", "--json", src.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    let v = out.json();
    assert_eq!(summary_u64(&v, "files_total"), 3, "{v}");
    let out = sv.ok(&["snapshot", src.to_str().unwrap()]);
    assert!(
        out.stderr.contains("repository is inside the source") && out.stderr.contains("left out"),
        "{out}"
    );
    assert!(out.stdout.contains("3 unchanged"), "{out}");
    assert!(!ls_latest(&sv).contains("backup"));

    // The repository as the source itself is an error.
    let out = sv.run(&["snapshot", sv.repo.to_str().unwrap()]);
    assert_failed(&out);
    assert!(out.stderr.contains("is itself one of the folders"), "{out}");
}

/// Root from cron, a service or `sudo -i` runs without `USER` and `LOGNAME`: the snapshot
/// (and a lock it holds: "in use by … by unknown", a key it adds) named its user
/// "unknown". The user is named from the process's uid now, as `id -un` names it.
#[test]
fn a_run_without_user_in_the_environment_names_the_user_from_the_uid() {
    let tmp = tempdir();
    let sv = Sv::init(tmp.path().join("repo"), false);
    let lib = tmp.path().join("lib");
    photos(&lib);
    let mut cmd = sv.command(&["snapshot", lib.to_str().unwrap()]);
    cmd.env_remove("USER").env_remove("LOGNAME");
    let out = run_command(cmd, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
    let id = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let want = String::from_utf8_lossy(&id.stdout).trim().to_string();
    let snaps = sv.snapshots();
    assert_eq!(
        snaps[0]["username"].as_str(),
        Some(want.as_str()),
        "{snaps:?}"
    );
}
