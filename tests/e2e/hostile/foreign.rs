//! Foreign files in a repository folder (16.8, last bullet): what `check` says about them
//! is what `prune` does. prune removes only packs provably this repository's own (an
//! interrupted run's leftovers) and leaves everything else alone; check says so.

use std::fs;

use crate::common::*;

#[test]
fn check_says_what_prune_does_with_foreign_files() {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    write_random(&src.join("IMG_0001.JPG"), 1, 40_000);
    let sv = Sv::init(tmp.path().join("repo"), true);
    sv.snapshot(&[&src], &[]);
    let packs_before: Vec<String> = pack_files(&sv.repo).into_iter().map(|(n, _)| n).collect();
    let index_before = names_in(&sv.repo, "index");
    let snaps_before = names_in(&sv.repo, "snapshots");

    // Our own leftover: the packs of a second snapshot whose index and snapshot files are
    // gone (as after a crash before the index was written).
    write_random(&src.join("IMG_0002.JPG"), 2, 40_000);
    sv.snapshot(&[&src], &[]);
    for (dir, before) in [("index", &index_before), ("snapshots", &snaps_before)] {
        for n in names_in(&sv.repo, dir) {
            if !before.contains(&n) {
                fs::remove_file(sv.repo.join(dir).join(n)).unwrap();
            }
        }
    }
    let own: Vec<String> = pack_files(&sv.repo)
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| !packs_before.contains(n))
        .collect();
    assert!(!own.is_empty());

    // Foreign files: what a file manager leaves (Thumbs.db, desktop.ini), and a pack of
    // another repository copied in by mistake (a valid pack name, another key).
    let other = Sv::init(tmp.path().join("other"), true);
    other.snapshot(&[&src], &[]);
    let (alien, alien_path) = pack_files(&other.repo).into_iter().next().unwrap();
    let data = sv.repo.join("data");
    let some_folder = data.join(&packs_before[0][..2]);
    let thumbs = some_folder.join("Thumbs.db");
    write_file(&thumbs, b"not a pack");
    write_file(&some_folder.join("desktop.ini"), b"[.ShellClassInfo]");
    let alien_copy = data.join(&alien[..2]).join(&alien);
    fs::create_dir_all(alien_copy.parent().unwrap()).unwrap();
    fs::copy(&alien_path, &alien_copy).unwrap();

    let out = sv.ok(&["check"]);
    let line_of = |needle: &str| -> String {
        out.stdout
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("check says nothing about {needle}:\n{out}"))
            .to_string()
    };
    for foreign in ["Thumbs.db", "desktop.ini", alien.as_str()] {
        let l = line_of(foreign);
        assert!(
            !l.contains("prune removes"),
            "check promises prune removes {foreign}: {l}"
        );
        assert!(l.contains("left alone"), "{l}");
    }
    for p in &own {
        assert!(line_of(p).contains("prune removes"), "{out}");
    }

    let out = sv.ok(&["prune", "--unindexed-grace", "0"]);
    let left: Vec<String> = pack_files(&sv.repo).into_iter().map(|(n, _)| n).collect();
    for p in &own {
        assert!(!left.contains(p), "prune left our own leftover {p}:\n{out}");
    }
    assert_eq!(fs::read(&thumbs).unwrap(), b"not a pack");
    assert!(some_folder.join("desktop.ini").exists());
    assert_eq!(
        fs::read(&alien_copy).unwrap(),
        fs::read(&alien_path).unwrap(),
        "prune removed another repository's pack"
    );
    assert_mentions(&out, "left alone");

    // The repository itself is intact, and check still says the same of the foreign files.
    let out = sv.ok(&["check", "--read-data"]);
    assert!(out.stdout.contains("Thumbs.db"), "{out}");
    let target = tmp.path().join("t");
    sv.restore("latest", &target);
    assert!(target.join("photos/IMG_0001.JPG").exists());
}

/// A pack of another repository copied into data/ (a valid pack name, a header that does
/// not open with this repository's key) is not damage `repair` may delete: it cannot be
/// proven this repository's garbage. `repair --apply` leaves it in place, says so, and
/// changes nothing else; the repository's own data stays whole.
#[test]
fn repair_leaves_another_repositorys_pack_in_place() {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    write_random(&src.join("IMG_0001.JPG"), 1, 40_000);
    let sv = Sv::init(tmp.path().join("repo"), true);
    sv.snapshot(&[&src], &[]);
    let other = Sv::init(tmp.path().join("other"), true);
    other.snapshot(&[&src], &[]);
    let (alien, alien_path) = pack_files(&other.repo).into_iter().next().unwrap();
    let alien_copy = sv.repo.join("data").join(&alien[..2]).join(&alien);
    fs::create_dir_all(alien_copy.parent().unwrap()).unwrap();
    fs::copy(&alien_path, &alien_copy).unwrap();
    let before = listing(&sv.repo.join("data"));

    let out = sv.ok(&["repair"]);
    let says = |out: &Out| {
        let line = out
            .stdout
            .lines()
            .find(|l| l.contains(&alien) || l.contains(&alien[..8]))
            .unwrap_or_else(|| panic!("repair says nothing of the foreign pack:\n{out}"));
        assert!(
            line.contains("not this repository's") && line.contains("left in place"),
            "{line}"
        );
        assert!(!line.contains("damaged"), "{line}");
    };
    says(&out);
    let out = sv.ok(&["repair", "--apply"]);
    says(&out);
    assert_unchanged(&before, &sv.repo.join("data"), "repair --apply");
    assert_eq!(
        fs::read(&alien_copy).unwrap(),
        fs::read(&alien_path).unwrap(),
        "repair changed another repository's pack"
    );
    let target = tmp.path().join("t");
    sv.restore("latest", &target);
    assert_same_tree(&src, &target.join("photos"));
}
