//! Several passwords for one master key: add, list, remove, passwd; the last key stays.

use serde_json::Value;

use crate::common::*;

const PW2: &str = "second password";
const PW3: &str = "third password";

fn keys(sv: &Sv) -> Vec<Value> {
    match sv.ok(&["key", "list", "--json"]).json() {
        Value::Array(v) => v,
        other => panic!("key list --json is not an array: {other}"),
    }
}

fn key_id(k: &Value) -> String {
    k["id"].as_str().expect("key id").to_string()
}

#[test]
fn add_list_remove_and_change_passwords() {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    write_random(&src.join("IMG_0001.JPG"), 1, 50_000);
    let sv1 = Sv::init(tmp.path().join("repo"), true);
    sv1.snapshot(&[&src], &[]);
    let sv2 = Sv::at(&sv1.repo, Some(PW2));
    let sv3 = Sv::at(&sv1.repo, Some(PW3));

    // Before: one key, the second password does not open the repository.
    let k = keys(&sv1);
    assert_eq!(k.len(), 1, "{k:?}");
    assert_eq!(k[0]["current"], true);
    assert_eq!(sv2.run(&["snapshots"]).code, Some(12));

    // key add with the new password from SNAPVAULT_NEW_PASSWORD.
    let out = sv1.run_env(&["key", "add"], &[("SNAPVAULT_NEW_PASSWORD", PW2)]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(names_in(&sv1.repo, "keys").len(), 2);
    // Both passwords open it and see the same snapshot.
    assert_eq!(sv2.snapshots(), sv1.snapshots());
    let k = keys(&sv2);
    assert_eq!(k.len(), 2, "{k:?}");
    let current: Vec<_> = k.iter().filter(|k| k["current"] == true).collect();
    assert_eq!(current.len(), 1, "exactly one key is in use: {k:?}");
    let other = k
        .iter()
        .find(|k| k["current"] == false)
        .map(key_id)
        .unwrap();
    let mine = key_id(current[0]);
    for key in &k {
        assert!(key_id(key).len() >= 8, "{key}");
    }

    // The key in use cannot be removed.
    let out = sv2.run(&["key", "remove", &mine]);
    assert_failed(&out);
    assert_eq!(keys(&sv2).len(), 2);

    // Remove the first password's key (by a prefix) while opened with the second.
    let out = sv2.ok(&["key", "remove", &other[..8]]);
    assert!(out.stdout.contains(&other[..8]), "{out}");
    assert_eq!(names_in(&sv1.repo, "keys"), vec![mine.clone()]);
    let out = sv1.run(&["snapshots"]);
    assert_eq!(out.code, Some(12), "removed password still opens:\n{out}");

    // Removing the last key is refused, and nothing is removed.
    let before = listing(&sv1.repo);
    let out = sv2.run(&["key", "remove", &mine]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "last key");
    assert_unchanged(&before, &sv1.repo, "refusing to remove the last key");
    assert_eq!(keys(&sv2).len(), 1);

    // passwd: the old password stops working, the new one works, data still restores.
    let out = sv2.run_env(&["key", "passwd"], &[("SNAPVAULT_NEW_PASSWORD", PW3)]);
    assert_eq!(out.code, Some(0), "{out}");
    let out = sv2.run(&["snapshots"]);
    assert_eq!(out.code, Some(12), "old password after passwd:\n{out}");
    assert_stderr_mentions(&out, "wrong password");
    let k = keys(&sv3);
    assert_eq!(k.len(), 1, "passwd leaves exactly one key: {k:?}");
    assert_ne!(key_id(&k[0]), mine);
    let target = tmp.path().join("r");
    sv3.restore("latest", &target);
    assert_same_tree(&src, &target.join("photos"));
    sv3.ok(&["check", "--read-data"]);
}

#[test]
fn key_add_without_a_new_password_is_an_error_not_a_hang() {
    let tmp = tempdir();
    let sv = Sv::init(tmp.path().join("repo"), true);
    let before = listing(&sv.repo);
    let out = run_command(
        sv.command(&["key", "add"]),
        std::time::Duration::from_secs(20),
    );
    assert_failed(&out);
    assert_stderr_mentions(&out, "SNAPVAULT_NEW_PASSWORD");
    assert_unchanged(&before, &sv.repo, "key add without a password");
}

#[test]
fn key_add_from_a_file() {
    let tmp = tempdir();
    let sv = Sv::init(tmp.path().join("repo"), true);
    let f = tmp.path().join("newpw");
    write_file(&f, format!("{PW2}\n").as_bytes());
    sv.ok(&["key", "add", "--new-password-file", f.to_str().unwrap()]);
    Sv::at(&sv.repo, Some(PW2)).ok(&["snapshots"]);
}

/// A process held at its `locked` pause point (holding its lock) until the test lets it
/// go; killed on drop, so a failed assertion leaves no process waiting.
struct Holder {
    child: std::process::Child,
    gate: std::path::PathBuf,
    pid: u32,
}

impl Holder {
    fn start(sv: &Sv, args: &[&str], gate: std::path::PathBuf) -> Holder {
        std::fs::create_dir_all(&gate).unwrap();
        let mut c = sv.command(args);
        c.env("SNAPVAULT_TEST_PAUSE", "locked@1")
            .env("SNAPVAULT_TEST_PAUSE_DIR", &gate)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = c.spawn().expect("spawn the lock holder");
        let paused = gate.join("locked@1.paused");
        let deadline = std::time::Instant::now() + DEFAULT_TIMEOUT;
        let pid = loop {
            if let Ok(pid) = std::fs::read_to_string(&paused) {
                break pid.trim().parse().unwrap();
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "{args:?} ended before taking its lock"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "{args:?} never locked"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        Holder { child, gate, pid }
    }

    fn release(mut self) {
        std::fs::write(self.gate.join("locked@1.go"), b"").unwrap();
        let st = wait_with_timeout(&mut self.child, DEFAULT_TIMEOUT, "lock holder");
        assert!(st.success(), "the lock holder failed: {st}");
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `key add` writes a key file and `key passwd` also removes one; key files are covered by
/// parity, so neither may run while a command that rewrites parity holds the exclusive
/// lock. `key add` only adds a file: a shared lock, beside snapshots. `key passwd` removes
/// the old key file: the exclusive lock, like `key remove`. A refusal names the holder and
/// exits 11 (user guide), and changes no key file.
#[test]
fn key_add_and_passwd_take_the_repository_lock() {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    write_random(&src.join("IMG_0001.JPG"), 1, 50_000);
    let sv = Sv::init(tmp.path().join("repo"), true);
    sv.snapshot(&[&src], &[]);
    let keys_now = || names_in(&sv.repo, "keys");
    let add = |sv: &Sv| sv.run_env(&["key", "add"], &[("SNAPVAULT_NEW_PASSWORD", PW2)]);
    let passwd = |sv: &Sv| sv.run_env(&["key", "passwd"], &[("SNAPVAULT_NEW_PASSWORD", PW3)]);

    // An exclusive holder (prune): both are refused, naming it.
    let prune = Holder::start(&sv, &["prune"], tmp.path().join("gate-prune"));
    let before = keys_now();
    for (what, out) in [("key add", add(&sv)), ("key passwd", passwd(&sv))] {
        assert_eq!(out.code, Some(11), "{what} while prune runs: {out}");
        assert_stderr_mentions(&out, "`snapvault prune`");
        assert_stderr_mentions(&out, &format!("pid {}", prune.pid));
        assert_eq!(keys_now(), before, "{what} changed key files while refused");
    }
    prune.release();

    // A shared holder (a snapshot): key add goes ahead, key passwd is refused.
    let snap = Holder::start(
        &sv,
        &["snapshot", src.to_str().unwrap()],
        tmp.path().join("gate-snapshot"),
    );
    let out = add(&sv);
    assert_eq!(out.code, Some(0), "key add beside a snapshot: {out}");
    assert_eq!(keys_now().len(), before.len() + 1);
    let before = keys_now();
    let out = passwd(&sv);
    assert_eq!(
        out.code,
        Some(11),
        "key passwd while a snapshot runs: {out}"
    );
    assert_stderr_mentions(&out, "`snapvault snapshot`");
    assert_stderr_mentions(&out, &format!("pid {}", snap.pid));
    assert_eq!(keys_now(), before);
    snap.release();

    // Unblocked, both work.
    let out = passwd(&sv);
    assert_eq!(out.code, Some(0), "{out}");
    Sv::at(&sv.repo, Some(PW3)).ok(&["check"]);
}
