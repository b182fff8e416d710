//! Machine-readable output: `snapshots --json`, `ls --json`, tags.

use std::collections::BTreeSet;
use std::os::unix::fs::symlink;

use serde_json::Value;

use crate::common::*;

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn snapshots_json_lists_every_snapshot_with_its_fields() {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    write_random(&src.join("IMG_0001.JPG"), 1, 1000);
    let sv = Sv::init(tmp.path().join("repo"), false);

    let out = sv.ok(&["snapshots", "--json"]);
    assert_eq!(out.json(), Value::Array(vec![]), "empty repository: {out}");

    let s1 = sv.snapshot(&[&src], &["--tag", "iphone", "--tag", "before-trip"]);
    let s2 = sv.snapshot(&[&src], &[]);
    let list = sv.snapshots();
    assert_eq!(list.len(), 2, "{list:?}");
    let src_abs = src.to_str().unwrap();
    for (s, want) in list.iter().zip([&s1, &s2]) {
        let id = s["id"].as_str().expect("id is a string");
        assert!(is_hex(id, 64), "id {id}");
        assert_eq!(s["id"], want["id"], "listed oldest first");
        let short = s["short_id"].as_str().expect("short_id is a string");
        assert!(
            !short.is_empty() && id.starts_with(short),
            "short_id {short} of {id}"
        );
        assert_eq!(want["short_id"], short);
        let time = s["time"].as_str().expect("time is a string");
        let b = time.as_bytes();
        assert!(
            time.len() >= 20
                && b[4] == b'-'
                && b[7] == b'-'
                && b[10] == b'T'
                && time.ends_with('Z'),
            "time {time} is not RFC 3339 UTC"
        );
        assert!(s["tags"].is_array(), "tags: {s}");
        let paths = s["source"]["paths"].as_array().expect("source.paths");
        assert_eq!(paths, &vec![Value::from(src_abs)], "{s}");
        assert_eq!(s["files"], 1, "{s}");
        assert_eq!(s["size"], 1000, "{s}");
    }
    let tags: BTreeSet<&str> = list[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tags, BTreeSet::from(["iphone", "before-trip"]));
    assert_eq!(list[1]["tags"], Value::Array(vec![]));
    assert!(list[0]["time"].as_str() <= list[1]["time"].as_str());

    // Filtering by tag.
    let tagged = sv
        .ok(&["snapshots", "--json", "--tag", "before-trip"])
        .json();
    let tagged = tagged.as_array().unwrap();
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0]["id"], s1["id"]);

    // The human table shows ids and tags too.
    let table = sv.ok(&["snapshots"]);
    assert!(
        table.stdout.contains(s1["short_id"].as_str().unwrap()),
        "{table}"
    );
    assert!(table.stdout.contains("iphone"), "{table}");
}

#[test]
fn ls_json_lists_the_expected_paths() {
    let tmp = tempdir();
    let src = tmp.path().join("lib");
    write_random(&src.join("DCIM/100APPLE/IMG_0001.HEIC"), 1, 1234);
    write_random(&src.join("DCIM/100APPLE/IMG_0001.MOV"), 2, 4321);
    write_file(&src.join("DCIM/empty.txt"), b"");
    std::fs::create_dir_all(src.join("Empty Album")).unwrap();
    symlink("DCIM/100APPLE/IMG_0001.HEIC", src.join("cover.heic")).unwrap();
    let sv = Sv::init(tmp.path().join("repo"), false);
    let s = sv.snapshot(&[&src], &[]);

    let rows = sv.ok(&["ls", "latest", "--json"]).json();
    let rows = rows.as_array().expect("ls --json is an array");
    let got: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("lib", "dir"),
        ("lib/DCIM", "dir"),
        ("lib/DCIM/100APPLE", "dir"),
        ("lib/DCIM/100APPLE/IMG_0001.HEIC", "file"),
        ("lib/DCIM/100APPLE/IMG_0001.MOV", "file"),
        ("lib/DCIM/empty.txt", "file"),
        ("lib/Empty Album", "dir"),
        ("lib/cover.heic", "symlink"),
    ]
    .iter()
    .map(|(p, t)| (p.to_string(), t.to_string()))
    .collect();
    assert_eq!(got, want);
    let by_path = |p: &str| rows.iter().find(|r| r["path"] == p).unwrap();
    assert_eq!(by_path("lib/DCIM/100APPLE/IMG_0001.MOV")["size"], 4321);
    assert_eq!(
        by_path("lib/cover.heic")["target"],
        "DCIM/100APPLE/IMG_0001.HEIC"
    );

    // A sub-path, by id prefix.
    let prefix = &s["id"].as_str().unwrap()[..10];
    let sub = sv.ok(&["ls", prefix, "lib/DCIM/100APPLE", "--json"]).json();
    let paths: BTreeSet<&str> = sub
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        BTreeSet::from([
            "lib/DCIM/100APPLE",
            "lib/DCIM/100APPLE/IMG_0001.HEIC",
            "lib/DCIM/100APPLE/IMG_0001.MOV"
        ])
    );
    // A path that is not there is an error.
    let out = sv.run(&["ls", "latest", "lib/NOPE"]);
    assert_failed(&out);
}

#[test]
fn snapshot_json_summary_fields() {
    let tmp = tempdir();
    let src = tmp.path().join("p");
    write_random(&src.join("a.jpg"), 1, 5000);
    let sv = Sv::init(tmp.path().join("repo"), false);
    let s = sv.snapshot(&[&src], &["--tag", "x"]);
    assert!(is_hex(s["id"].as_str().unwrap(), 64), "{s}");
    assert_eq!(s["incomplete"], false);
    for f in [
        "files_new",
        "files_changed",
        "files_unchanged",
        "bytes_read",
        "bytes_added",
        "files_total",
        "bytes_total",
    ] {
        assert!(s["summary"][f].is_u64(), "summary.{f} missing: {s}");
    }
    // The plain summary says the same in words.
    write_random(&src.join("b.jpg"), 2, 5000);
    let out = sv.ok(&["snapshot", src.to_str().unwrap()]);
    assert!(out.stdout.contains("1 new"), "{out}");
    assert!(out.stdout.contains("1 unchanged"), "{out}");
}
