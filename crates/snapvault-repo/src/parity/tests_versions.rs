//! The parity file's versions (format.md §15.3): version 3 (the high-rate code of a fixed
//! width, punctured) is what new files are; version 2 (CRC-64 shard locators, the
//! systematic code) and version 1 (BLAKE3 locators), written before 2026-12-07's wave 7,
//! must still read and repair, byte for byte as they were written.

use proptest::prelude::*;

use super::encode::Coding;
use super::tests::{
    Sim, build_with, damage_within_the_budget_repairs_exactly, members_strategy, open, specs,
};
use super::*;

/// The members of the frozen version 1 file: key files `member0` (100 bytes) and `member1`
/// (60 bytes).
fn v1_members() -> Vec<Vec<u8>> {
    vec![
        (0..100u32).map(|i| (i * 7 + 3) as u8).collect(),
        (0..60u32).map(|i| (i * 13 + 1) as u8).collect(),
    ]
}

/// A version 1 parity file of [`v1_members`] at 50 %, as the code before version 2 wrote it
/// (its one recovery shard is zero past its first 100 bytes: the members are that short).
fn v1_file() -> (&'static str, Vec<u8>) {
    const NAME: &str = "00c447288a2ca648edbbb140acf4dc0b0d3201f54f6d9c1119bd371716c06ace";
    const HEADER: &str = "5356505201320010000000080000000000000200000001076d656d6265723064000000\
        000000005203b152256ce5a2aea12f124e3bd9def9ebe212b49c2751237739f630ea512a8e7a9cbd2f8c22\
        3401076d656d626572313c00000000000000ff3bc631a87ea423bb5304f51de58bdc67b39e389cc2db07a3\
        7155ff91a4749647f321f0025ef0c80100000001000000708f0440acd2bd60";
    const RECOVERY: &str = "02040a302a6462685234cac0caf4d2a8a2a46a708a84828892f4eaa0aab45248\
        42444a302ae4e2e812340a000a7412282224eaf0cac4c24852746aa0a7aeb5bcc3cad1d8dfe6edf4fb0209\
        10171e252c333a41484f565d646b727980878e959ca3aab1b8";
    let header = hex::decode(HEADER).unwrap();
    let mut recovery = hex::decode(RECOVERY).unwrap();
    recovery.resize(SHARD, 0);
    let hl = (header.len() as u32).to_le_bytes();
    let file = [&hl[..], &header, &recovery, &header, &hl].concat();
    (NAME, file)
}

#[test]
fn version_1_parity_still_reads_and_repairs() {
    let (name, file) = v1_file();
    let (h, rec_at, both) = open(name, &file).unwrap();
    assert!(both);
    assert_eq!(h.locator, Locator::Blake3);
    assert_eq!(h.members.len(), 2);
    let members = v1_members();
    let mut sim = Sim {
        members: members.iter().cloned().map(Some).collect(),
        parity: file,
        rec_at,
    };
    assert!(repair(&h, &mut sim).unwrap().is_clean());
    // A flipped byte in one member, then the other member deleted: both rebuilt exactly.
    sim.members[0].as_mut().unwrap()[42] ^= 0x10;
    let r = repair(&h, &mut sim).unwrap();
    assert!(matches!(&r.members[0], MemberState::Repaired { bytes, .. } if *bytes == members[0]));
    sim.members[0] = Some(members[0].clone());
    sim.members[1] = None;
    let r = repair(&h, &mut sim).unwrap();
    assert!(matches!(&r.members[1], MemberState::Repaired { bytes, .. } if *bytes == members[1]));
}

#[test]
fn new_parity_files_are_version_3_with_crc64_locators() {
    let members = v1_members();
    let read = |i: usize, off: u64, len: usize| Ok(&members[i][off as usize..off as usize + len]);
    let (id, file) = encode(50, vec![], &specs(&members), read).unwrap();
    // header_len:u32, then "SVPR", then the version.
    assert_eq!(file.get(4..9), Some(&b"SVPR\x03"[..]));
    let (h, _, _) = open(&id.to_hex(), &file).unwrap();
    assert_eq!(h.locator, Locator::Crc64);
    assert_eq!(h.version(), 3);
    let mut padded = members[0].clone();
    padded.resize(SHARD, 0);
    let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, &padded);
    assert_eq!(h.members[0].shard_hashes, vec![crc.to_le_bytes()]);
}

#[test]
fn unknown_versions_are_refused_by_name() {
    let (_, file) = v1_file();
    let hl = u32::from_le_bytes(file[..4].try_into().unwrap()) as usize;
    let mut header = file[4..4 + hl].to_vec();
    header[4] = 4;
    let err = ParityHeader::decode(&header).unwrap_err().to_string();
    assert!(err.contains("unknown version 4"), "{err}");
}

/// The members of the frozen version 3 file: three packs (named by their BLAKE3) of 100, 60
/// and 120 bytes, the first two [`v1_members`]'s bytes.
fn v3_members() -> Vec<Vec<u8>> {
    let mut members = v1_members();
    members.push((0..120u32).map(|i| (i * 5 + 11) as u8).collect());
    members
}

