//! What a phone says about itself (its name above all: anyone can set it) is untrusted:
//! wherever snapvault prints it — the snapshot's header, `devices`, `snapshots`, `find`,
//! the pairing messages — control characters are shown escaped, so a crafted name can
//! neither forge a line of output nor drive the terminal. `--json` carries it exactly.

use super::*;

/// A name with an ANSI colour sequence, a carriage return and a forged line.
const EVIL: &str = "Evil\u{1b}[31mPhone\r\nsnapshot 00000000 saved";
const SHOWN: &str = "Evil\\u{1b}[31mPhone\\r\\nsnapshot 00000000 saved";

#[track_caller]
fn clean(out: &Out, what: &str) {
    for text in [&out.stdout, &out.stderr] {
        assert!(
            !text.contains('\u{1b}') && !text.contains('\r'),
            "{what} printed the phone's name raw:\n{out}"
        );
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("snapshot 00000000 saved")),
            "{what} let the name forge a line:\n{out}"
        );
    }
}

#[test]
fn a_phone_name_with_control_characters_is_shown_escaped() {
    let lab = Lab::new(2, 41);
    let mut cfg = lab.cfg();
    cfg.name = EVIL.into();
    let phone = start(cfg);
    let addr = phone.usbmuxd_address();

    let out = lab.ok(&phone, &["snapshot", "iphone"]);
    clean(&out, "snapshot iphone");
    assert_stderr(&out, &format!("iPhone {SHOWN} ("));

    let out = run_plain(&addr, &["devices"]);
    assert_eq!(out.code, Some(0), "{out}");
    clean(&out, "devices");
    assert!(out.stdout.contains(SHOWN), "{out}");
    // Scripts get the name exactly.
    let out = run_plain(&addr, &["devices", "--json"]);
    assert_eq!(s(&out.json()[0], "name"), EVIL, "{out}");

    let out = lab.sv.ok(&["snapshots"]);
    clean(&out, "snapshots");
    assert!(out.stdout.contains(SHOWN), "{out}");
    let snaps = lab.snapshots();
    assert_eq!(snaps[0]["source"]["device"]["name"], EVIL, "{snaps:?}");

    let out = lab.sv.ok(&["find", "IMG_*"]);
    clean(&out, "find");
    for args in [
        &["photos"][..],
        &["diff", "latest", "latest"][..],
        &["forget", "--keep-last", "1", "--dry-run"][..],
    ] {
        let out = lab.sv.run(args);
        clean(&out, &args.join(" "));
    }
}

/// A file on the phone named with the same tricks: its path comes from the phone too.
/// Unreadable (kept only in iCloud) it reaches the warning through the phone's own error;
/// readable it is in the snapshot, and once deleted on the phone it is in the vanished
/// list. Everywhere it is shown escaped; `--json` carries it exactly.
#[test]
fn a_phone_file_name_with_control_characters_is_shown_escaped() {
    let lab = Lab::new(4, 43);
    let evil = format!("DCIM/100APPLE/{EVIL}.JPG");
    let shown = format!("DCIM/100APPLE/{SHOWN}.JPG");
    let photo = fs::read(lab.lib.join("DCIM/100APPLE/IMG_0004.JPG")).unwrap();
    fs::remove_file(lab.lib.join("DCIM/100APPLE/IMG_0004.JPG")).unwrap();
    fs::write(lab.lib.join(&evil), &photo).unwrap();

    // Unreadable: skipped with a warning that names it (text and JSON).
    let mut cfg = lab.cfg();
    cfg.icloud_only = vec![evil.clone()];
    let phone = start(cfg);
    let out = lab.run(&phone, &["snapshot", "iphone"]);
    assert_eq!(out.code, Some(3), "{out}");
    clean(&out, "snapshot iphone (unreadable file)");
    assert_stderr(&out, &format!("cannot read {shown} on the iPhone"));
    let out = lab.run(&phone, &["snapshot", "iphone", "--json"]);
    assert_eq!(out.code, Some(3), "{out}");
    clean(&out, "snapshot iphone --json (unreadable file)");
    let warning = out
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "warning")
        .unwrap_or_else(|| panic!("no JSON warning:\n{out}"));
    assert_eq!(s(&warning, "path"), evil, "{warning}");
    let out = lab.run(&phone, &["verify-device"]);
    clean(&out, "verify-device (unreadable file)");
    let v = lab.run(&phone, &["verify-device", "--json"]).json();
    assert_eq!(s(&list(&v["problems"], "problems")[0], "path"), evil, "{v}");
    drop(phone);

    // Readable: backed up and listed; deleted on the phone: vanished.
    let phone = start(lab.cfg());
    lab.ok(&phone, &["snapshot", "iphone"]);
    for args in [
        &["photos"][..],
        &["find", "*.JPG"][..],
        &["ls", "latest", "DCIM/100APPLE"][..],
    ] {
        clean(&lab.sv.run(args), &args.join(" "));
    }
    fs::remove_file(lab.lib.join(&evil)).unwrap();
    let out = lab.ok(&phone, &["snapshot", "iphone"]);
    clean(&out, "snapshot iphone (vanished file)");
    assert!(out.to_string().contains(&format!("gone: {shown}")), "{out}");
    clean(&lab.sv.run(&["diff", "latest~1", "latest"]), "diff");
    // Back, and gone again: scripts get the path exactly.
    fs::write(lab.lib.join(&evil), &photo).unwrap();
    lab.ok(&phone, &["snapshot", "iphone"]);
    fs::remove_file(lab.lib.join(&evil)).unwrap();
    let v = lab.snapshot(&phone, &[]);
    assert_eq!(v["vanished"]["paths"][0], evil.as_str(), "{v}");
}
