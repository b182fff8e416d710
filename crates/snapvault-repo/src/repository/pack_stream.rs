//! A data pack built in segments, for a backend that writes packs as they fill.
//!
//! A pack built whole in memory costs its whole size for the pack being filled and again
//! for each pack a writer thread is writing: three 16 MiB buffers, half of a first
//! snapshot's peak RSS (issue 23). A backend that takes a pack in pieces
//! ([`Backend::streams_packs`](crate::storage::Backend::streams_packs): a local folder) is
//! handed the pack's bytes a [`SEGMENT`] at a time as they fill, from [`SEGMENTS`]
//! recycled 4 KiB-aligned buffers (so each is written with direct I/O from where it lies),
//! and the last piece — the rest of the blobs, the sealed header and its length — at the
//! end. The pack id (BLAKE3 of all its bytes) is hashed segment by segment on the packer
//! thread as before. The bytes are those [`PackWriter`](crate::format::pack::PackWriter)
//! builds whole (test `segments_make_the_pack_built_whole`); the backend makes the file
//! durable and gives it its name only after its last piece (format.md §2, §11).

use crate::format::blob::EncodedBlob;
use crate::format::crypto::Crypto;
use crate::format::id::{Id, PackId};
use crate::format::pack::{PackEntry, pack_tail};
use crate::storage::direct_io::{ALIGN, STAGE};

/// Bytes of a pack handed over at once: the direct-I/O write size that reaches the
/// disk's full speed (`direct_io::STAGE`).
pub(crate) const SEGMENT: usize = STAGE;
/// Segment buffers in circulation: the one being filled, one being written by each pack
/// writer, and one queued so the packer need not wait for a write to return.
pub(crate) const SEGMENTS: usize = super::packer::PACK_WRITERS + 2;
/// Capacity of a segment buffer: a segment and room to start it on an aligned address.
pub(crate) const SEGMENT_CAPACITY: usize = SEGMENT + ALIGN;
/// Bytes hashed at once while filling (BLAKE3 uses its SIMD lanes on larger inputs).
const HASH_STEP: usize = 64 << 10;

/// Bytes of a pack in a segment buffer: `buf[start..]`.
pub(crate) struct Segment {
    pub(crate) buf: Vec<u8>,
    pub(crate) start: usize,
}

impl Segment {
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }
}

/// Hands a full segment on and returns an empty buffer for the next one; `None` once the
/// writers stopped (the run is failing).
pub(crate) type Ship<'a> = dyn FnMut(Segment) -> Option<Vec<u8>> + 'a;

/// One data pack being filled (see the module documentation).
pub(crate) struct PackStream {
    seg: Vec<u8>,
    /// Where the pack's bytes start in `seg` (an aligned address).
    start: usize,
    /// `seg[start..hashed]` is in `hasher`.
    hashed: usize,
    /// Bytes of the pack already shipped in full segments.
    shipped: usize,
    entries: Vec<PackEntry>,
    hasher: blake3::Hasher,
}

impl PackStream {
    /// A pack filling `buf` (emptied, its allocation kept: give it [`SEGMENT_CAPACITY`]).
    pub(crate) fn new(buf: Vec<u8>) -> PackStream {
        let mut s = PackStream {
            seg: Vec::new(),
            start: 0,
            hashed: 0,
            shipped: 0,
            entries: Vec::new(),
            hasher: blake3::Hasher::new(),
        };
        s.take(buf);
        s
    }

    fn take(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() < SEGMENT_CAPACITY {
            buf = Vec::with_capacity(SEGMENT_CAPACITY);
        }
        buf.clear();
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        buf.resize(start, 0);
        self.seg = buf;
        self.start = start;
        self.hashed = start;
    }

