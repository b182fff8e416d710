//! `prune`: reclaim the space of data no snapshot uses any more.
//!
//! [`plan`] reads and changes nothing but memory:
//! 1. load the index and every snapshot (an unreadable snapshot stops prune: its data might
//!    be needed);
//! 2. mark: walk every snapshot's trees and collect the ids of the blobs in use (trees and
//!    data) in a hash set; a used blob missing from the index stops prune;
//! 3. classify every indexed pack as fully used (kept), unused (removed) or partly used;
//!    copies of a blob stored more than once count as unused except one (the first that
//!    verifies, so a damaged copy never wins over a good one);
//! 4. choose partly used packs to repack: tree packs always, then data packs with the
//!    largest unused share first, until the unused space left is at most `--max-unused`,
//!    never more than `--max-repack` bytes of packs;
//! 5. packs that no index names (left by interrupted snapshots or prunes) are removed once
//!    older than a safety margin.
//!
//! [`execute`] then writes in the order that keeps every instant safe (invariant 2):
//! new packs (the used blobs of repacked packs, sealed bytes copied as they are after each
//! was verified) → new index files naming every kept and new pack, the last one listing the
//! old index files in `supersedes` → delete the old index files → delete the removed and
//! repacked packs → delete old unindexed packs and leftover temporary files. A crash before
//! the old index files are gone leaves duplicates (harmless); after, only unindexed packs.
//!
//! Memory: the index (see `index.rs`; ≈ 60–120 bytes per blob in its hash table) plus the
//! set of blobs in use, kept as the first 8 bytes of each id in a hash set sized for every
//! indexed blob: 9 bytes per slot at a load factor between 7/16 and 7/8, i.e. ≈ 10–21 bytes
//! per blob (two blobs sharing a prefix would only keep an unused blob, never lose a used
//! one; trees are tracked exactly), plus ≈ 100 bytes per pack and one pack being read and
//! two being written (≈ 3 × 16 MiB). Nothing grows with the bytes stored.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{RepoError, Result};
use crate::format::blob::{self, BlobType, EncodedBlob};
use crate::format::id::{BlobId, Id, IndexId, PackId, SnapshotId};
use crate::format::pack::{PackEntry, PackWriter};
use crate::format::tree::NodeKind;
use crate::repository::index::{BlobLocation, IdHasher, IdMap, Index, IndexFile, IndexedPack};
use crate::repository::{LoadedIndex, Repository};
use crate::storage::FileKind;

/// Most blobs per new index file (≈ 4.6 MB), far below the 256 MiB limit.
pub(crate) const MAX_INDEX_BLOBS: usize = 100_000;

type IdSet = HashSet<BlobId, BuildHasherDefault<IdHasher>>;

/// Blobs in use, by the first 8 bytes of their id (ids are uniformly random). A prefix
/// shared with another blob can only make an unused blob look used (it is then kept), so
/// the saving (9 instead of 33 bytes a slot) costs no safety.
struct UsedSet(HashSet<u64, BuildHasherDefault<IdHasher>>);

impl UsedSet {
    fn with_capacity(n: usize) -> UsedSet {
        UsedSet(HashSet::with_capacity_and_hasher(n, Default::default()))
    }
    fn key(id: &BlobId) -> u64 {
        let b = id.as_bytes();
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }
    fn insert(&mut self, id: &BlobId) {
        self.0.insert(Self::key(id));
    }
    fn contains(&self, id: &BlobId) -> bool {
        self.0.contains(&Self::key(id))
    }
}

/// How much unused space may stay in partly used packs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxUnused {
    /// Percent of the repository's size after prune.
    Percent(f64),
    Bytes(u64),
    Unlimited,
}

impl FromStr for MaxUnused {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<MaxUnused, String> {
        let t = s.trim();
        if t == "unlimited" {
            return Ok(MaxUnused::Unlimited);
        }
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| {
                format!("invalid limit {s:?}: expected e.g. 5%, 200MiB or unlimited")
            })?;
            if !(0.0..=100.0).contains(&v) {
                return Err(format!(
                    "invalid limit {s:?}: a percentage is between 0% and 100%"
                ));
            }
            return Ok(MaxUnused::Percent(v));
        }
        parse_size(t).map(MaxUnused::Bytes)
    }
}

impl std::fmt::Display for MaxUnused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxUnused::Percent(p) => write!(f, "{p}%"),
            MaxUnused::Bytes(b) => write!(f, "{b} bytes"),
            MaxUnused::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// `--max-unused` (for clap).
pub fn parse_max_unused(s: &str) -> std::result::Result<MaxUnused, String> {
    s.parse()
}

/// A size: `1024`, `500K`, `200M`, `1.5G`, `2GiB`, `1TB` (all units are powers of 1024).
pub(crate) fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let bad = || format!("invalid size {s:?}: expected e.g. 500M, 2GiB or a number of bytes");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = v * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// `--max-repack`: a size or `unlimited` (None).
pub fn parse_max_repack(s: &str) -> std::result::Result<Option<u64>, String> {
    if s.trim() == "unlimited" {
        return Ok(None);
    }
    parse_size(s).map(Some)
}

