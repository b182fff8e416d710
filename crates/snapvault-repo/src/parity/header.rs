//! The parity file's header (format.md §15.3): what a group's parity was computed over —
//! each member's name, size, BLAKE3 and shard hashes — and each band's recovery-shard
//! hashes. Decoding bounds every count by the bytes present and the format's caps.

use std::ops::Range;

use super::{
    MAX_BAND_SHARDS, MAX_HEADER, MAX_MEMBER_SIZE, MAX_MEMBERS, MAX_PERCENT, MAX_RECOVERY, SHARD,
    rows_of,
};
use crate::error::{RepoError, Result};
use crate::format::id::Id;
use crate::storage::FileKind;

const MAGIC: &[u8; 4] = b"SVPR";

/// How a shard's 8-byte locator hash is computed; the header's version says which.
/// Version 1 (BLAKE3) is still read; new parity files are version 2 (CRC-64), which
/// costs a tenth of the CPU (format.md §15.4 argues why a CRC is enough to locate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locator {
    /// Version 1: the first 8 bytes of BLAKE3 of the zero-padded shard.
    Blake3 = 1,
    /// Version 2: CRC-64/NVME of the zero-padded shard, little-endian.
    Crc64 = 2,
}

impl Locator {
    /// What new parity files use.
    pub const CURRENT: Locator = Locator::Crc64;

    fn from_version(v: u8) -> Option<Locator> {
        match v {
            1 => Some(Locator::Blake3),
            2 => Some(Locator::Crc64),
            _ => None,
        }
    }

    /// The locator hash of `shard` zero-padded to [`SHARD`] bytes.
    pub fn shard_hash(self, shard: &[u8]) -> [u8; 8] {
        let pad = &[0u8; SHARD][..SHARD.saturating_sub(shard.len())];
        match self {
            Locator::Blake3 => {
                let mut h = blake3::Hasher::new();
                h.update(shard);
                h.update(pad);
                let mut out = [0u8; 8];
                out.copy_from_slice(&h.finalize().as_bytes()[..8]);
                out
            }
            Locator::Crc64 if pad.is_empty() => {
                crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, shard).to_le_bytes()
            }
            Locator::Crc64 => {
                let mut d = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme);
                d.update(shard);
                d.update(pad);
                d.finalize().to_le_bytes()
            }
        }
    }
}

/// What a member file is; its folder follows from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberKind {
    Config = 0,
    Key = 1,
    Snapshot = 2,
    Index = 3,
    Pack = 4,
}

impl MemberKind {
    fn from_u8(b: u8) -> Option<MemberKind> {
        Some(match b {
            0 => MemberKind::Config,
            1 => MemberKind::Key,
            2 => MemberKind::Snapshot,
            3 => MemberKind::Index,
            4 => MemberKind::Pack,
            _ => return None,
        })
    }

    pub fn file_kind(self) -> FileKind {
        match self {
            MemberKind::Config => FileKind::Config,
            MemberKind::Key => FileKind::Key,
            MemberKind::Snapshot => FileKind::Snapshot,
            MemberKind::Index => FileKind::Index,
            MemberKind::Pack => FileKind::Pack,
        }
    }

    /// Files named by the BLAKE3 of their bytes: a rebuilt one must also match its name.
    pub fn content_named(self) -> bool {
        matches!(
            self,
            MemberKind::Snapshot | MemberKind::Index | MemberKind::Pack
        )
    }
}

/// One member file as it was when the parity was computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub kind: MemberKind,
    pub name: String,
    pub size: u64,
    pub hash: [u8; 32],
    pub shard_hashes: Vec<[u8; 8]>,
    /// Version 4: where the member's rows go in every band — its rows
    /// `[b·per_band, (b+1)·per_band)` are band `b`'s codeword positions `at …`. (Versions
    /// 1–3: `per_band` is the header's `band_rows`, `at` unused: members follow each other.)
    pub place: Place,
}

/// A member's place in the bands (version 4): first codeword position and rows per band.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Place {
    pub at: u32,
    pub per_band: u32,
}

