//! The snapshot pipeline.
//!
//! ```text
//! walker (this thread): list dirs, compare with the parent snapshot, read + chunk small files
//!    ├─ bounded channel of larger files ─▶ readers (2 threads): read + chunk (`reading`)
//!    ├─ bounded channel of chunks (walker, readers) ─▶ workers (N threads): keyed BLAKE3 →
//!    │                                                 known? → zstd → seal
//!    │       └─ bounded channel ─▶ packer ─▶ pack writer ─▶ backend
//!    └─ bounded channel of directories (post-order) ─▶ finalizer: waits for its files' chunk
//!       ids, writes one tree blob per directory, hands the subtree id to the parent
//! ```
//! Memory is bounded by configuration, not by file or repository size: the chunk bytes in
//! flight by a byte budget ([`CHUNK_BUDGET`], charged when a chunk is copied out of a read
//! buffer, given back when its sealed blob is copied into a pack or found stored), the
//! walker's and two readers' read buffers (resident only as far as reads filled them: what
//! is left of a cut plus one `chunker::READ_WINDOW`), [`RECYCLED_BUFFERS`] spare chunk
//! buffers, three pack buffers and the directory being walked; docs/design.md (invariant 6)
//! adds them up. Chunk buffers are laid out for sealing in place (room for the nonce in
//! front, for padding and tag behind) and go back to the walker and readers once the packer
//! has copied them. The snapshot manifest is written only after every pack and index file.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::error::{Interruption, RepoError, Result, Worker};
use crate::format::blob::{self, BlobType, Compression, EncodedBlob, PlainBuf};
use crate::format::crypto::Crypto;
use crate::format::id::{BlobId, SnapshotId};
use crate::format::snapshot::{self, Snapshot, Summary};
use crate::format::tree::{Node, NodeKind, Tree};
use crate::ops::fs_source::{Source, SourceEntry};
use crate::ops::stop::Stop;
use crate::repository::Repository;
use crate::repository::budget::{Budget, Permit};
use crate::repository::chunker::Chunker;
use crate::repository::index::Index;
use crate::repository::lock::LockHandle;
use crate::repository::packer::{self, Packer};

mod lookahead;
mod reading;
mod reuse;
mod source_walk;
#[cfg(test)]
mod tests_batch;
#[cfg(test)]
mod tests_ids;
#[cfg(test)]
mod tests_reuse;
mod warm;

use reuse::{Folder, Parent};
use source_walk::Walker;

pub use crate::ops::observe::{Inspector, NoHooks, Observer, TailProbe};
pub use warm::{Warmed, warm_up};

pub struct ArchiveOptions {
    pub source: snapshot::Source,
    pub tags: Vec<String>,
    pub parent: Option<(SnapshotId, Snapshot)>,
    /// Older snapshots of the same source consulted for unchanged files the parent lacks
    /// (the parent may be a `partial` snapshot that stopped half-way).
    pub also: Vec<Snapshot>,
    /// Blobs known to be damaged: files containing them are read again even if unchanged.
    pub reread: HashSet<BlobId>,
    pub workers: usize,
    /// Asked to stop early (Ctrl-C): keep what was read as a `partial` snapshot.
    pub stop: Option<Arc<Stop>>,
    /// The lock this run holds: if it may have been lost meanwhile, every blob the new
    /// snapshot uses is checked against the index as it is now before anything is committed.
    pub lock: Option<LockHandle>,
    /// The snapshot's time (nanoseconds since the epoch) instead of now: imports of old
    /// backups keep their dates, so retention policies can be tried on them.
    pub time: Option<i64>,
}

#[derive(Default)]
struct Stats {
    files_new: AtomicU64,
    files_changed: AtomicU64,
    files_unchanged: AtomicU64,
    dirs: AtomicU64,
    files_total: AtomicU64,
    bytes_total: AtomicU64,
    bytes_read: AtomicU64,
    bytes_added: AtomicU64,
    blobs_added: AtomicU64,
    errors: AtomicU64,
}

