//! Durability (issue 15.7): a new name is durable only once its folder is synced. Checked by
//! tracing the real binary's `fsync` calls with `strace -y` (which shows the path of each
//! descriptor); skipped with a note where strace is missing or may not trace.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::*;

/// Run `snapvault ARGS` under strace, tracing fsync/fdatasync; the trace, or None when
/// strace cannot be used here.
fn traced(sv: &Sv, args: &[&str], log: &Path) -> Option<(Out, String)> {
    let out = traced_calls(sv, args, log, "trace=fsync,fdatasync")?;
    let trace = std::fs::read_to_string(log).unwrap_or_default();
    Some((out, trace))
}

/// Run `snapvault ARGS` under `strace -f -y` tracing `calls` into `log`; None when strace
/// cannot be used here.
fn traced_calls(sv: &Sv, args: &[&str], log: &Path, calls: &str) -> Option<Out> {
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
    c.args(["-f", "-y", "-qq", "-s", "64", "-e", calls, "-o"]);
    c.arg(log).arg(inner.get_program()).args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.stdin(Stdio::null());
    Some(run_command(c, DEFAULT_TIMEOUT))
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

/// One traced system call of interest, by line: where it started and ended in the trace.
#[derive(Debug)]
struct Call {
    name: String,
    /// The path strace shows for the first descriptor (`-y`), and the first quoted string.
    fd_path: String,
    quoted: String,
    start: usize,
    end: usize,
}

/// The calls of an `strace -f -y` trace, with calls another thread interrupted
/// (`<unfinished ...>`, later `<... NAME resumed>`) joined up.
fn calls(trace: &str) -> Vec<Call> {
    let mut done = Vec::new();
    let mut pending: std::collections::HashMap<&str, Call> = Default::default();
    for (n, line) in trace.lines().enumerate() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.starts_with("<... ") {
            if let Some(mut c) = pending.remove(pid) {
                c.end = n;
                done.push(c);
            }
            continue;
        }
        let Some((name, args)) = rest.split_once('(') else {
            continue;
        };
        let between = |s: &str, a: char, b: char| -> String {
            s.split_once(a)
                .and_then(|(_, r)| r.split_once(b))
                .map(|(m, _)| m.to_string())
                .unwrap_or_default()
        };
        let c = Call {
            name: name.to_string(),
            fd_path: between(args, '<', '>'),
            quoted: between(args, '"', '"'),
            start: n,
            end: n,
        };
        if args.contains("<unfinished ...>") {
            pending.insert(pid, c);
        } else {
            done.push(c);
        }
    }
    done
}

/// Run a restore of `files` small files in a few folders under strace, tracing writes,
/// syncs and renames; None where strace cannot be used.
fn traced_small_restore(files: usize) -> Option<(tempfile::TempDir, Vec<Call>)> {
    let calls_traced = "trace=pwrite64,write,fdatasync,fsync,syncfs,renameat,renameat2";
    let (tmp, trace) = traced_restore_of_small_files(files, calls_traced)?;
    Some((tmp, calls(&trace)))
}

/// Back up `files` small files in a few folders and restore them under strace tracing
/// `traced`: the folder and the trace, None where strace cannot be used.
fn traced_restore_of_small_files(
    files: usize,
    traced: &str,
) -> Option<(tempfile::TempDir, String)> {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    for i in 0..files {
        write_random(
            &src.join(format!("d{}/f{i}.aae", i % 4)),
            i as u64,
            500 + i * 7,
        );
    }
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    let target = tmp.path().join("t");
    let log = tmp.path().join("restore.trace");
    let args = ["restore", "latest", "--target", target.to_str().unwrap()];
    let out = traced_calls(&sv, &args, &log, traced)?;
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(files_in(&target.join("src")), files);
    let trace = std::fs::read_to_string(&log).unwrap();
    Some((tmp, trace))
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() { files_in(&p) } else { 1 }
        })
        .sum()
}

/// A restored file gets its name only after its content is durable: every rename of a
/// temporary file comes after a sync that began after the file's last write (its own
/// `fdatasync`, or a `syncfs` of the whole file system) and ended before the rename.
#[test]
fn restore_renames_a_file_into_place_only_after_its_content_is_synced() {
    let files = 120;
    let Some((_tmp, calls)) = traced_small_restore(files) else {
        return;
    };
    let renames: Vec<&Call> = calls
        .iter()
        .filter(|c| c.name.starts_with("renameat") && c.quoted.starts_with(".snapvault-restore-"))
        .collect();
    assert_eq!(renames.len(), files, "every file renamed into place once");
    for r in renames {
        let tmp = format!("{}/{}", r.fd_path, r.quoted);
        let last_write = calls
            .iter()
            .filter(|c| c.name.contains("write") && c.fd_path == tmp && c.end < r.start)
            .map(|c| c.end)
            .max()
            .unwrap_or_else(|| panic!("no write to {tmp} before its rename"));
        let synced = calls.iter().any(|c| {
            let covers = c.name == "syncfs" || (c.name.contains("sync") && c.fd_path == tmp);
            covers && c.start > last_write && c.end < r.start
        });
        assert!(
            synced,
            "{tmp} was renamed into place without a sync after its last write"
        );
    }
}

