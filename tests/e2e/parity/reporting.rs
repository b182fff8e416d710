//! What `check` says about parity: how much it protects and when it was last verified.

use super::*;

/// `check` says how much parity protects, and when all of it was last read; `--json` too.
#[test]
fn check_says_what_parity_protects_and_when_it_was_last_verified() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let sv = init_with_parity(&tmp.path().join("repo"), "10");
    sv.snapshot(&[&src], &[]);
    let v = sv.ok(&["check", "--json"]).json();
    assert_eq!(v["parity"]["level"], 10, "{v}");
    assert_eq!(v["parity"]["files_unprotected"], 0, "{v}");
    assert!(
        v["parity"]["bytes_protected"].as_u64().unwrap() > 1_000_000,
        "{v}"
    );
    assert!(v["parity"]["last_verified"].is_null(), "{v}");
    let v = sv.ok(&["check", "--read-data", "--json"]).json();
    assert!(v["parity"]["last_verified"].as_i64().unwrap() > 0, "{v}");
    let out = sv.ok(&["check"]);
    assert_mentions(&out, "parity: 10 %");
    assert!(!out.stdout.contains("last verified: never"), "{out}");
}
