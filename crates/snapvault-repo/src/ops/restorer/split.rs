//! One large file restored by several threads at once. Written whole, a long video keeps
//! one core busy (read, decrypt, verify, write) while the others have nothing left to do;
//! cut into segments of [`SEGMENT`] bytes, it is shared out like the other files.
//!
//! Every segment is written at its own offset into the one temporary file (positioned
//! writes through [`DirectWriter::at`], each thread with its own handle). The thread that
//! takes the first segment does what a whole file's restore does first (what is in the
//! way, the temporary file; see [`file::prepare`]); the others wait for it. The thread that
//! finishes the last segment gives the file its length, syncs it, sets its mode and times
//! and renames it into place; if any segment failed, it removes the temporary file
//! instead. So the target's name only ever holds the complete, verified file, as for a
//! file written whole. Segment boundaries are multiples of the direct-I/O block size; a
//! blob that straddles one is read and verified by both neighbours, each writing its part.

use std::fs::File;
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::{IoContext, RepoError, Result};
use crate::repository::index::{BlobLocation, Index};
use crate::storage::direct_io::{self, DirectWriter};

use super::dirs::{self, Dir};
use super::file::{self, Outcome, Prepared};
use super::folders::OpenFolders;
use super::{RestoreItem, Run, split as split_path};

/// Bytes per segment: a few range reads each, large enough that the blob read twice at
/// each boundary costs little (chunks are ≤ 8 MiB, 1 MiB on average).
#[cfg(not(test))]
pub(super) const SEGMENT: u64 = 64 << 20;
/// Small in unit tests, so a file of a few hundred KiB is split many times.
#[cfg(test)]
pub(super) const SEGMENT: u64 = 64 << 10;

/// One piece of a restore's work: a whole file, or one segment of a large one.
pub(super) struct Unit {
    /// Position in the list of files.
    pub file: usize,
    /// The file's shared state and the segment's number, for a file cut into segments.
    pub part: Option<(Arc<Split>, usize)>,
}

/// The work units for `files` on `threads` threads: files of at least two segments are
/// cut when there is more than one thread (and every blob is in the index: a file with a
/// missing blob goes whole, to fail as it always did).
pub(super) fn units(index: &Index, files: &[&RestoreItem], threads: usize) -> Vec<Unit> {
    let mut out = Vec::with_capacity(files.len());
    for (i, item) in files.iter().enumerate() {
        let node = &item.node;
        let locs = (threads > 1 && node.size >= 2 * SEGMENT)
            .then(|| file::locations(index, node).ok())
            .flatten();
        let Some(locs) = locs else {
            out.push(Unit {
                file: i,
                part: None,
            });
            continue;
        };
        let mut starts = Vec::with_capacity(locs.len());
        let mut at = 0u64;
        for l in &locs {
            starts.push(at);
            at += l.raw_len as u64;
        }
        if at != node.size {
            // Damaged or crafted: the whole-file path refuses it with its message.
            out.push(Unit {
                file: i,
                part: None,
            });
            continue;
        }
        let segments = node.size.div_ceil(SEGMENT) as usize;
        let split = Arc::new(Split {
            locs,
            starts,
            size: node.size,
            state: Mutex::new(State {
                phase: Phase::Pending,
                left: segments,
                error: None,
            }),
            ready: Condvar::new(),
        });
        out.extend((0..segments).map(|k| Unit {
            file: i,
            part: Some((split.clone(), k)),
        }));
    }
    out
}

/// A file being written in segments.
pub(super) struct Split {
    locs: Vec<BlobLocation>,
    /// Where each blob starts in the file.
    starts: Vec<u64>,
    size: u64,
    state: Mutex<State>,
    /// Signalled when the first segment's thread leaves [`Phase::Pending`].
    ready: Condvar,
}

struct State {
    phase: Phase,
    /// Segments not finished yet.
    left: usize,
    /// The first failure of a segment.
    error: Option<RepoError>,
}

enum Phase {
    /// The first segment's thread is checking the target.
    Pending,
    Writing {
        dir: Arc<Dir>,
        tmp: Vec<u8>,
        file: File,
        /// Whether `file` was switched to direct I/O (see [`DirectWriter::at`]).
        direct: bool,
    },
    /// Nothing (more) to write: refused, already right, failed to start, or finished.
    Settled,
}

impl Split {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Segment `k`: the blobs it needs and its bytes (counted from the first of them).
    fn segment(&self, k: usize) -> (Range<usize>, Range<u64>) {
        let start = k as u64 * SEGMENT;
        let end = (start + SEGMENT).min(self.size);
        // First blob ending after `start`; first blob starting at or after `end`.
        let first = self
            .starts
            .partition_point(|&s| s <= start)
            .saturating_sub(1);
        let last = self.starts.partition_point(|&s| s < end);
        let base = self.starts.get(first).copied().unwrap_or(0);
        (first..last.max(first), start - base..end - base)
    }

