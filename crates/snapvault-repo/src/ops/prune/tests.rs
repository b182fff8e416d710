//! Prune's tests, and the fixture forget's and copy's tests share: a repository with
//! forgotten snapshots, a blob stored twice and a pack no index names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::classify::verify_copy;
use super::limits::parse_size;
use super::*;
use crate::format::blob::{self, BlobType};
use crate::format::pack::PackWriter;
use crate::ops::observe::NoHooks;
use crate::ops::test_support::*;
use crate::repository::index::{IndexFile, IndexedPack};
use crate::storage::faulty::{Effect, FaultyBackend, Op};
use crate::storage::{Backend, LocalBackend};

pub(crate) struct Fixture {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    /// The snapshots that remain, with their content.
    pub kept: Vec<(SnapshotId, BTreeMap<String, Vec<u8>>)>,
}

/// Four snapshots of a changing photo folder; the first two are forgotten. The repository
/// also holds a blob stored twice and a pack no index names.
pub(crate) fn fixture(encrypted: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let src = dir.path().join("lib");
    std::fs::create_dir_all(&src).unwrap();
    create_small_repo(&root, encrypted);
    let repo = open(&root);
    for i in 0..40 {
        photo(&src, i);
    }
    std::fs::write(src.join("notes.txt"), b"first").unwrap();
    let s1 = snapshot(&repo, &src, &["a"]);
    for i in 0..10 {
        unphoto(&src, i);
    }
    for i in 40..50 {
        photo(&src, i);
    }
    let s2 = snapshot(&repo, &src, &[]);
    for i in 10..20 {
        unphoto(&src, i);
    }
    for i in 50..60 {
        photo(&src, i);
    }
    let s3 = snapshot(&repo, &src, &[]);
    for i in 60..65 {
        photo(&src, i);
    }
    std::fs::write(src.join("notes.txt"), b"second, longer").unwrap();
    let s4 = snapshot(&repo, &src, &["b"]);
    for s in [&s1, &s2] {
        repo.backend()
            .remove(FileKind::Snapshot, &s.0.to_hex())
            .unwrap();
    }
    // A used blob stored a second time (as two concurrent snapshots would).
    let index = repo.load_index().unwrap().index;
    let snap = repo.load_snapshot(&s4.0).unwrap();
    let root_tree = repo.load_tree(&index, &snap.tree).unwrap();
    let lib = repo
        .load_tree(&index, &root_tree.nodes[0].subtree.unwrap())
        .unwrap();
    let blob_id = lib.nodes.last().unwrap().content[0];
    let plain = repo.read_blob(&index, &blob_id).unwrap();
    let mut w = PackWriter::default();
    w.add(&blob::encode(
        repo.crypto(),
        blob_id,
        BlobType::Data,
        &plain,
        blob::Compression::Never,
    ));
    let (pid, bytes, entries) = w.finish(repo.crypto());
    repo.backend()
        .write(FileKind::Pack, &pid.to_hex(), &bytes)
        .unwrap();
    repo.save_index(&IndexFile {
        supersedes: vec![],
        packs: vec![IndexedPack {
            id: pid,
            size: bytes.len() as u64,
            blobs: entries,
        }],
    })
    .unwrap();
    // A pack no index names (an interrupted snapshot's).
    let junk = noise(999, 5000);
    let mut w = PackWriter::default();
    w.add(&blob::encode(
        repo.crypto(),
        repo.crypto().blob_id(&junk),
        BlobType::Data,
        &junk,
        blob::Compression::Never,
    ));
    let (pid, bytes, _) = w.finish(repo.crypto());
    repo.backend()
        .write(FileKind::Pack, &pid.to_hex(), &bytes)
        .unwrap();
    Fixture {
        repo: root,
        kept: vec![s3, s4],
        dir,
    }
}

pub(crate) fn quick() -> PruneOptions {
    PruneOptions {
        max_unused: MaxUnused::Percent(5.0),
        max_repack: None,
        unindexed_min_age: 0,
    }
}

pub(crate) fn prune(repo: &Repository, opts: &PruneOptions) -> Result<(PruneStats, PruneReport)> {
    let _lock = repo.lock(true, "prune")?;
    let p = plan(repo, opts, &HashSet::new(), &NoHooks)?;
    let stats = p.stats.clone();
    let r = execute(repo, p, &NoHooks)?;
    Ok((stats, r))
}

fn pack_bytes(root: &Path) -> u64 {
    LocalBackend::new(root)
        .list(FileKind::Pack)
        .unwrap()
        .iter()
        .map(|f| f.size)
        .sum()
}

