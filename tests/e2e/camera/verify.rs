//! `verify-device` with the library: a photo is safe to delete only with its edit, and the
//! photos kept only in iCloud are named as not backed up.

use serde_json::Value;

use super::Lab;

const ORIGINAL: &str = "DCIM/100APPLE/IMG_0002.HEIC";
const RENDER: &str = "PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments/FullSizeRender.jpg";

#[test]
fn icloud_only_photos_are_named_as_not_backed_up() {
    let lab = Lab::new(8, 12);
    let phone = lab.start();
    lab.snapshot(&phone);
    let out = lab.ok(&phone, &["verify-device", "--json"]);
    let v = out.json();
    assert_eq!(v["all_safe"], true, "{v}");
    assert_eq!(v["library"], "photos.sqlite", "{v}");
    let listed: Vec<&str> = v["icloud_only"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    let mut want = lab.phone_lib.icloud_only();
    want.sort();
    assert_eq!(listed, want, "{v}");

    let out = lab.ok(&phone, &["verify-device"]);
    let line = want[0].clone();
    assert!(
        out.stdout.lines().any(|l| l.starts_with("icloud")
            && l.contains(&line)
            && l.ends_with("not on this phone — not backed up by snapvault")),
        "{out}"
    );
    assert!(out.stdout.contains("Download and Keep Originals"), "{out}");
}

#[test]
fn a_photo_is_safe_to_delete_only_with_its_edit() {
    let lab = Lab::new(8, 13);
    let phone = lab.start();
    lab.snapshot(&phone);
    // The photo is edited again on the phone after the snapshot: the stored edit is old.
    let render = lab.lib.join(RENDER);
    let mut bytes = std::fs::read(&render).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x55;
    std::fs::write(&render, &bytes).unwrap();
    let out = lab.run(&phone, &["verify-device", "--json"]);
    assert_eq!(out.code, Some(5), "{out}");
    let v = out.json();
    let problems = v["problems"].as_array().unwrap();
    let status = |p: &str| {
        problems
            .iter()
            .find(|r| r["path"] == p)
            .map(|r| r["status"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(status(RENDER), "differs", "{v}");
    assert_eq!(status(ORIGINAL), "edit", "{v}");
    // Other photos are unaffected.
    assert_eq!(status("DCIM/100APPLE/IMG_0001.HEIC"), Value::Null, "{v}");

    let out = lab.run(&phone, &["verify-device"]);
    assert!(
        out.stdout.contains(&format!(
            "edit       {ORIGINAL}: stored, but its edit {RENDER} is not (differs)"
        )),
        "{out}"
    );
    assert!(
        out.stdout.contains("whose edit is not safely stored"),
        "{out}"
    );
}
