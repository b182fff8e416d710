//! Independent clients against the strict fake phone: libimobiledevice's tools (C, OpenSSL),
//! ifuse (FUSE over libimobiledevice) and pymobiledevice3 (Python), unmodified, as a new user
//! would run them. Device list, lockdown values, pairing through the Trust prompt, pairing
//! validation over the client-authenticated TLS session, AFC listings and byte-exact pulls
//! of a library with edits and a large video. snapvault's own client (`snapvault-source`)
//! goes through the same: it pairs, pulls byte-exact, and the record it made is then used by
//! libimobiledevice and pymobiledevice3 (so it is a record as the other hosts make them).
//!
//! The tools come from `.ci/interop.sh setup` (CI runs it). Where they are missing a test
//! says so on stderr and passes without checking; under CI (`CI` set) a missing tool fails
//! the test, so CI always checks. ifuse additionally needs a usable FUSE device; where
//! mounting is impossible it is skipped with a message, also in CI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use snapvault_fakephone::{FakePhone, FakePhoneConfig};

const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// Deterministic bytes (xorshift), cheap to make in any size.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A camera roll with an edit (render + AAE + PhotoData mutation), a Live Photo and a large
/// video (more than a few AFC reads).
fn library(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let files: Vec<(&str, usize)> = vec![
        ("DCIM/100APPLE/IMG_0001.HEIC", 2_500_000),
        ("DCIM/100APPLE/IMG_0001.MOV", 3_100_000),
        ("DCIM/100APPLE/IMG_E0001.HEIC", 2_400_000),
        ("DCIM/100APPLE/IMG_O0001.AAE", 1_200),
        ("DCIM/100APPLE/IMG_0002.MOV", 41_000_000),
        ("DCIM/101APPLE/IMG_0003.JPG", 1_800_000),
        (
            "PhotoData/Mutations/DCIM/100APPLE/IMG_0001/Adjustments/FullSizeRender.heic",
            2_300_000,
        ),
        (
            "PhotoData/Mutations/DCIM/100APPLE/IMG_0001/Adjustments/Adjustments.plist",
            900,
        ),
    ];
    let mut out = BTreeMap::new();
    for (i, (p, len)) in files.into_iter().enumerate() {
        let data = bytes(len, 0x9e37_79b9 + i as u64);
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &data).unwrap();
        out.insert(p.to_string(), data);
    }
    out
}

struct Lab {
    _tmp: tempfile::TempDir,
    lib: PathBuf,
    files: BTreeMap<String, Vec<u8>>,
    scratch: PathBuf,
}

fn lab() -> Lab {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("phone");
    let files = library(&lib);
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    Lab {
        lib,
        files,
        scratch,
        _tmp: tmp,
    }
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// `Some(path)` of a tool, or `None` after saying the test is skipped (a failure in CI).
fn tool(name: &str, path: Option<PathBuf>) -> Option<PathBuf> {
    let found = path.filter(|p| p.is_file()).or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        let msg = format!("interop: {name} is not installed; run `.ci/interop.sh setup` (CI does)");
        assert!(!in_ci(), "{msg}");
        eprintln!("SKIPPED: {msg}");
    }
    found
}

fn pymobiledevice3() -> Option<PathBuf> {
    let venv = std::env::var_os("SNAPVAULT_INTEROP_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/interop/venv"));
    tool("pymobiledevice3", Some(venv.join("bin/pymobiledevice3")))
}

