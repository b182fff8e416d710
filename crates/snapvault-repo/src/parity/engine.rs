//! The engine parity is encoded with: the GFNI transforms ([`super::gfni`]) on x86-64 CPUs
//! that have GFNI and AVX2, else the crate's `DefaultEngine` (AVX2, SSSE3, NEON or plain).
//! Both compute the same butterflies on the same tables, so the recovery shards, and the
//! parity files, are the same bytes whichever runs.
//!
//! Choosing the GFNI engine also leaves the crate's 8 MiB multiplication table unbuilt
//! (its AVX2 engine fills it when made). Repair decodes on it too (`repair.rs`): a decode
//! is an IFFT and an FFT over the whole band and its recovery positions.

use reed_solomon_simd::engine::{DefaultEngine, Engine, GF_ORDER, GfElement, ShardsRefMut, utils};

/// A Reed-Solomon [`Engine`] for encoding and decoding parity: the fastest this CPU runs.
pub struct ParityEngine(Kind);

enum Kind {
    #[cfg(target_arch = "x86_64")]
    Gfni(super::gfni::Gfni),
    Crate(DefaultEngine),
}

impl ParityEngine {
    /// The GFNI engine if the CPU has it, else the crate's.
    pub fn new() -> ParityEngine {
        #[cfg(target_arch = "x86_64")]
        if let Some(g) = super::gfni::Gfni::detect() {
            return ParityEngine(Kind::Gfni(g));
        }
        ParityEngine::portable()
    }

    /// The crate's engine whatever the CPU (tests and the benchmark compare the two).
    pub fn portable() -> ParityEngine {
        ParityEngine(Kind::Crate(DefaultEngine::new()))
    }

    /// Which engine runs: "gfni" or "crate".
    pub fn name(&self) -> &'static str {
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Kind::Gfni(_) => "gfni",
            Kind::Crate(_) => "crate",
        }
    }
}

/// Shards a band encoder transforms ahead, as a group of them is complete: a power of
/// four, 256 KiB of shards, which stay in the core's cache from their copy to their
/// transform.
const AHEAD: usize = 64;

impl ParityEngine {
    /// The group size a band encoder of `width` positions may transform ahead
    /// ([`ParityEngine::ifft_ahead`]), if this engine can finish such a chunk
    /// ([`ParityEngine::fold`]): the GFNI engine, for widths above [`AHEAD`].
    pub(crate) fn ahead(&self, width: usize) -> Option<usize> {
        let staged = match self.0 {
            #[cfg(target_arch = "x86_64")]
            Kind::Gfni(_) => true,
            Kind::Crate(_) => false,
        };
        (staged && width > AHEAD).then_some(AHEAD)
    }

    /// The first layers of a chunk's IFFT (those within groups of `g` =
    /// [`ParityEngine::ahead`] shards) on the group of shards `at..at + g` of `chunk`
    /// (`len` blocks each), whose transform is skewed by `skew`.
    pub(crate) fn ifft_ahead(
        &self,
        chunk: &mut [[u8; 64]],
        len: usize,
        (at, g, skew): (usize, usize, usize),
    ) {
        let mut data = ShardsRefMut::new(at + g, len, chunk);
        self.ifft(&mut data, at, g, g, skew + at);
    }

    /// The IFFT of `chunk` (`size` shards of `len` blocks, all but the first `truncated`
    /// zero, skewed by `skew`), whose groups of [`ParityEngine::ahead`] shards before
    /// `done` are transformed ahead already: in place, or XORed into `sum` (`chunk` then
    /// left as scratch). The GFNI engine XORs its last layer's results straight into
    /// `sum` (one pass over the two buffers fewer); the crate's transforms, then XORs.
    pub(crate) fn fold(
        &self,
        chunk: &mut [[u8; 64]],
        sum: Option<&mut [[u8; 64]]>,
        len: usize,
        (size, truncated, skew): (usize, usize, usize),
        done: usize,
    ) {
        let mut data = ShardsRefMut::new(size, len, chunk);
        match &self.0 {
            #[cfg(target_arch = "x86_64")]
            Kind::Gfni(g) => {
                let mut out = sum.map(|sum| ShardsRefMut::new(size, len, sum));
                let ahead = (self.ahead(size).unwrap_or(1), done);
                g.ifft(&mut data, (0, size, truncated, skew), ahead, out.as_mut());
            }
            Kind::Crate(e) => {
                debug_assert_eq!(done, 0);
                e.ifft(&mut data, 0, size, truncated, skew);
                if let Some(sum) = sum {
                    utils::xor(&mut sum[..size * len], &chunk[..size * len]);
                }
            }
        }
    }
}

