//! Durability (issue 15.7): a new name is durable only once its folder is synced. Checked by
//! tracing the real binary's `fsync` calls with `strace -y` (which shows the path of each
//! descriptor); skipped with a note where strace is missing or may not trace.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::*;

/// Run `snapvault ARGS` under strace, tracing fsync/fdatasync; the trace, or None when
/// strace cannot be used here.
fn traced(sv: &Sv, args: &[&str], log: &Path) -> Option<(Out, String)> {
    let probe = Command::new("strace")
        .args(["-o", "/dev/null", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !matches!(probe, Ok(s) if s.success()) {
        eprintln!("skipped: strace is not available or may not trace here");
        return None;
    }
    let inner = sv.command(args);
    let mut c = Command::new("strace");
    c.args(["-f", "-y", "-qq", "-e", "trace=fsync,fdatasync", "-o"]);
    c.arg(log).arg(inner.get_program()).args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.stdin(Stdio::null());
    let out = run_command(c, DEFAULT_TIMEOUT);
    let trace = std::fs::read_to_string(log).unwrap_or_default();
    Some((out, trace))
}

/// Was the folder `dir` fsynced (by a descriptor strace shows with that path)? A call
/// another thread interrupts is shown as `fsync(3</dir> <unfinished ...>`.
fn synced(trace: &str, dir: &Path) -> bool {
    let whole = format!("<{}>)", dir.display());
    let cut = format!("<{}> <unfinished", dir.display());
    trace
        .lines()
        .any(|l| l.contains("fsync(") && (l.contains(&whole) || l.contains(&cut)))
}

#[test]
fn restore_syncs_every_folder_it_renamed_files_into() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    write_random(&src.join("dir/a.jpg"), 1, 10_000);
    write_random(&src.join("dir/sub/b.jpg"), 2, 10_000);
    write_random(&src.join("top.jpg"), 3, 10_000);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    let target = tmp.path().join("t");
    let log = tmp.path().join("restore.trace");
    let args = ["restore", "latest", "--target", target.to_str().unwrap()];
    let Some((out, trace)) = traced(&sv, &args, &log) else {
        return;
    };
    assert_eq!(out.code, Some(0), "{out}");
    for d in ["src", "src/dir", "src/dir/sub"] {
        assert!(
            synced(&trace, &target.join(d)),
            "folder {d} was not synced after files were renamed into it; trace:\n{trace}"
        );
    }
}

#[test]
fn local_backend_syncs_data_when_it_creates_a_pack_folder() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    write_random(&src.join("a.jpg"), 1, 10_000);
    let repo = tmp.path().join("repo");
    let sv = Sv::init(&repo, false);
    let log = tmp.path().join("snapshot.trace");
    let args = ["snapshot", src.to_str().unwrap()];
    let Some((out, trace)) = traced(&sv, &args, &log) else {
        return;
    };
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        synced(&trace, &repo.join("data")),
        "data/ was not synced after a data/xx folder was created in it; trace:\n{trace}"
    );
}
