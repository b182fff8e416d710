//! Computing a group's parity file (format.md §15.1, §15.3): band by band, each member's
//! rows of the band read by range, hashed and fed to the encoder, so memory holds one band
//! per core (bands are coded side by side on every core: independent codewords). Bytes
//! already in memory (the packs a command has just written) are fed by reference: no copy.

use std::borrow::Cow;

use reed_solomon_simd::ReedSolomonEncoder;

use super::header::{Band, Locator, Member, MemberKind, ParityHeader};
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

/// Recovery shards of a band with `data` shards whose widest member has `widest` rows:
/// the level's share, and never fewer than one member's rows (so a whole lost member is
/// always rebuilt).
pub fn recovery_count(percent: u8, data: usize, widest: usize) -> usize {
    (usize::from(percent) * data)
        .div_ceil(100)
        .max(widest)
        .clamp(1, data.clamp(1, MAX_RECOVERY))
}

/// The parity file of `members` at `percent` %: returns its name and bytes. `read(i,
/// offset, len)` must return exactly `len` bytes of member `i` at `offset`: read (a
/// `Vec`) or borrowed from memory that outlives the call (a slice, not copied).
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
    let band_rows = (MAX_BAND_SHARDS / members.len()).max(1) as u32;
    encode_rows(
        Locator::CURRENT,
        percent,
        band_rows,
        supersedes,
        members,
        read,
    )
}

/// [`encode`] with `band_rows` rows of each member per band (tests use small bands) and
/// the shard hashes of `locator` (tests write version 1 files too).
pub(crate) fn encode_rows<'a, B: Into<Cow<'a, [u8]>>>(
    locator: Locator,
    percent: u8,
    band_rows: u32,
    supersedes: Vec<Id>,
    members: &[MemberSpec],
    mut read: impl FnMut(usize, u64, usize) -> Result<B> + Send,
) -> Result<(Id, Vec<u8>)> {
    if let Some(m) = members.iter().find(|m| m.size > MAX_MEMBER_SIZE) {
        return Err(ParityError::MemberTooLarge { size: m.size }.into());
    }
    let mut h = ParityHeader {
        locator,
        percent,
        band_rows,
        supersedes,
        members: members
            .iter()
            .map(|m| Member {
                kind: m.kind,
                name: m.name.clone(),
                size: m.size,
                hash: [0; 32],
                shard_hashes: Vec::new(),
            })
            .collect(),
        bands: Vec::new(),
    };
    let max_rows = members.iter().map(|m| rows_of(m.size)).max().unwrap_or(0);
    let n_bands = max_rows.div_ceil(u64::from(band_rows)) as usize;
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
    let bands = par_bands(
        n_bands,
        || None::<ReedSolomonEncoder>,
        |encoder, b| encode_band(&h, members, b, &hashed, &read, encoder),
    )?;
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
    let header = h.to_bytes();
    let hl = (header.len() as u32).to_le_bytes();
    let shards: usize = recovery.iter().map(Vec::len).sum();
    let mut file = Vec::with_capacity(8 + 2 * header.len() + shards);
    file.extend_from_slice(&hl);
    file.extend_from_slice(&header);
    for band in recovery {
        file.extend_from_slice(&band);
    }
    file.extend_from_slice(&header);
    file.extend_from_slice(&hl);
    Ok((Id::hash_of(&header), file))
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
    encoder: &mut Option<ReedSolomonEncoder>,
) -> Result<EncodedBand<'a>> {
    let data = h.band_data_count(b);
    let widest = (0..members.len())
        .map(|i| {
            let r = h.band_range(b, i);
            (r.end - r.start) as usize
        })
        .max()
        .unwrap_or(0);
    let n_rec = recovery_count(h.percent, data, widest);
    let enc = match encoder.as_mut() {
        Some(e) => {
            e.reset(data, n_rec, SHARD).map_err(codec)?;
            e
        }
        None => encoder.insert(ReedSolomonEncoder::new(data, n_rec, SHARD).map_err(codec)?),
    };
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
    let mut pad = vec![0u8; SHARD];
    let mut out = Vec::with_capacity(parts.len());
    for (i, bytes) in parts {
        let hashes = bytes.chunks(SHARD).map(|s| h.shard_hash(s)).collect();
        for shard in bytes.chunks(SHARD) {
            if shard.len() == SHARD {
                enc.add_original_shard(shard).map_err(codec)?;
            } else {
                pad.fill(0);
                pad[..shard.len()].copy_from_slice(shard);
                enc.add_original_shard(&pad).map_err(codec)?;
            }
        }
        out.push((i, hashes, hashed[i].then_some(bytes)));
    }
    let coded = enc.encode().map_err(codec)?;
    let mut recovery = Vec::with_capacity(n_rec * SHARD);
    let mut recovery_hashes = Vec::with_capacity(n_rec);
    for shard in coded.recovery_iter() {
        recovery_hashes.push(h.shard_hash(shard));
        recovery.extend_from_slice(shard);
    }
    Ok(EncodedBand {
        members: out,
        recovery,
        recovery_hashes,
    })
}

pub(super) fn codec(e: reed_solomon_simd::Error) -> RepoError {
    ParityError::Codec(e.to_string()).into()
}
