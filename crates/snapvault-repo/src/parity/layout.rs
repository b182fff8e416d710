//! Where a pack group's rows go in its bands, and where a run's packs are cut into groups
//! (format.md §15.1, §15.5, §15.6).
//!
//! Every band's recovery is `R_b = max(⌈P · N_b / 100⌉, w_b)`: the level's share, and never
//! less than the most rows one member has in the band (`w_b`), so a whole lost pack is
//! always rebuilt. A band pays more than its share wherever one member's rows outweigh
//! P % of the band. With a fixed `w` rows of every member per band (version 4 as first
//! written), the last bands of a group held only its longest packs, and a group of *K*
//! packs paid about its longest pack minus its mean pack on top of the share.
//!
//! So a pack is **spread** over the bands: `⌈rows / B⌉` rows in each of `B` bands, every
//! member in every band; and a group is **cut** only once P % of its rows cover its
//! largest pack (`100 · largest ≤ P · rows`; typically *K* + 1 or *K* + 2 packs of unequal
//! size). Then in every band where each member has its full share, P % of the band's rows
//! is at least the widest member's: the band pays its share rounded up, nothing more. Only
//! the last band, where the packs' last rows are, may pay up to one member's rows.
//!
//! The cut looks at rows only, so `parity set` and the streaming writer cut the same packs
//! the same way without knowing how the stream places them. The stream places a pack the
//! moment it is written, so its `B` is fixed by the level and the pack size: large enough
//! that any group the cut can make (rows under `(100 / P + 1)` packs, at most
//! [`cap_packs`] members) fits in one half of a band's 4096 positions, the other half
//! being for the next group (a run's short tail joins the group before it, §15.5). A group
//! encoded at once has all 4096 positions and takes the fewest bands that hold it.

use super::header::Place;
use super::{MAX_BAND_SHARDS, MAX_MEMBERS, rows_of};

/// Room a pack file takes past its target size (the pack's sealed header; the packer
/// reserves as much).
const PACK_SLACK: u64 = 64 << 10;

/// Packs per group at least at `percent` %: *K* = ⌈100 / P⌉ (a group of equal packs is cut
/// at *K*).
pub fn group_packs(percent: u8) -> usize {
    100usize
        .div_ceil(usize::from(percent.max(1)))
        .clamp(1, MAX_MEMBERS)
}

/// Most packs in one group before it is cut whatever their rows (2*K*): a large pack among
/// many small ones would otherwise grow the group without end.
pub fn cap_packs(percent: u8) -> usize {
    2 * group_packs(percent)
}

/// The code width `C` of the level's streamed pack groups: the next power of two of the
/// recovery of a full band (4096 positions): 256 at 5 %, 2048 at 50 %, 64 at 1 %. A
/// member's rows per band never exceed it, so neither does any band's `R_b`.
///
/// Encoding costs `log2 C` butterfly passes per data shard, so a narrower code with
/// shorter bands ([`band_len`], [`StreamLayout::of_width`]) is cheaper; but more bands
/// round more recovery up to whole shards (format.md §15.6). Measured at 5 % on a 2 GiB
/// library: `C` = 128 (bands of 2560 positions) saved 4 % of the parity thread's CPU and
/// grew parity from 5.45 % to 5.48–5.51 %, past the level plus 0.5 %; 64, 5.55–5.59 %.
pub fn level_width(percent: u8) -> usize {
    (usize::from(percent) * MAX_BAND_SHARDS)
        .div_ceil(100)
        .max(1)
        .next_power_of_two()
}

/// The positions `L` of a stream band coded at width `width`: the most (even, at most
/// 4096) whose level's share `⌈P · L / 100⌉` is at most `width`.
pub fn band_len(percent: u8, width: usize) -> u32 {
    let p = usize::from(percent.max(1));
    ((width * 100 / p).min(MAX_BAND_SHARDS) & !1).max(2) as u32
}

/// The cut of a run of packs into groups, pack by pack: a group closes once P % of its
/// rows cover its largest pack, or at [`cap_packs`] packs.
#[derive(Clone, Debug)]
pub struct Cut {
    percent: u8,
    packs: usize,
    rows: u64,
    largest: u64,
}

impl Cut {
    pub fn new(percent: u8) -> Cut {
        Cut {
            percent,
            packs: 0,
            rows: 0,
            largest: 0,
        }
    }

    /// A pack of `rows` rows joins the group; true if the group is now complete.
    pub fn add(&mut self, rows: u64) -> bool {
        self.packs += 1;
        self.rows += rows;
        self.largest = self.largest.max(rows);
        self.is_full()
    }

