//! Kill -9 on remote repositories, continued (issue 21): `repair --apply` writing back from
//! parity, and `copy` into a remote destination with its own parity level, each killed
//! (SIGKILL) at its write points as counted by the test build's fault injector beneath the
//! parity guard (`SNAPVAULT_TEST_FAULT=write+remove@N:kill`, see `remote_kill`), each time
//! on a new repository. After each kill `check --read-data` finds no wrong parity: nothing
//! lost, no parity file damaged or unreadable, nothing repairable but what the test itself
//! damaged; the command run again completes; then every file is covered, a pack deleted
//! behind snapvault's back is rebuilt from parity byte for byte (repair accepts it only by
//! its BLAKE3) and the latest snapshot restores byte for byte.
//!
//! The write points of `repair --apply` here (3, every one taken, and once more right
//! after the last): the write-backs of the lost pack, the damaged index file and the
//! damaged snapshot, in the order parity's groups come. Of `copy --all` adding one
//! snapshot to a destination that holds one (7): 1 the clean-up of leftover temporary
//! files, 2–3 the data and tree packs, 4 the index file, 5 the snapshot, 6–7 the parity
//! files of the new packs and of the index file with the snapshot; sampled: on S3 before
//! 2, 4 and 7 (one parity file of two written), on SFTP before 3, 5 and 6 and right after
//! 7. A kill is asserted to have happened, so a command with fewer write points fails the
//! test rather than sampling less.

use std::path::PathBuf;

use super::remote_kill::{consistent_but, killed_command};
use super::s3_raw::Objects;
use super::*;
use crate::remote::{Remote, no_servers, restore_matches};

/// A remote repository's files read, rewritten and deleted behind snapvault's back, by
/// path relative to the repository (`data/ab/ab…`, `index/…`).
enum Raw {
    S3(Objects),
    Sftp(PathBuf),
}

impl Raw {
    fn of(r: &Remote) -> Raw {
        if r.url.starts_with("s3:") {
            Raw::S3(Objects::of(r))
        } else {
            Raw::Sftp(r.sftp_folder())
        }
    }

    /// The paths of the files under `folder` (`data`, `index`, `snapshots`), with their
    /// names.
    fn list(&self, folder: &str) -> Vec<(String, String)> {
        let paths = match self {
            Raw::S3(o) => o.list(folder),
            Raw::Sftp(root) => {
                let mut out = Vec::new();
                let mut dirs = vec![root.join(folder)];
                while let Some(d) = dirs.pop() {
                    for e in std::fs::read_dir(&d).unwrap() {
                        let e = e.unwrap();
                        if e.file_type().unwrap().is_dir() {
                            dirs.push(e.path());
                        } else if !e.file_name().to_string_lossy().starts_with('.') {
                            let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
                            out.push(rel.display().to_string());
                        }
                    }
                }
                out
            }
        };
        paths
            .into_iter()
            .map(|p| (p.rsplit('/').next().unwrap().to_string(), p))
            .collect()
    }

    fn get(&self, path: &str) -> Vec<u8> {
        match self {
            Raw::S3(o) => o.get(path),
            Raw::Sftp(root) => std::fs::read(root.join(path)).unwrap(),
        }
    }

    fn put(&self, path: &str, data: &[u8]) {
        match self {
            Raw::S3(o) => o.put(path, data),
            Raw::Sftp(root) => std::fs::write(root.join(path), data).unwrap(),
        }
    }

    fn delete(&self, path: &str) {
        match self {
            Raw::S3(o) => o.delete(path),
            Raw::Sftp(root) => std::fs::remove_file(root.join(path)).unwrap(),
        }
    }

    /// Delete the biggest pack; its name and bytes.
    fn lose_biggest_pack(&self) -> (String, Vec<u8>) {
        let (name, path, bytes) = self
            .list("data")
            .into_iter()
            .map(|(n, p)| {
                let b = self.get(&p);
                (n, p, b)
            })
            .max_by_key(|(_, _, b)| b.len())
            .expect("a pack");
        self.delete(&path);
        (name, bytes)
    }

    /// Flip one bit in the middle of file `name` under `folder`.
    fn flip(&self, folder: &str, name: &str) {
        let path = self
            .list(folder)
            .into_iter()
            .find(|(n, _)| n == name)
            .expect("the file")
            .1;
        let mut b = self.get(&path);
        let mid = b.len() / 2;
        b[mid] ^= 0x10;
        self.put(&path, &b);
    }

    /// The names of the files under `folder`.
    fn names(&self, folder: &str) -> HashSet<String> {
        self.list(folder).into_iter().map(|(n, _)| n).collect()
    }

    /// The bytes of pack `name`.
    fn pack(&self, name: &str) -> Vec<u8> {
        self.get(&format!("data/{}/{name}", &name[..2]))
    }
}

/// The end of every kill test: everything covered at `level`, a pack deleted behind
/// snapvault's back rebuilt from parity exactly as it was, and the latest snapshot
/// restoring byte for byte.
fn pack_rebuilt_and_restored(r: &Remote, level: u8, src: &Path, what: &str) {
    let v = consistent_but(r, level, &HashSet::new(), what);
    assert_eq!(v["parity"]["files_unprotected"], 0, "{what}: {v}");
    let raw = Raw::of(r);
    let (pack, bytes) = raw.lose_biggest_pack();
    let out = r.ok(&["repair", "--apply"]);
    assert_mentions(&out, &format!("repaired from parity: pack {pack}"));
    assert!(
        raw.pack(&pack) == bytes,
        "{what}: pack {pack} rebuilt wrong"
    );
    consistent_but(r, level, &HashSet::new(), &format!("{what}, pack rebuilt"));
    restore_matches(r, "latest", src);
}