/// One band's recovery shards, by hash; the shards follow the header in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Band {
    pub recovery_hashes: Vec<[u8; 8]>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParityHeader {
    /// The shard hashes' kind (the header's version).
    pub locator: Locator,
    pub percent: u8,
    /// Rows of each member per band (`w`); version 4: the band's codeword positions `L`,
    /// every member's place within them.
    pub band_rows: u32,
    /// Version 3: the code width `C` (a power of two): each band is the high-rate code of its
    /// data shards with `C` recovery positions, of which the file stores the first `R_b`.
    /// `None` (versions 1 and 2): the systematic code with exactly `R_b` recovery shards.
    pub code_width: Option<u32>,
    /// Version 4: each member has its own [`Place`] in the bands (gaps between members are
    /// absent shards, coded as zeros). Needs `code_width`.
    pub placed: bool,
    pub supersedes: Vec<Id>,
    pub members: Vec<Member>,
    pub bands: Vec<Band>,
}

impl ParityHeader {
    pub fn to_bytes(&self) -> Vec<u8> {
        let shards: usize = self.members.iter().map(|m| m.shard_hashes.len()).sum();
        let mut b = Vec::with_capacity(64 + shards * 8 + self.members.len() * 110);
        b.extend_from_slice(MAGIC);
        b.push(self.version());
        b.push(self.percent);
        b.extend_from_slice(&(SHARD as u32).to_le_bytes());
        b.extend_from_slice(&self.band_rows.to_le_bytes());
        if let Some(c) = self.code_width {
            b.extend_from_slice(&c.to_le_bytes());
        }
        b.extend_from_slice(&(self.supersedes.len() as u32).to_le_bytes());
        for s in &self.supersedes {
            b.extend_from_slice(&s.0);
        }
        b.extend_from_slice(&(self.members.len() as u32).to_le_bytes());
        for m in &self.members {
            b.push(m.kind as u8);
            b.push(m.name.len() as u8);
            b.extend_from_slice(m.name.as_bytes());
            b.extend_from_slice(&m.size.to_le_bytes());
            if self.placed {
                b.extend_from_slice(&m.place.at.to_le_bytes());
                b.extend_from_slice(&m.place.per_band.to_le_bytes());
            }
            b.extend_from_slice(&m.hash);
            for h in &m.shard_hashes {
                b.extend_from_slice(h);
            }
        }
        b.extend_from_slice(&(self.bands.len() as u32).to_le_bytes());
        for band in &self.bands {
            b.extend_from_slice(&(band.recovery_hashes.len() as u32).to_le_bytes());
            for h in &band.recovery_hashes {
                b.extend_from_slice(h);
            }
        }
        b
    }

    /// The header's version: 4 with places, 3 with a code width, else the locator's (1 or 2).
    pub fn version(&self) -> u8 {
        match self.code_width {
            Some(_) if self.placed => 4,
            Some(_) => 3,
            None => self.locator as u8,
        }
    }

    /// The parity file's name: BLAKE3 of the header.
    pub fn id(&self) -> Id {
        Id::hash_of(&self.to_bytes())
    }

