//! Names that come from storage (15.9): a repository folder may hold files snapvault never
//! wrote — a stray `keys/x`, `locks/ab`, a name with a multi-byte character where a short id
//! would be cut, a name that is not UTF-8 — and a config whose `id` is not an id. Every
//! command answers with a message or a warning naming the file; none panics, none writes
//! outside the repository and its cache folder.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::common::*;

/// An exit that is not a panic (Rust exits 101 on a panic) and no panic message.
#[track_caller]
fn assert_no_panic(out: &Out, what: &str) {
    assert!(
        out.code.is_some() && out.code != Some(101) && !out.stderr.contains("panicked"),
        "{what} panicked:\n{out}"
    );
}

/// An encrypted repository with one snapshot of two photos; the cache in `tmp/cache`.
fn repository(tmp: &Path) -> Sv {
    let src = tmp.join("photos");
    write_random(&src.join("IMG_0001.JPG"), 1, 30_000);
    write_random(&src.join("IMG_0002.JPG"), 2, 40_000);
    let sv = Sv::init(tmp.join("repo"), true);
    sv.snapshot(&[&src], &[]);
    sv
}

fn plant(repo: &Path, rel: &[u8], data: &[u8]) {
    let p = repo.join(OsStr::from_bytes(rel));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, data).unwrap();
}

/// Seven ASCII letters and an `é`: byte 8 falls inside the `é`, where cutting a name to
/// "8 characters" by bytes panics.
const CUT_INSIDE: &str = "abcdefgé";

/// `key list` with a stray `keys/x` (and a name cut inside a character, and one that is not
/// UTF-8) lists them as not being key files; every other command still works.
#[test]
fn stray_key_files_are_listed_not_panicked_on() {
    let tmp = tempdir();
    let sv = repository(tmp.path());
    plant(&sv.repo, b"keys/x", b"not a key");
    plant(&sv.repo, format!("keys/{CUT_INSIDE}").as_bytes(), b"{}");
    plant(&sv.repo, b"keys/\xff\xfe", b"");

    let out = sv.run(&["key", "list"]);
    assert_no_panic(&out, "key list");
    assert_eq!(out.code, Some(0), "{out}");
    assert_mentions(&out, "\"x\"");
    assert_mentions(&out, &format!("{CUT_INSIDE:?}"));
    assert_mentions(&out, "not a key file");
    let out = sv.run(&["key", "list", "--json"]);
    assert_no_panic(&out, "key list --json");
    let keys = out.json();
    assert_eq!(keys.as_array().map(Vec::len), Some(4), "{out}");

    for args in [
        vec!["snapshots"],
        vec!["ls", "latest"],
        vec!["stats"],
        vec!["prune", "--dry-run"],
        vec!["key", "remove", "--dry-run", "x"],
    ] {
        let out = sv.run(&args);
        assert_no_panic(&out, &format!("{args:?}"));
        assert_eq!(out.code, Some(0), "{args:?} with stray key files:\n{out}");
    }
    // check reports each unusable key file by name (exit 4, as for any finding).
    let out = sv.run(&["check"]);
    assert_no_panic(&out, "check");
    assert_eq!(out.code, Some(4), "{out}");
    assert_mentions(&out, "key x unusable");
    assert_mentions(&out, &format!("key {CUT_INSIDE} unusable"));
}

/// `unlock --remove-all` with a stray `locks/ab` removes it and names it; a snapshot with
/// stray lock files present is not stopped by them (they are unreadable, so not anyone's
/// lock), and prune names the one that blocks it.
#[test]
fn stray_lock_files_are_named_and_removed_not_panicked_on() {
    let tmp = tempdir();
    let sv = repository(tmp.path());
    plant(&sv.repo, b"locks/ab", b"junk");
    plant(&sv.repo, format!("locks/{CUT_INSIDE}").as_bytes(), b"");

    let out = sv.run(&["unlock"]);
    assert_no_panic(&out, "unlock");
    assert_eq!(out.code, Some(0), "{out}");

    let out = sv.run(&["prune"]);
    assert_no_panic(&out, "prune");
    assert_eq!(
        out.code,
        Some(11),
        "an unreadable lock blocks prune:\n{out}"
    );
    assert_stderr_mentions(&out, "locks/");
    // Plain `unlock` left it (it is nobody's lock for sure): the hint names the one that
    // removes it.
    assert_stderr_mentions(
        &out,
        "hint: if no snapvault process is running, remove it with `snapvault unlock --remove-all`",
    );

    let out = sv.run(&["unlock", "--remove-all", "--dry-run"]);
    assert_no_panic(&out, "unlock --remove-all --dry-run");
    assert_eq!(out.code, Some(0), "{out}");
    assert_mentions(&out, "\"ab\"");
    assert!(
        sv.repo.join("locks/ab").exists(),
        "a dry run removed a lock"
    );

    let out = sv.run(&["unlock", "--remove-all"]);
    assert_no_panic(&out, "unlock --remove-all");
    assert_eq!(out.code, Some(0), "{out}");
    assert_mentions(&out, "\"ab\"");
    assert_mentions(&out, &format!("{CUT_INSIDE:?}"));
    assert!(
        !sv.repo.join("locks/ab").exists(),
        "locks/ab is still there"
    );
    sv.ok(&["prune"]);
}

