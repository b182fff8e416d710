//! Fault injection: every library operation — snapshot, restore, check, forget + prune, key
//! add/remove/change — under a backend fault at every watched operation. Each run either
//! finishes or returns an error (no panic; a watchdog aborts on a hang), and afterwards
//! `check` with `ReadData::All` finds no error, every earlier snapshot restores byte-exact,
//! and the same operation run again without the fault succeeds.
//!
//! Faults (see `snapvault_repo::faulty`): a crash (`FailBefore`/`FailAfter`: no clean-up
//! runs afterwards), and OS errors the process survives — `ENOSPC` that persists (a full
//! disk), one `EACCES`, `EIO` after the object was written (the folder fsync failed), and a
//! short write that leaves a partial `.tmp-*` file. Prune's own crash tests (in
//! `prune.rs`) cover crashes at every write/remove/read/list; here prune gets the OS errors.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use snapvault_repo::archiver::{self, ArchiveOptions, NoHooks};
use snapvault_repo::backend::{Backend, FileKind, LocalBackend};
use snapvault_repo::faulty::{Effect, FaultyBackend, Op};
use snapvault_repo::fs_source::FolderSource;
use snapvault_repo::keyfile::KdfParams;
use snapvault_repo::prune::{self, MaxUnused, PruneOptions};
use snapvault_repo::testing::{
    Content, FAST_KDF, PASSWORD, check_all, copy_dir, create_small_repo, files_under,
    folder_options, local, noise, open_with_password, photo_file, restore_to,
};
use snapvault_repo::{RepoError, Repository, SnapshotId};

const PW: &[u8] = PASSWORD;
const PW2: &[u8] = b"second pw";
const FAST: KdfParams = FAST_KDF;
/// A generous bound for one operation plus its verification on a loaded machine.
const HANG: Duration = Duration::from_secs(600);

// ---------------------------------------------------------------- fixture

fn photo(dir: &Path, i: u64) {
    photo_file(dir, i, 20_000 + (i as usize * 7919) % 90_000);
}

fn files(dir: &Path, prefix: &str) -> Content {
    files_under(dir, prefix)
}

/// A repository with small chunks (4/16/64 KiB) and 1 MiB packs.
fn create_repo(root: &Path, encrypted: bool) {
    create_small_repo(root, encrypted);
}

fn open_with(be: Arc<dyn Backend>, pw: &[u8]) -> Result<Repository, RepoError> {
    open_with_password(be, pw)
}

/// Open with the first password, or the second (the key tests remove the first).
fn open(root: &Path) -> Repository {
    open_with(local(root), PW)
        .or_else(|_| open_with(local(root), PW2))
        .unwrap()
}

/// Snapshot `src` (it appears as `lib/`), with the latest snapshot as parent.
fn snapshot(repo: &Repository, src: &Path) -> Result<SnapshotId, RepoError> {
    let folder = FolderSource::new(&[src.to_path_buf()])?;
    let index = repo.load_index()?.index;
    let (all, _) = repo.snapshots()?;
    let opts = ArchiveOptions {
        parent: all.into_iter().last(),
        ..folder_options(&folder)
    };
    let _lock = repo.lock(false, "snapshot")?;
    archiver::run(repo, index, &folder, opts, &NoHooks, &NoHooks).map(|(id, _)| id)
}

struct Fixture {
    dir: tempfile::TempDir,
    /// The repository with two snapshots.
    repo: PathBuf,
    /// The source folder as it is after the two snapshots were taken, changed again (for
    /// a third snapshot).
    src: PathBuf,
    kept: Vec<(SnapshotId, Content)>,
    /// What a snapshot of `src` holds.
    next: Content,
}

