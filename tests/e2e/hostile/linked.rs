//! Session 12: a file in the restore target that is already right but is a hard link of a
//! file outside the target. Restore may change the target, never what lies outside it:
//! giving the shared inode the snapshot's mode and time changed the outside file too.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::common::*;

/// (mode, mtime in ns, inode) of a file.
fn meta(p: &Path) -> (u32, i128, u64) {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
    (m.mode() & 0o7777, mtime_ns(&m), m.ino())
}

/// One story's setup: `src/a.jpg` (and, with `pair`, its hard link `src/b.jpg`) backed up
/// with mode `snap.0` and time `snap.1` (s, ns); then `outside/mine.jpg` with the same bytes
/// and mode `out.0`, time `out.1`, hard-linked into the empty target as `src/<linked>`.
struct Linked {
    _tmp: tempfile::TempDir,
    sv: Sv,
    src: std::path::PathBuf,
    photo: Vec<u8>,
    outside: std::path::PathBuf,
    target: std::path::PathBuf,
}

fn linked(pair: bool, snap: (u32, (i64, u32)), out: (u32, (i64, u32)), linked: &str) -> Linked {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    let photo = write_random(&src.join("a.jpg"), 1, 40_000);
    if pair {
        fs::hard_link(src.join("a.jpg"), src.join("b.jpg")).unwrap();
    }
    set_mode(&src.join("a.jpg"), snap.0);
    set_mtime(&src.join("a.jpg"), snap.1.0, snap.1.1);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);

    let outside = tmp.path().join("outside/mine.jpg");
    write_file(&outside, &photo);
    set_mode(&outside, out.0);
    set_mtime(&outside, out.1.0, out.1.1);
    let target = tmp.path().join("t");
    fs::create_dir_all(target.join("src")).unwrap();
    fs::hard_link(&outside, target.join("src").join(linked)).unwrap();
    Linked {
        _tmp: tmp,
        sv,
        src,
        photo,
        outside,
        target,
    }
}

/// `src/a.jpg` (0644, 2021) backed up; the target already holds `src/a.jpg` with the same
/// bytes as a hard link of `outside/mine.jpg` (0600, 2024). Before, restore said the file
/// was already right and gave the shared inode mode 0644 and the 2021 time: the outside
/// file changed. Now the outside file keeps its mode, time and bytes; the target's name
/// gets a file of its own with the snapshot's mode and time.
#[test]
fn restoring_over_a_right_file_linked_outside_leaves_the_outside_file_alone() {
    let Linked {
        _tmp: _kept, // the folder lives as long as the test
        sv,
        src,
        photo,
        outside,
        target,
        ..
    } = linked(
        false,
        (0o644, (1_620_000_000, 0)),
        (0o600, (1_720_000_000, 5)),
        "a.jpg",
    );
    let before = meta(&outside);

    let out = sv.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        meta(&outside),
        before,
        "the file outside the target changed (mode, mtime, inode):\n{out}"
    );
    assert_eq!(fs::read(&outside).unwrap(), photo);
    assert_same_tree(&src, &target.join("src"));
}

/// The same file linked outside with the snapshot's mode and time already: nothing to
/// change, so nothing is written and the link stays.
#[test]
fn a_right_file_linked_outside_with_the_right_metadata_is_left_as_it_is() {
    let Linked {
        _tmp: _kept, // the folder lives as long as the test
        sv,
        src,
        outside,
        target,
        ..
    } = linked(
        false,
        (0o640, (1_620_000_000, 7)),
        (0o640, (1_620_000_000, 7)),
        "a.jpg",
    );
    let before = meta(&outside);
    let out = sv.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(meta(&outside), before, "{out}");
    assert_eq!(meta(&target.join("src/a.jpg")).2, before.2, "{out}");
    assert_same_tree(&src, &target.join("src"));
}

/// A pair of hard links in the snapshot; in the target the second name is already right
/// but linked to a file outside, with another mode and time. Before, linking it to the
/// first (already right, a file of its own) set the snapshot's mode and time on the
/// outside file. Now the outside file is untouched and the pair comes back linked.
#[test]
fn a_link_of_the_snapshot_linked_outside_does_not_change_the_outside_file() {
    let Linked {
        _tmp: _kept, // the folder lives as long as the test
        sv,
        photo,
        outside,
        target,
        ..
    } = linked(
        true,
        (0o644, (1_620_000_000, 0)),
        (0o600, (1_720_000_000, 5)),
        "b.jpg",
    );
    let before = meta(&outside);

    let out = sv.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(meta(&outside), before, "the outside file changed:\n{out}");
    let (a, b) = (target.join("src/a.jpg"), target.join("src/b.jpg"));
    assert_eq!(fs::read(&b).unwrap(), photo);
    assert_eq!(
        meta(&a),
        meta(&b),
        "the pair did not come back linked:\n{out}"
    );
    assert_eq!(meta(&a).0, 0o644);
    assert_eq!(meta(&a).1, 1_620_000_000_000_000_000);
}

