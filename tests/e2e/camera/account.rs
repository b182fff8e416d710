//! The library account when the database cannot be used, and photos that left the phone
//! for iCloud.

use serde_json::Value;

use super::Lab;

#[test]
fn an_unreadable_database_is_a_warning_and_the_account_counts_files() {
    let lab = Lab::new(6, 6);
    let db = lab.lib.join(snapvault_photolib::DATABASE);
    std::fs::write(&db, vec![0x5a; 9000]).unwrap();
    for f in ["PhotoData/Photos.sqlite-wal", "PhotoData/Photos.sqlite-shm"] {
        let _ = std::fs::remove_file(lab.lib.join(f));
    }
    let phone = lab.start();
    let out = lab.ok(&phone, &["snapshot", "iphone"]);
    assert!(
        out.stderr
            .contains("warning: the Photos library database could not be read"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("photo and video files backed up (Photos.sqlite could not be used:"),
        "{out}"
    );
    let v = lab.snapshot(&phone);
    assert_eq!(v["library"]["source"], "files", "{v}");
    assert_eq!(v["library"]["icloud_only"], Value::Null, "{v}");
    assert!(v["library"]["backed_up"].as_u64().unwrap_or(0) >= 6, "{v}");
}

#[test]
fn a_database_the_phone_cannot_hand_over_does_not_stop_the_snapshot() {
    let lab = Lab::new(6, 7);
    let mut cfg = lab.cfg();
    cfg.icloud_only = vec!["PhotoData/Photos.sqlite".into()];
    let phone = snapvault_fakephone::FakePhone::start(cfg).unwrap();
    let out = lab.run(&phone, &["snapshot", "iphone", "--json"]);
    // The database file itself could not be read: the snapshot is incomplete (exit 3),
    // everything else is in it, and the account says it counted files.
    assert_eq!(out.code, Some(3), "{out}");
    let v = out.json();
    assert_eq!(v["library"]["source"], "files", "{v}");
    assert!(
        v["library"]["note"]
            .as_str()
            .is_some_and(|n| n.contains("could not be copied")),
        "{v}"
    );
}

#[test]
fn a_photo_that_moved_to_icloud_is_not_reported_as_deleted() {
    let mut lab = Lab::new(8, 8);
    let phone = lab.start();
    lab.snapshot(&phone);
    // "Optimize iPhone Storage" sends IMG_0001 (a Live Photo) to iCloud: its files leave
    // DCIM, the database keeps the asset as iCloud-only. IMG_0003 is really deleted.
    for f in [
        "IMG_0001.HEIC",
        "IMG_0001.MOV",
        "IMG_0003.HEIC",
        "IMG_0003.MOV",
        "IMG_0003.AAE",
    ] {
        let _ = std::fs::remove_file(lab.lib.join("DCIM/100APPLE").join(f));
    }
    for a in lab.phone_lib.assets.iter_mut() {
        if a.filename == "IMG_0001.HEIC" {
            a.cloud_only = true;
        }
    }
    lab.phone_lib
        .assets
        .retain(|a| a.filename != "IMG_0003.HEIC");
    lab.phone_lib.write_database().unwrap();
    let out = lab.ok(&phone, &["snapshot", "iphone"]);
    assert!(
        out.stdout
            .contains("now only in iCloud: DCIM/100APPLE/IMG_0001.HEIC"),
        "{out}"
    );
    assert!(
        out.stdout.contains("gone: DCIM/100APPLE/IMG_0003.HEIC"),
        "{out}"
    );
    assert!(
        !out.stdout.contains("gone: DCIM/100APPLE/IMG_0001"),
        "{out}"
    );
    assert!(
        out.stdout.contains("4 only in iCloud (not on this phone)"),
        "{out}"
    );
    assert!(!out.stdout.contains("not read from the phone"), "{out}");
}
