//! The parity file's versions (format.md §15.3): version 2 (CRC-64 shard locators) is what
//! new files are; version 1 (BLAKE3 locators), written before 2026-12-07's wave 6, must
//! still read and repair, byte for byte as it was written.

use proptest::prelude::*;

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
fn new_parity_files_are_version_2_with_crc64_locators() {
    let members = v1_members();
    let read = |i: usize, off: u64, len: usize| Ok(&members[i][off as usize..off as usize + len]);
    let (id, file) = encode(50, vec![], &specs(&members), read).unwrap();
    // header_len:u32, then "SVPR", then the version.
    assert_eq!(file.get(4..9), Some(&b"SVPR\x02"[..]));
    let (h, _, _) = open(&id.to_hex(), &file).unwrap();
    assert_eq!(h.locator, Locator::Crc64);
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
    header[4] = 3;
    let err = ParityHeader::decode(&header).unwrap_err().to_string();
    assert!(err.contains("unknown version 3"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Either version: the header reads back as written, and damage up to each band's
    /// budget is repaired exactly with that version's locators.
    #[test]
    fn both_versions_round_trip_and_repair(
        members in members_strategy(), percent in 1u8..=50, rows in 1u32..4, seed: u64, v1: bool,
    ) {
        let locator = if v1 { Locator::Blake3 } else { Locator::Crc64 };
        let (name, file) = build_with(locator, &members, percent, rows);
        let (h, rec_at, both) = open(&name, &file).unwrap();
        prop_assert!(both);
        prop_assert_eq!(h.locator, locator);
        let bytes = h.to_bytes();
        prop_assert_eq!(ParityHeader::decode(&bytes).unwrap(), (h.clone(), bytes.len()));
        damage_within_the_budget_repairs_exactly(&h, &members, file, rec_at, seed)?;
    }
}
