//! The packer: collects sealed blobs into packs (data and tree blobs in separate packs, so
//! metadata can be read without touching photo data), writes each finished pack on one of
//! `PACK_WRITERS` writer threads, and writes index files only after the packs they name
//! are durable. An index checkpoint is written every `CHECKPOINT_PACKS` packs (32, fewer on
//! remote backends, see [`Backend::checkpoint_packs`]), so an interrupted snapshot leaves
//! its uploaded data reusable by the next run, and before an index file would list more
//! than `MAX_INDEX_BLOBS` blobs (packs of tiny files).
//!
//! Memory: at most `PACK_BUFFERS` data-pack buffers exist (one being filled, one per
//! writer); a written pack's buffer goes back to the packer for the next pack, so packs do
//! not fault in fresh memory. The pack id is hashed as blobs are added (on the packer
//! thread), so a writer only seals the header and hands the bytes to the backend.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Select, Sender, bounded};

use crate::error::{Interruption, RepoError, Result, Worker};
use crate::format::blob::{BlobType, EncodedBlob};
use crate::format::crypto::Crypto;
use crate::format::id::IndexId;
use crate::format::index_file::MAX_INDEX_BLOBS;
use crate::format::pack::PackWriter;
use crate::repository::budget::Permit;
use crate::repository::index::{IndexFile, IndexedPack};
use crate::storage::{Backend, FileKind, PackBuffer, direct_io};

/// Threads handing finished packs to the backend. A backend write of a 16 MiB pack (the
/// kernel's copy into the page cache, the fsync; an upload on a remote backend) costs more
/// than building the pack, so one writer would be a serial ceiling.
pub(crate) const PACK_WRITERS: usize = 2;
/// Data-pack buffers in circulation: the one being filled and one per writer.
pub(crate) const PACK_BUFFERS: usize = PACK_WRITERS + 1;
/// Sealed blobs queued between the workers and the packer.
const BLOB_QUEUE: usize = 4;

/// Blobs handed to the packer at once, with the byte budget they hold (the snapshot
/// pipeline's, see `repository::budget`): it is given back once they are copied into
/// their packs.
pub(crate) type Bundle = (Vec<EncodedBlob>, Permit);

#[derive(Clone, Debug, Default)]
pub struct PackerStats {
    pub packs: u64,
    pub blobs: u64,
    pub bytes: u64,
    pub index_files: Vec<IndexId>,
    pub packs_written: Vec<IndexedPack>,
}

pub struct Packer {
    tx: Option<Sender<EncodedBlob>>,
    bundles: Option<Sender<Bundle>>,
    join: Option<JoinHandle<Result<Flushed>>>,
}

/// Every pack written and durable, the last of them not yet in an index file: the caller
/// may check what it is about to commit (a snapshot whose lock was lost re-validates its
/// blobs) before `Flushed::write_index`.
pub struct Flushed {
    shared: Arc<Writers>,
}

impl Flushed {
    /// The packs written since the last index checkpoint (no index file names them yet).
    pub fn pending(&self) -> Vec<IndexedPack> {
        self.shared
            .written
            .lock()
            .map(|w| w.pending.clone())
            .unwrap_or_default()
    }

    /// Leave out of the coming index file the pending packs that are no longer stored
    /// (deleted by a prune elsewhere while this run's lock was lost); returns how many.
    pub(crate) fn drop_missing(&self) -> Result<usize> {
        let Ok(mut w) = self.shared.written.lock() else {
            return Err(Interruption::WorkerPanicked(Worker::PackWriter).into());
        };
        let before = w.pending.len();
        let mut kept = Vec::with_capacity(before);
        for p in std::mem::take(&mut w.pending) {
            if self.shared.backend.exists(FileKind::Pack, &p.id.to_hex())? {
                kept.push(p);
            }
        }
        w.pending = kept;
        Ok(before - w.pending.len())
    }

    /// Write the index file naming the pending packs; returns what the run wrote.
    pub(crate) fn write_index(self) -> Result<PackerStats> {
        let mut w = self.shared.written.lock().map_err(|_| {
            RepoError::Interrupted(Interruption::WorkerPanicked(Worker::PackWriter))
        })?;
        self.shared.save_index(&mut w)?;
        Ok(std::mem::take(&mut w.stats))
    }
}

impl Packer {
    pub fn start(backend: Arc<dyn Backend>, crypto: Crypto, pack_size: usize) -> Packer {
        Self::start_inner(backend, crypto, pack_size, None)
    }

