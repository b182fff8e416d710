//! The config under parity: its copies in the key files kept in step by `parity set` and
//! `repair`, and a damaged config (even its `parity` field) repaired from parity.

use super::*;

/// `check` passes with no warning and no notice about the key files or the config.
fn check_clean(sv: &Sv, after: &str) {
    let out = sv.run(&["check"]);
    assert_eq!(out.code, Some(0), "check after {after}: {out}");
    // A killed process leaves its temporary file: that notice is expected.
    let text: Vec<&str> = out
        .stdout
        .lines()
        .chain(out.stderr.lines())
        .filter(|l| !l.contains("leftover temporary file"))
        .collect();
    for word in ["warning:", "notice:", "error:", "differs", "out of date"] {
        assert!(
            !text.iter().any(|l| l.contains(word)),
            "check after {after}: {out}"
        );
    }
}

/// `parity set` rewrites the config: every key file's sealed copy of it follows, so a
/// healthy repository checks clean afterwards, whatever level it goes from and to.
#[test]
fn parity_set_keeps_the_key_files_copies_of_the_config_in_step() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let sv = Sv::init(tmp.path().join("repo"), true);
    sv.snapshot(&[&src], &[]);
    sv.ok(&["parity", "set", "5"]);
    check_clean(&sv, "parity set 5");
    sv.ok(&["parity", "set", "0"]);
    check_clean(&sv, "parity set 0");

    let other = init_with_parity(&tmp.path().join("other"), "5");
    add_key(&other);
    other.snapshot(&[&src], &[]);
    other.ok(&["parity", "set", "10"]);
    check_clean(&other, "init --parity 5, parity set 10");
    assert_covered(&other.repo, 10);
    // Either password still opens it, with the copy the key file holds now.
    let mut second = other.command(&["snapshots"]);
    second.env("SNAPVAULT_PASSWORD", SECOND_PASSWORD);
    assert_eq!(run_command(second, DEFAULT_TIMEOUT).code, Some(0));
}

/// Killed after the config was rewritten and before the key files were: `check` notes the
/// out-of-date copies (no damage), and `repair --apply` seals the config in use into them.
#[test]
fn an_interrupted_parity_set_leaves_copies_that_repair_brings_in_step() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let sv = Sv::init(tmp.path().join("repo"), true);
    sv.snapshot(&[&src], &[]);
    kill_at(&sv, &["parity", "set", "5"], "write-key@1", tmp.path());
    let config = std::fs::read_to_string(sv.repo.join("config")).unwrap();
    assert!(config.contains("\"parity\": 5"), "{config}");

    let out = sv.run(&["check"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_mentions(&out, "notice: key ");
    assert_mentions(&out, "copy of the config is out of date");
    let out = sv.ok(&["repair", "--apply"]);
    assert_mentions(&out, "with the config in use");
    check_clean(&sv, "repair --apply");
    assert_eq!(names_in(&sv.repo, "keys").len(), 1);
}

/// `repair --apply` on a repository whose config is damaged (and whose index it must
/// rebuild, for a pack a killed snapshot left unindexed): parity puts the config back
/// first, and the index files repair then replaces leave their group before they go, so
/// no parity in force names a removed file (a later repair would bring it back) and the
/// new index file is covered. Found by the kill test of `copy`
/// (`parity::kill::copy_killed_at_every_write_point_keeps_the_destinations_parity_old_or_new`).
#[test]
fn repair_starting_from_a_damaged_config_keeps_parity_in_step() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let sv = init_with_parity(&tmp.path().join("repo"), "10");
    sv.snapshot(&[&src], &[]);
    write_random(&src.join("DCIM/IMG_0007.HEIC"), 7, 300_000);
    kill_at(
        &sv,
        &["snapshot", src.to_str().unwrap()],
        "write-index@1",
        tmp.path(),
    );
    sv.snapshot(&[&src], &[]);
    assert_covered(&sv.repo, 10);
    let config = sv.repo.join("config");
    let mut b = std::fs::read(&config).unwrap();
    b[10] ^= 0x20;
    std::fs::write(&config, b).unwrap();

    let out = sv.ok(&["repair", "--apply"]);
    assert_mentions(&out, "repaired from parity: config config");
    assert_mentions(&out, "index: rebuilt");
    let (code, v) = check_json(&sv);
    assert_eq!(code, Some(0), "after repair: {out}\ncheck: {v}");
    assert_covered(&sv.repo, 10);
}

