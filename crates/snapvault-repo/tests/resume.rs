//! A snapshot that fails part-way (an upload error after some packs were stored) indexes
//! the packs it already wrote, so a rerun resumes instead of storing them again.

use std::path::Path;
use std::sync::Arc;

use snapvault_repo::archiver::{self, NoHooks};
use snapvault_repo::backend::{Backend, FileKind, LocalBackend};
use snapvault_repo::faulty::{Effect, FaultyBackend, Op};
use snapvault_repo::fs_source::FolderSource;
use snapvault_repo::snapshot::Snapshot;
use snapvault_repo::testing::{create_small_repo, folder_options, noise};
use snapvault_repo::{RepoError, Repository, SnapshotId};

/// An unencrypted repository with small chunks and 1 MiB packs.
fn create_repo(root: &Path) {
    create_small_repo(root, false);
}

fn snapshot(be: Arc<dyn Backend>, src: &Path) -> Result<(SnapshotId, Snapshot), RepoError> {
    let repo = Repository::open(be, || Ok(Vec::new()))?;
    let folder = FolderSource::new(&[src.to_path_buf()])?;
    let index = repo.load_index()?.index;
    let opts = folder_options(&folder);
    archiver::run(&repo, index, &folder, opts, &NoHooks, &NoHooks)
}

#[test]
fn packs_written_before_an_upload_error_are_indexed_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let (root, src) = (dir.path().join("repo"), dir.path().join("src"));
    create_repo(&root);
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..12u64 {
        std::fs::write(src.join(format!("IMG_{i:04}.HEIC")), noise(i, 512 * 1024)).unwrap();
    }
    let local: Arc<dyn Backend> = Arc::new(LocalBackend::new(&root));
    // The 5th pack upload fails (the process lives on and reports the error).
    let faulty: Arc<dyn Backend> = Arc::new(
        FaultyBackend::new(local.clone())
            .watching(&[Op::Write])
            .kinds(&[FileKind::Pack])
            .fail_at(5, Effect::Errno(libc::EIO)),
    );
    let err = snapshot(faulty, &src).expect_err("the upload error must fail the run");
    assert!(err.to_string().contains("injected fault"), "{err}");

    // Every pack that was stored is named by an index file.
    let repo = Repository::open(local.clone(), || Ok(Vec::new())).unwrap();
    let index = repo.load_index().unwrap().index;
    let stored = local.list(FileKind::Pack).unwrap();
    assert!(stored.len() >= 4, "{} packs stored", stored.len());
    for p in &stored {
        assert!(
            index.has_pack(&p.name.parse().unwrap()),
            "pack {} was written but not indexed",
            p.name
        );
    }

    // The rerun stores only what the failed run did not.
    let (_, snap) = snapshot(local, &src).unwrap();
    let total = 12 * 512 * 1024;
    assert!(
        snap.summary.bytes_added < total - 3 * 1024 * 1024,
        "the rerun stored {} of {total} bytes again",
        snap.summary.bytes_added
    );
}
