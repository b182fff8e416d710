//! Damage of every kind, built by the test in a real repository; for each: `check` reports
//! exactly that problem (and the photos it hurts), `repair --apply` leaves a repository that
//! `check --read-data` passes, every unaffected photo restores byte-exact, and snapshotting
//! the source again heals what was lost. Plus rolling verification with a tiny budget.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;

pub(crate) struct Lab {
    pub(crate) _tmp: tempfile::TempDir,
    pub(crate) src: PathBuf,
    pub(crate) cache: PathBuf,
    pub(crate) sv: Sv,
}

impl Lab {
    /// Six 3 MiB "photos" (two data packs, one tree pack per snapshot), two snapshots.
    pub(crate) fn new() -> Lab {
        let tmp = tempdir();
        let src = tmp.path().join("photos");
        for i in 0..6u64 {
            write_random(
                &src.join(format!("DCIM/100APPLE/IMG_{i:04}.HEIC")),
                i + 1,
                3 << 20,
            );
        }
        let cache = tmp.path().join("cache");
        let sv = Sv::init(tmp.path().join("repo"), true);
        let lab = Lab {
            src,
            cache,
            sv,
            _tmp: tmp,
        };
        lab.ok(&["snapshot", lab.src.to_str().unwrap()]);
        write_random(&lab.src.join("DCIM/100APPLE/IMG_0100.JPG"), 100, 200_000);
        lab.ok(&["snapshot", lab.src.to_str().unwrap()]);
        lab
    }

    pub(crate) fn run(&self, args: &[&str]) -> Out {
        self.sv
            .run_env(args, &[("XDG_CACHE_HOME", self.cache.to_str().unwrap())])
    }

    pub(crate) fn ok(&self, args: &[&str]) -> Out {
        let out = self.run(args);
        assert_eq!(out.code, Some(0), "snapvault {args:?} failed:\n{out}");
        out
    }

    pub(crate) fn data_pack(&self) -> PathBuf {
        pack_files(&self.sv.repo)
            .into_iter()
            .map(|(_, p)| p)
            .max_by_key(|p| fs::metadata(p).unwrap().len())
            .unwrap()
    }

    pub(crate) fn tree_packs(&self) -> Vec<PathBuf> {
        pack_files(&self.sv.repo)
            .into_iter()
            .map(|(_, p)| p)
            .filter(|p| fs::metadata(p).unwrap().len() < 1 << 20)
            .collect()
    }

    /// Restore `latest` and compare with the source: returns the files that differ or are
    /// missing (each must be one `check` named as damaged).
    pub(crate) fn restore_latest(&self, name: &str) -> Vec<String> {
        let target = self._tmp.path().join(name);
        self.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
        let mut bad = Vec::new();
        for e in walk(&self.src) {
            let rel = e.strip_prefix(&self.src).unwrap();
            let got = fs::read(target.join("photos").join(rel)).ok();
            if got.as_deref() != Some(&fs::read(&e).unwrap()[..]) {
                bad.push(rel.to_string_lossy().into_owned());
            }
        }
        bad
    }
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

pub(crate) fn flip(path: &Path, at: impl Fn(usize) -> usize) {
    let mut b = fs::read(path).unwrap();
    let i = at(b.len());
    b[i] ^= 0x10;
    fs::write(path, b).unwrap();
}

/// Damage, expected check exit code and message; then repair, heal, verify.
fn case(damage: impl Fn(&Lab), code: i32, expect: &[&str]) {
    let lab = Lab::new();
    damage(&lab);
    let out = lab.run(&["check", "--read-data"]);
    assert_eq!(out.code, Some(code), "check after damage:\n{out}");
    for e in expect {
        assert!(
            out.stdout.contains(e),
            "check does not mention {e:?}:\n{out}"
        );
    }
    let damaged: Vec<String> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("damaged: photos/"))
        .map(|l| l.split(' ').next().unwrap_or_default().to_string())
        .collect();
    lab.ok(&["repair", "--apply", "--forget-damaged"]);
    let out = lab.ok(&["check", "--read-data"]);
    assert!(out.stdout.contains("no errors found"), "{out}");
    // Every photo not named as damaged restores byte-exact (when a snapshot is left).
    let has_snapshots = !lab.sv.snapshots().is_empty();
    if has_snapshots {
        for f in lab.restore_latest("after-repair") {
            assert!(
                damaged.contains(&f),
                "{f} was not reported damaged but did not restore"
            );
        }
    }
    // Snapshot the source again: what was lost is stored again.
    lab.ok(&["snapshot", lab.src.to_str().unwrap()]);
    assert!(lab.restore_latest("healed").is_empty(), "not healed");
    lab.ok(&["check", "--read-data"]);
}

#[test]
fn missing_pack() {
    case(
        |l| fs::remove_file(l.data_pack()).unwrap(),
        4,
        &["is missing", "damaged: photos/DCIM/100APPLE/IMG_"],
    );
}

#[test]
fn truncated_pack() {
    case(
        |l| {
            let p = l.data_pack();
            let len = fs::metadata(&p).unwrap().len();
            fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .unwrap()
                .set_len(len - 1000)
                .unwrap();
        },
        4,
        &["bytes but the index says", "damaged: photos/"],
    );
}

#[test]
fn flipped_bit_in_a_blob() {
    case(
        |l| flip(&l.data_pack(), |n| n / 3),
        4,
        &[
            "fail verification",
            "does not match its name",
            "damaged: photos/",
        ],
    );
}

