//! Parity of the packs a command writes, computed as each pack is written (format.md §15.5,
//! parity file version 4): no pack is held in memory or read back, and none is coded twice.
//!
//! A [`GroupStream`] is one pack group in progress. Its geometry is fixed by the level and
//! the pack size alone ([`StreamLayout`]: each pack spread over `B` bands, one half of a
//! band's `L` positions per group, code width `C`), so each pack's rows are folded into
//! every band's recovery the moment the pack is durable ([`BandEncoder`]); memory is at
//! most two `C`-shard buffers per band while the group takes packs (70 MiB for a group of
//! 16 MiB packs at 5 %), one once it is complete, whatever the group's length.
//!
//! [`Feeder`] cuts the run's packs into groups as [`super::store::plan_groups`] does
//! ([`Cut`]: a group is complete once P % of its rows cover its largest pack), and a last
//! group that is not complete joins the group before it. Groups take turns at the two
//! halves of the band's positions (0..L/2, then L/2..L, …), each pack right after the
//! one before in its half. When a group is complete its band sums are kept; when the next
//! group is complete the kept group is final and its parity file is computed and written.
//! If the run ends first with an incomplete tail, the tail — coded in the other half — is
//! added to the kept sums (the code is linear, and its positions are its own) and the
//! joined group's file is written instead; a file is computed only once it is final, so
//! never twice. Every pack is coded once; memory is two groups' band buffers (the
//! recovery is computed in them; the kept group's sums only); a crash leaves at most two
//! groups' packs uncovered.

use super::chunked::BandEncoder;
use super::encode::{parity_file, recovery_count};
use super::engine::ParityEngine;
use super::header::{Band, Locator, Member, MemberKind, ParityHeader, Place};
use super::layout::{Cut, StreamLayout};
use super::{SHARD, rows_of};
use crate::error::{RepoError, Result};
use crate::format::id::Id;

/// Most memory the open groups' band buffers may take (two groups); a run whose packs
/// would pass it stops streaming and its remaining packs are covered after the command
/// (read back), as before version 3. 16 MiB packs take 105 MiB at 5 %.
pub const STREAM_BUDGET: usize = 512 << 20;

/// One pack group in progress.
#[derive(Clone)]
pub struct GroupStream {
    layout: StreamLayout,
    /// The first position of the group's half: 0 or [`StreamLayout::half`].
    half: u32,
    /// The next free position of the half.
    next: u32,
    cut: Cut,
    members: Vec<Member>,
    bands: Vec<StreamBand>,
    /// The chunk buffers are given up ([`GroupStream::release`]).
    released: bool,
}

#[derive(Clone)]
struct StreamBand {
    enc: BandEncoder,
    /// Rows of the widest member in the band (`w_b`).
    widest: usize,
}

impl GroupStream {
    pub fn new(layout: StreamLayout) -> GroupStream {
        GroupStream {
            layout,
            half: 0,
            next: 0,
            cut: Cut::new(layout.percent),
            members: Vec::new(),
            bands: Vec::new(),
            released: false,
        }
    }

    /// A group like this one's (same geometry), in the other half of the band.
    fn next_half(&self) -> GroupStream {
        let half = if self.half == 0 {
            self.layout.half()
        } else {
            0
        };
        GroupStream {
            half,
            next: half,
            ..GroupStream::new(self.layout)
        }
    }

    /// The code width `C`.
    #[cfg(test)]
    pub(crate) fn width(&self) -> usize {
        self.layout.width
    }

    /// Packs fed so far.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The group is complete ([`Cut`]): its file can be computed, the next group begins.
    pub fn is_full(&self) -> bool {
        self.cut.is_full()
    }

    /// Where a pack of `rows` rows would go next: its place, or `None` when its half has no
    /// room left (only packs far larger than the pack size fill it).
    fn place_for(&self, rows: u64) -> Option<Place> {
        let room = (self.half + self.layout.half()).saturating_sub(self.next);
        let per_band = self.layout.per_band(rows, room)?;
        Some(Place {
            at: self.next,
            per_band,
        })
    }