#[test]
fn prune_frees_space_and_keeps_everything_needed() {
    let fx = fixture(true);
    let before = pack_bytes(&fx.repo);
    let repo = open(&fx.repo);
    let (st, r) = prune(&repo, &quick()).unwrap();
    assert_eq!(st.snapshots, 2);
    assert!(st.remove_packs + st.repack_packs > 0, "{st:?}");
    assert_eq!(st.duplicate_blobs, 1, "{st:?}");
    assert_eq!(st.unindexed_packs, 1);
    assert_eq!(st.unindexed_remove_packs, 1);
    assert!(st.unused_after_bytes <= st.max_unused_bytes, "{st:?}");
    assert!(r.damaged_packs_kept.is_empty());
    assert_eq!(r.index_files_removed, st.index_files);
    let after = pack_bytes(&fx.repo);
    assert_eq!(before as i64 - after as i64, r.bytes_freed);
    // Photos 0..20 (≈ 1.9 MB of the ≈ 6 MB) are gone: the space shrank at least by that,
    // less the 5% allowance.
    let removed: u64 = (0..20).map(|i| 30_000 + (i as u64 * 7919) % 120_000).sum();
    assert!(
        before - after + st.max_unused_bytes >= removed,
        "freed {} of {removed}",
        before - after
    );
    verify(&fx.repo, &fx.kept, "after prune");
    // A second prune has nothing to do.
    let (st2, r2) = prune(&open(&fx.repo), &quick()).unwrap();
    assert_eq!(
        (st2.remove_packs, st2.repack_packs, st2.unindexed_packs),
        (0, 0, 0),
        "{st2:?}"
    );
    assert_eq!(st2.duplicate_blobs, 0);
    assert_eq!(r2.bytes_freed, 0);
    assert_eq!(st2.unused_bytes, st.unused_after_bytes);
}

#[test]
fn max_unused_and_max_repack_bound_the_work() {
    let fx = fixture(false);
    let repo = open(&fx.repo);
    let none = HashSet::new();
    let unlimited = PruneOptions {
        max_unused: MaxUnused::Unlimited,
        ..quick()
    };
    let p = plan(&repo, &unlimited, &none, &NoHooks).unwrap();
    // Only tree packs are repacked when unused space is unlimited.
    for (id, action, _, _) in p.pack_actions() {
        if action == Action::Repack {
            let pos = p.pos_of[&id] as usize;
            assert!(p.packs[pos].has_tree);
        }
    }
    let all = plan(
        &repo,
        &PruneOptions {
            max_unused: MaxUnused::Bytes(0),
            ..quick()
        },
        &none,
        &NoHooks,
    )
    .unwrap();
    assert_eq!(all.stats.unused_after_bytes, 0, "{:?}", all.stats);
    let capped = plan(
        &repo,
        &PruneOptions {
            max_unused: MaxUnused::Bytes(0),
            max_repack: Some(1),
            ..quick()
        },
        &none,
        &NoHooks,
    )
    .unwrap();
    assert_eq!(capped.stats.repack_packs, 0);
    assert!(capped.stats.unused_after_bytes > 0);
    // Ignoring the kept snapshots (as forget --prune --dry-run does) frees everything.
    let ignore: HashSet<SnapshotId> = fx.kept.iter().map(|(id, _)| *id).collect();
    let gone = plan(&repo, &quick(), &ignore, &NoHooks).unwrap();
    assert_eq!(gone.stats.used_blobs, 0);
    assert_eq!(gone.stats.keep_packs, 0);
    // Plans change nothing.
    verify(&fx.repo, &fx.kept, "after planning");
}

#[test]
fn refuses_when_a_snapshot_is_unreadable_or_data_missing() {
    let fx = fixture(true);
    let be = LocalBackend::new(&fx.repo);
    be.write(FileKind::Snapshot, &"ab".repeat(32), b"garbage")
        .unwrap();
    let repo = open(&fx.repo);
    let e = prune(&repo, &quick()).unwrap_err().to_string();
    assert!(
        e.contains("cannot be read") && e.contains("changed nothing"),
        "{e}"
    );
    be.remove(FileKind::Snapshot, &"ab".repeat(32)).unwrap();
    // An index file gone: used blobs are missing from the index.
    let idx = be.list(FileKind::Index).unwrap();
    let biggest = idx.iter().max_by_key(|f| f.size).unwrap();
    let saved = be.read(FileKind::Index, &biggest.name).unwrap();
    be.remove(FileKind::Index, &biggest.name).unwrap();
    let before = be.list(FileKind::Pack).unwrap();
    let e = prune(&repo, &quick()).unwrap_err().to_string();
    assert!(
        e.contains("not in the index") || e.contains("cannot be read"),
        "{e}"
    );
    assert_eq!(be.list(FileKind::Pack).unwrap(), before);
    be.write(FileKind::Index, &biggest.name, &saved).unwrap();
    verify(&fx.repo, &fx.kept, "after refusals");
}

