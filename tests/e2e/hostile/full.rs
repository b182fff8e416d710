//! Session 12: full disks under the repository and under the cache. Each needs root to
//! mount a small tmpfs and is skipped otherwise.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// A tmpfs of `size` (as `mount -o size=`) at `at`, unmounted when dropped; `None` where
/// it cannot be mounted (not root).
pub struct Tmpfs<'a>(&'a Path);

impl<'a> Tmpfs<'a> {
    pub fn mount(at: &'a Path, size: &str) -> Option<Tmpfs<'a>> {
        fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status();
        matches!(ok, Ok(s) if s.success()).then_some(Tmpfs(at))
    }

    pub fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.0)
            .status()
            .unwrap();
        assert!(ok.success(), "remount {}", self.0.display());
    }
}

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

/// A repository on a disk that fills during the second snapshot: the snapshot fails with
/// a hint about the repository's disk, the repository stays one `check` passes and the
/// first snapshot restores; given room, the next snapshot finishes.
#[test]
fn a_repository_disk_that_fills_during_a_snapshot_leaves_a_sound_repository() {
    let tmp = tempdir();
    let disk = tmp.path().join("disk");
    let Some(fs_) = Tmpfs::mount(&disk, "8m") else {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root)");
        return;
    };
    let src = tmp.path().join("src");
    for i in 0..3 {
        write_random(&src.join(format!("a/IMG_{i}.JPG")), i, 1_000_000);
    }
    let sv = Sv::init(disk.join("repo"), true);
    sv.snapshot(&[&src], &[]);
    let first = tmp.path().join("first");
    fs::create_dir_all(&first).unwrap();
    let cp = Command::new("cp").arg("-a").arg(&src).arg(&first).status();
    assert!(cp.unwrap().success());
    for i in 0..12 {
        write_random(&src.join(format!("b/IMG_{i}.JPG")), 100 + i, 1_000_000);
    }
    let out = sv.run(&["snapshot", src.to_str().unwrap()]);
    assert_failed(&out);
    assert!(!out.stderr.contains("panicked"), "{out}");
    assert_stderr_mentions(&out, "hint:");
    assert_eq!(sv.snapshots().len(), 1, "{out}");

    let out = sv.run(&["check", "--read-data"]);
    assert_eq!(out.code, Some(0), "check after the full disk:\n{out}");
    let t1 = tmp.path().join("t1");
    sv.restore("latest", &t1);
    assert_same_tree(&first.join("src"), &t1.join("src"));

    fs_.resize("64m");
    sv.snapshot(&[&src], &[]);
    let out = sv.run(&["check", "--read-data"]);
    assert_eq!(out.code, Some(0), "check after room was made:\n{out}");
    let t2 = tmp.path().join("t2");
    sv.restore("latest", &t2);
    assert_same_tree(&src, &t2.join("src"));
}

/// The cache folder (catalog, damage list, files cache) on a full disk — the system disk
/// of a laptop that is full, say. The catalog is a cache, rebuilt from the repository: a
/// snapshot still stores everything, and `photos` and `restore --date` still answer (from a
/// catalog built in memory), with a warning. Before, both failed: "opening the photo
/// catalog …/catalog.sqlite: database or disk is full", exit 1.
#[test]
fn a_full_cache_disk_does_not_stop_photos_or_restore_by_date() {
    let tmp = tempdir();
    let cache = tmp.path().join("cache");
    let Some(_fs) = Tmpfs::mount(&cache, "64k") else {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root)");
        return;
    };
    // Fill it (the write stops where the disk does).
    let _ = fs::write(cache.join("filler"), vec![1u8; 256 << 10]);
    let src = tmp.path().join("src");
    for i in 0..6 {
        let p = src.join(format!("IMG_{i:04}.JPG"));
        write_random(&p, i, 20_000);
        set_mtime(&p, 1_689_350_591 + i as i64 * 86_400, 0); // from 2023-07-14
    }
    let sv = Sv::init(tmp.path().join("repo"), false);
    let env = [("XDG_CACHE_HOME", cache.to_str().unwrap())];
    let out = sv.run_env(&["snapshot", src.to_str().unwrap()], &env);
    assert_eq!(out.code, Some(0), "{out}");

    let out = sv.run_env(&["photos", "--date", "2023-07"], &env);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("IMG_0005.JPG"), "{out}");
    assert_stderr_mentions(&out, "warning:");

    let t = tmp.path().join("t");
    let out = sv.run_env(
        &[
            "restore",
            "--date",
            "2023-07-15",
            "--target",
            t.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        fs::read(t.join("src/IMG_0001.JPG")).unwrap(),
        fs::read(src.join("IMG_0001.JPG")).unwrap(),
        "{out}"
    );
    assert!(!t.join("src/IMG_0000.JPG").exists(), "{out}");
}
