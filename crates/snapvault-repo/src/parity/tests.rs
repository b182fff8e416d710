//! Property tests of the parity codec: damage up to each band's recovery count is repaired
//! exactly; one shard more is reported as lost, and no member is ever "repaired" into
//! bytes other than its own.

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::encode::{Coding, encode_rows};
use super::*;
use crate::error::Result;

/// A group in memory: members (`None`: deleted) and the parity file.
pub(super) struct Sim {
    pub(super) members: Vec<Option<Vec<u8>>>,
    pub(super) parity: Vec<u8>,
    pub(super) rec_at: u64,
}

impl GroupSource for Sim {
    fn member_size(&mut self, i: usize) -> Option<u64> {
        self.members.get(i)?.as_ref().map(|m| m.len() as u64)
    }
    fn read_member(&mut self, i: usize, offset: u64, len: usize) -> Option<Vec<u8>> {
        let m = self.members.get(i)?.as_ref()?;
        let start = (offset as usize).min(m.len());
        Some(m[start..(start + len).min(m.len())].to_vec())
    }
    fn read_recovery(&mut self, first: u64, shards: usize) -> Option<Vec<u8>> {
        let start = (self.rec_at + first * SHARD as u64) as usize;
        self.parity
            .get(start..start + shards * SHARD)
            .map(<[u8]>::to_vec)
    }
}

pub(super) fn specs(members: &[Vec<u8>]) -> Vec<MemberSpec> {
    members
        .iter()
        .enumerate()
        .map(|(i, m)| MemberSpec {
            kind: MemberKind::Key,
            name: format!("member{i}"),
            size: m.len() as u64,
        })
        .collect()
}

fn build(members: &[Vec<u8>], percent: u8, rows: u32) -> (String, Vec<u8>) {
    build_with(Coding::Placed(None), members, percent, rows)
}

pub(super) fn build_with(
    coding: Coding,
    members: &[Vec<u8>],
    percent: u8,
    rows: u32,
) -> (String, Vec<u8>) {
    let read = |i: usize, off: u64, len: usize| Ok(&members[i][off as usize..off as usize + len]);
    let (id, file) = encode_rows(coding, percent, rows, vec![], &specs(members), read).unwrap();
    (id.to_hex(), file)
}

pub(super) fn open(name: &str, file: &[u8]) -> Result<(ParityHeader, u64, bool)> {
    parity_file_header(name, file.len() as u64, |off, len| {
        file.get(off as usize..off as usize + len)
            .map(<[u8]>::to_vec)
    })
}

/// Every shard of band `b` as a place to damage: (Some(member), row) or (None, recovery j).
pub(super) fn band_positions(h: &ParityHeader, b: usize) -> Vec<(Option<usize>, u64)> {
    let mut v = Vec::new();
    for i in 0..h.members.len() {
        for row in h.band_range(b, i) {
            v.push((Some(i), row));
        }
    }
    let first = h.recovery_before(b);
    for j in 0..h.bands[b].recovery_hashes.len() as u64 {
        v.push((None, first + j));
    }
    v
}

/// Damage one shard the way drives do: a flipped byte, a zeroed sector, or (for a whole
/// last shard) a cut-off end.
pub(super) fn damage(sim: &mut Sim, pos: (Option<usize>, u64), rng: &mut StdRng) {
    let (buf, start) = match pos.0 {
        Some(i) => (sim.members[i].as_mut().unwrap(), pos.1 as usize * SHARD),
        None => (
            &mut sim.parity,
            (sim.rec_at + pos.1 * SHARD as u64) as usize,
        ),
    };
    let end = (start + SHARD).min(buf.len());
    if rng.gen_bool(0.5) {
        let k = rng.gen_range(start..end);
        buf[k] ^= 1 << rng.gen_range(0..8);
    } else if buf[start..end].iter().any(|&b| b != 0) {
        buf[start..end].fill(0);
    } else {
        buf[start] = 0xff;
    }
}

/// Damage up to each band's recovery count of shards, anywhere (chosen by `seed`), then
/// repair: every member must come back exact.
pub(super) fn damage_within_the_budget_repairs_exactly(
    h: &ParityHeader,
    members: &[Vec<u8>],
    file: Vec<u8>,
    rec_at: u64,
    seed: u64,
) -> std::result::Result<(), TestCaseError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sim = Sim {
        members: members.iter().cloned().map(Some).collect(),
        parity: file,
        rec_at,
    };
    for b in 0..h.bands.len() {
        let mut pos = band_positions(h, b);
        pos.shuffle(&mut rng);
        let k = rng.gen_range(0..=h.bands[b].recovery_hashes.len());
        for &p in pos.iter().take(k) {
            damage(&mut sim, p, &mut rng);
        }
    }
    let r = repair(h, &mut sim).unwrap();
    prop_assert_eq!(r.bands_lost, 0);
    for (i, st) in r.members.iter().enumerate() {
        match st {
            MemberState::Intact => prop_assert_eq!(sim.members[i].as_ref(), Some(&members[i])),
            MemberState::Repaired { bytes, .. } => prop_assert_eq!(bytes, &members[i]),
            MemberState::Lost { .. } => prop_assert!(false, "member {} lost: {:?}", i, r),
        }
    }
    Ok(())
}

