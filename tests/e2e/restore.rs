//! restore: --include, re-running into the same target, never overwriting different content
//! unless --overwrite.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

fn files_under(root: &Path) -> BTreeSet<PathBuf> {
    tree_contents(root)
        .into_iter()
        .filter(|(_, i)| matches!(i, Item::File(_)))
        .map(|(p, _)| p)
        .collect()
}

fn photo_tree(root: &Path) {
    write_random(&root.join("dir/a.jpg"), 1, 10_000);
    write_random(&root.join("dir/b.jpg"), 2, 20_000);
    write_random(&root.join("dir/c.png"), 3, 30_000);
    write_random(&root.join("dir/A.JPG.txt"), 4, 100);
    write_random(&root.join("other/d.jpg"), 5, 40_000);
    write_random(&root.join("top.jpg"), 6, 50_000);
}

/// `photo_tree` in `TMP/src` plus `extra` files of 1000 bytes (path under src, seed), and a
/// repository at `TMP/repo` holding one snapshot of it.
fn snapshotted_photo_tree(
    extra: &[(&str, u64)],
    encrypted: bool,
) -> (tempfile::TempDir, PathBuf, Sv) {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    photo_tree(&src);
    for (path, seed) in extra {
        write_random(&src.join(path), *seed, 1000);
    }
    let sv = Sv::init(tmp.path().join("repo"), encrypted);
    sv.snapshot(&[&src], &[]);
    (tmp, src, sv)
}

#[test]
fn include_restores_only_matching_files() {
    let (tmp, src, sv) = snapshotted_photo_tree(&[], false);
    let target = tmp.path().join("t");
    let t = target.to_str().unwrap();
    sv.ok(&[
        "restore",
        "latest",
        "--target",
        t,
        "--include",
        "src/dir/*.jpg",
    ]);
    assert_eq!(
        files_under(&target),
        BTreeSet::from([
            PathBuf::from("src/dir/a.jpg"),
            PathBuf::from("src/dir/b.jpg")
        ])
    );
    assert_eq!(
        fs::read(target.join("src/dir/a.jpg")).unwrap(),
        fs::read(src.join("dir/a.jpg")).unwrap()
    );

    // Repeatable, and a folder pattern takes everything under it.
    let target2 = tmp.path().join("t2");
    sv.ok(&[
        "restore",
        "latest",
        "--target",
        target2.to_str().unwrap(),
        "--include",
        "src/other",
        "--include",
        "src/top.jpg",
    ]);
    assert_eq!(
        files_under(&target2),
        BTreeSet::from([
            PathBuf::from("src/other/d.jpg"),
            PathBuf::from("src/top.jpg")
        ])
    );

    // A pattern matching nothing restores nothing, says so and fails.
    let target3 = tmp.path().join("t3");
    let out = sv.run(&[
        "restore",
        "latest",
        "--target",
        target3.to_str().unwrap(),
        "--include",
        "src/*.gif",
    ]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "matched nothing");
    assert!(!target3.exists(), "{out}");

    // --dry-run writes nothing.
    let target4 = tmp.path().join("t4");
    let out = sv.ok(&[
        "restore",
        "latest",
        "--target",
        target4.to_str().unwrap(),
        "--dry-run",
    ]);
    assert!(!target4.exists(), "--dry-run created the target:\n{out}");
}

/// `*` should stop at `/` like in a shell, rsync, restic or .gitignore: `src/dir/*.jpg`
/// should not pick up `src/dir/sub/e.jpg`.
#[test]
fn include_star_does_not_cross_folders() {
    let (tmp, _, sv) = snapshotted_photo_tree(&[("dir/sub/e.jpg", 7)], false);
    let target = tmp.path().join("t");
    sv.ok(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--include",
        "src/dir/*.jpg",
    ]);
    assert_eq!(
        files_under(&target),
        BTreeSet::from([
            PathBuf::from("src/dir/a.jpg"),
            PathBuf::from("src/dir/b.jpg")
        ])
    );
}

