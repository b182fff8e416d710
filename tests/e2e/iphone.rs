//! The iPhone features end to end: the real `snapvault` binary talks to a loopback iPhone
//! (`snapvault-fakephone`, run in-process) through usbmuxd → lockdownd (TLS) → AFC, exactly
//! as it would talk to a phone on a USB cable. The address goes to the binary through
//! `USBMUXD_SOCKET_ADDRESS`.

use std::collections::BTreeMap;
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use snapvault_fakephone::{FakePhone, FakePhoneConfig};

mod locked;
mod names;
mod pairing;

use crate::common::{
    DEFAULT_TIMEOUT, Out, Sv, assert_failed, assert_unchanged, base_command, listing, pack_files,
    run_command, summary_u64, tempdir, write_random,
};

/// Slack allowed on top of the file bytes a command is expected to pull from the phone.
const SLACK: u64 = 64 * 1024;

/// A sample camera roll, a plain (unencrypted) repository and scratch space.
struct Lab {
    tmp: tempfile::TempDir,
    /// The phone's media root: `lib/DCIM/100APPLE/...`.
    lib: PathBuf,
    sv: Sv,
}

impl Lab {
    /// `photos` sample photos (plus their Live Photo videos and sidecars).
    fn new(photos: usize, seed: u64) -> Lab {
        let tmp = tempdir();
        let lib = tmp.path().join("phone");
        fs::create_dir_all(&lib).unwrap();
        if photos > 0 {
            snapvault_media::sample::library(&lib, photos, seed).expect("sample library");
        }
        let sv = Sv::init(tmp.path().join("repo"), false);
        Lab { tmp, lib, sv }
    }

    /// A healthy, trusted, unlocked phone serving the library.
    fn cfg(&self) -> FakePhoneConfig {
        FakePhoneConfig::new(&self.lib)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Run snapvault against `phone`.
    fn run(&self, phone: &FakePhone, args: &[&str]) -> Out {
        self.run_at(&phone.usbmuxd_address(), args)
    }

    /// Run snapvault with USBMUXD_SOCKET_ADDRESS=`addr`.
    fn run_at(&self, addr: &str, args: &[&str]) -> Out {
        run_command(with_mux(self.sv.command(args), addr), DEFAULT_TIMEOUT)
    }

    /// Run against `phone` and require exit 0.
    fn ok(&self, phone: &FakePhone, args: &[&str]) -> Out {
        let out = self.run(phone, args);
        assert_eq!(out.code, Some(0), "snapvault {args:?} failed:\n{out}");
        out
    }

    /// `snapshot iphone --json EXTRA...`, exit 0, parsed summary.
    fn snapshot(&self, phone: &FakePhone, extra: &[&str]) -> Value {
        let mut args = vec!["snapshot", "iphone", "--json"];
        args.extend_from_slice(extra);
        self.ok(phone, &args).json()
    }

    fn snapshots(&self) -> Vec<Value> {
        match self.sv.ok(&["snapshots", "--json"]).json() {
            Value::Array(v) => v,
            other => panic!("snapshots --json is not an array: {other}"),
        }
    }

    /// Restore `snap` into a new folder `name` and return its path.
    fn restore(&self, snap: &str, name: &str) -> PathBuf {
        let target = self.path(name);
        self.sv.restore(snap, &target);
        target
    }
}

fn with_mux(mut c: Command, addr: &str) -> Command {
    c.env("USBMUXD_SOCKET_ADDRESS", addr);
    c
}

fn start(cfg: FakePhoneConfig) -> FakePhone {
    FakePhone::start(cfg).expect("start the fake iPhone")
}

/// `snapvault ARGS` without a repository, against usbmuxd at `addr`.
fn run_plain(addr: &str, args: &[&str]) -> Out {
    let mut c = with_mux(base_command(), addr);
    c.args(args);
    run_command(c, DEFAULT_TIMEOUT)
}

/// Every file under `root/DCIM`, by device path (`DCIM/100APPLE/IMG_0001.HEIC`).
fn dcim_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd {
            let p = e.unwrap().path();
            let md = fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, &root.join("DCIM"), &mut out);
    out
}

fn total_bytes(files: &BTreeMap<String, Vec<u8>>) -> u64 {
    files.values().map(|d| d.len() as u64).sum()
}