fn fixture(encrypted: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let src = dir.path().join("lib");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    create_repo(&repo, encrypted);
    let r = open(&repo);
    for i in 0..25 {
        photo(&src, i);
    }
    std::fs::write(src.join("sub/notes.txt"), b"text ".repeat(3000)).unwrap();
    let s1 = snapshot(&r, &src).unwrap();
    let c1 = files(&src, "lib/");
    for i in 0..5 {
        std::fs::remove_file(src.join(format!("IMG_{i:04}.HEIC"))).unwrap();
    }
    for i in 25..35 {
        photo(&src, i);
    }
    let s2 = snapshot(&r, &src).unwrap();
    let c2 = files(&src, "lib/");
    // Changes for the snapshot under test: ~1.5 MB new (two packs and a bit), a changed
    // file, a removed one.
    for i in 35..60 {
        photo(&src, i);
    }
    std::fs::write(src.join("sub/notes.txt"), b"changed ".repeat(3000)).unwrap();
    std::fs::remove_file(src.join("IMG_0007.HEIC")).unwrap();
    let next = files(&src, "lib/");
    Fixture {
        dir,
        repo,
        src,
        kept: vec![(s1, c1), (s2, c2)],
        next,
    }
}

// ---------------------------------------------------------------- verification

/// `check --read-data` finds no error; every snapshot in the repository is one of `kept`
/// (or, if `extra` is given, holds `extra`), all of `kept` are there (except those in
/// `maybe_gone`), and each restores byte-exact.
fn verify(
    root: &Path,
    kept: &[(SnapshotId, Content)],
    maybe_gone: &[SnapshotId],
    extra: Option<&Content>,
    what: &str,
) -> Vec<(SnapshotId, Content)> {
    let repo = open(root);
    let report = check_all(&repo).unwrap_or_else(|e| panic!("{what}: check failed: {e}"));
    assert_eq!(
        report.errors(),
        0,
        "{what}: check found errors: {:#?}",
        report.problems
    );
    let (snaps, bad) = repo.snapshots().unwrap();
    assert!(bad.is_empty(), "{what}: unreadable snapshots {bad:?}");
    let present: HashSet<SnapshotId> = snaps.iter().map(|(id, _)| *id).collect();
    for (sid, _) in kept {
        assert!(
            present.contains(sid) || maybe_gone.contains(sid),
            "{what}: snapshot {} is gone",
            sid.short()
        );
    }
    let mut now = Vec::new();
    for (sid, _) in &snaps {
        let want = match kept.iter().find(|(k, _)| k == sid) {
            Some((_, c)) => c,
            None => extra.unwrap_or_else(|| panic!("{what}: unexpected snapshot {}", sid.short())),
        };
        let target = tempfile::tempdir().unwrap();
        let got = restore_to(&repo, sid, target.path())
            .unwrap_or_else(|e| panic!("{what}: snapshot {} does not restore: {e}", sid.short()));
        assert!(
            got == *want,
            "{what}: snapshot {} does not restore byte-exact",
            sid.short()
        );
        now.push((*sid, want.clone()));
    }
    now
}

/// Run `f` with a watchdog: a hang aborts the whole test process with a message.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let (tx, rx) = mpsc::channel::<()>();
    let name = what.to_string();
    let dog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(HANG) {
            eprintln!("HANG: {name} did not finish within {HANG:?}");
            std::process::abort();
        }
    });
    let r = f();
    drop(tx);
    let _ = dog.join();
    r
}

/// The faults every operation is put through.
fn effects() -> Vec<Effect> {
    vec![
        Effect::FailBefore,
        Effect::FailAfter,
        Effect::ErrnoFromThenOn(libc::ENOSPC),
        Effect::Errno(libc::EACCES),
        Effect::ErrnoAfter(libc::EIO),
        Effect::ShortWrite,
    ]
}

/// How many watched operations `run` performs on a copy of the fixture, without faults.
fn count_ops(fx: &Fixture, ops: &[Op], run: &dyn Fn(Arc<dyn Backend>, &Path)) -> u64 {
    let root = fx.dir.path().join("count");
    copy_dir(&fx.repo, &root);
    let counter = Arc::new(FaultyBackend::new(local(&root)).watching(ops));
    run(counter.clone(), &root);
    std::fs::remove_dir_all(&root).unwrap();
    counter.count()
}

