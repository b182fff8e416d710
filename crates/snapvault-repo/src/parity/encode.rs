//! Computing a group's parity file (format.md §15.1, §15.3): band by band, each member's
//! rows of the band read by range, hashed and fed to the encoder, so memory holds one band
//! per core (bands are coded side by side on every core: independent codewords). Bytes
//! already in memory (the packs a command has just written) are fed by reference: no copy.

use std::borrow::Cow;

use reed_solomon_simd::ReedSolomonEncoder;

use super::chunked::BandEncoder;
use super::engine::ParityEngine;
use super::layout::{self, group_packs};

use super::header::{Band, Locator, Member, MemberKind, ParityHeader, Place};
use super::{
    MAX_BAND_SHARDS, MAX_MEMBER_SIZE, MAX_MEMBERS, MAX_PERCENT, MAX_RECOVERY, SHARD, par_bands,
    rows_of,
};
use crate::error::{ParityError, RepoError, Result};
use crate::format::id::Id;

/// A member to be covered: what it is, its name and its size now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSpec {
    pub kind: MemberKind,
    pub name: String,
    pub size: u64,
}

impl MemberSpec {
    /// Specs of a group as `plan_groups` and the stores list it: (kind, name, size).
    pub fn from_listed(members: &[(MemberKind, String, u64)]) -> Vec<MemberSpec> {
        members
            .iter()
            .map(|(kind, name, size)| MemberSpec {
                kind: *kind,
                name: name.clone(),
                size: *size,
            })
            .collect()
    }
}

/// Recovery shards of a band with `data` shards whose widest member has `widest` rows:
/// the level's share, and never fewer than one member's rows (so a whole lost member is
/// always rebuilt).
pub fn recovery_count(percent: u8, data: usize, widest: usize) -> usize {
    (usize::from(percent) * data)
        .div_ceil(100)
        .max(widest)
        .clamp(1, data.clamp(1, MAX_RECOVERY))
}

/// Member slots per band for a group of small files (version 4): one per member, at least
/// 2*K*, as the slots of pack groups were when every member had `w` rows of every band; a
/// pack group is spread instead ([`layout::spread`]).
pub fn band_slots(percent: u8, members: usize) -> usize {
    members
        .max(2 * group_packs(percent))
        .clamp(1, MAX_BAND_SHARDS)
}

/// Rows of each member per band (`w`) for a group of `members` small files (102 at 5 %
/// for up to 2*K* members; larger groups get fewer).
pub fn band_rows(percent: u8, members: usize) -> u32 {
    (MAX_BAND_SHARDS / band_slots(percent, members)).max(1) as u32
}

/// How a band's recovery shards are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    /// Versions 1 and 2 (tests write them; readers read them): the systematic code with
    /// exactly `R_b` recovery shards, locator hashes of this kind.
    #[cfg_attr(not(test), allow(dead_code))]
    Systematic(Locator),
    /// Version 3 (tests write it; readers read it): the high-rate code with this many
    /// recovery positions, or, `None`, the smallest power of two that holds every band's
    /// `R_b`; the first `R_b` are stored; members follow each other in a band.
    #[cfg_attr(not(test), allow(dead_code))]
    HighRate(Option<usize>),
    /// Version 4: [`Coding::HighRate`] with each member at its own place in every band.
    Placed(Option<usize>),
}

/// Where members' rows go in the bands: the band's positions `L` and each member's place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub len: u32,
    pub places: Vec<Place>,
}

impl Geometry {
    /// `w` rows of every member per band, member `i` in slot `i` of [`band_slots`] (small
    /// files; versions 1 to 3 with `placed` false: members follow each other, `L` = `w`).
    pub fn slots(percent: u8, members: usize, w: u32, placed: bool) -> Result<Geometry> {
        let slots = band_slots(percent, members) as u32;
        if placed && w.saturating_mul(slots) as usize > MAX_BAND_SHARDS {
            return Err(ParityError::Codec(format!("{slots} slots of {w} rows")).into());
        }
        Ok(Geometry {
            len: if placed { w.saturating_mul(slots) } else { w },
            places: (0u32..members as u32)
                .map(|i| Place {
                    at: if placed { i * w } else { 0 },
                    per_band: w,
                })
                .collect(),
        })
    }
}

