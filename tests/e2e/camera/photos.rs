//! `photos` filters on what the phone's library says: --edited, --icloud-only, --burst,
//! --favorite, --album, --deleted, and the fields --json carries.

use std::collections::BTreeSet;

use serde_json::Value;
use snapvault_photolib::fixture::FixtureAsset;

use super::Lab;

fn paths(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|r| r["path"].as_str().expect("a path").to_string())
        .collect()
}

/// The stills of the assets that pass `f` and whose original is on the phone.
fn stills(lab: &Lab, f: impl Fn(&FixtureAsset) -> bool) -> BTreeSet<String> {
    lab.phone_lib
        .assets
        .iter()
        .filter(|a| !a.cloud_only && f(a))
        .map(|a| format!("{}/{}", a.directory, a.filename))
        .collect()
}

/// The rows of `photos ARGS --json` that are stills (not Live Photo videos, not Apple's
/// IMG_E renditions: those belong to their still and come with it).
fn listed(lab: &Lab, phone: &snapvault_fakephone::FakePhone, args: &[&str]) -> BTreeSet<String> {
    let mut a = vec!["photos", "--json"];
    a.extend_from_slice(args);
    paths(&lab.ok(phone, &a).json())
        .into_iter()
        .filter(|p| !p.ends_with(".MOV") && !p.contains("/IMG_E"))
        .collect()
}

#[test]
fn photos_filters_on_the_library() {
    let lab = Lab::new(12, 9);
    let phone = lab.start();
    lab.snapshot(&phone);

    let want = stills(&lab, |a| a.favorite);
    assert!(want.len() >= 2, "{want:?}");
    assert_eq!(listed(&lab, &phone, &["--favorite"]), want);

    let want = stills(&lab, |a| a.burst.is_some());
    assert_eq!(want.len(), 3);
    assert_eq!(listed(&lab, &phone, &["--burst"]), want);

    let want = stills(&lab, |a| a.albums.iter().any(|x| x == "Holidays"));
    assert!(
        want.iter().any(|p| p.starts_with("PhotoData/CPLAssets/")),
        "{want:?}"
    );
    assert_eq!(listed(&lab, &phone, &["--album", "holidays"]), want);

    let want = stills(&lab, |a| a.trashed);
    assert_eq!(want.len(), 2);
    assert_eq!(listed(&lab, &phone, &["--deleted"]), want);

    // Edited: the originals, with their edit named beside them; the edit is no photo of
    // its own in the listing.
    let want = stills(&lab, |a| a.adjusted);
    let got = listed(&lab, &phone, &["--edited"]);
    assert_eq!(got, want);
    let all = lab.ok(&phone, &["photos", "--json"]).json();
    assert!(
        paths(&all)
            .iter()
            .all(|p| !p.starts_with("PhotoData/Mutations/")),
        "an edit is listed as a photo: {all}"
    );
    let row = all
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "DCIM/100APPLE/IMG_0002.HEIC")
        .unwrap_or_else(|| panic!("IMG_0002 not listed: {all}"));
    assert_eq!(row["edited"], true, "{row}");
    assert_eq!(
        row["edit_path"],
        "PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments/FullSizeRender.jpg",
        "{row}"
    );
    assert_eq!(row["backed_up"], true, "{row}");
    assert_eq!(row["library"]["favorite"], false, "{row}");
    assert_eq!(
        row["library"]["albums"],
        serde_json::json!(["Family"]),
        "{row}"
    );
    assert_eq!(row["library"]["icloud_only"], false, "{row}");
    let text = lab.ok(&phone, &["photos", "--edited"]);
    assert!(
        text.stdout.contains(
            "[edited: PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments/FullSizeRender.jpg]"
        ),
        "{text}"
    );
}

#[test]
fn photos_icloud_only_names_what_the_backup_does_not_hold() {
    let lab = Lab::new(8, 10);
    let phone = lab.start();
    // Before any snapshot knows the library, nothing can be said.
    let out = lab.ok(&phone, &["photos", "--icloud-only"]);
    assert!(out.stdout.contains("is unknown"), "{out}");

    lab.snapshot(&phone);
    let v = lab
        .ok(&phone, &["photos", "--icloud-only", "--json"])
        .json();
    let want: BTreeSet<String> = lab.phone_lib.icloud_only().into_iter().collect();
    assert_eq!(paths(&v), want, "{v}");
    for r in v.as_array().unwrap() {
        assert_eq!(r["backed_up"], false, "{r}");
        assert_eq!(r["library"]["icloud_only"], true, "{r}");
        assert!(r["taken"].is_string(), "{r}");
    }
    // Combined with another filter, and in words.
    let v = lab
        .ok(&phone, &["photos", "--icloud-only", "--favorite", "--json"])
        .json();
    assert_eq!(paths(&v).len(), 1, "{v}");
    let out = lab.ok(&phone, &["photos", "--icloud-only"]);
    assert!(
        out.stdout
            .contains("3 photo(s) and video(s) only in iCloud: this backup does not hold them"),
        "{out}"
    );
    assert!(out.stdout.contains("Download and Keep Originals"), "{out}");
}