/// A new repository at level 10 on `fresh()` with two snapshots, then a pack lost, the
/// first snapshot's index file and the second snapshot damaged (a flipped bit each, each in
/// another group: within what parity promises; the index file and snapshot one command
/// wrote share a group whose bands have one recovery shard): `repair --apply` has three
/// files to write back. Killed at `spec`, checked, repaired again, checked in full.
fn repair_killed_at(fresh: &dyn Fn() -> Remote, spec: &str) {
    let work = tempdir();
    let src = work.path().join("library");
    library(&src);
    write_random(&src.join("DCIM/IMG_0004.MOV"), 4, 1_500_000);
    let src_s = src.display().to_string();
    let r = fresh();
    let what = format!("{}: repair --apply killed at {spec}", r.url);
    r.ok(&["init", "--parity", "10"]);
    r.ok(&["snapshot", &src_s]);
    let raw = Raw::of(&r);
    let (index, first) = (raw.names("index"), raw.names("snapshots"));
    write_random(&src.join("DCIM/IMG_0005.HEIC"), 5, 200_000);
    r.ok(&["snapshot", &src_s]);
    let (pack, bytes) = raw.lose_biggest_pack();
    let index = index.into_iter().min().expect("an index file");
    let snapshot =
        (raw.names("snapshots").difference(&first).next().cloned()).expect("the second snapshot");
    raw.flip("index", &index);
    raw.flip("snapshots", &snapshot);
    let damaged = HashSet::from([
        format!("pack {pack}"),
        format!("index {index}"),
        format!("snapshot {snapshot}"),
    ]);
    let v = consistent_but(&r, 10, &damaged, &format!("{what}: before"));
    assert_eq!(names(&v, "repairable"), damaged, "{what}: {v}");

    killed_command(
        &r,
        r.command(&["repair", "--apply"]),
        "repair --apply",
        spec,
    );
    consistent_but(&r, 10, &damaged, &what);
    r.ok(&["repair", "--apply"]);
    assert!(
        raw.pack(&pack) == bytes,
        "{what}: pack {pack} rebuilt wrong"
    );
    pack_rebuilt_and_restored(&r, 10, &src, &what);
}

/// A local source at 5 % with two snapshots, the first copied already into a new remote
/// destination at 20 % on `fresh()`; `copy --all` killed at `spec`, checked, run again,
/// checked in full (the destination keeps its own level, the source its own).
fn copy_killed_at(fresh: &dyn Fn() -> Remote, spec: &str) {
    let work = tempdir();
    let src = work.path().join("library");
    library(&src);
    let a = init_with_parity(&work.path().join("a"), "5");
    a.snapshot(&[&src], &[]);
    write_random(&src.join("DCIM/IMG_0010.HEIC"), 10, 400_000);
    a.snapshot(&[&src], &[]);
    let r = fresh();
    let what = format!("{}: copy --all killed at {spec}", r.url);
    r.ok(&["init", "--parity", "20"]);
    let copy = |args: &[&str]| {
        let mut c = a.command(&["copy"]);
        c.args(args).arg("--to").arg(&r.url);
        c.env("SNAPVAULT_PASSWORD2", PASSWORD);
        for (k, v) in &r.env {
            c.env(k, v);
        }
        c
    };
    let first = a.snapshots()[0]["id"].as_str().unwrap().to_string();
    let out = run_command(copy(&[&first]), DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{what}: the first copy: {out}");
    consistent_but(&r, 20, &HashSet::new(), &format!("{what}: before"));

    killed_command(&r, copy(&["--all"]), "copy --all", spec);
    consistent_but(&r, 20, &HashSet::new(), &what);
    let out = run_command(copy(&["--all"]), DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{what}, run again: {out}");
    assert_eq!(
        r.ok(&["snapshots", "--json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    pack_rebuilt_and_restored(&r, 20, &src, &what);
    assert_covered(&a.repo, 5);
}

const REPAIR_POINTS: [&str; 4] = [
    "write+remove@1",
    "write+remove@2",
    "write+remove@3",
    "write+remove@3:kill-after",
];

#[test]
fn repair_apply_killed_on_s3_keeps_parity_old_or_new() {
    if no_servers() {
        return;
    }
    for spec in REPAIR_POINTS {
        repair_killed_at(&|| Remote::s3("parity-kill-repair"), spec);
    }
}

#[test]
fn repair_apply_killed_on_sftp_keeps_parity_old_or_new() {
    if no_servers() {
        return;
    }
    for spec in REPAIR_POINTS {
        repair_killed_at(&|| Remote::sftp("parity-kill-repair"), spec);
    }
}

#[test]
fn copy_into_s3_killed_keeps_the_destinations_parity_old_or_new() {
    if no_servers() {
        return;
    }
    for spec in ["write+remove@2", "write+remove@4", "write+remove@7"] {
        copy_killed_at(&|| Remote::s3("parity-kill-copy"), spec);
    }
}

#[test]
fn copy_into_sftp_killed_keeps_the_destinations_parity_old_or_new() {
    if no_servers() {
        return;
    }
    for spec in [
        "write+remove@3",
        "write+remove@5",
        "write+remove@6",
        "write+remove@7:kill-after",
    ] {
        copy_killed_at(&|| Remote::sftp("parity-kill-copy"), spec);
    }
}
