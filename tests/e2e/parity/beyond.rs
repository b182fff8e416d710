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