/// A flipped bit that hits the config's `parity` field itself ("parity" read as an unknown
/// field, so the level would read as none): the level is taken from the config the
/// repository opens with (its MAC checked, else a key file's copy), so `check` still reads
/// the parity and names the config as repairable, and `repair --apply` puts it back. Found
/// by the repair kill test (`parity::kill::repair_killed_at_every_write_point_…`).
#[test]
fn a_damaged_parity_field_in_the_config_is_repaired_from_parity() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let sv = init_with_parity(&tmp.path().join("repo"), "10");
    sv.snapshot(&[&src], &[]);
    let config = sv.repo.join("config");
    let text = std::fs::read_to_string(&config).unwrap();
    let at = text.find("\"parity\"").unwrap() + 1;
    let mut b = text.into_bytes();
    b[at] ^= 0x01; // "parity" → "qarity"
    std::fs::write(&config, b).unwrap();

    let (code, v) = check_json(&sv);
    assert_eq!(code, Some(4), "{v}");
    assert_eq!(v["parity"]["level"], 10, "{v}");
    assert_eq!(
        names(&v, "repairable"),
        HashSet::from(["config config".to_string()]),
        "{v}"
    );
    // A snapshot meanwhile keeps parity at the level in force, not at none.
    write_random(&src.join("DCIM/IMG_0009.JPG"), 9, 200_000);
    sv.snapshot(&[&src], &[]);
    let out = sv.ok(&["repair", "--apply"]);
    assert_mentions(&out, "repaired from parity: config config");
    let (code, v) = check_json(&sv);
    assert_eq!(code, Some(0), "after repair: {out}\ncheck: {v}");
    assert_covered(&sv.repo, 10);
}

/// Flip one bit of the config file at byte `at`.
fn flip_config(repo: &Path, at: usize, mask: u8) {
    let config = repo.join("config");
    let mut b = std::fs::read(&config).unwrap();
    b[at] ^= mask;
    std::fs::write(&config, b).unwrap();
}

/// An unencrypted repository's config has no MAC and no sealed copies: a flipped bit in its
/// `parity` field ("parity" read as an unknown field, or the level read as another) must
/// not silently read as "no parity" (or another level). Parity recorded the config's
/// BLAKE3, so the config is known to be damaged: `check` keeps the level in force and names
/// the config as repairable, a snapshot meanwhile covers its files at that level, and
/// `repair --apply` puts the config back.
#[test]
fn a_damaged_parity_field_in_an_unencrypted_config_is_noticed_and_repaired() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let sv = Sv::at(tmp.path().join("repo"), None);
    sv.ok(&["init", "--insecure-no-encryption", "--parity", "10"]);
    sv.snapshot(&[&src], &[]);
    let text = std::fs::read_to_string(sv.repo.join("config")).unwrap();
    assert!(!text.contains("\"mac\""), "{text}");
    let field = text.find("\"parity\"").unwrap();
    let digit = field + text[field..].find("10").unwrap() + 1;
    // "parity" → "qarity" (no parity), then the level 10 → 18.
    for (n, (at, mask)) in [(field + 1, 0x01), (digit, 0x08)].into_iter().enumerate() {
        flip_config(&sv.repo, at, mask);
        let what = format!("round {n}");
        let (code, v) = check_json(&sv);
        assert_eq!(code, Some(4), "{what}: {v}");
        assert_eq!(v["parity"]["level"], 10, "{what}: {v}");
        assert_eq!(
            names(&v, "repairable"),
            HashSet::from(["config config".to_string()]),
            "{what}: {v}"
        );
        // The advice is parity's, not the key files' (no key file is damaged).
        let next = v["next"].as_str().unwrap_or_default();
        assert!(
            next.contains("repair --apply") && !next.contains("key file"),
            "{what}: {v}"
        );
        // A snapshot meanwhile keeps parity at the level in force, and says why.
        write_random(
            &src.join(format!("DCIM/IMG_00{n}9.JPG")),
            90 + n as u64,
            200_000,
        );
        let out = sv.ok(&["snapshot", src.to_str().unwrap()]);
        assert_mentions(&out, "is not the one its parity recorded");
        assert_mentions(&out, "parity is kept at 10 %");
        let out = sv.ok(&["repair", "--apply"]);
        assert_mentions(&out, "repaired from parity: config config");
        assert_eq!(
            std::fs::read_to_string(sv.repo.join("config")).unwrap(),
            text
        );
        let (code, v) = check_json(&sv);
        assert_eq!(code, Some(0), "{what}: after repair: {out}\ncheck: {v}");
        assert_covered(&sv.repo, 10);
    }
    let back = tmp.path().join("back");
    assert_eq!(sv.restore("latest", &back).code, Some(0));
    assert_same_tree(&src, &back.join("src"));
}

