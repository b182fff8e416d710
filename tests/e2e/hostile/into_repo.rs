//! Session 12: `restore --target` naming the repository itself (or a folder in it). Before,
//! restore wrote the snapshot's files among the repository's own: a backed-up folder named
//! `keys` put `keys/b.txt` into the repository's `keys/`, after which the (unencrypted)
//! repository asked for a password; one named `config` met the repository's config file
//! ("--overwrite replaces it with a folder").

use std::fs;

use crate::common::*;

#[test]
fn restore_refuses_a_target_inside_the_repository() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    write_file(&src.join("config/a.txt"), b"x");
    write_file(&src.join("keys/b.txt"), b"y");
    let sv = Sv::init(tmp.path().join("repo"), false);
    let mut c = sv.command(&["snapshot", "config", "keys"]);
    c.current_dir(&src);
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
    // Another way to name it: a symlink to the repository.
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&sv.repo, &link).unwrap();
    let before = listing(&sv.repo);
    for target in [
        sv.repo.clone(),
        sv.repo.join("keys"),
        sv.repo.join("new/folder"),
        link.clone(),
        // Session 13: `..` after a folder still to be created (restore creates it, then
        // goes up out of it): not resolved, so not seen to lead into the repository.
        tmp.path().join("missing/../repo/x"),
        tmp.path().join("missing/deeper/../../link/keys"),
    ] {
        for extra in [None, Some("--overwrite")] {
            let mut args = vec!["restore", "latest", "--target", target.to_str().unwrap()];
            args.extend(extra);
            let out = sv.run(&args);
            assert_eq!(out.code, Some(1), "{}:\n{out}", target.display());
            assert_stderr_mentions(&out, "inside the repository");
            assert_unchanged(&before, &sv.repo, "restore into the repository");
        }
    }
    let out = sv.run(&["check"]);
    assert_eq!(out.code, Some(0), "{out}");
    // Beside the repository is fine.
    let beside = tmp.path().join("repo-restored");
    sv.restore("latest", &beside);
    assert_eq!(fs::read(beside.join("keys/b.txt")).unwrap(), b"y");
}

/// Session 13: the repository's folder under another name the paths do not show, a bind
/// mount of it (`mount --bind repo elsewhere`, as a NAS share or a container volume names
/// it): the restore wrote into the repository. The folders are compared by identity
/// (device and inode) now. Needs the right to mount (root): without it, nothing to test.
#[test]
fn restore_refuses_a_bind_mount_of_the_repository() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    write_file(&src.join("keys/b.txt"), b"y");
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    let alias = tmp.path().join("alias");
    fs::create_dir(&alias).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["--bind", sv.repo.to_str().unwrap(), alias.to_str().unwrap()])
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        eprintln!("no bind mount here (not root?): nothing to test");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).output();
        }
    }
    let _unmount = Unmount(alias.clone());
    let before = listing(&sv.repo);
    for target in [alias.join("src"), alias.join("new/folder")] {
        let out = sv.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
        assert_eq!(out.code, Some(1), "{}:\n{out}", target.display());
        assert_stderr_mentions(&out, "inside the repository");
        assert_unchanged(
            &before,
            &sv.repo,
            "restore into a bind mount of the repository",
        );
    }
}