    /// Parse a header from the start of `bytes`; returns it and the bytes it took.
    pub fn decode(bytes: &[u8]) -> Result<(ParityHeader, usize)> {
        let mut r = Reader { b: bytes, pos: 0 };
        if r.take(4)? != MAGIC {
            return Err(bad("does not start with SVPR"));
        }
        let version = r.u8()?;
        let locator = match version {
            3 | 4 => Some(Locator::Crc64),
            v => Locator::from_version(v),
        }
        .ok_or_else(|| bad(format!("unknown version {version}")))?;
        let percent = r.u8()?;
        if percent > MAX_PERCENT {
            return Err(bad(format!("level {percent} % is above {MAX_PERCENT} %")));
        }
        let shard = r.u32()?;
        if shard as usize != SHARD {
            return Err(bad(format!("shard size {shard}, expected {SHARD}")));
        }
        let band_rows = r.u32()?;
        if band_rows == 0 || band_rows as usize > MAX_BAND_SHARDS {
            return Err(bad(format!("{band_rows} rows per band")));
        }
        let placed = version == 4;
        let code_width = if version >= 3 {
            let c = r.u32()?;
            if !c.is_power_of_two() || c as usize > MAX_RECOVERY {
                return Err(bad(format!("code width {c}")));
            }
            Some(c)
        } else {
            None
        };
        let n_super = r.count(32)?;
        let mut supersedes = Vec::with_capacity(n_super);
        for _ in 0..n_super {
            supersedes.push(Id::from_slice(r.take(32)?).unwrap_or_default());
        }
        let n_members = r.count(1 + 1 + 8 + 32 + if placed { 8 } else { 0 })?;
        if n_members > MAX_MEMBERS {
            return Err(bad(format!("{n_members} members, at most {MAX_MEMBERS}")));
        }
        let mut members: Vec<Member> = Vec::with_capacity(n_members);
        for _ in 0..n_members {
            let kind = MemberKind::from_u8(r.u8()?).ok_or_else(|| bad("unknown member kind"))?;
            let len = r.u8()? as usize;
            let name = std::str::from_utf8(r.take(len)?)
                .ok()
                .filter(|n| valid_name(n))
                .ok_or_else(|| bad("a member name is not a valid file name"))?
                .to_string();
            if kind == MemberKind::Config && name != "config" {
                return Err(bad("a config member is not named config"));
            }
            if members.iter().any(|m| m.kind == kind && m.name == name) {
                return Err(bad(format!("member {name} is listed twice")));
            }
            let size = r.u64()?;
            if size > MAX_MEMBER_SIZE {
                return Err(bad(format!("member {name} is larger than 1 GiB")));
            }
            let place = if placed {
                let p = Place {
                    at: r.u32()?,
                    per_band: r.u32()?,
                };
                if p.per_band == 0 || u64::from(p.at) + u64::from(p.per_band) > u64::from(band_rows)
                {
                    return Err(bad(format!(
                        "member {name} at {} with {} rows per band, outside the band's {band_rows}",
                        p.at, p.per_band
                    )));
                }
                p
            } else {
                Place {
                    at: 0,
                    per_band: band_rows,
                }
            };
            let hash: [u8; 32] = r.take(32)?.try_into().unwrap_or([0; 32]);
            let rows = usize::try_from(rows_of(size)).map_err(|_| bad("member too large"))?;
            if rows > r.remaining() / 8 {
                return Err(bad(format!(
                    "member {name} has more shards than the header"
                )));
            }
            let mut shard_hashes = Vec::with_capacity(rows);
            for _ in 0..rows {
                shard_hashes.push(r.hash8()?);
            }
            members.push(Member {
                kind,
                name,
                size,
                hash,
                shard_hashes,
                place,
            });
        }
        if placed {
            let mut spans: Vec<(u32, u32)> = members
                .iter()
                .map(|m| (m.place.at, m.place.at + m.place.per_band))
                .collect();
            spans.sort_unstable();
            if spans.windows(2).any(|w| w[0].1 > w[1].0) {
                return Err(bad("two members share positions of a band"));
            }
        }
        let want_bands = members
            .iter()
            .map(|m| rows_of(m.size).div_ceil(u64::from(m.place.per_band)))
            .max()
            .unwrap_or(0);
        let n_bands = r.count(4)?;
        if n_bands as u64 != want_bands {
            return Err(bad(format!("{n_bands} bands, expected {want_bands}")));
        }
        let mut h = ParityHeader {
            locator,
            percent,
            band_rows,
            code_width,
            placed,
            supersedes,
            members,
            bands: Vec::with_capacity(n_bands),
        };
        for b in 0..n_bands {
            let n = r.count(8)?;
            let data = h.band_data_count(b);
            let width = code_width.map_or(MAX_RECOVERY, |c| c as usize);
            if n == 0 || n > MAX_RECOVERY.min(data).min(width) || h.band_len(b) > MAX_BAND_SHARDS {
                return Err(bad(format!(
                    "band {b} has {data} data and {n} recovery shards"
                )));
            }
            let mut recovery_hashes = Vec::with_capacity(n);
            for _ in 0..n {
                recovery_hashes.push(r.hash8()?);
            }
            h.bands.push(Band { recovery_hashes });
        }
        if r.pos > MAX_HEADER {
            return Err(bad("header larger than 16 MiB"));
        }
        Ok((h, r.pos))
    }

    /// The locator hash of `shard` (zero-padded), as this header records them.
    pub fn shard_hash(&self, shard: &[u8]) -> [u8; 8] {
        self.locator.shard_hash(shard)
    }

    /// Rows of `member` in band `b`.
    pub fn band_range(&self, b: usize, member: usize) -> Range<u64> {
        let Some(m) = self.members.get(member) else {
            return 0..0;
        };
        let w = u64::from(m.place.per_band);
        let rows = rows_of(m.size);
        let start = (b as u64 * w).min(rows);
        start..((b as u64 + 1) * w).min(rows)
    }