/// An age such as `1h`, `30m`, `1h30m`, `2d`, `90s` or `0`.
pub fn parse_age(s: &str) -> std::result::Result<u64, String> {
    let bad = || format!("invalid age {s:?}: expected e.g. 1h, 30m, 2d or 0");
    let t = s.trim();
    if t == "0" {
        return Ok(0);
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for ch in t.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let v: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        total = v
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
    }
    if !num.is_empty() || t.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

#[derive(Clone, Debug)]
pub struct PruneOptions {
    pub max_unused: MaxUnused,
    /// Most bytes of packs to repack in one run; None = no limit.
    pub max_repack: Option<u64>,
    /// Packs no index names are deleted only when at least this old (seconds). Prune holds
    /// the exclusive lock, so no snapshot can be writing them; the margin guards against a
    /// writer that lost its lock (say, a process paused for longer than the lock lease).
    pub unindexed_min_age: u64,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            max_unused: MaxUnused::Percent(5.0),
            max_repack: None,
            unindexed_min_age: 3600,
        }
    }
}

/// What prune found and plans to do (bytes are stored, i.e. sealed, sizes).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneStats {
    pub snapshots: usize,
    /// Distinct trees walked.
    pub trees: u64,
    pub packs: u64,
    pub pack_bytes: u64,
    /// Index entries (a blob stored twice counts twice).
    pub blobs: u64,
    pub used_blobs: u64,
    pub used_bytes: u64,
    pub unused_blobs: u64,
    pub unused_bytes: u64,
    /// Extra copies of blobs stored more than once (included in unused).
    pub duplicate_blobs: u64,
    pub duplicate_bytes: u64,
    /// Header and trailer bytes of packs.
    pub overhead_bytes: u64,
    pub remove_packs: u64,
    pub remove_bytes: u64,
    pub repack_packs: u64,
    pub repack_bytes: u64,
    /// Used blobs copied out of repacked packs.
    pub repack_blobs: u64,
    pub repack_copy_bytes: u64,
    pub keep_packs: u64,
    pub keep_bytes: u64,
    /// Unused bytes left in kept packs after prune.
    pub unused_after_bytes: u64,
    /// The limit `--max-unused` translated into bytes.
    pub max_unused_bytes: u64,
    pub unindexed_packs: u64,
    pub unindexed_bytes: u64,
    pub unindexed_remove_packs: u64,
    pub unindexed_remove_bytes: u64,
    /// Files in `data/` that are not packs of this repository (someone else's): left alone.
    pub foreign_files: u64,
    pub index_files: usize,
    /// Bytes that will be freed: removed + repacked + unindexed removed − copied.
    pub estimated_freed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Keep,
    Remove,
    Repack,
}

#[derive(Clone, Debug)]
struct PackInfo {
    id: PackId,
    size: u64,
    used_blobs: u32,
    used_bytes: u64,
    unused_blobs: u32,
    unused_bytes: u64,
    has_tree: bool,
    action: Action,
}

/// The result of [`plan`]; [`execute`] carries it out.
pub struct PrunePlan {
    pub stats: PruneStats,
    packs: Vec<PackInfo>,
    pos_of: IdMap<PackId, u32>,
    /// Per repacked pack (by position): its used blobs in offset order.
    repack: Vec<(u32, Vec<PackEntry>)>,
    unindexed_remove: Vec<(String, u64)>,
    old_index: Vec<IndexId>,
    /// Minimum age of unindexed packs and temporary files to delete.
    min_age: u64,
}

impl PrunePlan {
    /// Nothing to delete or rewrite.
    pub fn is_noop(&self) -> bool {
        !self.rewrites_index() && self.unindexed_remove.is_empty()
    }

    fn rewrites_index(&self) -> bool {
        self.packs.iter().any(|p| p.action != Action::Keep)
    }

    /// Each indexed pack with its fate (for `--dry-run --verbose`, tests).
    pub fn pack_actions(&self) -> Vec<(PackId, Action, u64, u64)> {
        self.packs
            .iter()
            .map(|p| (p.id, p.action, p.used_bytes, p.unused_bytes))
            .collect()
    }
}

pub use crate::ops::observe::PruneObserver;

