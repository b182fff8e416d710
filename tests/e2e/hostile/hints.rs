//! Session 12: a hint must name a command that does what it says. With the index damaged,
//! `check` called the packs that index named "left by an interrupted run" and said `prune`
//! removes them — but prune refuses while an index file is damaged, and removing those
//! packs would lose the photos in them. The hint now names the command that mends it, and
//! running exactly that command leaves a repository `check` passes.

use std::fs;

use crate::common::*;

/// The first `snapvault …` command quoted in `line` (between backquotes), as arguments.
fn quoted_command(line: &str) -> Option<Vec<String>> {
    let start = line.find("`snapvault ")? + 1;
    let len = line[start..].find('`')?;
    Some(
        line[start..start + len]
            .split_whitespace()
            .skip(1)
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn check_with_a_damaged_index_names_the_command_that_adopts_its_packs() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    for i in 0..3 {
        write_random(&src.join(format!("IMG_{i}.JPG")), i, 300_000);
    }
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    for name in names_in(&sv.repo, "index") {
        let p = sv.repo.join("index").join(name);
        let mut b = fs::read(&p).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0xff;
        fs::write(&p, b).unwrap();
    }

    let out = sv.run(&["check"]);
    assert_eq!(out.code, Some(4), "{out}");
    let pack_lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains(": pack "))
        .collect();
    assert!(!pack_lines.is_empty(), "no line names a pack:\n{out}");
    for l in &pack_lines {
        assert!(
            !l.contains("interrupted run") && !l.contains("prune"),
            "the packs of a damaged index are not an interrupted run's, and prune refuses \
             to run: {l}\n{out}"
        );
    }
    // Nothing is lost yet: not "missing from the repository", and the next step is the
    // index, not an off-site copy.
    assert!(
        !out.stdout.contains("missing from the repository"),
        "the data is in the packs the damaged index named:\n{out}"
    );
    let next = out
        .stdout
        .lines()
        .find(|l| l.starts_with("next:"))
        .unwrap_or_else(|| panic!("no next step:\n{out}"));
    assert!(
        next.contains("`snapvault repair index --apply`"),
        "the next step must be rebuilding the index: {next}"
    );
    // What prune says, for the record: it does not remove them.
    let prune = sv.run(&["prune", "--unindexed-grace", "0s"]);
    assert_failed(&prune);
    assert_eq!(pack_files(&sv.repo).len(), pack_lines.len(), "{prune}");

    // The hint on the pack's line, run as it is written, mends the repository.
    let hint = quoted_command(pack_lines[0])
        .unwrap_or_else(|| panic!("the pack's line names no command: {}", pack_lines[0]));
    let mended = sv.run(&hint);
    assert_eq!(mended.code, Some(0), "running the hint {hint:?}:\n{mended}");
    let out = sv.run(&["check", "--read-data"]);
    assert_eq!(
        out.code,
        Some(0),
        "check after running the hint {hint:?}:\n{out}"
    );
    let target = tmp.path().join("t");
    sv.restore("latest", &target);
    assert_same_tree(&src, &target.join("src"));
}
