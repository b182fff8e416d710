//! Content-defined chunking: FastCDC 2020 (normalisation level 1) with a gear table derived
//! from the repository's chunker key, so chunk boundaries differ between repositories.
//!
//! The cut-point search is the `fastcdc` crate's `cut_gear`; the streaming around it is ours
//! because the crate's `StreamCDC` moves its whole buffer after every chunk.

use std::io::{self, Read};

use fastcdc::v2020::{MASKS, cut_gear};

use crate::format::config::ChunkerParams;
use crate::format::crypto::Crypto;

pub struct Chunker {
    min: usize,
    avg: usize,
    max: usize,
    mask_s: u64,
    mask_l: u64,
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
}

impl Chunker {
    pub fn new(params: &ChunkerParams, crypto: &Crypto) -> Chunker {
        let gear = crypto.gear_table();
        let mut gear_ls = Box::new([0u64; 256]);
        for (d, s) in gear_ls.iter_mut().zip(gear.iter()) {
            *d = s << 1;
        }
        let bits = params.avg.max(256).trailing_zeros() as usize;
        Chunker {
            min: params.min as usize,
            avg: params.avg as usize,
            max: params.max as usize,
            mask_s: MASKS[(bits + 1).min(25)],
            mask_l: MASKS[bits - 1],
            gear,
            gear_ls,
        }
    }

    pub fn max_size(&self) -> usize {
        self.max
    }

    /// Length of the chunk at the start of `data`. When `data` is shorter than the maximum
    /// chunk size the caller must be at end of input.
    pub fn cut(&self, data: &[u8]) -> usize {
        let (_, n) = cut_gear(
            data,
            self.min,
            self.avg,
            self.max,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear,
            &self.gear_ls,
        );
        n.max(1).min(data.len())
    }

    /// Split a whole in-memory buffer (tests, small inputs).
    pub fn split<'a>(&self, mut data: &'a [u8]) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let n = self.cut(data);
            out.push(&data[..n]);
            data = &data[n..];
        }
        out
    }

    /// Stream chunks out of `reader`, reusing `buf` (pass an empty Vec the first time and
    /// get it back with `ChunkStream::into_buffer`).
    pub fn stream<R: Read>(&self, reader: R, buf: Vec<u8>) -> ChunkStream<'_, R> {
        let mut buf = buf;
        // Two maximum chunks: a refill then always leaves a whole maximum chunk to cut
        // (photos, being smaller, are read in one go; only longer files ever refill).
        let cap = self.max * 2;
        if buf.is_empty() {
            // Zeroed by the allocator (fresh pages): only what reads fill becomes resident,
            // so a reader of small files holds kilobytes, not 2 × the maximum chunk.
            buf = vec![0; cap];
        } else if buf.len() < cap {
            buf.resize(cap, 0);
        }
        ChunkStream {
            chunker: self,
            reader,
            buf,
            start: 0,
            end: 0,
            eof: false,
            bytes_read: 0,
        }
    }
}

/// An iterator of chunks read from a stream. Memory: one buffer of 2 × the maximum chunk size.
pub struct ChunkStream<'a, R> {
    chunker: &'a Chunker,
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    bytes_read: u64,
}

impl<R: Read> ChunkStream<'_, R> {
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while !self.eof && self.end < self.buf.len() {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.end += n;
                    self.bytes_read += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next chunk as a slice of the internal buffer (valid until the next call).
    pub(crate) fn next_chunk(&mut self) -> io::Result<Option<&[u8]>> {
        if !self.eof && self.end - self.start < self.chunker.max {
            self.fill()?;
        }
        if self.start == self.end {
            return Ok(None);
        }
        let n = self.chunker.cut(&self.buf[self.start..self.end]);
        let s = self.start;
        self.start += n;
        Ok(Some(&self.buf[s..s + n]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::crypto::MasterKey;
    use rand::{RngCore, SeedableRng};

    fn data(n: usize, seed: u64) -> Vec<u8> {
        let mut v = vec![0u8; n];
        rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
        v
    }

    #[test]
    fn stream_matches_split_and_respects_bounds() {
        let c = Chunker::new(
            &ChunkerParams::default(),
            &Crypto::Keyed(MasterKey::generate()),
        );
        let d = data(40 << 20, 1);
        let whole: Vec<Vec<u8>> = c.split(&d).into_iter().map(|s| s.to_vec()).collect();
        let mut s = c.stream(&d[..], Vec::new());
        let mut streamed = Vec::new();
        while let Some(ch) = s.next_chunk().unwrap() {
            streamed.push(ch.to_vec());
        }
        assert_eq!(whole, streamed);
        assert_eq!(streamed.concat(), d);
        for ch in &streamed[..streamed.len() - 1] {
            assert!(
                ch.len() >= 512 * 1024 && ch.len() <= 8 << 20,
                "{}",
                ch.len()
            );
        }
        let avg = d.len() / streamed.len();
        assert!(avg > 600 * 1024 && avg < 2 << 20, "avg {avg}");
    }

    #[test]
    fn insertion_at_start_keeps_most_chunks() {
        let c = Chunker::new(&ChunkerParams::default(), &Crypto::Plain);
        let d = data(32 << 20, 2);
        let mut shifted = b"inserted bytes at the very start".to_vec();
        shifted.extend_from_slice(&d);
        let a: std::collections::HashSet<&[u8]> = c.split(&d).into_iter().collect();
        let b = c.split(&shifted);
        let shared = b.iter().filter(|ch| a.contains(*ch)).count();
        assert!(shared * 10 >= a.len() * 8, "{shared} of {}", a.len());
    }

    #[test]
    fn keyed_boundaries_differ() {
        let d = data(16 << 20, 3);
        let a = Chunker::new(
            &ChunkerParams::default(),
            &Crypto::Keyed(MasterKey::generate()),
        );
        let b = Chunker::new(
            &ChunkerParams::default(),
            &Crypto::Keyed(MasterKey::generate()),
        );
        let la: Vec<usize> = a.split(&d).iter().map(|c| c.len()).collect();
        let lb: Vec<usize> = b.split(&d).iter().map(|c| c.len()).collect();
        assert_ne!(la, lb);
    }

    #[test]
    fn empty_and_tiny() {
        let c = Chunker::new(&ChunkerParams::default(), &Crypto::Plain);
        let mut s = c.stream(&b""[..], Vec::new());
        assert!(s.next_chunk().unwrap().is_none());
        let mut s = c.stream(&b"x"[..], Vec::new());
        assert_eq!(s.next_chunk().unwrap().unwrap(), b"x");
        assert!(s.next_chunk().unwrap().is_none());
    }
}
