//! The real client (`snapvault-source` on idevice) against the loopback phone
//! (`snapvault-fakephone`): usbmuxd over TCP, lockdownd with TLS, AFC over a temp folder.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use snapvault_fakephone::{FakePhone, FakePhoneConfig};
use snapvault_source::{Device, DeviceOptions, SourceError, UsbmuxdAddress, list_devices};

/// Deterministic, non-repeating-looking bytes.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn put(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

fn library() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    put(
        r,
        "DCIM/100APPLE/IMG_0001.HEIC",
        &pattern(3 * 1024 * 1024 + 17, 1),
    );
    put(
        r,
        "DCIM/100APPLE/IMG_0001.MOV",
        &pattern(9 * 1024 * 1024 + 5, 2),
    );
    put(r, "DCIM/100APPLE/IMG_0002.JPG", b"x");
    put(r, "DCIM/100APPLE/IMG_0003.PNG", b"");
    put(r, "DCIM/101CLOUD/IMG_0100.HEIC", &pattern(1000, 3));
    put(r, "DCIM/102IMPRT/IMG_0200.DNG", &pattern(70_000, 4));
    put(r, "DCIM/Other/nested/deeper.JPG", &pattern(10, 5));
    // Outside /DCIM: never listed.
    put(r, "PhotoData/Photos.sqlite", b"SQLite format 3\0");
    d
}

fn start(cfg: FakePhoneConfig) -> (FakePhone, UsbmuxdAddress) {
    let phone = FakePhone::start(cfg).unwrap();
    let addr = UsbmuxdAddress::parse(&phone.usbmuxd_address()).unwrap();
    (phone, addr)
}

fn opts() -> DeviceOptions {
    DeviceOptions {
        timeout: Duration::from_secs(10),
        ..DeviceOptions::default()
    }
}

/// Every handle is closed: the phone's count reaches 0. A close goes out before the end of
/// the file is reported (or a dropped reader returns) and the phone handles requests in
/// order, but its count catches up only when the close arrives — so wait for it (a leak
/// never settles; this is a liveness check, not a speed check).
#[track_caller]
fn assert_no_open_handles(phone: &FakePhone) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while phone.open_handles() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(phone.open_handles(), 0, "device handles left open");
}

fn read_all(dev: &Device, path: &str) -> Result<Vec<u8>, SourceError> {
    let mut r = dev.open(path)?;
    let mut out = Vec::new();
    match r.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        Err(e) => match SourceError::from_io(&e) {
            Some(SourceError::Unreadable { path, reason }) => Err(SourceError::Unreadable {
                path: path.clone(),
                reason: reason.clone(),
            }),
            Some(SourceError::Disconnected) => Err(SourceError::Disconnected),
            Some(SourceError::Timeout { op }) => Err(SourceError::Timeout { op: op.clone() }),
            _ => Err(SourceError::Io(e)),
        },
    }
}

#[test]
fn lists_devices_with_name_model_version_and_trust() {
    let lib = library();
    let mut cfg = FakePhoneConfig::new(lib.path());
    cfg.name = "Anna's iPhone".into();
    cfg.model = "iPhone16,1".into();
    cfg.ios_version = "18.1".into();
    let (_phone, addr) = start(cfg.clone());
    let devs = list_devices(&addr).unwrap();
    assert_eq!(devs.len(), 1);
    let d = &devs[0];
    assert_eq!(d.udid, cfg.udid);
    assert_eq!(d.name, "Anna's iPhone");
    assert_eq!(d.model, "iPhone16,1");
    assert_eq!(d.ios_version, "18.1");
    assert!(d.paired);

    // Not trusted / trust revoked: still listed, with its name, but not paired.
    for (paired, revoked) in [(false, false), (true, true)] {
        let mut c = cfg.clone();
        c.paired = paired;
        c.trust_revoked = revoked;
        let (_p, addr) = start(c);
        let devs = list_devices(&addr).unwrap();
        assert_eq!(devs.len(), 1);
        assert_eq!(devs[0].name, "Anna's iPhone");
        assert!(!devs[0].paired, "paired={paired} revoked={revoked}");
    }

    let mut c = cfg.clone();
    c.devices = 0;
    let (_p, addr) = start(c);
    assert!(list_devices(&addr).unwrap().is_empty());
}

