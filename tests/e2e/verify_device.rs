//! `verify-device` as the answer to "may I delete the photos from my phone now?": stored
//! bytes are read back before a file is called safe, content is compared (not chunk ids, so
//! an off-site copy filled by `copy` counts), every snapshot of the phone counts, and with
//! `--also` it says how many of the user's repositories hold each file.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use serde_json::Value;
use snapvault_fakephone::{FakePhone, FakePhoneConfig};

use crate::common::*;

const PASSWORD2: &str = "another password, for the off-site copy";

/// A sample camera roll on an emulated phone and an encrypted repository.
struct Lab {
    tmp: tempfile::TempDir,
    lib: PathBuf,
    sv: Sv,
}

impl Lab {
    fn new(photos: usize, seed: u64) -> Lab {
        let tmp = tempdir();
        let lib = tmp.path().join("phone");
        fs::create_dir_all(lib.join("DCIM/100APPLE")).unwrap();
        snapvault_media::sample::library(&lib, photos, seed).expect("sample library");
        let sv = Sv::init(tmp.path().join("repo"), true);
        Lab { tmp, lib, sv }
    }

    fn phone(&self) -> FakePhone {
        FakePhone::start(FakePhoneConfig::new(&self.lib)).expect("start the fake iPhone")
    }

    fn phone_with(&self, f: impl FnOnce(&mut FakePhoneConfig)) -> FakePhone {
        let mut cfg = FakePhoneConfig::new(&self.lib);
        f(&mut cfg);
        FakePhone::start(cfg).expect("start the fake iPhone")
    }

    /// `snapvault ARGS` on `sv`'s repository, against `phone`.
    fn run_on(&self, sv: &Sv, phone: &FakePhone, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut c = sv.command(args);
        c.env("USBMUXD_SOCKET_ADDRESS", phone.usbmuxd_address());
        for (k, v) in env {
            c.env(k, v);
        }
        run_command(c, DEFAULT_TIMEOUT)
    }

    fn run(&self, phone: &FakePhone, args: &[&str]) -> Out {
        self.run_on(&self.sv, phone, args, &[])
    }

    fn snapshot(&self, phone: &FakePhone) {
        let out = self.run(phone, &["snapshot", "iphone"]);
        assert_eq!(out.code, Some(0), "snapshot iphone failed:\n{out}");
    }

    /// Number of files under DCIM on the phone.
    fn files_on_phone(&self) -> usize {
        fn count(dir: &std::path::Path) -> usize {
            fs::read_dir(dir)
                .unwrap()
                .map(|e| {
                    let p = e.unwrap().path();
                    if p.is_dir() { count(&p) } else { 1 }
                })
                .sum()
        }
        count(&self.lib.join("DCIM"))
    }
}

/// (path, status) of every problem in `verify-device --json` output.
fn problems(v: &Value) -> BTreeSet<(String, String)> {
    v["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems array: {v}"))
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap_or_default().to_string(),
                p["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Flip one byte in the middle of the largest pack (the photos' data), keeping its size.
fn damage_the_data_pack(repo: &std::path::Path) {
    let (_, pack) = pack_files(repo)
        .into_iter()
        .max_by_key(|(_, p)| fs::metadata(p).unwrap().len())
        .expect("no packs");
    let len = fs::metadata(&pack).unwrap().len();
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&pack)
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(len / 3)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(len / 3)).unwrap();
    f.write_all(&[b[0] ^ 0x20]).unwrap();
}

// ---------------------------------------------------------------------------------------
// 15.3: stored data is read back before a file is called safe