    /// Like [`Packer::start`], and each blob's buffer, once copied into its pack, is offered
    /// on `recycle` (never blocking: dropped when the channel is full) so the producer can
    /// reuse the allocation for the next chunk.
    pub(crate) fn start_recycling(
        backend: Arc<dyn Backend>,
        crypto: Crypto,
        pack_size: usize,
        recycle: Sender<Vec<u8>>,
    ) -> Packer {
        Self::start_inner(backend, crypto, pack_size, Some(recycle))
    }

    fn start_inner(
        backend: Arc<dyn Backend>,
        crypto: Crypto,
        pack_size: usize,
        recycle: Option<Sender<Vec<u8>>>,
    ) -> Packer {
        let (tx, rx) = bounded::<EncodedBlob>(BLOB_QUEUE);
        let (bundles, bundles_rx) = bounded::<Bundle>(BLOB_QUEUE);
        let join = std::thread::Builder::new()
            .name("packer".into())
            .spawn(move || run(backend, crypto, pack_size, (rx, bundles_rx), recycle))
            .ok();
        Packer {
            tx: Some(tx),
            bundles: Some(bundles),
            join,
        }
    }

    /// A sender for worker threads. Sending fails once the packer stopped on an error.
    pub fn sender(&self) -> Sender<EncodedBlob> {
        self.tx.clone().unwrap_or_else(|| bounded(0).0)
    }

    /// A sender of several small blobs at once: one hand-off (and at most one wake of the
    /// packer) for all of them. Per blob, the hand-offs were most of a snapshot's system
    /// calls at many tiny files. The caller keeps a bundle small (a few hundred KiB, or one
    /// large blob): the queue holds [`BLOB_QUEUE`] bundles. The bundle's permit is dropped
    /// once its blobs are copied into packs.
    pub(crate) fn bundle_sender(&self) -> Sender<Bundle> {
        self.bundles.clone().unwrap_or_else(|| bounded(0).0)
    }

    /// Flush everything and write the final index; returns what was written.
    pub fn finish(self) -> Result<PackerStats> {
        self.flush()?.write_index()
    }

    /// Write every pack, but not yet the index file naming the last of them. On an error
    /// the packs already written are indexed first, so a rerun reuses them.
    pub fn flush(mut self) -> Result<Flushed> {
        drop((self.tx.take(), self.bundles.take()));
        match self.join.take() {
            Some(j) => j
                .join()
                .unwrap_or_else(|_| Err(Interruption::WorkerPanicked(Worker::Packer).into())),
            None => Err(Interruption::WorkerNotStarted(Worker::Packer).into()),
        }
    }
}

