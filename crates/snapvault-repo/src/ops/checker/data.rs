//! The read-data part of `check`: every byte of the selected packs read, each blob opened
//! and verified against its id; and the damage earlier checks found in packs not read now.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use super::verify::{HeaderRead, verify_pack};
use super::{CheckObserver, CheckOptions, CheckReport, ReadData, Remedy, Severity};
use crate::error::{RepoError, Result};
use crate::format::id::{BlobId, PackId};
use crate::format::pack::{self, PackEntry};
use crate::repository::Repository;
use crate::repository::index::{ByPack, Index};
use crate::storage::FileKind;

/// A problem found reading a pack: (pack, object, message, blobs hurt).
type PackProblem = (PackId, String, String, Vec<BlobId>);

/// What reading the selected packs found, before it is added to the report.
pub(super) struct DataRead {
    /// Per pack (by its position in the index): its header as decoded from the whole pack
    /// read, or why it could not be; `None` when the pack was not read.
    headers: Vec<Option<HeaderRead>>,
    found: Vec<PackProblem>,
    unread: Vec<(PackId, String)>,
    verified: Vec<PackId>,
    bytes: u64,
}

impl DataRead {
    /// The header of the pack at `pos` (in index order) as the whole-pack read decoded it,
    /// taken once; `None` when that pack was not read.
    pub(super) fn take_header(&mut self, pos: usize) -> Option<HeaderRead> {
        self.headers.get_mut(pos).and_then(Option::take)
    }
}

/// Read all data of the selected packs. A pack that cannot be read is "not checked" (and
/// not verified); one whose header could not be read in the structure check
/// (`unread_headers`) is not tried again.
pub(super) fn read_packs(
    repo: &Repository,
    index: &Index,
    per_pack: &ByPack<'_>,
    listed: &HashMap<String, u64>,
    opts: &CheckOptions,
    obs: &dyn CheckObserver,
    unread_headers: &HashSet<PackId>,
) -> DataRead {
    let mut selected: Vec<(usize, PackId, u64)> = index
        .packs()
        .iter()
        .enumerate()
        .filter(|(_, (id, _))| opts.read_data.selects(id) && !unread_headers.contains(id))
        // The size on storage, not the index's: bytes appended to a pack must be read
        // (and fail its hash) too.
        .filter_map(|(i, (id, _))| listed.get(&id.to_hex()).map(|size| (i, *id, *size)))
        .collect();
    let deadline = match opts.read_data {
        ReadData::Budget(d) => {
            // Least recently verified first; never verified first of all.
            selected
                .sort_by_key(|(_, id, _)| (opts.last_verified.get(id).copied().unwrap_or(0), *id));
            Some(std::time::Instant::now() + d)
        }
        _ => None,
    };
    let next = AtomicUsize::new(0);
    let found: Mutex<Vec<PackProblem>> = Mutex::new(Vec::new());
    let unread: Mutex<Vec<(PackId, String)>> = Mutex::new(Vec::new());
    let done: Mutex<Vec<PackId>> = Mutex::new(Vec::new());
    let headers = Mutex::new(vec![None; index.packs().len()]);
    let bytes = AtomicU64::new(0);
    let plan = Plan::new(opts.threads);
    // The pool of pack buffers: what is held in memory at once is bounded by it, and a
    // reader starts the next read as soon as one is free, not when a verifier is.
    let (free_tx, free_rx) = crossbeam_channel::bounded::<Vec<u8>>(plan.buffers);
    for _ in 0..plan.buffers {
        let _ = free_tx.send(Vec::new());
    }
    let (full_tx, full_rx) = crossbeam_channel::bounded::<Filled>(plan.buffers);
    std::thread::scope(|s| {
        for _ in 0..plan.readers {
            let (free_rx, full_tx) = (free_rx.clone(), full_tx.clone());
            let (next, selected) = (&next, &selected);
            s.spawn(move || {
                while deadline.is_none_or(|d| std::time::Instant::now() < d) {
                    let Some(&(pos, id, size)) = selected.get(next.fetch_add(1, Relaxed)) else {
                        break;
                    };
                    // No buffer will come back when every verifier is gone.
                    let Ok(mut buf) = free_rx.recv() else {
                        break;
                    };
                    let read = read_pack(repo, &id, size, &mut buf);
                    if full_tx.send((pos, id, size, read, buf)).is_err() {
                        break;
                    }
                }
            });
        }
        // The verifiers end when every reader has; the readers when every verifier has.
        drop(full_tx);
        drop(free_rx);
        for _ in 0..plan.verifiers {
            let (full_rx, free_tx) = (full_rx.clone(), free_tx.clone());
            let (found, unread, done, headers, bytes) = (&found, &unread, &done, &headers, &bytes);
            s.spawn(move || {
                for (pos, id, size, read, mut buf) in full_rx.iter() {
                    match read {
                        Read::Bytes { at, len } => {
                            let (probs, header) = verify_pack(
                                repo,
                                (&id, size),
                                &per_pack.of(pos),
                                &mut buf,
                                (at, len),
                            );
                            let n = len as u64;
                            bytes.fetch_add(n, Relaxed);
                            obs.pack_read(n);
                            if let Ok(mut f) = found.lock() {
                                f.extend(probs.into_iter().map(|(o, m, b)| (id, o, m, b)));
                            }
                            if let Ok(mut d) = done.lock() {
                                d.push(id);
                            }
                            if let Ok(mut all) = headers.lock()
                                && let Some(slot) = all.get_mut(pos)
                            {
                                *slot = Some(header);
                            }
                        }
                        // Gone since it was listed: its blobs are lost.
                        Read::Gone(msg) => {
                            let blobs = per_pack.of(pos).iter().map(|(b, _)| *b).collect();
                            obs.pack_read(0);
                            if let Ok(mut f) = found.lock() {
                                f.push((id, format!("pack {}", id.to_hex()), msg, blobs));
                            }
                            if let Ok(mut d) = done.lock() {
                                d.push(id);
                            }
                        }
                        Read::Unavailable(msg) => {
                            if let Ok(mut u) = unread.lock() {
                                u.push((id, msg));
                            }
                        }
                    }
                    let _ = free_tx.send(buf);
                }
            });
        }
        drop(full_rx);
        drop(free_tx);
    });
    DataRead {
        headers: headers.into_inner().unwrap_or_default(),
        found: found.into_inner().unwrap_or_default(),
        unread: unread.into_inner().unwrap_or_default(),
        verified: done.into_inner().unwrap_or_default(),
        bytes: bytes.into_inner(),
    }
}

