//! Damage beyond what parity promises (issue 21 proof): two whole packs lost from one
//! group. `check` reports them as lost and names the photos they held, `repair --apply`
//! never claims to rebuild them from parity nor writes anything under their names, and once
//! repair has accepted the loss the repository checks clean with parity consistent.

use std::collections::HashSet;

use snapvault_repo::parity::MemberKind;

use crate::common::*;
use crate::parity::{
    add_key, assert_covered, check_json, init_with_parity, library, live_groups, member_path, names,
};

#[test]
fn two_lost_packs_of_one_group_are_lost_by_photo_and_never_repaired_wrongly() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let sv = init_with_parity(&tmp.path().join("repo"), "10");
    add_key(&sv);
    sv.snapshot(&[&src], &[]);
    write_random(&src.join("DCIM/IMG_0008.HEIC"), 8, 500_000);
    sv.snapshot(&[&src], &[]);
    // `parity set` regroups every pack into full groups: both snapshots' data packs (and
    // their tree packs) in one group, so losing the two data packs keeps the trees that
    // name the photos.
    sv.ok(&["parity", "set", "10"]);
    let group = live_groups(&sv.repo)
        .into_iter()
        .find(|l| {
            l.header
                .members
                .iter()
                .filter(|m| m.kind == MemberKind::Pack)
                .count()
                >= 2
        })
        .expect("a group of two packs or more");
    let mut packs: Vec<_> = group
        .header
        .members
        .iter()
        .filter(|m| m.kind == MemberKind::Pack)
        .collect();
    packs.sort_by_key(|m| std::cmp::Reverse(m.size));
    let lost: Vec<String> = packs[..2].iter().map(|m| m.name.clone()).collect();
    for m in &packs[..2] {
        std::fs::remove_file(member_path(&sv.repo, m.kind, &m.name)).unwrap();
    }

    let (code, v) = check_json(&sv);
    assert_eq!(code, Some(4), "{v}");
    let lost_now = names(&v, "lost");
    let repairable = names(&v, "repairable");
    for p in &lost {
        assert!(lost_now.contains(&format!("pack {p}")), "{v}");
        assert!(!repairable.contains(&format!("pack {p}")), "{v}");
    }
    // By photo: every damaged file named is one of the library's photos, and there is one.
    let photos: HashSet<String> = v["report"]["damaged_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_string())
        .collect();
    assert!(!photos.is_empty(), "{v}");
    for p in &photos {
        assert!(
            p.contains("DCIM/IMG_000"),
            "{p} is not a photo of the library: {v}"
        );
    }

    let out = sv.ok(&["repair", "--apply", "--forget-damaged"]);
    for p in &lost {
        assert!(
            !out.stdout
                .contains(&format!("repaired from parity: pack {p}")),
            "{out}"
        );
        assert!(
            !pack_files(&sv.repo).iter().any(|(q, _)| q == p),
            "repair wrote pack {p} back: {out}"
        );
    }
    // The loss is accepted (no snapshot or index names the packs any more): their group is
    // rebuilt without them, so the repository checks clean and parity names nothing gone.
    let (code, v) = check_json(&sv);
    assert_eq!(code, Some(0), "after repair:\n{out}\ncheck: {v}");
    assert!(
        names(&v, "lost").is_empty() && names(&v, "repairable").is_empty(),
        "{v}"
    );
    assert_covered(&sv.repo, 10);
}

