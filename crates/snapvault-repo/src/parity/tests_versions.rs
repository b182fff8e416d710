//! The parity file's versions (format.md §15.3): version 4 (version 3 with each member's
//! place in the bands; packs spread over the bands since wave 11, in slots of `w` rows
//! before) is what new files are; version 3 (the high-rate code of a fixed
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

/// The packs of the frozen spread version 4 file: 10, 7, 12 and 3 rows, each row's first
/// 48 bytes (or fewer, in a short last row) set and the rest zero, so the recovery shards
/// are zero past their first 64 bytes.
fn spread_members() -> Vec<Vec<u8>> {
    [(10usize, 40usize), (7, 20), (12, 60), (3, 10)]
        .iter()
        .enumerate()
        .map(|(m, &(rows, last))| {
            let mut v = vec![0u8; (rows - 1) * SHARD + last];
            for k in 0..rows {
                let row = &mut v[k * SHARD..((k + 1) * SHARD).min((rows - 1) * SHARD + last)];
                let n = row.len().min(48);
                for (i, byte) in row[..n].iter_mut().enumerate() {
                    *byte = (m * 101 + k * 31 + i * 7 + 1) as u8;
                }
            }
            v
        })
        .collect()
}

/// The run the frozen spread file comes from: [`spread_members`] written at 50 % with
/// 16 MiB packs (`B` = 7 bands): the first three complete a group (50 % of their 29 rows
/// covers the largest, 12), the fourth is a tail coded in the other half and joined to it.
fn spread_run() -> Vec<stream::ToWrite> {
    let mut feeder = stream::Feeder::new(50, 16 << 20, usize::MAX);
    let mut out = Vec::new();
    for m in spread_members() {
        out.extend(feeder.written(&blake3::hash(&m).to_hex(), &m).unwrap());
    }
    out.extend(feeder.finish());
    out
}