/// Read and verify one stored copy of a blob.
fn verify_copy(repo: &Repository, index: &Index, id: &BlobId, loc: &BlobLocation) -> bool {
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

/// Like [`Repository::load_index`], but one file at a time: the peak is the merged index
/// plus one file, not plus every file decoded at once (prune's peak memory).
fn load_index_lean(repo: &Repository) -> Result<LoadedIndex> {
    let be = repo.backend();
    let mut index = Index::new();
    let mut files = Vec::new();
    for f in crate::repository::index::list_files(be.as_ref())?.0 {
        let bytes = be.read(FileKind::Index, &f.name)?;
        let what = format!("index {}", f.name);
        if Id::hash_of(&bytes).to_hex() != f.name {
            return Err(RepoError::corrupt(what, "content does not match its name"));
        }
        let file = IndexFile::open(repo.crypto(), &bytes, &what)?;
        drop(bytes);
        index.add_file(&file);
        files.push(f.name.parse()?);
    }
    Ok(LoadedIndex { index, files })
}

/// Work out what prune would do. Snapshots in `ignore` count as already removed (for
/// `forget --prune --dry-run`). Reads only.
pub fn plan(
    repo: &Repository,
    opts: &PruneOptions,
    ignore: &HashSet<SnapshotId>,
    obs: &dyn PruneObserver,
) -> Result<PrunePlan> {
    let be = repo.backend();
    let mut st = PruneStats::default();
    obs.step("loading index and snapshots");
    let listed: HashMap<String, u64> = be
        .list(FileKind::Pack)?
        .into_iter()
        .map(|f| (f.name, f.size))
        .collect();
    let loaded = load_index_lean(repo)?;
    let index = &loaded.index;
    st.index_files = loaded.files.len();
    let (snaps, bad) = repo.snapshots()?;
    if let Some((name, e)) = bad.into_iter().find(|(n, _)| {
        n.parse::<SnapshotId>()
            .map(|id| !ignore.contains(&id))
            .unwrap_or(true)
    }) {
        return Err(RepoError::Invalid(format!(
            "snapshot {name} cannot be read ({e}); prune must know every snapshot's data, so it \
             changed nothing. Remove the snapshot (`snapvault forget {name}`) if it is beyond \
             repair, then prune again"
        )));
    }

    // Mark.
    obs.step("marking used blobs");
    let mut used = UsedSet::with_capacity(index.blob_count());
    let mut visited = IdSet::default();
    let mut missing: u64 = 0;
    let mut first_missing: Option<String> = None;
    for (sid, s) in snaps.iter().filter(|(id, _)| !ignore.contains(id)) {
        st.snapshots += 1;
        let mut stack = vec![s.tree];
        while let Some(t) = stack.pop() {
            if !visited.insert(t) {
                continue;
            }
            used.insert(&t);
            st.trees += 1;
            let tree = repo.load_tree(index, &t).map_err(|e| {
                RepoError::Invalid(format!(
                    "a tree of snapshot {} cannot be read ({e}); prune changed nothing (run `snapvault check`)",
                    sid.short()
                ))
            })?;
            for n in tree.nodes {
                match n.kind {
                    NodeKind::Dir => stack.extend(n.subtree),
                    NodeKind::File => {
                        for b in n.content {
                            if !index.contains(&b) {
                                missing += 1;
                                first_missing.get_or_insert_with(|| {
                                    format!(
                                        "blob {} of {} in snapshot {}",
                                        b.short(),
                                        n.name.lossy(),
                                        sid.short()
                                    )
                                });
                            } else {
                                used.insert(&b);
                            }
                        }
                    }
                    // Symlinks, FIFOs, sockets, devices: no data.
                    _ => {}
                }
            }
        }
    }
    if missing > 0 {
        return Err(RepoError::Invalid(format!(
            "{missing} blob(s) used by snapshots are not in the index (first: {}); prune changed \
             nothing, since the index may be incomplete. Run `snapvault repair` to see whether the \
             packs hold them; a snapshot whose data is lost (one `repair` kept as the original of \
             a `repaired` copy) is removed by `snapvault repair --apply --forget-damaged`",
            first_missing.unwrap_or_default()
        )));
    }

    // A used blob stored more than once: keep one copy that verifies, preferring the pack
    // that is otherwise most used (so the other copies' packs can go).
    obs.step("classifying packs");
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
    let is_used = |id: &BlobId, loc: &BlobLocation| -> bool {
        match chosen.get(id) {
            Some(&(p, o)) => p == loc.pack && o == loc.offset,
            None => used.contains(id),
        }
    };

    // Classify.
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
        if is_used(id, loc) {
            p.used_blobs += 1;
            p.used_bytes += loc.length as u64;
        } else {
            p.unused_blobs += 1;
            p.unused_bytes += loc.length as u64;
            if dup || chosen.contains_key(id) {
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
                    return Err(RepoError::Invalid(format!(
                        "pack {} holds data in use but is missing; prune changed nothing (run `snapvault check`)",
                        p.id
                    )));
                }
                Some(n) if n != p.size => {
                    return Err(RepoError::Invalid(format!(
                        "pack {} has {n} bytes but the index says {}; prune changed nothing (run `snapvault check`)",
                        p.id, p.size
                    )));
                }
                Some(_) => {}
            }
        }
        if p.used_blobs == 0 {
            p.action = Action::Remove;
        }
    }

    // Choose packs to repack.
    let max_unused = match opts.max_unused {
        MaxUnused::Unlimited => u64::MAX,
        MaxUnused::Bytes(b) => b,
        MaxUnused::Percent(pc) if pc >= 100.0 => u64::MAX,
        // unused / (used + unused) ≤ pc%  ⇔  unused ≤ used · pc / (100 − pc)
        MaxUnused::Percent(pc) => (st.used_bytes as f64 * pc / (100.0 - pc)) as u64,
    };
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

    let mut repack: HashMap<u32, Vec<PackEntry>> = HashMap::new();
    for (id, loc) in index
        .blobs()
        .chain(index.duplicates().iter().map(|(a, b)| (a, b)))
    {
        if packs[loc.pack as usize].action == Action::Repack && is_used(id, loc) {
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
    drop(used);
    drop(visited);
    let mut repack: Vec<(u32, Vec<PackEntry>)> = repack.into_iter().collect();
    repack.sort_by_key(|(p, _)| *p);
    for (_, v) in &mut repack {
        v.sort_by_key(|e| e.offset);
    }

    for p in &packs {
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

    // Packs no index names.
    let mut unindexed_remove = Vec::new();
    for (name, size) in &listed {
        let Ok(id) = name.parse::<PackId>() else {
            st.foreign_files += 1;
            continue;
        };
        if index.has_pack(&id) {
            continue;
        }
        // Only our own leftovers: a file someone else put there is never deleted.
        if !crate::ops::checker::is_own_pack(repo, name, *size) {
            st.foreign_files += 1;
            continue;
        }
        st.unindexed_packs += 1;
        st.unindexed_bytes += size;
        let old_enough = match be.age_secs(FileKind::Pack, name) {
            Ok(Some(age)) => age >= opts.unindexed_min_age,
            Ok(None) => opts.unindexed_min_age == 0,
            Err(_) => false,
        };
        if old_enough {
            st.unindexed_remove_packs += 1;
            st.unindexed_remove_bytes += size;
            unindexed_remove.push((name.clone(), *size));
        }
    }
    unindexed_remove.sort();
    st.estimated_freed = (st.remove_bytes + st.repack_bytes + st.unindexed_remove_bytes)
        .saturating_sub(st.repack_copy_bytes);
    Ok(PrunePlan {
        stats: st,
        packs,
        pos_of,
        repack,
        unindexed_remove,
        old_index: loaded.files,
        min_age: opts.unindexed_min_age,
    })
}

/// What [`execute`] did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    pub packs_written: u64,
    pub bytes_written: u64,
    pub blobs_repacked: u64,
    pub index_files_written: usize,
    pub index_files_removed: usize,
    pub packs_removed: u64,
    pub bytes_removed: u64,
    pub temp_files_removed: usize,
    /// Packs that were to be repacked but hold a damaged blob: left as they are.
    pub damaged_packs_kept: Vec<PackId>,
    /// bytes_removed − bytes_written.
    pub bytes_freed: i64,
}

/// Write a content-named file once; an existing file with the same name and content (an
/// earlier, interrupted run in an unencrypted repository writes identical bytes) is fine.
fn write_named(repo: &Repository, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
    let be = repo.backend();
    if be.exists(kind, name)? {
        let existing = be.read(kind, name)?;
        if Id::hash_of(&existing).to_hex() == name {
            return Ok(());
        }
        return Err(RepoError::corrupt(
            format!("{} {name}", kind.name()),
            "exists but its content does not match its name",
        ));
    }
    be.write(kind, name, bytes)
}

struct Writers<'a> {
    repo: &'a Repository,
    pack_size: usize,
    data: PackWriter,
    tree: PackWriter,
    written: Vec<IndexedPack>,
    report: &'a mut PruneReport,
}