impl Drop for Packer {
    fn drop(&mut self) {
        drop((self.tx.take(), self.bundles.take()));
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// What the writer threads share: the packs written since the last index checkpoint, the
/// totals, and the first error.
struct Written {
    pending: Vec<IndexedPack>,
    stats: PackerStats,
}

struct Writers {
    backend: Arc<dyn Backend>,
    crypto: Crypto,
    written: Mutex<Written>,
    failed: AtomicBool,
    error: Mutex<Option<RepoError>>,
}

impl Writers {
    fn fail(&self, e: RepoError) {
        if let Ok(mut g) = self.error.lock()
            && g.is_none()
        {
            *g = Some(e);
        }
        self.failed.store(true, Relaxed);
    }

    /// Write an index file naming the pending packs (all durable already).
    fn save_index(&self, w: &mut Written) -> Result<()> {
        if w.pending.is_empty() {
            return Ok(());
        }
        let f = IndexFile {
            supersedes: Vec::new(),
            packs: std::mem::take(&mut w.pending),
        };
        let bytes = f.seal(&self.crypto);
        let id = IndexId(crate::format::id::Id::hash_of(&bytes));
        let name = id.to_hex();
        write_once(self.backend.as_ref(), FileKind::Index, &name, |b| {
            b.write(FileKind::Index, &name, &bytes)
        })?;
        w.stats.index_files.push(id);
        w.stats.packs_written.extend(f.packs);
        Ok(())
    }
}

fn run(
    backend: Arc<dyn Backend>,
    crypto: Crypto,
    pack_size: usize,
    (rx, bundles): (Receiver<EncodedBlob>, Receiver<Bundle>),
    recycle: Option<Sender<Vec<u8>>>,
) -> Result<Flushed> {
    let shared = Arc::new(Writers {
        backend,
        crypto,
        written: Mutex::new(Written {
            pending: Vec::new(),
            stats: PackerStats::default(),
        }),
        failed: AtomicBool::new(false),
        error: Mutex::new(None),
    });
    // Room for the sealed header, so finishing a pack never reallocates its buffer, and
    // for starting the pack on a 4 KiB boundary (direct I/O without a copy).
    let capacity = pack_size + (64 << 10) + direct_io::ALIGN;
    let (wtx, wrx) = bounded::<PackWriter>(0);
    let (pool_tx, pool_rx) = bounded::<Vec<u8>>(PACK_BUFFERS + shared.backend.keeps_packs());
    let mut writers = Vec::with_capacity(PACK_WRITERS);
    for i in 0..PACK_WRITERS {
        let (rx, pool, sh) = (wrx.clone(), pool_tx.clone(), shared.clone());
        match std::thread::Builder::new()
            .name(format!("pack-writer-{i}"))
            .spawn(move || write_packs(rx, pool, capacity, sh))
        {
            Ok(j) => writers.push(j),
            Err(e) if writers.is_empty() => {
                return Err(RepoError::io("starting the pack writer", e));
            }
            Err(_) => break,
        }
    }
    drop((wrx, pool_tx));
    // A buffer for the next data pack: a returned one, a new one while fewer than
    // PACK_BUFFERS exist, else wait for a writer to return one. The packer holds no buffer
    // while it waits and each writer holds at most one, so one is always coming back.
    let mut created = 1;
    // A backend that keeps written packs' buffers a while (the parity guard) gets as many
    // more, so the packer does not wait for them.
    let buffers = PACK_BUFFERS + shared.backend.keeps_packs();
    let mut next_buffer = || -> Vec<u8> {
        if let Ok(b) = pool_rx.try_recv() {
            return b;
        }
        if created < buffers {
            created += 1;
            return Vec::with_capacity(capacity);
        }
        pool_rx
            .recv()
            .unwrap_or_else(|_| Vec::with_capacity(capacity))
    };
    let mut data = PackWriter::with_buffer(Vec::with_capacity(capacity), direct_io::ALIGN);
    let mut tree = PackWriter::new(0);
    // Add one blob; false once the writers stopped.
    let mut add = |blob: EncodedBlob| -> bool {
        let is_tree = blob.typ == BlobType::Tree;
        let w = if is_tree { &mut tree } else { &mut data };
        // Close the pack before it would grow past the target size.
        if !w.is_empty() && w.len() + blob.sealed.len() > pack_size {
            let full = std::mem::take(w);
            if wtx.send(full).is_err() || shared.failed.load(Relaxed) {
                return false;
            }
            if !is_tree {
                *w = PackWriter::with_buffer(next_buffer(), direct_io::ALIGN);
            }
        }
        w.add(&blob);
        if let Some(r) = &recycle {
            let _ = r.try_send(blob.sealed);
        }
        true
    };
    // Blobs one by one and in bundles, until every sender of both is gone.
    let mut sel = Select::new();
    let one = sel.recv(&rx);
    sel.recv(&bundles);
    let mut open = 2;
    let mut stopped = false;
    while open > 0 && !stopped {
        let op = sel.select();
        let i = op.index();
        let added = if i == one {
            op.recv(&rx).map(&mut add)
        } else {
            // The permit is dropped (its bytes given back) once the blobs are in packs.
            op.recv(&bundles)
                .map(|(blobs, _permit)| blobs.into_iter().all(&mut add))
        };
        match added {
            Ok(ok) => stopped = !ok,
            Err(_) => {
                sel.remove(i);
                open -= 1;
            }
        }
    }
    if !stopped {
        for w in [data, tree] {
            if !w.is_empty() && wtx.send(w).is_err() {
                break;
            }
        }
    }
    drop(wtx);
    drop((rx, bundles));
    let mut panicked = false;
    for j in writers {
        panicked |= j.join().is_err();
    }
    let failed = match shared.error.lock().ok().and_then(|mut g| g.take()) {
        Some(e) => Some(e),
        None if panicked => Some(Interruption::WorkerPanicked(Worker::PackWriter).into()),
        None => None,
    };
    if let Some(e) = failed {
        // The packs written before the failure (an upload error, a full disk) are durable:
        // index them, so the next run reuses them instead of writing them again. If this
        // write fails too (the storage is gone), the first error is the one to report.
        if let Ok(mut w) = shared.written.lock() {
            let _ = shared.save_index(&mut w);
        }
        return Err(e);
    }
    Ok(Flushed { shared })
}

fn write_packs(
    rx: Receiver<PackWriter>,
    pool: Sender<Vec<u8>>,
    min_capacity: usize,
    sh: Arc<Writers>,
) {
    for w in rx.iter() {
        if sh.failed.load(Relaxed) {
            break;
        }
        let blobs = w.blob_count() as u64;
        let (id, bytes, entries) = w.finish_in_place(&sh.crypto);
        let size = bytes.len() as u64;
        let (buf, start) = bytes.into_parts();
        // The buffer goes back to the pool once the backend is through with it (the
        // parity guard keeps it for its thread instead of a copy).
        let back = (buf.capacity() >= min_capacity).then(|| pool.clone());
        let name = id.to_hex();
        let pack = PackBuffer::new(buf, start, back);
        let result = write_once(sh.backend.as_ref(), FileKind::Pack, &name, |b| {
            b.write_pack(&name, pack)
        });
        if let Err(e) = result {
            sh.fail(e);
            break;
        }
        let Ok(mut g) = sh.written.lock() else {
            sh.fail(Interruption::WorkerPanicked(Worker::PackWriter).into());
            break;
        };
        g.stats.packs += 1;
        g.stats.blobs += blobs;
        g.stats.bytes += size;
        // Index files of at most MAX_INDEX_BLOBS blobs: a million tiny files made one of
        // 44 MB, which every later command held whole while opening it.
        let pending_blobs: usize = g.pending.iter().map(|p| p.blobs.len()).sum();
        if !g.pending.is_empty()
            && pending_blobs + entries.len() > MAX_INDEX_BLOBS
            && let Err(e) = sh.save_index(&mut g)
        {
            drop(g);
            sh.fail(e);
            break;
        }
        g.pending.push(IndexedPack {
            id,
            size,
            blobs: entries,
        });
        if g.pending.len() >= sh.backend.checkpoint_packs()
            && let Err(e) = sh.save_index(&mut g)
        {
            drop(g);
            sh.fail(e);
            break;
        }
    }
}

/// Write a file named by the hash of its bytes, unless it is already there with exactly
/// these bytes: an interrupted run of an unencrypted repository (whose packs are
/// deterministic) wrote it but not the index naming it, and the next run makes it again.
/// The write itself finds out (`write` never replaces a file): no request to look first,
/// which on S3 was a `HEAD` per pack.
fn write_once(
    backend: &dyn Backend,
    kind: FileKind,
    name: &str,
    write: impl FnOnce(&dyn Backend) -> Result<()>,
) -> Result<()> {
    match write(backend) {
        Err(RepoError::FileExists(what)) => {
            if backend
                .read(kind, name)
                .is_ok_and(|b| crate::format::id::Id::hash_of(&b).to_hex() == name)
            {
                Ok(())
            } else {
                Err(RepoError::FileExists(what))
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::id::{BlobId, Id};
    use crate::repository::index::IndexFile;

    /// Packs of tiny blobs (4,096 a pack here, ≈ 95,000 in a 16 MiB pack of files of a
    /// few hundred bytes) made index files of 32 packs' blobs: one of 44 MB for a million
    /// files, held whole by every command that opened it. Now a file lists at most
    /// MAX_INDEX_BLOBS blobs, and every blob is still in one.
    #[test]
    fn index_files_of_tiny_blobs_list_a_bounded_number_of_blobs() {
        let tmp = tempfile::tempdir().unwrap();
        let be: Arc<dyn Backend> = Arc::new(crate::storage::LocalBackend::new(tmp.path()));
        be.create_layout().unwrap();
        let packer = Packer::start(be.clone(), Crypto::Plain, 64 << 10);
        let tx = packer.sender();
        let n = 140_000u32;
        for i in 0..n {
            let blob = EncodedBlob {
                id: BlobId(Id::hash_of(&i.to_le_bytes())),
                typ: BlobType::Data,
                raw_len: 16,
                compressed: false,
                sealed: vec![i as u8; 16],
            };
            tx.send(blob).unwrap();
        }
        drop(tx);
        let stats = packer.finish().unwrap();
        assert_eq!(stats.blobs, n as u64);
        let mut listed = 0;
        for id in &stats.index_files {
            let bytes = be.read(FileKind::Index, &id.to_hex()).unwrap();
            let f = IndexFile::open(&Crypto::Plain, &bytes, "index").unwrap();
            let blobs: usize = f.packs.iter().map(|p| p.blobs.len()).sum();
            assert!(
                blobs <= MAX_INDEX_BLOBS,
                "an index file lists {blobs} blobs (most: {MAX_INDEX_BLOBS})"
            );
            listed += blobs;
        }
        assert_eq!(listed, n as usize);
    }
}
