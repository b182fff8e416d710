//! Session 12: a file in the restore target that is already right but is a hard link of a
//! file outside the target. Restore may change the target, never what lies outside it:
//! giving the shared inode the snapshot's mode and time changed the outside file too.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::common::*;

/// (mode, mtime in ns, inode) of a file.
fn meta(p: &Path) -> (u32, i128, u64) {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
    (m.mode() & 0o7777, mtime_ns(&m), m.ino())
}

/// `src/a.jpg` (0644, 2021) backed up; the target already holds `src/a.jpg` with the same
/// bytes as a hard link of `outside/mine.jpg` (0600, 2024). Before, restore said the file
/// was already right and gave the shared inode mode 0644 and the 2021 time: the outside
/// file changed. Now the outside file keeps its mode, time and bytes; the target's name
/// gets a file of its own with the snapshot's mode and time.
#[test]
fn restoring_over_a_right_file_linked_outside_leaves_the_outside_file_alone() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    let photo = write_random(&src.join("a.jpg"), 1, 40_000);
    set_mode(&src.join("a.jpg"), 0o644);
    set_mtime(&src.join("a.jpg"), 1_620_000_000, 0);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);

    let outside = tmp.path().join("outside/mine.jpg");
    write_file(&outside, &photo);
    set_mode(&outside, 0o600);
    set_mtime(&outside, 1_720_000_000, 5);
    let target = tmp.path().join("t");
    fs::create_dir_all(target.join("src")).unwrap();
    fs::hard_link(&outside, target.join("src/a.jpg")).unwrap();
    let before = meta(&outside);

    let out = sv.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        meta(&outside),
        before,
        "the file outside the target changed (mode, mtime, inode):\n{out}"
    );
    assert_eq!(fs::read(&outside).unwrap(), photo);
    assert_same_tree(&src, &target.join("src"));
}

/// The same file linked outside with the snapshot's mode and time already: nothing to
/// change, so nothing is written and the link stays.
#[test]
fn a_right_file_linked_outside_with_the_right_metadata_is_left_as_it_is() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    let photo = write_random(&src.join("a.jpg"), 1, 40_000);
    set_mode(&src.join("a.jpg"), 0o640);
    set_mtime(&src.join("a.jpg"), 1_620_000_000, 7);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);

    let outside = tmp.path().join("outside/mine.jpg");
    write_file(&outside, &photo);
    set_mode(&outside, 0o640);
    set_mtime(&outside, 1_620_000_000, 7);
    let target = tmp.path().join("t");
    fs::create_dir_all(target.join("src")).unwrap();
    fs::hard_link(&outside, target.join("src/a.jpg")).unwrap();
    let before = meta(&outside);
    let out = sv.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(meta(&outside), before, "{out}");
    assert_eq!(meta(&target.join("src/a.jpg")).2, before.2, "{out}");
    assert_same_tree(&src, &target.join("src"));
}

/// A pair of hard links in the snapshot; in the target the second name is already right
/// but linked to a file outside, with another mode and time. Before, linking it to the
/// first (already right, a file of its own) set the snapshot's mode and time on the
/// outside file. Now the outside file is untouched and the pair comes back linked.
#[test]
fn a_link_of_the_snapshot_linked_outside_does_not_change_the_outside_file() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    let photo = write_random(&src.join("a.jpg"), 1, 40_000);
    fs::hard_link(src.join("a.jpg"), src.join("b.jpg")).unwrap();
    set_mode(&src.join("a.jpg"), 0o644);
    set_mtime(&src.join("a.jpg"), 1_620_000_000, 0);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);

    let outside = tmp.path().join("outside/mine.jpg");
    write_file(&outside, &photo);
    set_mode(&outside, 0o600);
    set_mtime(&outside, 1_720_000_000, 5);
    let target = tmp.path().join("t");
    fs::create_dir_all(target.join("src")).unwrap();
    fs::hard_link(&outside, target.join("src/b.jpg")).unwrap();
    let before = meta(&outside);

    let out = sv.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(meta(&outside), before, "the outside file changed:\n{out}");
    let (a, b) = (target.join("src/a.jpg"), target.join("src/b.jpg"));
    assert_eq!(fs::read(&b).unwrap(), photo);
    assert_eq!(
        meta(&a),
        meta(&b),
        "the pair did not come back linked:\n{out}"
    );
    assert_eq!(meta(&a).0, 0o644);
    assert_eq!(meta(&a).1, 1_620_000_000_000_000_000);
}