#[test]
fn walks_dcim_sorted_with_sizes_and_times() {
    let lib = library();
    let mtime = SystemTime::UNIX_EPOCH + Duration::new(1_690_000_000, 123_456_789);
    let f = fs::File::options()
        .write(true)
        .open(lib.path().join("DCIM/100APPLE/IMG_0002.JPG"))
        .unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    let (_phone, addr) = start(FakePhoneConfig::new(lib.path()));
    let dev = Device::connect(&addr, None, opts()).unwrap();
    assert!(dev.info().paired);
    assert_eq!(dev.info().model, "iPhone15,2");
    let entries = dev.list_dcim().unwrap();
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "DCIM/100APPLE/IMG_0001.HEIC",
            "DCIM/100APPLE/IMG_0001.MOV",
            "DCIM/100APPLE/IMG_0002.JPG",
            "DCIM/100APPLE/IMG_0003.PNG",
            "DCIM/101CLOUD/IMG_0100.HEIC",
            "DCIM/102IMPRT/IMG_0200.DNG",
            "DCIM/Other/nested/deeper.JPG",
        ]
    );
    let sizes: Vec<u64> = entries.iter().map(|e| e.size).collect();
    assert_eq!(
        sizes,
        [
            3 * 1024 * 1024 + 17,
            9 * 1024 * 1024 + 5,
            1,
            0,
            1000,
            70_000,
            10
        ]
    );
    let jpg = &entries[2];
    assert_eq!(jpg.mtime_ns, 1_690_000_000_123_456_789);
    assert!(jpg.birthtime_ns.is_some());
    // Listing reads no file data.
    assert_eq!(dev.bytes_transferred(), 0);

    // A phone without /DCIM has an empty camera roll.
    let empty = tempfile::tempdir().unwrap();
    let (_p2, addr2) = start(FakePhoneConfig::new(empty.path()));
    let dev2 = Device::connect(&addr2, None, opts()).unwrap();
    assert!(dev2.list_dcim().unwrap().is_empty());
}

#[test]
fn reads_files_byte_exact_in_large_requests() {
    let lib = library();
    let (phone, addr) = start(FakePhoneConfig::new(lib.path()));
    let dev = Device::connect(&addr, None, opts()).unwrap();
    let mut total = 0u64;
    for e in dev.list_dcim().unwrap() {
        let want = fs::read(lib.path().join(&e.path)).unwrap();
        let got = read_all(&dev, &e.path).unwrap();
        assert!(
            got == want,
            "{} differs ({} vs {} bytes)",
            e.path,
            got.len(),
            want.len()
        );
        total += want.len() as u64;
    }
    // Leading slash accepted too, zero-copy block API.
    let mut r = dev.open("/DCIM/100APPLE/IMG_0001.MOV").unwrap();
    let mut blocks = 0;
    let mut n = 0;
    while let Some(b) = r.next_block().unwrap() {
        assert!(b.len() <= 4 << 20);
        n += b.len();
        blocks += 1;
    }
    drop(r);
    assert_eq!(n, 9 * 1024 * 1024 + 5);
    assert_eq!(blocks, 3);
    total += n as u64;

    assert_eq!(dev.bytes_transferred(), total);
    assert_eq!(phone.afc_bytes_served(), total);
    // 1–4 MiB requests, not 8 KiB loops: 8 files + 1 re-read → a few dozen ops at most.
    assert_eq!(phone.max_read_request(), 4 << 20);
    assert!(
        phone.afc_read_ops() < 30,
        "{} read ops",
        phone.afc_read_ops()
    );
    assert_no_open_handles(&phone);
}

#[test]
fn usbmuxd_not_running() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = UsbmuxdAddress::tcp(format!("127.0.0.1:{port}"));
    let e = Device::connect(&addr, None, opts()).unwrap_err();
    assert!(matches!(e, SourceError::UsbmuxdNotRunning { .. }), "{e}");
    assert!(e.to_string().contains("usbmuxd"));
    let e = list_devices(&addr).unwrap_err();
    assert!(matches!(e, SourceError::UsbmuxdNotRunning { .. }), "{e}");
    let e = list_devices(&UsbmuxdAddress::unix("/nonexistent/usbmuxd")).unwrap_err();
    assert!(matches!(e, SourceError::UsbmuxdNotRunning { .. }), "{e}");
}

#[test]
fn device_selection_errors() {
    let lib = library();
    let mut cfg = FakePhoneConfig::new(lib.path());
    cfg.devices = 0;
    let (_p, addr) = start(cfg.clone());
    let e = Device::connect(&addr, None, opts()).unwrap_err();
    assert!(matches!(e, SourceError::NoDevice), "{e}");
    assert!(e.to_string().contains("USB cable"));

    cfg.devices = 2;
    let (_p, addr) = start(cfg.clone());
    match Device::connect(&addr, None, opts()).unwrap_err() {
        SourceError::SeveralDevices { udids } => {
            assert_eq!(udids, [cfg.device_udid(0), cfg.device_udid(1)])
        }
        e => panic!("{e}"),
    }
    let second = cfg.device_udid(1);
    let dev = Device::connect(&addr, Some(&second), opts()).unwrap();
    assert_eq!(dev.info().udid, second);
    assert_eq!(dev.info().name, cfg.device_name(1));
    assert_eq!(dev.list_dcim().unwrap().len(), 7);
    let e = Device::connect(&addr, Some("0000-NOPE"), opts()).unwrap_err();
    assert!(
        matches!(e, SourceError::UnknownDevice { ref udid } if udid == "0000-NOPE"),
        "{e}"
    );
}

