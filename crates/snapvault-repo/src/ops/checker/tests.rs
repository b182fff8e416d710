//! `check` under read errors (issue 25.4): an object that cannot be read is "not checked",
//! never damage — no error, no damaged file, no blob or pack marked bad.

use std::sync::Arc;

use super::*;
use crate::ops::observe::NoHooks;
use crate::ops::survey::tests::repo_with_packs;
use crate::ops::test_support::{open, open_with};
use crate::storage::faulty::{Effect, FaultyBackend, Op};
use crate::storage::{Backend, LocalBackend};

fn options() -> CheckOptions {
    CheckOptions {
        read_data: ReadData::All,
        threads: 3,
        last_verified: Default::default(),
        earlier_copies: Vec::new(),
        earlier_packs: Vec::new(),
    }
}

fn assert_no_damage(r: &CheckReport, what: &str) {
    assert_eq!(r.errors(), 0, "{what}: {:?}", r.problems);
    assert!(r.damaged_files.is_empty(), "{what}: {:?}", r.damaged_files);
    assert!(r.bad_blobs.is_empty(), "{what}");
    assert!(r.bad_copies.is_empty(), "{what}");
    assert!(r.damaged_packs.is_empty(), "{what}");
    assert!(r.missing_blobs.is_empty(), "{what}");
}

#[test]
fn packs_that_cannot_be_read_are_not_checked_not_damaged() {
    let (_dir, root) = repo_with_packs();
    let clean = check(&open(&root), &options(), &NoHooks).unwrap();
    assert_no_damage(&clean, "no fault");
    assert!(clean.complete());
    // Every read of a pack fails from the first one on: a server gone.
    let gone = Arc::new(
        FaultyBackend::new(Arc::new(LocalBackend::new(&root)))
            .watching(&[Op::Read])
            .kinds(&[FileKind::Pack])
            .fail_at(1, Effect::ErrnoFromThenOn(libc::EIO)),
    );
    let r = check(&open_with(gone as Arc<dyn Backend>), &options(), &NoHooks).unwrap();
    assert_no_damage(&r, "server gone");
    assert!(!r.complete());
    assert!(r.verified.is_empty());
    assert_eq!(r.unread_packs.len(), clean.packs);
    assert!(r.files_not_checked > 0);
    assert!(
        r.not_checked
            .iter()
            .all(|n| n.message.contains("Input/output error")),
        "{:?}",
        r.not_checked
    );
}

#[test]
fn each_failed_read_is_not_checked_not_damaged() {
    let (_dir, root) = repo_with_packs();
    let mut n = 1;
    loop {
        let eio = Arc::new(
            FaultyBackend::new(Arc::new(LocalBackend::new(&root)))
                .watching(&[Op::Read])
                .kinds(&[FileKind::Pack, FileKind::Index, FileKind::Snapshot])
                .fail_at(n, Effect::Errno(libc::EIO)),
        );
        let r = check(
            &open_with(eio.clone() as Arc<dyn Backend>),
            &options(),
            &NoHooks,
        )
        .unwrap();
        if !eio.fired() {
            break;
        }
        assert_no_damage(&r, &format!("read {n}"));
        assert!(!r.complete(), "read {n} failed unreported");
        n += 1;
    }
    assert!(n > 10, "only {n} reads");
}

/// Snapshots that share their trees cost one load per distinct tree, not one per snapshot.
#[test]
fn check_loads_each_tree_once() {
    use crate::format::tree::Tree;
    use crate::ops::test_support::{create_small_repo, photo, snapshot};
    use crate::repository::walk::{self, TreeWalker, Visitor};

    let dir = tempfile::tempdir().unwrap();
    let (root, src) = (dir.path().join("repo"), dir.path().join("lib"));
    std::fs::create_dir_all(src.join("a/b")).unwrap();
    create_small_repo(&root, true);
    let repo = open(&root);
    for i in 0..3 {
        photo(&src, i);
        photo(&src.join("a/b"), 10 + i);
    }
    for _ in 0..3 {
        snapshot(&repo, &src, &[]);
    }
    photo(&src.join("a"), 20);
    snapshot(&repo, &src, &[]);

    struct Count;
    impl Visitor for Count {
        fn tree(&mut self, _: &BlobId, _: &[u8], _: &Tree) -> Result<bool> {
            Ok(true)
        }
        fn unreadable(&mut self, _: &BlobId, _: &[u8], e: RepoError) -> Result<()> {
            Err(e)
        }
    }
    let index = repo.load_index().unwrap().index;
    let (snaps, _) = repo.snapshots().unwrap();
    assert_eq!(snaps.len(), 4);
    let mut w = TreeWalker::new(&repo, &index);
    for (_, s) in &snaps {
        w.walk(s.tree, &mut Count).unwrap();
    }
    // root, lib, a, b; then a new root, lib and a (b is shared).
    let distinct = w.visited() as u64;
    assert_eq!(distinct, 7);
    assert_eq!(w.loads(), distinct);

    let before = walk::loads_on_this_thread();
    let opts = CheckOptions {
        read_data: ReadData::None,
        ..options()
    };
    let r = check(&repo, &opts, &NoHooks).unwrap();
    assert_no_damage(&r, "four snapshots");
    assert_eq!(walk::loads_on_this_thread() - before, distinct);
}

