//! The in-memory index: every blob's location, merged from the index files
//! (`format::index_file`, re-exported here).
//!
//! In memory a blob costs its entry, 32 (id) + 20 (location) = 52 bytes in one vector in
//! the order added, plus a 4-byte position in a hash table keyed by the id's first 8 bytes
//! (one control byte per slot, the table between 44 % and 88 % full): 58–64 bytes per blob,
//! 63 measured at 10 million blobs (`benches/prune.rs`). A 2 TB photo library (≈ 2 million
//! 1 MiB chunks) indexes in ≈ 120 MiB, 10 million blobs in ≈ 600 MiB. The entries were the
//! hash map's values before: 53 bytes a slot at that load factor, 60–120 bytes per blob, and a table that
//! doubled (old and new at once) while loading.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use hashbrown::HashTable;

use crate::error::Result;
use crate::format::blob::BlobType;
use crate::format::id::{BlobId, IndexId, PackId};
pub use crate::format::index_file::{IndexFile, IndexSink, IndexedPack};
use crate::format::pack::PackEntry;
use crate::repository::id_set::IdSet;
use crate::storage::{Backend, FileInfo, FileKind};

/// Ids are uniformly random already: hash by their first 8 bytes.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // BlobId hashes as one 32-byte write; anything else folds in.
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
        }
    }
}

pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Where a blob is, as held in memory (20 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: u32,
    pub offset: u32,
    pub length: u32,
    pub raw_len: u32,
    flags: u8,
}

impl BlobLocation {
    pub fn typ(&self) -> BlobType {
        if self.flags & 2 != 0 {
            BlobType::Tree
        } else {
            BlobType::Data
        }
    }
    pub fn compressed(&self) -> bool {
        self.flags & 1 != 0
    }
}

/// The merged index of a repository.
#[derive(Default)]
pub struct Index {
    packs: Vec<(PackId, u64)>,
    pack_pos: IdMap<PackId, u32>,
    /// Every blob once, in the order added (the first copy of a blob stored twice).
    entries: Vec<(BlobId, BlobLocation)>,
    /// Positions in `entries`, hashed by the id's first 8 bytes.
    slots: HashTable<u32>,
    /// Blobs stored more than once (harmless; `check` reports them, prune drops them).
    duplicates: Vec<(BlobId, BlobLocation)>,
    /// Data blobs known to be stored but not where (the index a snapshot loads,
    /// [`Bulk::keep_data_as_ids`]); empty in a whole index. Not in `entries`, so not
    /// counted by [`Index::blob_count`] nor listed by [`Index::blobs`].
    data_ids: IdSet,
    /// The whole index, loaded the first time a blob of `data_ids` must be read
    /// ([`Index::whole_for`]): rare (a tree stored as a data blob; a Photos database read
    /// back), and then read once, not once a blob.
    whole: OnceLock<Box<Index>>,
}

