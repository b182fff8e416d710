//! `snapvault find NAME|GLOB` (issue 24.3): every snapshot and date that holds a match.

use std::fs;

use crate::common::*;

#[test]
fn find_lists_every_snapshot_that_holds_a_match() {
    let tmp = tempdir();
    let src = tmp.path().join("iPhone");
    write_random(&src.join("DCIM/100APPLE/IMG_0102.JPG"), 1, 5_000);
    write_random(&src.join("DCIM/100APPLE/IMG_0103.JPG"), 2, 5_000);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    fs::remove_file(src.join("DCIM/100APPLE/IMG_0102.JPG")).unwrap();
    write_random(&src.join("DCIM/101APPLE/IMG_0102.JPG"), 3, 6_000);
    sv.snapshot(&[&src], &[]);
    fs::remove_dir_all(src.join("DCIM/101APPLE")).unwrap();
    sv.snapshot(&[&src], &[]);
    let ids: Vec<String> = sv
        .snapshots()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);

    // A bare name matches at any depth; each snapshot holding it is named with its date.
    let out = sv.ok(&["find", "IMG_0102.JPG"]);
    assert!(out.stdout.contains(&ids[0][..8]), "{out}");
    assert!(out.stdout.contains(&ids[1][..8]), "{out}");
    assert!(!out.stdout.contains(&ids[2][..8]), "{out}");
    assert!(
        out.stdout.contains("iPhone/DCIM/100APPLE/IMG_0102.JPG"),
        "{out}"
    );
    assert!(
        out.stdout.contains("iPhone/DCIM/101APPLE/IMG_0102.JPG"),
        "{out}"
    );

    // A glob, as JSON: one object per snapshot with a match.
    let v = sv.ok(&["find", "IMG_01*.JPG", "--json"]).json();
    let rows = v.as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(rows.len(), 3, "{v}");
    let first = rows
        .iter()
        .find(|r| r["snapshot"] == ids[0].as_str())
        .unwrap_or_else(|| panic!("{v}"));
    assert!(first["time"].is_string(), "{first}");
    let paths: Vec<&str> = first["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "iPhone/DCIM/100APPLE/IMG_0102.JPG",
            "iPhone/DCIM/100APPLE/IMG_0103.JPG"
        ],
        "{first}"
    );

    // Case need not match with --ignore-case.
    let out = sv.ok(&["find", "img_0103.jpg", "--ignore-case"]);
    assert!(out.stdout.contains("IMG_0103.JPG"), "{out}");

    // Nothing found: said plainly, exit 1.
    let out = sv.run(&["find", "IMG_9999.JPG"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, "IMG_9999.JPG");
}
