//! What the packs really hold: every pack in storage read whole, its name, header and every
//! blob verified. `repair` rebuilds the index and judges loss from this, never from the
//! index files, which may be the damaged part.
//!
//! A pack that cannot be read (an I/O or network error) stops the survey: only proof about
//! a pack's bytes (wrong hash, a header or blob that fails authentication) may count it as
//! damaged, or a timeout would de-index a good pack.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

use crate::error::{RepoError, Result};
use crate::format::blob;
use crate::format::crypto::Crypto;
use crate::format::id::{BlobId, Id, IndexId, PackId};
use crate::format::pack::{self, PackEntry};
use crate::ops::checker::CheckObserver;
use crate::repository::Repository;
use crate::repository::index::{Index, IndexFile, IndexedPack};
use crate::storage::FileKind;

/// A pack whose bytes are not all good.
#[derive(Clone, Debug)]
pub struct DamagedPack {
    pub id: PackId,
    pub size: u64,
    /// The first thing found wrong with it.
    pub reason: String,
    /// Blobs in it that verify: `repair` copies them to a new pack.
    pub rescuable: Vec<PackEntry>,
    /// Blobs its header or the old index place in it that fail verification.
    pub bad: Vec<BlobId>,
}

/// The index files as they are: what they say, and which could not be used.
pub struct OldIndex {
    pub index: Index,
    /// Every index file in storage.
    pub files: Vec<IndexId>,
    /// Index files that are damaged (wrong hash, failed authentication, bad encoding).
    pub damaged: Vec<IndexId>,
}

/// Read every index file; a damaged one is set aside, an unreadable one stops the load.
pub fn load_old_index(repo: &Repository) -> Result<OldIndex> {
    let mut out = OldIndex {
        index: Index::new(),
        files: Vec::new(),
        damaged: Vec::new(),
    };
    for f in crate::repository::index::list_files(repo.backend().as_ref())?.0 {
        let Ok(id) = f.name.parse::<IndexId>() else {
            continue;
        };
        out.files.push(id);
        let bytes = repo.backend().read(FileKind::Index, &f.name)?;
        let what = format!("index {}", f.name);
        let parsed = if Id::hash_of(&bytes) != id.0 {
            Err(RepoError::corrupt(&what, "content does not match its name"))
        } else {
            IndexFile::open(repo.crypto(), &bytes, &what)
        };
        match parsed {
            Ok(file) => out.index.add_file(&file),
            Err(e) if e.is_unavailable() => return Err(e),
            Err(_) => out.damaged.push(id),
        }
    }
    Ok(out)
}

pub struct Survey {
    /// Packs whose name, header and every blob verify.
    pub intact: Vec<IndexedPack>,
    pub damaged: Vec<DamagedPack>,
    /// Files with a pack's name that are not provably this repository's (the header does
    /// not open, no index file names them): left alone.
    pub foreign: Vec<PackId>,
    /// Every good copy of every blob: the intact packs, plus the rescuable blobs of damaged
    /// packs (still pointing into them until `repair` copies them out).
    pub index: Index,
    pub bytes_read: u64,
}

impl Survey {
    /// Does the old index say exactly what the packs hold?
    pub(crate) fn agrees_with(&self, old: &OldIndex) -> bool {
        if !old.damaged.is_empty() || !self.damaged.is_empty() {
            return false;
        }
        if old.index.packs().len() != self.intact.len() {
            return false;
        }
        let per_pack = old.index.entries_of_pack();
        let positions: std::collections::HashMap<PackId, usize> = old
            .index
            .packs()
            .iter()
            .enumerate()
            .map(|(i, (p, _))| (*p, i))
            .collect();
        self.intact.iter().all(|p| {
            let Some(&pos) = positions.get(&p.id) else {
                return false;
            };
            if old.index.packs()[pos].1 != p.size {
                return false;
            }
            let mut said: Vec<(BlobId, u32, u32)> = per_pack[pos]
                .iter()
                .map(|(b, l)| (*b, l.offset, l.length))
                .collect();
            let mut held: Vec<(BlobId, u32, u32)> =
                p.blobs.iter().map(|e| (e.id, e.offset, e.length)).collect();
            said.sort_by_key(|e| e.1);
            held.sort_by_key(|e| e.1);
            said == held
        })
    }
}

