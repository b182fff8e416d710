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
