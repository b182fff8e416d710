//! Restore meets an unfriendly target (issue 16): folders it cannot create, a folder where
//! a file belongs. It restores everything it can, names every failure at the end and exits
//! 3, and leaves no temporary files behind.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// `src/a/1.jpg`, `src/b/2.jpg`, `src/c/3.jpg`, `src/top.jpg`, backed up.
fn backed_up(tmp: &Path) -> Sv {
    let src = tmp.join("src");
    write_random(&src.join("a/1.jpg"), 1, 20_000);
    write_random(&src.join("b/2.jpg"), 2, 20_000);
    write_random(&src.join("c/3.jpg"), 3, 20_000);
    write_random(&src.join("top.jpg"), 4, 20_000);
    let sv = Sv::init(tmp.join("repo"), false);
    sv.snapshot(&[&src], &[]);
    sv
}

fn temp_leftovers(root: &Path) -> Vec<String> {
    tree_contents(root)
        .into_keys()
        .map(|p| p.display().to_string())
        .filter(|p| p.contains(".snapvault-restore-"))
        .collect()
}

#[test]
fn restore_carries_on_past_a_folder_it_cannot_create() {
    let tmp = tempdir();
    let sv = backed_up(tmp.path());
    let target = tmp.path().join("t");
    // A file where the folder `src/b` belongs.
    write_file(&target.join("src/b"), b"not a folder");
    let out = sv.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(out.code, Some(3), "{out}");
    assert_stderr_mentions(&out, "src/b");
    // Everything else came back.
    for f in ["src/a/1.jpg", "src/c/3.jpg", "src/top.jpg"] {
        assert_eq!(
            fs::read(target.join(f)).unwrap(),
            fs::read(tmp.path().join(f)).unwrap(),
            "{f}:\n{out}"
        );
    }
    assert_eq!(fs::read(target.join("src/b")).unwrap(), b"not a folder");
    // The failures are listed at the end.
    assert!(
        out.stderr
            .trim_end()
            .lines()
            .last()
            .unwrap_or("")
            .contains("not restored"),
        "{out}"
    );
    // --json names it too.
    let out = sv.run(&[
        "restore",
        "latest",
        "--json",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(3), "{out}");
    let v = out.json();
    let problems = v["problems"].as_array().unwrap();
    assert!(problems.iter().any(|p| p["path"] == "src/b"), "{v}");
}

/// A folder that cannot be written (immutable, so even root is refused): the files for it
/// fail by name, everything else is restored. Skipped where `chattr +i` is unavailable.
#[test]
fn restore_carries_on_past_a_folder_it_may_not_write() {
    let tmp = tempdir();
    let sv = backed_up(tmp.path());
    let target = tmp.path().join("t");
    let locked = target.join("src/c");
    fs::create_dir_all(&locked).unwrap();
    let ok = Command::new("chattr").arg("+i").arg(&locked).status();
    if !matches!(ok, Ok(s) if s.success()) {
        eprintln!("skipped: `chattr +i` is not available here (needs root on ext4/xfs/btrfs)");
        return;
    }
    let out = sv.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let _ = Command::new("chattr").arg("-i").arg(&locked).status();
    assert_eq!(out.code, Some(3), "{out}");
    assert_stderr_mentions(&out, "src/c/3.jpg");
    for f in ["src/a/1.jpg", "src/b/2.jpg", "src/top.jpg"] {
        assert!(target.join(f).is_file(), "{f}:\n{out}");
    }
    assert!(!target.join("src/c/3.jpg").exists());
}

#[test]
fn overwrite_with_a_folder_at_a_files_path_leaves_no_temp_file() {
    let tmp = tempdir();
    let sv = backed_up(tmp.path());
    let target = tmp.path().join("t");
    write_file(&target.join("src/top.jpg/mine.txt"), b"my folder");
    let t = target.to_str().unwrap();
    for extra in [None, Some("--overwrite")] {
        let mut args = vec!["restore", "latest", "--target", t];
        args.extend(extra);
        let out = sv.run(&args);
        assert_eq!(out.code, Some(3), "{out}");
        assert_stderr_mentions(&out, "src/top.jpg");
        assert_eq!(temp_leftovers(&target), Vec::<String>::new(), "{out}");
        assert_eq!(
            fs::read(target.join("src/top.jpg/mine.txt")).unwrap(),
            b"my folder"
        );
        assert!(target.join("src/a/1.jpg").is_file(), "{out}");
    }
}

// ---------------------------------------------------------------------------------------
// Honest summaries (16.8)

fn snapshot_ids(sv: &Sv) -> Vec<String> {
    sv.snapshots()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn restore_latest_with_a_damaged_newest_snapshot_warns_and_names_both() {
    let tmp = tempdir();
    let sv = backed_up(tmp.path());
    write_random(&tmp.path().join("src/new.jpg"), 9, 5_000);
    std::thread::sleep(std::time::Duration::from_millis(20));
    sv.snapshot(&[&tmp.path().join("src")], &[]);
    let ids = snapshot_ids(&sv);
    assert_eq!(ids.len(), 2);
    let (older, newest) = (&ids[0], &ids[1]);
    let file = sv.repo.join("snapshots").join(newest);
    let mut bytes = fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&file, bytes).unwrap();

    let target = tmp.path().join("t");
    let out = sv.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_stderr_mentions(&out, "warning");
    assert_stderr_mentions(&out, &newest[..8]);
    assert_stderr_mentions(&out, &older[..8]);
    assert!(target.join("src/top.jpg").is_file());
}

#[test]
fn restoring_a_partial_snapshot_warns() {
    use snapvault_fakephone::{FakePhone, FakePhoneConfig};
    let tmp = tempdir();
    let lib = tmp.path().join("phone");
    fs::create_dir_all(&lib).unwrap();
    snapvault_media::sample::library(&lib, 12, 5).expect("sample library");
    let mut cfg = FakePhoneConfig::new(&lib);
    cfg.disconnect_after_bytes = Some(200_000);
    let phone = FakePhone::start(cfg).expect("start the fake iPhone");
    let sv = Sv::init(tmp.path().join("repo"), false);
    let out = sv.run_env(
        &["snapshot", "iphone"],
        &[("USBMUXD_SOCKET_ADDRESS", &phone.usbmuxd_address())],
    );
    assert_failed(&out);
    drop(phone);
    let ids = snapshot_ids(&sv);
    assert_eq!(ids.len(), 1, "no partial snapshot was saved:\n{out}");

    let target = tmp.path().join("t");
    let out = sv.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_stderr_mentions(&out, "warning");
    assert_stderr_mentions(&out, "partial");
    assert_stderr_mentions(&out, &ids[0][..8]);
}

#[test]
fn include_that_matches_nothing_says_so_and_fails() {
    let tmp = tempdir();
    let sv = backed_up(tmp.path());
    let target = tmp.path().join("t");
    let t = target.to_str().unwrap();
    let out = sv.run(&["restore", "latest", "--target", t, "--include", "*.txt"]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "*.txt");
    assert_stderr_mentions(&out, "matched nothing");
    // One of two patterns matching nothing: the rest is restored, with a warning.
    let out = sv.run(&[
        "restore",
        "latest",
        "--target",
        t,
        "--include",
        "*.txt",
        "--include",
        "src/a",
    ]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_stderr_mentions(&out, "*.txt");
    assert!(target.join("src/a/1.jpg").is_file(), "{out}");
}

/// A full target disk (a 1 MiB tmpfs) stops the restore with a hint about the target, not
/// about `snapvault prune`, which frees nothing there. Needs root to mount; skipped otherwise.
#[test]
fn a_full_target_disk_does_not_suggest_prune() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    for i in 0..6 {
        write_random(&src.join(format!("{i}.jpg")), i, 400_000);
    }
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    let small = tmp.path().join("small");
    fs::create_dir_all(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&small)
        .status();
    if !matches!(mounted, Ok(s) if s.success()) {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&small);
    let out = sv.run(&["restore", "latest", "--target", small.to_str().unwrap()]);
    assert_failed(&out);
    assert!(!out.stderr.contains("prune"), "{out}");
    assert_stderr_mentions(&out, "hint:");
    assert_stderr_mentions(&out, "target");
}

#[test]
fn ls_json_gives_names_that_are_not_utf8_losslessly() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempdir();
    let src = tmp.path().join("src");
    let odd = OsStr::from_bytes(b"caf\xe9");
    write_random(&src.join(odd).join(OsStr::from_bytes(b"b\xff.jpg")), 1, 100);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    let v = sv.ok(&["ls", "latest", "--json"]).json();
    let rows = v.as_array().unwrap();
    let file = rows
        .iter()
        .find(|r| r["type"] == "file")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(
        file["path_hex"].as_str(),
        Some(hex(b"src/caf\xe9/b\xff.jpg").as_str()),
        "{file}"
    );
    let utf8 = rows.iter().find(|r| r["path"] == "src").unwrap();
    assert!(utf8.get("path_hex").is_none(), "{utf8}");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---------------------------------------------------------------------------------------
// What the source holds comes back as it was (16.6)

fn ino(p: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::symlink_metadata(p).unwrap();
    (m.dev(), m.ino())
}

#[test]
fn hard_links_come_back_as_hard_links() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    write_random(&src.join("a.jpg"), 1, 30_000);
    fs::create_dir_all(src.join("album")).unwrap();
    fs::hard_link(src.join("a.jpg"), src.join("album/a-link.jpg")).unwrap();
    write_random(&src.join("c.jpg"), 2, 30_000);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);

    let target = tmp.path().join("t");
    let out = sv.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let (a, b) = (
        target.join("src/a.jpg"),
        target.join("src/album/a-link.jpg"),
    );
    assert_eq!(
        ino(&a),
        ino(&b),
        "the hard link came back as a copy:\n{out}"
    );
    assert_ne!(ino(&a), ino(&target.join("src/c.jpg")));
    assert_eq!(fs::read(&b).unwrap(), fs::read(src.join("a.jpg")).unwrap());
    // Again into the same target: nothing to do, still one file.
    let out = sv.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(ino(&a), ino(&b), "{out}");

    // Only one of the pair restored: a file of its own.
    let one = tmp.path().join("one");
    sv.ok(&[
        "restore",
        "latest",
        "--target",
        one.to_str().unwrap(),
        "--include",
        "a-link.jpg",
    ]);
    assert_eq!(
        fs::read(one.join("src/album/a-link.jpg")).unwrap(),
        fs::read(src.join("a.jpg")).unwrap()
    );
}

