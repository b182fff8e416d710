//! Parity on remote repositories (issue 21): on S3 and SFTP, parity stays consistent
//! through snapshots, forget + prune (packs repacked and deleted, index files replaced,
//! snapshots removed) and repair: afterwards every file is covered, no parity is wrong, a
//! lost pack is rebuilt and the latest snapshot restores byte for byte.

use crate::common::*;
use crate::parity::{library, names};
use crate::remote::{Remote, no_servers, restore_matches};

/// `check --read-data --json` finds parity consistent: everything covered, nothing
/// damaged, lost, repairable or unreadable.
fn parity_clean(r: &Remote, after: &str) {
    let v = r.ok(&["check", "--read-data", "--json"]).json();
    let p = &v["parity"];
    assert_eq!(p["level"], 10, "{} after {after}: {v}", r.url);
    assert_eq!(p["files_unprotected"], 0, "{} after {after}: {v}", r.url);
    assert!(p["parity_files"].as_u64().unwrap() > 0, "{v}");
    for list in ["repairable", "lost"] {
        assert!(names(&v, list).is_empty(), "{} after {after}: {v}", r.url);
    }
    for list in ["parity_files_damaged", "parity_files_unreadable"] {
        assert_eq!(
            p[list],
            serde_json::json!([]),
            "{} after {after}: {v}",
            r.url
        );
    }
}

#[test]
fn parity_on_s3_and_sftp_stays_consistent_through_forget_prune_and_repair() {
    if no_servers() {
        return;
    }
    let work = tempdir();
    let src = work.path().join("library");
    library(&src);
    let src_s = src.display().to_string();
    for r in [Remote::s3("parity-prune"), Remote::sftp("parity-prune")] {
        r.ok(&["init", "--parity", "10"]);
        r.ok(&["snapshot", &src_s]);
        write_random(&src.join("DCIM/IMG_0020.HEIC"), 20, 400_000);
        r.ok(&["snapshot", &src_s]);
        std::fs::remove_file(src.join("DCIM/IMG_0020.HEIC")).unwrap();
        write_random(&src.join("DCIM/IMG_0021.JPG"), 21, 250_000);
        r.ok(&["snapshot", &src_s]);
        parity_clean(&r, "three snapshots");
        let v = r
            .ok(&[
                "forget",
                "--keep-last",
                "1",
                "--prune",
                "--max-unused",
                "0",
                "--allow-photo-loss",
                "--json",
            ])
            .json();
        assert!(v.to_string().contains("packs_removed"), "{v}");
        parity_clean(&r, "forget --prune");
        restore_matches(&r, "latest", &src);
        // Put the library back as it was for the next remote.
        std::fs::remove_file(src.join("DCIM/IMG_0021.JPG")).unwrap();
    }

    // On SFTP the repository is a folder this machine can reach: after the prune, lose the
    // biggest pack and damage a sector of an index file; repair rebuilds both from parity.
    let r = Remote::sftp("parity-prune-lost");
    r.ok(&["init", "--parity", "10"]);
    r.ok(&["snapshot", &src_s]);
    write_random(&src.join("DCIM/IMG_0022.HEIC"), 22, 300_000);
    r.ok(&["snapshot", &src_s]);
    r.ok(&[
        "forget",
        "--keep-last",
        "1",
        "--prune",
        "--max-unused",
        "0",
        "--allow-photo-loss",
    ]);
    parity_clean(&r, "forget --prune");
    let folder = r.sftp_folder();
    let (pack, path) = pack_files(&folder)
        .into_iter()
        .max_by_key(|(_, p)| std::fs::metadata(p).unwrap().len())
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    let index = names_in(&folder, "index").pop().unwrap();
    let ipath = folder.join("index").join(&index);
    let mut b = std::fs::read(&ipath).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x10;
    std::fs::write(&ipath, b).unwrap();
    let out = r.run(&["check", "--read-data", "--json"]);
    assert_eq!(out.code, Some(4), "{out}");
    let v = out.json();
    let repairable = names(&v, "repairable");
    assert!(repairable.contains(&format!("pack {pack}")), "{v}");
    assert!(repairable.contains(&format!("index {index}")), "{v}");
    let out = r.ok(&["repair", "--apply"]);
    assert_mentions(&out, &format!("repaired from parity: pack {pack}"));
    assert_mentions(&out, &format!("repaired from parity: index {index}"));
    parity_clean(&r, "repair --apply");
    restore_matches(&r, "latest", &src);
}
