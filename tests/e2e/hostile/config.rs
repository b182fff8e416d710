//! One flipped byte in the repository's `config` (16.3): every key file keeps a sealed copy,
//! commands run on it with a warning naming the damaged file, `check` reports the damage
//! and `repair --apply` rewrites the file.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::common::*;

/// Change one hex digit of `field`'s value in the config file (the JSON stays valid).
fn flip_hex_digit(config: &Path, field: &str) {
    let text = fs::read_to_string(config).unwrap();
    let key = format!("\"{field}\": \"");
    let at = text
        .find(&key)
        .unwrap_or_else(|| panic!("no {field} in {text}"))
        + key.len()
        + 5;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    fs::remove_file(config).unwrap();
    fs::write(config, bytes).unwrap();
}

fn repo_with_snapshot(tmp: &Path) -> (Sv, std::path::PathBuf) {
    let src = tmp.join("photos");
    write_random(&src.join("IMG_0001.JPG"), 1, 20_000);
    write_random(&src.join("2023/IMG_0002.HEIC"), 2, 30_000);
    let sv = Sv::init(tmp.join("repo"), true);
    sv.snapshot(&[&src], &[]);
    (sv, src)
}

/// A flipped digit in the config's `mac` or `id`: snapshots and restore still work, each
/// with a warning naming the damaged file; check fails naming it; repair --apply rewrites
/// it, after which nothing warns and check passes.
#[test]
fn a_flipped_byte_in_the_config_falls_back_to_the_key_files_copy() {
    for field in ["mac", "id"] {
        let tmp = tempdir();
        let (sv, src) = repo_with_snapshot(tmp.path());
        let config = sv.repo.join("config");
        let original = fs::read(&config).unwrap();
        flip_hex_digit(&config, field);

        let out = sv.ok(&["snapshots"]);
        assert_stderr_mentions(&out, "warning");
        assert_stderr_mentions(&out, &config.display().to_string());
        assert_stderr_mentions(&out, "repair --apply");

        let target = tmp.path().join("restored");
        let out = sv.restore("latest", &target);
        assert_stderr_mentions(&out, &config.display().to_string());
        assert_same_tree(&src, &target.join("photos"));

        let out = sv.run(&["check"]);
        assert_eq!(
            out.code,
            Some(4),
            "{field}: check must report the damage:\n{out}"
        );
        assert!(
            out.stdout.contains("error: config"),
            "{field}: check does not name the config:\n{out}"
        );

        let out = sv.run(&["repair"]);
        assert_eq!(out.code, Some(0), "{out}");
        assert_mentions(&out, "config: damaged");
        assert_ne!(
            fs::read(&config).unwrap(),
            original,
            "repair without --apply wrote"
        );

        let out = sv.ok(&["repair", "--apply"]);
        assert_mentions(&out, "config: rewritten");
        assert_eq!(
            fs::read(&config).unwrap(),
            original,
            "{field}: not rewritten as it was"
        );

        let out = sv.ok(&["snapshots"]);
        assert!(
            !out.stderr.contains("warning"),
            "{field}: still warns:\n{out}"
        );
        let out = sv.ok(&["check"]);
        assert!(
            !out.both().contains("config"),
            "{field}: check still speaks of the config:\n{out}"
        );
    }
}

/// Key files written before copies were kept (no `config` field) still open the repository;
/// `check` notes that no copy exists; with the config damaged the error says there is no
/// copy and does not send the user to `check` (which fails the same way); `key add` writes
/// a key file that holds a copy, and from then on a damaged config is survived.
#[test]
fn old_key_files_without_a_copy_still_open_and_key_add_writes_one() {
    let tmp = tempdir();
    let (sv, _src) = repo_with_snapshot(tmp.path());
    let keys = names_in(&sv.repo, "keys");
    assert_eq!(keys.len(), 1);
    let key_path = sv.repo.join("keys").join(&keys[0]);
    let mut key: Value = serde_json::from_slice(&fs::read(&key_path).unwrap()).unwrap();
    assert!(
        key["config"].is_string(),
        "init wrote no config copy: {key}"
    );
    key.as_object_mut().unwrap().remove("config");
    fs::remove_file(&key_path).unwrap();
    fs::write(&key_path, serde_json::to_vec_pretty(&key).unwrap()).unwrap();

    let out = sv.ok(&["check"]);
    assert_mentions(&out, "no key file holds a copy");
    assert!(!out.stderr.contains("warning"), "{out}");

    let config = sv.repo.join("config");
    let original = fs::read(&config).unwrap();
    flip_hex_digit(&config, "mac");
    let out = sv.run(&["snapshots"]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "no key file holds a copy");
    assert!(
        !out.stderr.contains("snapvault check"),
        "hint sends to check:\n{out}"
    );
    fs::remove_file(&config).unwrap();
    fs::write(&config, &original).unwrap();

    sv.run_env(
        &["key", "add"],
        &[("SNAPVAULT_NEW_PASSWORD", "another fine passphrase 42")],
    );
    let added: Vec<String> = names_in(&sv.repo, "keys")
        .into_iter()
        .filter(|k| k != &keys[0])
        .collect();
    assert_eq!(added.len(), 1, "key add wrote no key file");
    let new_key: Value =
        serde_json::from_slice(&fs::read(sv.repo.join("keys").join(&added[0])).unwrap()).unwrap();
    assert!(
        new_key["config"].is_string(),
        "key add wrote no copy: {new_key}"
    );
    let out = sv.ok(&["check"]);
    assert!(!out.both().contains("copy"), "{out}");

    flip_hex_digit(&config, "id");
    let out = sv.ok(&["snapshots"]);
    assert_stderr_mentions(&out, &added[0][..8]);
}

