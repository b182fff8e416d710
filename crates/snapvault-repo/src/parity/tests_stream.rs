//! The streaming encoder (version 3, format.md §15.1 and §15.5): a group fed pack by pack
//! is, byte for byte, the group encoded at once with the same geometry; it repairs damage
//! up to each band's budget and a whole lost member; the feeder cuts a run's packs into
//! the groups `plan_groups` would.

use std::collections::HashMap;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reed_solomon_simd::engine::DefaultEngine;

use super::encode::{Coding, encode_rows};
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

    /// Fed pack by pack or encoded at once (same rows per band and code width): the same
    /// parity file; damage up to each band's budget is repaired exactly, and so is any one
    /// whole member lost.
    #[test]
    fn a_streamed_group_is_the_batch_encoding_and_repairs(
        members in members_strategy(), percent in 1u8..=20, rows in 1u32..4, seed: u64,
    ) {
        let members = distinct(members);
        let engine = DefaultEngine::new();
        let mut g = GroupStream::with_rows(percent, rows);
        for m in &members {
            g.add(&engine, &pack_name(m), m).unwrap();
        }
        let (id, file) = g.finish(&engine, vec![]);
        let read = |i: usize, off: u64, len: usize| Ok(&members[i][off as usize..off as usize + len]);
        let batch = encode_rows(
            Coding::Placed(Some(g.width())), percent, rows, vec![], &pack_specs(&members), read,
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

/// A whole lost 16 MiB-shaped member (4096 rows, every band) of a group of 2K − 1 at the
/// level's own geometry (5 %: w = 102, C = 256) is rebuilt; so is a member of a group of K.
#[test]
fn a_lost_whole_pack_is_rebuilt_at_the_levels_geometry() {
    assert_eq!((band_rows(5, 39), level_width(5)), (102, 256));
    let engine = DefaultEngine::new();
    let mut rng = StdRng::seed_from_u64(21);
    // Members of 1 MiB + 1 byte (a short last row); 2K - 1 = 39 members at 5 %.
    let members: Vec<Vec<u8>> = (0..39)
        .map(|_| {
            let mut v = vec![0u8; (1 << 20) + 1];
            rng.fill(&mut v[..]);
            v
        })
        .collect();
    for n in [20, 39] {
        let mut g = GroupStream::new(5);
        for m in &members[..n] {
            g.add(&engine, &pack_name(m), m).unwrap();
        }
        let (id, file) = g.finish(&engine, vec![]);
        let (h, rec_at, _) = open(&id.to_hex(), &file).unwrap();
        let mut sim = Sim {
            members: members[..n].iter().cloned().map(Some).collect(),
            parity: file,
            rec_at,
        };
        sim.members[7] = None;
        let r = repair(&h, &mut sim).unwrap();
        assert!(
            matches!(&r.members[7], MemberState::Repaired { bytes, .. } if *bytes == members[7]),
            "{n} members"
        );
    }
}

/// Run `n` packs through a feeder at `percent`; returns the parity files written (name →
/// file).
fn run_feeder(percent: u8, packs: &[Vec<u8>]) -> HashMap<String, Vec<u8>> {
    let mut feeder = Feeder::new(percent, usize::MAX);
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
            let files = run_feeder(percent, &packs);
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
            let mut feeder = Feeder::new(percent, usize::MAX);
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
    let mut feeder = Feeder::new(50, 1);
    assert_eq!(feeder.written(&pack_name(&pack), &pack).unwrap(), None);
    assert_eq!(
        feeder.finish(),
        None,
        "nothing streamed: covered after the command"
    );
}

/// A full group's file is computed only once it is final (the next group full): it is then,
/// byte for byte, the group encoded at once with the level's geometry (its members in slots
/// 0 … *K* − 1); the run's second group, with a tail joined, is the third file's worth of
/// packs coded once.
#[test]
fn a_full_group_written_mid_run_is_the_batch_encoding() {
    let mut rng = StdRng::seed_from_u64(12);
    let percent = 34; // K = 3
    let k = group_packs(percent);
    let packs: Vec<Vec<u8>> = (0..2 * k + 1)
        .map(|_| {
            let mut v = vec![0u8; rng.gen_range(1..5 * SHARD)];
            rng.fill(&mut v[..]);
            v
        })
        .collect();
    let mut feeder = Feeder::new(percent, usize::MAX);
    let mut mid_run = Vec::new();
    for p in &packs {
        mid_run.extend(feeder.written(&pack_name(p), p).unwrap());
    }
    assert_eq!(mid_run.len(), 1, "the first group, once the second is full");
    let first = &packs[..k];
    let read = |i: usize, off: u64, len: usize| Ok(&first[i][off as usize..off as usize + len]);
    let (id, bytes) = encode_rows(
        Coding::Placed(Some(level_width(percent))),
        percent,
        band_rows(percent, super::encode::max_group_packs(percent)),
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