/// A flipped bit in an encrypted config's level: the config's MAC no longer checks, so the
/// repository opens with a key file's sealed copy, and every parity file a command writes
/// is at that copy's level — also those it writes while it runs (a full group of the packs
/// it wrote), which a crash leaves in force. Before the fix the level while a command ran
/// came from the config file's bytes before any MAC was checked: "10" read as "50", a
/// snapshot killed right after it covered its first packs left parity at 50 % in force
/// (groups of 2 packs, 5× the parity writes); "50" read as "10", its packs' parity was
/// at 10 %. `check` names the config repairable, `repair --apply` puts it back, and the
/// snapshot restores byte for byte.
#[test]
fn a_flipped_level_in_an_encrypted_config_is_not_the_level_a_command_writes() {
    flipped_level("10", "50");
    flipped_level("50", "10");
}

/// A repository at level `real` whose config reads `shown` (one flipped bit); a snapshot
/// of four packs of about 16 MiB (two groups at 50 %) is killed when it has written the
/// first parity file of its packs (while it runs, or for its last group after it): the
/// parity in force is at `real`, never at `shown`.
fn flipped_level(real: &str, shown: &str) {
    let what = format!("level {real} read as {shown}");
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let sv = init_with_parity(&tmp.path().join("repo"), real);
    sv.snapshot(&[&src], &[]);
    let text = std::fs::read_to_string(sv.repo.join("config")).unwrap();
    let field = text.find("\"parity\"").unwrap();
    let digit = field + text[field..].find(real).unwrap();
    flip_config(&sv.repo, digit, 0x04); // '1' <-> '5'
    let flipped = std::fs::read_to_string(sv.repo.join("config")).unwrap();
    assert!(
        flipped.contains(&format!("\"parity\": {shown}")),
        "{what}: {flipped}"
    );

    for i in 0..4 {
        write_random(
            &src.join(format!("DCIM/CLIP_{i:04}.MOV")),
            100 + i,
            14 << 20,
        );
    }
    let killed = kill_if_reached(
        &sv,
        &["snapshot", src.to_str().unwrap()],
        "parity-spooled@1",
        tmp.path(),
    );
    let level: u8 = real.parse().unwrap();
    let levels: HashSet<u8> = live_groups(&sv.repo)
        .iter()
        .map(|l| l.header.percent)
        .collect();
    assert_eq!(
        levels,
        HashSet::from([level]),
        "{what}: parity in force after the snapshot (killed while it ran: {killed})"
    );
    assert!(
        killed,
        "{what}: the snapshot wrote no parity file of its packs"
    );
    sv.snapshot(&[&src], &[]);
    assert_covered(&sv.repo, level);

    let (code, v) = check_json(&sv);
    assert_eq!(code, Some(4), "{what}: {v}");
    assert_eq!(v["parity"]["level"], level, "{what}: {v}");
    assert_eq!(
        names(&v, "repairable"),
        HashSet::from(["config config".to_string()]),
        "{what}: {v}"
    );
    let out = sv.ok(&["repair", "--apply"]);
    assert_mentions(&out, "repaired from parity: config config");
    assert_eq!(
        std::fs::read_to_string(sv.repo.join("config")).unwrap(),
        text,
        "{what}"
    );
    let (code, v) = check_json(&sv);
    assert_eq!(code, Some(0), "{what}: after repair: {out}\ncheck: {v}");
    assert_covered(&sv.repo, level);
    let back = tmp.path().join("back");
    assert_eq!(sv.restore("latest", &back).code, Some(0), "{what}");
    assert_same_tree(&src, &back.join("src"));
}
