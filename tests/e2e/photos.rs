//! Photo-aware features through the real binary: capture dates from real metadata,
//! `restore --date` across every snapshot (photos deleted from the source still come
//! back), Live Photo companions, `--layout date` collisions, `--as-of`, `photos`, `diff`,
//! the vanished-photo report, and the catalog rebuilt after deletion.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use snapvault_media::sample;

use crate::common::*;

struct Lib(CachedLibrary);

impl std::ops::Deref for Lib {
    type Target = CachedLibrary;
    fn deref(&self) -> &CachedLibrary {
        &self.0
    }
}

impl Lib {
    /// A small library with real EXIF / QuickTime dates:
    /// - a Live Photo whose video is dated one second later, in the next month;
    /// - two different photos named IMG_0003.HEIC in two folders, both taken in July 2023;
    /// - a photo from June 2023, one from December 2022, and a JPEG without metadata
    ///   whose mtime (March 2024) must be used instead.
    fn new() -> Lib {
        let lib = CachedLibrary::new();
        let src = &lib.src;
        let d100 = src.join("DCIM/100APPLE");
        let d101 = src.join("DCIM/101APPLE");
        let cid = sample::content_id(1);
        write_file(
            &d100.join("IMG_0001.HEIC"),
            &sample::heic(&taken("2023-07-31T23:59:59+02:00"), Some(&cid), 20_000, 1),
        );
        write_file(
            &d100.join("IMG_0001.MOV"),
            &sample::mov(&taken("2023-08-01T00:00:00+02:00"), Some(&cid), 30_000, 2),
        );
        write_file(
            &d100.join("IMG_0002.JPG"),
            &sample::jpeg(&taken("2023-06-30T12:00:00+02:00"), None, 15_000, 3),
        );
        write_file(
            &d100.join("IMG_0003.HEIC"),
            &sample::heic(&taken("2023-07-01T09:00:00+02:00"), None, 18_000, 4),
        );
        write_file(
            &d101.join("IMG_0003.HEIC"),
            &sample::heic(&taken("2023-07-02T10:00:00-04:00"), None, 19_000, 5),
        );
        write_file(
            &d101.join("IMG_0004.HEIC"),
            &sample::heic(&taken("2022-12-31T23:30:00+01:00"), None, 17_000, 6),
        );
        let plain = d101.join("IMG_0005.JPG");
        write_random(&plain, 7, 12_000);
        set_mtime(&plain, 1_709_640_000, 0); // 2024-03-05 12:00 UTC
        Lib(lib)
    }

    fn snapshot(&self) -> Value {
        self.ok(&["snapshot", "--json", self.src.to_str().unwrap()])
            .json()
    }

    /// Restore into a fresh folder; returns the set of relative file paths.
    fn restore(&self, args: &[&str]) -> (PathBuf, BTreeSet<String>) {
        let target = self.tmp.path().join(format!("r{}", rand_suffix(args)));
        let mut a: Vec<&str> = vec!["restore", "--target", target.to_str().unwrap()];
        a.extend_from_slice(args);
        self.ok(&a);
        let files = files_under(&target);
        (target, files)
    }
}

fn rand_suffix(args: &[&str]) -> String {
    let mut h: u64 = 1469598103934665603;
    for b in args.join(" ").bytes() {
        h = (h ^ b as u64).wrapping_mul(1099511628211);
    }
    format!("{h:x}")
}

fn files_under(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn capture_dates_and_sources_are_recorded() {
    let lib = Lib::new();
    lib.snapshot();
    let ls = lib.ok(&["ls", "latest", "--json"]).json();
    let by_path = |p: &str| -> Value {
        ls.as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == p)
            .cloned()
            .unwrap_or_else(|| panic!("{p} not listed"))
    };
    let m = &by_path("iPhone/DCIM/100APPLE/IMG_0001.HEIC")["media"];
    assert_eq!(m["kind"], "photo");
    assert_eq!(m["taken"], "2023-07-31T23:59:59+02:00");
    assert_eq!(m["date_source"], "exif");
    let v = &by_path("iPhone/DCIM/100APPLE/IMG_0001.MOV")["media"];
    assert_eq!(v["kind"], "video");
    assert_eq!(v["taken"], "2023-08-01T00:00:00+02:00");
    assert_eq!(v["date_source"], "quicktime");
    assert_eq!(v["pair"], m["pair"], "Live Photo pair key");
    let f = &by_path("iPhone/DCIM/101APPLE/IMG_0005.JPG")["media"];
    assert_eq!(
        f["date_source"], "mtime",
        "no metadata: falls back to mtime: {f}"
    );
    assert!(
        f["taken"].as_str().unwrap().starts_with("2024-03-05"),
        "{f}"
    );
}

