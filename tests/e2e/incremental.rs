//! Incremental snapshots: unchanged files are not read again; changed and new files are
//! counted exactly; every snapshot restores to its own state.

use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::common::*;

#[test]
fn incremental_counts_and_every_snapshot_restores_its_own_state() {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    let names = [
        "IMG_0001.JPG",
        "IMG_0002.HEIC",
        "IMG_0003.MOV",
        "IMG_0004.PNG",
        "IMG_0005.JPG",
        "2023/IMG_0101.HEIC",
        "2023/07/IMG_0201.JPG",
    ];
    for (i, n) in names.iter().enumerate() {
        write_random(&src.join(n), 100 + i as u64, 10_000 + 7_000 * i);
        set_mode(&src.join(n), 0o644);
    }
    write_file(&src.join("empty.txt"), b"");
    let total_files = names.len() as u64 + 1;
    let sv = Sv::init(tmp.path().join("repo"), false);

    // 1. Everything is new.
    let s1 = sv.snapshot(&[&src], &[]);
    assert_eq!(summary_u64(&s1, "files_new"), total_files, "{s1}");
    assert_eq!(summary_u64(&s1, "files_changed"), 0, "{s1}");
    assert_eq!(summary_u64(&s1, "files_unchanged"), 0, "{s1}");
    let state1 = tree_contents(&src);
    let all_bytes: u64 = state1
        .values()
        .map(|i| match i {
            Item::File(d) => d.len() as u64,
            _ => 0,
        })
        .sum();
    assert_eq!(summary_u64(&s1, "bytes_read"), all_bytes, "{s1}");

    // 2. Nothing changed: nothing is read, everything is unchanged.
    let s2 = sv.snapshot(&[&src], &[]);
    assert_eq!(summary_u64(&s2, "files_unchanged"), total_files, "{s2}");
    assert_eq!(summary_u64(&s2, "files_new"), 0, "{s2}");
    assert_eq!(summary_u64(&s2, "files_changed"), 0, "{s2}");
    assert_eq!(summary_u64(&s2, "bytes_read"), 0, "{s2}");
    assert_eq!(summary_u64(&s2, "files_total"), total_files, "{s2}");
    let listed = sv.snapshots();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[1]["parent"], s1["id"],
        "second snapshot's parent is the first"
    );

    // 3. One file modified (new content, new size), one file added.
    let modified = write_random(&src.join("IMG_0002.HEIC"), 999, 12_345);
    let added = write_random(&src.join("2023/07/IMG_0202.JPG"), 1000, 54_321);
    let s3 = sv.snapshot(&[&src], &[]);
    assert_eq!(summary_u64(&s3, "files_new"), 1, "{s3}");
    assert_eq!(summary_u64(&s3, "files_changed"), 1, "{s3}");
    assert_eq!(summary_u64(&s3, "files_unchanged"), total_files - 1, "{s3}");
    assert_eq!(summary_u64(&s3, "files_total"), total_files + 1, "{s3}");
    assert_eq!(
        summary_u64(&s3, "bytes_read"),
        (modified.len() + added.len()) as u64,
        "only the modified and the new file are read: {s3}"
    );
    let state3 = tree_contents(&src);

    // 4. A file removed, and one file's mode changed (same size and mtime, but chmod
    // moved its change time: read again, nothing new stored, and the new mode is what
    // the snapshot records).
    fs::remove_file(src.join("IMG_0001.JPG")).unwrap();
    set_mode(&src.join("IMG_0004.PNG"), 0o600);
    let s4 = sv.snapshot(&[&src], &[]);
    assert_eq!(summary_u64(&s4, "files_total"), total_files, "{s4}");
    assert_eq!(summary_u64(&s4, "files_unchanged"), total_files - 1, "{s4}");
    assert_eq!(summary_u64(&s4, "files_changed"), 1, "{s4}");
    assert_eq!(summary_u64(&s4, "bytes_read"), 31_000, "{s4}");
    let state4 = tree_contents(&src);

    for (snap, state, name) in [
        (&s1, &state1, "s1"),
        (&s2, &state1, "s2"),
        (&s3, &state3, "s3"),
        (&s4, &state4, "s4"),
    ] {
        let target = tmp.path().join(format!("restore-{name}"));
        sv.restore(snap["id"].as_str().unwrap(), &target);
        assert_contents(state, &target.join("photos"));
        let mode = fs::metadata(target.join("photos/IMG_0004.PNG"))
            .unwrap()
            .mode()
            & 0o777;
        let want = if name == "s4" { 0o600 } else { 0o644 };
        assert_eq!(mode, want, "{name}: mode of IMG_0004.PNG is {mode:o}");
    }
    sv.ok(&["check", "--read-data"]);
}

/// `--force` reads everything again even though nothing changed (and adds nothing).
#[test]
fn force_rereads_unchanged_files() {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    let a = write_random(&src.join("a.jpg"), 1, 300_000);
    let b = write_random(&src.join("b.jpg"), 2, 200_000);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    let s = sv.snapshot(&[&src], &["--force"]);
    assert_eq!(summary_u64(&s, "files_unchanged"), 0, "{s}");
    assert_eq!(
        summary_u64(&s, "bytes_read"),
        (a.len() + b.len()) as u64,
        "{s}"
    );
    assert!(
        summary_u64(&s, "bytes_added") < 4096,
        "content already stored must not be added again: {s}"
    );
}