/// The parity file of `members` at `percent` %: returns its name and bytes. `read(i,
/// offset, len)` must return exactly `len` bytes of member `i` at `offset`: read (a
/// `Vec`) or borrowed from memory that outlives the call (a slice, not copied). A group of
/// packs is spread over the bands ([`layout::spread`]); small files take slots of `w` rows.
pub fn encode<'a, B: Into<Cow<'a, [u8]>>>(
    percent: u8,
    supersedes: Vec<Id>,
    members: &[MemberSpec],
    read: impl FnMut(usize, u64, usize) -> Result<B> + Send,
) -> Result<(Id, Vec<u8>)> {
    if percent == 0 || percent > MAX_PERCENT {
        return Err(ParityError::Level {
            percent,
            max: MAX_PERCENT,
        }
        .into());
    }
    if members.is_empty() || members.len() > MAX_MEMBERS {
        return Err(ParityError::Members {
            count: members.len(),
            max: MAX_MEMBERS,
        }
        .into());
    }
    let geometry = if members.iter().all(|m| m.kind == MemberKind::Pack) {
        let rows: Vec<u64> = members.iter().map(|m| rows_of(m.size)).collect();
        let (len, places) = layout::spread(&rows);
        Geometry { len, places }
    } else {
        Geometry::slots(
            percent,
            members.len(),
            band_rows(percent, members.len()),
            true,
        )?
    };
    encode_with(
        Coding::Placed(None),
        percent,
        geometry,
        supersedes,
        members,
        read,
    )
}

/// [`encode`] with `band_rows` rows of each member per band (tests use small bands) and
/// the given coding (tests write versions 1 to 3 too).
#[cfg(test)]
pub(crate) fn encode_rows<'a, B: Into<Cow<'a, [u8]>>>(
    coding: Coding,
    percent: u8,
    band_rows: u32,
    supersedes: Vec<Id>,
    members: &[MemberSpec],
    read: impl FnMut(usize, u64, usize) -> Result<B> + Send,
) -> Result<(Id, Vec<u8>)> {
    let placed = matches!(coding, Coding::Placed(_));
    let geometry = Geometry::slots(percent, members.len(), band_rows, placed)?;
    encode_with(coding, percent, geometry, supersedes, members, read)
}

