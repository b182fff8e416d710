//! Reed-Solomon parity against bit rot and lost files (format.md §15): a group of member
//! files is cut into 4 KiB shards, coded in bands of at most [`MAX_BAND_SHARDS`] shards,
//! and one parity file holds each band's recovery shards plus a header naming every
//! member, its BLAKE3 and one 8-byte hash per shard. The hashes locate damage, so the code
//! only fills erasures; a rebuilt member is accepted only when its BLAKE3 matches.
//!
//! This module is pure: members and the parity file are read through closures, so the
//! same code serves the repository's backends, tests and the fuzz target.

mod encode;
pub mod guard;
mod header;
mod repair;
pub mod store;
#[cfg(test)]
mod tests;

pub use encode::{MemberSpec, encode, recovery_count};
pub use header::{Band, Member, MemberKind, ParityHeader, parity_file_header};
pub use repair::{GroupSource, MemberState, RepairReport, repair};

/// Bytes per shard: one disk sector of the usual size, so one bad sector or one flipped
/// byte erases exactly one shard.
pub const SHARD: usize = 4096;
/// Data shards per band (one Reed-Solomon codeword): 16 MiB, the memory a band costs.
pub const MAX_BAND_SHARDS: usize = 4096;
/// Recovery shards per band: the codec's limit (a band never has more than its data shards).
pub const MAX_RECOVERY: usize = 32768;
/// Members per group (so every band has at least one row of each member).
pub const MAX_MEMBERS: usize = MAX_BAND_SHARDS;
/// Largest member (a pack is at most the config's 1 GiB pack size; an index file 256 MiB).
pub const MAX_MEMBER_SIZE: u64 = 1 << 30;
/// Largest header a reader accepts (8 bytes per shard: 8 GiB of members).
pub const MAX_HEADER: usize = 16 << 20;
/// Highest parity level, in percent.
pub const MAX_PERCENT: u8 = crate::format::config::MAX_PARITY;

/// The first 8 bytes of BLAKE3 of `shard` zero-padded to [`SHARD`] bytes.
pub fn shard_hash(shard: &[u8]) -> [u8; 8] {
    let mut h = blake3::Hasher::new();
    h.update(shard);
    if shard.len() < SHARD {
        h.update(&[0u8; SHARD][..SHARD - shard.len()]);
    }
    let mut out = [0u8; 8];
    out.copy_from_slice(&h.finalize().as_bytes()[..8]);
    out
}

/// Rows (shards) of a member of `size` bytes.
pub fn rows_of(size: u64) -> u64 {
    size.div_ceil(SHARD as u64)
}

/// The shard hashes of each part's bytes (cut into [`SHARD`]s), on two threads when there
/// is enough to hash: hashing is most of the cost of verifying and encoding a group.
pub(crate) fn hash_parts<T: AsRef<[u8]> + Sync>(parts: &[(usize, T)]) -> Vec<Vec<[u8; 8]>> {
    let one = |p: &[(usize, T)]| -> Vec<Vec<[u8; 8]>> {
        p.iter()
            .map(|(_, b)| b.as_ref().chunks(SHARD).map(shard_hash).collect())
            .collect()
    };
    let total: usize = parts.iter().map(|(_, b)| b.as_ref().len()).sum();
    if total < 1 << 20 || parts.len() < 2 {
        return one(parts);
    }
    let (a, b) = parts.split_at(parts.len() / 2);
    std::thread::scope(|s| {
        let second = s.spawn(|| one(b));
        let mut out = one(a);
        out.extend(second.join().unwrap_or_else(|_| one(b)));
        out
    })
}