/// A damaged file in a listing shared by two folders is named under both paths (and in
/// each snapshot holding it); a listing that cannot be read is reported once per snapshot
/// and the walk goes on past it.
#[test]
fn damaged_files_are_named_under_every_path() {
    use crate::testing::create_small_repo;
    use crate::testing::trees::{Crafter, dir, file, save_snapshot};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    create_small_repo(&root, true);
    let repo = open(&root);
    let c = Crafter::new(&repo);
    // A chunk no index lists: the file is damaged.
    let lost = file(
        "lost.jpg",
        vec![BlobId(crate::format::id::Id::random())],
        10,
    );
    let shared = c.tree(vec![lost, c.file("fine.jpg", b"fine")]);
    let b = c.tree(vec![dir("c", shared)]);
    let top = c.tree(vec![
        dir("a", shared),
        dir("b", b),
        dir("gone", BlobId::default()),
    ]);
    let other = c.tree(vec![dir("z", shared)]);
    c.finish();
    let s1 = save_snapshot(&repo, top, 1_700_000_000);
    let s2 = save_snapshot(&repo, other, 1_700_000_100);
    let opts = CheckOptions {
        read_data: ReadData::None,
        ..options()
    };
    let r = check(&repo, &opts, &NoHooks).unwrap();
    let named: Vec<(&str, Vec<SnapshotId>)> = r
        .damaged_files
        .iter()
        .map(|d| (d.path.as_str(), d.snapshots.clone()))
        .collect();
    assert_eq!(
        named,
        [
            ("a/lost.jpg", vec![s1]),
            ("b/c/lost.jpg", vec![s1]),
            ("z/lost.jpg", vec![s2]),
        ]
    );
    let gone: Vec<&Problem> = r
        .problems
        .iter()
        .filter(|p| p.message.contains("tree of gone cannot be read"))
        .collect();
    assert_eq!(gone.len(), 1, "{:?}", r.problems);
}

/// error.rs rule 3: a problem names the step that mends it as a [`Remedy`], and its message
/// names no command (the CLI adds the command).
#[test]
fn problems_carry_a_remedy_and_name_no_command() {
    let (_dir, root) = repo_with_packs();
    let repo = open(&root);
    let index = root.join("index");
    let first = std::fs::read_dir(&index).unwrap().next().unwrap().unwrap();
    let mut bytes = std::fs::read(first.path()).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(first.path(), bytes).unwrap();
    let mut opts = options();
    opts.read_data = ReadData::None;
    // Every pack, not one: the flipped index file may be the one that names a given pack,
    // and a pack no readable index names is not reported as earlier damage.
    opts.earlier_packs = repo
        .backend()
        .list(FileKind::Pack)
        .unwrap()
        .iter()
        .map(|f| f.name.parse().unwrap())
        .collect();
    let r = check(&repo, &opts, &NoHooks).unwrap();
    let remedies: Vec<_> = r.problems.iter().filter_map(|p| p.remedy).collect();
    assert!(remedies.contains(&Remedy::RebuildIndex), "{:?}", r.problems);
    assert!(
        remedies.contains(&Remedy::RepairOrReread),
        "{:?}",
        r.problems
    );
    for p in &r.problems {
        assert!(!p.message.contains('`'), "{p:?}");
    }
}

/// With read-data every pack is read once, whole, and verified once: the structure check
/// takes the headers of the packs read whole from that read, so reading the data costs no
/// read beyond those a check without data makes (one per pack, and the trees'). On S3 each
/// read is a request.
#[test]
fn read_data_reads_each_pack_once() {
    let (_dir, root) = repo_with_packs();
    let counting = Arc::new(
        FaultyBackend::new(Arc::new(LocalBackend::new(&root)))
            .watching(&[Op::Read])
            .kinds(&[FileKind::Pack]),
    );
    let repo = open_with(counting.clone() as Arc<dyn Backend>);
    let reads = |read_data| {
        let start = counting.count();
        let opts = CheckOptions {
            read_data,
            ..options()
        };
        let r = check(&repo, &opts, &NoHooks).unwrap();
        assert_no_damage(&r, "intact");
        (counting.count() - start, r)
    };
    let (without, _) = reads(ReadData::None);
    let (with, r) = reads(ReadData::All);
    assert_eq!(with, without, "pack reads with and without read-data");
    let mut verified = r.verified.clone();
    verified.sort();
    verified.dedup();
    assert_eq!(verified.len(), r.verified.len(), "a pack verified twice");
    assert_eq!(verified.len(), r.packs);
    assert_eq!(r.packs_read, r.packs);
}