/// For every effect and every `step`-th watched operation: a fresh copy of the fixture,
/// the faulty backend armed there, then `case(backend, root, what)`.
fn every_fault(
    fx: &Fixture,
    ops: &[Op],
    effects: &[Effect],
    step: u64,
    total: u64,
    case: &dyn Fn(Arc<FaultyBackend>, &Path, &str),
) -> usize {
    assert!(total >= 3, "only {total} watched operations");
    let mut runs = 0;
    for &effect in effects {
        let mut n = 1;
        while n <= total {
            let root = fx.dir.path().join(format!("case-{runs}"));
            copy_dir(&fx.repo, &root);
            let f = Arc::new(
                FaultyBackend::new(local(&root))
                    .watching(ops)
                    .local_root(&root)
                    .fail_at(n, effect),
            );
            let what = format!("{ops:?} #{n}/{total} {effect:?}");
            guarded(&what, || case(f, &root, &what));
            std::fs::remove_dir_all(&root).unwrap();
            runs += 1;
            n += step;
        }
    }
    runs
}

/// Leftovers of a short write are what the next run cleans; nothing else is.
fn clean_temp_files(root: &Path, what: &str) {
    let be = LocalBackend::new(root);
    let left = be.leftover_temp_files().unwrap();
    let removed = be.remove_leftover_temp_files(0).unwrap();
    assert_eq!(removed, left.len(), "{what}");
    assert!(be.leftover_temp_files().unwrap().is_empty(), "{what}");
}

// ---------------------------------------------------------------- snapshot

fn snapshot_under_faults(encrypted: bool, effects: &[Effect], step: u64) {
    let fx = fixture(encrypted);
    let ops = [Op::Write, Op::Remove, Op::Read, Op::List];
    let total = count_ops(&fx, &ops, &|be, _| {
        snapshot(&open_with(be, PW).unwrap(), &fx.src).unwrap();
    });
    let runs = every_fault(&fx, &ops, effects, step, total, &|f, root, what| {
        let res = open_with(f.clone(), PW).and_then(|repo| snapshot(&repo, &fx.src));
        assert!(f.fired(), "{what}: the fault did not fire");
        let mut kept = fx.kept.clone();
        match &res {
            Ok(sid) => kept.push((*sid, fx.next.clone())),
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.is_empty(), "{what}");
                if matches!(f_effect(what), Some("ENOSPC")) {
                    assert!(
                        msg.contains("No space left on device"),
                        "{what}: unclear error: {msg}"
                    );
                }
            }
        }
        // An error after the snapshot file was written may leave the new snapshot: it must
        // then be complete.
        let kept = verify(root, &kept, &[], Some(&fx.next), &format!("{what}, after"));
        clean_temp_files(root, what);
        // The next run, without the fault, completes and everything restores.
        let sid = snapshot(&open(root), &fx.src)
            .unwrap_or_else(|e| panic!("{what}: the next snapshot fails: {e}"));
        let mut kept = kept;
        kept.push((sid, fx.next.clone()));
        verify(root, &kept, &[], None, &format!("{what}, after the re-run"));
    });
    assert!(runs > 0);
}

/// The effect named in a case description (for error-message checks).
fn f_effect(what: &str) -> Option<&'static str> {
    if what.contains(&format!("ErrnoFromThenOn({})", libc::ENOSPC)) {
        Some("ENOSPC")
    } else {
        None
    }
}

#[test]
fn snapshot_under_every_fault_encrypted() {
    snapshot_under_faults(true, &effects(), 1);
}

#[test]
fn snapshot_under_every_fault_unencrypted() {
    // Unencrypted packs are deterministic: a re-run writes byte-identical packs again.
    snapshot_under_faults(
        false,
        &[
            Effect::FailAfter,
            Effect::ErrnoAfter(libc::EIO),
            Effect::ShortWrite,
        ],
        1,
    );
}

