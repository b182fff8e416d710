//! The key remembered on this computer (`key remember`, `key forget`): commands open the
//! repository without the password, and every file an attacker (or an accident) could put
//! in its place — a symlink, group- or world-readable, truncated, garbage, another
//! repository's, one left from before the repository was made anew — is not used: a
//! warning naming the file, then the password as if nothing were remembered.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::common::*;

/// A repository with one snapshot, a config folder for this test, and the source.
struct Setup {
    _tmp: tempfile::TempDir,
    sv: Sv,
    /// The same repository without a password.
    bare: Sv,
    cfg: PathBuf,
    src: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    write_random(&src.join("IMG_0001.JPG"), 1, 40_000);
    let sv = Sv::init(tmp.path().join("repo"), true);
    let cfg = tmp.path().join("config");
    let bare = Sv::at(&sv.repo, None);
    let s = Setup {
        sv,
        bare,
        cfg,
        src,
        _tmp: tmp,
    };
    let out = s.run(&s.sv, &["snapshot", s.src.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    s
}

impl Setup {
    fn run(&self, sv: &Sv, args: &[&str]) -> Out {
        sv.run_env(args, &[("XDG_CONFIG_HOME", self.cfg.to_str().unwrap())])
    }

    fn remember(&self) -> PathBuf {
        let out = self.run(&self.sv, &["key", "remember"]);
        assert_eq!(out.code, Some(0), "{out}");
        let file = key_file(&self.cfg, &repo_id(&self.sv.repo));
        assert!(out.stdout.contains(&file.display().to_string()), "{out}");
        file
    }

    fn snapshots_without_password(&self) -> Out {
        self.run(&self.bare, &["snapshots", "--json"])
    }
}

fn repo_id(repo: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&fs::read(repo.join("config")).unwrap()).expect("config is JSON");
    v["id"].as_str().expect("config id").to_string()
}

fn key_file(cfg: &Path, id: &str) -> PathBuf {
    cfg.join("snapvault").join("keys").join(format!("{id}.key"))
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// Not used, said with the file's name, and the password still works: with none given the
/// command stops (exit 1: no password) having written nothing.
fn assert_not_used(s: &Setup, file: &Path, why: &str) {
    let before = files_but_locks(&s.sv.repo);
    let out = s.run(&s.bare, &["snapshot", s.src.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, &file.display().to_string());
    assert_stderr_mentions(&out, why);
    assert_stderr_mentions(&out, "no password given");
    assert_eq!(
        before,
        files_but_locks(&s.sv.repo),
        "nothing may be written"
    );
    let out = s.run(&s.sv, &["snapshots", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_stderr_mentions(&out, &file.display().to_string());
}

#[test]
fn a_remembered_key_opens_without_the_password_until_forgotten() {
    let s = setup();
    // Without a password and nothing remembered: refused.
    assert_eq!(s.snapshots_without_password().code, Some(1));
    // `key remember` itself needs the password.
    let out = s.run(&s.bare, &["key", "remember"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, "no password given");

    let file = s.remember();
    assert_eq!(mode(&file), 0o600, "the file is the owner's only");
    assert_eq!(mode(file.parent().unwrap()), 0o700, "so is its folder");
    let text = fs::read_to_string(&file).unwrap();
    assert!(!text.contains(PASSWORD), "the password is not stored");

    // Now every command works without the password, reads and writes alike.
    let out = s.run(&s.bare, &["snapshot", s.src.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    let out = s.snapshots_without_password();
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.json().as_array().map(Vec::len), Some(2));
    let restored = s._tmp.path().join("restored");
    let out = s.run(
        &s.bare,
        &["restore", "latest", "--target", restored.to_str().unwrap()],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_same_tree(&s.src, &restored.join("photos"));
    let out = s.run(&s.bare, &["check", "--read-data"]);
    assert_eq!(out.code, Some(0), "{out}");
    // The password-opened run and the remembered-key run see the same repository.
    assert_eq!(
        s.run(&s.sv, &["snapshots", "--json"]).json(),
        s.snapshots_without_password().json()
    );

    // `key forget` needs no password and removes the file; a second one says so.
    let out = s.run(&s.bare, &["key", "forget"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!file.exists());
    assert_eq!(s.snapshots_without_password().code, Some(1));
    let out = s.run(&s.bare, &["key", "forget"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_mentions(&out, "no key is remembered");
}

#[test]
fn a_group_or_world_readable_remembered_key_is_refused_like_ssh() {
    let s = setup();
    let file = s.remember();
    for m in [0o644, 0o640, 0o604] {
        fs::set_permissions(&file, fs::Permissions::from_mode(m)).unwrap();
        assert_not_used(&s, &file, "chmod 600");
    }
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(s.snapshots_without_password().code, Some(0));
}

#[test]
fn a_symlinked_remembered_key_is_refused() {
    let s = setup();
    let file = s.remember();
    let elsewhere = s._tmp.path().join("elsewhere.key");
    fs::rename(&file, &elsewhere).unwrap();
    symlink(&elsewhere, &file).unwrap();
    assert_not_used(&s, &file, "symbolic link");
    // Remembering again replaces the link itself, not the file it points at.
    let target_before = fs::read(&elsewhere).unwrap();
    s.remember();
    assert!(!fs::symlink_metadata(&file).unwrap().is_symlink());
    assert_eq!(fs::read(&elsewhere).unwrap(), target_before);
    assert_eq!(s.snapshots_without_password().code, Some(0));
}

#[test]
fn a_truncated_or_garbage_remembered_key_is_not_used() {
    let s = setup();
    let file = s.remember();
    let good = fs::read(&file).unwrap();
    fs::write(&file, &good[..good.len() / 2]).unwrap();
    assert_not_used(&s, &file, "not a remembered key");
    fs::write(&file, b"\x00\xffgarbage").unwrap();
    assert_not_used(&s, &file, "not a remembered key");
    fs::write(&file, b"").unwrap();
    assert_not_used(&s, &file, "not a remembered key");
    // One hex digit of the key changed: the file's own checksum fails.
    let text = String::from_utf8(good.clone()).unwrap();
    let at = text.find("\"master_key\"").unwrap() + "\"master_key\": \"".len() + 10;
    let mut flipped = good.clone();
    flipped[at] = if flipped[at] == b'0' { b'1' } else { b'0' };
    fs::write(&file, &flipped).unwrap();
    assert_not_used(&s, &file, "not a remembered key");
    // A folder where the file should be.
    fs::remove_file(&file).unwrap();
    fs::create_dir(&file).unwrap();
    assert_not_used(&s, &file, "not a regular file");
}

#[test]
fn another_repositorys_remembered_key_is_not_used() {
    let s = setup();
    let other = Sv::init(s._tmp.path().join("other"), true);
    let out = s.run(&other, &["key", "remember"]);
    assert_eq!(out.code, Some(0), "{out}");
    let others = key_file(&s.cfg, &repo_id(&other.repo));
    let file = key_file(&s.cfg, &repo_id(&s.sv.repo));
    // The other repository's file under this repository's name: its contents name the
    // other repository.
    fs::copy(&others, &file).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    assert_not_used(&s, &file, "another repository");
    // The other repository's key with this repository's id written in (checksum and all
    // made to fit): the config's MAC does not check with it.
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&others).unwrap()).unwrap();
    let key = hex_decode(v["master_key"].as_str().unwrap());
    let id = repo_id(&s.sv.repo);
    v["repository"] = id.clone().into();
    v["check"] = checksum(&id, &key).into();
    fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
    assert_not_used(&s, &file, "does not open this repository");
}

#[test]
fn a_remembered_key_is_not_used_once_the_repository_is_made_anew() {
    let s = setup();
    let old_id = repo_id(&s.sv.repo);
    let file = s.remember();
    fs::remove_dir_all(&s.sv.repo).unwrap();
    let again = Sv::init(&s.sv.repo, true);
    let new_id = repo_id(&again.repo);
    assert_ne!(old_id, new_id);
    // New id: nothing remembered for it, so the password is asked for.
    let out = s.snapshots_without_password();
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, "no password given");
    // An attacker writes the old id into the new config: the old key does not check.
    let cfg = s.sv.repo.join("config");
    let text = fs::read_to_string(&cfg).unwrap().replace(&new_id, &old_id);
    fs::write(&cfg, text).unwrap();
    assert_not_used(&s, &file, "does not open this repository");
}

#[test]
fn a_repository_replaced_by_an_unencrypted_one_is_refused_with_a_remembered_key() {
    let s = setup();
    let id = repo_id(&s.sv.repo);
    s.remember();
    // The repository replaced by an unencrypted one carrying the same id (an unencrypted
    // config has no MAC): writing plaintext there would hand over the photos.
    fs::remove_dir_all(&s.sv.repo).unwrap();
    let plain = Sv::init(&s.sv.repo, false);
    let cfg = plain.repo.join("config");
    let text = fs::read_to_string(&cfg)
        .unwrap()
        .replace(&repo_id(&plain.repo), &id);
    fs::write(&cfg, text).unwrap();
    let before = files_but_locks(&plain.repo);
    let out = s.run(&s.bare, &["snapshot", s.src.to_str().unwrap()]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "NOT encrypted");
    assert_eq!(
        before,
        files_but_locks(&plain.repo),
        "nothing may be written"
    );
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The remembered-key file's checksum, as docs/security.md §3 defines it.
fn checksum(id: &str, key: &[u8]) -> String {
    let mut h = blake3::Hasher::new_derive_key("snapvault remembered key v1");
    h.update(id.as_bytes());
    h.update(key);
    h.finalize().to_hex().to_string()
}

/// `key forget` where there is no repository says so, like every other command (exit 10,
/// "there is no repository at"), not that a config is corrupt with advice to check it.
#[test]
fn key_forget_where_there_is_no_repository_says_so() {
    let s = setup();
    let nowhere = Sv::at(s._tmp.path().join("nothing-here"), None);
    let out = s.run(&nowhere, &["key", "forget"]);
    assert_eq!(out.code, Some(10), "{out}");
    assert_stderr_mentions(&out, "there is no repository at");
    assert!(!out.stderr.contains("check --read-data"), "{out}");
}