impl Default for ParityEngine {
    fn default() -> ParityEngine {
        ParityEngine::new()
    }
}

impl Engine for ParityEngine {
    fn fft(
        &self,
        data: &mut ShardsRefMut,
        pos: usize,
        size: usize,
        truncated_size: usize,
        skew_delta: usize,
    ) {
        match &self.0 {
            #[cfg(target_arch = "x86_64")]
            Kind::Gfni(g) => g.fft(data, pos, size, truncated_size, skew_delta),
            Kind::Crate(e) => e.fft(data, pos, size, truncated_size, skew_delta),
        }
    }

    fn ifft(
        &self,
        data: &mut ShardsRefMut,
        pos: usize,
        size: usize,
        truncated_size: usize,
        skew_delta: usize,
    ) {
        match &self.0 {
            #[cfg(target_arch = "x86_64")]
            Kind::Gfni(g) => g.ifft(data, (pos, size, truncated_size, skew_delta), (1, 0), None),
            Kind::Crate(e) => e.ifft(data, pos, size, truncated_size, skew_delta),
        }
    }

    fn mul(&self, x: &mut [[u8; 64]], log_m: GfElement) {
        match &self.0 {
            #[cfg(target_arch = "x86_64")]
            Kind::Gfni(g) => g.mul(x, log_m),
            Kind::Crate(e) => e.mul(x, log_m),
        }
    }

    fn eval_poly(erasures: &mut [GfElement; GF_ORDER], truncated_size: usize) {
        DefaultEngine::eval_poly(erasures, truncated_size);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use reed_solomon_simd::engine::{GF_MODULUS, Naive, ShardsRefMut};
    use reed_solomon_simd::rate::{
        DefaultRateDecoder, DefaultRateEncoder, HighRateDecoder, HighRateEncoder, RateDecoder,
        RateEncoder,
    };

    use super::*;

    fn blocks(n: usize, seed: u64) -> Vec<[u8; 64]> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut v = vec![[0u8; 64]; n];
        rng.fill(v.as_flattened_mut());
        v
    }

    #[test]
    fn the_gfni_engine_is_chosen_where_the_cpu_has_it() {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("gfni") && std::is_x86_feature_detected!("avx2") {
            assert_eq!(ParityEngine::new().name(), "gfni");
            return;
        }
        assert_eq!(ParityEngine::new().name(), "crate");
    }