#[derive(Default)]
struct SlotState {
    ids: Vec<Option<BlobId>>,
    outstanding: usize,
    done_reading: bool,
    /// The finalizer waits on this file: only then is the condition variable notified
    /// (a notify is a `futex` call even with no one waiting: one per file at a million
    /// tiny files).
    waiting: bool,
    /// Read by a reader thread: the length read and the media facts, for the node.
    read: Option<(u64, Option<crate::format::tree::MediaMeta>)>,
    /// A reader thread could not read it (or stopped first): the file is left out.
    left_out: bool,
}

impl SlotState {
    /// Note chunk `idx`'s id; true when the finalizer must be woken.
    fn filled(&mut self, idx: usize, id: BlobId) -> bool {
        if let Some(slot) = self.ids.get_mut(idx) {
            *slot = Some(id);
        }
        self.outstanding = self.outstanding.saturating_sub(1);
        self.waiting
    }
}

/// The chunk ids of one file being processed, filled in by the workers.
#[derive(Default)]
struct FileSlot {
    state: Mutex<SlotState>,
    cv: Condvar,
}

struct ChunkJob {
    slot: Arc<FileSlot>,
    idx: usize,
    data: PlainBuf,
    compression: Compression,
    /// This chunk's bytes charged to [`Shared::budget`], given back once its blob is in a
    /// pack (or found stored already).
    permit: Permit,
}

/// Chunks handed to a worker at once. Each hand-off costs the walker and a worker a
/// channel operation and, when the worker sleeps, a `futex` wake (and the worker's spin
/// before it sleeps, `sched_yield`s): per file, that was most of the time of a snapshot
/// of many tiny files. So small chunks travel in batches, and a chunk as large as a
/// photo's travels alone as before (the workers start on it at once).
type Batch = Vec<ChunkJob>;
/// A batch is handed over once it holds this many chunks…
const BATCH_CHUNKS: usize = 64;
/// … or this many bytes (and at every folder's end, before the folder goes to the
/// finalizer, which waits for its files' chunks).
const BATCH_BYTES: usize = 256 << 10;

/// Small blobs a worker sealed, not yet handed to the packer: the other end of a
/// [`Batch`] (a large blob goes alone, as before).
#[derive(Default)]
struct Bundle {
    blobs: Vec<EncodedBlob>,
    bytes: usize,
    /// The blobs' charges to the byte budget, handed to the packer with them.
    permit: Permit,
}

/// Chunk buffers on their way back to the walker and readers (from the packer, or from a
/// worker when the chunk was already stored). Outside the byte budget, so few: each holds
/// up to 2 × its last chunk + 1 MiB (`PlainBuf::new_in`). 4 measured 10–15 MB more peak
/// RSS than 2 at a first snapshot of 2 GiB, none no better than 2.
const RECYCLED_BUFFERS: usize = 2;
/// Chunk bytes in flight at most (sealed size: headroom, padding and tag included), from
/// the copy out of a read buffer to the copy into a pack, whatever thread read them and
/// whichever queue or batch holds them (`repository::budget`). A chunk larger than this
/// (at most 8 MiB + padding) goes alone, so the bound is max(this, the largest chunk):
/// about seven photo chunks of ~1.2 MiB, enough for two workers and the packer. The
/// channels' counts (2 × workers batches, 4 bundles) bounded 30–40 MB of chunks with two
/// reader threads; 8 MiB measured 98–105 MB peak RSS at a first snapshot of 2 GiB, 16 MiB
/// with 4 recycled buffers 114–118 MB (main: 118–133 MB).
const CHUNK_BUDGET: usize = 8 << 20;
/// How far ahead of the file being chunked the source is asked to fetch (cold disks).
const PREFETCH_BYTES: u64 = crate::storage::readahead::READ_AHEAD;

enum Pending {
    Ready(Node),
    File(Node, Arc<FileSlot>),
    Dir(Node),
}

/// Shared state of the workers and finalizer.
struct Shared {
    crypto: Crypto,
    /// Chunk bytes between reading and the packs (see [`CHUNK_BUDGET`]).
    budget: Arc<Budget>,
    index: Arc<Index>,
    claimed: Mutex<HashSet<BlobId>>,
    reread: HashSet<BlobId>,
    stats: Stats,
    abort: AtomicBool,
    error: Mutex<Option<RepoError>>,
}

