//! `restore --date`: an edit comes with its original — beside it as `IMG_E1234.JPG` with
//! `--layout date`, at its own path with `--layout original` — and `--originals-only` /
//! `--edits-only` choose one.

use std::path::Path;

use super::{Lab, files_under};

const ORIGINAL: &str = "DCIM/100APPLE/IMG_0002.HEIC";
const RENDER: &str = "PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments/FullSizeRender.jpg";

/// The month IMG_0002 was taken (`YYYY-MM`) and its date folder (`YYYY/MM`).
fn month(lab: &Lab, phone: &snapvault_fakephone::FakePhone) -> (String, String) {
    let v = lab.ok(phone, &["photos", "--json"]).json();
    let row = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == ORIGINAL)
        .unwrap_or_else(|| panic!("{ORIGINAL} not listed: {v}"));
    let taken = row["taken"].as_str().expect("a date");
    (taken[..7].to_string(), taken[..7].replace('-', "/"))
}

fn restore(
    lab: &Lab,
    phone: &snapvault_fakephone::FakePhone,
    name: &str,
    args: &[&str],
) -> std::path::PathBuf {
    let target = lab.path(name);
    let mut a = vec!["restore", "--target", target.to_str().unwrap()];
    a.extend_from_slice(args);
    lab.ok(phone, &a);
    target
}

fn names(dir: &Path) -> Vec<String> {
    files_under(dir).into_keys().collect()
}

#[test]
fn an_edit_is_restored_beside_its_original() {
    let lab = Lab::new(12, 11);
    let phone = lab.start();
    lab.snapshot(&phone);
    let (m, folder) = month(&lab, &phone);
    let render = std::fs::read(lab.lib.join(RENDER)).unwrap();
    let original = std::fs::read(lab.lib.join(ORIGINAL)).unwrap();

    let t = restore(&lab, &phone, "by-date", &["--date", &m, "--layout", "date"]);
    let got = files_under(&t);
    assert_eq!(
        got.get(&format!("{folder}/IMG_0002.HEIC")),
        Some(&original),
        "{:?}",
        names(&t)
    );
    assert_eq!(
        got.get(&format!("{folder}/IMG_E0002.JPG")),
        Some(&render),
        "{:?}",
        names(&t)
    );
    assert!(
        got.keys()
            .all(|p| !p.contains("FullSizeRender") && !p.ends_with(".plist")),
        "an edit kept its Mutations name: {:?}",
        names(&t)
    );

    let t = restore(
        &lab,
        &phone,
        "originals",
        &["--date", &m, "--layout", "date", "--originals-only"],
    );
    let got = files_under(&t);
    assert!(
        got.contains_key(&format!("{folder}/IMG_0002.HEIC")),
        "{:?}",
        names(&t)
    );
    assert!(got.keys().all(|p| !p.contains("IMG_E")), "{:?}", names(&t));

    let t = restore(
        &lab,
        &phone,
        "edits",
        &["--date", &m, "--layout", "date", "--edits-only"],
    );
    let got = files_under(&t);
    assert_eq!(
        got.get(&format!("{folder}/IMG_E0002.JPG")),
        Some(&render),
        "{:?}",
        names(&t)
    );
    assert!(
        !got.contains_key(&format!("{folder}/IMG_0002.HEIC")),
        "{:?}",
        names(&t)
    );

    // Paths as on the phone: the edit and its recipe at their Mutations paths.
    let t = restore(&lab, &phone, "as-phone", &["--date", &m]);
    let got = files_under(&t);
    assert_eq!(got.get(ORIGINAL), Some(&original), "{:?}", names(&t));
    assert_eq!(got.get(RENDER), Some(&render), "{:?}", names(&t));
    assert!(
        got.contains_key(
            "PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments/Adjustments.plist"
        ),
        "{:?}",
        names(&t)
    );

    // The two choices exclude each other, and need --date.
    let out = lab.run(
        &phone,
        &[
            "restore",
            "--target",
            "x",
            "--date",
            &m,
            "--originals-only",
            "--edits-only",
        ],
    );
    assert_eq!(out.code, Some(2), "{out}");
    let out = lab.run(
        &phone,
        &["restore", "latest", "--target", "x", "--edits-only"],
    );
    assert_eq!(out.code, Some(2), "{out}");
}
