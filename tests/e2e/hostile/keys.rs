//! Planted key files (16.7): a key file asking for the most Argon2id work the format allows
//! (1 GiB, 16 passes, 16 lanes) is not tried on every command; it is named in a warning and
//! tried only when the user names it with `--key`.

use std::fs;

use crate::common::*;

/// A key file with the largest Argon2id parameters the format accepts, named so that it
/// comes first in the folder's listing.
fn plant_expensive_key(repo: &std::path::Path) -> String {
    let name = "0".repeat(64);
    let key = serde_json::json!({
        "version": 1,
        "created": 1_700_000_000,
        "hostname": "somewhere",
        "username": "someone",
        "kdf": "argon2id",
        "params": {"m_kib": 1024 * 1024, "t": 16, "p": 16},
        "salt": "00112233445566778899aabbccddeeff",
        "data": "ab".repeat(96 + 40),
        "mac": "cd".repeat(32),
    });
    fs::write(
        repo.join("keys").join(&name),
        serde_json::to_vec_pretty(&key).unwrap(),
    )
    .unwrap();
    name
}

#[test]
fn a_planted_key_file_with_huge_argon2_parameters_is_skipped_with_a_warning() {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    write_random(&src.join("IMG_0001.JPG"), 1, 20_000);
    let sv = Sv::init(tmp.path().join("repo"), true);
    sv.snapshot(&[&src], &[]);
    let own = names_in(&sv.repo, "keys");
    let planted = plant_expensive_key(&sv.repo);

    // Opens with the owner's key; the planted one is named, not tried.
    let out = sv.ok(&["snapshots"]);
    assert_stderr_mentions(&out, "warning");
    assert_stderr_mentions(&out, &planted[..8]);
    assert_stderr_mentions(&out, "--key");
    // With --json the warning is a JSON line, like every stderr line then (docs/json.md).
    let out = sv.ok(&["snapshots", "--json"]);
    let line = out.stderr.lines().next().unwrap_or_default();
    let w: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
    assert_eq!(
        (w["type"].as_str(), w["command"].as_str()),
        (Some("warning"), Some("open")),
        "{out}"
    );
    assert!(
        w["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&planted[..8])
    );
    let target = tmp.path().join("restored");
    let out = sv.restore("latest", &target);
    assert_stderr_mentions(&out, &planted[..8]);
    assert_same_tree(&src, &target.join("photos"));

    // A wrong password is refused as such, without trying the planted key either.
    let wrong = Sv::at(&sv.repo, Some("not the password at all"));
    let out = wrong.run(&["snapshots"]);
    assert_eq!(out.code, Some(12), "{out}");
    assert_stderr_mentions(&out, &planted[..8]);

    // `check` names the planted file (its MAC does not verify under the repository's key).
    let out = sv.run(&["check"]);
    assert_eq!(out.code, Some(4), "{out}");
    assert_mentions(&out, &format!("key {planted}"));

    // Naming a key tries that one only, whatever the others cost: no warning.
    let out = sv.ok(&["snapshots", "--key", &own[0][..8]]);
    assert!(!out.stderr.contains("warning"), "{out}");
    let out = sv.run(&["snapshots", "--key", "ffffffff"]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "--key ffffffff");

    // Removing it ends the warnings.
    sv.ok(&["key", "remove", &planted[..8]]);
    let out = sv.ok(&["snapshots"]);
    assert!(!out.stderr.contains("warning"), "{out}");
}