/// Disk full in the middle of a snapshot: a clear error, the repository intact, the partial
/// temporary file removed by the next run (not a younger one a concurrent writer may still
/// be writing), and the next run, with space again, completes.
#[test]
fn disk_full_during_a_snapshot() {
    let fx = fixture(true);
    let root = fx.dir.path().join("full");
    copy_dir(&fx.repo, &root);
    // The second pack write is short, and the disk stays full.
    let f = Arc::new(
        FaultyBackend::new(local(&root))
            .watching(&[Op::Write])
            .kinds(&[FileKind::Pack])
            .local_root(&root)
            .fail_at(2, Effect::ShortWrite),
    );
    let full = Arc::new(
        FaultyBackend::new(f.clone())
            .watching(&[Op::Write])
            .fail_at(3, Effect::ErrnoFromThenOn(libc::ENOSPC)),
    );
    let err = guarded("disk full", || {
        snapshot(&open_with(full.clone(), PW).unwrap(), &fx.src).unwrap_err()
    });
    let msg = err.to_string();
    assert!(msg.contains("No space left on device"), "{msg}");
    assert!(f.fired());
    let be = LocalBackend::new(&root);
    let left = be.leftover_temp_files().unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    verify(&root, &fx.kept, &[], None, "after the disk filled up");
    // Next run: the old leftover goes (15 minutes, as `snapvault snapshot` does), a fresh
    // temporary file of another writer stays.
    let old = root.join(&left[0].name);
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();
    let young = root.join("index/.tmp-0123abcd");
    std::fs::write(&young, b"being written").unwrap();
    assert_eq!(be.remove_leftover_temp_files(15 * 60).unwrap(), 1);
    assert!(!old.exists() && young.exists());
    std::fs::remove_file(&young).unwrap();
    let sid = snapshot(&open(&root), &fx.src).unwrap();
    let mut kept = fx.kept.clone();
    kept.push((sid, fx.next.clone()));
    verify(&root, &kept, &[], None, "after the next run");
}

// ---------------------------------------------------------------- restore

/// Restore under read faults: an error or a list of problems, never a wrong or partial file
/// under a real name, no temporary files left, and a re-run restores everything.
#[test]
fn restore_under_every_read_fault() {
    let fx = fixture(true);
    let ops = [Op::Read, Op::List];
    let (sid, want) = fx.kept[1].clone();
    let total = count_ops(&fx, &ops, &|be, root| {
        let repo = open_with(be, PW).unwrap();
        let t = root.join("restored");
        assert_eq!(restore_to(&repo, &sid, &t).unwrap(), want);
    });
    let runs = every_fault(
        &fx,
        &ops,
        &[
            Effect::FailBefore,
            Effect::Errno(libc::EIO),
            Effect::ErrnoFromThenOn(libc::EIO),
        ],
        1,
        total,
        &|f, root, what| {
            let target = root.join("restored");
            let _ = open_with(f.clone(), PW).map(|repo| restore_to(&repo, &sid, &target));
            assert!(f.fired(), "{what}");
            if target.exists() {
                let got = files(&target, "");
                for (path, bytes) in &got {
                    assert!(
                        !path.contains(".snapvault-restore-"),
                        "{what}: temporary file {path} left"
                    );
                    assert!(
                        want.get(path) == Some(bytes),
                        "{what}: {path} restored wrong"
                    );
                }
            }
            // Re-run into the same target: completes the restore.
            let got = restore_to(&open(root), &sid, &target)
                .unwrap_or_else(|e| panic!("{what}: re-run: {e}"));
            assert!(got == want, "{what}: re-run restore differs");
        },
    );
    assert!(runs > 0);
}

// ---------------------------------------------------------------- check

/// Check under read faults: a report or an error, never a panic or a change to the
/// repository; a re-run finds nothing wrong.
#[test]
fn check_under_every_read_fault() {
    let fx = fixture(true);
    let ops = [Op::Read, Op::List];
    let check = check_all;
    let total = count_ops(&fx, &ops, &|be, _| {
        assert_eq!(check(&open_with(be, PW).unwrap()).unwrap().errors(), 0);
    });
    let listing = |root: &Path| files(root, "");
    let runs = every_fault(
        &fx,
        &ops,
        &[Effect::FailBefore, Effect::Errno(libc::EIO)],
        1,
        total,
        &|f, root, what| {
            let before = listing(root);
            let res = open_with(f.clone(), PW).and_then(|repo| check(&repo));
            assert!(f.fired(), "{what}");
            if let (Ok(report), Effect::Errno(_)) = (&res, effect_of(what)) {
                // A failed read is reported as "not checked" (never as damage: nothing is
                // known about bytes that were not read), unless it was a second read of
                // something already verified (a tree shared by both snapshots).
                let complete = report.packs_read == report.packs
                    && report.snapshots == fx.kept.len()
                    && report.packs > 0;
                assert_eq!(
                    report.errors(),
                    0,
                    "{what}: a read error counted as damage: {report:?}"
                );
                assert!(
                    !report.complete() || complete,
                    "{what}: a failed read went unreported: {report:?}"
                );
            }
            assert!(
                listing(root) == before,
                "{what}: check changed the repository"
            );
            verify(root, &fx.kept, &[], None, what);
        },
    );
    assert!(runs > 0);
}