/// Two packs of one group lost: parity cannot rebuild either, but it could rebuild both
/// from an exact copy of one of them. `repair` without `--apply` keeps the group's parity
/// and says so (format.md §15.5: the loss is given up only by `--apply`); following its
/// hint — the copy put back at its place, then `repair --apply` — rebuilds the other pack
/// from parity, and the repository checks clean and restores byte for byte, nothing lost.
#[test]
fn a_copy_of_one_of_two_lost_packs_put_back_before_apply_brings_both_back() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    library(&src);
    let sv = init_with_parity(&tmp.path().join("repo"), "10");
    sv.snapshot(&[&src], &[]);
    write_random(&src.join("DCIM/IMG_0008.HEIC"), 8, 500_000);
    sv.snapshot(&[&src], &[]);
    sv.ok(&["parity", "set", "10"]);
    let group = live_groups(&sv.repo)
        .into_iter()
        .find(|l| {
            l.header
                .members
                .iter()
                .filter(|m| m.kind == MemberKind::Pack)
                .count()
                >= 2
        })
        .expect("a group of two packs or more");
    let mut packs: Vec<_> = group
        .header
        .members
        .iter()
        .filter(|m| m.kind == MemberKind::Pack)
        .collect();
    packs.sort_by_key(|m| std::cmp::Reverse(m.size));
    let kept = tmp.path().join("copy-of-one");
    let first = member_path(&sv.repo, MemberKind::Pack, &packs[0].name);
    std::fs::copy(&first, &kept).unwrap();
    for m in &packs[..2] {
        std::fs::remove_file(member_path(&sv.repo, m.kind, &m.name)).unwrap();
    }

    let plan = sv.ok(&["repair"]);
    let at = format!("data/{}/{}", &packs[0].name[..2], packs[0].name);
    assert_mentions(&plan, &format!("beyond parity: pack {}", packs[0].name));
    assert_mentions(&plan, &format!("put it back first ({at})"));
    assert_eq!(
        live_groups(&sv.repo)
            .iter()
            .filter(|l| l.name == group.name)
            .count(),
        1,
        "repair without --apply keeps the group's parity\n{plan}"
    );

    // The hint: the copy put back, then `repair --apply`.
    std::fs::copy(&kept, &first).unwrap();
    let out = sv.ok(&["repair", "--apply"]);
    assert_mentions(
        &out,
        &format!("repaired from parity: pack {}", packs[1].name),
    );
    let (code, v) = check_json(&sv);
    assert_eq!(code, Some(0), "after repair:\n{out}\ncheck: {v}");
    assert_covered(&sv.repo, 10);
    let back = tmp.path().join("back");
    assert_eq!(sv.restore("latest", &back).code, Some(0));
    assert_same_tree(&src, &back.join("src"));
}

/// A group `parity set` keeps because a member is damaged beyond what its parity rebuilds,
/// the member still present: the line saying so names the command that resolves it in that
/// state (`repair --apply --forget-damaged`; before, every kept group was said to be
/// mended by `repair --apply`), and that command, run as the line names it, lets the next
/// `parity set` rebuild every group and the repository check clean.
#[test]
fn a_group_kept_for_a_member_beyond_parity_names_the_command_that_resolves_it() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    for i in 0..2 {
        write_random(&src.join(format!("DCIM/CLIP_{i}.MOV")), 40 + i, 5 << 20);
    }
    let sv = init_with_parity(&tmp.path().join("repo"), "5");
    sv.snapshot(&[&src], &[]);
    let groups = live_groups(&sv.repo);
    let (l, i, m) = groups
        .iter()
        .flat_map(|l| {
            l.header
                .members
                .iter()
                .enumerate()
                .filter(|(_, m)| m.kind == MemberKind::Pack)
                .map(move |(i, m)| (l, i, m))
        })
        .max_by_key(|(_, _, m)| m.size)
        .expect("a pack in a group");
    // One flipped byte in the pack and in every recovery shard of its band: beyond parity.
    let path = member_path(&sv.repo, m.kind, &m.name);
    let row = l.header.band_range(0, i).start as usize;
    let mut b = std::fs::read(&path).unwrap();
    b[row * 4096 + 100] ^= 0x01;
    std::fs::write(&path, b).unwrap();
    let parity = sv.repo.join("parity").join(&l.name);
    let mut p = std::fs::read(&parity).unwrap();
    for j in 0..l.header.bands[0].recovery_hashes.len() {
        p[l.data_at as usize + j * 4096 + 7] ^= 0x01;
    }
    std::fs::write(&parity, p).unwrap();

    let out = sv.run(&["parity", "set", "10"]);
    let line = out
        .stderr
        .lines()
        .find(|s| s.contains(&l.name[..8]) && s.contains("kept"))
        .unwrap_or_else(|| panic!("no line on the kept group {}:\n{out}", &l.name[..8]))
        .to_string();
    assert!(line.contains(&format!("pack {}", &m.name[..8])), "{line}");
    assert!(line.contains("beyond what parity rebuilds"), "{line}");
    let command = line
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command named: {line}"));
    let args: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(args.first(), Some(&"snapvault"), "{line}");
    let hint = sv.run(&args[1..]);
    assert_eq!(hint.code, Some(0), "{line}\n{hint}");

    let again = sv.run(&["parity", "set", "10"]);
    assert_eq!(again.code, Some(0), "{again}");
    assert!(
        !again.stderr.contains("kept"),
        "a group is still kept after `{command}`:\n{again}\n{hint}"
    );
    let check = sv.run(&["check", "--read-data"]);
    assert_eq!(check.code, Some(0), "{check}\n{hint}");
    assert_covered(&sv.repo, 10);
}