#[test]
fn restore_by_date_searches_every_snapshot_and_brings_companions() {
    let lib = Lib::new();
    lib.snapshot();
    // IMG_0003 of 101APPLE is deleted from the phone; the next snapshot notices.
    fs::remove_file(lib.src.join("DCIM/101APPLE/IMG_0003.HEIC")).unwrap();
    let s2 = lib.snapshot();
    assert_eq!(s2["vanished"]["count"], 1, "{s2}");
    assert_eq!(
        s2["vanished"]["paths"][0],
        "iPhone/DCIM/101APPLE/IMG_0003.HEIC"
    );
    assert_eq!(s2["vanished"]["taken_from"], "2023-07");

    // July 2023: both IMG_0003 (one only in the first snapshot), and the Live Photo with its
    // video dated in August.
    let (_, got) = lib.restore(&["--date", "2023-07"]);
    assert_eq!(
        got,
        set(&[
            "iPhone/DCIM/100APPLE/IMG_0001.HEIC",
            "iPhone/DCIM/100APPLE/IMG_0001.MOV",
            "iPhone/DCIM/100APPLE/IMG_0003.HEIC",
            "iPhone/DCIM/101APPLE/IMG_0003.HEIC",
        ])
    );
    // Restricted to the latest snapshot, the deleted photo is not there.
    let (_, got) = lib.restore(&["--date", "2023-07", "--snapshot", "latest"]);
    assert!(
        !got.contains("iPhone/DCIM/101APPLE/IMG_0003.HEIC"),
        "{got:?}"
    );
    assert!(
        got.contains("iPhone/DCIM/100APPLE/IMG_0003.HEIC"),
        "{got:?}"
    );
    // Day, range and open ranges.
    let (_, got) = lib.restore(&["--date", "2023-06-30"]);
    assert_eq!(got, set(&["iPhone/DCIM/100APPLE/IMG_0002.JPG"]));
    let (_, got) = lib.restore(&["--date", "2023-06..2023-07"]);
    assert_eq!(got.len(), 5, "{got:?}");
    let (_, got) = lib.restore(&["--date", "..2022"]);
    assert_eq!(got, set(&["iPhone/DCIM/101APPLE/IMG_0004.HEIC"]));
    let (_, got) = lib.restore(&["--date", "2024-03.."]);
    assert_eq!(got, set(&["iPhone/DCIM/101APPLE/IMG_0005.JPG"]));
    // Byte-exact.
    let (t, _) = lib.restore(&["--date", "2023"]);
    for rel in ["DCIM/100APPLE/IMG_0001.MOV", "DCIM/100APPLE/IMG_0002.JPG"] {
        assert_eq!(
            fs::read(t.join("iPhone").join(rel)).unwrap(),
            fs::read(lib.src.join(rel)).unwrap(),
            "{rel}"
        );
    }
}

#[test]
fn layout_date_keeps_both_photos_with_the_same_name_and_pairs_together() {
    let lib = Lib::new();
    lib.snapshot();
    let (t, got) = lib.restore(&["--date", "2023-07", "--layout", "date"]);
    assert_eq!(
        got,
        set(&[
            "2023/07/IMG_0001.HEIC",
            "2023/07/IMG_0001.MOV",
            "2023/07/IMG_0003.HEIC",
            "2023/07/IMG_0003 (2).HEIC",
        ]),
        "the video follows its still into July"
    );
    let a = fs::read(t.join("2023/07/IMG_0003.HEIC")).unwrap();
    let b = fs::read(t.join("2023/07/IMG_0003 (2).HEIC")).unwrap();
    assert_ne!(a, b);
    let originals = [
        fs::read(lib.src.join("DCIM/100APPLE/IMG_0003.HEIC")).unwrap(),
        fs::read(lib.src.join("DCIM/101APPLE/IMG_0003.HEIC")).unwrap(),
    ];
    assert!(originals.contains(&a) && originals.contains(&b));
}