/// Ids are uniformly random: their first 8 bytes are a hash already.
fn slot_hash(id: &BlobId) -> u64 {
    let b = id.as_bytes();
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    /// An index with room for `blobs` blobs (no rehashing while they are added).
    pub fn with_capacity(blobs: usize) -> Self {
        let mut i = Self::default();
        i.reserve(blobs);
        i
    }

    fn reserve(&mut self, more: usize) {
        let entries = &self.entries;
        self.slots
            .reserve(more, |&p| slot_hash(&entries[p as usize].0));
        self.entries.reserve(more);
    }

    /// Where `id` is in `entries` (every indexed blob has one position, `0..blob_count()`).
    pub(crate) fn position(&self, id: &BlobId) -> Option<usize> {
        let entries = &self.entries;
        self.slots
            .find(slot_hash(id), |&p| entries[p as usize].0 == *id)
            .map(|&p| p as usize)
    }

    pub fn add_pack(&mut self, id: PackId, size: u64, blobs: &[PackEntry]) {
        let pos = match self.pack_pos.get(&id) {
            // Listed by two index files (prune's or repair's replacement written, the old
            // file not yet deleted): both come from the same pack header.
            Some(_) => return,
            None => {
                let p = self.packs.len() as u32;
                self.packs.push((id, size));
                self.pack_pos.insert(id, p);
                p
            }
        };
        self.reserve(blobs.len());
        for e in blobs {
            let loc = location(pos, e);
            match self.get(&e.id) {
                None => {
                    let at = u32::try_from(self.entries.len())
                        .expect("fewer than 4 billion blobs in one index");
                    self.entries.push((e.id, loc));
                    let entries = &self.entries;
                    self.slots.insert_unique(slot_hash(&e.id), at, |&p| {
                        slot_hash(&entries[p as usize].0)
                    });
                }
                Some(old) if old.pack == pos && old.offset == loc.offset => {}
                Some(_) => self.duplicates.push((e.id, loc)),
            }
        }
    }

    pub fn add_file(&mut self, f: &IndexFile) {
        for p in &f.packs {
            self.add_pack(p.id, p.size, &p.blobs);
        }
    }

    pub fn get(&self, id: &BlobId) -> Option<&BlobLocation> {
        self.position(id).map(|p| &self.entries[p].1)
    }

    /// Whether `id` is stored (located or not: [`Index::get`] may still be `None` for a
    /// data blob of an index that keeps data blobs as ids).
    pub fn contains(&self, id: &BlobId) -> bool {
        self.position(id).is_some() || self.data_ids.contains(id)
    }

    /// Whether every stored blob is located (false for the index a snapshot loads, which
    /// keeps data blobs as bare ids).
    pub fn locates_every_blob(&self) -> bool {
        self.data_ids.len() == 0
    }

    /// The index to read `id` through: this one when it locates `id` or does not know
    /// it, else the whole index, loaded by `load` once and kept beside this one.
    pub(crate) fn whole_for(
        &self,
        id: &BlobId,
        load: impl FnOnce() -> Result<Index>,
    ) -> Result<&Index> {
        if self.position(id).is_some() || !self.data_ids.contains(id) {
            return Ok(self);
        }
        if let Some(w) = self.whole.get() {
            return Ok(w);
        }
        let w = Box::new(load()?);
        Ok(self.whole.get_or_init(|| w))
    }

    pub fn pack(&self, pos: u32) -> (PackId, u64) {
        self.packs[pos as usize]
    }

    pub fn pack_of(&self, loc: &BlobLocation) -> PackId {
        self.packs[loc.pack as usize].0
    }

    pub fn packs(&self) -> &[(PackId, u64)] {
        &self.packs
    }

    pub fn has_pack(&self, id: &PackId) -> bool {
        self.pack_pos.contains_key(id)
    }

    pub fn blob_count(&self) -> usize {
        self.entries.len()
    }

    /// Every blob once, in the order of [`Index::position`].
    pub fn blobs(&self) -> impl Iterator<Item = (&BlobId, &BlobLocation)> {
        self.entries.iter().map(|(id, loc)| (id, loc))
    }

    pub fn duplicates(&self) -> &[(BlobId, BlobLocation)] {
        &self.duplicates
    }

    /// Every stored copy of a blob: the primary location first, then duplicates.
    pub fn locations(&self, id: &BlobId) -> Vec<BlobLocation> {
        let mut v: Vec<BlobLocation> = self.get(id).copied().into_iter().collect();
        v.extend(
            self.duplicates
                .iter()
                .filter(|(d, _)| d == id)
                .map(|(_, l)| *l),
        );
        v
    }

    /// Every index entry of one pack, in offset order (for check and repair).
    pub(crate) fn entries_of_pack(&self) -> Vec<Vec<(BlobId, BlobLocation)>> {
        let by = self.by_pack();
        (0..self.packs.len()).map(|p| by.of(p)).collect()
    }

    /// [`Index::entries_of_pack`] without a copy of every entry: 4 bytes a blob (its
    /// position) instead of 52, each pack's entries made when asked for. At a million
    /// blobs the copy was 52 MB beside the index, held through all of `check`.
    pub(crate) fn by_pack(&self) -> ByPack<'_> {
        let all = self.entries.len() + self.duplicates.len();
        let loc = |at: usize| match self.entries.get(at) {
            Some((_, l)) => l,
            None => &self.duplicates[at - self.entries.len()].1,
        };
        // Counting sort by pack: the entries, then the duplicates, as they are held.
        let mut starts = vec![0u32; self.packs.len() + 1];
        for at in 0..all {
            starts[loc(at).pack as usize + 1] += 1;
        }
        for p in 0..self.packs.len() {
            starts[p + 1] += starts[p];
        }
        let mut next = starts.clone();
        let mut order = vec![0u32; all];
        for at in 0..all {
            let p = loc(at).pack as usize;
            order[next[p] as usize] = at as u32;
            next[p] += 1;
        }
        drop(next);
        for p in 0..self.packs.len() {
            order[starts[p] as usize..starts[p + 1] as usize]
                .sort_by_key(|&at| loc(at as usize).offset);
        }
        ByPack {
            index: self,
            order,
            starts,
        }
    }
}

