//! The parity file's versions (format.md §15.3): version 4 (version 3 with each member's
//! place in the bands) is what new files are; version 3 (the high-rate code of a fixed
//! width, punctured; written in wave 7), version 2 (CRC-64 shard locators, the systematic
//! code) and version 1 (BLAKE3 locators) must still read and repair, byte for byte as
//! they were written.

use proptest::prelude::*;

use super::encode::{self, Coding};
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
fn new_parity_files_are_version_4_with_crc64_locators() {
    let members = v1_members();
    let read = |i: usize, off: u64, len: usize| Ok(&members[i][off as usize..off as usize + len]);
    let (id, file) = encode(50, vec![], &specs(&members), read).unwrap();
    // header_len:u32, then "SVPR", then the version.
    assert_eq!(file.get(4..9), Some(&b"SVPR\x04"[..]));
    let (h, _, _) = open(&id.to_hex(), &file).unwrap();
    assert_eq!(h.locator, Locator::Crc64);
    assert_eq!(h.version(), 4);
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
    header[4] = 5;
    let err = ParityHeader::decode(&header).unwrap_err().to_string();
    assert!(err.contains("unknown version 5"), "{err}");
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

/// [`v3_members`] as packs.
fn pack_specs(members: &[Vec<u8>]) -> Vec<MemberSpec> {
    members
        .iter()
        .map(|m| MemberSpec {
            kind: MemberKind::Pack,
            name: blake3::hash(m).to_hex().to_string(),
            size: m.len() as u64,
        })
        .collect()
}

#[test]
fn version_3_parity_reads_and_repairs() {
    let (name, file) = v3_file();
    let members = v3_members();
    // The version 3 coding (kept for tests) still makes exactly these bytes.
    let read = |i: usize, off: u64, len: usize| Ok(&members[i][off as usize..off as usize + len]);
    let v3 = encode::encode_rows(
        Coding::HighRate(Some(2048)),
        50,
        1365,
        vec![],
        &pack_specs(&members),
        read,
    )
    .unwrap();
    assert!(v3 == (name.parse().unwrap(), file.clone()));
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

/// The version 4 file of [`v3_members`] as the stream wrote them at 50 % in wave 8 (*K* =
/// 2: the first two a full group in slots 0 and 1 of `w` = 1024 rows, the third a short
/// tail coded in slot 2 and joined to it; `L` = 4096 positions of which the members take
/// 0, 1024 and 2048, `C` = 2048, `R_b` = 2), as written on 2026-12-07. Its recovery
/// shards are zero past their first 128 bytes.
fn v4_file() -> (&'static str, Vec<u8>) {
    const NAME: &str = "acab623c95e2348443af046f8b72d8aad9838b70d6649c4bed356a09044846af";
    const HEADER: &str = "5356505204320010000000100000000800000000000003000000044035323033623135\
        32323536636535613261656131326631323465336264396465663965626532313262343963323735313233\
        3737333966363330656135313261640000000000000000000000000400005203b152256ce5a2aea12f124e\
        3bd9def9ebe212b49c2751237739f630ea512a53b0096ffab5112304406666336263363331613837656134\
        32336262353330346635316465353862646336376233396533383963633264623037613337313535666639\
        316134373439363c000000000000000004000000040000ff3bc631a87ea423bb5304f51de58bdc67b39e38\
        9cc2db07a37155ff91a47496fa111f54ca2447570440623837326138303732363930303463653035653064\
        63306137613039346466323432343966386235303433306336353638366231343364656664616438613136\
        78000000000000000008000000040000b872a807269004ce05e0dc0a7a094df24249f8b50430c65686b143\
        defdad8a16e15094fda685353f01000000020000008864d237baa158f42795abe685356c62";
    const RECOVERY: [&str; 2] = [
        "bd55364c070087817f4de85d7ca5b1b6de67ea960f6deac8301a6d8afa9dff24db156fca299e0b41dbe2f6\
         8945ddb0a64ca44bf76bad38b683680350cf09cf56a5f6e83eec55ea4c3ea2733f26c771d20c1672bfa6eb\
         5457153c5562c3ef9dedd8f8a2725d1b65ebbc75ec4b64537a0cf5752fbe91087601ecffa191799286d5",
        "b5d122dae52f36e07dfd5255d4c85cdfe7867758d94c5542d8ebfa7493f61a0e5715a661bf4723d4597ef1\
         8aae732685140f4fd6e5cfab7f0296f4478ca445b6d046bba268088756b568fc76ef8f054d8ba97d2eb7f2\
         7d8c87bbf181c663c825e1dc6a2548e257a8f0575d20a31ce5ef3ad7b50083b1043aea0775bd465e316b",
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
fn version_4_parity_in_slots_reads_and_repairs() {
    let (name, file) = v4_file();
    let members = v3_members();
    // The slots coding (kept for small files, and for tests) still makes exactly these bytes.
    let read = |i: usize, off: u64, len: usize| Ok(&members[i][off as usize..off as usize + len]);
    let slots = encode::encode_rows(
        Coding::Placed(Some(2048)),
        50,
        1024,
        vec![],
        &pack_specs(&members),
        read,
    )
    .unwrap();
    assert!(slots == (name.parse().unwrap(), file.clone()));
    let (h, rec_at, both) = open(name, &file).unwrap();
    assert!(both);
    assert_eq!(
        (h.version(), h.code_width, h.band_rows),
        (4, Some(2048), 4096)
    );
    let places: Vec<(u32, u32)> = h
        .members
        .iter()
        .map(|m| (m.place.at, m.place.per_band))
        .collect();
    assert_eq!(places, vec![(0, 1024), (1024, 1024), (2048, 1024)]);
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

/// A version 4 header whose members overlap in a band, or reach past its positions, is
/// refused by name (never decoded into a wrong codeword).
#[test]
fn version_4_places_are_checked() {
    let (_, file) = v4_file();
    let hl = u32::from_le_bytes(file[..4].try_into().unwrap()) as usize;
    let header = file[4..4 + hl].to_vec();
    let (h, _) = ParityHeader::decode(&header).unwrap();
    let mut overlap = h.clone();
    overlap.members[1].place.at = 1000;
    let err = ParityHeader::decode(&overlap.to_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("share positions"), "{err}");
    let mut past = h;
    past.members[2].place.at = 4000;
    let err = ParityHeader::decode(&past.to_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside the band"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any version: the header reads back as written, and damage up to each band's
    /// budget is repaired exactly with that version's locators.
    #[test]
    fn both_versions_round_trip_and_repair(
        members in members_strategy(), percent in 1u8..=50, rows in 1u32..4, seed: u64,
        version in 1u8..=4,
    ) {
        let coding = match version {
            1 => Coding::Systematic(Locator::Blake3),
            2 => Coding::Systematic(Locator::Crc64),
            3 => Coding::HighRate(None),
            _ => Coding::Placed(None),
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
