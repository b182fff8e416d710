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
        "no longer on the source",
        "$ snapvault restore --date 2023-07",
        "byte-for-byte identical",
        "safe to delete: 38 of 38 files",
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
