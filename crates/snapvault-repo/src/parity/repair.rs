//! Finding and rebuilding damaged members of a group (format.md §15.4): every shard is
//! compared with its recorded hash, mismatches and missing bytes become erasures, each band
//! with erasures is decoded if it has enough shards left, and a rebuilt member is accepted
//! only when its BLAKE3 (and content-derived name) match what the parity recorded. A member
//! whose every shard matches is intact (its shard hashes are its checksum).

use reed_solomon_simd::rate::{DefaultRateDecoder, HighRateDecoder, RateDecoder};

use super::encode::codec;
use super::engine::ParityEngine;
use super::header::ParityHeader;
use super::{SHARD, par_bands};
use crate::error::Result;

/// Where a group's bytes come from. `None` means unreadable or missing; a shorter result
/// than asked means the file ends early. Both only erase shards: they are never errors.
pub trait GroupSource {
    /// The member's current size, `None` when it is missing or cannot be listed.
    fn member_size(&mut self, member: usize) -> Option<u64>;
    fn read_member(&mut self, member: usize, offset: u64, len: usize) -> Option<Vec<u8>>;
    /// `shards` recovery shards starting at recovery shard `first` (counted over all bands).
    fn read_recovery(&mut self, first: u64, shards: usize) -> Option<Vec<u8>>;
}

/// A data shard of a band in code order: member, row, and where its intact bytes are
/// (part of the band read, offset in it); `None` when damaged.
type BandShard = (usize, u64, Option<(usize, usize)>);

