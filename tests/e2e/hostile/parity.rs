//! Session 11's hostile tests of parity: damage beyond what it promises must end, once the
//! user accepts the loss, in a repository that checks clean — not in a loop of commands
//! each pointing at the next.

use std::fs;

use crate::common::*;

/// One snapshot of 60 MB: four packs, one short parity group at 5 % (R_b = w: it survives
/// one whole pack, nothing more in the same bands). The largest pack is deleted and one
/// byte of the next largest flipped in its second sector (band 0, where the lost pack has
/// rows too): both beyond parity, as format.md §15.2 (b) says. `repair --apply
/// --forget-damaged` copies the damaged pack's intact blobs out and "removes" it, the
/// snapshot losing the files of both packs. Found: the removal is deferred to the parity
/// guard (parity/guard.rs, `Guard::flush`), which refuses to rebuild a group with a member
/// "damaged or missing" — and the lost pack stays missing for ever. So the pack is never
/// removed although repair says "1 pack(s) removed"; every repair, prune and `parity set`
/// after ends with exit 1, "removing packs was left as it is: pack …, in the same parity
/// group, is damaged or missing" and the hint to run `repair --apply` (the command that
/// just failed); `check --read-data` keeps exit 4 naming the removed-in-intent pack "lost"
/// and "not in any index (left by an interrupted run)". There is no way back to a clean
/// repository.
#[test]
#[ignore = "parity guard (paritysize/paritytime area): a group with a member lost beyond \
            parity blocks the removal of its damaged packs for ever; repair/prune/check loop"]
fn a_damaged_pack_beside_a_lost_one_is_given_up_and_the_repository_checks_clean() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    for i in 0..3 {
        write_random(&src.join(format!("DCIM/IMG_{i}.MOV")), 10 + i, 20 << 20);
    }
    write_random(&src.join("DCIM/IMG_9.JPG"), 9, 300_000);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.ok(&["parity", "set", "5"]);
    sv.snapshot(&[&src], &[]);
    let mut packs = pack_files(&sv.repo);
    packs.sort_by_key(|(_, p)| std::cmp::Reverse(fs::metadata(p).unwrap().len()));
    assert!(packs.len() >= 3, "{packs:?}");
    fs::remove_file(&packs[0].1).unwrap();
    let mut bytes = fs::read(&packs[1].1).unwrap();
    bytes[5000] ^= 0xff;
    fs::write(&packs[1].1, &bytes).unwrap();

    let out = sv.run(&["repair", "--apply", "--forget-damaged"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        !packs[1].1.exists(),
        "repair said it removed the damaged pack, but it is there\n{out}"
    );
    let out = sv.run(&["check", "--read-data"]);
    assert_eq!(out.code, Some(0), "{out}");
    let out = sv.run(&["prune"]);
    assert_eq!(out.code, Some(0), "{out}");
}
