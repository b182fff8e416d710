//! The pack file format.
//!
//! ```text
//! pack   = blob* ‖ sealed(header) ‖ header_len:u32le
//! header = "SVPK" ‖ version:u8 (=1) ‖ count:u32le ‖ entry*count
//! entry  = type:u8 ‖ flags:u8 ‖ length:u32le ‖ raw_len:u32le ‖ id:[32]
//! ```
//! Blob `i` starts at the sum of the lengths of blobs `0..i`. `flags` bit 0 = zstd.
//! The file name is the plain BLAKE3 of all its bytes, so anyone can check a pack's
//! integrity without the key; only the key holder can read what is inside.

use crate::error::{RepoError, Result};
use crate::format::blob::{BlobType, EncodedBlob};
use crate::format::crypto::Crypto;
use crate::format::id::{BlobId, Id, PackId};

const MAGIC: &[u8; 4] = b"SVPK";
const VERSION: u8 = 1;
pub(crate) const ENTRY_LEN: usize = 42;
const HEADER_FIXED: usize = 9;
/// A header longer than this is refused (≈ 400,000 blobs).
pub(crate) const MAX_HEADER_LEN: usize = 16 << 20;
pub(crate) const FLAG_COMPRESSED: u8 = 1;

/// Where one blob sits inside a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackEntry {
    pub id: BlobId,
    pub typ: BlobType,
    pub compressed: bool,
    pub offset: u32,
    pub length: u32,
    pub raw_len: u32,
}

impl PackEntry {
    /// The entry of `blob` stored at `offset` in its pack.
    pub(crate) fn of(blob: &EncodedBlob, offset: usize) -> PackEntry {
        PackEntry {
            id: blob.id,
            typ: blob.typ,
            compressed: blob.compressed,
            offset: offset as u32,
            length: blob.sealed.len() as u32,
            raw_len: blob.raw_len,
        }
    }
}

/// What ends a pack after its blobs: the sealed header of `entries`, then its length
/// (4 bytes, little-endian).
pub(crate) fn pack_tail(crypto: &Crypto, entries: &[PackEntry]) -> (Vec<u8>, [u8; 4]) {
    let sealed = crypto.seal(&encode_header(entries));
    let len = (sealed.len() as u32).to_le_bytes();
    (sealed, len)
}

pub(crate) fn encode_header(entries: &[PackEntry]) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_FIXED + entries.len() * ENTRY_LEN);
    h.extend_from_slice(MAGIC);
    h.push(VERSION);
    h.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        h.push(e.typ as u8);
        h.push(if e.compressed { FLAG_COMPRESSED } else { 0 });
        h.extend_from_slice(&e.length.to_le_bytes());
        h.extend_from_slice(&e.raw_len.to_le_bytes());
        h.extend_from_slice(e.id.as_bytes());
    }
    h
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Decode a plaintext header; offsets are computed and checked against `data_len`
/// (the bytes before the sealed header).
pub fn decode_header(h: &[u8], data_len: u64) -> Result<Vec<PackEntry>> {
    let bad = |r: &str| RepoError::corrupt("pack header", r.to_string());
    if h.len() < HEADER_FIXED || &h[..4] != MAGIC {
        return Err(bad("bad magic"));
    }
    if h[4] != VERSION {
        return Err(bad("unknown version"));
    }
    let count = u32_at(h, 5) as usize;
    if h.len() != HEADER_FIXED + count * ENTRY_LEN {
        return Err(bad("length does not match the blob count"));
    }
    let mut out = Vec::with_capacity(count);
    let mut offset: u64 = 0;
    for i in 0..count {
        let e = &h[HEADER_FIXED + i * ENTRY_LEN..HEADER_FIXED + (i + 1) * ENTRY_LEN];
        let typ = BlobType::from_u8(e[0]).ok_or_else(|| bad("unknown blob type"))?;
        if e[1] & !FLAG_COMPRESSED != 0 {
            return Err(bad("unknown flags"));
        }
        let length = u32_at(e, 2);
        let raw_len = u32_at(e, 6);
        let id = BlobId(Id::from_slice(&e[10..42]).ok_or_else(|| bad("id"))?);
        if offset + length as u64 > data_len || offset > u32::MAX as u64 {
            return Err(bad("blob extends past the data section"));
        }
        out.push(PackEntry {
            id,
            typ,
            compressed: e[1] & FLAG_COMPRESSED != 0,
            offset: offset as u32,
            length,
            raw_len,
        });
        offset += length as u64;
    }
    if offset != data_len {
        return Err(bad("blobs do not fill the data section"));
    }
    Ok(out)
}

