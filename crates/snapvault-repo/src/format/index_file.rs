//! Index files: which blobs each pack holds, so a blob is found without reading pack
//! headers. An index file (`index/<blake3 of file>`) is sealed binary:
//! ```text
//! "SVIX" ‖ version:u8 (=1) ‖ n_super:u32le ‖ superseded index id:[32]*n_super
//!        ‖ n_packs:u32le ‖ pack*n_packs
//! pack  = pack id:[32] ‖ pack size:u64le ‖ n_blobs:u32le ‖ entry*n_blobs
//! entry = type:u8 ‖ flags:u8 ‖ offset:u32le ‖ length:u32le ‖ raw_len:u32le ‖ blob id:[32]
//! ```
//! The in-memory index they are merged into is `repository::index`.

use crate::error::{RepoError, Result};
use crate::format::blob::BlobType;
use crate::format::crypto::Crypto;
use crate::format::id::{BlobId, Id, IndexId, PackId};
use crate::format::pack::{FLAG_COMPRESSED, PackEntry};

const MAGIC: &[u8; 4] = b"SVIX";
const VERSION: u8 = 1;
const PACK_FIXED: usize = 44;
const ENTRY_LEN: usize = 46;
/// Largest index file accepted.
pub(crate) const MAX_INDEX_FILE: usize = 256 << 20;
/// Most blobs a new index file lists (≈ 4.6 MB; one pack with more is listed alone), far
/// below [`MAX_INDEX_FILE`]: a command holds a whole index file while it opens it (the
/// seal covers all of it), so bounded files bound that (prune and the packer write them).
pub(crate) const MAX_INDEX_BLOBS: usize = 100_000;

/// The packs and blobs described by one index file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexFile {
    pub supersedes: Vec<IndexId>,
    pub packs: Vec<IndexedPack>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedPack {
    pub id: PackId,
    pub size: u64,
    pub blobs: Vec<PackEntry>,
}

impl IndexFile {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(self.supersedes.len() as u32).to_le_bytes());
        for s in &self.supersedes {
            out.extend_from_slice(&s.0.0);
        }
        out.extend_from_slice(&(self.packs.len() as u32).to_le_bytes());
        for p in &self.packs {
            out.extend_from_slice(p.id.as_bytes());
            out.extend_from_slice(&p.size.to_le_bytes());
            out.extend_from_slice(&(p.blobs.len() as u32).to_le_bytes());
            for e in &p.blobs {
                out.push(e.typ as u8);
                out.push(if e.compressed { FLAG_COMPRESSED } else { 0 });
                out.extend_from_slice(&e.offset.to_le_bytes());
                out.extend_from_slice(&e.length.to_le_bytes());
                out.extend_from_slice(&e.raw_len.to_le_bytes());
                out.extend_from_slice(e.id.as_bytes());
            }
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<IndexFile> {
        let mut whole = IndexFile::default();
        decode_into(b, &mut whole)?;
        Ok(whole)
    }

    pub fn seal(&self, crypto: &Crypto) -> Vec<u8> {
        crypto.seal(&self.encode())
    }

    pub fn open(crypto: &Crypto, sealed: &[u8], what: &str) -> Result<IndexFile> {
        if sealed.len() > MAX_INDEX_FILE {
            return Err(RepoError::corrupt(what, "index file too large"));
        }
        let plain = crypto.open(sealed, what)?;
        let mut whole = IndexFile::default();
        decode_named(&plain, what, &mut whole)?;
        Ok(whole)
    }
}

/// Receives an index file's contents while it is decoded, so a reader that merges them
/// (the in-memory index) never holds the file decoded whole beside it: at a million blobs
/// that copy was 48 MB. [`IndexFile`] is the receiver that keeps everything.
pub trait IndexSink {
    fn superseded(&mut self, _id: IndexId) {}
    /// A pack; its `blobs` entries follow.
    fn pack(&mut self, id: PackId, size: u64, blobs: usize);
    fn entry(&mut self, e: PackEntry);
}

impl IndexSink for IndexFile {
    fn superseded(&mut self, id: IndexId) {
        self.supersedes.push(id);
    }
    fn pack(&mut self, id: PackId, size: u64, blobs: usize) {
        self.packs.push(IndexedPack {
            id,
            size,
            blobs: Vec::with_capacity(blobs),
        });
    }
    fn entry(&mut self, e: PackEntry) {
        if let Some(p) = self.packs.last_mut() {
            p.blobs.push(e);
        }
    }
}