/// Stray files among snapshots, packs and index files: the snapshot list warns about the
/// one in `snapshots/`, check reports each by name, and a file with an index file's name
/// that does not open stops commands with a message that names it (it could be anything,
/// so it is not guessed at).
#[test]
fn stray_snapshot_pack_and_index_files_are_named() {
    let tmp = tempdir();
    let sv = repository(tmp.path());
    plant(&sv.repo, b"snapshots/x", b"junk");
    plant(
        &sv.repo,
        format!("snapshots/{CUT_INSIDE}").as_bytes(),
        b"junk",
    );
    plant(&sv.repo, b"data/ab/x", b"junk");
    plant(
        &sv.repo,
        format!("data/zz/{CUT_INSIDE}").as_bytes(),
        b"junk",
    );

    let out = sv.run(&["snapshots"]);
    assert_no_panic(&out, "snapshots");
    assert_eq!(out.code, Some(0), "{out}");
    assert_stderr_mentions(&out, "snapshot x");
    for args in [
        vec!["check"],
        vec!["ls", "latest"],
        vec!["stats"],
        vec!["prune", "--dry-run"],
        vec!["find", "IMG_0001.JPG"],
    ] {
        let out = sv.run(&args);
        assert_no_panic(&out, &format!("{args:?}"));
    }
    let out = sv.run(&["check"]);
    assert_mentions(&out, "snapshot x");

    let junk_id = "ab".repeat(32);
    plant(&sv.repo, format!("index/{junk_id}").as_bytes(), b"junk");
    for args in [vec!["snapshots"], vec!["check"], vec!["ls", "latest"]] {
        let out = sv.run(&args);
        assert_no_panic(&out, &format!("{args:?} with index/{junk_id}"));
    }
    let out = sv.run(&["ls", "latest"]);
    assert_failed(&out);
    assert_stderr_mentions(&out, &format!("index {junk_id}"));
}

/// Files in `index/` whose names are not index file names — notes, a file manager's
/// droppings, a half-copied `….part` — are not index files: every command ignores them,
/// and `check` names each in a notice (no damage, exit 0).
#[test]
fn stray_names_in_index_stop_no_command() {
    let tmp = tempdir();
    let sv = repository(tmp.path());
    let id = names_in(&sv.repo, "index").remove(0);
    plant(&sv.repo, b"index/notes.txt", b"my notes");
    plant(&sv.repo, b"index/.DS_Store", b"\0\0\0\x01Bud1");
    plant(&sv.repo, b"index/Thumbs.db", b"");
    plant(&sv.repo, format!("index/{id}.part").as_bytes(), b"half");
    let src = tmp.path().join("photos");
    let target = tmp.path().join("restored");
    for args in [
        vec!["snapshots"],
        vec!["ls", "latest"],
        vec!["find", "IMG_0001.JPG"],
        vec!["snapshot", src.to_str().unwrap()],
        vec!["restore", "latest", "--target", target.to_str().unwrap()],
        vec!["stats"],
        vec!["forget", "--keep-last", "1"],
        vec!["prune"],
        vec!["repair"],
    ] {
        let out = sv.run(&args);
        assert_no_panic(&out, &format!("{args:?}"));
        assert_eq!(
            out.code,
            Some(0),
            "{args:?} with stray files in index/:\n{out}"
        );
    }
    assert_same_tree(&src, &target.join("photos"));
    let out = sv.run(&["check", "--read-data"]);
    assert_eq!(out.code, Some(0), "a stray file is not damage:\n{out}");
    for name in ["notes.txt", "Thumbs.db", &format!("{id}.part")] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("check does not name index/{name}:\n{out}"));
        assert!(line.contains("not an index file"), "{line}");
    }
    assert_eq!(
        fs::read(sv.repo.join("index/notes.txt")).unwrap(),
        b"my notes"
    );
}

/// A config whose `id` is not 64 hex digits is refused by name: the id names the cache
/// folder, and an id like `/some/where` or `../..` would put the catalog (and its folder's
/// permissions) outside the cache.
#[test]
fn a_config_id_that_is_not_an_id_is_refused() {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    write_random(&src.join("IMG_0001.JPG"), 1, 30_000);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    let victim = tmp.path().join("victim");
    let config_path = sv.repo.join("config");
    let config = fs::read_to_string(&config_path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&config).unwrap();
    for bad in [victim.to_str().unwrap(), "../../victim", "abc", "é"] {
        v["id"] = serde_json::Value::String(bad.to_string());
        fs::write(&config_path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
        let cache = tmp.path().join("cache");
        let out = sv.run_env(&["photos"], &[("XDG_CACHE_HOME", cache.to_str().unwrap())]);
        assert_no_panic(&out, "photos");
        assert_failed(&out);
        assert_stderr_mentions(&out, "config");
        assert_stderr_mentions(&out, "id");
        assert!(
            !victim.exists(),
            "id {bad:?}: a folder was made outside the cache"
        );
        assert!(
            !cache.join("victim").exists(),
            "id {bad:?}: a folder was made outside the cache"
        );
    }
}
