//! snapshot → restore gives back an identical tree: contents, names, mtimes, modes, symlinks,
//! empty files and folders, nested folders; in encrypted and unencrypted repositories.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;

use crate::common::*;

const NFD: &str = "cafe\u{301}.jpg";
const NFC: &str = "caf\u{e9}.jpg";
const UNICODE: &str = "Ünïcødé 写真 📷 Ελληνικά.heic";
const NON_UTF8: &[u8] = b"IMG_\xff\xfe\x80.JPG";
const NON_UTF8_DIR: &[u8] = b"dir_\xe9_latin1";

/// A photo-library-like tree exercising everything a snapshot must keep.
pub fn build_sample_tree(src: &Path) {
    fs::create_dir_all(src).unwrap();
    let file = |rel: &str, seed: u64, len: usize, mode: u32, secs: i64, nanos: u32| {
        let p = src.join(rel);
        write_random(&p, seed, len);
        set_mode(&p, mode);
        set_mtime(&p, secs, nanos);
    };
    file("photo.jpg", 1, 200_000, 0o644, 1_620_300_000, 123_456_789);
    // Several chunks (min chunk 512 KiB).
    file("video.mov", 2, 2_700_000, 0o640, 1_620_300_100, 999_999_999);
    file("empty.heic", 3, 0, 0o600, 1_600_000_000, 1);
    file("script.sh", 4, 100, 0o755, 1_500_000_000, 500_000_000);
    file("readonly.png", 5, 3000, 0o444, 1_400_000_000, 42);
    file(".hidden", 6, 10, 0o644, 1_300_000_000, 0);
    file(UNICODE, 7, 5000, 0o644, 1_700_000_000, 7);
    file(NFC, 8, 100, 0o644, 1_700_000_001, 8);
    file(NFD, 9, 101, 0o644, 1_700_000_002, 9);
    file(
        &format!("{}.jpg", "long".repeat(50)),
        10,
        10,
        0o644,
        1_700_000_003,
        10,
    );
    file(
        "a/b/c/d/deep.jpg",
        11,
        4096,
        0o644,
        1_111_111_111,
        111_111_111,
    );
    file("a/b/sibling.jpg", 12, 1, 0o600, 1_222_222_222, 222_222_222);
    file("sub/inner.jpg", 13, 777, 0o644, 1_333_333_333, 333);
    // A scan from before 1970, a name with a newline, a setgid/sticky mode.
    file(
        "sub/scan-1962.tif",
        16,
        2048,
        0o644,
        -239_000_000,
        500_000_000,
    );
    file("new\nline.jpg", 17, 3, 0o644, 1_234_567_890, 0);
    file("sticky.jpg", 18, 3, 0o1644, 1_234_567_891, 0);

    // Names that are not UTF-8: a file, a folder, a file in that folder.
    let raw = src.join(OsStr::from_bytes(NON_UTF8));
    write_random(&raw, 14, 1234);
    set_mode(&raw, 0o644);
    set_mtime(&raw, 1_444_444_444, 444_444_444);
    let raw_dir = src.join(OsStr::from_bytes(NON_UTF8_DIR));
    let raw_inner = raw_dir.join(OsStr::from_bytes(b"\xc0\xc1.jpg"));
    write_random(&raw_inner, 15, 99);
    set_mtime(&raw_inner, 1_455_555_555, 5);

    // Empty folders, one nested.
    fs::create_dir_all(src.join("empty_dir")).unwrap();
    fs::create_dir_all(src.join("a/empty_nested")).unwrap();

    // Symlinks: relative, up-level, to a folder, dangling (relative and absolute), non-UTF-8.
    symlink("photo.jpg", src.join("link_rel")).unwrap();
    symlink("../photo.jpg", src.join("sub/link_up")).unwrap();
    symlink("a/b", src.join("link_dir")).unwrap();
    symlink("does/not/exist.jpg", src.join("link_dangling")).unwrap();
    symlink(
        "/nonexistent/snapvault/target",
        src.join("link_abs_dangling"),
    )
    .unwrap();
    symlink(OsStr::from_bytes(NON_UTF8), src.join("link_raw")).unwrap();

    // Folder modes and times last, deepest first (creating entries changes a folder's mtime).
    let dirs: [(&Path, u32, i64, u32); 9] = [
        (Path::new("a/b/c/d"), 0o755, 1_010_000_000, 1),
        (Path::new("a/b/c"), 0o750, 1_020_000_000, 2),
        (Path::new("a/b"), 0o700, 1_030_000_000, 3),
        (Path::new("a/empty_nested"), 0o755, 1_035_000_000, 35),
        (Path::new("a"), 0o755, 1_040_000_000, 4),
        (Path::new("sub"), 0o775, 1_050_000_000, 5),
        (Path::new("empty_dir"), 0o711, 1_060_000_000, 6),
        (
            Path::new(OsStr::from_bytes(NON_UTF8_DIR)),
            0o755,
            1_070_000_000,
            7,
        ),
        (Path::new(""), 0o755, 1_080_000_000, 8),
    ];
    for (rel, mode, secs, nanos) in dirs {
        let p = src.join(rel);
        set_mode(&p, mode);
        set_mtime(&p, secs, nanos);
    }
}

