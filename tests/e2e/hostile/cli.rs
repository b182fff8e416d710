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
    write_file(
        &pwfile,
        b"alpha-bravo-charlie\nuser: anna\nurl: example.org\n",
    );
    let mut c = base_command();
    c.env("SNAPVAULT_REPOSITORY", &repo)
        .args(["init", "--password-file"])
        .arg(&pwfile);
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");

    let sv = Sv::at(&repo, Some("alpha-bravo-charlie"));
    sv.ok(&["snapshots"]);

    let crlf = tmp.path().join("pw-crlf");
    write_file(&crlf, b"alpha-bravo-charlie\r\nuser: anna\r\n");
    let sv_none = Sv::at(&repo, None);
    let out = sv_none.run(&["snapshots", "--password-file", crlf.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "CRLF file:\n{out}");

    let out = sv_none.run(&[
        "snapshots",
        "--password-command",
        "printf 'alpha-bravo-charlie\\nuser: anna\\n'",
    ]);
    assert_eq!(out.code, Some(0), "pass-show shaped command:\n{out}");

    // An empty first line is an empty password, refused by name.
    let empty = tmp.path().join("pw-empty");
    write_file(&empty, b"\nalpha-bravo-charlie\n");
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

/// A read-only view of a folder, as a write-protected drive gives: a read-only bind mount
/// when the tests may mount (root), else `chmod -R a-w` (honoured by non-root users only).
/// `None` when neither refuses writes (root without the right to mount): then the test
/// says so and checks nothing, because root ignores permission bits.
struct ReadOnly {
    path: std::path::PathBuf,
    mounted: bool,
    chmodded: Option<std::path::PathBuf>,
}

impl ReadOnly {
    fn of(dir: &std::path::Path, at: &std::path::Path) -> Option<ReadOnly> {
        std::fs::create_dir_all(at).unwrap();
        let sh = |cmd: &str| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let (d, a) = (dir.display(), at.display());
        let ro = if sh(&format!("mount --bind '{d}' '{a}'")) {
            if sh(&format!("mount -o remount,ro,bind '{a}'")) {
                ReadOnly {
                    path: at.to_path_buf(),
                    mounted: true,
                    chmodded: None,
                }
            } else {
                sh(&format!("umount '{a}'"));
                return None;
            }
        } else {
            sh(&format!("chmod -R a-w '{d}'"));
            ReadOnly {
                path: dir.to_path_buf(),
                mounted: false,
                chmodded: Some(dir.to_path_buf()),
            }
        };
        // Does it really refuse writes?
        if std::fs::write(ro.path.join(".probe"), b"x").is_ok() {
            let _ = std::fs::remove_file(ro.path.join(".probe"));
            return None;
        }
        Some(ro)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.mounted {
            let _ = std::process::Command::new("umount")
                .arg(&self.path)
                .status();
        }
        if let Some(d) = &self.chmodded {
            let _ = std::process::Command::new("chmod")
                .args(["-R", "u+w"])
                .arg(d)
                .status();
        }
    }
}

/// A write-protected repository still serves every command that only reads (16.2): no lock
/// is written (said once), and a cache folder that cannot be written or created means
/// running without the cache.
#[test]
fn a_read_only_repository_serves_every_reading_command() {
    use snapvault_fakephone::{FakePhone, FakePhoneConfig};
    let tmp = tempdir();
    let lib = tmp.path().join("phone");
    std::fs::create_dir_all(&lib).unwrap();
    snapvault_media::sample::library(&lib, 6, 16).expect("sample library");
    let phone = FakePhone::start(FakePhoneConfig::new(&lib)).expect("fake iPhone");
    let writable = Sv::init(tmp.path().join("repo"), true);
    let mut c = writable.command(&["snapshot", "iphone"]);
    c.env("USBMUXD_SOCKET_ADDRESS", phone.usbmuxd_address());
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
    writable.snapshot(&[&lib], &[]);

    let Some(repo) = ReadOnly::of(&writable.repo, &tmp.path().join("ro-repo")) else {
        eprintln!("skipped: cannot make a read-only folder here (root without mount rights)");
        return;
    };
    let empty = tmp.path().join("cache-ro");
    std::fs::create_dir_all(&empty).unwrap();
    let Some(cache) = ReadOnly::of(&empty, &tmp.path().join("cache-ro-view")) else {
        eprintln!("skipped: cannot make a read-only folder here (root without mount rights)");
        return;
    };
    let sv = Sv::at(&repo.path, Some(PASSWORD));
    let target = tmp.path().join("restored");
    let caches = [
        // A fresh cache, a cache folder that cannot be created, one that cannot be written.
        tmp.path().join("cache-fresh"),
        cache.path.join("missing"),
        cache.path.clone(),
    ];
    for (i, xdg) in caches.iter().enumerate() {
        let t = target.join(i.to_string());
        let t = t.to_str().unwrap();
        for args in [
            vec!["snapshots"],
            vec!["ls", "latest"],
            vec!["restore", "latest", "--target", t],
            vec!["check"],
            vec!["check", "--read-data"],
            vec!["photos"],
            vec!["diff", "latest~1", "latest"],
            vec!["stats"],
            vec!["verify-device"],
        ] {
            let mut c = sv.command(&args);
            c.env("XDG_CACHE_HOME", xdg)
                .env("USBMUXD_SOCKET_ADDRESS", phone.usbmuxd_address());
            let out = run_command(c, DEFAULT_TIMEOUT);
            assert_eq!(out.code, Some(0), "{args:?} (cache {xdg:?}):\n{out}");
            let notes = out.stderr.matches("read-only").count();
            assert!(
                notes <= 1,
                "{args:?}: the read-only note is said once at most:\n{out}"
            );
            if i > 0 && ["check", "photos"].contains(&args[0]) {
                assert!(
                    out.stderr.contains("running without the cache"),
                    "{args:?}: an unusable cache folder should be said:\n{out}"
                );
            }
            if ["restore", "check", "verify-device"].contains(&args[0]) {
                assert_eq!(
                    notes, 1,
                    "{args:?}: running without a lock should be said:\n{out}"
                );
            }
        }
        assert_same_tree(&lib, &target.join(i.to_string()).join("phone"));
    }
}

/// `--no-lock` reads past a lock that would otherwise stop the command (exit 11).
#[test]
fn no_lock_reads_past_an_exclusive_lock() {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    write_random(&src.join("IMG_0001.JPG"), 1, 20_000);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    // An unencrypted repository's lock objects are plain JSON: a live prune on another host.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let lock = serde_json::json!({
        "hostname": "another-host", "username": "anna", "pid": 4242, "time": now,
        "exclusive": true, "command": "prune",
    });
    write_file(
        &sv.repo.join("locks").join("ab".repeat(32)),
        lock.to_string().as_bytes(),
    );
    let target = tmp.path().join("out");
    let t = target.to_str().unwrap();
    let out = sv.run(&["restore", "latest", "--target", t]);
    assert_eq!(
        out.code,
        Some(11),
        "the planted lock should stop restore:\n{out}"
    );
    let out = sv.run(&["restore", "latest", "--target", t, "--no-lock"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_same_tree(&src, &target.join("photos"));
    let out = sv.run(&["check", "--no-lock"]);
    assert_eq!(out.code, Some(0), "{out}");
}
