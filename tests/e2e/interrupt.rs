//! A snapshot that is interrupted keeps what it read: Ctrl-C or SIGTERM (from a folder or
//! the emulated phone) saves a partial snapshot, releases the lock and exits 130 / 143; a
//! second Ctrl-C quits at once and still releases the lock. And a snapshot whose lock was
//! lost while it was paused (SIGSTOP, like a suspended laptop) does not commit a snapshot
//! that references data a prune elsewhere deleted meanwhile.
//!
//! Moments are chosen without timing assumptions: the emulated phone serves at a throttled
//! rate and the test waits for a number of bytes served, or the process is paused with
//! SIGSTOP at a visible point (its first pack file).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use snapvault_fakephone::{FakePhone, FakePhoneConfig};

use crate::common::*;

const MIB: usize = 1024 * 1024;

/// Readers of a child's stdout and stderr.
type Output = (JoinHandle<Vec<u8>>, JoinHandle<Vec<u8>>);

/// A running snapvault; resumed and killed on drop, so no stopped process outlives a test.
struct Running {
    child: Option<Child>,
    out: Option<Output>,
}

fn drain(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

impl Running {
    fn spawn(mut cmd: std::process::Command) -> Running {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut c = cmd.spawn().expect("spawn snapvault");
        let out = (
            drain(c.stdout.take().expect("stdout")),
            drain(c.stderr.take().expect("stderr")),
        );
        Running {
            child: Some(c),
            out: Some(out),
        }
    }

    fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: signalling our own child process.
            unsafe {
                libc::kill(c.id() as i32, sig);
            }
        }
    }

    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("try_wait").is_none())
    }

    /// Wait for the end (SIGCONT first) and collect the output.
    fn finish(mut self) -> Out {
        self.signal(libc::SIGCONT);
        let mut c = self.child.take().expect("child");
        let status = wait_with_timeout(&mut c, DEFAULT_TIMEOUT, "snapshot");
        let (o, e) = self.out.take().expect("output");
        Out {
            code: status.code(),
            stdout: String::from_utf8_lossy(&o.join().expect("stdout")).into_owned(),
            stderr: String::from_utf8_lossy(&e.join().expect("stderr")).into_owned(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            // SAFETY: signalling our own child process.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGCONT);
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Wait (bounded) until `cond` holds, while the process runs.
fn wait_for(p: &mut Running, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEFAULT_TIMEOUT;
    while !cond() {
        assert!(p.running(), "the snapshot ended before {what}");
        assert!(Instant::now() < deadline, "never saw {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn lock_files(repo: &Path) -> Vec<String> {
    names_in(repo, "locks")
}

/// A phone library of `photos` sample photos under `tmp/phone`.
fn phone_library(tmp: &Path, photos: usize, seed: u64) -> PathBuf {
    let lib = tmp.join("phone");
    fs::create_dir_all(&lib).unwrap();
    snapvault_media::sample::library(&lib, photos, seed).expect("sample library");
    lib
}

fn dcim_bytes(lib: &Path) -> u64 {
    tree_size(&lib.join("DCIM"))
}

fn phone(lib: &Path, bytes_per_sec: Option<u64>) -> FakePhone {
    let mut cfg = FakePhoneConfig::new(lib);
    cfg.bytes_per_sec = bytes_per_sec;
    FakePhone::start(cfg).expect("start the fake iPhone")
}

fn phone_command(sv: &Sv, phone: &FakePhone, args: &[&str]) -> std::process::Command {
    let mut c = sv.command(args);
    c.env("USBMUXD_SOCKET_ADDRESS", phone.usbmuxd_address());
    c
}

fn phone_snapshot(sv: &Sv, phone: &FakePhone) -> Value {
    let out = run_command(
        phone_command(sv, phone, &["snapshot", "iphone", "--json"]),
        DEFAULT_TIMEOUT,
    );
    assert_eq!(out.code, Some(0), "snapshot iphone failed:\n{out}");
    out.json()
}

/// Every file under `root` with its content (folder times are not the phone's to keep).
fn files_of(root: &Path) -> BTreeMap<String, Vec<u8>> {
    listing(root)
        .into_keys()
        .filter(|p| root.join(p).is_file())
        .map(|p| {
            let data = fs::read(root.join(&p)).unwrap();
            (p, data)
        })
        .collect()
}

fn check_passes(sv: &Sv) {
    let out = sv.run(&["check", "--read-data"]);
    assert_eq!(out.code, Some(0), "check --read-data:\n{out}");
}

#[test]
fn ctrl_c_during_a_phone_snapshot_keeps_a_partial_snapshot_and_the_next_run_resumes() {
    let tmp = tempdir();
    let lib = phone_library(tmp.path(), 30, 41);
    let total = dcim_bytes(&lib);
    let sv = Sv::init(tmp.path().join("repo"), false);

    // Served at a quarter of the library per second: Ctrl-C lands a quarter in.
    let slow = phone(&lib, Some(total / 4));
    let mut p = Running::spawn(phone_command(&sv, &slow, &["snapshot", "iphone"]));
    wait_for(&mut p, "a quarter of the phone served", || {
        slow.afc_bytes_served() >= total / 4
    });
    p.signal(libc::SIGINT);
    let out = p.finish();
    drop(slow);
    assert_eq!(out.code, Some(130), "Ctrl-C must exit 130:\n{out}");
    assert!(
        out.stdout.contains("partial snapshot") && out.stdout.contains("saved"),
        "stdout must say a partial snapshot was saved:\n{out}"
    );
    assert!(out.stderr.contains("Ctrl-C"), "{out}");
    assert!(lock_files(&sv.repo).is_empty(), "lock left behind:\n{out}");

    let snaps = sv.snapshots();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let partial = &snaps[0];
    assert!(
        partial["tags"]
            .as_array()
            .unwrap()
            .contains(&Value::from("partial")),
        "{partial}"
    );
    let kept = summary_u64(partial, "files_total");
    assert!(kept > 0, "nothing kept: {partial}");
    check_passes(&sv);

    // The next run does not pull again what the partial snapshot holds.
    let fast = phone(&lib, None);
    let v = phone_snapshot(&sv, &fast);
    assert_eq!(summary_u64(&v, "files_unchanged"), kept, "{v}");
    assert_eq!(v["incomplete"], Value::Bool(false), "{v}");
    let served = fast.afc_bytes_served();
    assert!(
        served < total,
        "the resumed run pulled {served} of {total} bytes again"
    );
    let target = tmp.path().join("restored");
    sv.restore("latest", &target);
    assert_eq!(files_of(&lib.join("DCIM")), files_of(&target.join("DCIM")));
}

#[test]
fn sigterm_during_a_folder_snapshot_keeps_a_partial_snapshot() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    for i in 0..8u64 {
        write_random(&src.join(format!("VID_{i:04}.MOV")), 700 + i, 8 * MIB);
    }
    let sv = Sv::init(tmp.path().join("repo"), true);
    // Held (a test-build pause point) as it starts writing its second pack, so the signal
    // lands with half of the 64 MiB still to read however fast the machine is.
    let gate = tmp.path().join("gate");
    std::fs::create_dir_all(&gate).unwrap();
    let mut cmd = sv.command(&["snapshot", src.to_str().unwrap()]);
    cmd.env("SNAPVAULT_TEST_PAUSE", "write-pack@2")
        .env("SNAPVAULT_TEST_PAUSE_DIR", &gate);
    let mut p = Running::spawn(cmd);
    wait_for(&mut p, "the second pack", || {
        gate.join("write-pack@2.paused").exists()
    });
    p.signal(libc::SIGTERM);
    std::fs::write(gate.join("write-pack@2.go"), b"").unwrap();
    let out = p.finish();
    assert_eq!(out.code, Some(143), "SIGTERM must exit 143:\n{out}");
    assert!(out.stdout.contains("partial snapshot"), "{out}");
    assert!(out.stderr.contains("SIGTERM"), "{out}");
    assert!(lock_files(&sv.repo).is_empty(), "lock left behind:\n{out}");
    let snaps = sv.snapshots();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let kept = summary_u64(&snaps[0], "files_total");
    assert!((1..8).contains(&kept), "{}", snaps[0]);
    check_passes(&sv);

    // What was kept is not read again.
    let v = sv.snapshot(&[&src], &[]);
    assert_eq!(summary_u64(&v, "files_unchanged"), kept, "{v}");
    assert_eq!(summary_u64(&v, "files_total"), 8, "{v}");
}

#[test]
fn a_second_ctrl_c_quits_at_once_and_releases_the_lock() {
    let tmp = tempdir();
    let lib = phone_library(tmp.path(), 12, 42);
    let total = dcim_bytes(&lib);
    let sv = Sv::init(tmp.path().join("repo"), false);
    // So slow that the first Ctrl-C alone would take a while to finish the current read.
    let slow = phone(&lib, Some((total / 50).max(4096)));
    let mut p = Running::spawn(phone_command(&sv, &slow, &["snapshot", "iphone"]));
    wait_for(&mut p, "the first bytes served", || {
        slow.afc_bytes_served() > 0
    });
    wait_for(&mut p, "its lock", || !lock_files(&sv.repo).is_empty());
    p.signal(libc::SIGINT);
    // Spaced, so the kernel does not merge the two into one pending signal.
    std::thread::sleep(Duration::from_millis(200));
    p.signal(libc::SIGINT);
    let out = p.finish();
    assert_eq!(out.code, Some(130), "{out}");
    assert!(lock_files(&sv.repo).is_empty(), "lock left behind:\n{out}");
    drop(slow);
    // Whatever it left (unindexed data, temporary files) harms nothing.
    let out = sv.run(&["check"]);
    assert_eq!(out.code, Some(0), "{out}");
    let fast = phone(&lib, None);
    phone_snapshot(&sv, &fast);
}

#[test]
fn a_snapshot_that_lost_its_lock_does_not_save_references_to_pruned_data() {
    let tmp = tempdir();
    let lib = phone_library(tmp.path(), 12, 43);
    let sv = Sv::init(tmp.path().join("repo"), false);
    let first = phone(&lib, None);
    let v = phone_snapshot(&sv, &first);
    drop(first);
    let old = v["id"].as_str().unwrap().to_string();

    // New photos that sort first: read while the old ones wait to be reused.
    let new_bytes = 2 * MIB;
    write_random(&lib.join("DCIM/100APPLE/IMG_0000.HEIC"), 900, new_bytes);
    let slow = phone(&lib, Some(new_bytes as u64 / 4));
    let mut p = Running::spawn(phone_command(&sv, &slow, &["snapshot", "iphone"]));
    wait_for(&mut p, "the new photo being read", || {
        slow.afc_bytes_served() > 64 * 1024
    });
    // "The laptop sleeps": meanwhile another machine takes its lock for stale, removes it,
    // forgets the old snapshot and prunes the data the paused snapshot is about to reuse.
    p.signal(libc::SIGSTOP);
    let out = sv.run(&["unlock", "--remove-all"]);
    assert_eq!(out.code, Some(0), "{out}");
    sv.ok(&["forget", "--allow-photo-loss", &old]);
    let out = sv.run(&["prune"]);
    assert_eq!(out.code, Some(0), "{out}");
    let out = p.finish();
    drop(slow);

    assert_ne!(out.code, Some(0), "saved despite pruned data:\n{out}");
    assert!(
        out.stderr.contains("lock") && out.stderr.contains("NOT saved"),
        "the error must say the lock was lost and nothing was saved:\n{out}"
    );
    assert!(sv.snapshots().is_empty(), "a snapshot was saved");
    check_passes(&sv);
    assert!(lock_files(&sv.repo).is_empty(), "lock left behind");

    // The next run stores everything again and restores exactly.
    let fast = phone(&lib, None);
    phone_snapshot(&sv, &fast);
    check_passes(&sv);
    let target = tmp.path().join("restored");
    sv.restore("latest", &target);
    assert_eq!(files_of(&lib.join("DCIM")), files_of(&target.join("DCIM")));
}