    /// Runs `ifft` (or `fft`) with both engines on the same shards; every byte of the
    /// result, the "garbage" past the truncated size included, must match.
    fn transform_matches(
        fft: bool,
        log_size: u32,
        truncated: usize,
        pos: usize,
        skew_delta: usize,
        len: usize,
        seed: u64,
    ) -> Result<(), TestCaseError> {
        let size = 1usize << log_size;
        let count = pos + size;
        let mut a = blocks(count * len, seed);
        let mut b = a.clone();
        let ours = ParityEngine::new();
        let theirs = DefaultEngine::new();
        let mut sa = ShardsRefMut::new(count, len, &mut a);
        let mut sb = ShardsRefMut::new(count, len, &mut b);
        if fft {
            ours.fft(&mut sa, pos, size, truncated, skew_delta);
            theirs.fft(&mut sb, pos, size, truncated, skew_delta);
        } else {
            ours.ifft(&mut sa, pos, size, truncated, skew_delta);
            theirs.ifft(&mut sb, pos, size, truncated, skew_delta);
        }
        prop_assert!(
            a == b,
            "fft {} size {} truncated {} pos {} skew {}",
            fft,
            size,
            truncated,
            pos,
            skew_delta
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Any transform size (odd and even powers of four), truncation, place and skew.
        #[test]
        fn transforms_equal_the_crates_engine(
            fft: bool, log_size in 0u32..11, t_share in 0.0f64..=1.0, pos in 0usize..5,
            skew in 0usize..60000, len in 1usize..4, seed: u64,
        ) {
            let size = 1usize << log_size;
            let truncated = ((size as f64 * t_share) as usize).clamp(1, size);
            // The skew table has GF_MODULUS entries: indices up to skew + 2 size stay in it.
            let skew_delta = skew.min(GF_MODULUS as usize - 2 * size);
            transform_matches(fft, log_size, truncated, pos, skew_delta, len, seed)?;
        }

        #[test]
        fn multiplying_equals_the_crates_engine(log_m: u16, len in 1usize..5, seed: u64) {
            let mut a = blocks(len, seed);
            let mut b = a.clone();
            ParityEngine::new().mul(&mut a, log_m);
            Naive::new().mul(&mut b, log_m);
            prop_assert!(a == b, "log_m {}", log_m);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The fused fold: the crate's IFFT of the chunk XORed into the sum, on either
        /// engine.
        #[test]
        fn ifft_add_equals_the_crates_ifft_then_xor(
            log_size in 0u32..10, t_share in 0.0f64..=1.0, chunk in 0usize..16, seed: u64,
        ) {
            let size = 1usize << log_size;
            let truncated = ((size as f64 * t_share) as usize).clamp(1, size);
            let skew = (chunk + 1) * size;
            let (mut data, sum) = (blocks(size * 2, seed), blocks(size * 2, !seed));
            data[truncated * 2..].fill([0; 64]);
            let mut want_data = data.clone();
            let mut want = sum.clone();
            DefaultEngine::new().ifft(&mut ShardsRefMut::new(size, 2, &mut want_data), 0, size, truncated, skew);
            utils::xor(&mut want, &want_data);
            for engine in [ParityEngine::new(), ParityEngine::portable()] {
                let (mut d, mut got) = (data.clone(), sum.clone());
                engine.fold(&mut d, Some(&mut got), 2, (size, truncated, skew), 0);
                prop_assert!(got == want, "{} size {} truncated {}", engine.name(), size, truncated);
            }
        }
    }

    /// The band encoder's skews: chunks of `C` at every chunk of a 4096-position band and
    /// the FFT of the sum, at the widths the levels use.
    #[test]
    fn the_band_encoders_transforms_equal_the_crates_engine() {
        for log_c in [0u32, 1, 2, 5, 6, 7, 8, 11] {
            let c = 1usize << log_c;
            for chunk in [0usize, 1, 7, 4096 / c - 1] {
                let skew = (chunk + 1) * c;
                transform_matches(false, log_c, c, 0, skew, 2, skew as u64).unwrap();
                transform_matches(false, log_c, c.div_ceil(3), 0, skew, 2, 9).unwrap();
            }
            transform_matches(true, log_c, c, 0, 0, 2, 1).unwrap();
            transform_matches(true, log_c, (c * 4).div_ceil(5), 0, 0, 2, 2).unwrap();
        }
    }

    /// The crate's encoder and decoder running on this engine: the same recovery as on
    /// its own, and a band decoded from it.
    #[test]
    fn the_crates_codec_runs_on_it() {
        let shard = 256;
        let data: Vec<Vec<u8>> = (0..300u64)
            .map(|i| blocks(shard / 64, i).as_flattened().to_vec())
            .collect();
        let encode = |e: &mut dyn FnMut(&[u8])| {
            for d in &data {
                e(d);
            }
        };
        let mut ours = HighRateEncoder::new(300, 64, shard, ParityEngine::new(), None).unwrap();
        let mut theirs = HighRateEncoder::new(300, 64, shard, DefaultEngine::new(), None).unwrap();
        encode(&mut |d| ours.add_original_shard(d).unwrap());
        encode(&mut |d| theirs.add_original_shard(d).unwrap());
        let (ro, rt) = (ours.encode().unwrap(), theirs.encode().unwrap());
        let rec: Vec<&[u8]> = ro.recovery_iter().collect();
        assert!(rec.iter().copied().eq(rt.recovery_iter()));
        let mut dec = HighRateDecoder::new(300, 64, shard, ParityEngine::new(), None).unwrap();
        for (i, d) in data.iter().enumerate().skip(64) {
            dec.add_original_shard(i, d).unwrap();
        }
        for (j, r) in rec.iter().enumerate() {
            dec.add_recovery_shard(j, r).unwrap();
        }
        let out = dec.decode().unwrap();
        assert_eq!(out.restored_original_iter().count(), 64);
        for (i, s) in out.restored_original_iter() {
            assert_eq!(s, &data[i][..], "shard {i}");
        }
    }

    /// A band's data (`n` shards of `shard` bytes) encoded by the crate's own engine: the
    /// high-rate code of width `c` (versions 3 and 4, `r` of its `c` recovery shards
    /// stored), or the systematic code the crate picks for (`n`, `r`) (versions 1 and 2);
    /// then `erase` of the `n + r` shards erased and decoded by the same kind of decoder on
    /// the crate's engine and on ours. Both must restore the same shards, byte for byte, and
    /// those must be the data.
    fn decodes_alike(
        data: &[Vec<u8>],
        (c, r, systematic): (usize, usize, bool),
        erase: &[usize],
    ) -> Result<(), TestCaseError> {
        let (n, shard) = (data.len(), data[0].len());
        let recovery: Vec<Vec<u8>> = if systematic {
            let mut e = DefaultRateEncoder::new(n, r, shard, DefaultEngine::new(), None).unwrap();
            data.iter().for_each(|d| e.add_original_shard(d).unwrap());
            e.encode()
                .unwrap()
                .recovery_iter()
                .map(<[u8]>::to_vec)
                .collect()
        } else {
            let mut e = HighRateEncoder::new(n, c, shard, DefaultEngine::new(), None).unwrap();
            data.iter().for_each(|d| e.add_original_shard(d).unwrap());
            let all: Vec<Vec<u8>> = e
                .encode()
                .unwrap()
                .recovery_iter()
                .map(<[u8]>::to_vec)
                .collect();
            all[..r].to_vec()
        };
        fn run<D: RateDecoder<E>, E: Engine>(
            mut dec: D,
            data: &[Vec<u8>],
            recovery: &[Vec<u8>],
            erase: &[usize],
        ) -> Vec<(usize, Vec<u8>)> {
            let n = data.len();
            for (i, d) in data.iter().enumerate().filter(|(i, _)| !erase.contains(i)) {
                dec.add_original_shard(i, d).unwrap();
            }
            for (j, s) in recovery
                .iter()
                .enumerate()
                .filter(|(j, _)| !erase.contains(&(n + j)))
            {
                dec.add_recovery_shard(j, s).unwrap();
            }
            let out = dec.decode().unwrap();
            let mut v: Vec<_> = out
                .restored_original_iter()
                .map(|(i, s)| (i, s.to_vec()))
                .collect();
            v.sort();
            v
        }
        let width = if systematic { r } else { c };
        let (theirs, ours) = if systematic {
            (
                run(
                    DefaultRateDecoder::new(n, width, shard, DefaultEngine::new(), None).unwrap(),
                    data,
                    &recovery,
                    erase,
                ),
                run(
                    DefaultRateDecoder::new(n, width, shard, ParityEngine::new(), None).unwrap(),
                    data,
                    &recovery,
                    erase,
                ),
            )
        } else {
            (
                run(
                    HighRateDecoder::new(n, width, shard, DefaultEngine::new(), None).unwrap(),
                    data,
                    &recovery,
                    erase,
                ),
                run(
                    HighRateDecoder::new(n, width, shard, ParityEngine::new(), None).unwrap(),
                    data,
                    &recovery,
                    erase,
                ),
            )
        };
        prop_assert!(
            ours == theirs,
            "n {} c {} r {} systematic {}",
            n,
            c,
            r,
            systematic
        );
        let lost = erase.iter().filter(|&&i| i < n).count();
        prop_assert_eq!(ours.len(), lost);
        for (i, s) in &ours {
            prop_assert!(s == &data[*i], "shard {} restored wrong", i);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Repair's decoders on our engine restore exactly what the crate's engine restores:
        /// any band length, code width and stored recovery, up to `r` of the `n + r` shards
        /// erased, for the punctured high-rate code and the systematic one.
        #[test]
        fn decoding_equals_the_crates_engine(
            n in 1usize..1200, log_c in 0u32..10, r_share in 0.0f64..=1.0,
            systematic: bool, erased_share in 0.0f64..=1.0, seed: u64,
        ) {
            let c = 1usize << log_c;
            let r = ((c as f64 * r_share) as usize).clamp(1, c);
            let data: Vec<Vec<u8>> = (0..n)
                .map(|i| blocks(4, seed ^ i as u64).as_flattened().to_vec())
                .collect();
            let mut rng = StdRng::seed_from_u64(seed);
            let k = ((r as f64 * erased_share) as usize).clamp(1, r);
            let erase = rand::seq::index::sample(&mut rng, n + r, k).into_vec();
            decodes_alike(&data, (c, r, systematic), &erase)?;
        }
    }

    /// The case repair meets most: one lost pack's 94 rows of a full 5 % band of 4096
    /// positions (`C` = 256, 205 recovery shards stored), 4 KiB shards, on both engines.
    #[test]
    fn decoding_a_lost_packs_rows_equals_the_crates_engine() {
        let data: Vec<Vec<u8>> = (0..4096u64)
            .map(|i| blocks(64, i).as_flattened().to_vec())
            .collect();
        let erase: Vec<usize> = (1000..1094).chain([4096 + 3]).collect();
        decodes_alike(&data, (256, 205, false), &erase).unwrap();
        decodes_alike(&data[..300], (0, 40, true), &[1, 5, 299, 300 + 7]).unwrap();
    }
}
