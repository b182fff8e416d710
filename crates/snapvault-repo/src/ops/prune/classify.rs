//! Step 3 of [`plan`](super::plan): which stored copy of each used blob counts, and what
//! every indexed pack holds (used and unused blobs and bytes). A pack with no used blob is
//! removed; the others are kept unless [`choose`](super::choose) repacks them.

use std::collections::HashMap;

use super::mark::UsedSet;
use super::{Action, PackInfo, PruneStats};
use crate::error::{PruneError, Result};
use crate::format::blob::{self, BlobType};
use crate::format::id::{BlobId, PackId};
use crate::repository::Repository;
use crate::repository::index::{BlobLocation, IdMap, Index};
use crate::storage::FileKind;

/// Read and verify one stored copy of a blob.
pub(super) fn verify_copy(
    repo: &Repository,
    index: &Index,
    id: &BlobId,
    loc: &BlobLocation,
) -> bool {
    let pack = index.pack_of(loc);
    repo.backend()
        .read_range(
            FileKind::Pack,
            &pack.to_hex(),
            loc.offset as u64,
            loc.length as usize,
        )
        .and_then(|sealed| blob::decode(repo.crypto(), id, loc.compressed(), loc.raw_len, &sealed))
        .is_ok()
}

/// The blobs in use, and for a used blob stored more than once the one copy that counts.
pub(super) struct InUse<'a> {
    used: UsedSet<'a>,
    /// Used blobs stored more than once: the (pack, offset) of the copy kept.
    chosen: IdMap<BlobId, (u32, u32)>,
}

impl<'a> InUse<'a> {
    /// A used blob stored more than once keeps one copy that verifies, preferring the pack
    /// that is otherwise most used (so the other copies' packs can go). A damaged copy never
    /// wins over a good one.
    pub(super) fn new(
        repo: &Repository,
        index: &Index,
        used: UsedSet<'a>,
        listed: &HashMap<String, u64>,
    ) -> InUse<'a> {
        let mut dup_ids: IdMap<BlobId, ()> = IdMap::default();
        for (id, _) in index.duplicates() {
            if used.contains(id) {
                dup_ids.insert(*id, ());
            }
        }
        let mut chosen: IdMap<BlobId, (u32, u32)> = IdMap::default();
        if !dup_ids.is_empty() {
            let mut plain_used = vec![0u64; index.packs().len()];
            for (id, loc) in index.blobs() {
                if used.contains(id) && !dup_ids.contains_key(id) {
                    plain_used[loc.pack as usize] += loc.length as u64;
                }
            }
            let share = |l: &BlobLocation| {
                let size = index.pack(l.pack).1.max(1);
                plain_used[l.pack as usize] as f64 / size as f64
            };
            let mut copies: IdMap<BlobId, Vec<BlobLocation>> = IdMap::default();
            for id in dup_ids.keys() {
                copies.insert(*id, index.get(id).copied().into_iter().collect());
            }
            for (id, loc) in index.duplicates() {
                if let Some(v) = copies.get_mut(id) {
                    v.push(*loc);
                }
            }
            for (id, mut locs) in copies {
                locs.sort_by(|a, b| share(b).total_cmp(&share(a)));
                let good = locs
                    .iter()
                    .find(|l| {
                        listed.contains_key(&index.pack_of(l).to_hex())
                            && verify_copy(repo, index, &id, l)
                    })
                    .unwrap_or(&locs[0]);
                chosen.insert(id, (good.pack, good.offset));
            }
        }
        InUse { used, chosen }
    }

    /// Is this stored copy of `id` in use?
    pub(super) fn is_used(&self, id: &BlobId, loc: &BlobLocation) -> bool {
        match self.chosen.get(id) {
            Some(&(p, o)) => p == loc.pack && o == loc.offset,
            None => self.used.contains(id),
        }
    }

    /// A used blob stored more than once?
    fn is_duplicated(&self, id: &BlobId) -> bool {
        self.chosen.contains_key(id)
    }
}

/// What each indexed pack holds (restic's `packInfoFromIndex`), by position in the index,
/// and the position of each pack. A pack holding used data must be present with the size
/// the index gives; otherwise prune stops.
pub(super) fn pack_infos(
    index: &Index,
    in_use: &InUse<'_>,
    listed: &HashMap<String, u64>,
    st: &mut PruneStats,
) -> Result<(Vec<PackInfo>, IdMap<PackId, u32>)> {
    let mut packs: Vec<PackInfo> = index
        .packs()
        .iter()
        .map(|&(id, size)| PackInfo {
            id,
            size,
            used_blobs: 0,
            used_bytes: 0,
            unused_blobs: 0,
            unused_bytes: 0,
            has_tree: false,
            action: Action::Keep,
        })
        .collect();
    let entries = index
        .blobs()
        .map(|(id, loc)| (id, loc, false))
        .chain(index.duplicates().iter().map(|(id, loc)| (id, loc, true)));
    for (id, loc, dup) in entries {
        let p = &mut packs[loc.pack as usize];
        p.has_tree |= loc.typ() == BlobType::Tree;
        st.blobs += 1;
        if in_use.is_used(id, loc) {
            p.used_blobs += 1;
            p.used_bytes += loc.length as u64;
        } else {
            p.unused_blobs += 1;
            p.unused_bytes += loc.length as u64;
            if dup || in_use.is_duplicated(id) {
                st.duplicate_blobs += 1;
                st.duplicate_bytes += loc.length as u64;
            }
        }
    }
    let mut pos_of: IdMap<PackId, u32> = IdMap::default();
    for (i, p) in packs.iter_mut().enumerate() {
        pos_of.insert(p.id, i as u32);
        st.packs += 1;
        st.pack_bytes += p.size;
        st.used_blobs += p.used_blobs as u64;
        st.used_bytes += p.used_bytes;
        st.unused_blobs += p.unused_blobs as u64;
        st.unused_bytes += p.unused_bytes;
        st.overhead_bytes += p.size.saturating_sub(p.used_bytes + p.unused_bytes);
        let on_disk = listed.get(&p.id.to_hex()).copied();
        if p.used_blobs > 0 {
            match on_disk {
                None => {
                    return Err(PruneError::PackMissing {
                        pack: p.id.to_string(),
                    }
                    .into());
                }
                Some(n) if n != p.size => {
                    return Err(PruneError::PackSize {
                        pack: p.id.to_string(),
                        found: n,
                        indexed: p.size,
                    }
                    .into());
                }
                Some(_) => {}
            }
        }
        if p.used_blobs == 0 {
            p.action = Action::Remove;
        }
    }
    Ok((packs, pos_of))
}