    /// The band buffers' memory once a pack of `size` bytes is fed too: two `C`-shard
    /// buffers per band (the sum and the chunk being filled), one once the group is
    /// complete ([`GroupStream::release`]).
    pub fn memory_with(&self, size: u64) -> usize {
        let rows = rows_of(size);
        let bands = self
            .place_for(rows)
            .map_or(0, |p| rows.div_ceil(u64::from(p.per_band)) as usize);
        let buffers = if self.released { 1 } else { 2 };
        bands.max(self.bands.len()) * buffers * self.layout.width * SHARD
    }

    /// The group is complete and takes no more packs: each band's chunk being filled is
    /// added to its sum, and the chunk buffers go to `pool` (the next group's), so a kept
    /// group holds one `C`-shard buffer per band. A run's tail can still join it.
    fn release(&mut self, engine: &ParityEngine, pool: &mut Vec<Vec<[u8; 64]>>) {
        for band in &mut self.bands {
            let buf = band.enc.release(engine);
            if !buf.is_empty() {
                pool.push(buf);
            }
        }
        self.released = true;
    }

    /// Fold pack `name` (its bytes, durable as written) into the group as its next member.
    pub fn add(&mut self, engine: &ParityEngine, name: &str, data: &[u8]) -> Result<()> {
        self.add_pooled(engine, name, data, &mut Vec::new())
    }

