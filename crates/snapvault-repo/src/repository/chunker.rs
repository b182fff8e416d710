//! Content-defined chunking: FastCDC 2020 (normalisation level 1) with a gear table derived
//! from the repository's chunker key, so chunk boundaries differ between repositories.
//!
//! The cut-point search is the `fastcdc` crate's `cut_gear`; the streaming around it is ours
//! because the crate's `StreamCDC` moves its whole buffer after every chunk.

use std::io::{self, Read};

use fastcdc::v2020::{MASKS, cut_gear};

use crate::format::config::ChunkerParams;
use crate::format::crypto::Crypto;

/// Bytes a [`ChunkStream`] reads at a time (at most half the maximum chunk size), once
/// less than that is left to cut. Its buffer becomes resident only as far as reads fill it:
/// what was left (under half a maximum chunk) plus one read, 8 MiB, not the 2 × 8 MiB a
/// long file filled when every read filled the buffer (two reader threads beside the
/// walker each held 16 MiB, issue 23). The leftover moved to the front before each read is
/// as large a share of the bytes read as before (half the buffer each time), and a cut is
/// searched again only when half a maximum chunk holds no cut point (rare: chunks average
/// 1 MiB). Cutting whenever less than a maximum chunk was left, with 4 MiB reads, held
/// ≈ 10 MiB but searched 8 % of the bytes twice.
pub(crate) const READ_WINDOW: usize = 4 << 20;

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
        // Room for a maximum chunk's worth of leftover and one read (see `next_chunk`).
        let cap = self.max * 2;
        if buf.is_empty() {
            // Zeroed by the allocator (fresh pages): only what reads fill becomes resident,
            // so a reader of small files holds kilobytes, and of photos and videos what is
            // left of a cut plus one READ_WINDOW, not 2 × the maximum chunk.
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
            filled: 0,
        }
    }
}

/// An iterator of chunks read from a stream. Memory: one buffer of 2 × the maximum chunk
/// size, resident as far as it was filled: the largest file under [`READ_WINDOW`], else
/// what was left of a cut (less than the largest chunk) plus one window.
pub struct ChunkStream<'a, R> {
    chunker: &'a Chunker,
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    bytes_read: u64,
    /// How far into `buf` reads have reached (the part of a fresh buffer made resident).
    filled: usize,
}

impl<R: Read> ChunkStream<'_, R> {
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// How far into its buffer this stream has read (tests of the memory bound).
    #[cfg(test)]
    fn filled(&self) -> usize {
        self.filled
    }

    /// Move what is left to the front and read up to one [`READ_WINDOW`] more.
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let window = READ_WINDOW.min(self.chunker.max / 2).max(1);
        let until = self.buf.len().min(self.end + window);
        while !self.eof && self.end < until {
            match self.reader.read(&mut self.buf[self.end..until]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.end += n;
                    self.bytes_read += n as u64;
                    self.filled = self.filled.max(self.end);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next chunk as a slice of the internal buffer (valid until the next call).
    ///
    /// With less than a maximum chunk buffered and more to read, a cut point found before
    /// the end of what is buffered is the one the whole stream gives (FastCDC decides at
    /// each byte from the bytes before it and the distance from the chunk's start), so it
    /// is taken once half a maximum chunk is buffered; with less, or no cut point in it,
    /// more is read first (see [`READ_WINDOW`]).
    pub(crate) fn next_chunk(&mut self) -> io::Result<Option<&[u8]>> {
        let n = loop {
            let have = self.end - self.start;
            if self.eof || have >= self.chunker.max {
                if have == 0 {
                    return Ok(None);
                }
                break self.chunker.cut(&self.buf[self.start..self.end]);
            }
            if have >= self.chunker.max / 2 {
                let n = self.chunker.cut(&self.buf[self.start..self.end]);
                if n < have {
                    break n;
                }
            }
            self.fill()?;
        };
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

    /// A reader giving at most `step(i)` bytes on its `i`-th read.
    struct Dribble<'a, F> {
        data: &'a [u8],
        reads: usize,
        step: F,
    }

    impl<F: Fn(usize) -> usize> Read for Dribble<'_, F> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf
                .len()
                .min(self.data.len())
                .min((self.step)(self.reads).max(1));
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            self.reads += 1;
            Ok(n)
        }
    }

    /// Guard of the read window: chunks cut from what is buffered (less than a maximum
    /// chunk, the stream not at its end) are the chunks of the whole stream, whatever the
    /// reads return, with runs without a cut point (zeros: maximum chunks) between; and the
    /// buffer is filled no further than the largest chunk plus one window.
    #[test]
    fn cuts_made_on_part_of_a_stream_are_those_of_the_whole() {
        let c = Chunker::new(
            &ChunkerParams::default(),
            &Crypto::Keyed(MasterKey::generate()),
        );
        let mut d = data(12 << 20, 4);
        d.extend(std::iter::repeat_n(0u8, 20 << 20));
        d.extend(data(9 << 20, 5));
        d.extend(std::iter::repeat_n(7u8, 3 << 20));
        d.extend(data(5 << 20, 6));
        let whole: Vec<&[u8]> = c.split(&d);
        let largest = whole.iter().map(|ch| ch.len()).max().unwrap();
        assert_eq!(largest, c.max_size(), "the zeros make maximum chunks");
        let steps: [&dyn Fn(usize) -> usize; 3] =
            [&|_| usize::MAX, &|i| 1 + (i * 7919 % 300_000), &|i| {
                if i % 2 == 0 { 4096 } else { 3 << 20 }
            }];
        for (k, step) in steps.iter().enumerate() {
            let reader = Dribble {
                data: &d,
                reads: 0,
                step,
            };
            let mut s = c.stream(reader, Vec::new());
            let mut streamed = Vec::new();
            while let Some(ch) = s.next_chunk().unwrap() {
                streamed.push(ch.to_vec());
            }
            assert_eq!(streamed.len(), whole.len(), "reads {k}");
            assert!(
                streamed.iter().zip(&whole).all(|(a, b)| a == b),
                "reads {k}"
            );
            assert!(
                s.filled() <= largest + READ_WINDOW,
                "reads {k}: {} bytes of the buffer filled",
                s.filled()
            );
        }
        // A photo-sized stream is read whole, once.
        let photo = data(3 << 20, 7);
        let mut s = c.stream(&photo[..], Vec::new());
        while s.next_chunk().unwrap().is_some() {}
        assert_eq!(s.filled(), photo.len());
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