/// The differences between two file maps, by path (not by dumping contents).
fn file_differences(
    expected: &BTreeMap<String, Vec<u8>>,
    actual: &BTreeMap<String, Vec<u8>>,
) -> Vec<String> {
    let mut d = Vec::new();
    for (p, e) in expected {
        match actual.get(p) {
            None => d.push(format!("missing {p}")),
            Some(a) if a != e => d.push(format!(
                "{p}: contents differ ({} bytes expected, {} found)",
                e.len(),
                a.len()
            )),
            _ => {}
        }
    }
    for p in actual.keys() {
        if !expected.contains_key(p) {
            d.push(format!("unexpected {p}"));
        }
    }
    d
}

#[track_caller]
fn assert_same_files(expected: &BTreeMap<String, Vec<u8>>, restored: &Path) {
    let actual = dcim_files(restored);
    let d = file_differences(expected, &actual);
    assert!(
        d.is_empty(),
        "{} differs from the phone:\n  {}",
        restored.display(),
        d.join("\n  ")
    );
}

#[track_caller]
fn assert_stderr(out: &Out, needle: &str) {
    assert!(
        out.stderr.contains(needle),
        "expected stderr to say {needle:?}:\n{out}"
    );
}

fn list<'a>(v: &'a Value, what: &str) -> &'a Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what} is not an array: {v}"))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key:?} in {v}"))
}

// ---------------------------------------------------------------------------------------
// 1. devices

