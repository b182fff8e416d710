//! `check --read-data` with parity reads each pack once (issue 21): the parity pass is told
//! which packs the checker has just read whole and found intact, and reads only the parity
//! files, and packs only where a band has damage to rebuild.

use std::collections::HashSet;
use std::sync::Arc;

use crate::format::id::PackId;
use crate::ops::test_support::{create_small_repo, noise_library, open_with, snapshot};
use crate::parity::guard::Guard;
use crate::parity::store::{self, Changes};
use crate::storage::faulty::{FaultyBackend, Op};
use crate::storage::{Backend, FileKind, LocalBackend};
use crate::testing::check_all;

/// A repository of a few 1 MiB packs with 5 % parity; returns the temp dir and its root.
fn repo_with_parity() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    create_small_repo(&root, true);
    let lib = noise_library(dir.path(), 6, 700_000);
    let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(&root));
    snapshot(&open_with(be.clone()), &lib, &[]);
    let r = store::sync(be.as_ref(), 5, &Changes::default(), &mut |_| {}).unwrap();
    assert!(
        r.groups_written >= 2,
        "packs and metadata are covered: {r:?}"
    );
    (dir, root)
}

/// Run check (read every pack) and then the parity pass over every group with the packs it
/// found intact; returns (pack reads by check, pack reads by the parity pass, reports clean).
fn check_and_verify(root: &std::path::Path, tell: bool) -> (u64, u64, bool) {
    let counting = Arc::new(
        FaultyBackend::new(Arc::new(LocalBackend::new(root)))
            .watching(&[Op::Read])
            .kinds(&[FileKind::Pack]),
    );
    let repo = open_with(counting.clone() as Arc<dyn Backend>);
    let start = counting.count();
    let report = check_all(&repo).unwrap();
    let by_check = counting.count() - start;
    let intact: HashSet<String> = if tell {
        report
            .verified
            .iter()
            .filter(|p| !report.damaged_packs.contains(p))
            .map(PackId::to_hex)
            .collect()
    } else {
        HashSet::new()
    };
    let be = counting.as_ref() as &dyn Backend;
    let files = store::current_files(be).unwrap();
    let (live, _) = store::live(store::load(be).unwrap().0);
    let before = counting.count();
    let mut clean = true;
    for l in &live {
        let r = store::verify_group_after(be, l, &files, &intact).unwrap();
        clean &= r.is_clean();
    }
    (by_check, counting.count() - before, clean)
}

