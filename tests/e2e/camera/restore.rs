//! `restore --date`: an edit comes with its original — beside it as `IMG_E1234.JPG` with
//! `--layout date`, at its own path with `--layout original` — and `--originals-only` /
//! `--edits-only` choose one.

use std::collections::BTreeMap;

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

/// What one restore wrote: file contents by path under its target.
struct Restored(BTreeMap<String, Vec<u8>>);

impl Restored {
    fn names(&self) -> Vec<&String> {
        self.0.keys().collect()
    }

    #[track_caller]
    fn holds(&self, path: &str, content: &[u8]) {
        assert_eq!(
            self.0.get(path).map(Vec::as_slice),
            Some(content),
            "{path}: {:?}",
            self.names()
        );
    }

    #[track_caller]
    fn has(&self, path: &str) {
        assert!(self.0.contains_key(path), "{path}: {:?}", self.names());
    }

    #[track_caller]
    fn lacks(&self, path: &str) {
        assert!(!self.0.contains_key(path), "{path}: {:?}", self.names());
    }

    /// No restored path is `bad`.
    #[track_caller]
    fn none(&self, bad: impl Fn(&str) -> bool, what: &str) {
        assert!(!self.0.keys().any(|p| bad(p)), "{what}: {:?}", self.names());
    }
}

fn restore(
    lab: &Lab,
    phone: &snapvault_fakephone::FakePhone,
    name: &str,
    args: &[&str],
) -> Restored {
    let target = lab.path(name);
    let mut a = vec!["restore", "--target", target.to_str().unwrap()];
    a.extend_from_slice(args);
    lab.ok(phone, &a);
    Restored(files_under(&target))
}

#[test]
fn an_edit_is_restored_beside_its_original() {
    let lab = Lab::new(12, 11);
    let phone = lab.start();
    lab.snapshot(&phone);
    let (m, folder) = month(&lab, &phone);
    let render = std::fs::read(lab.lib.join(RENDER)).unwrap();
    let original = std::fs::read(lab.lib.join(ORIGINAL)).unwrap();

    let got = restore(&lab, &phone, "by-date", &["--date", &m, "--layout", "date"]);
    got.holds(&format!("{folder}/IMG_0002.HEIC"), &original);
    got.holds(&format!("{folder}/IMG_E0002.JPG"), &render);
    got.none(
        |p| p.contains("FullSizeRender") || p.ends_with(".plist"),
        "an edit kept its Mutations name",
    );

    let got = restore(
        &lab,
        &phone,
        "originals",
        &["--date", &m, "--layout", "date", "--originals-only"],
    );
    got.has(&format!("{folder}/IMG_0002.HEIC"));
    got.none(|p| p.contains("IMG_E"), "an edit with --originals-only");

    let got = restore(
        &lab,
        &phone,
        "edits",
        &["--date", &m, "--layout", "date", "--edits-only"],
    );
    got.holds(&format!("{folder}/IMG_E0002.JPG"), &render);
    got.lacks(&format!("{folder}/IMG_0002.HEIC"));

    // Paths as on the phone: the edit and its recipe at their Mutations paths.
    let got = restore(&lab, &phone, "as-phone", &["--date", &m]);
    got.holds(ORIGINAL, &original);
    got.holds(RENDER, &render);
    got.has("PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments/Adjustments.plist");

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