#[test]
fn dry_run_photos_diff_as_of_and_catalog_rebuild() {
    let lib = Lib::new();
    lib.snapshot();
    fs::remove_file(lib.src.join("DCIM/100APPLE/IMG_0002.JPG")).unwrap();
    lib.snapshot();
    // --dry-run lists, writes nothing.
    let target = lib.tmp.path().join("dry");
    let out = lib.ok(&[
        "restore",
        "--date",
        "2023-06",
        "--dry-run",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert!(out.stdout.contains("IMG_0002.JPG"), "{out}");
    assert!(!target.exists());
    // photos --json: distinct photos with the number of snapshots holding them.
    let photos = lib.ok(&["photos", "--date", "2023", "--json"]).json();
    let rows = photos.as_array().unwrap();
    let jpg = rows
        .iter()
        .find(|r| r["path"].as_str().unwrap().ends_with("IMG_0002.JPG"))
        .unwrap();
    assert_eq!(jpg["snapshots"], 1);
    let heic = rows
        .iter()
        .find(|r| r["path"] == "iPhone/DCIM/101APPLE/IMG_0003.HEIC")
        .unwrap();
    assert_eq!(heic["snapshots"], 2);
    assert_eq!(
        lib.ok(&["photos", "--kind", "video", "--json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // diff: the deleted photo is "removed".
    let d = lib.ok(&["diff", "latest~1", "latest", "--json"]).json();
    assert_eq!(d["removed"].as_array().unwrap().len(), 1, "{d}");
    assert_eq!(d["removed"][0]["path"], "iPhone/DCIM/100APPLE/IMG_0002.JPG");
    // --as-of: the newest snapshot at or before the date, whole.
    let (_, whole) = lib.restore(&["--as-of", "2099-01-01"]);
    assert!(!whole.contains("iPhone/DCIM/100APPLE/IMG_0002.JPG"));
    assert_eq!(whole.len(), 6, "{whole:?}");
    let out = lib.run(&[
        "restore",
        "--as-of",
        "2001",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr
            .contains("no snapshot was taken at or before 2001"),
        "{out}"
    );
    // Bad date forms name the input.
    let out = lib.run(&["photos", "--date", "2023-13"]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("2023-13"), "{out}");
    // Deleting the catalog loses nothing; garbage in it neither.
    let before = lib.ok(&["photos", "--json"]).stdout;
    fs::remove_dir_all(&lib.cache).unwrap();
    assert_eq!(lib.ok(&["photos", "--json"]).stdout, before);
    for e in fs::read_dir(&lib.cache).unwrap().flatten() {
        for f in fs::read_dir(e.path()).unwrap().flatten() {
            if f.file_name().to_string_lossy().starts_with("catalog") {
                fs::write(f.path(), b"this is not a database").unwrap();
            }
        }
    }
    assert_eq!(lib.ok(&["photos", "--json"]).stdout, before);
}

/// Every `catalog.sqlite` under `root` (the cache folder).
fn catalogs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "catalog.sqlite") {
                out.push(p);
            }
        }
    }
    out
}

/// `restore --date` selects with the catalog but takes names and content from the
/// snapshot's own tree: a name that is not UTF-8 comes back exactly, and a catalog that
/// lies (another photo's chunks, a name climbing out of the target) changes nothing.
#[test]
fn restore_by_date_takes_names_and_content_from_the_snapshot_tree() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let lib = Lib::new();
    // Latin-1 é, as old cameras and copies from Windows make.
    let odd = OsStr::from_bytes(b"caf\xe9.HEIC");
    let bytes = sample::heic(&taken("2023-07-05T08:00:00+02:00"), None, 16_000, 9);
    write_file(&lib.src.join("DCIM/100APPLE").join(odd), &bytes);
    lib.snapshot();
    let (target, files) = lib.restore(&["--date", "2023-07-05"]);
    assert_eq!(files.len(), 1, "{files:?}");
    let restored = target.join("iPhone/DCIM/100APPLE").join(odd);
    assert_eq!(fs::read(&restored).unwrap(), bytes, "{files:?}");
    let (target, files) = lib.restore(&["--date", "2023-07-05", "--layout", "date"]);
    assert_eq!(
        fs::read(target.join("2023/07").join(odd)).unwrap(),
        bytes,
        "{files:?}"
    );

    let db = catalogs(&lib.cache);
    assert_eq!(db.len(), 1, "{db:?}");
    let sql = "UPDATE contents SET blobs = (SELECT blobs FROM contents WHERE taken LIKE '2022-12%') \
                   WHERE taken LIKE '2023-07-05%'; \
               UPDATE files SET name = CAST('../../../../../escaped.HEIC' AS BLOB) \
                   WHERE content = (SELECT id FROM contents WHERE taken LIKE '2023-07-05%');";
    match std::process::Command::new("sqlite3")
        .arg(&db[0])
        .arg(sql)
        .status()
    {
        Ok(s) if s.success() => {}
        other => {
            eprintln!("skipped the lying-catalog half: sqlite3 is not usable here ({other:?})");
            return;
        }
    }
    let before = listing(lib.tmp.path());
    let out_dir = lib.tmp.path().join("after-tamper");
    let out = lib.run(&[
        "restore",
        "--date",
        "2023-07-05",
        "--target",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_stderr_mentions(&out, "catalog disagrees with the repository");
    assert_eq!(
        fs::read(out_dir.join("iPhone/DCIM/100APPLE").join(odd)).unwrap(),
        bytes,
        "{out}"
    );
    let added: Vec<String> = listing(lib.tmp.path())
        .into_keys()
        .filter(|k| {
            !before.contains_key(k) && !k.starts_with("after-tamper") && !k.starts_with("cache")
        })
        .collect();
    assert!(
        added.is_empty(),
        "restore wrote outside its target: {added:?}\n{out}"
    );
}

/// Issue 24.3: `--include` goes with `--date`; a Live Photo's video comes with its still.
#[test]
fn include_works_with_restore_by_date() {
    let lib = Lib::new();
    lib.snapshot();
    let (_, files) = lib.restore(&["--date", "2023-07", "--include", "IMG_0001.HEIC"]);
    assert_eq!(
        files,
        set(&[
            "iPhone/DCIM/100APPLE/IMG_0001.HEIC",
            "iPhone/DCIM/100APPLE/IMG_0001.MOV"
        ])
    );
    let target = lib.tmp.path().join("none");
    let out = lib.run(&[
        "restore",
        "--date",
        "2023-07",
        "--include",
        "IMG_9999.HEIC",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "IMG_9999.HEIC");
}

/// An edit made in Photos is found wherever the media root sits in the snapshot: a folder
/// snapshot of a copied media root keeps the folder's name (`iPhone/`) in every path.
#[test]
fn photos_finds_edits_below_the_snapshot_root() {
    let lib = CachedLibrary::new();
    let d = lib.src.join("DCIM/100APPLE");
    let when = taken("2023-06-30T12:00:00-04:00");
    write_file(
        &d.join("IMG_0002.JPG"),
        &sample::jpeg(&when, None, 15_000, 2),
    );
    write_file(
        &d.join("IMG_0003.JPG"),
        &sample::jpeg(&when, None, 15_000, 3),
    );
    let edit = lib
        .src
        .join("PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments");
    write_file(
        &edit.join("FullSizeRender.jpg"),
        &sample::jpeg(&when, None, 12_000, 6),
    );
    write_file(&edit.join("Adjustments.plist"), b"<plist></plist>");
    lib.ok(&["snapshot", lib.src.to_str().unwrap()]);

    let all = lib.ok(&["photos", "--json"]).json();
    let listed: BTreeSet<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        listed,
        set(&[
            "iPhone/DCIM/100APPLE/IMG_0002.JPG",
            "iPhone/DCIM/100APPLE/IMG_0003.JPG"
        ]),
        "the edit is listed as a photo of its own: {all}"
    );
    let edited = lib.ok(&["photos", "--edited", "--json"]).json();
    let rows = edited.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{edited}");
    assert_eq!(rows[0]["path"], "iPhone/DCIM/100APPLE/IMG_0002.JPG");
    assert_eq!(
        rows[0]["edit_path"],
        "iPhone/PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments/FullSizeRender.jpg"
    );
    let text = lib.ok(&["photos"]);
    assert!(
        text.stdout.contains(
            "IMG_0002.JPG  [edited: iPhone/PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments/FullSizeRender.jpg]"
        ),
        "{text}"
    );
}

/// `restore --date` brings an edit made in Photos with its original wherever the media root
/// sits in the snapshot (here under `iPhone/`, a folder snapshot of a copied media root):
/// beside it as `IMG_E0002.JPG`, at its own path with `--layout original`, in the dry-run
/// listing, and never as a `FullSizeRender.jpg` photo of its own.
#[test]
fn restore_by_date_finds_edits_below_the_snapshot_root() {
    let lib = CachedLibrary::new();
    let d = lib.src.join("DCIM/100APPLE");
    let when = taken("2023-06-30T12:00:00-04:00");
    let (original, render) = (
        sample::jpeg(&when, None, 15_000, 2),
        sample::jpeg(&when, None, 12_000, 6),
    );
    write_file(&d.join("IMG_0002.JPG"), &original);
    write_file(
        &d.join("IMG_0003.JPG"),
        &sample::jpeg(&when, None, 15_000, 3),
    );
    let edit = lib
        .src
        .join("PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments");
    write_file(&edit.join("FullSizeRender.jpg"), &render);
    write_file(&edit.join("Adjustments.plist"), b"<plist></plist>");
    lib.ok(&["snapshot", lib.src.to_str().unwrap()]);
    let restore = |name: &str, more: &[&str]| {
        let target = lib.tmp.path().join(name);
        let mut args = vec!["restore", "--date", "2023-06", "--target"];
        args.push(target.to_str().unwrap());
        args.extend_from_slice(more);
        lib.ok(&args);
        files_below(&target)
    };

    // Beside the original, under Apple's edit name.
    let got = restore("by-date", &["--layout", "date"]);
    let names: Vec<&String> = got.keys().collect();
    let folder = got
        .keys()
        .find_map(|p| p.strip_suffix("/IMG_0002.JPG"))
        .unwrap_or_else(|| panic!("IMG_0002.JPG not restored: {names:?}"))
        .to_string();
    assert!(got[&format!("{folder}/IMG_0002.JPG")] == original);
    assert!(
        got.get(&format!("{folder}/IMG_E0002.JPG")) == Some(&render),
        "the edit is not beside its original: {names:?}"
    );
    assert_eq!(got.len(), 3, "{names:?}");

    // At its own path, with its recipe.
    let got = restore("as-on-phone", &["--layout", "original"]);
    let adj = "iPhone/PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments";
    assert!(
        got.get(&format!("{adj}/FullSizeRender.jpg")) == Some(&render),
        "{:?}",
        got.keys().collect::<Vec<_>>()
    );
    assert!(got.contains_key(&format!("{adj}/Adjustments.plist")));

    // The edit alone; and the dry run lists what would be restored.
    let got = restore("edits", &["--layout", "date", "--edits-only"]);
    assert_eq!(
        got.keys().cloned().collect::<Vec<_>>(),
        [format!("{folder}/IMG_E0002.JPG")]
    );
    let plan = lib
        .ok(&[
            "restore",
            "--date",
            "2023-06",
            "--target",
            "x",
            "--layout",
            "date",
            "--dry-run",
            "--json",
        ])
        .json();
    let paths: BTreeSet<&str> = plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "file")
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    let want = [
        format!("{folder}/IMG_0002.JPG"),
        format!("{folder}/IMG_0003.JPG"),
        format!("{folder}/IMG_E0002.JPG"),
    ];
    assert_eq!(paths, want.iter().map(String::as_str).collect(), "{plan}");
}

/// Every file below `root`, by its path from there (`/`-separated), with its contents.
fn files_below(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    out
}