/// Parse the trailer of a complete pack: returns (sealed header range start, length).
pub(crate) fn header_location(pack_len: u64, trailer: [u8; 4]) -> Result<(u64, usize)> {
    let hl = u32::from_le_bytes(trailer) as u64;
    if hl as usize > MAX_HEADER_LEN || hl + 4 > pack_len {
        return Err(RepoError::corrupt(
            "pack header",
            format!("header length {hl} does not fit a {pack_len}-byte pack"),
        ));
    }
    Ok((pack_len - 4 - hl, hl as usize))
}

/// Read the entries of a whole pack held in memory.
pub fn parse_pack(crypto: &Crypto, pack: &[u8], what: &str) -> Result<Vec<PackEntry>> {
    if pack.len() < 4 {
        return Err(RepoError::corrupt(what, "shorter than a pack trailer"));
    }
    let mut t = [0u8; 4];
    t.copy_from_slice(&pack[pack.len() - 4..]);
    let (start, len) = header_location(pack.len() as u64, t)?;
    let sealed = &pack[start as usize..start as usize + len];
    let header = crypto.open(sealed, &format!("header of {what}"))?;
    decode_header(&header, start)
}

/// Builds one pack in memory. The pack id (BLAKE3 of all its bytes) is computed as blobs
/// are added, in steps of [`HASH_STEP`], so finishing a pack only hashes its tail.
pub struct PackWriter {
    data: Vec<u8>,
    /// `data[..hashed]` is in `hasher`.
    hashed: usize,
    /// Where the pack starts in `data`: a recycled buffer starts its pack on a 4 KiB
    /// boundary, so a local disk can write it with direct I/O without copying it first.
    base: usize,
    entries: Vec<PackEntry>,
    hasher: blake3::Hasher,
}

/// Bytes hashed at once while a pack is built: BLAKE3 hashes many 1 KiB chunks side by
/// side (SIMD lanes) only when given them together; blob by blob, a pack of photos of a
/// few KiB was hashed a chunk at a time (≈ 10 % of a first snapshot's CPU at 100,000).
const HASH_STEP: usize = 64 << 10;

impl Default for PackWriter {
    fn default() -> Self {
        Self::new(0)
    }
}

/// The bytes of a finished pack, inside the buffer they were built in.
pub(crate) struct PackBytes {
    buf: Vec<u8>,
    base: usize,
}

impl PackBytes {
    pub fn len(&self) -> usize {
        self.buf.len() - self.base
    }

    /// The buffer (to build the next pack in, [`PackWriter::with_buffer`]) and where the
    /// pack starts in it.
    pub(crate) fn into_parts(self) -> (Vec<u8>, usize) {
        (self.buf, self.base)
    }

    /// The pack as a vector of its own (moves the bytes when the pack did not start at
    /// the buffer's beginning).
    pub(crate) fn into_vec(mut self) -> Vec<u8> {
        self.buf.drain(..self.base);
        self.buf
    }
}

impl PackWriter {
    pub fn new(capacity: usize) -> Self {
        PackWriter {
            data: Vec::with_capacity(capacity),
            hashed: 0,
            base: 0,
            entries: Vec::new(),
            hasher: blake3::Hasher::new(),
        }
    }

    /// A writer that fills `buf` (emptied first, its allocation kept): hand back the bytes
    /// of a written pack here so the next pack does not fault in fresh memory. The pack
    /// starts at the first `align` boundary of the allocation (give it that much spare
    /// room): the packer asks for the block size of direct I/O, so the pack is written from
    /// where it lies.
    pub fn with_buffer(mut buf: Vec<u8>, align: usize) -> Self {
        buf.clear();
        let base = match buf.as_ptr().align_offset(align) {
            b if b < buf.capacity() => b,
            _ => 0,
        };
        buf.resize(base, 0);
        PackWriter {
            data: buf,
            hashed: base,
            base,
            entries: Vec::new(),
            hasher: blake3::Hasher::new(),
        }
    }

    pub fn add(&mut self, blob: &EncodedBlob) {
        self.entries.push(PackEntry::of(blob, self.len()));
        self.data.extend_from_slice(&blob.sealed);
        if self.data.len() - self.hashed >= HASH_STEP {
            self.hasher.update(&self.data[self.hashed..]);
            self.hashed = self.data.len();
        }
    }