impl Writers<'_> {
    /// Room for a full pack and its sealed header.
    fn capacity(&self) -> usize {
        self.pack_size + (64 << 10)
    }

    fn add(&mut self, blob: &EncodedBlob) -> Result<()> {
        let data_capacity = self.capacity();
        let full = {
            let w = if blob.typ == BlobType::Tree {
                &mut self.tree
            } else {
                &mut self.data
            };
            if !w.is_empty() && w.len() + blob.sealed.len() > self.pack_size {
                Some(std::mem::take(w))
            } else {
                None
            }
        };
        if let Some(w) = full {
            self.flush(w)?;
            // Data packs get their full size up front (no doubling past it), allocated once
            // the previous one is freed; tree packs are usually small and grow as needed.
            if blob.typ == BlobType::Data {
                self.data = PackWriter::new(data_capacity);
            }
        }
        let w = if blob.typ == BlobType::Tree {
            &mut self.tree
        } else {
            &mut self.data
        };
        w.add(blob);
        Ok(())
    }

    fn flush(&mut self, w: PackWriter) -> Result<()> {
        if w.is_empty() {
            return Ok(());
        }
        let (id, bytes, blobs) = w.finish(self.repo.crypto());
        write_named(self.repo, FileKind::Pack, &id.to_hex(), &bytes)?;
        self.report.packs_written += 1;
        self.report.bytes_written += bytes.len() as u64;
        self.written.push(IndexedPack {
            id,
            size: bytes.len() as u64,
            blobs,
        });
        Ok(())
    }
}

