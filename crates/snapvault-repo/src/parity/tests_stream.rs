//! The streaming encoder (version 4, format.md §15.1 and §15.5): a group fed pack by pack
//! is, byte for byte, the group encoded at once with the same places; it repairs damage
//! up to each band's budget and a whole lost member; the feeder cuts a run's packs into
//! the groups `plan_groups` would, and pays the level's share plus rounding.

use std::collections::HashMap;

use super::engine::ParityEngine;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::encode::{Coding, Geometry, encode_with};
use super::header::Place;
use super::layout::StreamLayout;
use super::store::plan_groups;
use super::stream::{Feeder, GroupStream, ToWrite};
use super::tests::{Sim, damage_within_the_budget_repairs_exactly, members_strategy, open};
use super::*;

fn pack_name(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

fn pack_specs(members: &[Vec<u8>]) -> Vec<MemberSpec> {
    members
        .iter()
        .map(|m| MemberSpec {
            kind: MemberKind::Pack,
            name: pack_name(m),
            size: m.len() as u64,
        })
        .collect()
}

/// Distinct members (a group never names one file twice).
fn distinct(mut members: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut seen = std::collections::HashSet::new();
    members.retain(|m| seen.insert(pack_name(m)));
    members
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Fed pack by pack or encoded at once (same places and code width): the same parity
    /// file; damage up to each band's budget is repaired exactly, and so is any one whole
    /// member lost. Each pack is spread over the layout's bands, one after another.
    #[test]
    fn a_streamed_group_is_the_batch_encoding_and_repairs(
        members in members_strategy(), percent in 1u8..=20, bands in 1u64..4, seed: u64,
    ) {
        let members = distinct(members);
        let engine = ParityEngine::new();
        let layout = StreamLayout::with_bands(percent, bands);
        let mut g = GroupStream::new(layout);
        for m in &members {
            g.add(&engine, &pack_name(m), m).unwrap();
        }
        let (id, file) = g.finish(&engine, vec![]);
        let mut at = 0;
        let places = members
            .iter()
            .map(|m| {
                let per_band = rows_of(m.len() as u64).div_ceil(bands).max(1) as u32;
                at += per_band;
                Place { at: at - per_band, per_band }
            })
            .collect();
        let geometry = Geometry { len: MAX_BAND_SHARDS as u32, places };
        let read = |i: usize, off: u64, len: usize| Ok(&members[i][off as usize..off as usize + len]);
        let batch = encode_with(
            Coding::Placed(Some(g.width())), percent, geometry, vec![], &pack_specs(&members), read,
        ).unwrap();
        prop_assert!(batch == (id, file.clone()), "streamed and batch files differ");
        let (h, rec_at, _) = open(&id.to_hex(), &file).unwrap();
        prop_assert_eq!(h.version(), 4);
        damage_within_the_budget_repairs_exactly(&h, &members, file.clone(), rec_at, seed)?;
        let lost = StdRng::seed_from_u64(seed).gen_range(0..members.len());
        let mut sim = Sim { members: members.iter().cloned().map(Some).collect(), parity: file, rec_at };
        sim.members[lost] = None;
        let r = repair(&h, &mut sim).unwrap();
        prop_assert!(
            matches!(&r.members[lost], MemberState::Repaired { bytes, .. } if *bytes == members[lost]),
            "{:?}", r.members[lost]
        );
    }
}

/// A whole lost pack is rebuilt at the level's own geometry (5 %, packs of 1 MiB: each
/// spread over 3 bands, 86 rows in each; C = 256), in the first group's half and in a
/// run's tail joined to it (39 packs: 20 complete, 19 joined).
#[test]
fn a_lost_whole_pack_is_rebuilt_at_the_levels_geometry() {
    let layout = StreamLayout::new(5, 1 << 20);
    assert_eq!((layout.bands, layout.width), (3, 256));
    let mut rng = StdRng::seed_from_u64(21);
    // Packs of 1 MiB + 1 byte (a short last row).
    let packs: Vec<Vec<u8>> = (0..39)
        .map(|_| {
            let mut v = vec![0u8; (1 << 20) + 1];
            rng.fill(&mut v[..]);
            v
        })
        .collect();
    let files = run_feeder(5, 1 << 20, &packs);
    assert_eq!(files.len(), 1);
    let (name, file) = files.into_iter().next().unwrap();
    let (h, rec_at, _) = open(&name, &file).unwrap();
    assert_eq!(h.members.len(), 39);
    assert_eq!(
        h.members[0].place,
        Place {
            at: 0,
            per_band: 86
        }
    );
    assert_eq!(
        h.members[20].place,
        Place {
            at: 2048,
            per_band: 86
        }
    );
    for lost in [7, 30] {
        let mut sim = Sim {
            members: packs.iter().cloned().map(Some).collect(),
            parity: file.clone(),
            rec_at,
        };
        sim.members[lost] = None;
        let r = repair(&h, &mut sim).unwrap();
        assert!(
            matches!(&r.members[lost], MemberState::Repaired { bytes, .. } if *bytes == packs[lost]),
            "member {lost}"
        );
    }
}

/// A narrower code than the level's (shorter bands, `L` < 4096, more of them): what
/// `C` and `L` a file was written with is in its header, so readers need nothing else. A
/// whole lost pack is rebuilt, in the first group's half and in a run's tail joined to it.
#[test]
fn a_narrower_stream_layout_reads_and_repairs_from_its_header_alone() {
    let layout = StreamLayout::of_width(5, 1 << 20, 64);
    assert_eq!((layout.width, layout.len), (64, 1280));
    let mut rng = StdRng::seed_from_u64(22);
    let packs: Vec<Vec<u8>> = (0..39)
        .map(|_| {
            let mut v = vec![0u8; (1 << 20) - rng.gen_range(0..(64 << 10))];
            rng.fill(&mut v[..]);
            v
        })
        .collect();
    let mut feeder = Feeder::with_layout(layout, usize::MAX);
    let mut files = Vec::new();
    for p in &packs {
        files.extend(feeder.written(&pack_name(p), p).unwrap());
    }
    files.extend(feeder.finish());
    let mut covered = 0;
    for w in &files {
        let (h, rec_at, _) = open(&w.name, &w.bytes).unwrap();
        assert_eq!((h.band_rows, h.code_width), (1280, Some(64)));
        let index: HashMap<String, &Vec<u8>> = packs.iter().map(|p| (pack_name(p), p)).collect();
        let members: Vec<Vec<u8>> = h.members.iter().map(|m| index[&m.name].clone()).collect();
        covered += members.len();
        for lost in [0, members.len() - 1] {
            let mut sim = Sim {
                members: members.iter().cloned().map(Some).collect(),
                parity: w.bytes.clone(),
                rec_at,
            };
            sim.members[lost] = None;
            let r = repair(&h, &mut sim).unwrap();
            assert!(
                matches!(&r.members[lost], MemberState::Repaired { bytes, .. } if *bytes == members[lost]),
                "member {lost}"
            );
        }
    }
    assert_eq!(covered, packs.len());
}

/// A complete group takes no more packs, only perhaps a run's tail: it keeps its bands'
/// sums (one `C`-shard buffer each), not the chunk buffers it filled, which go to the next
/// group — the open groups' memory is three buffers per band, not four.
#[test]
fn a_complete_group_keeps_only_its_sums() {
    let layout = StreamLayout::new(5, 1 << 20);
    let mut rng = StdRng::seed_from_u64(23);
    let mut feeder = Feeder::with_layout(layout, usize::MAX);
    let sums = layout.bands as usize * layout.width * SHARD;
    for i in 0..2 * group_packs(5) {
        let mut v = vec![0u8; 1 << 20];
        rng.fill(&mut v[..]);
        feeder.written(&pack_name(&v), &v).unwrap();
        if i + 1 == group_packs(5) {
            assert_eq!(feeder.band_memory(), sums, "the kept group, alone");
        }
    }
    assert_eq!(
        feeder.band_memory(),
        sums,
        "the kept group; the next has none yet"
    );
    let mut v = vec![0u8; 1 << 20];
    rng.fill(&mut v[..]);
    feeder.written(&pack_name(&v), &v).unwrap();
    assert_eq!(
        feeder.band_memory(),
        3 * sums,
        "the kept group and one taking packs"
    );
}

/// Run `packs` through a feeder at `percent` for packs of up to `pack_size` bytes; returns
/// the parity files written (name → file).
pub(super) fn run_feeder(
    percent: u8,
    pack_size: u64,
    packs: &[Vec<u8>],
) -> HashMap<String, Vec<u8>> {
    let mut feeder = Feeder::new(percent, pack_size, usize::MAX);
    let mut files = HashMap::new();
    let mut put = |w: ToWrite| {
        assert!(
            files.insert(w.name, w.bytes).is_none(),
            "one file per group"
        );
    };
    for p in packs {
        if let Some(w) = feeder.written(&pack_name(p), p).unwrap() {
            put(w);
        }
    }
    if let Some(w) = feeder.finish() {
        put(w);
    }
    files
}

#[test]
fn the_feeder_cuts_a_runs_packs_as_plan_groups_does() {
    let mut rng = StdRng::seed_from_u64(5);
    for percent in [20u8, 34, 50] {
        for n in 1..=16 {
            let packs: Vec<Vec<u8>> = (0..n)
                .map(|_| {
                    let mut v = vec![0u8; rng.gen_range(1..3 * SHARD)];
                    rng.fill(&mut v[..]);
                    v
                })
                .collect();
            let files = run_feeder(percent, 1 << 20, &packs);
            let mut got: Vec<Vec<String>> = Vec::new();
            for (name, file) in &files {
                let (h, rec_at, _) = open(name, file).unwrap();
                got.push(h.members.iter().map(|m| m.name.clone()).collect());
                let index: HashMap<String, &Vec<u8>> =
                    packs.iter().map(|p| (pack_name(p), p)).collect();
                let mut sim = Sim {
                    members: h
                        .members
                        .iter()
                        .map(|m| Some(index[&m.name].clone()))
                        .collect(),
                    parity: file.clone(),
                    rec_at,
                };
                assert!(repair(&h, &mut sim).unwrap().is_clean());
            }
            let specs: Vec<(MemberKind, String, u64)> = packs
                .iter()
                .map(|p| (MemberKind::Pack, pack_name(p), p.len() as u64))
                .collect();
            let mut want: Vec<Vec<String>> = plan_groups(percent, specs)
                .into_iter()
                .map(|g| g.into_iter().map(|(_, n, _)| n).collect())
                .collect();
            got.sort();
            want.sort();
            assert_eq!(got, want, "{percent} %, {n} packs");
        }
    }
}

/// Every pack a run writes is fed to the encoder once, whatever the run's length: a full
/// group is closed when full, and a short tail joins it without any pack coded twice.
#[test]
fn each_packs_rows_are_encoded_once() {
    let mut rng = StdRng::seed_from_u64(8);
    for percent in [5u8, 20, 50] {
        let k = group_packs(percent);
        for n in [1, k - 1, k, k + 1, 2 * k, 3 * k + 1, 4 * k - 1] {
            let packs: Vec<Vec<u8>> = (0..n.max(1))
                .map(|_| {
                    let mut v = vec![0u8; rng.gen_range(1..4 * SHARD)];
                    rng.fill(&mut v[..]);
                    v
                })
                .collect();
            let rows: u64 = packs.iter().map(|p| rows_of(p.len() as u64)).sum();
            let mut feeder = Feeder::new(percent, 1 << 20, usize::MAX);
            for p in &packs {
                feeder.written(&pack_name(p), p).unwrap();
            }
            let _ = feeder.finish();
            assert_eq!(
                feeder.shards_encoded(),
                rows,
                "{percent} %, {} packs",
                packs.len()
            );
        }
    }
}

#[test]
fn packs_past_the_memory_budget_stop_the_stream() {
    let pack = vec![7u8; 3 * SHARD];
    let mut feeder = Feeder::new(50, 1 << 20, 1);
    assert_eq!(feeder.written(&pack_name(&pack), &pack).unwrap(), None);
    assert_eq!(
        feeder.finish(),
        None,
        "nothing streamed: covered after the command"
    );
}

/// Packs of unequal sizes, as a run writes them (a pack closes when the next blob would
/// not fit: mostly near the pack size, some much shorter): each group the stream writes
/// pays the level's share of its rows, rounded up per band, and at most one more band of
/// its widest member (the last band, where the packs' last rows are) — not the difference
/// between its longest and its mean pack in every group.
#[test]
fn unequal_packs_cost_the_levels_share_plus_rounding() {
    let percent = 5u8;
    let mut rng = StdRng::seed_from_u64(21);
    // Packs of 512 KiB to 2 MiB (rows 128..=512), 2 MiB the pack size.
    let packs: Vec<Vec<u8>> = (0..70)
        .map(|_| {
            let mut v = vec![0u8; rng.gen_range((512 << 10)..=(2 << 20))];
            rng.fill(&mut v[..]);
            v
        })
        .collect();
    let files = run_feeder(percent, 2 << 20, &packs);
    let mut covered = 0;
    for (name, file) in &files {
        let (h, _, _) = open(name, file).unwrap();
        let rows: u64 = h.members.iter().map(|m| rows_of(m.size)).sum();
        covered += h.members.len();
        let widest = h.members.iter().map(|m| m.place.per_band).max().unwrap();
        let share = (rows * u64::from(percent)).div_ceil(100);
        let promised = share + h.bands.len() as u64 + u64::from(widest);
        assert!(
            h.recovery_shards() <= promised,
            "{} packs, {rows} rows: {} recovery shards, promised at most {promised} \
             ({share} the share, {} bands, {widest} widest)",
            h.members.len(),
            h.recovery_shards(),
            h.bands.len()
        );
    }
    assert_eq!(covered, packs.len());
}

/// A full group's file is computed only once it is final (the next group full): it is then,
/// byte for byte, the group encoded at once with the stream's places (its packs spread over
/// the layout's bands, one after another from position 0); the run's second group, with a
/// tail joined, is the rest of the packs coded once.
#[test]
fn a_full_group_written_mid_run_is_the_batch_encoding() {
    let mut rng = StdRng::seed_from_u64(12);
    let percent = 34; // K = 3
    let k = group_packs(percent);
    // Equal packs: groups of K.
    let packs: Vec<Vec<u8>> = (0..2 * k + 1)
        .map(|_| {
            let mut v = vec![0u8; 3 * SHARD + 7];
            rng.fill(&mut v[..]);
            v
        })
        .collect();
    let mut feeder = Feeder::new(percent, 1 << 20, usize::MAX);
    let mut mid_run = Vec::new();
    for p in &packs {
        mid_run.extend(feeder.written(&pack_name(p), p).unwrap());
    }
    assert_eq!(mid_run.len(), 1, "the first group, once the second is full");
    let first = &packs[..k];
    let layout = StreamLayout::new(percent, 1 << 20);
    let mut at = 0;
    let places = first
        .iter()
        .map(|m| {
            let per_band = layout.per_band(rows_of(m.len() as u64), u32::MAX).unwrap();
            at += per_band;
            Place {
                at: at - per_band,
                per_band,
            }
        })
        .collect();
    let geometry = Geometry {
        len: MAX_BAND_SHARDS as u32,
        places,
    };
    let read = |i: usize, off: u64, len: usize| Ok(&first[i][off as usize..off as usize + len]);
    let (id, bytes) = encode_with(
        Coding::Placed(Some(level_width(percent))),
        percent,
        geometry,
        vec![],
        &pack_specs(first),
        read,
    )
    .unwrap();
    assert_eq!(
        mid_run[0],
        ToWrite {
            name: id.to_hex(),
            bytes
        }
    );
    let last = feeder.finish().unwrap();
    let (h, _, _) = open(&last.name, &last.bytes).unwrap();
    assert_eq!(
        h.members.len(),
        k + 1,
        "the second group with the tail joined"
    );
    assert_eq!(
        feeder.shards_encoded(),
        packs.iter().map(|p| rows_of(p.len() as u64)).sum::<u64>()
    );
}
