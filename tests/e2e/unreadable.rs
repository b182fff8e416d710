//! A file or folder that cannot be read is reported, left out, and the snapshot is saved
//! but marked incomplete (exit code 3).
//!
//! Root reads everything, so when the tests run as root the snapshot is run as the
//! unprivileged user `nobody` (uid 65534) instead; if that is not possible the test is
//! skipped with a note.

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::common::*;

pub(crate) const NOBODY: u32 = 65534;

/// Can we run the binary as `nobody`? (Only when we are root.)
pub(crate) fn can_run_as_nobody() -> bool {
    let mut c = base_command();
    c.arg("--version").uid(NOBODY).gid(NOBODY);
    matches!(run_command(c, DEFAULT_TIMEOUT).code, Some(0))
}

#[test]
fn unreadable_file_makes_the_snapshot_incomplete_and_is_named() {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    write_random(&src.join("IMG_0001.JPG"), 1, 10_000);
    write_random(&src.join("IMG_0002_secret.JPG"), 2, 10_000);
    write_random(&src.join("locked_album/IMG_0003.JPG"), 3, 10_000);
    write_random(&src.join("open_album/IMG_0004.JPG"), 4, 10_000);
    let secret = src.join("IMG_0002_secret.JPG");
    let locked = src.join("locked_album");
    set_mode(&secret, 0o000);
    set_mode(&locked, 0o000);

    let as_nobody = if fs::read(&secret).is_ok() {
        // We are root (or otherwise privileged): try the unprivileged user.
        if !can_run_as_nobody() {
            eprintln!("skipped: running privileged and cannot switch to uid {NOBODY}");
            set_mode(&locked, 0o755);
            return;
        }
        // nobody must be able to reach the source and write the repository.
        set_mode(tmp.path(), 0o777);
        true
    } else {
        false
    };
    let with_user = |mut c: Command| -> Command {
        if as_nobody {
            c.uid(NOBODY).gid(NOBODY);
            c.env("HOME", tmp.path());
        }
        c
    };
    let sv = Sv::at(tmp.path().join("repo"), None);
    let out = run_command(
        with_user(sv.command(&["init", "--insecure-no-encryption"])),
        DEFAULT_TIMEOUT,
    );
    assert_eq!(out.code, Some(0), "{out}");

    let out = run_command(
        with_user(sv.command(&["snapshot", "--json", src.to_str().unwrap()])),
        DEFAULT_TIMEOUT,
    );
    assert_eq!(out.code, Some(3), "exit code 3 means incomplete:\n{out}");
    assert_stderr_mentions(&out, "IMG_0002_secret.JPG");
    assert_stderr_mentions(&out, "locked_album");
    let v = out.json();
    assert_eq!(v["incomplete"], true, "{v}");
    assert!(v["summary"]["errors"].as_u64().unwrap() >= 2, "{v}");

    // The snapshot was saved with everything else in it.
    let out = run_command(
        with_user(sv.command(&["ls", "latest", "--json"])),
        DEFAULT_TIMEOUT,
    );
    assert_eq!(out.code, Some(0), "{out}");
    let paths: Vec<String> = out
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert!(
        paths.contains(&"photos/IMG_0001.JPG".to_string()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"photos/open_album/IMG_0004.JPG".to_string()),
        "{paths:?}"
    );
    assert!(
        !paths.contains(&"photos/IMG_0002_secret.JPG".to_string()),
        "{paths:?}"
    );
    let out = run_command(
        with_user(sv.command(&["snapshots", "--json"])),
        DEFAULT_TIMEOUT,
    );
    assert_eq!(out.json()[0]["incomplete"], true, "{out}");
    let out = run_command(with_user(sv.command(&["snapshots"])), DEFAULT_TIMEOUT);
    assert!(out.stdout.contains("incomplete"), "{out}");

    // Once readable again, the next snapshot is complete and picks the files up.
    set_mode(&secret, 0o644);
    set_mode(&locked, 0o755);
    let out = run_command(
        with_user(sv.command(&["snapshot", "--json", src.to_str().unwrap()])),
        DEFAULT_TIMEOUT,
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.json()["incomplete"], false);
    let target = tmp.path().join("r");
    let out = run_command(
        with_user(sv.command(&["restore", "latest", "--target", target.to_str().unwrap()])),
        DEFAULT_TIMEOUT,
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_contents(&tree_contents(&src), &target.join("photos"));
}

#[test]
fn a_fifo_in_the_source_does_not_hang_the_snapshot() {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    write_random(&src.join("IMG_0001.JPG"), 1, 10_000);
    let fifo = src.join("a-fifo");
    let st = Command::new("mkfifo").arg(&fifo).status();
    if !matches!(st, Ok(s) if s.success()) {
        eprintln!("skipped: mkfifo is not available");
        return;
    }
    let sv = Sv::init(tmp.path().join("repo"), false);
    let out = run_command(
        sv.command(&["snapshot", "--json", src.to_str().unwrap()]),
        std::time::Duration::from_secs(30),
    );
    assert!(matches!(out.code, Some(0) | Some(3)), "{out}");
    let target = tmp.path().join("r");
    sv.restore("latest", &target);
    assert!(target.join("photos/IMG_0001.JPG").is_file());
}