#[test]
fn devices_lists_the_phone_with_its_facts_and_trust() {
    let lab = Lab::new(2, 1);
    let mut cfg = lab.cfg();
    cfg.udid = "00008030-000A1B2C3D4E5F60".into();
    cfg.name = "Anna's iPhone".into();
    cfg.model = "iPhone16,1".into();
    cfg.ios_version = "18.1".into();
    let phone = start(cfg.clone());
    let addr = phone.usbmuxd_address();

    let out = run_plain(&addr, &["devices"]);
    assert_eq!(out.code, Some(0), "{out}");
    let row = out
        .stdout
        .lines()
        .find(|l| l.contains(&cfg.udid))
        .unwrap_or_else(|| panic!("devices does not list the phone:\n{out}"));
    for fact in ["Anna's iPhone", "iPhone16,1", "18.1", "yes"] {
        assert!(
            row.contains(fact),
            "devices row lacks {fact:?}: {row}\n{out}"
        );
    }

    let out = run_plain(&addr, &["devices", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let v = out.json();
    let devs = list(&v, "devices --json");
    assert_eq!(devs.len(), 1, "{v}");
    let d = &devs[0];
    assert_eq!(s(d, "udid"), cfg.udid);
    assert_eq!(s(d, "name"), "Anna's iPhone");
    assert_eq!(s(d, "model"), "iPhone16,1");
    assert_eq!(s(d, "ios_version"), "18.1");
    assert_eq!(d["paired"], Value::Bool(true), "{d}");
    drop(phone);

    // Two phones: both listed, each with its own UDID and name.
    cfg.devices = 2;
    let phone = start(cfg.clone());
    let out = run_plain(&phone.usbmuxd_address(), &["devices", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let v = out.json();
    let mut got: Vec<(String, String, bool)> = list(&v, "devices --json")
        .iter()
        .map(|d| {
            (
                s(d, "udid").to_string(),
                s(d, "name").to_string(),
                d["paired"] == Value::Bool(true),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (cfg.device_udid(0), cfg.device_name(0), true),
        (cfg.device_udid(1), cfg.device_name(1), true),
    ];
    want.sort();
    assert_eq!(got, want, "{v}");
    let out = run_plain(&phone.usbmuxd_address(), &["devices"]);
    assert_eq!(out.code, Some(0), "{out}");
    for i in 0..2 {
        assert!(
            out.stdout.contains(&cfg.device_udid(i)),
            "devices misses {}:\n{out}",
            cfg.device_udid(i)
        );
    }
    drop(phone);

    // An untrusted phone is listed, marked as not trusted, with what to do (its user taps
    // Don't Trust when `devices` asks it to pair: iphone/pairing.rs).
    cfg.devices = 1;
    cfg.paired = false;
    cfg.deny_trust = true;
    let phone = start(cfg.clone());
    let out = run_plain(&phone.usbmuxd_address(), &["devices", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let v = out.json();
    let devs = list(&v, "devices --json");
    assert_eq!(devs.len(), 1, "{v}");
    assert_eq!(s(&devs[0], "udid"), cfg.udid);
    assert_eq!(devs[0]["paired"], Value::Bool(false), "{v}");
    let out = run_plain(&phone.usbmuxd_address(), &["devices"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains("tap Trust"),
        "untrusted phone not flagged:\n{out}"
    );
    drop(phone);

    // No phone attached: an empty list, and a hint in the text form.
    cfg.paired = true;
    cfg.deny_trust = false;
    cfg.devices = 0;
    let phone = start(cfg);
    let out = run_plain(&phone.usbmuxd_address(), &["devices", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(list(&out.json(), "devices --json").len(), 0, "{out}");
    let out = run_plain(&phone.usbmuxd_address(), &["devices"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.both().contains("no iPhone or iPad found"),
        "no hint without a phone:\n{out}"
    );
}

// ---------------------------------------------------------------------------------------
// 2. full pull

#[test]
fn full_pull_restores_byte_exact_and_records_the_device() {
    let lab = Lab::new(24, 2);
    // Names recur across folders (the camera's counter wraps): same name, other photo.
    write_random(&lab.lib.join("DCIM/101APPLE/IMG_0001.HEIC"), 77, 90_000);
    let mut cfg = lab.cfg();
    cfg.name = "Anna's iPhone".into();
    cfg.model = "iPhone16,1".into();
    cfg.ios_version = "18.1".into();
    let phone = start(cfg.clone());
    let on_phone = dcim_files(&lab.lib);
    assert!(on_phone.len() > 24, "sample library too small");

    let v = lab.snapshot(&phone, &[]);
    assert_eq!(summary_u64(&v, "files_new"), on_phone.len() as u64, "{v}");
    assert_eq!(summary_u64(&v, "errors"), 0, "{v}");
    assert_eq!(v["incomplete"], Value::Bool(false), "{v}");
    // Everything was pulled once, and only once.
    let total = total_bytes(&on_phone);
    let served = phone.afc_bytes_served();
    assert!(
        served >= total && served < total + SLACK,
        "a full pull of {total} bytes made the phone serve {served}"
    );
    assert_eq!(phone.open_handles(), 0, "device file handles left open");

    let target = lab.restore("latest", "restored");
    assert_same_files(&on_phone, &target);
    // Restored files keep the phone's modification times.
    for p in on_phone.keys() {
        let a = fs::metadata(lab.lib.join(p)).unwrap().modified().unwrap();
        let b = fs::metadata(target.join(p)).unwrap().modified().unwrap();
        assert_eq!(a, b, "{p}: mtime not kept");
    }

    let snaps = lab.snapshots();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let src = &snaps[0]["source"];
    assert_eq!(s(src, "kind"), "iphone", "{src}");
    let dev = &src["device"];
    assert_eq!(s(dev, "udid"), cfg.udid, "{src}");
    assert_eq!(s(dev, "name"), "Anna's iPhone", "{src}");
    assert_eq!(s(dev, "model"), "iPhone16,1", "{src}");
    assert_eq!(s(dev, "ios_version"), "18.1", "{src}");
    assert_eq!(snaps[0]["files"].as_u64(), Some(on_phone.len() as u64));
}

// ---------------------------------------------------------------------------------------
// 3. incremental pull

#[test]
fn incremental_pull_transfers_only_new_files() {
    let lab = Lab::new(20, 3);
    let phone = start(lab.cfg());
    let before = dcim_files(&lab.lib);
    let first = lab.snapshot(&phone, &[]);
    assert_eq!(summary_u64(&first, "files_new"), before.len() as u64);
    let served_first = phone.afc_bytes_served();
    assert!(served_first >= total_bytes(&before));

    // Two new photos on the phone.
    let a = write_random(&lab.lib.join("DCIM/100APPLE/IMG_0901.HEIC"), 901, 300_001);
    let b = write_random(&lab.lib.join("DCIM/101APPLE/IMG_0902.MOV"), 902, 123_457);
    let new_bytes = (a.len() + b.len()) as u64;

    let second = lab.snapshot(&phone, &[]);
    let delta = phone.afc_bytes_served() - served_first;
    assert!(
        delta >= new_bytes && delta < new_bytes + SLACK,
        "second snapshot pulled {delta} bytes for {new_bytes} bytes of new files"
    );
    assert_eq!(summary_u64(&second, "files_new"), 2, "{second}");
    assert_eq!(summary_u64(&second, "files_changed"), 0, "{second}");
    assert_eq!(
        summary_u64(&second, "files_unchanged"),
        before.len() as u64,
        "{second}"
    );
    assert_eq!(
        summary_u64(&second, "files_total"),
        before.len() as u64 + 2,
        "{second}"
    );

    // Nothing changed: no file bytes at all.
    let served_second = phone.afc_bytes_served();
    let third = lab.snapshot(&phone, &[]);
    assert_eq!(
        phone.afc_bytes_served(),
        served_second,
        "an unchanged phone still had file bytes pulled"
    );
    assert_eq!(summary_u64(&third, "files_new"), 0, "{third}");
    assert_eq!(summary_u64(&third, "files_changed"), 0, "{third}");
    assert_eq!(summary_u64(&third, "bytes_read"), 0, "{third}");
    assert_eq!(
        summary_u64(&third, "files_unchanged"),
        before.len() as u64 + 2,
        "{third}"
    );

    let target = lab.restore("latest", "restored");
    assert_same_files(&dcim_files(&lab.lib), &target);
}

// ---------------------------------------------------------------------------------------
// 4. errors

/// `snapshot iphone EXTRA` must fail with `needle` in stderr and leave the repository as it
/// was.
#[track_caller]
fn refused(lab: &Lab, addr: &str, extra: &[&str], needle: &str) -> Out {
    let before = listing(&lab.sv.repo);
    let mut args = vec!["snapshot", "iphone"];
    args.extend_from_slice(extra);
    let out = lab.run_at(addr, &args);
    assert_failed(&out);
    assert_stderr(&out, needle);
    assert!(
        !out.stderr.contains("panicked"),
        "snapvault panicked:\n{out}"
    );
    assert_unchanged(&before, &lab.sv.repo, "a refused `snapshot iphone`");
    out
}

#[test]
fn no_device_is_a_clear_error() {
    let lab = Lab::new(2, 4);
    let mut cfg = lab.cfg();
    cfg.devices = 0;
    let phone = start(cfg);
    let out = refused(
        &lab,
        &phone.usbmuxd_address(),
        &[],
        "no iPhone found: connect it with a USB cable",
    );
    assert_stderr(&out, "unlock it");
}

#[test]
fn several_devices_need_udid_and_udid_picks_one() {
    let lab = Lab::new(3, 5);
    let mut cfg = lab.cfg();
    cfg.devices = 2;
    let phone = start(cfg.clone());
    let addr = phone.usbmuxd_address();
    let out = refused(&lab, &addr, &[], "say which one to use with --device");
    for i in 0..2 {
        assert_stderr(&out, &cfg.device_udid(i));
    }
    // A UDID that is not attached.
    refused(
        &lab,
        &addr,
        &["--udid", "00000000-DOESNOTEXIST"],
        "no connected iPhone has UDID 00000000-DOESNOTEXIST",
    );

    // --device picks the second phone.
    let second = cfg.device_udid(1);
    let v = lab.snapshot(&phone, &["--device", &second]);
    assert_eq!(summary_u64(&v, "errors"), 0, "{v}");
    let snaps = lab.snapshots();
    assert_eq!(snaps.len(), 1);
    let dev = &snaps[0]["source"]["device"];
    assert_eq!(s(dev, "udid"), second, "{dev}");
    assert_eq!(s(dev, "name"), cfg.device_name(1), "{dev}");
    let target = lab.restore("latest", "restored");
    assert_same_files(&dcim_files(&lab.lib), &target);
}

#[test]
fn usbmuxd_not_running_is_a_clear_error() {
    let lab = Lab::new(1, 6);
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let out = refused(&lab, &closed, &[], "usbmuxd is not running");
    assert_stderr(&out, "systemctl start usbmuxd");
    let sock = lab.path("no-such-usbmuxd-socket");
    let unix = format!("UNIX:{}", sock.display());
    refused(&lab, &unix, &[], "usbmuxd is not running");

    let out = run_plain(&closed, &["devices"]);
    assert_failed(&out);
    assert_stderr(&out, "usbmuxd is not running");
    let out = lab.run_at(&closed, &["verify-device"]);
    assert_failed(&out);
    assert_stderr(&out, "usbmuxd is not running");

    let out = run_plain("not-an-address", &["devices"]);
    assert_failed(&out);
    assert_stderr(&out, "USBMUXD_SOCKET_ADDRESS");
}

#[test]
fn icloud_only_original_is_reported_skipped_and_counted() {
    let lab = Lab::new(12, 10);
    let on_phone = dcim_files(&lab.lib);
    let cloud = "DCIM/100APPLE/IMG_0005.HEIC";
    assert!(on_phone.contains_key(cloud), "sample has no {cloud}");
    let mut cfg = lab.cfg();
    cfg.icloud_only = vec![cloud.into()];
    let phone = start(cfg);

    let out = lab.run(&phone, &["snapshot", "iphone", "--json"]);
    assert_eq!(out.code, Some(3), "an incomplete snapshot exits 3:\n{out}");
    let v = out.json();
    assert_eq!(summary_u64(&v, "errors"), 1, "{v}");
    assert_eq!(
        summary_u64(&v, "files_total"),
        on_phone.len() as u64 - 1,
        "{v}"
    );
    assert_eq!(v["incomplete"], Value::Bool(true), "{v}");
    // Reported by path, with what to do about it.
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains(cloud))
        .unwrap_or_else(|| panic!("{cloud} not reported:\n{out}"));
    assert!(line.contains("iCloud"), "no iCloud hint: {line}");
    assert_eq!(phone.open_handles(), 0);

    // Everything else is backed up byte-exact.
    let mut expected = on_phone.clone();
    expected.remove(cloud);
    let target = lab.restore("latest", "restored");
    assert_same_files(&expected, &target);

    assert_eq!(
        v["vanished"]["count"].as_u64(),
        Some(0),
        "nothing was deleted: {v}"
    );

    // verify-device calls it unreadable, not safe.
    let out = lab.run(&phone, &["verify-device", "--json"]);
    assert_eq!(out.code, Some(5), "{out}");
    let v = out.json();
    assert_eq!(v["safe"].as_u64(), Some(on_phone.len() as u64 - 1), "{v}");
    let problems = list(&v["problems"], "problems");
    assert_eq!(problems.len(), 1, "{v}");
    assert_eq!(s(&problems[0], "path"), cloud);
    // Not in the snapshot (and not readable on the phone either).
    assert!(
        ["missing", "unreadable"].contains(&s(&problems[0], "status")),
        "{v}"
    );
}

#[test]
fn unreadable_photo_is_not_reported_as_vanished() {
    let lab = Lab::new(8, 19);
    let cloud = "DCIM/100APPLE/IMG_0005.HEIC";
    let phone = start(lab.cfg());
    lab.snapshot(&phone, &[]);
    drop(phone);
    // The original is offloaded to iCloud: listed on the phone (new mtime), unreadable.
    let p = lab.lib.join(cloud);
    let mtime = fs::metadata(&p).unwrap().modified().unwrap() + Duration::from_secs(60);
    File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_times(FileTimes::new().set_modified(mtime))
        .unwrap();
    let mut cfg = lab.cfg();
    cfg.icloud_only = vec![cloud.into()];
    let phone = start(cfg);
    let out = lab.run(&phone, &["snapshot", "iphone", "--json"]);
    assert_eq!(out.code, Some(3), "{out}");
    let v = out.json();
    assert_eq!(summary_u64(&v, "errors"), 1, "{v}");
    let vanished: Vec<&str> = list(&v["vanished"]["paths"], "vanished.paths")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        !vanished.contains(&cloud),
        "{cloud} is still on the phone (unreadable), yet reported as gone: {v}"
    );
}

// ---------------------------------------------------------------------------------------
// 5. unplugged mid-transfer

#[test]
fn unplug_mid_transfer_keeps_a_partial_snapshot_and_the_next_run_resumes() {
    let lab = Lab::new(40, 11);
    let on_phone = dcim_files(&lab.lib);
    let total = total_bytes(&on_phone);
    let mut cfg = lab.cfg();
    cfg.disconnect_after_bytes = Some(total / 2);
    let phone = start(cfg);

    let out = lab.run(&phone, &["snapshot", "iphone"]);
    assert_failed(&out);
    assert_stderr(&out, "the iPhone disconnected");
    assert_stderr(&out, "partial snapshot");
    assert!(phone.unplugged(), "the fake phone was never unplugged");
    drop(phone);

    // The repository is sound.
    let check = lab.sv.run(&["check", "--read-data"]);
    assert_eq!(check.code, Some(0), "check after an unplug:\n{check}");

    // One partial snapshot, holding part of the phone, byte-exact.
    let snaps = lab.snapshots();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let partial = &snaps[0];
    assert!(
        list(&partial["tags"], "tags").contains(&Value::from("partial")),
        "{partial}"
    );
    assert_eq!(partial["incomplete"], Value::Bool(true), "{partial}");
    let partial_id = s(partial, "id").to_string();
    let target = lab.restore(&partial_id, "partial");
    let got = dcim_files(&target);
    assert!(
        !got.is_empty() && got.len() < on_phone.len(),
        "the partial snapshot holds {} of {} files",
        got.len(),
        on_phone.len()
    );
    for (p, data) in &got {
        assert!(
            on_phone.get(p) == Some(data),
            "{p} in the partial snapshot differs from the phone"
        );
    }
    let partial_bytes = total_bytes(&got);

    // Plugged in again: the next run completes and does not pull what it already has.
    let phone = start(lab.cfg());
    let v = lab.snapshot(&phone, &[]);
    assert_eq!(summary_u64(&v, "errors"), 0, "{v}");
    assert_eq!(v["incomplete"], Value::Bool(false), "{v}");
    assert_eq!(
        summary_u64(&v, "files_unchanged"),
        got.len() as u64,
        "the files of the partial snapshot were read again: {v}"
    );
    let served = phone.afc_bytes_served();
    assert!(
        served < total,
        "the resumed run pulled {served} bytes, a full pull is {total}"
    );
    assert!(
        served < total - partial_bytes + SLACK,
        "the resumed run pulled {served} bytes; {} were still missing",
        total - partial_bytes
    );
    let snaps = lab.snapshots();
    assert_eq!(snaps.len(), 2);
    assert!(
        !list(&snaps[1]["tags"], "tags").contains(&Value::from("partial")),
        "{}",
        snaps[1]
    );
    let target = lab.restore("latest", "final");
    assert_same_files(&on_phone, &target);
    let check = lab.sv.run(&["check", "--read-data"]);
    assert_eq!(check.code, Some(0), "{check}");
    drop(phone);

    // Unplugged while verify-device reads: an error, never a verdict.
    let mut cfg = lab.cfg();
    cfg.disconnect_after_bytes = Some(total / 2);
    let phone = start(cfg);
    let out = lab.run(&phone, &["verify-device"]);
    assert_failed(&out);
    assert_stderr(&out, "the iPhone disconnected");
    assert!(!out.stdout.contains("safe to delete"), "{out}");
}

#[test]
fn unplug_before_the_first_file_is_read_saves_nothing_and_the_next_run_is_complete() {
    let lab = Lab::new(6, 15);
    let on_phone = dcim_files(&lab.lib);
    let mut cfg = lab.cfg();
    cfg.disconnect_after_bytes = Some(1000);
    let phone = start(cfg);
    let out = lab.run(&phone, &["snapshot", "iphone"]);
    assert_failed(&out);
    assert_stderr(&out, "the iPhone disconnected");
    assert!(!out.stderr.contains("panicked"), "{out}");
    drop(phone);
    assert!(
        lab.snapshots().is_empty(),
        "a snapshot of nothing was saved"
    );
    let check = lab.sv.run(&["check", "--read-data"]);
    assert_eq!(check.code, Some(0), "{check}");

    let phone = start(lab.cfg());
    let v = lab.snapshot(&phone, &[]);
    assert_eq!(summary_u64(&v, "files_new"), on_phone.len() as u64, "{v}");
    let target = lab.restore("latest", "restored");
    assert_same_files(&on_phone, &target);
}

/// A complete snapshot, then new photos that sort first (`IMG_0000.*`), and the phone is
/// unplugged while the second of them is read. `delete` is removed from the phone before
/// that run. Returns the lab and the size of the second new photo (the only file not yet
/// backed up).
fn unplugged_during_an_incremental_run(delete: Option<&str>) -> (Lab, u64) {
    let lab = Lab::new(30, 16);
    let phone = start(lab.cfg());
    lab.snapshot(&phone, &[]);
    drop(phone);
    if let Some(d) = delete {
        fs::remove_file(lab.lib.join(d)).unwrap();
    }
    let a = write_random(&lab.lib.join("DCIM/100APPLE/IMG_0000.HEIC"), 1000, 200_000);
    let b = write_random(&lab.lib.join("DCIM/100APPLE/IMG_0000.MOV"), 1001, 200_000);
    let mut cfg = lab.cfg();
    cfg.disconnect_after_bytes = Some(a.len() as u64 + b.len() as u64 / 2);
    let phone = start(cfg);
    let out = lab.run(&phone, &["snapshot", "iphone"]);
    assert_failed(&out);
    assert_stderr(&out, "partial snapshot");
    (lab, b.len() as u64)
}

#[test]
fn unplug_during_an_incremental_run_does_not_pull_old_photos_again() {
    let (lab, missing) = unplugged_during_an_incremental_run(None);
    let phone = start(lab.cfg());
    let v = lab.snapshot(&phone, &[]);
    let served = phone.afc_bytes_served();
    assert!(
        served < missing + SLACK,
        "only {missing} bytes were not backed up yet, but the phone served {served}: {v}"
    );
    let target = lab.restore("latest", "restored");
    assert_same_files(&dcim_files(&lab.lib), &target);
}

#[test]
fn unplug_during_an_incremental_run_does_not_hide_vanished_photos() {
    let gone = "DCIM/100APPLE/IMG_0010.HEIC";
    let (lab, _) = unplugged_during_an_incremental_run(Some(gone));
    let phone = start(lab.cfg());
    let v = lab.snapshot(&phone, &[]);
    let paths: Vec<&str> = list(&v["vanished"]["paths"], "vanished.paths")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        paths,
        [gone],
        "deleted since the last complete snapshot: {v}"
    );
}

#[test]
fn unplug_warning_does_not_blame_unreadable_files() {
    let lab = Lab::new(12, 18);
    let total = total_bytes(&dcim_files(&lab.lib));
    let mut cfg = lab.cfg();
    cfg.disconnect_after_bytes = Some(total / 2);
    let phone = start(cfg);
    let out = lab.run(&phone, &["snapshot", "iphone"]);
    assert_failed(&out);
    assert_stderr(&out, "partial snapshot");
    assert!(
        !out.stderr
            .contains("0 file(s) or folder(s) could not be read"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------
// 6. verify-device

/// Overwrite a few bytes in the middle of `path` in place, keeping its size and mtime.
fn tamper_keeping_size_and_mtime(path: &Path) {
    let md = fs::metadata(path).unwrap();
    let mtime = md.modified().unwrap();
    let mut f = OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(md.len() / 2)).unwrap();
    f.write_all(b"tampered").unwrap();
    f.set_times(FileTimes::new().set_modified(mtime)).unwrap();
    drop(f);
    let after = fs::metadata(path).unwrap();
    assert_eq!(after.len(), md.len());
    assert_eq!(after.modified().unwrap(), mtime);
}

#[test]
fn verify_device_compares_content_and_lists_exactly_what_is_not_safe() {
    let lab = Lab::new(15, 12);
    let phone = start(lab.cfg());

    // Nothing backed up yet.
    let out = lab.run(&phone, &["verify-device"]);
    assert_failed(&out);
    assert_stderr(&out, "snapvault snapshot iphone");

    lab.snapshot(&phone, &[]);
    let n = dcim_files(&lab.lib).len();
    let out = lab.ok(&phone, &["verify-device"]);
    assert!(
        out.stdout.contains(&format!("safe to delete: {n} of {n}")),
        "{out}"
    );
    assert_eq!(phone.open_handles(), 0);
    // It really reads the files: about the whole library again.
    let served = phone.afc_bytes_served();

    let changed = "DCIM/100APPLE/IMG_0002.HEIC";
    let added = "DCIM/100APPLE/IMG_0950.JPG";
    tamper_keeping_size_and_mtime(&lab.lib.join(changed));
    write_random(&lab.lib.join(added), 950, 77_777);

    let out = lab.run(&phone, &["verify-device"]);
    assert_eq!(out.code, Some(5), "{out}");
    assert!(
        phone.afc_bytes_served() > served,
        "verify-device read nothing"
    );
    assert!(
        out.stdout
            .contains(&format!("safe to delete: {} of {}", n - 1, n + 1)),
        "{out}"
    );
    let problem_lines: Vec<&str> = out.stdout.lines().filter(|l| l.contains("DCIM/")).collect();
    assert_eq!(
        problem_lines.len(),
        2,
        "exactly two files are not safe:\n{out}"
    );
    assert!(
        problem_lines
            .iter()
            .any(|l| l.starts_with("differs") && l.contains(changed)),
        "{changed} not reported as differing:\n{out}"
    );
    assert!(
        problem_lines
            .iter()
            .any(|l| l.starts_with("missing") && l.contains(added)),
        "{added} not reported as missing:\n{out}"
    );

    let out = lab.run(&phone, &["verify-device", "--json"]);
    assert_eq!(out.code, Some(5), "{out}");
    let v = out.json();
    assert_eq!(v["files"].as_u64(), Some(n as u64 + 1), "{v}");
    assert_eq!(v["safe"].as_u64(), Some(n as u64 - 1), "{v}");
    assert_eq!(v["all_safe"], Value::Bool(false), "{v}");
    let mut problems: Vec<(String, String)> = list(&v["problems"], "problems")
        .iter()
        .map(|p| (s(p, "path").to_string(), s(p, "status").to_string()))
        .collect();
    problems.sort();
    assert_eq!(
        problems,
        vec![
            (changed.to_string(), "differs".to_string()),
            (added.to_string(), "missing".to_string()),
        ],
        "{v}"
    );
    assert_eq!(phone.open_handles(), 0);
}

#[test]
fn verify_device_does_not_call_files_safe_whose_data_is_gone() {
    let lab = Lab::new(4, 17);
    let phone = start(lab.cfg());
    lab.snapshot(&phone, &[]);
    // Data and tree blobs live in separate packs; the biggest pack holds the photos.
    let (_, data_pack) = pack_files(&lab.sv.repo)
        .into_iter()
        .max_by_key(|(_, p)| fs::metadata(p).unwrap().len())
        .expect("no packs");
    fs::remove_file(&data_pack).unwrap();
    let check = lab.sv.run(&["check"]);
    assert_failed(&check);
    let out = lab.run(&phone, &["verify-device"]);
    assert_eq!(
        out.code,
        Some(5),
        "the backup is gone but verify-device says:\n{out}"
    );
    assert!(out.stdout.contains("safe to delete: 0 of"), "{out}");
}

// ---------------------------------------------------------------------------------------
// 7. device file handles

#[test]
fn no_device_file_handles_leak_over_1000_files() {
    let lab = Lab::new(0, 13);
    for i in 0..1000u64 {
        let dir = if i < 600 { "100APPLE" } else { "101APPLE" };
        let path = lab.lib.join(format!("DCIM/{dir}/IMG_{i:04}.JPG"));
        write_random(&path, 10_000 + i, 512 + (i as usize * 37) % 2048);
    }
    let on_phone = dcim_files(&lab.lib);
    assert_eq!(on_phone.len(), 1000);
    let phone = start(lab.cfg());
    let v = lab.snapshot(&phone, &[]);
    assert_eq!(summary_u64(&v, "files_total"), 1000, "{v}");
    assert_eq!(summary_u64(&v, "errors"), 0, "{v}");
    assert_eq!(
        phone.open_handles(),
        0,
        "device file handles left open after 1,000 files"
    );
    drop(phone);

    // afcd with room for only two open files: every file is still read.
    let mut cfg = lab.cfg();
    cfg.max_open_files = Some(2);
    let phone = start(cfg);
    let v = lab.snapshot(&phone, &["--force"]);
    assert_eq!(summary_u64(&v, "errors"), 0, "{v}");
    assert_eq!(summary_u64(&v, "files_total"), 1000, "{v}");
    assert_eq!(summary_u64(&v, "bytes_read"), total_bytes(&on_phone), "{v}");
    assert_eq!(phone.open_handles(), 0);
    let out = lab.ok(&phone, &["verify-device"]);
    assert!(out.stdout.contains("safe to delete: 1000 of 1000"), "{out}");
    assert_eq!(phone.open_handles(), 0);

    let target = lab.restore("latest", "restored");
    assert_same_files(&on_phone, &target);
}

// ---------------------------------------------------------------------------------------
// 8. a phone that stops answering

#[test]
fn stalled_phone_times_out_instead_of_hanging() {
    let lab = Lab::new(3, 14);
    let mut cfg = lab.cfg();
    cfg.stall = true;
    let phone = start(cfg);
    // The device timeout is 30 s and cannot be shortened from the command line: allow 90 s.
    let cmd = with_mux(
        lab.sv.command(&["snapshot", "iphone"]),
        &phone.usbmuxd_address(),
    );
    let out = run_command(cmd, Duration::from_secs(90));
    assert_failed(&out);
    assert_stderr(&out, "stopped answering");
    assert_stderr(&out, "timed out");
    assert!(
        lab.snapshots().is_empty(),
        "a snapshot of nothing was saved"
    );
    let check = lab.sv.run(&["check"]);
    assert_eq!(check.code, Some(0), "{check}");
}