/// What the parity says about one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberState {
    Intact,
    /// Damaged and rebuilt exactly: `bytes` is the member as the parity recorded it.
    Repaired {
        damaged_shards: usize,
        bytes: Vec<u8>,
    },
    /// Damaged beyond what the parity covers (or rebuilt bytes failed the final check).
    Lost {
        damaged_shards: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairReport {
    pub members: Vec<MemberState>,
    /// Damaged recovery shards of the parity file itself (it should be rewritten).
    pub recovery_damaged: usize,
    /// Bands with more damage than their recovery shards cover.
    pub bands_lost: usize,
}

impl RepairReport {
    pub fn is_clean(&self) -> bool {
        self.recovery_damaged == 0 && self.members.iter().all(|m| *m == MemberState::Intact)
    }
}

/// Check every member and shard of the group of `h` against its hashes and rebuild what
/// the recovery shards allow.
pub fn repair(h: &ParityHeader, src: &mut (impl GroupSource + Send)) -> Result<RepairReport> {
    repair_known(h, src, &[])
}

/// [`repair`], told which members are known to be exactly as the parity recorded them
/// (`known[i]`: e.g. a pack that `check` has just read whole and whose BLAKE3 matched its
/// name and the parity's record). Those are read only for the bands that need decoding, so
/// a clean group costs one read of each member, not two.
pub fn repair_known(
    h: &ParityHeader,
    src: &mut (impl GroupSource + Send),
    known: &[bool],
) -> Result<RepairReport> {
    let n = h.members.len();
    let mut size_ok: Vec<bool> = (0..n)
        .map(|i| src.member_size(i) == h.members.get(i).map(|m| m.size))
        .collect();
    let known: Vec<bool> = (0..n)
        .map(|i| size_ok[i] && known.get(i).copied().unwrap_or(false))
        .collect();
    let src = std::sync::Mutex::new(src);
    let bands = par_bands(h.bands.len(), Decoders::default, |decoder, b| {
        repair_band(h, b, &known, &src, decoder)
    })?;
    let src = src.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut damaged = vec![0usize; n];
    let mut lost = vec![false; n];
    // Rebuilt shards per member: (row, bytes).
    let mut rebuilt: Vec<Vec<(u64, Vec<u8>)>> = vec![Vec::new(); n];
    let mut recovery_damaged = 0;
    let mut bands_lost = 0;
    for band in bands {
        recovery_damaged += band.recovery_damaged;
        bands_lost += usize::from(band.lost);
        for i in band.short {
            size_ok[i] = false;
        }
        for (i, d) in band.damaged {
            damaged[i] += d;
        }
        for i in band.lost_members {
            lost[i] = true;
        }
        for (i, row, shard) in band.rebuilt {
            rebuilt[i].push((row, shard));
        }
    }
    let mut members = Vec::with_capacity(n);
    for (i, m) in h.members.iter().enumerate() {
        let named_ok = !m.kind.content_named() || hex::encode(m.hash) == m.name;
        let state = if damaged[i] == 0 && size_ok[i] {
            MemberState::Intact
        } else if lost[i] || !named_ok {
            MemberState::Lost {
                damaged_shards: damaged[i],
            }
        } else {
            assemble(
                m.size,
                &m.hash,
                i,
                std::mem::take(&mut rebuilt[i]),
                &mut *src,
                damaged[i],
            )
        };
        members.push(state);
    }
    Ok(RepairReport {
        members,
        recovery_damaged,
        bands_lost,
    })
}

/// What one band found and rebuilt.
#[derive(Default)]
struct BandOutcome {
    /// Damaged data shards per member.
    damaged: Vec<(usize, usize)>,
    /// Members that read shorter than recorded.
    short: Vec<usize>,
    /// Members with a damaged shard the band could not rebuild.
    lost_members: Vec<usize>,
    rebuilt: Vec<(usize, u64, Vec<u8>)>,
    recovery_damaged: usize,
    lost: bool,
}

/// Read member `i`'s rows of band `b` (empty when it cannot be read).
fn read_rows<S: GroupSource>(
    h: &ParityHeader,
    b: usize,
    i: usize,
    src: &std::sync::Mutex<&mut S>,
) -> Vec<u8> {
    let rows = h.band_range(b, i);
    let Some(m) = h.members.get(i) else {
        return Vec::new();
    };
    let off = rows.start * SHARD as u64;
    let len = (m.size - off).min((rows.end - rows.start) * SHARD as u64) as usize;
    let mut src = src.lock().unwrap_or_else(|e| e.into_inner());
    src.read_member(i, off, len).unwrap_or_default()
}

fn repair_band<S: GroupSource>(
    h: &ParityHeader,
    b: usize,
    known: &[bool],
    src: &std::sync::Mutex<&mut S>,
    decoders: &mut Decoders,
) -> Result<BandOutcome> {
    let mut out = BandOutcome::default();
    let Some(band) = h.bands.get(b) else {
        return Ok(out);
    };
    let present: Vec<usize> = (0..h.members.len())
        .filter(|&i| !h.band_range(b, i).is_empty())
        .collect();
    // Each member's rows of the band, as they read now: (member, bytes, their shards
    // checked). Members known intact are read only if the band needs decoding.
    let mut parts: Vec<(usize, Vec<u8>, Vec<bool>)> = Vec::with_capacity(present.len());
    let mut check = |i: usize, bytes: Vec<u8>, out: &mut BandOutcome| {
        let m = &h.members[i];
        let rows = h.band_range(b, i);
        let want = ((m.size - rows.start * SHARD as u64)
            .min((rows.end - rows.start) * SHARD as u64)) as usize;
        if bytes.len() != want {
            out.short.push(i);
        }
        let ok: Vec<bool> = rows
            .enumerate()
            .map(|(k, row)| {
                let expected_len = (m.size - row * SHARD as u64).min(SHARD as u64) as usize;
                bytes
                    .get(k * SHARD..k * SHARD + expected_len)
                    .is_some_and(|s| Some(&h.shard_hash(s)) == m.shard_hashes.get(row as usize))
            })
            .collect();
        let bad = ok.iter().filter(|o| !**o).count();
        if bad > 0 {
            out.damaged.push((i, bad));
        }
        parts.push((i, bytes, ok));
    };
    for &i in present.iter().filter(|&&i| !known[i]) {
        let bytes = read_rows(h, b, i, src);
        check(i, bytes, &mut out);
    }
    let first = h.recovery_before(b);
    let n_rec = band.recovery_hashes.len();
    let rec = src
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .read_recovery(first, n_rec)
        .unwrap_or_default();
    let recovery: Vec<Option<&[u8]>> = band
        .recovery_hashes
        .iter()
        .enumerate()
        .map(|(j, want)| {
            rec.get(j * SHARD..(j + 1) * SHARD)
                .filter(|s| h.shard_hash(s) == *want)
        })
        .collect();
    out.recovery_damaged = recovery.iter().filter(|r| r.is_none()).count();
    if out.damaged.is_empty() {
        return Ok(out);
    }
    // Damage to decode: the members known intact are needed too (and checked like the rest,
    // so a file that changed since is erased, never fed to the code as good).
    for &i in present.iter().filter(|&&i| known[i]) {
        let bytes = read_rows(h, b, i, src);
        check(i, bytes, &mut out);
    }
    // The band's data shards by codeword position: (member, row, part and offset if
    // intact); positions no member fills (version 4) are absent, coded as zeros.
    let at = h.band_positions(b);
    let len = h.band_len(b);
    let mut shards: Vec<Option<BandShard>> = vec![None; len];
    for (p, (i, _, ok)) in parts.iter().enumerate() {
        for (k, row) in h.band_range(b, *i).enumerate() {
            let good = ok.get(k).copied().unwrap_or(false);
            if let Some(slot) = at.get(*i).and_then(|a| shards.get_mut(a + k)) {
                *slot = Some((*i, row, good.then_some((p, k * SHARD))));
            }
        }
    }
    let missing = shards.iter().flatten().filter(|s| s.2.is_none()).count();
    let have = len - missing + recovery.iter().filter(|r| r.is_some()).count();
    if have < len {
        out.lost = true;
        for s in shards.iter().flatten().filter(|s| s.2.is_none()) {
            out.lost_members.push(s.0);
        }
        return Ok(out);
    }
    let dec = decoders.get(h.code_width, len, n_rec)?;
    let mut pad = vec![0u8; SHARD];
    for (idx, s) in shards.iter().enumerate() {
        let Some(s) = s else {
            pad.fill(0);
            dec.add_original_shard(idx, &pad)?;
            continue;
        };
        let Some((p, at)) = s.2 else { continue };
        let bytes = parts.get(p).map(|x| &x.1[..]).unwrap_or_default();
        let shard = bytes
            .get(at..(at + SHARD).min(bytes.len()))
            .unwrap_or_default();
        if shard.len() == SHARD {
            dec.add_original_shard(idx, shard)?;
        } else {
            pad.fill(0);
            pad[..shard.len()].copy_from_slice(shard);
            dec.add_original_shard(idx, &pad)?;
        }
    }
    for (j, r) in recovery.iter().enumerate() {
        if let Some(r) = r {
            dec.add_recovery_shard(j, r)?;
        }
    }
    for (idx, shard) in dec.restored()? {
        let Some(&Some((i, row, _))) = shards.get(idx) else {
            continue;
        };
        let want = h
            .members
            .get(i)
            .and_then(|m| m.shard_hashes.get(row as usize));
        if Some(&h.shard_hash(&shard)) == want {
            out.rebuilt.push((i, row, shard));
        } else {
            out.lost_members.push(i);
        }
    }
    Ok(out)
}

/// A band-decoding thread's decoders, made on first use and reused for its next bands.
/// They run on [`ParityEngine`] (the GFNI transforms where the CPU has them), like the
/// encoders: the same butterflies on the same tables as the crate's own engine, so the
/// same restored bytes (test `engine::tests::decoding_equals_the_crates_engine`), for a
/// decode's IFFT and FFT over up to 8192 shards per damaged band.
#[derive(Default)]
struct Decoders {
    /// Versions 1 and 2: the crate's systematic code, low or high rate as it picks by the
    /// counts (what `ReedSolomonDecoder` is, on the crate's engine).
    systematic: Option<DefaultRateDecoder<ParityEngine>>,
    high_rate: Option<HighRateDecoder<ParityEngine>>,
}

impl Decoders {
    /// The decoder of a band of `data` shards with `stored` recovery shards: versions 3 and
    /// 4 (`width` = `C`) are always the high-rate code with `C` recovery positions, those
    /// past the stored ones missing; versions 1 and 2 the systematic code the crate picks.
    fn get(&mut self, width: Option<u32>, data: usize, stored: usize) -> Result<&mut dyn Decode> {
        Ok(match width {
            Some(c) => {
                let c = c as usize;
                if let Some(d) = self.high_rate.as_mut() {
                    d.reset(data, c, SHARD).map_err(codec)?;
                } else {
                    self.high_rate = Some(
                        HighRateDecoder::new(data, c, SHARD, ParityEngine::new(), None)
                            .map_err(codec)?,
                    );
                }
                self.high_rate.as_mut().map(|d| d as &mut dyn Decode)
            }
            None => {
                if let Some(d) = self.systematic.as_mut() {
                    d.reset(data, stored, SHARD).map_err(codec)?;
                } else {
                    self.systematic = Some(
                        DefaultRateDecoder::new(data, stored, SHARD, ParityEngine::new(), None)
                            .map_err(codec)?,
                    );
                }
                self.systematic.as_mut().map(|d| d as &mut dyn Decode)
            }
        }
        .ok_or_else(|| crate::error::ParityError::Codec("no decoder".into()))?)
    }
}

/// The decoding calls both decoders share.
trait Decode {
    fn add_original_shard(&mut self, i: usize, s: &[u8]) -> Result<()>;
    fn add_recovery_shard(&mut self, j: usize, s: &[u8]) -> Result<()>;
    /// The restored data shards: (index, bytes).
    fn restored(&mut self) -> Result<Vec<(usize, Vec<u8>)>>;
}

impl<D: RateDecoder<ParityEngine>> Decode for D {
    fn add_original_shard(&mut self, i: usize, s: &[u8]) -> Result<()> {
        RateDecoder::add_original_shard(self, i, s).map_err(codec)
    }
    fn add_recovery_shard(&mut self, j: usize, s: &[u8]) -> Result<()> {
        RateDecoder::add_recovery_shard(self, j, s).map_err(codec)
    }
    fn restored(&mut self) -> Result<Vec<(usize, Vec<u8>)>> {
        let r = self.decode().map_err(codec)?;
        Ok(r.restored_original_iter()
            .map(|(i, s)| (i, s.to_vec()))
            .collect())
    }
}

/// The member's bytes: what still reads, with the rebuilt shards laid over it, accepted
/// only if the whole matches the recorded BLAKE3.
fn assemble(
    size: u64,
    hash: &[u8; 32],
    i: usize,
    rebuilt: Vec<(u64, Vec<u8>)>,
    src: &mut impl GroupSource,
    damaged: usize,
) -> MemberState {
    let lost = MemberState::Lost {
        damaged_shards: damaged,
    };
    let Ok(len) = usize::try_from(size) else {
        return lost;
    };
    let mut buf = src.read_member(i, 0, len).unwrap_or_default();
    buf.resize(len, 0);
    for (row, shard) in rebuilt {
        let start = row as usize * SHARD;
        let end = (start + SHARD).min(len);
        if let (Some(dst), Some(s)) = (
            buf.get_mut(start..end),
            shard.get(..end.saturating_sub(start)),
        ) {
            dst.copy_from_slice(s);
        }
    }
    if blake3::hash(&buf).as_bytes() == hash {
        MemberState::Repaired {
            damaged_shards: damaged,
            bytes: buf,
        }
    } else {
        lost
    }
}