    pub fn len(&self) -> usize {
        self.data.len() - self.base
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn blob_count(&self) -> usize {
        self.entries.len()
    }

    /// Seal the header and return the pack's id, bytes and entries.
    pub fn finish(self, crypto: &Crypto) -> (PackId, Vec<u8>, Vec<PackEntry>) {
        let (id, bytes, entries) = self.finish_in_place(crypto);
        (id, bytes.into_vec(), entries)
    }

    /// [`PackWriter::finish`], leaving the bytes where they were built.
    pub(crate) fn finish_in_place(
        mut self,
        crypto: &Crypto,
    ) -> (PackId, PackBytes, Vec<PackEntry>) {
        let (sealed, trailer) = pack_tail(crypto, &self.entries);
        self.data.extend_from_slice(&sealed);
        self.data.extend_from_slice(&trailer);
        self.hasher.update(&self.data[self.hashed..]);
        let id = PackId(Id(*self.hasher.finalize().as_bytes()));
        let bytes = PackBytes {
            buf: self.data,
            base: self.base,
        };
        (id, bytes, self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::blob::{Compression, decode, encode};
    use crate::format::crypto::MasterKey;
    use proptest::prelude::*;

    fn build(crypto: &Crypto, blobs: &[Vec<u8>]) -> (PackId, Vec<u8>, Vec<PackEntry>) {
        // A recycled buffer with old bytes in it must not leak into the pack.
        let mut w = PackWriter::with_buffer(vec![0xAA; 3000], 4096);
        for (i, b) in blobs.iter().enumerate() {
            let typ = if i % 2 == 0 {
                BlobType::Data
            } else {
                BlobType::Tree
            };
            w.add(&encode(
                crypto,
                crypto.blob_id(b),
                typ,
                b,
                Compression::Try(3),
            ));
        }
        w.finish(crypto)
    }

    /// A pack of many small blobs, hashed in steps of HASH_STEP as they are added (from a
    /// recycled buffer, so not from its start): its id is still the hash of its bytes.
    #[test]
    fn a_pack_hashed_in_steps_is_named_by_the_hash_of_its_bytes() {
        let crypto = Crypto::Keyed(MasterKey::generate());
        let blobs: Vec<Vec<u8>> = (0..300u32)
            .map(|i| {
                (0..1500 + i % 700)
                    .map(|k| (k * 31 + i * 17) as u8 ^ (k >> 3) as u8)
                    .collect()
            })
            .collect();
        let (id, bytes, entries) = build(&crypto, &blobs);
        assert!(bytes.len() > 4 * HASH_STEP);
        assert_eq!(id.0, Id::hash_of(&bytes));
        assert_eq!(parse_pack(&crypto, &bytes, "p").unwrap(), entries);
    }

    proptest! {
        #[test]
        fn pack_round_trip(blobs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..2000), 0..20)) {
            let crypto = Crypto::Keyed(MasterKey::generate());
            let (id, bytes, entries) = build(&crypto, &blobs);
            prop_assert_eq!(id.0, Id::hash_of(&bytes));
            let parsed = parse_pack(&crypto, &bytes, "p").unwrap();
            prop_assert_eq!(&parsed, &entries);
            for (e, b) in parsed.iter().zip(&blobs) {
                let s = &bytes[e.offset as usize..(e.offset + e.length) as usize];
                prop_assert_eq!(&decode(&crypto, &e.id, e.compressed, e.raw_len, s).unwrap(), b);
            }
        }

        #[test]
        fn damaged_pack_is_an_error_never_a_panic(cut in 0usize..4000, flip in 0usize..4000) {
            let crypto = Crypto::Keyed(MasterKey::generate());
            let (_, bytes, entries) = build(&crypto, &[vec![1u8; 500], vec![2u8; 700]]);
            let n = cut.min(bytes.len());
            let _ = parse_pack(&crypto, &bytes[..n], "p");
            let mut b = bytes.clone();
            let i = flip % b.len();
            b[i] ^= 0x40;
            // A flip in the sealed header or the trailer must be detected.
            let data_len: usize = entries.iter().map(|e| e.length as usize).sum();
            if i >= data_len {
                prop_assert!(parse_pack(&crypto, &b, "p").is_err());
            }
        }

        #[test]
        fn header_decoder_survives_garbage(h in proptest::collection::vec(any::<u8>(), 0..300), len in 0u64..100000) {
            let _ = decode_header(&h, len);
        }
    }
}