/// Repair keeps the damaged original beside its repaired copy (same time): `latest` is the
/// copy, which restores whole, not the original that names lost data.
#[test]
fn latest_after_repair_is_the_repaired_copy() {
    let lab = Lab::new();
    flip(&lab.data_pack(), |n| n / 3);
    lab.ok(&["repair", "--apply"]);
    // The lab's snapshots may share a second; each original is followed by its copy.
    let list = lab.sv.snapshots();
    let tags: Vec<String> = list.iter().map(|s| s["tags"].to_string()).collect();
    assert!(tags.len() >= 2, "{list:?}");
    assert!(tags[tags.len() - 1].contains("repaired"), "{tags:?}");
    assert!(!tags[tags.len() - 2].contains("repaired"), "{tags:?}");
    // Restores with exit 0: the lost photos are simply not in the copy.
    let missing = lab.restore_latest("latest");
    assert!(!missing.is_empty(), "the damage lost at least one photo");
}

#[test]
fn flipped_bit_in_a_pack_header() {
    case(|l| flip(&l.data_pack(), |n| n - 20), 4, &["header"]);
}

#[test]
fn pack_whose_name_is_not_its_hash() {
    case(
        |l| {
            let p = l.data_pack();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let last = if name.ends_with('0') { '1' } else { '0' };
            let other = format!("{}{last}", &name[..63]);
            fs::rename(&p, p.with_file_name(other)).unwrap();
        },
        4,
        &["is missing", "is not in any index"],
    );
}

#[test]
fn index_lost_entirely_loses_nothing() {
    let lab = Lab::new();
    for e in fs::read_dir(lab.sv.repo.join("index")).unwrap().flatten() {
        fs::remove_file(e.path()).unwrap();
    }
    let out = lab.run(&["check"]);
    assert_eq!(out.code, Some(4), "{out}");
    assert!(out.stdout.contains("is not in any index"), "{out}");
    lab.ok(&["repair", "index", "--apply"]);
    lab.ok(&["check", "--read-data"]);
    assert!(lab.restore_latest("all").is_empty());
    assert_eq!(lab.sv.snapshots().len(), 2);
}

#[test]
fn snapshot_whose_tree_is_missing() {
    case(
        |l| {
            for p in l.tree_packs() {
                fs::remove_file(p).unwrap();
            }
        },
        4,
        &["cannot be read"],
    );
}

#[test]
fn corrupted_snapshot_file() {
    case(
        |l| {
            // The older snapshot: the newer one still holds every photo.
            let first = l.sv.snapshots()[0]["id"].as_str().unwrap().to_string();
            flip(&l.sv.repo.join("snapshots").join(first), |n| n / 2);
        },
        4,
        &["snapshot", "cannot be read"],
    );
}

#[test]
fn corrupted_key_file_leaves_other_keys_working() {
    let lab = Lab::new();
    let first = fs::read_dir(lab.sv.repo.join("keys"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let out = lab.sv.run_env(
        &["key", "add"],
        &[("SNAPVAULT_NEW_PASSWORD", "second password")],
    );
    assert_eq!(out.code, Some(0), "{out}");
    flip(&first, |n| n / 2);
    let second = Sv::at(lab.sv.repo.clone(), Some("second password"));
    let out = second.run(&["check"]);
    assert_eq!(out.code, Some(4), "{out}");
    assert!(out.stdout.contains("key "), "{out}");
    let id = first.file_name().unwrap().to_string_lossy().into_owned();
    second.ok(&["key", "remove", &id[..12]]);
    second.ok(&["check", "--read-data"]);
}

#[test]
fn leftover_temporary_files_are_notices_and_cleaned() {
    let lab = Lab::new();
    let tmp = lab.sv.repo.join("index/.tmp-deadbeef");
    fs::write(&tmp, vec![0u8; 1000]).unwrap();
    set_mtime(&tmp, 1_600_000_000, 0);
    let out = lab.ok(&["check"]);
    assert!(out.stdout.contains("leftover temporary file"), "{out}");
    lab.ok(&["snapshot", lab.src.to_str().unwrap()]);
    assert!(
        !tmp.exists(),
        "the next snapshot removes old temporary files"
    );
}

#[test]
fn healing_from_the_source_before_repair() {
    let lab = Lab::new();
    flip(&lab.data_pack(), |n| n / 3);
    let out = lab.run(&["check", "--read-data"]);
    assert_eq!(out.code, Some(4), "{out}");
    // The next snapshot re-reads the damaged photo and stores it again…
    let s = lab
        .ok(&["snapshot", "--json", lab.src.to_str().unwrap()])
        .json();
    assert!(summary_u64(&s, "files_changed") >= 1, "{s}");
    // …restore already uses the good copy, check says the blob is stored twice…
    assert!(lab.restore_latest("healed").is_empty());
    let out = lab.run(&["check", "--read-data"]);
    assert!(
        out.stdout.contains("good one") || out.stdout.contains("stored twice"),
        "{out}"
    );
    // …and repair drops the damaged copy.
    lab.ok(&["repair", "--apply"]);
    let out = lab.ok(&["check", "--read-data"]);
    assert!(out.stdout.contains("no errors found"), "{out}");
}

#[test]
fn rolling_verification_covers_everything_with_a_tiny_budget() {
    let lab = Lab::new();
    let mut covered = false;
    for _ in 0..20 {
        let out = lab.ok(&["check", "--budget", "1s"]);
        if out.stdout.contains("100% of data verified") {
            covered = true;
            break;
        }
    }
    assert!(covered, "20 budgeted runs did not cover every pack");
    // The state is a cache: delete it and coverage starts over.
    fs::remove_dir_all(&lab.cache).unwrap();
    let out = lab.ok(&["check", "--budget", "1s"]);
    assert!(out.stdout.contains("verified"), "{out}");
}