#[test]
fn trust_and_lock_errors_say_what_to_do() {
    let lib = library();
    let base = FakePhoneConfig::new(lib.path());

    let mut c = base.clone();
    c.paired = false;
    let (_p, addr) = start(c);
    let e = Device::connect(&addr, None, opts()).unwrap_err();
    assert!(matches!(e, SourceError::NotTrusted), "{e}");
    assert!(
        e.to_string()
            .contains("unlock your iPhone and tap Trust, then run again")
    );

    let mut c = base.clone();
    c.trust_revoked = true;
    let (_p, addr) = start(c);
    let e = Device::connect(&addr, None, opts()).unwrap_err();
    assert!(matches!(e, SourceError::TrustRevoked), "{e}");
    assert!(e.to_string().contains("tap Trust"));

    // Locked, and the pair record has no escrow bag to start services with.
    let mut c = base.clone();
    c.locked = true;
    c.record_without_escrow_bag = true;
    let (_p, addr) = start(c);
    let e = Device::connect(&addr, None, opts()).unwrap_err();
    assert!(matches!(e, SourceError::Locked), "{e}");
    assert!(e.to_string().contains("unlock it"));

    // With the bag (as usbmuxd keeps it from the pairing) a locked phone serves.
    let mut c = base.clone();
    c.locked = true;
    let (_p, addr) = start(c);
    let dev = Device::connect(&addr, None, opts()).unwrap();
    assert!(!dev.list_dcim().unwrap().is_empty());
}

#[test]
fn icloud_only_file_is_unreadable_and_session_goes_on() {
    let lib = library();
    let mut cfg = FakePhoneConfig::new(lib.path());
    cfg.icloud_only = vec!["DCIM/101CLOUD/IMG_0100.HEIC".into()];
    let (phone, addr) = start(cfg);
    let dev = Device::connect(&addr, None, opts()).unwrap();
    let entries = dev.list_dcim().unwrap();
    let mut ok = 0;
    let mut skipped = Vec::new();
    for e in &entries {
        match read_all(&dev, &e.path) {
            Ok(b) => {
                assert_eq!(b.len() as u64, e.size);
                ok += 1;
            }
            Err(err) => {
                assert!(!err.is_fatal(), "{err}");
                assert!(matches!(err, SourceError::Unreadable { .. }));
                assert!(err.to_string().contains("iCloud"), "{err}");
                skipped.push(e.path.clone());
            }
        }
    }
    assert_eq!(skipped, ["DCIM/101CLOUD/IMG_0100.HEIC"]);
    assert_eq!(ok, entries.len() - 1);
    assert_no_open_handles(&phone);
    // A path that does not exist is also a per-file error.
    let e = dev.open("DCIM/100APPLE/GONE.HEIC").unwrap_err();
    assert!(!e.is_fatal(), "{e}");
}