/// Carry out a plan (the caller holds the exclusive lock).
pub fn execute(
    repo: &Repository,
    mut plan: PrunePlan,
    obs: &dyn PruneObserver,
) -> Result<PruneReport> {
    let be = repo.backend();
    let crypto = repo.crypto();
    let mut report = PruneReport::default();

    // 1. New packs with the used blobs of the packs to repack.
    let mut new_packs = Vec::new();
    if !plan.repack.is_empty() {
        obs.step("repacking");
        let mut w = Writers {
            repo,
            pack_size: repo.config().pack_size as usize,
            data: PackWriter::default(),
            tree: PackWriter::default(),
            written: Vec::new(),
            report: &mut report,
        };
        w.data = PackWriter::new(w.capacity());
        for (pos, entries) in &plan.repack {
            let info = &plan.packs[*pos as usize];
            let name = info.id.to_hex();
            let bytes = be.read(FileKind::Pack, &name)?;
            let damaged = entries.iter().find(|e| {
                let end = e.offset as usize + e.length as usize;
                end > bytes.len()
                    || blob::decode(
                        crypto,
                        &e.id,
                        e.compressed,
                        e.raw_len,
                        &bytes[e.offset as usize..end],
                    )
                    .is_err()
            });
            if let Some(e) = damaged {
                obs.warning(&format!(
                    "pack {name} holds a damaged blob ({}); left as it is (run `snapvault check --read-data`)",
                    e.id.short()
                ));
                w.report.damaged_packs_kept.push(info.id);
                continue;
            }
            for e in entries {
                let start = e.offset as usize;
                w.add(&EncodedBlob {
                    id: e.id,
                    typ: e.typ,
                    raw_len: e.raw_len,
                    compressed: e.compressed,
                    sealed: bytes[start..start + e.length as usize].to_vec(),
                })?;
                w.report.blobs_repacked += 1;
            }
            obs.pack_done(bytes.len() as u64);
        }
        let (data, tree) = (std::mem::take(&mut w.data), std::mem::take(&mut w.tree));
        w.flush(data)?;
        w.flush(tree)?;
        new_packs = w.written;
    }
    let new_pack_names: HashSet<String> = new_packs.iter().map(|p| p.id.to_hex()).collect();
    for id in &report.damaged_packs_kept {
        if let Some(&pos) = plan.pos_of.get(id) {
            plan.packs[pos as usize].action = Action::Keep;
        }
    }

    // 2. New index files: every kept pack (all its entries, as in its header) and every
    //    new pack. The last file lists the old index files it supersedes.
    let mut written_index: HashSet<IndexId> = HashSet::new();
    if plan.rewrites_index() {
        obs.step("writing the new index");
        let mut batch: Vec<IndexedPack> = Vec::new();
        let mut batch_blobs = 0usize;
        let mut emitted: IdMap<PackId, ()> = IdMap::default();
        let mut save = |packs: Vec<IndexedPack>, supersedes: Vec<IndexId>| -> Result<()> {
            let f = IndexFile { supersedes, packs };
            let bytes = f.seal(crypto);
            let id = IndexId(Id::hash_of(&bytes));
            write_named(repo, FileKind::Index, &id.to_hex(), &bytes)?;
            written_index.insert(id);
            Ok(())
        };
        for old in &plan.old_index {
            let name = old.to_hex();
            let bytes = be.read(FileKind::Index, &name)?;
            let file = IndexFile::open(crypto, &bytes, &format!("index {name}"))?;
            for p in file.packs {
                let keep = plan
                    .pos_of
                    .get(&p.id)
                    .is_some_and(|&pos| plan.packs[pos as usize].action == Action::Keep);
                if !keep || emitted.insert(p.id, ()).is_some() {
                    continue;
                }
                batch_blobs += p.blobs.len();
                batch.push(p);
                if batch_blobs >= MAX_INDEX_BLOBS {
                    save(std::mem::take(&mut batch), Vec::new())?;
                    batch_blobs = 0;
                }
            }
        }
        let kept = plan
            .packs
            .iter()
            .filter(|p| p.action == Action::Keep)
            .count();
        if emitted.len() != kept {
            return Err(RepoError::Invalid(format!(
                "the index changed while prune ran ({} of {kept} kept packs found); nothing was deleted",
                emitted.len()
            )));
        }
        for p in new_packs {
            batch_blobs += p.blobs.len();
            batch.push(p);
            if batch_blobs >= MAX_INDEX_BLOBS {
                save(std::mem::take(&mut batch), Vec::new())?;
                batch_blobs = 0;
            }
        }
        save(batch, plan.old_index.clone())?;
        report.index_files_written = written_index.len();

        // 3. Old index files.
        obs.step("removing old index files");
        for old in &plan.old_index {
            if !written_index.contains(old) {
                be.remove(FileKind::Index, &old.to_hex())?;
                report.index_files_removed += 1;
            }
        }

        // 4. Removed and repacked packs.
        obs.step("removing unused packs");
        for p in plan.packs.iter().filter(|p| p.action != Action::Keep) {
            let name = p.id.to_hex();
            // Rewritten with the same bytes by this run (unencrypted repository): keep it.
            if new_pack_names.contains(&name) {
                continue;
            }
            if be.exists(FileKind::Pack, &name)? {
                be.remove(FileKind::Pack, &name)?;
                report.packs_removed += 1;
                report.bytes_removed += p.size;
            }
        }
    }

    // 5. Old packs no index names, and leftovers of interrupted writes.
    if !plan.unindexed_remove.is_empty() {
        obs.step("removing packs no index names");
    }
    for (name, size) in &plan.unindexed_remove {
        // An unencrypted repository's repack can rewrite the very pack an interrupted run
        // left behind (same bytes, same name): it is indexed now.
        if new_pack_names.contains(name) {
            continue;
        }
        be.remove(FileKind::Pack, name)?;
        report.packs_removed += 1;
        report.bytes_removed += size;
    }
    report.temp_files_removed = be.remove_leftover_temp_files(plan.min_age)?;
    report.bytes_freed = report.bytes_removed as i64 - report.bytes_written as i64;
    Ok(report)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use super::*;
    use crate::ops::observe::NoHooks;
    use crate::ops::test_support::*;
    use crate::storage::faulty::{Effect, FaultyBackend, Op};
    use crate::storage::{Backend, LocalBackend};

    pub(crate) struct Fixture {
        pub dir: tempfile::TempDir,
        pub repo: PathBuf,
        /// The snapshots that remain, with their content.
        pub kept: Vec<(SnapshotId, BTreeMap<String, Vec<u8>>)>,
    }

    /// Four snapshots of a changing photo folder; the first two are forgotten. The repository
    /// also holds a blob stored twice and a pack no index names.
    pub(crate) fn fixture(encrypted: bool) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let src = dir.path().join("lib");
        std::fs::create_dir_all(&src).unwrap();
        create_small_repo(&root, encrypted);
        let repo = open(&root);
        for i in 0..40 {
            photo(&src, i);
        }
        std::fs::write(src.join("notes.txt"), b"first").unwrap();
        let s1 = snapshot(&repo, &src, &["a"]);
        for i in 0..10 {
            unphoto(&src, i);
        }
        for i in 40..50 {
            photo(&src, i);
        }
        let s2 = snapshot(&repo, &src, &[]);
        for i in 10..20 {
            unphoto(&src, i);
        }
        for i in 50..60 {
            photo(&src, i);
        }
        let s3 = snapshot(&repo, &src, &[]);
        for i in 60..65 {
            photo(&src, i);
        }
        std::fs::write(src.join("notes.txt"), b"second, longer").unwrap();
        let s4 = snapshot(&repo, &src, &["b"]);
        for s in [&s1, &s2] {
            repo.backend()
                .remove(FileKind::Snapshot, &s.0.to_hex())
                .unwrap();
        }
        // A used blob stored a second time (as two concurrent snapshots would).
        let index = repo.load_index().unwrap().index;
        let snap = repo.load_snapshot(&s4.0).unwrap();
        let root_tree = repo.load_tree(&index, &snap.tree).unwrap();
        let lib = repo
            .load_tree(&index, &root_tree.nodes[0].subtree.unwrap())
            .unwrap();
        let blob_id = lib.nodes.last().unwrap().content[0];
        let plain = repo.read_blob(&index, &blob_id).unwrap();
        let mut w = PackWriter::default();
        w.add(&blob::encode(
            repo.crypto(),
            blob_id,
            BlobType::Data,
            &plain,
            blob::Compression::Never,
        ));
        let (pid, bytes, entries) = w.finish(repo.crypto());
        repo.backend()
            .write(FileKind::Pack, &pid.to_hex(), &bytes)
            .unwrap();
        repo.save_index(&IndexFile {
            supersedes: vec![],
            packs: vec![IndexedPack {
                id: pid,
                size: bytes.len() as u64,
                blobs: entries,
            }],
        })
        .unwrap();
        // A pack no index names (an interrupted snapshot's).
        let junk = noise(999, 5000);
        let mut w = PackWriter::default();
        w.add(&blob::encode(
            repo.crypto(),
            repo.crypto().blob_id(&junk),
            BlobType::Data,
            &junk,
            blob::Compression::Never,
        ));
        let (pid, bytes, _) = w.finish(repo.crypto());
        repo.backend()
            .write(FileKind::Pack, &pid.to_hex(), &bytes)
            .unwrap();
        Fixture {
            repo: root,
            kept: vec![s3, s4],
            dir,
        }
    }

    pub(crate) fn quick() -> PruneOptions {
        PruneOptions {
            max_unused: MaxUnused::Percent(5.0),
            max_repack: None,
            unindexed_min_age: 0,
        }
    }

    pub(crate) fn prune(
        repo: &Repository,
        opts: &PruneOptions,
    ) -> Result<(PruneStats, PruneReport)> {
        let _lock = repo.lock(true, "prune")?;
        let p = plan(repo, opts, &HashSet::new(), &NoHooks)?;
        let stats = p.stats.clone();
        let r = execute(repo, p, &NoHooks)?;
        Ok((stats, r))
    }

    fn pack_bytes(root: &Path) -> u64 {
        LocalBackend::new(root)
            .list(FileKind::Pack)
            .unwrap()
            .iter()
            .map(|f| f.size)
            .sum()
    }

    #[test]
    fn prune_frees_space_and_keeps_everything_needed() {
        let fx = fixture(true);
        let before = pack_bytes(&fx.repo);
        let repo = open(&fx.repo);
        let (st, r) = prune(&repo, &quick()).unwrap();
        assert_eq!(st.snapshots, 2);
        assert!(st.remove_packs + st.repack_packs > 0, "{st:?}");
        assert_eq!(st.duplicate_blobs, 1, "{st:?}");
        assert_eq!(st.unindexed_packs, 1);
        assert_eq!(st.unindexed_remove_packs, 1);
        assert!(st.unused_after_bytes <= st.max_unused_bytes, "{st:?}");
        assert!(r.damaged_packs_kept.is_empty());
        assert_eq!(r.index_files_removed, st.index_files);
        let after = pack_bytes(&fx.repo);
        assert_eq!(before as i64 - after as i64, r.bytes_freed);
        // Photos 0..20 (≈ 1.9 MB of the ≈ 6 MB) are gone: the space shrank at least by that,
        // less the 5% allowance.
        let removed: u64 = (0..20).map(|i| 30_000 + (i as u64 * 7919) % 120_000).sum();
        assert!(
            before - after + st.max_unused_bytes >= removed,
            "freed {} of {removed}",
            before - after
        );
        verify(&fx.repo, &fx.kept, "after prune");
        // A second prune has nothing to do.
        let (st2, r2) = prune(&open(&fx.repo), &quick()).unwrap();
        assert_eq!(
            (st2.remove_packs, st2.repack_packs, st2.unindexed_packs),
            (0, 0, 0),
            "{st2:?}"
        );
        assert_eq!(st2.duplicate_blobs, 0);
        assert_eq!(r2.bytes_freed, 0);
        assert_eq!(st2.unused_bytes, st.unused_after_bytes);
    }

    #[test]
    fn max_unused_and_max_repack_bound_the_work() {
        let fx = fixture(false);
        let repo = open(&fx.repo);
        let none = HashSet::new();
        let unlimited = PruneOptions {
            max_unused: MaxUnused::Unlimited,
            ..quick()
        };
        let p = plan(&repo, &unlimited, &none, &NoHooks).unwrap();
        // Only tree packs are repacked when unused space is unlimited.
        for (id, action, _, _) in p.pack_actions() {
            if action == Action::Repack {
                let pos = p.pos_of[&id] as usize;
                assert!(p.packs[pos].has_tree);
            }
        }
        let all = plan(
            &repo,
            &PruneOptions {
                max_unused: MaxUnused::Bytes(0),
                ..quick()
            },
            &none,
            &NoHooks,
        )
        .unwrap();
        assert_eq!(all.stats.unused_after_bytes, 0, "{:?}", all.stats);
        let capped = plan(
            &repo,
            &PruneOptions {
                max_unused: MaxUnused::Bytes(0),
                max_repack: Some(1),
                ..quick()
            },
            &none,
            &NoHooks,
        )
        .unwrap();
        assert_eq!(capped.stats.repack_packs, 0);
        assert!(capped.stats.unused_after_bytes > 0);
        // Ignoring the kept snapshots (as forget --prune --dry-run does) frees everything.
        let ignore: HashSet<SnapshotId> = fx.kept.iter().map(|(id, _)| *id).collect();
        let gone = plan(&repo, &quick(), &ignore, &NoHooks).unwrap();
        assert_eq!(gone.stats.used_blobs, 0);
        assert_eq!(gone.stats.keep_packs, 0);
        // Plans change nothing.
        verify(&fx.repo, &fx.kept, "after planning");
    }

    #[test]
    fn refuses_when_a_snapshot_is_unreadable_or_data_missing() {
        let fx = fixture(true);
        let be = LocalBackend::new(&fx.repo);
        be.write(FileKind::Snapshot, &"ab".repeat(32), b"garbage")
            .unwrap();
        let repo = open(&fx.repo);
        let e = prune(&repo, &quick()).unwrap_err().to_string();
        assert!(
            e.contains("cannot be read") && e.contains("changed nothing"),
            "{e}"
        );
        be.remove(FileKind::Snapshot, &"ab".repeat(32)).unwrap();
        // An index file gone: used blobs are missing from the index.
        let idx = be.list(FileKind::Index).unwrap();
        let biggest = idx.iter().max_by_key(|f| f.size).unwrap();
        let saved = be.read(FileKind::Index, &biggest.name).unwrap();
        be.remove(FileKind::Index, &biggest.name).unwrap();
        let before = be.list(FileKind::Pack).unwrap();
        let e = prune(&repo, &quick()).unwrap_err().to_string();
        assert!(
            e.contains("not in the index") || e.contains("cannot be read"),
            "{e}"
        );
        assert_eq!(be.list(FileKind::Pack).unwrap(), before);
        be.write(FileKind::Index, &biggest.name, &saved).unwrap();
        verify(&fx.repo, &fx.kept, "after refusals");
    }

    #[test]
    fn a_damaged_copy_never_wins_over_a_good_duplicate() {
        let fx = fixture(true);
        let repo = open(&fx.repo);
        let index = repo.load_index().unwrap().index;
        let (dup_id, dup_loc) = index.duplicates()[0];
        let primary = *index.get(&dup_id).unwrap();
        // Damage the primary copy in place (packs are 0600; tests may write them).
        let pack = index.pack_of(&primary).to_hex();
        let path = fx.repo.join("data").join(&pack[..2]).join(&pack);
        let mut b = std::fs::read(&path).unwrap();
        b[primary.offset as usize + 30] ^= 0x55;
        std::fs::write(&path, &b).unwrap();
        let _ = dup_loc;
        let p = plan(
            &repo,
            &PruneOptions {
                max_unused: MaxUnused::Bytes(0),
                ..quick()
            },
            &HashSet::new(),
            &NoHooks,
        )
        .unwrap();
        let damaged_pack = index.pack_of(&primary);
        let r = execute(&repo, p, &NoHooks).unwrap();
        // The damaged pack was either kept as is (had to be repacked) or removed; the good
        // copy survives and everything restores.
        let _ = (r, damaged_pack);
        let repo = open(&fx.repo);
        let index = repo.load_index().unwrap().index;
        let loc = index.get(&dup_id).unwrap();
        assert!(
            verify_copy(&repo, &index, &dup_id, loc)
                || index
                    .duplicates()
                    .iter()
                    .any(|(i, l)| *i == dup_id && verify_copy(&repo, &index, i, l))
        );
    }

    /// Run prune with the fault at every watched operation (stepping by `step`) and check
    /// the repository after each crash, then that a re-run completes.
    fn crash_everywhere(encrypted: bool, ops: &[Op], effects: &[Effect], step: u64) {
        let fx = fixture(encrypted);
        let clean = fx.dir.path().join("clean");
        copy_dir(&fx.repo, &clean);
        let counter =
            Arc::new(FaultyBackend::new(Arc::new(LocalBackend::new(&clean))).watching(ops));
        prune(&open_with(counter.clone()), &quick()).unwrap();
        let total = counter.count();
        assert!(total >= 2, "{total} operations");
        let mut runs = 0;
        for &effect in effects {
            let mut n = 1;
            while n <= total {
                let root = fx.dir.path().join(format!("crash-{effect:?}-{n}"));
                copy_dir(&fx.repo, &root);
                let f = Arc::new(
                    FaultyBackend::new(Arc::new(LocalBackend::new(&root)))
                        .watching(ops)
                        .fail_at(n, effect),
                );
                let what = format!("{ops:?} #{n}/{total} {effect:?}");
                let res = Repository::open(f.clone(), || Ok(PASSWORD.to_vec()))
                    .and_then(|repo| prune(&repo, &quick()));
                assert!(
                    res.is_err() && f.fired(),
                    "{what}: prune did not fail: {res:?}"
                );
                verify(&root, &fx.kept, &format!("{what}, after the crash"));
                let (_, _) =
                    prune(&open(&root), &quick()).unwrap_or_else(|e| panic!("{what}: re-run: {e}"));
                verify(&root, &fx.kept, &format!("{what}, after the re-run"));
                let st = plan(&open(&root), &quick(), &HashSet::new(), &NoHooks)
                    .unwrap()
                    .stats;
                assert!(
                    st.remove_packs == 0
                        && st.unindexed_packs == 0
                        && st.unused_bytes <= st.max_unused_bytes,
                    "{what}: the re-run left work: {st:?}"
                );
                std::fs::remove_dir_all(&root).unwrap();
                runs += 1;
                n += step;
            }
        }
        assert!(runs > 0);
    }

    #[test]
    fn crash_at_every_write_and_remove() {
        crash_everywhere(
            true,
            &[Op::Write, Op::Remove],
            &[Effect::FailBefore, Effect::FailAfter],
            1,
        );
    }

    #[test]
    fn crash_at_every_write_unencrypted() {
        // Unencrypted packs are deterministic: the re-run writes identical files again.
        crash_everywhere(false, &[Op::Write, Op::Remove], &[Effect::FailAfter], 1);
    }

    #[test]
    fn crash_at_reads_and_lists() {
        crash_everywhere(true, &[Op::Read, Op::List], &[Effect::FailBefore], 7);
    }

    #[test]
    fn parsers() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("2K"), Ok(2048));
        assert_eq!(parse_size("1.5MiB"), Ok(3 << 19));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert!(parse_size("1x").is_err() && parse_size("").is_err() && parse_size("-1M").is_err());
        assert_eq!("5%".parse::<MaxUnused>(), Ok(MaxUnused::Percent(5.0)));
        assert_eq!("unlimited".parse::<MaxUnused>(), Ok(MaxUnused::Unlimited));
        assert_eq!("200M".parse::<MaxUnused>(), Ok(MaxUnused::Bytes(200 << 20)));
        assert!("101%".parse::<MaxUnused>().is_err());
        assert_eq!(parse_max_repack("unlimited"), Ok(None));
        assert_eq!(parse_max_repack("1G"), Ok(Some(1 << 30)));
        assert_eq!(parse_age("1h30m"), Ok(5400));
        assert_eq!(parse_age("0"), Ok(0));
        assert_eq!(parse_age("2d"), Ok(172_800));
        assert!(parse_age("1").is_err() && parse_age("h").is_err() && parse_age("").is_err());
    }
}