    /// Bytes of the pack so far.
    pub(crate) fn len(&self) -> usize {
        self.shipped + self.seg.len() - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Add a blob; false once `ship` says the writers stopped.
    pub(crate) fn add(&mut self, blob: &EncodedBlob, ship: &mut Ship<'_>) -> bool {
        self.entries.push(PackEntry::of(blob, self.len()));
        self.append(&blob.sealed, ship)
    }

    fn append(&mut self, mut bytes: &[u8], ship: &mut Ship<'_>) -> bool {
        while !bytes.is_empty() {
            let room = self.start + SEGMENT - self.seg.len();
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.seg.extend_from_slice(now);
            bytes = rest;
            if self.seg.len() == self.start + SEGMENT {
                self.hasher.update(&self.seg[self.hashed..]);
                let full = Segment {
                    buf: std::mem::take(&mut self.seg),
                    start: self.start,
                };
                self.shipped += SEGMENT;
                match ship(full) {
                    Some(next) => self.take(next),
                    None => return false,
                }
            } else if self.seg.len() - self.hashed >= HASH_STEP {
                self.hasher.update(&self.seg[self.hashed..]);
                self.hashed = self.seg.len();
            }
        }
        true
    }

    /// Seal the header and append it with its length: returns the pack's id, its last
    /// piece (never empty) and its entries; `None` once `ship` says the writers stopped.
    pub(crate) fn finish(
        mut self,
        crypto: &Crypto,
        ship: &mut Ship<'_>,
    ) -> Option<(PackId, Segment, Vec<PackEntry>)> {
        let (sealed, trailer) = pack_tail(crypto, &self.entries);
        if !(self.append(&sealed, ship) && self.append(&trailer, ship)) {
            return None;
        }
        self.hasher.update(&self.seg[self.hashed..]);
        let id = PackId(Id(*self.hasher.finalize().as_bytes()));
        let last = Segment {
            buf: self.seg,
            start: self.start,
        };
        Some((id, last, self.entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::blob::BlobType;
    use crate::format::id::BlobId;
    use crate::format::pack::{PackWriter, parse_pack};

    fn blob(i: usize, len: usize) -> EncodedBlob {
        EncodedBlob {
            id: BlobId(Id::hash_of(&i.to_le_bytes())),
            typ: BlobType::Data,
            raw_len: len as u32,
            compressed: i.is_multiple_of(3),
            sealed: (0..len).map(|j| (i * 31 + j / 7) as u8).collect(),
        }
    }

    /// The guard of streamed packs: whatever the blobs' sizes (smaller than a segment,
    /// larger, ending exactly on a segment's end, a header crossing one), the segments
    /// and the last piece put together are byte for byte the pack built whole, with the
    /// same id and entries; every full segment is a whole [`SEGMENT`] from an aligned
    /// address, and the buffers go round (no more than two exist here).
    #[test]
    fn segments_make_the_pack_built_whole() {
        let cases: Vec<Vec<usize>> = vec![
            vec![1],
            vec![SEGMENT],
            vec![SEGMENT - 20],
            vec![SEGMENT - 30, 100],
            vec![3 * SEGMENT + 5, 17, 2 * SEGMENT],
            (0..300).map(|i| 1 + (i * 7919) % 90_000).collect(),
            (0..40).map(|i| 1_100_000 + i * 40_507).collect(),
        ];
        for sizes in cases {
            let blobs: Vec<_> = sizes.iter().enumerate().map(|(i, &n)| blob(i, n)).collect();
            let mut whole = PackWriter::new(0);
            for b in &blobs {
                whole.add(b);
            }
            let (want_id, want, want_entries) = whole.finish(&Crypto::Plain);

            let mut got = Vec::new();
            let mut spare = Some(Vec::with_capacity(SEGMENT_CAPACITY));
            let mut ship = |s: Segment| {
                assert_eq!(s.bytes().len(), SEGMENT);
                assert_eq!(s.bytes().as_ptr().align_offset(ALIGN), 0);
                got.extend_from_slice(s.bytes());
                let next = spare.take();
                spare = Some(s.buf);
                next
            };
            let mut stream = PackStream::new(Vec::new());
            for b in &blobs {
                assert!(stream.add(b, &mut ship));
            }
            assert_eq!(stream.len(), want.len() - tail_len(&want));
            let (id, last, entries) = stream.finish(&Crypto::Plain, &mut ship).unwrap();
            assert!(!last.bytes().is_empty());
            got.extend_from_slice(last.bytes());
            assert_eq!(got.len(), want.len(), "sizes {sizes:?}");
            assert!(got == want, "bytes differ, sizes {sizes:?}");
            assert_eq!((id, entries), (want_id, want_entries));
        }
        // Sealed headers round-trip too (their bytes differ by nonce from any other seal).
        let c = Crypto::Keyed(crate::format::crypto::MasterKey::generate());
        let mut got = Vec::new();
        let mut ship = |s: Segment| {
            got.extend_from_slice(s.bytes());
            Some(s.buf)
        };
        let mut stream = PackStream::new(Vec::new());
        let blobs: Vec<_> = (0..9).map(|i| blob(i, 1_000_000 + i)).collect();
        for b in &blobs {
            assert!(stream.add(b, &mut ship));
        }
        let (id, last, entries) = stream.finish(&c, &mut ship).unwrap();
        got.extend_from_slice(last.bytes());
        assert_eq!(id.0, Id::hash_of(&got));
        assert_eq!(parse_pack(&c, &got, "pack").unwrap(), entries);
    }

    /// Header and trailer bytes of a whole pack (what `finish` appends).
    fn tail_len(pack: &[u8]) -> usize {
        let mut t = [0u8; 4];
        t.copy_from_slice(&pack[pack.len() - 4..]);
        u32::from_le_bytes(t) as usize + 4
    }

    /// Writers gone: adding stops at the first full segment.
    #[test]
    fn a_stopped_writer_stops_the_pack() {
        let mut stream = PackStream::new(Vec::new());
        let mut ship = |_s: Segment| None;
        assert!(stream.add(&blob(1, 100), &mut ship));
        assert!(!stream.add(&blob(2, SEGMENT), &mut ship));
    }
}
