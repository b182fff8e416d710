//! A snapshot that fails part-way (an upload error after some packs were stored) indexes
//! the packs it already wrote, so a rerun resumes instead of storing them again.

use std::path::Path;
use std::sync::Arc;

use snapvault_repo::archiver::{self, ArchiveOptions, NoHooks};
use snapvault_repo::backend::{Backend, FileKind, LocalBackend};
use snapvault_repo::config::{ChunkerParams, Config};
use snapvault_repo::crypto::Crypto;
use snapvault_repo::faulty::{Effect, FaultyBackend, Op};
use snapvault_repo::fs_source::FolderSource;
use snapvault_repo::snapshot::{Snapshot, Source};
use snapvault_repo::{RepoError, Repository, SnapshotId};

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// An unencrypted repository with small chunks and 1 MiB packs.
fn create_repo(root: &Path) {
    let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(root));
    be.create_layout().unwrap();
    let mut c = Config::new(false);
    c.chunker = ChunkerParams {
        min: 4096,
        avg: 16384,
        max: 65536,
    };
    c.pack_size = 1 << 20;
    c.sign(&Crypto::Plain);
    be.write(FileKind::Config, "config", &c.to_bytes()).unwrap();
}

fn snapshot(be: Arc<dyn Backend>, src: &Path) -> Result<(SnapshotId, Snapshot), RepoError> {
    let repo = Repository::open(be, || Ok(Vec::new()))?;
    let folder = FolderSource::new(&[src.to_path_buf()])?;
    let index = repo.load_index()?.index;
    let opts = ArchiveOptions {
        source: Source::folder(folder.absolute_paths()),
        tags: Vec::new(),
        parent: None,
        also: Vec::new(),
        reread: Default::default(),
        workers: 2,
        stop: None,
        lock: None,
        time: None,
    };
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