/// Replace `from` by `to` in the config file (one field's value).
fn edit_config(config: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(config).unwrap();
    assert!(text.contains(from), "no {from} in {text}");
    fs::remove_file(config).unwrap();
    fs::write(config, text.replacen(from, to, 1)).unwrap();
}

/// The hint for a config that cannot be used says what can help, never `check` (which
/// fails to open the repository the same way): a config switched to "unencrypted" in a
/// repository with key files runs on the key files' copy (and says there is none when none
/// is kept); one switched to "encrypted" in a repository without key files says to put
/// back the key files or the config from a copy.
#[test]
fn a_config_that_cannot_be_used_gets_a_hint_that_can_help() {
    let no_check = |out: &Out, what: &str| {
        assert_failed(out);
        assert!(
            !out.stderr.contains("snapvault check"),
            "{what}: the hint sends to check, which fails the same way:\n{out}"
        );
        assert_stderr_mentions(out, "hint:");
    };

    // Encrypted, key files with copies: the owner's copy is used, with a warning.
    let tmp = tempdir();
    let (sv, src) = repo_with_snapshot(tmp.path());
    let config = sv.repo.join("config");
    let original = fs::read(&config).unwrap();
    edit_config(&config, "\"encrypted\": true", "\"encrypted\": false");
    let out = sv.ok(&["snapshots"]);
    assert_stderr_mentions(&out, &config.display().to_string());
    assert_stderr_mentions(&out, "repair --apply");
    let target = tmp.path().join("restored");
    sv.restore("latest", &target);
    assert_same_tree(&src, &target.join("photos"));
    assert_eq!(sv.run(&["check"]).code, Some(4));
    let out = sv.ok(&["repair", "--apply"]);
    assert_mentions(&out, "config: rewritten");
    assert_eq!(fs::read(&config).unwrap(), original);

    // The same, with key files that hold no copy: said so, and no check in the hint.
    let keys = names_in(&sv.repo, "keys");
    let key_path = sv.repo.join("keys").join(&keys[0]);
    let mut key: Value = serde_json::from_slice(&fs::read(&key_path).unwrap()).unwrap();
    key.as_object_mut().unwrap().remove("config");
    fs::remove_file(&key_path).unwrap();
    fs::write(&key_path, serde_json::to_vec_pretty(&key).unwrap()).unwrap();
    edit_config(&config, "\"encrypted\": true", "\"encrypted\": false");
    let out = sv.run(&["snapshots"]);
    no_check(&out, "encrypted: false, no copies");
    assert_stderr_mentions(&out, "no key file holds a copy");

    // Unencrypted, the config switched to "encrypted": there are no keys to open it with.
    let plain = Sv::init(tmp.path().join("plain"), false);
    plain.snapshot(&[&src], &[]);
    let config = plain.repo.join("config");
    edit_config(&config, "\"encrypted\": false", "\"encrypted\": true");
    let out = plain.run(&["snapshots"]);
    no_check(&out, "encrypted: true, no key files");
    assert_stderr_mentions(&out, "key file");
    assert_stderr_mentions(&out, "put back");
}

/// A flipped digit in a key file's sealed copy of the config: `check` fails on that key,
/// and its line and its `next:` advice agree (both say `repair --apply`, which seals the
/// config in use into the key file; then check passes).
#[test]
fn a_damaged_copy_in_a_key_file_gets_one_consistent_advice() {
    let tmp = tempdir();
    let (sv, _src) = repo_with_snapshot(tmp.path());
    let key = sv.repo.join("keys").join(&names_in(&sv.repo, "keys")[0]);
    flip_hex_digit(&key, "config");
    let out = sv.run(&["check"]);
    assert_eq!(out.code, Some(4), "{out}");
    assert_mentions(&out, "copy of the config is damaged");
    let next = out
        .stdout
        .lines()
        .find(|l| l.starts_with("next:"))
        .unwrap_or_else(|| panic!("no next: line\n{out}"));
    assert!(next.contains("repair --apply"), "{next}");
    let out = sv.ok(&["repair", "--apply"]);
    assert_mentions(&out, "with the config in use");
    let out = sv.ok(&["check"]);
    assert!(!out.stdout.contains("key "), "{out}");
}
