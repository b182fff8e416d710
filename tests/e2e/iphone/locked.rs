//! A passcode-locked phone (issue 18.4): snapvault presents the pair record's escrow bag
//! when it starts the file service, as Finder does, so a locked phone that trusts this
//! computer still shares its files; with a record that holds no bag it cannot, and the user
//! is told to unlock it.

use super::*;

#[test]
fn a_locked_phone_serves_with_the_pair_records_escrow_bag() {
    let lab = Lab::new(3, 40);
    let mut cfg = lab.cfg();
    cfg.locked = true;
    let phone = start(cfg);
    let out = lab.run(&phone, &["snapshot", "iphone"]);
    assert_eq!(out.code, Some(0), "a locked, paired phone refused:\n{out}");
    let target = lab.restore("latest", "restored");
    assert_same_files(&dcim_files(&lab.lib), &target);

    // `devices` shows it ready: it shares its files although locked.
    let out = run_plain(&phone.usbmuxd_address(), &["devices", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let v = out.json();
    let devs = list(&v, "devices --json");
    assert_eq!(devs.len(), 1, "{v}");
    assert_eq!(devs[0]["paired"], Value::Bool(true), "{v}");
    assert_eq!(devs[0]["locked"], Value::Bool(false), "{v}");
}

#[test]
fn a_locked_phone_without_an_escrow_bag_says_unlock() {
    let lab = Lab::new(2, 9);
    let mut cfg = lab.cfg();
    cfg.locked = true;
    cfg.record_without_escrow_bag = true;
    let phone = start(cfg);
    let out = refused(
        &lab,
        &phone.usbmuxd_address(),
        &[],
        "locked with its passcode: unlock it",
    );
    assert_eq!(out.code, Some(1), "{out}");
    let out = lab.run(&phone, &["verify-device"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr(&out, "locked with its passcode: unlock it");
    let out = run_plain(&phone.usbmuxd_address(), &["devices", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.json()[0]["locked"], Value::Bool(true), "{out}");
}
