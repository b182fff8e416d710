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

/// "Optimize iPhone Storage" sends IMG_0001 (a Live Photo) to iCloud: its files leave DCIM,
/// the database keeps the asset as iCloud-only. IMG_0003 is really deleted.
fn optimize_one_delete_one(lab: &mut Lab) {
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
}

#[test]
fn a_photo_that_moved_to_icloud_is_not_reported_as_deleted() {
    let mut lab = Lab::new(8, 8);
    let phone = lab.start();
    lab.snapshot(&phone);
    optimize_one_delete_one(&mut lab);
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

/// `diff`, `photos` and `browse` say the same as the snapshot summary: a photo whose original
/// went to iCloud is "only in iCloud", not removed, not vanished from the phone.
#[test]
fn diff_photos_and_browse_do_not_call_icloud_only_photos_deleted() {
    let mut lab = Lab::new(8, 8);
    let phone = lab.start();
    let first = lab.snapshot(&phone)["id"].as_str().unwrap().to_string();
    optimize_one_delete_one(&mut lab);
    let second = lab.snapshot(&phone)["id"].as_str().unwrap().to_string();
    let paths = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["path"].as_str().unwrap().to_string())
            .collect()
    };

    // diff: IMG_0003 removed, IMG_0001 (and its motion) now only in iCloud.
    let d = lab.ok(&phone, &["diff", &first, &second, "--json"]).json();
    let removed = paths(&d["removed"]);
    assert!(
        removed.contains(&"DCIM/100APPLE/IMG_0003.HEIC".to_string()),
        "{d}"
    );
    assert!(
        !removed.iter().any(|p| p.contains("IMG_0001")),
        "an iCloud-only photo counted as removed: {d}"
    );
    let moved = paths(&d["to_icloud"]);
    assert!(
        moved.contains(&"DCIM/100APPLE/IMG_0001.HEIC".to_string()),
        "{d}"
    );
    let out = lab.ok(&phone, &["diff", &first, &second]);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("i DCIM/100APPLE/IMG_0001.HEIC") && l.contains("only in iCloud")),
        "{out}"
    );
    assert!(
        out.stdout.contains("now only in iCloud, not on the phone"),
        "{out}"
    );

    // photos: IMG_0001 is only in iCloud now, IMG_0003 is no longer on the phone.
    let out = lab.ok(&phone, &["photos"]);
    let line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.contains(&format!("DCIM/100APPLE/{name}")))
            .unwrap_or_else(|| panic!("{name} not listed:\n{out}"))
            .to_string()
    };
    let one = line("IMG_0001.HEIC");
    assert!(one.contains("only in iCloud now, not deleted"), "{one}");
    assert!(!one.contains("no longer on the phone"), "{one}");
    assert!(
        line("IMG_0003.HEIC").contains("no longer on the phone"),
        "{out}"
    );
    let rows = lab.ok(&phone, &["photos", "--json"]).json();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "DCIM/100APPLE/IMG_0001.HEIC")
        .expect("IMG_0001 listed")
        .clone();
    assert_eq!(row["only_in_icloud"], true, "{row}");

    // browse: the "vanished from the phone" filter holds IMG_0003, not IMG_0001; IMG_0001's
    // page says it is only in iCloud.
    let cache = lab.path("cache");
    let srv = crate::browse::serve(&lab.sv, &cache, &[]);
    let (code, _, body) = srv.get("/?f=vanished");
    assert_eq!(code, 200);
    let page = String::from_utf8(body).unwrap();
    let months: Vec<&str> = page
        .split("data-month=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    let mut vanished = Vec::new();
    for m in &months {
        let (_, _, body) = srv.get(&format!("/month/{m}?f=vanished"));
        let html = String::from_utf8(body).unwrap();
        vanished.extend(
            html.split("title=\"")
                .skip(1)
                .filter_map(|s| s.split(' ').next())
                .map(str::to_string),
        );
    }
    assert!(
        vanished.contains(&"IMG_0003.HEIC".to_string()),
        "{vanished:?}"
    );
    assert!(
        !vanished.iter().any(|n| n.starts_with("IMG_0001")),
        "an iCloud-only photo is in the vanished filter: {vanished:?}"
    );
    let taken = row["taken"].as_str().unwrap();
    let (_, _, body) = srv.get(&format!("/month/{}", &taken[..7]));
    let html = String::from_utf8(body).unwrap();
    let link = html
        .split("href=\"/photo/")
        .skip(1)
        .find(|s| s.contains("title=\"IMG_0001.HEIC"))
        .and_then(|s| s.split('"').next())
        .expect("IMG_0001 in its month")
        .to_string();
    let (_, _, body) = srv.get(&format!("/photo/{link}"));
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("only in iCloud now"), "{html}");
    assert!(!html.contains("only the backups hold it"), "{html}");
}
