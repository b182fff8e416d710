//! Password files and commands as password managers write them (16.1), write-protected
//! repositories and caches (16.2), and stdout that cannot be written (16.4).

use std::fs::File;
use std::process::Stdio;

use crate::common::*;

/// `pass show` prints the password, then `user: …` lines: only the first line counts, for a
/// file (with Unix or Windows line ends) and for a command alike.
#[test]
fn password_file_and_command_use_the_first_line_only() {
    let tmp = tempdir();
    let repo = tmp.path().join("repo");
    let pwfile = tmp.path().join("pw");
    write_file(&pwfile, b"alpha\nuser: anna\nurl: example.org\n");
    let mut c = base_command();
    c.env("SNAPVAULT_REPOSITORY", &repo)
        .args(["init", "--password-file"])
        .arg(&pwfile);
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");

    let sv = Sv::at(&repo, Some("alpha"));
    sv.ok(&["snapshots"]);

    let crlf = tmp.path().join("pw-crlf");
    write_file(&crlf, b"alpha\r\nuser: anna\r\n");
    let sv_none = Sv::at(&repo, None);
    let out = sv_none.run(&["snapshots", "--password-file", crlf.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "CRLF file:\n{out}");

    let out = sv_none.run(&[
        "snapshots",
        "--password-command",
        "printf 'alpha\\nuser: anna\\n'",
    ]);
    assert_eq!(out.code, Some(0), "pass-show shaped command:\n{out}");

    // An empty first line is an empty password, refused by name.
    let empty = tmp.path().join("pw-empty");
    write_file(&empty, b"\nalpha\n");
    let out = sv_none.run(&["snapshots", "--password-file", empty.to_str().unwrap()]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "empty password");
}

/// A small repository with one snapshot of one folder.
fn repo_with_snapshot(tmp: &std::path::Path) -> (Sv, std::path::PathBuf) {
    let src = tmp.join("photos");
    write_random(&src.join("IMG_0001.JPG"), 1, 20_000);
    write_random(&src.join("IMG_0002.JPG"), 2, 30_000);
    let sv = Sv::init(tmp.join("repo"), true);
    sv.snapshot(&[&src], &[]);
    (sv, src)
}

/// stdout on a full disk: the work is done, the write error is reported by name and the
/// exit code is the documented 13 — not a panic (101).
#[test]
fn stdout_on_a_full_disk_is_reported_with_exit_13() {
    let tmp = tempdir();
    let (sv, src) = repo_with_snapshot(tmp.path());
    for args in [
        vec!["ls", "latest"],
        vec!["snapshots"],
        vec!["snapshot", src.to_str().unwrap()],
        vec!["snapshots", "--json"],
    ] {
        let mut c = sv.command(&args);
        c.stdout(File::create("/dev/full").expect("/dev/full"));
        c.stderr(Stdio::piped());
        let out = c.output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
        assert_eq!(out.status.code(), Some(13), "{args:?}:\n{stderr}");
        assert!(
            stderr.contains("standard output") && stderr.contains("No space left"),
            "{args:?}: the write error should be named:\n{stderr}"
        );
    }
    // The snapshot made with stdout on the full disk was saved.
    assert_eq!(sv.snapshots().len(), 2);
}

/// A pipe whose reader is gone (`| head` that has finished): no panic, no death in the middle
/// of a backup; the snapshot is saved and the exit code is 13.
#[test]
fn closed_stdout_pipe_does_not_kill_a_backup() {
    let tmp = tempdir();
    let (sv, src) = repo_with_snapshot(tmp.path());
    for args in [
        vec!["snapshot", src.to_str().unwrap()],
        vec!["ls", "latest"],
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let mut c = sv.command(&args);
        c.stdout(writer).stderr(Stdio::piped());
        let out = c.output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
        assert_eq!(
            out.status.code(),
            Some(13),
            "{args:?}: {:?}\n{stderr}",
            out.status
        );
    }
    assert_eq!(sv.snapshots().len(), 2);
}