/// A version 3 parity file of [`v3_members`] as a pack group at 50 % (`w` = 1365, code width
/// `C` = 2048, the band's 3 data shards with `R_b` = 2 of the 2048 recovery shards stored),
/// as written on 2026-12-07 (wave 7). Its recovery shards are zero past their first 128
/// bytes (the members are that short: each 16-bit symbol's two bytes lie 32 apart).
fn v3_file() -> (&'static str, Vec<u8>) {
    const NAME: &str = "290ea9527c6bd90c674dacef0cf827621f2ba17d0a1a525405fb03fc5981aab2";
    const HEADER: &str = "535650520332001000005505000000080000000000000300000004403532303362\
        313532323536636535613261656131326631323465336264396465663965626532313262343963323735\
        313233373733396636333065613531326164000000000000005203b152256ce5a2aea12f124e3bd9def9\
        ebe212b49c2751237739f630ea512a53b0096ffab511230440666633626336333161383765613432336262\
        353330346635316465353862646336376233396533383963633264623037613337313535666639316134\
        373439363c00000000000000ff3bc631a87ea423bb5304f51de58bdc67b39e389cc2db07a37155ff91a474\
        96fa111f54ca24475704406238373261383037323639303034636530356530646330613761303934646632\
        34323439663862353034333063363536383662313433646566646164386131367800000000000000b872a8\
        07269004ce05e0dc0a7a094df24249f8b50430c65686b143defdad8a16e15094fda685353f010000000200\
        0000cd62612ff7134ce994238788dbb5712b";
    const RECOVERY: [&str; 2] = [
        "249387c75c6523ed8f25dc81f87567b93f07c0ed8f9ddb5a298a8a4e7de3ad090759d14104924c5bd03de2\
         3ca8cba99992cd9a686b9749e13c78e10c6a541c2dc7b7da51f0b4e18354a40672189586e1d5b3a4345e30\
         65a2865f228134e8a0e62b477997dcf1f85bc1fe0393d819fda62884ba155e8b82d822cc0884f6e06391",
        "d901eb5c7a844324e1824f3f0d6174fcb07243b053d0172209636b153ddfb2fc47f7f507e20fe5b78a83f2\
         9c68dfd8c4ba45dcbef940aa151ebe6d7ac7d3a61eb2b746b4729e702750eb73d742445a94331ac27aef39\
         d7a02995b5d9f4d18a026add7db7ccfa0723041e0263f6f472a33ec5b18114ac51b4780ef6f9880bb312",
    ];
    let header = hex::decode(HEADER).unwrap();
    let hl = (header.len() as u32).to_le_bytes();
    let mut file = [&hl[..], &header].concat();
    for r in RECOVERY {
        let mut shard = hex::decode(r.replace(' ', "")).unwrap();
        shard.resize(SHARD, 0);
        file.extend_from_slice(&shard);
    }
    file.extend_from_slice(&header);
    file.extend_from_slice(&hl);
    (NAME, file)
}

#[test]
fn version_3_parity_reads_and_repairs_and_is_what_the_stream_writes() {
    let (name, file) = v3_file();
    let members = v3_members();
    // Today's writer still makes exactly these bytes.
    let engine = reed_solomon_simd::engine::DefaultEngine::new();
    let mut g = stream::GroupStream::new(50);
    for m in &members {
        g.add(&engine, &blake3::hash(m).to_hex(), m).unwrap();
    }
    assert!(g.finish(&engine, vec![]) == (name.parse().unwrap(), file.clone()));
    let (h, rec_at, both) = open(name, &file).unwrap();
    assert!(both);
    assert_eq!(
        (h.version(), h.code_width, h.band_rows),
        (3, Some(2048), 1365)
    );
    assert_eq!(h.bands[0].recovery_hashes.len(), 2);
    let mut sim = Sim {
        members: members.iter().cloned().map(Some).collect(),
        parity: file,
        rec_at,
    };
    assert!(repair(&h, &mut sim).unwrap().is_clean());
    // Two damaged shards (R_b = 2): a flipped byte in member 0, member 2 deleted.
    sim.members[0].as_mut().unwrap()[42] ^= 0x10;
    sim.members[2] = None;
    let r = repair(&h, &mut sim).unwrap();
    assert!(matches!(&r.members[0], MemberState::Repaired { bytes, .. } if *bytes == members[0]));
    assert!(matches!(&r.members[2], MemberState::Repaired { bytes, .. } if *bytes == members[2]));
    // One more (a recovery shard): lost, never "repaired".
    let at = rec_at as usize + 5;
    sim.parity[at] ^= 1;
    let r = repair(&h, &mut sim).unwrap();
    assert!(matches!(r.members[0], MemberState::Lost { .. }));
    assert!(matches!(r.members[2], MemberState::Lost { .. }));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any version: the header reads back as written, and damage up to each band's
    /// budget is repaired exactly with that version's locators.
    #[test]
    fn both_versions_round_trip_and_repair(
        members in members_strategy(), percent in 1u8..=50, rows in 1u32..4, seed: u64,
        version in 1u8..=3,
    ) {
        let coding = match version {
            1 => Coding::Systematic(Locator::Blake3),
            2 => Coding::Systematic(Locator::Crc64),
            _ => Coding::HighRate(None),
        };
        let (name, file) = build_with(coding, &members, percent, rows);
        let (h, rec_at, both) = open(&name, &file).unwrap();
        prop_assert!(both);
        prop_assert_eq!(h.version(), version);
        let bytes = h.to_bytes();
        prop_assert_eq!(ParityHeader::decode(&bytes).unwrap(), (h.clone(), bytes.len()));
        damage_within_the_budget_repairs_exactly(&h, &members, file, rec_at, seed)?;
    }
}
