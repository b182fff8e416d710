//! A pack that cannot be read (a disk error, a permission, a network timeout) proves nothing
//! about its bytes: `check` calls it "not checked" — exit 3, no `damaged:` line, nothing
//! in the damage list, so the next snapshot stores nothing again (issue 25.4) — and
//! `repair` stops, naming the pack and the error, before it changes anything (issue 15.6).
//!
//! The pack is made unreadable with `chmod 000`; root reads it anyway, so as root the
//! commands run as `nobody` on a repository handed over to it.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use crate::common::*;
use crate::repair::Lab;
use crate::unreadable::{NOBODY, can_run_as_nobody};

struct Unreadable {
    lab: Lab,
    pack: PathBuf,
    as_nobody: bool,
}

impl Unreadable {
    /// The lab with its largest pack unreadable; `None` (skipped, said on stderr) when the
    /// tests run privileged and cannot switch to `nobody`.
    fn new() -> Option<Unreadable> {
        let lab = Lab::new();
        let pack = lab.data_pack();
        set_mode(&pack, 0o000);
        let as_nobody = fs::read(&pack).is_ok();
        if as_nobody {
            if !can_run_as_nobody() {
                eprintln!("skipped: running privileged and cannot switch to uid {NOBODY}");
                return None;
            }
            chown_tree(lab._tmp.path());
        }
        Some(Unreadable {
            lab,
            pack,
            as_nobody,
        })
    }

    fn run(&self, args: &[&str]) -> Out {
        let mut c = self.lab.sv.command(args);
        c.env("XDG_CACHE_HOME", &self.lab.cache);
        if self.as_nobody {
            c.uid(NOBODY).gid(NOBODY).env("HOME", self.lab._tmp.path());
        }
        run_command(c, DEFAULT_TIMEOUT)
    }

    fn readable_again(&self) {
        set_mode(&self.pack, 0o600);
    }

    fn pack_name(&self) -> String {
        self.pack
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    /// What the damage list of the cache says, if there is one.
    fn damage_list(&self) -> Option<String> {
        let mut found = None;
        for e in fs::read_dir(self.lab.cache.join("snapvault"))
            .ok()?
            .flatten()
        {
            if let Ok(s) = fs::read_to_string(e.path().join("damaged.json")) {
                found = Some(s);
            }
        }
        found
    }
}

/// Hand a folder tree over to `nobody`.
fn chown_tree(root: &Path) {
    std::os::unix::fs::lchown(root, Some(NOBODY), Some(NOBODY)).unwrap();
    for e in fs::read_dir(root).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            chown_tree(&p);
        } else {
            std::os::unix::fs::lchown(&p, Some(NOBODY), Some(NOBODY)).unwrap();
        }
    }
}

/// Every repository file but the locks, with its content.
fn contents(repo: &Path) -> Vec<(String, Vec<u8>)> {
    files_but_locks(repo)
        .into_iter()
        // Root reads the unreadable pack; its bytes do not change either way.
        .map(|(rel, p)| (rel, fs::read(&p).unwrap_or_default()))
        .collect()
}

fn assert_no_damage_list(u: &Unreadable, what: &str) {
    if let Some(list) = u.damage_list() {
        assert!(
            !list.contains(&u.pack_name()) && !list.contains("\"blobs\":{\""),
            "{what}: the damage list names the unreadable pack or its blobs: {list}"
        );
    }
}

#[test]
fn check_calls_an_unreadable_pack_not_checked_never_damaged() {
    let Some(u) = Unreadable::new() else { return };
    for args in [&["check", "--read-data"][..], &["check"][..]] {
        let out = u.run(args);
        assert_eq!(
            out.code,
            Some(3),
            "{args:?}: not exit 3 (incomplete):\n{out}"
        );
        assert!(
            out.stdout
                .contains(&format!("not checked: pack {}", u.pack_name()))
                && out.stdout.contains("Permission denied"),
            "{args:?}: the pack is not named with its error:\n{out}"
        );
        assert!(
            out.stdout.contains("the check is incomplete"),
            "{args:?}:\n{out}"
        );
        assert!(
            !out.stdout.lines().any(|l| l.starts_with("damaged:")),
            "{args:?}: damage reported:\n{out}"
        );
        assert!(!out.stdout.contains("error(s) found"), "{args:?}:\n{out}");
        assert_no_damage_list(&u, &format!("{args:?}"));
    }
    let json = u.run(&["check", "--read-data", "--json"]).json();
    assert_eq!(json["complete"], false, "{json}");
    assert_eq!(json["errors"], 0, "{json}");
    assert!(
        json["report"]["not_checked"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{json}"
    );
    // Nothing is stored again: the photos in that pack are not known to be damaged. (As
    // `nobody` the library was handed over with `chown`, which moves every file's change
    // time, so the files are read again — and found stored: no data is added, only the
    // trees recording the new change times.)
    let out = u.run(&["snapshot", "--json", u.lab.src.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    let s = out.json();
    if !u.as_nobody {
        assert_eq!(summary_u64(&s, "files_changed"), 0, "{s}");
    }
    assert_eq!(summary_u64(&s, "files_new"), 0, "{s}");
    assert!(
        summary_u64(&s, "bytes_added") < 64 << 10,
        "data stored again: {s}"
    );
    // Readable again, the pack verifies: there never was any damage.
    u.readable_again();
    let out = u.run(&["check", "--read-data"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("no errors found"), "{out}");
}

#[test]
fn repair_stops_at_an_unreadable_pack_and_changes_nothing() {
    let Some(u) = Unreadable::new() else { return };
    let repo = u.lab.sv.repo.clone();
    // Worse still: the index is gone too, so the repair would rebuild it from the packs.
    let index: PathBuf = repo.join("index");
    let first = fs::read_dir(&index)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    fs::remove_file(first).unwrap();
    let before = contents(&repo);
    for args in [
        &["repair", "--apply"][..],
        &["repair", "index", "--apply"][..],
        &["repair", "--apply", "--forget-damaged"][..],
    ] {
        let out = u.run(args);
        assert_eq!(out.code, Some(1), "{args:?}: went on:\n{out}");
        for want in [
            format!("pack {}", u.pack_name()),
            "Permission denied".to_string(),
            "nothing was changed".to_string(),
        ] {
            assert!(out.stderr.contains(&want), "{args:?}: no {want:?}:\n{out}");
        }
        assert!(
            contents(&repo) == before,
            "{args:?}: the repository changed"
        );
    }
    // Readable again, repair rebuilds the index and loses nothing.
    u.readable_again();
    let out = u.run(&["repair", "--apply"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!out.stdout.contains("lost"), "{out}");
    let out = u.run(&["check", "--read-data"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(u.lab.sv.snapshots().len(), 2);
}