/// Read and verify every pack in storage. `old` supplies extra blob positions for packs
/// whose header is damaged. Stops at the first pack that cannot be read.
pub fn survey(
    repo: &Repository,
    old: &Index,
    threads: usize,
    obs: &dyn CheckObserver,
) -> Result<Survey> {
    let mut listed: Vec<(PackId, u64)> = repo
        .backend()
        .list(FileKind::Pack)?
        .into_iter()
        .filter_map(|f| Some((f.name.parse::<PackId>().ok()?, f.size)))
        .collect();
    listed.sort();
    let per_pack = old.entries_of_pack();
    let positions: std::collections::HashMap<PackId, usize> = old
        .packs()
        .iter()
        .enumerate()
        .map(|(i, (p, _))| (*p, i))
        .collect();
    let old_entries = |id: &PackId| -> Vec<PackEntry> {
        positions
            .get(id)
            .map(|&pos| {
                per_pack[pos]
                    .iter()
                    .map(|(b, l)| PackEntry {
                        id: *b,
                        typ: l.typ(),
                        compressed: l.compressed(),
                        offset: l.offset,
                        length: l.length,
                        raw_len: l.raw_len,
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<Judged>> = Mutex::new(Vec::new());
    let error: Mutex<Option<RepoError>> = Mutex::new(None);
    let bytes = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let mut buf = Vec::new();
                while !stop.load(Relaxed) {
                    let Some(&(id, size)) = listed.get(next.fetch_add(1, Relaxed)) else {
                        break;
                    };
                    let read = repo.backend().read_range_into(
                        FileKind::Pack,
                        &id.to_hex(),
                        0,
                        size as usize,
                        &mut buf,
                    );
                    if let Err(e) = read {
                        stop.store(true, Relaxed);
                        if let Ok(mut g) = error.lock() {
                            g.get_or_insert(RepoError::PackUnreadable {
                                pack: id.to_hex(),
                                source: Box::new(e),
                            });
                        }
                        break;
                    }
                    bytes.fetch_add(size, Relaxed);
                    obs.pack_read(size);
                    let j = judge(repo.crypto(), id, &buf, &|| old_entries(&id));
                    if let Ok(mut r) = results.lock() {
                        r.push(j);
                    }
                }
            });
        }
    });
    if let Some(e) = error.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut judged = results.into_inner().unwrap_or_default();
    judged.sort_by_key(|j| match j {
        Judged::Intact(p) => p.id,
        Judged::Damaged(d) => d.id,
        Judged::Foreign(id) => *id,
    });
    let mut out = Survey {
        intact: Vec::new(),
        damaged: Vec::new(),
        foreign: Vec::new(),
        index: Index::new(),
        bytes_read: bytes.into_inner(),
    };
    for j in judged {
        match j {
            Judged::Intact(p) => {
                out.index.add_pack(p.id, p.size, &p.blobs);
                out.intact.push(p);
            }
            Judged::Damaged(d) => out.damaged.push(d),
            Judged::Foreign(id) => out.foreign.push(id),
        }
    }
    // Rescuable blobs after every intact copy: those are the ones restore should prefer.
    for d in &out.damaged {
        out.index.add_pack(d.id, d.size, &d.rescuable);
    }
    Ok(out)
}

enum Judged {
    Intact(IndexedPack),
    Damaged(DamagedPack),
    /// Not provably this repository's.
    Foreign(PackId),
}

/// Verify one pack held in memory.
fn judge(crypto: &Crypto, id: PackId, bytes: &[u8], old: &dyn Fn() -> Vec<PackEntry>) -> Judged {
    let what = format!("pack {}", id.to_hex());
    let size = bytes.len() as u64;
    let hash_ok = Id::hash_of(bytes) == id.0;
    let header = pack::parse_pack(crypto, bytes, &what);
    let verifies = |e: &PackEntry| {
        let start = e.offset as usize;
        bytes
            .get(start..start + e.length as usize)
            .is_some_and(|s| blob::decode(crypto, &e.id, e.compressed, e.raw_len, s).is_ok())
    };
    let mut reason = match (&header, hash_ok) {
        (Err(e), _) => Some(format!("its header is damaged ({e})")),
        (Ok(_), false) => Some("its content does not match its name".to_string()),
        (Ok(_), true) => None,
    };
    let header_opens = header.is_ok();
    let mut candidates: Vec<PackEntry> = header.unwrap_or_default();
    if reason.is_some() {
        // The old index may know blobs a damaged header no longer lists.
        let known: HashSet<(BlobId, u32)> = candidates.iter().map(|e| (e.id, e.offset)).collect();
        candidates.extend(
            old()
                .into_iter()
                .filter(|e| !known.contains(&(e.id, e.offset))),
        );
    }
    // Neither its header nor any index file says it is ours: nothing proves it is this
    // repository's garbage, so it is not ours to delete.
    if !header_opens && candidates.is_empty() {
        return Judged::Foreign(id);
    }
    let mut rescuable = Vec::new();
    let mut bad = Vec::new();
    for e in candidates {
        if verifies(&e) {
            rescuable.push(e);
        } else {
            bad.push(e.id);
        }
    }
    if reason.is_none() && !bad.is_empty() {
        reason = Some(format!("{} blob(s) fail verification", bad.len()));
    }
    match reason {
        None => Judged::Intact(IndexedPack {
            id,
            size,
            blobs: rescuable,
        }),
        Some(reason) => Judged::Damaged(DamagedPack {
            id,
            size,
            reason,
            rescuable,
            bad,
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests;