#[test]
fn damaged_stored_data_makes_exactly_its_files_not_safe() {
    let lab = Lab::new(12, 31);
    let phone = lab.phone();
    lab.snapshot(&phone);
    let n = lab.files_on_phone();
    let out = lab.run(&phone, &["verify-device"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_mentions(&out, &format!("safe to delete: {n} of {n}"));

    damage_the_data_pack(&lab.sv.repo);
    // What a full read of the repository finds damaged, by photo path.
    let check = lab.sv.run(&["check", "--read-data", "--json"]);
    assert_failed(&check);
    let hurt: BTreeSet<String> = check.json()["report"]["damaged_files"]
        .as_array()
        .expect("damaged_files")
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_string())
        .collect();
    assert!(!hurt.is_empty(), "the flipped byte hurt no file:\n{check}");

    let out = lab.run(&phone, &["verify-device", "--json"]);
    assert_eq!(out.code, Some(5), "damaged data called safe:\n{out}");
    let v = out.json();
    let expected: BTreeSet<(String, String)> = hurt
        .iter()
        .map(|p| (p.clone(), "damaged".to_string()))
        .collect();
    assert_eq!(problems(&v), expected, "{v}");
    assert_eq!(v["safe"].as_u64(), Some((n - hurt.len()) as u64), "{v}");
    assert_eq!(v["read_back"], Value::Bool(true), "{v}");
    let detail = v["problems"][0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("pack "),
        "the damaged pack is not named: {v}"
    );

    // The text names each file, and the next step.
    let out = lab.run(&phone, &["verify-device"]);
    assert_eq!(out.code, Some(5), "{out}");
    for p in &hurt {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with("damaged") && l.contains(p.as_str())),
            "{p} is not listed as damaged:\n{out}"
        );
    }

    // --quick reads only the index, and says so.
    let out = lab.run(&phone, &["verify-device", "--quick"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_mentions(&out, &format!("safe to delete: {n} of {n}"));
    assert_mentions(&out, "stored data was not read back");
    let v = lab
        .run(&phone, &["verify-device", "--quick", "--json"])
        .json();
    assert_eq!(v["read_back"], Value::Bool(false), "{v}");
    assert_eq!(phone.open_handles(), 0);
}

// ---------------------------------------------------------------------------------------
// 24.1: an off-site copy filled by `copy` holds the same content under other chunk ids

/// A phone with multi-chunk videos, backed up into the lab's repository and copied to a
/// second one with its own keys (so its own chunker): returns the second repository.
fn with_offsite_copy(lab: &Lab, phone: &FakePhone) -> Sv {
    lab.snapshot(phone);
    let offsite = Sv::at(lab.tmp.path().join("offsite"), Some(PASSWORD2));
    let out = offsite.run(&["init"]);
    assert_eq!(out.code, Some(0), "{out}");
    let mut c = lab.sv.command(&["copy", "--all", "--to"]);
    c.arg(&offsite.repo).env("SNAPVAULT_PASSWORD2", PASSWORD2);
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "copy failed:\n{out}");
    offsite
}

fn multi_chunk_lab() -> Lab {
    let lab = Lab::new(6, 32);
    for (i, mb) in [(901u64, 3usize), (902, 5), (903, 4)] {
        write_random(
            &lab.lib.join(format!("DCIM/100APPLE/IMG_0{i}.MOV")),
            i,
            mb << 20,
        );
    }
    lab
}

#[test]
fn an_offsite_copy_holds_every_file_by_content() {
    let lab = multi_chunk_lab();
    let phone = lab.phone();
    let offsite = with_offsite_copy(&lab, &phone);
    let n = lab.files_on_phone();

    // Against the copy alone: every file is there, by content.
    let out = lab.run_on(&offsite, &phone, &["verify-device"], &[]);
    assert_eq!(out.code, Some(0), "the off-site copy is complete:\n{out}");
    assert_mentions(&out, &format!("safe to delete: {n} of {n}"));

    // Both at once: how many repositories hold each file.
    let pw2 = [("SNAPVAULT_PASSWORD2", PASSWORD2)];
    let also = offsite.repo.to_str().unwrap();
    let out = lab.run_on(&lab.sv, &phone, &["verify-device", "--also", also], &pw2);
    assert_eq!(out.code, Some(0), "{out}");
    assert_mentions(&out, &format!("safe to delete: {n} of {n}"));
    assert_mentions(&out, "in both repositories");
    let v = lab
        .run_on(
            &lab.sv,
            &phone,
            &["verify-device", "--also", also, "--json"],
            &pw2,
        )
        .json();
    let repos = v["repositories"].as_array().expect("repositories");
    assert_eq!(repos.len(), 2, "{v}");
    for r in repos {
        assert_eq!(r["holds"].as_u64(), Some(n as u64), "{v}");
    }

    // A new photo, backed up at home only: held by 1 of 2.
    let new = "DCIM/100APPLE/IMG_0950.JPG";
    write_random(&lab.lib.join(new), 950, 1 << 20);
    lab.snapshot(&phone);
    let out = lab.run_on(&lab.sv, &phone, &["verify-device", "--also", also], &pw2);
    assert_eq!(out.code, Some(5), "{out}");
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains(new))
        .unwrap_or_else(|| panic!("{new} not listed:\n{out}"));
    assert!(line.starts_with("missing"), "{out}");
    assert!(line.contains("held by 1 of 2 repositories"), "{out}");
    assert_mentions(&out, &format!("safe to delete: {n} of {}", n + 1));
    let v = lab
        .run_on(
            &lab.sv,
            &phone,
            &["verify-device", "--also", also, "--json"],
            &pw2,
        )
        .json();
    let p = &v["problems"][0];
    assert_eq!(p["path"], new, "{v}");
    assert_eq!(p["held_by"].as_u64(), Some(1), "{v}");

    // The second repository's password is its own; a wrong one is a clear error.
    let out = lab.run_on(
        &lab.sv,
        &phone,
        &["verify-device", "--also", also],
        &[("SNAPVAULT_PASSWORD2", "wrong")],
    );
    assert_failed(&out);
    assert_ne!(out.code, Some(5), "{out}");
    assert_stderr_mentions(&out, "offsite");
    assert_stderr_mentions(&out, "wrong password");
}