/// The file system type of `path` as `stat -f -c %t` prints it (hex magic).
fn fs_kind(path: &Path) -> String {
    Command::new("stat")
        .args(["-f", "-c", "%t"])
        .arg(path)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// ext4, XFS, btrfs: where restore makes files durable in batches with `syncfs`.
fn batches_on(kind: &str) -> bool {
    ["ef53", "58465342", "9123683e"].contains(&kind)
}

/// Many small files are made durable together (one `syncfs` per batch where the file system
/// allows: ext4, XFS, btrfs), not with a sync each: syncs are far fewer than files.
#[test]
fn restore_of_many_small_files_syncs_in_batches() {
    let tmp = tempdir();
    let kind = fs_kind(tmp.path());
    if !batches_on(&kind) {
        eprintln!("skipped: the temporary folder is not on ext4, XFS or btrfs ({kind})");
        return;
    }
    let files = 200;
    let Some((_tmp, calls)) = traced_small_restore(files) else {
        return;
    };
    let syncs: Vec<&Call> = calls.iter().filter(|c| c.name.contains("sync")).collect();
    assert!(
        syncs.len() <= files / 10,
        "{} syncs for {files} files: {:?}",
        syncs.len(),
        syncs.iter().map(|c| &c.name).collect::<Vec<_>>()
    );
}

/// `syncfs` reports a writeback error once per open file description (Linux keeps the
/// error cursor in the `struct file`): restore threads sharing one descriptor would let one
/// thread's `syncfs` take the error of another thread's file, which the other would then
/// rename into place as good. So every `syncfs` goes through a descriptor opened by the
/// thread that calls it, used by no other thread.
#[test]
fn each_restore_thread_syncs_through_a_descriptor_of_its_own() {
    let Some((tmp, trace)) = traced_restore_of_small_files(200, "trace=openat,syncfs") else {
        return;
    };
    // Descriptor number -> the thread that opened it last, as the trace goes.
    let mut opened_by: std::collections::HashMap<String, String> = Default::default();
    let mut syncs = 0;
    for line in trace.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.starts_with("openat(") || rest.starts_with("<... openat resumed>") {
            if let Some((_, result)) = rest.rsplit_once(" = ") {
                let fd: String = result.chars().take_while(char::is_ascii_digit).collect();
                if !fd.is_empty() {
                    opened_by.insert(fd, pid.to_string());
                }
            }
        } else if let Some(args) = rest.strip_prefix("syncfs(") {
            let fd: String = args.chars().take_while(char::is_ascii_digit).collect();
            syncs += 1;
            assert_eq!(
                opened_by.get(&fd).map(String::as_str),
                Some(pid),
                "thread {pid} called syncfs through descriptor {fd}, which it did not open: {line}"
            );
        }
    }
    if batches_on(&fs_kind(tmp.path())) {
        assert!(syncs > 0, "no syncfs on ext4/XFS/btrfs:\n{trace}");
    }
}

/// A data pack is written as it fills, a 4 MiB segment at a time, to a temporary file in
/// `data/` (its folder depends on its name, known at its end), and gets its name only once
/// every byte of it is written and synced: each `linkat` of such a file comes after an
/// `fdatasync` of it that began after its last write. The packs read back whole and right.
#[test]
fn a_pack_written_as_it_fills_is_named_only_once_synced() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    for i in 0..3u64 {
        write_random(&src.join(format!("VID_{i}.MOV")), 40 + i, 5 << 20);
    }
    let repo = tmp.path().join("repo");
    let sv = Sv::init(&repo, true);
    let log = tmp.path().join("snapshot.trace");
    let args = ["snapshot", src.to_str().unwrap()];
    let traced = "trace=pwrite64,fdatasync,fsync,linkat";
    let Some(out) = traced_calls(&sv, &args, &log, traced) else {
        return;
    };
    assert_eq!(out.code, Some(0), "{out}");
    let trace = std::fs::read_to_string(&log).unwrap();
    let temp = format!("{}/.tmp-", repo.join("data").display());
    // Every write to a pack's temporary file: a segment at most.
    let mut writes = 0;
    for line in trace
        .lines()
        .filter(|l| l.contains("pwrite64(") && l.contains(&temp))
    {
        let len: usize = line
            .split_once("\"..., ")
            .and_then(|(_, r)| r.split_once(','))
            .and_then(|(n, _)| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no length in {line}"));
        assert!(len <= 4 << 20, "a write of {len} bytes to a pack: {line}");
        writes += 1;
    }
    assert!(
        writes >= 4,
        "{writes} writes to packs being filled; trace:\n{trace}"
    );
    let calls = calls(&trace);
    let links: Vec<&Call> = calls
        .iter()
        .filter(|c| c.name == "linkat" && c.quoted.starts_with(&temp))
        .collect();
    assert!(
        !links.is_empty(),
        "no pack linked from data/; trace:\n{trace}"
    );
    for l in links {
        let last_write = calls
            .iter()
            .filter(|c| c.name == "pwrite64" && c.fd_path == l.quoted && c.end < l.start)
            .map(|c| c.end)
            .max()
            .unwrap_or_else(|| panic!("no write to {} before its link", l.quoted));
        let synced = calls.iter().any(|c| {
            c.name.contains("sync")
                && c.fd_path == l.quoted
                && c.start > last_write
                && c.end < l.start
        });
        assert!(
            synced,
            "{} was named without a sync after its last write",
            l.quoted
        );
    }
    let check = sv.run(&["check", "--read-data"]);
    assert_eq!(check.code, Some(0), "{check}");
}
