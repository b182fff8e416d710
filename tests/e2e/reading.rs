//! Reading what is stored (issue 24.10): `ls` shows real folder times, sizes a person reads
//! and capture dates; `photos` marks photos that are no longer on the phone.

use std::fs;

use snapvault_fakephone::{FakePhone, FakePhoneConfig};

use crate::common::*;

fn snapshot_phone(sv: &Sv, lib: &std::path::Path) {
    let phone = FakePhone::start(FakePhoneConfig::new(lib)).expect("start the fake iPhone");
    let out = sv.run_env(
        &["snapshot", "iphone"],
        &[("USBMUXD_SOCKET_ADDRESS", &phone.usbmuxd_address())],
    );
    assert_eq!(out.code, Some(0), "{out}");
}

#[test]
fn ls_shows_folder_times_human_sizes_and_capture_dates() {
    let tmp = tempdir();
    let lib = tmp.path().join("phone");
    fs::create_dir_all(&lib).unwrap();
    snapvault_media::sample::library(&lib, 6, 3).expect("sample library");
    let sv = Sv::init(tmp.path().join("repo"), false);
    snapshot_phone(&sv, &lib);

    let out = sv.ok(&["ls", "latest"]);
    assert!(
        !out.stdout.contains("1970-01-01"),
        "folders dated 1970:\n{out}"
    );
    let photo = out
        .stdout
        .lines()
        .find(|l| l.ends_with("IMG_0001.HEIC") || l.contains("IMG_0001.HEIC "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(photo.contains("KiB") || photo.contains("MiB"), "{photo}");
    assert!(photo.contains("taken 2023-"), "no capture date: {photo}");

    // Raw bytes on request, and always in JSON.
    let raw = sv.ok(&["ls", "latest", "--bytes"]);
    let line = raw
        .stdout
        .lines()
        .find(|l| l.contains("IMG_0001.HEIC"))
        .unwrap_or_else(|| panic!("{raw}"));
    let v = sv.ok(&["ls", "latest", "--json"]).json();
    let size = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("IMG_0001.HEIC"))
        })
        .and_then(|r| r["size"].as_u64())
        .unwrap_or_else(|| panic!("{v}"));
    assert!(line.contains(&format!(" {size} ")), "{line} (size {size})");
}

#[test]
fn photos_marks_photos_that_are_no_longer_on_the_phone() {
    let tmp = tempdir();
    let lib = tmp.path().join("phone");
    fs::create_dir_all(&lib).unwrap();
    snapvault_media::sample::library(&lib, 6, 4).expect("sample library");
    let sv = Sv::init(tmp.path().join("repo"), false);
    snapshot_phone(&sv, &lib);
    fs::remove_file(lib.join("DCIM/100APPLE/IMG_0002.HEIC")).unwrap();
    snapshot_phone(&sv, &lib);

    let out = sv.ok(&["photos"]);
    let gone = out
        .stdout
        .lines()
        .find(|l| l.contains("IMG_0002.HEIC"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(gone.contains("no longer on the phone"), "{gone}");
    let kept = out
        .stdout
        .lines()
        .find(|l| l.contains("IMG_0001.HEIC"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(!kept.contains("no longer"), "{kept}");

    let v = sv.ok(&["photos", "--json"]).json();
    let row = |name: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|r| r["path"].as_str().is_some_and(|p| p.ends_with(name)))
            .unwrap_or_else(|| panic!("{name}: {v}"))
            .clone()
    };
    assert_eq!(row("IMG_0002.HEIC")["on_source"], false);
    assert_eq!(row("IMG_0001.HEIC")["on_source"], true);
}
