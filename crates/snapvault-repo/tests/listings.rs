//! Names from storage (issue 15.9): a backend listing may hold any name at all — a stray
//! `keys/x`, `locks/ab`, a name cut inside a multi-byte character, one with control
//! characters, `/`, a leading dot, a well-formed id whose content is something else. A
//! property test plants arbitrary names (with arbitrary or borrowed content) in every folder
//! of a real repository and runs everything that reads a listing: opening, key and lock
//! lists, snapshot lookup, index loading, check, prune's plan, repair's index survey, and
//! the helpers that parse and show names. Each returns a value or an error; none panics.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use proptest::prelude::*;
use snapvault_repo::archiver::{self, ArchiveOptions, NoHooks};
use snapvault_repo::backend::{Backend, FileInfo, FileKind, LocalBackend};
use snapvault_repo::checker::{self, CheckOptions, ReadData};
use snapvault_repo::crypto::{Crypto, MasterKey};
use snapvault_repo::fs_source::FolderSource;
use snapvault_repo::id::Id;
use snapvault_repo::keyfile::{KdfParams, KeyFile};
use snapvault_repo::lock::{LockGuard, list_locks};
use snapvault_repo::prune::{self, PruneOptions};
use snapvault_repo::testing::{FAST_KDF, folder_options};
use snapvault_repo::{RepoError, Repository, Result, survey, text};

const PW: &[u8] = b"pw";
const FAST: KdfParams = FAST_KDF;

/// A real repository's backend plus planted files that only exist in listings and reads.
struct Planted {
    inner: Arc<dyn Backend>,
    files: Vec<(FileKind, String, Vec<u8>)>,
    removed: Mutex<HashSet<(FileKind, String)>>,
}

impl Planted {
    fn find(&self, kind: FileKind, name: &str) -> Option<&Vec<u8>> {
        if self
            .removed
            .lock()
            .unwrap()
            .contains(&(kind, name.to_string()))
        {
            return None;
        }
        self.files
            .iter()
            .find(|(k, n, _)| *k == kind && n == name)
            .map(|(_, _, b)| b)
    }
}

impl Backend for Planted {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        if self.find(kind, name).is_some() {
            return Ok(true);
        }
        self.inner.exists(kind, name)
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        match self.find(kind, name) {
            Some(b) => Ok(b.clone()),
            None => self.inner.read(kind, name),
        }
    }
    fn read_range_into(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: usize,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        match self.find(kind, name) {
            Some(b) => {
                let part = usize::try_from(offset)
                    .ok()
                    .and_then(|o| b.get(o..o.checked_add(len)?))
                    .ok_or_else(|| RepoError::corrupt(name, "file ends early"))?;
                buf.clear();
                buf.extend_from_slice(part);
                Ok(())
            }
            None => self.inner.read_range_into(kind, name, offset, len, buf),
        }
    }
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.inner.write(kind, name, data)
    }
    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        let mut out = self.inner.list(kind)?;
        let removed = self.removed.lock().unwrap();
        for (k, n, b) in &self.files {
            if *k == kind && !removed.contains(&(kind, n.clone())) {
                out.push(FileInfo {
                    name: n.clone(),
                    size: b.len() as u64,
                });
            }
        }
        Ok(out)
    }
    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        match self.find(kind, name) {
            Some(b) => Ok(b.len() as u64),
            None => self.inner.size(kind, name),
        }
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        if self.find(kind, name).is_some() {
            self.removed
                .lock()
                .unwrap()
                .insert((kind, name.to_string()));
            return Ok(());
        }
        self.inner.remove(kind, name)
    }
    fn age_secs(&self, kind: FileKind, name: &str) -> Result<Option<u64>> {
        match self.find(kind, name) {
            Some(_) => Ok(Some(1 << 30)),
            None => self.inner.age_secs(kind, name),
        }
    }
    fn create_layout(&self) -> Result<()> {
        self.inner.create_layout()
    }
}

