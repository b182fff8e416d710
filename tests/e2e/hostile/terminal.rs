//! Names from a listing — a source folder's file names, the names stored in a snapshot —
//! are shown escaped wherever snapvault prints them: a name holding a newline cannot forge
//! a line of output, one holding a terminal escape (`ESC [31m`) cannot drive the terminal.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;

use crate::common::*;
use crate::repair::flip;

/// A photo named `evil⏎ESC[31mred.jpg`.
const EVIL: &[u8] = b"evil\n\x1b[31mred.jpg";
/// How it is shown.
const SHOWN: &str = "evil\\n\\u{1b}[31mred.jpg";

#[track_caller]
fn escaped(out: &Out, what: &str) {
    let both = out.both();
    assert!(
        !both.contains('\x1b') && !both.contains("evil\n"),
        "{what} printed the name raw:\n{}",
        both.escape_debug()
    );
}

#[test]
fn names_with_newlines_and_terminal_escapes_are_shown_escaped() {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    let evil = src.join(OsStr::from_bytes(EVIL));
    write_random(&evil, 7, 300_000);
    write_random(&src.join("IMG_0001.JPG"), 1, 20_000);
    let sv = Sv::init(tmp.path().join("repo"), true);
    let run = |args: &[&str], what: &str| -> Out {
        let out = sv.run(args);
        escaped(&out, what);
        out
    };
    escaped(&sv.ok(&["snapshot", src.to_str().unwrap()]), "snapshot");

    for (args, what) in [
        (vec!["ls", "latest"], "ls"),
        (vec!["find", "*red.jpg"], "find"),
        (
            vec![
                "restore",
                "latest",
                "--target",
                "/nonexistent-x",
                "--dry-run",
            ],
            "restore --dry-run",
        ),
    ] {
        let out = run(&args, what);
        assert_eq!(out.code, Some(0), "{what}:\n{out}");
        assert_mentions(&out, SHOWN);
    }

    // Restore with a folder in the way of the photo: the problem names it.
    let target = tmp.path().join("t");
    fs::create_dir_all(
        target
            .join("photos")
            .join(OsStr::from_bytes(EVIL))
            .join("x"),
    )
    .unwrap();
    let out = run(
        &["restore", "latest", "--target", target.to_str().unwrap()],
        "restore",
    );
    assert_eq!(out.code, Some(3), "{out}");
    assert_stderr_mentions(&out, SHOWN);

    // The photo leaves the source: the next snapshot says it is gone.
    fs::remove_file(&evil).unwrap();
    let out = run(&["snapshot", src.to_str().unwrap()], "snapshot (gone)");
    assert_eq!(out.code, Some(0), "{out}");
    assert_mentions(&out, SHOWN);
    // forget would lose it: the refusal and its restore hint name it.
    let out = run(&["forget", "--keep-last", "1"], "forget");
    assert_failed(&out);
    assert_mentions(&out, SHOWN);

    // Damage every data pack: check and repair name the photo.
    for (_, p) in pack_files(&sv.repo) {
        if fs::metadata(&p).unwrap().len() > 250_000 {
            flip(&p, |n| n / 2);
        }
    }
    let out = run(&["check", "--read-data"], "check");
    assert_eq!(out.code, Some(4), "{out}");
    assert_mentions(&out, SHOWN);
    let out = run(&["repair"], "repair");
    assert_mentions(&out, SHOWN);
}
