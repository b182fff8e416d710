//! Pairing through the phone's Trust prompt (issue 18.3): a phone that does not trust this
//! computer (no pair record, or it forgot this computer) is paired by `snapshot iphone`,
//! `verify-device` and `devices`, which tell the user to tap Trust, wait for it, save the
//! record with usbmuxd and go on. The fake phone checks the record as a phone does: the
//! host's and the device's certificates must chain to the record's root, and the TLS session
//! afterwards needs the new host certificate.

use super::*;

const PROMPT: &str = "Unlock your iPhone and tap “Trust” on it (waiting…)";

/// A phone that does not trust this computer; its user taps Trust `after` the prompt shows.
fn untrusted(lab: &Lab, after: Option<Duration>) -> FakePhoneConfig {
    let mut cfg = lab.cfg();
    cfg.paired = false;
    cfg.trust_after = after;
    cfg
}

fn paired_in_json(out: &Out) -> bool {
    let v = out.json();
    let devs = list(&v, "devices --json");
    assert_eq!(devs.len(), 1, "{v}");
    devs[0]["paired"] == Value::Bool(true)
}

#[test]
fn snapshot_pairs_an_untrusted_phone_through_the_trust_prompt() {
    let lab = Lab::new(3, 30);
    let phone = start(untrusted(&lab, Some(Duration::from_secs(2))));
    let out = lab.run(&phone, &["snapshot", "iphone"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        out.stderr.matches(PROMPT).count(),
        1,
        "the prompt is told once:\n{out}"
    );
    assert_stderr(&out, "trusts this computer now");
    let target = lab.restore("latest", "restored");
    assert_same_files(&dcim_files(&lab.lib), &target);

    // usbmuxd keeps the new record: later commands ask nothing.
    let out = lab.ok(&phone, &["snapshot", "iphone"]);
    assert!(!out.stderr.contains(PROMPT), "asked again:\n{out}");
    let out = run_plain(&phone.usbmuxd_address(), &["devices", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(paired_in_json(&out), "{out}");
}

#[test]
fn a_phone_that_forgot_this_computer_is_paired_again() {
    let lab = Lab::new(2, 31);
    let mut cfg = lab.cfg();
    cfg.trust_revoked = true;
    cfg.trust_after = Some(Duration::from_secs(1));
    let phone = start(cfg);
    let out = lab.run(&phone, &["verify-device"]);
    assert_eq!(out.stderr.matches(PROMPT).count(), 1, "{out}");
    assert!(
        !out.stderr.contains("no longer trusts"),
        "did not pair again:\n{out}"
    );
    let out = lab.run(&phone, &["snapshot", "iphone"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!out.stderr.contains(PROMPT), "asked again:\n{out}");
}

#[test]
fn devices_pairs_an_untrusted_phone_and_json_only_reports() {
    let lab = Lab::new(1, 32);
    let phone = start(untrusted(&lab, Some(Duration::from_secs(2))));
    let addr = phone.usbmuxd_address();
    // For scripts: the state as it is, without waiting for anyone.
    let out = run_plain(&addr, &["devices", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!paired_in_json(&out), "{out}");
    assert!(!out.stderr.contains(PROMPT), "{out}");

    let out = run_plain(&addr, &["devices"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stderr.matches(PROMPT).count(), 1, "{out}");
    let row = out
        .stdout
        .lines()
        .find(|l| l.contains(&lab.cfg().udid))
        .unwrap_or_else(|| panic!("phone not listed:\n{out}"));
    assert!(row.trim_end().ends_with("yes"), "{row}\n{out}");
    let out = run_plain(&addr, &["devices", "--json"]);
    assert!(paired_in_json(&out), "{out}");
}

#[test]
fn dont_trust_says_how_to_be_asked_again() {
    let lab = Lab::new(2, 33);
    let mut cfg = untrusted(&lab, None);
    cfg.deny_trust = true;
    let phone = start(cfg);
    let addr = phone.usbmuxd_address();
    let out = refused(&lab, &addr, &[], "“Don't Trust” was tapped on the iPhone");
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr(&out, "unplug the iPhone and plug it in again");
    let out = lab.run(&phone, &["verify-device"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr(&out, "Don't Trust");

    // `devices` still lists it, as not trusted, and says why.
    let out = run_plain(&addr, &["devices"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains("no (unlock the phone and tap Trust)"),
        "{out}"
    );
    assert_stderr(&out, "Don't Trust");
}

#[test]
fn a_locked_untrusted_phone_says_unlock() {
    let lab = Lab::new(2, 34);
    let mut cfg = untrusted(&lab, Some(Duration::ZERO));
    cfg.locked = true;
    let phone = start(cfg);
    let out = refused(
        &lab,
        &phone.usbmuxd_address(),
        &[],
        "the iPhone is locked, so it cannot ask whether to trust this computer: unlock it",
    );
    assert_eq!(out.code, Some(1), "{out}");
}

/// `snapshot iphone` with the Trust prompt's wait cut to `secs` (test builds only).
fn snapshot_waiting(lab: &Lab, phone: &FakePhone, secs: u64) -> Out {
    let mut c = with_mux(
        lab.sv.command(&["snapshot", "iphone"]),
        &phone.usbmuxd_address(),
    );
    c.env("SNAPVAULT_TEST_TRUST_WAIT_SECS", secs.to_string());
    run_command(c, DEFAULT_TIMEOUT)
}

#[test]
fn nobody_tapping_trust_ends_with_the_phone_and_what_to_do() {
    let lab = Lab::new(2, 35);
    let mut cfg = untrusted(&lab, None);
    cfg.name = "Anna's iPhone".into();
    let udid = cfg.udid.clone();
    let phone = start(cfg);
    let before = listing(&lab.sv.repo);
    let out = snapshot_waiting(&lab, &phone, 2);
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(out.stderr.matches(PROMPT).count(), 1, "{out}");
    assert_stderr(
        &out,
        &format!("nobody tapped “Trust” on the iPhone “Anna's iPhone” ({udid}) within 2 s"),
    );
    assert_stderr(&out, "unlock the iPhone, run again and tap “Trust”");
    assert_unchanged(&before, &lab.sv.repo, "a snapshot nobody let pair");
    assert!(lab.snapshots().is_empty());
}

#[test]
fn tapping_trust_within_the_wait_goes_on() {
    let lab = Lab::new(2, 36);
    // Tapped after 2 s; the wait (30 s) leaves room for a busy machine.
    let phone = start(untrusted(&lab, Some(Duration::from_secs(2))));
    let out = snapshot_waiting(&lab, &phone, 30);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stderr.matches(PROMPT).count(), 1, "{out}");
    assert_stderr(&out, "trusts this computer now");
    let target = lab.restore("latest", "restored");
    assert_same_files(&dcim_files(&lab.lib), &target);
}
