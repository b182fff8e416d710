//! What `snapshot iphone` pulls: DCIM, the edits, CPLAssets and the Photos database (with
//! its log, pulled together, and only when it changed); never thumbnails or caches.

use serde_json::Value;

use super::{Lab, files_under, is_cache};

#[test]
fn snapshot_holds_edits_icloud_downloads_and_the_database_but_no_caches() {
    let lab = Lab::new(12, 3);
    let phone = lab.start();
    let v = lab.snapshot(&phone);
    assert_eq!(v["incomplete"], Value::Bool(false), "{v}");

    let on_phone = files_under(&lab.lib);
    let caches: u64 = on_phone
        .iter()
        .filter(|(p, _)| is_cache(p))
        .map(|(_, d)| d.len() as u64)
        .sum();
    assert!(caches > 0, "the sample phone has no caches to leave out");
    let expected: std::collections::BTreeMap<String, Vec<u8>> =
        on_phone.into_iter().filter(|(p, _)| !is_cache(p)).collect();
    for want in [
        "PhotoData/Photos.sqlite",
        "PhotoData/Photos.sqlite-wal",
        "PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments/FullSizeRender.jpg",
        "PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments/Adjustments.plist",
        "DCIM/100APPLE/IMG_0002.AAE",
    ] {
        assert!(expected.contains_key(want), "sample lacks {want}");
    }
    assert!(
        expected
            .keys()
            .any(|p| p.starts_with("PhotoData/CPLAssets/"))
    );

    // A plain restore is the phone's media root, byte for byte, without the caches.
    let target = lab.path("restored");
    lab.sv.restore("latest", &target);
    let restored = files_under(&target);
    let missing: Vec<&String> = expected
        .keys()
        .filter(|p| !restored.contains_key(*p))
        .collect();
    let extra: Vec<&String> = restored
        .keys()
        .filter(|p| !expected.contains_key(*p))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    for (p, d) in &expected {
        assert!(restored[p] == *d, "{p} differs after restore");
    }

    // Each file crossed the cable once; the caches never did.
    let total: u64 = expected.values().map(|d| d.len() as u64).sum();
    let served = phone.afc_bytes_served();
    assert!(
        served >= total && served < total + caches,
        "pulling {total} bytes made the phone serve {served} (caches: {caches})"
    );
    assert_eq!(phone.open_handles(), 0);

    // The account counted the whole library, the half of it in the -wal too.
    let lib = &v["library"];
    assert_eq!(lib["source"], "photos.sqlite", "{v}");
    assert_eq!(lib["schema"], "ZASSET", "{v}");
    let assets = lab.phone_lib.assets.len() as u64;
    assert_eq!(lib["assets"], assets, "{v}");
    assert_eq!(lib["icloud_only"], 3, "{v}");
    assert_eq!(lib["backed_up"], assets - 3, "{v}");
    assert_eq!(lib["not_read"], 0, "{v}");
    assert_eq!(lib["recently_deleted"], 2, "{v}");
    assert_eq!(lib["edited"], lib["edits_backed_up"], "{v}");
}

#[test]
fn the_database_is_pulled_again_only_when_it_changed() {
    let mut lab = Lab::new(8, 4);
    let phone = lab.start();
    lab.snapshot(&phone);
    let first = phone.afc_bytes_served();

    // Nothing changed: nothing crosses the cable, the account is the same.
    let v = lab.snapshot(&phone);
    assert_eq!(
        phone.afc_bytes_served(),
        first,
        "an unchanged phone was read again"
    );
    let deleted = v["library"]["recently_deleted"].as_u64().expect("a count");
    assert_eq!(
        v["library"]["backed_up"],
        lab.phone_lib.assets.len() as u64 - 3,
        "{v}"
    );

    // Photos changed its database (a photo moved to Recently Deleted): only the database
    // files are pulled, all of them together.
    let victim = lab
        .phone_lib
        .assets
        .iter()
        .position(|a| !a.trashed)
        .expect("one");
    lab.phone_lib.assets[victim].trashed = true;
    lab.phone_lib.write_database().unwrap();
    let db_bytes: u64 = snapvault_photolib::DATABASE_FILES
        .iter()
        .filter_map(|f| std::fs::metadata(lab.lib.join(f)).ok())
        .map(|m| m.len())
        .sum();
    let v = lab.snapshot(&phone);
    assert_eq!(
        phone.afc_bytes_served() - first,
        db_bytes,
        "only the database files should have been pulled"
    );
    assert_eq!(v["library"]["recently_deleted"], deleted + 1, "{v}");
    assert!(
        v["summary"]["files_changed"].as_u64().unwrap_or(0) >= 1,
        "{v}"
    );
}

#[test]
fn the_account_line_says_what_the_backup_does_not_hold() {
    let lab = Lab::new(10, 5);
    let phone = lab.start();
    let out = lab.ok(&phone, &["snapshot", "iphone"]);
    let assets = lab.phone_lib.assets.len();
    let want = format!(
        "library: {assets} assets — {} backed up, 3 only in iCloud (not on this phone), 2 in Recently Deleted",
        assets - 3
    );
    assert!(out.stdout.contains(&want), "expected {want:?}:\n{out}");
    assert!(out.stdout.contains("edits: "), "{out}");
    assert!(
        out.stderr
            .contains("edits, iCloud downloads and library files in /PhotoData"),
        "{out}"
    );
}
