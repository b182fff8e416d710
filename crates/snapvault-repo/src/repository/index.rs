//! The in-memory index: every blob's location, merged from the index files
//! (`format::index_file`, re-exported here).
//!
//! In memory a blob costs one hash-map slot of 32 (id) + 20 (location) bytes plus the
//! table's control byte and load-factor slack (the table is between 44 % and 88 % full):
//! 60–120 bytes per chunk, so a 2 TB photo library (≈2 million 1 MiB chunks) indexes in
//! 120–240 MiB. The table is sized once before merging, so loading does not peak higher.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::error::Result;
use crate::format::blob::BlobType;
use crate::format::id::{BlobId, IndexId, PackId};
pub use crate::format::index_file::{IndexFile, IndexedPack};
use crate::format::pack::PackEntry;
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
    blobs: IdMap<BlobId, BlobLocation>,
    /// Blobs stored more than once (harmless; `check` reports them, prune drops them).
    duplicates: Vec<(BlobId, BlobLocation)>,
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    /// An index with room for `blobs` blobs (no rehashing while they are added).
    pub fn with_capacity(blobs: usize) -> Self {
        let mut i = Self::default();
        i.blobs.reserve(blobs);
        i
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
        self.blobs.reserve(blobs.len());
        for e in blobs {
            let loc = BlobLocation {
                pack: pos,
                offset: e.offset,
                length: e.length,
                raw_len: e.raw_len,
                flags: (e.compressed as u8) | (((e.typ == BlobType::Tree) as u8) << 1),
            };
            match self.blobs.get(&e.id) {
                None => {
                    self.blobs.insert(e.id, loc);
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
        self.blobs.get(id)
    }

    pub fn contains(&self, id: &BlobId) -> bool {
        self.blobs.contains_key(id)
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
        self.blobs.len()
    }

    pub fn blobs(&self) -> impl Iterator<Item = (&BlobId, &BlobLocation)> {
        self.blobs.iter()
    }

    pub fn duplicates(&self) -> &[(BlobId, BlobLocation)] {
        &self.duplicates
    }

    /// Every stored copy of a blob: the primary location first, then duplicates.
    pub fn locations(&self, id: &BlobId) -> Vec<BlobLocation> {
        let mut v: Vec<BlobLocation> = self.blobs.get(id).copied().into_iter().collect();
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
        let mut v: Vec<Vec<(BlobId, BlobLocation)>> = vec![Vec::new(); self.packs.len()];
        for (id, loc) in self
            .blobs
            .iter()
            .chain(self.duplicates.iter().map(|(a, b)| (a, b)))
        {
            v[loc.pack as usize].push((*id, *loc));
        }
        for p in &mut v {
            p.sort_by_key(|(_, l)| l.offset);
        }
        v
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
    }
}
