//! Test repositories: one way to make a small one, open it, snapshot a folder into it,
//! check it and restore from it — what the unit tests of the operations and the tests in
//! `tests/` had each written for themselves.

use std::path::Path;
use std::sync::Arc;

use super::data::{Content, files_under};
use crate::format::config::{ChunkerParams, Config};
use crate::format::crypto::{Crypto, MasterKey};
use crate::format::id::{Id, SnapshotId};
use crate::format::keyfile::{KdfParams, KeyFile};
use crate::format::snapshot::Source;
use crate::ops::archiver::ArchiveOptions;
use crate::ops::checker::{self, CheckOptions, CheckReport, ReadData};
use crate::ops::fs_source::FolderSource;
use crate::ops::observe::NoHooks;
use crate::ops::restorer::{self, RestoreOptions};
use crate::repository::Repository;
use crate::storage::backend::LocalBackend;
use crate::storage::{Backend, FileKind};
use crate::{RepoError, Result};

/// The password of test repositories.
pub const PASSWORD: &[u8] = b"pw";

/// Argon2id parameters that cost next to nothing: tests open repositories many times.
pub const FAST_KDF: KdfParams = KdfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};

/// A local-folder backend at `root`.
pub fn local(root: &Path) -> Arc<dyn Backend> {
    Arc::new(LocalBackend::new(root))
}

/// Create a repository at `root` with small chunks (4/16/64 KiB) and 1 MiB packs, so a few
/// MB of test data spread over several packs; encrypted with [`PASSWORD`] or not.
pub fn create_small_repo(root: &Path, encrypted: bool) {
    let be = local(root);
    be.create_layout().unwrap();
    let crypto = if encrypted {
        let mk = MasterKey::generate();
        let kf = KeyFile::create(&mk, PASSWORD, FAST_KDF).unwrap();
        be.write(FileKind::Key, &Id::random().to_hex(), &kf.to_bytes())
            .unwrap();
        Crypto::Keyed(mk)
    } else {
        Crypto::Plain
    };
    let mut c = Config::new(encrypted);
    c.chunker = ChunkerParams {
        min: 4096,
        avg: 16384,
        max: 65536,
    };
    c.pack_size = 1 << 20;
    c.sign(&crypto);
    be.write(FileKind::Config, "config", &c.to_bytes()).unwrap();
}

/// Open the repository behind `be` with `password`.
pub fn open_with_password(be: Arc<dyn Backend>, password: &[u8]) -> Result<Repository> {
    Repository::open(be, || Ok(password.to_vec()))
}

/// Open the repository behind `be` with [`PASSWORD`].
pub fn open_with(be: Arc<dyn Backend>) -> Repository {
    open_with_password(be, PASSWORD).unwrap()
}

/// Open the local repository at `root` with [`PASSWORD`].
pub fn open(root: &Path) -> Repository {
    open_with(local(root))
}

/// Options for a snapshot of `folder`: no tags, no parent, two workers. Change what a test
/// needs with `ArchiveOptions { tags, ..folder_options(&f) }`.
pub fn folder_options(folder: &FolderSource) -> ArchiveOptions {
    ArchiveOptions {
        source: Source::folder(folder.absolute_paths()),
        tags: Vec::new(),
        parent: None,
        also: Vec::new(),
        reread: Default::default(),
        workers: 2,
        stop: None,
        lock: None,
        time: None,
    }
}

/// `check` reading every pack (`--read-data`), two threads, no earlier state.
pub fn check_all(repo: &Repository) -> Result<CheckReport> {
    checker::check(
        repo,
        &CheckOptions {
            read_data: ReadData::All,
            threads: 2,
            last_verified: Default::default(),
            earlier_copies: Vec::new(),
            earlier_packs: Vec::new(),
        },
        &NoHooks,
    )
}

/// Restore snapshot `sid` into `target` and return what it holds; any problem restoring a
/// file is an error.
pub fn restore_to(
    repo: &Repository,
    sid: &SnapshotId,
    target: &Path,
) -> std::result::Result<Content, String> {
    let run = || -> std::result::Result<Content, String> {
        let text = |e: RepoError| e.to_string();
        let index = repo.load_index().map_err(text)?.index;
        let snap = repo.load_snapshot(sid).map_err(text)?;
        let (items, dirs) = restorer::collect(repo, &index, &snap.tree, &None).map_err(text)?;
        let opts = RestoreOptions {
            target: target.to_path_buf(),
            include: None,
            overwrite: false,
            dry_run: false,
            threads: 2,
        };
        let stats =
            restorer::restore(repo, &index, &items, &dirs, &opts, &NoHooks).map_err(text)?;
        if !stats.problems.is_empty() {
            return Err(format!("{:?}", stats.problems));
        }
        Ok(files_under(target, ""))
    };
    run()
}