#[test]
fn disconnect_mid_file_ends_the_session_cleanly() {
    let lib = library();
    let mut cfg = FakePhoneConfig::new(lib.path());
    cfg.disconnect_after_bytes = Some(5 * 1024 * 1024);
    let (phone, addr) = start(cfg);
    let dev = Device::connect(&addr, None, opts()).unwrap();
    let entries = dev.list_dcim().unwrap();
    let t = Instant::now();
    let mut read = 0;
    let mut err = None;
    for e in &entries {
        match read_all(&dev, &e.path) {
            Ok(_) => read += 1,
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let err = err.expect("the phone was unplugged");
    assert!(matches!(err, SourceError::Disconnected), "{err}");
    assert!(err.is_fatal());
    assert_eq!(
        read, 1,
        "the 3 MiB file fits before the cut, the 9 MiB one does not"
    );
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "hung: {:?}",
        t.elapsed()
    );
    assert!(phone.unplugged());
    // Everything afterwards fails fast with the same error; no panic, no hang.
    assert!(matches!(dev.list_dcim(), Err(SourceError::Disconnected)));
    assert!(matches!(
        dev.open("DCIM/100APPLE/IMG_0002.JPG"),
        Err(SourceError::Disconnected)
    ));
    drop(dev);
    // The phone is gone from usbmuxd too.
    assert!(matches!(
        Device::connect(&addr, None, opts()),
        Err(SourceError::NoDevice)
    ));
}

#[test]
fn stalled_phone_times_out() {
    let lib = library();
    let mut cfg = FakePhoneConfig::new(lib.path());
    cfg.stall = true;
    let (_phone, addr) = start(cfg);
    let dev = Device::connect(
        &addr,
        None,
        DeviceOptions {
            timeout: Duration::from_millis(500),
            ..DeviceOptions::default()
        },
    )
    .unwrap();
    let t = Instant::now();
    let err = read_all(&dev, "DCIM/100APPLE/IMG_0002.JPG").unwrap_err();
    assert!(matches!(err, SourceError::Timeout { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("reading DCIM/100APPLE/IMG_0002.JPG"),
        "{err}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "hung: {:?}",
        t.elapsed()
    );
    // The connection is out of step after a timeout: the session is over.
    assert!(matches!(dev.list_dcim(), Err(SourceError::Timeout { .. })));
}

#[test]
fn thousand_small_files_leak_no_handles() {
    let lib = tempfile::tempdir().unwrap();
    for i in 0..1000 {
        put(
            lib.path(),
            &format!("DCIM/{}APPLE/IMG_{i:04}.JPG", 100 + i / 250),
            &pattern(i % 300, i as u64),
        );
    }
    let mut cfg = FakePhoneConfig::new(lib.path());
    cfg.max_open_files = Some(2);
    let (phone, addr) = start(cfg);
    let dev = Device::connect(&addr, None, opts()).unwrap();
    let entries = dev.list_dcim().unwrap();
    assert_eq!(entries.len(), 1000);
    for e in &entries {
        let got = read_all(&dev, &e.path).unwrap();
        assert_eq!(got.len() as u64, e.size, "{}", e.path);
    }
    assert_no_open_handles(&phone);

    // Dropping a reader half-way also closes its handle.
    for e in entries.iter().rev().take(10) {
        let mut r = dev.open(&e.path).unwrap();
        let mut one = [0u8; 1];
        let _ = r.read(&mut one).unwrap();
        drop(r);
        assert_no_open_handles(&phone);
    }
    let big = tempfile::tempdir().unwrap();
    put(big.path(), "DCIM/100APPLE/BIG.MOV", &pattern(24 << 20, 9));
    let (phone, addr) = start(FakePhoneConfig::new(big.path()));
    let dev = Device::connect(&addr, None, opts()).unwrap();
    let mut r = dev.open("DCIM/100APPLE/BIG.MOV").unwrap();
    let mut buf = vec![0u8; 1000];
    r.read_exact(&mut buf).unwrap();
    drop(r);
    assert_no_open_handles(&phone);
    // The block taken and the two fetched ahead of it, at most.
    let served = phone.afc_bytes_served();
    assert!(served <= 3 * (4 << 20), "prefetch is not bounded: {served}");
}

#[test]
fn prefetch_overlaps_the_consumer() {
    // While the consumer sits on its first block, the reader keeps fetching the next ones
    // from the phone (bounded by prefetch_blocks). Observed through the bytes the phone has
    // served, not through timing.
    let lib = tempfile::tempdir().unwrap();
    put(lib.path(), "DCIM/100APPLE/CLIP.MOV", &pattern(2 << 20, 7));
    let (phone, addr) = start(FakePhoneConfig::new(lib.path()));
    let dev = Device::connect(
        &addr,
        None,
        DeviceOptions {
            read_block: 256 * 1024,
            prefetch_blocks: 2,
            ..opts()
        },
    )
    .unwrap();
    let mut r = dev.open("DCIM/100APPLE/CLIP.MOV").unwrap();
    let first = r.next_block().unwrap().unwrap();
    assert_eq!(first.len(), 256 * 1024);
    // Wait (generously; this is a liveness check, not a speed check) for read-ahead.
    let deadline = Instant::now() + Duration::from_secs(30);
    while phone.afc_bytes_served() < 3 * 256 * 1024 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let served = phone.afc_bytes_served();
    assert!(
        served >= 3 * 256 * 1024,
        "no read-ahead: {served} bytes served"
    );
    assert!(
        served <= 5 * 256 * 1024,
        "read-ahead is not bounded: {served}"
    );
    let mut n = first.len();
    while let Some(b) = r.next_block().unwrap() {
        n += b.len();
    }
    assert_eq!(n, 2 << 20);
}

/// usbmuxd on a Unix socket, where the system's listens (`UNIX:/path`): the same session.
#[cfg(unix)]
#[test]
fn usbmuxd_on_a_unix_socket() {
    let lib = library();
    let sock = lib.path().join("usbmuxd.sock");
    let phone = FakePhone::start_unix(FakePhoneConfig::new(lib.path()), &sock).unwrap();
    let addr = UsbmuxdAddress::parse(&phone.usbmuxd_address()).unwrap();
    assert_eq!(addr, UsbmuxdAddress::unix(&sock));
    let dev = Device::connect(&addr, None, opts()).unwrap();
    let got = read_all(&dev, "DCIM/100APPLE/IMG_0002.JPG").unwrap();
    assert_eq!(got, b"x");
}
