//! Reading a set of stored blobs back: fetched, authenticated and checked against their ids,
//! so a caller can say "these bytes are really there" (`verify-device` before it calls a
//! photo safe to delete).
//!
//! The blobs are grouped by pack and read in offset order; neighbouring blobs (and small
//! gaps between them) are fetched with one range read, so every stored byte wanted is read
//! once however many files share it. Runs are spread over threads as `check` and `restore`
//! do. A blob whose copy fails is tried at its other stored copies (a later snapshot may
//! have healed it) before it is reported.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::error::RepoError;
use crate::format::blob;
use crate::format::id::BlobId;
use crate::repository::Repository;
use crate::repository::index::{BlobLocation, Index};
use crate::storage::FileKind;

/// Largest single range read.
const MAX_READ: u64 = 32 << 20;
/// Unwanted bytes between two wanted blobs that are read rather than paying for a second
/// request (cheap on a disk, much cheaper than a round trip to remote storage).
const MAX_GAP: u64 = 256 << 10;

/// Why a blob could not be confirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Proven bad: not in the index, its pack is gone or too short, or its bytes fail
    /// authentication or do not match its id.
    Damaged(String),
    /// Could not be read (an I/O or network error): neither good nor bad is known.
    Unread(String),
}

/// What reading back found.
#[derive(Debug, Default)]
pub struct ReadBack {
    /// Blobs that are not confirmed intact, and why. Every other blob asked for was read
    /// and verified.
    pub failed: HashMap<BlobId, Failure>,
    /// Bytes fetched from storage.
    pub bytes_read: u64,
    /// Packs read from.
    pub packs: usize,
    /// Set when reading was stopped before every blob was read (`failed` is then partial).
    pub stopped: bool,
}

/// One range read: blobs of one pack, in offset order, without overlaps.
struct Run {
    pack: u32,
    start: u64,
    end: u64,
    blobs: Vec<(BlobId, BlobLocation)>,
}

/// Read back every blob in `wanted` with `threads` threads. Setting `stop` ends the work
/// early (the caller gave up). Fails only when the pack listing cannot be had.
pub fn read_back(
    repo: &Repository,
    index: &Index,
    wanted: impl IntoIterator<Item = BlobId>,
    threads: usize,
    stop: &AtomicBool,
) -> crate::Result<ReadBack> {
    let present: HashMap<String, u64> = repo
        .backend()
        .list(FileKind::Pack)?
        .into_iter()
        .map(|f| (f.name, f.size))
        .collect();
    let mut out = ReadBack::default();
    let mut by_pack: BTreeMap<u32, Vec<(BlobId, BlobLocation)>> = BTreeMap::new();
    for id in wanted {
        match index.get(&id) {
            Some(loc) => by_pack.entry(loc.pack).or_default().push((id, *loc)),
            None => {
                out.failed.insert(
                    id,
                    Failure::Damaged("a chunk of it is not in the repository's index".into()),
                );
            }
        }
    }
    let mut runs = Vec::new();
    for (pos, mut blobs) in by_pack {
        let (pack, _) = index.pack(pos);
        let Some(&size) = present.get(&pack.to_hex()) else {
            let why = format!("pack {} is missing from the repository", pack.short());
            for (id, _) in blobs {
                out.failed.insert(id, Failure::Damaged(why.clone()));
            }
            continue;
        };
        out.packs += 1;
        blobs.sort_by_key(|(id, l)| (l.offset, *id));
        blobs.dedup_by_key(|(id, _)| *id);
        for (id, loc) in blobs {
            let (start, end) = (loc.offset as u64, loc.offset as u64 + loc.length as u64);
            if end > size {
                let why = format!(
                    "pack {} is cut short: it has {size} bytes, the blob ends at byte {end}",
                    pack.short()
                );
                out.failed.insert(id, Failure::Damaged(why));
                continue;
            }
            match runs.last_mut() {
                Some(Run {
                    pack: p,
                    start: s,
                    end: e,
                    blobs,
                }) if *p == pos && start >= *e && start - *e <= MAX_GAP && end - *s <= MAX_READ => {
                    *e = end;
                    blobs.push((id, loc));
                }
                _ => runs.push(Run {
                    pack: pos,
                    start,
                    end,
                    blobs: vec![(id, loc)],
                }),
            }
        }
    }

    let next = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let failed: Mutex<Vec<(BlobId, Failure)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(runs.len().max(1)) {
            s.spawn(|| {
                // This thread's read buffer, reused for every run.
                let mut buf = Vec::new();
                while !stop.load(Relaxed) {
                    let Some(run) = runs.get(next.fetch_add(1, Relaxed)) else {
                        break;
                    };
                    let found = read_run(repo, index, run, &mut buf);
                    bytes.fetch_add(run.end - run.start, Relaxed);
                    if !found.is_empty()
                        && let Ok(mut f) = failed.lock()
                    {
                        f.extend(found);
                    }
                }
            });
        }
    });
    out.stopped = stop.load(Relaxed) && next.load(Relaxed) < runs.len();
    out.bytes_read = bytes.into_inner();
    for (id, why) in failed.into_inner().unwrap_or_default() {
        // Another stored copy (healed by a later snapshot) may be intact.
        let first = index.get(&id).copied();
        let others = index.locations(&id);
        let healed = others.len() > 1
            && others.iter().filter(|l| Some(**l) != first).any(|l| {
                out.bytes_read += l.length as u64;
                repo.read_blob_at(index, &id, l).is_ok()
            });
        if !healed {
            out.failed.insert(id, why);
        }
    }
    Ok(out)
}

/// Read one run and verify each of its blobs; returns the blobs that failed.
fn read_run(
    repo: &Repository,
    index: &Index,
    run: &Run,
    buf: &mut Vec<u8>,
) -> Vec<(BlobId, Failure)> {
    let pack = index.pack(run.pack).0;
    let all = |f: Failure| run.blobs.iter().map(|(id, _)| (*id, f.clone())).collect();
    if let Err(e) = repo.backend().read_range_into(
        FileKind::Pack,
        &pack.to_hex(),
        run.start,
        (run.end - run.start) as usize,
        buf,
    ) {
        let why = format!("pack {} could not be read: {e}", pack.short());
        return all(match &e {
            RepoError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Failure::Damaged(format!(
                    "pack {} is missing from the repository",
                    pack.short()
                ))
            }
            _ => Failure::Unread(why),
        });
    }
    let mut out = Vec::new();
    for (id, loc) in &run.blobs {
        let s = (loc.offset as u64 - run.start) as usize;
        let ok = buf
            .get_mut(s..s + loc.length as usize)
            .is_some_and(|sealed| {
                blob::decode_in_place(repo.crypto(), id, loc.compressed(), loc.raw_len, sealed)
                    .is_ok()
            });
        if !ok {
            out.push((
                *id,
                Failure::Damaged(format!(
                    "the bytes in pack {} fail verification",
                    pack.short()
                )),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
