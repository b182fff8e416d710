//! The "no longer on the source" summary of `snapshot` and `diff` count the same files.

use std::fs;

use serde_json::Value;

use crate::common::*;

#[test]
fn vanished_summary_and_diff_count_the_same_files() {
    let tmp = tempdir();
    let src = tmp.path().join("iPhone");
    snapvault_media::sample::library(&src, 5, 41).expect("sample library");
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    // A Live Photo with an edit: photo, video and the edit sidecar (.AAE).
    let victim = src.join("DCIM/100APPLE/IMG_0003");
    for ext in ["HEIC", "MOV", "AAE"] {
        fs::remove_file(victim.with_extension(ext)).unwrap();
    }
    let s2 = sv.snapshot(&[&src], &[]);
    let diff = sv.ok(&["diff", "latest~1", "latest", "--json"]).json();
    let removed = diff["removed"].as_array().expect("removed").len() as u64;
    assert_eq!(removed, 3, "{diff}");
    assert_eq!(s2["vanished"]["count"].as_u64(), Some(removed), "{s2}");
    assert_eq!(s2["vanished"]["kinds"]["sidecar"], Value::from(1), "{s2}");

    // The text says the same number, and what it counts.
    fs::remove_file(src.join("DCIM/100APPLE/IMG_0001.HEIC")).unwrap();
    fs::remove_file(src.join("DCIM/100APPLE/IMG_0001.MOV")).unwrap();
    let out = sv.ok(&["snapshot", src.to_str().unwrap()]);
    assert_mentions(
        &out,
        "2 files from the previous snapshot are no longer on the source (1 photo, 1 video",
    );
    let out = sv.ok(&["diff", "latest~1", "latest"]);
    assert_mentions(&out, "2 removed (1 photo, 1 video)");
}
