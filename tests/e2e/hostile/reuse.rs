//! Session 13's attacker round on session 12's folder tree reuse (`ops/archiver/reuse.rs`):
//! a folder whose listing looks the same as the parent's keeps the parent's tree. Can a
//! changed file hide in such a folder? The change test was a file's size and modification
//! time (and its inode only when it has several names); since session 14 a file node of a
//! folder source also records the file's change time (ctime) and inode, compared as restic
//! does, and these tests pass.

use std::fs;
use std::path::Path;

use crate::common::*;

/// A library of two photos of one size and one time (a burst copied with its times kept),
/// backed up; `change` then alters it; the next snapshot must hold what the folder holds.
fn after(
    change: impl FnOnce(&Path),
) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    write_random(&src.join("day/IMG_0001.JPG"), 1, 60_000);
    write_random(&src.join("day/IMG_0002.JPG"), 2, 60_000);
    write_random(&src.join("other/IMG_0003.JPG"), 3, 10_000);
    for n in ["day/IMG_0001.JPG", "day/IMG_0002.JPG"] {
        set_mtime(&src.join(n), 1_700_000_000, 0);
    }
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    change(&src);
    sv.snapshot(&[&src], &[]);
    let out = tmp.path().join("out");
    sv.restore("latest", &out);
    (tmp, src, out.join("src"))
}

/// Rewritten in place, same length, its time set back (`touch -d`, a tool that keeps
/// times): the listing looks as before, so the folder's tree (and the file's old content)
/// was reused. The write moved its change time (ctime), which the node now records.
#[test]
fn a_photo_rewritten_with_its_time_set_back_is_read_again() {
    let (_tmp, src, out) = after(|src| {
        let p = src.join("day/IMG_0001.JPG");
        write_random(&p, 9, 60_000);
        set_mtime(&p, 1_700_000_000, 0);
    });
    assert_same_tree(&src, &out);
}

/// Two photos of one size and time swapped by name (renamed through a third name): each
/// name is listed as before, so the snapshot kept each name's old content — the restore
/// gives IMG_0001 the bytes of IMG_0002 and back. The rename changed both files' ctime and
/// each name's inode, both recorded now.
#[test]
fn two_photos_of_one_size_and_time_swapped_by_name_are_read_again() {
    let (_tmp, src, out) = after(|src| {
        let d = src.join("day");
        fs::rename(d.join("IMG_0001.JPG"), d.join("tmp")).unwrap();
        fs::rename(d.join("IMG_0002.JPG"), d.join("IMG_0001.JPG")).unwrap();
        fs::rename(d.join("tmp"), d.join("IMG_0002.JPG")).unwrap();
    });
    assert_same_tree(&src, &out);
}

/// A photo replaced by a hard link of another of one size and time: it now has two names,
/// so the listing carries its inode and the folder is walked again — but the file was
/// compared by size and time alone, kept its old content, and restore linked the twin to
/// it: both names came back with the replaced photo's bytes (the twin never changed).
/// A file with several names must also be the inode its node recorded.
#[test]
fn a_photo_replaced_by_a_hard_link_of_its_twin_is_read_again() {
    let (_tmp, src, out) = after(|src| {
        let d = src.join("day");
        fs::remove_file(d.join("IMG_0001.JPG")).unwrap();
        fs::hard_link(d.join("IMG_0002.JPG"), d.join("IMG_0001.JPG")).unwrap();
    });
    assert_same_tree(&src, &out);
}

/// A photo renamed within its folder, another taking its old name with its size and time
/// (an import that renames): the folder's listing differs (a new name), so it is walked,
/// but the name taken over was compared with its old node by size and time alone and kept
/// the old content; its inode and change time differ.
#[test]
fn a_photo_renamed_within_its_folder_and_its_name_reused_is_read_again() {
    let (_tmp, src, out) = after(|src| {
        let d = src.join("day");
        fs::rename(d.join("IMG_0001.JPG"), d.join("IMG_0009.JPG")).unwrap();
        write_random(&d.join("IMG_0001.JPG"), 8, 60_000);
        set_mtime(&d.join("IMG_0001.JPG"), 1_700_000_000, 0);
    });
    assert_same_tree(&src, &out);
}