/// How `read_packs` splits its work. Reading and verifying are apart: a thread that read
/// a pack and then verified it left the disk idle while it verified, and threads that
/// started together stayed in step — all reading, then all verifying (issue 23.2: a cold
/// `check --read-data` took 1.7× the disk's time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Plan {
    /// Threads reading packs: at most this many reads in flight (`--threads`, the I/O
    /// concurrency: requests at once on remote storage).
    pub readers: usize,
    /// Threads verifying what was read: one per core (no more than `readers`).
    pub verifiers: usize,
    /// Packs held at once, read or being read and not yet verified: every verifier busy
    /// and two more read ahead, or one per reader as before, whichever is more.
    pub buffers: usize,
}

impl Plan {
    pub(super) fn new(threads: usize) -> Plan {
        let readers = threads.max(1);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let verifiers = cores.min(readers);
        Plan {
            readers,
            verifiers,
            buffers: readers.max(verifiers + 2),
        }
    }
}

/// A pack as a reader handed it over: (position in the index, pack, its size on storage,
/// what was read, the buffer that holds it).
type Filled = (usize, PackId, u64, Read, Vec<u8>);

/// What reading a whole pack gave.
pub(super) enum Read {
    /// Its bytes, at `at..at + len` of the buffer.
    Bytes { at: usize, len: usize },
    /// It is gone since it was listed (or shorter): damage, its blobs are lost.
    Gone(String),
    /// It could not be read (I/O error, a server gone): not checked, nothing known.
    Unavailable(String),
}

/// Add what [`read_packs`] found to the report: packs verified, not read, damaged; and the
/// damaged blobs that have a good copy elsewhere (healed).
pub(super) fn apply(data: DataRead, index: &Index, r: &mut CheckReport) {
    r.verified = data.verified;
    r.packs_read = r.verified.len();
    r.bytes_read = data.bytes;
    let mut unread = data.unread;
    unread.sort();
    for (pack, msg) in unread {
        r.unread_packs.insert(pack);
        r.unread(format!("pack {}", pack.to_hex()), msg);
    }
    for (pack, object, msg, blobs) in data.found {
        r.damaged_packs.insert(pack);
        r.bad_copies.extend(blobs.iter().map(|b| (*b, pack)));
        r.bad_blobs.extend(blobs);
        r.error(object, msg);
    }
    // A blob stored again by a later snapshot (healing) has a good copy elsewhere: the
    // files holding it are fine; only the damaged copy remains for `repair` to drop. A copy
    // in a pack that could not be read is not known to be good.
    let bad_copies: HashSet<(BlobId, PackId)> = r.bad_copies.iter().copied().collect();
    let healed: Vec<BlobId> = r
        .bad_blobs
        .iter()
        .filter(|b| {
            index.locations(b).iter().any(|l| {
                let p = index.pack_of(l);
                !bad_copies.contains(&(**b, p))
                    && !r.missing_packs.contains(&p)
                    && !r.unread_packs.contains(&p)
            })
        })
        .copied()
        .collect();
    for b in healed {
        r.bad_blobs.remove(&b);
        r.push(
            Severity::Notice,
            format!("blob {}", b.to_hex()),
            "has a damaged copy but also a good one; restore uses the good copy".into(),
            Some(Remedy::DropDamagedCopy),
        );
    }
}