#[test]
fn parity_pass_reads_no_pack_check_found_intact() {
    let (_dir, root) = repo_with_parity();
    let packs = std::fs::read_dir(root.join("data"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .count() as u64;
    assert!(packs >= 3, "the test data should span several packs");
    // Not told (what check did before): every pack is read a second time, by band.
    let (_, again, clean) = check_and_verify(&root, false);
    assert!(clean);
    assert!(again >= packs, "{again} pack reads for {packs} packs");
    // Told: the parity pass reads no pack at all.
    let (by_check, again, clean) = check_and_verify(&root, true);
    assert!(clean);
    assert!(by_check >= packs);
    assert_eq!(again, 0, "the parity pass read packs check had read");
}

#[test]
fn a_damaged_pack_is_still_found_and_rebuilt_when_the_rest_are_known() {
    let (_dir, root) = repo_with_parity();
    let pack = std::fs::read_dir(root.join("data"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[5000] ^= 0x40;
    std::fs::write(&pack, &bytes).unwrap();
    let (_, again, clean) = check_and_verify(&root, true);
    assert!(!clean, "the flipped byte is found");
    assert!(again > 0, "the damaged band reads its packs to decode");
    let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(&root));
    let files = store::current_files(be.as_ref()).unwrap();
    let (live, _) = store::live(store::load(be.as_ref()).unwrap().0);
    let name = pack.file_name().unwrap().to_str().unwrap().to_string();
    let others: HashSet<String> = files
        .keys()
        .filter(|(k, n)| *k == crate::parity::MemberKind::Pack && *n != name)
        .map(|(_, n)| n.clone())
        .collect();
    let l = live
        .iter()
        .find(|l| l.header.members.iter().any(|m| m.name == name))
        .unwrap();
    let r = store::verify_group_after(be.as_ref(), l, &files, &others).unwrap();
    let i = l
        .header
        .members
        .iter()
        .position(|m| m.name == name)
        .unwrap();
    assert!(matches!(
        &r.members[i],
        crate::parity::MemberState::Repaired { damaged_shards: 1, bytes: b } if {
            let mut good = bytes.clone();
            good[5000] ^= 0x40;
            *b == good
        }
    ));
}

/// A snapshot of 14 × 700 kB through a parity guard at 50 % (groups of 2 packs, so the
/// snapshot's 1 MiB packs fill groups while it runs), reads of `kind` counted; returns the
/// temp dir, the counter, the guard and the reads counted before the snapshot.
fn streamed_snapshot(kind: FileKind) -> (tempfile::TempDir, Arc<FaultyBackend>, Arc<Guard>, u64) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    create_small_repo(&root, true);
    let lib = noise_library(dir.path(), 14, 700_000);
    let counting = Arc::new(
        FaultyBackend::new(Arc::new(LocalBackend::new(&root)))
            .watching(&[Op::Read])
            .kinds(&[kind]),
    );
    let guard = Arc::new(Guard::new(
        counting.clone() as Arc<dyn Backend>,
        50,
        1 << 20,
    ));
    let before = counting.count();
    snapshot(&open_with(guard.clone() as Arc<dyn Backend>), &lib, &[]);
    (dir, counting, guard, before)
}

/// The parity files in force cover every file of the repository and verify clean; returns
/// them.
fn assert_every_file_covered(be: &dyn Backend) -> Vec<store::Loaded> {
    let files = store::current_files(be).unwrap();
    let (live, _) = store::live(store::load(be).unwrap().0);
    let mut covered = HashSet::new();
    for l in &live {
        covered.extend(l.header.members.iter().map(|m| (m.kind, m.name.clone())));
        assert!(store::verify_group(be, l, &files).unwrap().is_clean());
    }
    assert!(
        files.keys().all(|f| covered.contains(f)),
        "every file covered"
    );
    live
}

#[test]
fn parity_of_new_packs_is_computed_without_reading_them_back() {
    let (_dir, counting, guard, start) = streamed_snapshot(FileKind::Pack);
    let be = counting.as_ref() as &dyn Backend;
    let during = store::load(be).unwrap().0.len();
    assert!(
        during >= 1,
        "full groups are covered while the snapshot runs"
    );
    guard.finish_stream().unwrap();
    store::sync(be, 50, &Changes::default(), &mut |_| {}).unwrap();
    assert_eq!(counting.count() - start, 0, "no pack was read back");
    // Every file is covered, pack groups have K to 4K - 1 members (complete at K or more,
    // at most 2K, an incomplete tail of fewer joined), all verify clean.
    for l in &assert_every_file_covered(be) {
        let packs = l
            .header
            .members
            .iter()
            .filter(|m| m.kind == crate::parity::MemberKind::Pack)
            .count();
        assert!(
            packs == 0 || (2..=7).contains(&packs),
            "{packs} packs in a group"
        );
    }
}

/// The parity update after a snapshot takes the headers of the files the stream wrote from
/// the guard, which computed them, instead of reading them back from the disk (written with
/// direct I/O, they are not in the page cache) while the command waits. Before, it read
/// every parity file's header: here, with no other parity, reads > 0.
#[test]
fn the_update_after_a_snapshot_reads_no_parity_file_the_stream_wrote() {
    let (_dir, counting, guard, _) = streamed_snapshot(FileKind::Parity);
    guard.finish_stream().unwrap();
    let be = counting.as_ref() as &dyn Backend;
    let streamed = guard.take_streamed();
    assert!(streamed.len() >= 2, "the stream wrote the packs' groups");
    let names = |v: Vec<String>| {
        let mut v = v;
        v.sort();
        v
    };
    assert_eq!(
        names(
            be.list(FileKind::Parity)
                .unwrap()
                .into_iter()
                .map(|f| f.name)
                .collect()
        ),
        names(streamed.iter().map(|l| l.name.clone()).collect()),
        "no parity but the stream's before the update"
    );
    let start = counting.count();
    let r = store::sync_known(be, 50, &Changes::default(), streamed, &mut |_| {}).unwrap();
    assert_eq!(counting.count() - start, 0, "no parity file read back");
    assert_eq!(
        r.groups_written, 2,
        "the index and snapshot files; the config and key files"
    );
    // What it wrote is what a fresh look finds in force: every file covered, clean.
    assert_every_file_covered(be);
}