/// [`encode`] with the given coding and places (`geometry.places` one per member; its
/// `len` and places used as they are only by [`Coding::Placed`]).
pub(crate) fn encode_with<'a, B: Into<Cow<'a, [u8]>>>(
    coding: Coding,
    percent: u8,
    geometry: Geometry,
    supersedes: Vec<Id>,
    members: &[MemberSpec],
    mut read: impl FnMut(usize, u64, usize) -> Result<B> + Send,
) -> Result<(Id, Vec<u8>)> {
    if let Some(m) = members.iter().find(|m| m.size > MAX_MEMBER_SIZE) {
        return Err(ParityError::MemberTooLarge { size: m.size }.into());
    }
    if geometry.places.len() != members.len() {
        return Err(ParityError::Codec("a place for every member".into()).into());
    }
    let (locator, width, placed) = match coding {
        Coding::Systematic(l) => (l, None, false),
        Coding::HighRate(w) => (Locator::Crc64, Some(w), false),
        Coding::Placed(w) => (Locator::Crc64, Some(w), true),
    };
    let mut h = ParityHeader {
        locator,
        percent,
        band_rows: geometry.len,
        code_width: None,
        placed,
        supersedes,
        members: members
            .iter()
            .zip(geometry.places)
            .map(|(m, place)| Member {
                kind: m.kind,
                name: m.name.clone(),
                size: m.size,
                hash: [0; 32],
                shard_hashes: Vec::new(),
                place,
            })
            .collect(),
        bands: Vec::new(),
    };
    let n_bands = h
        .members
        .iter()
        .map(|m| rows_of(m.size).div_ceil(u64::from(m.place.per_band.max(1))))
        .max()
        .unwrap_or(0) as usize;
    if let Some(width) = width {
        let most = (0..n_bands)
            .map(|b| band_recovery(&h, b))
            .max()
            .unwrap_or(1);
        let c = width.unwrap_or(most.next_power_of_two());
        if !c.is_power_of_two() || c < most || c > MAX_RECOVERY {
            return Err(ParityError::Codec(format!("code width {c} for {most} recovery")).into());
        }
        h.code_width = Some(c as u32);
    }
    // Packs, index files and snapshots are named by their BLAKE3: no need to hash them again
    // (if the bytes read differ from the name, a repair from this parity ends as "lost").
    let mut hashers: Vec<Option<blake3::Hasher>> = members
        .iter()
        .zip(h.members.iter_mut())
        .map(|(spec, m)| match spec.name.parse::<Id>() {
            Ok(id) if spec.kind.content_named() => {
                m.hash = id.0;
                None
            }
            _ => Some(blake3::Hasher::new()),
        })
        .collect();
    let read = std::sync::Mutex::new(
        move |i: usize, off: u64, len: usize| -> Result<Cow<'a, [u8]>> {
            read(i, off, len).map(Into::into)
        },
    );
    let hashed: Vec<bool> = hashers.iter().map(Option::is_some).collect();
    let bands = par_bands(n_bands, Coders::default, |encoder, b| {
        encode_band(&h, members, b, &hashed, &read, encoder)
    })?;
    // Each band's recovery shards go straight into the file once the header is known.
    let mut recovery = Vec::with_capacity(bands.len());
    for band in bands {
        for (i, hashes, bytes) in band.members {
            h.members[i].shard_hashes.extend(hashes);
            if let (Some(hasher), Some(bytes)) = (hashers[i].as_mut(), bytes) {
                hasher.update(&bytes);
            }
        }
        recovery.push(band.recovery);
        h.bands.push(Band {
            recovery_hashes: band.recovery_hashes,
        });
    }
    for (m, hasher) in h.members.iter_mut().zip(hashers) {
        if let Some(hasher) = hasher {
            m.hash = *hasher.finalize().as_bytes();
        }
    }
    Ok(parity_file(&h, recovery.iter().map(Vec::as_slice)))
}

/// A parity file's name and bytes: both header copies around the recovery shards.
pub(crate) fn parity_file<'b>(
    h: &ParityHeader,
    recovery: impl Iterator<Item = &'b [u8]> + Clone,
) -> (Id, Vec<u8>) {
    let header = h.to_bytes();
    let hl = (header.len() as u32).to_le_bytes();
    let shards: usize = recovery.clone().map(<[u8]>::len).sum();
    let mut file = Vec::with_capacity(8 + 2 * header.len() + shards);
    file.extend_from_slice(&hl);
    file.extend_from_slice(&header);
    for band in recovery {
        file.extend_from_slice(band);
    }
    file.extend_from_slice(&header);
    file.extend_from_slice(&hl);
    (Id::hash_of(&header), file)
}

/// `R_b` of band `b` of `h` (its members' sizes known).
fn band_recovery(h: &ParityHeader, b: usize) -> usize {
    let widest = (0..h.members.len())
        .map(|i| {
            let r = h.band_range(b, i);
            (r.end - r.start) as usize
        })
        .max()
        .unwrap_or(0);
    recovery_count(h.percent, h.band_data_count(b), widest)
}

/// A band-coding thread's codec, made on first use and reused for its next bands.
#[derive(Default)]
struct Coders {
    systematic: Option<ReedSolomonEncoder>,
    engine: Option<ParityEngine>,
}

