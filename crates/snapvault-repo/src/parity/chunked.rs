//! One band's Reed-Solomon recovery, computed as its data shards arrive (format.md §15.1,
//! version 3): the Leopard-RS high-rate code of `reed-solomon-simd` with a fixed number of
//! recovery positions `C` (a power of two), of which a parity file stores the first `R_b`.
//!
//! Leopard's high-rate encoding is linear and works in chunks of `C` data shards: each
//! chunk is inverse-transformed (IFFT) with a skew that depends only on where the chunk
//! starts in the codeword, the results are XORed together, and one forward transform (FFT)
//! of the sum gives the `C` recovery shards. A zero-padded chunk is the same as absent
//! shards. So a band can be folded in chunk by chunk: memory is one `C`-shard sum plus the
//! chunk being filled, whatever the band's length, and the data need never be held. The
//! result is, byte for byte, the crate's `HighRateEncoder` for (`N`, `C`) — the crate's
//! `HighRateDecoder` for (`N`, `C`) decodes it, told that recovery shards `R_b..C` are
//! missing (tests below and in `tests_stream`).
//!
//! With the GFNI engine, each complete group of 64 shards of the chunk being filled is
//! transformed through the IFFT's layers within the group as soon as it is complete, while
//! its copies are still in the core's cache; the fold does the remaining layers only, its
//! last XORed straight into the sum ([`ParityEngine::fold`]).

use reed_solomon_simd::engine::{Engine, ShardsRefMut};

use super::SHARD;
use super::engine::ParityEngine;

/// 64-byte blocks per shard (the engine's unit).
const BLOCKS: usize = SHARD / 64;

/// The recovery of one band in progress.
#[derive(Clone)]
pub(crate) struct BandEncoder {
    /// Recovery positions `C` (a power of two): also the chunk length.
    width: usize,
    /// The running sum of the transformed chunks (`C` shards). Before it holds one, the
    /// chunk being filled lives here, and is transformed in place as the sum.
    sum: Vec<[u8; 64]>,
    /// The chunk being filled once the sum holds something (`C` shards), transformed and
    /// added to the sum when full; a band that takes no more shards gives it up
    /// ([`BandEncoder::release`]).
    next_chunk: Vec<[u8; 64]>,
    /// The chunk being filled: its index in the codeword (it starts at position
    /// `chunk · C`).
    chunk: usize,
    /// Positions of the chunk being filled up to the last shard added since it was last
    /// folded (those skipped are zero).
    fill: usize,
    /// Positions of the chunk being filled already transformed ahead, group by group
    /// ([`ParityEngine::ahead`]; a multiple of the group, at most `fill`).
    done: usize,
    /// One past the last position added.
    next: usize,
    /// The sum holds at least one transformed chunk.
    summed: bool,
    /// Data shards added so far.
    count: usize,
}

impl BandEncoder {
    /// A band coded with `width` recovery positions (a power of two, at most 32768).
    pub(crate) fn new(width: usize) -> BandEncoder {
        BandEncoder::reusing(width, Vec::new())
    }

    /// [`BandEncoder::new`] with `sum` as its sum's buffer: a spent encoder's (from
    /// [`BandEncoder::into_buffer`] or [`BandEncoder::release`]), whose pages are faulted in
    /// already.
    pub(crate) fn reusing(width: usize, sum: Vec<[u8; 64]>) -> BandEncoder {
        debug_assert!(width.is_power_of_two());
        BandEncoder {
            width,
            sum,
            next_chunk: Vec::new(),
            chunk: 0,
            fill: 0,
            done: 0,
            next: 0,
            summed: false,
            count: 0,
        }
    }

    /// Hand the encoder a buffer for its second chunk (from a spent encoder), so it need
    /// not allocate one.
    pub(crate) fn with_chunk_buffer(mut self, buf: Vec<[u8; 64]>) -> BandEncoder {
        self.next_chunk = buf;
        self
    }

    /// The sum's buffer, for [`BandEncoder::reusing`].
    pub(crate) fn into_buffer(self) -> Vec<[u8; 64]> {
        self.sum
    }