    /// Restore segment `k` of `item`. Returns the file's outcome from the thread that
    /// settles it (the first segment's on a refusal, the last one's otherwise), `None`
    /// from the others.
    pub(super) fn run(
        &self,
        run: &Run,
        open: &OpenFolders,
        item: &RestoreItem,
        k: usize,
        buf: &mut Vec<u8>,
    ) -> Option<Result<Outcome>> {
        let shown = super::shown(&item.path);
        if k == 0 {
            // Waiters are released even if preparing panics.
            let mut guard = Release(self, true);
            let (dir_path, name) = split_path(&item.path);
            let prepared = open
                .get(dir_path)
                .ctx(|| format!("opening the folder of {shown}"))
                .and_then(|dir| {
                    let p = file::prepare(
                        run.repo,
                        run.index,
                        run.chunker,
                        &dir,
                        name,
                        run.temps.for_path(&item.path),
                        &shown,
                        &item.node,
                        run.opts.overwrite,
                    )?;
                    Ok((dir, p))
                });
            let done = match prepared {
                Ok((dir, Prepared::Write { tmp, file, .. })) => {
                    let direct = direct_io::try_direct(&file);
                    self.lock().phase = Phase::Writing {
                        dir,
                        tmp,
                        file,
                        direct,
                    };
                    None
                }
                Ok((_, Prepared::Done(outcome))) => Some(Ok(outcome)),
                Err(e) => Some(Err(e)),
            };
            guard.1 = done.is_some();
            drop(guard);
            if done.is_some() {
                return done;
            }
        }
        let handle = {
            let mut st = self.lock();
            while matches!(st.phase, Phase::Pending) {
                st = self.ready.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
            match &st.phase {
                Phase::Settled => return None,
                // Another segment failed already: nothing more is worth writing.
                Phase::Writing { .. } if st.error.is_some() => None,
                Phase::Writing { file, direct, .. } => Some((file.try_clone(), *direct)),
                Phase::Pending => None,
            }
        };
        let result = match handle {
            None => Ok(()),
            Some((Err(e), _)) => Err(e).ctx(|| format!("writing {shown}")),
            Some((Ok(f), direct)) => self.write(run, item, k, f, direct, &shown, buf),
        };
        self.finish_one(result, item, &shown)
    }

    /// Read, verify and write the bytes of segment `k` through `f`.
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        run: &Run,
        item: &RestoreItem,
        k: usize,
        f: File,
        direct: bool,
        shown: &str,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let (blobs, bytes) = self.segment(k);
        let offset = k as u64 * SEGMENT;
        let mut w = DirectWriter::at(f, offset, direct);
        let (Some(ids), Some(locs)) = (
            item.node.content.get(blobs.clone()),
            self.locs.get(blobs.clone()),
        ) else {
            return Err(RepoError::corrupt(
                shown.to_string(),
                "segment outside the file",
            ));
        };
        file::write_blobs(run.repo, run.index, ids, locs, bytes, &mut w, shown, buf)?;
        w.flush().ctx(|| format!("writing {shown}"))?;
        Ok(())
    }

    /// One segment is done; the last one completes the file or, after a failure, removes
    /// its temporary file.
    fn finish_one(
        &self,
        result: Result<()>,
        item: &RestoreItem,
        shown: &str,
    ) -> Option<Result<Outcome>> {
        let (dir, tmp, file, error) = {
            let mut st = self.lock();
            if let Err(e) = result {
                st.error.get_or_insert(e);
            }
            st.left = st.left.saturating_sub(1);
            if st.left > 0 {
                return None;
            }
            match std::mem::replace(&mut st.phase, Phase::Settled) {
                Phase::Writing { dir, tmp, file, .. } => (dir, tmp, file, st.error.take()),
                _ => return None,
            }
        };
        let name = split_path(&item.path).1;
        let node = &item.node;
        let result = match error {
            Some(e) => Err(e),
            None => (|| {
                file.set_len(self.size)
                    .and_then(|()| crate::storage::durable::sync_data(&file))
                    .ctx(|| format!("syncing {shown}"))?;
                dirs::set_meta(&file, node.mode, node.mtime);
                dir.rename(&tmp, name)
                    .ctx(|| format!("renaming into {shown}"))
            })(),
        };
        match result {
            Ok(()) => Some(Ok(Outcome::Written(self.size))),
            Err(e) => {
                let _ = dir.remove_file(&tmp);
                Some(Err(e))
            }
        }
    }

    /// After a restore stopped early (full disk): remove the temporary file of a file
    /// whose segments were not all written.
    pub(super) fn abandon(&self) {
        let mut st = self.lock();
        if let Phase::Writing { dir, tmp, .. } = std::mem::replace(&mut st.phase, Phase::Settled) {
            let _ = dir.remove_file(&tmp);
        }
    }

    /// The range reads of segment `k` within its first `budget` bytes (see
    /// [`file::reads_of_locs`]).
    pub(super) fn reads_of(
        &self,
        index: &Index,
        k: usize,
        budget: u64,
        out: &mut Vec<(String, u64, u64)>,
    ) {
        if let Some(locs) = self.locs.get(self.segment(k).0) {
            file::reads_of_locs(index, locs, budget, out);
        }
    }
}

/// Settles a [`Split`] still pending when dropped armed (the first segment's thread
/// refused the file, failed, or panicked) and wakes the threads waiting for it.
struct Release<'a>(&'a Split, bool);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        if self.1 {
            let mut st = self.0.lock();
            if matches!(st.phase, Phase::Pending) {
                st.phase = Phase::Settled;
            }
        }
        self.0.ready.notify_all();
    }
}
