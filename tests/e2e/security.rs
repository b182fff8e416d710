//! Security through the real binary (docs/security.md): no EXIF string or photo metadata in
//! an encrypted repository, the password never in output, logs, cache or the arguments of a
//! child process, key files untouched by wrong passwords, an owner-only cache folder.
//! (Plain names and contents are covered by `roundtrip::encrypted_repository_holds_no_plain_names_or_contents`.)

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use snapvault_media::CaptureTime;
use snapvault_media::sample;

use crate::common::*;

/// Every regular file under `root`.
fn all_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The needles found in any file under `root`: (file, needle).
fn leaks(root: &Path, needles: &[Vec<u8>]) -> Vec<String> {
    let mut found = Vec::new();
    for f in all_files(root) {
        let bytes = fs::read(&f).unwrap();
        for n in needles {
            if contains(&bytes, n) {
                found.push(format!(
                    "{} holds {:?}",
                    f.display(),
                    String::from_utf8_lossy(n)
                ));
            }
        }
    }
    found
}

/// A command with its own cache folder (so the test can look into it).
fn with_cache(sv: &Sv, cache: &Path, args: &[&str]) -> Out {
    let mut c = sv.command(args);
    c.env("XDG_CACHE_HOME", cache);
    run_command(c, DEFAULT_TIMEOUT)
}