    /// The band takes no more shards (its group is complete): the chunk being filled is
    /// added to the sum and its buffer given up, for another band. The encoder can still
    /// [`BandEncoder::absorb`] and finish; a shard added later takes a new buffer.
    pub(crate) fn release(&mut self, engine: &ParityEngine) -> Vec<[u8; 64]> {
        self.fold(engine);
        std::mem::take(&mut self.next_chunk)
    }

    /// Bytes of buffers the encoder holds.
    #[cfg(test)]
    pub(crate) fn memory(&self) -> usize {
        (self.sum.capacity() + self.next_chunk.capacity()) * 64
    }

    /// Data shards added so far.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// The next codeword position (one past the last shard added).
    pub(crate) fn next_position(&self) -> usize {
        self.next
    }

    /// The buffer the chunk being filled lives in.
    fn chunk_buf(&mut self) -> &mut Vec<[u8; 64]> {
        if self.summed {
            &mut self.next_chunk
        } else {
            &mut self.sum
        }
    }

    /// Append one data shard (at most [`SHARD`] bytes; a shorter one is zero-padded) at the
    /// next position.
    #[cfg(test)]
    pub(crate) fn add(&mut self, engine: &ParityEngine, shard: &[u8]) {
        let pos = self.next_position();
        self.add_at(engine, pos, shard);
    }

    /// Add one data shard at codeword position `pos`, at or past [`Self::next_position`]:
    /// the positions skipped are zero (absent).
    pub(crate) fn add_at(&mut self, engine: &ParityEngine, pos: usize, shard: &[u8]) {
        self.add_at_seen(engine, pos, shard, |_| ());
    }

    /// [`BandEncoder::add_at`], handing `seen` the shard as placed (zero-padded to [`SHARD`]
    /// bytes) before it is transformed: a hash of it reads the copy just made, in cache,
    /// instead of the pack's bytes a second time.
    pub(crate) fn add_at_seen<T>(
        &mut self,
        engine: &ParityEngine,
        pos: usize,
        shard: &[u8],
        seen: impl FnOnce(&[u8]) -> T,
    ) -> T {
        let c = self.width;
        debug_assert!(pos >= self.next_position());
        if pos / c != self.chunk {
            self.fold(engine);
            self.chunk = pos / c;
        }
        let (fill, at) = (self.fill, pos % c);
        let buf = self.chunk_buf();
        if buf.len() < c * BLOCKS {
            buf.resize(c * BLOCKS, [0; 64]);
        }
        if at > fill {
            buf[fill * BLOCKS..at * BLOCKS].fill([0; 64]);
        }
        let dst = buf[at * BLOCKS..(at + 1) * BLOCKS].as_flattened_mut();
        let n = shard.len().min(SHARD);
        dst[..n].copy_from_slice(&shard[..n]);
        dst[n..].fill(0);
        let out = seen(dst);
        self.fill = at + 1;
        self.next = pos + 1;
        self.count += 1;
        // A complete group's first IFFT layers, while its shards are in cache.
        if let Some(g) = engine.ahead(c) {
            let skew = (self.chunk + 1) * c;
            while self.done + g <= self.fill {
                let done = self.done;
                engine.ifft_ahead(self.chunk_buf(), BLOCKS, (done, g, skew));
                self.done += g;
            }
        }
        if self.fill == c {
            self.fold(engine);
            self.chunk += 1;
        }
        out
    }

    /// Transform the chunk being filled (zero-padded past `fill`) and add it to the sum;
    /// the chunk's positions start empty again (a later shard of the same chunk is folded
    /// on its own: the transform is linear).
    fn fold(&mut self, engine: &ParityEngine) {
        if self.fill == 0 {
            return;
        }
        let c = self.width;
        let fill = self.fill;
        // The chunk that starts at codeword position `chunk · C` is skewed by its end.
        let skew = (self.chunk + 1) * c;
        let buf = self.chunk_buf();
        buf[fill * BLOCKS..c * BLOCKS].fill([0; 64]);
        let (chunk, sum) = if self.summed {
            (&mut self.next_chunk, Some(&mut self.sum[..c * BLOCKS]))
        } else {
            (&mut self.sum, None)
        };
        let done = self.done;
        engine.fold(&mut chunk[..c * BLOCKS], sum, BLOCKS, (c, fill, skew), done);
        self.summed = true;
        self.fill = 0;
        self.done = 0;
    }

