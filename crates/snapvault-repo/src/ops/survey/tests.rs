//! The survey and `repair` under read errors (issue 15.6): a pack that cannot be read stops
//! the repair before anything changes — no pack is dropped from the index, no index file
//! removed — and the error names the pack and what went wrong.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::ops::observe::NoHooks;
use crate::ops::repair::{self, Parts, RepairOutcome};
use crate::ops::test_support::{
    create_small_repo, files, noise, noise_library, open, open_with, snapshot,
};
use crate::storage::faulty::{Effect, FaultyBackend, Op};
use crate::storage::{Backend, LocalBackend};

/// A repository of a few MB over several 1 MiB packs, two snapshots.
pub(crate) fn repo_with_packs() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    create_small_repo(&root, true);
    let lib = noise_library(dir.path(), 6, 500_000);
    let repo = open(&root);
    snapshot(&repo, &lib, &[]);
    std::fs::write(lib.join("IMG_9.HEIC"), noise(9, 300_000)).unwrap();
    snapshot(&repo, &lib, &[]);
    (dir, root)
}

/// What `snapvault repair --apply --forget-damaged` does, step by step.
fn repair_all(repo: &Repository) -> Result<RepairOutcome> {
    let old = load_old_index(repo)?;
    let found = survey(repo, &old.index, 3, &NoHooks)?;
    let plan = repair::plan(repo, &found, &old)?;
    let parts = Parts {
        index: true,
        snapshots: true,
    };
    repair::apply(repo, &found, &plan, parts, true)
}

fn pack_names(root: &Path) -> Vec<String> {
    LocalBackend::new(root)
        .list(FileKind::Pack)
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect()
}

#[test]
fn a_pack_that_cannot_be_read_stops_the_repair_and_changes_nothing() {
    let (_dir, root) = repo_with_packs();
    let packs = pack_names(&root);
    assert!(packs.len() >= 3, "{packs:?}");
    let before = files(&root);
    // Each pack read in turn fails once (EIO: a disk error, a network timeout).
    for n in 1..=packs.len() as u64 {
        let eio = Arc::new(
            FaultyBackend::new(Arc::new(LocalBackend::new(&root)))
                .watching(&[Op::Read])
                .kinds(&[FileKind::Pack])
                .fail_at(n, Effect::Errno(libc::EIO)),
        );
        let repo = open_with(eio.clone() as Arc<dyn Backend>);
        let err = match repair_all(&repo) {
            Ok(out) => panic!("read {n} failed, yet repair went on: {out:?}"),
            Err(e) => e.to_string(),
        };
        assert!(eio.fired(), "read {n}: no fault");
        assert!(
            packs.iter().any(|p| err.contains(&format!("pack {p}"))),
            "read {n}: the error does not name the pack: {err}"
        );
        assert!(
            err.contains("Input/output error") && err.contains("nothing was changed"),
            "read {n}: {err}"
        );
        assert!(
            files(&root) == before,
            "read {n}: the repair changed the repository"
        );
    }
    // Without the fault there is nothing to repair.
    let repo = open(&root);
    let old = load_old_index(&repo).unwrap();
    let found = survey(&repo, &old.index, 3, &NoHooks).unwrap();
    assert!(found.damaged.is_empty());
    assert!(repair::plan(&repo, &found, &old).unwrap().is_empty());
}

#[test]
fn an_index_file_that_cannot_be_read_stops_the_repair() {
    let (_dir, root) = repo_with_packs();
    let before = files(&root);
    let eio = Arc::new(
        FaultyBackend::new(Arc::new(LocalBackend::new(&root)))
            .watching(&[Op::Read])
            .kinds(&[FileKind::Index])
            .fail_at(1, Effect::Errno(libc::EIO)),
    );
    let repo = open_with(eio.clone() as Arc<dyn Backend>);
    let err = repair_all(&repo).expect_err("an unreadable index file was set aside");
    assert!(eio.fired());
    assert!(err.is_unavailable(), "{err}");
    assert!(files(&root) == before, "the repair changed the repository");
}
