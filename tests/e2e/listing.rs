//! `ls` and `restore --dry-run` print as they walk (issue 23.4) and print exactly what
//! they printed when they collected the whole listing first: the expected outputs in
//! `listing/` were written by the binary before the change (main at 14088c8) on the same
//! tree, with the snapshot id replaced by `SNAPSHOT`.

use std::path::Path;

use crate::common::*;

/// Names whose whole paths sort differently than depth first (' ', '-' and '.' come
/// before '/'), fixed sizes, modes and times.
fn tree(src: &Path) {
    let files: [(&str, usize, u8, u32); 8] = [
        ("a/b/c", 5, b'c', 0o644),
        ("a/b.txt", 3, b't', 0o644),
        ("a/b0", 4, b'o', 0o644),
        ("a.txt", 10, b'x', 0o644),
        ("a b", 11, b's', 0o644),
        ("a-x/z", 8, b'z', 0o644),
        ("a0", 12, b'0', 0o600),
        ("B", 2000, b'B', 0o644),
    ];
    for (name, len, byte, mode) in files {
        let p = src.join(name);
        write_file(&p, &vec![byte; len]);
        set_mode(&p, mode);
        set_mtime(&p, 1_600_000_000 + len as i64, 0);
    }
    for d in ["a/b", "a", "a-x", ""] {
        let p = src.join(d);
        set_mode(&p, 0o755);
        set_mtime(&p, 1_600_001_000, 0);
    }
}

#[test]
fn listings_print_what_they_printed_before_they_streamed() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    tree(&src);
    let sv = Sv::init(tmp.path().join("repo"), true);
    sv.snapshot(&[&src], &[]);
    let id = sv.snapshots()[0]["id"].as_str().unwrap().to_string();
    let target = tmp.path().join("t");
    let t = target.to_str().unwrap();
    let cases: [(&str, Vec<&str>); 8] = [
        (include_str!("listing/ls.out"), vec!["ls", "latest"]),
        (
            include_str!("listing/ls-json.out"),
            vec!["ls", "latest", "--json"],
        ),
        (
            include_str!("listing/ls-bytes-a.out"),
            vec!["ls", "latest", "--bytes", "src/a"],
        ),
        (
            include_str!("listing/ls-json-a-x.out"),
            vec!["ls", "latest", "--json", "src/a-x"],
        ),
        (
            include_str!("listing/dry-run.out"),
            vec!["restore", "--dry-run", "--target", t, "latest"],
        ),
        (
            include_str!("listing/dry-run-json.out"),
            vec!["restore", "--dry-run", "--json", "--target", t, "latest"],
        ),
        (
            include_str!("listing/dry-run-json-include.out"),
            vec![
                "restore",
                "--dry-run",
                "--json",
                "--target",
                t,
                "--include",
                "src/a/b*",
                "latest",
            ],
        ),
        (
            include_str!("listing/dry-run-include.out"),
            vec![
                "restore",
                "--dry-run",
                "--target",
                t,
                "--include",
                "b*",
                "latest",
            ],
        ),
    ];
    for (want, args) in cases {
        let out = sv.ok(&args);
        assert_eq!(
            out.stdout.replace(&id, "SNAPSHOT"),
            want,
            "snapvault {args:?}"
        );
    }
    assert!(!target.exists(), "a dry run made the target");
    // What is not there is still an error, with nothing on stdout.
    for args in [
        vec!["ls", "latest", "src/nope"],
        vec!["ls", "latest", "--json", "src/nope"],
        vec![
            "restore",
            "--dry-run",
            "--target",
            t,
            "--include",
            "nope",
            "latest",
        ],
        vec![
            "restore",
            "--dry-run",
            "--json",
            "--target",
            t,
            "--include",
            "nope",
            "latest",
        ],
    ] {
        let out = sv.run(&args);
        assert_failed(&out);
        assert_eq!(out.stdout, "", "snapvault {args:?}");
    }
}
