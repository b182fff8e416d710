//! Concurrency through the real binary: prune refuses while a snapshot runs and names it, a
//! snapshot refuses while prune runs and names it, and readers (check, restore) running
//! while snapshots write never see a half-written object. (Two snapshots at once completing
//! and restoring is `kill::concurrent_snapshots_both_complete`.)
//!
//! To look at a writer at a definite moment without timing assumptions, the writer is held
//! at a pause point (`snapvault_repo::testhooks`, in test builds only): it stops at a named
//! step — holding its lock, or with a file it is writing created but still empty — and goes
//! on when the test releases it. Every look therefore happens, on any machine, at the
//! moment it is meant to.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const MIB: usize = 1024 * 1024;

/// Running snapvault processes; on drop (a failed assertion included) they are killed, so
/// none outlives the test waiting at a pause point.
struct Procs(Vec<Child>);

impl Procs {
    fn wait(&mut self, i: usize, what: &str) -> Option<i32> {
        wait_with_timeout(&mut self.0[i], DEFAULT_TIMEOUT, what).code()
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A folder for the pause handshake of one process.
struct Gate(PathBuf);

impl Gate {
    fn new(tmp: &Path, name: &str) -> Gate {
        let dir = tmp.join(format!("gate-{name}"));
        fs::create_dir_all(&dir).unwrap();
        Gate(dir)
    }

    /// Start `snapvault ARGS` that pauses at each of `points` (`POINT@N`).
    fn spawn(&self, sv: &Sv, args: &[&str], points: &[&str]) -> Child {
        let mut c = sv.command(args);
        c.env("SNAPVAULT_TEST_PAUSE", points.join(","))
            .env("SNAPVAULT_TEST_PAUSE_DIR", &self.0)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c.spawn().expect("spawn snapvault")
    }

    /// Wait (with a hang guard) until `child` is held at `point`; its pid. Fails, showing
    /// its output, if the process ended without getting there.
    fn reached(&self, child: &mut Child, point: &str) -> u32 {
        let file = self.0.join(format!("{point}.paused"));
        let deadline = Instant::now() + DEFAULT_TIMEOUT;
        loop {
            if let Ok(pid) = fs::read_to_string(&file) {
                return pid.trim().parse().expect("pid in the pause file");
            }
            if let Some(st) = child.try_wait().expect("try_wait") {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("the process ended ({st}) before reaching {point}:\n{err}");
            }
            assert!(Instant::now() < deadline, "never reached {point}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn release(&self, point: &str) {
        fs::write(self.0.join(format!("{point}.go")), b"").unwrap();
    }
}

/// Every content-named file (packs, index files, snapshots) holds exactly the bytes its
/// name is the hash of: nothing half-written is ever visible under a real name. Returns how
/// many were checked.
fn assert_no_half_written_objects(repo: &Path, when: &str) -> usize {
    let mut n = 0;
    let mut dirs: Vec<PathBuf> = vec![repo.join("index"), repo.join("snapshots")];
    // data/<2 hex>/ folders (data/ itself holds only the temporary files of packs
    // being written as they fill).
    for e in fs::read_dir(repo.join("data")).unwrap().flatten() {
        if e.path().is_dir() {
            dirs.push(e.path());
        }
    }
    for d in dirs {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            // A concurrent writer may only add files; a file that vanished is not ours.
            let Ok(bytes) = fs::read(e.path()) else {
                continue;
            };
            assert_eq!(
                blake3::hash(&bytes).to_hex().as_str(),
                name,
                "{when}: {} is not the whole object its name promises ({} bytes)",
                e.path().display(),
                bytes.len()
            );
            n += 1;
        }
    }
    n
}

/// `prune` while a snapshot runs is refused and names the snapshot's process; `snapshot`
/// while prune runs is refused and names prune's. Both work once the other finished. Each
/// holder is held at the `locked` pause point, so the refusal is seen on every run.
#[test]
fn prune_and_snapshot_refuse_each_other_naming_the_holder() {
    let tmp = tempdir();
    let sv = Sv::init(tmp.path().join("repo"), true);
    let lib = tmp.path().join("lib");
    for i in 0..4 {
        write_random(&lib.join(format!("IMG_{i:04}.HEIC")), i, 300_000);
    }
    let first = sv.snapshot(&[&lib], &[]);
    let big = tmp.path().join("big");
    write_random(&big.join("VIDEO_0001.MOV"), 7, 3 * MIB);

    // A snapshot holding its lock.
    let gate = Gate::new(tmp.path(), "snapshot");
    let mut procs = Procs(vec![gate.spawn(
        &sv,
        &["snapshot", big.to_str().unwrap()],
        &["locked@1"],
    )]);
    let pid = gate.reached(&mut procs.0[0], "locked@1");
    assert_eq!(pid, procs.0[0].id());
    for args in [
        vec!["prune"],
        vec![
            "forget",
            first["id"].as_str().unwrap(),
            "--allow-photo-loss",
            "--prune",
        ],
    ] {
        let out = sv.run(&args);
        assert_eq!(out.code, Some(11), "{args:?} while a snapshot runs: {out}");
        assert_stderr_mentions(&out, "`snapvault snapshot`");
        assert_stderr_mentions(&out, &format!("pid {pid}"));
    }
    // Readers share the lock: they work meanwhile.
    sv.ok(&["check"]);
    sv.restore(first["id"].as_str().unwrap(), &tmp.path().join("r1"));
    gate.release("locked@1");
    assert_eq!(procs.wait(0, "snapshot"), Some(0));
    assert_eq!(sv.snapshots().len(), 2);

    // Now prune holds the exclusive lock, and a snapshot is refused.
    fs::remove_dir_all(&big).unwrap();
    sv.ok(&[
        "forget",
        first["id"].as_str().unwrap(),
        "--allow-photo-loss",
    ]);
    let gate = Gate::new(tmp.path(), "prune");
    let mut procs = Procs(vec![gate.spawn(
        &sv,
        &["prune", "--max-unused", "0"],
        &["locked@1"],
    )]);
    let pid = gate.reached(&mut procs.0[0], "locked@1");
    let out = sv.run(&["snapshot", lib.to_str().unwrap()]);
    assert_eq!(out.code, Some(11), "snapshot while prune runs: {out}");
    assert_stderr_mentions(&out, "`snapvault prune`");
    assert_stderr_mentions(&out, &format!("pid {pid}"));
    // Readers are refused too (prune may be deleting what they would read).
    let out = sv.run(&["check"]);
    assert_eq!(out.code, Some(11), "check while prune runs: {out}");
    gate.release("locked@1");
    assert_eq!(procs.wait(0, "prune"), Some(0));
    sv.snapshot(&[&lib], &[]);
    sv.ok(&["check", "--read-data"]);
}

/// Looks at the repository while both writers are held: no object under a real name is
/// incomplete, `check` finds no error and the earlier snapshot restores. Returns how many
/// objects were checked.
fn look(sv: &Sv, tmp: &Path, s0_id: &str, old: &Path, when: &str) -> usize {
    let seen = assert_no_half_written_objects(&sv.repo, when);
    let out = sv.run(&["check"]);
    assert_eq!(out.code, Some(0), "{when}: check with writers held: {out}");
    let target = tmp.join(format!("r0-{}", when.replace(' ', "-")));
    sv.restore(s0_id, &target);
    assert_same_tree(old, &target.join("old"));
    seen
}

/// Two snapshots write at once (an encrypted repository). Each is held at defined moments
/// — in the middle of writing a pack (the pack's file created, nothing in it yet), of
/// writing its index file, of writing its snapshot — and meanwhile nothing under a real
/// name is incomplete, `check` finds no error and an earlier snapshot restores. At the end
/// both complete and restore.
#[test]
fn readers_never_see_half_written_objects() {
    let tmp = tempdir();
    let sv = Sv::init(tmp.path().join("repo"), true);
    let old = tmp.path().join("old");
    write_random(&old.join("IMG_0001.HEIC"), 1, 2 * MIB);
    write_random(&old.join("sub/IMG_0002.JPG"), 2, 700_000);
    let s0 = sv.snapshot(&[&old], &[]);
    let s0_id = s0["id"].as_str().unwrap().to_string();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    for i in 0..3 {
        write_random(&a.join(format!("VID_{i}.MOV")), 100 + i, 12 * MIB);
        write_random(&b.join(format!("IMG_{i}.HEIC")), 200 + i, 8 * MIB);
    }

    let (gate_a, gate_b) = (Gate::new(tmp.path(), "a"), Gate::new(tmp.path(), "b"));
    let mut procs = Procs(vec![
        gate_a.spawn(
            &sv,
            &["snapshot", a.to_str().unwrap()],
            &["write-pack@1", "write-index@1"],
        ),
        gate_b.spawn(
            &sv,
            &["snapshot", b.to_str().unwrap()],
            &["write-pack@2", "write-snapshot@1"],
        ),
    ]);
    // A in its first pack, B in its second (its first is complete).
    gate_a.reached(&mut procs.0[0], "write-pack@1");
    gate_b.reached(&mut procs.0[1], "write-pack@2");
    let first = look(&sv, tmp.path(), &s0_id, &old, "in packs");
    gate_a.release("write-pack@1");
    gate_b.release("write-pack@2");
    // A writing its index file, B its snapshot.
    gate_a.reached(&mut procs.0[0], "write-index@1");
    gate_b.reached(&mut procs.0[1], "write-snapshot@1");
    let second = look(&sv, tmp.path(), &s0_id, &old, "in index and snapshot");
    // B's first pack, then all of B's packs and its index, were there to check.
    assert!(second > first, "{first} objects, then {second}");
    gate_a.release("write-index@1");
    gate_b.release("write-snapshot@1");
    assert_eq!(procs.wait(0, "snapshot a"), Some(0));
    assert_eq!(procs.wait(1, "snapshot b"), Some(0));

    assert_eq!(sv.snapshots().len(), 3);
    assert_no_half_written_objects(&sv.repo, "at the end");
    let out = sv.ok(&["check", "--read-data"]);
    assert_mentions(&out, "no errors found");
    for (dir, name) in [(&a, "a"), (&b, "b")] {
        let snap = sv
            .snapshots()
            .into_iter()
            .find(|s| s["source"]["paths"][0] == dir.to_str().unwrap())
            .unwrap();
        let target = tmp.path().join(format!("r-{name}"));
        sv.restore(snap["id"].as_str().unwrap(), &target);
        assert_same_tree(dir, &target.join(name));
    }
}

/// `--retry-lock`: a snapshot started while prune holds the repository waits for it and
/// then runs; with too short a wait it stops with exit 11 naming prune. Prune is held at
/// its `locked` pause point, and the waiting snapshot is seen at `lock-wait` (refused, and
/// waiting to try again) before prune is let go.
#[test]
fn snapshot_waits_for_prune_with_retry_lock() {
    let tmp = tempdir();
    let sv = Sv::init(tmp.path().join("repo"), true);
    let lib = tmp.path().join("lib");
    write_random(&lib.join("IMG_0001.HEIC"), 1, 300_000);
    let big = tmp.path().join("big");
    write_random(&big.join("VIDEO_0001.MOV"), 2, 3 * MIB);
    let first = sv.snapshot(&[&big], &[]);
    sv.ok(&[
        "forget",
        first["id"].as_str().unwrap(),
        "--allow-photo-loss",
    ]);
    let gate = Gate::new(tmp.path(), "prune");
    let mut procs = Procs(vec![gate.spawn(
        &sv,
        &["prune", "--max-unused", "0"],
        &["locked@1"],
    )]);
    gate.reached(&mut procs.0[0], "locked@1");
    let out = sv.run(&["snapshot", "--retry-lock", "2s", lib.to_str().unwrap()]);
    assert_eq!(out.code, Some(11), "gave up after the wait: {out}");
    assert_stderr_mentions(&out, "`snapvault prune`");
    let bad = sv.run(&["snapshot", "--retry-lock", "soon", lib.to_str().unwrap()]);
    assert_eq!(bad.code, Some(1), "{bad}");
    assert_stderr_mentions(&bad, "--retry-lock");
    let waiting_gate = Gate::new(tmp.path(), "waiting");
    let mut waiting = Procs(vec![waiting_gate.spawn(
        &sv,
        &["snapshot", "--retry-lock", "2m", lib.to_str().unwrap()],
        &["lock-wait@1", "locked@1"],
    )]);
    // Refused while prune holds the lock, and waiting instead of giving up.
    waiting_gate.reached(&mut waiting.0[0], "lock-wait@1");
    waiting_gate.release("lock-wait@1");
    gate.release("locked@1");
    assert_eq!(procs.wait(0, "prune"), Some(0));
    // It gets the lock only now that prune is done.
    waiting_gate.reached(&mut waiting.0[0], "locked@1");
    waiting_gate.release("locked@1");
    assert_eq!(waiting.wait(0, "snapshot"), Some(0));
    assert_eq!(sv.snapshots().len(), 1);
    sv.ok(&["check", "--read-data"]);
}