pub(super) fn members_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(
        (0usize..6 * SHARD + 100, any::<u64>()).prop_map(|(n, seed)| {
            let mut v = vec![0u8; n];
            StdRng::seed_from_u64(seed).fill(&mut v[..]);
            v
        }),
        1..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn undamaged_group_is_intact(members in members_strategy(), percent in 1u8..=50, rows in 1u32..4) {
        let (name, file) = build(&members, percent, rows);
        let (h, rec_at, both) = open(&name, &file).unwrap();
        prop_assert!(both);
        let mut sim = Sim { members: members.into_iter().map(Some).collect(), parity: file, rec_at };
        let r = repair(&h, &mut sim).unwrap();
        prop_assert!(r.is_clean(), "{:?}", r);
    }

    /// Up to each band's recovery count of damaged shards, anywhere: exact repair.
    #[test]
    fn damage_up_to_the_budget_is_repaired(
        members in members_strategy(), percent in 1u8..=50, rows in 1u32..4, seed: u64,
    ) {
        let (name, file) = build(&members, percent, rows);
        let (h, rec_at, _) = open(&name, &file).unwrap();
        damage_within_the_budget_repairs_exactly(&h, &members, file, rec_at, seed)?;
    }

    /// One damaged shard more than a band's recovery count: the members hit there are
    /// reported lost; nothing is ever rebuilt into wrong bytes.
    #[test]
    fn one_more_is_lost_never_wrong(
        members in members_strategy(), percent in 1u8..=50, rows in 1u32..4, seed: u64,
    ) {
        let (name, file) = build(&members, percent, rows);
        let (h, rec_at, _) = open(&name, &file).unwrap();
        prop_assume!(!h.bands.is_empty());
        let mut rng = StdRng::seed_from_u64(seed);
        let b = rng.gen_range(0..h.bands.len());
        let budget = h.bands[b].recovery_hashes.len();
        let mut pos = band_positions(&h, b);
        prop_assume!(pos.len() > budget);
        pos.shuffle(&mut rng);
        // At least one data shard among the damaged ones.
        let data_at = pos.iter().position(|p| p.0.is_some()).unwrap();
        pos.swap(0, data_at);
        let mut sim = Sim { members: members.iter().cloned().map(Some).collect(), parity: file, rec_at };
        let hit: Vec<usize> = pos.iter().take(budget + 1).filter_map(|p| p.0).collect();
        for &p in pos.iter().take(budget + 1) {
            damage(&mut sim, p, &mut rng);
        }
        let r = repair(&h, &mut sim).unwrap();
        prop_assert_eq!(r.bands_lost, 1);
        for (i, st) in r.members.iter().enumerate() {
            match st {
                MemberState::Repaired { bytes, .. } => prop_assert_eq!(bytes, &members[i]),
                MemberState::Intact => prop_assert!(!hit.contains(&i)),
                MemberState::Lost { .. } => prop_assert!(hit.contains(&i)),
            }
        }
    }

    /// A whole member deleted (or cut to nothing) comes back at any level.
    #[test]
    fn a_lost_member_is_rebuilt(members in members_strategy(), percent in 1u8..=50, pick: usize) {
        let (name, file) = build(&members, percent, band_rows(percent, members.len()));
        let (h, rec_at, _) = open(&name, &file).unwrap();
        let i = pick % members.len();
        let mut sim = Sim { members: members.iter().cloned().map(Some).collect(), parity: file, rec_at };
        sim.members[i] = None;
        let r = repair(&h, &mut sim).unwrap();
        let want = if members[i].is_empty() { MemberState::Intact } else {
            MemberState::Repaired { damaged_shards: rows_of(members[i].len() as u64) as usize, bytes: members[i].clone() }
        };
        // An empty member that is missing reads as wrong size: rebuilt as empty.
        match (&r.members[i], want) {
            (MemberState::Repaired { bytes, .. }, MemberState::Intact) => prop_assert!(bytes.is_empty()),
            (got, want) => prop_assert_eq!(got, &want),
        }
    }

    /// The decoders never panic on arbitrary bytes.
    #[test]
    fn header_decoder_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = ParityHeader::decode(&bytes);
        let _ = open(&"0".repeat(64), &bytes);
    }
}

#[test]
fn a_damaged_header_copy_falls_back_to_the_other() {
    let members = vec![vec![7u8; 3 * SHARD + 5], vec![9u8; SHARD]];
    let (name, file) = build(&members, 10, 2);
    let (h, _, _) = open(&name, &file).unwrap();
    let mut first = file.clone();
    first[10] ^= 1;
    let (h1, _, both) = open(&name, &first).unwrap();
    assert_eq!(h1, h);
    assert!(!both);
    let mut last = file.clone();
    let n = last.len();
    last[n - 10] ^= 1;
    assert_eq!(open(&name, &last).unwrap().0, h);
    first[n - 10] ^= 1;
    let err = open(&name, &first).unwrap_err().to_string();
    assert!(err.contains("neither header copy"), "{err}");
    // Another name: neither copy matches.
    assert!(open(&"ab".repeat(32), &file).is_err());
}

#[test]
fn recovery_counts_cover_a_member_and_the_share() {
    // 20 full packs at 5 %: exactly one pack's rows per band.
    assert_eq!(recovery_count(5, 20 * 204, 204), 204);
    // One member alone: a full copy.
    assert_eq!(recovery_count(5, 100, 100), 100);
    // Never more than the data.
    assert_eq!(recovery_count(50, 1, 1), 1);
}

#[test]
fn levels_out_of_range_are_refused() {
    let m = vec![MemberSpec {
        kind: MemberKind::Key,
        name: "k".into(),
        size: 1,
    }];
    for p in [0, MAX_PERCENT + 1] {
        let e = encode(p, vec![], &m, |_, _, _| Ok(vec![0])).unwrap_err();
        assert!(e.to_string().contains("parity level"), "{e}");
    }
}
