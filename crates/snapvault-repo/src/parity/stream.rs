//! Parity of the packs a command writes, computed as each pack is written (format.md §15.5,
//! parity file version 4): no pack is held in memory or read back, and none is coded twice.
//!
//! A [`GroupStream`] is one pack group in progress. Its geometry is fixed by the level
//! alone (2*K* slots of `w` rows per band, code width `C`), so each pack's rows are folded
//! into every band's recovery the moment the pack is durable ([`BandEncoder`]); memory is
//! at most two `C`-shard buffers per band (80 MiB for a group of 16 MiB packs at 5 %),
//! whatever the group's length.
//!
//! [`Feeder`] cuts the run's packs into groups as [`super::store::plan_groups`] does: *K*
//! packs per group, and a short last group (fewer than *K*) joins the group before it.
//! Groups take turns at the two halves of the slots (slots 0..*K*, then *K*..2*K*, …).
//! When a group reaches *K* packs its band sums are kept; when the next group reaches *K*
//! the kept group is final and its parity file is computed and written. If the run ends
//! first with a short tail, the tail — coded in the other half — is added to the kept sums
//! (the code is linear, and its positions are its own) and the joined group's file is
//! written instead; a file is computed only once it is final, so never twice. Every pack
//! is coded once; memory is two groups' band buffers (the recovery is computed in them);
//! a crash leaves at most 2*K* − 1 packs uncovered.

use reed_solomon_simd::engine::DefaultEngine;

use super::chunked::BandEncoder;
use super::encode::{
    band_rows, band_slots, group_packs, level_width, max_group_packs, parity_file, recovery_count,
};
use super::header::{Band, Locator, Member, MemberKind, ParityHeader, Place};
use super::{SHARD, rows_of};
use crate::error::{RepoError, Result};
use crate::format::id::Id;

/// Most memory the open groups' band buffers may take (two groups); a run whose packs
/// would pass it stops streaming and its remaining packs are covered after the command
/// (read back), as before version 3. 16 MiB packs take 160 MiB at 5 %.
pub const STREAM_BUDGET: usize = 512 << 20;

/// One pack group in progress.
#[derive(Clone)]
pub struct GroupStream {
    percent: u8,
    rows: u32,
    width: usize,
    /// The slot of the group's first member: 0 or *K* (the two halves of a band).
    first_slot: u32,
    members: Vec<Member>,
    bands: Vec<StreamBand>,
}

#[derive(Clone)]
struct StreamBand {
    enc: BandEncoder,
    /// Rows of the widest member in the band (`w_b`).
    widest: usize,
}

impl GroupStream {
    pub fn new(percent: u8) -> GroupStream {
        GroupStream {
            percent,
            rows: band_rows(percent, max_group_packs(percent)),
            width: level_width(percent),
            first_slot: 0,
            members: Vec::new(),
            bands: Vec::new(),
        }
    }

    /// A group like this one's (same geometry), in the other half of the slots.
    fn next_half(&self) -> GroupStream {
        let k = group_packs(self.percent) as u32;
        GroupStream {
            percent: self.percent,
            rows: self.rows,
            width: self.width,
            first_slot: if self.first_slot == 0 { k } else { 0 },
            members: Vec::new(),
            bands: Vec::new(),
        }
    }

    /// The band's codeword positions `L` (2*K* slots of `w` rows).
    fn band_len(&self) -> u32 {
        self.rows * band_slots(self.percent, 0) as u32
    }

    /// A group with `rows` rows per band (tests use small bands), its code width what a
    /// band of 2*K* − 1 members of `rows` rows needs.
    #[cfg(test)]
    pub(crate) fn with_rows(percent: u8, rows: u32) -> GroupStream {
        let w = rows as usize;
        GroupStream {
            rows,
            width: recovery_count(percent, max_group_packs(percent) * w, w).next_power_of_two(),
            ..GroupStream::new(percent)
        }
    }

