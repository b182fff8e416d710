//! The packer: collects sealed blobs into packs (data and tree blobs in separate packs, so
//! metadata can be read without touching photo data), writes each finished pack on one of
//! `PACK_WRITERS` writer threads, and writes index files only after the packs they name
//! are durable. An index checkpoint is written every `CHECKPOINT_PACKS` packs (32, fewer on
//! remote backends, see [`Backend::checkpoint_packs`]), so an interrupted snapshot leaves
//! its uploaded data reusable by the next run, and before an index file would list more
//! than `MAX_INDEX_BLOBS` blobs (packs of tiny files).
//!
//! Memory: on a backend that writes packs as they fill (a local folder,
//! [`Backend::streams_packs`]) a data pack goes to its writer a 4 MiB segment at a time
//! from [`SEGMENTS`] recycled buffers (`pack_stream`); elsewhere at most `PACK_BUFFERS`
//! whole data-pack buffers exist (one being filled, one per writer). Either way a written
//! buffer goes back to the packer for the next one, so packs do not fault in fresh
//! memory. The pack id is hashed as blobs are added (on the packer thread), so a writer
//! only seals the header and hands the bytes to the backend.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, RecvTimeoutError, Select, Sender, bounded, unbounded};

use crate::error::{Interruption, RepoError, Result, Worker};
use crate::format::blob::{BlobType, EncodedBlob};
use crate::format::crypto::Crypto;
use crate::format::id::{IndexId, PackId};
use crate::format::index_file::MAX_INDEX_BLOBS;
use crate::format::pack::{PackEntry, PackWriter};
use crate::repository::budget::Permit;
use crate::repository::index::{IndexFile, IndexedPack};
use crate::repository::pack_stream::{PackStream, SEGMENT_CAPACITY, SEGMENTS, Segment};
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
    /// Bytes of data-pack buffers the run allocated (whole packs or segments): the
    /// packer's share of the memory, bounded whatever the number of packs.
    pub buffer_bytes: u64,
}

/// What a pack writer thread is handed.
enum Job {
    /// A pack built whole: tree packs, and data packs on a backend that takes packs whole.
    Whole(Box<PackWriter>),
    /// A data pack's pieces as it fills, the last one [`Piece::End`].
    Stream(Receiver<Piece>),
}

enum Piece {
    Bytes(Segment),
    End {
        id: PackId,
        last: Segment,
        entries: Vec<PackEntry>,
    },
}

/// The data-pack buffers: taken back from the writers, or new while fewer than `max`
/// exist, else waited for (each writer holds a bounded number and gives them back).
struct Buffers {
    pool: Receiver<Vec<u8>>,
    created: usize,
    max: usize,
    capacity: usize,
}

impl Buffers {
    /// The next buffer; `None` when the writers failed meanwhile.
    fn next(&mut self, failed: &AtomicBool) -> Option<Vec<u8>> {
        if let Ok(b) = self.pool.try_recv() {
            return Some(b);
        }
        loop {
            if self.created < self.max {
                self.created += 1;
                return Some(Vec::with_capacity(self.capacity));
            }
            match self.pool.recv_timeout(std::time::Duration::from_millis(50)) {
                Ok(b) => return Some(b),
                Err(RecvTimeoutError::Timeout) if failed.load(Relaxed) => return None,
                Err(RecvTimeoutError::Timeout) => {}
                // Every writer gone: only a new one will do.
                Err(RecvTimeoutError::Disconnected) => self.max += 1,
            }
        }
    }

    fn bytes(&self) -> u64 {
        (self.created * self.capacity) as u64
    }
}

/// The data pack being filled.
enum Filling {
    Whole(PackWriter),
    /// Started at its first blob.
    Stream(Option<PackStream>),
}

/// Where a streamed data pack's pieces go: the writer that took the pack's job.
struct Pieces<'a> {
    jobs: &'a Sender<Job>,
    failed: &'a AtomicBool,
    /// The current pack's channel, once its first piece went out.
    to: Option<Sender<Piece>>,
}

