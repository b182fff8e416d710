//! Helpers shared by the unit tests of the operations: a small repository (4/16/64 KiB
//! chunks, 1 MiB packs, so a few MB spread over several packs), deterministic photo
//! folders, a snapshot of one, and "check passes and every snapshot restores byte-exact".
//! (The crate-wide `testing` module is where such helpers go for other crates' tests.)

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::format::config::{ChunkerParams, Config};
use crate::format::crypto::{Crypto, MasterKey};
use crate::format::id::{Id, SnapshotId};
use crate::format::keyfile::{KdfParams, KeyFile};
use crate::format::snapshot::Source;
use crate::format::tree::MediaMeta;
use crate::ops::archiver::{self, ArchiveOptions};
use crate::ops::checker::{self, CheckOptions, ReadData};
use crate::ops::fs_source::{FolderSource, SourceEntry};
use crate::ops::observe::{Inspector, NoHooks};
use crate::ops::restorer::{self, RestoreOptions};
use crate::repository::Repository;
use crate::storage::{Backend, FileKind, LocalBackend};

pub(crate) const PASSWORD: &[u8] = b"pw";

/// Create a repository with small chunks (4/16/64 KiB) and 1 MiB packs, so a few MB of
/// test data spread over several packs.
pub(crate) fn create_small_repo(root: &Path, encrypted: bool) {
    let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(root));
    be.create_layout().unwrap();
    let crypto = if encrypted {
        let mk = MasterKey::generate();
        let kf = KeyFile::create(
            &mk,
            PASSWORD,
            KdfParams {
                m_kib: 64,
                t: 1,
                p: 1,
            },
        )
        .unwrap();
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

pub(crate) fn open_with(be: Arc<dyn Backend>) -> Repository {
    Repository::open(be, || Ok(PASSWORD.to_vec())).unwrap()
}

pub(crate) fn open(root: &Path) -> Repository {
    open_with(Arc::new(LocalBackend::new(root)))
}

/// Marks `*.HEIC` files as photos taken at their mtime (what the binary's inspector does
/// for files it cannot parse).
pub(crate) struct Photos;
impl Inspector for Photos {
    fn inspect(&self, _path: &[u8], _head: &[u8], e: &SourceEntry) -> Option<MediaMeta> {
        e.name.0.ends_with(b".HEIC").then(|| MediaMeta {
            kind: "photo".into(),
            taken: Some(
                crate::format::time::rfc3339_utc(e.mtime.div_euclid(1_000_000_000))
                    .trim_end_matches('Z')
                    .to_string(),
            ),
            date_source: Some("mtime".into()),
            ..Default::default()
        })
    }
}

/// Deterministic pseudo-random bytes.
pub(crate) fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

pub(crate) fn photo(dir: &Path, i: u64) {
    let len = 30_000 + (i as usize * 7919) % 120_000;
    std::fs::write(dir.join(format!("IMG_{i:04}.HEIC")), noise(i, len)).unwrap();
}

pub(crate) fn unphoto(dir: &Path, i: u64) {
    std::fs::remove_file(dir.join(format!("IMG_{i:04}.HEIC"))).unwrap();
}

/// Every file under `dir`, by path relative to it.
pub(crate) fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let mut entries: Vec<_> = std::fs::read_dir(d).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Snapshot `src` (appearing as `lib/` in the snapshot); returns its id and content.
pub(crate) fn snapshot(
    repo: &Repository,
    src: &Path,
    tags: &[&str],
) -> (SnapshotId, BTreeMap<String, Vec<u8>>) {
    let folder = FolderSource::new(&[src.to_path_buf()]).unwrap();
    let index = repo.load_index().unwrap().index;
    let opts = ArchiveOptions {
        source: Source::folder(folder.absolute_paths()),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        parent: None,
        reread: Default::default(),
        also: Vec::new(),
        workers: 2,
        stop: None,
        lock: None,
        time: None,
    };
    let (id, _) = archiver::run(repo, index, &folder, opts, &NoHooks, &Photos).unwrap();
    let name = src.file_name().unwrap().to_string_lossy().into_owned();
    let content = files(src)
        .into_iter()
        .map(|(k, v)| (format!("{name}/{k}"), v))
        .collect();
    (id, content)
}

/// `check --read-data` finds no error and every kept snapshot restores byte-exact.
pub(crate) fn verify(root: &Path, kept: &[(SnapshotId, BTreeMap<String, Vec<u8>>)], what: &str) {
    let repo = open(root);
    let report = checker::check(
        &repo,
        &CheckOptions {
            read_data: ReadData::All,
            threads: 2,
            last_verified: Default::default(),
            earlier_copies: Vec::new(),
            earlier_packs: Vec::new(),
        },
        &NoHooks,
    )
    .unwrap();
    assert_eq!(
        report.errors(),
        0,
        "{what}: check found errors: {:#?}",
        report.problems
    );
    assert_eq!(report.snapshots, kept.len(), "{what}");
    let index = repo.load_index().unwrap().index;
    for (sid, want) in kept {
        let snap = repo.load_snapshot(sid).unwrap();
        let target = tempfile::tempdir().unwrap();
        let (items, dirs) = restorer::collect(&repo, &index, &snap.tree, &None).unwrap();
        let opts = RestoreOptions {
            target: target.path().to_path_buf(),
            include: None,
            overwrite: false,
            dry_run: false,
            threads: 2,
        };
        let stats = restorer::restore(&repo, &index, &items, &dirs, &opts, &NoHooks).unwrap();
        assert!(stats.problems.is_empty(), "{what}: {:?}", stats.problems);
        let got = files(target.path());
        assert!(
            got == *want,
            "{what}: snapshot {} does not restore byte-exact",
            sid.short()
        );
    }
}
