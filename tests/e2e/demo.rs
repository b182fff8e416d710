//! README's first command runs `snapvault demo`: it must work on a machine with no phone.

use crate::common::*;

#[test]
fn demo_runs_end_to_end_on_the_emulated_iphone() {
    let tmp = tempdir();
    let dir = tmp.path().join("demo");
    let mut c = base_command();
    c.env("XDG_CACHE_HOME", tmp.path().join("cache"));
    c.args(["demo", "--dir", dir.to_str().unwrap()]);
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
    for step in [
        "$ snapvault snapshot iphone",
        "library: ",
        "only in iCloud (not on this phone)",
        "no longer on the source",
        "now only in iCloud: DCIM/100APPLE/IMG_0005.HEIC",
        "$ snapvault restore --date 2023-07",
        "byte-for-byte identical",
        "is restored beside it as edited-",
        "not on this phone — not backed up by snapvault",
        "safe to delete: ",
        "no errors found",
        "snapvault browse --repo ",
    ] {
        assert!(
            out.stdout.contains(step),
            "demo output lacks {step:?}:\n{out}"
        );
    }
    // Running it again replaces the earlier demo folder instead of failing.
    let mut c = base_command();
    c.env("XDG_CACHE_HOME", tmp.path().join("cache"));
    c.args(["demo", "--dir", dir.to_str().unwrap()]);
    assert_eq!(run_command(c, DEFAULT_TIMEOUT).code, Some(0));
}
