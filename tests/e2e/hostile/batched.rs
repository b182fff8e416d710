//! Session 11's hostile tests of restore's batched durability (many files written under
//! temporary names, one `syncfs`, then the renames) and of what landed beside it.

use std::fs;

use crate::common::*;

/// Restore's temporary name for `name` (`.snapvault-restore-` and 16 hex digits of its
/// BLAKE3), as an interrupted restore leaves it beside the target.
fn restore_temp_name(name: &str) -> String {
    format!(
        ".snapvault-restore-{}",
        &blake3::hash(name.as_bytes()).to_hex()[..16]
    )
}

/// A folder that once received an interrupted restore holds its leftover (the partial
/// content of `a.jpg` under `a.jpg`'s temporary name); a later snapshot of the folder
/// stores it like any file. Restoring that snapshot must give back both files as they
/// were. Before, `a.jpg` came back with the leftover's bytes and the leftover was gone,
/// while restore said "restored 2 file(s)" and exited 0 (in a batch: the leftover's own
/// rename landed on `a.jpg`'s staged copy; alone: `a.jpg`'s staging removed the restored
/// leftover as a leftover).
#[test]
fn a_backed_up_restore_leftover_does_not_replace_the_file_it_is_named_after() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    let photo = write_random(&src.join("a.jpg"), 1, 30_000);
    let leftover = write_random(&src.join(restore_temp_name("a.jpg")), 2, 12_000);
    // And a folder of that kind, beside another file.
    let other = write_random(&src.join("b/b.jpg"), 3, 5_000);
    let inner = write_random(
        &src.join("b").join(restore_temp_name("b.jpg")).join("x"),
        4,
        10,
    );
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    // Into a new folder, then again over it (every file already right).
    let target = tmp.path().join("t");
    for _ in 0..2 {
        let out = sv.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
        assert_eq!(out.code, Some(0), "{out}");
        let got = target.join("src");
        assert_eq!(fs::read(got.join("a.jpg")).unwrap(), photo, "a.jpg\n{out}");
        assert_eq!(
            fs::read(got.join(restore_temp_name("a.jpg"))).unwrap(),
            leftover,
            "the backed-up leftover\n{out}"
        );
        assert_eq!(
            fs::read(got.join("b/b.jpg")).unwrap(),
            other,
            "b/b.jpg\n{out}"
        );
        assert_eq!(
            fs::read(got.join("b").join(restore_temp_name("b.jpg")).join("x")).unwrap(),
            inner,
            "the folder named like a leftover\n{out}"
        );
    }
}
