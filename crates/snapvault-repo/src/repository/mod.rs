//! An open repository: backend + config + keys, and the operations every command shares
//! (reading blobs and trees, listing and saving snapshots, loading the index, keys).
//!
//! This folder is the repository layer: the formats of [`crate::format`] put to work on
//! a [`crate::storage`] backend. Opening (which key file, a damaged config), the in-memory
//! index, the packer, the chunker, locks and the expansion bound of tree walks live here;
//! what users do with a repository is in [`crate::ops`].

pub(crate) mod budget;
pub mod chunker;
pub mod config_copy;
pub mod expansion;
mod id_set;
pub mod index;
mod keys;
pub mod lock;
pub mod open;
pub(crate) mod pack_stream;
pub mod packer;
pub mod pending;
pub mod walk;

use std::sync::Arc;

use crate::error::{ParityError, RepoError, Result};
use crate::format::blob;
use crate::format::config::Config;
use crate::format::crypto::{Crypto, MasterKey};
use crate::format::id::{BlobId, Id, IndexId, SnapshotId};
use crate::format::keyfile::{KdfParams, KeyFile};
use crate::format::snapshot::{Snapshot, history_order};
use crate::format::tree::Tree;
use crate::repository::index::{BlobLocation, Index, IndexFile};
use crate::repository::lock::LockGuard;
use crate::repository::open::{ConfigDamage, OpenOptions, OpenWarning};
use crate::storage::{Backend, FileInfo, FileKind};

pub struct Repository {
    backend: Arc<dyn Backend>,
    config: Config,
    crypto: Crypto,
    /// The key file that opened this repository (encrypted repositories); `None` when a
    /// key remembered on this computer opened it.
    key_name: Option<String>,
    /// Set when the file `config` is damaged and a key file's copy is in use.
    config_damage: Option<ConfigDamage>,
    /// How long [`Repository::lock`] keeps trying while another process holds a conflicting
    /// lock (`--retry-lock`); zero refuses at once.
    lock_wait: std::time::Duration,
}

/// A repository file that could not be read: its name and why.
pub type Unreadable = (String, RepoError);
/// A snapshot with its id.
pub type SnapshotEntry = (SnapshotId, Snapshot);

/// The index with the names of the files it was merged from.
/// What [`Repository::load_index_of`] keeps of the blobs it decodes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    All,
    TreesOnly,
    DataAsIds,
}

pub struct LoadedIndex {
    pub index: Index,
    pub files: Vec<IndexId>,
}

impl Repository {
    /// Create a new repository. `password: None` makes an unencrypted one.
    pub fn init(
        backend: Arc<dyn Backend>,
        password: Option<&[u8]>,
        kdf: KdfParams,
    ) -> Result<Repository> {
        Self::init_with_level(backend, password, kdf, None)
    }

    /// [`Repository::init_with_level`] with a parity level in percent (0: none); the
    /// caller then covers the new files with [`crate::parity::store::sync`].
    pub fn init_with_parity(
        backend: Arc<dyn Backend>,
        password: Option<&[u8]>,
        kdf: KdfParams,
        compression_level: Option<i32>,
        parity: u8,
    ) -> Result<Repository> {
        Self::init_inner(backend, password, kdf, compression_level, parity)
    }

    /// [`Repository::init`] with a zstd level for compressible blobs (`None`: the default).
    pub fn init_with_level(
        backend: Arc<dyn Backend>,
        password: Option<&[u8]>,
        kdf: KdfParams,
        compression_level: Option<i32>,
    ) -> Result<Repository> {
        Self::init_inner(backend, password, kdf, compression_level, 0)
    }