/// A pack that is not in the page cache is read past it (`storage/direct_read.rs`): a
/// byte flipped on the disk is still found, cold and warm alike.
#[test]
fn damage_is_found_in_a_pack_read_past_the_page_cache() {
    #[cfg(target_os = "linux")]
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let (_dir, root) = repo_with_packs();
    let repo = open(&root);
    let (name, size) = repo
        .backend()
        .list(FileKind::Pack)
        .unwrap()
        .into_iter()
        .map(|f| (f.name, f.size))
        .max_by_key(|f| f.1)
        .unwrap();
    assert!(size > 512 << 10, "the largest pack has {size} bytes");
    let path = root.join("data").join(&name[..2]).join(&name);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, size / 2).unwrap();
    f.write_all_at(&[b[0] ^ 0x10], size / 2).unwrap();
    f.sync_all().unwrap();
    for cold in [true, false] {
        // Out of the page cache (Linux; elsewhere the pack stays cached).
        #[cfg(target_os = "linux")]
        if cold {
            // SAFETY: fadvise on a descriptor we own, integer arguments only.
            unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        }
        let r = check(&repo, &options(), &NoHooks).unwrap();
        let id: PackId = name.parse().unwrap();
        assert!(
            r.damaged_packs.contains(&id),
            "cold {cold}: {:?}",
            r.problems
        );
        assert!(!r.bad_copies.is_empty(), "cold {cold}: {:?}", r.problems);
        assert_eq!(r.packs_read, r.packs, "cold {cold}");
    }
}

/// Reading and verifying are apart (issue 23.2): while every verifier is busy, packs are
/// still read ahead into the free buffers, never more packs held at once than the plan's
/// buffers, and every pack is still verified once. Before, each thread read a pack and then
/// verified it, so a thread busy verifying left the disk idle.
#[test]
fn reads_go_on_while_every_verifier_is_busy() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
    use std::time::{Duration, Instant};

    struct Slow {
        counting: Arc<FaultyBackend>,
        /// Pack reads that must have started before a verifier goes on.
        wait_for: u64,
        reported: AtomicU64,
        held_most: AtomicU64,
        /// A verifier waited in vain: no read went on while it was busy.
        stuck: AtomicBool,
    }
    impl CheckObserver for Slow {
        fn pack_read(&self, _bytes: u64) {
            let started = self.counting.count();
            let held = started - self.reported.load(SeqCst);
            self.held_most.fetch_max(held, SeqCst);
            // A guard against waiting for ever (the old code), not a measure of speed.
            let give_up = Instant::now() + Duration::from_secs(20);
            while self.counting.count() < self.wait_for && Instant::now() < give_up {
                std::thread::sleep(Duration::from_millis(2));
            }
            if self.counting.count() < self.wait_for {
                self.stuck.store(true, SeqCst);
            }
            self.reported.fetch_add(1, SeqCst);
        }
    }

    let (_dir, root) = repo_with_packs();
    let counting = Arc::new(
        FaultyBackend::new(Arc::new(LocalBackend::new(&root)))
            .watching(&[Op::Read])
            .kinds(&[FileKind::Pack]),
    );
    let repo = open_with(counting.clone() as Arc<dyn Backend>);
    let opts = CheckOptions {
        threads: 2,
        ..options()
    };
    let plan = super::data::Plan::new(opts.threads);
    assert!(plan.buffers > plan.verifiers, "{plan:?}");
    let packs = repo.backend().list(FileKind::Pack).unwrap().len() as u64;
    let wait_for = (plan.verifiers as u64 + 1).min(packs);
    assert!(packs > plan.verifiers as u64, "only {packs} packs");
    let slow = Slow {
        counting: counting.clone(),
        wait_for,
        reported: AtomicU64::new(0),
        held_most: AtomicU64::new(0),
        stuck: AtomicBool::new(false),
    };
    let r = check(&repo, &opts, &slow).unwrap();
    assert_no_damage(&r, "intact");
    assert!(
        !slow.stuck.load(SeqCst),
        "no pack read while {} verifier(s) were busy",
        plan.verifiers
    );
    assert!(
        slow.held_most.load(SeqCst) <= plan.buffers as u64,
        "{} packs held at once, {plan:?}",
        slow.held_most.load(SeqCst)
    );
    let mut verified = r.verified.clone();
    verified.sort();
    verified.dedup();
    assert_eq!(verified.len(), r.verified.len(), "a pack verified twice");
    assert_eq!(verified.len(), r.packs);
}