/// Runs a tool against `phone` with a time limit; HOME is `home` (pymobiledevice3 keeps
/// pairing records there).
fn run(program: &Path, args: &[&str], phone: &FakePhone, home: &Path) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .env("USBMUXD_SOCKET_ADDRESS", phone.usbmuxd_address())
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > TOOL_TIMEOUT {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(program: &Path, args: &[&str], phone: &FakePhone, home: &Path) -> String {
    let o = run(program, args, phone, home);
    assert!(
        o.status.success(),
        "{} {args:?}: {}",
        program.display(),
        text(&o)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every file under `root`, relative path → bytes.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn assert_same(expected: &BTreeMap<String, Vec<u8>>, got: &BTreeMap<String, Vec<u8>>) {
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(got), names(expected));
    for (k, v) in expected {
        assert!(
            got[k] == *v,
            "{k} differs ({} vs {} bytes)",
            got[k].len(),
            v.len()
        );
    }
}

fn unpaired(lab: &Lab, trust_after: Duration) -> FakePhone {
    let mut cfg = FakePhoneConfig::new(&lab.lib);
    cfg.paired = false;
    cfg.trust_after = Some(trust_after);
    FakePhone::start(cfg).unwrap()
}

/// Runs `pair` until it stops reporting the pending Trust prompt.
fn pair_until_trusted(program: &Path, args: &[&str], phone: &FakePhone, home: &Path) -> Output {
    let started = Instant::now();
    loop {
        let o = run(program, args, phone, home);
        if o.status.success() || started.elapsed() > TOOL_TIMEOUT {
            return o;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn libimobiledevice_lists_reads_values_and_validates_the_pairing() {
    let (Some(id), Some(info), Some(pair)) = (
        tool("idevice_id", None),
        tool("ideviceinfo", None),
        tool("idevicepair", None),
    ) else {
        return;
    };
    let lab = lab();
    let cfg = FakePhoneConfig::new(&lab.lib);
    let phone = FakePhone::start(cfg.clone()).unwrap();
    let home = &lab.scratch;
    assert_eq!(ok(&id, &["-l"], &phone, home).trim(), cfg.udid);
    // Without a session: the public values only.
    let simple = ok(&info, &["-s"], &phone, home);
    assert!(simple.contains("DeviceName: Test iPhone"), "{simple}");
    assert!(!simple.contains("SerialNumber"), "{simple}");
    // Through the TLS session with the pair record's RSA host certificate.
    let full = ok(&info, &[], &phone, home);
    assert!(
        full.contains("SerialNumber: ") && full.contains("ProductVersion: 17.5.1"),
        "{full}"
    );
    let disk = ok(&info, &["-q", "com.apple.disk_usage"], &phone, home);
    assert!(disk.contains("TotalDiskCapacity: "), "{disk}");
    let v = ok(&pair, &["validate"], &phone, home);
    assert!(v.contains("SUCCESS"), "{v}");
    phone.stop();

    // A phone that forgot this computer: validation fails and says so.
    let mut cfg = FakePhoneConfig::new(&lab.lib);
    cfg.trust_revoked = true;
    let phone = FakePhone::start(cfg).unwrap();
    let o = run(&pair, &["validate"], &phone, home);
    assert!(!o.status.success(), "{}", text(&o));
    phone.stop();
}

#[test]
fn libimobiledevice_pairs_through_the_trust_prompt() {
    let (Some(info), Some(pair)) = (tool("ideviceinfo", None), tool("idevicepair", None)) else {
        return;
    };
    let lab = lab();
    let phone = unpaired(&lab, Duration::from_secs(1));
    let home = &lab.scratch;
    let o = run(&pair, &["pair"], &phone, home);
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("accept the trust dialog"),
        "{t}"
    );
    // Its certificates are SHA-1-signed RSA (OpenSSL), checked by the phone's own code.
    let o = pair_until_trusted(&pair, &["pair"], &phone, home);
    assert!(
        o.status.success() && text(&o).contains("SUCCESS"),
        "{}",
        text(&o)
    );
    assert!(ok(&pair, &["validate"], &phone, home).contains("SUCCESS"));
    assert!(ok(&info, &[], &phone, home).contains("SerialNumber: "));
    phone.stop();

    let mut cfg = FakePhoneConfig::new(&lab.lib);
    cfg.paired = false;
    cfg.deny_trust = true;
    let phone = FakePhone::start(cfg).unwrap();
    let o = run(&pair, &["pair"], &phone, home);
    assert!(text(&o).contains("denied"), "{}", text(&o));
    phone.stop();
}

#[test]
fn ifuse_mounts_the_media_root_byte_exact() {
    let (Some(ifuse), Some(fusermount)) = (tool("ifuse", None), tool("fusermount", None)) else {
        return;
    };
    let lab = lab();
    let phone = FakePhone::start(FakePhoneConfig::new(&lab.lib)).unwrap();
    let mnt = lab.scratch.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let o = run(&ifuse, &[mnt.to_str().unwrap()], &phone, &lab.scratch);
    if !o.status.success() {
        // No usable FUSE here (a container without /dev/fuse): nothing to check.
        eprintln!("SKIPPED: ifuse cannot mount here: {}", text(&o));
        return;
    }
    let got = tree(&mnt);
    let _ = run(
        &fusermount,
        &["-u", mnt.to_str().unwrap()],
        &phone,
        &lab.scratch,
    );
    assert_same(&lab.files, &got);
    phone.stop();
}

#[test]
fn pymobiledevice3_lists_reads_values_and_pulls_byte_exact() {
    let Some(py) = pymobiledevice3() else {
        return;
    };
    let lab = lab();
    let cfg = FakePhoneConfig::new(&lab.lib);
    let phone = FakePhone::start(cfg.clone()).unwrap();
    let home = &lab.scratch;
    let list = ok(&py, &["usbmux", "list"], &phone, home);
    assert!(
        list.contains(&cfg.udid) && list.contains("\"USB\""),
        "{list}"
    );
    let info = ok(&py, &["lockdown", "info"], &phone, home);
    assert!(
        info.contains("\"SerialNumber\"") && info.contains("17.5.1"),
        "{info}"
    );
    let ls = ok(&py, &["afc", "ls", "/DCIM/100APPLE"], &phone, home);
    for f in [
        "IMG_0001.HEIC",
        "IMG_E0001.HEIC",
        "IMG_0002.MOV",
        "IMG_O0001.AAE",
    ] {
        assert!(ls.contains(f), "{f} not in {ls}");
    }
    let out = lab.scratch.join("pulled");
    std::fs::create_dir_all(&out).unwrap();
    for dir in ["/DCIM", "/PhotoData"] {
        ok(
            &py,
            &["afc", "pull", dir, out.to_str().unwrap()],
            &phone,
            home,
        );
    }
    assert_same(&lab.files, &tree(&out));
    phone.stop();
}

#[test]
fn pymobiledevice3_pairs_through_the_trust_prompt() {
    let Some(py) = pymobiledevice3() else {
        return;
    };
    let lab = lab();
    let phone = unpaired(&lab, Duration::from_secs(1));
    let home = &lab.scratch;
    // It waits for the prompt itself; its certificates are SHA-256-signed RSA.
    let o = pair_until_trusted(&py, &["lockdown", "pair"], &phone, home);
    assert!(o.status.success(), "{}", text(&o));
    let ls = ok(&py, &["afc", "ls", "/DCIM"], &phone, home);
    assert!(ls.contains("100APPLE"), "{ls}");
    phone.stop();
}

/// Every file of the lab library read through snapvault's client.
fn pull_with_snapvault(dev: &snapvault_source::Device) -> BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let mut out = BTreeMap::new();
    for e in dev.list_dcim().unwrap() {
        let mut data = Vec::new();
        dev.open(&e.path).unwrap().read_to_end(&mut data).unwrap();
        assert_eq!(data.len() as u64, e.size, "{}", e.path);
        out.insert(e.path, data);
    }
    // Outside /DCIM snapvault lists nothing, but reads what it is asked for.
    for p in [
        "PhotoData/Mutations/DCIM/100APPLE/IMG_0001/Adjustments/FullSizeRender.heic",
        "PhotoData/Mutations/DCIM/100APPLE/IMG_0001/Adjustments/Adjustments.plist",
    ] {
        let mut data = Vec::new();
        dev.open(p).unwrap().read_to_end(&mut data).unwrap();
        out.insert(p.to_string(), data);
    }
    out
}

#[test]
fn snapvault_client_pairs_and_pulls_through_the_same_strict_checks() {
    use snapvault_source::{Device, DeviceOptions, Pairing, PairingEvent, UsbmuxdAddress};
    use std::sync::{Arc, Mutex};

    let lab = lab();
    let phone = unpaired(&lab, Duration::from_secs(1));
    let addr = UsbmuxdAddress::parse(&phone.usbmuxd_address()).unwrap();
    let told: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = told.clone();
    let opts = DeviceOptions {
        pairing: Some(Pairing {
            wait: Duration::from_secs(60),
            notify: Arc::new(move |e: &PairingEvent<'_>| {
                seen.lock().unwrap().push(format!("{e:?}"));
            }),
        }),
        ..DeviceOptions::default()
    };
    // The phone checks the record's certificates, then requires the new host certificate in
    // the TLS session; AFC only on the port StartService handed out.
    let dev = Device::connect(&addr, None, opts).unwrap();
    assert_eq!(told.lock().unwrap().len(), 2, "{:?}", told.lock().unwrap());
    assert_same(&lab.files, &pull_with_snapvault(&dev));
    drop(dev);

    // The record snapvault left with usbmuxd works for the independent clients: RSA keys
    // in PKCS#1 PEM that OpenSSL loads, a host certificate the phone accepts.
    let home = &lab.scratch;
    if let Some(pair) = tool("idevicepair", None) {
        let v = ok(&pair, &["validate"], &phone, home);
        assert!(v.contains("SUCCESS"), "{v}");
    }
    if let Some(info) = tool("ideviceinfo", None) {
        assert!(ok(&info, &[], &phone, home).contains("SerialNumber: "));
    }
    if let Some(py) = pymobiledevice3() {
        let ls = ok(&py, &["afc", "ls", "/DCIM"], &phone, home);
        assert!(ls.contains("100APPLE"), "{ls}");
    }
    phone.stop();
}
