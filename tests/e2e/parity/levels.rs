//! Parity levels: set at init, changed by `parity set`, given by `copy` to its destination
//! at the destination's own level, and every file covered through the commands that write
//! and delete files.

use super::*;

#[test]
fn parity_covers_every_file_through_snapshot_forget_prune_keys_and_level_changes() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let sv = init_with_parity(&tmp.path().join("repo"), "5");
    assert_covered(&sv.repo, 5);
    sv.snapshot(&[&src], &[]);
    assert_covered(&sv.repo, 5);

    sv.ok(&["parity", "set", "10"]);
    assert_covered(&sv.repo, 10);
    let config = std::fs::read_to_string(sv.repo.join("config")).unwrap();
    assert!(config.contains("\"parity\": 10"), "{config}");

    write_random(&src.join("DCIM/IMG_0003.HEIC"), 3, 400_000);
    sv.snapshot(&[&src], &[]);
    std::fs::remove_file(src.join("DCIM/IMG_0001.HEIC")).unwrap();
    sv.snapshot(&[&src], &[]);
    sv.ok(&[
        "forget",
        "--keep-last",
        "1",
        "--prune",
        "--allow-photo-loss",
    ]);
    assert_covered(&sv.repo, 10);

    add_key(&sv);
    assert_covered(&sv.repo, 10);

    sv.ok(&["parity", "set", "0"]);
    assert_eq!(names_in(&sv.repo, "parity"), Vec::<String>::new());
    let config = std::fs::read_to_string(sv.repo.join("config")).unwrap();
    assert!(!config.contains("parity"), "{config}");
    // Still opens and restores.
    let out = sv.restore("latest", &tmp.path().join("back"));
    assert_eq!(out.code, Some(0), "{out}");
}

#[test]
fn copy_gives_the_destination_its_own_level() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let a = Sv::init(tmp.path().join("a"), true);
    a.snapshot(&[&src], &[]);
    let b = init_with_parity(&tmp.path().join("b"), "20");
    let mut c = a.command(&["copy", "--all", "--to"]);
    c.arg(&b.repo).env("SNAPVAULT_PASSWORD2", PASSWORD);
    let out = run_command(c, std::time::Duration::from_secs(120));
    assert_eq!(out.code, Some(0), "{out}");
    assert_covered(&b.repo, 20);
    assert_eq!(names_in(&a.repo, "parity"), Vec::<String>::new());
}

#[test]
fn a_parity_level_out_of_range_is_refused() {
    let tmp = tempdir();
    let sv = Sv::at(tmp.path().join("repo"), Some(PASSWORD));
    let out = sv.run(&["init", "--parity", "51"]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "--parity");
    assert!(!sv.repo.join("config").exists());
}

/// `parity set` to the level in force regroups everything; a new group that comes out
/// exactly as an old one (same members, same level) must not be the file that is then
/// superseded and removed as "old": every file stays covered.
#[test]
fn parity_set_to_the_same_level_keeps_every_file_covered() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let sv = init_with_parity(&tmp.path().join("repo"), "10");
    sv.snapshot(&[&src], &[]);
    sv.ok(&["parity", "set", "10"]);
    assert_covered(&sv.repo, 10);
    sv.snapshot(&[&src], &[]);
    assert_covered(&sv.repo, 10);
}