    /// The group is complete: P % of its rows cover its largest pack, or it has
    /// [`cap_packs`] packs.
    pub fn is_full(&self) -> bool {
        self.packs >= cap_packs(self.percent)
            || (self.rows > 0
                && u128::from(self.largest) * 100
                    <= u128::from(self.rows) * u128::from(self.percent))
    }
}

/// Cut `packs` (in order; `rows` gives each one's rows) into groups as [`Cut`] does; a last
/// group that is not complete joins the group before it.
pub fn cut_packs<T>(percent: u8, packs: Vec<T>, rows: impl Fn(&T) -> u64) -> Vec<Vec<T>> {
    let mut groups: Vec<Vec<T>> = Vec::new();
    let mut cur = Vec::new();
    let mut cut = Cut::new(percent);
    for p in packs {
        let full = cut.add(rows(&p));
        cur.push(p);
        if full {
            groups.push(std::mem::take(&mut cur));
            cut = Cut::new(percent);
        }
    }
    if !cur.is_empty() {
        match groups.last_mut() {
            Some(prev) => prev.extend(cur),
            None => groups.push(cur),
        }
    }
    groups
}

/// How the stream places packs at a level and pack size: each pack over `bands` bands,
/// `⌈rows / bands⌉` rows in each, in a band of `len` positions whose two halves take turns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLayout {
    pub percent: u8,
    /// `B`.
    pub bands: u64,
    /// The code width `C`.
    pub width: usize,
    /// The band's positions `L`: at most `100 · C / P`, so even a band whose every
    /// position is filled (a run's tail joined) has `R_b ≤ C`.
    pub len: u32,
}

impl StreamLayout {
    /// The layout for packs of up to `pack_size` bytes (the config's target; a pack file
    /// is at most its header larger). `B` is the fewest bands in which any group the cut
    /// can make fits in half a band: before its last pack a group has fewer than `100 / P`
    /// times its largest pack's rows (else it would have been cut), so it has fewer than
    /// `(100 + P) / P · T` rows (`T` the rows of a full pack) and at most [`cap_packs`]
    /// members, each taking at most one position more than its rows / `B`.
    pub fn new(percent: u8, pack_size: u64) -> StreamLayout {
        StreamLayout::of_width(percent, pack_size, level_width(percent))
    }

    /// [`StreamLayout::new`] with code width `width` (a power of two).
    pub fn of_width(percent: u8, pack_size: u64, width: usize) -> StreamLayout {
        let p = u64::from(percent.max(1));
        let t = rows_of(pack_size.saturating_add(PACK_SLACK));
        let len = band_len(percent, width);
        let room = u64::from(len / 2)
            .saturating_sub(cap_packs(percent) as u64)
            .max(1);
        StreamLayout {
            percent,
            bands: ((100 + p) * t).div_ceil(p * room).max(1),
            width,
            len,
        }
    }

    /// A layout of `bands` bands (tests use small ones).
    #[cfg(test)]
    pub fn with_bands(percent: u8, bands: u64) -> StreamLayout {
        let width = level_width(percent);
        StreamLayout {
            percent,
            bands: bands.max(1),
            width,
            len: band_len(percent, width),
        }
    }

    /// Positions of one half of the band: a group takes one, the next group (or a run's
    /// short tail) the other.
    pub fn half(&self) -> u32 {
        self.len / 2
    }

    /// Rows per band of a pack of `rows` rows, given `room` positions left in its half:
    /// `⌈rows / B⌉`, at most `C` (so `R_b ≤ C`) and at most the room (a pack larger than
    /// the pack size then spans more bands). `None`: no room left.
    pub fn per_band(&self, rows: u64, room: u32) -> Option<u32> {
        let want = rows.div_ceil(self.bands).max(1);
        let p = want.min(self.width as u64).min(u64::from(room));
        (p > 0).then_some(p as u32)
    }
}