/// Every index entry grouped by pack, in offset order ([`Index::by_pack`]).
pub(crate) struct ByPack<'a> {
    index: &'a Index,
    /// Positions: below `entries.len()` an entry, else a duplicate.
    order: Vec<u32>,
    /// Where each pack's positions start in `order` (one more than the packs).
    starts: Vec<u32>,
}

impl ByPack<'_> {
    /// The entries of the pack at position `pack`, in offset order.
    pub(crate) fn of(&self, pack: usize) -> Vec<(BlobId, BlobLocation)> {
        self.iter(pack).collect()
    }

    /// [`ByPack::of`] without collecting them.
    pub(crate) fn iter(
        &self,
        pack: usize,
    ) -> impl ExactSizeIterator<Item = (BlobId, BlobLocation)> + '_ {
        let (from, to) = match (self.starts.get(pack), self.starts.get(pack + 1)) {
            (Some(&from), Some(&to)) => (from as usize, to as usize),
            _ => (0, 0),
        };
        let (entries, dups) = (&self.index.entries, &self.index.duplicates);
        self.order[from..to]
            .iter()
            .map(move |&at| match entries.get(at as usize) {
                Some(e) => *e,
                None => dups[at as usize - entries.len()],
            })
    }
}

/// Builds an [`Index`] from index files (decoded straight into it, [`IndexSink`]) with no
/// lookup table while it grows: the
/// table is made once, at its final size, by [`Bulk::finish`]. Growing it while merging
/// held the old and the new table at once; sizing it first needed every file decoded
/// before the first was merged (1.3× the index's steady size at 10 million blobs).
/// The result is the same as [`Index::add_file`] in the same order: the first copy of a
/// blob is its entry, later copies in other places are duplicates.
#[derive(Default)]
pub(crate) struct Bulk {
    idx: Index,
    /// The position of the pack whose entries come next; `None` while they are skipped.
    at: Option<u32>,
    /// Keep only tree blobs ([`Repository::load_tree_index`](crate::Repository::load_tree_index)).
    trees_only: bool,
    /// Keep data blobs as bare ids in `data` ([`Bulk::keep_data_as_ids`]).
    data_as_ids: bool,
    data: Vec<BlobId>,
}

impl Bulk {
    /// Room for the blobs of index files of `bytes` bytes in all (an upper bound: each
    /// entry takes 46 bytes in a file), so the entries never double while loading: at a
    /// million blobs a doubling held 52 MB of old entries beside 104 MB of new. Without
    /// the room (sizes from a listing are not to be trusted) they grow as usual.
    pub fn reserve_for_files(&mut self, bytes: u64) {
        let blobs = bytes / crate::format::index_file::BYTES_PER_ENTRY as u64;
        if let Ok(blobs) = usize::try_from(blobs) {
            let _ = match self.data_as_ids {
                // Most blobs are data; the few trees grow as they come.
                true => self.data.try_reserve_exact(blobs),
                false => self.idx.entries.try_reserve_exact(blobs),
            };
        }
    }

