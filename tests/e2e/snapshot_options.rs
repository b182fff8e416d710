//! `snapshot` options and their edges: `--time` for imports of old backups (so retention
//! policies can be tried), `--parent` naming a snapshot whose data was pruned, and
//! `snapshot iphone` without a repository (said before the phone is touched).

use std::fs;
use std::path::Path;

use serde_json::Value;
use snapvault_fakephone::{FakePhone, FakePhoneConfig};

use crate::common::*;

fn photos(dir: &Path, seed: u64) {
    write_random(&dir.join("IMG_0001.JPG"), seed, 40_000);
    write_random(&dir.join("sub/IMG_0002.JPG"), seed + 1, 50_000);
}

#[test]
fn time_dates_imports_and_retention_policies_use_it() {
    let tmp = tempdir();
    let src = tmp.path().join("old");
    photos(&src, 1);
    let sv = Sv::init(tmp.path().join("repo"), false);
    for t in ["2019-07-01 09:00", "2019-07-01 18:30:00", "2019-07-02"] {
        sv.snapshot(&[&src], &["--time", t]);
    }
    let times: Vec<String> = sv
        .snapshots()
        .iter()
        .map(|s| s["time"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        times,
        [
            "2019-07-01T09:00:00Z",
            "2019-07-01T18:30:00Z",
            "2019-07-02T00:00:00Z"
        ]
    );
    // One a day: the morning snapshot of 1 July goes.
    sv.ok(&["forget", "--keep-daily", "2"]);
    let left: Vec<Value> = sv.snapshots().iter().map(|s| s["time"].clone()).collect();
    assert_eq!(left, ["2019-07-01T18:30:00Z", "2019-07-02T00:00:00Z"]);

    for bad in ["yesterday", "2019-02-30", "2999-01-01"] {
        let out = sv.run(&["snapshot", "--time", bad, src.to_str().unwrap()]);
        assert_failed(&out);
        assert!(out.stderr.contains("--time"), "{out}");
    }
    assert_eq!(sv.snapshots().len(), 2);
}

#[test]
fn parent_whose_data_was_pruned_reads_again_and_exits_0_once() {
    let tmp = tempdir();
    let src = tmp.path().join("p");
    photos(&src, 7);
    let sv = Sv::init(tmp.path().join("repo"), false);
    let v = sv.snapshot(&[&src], &[]);
    let old = v["id"].as_str().unwrap().to_string();
    let file = sv.repo.join("snapshots").join(&old);
    let saved = fs::read(&file).unwrap();
    sv.ok(&["forget", "--allow-photo-loss", &old]);
    sv.ok(&["prune"]);
    // The snapshot file comes back (a replayed copy); its data does not.
    fs::write(&file, &saved).unwrap();
    // A new photo, so the new snapshot's trees differ from the pruned ones.
    write_random(&src.join("sub/IMG_0003.JPG"), 9, 30_000);

    let out = sv.run(&[
        "snapshot",
        "--json",
        "--parent",
        &old,
        src.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(0), "{out}");
    let v = out.json();
    assert_eq!(summary_u64(&v, "files_total"), 3, "{v}");
    assert_eq!(summary_u64(&v, "files_unchanged"), 0, "{v}");
    assert_eq!(sv.snapshots().len(), 2);
    let target = tmp.path().join("restored");
    sv.restore("latest", &target);
    assert_same_tree(&src, &target.join("p"));
}

#[test]
fn snapshot_iphone_without_a_repository_says_so_before_connecting() {
    let tmp = tempdir();
    let lib = tmp.path().join("phone");
    snapvault_media::sample::library(&lib, 2, 3).expect("sample library");
    let phone = FakePhone::start(FakePhoneConfig::new(&lib)).expect("fake phone");
    let mut c = base_command();
    c.env("USBMUXD_SOCKET_ADDRESS", phone.usbmuxd_address());
    c.args(["snapshot", "iphone"]);
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_failed(&out);
    assert!(out.stderr.contains("no repository given"), "{out}");
    assert!(!out.stderr.contains("iPhone"), "{out}");
    assert_eq!(phone.connections(), 0, "the phone was contacted:\n{out}");
}
