//! Pairing through the phone's Trust prompt, against the strict fake phone: the record
//! snapvault makes must pass the phone's checks (host and device certificates chaining to the
//! record's root) and then open the client-authenticated TLS session.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use snapvault_fakephone::{FakePhone, FakePhoneConfig};
use snapvault_source::{
    Device, DeviceOptions, Pairing, PairingEvent, SourceError, UsbmuxdAddress, list_devices_with,
};

fn library() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("DCIM/100APPLE");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("IMG_0001.HEIC"), vec![9u8; 200_000]).unwrap();
    d
}

fn start(cfg: FakePhoneConfig) -> (FakePhone, UsbmuxdAddress) {
    let phone = FakePhone::start(cfg).unwrap();
    let addr = UsbmuxdAddress::parse(&phone.usbmuxd_address()).unwrap();
    (phone, addr)
}

type Events = Arc<Mutex<Vec<String>>>;

/// Options that pair, waiting at most `wait`, recording what they are told.
fn pairing(wait: Duration) -> (DeviceOptions, Events) {
    let events: Events = Arc::default();
    let seen = events.clone();
    let opts = DeviceOptions {
        timeout: Duration::from_secs(10),
        pairing: Some(Pairing {
            wait,
            notify: Arc::new(move |e: &PairingEvent<'_>| {
                let s = match e {
                    PairingEvent::WaitingForTrust { .. } => "waiting".to_string(),
                    PairingEvent::Paired { .. } => "paired".to_string(),
                    PairingEvent::Failed { error, .. } => format!("failed: {error}"),
                };
                seen.lock().unwrap().push(s);
            }),
        }),
        ..DeviceOptions::default()
    };
    (opts, events)
}

fn untrusted(lib: &tempfile::TempDir) -> FakePhoneConfig {
    let mut cfg = FakePhoneConfig::new(lib.path());
    cfg.paired = false;
    cfg
}

#[test]
fn pairs_through_the_prompt_and_usbmuxd_keeps_the_record() {
    let lib = library();
    let mut cfg = untrusted(&lib);
    cfg.trust_after = Some(Duration::from_millis(1500));
    let (_phone, addr) = start(cfg);
    let (opts, events) = pairing(Duration::from_secs(60));
    let dev = Device::connect(&addr, None, opts.clone()).unwrap();
    assert_eq!(*events.lock().unwrap(), ["waiting", "paired"]);
    assert!(dev.info().paired);
    let mut data = Vec::new();
    dev.open("DCIM/100APPLE/IMG_0001.HEIC")
        .unwrap()
        .read_to_end(&mut data)
        .unwrap();
    assert_eq!(data, vec![9u8; 200_000]);
    drop(dev);

    // The record is usbmuxd's now: no prompt, and a client that never pairs gets in too.
    events.lock().unwrap().clear();
    Device::connect(&addr, None, opts).unwrap();
    assert!(events.lock().unwrap().is_empty());
    Device::connect(&addr, None, DeviceOptions::default()).unwrap();
}

#[test]
fn a_forgotten_pairing_is_made_again() {
    let lib = library();
    let mut cfg = FakePhoneConfig::new(lib.path());
    cfg.trust_revoked = true;
    cfg.trust_after = Some(Duration::ZERO);
    let (_phone, addr) = start(cfg);
    let e = Device::connect(&addr, None, DeviceOptions::default()).unwrap_err();
    assert!(matches!(e, SourceError::TrustRevoked), "{e}");
    let (opts, events) = pairing(Duration::from_secs(60));
    let dev = Device::connect(&addr, None, opts).unwrap();
    assert!(dev.info().paired);
    assert_eq!(
        events.lock().unwrap().last().map(String::as_str),
        Some("paired")
    );
}

#[test]
fn waiting_for_trust_is_bounded() {
    let lib = library();
    // Nobody ever taps.
    let (_phone, addr) = start(untrusted(&lib));
    let (opts, events) = pairing(Duration::from_millis(1200));
    let e = Device::connect(&addr, None, opts).unwrap_err();
    assert!(matches!(e, SourceError::TrustTimeout { .. }), "{e}");
    assert!(e.to_string().contains("nobody tapped “Trust”"), "{e}");
    assert_eq!(*events.lock().unwrap(), ["waiting"]);
}

#[test]
fn dont_trust_and_a_locked_phone_end_the_pairing_with_what_to_do() {
    let lib = library();
    let mut cfg = untrusted(&lib);
    cfg.deny_trust = true;
    let (_phone, addr) = start(cfg.clone());
    let (opts, events) = pairing(Duration::from_secs(60));
    let e = Device::connect(&addr, None, opts.clone()).unwrap_err();
    assert!(matches!(e, SourceError::TrustDenied), "{e}");
    // `devices` lists it anyway, not paired, and is told why.
    let devs = list_devices_with(&addr, &opts).unwrap();
    assert_eq!(devs.len(), 1);
    assert!(!devs[0].paired);
    let last = events.lock().unwrap().last().cloned().unwrap();
    assert!(last.starts_with("failed: “Don't Trust”"), "{last}");

    let mut cfg = untrusted(&lib);
    cfg.locked = true;
    cfg.trust_after = Some(Duration::ZERO);
    let (_phone, addr) = start(cfg);
    let e = Device::connect(&addr, None, opts).unwrap_err();
    assert!(matches!(e, SourceError::LockedForPairing), "{e}");
}