impl Shared {
    fn fail(&self, e: RepoError) {
        if let Ok(mut g) = self.error.lock()
            && g.is_none()
        {
            *g = Some(e);
        }
        self.abort.store(true, Relaxed);
    }

    /// Claim a blob for storing: false if it is already stored or being stored.
    /// Blobs known to be damaged are stored again, so a good copy exists.
    fn claim(&self, id: &BlobId) -> bool {
        if self.index.contains(id) && !self.reread.contains(id) {
            return false;
        }
        self.claimed
            .lock()
            .map(|mut c| c.insert(*id))
            .unwrap_or(false)
    }

    fn store(&self, tx: &Sender<EncodedBlob>, e: EncodedBlob) -> bool {
        self.count_stored(&e);
        if tx.send(e).is_err() {
            self.fail(Interruption::WorkerStopped(Worker::PackWriter).into());
            return false;
        }
        true
    }

    fn count_stored(&self, e: &EncodedBlob) {
        self.stats
            .bytes_added
            .fetch_add(e.sealed.len() as u64, Relaxed);
        self.stats.blobs_added.fetch_add(1, Relaxed);
    }

    /// Hand the small blobs a worker sealed to the packer at once (see [`Batch`]).
    fn store_bundle(&self, tx: &Sender<packer::Bundle>, bundle: &mut Bundle) -> bool {
        if bundle.blobs.is_empty() {
            return true;
        }
        bundle.bytes = 0;
        let blobs = std::mem::replace(&mut bundle.blobs, Vec::with_capacity(BATCH_CHUNKS));
        let permit = std::mem::take(&mut bundle.permit);
        if tx.send((blobs, permit)).is_err() {
            self.fail(Interruption::WorkerStopped(Worker::PackWriter).into());
            return false;
        }
        true
    }
}

/// Take a snapshot of `source` into `repo`. Returns the new snapshot.
pub fn run(
    repo: &Repository,
    index: Index,
    source: &dyn Source,
    opts: ArchiveOptions,
    observer: &dyn Observer,
    inspector: &dyn Inspector,
) -> Result<(SnapshotId, Snapshot)> {
    run_shared(repo, Arc::new(index), source, opts, observer, inspector)
}

