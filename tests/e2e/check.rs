//! `check --read-data` passes on a good repository and names the pack in which one byte was
//! flipped.

use std::fs;

use crate::common::*;

fn flipped_byte_is_found(encrypted: bool) {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    write_random(&src.join("IMG_0001.HEIC"), 1, 3 * 1024 * 1024);
    write_random(&src.join("IMG_0002.JPG"), 2, 100_000);
    write_random(&src.join("2024/IMG_0003.JPG"), 3, 50_000);
    let sv = Sv::init(tmp.path().join("repo"), encrypted);
    sv.snapshot(&[&src], &[]);
    let out = sv.ok(&["check", "--read-data"]);
    assert_mentions(&out, "no errors");

    // Flip one byte in the middle of the largest pack (the one holding the big photo).
    let packs = pack_files(&sv.repo);
    assert!(
        !packs.is_empty(),
        "no pack files under {}/data",
        sv.repo.display()
    );
    let (id, path) = packs
        .iter()
        .max_by_key(|(_, p)| fs::metadata(p).unwrap().len())
        .unwrap()
        .clone();
    assert_eq!(id.len(), 64, "pack file name {id} is not a 64-hex id");
    assert_eq!(
        path.parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap(),
        &id[..2]
    );
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::write(&path, &bytes).unwrap();

    let out = sv.run(&["check", "--read-data"]);
    assert_failed(&out);
    assert_ne!(out.code, Some(2), "not a usage error:\n{out}");
    assert_mentions(&out, &id);
    // The damaged photo is named too.
    assert_mentions(&out, "IMG_0001.HEIC");

    // Restoring the damaged file is not silent either.
    let target = tmp.path().join("r");
    let out = sv.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "IMG_0001.HEIC");
    assert!(
        !target.join("photos/IMG_0001.HEIC").exists(),
        "a file with a damaged blob was left under its real name:\n{out}"
    );
}

#[test]
fn check_read_data_names_the_damaged_pack_encrypted() {
    flipped_byte_is_found(true);
}

#[test]
fn check_read_data_names_the_damaged_pack_unencrypted() {
    flipped_byte_is_found(false);
}