    /// [`GroupStream::add`], new bands' buffers taken from `pool` (spent groups' memory)
    /// while it has some. Each shard's hash is taken from its copy in the band buffer, just
    /// made (the same bytes, zero-padded as the hash wants): the pack is read once.
    fn add_pooled(
        &mut self,
        engine: &ParityEngine,
        name: &str,
        data: &[u8],
        pool: &mut Vec<Vec<[u8; 64]>>,
    ) -> Result<()> {
        let id: Id = name
            .parse()
            .map_err(|_| RepoError::corrupt(format!("pack {name}"), "not a pack name"))?;
        let rows = rows_of(data.len() as u64);
        let place = self
            .place_for(rows)
            .ok_or_else(|| RepoError::corrupt("parity stream", "group is full"))?;
        let mut hashes = Vec::with_capacity(data.len().div_ceil(SHARD));
        for (b, rows) in data.chunks(place.per_band as usize * SHARD).enumerate() {
            if b == self.bands.len() {
                let sum = pool.pop().unwrap_or_default();
                let chunk = pool.pop().unwrap_or_default();
                self.bands.push(StreamBand {
                    enc: BandEncoder::reusing(self.layout.width, sum).with_chunk_buffer(chunk),
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
        self.next = place.at + place.per_band;
        self.cut.add(rows);
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

    /// Join `tail` (coded in the other half of the band) to this group: its members follow
    /// this group's in the header, its rows keep their positions, and the band sums add
    /// (bands split between threads, see [`par_each`]).
    fn absorb(&mut self, engine: &ParityEngine, tail: GroupStream) {
        self.members.extend(tail.members);
        let mut theirs = tail.bands.into_iter();
        let pairs: Vec<_> = self.bands.iter_mut().map(|b| (b, theirs.next())).collect();
        par_each(pairs, |(mine, other)| {
            if let Some(band) = other {
                mine.enc.absorb(engine, band.enc);
                mine.widest = mine.widest.max(band.widest);
            }
        });
        self.bands.extend(theirs);
    }

    /// The parity file of the members fed so far (name and bytes). The recovery is
    /// computed in the band buffers themselves (no copy of the sums), bands split between
    /// threads ([`par_each`]): the group is spent, only [`GroupStream::into_buffers`] is
    /// left to call.
    pub fn finish(&mut self, engine: &ParityEngine, supersedes: Vec<Id>) -> (Id, Vec<u8>) {
        let (percent, width) = (self.layout.percent, self.layout.width);
        let locator = Locator::Crc64;
        let bands: Vec<&mut StreamBand> = self.bands.iter_mut().collect();
        let done = par_each(bands, |band| {
            let r = recovery_count(percent, band.enc.count(), band.widest).min(width);
            let shards = band.enc.finish(engine, r);
            let hashes = shards.chunks(SHARD).map(|s| locator.shard_hash(s));
            (r, hashes.collect())
        });
        let (counts, hashes): (Vec<usize>, Vec<_>) = done.into_iter().unzip();
        let h = ParityHeader {
            locator,
            percent,
            band_rows: self.layout.len,
            code_width: Some(width as u32),
            placed: true,
            supersedes,
            members: self.members.clone(),
            bands: hashes
                .into_iter()
                .map(|recovery_hashes| Band { recovery_hashes })
                .collect(),
        };
        let recovery = self.bands.iter().zip(&counts);
        parity_file(&h, recovery.map(|(b, &r)| b.enc.finished(r)))
    }

    /// The band buffers (the sums'), for the next group.
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
    layout: StreamLayout,
    engine: ParityEngine,
    cur: GroupStream,
    /// The run's last complete group, kept for an incomplete tail to join; its parity file
    /// is computed only once it is final (the next group is complete, or the run ends
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
    /// The feeder of a run at `percent` % whose packs are of up to `pack_size` bytes (the
    /// config's target), its open groups' band buffers within `budget` bytes.
    pub fn new(percent: u8, pack_size: u64, budget: usize) -> Feeder {
        Feeder::with_layout(StreamLayout::new(percent, pack_size), budget)
    }

    /// [`Feeder::new`] with the given layout (the benchmark compares code widths).
    pub fn with_layout(layout: StreamLayout, budget: usize) -> Feeder {
        Feeder {
            layout,
            engine: ParityEngine::new(),
            cur: GroupStream::new(layout),
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

    /// Bytes of band buffers the open groups hold (not the spent ones kept for reuse).
    #[cfg(test)]
    pub(crate) fn band_memory(&self) -> usize {
        [Some(&self.cur), self.full.as_ref()]
            .into_iter()
            .flatten()
            .flat_map(|g| &g.bands)
            .map(|b| b.enc.memory())
            .sum()
    }

    /// Stop streaming: the packs not yet covered are covered after the command.
    pub fn stop(&mut self) {
        self.stopped = true;
        self.cur = GroupStream::new(self.layout);
        self.full = None;
    }

    /// Pack `name` was written (durable) with `data`: fold it in; returns the parity file
    /// of the group before the one that has just become complete, to be written now.
    pub fn written(&mut self, name: &str, data: &[u8]) -> Result<Option<ToWrite>> {
        if self.stopped {
            return Ok(None);
        }
        let size = data.len() as u64;
        if self.cur.place_for(rows_of(size)).is_none() {
            self.stop();
            return Ok(None);
        }
        let full_mem = self.full.as_ref().map_or(0, |g| g.memory_with(0));
        if self.cur.memory_with(size) + full_mem > self.budget {
            self.stop();
            return Ok(None);
        }
        self.cur
            .add_pooled(&self.engine, name, data, &mut self.pool)?;
        self.encoded += rows_of(size);
        if !self.cur.is_full() {
            return Ok(None);
        }
        let next = self.cur.next_half();
        let mut full = std::mem::replace(&mut self.cur, next);
        full.release(&self.engine, &mut self.pool);
        Ok(self.full.replace(full).map(|mut done| {
            let file = ToWrite::new(done.finish(&self.engine, Vec::new()));
            self.pool.extend(done.into_buffers());
            file
        }))
    }

    /// The run has ended: the parity file of its last group — the held one as of *K*
    /// packs, or with the short tail joined, or the run's only, short group — if any.
    pub fn finish(&mut self) -> Option<ToWrite> {
        let tail = std::mem::replace(&mut self.cur, GroupStream::new(self.layout));
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

/// `f` on each of `items` (a group's bands: independent codewords), the second half on
/// a thread of its own where there are two cores; results in order. A group's file is
/// computed at once when it becomes final (every band's transform: some 60 ms for a group
/// of 16 MiB packs at 5 %, measured on a loaded machine 70-230 ms), and the run's last
/// one is waited for by the command, so its latency is on the snapshot's critical path.
fn par_each<T: Send, R: Send>(mut items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 || items.len() < 2 {
        return items.into_iter().map(f).collect();
    }
    let second = items.split_off(items.len() / 2);
    std::thread::scope(|s| {
        let other = s.spawn(|| second.into_iter().map(&f).collect::<Vec<R>>());
        let mut out: Vec<R> = items.into_iter().map(&f).collect();
        match other.join() {
            Ok(rest) => out.extend(rest),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        out
    })
}
