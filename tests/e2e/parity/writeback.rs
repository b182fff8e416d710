//! What `repair --apply` leaves of parity beside its own writes: a file rebuilt from parity
//! keeps its group (it has the bytes and name the group recorded).

use std::path::Path;

use snapvault_repo::parity::MemberKind;

use crate::common::*;
use crate::parity::{assert_covered, check_json, init_with_parity, live_groups};

/// How many groups in force name each pack.
fn groups_per_pack(repo: &Path) -> Vec<(String, usize)> {
    let groups = live_groups(repo);
    let mut out: Vec<(String, usize)> = pack_files(repo)
        .into_iter()
        .map(|(p, _)| {
            let n = groups
                .iter()
                .filter(|l| {
                    l.header
                        .members
                        .iter()
                        .any(|m| m.kind == MemberKind::Pack && m.name == p)
                })
                .count();
            (p, n)
        })
        .collect();
    out.sort();
    out
}

/// A lost pack rebuilt from parity is put back under its name with its bytes: its old
/// group still covers it. Before, the write-back went through the parity stream as a new
/// pack, so a second group of that one pack was written (a full 16 MiB copy of it, the
/// pack named by two groups).
#[test]
fn a_pack_rebuilt_from_parity_stays_in_its_group_alone() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    for i in 0..3 {
        write_random(&src.join(format!("DCIM/CLIP_{i}.MOV")), 60 + i, 6 << 20);
    }
    let sv = init_with_parity(&tmp.path().join("repo"), "10");
    sv.snapshot(&[&src], &[]);
    let before = live_groups(&sv.repo);
    let packs = pack_files(&sv.repo);
    assert!(packs.len() >= 2, "{packs:?}");
    let parity_bytes = |repo: &Path| -> u64 {
        names_in(repo, "parity")
            .iter()
            .map(|n| {
                std::fs::metadata(repo.join("parity").join(n))
                    .unwrap()
                    .len()
            })
            .sum()
    };
    let bytes_before = parity_bytes(&sv.repo);
    let (lost, path) = &packs[0];
    let original = std::fs::read(path).unwrap();
    std::fs::remove_file(path).unwrap();

    let out = sv.ok(&["repair", "--apply"]);
    assert_mentions(&out, &format!("repaired from parity: pack {lost}"));
    assert_eq!(std::fs::read(path).unwrap(), original, "{out}");
    for (p, n) in groups_per_pack(&sv.repo) {
        assert_eq!(n, 1, "pack {p} is named by {n} groups in force\n{out}");
    }
    let after = live_groups(&sv.repo);
    let names_of = |v: &[snapvault_repo::parity::store::Loaded]| {
        let mut n: Vec<String> = v.iter().map(|l| l.name.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(
        names_of(&after),
        names_of(&before),
        "no parity file changes\n{out}"
    );
    assert_eq!(parity_bytes(&sv.repo), bytes_before, "{out}");
    let (code, v) = check_json(&sv);
    assert_eq!(code, Some(0), "{v}");
    assert_covered(&sv.repo, 10);
}