/// [`run`] with an index the caller keeps: once this returns, the caller holds the only
/// reference again, and can add the index files this run wrote
/// ([`Repository::load_new_index_files`]) instead of loading the whole index anew.
pub fn run_shared(
    repo: &Repository,
    index: Arc<Index>,
    source: &dyn Source,
    opts: ArchiveOptions,
    observer: &dyn Observer,
    inspector: &dyn Inspector,
) -> Result<(SnapshotId, Snapshot)> {
    let started = Instant::now();
    let time = opts.time.unwrap_or_else(crate::format::time::now_ns);
    let crypto = repo.crypto().clone();
    let chunker = Chunker::new(&repo.config().chunker, &crypto);
    let shared = Arc::new(Shared {
        crypto: crypto.clone(),
        budget: Budget::new(CHUNK_BUDGET),
        index,
        claimed: Mutex::new(HashSet::new()),
        reread: opts.reread.clone(),
        stats: Stats::default(),
        abort: AtomicBool::new(false),
        error: Mutex::new(None),
    });
    let (recycle_tx, recycle_rx) = bounded::<Vec<u8>>(RECYCLED_BUFFERS);
    let packer = Packer::start_recycling(
        repo.backend().clone(),
        crypto.clone(),
        repo.config().pack_size as usize,
        recycle_tx.clone(),
    );
    let workers = opts.workers.max(1);
    let (chunk_tx, chunk_rx) = bounded::<Batch>(workers * 2);
    let (dir_tx, dir_rx) = bounded::<Folder>(64);
    let level = repo.config().compression_level;
    let interrupted: Mutex<Option<String>> = Mutex::new(None);
    // The source went away (or a stop came) while a reader thread read a file.
    let read_fatal: Mutex<Option<String>> = Mutex::new(None);

    let root: Result<Option<BlobId>> = std::thread::scope(|s| {
        for _ in 0..workers {
            let (rx, sh) = (chunk_rx.clone(), shared.clone());
            let tx = packer.bundle_sender();
            let recycle = recycle_tx.clone();
            s.spawn(move || worker(rx, tx, sh, recycle));
        }
        drop((chunk_rx, recycle_tx));
        let (sh, tx) = (shared.clone(), packer.sender());
        let finalizer = s.spawn(move || finalize(dir_rx, tx, sh, level, observer));
        // The parent first, then older snapshots it may not cover (after a partial run).
        let parent_trees: Vec<Parent> = opts
            .parent
            .iter()
            .map(|(_, p)| p)
            .chain(opts.also.iter())
            .filter_map(|p| {
                let tree = repo.load_tree(&shared.index, &p.tree).ok()?;
                Some(Parent { id: p.tree, tree })
            })
            .collect();
        let reading = reading::Reading {
            source,
            chunker: &chunker,
            shared: &shared,
            observer,
            inspector,
            stop: opts.stop.as_deref(),
            level,
            chunk_tx,
            batch: Vec::new(),
            batch_bytes: 0,
            buf: Vec::new(),
            recycled: recycle_rx,
        };
        // Larger files are read and chunked beside the walker (see `reading`).
        let readers = reading::readers(workers);
        let (file_tx, file_rx) = bounded::<reading::FileJob>(readers);
        let mut reader_threads = Vec::with_capacity(readers);
        for _ in 0..readers {
            let (r, jobs, fatal) = (reading.another(), file_rx.clone(), &read_fatal);
            reader_threads.push(s.spawn(move || r.serve(jobs, fatal)));
        }
        drop(file_rx);
        let mut walker = Walker {
            repo,
            source,
            shared: &shared,
            observer,
            reading,
            files: (readers > 0).then_some(file_tx),
            read_fatal: &read_fatal,
            dir_tx,
            reread: &opts.reread,
            fatal: None,
            stop: opts.stop.as_deref(),
            lookahead: lookahead::Lookahead::new(parent_trees.is_empty()),
        };
        let walked = walker.walk(b"", parent_trees);
        let fatal = walker.fatal.take();
        // The reader threads finish the files handed over, then stop.
        drop(walker);
        for r in reader_threads {
            if r.join().is_err() {
                shared.fail(Interruption::Aborted.into());
            }
        }
        let fatal = fatal.or_else(|| read_fatal.lock().ok().and_then(|mut f| f.take()));
        if let Some(f) = fatal
            && let Ok(mut g) = interrupted.lock()
        {
            *g = Some(f);
        }
        let root = finalizer
            .join()
            .unwrap_or_else(|_| Err(Interruption::WorkerPanicked(Worker::TreeWriter).into()));
        walked?;
        root
    });
    // A failed pack or index write (a full disk) is why the workers saw "the pack writer
    // stopped": report the cause first. Packs written before any failure are indexed, so
    // a rerun reuses them.
    let flushed = packer.flush()?;
    // Every pack of the run is durable: the parity of the last ones is written now, beside
    // the index and snapshot below, not after them.
    repo.backend().packs_done();
    let root = match shared.error.lock().ok().and_then(|mut g| g.take()) {
        Some(e) => Err(e),
        None => root.and_then(|r| r.ok_or(RepoError::NothingToBackUp)),
    };
    let root = match root {
        Ok(r) => r,
        Err(e) => {
            flushed.write_index()?;
            return Err(e);
        }
    };
    // Others may have taken our lock as stale and pruned data this snapshot reuses.
    if let Some(why) = opts.lock.as_ref().and_then(|l| l.lost()) {
        crate::ops::revalidate::check(repo, &flushed, &root, &why)?;
    }
    flushed.write_index()?;
    let st = &shared.stats;
    let summary = Summary {
        files_new: st.files_new.load(Relaxed),
        files_changed: st.files_changed.load(Relaxed),
        files_unchanged: st.files_unchanged.load(Relaxed),
        dirs: st.dirs.load(Relaxed),
        files_total: st.files_total.load(Relaxed),
        bytes_total: st.bytes_total.load(Relaxed),
        bytes_read: st.bytes_read.load(Relaxed),
        bytes_added: st.bytes_added.load(Relaxed),
        blobs_added: st.blobs_added.load(Relaxed),
        errors: st.errors.load(Relaxed),
        duration_ms: started.elapsed().as_millis() as u64,
        interrupted: interrupted.into_inner().ok().flatten(),
    };
    if let (Some(why), 0) = (&summary.interrupted, summary.files_total) {
        // Nothing was read before the source went away: no snapshot at all.
        return Err(Interruption::Stopped { why: why.clone() }.into());
    }
    let mut tags = opts.tags;
    if summary.interrupted.is_some() {
        tags.push("partial".into());
    }
    let mut snap = Snapshot {
        version: 1,
        time,
        hostname: crate::format::time::hostname(),
        username: crate::format::time::username(),
        source: opts.source,
        tags,
        tree: root,
        parent: opts.parent.map(|(id, _)| id),
        incomplete: summary.errors > 0 || summary.interrupted.is_some(),
        summary,
        original: None,
        library: None,
    };
    observer.annotate(&mut snap);
    let id = repo.save_snapshot(&snap)?;
    Ok((id, snap))
}

