//! Any placement the writers make — packs spread over the stream's bands, a run's tail
//! joined in the other half, a pack group encoded at once — survives what format.md §15.2
//! promises: one whole member lost plus scattered damage up to what each band has left
//! (`R_b` less the lost member's rows in it) is repaired exactly; one damaged shard more in
//! a band is reported lost, never "repaired" into wrong bytes.

use std::collections::HashMap;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::layout::StreamLayout;
use super::store::plan_groups;
use super::stream::Feeder;
use super::tests::{Sim, band_positions, damage, open};
use super::*;

fn pack_name(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The groups a writer makes of `packs`: (parity file name, file). The stream (its layout
/// `bands` bands), or `parity set` (cut by `plan_groups`, each group encoded at once).
fn written(percent: u8, bands: u64, at_once: bool, packs: &[Vec<u8>]) -> Vec<(String, Vec<u8>)> {
    if at_once {
        let specs = packs
            .iter()
            .map(|p| (MemberKind::Pack, pack_name(p), p.len() as u64))
            .collect();
        let by_name: HashMap<String, &Vec<u8>> = packs.iter().map(|p| (pack_name(p), p)).collect();
        return plan_groups(percent, specs)
            .into_iter()
            .map(|g| {
                let members = MemberSpec::from_listed(&g);
                let read = |i: usize, off: u64, len: usize| {
                    Ok(&by_name[&g[i].1][off as usize..off as usize + len])
                };
                let (id, file) = encode(percent, vec![], &members, read).unwrap();
                (id.to_hex(), file)
            })
            .collect();
    }
    let mut feeder = Feeder::with_layout(StreamLayout::with_bands(percent, bands), usize::MAX);
    let mut out = Vec::new();
    for p in packs {
        out.extend(feeder.written(&pack_name(p), p).unwrap());
    }
    out.extend(feeder.finish());
    out.into_iter().map(|w| (w.name, w.bytes)).collect()
}

fn packs_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(
        (1usize..6 * SHARD + 100, any::<u64>()).prop_map(|(n, seed)| {
            let mut v = vec![0u8; n];
            StdRng::seed_from_u64(seed).fill(&mut v[..]);
            v
        }),
        1..14,
    )
}

/// Rows of member `i` in band `b`.
fn rows_in(h: &ParityHeader, b: usize, i: usize) -> usize {
    let r = h.band_range(b, i);
    (r.end - r.start) as usize
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn a_lost_member_and_the_damage_left_in_the_budget_are_repaired_one_more_is_lost(
        packs in packs_strategy(),
        percent in prop::sample::select(vec![10u8, 20, 34, 50]),
        bands in 1u64..4,
        at_once: bool,
        seed: u64,
    ) {
        let mut seen = std::collections::HashSet::new();
        let packs: Vec<Vec<u8>> = packs.into_iter().filter(|p| seen.insert(pack_name(p))).collect();
        let by_name: HashMap<String, &Vec<u8>> = packs.iter().map(|p| (pack_name(p), p)).collect();
        let mut rng = StdRng::seed_from_u64(seed);
        for (name, file) in written(percent, bands, at_once, &packs) {
            let (h, rec_at, _) = open(&name, &file).unwrap();
            let members: Vec<Vec<u8>> =
                h.members.iter().map(|m| by_name[&m.name].clone()).collect();
            let lost = rng.gen_range(0..members.len());
            let fresh = |parity: Vec<u8>| {
                let mut sim = Sim {
                    members: members.iter().cloned().map(Some).collect(),
                    parity,
                    rec_at,
                };
                sim.members[lost] = None;
                sim
            };
            // Every band: the lost member's rows, and up to what is left of R_b elsewhere.
            let mut sim = fresh(file.clone());
            for b in 0..h.bands.len() {
                let left = h.bands[b].recovery_hashes.len() - rows_in(&h, b, lost);
                let mut pos: Vec<_> =
                    band_positions(&h, b).into_iter().filter(|p| p.0 != Some(lost)).collect();
                pos.shuffle(&mut rng);
                for &p in pos.iter().take(rng.gen_range(0..=left)) {
                    damage(&mut sim, p, &mut rng);
                }
            }
            let r = repair(&h, &mut sim).unwrap();
            prop_assert_eq!(r.bands_lost, 0);
            for (i, st) in r.members.iter().enumerate() {
                match st {
                    MemberState::Intact => prop_assert!(i != lost),
                    MemberState::Repaired { bytes, .. } => prop_assert!(*bytes == members[i]),
                    MemberState::Lost { .. } => prop_assert!(false, "member {} lost", i),
                }
            }
            // One band: one damaged shard more than it has left.
            let b = rng.gen_range(0..h.bands.len());
            let left = h.bands[b].recovery_hashes.len() - rows_in(&h, b, lost);
            let mut pos: Vec<_> =
                band_positions(&h, b).into_iter().filter(|p| p.0 != Some(lost)).collect();
            prop_assert!(pos.len() > left);
            pos.shuffle(&mut rng);
            let mut sim = fresh(file);
            let mut hit: Vec<usize> = pos.iter().take(left + 1).filter_map(|p| p.0).collect();
            if rows_in(&h, b, lost) > 0 {
                hit.push(lost);
            }
            for &p in pos.iter().take(left + 1) {
                damage(&mut sim, p, &mut rng);
            }
            let r = repair(&h, &mut sim).unwrap();
            prop_assert_eq!(r.bands_lost, 1);
            for (i, st) in r.members.iter().enumerate() {
                match st {
                    // The lost member, when it has no rows in that band: rebuilt exactly.
                    MemberState::Repaired { bytes, .. } => {
                        prop_assert!(*bytes == members[i], "member {} repaired wrongly", i);
                        prop_assert!(i == lost && !hit.contains(&i));
                    }
                    MemberState::Intact => prop_assert!(i != lost && !hit.contains(&i)),
                    MemberState::Lost { .. } => prop_assert!(hit.contains(&i), "member {} lost", i),
                }
            }
        }
    }
}