/// The places of a pack group encoded at once (`parity set`, a group rebuilt without a
/// pruned pack): members one after another, each spread over the fewest bands `B` in which
/// all of them fit in a band's 4096 positions. Returns the band's positions `L` and the
/// places. `rows` must not be longer than [`MAX_MEMBERS`].
pub fn spread(rows: &[u64]) -> (u32, Vec<Place>) {
    let per_band = |b: u64| rows.iter().map(move |r| r.div_ceil(b).max(1));
    let fits = |b: u64| per_band(b).sum::<u64>() <= MAX_BAND_SHARDS as u64;
    let total: u64 = rows.iter().sum();
    // Fewest bands that fit (with one row per band each they do: rows.len() ≤ 4096).
    let (mut lo, mut hi) = (
        total.div_ceil(MAX_BAND_SHARDS as u64).max(1),
        rows.iter().copied().max().unwrap_or(1).max(1),
    );
    if fits(lo) {
        hi = lo;
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let mut at = 0u32;
    let places = per_band(hi)
        .map(|p| {
            let place = Place {
                at,
                per_band: p as u32,
            };
            at += p as u32;
            place
        })
        .collect();
    (at.max(1), places)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_packs_are_cut_at_k_and_unequal_ones_once_the_share_covers_the_largest() {
        let sizes = |rows: &[u64]| -> Vec<usize> {
            cut_packs(5, rows.to_vec(), |r| *r)
                .iter()
                .map(Vec::len)
                .collect()
        };
        assert_eq!(sizes(&[4096; 40]), vec![20, 20]);
        assert_eq!(sizes(&[4096; 47]), vec![20, 27]);
        assert_eq!(sizes(&[4096; 7]), vec![7]);
        // One pack of 4096 rows and 19 of 3900: 5 % of 78196 rows is 3910 < 4096, so a
        // 21st pack joins; then 20 equal packs; an incomplete tail joins the group before.
        let mut v = vec![4096];
        v.extend([3900; 40]);
        assert_eq!(sizes(&v), vec![21, 20]);
        assert_eq!(sizes(&v[..20]), vec![20]);
        assert_eq!(sizes(&v[..31]), vec![31]);
        // One large pack among small ones: cut at 2K.
        let mut v = vec![4096];
        v.extend([10; 39]);
        v.extend([4096; 20]);
        assert_eq!(sizes(&v), vec![40, 20]);
    }

    #[test]
    fn the_stream_layout_holds_any_group_the_cut_makes_in_half_a_band() {
        for percent in [1u8, 2, 3, 5, 10, 20, 33, 50] {
            for (pack_size, narrower) in [1u64 << 20, 16 << 20, 64 << 20]
                .into_iter()
                .flat_map(|s| [(s, 1), (s, 2)])
            {
                let width = level_width(percent) / narrower;
                let l = StreamLayout::of_width(percent, pack_size, width);
                let t = rows_of(pack_size + PACK_SLACK);
                let full = l.per_band(t, l.half()).unwrap();
                assert!(full as usize <= l.width, "{percent} % {pack_size}");
                // The most positions a group can take: just under 100/P full packs, one
                // more full pack, each member with its rounding, at the cap.
                let p = u64::from(percent);
                let rows_before = (100 * t).div_ceil(p) - 1;
                let most = (rows_before + t).div_ceil(l.bands) + cap_packs(percent) as u64;
                assert!(
                    most <= u64::from(l.half()),
                    "{percent} % {pack_size}: {most}"
                );
                // A band filled to its last position (a run's tail joined) needs no more
                // recovery than the code width.
                assert!(
                    recovery_count_of(percent, l.len as usize) <= l.width,
                    "{percent} % {pack_size}"
                );
            }
        }
        let l = StreamLayout::new(5, 16 << 20);
        assert_eq!((l.bands, l.width, l.len), (44, 256, 4096));
        let l = StreamLayout::of_width(5, 16 << 20, 128);
        assert_eq!((l.bands, l.width, l.len), (70, 128, 2560));
    }

    fn recovery_count_of(percent: u8, data: usize) -> usize {
        (usize::from(percent) * data).div_ceil(100)
    }

    #[test]
    fn a_narrower_code_has_shorter_bands_whose_full_recovery_fits_it() {
        for percent in 1u8..=50 {
            for width in [1usize, 2, 16, 128, level_width(percent)] {
                let len = band_len(percent, width) as usize;
                assert!(
                    len <= MAX_BAND_SHARDS && len.is_multiple_of(2),
                    "{percent} % {width}"
                );
                assert!(recovery_count_of(percent, len).min(len) <= width);
                if width == level_width(percent) {
                    assert_eq!(len, MAX_BAND_SHARDS, "{percent} %");
                }
            }
        }
    }

    #[test]
    fn a_group_at_once_takes_the_fewest_bands_that_hold_it() {
        let (len, places) = spread(&[4096, 3900, 10, 1]);
        let b = 4096u64.div_ceil(u64::from(places[0].per_band));
        assert!(len as usize <= MAX_BAND_SHARDS);
        assert_eq!(places[1].at, places[0].per_band);
        // One band fewer would not fit.
        let fewer: u64 = [4096u64, 3900, 10, 1]
            .iter()
            .map(|r| r.div_ceil(b - 1))
            .sum();
        assert!(fewer > MAX_BAND_SHARDS as u64, "{b} bands, {fewer}");
        assert_eq!(spread(&[0]).1[0].per_band, 1);
    }
}