fn worker(
    rx: Receiver<Batch>,
    bundles: Sender<packer::Bundle>,
    sh: Arc<Shared>,
    recycle: Sender<Vec<u8>>,
) {
    let mut bundle = Bundle::default();
    for batch in rx.iter() {
        if sh.abort.load(Relaxed) {
            // Keep draining so the walker never blocks; the run is failing anyway.
            continue;
        }
        for job in batch {
            chunk(job, &bundles, &mut bundle, &sh, &recycle);
            if bundle.bytes >= BATCH_BYTES || bundle.blobs.len() >= BATCH_CHUNKS {
                sh.store_bundle(&bundles, &mut bundle);
            }
        }
        // Before waiting for the next batch: the packer must not wait for these.
        sh.store_bundle(&bundles, &mut bundle);
    }
}

/// Hash one chunk, store it unless it is stored already, and note its id in its file.
fn chunk(
    job: ChunkJob,
    tx: &Sender<packer::Bundle>,
    bundle: &mut Bundle,
    sh: &Shared,
    recycle: &Sender<Vec<u8>>,
) {
    let ChunkJob {
        slot,
        idx,
        data,
        compression,
        permit,
    } = job;
    let id = sh.crypto.blob_id(data.plain());
    if sh.claim(&id) {
        let e = blob::encode_in_place(&sh.crypto, id, BlobType::Data, data, compression);
        sh.count_stored(&e);
        if e.sealed.len() < BATCH_BYTES {
            bundle.bytes += e.sealed.len();
            bundle.blobs.push(e);
            bundle.permit.join(permit);
        } else if tx.send((vec![e], permit)).is_err() {
            // A large blob goes alone, with its charge to the budget.
            sh.fail(Interruption::WorkerStopped(Worker::PackWriter).into());
        }
    } else {
        let _ = recycle.try_send(data.into_vec());
        drop(permit);
    }
    let wake = slot.state.lock().map_or(true, |mut st| st.filled(idx, id));
    if wake {
        slot.cv.notify_all();
    }
}

fn finalize(
    rx: Receiver<Folder>,
    tx: Sender<EncodedBlob>,
    sh: Arc<Shared>,
    level: i32,
    observer: &dyn Observer,
) -> Result<Option<BlobId>> {
    let mut stack: Vec<BlobId> = Vec::new();
    for folder in rx.iter() {
        let mut tree = match folder {
            Folder::Built(dir, entries) => match built(&dir, entries, &mut stack, &sh, observer)? {
                Some(tree) => tree,
                None => return Ok(None),
            },
            Folder::Same(same) => match reuse::settle(same, &mut stack, &sh, observer)? {
                Ok(id) => {
                    stack.push(id);
                    continue;
                }
                Err(tree) => tree,
            },
        };
        tree.sort();
        let bytes = tree.encode();
        let id = sh.crypto.blob_id(&bytes);
        if sh.claim(&id) {
            let e = blob::encode(
                &sh.crypto,
                id,
                BlobType::Tree,
                &bytes,
                Compression::Try(level),
            );
            if !sh.store(&tx, e) {
                return Ok(None);
            }
        }
        stack.push(id);
    }
    Ok(stack.pop())
}