#[test]
fn sparse_files_come_back_sparse() {
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;
    let tmp = tempdir();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let p = src.join("disk.img");
    let mut f = fs::File::create(&p).unwrap();
    f.set_len(64 << 20).unwrap();
    f.write_all(&random_bytes(1, 10_000)).unwrap();
    f.seek(SeekFrom::Start(40 << 20)).unwrap();
    f.write_all(&random_bytes(2, 10_000)).unwrap();
    drop(f);
    let allocated = |p: &Path| fs::metadata(p).unwrap().blocks() * 512;
    if allocated(&p) > 8 << 20 {
        eprintln!("skipped: this file system does not keep holes");
        return;
    }
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    let target = tmp.path().join("t");
    let out = sv.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let r = target.join("src/disk.img");
    assert_eq!(fs::metadata(&r).unwrap().len(), 64 << 20);
    assert!(
        allocated(&r) < 16 << 20,
        "64 MiB sparse file came back with {} bytes allocated:\n{out}",
        allocated(&r)
    );
    assert_same_tree(&src, &target.join("src"));
}

/// Zeros at a file's end, in its middle, or all of it, at block-aligned and unaligned
/// lengths, small (through the page cache) and large (past it): each file comes back with
/// its whole length. An SQLite `-shm` of seven blocks of data and one of zeros once came
/// back a block short.
#[test]
fn files_with_runs_of_zeros_come_back_whole() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let data = |seed: u64, n: usize| random_bytes(seed, n);
    let zeros = |n: usize| vec![0u8; n];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("shm", [data(1, 7 * 4096), zeros(4096)].concat()),
        ("tail-unaligned", [data(2, 5000), zeros(9000)].concat()),
        ("head-zeros", [zeros(8192), data(3, 100)].concat()),
        (
            "middle",
            [data(4, 4096), zeros(3 * 4096), data(5, 4096)].concat(),
        ),
        ("all-zero-block", zeros(4096)),
        ("all-zero-odd", zeros(5001)),
        ("one-zero", zeros(1)),
        ("big-tail", [data(6, 3 << 20), zeros(5 << 20)].concat()),
        (
            "big-odd-tail",
            [data(7, (3 << 20) + 123), zeros((2 << 20) + 4096)].concat(),
        ),
    ];
    for (name, bytes) in &cases {
        fs::write(src.join(name), bytes).unwrap();
    }
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    let target = tmp.path().join("t");
    sv.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    for (name, bytes) in &cases {
        let back = fs::read(target.join("src").join(name)).unwrap();
        assert_eq!(back.len(), bytes.len(), "{name}: length");
        assert!(back == *bytes, "{name}: content");
    }
}