    /// Keep data blobs as bare ids (32 bytes a blob instead of an entry's 52 and a table
    /// slot), trees as whole entries: the index a snapshot needs
    /// ([`Repository::load_index_for_snapshot`](crate::Repository::load_index_for_snapshot)).
    /// Call before [`Bulk::reserve_for_files`].
    pub fn keep_data_as_ids(&mut self) {
        self.data_as_ids = true;
    }

    /// Leave data blobs out: their entries are decoded (and checked) but not kept.
    pub fn keep_trees_only(&mut self) {
        self.trees_only = true;
    }

    /// A whole decoded file, as [`load_index`](crate::Repository::load_index) streams one.
    #[cfg(test)]
    pub fn add_file(&mut self, f: &IndexFile) {
        for p in &f.packs {
            self.pack(p.id, p.size, p.blobs.len());
            for e in &p.blobs {
                self.entry(*e);
            }
        }
    }

    /// The lookup table, sized once; later copies of a blob move to the duplicates (or
    /// go, when they name the same place) and the entries close up behind them.
    pub fn finish(self) -> Index {
        let mut idx = self.idx;
        idx.data_ids = IdSet::from_vec(self.data);
        let mut slots = HashTable::with_capacity(idx.entries.len());
        let mut kept = 0;
        for i in 0..idx.entries.len() {
            let (id, loc) = idx.entries[i];
            let entries = &idx.entries;
            let found = slots
                .find(slot_hash(&id), |&p: &u32| entries[p as usize].0 == id)
                .map(|&p| entries[p as usize].1);
            match found {
                None => {
                    let at = u32::try_from(kept).expect("fewer than 4 billion blobs in one index");
                    idx.entries[kept] = (id, loc);
                    let entries = &idx.entries;
                    slots.insert_unique(slot_hash(&id), at, |&p| slot_hash(&entries[p as usize].0));
                    kept += 1;
                }
                Some(old) if old.pack == loc.pack && old.offset == loc.offset => {}
                Some(_) => idx.duplicates.push((id, loc)),
            }
        }
        idx.entries.truncate(kept);
        // Not for a few spare entries (the room reserved from file sizes is a little more
        // than the blobs): a shrink may copy them all.
        if idx.entries.capacity() > kept + kept / 16 {
            idx.entries.shrink_to_fit();
        }
        idx.slots = slots;
        idx
    }
}

impl crate::format::index_file::IndexSink for Bulk {
    fn pack(&mut self, id: PackId, size: u64, _blobs: usize) {
        let idx = &mut self.idx;
        // Listed by two index files: both come from the same pack header.
        if idx.pack_pos.contains_key(&id) {
            self.at = None;
            return;
        }
        let pos = idx.packs.len() as u32;
        idx.packs.push((id, size));
        idx.pack_pos.insert(id, pos);
        self.at = Some(pos);
    }

    fn entry(&mut self, e: PackEntry) {
        if let Some(pos) = self.at {
            match e.typ {
                BlobType::Data if self.trees_only => {}
                BlobType::Data if self.data_as_ids => self.data.push(e.id),
                _ => self.idx.entries.push((e.id, location(pos, &e))),
            }
        }
    }
}

/// How the index holds the place of `e` in the pack at position `pack`.
fn location(pack: u32, e: &PackEntry) -> BlobLocation {
    BlobLocation {
        pack,
        offset: e.offset,
        length: e.length,
        raw_len: e.raw_len,
        flags: (e.compressed as u8) | (((e.typ == BlobType::Tree) as u8) << 1),
    }
}