/// Report the damage earlier checks found in packs this run did not read, and count their
/// damaged blobs (those without a good copy) as bad, so the files they hurt are named.
pub(super) fn earlier_damage(r: &mut CheckReport, index: &Index, opts: &CheckOptions) {
    let read: HashSet<PackId> = r.verified.iter().copied().collect();
    let unseen = |p: &PackId| {
        index.has_pack(p)
            && !read.contains(p)
            && !r.damaged_packs.contains(p)
            && !r.missing_packs.contains(p)
    };
    let mut per_pack: BTreeMap<PackId, usize> = BTreeMap::new();
    for p in opts.earlier_packs.iter().filter(|p| unseen(p)) {
        per_pack.entry(*p).or_default();
    }
    let mut known: HashSet<(BlobId, PackId)> = r.bad_copies.iter().copied().collect();
    for (b, p) in opts.earlier_copies.iter().filter(|(_, p)| unseen(p)) {
        *per_pack.entry(*p).or_default() += 1;
        known.insert((*b, *p));
    }
    let packs: HashSet<PackId> = per_pack.keys().copied().collect();
    for (b, _) in opts
        .earlier_copies
        .iter()
        .filter(|(_, p)| packs.contains(p))
    {
        let good_copy = index.locations(b).iter().any(|l| {
            let p = index.pack_of(l);
            !known.contains(&(*b, p)) && !packs.contains(&p)
        });
        if !good_copy {
            r.bad_blobs.insert(*b);
        }
    }
    for (p, blobs) in per_pack {
        let what = match blobs {
            0 => "is damaged".to_string(),
            n => format!("holds {n} damaged blob(s)"),
        };
        r.push(
            Severity::Error,
            format!("pack {}", p.to_hex()),
            format!("{what}, found by an earlier check and not read this time"),
            Some(Remedy::RepairOrReread),
        );
    }
}

/// Bytes read from a pack's end to find its header: the trailer and, in the same read, the
/// header before it when it fits (a data pack's header is a few dozen bytes per blob); a
/// longer one costs a second read. On remote storage each read is a request.
const HEADER_TAIL: u64 = 64 << 10;

/// Read and decode a pack's header using only its end.
pub(crate) fn read_header(repo: &Repository, id: &PackId, size: u64) -> Result<Vec<PackEntry>> {
    let name = id.to_hex();
    let be = repo.backend();
    if size < 4 {
        return Err(RepoError::corrupt(format!("pack {name}"), "too short"));
    }
    let tail_start = size - size.min(HEADER_TAIL);
    let tail = be.read_range(
        FileKind::Pack,
        &name,
        tail_start,
        (size - tail_start) as usize,
    )?;
    let trailer = tail
        .len()
        .checked_sub(4)
        .and_then(|at| tail.get(at..))
        .and_then(|t| <[u8; 4]>::try_from(t).ok())
        .ok_or_else(|| RepoError::corrupt(format!("pack {name}"), "too short"))?;
    let (start, len) = pack::header_location(size, trailer)?;
    let in_tail = start
        .checked_sub(tail_start)
        .and_then(|at| tail.get(at as usize..at as usize + len));
    let read;
    let sealed = match in_tail {
        Some(s) => s,
        None => {
            read = be.read_range(FileKind::Pack, &name, start, len)?;
            &read[..]
        }
    };
    let plain = repo
        .crypto()
        .open(sealed, &format!("header of pack {name}"))?;
    pack::decode_header(&plain, start)
}

/// Read one whole pack into `buf`.
pub(super) fn read_pack(repo: &Repository, id: &PackId, size: u64, buf: &mut Vec<u8>) -> Read {
    let name = id.to_hex();
    match repo
        .backend()
        .read_whole_into(FileKind::Pack, &name, size as usize, buf)
    {
        Ok(bytes) => {
            let (ptr, len) = (bytes.as_ptr() as usize, bytes.len());
            Read::Bytes {
                at: ptr - buf.as_ptr() as usize,
                len,
            }
        }
        Err(e) if e.is_unavailable() => Read::Unavailable(format!("could not be read: {e}")),
        Err(e) => Read::Gone(format!("cannot be read: {e}")),
    }
}
