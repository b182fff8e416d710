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