/// The version 4 file of [`spread_run`]'s joined group, as written on 2026-12-07 (wave
/// 11): `L` = 4096; the packs at 0, 2 and 3 with 2, 1 and 2 rows per band (⌈rows / 7⌉),
/// the tail at 2048 with 1; `C` = 2048; 7 bands with `R_b` 3, 3, 3, 3, 3, 2, 1. Its
/// recovery shards are zero past their first 64 bytes.
fn spread_file() -> (&'static str, Vec<u8>) {
    const NAME: &str = "643913faebd9642ca8fe9bd213763207fee0b07f914e0c22674b83f9b8f53b91";
    const HEADER: &str = "5356505204320010000000100000000800000000000004000000044036346438383835\
        35336138653334643237616635613765396236386165306536383165353961613237303162623538346662\
        35396539303131353339323462662890000000000000000000000200000064d888553a8e34d27af5a7e9b6\
        8ae0e681e59aa2701bb584fb59e901153924bfa244dc99b564f1f27021bf8122a2d7d7cd35336536e7af3c\
        200329030b726482b202ba1c74864af6c8769e54bac1ace0dc21c7ffb15f04148f8727f48bd50a708f6e27\
        fab88041973035bfb38ca5f666044030636161363662373363393737386630323635623765623564373463\
        66373238623131346130383632336562363136646461333836313666616564623736343014600000000000\
        0002000000010000000caa66b73c9778f0265b7eb5d74cf728b114a08623eb616dda38616faedb764012a0\
        1f8a0f032f282ebda74c1ca2947ad3ce4baf56e33254a45159cf8292ea57eb7ee26a2bf7c85ca244dc99b5\
        64f1f2b85931e6c308b3cc0440353938303061636462383336633136356136316366623431393235656532\
        656437646433383865653236336535303462383334663166633364636338323762353cb000000000000003\
        0000000200000059800acdb836c165a61cfb41925ee2ed7dd388ee263e504b834f1fc3dcc827b5fea9aa37\
        cedaf0a7eaeabb9a3161db8a62994c6bc39993eb19795af905c4ea56d2f75592b02babd512a01f8a0f032f\
        282ebda74c1ca2947ad3ce4baf56e33254a45159cf8292ea57eb7ee26a2bf7c85ca244dc99b564f1f27021\
        bf8122a2d7d704403530343764316363393664646634353632613631386338613036623935663237653837\
        34323938646365623465353432666435633261376566333034643238610a20000000000000000800000100\
        00005047d1cc96ddf4562a618c8a06b95f27e874298dceb4e542fd5c2a7ef304d28a1284b63c8afb89992b\
        04a457b7dd7dd8011fd44eafb75e940700000003000000ef0e8ab5b9a3b93c65f6b4013b4888b56326278f\
        7febca9d03000000a4481d718242ba038536e2591e0f703fae5e17b7684c71ab0300000096550fecefc120\
        13c5c3177a98713c4fe74101ce11be1a9903000000cf828e25b4d8c346c5fa99f8cbb198c27335c8dade79\
        63e203000000bb83f2b2be0b23e2bf7f55f8992d31c0bff60bd812d1cd2902000000b11ffc5b7b41eccfb7\
        3e8c9dbb65e5b901000000699e819ddd7b9cae";
    const RECOVERY: [&str; 18] = [
        "cd1373e10e255983d8c7d6a652d1187e19ea77ca92e89ffa112520b7aad81f3e\
         35852a76a7b789c93db64813337fb5dae9ccd79800e2940e8c9c80da676a46ae",
        "4570db8ab14a9bd5cf66418eb35e0ddeee4f68ce83e6e322f01a4a614bde4982\
         f3cf6a3299664e98b6827ef78503f35886e63d4d7106f0d7719745805f33c7c6",
        "e95597ca4df10edebc9804f5abf21277766398a5d52f7acafbdc9d34d067f02c\
         ce41e8e6357ab47806eba473866f772d9608ef141867e3607d4432514c80d8cd",
        "602a18dcb0d8c4284a12b22c925480abded5f52a53d685697a8f4bfb087b34f0\
         1aae5ca93d99dd0ea8054573a6ee8f37cbf32953c4cae8ebca5cdec055b1aa04",
        "69370ea9d48e99cc6cbf91e2a5ec8314a9fcc079359e82727f133265595b850c\
         a66d51a11032b8b0947023e14f013e7a530ae46726cad2dcf6cfb5255bfe5839",
        "e1f48122a99ce1f7e1ebbfbdb674640410cee00856b34b439799e9419787e877\
         6557a5dd476ff61ce8dc27d82cdf78772db17863e888d54d1ea39d20b518de4f",
        "7353896aff681fe3ba54ffa85e1186323be5aa2a7d95e4c9c562db11af4d2ec3\
         98a8a80a0772b0e14867aeccb9ed13e8bb39cee288cf9f9dacbdb5d8db563684",
        "c5cca3413c375ba7fa5194f45eb6f143868e3f7338c77df36d5216abab61632e\
         88f0575195323668d3459973b52310d5245f038bc523b0923871504b53654ff9",
        "94ceb2abbbe11f0da3e1a392b597f470beaf1ca87b9f25c3b76e4da00a249d9a\
         3a75d9e0bdf06472678474a6eb603ab42eb7bcf92fc9b6edcc91de5e4787aab0",
        "719db0ce7f581f713b530c31d7c22fc66f33296f4eed197a2e0ba11f8802883a\
         e94a0388ae29236f791cfed03be821f20b38a8e81ecc41000cac8d31c16f6bf9",
        "8ba5017ddd600d5e1ff61fe173fca97740eb20cd0ffd95e861fde766a8aa1f82\
         7839f2f5338e11aec4e0d0a68f667944157061c10ec56cbc2d7aff2dc6a29599",
        "5e85ac8493b47e18e8fcb9a9acfb8030033ce0792ec7be7ed027835a913d15df\
         9c756445a5cff759edf0a4ebc13abaa6194349ffe16f8f149c02fee16ca87971",
        "41805509898c87cd9d4a76486a2f6f1433413b6c440bb21a48da5361fa5c9cac\
         791839019523f8f40e11d27227163d71dc7fb4f664bdb5ac31f43804a4148fac",
        "a9b420e2bf4f33edeb03da6355c30e9976244d73fc30749579191cdbc047340a\
         3c10eb112318cf179ca87e5ca322b55250942c2662a584b3353b0b52db4a594b",
        "43132cec98e8a5f1aae58a536921fb40674b8d16e4597a0fa645f93224e00bef\
         00771c341bf7da7fe528d48842d8db6315457856a98bc4f7ca44911133de559e",
        "ddc187e98dfb3c52362ffbc2f15bd0e9222be8ff0b6e81728662a9172baba11f\
         eca4cab99e53285b7cd45b9c0f33e423b848ec2e4c62461c7e38b43097279d19",
        "93a18a1c1558f2646d5ae1177e461deb78bca55876dbeec6e8c19eca2c2ab4e0\
         eb47a9892e1fe4c4632f5bdbdc13fc7caebfb7e927b03857993ebf01ac04b30d",
        "a832b65cd8d054be3aa0666608e001016ff57133000000000000000000000000\
         3f8103f57741c335b70918426cfe227856e86aa3000000000000000000000000",
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
fn version_4_spread_parity_reads_and_repairs_and_is_what_the_stream_writes() {
    let (name, file) = spread_file();
    let members = spread_members();
    // Today's writer still makes exactly these bytes (the run's one file).
    let run = spread_run();
    assert_eq!(run.len(), 1);
    assert!(run[0].name == name && run[0].bytes == file);
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
    assert_eq!(places, vec![(0, 2), (2, 1), (3, 2), (2048, 1)]);
    let budget: Vec<usize> = h.bands.iter().map(|b| b.recovery_hashes.len()).collect();
    assert_eq!(budget, vec![3, 3, 3, 3, 3, 2, 1]);
    let mut sim = Sim {
        members: members.iter().cloned().map(Some).collect(),
        parity: file,
        rec_at,
    };
    assert!(repair(&h, &mut sim).unwrap().is_clean());
    // Member 2 (2 rows in each of bands 0..6) deleted, and in band 0 one more damaged
    // shard (a sector of member 0): R_0 = 3 covers the three. All rebuilt exactly.
    sim.members[2] = None;
    sim.members[0].as_mut().unwrap()[7] ^= 0x20;
    let r = repair(&h, &mut sim).unwrap();
    assert!(matches!(&r.members[0], MemberState::Repaired { bytes, .. } if *bytes == members[0]));
    assert!(matches!(&r.members[2], MemberState::Repaired { bytes, .. } if *bytes == members[2]));
    // One more in band 0 (member 1's row 0): lost, never "repaired".
    sim.members[1].as_mut().unwrap()[3] ^= 0x01;
    let r = repair(&h, &mut sim).unwrap();
    for i in 0..3 {
        assert!(
            matches!(r.members[i], MemberState::Lost { .. }),
            "member {i}"
        );
    }
    assert_eq!(r.members[3], MemberState::Intact);
}