/// A FIFO backed up (0644, 2021); the target already holds a FIFO under its name that is a
/// hard link of a FIFO outside the target (0600, 2024). Before, restore found a FIFO there
/// and gave the shared inode the snapshot's mode and time: the outside FIFO changed (the
/// regular file's bug, fixed in session 12, for FIFOs). Now the outside FIFO keeps its own;
/// the target's name gets a FIFO of its own with the snapshot's mode and time.
#[test]
fn restoring_over_a_fifo_linked_outside_leaves_the_outside_fifo_alone() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let fifo = |p: &Path, mode: u32, secs: i64| {
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        set_mode(p, mode);
        // Through a descriptor opened without waiting for a writer (`set_mtime` would).
        use std::os::unix::fs::OpenOptionsExt;
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(p)
            .unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
        f.set_modified(t).unwrap();
    };
    fifo(&src.join("pipe"), 0o644, 1_620_000_000);
    let (target, out) = restore_over_a_link_from_outside(&tmp, "pipe", "FIFO", |outside| {
        fifo(outside, 0o600, 1_720_000_000)
    });
    let restored = meta(&target.join("src/pipe"));
    assert_eq!(
        (restored.0, restored.1),
        (0o644, 1_620_000_000_000_000_000),
        "{out}"
    );
}

/// A device file (here `/dev/null`'s number) already in the target but hard-linked to a
/// name outside it: restore gave the shared inode the snapshot's time, changing the
/// outside device file too. It now makes the name a device of its own (under a temporary
/// name, renamed over it) and leaves the outside one alone. Root only (mknod).
#[test]
fn restoring_over_a_device_linked_outside_leaves_the_outside_device_alone() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let device = |p: &Path, secs: i64| -> bool {
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; makedev(1, 3) is /dev/null's number.
        let made = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) };
        if made != 0 {
            return false;
        }
        let t = libc::timespec {
            tv_sec: secs as _,
            tv_nsec: 0,
        };
        let times = [t, t];
        // SAFETY: as above; two timespecs; the device itself is never opened.
        let set = unsafe {
            libc::utimensat(
                libc::AT_FDCWD,
                c.as_ptr(),
                times.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        assert_eq!(set, 0, "utimensat {}", p.display());
        true
    };
    if !device(&src.join("null"), 1_620_000_000) {
        eprintln!("skipped: making a device file needs root");
        return;
    }
    let (target, out) = restore_over_a_link_from_outside(&tmp, "null", "device file", |outside| {
        assert!(device(outside, 1_720_000_000))
    });
    let restored = fs::symlink_metadata(target.join("src/null")).unwrap();
    assert_eq!(restored.rdev(), libc::makedev(1, 3) as u64, "{out}");
    assert_eq!(mtime_ns(&restored), 1_620_000_000_000_000_000, "{out}");
}

/// `tmp/src` (holding `name`) backed up; `make` then makes `tmp/outside/<name>`, hard-linked
/// into the empty target as `src/<name>`; the restore must exit 0 and leave the outside
/// `what` as it was (mode, mtime, inode). The target and the restore's outcome.
fn restore_over_a_link_from_outside(
    tmp: &tempfile::TempDir,
    name: &str,
    what: &str,
    make: impl FnOnce(&Path),
) -> (std::path::PathBuf, Out) {
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&tmp.path().join("src")], &[]);
    let outside = tmp.path().join("outside").join(name);
    fs::create_dir_all(outside.parent().unwrap()).unwrap();
    make(&outside);
    let target = tmp.path().join("t");
    fs::create_dir_all(target.join("src")).unwrap();
    fs::hard_link(&outside, target.join("src").join(name)).unwrap();
    let before = meta(&outside);

    let out = sv.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        meta(&outside),
        before,
        "the {what} outside the target changed (mode, mtime, inode):\n{out}"
    );
    (target, out)
}