fn effect_of(what: &str) -> Effect {
    if what.contains("Errno(") {
        Effect::Errno(0)
    } else {
        Effect::FailBefore
    }
}

// ---------------------------------------------------------------- forget + prune

fn prune_options() -> PruneOptions {
    PruneOptions {
        max_unused: MaxUnused::Percent(0.0),
        max_repack: None,
        unindexed_min_age: 0,
    }
}

/// Forget the first snapshot (remove its file), then prune: what `forget --prune` does.
fn forget_and_prune(repo: &Repository, sid: &SnapshotId) -> Result<(), RepoError> {
    let _lock = repo.lock(true, "prune")?;
    repo.backend().remove(FileKind::Snapshot, &sid.to_hex())?;
    let plan = prune::plan(repo, &prune_options(), &HashSet::new(), &NoHooks)?;
    prune::execute(repo, plan, &NoHooks).map(|_| ())
}

fn forget_prune_under_faults(encrypted: bool, effects: &[Effect]) {
    let fx = fixture(encrypted);
    let ops = [Op::Write, Op::Remove];
    let first = fx.kept[0].0;
    let total = count_ops(&fx, &ops, &|be, _| {
        forget_and_prune(&open_with(be, PW).unwrap(), &first).unwrap();
    });
    let runs = every_fault(&fx, &ops, effects, 1, total, &|f, root, what| {
        let res = open_with(f.clone(), PW).and_then(|repo| forget_and_prune(&repo, &first));
        assert!(f.fired(), "{what}");
        let _ = res;
        verify(root, &fx.kept, &[first], None, &format!("{what}, after"));
        clean_temp_files(root, what);
        forget_and_prune(&open(root), &first)
            .unwrap_or_else(|e| panic!("{what}: the re-run fails: {e}"));
        verify(
            root,
            &fx.kept[1..],
            &[],
            None,
            &format!("{what}, after the re-run"),
        );
        let st = prune::plan(&open(root), &prune_options(), &HashSet::new(), &NoHooks)
            .unwrap()
            .stats;
        assert!(
            st.remove_packs == 0 && st.unindexed_packs == 0 && st.unused_bytes == 0,
            "{what}: the re-run left work: {st:?}"
        );
    });
    assert!(runs > 0);
}

#[test]
fn forget_and_prune_under_os_errors() {
    forget_prune_under_faults(
        true,
        &[
            Effect::ErrnoFromThenOn(libc::ENOSPC),
            Effect::Errno(libc::EACCES),
            Effect::ErrnoAfter(libc::EIO),
            Effect::ShortWrite,
        ],
    );
}

#[test]
fn forget_and_prune_under_os_errors_unencrypted() {
    forget_prune_under_faults(false, &[Effect::ErrnoAfter(libc::EIO), Effect::ShortWrite]);
}

// ---------------------------------------------------------------- keys

/// Which of the two passwords open the repository.
fn openers(root: &Path) -> (bool, bool) {
    let ok = |pw: &[u8]| open_with(local(root), pw).is_ok();
    (ok(PW), ok(PW2))
}

