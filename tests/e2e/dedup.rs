//! Deduplication: the same content is stored once, across names, folders and snapshots, and
//! content-defined chunking survives bytes inserted at the start of a file.

use crate::common::*;

const MIB: u64 = 1024 * 1024;

#[test]
fn same_file_under_two_names_is_stored_once() {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    let data = random_bytes(3, 3 * MIB as usize);
    write_file(&src.join("IMG_0001.JPG"), &data);
    write_file(&src.join("copy of IMG_0001.JPG"), &data);
    let sv = Sv::init(tmp.path().join("repo"), false);
    let before = tree_size(&sv.repo);

    let s1 = sv.snapshot(&[&src], &[]);
    let grown = tree_size(&sv.repo) - before;
    assert_eq!(summary_u64(&s1, "bytes_read"), 6 * MIB, "{s1}");
    assert!(
        (3 * MIB..3 * MIB + 256 * 1024).contains(&grown),
        "two copies of 3 MiB should grow the repository by ~3 MiB, grew by {grown} bytes"
    );
    let added = summary_u64(&s1, "bytes_added");
    assert!(
        (3 * MIB..3 * MIB + 256 * 1024).contains(&added),
        "bytes_added {added} should be ~3 MiB: {s1}"
    );

    // The same content in another folder, under a third name, in a new snapshot.
    let other = tmp.path().join("other");
    write_file(&other.join("IMG_9999.JPG"), &data);
    let before2 = tree_size(&sv.repo);
    let s2 = sv.snapshot(&[&other], &[]);
    assert_eq!(
        summary_u64(&s2, "bytes_read"),
        3 * MIB,
        "a new source is read: {s2}"
    );
    let added2 = summary_u64(&s2, "bytes_added");
    assert!(
        added2 < 16 * 1024,
        "known content must add ~0 bytes, added {added2}: {s2}"
    );
    let grown2 = tree_size(&sv.repo) - before2;
    assert!(
        grown2 < 64 * 1024,
        "known content grew the repository by {grown2} bytes"
    );

    // Both names restore with the full content.
    let target = tmp.path().join("r");
    sv.restore(s1["id"].as_str().unwrap(), &target);
    assert_same_tree(&src, &target.join("photos"));
}

fn insertion_shift(encrypted: bool) {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    let file = src.join("VIDEO_0001.MOV");
    let size = 32 * MIB as usize;
    let original = write_random(&file, 32, size);
    let sv = Sv::init(tmp.path().join("repo"), encrypted);
    let s1 = sv.snapshot(&[&src], &[]);
    assert!(summary_u64(&s1, "bytes_added") >= size as u64, "{s1}");

    // The same bytes with 5000 new bytes inserted at the start.
    let mut shifted = random_bytes(0xBEEF, 5000);
    shifted.extend_from_slice(&original);
    write_file(&file, &shifted);
    let s2 = sv.snapshot(&[&src], &[]);
    assert_eq!(summary_u64(&s2, "files_changed"), 1, "{s2}");
    assert_eq!(summary_u64(&s2, "bytes_read"), shifted.len() as u64, "{s2}");
    let added = summary_u64(&s2, "bytes_added");
    assert!(
        added < size as u64 / 5,
        "after inserting 5000 bytes at the start of a 32 MiB file, {added} bytes were added \
         (at least 80% of the chunks should be shared): {s2}"
    );

    // Both versions restore exactly.
    for (snap, want, name) in [(&s1, &original, "r1"), (&s2, &shifted, "r2")] {
        let target = tmp.path().join(name);
        sv.restore(snap["id"].as_str().unwrap(), &target);
        let got = std::fs::read(target.join("photos/VIDEO_0001.MOV")).unwrap();
        assert!(got == **want, "{name}: restored content differs");
    }
}

#[test]
fn insertion_at_start_shares_most_chunks_unencrypted() {
    insertion_shift(false);
}

#[test]
fn insertion_at_start_shares_most_chunks_encrypted() {
    insertion_shift(true);
}