    /// The code width `C`.
    #[cfg(test)]
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// Packs fed so far.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The band buffers' memory once a pack of `size` bytes is fed too.
    pub fn memory_with(&self, size: u64) -> usize {
        let bands = rows_of(size).div_ceil(u64::from(self.rows)) as usize;
        bands.max(self.bands.len()) * 2 * self.width * SHARD
    }

    /// Fold pack `name` (its bytes, durable as written) into the group as its next member.
    pub fn add(&mut self, engine: &DefaultEngine, name: &str, data: &[u8]) -> Result<()> {
        self.add_pooled(engine, name, data, &mut Vec::new())
    }

    /// [`GroupStream::add`], new bands' buffers taken from `pool` (spent groups' memory)
    /// while it has some. Each shard's hash is taken from its copy in the band buffer, just
    /// made (the same bytes, zero-padded as the hash wants): the pack is read once.
    fn add_pooled(
        &mut self,
        engine: &DefaultEngine,
        name: &str,
        data: &[u8],
        pool: &mut Vec<Vec<[u8; 64]>>,
    ) -> Result<()> {
        let id: Id = name
            .parse()
            .map_err(|_| RepoError::corrupt(format!("pack {name}"), "not a pack name"))?;
        if self.members.len() >= max_group_packs(self.percent) {
            return Err(RepoError::corrupt("parity stream", "group is full"));
        }
        let place = Place {
            at: (self.first_slot + self.members.len() as u32) * self.rows,
            per_band: self.rows,
        };
        let mut hashes = Vec::with_capacity(data.len().div_ceil(SHARD));
        for (b, rows) in data.chunks(self.rows as usize * SHARD).enumerate() {
            if b == self.bands.len() {
                let buf = pool.pop().unwrap_or_default();
                self.bands.push(StreamBand {
                    enc: BandEncoder::reusing(self.width, buf),
                    widest: 0,
                });
            }
            let band = &mut self.bands[b];
            let mut n = 0;
            for shard in rows.chunks(SHARD) {
                let hash = band
                    .enc
                    .add_at_seen(engine, place.at as usize + n, shard, |s| {
                        Locator::Crc64.shard_hash(s)
                    });
                hashes.push(hash);
                n += 1;
            }
            band.widest = band.widest.max(n);
        }
        self.members.push(Member {
            kind: MemberKind::Pack,
            name: name.to_string(),
            size: data.len() as u64,
            hash: id.0,
            shard_hashes: hashes,
            place,
        });
        Ok(())
    }

    /// Join `tail` (coded in the other half of the slots) to this group: its members follow
    /// this group's in the header, its rows keep their positions, and the band sums add.
    fn absorb(&mut self, engine: &DefaultEngine, tail: GroupStream) {
        self.members.extend(tail.members);
        for (b, band) in tail.bands.into_iter().enumerate() {
            match self.bands.get_mut(b) {
                Some(mine) => {
                    mine.enc.absorb(engine, band.enc);
                    mine.widest = mine.widest.max(band.widest);
                }
                None => self.bands.push(band),
            }
        }
    }

    /// The parity file of the members fed so far (name and bytes). The recovery is
    /// computed in the band buffers themselves (no copy of the sums): the group is spent,
    /// only [`GroupStream::into_buffers`] is left to call.
    pub fn finish(&mut self, engine: &DefaultEngine, supersedes: Vec<Id>) -> (Id, Vec<u8>) {
        let mut h = ParityHeader {
            locator: Locator::Crc64,
            percent: self.percent,
            band_rows: self.band_len(),
            code_width: Some(self.width as u32),
            placed: true,
            supersedes,
            members: self.members.clone(),
            bands: Vec::with_capacity(self.bands.len()),
        };
        let mut counts = Vec::with_capacity(self.bands.len());
        for band in &mut self.bands {
            let r = recovery_count(self.percent, band.enc.count(), band.widest).min(self.width);
            let shards = band.enc.finish(engine, r);
            h.bands.push(Band {
                recovery_hashes: shards.chunks(SHARD).map(|s| h.shard_hash(s)).collect(),
            });
            counts.push(r);
        }
        let recovery = self.bands.iter().zip(&counts);
        parity_file(&h, recovery.map(|(b, &r)| b.enc.finished(r)))
    }