/// One band's share of a parity file: per member (index, shard hashes, the bytes when the
/// member's whole-file BLAKE3 is computed here), the recovery shards and their hashes.
struct EncodedBand<'a> {
    members: Vec<BandMember<'a>>,
    recovery: Vec<u8>,
    recovery_hashes: Vec<[u8; 8]>,
}

/// A member's part of a band: index, shard hashes, bytes (when hashed whole here).
type BandMember<'a> = (usize, Vec<[u8; 8]>, Option<Cow<'a, [u8]>>);

type Reader<'a, F> = &'a std::sync::Mutex<F>;

fn encode_band<'a, F: FnMut(usize, u64, usize) -> Result<Cow<'a, [u8]>>>(
    h: &ParityHeader,
    members: &[MemberSpec],
    b: usize,
    hashed: &[bool],
    read: Reader<'_, F>,
    coders: &mut Coders,
) -> Result<EncodedBand<'a>> {
    let data = h.band_data_count(b);
    let n_rec = band_recovery(h, b);
    let mut parts = Vec::with_capacity(members.len());
    for (i, m) in members.iter().enumerate() {
        let rows = h.band_range(b, i);
        if rows.is_empty() {
            continue;
        }
        let off = rows.start * SHARD as u64;
        let len = (m.size - off).min((rows.end - rows.start) * SHARD as u64) as usize;
        let bytes = (read.lock().unwrap_or_else(|e| e.into_inner()))(i, off, len)?;
        if bytes.len() != len {
            return Err(RepoError::corrupt(
                format!("{} {}", m.kind.file_kind().name(), m.name),
                "changed size while its parity was computed",
            ));
        }
        parts.push((i, bytes));
    }
    let mut out = Vec::with_capacity(parts.len());
    for (i, bytes) in &parts {
        let hashes = bytes.chunks(SHARD).map(|s| h.shard_hash(s)).collect();
        out.push((*i, hashes));
    }
    let shards = parts.iter().flat_map(|(_, bytes)| bytes.chunks(SHARD));
    let recovery = match h.code_width {
        Some(c) => {
            let engine = coders.engine.get_or_insert_with(ParityEngine::new);
            let mut enc = BandEncoder::new(c as usize);
            let at = h.band_positions(b);
            for (i, bytes) in &parts {
                for (k, shard) in bytes.chunks(SHARD).enumerate() {
                    enc.add_at(engine, at[*i] + k, shard);
                }
            }
            enc.finish(engine, n_rec).to_vec()
        }
        None => {
            let enc = match coders.systematic.as_mut() {
                Some(e) => {
                    e.reset(data, n_rec, SHARD).map_err(codec)?;
                    e
                }
                None => coders
                    .systematic
                    .insert(ReedSolomonEncoder::new(data, n_rec, SHARD).map_err(codec)?),
            };
            let mut pad = vec![0u8; SHARD];
            for shard in shards {
                if shard.len() == SHARD {
                    enc.add_original_shard(shard).map_err(codec)?;
                } else {
                    pad.fill(0);
                    pad[..shard.len()].copy_from_slice(shard);
                    enc.add_original_shard(&pad).map_err(codec)?;
                }
            }
            enc.encode()
                .map_err(codec)?
                .recovery_iter()
                .flatten()
                .copied()
                .collect()
        }
    };
    let recovery_hashes = recovery.chunks(SHARD).map(|s| h.shard_hash(s)).collect();
    let out = out
        .into_iter()
        .zip(parts)
        .map(|((i, hashes), (_, bytes))| (i, hashes, hashed[i].then_some(bytes)))
        .collect();
    Ok(EncodedBand {
        members: out,
        recovery,
        recovery_hashes,
    })
}

pub(super) fn codec(e: reed_solomon_simd::Error) -> RepoError {
    ParityError::Codec(e.to_string()).into()
}