fn restore_json(sv: &Sv, target: &Path, extra: &[&str]) -> (Out, Value) {
    let mut args = vec![
        "restore",
        "latest",
        "--json",
        "--target",
        target.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = sv.run(&args);
    let v = out.json();
    (out, v)
}

#[test]
fn rerun_skips_files_already_right_and_never_overwrites_without_overwrite() {
    let (tmp, src, sv) = snapshotted_photo_tree(&[], false);
    let target = tmp.path().join("t");

    let (out, v) = restore_json(&sv, &target, &[]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(v["files_restored"], 6, "{v}");
    assert_eq!(v["files_already_right"], 0, "{v}");
    assert_same_tree(&src, &target.join("src"));

    // Same target again: everything is already right, nothing rewritten.
    let (out, v) = restore_json(&sv, &target, &[]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(v["files_restored"], 0, "{v}");
    assert_eq!(v["files_already_right"], 6, "{v}");
    assert_eq!(v["bytes_written"], 0, "{v}");
    assert_same_tree(&src, &target.join("src"));
    let text = sv.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert!(text.stdout.contains("6 already right"), "{text}");

    // An interrupted restore (a file missing) is completed; the rest is skipped.
    fs::remove_file(target.join("src/other/d.jpg")).unwrap();
    let (out, v) = restore_json(&sv, &target, &[]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(v["files_restored"], 1, "{v}");
    assert_eq!(v["files_already_right"], 5, "{v}");
    assert_same_tree(&src, &target.join("src"));

    // A file with other content (same size) is left alone without --overwrite.
    let victim = target.join("src/dir/b.jpg");
    let mine = random_bytes(777, 20_000);
    fs::write(&victim, &mine).unwrap();
    let bigger = target.join("src/top.jpg");
    fs::write(&bigger, b"my own edit").unwrap();
    let out = sv.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "dir/b.jpg");
    assert_stderr_mentions(&out, "top.jpg");
    assert_stderr_mentions(&out, "--overwrite");
    assert_eq!(
        fs::read(&victim).unwrap(),
        mine,
        "file overwritten without --overwrite"
    );
    assert_eq!(fs::read(&bigger).unwrap(), b"my own edit");

    // With --overwrite it is replaced.
    let (out, v) = restore_json(&sv, &target, &["--overwrite"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(v["files_restored"], 2, "{v}");
    assert_same_tree(&src, &target.join("src"));
}

#[test]
fn restore_into_a_new_nested_target_creates_it() {
    let (tmp, src, sv) = snapshotted_photo_tree(&[], true);
    let target = tmp.path().join("deep/new/target");
    sv.restore("latest", &target);
    assert_same_tree(&src, &target.join("src"));
}

// ---------------------------------------------------------------------------------------
// A restore target someone else can write to (issue 15.2): a symlink planted below the
// target is never followed, neither for folders nor for files.

/// `S/photos/p.jpg` and `S/other.jpg` backed up; returns (repo, the photo's bytes).
fn planted_setup(tmp: &Path) -> (Sv, Vec<u8>) {
    let src = tmp.join("S");
    let photo = write_random(&src.join("photos/p.jpg"), 11, 30_000);
    write_random(&src.join("other.jpg"), 12, 10_000);
    let sv = Sv::init(tmp.join("repo"), false);
    sv.snapshot(&[&src], &[]);
    (sv, photo)
}

fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn folder_symlink_planted_in_the_target_is_never_followed() {
    let tmp = tempdir();
    let (sv, photo) = planted_setup(tmp.path());
    let victim = tmp.path().join("victim");
    write_file(&victim.join("p.jpg"), b"the victim's own file");
    set_mode(&victim, 0o755);
    let before = listing(&victim);
    let target = tmp.path().join("T");
    fs::create_dir_all(target.join("S")).unwrap();
    std::os::unix::fs::symlink(&victim, target.join("S/photos")).unwrap();
    let t = target.to_str().unwrap();

    // Without --overwrite: the subtree is skipped and named, the rest is restored.
    let out = sv.run(&["restore", "latest", "--target", t]);
    assert_eq!(out.code, Some(3), "{out}");
    assert_stderr_mentions(&out, "S/photos");
    assert_stderr_mentions(&out, "symlink");
    assert_unchanged(&before, &victim, "restore without --overwrite");
    assert_eq!(mode_of(&victim), 0o755, "the victim folder was chmod-ed");
    assert!(
        fs::symlink_metadata(target.join("S/photos"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        target.join("S/other.jpg").is_file(),
        "the rest was not restored:\n{out}"
    );

    // With --overwrite: the symlink is replaced by a real folder; the victim is untouched.
    let out = sv.run(&["restore", "latest", "--target", t, "--overwrite"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_unchanged(&before, &victim, "restore --overwrite");
    assert_eq!(mode_of(&victim), 0o755, "the victim folder was chmod-ed");
    let md = fs::symlink_metadata(target.join("S/photos")).unwrap();
    assert!(md.is_dir(), "S/photos is still not a real folder");
    assert_eq!(fs::read(target.join("S/photos/p.jpg")).unwrap(), photo);
    assert_same_tree(&tmp.path().join("S"), &target.join("S"));
}

#[test]
fn symlink_planted_at_a_files_path_is_never_written_through() {
    let tmp = tempdir();
    let (sv, photo) = planted_setup(tmp.path());
    // The victim holds the very same bytes, so a restore that followed the link would
    // take it for "already right" and chmod it.
    let victim = tmp.path().join("victim.jpg");
    write_file(&victim, &photo);
    set_mode(&victim, 0o640);
    let target = tmp.path().join("T");
    fs::create_dir_all(target.join("S/photos")).unwrap();
    let planted = target.join("S/photos/p.jpg");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let t = target.to_str().unwrap();

    let out = sv.run(&["restore", "latest", "--target", t]);
    assert_eq!(out.code, Some(3), "{out}");
    assert_stderr_mentions(&out, "S/photos/p.jpg");
    assert!(
        fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        mode_of(&victim),
        0o640,
        "the victim was chmod-ed through the link"
    );

    let out = sv.run(&["restore", "latest", "--target", t, "--overwrite"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        fs::symlink_metadata(&planted).unwrap().is_file(),
        "still a symlink:\n{out}"
    );
    assert_eq!(fs::read(&planted).unwrap(), photo);
    assert_eq!(
        mode_of(&victim),
        0o640,
        "the victim was chmod-ed through the link"
    );
    assert_eq!(fs::read(&victim).unwrap(), photo);
    assert_same_tree(&tmp.path().join("S"), &target.join("S"));
}

/// Issue 24.3: `--include IMG_0102.JPG` finds the photo wherever it is, as `--exclude`
/// does; a path pattern still anchors at the snapshot's top.
#[test]
fn include_by_bare_name_matches_at_any_depth() {
    let (tmp, _, sv) = snapshotted_photo_tree(&[("dir/sub/a.jpg", 8)], false);
    let target = tmp.path().join("t");
    let out = sv.ok(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--include",
        "a.jpg",
    ]);
    assert_eq!(
        files_under(&target),
        BTreeSet::from([
            PathBuf::from("src/dir/a.jpg"),
            PathBuf::from("src/dir/sub/a.jpg")
        ]),
        "{out}"
    );
    // A folder name brings the whole folder.
    let target = tmp.path().join("t2");
    sv.ok(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--include",
        "other",
    ]);
    assert_eq!(
        files_under(&target),
        BTreeSet::from([PathBuf::from("src/other/d.jpg")])
    );
}

// ---------------------------------------------------------------------------------------
// Case-insensitive targets (issue 19.5)

/// A folder that does not tell `a` from `A`, mounted for the test; None (with the reason)
/// where this machine cannot make one. Unmounted on drop.
struct CaseInsensitive {
    mount: PathBuf,
    folder: PathBuf,
}

impl Drop for CaseInsensitive {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.mount)
            .status();
    }
}

fn case_insensitive_folder(tmp: &Path) -> Result<CaseInsensitive, String> {
    use std::process::Command;
    let ok = |c: &mut Command| c.output().is_ok_and(|o| o.status.success());
    let mount = tmp.join("ci-mount");
    fs::create_dir_all(&mount).unwrap();
    // Something is mounted at `mount`: its `photos` folder, casefolded with `chattr +F`
    // where the file system needs that (unmounted again when that fails).
    let folder_in = |casefold: bool| -> Option<CaseInsensitive> {
        let ci = CaseInsensitive {
            mount: mount.clone(),
            folder: mount.join("photos"),
        };
        fs::create_dir(&ci.folder).unwrap();
        (!casefold || ok(Command::new("chattr").arg("+F").arg(&ci.folder))).then_some(ci)
    };
    let mut tried = Vec::new();
    // tmpfs with casefold (Linux 6.13+ built with CONFIG_UNICODE), then a casefolded ext4
    // image, then FAT.
    if ok(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "casefold,size=16m", "tmpfs"])
        .arg(&mount))
    {
        match folder_in(true) {
            Some(ci) => return Ok(ci),
            None => tried.push("tmpfs casefold mounted but chattr +F failed"),
        }
    } else {
        tried.push("tmpfs -o casefold");
    }
    let img = tmp.join("ci.img");
    let _ = fs::File::create(&img).and_then(|f| f.set_len(64 << 20));
    let mount_img = || {
        ok(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&mount))
    };
    if ok(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-O", "casefold"])
        .arg(&img))
        && mount_img()
    {
        match folder_in(true) {
            Some(ci) => return Ok(ci),
            None => tried.push("casefold ext4 mounted but chattr +F failed"),
        }
    } else {
        tried.push("a casefold ext4 loop image");
    }
    if ok(Command::new("mkfs.vfat").arg(&img))
        && mount_img()
        && let Some(ci) = folder_in(false)
    {
        return Ok(ci);
    }
    tried.push("a FAT loop image (mkfs.vfat)");
    Err(tried.join(", "))
}

/// Two photos whose names differ only in case: on an ordinary target both come back under
/// their own names; on a case-insensitive one both come back too, the second renamed and
/// reported. (The renaming itself is tested in `restorer::case::tests`, so it is covered
/// where no case-insensitive file system can be mounted.)
#[test]
fn names_differing_only_in_case_both_survive() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    let upper = write_random(&src.join("DCIM/IMG_0001.JPG"), 1, 5_000);
    let lower = write_random(&src.join("DCIM/img_0001.jpg"), 2, 6_000);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);

    let plain = tmp.path().join("plain");
    let out = sv.ok(&["restore", "latest", "--target", plain.to_str().unwrap()]);
    assert!(!out.stdout.contains("note:"), "{out}");
    assert_same_tree(&src, &plain.join("src"));
    let top: Vec<_> = fs::read_dir(&plain)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(top, ["src"], "a probe file was left behind");

    let ci = match case_insensitive_folder(tmp.path()) {
        Ok(ci) => ci,
        Err(tried) => {
            eprintln!(
                "skipped the case-insensitive half: no such file system can be mounted here \
                 (tried {tried}); the collision logic is tested in restorer::case::tests"
            );
            return;
        }
    };
    let t = ci.folder.to_str().unwrap();
    let out = sv.ok(&["restore", "latest", "--target", t]);
    assert_eq!(
        fs::read(ci.folder.join("src/DCIM/IMG_0001.JPG")).unwrap(),
        upper,
        "{out}"
    );
    assert_eq!(
        fs::read(ci.folder.join("src/DCIM/img_0001 (2).jpg")).unwrap(),
        lower,
        "{out}"
    );
    assert!(out.stdout.contains("only in case"), "{out}");
    // Again: nothing to do, nothing overwritten.
    let out = sv.ok(&["restore", "latest", "--target", t, "--overwrite"]);
    assert_eq!(
        fs::read(ci.folder.join("src/DCIM/IMG_0001.JPG")).unwrap(),
        upper,
        "{out}"
    );
    assert_eq!(
        fs::read(ci.folder.join("src/DCIM/img_0001 (2).jpg")).unwrap(),
        lower,
        "{out}"
    );
}
