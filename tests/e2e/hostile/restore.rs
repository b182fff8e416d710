//! Restore meets an unfriendly target (issue 16): folders it cannot create, a folder where
//! a file belongs. It restores everything it can, names every failure at the end and exits
//! 3, and leaves no temporary files behind.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// `src/a/1.jpg`, `src/b/2.jpg`, `src/c/3.jpg`, `src/top.jpg`, backed up.
fn backed_up(tmp: &Path) -> Sv {
    let src = tmp.join("src");
    write_random(&src.join("a/1.jpg"), 1, 20_000);
    write_random(&src.join("b/2.jpg"), 2, 20_000);
    write_random(&src.join("c/3.jpg"), 3, 20_000);
    write_random(&src.join("top.jpg"), 4, 20_000);
    let sv = Sv::init(tmp.join("repo"), false);
    sv.snapshot(&[&src], &[]);
    sv
}

fn temp_leftovers(root: &Path) -> Vec<String> {
    tree_contents(root)
        .into_keys()
        .map(|p| p.display().to_string())
        .filter(|p| p.contains(".snapvault-restore-"))
        .collect()
}

#[test]
fn restore_carries_on_past_a_folder_it_cannot_create() {
    let tmp = tempdir();
    let sv = backed_up(tmp.path());
    let target = tmp.path().join("t");
    // A file where the folder `src/b` belongs.
    write_file(&target.join("src/b"), b"not a folder");
    let out = sv.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(out.code, Some(3), "{out}");
    assert_stderr_mentions(&out, "src/b");
    // Everything else came back.
    for f in ["src/a/1.jpg", "src/c/3.jpg", "src/top.jpg"] {
        assert_eq!(
            fs::read(target.join(f)).unwrap(),
            fs::read(tmp.path().join(f)).unwrap(),
            "{f}:\n{out}"
        );
    }
    assert_eq!(fs::read(target.join("src/b")).unwrap(), b"not a folder");
    // The failures are listed at the end.
    assert!(
        out.stderr
            .trim_end()
            .lines()
            .last()
            .unwrap_or("")
            .contains("not restored"),
        "{out}"
    );
    // --json names it too.
    let out = sv.run(&[
        "restore",
        "latest",
        "--json",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(3), "{out}");
    let v = out.json();
    let problems = v["problems"].as_array().unwrap();
    assert!(problems.iter().any(|p| p["path"] == "src/b"), "{v}");
}

/// A folder that cannot be written (immutable, so even root is refused): the files for it
/// fail by name, everything else is restored. Skipped where `chattr +i` is unavailable.
#[test]
fn restore_carries_on_past_a_folder_it_may_not_write() {
    let tmp = tempdir();
    let sv = backed_up(tmp.path());
    let target = tmp.path().join("t");
    let locked = target.join("src/c");
    fs::create_dir_all(&locked).unwrap();
    let ok = Command::new("chattr").arg("+i").arg(&locked).status();
    if !matches!(ok, Ok(s) if s.success()) {
        eprintln!("skipped: `chattr +i` is not available here (needs root on ext4/xfs/btrfs)");
        return;
    }
    let out = sv.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let _ = Command::new("chattr").arg("-i").arg(&locked).status();
    assert_eq!(out.code, Some(3), "{out}");
    assert_stderr_mentions(&out, "src/c/3.jpg");
    for f in ["src/a/1.jpg", "src/b/2.jpg", "src/top.jpg"] {
        assert!(target.join(f).is_file(), "{f}:\n{out}");
    }
    assert!(!target.join("src/c/3.jpg").exists());
}

#[test]
fn overwrite_with_a_folder_at_a_files_path_leaves_no_temp_file() {
    let tmp = tempdir();
    let sv = backed_up(tmp.path());
    let target = tmp.path().join("t");
    write_file(&target.join("src/top.jpg/mine.txt"), b"my folder");
    let t = target.to_str().unwrap();
    for extra in [None, Some("--overwrite")] {
        let mut args = vec!["restore", "latest", "--target", t];
        args.extend(extra);
        let out = sv.run(&args);
        assert_eq!(out.code, Some(3), "{out}");
        assert_stderr_mentions(&out, "src/top.jpg");
        assert_eq!(temp_leftovers(&target), Vec::<String>::new(), "{out}");
        assert_eq!(
            fs::read(target.join("src/top.jpg/mine.txt")).unwrap(),
            b"my folder"
        );
        assert!(target.join("src/a/1.jpg").is_file(), "{out}");
    }
}