/// Decode an index file into `sink`, checking all of it as [`IndexFile::decode`] does. On
/// an error `sink` has seen part of the file: the caller drops what it built from it.
pub fn decode_into(b: &[u8], sink: &mut impl IndexSink) -> Result<()> {
    let mut r = Reader { b, at: 0 };
    if r.take(4)? != MAGIC {
        return Err(r.bad("bad magic"));
    }
    if r.take(1)?[0] != VERSION {
        return Err(r.bad("unknown version"));
    }
    let n_super = r.count(32)?;
    for _ in 0..n_super {
        sink.superseded(IndexId(r.id()?));
    }
    let n_packs = r.count(PACK_FIXED)?;
    for _ in 0..n_packs {
        let id = PackId(r.id()?);
        let size = r.u64()?;
        let n = r.count(ENTRY_LEN)?;
        sink.pack(id, size, n);
        for _ in 0..n {
            let e = r.take(ENTRY_LEN)?;
            let typ = BlobType::from_u8(e[0]).ok_or_else(|| r.bad("unknown blob type"))?;
            if e[1] & !FLAG_COMPRESSED != 0 {
                return Err(r.bad("unknown flags"));
            }
            let u = |at: usize| u32::from_le_bytes([e[at], e[at + 1], e[at + 2], e[at + 3]]);
            let entry = PackEntry {
                typ,
                compressed: e[1] & FLAG_COMPRESSED != 0,
                offset: u(2),
                length: u(6),
                raw_len: u(10),
                id: BlobId(Id::from_slice(&e[14..46]).ok_or_else(|| r.bad("id"))?),
            };
            if entry.offset as u64 + entry.length as u64 > size {
                return Err(r.bad("blob extends past the end of its pack"));
            }
            sink.entry(entry);
        }
    }
    if r.at != b.len() {
        return Err(r.bad("trailing bytes"));
    }
    Ok(())
}

/// The fewest bytes an index file holding `blobs` entries takes (for sizing memory from
/// file sizes: a file of `n` bytes holds fewer than `n / ENTRY_LEN` blobs).
pub(crate) const BYTES_PER_ENTRY: usize = ENTRY_LEN;

/// Open a sealed index file in place: the plaintext is `sealed[crypto.headroom()..][..n]`
/// for the `n` returned, ready for [`decode_named`]; the file is then held once, not as
/// sealed bytes, opened bytes and decoded entries at once.
pub(crate) fn open_in_place(crypto: &Crypto, sealed: &mut [u8], what: &str) -> Result<usize> {
    if sealed.len() > MAX_INDEX_FILE {
        return Err(RepoError::corrupt(what, "index file too large"));
    }
    Ok(crypto.open_in_place(sealed, what)?.len())
}

/// [`decode_into`] with a damaged file's error naming it (`what`).
pub(crate) fn decode_named(plain: &[u8], what: &str, sink: &mut impl IndexSink) -> Result<()> {
    decode_into(plain, sink).map_err(|e| match e {
        RepoError::Corrupt { reason, .. } => RepoError::corrupt(what, reason),
        other => other,
    })
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bad(&self, r: &str) -> RepoError {
        RepoError::corrupt("index", format!("{r} at byte {}", self.at))
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.b.len() - self.at < n {
            return Err(self.bad("truncated"));
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
    fn id(&mut self) -> Result<Id> {
        let s = self.take(32)?;
        Id::from_slice(s).ok_or_else(|| self.bad("id"))
    }
    /// A count of items each at least `min_item` bytes long: bounded by what is left.
    fn count(&mut self, min_item: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_item) > self.b.len() - self.at {
            return Err(self.bad("count larger than the data"));
        }
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::format::crypto::MasterKey;
    use proptest::prelude::*;

    pub(crate) fn entry(i: u32) -> PackEntry {
        PackEntry {
            id: BlobId(Id::hash_of(&i.to_le_bytes())),
            typ: if i.is_multiple_of(3) {
                BlobType::Tree
            } else {
                BlobType::Data
            },
            compressed: i.is_multiple_of(2),
            offset: i * 100,
            length: 100,
            raw_len: 90 + i,
        }
    }

    proptest! {
        #[test]
        fn index_file_round_trip(n_packs in 0usize..5, n_blobs in 0u32..30, n_super in 0usize..3) {
            let f = IndexFile {
                supersedes: (0..n_super).map(|_| IndexId(Id::random())).collect(),
                packs: (0..n_packs).map(|_| IndexedPack {
                    id: PackId(Id::random()),
                    size: n_blobs as u64 * 100 + 50,
                    blobs: (0..n_blobs).map(entry).collect(),
                }).collect(),
            };
            let crypto = Crypto::Keyed(MasterKey::generate());
            let sealed = f.seal(&crypto);
            prop_assert_eq!(IndexFile::open(&crypto, &sealed, "i").unwrap(), f.clone());
            let plain = f.encode();
            for cut in 0..plain.len() {
                prop_assert!(IndexFile::decode(&plain[..cut]).is_err());
            }
        }

        #[test]
        fn decoder_survives_garbage(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = IndexFile::decode(&b);
            let mut with_magic = b"SVIX\x01".to_vec();
            with_magic.extend_from_slice(&b);
            let _ = IndexFile::decode(&with_magic);
        }
    }
}