#[test]
fn fifos_sockets_and_devices_are_recorded() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    write_random(&src.join("a.jpg"), 1, 1000);
    let fifo = Command::new("mkfifo").arg(src.join("pipe")).status();
    if !matches!(fifo, Ok(s) if s.success()) {
        eprintln!("skipped: mkfifo is not available");
        return;
    }
    let _sock = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
    let dev = Command::new("mknod")
        .arg(src.join("null"))
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success());
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);

    let v = sv.ok(&["ls", "latest", "--json"]).json();
    let kind = |name: &str| -> String {
        v.as_array()
            .unwrap()
            .iter()
            .find(|r| r["path"] == format!("src/{name}"))
            .map(|r| r["type"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{name} is not in the snapshot: {v}"))
    };
    assert_eq!(kind("pipe"), "fifo");
    assert_eq!(kind("sock"), "socket");
    if dev {
        assert_eq!(kind("null"), "chardev");
    }

    let target = tmp.path().join("t");
    let out = sv.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    use std::os::unix::fs::FileTypeExt;
    let ft = |n: &str| {
        fs::symlink_metadata(target.join("src").join(n))
            .unwrap()
            .file_type()
    };
    assert!(ft("pipe").is_fifo(), "{out}");
    assert!(
        out.stdout.contains("socket"),
        "the socket is not named:\n{out}"
    );
    if dev {
        assert!(ft("null").is_char_device(), "{out}");
    }
}

// ---------------------------------------------------------------------------------------
// Deep folders (16.11)

/// A photo 1,100 folders deep: `photos` lists it, `restore --date` and `find` reach it.
#[test]
fn a_folder_nested_deeper_than_1024_levels_does_not_break_photos() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    let mut deep = src.clone();
    for _ in 0..1100 {
        deep.push("d");
    }
    fs::create_dir_all(&deep).unwrap();
    let photo = deep.join("IMG_0001.JPG");
    write_random(&photo, 1, 3_000);
    set_mtime(&photo, 1_689_350_591, 0); // 2023-07-14
    write_random(&src.join("IMG_0002.JPG"), 2, 3_000);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);

    let cache = tmp.path().join("cache");
    let env = [("XDG_CACHE_HOME", cache.to_str().unwrap())];
    let out = sv.run_env(&["photos"], &env);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("d/d/IMG_0001.JPG"), "{out}");
    assert!(out.stdout.contains("IMG_0002.JPG"), "{out}");

    let target = tmp.path().join("t");
    let out = sv.run_env(
        &[
            "restore",
            "--date",
            "2023-07-14",
            "--target",
            target.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(out.code, Some(0), "{out}");
    let mut back = target.join("src");
    for _ in 0..1100 {
        back.push("d");
    }
    assert_eq!(
        fs::read(back.join("IMG_0001.JPG")).unwrap(),
        fs::read(&photo).unwrap()
    );
    sv.ok(&["find", "IMG_0001.JPG"]);
}