/// One encrypted repository with a snapshot, made once for every case; and the bytes of
/// its real files, to plant under wrong names.
struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    real_files: Vec<Vec<u8>>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let src = dir.path().join("lib");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("IMG_0001.HEIC"), b"photo ".repeat(5000)).unwrap();
        let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(&root));
        be.create_layout().unwrap();
        let mk = MasterKey::generate();
        let kf = KeyFile::create(&mk, PW, FAST).unwrap();
        be.write(FileKind::Key, &Id::random().to_hex(), &kf.to_bytes())
            .unwrap();
        let crypto = Crypto::Keyed(mk);
        let mut c = snapvault_repo::config::Config::new(true);
        c.sign(&crypto);
        be.write(FileKind::Config, "config", &c.to_bytes()).unwrap();
        let repo = Repository::open(be.clone(), || Ok(PW.to_vec())).unwrap();
        let folder = FolderSource::new(&[src]).unwrap();
        let opts = ArchiveOptions {
            workers: 1,
            ..folder_options(&folder)
        };
        let index = repo.load_index().unwrap().index;
        archiver::run(&repo, index, &folder, opts, &NoHooks, &NoHooks).unwrap();
        let mut real_files = Vec::new();
        for kind in [FileKind::Key, FileKind::Snapshot, FileKind::Index] {
            for f in be.list(kind).unwrap() {
                real_files.push(be.read(kind, &f.name).unwrap());
            }
        }
        Fixture {
            _dir: dir,
            root,
            real_files,
        }
    })
}

const KINDS: [FileKind; 5] = [
    FileKind::Key,
    FileKind::Lock,
    FileKind::Snapshot,
    FileKind::Index,
    FileKind::Pack,
];

/// Names a listing may hand over: anything at all, hex-looking ones of every length,
/// well-formed ids, and the shapes that broke byte slicing.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9a-fA-F]{0,70}",
        "[0-9a-f]{64}",
        "[a-z]{0,9}[éß€😀][a-z]{0,3}",
        Just("exclusive".to_string()),
        Just(String::new()),
        "\\.[a-z]{1,5}",
        "[a-z]{1,3}/[a-z]{1,3}",
    ]
}

fn content() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        (0usize..8).prop_map(|i| {
            let real = &fixture().real_files;
            real[i % real.len()].clone()
        }),
    ]
}

fn planted() -> impl Strategy<Value = Vec<(FileKind, String, Vec<u8>)>> {
    proptest::collection::vec(
        (
            (0usize..KINDS.len()).prop_map(|i| KINDS[i]),
            name(),
            content(),
        ),
        1..6,
    )
}

/// Everything that reads a listing, on a repository with `files` planted. Errors are
/// fine; a panic fails the case.
fn exercise(files: Vec<(FileKind, String, Vec<u8>)>) {
    let f = fixture();
    let names: Vec<String> = files.iter().map(|(_, n, _)| n.clone()).collect();
    for n in &names {
        let shown = text::short_name(n);
        assert!(!shown.is_empty());
        let _ = n.parse::<Id>();
        for kind in KINDS {
            let _ = kind.path_of(n);
        }
    }
    let be: Arc<dyn Backend> = Arc::new(Planted {
        inner: Arc::new(LocalBackend::new(&f.root)),
        files,
        removed: Mutex::new(HashSet::new()),
    });
    let repo = match Repository::open(be.clone(), || Ok(PW.to_vec())) {
        Ok(r) => r,
        Err(_) => return,
    };
    if let Ok(keys) = repo.list_keys() {
        for k in keys {
            let _ = text::short_name(&k.name);
        }
    }
    for n in &names {
        let _ = repo.key_to_remove(n);
        let _ = repo.find_snapshot(text::prefix(n, 8));
    }
    if let Ok(locks) = list_locks(be.as_ref(), repo.crypto()) {
        for l in locks {
            let _ = text::short_name(&l.name);
        }
    }
    for exclusive in [false, true] {
        drop(LockGuard::acquire(
            be.clone(),
            repo.crypto().clone(),
            exclusive,
            "test",
        ));
    }
    let _ = repo.snapshots();
    let _ = repo.find_snapshot("latest");
    let _ = repo.load_index();
    let _ = survey::load_old_index(&repo);
    let opts = CheckOptions {
        read_data: ReadData::All,
        threads: 1,
        last_verified: Default::default(),
        earlier_copies: Vec::new(),
        earlier_packs: Vec::new(),
    };
    let _ = checker::check(&repo, &opts, &NoHooks);
    let _ = prune::plan(&repo, &PruneOptions::default(), &HashSet::new(), &NoHooks);
    // The fixture itself is untouched: planted files never reach the disk.
    assert!(Path::new(&f.root).join("config").is_file());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_listed_names_are_handled_without_panics(files in planted()) {
        exercise(files);
    }
}

/// The shapes from the issue, always run: a stray `keys/x`, `locks/ab`, and names cut
/// inside a character at byte 8.
#[test]
fn the_names_from_the_issue() {
    for kind in KINDS {
        for n in ["x", "ab", "abcdefgé", "é", "exclusive", "\u{1b}[2J"] {
            exercise(vec![(kind, n.to_string(), b"junk".to_vec())]);
        }
    }
}
