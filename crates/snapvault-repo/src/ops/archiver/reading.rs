//! Reading and chunking one file, on the walker's thread or on a reader thread.
//!
//! Reading a file (the `read` copy out of the page cache), cutting it into chunks (FastCDC)
//! and copying each chunk into its sealing buffer was all on the walker, the pipeline's
//! one serial stage: about 55 % of a re-import's CPU, the workers' hashing the rest, so
//! with two cores the walker was the bound, not the disk. Files of at least
//! [`APART_BYTES`] are therefore handed to [`READERS`] reader threads, which read, chunk
//! and hand the chunks to the workers as the walker did; two files are cut at once. The
//! walker keeps listing, comparing with the parent, hinting, and reading small files
//! itself (a hand-off per tiny file costs more than reading it).
//!
//! A file's chunk ids, length and media facts land in its [`FileSlot`]; the finalizer waits
//! for them there as it waited for the chunk ids, so the snapshot is the same whichever
//! thread read a file and in whatever order: chunk boundaries depend on a file's bytes
//! only, and each tree lists its entries in name order.

use super::*;
use crate::format::tree::MediaMeta;
use crate::ops::fs_source::{Change, SourceFile};

/// Files at least this large are read by a reader thread (at one batch's worth of bytes,
/// the hand-off costs little beside the read).
pub(super) const APART_BYTES: u64 = BATCH_BYTES as u64;
/// Reader threads at most: two files are cut at once, with the workers hashing beside.
pub(super) const READERS: usize = 2;

/// Reader threads for a run with `workers` hashing threads.
pub(super) fn readers(workers: usize) -> usize {
    #[cfg(test)]
    if tests::INLINE.with(|i| i.get()) {
        return 0;
    }
    READERS.min(workers)
}

/// A file for a reader thread: opened by the walker (or by its hint), read and chunked
/// there, its outcome left in `slot`.
pub(super) struct FileJob<'a> {
    pub(super) path: Vec<u8>,
    pub(super) reader: Box<dyn SourceFile + 'a>,
    pub(super) slot: Arc<FileSlot>,
    pub(super) entry: SourceEntry,
    /// The parent snapshot had a file of this name (changed, not new).
    pub(super) changed: bool,
}

/// What reading a file came to.
pub(super) enum ReadFailure {
    Source(std::io::Error),
    /// Asked to stop (Ctrl-C), with the reason.
    Stopped(String),
    Repo(RepoError),
}

/// One thread's means to read files into chunks for the workers: the walker has one, and
/// each reader thread its own (chunks batched per thread, see [`Batch`]).
pub(super) struct Reading<'a> {
    pub(super) source: &'a dyn Source,
    pub(super) chunker: &'a Chunker,
    pub(super) shared: &'a Shared,
    pub(super) observer: &'a dyn Observer,
    pub(super) inspector: &'a dyn Inspector,
    pub(super) stop: Option<&'a Stop>,
    pub(super) level: i32,
    pub(super) chunk_tx: Sender<Batch>,
    /// Chunks not yet handed to the workers (see [`Batch`]), and their bytes.
    pub(super) batch: Batch,
    pub(super) batch_bytes: usize,
    pub(super) buf: Vec<u8>,
    /// Chunk buffers handed back by the packer and workers.
    pub(super) recycled: Receiver<Vec<u8>>,
}