    fn init_inner(
        backend: Arc<dyn Backend>,
        password: Option<&[u8]>,
        kdf: KdfParams,
        compression_level: Option<i32>,
        parity: u8,
    ) -> Result<Repository> {
        if parity > crate::format::config::MAX_PARITY {
            return Err(ParityError::ConfigLevel {
                percent: parity,
                max: crate::format::config::MAX_PARITY,
            }
            .into());
        }
        if let Some(l) = compression_level
            && !RepoError::COMPRESSION_LEVELS.contains(&l)
        {
            return Err(RepoError::CompressionLevel { level: l });
        }
        if backend.exists(FileKind::Config, "config")? {
            return Err(RepoError::AlreadyExists(backend.location()));
        }
        backend.create_layout()?;
        let crypto = match password {
            Some(_) => Crypto::Keyed(MasterKey::generate()),
            None => Crypto::Plain,
        };
        let mut config = Config::new(crypto.is_encrypted());
        if let Some(l) = compression_level {
            config.compression_level = l;
        }
        config.parity = parity;
        config.sign(&crypto);
        let key_name = match (password, &crypto) {
            (Some(pw), Crypto::Keyed(mk)) => {
                // The key file keeps a sealed copy of the config (format.md §4).
                let kf = KeyFile::create(mk, pw, kdf)?.with_config_copy(mk, &config.to_bytes());
                let name = Id::random().to_hex();
                backend.write(FileKind::Key, &name, &kf.to_bytes())?;
                Some(name)
            }
            _ => None,
        };
        // The config is written last: until it exists, the folder is not a repository.
        backend.write(FileKind::Config, "config", &config.to_bytes())?;
        Ok(Repository {
            backend,
            config,
            crypto,
            key_name,
            config_damage: None,
            lock_wait: std::time::Duration::ZERO,
        })
    }