#[test]
fn key_add_remove_and_change_under_every_fault() {
    let fx = fixture(true);
    let ops = [Op::Write, Op::Remove, Op::Read, Op::List];
    let all = effects();
    // key add: the old password always works; the new one works if add said so.
    let total = count_ops(&fx, &ops, &|be, _| {
        open_with(be, PW).unwrap().add_key(PW2, FAST).unwrap();
    });
    every_fault(&fx, &ops, &all, 1, total, &|f, root, what| {
        let res = open_with(f.clone(), PW).and_then(|r| r.add_key(PW2, FAST));
        let (old, new) = openers(root);
        assert!(old, "{what}: the old password stopped working");
        if res.is_ok() {
            assert!(
                new,
                "{what}: add succeeded but the new password does not open"
            );
        }
        clean_temp_files(root, what);
        verify(root, &fx.kept, &[], None, what);
    });

    // key remove (opened with the second password): at least one password always works;
    // the removed one is gone if remove said so.
    let with_two = fx.dir.path().join("two-keys");
    copy_dir(&fx.repo, &with_two);
    open(&with_two).add_key(PW2, FAST).unwrap();
    let first_key = open(&with_two)
        .list_keys()
        .unwrap()
        .into_iter()
        .find(|k| k.current)
        .unwrap()
        .name;
    let fx2 = Fixture {
        dir: tempfile::tempdir_in(fx.dir.path()).unwrap(),
        repo: with_two,
        src: fx.src.clone(),
        kept: fx.kept.clone(),
        next: fx.next.clone(),
    };
    let total = count_ops(&fx2, &ops, &|be, _| {
        open_with(be, PW2).unwrap().remove_key(&first_key).unwrap();
    });
    every_fault(&fx2, &ops, &all, 1, total, &|f, root, what| {
        let res = open_with(f.clone(), PW2).and_then(|r| r.remove_key(&first_key));
        let (old, new) = openers(root);
        assert!(new, "{what}: the remaining password stopped working");
        if res.is_ok() {
            assert!(!old, "{what}: remove succeeded but the key still opens");
        }
        verify(root, &fx.kept, &[], None, what);
    });

    // change password: one of the two always works; the new one if change said so.
    let total = count_ops(&fx, &ops, &|be, _| {
        open_with(be, PW)
            .unwrap()
            .change_password(PW2, FAST)
            .unwrap();
    });
    every_fault(&fx, &ops, &all, 1, total, &|f, root, what| {
        let res = open_with(f.clone(), PW).and_then(|mut r| r.change_password(PW2, FAST));
        let (old, new) = openers(root);
        assert!(old || new, "{what}: no password opens the repository");
        if res.is_ok() {
            assert!(
                new && !old,
                "{what}: change reported success: old {old}, new {new}"
            );
        }
        clean_temp_files(root, what);
        verify(root, &fx.kept, &[], None, what);
    });
}

/// An unreadable key file is reported as what it is, not as a wrong password (a user told
/// "wrong password" may believe the password is lost).
#[test]
fn unreadable_key_file_is_not_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    create_repo(dir.path(), true);
    let f = FaultyBackend::new(local(dir.path()))
        .watching(&[Op::Read])
        .kinds(&[FileKind::Key])
        .fail_at(1, Effect::Errno(libc::EACCES));
    let err = open_with(Arc::new(f), PW).err().unwrap();
    assert!(
        err.to_string().contains("Permission denied"),
        "unclear error: {err}"
    );
    assert!(matches!(
        open_with(local(dir.path()), b"wrong"),
        Err(RepoError::WrongPassword)
    ));
}

/// A full disk at the first pack write of a large snapshot (workers still busy) is reported
/// as what it is, not as a consequence ("the pack writer stopped").
#[test]
fn disk_full_is_the_error_reported_even_while_workers_are_busy() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    create_repo(&root, true);
    let src = dir.path().join("lib");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..6 {
        std::fs::write(src.join(format!("VID_{i}.MOV")), noise(1000 + i, 5 << 20)).unwrap();
    }
    for attempt in 0..3 {
        let f = FaultyBackend::new(local(&root))
            .watching(&[Op::Write])
            .kinds(&[FileKind::Pack])
            .fail_at(1, Effect::ErrnoFromThenOn(libc::ENOSPC));
        let err = guarded("large snapshot, disk full", || {
            snapshot(&open_with(Arc::new(f), PW).unwrap(), &src).unwrap_err()
        });
        let msg = err.to_string();
        assert!(
            msg.contains("No space left on device"),
            "attempt {attempt}: unclear error: {msg}"
        );
    }
    verify(&root, &[], &[], None, "after the disk filled up");
}
