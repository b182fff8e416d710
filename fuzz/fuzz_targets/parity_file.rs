#![no_main]
//! The parity file decoder: both header copies, then a repair pass over a group whose
//! members are all missing (so every recovery shard the header names is read and decoded).
use libfuzzer_sys::fuzz_target;
use snapvault_repo::id::Id;
use snapvault_repo::parity::{GroupSource, ParityHeader, SHARD, parity_file_header, repair};

struct Gone<'a> {
    file: &'a [u8],
    rec_at: u64,
}

impl GroupSource for Gone<'_> {
    fn member_size(&mut self, _: usize) -> Option<u64> {
        None
    }
    fn read_member(&mut self, _: usize, _: u64, _: usize) -> Option<Vec<u8>> {
        None
    }
    fn read_recovery(&mut self, first: u64, shards: usize) -> Option<Vec<u8>> {
        let start = usize::try_from(self.rec_at + first * SHARD as u64).ok()?;
        let end = start.checked_add(shards.checked_mul(SHARD)?)?;
        self.file.get(start..end).map(<[u8]>::to_vec)
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = ParityHeader::decode(data);
    // Name the input after its leading header copy, so the name check passes and the
    // decoder behind it is reached.
    let hl = data
        .get(..4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let name = data
        .get(4..4usize.saturating_add(hl))
        .map_or_else(|| Id::hash_of(b""), Id::hash_of)
        .to_hex();
    let read = |off: u64, len: usize| {
        let off = usize::try_from(off).ok()?;
        data.get(off..off.checked_add(len)?).map(<[u8]>::to_vec)
    };
    if let Ok((h, rec_at, _)) = parity_file_header(&name, data.len() as u64, read) {
        let _ = repair(&h, &mut Gone { file: data, rec_at });
    }
});