impl Pieces<'_> {
    /// Hand on a piece; false once the writers stopped.
    fn send(&mut self, piece: Piece) -> bool {
        if self.to.is_none() {
            let (tx, rx) = unbounded();
            if self.jobs.send(Job::Stream(rx)).is_err() {
                return false;
            }
            self.to = Some(tx);
        }
        let sent = self.to.as_ref().is_some_and(|t| t.send(piece).is_ok());
        sent && !self.failed.load(Relaxed)
    }

    /// A full segment out, the next buffer in.
    fn ship(&mut self, segment: Segment, buffers: &mut Buffers) -> Option<Vec<u8>> {
        if !self.send(Piece::Bytes(segment)) {
            return None;
        }
        buffers.next(self.failed)
    }

    /// The pack's last piece; its writer then makes it durable and names it.
    fn close(&mut self, pack: PackStream, crypto: &Crypto, buffers: &mut Buffers) -> bool {
        let ok = match pack.finish(crypto, &mut |s| self.ship(s, buffers)) {
            Some((id, last, entries)) => self.send(Piece::End { id, last, entries }),
            None => false,
        };
        self.to = None;
        ok
    }
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

    /// Count a pack just made durable and note it for the next index file, writing one
    /// first when this pack's blobs would make it too long, and after it at a checkpoint.
    fn record(&self, pack: IndexedPack, blobs: u64) -> Result<()> {
        let Ok(mut g) = self.written.lock() else {
            return Err(Interruption::WorkerPanicked(Worker::PackWriter).into());
        };
        g.stats.packs += 1;
        g.stats.blobs += blobs;
        g.stats.bytes += pack.size;
        // Index files of at most MAX_INDEX_BLOBS blobs: a million tiny files made one of
        // 44 MB, which every later command held whole while opening it.
        let pending_blobs: usize = g.pending.iter().map(|p| p.blobs.len()).sum();
        if !g.pending.is_empty() && pending_blobs + pack.blobs.len() > MAX_INDEX_BLOBS {
            self.save_index(&mut g)?;
        }
        g.pending.push(pack);
        if g.pending.len() >= self.backend.checkpoint_packs() {
            self.save_index(&mut g)?;
        }
        Ok(())
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
    let streams = shared.backend.streams_packs();
    // A streamed pack's job may wait for a writer while its first segments fill.
    let (wtx, wrx) = bounded::<Job>(usize::from(streams));
    // A backend that keeps written packs' buffers a while (the parity guard) gets as many
    // more, so the packer does not wait for them.
    let max = if streams {
        SEGMENTS
    } else {
        PACK_BUFFERS + shared.backend.keeps_packs()
    };
    let (pool_tx, pool) = bounded::<Vec<u8>>(max);
    let mut buffers = Buffers {
        pool,
        created: 0,
        max,
        capacity: if streams { SEGMENT_CAPACITY } else { capacity },
    };
    // Whole packs' buffers go back to the pool only when they are data packs' (a tree
    // pack's grew on its own), and never when packs are streamed.
    let pooled = if streams { usize::MAX } else { capacity };
    let mut writers = Vec::with_capacity(PACK_WRITERS);
    for i in 0..PACK_WRITERS {
        let (rx, pool, sh) = (wrx.clone(), pool_tx.clone(), shared.clone());
        let expected = pack_size as u64;
        match std::thread::Builder::new()
            .name(format!("pack-writer-{i}"))
            .spawn(move || write_packs(rx, pool, (pooled, expected), sh))
        {
            Ok(j) => writers.push(j),
            Err(e) if writers.is_empty() => {
                return Err(RepoError::io("starting the pack writer", e));
            }
            Err(_) => break,
        }
    }
    drop((wrx, pool_tx));
    // The packer holds no buffer while it waits for one and each writer holds a bounded
    // number (one whole pack, or the segments of the pack it writes), so one always comes.
    let failed = &shared.failed;
    let mut data = if streams {
        Filling::Stream(None)
    } else {
        let first = buffers.next(failed).unwrap_or_default();
        Filling::Whole(PackWriter::with_buffer(first, direct_io::ALIGN))
    };
    let mut pieces = Pieces {
        jobs: &wtx,
        failed,
        to: None,
    };
    let mut tree = PackWriter::new(0);
    // Add one blob; false once the writers stopped.
    let mut add = |blob: EncodedBlob| -> bool {
        let full = |len: usize, empty: bool| !empty && len + blob.sealed.len() > pack_size;
        // Close the pack before it would grow past the target size.
        let added = match (blob.typ, &mut data) {
            (BlobType::Tree, _) => {
                if full(tree.len(), tree.is_empty()) {
                    let job = Job::Whole(Box::new(std::mem::take(&mut tree)));
                    if wtx.send(job).is_err() || failed.load(Relaxed) {
                        return false;
                    }
                }
                tree.add(&blob);
                true
            }
            (_, Filling::Whole(w)) => {
                if full(w.len(), w.is_empty()) {
                    let job = Job::Whole(Box::new(std::mem::take(w)));
                    if wtx.send(job).is_err() || failed.load(Relaxed) {
                        return false;
                    }
                    let Some(next) = buffers.next(failed) else {
                        return false;
                    };
                    *w = PackWriter::with_buffer(next, direct_io::ALIGN);
                }
                w.add(&blob);
                true
            }
            (_, Filling::Stream(slot)) => {
                if let Some(p) = slot.take_if(|p| full(p.len(), p.is_empty()))
                    && !pieces.close(p, &shared.crypto, &mut buffers)
                {
                    return false;
                }
                let pack = match slot {
                    Some(p) => p,
                    None => match buffers.next(failed) {
                        Some(b) => slot.insert(PackStream::new(b)),
                        None => return false,
                    },
                };
                pack.add(&blob, &mut |s| pieces.ship(s, &mut buffers))
            }
        };
        if let Some(r) = &recycle {
            let _ = r.try_send(blob.sealed);
        }
        added
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
        let last = match data {
            Filling::Whole(w) if !w.is_empty() => wtx.send(Job::Whole(Box::new(w))).is_ok(),
            Filling::Stream(Some(p)) if !p.is_empty() => {
                pieces.close(p, &shared.crypto, &mut buffers)
            }
            _ => true,
        };
        if last && !tree.is_empty() {
            let _ = wtx.send(Job::Whole(Box::new(tree)));
        }
    }
    drop(pieces);
    drop(wtx);
    drop((rx, bundles));
    let mut panicked = false;
    for j in writers {
        panicked |= j.join().is_err();
    }
    if let Ok(mut w) = shared.written.lock() {
        w.stats.buffer_bytes = buffers.bytes();
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

/// A writer thread: writes the packs it is handed until the packer is done. Once the run
/// failed it still takes every job and drops it, giving streamed segments back, so the
/// packer never waits for a buffer that does not come.
fn write_packs(
    rx: Receiver<Job>,
    pool: Sender<Vec<u8>>,
    (min_capacity, expected_len): (usize, u64),
    sh: Arc<Writers>,
) {
    for job in rx.iter() {
        let written = match job {
            Job::Whole(w) => {
                if sh.failed.load(Relaxed) {
                    continue;
                }
                write_whole(*w, &pool, min_capacity, &sh)
            }
            Job::Stream(pieces) => write_streamed(&pieces, &pool, expected_len, &sh),
        };
        let recorded = written.and_then(|pack| match pack {
            Some((pack, blobs)) => sh.record(pack, blobs),
            None => Ok(()),
        });
        if let Err(e) = recorded {
            sh.fail(e);
        }
    }
}

/// Write a pack built whole; returns it and its blob count once durable.
fn write_whole(
    w: PackWriter,
    pool: &Sender<Vec<u8>>,
    min_capacity: usize,
    sh: &Writers,
) -> Result<Option<(IndexedPack, u64)>> {
    let blobs = w.blob_count() as u64;
    let (id, bytes, entries) = w.finish_in_place(&sh.crypto);
    let size = bytes.len() as u64;
    let (buf, start) = bytes.into_parts();
    // The buffer goes back to the pool once the backend is through with it (the
    // parity guard keeps it for its thread instead of a copy).
    let back = (buf.capacity() >= min_capacity).then(|| pool.clone());
    let name = id.to_hex();
    let pack = PackBuffer::new(buf, start, back);
    write_once(sh.backend.as_ref(), FileKind::Pack, &name, |b| {
        b.write_pack(&name, pack)
    })?;
    let pack = IndexedPack {
        id,
        size,
        blobs: entries,
    };
    Ok(Some((pack, blobs)))
}

/// Write a streamed pack's pieces as they come, each buffer given back once written, and
/// name the pack after its last piece; `None` when the packer stopped before its end or
/// the run failed (the pack's temporary file is removed; every piece is still taken).
fn write_streamed(
    pieces: &Receiver<Piece>,
    pool: &Sender<Vec<u8>>,
    expected_len: u64,
    sh: &Writers,
) -> Result<Option<(IndexedPack, u64)>> {
    let backend = sh.backend.as_ref();
    let mut sink = None;
    let mut size = 0u64;
    let mut result = Ok(());
    for piece in pieces.iter() {
        let (segment, end) = match piece {
            Piece::Bytes(s) => (s, None),
            Piece::End { id, last, entries } => (last, Some((id, entries))),
        };
        if result.is_ok() && !sh.failed.load(Relaxed) {
            let s = match sink.take() {
                Some(s) => Ok(s),
                None => backend.begin_pack(expected_len),
            };
            result = s.and_then(|mut s| {
                s.append(segment.bytes())?;
                sink = Some(s);
                Ok(())
            });
        }
        size += segment.bytes().len() as u64;
        let _ = pool.try_send(segment.buf);
        let Some((id, entries)) = end else {
            continue;
        };
        result?;
        let Some(sink) = sink.filter(|_| !sh.failed.load(Relaxed)) else {
            return Ok(None);
        };
        let name = id.to_hex();
        write_once(backend, FileKind::Pack, &name, |_| sink.commit(&name))?;
        let blobs = entries.len() as u64;
        let pack = IndexedPack {
            id,
            size,
            blobs: entries,
        };
        return Ok(Some((pack, blobs)));
    }
    // The packer stopped before the pack's end: the sink, dropped, leaves nothing.
    result.map(|()| None)
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

    /// A local folder is handed data packs as they fill: the packer's buffers are a few
    /// 4 MiB segments, not three whole 16 MiB packs (half of a first snapshot's peak RSS,
    /// issue 23), and the packs are complete, named by their bytes and indexed.
    #[test]
    fn a_local_folder_gets_packs_as_they_fill_from_a_few_segments() {
        let tmp = tempfile::tempdir().unwrap();
        let be: Arc<dyn Backend> = Arc::new(crate::storage::LocalBackend::new(tmp.path()));
        be.create_layout().unwrap();
        let crypto = Crypto::Keyed(crate::format::crypto::MasterKey::generate());
        let packer = Packer::start(be.clone(), crypto.clone(), 16 << 20);
        let tx = packer.sender();
        let mut sent = std::collections::HashMap::new();
        for i in 0..60u32 {
            let len = 1_000_000 + (i as usize * 104_729) % 700_000;
            let sealed: Vec<u8> = (0..len).map(|j| (j as u32 ^ (i * 7)) as u8).collect();
            let id = BlobId(Id::hash_of(&sealed));
            sent.insert(id, sealed.clone());
            let typ = if i % 20 == 19 {
                BlobType::Tree
            } else {
                BlobType::Data
            };
            let raw_len = len as u32;
            let (compressed, sealed) = (false, sealed);
            tx.send(EncodedBlob {
                id,
                typ,
                raw_len,
                compressed,
                sealed,
            })
            .unwrap();
        }
        drop(tx);
        let stats = packer.finish().unwrap();
        let most = (SEGMENTS * SEGMENT_CAPACITY) as u64;
        assert!(
            stats.buffer_bytes <= most,
            "{} bytes of pack buffers (most {most})",
            stats.buffer_bytes
        );
        assert!(stats.packs >= 5, "{} packs", stats.packs);
        let mut found = 0;
        for p in &stats.packs_written {
            let bytes = be.read(FileKind::Pack, &p.id.to_hex()).unwrap();
            assert_eq!(Id::hash_of(&bytes), p.id.0);
            assert_eq!(bytes.len() as u64, p.size);
            let entries = crate::format::pack::parse_pack(&crypto, &bytes, "pack").unwrap();
            for e in entries {
                let at = e.offset as usize..(e.offset + e.length) as usize;
                assert_eq!(&bytes[at], &sent[&e.id][..]);
                found += 1;
            }
        }
        assert_eq!(found, sent.len());
        assert!(be.leftover_temp_files().unwrap().is_empty());
    }
}