// ---------------------------------------------------------------------------------------
// 24.6: everything stored for the phone counts, not only the latest (partial) snapshot

#[test]
fn files_an_earlier_snapshot_holds_are_not_missing_after_a_partial_one() {
    let lab = Lab::new(20, 33);
    let phone = lab.phone();
    lab.snapshot(&phone);
    drop(phone);
    // New photos that sort first; the cable comes out while the second is read.
    let a = write_random(&lab.lib.join("DCIM/100APPLE/IMG_0000.HEIC"), 1000, 200_000);
    let b = write_random(&lab.lib.join("DCIM/100APPLE/IMG_0000.MOV"), 1001, 200_000);
    let phone =
        lab.phone_with(|c| c.disconnect_after_bytes = Some(a.len() as u64 + b.len() as u64 / 2));
    let out = lab.run(&phone, &["snapshot", "iphone"]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "partial snapshot");
    drop(phone);

    let phone = lab.phone();
    let n = lab.files_on_phone();
    let out = lab.run(&phone, &["verify-device", "--json"]);
    assert_eq!(out.code, Some(5), "{out}");
    let v = out.json();
    let only: BTreeSet<(String, String)> = [(
        "DCIM/100APPLE/IMG_0000.MOV".to_string(),
        "missing".to_string(),
    )]
    .into();
    assert_eq!(problems(&v), only, "{v}");
    assert_eq!(v["safe"].as_u64(), Some(n as u64 - 1), "{v}");
    let snaps = v["repositories"][0]["snapshots"]
        .as_array()
        .expect("snapshots");
    assert_eq!(
        snaps.len(),
        2,
        "both snapshots of the phone are compared: {v}"
    );
}

/// `--also REPO2` opens its repository as `copy --to` and `repair --from` open theirs (one
/// shared piece of code): a wrong password is exit 12 naming REPO2, with a hint about
/// REPO2's password settings (not the first repository's); a missing drive, a missing
/// password and an unencrypted REPO2 given a password are refused the same way. No phone
/// is needed: REPO2 is opened before the phone is asked for.
#[test]
fn also_opens_its_repository_as_copy_and_repair_do() {
    let tmp = tempdir();
    let sv = Sv::init(tmp.path().join("repo"), true);
    let offsite = Sv::at(tmp.path().join("offsite"), Some(PASSWORD2));
    assert_eq!(offsite.run(&["init"]).code, Some(0));
    let also = offsite.repo.to_str().unwrap();
    let commands: [&[&str]; 3] = [
        &["verify-device", "--also", also],
        &["copy", "--all", "--to", also],
        &["repair", "--from", also],
    ];
    for args in commands {
        let out = sv.run_env(args, &[("SNAPVAULT_PASSWORD2", "wrong")]);
        assert_eq!(out.code, Some(12), "{args:?}:\n{out}");
        assert_stderr_mentions(&out, also);
        let hint = out
            .stderr
            .lines()
            .find(|l| l.starts_with("hint:"))
            .unwrap_or_else(|| panic!("{args:?}: no hint:\n{out}"));
        assert!(
            hint.contains("SNAPVAULT_PASSWORD2") && hint.contains("--password-file2"),
            "{args:?}: the hint is not about REPO2's password: {hint}"
        );

        let out = sv.run(args);
        assert_failed(&out);
        assert_stderr_mentions(&out, "no password given for it");
        assert_stderr_mentions(&out, "SNAPVAULT_PASSWORD2");
    }

    let plain = Sv::init(tmp.path().join("plain"), false);
    let plain_loc = plain.repo.to_str().unwrap();
    let out = sv.run_env(
        &["verify-device", "--also", plain_loc],
        &[("SNAPVAULT_PASSWORD2", PASSWORD2)],
    );
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, "is NOT encrypted, but a password was given");

    let unplugged = tmp.path().join("T7/photos");
    let out = sv.run_env(
        &["verify-device", "--also", unplugged.to_str().unwrap()],
        &[("SNAPVAULT_PASSWORD2", PASSWORD2)],
    );
    assert_eq!(out.code, Some(10), "{out}");
    assert_stderr_mentions(&out, "is the drive plugged in?");
}