fn roundtrip(encrypted: bool) {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    build_sample_tree(&src);
    // Sanity: the source really has what we think (nanosecond mtimes where supported).
    let md = fs::metadata(src.join("photo.jpg")).unwrap();
    assert_eq!(md.mtime(), 1_620_300_000);
    if md.mtime_nsec() != 123_456_789 {
        eprintln!("note: this filesystem does not keep nanosecond mtimes");
    }
    assert!(
        fs::symlink_metadata(src.join("link_dangling"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    let sv = Sv::init(tmp.path().join("repo"), encrypted);
    let before = listing(&src);
    let s = sv.snapshot(&[&src], &[]);
    assert_eq!(s["incomplete"], false, "{s}");
    // 18 regular files (the empty one included).
    assert_eq!(summary_u64(&s, "files_new"), 18, "{s}");
    assert_eq!(summary_u64(&s, "files_total"), 18, "{s}");
    assert_unchanged(&before, &src, "snapshot must not touch its source, but it");

    let target = tmp.path().join("restored");
    sv.restore(&s["id"].as_str().unwrap()[..8], &target);
    let entries: Vec<_> = fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        entries,
        vec![OsStr::new("src")],
        "restore target holds the snapshot root"
    );
    assert_same_tree(&src, &target.join("src"));

    // Spot checks that the comparison itself looked at what matters.
    let r = target.join("src");
    assert_eq!(
        fs::read_link(r.join("link_dangling")).unwrap(),
        Path::new("does/not/exist.jpg")
    );
    assert_eq!(
        fs::read_link(r.join("link_raw"))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        NON_UTF8
    );
    assert!(r.join(OsStr::from_bytes(NON_UTF8)).is_file());
    assert!(r.join(NFC).is_file() && r.join(NFD).is_file());
    assert_eq!(fs::read_dir(r.join("empty_dir")).unwrap().count(), 0);
    assert_eq!(fs::metadata(r.join("empty.heic")).unwrap().len(), 0);
    assert_eq!(
        fs::metadata(r.join("script.sh")).unwrap().mode() & 0o777,
        0o755
    );
    assert_eq!(
        fs::metadata(r.join("photo.jpg")).unwrap().mtime_nsec(),
        md.mtime_nsec()
    );
}

#[test]
fn roundtrip_unencrypted_repository() {
    roundtrip(false);
}

#[test]
fn roundtrip_encrypted_repository() {
    roundtrip(true);
}

/// Nothing readable leaves the machine: names and contents never appear in repository files.
#[test]
fn encrypted_repository_holds_no_plain_names_or_contents() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    let tmp_name = tmp
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let marker = b"SNAPVAULT-PLAINTEXT-MARKER-0123456789".repeat(100);
    write_file(&src.join("secret-name-IMG_4242.jpg"), &marker);
    let sv = Sv::init(tmp.path().join("repo"), true);
    sv.snapshot(&[&src], &["--tag", "secret-tag-xyz"]);
    let mut files = Vec::new();
    fn walk(p: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
    walk(&sv.repo, &mut files);
    for f in files {
        let bytes = fs::read(&f).unwrap();
        for needle in [
            &b"secret-name-IMG_4242"[..],
            &b"SNAPVAULT-PLAINTEXT-MARKER"[..],
            &b"secret-tag-xyz"[..],
            // The source path (the random temporary folder's name) is sealed too.
            tmp_name.as_bytes(),
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} contains {:?} in plain text",
                f.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    // And it still restores.
    let target = tmp.path().join("r");
    sv.restore("latest", &target);
    assert_eq!(
        fs::read(target.join("src/secret-name-IMG_4242.jpg")).unwrap(),
        marker
    );
}

/// A file name of 255 bytes (the limit of ext4, APFS, exFAT…) is a valid name: it is backed
/// up, so it must restore.
#[test]
fn longest_file_name_restores() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    let name = format!("{}.jpg", "x".repeat(251));
    assert_eq!(name.len(), 255);
    write_random(&src.join(&name), 1, 1000);
    write_random(&src.join("other.jpg"), 2, 1000);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    let target = tmp.path().join("r");
    sv.restore("latest", &target);
    assert_same_tree(&src, &target.join("src"));
}

/// A read-only folder (mode 555, e.g. an imported card's DCIM) keeps its mode.
#[test]
fn read_only_folder_mode_restores() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    write_random(&src.join("ro/IMG_0001.JPG"), 1, 1000);
    set_mode(&src.join("ro"), 0o555);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    let target = tmp.path().join("r");
    sv.restore("latest", &target);
    let restored_mode = fs::metadata(target.join("src/ro")).unwrap().mode() & 0o7777;
    // Let the temporary folders be removed even when not running as root.
    set_mode(&src.join("ro"), 0o755);
    set_mode(&target.join("src/ro"), 0o755);
    assert_eq!(format!("{restored_mode:o}"), "555");
}

/// Single files and several folders can be given; each appears at the top level under its
/// own name.
#[test]
fn snapshot_of_a_file_and_two_folders() {
    let tmp = tempdir();
    let a = tmp.path().join("album-a");
    let b = tmp.path().join("nested/album-b");
    let single = tmp.path().join("IMG_single.JPG");
    write_random(&a.join("IMG_1.JPG"), 1, 3000);
    write_random(&b.join("IMG_2.JPG"), 2, 3000);
    write_random(&single, 3, 3000);
    let sv = Sv::init(tmp.path().join("repo"), false);
    let s = sv.snapshot(&[&a, &b, &single], &[]);
    assert_eq!(summary_u64(&s, "files_total"), 3, "{s}");
    let target = tmp.path().join("r");
    sv.restore("latest", &target);
    assert_same_tree(&a, &target.join("album-a"));
    assert_same_tree(&b, &target.join("album-b"));
    assert_same_tree(&single, &target.join("IMG_single.JPG"));
    let mut top: Vec<_> = fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    top.sort();
    assert_eq!(top, ["IMG_single.JPG", "album-a", "album-b"]);
    // Two paths with the same final name are refused, and nothing is written.
    let a2 = tmp.path().join("other/album-a");
    write_random(&a2.join("x.jpg"), 4, 10);
    let before = listing(&sv.repo);
    let out = sv.run(&["snapshot", a.to_str().unwrap(), a2.to_str().unwrap()]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "album-a");
    assert_unchanged(&before, &sv.repo, "a refused snapshot");
}