    /// Add another band's shards (coded at the same width, at positions of their own that
    /// none of this band's share): the code is linear, so the two sums add.
    pub(crate) fn absorb(&mut self, engine: &ParityEngine, mut other: BandEncoder) {
        debug_assert_eq!(self.width, other.width);
        self.fold(engine);
        other.fold(engine);
        self.count += other.count;
        self.next = self.next.max(other.next);
        if !other.summed {
            return;
        }
        let c = self.width * BLOCKS;
        if self.summed {
            reed_solomon_simd::engine::utils::xor(&mut self.sum[..c], &other.sum[..c]);
        } else {
            self.sum.clear();
            self.sum.extend_from_slice(&other.sum[..c]);
            self.summed = true;
        }
    }

    /// The first `recovery` (≤ `C`) recovery shards of the shards added so far, computed in
    /// `scratch` (reused across calls): the encoder goes on (its partial chunk folded).
    #[cfg(test)]
    pub(crate) fn peek<'s>(
        &mut self,
        engine: &ParityEngine,
        recovery: usize,
        scratch: &'s mut Vec<[u8; 64]>,
    ) -> &'s [u8] {
        self.fold(engine);
        let c = self.width;
        scratch.clear();
        if self.summed {
            scratch.extend_from_slice(&self.sum[..c * BLOCKS]);
        } else {
            scratch.resize(c * BLOCKS, [0; 64]);
        }
        transform(engine, scratch, c, recovery)
    }

    /// The first `recovery` (≤ `C`) recovery shards, `recovery × SHARD` bytes; the encoder
    /// is spent (call [`BandEncoder::new`] again, or [`BandEncoder::peek`] to keep going).
    pub(crate) fn finish(&mut self, engine: &ParityEngine, recovery: usize) -> &[u8] {
        let c = self.width;
        self.fold(engine);
        if !self.summed {
            self.sum.clear();
        }
        if self.sum.len() < c * BLOCKS {
            self.sum.resize(c * BLOCKS, [0; 64]);
        }
        transform(engine, &mut self.sum, c, recovery)
    }

    /// The first `recovery` recovery shards [`BandEncoder::finish`] computed (the same
    /// bytes it returned), borrowed again.
    pub(crate) fn finished(&self, recovery: usize) -> &[u8] {
        self.sum[..recovery.min(self.width) * BLOCKS].as_flattened()
    }
}