impl<'a> Reading<'a> {
    /// Another reader of the same run (own batch and buffer).
    pub(super) fn another(&self) -> Reading<'a> {
        Reading {
            chunk_tx: self.chunk_tx.clone(),
            batch: Vec::new(),
            batch_bytes: 0,
            buf: Vec::new(),
            recycled: self.recycled.clone(),
            ..*self
        }
    }

    /// Hand the chunks batched so far to the workers; false when they are gone.
    pub(super) fn hand_over(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        self.batch_bytes = 0;
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_CHUNKS));
        self.chunk_tx.send(batch).is_ok()
    }

    /// Charge the byte budget for a chunk of `bytes` (sealed), waiting while the chunks in
    /// flight fill it; `None` once the run fails. The batch not yet handed over goes to the
    /// workers first: its charge must not wait on this thread (see `repository::budget`).
    fn charge(&mut self, bytes: usize) -> Option<Permit> {
        let budget = &self.shared.budget;
        if let Some(p) = budget.try_charge(bytes) {
            return Some(p);
        }
        if !self.hand_over() {
            return None;
        }
        let abort = &self.shared.abort;
        budget.charge(bytes, || abort.load(Relaxed))
    }

    /// Read `reader` into chunks for the workers, noting them in `slot`: the file's length
    /// and media facts (from its first chunk and the inspector's tail probe).
    pub(super) fn read_chunks(
        &mut self,
        path: &[u8],
        mut reader: Box<dyn SourceFile + '_>,
        slot: &Arc<FileSlot>,
        e: &SourceEntry,
    ) -> std::result::Result<(u64, Option<MediaMeta>), ReadFailure> {
        let mut media = None;
        let mut compression = Compression::Try(self.level);
        let mut stream = self
            .chunker
            .stream(&mut reader, std::mem::take(&mut self.buf));
        let mut idx = 0;
        let mut total = 0u64;
        let mut probe: Option<Box<dyn TailProbe>> = None;
        let result = loop {
            if let Some(why) = self.stop.and_then(Stop::reason) {
                // Stop mid-file: the file is left out; its chunks sent so far are stored
                // and reused by the next run.
                break Err(ReadFailure::Stopped(why));
            }
            let chunk = match stream.next_chunk() {
                Ok(Some(c)) => c,
                Ok(None) => break Ok(total),
                Err(err) => break Err(ReadFailure::Source(err)),
            };
            if idx == 0 {
                media = self.inspector.inspect(path, chunk, e);
                compression = self.inspector.compression(&e.name.0, chunk, self.level);
                probe = self.inspector.tail_probe(path, chunk, e);
            } else if let Some(p) = probe.as_mut() {
                p.chunk(total, chunk);
            }
            total += chunk.len() as u64;
            self.shared
                .stats
                .bytes_read
                .fetch_add(chunk.len() as u64, Relaxed);
            self.observer.bytes_read(chunk.len() as u64);
            if let Ok(mut s) = slot.state.lock() {
                s.ids.push(None);
                s.outstanding += 1;
            }
            let Some(permit) = self.charge(PlainBuf::len_for(&self.shared.crypto, chunk.len()))
            else {
                break Err(ReadFailure::Repo(Interruption::Aborted.into()));
            };
            let reuse = self.recycled.try_recv().unwrap_or_default();
            self.batch_bytes += chunk.len();
            self.batch.push(ChunkJob {
                slot: slot.clone(),
                idx,
                data: PlainBuf::new_in(&self.shared.crypto, chunk, reuse),
                compression,
                permit,
            });
            idx += 1;
            let full = self.batch.len() >= BATCH_CHUNKS || self.batch_bytes >= BATCH_BYTES;
            if (full && !self.hand_over()) || self.shared.abort.load(Relaxed) {
                break Err(ReadFailure::Repo(Interruption::Aborted.into()));
            }
        };
        if let Some(p) = probe {
            media = p.finish(media);
        }
        if idx == 0 && result.is_ok() {
            // Empty file: still inspect (kind from the name) and record no chunks.
            media = self.inspector.inspect(path, &[], e);
        }
        self.buf = stream.into_buffer();
        if let Ok(total) = result {
            // Listed at one length, read at another, or its times say it was written
            // meanwhile: changed while it was read (an editor trimming a video in place, or
            // saving over it).
            let change = if total != e.size {
                Some(Change::Length {
                    listed: e.size,
                    read: total,
                })
            } else {
                reader.changed(e, total)
            };
            if let Some(change) = change {
                self.shared.stats.errors.fetch_add(1, Relaxed);
                self.observer.changed_while_read(path, change);
            }
        }
        result.map(|total| (total, media))
    }

    /// Read and chunk one file handed over by the walker, leaving the outcome in its slot.
    /// A file that cannot be read is left out of the snapshot (as the walker leaves it
    /// out); a source gone or a stop request is noted in `fatal` for the walker to stop.
    fn read_job(&mut self, job: FileJob<'_>, fatal: &Mutex<Option<String>>) {
        let FileJob {
            path,
            reader,
            slot,
            entry,
            changed,
        } = job;
        let already = fatal.lock().map_or(true, |f| f.is_some());
        let outcome = if already || self.shared.abort.load(Relaxed) {
            // The source went away or the run stops: files not read yet are left out.
            None
        } else {
            match self.read_chunks(&path, reader, &slot, &entry) {
                Ok(read) => Some(read),
                Err(failure) => {
                    self.failed(&path, failure, fatal);
                    None
                }
            }
        };
        // Before the slot says "done": the finalizer may then wait for these chunks.
        if !self.hand_over() {
            self.shared.fail(Interruption::Aborted.into());
        }
        let st = &self.shared.stats;
        if let Some((size, _)) = &outcome {
            if changed {
                st.files_changed.fetch_add(1, Relaxed);
            } else {
                st.files_new.fetch_add(1, Relaxed);
            }
            st.files_total.fetch_add(1, Relaxed);
            st.bytes_total.fetch_add(*size, Relaxed);
        }
        let wake = slot.state.lock().map_or(true, |mut s| {
            match outcome {
                Some(read) => s.read = Some(read),
                None => s.left_out = true,
            }
            s.done_reading = true;
            s.waiting
        });
        if wake {
            slot.cv.notify_all();
        }
    }

    fn failed(&self, path: &[u8], failure: ReadFailure, fatal: &Mutex<Option<String>>) {
        let why = match failure {
            ReadFailure::Source(err) if !self.source.is_fatal(&err) => {
                self.shared.stats.errors.fetch_add(1, Relaxed);
                self.observer.skipped(path, &err);
                return;
            }
            ReadFailure::Source(err) => err.to_string(),
            ReadFailure::Stopped(why) => why,
            ReadFailure::Repo(err) => {
                if !self.shared.abort.load(Relaxed) {
                    self.shared.fail(err);
                }
                return;
            }
        };
        if let Ok(mut f) = fatal.lock()
            && f.is_none()
        {
            *f = Some(why);
        }
    }

    /// A reader thread: read the files the walker hands over until it stops.
    pub(super) fn serve(mut self, jobs: Receiver<FileJob<'_>>, fatal: &Mutex<Option<String>>) {
        for job in jobs.iter() {
            self.read_job(job, fatal);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::cell::Cell;
    use std::collections::{BTreeMap, HashMap};
    use std::io::{self, Read};

    use super::*;
    use crate::ops::fs_source::FolderSource;
    use crate::ops::test_support::{Photos, create_small_repo, files, noise, open, verify};

    thread_local! {
        /// Tests: the walker reads every file itself (the snapshot before reader threads).
        pub(in crate::ops::archiver) static INLINE: Cell<bool> = const { Cell::new(false) };
    }

    /// A folder source whose files named in `broken` fail after `at` bytes, and whose file
    /// named `gone` says the whole source went away (a phone unplugged) after `at` bytes.
    struct Failing {
        inner: FolderSource,
        broken: Vec<&'static str>,
        gone: Option<&'static str>,
        at: usize,
    }

    struct FailAfter<'r> {
        inner: Box<dyn SourceFile + 'r>,
        left: usize,
        fatal: bool,
    }

    impl Read for FailAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.left == 0 {
                let kind = if self.fatal {
                    io::ErrorKind::NotConnected
                } else {
                    io::ErrorKind::PermissionDenied
                };
                return Err(io::Error::new(kind, "test failure"));
            }
            let n = buf.len().min(self.left);
            let n = self.inner.read(&mut buf[..n])?;
            self.left -= n;
            Ok(n)
        }
    }

    impl SourceFile for FailAfter<'_> {}

    impl Source for Failing {
        fn list(&self, dir: &[u8]) -> io::Result<Vec<SourceEntry>> {
            self.inner.list(dir)
        }
        fn open(&self, path: &[u8]) -> io::Result<Box<dyn SourceFile + '_>> {
            let inner = self.inner.open(path)?;
            let name = String::from_utf8_lossy(path);
            let broken = self.broken.iter().any(|b| name.ends_with(b));
            let gone = self.gone.is_some_and(|g| name.ends_with(g));
            if !(broken || gone) {
                return Ok(inner);
            }
            Ok(Box::new(FailAfter {
                inner,
                left: self.at,
                fatal: gone,
            }))
        }
        fn is_fatal(&self, error: &io::Error) -> bool {
            error.kind() == io::ErrorKind::NotConnected
        }
    }

    /// Large files (reader threads) and small ones (the walker) mixed in nested folders,
    /// with identical large files and two that fail mid-read.
    fn library(lib: &std::path::Path) {
        for (d, n) in [("a", 6), ("a/b", 3), ("c", 5)] {
            let dir = lib.join(d);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..n {
                let seed = (d.len() * 100 + i) as u64;
                let big = 300_000 + 70_000 * i;
                std::fs::write(dir.join(format!("big{i}")), noise(seed, big)).unwrap();
                std::fs::write(dir.join(format!("small{i}")), format!("{d} {i}")).unwrap();
            }
        }
        std::fs::write(lib.join("c/empty"), b"").unwrap();
        std::fs::copy(lib.join("a/big1"), lib.join("c/same-as-a-big1")).unwrap();
    }

    fn snap(
        repo: &Repository,
        source: &dyn Source,
        folder: &FolderSource,
        inline: bool,
    ) -> (SnapshotId, Snapshot) {
        INLINE.with(|i| i.set(inline));
        let index = repo.load_index().unwrap().index;
        let opts = crate::testing::folder_options(folder);
        let run = archiver_run(repo, index, source, opts);
        INLINE.with(|i| i.set(false));
        run
    }

    fn archiver_run(
        repo: &Repository,
        index: Index,
        source: &dyn Source,
        opts: ArchiveOptions,
    ) -> (SnapshotId, Snapshot) {
        super::super::run(repo, index, source, opts, &NoHooks, &Photos).unwrap()
    }

    /// Guard of the reader threads: the snapshot of a library whose large files are read
    /// beside the walker has the same tree (every chunk, length and node) and the same
    /// counts as when the walker reads every file itself, restores byte-exact, and stores
    /// nothing new over the snapshot read the old way.
    #[test]
    fn files_read_beside_the_walker_give_the_same_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let (root, lib) = (dir.path().join("repo"), dir.path().join("lib"));
        create_small_repo(&root, true);
        library(&lib);
        let repo = open(&root);
        let folder = FolderSource::new(std::slice::from_ref(&lib)).unwrap();
        let (old, before) = snap(&repo, &folder, &folder, true);
        let index = repo.load_index().unwrap().index;
        let opts = crate::testing::folder_options(&folder);
        let (id, after) = archiver_run(&repo, index, &folder, opts);
        assert_eq!(after.tree, before.tree);
        let (a, b) = (&after.summary, &before.summary);
        assert_eq!(
            (
                a.files_new,
                a.files_total,
                a.bytes_total,
                a.bytes_read,
                a.dirs
            ),
            (
                b.files_new,
                b.files_total,
                b.bytes_total,
                b.bytes_read,
                b.dirs
            )
        );
        assert_eq!(a.blobs_added, 0, "nothing new stored the second time");
        let want: BTreeMap<String, Vec<u8>> = files(&lib)
            .into_iter()
            .map(|(k, v)| (format!("lib/{k}"), v))
            .collect();
        verify(
            &root,
            &[(old, want.clone()), (id, want)],
            "read beside the walker",
        );
    }

    /// Large files that fail mid-read on a reader thread are left out and counted as
    /// errors, as when the walker reads them; a source gone mid-read stops the snapshot
    /// as a partial one the same way.
    #[test]
    fn a_large_file_failing_on_a_reader_thread_is_left_out_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let (root, lib) = (dir.path().join("repo"), dir.path().join("lib"));
        create_small_repo(&root, true);
        library(&lib);
        let repo = open(&root);
        let folder = FolderSource::new(std::slice::from_ref(&lib)).unwrap();
        let failing = |gone| Failing {
            inner: FolderSource::new(std::slice::from_ref(&lib)).unwrap(),
            broken: vec!["a/big2", "c/big0"],
            gone,
            at: 100_000,
        };
        let mut seen: HashMap<bool, Snapshot> = HashMap::new();
        for inline in [true, false] {
            let (_, s) = snap(&repo, &failing(None), &folder, inline);
            assert_eq!(s.summary.errors, 2, "inline {inline}");
            assert_eq!(s.summary.files_total, 30 - 2, "inline {inline}");
            assert!(s.incomplete && s.summary.interrupted.is_none());
            seen.insert(inline, s);
        }
        assert_eq!(seen[&true].tree, seen[&false].tree);
        for inline in [true, false] {
            let (_, s) = snap(&repo, &failing(Some("a/big0")), &folder, inline);
            assert!(s.summary.interrupted.is_some(), "inline {inline}");
            assert!(s.tags.iter().any(|t| t == "partial"), "inline {inline}");
        }
    }
}