/// The files in `index/` named as index files are (an id), and the others: a stray
/// `notes.txt`, a `.DS_Store` on a remote, a half-copied `….part`. Those are not index
/// files and are left out (`check` names them), so a stray file stops no command; a file
/// with an index file's name is read, and is damage if it does not open.
pub fn list_files(be: &dyn Backend) -> Result<(Vec<FileInfo>, Vec<FileInfo>)> {
    Ok(be
        .list(FileKind::Index)?
        .into_iter()
        .partition(|f| f.name.parse::<IndexId>().is_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::id::Id;
    use crate::format::index_file::tests::entry;

    #[test]
    fn merged_lookup_and_duplicates() {
        let mut idx = Index::new();
        let p1 = PackId(Id::random());
        let p2 = PackId(Id::random());
        idx.add_pack(p1, 1000, &[entry(1), entry(2)]);
        idx.add_pack(p2, 1000, &[entry(2), entry(3)]);
        assert_eq!(idx.blob_count(), 3);
        assert_eq!(idx.duplicates().len(), 1);
        let loc = idx.get(&entry(3).id).unwrap();
        assert_eq!(idx.pack_of(loc), p2);
        assert_eq!(loc.typ(), BlobType::Tree);
        assert!(!loc.compressed());
        assert_eq!(idx.entries_of_pack()[1].len(), 2);
        // The same pack listed by a second index file adds nothing.
        idx.add_pack(p2, 1000, &[entry(2), entry(3)]);
        assert_eq!((idx.blob_count(), idx.duplicates().len()), (3, 1));
        // Positions are 0..blob_count, in the order added, and blobs() follows them.
        for (i, (id, _)) in idx.blobs().enumerate() {
            assert_eq!(idx.position(id), Some(i));
        }
        assert_eq!(idx.position(&entry(4).id), None);
    }

    /// Built in bulk from whole files, the index is the one built pack by pack: the same
    /// positions, locations, duplicates and packs (a pack listed twice adds nothing).
    #[test]
    fn bulk_loading_matches_adding_pack_by_pack() {
        let pack = |seed: u32, ids: &[u32]| IndexedPack {
            id: PackId(Id::hash_of(&seed.to_le_bytes())),
            size: 1 << 20,
            blobs: ids
                .iter()
                .enumerate()
                .map(|(k, &i)| {
                    let mut e = entry(1);
                    e.id = BlobId(Id::hash_of(&i.to_le_bytes()));
                    e.offset = k as u32 * 100;
                    e
                })
                .collect(),
        };
        let files = [
            IndexFile {
                supersedes: vec![],
                packs: vec![pack(1, &[1, 2, 3]), pack(2, &[4, 2, 5])],
            },
            IndexFile {
                supersedes: vec![],
                packs: vec![pack(2, &[4, 2, 5]), pack(3, &[6, 1, 7, 7])],
            },
        ];
        let mut one = Index::new();
        let mut bulk = Bulk::default();
        for f in &files {
            one.add_file(f);
            bulk.add_file(f);
        }
        let bulk = bulk.finish();
        assert_eq!(bulk.blob_count(), 7);
        assert_eq!(bulk.packs(), one.packs());
        let all = |i: &Index| i.blobs().map(|(a, b)| (*a, *b)).collect::<Vec<_>>();
        assert_eq!(all(&bulk), all(&one));
        assert_eq!(bulk.duplicates(), one.duplicates());
        assert_eq!(bulk.duplicates().len(), 3);
        for (i, (id, loc)) in one.blobs().enumerate() {
            assert_eq!(bulk.position(id), Some(i));
            assert_eq!(bulk.get(id), Some(loc));
        }
        assert!(!bulk.contains(&BlobId(Id::hash_of(&99u32.to_le_bytes()))));
    }

    #[test]
    fn many_blobs_are_found_after_the_table_grows() {
        let mut idx = Index::new();
        let mut ids = Vec::new();
        for p in 0..50u32 {
            let blobs: Vec<PackEntry> = (0..200u32)
                .map(|i| {
                    let mut e = entry(1);
                    e.id = BlobId(Id::hash_of(&(p * 1000 + i).to_le_bytes()));
                    e.offset = i * 100;
                    e
                })
                .collect();
            ids.extend(blobs.iter().map(|e| e.id));
            idx.add_pack(PackId(Id::random()), 20_000, &blobs);
        }
        assert_eq!(idx.blob_count(), 10_000);
        for (i, id) in ids.iter().enumerate() {
            let loc = idx.get(id).expect("indexed");
            assert_eq!(
                (loc.pack as usize, loc.offset),
                (i / 200, (i % 200) as u32 * 100)
            );
        }
        assert!(!idx.contains(&BlobId(Id::hash_of(b"not stored"))));
    }
}
