//! Comparing the phone's bytes with a stored version by content. The phone's stream is cut
//! where the stored file's chunks end and each piece is hashed under the repository's id
//! key: every piece hashing to the stored chunk id means the phone holds exactly the
//! stored bytes. Because the cuts come from the stored file and not from this repository's
//! chunker, a copy made by `snapvault copy` (the source's cuts, the destination's keys)
//! compares as equal too. Reading the stored chunks back (which checks each one against
//! its id) then closes the chain from the phone's bytes to the bytes on storage.

use snapvault_repo::crypto::{BlobHasher, Crypto};

use super::stored::Version;

pub struct Matcher<'a> {
    crypto: &'a Crypto,
    pub version: &'a Version,
    lens: &'a [u32],
    /// The chunk being hashed, and how many of its bytes are still to come.
    i: usize,
    left: u64,
    hasher: BlobHasher,
    alive: bool,
}

impl<'a> Matcher<'a> {
    /// `None` when the version cannot be compared (a chunk of it is not in the index).
    pub fn new(crypto: &'a Crypto, version: &'a Version) -> Option<Matcher<'a>> {
        let lens = version.lens.as_deref()?;
        let mut m = Matcher {
            crypto,
            version,
            lens,
            i: 0,
            left: lens.first().map_or(0, |l| *l as u64),
            hasher: crypto.blob_hasher(),
            alive: true,
        };
        m.settle();
        Some(m)
    }

    /// Close every chunk whose bytes are all in.
    fn settle(&mut self) {
        while self.alive && self.i < self.lens.len() && self.left == 0 {
            if self.version.content.get(self.i) != Some(&self.hasher.finish()) {
                self.alive = false;
            }
            self.i += 1;
            self.hasher = self.crypto.blob_hasher();
            self.left = self.lens.get(self.i).map_or(0, |l| *l as u64);
        }
    }

    pub fn feed(&mut self, mut data: &[u8]) {
        while self.alive && !data.is_empty() {
            if self.i >= self.lens.len() {
                // The phone's file goes on past the stored one.
                self.alive = false;
                break;
            }
            let n = self.left.min(data.len() as u64) as usize;
            let (piece, rest) = data.split_at(n);
            self.hasher.update(piece);
            self.left -= n as u64;
            data = rest;
            self.settle();
        }
    }

    /// Still in the race: every piece so far matched its chunk.
    pub fn alive(&self) -> bool {
        self.alive
    }

    /// After the last byte: the phone's file is exactly the stored version.
    pub fn matched(&self) -> bool {
        self.alive && self.i == self.lens.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use snapvault_repo::crypto::MasterKey;

    fn version(c: &Crypto, data: &[u8], cuts: &[usize]) -> Version {
        let mut content = Vec::new();
        let mut lens = Vec::new();
        let mut at = 0;
        for &end in cuts.iter().chain(std::iter::once(&data.len())) {
            content.push(c.blob_id(&data[at..end]));
            lens.push((end - at) as u32);
            at = end;
        }
        Version {
            size: data.len() as u64,
            content,
            lens: Some(lens),
        }
    }

    fn compare(c: &Crypto, v: &Version, phone: &[u8], piece: usize) -> bool {
        let mut m = Matcher::new(c, v).unwrap();
        for p in phone.chunks(piece.max(1)) {
            m.feed(p);
        }
        m.matched()
    }

    #[test]
    fn same_bytes_match_whatever_the_cuts_and_pieces() {
        let c = Crypto::Keyed(MasterKey::generate());
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for cuts in [vec![], vec![1], vec![40_000, 40_001, 99_999]] {
            let v = version(&c, &data, &cuts);
            for piece in [1, 1000, 65_536, 100_000] {
                assert!(compare(&c, &v, &data, piece), "{cuts:?} {piece}");
            }
        }
    }

    #[test]
    fn any_difference_fails() {
        let c = Crypto::Plain;
        let data = vec![5u8; 50_000];
        let v = version(&c, &data, &[20_000]);
        let mut other = data.clone();
        other[30_000] = 6;
        assert!(!compare(&c, &v, &other, 4096));
        assert!(!compare(&c, &v, &data[..49_999], 4096), "shorter");
        let mut longer = data.clone();
        longer.push(5);
        assert!(!compare(&c, &v, &longer, 4096), "longer");
        // Same bytes, another repository's key: other ids.
        let k = Crypto::Keyed(MasterKey::generate());
        assert!(!compare(&k, &v, &data, 4096));
    }

    #[test]
    fn empty_file_and_unindexed_chunks() {
        let c = Crypto::Plain;
        // An empty file is stored as no chunks at all.
        let empty = Version {
            size: 0,
            content: Vec::new(),
            lens: Some(Vec::new()),
        };
        assert!(Matcher::new(&c, &empty).unwrap().matched());
        assert!(!compare(&c, &empty, b"x", 1));
        let unindexed = Version {
            size: 3,
            content: vec![c.blob_id(b"abc")],
            lens: None,
        };
        assert!(Matcher::new(&c, &unindexed).is_none());
    }
}