    /// The codeword position of each member's first row in band `b`: its place (version
    /// 4), else right after the members before it.
    pub fn band_positions(&self, b: usize) -> Vec<usize> {
        let mut next = 0;
        (0..self.members.len())
            .map(|i| {
                if self.placed {
                    return self.members[i].place.at as usize;
                }
                let at = next;
                let r = self.band_range(b, i);
                next += (r.end - r.start) as usize;
                at
            })
            .collect()
    }

    /// The length of band `b`'s codeword (`N_b`): one past its last data shard's position
    /// (positions no member fills are absent shards, coded as zeros).
    pub fn band_len(&self, b: usize) -> usize {
        if !self.placed {
            return self.band_data_count(b);
        }
        (0..self.members.len())
            .filter_map(|i| {
                let r = self.band_range(b, i);
                let at = self.members[i].place.at as usize;
                (!r.is_empty()).then(|| at + (r.end - r.start) as usize)
            })
            .max()
            .unwrap_or(0)
    }

    /// Data shards in band `b`.
    pub fn band_data_count(&self, b: usize) -> usize {
        (0..self.members.len())
            .map(|i| {
                let r = self.band_range(b, i);
                (r.end - r.start) as usize
            })
            .sum()
    }

    /// Recovery shards in all bands before `b`: band `b`'s shards start there.
    pub fn recovery_before(&self, b: usize) -> u64 {
        self.bands
            .iter()
            .take(b)
            .map(|x| x.recovery_hashes.len() as u64)
            .sum()
    }

    pub fn recovery_shards(&self) -> u64 {
        self.recovery_before(self.bands.len())
    }
}

/// Read a parity file's header through `read(offset, len)` (`None`: unreadable) from a
/// file of `file_len` bytes named `name`: the leading copy if it matches the name, else the
/// trailing one. Returns the header and the offset of the recovery shards, and whether
/// both copies were good.
pub fn parity_file_header(
    name: &str,
    file_len: u64,
    mut read: impl FnMut(u64, usize) -> Option<Vec<u8>>,
) -> Result<(ParityHeader, u64, bool)> {
    let want: Id = name
        .parse()
        .map_err(|_| bad(format!("parity file name {name:?} is not 64 hex digits")))?;
    let mut try_copy = |len_at: u64, leading: bool| -> Option<(ParityHeader, u64)> {
        let l = read(len_at, 4)?;
        let hl = u32::from_le_bytes(l.get(..4)?.try_into().ok()?) as u64;
        if hl > MAX_HEADER as u64 || 8 + 2 * hl > file_len {
            return None;
        }
        let at = if leading { 4 } else { file_len - 4 - hl };
        let bytes = read(at, hl as usize)?;
        if bytes.len() as u64 != hl || Id::hash_of(&bytes) != want {
            return None;
        }
        let (h, used) = ParityHeader::decode(&bytes).ok()?;
        let total = 8 + 2 * hl + h.recovery_shards() * SHARD as u64;
        (used as u64 == hl && total == file_len).then_some((h, 4 + hl))
    };
    let first = try_copy(0, true);
    let second = if file_len >= 4 {
        try_copy(file_len - 4, false)
    } else {
        None
    };
    let both = first.is_some() && second.is_some();
    match first.or(second) {
        Some((h, at)) => Ok((h, at, both)),
        None => Err(bad(format!(
            "parity file {}: neither header copy matches its name",
            crate::format::text::short_name(name)
        ))),
    }
}

/// A member's file name: 1–64 ASCII letters and digits (and `-`, `_`), not a temp name.
fn valid_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

fn bad(reason: impl Into<String>) -> RepoError {
    RepoError::corrupt("parity file", reason)
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        let s = end
            .and_then(|e| self.b.get(self.pos..e))
            .ok_or_else(|| bad("truncated header"))?;
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or([0; 4]),
        ))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or([0; 8]),
        ))
    }
    fn hash8(&mut self) -> Result<[u8; 8]> {
        Ok(self.take(8)?.try_into().unwrap_or([0; 8]))
    }
    /// A count of items of at least `min_size` bytes each, bounded by the bytes left.
    fn count(&mut self, min_size: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n > self.remaining() / min_size.max(1) {
            return Err(bad(format!("a count of {n} exceeds the header")));
        }
        Ok(n)
    }
}