/// The tree of a folder whose nodes the walker built: its subfolders' ids are the last
/// ones on `stack`, its files' chunk ids are waited for. `None`: the run is failing.
fn built(
    dir: &[u8],
    entries: Vec<Pending>,
    stack: &mut Vec<BlobId>,
    sh: &Shared,
    observer: &dyn Observer,
) -> Result<Option<Tree>> {
    let n_dirs = entries
        .iter()
        .filter(|p| matches!(p, Pending::Dir(_)))
        .count();
    if stack.len() < n_dirs {
        return Err(Interruption::DirectoryOrder.into());
    }
    let mut subtrees = stack.split_off(stack.len() - n_dirs).into_iter();
    let mut tree = Tree::default();
    for p in entries {
        let node = match p {
            Pending::Ready(n) => n,
            Pending::Dir(mut n) => {
                n.subtree = subtrees.next();
                n
            }
            Pending::File(mut n, slot) => {
                let mut st = slot
                    .state
                    .lock()
                    .map_err(|_| RepoError::Interrupted(Interruption::Poisoned))?;
                while !(st.done_reading && st.outstanding == 0) {
                    if sh.abort.load(Relaxed) {
                        return Ok(None);
                    }
                    st.waiting = true;
                    st = slot
                        .cv
                        .wait_timeout(st, Duration::from_millis(100))
                        .map_err(|_| RepoError::Interrupted(Interruption::Poisoned))?
                        .0;
                }
                if st.left_out {
                    continue;
                }
                if let Some((size, media)) = st.read.take() {
                    n.size = size;
                    n.media = media;
                }
                n.content = st.ids.iter().flatten().copied().collect();
                n
            }
        };
        if node.kind == NodeKind::File {
            observer.recorded(dir, &node);
        }
        tree.nodes.push(node);
    }
    Ok(Some(tree))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::format::snapshot::Source as SnapshotSource;
    use crate::ops::fs_source::FolderSource;
    use crate::ops::test_support::{Photos, create_small_repo, open_with, photo};
    use crate::storage::faulty::{FaultyBackend, Op};
    use crate::storage::{Backend, FileKind, LocalBackend};

    /// `snapshot` loads the index once: after the run, the index it passed in is given back
    /// and only the index files the run wrote are read to bring it up to date.
    #[test]
    fn after_a_run_only_the_new_index_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let (root, src) = (dir.path().join("repo"), dir.path().join("lib"));
        std::fs::create_dir_all(&src).unwrap();
        create_small_repo(&root, true);
        let counted = Arc::new(
            FaultyBackend::new(Arc::new(LocalBackend::new(&root)))
                .watching(&[Op::Read])
                .kinds(&[FileKind::Index]),
        );
        let repo = open_with(counted.clone() as Arc<dyn Backend>);
        let folder = FolderSource::new(std::slice::from_ref(&src)).unwrap();
        let opts = || ArchiveOptions {
            source: SnapshotSource::folder(folder.absolute_paths()),
            tags: Vec::new(),
            parent: None,
            reread: Default::default(),
            also: Vec::new(),
            workers: 2,
            stop: None,
            lock: None,
            time: None,
        };
        for round in 0..2 {
            for i in 0..5 {
                photo(&src, round * 10 + i);
            }
            let mut loaded = repo.load_index().unwrap();
            let files_before = loaded.files.len();
            let index = Arc::new(std::mem::take(&mut loaded.index));
            run_shared(&repo, index.clone(), &folder, opts(), &NoHooks, &Photos).unwrap();
            loaded.index = Arc::try_unwrap(index)
                .ok()
                .expect("the run let go of the index");
            let reads_before = counted.count();
            let new = repo.load_new_index_files(&mut loaded).unwrap();
            assert!(new >= 1);
            assert_eq!(loaded.files.len(), files_before + new);
            assert_eq!(counted.count() - reads_before, new as u64, "round {round}");
            let full = repo.load_index().unwrap();
            assert_eq!(loaded.index.blob_count(), full.index.blob_count());
            let mut a = loaded.files.clone();
            let mut b = full.files.clone();
            a.sort();
            b.sort();
            assert_eq!(a, b);
        }
    }
}
