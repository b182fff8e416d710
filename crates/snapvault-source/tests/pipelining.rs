//! The pull runs at the link's speed, not the protocol's round trips (issue 18.7): requests
//! go out without waiting for the replies to earlier ones — the attributes while listing,
//! the reads of a file, the next file while one is read. Observed through what the fake
//! phone saw (requests waiting for their replies at once, bytes served), never through
//! timing; the phone answers each request 20 ms after it arrived.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use snapvault_fakephone::{FakePhone, FakePhoneConfig};
use snapvault_source::{Device, DeviceOptions, UsbmuxdAddress};

fn put(root: &Path, rel: &str, len: usize) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, vec![(len % 251) as u8; len]).unwrap();
}

fn phone(lib: &Path) -> (FakePhone, Device) {
    let mut cfg = FakePhoneConfig::new(lib);
    cfg.latency = Some(Duration::from_millis(20));
    let phone = FakePhone::start(cfg).unwrap();
    let addr = UsbmuxdAddress::parse(&phone.usbmuxd_address()).unwrap();
    let opts = DeviceOptions {
        timeout: Duration::from_secs(10),
        read_block: 64 * 1024,
        prefetch_blocks: 4,
        ..DeviceOptions::default()
    };
    let dev = Device::connect(&addr, None, opts).unwrap();
    (phone, dev)
}

#[test]
fn listing_asks_for_the_attributes_of_a_folder_together() {
    let lib = tempfile::tempdir().unwrap();
    for i in 0..30 {
        put(lib.path(), &format!("DCIM/100APPLE/IMG_{i:04}.JPG"), 10);
    }
    let (phone, dev) = phone(lib.path());
    assert_eq!(dev.list_dcim().unwrap().len(), 30);
    let n = phone.max_requests_in_flight();
    assert!(n >= 2, "one request at a time ({n})");
}

#[test]
fn reads_of_a_file_are_in_flight_together() {
    let lib = tempfile::tempdir().unwrap();
    put(lib.path(), "DCIM/100APPLE/IMG_0001.MOV", 1 << 20);
    let (phone, dev) = phone(lib.path());
    let mut data = Vec::new();
    dev.open("DCIM/100APPLE/IMG_0001.MOV")
        .unwrap()
        .read_to_end(&mut data)
        .unwrap();
    assert_eq!(data.len(), 1 << 20);
    let n = phone.max_requests_in_flight();
    assert!(n >= 2, "one read at a time ({n})");
    drop(dev);
}

#[test]
fn the_next_file_is_fetched_while_one_is_read() {
    let lib = tempfile::tempdir().unwrap();
    put(lib.path(), "DCIM/100APPLE/IMG_0001.JPG", 100_000);
    put(lib.path(), "DCIM/100APPLE/IMG_0002.JPG", 100_000);
    put(lib.path(), "DCIM/100APPLE/IMG_0003.JPG", 100_000);
    let (phone, dev) = phone(lib.path());
    dev.prefetch("DCIM/100APPLE/IMG_0002.JPG");
    dev.prefetch("DCIM/100APPLE/IMG_0003.JPG");
    let mut r = dev.open("DCIM/100APPLE/IMG_0001.JPG").unwrap();
    let mut first = [0u8; 1];
    r.read_exact(&mut first).unwrap();
    // Without asking for them, the phone serves the two hinted files (liveness, not speed).
    let deadline = Instant::now() + Duration::from_secs(30);
    while phone.afc_bytes_served() < 300_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(phone.afc_bytes_served(), 300_000);
    drop(r);
    // Hinted again while they are fetched already: still fetched once.
    dev.prefetch("DCIM/100APPLE/IMG_0002.JPG");
    dev.prefetch("DCIM/100APPLE/IMG_0003.JPG");
    // The files fetched ahead are the ones opened next, byte for byte.
    for name in ["IMG_0002.JPG", "IMG_0003.JPG"] {
        let mut data = Vec::new();
        dev.open(&format!("DCIM/100APPLE/{name}"))
            .unwrap()
            .read_to_end(&mut data)
            .unwrap();
        assert_eq!(data, vec![(100_000 % 251) as u8; 100_000]);
    }
    // The end of the session waits for every request sent.
    drop(dev);
    assert_eq!(phone.afc_bytes_served(), 300_000, "read twice");
    assert_eq!(phone.open_handles(), 0);
}

#[test]
fn files_hinted_but_not_opened_are_closed() {
    let lib = tempfile::tempdir().unwrap();
    for i in 1..=4 {
        put(
            lib.path(),
            &format!("DCIM/100APPLE/IMG_000{i}.JPG"),
            100_000,
        );
    }
    let (phone, dev) = phone(lib.path());
    for i in 2..=4 {
        dev.prefetch(&format!("DCIM/100APPLE/IMG_000{i}.JPG"));
    }
    drop(dev.open("DCIM/100APPLE/IMG_0001.JPG").unwrap());
    // 2 and 3 were skipped: opening 4 stops fetching them.
    let mut data = Vec::new();
    dev.open("DCIM/100APPLE/IMG_0004.JPG")
        .unwrap()
        .read_to_end(&mut data)
        .unwrap();
    assert_eq!(data.len(), 100_000);
    drop(dev);
    assert_eq!(phone.open_handles(), 0);
}