    /// Open an existing repository; `password` is asked for only if it is encrypted.
    pub fn open(
        backend: Arc<dyn Backend>,
        password: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<Repository> {
        Self::open_with(backend, password, &OpenOptions::default())
    }

    /// [`Repository::open`] choosing the key file (`--key`) and hearing warnings: key files
    /// not tried for their cost, a damaged config replaced by a key file's copy
    /// (docs/security.md §4). [`Repository::begin_open`] then [`pending::Opening::finish`]
    /// with nothing done in between.
    pub fn open_with(
        backend: Arc<dyn Backend>,
        password: impl FnOnce() -> Result<Vec<u8>>,
        opts: &OpenOptions,
    ) -> Result<Repository> {
        Self::begin_open(backend, password, opts)?.finish(opts)
    }

    /// Open without a password when none is needed: an unencrypted repository, or a key
    /// remembered on this computer. `Ok(Err(parsed))`: a password is needed, and `parsed` is
    /// how reading the config went (a damaged config may still open from a key file's copy).
    fn open_without_password(
        backend: &Arc<dyn Backend>,
        opts: &OpenOptions,
    ) -> Result<std::result::Result<Repository, Result<Config>>> {
        let location = backend.location();
        let raw = match backend.read(FileKind::Config, "config") {
            Ok(b) => Some(b),
            // A remote backend that cannot reach its storage says why from `exists`.
            Err(e) => match backend.exists(FileKind::Config, "config") {
                Ok(false) => None,
                Ok(true) => return Err(e),
                Err(why) => return Err(why),
            },
        };
        let parsed = match &raw {
            Some(raw) => Config::parse(raw, &location),
            None => Err(RepoError::NotFound(location.clone())),
        };
        let parsed = match parsed {
            // A newer format is refused as such, copy or not.
            Err(e @ RepoError::NewerVersion { .. }) => return Err(e),
            Ok(config) if !config.encrypted => {
                if backend.list(FileKind::Key)?.is_empty() {
                    config.verify(&Crypto::Plain)?;
                    let plain = Self::assemble(backend.clone(), config, Crypto::Plain, None, None);
                    return Ok(Ok(plain));
                }
                // Key files exist, so the repository is encrypted and the config was
                // changed: like any other change, the key files' sealed copy says what it was.
                Err(RepoError::ConfigDamaged {
                    of: None,
                    reason: "it says the repository is unencrypted, but the repository has key \
                             files"
                        .into(),
                })
            }
            parsed => parsed,
        };
        // Encrypted, or a config that cannot be read: with key files, a password
        // and a key file's copy of the config may still open it.
        if backend.list(FileKind::Key)?.is_empty() {
            return Err(match parsed {
                Err(e) => e,
                // Nothing can open it: the hint says what to put back.
                Ok(_) => RepoError::NoKeyFiles,
            });
        }
        if let (Ok(config), Some(remembered)) = (&parsed, opts.remembered)
            && let Some(mk) = remembered(&config.id)
        {
            // The MAC proves the id key; the other two parts were stored with it, and the
            // file's own checksum (the caller's) proves they were stored whole.
            let crypto = Crypto::Keyed(mk);
            if config.verify(&crypto).is_ok() {
                let repo = Self::assemble(backend.clone(), config.clone(), crypto, None, None);
                return Ok(Ok(repo));
            }
            opts.warn(OpenWarning::RememberedKeyRefused {
                repository: config.id.clone(),
            });
        }
        Ok(Err(parsed))
    }

    /// An open repository of these parts (no lock wait yet).
    fn assemble(
        backend: Arc<dyn Backend>,
        config: Config,
        crypto: Crypto,
        key_name: Option<String>,
        config_damage: Option<ConfigDamage>,
    ) -> Repository {
        Repository {
            backend,
            config,
            crypto,
            key_name,
            config_damage,
            lock_wait: std::time::Duration::ZERO,
        }
    }

    /// Was this encrypted repository opened with a password (a key file), not with a key
    /// remembered on this computer? `key passwd` changes the key file in use, so needs one.
    pub fn opened_with_password(&self) -> bool {
        self.key_name.is_some()
    }

    /// The damaged config file and the copy in use instead, when the file is damaged.
    pub fn config_damage(&self) -> Option<&ConfigDamage> {
        self.config_damage.as_ref()
    }

    /// Write the config in use (a key file's copy) over a damaged config file, atomically
    /// where the backend can (`repair --apply`).
    pub fn rewrite_config(&mut self) -> Result<()> {
        let bytes = self.config.to_bytes();
        self.backend.replace(FileKind::Config, "config", &bytes)?;
        self.config_damage = None;
        Ok(())
    }

    /// Write a new parity level into the config (`parity set`), atomically where the
    /// backend can; then every key file's copy of the config (format.md §4). Returns the
    /// key files written anew (old name, new name).
    pub fn set_parity(&mut self, percent: u8) -> Result<Vec<config_copy::Resealed>> {
        if percent > crate::format::config::MAX_PARITY {
            return Err(ParityError::ConfigLevel {
                percent,
                max: crate::format::config::MAX_PARITY,
            }
            .into());
        }
        let mut c = self.config.clone();
        c.parity = percent;
        c.sign(&self.crypto);
        self.backend
            .replace(FileKind::Config, "config", &c.to_bytes())?;
        self.config = c;
        self.reseal_config_copies(config_copy::Reseal::All)
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn crypto(&self) -> &Crypto {
        &self.crypto
    }

    /// Let [`Repository::lock`] wait up to `d` for a conflicting lock to go away.
    pub fn set_lock_wait(&mut self, d: std::time::Duration) {
        self.lock_wait = d;
    }

    /// Take a shared or exclusive lock. While another process holds a conflicting one, try
    /// again every few seconds until the lock wait runs out, then report the holder.
    pub fn lock(&self, exclusive: bool, command: &str) -> Result<LockGuard> {
        let start = std::time::Instant::now();
        loop {
            match LockGuard::acquire(
                self.backend.clone(),
                self.crypto.clone(),
                exclusive,
                command,
            ) {
                Err(e @ (RepoError::Locked { .. } | RepoError::LockUnreadable { .. })) => {
                    let left = self.lock_wait.saturating_sub(start.elapsed());
                    if left.is_zero() {
                        return Err(e);
                    }
                    crate::storage::testhooks::pause("lock-wait");
                    std::thread::sleep(left.min(std::time::Duration::from_secs(3)));
                }
                Ok(guard) => {
                    crate::storage::testhooks::pause("locked");
                    return Ok(guard);
                }
                other => return other,
            }
        }
    }

    /// Read and merge every index file (in parallel). A damaged index file is an error
    /// naming it (`check` and `repair index` handle damage explicitly).
    ///
    /// Memory: the files are decoded a few at a time and merged in list order into an index
    /// without a lookup table, which is made once at the end at its final size
    /// ([`crate::repository::index::Bulk`], its entries sized from the files' sizes); the
    /// peak is the index plus one batch of opened files (at most [`INDEX_BATCH_BYTES`]
    /// unless one file is larger), each held once — not also opened into a copy and decoded
    /// whole (three times a file's size: test `tests/index_memory.rs`).
    pub fn load_index(&self) -> Result<LoadedIndex> {
        self.load_index_of(Keep::All)
    }

    /// [`Repository::load_index`] keeping only the tree blobs' entries, for a command that
    /// reads nothing but trees (`ls`): every file is read and checked as there, but a
    /// million small files' data entries (52 bytes each) are not kept. A tree stored as a
    /// data blob (same bytes, so same id) is not in it: such a command falls back to the
    /// whole index when a tree is not found ([`crate::walk::TreesFirst`]).
    pub fn load_tree_index(&self) -> Result<LoadedIndex> {
        self.load_index_of(Keep::TreesOnly)
    }

    /// [`Repository::load_index`] keeping data blobs as bare ids and trees as whole
    /// entries, for a snapshot: it asks of a data blob only whether it is stored (is an
    /// unchanged file's content still there, is a chunk new), of a tree where it is (the
    /// parent's folders). 32 bytes a data blob instead of ≈ 62: at a million small files
    /// the no-change snapshot's largest part (test `index_memory::the_index_a_snapshot_
    /// loads_keeps_data_blobs_as_ids`). Reading a data blob through it loads the whole
    /// index once ([`Repository::read_blob`]), so every reader still works; a command
    /// that reads data blobs should load the whole index itself.
    pub fn load_index_for_snapshot(&self) -> Result<LoadedIndex> {
        self.load_index_of(Keep::DataAsIds)
    }

    fn load_index_of(&self, keep: Keep) -> Result<LoadedIndex> {
        let (names, _stray) = crate::repository::index::list_files(self.backend.as_ref())?;
        let batch = 2 * std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
        let mut bulk = crate::repository::index::Bulk::default();
        let max = crate::format::index_file::MAX_INDEX_FILE as u64;
        match keep {
            Keep::TreesOnly => bulk.keep_trees_only(),
            Keep::DataAsIds => bulk.keep_data_as_ids(),
            Keep::All => {}
        }
        if keep != Keep::TreesOnly {
            bulk.reserve_for_files(names.iter().map(|f| f.size.min(max)).sum());
        }
        let mut ids = Vec::with_capacity(names.len());
        let mut rest = names.as_slice();
        while !rest.is_empty() {
            let some = &rest[..index_batch(rest, batch)];
            rest = &rest[some.len()..];
            // Read, verified and opened in place in parallel; decoded one after another
            // straight into the index, each file held once (sealed bytes opened in place).
            let files = parallel_map(some, |f| {
                let mut bytes = self.backend.read(FileKind::Index, &f.name)?;
                let what = format!("index {}", f.name);
                if Id::hash_of(&bytes).to_hex() != f.name {
                    return Err(RepoError::corrupt(what, "content does not match its name"));
                }
                let n = crate::format::index_file::open_in_place(&self.crypto, &mut bytes, &what)?;
                Ok((bytes, n, what))
            });
            let start = self.crypto.headroom();
            for (f, opened) in some.iter().zip(files) {
                let (bytes, n, what) = opened?;
                let plain = bytes.get(start..start + n).unwrap_or_default();
                crate::format::index_file::decode_named(plain, &what, &mut bulk)?;
                ids.push(f.name.parse()?);
            }
        }
        Ok(LoadedIndex {
            index: bulk.finish(),
            files: ids,
        })
    }

    /// Merge into `loaded` the index files written since it was loaded (by this process or
    /// another); the files it already holds are not read again. Returns how many were read.
    pub fn load_new_index_files(&self, loaded: &mut LoadedIndex) -> Result<usize> {
        let known: std::collections::HashSet<IndexId> = loaded.files.iter().copied().collect();
        let mut read = 0;
        for f in crate::repository::index::list_files(self.backend.as_ref())?.0 {
            let id: IndexId = f.name.parse()?;
            if known.contains(&id) {
                continue;
            }
            let bytes = self.backend.read(FileKind::Index, &f.name)?;
            let what = format!("index {}", f.name);
            if Id::hash_of(&bytes).to_hex() != f.name {
                return Err(RepoError::corrupt(what, "content does not match its name"));
            }
            loaded
                .index
                .add_file(&IndexFile::open(&self.crypto, &bytes, &what)?);
            loaded.files.push(id);
            read += 1;
        }
        Ok(read)
    }

    pub fn save_index(&self, f: &IndexFile) -> Result<IndexId> {
        let bytes = f.seal(&self.crypto);
        let id = IndexId(Id::hash_of(&bytes));
        self.backend.write(FileKind::Index, &id.to_hex(), &bytes)?;
        Ok(id)
    }

    /// Fetch, open and verify one blob. When a copy is damaged and the blob is stored more
    /// than once (healed by a later snapshot), the next copy is tried.
    pub fn read_blob(&self, index: &Index, id: &BlobId) -> Result<Vec<u8>> {
        // A data blob the index knows without its place: through the whole index.
        let index = index.whole_for(id, || Ok(self.load_index()?.index))?;
        let locs = index.locations(id);
        if locs.is_empty() {
            return Err(RepoError::MissingBlob(id.to_hex()));
        }
        let mut first_err = None;
        for loc in locs {
            match self.read_blob_at(index, id, &loc) {
                Ok(b) => return Ok(b),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or_else(|| RepoError::MissingBlob(id.to_hex())))
    }

    /// Read one stored copy of a blob.
    pub(crate) fn read_blob_at(
        &self,
        index: &Index,
        id: &BlobId,
        loc: &BlobLocation,
    ) -> Result<Vec<u8>> {
        let pack = index.pack_of(loc);
        let sealed = self.backend.read_range(
            FileKind::Pack,
            &pack.to_hex(),
            loc.offset as u64,
            loc.length as usize,
        )?;
        blob::decode(&self.crypto, id, loc.compressed(), loc.raw_len, &sealed)
    }

    pub fn load_tree(&self, index: &Index, id: &BlobId) -> Result<Tree> {
        let b = self.read_blob(index, id)?;
        Tree::decode(&b).map_err(|e| match e {
            RepoError::Corrupt { reason, .. } => {
                RepoError::corrupt(format!("tree {}", id.to_hex()), reason)
            }
            other => other,
        })
    }

    pub fn save_snapshot(&self, s: &Snapshot) -> Result<SnapshotId> {
        let bytes = s.seal(&self.crypto);
        let id = SnapshotId(Id::hash_of(&bytes));
        self.backend
            .write(FileKind::Snapshot, &id.to_hex(), &bytes)?;
        Ok(id)
    }

    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        let name = id.to_hex();
        let bytes = self.backend.read(FileKind::Snapshot, &name)?;
        let what = format!("snapshot {name}");
        if Id::hash_of(&bytes) != id.0 {
            return Err(RepoError::corrupt(what, "content does not match its name"));
        }
        Snapshot::open(&self.crypto, &bytes, &what)
    }

    /// Every snapshot, oldest first, plus the ones that could not be read.
    pub fn snapshots(&self) -> Result<(Vec<SnapshotEntry>, Vec<Unreadable>)> {
        let names = self.backend.list(FileKind::Snapshot)?;
        let loaded = parallel_map(&names, |f| {
            let id: SnapshotId = f.name.parse()?;
            Ok((id, self.load_snapshot(&id)?))
        });
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for (f, r) in names.iter().zip(loaded) {
            match r {
                Ok(s) => ok.push(s),
                Err(e) => bad.push((f.name.clone(), e)),
            }
        }
        ok.sort_by(|a, b| history_order((&a.0, &a.1), (&b.0, &b.1)));
        Ok((ok, bad))
    }

    /// Resolve `latest`, `latest~N` (the N-th before the latest) or a unique id prefix.
    pub fn find_snapshot(&self, spec: &str) -> Result<(SnapshotId, Snapshot)> {
        self.find_snapshot_noting(spec).map(|(id, s, _)| (id, s))
    }

    /// [`Repository::find_snapshot`], also returning the snapshot files that could not be
    /// read while resolving `latest` (one of them may be newer than the one found).
    pub fn find_snapshot_noting(
        &self,
        spec: &str,
    ) -> Result<(SnapshotId, Snapshot, Vec<Unreadable>)> {
        let spec = spec.trim();
        if let Some(rest) = spec.strip_prefix("latest") {
            let back: usize = match rest.strip_prefix('~') {
                None if rest.is_empty() => 0,
                Some(n) => n
                    .parse()
                    .map_err(|_| RepoError::NoSuchSnapshot(spec.to_string()))?,
                None => return Err(RepoError::NoSuchSnapshot(spec.to_string())),
            };
            let (mut all, bad) = self.snapshots()?;
            let n = all.len();
            if back >= n {
                return Err(RepoError::NoSuchSnapshot(format!(
                    "{spec} (the repository has {n} snapshot(s))"
                )));
            }
            let (id, snap) = all.swap_remove(n - 1 - back);
            return Ok((id, snap, bad));
        }
        if spec.is_empty() || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RepoError::NoSuchSnapshot(spec.to_string()));
        }
        let lower = spec.to_ascii_lowercase();
        let matches: Vec<String> = self
            .backend
            .list(FileKind::Snapshot)?
            .into_iter()
            .map(|f| f.name)
            .filter(|n| n.starts_with(&lower))
            .collect();
        match matches.len() {
            0 => Err(RepoError::NoSuchSnapshot(spec.to_string())),
            1 => {
                let id: SnapshotId = matches[0].parse()?;
                Ok((id, self.load_snapshot(&id)?, Vec::new()))
            }
            n => Err(RepoError::AmbiguousSnapshot {
                prefix: spec.to_string(),
                count: n,
            }),
        }
    }
}

/// Map over items on a few threads (I/O-bound metadata reads), keeping order.
/// Bytes of index files read and opened at once by [`Repository::load_index`]: more files
/// in a batch decode in parallel, but each is held whole until it is merged.
pub const INDEX_BATCH_BYTES: u64 = 8 << 20;

/// How many of `files` (at least one, at most `most`) to read in the next batch: while
/// their sizes (as listed; a file larger than listed is still read whole) stay within
/// [`INDEX_BATCH_BYTES`].
fn index_batch(files: &[FileInfo], most: usize) -> usize {
    let mut bytes = 0u64;
    let mut n = 0;
    for f in files.iter().take(most) {
        bytes = bytes.saturating_add(f.size);
        if n > 0 && bytes > INDEX_BATCH_BYTES {
            break;
        }
        n += 1;
    }
    n.max(1).min(files.len())
}

pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8);
    if items.len() < 4 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(|| c.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}