/// Photos with EXIF (camera, dates, offsets, Apple content identifiers) and HEIC/MOV/PNG
/// containers: none of their metadata strings, the dates snapvault derives from them, nor
/// their folder and file names appear in any repository file.
#[test]
fn encrypted_repository_holds_no_exif_strings_or_photo_metadata() {
    let tmp = tempdir();
    let src = tmp.path().join("Camera Roll");
    let paths = sample::library(&src, 12, 77).unwrap();
    assert!(paths.len() >= 12);
    let taken = CaptureTime::new(2019, 3, 17, 14, 15, 16, Some(-420)).unwrap();
    let cid = sample::content_id(4242);
    fs::write(
        src.join("DCIM/100APPLE/IMG_7777.JPG"),
        sample::jpeg(&taken, Some(&cid), 300_000, 5),
    )
    .unwrap();
    fs::write(
        src.join("DCIM/100APPLE/IMG_7777.HEIC"),
        sample::heic(&taken, Some(&cid), 200_000, 6),
    )
    .unwrap();
    fs::write(
        src.join("DCIM/100APPLE/IMG_7777.MOV"),
        sample::mov(&taken, Some(&cid), 200_000, 7),
    )
    .unwrap();
    let sv = Sv::init(tmp.path().join("repo"), true);
    let cache = tmp.path().join("cache");
    let out = with_cache(
        &sv,
        &cache,
        &["snapshot", "--tag", "holiday-lisbon", src.to_str().unwrap()],
    );
    assert_eq!(out.code, Some(0), "{out}");
    // The photo catalog knows the capture date (so the sample's metadata was really read).
    let photos = with_cache(&sv, &cache, &["photos", "--json"]);
    assert!(
        photos.stdout.contains("2019-03-17"),
        "capture date not found by `photos`: {photos}"
    );

    let mut needles: Vec<Vec<u8>> = [
        // EXIF strings as stored in the files.
        "iPhone 15 Pro",
        "Apple iOS",
        "2019:03:17 14:15:16",
        "-07:00",
        "Exif\0\0",
        "com.apple.quicktime",
        // Container structure (file contents in plain text). Needles are ≥ 6 bytes: a
        // 4-byte one turns up by chance in a few MiB of ciphertext (about 1 in 4,096 per MiB).
        "ftypheic",
        "ftypqt  ",
        "\0\0\0\rIHDR",
        // What snapvault derives and stores in trees: ISO capture time, pairing.
        "2019-03-17T14:15:16",
        "2019-03-17",
        // Names, folders, the tag, the source path.
        "IMG_7777",
        "100APPLE",
        "\"DCIM\"",
        "Camera Roll",
        "holiday-lisbon",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    needles.push(cid.clone().into_bytes());
    needles.push(cid.to_lowercase().into_bytes());
    let found = leaks(&sv.repo, &needles);
    assert!(
        found.is_empty(),
        "plain metadata in the repository:\n{found:#?}"
    );

    // Still restores byte-exact.
    let target = tmp.path().join("r");
    sv.restore("latest", &target);
    assert_same_tree(&src, &target.join("Camera Roll"));
}

/// The password (and a new one given to `key add`) never appears in the output of any
/// command, in the cache folder, in the repository, nor in the arguments or environment of
/// the `--password-command` child or in snapvault's own arguments; the command's output is
/// never echoed, even when the command fails.
#[test]
fn password_never_in_output_cache_or_process_arguments() {
    let tmp = tempdir();
    let t = tmp.path();
    let pw = "Zq9-unique-password-4711";
    let new_pw = "Xv3-second-password-0815";
    fs::write(t.join("pw"), format!("{pw}\n")).unwrap();
    fs::write(t.join("newpw"), format!("{new_pw}\n")).unwrap();
    let src = t.join("src");
    write_random(&src.join("IMG_0001.HEIC"), 1, 200_000);
    let repo = t.join("repo");
    let cache = t.join("cache");
    // Records the child's own argv and environment and snapvault's argv, then prints the
    // password (from /proc on Linux, from `ps` and `env` where there is no /proc: macOS).
    let cmd = format!(
        "if [ -r /proc/$$/cmdline ]; then \
           cat /proc/$$/cmdline >> {d}/child-argv; cat /proc/$$/environ >> {d}/child-env; \
           cat /proc/$PPID/cmdline >> {d}/parent-argv; \
         else \
           ps -ww -o args= -p $$ >> {d}/child-argv; env >> {d}/child-env; \
           ps -ww -o args= -p $PPID >> {d}/parent-argv; \
         fi; cat {d}/pw",
        d = t.display()
    );
    let run = |args: &[&str]| -> Out {
        let mut c = base_command();
        c.env("SNAPVAULT_REPOSITORY", &repo)
            .env("XDG_CACHE_HOME", &cache)
            .arg("--password-command")
            .arg(&cmd)
            .args(args);
        run_command(c, DEFAULT_TIMEOUT)
    };
    let mut outputs = Vec::new();
    let mut ok = |args: &[&str]| {
        let out = run(args);
        assert_eq!(out.code, Some(0), "{args:?}: {out}");
        outputs.push(out);
    };
    ok(&["init"]);
    ok(&["-vv", "snapshot", src.to_str().unwrap()]);
    ok(&["snapshot", "--json", src.to_str().unwrap()]);
    ok(&["snapshots", "--json"]);
    ok(&["-v", "ls", "latest"]);
    ok(&["-v", "check", "--read-data"]);
    ok(&[
        "-v",
        "restore",
        "latest",
        "--target",
        t.join("r").to_str().unwrap(),
    ]);
    ok(&[
        "key",
        "add",
        "--new-password-file",
        t.join("newpw").to_str().unwrap(),
    ]);
    ok(&["key", "list"]);
    assert!(fs::metadata(t.join("child-argv")).unwrap().len() > 0);

    // Failures: a wrong password from the command, and a command that prints the password
    // and then fails.
    let mut c = base_command();
    c.env("SNAPVAULT_REPOSITORY", &repo)
        .env("XDG_CACHE_HOME", &cache)
        .args(["--password-command", "echo Wr0ng-guess-31337", "snapshots"]);
    let wrong = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(wrong.code, Some(12), "{wrong}");
    assert!(!wrong.both().contains("Wr0ng-guess-31337"), "{wrong}");
    let mut c = base_command();
    c.env("SNAPVAULT_REPOSITORY", &repo)
        .env("XDG_CACHE_HOME", &cache)
        .args([
            "--password-command",
            &format!("cat {}/pw; exit 3", t.display()),
            "snapshots",
        ]);
    let failed = run_command(c, DEFAULT_TIMEOUT);
    assert_failed(&failed);
    outputs.push(failed);
    // SNAPVAULT_PASSWORD with a wrong password, verbose.
    let mut c = base_command();
    c.env("SNAPVAULT_REPOSITORY", &repo)
        .env("SNAPVAULT_PASSWORD", "Wr0ng-guess-31337")
        .args(["-vv", "check"]);
    let wrong = run_command(c, DEFAULT_TIMEOUT);
    assert_failed(&wrong);
    assert!(!wrong.both().contains("Wr0ng-guess-31337"), "{wrong}");

    for out in &outputs {
        for secret in [pw, new_pw] {
            assert!(!out.both().contains(secret), "password in output:\n{out}");
        }
    }
    let needles = vec![pw.as_bytes().to_vec(), new_pw.as_bytes().to_vec()];
    for (what, dir) in [("cache", &cache), ("repository", &repo)] {
        let found = leaks(dir, &needles);
        assert!(found.is_empty(), "password in the {what}: {found:?}");
    }
    for f in ["child-argv", "child-env", "parent-argv"] {
        let bytes = fs::read(t.join(f)).unwrap();
        assert!(!bytes.is_empty(), "{f} is empty");
        for n in &needles {
            assert!(
                !contains(&bytes, n),
                "password in {f}: {:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

/// Wrong passwords (to open, and to `key add`) leave every key file as it was: same bytes,
/// same modification time, no new file.
#[test]
fn key_files_survive_wrong_passwords_untouched() {
    let tmp = tempdir();
    let sv = Sv::init(tmp.path().join("repo"), true);
    let keys = sv.repo.join("keys");
    let state = || -> Vec<(PathBuf, Vec<u8>, i64, i64)> {
        let mut v: Vec<_> = fs::read_dir(&keys)
            .unwrap()
            .flatten()
            .map(|e| {
                let md = fs::metadata(e.path()).unwrap();
                (
                    e.path(),
                    fs::read(e.path()).unwrap(),
                    md.mtime(),
                    md.mtime_nsec(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = state();
    assert_eq!(before.len(), 1);
    let wrong = Sv::at(&sv.repo, Some("not the password"));
    for args in [
        vec!["snapshots"],
        vec!["key", "list"],
        vec!["check"],
        vec!["key", "add"],
    ] {
        let out = wrong.run_env(&args, &[("SNAPVAULT_NEW_PASSWORD", "another one")]);
        assert_eq!(out.code, Some(12), "{args:?}: {out}");
        assert_stderr_mentions(&out, "wrong password");
    }
    assert_eq!(state(), before, "a wrong password changed the key files");
    sv.ok(&["snapshots"]);
    assert_eq!(state(), before, "opening changed the key files");
}

/// The cache folder holds the photo catalog (paths, capture dates) in plain text: it must
/// be owner-only, like the repository.
#[test]
fn cache_folder_is_owner_only() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    sample::library(&src, 3, 1).unwrap();
    let sv = Sv::init(tmp.path().join("repo"), true);
    let cache = tmp.path().join("cache");
    let out = with_cache(&sv, &cache, &["snapshot", src.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    let ours = cache.join("snapvault");
    let mut bad = Vec::new();
    let mut n = 0;
    let mut check = |p: &Path| {
        let md = fs::symlink_metadata(p).unwrap();
        n += 1;
        if md.mode() & 0o077 != 0 {
            bad.push(format!("{} {:o}", p.display(), md.mode() & 0o7777));
        }
    };
    check(&ours);
    for e in fs::read_dir(&ours).unwrap().flatten() {
        check(&e.path());
    }
    assert!(n >= 2, "no cache folder was created");
    assert!(bad.is_empty(), "readable by others: {bad:?}");
}

/// An attacker who can modify the repository replaces it with an empty *unencrypted* one
/// (deletes keys, index, snapshots, packs; writes an unencrypted config). A scheduled job
/// that has a password configured must not then write plaintext backups into it.
#[test]
fn password_given_but_repository_downgraded_to_plaintext() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    let marker = b"PLAINTEXT-MARKER-of-a-private-photo".repeat(50);
    write_file(&src.join("IMG_0001.HEIC"), &marker);
    let sv = Sv::init(tmp.path().join("repo"), true);
    sv.snapshot(&[&src], &[]);
    // The attack.
    let other = Sv::init(tmp.path().join("other"), false);
    for d in ["keys", "index", "snapshots", "data"] {
        fs::remove_dir_all(sv.repo.join(d)).unwrap();
        fs::create_dir(sv.repo.join(d)).unwrap();
    }
    fs::remove_file(sv.repo.join("config")).unwrap();
    fs::copy(other.repo.join("config"), sv.repo.join("config")).unwrap();
    // The next scheduled run, password in the environment as usual.
    let out = sv.run(&["snapshot", src.to_str().unwrap()]);
    let found = leaks(&sv.repo, &[b"PLAINTEXT-MARKER".to_vec()]);
    assert!(
        found.is_empty(),
        "the downgraded repository received plaintext (exit {:?}): {found:?}",
        out.code
    );
    assert_failed(&out);
}