#[test]
fn a_damaged_copy_never_wins_over_a_good_duplicate() {
    let fx = fixture(true);
    let repo = open(&fx.repo);
    let index = repo.load_index().unwrap().index;
    let (dup_id, dup_loc) = index.duplicates()[0];
    let primary = *index.get(&dup_id).unwrap();
    // Damage the primary copy in place (packs are 0600; tests may write them).
    let pack = index.pack_of(&primary).to_hex();
    let path = fx.repo.join("data").join(&pack[..2]).join(&pack);
    let mut b = std::fs::read(&path).unwrap();
    b[primary.offset as usize + 30] ^= 0x55;
    std::fs::write(&path, &b).unwrap();
    let _ = dup_loc;
    let p = plan(
        &repo,
        &PruneOptions {
            max_unused: MaxUnused::Bytes(0),
            ..quick()
        },
        &HashSet::new(),
        &NoHooks,
    )
    .unwrap();
    let damaged_pack = index.pack_of(&primary);
    let r = execute(&repo, p, &NoHooks).unwrap();
    // The damaged pack was either kept as is (had to be repacked) or removed; the good
    // copy survives and everything restores.
    let _ = (r, damaged_pack);
    let repo = open(&fx.repo);
    let index = repo.load_index().unwrap().index;
    let loc = index.get(&dup_id).unwrap();
    assert!(
        verify_copy(&repo, &index, &dup_id, loc)
            || index
                .duplicates()
                .iter()
                .any(|(i, l)| *i == dup_id && verify_copy(&repo, &index, i, l))
    );
}

/// Run prune with the fault at every watched operation (stepping by `step`) and check
/// the repository after each crash, then that a re-run completes.
fn crash_everywhere(encrypted: bool, ops: &[Op], effects: &[Effect], step: u64) {
    let fx = fixture(encrypted);
    let clean = fx.dir.path().join("clean");
    copy_dir(&fx.repo, &clean);
    let counter = Arc::new(FaultyBackend::new(Arc::new(LocalBackend::new(&clean))).watching(ops));
    prune(&open_with(counter.clone()), &quick()).unwrap();
    let total = counter.count();
    assert!(total >= 2, "{total} operations");
    let mut runs = 0;
    for &effect in effects {
        let mut n = 1;
        while n <= total {
            let root = fx.dir.path().join(format!("crash-{effect:?}-{n}"));
            copy_dir(&fx.repo, &root);
            let f = Arc::new(
                FaultyBackend::new(Arc::new(LocalBackend::new(&root)))
                    .watching(ops)
                    .fail_at(n, effect),
            );
            let what = format!("{ops:?} #{n}/{total} {effect:?}");
            let res = Repository::open(f.clone(), || Ok(PASSWORD.to_vec()))
                .and_then(|repo| prune(&repo, &quick()));
            assert!(
                res.is_err() && f.fired(),
                "{what}: prune did not fail: {res:?}"
            );
            verify(&root, &fx.kept, &format!("{what}, after the crash"));
            let (_, _) =
                prune(&open(&root), &quick()).unwrap_or_else(|e| panic!("{what}: re-run: {e}"));
            verify(&root, &fx.kept, &format!("{what}, after the re-run"));
            let st = plan(&open(&root), &quick(), &HashSet::new(), &NoHooks)
                .unwrap()
                .stats;
            assert!(
                st.remove_packs == 0
                    && st.unindexed_packs == 0
                    && st.unused_bytes <= st.max_unused_bytes,
                "{what}: the re-run left work: {st:?}"
            );
            std::fs::remove_dir_all(&root).unwrap();
            runs += 1;
            n += step;
        }
    }
    assert!(runs > 0);
}

#[test]
fn crash_at_every_write_and_remove() {
    crash_everywhere(
        true,
        &[Op::Write, Op::Remove],
        &[Effect::FailBefore, Effect::FailAfter],
        1,
    );
}

#[test]
fn crash_at_every_write_unencrypted() {
    // Unencrypted packs are deterministic: the re-run writes identical files again.
    crash_everywhere(false, &[Op::Write, Op::Remove], &[Effect::FailAfter], 1);
}

#[test]
fn crash_at_reads_and_lists() {
    crash_everywhere(true, &[Op::Read, Op::List], &[Effect::FailBefore], 7);
}

#[test]
fn parsers() {
    assert_eq!(parse_size("1024"), Ok(1024));
    assert_eq!(parse_size("2K"), Ok(2048));
    assert_eq!(parse_size("1.5MiB"), Ok(3 << 19));
    assert_eq!(parse_size("1g"), Ok(1 << 30));
    assert!(parse_size("1x").is_err() && parse_size("").is_err() && parse_size("-1M").is_err());
    assert_eq!("5%".parse::<MaxUnused>(), Ok(MaxUnused::Percent(5.0)));
    assert_eq!("unlimited".parse::<MaxUnused>(), Ok(MaxUnused::Unlimited));
    assert_eq!("200M".parse::<MaxUnused>(), Ok(MaxUnused::Bytes(200 << 20)));
    assert!("101%".parse::<MaxUnused>().is_err());
    assert_eq!(parse_max_repack("unlimited"), Ok(None));
    assert_eq!(parse_max_repack("1G"), Ok(Some(1 << 30)));
    assert_eq!(parse_age("1h30m"), Ok(5400));
    assert_eq!(parse_age("0"), Ok(0));
    assert_eq!(parse_age("2d"), Ok(172_800));
    assert!(parse_age("1").is_err() && parse_age("h").is_err() && parse_age("").is_err());
}