    /// The band buffers, for the next group.
    fn into_buffers(self) -> impl Iterator<Item = Vec<[u8; 64]>> {
        self.bands.into_iter().map(|b| b.enc.into_buffer())
    }
}

/// A parity file the feeder computed, for its caller to store (every member is durable).
#[derive(Debug, PartialEq, Eq)]
pub struct ToWrite {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl ToWrite {
    fn new((id, bytes): (Id, Vec<u8>)) -> ToWrite {
        ToWrite {
            name: id.to_hex(),
            bytes,
        }
    }
}

/// The run's pack groups, cut as packs are written.
pub struct Feeder {
    percent: u8,
    per_group: usize,
    engine: DefaultEngine,
    cur: GroupStream,
    /// The run's last full group as of *K* packs, kept for a short tail to join; its parity
    /// file is computed only once it is final (the next group reaches *K*, or the run ends
    /// without a tail), so a run with a tail never computes it twice.
    full: Option<GroupStream>,
    /// Streaming stopped (the memory bound, or a write failed): the rest is covered after
    /// the command.
    stopped: bool,
    /// Band buffers of spent groups, for the next group's bands (no fresh pages to fault).
    pool: Vec<Vec<[u8; 64]>>,
    budget: usize,
    /// Data shards fed to an encoder so far (each pack's rows once).
    encoded: u64,
}

impl Feeder {
    pub fn new(percent: u8, budget: usize) -> Feeder {
        Feeder {
            percent,
            per_group: group_packs(percent),
            engine: DefaultEngine::new(),
            cur: GroupStream::new(percent),
            full: None,
            stopped: false,
            pool: Vec::new(),
            budget,
            encoded: 0,
        }
    }

    /// Data shards fed to an encoder so far.
    #[cfg(test)]
    pub(crate) fn shards_encoded(&self) -> u64 {
        self.encoded
    }

    /// Stop streaming: the packs not yet covered are covered after the command.
    pub fn stop(&mut self) {
        self.stopped = true;
        self.cur = GroupStream::new(self.percent);
        self.full = None;
    }

    /// Pack `name` was written (durable) with `data`: fold it in; returns the parity file
    /// of the group before the one that has just reached *K* packs, to be written now.
    pub fn written(&mut self, name: &str, data: &[u8]) -> Result<Option<ToWrite>> {
        if self.stopped {
            return Ok(None);
        }
        let size = data.len() as u64;
        let full_mem = self.full.as_ref().map_or(0, |g| g.memory_with(0));
        if self.cur.memory_with(size) + full_mem > self.budget {
            self.stop();
            return Ok(None);
        }
        self.cur
            .add_pooled(&self.engine, name, data, &mut self.pool)?;
        self.encoded += rows_of(size);
        if self.cur.len() < self.per_group {
            return Ok(None);
        }
        let next = self.cur.next_half();
        let full = std::mem::replace(&mut self.cur, next);
        Ok(self.full.replace(full).map(|mut done| {
            let file = ToWrite::new(done.finish(&self.engine, Vec::new()));
            self.pool.extend(done.into_buffers());
            file
        }))
    }

    /// The run has ended: the parity file of its last group — the held one as of *K*
    /// packs, or with the short tail joined, or the run's only, short group — if any.
    pub fn finish(&mut self) -> Option<ToWrite> {
        let tail = std::mem::replace(&mut self.cur, GroupStream::new(self.percent));
        let out = match self.full.take() {
            _ if self.stopped => None,
            Some(mut g) if tail.is_empty() => {
                Some(ToWrite::new(g.finish(&self.engine, Vec::new())))
            }
            Some(mut g) => {
                g.absorb(&self.engine, tail);
                Some(ToWrite::new(g.finish(&self.engine, Vec::new())))
            }
            None if tail.is_empty() => None,
            None => {
                let mut g = tail;
                Some(ToWrite::new(g.finish(&self.engine, Vec::new())))
            }
        };
        self.stop();
        out
    }
}
