//! Step 4 of [`plan`](super::plan): which partly used packs to repack (restic's
//! `decidePackAction`): tree packs always, then data packs with the largest unused share
//! first, until the unused space left is at most `--max-unused`, never more than
//! `--max-repack` bytes of packs.

use std::collections::HashMap;

use super::classify::InUse;
use super::{Action, MaxUnused, PackInfo, PruneOptions, PruneStats};
use crate::format::pack::PackEntry;
use crate::repository::index::Index;

/// `--max-unused` in bytes, for a repository with `used_bytes` in use after prune.
fn max_unused_bytes(limit: MaxUnused, used_bytes: u64) -> u64 {
    match limit {
        MaxUnused::Unlimited => u64::MAX,
        MaxUnused::Bytes(b) => b,
        MaxUnused::Percent(pc) if pc >= 100.0 => u64::MAX,
        // unused / (used + unused) ≤ pc%  ⇔  unused ≤ used · pc / (100 − pc)
        MaxUnused::Percent(pc) => (used_bytes as f64 * pc / (100.0 - pc)) as u64,
    }
}

/// Mark the packs to repack (`Action::Repack`).
pub(super) fn decide_repacks(packs: &mut [PackInfo], opts: &PruneOptions, st: &mut PruneStats) {
    let max_unused = max_unused_bytes(opts.max_unused, st.used_bytes);
    st.max_unused_bytes = max_unused;
    let mut candidates: Vec<usize> = (0..packs.len())
        .filter(|&i| packs[i].used_blobs > 0 && packs[i].unused_blobs > 0)
        .collect();
    candidates.sort_by(|&a, &b| {
        let (pa, pb) = (&packs[a], &packs[b]);
        // Tree packs first, then the largest unused share (unused/size, compared exactly).
        pb.has_tree.cmp(&pa.has_tree).then_with(|| {
            let l = pb.unused_bytes as u128 * pa.size.max(1) as u128;
            let r = pa.unused_bytes as u128 * pb.size.max(1) as u128;
            l.cmp(&r)
        })
    });
    let mut unused_left: u64 = candidates.iter().map(|&i| packs[i].unused_bytes).sum();
    let mut budget = opts.max_repack.unwrap_or(u64::MAX);
    for i in candidates {
        let p = &mut packs[i];
        if !p.has_tree && unused_left <= max_unused {
            break;
        }
        if p.size > budget {
            continue;
        }
        budget -= p.size;
        unused_left -= p.unused_bytes;
        p.action = Action::Repack;
    }
}

/// Per repacked pack (by position): its used blobs in offset order, packs in position order.
pub(super) fn repack_entries(
    index: &Index,
    packs: &[PackInfo],
    in_use: &InUse<'_>,
) -> Vec<(u32, Vec<PackEntry>)> {
    let mut repack: HashMap<u32, Vec<PackEntry>> = HashMap::new();
    for (id, loc) in index
        .blobs()
        .chain(index.duplicates().iter().map(|(a, b)| (a, b)))
    {
        if packs[loc.pack as usize].action == Action::Repack && in_use.is_used(id, loc) {
            repack.entry(loc.pack).or_default().push(PackEntry {
                id: *id,
                typ: loc.typ(),
                compressed: loc.compressed(),
                offset: loc.offset,
                length: loc.length,
                raw_len: loc.raw_len,
            });
        }
    }
    let mut repack: Vec<(u32, Vec<PackEntry>)> = repack.into_iter().collect();
    repack.sort_by_key(|(p, _)| *p);
    for (_, v) in &mut repack {
        v.sort_by_key(|e| e.offset);
    }
    repack
}

/// Count the packs kept, removed and repacked, and their bytes.
pub(super) fn tally(packs: &[PackInfo], listed: &HashMap<String, u64>, st: &mut PruneStats) {
    for p in packs {
        match p.action {
            Action::Keep => {
                st.keep_packs += 1;
                st.keep_bytes += p.size;
                st.unused_after_bytes += p.unused_bytes;
            }
            Action::Remove => {
                st.remove_packs += 1;
                if listed.contains_key(&p.id.to_hex()) {
                    st.remove_bytes += p.size;
                }
            }
            Action::Repack => {
                st.repack_packs += 1;
                st.repack_bytes += p.size;
                st.repack_blobs += p.used_blobs as u64;
                st.repack_copy_bytes += p.used_bytes;
            }
        }
    }
}