/// The first `recovery` recovery shards from a sum of `c` transformed chunks (in place).
fn transform<'b>(
    engine: &ParityEngine,
    buf: &'b mut [[u8; 64]],
    c: usize,
    recovery: usize,
) -> &'b [u8] {
    let recovery = recovery.min(c);
    let mut sum = ShardsRefMut::new(c, BLOCKS, &mut buf[..c * BLOCKS]);
    engine.fft(&mut sum, 0, c, recovery, 0);
    buf[..recovery * BLOCKS].as_flattened()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use reed_solomon_simd::engine::DefaultEngine;
    use reed_solomon_simd::rate::{HighRateDecoder, HighRateEncoder, RateDecoder, RateEncoder};

    use super::*;

    fn shards(n: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let mut s = vec![0u8; SHARD];
                rng.fill(&mut s[..]);
                s
            })
            .collect()
    }

    /// The crate's own high-rate encoder for (`data.len()`, `width`).
    fn crate_recovery(data: &[Vec<u8>], width: usize) -> Vec<Vec<u8>> {
        let mut enc =
            HighRateEncoder::new(data.len(), width, SHARD, DefaultEngine::new(), None).unwrap();
        for s in data {
            enc.add_original_shard(s).unwrap();
        }
        let out = enc.encode().unwrap();
        out.recovery_iter().map(<[u8]>::to_vec).collect()
    }

    fn ours(data: &[Vec<u8>], width: usize, recovery: usize) -> Vec<u8> {
        let engine = ParityEngine::new();
        let mut enc = BandEncoder::new(width);
        for s in data {
            enc.add(&engine, s);
        }
        assert_eq!(enc.count(), data.len());
        enc.finish(&engine, recovery).to_vec()
    }

    #[test]
    fn peeking_midway_gives_the_recovery_so_far_and_changes_nothing() {
        let engine = ParityEngine::new();
        let data = shards(700, 3);
        let mut enc = BandEncoder::new(256);
        let mut scratch = Vec::new();
        for (i, s) in data.iter().enumerate() {
            enc.add(&engine, s);
            if [0, 255, 256, 300, 511].contains(&i) {
                let want = crate_recovery(&data[..=i], 256).concat();
                assert_eq!(enc.peek(&engine, 256, &mut scratch), &want[..], "after {i}");
            }
        }
        assert_eq!(
            enc.finish(&engine, 256),
            &crate_recovery(&data, 256).concat()[..]
        );
    }

    #[test]
    fn a_band_of_one_shard_and_of_whole_chunks_match_the_crate() {
        for (n, c) in [(1, 1), (1, 4), (4, 4), (8, 4), (9, 4), (4095, 256)] {
            let data = shards(n, n as u64);
            let want = crate_recovery(&data, c).concat();
            assert_eq!(ours(&data, c, c), want, "n {n}, c {c}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Shards at positions of their own (gaps between them zero), split between two
        /// encoders in any way and then absorbed into one: the crate's encoding of the whole
        /// codeword, gaps as zero shards.
        #[test]
        fn placed_shards_split_and_absorbed_equal_the_crate(
            n in 1usize..1500, log_c in 0u32..9, seed: u64,
        ) {
            let c = 1usize << log_c;
            let mut rng = StdRng::seed_from_u64(seed);
            let mut data = shards(n, seed);
            let present: Vec<bool> = (0..n).map(|i| i + 1 == n || rng.gen_bool(0.7)).collect();
            let side: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.5)).collect();
            for (s, p) in data.iter_mut().zip(&present) {
                if !p {
                    s.fill(0);
                }
            }
            let engine = ParityEngine::new();
            let (mut a, mut b) = (BandEncoder::new(c), BandEncoder::new(c));
            for i in (0..n).filter(|&i| present[i]) {
                let e = if side[i] { &mut a } else { &mut b };
                e.add_at(&engine, i, &data[i]);
            }
            let count = present.iter().filter(|p| **p).count();
            a.absorb(&engine, b);
            prop_assert_eq!(a.count(), count);
            let want = crate_recovery(&data, c).concat();
            prop_assert!(a.finish(&engine, c) == &want[..]);
        }

        /// Any band length up to 4095 data shards and any code width: our first `R` shards
        /// are the crate's `HighRateEncoder`'s for (N, C), byte for byte.
        #[test]
        fn equals_the_crates_high_rate_encoder(
            n in 1usize..4096, log_c in 0u32..10, r_share in 0.0f64..=1.0, seed: u64,
        ) {
            let c = 1usize << log_c;
            let data = shards(n, seed);
            let r = ((c as f64 * r_share) as usize).clamp(1, c);
            let want = crate_recovery(&data, c);
            prop_assert!(ours(&data, c, r) == want[..r].concat());
        }

        /// The crate's `HighRateDecoder` for (N, C) decodes a punctured band: only the first
        /// `R` recovery shards stored, up to `R` of the N + R shards erased.
        #[test]
        fn punctured_bands_decode_with_the_crates_decoder(
            n in 1usize..600, log_c in 0u32..8, seed: u64,
        ) {
            let c = 1usize << log_c;
            let mut rng = StdRng::seed_from_u64(seed);
            let r = rng.gen_range(1..=c);
            let data = shards(n, seed);
            let rec = ours(&data, c, r);
            // Erase `r` shards at random among the n data and r recovery shards.
            let mut erased = vec![false; n + r];
            for i in rand::seq::index::sample(&mut rng, n + r, r.min(n + r)) {
                erased[i] = true;
            }
            let mut dec = HighRateDecoder::new(n, c, SHARD, DefaultEngine::new(), None).unwrap();
            for (i, s) in data.iter().enumerate().filter(|(i, _)| !erased[*i]) {
                dec.add_original_shard(i, s).unwrap();
            }
            for j in (0..r).filter(|j| !erased[n + j]) {
                dec.add_recovery_shard(j, &rec[j * SHARD..(j + 1) * SHARD]).unwrap();
            }
            let out = dec.decode().unwrap();
            for (i, s) in out.restored_original_iter() {
                prop_assert!(s == &data[i][..], "shard {} restored wrong", i);
            }
            prop_assert_eq!(out.restored_original_iter().count(), erased[..n].iter().filter(|e| **e).count());
        }
    }
}
